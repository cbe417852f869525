//! KMS instances: buying one (ids, ARN, spec, expiry), keys created in it,
//! seeing instances only from their own region, and expiry, which turns every
//! key of the instance Unavailable while default keys keep working.

mod common;

use common::*;
use kmsim::clock::SimTime;
use kmsim::proto as pb;
use tonic::Code;

const ACCOUNT: &str = "1192853035118460";
const HANGZHOU: &str = "cn-hangzhou";
const SHANGHAI: &str = "cn-shanghai";

/// Whether `id` is `prefix` followed by `random_len` lowercase letters and digits.
fn is_id(id: &str, prefix: &str, random_len: usize) -> bool {
    id.strip_prefix(prefix).is_some_and(|random| {
        random.len() == random_len && random.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn millis(rfc3339: &str) -> i64 {
    SimTime::parse_rfc3339(rfc3339).unwrap_or_else(|| panic!("{rfc3339:?} is not RFC 3339")).millis()
}

async fn get_instance(instances: &mut Instances, region: &str, id: &str) -> Result<pb::KmsInstance, tonic::Status> {
    let request = pb::GetKmsInstanceRequest { kms_instance_id: id.to_owned() };
    Ok(instances.get_kms_instance(in_region(region, request)).await?.into_inner().kms_instance.unwrap())
}

async fn list_instances(instances: &mut Instances, region: &str) -> Vec<pb::KmsInstance> {
    let request = in_region(region, pb::ListKmsInstancesRequest {});
    instances.list_kms_instances(request).await.expect("list instances").into_inner().kms_instances
}

async fn describe(kms: &mut Kms, key_id: &str) -> pb::KeyMetadata {
    let request = pb::DescribeKeyRequest { key_id: key_id.to_owned() };
    kms.describe_key(request).await.expect("describe").into_inner().key_metadata.unwrap()
}

/// An instance gets a region-coded id, its ARN, the spec, name and expiry asked for, and starts Enabled and empty.
#[tokio::test]
async fn an_instance_has_a_region_coded_id_arn_spec_and_expiry() {
    let server = TestServer::start().await;
    let mut instances = server.instances().await;
    let now = server.sim_now().await;
    let expire_time = now.plus_days(30).to_rfc3339();
    let request = pb::CreateKmsInstanceRequest {
        region: String::new(),
        spec: 1000,
        expire_time: expire_time.clone(),
        instance_name: "payments".into(),
    };
    let created = instances.create_kms_instance(request).await.expect("create").into_inner().kms_instance.unwrap();

    assert!(is_id(&created.kms_instance_id, "kst-hzz", 14), "{created:#?}");
    assert_eq!(created.arn, format!("acs:kms:{HANGZHOU}:{ACCOUNT}:instance/{}", created.kms_instance_id));
    assert_eq!((created.region.as_str(), created.spec, created.instance_name.as_str()), (HANGZHOU, 1000, "payments"));
    assert_eq!((created.status.as_str(), created.key_count), ("Enabled", 0));
    assert_eq!(millis(&created.expire_time), millis(&expire_time));
    let created_at = millis(&created.create_time);
    assert!(created_at >= now.millis() - 1000 && created_at <= server.sim_now().await.millis(), "{created:#?}");
    assert_eq!(get_instance(&mut instances, HANGZHOU, &created.kms_instance_id).await.unwrap(), created);

    // Defaults: the caller's region (here named by the header), the id as name, a year's term.
    let request = pb::CreateKmsInstanceRequest { spec: 200, ..Default::default() };
    let answer = instances.create_kms_instance(in_region(SHANGHAI, request)).await.expect("create in cn-shanghai");
    let defaulted = answer.into_inner().kms_instance.unwrap();
    assert!(is_id(&defaulted.kms_instance_id, "kst-shh", 14), "{defaulted:#?}");
    assert_eq!(defaulted.region, SHANGHAI);
    assert_eq!(defaulted.instance_name, defaulted.kms_instance_id);
    assert_eq!(millis(&defaulted.expire_time) - millis(&defaulted.create_time), 365 * SimTime::MS_PER_DAY);

    // The request's region field wins over the caller's.
    let request = pb::CreateKmsInstanceRequest { region: "cn-chengdu".into(), spec: 200, ..Default::default() };
    let answer = instances.create_kms_instance(in_region(SHANGHAI, request)).await.expect("create in cn-chengdu");
    let chengdu = answer.into_inner().kms_instance.unwrap();
    assert_eq!(chengdu.region, "cn-chengdu");
    assert!(is_id(&chengdu.kms_instance_id, "kst-cdd", 14), "{chengdu:#?}");
    assert_eq!(chengdu.arn, format!("acs:kms:cn-chengdu:{ACCOUNT}:instance/{}", chengdu.kms_instance_id));
}

/// Keys created in an instance get `key-` + region code ids and name their instance; default keys get UUIDs.
#[tokio::test]
async fn keys_in_an_instance_carry_its_region_code_and_id() {
    let server = TestServer::start().await;
    let (mut kms, mut instances) = (server.kms().await, server.instances().await);
    let hangzhou = create_instance(&mut instances, HANGZHOU, 200, "").await;
    let shanghai = create_instance(&mut instances, SHANGHAI, 200, "").await;

    let first = create_instance_key(&mut kms, HANGZHOU, &hangzhou.kms_instance_id).await;
    let second = create_instance_key(&mut kms, HANGZHOU, &hangzhou.kms_instance_id).await;
    assert!(is_id(&first, "key-hzz", 18), "{first}");
    assert_ne!(first, second);
    let meta = describe(&mut kms, &first).await;
    assert_eq!(meta.dkms_instance_id, hangzhou.kms_instance_id);
    assert_eq!(meta.arn, format!("acs:kms:{HANGZHOU}:{ACCOUNT}:key/{first}"));
    assert!(meta.replica_of_instance_id.is_empty());

    let in_shanghai = create_instance_key(&mut kms, SHANGHAI, &shanghai.kms_instance_id).await;
    assert!(is_id(&in_shanghai, "key-shh", 18), "{in_shanghai}");

    let default_key = create_key(&mut kms, "").await;
    assert!(uuid::Uuid::parse_str(&default_key).is_ok(), "a default key has a UUID id: {default_key}");
    assert!(describe(&mut kms, &default_key).await.dkms_instance_id.is_empty());

    let counted = get_instance(&mut instances, HANGZHOU, &hangzhou.kms_instance_id).await.unwrap();
    assert_eq!(counted.key_count, 2, "{counted:#?}");
    let listed = list_instances(&mut instances, SHANGHAI).await;
    assert_eq!(listed.iter().map(|i| i.key_count).collect::<Vec<_>>(), [1]);

    // An instance of another region cannot hold the caller's new key.
    let request = pb::CreateKeyRequest { dkms_instance_id: shanghai.kms_instance_id.clone(), ..Default::default() };
    let status = kms.create_key(in_region(HANGZHOU, request)).await.unwrap_err();
    assert_error(&status, Code::NotFound, "Forbidden.DKMSInstanceNotFound", "403", None, "another region's instance");
}

/// Get and List see only the caller's region's instances, oldest first.
#[tokio::test]
async fn instances_are_seen_only_from_their_region() {
    let server = TestServer::start().await;
    let mut instances = server.instances().await;
    let first = create_instance(&mut instances, HANGZHOU, 200, "").await;
    let other = create_instance(&mut instances, SHANGHAI, 1000, "").await;
    let second = create_instance(&mut instances, HANGZHOU, 2000, "").await;

    let ids = |list: Vec<pb::KmsInstance>| list.into_iter().map(|i| i.kms_instance_id).collect::<Vec<_>>();
    assert_eq!(
        ids(list_instances(&mut instances, HANGZHOU).await),
        [first.kms_instance_id.clone(), second.kms_instance_id.clone()]
    );
    assert_eq!(ids(list_instances(&mut instances, SHANGHAI).await), std::slice::from_ref(&other.kms_instance_id));
    assert!(list_instances(&mut instances, "cn-beijing").await.is_empty());

    assert_eq!(get_instance(&mut instances, SHANGHAI, &other.kms_instance_id).await.unwrap(), other);
    for (region, id) in [(HANGZHOU, &other.kms_instance_id), (SHANGHAI, &first.kms_instance_id)] {
        let status = get_instance(&mut instances, region, id).await.unwrap_err();
        assert_error(&status, Code::NotFound, "Forbidden.DKMSInstanceNotFound", "403", None, "another region's");
    }
    let unknown = get_instance(&mut instances, HANGZHOU, "kst-hzz00000000000000").await.unwrap_err();
    assert_error(&unknown, Code::NotFound, "Forbidden.DKMSInstanceNotFound", "403", None, "an unknown instance");
    let missing = get_instance(&mut instances, HANGZHOU, "").await.unwrap_err();
    assert_missing(&missing, "KmsInstanceId", "no instance id");
}

/// When the clock passes an instance's expiry its keys turn Unavailable and refuse crypto; default keys keep working.
#[tokio::test]
async fn an_expired_instance_makes_its_keys_unavailable() {
    let server = TestServer::start().await;
    let (mut kms, mut instances) = (server.kms().await, server.instances().await);
    // Whole seconds, as the instance keeps it.
    let expires = server.sim_now().await.plus_days(3).to_rfc3339();
    let instance = create_instance(&mut instances, "", 200, &expires).await;
    let id = instance.kms_instance_id.clone();
    let key_id = create_instance_key(&mut kms, HANGZHOU, &id).await;
    let ciphertext = encrypt(&mut kms, HANGZHOU, &key_id, b"instance data").await;
    let request =
        pb::CreateKeyRequest { dkms_instance_id: id.clone(), origin: "EXTERNAL".into(), ..Default::default() };
    let external_key = kms.create_key(request).await.unwrap().into_inner().key_metadata.unwrap().key_id;
    let default_key = create_key(&mut kms, "").await;
    let default_ciphertext = encrypt(&mut kms, HANGZHOU, &default_key, b"default data").await;

    server.advance_days(2).await;
    assert_eq!(key_state(&mut kms, &key_id).await, "Enabled", "a day before expiry");
    assert_eq!(get_instance(&mut instances, HANGZHOU, &id).await.unwrap().status, "Enabled");
    kms.decrypt(decrypt_request(&ciphertext)).await.expect("still works a day before expiry");

    server.advance_days(1).await;
    assert_eq!(key_state(&mut kms, &key_id).await, "Unavailable");
    assert_eq!(get_instance(&mut instances, HANGZHOU, &id).await.unwrap().status, "Expired");
    let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"x".to_vec(), ..Default::default() };
    let status = kms.encrypt(request).await.unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "Rejected.Unavailable", "409", None, "Encrypt");
    let status = kms.decrypt(decrypt_request(&ciphertext)).await.unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "Rejected.Unavailable", "409", None, "Decrypt");
    // Nor can material be imported into or removed from an Unavailable key.
    let request = pb::GetParametersForImportRequest {
        key_id: external_key.clone(),
        wrapping_algorithm: "RSAES_OAEP_SHA_256".into(),
        wrapping_key_spec: "RSA_2048".into(),
    };
    let status = kms.get_parameters_for_import(request).await.unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "Rejected.Unavailable", "409", None, "GetParametersForImport");
    let status =
        kms.delete_key_material(pb::DeleteKeyMaterialRequest { key_id: external_key.clone() }).await.unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "Rejected.Unavailable", "409", None, "DeleteKeyMaterial");
    assert_eq!(key_state(&mut kms, &external_key).await, "Unavailable");

    // Default keys are not in the instance and never expire.
    assert_eq!(key_state(&mut kms, &default_key).await, "Enabled");
    let opened = kms.decrypt(decrypt_request(&default_ciphertext)).await.expect("a default key still decrypts");
    assert_eq!(opened.into_inner().plaintext, b"default data");
    encrypt(&mut kms, HANGZHOU, &default_key, b"more").await;

    // No new keys in an expired instance.
    let request = pb::CreateKeyRequest { dkms_instance_id: id.clone(), ..Default::default() };
    assert_invalid(&kms.create_key(request).await.unwrap_err(), "DKMSInstanceId", "an expired instance");

    // The expiry is one service event, at the expiry time.
    let records = all_audit_events(&server).await;
    let expiries: Vec<_> = records.iter().filter(|r| r.event_name == "ExpireKmsInstance").collect();
    assert_eq!(expiries.len(), 1, "{expiries:#?}");
    let record = expiries[0];
    assert_eq!((record.event_type.as_str(), record.outcome.as_str()), ("AliyunServiceEvent", "Success"));
    assert_eq!((record.service_name.as_str(), record.region.as_str()), ("Kms", HANGZHOU));
    assert_eq!(millis(&record.event_time), millis(&expires), "{record:#?}");
    assert!(record.response_elements.contains(&id), "{record:#?}");
}

/// A spec outside 1..=100000, a bad or past expiry, or a malformed region is InvalidParameter naming it.
#[tokio::test]
async fn bad_instance_parameters_are_invalid() {
    let server = TestServer::start().await;
    let mut instances = server.instances().await;
    let now = server.sim_now().await;
    let cases = [
        ("Spec", pb::CreateKmsInstanceRequest { spec: 0, ..Default::default() }),
        ("Spec", pb::CreateKmsInstanceRequest { spec: -200, ..Default::default() }),
        ("Spec", pb::CreateKmsInstanceRequest { spec: 100_001, ..Default::default() }),
        ("Spec", pb::CreateKmsInstanceRequest { spec: i64::from(u32::MAX) + 200, ..Default::default() }),
        (
            "ExpireTime",
            pb::CreateKmsInstanceRequest {
                spec: 200,
                expire_time: now.plus_days(-1).to_rfc3339(),
                ..Default::default()
            },
        ),
        (
            "ExpireTime",
            pb::CreateKmsInstanceRequest { spec: 200, expire_time: "next year".into(), ..Default::default() },
        ),
        ("RegionId", pb::CreateKmsInstanceRequest { spec: 200, region: "Hangzhou".into(), ..Default::default() }),
    ];
    for (param, request) in cases {
        let what = format!("{request:?}");
        let status = instances.create_kms_instance(request).await.unwrap_err();
        assert_invalid(&status, param, &what);
    }
    assert!(list_instances(&mut instances, HANGZHOU).await.is_empty(), "no instance was created");
    // The smallest and largest specs are fine.
    for spec in [1, 100_000] {
        assert_eq!(create_instance(&mut instances, "", spec, "").await.spec, spec);
    }
}
