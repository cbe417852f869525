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

/// A signed request is read whole before it runs (its signature covers the
/// body), but never past the limit every request has: one far over it, or one
/// just over it, is refused as too large, audited, having read no more than the limit.
#[tokio::test]
async fn a_signed_request_cannot_pass_the_message_limit() {
    let server = TestServer::start_config(common::auth_required_config()).await;
    let mut admin = common::SignedClients::of(&server, &common::admin_credentials()).await;
    let key_id = admin.kms.create_key(pb::CreateKeyRequest::default()).await.expect("a key").into_inner();
    let key_id = key_id.key_metadata.expect("metadata").key_id;

    for size in [2 * 1024 * 1024, 5 * 1024 * 1024] {
        let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: vec![7; size], ..Default::default() };
        let refused = admin.kms.encrypt(request).await.expect_err("a signed request over the limit");
        assert_eq!(refused.code(), Code::OutOfRange, "{size} bytes: {refused:?}");
        assert!(refused.message().contains(&Limits::DEFAULT_MAX_MESSAGE_BYTES.to_string()), "{}", refused.message());
    }
    let records = common::audit_events_as(&mut admin).await;
    let refused: Vec<_> = records.iter().filter(|r| r.event_name == "Encrypt").collect();
    assert_eq!(refused.len(), 2, "one record each: {refused:#?}");
    for record in refused {
        assert!(
            record.request_bytes <= Limits::DEFAULT_MAX_MESSAGE_BYTES as u64 + 5,
            "the server read {} bytes of a request over the limit",
            record.request_bytes
        );
    }
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

/// What a client sends cannot make a record, or a page of the trail, as large
/// as it likes: a parameter past 16 KiB is cut (its full length kept beside
/// it), and a page holds at most about a mebibyte of records, so every page
/// reads under the 4 MiB a gRPC client accepts by default.
#[tokio::test]
async fn records_and_pages_of_the_trail_stay_bounded_whatever_a_client_sends() {
    let server = TestServer::start().await;
    let key_id = encrypt_key(&server).await;
    let mut kms = server.kms().await;
    let context_of = |bytes: usize| std::collections::HashMap::from([("k".to_owned(), "v".repeat(bytes))]);

    let huge = pb::EncryptRequest {
        key_id: key_id.clone(),
        plaintext: b"x".to_vec(),
        encryption_context: context_of(900_000),
    };
    let refused = kms.encrypt(huge).await.expect_err("a 900 KB context is refused");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    for _ in 0..300 {
        let large = pb::EncryptRequest {
            key_id: key_id.clone(),
            plaintext: b"x".to_vec(),
            encryption_context: context_of(16_000),
        };
        kms.encrypt(large).await.expect_err("a 16 KB context is refused too");
    }

    // Every page decodes under the client's default limit, and together they hold every record.
    let records = common::all_audit_events(&server).await;
    let refused: Vec<_> = records.iter().filter(|r| r.event_name == "Encrypt").collect();
    assert_eq!(refused.len(), 301);
    let oldest = refused.last().expect("the 900 KB call's record");
    let params: serde_json::Value = serde_json::from_str(&oldest.request_parameters).expect("JSON");
    assert!(oldest.request_parameters.len() < 17 * 1024, "{} bytes kept", oldest.request_parameters.len());
    let original = params["EncryptionContextOriginalBytes"].as_u64().expect("the original length is kept");
    assert!(original > 900_000, "{original}");
}

/// A socket that says nothing is closed once its first-byte timeout passes.
#[tokio::test]
async fn a_silent_connection_is_closed() {
    use tokio::io::AsyncReadExt;
    let limits = Limits { first_byte_timeout: std::time::Duration::from_millis(200), ..Limits::default() };
    let server = TestServer::start_config(ServerConfig { limits, ..ServerConfig::default() }).await;
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.expect("connects");
    // The server speaks first (its HTTP/2 settings); then, hearing nothing, it hangs up.
    let mut sent = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(30), silent.read_to_end(&mut sent)).await;
    closed.expect("the server closes a silent connection").ok();
    // A client that speaks is served as ever.
    encrypt_key(&server).await;
}

/// Past `max_connections`, a new client waits until a connection closes.
#[tokio::test]
async fn connections_past_the_limit_wait_for_one_to_close() {
    let limits = Limits { max_connections: 2, ..Limits::default() };
    let server = TestServer::start_config(ServerConfig { limits, ..ServerConfig::default() }).await;
    let first = tokio::net::TcpStream::connect(server.addr).await.expect("connects");
    let _second = tokio::net::TcpStream::connect(server.addr).await.expect("connects");

    let third = tokio::spawn({
        let endpoint = server.endpoint();
        async move {
            let channel = tonic::transport::Channel::from_shared(endpoint).unwrap().connect().await.expect("connects");
            let mut kms = pb::key_management_service_client::KeyManagementServiceClient::new(channel);
            kms.create_key(pb::CreateKeyRequest::default()).await.expect("served once a slot is free")
        }
    });
    let waited = tokio::time::timeout(std::time::Duration::from_millis(500), async {
        while !third.is_finished() {
            tokio::task::yield_now().await;
        }
    });
    assert!(waited.await.is_err(), "a third connection was served while two were held");
    drop(first);
    tokio::time::timeout(std::time::Duration::from_secs(30), third)
        .await
        .expect("the third client is served once a connection closes")
        .expect("joined");
}
