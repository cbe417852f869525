//! A minimal client of kmsim's Alibaba OpenAPI front end, written from the
//! protocol (not from an SDK): one HTTP/1.1 request per connection, signed
//! with ACS3-HMAC-SHA256 when given a credential. The real SDKs are driven in
//! `tests/alibaba_sdk.rs`; this client is for what they cannot be made to send.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use hmac::{KeyInit, Mac};
use serde_json::Value;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request: the action, its parameters (sent in the query string), and what else a test varies.
#[derive(Clone, Default)]
pub struct Call {
    pub action: String,
    pub params: BTreeMap<String, String>,
    pub host: Option<String>,
    pub user_agent: Option<String>,
    /// `(AccessKeyId, secret)` to sign with.
    pub signer: Option<(String, String)>,
    /// `x-acs-date`; now if unset.
    pub date: Option<String>,
    /// `x-acs-signature-nonce`; fresh if unset.
    pub nonce: Option<String>,
}

impl Call {
    pub fn new(action: &str) -> Call {
        Call { action: action.to_owned(), ..Call::default() }
    }

    pub fn param(mut self, name: &str, value: &str) -> Call {
        self.params.insert(name.to_owned(), value.to_owned());
        self
    }

    pub fn signed(mut self, access_key_id: &str, secret: &str) -> Call {
        self.signer = Some((access_key_id.to_owned(), secret.to_owned()));
        self
    }
}

/// A response as received.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["Code"].as_str().unwrap_or_default()
    }

    pub fn request_id(&self) -> &str {
        self.body["RequestId"].as_str().unwrap_or_default()
    }
}

/// RFC 3986 percent-encoding, as ACS3 canonicalises the query.
pub fn pct(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The wall clock now, as Alibaba's signatures date a request (`2026-12-07T14:05:27Z`).
pub fn now_utc() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    kmsim::clock::SimTime(i64::try_from(now.as_millis()).unwrap()).to_rfc3339()
}

/// Sends `call` to the server at `addr` and reads the whole answer.
pub async fn send(addr: SocketAddr, call: &Call) -> Reply {
    let query = call.params.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect::<Vec<_>>().join("&");
    let host = call.host.clone().unwrap_or_else(|| addr.to_string());
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    headers.insert("host".into(), host);
    headers.insert("x-acs-action".into(), call.action.clone());
    headers.insert("x-acs-version".into(), "2016-01-20".into());
    headers.insert("x-acs-date".into(), call.date.clone().unwrap_or_else(now_utc));
    headers.insert(
        "x-acs-signature-nonce".into(),
        call.nonce.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
    );
    headers.insert("x-acs-content-sha256".into(), hex(&sha2::Sha256::digest(b"")));
    headers.insert("user-agent".into(), call.user_agent.clone().unwrap_or_else(|| "kmsim-openapi-tests/1.0".into()));
    if let Some((id, secret)) = &call.signer {
        let signed_names = headers.keys().cloned().collect::<Vec<_>>().join(";");
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{}\n", v.trim())).collect();
        let canonical =
            format!("POST\n/\n{query}\n{canonical_headers}\n{signed_names}\n{}", hex(&sha2::Sha256::digest(b"")));
        let string_to_sign = format!("ACS3-HMAC-SHA256\n{}", hex(&sha2::Sha256::digest(canonical.as_bytes())));
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(string_to_sign.as_bytes());
        let signature = hex(&mac.finalize().into_bytes());
        headers.insert(
            "authorization".into(),
            format!("ACS3-HMAC-SHA256 Credential={id},SignedHeaders={signed_names},Signature={signature}"),
        );
    }
    let mut request = format!("POST /?{query} HTTP/1.1\r\n");
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("content-length: 0\r\nconnection: close\r\n\r\n");
    raw(addr, request.as_bytes()).await
}

/// Sends raw bytes and parses the HTTP/1.1 answer.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.expect("read");
    let text = String::from_utf8(bytes).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("a status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    Reply { status, headers, body }
}
