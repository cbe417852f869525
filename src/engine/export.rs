//! Export: data keys re-wrapped under a caller's public key (ExportDataKey,
//! GenerateAndExportDataKey), and the material of keys created exportable
//! (ExportKey). Every export is audited as `kms.export`, refused or not.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::asymmetric::pick_version;
use super::crypto::wrap::{WrapAlgorithm, WrappingKey, wrapping_kind};
use super::error::{ErrorCode, KmsError, KmsResult};
use super::key::KeyOp;
use super::{DataKey, Engine, Outcome};
use crate::context::CallContext;

/// Where exported material goes: the caller's public key and how to wrap under it.
#[derive(Debug, Clone, Copy)]
pub struct ExportTo<'a> {
    pub public_key_blob: &'a [u8],
    pub wrapping_algorithm: &'a str,
    pub wrapping_key_spec: &'a str,
}

/// Material wrapped for the caller, with the KMS key version it came from.
#[derive(Debug)]
pub struct Exported {
    pub export_blob: Vec<u8>,
    pub key_id: String,
    pub key_version_id: Uuid,
}

impl Engine {
    /// Re-wraps the data key inside `ciphertext_blob` under the caller's public key.
    pub fn export_data_key(
        &self,
        cx: &CallContext,
        ciphertext_blob: &[u8],
        context: BTreeMap<String, String>,
        to: ExportTo<'_>,
    ) -> KmsResult<Outcome<Exported>> {
        let (wrapping_key, algorithm) = wrapping(to)?;
        let opened = self.decrypt(cx, ciphertext_blob, context)?.value;
        let export_blob = wrap(&wrapping_key, algorithm, &opened.plaintext)?;
        cx.trail.ciphertext_bytes(export_blob.len());
        Ok(Outcome::read(Exported { export_blob, key_id: opened.key_id, key_version_id: opened.key_version_id }))
    }

    /// A new data key, sealed under the KMS key and wrapped under the caller's public key.
    pub fn generate_and_export_data_key(
        &self,
        cx: &CallContext,
        (key_id, key_spec, number_of_bytes): (&str, &str, i32),
        context: BTreeMap<String, String>,
        to: ExportTo<'_>,
    ) -> KmsResult<Outcome<(DataKey, Vec<u8>)>> {
        let (wrapping_key, algorithm) = wrapping(to)?;
        let data_key = self.generate_data_key(cx, key_id, key_spec, number_of_bytes, context)?.value;
        let export_blob = wrap(&wrapping_key, algorithm, &data_key.plaintext)?;
        Ok(Outcome::read((data_key, export_blob)))
    }

    /// The material of one version of an exportable key, wrapped under the caller's
    /// public key: raw bytes for symmetric and HMAC keys, PKCS#8 DER for asymmetric ones.
    pub fn export_key(
        &self,
        cx: &CallContext,
        key_id: &str,
        key_version_id: &str,
        to: ExportTo<'_>,
    ) -> KmsResult<Outcome<Exported>> {
        let (wrapping_key, algorithm) = wrapping(to)?;
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        key.allow(KeyOp::Cryptographic)?;
        if !key.meta.exportable {
            return Err(
                KmsError::new(ErrorCode::RejectedUnsupportedOperation).because("The key was not created exportable.")
            );
        }
        let version = pick_version(cx, &key, key_version_id)?;
        // Symmetric and HMAC material is the raw key; asymmetric material is already PKCS#8 DER.
        let export_blob = wrap(&wrapping_key, algorithm, &version.material)?;
        cx.trail.ciphertext_bytes(export_blob.len());
        Ok(Outcome::read(Exported { export_blob, key_id: key.meta.key_id.clone(), key_version_id: version.version_id }))
    }
}

fn wrapping(to: ExportTo<'_>) -> KmsResult<(WrappingKey, WrapAlgorithm)> {
    if to.public_key_blob.is_empty() {
        return Err(KmsError::missing("PublicKeyBlob"));
    }
    if to.wrapping_algorithm.is_empty() {
        return Err(KmsError::missing("WrappingAlgorithm"));
    }
    if to.wrapping_key_spec.is_empty() {
        return Err(KmsError::missing("WrappingKeySpec"));
    }
    let algorithm =
        WrapAlgorithm::parse(to.wrapping_algorithm).ok_or_else(|| KmsError::invalid("WrappingAlgorithm"))?;
    let key = WrappingKey::parse(to.public_key_blob).map_err(|_| KmsError::invalid("PublicKeyBlob"))?;
    let spec = key.spec();
    if wrapping_kind(to.wrapping_key_spec).is_none() || spec != to.wrapping_key_spec {
        return Err(KmsError::invalid_because("WrappingKeySpec", &format!("The public key is {spec}.")));
    }
    let fits = matches!(
        (&key, algorithm),
        (WrappingKey::Sm2(_), WrapAlgorithm::Sm2Pke)
            | (
                WrappingKey::Rsa(_),
                WrapAlgorithm::RsaOaepSha256
                    | WrapAlgorithm::RsaOaepSha1
                    | WrapAlgorithm::RsaAesKeyWrapSha256
                    | WrapAlgorithm::RsaAesKeyWrapSha1
            )
    );
    if !fits {
        return Err(KmsError::invalid_because("WrappingAlgorithm", &format!("It does not go with {spec} keys.")));
    }
    Ok((key, algorithm))
}

fn wrap(key: &WrappingKey, algorithm: WrapAlgorithm, material: &[u8]) -> KmsResult<Vec<u8>> {
    key.wrap(algorithm, material).map_err(|_| {
        KmsError::invalid_because(
            "WrappingAlgorithm",
            "The material is too large for it; use RSA_AES_KEY_WRAP_SHA_256.",
        )
    })
}
