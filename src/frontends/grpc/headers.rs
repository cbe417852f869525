//! Every metadata name the kmsim.v1 gRPC API reads or writes, in one place.
//! Clients (the CLI, the signing layer, tests) use these too.

/// The id the server gave the call, on every answer and in every error's details.
pub const REQUEST_ID: &str = "x-kms-request-id";
/// The client's own id for a call, kept in its record as `clientRequestId`.
pub const CLIENT_REQUEST_ID: &str = "x-request-id";
/// The region a call works in (the server's own when absent).
pub const REGION: &str = "x-kms-region";
/// On an error: the Alibaba error code, e.g. `Rejected.Disabled`.
pub const ERROR_CODE: &str = "x-kms-error-code";
/// On an error: the HTTP status Alibaba answers that code with.
pub const HTTP_STATUS: &str = "x-kms-http-status";
/// The AccessKey (or ClientKey) id the call is made with.
pub const ACCESS_KEY_ID: &str = "x-kms-access-key-id";
/// When a signed call was signed (RFC 3339, UTC).
pub const DATE: &str = "x-kms-date";
/// The call's signature (see [`super::signing`]).
pub const SIGNATURE: &str = "x-kms-signature";
pub const USER_AGENT: &str = "user-agent";
