//! Front ends: each decodes its wire requests into kernel operations and a
//! [`CallMeta`](crate::kernel::CallMeta), verifies its own credentials, and
//! renders the kernel's answer the way its clients expect. None of them
//! audits, authorizes or touches the store; that is the kernel's.

pub mod alibaba;
pub mod aws;
pub mod console;
pub mod door;
pub mod grpc;
pub mod json;
pub mod query;
pub mod reset;
pub mod text;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::engine::{KmsError, KmsResult};
use crate::kernel::{Answer, App, CallMeta, OpSpec, Operation, Undecoded};

/// The longest text a record keeps of a header a client chose freely (a User-Agent, a method path).
pub const MAX_RECORDED_TEXT: usize = 256;

/// `text` cut to what a record keeps of a value a client chose freely.
pub fn bounded(text: &str) -> String {
    text.chars().take(MAX_RECORDED_TEXT).collect()
}

/// The body type every front end answers with, tonic's own.
pub type Body = tonic::body::Body;

/// Decodes a request with a table row's decoders: a function boundary for their `?`.
pub fn decode<Op>(decoder: impl FnOnce() -> KmsResult<Op>) -> KmsResult<Op> {
    decoder()
}

/// Runs a call whose wire request a front end decoded into `decoded`: the
/// operation itself, or why its parameters did not decode, in which case the
/// call is refused as that operation (`spec`), audited like any refusal.
pub async fn execute_decoded<Op: Operation, R: Default>(
    app: &Arc<App>,
    mut meta: CallMeta,
    spec: &'static OpSpec,
    decoded: KmsResult<Op>,
    render: impl FnOnce(Op::Output) -> (R, u64) + Send,
) -> Answer<R> {
    match decoded {
        Ok(op) => app.execute(meta, op, render).await,
        Err(error) => {
            meta.refusal.get_or_insert(error);
            app.execute(meta, Undecoded { spec, params: serde_json::json!({}) }, |()| (R::default(), 0)).await
        }
    }
}

/// A call naming an operation the front end does not offer: audited as
/// `UnknownOperation`, keeping the name it used under `param`.
pub async fn refuse_unknown(
    app: &Arc<App>,
    mut meta: CallMeta,
    param: &str,
    name: &str,
    error: KmsError,
) -> Answer<Vec<u8>> {
    meta.refusal.get_or_insert(error);
    let params = serde_json::json!({ param: bounded(name) });
    app.execute(meta, Undecoded { spec: &OpSpec::UNKNOWN_OPERATION, params }, |()| (Vec::new(), 0)).await
}

/// The client's address, from what the listener put in the request's extensions.
pub fn peer(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions.get::<crate::server::Peer>().and_then(|peer| peer.remote)
}

/// Runs a decoded call and renders its output as a JSON body: the JSON front ends' last step.
pub async fn execute_json<Op: crate::kernel::Described>(
    app: &Arc<App>,
    meta: CallMeta,
    decoded: KmsResult<Op>,
    encode: impl FnOnce(Op::Output) -> serde_json::Value + Send + 'static,
) -> Answer<Vec<u8>> {
    execute_decoded(app, meta, Op::SPEC, decoded, move |output| {
        let body = serde_json::to_vec(&encode(output)).unwrap_or_default();
        let size = body.len() as u64;
        (body, size)
    })
    .await
}

/// An answer of kmsim's own HTTP paths (the console's calls, the reset): the body as it is, or a refusal as
/// `{"Code", "Message", "HttpStatus", "RequestId"}` with kmsim's HTTP status; the request id in
/// `x-kmsim-request-id` either way.
pub fn kmsim_json_response(answer: Answer<Vec<u8>>) -> http::Response<Body> {
    let Answer { request_id, result } = answer;
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err(error) => {
            let status = error.code.http_status();
            let body = serde_json::json!({
                "Code": error.code.as_str(),
                "Message": error.message,
                "HttpStatus": status,
                "RequestId": request_id,
            });
            (status, serde_json::to_vec(&body).unwrap_or_default())
        }
    };
    bytes_response(status, "application/json", ("x-kmsim-request-id", request_id), body)
}

/// An HTTP answer: `status`, a body of `content_type`, and the call's request id in the header `id.0`
/// (each front end's own name for it). A 500 with no body if the parts do not make a response.
pub fn bytes_response(status: u16, content_type: &str, id: (&str, String), body: Vec<u8>) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(id.0, id.1)
        .body(Body::new(http_body_util::Full::new(bytes::Bytes::from(body))))
        .unwrap_or_else(|_| {
            let mut response = http::Response::new(Body::empty());
            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            response
        })
}

/// A request header's value, trimmed, if it is there, is text and is not empty.
pub fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then_some(value)
}
