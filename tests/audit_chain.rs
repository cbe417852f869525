//! Tamper evidence: the audit trail's hash chain and signed digests detect a
//! record that was modified, deleted, inserted or moved, in a copy of the
//! store and in an exported file, and name the first bad record; untouched
//! copies verify. A removed link or digest is a violation that the server
//! neither mends nor signs over, an edited index column is one too, and a
//! digest kept outside the data dir catches what the store alone cannot.

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
    let verdict =
        server.audit().await.verify_audit_trail(pb::VerifyAuditTrailRequest::default()).await.unwrap().into_inner();
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
    // Private, as kmsim requires of a data dir that holds a store.
    std::fs::set_permissions(copy.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
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
    kmsim::store::verify_dir(dir, None, None).expect("a readable store")
}

/// [`verify_dir`] trusting only what was kept outside the data dir: the public key, and a digest when given.
fn verify_dir_keeping(
    dir: &Path,
    key: &str,
    kept: Option<&chain::Digest>,
) -> Result<chain::Verified, chain::Violation> {
    kmsim::store::verify_dir(dir, Some(ed25519_key(key)), kept.cloned()).expect("a readable store")
}

/// Starting a server on `dir`, which must be refused; the reason.
async fn refused_start(dir: &Path) -> String {
    let config =
        kmsim::server::ServerConfig { store: kmsim::store::Location::Dir(dir.to_path_buf()), ..Default::default() };
    match kmsim::server::start(config, std::future::pending()).await {
        Ok(running) => panic!("a server started on a tampered store at {}", running.local_addr),
        Err(e) => e.to_string(),
    }
}

/// Recomputes every record's link from genesis, as a forger who edited records would.
fn relink(conn: &Connection) {
    let seqs: Vec<i64> = {
        let mut stmt = conn.prepare("SELECT seq FROM audit_events ORDER BY seq").unwrap();
        stmt.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
    };
    let mut previous = chain::GENESIS;
    for seq in seqs {
        let record: Value = serde_json::from_str(&record_text(conn, seq)).unwrap();
        previous = chain::link(&previous, seq, &chain::canonical(&record));
        conn.execute("UPDATE audit_events SET chain = ?1 WHERE seq = ?2", params![&previous[..], seq]).unwrap();
    }
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
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
    let clean = chain::verify_export(&export, Some(key), None).unwrap().unwrap();
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
    assert_eq!(chain::verify_export(&modified, Some(key), None).unwrap().unwrap_err().seq, seq_of(target));

    let deleted = rebuild(owned.iter().filter(|l| *l != target).cloned().collect());
    assert_eq!(chain::verify_export(&deleted, Some(key), None).unwrap().unwrap_err().seq, seq_of(target) + 1);

    let mut swapped = owned.clone();
    let at = swapped.iter().position(|l| l == target).unwrap();
    swapped.swap(at, at + 1);
    assert!(chain::verify_export(&rebuild(swapped), Some(key), None).unwrap().is_err());

    let mut inserted = owned.clone();
    inserted.insert(at, target.to_owned());
    assert!(chain::verify_export(&rebuild(inserted), Some(key), None).unwrap().is_err());

    let other_key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
    assert!(chain::verify_export(&export, Some(other_key), None).unwrap().is_err(), "digests signed by another key");
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
    let verdict =
        server.audit().await.verify_audit_trail(pb::VerifyAuditTrailRequest::default()).await.unwrap().into_inner();
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

/// Issue 28, item 3: clearing the links and deleting the digests made verify (even with the key pinned) report
/// valid, and the next start linked the forged rows again and signed a digest over them.
#[tokio::test]
async fn removed_links_and_digests_are_violations_that_the_server_neither_mends_nor_signs_over() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public_key) = history(dir.path()).await;

    let unlinked = tampered_copy(dir.path(), |conn| {
        let text = record_text(conn, 6).replacen("Encrypt", "Decrypt", 1);
        conn.execute("UPDATE audit_events SET record = ?1 WHERE seq = 6", params![text]).unwrap();
        conn.execute("UPDATE audit_events SET chain = NULL", []).unwrap();
        conn.execute("DELETE FROM audit_digests", []).unwrap();
    });
    let violation = verify_dir_keeping(unlinked.path(), &public_key, None).unwrap_err();
    assert_eq!(violation.seq, 1, "{violation}");
    assert!(violation.reason.contains("no chain link"), "{violation}");
    let refused = refused_start(unlinked.path()).await;
    assert!(refused.contains("record 1") && refused.contains("kmsim audit verify"), "{refused}");
    let conn = Connection::open(unlinked.path().join("kmsim.db")).unwrap();
    assert_eq!(count(&conn, "SELECT count(*) FROM audit_events WHERE chain IS NOT NULL"), 0, "nothing linked again");
    assert_eq!(count(&conn, "SELECT count(*) FROM audit_digests"), 0, "nothing signed");
    drop(conn);

    // The links recomputed over the edit: each record fits the one before, but the store was stopped cleanly,
    // which signs its head, and no digest is left to cover any of it.
    let relinked = tampered_copy(dir.path(), |conn| {
        let text = record_text(conn, 6).replacen("Encrypt", "Decrypt", 1);
        conn.execute("UPDATE audit_events SET record = ?1, event_name = 'Decrypt' WHERE seq = 6", params![text])
            .unwrap();
        relink(conn);
        conn.execute("DELETE FROM audit_digests", []).unwrap();
    });
    let violation = verify_dir_keeping(relinked.path(), &public_key, None).unwrap_err();
    assert_eq!(violation.seq, 1, "{violation}");
    assert!(violation.reason.contains("records 1 to 17 are not covered by a signed digest"), "{violation}");
    let refused = refused_start(relinked.path()).await;
    assert!(refused.contains("records 1 to 17"), "{refused}");
    let conn = Connection::open(relinked.path().join("kmsim.db")).unwrap();
    assert_eq!(count(&conn, "SELECT count(*) FROM audit_digests"), 0, "nothing signed");
    drop(conn);

    // The signing key gone with the digests: no new key signs the trail on.
    let keyless = tampered_copy(dir.path(), |conn| {
        conn.execute("DELETE FROM meta WHERE name = 'audit_signing_key'", []).unwrap();
    });
    assert!(refused_start(keyless.path()).await.contains("signing key is gone"));
    assert!(verify_dir_keeping(keyless.path(), &public_key, None).is_ok(), "the pinned key still verifies it");
}

/// Verify says what it covered; a clean stop signs the head, so offline the digests reach the last record.
#[tokio::test]
async fn verify_reports_the_records_and_the_signed_range_it_covered() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    kms.disable_key(pb::DisableKeyRequest { key_id }).await.unwrap();
    let live = server.audit().await.verify_audit_trail(pb::VerifyAuditTrailRequest::default()).await.unwrap();
    let live = live.into_inner();
    assert!(live.valid, "{live:?}");
    assert_eq!((live.first_seq, live.last_seq, live.records), (1, 2, 2), "{live:?}");
    // Within a minute and a thousand records of starting, nothing is signed yet.
    assert_eq!((live.digests, live.unsigned_tail, live.last_digest.is_none()), (0, 2, true), "{live:?}");
    server.stop().await;

    let stopped = verify_dir(dir.path()).unwrap();
    assert_eq!((stopped.first_seq, stopped.last_seq, stopped.records), (1, 3, 3), "{stopped:?}");
    assert_eq!((stopped.digests, stopped.unsigned_tail, stopped.stopped_cleanly), (1, 0, Some(true)), "{stopped:?}");
    assert_eq!(stopped.last_digest.map(|d| d.seq), Some(3), "the shutdown signed the head");
}

/// The signing key is in the data dir, so the store alone cannot stop someone who holds it, or who cuts the
/// trail back to an earlier digest: a digest kept outside does, up to where it was taken.
#[tokio::test]
async fn a_digest_kept_outside_the_data_dir_catches_a_re_signed_or_cut_back_trail() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public_key) = history(dir.path()).await;
    let kept = verify_dir_keeping(dir.path(), &public_key, None).unwrap().last_digest.expect("a signed head");
    assert_eq!(kept.seq, 17);
    assert!(verify_dir_keeping(dir.path(), &public_key, Some(&kept)).is_ok());

    // Cut back to the export's digest at 16, with the shutdown's digest gone too.
    let cut = tampered_copy(dir.path(), |conn| {
        conn.execute("DELETE FROM audit_events WHERE seq = 17", []).unwrap();
        conn.execute("DELETE FROM audit_digests WHERE seq = 17", []).unwrap();
    });
    assert!(verify_dir_keeping(cut.path(), &public_key, None).is_ok(), "the store alone cannot tell");
    let violation = verify_dir_keeping(cut.path(), &public_key, Some(&kept)).unwrap_err();
    assert_eq!(violation.seq, 17, "{violation}");
    assert!(violation.reason.contains("kept outside"), "{violation}");

    // A forger with the signing key from the data dir edits record 3, links everything again and re-signs.
    let resigned = tampered_copy(dir.path(), |conn| {
        let text = record_text(conn, 3).replacen("127.0.0.1", "10.9.9.9", 1);
        conn.execute("UPDATE audit_events SET record = ?1 WHERE seq = 3", params![text]).unwrap();
        relink(conn);
        let seed: Vec<u8> =
            conn.query_row("SELECT value FROM meta WHERE name = 'audit_signing_key'", [], |row| row.get(0)).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed.try_into().unwrap());
        let signed: Vec<(i64, i64)> = {
            let mut stmt = conn.prepare("SELECT seq, time_ms FROM audit_digests").unwrap();
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap().map(Result::unwrap).collect()
        };
        for (seq, time_ms) in signed {
            let link: Vec<u8> =
                conn.query_row("SELECT chain FROM audit_events WHERE seq = ?1", [seq], |row| row.get(0)).unwrap();
            let digest = chain::Digest::sign(&key, seq, time_ms, link.try_into().unwrap());
            conn.execute(
                "UPDATE audit_digests SET link = ?1, signature = ?2 WHERE seq = ?3",
                params![&digest.link[..], &digest.signature[..], seq],
            )
            .unwrap();
        }
    });
    assert!(verify_dir_keeping(resigned.path(), &public_key, None).is_ok(), "the store alone cannot tell");
    let violation = verify_dir_keeping(resigned.path(), &public_key, Some(&kept)).unwrap_err();
    assert_eq!(violation.seq, 17, "{violation}");

    // The server checks a kept digest too.
    let server = TestServer::start_in(resigned.path()).await;
    let request = pb::VerifyAuditTrailRequest {
        last_digest: Some(pb::AuditDigest {
            seq: kept.seq,
            time_ms: kept.time_ms,
            link: chain::hex(&kept.link),
            signature: chain::hex(&kept.signature),
        }),
    };
    let verdict = server.audit().await.verify_audit_trail(request.clone()).await.unwrap().into_inner();
    assert!(!verdict.valid, "{verdict:?}");
    assert_eq!(verdict.first_bad_seq, 17, "{verdict:?}");
    server.stop().await;
    let server = TestServer::start_in(dir.path()).await;
    let verdict = server.audit().await.verify_audit_trail(request).await.unwrap().into_inner();
    assert!(verdict.valid, "{verdict:?}");
    assert_eq!(verdict.last_digest.map(|d| d.seq), Some(17));
    server.stop().await;
}

/// Issue 28, item 3: an export whose digest list was emptied, edited and linked again passed, even pinned.
#[tokio::test]
async fn an_export_must_be_signed_through_its_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let (export, public_key) = history(dir.path()).await;
    let key = ed25519_key(&public_key);
    let clean = chain::verify_export(&export, Some(key), None).unwrap().unwrap();
    assert_eq!((clean.first_seq, clean.last_seq, clean.unsigned_tail), (1, 16, 0), "{clean:?}");
    let kept = clean.last_digest.clone().expect("the export's digest");
    assert!(chain::verify_export(&export, Some(key), Some(kept.clone())).is_ok());

    // Record 6 becomes a Decrypt, every link after it is recomputed, and the digests are emptied.
    let mut previous = chain::GENESIS;
    let forged: Vec<String> = export
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).unwrap();
            if value.get("kmsimAuditDigests").is_some() {
                return r#"{"kmsimAuditDigests":[]}"#.to_owned();
            }
            let Some(at) = value.get("auditChain").cloned() else { return line.to_owned() };
            let seq = at["seq"].as_i64().unwrap();
            let Value::Object(mut record) = value.take() else { unreachable!() };
            record.shift_remove("auditChain");
            if seq == 6 {
                record["eventName"] = Value::from("Decrypt");
            }
            previous = chain::link(&previous, seq, &chain::canonical(&Value::Object(record.clone())));
            record.insert("auditChain".into(), serde_json::json!({ "seq": seq, "link": chain::hex(&previous) }));
            Value::Object(record).to_string()
        })
        .collect();
    let forged = forged.join("\n");
    let violation = chain::verify_export(&forged, Some(key), None).unwrap().unwrap_err();
    assert_eq!(violation.seq, 1, "{violation}");
    assert!(violation.reason.contains("no signed digest"), "{violation}");
    assert!(chain::verify_export(&forged, None, None).unwrap().is_err(), "nor with the file's own key");
    assert!(chain::verify_export(&forged, Some(key), Some(kept)).unwrap().is_err());
}

/// Issue 28, item 5: editing an indexed column hid a record from ListAuditEvents and time-bounded queries while
/// verify stayed valid. Every such column is held to its record.
#[tokio::test]
async fn an_edited_index_column_is_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    history(dir.path()).await;
    let edits = [
        ("key_id", "UPDATE audit_events SET key_id = 'someone-else' WHERE seq = 6"),
        ("error_code", "UPDATE audit_events SET error_code = 'Forbidden.KeyNotFound' WHERE seq = 6"),
        ("event_name", "UPDATE audit_events SET event_name = 'DescribeKey' WHERE seq = 6"),
        ("time_ms", "UPDATE audit_events SET time_ms = time_ms - 400 * 86400000 WHERE seq = 6"),
        ("access_key_id", "UPDATE audit_events SET access_key_id = 'LTAI5tForged0000001' WHERE seq = 6"),
        ("service_name", "UPDATE audit_events SET service_name = 'Other' WHERE seq = 6"),
        ("event_id", "UPDATE audit_events SET event_id = event_id || '-x' WHERE seq = 6"),
        ("time_ms", "UPDATE audit_events SET time_ms = 'soon' WHERE seq = 6"),
    ];
    for (column, sql) in edits {
        let copy = tampered_copy(dir.path(), |conn| assert_eq!(conn.execute(sql, []).unwrap(), 1));
        let violation = verify_dir(copy.path()).unwrap_err();
        assert_eq!(violation.seq, 6, "{sql}: {violation}");
        assert!(violation.reason.contains(&format!("its {column} column")), "{sql}: {violation}");
    }

    // Served, the edited key id hides the record from a listing by its key; verification names it.
    let copy = tampered_copy(dir.path(), |conn| {
        conn.execute("UPDATE audit_events SET key_id = 'someone-else' WHERE seq = 6", []).unwrap();
    });
    let (key_id, of_the_key): (String, i64) = {
        let conn = Connection::open(dir.path().join("kmsim.db")).unwrap();
        let key_id: String =
            conn.query_row("SELECT key_id FROM audit_events WHERE seq = 6", [], |row| row.get(0)).unwrap();
        let of_the_key =
            conn.query_row("SELECT count(*) FROM audit_events WHERE key_id = ?1", [&key_id], |row| row.get(0)).unwrap();
        (key_id, of_the_key)
    };
    let server = TestServer::start_in(copy.path()).await;
    let request = pb::ListAuditEventsRequest { key_id, page_size: 1000, ..Default::default() };
    let listed = server.audit().await.list_audit_events(request).await.unwrap().into_inner().events;
    assert_eq!(listed.len() as i64, of_the_key - 1, "the listing reads the column, so the record is hidden from it");
    let verdict = server.audit().await.verify_audit_trail(pb::VerifyAuditTrailRequest::default()).await.unwrap();
    let verdict = verdict.into_inner();
    assert_eq!((verdict.valid, verdict.first_bad_seq), (false, 6), "{verdict:?}");
    assert!(verdict.reason.contains("key_id"), "{verdict:?}");
    server.stop().await;
}
