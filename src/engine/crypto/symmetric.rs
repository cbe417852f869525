//! AEAD sealing with a symmetric key version: AES-GCM (128, 192, 256) and
//! SM4-GCM, all with 96-bit nonces and 128-bit tags.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::{Aes128, Aes192, Aes256};
use aes_gcm::{AesGcm, Nonce};
use zeroize::Zeroizing;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// The block cipher under GCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    Aes128,
    Aes192,
    Aes256,
    Sm4,
}

/// Sealing or opening failed: wrong key, tampered data or associated data.
/// Deliberately carries nothing, so no detail of the secret can leak through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadFailure;

impl Cipher {
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128 | Cipher::Sm4 => 16,
            Cipher::Aes192 => 24,
            Cipher::Aes256 => 32,
        }
    }

    pub fn seal(
        self,
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, AeadFailure> {
        let payload = Payload { msg: plaintext, aad };
        let nonce = Nonce::<U12>::from(*nonce);
        match self {
            Cipher::Aes128 => gcm::<Aes128>(key)?.encrypt(&nonce, payload),
            Cipher::Aes192 => gcm::<Aes192>(key)?.encrypt(&nonce, payload),
            Cipher::Aes256 => gcm::<Aes256>(key)?.encrypt(&nonce, payload),
            Cipher::Sm4 => gcm::<sm4::Sm4>(key)?.encrypt(&nonce, payload),
        }
        .map_err(|_| AeadFailure)
    }

    pub fn open(
        self,
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AeadFailure> {
        let payload = Payload { msg: sealed, aad };
        let nonce = Nonce::<U12>::from(*nonce);
        match self {
            Cipher::Aes128 => gcm::<Aes128>(key)?.decrypt(&nonce, payload),
            Cipher::Aes192 => gcm::<Aes192>(key)?.decrypt(&nonce, payload),
            Cipher::Aes256 => gcm::<Aes256>(key)?.decrypt(&nonce, payload),
            Cipher::Sm4 => gcm::<sm4::Sm4>(key)?.decrypt(&nonce, payload),
        }
        .map(Zeroizing::new)
        .map_err(|_| AeadFailure)
    }
}

fn gcm<C>(key: &[u8]) -> Result<AesGcm<C, U12>, AeadFailure>
where
    AesGcm<C, U12>: KeyInit,
{
    AesGcm::<C, U12>::new_from_slice(key).map_err(|_| AeadFailure)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Cipher; 4] = [Cipher::Aes128, Cipher::Aes192, Cipher::Aes256, Cipher::Sm4];

    #[test]
    fn seals_and_opens_with_every_cipher() {
        for cipher in ALL {
            let key = vec![7u8; cipher.key_len()];
            let nonce = [1u8; NONCE_LEN];
            let sealed = cipher.seal(&key, &nonce, b"attack at dawn", b"ctx").unwrap();
            assert_eq!(sealed.len(), 14 + TAG_LEN);
            assert_eq!(&cipher.open(&key, &nonce, &sealed, b"ctx").unwrap()[..], b"attack at dawn");
            assert_eq!(cipher.open(&key, &nonce, &sealed, b"other"), Err(AeadFailure));
        }
    }

    #[test]
    fn sm4_gcm_matches_the_rfc_8998_vector() {
        // SM4-GCM test vector from RFC 8998, appendix A.1.
        let key = hex("0123456789ABCDEFFEDCBA9876543210");
        let nonce: [u8; 12] = hex("00001234567800000000ABCD").try_into().unwrap();
        let aad = hex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
        let pt = hex(
            "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
        );
        let sealed = Cipher::Sm4.seal(&key, &nonce, &pt, &aad).unwrap();
        let expected_ct = hex(
            "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D",
        );
        let expected_tag = hex("83DE3541E4C2B58177E065A9BF7B62EC");
        assert_eq!(&sealed[..pt.len()], &expected_ct[..]);
        assert_eq!(&sealed[pt.len()..], &expected_tag[..]);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
}
