//! The one mapping from [`KmsError`] to a gRPC status.
//!
//! Every failure carries the gRPC code of its class, the Alibaba code as the
//! reason of a `google.rpc.ErrorInfo` (domain `kmsim`), and trailing metadata
//! `x-kms-error-code`, `x-kms-http-status` and `x-kms-request-id`.

use std::collections::HashMap;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::engine::KmsError;
use crate::engine::error::GrpcClass;

pub const ERROR_DOMAIN: &str = "kmsim";
pub const REQUEST_ID_HEADER: &str = "x-kms-request-id";
pub const ERROR_CODE_HEADER: &str = "x-kms-error-code";
pub const HTTP_STATUS_HEADER: &str = "x-kms-http-status";

pub fn grpc_code(class: GrpcClass) -> Code {
    match class {
        GrpcClass::InvalidArgument => Code::InvalidArgument,
        GrpcClass::FailedPrecondition => Code::FailedPrecondition,
        GrpcClass::ResourceExhausted => Code::ResourceExhausted,
        GrpcClass::AlreadyExists => Code::AlreadyExists,
        GrpcClass::Unauthenticated => Code::Unauthenticated,
        GrpcClass::PermissionDenied => Code::PermissionDenied,
        GrpcClass::NotFound => Code::NotFound,
        GrpcClass::Internal => Code::Internal,
        GrpcClass::Unavailable => Code::Unavailable,
    }
}

pub fn to_status(error: &KmsError, request_id: &str) -> Status {
    let http_status = error.code.http_status().to_string();
    let info = HashMap::from([
        ("httpStatus".to_owned(), http_status.clone()),
        ("requestId".to_owned(), request_id.to_owned()),
        ("retryable".to_owned(), error.code.is_retryable().to_string()),
    ]);
    let details = ErrorDetails::with_error_info(error.code.as_str(), ERROR_DOMAIN, info);
    let mut status = Status::with_error_details(grpc_code(error.code.grpc_class()), error.message.clone(), details);
    let metadata = status.metadata_mut();
    metadata.insert(ERROR_CODE_HEADER, MetadataValue::from_static(error.code.as_str()));
    if let Ok(value) = http_status.parse() {
        metadata.insert(HTTP_STATUS_HEADER, value);
    }
    if let Ok(value) = request_id.parse() {
        metadata.insert(REQUEST_ID_HEADER, value);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ErrorCode;

    #[test]
    fn a_disabled_key_maps_to_failed_precondition_409() {
        let status = to_status(&KmsError::new(ErrorCode::Disabled), "req-1");
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.metadata().get(ERROR_CODE_HEADER).unwrap(), "Rejected.Disabled");
        assert_eq!(status.metadata().get(HTTP_STATUS_HEADER).unwrap(), "409");
        assert_eq!(status.metadata().get(REQUEST_ID_HEADER).unwrap(), "req-1");
        let info = status.get_details_error_info().unwrap();
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("Rejected.Disabled", "kmsim"));
    }
}
