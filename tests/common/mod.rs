//! Shared test harness: a real kmsim server on 127.0.0.1:0 and generated
//! tonic clients talking to it.
#![allow(dead_code)]

pub mod aws;
pub mod cli;
pub mod openapi;
pub mod pki;
pub mod process;

use std::path::Path;

use kmsim::proto as pb;
use kmsim::proto::audit_service_client::AuditServiceClient;
use kmsim::proto::event_service_client::EventServiceClient;
use kmsim::proto::instance_service_client::InstanceServiceClient;
use kmsim::proto::key_management_service_client::KeyManagementServiceClient;
use kmsim::proto::secrets_manager_service_client::SecretsManagerServiceClient;
use kmsim::proto::simulation_service_client::SimulationServiceClient;
use kmsim::server::{RunningServer, ServerConfig};
use kmsim::store::Location;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub type Kms = KeyManagementServiceClient<Channel>;
pub type Instances = InstanceServiceClient<Channel>;

pub const TEST_USER_AGENT: &str = "kmsim-tests/1.0";

pub struct TestServer {
    pub addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    running: Option<RunningServer>,
}

impl TestServer {
    /// A server whose store lives only in memory.
    pub async fn start() -> TestServer {
        Self::start_with(Location::InMemory).await
    }

    /// A server whose durable store lives in `dir`.
    pub async fn start_in(dir: &Path) -> TestServer {
        Self::start_with(Location::Dir(dir.to_path_buf())).await
    }

    async fn start_with(store: Location) -> TestServer {
        Self::start_config(ServerConfig { store, ..ServerConfig::default() }).await
    }

    /// A server started from `config` (its listen address is used as given; tests keep 127.0.0.1:0).
    pub async fn start_config(config: ServerConfig) -> TestServer {
        let (stop, stopped) = oneshot::channel::<()>();
        let running = kmsim::server::start(config, async move {
            let _ = stopped.await;
        })
        .await
        .expect("server starts");
        TestServer { addr: running.local_addr, stop: Some(stop), running: Some(running) }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint())
            .unwrap()
            .user_agent(TEST_USER_AGENT)
            .unwrap()
            .connect()
            .await
            .expect("connects")
    }

    pub async fn kms(&self) -> Kms {
        KeyManagementServiceClient::new(self.channel().await)
    }

    pub async fn audit(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.channel().await)
    }

    pub async fn simulation(&self) -> SimulationServiceClient<Channel> {
        SimulationServiceClient::new(self.channel().await)
    }

    pub async fn events(&self) -> EventServiceClient<Channel> {
        EventServiceClient::new(self.channel().await)
    }

    pub async fn instances(&self) -> Instances {
        InstanceServiceClient::new(self.channel().await)
    }

    pub async fn secrets(&self) -> SecretsManagerServiceClient<Channel> {
        SecretsManagerServiceClient::new(self.channel().await)
    }

    /// Where `/metrics` is served, for a server started with `metrics_listen`.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.running.as_ref().and_then(|running| running.metrics_addr)
    }

    /// Moves the simulation clock forward by `days`; returns once the work that fell due is done.
    pub async fn advance_days(&self, days: i64) {
        self.advance_secs(days * 86_400).await;
    }

    /// Moves the simulation clock forward by `secs`; returns once the work that fell due is done.
    pub async fn advance_secs(&self, secs: i64) {
        let advance = prost_types::Duration { seconds: secs, nanos: 0 };
        let request = pb::AdvanceClockRequest { advance: Some(advance) };
        self.simulation().await.advance_clock(request).await.expect("advance clock");
    }

    /// The simulated now.
    pub async fn sim_now(&self) -> kmsim::clock::SimTime {
        let clock = self.simulation().await.get_clock(pb::GetClockRequest {}).await.expect("get clock").into_inner();
        let now = clock.now.expect("a clock reading");
        kmsim::clock::SimTime(now.seconds * 1000 + i64::from(now.nanos) / 1_000_000)
    }

    /// Stops the server gracefully and waits until its store is closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            running.wait().await.expect("server stops cleanly");
        }
    }
}

/// The envelope of a key event (`Key:DeleteKey:*`), field by field in the order
/// CloudMonitor prints it, transcribed from the seed (001).
pub const KEY_EVENT_FIELDS: [&str; 11] = [
    "id",
    "status",
    "instanceName",
    "resourceId",
    "content",
    "product",
    "time",
    "level",
    "regionId",
    "groupId",
    "name",
];

/// The envelope of an instance event (`Instance:QPS:Reminder`, `Instance:KeySync:*`): the
/// fields the seed (001) prints, in its order, then `id`, `time` and `groupId`, which every
/// event carries (reference: system-events.md) but the seed's instance examples leave out.
pub const INSTANCE_EVENT_FIELDS: [&str; 11] = [
    "product",
    "resourceId",
    "level",
    "instanceName",
    "regionId",
    "name",
    "content",
    "status",
    "id",
    "time",
    "groupId",
];

/// The field names of a JSON object, in order.
pub fn field_names(value: &serde_json::Value) -> Vec<&str> {
    value.as_object().unwrap_or_else(|| panic!("not an object: {value:#}")).keys().map(String::as_str).collect()
}

/// `message` as a call made in `region` (request metadata `x-kms-region`).
pub fn in_region<T>(region: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("x-kms-region", region.parse().expect("a region is ASCII"));
    request
}

/// Buys a KMS instance of `spec` QPS in `region`, expiring at `expire_time` ("" for a year from now).
pub async fn create_instance(instances: &mut Instances, region: &str, spec: i64, expire_time: &str) -> pb::KmsInstance {
    let request = pb::CreateKmsInstanceRequest {
        region: region.to_owned(),
        spec,
        expire_time: expire_time.to_owned(),
        ..Default::default()
    };
    instances.create_kms_instance(request).await.expect("create instance").into_inner().kms_instance.unwrap()
}

/// Creates a key in `instance_id`, from that instance's `region`; returns its id.
pub async fn create_instance_key(kms: &mut Kms, region: &str, instance_id: &str) -> String {
    let request = pb::CreateKeyRequest { dkms_instance_id: instance_id.to_owned(), ..Default::default() };
    let response = kms.create_key(in_region(region, request)).await.expect("create key in instance");
    response.into_inner().key_metadata.unwrap().key_id
}

pub async fn encrypt(kms: &mut Kms, region: &str, key_id: &str, plaintext: &[u8]) -> Vec<u8> {
    let request = pb::EncryptRequest { key_id: key_id.to_owned(), plaintext: plaintext.to_vec(), ..Default::default() };
    kms.encrypt(in_region(region, request)).await.expect("encrypt").into_inner().ciphertext_blob
}

pub fn decrypt_request(ciphertext: &[u8]) -> pb::DecryptRequest {
    pb::DecryptRequest { ciphertext_blob: ciphertext.to_vec(), ..Default::default() }
}

/// The system events named `name` ("" for all), newest first.
pub async fn list_system_events(server: &TestServer, name: &str) -> Vec<pb::SystemEvent> {
    let request = pb::ListSystemEventsRequest { name: name.to_owned(), page_size: 1000, ..Default::default() };
    server.events().await.list_system_events(request).await.expect("list system events").into_inner().events
}

/// Every audit record rendered in `format` (native, actiontrail, cloudtrail), newest first, with its native form.
pub async fn audit_renderings(server: &TestServer, format: &str) -> Vec<(pb::AuditEvent, serde_json::Value)> {
    audit_renderings_over(server.channel().await, format).await
}

/// Every record with its rendering in `format`, read over `channel` (plaintext or TLS).
pub async fn audit_renderings_over(channel: Channel, format: &str) -> Vec<(pb::AuditEvent, serde_json::Value)> {
    let mut audit = AuditServiceClient::new(channel);
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::QueryAuditEventsRequest {
            format: format.to_owned(),
            page_size: 1000,
            page_token,
            ..Default::default()
        };
        let page = audit.query_audit_events(request).await.expect("query audit events").into_inner();
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

/// The Alibaba error code a failed call carried in `x-kms-error-code`.
pub fn error_code(status: &tonic::Status) -> String {
    metadata(status, "x-kms-error-code")
}

pub fn http_status(status: &tonic::Status) -> String {
    metadata(status, "x-kms-http-status")
}

/// The request id the server gave a failed call (`x-kms-request-id`).
pub fn answered_request_id(status: &tonic::Status) -> String {
    metadata(status, "x-kms-request-id")
}

fn metadata(status: &tonic::Status, name: &str) -> String {
    status.metadata().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Creates a key of `spec` ("" for the default) and returns its id.
pub async fn create_key(kms: &mut Kms, spec: &str) -> String {
    let request = pb::CreateKeyRequest { key_spec: spec.to_owned(), ..Default::default() };
    kms.create_key(request).await.expect("create key").into_inner().key_metadata.unwrap().key_id
}

/// Creates a key with origin EXTERNAL, which starts in PendingImport.
pub async fn create_external_key(kms: &mut Kms) -> String {
    let request = pb::CreateKeyRequest { origin: "EXTERNAL".to_owned(), ..Default::default() };
    kms.create_key(request).await.expect("create external key").into_inner().key_metadata.unwrap().key_id
}

pub async fn key_state(kms: &mut Kms, key_id: &str) -> String {
    let request = pb::DescribeKeyRequest { key_id: key_id.to_owned() };
    kms.describe_key(request).await.expect("describe").into_inner().key_metadata.unwrap().key_state
}

/// Every audit record, newest first.
pub async fn all_audit_events(server: &TestServer) -> Vec<pb::AuditEvent> {
    audit_events_over(server.channel().await).await
}

/// Every audit record, newest first, read over `channel` (plaintext or TLS).
pub async fn audit_events_over(channel: Channel) -> Vec<pb::AuditEvent> {
    let mut audit = AuditServiceClient::new(channel);
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListAuditEventsRequest { page_size: 1000, page_token, ..Default::default() };
        let page = audit.list_audit_events(request).await.expect("list audit events").into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}

/// Asserts a failure's gRPC code, Alibaba code, HTTP status, ErrorInfo (reason
/// and domain `kmsim`), request id, and that the message names `param`.
pub fn assert_error(
    status: &tonic::Status,
    grpc: tonic::Code,
    code: &str,
    http: &str,
    param: Option<&str>,
    what: &str,
) {
    use tonic_types::StatusExt;
    assert_ne!(status.code(), tonic::Code::Internal, "{what}: answered INTERNAL: {status:?}");
    assert_eq!(status.code(), grpc, "{what}: {status:?}");
    assert_eq!(error_code(status), code, "{what}: {status:?}");
    assert_eq!(http_status(status), http, "{what}: {status:?}");
    assert!(!metadata(status, "x-kms-request-id").is_empty(), "{what}: no request id: {status:?}");
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("{what}: no ErrorInfo in {status:?}"));
    assert_eq!((info.reason.as_str(), info.domain.as_str()), (code, "kmsim"), "{what}");
    if let Some(param) = param {
        assert!(
            status.message().contains(&format!("\"{param}\"")),
            "{what}: message does not name {param}: {status:?}"
        );
    }
}

pub fn assert_invalid(status: &tonic::Status, param: &str, what: &str) {
    assert_error(status, tonic::Code::InvalidArgument, "InvalidParameter", "400", Some(param), what);
}

pub fn assert_missing(status: &tonic::Status, param: &str, what: &str) {
    assert_error(status, tonic::Code::InvalidArgument, "MissingParameter", "400", Some(param), what);
}

/// Opens a kmsim ciphertext blob without kmsim, as docs/architecture.md describes it:
/// version 1, key id length, key id, 16-byte version id, 12-byte nonce, 8-byte
/// header tag, then AES-GCM output; the associated data is everything before
/// the AES-GCM output followed by the context (a 4-byte big-endian count, then
/// each sorted key and value with a 4-byte big-endian length).
/// The AEAD's associated data, written from docs/ciphertext.md: the header, then
/// the context as a 4-byte big-endian count and each sorted key and value with a
/// 4-byte big-endian length.
pub fn associated_data(header: &[u8], context: &[(&str, &str)]) -> Vec<u8> {
    let mut aad = header.to_vec();
    let mut sorted = context.to_vec();
    sorted.sort();
    aad.extend_from_slice(&(sorted.len() as u32).to_be_bytes());
    for (key, value) in sorted {
        for part in [key, value] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
    }
    aad
}

pub fn open_outside(blob: &[u8], material: &[u8; 32], context: &[(&str, &str)]) -> Vec<u8> {
    assert_eq!(blob[0], 1, "format version");
    let id_len = usize::from(blob[1]);
    let nonce_at = 2 + id_len + 16;
    let header_len = nonce_at + 12 + 8;
    let aad = associated_data(&blob[..header_len], context);
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(material).unwrap();
    let nonce = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::try_from(&blob[nonce_at..nonce_at + 12]).unwrap();
    cipher.decrypt(&nonce, Payload { msg: &blob[header_len..], aad: &aad }).expect("opens outside kmsim")
}

// --- auth helpers ---

/// The admin credential the auth tests start servers with.
pub const ADMIN_KEY_ID: &str = "LTAIkmsimTestsAdmin00001";
pub const ADMIN_SECRET: &str = "kmsimTestsAdminSecret0123456789abcdef";

pub fn admin_credentials() -> kmsim::credentials::Credentials {
    kmsim::credentials::Credentials::new(ADMIN_KEY_ID, ADMIN_SECRET)
}

/// An in-memory server config with `--auth required` and the test admin.
pub fn auth_required_config() -> ServerConfig {
    ServerConfig {
        auth: kmsim::server::AuthMode::Required,
        admin: Some(admin_credentials()),
        ..ServerConfig::default()
    }
}

/// A channel whose every call is signed with one credential.
pub type SignedChannel = kmsim::frontends::grpc::signing::SigningService<Channel>;

/// Every kmsim client, each signing its calls with the same credential.
pub struct SignedClients {
    pub credentials: kmsim::credentials::Credentials,
    pub kms: KeyManagementServiceClient<SignedChannel>,
    pub access: kmsim::proto::access_service_client::AccessServiceClient<SignedChannel>,
    pub audit: AuditServiceClient<SignedChannel>,
    pub events: EventServiceClient<SignedChannel>,
    pub simulation: SimulationServiceClient<SignedChannel>,
    pub instances: InstanceServiceClient<SignedChannel>,
    pub secrets: SecretsManagerServiceClient<SignedChannel>,
}

impl SignedClients {
    /// Clients over `channel` (plaintext or TLS) signing as `credentials`.
    pub fn on(channel: Channel, credentials: &kmsim::credentials::Credentials) -> SignedClients {
        let layer = kmsim::frontends::grpc::signing::SigningLayer::new(credentials.clone());
        let signed = tower::Layer::layer(&layer, channel);
        SignedClients {
            credentials: credentials.clone(),
            kms: KeyManagementServiceClient::new(signed.clone()),
            access: kmsim::proto::access_service_client::AccessServiceClient::new(signed.clone()),
            audit: AuditServiceClient::new(signed.clone()),
            events: EventServiceClient::new(signed.clone()),
            simulation: SimulationServiceClient::new(signed.clone()),
            instances: InstanceServiceClient::new(signed.clone()),
            secrets: SecretsManagerServiceClient::new(signed),
        }
    }

    /// Clients of `server` signing as `credentials`.
    pub async fn of(server: &TestServer, credentials: &kmsim::credentials::Credentials) -> SignedClients {
        SignedClients::on(server.channel().await, credentials)
    }
}

/// Puts a signature of `message` sent to `path` at `date` (naming no region) into `metadata`, as a client would.
pub fn sign_metadata(
    metadata: &mut tonic::metadata::MetadataMap,
    credentials: &kmsim::credentials::Credentials,
    path: &str,
    date: &str,
    message: &[u8],
) {
    let digest = kmsim::frontends::grpc::signing::message_digest(message);
    let call = kmsim::frontends::grpc::signing::Signed { path, date, region: "", digest: &digest };
    let signature = kmsim::frontends::grpc::signing::signature(credentials.secret.expose(), &call);
    metadata.insert(kmsim::frontends::grpc::headers::ACCESS_KEY_ID, credentials.access_key_id.parse().unwrap());
    metadata.insert(kmsim::frontends::grpc::headers::DATE, date.parse().unwrap());
    metadata.insert(kmsim::frontends::grpc::headers::SIGNATURE, signature.parse().unwrap());
}

/// Creates an AccessKey pair for RAM user `user_name` (created on first use) through `admin`.
pub async fn create_access_key_as(admin: &mut SignedClients, user_name: &str) -> kmsim::credentials::Credentials {
    let request = pb::CreateAccessKeyRequest { user_name: user_name.to_owned() };
    let created = admin.access.create_access_key(request).await.expect("create access key").into_inner();
    let key = created.access_key.expect("the access key");
    assert_eq!(key.user_name, user_name);
    assert_eq!(key.status, "Active");
    kmsim::credentials::Credentials::new(key.access_key_id, created.access_key_secret)
}

/// Creates policy `name` with `document` through `admin`.
pub async fn create_policy_as(admin: &mut SignedClients, name: &str, document: &str) {
    let request = pb::CreatePolicyRequest {
        policy_name: name.to_owned(),
        policy_document: document.to_owned(),
        description: String::new(),
    };
    admin.access.create_policy(request).await.unwrap_or_else(|e| panic!("create policy {name}: {e:?}"));
}

/// Attaches policy `name` to RAM user `user_name` through `admin`.
pub async fn attach_user_policy_as(admin: &mut SignedClients, name: &str, user_name: &str) {
    let request = pb::AttachPolicyRequest {
        policy_name: name.to_owned(),
        principal_type: "User".to_owned(),
        principal_name: user_name.to_owned(),
    };
    admin.access.attach_policy(request).await.unwrap_or_else(|e| panic!("attach {name} to {user_name}: {e:?}"));
}

/// A one-statement identity policy document.
pub fn identity_policy(effect: &str, actions: &[&str], resources: &[&str]) -> String {
    serde_json::json!({
        "Version": "1",
        "Statement": [{"Effect": effect, "Action": actions, "Resource": resources}],
    })
    .to_string()
}

/// Moves the simulation clock forward by `days` with the admin's signature.
pub async fn advance_days_as(admin: &mut SignedClients, days: i64) {
    let advance = prost_types::Duration { seconds: days * 86_400, nanos: 0 };
    admin.simulation.advance_clock(pb::AdvanceClockRequest { advance: Some(advance) }).await.expect("advance clock");
}

/// The simulated now, read with the admin's signature.
pub async fn sim_now_as(admin: &mut SignedClients) -> kmsim::clock::SimTime {
    let clock = admin.simulation.get_clock(pb::GetClockRequest {}).await.expect("get clock").into_inner();
    let now = clock.now.expect("a clock reading");
    kmsim::clock::SimTime(now.seconds * 1000 + i64::from(now.nanos) / 1_000_000)
}

/// Every audit record, newest first, read by `reader` (the admin).
pub async fn audit_events_as(reader: &mut SignedClients) -> Vec<pb::AuditEvent> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListAuditEventsRequest { page_size: 1000, page_token, ..Default::default() };
        let page = reader.audit.list_audit_events(request).await.expect("list audit events").into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}

/// The one audit record of the call made with `x-request-id: request_id` (its `clientRequestId`).
#[track_caller]
pub fn only_record<'a>(events: &'a [pb::AuditEvent], request_id: &str) -> &'a pb::AuditEvent {
    let records: Vec<_> = events.iter().filter(|e| e.client_request_id == request_id).collect();
    assert_eq!(records.len(), 1, "{request_id}: {} audit records, expected exactly one", records.len());
    records[0]
}

/// The system events named `name` ("" for all), newest first, read by `reader` (the admin).
pub async fn system_events_as(reader: &mut SignedClients, name: &str) -> Vec<pb::SystemEvent> {
    let request = pb::ListSystemEventsRequest { name: name.to_owned(), page_size: 1000, ..Default::default() };
    reader.events.list_system_events(request).await.expect("list system events").into_inner().events
}

/// `message` with `x-request-id: request_id`, to find its audit record afterwards.
pub fn with_request_id<T>(request_id: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("x-request-id", request_id.parse().expect("an ASCII request id"));
    request
}

/// Every (service, method, server-streaming?) that kmsim's own proto files declare.
pub fn declared_methods() -> Vec<(String, String, bool)> {
    let set = <prost_types::FileDescriptorSet as prost::Message>::decode(kmsim::proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut methods = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == "kmsim.v1") {
        for service in &file.service {
            for method in &service.method {
                let service_name = format!("kmsim.v1.{}", service.name());
                methods.push((service_name, method.name().to_owned(), method.server_streaming()));
            }
        }
    }
    methods
}

/// An AAP named `name` bound to the KMS instance `instance_id`, with a policy (of the same name) allowing every
/// KMS action: what an application of the instance API is given (tests/dkms_sdk.rs, tests/instance_api.rs).
pub async fn instance_aap(channel: &Channel, name: &str, instance_id: &str) {
    let mut access = kmsim::proto::access_service_client::AccessServiceClient::new(channel.clone());
    let policy = pb::CreatePolicyRequest {
        policy_name: name.to_owned(),
        policy_document: identity_policy("Allow", &["kms:*"], &["*"]),
        ..Default::default()
    };
    access.create_policy(policy).await.expect("create policy");
    let aap = pb::CreateApplicationAccessPointRequest {
        name: name.to_owned(),
        kms_instance_id: instance_id.to_owned(),
        policy_names: vec![name.to_owned()],
        ..Default::default()
    };
    access.create_application_access_point(aap).await.expect("create AAP");
}
