//! The self-describing ciphertext blob that Encrypt returns and Decrypt takes.
//!
//! ```text
//! [0]            format version (1)
//! [1]            key id length L
//! [2 .. 2+L]     key id (UTF-8)
//! [.. +16]       key version id (UUID bytes)
//! [.. +12]       nonce
//! [.. +8]        header tag: HMAC-SHA256(server secret, all bytes above), truncated
//! [..]           AEAD output (ciphertext and 16-byte tag)
//! ```
//!
//! The header names the key version, so Decrypt needs no key id and blobs made
//! under old versions keep decrypting after rotation. The header tag is keyed by
//! a secret of this server's store, so a blob from another kmsim server, or one
//! whose header was altered, is refused before any key is looked up; the AEAD
//! then binds the header and the encryption context (in a canonical, order-free
//! form) as associated data. A blob made outside kmsim with known material
//! carries an all-zero header tag and is authenticated by the AEAD alone.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::symmetric::{AeadFailure, Cipher, NONCE_LEN, TAG_LEN};
use super::{constant_time_eq, random_array};

const FORMAT_VERSION: u8 = 1;
const HEADER_TAG_LEN: usize = 8;

/// The blob cannot be used: malformed, altered, or from another server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidBlob;

impl From<AeadFailure> for InvalidBlob {
    fn from(_: AeadFailure) -> Self {
        InvalidBlob
    }
}

/// Seals and parses blobs under one server's header secret.
pub struct BlobCodec {
    header_secret: Zeroizing<[u8; 32]>,
}

/// A blob whose header was verified; its body is opened with the key version it names.
#[derive(Debug)]
pub struct ParsedBlob<'a> {
    pub key_id: &'a str,
    pub key_version_id: Uuid,
    nonce: [u8; NONCE_LEN],
    header: &'a [u8],
    sealed: &'a [u8],
}

impl BlobCodec {
    pub fn new(header_secret: [u8; 32]) -> Self {
        BlobCodec { header_secret: Zeroizing::new(header_secret) }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        &self,
        key_id: &str,
        key_version_id: Uuid,
        cipher: Cipher,
        material: &[u8],
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, InvalidBlob> {
        let id_len = u8::try_from(key_id.len()).map_err(|_| InvalidBlob)?;
        let nonce: [u8; NONCE_LEN] = random_array();
        let mut blob =
            Vec::with_capacity(2 + key_id.len() + 16 + NONCE_LEN + HEADER_TAG_LEN + plaintext.len() + TAG_LEN);
        blob.push(FORMAT_VERSION);
        blob.push(id_len);
        blob.extend_from_slice(key_id.as_bytes());
        blob.extend_from_slice(key_version_id.as_bytes());
        blob.extend_from_slice(&nonce);
        let tag = self.header_tag(&blob);
        blob.extend_from_slice(&tag);
        let aad = associated_data(&blob, context);
        let sealed = cipher.seal(material, &nonce, plaintext, &aad)?;
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    /// Checks the layout and the header tag; does not touch any key.
    pub fn parse<'a>(&self, blob: &'a [u8]) -> Result<ParsedBlob<'a>, InvalidBlob> {
        let (&version, rest) = blob.split_first().ok_or(InvalidBlob)?;
        if version != FORMAT_VERSION {
            return Err(InvalidBlob);
        }
        let (&id_len, rest) = rest.split_first().ok_or(InvalidBlob)?;
        let (key_id, rest) = split(rest, usize::from(id_len))?;
        let (version_id, rest) = split(rest, 16)?;
        let (nonce, rest) = split(rest, NONCE_LEN)?;
        let (tag, sealed) = split(rest, HEADER_TAG_LEN)?;
        if sealed.len() < TAG_LEN {
            return Err(InvalidBlob);
        }
        let header_len = blob.len() - sealed.len();
        let signed_len = header_len - HEADER_TAG_LEN;
        // An all-zero tag marks a blob made outside kmsim, by someone holding the
        // material (a seeded or imported key): nobody outside knows the store's
        // secret. Such a header is still bound by the AEAD, so altering it fails there.
        let made_outside = tag == [0u8; HEADER_TAG_LEN];
        if !made_outside && !constant_time_eq(&self.header_tag(&blob[..signed_len]), tag) {
            return Err(InvalidBlob);
        }
        Ok(ParsedBlob {
            key_id: std::str::from_utf8(key_id).map_err(|_| InvalidBlob)?,
            key_version_id: Uuid::from_slice(version_id).map_err(|_| InvalidBlob)?,
            nonce: nonce.try_into().map_err(|_| InvalidBlob)?,
            header: &blob[..header_len],
            sealed,
        })
    }

    fn header_tag(&self, signed: &[u8]) -> [u8; HEADER_TAG_LEN] {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.header_secret[..]).expect("HMAC takes any key length");
        mac.update(signed);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; HEADER_TAG_LEN];
        tag.copy_from_slice(&full[..HEADER_TAG_LEN]);
        tag
    }
}

/// The key version and nonce a blob's header names, read from its layout
/// alone (nothing verified): for front ends whose wire carries them beside
/// the ciphertext (the KMS instance API's `Iv` and `KeyVersionId`).
pub fn header_fields(blob: &[u8]) -> Option<(Uuid, [u8; NONCE_LEN])> {
    let (&version, rest) = blob.split_first()?;
    let (&id_len, rest) = rest.split_first().filter(|_| version == FORMAT_VERSION)?;
    let (_, rest) = split(rest, usize::from(id_len)).ok()?;
    let (version_id, rest) = split(rest, 16).ok()?;
    let (nonce, _) = split(rest, NONCE_LEN).ok()?;
    Some((Uuid::from_slice(version_id).ok()?, nonce.try_into().ok()?))
}

impl ParsedBlob<'_> {
    /// Size of the plaintext inside, known without opening it.
    pub fn plaintext_len(&self) -> usize {
        self.sealed.len() - TAG_LEN
    }

    pub fn open(
        &self,
        cipher: Cipher,
        material: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<Vec<u8>>, InvalidBlob> {
        let aad = associated_data(self.header, context);
        Ok(cipher.open(material, &self.nonce, self.sealed, &aad)?)
    }
}

/// The header followed by the context in canonical form: entries sorted by
/// key, each part length-prefixed so no two contexts encode alike.
fn associated_data(header: &[u8], context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(&(context.len() as u32).to_be_bytes());
    for (key, value) in context {
        for part in [key, value] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
    }
    aad
}

fn split(bytes: &[u8], at: usize) -> Result<(&[u8], &[u8]), InvalidBlob> {
    if bytes.len() < at { Err(InvalidBlob) } else { Ok(bytes.split_at(at)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn round_trip_names_key_and_version() {
        let codec = BlobCodec::new([9; 32]);
        let version = Uuid::new_v4();
        let material = [3u8; 32];
        let ctx = context(&[("a", "1"), ("b", "2")]);
        let blob = codec.seal("key-1", version, Cipher::Aes256, &material, b"hello", &ctx).unwrap();
        let parsed = codec.parse(&blob).unwrap();
        assert_eq!((parsed.key_id, parsed.key_version_id, parsed.plaintext_len()), ("key-1", version, 5));
        assert_eq!(&parsed.open(Cipher::Aes256, &material, &ctx).unwrap()[..], b"hello");
        assert!(parsed.open(Cipher::Aes256, &material, &context(&[("a", "1")])).is_err());
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_refused() {
        let codec = BlobCodec::new([9; 32]);
        let material = [3u8; 16];
        let ctx = BTreeMap::new();
        let blob = codec.seal("k", Uuid::new_v4(), Cipher::Sm4, &material, b"xyz", &ctx).unwrap();
        for i in 0..blob.len() {
            for bit in 0..8 {
                let mut bad = blob.clone();
                bad[i] ^= 1 << bit;
                let opened = codec.parse(&bad).and_then(|p| p.open(Cipher::Sm4, &material, &ctx));
                assert!(opened.is_err(), "flip of bit {bit} in byte {i} went unnoticed");
            }
        }
        for len in 0..blob.len() {
            let opened = codec.parse(&blob[..len]).and_then(|p| p.open(Cipher::Sm4, &material, &ctx));
            assert!(opened.is_err(), "truncation to {len} bytes went unnoticed");
        }
    }

    #[test]
    fn a_blob_from_another_server_is_refused_at_the_header() {
        let blob = BlobCodec::new([1; 32])
            .seal("k", Uuid::new_v4(), Cipher::Aes128, &[0; 16], b"x", &BTreeMap::new())
            .unwrap();
        assert_eq!(BlobCodec::new([2; 32]).parse(&blob).unwrap_err(), InvalidBlob);
    }

    /// What someone holding the material does outside kmsim: the header with an
    /// all-zero tag, sealed with the AEAD over that header and the context.
    #[test]
    fn a_blob_made_outside_with_a_zero_tag_opens_and_stays_bound_by_the_aead() {
        let (material, version, nonce) = ([5u8; 32], Uuid::new_v4(), [7u8; NONCE_LEN]);
        let ctx = context(&[("app", "billing")]);
        let mut header = vec![FORMAT_VERSION, 3];
        header.extend_from_slice(b"k-1");
        header.extend_from_slice(version.as_bytes());
        header.extend_from_slice(&nonce);
        header.extend_from_slice(&[0; HEADER_TAG_LEN]);
        let sealed =
            Cipher::Aes256.seal(&material, &nonce, b"made elsewhere", &associated_data(&header, &ctx)).unwrap();
        let blob = [header, sealed].concat();

        let codec = BlobCodec::new([9; 32]);
        let parsed = codec.parse(&blob).unwrap();
        assert_eq!((parsed.key_id, parsed.key_version_id), ("k-1", version));
        assert_eq!(&parsed.open(Cipher::Aes256, &material, &ctx).unwrap()[..], b"made elsewhere");
        assert!(parsed.open(Cipher::Aes256, &material, &BTreeMap::new()).is_err(), "the context still binds");

        // Zeroing the tag of a blob kmsim made does not get past the AEAD.
        let mut made_here = codec.seal("k-1", version, Cipher::Aes256, &material, b"x", &ctx).unwrap();
        let tag_at = 2 + 3 + 16 + NONCE_LEN;
        made_here[tag_at..tag_at + HEADER_TAG_LEN].fill(0);
        assert!(codec.parse(&made_here).unwrap().open(Cipher::Aes256, &material, &ctx).is_err());
    }

    #[test]
    fn context_encoding_is_unambiguous() {
        let a = associated_data(b"", &context(&[("ab", "c")]));
        let b = associated_data(b"", &context(&[("a", "bc")]));
        assert_ne!(a, b);
    }
}
