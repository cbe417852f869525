//! Alibaba Cloud's KMS OpenAPI (version 2016-01-20, RPC style) as the
//! official SDKs speak it: `POST /` (or GET) over HTTP/1.1, the action in the
//! `x-acs-action` header or the `Action` parameter, parameters in the query
//! string and a form body, answers as PascalCase JSON with a `RequestId`, and
//! errors as `{RequestId, HostId, Code, Message, Recommend}` with the HTTP
//! status of kmsim's error table.
//!
//! [`request`] decodes what every action shares, [`signature`] verifies the
//! caller, [`actions`] is the table of actions and their operations; this
//! module puts a call together and renders the kernel's answer.

pub mod actions;
pub mod instance;
pub mod request;
pub mod signature;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{Value, json};

use self::request::ApiRequest;
use self::signature::Verifier;
use crate::engine::instances::is_region_id;
use crate::engine::{ErrorCode, KmsError};
use crate::frontends::{Body, header};
use crate::kernel::meta::new_request_id;
use crate::kernel::{Answer, App, CallMeta, OpSpec, Undecoded};

/// The name this front end gives its calls in the kernel's logs.
pub const FRONTEND: &str = "alibaba";

/// The only API version this front end speaks.
pub const API_VERSION: &str = "2016-01-20";

/// The front end: the way into the kernel, and the verifier with the nonces it has seen.
pub struct OpenApi {
    app: Arc<App>,
    verifier: Verifier,
    max_body_bytes: usize,
}

/// An answer ready to render: its status, its JSON, and whether it asks the client to retry later.
struct Rendered {
    status: u16,
    body: Vec<u8>,
    retry_after: bool,
}

impl OpenApi {
    pub fn new(app: Arc<App>, max_body_bytes: usize) -> OpenApi {
        OpenApi { app, verifier: Verifier::default(), max_body_bytes }
    }

    /// Serves one HTTP request addressed to the OpenAPI: every one is a call, audited, answered.
    pub async fn serve(&self, request: http::Request<Body>) -> http::Response<Body> {
        let (parts, body) = request.into_parts();
        let mut meta = CallMeta::new(FRONTEND, &self.app.region, new_request_id());
        meta.peer = super::peer(&parts.extensions);
        meta.user_agent = header(&parts.headers, "user-agent").map(super::bounded).unwrap_or_default();
        let host = header(&parts.headers, "host").or_else(|| parts.uri.host()).map(host_name).unwrap_or_default();
        meta.endpoint = host.clone();
        let host_id = if host.is_empty() { format!("kms.{}.aliyuncs.com", self.app.region) } else { host.clone() };
        let body = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                let error = KmsError::invalid_because(
                    "Body",
                    &format!("The request body is too large: the limit is {} bytes.", self.max_body_bytes),
                );
                return self.refuse(meta, &OpSpec::UNKNOWN_OPERATION, json!({}), error, &host_id).await;
            }
        };
        meta.request_bytes = (parts.uri.query().map_or(0, str::len) + body.len()) as u64;
        let request = match ApiRequest::parse(&parts, body) {
            Ok(request) => request,
            Err(error) => return self.refuse(meta, &OpSpec::UNKNOWN_OPERATION, json!({}), error, &host_id).await,
        };
        let checked = self.verifier.check(&self.app, &request);
        meta.credential = checked.presented;
        match region_of(&host, request.params.get("RegionId").map(String::as_str)) {
            Ok(Some(region)) => meta.region = region,
            Ok(None) => {}
            Err(error) => meta.refusal = Some(error),
        }
        let action = request.action().unwrap_or_default().to_owned();
        let version = request.header("x-acs-version").or(request.params.get("Version").map(String::as_str));
        if meta.refusal.is_none() {
            meta.refusal = refusal_before_action(&parts, version);
        }
        let answer = actions::dispatch(&self.app, meta, &action, request.params()).await;
        let rendered = render(answer, &host_id, checked.string_to_sign.as_deref());
        response(rendered)
    }

    /// Audits a request that named no action it could be held to, and answers it.
    async fn refuse(
        &self,
        mut meta: CallMeta,
        spec: &'static OpSpec,
        params: Value,
        error: KmsError,
        host_id: &str,
    ) -> http::Response<Body> {
        meta.refusal = Some(error);
        let answer = self.app.execute(meta, Undecoded { spec, params }, |()| (Vec::new(), 0)).await;
        response(render(answer, host_id, None))
    }
}

/// What the gateway refuses before it looks at the action: a path other
/// than `/`, a method the RPC style does not use, another API version.
fn refusal_before_action(parts: &http::request::Parts, version: Option<&str>) -> Option<KmsError> {
    if parts.uri.path() != "/" || !matches!(parts.method, http::Method::GET | http::Method::POST) {
        return Some(ErrorCode::ActionNotFound.into());
    }
    match version {
        Some(API_VERSION) | None => None,
        Some(_) => Some(KmsError::new(ErrorCode::VersionInvalid).because("kmsim speaks KMS API version 2016-01-20.")),
    }
}

/// The region a call is for: the one its host name says
/// (`kms.<region>.aliyuncs.com`, `kms-vpc.<region>.aliyuncs.com`), else its `RegionId`.
fn region_of(host: &str, region_id: Option<&str>) -> Result<Option<String>, KmsError> {
    let mut labels = host.split('.');
    if let (Some("kms" | "kms-vpc"), Some(region)) = (labels.next(), labels.next())
        && host.ends_with(".aliyuncs.com")
        && is_region_id(region)
    {
        return Ok(Some(region.to_owned()));
    }
    match region_id {
        None | Some("") => Ok(None),
        Some(region) if is_region_id(region) => Ok(Some(region.to_owned())),
        Some(_) => Err(KmsError::invalid_because("RegionId", "Name a region such as cn-hangzhou.")),
    }
}

/// The kernel's answer in the OpenAPI's terms. A signature that does not
/// match quotes the string the server signed, as Alibaba's gateway does.
fn render(answer: Answer<Vec<u8>>, host_id: &str, string_to_sign: Option<&str>) -> Rendered {
    let Answer { request_id, result } = answer;
    match result {
        Ok(body) => Rendered { status: 200, body, retry_after: false },
        Err(error) => {
            let mut message = error.message.clone();
            if let (ErrorCode::SignatureDoesNotMatch, Some(sts)) = (error.code, string_to_sign) {
                message = format!("{message} server string to sign is:{sts}");
            }
            let body = json!({
                "RequestId": request_id,
                "HostId": host_id,
                "Code": error.code.as_str(),
                "Message": message,
                "Recommend": format!(
                    "https://next.api.aliyun.com/troubleshoot?q={}&product=Kms&requestId={request_id}",
                    error.code.as_str()
                ),
            });
            Rendered {
                status: error.code.http_status(),
                body: serde_json::to_vec(&body).unwrap_or_default(),
                retry_after: error.code == ErrorCode::Throttling,
            }
        }
    }
}

fn response(rendered: Rendered) -> http::Response<Body> {
    let mut builder = http::Response::builder()
        .status(rendered.status)
        .header(http::header::CONTENT_TYPE, "application/json;charset=utf-8");
    if rendered.retry_after {
        // The SDK raises its ThrottlingException only when this is above zero.
        builder = builder.header("x-acs-retry-after", "1000");
    }
    builder.body(Body::new(Full::new(Bytes::from(rendered.body)))).unwrap_or_else(|_| {
        let mut response = http::Response::new(Body::empty());
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

/// A Host header's name, without its port, if it is a plausible host name.
fn host_name(host: &str) -> String {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => name,
        _ => host,
    };
    let plausible = name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    if plausible { name.to_ascii_lowercase() } else { String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_the_host_name_then_the_region_id() {
        assert_eq!(
            region_of("kms.cn-shanghai.aliyuncs.com", Some("cn-beijing")).unwrap().as_deref(),
            Some("cn-shanghai")
        );
        assert_eq!(region_of("kms-vpc.eu-central-1.aliyuncs.com", None).unwrap().as_deref(), Some("eu-central-1"));
        assert_eq!(region_of("127.0.0.1", Some("cn-beijing")).unwrap().as_deref(), Some("cn-beijing"));
        assert_eq!(region_of("127.0.0.1", None).unwrap(), None);
        assert!(region_of("127.0.0.1", Some("../etc")).is_err());
    }

    #[test]
    fn a_host_header_keeps_its_name_only() {
        assert_eq!(host_name("KMS.cn-hangzhou.aliyuncs.com:443"), "kms.cn-hangzhou.aliyuncs.com");
        assert_eq!(host_name("127.0.0.1:9595"), "127.0.0.1");
        assert_eq!(host_name("[::1]:9595"), "[::1]");
        assert_eq!(host_name("evil\"host"), "");
    }
}
