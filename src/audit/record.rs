//! The native audit record: one per call, success or failure.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::json;
use crate::clock::SimTime;
use crate::context::{CallContext, NestedKind, Principal, TrailFacts};
use crate::engine::KmsError;
use crate::kernel::OpSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    /// The name serde gives it, which every rendering uses too.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "Success",
            Outcome::Failure => "Failure",
        }
    }
}

/// One audit record. It holds sizes, never contents: no plaintext, ciphertext,
/// data key or key material ever reaches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub event_id: String,
    pub event_time: SimTime,
    pub event_name: String,
    pub action: String,
    pub event_rw: String,
    /// `ApiCall`, or `AliyunServiceEvent` for internal operations.
    pub event_type: String,
    pub service_name: String,
    pub region: String,
    pub account_id: String,
    pub resource_type: String,
    pub key_id: String,
    pub key_arn: String,
    pub key_spec: String,
    pub key_version_id: String,
    pub outcome: Outcome,
    pub error_code: String,
    pub error_message: String,
    /// The error code the client received where its API names errors otherwise (AWS's
    /// `DisabledException` for `Rejected.Disabled`); empty where it is `error_code` itself.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_error_code: String,
    pub http_status: u16,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub plaintext_bytes: Option<u64>,
    pub ciphertext_bytes: Option<u64>,
    #[serde(default)]
    pub message_bytes: Option<u64>,
    #[serde(default)]
    pub signature_bytes: Option<u64>,
    #[serde(default)]
    pub mac_bytes: Option<u64>,
    pub client_ip: String,
    pub client_port: u16,
    pub user_agent: String,
    /// The host name the client called, where its front end knew it (ActionTrail's `eventSource`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    /// The front end the call came through (`grpc`, `alibaba`, `aws`, `console`, …): what the User-Agent
    /// cannot say for sure. Empty for kmsim's own work (the scheduler's rotations and deletions).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub frontend: String,
    /// The AWS account a call through AWS's API addressed (`--aws-account-id`): its ARNs and its CloudTrail
    /// rendering name that account, as AWS would log the call. Empty for every other front end's calls.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub aws_account_id: String,
    pub access_key_id: String,
    /// Who made the call, in ActionTrail's userIdentity terms.
    #[serde(default)]
    pub user_identity: UserIdentity,
    /// Given by the server, unique per call (shared only by the calls one call made on its caller's behalf).
    pub request_id: String,
    /// The id the client sent (`x-request-id`) for its own correlation; never the server's request id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_request_id: String,
    pub latency_us: u64,
    pub request_parameters: Value,
    pub response_elements: Value,
    pub referenced_keys: Vec<String>,
    /// The secret the call was about (resource type `kms_secret`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_arn: String,
    /// The service that made this call on the caller's behalf (`SecretsManager`
    /// for the Encrypt and Decrypt behind a secret's value); empty for the caller's own calls.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub invoked_by: String,
    /// The KMS instance of the key; absent for default keys.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance_id: String,
    /// The fault that made this call fail or slowed it (native format only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected_fault: Option<String>,
}

/// Actions whose calls are cryptographic: their responses are nothing but
/// cryptographic results (CloudTrail logs no response elements for them, and
/// trails can leave them out).
pub const CRYPTOGRAPHIC_ACTIONS: &[&str] = &[
    "kms.encrypt",
    "kms.decrypt",
    "kms.sign",
    "kms.verify",
    "kms.hmac",
    "kms.verify_hmac",
    "kms.generate_random",
    "kms.export",
];

/// `invokedBy` of the calls Secrets Manager makes for its callers.
pub const INVOKED_BY_SECRETS_MANAGER: &str = "SecretsManager";

/// A UUID (version 7) whose time is the record's simulated event time. Ids in
/// time order make the store's unique index on them grow at its right edge,
/// where random (version 4) ids dirtied a random index page per record, which
/// was most of what a durable commit wrote; the time in the id is the event
/// time, not a wall clock a reader could mistake for it.
pub fn event_id(at: SimTime) -> String {
    let millis = u64::try_from(at.millis()).unwrap_or(0);
    // The thread's generator, not the uuid crate's system call per id: this runs on every call.
    let random = crate::engine::crypto::random_array::<10>();
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid().to_string()
}

impl AuditRecord {
    pub fn is_cryptographic(&self) -> bool {
        CRYPTOGRAPHIC_ACTIONS.contains(&self.action.as_str())
    }

    /// The record's JSON text, exactly as `serde_json` writes it (the
    /// canonical encoding the chain hashes), written directly because every
    /// call's record is encoded at least once.
    pub fn to_json(&self) -> String {
        let mut text = json::Text::with_capacity(1536);
        self.describe(&mut text);
        text.into_string()
    }

    /// Describes the record, member by member as serde serialises it, to `s`.
    pub fn describe(&self, s: &mut impl json::Sink) {
        // Destructured in full, so a new field does not compile until it is written here.
        let AuditRecord {
            event_id,
            event_time,
            event_name,
            action,
            event_rw,
            event_type,
            service_name,
            region,
            account_id,
            resource_type,
            key_id,
            key_arn,
            key_spec,
            key_version_id,
            outcome,
            error_code,
            error_message,
            client_error_code,
            http_status,
            request_bytes,
            response_bytes,
            plaintext_bytes,
            ciphertext_bytes,
            message_bytes,
            signature_bytes,
            mac_bytes,
            client_ip,
            client_port,
            user_agent,
            endpoint,
            frontend,
            aws_account_id,
            access_key_id,
            user_identity,
            request_id,
            client_request_id,
            latency_us,
            request_parameters,
            response_elements,
            referenced_keys,
            secret_name,
            secret_arn,
            invoked_by,
            instance_id,
            injected_fault,
        } = self;
        s.begin_object();
        s.str_member("eventId", event_id);
        s.name("eventTime");
        s.i64(event_time.millis());
        for (name, value) in [
            ("eventName", event_name),
            ("action", action),
            ("eventRw", event_rw),
            ("eventType", event_type),
            ("serviceName", service_name),
            ("region", region),
            ("accountId", account_id),
            ("resourceType", resource_type),
            ("keyId", key_id),
            ("keyArn", key_arn),
            ("keySpec", key_spec),
            ("keyVersionId", key_version_id),
        ] {
            s.str_member(name, value);
        }
        s.str_member("outcome", outcome.as_str());
        s.str_member("errorCode", error_code);
        s.str_member("errorMessage", error_message);
        if !client_error_code.is_empty() {
            s.str_member("clientErrorCode", client_error_code);
        }
        s.u64_member("httpStatus", u64::from(*http_status));
        s.u64_member("requestBytes", *request_bytes);
        s.u64_member("responseBytes", *response_bytes);
        s.opt_u64_member("plaintextBytes", *plaintext_bytes);
        s.opt_u64_member("ciphertextBytes", *ciphertext_bytes);
        s.opt_u64_member("messageBytes", *message_bytes);
        s.opt_u64_member("signatureBytes", *signature_bytes);
        s.opt_u64_member("macBytes", *mac_bytes);
        s.str_member("clientIp", client_ip);
        s.u64_member("clientPort", u64::from(*client_port));
        s.str_member("userAgent", user_agent);
        if !endpoint.is_empty() {
            s.str_member("endpoint", endpoint);
        }
        if !frontend.is_empty() {
            s.str_member("frontend", frontend);
        }
        if !aws_account_id.is_empty() {
            s.str_member("awsAccountId", aws_account_id);
        }
        s.str_member("accessKeyId", access_key_id);
        let UserIdentity { kind, principal_id, account_id, access_key_id, user_name } = user_identity;
        s.name("userIdentity");
        s.begin_object();
        s.str_member("type", kind);
        s.str_member("principalId", principal_id);
        s.str_member("accountId", account_id);
        s.str_member("accessKeyId", access_key_id);
        s.str_member("userName", user_name);
        s.end_object();
        s.str_member("requestId", request_id);
        if !client_request_id.is_empty() {
            s.str_member("clientRequestId", client_request_id);
        }
        s.u64_member("latencyUs", *latency_us);
        s.value_member("requestParameters", request_parameters);
        s.value_member("responseElements", response_elements);
        s.name("referencedKeys");
        s.strings(referenced_keys.iter().map(String::as_str));
        for (name, value) in [
            ("secretName", secret_name),
            ("secretArn", secret_arn),
            ("invokedBy", invoked_by),
            ("instanceId", instance_id),
        ] {
            if !value.is_empty() {
                s.str_member(name, value);
            }
        }
        if let Some(fault) = injected_fault {
            s.str_member("injectedFault", fault);
        }
        s.end_object();
    }
}

/// The caller, as ActionTrail's `userIdentity` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// `root-account`, `ram-user`, `assumed-role`, or `system` for kmsim's own work.
    #[serde(rename = "type")]
    pub kind: String,
    pub principal_id: String,
    pub account_id: String,
    pub access_key_id: String,
    pub user_name: String,
}

impl UserIdentity {
    /// The caller as authentication established it; kmsim's own work is `system`.
    fn of(cx: &CallContext, event_type: crate::kernel::catalogue::EventType) -> UserIdentity {
        let account_id = cx.account_id.clone();
        let access_key_id = cx.access_key_id.clone();
        if event_type == crate::kernel::catalogue::EventType::ServiceEvent {
            return UserIdentity { kind: "system".into(), account_id, ..Default::default() };
        }
        let (kind, principal_id, user_name) = match &cx.principal {
            Principal::Account | Principal::Admin => ("root-account", account_id.clone(), "root".to_owned()),
            Principal::Unverified => ("ram-user", access_key_id.clone(), String::new()),
            // CloudTrail's `Unknown`: nobody the trail can name.
            Principal::Anonymous => ("anonymous", String::new(), String::new()),
            Principal::User { name, user_id } => ("ram-user", user_id.clone(), name.clone()),
            // An AAP's ClientKey acts like a role session: CloudTrail renders it as AssumedRole.
            Principal::Aap { name, .. } => ("assumed-role", format!("aap/{name}"), name.clone()),
        };
        UserIdentity { kind: kind.into(), principal_id, account_id, access_key_id, user_name }
    }
}

/// What the call sent and got back, in sizes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PayloadSizes {
    pub request_bytes: u64,
    pub response_bytes: u64,
}

impl AuditRecord {
    /// The record of an API call, from its context, what it learnt, and how it ended.
    pub fn for_call(
        op: &OpSpec,
        cx: &CallContext,
        request_parameters: Value,
        sizes: PayloadSizes,
        error: Option<&KmsError>,
    ) -> AuditRecord {
        AuditRecord::from_facts(op, cx, cx.trail.snapshot(), request_parameters, sizes, error)
    }

    /// The records of the calls an operation made on its caller's behalf
    /// (the Decrypt of a secret's value): the caller's, with the request id
    /// of the call `op` that made them, so the two correlate.
    pub fn nested_calls(op: &OpSpec, cx: &CallContext) -> Vec<AuditRecord> {
        cx.trail
            .snapshot()
            .nested
            .into_iter()
            .map(|call| {
                let spec = match call.kind {
                    NestedKind::CreateKey => OpSpec::CREATE_KEY,
                    NestedKind::Encrypt => OpSpec::ENCRYPT,
                    NestedKind::Decrypt => OpSpec::DECRYPT,
                };
                // Work kmsim does on its own stays kmsim's own, nested calls included.
                let spec = OpSpec { event_type: op.event_type, ..spec };
                let sizes = PayloadSizes::default();
                let mut record =
                    AuditRecord::from_facts(&spec, cx, call.facts, call.request_parameters, sizes, call.error.as_ref());
                record.invoked_by = INVOKED_BY_SECRETS_MANAGER.to_owned();
                record
            })
            .collect()
    }

    fn from_facts(
        op: &OpSpec,
        cx: &CallContext,
        facts: TrailFacts,
        request_parameters: Value,
        sizes: PayloadSizes,
        error: Option<&KmsError>,
    ) -> AuditRecord {
        let mut response_elements = facts.response_elements;
        // Management calls name their key even when the API itself returns nothing.
        if op.rw == crate::kernel::catalogue::ReadWrite::Write && !facts.key_arn.is_empty() && error.is_none() {
            response_elements.entry("KeyId").or_insert_with(|| Value::String(facts.key_arn.clone()));
        }
        AuditRecord {
            event_id: event_id(cx.received_at),
            event_time: cx.received_at,
            event_name: if cx.called_as.is_empty() { op.event_name } else { cx.called_as }.to_owned(),
            action: op.action.to_owned(),
            event_rw: op.rw.as_str().to_owned(),
            event_type: op.event_type.as_str().to_owned(),
            service_name: op.service.as_str().to_owned(),
            region: cx.region.clone(),
            account_id: cx.account_id.clone(),
            resource_type: op.resource_type.to_owned(),
            key_id: facts.key_id,
            key_arn: facts.key_arn,
            key_spec: facts.key_spec,
            key_version_id: facts.key_version_id,
            outcome: if error.is_some() { Outcome::Failure } else { Outcome::Success },
            error_code: error.map(|e| e.code.as_str().to_owned()).unwrap_or_default(),
            error_message: error.map(|e| e.message.clone()).unwrap_or_default(),
            http_status: error.map_or(200, |e| (cx.wire_error)(e).status),
            client_error_code: error
                .map(|e| (cx.wire_error)(e).code)
                .filter(|code| error.is_some_and(|e| *code != e.code.as_str()))
                .unwrap_or_default()
                .to_owned(),
            request_bytes: sizes.request_bytes,
            response_bytes: sizes.response_bytes,
            plaintext_bytes: facts.plaintext_bytes,
            ciphertext_bytes: facts.ciphertext_bytes,
            message_bytes: facts.message_bytes,
            signature_bytes: facts.signature_bytes,
            mac_bytes: facts.mac_bytes,
            client_ip: cx.client.map(|a| a.ip().to_string()).unwrap_or_default(),
            client_port: cx.client.map_or(0, |a| a.port()),
            user_agent: cx.user_agent.clone(),
            endpoint: cx.endpoint.clone(),
            frontend: cx.frontend.to_owned(),
            aws_account_id: cx.aws_account_id.clone(),
            access_key_id: cx.access_key_id.clone(),
            user_identity: UserIdentity::of(cx, op.event_type),
            request_id: cx.request_id.clone(),
            client_request_id: cx.client_request_id.clone(),
            latency_us: u64::try_from(cx.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            request_parameters: bounded_parameters(request_parameters),
            response_elements: Value::Object(response_elements),
            referenced_keys: facts.referenced_keys,
            secret_name: facts.secret_name,
            secret_arn: facts.secret_arn,
            invoked_by: String::new(),
            instance_id: facts.instance_id.unwrap_or_default(),
            injected_fault: facts.injected_fault,
        }
    }
}

/// The most of one request parameter a record keeps, in bytes: room for any
/// policy document a call carries, while a client cannot make one record (and
/// so the trail, a page of it, or the live tail) as large as its request.
pub const MAX_PARAMETER_BYTES: usize = 16 * 1024;

/// Request parameters as a record keeps them: one longer than
/// [`MAX_PARAMETER_BYTES`] is cut to that (a string, ending `…`; for a map or a
/// list, of its JSON text), and its full length kept beside it as
/// `<Name>OriginalBytes`, so a reader knows what the call really sent.
fn bounded_parameters(parameters: Value) -> Value {
    let Value::Object(parameters) = parameters else { return parameters };
    let mut bounded = serde_json::Map::new();
    for (name, value) in parameters {
        let text = match &value {
            Value::String(text) => std::borrow::Cow::Borrowed(text.as_str()),
            other => std::borrow::Cow::Owned(other.to_string()),
        };
        if text.len() <= MAX_PARAMETER_BYTES {
            bounded.insert(name, value);
            continue;
        }
        let mut cut = MAX_PARAMETER_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let original = text.len();
        let kept = format!("{}…", &text[..cut]);
        bounded.insert(format!("{name}OriginalBytes"), Value::from(original));
        bounded.insert(name, Value::String(kept));
    }
    Value::Object(bounded)
}

/// Filters of ListAuditEvents; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub key_id: String,
    pub event_name: String,
    pub error_code: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_oversized_parameter_is_cut_and_its_length_kept() {
        let context: serde_json::Map<String, Value> =
            (0..20_000).map(|i| (format!("k{i}"), Value::String("v".into()))).collect();
        let params =
            serde_json::json!({"KeyId": "key-1", "EncryptionContext": context, "Description": "é".repeat(9000)});
        let original_context = params["EncryptionContext"].to_string().len();
        let bounded = bounded_parameters(params);
        assert_eq!(bounded["KeyId"], "key-1", "a short parameter is kept whole");
        let kept = bounded["EncryptionContext"].as_str().expect("cut to text");
        assert!(kept.len() <= MAX_PARAMETER_BYTES + '…'.len_utf8() && kept.ends_with('…'));
        assert_eq!(bounded["EncryptionContextOriginalBytes"], original_context);
        assert_eq!(bounded["DescriptionOriginalBytes"], 18_000, "UTF-8 bytes, cut on a character boundary");
    }

    fn any_record() -> impl Strategy<Value = AuditRecord> {
        // Text with the odd character to escape, and optional members both present and absent.
        let text = || "[ -~é✓]{0,12}[\"\\\\\u{0}-\u{1f}]?[ -~]{0,4}";
        let number = || prop::option::of(any::<u64>());
        (
            prop::collection::vec(text(), 8),
            (number(), number(), number(), number(), number()),
            (any::<u16>(), any::<u16>(), any::<u64>(), any::<i64>(), any::<bool>()),
            (prop::collection::vec(text(), 0..3), prop::option::of(text())),
        )
            .prop_map(|(texts, sizes, (status, port, latency, time, failed), (referenced, fault))| {
                let cx = CallContext::internal("cn-hangzhou", "1192853035118460", SimTime(time));
                let parameters = serde_json::json!({ "KeyId": texts[0], "Context": { texts[1].clone(): texts[2] } });
                let mut record = AuditRecord::for_call(
                    &crate::kernel::OpSpec::ENCRYPT,
                    &cx,
                    parameters,
                    PayloadSizes { request_bytes: u64::from(status), response_bytes: u64::from(port) },
                    None,
                );
                record.event_id = texts[3].clone();
                record.user_agent = texts[4].clone();
                record.user_identity.user_name = texts[5].clone();
                (record.secret_name, record.invoked_by) = (texts[6].clone(), texts[7].clone());
                (record.plaintext_bytes, record.ciphertext_bytes, record.message_bytes) = (sizes.0, sizes.1, sizes.2);
                (record.signature_bytes, record.mac_bytes) = (sizes.3, sizes.4);
                (record.http_status, record.client_port, record.latency_us) = (status, port, latency);
                record.outcome = if failed { Outcome::Failure } else { Outcome::Success };
                (record.referenced_keys, record.injected_fault) = (referenced, fault);
                record
            })
    }

    proptest! {
        #[test]
        fn a_records_text_is_what_serde_json_writes(record in any_record()) {
            prop_assert_eq!(record.to_json(), serde_json::to_string(&record).unwrap());
        }

        #[test]
        fn a_records_native_value_is_its_serde_value(record in any_record()) {
            let native = crate::audit::formats::render(&record, crate::audit::formats::Format::Native);
            prop_assert_eq!(native, serde_json::to_value(&record).unwrap());
        }
    }

    #[test]
    fn event_ids_carry_the_event_time_and_sort_by_it() {
        let at = SimTime(1_767_225_600_123);
        let id = uuid::Uuid::parse_str(&event_id(at)).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs as i64 * 1000 + i64::from(nanos / 1_000_000), at.millis());
        assert_ne!(event_id(at), event_id(at), "ids of one millisecond still differ");
        let ids: Vec<String> = (0..50).map(|ms| event_id(SimTime(at.millis() + ms))).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "later events sort after earlier ones");
    }
}
