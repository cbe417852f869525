//! The gRPC front end's credentials: kmsim's own request signature (see
//! [`super::signing`]) and mutual TLS. [`present`] turns what a call carries
//! into what the kernel judges identity from ([`Presented`]); policies and
//! refusals are the kernel's.

use std::sync::Arc;
use std::time::SystemTime;

use tonic::Request;

use super::headers;
use super::signing::{self, Signed};
use crate::context::AuthMethod;
use crate::engine::{ErrorCode, KmsError, KmsResult};
use crate::kernel::App;
use crate::kernel::identity::AuthMode;
use crate::kernel::meta::Presented;

/// What the signature covers that tonic does not hand a handler: the method
/// path, and the request message's bytes as they were sent (a re-encoding of
/// the decoded message could order map entries differently, and would drop
/// fields the server does not know). The [edge](super::edge) puts it in the
/// request's extensions.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    pub path: Arc<str>,
    /// SHA-256 of the message bytes; only for calls that carry a signature.
    pub digest: Option<[u8; 32]>,
}

/// What `request` proves about its caller. With auth off nothing is checked:
/// the id it names is taken at its word. A client certificate that names a
/// known credential identifies the caller by itself; otherwise the call
/// must be signed.
pub fn present<T>(app: &App, request: &Request<T>) -> Presented {
    let metadata = request.metadata();
    let claimed = super::header(metadata, headers::ACCESS_KEY_ID);
    let mode = app.identity.mode();
    let now = app.engine.clock().now();
    let lookup = |id: &str| app.identity.lookup(&app.engine, id, now);

    // A certificate naming no credential leaves the call to its signature.
    let certified = certificate_identity(request).and_then(|id| Some((lookup(&id)?, id)));
    if let Some((credential, id)) = certified {
        if mode == AuthMode::Required && claimed.as_ref().is_some_and(|claimed| *claimed != id) {
            // A certificate for one identity and a signature for another: neither is trusted.
            let access_key_id = claimed.unwrap_or_default();
            return Presented::Rejected { access_key_id, error: ErrorCode::SignatureNotMatch.into() };
        }
        return Presented::Verified { access_key_id: id, credential, by: AuthMethod::Certificate };
    }
    match (claimed, mode) {
        (None, AuthMode::Off) => Presented::Nothing,
        (None, AuthMode::Required) => {
            Presented::Rejected { access_key_id: String::new(), error: KmsError::missing(headers::ACCESS_KEY_ID) }
        }
        (Some(id), AuthMode::Off) => Presented::Claimed(id),
        (Some(id), AuthMode::Required) => match verify_signature(request, lookup(&id)) {
            Ok(credential) => Presented::Verified { access_key_id: id, credential, by: AuthMethod::Signature },
            Err(error) => Presented::Rejected { access_key_id: id, error },
        },
    }
}

/// Checks `request`'s signature under `credential`'s secret, and its date.
fn verify_signature<T>(
    request: &Request<T>,
    credential: Option<crate::engine::access::Credential>,
) -> KmsResult<crate::engine::access::Credential> {
    let metadata = request.metadata();
    // A ClientKey of Alibaba's kind signs with RSA on the instance API only: here it names nothing.
    let credential = credential.filter(|c| c.secret.is_some()).ok_or(ErrorCode::AccessKeyNotFound)?;
    let date = super::header(metadata, headers::DATE).ok_or_else(|| KmsError::missing(headers::DATE))?;
    let signed_at = signing::parse_date(&date).ok_or_else(|| {
        KmsError::invalid_because(headers::DATE, "Write an RFC 3339 UTC time such as 2026-11-21T09:30:00Z.")
    })?;
    let given = super::header(metadata, headers::SIGNATURE).ok_or_else(|| KmsError::missing(headers::SIGNATURE))?;
    let facts = request.extensions().get::<RequestFacts>();
    let (Some(path), Some(digest)) = (facts.map(|f| &f.path), facts.and_then(|f| f.digest.as_ref())) else {
        return Err(ErrorCode::SignatureNotMatch.into());
    };
    let region = super::header(metadata, headers::REGION).unwrap_or_default();
    let call = Signed { path, date: &date, region: &region, digest };
    let secret = credential.secret.as_ref().map_or("", |s| s.expose());
    if !signing::verify(secret, &call, &given) {
        return Err(ErrorCode::SignatureNotMatch.into());
    }
    if !signing::within_skew(signed_at, SystemTime::now()) {
        return Err(ErrorCode::RequestTimeTooSkewed.into());
    }
    Ok(credential)
}

/// The credential id a client certificate names: its subject's common name.
/// Only certificates the TLS layer verified against `--tls-client-ca` get here.
fn certificate_identity<T>(request: &Request<T>) -> Option<String> {
    let peer = request.extensions().get::<crate::server::Peer>()?;
    let leaf = peer.certificates.first()?;
    super::tls::common_name(leaf.as_ref())
}
