//! The server as the README starts it: health, reflection and graceful shutdown.

mod common;

use common::process::ServerProcess;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as ServerReflectionClientV1Alpha;
use tonic_reflection::pb::{v1, v1alpha};

const KMSIM_SERVICES: [&str; 4] =
    ["kmsim.v1.KeyManagementService", "kmsim.v1.AuditService", "kmsim.v1.SimulationService", "grpc.health.v1.Health"];

#[tokio::test]
async fn the_readme_server_answers_health_and_reflection_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // The README's `cargo run --release -- serve`, on a free port and a private data dir.
    let server = ServerProcess::spawn(&["--listen", "127.0.0.1:0", "--data-dir", dir.path().to_str().unwrap()]);
    let channel = server.channel().await;

    let mut health = HealthClient::new(channel.clone());
    for service in ["", "kmsim.v1.KeyManagementService"] {
        let request = tonic_health::pb::HealthCheckRequest { service: service.into() };
        let status = health.check(request).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "health of {service:?}");
    }

    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let mut answers = reflection.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("v1 reflection did not list services");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in KMSIM_SERVICES {
        assert!(names.iter().any(|n| n == service), "v1 reflection lists {service}: {names:?}");
    }
    // Close the open reflection streams, so the shutdown below has nothing to wait for.
    drop((answers, reflection));

    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut reflection = ServerReflectionClientV1Alpha::new(channel.clone());
    let mut answers = reflection.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("v1alpha reflection did not list services");
    };
    assert!(list.service.iter().any(|s| s.name == "kmsim.v1.KeyManagementService"));
    drop((answers, reflection, health));

    // Wait off the runtime, so the client side can still answer the server's GOAWAY.
    let status = tokio::task::spawn_blocking(move || server.signal_and_wait("TERM")).await.unwrap();
    assert!(status.success(), "SIGTERM is a graceful shutdown: {status:?}");
}

#[test]
fn a_bad_account_id_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["serve", "--in-memory", "--listen", "127.0.0.1:0", "--account-id", "12345"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("16 digits"));
}
