//! Bring your own key: GetParametersForImport hands out an RSA wrapping key and
//! an import token valid 24 hours; ImportKeyMaterial unwraps the material and
//! enables the key; DeleteKeyMaterial returns it to PendingImport.

use std::sync::Arc;

use rand::Rng;
use sha2::Digest;
use zeroize::Zeroizing;

use super::crypto::ParsedKey;
use super::crypto::asymmetric::AsymmetricKind;
use super::crypto::wrap::{WrapAlgorithm, unwrap, wrapping_kind};
use super::error::{ErrorCode, KmsError, KmsResult};
use super::key::{ImportedMaterial, Key, KeyState, KeyVersion, Origin, SpecKind};
use super::lifecycle::without_material;
use super::{Change, Engine, Outcome, read_lock};
use crate::clock::SimTime;
use crate::context::CallContext;

/// How long an import token stays valid.
pub const IMPORT_TOKEN_LIFETIME_MS: i64 = 24 * 3_600_000;

/// An import token and the wrapping key it stands for.
pub struct ImportToken {
    pub token: String,
    pub key_id: String,
    pub wrapping_algorithm: WrapAlgorithm,
    pub expires: SimTime,
    /// The wrapping private key, PKCS#8 DER: RSA, or SM2 for SM2PKE.
    pub private_key_der: Zeroizing<Vec<u8>>,
}

impl ImportToken {
    /// The kind of key that wraps, as its algorithm says (SM2PKE wraps under SM2, the others under RSA).
    fn wrapping_kind(&self) -> AsymmetricKind {
        match self.wrapping_algorithm {
            WrapAlgorithm::Sm2Pke => AsymmetricKind::Sm2,
            _ => AsymmetricKind::Rsa { bits: 0 },
        }
    }
}

impl std::fmt::Debug for ImportToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportToken")
            .field("key_id", &self.key_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// What GetParametersForImport answers.
#[derive(Debug, Clone)]
pub struct ImportParameters {
    pub key_id: String,
    pub import_token: String,
    /// PEM SubjectPublicKeyInfo of the wrapping key.
    pub public_key: String,
    pub token_expire_time: SimTime,
}

impl Engine {
    pub fn get_parameters_for_import(
        &self,
        cx: &CallContext,
        key_id: &str,
        wrapping_algorithm: &str,
        wrapping_key_spec: &str,
    ) -> KmsResult<Outcome<ImportParameters>> {
        let algorithm = match wrapping_algorithm {
            "" => return Err(KmsError::missing("WrappingAlgorithm")),
            text => WrapAlgorithm::parse(text).ok_or_else(|| KmsError::invalid("WrappingAlgorithm"))?,
        };
        let kind = match wrapping_key_spec {
            "" => return Err(KmsError::missing("WrappingKeySpec")),
            spec => wrapping_kind(spec).ok_or_else(|| {
                KmsError::invalid_because("WrappingKeySpec", "Use RSA_2048, RSA_3072, RSA_4096 or EC_SM2.")
            })?,
        };
        if !algorithm.wraps_with(kind) {
            return Err(KmsError::invalid_because(
                "WrappingAlgorithm",
                "SM2PKE wraps under EC_SM2; the others under RSA.",
            ));
        }
        let key = self.importable_key(cx, key_id)?;
        let private_key_der = kind.generate();
        let public_key =
            ParsedKey::from_pkcs8(kind, &private_key_der).map_err(|_| KmsError::internal())?.public_key_pem();
        let mut token_bytes = [0u8; 24];
        crate::engine::crypto::rng().fill_bytes(&mut token_bytes);
        let token = Arc::new(ImportToken {
            token: token_bytes.iter().map(|b| format!("{b:02x}")).collect(),
            key_id: key.meta.key_id.clone(),
            wrapping_algorithm: algorithm,
            expires: SimTime(cx.received_at.millis().saturating_add(IMPORT_TOKEN_LIFETIME_MS)),
            private_key_der,
        });
        let parameters = ImportParameters {
            key_id: key.meta.key_id.clone(),
            import_token: token.token.clone(),
            public_key,
            token_expire_time: token.expires,
        };
        Ok(Outcome::write(parameters, vec![Change::SaveImportToken(token)], Vec::new()))
    }

    /// Unwraps and installs the material. A key that had material before only
    /// takes the same material back.
    pub async fn import_key_material(
        &self,
        cx: &CallContext,
        key_id: &str,
        encrypted_key_material: &[u8],
        import_token: &str,
        key_material_expire_unix: i64,
    ) -> KmsResult<Outcome<Arc<Key>>> {
        if encrypted_key_material.is_empty() {
            return Err(KmsError::missing("EncryptedKeyMaterial"));
        }
        if import_token.is_empty() {
            return Err(KmsError::missing("ImportToken"));
        }
        let expires = match key_material_expire_unix {
            0 => None,
            secs if secs.saturating_mul(1000) > cx.received_at.millis() => Some(SimTime(secs.saturating_mul(1000))),
            _ => return Err(KmsError::invalid_because("KeyMaterialExpireUnix", "It must be in the future.")),
        };
        let slot = self.resolve(cx, key_id, "KeyId")?;
        let gate = slot.gate.clone().lock_owned().await;
        let key = slot.snapshot();
        cx.trail.key(&key.meta);
        let material_len = importable(&key)?;
        let token = read_lock(&self.import_tokens).get(import_token).cloned();
        let token = token.filter(|t| t.key_id == key.meta.key_id).ok_or(ErrorCode::InvalidImportToken)?;
        if cx.received_at > token.expires {
            return Err(ErrorCode::ExpiredImportToken.into());
        }
        let material =
            unwrap(token.wrapping_kind(), &token.private_key_der, token.wrapping_algorithm, encrypted_key_material)
                .map_err(|_| KmsError::new(ErrorCode::InvalidKeyMaterial))?;
        if material.len() != material_len {
            return Err(ErrorCode::InvalidKeyMaterial.into());
        }
        let sha256: String = sha2::Sha256::digest(&material[..]).iter().map(|b| format!("{b:02x}")).collect();
        if key.meta.import.as_ref().is_some_and(|previous| previous.sha256 != sha256) {
            return Err(
                KmsError::new(ErrorCode::InvalidKeyMaterial).because("It differs from the material imported before.")
            );
        }
        // The one version of an imported key keeps its id across delete and re-import,
        // so ciphertext made before a DeleteKeyMaterial opens again afterwards.
        let version_id = key.meta.primary_version.unwrap_or_else(crate::engine::crypto::new_uuid);
        let created = key.primary().map_or(cx.received_at, |v| v.created);
        let version = Arc::new(KeyVersion::new(version_id, created, material));
        cx.trail.key_version(version_id);
        let mut next = key.with_meta(|m| {
            m.primary_version = Some(version_id);
            m.import = Some(ImportedMaterial { sha256, expires });
            if m.state == KeyState::PendingImport {
                m.state = KeyState::Enabled;
            }
        });
        next.versions = vec![version.clone()];
        let next = Arc::new(next);
        let change = Change::SaveKey { key: next.clone(), new_versions: vec![version] };
        Ok(Outcome::write(next, vec![change], vec![gate]))
    }

    /// Destroys the imported material; the key waits in PendingImport for the same material again.
    pub async fn delete_key_material(
        &self,
        cx: &CallContext,
        key_id: &str,
        absent_is_deleted: bool,
    ) -> KmsResult<Outcome<Arc<Key>>> {
        let slot = self.resolve(cx, key_id, "KeyId")?;
        let gate = slot.gate.clone().lock_owned().await;
        let key = slot.snapshot();
        cx.trail.key(&key.meta);
        importable(&key)?;
        if key.primary().is_none() {
            if absent_is_deleted {
                return Ok(Outcome::read(key));
            }
            return Err(ErrorCode::PendingImport.into());
        }
        let (next, emptied) = without_material(&key);
        let next = Arc::new(next.with_meta(|m| m.state = KeyState::PendingImport));
        let change = Change::SaveKey { key: next.clone(), new_versions: emptied.into_iter().collect() };
        Ok(Outcome::write(next, vec![change], vec![gate]))
    }

    fn importable_key(&self, cx: &CallContext, key_id: &str) -> KmsResult<Arc<Key>> {
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        importable(&key)?;
        Ok(key)
    }
}

/// An EXTERNAL symmetric or HMAC key that is not being deleted (nor
/// Unavailable, its instance expired); answers the material length it takes.
fn importable(key: &Key) -> KmsResult<usize> {
    key.managed_here()?;
    if key.meta.state == KeyState::Unavailable {
        return Err(ErrorCode::Unavailable.into());
    }
    if key.meta.origin != Origin::External {
        return Err(ErrorCode::UnsupportedOrigin.into());
    }
    if key.meta.state == KeyState::PendingDeletion {
        return Err(ErrorCode::PendingDeletion.into());
    }
    match key.meta.spec.kind() {
        SpecKind::Symmetric(cipher) => Ok(cipher.key_len()),
        SpecKind::Hmac(hash) => Ok(hash.output_len()),
        SpecKind::Asymmetric(_) => Err(ErrorCode::RejectedUnsupportedOperation.into()),
    }
}
