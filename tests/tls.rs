//! TLS and mutual TLS on the gRPC port, with certificates the tests make
//! themselves: server-only TLS, client certificates checked against the
//! client CA, and a client certificate's common name authenticating its
//! calls as the AccessKey (or ClientKey) it names.

mod common;

use common::pki::{Ca, Leaf, Pki};
use common::*;
use kmsim::proto as pb;
use kmsim::proto::access_service_client::AccessServiceClient;
use kmsim::server::{DEFAULT_ACCOUNT_ID as ACCOUNT, ServerConfig};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A TLS channel to `server` trusting `ca`, presenting `identity` if given.
async fn connect(server: &TestServer, ca: &Ca, identity: Option<&Leaf>) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.pem())).domain_name("localhost");
    if let Some(leaf) = identity {
        tls = tls.identity(Identity::from_pem(&leaf.cert_pem, &leaf.key_pem));
    }
    let endpoint = Channel::from_shared(format!("https://{}", server.addr)).unwrap();
    let endpoint = endpoint.tls_config(tls).map_err(|e| format!("tls config: {e:?}"))?;
    endpoint.connect().await.map_err(|e| format!("connect: {e:?}"))
}

/// GetCallerIdentity over TLS (not signed); any failure, in the handshake or in the call, as text.
async fn who_am_i(
    server: &TestServer,
    ca: &Ca,
    identity: Option<&Leaf>,
    request_id: &str,
) -> Result<pb::GetCallerIdentityResponse, String> {
    let channel = connect(server, ca, identity).await?;
    let request = with_request_id(request_id, pb::GetCallerIdentityRequest {});
    AccessServiceClient::new(channel)
        .get_caller_identity(request)
        .await
        .map(|r| r.into_inner())
        .map_err(|s| format!("call: {s:?}"))
}

#[track_caller]
fn assert_identity(me: &pb::GetCallerIdentityResponse, kind: &str, user_name: &str, access_key_id: &str, by: &str) {
    assert_eq!(
        (me.identity_type.as_str(), me.user_name.as_str(), me.access_key_id.as_str(), me.authenticated_by.as_str()),
        (kind, user_name, access_key_id, by),
        "{me:?}"
    );
}

#[tokio::test]
async fn tls_serves_every_client_that_trusts_the_server_and_no_plaintext_client() {
    let pki = Pki::new();
    let server =
        TestServer::start_config(ServerConfig { tls: Some(pki.files(false)), ..ServerConfig::default() }).await;
    let channel = connect(&server, &pki.server_ca, None).await.expect("a TLS client connects");
    let mut kms = pb::key_management_service_client::KeyManagementServiceClient::new(channel.clone());
    let key_id = kms.create_key(pb::CreateKeyRequest::default()).await.expect("CreateKey over TLS").into_inner();
    let key_id = key_id.key_metadata.unwrap().key_id;
    let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"over tls".to_vec(), ..Default::default() };
    let blob = kms.encrypt(with_request_id("tls-encrypt", request)).await.expect("Encrypt over TLS").into_inner();
    let plain = kms.decrypt(decrypt_request(&blob.ciphertext_blob)).await.expect("Decrypt over TLS").into_inner();
    assert_eq!(plain.plaintext, b"over tls");
    let me = who_am_i(&server, &pki.server_ca, None, "tls-me").await.expect("GetCallerIdentity over TLS");
    assert_identity(&me, "anonymous", "root", "", "none");

    // A client that does not trust the server's CA, and a plaintext client, get nothing.
    let stranger = Ca::new("some other CA");
    let untrusted = who_am_i(&server, &stranger, None, "tls-untrusted").await;
    assert!(untrusted.is_err(), "a client that does not trust the server was served: {untrusted:?}");
    let plaintext = Channel::from_shared(server.endpoint()).unwrap().connect().await;
    if let Ok(plaintext) = plaintext {
        let answer = AccessServiceClient::new(plaintext).get_caller_identity(pb::GetCallerIdentityRequest {}).await;
        assert!(answer.is_err(), "a plaintext call was answered by a TLS server: {answer:?}");
    }

    let mut audit = pb::audit_service_client::AuditServiceClient::new(channel);
    let events = audit.list_audit_events(pb::ListAuditEventsRequest { page_size: 1000, ..Default::default() }).await;
    let events = events.unwrap().into_inner().events;
    let record = only_record(&events, "tls-encrypt");
    assert_eq!(
        (record.outcome.as_str(), record.key_id.as_str(), record.client_ip.as_str()),
        ("Success", key_id.as_str(), "127.0.0.1")
    );
    assert!(events.iter().all(|e| e.client_request_id != "tls-untrusted"), "a refused handshake reached the API");
    server.stop().await;
}

/// A server with mutual TLS and `--auth required`, and the admin's clients over it (a nameless client certificate, signed calls).
async fn mutual_tls_server(pki: &Pki) -> (TestServer, SignedClients) {
    let config = ServerConfig { tls: Some(pki.files(true)), ..auth_required_config() };
    let server = TestServer::start_config(config).await;
    let admin_cert = pki.client_ca.client(None);
    let channel = connect(&server, &pki.server_ca, Some(&admin_cert)).await.expect("the admin connects");
    (server, SignedClients::on(channel, &admin_credentials()))
}

#[tokio::test]
async fn mutual_tls_admits_only_clients_with_a_certificate_from_the_client_ca() {
    let pki = Pki::new();
    let (server, mut admin) = mutual_tls_server(&pki).await;
    let me = admin.access.get_caller_identity(pb::GetCallerIdentityRequest {}).await.expect("the admin over mTLS");
    assert_identity(&me.into_inner(), "root-account", "root", ADMIN_KEY_ID, "signature");
    let key = admin.kms.create_key(pb::CreateKeyRequest::default()).await.expect("CreateKey over mTLS").into_inner();
    assert_eq!(key.key_metadata.unwrap().key_state, "Enabled");

    let no_certificate = who_am_i(&server, &pki.server_ca, None, "mtls-no-cert").await;
    assert!(no_certificate.is_err(), "a client without a certificate was served: {no_certificate:?}");
    let foreign = Ca::new("another client CA").client(Some(ADMIN_KEY_ID));
    let foreign_answer = who_am_i(&server, &pki.server_ca, Some(&foreign), "mtls-foreign").await;
    assert!(foreign_answer.is_err(), "a certificate from another CA was accepted: {foreign_answer:?}");
    // The server's own certificate is not a client certificate of the client CA either.
    let wrong_ca = Leaf { cert_pem: pki.server.cert_pem.clone(), key_pem: pki.server.key_pem.clone() };
    let server_cert_answer = who_am_i(&server, &pki.server_ca, Some(&wrong_ca), "mtls-server-cert").await;
    assert!(server_cert_answer.is_err(), "the server's certificate was accepted as a client's: {server_cert_answer:?}");

    // Refused in the handshake: nothing reached the API, and the server still serves.
    let events = audit_events_as(&mut admin).await;
    for request_id in ["mtls-no-cert", "mtls-foreign", "mtls-server-cert"] {
        assert!(events.iter().all(|e| e.client_request_id != request_id), "{request_id} reached the API");
    }
    let keys = admin.kms.list_keys(pb::ListKeysRequest::default()).await.expect("still serving").into_inner();
    assert_eq!(keys.total_count, 1);

    // A trusted certificate naming no credential does not replace a signature.
    let nameless = pki.client_ca.client(None);
    let unsigned = who_am_i(&server, &pki.server_ca, Some(&nameless), "mtls-unsigned").await.unwrap_err();
    assert!(unsigned.contains("MissingParameter"), "an unsigned call with a nameless certificate: {unsigned}");
    server.stop().await;
}

#[tokio::test]
async fn a_client_certificate_naming_an_access_key_authenticates_as_that_identity_without_a_signature() {
    let pki = Pki::new();
    let (server, mut admin) = mutual_tls_server(&pki).await;
    let a =
        admin.kms.create_key(pb::CreateKeyRequest::default()).await.unwrap().into_inner().key_metadata.unwrap().key_id;
    let alice = create_access_key_as(&mut admin, "alice").await;
    create_policy_as(&mut admin, "encrypt", &identity_policy("Allow", &["kms:Encrypt"], &["*"])).await;
    attach_user_policy_as(&mut admin, "encrypt", "alice").await;
    let alice_user_id =
        admin.access.list_users(pb::ListUsersRequest {}).await.unwrap().into_inner().users[0].user_id.clone();

    let alice_cert = pki.client_ca.client(Some(&alice.access_key_id));
    let me = who_am_i(&server, &pki.server_ca, Some(&alice_cert), "cert-me").await.expect("alice by certificate");
    assert_identity(&me, "ram-user", "alice", &alice.access_key_id, "certificate");
    assert_eq!(me.principal_id, alice_user_id);

    // Her calls need no signature and her policies apply.
    let channel = connect(&server, &pki.server_ca, Some(&alice_cert)).await.unwrap();
    let mut kms = pb::key_management_service_client::KeyManagementServiceClient::new(channel.clone());
    let encrypt = pb::EncryptRequest { key_id: a.clone(), plaintext: b"by cert".to_vec(), ..Default::default() };
    kms.encrypt(with_request_id("cert-encrypt", encrypt)).await.expect("Encrypt by certificate");
    let describe =
        kms.describe_key(with_request_id("cert-describe", pb::DescribeKeyRequest { key_id: a.clone() })).await;
    assert_error(
        &describe.unwrap_err(),
        Code::PermissionDenied,
        "Forbidden.NoPermission",
        "403",
        None,
        "DescribeKey by certificate",
    );
    let events = audit_events_as(&mut admin).await;
    for (request_id, outcome) in [("cert-encrypt", "Success"), ("cert-describe", "Failure")] {
        let record = only_record(&events, request_id);
        assert_eq!(record.outcome, outcome, "{request_id}");
        assert_eq!(
            record.user_identity.as_ref(),
            Some(&pb::UserIdentity {
                r#type: "ram-user".into(),
                principal_id: alice_user_id.clone(),
                account_id: ACCOUNT.into(),
                access_key_id: alice.access_key_id.clone(),
                user_name: "alice".into(),
            }),
            "{request_id}"
        );
    }

    // A certificate for one identity and a signature for another: refused.
    let mut mixed = SignedClients::on(channel, &admin_credentials());
    let status = mixed.access.get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap_err();
    assert_error(
        &status,
        Code::Unauthenticated,
        "SignatureNotMatch",
        "401",
        None,
        "alice's certificate, the admin's signature",
    );
    // The certificate does not outlive the AccessKey's status.
    let disable = pb::UpdateAccessKeyRequest { access_key_id: alice.access_key_id.clone(), status: "Inactive".into() };
    admin.access.update_access_key(disable).await.unwrap();
    let disabled = who_am_i(&server, &pki.server_ca, Some(&alice_cert), "cert-disabled").await.unwrap_err();
    assert!(disabled.contains("Forbidden.AccessKey"), "a disabled key's certificate: {disabled}");

    // A certificate naming an id nobody has authenticates nobody: the unsigned call is refused as unsigned.
    // One naming a ClientKey is its AAP; one naming the admin is the root.
    let nobody = pki.client_ca.client(Some("LTAInobodyHasThisKey0001"));
    let unknown = who_am_i(&server, &pki.server_ca, Some(&nobody), "cert-unknown").await.unwrap_err();
    assert!(unknown.contains("MissingParameter"), "{unknown}");
    let aap = pb::CreateApplicationAccessPointRequest { name: "orders-app".into(), ..Default::default() };
    admin.access.create_application_access_point(aap).await.unwrap();
    let client_key = admin
        .access
        .create_client_key(pb::CreateClientKeyRequest { aap_name: "orders-app".into(), ..Default::default() })
        .await;
    let client_key_id = client_key.unwrap().into_inner().client_key.unwrap().client_key_id;
    let app_cert = pki.client_ca.client(Some(&client_key_id));
    let app = who_am_i(&server, &pki.server_ca, Some(&app_cert), "cert-app").await.expect("an AAP by certificate");
    assert_identity(&app, "assumed-role", "orders-app", &client_key_id, "certificate");
    let admin_cert = pki.client_ca.client(Some(ADMIN_KEY_ID));
    let root =
        who_am_i(&server, &pki.server_ca, Some(&admin_cert), "cert-admin").await.expect("the admin by certificate");
    assert_identity(&root, "root-account", "root", ADMIN_KEY_ID, "certificate");
    server.stop().await;
}

#[tokio::test]
async fn with_auth_off_mutual_tls_names_callers_by_certificate_and_refuses_no_call() {
    let pki = Pki::new();
    let server = TestServer::start_config(ServerConfig { tls: Some(pki.files(true)), ..ServerConfig::default() }).await;
    let nameless = pki.client_ca.client(None);
    let channel = connect(&server, &pki.server_ca, Some(&nameless)).await.expect("connects");
    let mut access = AccessServiceClient::new(channel);
    let created = access.create_access_key(pb::CreateAccessKeyRequest { user_name: "alice".into() }).await.unwrap();
    let alice = created.into_inner().access_key.unwrap().access_key_id;

    let alice_cert = pki.client_ca.client(Some(&alice));
    let me = who_am_i(&server, &pki.server_ca, Some(&alice_cert), "off-cert").await.expect("alice by certificate");
    assert_identity(&me, "ram-user", "alice", &alice, "certificate");

    // An ordinary client certificate, named after a host rather than a credential: with auth off nothing is refused.
    let host_cert = pki.client_ca.client(Some("orders-service.internal"));
    let host = who_am_i(&server, &pki.server_ca, Some(&host_cert), "off-host-cert").await;
    assert!(host.is_ok(), "auth off refused a call over mTLS because the certificate names no AccessKey: {host:?}");
    server.stop().await;
}

#[tokio::test]
async fn with_auth_required_a_certificate_naming_no_credential_leaves_the_call_to_its_signature() {
    // tls.rs: a certificate's common name "may name a credential"; a certificate named
    // after a host (as most client certificates are) should not make signed calls fail.
    let pki = Pki::new();
    let (server, _admin) = mutual_tls_server(&pki).await;
    let host_cert = pki.client_ca.client(Some("orders-service.internal"));
    let channel = connect(&server, &pki.server_ca, Some(&host_cert)).await.expect("connects");
    let mut signed = SignedClients::on(channel, &admin_credentials());
    let me = signed.access.get_caller_identity(pb::GetCallerIdentityRequest {}).await;
    let me = me.unwrap_or_else(|s| panic!("the admin's signed call over a host-named certificate was refused: {s:?}"));
    assert_identity(&me.into_inner(), "root-account", "root", ADMIN_KEY_ID, "signature");
    server.stop().await;
}
