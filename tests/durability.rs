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

/// After a clean stop the log is checkpointed into `kmsim.db`, so that file alone, copied or opened with any
/// SQLite client, is the whole store: its tables, keys and audit records, and a trail that verifies.
#[tokio::test]
async fn after_a_clean_stop_kmsim_db_alone_holds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::TestServer::start_in(dir.path()).await;
    let mut kms = server.kms().await;
    let key_id = common::create_key(&mut kms, "").await;
    for i in 0..5 {
        let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: vec![i; 8], ..Default::default() };
        kms.encrypt(request).await.expect("encrypt");
    }
    drop(kms);
    server.stop().await;

    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("kmsim.db"), copy.path().join("kmsim.db")).unwrap();
    let wal = dir.path().join("kmsim.db-wal");
    if wal.exists() {
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "the log was copied into the database and emptied");
    }
    // Read-only, so that closing does not checkpoint whatever log there is: the store as the server left it.
    let counts = |dir: &std::path::Path| {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let conn = rusqlite::Connection::open_with_flags(dir.join("kmsim.db"), flags).unwrap();
        let count = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0)).unwrap();
        let tables = count("SELECT count(*) FROM sqlite_master WHERE type = 'table'");
        let (keys, records) = if tables == 0 {
            (0, 0)
        } else {
            (count("SELECT count(*) FROM keys"), count("SELECT count(*) FROM audit_events"))
        };
        (tables, keys, records)
    };
    let (tables, keys, records) = counts(copy.path());
    assert!(tables > 0, "kmsim.db alone has no tables");
    assert_eq!(keys, 1);
    assert!(records >= 6, "the key's creation and five encryptions: {records}");
    assert_eq!((tables, keys, records), counts(dir.path()), "the copy holds what the store does");
    let verified =
        kmsim::store::verify_dir(copy.path(), None, None).expect("reads the copy").expect("the trail verifies");
    assert_eq!(verified.records, records as u64);
    assert_eq!(verified.unsigned_tail, 0, "the final digest is in the file too");
}
