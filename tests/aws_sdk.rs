//! AWS's own clients, unchanged, against kmsim's AWS KMS JSON 1.1 front end (issue 30, items 6 and 8).
//!
//! Each test starts its own server on 127.0.0.1:0 and runs one scenario script of `tests/sdk/aws/` with a real
//! client installed by `support/sdk.rs` (once, under `target/sdk/aws-python` and `target/sdk/aws-node`): boto3
//! (KMS, and CloudTrail's LookupEvents on the same endpoint), the AWS CLI (`aws kms ... --endpoint-url`), the AWS
//! Encryption SDK for Python (a KMS keyring and a master key provider pointed at kmsim) and `@aws-sdk/client-kms`.
//! The script drives the client as a user would, checks what it can outside kmsim (signatures and public keys with
//! `cryptography` or Node's crypto, HMACs with Python's `hmac` over imported key material) and reports every check
//! and every call as JSON, in the shape the Alibaba scripts use. The test then asserts that every section passed
//! and that every call the client made left exactly one audit record, read back through kmsim's own AuditService:
//! with the client's User-Agent, the access key id that signed it, the request id the client read
//! (`x-amzn-RequestId`), the operation as the caller named it as event name, the outcome and HTTP status it saw,
//! and, for a failure, AWS's exception name as the errorCode of the record's CloudTrail rendering.
//!
//! These tests never skip: without python3/pip/venv or node/npm they fail saying what to install.
//!
//! A scenario gets its test here once the front end offers its operations; the scenarios of `tests/sdk/aws/`
//! without a test below are the operations still being built (see docs/aws.md, "Not yet").

mod common;
#[path = "support/sdk.rs"]
mod sdk;

use std::collections::BTreeSet;

use common::*;
use kmsim::credentials::Credentials;
use kmsim::proto as pb;
use kmsim::server::ServerConfig;
use sdk::{Call, Report, Script, Sdk};
use serde_json::Value;

/// With `--auth off` the server checks no signature and records the access key id as the client sent it.
const UNCHECKED_KEY_ID: &str = "AKIAKMSIMSDKTESTS001";
const UNCHECKED_SECRET: &str = "kmsim-aws-sdk-tests-secret-not-checked";
/// The RAM user whose AccessKey signs under `--auth required`.
const USER_NAME: &str = "aws-sdk-user";
/// What kmsim's front ends keep of a User-Agent (`frontends::MAX_RECORDED_TEXT` characters).
const RECORDED_USER_AGENT_CHARS: usize = 256;
/// How each AWS client's User-Agent starts: a record with one of these is a call some client made.
const AWS_USER_AGENTS: [&str; 4] = ["Boto3/", "Botocore/", "aws-cli/", "aws-sdk-js/"];

/// A server as a developer runs it for integration tests: `--auth off` (the default).
async fn auth_off() -> (TestServer, Credentials) {
    let server = TestServer::start_config(ServerConfig::default()).await;
    (server, Credentials::new(UNCHECKED_KEY_ID, UNCHECKED_SECRET))
}

/// A server with `--auth required`, its admin's clients, and a RAM user's AccessKey allowed `kms:*` and the
/// audit lookups (whichever product name the AWS front end gives LookupEvents).
async fn auth_required() -> (TestServer, SignedClients, Credentials) {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let user = create_access_key_as(&mut admin, USER_NAME).await;
    let actions = ["kms:*", "actiontrail:*", "cloudtrail:*"];
    create_policy_as(&mut admin, "aws-sdk-all", &identity_policy("Allow", &actions, &["*"])).await;
    attach_user_policy_as(&mut admin, "aws-sdk-all", USER_NAME).await;
    (server, admin, user)
}

/// Every audit record, newest first, with its CloudTrail rendering, read by `admin`.
async fn cloudtrail_renderings_as(admin: &mut SignedClients) -> Vec<(pb::AuditEvent, Value)> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::QueryAuditEventsRequest {
            format: "cloudtrail".to_owned(),
            page_size: 1000,
            page_token,
            ..Default::default()
        };
        let page = admin.audit.query_audit_events(request).await.expect("query audit events").into_inner();
        for result in page.events {
            let json = serde_json::from_str(&result.json).expect("a rendering is JSON");
            all.push((result.event.expect("the native record"), json));
        }
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// Every call the script made left exactly one audit record saying what the client saw, and every record made
/// with an AWS client's User-Agent is one of the HTTP exchanges the script saw.
#[track_caller]
fn assert_every_call_audited(records: &[(pb::AuditEvent, Value)], report: &Report) {
    let calls = report.calls();
    assert!(!calls.is_empty(), "{}: the script made no call", report.what);
    for call in &calls {
        let what = format!("{}: {} (x-amzn-RequestId {:?})", report.what, call.action, call.request_id);
        assert!(!call.request_id.is_empty(), "{what}: the client read no request id (x-amzn-RequestId): {call:?}");
        assert_eq!(call.wire_request_id, call.request_id, "{what}: the request id is the x-amzn-RequestId header's");
        assert!(!call.user_agent.is_empty(), "{what}: the client sent no User-Agent: {call:?}");
        let found: Vec<&(pb::AuditEvent, Value)> =
            records.iter().filter(|(e, _)| e.request_id == call.request_id && e.invoked_by.is_empty()).collect();
        assert_eq!(found.len(), 1, "{what}: {} audit records, expected exactly one: {found:#?}", found.len());
        let (record, cloudtrail) = found[0];
        assert_eq!(record.event_name, call.action, "{what}: the event name is the operation as the caller named it");
        let sent: String = call.user_agent.chars().take(RECORDED_USER_AGENT_CHARS).collect();
        assert_eq!(record.user_agent, sent, "{what}: the record's User-Agent is not the one the client sent");
        assert_eq!(record.access_key_id, call.access_key_id, "{what}: the record's access key id");
        let identity = record.user_identity.as_ref().unwrap_or_else(|| panic!("{what}: no userIdentity"));
        assert_eq!(identity.access_key_id, call.access_key_id, "{what}: the userIdentity's access key id");
        assert_eq!(record.outcome, if call.ok { "Success" } else { "Failure" }, "{what}: outcome");
        assert_eq!(i64::from(record.http_status), call.status, "{what}: the record's HTTP status");
        assert_eq!(record.client_ip, "127.0.0.1", "{what}: the peer address");
        assert_eq!(cloudtrail["eventName"], call.action, "{what}: CloudTrail's eventName");
        assert_eq!(cloudtrail["requestID"], call.request_id, "{what}: CloudTrail's requestID");
        if call.ok {
            assert!(record.error_code.is_empty(), "{what}: a success recorded error code {:?}", record.error_code);
            assert!(cloudtrail.get("errorCode").is_none(), "{what}: a success rendered an errorCode: {cloudtrail}");
        } else {
            assert!(!record.error_code.is_empty(), "{what}: a failure recorded no error code: {record:#?}");
            assert_eq!(
                cloudtrail["errorCode"], call.code,
                "{what}: CloudTrail's errorCode is not the AWS exception the client raised"
            );
        }
    }
    let seen: BTreeSet<&str> = calls.iter().flat_map(|c| c.attempt_request_ids.iter().map(String::as_str)).collect();
    for (record, _) in records {
        let by_aws_client = AWS_USER_AGENTS.iter().any(|prefix| record.user_agent.starts_with(prefix));
        if by_aws_client && record.invoked_by.is_empty() {
            assert!(
                seen.contains(record.request_id.as_str()),
                "{}: an audit record of a call no client call saw: {record:#?}",
                report.what
            );
        }
    }
}

/// The calls of `action` answered with AWS's exception `code` ("" for success).
fn calls_answered<'a>(report: &Report, calls: &'a [Call], action: &str, code: &str) -> Vec<&'a Call> {
    let found: Vec<&Call> = calls.iter().filter(|c| c.action == action && c.code == code).collect();
    assert!(!found.is_empty(), "{}: no {action} answered {code:?}: {calls:#?}", report.what);
    found
}

/// Runs `scenario` of `sdk` on a server with `--auth off`; asserts every section passed and every call audited.
async fn scenario_with_auth_off(sdk: Sdk, scenario: &str) -> Report {
    scenario_with_auth_off_given(sdk, scenario, &[]).await
}

/// As [`scenario_with_auth_off`], with `KMSIM_<name>` settings for the script.
async fn scenario_with_auth_off_given(sdk: Sdk, scenario: &str, params: &[(&str, &str)]) -> Report {
    let (server, credentials) = auth_off().await;
    let mut script = Script::new(sdk, scenario, server.addr, &credentials.access_key_id, credentials.secret.expose());
    for (name, value) in params {
        script = script.param(name, value);
    }
    let report = script.run().await;
    report.assert_all_passed();
    assert_every_call_audited(&audit_renderings(&server, "cloudtrail").await, &report);
    let calls = report.calls();
    assert!(calls.iter().all(|c| c.access_key_id == UNCHECKED_KEY_ID), "with --auth off the id is recorded as given");
    server.stop().await;
    report
}

/// Runs `scenario` of `sdk` as a RAM user on a server with `--auth required`; asserts as above.
async fn scenario_with_auth_required(sdk: Sdk, scenario: &str) -> Report {
    let (server, mut admin, user) = auth_required().await;
    let report = Script::new(sdk, scenario, server.addr, &user.access_key_id, user.secret.expose())
        .param("USER_NAME", USER_NAME)
        .run()
        .await;
    report.assert_all_passed();
    assert_every_call_audited(&cloudtrail_renderings_as(&mut admin).await, &report);
    let calls = report.calls();
    assert!(
        calls.iter().filter(|c| c.ok).all(|c| c.access_key_id == user.access_key_id),
        "{}: answered as someone else",
        report.what
    );
    server.stop().await;
    report
}

// ---------------------------------------------------------------------------
// boto3
// ---------------------------------------------------------------------------

#[tokio::test]
async fn boto3_walks_a_key_through_aws_states_and_sees_aws_exceptions_and_cancel_deletion_leaves_it_disabled() {
    let report = scenario_with_auth_off(Sdk::Boto3, "lifecycle").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "Encrypt", "DisabledException");
    calls_answered(&report, &calls, "Encrypt", "KMSInvalidStateException");
    calls_answered(&report, &calls, "CancelKeyDeletion", "KMSInvalidStateException");
    calls_answered(&report, &calls, "ScheduleKeyDeletion", "ValidationException");
    calls_answered(&report, &calls, "DescribeKey", "NotFoundException");
    assert!(
        report
            .passed("CancelKeyDeletion leaves the key Disabled, as AWS does, until EnableKey")
            .contains(&"DescribeKey shows KeyState Disabled".to_owned())
    );
}

#[tokio::test]
async fn boto3_manages_aliases_and_tags_and_pages_list_keys_and_list_aliases_with_limit_and_marker() {
    let report = scenario_with_auth_off(Sdk::Boto3, "resources").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "CreateAlias", "AlreadyExistsException");
    calls_answered(&report, &calls, "TagResource", "KMSInvalidStateException");
    let pages = calls.iter().filter(|c| c.action == "ListKeys" && c.ok).count();
    assert!(pages >= 3, "{}: ListKeys was paged: {pages} pages", report.what);
}

#[tokio::test]
async fn boto3_encrypts_decrypts_without_key_id_reencrypts_and_makes_data_keys_pairs_and_random_bytes() {
    let report = scenario_with_auth_off(Sdk::Boto3, "crypto").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "Decrypt", "IncorrectKeyException");
    calls_answered(&report, &calls, "Decrypt", "InvalidCiphertextException");
    calls_answered(&report, &calls, "Encrypt", "InvalidKeyUsageException");
    for action in [
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateRandom",
    ] {
        calls_answered(&report, &calls, action, "");
    }
}

#[tokio::test]
async fn boto3_signs_with_pss_pkcs1_and_ecdsa_raw_and_digest_and_cryptography_verifies_with_get_public_key() {
    let report = scenario_with_auth_off(Sdk::Boto3, "sign").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "Verify", "KMSInvalidSignatureException");
    calls_answered(&report, &calls, "Sign", "InvalidKeyUsageException");
    let signed = report.passed(
        "RSASSA_PSS_SHA_256 with RSA_2048, RAW and DIGEST: cryptography verifies, Verify agrees, a bad one is refused",
    );
    assert!(signed.iter().any(|c| c.starts_with("cryptography verifies the DIGEST")), "{signed:?}");
}

#[tokio::test]
async fn boto3_signs_on_p521_with_ecdsa_sha_512_and_cryptography_verifies() {
    let report = scenario_with_auth_off(Sdk::Boto3, "p521").await;
    calls_answered(&report, &report.calls(), "Sign", "InvalidKeyUsageException");
}

#[tokio::test]
async fn boto3_derives_shared_secrets_that_cryptographys_ecdh_reproduces_on_four_curves() {
    let report = scenario_with_auth_off(Sdk::Boto3, "agreement").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "DeriveSharedSecret", "");
    calls_answered(&report, &calls, "DeriveSharedSecret", "InvalidKeyUsageException");
}

#[tokio::test]
async fn boto3_generates_and_verifies_macs_that_python_hmac_reproduces_over_imported_material() {
    let report = scenario_with_auth_off(Sdk::Boto3, "mac").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "VerifyMac", "KMSInvalidMacException");
    calls_answered(&report, &calls, "ImportKeyMaterial", "");
    calls_answered(&report, &calls, "GenerateMac", "DisabledException");
}

#[tokio::test]
async fn boto3_enables_rotation_with_a_period_rotates_on_demand_and_pages_list_key_rotations() {
    let report = scenario_with_auth_off(Sdk::Boto3, "rotation").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "RotateKeyOnDemand", "");
    calls_answered(&report, &calls, "EnableKeyRotation", "UnsupportedOperationException");
    calls_answered(&report, &calls, "EnableKeyRotation", "DisabledException");
}

#[tokio::test]
async fn boto3_replicates_a_multi_region_key_decrypts_across_regions_and_swaps_the_primary_region() {
    let report = scenario_with_auth_off(Sdk::Boto3, "multiregion").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "ReplicateKey", "");
    calls_answered(&report, &calls, "ReplicateKey", "AlreadyExistsException");
    calls_answered(&report, &calls, "ReplicateKey", "ValidationException");
    calls_answered(&report, &calls, "ReplicateKey", "UnsupportedOperationException");
    calls_answered(&report, &calls, "UpdatePrimaryRegion", "");
    calls_answered(&report, &calls, "UpdatePrimaryRegion", "UnsupportedOperationException");
    calls_answered(&report, &calls, "RotateKeyOnDemand", "UnsupportedOperationException");
    calls_answered(&report, &calls, "Encrypt", "DisabledException");
    assert!(
        report
            .passed("a ciphertext made in one region decrypts in the other")
            .contains(&"the replica opens the primary's ciphertext".to_owned())
    );
}

#[tokio::test]
async fn boto3_reads_the_default_key_policy_and_puts_and_lists_key_policies() {
    let report = scenario_with_auth_off(Sdk::Boto3, "policies").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "PutKeyPolicy", "MalformedPolicyDocumentException");
    calls_answered(&report, &calls, "ListKeyPolicies", "");
}

#[tokio::test]
async fn boto3_walks_every_cell_of_awss_key_state_table_and_each_answers_as_aws_does() {
    use kmsim::frontends::aws::states::{Cell, STATE_TABLE, table_json};
    let table = table_json().to_string();
    let report = scenario_with_auth_off_given(Sdk::Boto3, "states", &[("STATE_TABLE", &table)]).await;
    for row in STATE_TABLE {
        let section = format!("{} in each key state, as AWS's key-state table says", row.operation);
        let walked = report.passed(&section).iter().filter(|check| check.contains(" key: ")).count();
        let cells = row.cells.iter().filter(|cell| **cell != Cell::NotApplicable).count();
        assert_eq!(walked, cells, "{}: every cell of {} was walked", report.what, row.operation);
    }
}

#[tokio::test]
async fn boto3_sigv4_signatures_are_verified_and_wrong_secret_unknown_id_and_stale_date_are_refused_and_audited() {
    let report = scenario_with_auth_required(Sdk::Boto3, "signatures").await;
    let calls = report.calls();
    let forged = calls_answered(&report, &calls, "ListKeys", "InvalidSignatureException");
    assert!(forged.len() >= 3, "{}: wrong secret, 20 minutes old, 20 minutes ahead: {forged:#?}", report.what);
    let stranger = calls_answered(&report, &calls, "ListKeys", "UnrecognizedClientException");
    assert!(stranger[0].access_key_id.starts_with("AKIAKMSIMSTRANGER"), "{}: {stranger:#?}", report.what);
}

#[tokio::test]
async fn boto3_cloudtrail_lookup_events_shows_who_decrypted_and_how_it_ended_with_attributes_times_and_paging() {
    let report = scenario_with_auth_required(Sdk::Boto3, "cloudtrail").await;
    let calls = report.calls();
    let lookups = calls_answered(&report, &calls, "LookupEvents", "");
    assert!(lookups.iter().all(|c| c.service == "cloudtrail"), "{}: {lookups:#?}", report.what);
    calls_answered(&report, &calls, "Decrypt", "IncorrectKeyException");
}

#[tokio::test]
async fn boto3_creates_grants_whose_tokens_encrypt_then_lists_retires_and_revokes_them() {
    let report = scenario_with_auth_off(Sdk::Boto3, "grants").await;
    let calls = report.calls();
    for action in ["CreateGrant", "ListGrants", "ListRetirableGrants", "RetireGrant", "RevokeGrant"] {
        calls_answered(&report, &calls, action, "");
    }
    calls_answered(&report, &calls, "CreateGrant", "DisabledException");
}

// ---------------------------------------------------------------------------
// The AWS CLI, the AWS Encryption SDK, and @aws-sdk/client-kms
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_aws_cli_creates_encrypts_decrypts_and_describes_with_endpoint_url_and_env_credentials() {
    let report = scenario_with_auth_required(Sdk::AwsCli, "session").await;
    let calls = report.calls();
    for action in ["CreateKey", "Encrypt", "Decrypt", "DescribeKey"] {
        calls_answered(&report, &calls, action, "");
    }
    calls_answered(&report, &calls, "Encrypt", "DisabledException");
    assert!(calls.iter().all(|c| c.user_agent.starts_with("aws-cli/1.")), "{}: {calls:#?}", report.what);
}

#[tokio::test]
async fn the_aws_encryption_sdk_envelope_encrypts_with_a_kms_keyring_and_a_master_key_provider_and_decrypts_back() {
    let report = scenario_with_auth_off(Sdk::AwsEncryptionSdkPython, "envelope").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "GenerateDataKey", "");
    calls_answered(&report, &calls, "Decrypt", "DisabledException");
}

#[tokio::test]
async fn the_javascript_sdk_walks_a_key_through_its_states_and_pages_list_keys() {
    let report = scenario_with_auth_required(Sdk::AwsNode, "lifecycle").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "Encrypt", "DisabledException");
    calls_answered(&report, &calls, "Encrypt", "KMSInvalidStateException");
    assert!(calls.iter().all(|c| c.user_agent.starts_with("aws-sdk-js/")), "{}: {calls:#?}", report.what);
}

#[tokio::test]
async fn the_javascript_sdk_encrypts_signs_and_macs_and_node_crypto_verifies_the_signatures() {
    let report = scenario_with_auth_required(Sdk::AwsNode, "crypto").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "Decrypt", "IncorrectKeyException");
    calls_answered(&report, &calls, "Verify", "KMSInvalidSignatureException");
    calls_answered(&report, &calls, "VerifyMac", "KMSInvalidMacException");
}
