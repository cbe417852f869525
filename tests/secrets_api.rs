//! The Secrets Manager API (`kmsim.v1.SecretsManagerService`) through the real
//! gRPC server: its errors (exact Alibaba codes and HTTP statuses), secrets
//! under a disabled key, the service-managed default key, stage labels,
//! binary values, listing and describing, random passwords, the shapes of
//! managed rotations and their failures, values kept out of the audit trail
//! and the system events, durability across a restart, and authorisation on
//! the secret's ARN.
//!
//! The lifecycle scenarios (stages moved by puts, the GetSecretValue audit
//! query, the deletion window, scheduled rotation) live in `tests/secrets.rs`.

mod common;

use std::collections::BTreeSet;
use std::fmt::Debug;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::*;
use kmsim::proto as pb;
use kmsim::proto::secrets_manager_service_client::SecretsManagerServiceClient;
use kmsim::server::{DEFAULT_ACCOUNT_ID as ACCOUNT, DEFAULT_REGION as REGION};
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;

type Secrets = SecretsManagerServiceClient<Channel>;

const CURRENT: &str = "ACSCurrent";
const PREVIOUS: &str = "ACSPrevious";
const DEFAULT_KEY_ALIAS: &str = "alias/acs/secretsmanager";
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

fn create_request(name: &str, data: &str) -> pb::CreateSecretRequest {
    pb::CreateSecretRequest { secret_name: name.to_owned(), secret_data: data.to_owned(), ..Default::default() }
}

/// Creates a text secret whose first version is `version_id` ("" for a generated one).
async fn create_text(secrets: &mut Secrets, name: &str, version_id: &str, data: &str) -> pb::CreateSecretResponse {
    let request = pb::CreateSecretRequest { version_id: version_id.to_owned(), ..create_request(name, data) };
    secrets.create_secret(request).await.unwrap_or_else(|e| panic!("create {name}: {e:?}")).into_inner()
}

/// Creates a managed secret of `secret_type` with `extended_config`.
async fn create_managed(
    secrets: &mut Secrets,
    name: &str,
    secret_type: &str,
    extended_config: Value,
    initial: &str,
) -> pb::CreateSecretResponse {
    let request = pb::CreateSecretRequest {
        secret_type: secret_type.to_owned(),
        extended_config: extended_config.to_string(),
        ..create_request(name, initial)
    };
    secrets.create_secret(request).await.unwrap_or_else(|e| panic!("create {name}: {e:?}")).into_inner()
}

fn put_request(name: &str, version_id: &str, data: &str) -> pb::PutSecretValueRequest {
    pb::PutSecretValueRequest {
        secret_name: name.to_owned(),
        version_id: version_id.to_owned(),
        secret_data: data.to_owned(),
        ..Default::default()
    }
}

async fn put(secrets: &mut Secrets, name: &str, version_id: &str, data: &str) -> pb::PutSecretValueResponse {
    let request = put_request(name, version_id, data);
    secrets.put_secret_value(request).await.unwrap_or_else(|e| panic!("put {name}/{version_id}: {e:?}")).into_inner()
}

fn get_request(name: &str, version_id: &str, version_stage: &str) -> pb::GetSecretValueRequest {
    pb::GetSecretValueRequest {
        secret_name: name.to_owned(),
        version_id: version_id.to_owned(),
        version_stage: version_stage.to_owned(),
        fetch_extended_config: false,
    }
}

/// The value of `name` by version id and/or stage ("" and "" for ACSCurrent).
async fn value_at(secrets: &mut Secrets, name: &str, version_id: &str, stage: &str) -> pb::GetSecretValueResponse {
    let request = get_request(name, version_id, stage);
    secrets
        .get_secret_value(request)
        .await
        .unwrap_or_else(|e| panic!("get {name} ({version_id}/{stage}): {e:?}"))
        .into_inner()
}

async fn current(secrets: &mut Secrets, name: &str) -> pb::GetSecretValueResponse {
    value_at(secrets, name, "", "").await
}

async fn describe(secrets: &mut Secrets, name: &str) -> pb::DescribeSecretResponse {
    let request = pb::DescribeSecretRequest { secret_name: name.to_owned(), fetch_tags: true };
    secrets.describe_secret(request).await.unwrap_or_else(|e| panic!("describe {name}: {e:?}")).into_inner()
}

/// (version id, sorted stages), newest first.
async fn versions(secrets: &mut Secrets, name: &str, include_deprecated: bool) -> Vec<(String, Vec<String>)> {
    let request = pb::ListSecretVersionIdsRequest {
        secret_name: name.to_owned(),
        include_deprecated,
        page_number: 1,
        page_size: 100,
    };
    let listed = secrets.list_secret_version_ids(request).await.expect("list secret version ids").into_inner();
    listed
        .version_ids
        .into_iter()
        .map(|v| {
            let mut stages = v.version_stages;
            stages.sort();
            (v.version_id, stages)
        })
        .collect()
}

fn v(id: &str, stages: &[&str]) -> (String, Vec<String>) {
    let mut stages: Vec<String> = stages.iter().map(|s| (*s).to_owned()).collect();
    stages.sort();
    (id.to_owned(), stages)
}

async fn rotate(secrets: &mut Secrets, name: &str) -> Result<String, tonic::Status> {
    let request = pb::RotateSecretRequest { secret_name: name.to_owned(), version_id: String::new() };
    secrets.rotate_secret(request).await.map(|r| r.into_inner().version_id)
}

/// The failure of a call that had to fail.
#[track_caller]
fn refused<T: Debug>(result: Result<tonic::Response<T>, tonic::Status>, what: &str) -> tonic::Status {
    match result {
        Ok(response) => panic!("{what}: succeeded: {:?}", response.get_ref()),
        Err(status) => status,
    }
}

/// The Alibaba error code and HTTP status of a failure, read as a client does.
#[track_caller]
fn assert_code(status: &tonic::Status, code: &str, http: &str, what: &str) {
    assert_eq!((error_code(status).as_str(), http_status(status).as_str()), (code, http), "{what}: {status:?}");
}

/// `assert_code`, and the message names `param` as the API quotes it.
#[track_caller]
fn assert_names(status: &tonic::Status, code: &str, http: &str, param: &str, what: &str) {
    assert_code(status, code, http, what);
    assert!(status.message().contains(&format!("\"{param}\"")), "{what}: message does not name {param}: {status:?}");
}

fn secret_arn(name: &str) -> String {
    format!("acs:kms:{REGION}:{ACCOUNT}:secret/{name}")
}

fn document(event: &pb::SystemEvent) -> Value {
    serde_json::from_str(&event.json).unwrap_or_else(|e| panic!("event {} is not JSON: {e}", event.name))
}

/// The records of the call made with `x-request-id: request_id`, by event name.
fn records_of<'a>(events: &'a [pb::AuditEvent], request_id: &str) -> Vec<&'a pb::AuditEvent> {
    events.iter().filter(|e| e.client_request_id == request_id).collect()
}

fn names_of(records: &[&pb::AuditEvent]) -> BTreeSet<String> {
    records.iter().map(|r| r.event_name.clone()).collect()
}

fn json_of(value: &pb::GetSecretValueResponse) -> Value {
    serde_json::from_str(&value.secret_data)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", value.secret_name, value.secret_data))
}

// --- 1. errors ---

#[tokio::test]
async fn create_secret_refuses_missing_malformed_and_taken_names_and_missing_data() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;

    let status = refused(secrets.create_secret(create_request("", "value")).await, "no name");
    assert_names(&status, "MissingParameter", "400", "SecretName", "no name");
    let status = refused(secrets.create_secret(create_request("no-data", "")).await, "no data");
    assert_names(&status, "MissingParameter", "400", "SecretData", "no data");

    let too_long = "n".repeat(193);
    for bad in ["has space", "semi;colon", "quote\"d", "star*", "uni\u{e9}code", too_long.as_str()] {
        let status = refused(secrets.create_secret(create_request(bad, "value")).await, bad);
        assert_names(&status, "InvalidParameter", "400", "SecretName", bad);
    }
    // Every allowed kind of character, and the longest name.
    create_text(&mut secrets, "db/prod+app=1.x@y-z_", "", "value").await;
    create_text(&mut secrets, &"n".repeat(192), "", "value").await;

    create_text(&mut secrets, "taken", "v1", "first").await;
    let status = refused(secrets.create_secret(create_request("taken", "second")).await, "duplicate");
    assert_code(&status, "Rejected.ResourceExist", "409", "duplicate");
    assert_eq!(current(&mut secrets, "taken").await.secret_data, "first", "the duplicate changed nothing");

    create_text(&mut secrets, "doomed", "", "value").await;
    let delete = pb::DeleteSecretRequest { secret_name: "doomed".into(), ..Default::default() };
    secrets.delete_secret(delete).await.expect("delete");
    let status = refused(secrets.create_secret(create_request("doomed", "again")).await, "in delete window");
    assert_code(&status, "Rejected.ResourceInDeleteWindow", "409", "in delete window");
}

#[tokio::test]
async fn get_secret_value_of_an_unknown_secret_version_or_stage_is_resource_not_found() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    create_text(&mut secrets, "known", "v1", "one").await;
    put(&mut secrets, "known", "v2", "two").await;

    let unknown_arn = secret_arn("nope");
    let cases = [
        ("nope", "", "", "unknown secret"),
        ("known", "no-such-version", "", "unknown version id"),
        ("known", "", "NoSuchStage", "unknown stage"),
        ("known", "v2", PREVIOUS, "a version without that stage"),
        (unknown_arn.as_str(), "", "", "unknown secret by ARN"),
    ];
    for (name, version_id, stage, what) in cases {
        let status = refused(secrets.get_secret_value(get_request(name, version_id, stage)).await, what);
        assert_code(&status, "Forbidden.ResourceNotFound", "404", what);
        assert_eq!(status.code(), Code::NotFound, "{what}");
    }
    // The same secret, version and stage that exist do read.
    assert_eq!(value_at(&mut secrets, "known", "v1", PREVIOUS).await.secret_data, "one");
    assert_eq!(value_at(&mut secrets, &secret_arn("known"), "", "").await.secret_data, "two");
}

#[tokio::test]
async fn put_secret_value_with_a_taken_version_id_is_a_no_op_for_the_same_value_and_refused_for_another() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    create_text(&mut secrets, "idem", "v1", "one").await;
    put(&mut secrets, "idem", "v2", "two").await;
    let before = versions(&mut secrets, "idem", true).await;
    assert_eq!(before, vec![v("v2", &[CURRENT]), v("v1", &[PREVIOUS])]);

    // The same id and value again: success, nothing moves (not even ACSCurrent back to v1).
    let again = put(&mut secrets, "idem", "v2", "two").await;
    assert_eq!(again.version_id, "v2");
    let old_again = put(&mut secrets, "idem", "v1", "one").await;
    assert_eq!(old_again.version_id, "v1");
    assert_eq!(versions(&mut secrets, "idem", true).await, before, "a repeated put changes nothing");
    assert_eq!(current(&mut secrets, "idem").await.secret_data, "two");

    // The same id with another value.
    let status = refused(secrets.put_secret_value(put_request("idem", "v2", "other")).await, "taken id");
    assert_code(&status, "Rejected.ResourceExist", "409", "taken id");
    assert_eq!(versions(&mut secrets, "idem", true).await, before);
    assert_eq!(value_at(&mut secrets, "idem", "v2", "").await.secret_data, "two");

    let status = refused(secrets.put_secret_value(put_request("idem", "", "three")).await, "no version id");
    assert_names(&status, "MissingParameter", "400", "VersionId", "no version id");
    let status = refused(secrets.put_secret_value(put_request("nope", "v1", "x")).await, "unknown secret");
    assert_code(&status, "Forbidden.ResourceNotFound", "404", "put to an unknown secret");
}

#[tokio::test]
async fn delete_and_restore_refuse_bad_windows_and_secrets_not_being_deleted() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    create_text(&mut secrets, "kept", "", "value").await;

    for days in [6, 31, -1] {
        let request =
            pb::DeleteSecretRequest { secret_name: "kept".into(), recovery_window_in_days: days, ..Default::default() };
        let status = refused(secrets.delete_secret(request).await, &format!("window {days}"));
        assert_names(&status, "InvalidParameter", "400", "RecoveryWindowInDays", &format!("window {days}"));
    }
    assert_eq!(describe(&mut secrets, "kept").await.planned_delete_time, "", "no deletion was scheduled");
    assert_eq!(current(&mut secrets, "kept").await.secret_data, "value");

    let restore = pb::RestoreSecretRequest { secret_name: "kept".into() };
    let status = refused(secrets.restore_secret(restore).await, "restore a live secret");
    assert_code(&status, "Rejected.ResourceInUse", "409", "restore a live secret");

    let status =
        refused(secrets.restore_secret(pb::RestoreSecretRequest { secret_name: "nope".into() }).await, "restore");
    assert_code(&status, "Forbidden.ResourceNotFound", "404", "restore an unknown secret");

    // Scheduling twice is refused; the windows' bounds themselves are accepted.
    let window = |days| pb::DeleteSecretRequest {
        secret_name: "kept".into(),
        recovery_window_in_days: days,
        ..Default::default()
    };
    secrets.delete_secret(window(7)).await.expect("a 7-day window");
    let status = refused(secrets.delete_secret(window(30)).await, "delete twice");
    assert_code(&status, "Rejected.ResourceInDeleteWindow", "409", "delete twice");
    secrets.restore_secret(pb::RestoreSecretRequest { secret_name: "kept".into() }).await.expect("restore");
    secrets.delete_secret(window(30)).await.expect("a 30-day window");
}

#[tokio::test]
async fn rotation_is_refused_on_generic_secrets_and_managed_secrets_take_no_puts() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    create_text(&mut secrets, "generic", "", "value").await;

    let status = refused(
        secrets.rotate_secret(pb::RotateSecretRequest { secret_name: "generic".into(), ..Default::default() }).await,
        "rotate generic",
    );
    assert_code(&status, "Rejected.UnsupportedOperation", "400", "rotate a generic secret");
    assert_eq!(versions(&mut secrets, "generic", true).await.len(), 1, "no version was made");

    let config = json!({"SecretSubType": "SingleUser", "DBInstanceId": "rm-1", "AccountName": "app"});
    create_managed(&mut secrets, "rds", "Rds", config, r#"{"AccountName":"app","AccountPassword":"p"}"#).await;
    let status = refused(secrets.put_secret_value(put_request("rds", "v2", "value")).await, "put to Rds");
    assert_code(&status, "Rejected.UnsupportedOperation", "400", "put to a managed secret");
    assert_eq!(versions(&mut secrets, "rds", true).await.len(), 1, "no version was made");

    // Automatic rotation of a generic secret, at creation and afterwards.
    let request = pb::CreateSecretRequest { enable_automatic_rotation: true, ..create_request("generic-2", "value") };
    let status = refused(secrets.create_secret(request).await, "create generic with rotation");
    assert_names(&status, "InvalidParameter", "400", "EnableAutomaticRotation", "create generic with rotation");
    let policy = pb::UpdateSecretRotationPolicyRequest {
        secret_name: "generic".into(),
        enable_automatic_rotation: true,
        rotation_interval: "6h".into(),
    };
    let status = refused(secrets.update_secret_rotation_policy(policy).await, "enable on generic");
    assert_names(&status, "InvalidParameter", "400", "EnableAutomaticRotation", "enable on generic");
    assert_eq!(describe(&mut secrets, "generic").await.automatic_rotation, "Disabled");
}

#[tokio::test]
async fn rotation_intervals_run_from_six_hours_to_8760_hours() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    let rds = |name: &str, interval: &str| pb::CreateSecretRequest {
        secret_type: "Rds".into(),
        extended_config: json!({"SecretSubType": "SingleUser", "DBInstanceId": "rm-1"}).to_string(),
        enable_automatic_rotation: true,
        rotation_interval: interval.to_owned(),
        ..create_request(name, r#"{"AccountName":"a","AccountPassword":"p"}"#)
    };
    for interval in ["5h", "8761h", "21599s", "0h", "6x"] {
        let status = refused(secrets.create_secret(rds("short", interval)).await, interval);
        assert_names(&status, "InvalidParameter", "400", "RotationInterval", interval);
    }
    let status = refused(
        secrets.describe_secret(pb::DescribeSecretRequest { secret_name: "short".into(), fetch_tags: false }).await,
        "describe a refused secret",
    );
    assert_code(&status, "Forbidden.ResourceNotFound", "404", "no refused secret was created");

    let six = secrets.create_secret(rds("six", "6h")).await.expect("6h").into_inner();
    assert_eq!((six.automatic_rotation.as_str(), six.rotation_interval.as_str()), ("Enabled", "21600s"));
    assert!(!six.next_rotation_date.is_empty());
    let year = secrets.create_secret(rds("year", "8760h")).await.expect("8760h").into_inner();
    assert_eq!((year.automatic_rotation.as_str(), year.rotation_interval.as_str()), ("Enabled", "31536000s"));
    let default = secrets.create_secret(rds("default", "")).await.expect("default").into_inner();
    assert_eq!(default.rotation_interval, "604800s", "7 days by default");

    // The same bounds when the policy changes.
    let policy = |interval: &str| pb::UpdateSecretRotationPolicyRequest {
        secret_name: "six".into(),
        enable_automatic_rotation: true,
        rotation_interval: interval.to_owned(),
    };
    for interval in ["5h", "8761h"] {
        let status = refused(secrets.update_secret_rotation_policy(policy(interval)).await, interval);
        assert_names(&status, "InvalidParameter", "400", "RotationInterval", interval);
    }
    assert_eq!(describe(&mut secrets, "six").await.rotation_interval, "21600s", "a refused change changes nothing");
    secrets.update_secret_rotation_policy(policy("8760h")).await.expect("8760h");
    assert_eq!(describe(&mut secrets, "six").await.rotation_interval, "31536000s");
    secrets.update_secret_rotation_policy(policy("6h")).await.expect("6h");
    assert_eq!(describe(&mut secrets, "six").await.rotation_interval, "21600s");
}

#[tokio::test]
async fn values_are_at_most_30720_bytes_and_binary_values_are_base64() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;

    let binary = |name: &str, data: &str| pb::CreateSecretRequest {
        secret_data_type: "binary".into(),
        ..create_request(name, data)
    };
    for bad in ["not base64!", "****"] {
        let status = refused(secrets.create_secret(binary("bin", bad)).await, bad);
        assert_names(&status, "InvalidParameter", "400", "SecretData", bad);
    }
    let status = refused(
        secrets
            .create_secret(pb::CreateSecretRequest { secret_data_type: "hex".into(), ..create_request("t", "x") })
            .await,
        "unknown data type",
    );
    assert_code(&status, "InvalidParameter", "400", "unknown data type");

    let largest = "x".repeat(30_720);
    create_text(&mut secrets, "largest", "v1", &largest).await;
    assert_eq!(current(&mut secrets, "largest").await.secret_data, largest);
    let status = refused(secrets.create_secret(create_request("too-large", &"x".repeat(30_721))).await, "30721");
    assert_names(&status, "InvalidParameter", "400", "SecretData", "30721 bytes of text");

    // Bytes, not characters: 15361 two-byte characters are 30722 bytes.
    let status = refused(secrets.create_secret(create_request("wide", &"\u{e9}".repeat(15_361))).await, "wide");
    assert_names(&status, "InvalidParameter", "400", "SecretData", "30722 bytes in 15361 characters");

    let largest_binary = BASE64.encode(vec![0xa5u8; 30_720]);
    secrets.create_secret(binary("largest-binary", &largest_binary)).await.expect("30720 binary bytes");
    let status =
        refused(secrets.create_secret(binary("too-large-binary", &BASE64.encode(vec![0u8; 30_721]))).await, "b");
    assert_names(&status, "InvalidParameter", "400", "SecretData", "30721 binary bytes");

    // A put is held to the same limit.
    let status = refused(secrets.put_secret_value(put_request("largest", "v2", &"y".repeat(30_721))).await, "put");
    assert_names(&status, "InvalidParameter", "400", "SecretData", "a put of 30721 bytes");
    put(&mut secrets, "largest", "v2", &"y".repeat(30_720)).await;
    assert_eq!(current(&mut secrets, "largest").await.secret_data.len(), 30_720);
}

// --- 2. a disabled key ---

#[tokio::test]
async fn a_secret_under_a_disabled_key_cannot_be_read_or_written_and_its_decrypt_failure_is_audited() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let mut secrets = server.secrets().await;
    let key_id = create_key(&mut kms, "").await;
    let request = pb::CreateSecretRequest {
        encryption_key_id: key_id.clone(),
        version_id: "v1".into(),
        ..create_request("locked", "readable")
    };
    secrets.create_secret(request).await.expect("create under the key");
    assert_eq!(describe(&mut secrets, "locked").await.encryption_key_id, key_id);
    kms.disable_key(pb::DisableKeyRequest { key_id: key_id.clone() }).await.expect("disable");

    let status = refused(
        secrets.get_secret_value(with_request_id("read-disabled", get_request("locked", "", ""))).await,
        "read under a disabled key",
    );
    assert_error(&status, Code::FailedPrecondition, "Rejected.Disabled", "409", None, "read under a disabled key");

    let events = all_audit_events(&server).await;
    let records = records_of(&events, "read-disabled");
    assert_eq!(names_of(&records), BTreeSet::from(["GetSecretValue".to_owned(), "Decrypt".to_owned()]));
    assert_eq!(records.len(), 2, "{records:#?}");
    for record in &records {
        assert_eq!(
            (record.outcome.as_str(), record.error_code.as_str(), record.http_status),
            ("Failure", "Rejected.Disabled", 409),
            "{record:#?}"
        );
    }
    let get = records.iter().find(|r| r.event_name == "GetSecretValue").unwrap();
    assert_eq!((get.secret_name.as_str(), get.secret_arn.as_str()), ("locked", secret_arn("locked").as_str()));
    let decrypt = records.iter().find(|r| r.event_name == "Decrypt").unwrap();
    assert_eq!(decrypt.key_id, key_id, "the Decrypt names the secret's key");
    assert_eq!(decrypt.invoked_by, "SecretsManager");

    // Writing is refused too, and makes no version.
    let before = versions(&mut secrets, "locked", true).await;
    let status = refused(secrets.put_secret_value(put_request("locked", "v2", "new")).await, "put under disabled");
    assert_error(&status, Code::FailedPrecondition, "Rejected.Disabled", "409", None, "put under a disabled key");
    assert_eq!(versions(&mut secrets, "locked", true).await, before, "no version was made");
    assert_eq!(before, vec![v("v1", &[CURRENT])]);

    kms.enable_key(pb::EnableKeyRequest { key_id: key_id.clone() }).await.expect("enable");
    let value = current(&mut secrets, "locked").await;
    assert_eq!((value.version_id.as_str(), value.secret_data.as_str()), ("v1", "readable"));
    put(&mut secrets, "locked", "v2", "new").await;
    assert_eq!(current(&mut secrets, "locked").await.secret_data, "new");
}

// --- 3. the default key ---

#[tokio::test]
async fn secrets_without_a_key_share_the_service_key_made_once_on_first_use() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let mut secrets = server.secrets().await;

    secrets.create_secret(with_request_id("first-secret", create_request("one", "1"))).await.expect("first");
    secrets.create_secret(with_request_id("second-secret", create_request("two", "2"))).await.expect("second");

    let aliases = kms
        .list_aliases(pb::ListAliasesRequest { page_number: 1, page_size: 100 })
        .await
        .expect("list aliases")
        .into_inner()
        .aliases;
    let service: Vec<&pb::Alias> = aliases.iter().filter(|a| a.alias_name == DEFAULT_KEY_ALIAS).collect();
    assert_eq!(service.len(), 1, "{aliases:#?}");
    let key_id = service[0].key_id.clone();
    assert_eq!(describe(&mut secrets, "one").await.encryption_key_id, key_id);
    assert_eq!(describe(&mut secrets, "two").await.encryption_key_id, key_id);
    assert_eq!(key_state(&mut kms, &key_id).await, "Enabled");
    let key = kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() }).await.unwrap().into_inner();
    let meta = key.key_metadata.unwrap();
    assert_eq!((meta.key_spec.as_str(), meta.key_usage.as_str()), ("Aliyun_AES_256", "ENCRYPT/DECRYPT"));

    let events = all_audit_events(&server).await;
    let first = records_of(&events, "first-secret");
    assert_eq!(
        names_of(&first),
        BTreeSet::from(["CreateSecret".to_owned(), "CreateKey".to_owned(), "Encrypt".to_owned()]),
        "{first:#?}"
    );
    assert_eq!(first.len(), 3, "{first:#?}");
    let create_key = first.iter().find(|r| r.event_name == "CreateKey").unwrap();
    assert_eq!((create_key.key_id.as_str(), create_key.outcome.as_str()), (key_id.as_str(), "Success"));
    let second = records_of(&events, "second-secret");
    assert_eq!(
        names_of(&second),
        BTreeSet::from(["CreateSecret".to_owned(), "Encrypt".to_owned()]),
        "the key is made once: {second:#?}"
    );
    assert_eq!(events.iter().filter(|e| e.event_name == "CreateKey").count(), 1);
}

#[tokio::test]
async fn a_secret_needs_a_symmetric_encrypt_decrypt_key() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let mut secrets = server.secrets().await;
    let sign_key = create_key(&mut kms, "RSA_2048").await;
    let request =
        pb::CreateKeyRequest { key_spec: "RSA_2048".into(), key_usage: "ENCRYPT/DECRYPT".into(), ..Default::default() };
    let rsa_encrypt = kms.create_key(request).await.expect("RSA encrypt key").into_inner().key_metadata.unwrap().key_id;
    let hmac_key = create_key(&mut kms, "HMAC_256").await;

    for (key_id, what) in [(&sign_key, "RSA sign"), (&rsa_encrypt, "RSA encrypt"), (&hmac_key, "HMAC")] {
        let request = pb::CreateSecretRequest { encryption_key_id: key_id.clone(), ..create_request("s", "value") };
        let status = refused(secrets.create_secret(request).await, what);
        assert_names(&status, "InvalidParameter", "400", "EncryptionKeyId", what);
    }
    let status = refused(
        secrets.describe_secret(pb::DescribeSecretRequest { secret_name: "s".into(), fetch_tags: false }).await,
        "describe",
    );
    assert_code(&status, "Forbidden.ResourceNotFound", "404", "no secret was made");

    let request = pb::CreateSecretRequest { encryption_key_id: "no-such-key".into(), ..create_request("s", "value") };
    let status = refused(secrets.create_secret(request).await, "unknown key");
    assert_code(&status, "Forbidden.KeyNotFound", "404", "an unknown key");
}

// --- 4. stages ---

#[tokio::test]
async fn update_secret_version_stage_moves_custom_stages_and_acscurrent() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    create_text(&mut secrets, "staged", "v1", "one").await;
    put(&mut secrets, "staged", "v2", "two").await;
    let request =
        pb::PutSecretValueRequest { version_stages: vec!["Custom".into()], ..put_request("staged", "v3", "three") };
    let put3 = secrets.put_secret_value(request).await.expect("put v3 as Custom").into_inner();
    assert_eq!(put3.version_stages, vec!["Custom".to_owned()]);
    assert_eq!(
        versions(&mut secrets, "staged", true).await,
        vec![v("v3", &["Custom"]), v("v2", &[CURRENT]), v("v1", &[PREVIOUS])]
    );
    assert_eq!(value_at(&mut secrets, "staged", "", "Custom").await.secret_data, "three");

    let stage = |stage: &str, from: &str, to: &str| pb::UpdateSecretVersionStageRequest {
        secret_name: "staged".into(),
        version_stage: stage.to_owned(),
        remove_from_version: from.to_owned(),
        move_to_version: to.to_owned(),
    };

    // A custom stage moves from v3 to v1; v3 keeps no stage and is deprecated.
    secrets.update_secret_version_stage(stage("Custom", "v3", "v1")).await.expect("move Custom");
    assert_eq!(value_at(&mut secrets, "staged", "", "Custom").await.secret_data, "one");
    assert_eq!(
        versions(&mut secrets, "staged", false).await,
        vec![v("v2", &[CURRENT]), v("v1", &["Custom", PREVIOUS])],
        "a version without stages is hidden"
    );
    assert_eq!(
        versions(&mut secrets, "staged", true).await,
        vec![v("v3", &[]), v("v2", &[CURRENT]), v("v1", &["Custom", PREVIOUS])],
        "and listed with include_deprecated"
    );
    let listed = secrets
        .list_secret_version_ids(pb::ListSecretVersionIdsRequest {
            secret_name: "staged".into(),
            include_deprecated: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_count, 2);
    // A deprecated version still reads by id.
    assert_eq!(value_at(&mut secrets, "staged", "v3", "").await.secret_data, "three");

    // ACSCurrent back to the older v1: the old current, v2, becomes ACSPrevious.
    secrets.update_secret_version_stage(stage(CURRENT, "v2", "v1")).await.expect("move ACSCurrent");
    assert_eq!(
        versions(&mut secrets, "staged", true).await,
        vec![v("v3", &[]), v("v2", &[PREVIOUS]), v("v1", &[CURRENT, "Custom"])]
    );
    assert_eq!(current(&mut secrets, "staged").await.secret_data, "one");
    assert_eq!(value_at(&mut secrets, "staged", "", PREVIOUS).await.secret_data, "two");

    // Refusals, none of which changes anything.
    let settled = versions(&mut secrets, "staged", true).await;
    let status = refused(secrets.update_secret_version_stage(stage(CURRENT, "v1", "")).await, "remove ACSCurrent");
    assert_names(&status, "InvalidParameter", "400", "MoveToVersion", "remove ACSCurrent without a new home");
    let status = refused(secrets.update_secret_version_stage(stage("Custom", "v2", "v3")).await, "wrong holder");
    assert_names(&status, "InvalidParameter", "400", "RemoveFromVersion", "remove Custom from a version without it");
    let status = refused(secrets.update_secret_version_stage(stage(CURRENT, "v3", "v2")).await, "wrong holder");
    assert_names(&status, "InvalidParameter", "400", "RemoveFromVersion", "remove ACSCurrent from v3");
    let status = refused(secrets.update_secret_version_stage(stage("Nobody", "v2", "v3")).await, "unheld stage");
    assert_names(&status, "InvalidParameter", "400", "RemoveFromVersion", "remove a stage nobody has");
    let status = refused(secrets.update_secret_version_stage(stage("Custom", "v1", "v9")).await, "unknown target");
    assert_code(&status, "Forbidden.ResourceNotFound", "404", "move to an unknown version");
    assert_eq!(versions(&mut secrets, "staged", true).await, settled, "refusals change nothing");

    // A custom stage can be removed outright, and given to a version when nobody has it.
    secrets.update_secret_version_stage(stage("Custom", "v1", "")).await.expect("remove Custom");
    let status = refused(secrets.get_secret_value(get_request("staged", "", "Custom")).await, "read removed stage");
    assert_code(&status, "Forbidden.ResourceNotFound", "404", "a removed stage names nothing");
    secrets.update_secret_version_stage(stage("Fresh", "", "v3")).await.expect("a new stage");
    assert_eq!(
        versions(&mut secrets, "staged", true).await,
        vec![v("v3", &["Fresh"]), v("v2", &[PREVIOUS]), v("v1", &[CURRENT])]
    );
}

// --- 5. binary values ---

#[tokio::test]
async fn binary_secrets_round_trip_byte_for_byte() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    let first: Vec<u8> = (0..=255u8).chain([0, 0xff, 0x80, 0x00]).collect();
    let request = pb::CreateSecretRequest {
        secret_data_type: "binary".into(),
        version_id: "b1".into(),
        ..create_request("blob", &BASE64.encode(&first))
    };
    secrets.create_secret(request).await.expect("create binary");
    let value = current(&mut secrets, "blob").await;
    assert_eq!(value.secret_data_type, "binary");
    assert_eq!(BASE64.decode(&value.secret_data).expect("base64 out"), first);
    assert_eq!(value.secret_data, BASE64.encode(&first));

    let second: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let request = pb::PutSecretValueRequest {
        secret_data_type: "binary".into(),
        ..put_request("blob", "b2", &BASE64.encode(&second))
    };
    secrets.put_secret_value(request).await.expect("put binary");
    let value = current(&mut secrets, "blob").await;
    assert_eq!((value.version_id.as_str(), value.secret_data_type.as_str()), ("b2", "binary"));
    assert_eq!(BASE64.decode(&value.secret_data).unwrap(), second);
    let previous = value_at(&mut secrets, "blob", "", PREVIOUS).await;
    assert_eq!(BASE64.decode(&previous.secret_data).unwrap(), first, "the older version is intact");
}

// --- 6. listing and describing ---

#[tokio::test]
async fn list_secrets_pages_filters_and_shows_tags_on_request() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    let tag = |k: &str, v: &str| pb::Tag { tag_key: k.into(), tag_value: v.into() };
    let specs = [
        ("db-alpha", "primary database", vec![tag("env", "prod"), tag("team", "data")]),
        ("db-beta", "replica", vec![tag("env", "test")]),
        ("db-gamma", "", vec![]),
        ("web-1", "frontend database login", vec![tag("env", "prod")]),
        ("web-2", "", vec![tag("owner", "web")]),
    ];
    for (name, description, tags) in &specs {
        let request = pb::CreateSecretRequest {
            description: (*description).to_owned(),
            tags: tags.clone(),
            ..create_request(name, "value")
        };
        secrets.create_secret(request).await.unwrap_or_else(|e| panic!("create {name}: {e:?}"));
    }

    let list = |page_number: i32, page_size: i32, filters: &str, fetch_tags: bool| pb::ListSecretsRequest {
        fetch_tags,
        page_number,
        page_size,
        filters: filters.to_owned(),
    };
    let names = |response: &pb::ListSecretsResponse| -> Vec<String> {
        response.secret_list.iter().map(|s| s.secret_name.clone()).collect()
    };

    let mut seen = Vec::new();
    for page in 1..=3 {
        let response = secrets.list_secrets(list(page, 2, "", false)).await.expect("list").into_inner();
        assert_eq!((response.page_number, response.page_size, response.total_count), (page, 2, 5));
        assert!(response.secret_list.iter().all(|s| s.tags.is_empty()), "tags only with fetch_tags");
        seen.extend(names(&response));
    }
    assert_eq!(seen, ["db-alpha", "db-beta", "db-gamma", "web-1", "web-2"]);
    let past_end = secrets.list_secrets(list(4, 2, "", false)).await.unwrap().into_inner();
    assert_eq!((past_end.secret_list.len(), past_end.total_count), (0, 5));
    let all = secrets.list_secrets(list(0, 0, "", false)).await.unwrap().into_inner();
    assert_eq!((all.page_number, all.page_size, all.total_count, all.secret_list.len()), (1, 10, 5, 5));
    assert!(all.secret_list.iter().all(|s| s.secret_type == "Generic" && !s.create_time.is_empty()));

    let filtered = |filters: Value| list(1, 100, &filters.to_string(), false);
    let cases = [
        (json!([{"Key": "SecretName", "Values": ["db"]}]), vec!["db-alpha", "db-beta", "db-gamma"]),
        (json!([{"Key": "SecretName", "Values": ["alpha", "web-2"]}]), vec!["db-alpha", "web-2"]),
        (json!([{"Key": "Description", "Values": ["database"]}]), vec!["db-alpha", "web-1"]),
        (json!([{"Key": "TagKey", "Values": ["env"]}]), vec!["db-alpha", "db-beta", "web-1"]),
        (json!([{"Key": "TagValue", "Values": ["prod", "web"]}]), vec!["db-alpha", "web-1", "web-2"]),
        (json!([{"Key": "SecretName", "Values": ["db"]}, {"Key": "TagValue", "Values": ["prod"]}]), vec!["db-alpha"]),
        (json!([{"Key": "SecretName", "Values": ["nothing-like-this"]}]), vec![]),
        (json!([]), vec!["db-alpha", "db-beta", "db-gamma", "web-1", "web-2"]),
    ];
    for (filters, expected) in cases {
        let response = secrets.list_secrets(filtered(filters.clone())).await.expect("filtered").into_inner();
        assert_eq!(names(&response), expected, "{filters}");
        assert_eq!(response.total_count as usize, expected.len(), "{filters}");
    }

    let tagged = secrets
        .list_secrets(list(1, 100, r#"[{"Key":"SecretName","Values":["db"]}]"#, true))
        .await
        .unwrap()
        .into_inner();
    let tags_of = |name: &str| -> Vec<(String, String)> {
        let entry = tagged.secret_list.iter().find(|s| s.secret_name == name).unwrap();
        let mut tags: Vec<_> = entry.tags.iter().map(|t| (t.tag_key.clone(), t.tag_value.clone())).collect();
        tags.sort();
        tags
    };
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(tags_of("db-alpha"), [pair("env", "prod"), pair("team", "data")]);
    assert_eq!(tags_of("db-beta"), [pair("env", "test")]);
    assert!(tags_of("db-gamma").is_empty());

    for bad in [r#"[{"Key":"Owner","Values":["x"]}]"#, "not json", r#"{"Key":"SecretName"}"#] {
        let status = refused(secrets.list_secrets(list(1, 10, bad, false)).await, bad);
        assert_names(&status, "InvalidParameter", "400", "Filters", bad);
    }
    let status = refused(secrets.list_secrets(list(1, 101, "", false)).await, "page size 101");
    assert_names(&status, "InvalidParameter", "400", "PageSize", "page size 101");
}

#[tokio::test]
async fn describe_secret_reports_its_arn_key_dates_tags_and_planned_deletion() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let mut secrets = server.secrets().await;
    let key_id = create_key(&mut kms, "").await;
    let request = pb::CreateSecretRequest {
        description: "the app's database".into(),
        encryption_key_id: key_id.clone(),
        tags: vec![pb::Tag { tag_key: "env".into(), tag_value: "prod".into() }],
        ..create_request("described", "value")
    };
    let created = secrets.create_secret(request).await.expect("create").into_inner();
    assert_eq!(created.arn, secret_arn("described"));
    assert_eq!((created.secret_type.as_str(), created.automatic_rotation.as_str()), ("Generic", "Disabled"));
    assert_eq!((created.rotation_interval.as_str(), created.next_rotation_date.as_str()), ("", ""));

    let described = describe(&mut secrets, "described").await;
    assert_eq!(described.arn, format!("acs:kms:cn-hangzhou:{ACCOUNT}:secret/described"));
    assert_eq!(described.secret_name, "described");
    assert_eq!(described.secret_type, "Generic");
    assert_eq!(described.encryption_key_id, key_id);
    assert_eq!(described.description, "the app's database");
    assert_eq!(described.automatic_rotation, "Disabled");
    assert_eq!(described.planned_delete_time, "");
    let created_at = parse_time(&described.create_time);
    assert_eq!(described.update_time, described.create_time);
    assert_eq!(described.tags, vec![pb::Tag { tag_key: "env".into(), tag_value: "prod".into() }]);
    let untagged = secrets
        .describe_secret(pb::DescribeSecretRequest { secret_name: "described".into(), fetch_tags: false })
        .await
        .unwrap()
        .into_inner();
    assert!(untagged.tags.is_empty(), "tags only with fetch_tags");
    // By ARN too.
    assert_eq!(describe(&mut secrets, &secret_arn("described")).await.secret_name, "described");

    let request =
        pb::DeleteSecretRequest { secret_name: "described".into(), recovery_window_in_days: 7, ..Default::default() };
    let deleted = secrets.delete_secret(request).await.expect("delete").into_inner();
    let in_window = describe(&mut secrets, "described").await;
    assert_eq!(in_window.planned_delete_time, deleted.planned_delete_time);
    let planned = parse_time(&in_window.planned_delete_time);
    let window = planned - created_at;
    assert!(
        window >= time::Duration::days(7) && window < time::Duration::days(7) + time::Duration::minutes(1),
        "planned {planned} is 7 days after {created_at}"
    );
    let listed = secrets.list_secrets(pb::ListSecretsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.secret_list.len(), 1, "a secret in its window is still listed");
    assert_eq!(listed.secret_list[0].planned_delete_time, deleted.planned_delete_time);

    secrets.restore_secret(pb::RestoreSecretRequest { secret_name: "described".into() }).await.expect("restore");
    assert_eq!(describe(&mut secrets, "described").await.planned_delete_time, "");
}

fn parse_time(text: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

// --- 7. random passwords ---

#[tokio::test]
async fn get_random_password_follows_its_rules() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    let mut password = async |request: pb::GetRandomPasswordRequest| -> Result<String, tonic::Status> {
        secrets.get_random_password(request).await.map(|r| r.into_inner().random_password)
    };

    for _ in 0..20 {
        let default = password(pb::GetRandomPasswordRequest::default()).await.expect("default password");
        assert_eq!(default.chars().count(), 32, "{default}");
        assert!(default.chars().any(|c| c.is_ascii_digit()), "a digit in {default}");
        assert!(default.chars().any(|c| c.is_ascii_lowercase()), "a lowercase letter in {default}");
        assert!(default.chars().any(|c| c.is_ascii_uppercase()), "an uppercase letter in {default}");
        assert!(default.chars().any(|c| PUNCTUATION.contains(c)), "punctuation in {default}");
        assert!(default.chars().all(|c| c.is_ascii_graphic()), "{default}");

        let excluded = "aeiouAEIOU0123!@#";
        let request = pb::GetRandomPasswordRequest {
            password_length: 64,
            exclude_characters: excluded.into(),
            ..Default::default()
        };
        let without = password(request).await.expect("with exclusions");
        assert_eq!(without.chars().count(), 64);
        assert!(!without.chars().any(|c| excluded.contains(c)), "{without} has one of {excluded}");
        assert!(without.chars().any(|c| c.is_ascii_digit()), "still a digit in {without}");

        let request = pb::GetRandomPasswordRequest {
            password_length: 8,
            exclude_punctuation: true,
            exclude_uppercase: true,
            ..Default::default()
        };
        let lower_digits = password(request).await.expect("8 characters");
        assert_eq!(lower_digits.chars().count(), 8);
        assert!(lower_digits.chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()), "{lower_digits}");
        assert!(lower_digits.chars().any(|c| c.is_ascii_digit()), "{lower_digits}");
        assert!(lower_digits.chars().any(|c| c.is_ascii_lowercase()), "{lower_digits}");
    }
    let longest = password(pb::GetRandomPasswordRequest { password_length: 128, ..Default::default() }).await;
    assert_eq!(longest.expect("128").chars().count(), 128);

    for length in [7, 129, -1] {
        let request = pb::GetRandomPasswordRequest { password_length: length, ..Default::default() };
        let status = password(request).await.expect_err("refused");
        assert_names(&status, "InvalidParameter", "400", "PasswordLength", &format!("length {length}"));
    }
    let nothing_left = pb::GetRandomPasswordRequest {
        exclude_numbers: true,
        exclude_lowercase: true,
        exclude_uppercase: true,
        exclude_punctuation: true,
        ..Default::default()
    };
    let status = password(nothing_left).await.expect_err("every kind excluded");
    assert_code(&status, "InvalidParameter", "400", "every kind excluded");
}

// --- 8. managed rotation ---

#[tokio::test]
async fn rds_rotations_make_account_passwords_and_dual_accounts_alternate() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    let initial = r#"{"AccountName":"app","AccountPassword":"initial"}"#;
    let config = json!({"SecretSubType": "SingleUser", "DBInstanceId": "rm-1", "AccountName": "app"});
    let created = create_managed(&mut secrets, "rds-single", "Rds", config, initial).await;
    assert_eq!(created.secret_type, "Rds");

    let rotated = rotate(&mut secrets, "rds-single").await.expect("rotate");
    let value = current(&mut secrets, "rds-single").await;
    assert_eq!(value.version_id, rotated);
    assert_eq!(value.secret_type, "Rds");
    let json = json_of(&value);
    assert_eq!(json["AccountName"], "app", "{json}");
    let password = json["AccountPassword"].as_str().unwrap_or_else(|| panic!("a password in {json}"));
    assert!(password.len() >= 8 && password != "initial", "{json}");
    assert!(!value.last_rotation_date.is_empty());
    assert_eq!(value_at(&mut secrets, "rds-single", &created.version_id, PREVIOUS).await.secret_data, initial);
    assert_eq!(
        versions(&mut secrets, "rds-single", true).await,
        vec![v(&rotated, &[CURRENT]), v(&created.version_id, &[PREVIOUS])]
    );
    // The next rotation makes another password.
    rotate(&mut secrets, "rds-single").await.expect("rotate again");
    let again = json_of(&current(&mut secrets, "rds-single").await);
    assert_eq!(again["AccountName"], "app");
    assert_ne!(again["AccountPassword"], json["AccountPassword"]);

    let config = json!({"SecretSubType": "DoubleUsers", "AccountName": "X"});
    create_managed(&mut secrets, "rds-double", "Rds", config, r#"{"AccountName":"X","AccountPassword":"p"}"#).await;
    let mut accounts = Vec::new();
    for _ in 0..4 {
        rotate(&mut secrets, "rds-double").await.expect("rotate dual");
        let json = json_of(&current(&mut secrets, "rds-double").await);
        assert!(json["AccountPassword"].as_str().is_some_and(|p| !p.is_empty()), "{json}");
        accounts.push(json["AccountName"].as_str().unwrap().to_owned());
    }
    assert_eq!(accounts, ["X_clone", "X", "X_clone", "X"], "rotations alternate between the account and its clone");
}

#[tokio::test]
async fn ram_and_ecs_rotations_make_access_keys_and_ssh_key_pairs() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    let config = json!({"SecretSubType": "RamUserAccessKey", "UserName": "deployer"});
    create_managed(&mut secrets, "ram", "RAMCredentials", config, r#"{"AccessKeyId":"old","AccessKeySecret":"old"}"#)
        .await;
    rotate(&mut secrets, "ram").await.expect("rotate RAM");
    let value = current(&mut secrets, "ram").await;
    assert_eq!(value.secret_type, "RAMCredentials");
    let json = json_of(&value);
    let id = json["AccessKeyId"].as_str().unwrap_or_else(|| panic!("an AccessKeyId in {json}"));
    assert!(id.starts_with("LTAI") && id.len() > 4, "{json}");
    let secret = json["AccessKeySecret"].as_str().unwrap_or_else(|| panic!("an AccessKeySecret in {json}"));
    assert!(!secret.is_empty() && secret != "old", "{json}");
    assert_eq!(json["UserName"], "deployer");
    rotate(&mut secrets, "ram").await.expect("rotate RAM again");
    assert_ne!(json_of(&current(&mut secrets, "ram").await)["AccessKeyId"], json["AccessKeyId"], "a new key pair");

    let config = json!({"SecretSubType": "SSHKey", "InstanceId": "i-1", "UserName": "ops"});
    create_managed(&mut secrets, "ssh", "ECS", config, r#"{"UserName":"ops","PublicKey":"","PrivateKey":""}"#).await;
    rotate(&mut secrets, "ssh").await.expect("rotate ECS SSH key");
    let value = current(&mut secrets, "ssh").await;
    assert_eq!(value.secret_type, "ECS");
    let json = json_of(&value);
    let public = json["PublicKey"].as_str().unwrap_or_else(|| panic!("a PublicKey in {json}"));
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    let blob = BASE64.decode(public.split(' ').nth(1).expect("a key blob")).expect("the blob is base64");
    assert_eq!(&blob[..15], b"\0\0\0\x0bssh-ed25519", "an OpenSSH ed25519 blob");
    let private = json["PrivateKey"].as_str().unwrap_or_else(|| panic!("a PrivateKey in {json}"));
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{private}");
    assert!(private.trim_end().ends_with("-----END PRIVATE KEY-----"), "{private}");
    assert_eq!(json["UserName"], "ops");
}

#[tokio::test]
async fn a_rotation_whose_target_is_unreachable_fails_with_a_failure_event_and_keeps_acscurrent() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    let config = json!({"SecretSubType": "SingleUser", "DBInstanceId": "rm-1", "TargetUnreachable": true});
    let initial = r#"{"AccountName":"app","AccountPassword":"initial"}"#;
    create_managed(&mut secrets, "unreachable", "Rds", config, initial).await;
    let before = current(&mut secrets, "unreachable").await;
    let versions_before = versions(&mut secrets, "unreachable", true).await;

    let status = rotate(&mut secrets, "unreachable").await.expect_err("the rotation fails");
    assert_error(&status, Code::Unavailable, "ServiceUnavailableTemporary", "503", None, "unreachable target");

    let failures = list_system_events(&server, "Secret:RotateSecret:Failure").await;
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0].resource_id, secret_arn("unreachable"));
    let content = &document(&failures[0])["content"];
    assert_eq!(content["failureInfo"]["errorCode"], "RotateError", "{content:#}");
    assert_eq!(content["secretName"], "unreachable", "{content:#}");
    assert!(list_system_events(&server, "Secret:RotateSecret:Success").await.is_empty());

    let after = current(&mut secrets, "unreachable").await;
    assert_eq!((after.version_id, after.secret_data), (before.version_id, before.secret_data));
    assert_eq!(versions(&mut secrets, "unreachable", true).await, versions_before, "no version was made");
}

#[tokio::test]
async fn an_injected_rotation_fault_fails_the_rotation_with_its_error_code() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    let config = json!({"SecretSubType": "SingleUser", "DBInstanceId": "rm-1"});
    let initial = r#"{"AccountName":"app","AccountPassword":"initial"}"#;
    create_managed(&mut secrets, "faulty", "Rds", config.clone(), initial).await;
    create_managed(&mut secrets, "healthy", "Rds", config, initial).await;
    let before = current(&mut secrets, "faulty").await;

    let fault = pb::InjectFaultRequest {
        method: "SecretRotation".into(),
        key_id: "faulty".into(),
        error_code: "InternalFailure".into(),
        ..Default::default()
    };
    let fault = server.simulation().await.inject_fault(fault).await.expect("inject").into_inner().fault.unwrap();

    let status = rotate(&mut secrets, "faulty").await.expect_err("the rotation fails");
    assert_code(&status, "InternalFailure", "500", "an injected InternalFailure");
    // A rotation asked for names the fault that broke it, as a scheduled one does.
    let natives = audit_renderings(&server, "native").await;
    let (_, record) = natives
        .iter()
        .find(|(event, _)| event.event_name == "RotateSecret" && event.error_code == "InternalFailure")
        .expect("the failed rotation's record");
    assert_eq!(record["injectedFault"], fault.fault_id.as_str(), "{record:#}");
    let failures = list_system_events(&server, "Secret:RotateSecret:Failure").await;
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let content = &document(&failures[0])["content"];
    assert_eq!(content["failureInfo"]["errorCode"], "InternalFailure", "{content:#}");
    assert_eq!(content["secretName"], "faulty");
    let after = current(&mut secrets, "faulty").await;
    assert_eq!((after.version_id, after.secret_data), (before.version_id.clone(), before.secret_data));

    // The fault names one secret: another rotates.
    rotate(&mut secrets, "healthy").await.expect("another secret rotates");
    assert_eq!(list_system_events(&server, "Secret:RotateSecret:Success").await.len(), 1);

    // Without the fault, the secret rotates again.
    let clear = pb::ClearFaultsRequest { fault_id: fault.fault_id };
    server.simulation().await.clear_faults(clear).await.expect("clear");
    let rotated = rotate(&mut secrets, "faulty").await.expect("rotates once the fault is gone");
    assert_ne!(rotated, before.version_id);
    assert_eq!(current(&mut secrets, "faulty").await.version_id, rotated);
}

// --- 9. values stay out of the audit trail ---

#[tokio::test]
async fn secret_values_never_reach_the_audit_trail_or_the_system_events() {
    const MARKER: &str = "s3cr3t-VALUE-8f2e";
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    create_text(&mut secrets, "marked", "v1", &format!("{MARKER}-first")).await;
    put(&mut secrets, "marked", "v2", &format!("{MARKER}-second")).await;
    put(&mut secrets, "marked", "v2", &format!("{MARKER}-second")).await;
    let status = refused(secrets.put_secret_value(put_request("marked", "v2", MARKER)).await, "taken id");
    assert_code(&status, "Rejected.ResourceExist", "409", "a taken id");
    let request = pb::GetSecretValueRequest { fetch_extended_config: true, ..get_request("marked", "", "") };
    let read = secrets.get_secret_value(request).await.expect("read").into_inner();
    assert_eq!(read.secret_data, format!("{MARKER}-second"));
    assert_eq!(value_at(&mut secrets, "marked", "v1", "").await.secret_data, format!("{MARKER}-first"));
    let binary = pb::CreateSecretRequest {
        secret_data_type: "binary".into(),
        ..create_request("marked-binary", &BASE64.encode(MARKER))
    };
    secrets.create_secret(binary).await.expect("binary");
    current(&mut secrets, "marked-binary").await;
    let delete = pb::DeleteSecretRequest { secret_name: "marked".into(), ..Default::default() };
    secrets.delete_secret(delete).await.expect("delete");

    let mut seen = 0;
    for format in ["native", "actiontrail", "cloudtrail"] {
        let renderings = audit_renderings(&server, format).await;
        assert!(
            renderings.iter().any(|(record, _)| record.event_name == "GetSecretValue"),
            "{format}: the reads are in the trail"
        );
        for (record, json) in &renderings {
            let text = json.to_string();
            assert!(!text.contains(MARKER), "{format} rendering of {} holds the value: {text}", record.event_name);
            assert!(!text.contains(&BASE64.encode(MARKER)), "{format} rendering holds the binary value: {text}");
            let native = format!("{record:?}");
            assert!(!native.contains(MARKER), "the native record of {} holds the value", record.event_name);
            seen += 1;
        }
    }
    assert!(seen > 10, "the trail was read ({seen} renderings)");

    let events = list_system_events(&server, "").await;
    assert!(events.iter().any(|e| e.name == "Secret:DeleteSecret:ScheduleDeletion"), "{events:#?}");
    for event in &events {
        assert!(!event.json.contains(MARKER), "system event {} holds the value: {}", event.name, event.json);
    }
}

// --- 10. durability ---

#[tokio::test]
async fn secrets_their_stages_deletions_and_rotation_schedules_survive_a_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = TestServer::start_in(dir.path()).await;
    let mut secrets = server.secrets().await;
    create_text(&mut secrets, "durable", "v1", "first").await;
    put(&mut secrets, "durable", "v2", "second").await;
    let binary = pb::CreateSecretRequest {
        secret_data_type: "binary".into(),
        ..create_request("durable-binary", &BASE64.encode([0u8, 1, 2, 250]))
    };
    secrets.create_secret(binary).await.expect("binary");
    create_text(&mut secrets, "doomed", "", "gone soon").await;
    let request =
        pb::DeleteSecretRequest { secret_name: "doomed".into(), recovery_window_in_days: 7, ..Default::default() };
    let planned = secrets.delete_secret(request).await.expect("delete").into_inner().planned_delete_time;
    let request = pb::CreateSecretRequest {
        secret_type: "Rds".into(),
        extended_config: json!({"SecretSubType": "SingleUser", "DBInstanceId": "rm-1", "AccountName": "app"})
            .to_string(),
        enable_automatic_rotation: true,
        rotation_interval: "6h".into(),
        ..create_request("rotating", r#"{"AccountName":"app","AccountPassword":"initial"}"#)
    };
    let rotating = secrets.create_secret(request).await.expect("rotating").into_inner();
    let next_rotation = rotating.next_rotation_date.clone();
    assert!(!next_rotation.is_empty());
    let versions_before = versions(&mut secrets, "durable", true).await;
    drop(secrets);
    server.stop().await;

    let server = TestServer::start_in(dir.path()).await;
    let mut secrets = server.secrets().await;
    assert_eq!(versions(&mut secrets, "durable", true).await, versions_before);
    assert_eq!(versions_before, vec![v("v2", &[CURRENT]), v("v1", &[PREVIOUS])]);
    assert_eq!(current(&mut secrets, "durable").await.secret_data, "second");
    assert_eq!(value_at(&mut secrets, "durable", "", PREVIOUS).await.secret_data, "first");
    let bytes = BASE64.decode(current(&mut secrets, "durable-binary").await.secret_data).unwrap();
    assert_eq!(bytes, [0u8, 1, 2, 250]);

    assert_eq!(describe(&mut secrets, "doomed").await.planned_delete_time, planned, "the deletion is still pending");
    let status = refused(secrets.get_secret_value(get_request("doomed", "", "")).await, "read doomed");
    assert_code(&status, "Rejected.ResourceInDeleteWindow", "409", "a secret in its window after the restart");

    let described = describe(&mut secrets, "rotating").await;
    assert_eq!((described.automatic_rotation.as_str(), described.rotation_interval.as_str()), ("Enabled", "21600s"));
    assert_eq!(described.next_rotation_date, next_rotation, "the schedule survives");
    assert_eq!(described.last_rotation_date, "");

    // The schedule still runs: past the next rotation date, a rotation happens.
    server.advance_secs(6 * 3_600 + 60).await;
    let value = current(&mut secrets, "rotating").await;
    assert_ne!(value.version_id, rotating.version_id, "a scheduled rotation made a new version");
    assert_ne!(json_of(&value)["AccountPassword"], "initial");
    let described = describe(&mut secrets, "rotating").await;
    assert_eq!(described.last_rotation_date, next_rotation);
    assert!(parse_time(&described.next_rotation_date) > parse_time(&next_rotation));
    assert_eq!(list_system_events(&server, "Secret:RotateSecret:Success").await.len(), 1);

    // And so does the pending deletion.
    server.advance_days(7).await;
    let status = refused(
        secrets.describe_secret(pb::DescribeSecretRequest { secret_name: "doomed".into(), fetch_tags: false }).await,
        "describe deleted",
    );
    assert_code(&status, "Forbidden.ResourceNotFound", "404", "deleted at the end of its window");
    assert_eq!(current(&mut secrets, "durable").await.secret_data, "second");
    server.stop().await;
}

// --- 11. authorisation ---

#[tokio::test]
async fn a_ram_user_reads_only_the_secrets_its_policy_names_and_a_refusal_leaves_one_record() {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    for (name, value) in [("app-db", "app value"), ("other-db", "other value")] {
        admin.secrets.create_secret(create_request(name, value)).await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    let credentials = create_access_key_as(&mut admin, "reader").await;
    let policy = identity_policy("Allow", &["kms:GetSecretValue"], &["acs:kms:*:*:secret/app-*"]);
    create_policy_as(&mut admin, "read-app-secrets", &policy).await;
    attach_user_policy_as(&mut admin, "read-app-secrets", "reader").await;
    let mut reader = SignedClients::of(&server, &credentials).await;

    let read = reader
        .secrets
        .get_secret_value(with_request_id("reader-allowed", get_request("app-db", "", "")))
        .await
        .expect("app-db is allowed")
        .into_inner();
    assert_eq!(read.secret_data, "app value");

    let status = refused(
        reader.secrets.get_secret_value(with_request_id("reader-denied", get_request("other-db", "", ""))).await,
        "other-db",
    );
    assert_error(&status, Code::PermissionDenied, "Forbidden.NoPermission", "403", None, "other-db");

    // Only GetSecretValue is allowed, even on app-*.
    let status = refused(reader.secrets.put_secret_value(put_request("app-db", "v2", "x")).await, "put");
    assert_code(&status, "Forbidden.NoPermission", "403", "a put the policy does not allow");

    let events = audit_events_as(&mut admin).await;
    let denied = only_record(&events, "reader-denied");
    assert_eq!(denied.event_name, "GetSecretValue");
    assert_eq!((denied.error_code.as_str(), denied.http_status), ("Forbidden.NoPermission", 403));
    assert_eq!(denied.secret_arn, secret_arn("other-db"));
    assert_eq!(denied.access_key_id, credentials.access_key_id);
    let allowed = records_of(&events, "reader-allowed");
    assert_eq!(names_of(&allowed), BTreeSet::from(["GetSecretValue".to_owned(), "Decrypt".to_owned()]));
    assert!(allowed.iter().all(|r| r.outcome == "Success"), "{allowed:#?}");

    // The admin still reads other-db: the refusal changed nothing.
    let other = admin.secrets.get_secret_value(get_request("other-db", "", "")).await.expect("admin").into_inner();
    assert_eq!(other.secret_data, "other value");
}
