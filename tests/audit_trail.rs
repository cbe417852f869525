//! Trails: committed records mirrored to JSON-lines files in a chosen format,
//! with selectors that leave out read-only or cryptographic events; changing
//! the selectors is itself audited.

mod common;

use std::path::Path;

use common::*;
use kmsim::audit::formats::Format;
use kmsim::audit::trail::{Selectors, TrailSpec};
use kmsim::proto as pb;
use kmsim::server::ServerConfig;
use serde_json::Value;

fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|line| serde_json::from_str(line).expect("one JSON document per line")).collect()
}

#[tokio::test]
async fn trails_mirror_committed_records_through_their_selectors() {
    let dir = tempfile::tempdir().unwrap();
    let (everything, management) = (dir.path().join("all.jsonl"), dir.path().join("logs/management.jsonl"));
    let trails = vec![
        TrailSpec { path: everything.clone(), format: Format::Native, selectors: Selectors::default() },
        TrailSpec {
            path: management.clone(),
            format: Format::ActionTrail,
            selectors: Selectors { exclude_cryptographic: true, ..Selectors::default() },
        },
    ];
    let server = TestServer::start_config(ServerConfig { trails, ..ServerConfig::default() }).await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let encrypt =
        pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"secret-marker".to_vec(), ..Default::default() };
    kms.encrypt(encrypt.clone()).await.unwrap();
    kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() }).await.unwrap();

    let mut audit = server.audit().await;
    let listed = audit.list_trails(pb::ListTrailsRequest {}).await.unwrap().into_inner().trails;
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[1].name.as_str(), listed[1].format.as_str()), ("trail-2", "actiontrail"));
    assert!(listed[1].exclude_cryptographic_events && !listed[1].exclude_read_only_events);

    // From now on trail-2 keeps only writes.
    let put = pb::PutEventSelectorsRequest {
        trail_name: "trail-2".into(),
        exclude_read_only_events: true,
        exclude_cryptographic_events: true,
    };
    let changed = audit.put_event_selectors(put).await.unwrap().into_inner();
    assert!(changed.exclude_read_only_events);
    kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() }).await.unwrap();
    kms.disable_key(pb::DisableKeyRequest { key_id: key_id.clone() }).await.unwrap();
    let unknown = pb::PutEventSelectorsRequest { trail_name: "trail-9".into(), ..Default::default() };
    assert_eq!(error_code(&audit.put_event_selectors(unknown).await.unwrap_err()), "Forbidden.ResourceNotFound");
    let records = all_audit_events(&server).await;
    // Stopping waits for the trails to write everything they were given.
    server.stop().await;

    let all = lines(&everything);
    let mut committed: Vec<&str> = records.iter().map(|r| r.event_id.as_str()).collect();
    committed.reverse();
    let mirrored: Vec<&str> = all.iter().map(|r| r["eventId"].as_str().unwrap()).collect();
    assert_eq!(mirrored[..committed.len()], committed[..], "every record, in commit order");
    assert_eq!(mirrored.len(), committed.len() + 1, "and the listing that read them");
    assert!(all.iter().all(|r| !r.to_string().contains("secret-marker")));

    let management = lines(&management);
    let names: Vec<&str> = management.iter().map(|r| r["eventName"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["CreateKey", "DescribeKey", "ListTrails", "PutEventSelectors", "DisableKey", "PutEventSelectors"],
        "no Encrypt ever; reads only until the selectors changed"
    );
    let put_record = records.iter().find(|r| r.event_name == "PutEventSelectors" && r.error_code.is_empty()).unwrap();
    assert!(put_record.request_parameters.contains("ExcludeReadOnlyEvents"), "the change is audited");
}
