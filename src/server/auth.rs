//! Who is calling, and may they: authentication of each call (signature or
//! client certificate) and the permission checks around the operation.
//!
//! With `--auth off` (the default) nothing is refused: a caller may name
//! itself with `x-kms-access-key-id` and its records say so, with the
//! identity kmsim knows for that id if it knows one. With `--auth required`:
//!
//! 1. Before the operation runs, the call must be signed (see
//!    [`crate::signing`]) by a known, enabled credential within the skew
//!    window, or arrive over mutual TLS with a certificate whose common name
//!    is such a credential's id. The simulation and access-management
//!    services are for the admin only (GetCallerIdentity is open to all).
//! 2. After the operation has resolved what it touches (which key, through
//!    which alias) and before anything is committed, the caller's policies
//!    and the keys' policies must allow the action on each resource.
//!
//! A refusal at either point goes through the dispatcher like any failure:
//! audited with the caller's identity, nothing changed.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;
use tonic::Request;

use super::dispatch::{REGION_HEADER, header};
use crate::audit::{OpSpec, ServiceName};
use crate::context::{AuthMethod, CallContext, Principal};
use crate::engine::access::Credential;
use crate::engine::{Engine, ErrorCode, KmsError, KmsResult};
use crate::signing::{self, ACCESS_KEY_ID_HEADER, BoxError, Credentials, DATE_HEADER, SIGNATURE_HEADER, Signed};
use http_body_util::Full;
use tonic::body::Body;
use tonic::codegen::http;

/// `--auth`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// Callers are taken at their word and nothing is refused.
    #[default]
    Off,
    /// Every call is authenticated and authorised.
    Required,
}

impl AuthMode {
    pub fn parse(text: &str) -> Option<AuthMode> {
        match text {
            "off" => Some(AuthMode::Off),
            "required" => Some(AuthMode::Required),
            _ => None,
        }
    }
}

/// What the signature covers that tonic does not hand a handler: the method
/// path, and the request message's bytes as they were sent (a re-encoding of
/// the decoded message could order map entries differently, and would drop
/// fields the server does not know). [`CaptureLayer`] puts it in the
/// request's extensions.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    pub path: Arc<str>,
    /// SHA-256 of the message bytes; only for calls that carry a signature.
    pub digest: Option<[u8; 32]>,
}

/// The most a signed request's body may hold: tonic's default message limit and a frame header.
const MAX_SIGNED_BODY: usize = 4 * 1024 * 1024 + 5;

/// Sits in front of the services and records [`RequestFacts`]. Only a signed
/// call's body is read ahead (to digest it); others pass straight through.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaptureLayer;

impl<S> tower::Layer<S> for CaptureLayer {
    type Service = Capture<S>;

    fn layer(&self, inner: S) -> Capture<S> {
        Capture { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Capture<S> {
    inner: S,
}

impl<S> tower::Service<http::Request<Body>> for Capture<S>
where
    S: tower::Service<http::Request<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone is the one that was not made ready; swap so the ready one serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let path: Arc<str> = Arc::from(request.uri().path());
            let (mut parts, body) = request.into_parts();
            let body = if parts.headers.contains_key(SIGNATURE_HEADER) {
                let (framed, digest) = signing::digest_body(body, MAX_SIGNED_BODY).await?;
                parts.extensions.insert(RequestFacts { path, digest: Some(digest) });
                Body::new(Full::new(framed))
            } else {
                parts.extensions.insert(RequestFacts { path, digest: None });
                body
            };
            inner.call(http::Request::from_parts(parts, body)).await.map_err(Into::into)
        })
    }
}

pub struct Authenticator {
    mode: AuthMode,
    admin: Option<Credentials>,
}

impl Authenticator {
    pub fn new(mode: AuthMode, admin: Option<Credentials>) -> Authenticator {
        Authenticator { mode, admin }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Establishes who `request` is from in `cx`, or the error it is refused
    /// with (`cx` then carries the id it claimed, unverified).
    pub fn authenticate<T>(&self, engine: &Engine, request: &Request<T>, cx: &mut CallContext) -> KmsResult<()> {
        let metadata = request.metadata();
        let claimed = header(metadata, ACCESS_KEY_ID_HEADER);
        cx.access_key_id = claimed.clone().unwrap_or_default();
        cx.principal = match (&claimed, self.mode) {
            (Some(_), _) => Principal::Unverified,
            (None, AuthMode::Off) => Principal::Account,
            (None, AuthMode::Required) => Principal::Anonymous,
        };

        // A certificate naming no credential leaves the call to its signature.
        let certified = certificate_identity(request).and_then(|id| Some((self.lookup(engine, &id, cx)?, id)));
        if let Some((credential, id)) = certified {
            if self.mode == AuthMode::Required {
                if claimed.as_ref().is_some_and(|claimed| *claimed != id) {
                    // A certificate for one identity and a signature for another: neither is trusted.
                    return Err(ErrorCode::SignatureNotMatch.into());
                }
                if let Some(refusal) = credential.refusal {
                    cx.access_key_id = id;
                    return Err(refusal);
                }
            }
            cx.access_key_id = id;
            cx.principal = credential.principal;
            cx.authenticated_by = AuthMethod::Certificate;
            return Ok(());
        }

        let Some(id) = claimed else {
            return match self.mode {
                AuthMode::Off => Ok(()),
                AuthMode::Required => Err(KmsError::missing(ACCESS_KEY_ID_HEADER)),
            };
        };
        let found = self.lookup(engine, &id, cx);
        if self.mode == AuthMode::Off {
            if let Some(credential) = found {
                cx.principal = credential.principal;
            }
            return Ok(());
        }
        let credential = found.ok_or(ErrorCode::AccessKeyNotFound)?;
        let date = header(metadata, DATE_HEADER).ok_or_else(|| KmsError::missing(DATE_HEADER))?;
        let signed_at = signing::parse_date(&date).ok_or_else(|| {
            KmsError::invalid_because(DATE_HEADER, "Write an RFC 3339 UTC time such as 2026-11-21T09:30:00Z.")
        })?;
        let given = header(metadata, SIGNATURE_HEADER).ok_or_else(|| KmsError::missing(SIGNATURE_HEADER))?;
        let facts = request.extensions().get::<RequestFacts>();
        let (Some(path), Some(digest)) = (facts.map(|f| &f.path), facts.and_then(|f| f.digest.as_ref())) else {
            return Err(ErrorCode::SignatureNotMatch.into());
        };
        let region = header(metadata, REGION_HEADER).unwrap_or_default();
        let call = Signed { path, date: &date, region: &region, digest };
        if !signing::verify(credential.secret.expose(), &call, &given) {
            return Err(ErrorCode::SignatureNotMatch.into());
        }
        if !signing::within_skew(signed_at, SystemTime::now()) {
            return Err(ErrorCode::RequestTimeTooSkewed.into());
        }
        if let Some(refusal) = credential.refusal {
            return Err(refusal);
        }
        cx.principal = credential.principal;
        cx.authenticated_by = AuthMethod::Signature;
        Ok(())
    }

    /// The credential `id` names: the admin's, or an AccessKey or ClientKey.
    fn lookup(&self, engine: &Engine, id: &str, cx: &CallContext) -> Option<Credential> {
        match &self.admin {
            Some(admin) if admin.access_key_id == id => {
                Some(Credential { secret: admin.secret.clone(), principal: Principal::Admin, refusal: None })
            }
            _ => engine.credential(id, cx.received_at),
        }
    }

    /// Before the operation: services only the admin may call.
    pub fn admit_service(&self, op: &OpSpec, cx: &CallContext) -> KmsResult<()> {
        let admin_only = matches!(op.service, ServiceName::KmsimSimulation | ServiceName::KmsimAccess)
            && *op != OpSpec::GET_CALLER_IDENTITY;
        if self.mode == AuthMode::Required && admin_only && cx.principal != Principal::Admin {
            return Err(ErrorCode::NoPermission.into());
        }
        Ok(())
    }

    /// After the operation: whether the caller's policies, and the policies of
    /// the keys it touched, allow it.
    pub fn authorize(&self, engine: &Engine, op: &OpSpec, cx: &CallContext, params: &Value) -> KmsResult<()> {
        if self.mode == AuthMode::Off || !matches!(cx.principal, Principal::User { .. } | Principal::Aap { .. }) {
            return Ok(());
        }
        let Some(product) = product(op.service) else { return Ok(()) };
        let action = format!("{product}:{}", op.event_name);
        engine.authorize(cx, &action, &resources(engine.account_id(), product, cx, params))
    }
}

/// The policy action namespace of a service; `None` for admin-only services.
pub fn product(service: ServiceName) -> Option<&'static str> {
    match service {
        ServiceName::Kms => Some("kms"),
        ServiceName::KmsimAudit => Some("actiontrail"),
        ServiceName::KmsimEvents => Some("cms"),
        ServiceName::KmsimSimulation | ServiceName::KmsimAccess => None,
    }
}

/// The ARNs a call is authorised against: the secret it is about; else the keys it resolved (ReEncrypt's
/// source key too), the alias it manages; failing those, what the request
/// named; failing that, everything of the product in the region.
fn resources(account: &str, product: &str, cx: &CallContext, params: &Value) -> Vec<String> {
    let facts = cx.trail.snapshot();
    let region = &cx.region;
    let named = |field: &str| params.get(field).and_then(Value::as_str).filter(|s| !s.is_empty());
    let alias_arn = |alias: &str| format!("acs:kms:{region}:{account}:{alias}");
    // A secret call is authorised on its secret alone, not on the key that seals it.
    if !facts.secret_arn.is_empty() {
        return vec![facts.secret_arn];
    }
    let mut arns: Vec<String> =
        Some(facts.key_arn).filter(|a| !a.is_empty()).into_iter().chain(facts.referenced_keys).collect();
    if arns.is_empty() {
        arns.extend(named("KeyId").map(|id| match id {
            arn if arn.starts_with("acs:") => arn.to_owned(),
            alias if alias.starts_with("alias/") => alias_arn(alias),
            id => format!("acs:kms:{region}:{account}:key/{id}"),
        }));
    }
    arns.extend(named("AliasName").map(alias_arn));
    if arns.is_empty() {
        arns.push(format!("acs:{product}:{region}:{account}:*"));
    }
    arns
}

/// The credential id a client certificate names: its subject's common name.
/// Only certificates the TLS layer verified against `--tls-client-ca` get here.
fn certificate_identity<T>(request: &Request<T>) -> Option<String> {
    let certs = request.peer_certs()?;
    let leaf = certs.first()?;
    crate::server::tls::common_name(leaf.as_ref())
}
