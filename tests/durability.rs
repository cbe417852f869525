//! A server killed with SIGKILL loses nothing it acknowledged.

mod common;

use common::process::ServerProcess;
use kmsim::proto as pb;
use kmsim::proto::audit_service_client::AuditServiceClient;
use kmsim::proto::key_management_service_client::KeyManagementServiceClient;
use kmsim::proto::simulation_service_client::SimulationServiceClient;

const ACKNOWLEDGED_CALLS: usize = 40;

fn with_request_id<T>(message: T, id: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("x-request-id", id.parse().unwrap());
    request
}

#[tokio::test]
async fn sigkill_after_acknowledged_calls_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();

    let server = ServerProcess::spawn(&["--listen", "127.0.0.1:0", "--data-dir", data_dir]);
    let channel = server.channel().await;
    let mut kms = KeyManagementServiceClient::new(channel.clone());
    let key = kms.create_key(pb::CreateKeyRequest::default()).await.unwrap().into_inner().key_metadata.unwrap();
    kms.create_alias(pb::CreateAliasRequest { alias_name: "alias/durable".into(), key_id: key.key_id.clone() })
        .await
        .unwrap();
    let tag = pb::Tag { tag_key: "team".into(), tag_value: "payments".into() };
    kms.tag_resource(pb::TagResourceRequest { key_id: key.key_id.clone(), tags: vec![tag.clone()] }).await.unwrap();
    let mut blobs = Vec::new();
    for i in 0..ACKNOWLEDGED_CALLS {
        let request = pb::EncryptRequest {
            key_id: "alias/durable".into(),
            plaintext: format!("message {i}").into_bytes(),
            ..Default::default()
        };
        let sealed = kms.encrypt(with_request_id(request, &format!("acked-{i}"))).await.unwrap().into_inner();
        blobs.push(sealed.ciphertext_blob);
    }
    let advance = pb::AdvanceClockRequest { advance: Some(prost_types::Duration { seconds: 86_400, nanos: 0 }) };
    SimulationServiceClient::new(channel).advance_clock(advance).await.unwrap();
    let status = server.signal_and_wait("KILL");
    assert!(!status.success(), "SIGKILL ends the process abruptly");

    let server = ServerProcess::spawn(&["--listen", "127.0.0.1:0", "--data-dir", data_dir]);
    let channel = server.channel().await;
    let mut kms = KeyManagementServiceClient::new(channel.clone());
    let described = kms
        .describe_key(pb::DescribeKeyRequest { key_id: "alias/durable".into() })
        .await
        .expect("key and alias survive")
        .into_inner()
        .key_metadata
        .unwrap();
    assert_eq!(described, key);
    let tags = kms.list_resource_tags(pb::ListResourceTagsRequest { key_id: key.key_id.clone() }).await.unwrap();
    assert_eq!(tags.into_inner().tags, vec![tag]);
    for (i, blob) in blobs.into_iter().enumerate() {
        let opened = kms
            .decrypt(pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() })
            .await
            .expect("old ciphertext still decrypts")
            .into_inner();
        assert_eq!(opened.plaintext, format!("message {i}").into_bytes());
    }
    let clock = SimulationServiceClient::new(channel.clone()).get_clock(pb::GetClockRequest {}).await.unwrap();
    assert!(clock.into_inner().offset.unwrap().seconds >= 86_400, "the advanced clock survives");

    let mut audit = AuditServiceClient::new(channel);
    let request = pb::ListAuditEventsRequest { event_name: "Encrypt".into(), page_size: 1000, ..Default::default() };
    let events = audit.list_audit_events(request).await.unwrap().into_inner().events;
    for i in 0..ACKNOWLEDGED_CALLS {
        let id = format!("acked-{i}");
        let found: Vec<_> = events.iter().filter(|e| e.client_request_id == id).collect();
        assert_eq!(found.len(), 1, "audit record of acknowledged call {id}");
        assert_eq!(found[0].key_id, key.key_id);
    }
}
