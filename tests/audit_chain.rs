//! Tamper evidence: the audit trail's hash chain and signed digests detect a
//! record that was modified, deleted, inserted or moved, in a copy of the
//! store and in an exported file, and name the first bad record; untouched
//! copies verify.

mod common;

use std::path::Path;

use common::*;
use kmsim::audit::chain;
use kmsim::proto as pb;
use rusqlite::{Connection, params};
use serde_json::Value;
use tokio_stream::StreamExt;

/// A data dir with some history, its server stopped (so the tail is signed), and a native export of it.
async fn history(dir: &Path) -> (String, String) {
    let server = TestServer::start_in(dir).await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    for i in 0..12 {
        let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: vec![i; 8], ..Default::default() };
        kms.encrypt(request).await.unwrap();
    }
    kms.disable_key(pb::DisableKeyRequest { key_id: key_id.clone() }).await.unwrap();
    let verdict = server.audit().await.verify_audit_trail(pb::VerifyAuditTrailRequest {}).await.unwrap().into_inner();
    assert!(verdict.valid, "{verdict:?}");
    assert_eq!(verdict.records, 14);
    let key = server.audit().await.get_audit_public_key(pb::GetAuditPublicKeyRequest {}).await.unwrap().into_inner();
    assert!(key.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    let request = pb::ExportAuditEventsRequest { format: "native".into(), ..Default::default() };
    let mut stream = server.audit().await.export_audit_events(request).await.unwrap().into_inner();
    let mut export = Vec::new();
    while let Some(chunk) = stream.next().await {
        export.extend(chunk.unwrap().data);
    }
    server.stop().await;
    (String::from_utf8(export).unwrap(), key.public_key_hex)
}

/// A copy of `dir` with `tamper` applied to its database.
fn tampered_copy(dir: &Path, tamper: impl FnOnce(&Connection)) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for file in ["kmsim.db", "kmsim.db-wal", "kmsim.db-shm"] {
        if dir.join(file).exists() {
            std::fs::copy(dir.join(file), copy.path().join(file)).unwrap();
        }
    }
    let conn = Connection::open(copy.path().join("kmsim.db")).unwrap();
    tamper(&conn);
    copy
}

fn verify_dir(dir: &Path) -> Result<chain::Verified, chain::Violation> {
    kmsim::store::verify_dir(dir, None).expect("a readable store")
}

fn record_text(conn: &Connection, seq: i64) -> String {
    conn.query_row("SELECT record FROM audit_events WHERE seq = ?1", params![seq], |row| row.get(0)).unwrap()
}

#[tokio::test]
async fn every_kind_of_tampering_with_the_store_names_the_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    history(dir.path()).await;
    let clean = verify_dir(dir.path()).unwrap();
    assert_eq!((clean.records, clean.unsigned_tail), (17, 0), "the shutdown signed the tail");

    let flipped = tampered_copy(dir.path(), |conn| {
        let text = record_text(conn, 6).replacen("Encrypt", "Decrypt", 1);
        conn.execute("UPDATE audit_events SET record = ?1 WHERE seq = 6", params![text]).unwrap();
    });
    assert_eq!(verify_dir(flipped.path()).unwrap_err().seq, 6, "a modified record");

    let deleted = tampered_copy(dir.path(), |conn| {
        conn.execute("DELETE FROM audit_events WHERE seq = 8", []).unwrap();
    });
    let violation = verify_dir(deleted.path()).unwrap_err();
    assert_eq!(violation.seq, 9, "the record after a deleted one: {violation}");
    assert!(violation.reason.contains("missing"));

    let swapped = tampered_copy(dir.path(), |conn| {
        let (a, b) = (record_text(conn, 4), record_text(conn, 5));
        conn.execute("UPDATE audit_events SET record = ?1 WHERE seq = 4", params![b]).unwrap();
        conn.execute("UPDATE audit_events SET record = ?1 WHERE seq = 5", params![a]).unwrap();
    });
    assert_eq!(verify_dir(swapped.path()).unwrap_err().seq, 4, "two records swapped");

    let inserted = tampered_copy(dir.path(), |conn| {
        // Make room at 10 by moving every later record up one, then forge record 10 from record 9.
        conn.execute("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 10", []).unwrap();
        conn.execute("UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1010", []).unwrap();
        conn.execute(
            "INSERT INTO audit_events (seq, event_id, time_ms, service_name, event_name, key_id, error_code, record, chain) \
             SELECT 10, event_id || '-forged', time_ms, service_name, event_name, key_id, error_code, record, chain \
             FROM audit_events WHERE seq = 9",
            [],
        )
        .unwrap();
    });
    assert_eq!(verify_dir(inserted.path()).unwrap_err().seq, 10, "an inserted record");

    let truncated = tampered_copy(dir.path(), |conn| {
        conn.execute("DELETE FROM audit_events WHERE seq >= 16", []).unwrap();
    });
    assert_eq!(verify_dir(truncated.path()).unwrap_err().seq, 16, "records cut off the end");

    // A forger who rewrites record 3 and recomputes every link after it is caught by a signed digest.
    let relinked = tampered_copy(dir.path(), |conn| {
        let text = record_text(conn, 3).replacen("127.0.0.1", "10.9.9.9", 1);
        conn.execute("UPDATE audit_events SET record = ?1 WHERE seq = 3", params![text]).unwrap();
        let mut previous = chain::GENESIS;
        for seq in 1..=17 {
            let record: Value = serde_json::from_str(&record_text(conn, seq)).unwrap();
            previous = chain::link(&previous, seq, &chain::canonical(&record));
            conn.execute("UPDATE audit_events SET chain = ?1 WHERE seq = ?2", params![&previous[..], seq]).unwrap();
        }
    });
    assert!(verify_dir(relinked.path()).unwrap_err().seq >= 3, "a recomputed chain breaks a signed digest");

    assert!(verify_dir(dir.path()).is_ok(), "the original is still intact");
}

#[tokio::test]
async fn an_export_carries_what_an_outside_verifier_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (export, public_key) = history(dir.path()).await;
    let key = ed25519_key(&public_key);
    let clean = chain::verify_export(&export, Some(key)).unwrap().unwrap();
    assert_eq!(clean.records, 16, "everything committed before the export began");

    let lines: Vec<&str> = export.lines().collect();
    let record_line = |i: usize| lines.iter().filter(|l| l.contains("\"auditChain\"")).nth(i).copied().unwrap();
    let seq_of = |line: &str| serde_json::from_str::<Value>(line).unwrap()["auditChain"]["seq"].as_i64().unwrap();
    let rebuild = |lines: Vec<String>| lines.join("\n");
    let owned: Vec<String> = lines.iter().map(|l| l.to_string()).collect();

    let target = record_line(5);
    let modified = rebuild(
        owned.iter().map(|l| if l == target { l.replacen("Encrypt", "Decrypt", 1) } else { l.clone() }).collect(),
    );
    assert_eq!(chain::verify_export(&modified, Some(key)).unwrap().unwrap_err().seq, seq_of(target));

    let deleted = rebuild(owned.iter().filter(|l| *l != target).cloned().collect());
    assert_eq!(chain::verify_export(&deleted, Some(key)).unwrap().unwrap_err().seq, seq_of(target) + 1);

    let mut swapped = owned.clone();
    let at = swapped.iter().position(|l| l == target).unwrap();
    swapped.swap(at, at + 1);
    assert!(chain::verify_export(&rebuild(swapped), Some(key)).unwrap().is_err());

    let mut inserted = owned.clone();
    inserted.insert(at, target.to_owned());
    assert!(chain::verify_export(&rebuild(inserted), Some(key)).unwrap().is_err());

    let other_key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
    assert!(chain::verify_export(&export, Some(other_key)).unwrap().is_err(), "digests signed by another key");
}

fn ed25519_key(hex: &str) -> ed25519_dalek::VerifyingKey {
    ed25519_dalek::VerifyingKey::from_bytes(&chain::unhex::<32>(hex).unwrap()).unwrap()
}

#[tokio::test]
async fn retention_prunes_old_records_and_what_remains_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let encrypt =
        |id: &str| pb::EncryptRequest { key_id: id.to_owned(), plaintext: b"x".to_vec(), ..Default::default() };
    for _ in 0..3 {
        kms.encrypt(encrypt(&key_id)).await.unwrap();
    }
    let first_day: Vec<String> = all_audit_events(&server).await.into_iter().map(|e| e.event_id).collect();
    server.advance_days(100).await;
    kms.encrypt(encrypt(&key_id)).await.unwrap();
    assert!(all_audit_events(&server).await.len() > first_day.len(), "nothing is pruned within 180 days");

    server.advance_days(100).await;
    let kept = all_audit_events(&server).await;
    assert!(kept.iter().all(|e| !first_day.contains(&e.event_id)), "records older than 180 days are gone");
    assert!(kept.iter().any(|e| e.event_name == "Encrypt"), "the later Encrypt is kept");
    let prune = kept.iter().find(|e| e.event_name == "PruneAuditEvents").expect("the pruning is audited");
    assert_eq!(prune.event_type, "AliyunServiceEvent");
    let verdict = server.audit().await.verify_audit_trail(pb::VerifyAuditTrailRequest {}).await.unwrap().into_inner();
    assert!(verdict.valid, "{verdict:?}");
    server.stop().await;
    let offline = verify_dir(dir.path()).unwrap();
    assert!(offline.records >= 3, "{offline:?}");
}

#[tokio::test]
async fn without_retention_nothing_is_pruned() {
    let config = kmsim::server::ServerConfig { audit_retention_days: None, ..Default::default() };
    let server = TestServer::start_config(config).await;
    let mut kms = server.kms().await;
    create_key(&mut kms, "").await;
    let before = all_audit_events(&server).await.len();
    server.advance_days(400).await;
    assert_eq!(all_audit_events(&server).await.len(), before + 2, "the advance and the listing were added");
    server.stop().await;
}
