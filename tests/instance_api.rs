//! The KMS instance API from a Rust client that signs as `alibabacloud-dkms-gcs` does (with the private key of
//! the ClientKey's PKCS#12 file): QPS metering of instance traffic, and what the API makes of requests it cannot
//! take, each answered as the protobuf `Error` with Alibaba's code and status, and audited. The real SDKs are in
//! tests/dkms_sdk.rs.

mod common;

use std::collections::BTreeSet;

use base64::Engine as _;
use bytes::Bytes;
use common::openapi::{Call, send as send_openapi};
use common::*;
use http_body_util::{BodyExt, Full};
use kmsim::dkms_proto as dkms;
use kmsim::engine::crypto::pkcs12::open_client_key;
use kmsim::frontends::alibaba::instance::signature::signed_headers;
use kmsim::proto as pb;
use kmsim::proto::access_service_client::AccessServiceClient;
use prost::Message;
use rsa::pkcs1v15::SigningKey;
use sha2::Sha256;

const PASSWORD: &str = "Rust-Client-Passw0rd";

/// An application of an AAP bound to an instance of `spec` QPS, with a key there and a ClientKey.
struct App {
    server: TestServer,
    instance: pb::KmsInstance,
    key_id: String,
    client_key_id: String,
    signing: SigningKey<Sha256>,
}

impl App {
    async fn start(spec: i64) -> App {
        let server = TestServer::start().await;
        let instance = create_instance(&mut server.instances().await, "", spec, "").await;
        let key_id = create_instance_key(&mut server.kms().await, "cn-hangzhou", &instance.kms_instance_id).await;
        let channel = server.channel().await;
        instance_aap(&channel, "app", &instance.kms_instance_id).await;
        let mut access = AccessServiceClient::new(channel);
        let request =
            pb::CreateClientKeyRequest { aap_name: "app".into(), password: PASSWORD.into(), ..Default::default() };
        let made = access.create_client_key(request).await.expect("ClientKey").into_inner();
        let pfx = base64::engine::general_purpose::STANDARD.decode(made.private_key_data).unwrap();
        let signing = SigningKey::<Sha256>::new(open_client_key(&pfx, PASSWORD).expect("the file opens"));
        App { server, instance, key_id, client_key_id: made.client_key.unwrap().client_key_id, signing }
    }

    /// `api_name` with `body`, signed; `edit` may change the request before it goes.
    fn request(
        &self,
        api_name: &str,
        body: Vec<u8>,
        edit: impl FnOnce(&mut http::Request<Full<Bytes>>),
    ) -> http::Request<Full<Bytes>> {
        let headers = signed_headers(&self.signing, &self.client_key_id, api_name, &body, None).unwrap();
        let mut request = http::Request::post(format!("http://{}/", self.server.addr))
            .header("user-agent", "kmsim-instance-api-test")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        request.headers_mut().extend(headers);
        edit(&mut request);
        request
    }

    fn encrypt_body(&self) -> Vec<u8> {
        dkms::EncryptRequest { key_id: self.key_id.clone(), plaintext: b"p".to_vec(), ..Default::default() }
            .encode_to_vec()
    }
}

/// Sends `request` and answers the status and body.
async fn send(request: http::Request<Full<Bytes>>) -> (u16, Vec<u8>) {
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request).await.expect("an answer");
    let status = response.status().as_u16();
    (status, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

/// The protobuf `Error` of a refusal, checked against its status.
#[track_caller]
fn error_of(status: u16, body: &[u8]) -> dkms::Error {
    let error = dkms::Error::decode(body).expect("a refusal's body is the protobuf Error");
    assert_eq!(error.status_code, i32::from(status), "{error:?}");
    assert!(!error.request_id.is_empty(), "{error:?}");
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_traffic_is_metered_a_burst_beyond_the_spec_is_throttled_reminded_and_audited() {
    let app = App::start(5).await;
    // Forty calls at once, far beyond 5 per second: the first are admitted, the rest throttled.
    let tasks: Vec<_> =
        (0..40).map(|_| tokio::spawn(send(app.request("Encrypt", app.encrypt_body(), |_| {})))).collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("the call task"));
    }
    let mut throttled = BTreeSet::new();
    let mut admitted = 0;
    for (status, body) in &answers {
        match status {
            200 => admitted += 1,
            429 => {
                let error = error_of(*status, body);
                assert_eq!(error.error_code, "Rejected.Throttling", "{error:?}");
                throttled.insert(error.request_id);
            }
            other => panic!("an answer other than 200 or 429: {other} {:?}", dkms::Error::decode(&body[..])),
        }
    }
    assert!((1..=5).contains(&admitted) && !throttled.is_empty(), "{admitted} admitted, {} throttled", throttled.len());

    let records = all_audit_events(&app.server).await;
    let refused: BTreeSet<String> =
        records.iter().filter(|r| r.error_code == "Rejected.Throttling").map(|r| r.request_id.clone()).collect();
    assert_eq!(refused, throttled, "each refusal the client saw is one failure record");
    for record in records.iter().filter(|r| r.event_name == "Encrypt") {
        assert_eq!((record.access_key_id.as_str(), record.key_id.as_str()), (&*app.client_key_id, &*app.key_id));
    }
    let reminders = list_system_events(&app.server, "Instance:QPS:Reminder").await;
    assert_eq!(reminders.len(), 1, "one reminder near the quota: {reminders:#?}");
    let doc: serde_json::Value = serde_json::from_str(&reminders[0].json).unwrap();
    assert_eq!(doc["content"]["kmsInstanceId"], app.instance.kms_instance_id.as_str(), "{doc:#}");
    app.server.stop().await;
}

/// A request the test makes: the call, its body, a header changed after signing (its name, and its new value
/// or none for removed), and the status and code it is answered with.
struct Case<'a>(&'a str, &'a [u8], Option<(&'a str, Option<&'a str>)>, u16, &'a str);

#[tokio::test]
async fn what_the_instance_api_cannot_take_is_refused_as_its_error_message_and_audited() {
    let app = App::start(1000).await;
    let body = app.encrypt_body();
    let cases = [
        Case("Encrypt", &body, None, 200, ""),
        Case("Encrypt", &body, Some(("x-kms-acccesskeyid", None)), 400, "MissingParameter"),
        Case("Encrypt", &body, Some(("authorization", None)), 400, "MissingParameter"),
        Case("Encrypt", &body, Some(("x-kms-apiname", Some("Decrypt"))), 401, "SignatureNotMatch"),
        Case("Encrypt", &body, Some(("content-sha256", Some("00"))), 401, "SignatureNotMatch"),
        Case("Encrypt", &body, Some(("date", Some("Tue, 08 Dec 2020 01:36:09 GMT"))), 401, "SignatureNotMatch"),
        Case("Encrypt", b"\xff\xff\xff", None, 400, "InvalidParameter"),
        Case("Hmac", b"", None, 404, "InvalidAction.NotFound"),
        Case("Encrypt", &[0u8; 2 * 1024 * 1024], None, 400, "InvalidParameter"),
    ];
    let mut request_ids = Vec::new();
    for (i, Case(api_name, body, changed, status, code)) in cases.into_iter().enumerate() {
        let edit = |request: &mut http::Request<Full<Bytes>>| match changed {
            Some((name, Some(value))) => {
                let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
                drop(request.headers_mut().insert(name, value.parse().unwrap()));
            }
            Some((name, None)) => drop(request.headers_mut().remove(name)),
            None => {}
        };
        let (answered, reply) = send(app.request(api_name, body.to_vec(), edit)).await;
        assert_eq!(answered, status, "case {i}: {api_name} {:?}", dkms::Error::decode(&reply[..]));
        if status != 200 {
            let error = error_of(answered, &reply);
            assert_eq!(error.error_code, code, "case {i}: {error:?}");
            request_ids.push((error.request_id, code));
        }
    }
    let records = all_audit_events(&app.server).await;
    for (request_id, code) in request_ids {
        let matching: Vec<_> = records.iter().filter(|r| r.request_id == request_id).collect();
        assert_eq!(matching.len(), 1, "{code}: one record: {matching:#?}");
        let record = matching[0];
        assert_eq!((record.outcome.as_str(), record.error_code.as_str()), ("Failure", code), "{record:#?}");
    }
    app.server.stop().await;
}

/// An OpenAPI call with `--auth off`, which must be answered.
async fn openapi(server: &TestServer, call: Call) -> serde_json::Value {
    let reply = send_openapi(server.addr, &call).await;
    assert_eq!(reply.status, 200, "{}: {:?}", call.action, reply.body);
    reply.body
}

#[tokio::test]
async fn a_permission_policys_instance_and_network_rules_bound_what_a_client_key_may_do_on_the_instance_api() {
    let server = TestServer::start().await;
    let instance = create_instance(&mut server.instances().await, "", 1000, "").await;
    let instance_id = instance.kms_instance_id.clone();
    let key_id = create_instance_key(&mut server.kms().await, "cn-hangzhou", &instance_id).await;
    let outside = create_key(&mut server.kms().await, "").await;
    // Made as Alibaba's console makes them, through the OpenAPI: the AAP names no instance, its policy does.
    let rule = Call::new("CreateNetworkRule").param("Name", "office").param("Type", "Private");
    openapi(&server, rule.param("SourcePrivateIp", "10.0.0.0/8")).await;
    let policy = Call::new("CreatePolicy")
        .param("Name", "app-crypto")
        .param("KmsInstance", &instance_id)
        .param("Permissions", r#"["RbacPermission/Template/CryptoServiceKeyUser"]"#)
        .param("Resources", r#"["key/*"]"#)
        .param("AccessControlRules", r#"{"NetworkRules":["office"]}"#);
    openapi(&server, policy).await;
    let aap = Call::new("CreateApplicationAccessPoint").param("Name", "orders").param("Policies", r#"["app-crypto"]"#);
    openapi(&server, aap).await;
    let made =
        openapi(&server, Call::new("CreateClientKey").param("AapName", "orders").param("Password", PASSWORD)).await;
    let pfx = base64::engine::general_purpose::STANDARD.decode(made["PrivateKeyData"].as_str().unwrap()).unwrap();
    let app = App {
        signing: SigningKey::<Sha256>::new(open_client_key(&pfx, PASSWORD).expect("the file opens")),
        client_key_id: made["ClientKeyId"].as_str().unwrap().to_owned(),
        server,
        instance,
        key_id,
    };

    // 127.0.0.1 is not in the rule: the policy does not apply, and nothing else allows the call.
    let (status, body) = send(app.request("Encrypt", app.encrypt_body(), |_| {})).await;
    assert_eq!((status, error_of(status, &body).error_code.as_str()), (403, "Forbidden.NoPermission"));
    let update = Call::new("UpdateNetworkRule").param("Name", "office").param("SourcePrivateIp", "127.0.0.0/8");
    openapi(&app.server, update).await;
    let (status, body) = send(app.request("Encrypt", app.encrypt_body(), |_| {})).await;
    assert_eq!(status, 200, "{:?}", dkms::Error::decode(&body[..]));
    let sealed = dkms::EncryptResponse::decode(&body[..]).unwrap();
    assert_eq!((sealed.key_id.as_str(), sealed.iv.len()), (app.key_id.as_str(), 12));

    // The instance is the policy's: a key outside it is not found there; a call the template does not grant is refused.
    let other = dkms::EncryptRequest { key_id: outside, plaintext: b"p".to_vec(), ..Default::default() };
    let (status, body) = send(app.request("Encrypt", other.encode_to_vec(), |_| {})).await;
    assert_eq!((status, error_of(status, &body).error_code.as_str()), (404, "Forbidden.KeyNotFound"));
    let secret = dkms::GetSecretValueRequest { secret_name: "none".into(), ..Default::default() };
    let (status, body) = send(app.request("GetSecretValue", secret.encode_to_vec(), |_| {})).await;
    assert_eq!((status, error_of(status, &body).error_code.as_str()), (403, "Forbidden.NoPermission"));

    // A date 20 minutes old, signed as such, is too skewed.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(20 * 60);
    let date = kmsim::frontends::alibaba::instance::signature::http_date(old);
    let body = app.encrypt_body();
    let headers = signed_headers(&app.signing, &app.client_key_id, "Encrypt", &body, Some(&date)).unwrap();
    let mut stale =
        http::Request::post(format!("http://{}/", app.server.addr)).body(Full::new(Bytes::from(body))).unwrap();
    stale.headers_mut().extend(headers);
    let (status, body) = send(stale).await;
    assert_eq!((status, error_of(status, &body).error_code.as_str()), (400, "RequestTimeTooSkewed"));
    app.server.stop().await;
}
