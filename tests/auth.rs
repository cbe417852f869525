//! Identity and access control through a real server: request signatures,
//! the skew window, AccessKeys, policies and key policies, application access
//! points and their ClientKeys (with expiry reminders), and `--auth off`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use common::cli::HANG_GUARD;
use common::*;
use kmsim::credentials::Credentials;
use kmsim::frontends::grpc::signing::format_date;
use kmsim::proto as pb;
use kmsim::server::{DEFAULT_ACCOUNT_ID as ACCOUNT, DEFAULT_REGION as REGION, ServerConfig};
use kmsim::store::Location;
use prost::Message;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

type SignedKms = pb::key_management_service_client::KeyManagementServiceClient<SignedChannel>;

// ---------------------------------------------------------------------------
// Walking every RPC
// ---------------------------------------------------------------------------

/// One call of a walk and how it was answered.
struct Walked {
    request_id: String,
    path: String,
    method: String,
    answer: Result<(), tonic::Status>,
}

/// Calls every declared RPC once with an empty message and the metadata `metadata(path)` gives.
async fn walk(channel: &Channel, label: &str, metadata: impl Fn(&str) -> Vec<(&'static str, String)>) -> Vec<Walked> {
    let methods = declared_methods();
    assert!(methods.len() >= 90, "the descriptor lists only {} methods", methods.len());
    for service in ["AccessService", "SimulationService", "KeyManagementService", "AuditService", "EventService"] {
        assert!(methods.iter().any(|(s, _, _)| s.ends_with(service)), "{service} is not walked");
    }
    let mut walked = Vec::new();
    for (i, (service, method, streaming)) in methods.into_iter().enumerate() {
        let path = format!("/{service}/{method}");
        let request_id = format!("{label}-{i}-{method}");
        let mut request = tonic::Request::new(());
        request.metadata_mut().insert("x-request-id", request_id.parse().unwrap());
        for (name, value) in metadata(&path) {
            request.metadata_mut().insert(name, value.parse().unwrap());
        }
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let at = PathAndQuery::from_str(&path).unwrap();
        // An empty message is valid for every request type; its encoding (and so what is signed) is empty.
        let codec = tonic_prost::ProstCodec::<(), ()>::default();
        let answer = if streaming {
            grpc.server_streaming(request, at, codec).await.map(drop)
        } else {
            grpc.unary(request, at, codec).await.map(drop)
        };
        walked.push(Walked { request_id, path, method, answer });
    }
    walked
}

/// The three signature headers for an empty message sent to `path`, signed at `date`.
fn signed_headers(credentials: &Credentials, path: &str, date: &str) -> Vec<(&'static str, String)> {
    let digest = kmsim::frontends::grpc::signing::message_digest(b"");
    let call = kmsim::frontends::grpc::signing::Signed { path, date, region: "", digest: &digest };
    let signature = kmsim::frontends::grpc::signing::signature(credentials.secret.expose(), &call);
    vec![
        (kmsim::frontends::grpc::headers::ACCESS_KEY_ID, credentials.access_key_id.clone()),
        (kmsim::frontends::grpc::headers::DATE, date.to_owned()),
        (kmsim::frontends::grpc::headers::SIGNATURE, signature),
    ]
}

fn date_from_now(offset_secs: i64) -> String {
    let now = SystemTime::now();
    let at = if offset_secs >= 0 {
        now + Duration::from_secs(offset_secs.unsigned_abs())
    } else {
        now - Duration::from_secs(offset_secs.unsigned_abs())
    };
    format_date(at)
}

/// How every call of a walk must have been refused.
struct Refusal<'a> {
    grpc: Code,
    code: &'a str,
    http: &'a str,
    /// The parameter a MissingParameter names.
    param: Option<&'a str>,
    /// The access key id the records must carry ("" for none).
    claimed: &'a str,
}

fn response_request_id(status: &tonic::Status) -> String {
    status.metadata().get("x-kms-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Each call was refused as `refusal` says, and left exactly one audit record saying so.
fn assert_all_refused(walked: &[Walked], events: &[pb::AuditEvent], refusal: &Refusal<'_>) {
    for call in walked {
        let what = format!("{} ({})", call.path, call.request_id);
        let status = match &call.answer {
            Err(status) => status,
            Ok(()) => panic!("{what}: was answered, not refused with {}", refusal.code),
        };
        assert_error(status, refusal.grpc, refusal.code, refusal.http, refusal.param, &what);
        let record = only_record(events, &call.request_id);
        assert_eq!(response_request_id(status), record.request_id, "{what}: the answer names another request");
        assert_eq!(record.event_name, call.method, "{what}");
        assert_eq!(record.outcome, "Failure", "{what}");
        assert_eq!(record.error_code, refusal.code, "{what}");
        assert_eq!(record.http_status.to_string(), refusal.http, "{what}");
        assert_eq!(record.access_key_id, refusal.claimed, "{what}: the record's access key id");
        let identity = record.user_identity.as_ref().unwrap_or_else(|| panic!("{what}: no userIdentity"));
        assert_eq!(identity.access_key_id, refusal.claimed, "{what}: the userIdentity's access key id");
        assert_eq!(identity.account_id, ACCOUNT, "{what}");
    }
}

/// A server with `--auth required`, the admin's clients, and a RAM user's AccessKey (no policies).
async fn auth_server() -> (TestServer, SignedClients, Credentials) {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let user = create_access_key_as(&mut admin, "walker").await;
    (server, admin, user)
}

/// Nothing a refused walk tried (CreateKey, CreatePolicy, CreateAccessKey, …) took effect.
async fn assert_nothing_changed(admin: &mut SignedClients, what: &str) {
    let keys = admin.kms.list_keys(pb::ListKeysRequest::default()).await.unwrap().into_inner();
    assert_eq!(keys.total_count, 0, "{what}: a refused CreateKey made a key");
    let users = admin.access.list_users(pb::ListUsersRequest {}).await.unwrap().into_inner().users;
    let names: Vec<&str> = users.iter().map(|u| u.user_name.as_str()).collect();
    assert_eq!(names, ["walker"], "{what}: users changed");
    let keys = admin.access.list_access_keys(pb::ListAccessKeysRequest::default()).await.unwrap().into_inner();
    assert_eq!(keys.access_keys.len(), 1, "{what}: access keys changed");
    let policies = admin.access.list_policies(pb::ListPoliciesRequest {}).await.unwrap().into_inner().policies;
    assert!(policies.is_empty(), "{what}: a refused CreatePolicy made {policies:?}");
    let instances = admin.instances.list_kms_instances(pb::ListKmsInstancesRequest::default()).await.unwrap();
    assert!(instances.into_inner().kms_instances.is_empty(), "{what}: a refused CreateKmsInstance made an instance");
}

#[tokio::test]
async fn every_rpc_refuses_an_unsigned_call_and_audits_the_refusal_once() {
    let (server, mut admin, _) = auth_server().await;
    let walked = walk(&server.channel().await, "unsigned", |_| Vec::new()).await;
    let events = audit_events_as(&mut admin).await;
    let refusal = Refusal {
        grpc: Code::InvalidArgument,
        code: "MissingParameter",
        http: "400",
        param: Some("x-kms-access-key-id"),
        claimed: "",
    };
    assert_all_refused(&walked, &events, &refusal);
    assert_nothing_changed(&mut admin, "unsigned walk").await;
    server.stop().await;
}

#[tokio::test]
async fn every_rpc_refuses_an_unknown_access_key_id() {
    let (server, mut admin, _) = auth_server().await;
    let stranger = Credentials::new("LTAIunknownStranger00001", "whatever-secret");
    let walked =
        walk(&server.channel().await, "unknown", |path| signed_headers(&stranger, path, &date_from_now(0))).await;
    let events = audit_events_as(&mut admin).await;
    let refusal = Refusal {
        grpc: Code::Unauthenticated,
        code: "InvalidAccessKeyId.NotFound",
        http: "404",
        param: None,
        claimed: "LTAIunknownStranger00001",
    };
    assert_all_refused(&walked, &events, &refusal);
    assert_nothing_changed(&mut admin, "unknown id walk").await;
    server.stop().await;
}

#[tokio::test]
async fn every_rpc_refuses_a_signature_made_with_the_wrong_secret() {
    let (server, mut admin, user) = auth_server().await;
    let channel = server.channel().await;
    // A real RAM user's id, and the admin's own id, each with a secret that is not theirs.
    let forged_user = Credentials::new(user.access_key_id.clone(), "not-the-users-secret-000000000");
    let walked_user = walk(&channel, "forged-user", |path| signed_headers(&forged_user, path, &date_from_now(0))).await;
    let forged_admin = Credentials::new(ADMIN_KEY_ID, format!("{ADMIN_SECRET}x"));
    let walked_admin =
        walk(&channel, "forged-admin", |path| signed_headers(&forged_admin, path, &date_from_now(0))).await;
    let events = audit_events_as(&mut admin).await;
    let refusal =
        |claimed| Refusal { grpc: Code::Unauthenticated, code: "SignatureNotMatch", http: "401", param: None, claimed };
    assert_all_refused(&walked_user, &events, &refusal(&user.access_key_id));
    assert_all_refused(&walked_admin, &events, &refusal(ADMIN_KEY_ID));
    // A forged admin call is never recorded as the admin's.
    for call in &walked_admin {
        let identity = only_record(&events, &call.request_id).user_identity.clone().unwrap();
        assert_ne!(identity.r#type, "root-account", "{}: a forged call recorded as the root account", call.path);
    }
    assert_nothing_changed(&mut admin, "forged walks").await;
    server.stop().await;
}

#[tokio::test]
async fn every_rpc_refuses_a_correctly_signed_call_replayed_outside_the_skew_window() {
    let (server, mut admin, user) = auth_server().await;
    let channel = server.channel().await;
    let admin_credentials = admin_credentials();
    // Correctly signed by the admin, who may do anything, but sixteen minutes ago.
    let stale = date_from_now(-16 * 60);
    let walked_past = walk(&channel, "replay-past", |path| signed_headers(&admin_credentials, path, &stale)).await;
    // And by the RAM user, dated sixteen minutes ahead.
    let ahead = date_from_now(16 * 60);
    let walked_future = walk(&channel, "replay-future", |path| signed_headers(&user, path, &ahead)).await;
    let events = audit_events_as(&mut admin).await;
    let refusal = |claimed| Refusal {
        grpc: Code::Unauthenticated,
        code: "RequestTimeTooSkewed",
        http: "400",
        param: None,
        claimed,
    };
    assert_all_refused(&walked_past, &events, &refusal(ADMIN_KEY_ID));
    assert_all_refused(&walked_future, &events, &refusal(&user.access_key_id));
    assert_nothing_changed(&mut admin, "replayed walks").await;

    // Inside the window (14 minutes either way) the same kind of call is accepted.
    for offset in [-14 * 60, 14 * 60] {
        let path = "/kmsim.v1.KeyManagementService/ListKeys";
        let mut request = tonic::Request::new(pb::ListKeysRequest::default());
        sign_metadata(request.metadata_mut(), &admin_credentials, path, &date_from_now(offset), b"");
        let listed = server.kms().await.list_keys(request).await;
        assert!(listed.is_ok(), "a call signed {offset} s from now is inside the window: {listed:?}");
    }
    server.stop().await;
}

/// The codes authentication and authorisation refuse with.
const AUTH_CODES: [&str; 5] = [
    "InvalidAccessKeyId.NotFound",
    "SignatureNotMatch",
    "RequestTimeTooSkewed",
    "Forbidden.AccessKey",
    "Forbidden.NoPermission",
];

#[tokio::test]
async fn the_admin_signature_gets_every_rpc_past_authentication_and_is_recorded_as_the_root_account() {
    let (server, mut admin, _) = auth_server().await;
    let admin_credentials = admin_credentials();
    let walked =
        walk(&server.channel().await, "admin", |path| signed_headers(&admin_credentials, path, &date_from_now(0)))
            .await;
    let events = audit_events_as(&mut admin).await;
    let mut answered = 0;
    for call in &walked {
        if let Err(status) = &call.answer {
            let code = error_code(status);
            assert!(!AUTH_CODES.contains(&code.as_str()), "{}: the admin was refused: {status:?}", call.path);
            assert!(
                !status.message().contains("x-kms-"),
                "{}: the admin's signature was refused: {status:?}",
                call.path
            );
            assert_ne!(status.code(), Code::Unimplemented, "{}", call.path);
            assert_ne!(status.code(), Code::Internal, "{}", call.path);
        } else {
            answered += 1;
        }
        let identity = only_record(&events, &call.request_id).user_identity.clone().unwrap();
        assert_eq!(
            (identity.r#type.as_str(), identity.user_name.as_str(), identity.principal_id.as_str()),
            ("root-account", "root", ACCOUNT),
            "{}",
            call.path
        );
        assert_eq!(identity.access_key_id, ADMIN_KEY_ID, "{}", call.path);
    }
    assert!(answered >= 20, "only {answered} admin calls with empty messages succeeded");

    // And through the signing layer, with real messages.
    let key = admin.kms.create_key(pb::CreateKeyRequest::default()).await.expect("admin creates a key").into_inner();
    let key_id = key.key_metadata.unwrap().key_id;
    let blob = admin
        .kms
        .encrypt(pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"admin data".to_vec(), ..Default::default() })
        .await
        .expect("admin encrypts")
        .into_inner()
        .ciphertext_blob;
    let plain = admin.kms.decrypt(decrypt_request(&blob)).await.expect("admin decrypts").into_inner().plaintext;
    assert_eq!(plain, b"admin data");
    advance_days_as(&mut admin, 1).await;
    let me = admin.access.get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (me.identity_type.as_str(), me.user_name.as_str(), me.access_key_id.as_str(), me.authenticated_by.as_str()),
        ("root-account", "root", ADMIN_KEY_ID, "signature")
    );
    assert_eq!(me.arn, format!("acs:ram::{ACCOUNT}:root"));
    server.stop().await;
}

#[tokio::test]
async fn a_ram_user_without_policies_is_refused_every_rpc_but_get_caller_identity() {
    let (server, mut admin, user) = auth_server().await;
    let walked = walk(&server.channel().await, "nopolicy", |path| signed_headers(&user, path, &date_from_now(0))).await;
    let events = audit_events_as(&mut admin).await;
    let users = admin.access.list_users(pb::ListUsersRequest {}).await.unwrap().into_inner().users;
    let user_id = users[0].user_id.clone();
    assert_eq!(user_id.len(), 16, "{user_id}");
    assert!(user_id.bytes().all(|b| b.is_ascii_digit()), "{user_id}");
    let (identity_calls, refused): (Vec<&Walked>, Vec<&Walked>) =
        walked.iter().partition(|c| c.method == "GetCallerIdentity");
    assert_eq!(identity_calls.len(), 1);
    assert!(
        identity_calls[0].answer.is_ok(),
        "GetCallerIdentity is open to every caller: {:?}",
        identity_calls[0].answer
    );
    for call in refused {
        let status =
            call.answer.as_ref().err().unwrap_or_else(|| panic!("{}: a user without policies got in", call.path));
        assert_error(status, Code::PermissionDenied, "Forbidden.NoPermission", "403", None, &call.path);
        let record = only_record(&events, &call.request_id);
        assert_eq!(record.error_code, "Forbidden.NoPermission", "{}", call.path);
        let identity = record.user_identity.clone().unwrap();
        assert_eq!(
            (identity.r#type.as_str(), identity.user_name.as_str(), identity.principal_id.as_str()),
            ("ram-user", "walker", user_id.as_str()),
            "{}",
            call.path
        );
        assert_eq!(identity.access_key_id, user.access_key_id, "{}", call.path);
    }
    assert_nothing_changed(&mut admin, "a walk without permissions").await;
    server.stop().await;
}

#[tokio::test]
async fn missing_or_malformed_signature_headers_and_tampered_calls_are_refused() {
    let (server, mut admin, _) = auth_server().await;
    let credentials = admin_credentials();
    let mut kms = server.kms().await;
    let key_id = create_key_as(&mut admin).await.key_id;
    let path = "/kmsim.v1.KeyManagementService/Encrypt";
    let message = pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"pay 10".to_vec(), ..Default::default() };
    let now = date_from_now(0);

    let mut no_date = tonic::Request::new(message.clone());
    sign_metadata(no_date.metadata_mut(), &credentials, path, &now, &message.encode_to_vec());
    no_date.metadata_mut().remove(kmsim::frontends::grpc::headers::DATE);
    assert_missing(&kms.encrypt(no_date).await.unwrap_err(), "x-kms-date", "no date");

    let mut no_signature = tonic::Request::new(message.clone());
    sign_metadata(no_signature.metadata_mut(), &credentials, path, &now, &message.encode_to_vec());
    no_signature.metadata_mut().remove(kmsim::frontends::grpc::headers::SIGNATURE);
    assert_missing(&kms.encrypt(no_signature).await.unwrap_err(), "x-kms-signature", "no signature");

    let mut bad_date = tonic::Request::new(message.clone());
    sign_metadata(bad_date.metadata_mut(), &credentials, path, "yesterday", &message.encode_to_vec());
    assert_invalid(&kms.encrypt(bad_date).await.unwrap_err(), "x-kms-date", "a date that is not RFC 3339");

    // Signed for one message, sent with another: the signature covers the message.
    let tampered = pb::EncryptRequest { plaintext: b"pay 10000".to_vec(), ..message.clone() };
    let mut request = tonic::Request::new(tampered);
    sign_metadata(request.metadata_mut(), &credentials, path, &now, &message.encode_to_vec());
    let status = kms.encrypt(request).await.unwrap_err();
    assert_error(&status, Code::Unauthenticated, "SignatureNotMatch", "401", None, "a tampered message");

    // Signed for Encrypt, sent to Decrypt: the signature covers the method.
    let decrypt = pb::DecryptRequest::default();
    let mut request = tonic::Request::new(decrypt.clone());
    sign_metadata(request.metadata_mut(), &credentials, path, &now, &decrypt.encode_to_vec());
    let status = kms.decrypt(request).await.unwrap_err();
    assert_error(&status, Code::Unauthenticated, "SignatureNotMatch", "401", None, "a signature for another method");

    // The untampered original goes through.
    let mut request = tonic::Request::new(message.clone());
    sign_metadata(request.metadata_mut(), &credentials, path, &now, &message.encode_to_vec());
    assert!(kms.encrypt(request).await.is_ok(), "the correctly signed call");
    server.stop().await;
}

#[tokio::test]
async fn signed_calls_with_an_encryption_context_verify() {
    // Map fields have no defined order on the wire: the client and the server
    // may encode the same encryption context in different orders.
    let (server, mut admin, _) = auth_server().await;
    let key_id = create_key_as(&mut admin).await.key_id;
    let context: HashMap<String, String> = (0..8).map(|i| (format!("field-{i}"), format!("value-{i}"))).collect();
    let mut refused = Vec::new();
    for attempt in 0..16 {
        // A fresh map each time: Rust's HashMap iterates each instance in its own order.
        let context: HashMap<String, String> = context.clone().into_iter().collect();
        let request = pb::EncryptRequest {
            key_id: key_id.clone(),
            plaintext: b"contextual".to_vec(),
            encryption_context: context.clone(),
        };
        match admin.kms.encrypt(request).await {
            Ok(encrypted) => {
                let blob = encrypted.into_inner().ciphertext_blob;
                let decrypt = pb::DecryptRequest { ciphertext_blob: blob, encryption_context: context };
                if let Err(status) = admin.kms.decrypt(decrypt).await {
                    refused.push(format!("decrypt {attempt}: {}", error_code(&status)));
                }
            }
            Err(status) => refused.push(format!("encrypt {attempt}: {}", error_code(&status))),
        }
    }
    assert!(refused.is_empty(), "correctly signed calls with an 8-entry encryption context were refused: {refused:?}");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------

fn key_arn(key_id: &str) -> String {
    format!("acs:kms:{REGION}:{ACCOUNT}:key/{key_id}")
}

fn user_arn(user_name: &str) -> String {
    format!("acs:ram::{ACCOUNT}:user/{user_name}")
}

async fn create_key_as(clients: &mut SignedClients) -> pb::KeyMetadata {
    let created = clients.kms.create_key(pb::CreateKeyRequest::default()).await.expect("create key");
    let meta = created.into_inner().key_metadata.unwrap();
    assert_eq!(meta.arn, key_arn(&meta.key_id));
    meta
}

/// A RAM user with a fresh AccessKey and the given identity policies (created and attached).
async fn user_with_policies(
    admin: &mut SignedClients,
    server: &TestServer,
    name: &str,
    policies: &[(&str, String)],
) -> SignedClients {
    let credentials = create_access_key_as(admin, name).await;
    for (policy_name, document) in policies {
        create_policy_as(admin, policy_name, document).await;
        attach_user_policy_as(admin, policy_name, name).await;
    }
    SignedClients::of(server, &credentials).await
}

async fn encrypt_as(kms: &mut SignedKms, key_id: &str) -> Result<Vec<u8>, tonic::Status> {
    let request = pb::EncryptRequest { key_id: key_id.to_owned(), plaintext: b"secret".to_vec(), ..Default::default() };
    kms.encrypt(request).await.map(|r| r.into_inner().ciphertext_blob)
}

async fn describe_as(kms: &mut SignedKms, key_id: &str) -> Result<pb::KeyMetadata, tonic::Status> {
    kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.to_owned() })
        .await
        .map(|r| r.into_inner().key_metadata.unwrap())
}

#[track_caller]
fn assert_denied<T: std::fmt::Debug>(result: Result<T, tonic::Status>, what: &str) {
    let status = result.expect_err(what);
    assert_error(&status, Code::PermissionDenied, "Forbidden.NoPermission", "403", None, what);
}

#[track_caller]
fn assert_allowed<T: std::fmt::Debug>(result: Result<T, tonic::Status>, what: &str) -> T {
    result.unwrap_or_else(|status| panic!("{what}: refused: {status:?}"))
}

#[tokio::test]
async fn identity_policies_allow_only_the_named_actions_on_the_named_keys() {
    let (server, mut admin, _) = auth_server().await;
    let (a, b) = (create_key_as(&mut admin).await.key_id, create_key_as(&mut admin).await.key_id);
    let policy = identity_policy("Allow", &["kms:Encrypt", "kms:Decrypt"], &[&key_arn(&a)]);
    let mut alice = user_with_policies(&mut admin, &server, "alice", &[("alice-crypto-a", policy)]).await;

    let blob = assert_allowed(encrypt_as(&mut alice.kms, &a).await, "Encrypt on A");
    let plain = assert_allowed(alice.kms.decrypt(decrypt_request(&blob)).await, "Decrypt on A").into_inner().plaintext;
    assert_eq!(plain, b"secret");
    assert_denied(encrypt_as(&mut alice.kms, &b).await, "Encrypt on B, not named");
    assert_denied(describe_as(&mut alice.kms, &a).await, "DescribeKey on A, an action not named");
    assert_denied(alice.kms.list_keys(pb::ListKeysRequest::default()).await, "ListKeys, not named");
    // A blob of key B is judged on key B, whatever the request names.
    let blob_b = encrypt_as(&mut admin.kms, &b).await.unwrap();
    assert_denied(alice.kms.decrypt(decrypt_request(&blob_b)).await, "Decrypt of a blob of B");
    // A key that does not exist is no way to learn anything.
    assert_denied(describe_as(&mut alice.kms, "00000000-0000-0000-0000-000000000000").await, "DescribeKey on nothing");
    server.stop().await;
}

#[tokio::test]
async fn an_explicit_deny_wins_over_any_allow() {
    let (server, mut admin, _) = auth_server().await;
    let (a, b) = (create_key_as(&mut admin).await.key_id, create_key_as(&mut admin).await.key_id);
    // The deny is attached first and the allow second, and the other way round: order does not matter.
    let deny_b = identity_policy("Deny", &["kms:*"], &[&key_arn(&b)]);
    let allow_all = identity_policy("Allow", &["kms:*"], &["*"]);
    let mut alice =
        user_with_policies(&mut admin, &server, "alice", &[("deny-b", deny_b), ("allow-all", allow_all)]).await;
    assert_allowed(encrypt_as(&mut alice.kms, &a).await, "Encrypt on A");
    assert_allowed(describe_as(&mut alice.kms, &a).await, "DescribeKey on A");
    assert_denied(encrypt_as(&mut alice.kms, &b).await, "Encrypt on B, denied explicitly");
    assert_denied(describe_as(&mut alice.kms, &b).await, "DescribeKey on B, denied explicitly");

    // A deny of one action everywhere, next to an allow of everything.
    let deny_decrypt = identity_policy("Deny", &["kms:Decrypt"], &["*"]);
    let mut bob = SignedClients::of(&server, &create_access_key_as(&mut admin, "bob").await).await;
    attach_user_policy_as(&mut admin, "allow-all", "bob").await;
    create_policy_as(&mut admin, "deny-decrypt", &deny_decrypt).await;
    attach_user_policy_as(&mut admin, "deny-decrypt", "bob").await;
    let blob = assert_allowed(encrypt_as(&mut bob.kms, &b).await, "bob encrypts on B");
    assert_denied(bob.kms.decrypt(decrypt_request(&blob)).await, "bob may not decrypt anything");
    server.stop().await;
}

#[tokio::test]
async fn wildcards_match_actions_and_resources() {
    let (server, mut admin, _) = auth_server().await;
    let a = create_key_as(&mut admin).await.key_id;
    let one_char_wildcard = format!("acs:kms:*:*:key/{}?", &a[..a.len() - 1]);
    let policies = [
        ("generate", identity_policy("Allow", &["kms:Generate*"], &["acs:kms:cn-*:*:key/*"])),
        // Actions ignore case.
        ("describe", identity_policy("Allow", &["KMS:describe*"], &[&format!("acs:kms:{REGION}:{ACCOUNT}:key/*")])),
        ("encrypt-one", identity_policy("Allow", &["kms:Encrypt"], &[&one_char_wildcard])),
        // ListKeys names no key: it is judged on the region's everything.
        ("list-here", identity_policy("Allow", &["kms:ListKeys"], &[&format!("acs:kms:{REGION}:{ACCOUNT}:*")])),
    ];
    let mut alice = user_with_policies(&mut admin, &server, "alice", &policies).await;
    let data_key = pb::GenerateDataKeyRequest { key_id: a.clone(), ..Default::default() };
    assert_allowed(alice.kms.generate_data_key(data_key).await, "kms:Generate* allows GenerateDataKey");
    let without = pb::GenerateDataKeyRequest { key_id: a.clone(), ..Default::default() };
    assert_allowed(alice.kms.generate_data_key_without_plaintext(without).await, "… and the one without plaintext");
    assert_allowed(describe_as(&mut alice.kms, &a).await, "KMS:describe* allows DescribeKey");
    assert_allowed(encrypt_as(&mut alice.kms, &a).await, "? matches the last character of the key id");
    assert_denied(alice.kms.decrypt(decrypt_request(&encrypt_as(&mut admin.kms, &a).await.unwrap())).await, "Decrypt");
    assert_allowed(alice.kms.list_keys(pb::ListKeysRequest::default()).await, "ListKeys in cn-hangzhou");
    let elsewhere = in_region("cn-shanghai", pb::ListKeysRequest::default());
    assert_denied(alice.kms.list_keys(elsewhere).await, "ListKeys in cn-shanghai is another resource");

    // A key made in another region does not match the cn-hangzhou resource patterns.
    let far = admin.kms.create_key(in_region("ap-southeast-1", pb::CreateKeyRequest::default())).await.unwrap();
    let far = far.into_inner().key_metadata.unwrap().key_id;
    let far_data_key =
        in_region("ap-southeast-1", pb::GenerateDataKeyRequest { key_id: far.clone(), ..Default::default() });
    assert_denied(alice.kms.generate_data_key(far_data_key).await, "acs:kms:cn-* does not match ap-southeast-1");
    let far_describe = in_region("ap-southeast-1", pb::DescribeKeyRequest { key_id: far });
    assert_denied(alice.kms.describe_key(far_describe).await, "the describe policy names cn-hangzhou");
    server.stop().await;
}

fn key_policy(statements: serde_json::Value) -> String {
    serde_json::json!({"Version": "1", "Statement": statements}).to_string()
}

#[tokio::test]
async fn a_key_policy_grants_a_user_without_identity_policies_on_that_key_only() {
    let (server, mut admin, _) = auth_server().await;
    let (c, other) = (create_key_as(&mut admin).await.key_id, create_key_as(&mut admin).await.key_id);
    let default = admin.kms.get_key_policy(pb::GetKeyPolicyRequest { key_id: c.clone(), ..Default::default() }).await;
    let default = default.unwrap().into_inner().policy;
    assert!(default.contains(&format!("acs:ram::{ACCOUNT}:root")), "the default key policy names the root: {default}");

    let document = key_policy(serde_json::json!([{
        "Effect": "Allow",
        "Principal": {"RAM": [user_arn("bob")]},
        "Action": ["kms:Encrypt", "kms:Decrypt"],
        "Resource": ["*"],
    }]));
    let set = pb::SetKeyPolicyRequest { key_id: c.clone(), policy_name: "default".into(), policy: document.clone() };
    admin.kms.set_key_policy(set).await.expect("set key policy");
    let read = admin.kms.get_key_policy(pb::GetKeyPolicyRequest { key_id: c.clone(), ..Default::default() }).await;
    assert_eq!(read.unwrap().into_inner().policy, document);

    let mut bob = SignedClients::of(&server, &create_access_key_as(&mut admin, "bob").await).await;
    let mut carol = SignedClients::of(&server, &create_access_key_as(&mut admin, "carol").await).await;
    let blob = assert_allowed(encrypt_as(&mut bob.kms, &c).await, "the key policy lets bob encrypt");
    assert_allowed(bob.kms.decrypt(decrypt_request(&blob)).await, "… and decrypt");
    assert_denied(describe_as(&mut bob.kms, &c).await, "an action the key policy does not grant");
    assert_denied(encrypt_as(&mut bob.kms, &other).await, "another key");
    assert_denied(encrypt_as(&mut carol.kms, &c).await, "a user the key policy does not name");
    assert_denied(
        bob.kms.get_key_policy(pb::GetKeyPolicyRequest { key_id: c.clone(), ..Default::default() }).await,
        "GetKeyPolicy",
    );

    // Key policies must name principals; identity policies must not.
    let no_principal = identity_policy("Allow", &["kms:*"], &["*"]);
    let refused = admin
        .kms
        .set_key_policy(pb::SetKeyPolicyRequest { key_id: c.clone(), policy_name: String::new(), policy: no_principal })
        .await;
    assert_invalid(&refused.unwrap_err(), "Policy", "a key policy without Principal");
    let with_principal = key_policy(serde_json::json!([{
        "Effect": "Allow", "Principal": {"RAM": ["*"]}, "Action": "kms:*", "Resource": "*",
    }]));
    let refused = admin
        .access
        .create_policy(pb::CreatePolicyRequest {
            policy_name: "p".into(),
            policy_document: with_principal,
            description: String::new(),
        })
        .await;
    assert_invalid(&refused.unwrap_err(), "PolicyDocument", "an identity policy with a Principal");
    server.stop().await;
}

#[tokio::test]
async fn a_key_policy_deny_beats_an_identity_allow() {
    let (server, mut admin, _) = auth_server().await;
    let (a, d) = (create_key_as(&mut admin).await.key_id, create_key_as(&mut admin).await.key_id);
    let mut alice = user_with_policies(
        &mut admin,
        &server,
        "alice",
        &[("allow-all", identity_policy("Allow", &["kms:*"], &["*"]))],
    )
    .await;
    let document = key_policy(serde_json::json!([
        {"Effect": "Allow", "Principal": {"RAM": [format!("acs:ram::{ACCOUNT}:root")]}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"RAM": [user_arn("alice")]}, "Action": "kms:Decrypt", "Resource": "*"},
    ]));
    let set = pb::SetKeyPolicyRequest { key_id: d.clone(), policy_name: String::new(), policy: document };
    admin.kms.set_key_policy(set).await.expect("set key policy");

    let blob_d =
        assert_allowed(encrypt_as(&mut alice.kms, &d).await, "Encrypt on D: the identity allows, nothing denies");
    assert_denied(alice.kms.decrypt(decrypt_request(&blob_d)).await, "Decrypt on D: the key policy denies alice");
    let blob_a = assert_allowed(encrypt_as(&mut alice.kms, &a).await, "Encrypt on A");
    assert_allowed(alice.kms.decrypt(decrypt_request(&blob_a)).await, "Decrypt on A, which has no such policy");
    // The admin (the root) is not subject to policies at all.
    assert_allowed(admin.kms.decrypt(decrypt_request(&blob_d)).await, "the admin decrypts on D");
    server.stop().await;
}

#[tokio::test]
async fn reencrypt_needs_permission_on_both_keys() {
    let (server, mut admin, _) = auth_server().await;
    let (a, b) = (create_key_as(&mut admin).await.key_id, create_key_as(&mut admin).await.key_id);
    let policy = identity_policy("Allow", &["kms:ReEncrypt", "kms:Encrypt"], &[&key_arn(&a)]);
    let mut alice = user_with_policies(&mut admin, &server, "alice", &[("reencrypt-a", policy)]).await;
    let blob = encrypt_as(&mut admin.kms, &a).await.unwrap();
    let request = |to: &str| pb::ReEncryptRequest {
        ciphertext_blob: blob.clone(),
        destination_key_id: to.to_owned(),
        ..Default::default()
    };
    assert_denied(alice.kms.re_encrypt(request(&b)).await, "ReEncrypt from A to B with A only");
    assert_allowed(alice.kms.re_encrypt(request(&a)).await, "ReEncrypt from A to A");
    let blob_b = encrypt_as(&mut admin.kms, &b).await.unwrap();
    let from_b = pb::ReEncryptRequest { ciphertext_blob: blob_b, destination_key_id: a.clone(), ..Default::default() };
    assert_denied(alice.kms.re_encrypt(from_b.clone()).await, "ReEncrypt from B to A with A only");

    let both = identity_policy("Allow", &["kms:ReEncrypt"], &[&key_arn(&b)]);
    create_policy_as(&mut admin, "reencrypt-b", &both).await;
    attach_user_policy_as(&mut admin, "reencrypt-b", "alice").await;
    assert_allowed(alice.kms.re_encrypt(request(&b)).await, "ReEncrypt from A to B with both");
    assert_allowed(alice.kms.re_encrypt(from_b).await, "ReEncrypt from B to A with both");
    server.stop().await;
}

async fn alias_names(admin: &mut SignedClients) -> Vec<String> {
    let request = pb::ListAliasesRequest { page_number: 1, page_size: 100 };
    let listed = admin.kms.list_aliases(request).await.unwrap().into_inner();
    listed.aliases.into_iter().map(|a| a.alias_name).collect()
}

/// docs/access.md: alias management "also needs the alias, `acs:kms:{region}:{account}:alias/NAME`".
#[tokio::test]
async fn alias_management_is_authorised_on_the_documented_alias_arn() {
    let (server, mut admin, _) = auth_server().await;
    let a = create_key_as(&mut admin).await.key_id;
    let app_aliases = format!("acs:kms:{REGION}:{ACCOUNT}:alias/app-*");
    let manage =
        identity_policy("Allow", &["kms:CreateAlias", "kms:DeleteAlias"], &[&app_aliases, "acs:kms:*:*:key/*"]);
    let mut alice = user_with_policies(&mut admin, &server, "alice", &[("app-aliases", manage)]).await;
    let create = |name: &str| pb::CreateAliasRequest { alias_name: name.to_owned(), key_id: a.clone() };
    assert_allowed(alice.kms.create_alias(create("alias/app-orders")).await, "CreateAlias alias/app-orders");
    assert_denied(alice.kms.create_alias(create("alias/payroll")).await, "CreateAlias alias/payroll");
    assert_eq!(alias_names(&mut admin).await, ["alias/app-orders"], "the refused alias was not made");
    let delete = pb::DeleteAliasRequest { alias_name: "alias/app-orders".into() };
    assert_allowed(alice.kms.delete_alias(delete).await, "DeleteAlias alias/app-orders");
    assert!(alias_names(&mut admin).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn alias_management_needs_more_than_the_key_and_using_an_alias_needs_only_the_key() {
    let (server, mut admin, _) = auth_server().await;
    let a = create_key_as(&mut admin).await.key_id;
    let create = |name: &str| pb::CreateAliasRequest { alias_name: name.to_owned(), key_id: a.clone() };
    // Permission on the key alone does not let anyone name aliases.
    let key_only = identity_policy("Allow", &["kms:CreateAlias", "kms:DeleteAlias"], &["acs:kms:*:*:key/*"]);
    let mut bob = user_with_policies(&mut admin, &server, "bob", &[("key-only", key_only)]).await;
    assert_denied(bob.kms.create_alias(create("alias/app-billing")).await, "CreateAlias with the key only");
    assert!(alias_names(&mut admin).await.is_empty(), "the refused alias was not made");
    admin.kms.create_alias(create("alias/app-orders")).await.expect("the admin makes an alias");
    let delete = pb::DeleteAliasRequest { alias_name: "alias/app-orders".into() };
    assert_denied(bob.kms.delete_alias(delete.clone()).await, "DeleteAlias with the key only");
    assert_eq!(alias_names(&mut admin).await, ["alias/app-orders"], "the refused DeleteAlias deleted nothing");

    // Using a key through its alias is judged on the key.
    let encrypt = identity_policy("Allow", &["kms:Encrypt"], &[&key_arn(&a)]);
    let mut carol = user_with_policies(&mut admin, &server, "carol", &[("encrypt-a", encrypt)]).await;
    assert_allowed(encrypt_as(&mut carol.kms, "alias/app-orders").await, "Encrypt through the alias of an allowed key");
    let manage_all = identity_policy("Allow", &["kms:*Alias"], &["*"]);
    let mut dave = user_with_policies(&mut admin, &server, "dave", &[("manage-all", manage_all)]).await;
    assert_denied(encrypt_as(&mut dave.kms, "alias/app-orders").await, "alias management is not Encrypt");
    assert_allowed(dave.kms.delete_alias(delete).await, "DeleteAlias with kms:*Alias on everything");
    assert!(alias_names(&mut admin).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_refusal_is_audited_with_the_callers_identity_and_the_key_and_a_denied_write_changes_nothing() {
    let (server, mut admin, _) = auth_server().await;
    let a = create_key_as(&mut admin).await;
    let policy = identity_policy("Allow", &["kms:Encrypt"], &[&key_arn(&a.key_id)]);
    let mut alice = user_with_policies(&mut admin, &server, "alice", &[("encrypt-only", policy)]).await;
    let alice_key = alice.credentials.access_key_id.clone();
    let users = admin.access.list_users(pb::ListUsersRequest {}).await.unwrap().into_inner().users;
    let alice_user = users.iter().find(|u| u.user_name == "alice").unwrap();
    assert_eq!(alice_user.arn, user_arn("alice"));
    assert_eq!(alice_user.policy_names, ["encrypt-only"]);

    let encrypt = pb::EncryptRequest { key_id: a.key_id.clone(), plaintext: b"ok".to_vec(), ..Default::default() };
    assert_allowed(alice.kms.encrypt(with_request_id("alice-encrypt", encrypt)).await, "Encrypt");
    let disable = pb::DisableKeyRequest { key_id: a.key_id.clone() };
    assert_denied(alice.kms.disable_key(with_request_id("alice-disable", disable)).await, "DisableKey");
    let schedule = pb::ScheduleKeyDeletionRequest { key_id: a.key_id.clone(), pending_window_in_days: 7 };
    assert_denied(
        alice.kms.schedule_key_deletion(with_request_id("alice-schedule", schedule)).await,
        "ScheduleKeyDeletion",
    );
    let describe = pb::UpdateKeyDescriptionRequest { key_id: a.key_id.clone(), description: "mine now".into() };
    assert_denied(alice.kms.update_key_description(describe).await, "UpdateKeyDescription");
    let tag = pb::Tag { tag_key: "owner".into(), tag_value: "alice".into() };
    assert_denied(
        alice.kms.tag_resource(pb::TagResourceRequest { key_id: a.key_id.clone(), tags: vec![tag] }).await,
        "TagResource",
    );
    let grab = key_policy(
        serde_json::json!([{"Effect": "Allow", "Principal": {"RAM": [user_arn("alice")]}, "Action": "kms:*", "Resource": "*"}]),
    );
    let set = pb::SetKeyPolicyRequest { key_id: a.key_id.clone(), policy_name: String::new(), policy: grab };
    assert_denied(alice.kms.set_key_policy(set).await, "SetKeyPolicy");
    assert_denied(
        alice.kms.create_key(with_request_id("alice-create", pb::CreateKeyRequest::default())).await,
        "CreateKey",
    );

    // Nothing changed.
    let after = describe_as(&mut admin.kms, &a.key_id).await.unwrap();
    assert_eq!(after.key_state, "Enabled");
    assert_eq!(after.delete_date, "");
    assert_eq!(after.description, a.description);
    let tags = admin.kms.list_resource_tags(pb::ListResourceTagsRequest { key_id: a.key_id.clone() }).await.unwrap();
    assert!(tags.into_inner().tags.is_empty(), "a denied TagResource tagged the key");
    let policy =
        admin.kms.get_key_policy(pb::GetKeyPolicyRequest { key_id: a.key_id.clone(), ..Default::default() }).await;
    assert!(!policy.unwrap().into_inner().policy.contains("alice"), "a denied SetKeyPolicy took effect");
    let keys = admin.kms.list_keys(pb::ListKeysRequest::default()).await.unwrap().into_inner();
    assert_eq!(keys.total_count, 1, "a denied CreateKey made a key");
    assert!(system_events_as(&mut admin, "Key:*").await.is_empty(), "a denied ScheduleKeyDeletion raised an event");
    assert_allowed(encrypt_as(&mut alice.kms, &a.key_id).await, "the key still works");

    let events = audit_events_as(&mut admin).await;
    let expected_identity = pb::UserIdentity {
        r#type: "ram-user".into(),
        principal_id: alice_user.user_id.clone(),
        account_id: ACCOUNT.into(),
        access_key_id: alice_key.clone(),
        user_name: "alice".into(),
    };
    let allowed = only_record(&events, "alice-encrypt");
    assert_eq!((allowed.outcome.as_str(), allowed.key_id.as_str()), ("Success", a.key_id.as_str()));
    assert_eq!(allowed.user_identity.as_ref(), Some(&expected_identity));
    assert_eq!(allowed.access_key_id, alice_key);
    for (request_id, event_name) in [("alice-disable", "DisableKey"), ("alice-schedule", "ScheduleKeyDeletion")] {
        let record = only_record(&events, request_id);
        assert_eq!(record.event_name, event_name);
        assert_eq!(record.outcome, "Failure");
        assert_eq!((record.error_code.as_str(), record.http_status), ("Forbidden.NoPermission", 403), "{request_id}");
        assert_eq!(record.key_id, a.key_id, "{request_id}: the record names the key");
        assert_eq!(record.user_identity.as_ref(), Some(&expected_identity), "{request_id}");
        assert_eq!(record.access_key_id, alice_key, "{request_id}");
    }
    let created = only_record(&events, "alice-create");
    assert_eq!(created.error_code, "Forbidden.NoPermission");
    assert_eq!(created.user_identity.as_ref(), Some(&expected_identity));
    server.stop().await;
}

#[tokio::test]
async fn policy_changes_take_effect_from_the_next_call() {
    let (server, mut admin, _) = auth_server().await;
    let a = create_key_as(&mut admin).await.key_id;
    let mut alice =
        user_with_policies(&mut admin, &server, "alice", &[("p", identity_policy("Allow", &["kms:Encrypt"], &["*"]))])
            .await;
    assert_allowed(encrypt_as(&mut alice.kms, &a).await, "Encrypt allowed");
    assert_denied(describe_as(&mut alice.kms, &a).await, "DescribeKey not yet");

    let update = pb::UpdatePolicyRequest {
        policy_name: "p".into(),
        policy_document: identity_policy("Allow", &["kms:DescribeKey"], &["*"]),
    };
    admin.access.update_policy(update).await.expect("update policy");
    assert_allowed(describe_as(&mut alice.kms, &a).await, "DescribeKey after the update");
    assert_denied(encrypt_as(&mut alice.kms, &a).await, "Encrypt after the update");

    let in_use = admin.access.delete_policy(pb::DeletePolicyRequest { policy_name: "p".into() }).await.unwrap_err();
    assert_error(
        &in_use,
        Code::FailedPrecondition,
        "Rejected.ResourceInUse",
        "409",
        None,
        "deleting an attached policy",
    );
    let got = admin.access.get_policy(pb::GetPolicyRequest { policy_name: "p".into() }).await.unwrap().into_inner();
    assert_eq!(got.policy.unwrap().attachments, ["User/alice"]);

    let detach = pb::DetachPolicyRequest {
        policy_name: "p".into(),
        principal_type: "User".into(),
        principal_name: "alice".into(),
    };
    admin.access.detach_policy(detach).await.expect("detach");
    assert_denied(describe_as(&mut alice.kms, &a).await, "DescribeKey after the detach");
    admin
        .access
        .delete_policy(pb::DeletePolicyRequest { policy_name: "p".into() })
        .await
        .expect("delete a detached policy");
    server.stop().await;
}

#[tokio::test]
async fn each_service_has_its_own_action_namespace_and_only_the_admin_manages_access_and_simulation() {
    let (server, mut admin, _) = auth_server().await;
    let policies = [
        ("kms-all", identity_policy("Allow", &["kms:*"], &["*"])),
        ("trail-list", identity_policy("Allow", &["actiontrail:ListAuditEvents"], &["*"])),
        ("cms-list", identity_policy("Allow", &["cms:List*"], &["*"])),
    ];
    let mut alice = user_with_policies(&mut admin, &server, "alice", &policies).await;
    assert_allowed(
        alice.audit.list_audit_events(pb::ListAuditEventsRequest::default()).await,
        "actiontrail:ListAuditEvents",
    );
    assert_denied(alice.audit.query_audit_events(pb::QueryAuditEventsRequest::default()).await, "QueryAuditEvents");
    assert_allowed(alice.events.list_system_events(pb::ListSystemEventsRequest::default()).await, "cms:List*");
    let subscriptions = alice.events.list_event_subscriptions(pb::ListEventSubscriptionsRequest::default()).await;
    assert_allowed(subscriptions, "cms:List* covers ListEventSubscriptions");
    let subscribe =
        pb::CreateEventSubscriptionRequest { webhook_url: "http://127.0.0.1:9/x".into(), ..Default::default() };
    assert_denied(alice.events.create_event_subscription(subscribe).await, "cms:CreateEventSubscription");
    assert_allowed(
        alice.instances.list_kms_instances(pb::ListKmsInstancesRequest::default()).await,
        "kms:* covers instances",
    );

    // kms:* is not actiontrail:* or cms:*.
    let mut bob = user_with_policies(&mut admin, &server, "bob", &[]).await;
    attach_user_policy_as(&mut admin, "kms-all", "bob").await;
    assert_denied(
        bob.audit.list_audit_events(pb::ListAuditEventsRequest::default()).await,
        "kms:* and ListAuditEvents",
    );
    assert_denied(
        bob.events.list_system_events(pb::ListSystemEventsRequest::default()).await,
        "kms:* and ListSystemEvents",
    );

    // Even a policy allowing every action everywhere leaves the simulation and access services to the admin.
    let everything = identity_policy("Allow", &["*"], &["*"]);
    let mut root_like = user_with_policies(&mut admin, &server, "root-like", &[("everything", everything)]).await;
    let advance = pb::AdvanceClockRequest { advance: Some(prost_types::Duration { seconds: 60, nanos: 0 }) };
    assert_denied(root_like.simulation.advance_clock(advance).await, "AdvanceClock by a RAM user");
    assert_denied(root_like.simulation.get_clock(pb::GetClockRequest {}).await, "GetClock by a RAM user");
    let create = pb::CreateAccessKeyRequest { user_name: "root-like".into() };
    assert_denied(root_like.access.create_access_key(create).await, "CreateAccessKey by a RAM user");
    assert_denied(root_like.access.list_users(pb::ListUsersRequest {}).await, "ListUsers by a RAM user");
    let attach = pb::AttachPolicyRequest {
        policy_name: "everything".into(),
        principal_type: "User".into(),
        principal_name: "bob".into(),
    };
    assert_denied(root_like.access.attach_policy(attach).await, "AttachPolicy by a RAM user");
    assert_allowed(
        root_like.audit.list_audit_events(pb::ListAuditEventsRequest::default()).await,
        "* covers actiontrail",
    );

    let me = root_like.access.get_caller_identity(pb::GetCallerIdentityRequest {}).await.expect("GetCallerIdentity");
    let me = me.into_inner();
    assert_eq!(
        (me.identity_type.as_str(), me.user_name.as_str(), me.arn.as_str(), me.authenticated_by.as_str()),
        ("ram-user", "root-like", user_arn("root-like").as_str(), "signature")
    );
    assert_eq!(me.access_key_id, root_like.credentials.access_key_id);
    assert_eq!(me.account_id, ACCOUNT);
    let users = admin.access.list_users(pb::ListUsersRequest {}).await.unwrap().into_inner().users;
    let listed = users.iter().find(|u| u.user_name == "root-like").unwrap();
    assert_eq!(me.principal_id, listed.user_id);
    server.stop().await;
}

// ---------------------------------------------------------------------------
// AccessKeys
// ---------------------------------------------------------------------------

async fn set_access_key_status(admin: &mut SignedClients, access_key_id: &str, status: &str) {
    let request = pb::UpdateAccessKeyRequest { access_key_id: access_key_id.to_owned(), status: status.to_owned() };
    let updated = admin.access.update_access_key(request).await.expect("update access key").into_inner();
    assert_eq!(updated.access_key.unwrap().status, status);
}

#[tokio::test]
async fn a_disabled_access_key_is_refused_from_the_next_call_on_and_works_again_when_enabled() {
    let (server, mut admin, _) = auth_server().await;
    let a = create_key_as(&mut admin).await.key_id;
    let mut alice = user_with_policies(
        &mut admin,
        &server,
        "alice",
        &[("enc", identity_policy("Allow", &["kms:Encrypt"], &["*"]))],
    )
    .await;
    let first = alice.credentials.access_key_id.clone();
    let second = create_access_key_as(&mut admin, "alice").await;
    let mut alice_second = SignedClients::of(&server, &second).await;
    let third = admin.access.create_access_key(pb::CreateAccessKeyRequest { user_name: "alice".into() }).await;
    assert_error(
        &third.unwrap_err(),
        Code::ResourceExhausted,
        "Rejected.LimitExceeded",
        "400",
        None,
        "a third AccessKey",
    );

    assert_allowed(encrypt_as(&mut alice.kms, &a).await, "while Active");
    set_access_key_status(&mut admin, &first, "Inactive").await;
    let request = pb::EncryptRequest { key_id: a.clone(), plaintext: b"x".to_vec(), ..Default::default() };
    let status = alice.kms.encrypt(with_request_id("disabled-call", request)).await.unwrap_err();
    assert_error(&status, Code::PermissionDenied, "Forbidden.AccessKey", "403", None, "a disabled AccessKey");
    let status = alice.access.get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap_err();
    assert_error(&status, Code::PermissionDenied, "Forbidden.AccessKey", "403", None, "GetCallerIdentity, disabled");
    // The user's other key is not affected.
    assert_allowed(encrypt_as(&mut alice_second.kms, &a).await, "the user's other, active key");

    let listed = admin.access.list_access_keys(pb::ListAccessKeysRequest { user_name: "alice".into() }).await;
    let mut statuses: Vec<(String, String)> =
        listed.unwrap().into_inner().access_keys.into_iter().map(|k| (k.access_key_id, k.status)).collect();
    statuses.sort();
    let mut expected =
        vec![(first.clone(), "Inactive".to_owned()), (second.access_key_id.clone(), "Active".to_owned())];
    expected.sort();
    assert_eq!(statuses, expected);

    set_access_key_status(&mut admin, &first, "Active").await;
    assert_allowed(encrypt_as(&mut alice.kms, &a).await, "enabled again");

    // A deleted key is unknown.
    admin.access.delete_access_key(pb::DeleteAccessKeyRequest { access_key_id: first.clone() }).await.expect("delete");
    let status = encrypt_as(&mut alice.kms, &a).await.unwrap_err();
    assert_error(&status, Code::Unauthenticated, "InvalidAccessKeyId.NotFound", "404", None, "a deleted AccessKey");

    let events = audit_events_as(&mut admin).await;
    let refused = only_record(&events, "disabled-call");
    assert_eq!((refused.error_code.as_str(), refused.http_status), ("Forbidden.AccessKey", 403));
    assert_eq!(refused.access_key_id, first);
    assert_eq!(refused.user_identity.as_ref().unwrap().access_key_id, first);
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Application access points and ClientKeys
// ---------------------------------------------------------------------------

const AAP: &str = "orders-app";

fn aap_arn(name: &str) -> String {
    format!("acs:kms:{REGION}:{ACCOUNT}:aap/{name}")
}

/// A KMS instance, and an AAP for it with `policies`; returns the instance id.
async fn instance_and_aap(admin: &mut SignedClients, name: &str, policies: &[(&str, String)]) -> String {
    let instance = pb::CreateKmsInstanceRequest { spec: 1000, ..Default::default() };
    let instance = admin.instances.create_kms_instance(instance).await.expect("create instance").into_inner();
    let instance_id = instance.kms_instance.unwrap().kms_instance_id;
    for (policy_name, document) in policies {
        create_policy_as(admin, policy_name, document).await;
    }
    let request = pb::CreateApplicationAccessPointRequest {
        name: name.to_owned(),
        description: "the orders service".into(),
        kms_instance_id: instance_id.clone(),
        policy_names: policies.iter().map(|(n, _)| (*n).to_owned()).collect(),
        authentication_method: String::new(),
    };
    let aap = admin.access.create_application_access_point(request).await.expect("create AAP").into_inner();
    let aap = aap.application_access_point.unwrap();
    assert_eq!(aap.arn, aap_arn(name));
    assert_eq!(aap.kms_instance_id, instance_id);
    instance_id
}

/// A ClientKey of `aap` valid from `not_before` to `not_after` ("" for the defaults).
async fn client_key(
    admin: &mut SignedClients,
    aap: &str,
    not_before: &str,
    not_after: &str,
) -> (pb::ClientKey, Credentials) {
    let request = pb::CreateClientKeyRequest {
        aap_name: aap.to_owned(),
        not_before: not_before.to_owned(),
        not_after: not_after.to_owned(),
        password: String::new(),
    };
    let created = admin.access.create_client_key(request).await.expect("create client key").into_inner();
    let key = created.client_key.unwrap();
    assert!(key.client_key_id.starts_with("KAAP."), "{}", key.client_key_id);
    assert!(!created.client_key_secret.is_empty());
    let credentials = Credentials::new(key.client_key_id.clone(), created.client_key_secret);
    (key, credentials)
}

async fn client_key_status(admin: &mut SignedClients, client_key_id: &str) -> String {
    let request = pb::GetClientKeyRequest { client_key_id: client_key_id.to_owned() };
    admin.access.get_client_key(request).await.expect("get client key").into_inner().client_key.unwrap().status
}

#[tokio::test]
async fn a_client_key_signs_calls_as_its_application_access_point() {
    let (server, mut admin, _) = auth_server().await;
    let (a, b) = (create_key_as(&mut admin).await.key_id, create_key_as(&mut admin).await.key_id);
    let policy = identity_policy("Allow", &["kms:Encrypt", "kms:Decrypt"], &[&key_arn(&a)]);
    instance_and_aap(&mut admin, AAP, &[("orders-crypto", policy)]).await;
    let (key, credentials) = client_key(&mut admin, AAP, "", "").await;
    assert_eq!(key.status, "Valid");
    let mut app = SignedClients::of(&server, &credentials).await;

    let me = app.access.get_caller_identity(pb::GetCallerIdentityRequest {}).await.expect("who am I").into_inner();
    assert_eq!(
        (me.identity_type.as_str(), me.user_name.as_str(), me.arn.as_str()),
        ("assumed-role", AAP, aap_arn(AAP).as_str())
    );
    assert_eq!((me.access_key_id.as_str(), me.authenticated_by.as_str()), (key.client_key_id.as_str(), "signature"));

    let encrypt = pb::EncryptRequest { key_id: a.clone(), plaintext: b"order 66".to_vec(), ..Default::default() };
    let blob =
        assert_allowed(app.kms.encrypt(with_request_id("aap-encrypt", encrypt)).await, "Encrypt on A").into_inner();
    assert_allowed(app.kms.decrypt(decrypt_request(&blob.ciphertext_blob)).await, "Decrypt on A");
    let encrypt_b = pb::EncryptRequest { key_id: b.clone(), plaintext: b"x".to_vec(), ..Default::default() };
    assert_denied(app.kms.encrypt(with_request_id("aap-denied", encrypt_b)).await, "Encrypt on B");
    assert_denied(app.access.list_client_keys(pb::ListClientKeysRequest::default()).await, "the access service");

    // A key policy names an AAP by its ARN.
    let document = key_policy(serde_json::json!([{
        "Effect": "Allow", "Principal": {"RAM": [aap_arn(AAP)]}, "Action": ["kms:DescribeKey"], "Resource": ["*"],
    }]));
    admin
        .kms
        .set_key_policy(pb::SetKeyPolicyRequest { key_id: b.clone(), policy_name: String::new(), policy: document })
        .await
        .unwrap();
    assert_allowed(describe_as(&mut app.kms, &b).await, "DescribeKey on B through its key policy");
    assert_denied(describe_as(&mut app.kms, &a).await, "DescribeKey on A");

    let events = audit_events_as(&mut admin).await;
    for request_id in ["aap-encrypt", "aap-denied"] {
        let record = only_record(&events, request_id);
        let identity = record.user_identity.clone().unwrap();
        assert_eq!((identity.r#type.as_str(), identity.user_name.as_str()), ("assumed-role", AAP), "{request_id}");
        assert_eq!(identity.access_key_id, key.client_key_id, "{request_id}");
        assert_eq!(record.access_key_id, key.client_key_id, "{request_id}");
    }
    assert_eq!(only_record(&events, "aap-denied").error_code, "Forbidden.NoPermission");

    // ClientKeys are listed without secrets; an AAP with keys cannot be deleted.
    let listed = admin.access.list_client_keys(pb::ListClientKeysRequest { aap_name: AAP.into() }).await.unwrap();
    assert_eq!(listed.into_inner().client_keys, std::slice::from_ref(&key));
    let delete = pb::DeleteApplicationAccessPointRequest { name: AAP.into() };
    let in_use = admin.access.delete_application_access_point(delete).await.unwrap_err();
    assert_error(&in_use, Code::FailedPrecondition, "Rejected.ResourceInUse", "409", None, "deleting an AAP with keys");
    // A deleted ClientKey is unknown from then on.
    admin
        .access
        .delete_client_key(pb::DeleteClientKeyRequest { client_key_id: key.client_key_id.clone() })
        .await
        .unwrap();
    let status = app.access.get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap_err();
    assert_error(&status, Code::Unauthenticated, "InvalidAccessKeyId.NotFound", "404", None, "a deleted ClientKey");
    server.stop().await;
}

#[tokio::test]
async fn a_client_key_is_refused_before_its_validity_and_after_it_expires() {
    let (server, mut admin, _) = auth_server().await;
    let a = create_key_as(&mut admin).await.key_id;
    instance_and_aap(&mut admin, AAP, &[("enc", identity_policy("Allow", &["kms:Encrypt"], &["*"]))]).await;
    let now = sim_now_as(&mut admin).await;
    let (short, short_credentials) = client_key(&mut admin, AAP, "", &now.plus_days(10).to_rfc3339()).await;
    let later_from = now.plus_days(5).to_rfc3339();
    let (later, later_credentials) = client_key(&mut admin, AAP, &later_from, &now.plus_days(400).to_rfc3339()).await;
    let mut short_app = SignedClients::of(&server, &short_credentials).await;
    let mut later_app = SignedClients::of(&server, &later_credentials).await;
    let refused = |status: tonic::Status, what: &str| {
        assert_error(&status, Code::PermissionDenied, "Forbidden.AccessKey", "403", None, what);
    };

    assert_allowed(encrypt_as(&mut short_app.kms, &a).await, "day 0: the short key");
    refused(encrypt_as(&mut later_app.kms, &a).await.unwrap_err(), "day 0: the later key is not yet valid");
    assert_eq!(client_key_status(&mut admin, &later.client_key_id).await, "NotYetValid");

    advance_days_as(&mut admin, 6).await;
    assert_allowed(encrypt_as(&mut short_app.kms, &a).await, "day 6: the short key");
    assert_allowed(encrypt_as(&mut later_app.kms, &a).await, "day 6: the later key");
    assert_eq!(client_key_status(&mut admin, &later.client_key_id).await, "Valid");

    advance_days_as(&mut admin, 5).await;
    let request = pb::EncryptRequest { key_id: a.clone(), plaintext: b"x".to_vec(), ..Default::default() };
    refused(short_app.kms.encrypt(with_request_id("expired-call", request)).await.unwrap_err(), "day 11: expired");
    refused(
        short_app.access.get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap_err(),
        "expired, who am I",
    );
    assert_eq!(client_key_status(&mut admin, &short.client_key_id).await, "Expired");
    assert_allowed(encrypt_as(&mut later_app.kms, &a).await, "day 11: the later key");

    let events = audit_events_as(&mut admin).await;
    let record = only_record(&events, "expired-call");
    assert_eq!(record.error_code, "Forbidden.AccessKey");
    assert_eq!(record.access_key_id, short.client_key_id);
    server.stop().await;
}

/// The reminders among `events`: (client key id from eventId, days to expire, the document).
fn reminders(events: &[pb::SystemEvent]) -> Vec<(String, u32, serde_json::Value)> {
    events
        .iter()
        .filter(|e| e.name == "Instance:ClientKey:ExpireReminder")
        .map(|e| {
            let document: serde_json::Value = serde_json::from_str(&e.json).unwrap();
            let event_id = document["content"]["eventId"].as_str().unwrap().to_owned();
            let client_key_id = event_id.split(':').nth(1).unwrap().to_owned();
            let days = document["content"]["daysToExpire"].as_str().unwrap().parse().unwrap();
            (client_key_id, days, document)
        })
        .collect()
}

/// A reminder document as the seed lays it out, with real values.
#[track_caller]
fn assert_reminder(document: &serde_json::Value, key: &pb::ClientKey, instance_id: &str, days: u32) {
    assert_eq!(field_names(document), INSTANCE_EVENT_FIELDS, "{document:#}");
    assert_eq!(document["name"], "Instance:ClientKey:ExpireReminder");
    assert_eq!(document["product"], "kms");
    assert_eq!(document["level"], "CRITICAL");
    assert_eq!(document["regionId"], REGION);
    assert_eq!(document["resourceId"], aap_arn(&key.aap_name));
    let content = &document["content"];
    assert_eq!(
        field_names(content),
        ["clientKeyName", "eventId", "dateOfExpiration", "daysToExpire", "affectedKmsInstanceId"],
        "{document:#}"
    );
    assert_eq!(content["clientKeyName"], key.aap_name, "the seed: clientKeyName is the AAP name");
    assert_eq!(content["dateOfExpiration"], key.not_after);
    assert_eq!(content["daysToExpire"], days.to_string(), "daysToExpire is a string");
    assert_eq!(content["affectedKmsInstanceId"], instance_id);
    let not_after = kmsim::clock::SimTime::parse_rfc3339(&key.not_after).unwrap();
    let due = not_after.plus_days(-i64::from(days));
    assert_eq!(document["time"], due.millis(), "raised at its due time");
    assert_eq!(content["eventId"], format!("{ACCOUNT}:{}:{}", key.client_key_id, due.millis().div_euclid(1000)));
}

#[tokio::test]
async fn client_key_reminders_go_out_180_90_30_and_7_days_before_expiry_each_once() {
    let (server, mut admin, _) = auth_server().await;
    let instance_id = instance_and_aap(&mut admin, AAP, &[]).await;
    let now = sim_now_as(&mut admin).await;
    let (key, _) = client_key(&mut admin, AAP, "", &now.plus_days(365).to_rfc3339()).await;

    // Day after day of the schedule: (days to advance, the reminder that must have just gone out).
    let steps: [(i64, Option<u32>); 8] =
        [(184, None), (1, Some(180)), (89, None), (1, Some(90)), (59, None), (1, Some(30)), (23, Some(7)), (30, None)];
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for (day, (advance, expected)) in steps.iter().enumerate() {
        advance_days_as(&mut admin, *advance).await;
        let listed = system_events_as(&mut admin, "Instance:ClientKey:ExpireReminder").await;
        let mut new = Vec::new();
        for (client_key_id, days, document) in reminders(&listed) {
            assert_eq!(client_key_id, key.client_key_id);
            let event_id = document["id"].as_str().unwrap().to_owned();
            if seen.insert(event_id, days).is_none() {
                assert_reminder(&document, &key, &instance_id, days);
                new.push(days);
            }
        }
        assert_eq!(new, expected.iter().copied().collect::<Vec<_>>(), "step {day}: advanced {advance} days");
    }
    let mut all: Vec<u32> = seen.values().copied().collect();
    all.sort_unstable();
    assert_eq!(all, [7, 30, 90, 180], "each reminder exactly once");
    assert_eq!(client_key_status(&mut admin, &key.client_key_id).await, "Expired");
    server.stop().await;
}

async fn next_event(stream: &mut tonic::Streaming<pb::SystemEvent>) -> pb::SystemEvent {
    match tokio::time::timeout(HANG_GUARD, stream.message()).await {
        Ok(Ok(Some(event))) => event,
        other => panic!("no event was streamed: {other:?}"),
    }
}

/// Raises a Key:DeleteKey:ScheduleDeletion and returns every event streamed before it.
async fn events_until_sentinel(
    admin: &mut SignedClients,
    stream: &mut tonic::Streaming<pb::SystemEvent>,
) -> Vec<pb::SystemEvent> {
    let sentinel = create_key_as(admin).await.key_id;
    let schedule = pb::ScheduleKeyDeletionRequest { key_id: sentinel.clone(), pending_window_in_days: 7 };
    admin.kms.schedule_key_deletion(schedule).await.expect("schedule the sentinel's deletion");
    let mut before = Vec::new();
    loop {
        let event = next_event(stream).await;
        if event.name == "Key:DeleteKey:ScheduleDeletion" && event.json.contains(&sentinel) {
            return before;
        }
        before.push(event);
    }
}

#[tokio::test]
async fn one_long_clock_jump_sends_each_reminder_once_in_order_and_none_dated_before_the_key() {
    let (server, mut admin, _) = auth_server().await;
    let watch = pb::WatchSystemEventsRequest { name: String::new(), level: String::new() };
    let mut stream = admin.events.watch_system_events(watch).await.expect("watch").into_inner();
    let instance_id = instance_and_aap(&mut admin, AAP, &[]).await;
    let now = sim_now_as(&mut admin).await;
    let (year, _) = client_key(&mut admin, AAP, "", &now.plus_days(365).to_rfc3339()).await;
    // Made 100 days before it expires: the 180-day reminder's date is already past and never goes out.
    let (short, _) = client_key(&mut admin, AAP, "", &now.plus_days(100).to_rfc3339()).await;

    advance_days_as(&mut admin, 400).await;
    let streamed = events_until_sentinel(&mut admin, &mut stream).await;
    let sent = reminders(&streamed);
    let of = |key: &pb::ClientKey| -> Vec<u32> {
        sent.iter().filter(|(id, _, _)| *id == key.client_key_id).map(|(_, days, _)| *days).collect()
    };
    assert_eq!(of(&year), [180, 90, 30, 7], "the year-long key's reminders, in order");
    assert_eq!(of(&short), [90, 30, 7], "the 100-day key's reminders");
    for (id, days, document) in &sent {
        let key = if *id == year.client_key_id { &year } else { &short };
        assert_reminder(document, key, &instance_id, *days);
    }
    let times: Vec<i64> = sent.iter().map(|(_, _, d)| d["time"].as_i64().unwrap()).collect();
    assert!(times.is_sorted(), "reminders streamed in due order: {times:?}");

    // Nothing is sent again.
    advance_days_as(&mut admin, 30).await;
    let again = events_until_sentinel(&mut admin, &mut stream).await;
    assert!(reminders(&again).is_empty(), "reminders sent twice: {again:?}");
    server.stop().await;
}

#[tokio::test]
async fn identities_policies_and_client_keys_survive_a_restart_and_reminders_are_not_resent() {
    let dir = tempfile::tempdir().unwrap();
    let config = || ServerConfig { store: Location::Dir(dir.path().to_path_buf()), ..auth_required_config() };
    let server = TestServer::start_config(config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let a = create_key_as(&mut admin).await.key_id;
    let encrypt_only = identity_policy("Allow", &["kms:Encrypt"], &["*"]);
    let alice = user_with_policies(&mut admin, &server, "alice", &[("encrypt-only", encrypt_only.clone())]).await;
    let bob = create_access_key_as(&mut admin, "bob").await;
    set_access_key_status(&mut admin, &bob.access_key_id, "Inactive").await;
    let carol = create_access_key_as(&mut admin, "carol").await;
    let document = key_policy(serde_json::json!([{
        "Effect": "Allow", "Principal": {"RAM": [user_arn("carol")]}, "Action": ["kms:DescribeKey"], "Resource": ["*"],
    }]));
    admin
        .kms
        .set_key_policy(pb::SetKeyPolicyRequest {
            key_id: a.clone(),
            policy_name: String::new(),
            policy: document.clone(),
        })
        .await
        .unwrap();
    let instance_id = instance_and_aap(&mut admin, AAP, &[("aap-encrypt", encrypt_only.clone())]).await;
    let now = sim_now_as(&mut admin).await;
    let (key, key_credentials) = client_key(&mut admin, AAP, "", &now.plus_days(365).to_rfc3339()).await;
    advance_days_as(&mut admin, 186).await;
    let before = reminders(&system_events_as(&mut admin, "Instance:ClientKey:ExpireReminder").await);
    assert_eq!(before.iter().map(|(_, d, _)| *d).collect::<Vec<_>>(), [180]);
    let users_before = admin.access.list_users(pb::ListUsersRequest {}).await.unwrap().into_inner().users;
    let keys_before = admin.access.list_access_keys(pb::ListAccessKeysRequest::default()).await.unwrap().into_inner();
    let alice_credentials = alice.credentials.clone();
    drop((alice, admin));
    server.stop().await;

    let server = TestServer::start_config(config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let users_after = admin.access.list_users(pb::ListUsersRequest {}).await.unwrap().into_inner().users;
    assert_eq!(users_after, users_before, "users, their ids and policies");
    let keys_after = admin.access.list_access_keys(pb::ListAccessKeysRequest::default()).await.unwrap().into_inner();
    assert_eq!(keys_after, keys_before, "access keys and their statuses");
    let policy = admin.access.get_policy(pb::GetPolicyRequest { policy_name: "encrypt-only".into() }).await.unwrap();
    let policy = policy.into_inner().policy.unwrap();
    assert_eq!(policy.policy_document, encrypt_only);
    assert_eq!(policy.attachments, ["User/alice"]);
    let aap_policy = admin.access.get_policy(pb::GetPolicyRequest { policy_name: "aap-encrypt".into() }).await.unwrap();
    assert_eq!(aap_policy.into_inner().policy.unwrap().attachments, ["Aap/orders-app"]);
    let aap =
        admin.access.get_application_access_point(pb::GetApplicationAccessPointRequest { name: AAP.into() }).await;
    let aap = aap.unwrap().into_inner().application_access_point.unwrap();
    assert_eq!(
        (aap.kms_instance_id.as_str(), aap.policy_names.as_slice()),
        (instance_id.as_str(), &["aap-encrypt".to_owned()][..])
    );
    let kept =
        admin.kms.get_key_policy(pb::GetKeyPolicyRequest { key_id: a.clone(), ..Default::default() }).await.unwrap();
    assert_eq!(kept.into_inner().policy, document);

    // The credentials still sign, and the policies still decide.
    let mut alice = SignedClients::of(&server, &alice_credentials).await;
    assert_allowed(encrypt_as(&mut alice.kms, &a).await, "alice's policy after the restart");
    assert_denied(describe_as(&mut alice.kms, &a).await, "alice's policy after the restart");
    let mut carol = SignedClients::of(&server, &carol).await;
    assert_allowed(describe_as(&mut carol.kms, &a).await, "the key policy after the restart");
    let mut bob = SignedClients::of(&server, &bob).await;
    let status = encrypt_as(&mut bob.kms, &a).await.unwrap_err();
    assert_error(&status, Code::PermissionDenied, "Forbidden.AccessKey", "403", None, "bob's key stays disabled");
    let mut app = SignedClients::of(&server, &key_credentials).await;
    assert_allowed(encrypt_as(&mut app.kms, &a).await, "the ClientKey after the restart");
    let me = app.access.get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap().into_inner();
    assert_eq!((me.identity_type.as_str(), me.user_name.as_str()), ("assumed-role", AAP));

    // The restart sent nothing again; the schedule goes on where it was.
    let after = reminders(&system_events_as(&mut admin, "Instance:ClientKey:ExpireReminder").await);
    assert_eq!(after.iter().map(|(_, d, _)| *d).collect::<Vec<_>>(), [180], "a reminder was resent at the restart");
    advance_days_as(&mut admin, 90).await;
    let later = reminders(&system_events_as(&mut admin, "Instance:ClientKey:ExpireReminder").await);
    let ninety: Vec<_> = later.iter().filter(|(_, d, _)| *d == 90).collect();
    assert_eq!(ninety.len(), 1, "the 90-day reminder once: {later:?}");
    assert_reminder(&ninety[0].2, &key, &instance_id, 90);
    // Over the whole run (the audit keeps 180 days): each reminder raised once, none again at the restart.
    let records = audit_events_as(&mut admin).await;
    let mut raised: Vec<u64> = records
        .iter()
        .filter(|r| r.event_name == "ClientKeyExpireReminder")
        .map(|r| {
            assert_eq!(r.event_type, "AliyunServiceEvent");
            let params: serde_json::Value = serde_json::from_str(&r.request_parameters).unwrap();
            assert_eq!(params["ClientKeyId"], key.client_key_id);
            params["DaysToExpire"].as_u64().unwrap()
        })
        .collect();
    raised.sort_unstable();
    assert_eq!(raised, [90, 180], "reminders raised over the run, across the restart");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// --auth off
// ---------------------------------------------------------------------------

/// `message` naming `access_key_id` (and whatever else `extra` adds), with a request id.
fn naming<T>(request_id: &str, access_key_id: &str, message: T) -> tonic::Request<T> {
    let mut request = with_request_id(request_id, message);
    request.metadata_mut().insert(kmsim::frontends::grpc::headers::ACCESS_KEY_ID, access_key_id.parse().unwrap());
    request
}

#[tokio::test]
async fn with_auth_off_a_named_access_key_is_recorded_as_its_user_and_nothing_is_refused() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut access = pb::access_service_client::AccessServiceClient::new(channel.clone());
    let mut kms = server.kms().await;
    let created = access.create_access_key(pb::CreateAccessKeyRequest { user_name: "alice".into() }).await.unwrap();
    let alice = created.into_inner().access_key.unwrap().access_key_id;
    // Policies that would refuse everything, and a disabled key: none of it applies with auth off.
    let deny = identity_policy("Deny", &["*"], &["*"]);
    access
        .create_policy(pb::CreatePolicyRequest {
            policy_name: "deny-all".into(),
            policy_document: deny,
            description: String::new(),
        })
        .await
        .unwrap();
    let attach = pb::AttachPolicyRequest {
        policy_name: "deny-all".into(),
        principal_type: "User".into(),
        principal_name: "alice".into(),
    };
    access.attach_policy(attach).await.unwrap();
    let user_id = access.list_users(pb::ListUsersRequest {}).await.unwrap().into_inner().users[0].user_id.clone();
    let key_id = create_key(&mut kms, "").await;
    let encrypt = || pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"off".to_vec(), ..Default::default() };

    kms.encrypt(naming("off-alice", &alice, encrypt())).await.expect("a named, known key is not refused");
    let unknown = "LTAIsomebodyElse00000001";
    kms.encrypt(naming("off-unknown", unknown, encrypt())).await.expect("an unknown key is not refused");
    let mut forged = naming("off-forged", &alice, encrypt());
    sign_metadata(forged.metadata_mut(), &Credentials::new(alice.clone(), "wrong"), "/x", &date_from_now(-3600), b"");
    kms.encrypt(forged).await.expect("a wrong, stale signature is not refused");
    let update = pb::UpdateAccessKeyRequest { access_key_id: alice.clone(), status: "Inactive".into() };
    access.update_access_key(update).await.unwrap();
    kms.encrypt(naming("off-disabled", &alice, encrypt())).await.expect("a disabled key is not refused");
    kms.encrypt(with_request_id("off-anonymous", encrypt())).await.expect("an anonymous call");
    let advance = pb::AdvanceClockRequest { advance: Some(prost_types::Duration { seconds: 60, nanos: 0 }) };
    let mut simulation = server.simulation().await;
    simulation.advance_clock(naming("off-clock", &alice, advance)).await.expect("the simulation service is open");

    let me = access.get_caller_identity(naming("off-me", &alice, pb::GetCallerIdentityRequest {})).await.unwrap();
    let me = me.into_inner();
    assert_eq!(
        (me.identity_type.as_str(), me.user_name.as_str(), me.principal_id.as_str(), me.authenticated_by.as_str()),
        ("ram-user", "alice", user_id.as_str(), "none")
    );
    let anonymous = access.get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap().into_inner();
    assert_eq!((anonymous.identity_type.as_str(), anonymous.authenticated_by.as_str()), ("anonymous", "none"));

    let events = all_audit_events(&server).await;
    let alice_identity = pb::UserIdentity {
        r#type: "ram-user".into(),
        principal_id: user_id.clone(),
        account_id: ACCOUNT.into(),
        access_key_id: alice.clone(),
        user_name: "alice".into(),
    };
    for request_id in ["off-alice", "off-forged", "off-disabled", "off-clock"] {
        let record = only_record(&events, request_id);
        assert_eq!(record.outcome, "Success", "{request_id}");
        assert_eq!(record.user_identity.as_ref(), Some(&alice_identity), "{request_id}");
        assert_eq!(record.access_key_id, alice, "{request_id}");
    }
    let record = only_record(&events, "off-unknown");
    assert_eq!(record.outcome, "Success");
    let identity = record.user_identity.clone().unwrap();
    assert_eq!(
        (
            identity.r#type.as_str(),
            identity.principal_id.as_str(),
            identity.access_key_id.as_str(),
            identity.user_name.as_str()
        ),
        ("ram-user", unknown, unknown, ""),
        "an unknown id is recorded as given"
    );
    let record = only_record(&events, "off-anonymous");
    let identity = record.user_identity.clone().unwrap();
    assert_eq!((identity.r#type.as_str(), identity.access_key_id.as_str()), ("root-account", ""));
    server.stop().await;
}

#[tokio::test]
async fn a_client_key_made_with_a_password_is_alibabas_rsa_kind_and_signs_no_kmsim_v1_call() {
    let (server, mut admin, _) = auth_server().await;
    let aap = pb::CreateApplicationAccessPointRequest { name: AAP.into(), ..Default::default() };
    admin.access.create_application_access_point(aap).await.expect("create AAP");
    let request =
        pb::CreateClientKeyRequest { aap_name: AAP.into(), password: "Grpc-Passw0rd".into(), ..Default::default() };
    let created = admin.access.create_client_key(request).await.expect("create client key").into_inner();
    let key = created.client_key.unwrap();
    assert_eq!((key.kind.as_str(), created.client_key_secret.as_str()), ("RSA", ""), "no HMAC secret");
    assert!(created.private_key_data.len() > 2000, "a base64 PKCS#12 file: {}", created.private_key_data.len());
    let got = admin.access.get_client_key(pb::GetClientKeyRequest { client_key_id: key.client_key_id.clone() });
    assert_eq!(got.await.unwrap().into_inner().client_key.unwrap().kind, "RSA");

    // Signing kmsim.v1 with it, whatever secret is tried (here the file itself), names no credential.
    let mut app = SignedClients::of(&server, &Credentials::new(key.client_key_id, created.private_key_data)).await;
    let refused = app.access.get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap_err();
    assert_eq!(error_code(&refused), "InvalidAccessKeyId.NotFound");

    let weak = pb::CreateClientKeyRequest { aap_name: AAP.into(), password: "weak".into(), ..Default::default() };
    let refused = admin.access.create_client_key(weak).await.unwrap_err();
    assert_eq!(error_code(&refused), "InvalidParameter");
    server.stop().await;
}
