//! AWS's names for what kmsim's engine names in Alibaba's terms, each in one
//! table read both ways: key specs, key usages, algorithms; and AWS's
//! exceptions for kmsim's error codes.

use crate::engine::error::Refusal;
use crate::engine::key::{KeySpec, KeyState, KeyUsage};
use crate::engine::{ErrorCode, KmsError, KmsResult};

/// AWS key spec ↔ kmsim key spec. AWS specs kmsim cannot honour (ML-DSA) are absent,
/// so they are refused naming the parameter.
pub const KEY_SPECS: &[(&str, KeySpec)] = &[
    ("SYMMETRIC_DEFAULT", KeySpec::Aes256),
    ("RSA_2048", KeySpec::Rsa2048),
    ("RSA_3072", KeySpec::Rsa3072),
    ("RSA_4096", KeySpec::Rsa4096),
    ("ECC_NIST_P256", KeySpec::EcP256),
    ("ECC_NIST_P384", KeySpec::EcP384),
    ("ECC_NIST_P521", KeySpec::EcP521),
    ("ECC_SECG_P256K1", KeySpec::EcP256k),
    ("HMAC_224", KeySpec::Hmac224),
    ("HMAC_256", KeySpec::Hmac256),
    ("HMAC_384", KeySpec::Hmac384),
    ("HMAC_512", KeySpec::Hmac512),
    ("SM2", KeySpec::EcSm2),
];

/// The keys AWS's GetParametersForImport wraps under (its WrappingKeySpec).
pub const WRAPPING_KEY_SPECS: &[(&str, KeySpec)] = &[
    ("RSA_2048", KeySpec::Rsa2048),
    ("RSA_3072", KeySpec::Rsa3072),
    ("RSA_4096", KeySpec::Rsa4096),
    ("SM2", KeySpec::EcSm2),
];

pub const KEY_USAGES: &[(&str, KeyUsage)] = &[
    ("ENCRYPT_DECRYPT", KeyUsage::EncryptDecrypt),
    ("SIGN_VERIFY", KeyUsage::SignVerify),
    ("GENERATE_VERIFY_MAC", KeyUsage::GenerateVerifyMac),
    ("KEY_AGREEMENT", KeyUsage::KeyAgreement),
];

/// Signing algorithms: AWS's name, kmsim's.
pub const SIGNING_ALGORITHMS: &[(&str, &str)] = &[
    ("RSASSA_PSS_SHA_256", "RSA_PSS_SHA_256"),
    ("RSASSA_PSS_SHA_384", "RSA_PSS_SHA_384"),
    ("RSASSA_PSS_SHA_512", "RSA_PSS_SHA_512"),
    ("RSASSA_PKCS1_V1_5_SHA_256", "RSA_PKCS1_SHA_256"),
    ("RSASSA_PKCS1_V1_5_SHA_384", "RSA_PKCS1_SHA_384"),
    ("RSASSA_PKCS1_V1_5_SHA_512", "RSA_PKCS1_SHA_512"),
    ("ECDSA_SHA_256", "ECDSA_SHA_256"),
    ("ECDSA_SHA_384", "ECDSA_SHA_384"),
    ("ECDSA_SHA_512", "ECDSA_SHA_512"),
    ("SM2DSA", "SM2DSA"),
];

/// Operations AWS names otherwise than kmsim's catalogue: AWS's name, kmsim's.
pub const OPERATION_NAMES: &[(&str, &str)] = &[
    ("Sign", "AsymmetricSign"),
    ("Verify", "AsymmetricVerify"),
    ("Encrypt", "AsymmetricEncrypt"),
    ("Decrypt", "AsymmetricDecrypt"),
];

/// AWS's name for an operation kmsim's record names (a call through another front end is named as kmsim
/// names it); a name AWS shares, or has no operation for, as it is.
pub fn aws_operation(event_name: &str) -> &str {
    OPERATION_NAMES.iter().find(|(_, kmsim)| *kmsim == event_name).map_or(event_name, |(aws, _)| aws)
}

/// The AWS name of `value` in `table`.
pub fn aws_name<T: PartialEq + Copy>(table: &[(&'static str, T)], value: T) -> &'static str {
    table.iter().find(|(_, v)| *v == value).map_or("", |(name, _)| name)
}

/// kmsim's value for the AWS name `name` of parameter `param`; an empty name is `None` (the default).
pub fn from_aws<T: Copy>(table: &[(&'static str, T)], name: &str, param: &str) -> KmsResult<Option<T>> {
    if name.is_empty() {
        return Ok(None);
    }
    table.iter().find(|(aws, _)| *aws == name).map(|(_, v)| Some(*v)).ok_or_else(|| {
        let known: Vec<&str> = table.iter().map(|(aws, _)| *aws).collect();
        KmsError::invalid_because(param, &format!("Use one of {}.", known.join(", ")))
    })
}

/// The algorithms AWS lists in a key's metadata for its spec and usage.
pub fn algorithms(spec: KeySpec, usage: KeyUsage) -> Algorithms {
    let (mut encryption, mut signing, mut mac) = (Vec::new(), Vec::new(), Vec::new());
    if usage == KeyUsage::KeyAgreement {
        return Algorithms { key_agreement: vec!["ECDH"], ..Algorithms::default() };
    }
    match (spec, usage) {
        (KeySpec::Aes256 | KeySpec::Aes128 | KeySpec::Aes192 | KeySpec::Sm4, _) => encryption.push("SYMMETRIC_DEFAULT"),
        (KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096, KeyUsage::EncryptDecrypt) => {
            encryption.extend(["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"])
        }
        (KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096, _) => {
            signing.extend(SIGNING_ALGORITHMS.iter().map(|(aws, _)| *aws).filter(|a| a.starts_with("RSASSA")))
        }
        (KeySpec::EcP256 | KeySpec::EcP256k, _) => signing.push("ECDSA_SHA_256"),
        (KeySpec::EcP384, _) => signing.push("ECDSA_SHA_384"),
        (KeySpec::EcP521, _) => signing.push("ECDSA_SHA_512"),
        (KeySpec::EcSm2, KeyUsage::EncryptDecrypt) => encryption.push("SM2PKE"),
        (KeySpec::EcSm2, _) => signing.push("SM2DSA"),
        (KeySpec::Hmac224, _) => mac.push("HMAC_SHA_224"),
        (KeySpec::Hmac256, _) => mac.push("HMAC_SHA_256"),
        (KeySpec::Hmac384, _) => mac.push("HMAC_SHA_384"),
        (KeySpec::Hmac512, _) => mac.push("HMAC_SHA_512"),
    }
    Algorithms { encryption, signing, mac, key_agreement: Vec::new() }
}

/// The algorithm lists of a key's metadata, each as AWS names it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Algorithms {
    pub encryption: Vec<&'static str>,
    pub signing: Vec<&'static str>,
    pub mac: Vec<&'static str>,
    pub key_agreement: Vec<&'static str>,
}

/// The message AWS gives a refusal a key made: the key ARN and its state as
/// AWS words them ("<ARN> is pending deletion."), or its usage; else kmsim's.
pub fn message(error: &KmsError, key_arn: impl Fn(&str) -> String) -> String {
    match error.refusal.as_deref() {
        None => error.message.clone(),
        Some(Refusal::KeyState { key_id, state }) => {
            let state = match state {
                KeyState::Disabled if error.code == ErrorCode::Disabled => "disabled",
                KeyState::PendingDeletion => "pending deletion",
                KeyState::PendingImport => "pending import",
                KeyState::Unavailable => "unavailable",
                // Only CancelKeyDeletion is refused for a key that is Enabled or Disabled.
                KeyState::Enabled | KeyState::Disabled => "not pending deletion",
            };
            format!("{} is {state}.", key_arn(key_id))
        }
        Some(Refusal::KeyUsage { key_id, usage }) => {
            format!("{} key usage is {}. {}", key_arn(key_id), aws_name(KEY_USAGES, *usage), error.message)
        }
    }
}

/// AWS's exception for a kmsim error, and its HTTP status: the one table from
/// kmsim's codes to AWS's. A parameter refused as a ciphertext is AWS's
/// InvalidCiphertextException, whatever the operation.
pub fn exception(error: &KmsError) -> (&'static str, u16) {
    use ErrorCode as C;
    if matches!(error.refusal.as_deref(), Some(Refusal::KeyUsage { .. })) {
        return ("InvalidKeyUsageException", 400);
    }
    let name = match error.code {
        C::InvalidParameter if error.message.contains("\"CiphertextBlob\"") => "InvalidCiphertextException",
        C::InvalidParameter if error.message.contains("\"Policy\"") => "MalformedPolicyDocumentException",
        C::InvalidParameter | C::MissingParameter | C::VersionInvalid => "ValidationException",
        C::UnsupportedOperation | C::RejectedUnsupportedOperation | C::UnsupportedOrigin => {
            "UnsupportedOperationException"
        }
        C::LimitExceeded => "LimitExceededException",
        C::AliasAlreadyExists | C::ResourceExist => "AlreadyExistsException",
        C::InvalidKeyMaterial => "IncorrectKeyMaterialException",
        C::InvalidImportToken => "InvalidImportTokenException",
        C::ExpiredImportToken => "ExpiredImportTokenException",
        C::SignatureNotMatch | C::SignatureDoesNotMatch | C::SignatureNonceUsed => "InvalidSignatureException",
        C::RequestTimeTooSkewed | C::TimestampExpired => "InvalidSignatureException",
        C::IncompleteSignature | C::TimestampFormat => "IncompleteSignatureException",
        C::NoPermission | C::AccessKeyForbidden => "AccessDeniedException",
        C::AccessKeyNotFound => "UnrecognizedClientException",
        C::KeyNotFound | C::KeyVersionNotFound | C::AliasNotFound | C::ResourceNotFound | C::InstanceNotFound => {
            "NotFoundException"
        }
        C::Disabled => "DisabledException",
        C::PendingDeletion
        | C::PendingImport
        | C::Unavailable
        | C::StateModifiedFailed
        | C::Enabled
        | C::ResourceInDeleteWindow
        | C::ResourceInUse => "KMSInvalidStateException",
        C::Throttling => "ThrottlingException",
        C::InvalidSignature => "KMSInvalidSignatureException",
        C::InvalidMac => "KMSInvalidMacException",
        C::IncorrectKey => "IncorrectKeyException",
        C::InvalidGrantToken => "InvalidGrantTokenException",
        C::InvalidGrantId => "InvalidGrantIdException",
        C::DryRunOperation => "DryRunOperationException",
        C::ActionNotFound => "UnknownOperationException",
        C::InternalFailure => "KMSInternalException",
        C::ServiceUnavailable => "DependencyTimeoutException",
    };
    let status = match error.code {
        C::InternalFailure => 500,
        C::ServiceUnavailable => 503,
        C::DryRunOperation => 412,
        _ => 400,
    };
    (name, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_reads_both_ways() {
        for (aws, spec) in KEY_SPECS {
            assert_eq!(from_aws(KEY_SPECS, aws, "KeySpec").unwrap(), Some(*spec));
            assert_eq!(aws_name(KEY_SPECS, *spec), *aws);
        }
        assert!(from_aws(KEY_SPECS, "ML_DSA_44", "KeySpec").unwrap_err().message.contains("KeySpec"));
        assert_eq!(from_aws(KEY_SPECS, "", "KeySpec").unwrap(), None);
    }

    #[test]
    fn every_error_code_has_an_aws_exception() {
        for code in ErrorCode::ALL {
            let (name, status) = exception(&KmsError::new(*code));
            assert!(name.ends_with("Exception"), "{code}: {name}");
            assert!(matches!(status, 400 | 412 | 500 | 503));
        }
        assert_eq!(exception(&KmsError::invalid("CiphertextBlob")).0, "InvalidCiphertextException");
        assert_eq!(exception(&KmsError::invalid("KeyId")).0, "ValidationException");
    }

    #[test]
    fn a_state_refusal_names_the_key_arn_and_its_state_as_aws_does() {
        let arn = |id: &str| format!("arn:aws:kms:us-east-1:111122223333:key/{id}");
        let said =
            |code, state| message(&KmsError::new(code).refused(Refusal::KeyState { key_id: "k1".into(), state }), arn);
        let key = "arn:aws:kms:us-east-1:111122223333:key/k1";
        assert_eq!(said(ErrorCode::Disabled, KeyState::Disabled), format!("{key} is disabled."));
        assert_eq!(said(ErrorCode::PendingDeletion, KeyState::PendingDeletion), format!("{key} is pending deletion."));
        assert_eq!(said(ErrorCode::StateModifiedFailed, KeyState::PendingImport), format!("{key} is pending import."));
        assert_eq!(said(ErrorCode::StateModifiedFailed, KeyState::Enabled), format!("{key} is not pending deletion."));
        assert_eq!(message(&KmsError::invalid("KeyId"), arn), KmsError::invalid("KeyId").message);
    }

    #[test]
    fn a_key_that_cannot_do_what_was_asked_is_invalid_key_usage() {
        let refused = KmsError::new(ErrorCode::UnsupportedOperation)
            .refused(Refusal::KeyUsage { key_id: "k1".into(), usage: KeyUsage::SignVerify });
        assert_eq!(exception(&refused), ("InvalidKeyUsageException", 400));
        let arn = |id: &str| format!("arn:aws:kms:us-east-1:111122223333:key/{id}");
        assert!(
            message(&refused, arn).starts_with("arn:aws:kms:us-east-1:111122223333:key/k1 key usage is SIGN_VERIFY.")
        );
    }
}
