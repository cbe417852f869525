//! Fault injection: SimulationService.InjectFault makes matching KMS calls
//! fail with a real error code, exactly as the real failure reaches the client
//! and the audit trail (only the native audit format names the fault), or
//! slows them; faults run out by count or by the simulation clock, and
//! kmsim's own services are never faulted.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use kmsim::proto as pb;
use kmsim::proto::simulation_service_client::SimulationServiceClient;
use prost::Message;
use serde_json::Value;
use tonic::Code;
use tonic::transport::Channel;

type Simulation = SimulationServiceClient<Channel>;

async fn inject(simulation: &mut Simulation, request: pb::InjectFaultRequest) -> pb::Fault {
    simulation.inject_fault(request).await.expect("inject fault").into_inner().fault.unwrap()
}

async fn faults(simulation: &mut Simulation) -> Vec<pb::Fault> {
    simulation.list_faults(pb::ListFaultsRequest {}).await.expect("list faults").into_inner().faults
}

fn encrypt_request(key_id: &str) -> pb::EncryptRequest {
    pb::EncryptRequest { key_id: key_id.to_owned(), plaintext: b"payload".to_vec(), ..Default::default() }
}

fn describe_request(key_id: &str) -> pb::DescribeKeyRequest {
    pb::DescribeKeyRequest { key_id: key_id.to_owned() }
}

fn request_id(status: &tonic::Status) -> String {
    status.metadata().get("x-kms-request-id").expect("a request id").to_str().unwrap().to_owned()
}

/// `message` with the client's own request id, which kmsim adopts.
fn with_request_id<T>(message: T, id: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("x-request-id", id.parse().unwrap());
    request
}

/// A failure as the client receives it: code, message, every metadata entry,
/// the rich error details as raw bytes, and those details decoded.
fn as_received(status: &tonic::Status) -> (Code, String, BTreeMap<String, String>, Vec<u8>, Vec<String>) {
    let metadata = status
        .metadata()
        .clone()
        .into_headers()
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("<binary>").to_owned()))
        .collect();
    let details = tonic_types::pb::Status::decode(status.details()).expect("google.rpc.Status details");
    assert_eq!((details.code, details.message.as_str()), (status.code() as i32, status.message()));
    let decoded = details
        .details
        .iter()
        .map(|any| {
            assert_eq!(any.type_url, "type.googleapis.com/google.rpc.ErrorInfo", "{details:?}");
            let info = tonic_types::pb::ErrorInfo::decode(&any.value[..]).expect("an ErrorInfo");
            let sorted: BTreeMap<_, _> = info.metadata.into_iter().collect();
            format!("{} {} {} {sorted:?}", any.type_url, info.reason, info.domain)
        })
        .collect();
    (status.code(), status.message().to_owned(), metadata, status.details().to_vec(), decoded)
}

/// [`as_received`] with the call's own request id (unique to every call) blanked wherever it appears.
fn as_received_but_its_request_id(
    status: &tonic::Status,
) -> (Code, String, BTreeMap<String, String>, Vec<u8>, Vec<String>) {
    let (code, message, mut metadata, mut details, mut decoded) = as_received(status);
    let id = metadata.get("x-kms-request-id").cloned().expect("a request id");
    let blank = "#".repeat(id.len());
    metadata.values_mut().for_each(|value| *value = value.replace(&id, &blank));
    decoded.iter_mut().for_each(|text| *text = text.replace(&id, &blank));
    let at = details.windows(id.len()).position(|w| w == id.as_bytes()).expect("the request id in the details");
    details[at..at + id.len()].copy_from_slice(blank.as_bytes());
    (code, message, metadata, details, decoded)
}

/// The native, ActionTrail and CloudTrail renderings of the record of `request_id`.
async fn renderings_of(server: &TestServer, request_id: &str) -> [Value; 3] {
    let mut found = Vec::new();
    for format in ["native", "actiontrail", "cloudtrail"] {
        let all = audit_renderings(server, format).await;
        let (_, json) = all.into_iter().find(|(record, _)| record.request_id == request_id).expect("the record");
        found.push(json);
    }
    found.try_into().unwrap()
}

/// A counted fault fails exactly that many calls, each audited as that failure, then calls succeed again.
#[tokio::test]
async fn a_counted_fault_fails_exactly_that_many_calls() {
    let server = TestServer::start().await;
    let (mut kms, mut simulation) = (server.kms().await, server.simulation().await);
    let key_id = create_key(&mut kms, "").await;
    let ciphertext = encrypt(&mut kms, "cn-hangzhou", &key_id, b"secret").await;
    let request = pb::InjectFaultRequest {
        method: "Decrypt".into(),
        error_code: "ServiceUnavailableTemporary".into(),
        probability: 1.0,
        count: 3,
        ..Default::default()
    };
    let fault = inject(&mut simulation, request).await;
    assert!(fault.fault_id.starts_with("fault-"), "{fault:#?}");
    assert_eq!((fault.method.as_str(), fault.key_id.as_str(), fault.remaining), ("Decrypt", "*", 3));
    assert_eq!(faults(&mut simulation).await, std::slice::from_ref(&fault));

    // Other operations pass.
    encrypt(&mut kms, "cn-hangzhou", &key_id, b"unaffected").await;
    let mut failed = Vec::new();
    for _ in 0..3 {
        let status = kms.decrypt(decrypt_request(&ciphertext)).await.unwrap_err();
        assert_error(&status, Code::Unavailable, "ServiceUnavailableTemporary", "503", None, "an injected failure");
        failed.push(request_id(&status));
    }
    assert!(faults(&mut simulation).await.is_empty(), "a spent fault goes");
    for _ in 0..2 {
        let opened = kms.decrypt(decrypt_request(&ciphertext)).await.expect("the fault is spent");
        assert_eq!(opened.into_inner().plaintext, b"secret");
    }

    let records = all_audit_events(&server).await;
    let unavailable: Vec<_> = records.iter().filter(|r| r.error_code == "ServiceUnavailableTemporary").collect();
    let mut audited: Vec<String> = unavailable.iter().map(|r| r.request_id.clone()).collect();
    audited.reverse();
    assert_eq!(audited, failed, "one failure record per injected failure");
    for record in &unavailable {
        assert_eq!(
            (record.event_name.as_str(), record.outcome.as_str(), record.http_status),
            ("Decrypt", "Failure", 503)
        );
        assert_eq!(record.key_id, key_id, "the record names the key the call resolved");
    }

    // Only the native format says a fault did it.
    for id in &failed {
        let [native, actiontrail, cloudtrail] = renderings_of(&server, id).await;
        assert_eq!(native["injectedFault"], fault.fault_id.as_str(), "{native:#}");
        for other in [actiontrail, cloudtrail] {
            let text = other.to_string();
            assert!(text.contains("ServiceUnavailableTemporary"), "{text}");
            assert!(!text.contains(&fault.fault_id) && !text.contains("injected"), "{text}");
        }
    }
    let succeeded = records.iter().find(|r| r.event_name == "Decrypt" && r.outcome == "Success").unwrap();
    let [native, _, _] = renderings_of(&server, &succeeded.request_id).await;
    assert!(native.get("injectedFault").is_none(), "{native:#}");
}

/// An injected failure reaches the client exactly as the real failure of the same code (status, metadata, details).
#[tokio::test]
async fn an_injected_failure_looks_exactly_like_a_real_one() {
    let server = TestServer::start().await;
    let (mut kms, mut simulation) = (server.kms().await, server.simulation().await);
    let disabled = create_key(&mut kms, "").await;
    kms.disable_key(pb::DisableKeyRequest { key_id: disabled.clone() }).await.unwrap();
    let enabled = create_key(&mut kms, "").await;
    let request = pb::InjectFaultRequest {
        method: "Encrypt".into(),
        key_id: enabled.clone(),
        error_code: "Rejected.Disabled".into(),
        count: 1,
        ..Default::default()
    };
    let fault = inject(&mut simulation, request).await;

    // Nothing but each call's own request id tells them apart.
    let real = kms.encrypt(with_request_id(encrypt_request(&disabled), "req-compare")).await.unwrap_err();
    let injected = kms.encrypt(with_request_id(encrypt_request(&enabled), "req-compare")).await.unwrap_err();
    assert_error(&real, Code::FailedPrecondition, "Rejected.Disabled", "409", None, "the real failure");
    assert_eq!(as_received_but_its_request_id(&injected), as_received_but_its_request_id(&real));
    let (_, _, metadata, _, details) = as_received(&real);
    for name in ["x-kms-error-code", "x-kms-http-status", "x-kms-request-id"] {
        assert!(metadata.contains_key(name), "{metadata:?}");
    }
    assert_eq!(details.len(), 1, "{details:?}");

    // Their audit records agree too, but for the key and the native format's injectedFault.
    let records = all_audit_events(&server).await;
    let failures: Vec<_> = records.iter().filter(|r| r.event_name == "Encrypt").collect();
    assert_eq!(failures.len(), 2);
    let (injected_record, real_record) = (failures[0], failures[1]);
    assert_eq!(injected_record.key_id, enabled);
    assert_eq!(real_record.key_id, disabled);
    let facts = |r: &pb::AuditEvent| (r.outcome.clone(), r.error_code.clone(), r.error_message.clone(), r.http_status);
    assert_eq!(facts(injected_record), facts(real_record));
    let both = audit_renderings(&server, "native").await;
    let native_of = |key: &str| both.iter().find(|(r, _)| r.event_name == "Encrypt" && r.key_id == key).unwrap();
    assert_eq!(native_of(&enabled).1["injectedFault"], fault.fault_id.as_str());
    assert!(native_of(&disabled).1.get("injectedFault").is_none());
}

/// A key pattern (with `?` and `*`) hits only the keys it matches, and not calls that name no key.
#[tokio::test]
async fn a_key_pattern_hits_only_matching_keys() {
    let server = TestServer::start().await;
    let (mut kms, mut simulation) = (server.kms().await, server.simulation().await);
    let target = create_key(&mut kms, "").await;
    let bystander = create_key(&mut kms, "").await;
    // The target's id with its first and last characters wild.
    let pattern = format!("?{}*", &target[1..target.len() - 1]);
    let request = pb::InjectFaultRequest {
        key_id: pattern.clone(),
        error_code: "Rejected.Throttling".into(),
        ..Default::default()
    };
    let fault = inject(&mut simulation, request).await;
    assert_eq!((fault.method.as_str(), fault.key_id.as_str(), fault.remaining), ("*", pattern.as_str(), 0));

    for _ in 0..3 {
        let status = kms.describe_key(describe_request(&target)).await.unwrap_err();
        assert_error(&status, Code::ResourceExhausted, "Rejected.Throttling", "429", None, "the target");
        let status = kms.encrypt(encrypt_request(&target)).await.unwrap_err();
        assert_error(&status, Code::ResourceExhausted, "Rejected.Throttling", "429", None, "the target");
        kms.describe_key(describe_request(&bystander)).await.expect("another key is not hit");
        kms.encrypt(encrypt_request(&bystander)).await.expect("another key is not hit");
    }
    kms.list_keys(pb::ListKeysRequest::default()).await.expect("a call naming no key is not hit");
    let listed = faults(&mut simulation).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].hits, 6, "an unlimited fault counts its hits: {listed:#?}");

    let cleared = simulation.clear_faults(pb::ClearFaultsRequest { fault_id: fault.fault_id.clone() }).await.unwrap();
    assert_eq!(cleared.into_inner().cleared, 1);
    kms.encrypt(encrypt_request(&target)).await.expect("cleared");
}

/// A delay-only fault slows matching calls by at least its delay and fails none.
#[tokio::test]
async fn a_delay_fault_slows_calls_without_failing_them() {
    let server = TestServer::start().await;
    let (mut kms, mut simulation) = (server.kms().await, server.simulation().await);
    let key_id = create_key(&mut kms, "").await;
    let delay = Duration::from_millis(300);
    let request = pb::InjectFaultRequest {
        method: "DescribeKey".into(),
        delay_ms: u32::try_from(delay.as_millis()).unwrap(),
        count: 2,
        ..Default::default()
    };
    let fault = inject(&mut simulation, request).await;
    assert!(fault.error_code.is_empty());

    let mut delayed = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        let answer = kms.describe_key(describe_request(&key_id)).await.expect("a delay is not a failure");
        assert!(started.elapsed() >= delay, "answered after {:?}", started.elapsed());
        delayed.push(answer.metadata().get("x-kms-request-id").unwrap().to_str().unwrap().to_owned());
    }
    kms.describe_key(describe_request(&key_id)).await.expect("after the count");
    assert!(faults(&mut simulation).await.is_empty());

    for (record, json) in audit_renderings(&server, "native").await {
        if record.event_name != "DescribeKey" {
            continue;
        }
        assert_eq!(record.outcome, "Success");
        let marked = json.get("injectedFault").and_then(Value::as_str);
        let expected = delayed.contains(&record.request_id).then_some(fault.fault_id.as_str());
        assert_eq!(marked, expected, "{json:#}");
    }
}

/// A fault with a TTL (or an expiry time) stops when the simulation clock passes it.
#[tokio::test]
async fn a_fault_expires_with_the_simulation_clock() {
    let server = TestServer::start().await;
    let (mut kms, mut simulation) = (server.kms().await, server.simulation().await);
    let key_id = create_key(&mut kms, "").await;
    let now = server.sim_now().await;
    let by_ttl = pb::InjectFaultRequest {
        method: "Encrypt".into(),
        error_code: "InternalFailure".into(),
        ttl: "10m".into(),
        ..Default::default()
    };
    let ttl_fault = inject(&mut simulation, by_ttl).await;
    let expire_time = now.plus_secs(3600).to_rfc3339();
    let by_time = pb::InjectFaultRequest {
        method: "GenerateDataKey".into(),
        error_code: "ServiceUnavailableTemporary".into(),
        expire_time: expire_time.clone(),
        ..Default::default()
    };
    let time_fault = inject(&mut simulation, by_time).await;
    assert_eq!(time_fault.expire_time, expire_time);
    let ttl_expiry = kmsim::clock::SimTime::parse_rfc3339(&ttl_fault.expire_time).expect("an expiry").millis();
    assert!((ttl_expiry - now.millis() - 600_000).abs() < 60_000, "{ttl_fault:#?}");

    let data_key = || pb::GenerateDataKeyRequest { key_id: key_id.clone(), ..Default::default() };
    assert_eq!(kms.encrypt(encrypt_request(&key_id)).await.unwrap_err().code(), Code::Internal);
    assert_eq!(kms.generate_data_key(data_key()).await.unwrap_err().code(), Code::Unavailable);

    server.advance_secs(11 * 60).await;
    kms.encrypt(encrypt_request(&key_id)).await.expect("the 10-minute fault is over");
    assert_eq!(kms.generate_data_key(data_key()).await.unwrap_err().code(), Code::Unavailable, "still within the hour");
    assert_eq!(faults(&mut simulation).await, [pb::Fault { hits: 2, ..time_fault }]);

    server.advance_secs(50 * 60).await;
    kms.generate_data_key(data_key()).await.expect("the hour is over");
    assert!(faults(&mut simulation).await.is_empty());
}

/// A fault on every method leaves kmsim's own services working, so a test can always see and undo it.
#[tokio::test]
async fn kmsims_own_services_are_never_faulted() {
    let server = TestServer::start().await;
    let (mut kms, mut simulation) = (server.kms().await, server.simulation().await);
    let request = pb::InjectFaultRequest { error_code: "ServiceUnavailableTemporary".into(), ..Default::default() };
    inject(&mut simulation, request).await;

    let status = kms.create_key(pb::CreateKeyRequest::default()).await.unwrap_err();
    assert_error(&status, Code::Unavailable, "ServiceUnavailableTemporary", "503", None, "the KMS API is faulted");
    let status = server.instances().await.list_kms_instances(pb::ListKmsInstancesRequest {}).await.unwrap_err();
    assert_error(&status, Code::Unavailable, "ServiceUnavailableTemporary", "503", None, "so is InstanceService");

    simulation.get_clock(pb::GetClockRequest {}).await.expect("GetClock");
    server.advance_secs(1).await;
    simulation.get_metrics(pb::GetMetricsRequest::default()).await.expect("GetMetrics");
    let records = all_audit_events(&server).await;
    assert!(records.iter().any(|r| r.event_name == "InjectFault"), "the audit service answers");
    list_system_events(&server, "").await;
    assert_eq!(faults(&mut simulation).await.len(), 1);

    let cleared = simulation.clear_faults(pb::ClearFaultsRequest::default()).await.expect("ClearFaults");
    assert_eq!(cleared.into_inner().cleared, 1);
    create_key(&mut kms, "").await;
}

/// Impossible faults are InvalidParameter naming the parameter; clearing an unknown fault is ResourceNotFound.
#[tokio::test]
async fn bad_faults_are_refused() {
    let server = TestServer::start().await;
    let mut simulation = server.simulation().await;
    let now = server.sim_now().await;
    let failing = |error_code: &str| pb::InjectFaultRequest { error_code: error_code.into(), ..Default::default() };
    let cases = [
        ("ErrorCode", failing("Rejected.NoSuchThing")),
        ("ErrorCode", pb::InjectFaultRequest::default()),
        ("Probability", pb::InjectFaultRequest { probability: 1.5, ..failing("InternalFailure") }),
        ("Probability", pb::InjectFaultRequest { probability: -0.5, ..failing("InternalFailure") }),
        ("DelayMs", pb::InjectFaultRequest { delay_ms: 300_001, ..Default::default() }),
        (
            "ExpireTime",
            pb::InjectFaultRequest { expire_time: now.plus_days(-1).to_rfc3339(), ..failing("InternalFailure") },
        ),
        ("Ttl", pb::InjectFaultRequest { ttl: "soon".into(), ..failing("InternalFailure") }),
    ];
    for (param, request) in cases {
        let what = format!("{request:?}");
        assert_invalid(&simulation.inject_fault(request).await.unwrap_err(), param, &what);
    }
    assert!(faults(&mut simulation).await.is_empty(), "nothing was injected");
    let status = simulation.clear_faults(pb::ClearFaultsRequest { fault_id: "fault-000000000000".into() }).await;
    assert_error(&status.unwrap_err(), Code::NotFound, "Forbidden.ResourceNotFound", "404", None, "an unknown fault");
}

/// With probability 0.5, about half the matching calls fail, and the fault counts exactly those it hit.
#[tokio::test]
async fn a_probable_fault_hits_about_that_share_of_calls() {
    let server = TestServer::start().await;
    let (mut kms, mut simulation) = (server.kms().await, server.simulation().await);
    let key_id = create_key(&mut kms, "").await;
    let request = pb::InjectFaultRequest {
        method: "DescribeKey".into(),
        error_code: "Rejected.Throttling".into(),
        probability: 0.5,
        ..Default::default()
    };
    inject(&mut simulation, request).await;
    let calls = 200;
    let mut failed = 0;
    for _ in 0..calls {
        if kms.describe_key(describe_request(&key_id)).await.is_err() {
            failed += 1;
        }
    }
    // Binomial(200, 0.5): 60..=140 is over five standard deviations either side.
    assert!((60..=140).contains(&failed), "{failed} of {calls} failed");
    assert_eq!(faults(&mut simulation).await[0].hits, failed);
}
