//! AWS Signature Version 4, verified against kmsim's AccessKeys: the same
//! id/secret pairs every front end uses. The region a call is for comes from
//! its credential scope.

use std::time::{Duration, SystemTime};

use hmac::{KeyInit, Mac};
use sha2::Digest;

use crate::audit::chain::hex;
use crate::engine::crypto::constant_time_eq;

use crate::context::AuthMethod;
use crate::engine::{ErrorCode, KmsError};
use crate::frontends::query::{form_pairs, rfc3986};
use crate::kernel::App;
use crate::kernel::identity::AuthMode;
use crate::kernel::meta::Presented;

/// How far `X-Amz-Date` may be from the server's wall clock, either way, as AWS allows.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// What an `Authorization: AWS4-HMAC-SHA256 …` header claims.
pub struct Scope<'a> {
    pub access_key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

/// Parses the header; `None` if it is not a complete SigV4 authorization.
pub fn scope(authorization: &str) -> Option<Scope<'_>> {
    let rest = authorization.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for field in rest.split(',') {
        match field.trim().split_once('=') {
            Some(("Credential", value)) => credential = Some(value),
            Some(("SignedHeaders", value)) => signed_headers = Some(value),
            Some(("Signature", value)) => signature = Some(value),
            _ => {}
        }
    }
    let mut parts = credential?.split('/');
    let (access_key_id, date, region, service, terminator) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if terminator != "aws4_request" || parts.next().is_some() || access_key_id.is_empty() {
        return None;
    }
    Some(Scope { access_key_id, date, region, service, signed_headers: signed_headers?, signature: signature? })
}

/// What `request`, a call to the AWS service `service` (the name its credential scope must give: `kms`,
/// `cloudtrail`), proves about its caller. With auth off nothing is checked.
pub fn present(app: &App, parts: &http::request::Parts, body: &[u8], service: &str) -> Presented {
    let authorization = parts.headers.get("authorization").and_then(|v| v.to_str().ok());
    let mode = app.identity.mode();
    let Some(authorization) = authorization else {
        return match mode {
            AuthMode::Off => Presented::Nothing,
            AuthMode::Required => Presented::Rejected {
                access_key_id: String::new(),
                error: KmsError::new(ErrorCode::IncompleteSignature)
                    .because("Sign the request with AWS Signature Version 4."),
            },
        };
    };
    let Some(scope) = scope(authorization) else {
        let error = KmsError::new(ErrorCode::IncompleteSignature);
        return match mode {
            AuthMode::Off => Presented::Nothing,
            AuthMode::Required => Presented::Rejected { access_key_id: String::new(), error },
        };
    };
    let access_key_id = scope.access_key_id.to_owned();
    if mode == AuthMode::Off {
        return Presented::Claimed(access_key_id);
    }
    if scope.service != service {
        let error = KmsError::new(ErrorCode::SignatureDoesNotMatch)
            .because(&format!("Credential should be scoped to correct service: '{service}'."));
        return Presented::Rejected { access_key_id, error };
    }
    let credential = app.identity.lookup(&app.engine, &access_key_id, app.engine.clock().now());
    // A ClientKey of Alibaba's kind signs with RSA on the instance API only: here it names nothing.
    let Some((credential, secret)) = credential.and_then(|c| c.secret.clone().map(|s| (c, s))) else {
        return Presented::Rejected { access_key_id, error: ErrorCode::AccessKeyNotFound.into() };
    };
    let Some(amz_date) = parts.headers.get("x-amz-date").and_then(|v| v.to_str().ok()) else {
        return Presented::Rejected { access_key_id, error: KmsError::new(ErrorCode::IncompleteSignature) };
    };
    let expected = signature(parts, body, &scope, amz_date, secret.expose());
    if !constant_time_eq(expected.as_bytes(), scope.signature.as_bytes()) {
        return Presented::Rejected { access_key_id, error: ErrorCode::SignatureDoesNotMatch.into() };
    }
    match parse_amz_date(amz_date) {
        None => Presented::Rejected { access_key_id, error: ErrorCode::TimestampFormat.into() },
        Some(signed_at) if skew(signed_at, SystemTime::now()) > MAX_SKEW => {
            Presented::Rejected { access_key_id, error: ErrorCode::RequestTimeTooSkewed.into() }
        }
        Some(_) => Presented::Verified { access_key_id, credential, by: AuthMethod::Signature },
    }
}

fn skew(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default()
}

/// The hex signature SigV4 gives the request under `secret`.
fn signature(parts: &http::request::Parts, body: &[u8], scope: &Scope<'_>, amz_date: &str, secret: &str) -> String {
    let mut query: Vec<(String, String)> = form_pairs(parts.uri.query().unwrap_or_default())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (rfc3986(k), rfc3986(v)))
        .collect();
    query.sort();
    let query = query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut headers = String::new();
    for name in scope.signed_headers.split(';') {
        let values: Vec<String> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let canonical = format!(
        "{}\n{}\n{query}\n{headers}\n{}\n{}",
        parts.method,
        parts.uri.path(),
        scope.signed_headers,
        hex(&sha2::Sha256::digest(body))
    );
    let credential_scope = format!("{}/{}/{}/aws4_request", scope.date, scope.region, scope.service);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{credential_scope}\n{}", hex(&sha2::Sha256::digest(canonical)));
    let key = [scope.date, scope.region, scope.service, "aws4_request"]
        .iter()
        .fold(format!("AWS4{secret}").into_bytes(), |key, part| hmac(&key, part.as_bytes()));
    hex(&hmac(&key, string_to_sign.as_bytes()))
}

/// Signs a request as an AWS SDK does: every header it has is signed, and
/// `authorization` is added. What `kmsim bench` signs its AWS calls with.
pub fn sign(parts: &mut http::request::Parts, body: &[u8], access_key_id: &str, secret: &str, region: &str) {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let rfc3339 = crate::clock::SimTime(i64::try_from(now.as_millis()).unwrap_or(i64::MAX)).to_rfc3339();
    let amz_date: String = rfc3339.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    if let Ok(value) = http::HeaderValue::from_str(&amz_date) {
        parts.headers.insert("x-amz-date", value);
    }
    let mut names: Vec<&str> = parts.headers.keys().map(http::HeaderName::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let signed_headers = names.join(";");
    let scope = Scope {
        access_key_id,
        date: &amz_date[..8],
        region,
        service: "kms",
        signed_headers: &signed_headers,
        signature: "",
    };
    let signature = signature(parts, body, &scope, &amz_date, secret);
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/{}/{region}/kms/aws4_request, SignedHeaders={signed_headers}, Signature={signature}",
        scope.date
    );
    if let Ok(value) = http::HeaderValue::from_str(&authorization) {
        parts.headers.insert("authorization", value);
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `20261207T140527Z`.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !text.is_char_boundary(8) {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[9..11],
        &text[11..13],
        &text[13..15]
    );
    let parsed = time::OffsetDateTime::parse(&rfc3339, &time::format_description::well_known::Rfc3339).ok()?;
    let secs = u64::try_from(parsed.unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example (the SigV4 test suite's `get-vanilla`): secret
    /// `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`, 20150830T123600Z, us-east-1, service `service`.
    #[test]
    fn the_signature_of_awss_own_example_is_awss() {
        let request = http::Request::builder()
            .method("GET")
            .uri("/")
            .header("host", "example.amazonaws.com")
            .header("x-amz-date", "20150830T123600Z")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let authorization = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
            SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let scope = scope(authorization).expect("a complete scope");
        assert_eq!((scope.region, scope.service), ("us-east-1", "service"));
        let signed = signature(&parts, b"", &scope, "20150830T123600Z", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        assert_eq!(signed, scope.signature);
    }

    #[test]
    fn a_request_the_client_signer_signs_carries_the_signature_the_verifier_computes() {
        let request =
            http::Request::post("/").header("host", "127.0.0.1:1").header("x-amz-target", "TrentService.Encrypt");
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        sign(&mut parts, b"{}", "AKID", "secret", "eu-west-1");
        let authorization = parts.headers["authorization"].to_str().unwrap().to_owned();
        let scope = scope(&authorization).expect("a complete scope");
        assert_eq!((scope.access_key_id, scope.region, scope.service), ("AKID", "eu-west-1", "kms"));
        let amz_date = parts.headers["x-amz-date"].to_str().unwrap().to_owned();
        assert_eq!(signature(&parts, b"{}", &scope, &amz_date, "secret"), scope.signature);
        assert_ne!(signature(&parts, b"{ }", &scope, &amz_date, "secret"), scope.signature, "the body is signed");
    }

    #[test]
    fn an_incomplete_authorization_has_no_scope() {
        assert!(scope("AWS4-HMAC-SHA256 Credential=AK/20261207/us-east-1/kms/aws4_request").is_none());
        assert!(scope("AWS4-HMAC-SHA256 Credential=AK/x/aws4_request, SignedHeaders=host, Signature=00").is_none());
        assert!(scope("Bearer x").is_none());
    }
}
