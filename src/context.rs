//! What the engine and the audit trail know about one call: who made it, from
//! where, in which region, and the facts the operation learns as it runs
//! (which key, which version, how many bytes) for its audit record.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::clock::SimTime;
use crate::engine::KmsError;
use crate::engine::key::KeyMeta;

/// One call, as the kernel saw it arrive.
#[derive(Debug)]
pub struct CallContext {
    /// The id the server gave the call.
    pub request_id: String,
    /// The id the client sent for its own correlation, if any.
    pub client_request_id: String,
    pub region: String,
    pub account_id: String,
    pub client: Option<SocketAddr>,
    pub user_agent: String,
    /// The host name the client called, where its front end knows it.
    pub endpoint: String,
    /// The front end the call came through (`grpc`, `alibaba`, `aws`, `console`, …); empty for kmsim's own work.
    pub frontend: &'static str,
    /// The AWS account a call through AWS's API addressed (see `CallMeta::aws_account_id`).
    pub aws_account_id: String,
    /// The AccessKey (or ClientKey) id the call named, verified or not.
    pub access_key_id: String,
    /// Who authentication took the caller for.
    pub principal: Principal,
    pub authenticated_by: AuthMethod,
    /// When the call arrived, on the simulation clock.
    pub received_at: SimTime,
    /// How long the call takes, for its record and the metrics.
    pub started: Stopwatch,
    /// The name the caller used for the operation, if not the catalogue's (see `CallMeta::called_as`).
    pub called_as: &'static str,
    /// The code and status the caller receives for an error, for its record.
    pub wire_error: fn(&KmsError) -> crate::kernel::meta::WireError,
    /// How many grant tokens the call carried; the tokens are checked on arrival and kept nowhere.
    pub grant_tokens: usize,
    /// The KMS instance whose endpoint the call reached (see `CallMeta::served_by_instance`).
    pub served_by_instance: Option<String>,
    pub trail: Trail,
}

impl CallContext {
    /// A context for internal work and unit tests: no client, no credentials,
    /// and no latency, since no caller waits on internal work.
    pub fn internal(region: &str, account_id: &str, now: SimTime) -> Self {
        CallContext {
            request_id: crate::engine::crypto::new_uuid().to_string(),
            client_request_id: String::new(),
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            client: None,
            user_agent: String::new(),
            endpoint: String::new(),
            frontend: "",
            aws_account_id: String::new(),
            access_key_id: String::new(),
            principal: Principal::Account,
            authenticated_by: AuthMethod::None,
            received_at: now,
            started: Stopwatch::Fixed(Duration::ZERO),
            called_as: "",
            wire_error: crate::kernel::meta::table_error,
            grant_tokens: 0,
            served_by_instance: None,
            trail: Trail::default(),
        }
    }

    /// A call the operation makes on the caller's behalf (Secrets Manager
    /// sealing a value under its KMS key): the same caller, request id and
    /// time, with its own trail, audited beside the call that made it.
    pub fn nested(&self) -> CallContext {
        CallContext {
            request_id: self.request_id.clone(),
            client_request_id: self.client_request_id.clone(),
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            client: self.client,
            user_agent: self.user_agent.clone(),
            endpoint: self.endpoint.clone(),
            frontend: self.frontend,
            aws_account_id: self.aws_account_id.clone(),
            access_key_id: self.access_key_id.clone(),
            principal: self.principal.clone(),
            authenticated_by: self.authenticated_by,
            received_at: self.received_at,
            started: self.started,
            // A call made on the caller's behalf is kmsim's own, named as kmsim names it.
            called_as: "",
            wire_error: self.wire_error,
            grant_tokens: self.grant_tokens,
            served_by_instance: self.served_by_instance.clone(),
            trail: Trail::default(),
        }
    }
}

/// Where a call's latency comes from.
#[derive(Debug, Clone, Copy)]
pub enum Stopwatch {
    /// Measured on the monotonic clock from the call's arrival.
    Running(Instant),
    /// Given rather than measured: none for internal work, or the simulated
    /// latency of a generated call (whose wall-clock time means nothing in
    /// simulated time, and would make generated data differ from run to run).
    Fixed(Duration),
}

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch::Running(Instant::now())
    }

    pub fn elapsed(&self) -> Duration {
        match self {
            Stopwatch::Running(since) => since.elapsed(),
            Stopwatch::Fixed(latency) => *latency,
        }
    }
}

/// Who made a call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Principal {
    /// Auth is off and the caller named no AccessKey: the account itself.
    #[default]
    Account,
    /// The caller named an AccessKey that was not (or could not be) verified: auth is off and kmsim
    /// does not know the id, or auth is required and the call was refused. Recorded as given.
    Unverified,
    /// Auth is required and the caller named no credential at all (the call is refused).
    Anonymous,
    /// The admin credential (`--admin-key-file`): the account's root.
    Admin,
    /// A RAM user, by one of its AccessKeys.
    User { name: String, user_id: String },
    /// An application access point, by one of its ClientKeys.
    Aap { name: String, arn: String },
}

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthMethod {
    /// It did not (auth off).
    #[default]
    None,
    /// A request signature under the credential's secret.
    Signature,
    /// A client certificate whose common name names the credential.
    Certificate,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::Signature => "signature",
            AuthMethod::Certificate => "certificate",
        }
    }
}

/// The audit facts an operation gathers while it runs. Failures keep whatever
/// was learnt before the failure, so a rejected call on a disabled key still
/// records which key it was.
#[derive(Debug, Default)]
pub struct Trail(Mutex<TrailFacts>);

/// The facts themselves; see [`Trail`].
#[derive(Debug, Default, Clone)]
pub struct TrailFacts {
    pub key_id: String,
    pub key_arn: String,
    pub key_spec: String,
    pub key_version_id: String,
    /// The KMS instance of the key, whose QPS the call counts against.
    pub instance_id: Option<String>,
    pub plaintext_bytes: Option<u64>,
    pub ciphertext_bytes: Option<u64>,
    /// The digest or message signed, verified or MACed.
    pub message_bytes: Option<u64>,
    pub signature_bytes: Option<u64>,
    pub mac_bytes: Option<u64>,
    /// Other keys the call touched (ReEncrypt's source key), by ARN.
    pub referenced_keys: Vec<String>,
    /// The grant a call retires or revokes, by id: a retirement is authorised on it.
    pub grant_id: String,
    /// Every resource of a call on several at once (TagResources' keys,
    /// BatchGetSecretValue's secrets), by ARN, each once: the call is
    /// authorised on all of them.
    pub batch: Vec<String>,
    pub response_elements: Map<String, Value>,
    /// The secret the call is about, by name and ARN.
    pub secret_name: String,
    pub secret_arn: String,
    /// Calls made on the caller's behalf, each audited as its own record.
    pub nested: Vec<NestedCall>,
    /// Due work the call did itself (SyncKey's sync), each a service event of its own.
    pub tasks: Vec<crate::engine::TaskDone>,
    /// The fault that broke the work the call stands for (a secret rotation's
    /// network call), when the operation drew it rather than admission.
    pub injected_fault: Option<String>,
}

/// What a nested call was, for its audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NestedKind {
    CreateKey,
    Encrypt,
    Decrypt,
}

/// A call made on the caller's behalf and what its own trail learnt.
#[derive(Debug, Clone)]
pub struct NestedCall {
    pub kind: NestedKind,
    pub facts: TrailFacts,
    pub request_parameters: Value,
    pub error: Option<KmsError>,
}

impl Trail {
    fn update(&self, change: impl FnOnce(&mut TrailFacts)) {
        // A poisoned lock only means another thread panicked mid-update; the facts are still usable.
        let mut facts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut facts);
    }

    pub fn key(&self, meta: &KeyMeta) {
        self.update(|f| {
            f.key_id.clone_from(&meta.key_id);
            f.key_arn = meta.arn();
            f.key_spec = meta.spec.as_str().to_owned();
            f.instance_id.clone_from(&meta.instance_id);
        });
    }

    /// A secret call: the secret, and the KMS instance whose quota it counts against.
    pub fn secret(&self, name: &str, arn: String, instance_id: Option<String>) {
        self.update(|f| {
            f.secret_name = name.to_owned();
            f.secret_arn = arn;
            f.instance_id = instance_id;
        });
    }

    /// The KMS instance whose endpoint served the call (the instance API): its
    /// record names it, and its meter counts it, also when the call uses no
    /// key (GenerateRandom). A key or secret the call resolves names its own.
    pub fn served_by(&self, instance_id: &str) {
        self.update(|f| f.instance_id = Some(instance_id.to_owned()));
    }

    /// The resource the call resolved (a key id, or a secret's name) and the
    /// instance it lives in, for admission.
    pub fn resource(&self) -> (String, Option<String>) {
        let facts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let resource = if facts.secret_name.is_empty() { &facts.key_id } else { &facts.secret_name };
        (resource.clone(), facts.instance_id.clone())
    }

    /// Records a call made on the caller's behalf with `cx`, a context from [`CallContext::nested`].
    pub fn nested(&self, kind: NestedKind, cx: CallContext, request_parameters: Value, error: Option<KmsError>) {
        let facts = cx.trail.snapshot();
        self.update(|f| f.nested.push(NestedCall { kind, facts, request_parameters, error }));
    }

    /// Records a task the call did itself, audited beside it as the scheduler would have.
    pub fn task_done(&self, task: crate::engine::TaskDone) {
        self.update(|f| f.tasks.push(task));
    }

    pub fn injected_fault(&self, fault_id: String) {
        self.update(|f| f.injected_fault = Some(fault_id));
    }

    pub fn key_version(&self, version_id: uuid::Uuid) {
        self.update(|f| f.key_version_id = version_id.to_string());
    }

    pub fn plaintext_bytes(&self, n: usize) {
        self.update(|f| f.plaintext_bytes = Some(n as u64));
    }

    pub fn ciphertext_bytes(&self, n: usize) {
        self.update(|f| f.ciphertext_bytes = Some(n as u64));
    }

    pub fn message_bytes(&self, n: usize) {
        self.update(|f| f.message_bytes = Some(n as u64));
    }

    pub fn signature_bytes(&self, n: usize) {
        self.update(|f| f.signature_bytes = Some(n as u64));
    }

    pub fn mac_bytes(&self, n: usize) {
        self.update(|f| f.mac_bytes = Some(n as u64));
    }

    /// One resource of a call on several at once.
    pub fn batch_resource(&self, arn: String) {
        self.update(|f| {
            if !f.batch.contains(&arn) {
                f.batch.push(arn);
            }
        });
    }

    pub fn referenced_key(&self, arn: String) {
        self.update(|f| f.referenced_keys.push(arn));
    }

    pub fn grant(&self, grant_id: &str) {
        self.update(|f| grant_id.clone_into(&mut f.grant_id));
    }

    pub fn response_element(&self, name: &str, value: impl Into<Value>) {
        self.update(|f| {
            f.response_elements.insert(name.to_owned(), value.into());
        });
    }

    pub fn snapshot(&self) -> TrailFacts {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}
