//! Searching the audit trail with the Simple Log Service syntax, its
//! ActionTrail and CloudTrail renderings, export, live tail and the AccessKey
//! report, against a server that made matching and non-matching calls.

mod common;

use std::collections::BTreeSet;

use common::*;
use kmsim::proto as pb;
use serde_json::Value;
use tokio_stream::StreamExt;

const MARKER: &str = "PLAINTEXT-MARKER-7d1f";
const ACCESS_KEY: &str = "LTAI5tQueryTester01";

/// A request carrying an access key id and a request id the test can find again.
fn request<T>(message: T, request_id: &str, access_key: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("x-request-id", request_id.parse().unwrap());
    if let Some(access_key) = access_key {
        request.metadata_mut().insert("x-kms-access-key-id", access_key.parse().unwrap());
    }
    request
}

fn encrypt(key_id: &str) -> pb::EncryptRequest {
    pb::EncryptRequest {
        key_id: key_id.into(),
        plaintext: MARKER.as_bytes().to_vec(),
        encryption_context: [("app".to_string(), "billing".to_string())].into(),
    }
}

struct Fixture {
    server: TestServer,
    key_a: String,
    key_b: String,
    disabled: String,
    pending: String,
}

/// Reads on two keys, with and without an access key; failures on a disabled
/// key and on a key pending deletion; a management call.
async fn fixture() -> Fixture {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let (key_a, key_b) = (create_key(&mut kms, "").await, create_key(&mut kms, "").await);
    let (disabled, pending) = (create_key(&mut kms, "").await, create_key(&mut kms, "").await);
    kms.describe_key(request(pb::DescribeKeyRequest { key_id: key_a.clone() }, "describe-a", Some(ACCESS_KEY)))
        .await
        .unwrap();
    kms.encrypt(request(encrypt(&key_a), "encrypt-a", None)).await.unwrap();
    kms.encrypt(request(encrypt(&key_b), "encrypt-b", Some(ACCESS_KEY))).await.unwrap();
    let sealed = kms.encrypt(encrypt(&disabled)).await.unwrap().into_inner().ciphertext_blob;
    kms.disable_key(request(pb::DisableKeyRequest { key_id: disabled.clone() }, "disable", None)).await.unwrap();
    let decrypt = pb::DecryptRequest { ciphertext_blob: sealed, ..Default::default() };
    kms.decrypt(request(decrypt, "decrypt-disabled", None)).await.unwrap_err();
    kms.encrypt(request(encrypt(&disabled), "encrypt-disabled", Some("LTAI5tOtherCaller02"))).await.unwrap_err();
    let schedule = pb::ScheduleKeyDeletionRequest { key_id: pending.clone(), pending_window_in_days: 7 };
    kms.schedule_key_deletion(schedule).await.unwrap();
    kms.encrypt(request(encrypt(&pending), "encrypt-pending", None)).await.unwrap_err();
    Fixture { server, key_a, key_b, disabled, pending }
}

async fn query(server: &TestServer, text: &str, format: &str) -> Result<Vec<pb::AuditEventResult>, tonic::Status> {
    let mut audit = server.audit().await;
    let mut results = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::QueryAuditEventsRequest {
            query: text.into(),
            page_size: 3,
            page_token,
            format: format.into(),
            ..Default::default()
        };
        let page = audit.query_audit_events(request).await?.into_inner();
        results.extend(page.events);
        if page.next_page_token.is_empty() {
            return Ok(results);
        }
        page_token = page.next_page_token;
    }
}

fn ids(results: &[pb::AuditEventResult]) -> BTreeSet<String> {
    results.iter().map(|r| r.event.as_ref().unwrap().event_id.clone()).collect()
}

/// Which records a query should return, decided in plain Rust.
type Pick<'a> = Box<dyn Fn(&pb::AuditEvent) -> bool + 'a>;

/// The records a predicate picks from the whole trail, decided without the query engine.
async fn expected(server: &TestServer, keep: impl Fn(&pb::AuditEvent) -> bool) -> BTreeSet<String> {
    all_audit_events(server).await.iter().filter(|e| keep(e)).map(|e| e.event_id.clone()).collect()
}

#[tokio::test]
async fn every_seed_query_returns_exactly_the_matching_records() {
    let f = fixture().await;
    let server = &f.server;
    let kms_read_on_a = format!("* AND (event.serviceName: \"Kms\") AND (event.eventRW: \"Read\") AND \"{}\"", f.key_a);
    let cases: Vec<(String, Pick<'_>)> = vec![
        (kms_read_on_a, Box::new(|e| e.service_name == "Kms" && e.event_rw == "Read" && e.key_id == f.key_a)),
        (
            "* AND (event.serviceName: \"Kms\") AND (event.errorCode:\"Rejected.Disabled\")".into(),
            Box::new(|e| e.service_name == "Kms" && e.error_code == "Rejected.Disabled"),
        ),
        (
            "* AND (event.serviceName: \"Kms\") AND (event.errorCode:\"Rejected.PendingDeletion\")".into(),
            Box::new(|e| e.service_name == "Kms" && e.error_code == "Rejected.PendingDeletion"),
        ),
        (
            "* AND (event.serviceName: \"Kms\") AND (event.errorCode:\"Rejected.Unavailable\")".into(),
            Box::new(|e| e.error_code == "Rejected.Unavailable"),
        ),
        (
            "* AND (event.serviceName: \"Kms\") AND (event.eventName: \"GetSecretValue\") AND \"SecretName\"".into(),
            Box::new(|e| e.event_name == "GetSecretValue"),
        ),
        ("event.userIdentity.accessKeyId: *".into(), Box::new(|e| !e.access_key_id.is_empty())),
        (
            "event.errorCode: * AND event.userIdentity.accessKeyId: *".into(),
            Box::new(|e| !e.error_code.is_empty() && !e.access_key_id.is_empty()),
        ),
    ];
    // Query calls are themselves audited (service KmsimAudit); snapshot the expectation first.
    for (text, keep) in &cases {
        let want = expected(server, |e| keep(e)).await;
        let got = ids(&query(server, text, "").await.unwrap_or_else(|s| panic!("{text}: {s:?}")));
        assert_eq!(got, want, "{text}");
    }
    let disabled = ids(&query(server, "event.errorCode:\"Rejected.Disabled\"", "").await.unwrap());
    assert_eq!(disabled.len(), 2, "the Encrypt and the Decrypt on the disabled key");
    let pending = query(server, "errorCode: Rejected.PendingDeletion", "").await.unwrap();
    assert_eq!(pending[0].event.as_ref().unwrap().key_id, f.pending, "native field names work too");
    let with_key = query(server, "event.userIdentity.accessKeyId: * and event.serviceName: Kms", "").await.unwrap();
    assert_eq!(with_key.len(), 3, "describe-a, encrypt-b and encrypt-disabled carry access keys");
    assert!(with_key.iter().all(|r| r.event.as_ref().unwrap().key_id != f.disabled || r.json.contains("Disabled")));
    let _ = &f.key_b;
    f.server.stop().await;
}

#[tokio::test]
async fn operators_wildcards_and_numbers_work_over_grpc() {
    let f = fixture().await;
    let server = &f.server;
    let cases: Vec<(&str, Pick<'_>)> = vec![
        (
            "eventName: Encrypt or eventName: DisableKey",
            Box::new(|e| e.event_name == "Encrypt" || e.event_name == "DisableKey"),
        ),
        (
            "eventName: Encr* and not outcome: Failure",
            Box::new(|e| e.event_name == "Encrypt" && e.outcome == "Success"),
        ),
        ("event.eventName: Encr?pt", Box::new(|e| e.event_name == "Encrypt")),
        ("httpStatus >= 400 and serviceName: Kms", Box::new(|e| e.http_status >= 400 && e.service_name == "Kms")),
        (
            "httpStatus in [400 410) and serviceName: Kms",
            Box::new(|e| (400..410).contains(&e.http_status) && e.service_name == "Kms"),
        ),
    ];
    for (text, keep) in &cases {
        let want = expected(server, |e| keep(e)).await;
        let got = ids(&query(server, text, "").await.unwrap_or_else(|s| panic!("{text}: {s:?}")));
        assert_eq!(got, want, "{text}");
        assert!(!got.is_empty(), "{text} matched nothing, so it proves little");
    }
    f.server.stop().await;
}

#[tokio::test]
async fn a_malformed_query_is_invalid_parameter_naming_the_column() {
    let server = TestServer::start().await;
    let mut audit = server.audit().await;
    for (text, column) in [("(eventName: Encrypt", "column"), ("eventName: *crypt", "column 12"), ("a and", "column")] {
        let request = pb::QueryAuditEventsRequest { query: text.into(), ..Default::default() };
        let status = audit.query_audit_events(request).await.unwrap_err();
        assert_invalid(&status, "Query", text);
        assert!(status.message().contains(column), "{text}: {}", status.message());
    }
    let bad_format = pb::QueryAuditEventsRequest { format: "xml".into(), ..Default::default() };
    assert_invalid(&audit.query_audit_events(bad_format).await.unwrap_err(), "Format", "xml");
    let bad_time = pb::QueryAuditEventsRequest { start_time: "yesterday".into(), ..Default::default() };
    assert_invalid(&audit.query_audit_events(bad_time).await.unwrap_err(), "StartTime", "a bad time");
    server.stop().await;
}

/// A query's cost is bounded before anything is read: its text and its terms.
#[tokio::test]
async fn a_query_too_long_or_with_too_many_terms_is_refused_before_it_reads() {
    let server = TestServer::start().await;
    let mut audit = server.audit().await;
    let many_terms = (0..3000).map(|i| format!("eventName: E{i}")).collect::<Vec<_>>().join(" or ");
    let sixty_five = (0..65).map(|i| format!("k{i}")).collect::<Vec<_>>().join(" or ");
    for (text, says) in [(many_terms.as_str(), "4096"), (sixty_five.as_str(), "64")] {
        let request = pb::QueryAuditEventsRequest { query: text.to_owned(), ..Default::default() };
        let status = audit.query_audit_events(request).await.expect_err("refused");
        assert_invalid(&status, "Query", &text[..20]);
        assert!(status.message().contains(says), "{}", status.message());
        let export = pb::ExportAuditEventsRequest { query: text.to_owned(), ..Default::default() };
        let status = audit.export_audit_events(export).await.expect_err("refused");
        assert_invalid(&status, "Query", "an export");
    }
    let sixty_four = (0..64).map(|i| format!("k{i}")).collect::<Vec<_>>().join(" or ");
    let request = pb::QueryAuditEventsRequest { query: sixty_four, ..Default::default() };
    audit.query_audit_events(request).await.expect("64 terms are allowed");
    server.stop().await;
}

/// Calls that each leave a record as large as a client can make one (a 16 KB encryption context, refused):
/// every term of a query that matches none of them reads all of each.
const LARGE_RECORDS: usize = 24;

/// The longest search a query can ask for, of records that `query` keeps, over every record: 63 keywords on
/// any field, which no record holds, before `query`.
fn longest_search(query: &str) -> String {
    let absent = (0..63).map(|i| format!("absent{i}x"));
    absent.chain(std::iter::once(query.to_owned())).collect::<Vec<_>>().join(" or ")
}

/// A search reads on a connection of its own, on an in-memory server too: calls that commit while a long search
/// is reading are answered before it is, not queued behind it. The search is for the probes' own records, so
/// which probes committed before it began reading is known exactly: the ones it found.
#[tokio::test]
async fn calls_commit_while_a_long_search_reads_an_in_memory_store() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let mut filling = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (mut kms, key_id) = (kms.clone(), key_id.clone());
        filling.spawn(async move {
            for _ in 0..LARGE_RECORDS / 8 {
                let context = [("k".to_owned(), "v".repeat(16_000))].into();
                let large = pb::GenerateDataKeyRequest {
                    key_id: key_id.clone(),
                    encryption_context: context,
                    ..Default::default()
                };
                kms.generate_data_key(large).await.expect_err("a 16 KB context is refused");
            }
        });
    }
    filling.join_all().await;

    let search = pb::QueryAuditEventsRequest {
        query: longest_search("eventName: Encrypt"),
        page_size: 1000,
        ..Default::default()
    };
    let mut audit = server.audit().await;
    let searching = tokio::spawn(async move { audit.query_audit_events(search).await });
    let mut answered_first = Vec::new();
    for probe in 0.. {
        let request_id = format!("probe-{probe}");
        kms.encrypt(request(encrypt(&key_id), &request_id, None)).await.expect("encrypt");
        if searching.is_finished() {
            break;
        }
        answered_first.push(request_id);
    }
    let found = searching.await.unwrap().expect("the search finishes").into_inner();
    assert!(found.next_page_token.is_empty(), "one page holds the probes that committed first");
    let committed_first: BTreeSet<String> =
        found.events.iter().map(|r| r.event.as_ref().unwrap().client_request_id.clone()).collect();
    let committed_while_searching = answered_first.iter().filter(|id| !committed_first.contains(*id)).count();
    assert!(
        committed_while_searching >= 10,
        "of the {} probes answered before the search, {} had committed before it began reading and only \
         {committed_while_searching} while it read: commits waited for the search",
        answered_first.len(),
        committed_first.len(),
    );
    server.stop().await;
}

fn json_of(results: &[pb::AuditEventResult], request_id: &str) -> Value {
    let result = results.iter().find(|r| r.event.as_ref().unwrap().client_request_id == request_id).expect(request_id);
    serde_json::from_str(&result.json).unwrap()
}

#[tokio::test]
async fn records_render_as_actiontrail_and_cloudtrail_without_plaintext() {
    let f = fixture().await;
    let server = &f.server;
    let actiontrail = query(server, "serviceName: Kms", "actiontrail").await.unwrap();
    let cloudtrail = query(server, "serviceName: Kms", "cloudtrail").await.unwrap();
    let native = query(server, "serviceName: Kms", "native").await.unwrap();
    for result in actiontrail.iter().chain(&cloudtrail).chain(&native) {
        assert!(!result.json.contains(MARKER), "plaintext leaked into {}", result.json);
        assert!(!result.json.contains("UExBSU5URVhU"), "base64 plaintext leaked into {}", result.json);
    }

    let encrypt = json_of(&actiontrail, "encrypt-a");
    for field in [
        "eventId",
        "eventVersion",
        "eventTime",
        "eventName",
        "eventRW",
        "eventType",
        "eventCategory",
        "eventSource",
        "serviceName",
        "apiVersion",
        "acsRegion",
        "sourceIpAddress",
        "userAgent",
        "requestId",
        "requestParameters",
        "responseElements",
        "errorCode",
        "errorMessage",
        "resourceName",
        "resourceType",
        "referencedResources",
        "isGlobal",
        "recipientAccountId",
        "userIdentity",
    ] {
        assert!(encrypt.get(field).is_some(), "ActionTrail Encrypt lacks {field}: {encrypt}");
    }
    assert_eq!(encrypt["eventType"], "ApiCall");
    assert_eq!(encrypt["eventSource"], "kms.cn-hangzhou.aliyuncs.com");
    assert_eq!(encrypt["errorCode"], "");
    assert_eq!(encrypt["requestParameters"]["EncryptionContext"]["app"], "billing", "context kept, as CloudTrail does");
    assert_eq!(encrypt["userIdentity"]["type"], "root-account");
    let failed = json_of(&actiontrail, "decrypt-disabled");
    assert_eq!(
        (failed["eventName"].as_str(), failed["errorCode"].as_str()),
        (Some("Decrypt"), Some("Rejected.Disabled"))
    );
    let failed = json_of(&actiontrail, "encrypt-disabled");
    assert_eq!(failed["errorCode"], "Rejected.Disabled");
    assert_eq!(failed["userIdentity"]["accessKeyId"], "LTAI5tOtherCaller02");
    assert_eq!(json_of(&actiontrail, "disable")["eventRW"], "Write");

    let encrypt = json_of(&cloudtrail, "encrypt-a");
    for field in [
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "requestParameters",
        "responseElements",
        "requestID",
        "eventID",
        "readOnly",
        "resources",
        "eventType",
        "managementEvent",
        "recipientAccountId",
        "eventCategory",
    ] {
        assert!(encrypt.get(field).is_some(), "CloudTrail Encrypt lacks {field}: {encrypt}");
    }
    assert_eq!(
        (encrypt["eventVersion"].as_str(), encrypt["eventSource"].as_str()),
        (Some("1.11"), Some("kms.amazonaws.com"))
    );
    assert!(encrypt["responseElements"].is_null());
    assert_eq!(encrypt["readOnly"], true);
    assert!(encrypt.get("errorCode").is_none());
    assert_eq!(encrypt["resources"][0]["type"], "AWS::KMS::Key");
    let failed = json_of(&cloudtrail, "decrypt-disabled");
    assert_eq!(
        (failed["eventName"].as_str(), failed["errorCode"].as_str()),
        (Some("Decrypt"), Some("Rejected.Disabled"))
    );
    assert!(failed["errorMessage"].as_str().unwrap().contains("Disabled"));
    assert!(failed["responseElements"].is_null());
    let disable = json_of(&cloudtrail, "disable");
    assert_eq!(disable["readOnly"], false);
    assert!(disable["responseElements"]["keyId"].as_str().unwrap().ends_with(&f.disabled), "{disable}");
    f.server.stop().await;
}

async fn export(server: &TestServer, text: &str, format: &str, per_chunk: i32) -> Vec<pb::ExportChunk> {
    let request = pb::ExportAuditEventsRequest {
        query: text.into(),
        format: format.into(),
        records_per_chunk: per_chunk,
        ..Default::default()
    };
    let mut stream = server.audit().await.export_audit_events(request).await.unwrap().into_inner();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk.unwrap());
    }
    chunks
}

#[tokio::test]
async fn exports_stream_cloudtrail_files_and_json_lines_oldest_first() {
    let f = fixture().await;
    let server = &f.server;
    let want = expected(server, |e| e.service_name == "Kms").await;

    let files = export(server, "serviceName: Kms", "cloudtrail", 4).await;
    assert_eq!(files.len(), want.len().div_ceil(4));
    let mut seen = Vec::new();
    for file in &files {
        let document: Value = serde_json::from_slice(&file.data).unwrap();
        let records = document["Records"].as_array().expect("a {\"Records\":[…]} file");
        assert_eq!(records.len() as u64, file.records);
        seen.extend(
            records
                .iter()
                .map(|r| (r["eventTime"].as_str().unwrap().to_owned(), r["eventID"].as_str().unwrap().to_owned())),
        );
    }
    let ids: BTreeSet<String> = seen.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids, want);
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "oldest first");

    let lines = export(server, "serviceName: Kms", "actiontrail", 1000).await;
    let text: String = lines.iter().map(|c| String::from_utf8(c.data.clone()).unwrap()).collect();
    let ids: BTreeSet<String> = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["eventId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, want);
    assert!(!text.contains(MARKER));
    f.server.stop().await;
}

#[tokio::test]
async fn tail_delivers_matching_records_as_they_commit() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let tail_request = pb::TailAuditEventsRequest { query: "eventName: Encrypt".into(), format: "actiontrail".into() };
    let mut tail = server.audit().await.tail_audit_events(tail_request).await.unwrap().into_inner();
    kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() }).await.unwrap();
    kms.encrypt(request(encrypt(&key_id), "tailed-encrypt", None)).await.unwrap();
    let first = tail.next().await.unwrap().unwrap();
    assert_eq!(first.event.as_ref().unwrap().client_request_id, "tailed-encrypt", "DescribeKey was filtered out");
    let document: Value = serde_json::from_str(&first.json).unwrap();
    assert_eq!(document["eventName"], "Encrypt");
    drop(tail);
    server.stop().await;
}

#[tokio::test]
async fn the_access_key_report_lists_services_events_addresses_and_resources() {
    let f = fixture().await;
    let report = f
        .server
        .audit()
        .await
        .get_access_key_usage(pb::GetAccessKeyUsageRequest { access_key_id: ACCESS_KEY.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.services.len(), 1, "{report:?}");
    let kms = &report.services[0];
    assert_eq!(kms.service_name, "Kms");
    let names: BTreeSet<&str> = kms.event_names.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["DescribeKey", "Encrypt"]));
    assert_eq!(kms.source_ip_addresses.len(), 1);
    assert_eq!(kms.source_ip_addresses[0].name, "127.0.0.1");
    assert_eq!(kms.source_ip_addresses[0].count, 2);
    let resources: BTreeSet<&str> = kms.resources.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(resources.len(), 2);
    assert!(resources.iter().any(|r| r.ends_with(&f.key_a)) && resources.iter().any(|r| r.ends_with(&f.key_b)));
    assert!(!kms.last_access_time.is_empty());
    assert!(!resources.iter().any(|r| r.ends_with(&f.disabled)), "another access key's call");

    let status = f.server.audit().await.get_access_key_usage(pb::GetAccessKeyUsageRequest::default()).await;
    assert_missing(&status.unwrap_err(), "AccessKeyId", "no access key");
    f.server.stop().await;
}
