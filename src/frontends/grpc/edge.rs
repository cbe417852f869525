//! The gRPC front end's edge: a tower layer in front of every service.
//!
//! It does two things no handler can. It records what a signature covers
//! and tonic does not hand a handler ([`RequestFacts`]). And it sees the
//! calls tonic answers before any handler runs (a body that does not decode,
//! a message over `--max-message-bytes`, a method kmsim does not serve) and
//! the calls whose headers are over the limit, and puts each of them through
//! the kernel as a refused [`Undecoded`] call, so that every call leaves its
//! record and gets a precise error with a request id, never `INTERNAL`.
//!
//! A handler's every answer carries `x-kms-request-id`; an answer without it
//! is one tonic made on its own, which is how the edge tells them apart.
//! Health and reflection are not kmsim calls and pass through unaudited.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::{BodyExt, Full};
use serde_json::json;
use tonic::Code;
use tonic::body::Body;
use tonic::codegen::http;

use super::credentials::RequestFacts;
use super::signing::{self, BoxError};
use super::{FRONTEND, headers, status};
use crate::engine::KmsError;
use crate::engine::instances::is_region_id;
use crate::frontends::bounded;
use crate::kernel::meta::{client_request_id, new_request_id};
use crate::kernel::{App, CallMeta, OpSpec, Presented, Undecoded};

/// The bytes gRPC puts before each message: a compression flag and the length.
const GRPC_FRAME_HEADER: usize = 5;

/// Paths served by tonic's own health and reflection services.
const UNAUDITED_PREFIXES: [&str; 3] =
    ["/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"];

/// What the edge refuses a call for, and how each reads on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The body is not the method's request message (or not UTF-8 where a string must be).
    Undecodable,
    /// The message is over `--max-message-bytes`.
    TooLarge,
    /// The headers are over [`Edge::max_header_bytes`].
    HeadersTooLarge,
    /// No kmsim.v1 method has this path.
    UnknownMethod,
}

impl Refusal {
    fn error(self, method: &str, limits: &Limits) -> KmsError {
        match self {
            Refusal::Undecodable => KmsError::invalid_because(
                "Body",
                &format!("The request is not a well-formed {method} request message."),
            ),
            Refusal::TooLarge => KmsError::invalid_because(
                "Body",
                &format!(
                    "The request message is too large: the limit is {} bytes (--max-message-bytes).",
                    limits.max_message_bytes
                ),
            ),
            Refusal::HeadersTooLarge => KmsError::invalid_because(
                "Headers",
                &format!("The request's headers are too large: the limit is {} bytes.", limits.max_header_bytes),
            ),
            Refusal::UnknownMethod => {
                KmsError::invalid_because("Method", "Call a method of the kmsim.v1 services (see reflection).")
            }
        }
    }

    /// The gRPC code: the error's own, but for sizes, which gRPC calls out of range.
    fn code(self, error: &KmsError) -> Code {
        match self {
            Refusal::TooLarge | Refusal::HeadersTooLarge => Code::OutOfRange,
            Refusal::UnknownMethod => Code::Unimplemented,
            Refusal::Undecodable => status::grpc_code(error.code),
        }
    }
}

/// The bounds the edge enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_header_bytes: usize,
}

/// The layer; see the module docs.
#[derive(Clone)]
pub struct Edge {
    app: Arc<App>,
    limits: Limits,
}

impl Edge {
    pub fn new(app: Arc<App>, limits: Limits) -> Edge {
        Edge { app, limits }
    }
}

impl<S> tower::Layer<S> for Edge {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> EdgeService<S> {
        EdgeService { inner, edge: self.clone() }
    }
}

#[derive(Clone)]
pub struct EdgeService<S> {
    inner: S,
    edge: Edge,
}

impl<S> tower::Service<http::Request<Body>> for EdgeService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<http::Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone is the one that was not made ready; swap so the ready one serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let edge = self.edge.clone();
        Box::pin(async move {
            let path: Arc<str> = Arc::from(request.uri().path());
            let (mut parts, body) = request.into_parts();
            if UNAUDITED_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) {
                return inner.call(http::Request::from_parts(parts, body)).await.map_err(Into::into);
            }
            let arrived = Arrival::of(&parts);
            if header_bytes(&parts.headers) > edge.limits.max_header_bytes {
                return Ok(edge.refuse(arrived, &path, Refusal::HeadersTooLarge, 0).await);
            }
            let counted = Arc::new(AtomicU64::new(0));
            let body = if parts.headers.contains_key(headers::SIGNATURE) {
                // A signature is over the whole body, so it is read before the call: no
                // further than the limit every request has, whatever the signature claims.
                let limit = edge.limits.max_message_bytes.saturating_add(GRPC_FRAME_HEADER);
                let (framed, digest) = match signing::digest_body(body, limit).await {
                    Ok(read) => read,
                    Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                        return Ok(edge.refuse(arrived, &path, Refusal::TooLarge, limit as u64).await);
                    }
                    Err(e) => return Err(e),
                };
                counted.store(framed.len() as u64, Ordering::Relaxed);
                parts.extensions.insert(RequestFacts { path: path.clone(), digest: Some(digest) });
                Body::new(Full::new(framed))
            } else {
                parts.extensions.insert(RequestFacts { path: path.clone(), digest: None });
                let counter = counted.clone();
                Body::new(body.map_frame(move |frame| {
                    if let Some(data) = frame.data_ref() {
                        counter.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    frame
                }))
            };
            let response = inner.call(http::Request::from_parts(parts, body)).await.map_err(Into::into)?;
            if response.headers().contains_key(headers::REQUEST_ID) {
                return Ok(response);
            }
            // tonic answered before any handler ran: classify what it saw by what it said.
            let refusal = match (operation_of(&path), grpc_status(&response)) {
                (None, _) => Refusal::UnknownMethod,
                (Some(_), Some(Code::OutOfRange)) => Refusal::TooLarge,
                (Some(_), _) => Refusal::Undecodable,
            };
            Ok(edge.refuse(arrived, &path, refusal, counted.load(Ordering::Relaxed)).await)
        })
    }
}

/// What the edge keeps of a call before handing it on, in case it must audit the call itself.
struct Arrival {
    /// The values of [`Arrival::KEPT`], in order.
    kept: [Option<http::HeaderValue>; 4],
    peer: Option<SocketAddr>,
}

impl Arrival {
    /// The headers a refused call's record is made from.
    const KEPT: [&str; 4] = [headers::CLIENT_REQUEST_ID, headers::USER_AGENT, headers::REGION, headers::ACCESS_KEY_ID];

    fn of(parts: &http::request::Parts) -> Arrival {
        Arrival {
            kept: Self::KEPT.map(|name| parts.headers.get(name).cloned()),
            peer: crate::frontends::peer(&parts.extensions),
        }
    }

    /// The value of the kept header `name`, as text.
    fn header(&self, name: &str) -> Option<String> {
        let at = Self::KEPT.iter().position(|kept| *kept == name)?;
        let value = self.kept[at].as_ref()?.to_str().ok()?.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }
}

impl Edge {
    /// Audits `path`'s call as refused for `refusal` and answers it.
    async fn refuse(&self, arrived: Arrival, path: &str, refusal: Refusal, request_bytes: u64) -> http::Response<Body> {
        let (spec, params) = match operation_of(path) {
            Some(spec) => (spec, json!({})),
            None => (&OpSpec::UNKNOWN_OPERATION, json!({ "Method": bounded(path) })),
        };
        let error = refusal.error(spec.event_name, &self.limits);
        let code = refusal.code(&error);
        let mut meta = CallMeta::new(FRONTEND, &self.app.region, new_request_id());
        meta.client_request_id = client_request_id(arrived.header(headers::CLIENT_REQUEST_ID).as_deref());
        meta.peer = arrived.peer;
        meta.user_agent = arrived.header(headers::USER_AGENT).map(|ua| bounded(&ua)).unwrap_or_default();
        if let Some(region) = arrived.header(headers::REGION).filter(|r| is_region_id(r)) {
            meta.region = region;
        }
        // Nothing was decoded, so nothing was verified: the id the call named is recorded as claimed.
        let claimed = arrived.header(headers::ACCESS_KEY_ID).map(|id| bounded(&id)).unwrap_or_default();
        meta.credential = Presented::Rejected { access_key_id: claimed, error: error.clone() };
        meta.request_bytes = request_bytes;
        meta.refusal = Some(error);
        let answer = self.app.execute(meta, Undecoded { spec, params }, |()| ((), 0)).await;
        let error = answer.result.err().unwrap_or_else(KmsError::internal);
        status::to_status_with_code(&error, &answer.request_id, code).into_http()
    }
}

/// The catalogue entry of the kmsim.v1 method at `path`: this front end's table
/// of wire names, which are the catalogue's own names by design.
pub fn operation_of(path: &str) -> Option<&'static OpSpec> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let service = service.strip_prefix("kmsim.v1.")?;
    let catalogue_service = match service {
        "KeyManagementService" | "InstanceService" | "SecretsManagerService" => "Kms",
        "AuditService" => "KmsimAudit",
        "SimulationService" => "KmsimSimulation",
        "EventService" => "KmsimEvents",
        "AccessService" => "KmsimAccess",
        _ => return None,
    };
    OpSpec::ALL.iter().find(|op| op.event_name == method && op.service.as_str() == catalogue_service)
}

/// The status tonic put in a trailers-only answer.
fn grpc_status(response: &http::Response<Body>) -> Option<Code> {
    let value = response.headers().get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(Code::from_i32(value))
}

/// The size of a header list as HTTP/2 counts it (RFC 7540, 6.5.2).
fn header_bytes(headers: &http::HeaderMap) -> usize {
    headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 32).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_names_its_catalogue_entry_and_no_other() {
        let encrypt = operation_of("/kmsim.v1.KeyManagementService/Encrypt").expect("Encrypt");
        assert_eq!(*encrypt, OpSpec::ENCRYPT);
        let secret = operation_of("/kmsim.v1.SecretsManagerService/GetSecretValue").expect("GetSecretValue");
        assert_eq!(*secret, OpSpec::GET_SECRET_VALUE);
        assert!(operation_of("/kmsim.v1.AuditService/Encrypt").is_none(), "Encrypt is not an audit method");
        assert!(operation_of("/kmsim.v1.KeyManagementService/Nope").is_none());
        assert!(operation_of("/other.v1.KeyManagementService/Encrypt").is_none());
        assert!(operation_of("nonsense").is_none());
    }
}
