//! Alibaba Cloud's own SDKs, unchanged, against kmsim's OpenAPI 2016-01-20 front end (issue 29, item 7).
//!
//! Each test starts its own server on 127.0.0.1:0 and runs one scenario script of `tests/sdk/alibaba/` with
//! a real SDK installed by `support/sdk.rs` (once, under `target/sdk`): the current Python SDK
//! (alibabacloud-kms20160120, in its ACS3, v1 and SM3 signing modes), the old one (aliyun-python-sdk-kms)
//! and the Node one (@alicloud/kms20160120). The script drives the SDK as a user would, checks what it can
//! outside kmsim (signatures and RSA-OAEP with `cryptography` or Node's crypto), and reports every check and
//! every call as JSON. The test then asserts that every section passed and that every call the SDK made left
//! exactly one audit record, read back through kmsim's own AuditService, with the SDK's User-Agent, the
//! AccessKeyId it used, the RequestId the SDK read in the body, the action as event name, and the outcome,
//! error code and HTTP status the SDK saw. Signature refusals are calls too, and are audited like any other.
//!
//! These tests never skip: without python3/pip/venv or node/npm they fail saying what to install.

mod common;
#[path = "support/sdk.rs"]
mod sdk;

use std::collections::BTreeSet;

use common::*;
use kmsim::credentials::Credentials;
use kmsim::proto as pb;
use kmsim::server::ServerConfig;
use sdk::{Call, Report, Script, Sdk};

/// With `--auth off` the server checks no signature and records the AccessKeyId as the SDK sent it.
const UNCHECKED_KEY_ID: &str = "LTAIkmsimSdkTests0000001";
const UNCHECKED_SECRET: &str = "kmsim-sdk-tests-secret-not-checked";

/// A server as a developer runs it for integration tests: `--auth off` (the default).
async fn auth_off() -> (TestServer, Credentials) {
    let server = TestServer::start_config(ServerConfig::default()).await;
    (server, Credentials::new(UNCHECKED_KEY_ID, UNCHECKED_SECRET))
}

/// A server with `--auth required`, its admin's clients, and a RAM user's AccessKey allowed `kms:*`.
async fn auth_required() -> (TestServer, SignedClients, Credentials) {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let user = create_access_key_as(&mut admin, "sdk-user").await;
    create_policy_as(&mut admin, "sdk-kms-all", &identity_policy("Allow", &["kms:*"], &["*"])).await;
    attach_user_policy_as(&mut admin, "sdk-kms-all", "sdk-user").await;
    (server, admin, user)
}

async fn run(sdk: Sdk, scenario: &str, server: &TestServer, credentials: &Credentials) -> Report {
    Script::new(sdk, scenario, server.addr, &credentials.access_key_id, credentials.secret.expose()).run().await
}

/// Every call the script made left exactly one audit record saying what the SDK saw, and every record made
/// with an Alibaba SDK's User-Agent is one of those calls.
#[track_caller]
fn assert_every_call_audited(events: &[pb::AuditEvent], report: &Report) {
    let calls = report.calls();
    assert!(!calls.is_empty(), "{}: the script made no call", report.what);
    for call in &calls {
        let what = format!("{}: {} (RequestId {:?})", report.what, call.action, call.request_id);
        assert!(!call.request_id.is_empty(), "{what}: the SDK read no RequestId: {call:?}");
        assert!(call.user_agent.starts_with("AlibabaCloud ("), "{what}: not an Alibaba SDK's User-Agent: {call:?}");
        // A GetSecretValue also audits the Decrypt it made on the caller's behalf (`invoked_by`); that one is kmsim's.
        let records: Vec<&pb::AuditEvent> =
            events.iter().filter(|e| e.request_id == call.request_id && e.invoked_by.is_empty()).collect();
        assert_eq!(records.len(), 1, "{what}: {} audit records, expected exactly one: {records:#?}", records.len());
        let record = records[0];
        assert_eq!(record.event_name, call.action, "{what}: event name");
        assert_eq!(record.user_agent, call.user_agent, "{what}: the record's User-Agent is not the one the SDK sent");
        assert_eq!(record.access_key_id, call.access_key_id, "{what}: the record's AccessKeyId");
        let identity = record.user_identity.as_ref().unwrap_or_else(|| panic!("{what}: no userIdentity"));
        assert_eq!(identity.access_key_id, call.access_key_id, "{what}: the userIdentity's AccessKeyId");
        assert_eq!(record.outcome, if call.ok { "Success" } else { "Failure" }, "{what}: outcome");
        assert_eq!(record.error_code, call.wire_code, "{what}: the record's error code is not the body's Code");
        assert_eq!(i64::from(record.http_status), call.status, "{what}: the record's HTTP status");
        assert_eq!(record.client_ip, "127.0.0.1", "{what}: the peer address");
    }
    let seen: BTreeSet<&str> = calls.iter().map(|c| c.request_id.as_str()).collect();
    for record in events.iter().filter(|e| e.invoked_by.is_empty() && e.user_agent.starts_with("AlibabaCloud")) {
        assert!(
            seen.contains(record.request_id.as_str()),
            "{}: an audit record of a call no SDK call saw: {record:#?}",
            report.what
        );
    }
}

/// The calls of `action` the server answered with `code` and HTTP `status` ("" and 200 for success).
fn calls_answered<'a>(report: &Report, calls: &'a [Call], action: &str, code: &str, status: i64) -> Vec<&'a Call> {
    let found: Vec<&Call> =
        calls.iter().filter(|c| c.action == action && c.wire_code == code && c.status == status).collect();
    assert!(!found.is_empty(), "{}: no {action} answered {code:?} with {status}: {calls:#?}", report.what);
    found
}

/// Runs `scenario` of `sdk` on a server with `--auth off`; asserts every section passed and every call audited.
async fn scenario_with_auth_off(sdk: Sdk, scenario: &str) -> Report {
    let (server, credentials) = auth_off().await;
    let report = run(sdk, scenario, &server, &credentials).await;
    report.assert_all_passed();
    assert_every_call_audited(&all_audit_events(&server).await, &report);
    server.stop().await;
    report
}

/// Runs `scenario` of `sdk` as a RAM user on a server with `--auth required`; asserts as above.
async fn scenario_with_auth_required(sdk: Sdk, scenario: &str, params: &[(&str, &str)]) -> Report {
    let (server, mut admin, user) = auth_required().await;
    let mut script = Script::new(sdk, scenario, server.addr, &user.access_key_id, user.secret.expose());
    for (name, value) in params {
        script = script.param(name, value);
    }
    let report = script.run().await;
    report.assert_all_passed();
    let events = audit_events_as(&mut admin).await;
    assert_every_call_audited(&events, &report);
    let calls = report.calls();
    let answered: Vec<&Call> = calls.iter().filter(|c| c.ok).collect();
    assert!(
        answered.iter().all(|c| c.access_key_id == user.access_key_id),
        "{}: answered as someone else",
        report.what
    );
    server.stop().await;
    report
}

/// The refusals a signatures scenario must have met, each audited as the refusal it was.
fn assert_signature_refusals(report: &Report, wrong_secret_raised_as: &str) {
    let calls = report.calls();
    let forged = calls_answered(report, &calls, "ListKeys", "SignatureDoesNotMatch", 400);
    assert!(forged.iter().all(|c| c.code.starts_with(wrong_secret_raised_as)), "{}: {forged:#?}", report.what);
    let stranger = calls_answered(report, &calls, "ListKeys", "InvalidAccessKeyId.NotFound", 404);
    assert!(stranger[0].access_key_id.starts_with("LTAIkmsimStranger"), "{}: {stranger:#?}", report.what);
    calls_answered(report, &calls, "ListKeys", "SignatureNonceUsed", 400);
    let stale = report.fact("stale timestamp code").as_str().unwrap_or_default().to_owned();
    calls_answered(report, &calls, "ListKeys", &stale, 400);
}

// ---------------------------------------------------------------------------
// The current Python SDK, alibabacloud-kms20160120 (ACS3-HMAC-SHA256 unless told otherwise)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_new_python_sdk_sees_a_disabled_key_refused_with_409_through_a_keys_whole_lifecycle() {
    let report = scenario_with_auth_off(Sdk::NewPython, "lifecycle").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "Encrypt", "Rejected.Disabled", 409);
    calls_answered(&report, &calls, "Encrypt", "Rejected.PendingDeletion", 409);
    calls_answered(&report, &calls, "DescribeKey", "Forbidden.KeyNotFound", 404);
    assert!(calls.iter().all(|c| c.access_key_id == UNCHECKED_KEY_ID), "with --auth off the id is recorded as given");
}

#[tokio::test]
async fn the_new_python_sdk_runs_every_cryptographic_operation_and_cryptography_checks_the_results() {
    let report = scenario_with_auth_off(Sdk::NewPython, "crypto").await;
    let calls = report.calls();
    for action in [
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ExportDataKey",
        "GenerateAndExportDataKey",
        "GetPublicKey",
        "AsymmetricSign",
        "AsymmetricVerify",
        "AsymmetricEncrypt",
        "AsymmetricDecrypt",
        "GenerateMac",
        "VerifyMac",
        "GetRandomPassword",
    ] {
        calls_answered(&report, &calls, action, "", 200);
    }
    let signed =
        report.passed("AsymmetricSign with ECDSA_SHA_256 on an EC_P256 key signs so that cryptography verifies it");
    assert!(signed.iter().any(|c| c.starts_with("cryptography verifies")), "{signed:?}");
    assert_eq!(report.fact("GenerateRandom is an action of this SDK"), false, "3.3.1 has no GenerateRandom");
}

#[tokio::test]
async fn the_new_python_sdk_manages_aliases_tags_and_key_versions_and_pages_through_them() {
    let report = scenario_with_auth_off(Sdk::NewPython, "resources").await;
    let calls = report.calls();
    calls_answered(&report, &calls, "Encrypt", "Forbidden.AliasNotFound", 404);
    for action in [
        "ListAliases",
        "ListAliasesByKeyId",
        "ListResourceTags",
        "ListKeyVersions",
        "DescribeKeyVersion",
        "TagResources",
        "ListTagResources",
        "UntagResources",
    ] {
        calls_answered(&report, &calls, action, "", 200);
    }
}

#[tokio::test]
async fn the_new_python_sdk_stores_versions_and_restores_secrets() {
    let report = scenario_with_auth_off(Sdk::NewPython, "secrets").await;
    let calls = report.calls();
    for action in ["BatchGetSecretValue", "GetSecretPolicy", "SetSecretPolicy", "TagResources"] {
        calls_answered(&report, &calls, action, "", 200);
    }
    calls_answered(&report, &calls, "GetSecretValue", "Rejected.ResourceInDeleteWindow", 409);
    calls_answered(&report, &calls, "GetSecretValue", "Forbidden.ResourceNotFound", 404);
}

#[tokio::test]
async fn the_new_python_sdk_describes_the_account_its_regions_and_a_kms_instance() {
    let (server, credentials) = auth_off().await;
    let mut instances = server.instances().await;
    let instance = create_instance(&mut instances, "cn-hangzhou", 1000, "").await.kms_instance_id;
    let script =
        Script::new(Sdk::NewPython, "instances", server.addr, &credentials.access_key_id, credentials.secret.expose());
    let report = script.param("INSTANCE_ID", &instance).run().await;
    report.assert_all_passed();
    assert_every_call_audited(&all_audit_events(&server).await, &report);
    let calls = report.calls();
    for action in [
        "DescribeRegions",
        "DescribeAccountKmsStatus",
        "OpenKmsService",
        "GetKmsInstance",
        "ListKmsInstances",
        "GetKmsInstanceQuotaInfos",
    ] {
        calls_answered(&report, &calls, action, "", 200);
    }
    server.stop().await;
}

#[tokio::test]
async fn the_new_python_sdk_manages_application_access_and_gets_its_client_key_as_a_pkcs12_file() {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let request = pb::CreateKmsInstanceRequest { spec: 1000, ..Default::default() };
    let instance = admin.instances.create_kms_instance(request).await.unwrap().into_inner().kms_instance.unwrap();
    let script = Script::new(Sdk::NewPython, "access", server.addr, ADMIN_KEY_ID, ADMIN_SECRET);
    let report = script.param("INSTANCE_ID", &instance.kms_instance_id).run().await;
    report.assert_all_passed();
    assert_every_call_audited(&audit_events_as(&mut admin).await, &report);
    let calls = report.calls();
    for action in [
        "CreateNetworkRule",
        "DescribeNetworkRule",
        "ListNetworkRules",
        "UpdateNetworkRule",
        "DeleteNetworkRule",
        "CreatePolicy",
        "DescribePolicy",
        "ListPolicies",
        "UpdatePolicy",
        "DeletePolicy",
        "CreateApplicationAccessPoint",
        "DescribeApplicationAccessPoint",
        "ListApplicationAccessPoints",
        "UpdateApplicationAccessPoint",
        "DeleteApplicationAccessPoint",
        "CreateClientKey",
        "GetClientKey",
        "ListClientKeys",
        "DeleteClientKey",
    ] {
        calls_answered(&report, &calls, action, "", 200);
    }
    let by_app = calls_answered(&report, &calls, "Encrypt", "InvalidAccessKeyId.NotFound", 404);
    assert!(by_app[0].access_key_id.starts_with("KAAP."), "the application called with its ClientKey: {by_app:#?}");
    server.stop().await;
}

#[tokio::test]
async fn acs3_hmac_sha256_signatures_of_the_new_python_sdk_are_verified_and_refusals_audited() {
    let report = scenario_with_auth_required(Sdk::NewPython, "signatures", &[]).await;
    assert_signature_refusals(&report, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn v1_hmac_sha1_signatures_of_the_new_python_sdk_in_v2_mode_are_verified_and_refusals_audited() {
    let report = scenario_with_auth_required(Sdk::NewPython, "signatures", &[("SIGNATURE_ALGORITHM", "v2")]).await;
    assert_signature_refusals(&report, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn acs3_hmac_sm3_signatures_of_the_new_python_sdk_are_verified_and_refusals_audited() {
    let params = [("SIGNATURE_ALGORITHM", "ACS3-HMAC-SM3")];
    let report = scenario_with_auth_required(Sdk::NewPython, "signatures", &params).await;
    assert_signature_refusals(&report, "SignatureDoesNotMatch");
}

// ---------------------------------------------------------------------------
// The old Python SDK, aliyun-python-sdk-kms on aliyun-python-sdk-core (v1 HMAC-SHA1), as a RAM user
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_old_python_sdk_sees_a_disabled_key_refused_with_409_as_a_ram_user() {
    let report = scenario_with_auth_required(Sdk::OldPython, "lifecycle", &[]).await;
    calls_answered(&report, &report.calls(), "Encrypt", "Rejected.Disabled", 409);
}

#[tokio::test]
async fn the_old_python_sdk_runs_the_cryptographic_operations_with_a_json_string_encryption_context() {
    let report = scenario_with_auth_required(Sdk::OldPython, "crypto", &[]).await;
    calls_answered(&report, &report.calls(), "ExportDataKey", "", 200);
}

#[tokio::test]
async fn the_old_python_sdk_manages_aliases_tags_and_key_versions() {
    let report = scenario_with_auth_required(Sdk::OldPython, "resources", &[]).await;
    calls_answered(&report, &report.calls(), "DescribeKey", "Forbidden.AliasNotFound", 404);
}

#[tokio::test]
async fn the_old_python_sdk_manages_secrets_with_secret_data_in_the_query() {
    let report = scenario_with_auth_required(Sdk::OldPython, "secrets", &[]).await;
    calls_answered(&report, &report.calls(), "GetSecretValue", "Rejected.ResourceInDeleteWindow", 409);
}

#[tokio::test]
async fn the_old_python_sdk_raises_invalid_access_key_secret_because_kmsim_quotes_its_string_to_sign() {
    let report = scenario_with_auth_required(Sdk::OldPython, "signatures", &[]).await;
    assert_signature_refusals(&report, "InvalidAccessKeySecret");
}

// ---------------------------------------------------------------------------
// The Node SDK, @alicloud/kms20160120 (v1 HMAC-SHA1), as a RAM user
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_node_sdk_sees_a_disabled_key_refused_with_409_as_a_ram_user() {
    let report = scenario_with_auth_required(Sdk::Node, "lifecycle", &[]).await;
    let calls = report.calls();
    let refused = calls_answered(&report, &calls, "Encrypt", "Rejected.Disabled", 409);
    assert_eq!(refused[0].code, "Rejected.DisabledError", "the Node SDK suffixes the code with Error");
}

#[tokio::test]
async fn the_node_sdk_runs_the_cryptographic_operations_with_a_flattened_encryption_context() {
    let report = scenario_with_auth_required(Sdk::Node, "crypto", &[]).await;
    calls_answered(&report, &report.calls(), "AsymmetricDecrypt", "", 200);
}

#[tokio::test]
async fn the_node_sdk_manages_aliases_tags_and_key_versions() {
    let report = scenario_with_auth_required(Sdk::Node, "resources", &[]).await;
    calls_answered(&report, &report.calls(), "DescribeKey", "Forbidden.AliasNotFound", 404);
}

#[tokio::test]
async fn the_node_sdk_manages_secrets() {
    let report = scenario_with_auth_required(Sdk::Node, "secrets", &[]).await;
    calls_answered(&report, &report.calls(), "GetSecretValue", "Rejected.ResourceInDeleteWindow", 409);
}

#[tokio::test]
async fn the_node_sdks_v1_signatures_are_verified_and_refusals_audited() {
    let report = scenario_with_auth_required(Sdk::Node, "signatures", &[]).await;
    assert_signature_refusals(&report, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn the_new_python_sdk_speaks_https_to_a_tls_server_it_trusts_through_its_ca() {
    let pki = common::pki::Pki::new();
    let server =
        TestServer::start_config(ServerConfig { tls: Some(pki.files(false)), ..ServerConfig::default() }).await;
    let ca_file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(ca_file.path(), pki.server_ca.pem()).expect("write the CA");
    let ca_path = ca_file.path().to_str().expect("a UTF-8 path").to_owned();
    let report = Script::new(Sdk::NewPython, "lifecycle", server.addr, UNCHECKED_KEY_ID, UNCHECKED_SECRET)
        .param("PROTOCOL", "https")
        .param("CA", &ca_path)
        .run()
        .await;
    report.assert_all_passed();
    let events = audit_events_over(common::pki::tls_channel(server.addr, &pki.server_ca).await).await;
    assert_every_call_audited(&events, &report);
    server.stop().await;
}

#[tokio::test]
async fn the_new_python_sdk_raises_its_throttling_exception_when_kmsim_throttles() {
    let (server, credentials) = auth_off().await;
    let key_id = server
        .kms()
        .await
        .create_key(pb::CreateKeyRequest { key_spec: "Aliyun_AES_256".into(), ..Default::default() })
        .await
        .expect("create a key")
        .into_inner()
        .key_metadata
        .expect("its metadata")
        .key_id;
    let fault = pb::InjectFaultRequest {
        method: "Encrypt".into(),
        error_code: "Rejected.Throttling".into(),
        ..Default::default()
    };
    server.simulation().await.inject_fault(fault).await.expect("inject throttling");
    let report =
        Script::new(Sdk::NewPython, "throttling", server.addr, &credentials.access_key_id, credentials.secret.expose())
            .param("KEY_ID", &key_id)
            .run()
            .await;
    report.assert_all_passed();
    assert_every_call_audited(&all_audit_events(&server).await, &report);
    server.stop().await;
}
