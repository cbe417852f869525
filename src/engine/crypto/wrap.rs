//! Wrapping key material and data keys under a caller's public key, for export.
//!
//! `RSA_AES_KEY_WRAP_SHA_256` (as PKCS#11's CKM_RSA_AES_KEY_WRAP) carries
//! material too large for OAEP alone, such as a PKCS#8 private key: a fresh
//! AES-256 key wrapped with RSAES-OAEP-SHA-256, followed by the material
//! wrapped under that key with AES key wrap with padding (RFC 5649).

use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPublicKey};
use zeroize::Zeroizing;

use super::{CryptoFailure, random_secret};

/// How material is wrapped under the caller's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapAlgorithm {
    RsaOaepSha256,
    RsaOaepSha1,
    Sm2Pke,
    RsaAesKeyWrapSha256,
}

impl WrapAlgorithm {
    pub fn parse(text: &str) -> Option<WrapAlgorithm> {
        match text {
            "RSAES_OAEP_SHA_256" => Some(WrapAlgorithm::RsaOaepSha256),
            "RSAES_OAEP_SHA_1" => Some(WrapAlgorithm::RsaOaepSha1),
            "SM2PKE" => Some(WrapAlgorithm::Sm2Pke),
            "RSA_AES_KEY_WRAP_SHA_256" => Some(WrapAlgorithm::RsaAesKeyWrapSha256),
            _ => None,
        }
    }
}

/// A caller's public key, from PEM or DER SubjectPublicKeyInfo.
pub enum WrappingKey {
    Rsa(RsaPublicKey),
    Sm2(sm2::PublicKey),
}

impl WrappingKey {
    pub fn parse(blob: &[u8]) -> Result<WrappingKey, CryptoFailure> {
        if let Ok(pem) = std::str::from_utf8(blob).map(str::trim)
            && pem.starts_with("-----BEGIN")
        {
            return RsaPublicKey::from_public_key_pem(pem)
                .map(WrappingKey::Rsa)
                .or_else(|_| sm2::PublicKey::from_public_key_pem(pem).map(WrappingKey::Sm2))
                .map_err(|_| CryptoFailure);
        }
        RsaPublicKey::from_public_key_der(blob)
            .map(WrappingKey::Rsa)
            .or_else(|_| sm2::PublicKey::from_public_key_der(blob).map(WrappingKey::Sm2))
            .map_err(|_| CryptoFailure)
    }

    /// The key spec the key is, as WrappingKeySpec names it.
    pub fn spec(&self) -> String {
        match self {
            WrappingKey::Rsa(key) => format!("RSA_{}", key.n().bits()),
            WrappingKey::Sm2(_) => "EC_SM2".to_owned(),
        }
    }

    pub fn wrap(&self, algorithm: WrapAlgorithm, material: &[u8]) -> Result<Vec<u8>, CryptoFailure> {
        let mut rng = crate::engine::crypto::rng();
        match (self, algorithm) {
            (WrappingKey::Rsa(key), WrapAlgorithm::RsaOaepSha256) => {
                key.encrypt(&mut rng, Oaep::<sha2::Sha256>::new(), material).map_err(|_| CryptoFailure)
            }
            (WrappingKey::Rsa(key), WrapAlgorithm::RsaOaepSha1) => {
                key.encrypt(&mut rng, Oaep::<sha1::Sha1>::new(), material).map_err(|_| CryptoFailure)
            }
            (WrappingKey::Rsa(key), WrapAlgorithm::RsaAesKeyWrapSha256) => {
                let ephemeral: Zeroizing<Vec<u8>> = random_secret(32);
                let mut wrapped =
                    key.encrypt(&mut rng, Oaep::<sha2::Sha256>::new(), &ephemeral).map_err(|_| CryptoFailure)?;
                let kwp = <aes_kw::KwpAes256 as aes_kw::cipher::KeyInit>::new_from_slice(&ephemeral)
                    .map_err(|_| CryptoFailure)?;
                let mut buf = vec![0u8; material.len().div_ceil(8) * 8 + 8];
                wrapped.extend_from_slice(kwp.wrap_key(material, &mut buf).map_err(|_| CryptoFailure)?);
                Ok(wrapped)
            }
            (WrappingKey::Sm2(key), WrapAlgorithm::Sm2Pke) => {
                sm2::pke::EncryptingKey::new(*key).encrypt_der(&mut rng, material).map_err(|_| CryptoFailure)
            }
            _ => Err(CryptoFailure),
        }
    }
}
