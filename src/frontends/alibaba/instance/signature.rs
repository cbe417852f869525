//! The instance API's request signature, as `alibabacloud-dkms-gcs` makes it
//! (`openapi_util/client.py`): RSASSA-PKCS1-v1_5 with SHA-256, under the
//! ClientKey's private key, over
//!
//! ```text
//! POST \n <content-sha256> \n <content-type> \n <date> \n
//! <each x-kms-* header, sorted by name: name ":" trimmed value \n> /
//! ```
//!
//! with the ClientKey id in `x-kms-acccesskeyid` (the SDK's spelling, three
//! c's), `content-sha256` the uppercase hex SHA-256 of the body, and
//! `Authorization: Bearer <base64 signature>`. It is checked against the
//! public key the server kept of the ClientKey; whether the ClientKey may be
//! used now (its validity window) is the kernel's to judge.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use sha2::{Digest, Sha256};

use crate::context::{AuthMethod, Principal};
use crate::engine::{ErrorCode, KmsError};
use crate::frontends::header;
use crate::kernel::App;
use crate::kernel::meta::Presented;

/// The header that names the ClientKey, spelt as the SDK spells it.
pub const ACCESS_KEY_ID_HEADER: &str = "x-kms-acccesskeyid";
/// The one signature method the SDK has.
pub const SIGNATURE_METHOD: &str = "RSA_PKCS1_SHA_256";
/// How far the `date` header may be from the server's clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// What the signature check found: the credential as presented to the
/// kernel, and the instance that serves the call (its ClientKey's AAP's; empty
/// when the ClientKey is unknown or its AAP names none).
pub struct Checked {
    pub presented: Presented,
    pub instance: String,
}

/// Checks a request's signature; see the module docs.
pub fn check(app: &App, parts: &http::request::Parts, body: &[u8]) -> Checked {
    let Some(access_key_id) = header(&parts.headers, ACCESS_KEY_ID_HEADER).map(crate::frontends::bounded) else {
        let error = KmsError::missing(ACCESS_KEY_ID_HEADER);
        return Checked {
            presented: Presented::Rejected { access_key_id: String::new(), error },
            instance: String::new(),
        };
    };
    let credential = app.identity.lookup(&app.engine, &access_key_id, app.engine.clock().now());
    let instance = match credential.as_ref().map(|c| &c.principal) {
        Some(Principal::Aap { name, .. }) => app.engine.instance_of_aap(name),
        _ => String::new(),
    };
    // Only a ClientKey of Alibaba's kind (an RSA public key) signs this API.
    let Some(credential) = credential.filter(|c| !c.public_key.is_empty()) else {
        let error = ErrorCode::AccessKeyNotFound.into();
        return Checked { presented: Presented::Rejected { access_key_id, error }, instance };
    };
    let presented = match verify(parts, body, &credential.public_key, SystemTime::now()) {
        Ok(()) => Presented::Verified { access_key_id, credential, by: AuthMethod::Signature },
        Err(error) => Presented::Rejected { access_key_id, error },
    };
    Checked { presented, instance }
}

fn verify(parts: &http::request::Parts, body: &[u8], public_key: &str, now: SystemTime) -> Result<(), KmsError> {
    let headers = &parts.headers;
    match header(headers, "x-kms-signaturemethod") {
        Some(SIGNATURE_METHOD) => {}
        Some(_) => {
            return Err(KmsError::invalid_because("x-kms-signaturemethod", "The only method is RSA_PKCS1_SHA_256."));
        }
        None => return Err(KmsError::missing("x-kms-signaturemethod")),
    }
    let content_sha256 = header(headers, "content-sha256").ok_or_else(|| KmsError::missing("content-sha256"))?;
    if content_sha256 != hex_upper(&Sha256::digest(body)) {
        return Err(KmsError::new(ErrorCode::SignatureNotMatch).because("content-sha256 is not the body's SHA-256."));
    }
    let date = header(headers, "date").ok_or_else(|| KmsError::missing("date"))?;
    let signed_at = parse_http_date(date).ok_or_else(|| {
        KmsError::invalid_because("date", "Write an RFC 1123 GMT date such as Tue, 08 Dec 2026 01:36:09 GMT.")
    })?;
    let given = header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| KmsError::missing("Authorization"))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(given.trim())
        .ok()
        .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
        .ok_or(ErrorCode::SignatureNotMatch)?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(public_key)
        .ok()
        .and_then(|der| RsaPublicKey::from_public_key_der(&der).ok())
        .ok_or_else(KmsError::internal)?;
    let signed = string_to_sign(parts, content_sha256, date);
    VerifyingKey::<Sha256>::new(key).verify(signed.as_bytes(), &signature).map_err(|_| ErrorCode::SignatureNotMatch)?;
    let apart = now.duration_since(signed_at).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or(Duration::MAX);
    if apart > MAX_SKEW {
        return Err(ErrorCode::RequestTimeTooSkewed.into());
    }
    Ok(())
}

/// The string the SDK signs (`get_string_to_sign`); the canonical resource is always `/`.
pub fn string_to_sign(parts: &http::request::Parts, content_sha256: &str, date: &str) -> String {
    let content_type = header(&parts.headers, "content-type").unwrap_or_default();
    let mut text = format!("{}\n{content_sha256}\n{content_type}\n{date}\n", parts.method);
    let mut kms: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-kms-"))
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?.trim())))
        .collect();
    kms.sort_unstable();
    for (name, value) in kms {
        text.push_str(name);
        text.push(':');
        text.push_str(value);
        text.push('\n');
    }
    text.push('/');
    text
}

/// The headers `alibabacloud-dkms-gcs` sends with a call, signed with a ClientKey's private key, for kmsim's
/// own clients of the instance API (`kmsim bench`, the tests): `date` is the wall clock unless given.
pub fn signed_headers(
    key: &rsa::pkcs1v15::SigningKey<Sha256>,
    client_key_id: &str,
    api_name: &str,
    body: &[u8],
    date: Option<&str>,
) -> Result<http::HeaderMap, KmsError> {
    use rsa::signature::{SignatureEncoding, Signer};
    let date = date.map_or_else(|| http_date(SystemTime::now()), str::to_owned);
    let content_sha256 = hex_upper(&Sha256::digest(body));
    let mut request = http::Request::post("/")
        .header("content-type", "application/x-protobuf")
        .header("accept", "application/x-protobuf")
        .header("date", &date)
        .header("content-sha256", &content_sha256)
        .header("x-kms-apiversion", super::API_VERSION)
        .header(super::API_NAME_HEADER, api_name)
        .header("x-kms-signaturemethod", SIGNATURE_METHOD)
        .header(ACCESS_KEY_ID_HEADER, client_key_id)
        .body(())
        .map_err(|_| KmsError::invalid(ACCESS_KEY_ID_HEADER))?;
    let (mut parts, ()) = request.into_parts();
    let signature =
        key.try_sign(string_to_sign(&parts, &content_sha256, &date).as_bytes()).map_err(|_| KmsError::internal())?;
    let authorization = format!("Bearer {}", base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()));
    let value = http::HeaderValue::from_str(&authorization).map_err(|_| KmsError::internal())?;
    parts.headers.insert(http::header::AUTHORIZATION, value);
    request = http::Request::from_parts(parts, ());
    Ok(request.into_parts().0.headers)
}

/// `time` as an RFC 1123 GMT date, as the SDK writes `date`.
pub fn http_date(time: SystemTime) -> String {
    let at = time::OffsetDateTime::from(time);
    http_date_format().and_then(|f| at.format(f).ok()).unwrap_or_default()
}

/// `content-sha256`'s spelling: uppercase hex.
fn hex_upper(bytes: &[u8]) -> String {
    crate::audit::chain::hex(bytes).to_ascii_uppercase()
}

/// RFC 1123's date, parsed once: every request's `date` is read with it.
fn http_date_format() -> Option<&'static [time::format_description::BorrowedFormatItem<'static>]> {
    static FORMAT: std::sync::LazyLock<Option<Vec<time::format_description::BorrowedFormatItem<'static>>>> =
        std::sync::LazyLock::new(|| {
            time::format_description::parse_borrowed::<2>(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT",
            )
            .ok()
        });
    FORMAT.as_deref()
}

/// An RFC 1123 date in GMT, as the SDK writes `date` (`Tue, 08 Dec 2026 01:36:09 GMT`).
fn parse_http_date(text: &str) -> Option<SystemTime> {
    let parsed = time::PrimitiveDateTime::parse(text, http_date_format()?).ok()?;
    Some(SystemTime::from(parsed.assume_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::builder().method("POST").uri("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_string_to_sign_is_the_sdks() {
        let parts = parts(&[
            ("content-type", "application/x-protobuf"),
            ("x-kms-apiname", "Encrypt"),
            ("x-kms-acccesskeyid", " KAAP.x "),
            ("x-kms-apiversion", "dkms-gcs-0.2"),
            ("user-agent", "not signed"),
        ]);
        let text = string_to_sign(&parts, "AB12", "Tue, 08 Dec 2026 01:36:09 GMT");
        assert_eq!(
            text,
            "POST\nAB12\napplication/x-protobuf\nTue, 08 Dec 2026 01:36:09 GMT\n\
             x-kms-acccesskeyid:KAAP.x\nx-kms-apiname:Encrypt\nx-kms-apiversion:dkms-gcs-0.2\n/"
        );
    }

    #[test]
    fn dates_are_rfc_1123_gmt() {
        let at = parse_http_date("Tue, 08 Dec 2026 01:36:09 GMT").unwrap();
        assert_eq!(at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(), 1_796_693_769);
        assert!(parse_http_date("2026-12-08T01:36:09Z").is_none());
        assert_eq!(http_date(at), "Tue, 08 Dec 2026 01:36:09 GMT");
        assert_eq!(hex_upper(&[0xab, 0x01]), "AB01");
    }
}
