//! The password-protected PKCS#12 file a ClientKey's private key is handed
//! out in, as Alibaba hands it out (`PrivateKeyData`): an RSA key in a
//! PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) shrouded key bag, its self-signed
//! certificate in a certificate bag, and a SHA-256 MAC keyed by the PKCS#12
//! KDF (RFC 7292). OpenSSL 3 opens it (`openssl pkcs12 -in f.p12 -nodes`),
//! and so does pyOpenSSL, with which Alibaba's instance SDK reads it.
//!
//! Built by hand on a small DER writer rather than with a PKCS#12 crate:
//! what it takes is a dozen structures, and every primitive under them
//! (SHA-256, HMAC, AES, RSA) is already in the tree.

use aes::Aes256;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use hmac::{Hmac, Mac};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::random_array;

/// Iterations of PBKDF2 and of the MAC's KDF: OpenSSL's default.
const ITERATIONS: u32 = 2048;
/// Alibaba's ClientKeys are RSA-2048.
pub const CLIENT_KEY_BITS: usize = 2048;

/// A new ClientKey pair: the PKCS#12 file (DER) that holds its private key
/// under `password`, and the public key (SubjectPublicKeyInfo DER), which is
/// all the server keeps. `subject` names the certificate (the ClientKey id);
/// the certificate is valid from `not_before` to `not_after` (RFC 3339).
pub fn new_client_key(
    subject: &str,
    password: &str,
    not_before: &str,
    not_after: &str,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), Pkcs12Error> {
    let private = RsaPrivateKey::new(&mut super::rng(), CLIENT_KEY_BITS).map_err(|_| Pkcs12Error)?;
    let public = RsaPublicKey::from(&private);
    let spki = public.to_public_key_der().map_err(|_| Pkcs12Error)?.as_bytes().to_vec();
    let certificate = self_signed_certificate(&private, &spki, subject, not_before, not_after)?;
    let pkcs8 = private.to_pkcs8_der().map_err(|_| Pkcs12Error)?;
    let pfx = pfx(pkcs8.as_bytes(), &certificate, password)?;
    Ok((pfx, spki))
}

/// The RSA private key in a PKCS#12 file kmsim made (the structure [`new_client_key`] writes), after checking
/// its MAC under `password`: for kmsim's own clients of the instance API (`kmsim bench`, the tests), which
/// sign as an application holding the downloaded file would.
pub fn open_client_key(pfx: &[u8], password: &str) -> Result<RsaPrivateKey, Pkcs12Error> {
    let [version, auth_safe, mac_data] = der::items(der::single(pfx, 0x30)?)?;
    if der::single(version, 0x02)? != [3] {
        return Err(Pkcs12Error);
    }
    let auth_safe = data_content(auth_safe)?;
    let [mac, mac_salt, iterations] = der::items(der::single(mac_data, 0x30)?)?;
    let [_, digest] = der::items(der::single(mac, 0x30)?)?;
    let iterations = der::uint(der::single(iterations, 0x02)?)?;
    let mac_key = pkcs12_kdf(password, der::single(mac_salt, 0x04)?, 3, iterations, 32);
    let mut check = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&mac_key).map_err(|_| Pkcs12Error)?;
    check.update(auth_safe);
    check.verify_slice(der::single(digest, 0x04)?).map_err(|_| Pkcs12Error)?;
    let mut contents = der::single(auth_safe, 0x30)?;
    while !contents.is_empty() {
        let (content_info, rest) = der::next(contents)?;
        contents = rest;
        let safe_contents = data_content(content_info)?;
        let (bag, _) = der::next(der::single(safe_contents, 0x30)?)?;
        let (bag_id, rest) = der::next(der::single(bag, 0x30)?)?;
        if bag_id != oid(OID_SHROUDED_KEY_BAG).as_slice() {
            continue;
        }
        let (value, _) = der::next(rest)?;
        return unshroud(der::single(value, 0xa0)?, password);
    }
    Err(Pkcs12Error)
}

/// The octets inside a ContentInfo of type data.
fn data_content(content_info: &[u8]) -> Result<&[u8], Pkcs12Error> {
    let [kind, content] = der::items(der::single(content_info, 0x30)?)?;
    if kind != oid(OID_DATA).as_slice() {
        return Err(Pkcs12Error);
    }
    der::single(der::single(content, 0xa0)?, 0x04)
}

fn unshroud(encrypted_private_key_info: &[u8], password: &str) -> Result<RsaPrivateKey, Pkcs12Error> {
    use rsa::pkcs8::DecodePrivateKey;
    let [algorithm, data] = der::items(der::single(encrypted_private_key_info, 0x30)?)?;
    let [pbes2, parameters] = der::items(der::single(algorithm, 0x30)?)?;
    let [kdf, scheme] = der::items(der::single(parameters, 0x30)?)?;
    let [pbkdf2, kdf_parameters] = der::items(der::single(kdf, 0x30)?)?;
    let [salt, iterations, _prf] = der::items(der::single(kdf_parameters, 0x30)?)?;
    let [aes, iv] = der::items(der::single(scheme, 0x30)?)?;
    let expected = [(pbes2, OID_PBES2), (pbkdf2, OID_PBKDF2), (aes, OID_AES256_CBC)];
    if expected.iter().any(|(found, want)| *found != oid(want).as_slice()) {
        return Err(Pkcs12Error);
    }
    let key = pbkdf2_sha256(password.as_bytes(), der::single(salt, 0x04)?, der::uint(der::single(iterations, 0x02)?)?);
    let iv: [u8; 16] = der::single(iv, 0x04)?.try_into().map_err(|_| Pkcs12Error)?;
    let pkcs8 = aes256_cbc_decrypt(&key, &iv, der::single(data, 0x04)?)?;
    RsaPrivateKey::from_pkcs8_der(&pkcs8).map_err(|_| Pkcs12Error)
}

fn aes256_cbc_decrypt(key: &[u8; 32], iv: &[u8; 16], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
    use aes::cipher::BlockCipherDecrypt;
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return Err(Pkcs12Error);
    }
    let cipher = Aes256::new_from_slice(key).map_err(|_| Pkcs12Error)?;
    let mut previous = *iv;
    let mut out = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    for chunk in ciphertext.chunks(16) {
        let mut block = aes::Block::try_from(chunk).map_err(|_| Pkcs12Error)?;
        cipher.decrypt_block(&mut block);
        out.extend(block.iter().zip(previous).map(|(b, p)| b ^ p));
        previous.copy_from_slice(chunk);
    }
    let pad = usize::from(*out.last().ok_or(Pkcs12Error)?);
    if !(1..=16).contains(&pad) || out[out.len() - pad..].iter().any(|b| usize::from(*b) != pad) {
        return Err(Pkcs12Error);
    }
    let len = out.len() - pad;
    out.truncate(len);
    Ok(out)
}

/// A DER reader: just what [`open_client_key`] needs to walk the files [`new_client_key`] writes.
mod der {
    use super::Pkcs12Error;

    /// The first element of `input` (its whole encoding) and what follows it.
    pub fn next(input: &[u8]) -> Result<(&[u8], &[u8]), Pkcs12Error> {
        let (header, len) = header(input)?;
        let end = header.checked_add(len).filter(|end| *end <= input.len()).ok_or(Pkcs12Error)?;
        Ok(input.split_at(end))
    }

    /// The content of the one element `input` holds, which must have `tag`.
    pub fn single(input: &[u8], tag: u8) -> Result<&[u8], Pkcs12Error> {
        let (header, len) = header(input)?;
        if input.first() != Some(&tag) || header + len != input.len() {
            return Err(Pkcs12Error);
        }
        Ok(&input[header..])
    }

    /// Exactly `N` elements (their encodings), in order.
    pub fn items<const N: usize>(mut content: &[u8]) -> Result<[&[u8]; N], Pkcs12Error> {
        let mut items = [&[][..]; N];
        for item in &mut items {
            let (first, rest) = next(content)?;
            *item = first;
            content = rest;
        }
        if content.is_empty() { Ok(items) } else { Err(Pkcs12Error) }
    }

    /// A small non-negative INTEGER's content.
    pub fn uint(content: &[u8]) -> Result<u32, Pkcs12Error> {
        if content.is_empty() || content.len() > 5 || content[0] & 0x80 != 0 {
            return Err(Pkcs12Error);
        }
        let value = content.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
        u32::try_from(value).map_err(|_| Pkcs12Error)
    }

    /// The header's length and the content's.
    fn header(input: &[u8]) -> Result<(usize, usize), Pkcs12Error> {
        let first = *input.get(1).ok_or(Pkcs12Error)?;
        if first < 0x80 {
            return Ok((2, usize::from(first)));
        }
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(Pkcs12Error);
        }
        let bytes = input.get(2..2 + count).ok_or(Pkcs12Error)?;
        Ok((2 + count, bytes.iter().fold(0usize, |v, b| (v << 8) | usize::from(*b))))
    }
}

/// The file could not be made (a time out of range, a key that would not encode), or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pkcs12Error;

// Object identifiers, as DER content octets.
const OID_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];
const OID_SHROUDED_KEY_BAG: &[u64] = &[1, 2, 840, 113549, 1, 12, 10, 1, 2];
const OID_CERT_BAG: &[u64] = &[1, 2, 840, 113549, 1, 12, 10, 1, 3];
const OID_X509_CERTIFICATE: &[u64] = &[1, 2, 840, 113549, 1, 9, 22, 1];
const OID_LOCAL_KEY_ID: &[u64] = &[1, 2, 840, 113549, 1, 9, 21];
const OID_PBES2: &[u64] = &[1, 2, 840, 113549, 1, 5, 13];
const OID_PBKDF2: &[u64] = &[1, 2, 840, 113549, 1, 5, 12];
const OID_HMAC_SHA256: &[u64] = &[1, 2, 840, 113549, 2, 9];
const OID_AES256_CBC: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 1, 42];
const OID_SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
const OID_SHA256_WITH_RSA: &[u64] = &[1, 2, 840, 113549, 1, 1, 11];
const OID_COMMON_NAME: &[u64] = &[2, 5, 4, 3];

fn pfx(pkcs8: &[u8], certificate: &[u8], password: &str) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
    // Ties the key to its certificate, as every PKCS#12 writer does.
    let local_key_id = Sha256::digest(certificate).to_vec();
    let attributes = set(&[&seq(&[&oid(OID_LOCAL_KEY_ID), &set(&[&octets(&local_key_id)])])]);

    let cert_bag = seq(&[&oid(OID_X509_CERTIFICATE), &explicit(0, &octets(certificate))]);
    let cert_safe_bag = seq(&[&oid(OID_CERT_BAG), &explicit(0, &cert_bag), &attributes]);
    let shrouded = shroud(pkcs8, password)?;
    let key_safe_bag = seq(&[&oid(OID_SHROUDED_KEY_BAG), &explicit(0, &shrouded), &attributes]);

    let data = |safe_contents: &[u8]| seq(&[&oid(OID_DATA), &explicit(0, &octets(safe_contents))]);
    let authenticated_safe = seq(&[&data(&seq(&[&cert_safe_bag])), &data(&seq(&[&key_safe_bag]))]);

    let mac_salt: [u8; 16] = random_array();
    let mac_key = pkcs12_kdf(password, &mac_salt, 3, ITERATIONS, 32);
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&mac_key).map_err(|_| Pkcs12Error)?;
    mac.update(&authenticated_safe);
    let digest = mac.finalize().into_bytes();
    let mac_data = seq(&[
        &seq(&[&seq(&[&oid(OID_SHA256), &null()]), &octets(&digest)]),
        &octets(&mac_salt),
        &integer(u64::from(ITERATIONS)),
    ]);
    Ok(Zeroizing::new(seq(&[&integer(3), &data(&authenticated_safe), &mac_data])))
}

/// EncryptedPrivateKeyInfo under PBES2: PBKDF2-HMAC-SHA256 over the UTF-8 password (as OpenSSL 3 derives it),
/// AES-256-CBC with PKCS#7 padding.
fn shroud(pkcs8: &[u8], password: &str) -> Result<Vec<u8>, Pkcs12Error> {
    let salt: [u8; 16] = random_array();
    let iv: [u8; 16] = random_array();
    let key = pbkdf2_sha256(password.as_bytes(), &salt, ITERATIONS);
    let encrypted = aes256_cbc(&key, &iv, pkcs8)?;
    let kdf = seq(&[
        &oid(OID_PBKDF2),
        &seq(&[&octets(&salt), &integer(u64::from(ITERATIONS)), &seq(&[&oid(OID_HMAC_SHA256), &null()])]),
    ]);
    let scheme = seq(&[&oid(OID_AES256_CBC), &octets(&iv)]);
    let algorithm = seq(&[&oid(OID_PBES2), &seq(&[&kdf, &scheme])]);
    Ok(seq(&[&algorithm, &octets(&encrypted)]))
}

fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<[u8; 32]> {
    let prf = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(password).expect("HMAC takes any key length");
    let mut block = prf.clone();
    block.update(salt);
    block.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = block.finalize().into_bytes().into();
    let mut out = Zeroizing::new(u);
    for _ in 1..iterations {
        let mut next = prf.clone();
        next.update(&u);
        u = next.finalize().into_bytes().into();
        out.iter_mut().zip(u).for_each(|(o, b)| *o ^= b);
    }
    out
}

fn aes256_cbc(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Result<Vec<u8>, Pkcs12Error> {
    let cipher = Aes256::new_from_slice(key).map_err(|_| Pkcs12Error)?;
    let pad = 16 - plaintext.len() % 16;
    let mut data = Zeroizing::new(plaintext.to_vec());
    data.extend(std::iter::repeat_n(u8::try_from(pad).map_err(|_| Pkcs12Error)?, pad));
    let mut previous = *iv;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(16) {
        let mut block = aes::Block::default();
        block.iter_mut().zip(chunk.iter().zip(previous)).for_each(|(b, (p, c))| *b = p ^ c);
        cipher.encrypt_block(&mut block);
        previous.copy_from_slice(&block);
        out.extend_from_slice(&block);
    }
    Ok(out)
}

/// RFC 7292 appendix B.2 with SHA-256 (u = 32, v = 64): the password as a
/// BMPString with its two-byte terminator, `id` 3 for the MAC key.
fn pkcs12_kdf(password: &str, salt: &[u8], id: u8, iterations: u32, len: usize) -> Zeroizing<Vec<u8>> {
    const V: usize = 64;
    let mut bmp: Zeroizing<Vec<u8>> = Zeroizing::new(password.encode_utf16().flat_map(u16::to_be_bytes).collect());
    bmp.extend_from_slice(&[0, 0]);
    let stretch = |bytes: &[u8]| -> Vec<u8> {
        let n = bytes.len().div_ceil(V) * V;
        bytes.iter().copied().cycle().take(n).collect()
    };
    let mut i = Zeroizing::new(stretch(salt));
    i.extend_from_slice(&stretch(&bmp));
    let d = [id; V];
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    while out.len() < len {
        let mut a: [u8; 32] = Sha256::new().chain_update(d).chain_update(&*i).finalize().into();
        for _ in 1..iterations {
            a = Sha256::digest(a).into();
        }
        let take = (len - out.len()).min(32);
        out.extend_from_slice(&a[..take]);
        // I_j = (I_j + B + 1) mod 2^(8v), B being A repeated to v bytes.
        let b: Vec<u8> = a.iter().copied().cycle().take(V).collect();
        for block in i.chunks_mut(V) {
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().zip(&b).rev() {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum as u8;
                carry = sum >> 8;
            }
        }
    }
    out
}

fn self_signed_certificate(
    private: &RsaPrivateKey,
    spki: &[u8],
    subject: &str,
    not_before: &str,
    not_after: &str,
) -> Result<Vec<u8>, Pkcs12Error> {
    let mut serial: [u8; 16] = random_array();
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    let algorithm = seq(&[&oid(OID_SHA256_WITH_RSA), &null()]);
    let name = seq(&[&set(&[&seq(&[&oid(OID_COMMON_NAME), &tlv(0x0c, subject.as_bytes())])])]);
    let validity = seq(&[&x509_time(not_before)?, &x509_time(not_after)?]);
    let tbs = seq(&[&explicit(0, &integer(2)), &tlv(0x02, &serial), &algorithm, &name, &validity, &name, spki]);
    let signature = SigningKey::<Sha256>::new(private.clone()).try_sign(&tbs).map_err(|_| Pkcs12Error)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature.to_bytes());
    Ok(seq(&[&tbs, &algorithm, &tlv(0x03, &bits)]))
}

/// An RFC 3339 time (`2027-01-01T00:00:00Z`, fractions dropped) as X.509 wants
/// it: UTCTime up to 2049, GeneralizedTime after.
fn x509_time(rfc3339: &str) -> Result<Vec<u8>, Pkcs12Error> {
    let digits: String = rfc3339.chars().take(19).filter(char::is_ascii_digit).collect();
    if digits.len() != 14 {
        return Err(Pkcs12Error);
    }
    let year: u32 = digits[..4].parse().map_err(|_| Pkcs12Error)?;
    Ok(if (1950..2050).contains(&year) {
        tlv(0x17, format!("{}Z", &digits[2..]).as_bytes())
    } else {
        tlv(0x18, format!("{digits}Z").as_bytes())
    })
}

// A DER writer: just what the structures above need.

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(items: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &items.concat())
}

/// A SET OF; DER sorts its members, which here are one each.
fn set(items: &[&[u8]]) -> Vec<u8> {
    tlv(0x31, &items.concat())
}

fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, content)
}

fn octets(content: &[u8]) -> Vec<u8> {
    tlv(0x04, content)
}

fn null() -> Vec<u8> {
    vec![0x05, 0x00]
}

fn integer(value: u64) -> Vec<u8> {
    let mut bytes: Vec<u8> = value.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
    if bytes.first().is_none_or(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    tlv(0x02, &bytes)
}

fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut content = Vec::new();
    let mut push = |mut arc: u64| {
        let mut chunk = vec![(arc & 0x7f) as u8];
        arc >>= 7;
        while arc > 0 {
            chunk.push(0x80 | (arc & 0x7f) as u8);
            arc >>= 7;
        }
        content.extend(chunk.into_iter().rev());
    };
    push(arcs[0] * 40 + arcs[1]);
    arcs[2..].iter().for_each(|&arc| push(arc));
    tlv(0x06, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_rfc_7914_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1.
        let out = pbkdf2_sha256(b"passwd", b"salt", 1);
        assert_eq!(&out[..8], &[0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f]);
    }

    #[test]
    fn der_writer_encodes_oids_integers_and_long_lengths() {
        assert_eq!(oid(OID_SHA256), vec![0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]);
        assert_eq!(integer(3), vec![0x02, 0x01, 0x03]);
        assert_eq!(integer(2048), vec![0x02, 0x02, 0x08, 0x00]);
        assert_eq!(integer(128), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(&tlv(0x04, &[0; 300])[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn a_file_opens_with_its_password_only() {
        let (pfx, spki) =
            new_client_key("KAAP.test", "Passw0rd!", "2026-01-01T00:00:00Z", "2031-01-01T00:00:00Z").expect("made");
        let key = open_client_key(&pfx, "Passw0rd!").expect("opens");
        assert_eq!(RsaPublicKey::from(&key).to_public_key_der().unwrap().as_bytes(), spki.as_slice());
        assert_eq!(open_client_key(&pfx, "Passw0rd?").unwrap_err(), Pkcs12Error, "the MAC refuses it");
        let mut cut = pfx.to_vec();
        cut.truncate(cut.len() / 2);
        assert_eq!(open_client_key(&cut, "Passw0rd!").unwrap_err(), Pkcs12Error);
    }

    #[test]
    fn x509_times_switch_to_generalized_after_2049() {
        assert_eq!(x509_time("2027-01-02T03:04:05Z").unwrap()[0], 0x17);
        assert_eq!(x509_time("2051-01-02T03:04:05.123Z").unwrap()[0], 0x18);
        assert_eq!(x509_time("yesterday"), Err(Pkcs12Error));
    }
}
