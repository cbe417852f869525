//! Calls refused before any handler could decode them: each gets a precise
//! client error (never `INTERNAL`) carrying the server's request id, and
//! leaves exactly one audit record, like every other call.

mod common;

use common::*;
use kmsim::proto as pb;
use kmsim::server::Limits;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;

/// How the server answered a call made on a raw HTTP/2 stream.
struct RawAnswer {
    grpc_status: Option<i32>,
    error_code: String,
    request_id: String,
}

/// Sends `message` (already encoded, possibly not a valid message at all) to
/// `path` in one gRPC frame, with `x-request-id: request_id`.
async fn raw_call(server: &TestServer, path: &str, message: &[u8], request_id: &str) -> RawAnswer {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.expect("connects");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let driving = tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = http::Request::post(format!("http://{}{path}", server.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-request-id", request_id)
        .body(())
        .unwrap();
    let (response, mut body) = client.send_request(request, false).expect("sends a request");
    let mut framed = vec![0];
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(message);
    body.send_data(bytes::Bytes::from(framed), true).expect("sends the message");
    let response = response.await.expect("an answer");
    let header =
        |name: &str, map: &http::HeaderMap| map.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (parts, mut body) = response.into_parts();
    // A refusal is trailers-only: its status is in the headers. Otherwise it follows the body.
    let trailers = if parts.headers.contains_key("grpc-status") {
        parts.headers.clone()
    } else {
        while body.data().await.is_some() {}
        body.trailers().await.expect("trailers").unwrap_or_default()
    };
    driving.abort();
    RawAnswer {
        grpc_status: header("grpc-status", &trailers).parse().ok(),
        error_code: header("x-kms-error-code", &trailers),
        request_id: header("x-kms-request-id", &trailers),
    }
}

/// The one record of the call sent with `x-request-id: request_id`, checked against the answer it got.
#[track_caller]
fn the_record<'a>(events: &'a [pb::AuditEvent], request_id: &str, answered_id: &str) -> &'a pb::AuditEvent {
    let record = only_record(events, request_id);
    assert!(!answered_id.is_empty(), "{request_id}: the answer carries no request id");
    assert_eq!(record.request_id, answered_id, "{request_id}: the answer names another request");
    assert_eq!(record.outcome, "Failure");
    assert_eq!(record.client_ip, "127.0.0.1");
    record
}

#[tokio::test]
async fn an_undecodable_body_is_invalid_parameter_and_audited_once() {
    let server = TestServer::start().await;
    // A field tag with no field after it, then garbage.
    let answer = raw_call(&server, "/kmsim.v1.KeyManagementService/Encrypt", &[0x0a, 0x7f, 0xff], "garbled").await;
    assert_eq!(answer.grpc_status, Some(Code::InvalidArgument as i32));
    assert_eq!(answer.error_code, "InvalidParameter");

    // A string field that is not UTF-8.
    let not_utf8 = [0x0a, 0x02, 0xc3, 0x28];
    let invalid = raw_call(&server, "/kmsim.v1.KeyManagementService/Encrypt", &not_utf8, "not-utf8").await;
    assert_eq!(invalid.grpc_status, Some(Code::InvalidArgument as i32));
    assert_eq!(invalid.error_code, "InvalidParameter");

    let events = all_audit_events(&server).await;
    for (id, answer) in [("garbled", &answer), ("not-utf8", &invalid)] {
        let record = the_record(&events, id, &answer.request_id);
        assert_eq!(record.event_name, "Encrypt", "{id}: audited as the method it was sent to");
        assert_eq!(record.error_code, "InvalidParameter");
        assert_eq!(record.http_status, 400);
        assert!(record.error_message.contains("Body"), "{}", record.error_message);
        assert!(record.request_bytes > 0, "{id}: the record says how much arrived");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_method_is_refused_precisely_and_audited_once() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    for (request_id, path) in
        [("unknown-method", "/kmsim.v1.KeyManagementService/Nope"), ("unknown-service", "/acme.v9.Vault/Open")]
    {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let status = grpc
            .unary(
                with_request_id(request_id, ()),
                PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::<(), ()>::default(),
            )
            .await
            .map(drop)
            .expect_err("no such method");
        assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
        assert_eq!(error_code(&status), "InvalidParameter");
        let events = all_audit_events(&server).await;
        let record = the_record(&events, request_id, &answered_request_id(&status));
        assert_eq!(record.event_name, "UnknownOperation");
        let params: serde_json::Value = serde_json::from_str(&record.request_parameters).unwrap();
        assert_eq!(params["Method"], path);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_message_over_the_limit_is_out_of_range_and_audited_once() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let oversized = Limits::DEFAULT_MAX_MESSAGE_BYTES + 1;
    let request = pb::EncryptRequest { key_id: "k".into(), plaintext: vec![7; oversized], ..Default::default() };
    let status = kms.encrypt(with_request_id("too-big", request)).await.expect_err("over the limit");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(error_code(&status), "InvalidParameter");

    let events = all_audit_events(&server).await;
    let record = the_record(&events, "too-big", &answered_request_id(&status));
    assert_eq!(record.event_name, "Encrypt");
    assert_eq!(record.error_code, "InvalidParameter");
    server.stop().await;
}

#[tokio::test]
async fn headers_over_the_limit_are_out_of_range_and_audited_once() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let mut request = with_request_id("heavy-headers", pb::GenerateRandomRequest { length: 16 });
    request.metadata_mut().insert("x-padding", "p".repeat(70 * 1024).parse().unwrap());
    request.metadata_mut().insert("user-agent", "u".repeat(1000).parse().unwrap());
    let status = kms.generate_random(request).await.expect_err("headers over the limit");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(error_code(&status), "InvalidParameter");
    kms.generate_random(pb::GenerateRandomRequest { length: 16 }).await.expect("the server keeps serving");

    let events = all_audit_events(&server).await;
    let record = the_record(&events, "heavy-headers", &answered_request_id(&status));
    assert_eq!(record.event_name, "GenerateRandom");
    assert!(record.user_agent.len() <= 256, "a refused call's user agent is kept bounded");
    server.stop().await;
}
