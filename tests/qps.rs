//! QPS metering of KMS instances, in real time: near the quota an instance
//! raises `Instance:QPS:Reminder` (at most once per simulated minute); beyond
//! it calls fail with Rejected.Throttling, each audited as a failure.
//!
//! These tests pace calls in real time. Every call is its own task, so a slow
//! answer does not lower the rate offered; the tolerances allow for a loaded
//! two-core machine.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use kmsim::proto as pb;
use serde_json::Value;
use tokio::time::MissedTickBehavior;
use tonic::Code;

const SPEC: i64 = 200;
const ACCOUNT: &str = "1192853035118460";

/// The two rate tests would skew each other's rates on a small machine; they take turns.
static RATE_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the client saw of the calls a drive made.
#[derive(Debug, Default)]
struct Drive {
    calls: usize,
    /// Request ids of the calls refused with Rejected.Throttling.
    throttled: BTreeSet<String>,
}

/// Offers Encrypt calls on `key_id` at `rate` per second for `seconds`, each
/// call spawned as its own task on a fixed schedule (missed ticks are caught
/// up at once, so the average rate holds); returns once every call answered.
/// A failure other than Rejected.Throttling fails the test.
async fn drive(kms: &Kms, key_id: &str, rate: u32, seconds: f64) -> Drive {
    let calls = (f64::from(rate) * seconds).round() as usize;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(calls);
    for _ in 0..calls {
        ticks.tick().await;
        let mut kms = kms.clone();
        let request = pb::EncryptRequest { key_id: key_id.to_owned(), plaintext: b"p".to_vec(), ..Default::default() };
        tasks.push(tokio::spawn(async move { kms.encrypt(request).await.map(|_| ()) }));
    }
    let mut drive = Drive { calls, ..Drive::default() };
    for task in tasks {
        if let Err(status) = task.await.expect("the call task") {
            assert_error(&status, Code::ResourceExhausted, "Rejected.Throttling", "429", None, "a refused call");
            let request_id = status.metadata().get("x-kms-request-id").unwrap().to_str().unwrap().to_owned();
            drive.throttled.insert(request_id);
        }
    }
    drive
}

async fn reminders(server: &TestServer) -> Vec<pb::SystemEvent> {
    list_system_events(server, "Instance:QPS:Reminder").await
}

/// A reminder's document: the seed's fields in the seed's order, about `instance`.
#[track_caller]
fn assert_reminder(event: &pb::SystemEvent, instance: &pb::KmsInstance, threshold: u64) -> Value {
    let doc: Value = serde_json::from_str(&event.json).unwrap();
    assert_eq!(field_names(&doc), INSTANCE_EVENT_FIELDS, "{doc:#}");
    assert_eq!(field_names(&doc["content"]), ["eventId", "qps", "kmsInstanceId", "time", "qpsQuota"], "{doc:#}");
    assert_eq!((doc["name"].as_str(), doc["level"].as_str()), (Some("Instance:QPS:Reminder"), Some("CRITICAL")));
    assert_eq!((event.level.as_str(), event.region.as_str()), ("CRITICAL", "cn-hangzhou"));
    assert_eq!(doc["product"], "kms");
    assert_eq!(doc["resourceId"], instance.arn.as_str());
    assert_eq!(event.resource_id, instance.arn);
    assert_eq!(doc["instanceName"], instance.instance_name.as_str());
    assert_eq!(doc["regionId"], "cn-hangzhou");
    assert_eq!(doc["groupId"], "0");
    assert_eq!(doc["id"], event.id.as_str());
    let content = &doc["content"];
    assert_eq!(content["kmsInstanceId"], instance.kms_instance_id.as_str());
    assert_eq!(content["qpsQuota"], SPEC.to_string().as_str(), "a string, as in the seed");
    let qps: u64 = content["qps"].as_str().and_then(|q| q.parse().ok()).unwrap_or_else(|| panic!("{doc:#}"));
    assert!((threshold..=SPEC as u64).contains(&qps), "qps {qps} is not between 90% and 100% of the spec");
    let time_ms = doc["time"].as_i64().unwrap();
    let seconds = time_ms.div_euclid(1000);
    assert_eq!(content["eventId"], format!("{ACCOUNT}:{}:{seconds}", instance.kms_instance_id));
    // `YYYY-MM-DD HH:MM:SS`, the event's own time.
    let written = kmsim::clock::SimTime(seconds * 1000).to_rfc3339().trim_end_matches('Z').replace('T', " ");
    assert_eq!(content["time"], written.as_str(), "{doc:#}");
    doc
}

/// A 200-QPS instance driven at ~190 QPS raises one reminder, none more in the same simulated minute, another in the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_the_quota_an_instance_reminds_once_per_simulated_minute() {
    let _turn = RATE_TESTS.lock().await;
    let server = TestServer::start().await;
    let (kms, mut instances) = (server.kms().await, server.instances().await);
    let instance = create_instance(&mut instances, "", SPEC, "").await;
    let key_id = create_instance_key(&mut kms.clone(), "cn-hangzhou", &instance.kms_instance_id).await;
    let threshold = (SPEC as u64 * 9).div_ceil(10);

    // Well under 90% of the spec: no reminder.
    let calm = drive(&kms, &key_id, 120, 1.1).await;
    assert!(calm.throttled.is_empty(), "{calm:?}");
    assert!(reminders(&server).await.is_empty(), "no reminder at 60% of the spec");

    // ~95% for 1.5 s: the window passes 90% many times over, but only the first time reminds.
    let busy = drive(&kms, &key_id, 190, 1.5).await;
    assert!(busy.throttled.len() * 20 <= busy.calls, "190 QPS is under the quota: {busy:?}");
    let first = reminders(&server).await;
    assert_eq!(first.len(), 1, "one reminder within the minute: {first:#?}");
    let first_doc = assert_reminder(&first[0], &instance, threshold);

    // A simulated minute later, the same load reminds again.
    server.advance_secs(60).await;
    let again = drive(&kms, &key_id, 190, 1.5).await;
    assert!(again.throttled.len() * 20 <= again.calls, "190 QPS is under the quota: {again:?}");
    let both = reminders(&server).await;
    assert_eq!(both.len(), 2, "one more in the next minute: {both:#?}");
    assert_eq!(both[1].id, first[0].id, "newest first");
    let second_doc = assert_reminder(&both[0], &instance, threshold);
    let apart = second_doc["time"].as_i64().unwrap() - first_doc["time"].as_i64().unwrap();
    assert!(apart >= 60_000, "reminders {apart} ms apart on the simulation clock");
}

/// Driven at ~300 QPS, a 200-QPS instance refuses about a third of the calls, and every refusal is in the audit trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_quota_calls_are_throttled_and_audited() {
    let _turn = RATE_TESTS.lock().await;
    let server = TestServer::start().await;
    let (kms, mut instances) = (server.kms().await, server.instances().await);
    let instance = create_instance(&mut instances, "", SPEC, "").await;
    let key_id = create_instance_key(&mut kms.clone(), "cn-hangzhou", &instance.kms_instance_id).await;

    let over = drive(&kms, &key_id, 300, 2.0).await;
    let refused = over.throttled.len() as f64 / over.calls as f64;
    assert!((0.2..=0.45).contains(&refused), "{:.0}% of {} calls refused", refused * 100.0, over.calls);

    // Each refusal the client saw is one failure record, and no other call was recorded as throttled.
    let records = all_audit_events(&server).await;
    let throttled: Vec<_> = records.iter().filter(|r| r.error_code == "Rejected.Throttling").collect();
    let audited: BTreeSet<String> = throttled.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!(throttled.len(), over.throttled.len(), "one record per refusal");
    assert_eq!(audited, over.throttled, "the records are of the calls the client saw refused");
    for record in &throttled {
        assert_eq!((record.event_name.as_str(), record.outcome.as_str()), ("Encrypt", "Failure"), "{record:#?}");
        assert_eq!((record.http_status, record.key_id.as_str()), (429, key_id.as_str()), "{record:#?}");
    }
    let admitted = records.iter().filter(|r| r.event_name == "Encrypt" && r.outcome == "Success").count();
    assert_eq!(admitted + throttled.len(), over.calls, "every call is audited once");

    // Default keys, outside any instance, are not metered against it.
    let default_key = create_key(&mut kms.clone(), "").await;
    let unmetered = drive(&kms, &default_key, 300, 1.0).await;
    assert!(unmetered.throttled.is_empty(), "default keys are not throttled by an instance: {unmetered:?}");
}
