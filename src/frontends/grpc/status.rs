//! The one mapping from [`KmsError`] to a gRPC status.
//!
//! Every failure carries the gRPC code of its class, the Alibaba code as the
//! reason of a `google.rpc.ErrorInfo` (domain `kmsim`), and trailing metadata
//! `x-kms-error-code`, `x-kms-http-status` and `x-kms-request-id`.
//!
//! The details are encoded here, with the ErrorInfo metadata in key order, so
//! two failures with the same code and request id are the same bytes (an
//! injected fault cannot be told from the real failure); tonic-types' own
//! builder takes a `HashMap`, whose order changes from one call to the next.

use std::collections::BTreeMap;

use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use super::headers;
use crate::engine::{ErrorCode, KmsError};

pub const ERROR_DOMAIN: &str = "kmsim";

/// The gRPC code each error is answered with: this front end's one table.
pub fn grpc_code(code: ErrorCode) -> Code {
    match code {
        ErrorCode::InvalidParameter => Code::InvalidArgument,
        ErrorCode::MissingParameter => Code::InvalidArgument,
        ErrorCode::UnsupportedOperation => Code::FailedPrecondition,
        ErrorCode::RejectedUnsupportedOperation => Code::FailedPrecondition,
        ErrorCode::LimitExceeded => Code::ResourceExhausted,
        ErrorCode::AliasAlreadyExists => Code::AlreadyExists,
        ErrorCode::InvalidKeyMaterial => Code::InvalidArgument,
        ErrorCode::InvalidImportToken => Code::InvalidArgument,
        ErrorCode::ExpiredImportToken => Code::InvalidArgument,
        ErrorCode::UnsupportedOrigin => Code::FailedPrecondition,
        ErrorCode::RequestTimeTooSkewed => Code::Unauthenticated,
        ErrorCode::SignatureNotMatch => Code::Unauthenticated,
        ErrorCode::NoPermission => Code::PermissionDenied,
        ErrorCode::AccessKeyForbidden => Code::PermissionDenied,
        ErrorCode::AccessKeyNotFound => Code::Unauthenticated,
        ErrorCode::KeyNotFound => Code::NotFound,
        ErrorCode::KeyVersionNotFound => Code::NotFound,
        ErrorCode::AliasNotFound => Code::NotFound,
        ErrorCode::ResourceNotFound => Code::NotFound,
        ErrorCode::InstanceNotFound => Code::NotFound,
        ErrorCode::Disabled => Code::FailedPrecondition,
        ErrorCode::PendingDeletion => Code::FailedPrecondition,
        ErrorCode::PendingImport => Code::FailedPrecondition,
        ErrorCode::Unavailable => Code::FailedPrecondition,
        ErrorCode::StateModifiedFailed => Code::FailedPrecondition,
        ErrorCode::Enabled => Code::FailedPrecondition,
        ErrorCode::ResourceExist => Code::AlreadyExists,
        ErrorCode::ResourceInDeleteWindow => Code::FailedPrecondition,
        ErrorCode::ResourceInUse => Code::FailedPrecondition,
        ErrorCode::Throttling => Code::ResourceExhausted,
        ErrorCode::InternalFailure => Code::Internal,
        ErrorCode::ServiceUnavailable => Code::Unavailable,
        ErrorCode::IncompleteSignature => Code::Unauthenticated,
        ErrorCode::SignatureDoesNotMatch => Code::Unauthenticated,
        ErrorCode::SignatureNonceUsed => Code::Unauthenticated,
        ErrorCode::TimestampExpired => Code::Unauthenticated,
        ErrorCode::TimestampFormat => Code::InvalidArgument,
        ErrorCode::ActionNotFound => Code::Unimplemented,
        ErrorCode::VersionInvalid => Code::InvalidArgument,
        ErrorCode::InvalidSignature => Code::InvalidArgument,
        ErrorCode::InvalidMac => Code::InvalidArgument,
        ErrorCode::IncorrectKey => Code::InvalidArgument,
        ErrorCode::InvalidGrantToken => Code::InvalidArgument,
        ErrorCode::InvalidGrantId => Code::InvalidArgument,
        ErrorCode::DryRunOperation => Code::FailedPrecondition,
    }
}

/// `google.rpc.ErrorInfo`, with its metadata map kept in key order.
#[derive(Clone, PartialEq, Message)]
struct ErrorInfo {
    #[prost(string, tag = "1")]
    reason: String,
    #[prost(string, tag = "2")]
    domain: String,
    #[prost(btree_map = "string, string", tag = "3")]
    metadata: BTreeMap<String, String>,
}

/// `google.rpc.Status`, the message gRPC's `grpc-status-details-bin` carries.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

pub fn to_status(error: &KmsError, request_id: &str) -> Status {
    to_status_with_code(error, request_id, grpc_code(error.code))
}

/// [`to_status`] with a gRPC code other than the error's own: for the edge's
/// refusals of what gRPC itself names (a message out of range, a method it
/// does not implement).
pub fn to_status_with_code(error: &KmsError, request_id: &str, code: Code) -> Status {
    let http_status = error.code.http_status().to_string();
    let info = ErrorInfo {
        reason: error.code.as_str().to_owned(),
        domain: ERROR_DOMAIN.to_owned(),
        metadata: BTreeMap::from([
            ("httpStatus".to_owned(), http_status.clone()),
            ("requestId".to_owned(), request_id.to_owned()),
            ("retryable".to_owned(), error.code.is_retryable().to_string()),
        ]),
    };
    let details = RpcStatus {
        code: code as i32,
        message: error.message.clone(),
        details: vec![prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.ErrorInfo".to_owned(),
            value: info.encode_to_vec(),
        }],
    };
    let mut status = Status::with_details(code, error.message.clone(), details.encode_to_vec().into());
    let metadata = status.metadata_mut();
    metadata.insert(headers::ERROR_CODE, MetadataValue::from_static(error.code.as_str()));
    if let Ok(value) = http_status.parse() {
        metadata.insert(headers::HTTP_STATUS, value);
    }
    if let Ok(value) = request_id.parse() {
        metadata.insert(headers::REQUEST_ID, value);
    }
    status
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;
    use crate::engine::ErrorCode;

    #[test]
    fn a_disabled_key_maps_to_failed_precondition_409() {
        let status = to_status(&KmsError::new(ErrorCode::Disabled), "req-1");
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.metadata().get(headers::ERROR_CODE).unwrap(), "Rejected.Disabled");
        assert_eq!(status.metadata().get(headers::HTTP_STATUS).unwrap(), "409");
        assert_eq!(status.metadata().get(headers::REQUEST_ID).unwrap(), "req-1");
        let info = status.get_details_error_info().unwrap();
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("Rejected.Disabled", "kmsim"));
        assert_eq!(info.metadata["httpStatus"], "409");
        assert_eq!(info.metadata["retryable"], "false");
    }

    #[test]
    fn state_rejections_are_failed_precondition() {
        for code in [ErrorCode::Disabled, ErrorCode::PendingDeletion, ErrorCode::PendingImport, ErrorCode::Unavailable]
        {
            assert_eq!(grpc_code(code), Code::FailedPrecondition);
        }
    }

    #[test]
    fn the_same_failure_is_the_same_bytes() {
        let error = KmsError::new(ErrorCode::ServiceUnavailable);
        let first = to_status(&error, "req-1");
        for _ in 0..8 {
            assert_eq!(to_status(&error, "req-1").details(), first.details());
        }
    }
}
