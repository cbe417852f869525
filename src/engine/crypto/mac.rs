//! HMAC-SHA-256/384/512 under a key version's raw material.

use hmac::{Hmac, KeyInit, Mac};

use super::HashAlg;

pub fn hmac(hash: HashAlg, key: &[u8], message: &[u8]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
    match hash {
        HashAlg::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
        HashAlg::Sha224 => run::<Hmac<sha2::Sha224>>(key, message),
        HashAlg::Sha384 => run::<Hmac<sha2::Sha384>>(key, message),
        HashAlg::Sha512 => run::<Hmac<sha2::Sha512>>(key, message),
        HashAlg::Sha1 => run::<Hmac<sha1::Sha1>>(key, message),
        HashAlg::Sm3 => run::<Hmac<sm3::Sm3>>(key, message),
    }
}

/// Compares in time independent of where the inputs differ.
pub fn verify(hash: HashAlg, key: &[u8], message: &[u8], mac: &[u8]) -> bool {
    let expected = hmac(hash, key, message);
    expected.len() == mac.len() && expected.iter().zip(mac).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_test_case_2() {
        let mac = hmac(HashAlg::Sha256, b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(verify(HashAlg::Sha256, b"Jefe", b"what do ya want for nothing?", &mac));
        assert!(!verify(HashAlg::Sha256, b"Jefe", b"what do ya want for nothing!", &mac));
        assert!(!verify(HashAlg::Sha256, b"Jefe", b"what do ya want for nothing?", &mac[..31]));
    }
}
