//! What one client can make the server hold: requests over the message size
//! limit are refused before they are decoded, with an error that names the
//! size and the limit, and the server keeps serving; each connection is told
//! how many calls it may have open at once.

mod common;

use common::TestServer;
use kmsim::proto as pb;
use kmsim::server::{Limits, ServerConfig};
use tonic::Code;

async fn encrypt_key(server: &TestServer) -> String {
    let created = server.kms().await.create_key(pb::CreateKeyRequest::default()).await.expect("creates a key");
    created.into_inner().key_metadata.expect("metadata").key_id
}

#[tokio::test]
async fn an_oversized_request_is_refused_with_its_size_and_the_limit_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let key_id = encrypt_key(&server).await;
    let mut kms = server.kms().await;
    let oversized = Limits::DEFAULT_MAX_MESSAGE_BYTES + 1;
    let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: vec![7; oversized], ..Default::default() };

    let refused = kms.encrypt(request).await.expect_err("a request over the limit is refused");

    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    let limit = Limits::DEFAULT_MAX_MESSAGE_BYTES.to_string();
    assert!(refused.message().contains("too large") && refused.message().contains(&limit), "{}", refused.message());
    // The same connection still works, and a request just under the limit reaches the KMS, which judges it.
    let ok = pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"still serving".to_vec(), ..Default::default() };
    kms.encrypt(ok).await.expect("the connection survives the refusal");
    let under = pb::EncryptRequest { key_id, plaintext: vec![7; 1024 * 1024 - 64], ..Default::default() };
    let judged = kms.encrypt(under).await.expect_err("the KMS refuses plaintext over 6 KiB");
    assert_eq!(judged.code(), Code::InvalidArgument, "{judged:?}");
}

#[tokio::test]
async fn the_message_limit_is_configurable() {
    let limits = Limits { max_message_bytes: 64 * 1024, ..Limits::default() };
    let server = TestServer::start_config(ServerConfig { limits, ..ServerConfig::default() }).await;
    let mut secrets = server.secrets().await;
    let value = "x".repeat(70 * 1024);
    let request = pb::CreateSecretRequest { secret_name: "big".into(), secret_data: value, ..Default::default() };

    let refused = secrets.create_secret(request).await.expect_err("over the configured limit");

    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(refused.message().contains("65536"), "{}", refused.message());
}

/// Reads the SETTINGS the server sends on a raw HTTP/2 connection: the client
/// a real gRPC stack would be honours `max_concurrent_streams` from there.
async fn advertised_stream_limit(server: &TestServer) -> usize {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.expect("connects");
    let (mut client, mut connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let request = http::Request::post(format!("http://{}/grpc.health.v1.Health/Check", server.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut body) = client.send_request(request, false).expect("sends a request");
    // An empty HealthCheckRequest: not compressed, zero bytes long.
    body.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true).expect("sends the message");
    // The answer comes after the server's SETTINGS, so the limit is known once it is in.
    tokio::select! {
        answered = response => assert_eq!(answered.expect("an answer").status(), 200),
        closed = &mut connection => panic!("the connection closed first: {closed:?}"),
    }
    connection.max_concurrent_send_streams()
}

#[tokio::test]
async fn each_connection_is_told_how_many_calls_it_may_have_open() {
    let server = TestServer::start().await;
    assert_eq!(advertised_stream_limit(&server).await, Limits::DEFAULT_MAX_CONCURRENT_STREAMS as usize);

    let limits = Limits { max_concurrent_streams: 8, ..Limits::default() };
    let server = TestServer::start_config(ServerConfig { limits, ..ServerConfig::default() }).await;
    assert_eq!(advertised_stream_limit(&server).await, 8);
}
