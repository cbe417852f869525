//! Cryptographic building blocks of the engine: symmetric AEAD sealing under a
//! key version, the self-describing ciphertext blob, asymmetric keys
//! (RSA, ECDSA, SM2) and HMAC.

pub mod asymmetric;
pub mod ciphertext;
pub mod mac;
pub mod symmetric;
pub mod wrap;

use rand::Rng;
use sha2::Digest;
use zeroize::Zeroizing;

pub use self::asymmetric::ParsedKey;

/// The hash functions the algorithms are built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Sm3,
}

impl HashAlg {
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 | HashAlg::Sm3 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
            HashAlg::Sm3 => sm3::Sm3::digest(data).to_vec(),
        }
    }
}

/// A cryptographic operation failed on its input (bad signature encoding,
/// undecryptable ciphertext). Carries nothing, so no secret can leak through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoFailure;

/// `len` bytes from the operating system's CSPRNG, wiped from memory when dropped.
pub fn random_secret(len: usize) -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// `N` random bytes for values that are not secret (nonces, ids).
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}
