//! An independent, textbook implementation of the public-key side of RSA, ECDSA and SM2.
//!
//! kmsim implements its asymmetric keys with the RustCrypto crates (`rsa`, `p256`, `p384`, `k256`,
//! `sm2`). Tests that only round-trip through kmsim would pass even if kmsim and those crates agreed on
//! something non-standard, so interoperability tests check kmsim against this module instead. It is
//! written from the published definitions and deliberately uses none of the RustCrypto public-key
//! crates: only `num-bigint` for arithmetic, the hash crates, `base64` and `rand`.
//!
//! * PEM / DER: RFC 7468 (PEM), X.690 (DER), RFC 5280 §4.1.2.7 (SubjectPublicKeyInfo), RFC 8017 A.1.1
//!   (RSAPublicKey), RFC 5480 / SEC 1 §2.3.3 (EC keys, uncompressed points).
//! * RSA: RFC 8017 §8.2.2 + §9.2 (PKCS#1 v1.5 signatures), §8.1.2 + §9.1.2 (PSS), §7.1.1 (OAEP), B.2.1 (MGF1).
//! * ECDSA: SEC 1 v2 §4.1.4, curve constants from SEC 2 v2 and FIPS 186-4 D.1.2.
//! * SM2: GB/T 32918.2 §7 (signature verification, Z_A), GB/T 32918.4 §6–7 (encryption, KDF),
//!   GB/T 32918.5 (the sm2p256v1 curve), GM/T 0009 §7.2 (ciphertext DER layout).
//!
//! Nothing here is constant time or hardened: it is test support and only ever sees public data
//! or throw-away test keys. Verification functions return `false` (and print the reason to stderr,
//! which the test harness shows for failing tests) rather than panicking, so that tests can assert
//! on rejection; parsing functions panic with a clear message, because a malformed key from kmsim
//! is itself a test failure.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use num_bigint::BigUint;
use rand::Rng;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use sm3::Sm3;

// ---------------------------------------------------------------------------------------------
// Hashes
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Sm3,
}

impl Hash {
    /// Digest length in bytes (`hLen` in RFC 8017).
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 | Hash::Sm3 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

pub fn digest(hash: Hash, data: &[u8]) -> Vec<u8> {
    match hash {
        Hash::Sha1 => Sha1::digest(data).to_vec(),
        Hash::Sha256 => Sha256::digest(data).to_vec(),
        Hash::Sha384 => Sha384::digest(data).to_vec(),
        Hash::Sha512 => Sha512::digest(data).to_vec(),
        Hash::Sm3 => Sm3::digest(data).to_vec(),
    }
}

/// The DER encoding of `DigestInfo ::= SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING }` up to,
/// not including, the digest bytes. The SHA values are the ones RFC 8017 §9.2 note 1 prints; SM3
/// (OID 1.2.156.10197.1.401, GM/T 0006) follows the same pattern.
pub fn digest_info_prefix(hash: Hash) -> &'static [u8] {
    match hash {
        Hash::Sha1 => &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14],
        Hash::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
            0x20,
        ],
        Hash::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04,
            0x30,
        ],
        Hash::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04,
            0x40,
        ],
        Hash::Sm3 => &[
            0x30, 0x30, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x11, 0x05, 0x00, 0x04, 0x20,
        ],
    }
}

/// MGF1 (RFC 8017 B.2.1): `Hash(seed || C)` for a 32-bit big-endian counter C = 0, 1, ..., truncated.
pub fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.output_len());
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut input = seed.to_vec();
        input.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&digest(hash, &input));
        counter += 1;
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    Secp256k1,
    P384,
    Sm2,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    Rsa { n: BigUint, e: BigUint },
    Ec { curve: Curve, x: BigUint, y: BigUint },
}

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_PRIME256V1: &str = "1.2.840.10045.3.1.7";
const OID_SECP256K1: &str = "1.3.132.0.10";
const OID_SECP384R1: &str = "1.3.132.0.34";
const OID_SM2: &str = "1.2.156.10197.1.301";

/// Parses a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) block. Panics, naming the problem, on anything
/// that is not a well-formed RSA or supported EC key.
pub fn parse_spki_pem(pem: &str) -> PublicKey {
    let der = pem_decode(pem, "PUBLIC KEY").unwrap_or_else(|why| panic!("parse_spki_pem: {why}\nPEM was:\n{pem}"));
    parse_spki_der(&der)
}

/// Parses a DER SubjectPublicKeyInfo. Panics on anything unexpected, like [`parse_spki_pem`].
pub fn parse_spki_der(der: &[u8]) -> PublicKey {
    spki_from_der(der).unwrap_or_else(|why| panic!("parse_spki_der: {why}"))
}

fn pem_decode(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or_else(|| format!("no `{begin}` line"))? + begin.len();
    let stop = pem[start..].find(&end).ok_or_else(|| format!("no `{end}` line"))? + start;
    if !pem[stop + end.len()..].trim().is_empty() {
        return Err(format!("unexpected text after `{end}`"));
    }
    // RFC 7468 allows the base64 to be wrapped at any width, with LF or CRLF line ends.
    let body: String = pem[start..stop].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64.decode(body).map_err(|e| format!("PEM body is not valid base64: {e}"))
}

fn spki_from_der(der: &[u8]) -> Result<PublicKey, String> {
    let mut outer = DerReader::new(der, "SubjectPublicKeyInfo");
    let spki = outer.read(TAG_SEQUENCE)?;
    outer.finish()?;

    let mut spki = DerReader::new(spki, "SubjectPublicKeyInfo");
    let algorithm = spki.read(TAG_SEQUENCE)?;
    let key_bits = bit_string_bytes(spki.read(TAG_BIT_STRING)?)?;
    spki.finish()?;

    let mut algorithm = DerReader::new(algorithm, "AlgorithmIdentifier");
    let algorithm_oid = decode_oid(algorithm.read(TAG_OID)?)?;
    match algorithm_oid.as_str() {
        OID_RSA_ENCRYPTION => {
            // RFC 3279 §2.3.1 says the parameters are NULL; tolerate them being absent too.
            if !algorithm.is_empty() && !algorithm.read(TAG_NULL)?.is_empty() {
                return Err("rsaEncryption parameters: NULL with content".into());
            }
            algorithm.finish()?;
            let mut outer = DerReader::new(key_bits, "RSAPublicKey");
            let mut key = DerReader::new(outer.read(TAG_SEQUENCE)?, "RSAPublicKey");
            outer.finish()?;
            let n = der_unsigned(key.read(TAG_INTEGER)?, "modulus")?;
            let e = der_unsigned(key.read(TAG_INTEGER)?, "publicExponent")?;
            key.finish()?;
            if n.bits() < 512 || !n.bit(0) {
                return Err(format!("implausible RSA modulus of {} bits (or even)", n.bits()));
            }
            if e < BigUint::from(3u8) || !e.bit(0) {
                return Err(format!("implausible RSA public exponent {e}"));
            }
            Ok(PublicKey::Rsa { n, e })
        }
        OID_EC_PUBLIC_KEY => {
            let curve_oid = decode_oid(algorithm.read(TAG_OID)?)?;
            algorithm.finish()?;
            let curve = match curve_oid.as_str() {
                OID_PRIME256V1 => Curve::P256,
                OID_SECP256K1 => Curve::Secp256k1,
                OID_SECP384R1 => Curve::P384,
                OID_SM2 => Curve::Sm2,
                other => return Err(format!("unsupported EC curve OID {other}")),
            };
            ec_point_key(curve, key_bits)
        }
        // Some older SM2 software names the key algorithm by the SM2 OID itself rather than as
        // id-ecPublicKey with SM2 curve parameters; the point encoding is the same.
        OID_SM2 => {
            if !algorithm.is_empty() && !algorithm.read(TAG_NULL)?.is_empty() {
                return Err("SM2 algorithm parameters: NULL with content".into());
            }
            algorithm.finish()?;
            ec_point_key(Curve::Sm2, key_bits)
        }
        other => Err(format!("unsupported SubjectPublicKeyInfo algorithm OID {other}")),
    }
}

/// SEC 1 §2.3.4 for the uncompressed form only (`04 || X || Y`), which is what every SPKI encoder
/// in practice emits; the point must lie on the curve.
fn ec_point_key(curve: Curve, point: &[u8]) -> Result<PublicKey, String> {
    let len = curve.field_len();
    match point.first() {
        Some(0x04) if point.len() == 1 + 2 * len => {}
        Some(0x02 | 0x03) => return Err(format!("{curve:?}: compressed EC points are not supported")),
        _ => {
            return Err(format!(
                "{curve:?}: expected a {}-byte uncompressed point, got {} bytes",
                1 + 2 * len,
                point.len()
            ));
        }
    }
    let x = BigUint::from_bytes_be(&point[1..1 + len]);
    let y = BigUint::from_bytes_be(&point[1 + len..]);
    if !curve.params().is_on_curve(&x, &y) {
        return Err(format!("{curve:?}: public point is not on the curve"));
    }
    Ok(PublicKey::Ec { curve, x, y })
}

// ---------------------------------------------------------------------------------------------
// A minimal DER reader and writer
// ---------------------------------------------------------------------------------------------

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

/// Reads consecutive TLVs out of a byte slice, strictly (definite, minimal lengths only), so that a
/// sloppy encoder on the kmsim side shows up as a test failure.
struct DerReader<'a> {
    input: &'a [u8],
    what: &'static str,
}

impl<'a> DerReader<'a> {
    fn new(input: &'a [u8], what: &'static str) -> Self {
        DerReader { input, what }
    }

    fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// Reads one element with the given tag and returns its contents.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], String> {
        let what = self.what;
        let (&found, rest) =
            self.input.split_first().ok_or_else(|| format!("{what}: expected tag {tag:#04x}, found end of data"))?;
        if found != tag {
            return Err(format!("{what}: expected tag {tag:#04x}, found {found:#04x}"));
        }
        let (&first, mut rest) = rest.split_first().ok_or_else(|| format!("{what}: missing length"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 {
                return Err(format!("{what}: indefinite length is not DER"));
            }
            if count > 4 || count > rest.len() {
                return Err(format!("{what}: length of {count} bytes is unsupported or truncated"));
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            if bytes[0] == 0 {
                return Err(format!("{what}: non-minimal long-form length"));
            }
            let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 {
                return Err(format!("{what}: long-form length {len} should have used the short form"));
            }
            len
        };
        if len > rest.len() {
            return Err(format!("{what}: element of {len} bytes but only {} remain", rest.len()));
        }
        let (contents, after) = rest.split_at(len);
        self.input = after;
        Ok(contents)
    }

    fn finish(self) -> Result<(), String> {
        if self.input.is_empty() { Ok(()) } else { Err(format!("{}: {} trailing bytes", self.what, self.input.len())) }
    }
}

/// A non-negative DER INTEGER: minimal two's complement, so a set top bit means negative.
fn der_unsigned(contents: &[u8], what: &str) -> Result<BigUint, String> {
    match contents {
        [] => Err(format!("{what}: empty INTEGER")),
        [first, ..] if first & 0x80 != 0 => Err(format!("{what}: negative INTEGER")),
        [0, second, ..] if second & 0x80 == 0 => Err(format!("{what}: non-minimal INTEGER (redundant leading zero)")),
        _ => Ok(BigUint::from_bytes_be(contents)),
    }
}

/// The content of a BIT STRING that must hold whole bytes (no unused bits), as SPKI keys do.
fn bit_string_bytes(contents: &[u8]) -> Result<&[u8], String> {
    match contents.split_first() {
        Some((0, bytes)) => Ok(bytes),
        Some((unused, _)) => Err(format!("BIT STRING with {unused} unused bits")),
        None => Err("empty BIT STRING".into()),
    }
}

/// Decodes OBJECT IDENTIFIER contents to dotted form (X.690 §8.19), which keeps the OID table above
/// readable and the panic messages useful.
pub fn decode_oid(contents: &[u8]) -> Result<String, String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    let mut in_progress = false;
    for &byte in contents {
        if !in_progress && byte == 0x80 {
            return Err("OID: non-minimal subidentifier".into());
        }
        if value > (u64::MAX >> 7) {
            return Err("OID: subidentifier too large".into());
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        in_progress = byte & 0x80 != 0;
        if !in_progress {
            if arcs.is_empty() {
                // The first subidentifier packs the first two arcs as 40 * X + Y.
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - 40 * first);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if in_progress || arcs.is_empty() {
        return Err("OID: truncated or empty".into());
    }
    Ok(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend_from_slice(&bytes);
    out
}

pub fn der_tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&der_length(contents.len()));
    out.extend_from_slice(contents);
    out
}

/// A non-negative INTEGER: minimal big-endian bytes, plus a leading 0x00 when the top bit is set so
/// that it does not read as negative.
pub fn der_integer(value: &BigUint) -> Vec<u8> {
    let mut bytes = value.to_bytes_be(); // `[0]` for zero, which is the right encoding
    if bytes[0] & 0x80 != 0 {
        bytes.insert(0, 0);
    }
    der_tlv(TAG_INTEGER, &bytes)
}

/// Parses `SEQUENCE { INTEGER r, INTEGER s }` (RFC 3279 Ecdsa-Sig-Value, GM/T 0009 SM2Signature).
fn parse_signature_der(signature: &[u8]) -> Result<(BigUint, BigUint), String> {
    let mut outer = DerReader::new(signature, "signature");
    let mut seq = DerReader::new(outer.read(TAG_SEQUENCE)?, "signature");
    outer.finish()?;
    let r = der_unsigned(seq.read(TAG_INTEGER)?, "signature r")?;
    let s = der_unsigned(seq.read(TAG_INTEGER)?, "signature s")?;
    seq.finish()?;
    Ok((r, s))
}

/// I2OSP (RFC 8017 §4.1): big-endian, left-padded with zeros to exactly `len` bytes.
pub fn i2osp(value: &BigUint, len: usize) -> Result<Vec<u8>, String> {
    let bytes = if *value == BigUint::ZERO { Vec::new() } else { value.to_bytes_be() };
    if bytes.len() > len {
        return Err(format!("integer too large for {len} bytes"));
    }
    let mut out = vec![0u8; len - bytes.len()];
    out.extend_from_slice(&bytes);
    Ok(out)
}

/// Turns a check's outcome into the boolean the public verifiers return, saying why on rejection.
fn report(what: &str, outcome: Result<(), String>) -> bool {
    match outcome {
        Ok(()) => true,
        Err(why) => {
            eprintln!("independent::{what}: rejected: {why}");
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RSA (RFC 8017)
// ---------------------------------------------------------------------------------------------

fn rsa_parts(key: &PublicKey) -> Result<(&BigUint, &BigUint), String> {
    match key {
        PublicKey::Rsa { n, e } => Ok((n, e)),
        PublicKey::Ec { curve, .. } => Err(format!("expected an RSA key, got an EC key on {curve:?}")),
    }
}

/// `k`, the modulus length in bytes.
fn modulus_len(n: &BigUint) -> usize {
    n.bits().div_ceil(8) as usize
}

/// RSAVP1 (§5.2.2) applied to a signature octet string: checks its length is exactly k (§8.1.2
/// step 1, §8.2.2 step 1) and its value is below n, and returns `s^e mod n`.
fn rsa_verify_primitive(n: &BigUint, e: &BigUint, signature: &[u8]) -> Result<BigUint, String> {
    let k = modulus_len(n);
    if signature.len() != k {
        return Err(format!("signature is {} bytes, the modulus is {k}", signature.len()));
    }
    let s = BigUint::from_bytes_be(signature);
    if s >= *n {
        return Err("signature representative out of range (>= n)".into());
    }
    Ok(s.modpow(e, n))
}

fn check_digest_len(hash: Hash, digest: &[u8]) -> Result<(), String> {
    if digest.len() == hash.output_len() {
        Ok(())
    } else {
        Err(format!("{hash:?} digest must be {} bytes, got {}", hash.output_len(), digest.len()))
    }
}

/// RSASSA-PKCS1-v1_5 verification of a precomputed digest. Rather than parsing the recovered
/// block, it re-encodes EMSA-PKCS1-v1_5 and compares, as §8.2.2 prescribes; that is also the
/// strict choice (no garbage, no alternative DigestInfo encodings).
pub fn rsa_verify_pkcs1v15(key: &PublicKey, hash: Hash, digest: &[u8], signature: &[u8]) -> bool {
    report("rsa_verify_pkcs1v15", pkcs1v15_check(key, hash, digest, signature))
}

fn pkcs1v15_check(key: &PublicKey, hash: Hash, digest: &[u8], signature: &[u8]) -> Result<(), String> {
    let (n, e) = rsa_parts(key)?;
    check_digest_len(hash, digest)?;
    let k = modulus_len(n);
    let em = i2osp(&rsa_verify_primitive(n, e, signature)?, k)?;

    // EM = 0x00 || 0x01 || PS (0xff, at least 8 bytes) || 0x00 || DigestInfo   (§9.2 steps 2-5)
    let mut t = digest_info_prefix(hash).to_vec();
    t.extend_from_slice(digest);
    let ps_len = k.checked_sub(t.len() + 3).filter(|&len| len >= 8).ok_or("modulus too short for this hash")?;
    let mut expected = vec![0x00, 0x01];
    expected.extend(std::iter::repeat_n(0xff, ps_len));
    expected.push(0x00);
    expected.extend_from_slice(&t);
    if em == expected { Ok(()) } else { Err("encoded message is not EMSA-PKCS1-v1_5 of this digest".into()) }
}

/// RSASSA-PSS verification of a precomputed digest with MGF1 over the same hash and a salt as long
/// as the digest (what AWS KMS and Alibaba Cloud KMS mean by RSA_PSS_SHA_256 etc.).
pub fn rsa_verify_pss(key: &PublicKey, hash: Hash, digest: &[u8], signature: &[u8]) -> bool {
    report("rsa_verify_pss", pss_check(key, hash, digest, signature))
}

fn pss_check(key: &PublicKey, hash: Hash, digest: &[u8], signature: &[u8]) -> Result<(), String> {
    let (n, e) = rsa_parts(key)?;
    check_digest_len(hash, digest)?;
    let m = rsa_verify_primitive(n, e, signature)?;

    // §8.1.2 step 2c: the encoded message is emBits = modBits - 1 bits long, which is one byte
    // shorter than k when modBits = 8j + 1.
    let em_bits = n.bits() as usize - 1;
    let em_len = em_bits.div_ceil(8);
    let em = i2osp(&m, em_len).map_err(|_| "signature representative has too many bits for EMSA-PSS")?;

    // EMSA-PSS-VERIFY, §9.1.2.
    let h_len = hash.output_len();
    let s_len = h_len;
    if em_len < h_len + s_len + 2 {
        return Err("modulus too short for this hash and salt length".into());
    }
    if em[em_len - 1] != 0xbc {
        return Err(format!("trailer byte is {:#04x}, not 0xbc", em[em_len - 1]));
    }
    let db_len = em_len - h_len - 1;
    let (masked_db, h) = em[..em_len - 1].split_at(db_len);
    // The leftmost 8 * emLen - emBits bits of maskedDB must be zero.
    let top_bits: u8 = !(0xffu8 >> (8 * em_len - em_bits));
    if masked_db[0] & top_bits != 0 {
        return Err("leftmost bits of maskedDB are not zero".into());
    }
    let mut db: Vec<u8> = masked_db.iter().zip(mgf1(hash, h, db_len)).map(|(a, b)| a ^ b).collect();
    db[0] &= !top_bits;
    // DB = PS (zeros) || 0x01 || salt
    let ps_len = em_len - h_len - s_len - 2;
    if db[..ps_len].iter().any(|&b| b != 0) || db[ps_len] != 0x01 {
        return Err("DB does not start with zero padding and 0x01 (wrong salt length?)".into());
    }
    let salt = &db[db_len - s_len..];
    let mut m_prime = vec![0u8; 8];
    m_prime.extend_from_slice(digest);
    m_prime.extend_from_slice(salt);
    if self::digest(hash, &m_prime) == h { Ok(()) } else { Err("H != Hash(M')".into()) }
}

/// RSAES-OAEP encryption (§7.1.1) with MGF1 over the same hash and an empty label, with a fresh
/// random seed. Output is exactly k bytes. Panics if the message is too long for the key.
pub fn rsa_oaep_encrypt(key: &PublicKey, hash: Hash, plaintext: &[u8]) -> Vec<u8> {
    let mut seed = vec![0u8; hash.output_len()];
    rand::rng().fill_bytes(&mut seed);
    rsa_oaep_encrypt_with_seed(key, hash, plaintext, &seed)
}

/// [`rsa_oaep_encrypt`] with a caller-chosen seed, for published known-answer vectors.
pub fn rsa_oaep_encrypt_with_seed(key: &PublicKey, hash: Hash, plaintext: &[u8], seed: &[u8]) -> Vec<u8> {
    let (n, e) = rsa_parts(key).unwrap_or_else(|why| panic!("rsa_oaep_encrypt: {why}"));
    let k = modulus_len(n);
    let h_len = hash.output_len();
    assert_eq!(seed.len(), h_len, "rsa_oaep_encrypt: the seed must be hLen = {h_len} bytes");
    let max = k.saturating_sub(2 * h_len + 2);
    assert!(
        plaintext.len() <= max,
        "rsa_oaep_encrypt: {} bytes is too long; a {k}-byte modulus with {hash:?} takes at most {max}",
        plaintext.len()
    );

    // DB = lHash || PS (zeros) || 0x01 || M, filling k - hLen - 1 bytes.
    let db_len = k - h_len - 1;
    let mut db = digest(hash, b"");
    db.resize(db_len - plaintext.len() - 1, 0);
    db.push(0x01);
    db.extend_from_slice(plaintext);

    let masked_db: Vec<u8> = db.iter().zip(mgf1(hash, seed, db_len)).map(|(a, b)| a ^ b).collect();
    let masked_seed: Vec<u8> = seed.iter().zip(mgf1(hash, &masked_db, h_len)).map(|(a, b)| a ^ b).collect();

    // EM = 0x00 || maskedSeed || maskedDB, then RSAEP and I2OSP to k bytes.
    let mut em = vec![0x00];
    em.extend_from_slice(&masked_seed);
    em.extend_from_slice(&masked_db);
    let c = BigUint::from_bytes_be(&em).modpow(e, n);
    i2osp(&c, k).expect("c < n always fits in k bytes")
}

// ---------------------------------------------------------------------------------------------
// Elliptic curves: short Weierstrass y^2 = x^3 + ax + b over GF(p), affine coordinates
// ---------------------------------------------------------------------------------------------

/// Domain parameters (p, a, b, G, n); every curve here has cofactor 1.
#[derive(Clone, Debug)]
pub struct CurveParams {
    pub p: BigUint,
    pub a: BigUint,
    pub b: BigUint,
    pub gx: BigUint,
    pub gy: BigUint,
    pub n: BigUint,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Point {
    Infinity,
    Affine { x: BigUint, y: BigUint },
}

fn hex_int(hex: &str) -> BigUint {
    BigUint::parse_bytes(hex.as_bytes(), 16).unwrap_or_else(|| panic!("bad hex constant {hex}"))
}

impl Curve {
    /// Bytes in a field element (and in an uncompressed point coordinate).
    pub fn field_len(self) -> usize {
        match self {
            Curve::P384 => 48,
            Curve::P256 | Curve::Secp256k1 | Curve::Sm2 => 32,
        }
    }

    pub fn params(self) -> CurveParams {
        // (p, a, b, Gx, Gy, n) as printed in the defining documents.
        let [p, a, b, gx, gy, n] = match self {
            // FIPS 186-4 D.1.2.3 (= SEC 2 secp256r1); a = p - 3.
            Curve::P256 => [
                "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
                "ffffffff00000001000000000000000000000000fffffffffffffffffffffffc",
                "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
                "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
                "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
                "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
            ],
            // SEC 2 v2 §2.4.1.
            Curve::Secp256k1 => [
                "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f",
                "0",
                "7",
                "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
                "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8",
                "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            ],
            // FIPS 186-4 D.1.2.4 (= SEC 2 secp384r1); a = p - 3.
            Curve::P384 => [
                "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
                "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffc",
                "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
                "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
                "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
                "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
            ],
            // GB/T 32918.5-2017 (= GM/T 0003.5-2012) sm2p256v1; a = p - 3.
            Curve::Sm2 => [
                "fffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffff",
                "fffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffc",
                "28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93",
                "32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7",
                "bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0",
                "fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123",
            ],
        }
        .map(hex_int);
        CurveParams { p, a, b, gx, gy, n }
    }
}

/// `v^-1 mod m` for prime m by Fermat's little theorem (`v^(m-2)`); v must be non-zero mod m.
pub fn inverse_mod_prime(v: &BigUint, m: &BigUint) -> BigUint {
    v.modpow(&(m - 2u32), m)
}

impl CurveParams {
    pub fn generator(&self) -> Point {
        Point::Affine { x: self.gx.clone(), y: self.gy.clone() }
    }

    /// Coordinates are reduced field elements and satisfy the curve equation.
    pub fn is_on_curve(&self, x: &BigUint, y: &BigUint) -> bool {
        let p = &self.p;
        x < p && y < p && (y * y) % p == (x * x * x + &self.a * x + &self.b) % p
    }

    fn sub_mod_p(&self, a: &BigUint, b: &BigUint) -> BigUint {
        (a + &self.p - b) % &self.p
    }

    pub fn negate(&self, point: &Point) -> Point {
        match point {
            Point::Infinity => Point::Infinity,
            Point::Affine { x, y } => Point::Affine { x: x.clone(), y: (&self.p - y) % &self.p },
        }
    }

    /// The chord-and-tangent group law.
    pub fn add(&self, lhs: &Point, rhs: &Point) -> Point {
        let (Point::Affine { x: x1, y: y1 }, Point::Affine { x: x2, y: y2 }) = (lhs, rhs) else {
            return if *lhs == Point::Infinity { rhs.clone() } else { lhs.clone() };
        };
        if x1 == x2 {
            // Either P + P (tangent) or P + (-P) = O.
            return if y1 == y2 { self.double(lhs) } else { Point::Infinity };
        }
        let p = &self.p;
        let lambda = self.sub_mod_p(y2, y1) * inverse_mod_prime(&self.sub_mod_p(x2, x1), p) % p;
        let x3 = self.sub_mod_p(&self.sub_mod_p(&(&lambda * &lambda % p), x1), x2);
        let y3 = self.sub_mod_p(&(lambda * self.sub_mod_p(x1, &x3) % p), y1);
        Point::Affine { x: x3, y: y3 }
    }

    pub fn double(&self, point: &Point) -> Point {
        let Point::Affine { x, y } = point else { return Point::Infinity };
        if *y == BigUint::ZERO {
            return Point::Infinity; // a point of order two (none exist on these curves, but be exact)
        }
        let p = &self.p;
        let lambda = (3u32 * x * x + &self.a) % p * inverse_mod_prime(&(2u32 * y % p), p) % p;
        let x3 = self.sub_mod_p(&(&lambda * &lambda % p), &(2u32 * x % p));
        let y3 = self.sub_mod_p(&(lambda * self.sub_mod_p(x, &x3) % p), y);
        Point::Affine { x: x3, y: y3 }
    }

    /// `k * point`, left-to-right double-and-add. Variable time, which is fine for test support.
    pub fn mul(&self, k: &BigUint, point: &Point) -> Point {
        let mut acc = Point::Infinity;
        for i in (0..k.bits()).rev() {
            acc = self.double(&acc);
            if k.bit(i) {
                acc = self.add(&acc, point);
            }
        }
        acc
    }

    fn random_scalar(&self) -> BigUint {
        // 64 extra bits make the bias of the reduction negligible; the result is in [1, n-1].
        let mut bytes = vec![0u8; self.n.bits().div_ceil(8) as usize + 8];
        rand::rng().fill_bytes(&mut bytes);
        BigUint::from_bytes_be(&bytes) % (&self.n - 1u32) + 1u32
    }
}

fn ec_parts(key: &PublicKey) -> Result<(Curve, Point), String> {
    match key {
        PublicKey::Ec { curve, x, y } => Ok((*curve, Point::Affine { x: x.clone(), y: y.clone() })),
        PublicKey::Rsa { .. } => Err("expected an EC key, got an RSA key".into()),
    }
}

fn check_scalar_range(name: &str, v: &BigUint, n: &BigUint) -> Result<(), String> {
    if *v == BigUint::ZERO || v >= n { Err(format!("{name} is not in [1, n-1]")) } else { Ok(()) }
}

/// ECDSA verification (SEC 1 §4.1.4) of a precomputed digest against a DER signature, for P-256,
/// secp256k1 and P-384. Accepts high-S signatures, as SEC 1 does.
pub fn ecdsa_verify(key: &PublicKey, digest: &[u8], signature_der: &[u8]) -> bool {
    report("ecdsa_verify", ecdsa_check(key, digest, signature_der))
}

fn ecdsa_check(key: &PublicKey, digest: &[u8], signature_der: &[u8]) -> Result<(), String> {
    let (curve, q) = ec_parts(key)?;
    if curve == Curve::Sm2 {
        return Err("SM2 keys sign with SM2DSA, not ECDSA; use sm2_verify".into());
    }
    let c = curve.params();
    let n = &c.n;
    let (r, s) = parse_signature_der(signature_der)?;
    check_scalar_range("r", &r, n)?;
    check_scalar_range("s", &s, n)?;

    // §4.1.4 step 3 / §4.1.3 step 5: e is the leftmost ceil(log2 n) bits of the digest.
    let mut e = BigUint::from_bytes_be(digest);
    let digest_bits = 8 * digest.len() as u64;
    if digest_bits > n.bits() {
        e >>= digest_bits - n.bits();
    }

    let w = inverse_mod_prime(&s, n);
    let u1 = e * &w % n;
    let u2 = &r * &w % n;
    match c.add(&c.mul(&u1, &c.generator()), &c.mul(&u2, &q)) {
        Point::Infinity => Err("u1*G + u2*Q is the point at infinity".into()),
        Point::Affine { x, .. } if &x % n == r => Ok(()),
        Point::Affine { .. } => Err("x(u1*G + u2*Q) mod n != r".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// SM2 (GB/T 32918)
// ---------------------------------------------------------------------------------------------

/// The default user identity, GM/T 0009-2012 §10.
pub const SM2_DEFAULT_ID: &[u8] = b"1234567812345678";

fn sm2_parts(key: &PublicKey, what: &str) -> Result<(CurveParams, Point, BigUint, BigUint), String> {
    match key {
        PublicKey::Ec { curve: Curve::Sm2, x, y } => {
            Ok((Curve::Sm2.params(), Point::Affine { x: x.clone(), y: y.clone() }, x.clone(), y.clone()))
        }
        other => Err(format!("{what} needs an SM2 key, got {other:?}")),
    }
}

fn field_bytes(v: &BigUint) -> Vec<u8> {
    i2osp(v, 32).expect("sm2p256v1 field elements fit in 32 bytes")
}

/// `Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA)` (GB/T 32918.2 §5.5), ENTL being the
/// identity's length in bits as two big-endian bytes.
pub fn sm2_za(key: &PublicKey, user_id: &[u8]) -> Vec<u8> {
    let (c, _, xa, ya) = sm2_parts(key, "sm2_za").unwrap_or_else(|why| panic!("{why}"));
    let entl = u16::try_from(user_id.len() * 8).expect("sm2_za: the user ID must be under 8192 bytes");
    let mut input = entl.to_be_bytes().to_vec();
    input.extend_from_slice(user_id);
    for v in [&c.a, &c.b, &c.gx, &c.gy, &xa, &ya] {
        input.extend_from_slice(&field_bytes(v));
    }
    digest(Hash::Sm3, &input)
}

/// `e = SM3(Z_A || M)`, the digest an SM2 signature over message M signs (GB/T 32918.2 §6.1 A1-A2).
pub fn sm2_message_digest(key: &PublicKey, user_id: &[u8], message: &[u8]) -> Vec<u8> {
    let mut input = sm2_za(key, user_id);
    input.extend_from_slice(message);
    digest(Hash::Sm3, &input)
}

/// SM2 signature verification (GB/T 32918.2 §7.1) of the 32-byte digest `e = SM3(Z_A || M)`
/// against a DER `SEQUENCE { INTEGER r, INTEGER s }`.
pub fn sm2_verify(key: &PublicKey, e: &[u8], signature_der: &[u8]) -> bool {
    report("sm2_verify", sm2_check(key, e, signature_der))
}

fn sm2_check(key: &PublicKey, e: &[u8], signature_der: &[u8]) -> Result<(), String> {
    let (c, p_a, _, _) = sm2_parts(key, "sm2_verify")?;
    if e.len() != 32 {
        return Err(format!("e must be a 32-byte SM3 digest, got {} bytes", e.len()));
    }
    let n = &c.n;
    let (r, s) = parse_signature_der(signature_der)?;
    check_scalar_range("r", &r, n)?; // B1
    check_scalar_range("s", &s, n)?; // B2
    let t = (&r + &s) % n; // B5
    if t == BigUint::ZERO {
        return Err("t = (r + s) mod n is zero".into());
    }
    // B6: (x1, y1) = [s]G + [t]P_A;  B7: R = (e + x1) mod n must equal r.
    match c.add(&c.mul(&s, &c.generator()), &c.mul(&t, &p_a)) {
        Point::Infinity => Err("[s]G + [t]P_A is the point at infinity".into()),
        Point::Affine { x: x1, .. } if (BigUint::from_bytes_be(e) + &x1) % n == r => Ok(()),
        Point::Affine { .. } => Err("R = (e + x1) mod n != r".into()),
    }
}

/// The SM3-based key derivation function of GB/T 32918.4 §5.4.3: `Hash(Z || ct)` for a 32-bit
/// big-endian counter ct = 1, 2, ..., truncated to `len` bytes.
pub fn sm2_kdf(z: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut input = z.to_vec();
        input.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&digest(Hash::Sm3, &input));
        counter += 1;
    }
    out.truncate(len);
    out
}

/// SM2 public-key encryption (GB/T 32918.4 §6.1) with a fresh random k, output in the GM/T 0009
/// DER form `SEQUENCE { INTEGER x1, INTEGER y1, OCTET STRING C3, OCTET STRING C2 }`.
/// Panics on an empty message (its KDF output would be "all zero" by definition).
pub fn sm2_encrypt_der(key: &PublicKey, plaintext: &[u8]) -> Vec<u8> {
    let params = Curve::Sm2.params();
    loop {
        // A1 / A5: pick k again in the (astronomically unlikely) case the KDF output is all zero.
        if let Some(ciphertext) = sm2_encrypt_attempt(key, plaintext, &params.random_scalar()) {
            return ciphertext;
        }
    }
}

/// [`sm2_encrypt_der`] with a caller-chosen k in [1, n-1], for published known-answer vectors.
pub fn sm2_encrypt_der_with_k(key: &PublicKey, plaintext: &[u8], k: &BigUint) -> Vec<u8> {
    sm2_encrypt_attempt(key, plaintext, k).expect("sm2_encrypt_der_with_k: KDF output is all zero for this k")
}

fn sm2_encrypt_attempt(key: &PublicKey, plaintext: &[u8], k: &BigUint) -> Option<Vec<u8>> {
    let (c, p_b, _, _) = sm2_parts(key, "sm2_encrypt_der").unwrap_or_else(|why| panic!("{why}"));
    assert!(!plaintext.is_empty(), "sm2_encrypt_der: SM2 cannot encrypt an empty message");
    assert!(*k != BigUint::ZERO && *k < c.n, "sm2_encrypt_der: k must be in [1, n-1]");

    // A2: C1 = [k]G. A3 (S = [h]P_B is not O) holds because h = 1 and P_B is an affine point.
    let Point::Affine { x: x1, y: y1 } = c.mul(k, &c.generator()) else { unreachable!("k < n, so [k]G != O") };
    // A4: (x2, y2) = [k]P_B.
    let Point::Affine { x: x2, y: y2 } = c.mul(k, &p_b) else { unreachable!("P_B has prime order n > k") };
    let (x2, y2) = (field_bytes(&x2), field_bytes(&y2));

    // A5: t = KDF(x2 || y2, klen), which must not be all zero.
    let t = sm2_kdf(&[x2.as_slice(), y2.as_slice()].concat(), plaintext.len());
    if t.iter().all(|&b| b == 0) {
        return None;
    }
    // A6: C2 = M xor t.  A7: C3 = SM3(x2 || M || y2).
    let c2: Vec<u8> = plaintext.iter().zip(&t).map(|(m, t)| m ^ t).collect();
    let c3 = digest(Hash::Sm3, &[x2.as_slice(), plaintext, y2.as_slice()].concat());

    let mut body = der_integer(&x1);
    body.extend(der_integer(&y1));
    body.extend(der_tlv(TAG_OCTET_STRING, &c3));
    body.extend(der_tlv(TAG_OCTET_STRING, &c2));
    Some(der_tlv(TAG_SEQUENCE, &body))
}
