//! `kmsim bench` end to end: against a server it starts itself (durable, with
//! its memory and start time reported) and against a running one (`--endpoint`),
//! with single-operation phases, a mixed phase, the floor, and errors counted
//! by their KMS code. The figures themselves are machine-dependent; what is
//! checked is that every measured call is accounted for and every field a
//! script reads is there and consistent.

mod common;

use common::TestServer;
use common::cli::{kmsim_at, str_field};
use kmsim::proto as pb;
use serde_json::Value;

fn phase<'a>(report: &'a Value, operation: &str) -> &'a Value {
    let phases = report["phases"].as_array().expect("phases");
    phases.iter().find(|p| p["operation"] == operation).unwrap_or_else(|| panic!("no phase {operation}: {report:#}"))
}

#[track_caller]
fn assert_measured(phase: &Value, calls_at_least: u64) {
    let calls = phase["calls"].as_u64().expect("calls");
    assert!(calls >= calls_at_least, "{phase:#}");
    let rate = phase["callsPerSecond"].as_f64().expect("callsPerSecond");
    let seconds = phase["seconds"].as_f64().expect("seconds");
    assert!(rate > 0.0 && (rate * seconds - calls as f64).abs() <= 1.0 + calls as f64 * 0.02, "{phase:#}");
    let latency = &phase["latencyMs"];
    let p = |name: &str| latency[name].as_f64().unwrap_or_else(|| panic!("latencyMs.{name}: {phase:#}"));
    assert!(p("p50") > 0.0 && p("p50") <= p("p90") && p("p90") <= p("p99"), "{phase:#}");
    assert!(p("p99") <= p("p999") && p("p999") <= p("max"), "{phase:#}");
}

#[tokio::test]
async fn bench_starts_a_durable_server_measures_each_operation_beside_the_floor_and_reports_its_memory() {
    let args = [
        "bench",
        "--ops",
        "encrypt,decrypt,generate-data-key,sign,verify,generate-mac,get-secret-value,describe-key",
        "--calls",
        "40",
        "--warm-up",
        "0",
        "--connections",
        "2",
        "--concurrency",
        "4",
        "--output",
        "json",
    ];
    // The endpoint is never used: without --endpoint the bench starts its own server.
    let report = kmsim_at("http://127.0.0.1:9", &args).await.json();

    let floor = report["floor"]["callsPerSecond"].as_f64().expect("a floor");
    assert_measured(&report["floor"]["before"], 40);
    assert_measured(&report["floor"]["after"], 40);
    for operation in [
        "encrypt",
        "decrypt",
        "generate-data-key",
        "sign",
        "verify",
        "generate-mac",
        "get-secret-value",
        "describe-key",
    ] {
        let phase = phase(&report, operation);
        assert_measured(phase, 40);
        assert_eq!(phase["errors"], serde_json::json!({}), "{operation} failed: {phase:#}");
        let ratio = phase["ratioToFloor"].as_f64().expect("ratioToFloor");
        let expected = phase["callsPerSecond"].as_f64().unwrap() / floor;
        assert!((ratio - expected).abs() < 0.001 + expected * 0.01, "{operation}: {ratio} vs {expected}");
    }
    let server = &report["server"];
    assert_eq!(server["startedByBench"], true);
    assert!(str_field(server, "store").starts_with("durable, temporary data dir"), "{server:#}");
    assert!(server["startToServingMs"].as_f64().unwrap() > 0.0, "{server:#}");
    let (rss, peak) = (server["rssBytes"].as_u64().unwrap(), server["peakRssBytes"].as_u64().unwrap());
    assert!(rss > 1_000_000 && rss <= peak, "{server:#}");
    // Every measured KMS call left a record; warm-up tails and setup add a few more.
    let measured: u64 = report["phases"].as_array().unwrap().iter().map(|p| p["calls"].as_u64().unwrap()).sum();
    assert!(server["auditedCalls"].as_u64().unwrap() >= measured, "{server:#}");
    assert_eq!(report["settings"]["payloadBytes"], 256);
}

#[tokio::test]
async fn bench_loads_a_running_server_with_a_mix_and_counts_errors_by_code() {
    let server = TestServer::start().await;
    // Every Decrypt fails as if its key were disabled; Encrypt is left alone.
    let fault = pb::InjectFaultRequest {
        method: "Decrypt".into(),
        error_code: "Rejected.Disabled".into(),
        ..Default::default()
    };
    server.simulation().await.inject_fault(fault).await.expect("injects the fault");

    let args = [
        "bench",
        "--endpoint",
        &server.endpoint(),
        "--ops",
        "decrypt",
        "--mix",
        "encrypt=3,decrypt=1",
        "--calls",
        "80",
        "--warm-up",
        "0",
        "--concurrency",
        "4",
        "--output",
        "json",
    ];
    let report = kmsim_at(&server.endpoint(), &args).await.json();

    let decrypt = phase(&report, "decrypt");
    assert_measured(decrypt, 80);
    assert_eq!(decrypt["errors"]["Rejected.Disabled"], decrypt["calls"], "{decrypt:#}");
    let mix = phase(&report, "mix encrypt=3,decrypt=1");
    assert_measured(mix, 80);
    let (encrypt, failed) = (&mix["byOperation"]["encrypt"], &mix["byOperation"]["decrypt"]);
    assert_eq!(encrypt["errors"], serde_json::json!({}), "{mix:#}");
    assert_eq!(failed["errors"]["Rejected.Disabled"], failed["calls"], "{mix:#}");
    let (e, d) = (encrypt["calls"].as_u64().unwrap(), failed["calls"].as_u64().unwrap());
    assert_eq!(e + d, mix["calls"].as_u64().unwrap());
    // Three encrypts to one decrypt in every worker's schedule, give or take the calls in flight at the end.
    assert!(e > 2 * d && e < 4 * d + 8, "encrypt {e}, decrypt {d}");
    assert_eq!(report["server"]["startedByBench"], false);
}

#[tokio::test]
async fn bench_refuses_what_it_cannot_do_with_a_clear_message() {
    let refused = kmsim_at("http://127.0.0.1:9", &["bench", "--endpoint", "https://127.0.0.1:9"]).await;
    assert!(refused.failed().contains("plaintext http:// only"), "{refused:#?}");
    let refused = kmsim_at("http://127.0.0.1:9", &["bench", "--mix", "encrypt=0"]).await;
    assert!(refused.failed().contains("weights go from 1 to 1000"), "{refused:#?}");
    let refused = kmsim_at("http://127.0.0.1:9", &["bench", "--endpoint", "http://127.0.0.1:9", "--calls", "1"]).await;
    assert!(refused.failed().contains("cannot connect"), "{refused:#?}");
}

#[tokio::test]
async fn bench_query_prints_one_field_of_the_report_for_scripts() {
    let server = TestServer::start().await;
    let args = |query: &'static str| {
        let endpoint = server.endpoint();
        async move {
            let args = ["bench", "--endpoint", &endpoint, "--ops", "describe-key", "--calls", "10", "--warm-up", "0"];
            kmsim_at(&endpoint, &[&args[..], &["--concurrency", "2", "--query", query]].concat()).await
        }
    };
    let ratio = args("phases.0.ratioToFloor").await;
    let ratio: f64 = ratio.ok().trim().parse().expect("a number alone on its line");
    assert!(ratio > 0.0);
    let operation = args("phases.0.operation").await;
    assert_eq!(operation.ok().trim(), "describe-key");
    let missing = args("phases.0.nothing").await;
    assert!(missing.failed().contains("nothing"), "{missing:#?}");
}

#[tokio::test]
async fn bench_loads_the_http_front_ends_beside_grpc_and_compares_them() {
    let server = TestServer::start().await;
    let args = [
        "bench",
        "--endpoint",
        &server.endpoint(),
        "--ops",
        "encrypt,openapi-encrypt,aws-encrypt,instance-encrypt",
        "--calls",
        "60",
        "--warm-up",
        "0",
        "--concurrency",
        "4",
        "--output",
        "json",
    ];
    let report = kmsim_at(&server.endpoint(), &args).await.json();
    let openapi = phase(&report, "openapi-encrypt");
    assert_measured(openapi, 60);
    assert_eq!(openapi["errors"], serde_json::json!({}), "{openapi:#}");
    let aws = phase(&report, "aws-encrypt");
    assert_measured(aws, 60);
    assert_eq!(aws["errors"], serde_json::json!({}), "{aws:#}");
    assert!(report["frontEnds"]["awsEncryptToGrpcEncrypt"].as_f64().is_some(), "{report:#}");
    let instance = phase(&report, "instance-encrypt");
    assert_measured(instance, 60);
    assert_eq!(instance["errors"], serde_json::json!({}), "{instance:#}");
    assert!(report["frontEnds"]["instanceEncryptToGrpcEncrypt"].as_f64().is_some(), "{report:#}");
    let rsa = &report["instanceApi"];
    assert_eq!(rsa["signature"], "RSA-2048 PKCS#1 v1.5 SHA-256", "{rsa:#}");
    for cost in ["verifyMicrosPerCall", "signMicrosPerCall"] {
        assert!(rsa[cost].as_f64().is_some_and(|micros| micros > 0.0), "{cost}: {rsa:#}");
    }
    let ratio = report["frontEnds"]["openapiEncryptToGrpcEncrypt"].as_f64().expect("the ratio of the two phases");
    let expected =
        openapi["callsPerSecond"].as_f64().unwrap() / phase(&report, "encrypt")["callsPerSecond"].as_f64().unwrap();
    assert!((ratio - expected).abs() < 0.01, "{ratio} against {expected}");

    // The calls went through the OpenAPI: signed, recorded as the SDK-style calls they were.
    let events = common::audit_renderings(&server, "native").await;
    let bench_calls = events
        .iter()
        .filter(|(e, _)| e.event_name == "Encrypt" && e.access_key_id == "LTAIkmsimBench0000000001")
        .count();
    // Both HTTP front ends' Encrypts, signed with the bench's AccessKey.
    assert!(bench_calls >= 120, "{bench_calls} Encrypt records through the HTTP front ends");
    // The instance API's, signed with the bench's ClientKey, on a key of the bench's instance.
    let by_client_key = events
        .iter()
        .filter(|(e, native)| {
            e.event_name == "Encrypt" && e.access_key_id.starts_with("KAAP.") && native["instanceId"].is_string()
        })
        .count();
    assert!(by_client_key >= 60, "{by_client_key} Encrypt records through the instance API");
}
