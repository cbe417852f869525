//! The KMS instance API (API version `dkms-gcs-0.2`) as Alibaba's instance
//! SDKs speak it (`alibabacloud-dkms-gcs`, and `alibabacloud-kms-python-sdk`
//! on top of it): `POST /` over HTTP/1.1 with a protobuf body, the call named
//! by `x-kms-apiname`, signed with a ClientKey's RSA key ([`signature`]);
//! answers as protobuf messages and refusals as the protobuf `Error` with
//! Alibaba's code and HTTP status.
//!
//! A call is served by the KMS instance of its ClientKey's AAP
//! ([`CallMeta::served_by_instance`]): the kernel authenticates it and judges
//! its AAP's policies whatever `--auth` says, and refuses a key or secret of
//! another instance as not found there. [`calls`] is the table of the 14 calls
//! and the kernel operations they run as.

pub mod calls;
pub mod signature;

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use prost::Message;

use crate::dkms_proto as pb;
use crate::engine::KmsError;
use crate::frontends::{Body, header};
use crate::kernel::meta::new_request_id;
use crate::kernel::{Answer, App, CallMeta};

/// The name this front end gives its calls in the kernel's logs.
pub const FRONTEND: &str = "dkms";

/// The only API version this front end speaks.
pub const API_VERSION: &str = "dkms-gcs-0.2";

/// The header that names the call, and tells this front end's requests apart on the one port.
pub const API_NAME_HEADER: &str = "x-kms-apiname";

/// Alibaba's limit on an instance API request body.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The front end: the way into the kernel.
pub struct InstanceApi {
    app: Arc<App>,
    max_body_bytes: usize,
}

impl InstanceApi {
    /// `max_body_bytes` is the server's message limit; Alibaba's 3 MB applies when it is lower.
    pub fn new(app: Arc<App>, max_body_bytes: usize) -> InstanceApi {
        InstanceApi { app, max_body_bytes: max_body_bytes.min(MAX_BODY_BYTES) }
    }

    /// Whether a request is this front end's: it names an instance API call.
    pub fn claims(request: &http::Request<Body>) -> bool {
        request.headers().contains_key(API_NAME_HEADER)
    }

    /// Serves one request: every one is a call, audited and answered.
    pub async fn serve(&self, request: http::Request<Body>) -> http::Response<Body> {
        let (parts, body) = request.into_parts();
        let mut meta = CallMeta::new(FRONTEND, &self.app.region, new_request_id());
        meta.peer = super::super::peer(&parts.extensions);
        meta.user_agent = header(&parts.headers, "user-agent").map(super::super::bounded).unwrap_or_default();
        meta.endpoint = header(&parts.headers, "host").map(super::super::bounded).unwrap_or_default();
        let api_name = header(&parts.headers, API_NAME_HEADER).unwrap_or_default().to_owned();
        let body = Limited::new(body, self.max_body_bytes).collect().await.map(|c| c.to_bytes());
        meta.request_bytes = body.as_ref().map_or(0, |b| b.len() as u64);
        let checked = signature::check(&self.app, &parts, body.as_deref().unwrap_or_default());
        meta.served_by_instance = Some(checked.instance);
        meta.credential = checked.presented;
        let Ok(body) = body else {
            // A body that was not read cannot be checked against its signature: this is why the call is refused.
            let limit = self.max_body_bytes;
            let error = KmsError::invalid_because(
                "Body",
                &format!("The request body is too large: the limit is {limit} bytes."),
            );
            let access_key_id = meta.credential.access_key_id().to_owned();
            meta.credential = crate::kernel::meta::Presented::Rejected { access_key_id, error };
            return response(calls::dispatch(&self.app, meta, &api_name, &[]).await);
        };
        if meta.refusal.is_none() {
            meta.refusal = refusal_before_call(&parts);
        }
        response(calls::dispatch(&self.app, meta, &api_name, &body).await)
    }
}

/// What the instance refuses before it looks at the call: a path other than
/// `/`, a method other than POST, another API version.
fn refusal_before_call(parts: &http::request::Parts) -> Option<KmsError> {
    if parts.uri.path() != "/" || parts.method != http::Method::POST {
        return Some(KmsError::new(crate::engine::ErrorCode::UnsupportedOperation).because("POST / only."));
    }
    match header(&parts.headers, "x-kms-apiversion") {
        Some(API_VERSION) => None,
        _ => Some(KmsError::invalid_because("x-kms-apiversion", "kmsim's instance API is dkms-gcs-0.2.")),
    }
}

/// The kernel's answer on the wire: the message (with the key version it used in
/// `x-kms-migrationkeyversionid`), or the protobuf `Error` with the HTTP status of kmsim's
/// error table (which is Alibaba's).
fn response(answer: Answer<calls::Reply>) -> http::Response<Body> {
    let Answer { request_id, result } = answer;
    let (status, body, key_version_id) = match result {
        Ok(reply) => (200, reply.body, reply.key_version_id),
        Err(error) => {
            let status = error.code.http_status();
            let message = pb::Error {
                status_code: i32::from(status),
                error_code: error.code.as_str().to_owned(),
                error_message: error.message,
                request_id: request_id.clone(),
            };
            (status, message.encode_to_vec(), String::new())
        }
    };
    let mut response =
        crate::frontends::bytes_response(status, "application/x-protobuf", ("x-kms-requestid", request_id), body);
    if let Ok(value) = http::HeaderValue::from_str(&key_version_id)
        && !key_version_id.is_empty()
    {
        response.headers_mut().insert("x-kms-migrationkeyversionid", value);
    }
    response
}
