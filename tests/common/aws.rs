//! A minimal client of kmsim's AWS KMS front end, written from the protocol
//! (not from an SDK): one JSON 1.1 request per connection, SigV4-signed when
//! given a credential. The real clients are driven in `tests/aws_sdk.rs`; this
//! one is for what they cannot be made to send.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use hmac::{KeyInit, Mac};
use serde_json::Value;
use sha2::Digest;

use super::openapi::{Reply, raw};

/// One request: the operation, its JSON body, and what else a test varies.
#[derive(Clone)]
pub struct AwsCall {
    pub operation: String,
    pub body: Value,
    /// `(access key id, secret)` to sign with.
    pub signer: Option<(String, String)>,
    pub region: String,
    /// `X-Amz-Date`; now if unset.
    pub date: Option<time::OffsetDateTime>,
    /// The service the call is to, and its credential scope names: `kms` or `cloudtrail`.
    pub service: &'static str,
    /// The service the signature's credential scope names, where it is not the one called.
    pub scoped_to: Option<&'static str>,
}

impl AwsCall {
    pub fn new(operation: &str, body: Value) -> AwsCall {
        AwsCall {
            operation: operation.to_owned(),
            body,
            signer: None,
            region: "us-east-1".to_owned(),
            date: None,
            service: "kms",
            scoped_to: None,
        }
    }

    /// A call to CloudTrail's API.
    pub fn cloudtrail(operation: &str, body: Value) -> AwsCall {
        AwsCall { service: "cloudtrail", ..AwsCall::new(operation, body) }
    }

    pub fn signed(mut self, access_key_id: &str, secret: &str) -> AwsCall {
        self.signer = Some((access_key_id.to_owned(), secret.to_owned()));
        self
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Sends `call` to the server at `addr`.
pub async fn send_aws(addr: SocketAddr, call: &AwsCall) -> Reply {
    let body = call.body.to_string();
    // SigV4's basic format (20261207T140527Z) is the RFC 3339 form without its separators.
    let rfc3339 = match call.date {
        Some(date) => kmsim::clock::SimTime(date.unix_timestamp() * 1000).to_rfc3339(),
        None => super::openapi::now_utc(),
    };
    let amz_date: String = rfc3339.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    headers.insert("content-type".into(), "application/x-amz-json-1.1".into());
    headers.insert("host".into(), addr.to_string());
    headers.insert("x-amz-date".into(), amz_date.clone());
    let target_prefix = match call.service {
        "cloudtrail" => "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.",
        _ => "TrentService.",
    };
    headers.insert("x-amz-target".into(), format!("{target_prefix}{}", call.operation));
    let mut request_headers = headers.clone();
    request_headers.insert("user-agent".into(), "kmsim-aws-tests/1.0".into());
    if let Some((id, secret)) = &call.signer {
        let signed = headers.keys().cloned().collect::<Vec<_>>().join(";");
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let canonical =
            format!("POST\n/\n\n{canonical_headers}\n{signed}\n{}", hex(&sha2::Sha256::digest(body.as_bytes())));
        let day = &amz_date[..8];
        let service = call.scoped_to.unwrap_or(call.service);
        let scope = format!("{day}/{}/{service}/aws4_request", call.region);
        let string_to_sign =
            format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&sha2::Sha256::digest(canonical.as_bytes())));
        let key = [day, call.region.as_str(), service, "aws4_request"]
            .iter()
            .fold(format!("AWS4{secret}").into_bytes(), |key, part| hmac(&key, part.as_bytes()));
        let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
        request_headers.insert(
            "authorization".into(),
            format!("AWS4-HMAC-SHA256 Credential={id}/{scope}, SignedHeaders={signed}, Signature={signature}"),
        );
    }
    let mut request = String::from("POST / HTTP/1.1\r\n");
    for (name, value) in &request_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()));
    raw(addr, request.as_bytes()).await
}
