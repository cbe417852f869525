//! Renderings of an audit record: native JSON, ActionTrail and CloudTrail.
//!
//! This module owns the mapping from kmsim's native [`AuditRecord`] to the two public shapes that log pipelines
//! already understand: Alibaba ActionTrail (what KMS on Alibaba Cloud delivers) and AWS CloudTrail (what most SIEM
//! rules are written against). Every rendering is derived from the record alone, and the record holds sizes, never
//! contents, so no rendering can carry plaintext, ciphertext or key material either.

use serde_json::{Map, Value, json};

use super::aws;
use super::json::{self, Sink};
use super::record::{AuditRecord, Outcome};

/// The shape an audit record is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Native,
    ActionTrail,
    CloudTrail,
}

impl Format {
    /// "native", "actiontrail", "cloudtrail" (case-insensitive; "" is Native); None for anything else.
    pub fn parse(text: &str) -> Option<Format> {
        [Format::Native, Format::ActionTrail, Format::CloudTrail]
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(text))
            .or(text.is_empty().then_some(Format::Native))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::ActionTrail => "actiontrail",
            Format::CloudTrail => "cloudtrail",
        }
    }
}

/// The record in `format`, as a JSON value: the same description as
/// [`render_text`], built instead of written.
pub fn render(record: &AuditRecord, format: Format) -> Value {
    let mut value = json::Build::default();
    describe(record, format, &mut value);
    value.into_value()
}

/// The record in `format`, as JSON text: what [`render`] gives, written
/// directly, for the trails and exports that write every record.
pub fn render_text(record: &AuditRecord, format: Format) -> String {
    let mut text = json::Text::with_capacity(2048);
    describe(record, format, &mut text);
    text.into_string()
}

/// Describes `record` in `format` to `s`.
pub fn describe(record: &AuditRecord, format: Format, s: &mut impl Sink) {
    match format {
        Format::Native => record.describe(s),
        Format::ActionTrail => describe_actiontrail(record, s),
        Format::CloudTrail => describe_cloudtrail(record, s),
    }
}

const SERVICE_EVENT: &str = "AliyunServiceEvent";

/// The ActionTrail fields whose values [`actiontrail`] copies from the native record as they are, so that any text
/// in them is in the record's stored JSON too; a path covers everything under it. The audit scan's text
/// pre-filter relies on this ([`Selection::required_text`](super::selection::Selection::required_text)). Fields
/// that the rendering makes up are not here: `eventTime` (RFC 3339 where the record has milliseconds),
/// `eventSource`, `resourceType`, `userIdentity.sessionContext`.
pub const ACTIONTRAIL_COPIED_FIELDS: &[&str] = &[
    "eventId",
    "eventName",
    "eventRW",
    "eventType",
    "serviceName",
    "acsRegion",
    "userAgent",
    "requestId",
    "requestParameters",
    "responseElements",
    "errorCode",
    "errorMessage",
    "resourceName",
    "referencedResources",
    "recipientAccountId",
    "userIdentity.type",
    "userIdentity.principalId",
    "userIdentity.accountId",
    "userIdentity.accessKeyId",
    "userIdentity.userName",
    "additionalEventData",
];

/// ActionTrail fields copied from the record except where a fixed value stands in for it:
/// `sourceIpAddress` is the caller's address, or "Internal" for kmsim's own calls and
/// "kms.aliyuncs.com" for service events.
pub const ACTIONTRAIL_STAND_INS: &[(&str, &[&str])] =
    &[("sourceIpAddress", &[ACTIONTRAIL_INTERNAL, ACTIONTRAIL_SERVICE])];
const ACTIONTRAIL_INTERNAL: &str = "Internal";
const ACTIONTRAIL_SERVICE: &str = "kms.aliyuncs.com";

/// Where the ActionTrail rendering takes a field's value from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionTrailSource {
    /// The record's own value, as it is.
    Copied,
    /// The record's own value, or one of these when the record has none.
    CopiedOr(&'static [&'static str]),
    /// Something the rendering makes up.
    MadeUp,
}

/// How [`actiontrail`] fills `path` (an ActionTrail field, without `event.`):
/// [`ACTIONTRAIL_COPIED_FIELDS`] and everything under them are copied,
/// [`ACTIONTRAIL_STAND_INS`] copied or stood in for, the rest made up.
pub fn actiontrail_source(path: &str) -> ActionTrailSource {
    let covers = |field: &str| path.strip_prefix(field).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'));
    if ACTIONTRAIL_COPIED_FIELDS.iter().any(|field| covers(field)) {
        ActionTrailSource::Copied
    } else if let Some((_, stand_ins)) = ACTIONTRAIL_STAND_INS.iter().find(|(field, _)| *field == path) {
        ActionTrailSource::CopiedOr(stand_ins)
    } else {
        ActionTrailSource::MadeUp
    }
}

/// The record in Alibaba ActionTrail's shape.
pub fn actiontrail(r: &AuditRecord) -> Value {
    render(r, Format::ActionTrail)
}

fn describe_actiontrail(r: &AuditRecord, s: &mut impl Sink) {
    let service_event = r.event_type == SERVICE_EVENT;
    // Service events have no caller: ActionTrail names the acting service. An API call with no
    // client address came from inside kmsim, which ActionTrail writes as "Internal".
    let source_ip = match r.client_ip.as_str() {
        _ if service_event => ACTIONTRAIL_SERVICE,
        "" => ACTIONTRAIL_INTERNAL,
        ip => ip,
    };
    // A secret call is about its secret; its key, if any, is only referenced.
    let (resource_name, resource_type) = if !r.secret_arn.is_empty() {
        (&r.secret_arn, "ACS::KMS::Secret")
    } else if !r.key_arn.is_empty() {
        (&r.key_arn, "ACS::KMS::Key")
    } else {
        (&r.key_arn, "")
    };
    let event_time = r.event_time.to_rfc3339();
    s.begin_object();
    s.str_member("eventId", &r.event_id);
    s.u64_member("eventVersion", 1);
    s.str_member("eventTime", &event_time);
    s.str_member("eventName", &r.event_name);
    s.str_member("eventRW", &r.event_rw);
    s.str_member("eventType", &r.event_type);
    s.str_member("eventCategory", "Management");
    let event_source =
        if r.endpoint.is_empty() { format!("kms.{}.aliyuncs.com", r.region) } else { r.endpoint.clone() };
    s.str_member("eventSource", &event_source);
    s.str_member("serviceName", &r.service_name);
    s.str_member("apiVersion", "2016-01-20");
    s.str_member("acsRegion", &r.region);
    s.str_member("sourceIpAddress", source_ip);
    s.str_member("userAgent", &r.user_agent);
    s.str_member("requestId", &r.request_id);
    s.value_member("requestParameters", &r.request_parameters);
    s.value_member("responseElements", &r.response_elements);
    s.str_member("errorCode", &r.error_code);
    s.str_member("errorMessage", &r.error_message);
    s.str_member("resourceName", resource_name);
    s.str_member("resourceType", resource_type);
    s.name("referencedResources");
    s.begin_object();
    let keys = key_arns(r);
    if !keys.is_empty() {
        s.name("ACS::KMS::Key");
        s.strings(keys);
    }
    if !r.secret_arn.is_empty() {
        s.name("ACS::KMS::Secret");
        s.strings([r.secret_arn.as_str()]);
    }
    s.end_object();
    s.name("isGlobal");
    s.bool(false);
    s.str_member("recipientAccountId", &r.account_id);
    let id = &r.user_identity;
    s.name("userIdentity");
    s.begin_object();
    s.str_member("type", &id.kind);
    s.str_member("principalId", &id.principal_id);
    s.str_member("accountId", &id.account_id);
    s.str_member("accessKeyId", &id.access_key_id);
    s.str_member("userName", &id.user_name);
    s.name("sessionContext");
    s.begin_object();
    s.name("attributes");
    s.begin_object();
    s.str_member("creationDate", &event_time);
    s.str_member("mfaAuthenticated", "false");
    s.end_object();
    s.end_object();
    s.end_object();
    s.name("additionalEventData");
    describe_additional_event_data(r, s);
    s.end_object();
}

/// kmsim's facts that ActionTrail has no field for but security teams ask for.
fn describe_additional_event_data(r: &AuditRecord, s: &mut impl Sink) {
    s.begin_object();
    s.str_member("keySpec", &r.key_spec);
    s.str_member("keyVersionId", &r.key_version_id);
    s.u64_member("httpStatus", u64::from(r.http_status));
    s.str_member("outcome", r.outcome.as_str());
    s.u64_member("requestBytes", r.request_bytes);
    s.u64_member("responseBytes", r.response_bytes);
    let sizes = [
        ("plaintextBytes", r.plaintext_bytes),
        ("ciphertextBytes", r.ciphertext_bytes),
        ("messageBytes", r.message_bytes),
        ("signatureBytes", r.signature_bytes),
        ("macBytes", r.mac_bytes),
    ];
    for (name, size) in sizes {
        if let Some(size) = size {
            s.u64_member(name, size);
        }
    }
    s.u64_member("clientPort", u64::from(r.client_port));
    s.u64_member("latencyUs", r.latency_us);
    s.str_member("action", &r.action);
    if !r.invoked_by.is_empty() {
        s.str_member("invokedBy", &r.invoked_by);
    }
    s.end_object();
}

/// The record in AWS CloudTrail's shape.
///
/// A call made through AWS's API is rendered as AWS would log it: its AWS account (`--aws-account-id`)
/// and `arn:aws:kms:…` ARNs, which that API accepts, and its request parameters in AWS's names and
/// vocabulary ([`super::aws`]). Other calls keep Alibaba's account and `acs:kms:…` ARNs: their resources
/// are Alibaba's, and an invented `arn:aws:kms:…` would name a key no API they were made through accepts.
pub fn cloudtrail(r: &AuditRecord) -> Value {
    render(r, Format::CloudTrail)
}

fn describe_cloudtrail(r: &AuditRecord, s: &mut impl Sink) {
    let service_event = r.event_type == SERVICE_EVENT;
    let failed = r.outcome == Outcome::Failure;
    // CloudTrail's own conventions: a service acting on its own is named by its endpoint, and a
    // call without a known client address is "AWS Internal".
    let source_ip = match r.client_ip.as_str() {
        _ if service_event => "kms.amazonaws.com",
        "" => "AWS Internal",
        ip => ip,
    };
    let user_agent = if service_event && r.user_agent.is_empty() { "kms.amazonaws.com" } else { &r.user_agent };
    let secret = (!r.secret_arn.is_empty()).then_some(&r.secret_arn);
    let by_aws = !r.aws_account_id.is_empty();
    let account = if by_aws { &r.aws_account_id } else { &r.account_id };
    let arn = |arn: &'_ str| if by_aws { aws::arn(arn, account).into_owned() } else { arn.to_owned() };
    s.begin_object();
    s.str_member("eventVersion", "1.11");
    s.name("userIdentity");
    describe_cloudtrail_identity(r, account, s);
    s.str_member("eventTime", &r.event_time.to_rfc3339());
    s.str_member("eventSource", cloudtrail_event_source(r));
    s.str_member("eventName", &r.event_name);
    s.str_member("awsRegion", &r.region);
    s.str_member("sourceIPAddress", source_ip);
    s.str_member("userAgent", user_agent);
    // CloudTrail leaves out the error of a call that succeeded, rather than writing null.
    if failed {
        // What the client was told: AWS's exception for a call through the AWS API.
        let code = if r.client_error_code.is_empty() { &r.error_code } else { &r.client_error_code };
        s.str_member("errorCode", code);
        s.str_member("errorMessage", &r.error_message);
    }
    if by_aws {
        s.value_member("requestParameters", &aws::request_parameters(r));
    } else {
        s.value_member("requestParameters", &lower_camel_keys(&r.request_parameters));
    }
    s.name("responseElements");
    if failed || r.is_cryptographic() {
        s.null();
    } else {
        s.value(&management_response(r, &arn));
    }
    let key_spec = if by_aws { aws::key_spec(&r.key_spec) } else { &r.key_spec };
    let additional = [("keySpec", key_spec), ("keyVersionId", &r.key_version_id)];
    if additional.iter().any(|(_, value)| !value.is_empty()) {
        s.name("additionalEventData");
        s.begin_object();
        for (name, value) in additional {
            if !value.is_empty() {
                s.str_member(name, value);
            }
        }
        s.end_object();
    }
    s.str_member("requestID", &r.request_id);
    s.str_member("eventID", &r.event_id);
    s.name("readOnly");
    s.bool(r.event_rw == "Read");
    s.name("resources");
    s.begin_array();
    let keys = key_arns(r).into_iter().map(|arn| ("AWS::KMS::Key", arn));
    for (kind, named) in keys.chain(secret.map(|arn| ("AWS::SecretsManager::Secret", arn.as_str()))) {
        s.begin_object();
        s.str_member("accountId", account);
        s.str_member("type", kind);
        s.str_member("ARN", &arn(named));
        s.end_object();
    }
    s.end_array();
    s.str_member("eventType", if service_event { "AwsServiceEvent" } else { "AwsApiCall" });
    s.name("managementEvent");
    s.bool(true);
    s.str_member("recipientAccountId", account);
    s.str_member("eventCategory", "Management");
    s.end_object();
}

/// The service CloudTrail names as the record's `eventSource`: Secrets Manager for a secret's calls, CloudTrail
/// for a lookup of the trail through AWS's API, KMS for the rest.
pub fn cloudtrail_event_source(r: &AuditRecord) -> &'static str {
    if !r.secret_arn.is_empty() {
        "secretsmanager.amazonaws.com"
    } else if !r.aws_account_id.is_empty()
        && r.service_name == crate::kernel::catalogue::ServiceName::KmsimAudit.as_str()
    {
        "cloudtrail.amazonaws.com"
    } else {
        "kms.amazonaws.com"
    }
}

/// CloudTrail's `userIdentity` from ActionTrail's identity types, in `account` (the AWS account a call
/// through AWS's API addressed, else the record's own).
fn describe_cloudtrail_identity(r: &AuditRecord, account: &str, s: &mut impl Sink) {
    let id = &r.user_identity;
    let by_aws = !r.aws_account_id.is_empty();
    let account = if by_aws { account } else { &id.account_id };
    s.begin_object();
    let (kind, arn) = match id.kind.as_str() {
        // A service event's identity is only the account and the service acting for it.
        "system" => {
            s.str_member("type", "AWSService");
            s.str_member("accountId", account);
            s.str_member("invokedBy", "kms.amazonaws.com");
            return s.end_object();
        }
        "anonymous" => {
            s.str_member("type", "Unknown");
            s.str_member("accountId", account);
            return s.end_object();
        }
        "root-account" => ("Root", format!("arn:aws:iam::{account}:root")),
        "assumed-role" => ("AssumedRole", format!("arn:aws:sts::{account}:assumed-role/{}", id.user_name)),
        _ => {
            let name = if id.user_name.is_empty() { &id.access_key_id } else { &id.user_name };
            ("IAMUser", format!("arn:aws:iam::{account}:user/{name}"))
        }
    };
    // AWS names the root user by its account id, which for a call through AWS's API is the AWS account.
    let principal_id = if by_aws && kind == "Root" { account } else { &id.principal_id };
    s.str_member("type", kind);
    s.str_member("principalId", principal_id);
    s.str_member("arn", &arn);
    s.str_member("accountId", account);
    s.str_member("accessKeyId", &id.access_key_id);
    s.str_member("userName", &id.user_name);
    // CloudTrail names the service that called on the user's behalf.
    if r.invoked_by == super::record::INVOKED_BY_SECRETS_MANAGER {
        s.str_member("invokedBy", "secretsmanager.amazonaws.com");
    }
    s.end_object();
}

/// A management call's response: the key it acted on, plus what the record kept. `null` when
/// there is neither, as for a listing that names no key.
fn management_response(r: &AuditRecord, arn: &impl Fn(&str) -> String) -> Value {
    let mut out = Map::new();
    if !r.key_arn.is_empty() {
        out.insert("keyId".into(), arn(&r.key_arn).into());
    }
    if let Value::Object(kept) = lower_camel_keys(&r.response_elements) {
        if r.aws_account_id.is_empty() {
            out.extend(kept);
        } else {
            out.extend(aws::response_elements(kept, &r.aws_account_id));
        }
    }
    if out.is_empty() { Value::Null } else { Value::Object(out) }
}

/// Alibaba's `KeyId` as AWS's `keyId`. Only the top level: nested keys, such as an encryption
/// context's, are the caller's own data and stay as written.
fn lower_camel_keys(value: &Value) -> Value {
    let Value::Object(map) = value else { return value.clone() };
    Value::Object(map.iter().map(|(k, v)| (aws::lower_camel(k), v.clone())).collect())
}

/// The key the record is about, then any other keys it referenced, each once.
fn key_arns(r: &AuditRecord) -> Vec<&str> {
    let mut arns: Vec<&str> = Vec::new();
    for arn in std::iter::once(&r.key_arn).chain(&r.referenced_keys) {
        if !arn.is_empty() && !arns.contains(&arn.as_str()) {
            arns.push(arn);
        }
    }
    arns
}

/// A CloudTrail log file: {"Records":[…]}.
pub fn cloudtrail_file(records: &[Value]) -> Value {
    json!({ "Records": records })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::UserIdentity;
    use crate::clock::SimTime;

    const ARN: &str = "acs:kms:cn-hangzhou:1192853035118460:key/key-hzz6500a1b2c3d4e5f6";
    const ACCOUNT: &str = "1192853035118460";

    fn record(event_name: &str, action: &str, rw: &str) -> AuditRecord {
        AuditRecord {
            event_id: "ab35a7a7-373a-4a36-a4f8-01fd6adcc6a0".into(),
            event_time: SimTime::parse_rfc3339("2021-08-05T09:21:32.250Z").expect("valid time"),
            event_name: event_name.into(),
            action: action.into(),
            event_rw: rw.into(),
            event_type: "ApiCall".into(),
            service_name: "Kms".into(),
            region: "cn-hangzhou".into(),
            account_id: ACCOUNT.into(),
            resource_type: "kms_key".into(),
            key_id: "key-hzz6500a1b2c3d4e5f6".into(),
            key_arn: ARN.into(),
            key_spec: "Aliyun_AES_256".into(),
            key_version_id: "v-1".into(),
            outcome: Outcome::Success,
            error_code: String::new(),
            error_message: String::new(),
            client_error_code: String::new(),
            http_status: 200,
            request_bytes: 120,
            response_bytes: 300,
            plaintext_bytes: None,
            ciphertext_bytes: None,
            message_bytes: None,
            signature_bytes: None,
            mac_bytes: None,
            client_ip: "192.0.2.10".into(),
            client_port: 50123,
            user_agent: "aliyun-cli/3.0".into(),
            endpoint: String::new(),
            frontend: String::new(),
            aws_account_id: String::new(),
            access_key_id: "LTAI-EXAMPLE".into(),
            user_identity: UserIdentity {
                kind: "ram-user".into(),
                principal_id: "LTAI-EXAMPLE".into(),
                account_id: ACCOUNT.into(),
                access_key_id: "LTAI-EXAMPLE".into(),
                user_name: String::new(),
            },
            request_id: "f3423043-63bc-11e4-bc2b-4198b6150d5c".into(),
            client_request_id: String::new(),
            latency_us: 850,
            request_parameters: json!({ "KeyId": ARN, "EncryptionContext": { "Department": "Engineering" } }),
            response_elements: json!({}),
            referenced_keys: Vec::new(),
            secret_name: String::new(),
            secret_arn: String::new(),
            invoked_by: String::new(),
            instance_id: String::new(),
            injected_fault: None,
        }
    }

    fn encrypt() -> AuditRecord {
        AuditRecord {
            plaintext_bytes: Some(32),
            ciphertext_bytes: Some(120),
            ..record("Encrypt", "kms.encrypt", "Read")
        }
    }

    fn failed(mut r: AuditRecord, code: &str, message: &str) -> AuditRecord {
        r.outcome = Outcome::Failure;
        r.error_code = code.into();
        r.error_message = message.into();
        r.http_status = 400;
        r
    }

    #[test]
    fn encrypt_in_actiontrail() {
        let at = actiontrail(&encrypt());
        let names: Vec<&str> = at.as_object().expect("object").keys().map(String::as_str).collect();
        let expected = "eventId eventVersion eventTime eventName eventRW eventType eventCategory eventSource \
            serviceName apiVersion acsRegion sourceIpAddress userAgent requestId requestParameters responseElements \
            errorCode errorMessage resourceName resourceType referencedResources isGlobal recipientAccountId \
            userIdentity additionalEventData";
        assert_eq!(names, expected.split_whitespace().collect::<Vec<_>>());
        assert_eq!(at["eventVersion"], 1);
        assert_eq!(at["eventTime"], "2021-08-05T09:21:32Z");
        assert_eq!(at["eventRW"], "Read");
        assert_eq!(at["eventType"], "ApiCall");
        assert_eq!(at["eventCategory"], "Management");
        assert_eq!(at["eventSource"], "kms.cn-hangzhou.aliyuncs.com");
        assert_eq!(at["apiVersion"], "2016-01-20");
        assert_eq!(at["acsRegion"], "cn-hangzhou");
        assert_eq!(at["sourceIpAddress"], "192.0.2.10");
        assert_eq!(at["errorCode"], "");
        assert_eq!(at["errorMessage"], "");
        assert_eq!(at["resourceName"], ARN);
        assert_eq!(at["resourceType"], "ACS::KMS::Key");
        assert_eq!(at["referencedResources"], json!({ "ACS::KMS::Key": [ARN] }));
        assert_eq!(at["isGlobal"], false);
        assert_eq!(at["recipientAccountId"], ACCOUNT);
        assert_eq!(at["userIdentity"]["type"], "ram-user");
        assert_eq!(at["userIdentity"]["accessKeyId"], "LTAI-EXAMPLE");
        assert_eq!(at["userIdentity"]["sessionContext"]["attributes"]["creationDate"], "2021-08-05T09:21:32Z");
        assert_eq!(at["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"], "false");
        let extra = &at["additionalEventData"];
        assert_eq!((extra["keySpec"].as_str(), extra["outcome"].as_str()), (Some("Aliyun_AES_256"), Some("Success")));
        assert_eq!((extra["plaintextBytes"].as_u64(), extra["ciphertextBytes"].as_u64()), (Some(32), Some(120)));
        assert!(extra.get("macBytes").is_none());
        assert_eq!(extra["action"], "kms.encrypt");
    }

    #[test]
    fn encrypt_in_cloudtrail() {
        let ct = cloudtrail(&encrypt());
        assert_eq!(ct["eventVersion"], "1.11");
        assert_eq!(ct["eventTime"], "2021-08-05T09:21:32Z");
        assert_eq!(ct["eventSource"], "kms.amazonaws.com");
        assert_eq!(ct["awsRegion"], "cn-hangzhou");
        assert_eq!(ct["sourceIPAddress"], "192.0.2.10");
        let id = &ct["userIdentity"];
        assert_eq!(id["type"], "IAMUser");
        assert_eq!(id["arn"], format!("arn:aws:iam::{ACCOUNT}:user/LTAI-EXAMPLE"));
        assert_eq!(
            ct["requestParameters"],
            json!({ "keyId": ARN, "encryptionContext": { "Department": "Engineering" } })
        );
        assert_eq!(ct["responseElements"], Value::Null);
        assert_eq!(ct["additionalEventData"], json!({ "keySpec": "Aliyun_AES_256", "keyVersionId": "v-1" }));
        assert_eq!(ct["requestID"], "f3423043-63bc-11e4-bc2b-4198b6150d5c");
        assert_eq!(ct["readOnly"], true);
        assert_eq!(ct["resources"], json!([{ "accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": ARN }]));
        assert_eq!(ct["eventType"], "AwsApiCall");
        assert_eq!((&ct["managementEvent"], &ct["eventCategory"]), (&json!(true), &json!("Management")));
        assert!(ct.get("errorCode").is_none() && ct.get("errorMessage").is_none());
        let file = cloudtrail_file(std::slice::from_ref(&ct));
        assert_eq!(file["Records"][0], ct);
    }

    #[test]
    fn failed_decrypt() {
        let r = failed(record("Decrypt", "kms.decrypt", "Read"), "Rejected.Disabled", "The key is disabled.");
        assert_eq!(actiontrail(&r)["errorCode"], "Rejected.Disabled");
        assert_eq!(actiontrail(&r)["additionalEventData"]["httpStatus"], 400);
        let ct = cloudtrail(&r);
        assert_eq!(ct["errorCode"], "Rejected.Disabled");
        assert_eq!(ct["errorMessage"], "The key is disabled.");
        assert_eq!(ct["responseElements"], Value::Null);
    }

    #[test]
    fn disable_key_names_its_key() {
        let r = AuditRecord {
            request_parameters: json!({ "KeyId": "key-hzz6500a1b2c3d4e5f6" }),
            response_elements: json!({ "KeyId": ARN }),
            ..record("DisableKey", "kms.disable_key", "Write")
        };
        let ct = cloudtrail(&r);
        assert_eq!(ct["responseElements"], json!({ "keyId": ARN }));
        assert_eq!(ct["readOnly"], false);
        assert_eq!(actiontrail(&r)["eventRW"], "Write");
        // A failed management call returned nothing.
        assert_eq!(cloudtrail(&failed(r, "Forbidden.KeyNotFound", "No key."))["responseElements"], Value::Null);
    }

    /// A record of a call through AWS's API: its AWS account, the region it signed for, a RAM user's AccessKey.
    fn by_aws(r: AuditRecord) -> AuditRecord {
        let arn = "acs:kms:us-east-1:1192853035118460:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        AuditRecord {
            region: "us-east-1".into(),
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            key_arn: arn.into(),
            aws_account_id: "111122223333".into(),
            user_agent: "Boto3/1.40".into(),
            user_identity: UserIdentity {
                kind: "ram-user".into(),
                principal_id: "2705163944812601".into(),
                account_id: ACCOUNT.into(),
                access_key_id: "LTAIAWSUSER".into(),
                user_name: "alice".into(),
            },
            ..r
        }
    }

    #[test]
    fn an_aws_call_is_rendered_as_cloudtrail_logs_it_with_the_aws_accounts_arns_and_identity() {
        let aws_arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let encrypted = by_aws(AuditRecord {
            request_parameters: json!({ "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "EncryptionContext": { "Dept": "Eng" } }),
            ..encrypt()
        });
        let ct = cloudtrail(&encrypted);
        assert_eq!(ct["eventSource"], "kms.amazonaws.com");
        assert_eq!(ct["awsRegion"], "us-east-1");
        assert_eq!(
            ct["userIdentity"],
            json!({
                "type": "IAMUser",
                "principalId": "2705163944812601",
                "arn": "arn:aws:iam::111122223333:user/alice",
                "accountId": "111122223333",
                "accessKeyId": "LTAIAWSUSER",
                "userName": "alice",
            })
        );
        assert_eq!(ct["resources"], json!([{ "accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": aws_arn }]));
        assert_eq!(ct["recipientAccountId"], "111122223333");
        assert_eq!(
            ct["requestParameters"],
            json!({
                "keyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
                "encryptionContext": { "Dept": "Eng" },
                "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
            })
        );
        assert_eq!(ct["additionalEventData"]["keySpec"], "SYMMETRIC_DEFAULT");
        assert!(!ct.to_string().contains("acs:kms:"), "no Alibaba ARN in {ct}");

        let created = by_aws(AuditRecord {
            request_parameters: json!({
                "KeySpec": "EC_P256", "KeyUsage": "SIGN/VERIFY", "Description": "d", "Exportable": false,
            }),
            response_elements: json!({ "KeyId": encrypted.key_arn }),
            ..record("CreateKey", "kms.create_key", "Write")
        });
        let ct = cloudtrail(&created);
        assert_eq!(
            ct["requestParameters"],
            json!({ "keySpec": "ECC_NIST_P256", "keyUsage": "SIGN_VERIFY", "description": "d" })
        );
        assert_eq!(ct["responseElements"], json!({ "keyId": aws_arn }));

        let signed = by_aws(AuditRecord {
            request_parameters: json!({ "KeyId": "k", "Algorithm": "RSA_PSS_SHA_256", "MessageType": "RAW" }),
            ..record("Sign", "kms.sign", "Read")
        });
        assert_eq!(
            cloudtrail(&signed)["requestParameters"],
            json!({ "keyId": "k", "signingAlgorithm": "RSASSA_PSS_SHA_256", "messageType": "RAW" })
        );

        let mut admin = by_aws(encrypt());
        admin.user_identity = UserIdentity {
            kind: "root-account".into(),
            principal_id: ACCOUNT.into(),
            account_id: ACCOUNT.into(),
            access_key_id: "LTAIADMIN".into(),
            user_name: "root".into(),
        };
        let id = &cloudtrail(&admin)["userIdentity"];
        assert_eq!((&id["type"], &id["principalId"]), (&json!("Root"), &json!("111122223333")));
        assert_eq!(id["arn"], "arn:aws:iam::111122223333:root");

        let failed_decrypt = by_aws(AuditRecord {
            client_error_code: "IncorrectKeyException".into(),
            ..failed(record("Decrypt", "kms.decrypt", "Read"), "IncorrectKey", "Not the ciphertext's key.")
        });
        let ct = cloudtrail(&failed_decrypt);
        assert_eq!((&ct["errorCode"], &ct["responseElements"]), (&json!("IncorrectKeyException"), &Value::Null));

        let lookup = by_aws(AuditRecord {
            service_name: "KmsimAudit".into(),
            key_id: String::new(),
            key_arn: String::new(),
            ..record("LookupEvents", "kmsim.lookup_events", "Read")
        });
        assert_eq!(cloudtrail(&lookup)["eventSource"], "cloudtrail.amazonaws.com");
        assert_eq!(
            cloudtrail(&record("QueryAuditEvents", "kmsim.query_audit_events", "Read"))["eventSource"],
            "kms.amazonaws.com"
        );
    }

    #[test]
    fn scheduled_deletion_is_a_service_event() {
        let r = AuditRecord {
            event_type: "AliyunServiceEvent".into(),
            client_ip: String::new(),
            client_port: 0,
            user_agent: String::new(),
            access_key_id: String::new(),
            user_identity: UserIdentity { kind: "system".into(), account_id: ACCOUNT.into(), ..Default::default() },
            ..record("DeleteKey", "kms.delete_key", "Write")
        };
        let ct = cloudtrail(&r);
        assert_eq!(ct["eventType"], "AwsServiceEvent");
        assert_eq!(
            ct["userIdentity"],
            json!({ "type": "AWSService", "accountId": ACCOUNT, "invokedBy": "kms.amazonaws.com" })
        );
        assert_eq!(ct["sourceIPAddress"], "kms.amazonaws.com");
        let at = actiontrail(&r);
        assert_eq!(
            (&at["eventType"], &at["sourceIpAddress"]),
            (&json!("AliyunServiceEvent"), &json!("kms.aliyuncs.com"))
        );
    }

    #[test]
    fn renderings_carry_exactly_the_recorded_parameters() {
        let r =
            AuditRecord { referenced_keys: vec![ARN.into(), "acs:kms:cn-hangzhou:1:key/other".into()], ..encrypt() };
        let native = render(&r, Format::Native);
        let at = render(&r, Format::ActionTrail);
        let ct = render(&r, Format::CloudTrail);
        assert_eq!(native["requestParameters"], r.request_parameters);
        assert_eq!(at["requestParameters"], r.request_parameters);
        let names = |v: &Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(names(&ct["requestParameters"]), ["keyId", "encryptionContext"]);
        for text in [native.to_string(), at.to_string(), ct.to_string()] {
            for forbidden in ["\"Plaintext\"", "\"plaintext\"", "CiphertextBlob", "ciphertextBlob", "\"Mac\""] {
                assert!(!text.contains(forbidden), "{forbidden} in {text}");
            }
        }
        // The key is listed once, beside the other key the call referenced.
        assert_eq!(ct["resources"].as_array().map(Vec::len), Some(2));
        assert_eq!(at["referencedResources"]["ACS::KMS::Key"][1], "acs:kms:cn-hangzhou:1:key/other");
    }

    #[test]
    fn a_secret_call_is_about_its_secret_and_its_decrypt_names_who_invoked_it() {
        let secret_arn = "acs:kms:cn-hangzhou:1192853035118460:secret/app/db";
        let read = AuditRecord {
            event_name: "GetSecretValue".into(),
            action: "kms.get_secret_value".into(),
            resource_type: "kms_secret".into(),
            key_id: String::new(),
            key_arn: String::new(),
            referenced_keys: vec![ARN.into()],
            secret_name: "app/db".into(),
            secret_arn: secret_arn.into(),
            ..encrypt()
        };
        let at = actiontrail(&read);
        assert_eq!(
            (at["resourceName"].as_str(), at["resourceType"].as_str()),
            (Some(secret_arn), Some("ACS::KMS::Secret"))
        );
        assert_eq!(at["referencedResources"], json!({ "ACS::KMS::Key": [ARN], "ACS::KMS::Secret": [secret_arn] }));
        let ct = cloudtrail(&read);
        assert_eq!(ct["eventSource"], "secretsmanager.amazonaws.com");
        assert_eq!(
            ct["resources"][1],
            json!({ "accountId": ACCOUNT, "type": "AWS::SecretsManager::Secret", "ARN": secret_arn })
        );

        let decrypt = AuditRecord { invoked_by: "SecretsManager".into(), ..encrypt() };
        assert_eq!(cloudtrail(&decrypt)["userIdentity"]["invokedBy"], "secretsmanager.amazonaws.com");
        assert_eq!(cloudtrail(&decrypt)["eventSource"], "kms.amazonaws.com");
        assert_eq!(actiontrail(&decrypt)["additionalEventData"]["invokedBy"], "SecretsManager");
        assert!(cloudtrail(&encrypt())["userIdentity"].get("invokedBy").is_none());
    }

    /// Records that take every branch of both renderings.
    fn varied() -> Vec<AuditRecord> {
        let secret_arn = "acs:kms:cn-hangzhou:1192853035118460:secret/app/db";
        let mut records = vec![
            encrypt(),
            failed(record("Decrypt", "kms.decrypt", "Read"), "Rejected.Disabled", "The key\tis \"disabled\"."),
            AuditRecord {
                response_elements: json!({ "KeyId": ARN, "KeyState": "Disabled" }),
                ..record("DisableKey", "kms.disable_key", "Write")
            },
            AuditRecord {
                key_arn: String::new(),
                key_spec: String::new(),
                key_version_id: String::new(),
                secret_arn: secret_arn.into(),
                referenced_keys: vec![ARN.into(), ARN.into(), "acs:kms:cn-hangzhou:1:key/other".into()],
                invoked_by: "SecretsManager".into(),
                mac_bytes: Some(32),
                ..record("GetSecretValue", "kms.get_secret_value", "Read")
            },
            AuditRecord { client_ip: String::new(), user_agent: "ünïcode ✓\u{1}".into(), ..encrypt() },
            by_aws(AuditRecord {
                request_parameters: json!({ "KeyId": "k", "Tags": [{ "TagKey": "a", "TagValue": "b" }], "PageNumber": 2 }),
                response_elements: json!({ "KeyId": ARN, "KeyState": "Disabled" }),
                ..record("TagResource", "kms.tag_resource", "Write")
            }),
        ];
        for kind in ["system", "anonymous", "root-account", "assumed-role", "ram-user"] {
            let mut r = encrypt();
            r.user_identity.kind = kind.into();
            r.user_identity.user_name = if kind == "ram-user" { "alice".into() } else { String::new() };
            if kind == "system" {
                r.event_type = SERVICE_EVENT.into();
                r.user_agent = String::new();
            }
            records.push(r);
        }
        records
    }

    #[test]
    fn the_text_of_each_rendering_is_its_value_written_out() {
        for r in varied() {
            for format in [Format::Native, Format::ActionTrail, Format::CloudTrail] {
                let value = render(&r, format);
                assert_eq!(render_text(&r, format), serde_json::to_string(&value).unwrap(), "{format:?} of {r:?}");
            }
        }
    }

    /// Every scalar under `value`, with its dotted path (arrays add nothing to a path, as in a query).
    fn scalars<'a>(path: &str, value: &'a Value, found: &mut Vec<(String, &'a Value)>) {
        match value {
            Value::Object(members) => {
                for (name, child) in members {
                    let path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                    scalars(&path, child, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| scalars(path, item, found)),
            scalar => found.push((path.to_owned(), scalar)),
        }
    }

    /// What the audit scan's text pre-filter relies on: a value under a copied field is in the stored record,
    /// written exactly as there, and one under a field with stand-ins is that or a stand-in. The fields
    /// that are made up include some that show why.
    #[test]
    fn the_copied_actiontrail_fields_hold_only_what_the_stored_record_holds() {
        let mut made_up = std::collections::BTreeSet::new();
        let mut stood_in = std::collections::BTreeSet::new();
        for r in varied() {
            let stored = r.to_json();
            let rendered = actiontrail(&r);
            let mut found = Vec::new();
            scalars("", &rendered, &mut found);
            for (path, value) in found {
                let written = serde_json::to_string(value).unwrap();
                match actiontrail_source(&path) {
                    ActionTrailSource::Copied => {
                        assert!(stored.contains(&written), "{path} = {written} is not in the stored {stored}");
                    }
                    ActionTrailSource::CopiedOr(stand_ins) => {
                        let stand_in = stand_ins.iter().find(|s| value.as_str() == Some(**s));
                        match stand_in {
                            Some(stand_in) => _ = stood_in.insert(*stand_in),
                            None => assert!(stored.contains(&written), "{path} = {written} is not in {stored}"),
                        }
                    }
                    ActionTrailSource::MadeUp if !stored.contains(&written) => _ = made_up.insert(path),
                    ActionTrailSource::MadeUp => {}
                }
            }
        }
        for path in ["eventTime", "eventSource", "userIdentity.sessionContext.attributes.creationDate"] {
            assert!(made_up.contains(path), "{path} is made up by the rendering: {made_up:?}");
        }
        // Each stand-in is one the varied records need, so none is listed for nothing.
        assert_eq!(stood_in.into_iter().collect::<Vec<_>>(), ["Internal", "kms.aliyuncs.com"]);
        assert_eq!(actiontrail_source("requestParameters.EncryptionContext.Department"), ActionTrailSource::Copied);
        assert_eq!(actiontrail_source("eventNameX"), ActionTrailSource::MadeUp);
        assert_eq!(actiontrail_source("userIdentity"), ActionTrailSource::MadeUp);
        assert_eq!(actiontrail_source("sourceIpAddress.x"), ActionTrailSource::MadeUp);
    }

    #[test]
    fn format_names() {
        for f in [Format::Native, Format::ActionTrail, Format::CloudTrail] {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
        assert_eq!(Format::parse("CloudTrail"), Some(Format::CloudTrail));
        assert_eq!(Format::parse(""), Some(Format::Native));
        assert_eq!(Format::default(), Format::Native);
        assert_eq!(Format::parse("xml"), None);
    }
}
