//! Metrics of the KMS API: the Prometheus text on `metrics_listen` (read
//! with a real parser) and SimulationService.GetMetrics's per-minute points,
//! per region and KMS instance, count exactly the calls made: by class of
//! operation, 4xx and 5xx failures, latency and QPS utilisation. Calls of
//! kmsim's own services are not counted.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kmsim::clock::SimTime;
use kmsim::proto as pb;
use kmsim::server::ServerConfig;
use prometheus_parse::{Scrape, Value};

const HANGZHOU: &str = "cn-hangzhou";
const SHANGHAI: &str = "cn-shanghai";
const OPERATIONS: [&str; 8] = [
    "symmetric_encrypt",
    "symmetric_decrypt",
    "asymmetric_encrypt",
    "asymmetric_decrypt",
    "asymmetric_sign",
    "asymmetric_verify",
    "secret",
    "other",
];

async fn server_with_metrics() -> TestServer {
    let config = ServerConfig { metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))), ..Default::default() };
    TestServer::start_config(config).await
}

/// GETs `path` from the metrics endpoint: the status, the content type and the body.
async fn http_get(server: &TestServer, path: &str) -> (u16, String, String) {
    let addr = server.metrics_addr().expect("the server serves metrics");
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri = format!("http://{addr}{path}").parse().unwrap();
    let response = client.get(uri).await.expect("the metrics endpoint answers");
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body = response.into_body().collect().await.expect("the body").to_bytes();
    (status, content_type, String::from_utf8(body.to_vec()).expect("UTF-8"))
}

async fn scrape(server: &TestServer) -> Scrape {
    let (status, content_type, body) = http_get(server, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).expect("Prometheus text")
}

/// The one sample of `metric` whose labels are exactly `labels`.
#[track_caller]
fn sample(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Value {
    let found: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == metric
                && labels.iter().all(|(name, value)| s.labels.get(name) == Some(*value))
                && labels.len() == s.labels.len()
        })
        .collect();
    assert_eq!(found.len(), 1, "{metric}{labels:?}: {found:#?}");
    found[0].value.clone()
}

#[track_caller]
fn counter(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match sample(scrape, metric, labels) {
        Value::Counter(value) => value,
        other => panic!("{metric}{labels:?} is not a counter: {other:?}"),
    }
}

#[track_caller]
fn gauge(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match sample(scrape, metric, labels) {
        Value::Gauge(value) => value,
        other => panic!("{metric}{labels:?} is not a gauge: {other:?}"),
    }
}

/// The requests of one series by operation label.
fn requests(scrape: &Scrape, region: &str, instance: &str) -> BTreeMap<&'static str, f64> {
    OPERATIONS
        .into_iter()
        .map(|op| {
            let labels = [("region", region), ("kms_instance_id", instance), ("operation", op)];
            (op, counter(scrape, "kmsim_requests_total", &labels))
        })
        .collect()
}

fn expected(counts: &[(&'static str, f64)]) -> BTreeMap<&'static str, f64> {
    let mut all: BTreeMap<&'static str, f64> = OPERATIONS.into_iter().map(|op| (op, 0.0)).collect();
    all.extend(counts.iter().copied());
    all
}

fn errors(scrape: &Scrape, region: &str, instance: &str) -> (f64, f64) {
    let of = |status| {
        let labels = [("region", region), ("kms_instance_id", instance), ("status", status)];
        counter(scrape, "kmsim_errors_total", &labels)
    };
    (of("4xx"), of("5xx"))
}

async fn inject(server: &TestServer, method: &str, error_code: &str, count: u32) -> pb::Fault {
    let request =
        pb::InjectFaultRequest { method: method.into(), error_code: error_code.into(), count, ..Default::default() };
    server.simulation().await.inject_fault(request).await.expect("inject fault").into_inner().fault.unwrap()
}

async fn get_metrics(server: &TestServer, request: pb::GetMetricsRequest) -> Vec<pb::MetricPoint> {
    server.simulation().await.get_metrics(request).await.expect("get metrics").into_inner().points
}

fn timestamp(at: SimTime) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.millis().div_euclid(1000), nanos: 0 }
}

/// Sets the simulation clock to one second into `minute`, so the calls that follow fall in that minute.
async fn enter_minute(server: &TestServer, minute: SimTime) {
    let request = pb::SetClockRequest { time: Some(timestamp(minute.plus_secs(1))) };
    server.simulation().await.set_clock(request).await.expect("set clock");
}

/// The start of the simulated minute after the current one.
async fn next_minute(server: &TestServer) -> SimTime {
    SimTime((server.sim_now().await.millis().div_euclid(60_000) + 1) * 60_000)
}

/// Prometheus counters per region and instance equal the calls made, by class, with 4xx and 5xx failures.
#[tokio::test]
async fn prometheus_counters_equal_the_calls_made() {
    let started = std::time::Instant::now();
    let server = server_with_metrics().await;
    // All in one minute, so the gauges of the latest minute see every call.
    enter_minute(&server, next_minute(&server).await).await;
    let (mut kms, mut instances) = (server.kms().await, server.instances().await);
    let instance = create_instance(&mut instances, HANGZHOU, 1000, "").await;
    let id = instance.kms_instance_id.as_str();
    let key_id = create_instance_key(&mut kms, HANGZHOU, id).await;
    let request =
        pb::CreateKeyRequest { key_spec: "EC_P256".into(), dkms_instance_id: id.into(), ..Default::default() };
    let signer = kms.create_key(request).await.unwrap().into_inner().key_metadata.unwrap().key_id;

    let (encrypts, decrypts, data_keys, unavailable, disabled) = (7, 4, 2, 2, 3);
    let mut ciphertexts = Vec::new();
    for i in 0..encrypts {
        ciphertexts.push(encrypt(&mut kms, HANGZHOU, &key_id, format!("message {i}").as_bytes()).await);
    }
    for _ in 0..data_keys {
        let request = pb::GenerateDataKeyRequest { key_id: key_id.clone(), ..Default::default() };
        kms.generate_data_key(request).await.expect("generate data key");
    }
    inject(&server, "Decrypt", "ServiceUnavailableTemporary", unavailable).await;
    let mut failed = 0;
    for ciphertext in ciphertexts.iter().cycle().take(decrypts + unavailable as usize) {
        if kms.decrypt(decrypt_request(ciphertext)).await.is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, unavailable, "the injected 503s");
    let digest = vec![7u8; 32];
    let request = pb::AsymmetricSignRequest {
        key_id: signer.clone(),
        algorithm: "ECDSA_SHA_256".into(),
        digest: digest.clone(),
        ..Default::default()
    };
    let signature = kms.asymmetric_sign(request).await.expect("sign").into_inner().signature;
    let request = pb::AsymmetricVerifyRequest {
        key_id: signer.clone(),
        algorithm: "ECDSA_SHA_256".into(),
        digest,
        signature,
        ..Default::default()
    };
    assert!(kms.asymmetric_verify(request).await.expect("verify").into_inner().valid);
    kms.disable_key(pb::DisableKeyRequest { key_id: key_id.clone() }).await.expect("disable");
    for _ in 0..disabled {
        let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"x".to_vec(), ..Default::default() };
        assert_eq!(error_code(&kms.encrypt(request).await.unwrap_err()), "Rejected.Disabled");
    }

    // Default keys, in two regions.
    let default_key = create_key(&mut kms, "").await;
    for _ in 0..5 {
        encrypt(&mut kms, HANGZHOU, &default_key, b"d").await;
    }
    let request = in_region(SHANGHAI, pb::CreateKeyRequest::default());
    let shanghai_key = kms.create_key(request).await.unwrap().into_inner().key_metadata.unwrap().key_id;
    encrypt(&mut kms, SHANGHAI, &shanghai_key, b"s").await;

    // kmsim's own services are not the KMS API and are not counted.
    all_audit_events(&server).await;
    list_system_events(&server, "").await;
    server.sim_now().await;

    let scrape = scrape(&server).await;
    let (encrypts, decrypts, data_keys) = (encrypts as f64, decrypts as f64, data_keys as f64);
    let (unavailable, disabled) = (f64::from(unavailable), f64::from(disabled));
    let in_instance = expected(&[
        ("symmetric_encrypt", encrypts + data_keys + disabled),
        ("symmetric_decrypt", decrypts + unavailable),
        ("asymmetric_sign", 1.0),
        ("asymmetric_verify", 1.0),
        ("other", 3.0), // two CreateKey, one DisableKey
    ]);
    assert_eq!(requests(&scrape, HANGZHOU, id), in_instance);
    assert_eq!(errors(&scrape, HANGZHOU, id), (disabled, unavailable));
    // CreateKmsInstance names no key: it counts with the default keys.
    let default_hangzhou = expected(&[("symmetric_encrypt", 5.0), ("other", 2.0)]);
    assert_eq!(requests(&scrape, HANGZHOU, ""), default_hangzhou);
    assert_eq!(errors(&scrape, HANGZHOU, ""), (0.0, 0.0));
    assert_eq!(requests(&scrape, SHANGHAI, ""), expected(&[("symmetric_encrypt", 1.0), ("other", 1.0)]));

    // Across every series, the counters add up to the KMS API calls in the audit trail.
    let api_calls =
        all_audit_events(&server).await.iter().filter(|r| r.service_name == "Kms" && r.event_type == "ApiCall").count();
    let total: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "kmsim_requests_total")
        .map(|s| match s.value {
            Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(total, api_calls as f64);

    // Latency: a positive total no longer than the test itself; the average is that of the latest minute.
    let instance_labels = [("region", HANGZHOU), ("kms_instance_id", id)];
    let latency = counter(&scrape, "kmsim_request_latency_seconds_total", &instance_labels);
    assert!(latency > 0.0 && latency < started.elapsed().as_secs_f64(), "{latency}");
    let average = gauge(&scrape, "kmsim_average_latency_milliseconds", &instance_labels);
    assert!(average > 0.0, "{average}");
    // Utilisation: the peak second's calls as a share of the spec, never more than all calls of the kind.
    let utilization = |kind| {
        let labels = [("region", HANGZHOU), ("kms_instance_id", id), ("kind", kind)];
        gauge(&scrape, "kmsim_qps_utilization_percent", &labels)
    };
    let symmetric_calls = in_instance["symmetric_encrypt"] + in_instance["symmetric_decrypt"];
    let symmetric = utilization("symmetric");
    assert!((0.1..=symmetric_calls * 100.0 / 1000.0).contains(&symmetric), "{symmetric}");
    let asymmetric = utilization("asymmetric");
    assert!((0.1..=0.2).contains(&asymmetric), "one or two asymmetric calls per 1000 QPS: {asymmetric}");

    // GetMetrics's minutes add up to the same counts.
    let request = pb::GetMetricsRequest { kms_instance_id: id.into(), ..Default::default() };
    let points = get_metrics(&server, request).await;
    let sum = |field: fn(&pb::MetricPoint) -> i64| points.iter().map(field).sum::<i64>() as f64;
    assert_eq!(sum(|p| p.requests), in_instance.values().sum::<f64>());
    assert_eq!(sum(|p| p.symmetric_encrypt_requests), in_instance["symmetric_encrypt"]);
    assert_eq!(sum(|p| p.symmetric_decrypt_requests), in_instance["symmetric_decrypt"]);
    assert_eq!((sum(|p| p.errors_4xx), sum(|p| p.errors_5xx)), (disabled, unavailable));

    let (status, _, _) = http_get(&server, "/other").await;
    assert_eq!(status, 404);
}

/// GetMetrics answers one point per simulated minute with calls, selected by region, instance and time.
#[tokio::test]
async fn get_metrics_gives_one_point_per_minute() {
    let server = TestServer::start().await;
    let (mut kms, mut instances) = (server.kms().await, server.instances().await);
    let instance = create_instance(&mut instances, HANGZHOU, 200, "").await;
    let id = instance.kms_instance_id.clone();

    // Each batch of calls starts one second into a minute, so it stays in that minute.
    let first_minute = next_minute(&server).await;
    let second_minute = SimTime(first_minute.millis() + 3 * 60_000);
    enter_minute(&server, first_minute).await;
    let key_id = create_instance_key(&mut kms, HANGZHOU, &id).await;
    let default_key = create_key(&mut kms, "").await;
    let mut ciphertexts = Vec::new();
    for _ in 0..3 {
        ciphertexts.push(encrypt(&mut kms, HANGZHOU, &key_id, b"first minute").await);
    }
    encrypt(&mut kms, HANGZHOU, &default_key, b"default").await;
    enter_minute(&server, second_minute).await;
    for ciphertext in &ciphertexts[..2] {
        kms.decrypt(decrypt_request(ciphertext)).await.expect("decrypt");
    }
    // A context the ciphertext was not sealed with: a 400 on the instance's key.
    let mut wrong_context = decrypt_request(&ciphertexts[2]);
    wrong_context.encryption_context.insert("purpose".into(), "other".into());
    assert_invalid(&kms.decrypt(wrong_context).await.unwrap_err(), "CiphertextBlob", "the wrong context");

    let request = pb::GetMetricsRequest { region: HANGZHOU.into(), kms_instance_id: id.clone(), ..Default::default() };
    let points = get_metrics(&server, request).await;
    let minutes: Vec<String> = points.iter().map(|p| p.minute.clone()).collect();
    assert_eq!(minutes, [first_minute.to_rfc3339(), second_minute.to_rfc3339()], "{points:#?}");
    let (first, second) = (&points[0], &points[1]);
    for point in &points {
        assert_eq!((point.region.as_str(), point.kms_instance_id.as_str()), (HANGZHOU, id.as_str()));
        assert!(point.average_latency_ms > 0.0, "{point:#?}");
    }
    assert_eq!((first.requests, first.symmetric_encrypt_requests, first.other_requests), (4, 3, 1), "{first:#?}");
    assert_eq!((first.errors_4xx, first.errors_5xx), (0, 0), "{first:#?}");
    assert_eq!((second.requests, second.symmetric_decrypt_requests), (3, 3), "{second:#?}");
    assert_eq!((second.symmetric_encrypt_requests, second.errors_4xx, second.errors_5xx), (0, 1, 0), "{second:#?}");
    // Peak one-second QPS as a share of the 200-QPS spec: between one call and all of them.
    assert!((0.5..=1.5).contains(&first.symmetric_qps_utilization), "{first:#?}");
    assert_eq!(first.asymmetric_qps_utilization, 0.0);

    // Time bounds select minutes.
    let from_second = pb::GetMetricsRequest {
        kms_instance_id: id.clone(),
        start_time: second_minute.to_rfc3339(),
        ..Default::default()
    };
    assert_eq!(get_metrics(&server, from_second).await, std::slice::from_ref(second));
    let until_first = pb::GetMetricsRequest {
        kms_instance_id: id.clone(),
        end_time: first_minute.plus_secs(59).to_rfc3339(),
        ..Default::default()
    };
    assert_eq!(get_metrics(&server, until_first).await, std::slice::from_ref(first));

    // `default` selects default keys; another region has nothing of this instance.
    let defaults =
        get_metrics(&server, pb::GetMetricsRequest { kms_instance_id: "default".into(), ..Default::default() }).await;
    assert!(defaults.iter().all(|p| p.kms_instance_id.is_empty()), "{defaults:#?}");
    let default_encrypts: i64 = defaults.iter().map(|p| p.symmetric_encrypt_requests).sum();
    assert_eq!(default_encrypts, 1, "{defaults:#?}");
    let elsewhere = pb::GetMetricsRequest { region: SHANGHAI.into(), ..Default::default() };
    assert!(get_metrics(&server, elsewhere).await.is_empty());
}
