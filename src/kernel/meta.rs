//! What a front end tells the kernel about one call besides the operation
//! itself: who sent it, from where, how, and with what credential.

use std::net::SocketAddr;
use std::time::Duration;

use crate::context::AuthMethod;
use crate::engine::KmsError;
use crate::engine::access::Credential;

/// One call as its front end received it, in no front end's terms.
pub struct CallMeta {
    /// The id the server gave the call: unique, and never the client's.
    pub request_id: String,
    /// The id the client sent for its own correlation (`x-request-id`), kept apart
    /// so that it can never pass for the server's; empty if none, or if unusable.
    pub client_request_id: String,
    pub peer: Option<SocketAddr>,
    pub user_agent: String,
    /// The host name the client called (`kms.cn-hangzhou.aliyuncs.com`), where
    /// its front end knows it; empty otherwise.
    pub endpoint: String,
    /// The AWS account the call addressed, for a call through AWS's API
    /// (`--aws-account-id`), so that its record names the account, and its
    /// key ARNs, as AWS's CloudTrail would. Empty for other front ends.
    pub aws_account_id: String,
    /// The region the call names; the front end puts the server's own in
    /// when the call names none.
    pub region: String,
    /// The front end that decoded the call (`grpc`, `generator`), for the logs.
    pub frontend: &'static str,
    pub credential: Presented,
    /// Set by the audit-data generator: the latency to record for the call
    /// instead of measuring it (its wall-clock time means nothing in simulated
    /// time, and would make generated data differ from run to run).
    pub simulated_latency: Option<Duration>,
    /// The size of the request as it arrived, for its audit record.
    pub request_bytes: u64,
    /// The name the caller used for the operation, where its API names it
    /// otherwise than kmsim's catalogue (AWS's `Sign` for `AsymmetricSign`):
    /// the record's event name, as the caller's own log would write it. Empty
    /// for the catalogue's name.
    pub called_as: &'static str,
    /// The code and HTTP status the front end answers an error with, for the
    /// call's record: kmsim's error table's (Alibaba's) unless the front end's
    /// wire differs (AWS answers `NotFoundException` and 400 where Alibaba
    /// answers `Forbidden.KeyNotFound` and 404).
    pub wire_error: fn(&KmsError) -> WireError,
    /// Why the front end refuses the call before it runs (a malformed region,
    /// an undecodable body), if it does. The call is still audited.
    pub refusal: Option<KmsError>,
    /// The grant tokens the request carried (AWS's `GrantTokens`): the kernel
    /// refuses one this server did not issue, and its record says only how many
    /// there were.
    pub grant_tokens: Vec<String>,
    /// For a call through the KMS instance API: the instance whose endpoint it
    /// reached (its ClientKey's AAP's; empty when that names none). Such a call
    /// is always authenticated and judged by its policies, whatever `--auth`
    /// says, as a real instance judges every call; and a key or secret outside
    /// the instance is not found there. `None` for every other front end.
    pub served_by_instance: Option<String>,
}

impl CallMeta {
    /// A call named `request_id` (by the server: [`new_request_id`]) and nothing else known yet.
    pub fn new(frontend: &'static str, region: &str, request_id: String) -> CallMeta {
        CallMeta {
            request_id,
            client_request_id: String::new(),
            peer: None,
            user_agent: String::new(),
            endpoint: String::new(),
            aws_account_id: String::new(),
            region: region.to_owned(),
            frontend,
            credential: Presented::Nothing,
            simulated_latency: None,
            request_bytes: 0,
            called_as: "",
            wire_error: table_error,
            refusal: None,
            grant_tokens: Vec::new(),
            served_by_instance: None,
        }
    }
}

/// An error as a front end's client receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireError {
    pub code: &'static str,
    pub status: u16,
}

/// kmsim's error table, which Alibaba's API and kmsim's own answer with.
pub fn table_error(error: &KmsError) -> WireError {
    WireError { code: error.code.as_str(), status: error.code.http_status() }
}

/// A request id no client chose. The generator, the server's own front end,
/// draws its ids from its seeded stream instead, so a run can be repeated byte for byte.
pub fn new_request_id() -> String {
    crate::engine::crypto::new_uuid().to_string()
}

/// The longest client request id kept; a longer one is dropped, not cut.
pub const MAX_CLIENT_REQUEST_ID_LEN: usize = 128;

/// A client's request id if it is fit to keep in a record: printable ASCII, bounded.
pub fn client_request_id(sent: Option<&str>) -> String {
    sent.filter(|id| id.len() <= MAX_CLIENT_REQUEST_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_default()
        .to_owned()
}

/// The credential a call came with, as far as its front end could tell.
/// The front end checks its own wire signature; the kernel decides what the
/// identity behind it may do.
pub enum Presented {
    /// No credential at all.
    Nothing,
    /// An AccessKey id the caller named, not verified (auth is off).
    Claimed(String),
    /// The front end verified the call was made with this credential.
    Verified { access_key_id: String, credential: Credential, by: AuthMethod },
    /// The front end could not verify the credential the call named: `error`
    /// says why (unknown id, bad signature, skewed time, a missing part).
    Rejected { access_key_id: String, error: KmsError },
}

impl Presented {
    /// The AccessKey id the caller named, verified or not.
    pub fn access_key_id(&self) -> &str {
        match self {
            Presented::Nothing => "",
            Presented::Claimed(id)
            | Presented::Verified { access_key_id: id, .. }
            | Presented::Rejected { access_key_id: id, .. } => id,
        }
    }
}
