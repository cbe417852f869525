//! Cryptographic building blocks of the engine: symmetric AEAD sealing under a
//! key version, the self-describing ciphertext blob, asymmetric keys
//! (RSA, ECDSA, SM2) and HMAC.

pub mod asymmetric;
pub mod ciphertext;
pub mod mac;
pub mod pkcs12;
pub mod symmetric;
pub mod wrap;

use std::convert::Infallible;
use std::sync::{Mutex, OnceLock};

use rand::{Rng, SeedableRng};
use sha2::Digest;
use zeroize::Zeroizing;

pub use self::asymmetric::ParsedKey;

/// The hash functions the algorithms are built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha1,
    Sha224,
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
            HashAlg::Sha224 => 28,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlg::Sha224 => sha2::Sha224::digest(data).to_vec(),
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

/// Where every random byte kmsim uses comes from: the thread's CSPRNG
/// (seeded from the operating system), unless [`seed_randomness`] replaced it
/// for the whole process with one generator seeded from a number, which the
/// audit-data generator does so that the same seed gives the same keys,
/// ciphertexts and ids. A zero-sized handle, usable wherever the RustCrypto
/// crates take a `CryptoRng`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Randomness;

/// The process-wide seeded generator, when there is one. A mutex, not a
/// thread-local, because key generation runs on the blocking pool; a seeded
/// run draws from one thread at a time, so the order of draws is the order of
/// the work.
static SEEDED: OnceLock<Mutex<rand::rngs::StdRng>> = OnceLock::new();

/// Makes every later draw, on any thread, come from one generator seeded with
/// `seed`. Once per process; false if randomness was already seeded.
pub fn seed_randomness(seed: u64) -> bool {
    SEEDED.set(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed))).is_ok()
}

/// The source of randomness; see [`Randomness`].
pub fn rng() -> Randomness {
    Randomness
}

impl rand::TryRng for Randomness {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        match SEEDED.get() {
            // A poisoned lock only means a panic elsewhere mid-draw; the generator is still a generator.
            Some(seeded) => seeded.lock().unwrap_or_else(|p| p.into_inner()).fill_bytes(dst),
            None => rand::rng().fill_bytes(dst),
        }
        Ok(())
    }
}

impl rand::TryCryptoRng for Randomness {}

/// `len` random bytes, wiped from memory when dropped.
pub fn random_secret(len: usize) -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    rng().fill_bytes(&mut bytes);
    bytes
}

/// `N` random bytes for values that are not secret (nonces, ids).
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rng().fill_bytes(&mut bytes);
    bytes
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random (version 4) UUID for a new resource.
pub fn new_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(random_array()).into_uuid()
}

/// Whether two byte strings are equal, in time that depends on their length only: for comparing a
/// secret-derived value (a MAC, a signature) with one a client sent.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
