//! The `kmsim` CLI for KMS instances, cross-region key sync, fault injection
//! and metrics, run as a real child process against an in-process server.

mod common;

use common::cli::*;
use common::*;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[track_caller]
fn rfc3339(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

#[track_caller]
fn int(value: &Value, name: &str) -> i64 {
    value.get(name).and_then(Value::as_i64).unwrap_or_else(|| panic!("no integer field {name:?} in {value:#}"))
}

/// `kmsim [--region R] instance create --spec 200`; returns the instance id.
async fn create_instance(server: &TestServer, region: Option<&str>) -> String {
    let mut args = vec!["instance", "create", "--spec", "200"];
    if let Some(region) = region {
        args.extend(["--region", region]);
    }
    str_field(&kmsim_json(server, &args).await, "kmsInstanceId").to_owned()
}

/// `kmsim key create --dkms-instance-id KST`; returns the key id.
async fn create_key_in(server: &TestServer, instance_id: &str) -> String {
    let created = kmsim_json(server, &["key", "create", "--dkms-instance-id", instance_id]).await;
    assert_eq!(str_field(&created, "dkmsInstanceId"), instance_id, "{created:#}");
    str_field(&created, "keyId").to_owned()
}

async fn encrypt(server: &TestServer, key_id: &str) -> Run {
    kmsim(server, &["encrypt", "--key-id", key_id, "--plaintext", "hello", "--output", "json"]).await
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_created_described_and_listed_with_their_keys() {
    let server = TestServer::start().await;
    let clock = kmsim_json(&server, &["clock", "show"]).await;
    let expiry = (rfc3339(str_field(&clock, "now")) + time::Duration::days(30)).replace_nanosecond(0).unwrap();
    let expiry_text = expiry.format(&Rfc3339).unwrap();

    let created = kmsim_json(
        &server,
        &["instance", "create", "--spec", "1000", "--name", "payments", "--expire-time", &expiry_text],
    )
    .await;
    let id = str_field(&created, "kmsInstanceId").to_owned();
    assert!(id.starts_with("kst-hzz"), "an instance of the server's region: {created:#}");
    assert_eq!(str_field(&created, "instanceName"), "payments");
    assert_eq!(str_field(&created, "region"), "cn-hangzhou");
    assert_eq!(int(&created, "spec"), 1000);
    assert_eq!(str_field(&created, "status"), "Enabled");
    assert_eq!(int(&created, "keyCount"), 0);
    assert_eq!(rfc3339(str_field(&created, "expireTime")), expiry, "{created:#}");
    assert_eq!(str_field(&created, "arn"), format!("acs:kms:cn-hangzhou:1192853035118460:instance/{id}"));

    let key_id = create_key_in(&server, &id).await;
    let described = kmsim_json(&server, &["instance", "describe", &id]).await;
    assert_eq!(str_field(&described, "kmsInstanceId"), id);
    assert_eq!(int(&described, "keyCount"), 1, "the key is in the instance: {described:#}");
    assert_eq!(str_field(&described, "createTime"), str_field(&created, "createTime"));

    // A second instance with the defaults: named after itself, a year's term.
    let second = create_instance(&server, None).await;
    let listed = kmsim_json(&server, &["instance", "list"]).await;
    let instances = array(&listed, "kmsInstances");
    let ids: Vec<&str> = instances.iter().map(|i| str_field(i, "kmsInstanceId")).collect();
    assert_eq!(ids, [id.as_str(), second.as_str()], "oldest first: {listed:#}");
    assert_eq!(str_field(&instances[1], "instanceName"), second);
    assert_eq!(int(&instances[0], "keyCount"), 1, "{listed:#}");
    assert_eq!(int(&instances[1], "keyCount"), 0, "{listed:#}");
    let term = rfc3339(str_field(&instances[1], "expireTime")) - rfc3339(str_field(&instances[1], "createTime"));
    assert_eq!(term, time::Duration::days(365), "{listed:#}");

    let table = kmsim(&server, &["instance", "list"]).await;
    let table = table.ok();
    assert!(table.contains("kmsInstanceId") && table.contains(&id) && table.contains("payments"), "{table}");
    let table = kmsim(&server, &["instance", "describe", &id]).await;
    assert!(table.ok().lines().any(|l| l.starts_with("keyCount") && l.trim_end().ends_with(" 1")), "{table:#?}");

    // The key lives in the instance; instances belong to their region.
    let key = kmsim_json(&server, &["key", "describe", &key_id]).await;
    assert_eq!(str_field(&key, "dkmsInstanceId"), id, "{key:#}");
    let elsewhere = kmsim_json(&server, &["instance", "list", "--region", "cn-shanghai"]).await;
    assert!(array(&elsewhere, "kmsInstances").is_empty(), "{elsewhere:#}");
    let run = kmsim(&server, &["instance", "describe", &id, "--region", "cn-shanghai"]).await;
    assert!(run.failed().starts_with("Forbidden.DKMSInstanceNotFound (403): "), "{run:#?}");
    let run = kmsim(&server, &["instance", "create", "--spec", "0"]).await;
    assert!(run.failed().starts_with("InvalidParameter (400): "), "{run:#?}");
    let run = kmsim(&server, &["instance", "create"]).await;
    assert_eq!(run.code, Some(2), "--spec is required: {run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_fault_fails_the_next_encrypt_and_then_goes() {
    let server = TestServer::start().await;
    let instance_id = create_instance(&server, None).await;
    let key_id = create_key_in(&server, &instance_id).await;

    let args = ["fault", "inject", "--method", "Encrypt", "--error", "ServiceUnavailableTemporary", "--count", "1"];
    let fault = kmsim_json(&server, &args).await;
    let fault_id = str_field(&fault, "faultId").to_owned();
    assert!(fault_id.starts_with("fault-"), "{fault:#}");
    assert_eq!(str_field(&fault, "method"), "Encrypt");
    assert_eq!(str_field(&fault, "keyId"), "*", "the default key pattern: {fault:#}");
    assert_eq!(str_field(&fault, "errorCode"), "ServiceUnavailableTemporary");
    assert_eq!(int(&fault, "remaining"), 1);
    assert_eq!(int(&fault, "hits"), 0);
    assert_eq!(fault["probability"], 1.0, "{fault:#}");

    let failed = encrypt(&server, &key_id).await;
    let stderr = failed.failed();
    assert!(stderr.starts_with("ServiceUnavailableTemporary (503): "), "{failed:#?}");
    assert!(failed.stdout.is_empty(), "{failed:#?}");

    // The one hit used the fault up: the next call succeeds and the fault is gone.
    let ok = encrypt(&server, &key_id).await.json();
    assert_eq!(str_field(&ok, "keyId"), key_id, "{ok:#}");
    assert!(!str_field(&ok, "ciphertextBlob").is_empty(), "{ok:#}");
    let listed = kmsim_json(&server, &["fault", "list"]).await;
    assert!(array(&listed, "faults").is_empty(), "{listed:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_listed_and_cleared_one_or_all() {
    let server = TestServer::start().await;
    let slow = kmsim_json(
        &server,
        &[
            "fault",
            "inject",
            "--method",
            "Decrypt",
            "--key-id",
            "key-hzz*",
            "--delay",
            "250ms",
            "--probability",
            "0.5",
            "--ttl",
            "10m",
        ],
    )
    .await;
    let clock = kmsim_json(&server, &["clock", "show"]).await;
    let expires = rfc3339(str_field(&slow, "expireTime")) - rfc3339(str_field(&clock, "now"));
    assert!(
        expires > time::Duration::minutes(9) && expires <= time::Duration::minutes(10),
        "--ttl 10m: {slow:#} {clock:#}"
    );
    let failing = kmsim_json(&server, &["fault", "inject", "--error", "Rejected.Throttling", "--delay", "1.5s"]).await;
    let (slow_id, failing_id) = (str_field(&slow, "faultId").to_owned(), str_field(&failing, "faultId").to_owned());

    let listed = kmsim_json(&server, &["fault", "list"]).await;
    let faults = array(&listed, "faults");
    let ids: Vec<&str> = faults.iter().map(|f| str_field(f, "faultId")).collect();
    assert_eq!(ids, [slow_id.as_str(), failing_id.as_str()], "oldest first: {listed:#}");
    assert_eq!(str_field(&faults[0], "method"), "Decrypt");
    assert_eq!(str_field(&faults[0], "keyId"), "key-hzz*");
    assert_eq!(str_field(&faults[0], "errorCode"), "", "a delay only: {listed:#}");
    assert_eq!(int(&faults[0], "delayMs"), 250);
    assert_eq!(faults[0]["probability"], 0.5, "{listed:#}");
    assert_eq!(int(&faults[0], "remaining"), 0, "unlimited: {listed:#}");
    assert_eq!(str_field(&faults[1], "method"), "*");
    assert_eq!(str_field(&faults[1], "errorCode"), "Rejected.Throttling");
    assert_eq!(int(&faults[1], "delayMs"), 1500);
    assert_eq!(str_field(&faults[1], "expireTime"), "", "no expiry: {listed:#}");
    let table = kmsim(&server, &["fault", "list"]).await;
    let table = table.ok();
    assert!(table.contains("faultId") && table.contains(&slow_id) && table.contains(&failing_id), "{table}");

    let cleared = kmsim_json(&server, &["fault", "clear", &slow_id]).await;
    assert_eq!(int(&cleared, "cleared"), 1, "{cleared:#}");
    let listed = kmsim_json(&server, &["fault", "list"]).await;
    let ids: Vec<&str> = array(&listed, "faults").iter().map(|f| str_field(f, "faultId")).collect();
    assert_eq!(ids, [failing_id.as_str()], "{listed:#}");
    let run = kmsim(&server, &["fault", "clear", &slow_id]).await;
    assert!(run.failed().starts_with("Forbidden.ResourceNotFound (404): "), "{run:#?}");

    kmsim_json(&server, &["fault", "inject", "--method", "Sign*", "--error", "InternalFailure"]).await;
    let table = kmsim(&server, &["fault", "clear"]).await;
    assert_eq!(table.ok().trim(), "cleared  2", "all of them: {table:#?}");
    let listed = kmsim_json(&server, &["fault", "list"]).await;
    assert!(array(&listed, "faults").is_empty(), "{listed:#}");
    let table = kmsim(&server, &["fault", "list"]).await;
    assert!(table.ok().contains("(none)"), "{table:#?}");

    // Refused before any call: bad delays, a TTL with an expiry time; and by the server: a fault that does nothing.
    for args in [
        &["fault", "inject", "--error", "InternalFailure", "--delay", "250"][..],
        &["fault", "inject", "--delay", "1h"],
        &["fault", "inject", "--delay", "1s", "--ttl", "10m", "--expire-time", "2030-01-01T00:00:00Z"],
    ] {
        let run = kmsim(&server, args).await;
        assert_eq!(run.code, Some(2), "a usage error: {run:#?}");
    }
    let run = kmsim(&server, &["fault", "inject", "--method", "Encrypt"]).await;
    assert!(run.failed().starts_with("InvalidParameter (400): "), "{run:#?}");
    let listed = kmsim_json(&server, &["fault", "list"]).await;
    assert!(array(&listed, "faults").is_empty(), "{listed:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_replicates_a_key_to_a_shadow_instance_in_another_region() {
    let server = TestServer::start().await;
    let primary = create_instance(&server, None).await;
    let shadow = create_instance(&server, Some("cn-shanghai")).await;
    assert!(shadow.starts_with("kst-shh"), "{shadow}");
    let described = kmsim_json(&server, &["instance", "describe", &shadow, "--region", "cn-shanghai"]).await;
    assert_eq!(str_field(&described, "region"), "cn-shanghai", "{described:#}");
    let key_id = create_key_in(&server, &primary).await;

    let listed = kmsim_json(&server, &["sync", "list", &key_id]).await;
    assert_eq!(str_field(&listed, "keyId"), key_id);
    assert!(array(&listed, "replicas").is_empty(), "no replicas yet: {listed:#}");

    let added = kmsim_json(&server, &["sync", "add", &key_id, "--shadow-instance", &shadow, "--interval", "2h"]).await;
    assert_eq!(str_field(&added, "keyId"), key_id);
    assert_eq!(str_field(&added, "region"), "cn-hangzhou");
    let replicas = array(&added, "replicas");
    assert_eq!(replicas.len(), 1, "{added:#}");
    let first = &replicas[0];
    assert_eq!(str_field(first, "shadowInstanceId"), shadow);
    assert_eq!(str_field(first, "shadowRegion"), "cn-shanghai");
    assert_eq!(str_field(first, "syncInterval"), "7200s");
    assert_eq!(str_field(first, "lastSyncStatus"), "SyncSuccess", "the first sync runs at once: {added:#}");
    assert_eq!(str_field(first, "lastErrorCode"), "");
    let first_task = str_field(first, "lastSyncTaskId").to_owned();
    assert!(!first_task.is_empty(), "{added:#}");
    rfc3339(str_field(first, "lastSyncTime"));

    // The replica is the same key in the shadow region: it decrypts what the primary encrypted.
    let blob = str_field(&encrypt(&server, &key_id).await.json(), "ciphertextBlob").to_owned();
    let args = ["decrypt", "--ciphertext-blob", &blob, "--region", "cn-shanghai", "--output", "json"];
    let decrypted = kmsim(&server, &args).await.json();
    assert_eq!(str_field(&decrypted, "plaintext"), "hello", "{decrypted:#}");
    let replica = kmsim_json(&server, &["key", "describe", &key_id, "--region", "cn-shanghai"]).await;
    assert_eq!(str_field(&replica, "region"), "cn-shanghai", "{replica:#}");
    assert_eq!(str_field(&replica, "dkmsInstanceId"), shadow, "{replica:#}");

    let run = kmsim_json(&server, &["sync", "run", &key_id]).await;
    let synced = &array(&run, "replicas")[0];
    assert_eq!(str_field(synced, "lastSyncStatus"), "SyncSuccess", "{run:#}");
    let second_task = str_field(synced, "lastSyncTaskId").to_owned();
    assert!(!second_task.is_empty() && second_task != first_task, "a new sync task: {run:#}");
    let listed = kmsim_json(&server, &["sync", "list", &key_id]).await;
    assert_eq!(array(&listed, "replicas"), array(&run, "replicas"), "{listed:#} {run:#}");
    let table = kmsim(&server, &["sync", "list", &key_id]).await;
    let table = table.ok();
    assert!(table.contains("shadowInstanceId") && table.contains(&shadow) && table.contains("SyncSuccess"), "{table}");

    // A failed sync shows its error code.
    let args = ["fault", "inject", "--method", "KeySync", "--error", "Rejected.Unavailable", "--count", "1"];
    kmsim_json(&server, &args).await;
    let run = kmsim_json(&server, &["sync", "run", &key_id]).await;
    let failed = &array(&run, "replicas")[0];
    assert_eq!(str_field(failed, "lastSyncStatus"), "SyncFailure", "{run:#}");
    assert_eq!(str_field(failed, "lastErrorCode"), "Rejected.Unavailable", "{run:#}");

    // Replicas go to other regions only, and only keys of instances are synced.
    let other = create_instance(&server, None).await;
    let run = kmsim(&server, &["sync", "add", &key_id, "--shadow-instance", &other]).await;
    assert!(run.failed().starts_with("InvalidParameter (400): "), "{run:#?}");
    let default_key = str_field(&kmsim_json(&server, &["key", "create"]).await, "keyId").to_owned();
    let run = kmsim(&server, &["sync", "add", &default_key, "--shadow-instance", &shadow]).await;
    assert!(run.failed().contains("(4"), "refused: {run:#?}");
    let run = kmsim(&server, &["sync", "add", &key_id]).await;
    assert_eq!(run.code, Some(2), "--shadow-instance is required: {run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_encrypt_calls_of_an_instance() {
    let server = TestServer::start().await;
    let instance_id = create_instance(&server, None).await;
    let key_id = create_key_in(&server, &instance_id).await;
    let args = ["fault", "inject", "--method", "Encrypt", "--error", "ServiceUnavailableTemporary", "--count", "1"];
    kmsim_json(&server, &args).await;
    encrypt(&server, &key_id).await.failed();
    for _ in 0..3 {
        encrypt(&server, &key_id).await.ok();
    }

    let metrics = kmsim_json(&server, &["metrics", "--instance", &instance_id]).await;
    let points = array(&metrics, "points");
    assert!(!points.is_empty(), "{metrics:#}");
    let total = |name: &str| points.iter().map(|p| int(p, name)).sum::<i64>();
    assert!(points.iter().all(|p| str_field(p, "kmsInstanceId") == instance_id), "{metrics:#}");
    assert!(points.iter().all(|p| str_field(p, "region") == "cn-hangzhou"), "{metrics:#}");
    assert_eq!(total("symmetricEncryptRequests"), 4, "three encrypts and the faulted one: {metrics:#}");
    assert_eq!(total("errors5xx"), 1, "the faulted encrypt: {metrics:#}");
    assert_eq!(total("errors4xx"), 0, "{metrics:#}");
    assert_eq!(total("symmetricDecryptRequests"), 0, "{metrics:#}");
    assert_eq!(total("requests"), 4 + total("otherRequests"), "{metrics:#}");
    let mut peak = 0.0_f64;
    for point in points {
        rfc3339(str_field(point, "minute"));
        let util = point["symmetricQpsUtilization"].as_f64().unwrap_or_else(|| panic!("{point:#}"));
        assert!((0.0..=100.0).contains(&util), "a percentage: {point:#}");
        peak = peak.max(util);
        assert!(point["averageLatencyMs"].as_f64().is_some_and(|ms| ms >= 0.0), "{point:#}");
    }
    assert!(peak > 0.0, "the encrypts use the 200 QPS spec: {metrics:#}");

    // Bounded by time, by region and to default keys.
    let first = str_field(&points[0], "minute").to_owned();
    let until = kmsim_json(&server, &["metrics", "--instance", &instance_id, "--until", &first]).await;
    assert_eq!(array(&until, "points").len(), 1, "only the first minute: {until:#}");
    let later =
        (rfc3339(str_field(&points[points.len() - 1], "minute")) + time::Duration::hours(1)).format(&Rfc3339).unwrap();
    let since = kmsim_json(&server, &["metrics", "--instance", &instance_id, "--since", &later]).await;
    assert!(array(&since, "points").is_empty(), "{since:#}");
    let shanghai = kmsim_json(&server, &["metrics", "--region", "cn-shanghai"]).await;
    assert!(array(&shanghai, "points").is_empty(), "nothing ran in cn-shanghai: {shanghai:#}");
    let defaults = kmsim_json(&server, &["metrics", "--instance", "default"]).await;
    let default_points = array(&defaults, "points");
    assert!(default_points.iter().all(|p| str_field(p, "kmsInstanceId").is_empty()), "{defaults:#}");
    let default_encrypts: i64 = default_points.iter().map(|p| int(p, "symmetricEncryptRequests")).sum();
    assert_eq!(default_encrypts, 0, "{defaults:#}");

    let table = kmsim(&server, &["metrics", "--instance", &instance_id]).await;
    let table = table.ok();
    let header = table.lines().next().unwrap_or_default();
    for column in ["minute", "requests", "symEnc", "4xx", "5xx", "avgMs", "symUtil", "asymUtil"] {
        assert!(header.split_whitespace().any(|c| c == column), "no {column} column: {table}");
    }
    assert!(table.contains(&instance_id) && table.contains('%'), "{table}");
    let table = kmsim(&server, &["metrics", "--region", "cn-shanghai"]).await;
    assert_eq!(table.ok().lines().last(), Some("(none)"), "{table:#?}");
    let run = kmsim(&server, &["metrics", "--since", "yesterday"]).await;
    assert!(run.failed().starts_with("InvalidParameter (400): "), "{run:#?}");
}
