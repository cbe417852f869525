//! The OpenAPI front end's credentials: Alibaba's request signatures,
//! verified against kmsim's AccessKeys.
//!
//! - ACS3-HMAC-SHA256 and ACS3-HMAC-SM3 (the current SDKs' default): an
//!   `Authorization` header over a canonical request of the method, the path,
//!   the query re-encoded per RFC 3986, the headers the client names in
//!   `SignedHeaders`, and the hash of the body; dated by `x-acs-date`, made
//!   unique by `x-acs-signature-nonce`.
//! - v1 HMAC-SHA1 (the old SDK, and the new one with `signature_algorithm='v2'`):
//!   a `Signature` parameter over the method and every other parameter, keyed
//!   with `secret&`; dated by `Timestamp`, made unique by `SignatureNonce`.
//!
//! A signed call is accepted once: its nonce is remembered for the window in
//! which its date is accepted, so a captured request cannot be replayed.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sha2::Digest;

use crate::audit::chain::hex;
use crate::engine::crypto::constant_time_eq;

use super::request::ApiRequest;
use crate::context::AuthMethod;
use crate::engine::access::Credential;
use crate::engine::{ErrorCode, KmsError};
use crate::frontends::query::rfc3986;
use crate::kernel::App;
use crate::kernel::identity::AuthMode;
use crate::kernel::meta::Presented;

/// How far a request's date may be from the server's wall clock, either way, as Alibaba allows.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The most nonces remembered at once; past it the oldest is forgotten early.
/// Only calls with a valid signature are remembered, so only holders of a secret can fill it.
pub const MAX_NONCES: usize = 1 << 20;

/// What a call's credentials prove, and, for a signature that does not match,
/// the string the server signed: Alibaba quotes it in the error, and the old
/// SDK compares it with its own to tell a wrong secret from a wrong request.
/// It is the client's own request text, so it goes on the wire only, never
/// into a record (a v1 string to sign holds every parameter, plaintext included).
pub struct Checked {
    pub presented: Presented,
    pub string_to_sign: Option<String>,
}

/// The signature schemes, as the `Authorization` header or `SignatureMethod` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Acs3Sha256,
    Acs3Sm3,
    V1Sha1,
    V1Sha256,
}

impl Algorithm {
    fn acs3(name: &str) -> Option<Algorithm> {
        match name {
            "ACS3-HMAC-SHA256" => Some(Algorithm::Acs3Sha256),
            "ACS3-HMAC-SM3" => Some(Algorithm::Acs3Sm3),
            _ => None,
        }
    }

    fn v1(name: &str) -> Option<Algorithm> {
        match name {
            "HMAC-SHA1" => Some(Algorithm::V1Sha1),
            "HMAC-SHA256" => Some(Algorithm::V1Sha256),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Acs3Sha256 => "ACS3-HMAC-SHA256",
            Algorithm::Acs3Sm3 => "ACS3-HMAC-SM3",
            Algorithm::V1Sha1 => "HMAC-SHA1",
            Algorithm::V1Sha256 => "HMAC-SHA256",
        }
    }

    fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Acs3Sm3 => hex(&sm3::Sm3::digest(data)),
            _ => hex(&sha2::Sha256::digest(data)),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Algorithm::Acs3Sha256 | Algorithm::V1Sha256 => mac::<hmac::Hmac<sha2::Sha256>>(key, data),
            Algorithm::Acs3Sm3 => mac::<hmac::Hmac<sm3::Sm3>>(key, data),
            Algorithm::V1Sha1 => mac::<hmac::Hmac<sha1::Sha1>>(key, data),
        }
    }
}

/// The parts of a signature a request carries, before any is checked.
struct Claim<'a> {
    algorithm: Algorithm,
    access_key_id: &'a str,
    signature: &'a str,
    /// ACS3 only: the headers the client signed, `;`-separated.
    signed_headers: &'a str,
    date: Option<&'a str>,
    nonce: Option<&'a str>,
}

/// The front end's verifier: signatures, dates and the nonces already seen.
pub struct Verifier {
    nonces: Nonces,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier { nonces: Nonces::new(MAX_NONCES) }
    }
}

impl Verifier {
    /// What `request` proves about its caller. With auth off nothing is
    /// checked: the AccessKeyId it names is taken at its word.
    pub fn check(&self, app: &App, request: &ApiRequest) -> Checked {
        let plain = |presented| Checked { presented, string_to_sign: None };
        let claim = match claim(request) {
            Ok(Some(claim)) => claim,
            Ok(None) => {
                return plain(match app.identity.mode() {
                    AuthMode::Off => Presented::Nothing,
                    AuthMode::Required => Presented::Rejected {
                        access_key_id: String::new(),
                        error: KmsError::missing("AccessKeyId")
                            .because("Sign the request with an AccessKey (ACS3-HMAC-SHA256 or HMAC-SHA1)."),
                    },
                });
            }
            Err((access_key_id, error)) => {
                return plain(match app.identity.mode() {
                    AuthMode::Off if !access_key_id.is_empty() => Presented::Claimed(access_key_id),
                    AuthMode::Off => Presented::Nothing,
                    AuthMode::Required => Presented::Rejected { access_key_id, error },
                });
            }
        };
        let access_key_id = claim.access_key_id.to_owned();
        if app.identity.mode() == AuthMode::Off {
            return plain(Presented::Claimed(access_key_id));
        }
        let now = app.engine.clock().now();
        // A ClientKey of Alibaba's kind signs with RSA on the instance API only: here it names nothing.
        let Some(credential) = app.identity.lookup(&app.engine, &access_key_id, now).filter(|c| c.secret.is_some())
        else {
            return plain(Presented::Rejected { access_key_id, error: ErrorCode::AccessKeyNotFound.into() });
        };
        match self.verify(request, &claim, credential, SystemTime::now()) {
            Ok(credential) => plain(Presented::Verified { access_key_id, credential, by: AuthMethod::Signature }),
            Err((error, string_to_sign)) => {
                Checked { presented: Presented::Rejected { access_key_id, error }, string_to_sign }
            }
        }
    }

    fn verify(
        &self,
        request: &ApiRequest,
        claim: &Claim<'_>,
        credential: Credential,
        now: SystemTime,
    ) -> Result<Credential, (KmsError, Option<String>)> {
        let date_name = if is_acs3(claim.algorithm) { "x-acs-date" } else { "Timestamp" };
        let date = claim.date.ok_or_else(|| (KmsError::missing(date_name), None))?;
        let nonce_name = if is_acs3(claim.algorithm) { "x-acs-signature-nonce" } else { "SignatureNonce" };
        let nonce = claim.nonce.ok_or_else(|| (KmsError::missing(nonce_name), None))?;
        let signed_at = parse_date(date).ok_or_else(|| (ErrorCode::TimestampFormat.into(), None))?;
        let string_to_sign = if is_acs3(claim.algorithm) {
            acs3_string_to_sign(request, claim.algorithm, claim.signed_headers)
        } else {
            v1_string_to_sign(request)
        };
        let secret = credential.secret.as_ref().map_or("", |s| s.expose());
        let expected = if is_acs3(claim.algorithm) {
            hex(&claim.algorithm.hmac(secret.as_bytes(), string_to_sign.as_bytes()))
        } else {
            let key = format!("{secret}&");
            base64::engine::general_purpose::STANDARD
                .encode(claim.algorithm.hmac(key.as_bytes(), string_to_sign.as_bytes()))
        };
        if !constant_time_eq(expected.as_bytes(), claim.signature.as_bytes()) {
            return Err((ErrorCode::SignatureDoesNotMatch.into(), Some(string_to_sign)));
        }
        let skew = now.duration_since(signed_at).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
        if skew > MAX_SKEW {
            return Err((ErrorCode::TimestampExpired.into(), None));
        }
        if !self.nonces.first_use(claim.access_key_id, nonce, Instant::now()) {
            return Err((ErrorCode::SignatureNonceUsed.into(), None));
        }
        Ok(credential)
    }
}

fn is_acs3(algorithm: Algorithm) -> bool {
    matches!(algorithm, Algorithm::Acs3Sha256 | Algorithm::Acs3Sm3)
}

/// The signature a request claims to carry: `Ok(None)` if it carries none,
/// `Err` (with the AccessKeyId it named, if any) if it carries one that is
/// malformed or incomplete.
fn claim(request: &ApiRequest) -> Result<Option<Claim<'_>>, (String, KmsError)> {
    if let Some(authorization) = request.header("authorization") {
        let incomplete = |id: &str| (id.to_owned(), KmsError::new(ErrorCode::IncompleteSignature));
        let (scheme, rest) = authorization.split_once(' ').ok_or_else(|| incomplete(""))?;
        let mut fields = rest.split(',').filter_map(|field| field.trim().split_once('='));
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for (name, value) in fields.by_ref() {
            match name {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed_headers = Some(value),
                "Signature" => signature = Some(value),
                _ => {}
            }
        }
        let access_key_id = credential.unwrap_or_default();
        let algorithm = Algorithm::acs3(scheme).ok_or_else(|| incomplete(access_key_id))?;
        let (Some(signed_headers), Some(signature)) = (signed_headers, signature) else {
            return Err(incomplete(access_key_id));
        };
        if access_key_id.is_empty() {
            return Err(incomplete(""));
        }
        return Ok(Some(Claim {
            algorithm,
            access_key_id,
            signature,
            signed_headers,
            date: request.header("x-acs-date"),
            nonce: request.header("x-acs-signature-nonce"),
        }));
    }
    let params = &request.params;
    let Some(access_key_id) = params.get("AccessKeyId").filter(|id| !id.is_empty()) else {
        return match params.get("Signature") {
            Some(_) => Err((String::new(), KmsError::new(ErrorCode::IncompleteSignature))),
            None => Ok(None),
        };
    };
    let incomplete = || (access_key_id.clone(), KmsError::new(ErrorCode::IncompleteSignature));
    let signature = params.get("Signature").ok_or_else(incomplete)?;
    let method = params.get("SignatureMethod").map(String::as_str).unwrap_or("HMAC-SHA1");
    let algorithm = Algorithm::v1(method).ok_or_else(incomplete)?;
    Ok(Some(Claim {
        algorithm,
        access_key_id,
        signature,
        signed_headers: "",
        date: params.get("Timestamp").map(String::as_str),
        nonce: params.get("SignatureNonce").map(String::as_str),
    }))
}

/// ACS3: the string a received request's signature is over.
fn acs3_string_to_sign(request: &ApiRequest, algorithm: Algorithm, signed_headers: &str) -> String {
    let header = |name: &str| -> Vec<&str> {
        request.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::trim).collect()
    };
    acs3_canonical_string_to_sign(
        algorithm,
        request.method.as_str(),
        &request.query,
        signed_headers,
        header,
        &request.body,
    )
}

/// ACS3: the algorithm's name and the hash of the canonical request, the one
/// construction both a verifier and a signer use.
fn acs3_canonical_string_to_sign<'a>(
    algorithm: Algorithm,
    method: &str,
    query: &[(String, String)],
    signed_headers: &str,
    header: impl Fn(&str) -> Vec<&'a str>,
    body: &[u8],
) -> String {
    let mut query: Vec<(String, String)> = query.iter().map(|(k, v)| (rfc3986(k), rfc3986(v))).collect();
    query.sort();
    let query = query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut names: Vec<String> = signed_headers.split(';').map(str::to_ascii_lowercase).collect();
    names.sort();
    names.dedup();
    let mut headers = String::new();
    for name in &names {
        let mut values = header(name);
        values.sort_unstable();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let canonical = format!("{method}\n/\n{query}\n{headers}\n{}\n{}", names.join(";"), algorithm.hash_hex(body));
    format!("{}\n{}", algorithm.name(), algorithm.hash_hex(canonical.as_bytes()))
}

/// The `Authorization` header an ACS3-HMAC-SHA256 client sends for a
/// request of `method` with `query`, `headers` (lower-case names; all are
/// signed) and `body`: what `kmsim bench` signs its OpenAPI calls with.
pub fn acs3_authorization(
    method: &str,
    query: &[(String, String)],
    headers: &std::collections::BTreeMap<String, String>,
    body: &[u8],
    access_key_id: &str,
    secret: &str,
) -> String {
    let algorithm = Algorithm::Acs3Sha256;
    let signed_headers = headers.keys().cloned().collect::<Vec<_>>().join(";");
    let header = |name: &str| headers.get(name).map(|v| vec![v.trim()]).unwrap_or_default();
    let string_to_sign = acs3_canonical_string_to_sign(algorithm, method, query, &signed_headers, header, body);
    let signature = hex(&algorithm.hmac(secret.as_bytes(), string_to_sign.as_bytes()));
    format!("{} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}", algorithm.name())
}

/// The hex SHA-256 of a body, for `x-acs-content-sha256`.
pub fn content_sha256(body: &[u8]) -> String {
    Algorithm::Acs3Sha256.hash_hex(body)
}

/// v1: `METHOD&%2F&` and every parameter but the signature, sorted and percent-encoded twice.
fn v1_string_to_sign(request: &ApiRequest) -> String {
    let mut pairs: Vec<(String, String)> = request
        .query
        .iter()
        .chain(request.form.iter())
        .filter(|(k, _)| k != "Signature")
        .map(|(k, v)| (rfc3986(k), rfc3986(v)))
        .collect();
    pairs.sort();
    let canonical = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    format!("{}&%2F&{}", request.method, rfc3986(&canonical))
}

/// `2026-12-07T14:05:27Z` (both schemes write UTC seconds).
fn parse_date(text: &str) -> Option<SystemTime> {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    let secs = u64::try_from(parsed.unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Nonces seen within the accepted window, oldest first. Kept as keyed
/// hashes of (AccessKeyId, nonce), so a client cannot choose collisions.
struct Nonces {
    capacity: usize,
    hasher: RandomState,
    inner: Mutex<NonceWindow>,
}

#[derive(Default)]
struct NonceWindow {
    seen: HashSet<u64>,
    order: VecDeque<(Instant, u64)>,
}

impl Nonces {
    fn new(capacity: usize) -> Nonces {
        Nonces { capacity, hasher: RandomState::new(), inner: Mutex::default() }
    }

    /// Whether this is the first use of `nonce` by `access_key_id` within the window; remembers it.
    fn first_use(&self, access_key_id: &str, nonce: &str, now: Instant) -> bool {
        let key = self.hasher.hash_one((access_key_id, nonce));
        let mut window = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // A nonce outlives its date's window on both sides, so it is kept for twice the skew.
        while let Some(&(at, old)) = window.order.front() {
            if now.duration_since(at) <= 2 * MAX_SKEW && window.order.len() < self.capacity {
                break;
            }
            window.order.pop_front();
            window.seen.remove(&old);
        }
        if !window.seen.insert(key) {
            return false;
        }
        window.order.push_back((now, key));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> ApiRequest {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        ApiRequest::parse(&parts, bytes::Bytes::from(body.to_owned())).unwrap()
    }

    /// The expected digest is what the SDK's own `get_canonical_query_string` and
    /// `get_canonicalized_headers` (alibabacloud_tea_openapi 0.4.6, utils.py) give for this request.
    #[test]
    fn an_acs3_string_to_sign_is_built_as_the_sdk_builds_it() {
        let req = request(
            "POST",
            "/?KeyId=alias%2Fa&Plaintext=aGk%3D&EncryptionContext=%7B%22a%22%3A+%22b%22%7D",
            &[("host", "127.0.0.1:9595"), ("x-acs-action", "Encrypt"), ("x-acs-date", "2026-12-07T14:05:27Z")],
            "",
        );
        let sts = acs3_string_to_sign(&req, Algorithm::Acs3Sha256, "host;x-acs-action;x-acs-date");
        assert_eq!(sts, "ACS3-HMAC-SHA256\n8ed05ce5ff2e2723eb57528dc703add13131e2e91ab7e3b5f6ca6806bc6ff64d");
    }

    #[test]
    fn a_request_signed_by_the_client_signer_carries_the_signature_the_verifier_computes() {
        let query = vec![("KeyId".to_owned(), "alias/a b".to_owned()), ("Plaintext".to_owned(), "aGk=".to_owned())];
        let headers: std::collections::BTreeMap<String, String> =
            [("host", "127.0.0.1:1"), ("x-acs-action", "Encrypt"), ("x-acs-date", "2026-12-07T14:05:27Z")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let authorization = acs3_authorization("POST", &query, &headers, b"", "LTAIid", "secret");
        let mut sent: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        sent.push(("authorization", &authorization));
        let req = request("POST", "/?KeyId=alias%2Fa+b&Plaintext=aGk%3D", &sent, "");
        let Ok(Some(claim)) = claim(&req) else { panic!("a complete ACS3 claim") };
        let string_to_sign = acs3_string_to_sign(&req, claim.algorithm, claim.signed_headers);
        let expected = hex(&Algorithm::Acs3Sha256.hmac(b"secret", string_to_sign.as_bytes()));
        assert_eq!(claim.signature, expected);
        assert_eq!(claim.access_key_id, "LTAIid");
    }

    #[test]
    fn a_v1_string_to_sign_covers_every_parameter_but_the_signature() {
        let req = request("POST", "/?Action=Encrypt&Signature=x&KeyId=a+b&Timestamp=2026-12-07T14%3A05%3A27Z", &[], "");
        assert_eq!(
            v1_string_to_sign(&req),
            "POST&%2F&Action%3DEncrypt%26KeyId%3Da%2520b%26Timestamp%3D2026-12-07T14%253A05%253A27Z"
        );
    }

    #[test]
    fn a_nonce_is_accepted_once_per_key_within_the_window() {
        let nonces = Nonces::new(4);
        let t0 = Instant::now();
        assert!(nonces.first_use("ak", "n1", t0));
        assert!(!nonces.first_use("ak", "n1", t0), "replayed");
        assert!(nonces.first_use("other", "n1", t0), "another key's nonce is its own");
        assert!(nonces.first_use("ak", "n1", t0 + 2 * MAX_SKEW + Duration::from_secs(1)), "forgotten after the window");
    }

    #[test]
    fn the_nonce_window_is_bounded() {
        let nonces = Nonces::new(3);
        let t0 = Instant::now();
        for n in 0..10 {
            assert!(nonces.first_use("ak", &n.to_string(), t0));
        }
        assert!(nonces.inner.lock().unwrap().order.len() <= 3);
    }
}
