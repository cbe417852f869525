//! Asymmetric operations under a key: AsymmetricSign / Verify / Encrypt /
//! Decrypt and GetPublicKey.

use std::sync::Arc;

use uuid::Uuid;
use zeroize::Zeroizing;

use super::crypto::ParsedKey;
use super::crypto::asymmetric::{AsymmetricKind, Signable};
use super::error::{ErrorCode, KmsError, KmsResult};
use super::key::{
    EncryptionAlgorithm, Key, KeyOp, KeySpec, KeyUsage, KeyVersion, MessageType, SigningAlgorithm, SpecKind,
};
use super::{Engine, Outcome};
use crate::context::CallContext;

/// The largest raw message AsymmetricSign hashes itself.
pub const MAX_RAW_MESSAGE_BYTES: usize = 4096;

/// AsymmetricSign's and AsymmetricVerify's input as the client gave it.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    pub key_id: &'a str,
    pub key_version_id: &'a str,
    pub algorithm: &'a str,
    pub digest: &'a [u8],
    pub message: &'a [u8],
    pub message_type: &'a str,
}

/// The key and version an asymmetric call ran under, with its result.
#[derive(Debug)]
pub struct UnderKey<T> {
    pub value: T,
    pub key_id: String,
    pub key_version_id: Uuid,
}

/// A key's public half as PEM SubjectPublicKeyInfo, with what the key is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub pem: String,
    pub spec: KeySpec,
    pub usage: KeyUsage,
}

impl Engine {
    pub fn asymmetric_sign(&self, cx: &CallContext, request: SignRequest<'_>) -> KmsResult<Outcome<UnderKey<Vec<u8>>>> {
        let (key, version, private, algorithm, input) = self.signing_setup(cx, &request)?;
        let signature = private.sign(algorithm.scheme(), input).map_err(|_| KmsError::internal())?;
        cx.trail.signature_bytes(signature.len());
        Ok(Outcome::read(under(&key, &version, signature)))
    }

    /// A bad signature is `false`, not an error.
    pub fn asymmetric_verify(
        &self,
        cx: &CallContext,
        request: SignRequest<'_>,
        signature: &[u8],
    ) -> KmsResult<Outcome<UnderKey<bool>>> {
        if signature.is_empty() {
            return Err(KmsError::missing("Signature"));
        }
        let (key, version, private, algorithm, input) = self.signing_setup(cx, &request)?;
        cx.trail.signature_bytes(signature.len());
        let valid = private.verify(algorithm.scheme(), input, signature);
        Ok(Outcome::read(under(&key, &version, valid)))
    }

    pub fn asymmetric_encrypt(
        &self,
        cx: &CallContext,
        (key_id, key_version_id): (&str, &str),
        algorithm: &str,
        plaintext: &[u8],
    ) -> KmsResult<Outcome<UnderKey<Vec<u8>>>> {
        let algorithm = parse_required(algorithm, EncryptionAlgorithm::parse)?;
        if plaintext.is_empty() {
            return Err(KmsError::missing("Plaintext"));
        }
        let (key, kind, version) = self.asymmetric_version(cx, key_id, key_version_id, KeyUsage::EncryptDecrypt)?;
        if !kind.encrypts_with(algorithm.scheme()) {
            return Err(key.refuse_use(KmsError::invalid_because(
                "Algorithm",
                &format!("{} keys cannot use it.", key.meta.spec),
            )));
        }
        let limit = kind.max_plaintext(algorithm.scheme());
        if plaintext.len() > limit {
            return Err(KmsError::invalid_because("Plaintext", &format!("It can be at most {limit} bytes here.")));
        }
        cx.trail.plaintext_bytes(plaintext.len());
        let private = version.private_key(kind)?;
        let ciphertext = private.encrypt(algorithm.scheme(), plaintext).map_err(|_| KmsError::internal())?;
        cx.trail.ciphertext_bytes(ciphertext.len());
        Ok(Outcome::read(under(&key, &version, ciphertext)))
    }

    /// A ciphertext that does not decrypt is InvalidParameter naming `CiphertextBlob`.
    pub fn asymmetric_decrypt(
        &self,
        cx: &CallContext,
        (key_id, key_version_id): (&str, &str),
        algorithm: &str,
        ciphertext: &[u8],
    ) -> KmsResult<Outcome<UnderKey<Zeroizing<Vec<u8>>>>> {
        let algorithm = parse_required(algorithm, EncryptionAlgorithm::parse)?;
        if ciphertext.is_empty() {
            return Err(KmsError::missing("CiphertextBlob"));
        }
        let (key, kind, version) = self.asymmetric_version(cx, key_id, key_version_id, KeyUsage::EncryptDecrypt)?;
        if !kind.encrypts_with(algorithm.scheme()) {
            return Err(key.refuse_use(KmsError::invalid_because(
                "Algorithm",
                &format!("{} keys cannot use it.", key.meta.spec),
            )));
        }
        cx.trail.ciphertext_bytes(ciphertext.len());
        let private = version.private_key(kind)?;
        let plaintext =
            private.decrypt(algorithm.scheme(), ciphertext).map_err(|_| KmsError::invalid("CiphertextBlob"))?;
        cx.trail.plaintext_bytes(plaintext.len());
        Ok(Outcome::read(under(&key, &version, plaintext)))
    }

    /// The public key as PEM SubjectPublicKeyInfo.
    pub fn get_public_key(
        &self,
        cx: &CallContext,
        key_id: &str,
        key_version_id: &str,
    ) -> KmsResult<Outcome<UnderKey<PublicKey>>> {
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        key.allow(KeyOp::Cryptographic)?;
        let SpecKind::Asymmetric(kind) = key.meta.spec.kind() else {
            return Err(key.refuse_use(ErrorCode::RejectedUnsupportedOperation));
        };
        let version = pick_version(cx, &key, key_version_id)?;
        let pem = version.private_key(kind)?.public_key_pem();
        let public_key = PublicKey { pem, spec: key.meta.spec, usage: key.meta.usage };
        Ok(Outcome::read(under(&key, &version, public_key)))
    }

    /// ECDH between the key (a KEY_AGREEMENT key) and a peer's public key (DER SubjectPublicKeyInfo).
    pub fn derive_shared_secret(
        &self,
        cx: &CallContext,
        key_id: &str,
        algorithm: &str,
        peer_public_key: &[u8],
    ) -> KmsResult<Outcome<UnderKey<Zeroizing<Vec<u8>>>>> {
        match algorithm {
            "" => return Err(KmsError::missing("KeyAgreementAlgorithm")),
            "ECDH" => {}
            _ => return Err(KmsError::invalid_because("KeyAgreementAlgorithm", "Use ECDH.")),
        }
        if peer_public_key.is_empty() {
            return Err(KmsError::missing("PublicKey"));
        }
        let (key, kind, version) = self.asymmetric_version(cx, key_id, "", KeyUsage::KeyAgreement)?;
        let secret = version.private_key(kind)?.derive_shared_secret(peer_public_key).map_err(|_| {
            KmsError::invalid_because(
                "PublicKey",
                &format!("Send a DER public key on the curve of {} keys.", key.meta.spec),
            )
        })?;
        cx.trail.plaintext_bytes(secret.len());
        Ok(Outcome::read(under(&key, &version, secret)))
    }

    #[allow(clippy::type_complexity)]
    fn signing_setup<'a>(
        &self,
        cx: &CallContext,
        request: &SignRequest<'a>,
    ) -> KmsResult<(Arc<Key>, Arc<KeyVersion>, Arc<ParsedKey>, SigningAlgorithm, Signable<'a>)> {
        let algorithm = parse_required(request.algorithm, SigningAlgorithm::parse)?;
        let message_type = if request.message_type.is_empty() {
            MessageType::Digest
        } else {
            MessageType::parse(request.message_type)?
        };
        let input = match message_type {
            MessageType::Digest if request.digest.is_empty() => return Err(KmsError::missing("Digest")),
            MessageType::Digest => Signable::Digest(request.digest),
            MessageType::Raw if request.message.is_empty() => return Err(KmsError::missing("Message")),
            MessageType::Raw if request.message.len() > MAX_RAW_MESSAGE_BYTES => {
                return Err(KmsError::invalid_because("Message", "It can be at most 4096 bytes."));
            }
            MessageType::Raw => Signable::Message(request.message),
        };
        let (key, kind, version) =
            self.asymmetric_version(cx, request.key_id, request.key_version_id, KeyUsage::SignVerify)?;
        if !kind.signs_with(algorithm.scheme()) {
            return Err(key.refuse_use(KmsError::invalid_because(
                "Algorithm",
                &format!("{} keys cannot use it.", key.meta.spec),
            )));
        }
        match input {
            Signable::Digest(digest) => {
                let expected = algorithm.scheme().hash().output_len();
                if digest.len() != expected {
                    return Err(KmsError::invalid_because("Digest", &format!("{algorithm} needs {expected} bytes.")));
                }
                cx.trail.message_bytes(digest.len());
            }
            Signable::Message(message) => cx.trail.message_bytes(message.len()),
        }
        let private = version.private_key(kind)?;
        Ok((key, version, private, algorithm, input))
    }

    /// Resolves the key, applies the state table, then checks that it is an
    /// asymmetric key of `usage`, and picks the named version (else the primary).
    fn asymmetric_version(
        &self,
        cx: &CallContext,
        key_id: &str,
        key_version_id: &str,
        usage: KeyUsage,
    ) -> KmsResult<(Arc<Key>, AsymmetricKind, Arc<KeyVersion>)> {
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        key.allow(KeyOp::Cryptographic)?;
        let kind = match key.meta.spec.kind() {
            SpecKind::Asymmetric(kind) if key.meta.usage == usage => kind,
            _ => return Err(key.refuse_use(ErrorCode::RejectedUnsupportedOperation)),
        };
        let version = pick_version(cx, &key, key_version_id)?;
        Ok((key, kind, version))
    }
}

/// The named version of `key`, or its primary version when none is named.
pub(super) fn pick_version(cx: &CallContext, key: &Key, key_version_id: &str) -> KmsResult<Arc<KeyVersion>> {
    let version = if key_version_id.is_empty() {
        key.primary().ok_or(ErrorCode::PendingImport)?
    } else {
        let id = Uuid::parse_str(key_version_id).map_err(|_| KmsError::invalid("KeyVersionId"))?;
        key.version(id).ok_or(ErrorCode::KeyVersionNotFound)?
    };
    cx.trail.key_version(version.version_id);
    Ok(version.clone())
}

pub(super) fn parse_required<T>(text: &str, parse: fn(&str) -> KmsResult<T>) -> KmsResult<T> {
    if text.is_empty() { Err(KmsError::missing("Algorithm")) } else { parse(text) }
}

fn under<T>(key: &Key, version: &KeyVersion, value: T) -> UnderKey<T> {
    UnderKey { value, key_id: key.meta.key_id.clone(), key_version_id: version.version_id }
}
