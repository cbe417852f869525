//! The `kmsim audit …` commands, run as a real child process against an
//! in-process server: searching in the SLS syntax, exporting JSON lines and
//! CloudTrail files, verifying the hash chain (of the server, of an export
//! file and of a stopped server's data directory), the AccessKey report, and
//! tailing.

mod common;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::cli::*;
use common::*;
use kmsim::proto as pb;
use serde_json::Value;

/// Where offline commands are pointed: nothing listens there, so they must not need a server.
const NO_SERVER: &str = "http://127.0.0.1:1";

const DISABLED_QUERY: &str = r#"* AND (event.serviceName: "Kms") AND (event.errorCode:"Rejected.Disabled")"#;

#[track_caller]
fn parse_line(line: &str, what: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: a line that is not JSON ({e}): {line}"))
}

/// `ARGS --access-key-id KEY`: the global flag, sent as `x-kms-access-key-id`.
fn as_key<'a>(key: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    [args, &["--access-key-id", key]].concat()
}

async fn encrypt(kms: &mut Kms, key_id: &str, plaintext: &[u8]) -> Result<pb::EncryptResponse, tonic::Status> {
    let request = pb::EncryptRequest { key_id: key_id.to_owned(), plaintext: plaintext.to_vec(), ..Default::default() };
    kms.encrypt(request).await.map(tonic::Response::into_inner)
}

/// An enabled key with one successful Encrypt, and a disabled key with one Encrypt refused as Rejected.Disabled.
/// Returns (enabled key, disabled key).
async fn one_refused_encrypt(server: &TestServer, plaintext: &[u8]) -> (String, String) {
    let mut kms = server.kms().await;
    let enabled = create_key(&mut kms, "").await;
    let disabled = create_key(&mut kms, "").await;
    encrypt(&mut kms, &enabled, plaintext).await.expect("encrypt with an enabled key");
    kms.disable_key(pb::DisableKeyRequest { key_id: disabled.clone() }).await.expect("disable key");
    let refused = encrypt(&mut kms, &disabled, plaintext).await.expect_err("a disabled key refuses");
    assert_eq!(error_code(&refused), "Rejected.Disabled", "{refused:?}");
    (enabled, disabled)
}

/// The event ids the export just made covered, oldest first: everything committed before the export's own record
/// (the newest, as a listing does not see its own record).
async fn ids_before_the_export(server: &TestServer) -> Vec<String> {
    let events = all_audit_events(server).await;
    assert_eq!(events.first().map(|e| e.event_name.as_str()), Some("ExportAuditEvents"), "{events:#?}");
    events[1..].iter().rev().map(|e| e.event_id.clone()).collect()
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_query_lists_exactly_the_matching_records_in_the_chosen_format() {
    let server = TestServer::start().await;
    let (enabled, disabled) = one_refused_encrypt(&server, b"hello").await;

    let found = kmsim_json(&server, &["audit", "query", DISABLED_QUERY]).await;
    let events = array(&found, "events");
    assert_eq!(events.len(), 1, "exactly the refused Encrypt: {found:#}");
    assert!(found.get("nextPageToken").is_none(), "one page, so no token for a next: {found:#}");
    let native = &events[0];
    assert_eq!(str_field(native, "eventName"), "Encrypt", "{native:#}");
    assert_eq!(str_field(native, "errorCode"), "Rejected.Disabled", "{native:#}");
    assert_eq!(str_field(native, "keyId"), disabled, "{native:#}");
    assert_eq!(str_field(native, "outcome"), "Failure", "{native:#}");
    assert_eq!(str_field(native, "serviceName"), "Kms", "native by default: {native:#}");
    assert!(native.get("eventSource").is_none(), "native, not a rendering: {native:#}");
    let event_id = str_field(native, "eventId").to_owned();

    let found = kmsim_json(&server, &["audit", "query", DISABLED_QUERY, "--format", "cloudtrail"]).await;
    let events = array(&found, "events");
    assert_eq!(events.len(), 1, "{found:#}");
    let doc = &events[0];
    assert_eq!(str_field(doc, "eventSource"), "kms.amazonaws.com", "{doc:#}");
    assert_eq!(str_field(doc, "eventName"), "Encrypt", "{doc:#}");
    assert_eq!(str_field(doc, "errorCode"), "Rejected.Disabled", "{doc:#}");
    assert_eq!(str_field(doc, "eventID"), event_id, "the same record: {doc:#}");
    assert_eq!(str_field(doc, "eventType"), "AwsApiCall", "{doc:#}");

    // Both Encrypts and nothing else, newest first; and the successful one alone.
    let found = kmsim_json(&server, &["audit", "query", "eventName: Encrypt"]).await;
    let keys: Vec<&str> = array(&found, "events").iter().map(|e| str_field(e, "keyId")).collect();
    assert_eq!(keys, [disabled.as_str(), enabled.as_str()], "{found:#}");
    let found = kmsim_json(&server, &["audit", "query", "eventName: Encrypt and not outcome: Failure"]).await;
    let keys: Vec<&str> = array(&found, "events").iter().map(|e| str_field(e, "keyId")).collect();
    assert_eq!(keys, [enabled.as_str()], "{found:#}");

    // A page at a time: the token leads to the rest, and the last page has none.
    let first = kmsim_json(&server, &["audit", "query", "eventName: Encrypt", "--page-size", "1"]).await;
    let keys: Vec<&str> = array(&first, "events").iter().map(|e| str_field(e, "keyId")).collect();
    assert_eq!(keys, [disabled.as_str()], "{first:#}");
    let token = str_field(&first, "nextPageToken");
    let args = ["audit", "query", "eventName: Encrypt", "--page-size", "1", "--page-token", token];
    let last = kmsim_json(&server, &args).await;
    let keys: Vec<&str> = array(&last, "events").iter().map(|e| str_field(e, "keyId")).collect();
    assert_eq!(keys, [enabled.as_str()], "{last:#}");
    assert!(last.get("nextPageToken").is_none(), "{last:#}");

    // People get the summary table, which starts with it: no empty token row above.
    let table = kmsim(&server, &["audit", "query", DISABLED_QUERY]).await;
    let table = table.ok();
    assert!(table.starts_with("eventTime"), "{table}");
    assert!(table.contains("Rejected.Disabled") && table.contains(&disabled), "{table}");
    assert!(!table.contains(&enabled), "{table}");

    let run = kmsim(&server, &["audit", "query", "(eventName: Encrypt"]).await;
    let stderr = run.failed();
    assert!(stderr.contains("InvalidParameter (400)"), "{run:#?}");
    assert!(stderr.contains("column"), "names where the query goes wrong: {run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_export_writes_actiontrail_lines_and_cloudtrail_files() {
    const MARKER: &str = "kmsim-plaintext-marker-5c1e9a";
    let server = TestServer::start().await;
    one_refused_encrypt(&server, MARKER.as_bytes()).await;
    let dir = tempfile::tempdir().unwrap();

    // ActionTrail JSON lines: one per record, oldest first, and never the plaintext.
    let file = dir.path().join("trail.jsonl");
    let run =
        kmsim(&server, &["audit", "export", "--format", "actiontrail", "--out-file", file.to_str().unwrap()]).await;
    assert_eq!(run.ok(), "", "the lines go to the file: {run:#?}");
    let expected = ids_before_the_export(&server).await;
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(MARKER), "the plaintext reached the export: {text}");
    assert!(!text.contains(&BASE64.encode(MARKER)), "the plaintext (base64) reached the export: {text}");
    let lines: Vec<Value> = text.lines().map(|line| parse_line(line, "actiontrail export")).collect();
    let ids: Vec<&str> = lines.iter().map(|l| str_field(l, "eventId")).collect();
    assert_eq!(ids, expected, "one line per record, oldest first: {text}");
    for line in &lines {
        assert_eq!(str_field(line, "eventSource"), "kms.cn-hangzhou.aliyuncs.com", "ActionTrail: {line:#}");
        assert!(line.get("auditChain").is_none(), "only native exports carry the chain: {line:#}");
    }
    let refused: Vec<&Value> = lines.iter().filter(|l| l["errorCode"] == "Rejected.Disabled").collect();
    assert_eq!(refused.len(), 1, "{text}");
    assert_eq!(str_field(refused[0], "eventName"), "Encrypt");

    // CloudTrail files of at most two records each, named in order, and a summary of what was written.
    let out = dir.path().join("cloudtrail");
    let args = ["audit", "export", "--format", "cloudtrail", "--out-dir", out.to_str().unwrap()];
    let summary = kmsim_json(&server, &[&args[..], &["--records-per-file", "2"]].concat()).await;
    let expected = ids_before_the_export(&server).await;
    assert!(expected.len() >= 5, "enough records for several files: {expected:?}");
    assert_eq!(summary["records"], expected.len(), "{summary:#}");
    let files: Vec<&str> = array(&summary, "files").iter().map(|f| f.as_str().expect("a file name")).collect();
    let names: Vec<String> =
        (1..=expected.len().div_ceil(2)).map(|i| format!("kmsim_CloudTrail_{i:06}.json")).collect();
    assert_eq!(files, names, "{summary:#}");
    let mut on_disk: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    on_disk.sort();
    assert_eq!(on_disk, names, "nothing but the listed files");
    let mut ids = Vec::new();
    for name in &names {
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(!text.contains(MARKER), "{name}: the plaintext reached the export: {text}");
        let doc = parse_line(&text, name);
        assert_eq!(doc.as_object().map(|o| o.len()), Some(1), "{name}: only Records: {doc:#}");
        let records = array(&doc, "Records");
        assert!((1..=2).contains(&records.len()), "{name}: {doc:#}");
        for record in records {
            assert_eq!(str_field(record, "eventSource"), "kms.amazonaws.com", "{name}: {record:#}");
            ids.push(str_field(record, "eventID").to_owned());
        }
    }
    assert_eq!(ids, expected, "every record once, oldest first");

    let run = kmsim(&server, &["audit", "export", "--format", "cloudtrail"]).await;
    assert!(run.failed().contains("--out-dir"), "{run:#?}");
    assert_eq!(run.stdout, "", "{run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_checks_the_server_and_native_exports_and_names_a_changed_record() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    for i in 0..4u8 {
        encrypt(&mut kms, &key_id, &[i; 8]).await.expect("encrypt");
    }

    let verdict = kmsim_json(&server, &["audit", "verify"]).await;
    assert_eq!(verdict["valid"], true, "{verdict:#}");
    assert!(verdict["records"].as_u64().is_some_and(|n| n >= 5), "{verdict:#}");
    let table = kmsim(&server, &["audit", "verify"]).await;
    let valid_line = table.ok().lines().find(|l| l.starts_with("valid")).map(str::split_whitespace);
    assert_eq!(valid_line.map(Iterator::collect::<Vec<_>>), Some(vec!["valid", "true"]), "{table:#?}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trail.jsonl");
    let file_arg = file.to_str().unwrap();
    let run = kmsim(&server, &["audit", "export", "--out-file", file_arg]).await;
    assert_eq!(run.ok(), "", "{run:#?}");
    let exported = std::fs::read_to_string(&file).unwrap();
    let record_lines = exported.lines().filter(|l| l.contains("\"auditChain\"")).count();
    assert!(record_lines >= 5, "{exported}");

    let public_key = kmsim_json(&server, &["audit", "public-key"]).await;
    let hex = str_field(&public_key, "publicKeyHex").to_owned();
    assert_eq!(hex.len(), 64, "{public_key:#}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{public_key:#}");

    // The server is not needed to check a file.
    let verdict = kmsim_at(NO_SERVER, &["audit", "verify", "--file", file_arg, "--output", "json"]).await.json();
    assert_eq!(verdict["valid"], true, "{verdict:#}");
    assert_eq!(verdict["records"], record_lines, "{verdict:#}");
    let pinned = ["audit", "verify", "--file", file_arg, "--public-key", &hex, "--output", "json"];
    let verdict = kmsim_at(NO_SERVER, &pinned).await.json();
    assert_eq!(verdict["valid"], true, "{verdict:#}");
    assert_eq!(verdict["records"], record_lines, "{verdict:#}");
    // Another key did not sign the digests.
    let other = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let other_hex: String = other.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_ne!(other_hex, hex);
    let run = kmsim_at(NO_SERVER, &["audit", "verify", "--file", file_arg, "--public-key", &other_hex]).await;
    assert!(run.failed().contains("tampered"), "{run:#?}");

    // One record changed: the first Encrypt becomes a Decrypt.
    let mut seq = None;
    let tampered: Vec<String> = exported
        .lines()
        .map(|line| {
            let value = parse_line(line, "native export");
            if seq.is_none() && value["eventName"] == "Encrypt" && value.get("auditChain").is_some() {
                seq = value["auditChain"]["seq"].as_i64();
                line.replace("Encrypt", "Decrypt")
            } else {
                line.to_owned()
            }
        })
        .collect();
    let seq = seq.unwrap_or_else(|| panic!("no Encrypt record with auditChain.seq in {exported}"));
    let tampered_file = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered_file, tampered.join("\n") + "\n").unwrap();
    let run = kmsim_at(NO_SERVER, &["audit", "verify", "--file", tampered_file.to_str().unwrap()]).await;
    let stderr = run.failed();
    assert!(stderr.contains(&format!("tampered: record {seq} ")), "names record {seq}: {run:#?}");
    assert_eq!(run.stdout, "", "{run:#?}");
    let run =
        kmsim_at(NO_SERVER, &["audit", "verify", "--file", tampered_file.to_str().unwrap(), "--public-key", &hex])
            .await;
    assert!(run.failed().contains(&format!("tampered: record {seq} ")), "{run:#?}");

    // The original file still verifies.
    let verdict = kmsim_at(NO_SERVER, &["audit", "verify", "--file", file_arg, "--output", "json"]).await.json();
    assert_eq!(verdict["valid"], true, "{verdict:#}");
}

/// A copy of the store files in `dir`, with `sql` run against the copy.
fn tampered_copy(dir: &Path, sql: &str) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for name in ["kmsim.db", "kmsim.db-wal", "kmsim.db-shm"] {
        if dir.join(name).exists() {
            std::fs::copy(dir.join(name), copy.path().join(name)).unwrap();
        }
    }
    let conn = rusqlite::Connection::open(copy.path().join("kmsim.db")).unwrap();
    assert_eq!(conn.execute(sql, []).unwrap(), 1, "one row changed by {sql}");
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_checks_a_stopped_servers_data_dir_and_names_a_changed_record() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    for i in 0..4u8 {
        encrypt(&mut kms, &key_id, &[i; 8]).await.expect("encrypt");
    }
    server.stop().await;
    let dir_arg = dir.path().to_str().unwrap();

    let verdict = kmsim_at(NO_SERVER, &["audit", "verify", "--data-dir", dir_arg, "--output", "json"]).await.json();
    assert_eq!(verdict["valid"], true, "{verdict:#}");
    assert_eq!(verdict["records"], 5, "CreateKey and four Encrypts: {verdict:#}");

    {
        let conn = rusqlite::Connection::open(dir.path().join("kmsim.db")).unwrap();
        let record: String =
            conn.query_row("SELECT record FROM audit_events WHERE seq = 3", [], |row| row.get(0)).unwrap();
        assert!(record.contains("\"eventName\":\"Encrypt\""), "record 3 is an Encrypt: {record}");
    }
    let copy = tampered_copy(
        dir.path(),
        "UPDATE audit_events SET record = replace(record, 'Encrypt', 'Decrypt') WHERE seq = 3",
    );
    let run = kmsim_at(NO_SERVER, &["audit", "verify", "--data-dir", copy.path().to_str().unwrap()]).await;
    let stderr = run.failed();
    assert!(stderr.contains("tampered: record 3 "), "names record 3: {run:#?}");
    assert_eq!(run.stdout, "", "{run:#?}");

    // The original is untouched and still verifies.
    let verdict = kmsim_at(NO_SERVER, &["audit", "verify", "--data-dir", dir_arg, "--output", "json"]).await.json();
    assert_eq!(verdict["valid"], true, "{verdict:#}");
}

/// Verify prints what it covered, and holds the trail to a digest kept from an earlier run, which catches a trail
/// cut back to an earlier digest that the store alone cannot tell from an honest one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_reports_its_coverage_and_holds_the_trail_to_a_kept_digest() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    for i in 0..3u8 {
        encrypt(&mut kms, &key_id, &[i; 8]).await.expect("encrypt");
    }
    let live = kmsim_json(&server, &["audit", "verify"]).await;
    assert_eq!((live["firstSeq"].as_i64(), live["lastSeq"].as_i64()), (Some(1), Some(4)), "{live:#}");
    for field in ["digests", "signedThrough", "unsignedTail"] {
        assert!(live[field].is_number(), "{field}: {live:#}");
    }
    assert!(live.get("stoppedCleanly").is_none(), "a running server is not stopped: {live:#}");
    // The export signs a digest at the head it reads through.
    kmsim(&server, &["audit", "export", "--out-file", dir.path().join("t.jsonl").to_str().unwrap()]).await.ok();
    server.stop().await;
    let dir_arg = dir.path().to_str().unwrap();

    let stopped = kmsim_at(NO_SERVER, &["audit", "verify", "--data-dir", dir_arg, "--output", "json"]).await.json();
    assert_eq!(stopped["valid"], true, "{stopped:#}");
    assert_eq!(stopped["stoppedCleanly"], true, "{stopped:#}");
    assert_eq!(stopped["unsignedTail"], 0, "{stopped:#}");
    assert_eq!(stopped["signedThrough"], stopped["lastSeq"], "a clean stop signs the head: {stopped:#}");
    assert_eq!(stopped["lastDigest"]["seq"], stopped["lastSeq"], "{stopped:#}");
    let table = kmsim_at(NO_SERVER, &["audit", "verify", "--data-dir", dir_arg]).await;
    for field in ["firstSeq", "lastSeq", "signedThrough", "unsignedTail", "stoppedCleanly", "lastDigest"] {
        assert!(table.ok().lines().any(|l| l.starts_with(field)), "{field}: {table:#?}");
    }

    let kept = kmsim_at(NO_SERVER, &["audit", "verify", "--data-dir", dir_arg, "--query", "lastDigest"]).await;
    let kept_file = dir.path().join("kept-digest.json");
    std::fs::write(&kept_file, kept.ok()).unwrap();
    let last_seq = stopped["lastSeq"].as_i64().unwrap();
    let keeping = ["audit", "verify", "--data-dir", dir_arg, "--last-digest", kept_file.to_str().unwrap()];
    let verdict = kmsim_at(NO_SERVER, &[&keeping[..], &["--output", "json"]].concat()).await.json();
    assert_eq!(verdict["matchesKeptDigest"], last_seq, "{verdict:#}");

    // The shutdown's record and digest removed: what is left ends at the export's digest, signed and clean.
    let cut = tampered_copy(dir.path(), &format!("DELETE FROM audit_events WHERE seq = {last_seq}"));
    let conn = rusqlite::Connection::open(cut.path().join("kmsim.db")).unwrap();
    conn.execute("DELETE FROM audit_digests WHERE seq = ?1", [last_seq]).unwrap();
    drop(conn);
    let cut_arg = cut.path().to_str().unwrap();
    let verdict = kmsim_at(NO_SERVER, &["audit", "verify", "--data-dir", cut_arg, "--output", "json"]).await.json();
    assert_eq!(verdict["valid"], true, "the store alone cannot tell: {verdict:#}");
    let run = kmsim_at(NO_SERVER, &["audit", "verify", "--data-dir", cut_arg, "--last-digest", &kept.stdout]).await;
    assert!(run.failed().contains(&format!("tampered: record {last_seq}")), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_access_key_reports_what_an_access_key_was_used_for() {
    const ACCESS_KEY: &str = "LTAI5tAuditCliTest01";
    const OTHER_KEY: &str = "LTAI5tSomeoneElse0002";
    let server = TestServer::start().await;

    let created = kmsim_json(&server, &as_key(ACCESS_KEY, &["key", "create"])).await;
    let key_id = str_field(&created, "keyId").to_owned();
    let key_arn = str_field(&created, "arn").to_owned();
    kmsim_json(&server, &as_key(ACCESS_KEY, &["encrypt", "--plaintext", "hi", "--key-id", &key_id])).await;
    kmsim_json(&server, &as_key(ACCESS_KEY, &["key", "describe", &key_id])).await;
    // Someone else's call, and a call with no AccessKey, are not in the report.
    kmsim_json(&server, &as_key(OTHER_KEY, &["key", "disable", &key_id])).await;
    kmsim_json(&server, &["key", "enable", &key_id]).await;

    let report = kmsim_json(&server, &["audit", "access-key", ACCESS_KEY]).await;
    assert_eq!(str_field(&report, "accessKeyId"), ACCESS_KEY, "{report:#}");
    let services = array(&report, "services");
    assert_eq!(services.len(), 1, "{report:#}");
    let kms = &services[0];
    assert_eq!(str_field(kms, "serviceName"), "Kms", "{report:#}");
    let names = |list: &str| -> Vec<String> {
        let mut names: Vec<String> = array(kms, list).iter().map(|i| str_field(i, "name").to_owned()).collect();
        names.sort();
        names
    };
    assert_eq!(names("eventNames"), ["CreateKey", "DescribeKey", "Encrypt"], "{report:#}");
    assert_eq!(names("sourceIpAddresses"), ["127.0.0.1"], "{report:#}");
    assert_eq!(names("resources"), [key_arn], "{report:#}");
    assert_eq!(array(kms, "sourceIpAddresses")[0]["count"], 3, "{report:#}");
    for item in array(kms, "eventNames") {
        assert_eq!(item["count"], 1, "{report:#}");
        assert!(!str_field(item, "lastAccessTime").is_empty(), "{report:#}");
    }

    let other = kmsim_json(&server, &["audit", "access-key", OTHER_KEY]).await;
    let services = array(&other, "services");
    assert_eq!(services.len(), 1, "{other:#}");
    let names: Vec<&str> = array(&services[0], "eventNames").iter().map(|i| str_field(i, "name")).collect();
    assert_eq!(names, ["DisableKey"], "{other:#}");
    let unused = kmsim_json(&server, &["audit", "access-key", "LTAI5tNeverUsed000003"]).await;
    assert!(array(&unused, "services").is_empty(), "{unused:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_tail_prints_the_next_matching_record_and_exits_after_count() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;

    let args = ["audit", "tail", "--count", "1", "--output", "json", "eventName: Encrypt"];
    let mut tail = Streaming::start(&server, &args);
    tail.connected(&server, "TailAuditEvents").await;

    // A record the query does not match comes first.
    kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() }).await.expect("describe key");
    encrypt(&mut kms, &key_id, b"tail me").await.expect("encrypt");

    let run = tail.finish().await;
    let lines: Vec<&str> = run.ok().lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line: {run:#?}");
    let record = parse_line(lines[0], "audit tail");
    assert_eq!(str_field(&record, "eventName"), "Encrypt", "{record:#}");
    assert_eq!(str_field(&record, "keyId"), key_id, "{record:#}");
    assert_eq!(str_field(&record, "outcome"), "Success", "{record:#}");
    let encrypts: Vec<pb::AuditEvent> =
        all_audit_events(&server).await.into_iter().filter(|e| e.event_name == "Encrypt").collect();
    assert_eq!(encrypts.len(), 1, "{encrypts:#?}");
    assert_eq!(str_field(&record, "eventId"), encrypts[0].event_id, "the committed record: {record:#}");
}

/// `audit query` says how many records matched, including none (it printed a bare `(none)`), and whether more
/// match past the page; the JSON carries the page's `count`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_query_says_how_many_records_matched() {
    let server = TestServer::start().await;
    one_refused_encrypt(&server, b"counted").await;

    let none = kmsim(&server, &["audit", "query", "eventName: Decrypt"]).await;
    assert_eq!(none.ok(), "0 matching records.\n", "{none:#?}");
    let one = kmsim(&server, &["audit", "query", DISABLED_QUERY]).await;
    assert!(one.ok().ends_with("\n\n1 matching record.\n"), "{one:#?}");
    let two = kmsim(&server, &["audit", "query", "eventName: Encrypt"]).await;
    assert!(two.ok().ends_with("\n\n2 matching records.\n"), "{two:#?}");

    let first = kmsim_json(&server, &["audit", "query", "eventName: Encrypt", "--page-size", "1"]).await;
    assert_eq!(first["count"], 1, "{first:#}");
    let token = str_field(&first, "nextPageToken").to_owned();
    let page = kmsim(&server, &["audit", "query", "eventName: Encrypt", "--page-size", "1"]).await;
    let footer = format!("\n\n1 matching record shown; more match: --page-token {token}\n");
    assert!(page.ok().ends_with(&footer), "{page:#?}");
    let none = kmsim_json(&server, &["audit", "query", "eventName: Decrypt"]).await;
    assert_eq!((none["count"].as_u64(), array(&none, "events").len()), (Some(0), 0), "{none:#}");
}

/// SLS's analytic statements (`| select count(*)`) are not kmsim's: refused by the server, for every client and
/// every command that takes a query, naming what is unsupported, rather than read as search terms that match
/// nothing (which printed `(none)` and exited 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analytic_statement_is_refused_naming_it() {
    let server = TestServer::start().await;
    one_refused_encrypt(&server, b"piped").await;
    const PIPED: &str = "eventName: Decrypt | select count(*)";

    for args in [&["audit", "query", PIPED][..], &["audit", "export", PIPED], &["audit", "tail", PIPED]] {
        let run = kmsim(&server, args).await;
        let stderr = run.failed();
        assert!(
            stderr.starts_with(r#"InvalidParameter (400): The specified parameter "Query" is not valid."#),
            "{run:#?}"
        );
        assert!(
            stderr.contains(r#"Unsupported at column 20: the analytic statement after '|', "select count(*)""#),
            "{run:#?}"
        );
        assert!(run.stdout.is_empty(), "{run:#?}");
    }

    let mut audit = server.audit().await;
    let request = pb::QueryAuditEventsRequest { query: PIPED.into(), ..Default::default() };
    let status = audit.query_audit_events(request).await.expect_err("refused");
    assert_invalid(&status, "Query", "QueryAuditEvents with an analytic statement");

    // A `|` that is part of a value is searched for like any other character.
    let quoted = kmsim_json(&server, &["audit", "query", r#"eventName: Encrypt and not "a|b""#]).await;
    assert_eq!(array(&quoted, "events").len(), 2, "{quoted:#}");
}

/// `audit tail` honours `--output` like every other command: a row per record for people (by default), and the
/// record in `--format` with `--output json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_tail_prints_a_row_per_record_by_default() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    kms.disable_key(pb::DisableKeyRequest { key_id: key_id.clone() }).await.expect("disable key");

    let mut tail =
        Streaming::start(&server, &["audit", "tail", "--count", "1", "--format", "actiontrail", "eventName: Encrypt"]);
    tail.connected(&server, "TailAuditEvents").await;
    encrypt(&mut kms, &key_id, b"refused").await.expect_err("a disabled key refuses");
    let run = tail.finish().await;
    let lines: Vec<Vec<&str>> = run.ok().lines().map(|line| line.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 2, "a heading and one row: {run:#?}");
    assert_eq!(lines[0], ["eventTime", "eventName", "outcome", "errorCode", "keyId", "clientIp", "requestId"]);
    assert!(serde_json::from_str::<Value>(&run.stdout).is_err(), "not JSON: {run:#?}");
    let encrypt = all_audit_events(&server).await.into_iter().find(|e| e.event_name == "Encrypt").expect("recorded");
    let expected = [
        encrypt.event_time.as_str(),
        "Encrypt",
        "Failure",
        "Rejected.Disabled",
        &key_id,
        "127.0.0.1",
        &encrypt.request_id,
    ];
    assert_eq!(lines[1], expected, "{run:#?}");
}
