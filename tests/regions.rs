//! Regions: `x-kms-region` picks the region a call runs in (default: the
//! server's region); keys, aliases, ARNs, audit records and events belong to
//! one region, and a key is invisible from every other.

mod common;

use common::*;
use kmsim::proto as pb;
use kmsim::server::ServerConfig;
use serde_json::Value;
use tonic::Code;

const ACCOUNT: &str = "1192853035118460";
const SHANGHAI: &str = "cn-shanghai";
const HANGZHOU: &str = "cn-hangzhou";

async fn describe_in(kms: &mut Kms, region: &str, key_id: &str) -> Result<pb::KeyMetadata, tonic::Status> {
    let request = pb::DescribeKeyRequest { key_id: key_id.to_owned() };
    Ok(kms.describe_key(in_region(region, request)).await?.into_inner().key_metadata.unwrap())
}

async fn create_key_in_region(kms: &mut Kms, region: &str) -> pb::KeyMetadata {
    let request = pb::CreateKeyRequest::default();
    kms.create_key(in_region(region, request)).await.expect("create key").into_inner().key_metadata.unwrap()
}

#[track_caller]
fn assert_key_not_found(result: Result<impl std::fmt::Debug, tonic::Status>, what: &str) {
    let status = result.expect_err(what);
    assert_error(&status, Code::NotFound, "Forbidden.KeyNotFound", "404", None, what);
}

/// A key made in one region is found there, with that region in its metadata and ARN, and nowhere else.
#[tokio::test]
async fn a_key_lives_only_in_the_region_it_was_created_in() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;

    let key = create_key_in_region(&mut kms, SHANGHAI).await;
    assert_eq!(key.region, SHANGHAI);
    assert_eq!(key.arn, format!("acs:kms:{SHANGHAI}:{ACCOUNT}:key/{}", key.key_id));
    assert_eq!(describe_in(&mut kms, SHANGHAI, &key.key_id).await.unwrap(), key, "found in its region");

    // From the server's own region (no header) and from a named third region, it does not exist.
    let plain = kms.describe_key(pb::DescribeKeyRequest { key_id: key.key_id.clone() }).await;
    assert_key_not_found(plain, "DescribeKey without a region header");
    assert_key_not_found(describe_in(&mut kms, "cn-beijing", &key.key_id).await, "DescribeKey from cn-beijing");
    let by_arn = kms.describe_key(in_region(HANGZHOU, pb::DescribeKeyRequest { key_id: key.arn.clone() })).await;
    assert_key_not_found(by_arn, "DescribeKey by its ARN from another region");

    let encrypt = |region: &str| {
        let request =
            pb::EncryptRequest { key_id: key.key_id.clone(), plaintext: b"regional".to_vec(), ..Default::default() };
        in_region(region, request)
    };
    assert_key_not_found(kms.encrypt(encrypt(HANGZHOU)).await, "Encrypt from another region");
    let ciphertext = kms.encrypt(encrypt(SHANGHAI)).await.expect("encrypt in its region").into_inner().ciphertext_blob;

    // The ciphertext names its key, but the key is not there in another region.
    let elsewhere = kms.decrypt(in_region(HANGZHOU, decrypt_request(&ciphertext))).await;
    assert_key_not_found(elsewhere, "Decrypt from another region");
    let opened = kms.decrypt(in_region(SHANGHAI, decrypt_request(&ciphertext))).await.expect("decrypt in its region");
    assert_eq!(opened.into_inner().plaintext, b"regional");

    // Listings are per region too.
    let home = create_key(&mut kms, "").await;
    let list = |region: &str| in_region(region, pb::ListKeysRequest { page_size: 100, ..Default::default() });
    let ids = |answer: pb::ListKeysResponse| answer.keys.into_iter().map(|k| k.key_id).collect::<Vec<_>>();
    assert_eq!(ids(kms.list_keys(list(SHANGHAI)).await.unwrap().into_inner()), std::slice::from_ref(&key.key_id));
    assert_eq!(ids(kms.list_keys(list(HANGZHOU)).await.unwrap().into_inner()), [home]);
    assert!(ids(kms.list_keys(list("ap-southeast-1")).await.unwrap().into_inner()).is_empty());
}

/// The same alias name can be used in two regions, each naming its own region's key.
#[tokio::test]
async fn aliases_are_per_region() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let mut keys = Vec::new();
    for region in [HANGZHOU, SHANGHAI] {
        let key = create_key_in_region(&mut kms, region).await;
        let alias = pb::CreateAliasRequest { alias_name: "alias/app".into(), key_id: key.key_id.clone() };
        kms.create_alias(in_region(region, alias)).await.expect("the same alias name in each region");
        keys.push(key.key_id);
    }
    for (region, key_id) in [HANGZHOU, SHANGHAI].into_iter().zip(&keys) {
        let found = describe_in(&mut kms, region, "alias/app").await.expect("the alias resolves");
        assert_eq!((found.key_id.as_str(), found.region.as_str()), (key_id.as_str(), region));
    }
    let status = describe_in(&mut kms, "cn-beijing", "alias/app").await.unwrap_err();
    assert_error(&status, Code::NotFound, "Forbidden.AliasNotFound", "404", None, "an alias of no key in cn-beijing");
}

/// A malformed region is InvalidParameter naming RegionId, refused before the operation runs, and audited.
#[tokio::test]
async fn a_malformed_region_is_invalid_parameter() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for bad in ["hangzhou", "CN-HANGZHOU", "cn-", "cn hangzhou", "cn_hangzhou", "-cn-hangzhou"] {
        let status = kms.create_key(in_region(bad, pb::CreateKeyRequest::default())).await.unwrap_err();
        assert_invalid(&status, "RegionId", bad);
    }
    let list = kms.list_keys(in_region(HANGZHOU, pb::ListKeysRequest::default())).await.unwrap().into_inner();
    assert_eq!(list.total_count, 0, "no refused call created a key");

    let refused: Vec<_> = all_audit_events(&server)
        .await
        .into_iter()
        .filter(|r| r.event_name == "CreateKey" && r.error_code == "InvalidParameter")
        .collect();
    assert_eq!(refused.len(), 6, "each refused call is audited");
    assert!(refused.iter().all(|r| r.region == HANGZHOU), "in the server's region: {refused:#?}");
}

/// Without a header, calls run in the server's configured region.
#[tokio::test]
async fn the_server_region_is_the_default() {
    let config = ServerConfig { region: "cn-beijing".into(), ..ServerConfig::default() };
    let server = TestServer::start_config(config).await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let key = describe_in(&mut kms, "cn-beijing", &key_id).await.expect("the key is in cn-beijing");
    assert_eq!(key.arn, format!("acs:kms:cn-beijing:{ACCOUNT}:key/{key_id}"));
    assert_key_not_found(describe_in(&mut kms, HANGZHOU, &key_id).await, "from kmsim's usual default region");
}

/// Audit records and system events carry the region the call ran in.
#[tokio::test]
async fn audit_records_and_events_carry_the_region() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let shanghai = create_key_in_region(&mut kms, SHANGHAI).await;
    let hangzhou = create_key(&mut kms, "").await;
    for (region, key_id) in [(SHANGHAI, &shanghai.key_id), (HANGZHOU, &hangzhou)] {
        let request = pb::ScheduleKeyDeletionRequest { key_id: key_id.clone(), pending_window_in_days: 7 };
        kms.schedule_key_deletion(in_region(region, request)).await.expect("schedule deletion");
    }

    let records = all_audit_events(&server).await;
    for (region, key_id) in [(SHANGHAI, &shanghai.key_id), (HANGZHOU, &hangzhou)] {
        let mine: Vec<_> = records.iter().filter(|r| &r.key_id == key_id).collect();
        let names: Vec<&str> = mine.iter().map(|r| r.event_name.as_str()).collect();
        assert_eq!(names, ["ScheduleKeyDeletion", "CreateKey"], "{mine:#?}");
        for record in mine {
            assert_eq!(record.region, region, "{record:#?}");
            assert_eq!(record.key_arn, format!("acs:kms:{region}:{ACCOUNT}:key/{key_id}"), "{record:#?}");
        }
    }

    let events = list_system_events(&server, "Key:DeleteKey:ScheduleDeletion").await;
    assert_eq!(events.len(), 2, "{events:#?}");
    for (region, key_id) in [(SHANGHAI, &shanghai.key_id), (HANGZHOU, &hangzhou)] {
        let arn = format!("acs:kms:{region}:{ACCOUNT}:key/{key_id}");
        let event = events.iter().find(|e| e.resource_id == arn).unwrap_or_else(|| panic!("no event for {arn}"));
        let document: Value = serde_json::from_str(&event.json).unwrap();
        assert_eq!(event.region, region);
        assert_eq!(document["regionId"], region);
        assert_eq!(document["resourceId"], arn.as_str());
        assert_eq!(document["content"]["deleteEntityArn"], arn.as_str());
    }
}
