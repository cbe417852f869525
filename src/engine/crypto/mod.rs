//! Cryptographic building blocks of the engine: symmetric AEAD sealing under a
//! key version, and the self-describing ciphertext blob.

pub mod ciphertext;
pub mod symmetric;

use rand::Rng;
use zeroize::Zeroizing;

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
