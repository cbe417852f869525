//! AWS KMS's JSON 1.1 API, as boto3, the AWS CLI and the AWS SDKs speak it:
//! `POST /` with `X-Amz-Target: TrentService.<Operation>` and a JSON body,
//! signed with SigV4; answers as JSON with blobs in base64 and times in epoch
//! seconds, errors as `{"__type", "message"}`, and `x-amzn-RequestId` on
//! every answer. The keys are kmsim's: a key made here is the same key
//! through gRPC, the CLI and Alibaba's API; only the vocabulary differs
//! ([`vocabulary`]), and the ARNs, which name the AWS account kmsim plays
//! (`--aws-account-id`). CloudTrail's API, whose LookupEvents reads what
//! these calls left in the audit trail, comes the same way ([`cloudtrail`]).

pub mod cloudtrail;
pub mod operations;
pub mod sigv4;
pub mod states;
pub mod vocabulary;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value, json};

use crate::engine::instances::is_region_id;
use crate::engine::{ErrorCode, KmsError};
use crate::frontends::{Body, header};
use crate::kernel::meta::{WireError, new_request_id};
use crate::kernel::{Answer, App, CallMeta};

/// The name this front end gives its calls in the kernel's logs.
pub const FRONTEND: &str = "aws";

/// The `X-Amz-Target` prefix of KMS's operations.
pub const TARGET_PREFIX: &str = "TrentService.";

/// The AWS account kmsim plays when none is configured: the one AWS's own documentation uses.
pub const DEFAULT_AWS_ACCOUNT_ID: &str = "111122223333";

/// The front end: the way into the kernel and the account its ARNs name.
pub struct AwsKms {
    app: Arc<App>,
    account_id: String,
    max_body_bytes: usize,
}

/// What an operation's decoder and encoder need to know of the call besides its body.
#[derive(Clone)]
pub struct Arns {
    pub region: String,
    pub account_id: String,
}

impl Arns {
    pub fn key(&self, key_id: &str) -> String {
        format!("arn:aws:kms:{}:{}:key/{key_id}", self.region, self.account_id)
    }

    pub fn alias(&self, alias_name: &str) -> String {
        format!("arn:aws:kms:{}:{}:{alias_name}", self.region, self.account_id)
    }

    /// A key as a caller names it (id, alias, key ARN or alias ARN), as kmsim's engine names it.
    /// An ARN of another account or region names no key kmsim has.
    pub fn key_reference(&self, named: &str) -> String {
        let Some(rest) = named.strip_prefix("arn:aws:kms:") else { return named.to_owned() };
        let mut parts = rest.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(region), Some(account), Some(resource)) if region == self.region && account == self.account_id => {
                resource.strip_prefix("key/").unwrap_or(resource).to_owned()
            }
            // Passed on whole: no key has that id, so the engine answers NotFound.
            _ => named.to_owned(),
        }
    }
}

impl AwsKms {
    pub fn new(app: Arc<App>, account_id: String, max_body_bytes: usize) -> AwsKms {
        AwsKms { app, account_id, max_body_bytes }
    }

    /// Whether `request` is addressed to this front end.
    pub fn claims(request: &http::Request<Body>) -> bool {
        request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).and_then(Api::of).is_some()
    }

    /// Serves one request: every one is a call, audited and answered.
    pub async fn serve(&self, request: http::Request<Body>) -> http::Response<Body> {
        let (parts, body) = request.into_parts();
        let target = header(&parts.headers, "x-amz-target").unwrap_or_default();
        // The door sends only what `claims` took; anything else is KMS's to call unknown.
        let (api, operation) = Api::of(target).unwrap_or((Api::Kms, target));
        let operation = operation.to_owned();
        let mut meta = CallMeta::new(FRONTEND, &self.app.region, new_request_id());
        meta.wire_error = api.wire_error();
        meta.aws_account_id = self.account_id.clone();
        meta.peer = super::peer(&parts.extensions);
        meta.user_agent = header(&parts.headers, "user-agent").map(super::bounded).unwrap_or_default();
        meta.endpoint =
            header(&parts.headers, "host").map(|h| h.split(':').next().unwrap_or(h).to_owned()).unwrap_or_default();
        let body = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                meta.refusal = Some(KmsError::invalid_because(
                    "Body",
                    &format!("The request body is too large: the limit is {} bytes.", self.max_body_bytes),
                ));
                Bytes::new()
            }
        };
        meta.request_bytes = body.len() as u64;
        meta.credential = sigv4::present(&self.app, &parts, &body, api.signing_name());
        let scope_region = header(&parts.headers, "authorization").and_then(sigv4::scope).map(|s| s.region.to_owned());
        match scope_region {
            Some(region) if is_region_id(&region) => meta.region = region,
            Some(_) if meta.refusal.is_none() => {
                meta.refusal = Some(KmsError::invalid_because("Credential", "Name a region such as us-east-1."))
            }
            _ => {}
        }
        let fields = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(fields)) => fields,
            _ if body.is_empty() => Map::new(),
            _ => {
                if meta.refusal.is_none() {
                    meta.refusal = Some(KmsError::invalid_because("Body", "Send a JSON object."));
                }
                Map::new()
            }
        };
        let arns = Arns { region: meta.region.clone(), account_id: self.account_id.clone() };
        let json = operations::Json(&fields);
        let answer = match api {
            Api::Kms => operations::dispatch(&self.app, meta, &operation, json, &arns).await,
            Api::CloudTrail => cloudtrail::dispatch(&self.app, meta, &operation, json).await,
        };
        response(answer, api, &arns)
    }
}

/// The AWS APIs this front end answers, told apart by their `X-Amz-Target` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Kms,
    CloudTrail,
}

impl Api {
    /// The API a target names, and the operation in it.
    fn of(target: &str) -> Option<(Api, &str)> {
        match (target.strip_prefix(TARGET_PREFIX), target.strip_prefix(cloudtrail::TARGET_PREFIX)) {
            (Some(operation), _) => Some((Api::Kms, operation)),
            (_, Some(operation)) => Some((Api::CloudTrail, operation)),
            _ => None,
        }
    }

    /// The service a SigV4 credential scope names for it.
    fn signing_name(self) -> &'static str {
        match self {
            Api::Kms => "kms",
            Api::CloudTrail => "cloudtrail",
        }
    }

    /// Its exception for a kmsim error, and the HTTP status: each API's own table.
    fn exception(self, error: &KmsError) -> (&'static str, u16) {
        match self {
            Api::Kms => vocabulary::exception(error),
            Api::CloudTrail => cloudtrail::exception(error),
        }
    }

    /// The same, for the call's record.
    fn wire_error(self) -> fn(&KmsError) -> WireError {
        match self {
            Api::Kms => |error| Api::Kms.exception(error).into(),
            Api::CloudTrail => |error| Api::CloudTrail.exception(error).into(),
        }
    }
}

impl From<(&'static str, u16)> for WireError {
    fn from((code, status): (&'static str, u16)) -> WireError {
        WireError { code, status }
    }
}

/// The kernel's answer in the API's terms.
fn response(answer: Answer<Vec<u8>>, api: Api, arns: &Arns) -> http::Response<Body> {
    let Answer { request_id, result } = answer;
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err(error) => {
            let (name, status) = api.exception(&error);
            let message = vocabulary::message(&error, |key_id| arns.key(key_id));
            (status, serde_json::to_vec(&json!({ "__type": name, "message": message })).unwrap_or_default())
        }
    };
    super::bytes_response(status, "application/x-amz-json-1.1", ("x-amzn-RequestId", request_id), body)
}

/// An operation this front end does not offer (yet, or ever): AWS's UnsupportedOperationException.
pub fn unsupported(operation: &str) -> KmsError {
    KmsError::new(ErrorCode::UnsupportedOperation)
        .because(&format!("kmsim does not offer {operation} through the AWS API; see docs/aws.md."))
}
