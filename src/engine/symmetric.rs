//! Symmetric cryptography under a key: Encrypt, Decrypt, ReEncrypt,
//! GenerateDataKey(WithoutPlaintext) and GenerateRandom.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;
use zeroize::Zeroizing;

use super::crypto::symmetric::Cipher;
use super::crypto::{ParsedKey, random_secret};
use super::error::{ErrorCode, KmsError, KmsResult};
use super::key::{Key, KeyOp, KeySpec, KeyUsage, SpecKind};
use super::{Engine, Outcome};
use crate::context::CallContext;

pub const MAX_PLAINTEXT_BYTES: usize = 6144;
pub const MAX_DATA_KEY_BYTES: usize = 1024;
pub const MAX_RANDOM_BYTES: usize = 1024;
/// Alibaba bounds the encryption context's JSON form to 8 KiB; this bounds its raw size alike.
pub const MAX_CONTEXT_BYTES: usize = 8192;

/// A ciphertext blob and the key version that sealed it.
#[derive(Debug)]
pub struct Sealed {
    pub ciphertext_blob: Vec<u8>,
    pub key_id: String,
    pub key_version_id: Uuid,
}

/// A plaintext and the key version that opened it.
pub struct Opened {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub key_id: String,
    pub key_version_id: Uuid,
}

/// A fresh data key: its plaintext and the same key sealed under the KMS key.
pub struct DataKey {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub sealed: Sealed,
}

/// A new asymmetric key pair, its private key sealed under a symmetric key:
/// PKCS#8 DER private key, SubjectPublicKeyInfo DER public key.
pub struct DataKeyPair {
    pub private_key: Zeroizing<Vec<u8>>,
    pub public_key: Vec<u8>,
    pub spec: KeySpec,
    pub sealed: Sealed,
}

pub struct Reencrypted {
    pub sealed: Sealed,
    pub source_key_id: String,
    pub source_key_version_id: Uuid,
}

impl Engine {
    pub fn encrypt(
        &self,
        cx: &CallContext,
        key_id: &str,
        plaintext: &[u8],
        context: BTreeMap<String, String>,
    ) -> KmsResult<Outcome<Sealed>> {
        if key_id.is_empty() {
            return Err(KmsError::missing("KeyId"));
        }
        check_plaintext(plaintext)?;
        check_context(&context, "EncryptionContext")?;
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        cx.trail.plaintext_bytes(plaintext.len());
        let sealed = self.seal(cx, &key, plaintext, &context)?;
        Ok(Outcome::read(sealed))
    }

    pub fn decrypt(
        &self,
        cx: &CallContext,
        ciphertext_blob: &[u8],
        context: BTreeMap<String, String>,
    ) -> KmsResult<Outcome<Opened>> {
        check_context(&context, "EncryptionContext")?;
        let opened = self.open(cx, ciphertext_blob, &context)?;
        cx.trail.plaintext_bytes(opened.plaintext.len());
        Ok(Outcome::read(opened))
    }

    /// Opens a blob and seals its plaintext under another key (or the same
    /// key's primary version), without the plaintext leaving the engine.
    pub fn re_encrypt(
        &self,
        cx: &CallContext,
        ciphertext_blob: &[u8],
        source_context: BTreeMap<String, String>,
        destination_key_id: &str,
        destination_context: BTreeMap<String, String>,
    ) -> KmsResult<Outcome<Reencrypted>> {
        if destination_key_id.is_empty() {
            return Err(KmsError::missing("DestinationKeyId"));
        }
        check_context(&source_context, "SourceEncryptionContext")?;
        check_context(&destination_context, "DestinationEncryptionContext")?;
        let destination = self.resolve(cx, destination_key_id, "DestinationKeyId")?.snapshot();
        let opened = self.open(cx, ciphertext_blob, &source_context)?;
        cx.trail.referenced_key(super::key::key_arn(&cx.region, &self.account_id, &opened.key_id));
        cx.trail.key(&destination.meta);
        cx.trail.plaintext_bytes(opened.plaintext.len());
        let sealed = self.seal(cx, &destination, &opened.plaintext, &destination_context)?;
        Ok(Outcome::read(Reencrypted {
            sealed,
            source_key_id: opened.key_id,
            source_key_version_id: opened.key_version_id,
        }))
    }

    /// GenerateDataKey; `with_plaintext` false is GenerateDataKeyWithoutPlaintext,
    /// whose data key never leaves the engine unsealed.
    pub fn generate_data_key(
        &self,
        cx: &CallContext,
        key_id: &str,
        key_spec: &str,
        number_of_bytes: i32,
        context: BTreeMap<String, String>,
    ) -> KmsResult<Outcome<DataKey>> {
        if key_id.is_empty() {
            return Err(KmsError::missing("KeyId"));
        }
        let len = data_key_len(key_spec, number_of_bytes)?;
        check_context(&context, "EncryptionContext")?;
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        let plaintext = random_secret(len);
        cx.trail.plaintext_bytes(len);
        let sealed = self.seal(cx, &key, &plaintext, &context)?;
        Ok(Outcome::read(DataKey { plaintext, sealed }))
    }

    /// A key pair of `pair_spec` whose private key is sealed under `key_id`, as
    /// a data key is. RSA generation is slow: the catalogue runs it on the blocking pool.
    pub fn generate_data_key_pair(
        &self,
        cx: &CallContext,
        key_id: &str,
        pair_spec: &str,
        context: BTreeMap<String, String>,
    ) -> KmsResult<Outcome<DataKeyPair>> {
        if key_id.is_empty() {
            return Err(KmsError::missing("KeyId"));
        }
        if pair_spec.is_empty() {
            return Err(KmsError::missing("KeyPairSpec"));
        }
        let spec = KeySpec::parse(pair_spec).map_err(|_| KmsError::invalid("KeyPairSpec"))?;
        let SpecKind::Asymmetric(kind) = spec.kind() else {
            return Err(KmsError::invalid_because("KeyPairSpec", "Name an RSA or elliptic-curve key pair."));
        };
        check_context(&context, "EncryptionContext")?;
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        symmetric_cipher(&key)?;
        let private_key = kind.generate();
        let public_pem = ParsedKey::from_pkcs8(kind, &private_key).map_err(|_| KmsError::internal())?.public_key_pem();
        let (_, public_key) = pem_rfc7468::decode_vec(public_pem.as_bytes()).map_err(|_| KmsError::internal())?;
        cx.trail.plaintext_bytes(private_key.len());
        let sealed = self.seal(cx, &key, &private_key, &context)?;
        Ok(Outcome::read(DataKeyPair { private_key, public_key, spec, sealed }))
    }

    pub fn generate_random(&self, length: i32) -> KmsResult<Outcome<Zeroizing<Vec<u8>>>> {
        match usize::try_from(length) {
            Ok(0) => Err(KmsError::missing("Length")),
            Ok(n) if n <= MAX_RANDOM_BYTES => Ok(Outcome::read(random_secret(n))),
            _ => Err(KmsError::invalid_because("Length", "It must be between 1 and 1024.")),
        }
    }

    pub(super) fn seal(
        &self,
        cx: &CallContext,
        key: &Key,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> KmsResult<Sealed> {
        let cipher = symmetric_cipher(key)?;
        let version = key.primary().ok_or(ErrorCode::PendingImport)?;
        cx.trail.key_version(version.version_id);
        let blob = self
            .blobs
            .seal(&key.meta.key_id, version.version_id, cipher, &version.material, plaintext, context)
            .map_err(|_| KmsError::internal())?;
        cx.trail.ciphertext_bytes(blob.len());
        Ok(Sealed { ciphertext_blob: blob, key_id: key.meta.key_id.clone(), key_version_id: version.version_id })
    }

    /// Every way a blob can be wrong, short of naming a key that is gone or
    /// unusable, is InvalidParameter naming `CiphertextBlob`.
    pub(super) fn open(&self, cx: &CallContext, blob: &[u8], context: &BTreeMap<String, String>) -> KmsResult<Opened> {
        if blob.is_empty() {
            return Err(KmsError::missing("CiphertextBlob"));
        }
        let bad_blob = || KmsError::invalid("CiphertextBlob");
        let parsed = self.blobs.parse(blob).map_err(|_| bad_blob())?;
        cx.trail.ciphertext_bytes(blob.len());
        let key: Arc<Key> = self.slot(&cx.region, parsed.key_id).ok_or(ErrorCode::KeyNotFound)?.snapshot();
        cx.trail.key(&key.meta);
        cx.trail.key_version(parsed.key_version_id);
        let cipher = symmetric_cipher(&key)?;
        let version = key.version(parsed.key_version_id).ok_or_else(bad_blob)?;
        let plaintext = parsed.open(cipher, &version.material, context).map_err(|_| bad_blob())?;
        Ok(Opened { plaintext, key_id: key.meta.key_id.clone(), key_version_id: version.version_id })
    }
}

/// The state table first (a disabled key answers Rejected.Disabled whatever
/// its usage), then the spec and usage; answers the key's cipher.
fn symmetric_cipher(key: &Key) -> KmsResult<Cipher> {
    key.allow(KeyOp::Cryptographic)?;
    match key.meta.spec.kind() {
        SpecKind::Symmetric(cipher) if key.meta.usage == KeyUsage::EncryptDecrypt => Ok(cipher),
        _ => Err(key.refuse_use(ErrorCode::UnsupportedOperation)),
    }
}

fn check_plaintext(plaintext: &[u8]) -> KmsResult<()> {
    match plaintext.len() {
        0 => Err(KmsError::missing("Plaintext")),
        n if n > MAX_PLAINTEXT_BYTES => {
            Err(KmsError::invalid_because("Plaintext", "It must be between 1 and 6144 bytes."))
        }
        _ => Ok(()),
    }
}

fn check_context(context: &BTreeMap<String, String>, param: &str) -> KmsResult<()> {
    let size: usize = context.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_CONTEXT_BYTES || context.keys().any(String::is_empty) {
        return Err(KmsError::invalid(param));
    }
    Ok(())
}

/// NumberOfBytes wins over KeySpec; the default is 32 bytes (AES_256).
fn data_key_len(key_spec: &str, number_of_bytes: i32) -> KmsResult<usize> {
    if number_of_bytes != 0 {
        return match usize::try_from(number_of_bytes) {
            Ok(n) if (1..=MAX_DATA_KEY_BYTES).contains(&n) => Ok(n),
            _ => Err(KmsError::invalid_because("NumberOfBytes", "It must be between 1 and 1024.")),
        };
    }
    match key_spec {
        "" | "AES_256" => Ok(32),
        "AES_128" => Ok(16),
        _ => Err(KmsError::invalid("KeySpec")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_key_lengths() {
        assert_eq!(data_key_len("", 0).unwrap(), 32);
        assert_eq!(data_key_len("AES_128", 0).unwrap(), 16);
        assert_eq!(data_key_len("AES_128", 64).unwrap(), 64);
        assert_eq!(data_key_len("", 1024).unwrap(), 1024);
        assert!(data_key_len("", 1025).is_err());
        assert!(data_key_len("", -1).is_err());
        assert_eq!(
            data_key_len("AES_512", 0).unwrap_err().message,
            "The specified parameter \"KeySpec\" is not valid."
        );
    }

    #[test]
    fn plaintext_bounds() {
        assert_eq!(check_plaintext(&[]).unwrap_err().code, ErrorCode::MissingParameter);
        assert!(check_plaintext(&[0; 6144]).is_ok());
        assert_eq!(check_plaintext(&[0; 6145]).unwrap_err().code, ErrorCode::InvalidParameter);
    }
}
