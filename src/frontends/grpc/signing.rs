//! The gRPC front end's request signature, for both ends of a call.
//!
//! A signed call carries three metadata entries:
//!
//! - `x-kms-access-key-id`: the AccessKey (or ClientKey) id;
//! - `x-kms-date`: when it was signed, RFC 3339 UTC (`2026-11-21T09:30:00Z`);
//! - `x-kms-signature`: lowercase hex of HMAC-SHA256, under the secret, over
//!   the [string to sign](string_to_sign):
//!   `<method path>\n<date>\n<x-kms-region, or empty>\n<hex SHA-256 of the request message>`.
//!
//! The message digest is over the request message's bytes exactly as sent
//! (the payload of its gRPC frame), so map fields in any order and fields the
//! server does not know are all covered. A date more than [`MAX_SKEW`] away from the server's wall clock
//! is refused, so a captured call cannot be replayed later. Wall clock, not
//! the simulation clock: a test that jumps the simulation a year ahead keeps
//! signing with the time its machine shows.
//!
//! [`SigningLayer`] signs every call a tonic client makes. It is a tower
//! layer rather than a `tonic::service::Interceptor` because an interceptor
//! only sees metadata, and the signature covers the message.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes};
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::body::Body;
use tonic::codegen::http;

use super::headers;
use crate::audit::chain::{hex, unhex};
use crate::credentials::Credentials;

/// How far a signature's date may be from the server's clock, either way.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// What a signature covers: the method, the date, the region and the message.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// The gRPC method path, `/kmsim.v1.KeyManagementService/Encrypt`.
    pub path: &'a str,
    /// `x-kms-date`.
    pub date: &'a str,
    /// `x-kms-region`, empty when the call names none.
    pub region: &'a str,
    /// SHA-256 of the request message's bytes.
    pub digest: &'a [u8; 32],
}

/// SHA-256 of a request message's bytes.
pub fn message_digest(message: &[u8]) -> [u8; 32] {
    Sha256::digest(message).into()
}

/// The text the HMAC is computed over.
pub fn string_to_sign(call: &Signed<'_>) -> String {
    format!("{}\n{}\n{}\n{}", call.path, call.date, call.region, hex(call.digest))
}

fn mac(secret: &str, call: &Signed<'_>) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(string_to_sign(call).as_bytes());
    mac
}

/// The `x-kms-signature` of `call` under `secret`.
pub fn signature(secret: &str, call: &Signed<'_>) -> String {
    hex(&mac(secret, call).finalize().into_bytes())
}

/// Whether `given` is the signature of `call`, compared in constant time.
pub fn verify(secret: &str, call: &Signed<'_>, given: &str) -> bool {
    unhex::<32>(given).is_some_and(|given| mac(secret, call).verify_slice(&given).is_ok())
}

/// `x-kms-date` for `at`.
pub fn format_date(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at).replace_nanosecond(0).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(&Rfc3339).expect("an RFC 3339 date formats")
}

/// Reads `x-kms-date`.
pub fn parse_date(text: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok().map(SystemTime::from)
}

/// Whether `date` is within [`MAX_SKEW`] of `now`.
pub fn within_skew(date: SystemTime, now: SystemTime) -> bool {
    let apart = now.duration_since(date).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or(Duration::MAX);
    apart <= MAX_SKEW
}

/// Signs every call of the channel it wraps:
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use kmsim::proto::key_management_service_client::KeyManagementServiceClient;
/// use kmsim::credentials::Credentials;
/// use kmsim::frontends::grpc::signing::SigningLayer;
///
/// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect().await?;
/// let signed = tower::ServiceBuilder::new()
///     .layer(SigningLayer::new(Credentials::new("LTAI...", "secret")))
///     .service(channel);
/// let mut kms = KeyManagementServiceClient::new(signed);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SigningLayer {
    credentials: Arc<Credentials>,
}

impl SigningLayer {
    pub fn new(credentials: Credentials) -> SigningLayer {
        SigningLayer { credentials: Arc::new(credentials) }
    }
}

impl<S> tower::Layer<S> for SigningLayer {
    type Service = SigningService<S>;

    fn layer(&self, inner: S) -> SigningService<S> {
        SigningService { inner, credentials: self.credentials.clone() }
    }
}

/// The service [`SigningLayer`] makes.
#[derive(Clone, Debug)]
pub struct SigningService<S> {
    inner: S,
    credentials: Arc<Credentials>,
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B> tower::Service<http::Request<Body>> for SigningService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<B>;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone is the one that was not made ready; swap so the ready one serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let credentials = self.credentials.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            // Every kmsim request is one message, so the body is complete once collected.
            let (framed, digest) = digest_body(body, usize::MAX).await?;
            let date = format_date(SystemTime::now());
            let region = parts.headers.get(crate::frontends::grpc::headers::REGION).and_then(|v| v.to_str().ok());
            let call = Signed { path: parts.uri.path(), date: &date, region: region.unwrap_or(""), digest: &digest };
            let signature = signature(credentials.secret.expose(), &call);
            let headers = &mut parts.headers;
            headers.insert(headers::ACCESS_KEY_ID, credentials.access_key_id.parse()?);
            headers.insert(headers::DATE, date.parse()?);
            headers.insert(headers::SIGNATURE, signature.parse()?);
            let request = http::Request::from_parts(parts, Body::new(http_body_util::Full::new(framed)));
            inner.call(request).await.map_err(Into::into)
        })
    }
}

/// Reads a gRPC request body of at most `limit` bytes: its bytes, to send on,
/// and the digest of the message they carry. Client and server both sign over this.
pub async fn digest_body(body: Body, limit: usize) -> Result<(Bytes, [u8; 32]), BoxError> {
    let framed = http_body_util::Limited::new(body, limit).collect().await?.to_bytes();
    let digest = message_digest(&grpc_messages(framed.clone()));
    Ok((framed, digest))
}

/// The message bytes inside gRPC length-prefixed frames (1 flag byte, 4
/// length bytes, the message), concatenated.
fn grpc_messages(mut framed: Bytes) -> Vec<u8> {
    let mut out = Vec::with_capacity(framed.len());
    while framed.remaining() >= 5 {
        framed.advance(1);
        let len = framed.get_u32() as usize;
        let take = len.min(framed.remaining());
        out.extend_from_slice(&framed[..take]);
        framed.advance(take);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_the_same_path_date_region_message_and_secret() {
        let digest = message_digest(b"\x0a\x03key");
        let call = Signed {
            path: "/kmsim.v1.KeyManagementService/Encrypt",
            date: "2026-11-21T09:30:00Z",
            region: "cn-hangzhou",
            digest: &digest,
        };
        let given = signature("secret", &call);
        assert_eq!(given.len(), 64);
        assert!(verify("secret", &call, &given));
        assert!(!verify("other", &call, &given));
        assert!(!verify("secret", &Signed { path: "/kmsim.v1.KeyManagementService/Decrypt", ..call }, &given));
        assert!(!verify("secret", &Signed { date: "2026-11-21T09:30:01Z", ..call }, &given));
        assert!(!verify("secret", &Signed { region: "cn-shanghai", ..call }, &given));
        assert!(!verify("secret", &Signed { digest: &message_digest(b"\x0a\x03kez"), ..call }, &given));
        assert!(!verify("secret", &call, "not hex"));
    }

    /// A known answer, for implementing the signer in another language.
    #[test]
    fn the_string_to_sign_is_path_date_region_and_message_digest() {
        let digest = message_digest(b"");
        let text = string_to_sign(&Signed { path: "/p", date: "d", region: "", digest: &digest });
        assert_eq!(text, "/p\nd\n\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let call = Signed { path: "/p", date: "d", region: "", digest: &digest };
        // Python: hmac.new(b"k", text.encode(), hashlib.sha256).hexdigest()
        assert_eq!(signature("k", &call), "c1597bf3dc995ce07028063cb73462e47f2300e9407372ec76d6333577aa4519");
    }

    #[test]
    fn dates_round_trip_and_the_skew_window_is_fifteen_minutes_either_way() {
        let now = parse_date("2026-11-21T09:30:00Z").unwrap();
        assert_eq!(format_date(now), "2026-11-21T09:30:00Z");
        assert!(within_skew(now - MAX_SKEW, now));
        assert!(within_skew(now + MAX_SKEW, now));
        assert!(!within_skew(now - MAX_SKEW - Duration::from_secs(1), now));
        assert!(!within_skew(now + MAX_SKEW + Duration::from_secs(1), now));
        assert!(parse_date("yesterday").is_none());
    }

    #[test]
    fn credentials_files_are_read_in_both_spellings_and_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let cli_output = dir.path().join("alice.json");
        std::fs::write(&cli_output, r#"{"accessKeyId":"LTAIa","userName":"alice","accessKeySecret":"s1"}"#).unwrap();
        let read = Credentials::read_file(&cli_output).unwrap();
        assert_eq!((read.access_key_id.as_str(), read.secret.expose()), ("LTAIa", "s1"));

        let admin = dir.path().join("admin.json");
        let (created, new) = Credentials::read_or_create_file(&admin).unwrap();
        assert!(new && created.access_key_id.starts_with("LTAI"));
        let (again, new) = Credentials::read_or_create_file(&admin).unwrap();
        assert!(!new);
        assert_eq!((again.access_key_id, again.secret), (created.access_key_id, created.secret));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&admin).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&cli_output, "{}").unwrap();
        assert!(Credentials::read_file(&cli_output).unwrap_err().contains("expected"));
    }

    #[test]
    fn frames_are_unwrapped_to_the_message_bytes() {
        let framed = Bytes::from_static(b"\x00\x00\x00\x00\x03abc\x00\x00\x00\x00\x02de");
        assert_eq!(grpc_messages(framed), b"abcde");
        assert_eq!(grpc_messages(Bytes::new()), b"");
    }
}
