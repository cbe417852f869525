//! Walks the service descriptors served by reflection and calls every RPC of
//! every kmsim service: each call must leave exactly one audit record, under
//! its own service name and event name.

mod common;

use std::collections::HashMap;
use std::str::FromStr;

use common::*;
use kmsim::kernel::OpSpec;
use tonic::codegen::http::uri::PathAndQuery;

fn expected_service_name(service: &str) -> &'static str {
    match service {
        "kmsim.v1.KeyManagementService" | "kmsim.v1.InstanceService" | "kmsim.v1.SecretsManagerService" => "Kms",
        "kmsim.v1.AuditService" => "KmsimAudit",
        "kmsim.v1.SimulationService" => "KmsimSimulation",
        "kmsim.v1.EventService" => "KmsimEvents",
        "kmsim.v1.AccessService" => "KmsimAccess",
        other => panic!("a new service {other} needs its audit service name here"),
    }
}

#[tokio::test]
async fn every_rpc_of_every_service_leaves_exactly_one_audit_record() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let methods = declared_methods();
    assert!(methods.len() >= 26, "descriptor lists {} methods", methods.len());

    let mut sent = HashMap::new();
    for (i, (service, method, streaming)) in methods.iter().enumerate() {
        let request_id = format!("walk-{i}-{method}");
        let mut request = tonic::Request::new(());
        request.metadata_mut().insert("x-request-id", request_id.parse().unwrap());
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let path = PathAndQuery::from_str(&format!("/{service}/{method}")).unwrap();
        // An empty message is valid for every request type; most calls fail on
        // missing parameters, which must be audited exactly like successes.
        let codec = tonic_prost::ProstCodec::<(), ()>::default();
        // A stream is audited when it opens; the walk takes the opening and hangs up.
        let answer = if *streaming {
            grpc.server_streaming(request, path, codec).await.map(|_| ())
        } else {
            grpc.unary(request, path, codec).await.map(|_| ())
        };
        if let Err(status) = &answer {
            assert_ne!(status.code(), tonic::Code::Unimplemented, "{service}/{method} is not served");
            assert_ne!(status.code(), tonic::Code::Internal, "{service}/{method} answered INTERNAL");
        }
        sent.insert(request_id, (service.clone(), method.clone()));
    }

    let events = all_audit_events(&server).await;
    for (request_id, (service, method)) in &sent {
        let records: Vec<_> = events.iter().filter(|e| &e.client_request_id == request_id).collect();
        assert_eq!(records.len(), 1, "{service}/{method} left {} audit records", records.len());
        assert_eq!(&records[0].event_name, method);
        assert_eq!(records[0].service_name, expected_service_name(service), "{method}");
        assert_eq!(records[0].client_ip, "127.0.0.1");
    }
    server.stop().await;
}

#[test]
fn every_declared_rpc_has_an_audit_description_and_no_description_is_stale() {
    let declared: Vec<String> = declared_methods().into_iter().map(|(_, method, _)| method).collect();
    let described: Vec<&str> = OpSpec::ALL.iter().map(|op| op.event_name).collect();
    for method in &declared {
        assert!(described.contains(&method.as_str()), "{method} has no OpSpec");
    }
    for op in OpSpec::ALL {
        assert!(declared.iter().any(|m| m == op.event_name), "OpSpec {} matches no RPC", op.event_name);
    }
}
