//! Alibaba's KMS instance SDK (`alibabacloud-dkms-gcs` 1.0.2), unchanged, against kmsim's instance API on the
//! one port (issue 32), and its router SDK (`alibabacloud-kms-python-sdk` 1.1.3), whose cryptographic calls go to
//! the instance API and whose management calls go to the OpenAPI of the same server.
//!
//! Each test starts a server on 127.0.0.1:0 with `--auth off` (an instance authenticates every call whatever
//! `--auth` says), buys a KMS instance, makes keys and a secret in it and keys outside it, an AAP bound to it with
//! a policy, and a ClientKey of Alibaba's kind written as the console's two files. It then runs a scenario of
//! `tests/sdk/dkms/` with the SDK installed by `support/sdk.rs` (each SDK in its own pinned venv under
//! `target/sdk`), asserts every section passed, and reads back the record of every call the SDK made: the
//! instance API's call name, the ClientKey as the caller (an AAP's assumed role), the SDK's User-Agent, the
//! instance that served it, and the code and HTTP status the SDK saw.
//!
//! These tests never skip: without python3/pip/venv they fail saying what to install.

mod common;
#[path = "support/sdk.rs"]
mod sdk;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::pki::{Pki, tls_channel};
use common::*;
use kmsim::proto as pb;
use kmsim::proto::access_service_client::AccessServiceClient;
use kmsim::proto::instance_service_client::InstanceServiceClient;
use kmsim::proto::key_management_service_client::KeyManagementServiceClient;
use kmsim::proto::secrets_manager_service_client::SecretsManagerServiceClient;
use kmsim::server::ServerConfig;
use sdk::{Report, Script, Sdk};
use serde_json::Value;
use tonic::transport::Channel;

const PASSWORD: &str = "Instance-Passw0rd";
const SECRET_VALUE: &str = "db-password-of-the-instance";

/// A server with an instance, its keys and secret, keys outside it, and ClientKeys of an AAP bound to it.
struct Setup {
    server: TestServer,
    /// Plaintext, or TLS trusting the server's CA.
    channel: Channel,
    dir: tempfile::TempDir,
    instance_id: String,
    key_id: String,
    rsa_key_id: String,
    sign_key_id: String,
    other_key_id: String,
    disabled_key_id: String,
    outside_key_id: String,
    client_key: (String, PathBuf),
    expired_client_key: (String, PathBuf),
    other_client_key: (String, PathBuf),
}

async fn key(kms: &mut Kms, instance_id: &str, spec: &str, usage: &str) -> String {
    let request = pb::CreateKeyRequest {
        key_spec: spec.to_owned(),
        key_usage: usage.to_owned(),
        dkms_instance_id: instance_id.to_owned(),
        ..Default::default()
    };
    kms.create_key(request).await.expect("create key").into_inner().key_metadata.unwrap().key_id
}

/// A ClientKey of Alibaba's kind for `aap`, written to `dir` as the console's `clientKey_<id>.json`.
async fn new_client_key(
    access: &mut AccessServiceClient<Channel>,
    dir: &Path,
    aap: &str,
    window: (&str, &str),
) -> (String, PathBuf) {
    let request = pb::CreateClientKeyRequest {
        aap_name: aap.to_owned(),
        not_before: window.0.to_owned(),
        not_after: window.1.to_owned(),
        password: PASSWORD.to_owned(),
    };
    let made = access.create_client_key(request).await.expect("create client key").into_inner();
    let id = made.client_key.unwrap().client_key_id;
    let path = dir.join(format!("clientKey_{id}.json"));
    let document = serde_json::json!({ "KeyId": id, "PrivateKeyData": made.private_key_data });
    std::fs::write(&path, document.to_string()).unwrap();
    (id, path)
}

impl Setup {
    async fn start() -> Setup {
        let server = TestServer::start_config(ServerConfig::default()).await;
        let channel = server.channel().await;
        Setup::made(server, channel).await
    }

    /// Serving TLS with a certificate `pki`'s server CA issued.
    async fn start_tls(pki: &Pki) -> Setup {
        let server =
            TestServer::start_config(ServerConfig { tls: Some(pki.files(false)), ..ServerConfig::default() }).await;
        let channel = tls_channel(server.addr, &pki.server_ca).await;
        Setup::made(server, channel).await
    }

    async fn made(server: TestServer, channel: Channel) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let mut instances = InstanceServiceClient::new(channel.clone());
        let instance_id = create_instance(&mut instances, "cn-hangzhou", 1000, "").await.kms_instance_id;
        let mut kms = KeyManagementServiceClient::new(channel.clone());
        let id = instance_id.as_str();
        let key_id = key(&mut kms, id, "", "").await;
        let rsa_key_id = key(&mut kms, id, "RSA_2048", "ENCRYPT/DECRYPT").await;
        let sign_key_id = key(&mut kms, id, "EC_P256", "SIGN/VERIFY").await;
        let other_key_id = key(&mut kms, id, "", "").await;
        let disabled_key_id = key(&mut kms, id, "", "").await;
        kms.disable_key(pb::DisableKeyRequest { key_id: disabled_key_id.clone() }).await.expect("disable");
        let outside_key_id = key(&mut kms, "", "", "").await;
        let secret = pb::CreateSecretRequest {
            secret_name: "app/db".into(),
            secret_data: SECRET_VALUE.into(),
            version_id: "v1".into(),
            encryption_key_id: key_id.clone(),
            ..Default::default()
        };
        SecretsManagerServiceClient::new(channel.clone()).create_secret(secret).await.expect("create secret");

        instance_aap(&channel, "orders", &instance_id).await;
        let mut access = AccessServiceClient::new(channel.clone());
        let client_key = new_client_key(&mut access, dir.path(), "orders", ("", "")).await;
        let expired = ("2020-01-01T00:00:00Z", "2020-06-01T00:00:00Z");
        let expired_client_key = new_client_key(&mut access, dir.path(), "orders", expired).await;
        let other_client_key = new_client_key(&mut access, dir.path(), "orders", ("", "")).await;
        Setup {
            server,
            channel,
            dir,
            instance_id,
            key_id,
            rsa_key_id,
            sign_key_id,
            other_key_id,
            disabled_key_id,
            outside_key_id,
            client_key,
            expired_client_key,
            other_client_key,
        }
    }

    fn script(&self, sdk: Sdk, scenario: &str) -> Script {
        self.with_params(Script::new(sdk, scenario, self.server.addr, &self.client_key.0, ""))
    }

    /// The setup's keys, secret and ClientKey files as the scripts' settings.
    fn with_params(&self, script: Script) -> Script {
        let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
        script
            .param("CLIENT_KEY_FILE", &path(&self.client_key.1))
            .param("CLIENT_KEY_PASSWORD", PASSWORD)
            .param("KEY_ID", &self.key_id)
            .param("RSA_KEY_ID", &self.rsa_key_id)
            .param("SIGN_KEY_ID", &self.sign_key_id)
            .param("OTHER_KEY_ID", &self.other_key_id)
            .param("DISABLED_KEY_ID", &self.disabled_key_id)
            .param("OUTSIDE_KEY_ID", &self.outside_key_id)
            .param("SECRET_NAME", "app/db")
            .param("SECRET_VALUE", SECRET_VALUE)
            .param("EXPIRED_CLIENT_KEY_FILE", &path(&self.expired_client_key.1))
            .param("OTHER_CLIENT_KEY_FILE", &path(&self.other_client_key.1))
            .param("INSTANCE_ID", &self.instance_id)
    }
}

/// Every call the script made left exactly one record: the instance API's call name, the ClientKey (its AAP's
/// assumed role) as the caller, the SDK's User-Agent, the instance that served a call on one of its keys, and
/// the outcome, code and HTTP status the SDK saw. Returns the records of the calls, in the report's order.
#[track_caller]
fn assert_every_call_audited(renderings: &[(pb::AuditEvent, Value)], report: &Report, instance_id: &str) {
    let calls = report.calls();
    assert!(!calls.is_empty(), "{}: the script made no call", report.what);
    for call in &calls {
        let what = format!("{}: {} (RequestId {:?})", report.what, call.action, call.request_id);
        assert!(!call.request_id.is_empty(), "{what}: the SDK read no RequestId: {call:?}");
        assert!(call.user_agent.contains("kms-gcs-python-sdk-version/1.0.2"), "{what}: the SDK's User-Agent: {call:?}");
        let records: Vec<&(pb::AuditEvent, Value)> =
            renderings.iter().filter(|(e, _)| e.request_id == call.request_id && e.invoked_by.is_empty()).collect();
        assert_eq!(records.len(), 1, "{what}: {} audit records, expected exactly one: {records:#?}", records.len());
        let (record, native) = records[0];
        assert_eq!(record.event_name, call.action, "{what}: the record names the instance API's call");
        assert_eq!(record.user_agent, call.user_agent, "{what}: the record's User-Agent is not the one the SDK sent");
        assert_eq!(record.access_key_id, call.access_key_id, "{what}: the ClientKey is the caller");
        assert_eq!(record.outcome, if call.ok { "Success" } else { "Failure" }, "{what}: outcome");
        assert_eq!(record.error_code, call.wire_code, "{what}: the record's error code is the Error message's");
        assert_eq!(i64::from(record.http_status), call.status, "{what}: the record's HTTP status");
        assert_eq!(record.client_ip, "127.0.0.1", "{what}: the peer address");
        assert_eq!(native["frontend"], "dkms", "{what}: the record names the instance API: {native}");
        let identity = record.user_identity.as_ref().unwrap_or_else(|| panic!("{what}: no userIdentity"));
        // A refused credential is recorded under the id it named, not yet as its AAP.
        let refused_credential = ["SignatureNotMatch", "InvalidAccessKeyId.NotFound", "Forbidden.AccessKey"];
        let verified = !refused_credential.contains(&call.wire_code.as_str());
        if verified {
            assert_eq!((identity.r#type.as_str(), identity.user_name.as_str()), ("assumed-role", "orders"), "{what}");
        }
        // A call the instance served names it, whether or not it used a key (GenerateRandom).
        if call.ok {
            assert_eq!(native["instanceId"], instance_id, "{what}: the record names the instance: {native}");
        }
    }
    let seen: BTreeSet<&str> = calls.iter().map(|c| c.request_id.as_str()).collect();
    for (record, _) in renderings.iter().filter(|(e, _)| e.invoked_by.is_empty() && e.user_agent.contains("gcs-python"))
    {
        assert!(seen.contains(record.request_id.as_str()), "{}: a record no SDK call saw: {record:#?}", report.what);
    }
}

#[tokio::test]
async fn the_instance_sdk_makes_every_call_and_its_refusals_are_alibabas_errors_and_all_are_recorded() {
    let setup = Setup::start().await;
    let report = setup.script(Sdk::Dkms, "calls").run().await;
    report.assert_all_passed();
    let renderings = audit_renderings_over(setup.channel.clone(), "native").await;
    assert_every_call_audited(&renderings, &report, &setup.instance_id);
    let names: BTreeSet<String> = report.calls().iter().map(|c| c.action.clone()).collect();
    let all: BTreeSet<String> =
        kmsim::frontends::alibaba::instance::calls::CALLS.iter().map(|c| c.to_string()).collect();
    assert_eq!(names, all, "the scenario makes every one of the 14 calls");
    let refused: BTreeSet<(String, String, i64)> =
        report.calls().iter().filter(|c| !c.ok).map(|c| (c.action.clone(), c.wire_code.clone(), c.status)).collect();
    for expected in [
        ("Decrypt", "IncorrectKey", 400),
        ("Encrypt", "Rejected.Disabled", 409),
        ("Encrypt", "Forbidden.KeyNotFound", 404),
    ] {
        let expected = (expected.0.to_owned(), expected.1.to_owned(), expected.2);
        assert!(refused.contains(&expected), "refused {expected:?}: {refused:?}");
    }
    // No record holds what the calls sealed or opened.
    for (event, _) in &renderings {
        let text = format!("{} {}", event.request_parameters, event.response_elements);
        assert!(!text.contains("order 42") && !text.contains(SECRET_VALUE), "{text}");
    }
    setup.server.stop().await;
    drop(setup.dir);
}

#[tokio::test]
async fn a_client_key_outside_its_window_or_a_signature_by_another_key_is_refused_and_recorded() {
    let setup = Setup::start().await;
    let report = setup.script(Sdk::Dkms, "refusals").run().await;
    report.assert_all_passed();
    let renderings = audit_renderings_over(setup.channel.clone(), "native").await;
    assert_every_call_audited(&renderings, &report, &setup.instance_id);
    let codes: Vec<(String, String)> =
        report.calls().iter().map(|c| (c.access_key_id.clone(), c.wire_code.clone())).collect();
    assert!(codes.contains(&(setup.expired_client_key.0.clone(), "Forbidden.AccessKey".into())), "{codes:?}");
    assert!(codes.contains(&(setup.client_key.0.clone(), "SignatureNotMatch".into())), "{codes:?}");
    setup.server.stop().await;
}

#[tokio::test]
async fn the_instance_sdk_works_over_tls_with_the_ca_that_issued_kmsims_certificate() {
    let pki = Pki::new();
    let setup = Setup::start_tls(&pki).await;
    let ca = setup.dir.path().join("ca.pem");
    std::fs::write(&ca, pki.server_ca.pem()).unwrap();
    let report = setup.script(Sdk::Dkms, "tls").param("CA_FILE", ca.to_str().unwrap()).run().await;
    report.assert_all_passed();
    let renderings = audit_renderings_over(setup.channel.clone(), "native").await;
    assert_every_call_audited(&renderings, &report, &setup.instance_id);
    setup.server.stop().await;
}

/// With `--auth off` the OpenAPI half's AccessKey is taken at its word, and recorded as given.
const OPENAPI_ACCESS_KEY_ID: &str = "LTAIkmsimRouterTests0001";

/// What the router SDK's call `action` is on the wire: an instance API call for its cryptographic half.
fn routed_as(action: &str) -> &str {
    match action {
        "Encrypt" => "AdvanceEncrypt",
        "Decrypt" => "AdvanceDecrypt",
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => "AdvanceGenerateDataKey",
        "AsymmetricSign" => "Sign",
        "AsymmetricVerify" => "Verify",
        "AsymmetricEncrypt" => "Encrypt",
        "AsymmetricDecrypt" => "Decrypt",
        other => other,
    }
}

#[tokio::test]
async fn the_router_sdk_sends_cryptography_to_the_instance_api_and_management_to_the_openapi_of_one_server() {
    let setup = Setup::start().await;
    let script = Script::new(Sdk::KmsRouter, "halves", setup.server.addr, &setup.client_key.0, "unchecked-secret")
        .param("OPENAPI_ACCESS_KEY_ID", OPENAPI_ACCESS_KEY_ID);
    let script = setup.with_params(script);
    let report = script.run().await;
    report.assert_all_passed();
    let renderings = audit_renderings_over(setup.channel.clone(), "native").await;
    let calls = report.calls();
    let mut halves = BTreeSet::new();
    for call in &calls {
        let what = format!("{}: {} (RequestId {:?})", report.what, call.action, call.request_id);
        let record = renderings
            .iter()
            .find(|(e, _)| e.request_id == call.request_id && e.invoked_by.is_empty())
            .map(|(e, native)| (e, native))
            .unwrap_or_else(|| panic!("{what}: no record"));
        let (record, native) = record;
        assert_eq!(record.event_name, routed_as(&call.action), "{what}");
        assert_eq!(record.access_key_id, call.access_key_id, "{what}: the caller");
        assert_eq!(record.error_code, call.wire_code, "{what}");
        if call.access_key_id == setup.client_key.0 {
            halves.insert("instance");
            assert_eq!(native["frontend"], "dkms", "{what}");
            assert!(record.user_agent.contains("alibabacloud-kms-python-sdk-transfer-client/1.1.3"), "{what}");
            assert_eq!(record.user_identity.as_ref().unwrap().r#type, "assumed-role", "{what}");
            if call.ok {
                assert_eq!(native["instanceId"], setup.instance_id.as_str(), "{what}: {native}");
            }
        } else {
            halves.insert("openapi");
            assert_eq!(native["frontend"], "alibaba", "{what}");
            assert_eq!(call.access_key_id, OPENAPI_ACCESS_KEY_ID, "{what}");
            assert!(record.user_agent.starts_with("AlibabaCloud ("), "{what}: {}", record.user_agent);
        }
    }
    assert_eq!(halves, BTreeSet::from(["instance", "openapi"]), "both halves were used");
    setup.server.stop().await;
}
