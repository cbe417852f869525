//! Wrapping key material and data keys under a public key: a caller's, for
//! export; kmsim's own, for import, which unwraps with the private half.
//!
//! `RSA_AES_KEY_WRAP_SHA_256` (as PKCS#11's CKM_RSA_AES_KEY_WRAP) carries
//! material too large for OAEP alone, such as a PKCS#8 private key: a fresh
//! AES-256 key wrapped with RSAES-OAEP-SHA-256, followed by the material
//! wrapped under that key with AES key wrap with padding (RFC 5649).

use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPublicKey};
use zeroize::Zeroizing;

use super::asymmetric::{AsymmetricKind, EncryptScheme};
use super::{CryptoFailure, HashAlg, ParsedKey, random_secret};

/// How material is wrapped under the caller's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapAlgorithm {
    RsaOaepSha256,
    RsaOaepSha1,
    Sm2Pke,
    RsaAesKeyWrapSha256,
    RsaAesKeyWrapSha1,
}

impl WrapAlgorithm {
    pub fn parse(text: &str) -> Option<WrapAlgorithm> {
        match text {
            "RSAES_OAEP_SHA_256" => Some(WrapAlgorithm::RsaOaepSha256),
            "RSAES_OAEP_SHA_1" => Some(WrapAlgorithm::RsaOaepSha1),
            "SM2PKE" => Some(WrapAlgorithm::Sm2Pke),
            "RSA_AES_KEY_WRAP_SHA_256" => Some(WrapAlgorithm::RsaAesKeyWrapSha256),
            "RSA_AES_KEY_WRAP_SHA_1" => Some(WrapAlgorithm::RsaAesKeyWrapSha1),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WrapAlgorithm::RsaOaepSha256 => "RSAES_OAEP_SHA_256",
            WrapAlgorithm::RsaOaepSha1 => "RSAES_OAEP_SHA_1",
            WrapAlgorithm::Sm2Pke => "SM2PKE",
            WrapAlgorithm::RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
            WrapAlgorithm::RsaAesKeyWrapSha1 => "RSA_AES_KEY_WRAP_SHA_1",
        }
    }

    /// Whether a wrapping key of `kind` can carry material this way.
    pub fn wraps_with(self, kind: AsymmetricKind) -> bool {
        match self {
            WrapAlgorithm::Sm2Pke => kind == AsymmetricKind::Sm2,
            _ => matches!(kind, AsymmetricKind::Rsa { .. }),
        }
    }

    /// The OAEP hash that wraps the material, or the ephemeral AES key for the key-wrap algorithms.
    fn oaep_hash(self) -> Option<HashAlg> {
        match self {
            WrapAlgorithm::RsaOaepSha256 | WrapAlgorithm::RsaAesKeyWrapSha256 => Some(HashAlg::Sha256),
            WrapAlgorithm::RsaOaepSha1 | WrapAlgorithm::RsaAesKeyWrapSha1 => Some(HashAlg::Sha1),
            WrapAlgorithm::Sm2Pke => None,
        }
    }
}

/// The kind of key a WrappingKeySpec names, for the specs kmsim wraps under.
pub fn wrapping_kind(spec: &str) -> Option<AsymmetricKind> {
    match spec {
        "RSA_2048" => Some(AsymmetricKind::Rsa { bits: 2048 }),
        "RSA_3072" => Some(AsymmetricKind::Rsa { bits: 3072 }),
        "RSA_4096" => Some(AsymmetricKind::Rsa { bits: 4096 }),
        "EC_SM2" => Some(AsymmetricKind::Sm2),
        _ => None,
    }
}

/// Unwraps what was wrapped under the public half of `private_key` (a wrapping
/// key of `kind` that kmsim made for an import), with `algorithm`.
pub fn unwrap(
    kind: AsymmetricKind,
    private_key: &[u8],
    algorithm: WrapAlgorithm,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoFailure> {
    let key = ParsedKey::from_pkcs8(kind, private_key)?;
    let scheme = match algorithm.oaep_hash() {
        Some(hash) => EncryptScheme::RsaOaep(hash),
        None => EncryptScheme::Sm2Pke,
    };
    match algorithm {
        WrapAlgorithm::RsaAesKeyWrapSha256 | WrapAlgorithm::RsaAesKeyWrapSha1 => {
            let ParsedKey::Rsa(rsa) = &key else { return Err(CryptoFailure) };
            let split = rsa.size();
            if wrapped.len() <= split {
                return Err(CryptoFailure);
            }
            let ephemeral = key.decrypt(scheme, &wrapped[..split])?;
            let kwp = <aes_kw::KwpAes256 as aes_kw::cipher::KeyInit>::new_from_slice(&ephemeral)
                .map_err(|_| CryptoFailure)?;
            let mut material = Zeroizing::new(vec![0u8; wrapped.len() - split]);
            let len = kwp.unwrap_key(&wrapped[split..], &mut material).map_err(|_| CryptoFailure)?.len();
            material.truncate(len);
            Ok(material)
        }
        _ => key.decrypt(scheme, wrapped),
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
            (WrappingKey::Rsa(key), WrapAlgorithm::RsaAesKeyWrapSha256 | WrapAlgorithm::RsaAesKeyWrapSha1) => {
                let ephemeral: Zeroizing<Vec<u8>> = random_secret(32);
                let mut wrapped = match algorithm {
                    WrapAlgorithm::RsaAesKeyWrapSha1 => key.encrypt(&mut rng, Oaep::<sha1::Sha1>::new(), &ephemeral),
                    _ => key.encrypt(&mut rng, Oaep::<sha2::Sha256>::new(), &ephemeral),
                }
                .map_err(|_| CryptoFailure)?;
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

#[cfg(test)]
mod unwrap_tests {
    use super::*;

    #[test]
    fn what_a_wrapping_key_wraps_its_private_half_unwraps_with_every_algorithm() {
        let material = [7u8; 48];
        for (spec, algorithms) in [
            (
                "RSA_2048",
                &[
                    WrapAlgorithm::RsaOaepSha256,
                    WrapAlgorithm::RsaOaepSha1,
                    WrapAlgorithm::RsaAesKeyWrapSha256,
                    WrapAlgorithm::RsaAesKeyWrapSha1,
                ][..],
            ),
            ("EC_SM2", &[WrapAlgorithm::Sm2Pke][..]),
        ] {
            let kind = wrapping_kind(spec).unwrap();
            let private = kind.generate();
            let public = ParsedKey::from_pkcs8(kind, &private).unwrap().public_key_pem();
            let wrapping = WrappingKey::parse(public.as_bytes()).unwrap();
            for algorithm in algorithms {
                assert!(algorithm.wraps_with(kind));
                let wrapped = wrapping.wrap(*algorithm, &material).unwrap();
                let unwrapped = unwrap(kind, &private, *algorithm, &wrapped).unwrap();
                assert_eq!(&unwrapped[..], &material[..], "{spec} {}", algorithm.as_str());
                assert!(unwrap(kind, &private, *algorithm, &wrapped[..wrapped.len() - 1]).is_err());
            }
        }
        assert!(!WrapAlgorithm::Sm2Pke.wraps_with(AsymmetricKind::Rsa { bits: 2048 }));
        assert_eq!(
            WrapAlgorithm::parse("RSA_AES_KEY_WRAP_SHA_1").map(WrapAlgorithm::as_str),
            Some("RSA_AES_KEY_WRAP_SHA_1")
        );
    }
}
