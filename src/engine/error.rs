//! The one error type of the domain: an Alibaba error code with its HTTP
//! status and message. Protocol layers map it to their own shapes in one place
//! (for gRPC, `frontends::grpc::status`).

use std::fmt;

/// Every error code kmsim answers with, spelled as Alibaba spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidParameter,
    MissingParameter,
    UnsupportedOperation,
    RejectedUnsupportedOperation,
    LimitExceeded,
    AliasAlreadyExists,
    InvalidKeyMaterial,
    InvalidImportToken,
    ExpiredImportToken,
    UnsupportedOrigin,
    RequestTimeTooSkewed,
    SignatureNotMatch,
    NoPermission,
    AccessKeyForbidden,
    AccessKeyNotFound,
    KeyNotFound,
    KeyVersionNotFound,
    AliasNotFound,
    ResourceNotFound,
    InstanceNotFound,
    Disabled,
    PendingDeletion,
    PendingImport,
    Unavailable,
    StateModifiedFailed,
    Enabled,
    ResourceExist,
    ResourceInDeleteWindow,
    ResourceInUse,
    Throttling,
    InternalFailure,
    ServiceUnavailable,
    // What Alibaba's API gateway answers before a KMS action runs: the OpenAPI front end's signatures and actions.
    IncompleteSignature,
    SignatureDoesNotMatch,
    SignatureNonceUsed,
    TimestampExpired,
    TimestampFormat,
    ActionNotFound,
    VersionInvalid,
    // A verification that fails the call, where a front end's API wants that (AWS's Verify, VerifyMac).
    InvalidSignature,
    InvalidMac,
    IncorrectKey,
    // Grants (AWS's): a token this server did not issue, a malformed grant id, a dry run that would have succeeded.
    InvalidGrantToken,
    InvalidGrantId,
    DryRunOperation,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        Self::InvalidParameter,
        Self::MissingParameter,
        Self::UnsupportedOperation,
        Self::RejectedUnsupportedOperation,
        Self::LimitExceeded,
        Self::AliasAlreadyExists,
        Self::InvalidKeyMaterial,
        Self::InvalidImportToken,
        Self::ExpiredImportToken,
        Self::UnsupportedOrigin,
        Self::RequestTimeTooSkewed,
        Self::SignatureNotMatch,
        Self::NoPermission,
        Self::AccessKeyForbidden,
        Self::AccessKeyNotFound,
        Self::KeyNotFound,
        Self::KeyVersionNotFound,
        Self::AliasNotFound,
        Self::ResourceNotFound,
        Self::InstanceNotFound,
        Self::Disabled,
        Self::PendingDeletion,
        Self::PendingImport,
        Self::Unavailable,
        Self::StateModifiedFailed,
        Self::Enabled,
        Self::ResourceExist,
        Self::ResourceInDeleteWindow,
        Self::ResourceInUse,
        Self::Throttling,
        Self::InternalFailure,
        Self::ServiceUnavailable,
        Self::IncompleteSignature,
        Self::SignatureDoesNotMatch,
        Self::SignatureNonceUsed,
        Self::TimestampExpired,
        Self::TimestampFormat,
        Self::ActionNotFound,
        Self::VersionInvalid,
        Self::InvalidSignature,
        Self::InvalidMac,
        Self::IncorrectKey,
        Self::InvalidGrantToken,
        Self::InvalidGrantId,
        Self::DryRunOperation,
    ];

    /// The code named by its client-facing spelling; Alibaba's own misspelling
    /// `SerivceUnvailableTemporary` is understood too.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        if code == "SerivceUnvailableTemporary" {
            return Some(Self::ServiceUnavailable);
        }
        Self::ALL.iter().copied().find(|c| c.as_str() == code)
    }

    /// The code as clients see it (`Rejected.Disabled`).
    pub fn as_str(self) -> &'static str {
        self.facts().0
    }

    pub fn http_status(self) -> u16 {
        self.facts().1
    }

    /// The reference's message; `<name>` is filled in by [`KmsError`]'s constructors.
    pub fn message_template(self) -> &'static str {
        self.facts().2
    }

    /// Whether a client may retry the call unchanged.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Throttling | Self::ServiceUnavailable | Self::InternalFailure)
    }

    /// The code, HTTP status and message of each error, in one table.
    fn facts(self) -> (&'static str, u16, &'static str) {
        match self {
            Self::InvalidParameter => ("InvalidParameter", 400, "The specified parameter \"<name>\" is not valid."),
            Self::MissingParameter => ("MissingParameter", 400, "The parameter \"<name>\" is needed but not provided."),
            Self::UnsupportedOperation => ("UnsupportedOperation", 400, "This action is not supported."),
            Self::RejectedUnsupportedOperation => ("Rejected.UnsupportedOperation", 400, "Unsupported operation."),
            Self::LimitExceeded => (
                "Rejected.LimitExceeded",
                400,
                "The request was rejected because user create resource limit was exceeded.",
            ),
            Self::AliasAlreadyExists => ("AliasAlreadyExists", 400, "AliasName Already Exists."),
            Self::InvalidKeyMaterial => ("InvalidKeyMaterial", 400, "key material is invalid."),
            Self::InvalidImportToken => ("InvalidImportToken", 400, "import token is invalid."),
            Self::ExpiredImportToken => ("ExpiredImportToken", 400, "import token is expired."),
            Self::UnsupportedOrigin => ("Unsupported.Origin", 400, "This key origin is not valid for this api."),
            Self::RequestTimeTooSkewed => {
                ("RequestTimeTooSkewed", 400, "Request time exceeds server time more than 15 minutes.")
            }
            Self::SignatureNotMatch => ("SignatureNotMatch", 401, "Signature is not matched."),
            Self::NoPermission => ("Forbidden.NoPermission", 403, "This operation is forbidden by permission system."),
            Self::AccessKeyForbidden => ("Forbidden.AccessKey", 403, "This AccessKey is not enabled."),
            Self::AccessKeyNotFound => {
                ("InvalidAccessKeyId.NotFound", 404, "The AccessKey ID provided does not exist in our records.")
            }
            Self::KeyNotFound => ("Forbidden.KeyNotFound", 404, "The specified Key is not found."),
            Self::KeyVersionNotFound => {
                ("Forbidden.KeyVersionNotFound", 404, "The specified Key version is not found.")
            }
            Self::AliasNotFound => ("Forbidden.AliasNotFound", 404, "The specified Alias is not found."),
            Self::ResourceNotFound => ("Forbidden.ResourceNotFound", 404, "The resource is not found."),
            Self::InstanceNotFound => ("Forbidden.DKMSInstanceNotFound", 403, "The KMS instance is not found."),
            Self::Disabled => ("Rejected.Disabled", 409, "The request was rejected because the key state is Disabled."),
            Self::PendingDeletion => {
                ("Rejected.PendingDeletion", 409, "The request was rejected because the key state is PendingDeletion.")
            }
            Self::PendingImport => {
                ("Rejected.PendingImport", 409, "The request was rejected because the key state is PendingImport.")
            }
            Self::Unavailable => {
                ("Rejected.Unavailable", 409, "The request was rejected because the key state is Unavailable.")
            }
            Self::StateModifiedFailed => ("Rejected.StateModifiedFailed", 409, "Keystate modified failed."),
            Self::Enabled => ("Rejected.Enabled", 409, "The request was rejected because the key state is Enabled."),
            Self::ResourceExist => ("Rejected.ResourceExist", 409, "The resource already exists."),
            Self::ResourceInDeleteWindow => {
                ("Rejected.ResourceInDeleteWindow", 409, "The secret is planned to be deleted.")
            }
            Self::ResourceInUse => ("Rejected.ResourceInUse", 409, "The resource is in use."),
            Self::Throttling => ("Rejected.Throttling", 429, "The QPS upper limit is exceeded."),
            Self::InternalFailure => ("InternalFailure", 500, "Internal Failure."),
            Self::ServiceUnavailable => ("ServiceUnavailableTemporary", 503, "Service Unavailable Temporary."),
            Self::IncompleteSignature => {
                ("IncompleteSignature", 400, "The request signature does not conform to Aliyun standards.")
            }
            Self::SignatureDoesNotMatch => {
                ("SignatureDoesNotMatch", 400, "Specified signature is not matched with our calculation.")
            }
            Self::SignatureNonceUsed => ("SignatureNonceUsed", 400, "Specified signature nonce was used already."),
            Self::TimestampExpired => {
                ("InvalidTimeStamp.Expired", 400, "Specified time stamp or date value is expired.")
            }
            Self::TimestampFormat => {
                ("InvalidTimeStamp.Format", 400, "Specified time stamp or date value is not well formatted.")
            }
            Self::ActionNotFound => {
                ("InvalidAction.NotFound", 404, "Specified api is not found, please check your url and method.")
            }
            Self::VersionInvalid => ("InvalidVersion", 400, "Specified parameter Version is not valid."),
            Self::InvalidSignature => ("InvalidSignature", 400, "The signature is not valid for the message and key."),
            Self::InvalidMac => ("InvalidMac", 400, "The MAC is not valid for the message and key."),
            Self::IncorrectKey => {
                ("IncorrectKey", 400, "The ciphertext was not sealed under the key the request names.")
            }
            Self::InvalidGrantToken => ("InvalidGrantToken", 400, "The grant token is not valid."),
            Self::InvalidGrantId => ("InvalidGrantId", 400, "The grant id is not valid."),
            Self::DryRunOperation => ("DryRunOperation", 412, "The request would have succeeded, but DryRun was set."),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed operation: a code and the message the client sees.
///
/// Messages never carry plaintext, key material or secret values: they are
/// built only from the reference's templates and parameter names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsError {
    pub code: ErrorCode,
    pub message: String,
    /// Which key refused the call and why, for a front end whose API tells
    /// these apart or names the key (AWS: "<key ARN> is disabled.",
    /// InvalidKeyUsageException). kmsim's code and message stay Alibaba's.
    pub refusal: Option<Box<Refusal>>,
}

/// Why a key refused a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The key-state table: the key was in `state`.
    KeyState { key_id: String, state: super::key::KeyState },
    /// The key's spec or usage cannot do what was asked (the operation, or its algorithm).
    KeyUsage { key_id: String, usage: super::key::KeyUsage },
}

impl KmsError {
    pub fn new(code: ErrorCode) -> Self {
        KmsError::with_message(code, code.message_template().to_owned())
    }

    /// An error whose message is all its own, not the code's template.
    pub fn with_message(code: ErrorCode, message: String) -> Self {
        KmsError { code, message, refusal: None }
    }

    /// This error, remembering which key refused and why.
    pub fn refused(mut self, refusal: Refusal) -> Self {
        self.refusal = Some(Box::new(refusal));
        self
    }

    /// `InvalidParameter` naming the parameter at fault, e.g. `CiphertextBlob`.
    pub fn invalid(parameter: &str) -> Self {
        Self::naming(ErrorCode::InvalidParameter, parameter)
    }

    /// `MissingParameter` naming the parameter that was not given.
    pub fn missing(parameter: &str) -> Self {
        Self::naming(ErrorCode::MissingParameter, parameter)
    }

    /// `InvalidParameter` naming the parameter, with a reason a user can act on.
    pub fn invalid_because(parameter: &str, reason: &str) -> Self {
        Self::invalid(parameter).because(reason)
    }

    /// The error with a reason a user can act on after the code's message.
    pub fn because(mut self, reason: &str) -> Self {
        self.message.push(' ');
        self.message.push_str(reason);
        self
    }

    pub fn internal() -> Self {
        Self::new(ErrorCode::InternalFailure)
    }

    fn naming(code: ErrorCode, parameter: &str) -> Self {
        KmsError::with_message(code, code.message_template().replace("<name>", parameter))
    }
}

impl From<ErrorCode> for KmsError {
    fn from(code: ErrorCode) -> Self {
        KmsError::new(code)
    }
}

impl fmt::Display for KmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.code.http_status(), self.message)
    }
}

impl std::error::Error for KmsError {}

pub type KmsResult<T> = Result<T, KmsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_from_its_spelling() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
        }
        assert_eq!(ErrorCode::parse("SerivceUnvailableTemporary"), Some(ErrorCode::ServiceUnavailable));
        assert_eq!(ErrorCode::parse("Rejected.Nope"), None);
    }

    #[test]
    fn messages_name_the_parameter() {
        let e = KmsError::invalid("CiphertextBlob");
        assert_eq!(e.message, "The specified parameter \"CiphertextBlob\" is not valid.");
        assert_eq!(e.to_string(), "InvalidParameter (400): The specified parameter \"CiphertextBlob\" is not valid.");
        assert_eq!(KmsError::missing("KeyId").message, "The parameter \"KeyId\" is needed but not provided.");
    }

    #[test]
    fn state_rejections_are_409() {
        for code in [ErrorCode::Disabled, ErrorCode::PendingDeletion, ErrorCode::PendingImport, ErrorCode::Unavailable]
        {
            assert_eq!(code.http_status(), 409);
        }
        assert_eq!(ErrorCode::Disabled.as_str(), "Rejected.Disabled");
    }
}
