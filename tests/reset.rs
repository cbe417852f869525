//! Reset between tests (issue 30, item 7): one call returns kmsim to empty, or
//! to a seed, over gRPC (`SimulationService/Reset`, `kmsim seed reset`) and over
//! plain HTTP (`POST /kmsim/reset`), audited; what is not a KMS resource stays.

mod common;

use common::openapi::raw;
use common::{TestServer, all_audit_events, create_key, error_code};
use kmsim::proto as pb;
use kmsim::seed::SeedSource;
use kmsim::server::ServerConfig;

const SEED: &str = "keys:\n  - id: seeded-key\n    aliases: [alias/seeded]\n";

async fn make_things(server: &TestServer) -> String {
    let mut kms = server.kms().await;
    let key = create_key(&mut kms, "Aliyun_AES_256").await;
    let alias = pb::CreateAliasRequest { alias_name: "alias/made".into(), key_id: key.clone() };
    kms.create_alias(alias).await.unwrap();
    let secret = pb::CreateSecretRequest {
        secret_name: "made-secret".into(),
        secret_data: "s3cr3t".into(),
        version_id: "v1".into(),
        ..Default::default()
    };
    server.secrets().await.create_secret(secret).await.unwrap();
    let fault = pb::InjectFaultRequest {
        method: "Encrypt".into(),
        error_code: "Rejected.Throttling".into(),
        ..Default::default()
    };
    server.simulation().await.inject_fault(fault).await.unwrap();
    key
}

async fn describe(server: &TestServer, key_id: &str) -> Result<pb::DescribeKeyResponse, tonic::Status> {
    let request = pb::DescribeKeyRequest { key_id: key_id.into() };
    server.kms().await.describe_key(request).await.map(tonic::Response::into_inner)
}

#[tokio::test]
async fn reset_empties_keys_aliases_secrets_and_faults_and_is_audited() {
    let server = TestServer::start().await;
    let key = make_things(&server).await;

    let reset = server.simulation().await.reset(pb::ResetRequest::default()).await.unwrap().into_inner();
    assert_eq!((reset.keys_deleted, reset.aliases_deleted, reset.secrets_deleted), (2, 2, 1), "{reset:?}");
    // The secret's default key (and its alias) went with the key made here.
    assert!(reset.seeded.is_empty());

    assert_eq!(error_code(&describe(&server, &key).await.unwrap_err()), "Forbidden.KeyNotFound");
    assert_eq!(error_code(&describe(&server, "alias/made").await.unwrap_err()), "Forbidden.AliasNotFound");
    let listed = server.kms().await.list_keys(pb::ListKeysRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.total_count, 0, "no key is left: {listed:?}");
    let secret = pb::GetSecretValueRequest { secret_name: "made-secret".into(), ..Default::default() };
    assert!(server.secrets().await.get_secret_value(secret).await.is_err(), "no secret is left");
    let faults = server.simulation().await.list_faults(pb::ListFaultsRequest::default()).await.unwrap().into_inner();
    assert!(faults.faults.is_empty(), "no fault is left in force: {faults:?}");
    // A fresh key works at once after a reset.
    let mut kms = server.kms().await;
    let fresh = create_key(&mut kms, "Aliyun_AES_256").await;
    common::encrypt(&mut kms, "", &fresh, b"after the reset").await;

    let records = all_audit_events(&server).await;
    let reset_record = records.iter().find(|r| r.event_name == "Reset").expect("the reset is audited");
    assert_eq!(reset_record.error_code, "", "{reset_record:?}");
    assert!(records.iter().any(|r| r.event_name == "CreateKey"), "the trail from before the reset stays");
    server.stop().await;
}

#[tokio::test]
async fn reset_to_a_seed_leaves_exactly_the_seed_in_one_commit() {
    let server = TestServer::start().await;
    let key = make_things(&server).await;
    let request = pb::ResetRequest { seed: SEED.into(), source: "fixtures.yaml".into(), ..Default::default() };
    let reset = server.simulation().await.reset(request).await.unwrap().into_inner();
    assert_eq!(reset.keys_deleted, 2);
    let seeded: Vec<(&str, &str, &str)> = reset
        .seeded
        .iter()
        .filter(|i| i.kind != "key_version")
        .map(|i| (i.kind.as_str(), i.id.as_str(), i.action.as_str()))
        .collect();
    assert_eq!(seeded, [("key", "seeded-key", "created"), ("alias", "alias/seeded", "created")]);
    assert!(describe(&server, &key).await.is_err());
    let by_alias = describe(&server, "alias/seeded").await.unwrap();
    assert_eq!(by_alias.key_metadata.unwrap().key_id, "seeded-key");

    // A seed naming what exists is reset to, not merged with: the same seed again recreates it.
    let request = pb::ResetRequest { seed: SEED.into(), ..Default::default() };
    let again = server.simulation().await.reset(request).await.unwrap().into_inner();
    assert_eq!((again.keys_deleted, again.aliases_deleted), (1, 1), "{again:?}");
    assert!(again.seeded.iter().all(|item| item.action == "created"), "{again:?}");

    // A bad seed changes nothing: the reset is refused whole.
    let request = pb::ResetRequest { seed: "keys: [".into(), ..Default::default() };
    let refused = server.simulation().await.reset(request).await.unwrap_err();
    assert_eq!(error_code(&refused), "InvalidParameter");
    assert!(describe(&server, "seeded-key").await.is_ok(), "a refused reset deletes nothing");
    server.stop().await;
}

#[tokio::test]
async fn post_kmsim_reset_returns_the_server_to_its_own_seed_over_plain_http() {
    let seed = SeedSource { name: "serve --seed".into(), text: SEED.into() };
    let server = TestServer::start_config(ServerConfig { seed: Some(seed), ..ServerConfig::default() }).await;
    let key = make_things(&server).await;

    let request = format!(
        "POST /kmsim/reset?to=server-seed HTTP/1.1\r\nhost: {}\r\nuser-agent: suite/1.0\r\ncontent-length: 0\r\n\
         connection: close\r\n\r\n",
        server.addr
    );
    let reply = raw(server.addr, request.as_bytes()).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    // The seeded key, the one made here and its secret's default key.
    assert_eq!(reply.body["keysDeleted"], 3, "{:?}", reply.body);
    assert!(describe(&server, &key).await.is_err());
    assert!(describe(&server, "alias/seeded").await.is_ok(), "the server's own seed is back");

    let empty = format!(
        "POST /kmsim/reset HTTP/1.1\r\nhost: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        server.addr
    );
    let reply = raw(server.addr, empty.as_bytes()).await;
    assert_eq!((reply.status, reply.body["keysDeleted"].as_u64()), (200, Some(1)), "{:?}", reply.body);
    assert!(describe(&server, "seeded-key").await.is_err(), "without ?to=server-seed the reset leaves nothing");

    let get = format!("GET /kmsim/reset HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr);
    let reply = raw(server.addr, get.as_bytes()).await;
    assert_eq!((reply.status, reply.body["Code"].as_str()), (400, Some("InvalidParameter")), "{:?}", reply.body);

    let records = all_audit_events(&server).await;
    let resets: Vec<_> = records.iter().filter(|r| r.event_name == "Reset").collect();
    assert_eq!(resets.len(), 3, "each reset, refused or not, is audited");
    assert!(resets.iter().any(|r| r.user_agent == "suite/1.0"), "{resets:#?}");
    server.stop().await;
}

#[tokio::test]
async fn a_server_started_without_a_seed_refuses_to_reset_to_it() {
    let server = TestServer::start().await;
    let request = pb::ResetRequest { to_server_seed: true, ..Default::default() };
    let refused = server.simulation().await.reset(request).await.unwrap_err();
    assert_eq!(error_code(&refused), "InvalidParameter");
    assert!(refused.message().contains("--seed"), "{}", refused.message());
    server.stop().await;
}
