//! The Alibaba OpenAPI front end, from the wire: requests built from the
//! protocol by `common::openapi` against a real server, on the same port as
//! gRPC. What the real SDKs do with it is `tests/alibaba_sdk.rs`.

mod common;

use base64::Engine as _;
use common::openapi::{Call, Reply, raw, send};
use common::*;
use kmsim::proto as pb;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn ok(server: &TestServer, call: Call) -> serde_json::Value {
    let reply = send(server.addr, &call).await;
    assert_eq!(reply.status, 200, "{} answered {:?}", call.action, reply.body);
    assert!(!reply.request_id().is_empty(), "every answer carries a RequestId");
    reply.body
}

async fn create_key(server: &TestServer) -> String {
    let body = ok(server, Call::new("CreateKey").param("KeySpec", "Aliyun_AES_256")).await;
    body["KeyMetadata"]["KeyId"].as_str().expect("KeyMetadata.KeyId").to_owned()
}

/// Every record, oldest first.
async fn records(server: &TestServer) -> Vec<pb::AuditEvent> {
    let mut events: Vec<_> = audit_renderings(server, "native").await.into_iter().map(|(event, _)| event).collect();
    events.reverse();
    events
}

async fn record_of(server: &TestServer, request_id: &str) -> pb::AuditEvent {
    let found: Vec<_> = records(server).await.into_iter().filter(|e| e.request_id == request_id).collect();
    assert_eq!(found.len(), 1, "exactly one record for request {request_id}");
    found.into_iter().next().unwrap()
}

fn assert_alibaba_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.code(), code, "{:?}", reply.body);
    for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
        assert!(
            reply.body[field].as_str().is_some_and(|v| !v.is_empty()),
            "error body lacks {field}: {:?}",
            reply.body
        );
    }
}

#[tokio::test]
async fn the_openapi_is_answered_on_the_grpc_port_in_alibabas_json() {
    let server = TestServer::start().await;
    let key_id = create_key(&server).await;
    let sealed = ok(
        &server,
        Call::new("Encrypt")
            .param("KeyId", &key_id)
            .param("Plaintext", &b64(b"hello, kms"))
            .param("EncryptionContext", r#"{"app": "billing", "n": 1}"#),
    )
    .await;
    assert_eq!(sealed["KeyId"], key_id.as_str());
    let blob = sealed["CiphertextBlob"].as_str().expect("CiphertextBlob").to_owned();
    // The context is a set of entries: another order and spacing is the same context.
    let opened = ok(
        &server,
        Call::new("Decrypt").param("CiphertextBlob", &blob).param("EncryptionContext", r#"{"n":1,"app":"billing"}"#),
    )
    .await;
    assert_eq!(opened["Plaintext"], b64(b"hello, kms").as_str());
    assert_eq!(opened["KeyVersionId"], sealed["KeyVersionId"]);

    // The same key through gRPC on the same port.
    let keys = server.kms().await.list_keys(pb::ListKeysRequest::default()).await.unwrap().into_inner().keys;
    assert!(keys.iter().any(|k| k.key_id == key_id));

    let listed = ok(&server, Call::new("ListKeys").param("PageSize", "1")).await;
    assert_eq!(listed["TotalCount"], 1);
    assert_eq!(listed["PageSize"], 1);
    assert_eq!(listed["Keys"]["Key"][0]["KeyId"], key_id.as_str());
}

#[tokio::test]
async fn a_refusal_is_alibabas_error_body_with_the_tables_status_and_its_record() {
    let server = TestServer::start().await;
    let key_id = create_key(&server).await;
    ok(&server, Call::new("DisableKey").param("KeyId", &key_id)).await;
    let mut call = Call::new("Encrypt").param("KeyId", &key_id).param("Plaintext", &b64(b"x"));
    call.user_agent = Some("AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2".into());
    let reply = send(server.addr, &call).await;
    assert_alibaba_error(&reply, 409, "Rejected.Disabled");

    let record = record_of(&server, reply.request_id()).await;
    assert_eq!(record.event_name, "Encrypt");
    assert_eq!(record.error_code, "Rejected.Disabled");
    assert_eq!(record.http_status, 409);
    assert_eq!(record.key_id, key_id);
    assert_eq!(record.user_agent, "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2");
    assert_eq!(record.client_ip, "127.0.0.1");
}

#[tokio::test]
async fn an_unknown_action_and_a_malformed_parameter_are_audited_refusals() {
    let server = TestServer::start().await;
    let unknown = send(server.addr, &Call::new("DescribeEverything")).await;
    assert_alibaba_error(&unknown, 404, "InvalidAction.NotFound");
    let record = record_of(&server, unknown.request_id()).await;
    assert_eq!(record.error_code, "InvalidAction.NotFound");
    assert!(record.request_parameters.contains("DescribeEverything"), "{}", record.request_parameters);

    let malformed = send(server.addr, &Call::new("ListKeys").param("PageSize", "ten")).await;
    assert_alibaba_error(&malformed, 400, "InvalidParameter");
    assert!(malformed.body["Message"].as_str().unwrap().contains("PageSize"));
    let record = record_of(&server, malformed.request_id()).await;
    assert_eq!(record.event_name, "ListKeys", "refused as the action it was addressed to");

    let not_base64 = send(server.addr, &Call::new("Decrypt").param("CiphertextBlob", "***")).await;
    assert_alibaba_error(&not_base64, 400, "InvalidParameter");
    assert_eq!(record_of(&server, not_base64.request_id()).await.event_name, "Decrypt");

    let no_action =
        raw(server.addr, b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
    assert_alibaba_error(&no_action, 400, "MissingParameter");
    record_of(&server, no_action.request_id()).await;
}

#[tokio::test]
async fn the_region_comes_from_the_host_called_and_actiontrail_names_it() {
    let server = TestServer::start().await;
    let mut call = Call::new("CreateKey").param("KeySpec", "Aliyun_AES_256");
    call.host = Some("kms.cn-shanghai.aliyuncs.com".into());
    let reply = send(server.addr, &call).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let arn = reply.body["KeyMetadata"]["Arn"].as_str().unwrap();
    assert!(arn.starts_with("acs:kms:cn-shanghai:"), "{arn}");

    let by_region_id = ok(&server, Call::new("CreateKey").param("RegionId", "cn-beijing")).await;
    assert!(by_region_id["KeyMetadata"]["Arn"].as_str().unwrap().starts_with("acs:kms:cn-beijing:"));

    let renderings = audit_renderings(&server, "actiontrail").await;
    let (_, trail) = renderings.iter().find(|(e, _)| e.request_id == reply.request_id()).expect("the record");
    assert_eq!(trail["eventSource"], "kms.cn-shanghai.aliyuncs.com");
    assert_eq!(trail["acsRegion"], "cn-shanghai");
}

#[tokio::test]
async fn throttling_asks_the_client_to_retry_later() {
    let server = TestServer::start().await;
    let key_id = create_key(&server).await;
    let fault = pb::InjectFaultRequest {
        method: "Encrypt".into(),
        error_code: "Rejected.Throttling".into(),
        ..Default::default()
    };
    server.simulation().await.inject_fault(fault).await.expect("inject a fault");
    let reply = send(server.addr, &Call::new("Encrypt").param("KeyId", &key_id).param("Plaintext", &b64(b"x"))).await;
    assert_alibaba_error(&reply, 429, "Rejected.Throttling");
    let retry_after: u64 = reply.headers["x-acs-retry-after"].parse().expect("a number");
    assert!(retry_after > 0, "the SDK raises ThrottlingException only for a positive retry-after");
}

#[tokio::test]
async fn signatures_are_verified_against_kmsims_access_keys_and_every_refusal_is_recorded() {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let user = create_access_key_as(&mut admin, "openapi-user").await;
    let (id, secret) = (user.access_key_id.as_str(), user.secret.expose());

    let right = send(server.addr, &Call::new("ListKeys").signed(ADMIN_KEY_ID, ADMIN_SECRET)).await;
    assert_eq!(right.status, 200, "{:?}", right.body);

    // A RAM user's signature verifies, and then its (empty) policies are judged, as on every front end.
    let as_user = send(server.addr, &Call::new("ListKeys").signed(id, secret)).await;
    assert_alibaba_error(&as_user, 403, "Forbidden.NoPermission");

    let wrong = send(server.addr, &Call::new("ListKeys").signed(id, "not-the-secret")).await;
    assert_alibaba_error(&wrong, 400, "SignatureDoesNotMatch");
    let message = wrong.body["Message"].as_str().unwrap();
    let (_, quoted) = message.split_once(':').expect("the message quotes the string to sign after a colon");
    assert!(quoted.starts_with("ACS3-HMAC-SHA256\n"), "{message}");

    let unknown = send(server.addr, &Call::new("ListKeys").signed("LTAInobodyAtAll00000001", "x")).await;
    assert_alibaba_error(&unknown, 404, "InvalidAccessKeyId.NotFound");

    let mut stale = Call::new("ListKeys").signed(ADMIN_KEY_ID, ADMIN_SECRET);
    stale.date = Some("2020-01-01T00:00:00Z".into());
    let stale = send(server.addr, &stale).await;
    assert_alibaba_error(&stale, 400, "InvalidTimeStamp.Expired");

    let mut once = Call::new("ListKeys").signed(ADMIN_KEY_ID, ADMIN_SECRET);
    once.nonce = Some("5e0f1a9c2b7d4c3e8f6a1b2c3d4e5f60".into());
    assert_eq!(send(server.addr, &once).await.status, 200);
    let replayed = send(server.addr, &once).await;
    assert_alibaba_error(&replayed, 400, "SignatureNonceUsed");

    let unsigned = send(server.addr, &Call::new("ListKeys")).await;
    assert_alibaba_error(&unsigned, 400, "MissingParameter");

    let events = admin
        .audit
        .list_audit_events(pb::ListAuditEventsRequest { page_size: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    let record = |reply: &Reply| {
        let found: Vec<_> = events.iter().filter(|e| e.request_id == reply.request_id()).collect();
        assert_eq!(found.len(), 1, "one record for {:?}", reply.body);
        found[0].clone()
    };
    for (reply, access_key_id) in
        [(&wrong, id), (&unknown, "LTAInobodyAtAll00000001"), (&stale, ADMIN_KEY_ID), (&replayed, ADMIN_KEY_ID)]
    {
        let event = record(reply);
        assert_eq!(event.event_name, "ListKeys");
        assert_eq!(event.error_code, reply.code());
        assert_eq!(event.access_key_id, access_key_id);
    }
    // The string to sign is the client's own request (a v1 one holds every parameter, plaintext
    // included): it goes back on the wire and never into a record.
    assert!(!record(&wrong).error_message.contains("string to sign"), "{}", record(&wrong).error_message);
    assert_eq!(record(&right).access_key_id, ADMIN_KEY_ID);
    assert_eq!(record(&as_user).access_key_id, id);
}
