//! `kmsim generate`: the same seed gives the same bytes, every anomaly kind is
//! labelled and found by its detection query, and the generated trail verifies.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::TestServer;
use common::cli::{command, finished};
use kmsim::clock::SimTime;
use kmsim::proto as pb;
use serde_json::Value;

/// A small tenant that does one of each anomaly kind within its first day.
const EVERY_ANOMALY: &str = r#"
name: every-anomaly
start: 2026-10-01T00:00:00Z
instances: [{name: small, qps: 40}]
keys:
  - {name: data, instance: small, rotation: 7d}
  - {name: signing, spec: EC_P256, usage: SIGN/VERIFY}
  - {name: old, spec: Aliyun_SM4}
  - {name: vault, exportable: true}
secrets: [{name: db, key: data}]
applications:
  - name: api
    access_keys: 2
    ips: [10.1.0.0/24]
    user_agents: [java, go]
    rate: 120/h
    bursts: {per_week: 7, factor: 3, lasting: 30m}
    calls:
      - {op: GenerateDataKey, key: data, weight: 2}
      - {op: Decrypt, key: data, weight: 3}
      - {op: GetSecretValue, secret: db}
      - {op: AsymmetricSign, key: signing}
      - {op: AsymmetricVerify, key: signing}
  - name: batch
    ips: [10.2.0.0/28]
    user_agents: [python]
    rate: 20/h
    calls:
      - {op: Encrypt, key: old}
      - {op: Decrypt, key: old}
lifecycle:
  - {at: 2h, action: rotate-key, key: data}
  - {at: 3h, action: disable-key, key: old}
  - {at: 4h, action: disable-access-key, app: api, access_key: 1}
  - {at: 6h, action: rotate-secret, secret: db}
  - {at: 12h, action: schedule-key-deletion, key: old, days: 7}
anomalies:
  - {kind: decrypt-spike, at: 1h, app: api, key: data, calls: 30, over: 5m}
  - {kind: key-export, at: 1h30m, app: batch, key: vault}
  - {kind: disabled-key-use, at: 5h, app: batch, key: old, calls: 5, over: 10m}
  - {kind: brute-force, at: 7h, app: api, key: data, calls: 15, over: 2m}
  - {kind: disabled-access-key-use, at: 8h, app: api, access_key: 1, key: data, calls: 4, over: 30m}
  - {kind: unusual-region, at: 9h, app: batch, region: eu-central-1, calls: 4, over: 1m}
  - {kind: unusual-user-agent, at: 10h, app: api, key: data, user_agent: curl/8.5.0, calls: 3, over: 5m}
  - {kind: qps-quota, at: 11h, app: api, key: data}
  - {kind: new-secret-reader, at: 13h, app: batch, secret: db}
  - {kind: disabled-key-use, at: 14h, app: batch, key: old, calls: 3, over: 5m}
"#;

const KINDS: [&str; 9] = [
    "decrypt-spike",
    "key-export",
    "disabled-key-use",
    "brute-force",
    "disabled-access-key-use",
    "unusual-region",
    "unusual-user-agent",
    "qps-quota",
    "new-secret-reader",
];

/// Runs `kmsim generate` on the test scenario into `out`.
async fn generate(scenario: &Path, seed: &str, out: &Path) -> Value {
    let args = ["generate", "--scenario", scenario.to_str().unwrap(), "--duration", "1d", "--seed", seed];
    let mut command = command("http://unused", &args);
    command.args(["--out", out.to_str().unwrap(), "--output", "json"]);
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
    finished(format!("kmsim generate --seed {seed}"), output).json()
}

fn scenario_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("every-anomaly.yaml");
    std::fs::write(&path, EVERY_ANOMALY).unwrap();
    path
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (entry.file_name().to_string_lossy().into_owned(), std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn the_same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_file(dir.path());
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    let (first, second, other) =
        tokio::join!(generate(&scenario, "7", &a), generate(&scenario, "7", &b), generate(&scenario, "8", &c));
    assert!(first["records"].as_u64().unwrap() > 2000, "{first}");
    assert_eq!(first["records"], second["records"]);
    assert_eq!(other["scenario"], "every-anomaly");

    let (a, b, c) = (files(&a), files(&b), files(&c));
    let names: Vec<&String> = a.keys().collect();
    assert_eq!(
        names,
        [
            "audit.actiontrail.jsonl",
            "audit.cloudtrail.jsonl",
            "audit.native.jsonl",
            "events.jsonl",
            "kmsim.db",
            "labels.jsonl",
            "scenario.yaml"
        ],
        "the store is one file: no write-ahead log or shared-memory index is left behind"
    );
    for (name, bytes) in &a {
        assert!(b[name] == *bytes, "{name} differs between two runs with seed 7");
    }
    for name in ["kmsim.db", "audit.native.jsonl", "audit.cloudtrail.jsonl", "labels.jsonl"] {
        assert!(c[name] != a[name], "{name} is the same for seeds 7 and 8");
    }
    assert_eq!(c["scenario.yaml"], a["scenario.yaml"]);
}

#[tokio::test]
async fn every_anomaly_is_labelled_found_by_its_query_and_the_trail_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_file(dir.path());
    let out = dir.path().join("out");
    // Made beforehand, as `mkdir` makes it under umask 022: the generator makes it private, so that it can be served.
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let summary = generate(&scenario, "11", &out).await;
    let records = summary["records"].as_u64().unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out).unwrap().permissions()) & 0o777;
    assert_eq!(mode, 0o700, "the generated data dir is {mode:04o}");

    // Every file holds every record, in the same order.
    let native = std::fs::read_to_string(out.join("audit.native.jsonl")).unwrap();
    let native: Vec<Value> = native.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(native.len() as u64, records);
    for file in ["audit.actiontrail.jsonl", "audit.cloudtrail.jsonl"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v.get("eventId").or(v.get("eventID")).and_then(Value::as_str).unwrap().to_owned()
            })
            .collect();
        let native_ids: Vec<String> = native.iter().map(|r| r["eventId"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ids, native_ids, "{file}");
    }
    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    let event_names: Vec<String> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(event_names.iter().any(|n| n == "Instance:QPS:Reminder"), "{event_names:?}");

    // The chain of what was generated verifies, offline, before anything else touches the store.
    let mut verify =
        command("http://unused", &["audit", "verify", "--data-dir", out.to_str().unwrap(), "--output", "json"]);
    let verified = finished(
        "kmsim audit verify".into(),
        tokio::task::spawn_blocking(move || verify.output()).await.unwrap().unwrap(),
    )
    .json();
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["records"].as_u64(), Some(records), "{verified}");

    let labels: Vec<Value> = std::fs::read_to_string(out.join("labels.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: BTreeSet<&str> = labels.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, KINDS.into_iter().collect(), "one label per kind at least");
    let by_id: BTreeMap<&str, &Value> = native.iter().map(|r| (r["eventId"].as_str().unwrap(), r)).collect();

    let server = TestServer::start_in(&out).await;
    let mut audit = server.audit().await;
    for label in &labels {
        let kind = label["kind"].as_str().unwrap();
        let ids: BTreeSet<&str> = label["eventIds"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(!ids.is_empty(), "{kind}: no records");
        assert_eq!(label["recordCount"].as_u64(), Some(ids.len() as u64));
        let (from, to) = (label["from"].as_str().unwrap(), label["to"].as_str().unwrap());
        let (from_ms, to_ms) =
            (SimTime::parse_rfc3339(from).unwrap().millis(), SimTime::parse_rfc3339(to).unwrap().millis());
        for id in &ids {
            let record = by_id.get(id).unwrap_or_else(|| panic!("{kind}: labelled record {id} is not in the trail"));
            let at = record["eventTime"].as_i64().unwrap();
            assert!((from_ms..to_ms).contains(&at), "{kind}: {id} at {at} is outside [{from}, {to})");
        }
        let labelled_requests: BTreeSet<&str> =
            label["requestIds"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();

        let query = label["query"].as_str().unwrap();
        let found = query_all(&mut audit, query, from, to).await;
        let found: Vec<&Value> =
            found.iter().filter(|r| (from_ms..to_ms).contains(&r["eventTime"].as_i64().unwrap())).collect();
        let found_ids: BTreeSet<&str> = found.iter().map(|r| r["eventId"].as_str().unwrap()).collect();
        let found_requests: BTreeSet<&str> = found.iter().map(|r| r["requestId"].as_str().unwrap()).collect();
        assert!(found_ids.is_subset(&ids), "{kind}: `{query}` finds records the label does not name");
        assert_eq!(found_requests, labelled_requests, "{kind}: `{query}` misses calls of the label");

        let failures = ids.iter().filter(|id| by_id[*id]["errorCode"].as_str().unwrap() != "").count();
        match kind {
            "disabled-key-use" => {
                assert_eq!(failures, ids.len(), "{kind}: every call is refused");
                assert!(ids.iter().all(|id| by_id[*id]["errorCode"].as_str().unwrap().starts_with("Rejected.")));
            }
            "brute-force" => assert_eq!(failures, ids.len(), "{kind}: every call fails"),
            "qps-quota" => assert!(ids.len() >= 38, "{kind}: 95% of 40 QPS within one second, got {}", ids.len()),
            "decrypt-spike" | "key-export" | "unusual-user-agent" | "new-secret-reader" => {
                assert_eq!(failures, 0, "{kind}: the calls succeed")
            }
            _ => {}
        }
    }
    server.stop().await;
}

/// Every record `query` selects in `[from, to]`, as native JSON.
async fn query_all(
    audit: &mut pb::audit_service_client::AuditServiceClient<tonic::transport::Channel>,
    query: &str,
    from: &str,
    to: &str,
) -> Vec<Value> {
    let mut found = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::QueryAuditEventsRequest {
            query: query.to_owned(),
            start_time: from.to_owned(),
            end_time: to.to_owned(),
            page_size: 1000,
            page_token: page_token.clone(),
            ..Default::default()
        };
        let page = audit.query_audit_events(request).await.unwrap_or_else(|e| panic!("`{query}`: {e}")).into_inner();
        found.extend(page.events.iter().map(|e| serde_json::from_str::<Value>(&e.json).unwrap()));
        if page.next_page_token.is_empty() {
            return found;
        }
        page_token = page.next_page_token;
    }
}
