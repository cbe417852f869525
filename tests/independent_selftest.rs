//! Self-tests for the independent RSA / ECDSA / SM2 implementation in `support/independent.rs`.
//!
//! Every algorithm is pinned to published known-answer data (RFC 6979, NIST CAVP, the PKCS#1 v2.1
//! test vectors from RSA Laboratories, GB/T 32918 / GM/T 0003.5 annexes), never to output of the
//! RustCrypto crates kmsim itself uses, so that agreement between kmsim and this module means
//! agreement with the standards.

#[path = "support/independent.rs"]
mod independent;

use base64::Engine as _;
use independent::{Curve, Hash, Point, PublicKey};
use num_bigint::BigUint;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Hex to bytes, ignoring whitespace so vectors can be pasted as printed.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).expect("hex digit"))
        .collect()
}

fn int(text: &str) -> BigUint {
    BigUint::from_bytes_be(&hex(text))
}

fn flip_bit(bytes: &[u8], index: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[index / 8] ^= 0x80 >> (index % 8);
    out
}

/// PEM-armours DER the way OpenSSL and the RustCrypto `pem` encoders do: 64-column base64 lines.
fn pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
}

fn ec_key(curve: Curve, x: &str, y: &str) -> PublicKey {
    PublicKey::Ec { curve, x: int(x), y: int(y) }
}

/// Reads one DER element of the expected tag off the front of `input` (short or 1-2 byte lengths),
/// kept separate from the module's reader so the two cross-check each other.
fn take<'a>(input: &mut &'a [u8], tag: u8) -> &'a [u8] {
    assert_eq!(input[0], tag, "unexpected DER tag");
    let (len, header) = match input[1] {
        l if l < 0x80 => (usize::from(l), 2),
        0x81 => (usize::from(input[2]), 3),
        0x82 => (usize::from(input[2]) << 8 | usize::from(input[3]), 4),
        other => panic!("unexpected DER length byte {other:#04x}"),
    };
    let contents = &input[header..header + len];
    *input = &input[header + len..];
    contents
}

// ---------------------------------------------------------------------------------------------
// Published vectors
// ---------------------------------------------------------------------------------------------

// RFC 6979 A.2.5: P-256 key and the SHA-256 signature of "sample" (DER as in ring's test data).
const P256_UX: &str = "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6";
const P256_UY: &str = "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299";
const P256_SIG: &str = "3046022100EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716
                        022100F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8";

// RFC 6979 A.2.6: P-384 key and the SHA-384 signature of "sample".
const P384_UX: &str =
    "EC3A4E415B4E19A4568618029F427FA5DA9A8BC4AE92E02E06AAE5286B300C64DEF8F0EA9055866064A254515480BC13";
const P384_UY: &str =
    "8015D9B72D7D57244EA8EF9AC0C621896708A59367F9DFB9F54CA84B3F1C9DB1288B231C3AE0D4FE7344FD2533264720";
const P384_SIG: &str = "306602310094EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C81A648152E44ACF96E36DD1E80FABE46
                        02310099EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94FA329C145786E679E7B82C71A38628AC8";

// secp256k1, private key 1 (so the public key is G), SHA-256 of "Satoshi Nakamoto", RFC 6979 nonce:
// the widely published bitcointalk / python-ecdsa / btcd vector.
const K256_GX: &str = "79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798";
const K256_GY: &str = "483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8";
const K256_SIG: &str = "3045022100934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d8
                        02202442ce9d2b916064108014783e923ec36b49743e2ffa1c4496f01a512aafd9e5";

// GB/T 32918.2-2016 / GM/T 0003.5-2012 Annex A on sm2p256v1: key pair, Z_A for the default ID,
// and the signature of "message digest" with nonce k.
const SM2_D: &str = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
const SM2_PX: &str = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020";
const SM2_PY: &str = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";
const SM2_ZA: &str = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3";
const SM2_K: &str = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21";
const SM2_R: &str = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3";
const SM2_S: &str = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";

// GM/T 0003.5-2012 Annex C: "encryption standard" encrypted to the key above with the same k,
// serialised in the GM/T 0009-2012 §7.2 ASN.1 form (as in OpenSSL's test/sm2_internal_test.c).
const SM2_ANNEX_C_DER: &str = "307C
    0220 04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73
    0221 00E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0
    0420 59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766
    0413 21886CA989CA9C7D58087307CA93092D651EFA";

// The same SM2 public key as an SPKI, a signature of "message digest" (default ID) and an encryption
// of "0123456789abcdef", all produced by a third implementation (tjfoc/gmsm v1.4.1).
const GMSM_SPKI_B64: &str = "MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAECfnfMR5UIaFQ3X0WHkvFxnIXn60YM/wHa7CP81bzUCDM6kkM4md1pS3G6nGMwapgCu0F+/NeCEpmMvYHLamtEw==";
const GMSM_SIG: &str = "304402203d72aed265584d819a1dcf7cc4fe1bb2451659a5849b04bcc1fe8223f493baa8
                        02204be68eda55e43f4546d58bb63b99ab4302acc4167f4338429b96f2eab35017dd";
const GMSM_CIPHERTEXT: &str = "30780220719f46b296d5fcd6939ad85e7c592c1a292830791bf4439e5db44e9fe1bcf11a
    02202208e8dc7995914b5b0cbd4ec75e2d4e021231a0eb84842bb536ae39303e5eb9
    04200f2564dc93900f931608c4c67e61d7a0fa04bb3a7ed584a6bb1bcfccfad47573
    0410b140e0df840ebf36d420feb61c4db1db";

// NIST CAVP 186-3 RSA validation, SigVer15_186-3.rsp, [mod = 2048], SHAAlg = SHA256: the modulus,
// the exponent, and one "Result = P" and one "Result = F" record.
const CAVP_N: &str = "c47abacc2a84d56f3614d92fd62ed36ddde459664b9301dcd1d61781cfcc026b
    cb2399bee7e75681a80b7bf500e2d08ceae1c42ec0b707927f2b2fe92ae85208 7d25f1d260cc74905ee5f9b254ed05494a9fe06732c3680992dd6f0dc634568d
    11542a705f83ae96d2a49763d5fbb24398edf3702bc94bc168190166492b8671 de874bb9cecb058c6c8344aa8c93754d6effcd44a41ed7de0a9dcd9144437f21
    2b18881d042d331a4618a9e630ef9bb66305e4fdf8f0391b3b2313fe549f0189 ff968b92f33c266a4bc2cffc897d1937eeb9e406f5d0eaa7a14782e76af3fce9
    8f54ed237b4a04a4159a5f6250a296a902880204e61d891c4da29f2d65f34cbb";
const CAVP_E: &str = "49d2a1";
const CAVP_PASS_MSG: &str = "95123c8d1b236540b86976a11cea31f8bd4e6c54c235147d20ce722b03a6ad75
    6fbd918c27df8ea9ce3104444c0bbe877305bc02e35535a02a58dcda306e632a d30b3dc3ce0ba97fdf46ec192965dd9cd7f4a71b02b8cba3d442646eeec4af59
    0824ca98d74fbca934d0b6867aa1991f3040b707e806de6e66b5934f05509bea";
const CAVP_PASS_SIG: &str = "51265d96f11ab338762891cb29bf3f1d2b3305107063f5f3245af376dfcc7027
    d39365de70a31db05e9e10eb6148cb7f6425f0c93c4fb0e2291adbd22c77656a fc196858a11e1c670d9eeb592613e69eb4f3aa501730743ac4464486c7ae68fd
    509e896f63884e9424f69c1c5397959f1e52a368667a598a1fc90125273d9341 295d2f8e1cc4969bf228c860e07a3546be2eeda1cde48ee94d062801fe666e4a
    7ae8cb9cd79262c017b081af874ff00453ca43e34efdb43fffb0bb42a4e2d32a 5e5cc9e8546a221fe930250e5f5333e0efe58ffebf19369a3b8ae5a67f6a048b
    c9ef915bda25160729b508667ada84a0c27e7e26cf2abca413e5e4693f4a9405";
const CAVP_FAIL_MSG: &str = "f89fd2f6c45a8b5066a651410b8e534bfec0d9a36f3e2b887457afd44dd651d1
    ec79274db5a455f182572fceea5e9e39c3c7c5d9e599e4fe31c37c34d253b419 c3e8fb6b916aef6563f87d4c37224a456e5952698ba3d01b38945d998a795bd2
    85d69478e3131f55117284e27b441f16095dca7ce9c5b68890b09a2bfbb010a5";
const CAVP_FAIL_SIG: &str = "ba48538708512d45c0edcac57a9b4fb637e9721f72003c60f13f5c9a36c968ce
    f9be8f54665418141c3d9ecc02a5bf952cfc055fb51e18705e9d8850f4e1f5a3 44af550de84ffd0805e27e557f6aa50d2645314c64c1c71aa6bb44faf8f29ca6
    578e2441d4510e36052f46551df341b2dcf43f761f08b946ca0b7081dadbb88e 955e820fd7f657c4dd9f4554d167dd7c9a487ed41ced2b40068098deedc95106
    0faf7e15b1f0f80ae67ff2ee28a238d80bf72dd71c8d95c79bc156114ece8ec8 37573a4b66898d45b45a5eacd0b0e41447d8fa08a367f437645e50c9920b88a1
    6bc0880147acfb9a79de9e351b3fa00b3f4e9f182f45553dffca55e393c5eab6";

// PKCS#1 v2.1 test vectors (RSA Laboratories pkcs-1v2-1-vec.zip), pss-vect.txt Example 1.1:
// SHA-1, MGF1-SHA-1, 20-byte salt (= hLen, the only salt length the module accepts).
const PSS1_N: &str = "a56e4a0e701017589a5187dc7ea841d156f2ec0e36ad52a44dfeb1e61f7ad991
    d8c51056ffedb162b4c0f283a12a88a394dff526ab7291cbb307ceabfce0b1df d5cd9508096d5b2b8b6df5d671ef6377c0921cb23c270a70e2598e6ff89d19f1
    05acc2d3f0cb35f29280e1386b6f64c4ef22e1e1f20d0ce8cffb2249bd9a2137";
const PSS1_MSG: &str = "cdc87da223d786df3b45e0bbbc721326d1ee2af806cc315475cc6f0d9c66e1b6
    2371d45ce2392e1ac92844c310102f156a0d8d52c1f4c40ba3aa65095786cb76 9757a6563ba958fed0bcc984e8b517a3d5f515b23b8a41e74aa867693f90dfb0
    61a6e86dfaaee64472c00e5f20945729cbebe77f06ce78e08f4098fba41f9d61 93c0317e8b60d4b6084acb42d29e3808a3bc372d85e331170fcbf7cc72d0b71c
    296648b3a4d10f416295d0807aa625cab2744fd9ea8fd223c42537029828bd16 be02546f130fd2e33b936d2676e08aed1b73318b750a0167d0";
const PSS1_SIG: &str = "9074308fb598e9701b2294388e52f971faac2b60a5145af185df5287b5ed2887
    e57ce7fd44dc8634e407c8e0e4360bc226f3ec227f9d9e54638e8d31f5051215 df6ebb9c2f9579aa77598a38f914b5b9c1bd83c4e2f9f382a0d0aa3542ffee65
    984a601bc69eb28deb27dca12c82c2d4c3f66cd500f1ff2b994d8a4e30cbb33c";

// oaep-vect.txt Example 1.1 (SHA-1, MGF1-SHA-1, empty label): key, message, seed and ciphertext.
const OAEP1_N: &str = "a8b3b284af8eb50b387034a860f146c4919f318763cd6c5598c8ae4811a1e0ab
    c4c7e0b082d693a5e7fced675cf4668512772c0cbc64a742c6c630f533c8cc72 f62ae833c40bf25842e984bb78bdbf97c0107d55bdb662f5c4e0fab9845cb514
    8ef7392dd3aaff93ae1e6b667bb3d4247616d4f5ba10d4cfd226de88d39f16fb";
const OAEP1_D: &str = "53339cfdb79fc8466a655c7316aca85c55fd8f6dd898fdaf119517ef4f52e8fd
    8e258df93fee180fa0e4ab29693cd83b152a553d4ac4d1812b8b9fa5af0e7f55 fe7304df41570926f3311f15c4d65a732c483116ee3d3d2d0af3549ad9bf7cbf
    b78ad884f84d5beb04724dc7369b31def37d0cf539e9cfcdd3de653729ead5d1";
const OAEP1_MSG: &str = "6628194e12073db03ba94cda9ef9532397d50dba79b987004afefe34";
const OAEP1_SEED: &str = "18b776ea21069d69776a33e96bad48e1dda0a5ef";
const OAEP1_CIPHERTEXT: &str = "354fe67b4a126d5d35fe36c777791a3f7ba13def484e2d3908aff722fad468fb
    21696de95d0be911c2d3174f8afcc201035f7b6d8e69402de5451618c21a535f a9d7bfc5b8dd9fc243f8cf927db31322d6e881eaa91a996170e657a05a266426
    d98c88003f8477c1227094a0d9fa1e8c4024309ce1ecccb5210035d47ac72e8a";

// ---------------------------------------------------------------------------------------------
// PEM / DER
// ---------------------------------------------------------------------------------------------

#[test]
fn parses_a_hand_built_rsa_spki() {
    // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { SEQUENCE { INTEGER n, INTEGER e } } }
    // for the 2048-bit CAVP key, every length worked out by hand.
    let der = hex(&format!(
        "30820122 300d 0609 2a864886f70d010101 0500 0382010f 00 3082010a 02820101 00{CAVP_N} 0203 {CAVP_E}"
    ));
    let key = independent::parse_spki_pem(&pem(&der));
    assert_eq!(key, PublicKey::Rsa { n: int(CAVP_N), e: int(CAVP_E) });
    assert_eq!(independent::parse_spki_der(&der), key);

    // CRLF line ends and odd wrapping are legal PEM too.
    let crlf = pem(&der).replace('\n', "\r\n");
    assert_eq!(independent::parse_spki_pem(&crlf), key);
}

#[test]
fn parses_hand_built_ec_spkis_for_every_curve() {
    let id_ec_public_key = "06072a8648ce3d0201";
    let cases = [
        // SEQUENCE(0x59) { SEQUENCE(0x13) { id-ecPublicKey, prime256v1 }, BIT STRING(0x42) { 00 04 X Y } }
        (
            Curve::P256,
            format!("3059 3013 {id_ec_public_key} 06082a8648ce3d030107 034200 04{P256_UX}{P256_UY}"),
            P256_UX,
            P256_UY,
        ),
        (
            Curve::Secp256k1,
            format!("3056 3010 {id_ec_public_key} 06052b8104000a 034200 04{K256_GX}{K256_GY}"),
            K256_GX,
            K256_GY,
        ),
        (
            Curve::P384,
            format!("3076 3010 {id_ec_public_key} 06052b81040022 036200 04{P384_UX}{P384_UY}"),
            P384_UX,
            P384_UY,
        ),
        (
            Curve::Sm2,
            format!("3059 3013 {id_ec_public_key} 06082a811ccf5501822d 034200 04{SM2_PX}{SM2_PY}"),
            SM2_PX,
            SM2_PY,
        ),
    ];
    for (curve, der, x, y) in cases {
        assert_eq!(independent::parse_spki_pem(&pem(&hex(&der))), ec_key(curve, x, y), "{curve:?}");
    }
}

#[test]
fn parses_an_sm2_spki_from_another_implementation() {
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{GMSM_SPKI_B64}\n-----END PUBLIC KEY-----\n");
    assert_eq!(independent::parse_spki_pem(&pem), ec_key(Curve::Sm2, SM2_PX, SM2_PY));
}

#[test]
#[should_panic(expected = "compressed EC points are not supported")]
fn rejects_a_compressed_point() {
    let der = hex(&format!("3039 3013 06072a8648ce3d0201 06082a8648ce3d030107 032200 03{P256_UX}"));
    independent::parse_spki_pem(&pem(&der));
}

#[test]
#[should_panic(expected = "not on the curve")]
fn rejects_a_point_off_the_curve() {
    // The P-256 point presented as a secp256k1 key.
    let der = hex(&format!("3056 3010 06072a8648ce3d0201 06052b8104000a 034200 04{P256_UX}{P256_UY}"));
    independent::parse_spki_pem(&pem(&der));
}

#[test]
#[should_panic(expected = "no `-----BEGIN PUBLIC KEY-----` line")]
fn rejects_a_private_key_pem() {
    independent::parse_spki_pem("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n");
}

#[test]
#[should_panic(expected = "trailing bytes")]
fn rejects_trailing_der() {
    let mut der = hex(&format!("3059 3013 06072a8648ce3d0201 06082a8648ce3d030107 034200 04{P256_UX}{P256_UY}"));
    der.push(0);
    independent::parse_spki_der(&der);
}

#[test]
fn digest_info_prefixes_name_the_published_hash_oids() {
    let expected = [
        (Hash::Sha1, "1.3.14.3.2.26"),
        (Hash::Sha256, "2.16.840.1.101.3.4.2.1"),
        (Hash::Sha384, "2.16.840.1.101.3.4.2.2"),
        (Hash::Sha512, "2.16.840.1.101.3.4.2.3"),
        (Hash::Sm3, "1.2.156.10197.1.401"),
    ];
    for (hash, oid) in expected {
        // DigestInfo ::= SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING digest }, parsed by hand.
        let mut info = independent::digest_info_prefix(hash).to_vec();
        info.extend(independent::digest(hash, b"abc"));
        let mut outer: &[u8] = &info;
        let mut body = take(&mut outer, 0x30);
        assert!(outer.is_empty());
        let mut algorithm = take(&mut body, 0x30);
        assert_eq!(independent::decode_oid(take(&mut algorithm, 0x06)).unwrap(), oid, "{hash:?}");
        assert_eq!(take(&mut algorithm, 0x05), b"");
        assert!(algorithm.is_empty());
        assert_eq!(take(&mut body, 0x04).len(), hash.output_len());
        assert!(body.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Curves and ECDSA
// ---------------------------------------------------------------------------------------------

#[test]
fn curve_constants_are_consistent() {
    for curve in [Curve::P256, Curve::Secp256k1, Curve::P384, Curve::Sm2] {
        let c = curve.params();
        assert!(c.is_on_curve(&c.gx, &c.gy), "{curve:?}: G is not on the curve");
        assert_eq!(c.p.bits(), 8 * curve.field_len() as u64, "{curve:?}");
        let g = c.generator();
        // n is G's order: [n]G = O, and [n-1]G = -G exercises every step of the ladder.
        assert_eq!(c.mul(&c.n, &g), Point::Infinity, "{curve:?}: [n]G != O");
        assert_eq!(c.mul(&(&c.n - 1u32), &g), c.negate(&g), "{curve:?}: [n-1]G != -G");
        assert_eq!(c.add(&g, &c.negate(&g)), Point::Infinity);
    }
}

#[test]
fn ecdsa_p256_rfc6979_vector() {
    let key = ec_key(Curve::P256, P256_UX, P256_UY);
    let digest = independent::digest(Hash::Sha256, b"sample");
    let signature = hex(P256_SIG);
    assert!(independent::ecdsa_verify(&key, &digest, &signature));

    // The RFC's s is "high"; its mirror n - s is the same signature and verifies too.
    let n = Curve::P256.params().n;
    let s = int("F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8");
    let r = int("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716");
    let low_s = [independent::der_integer(&r), independent::der_integer(&(&n - &s))].concat();
    assert!(independent::ecdsa_verify(&key, &digest, &independent::der_tlv(0x30, &low_s)));

    // A flipped bit anywhere in r, in s or in the digest must fail.
    assert!(!independent::ecdsa_verify(&key, &digest, &flip_bit(&signature, 8 * 10 + 3)));
    assert!(!independent::ecdsa_verify(&key, &digest, &flip_bit(&signature, 8 * 60)));
    assert!(!independent::ecdsa_verify(&key, &flip_bit(&digest, 255), &signature));
    assert!(!independent::ecdsa_verify(&key, &independent::digest(Hash::Sha256, b"samplf"), &signature));
    // Malformed DER and out-of-range scalars are rejected, not panicked on.
    assert!(!independent::ecdsa_verify(&key, &digest, &signature[..signature.len() - 1]));
    assert!(!independent::ecdsa_verify(&key, &digest, &hex("3006020100020101")));
    let r_is_n = [independent::der_integer(&n), independent::der_integer(&s)].concat();
    assert!(!independent::ecdsa_verify(&key, &digest, &independent::der_tlv(0x30, &r_is_n)));
}

#[test]
fn ecdsa_p384_rfc6979_vector() {
    let key = ec_key(Curve::P384, P384_UX, P384_UY);
    let digest = independent::digest(Hash::Sha384, b"sample");
    let signature = hex(P384_SIG);
    assert!(independent::ecdsa_verify(&key, &digest, &signature));
    assert!(!independent::ecdsa_verify(&key, &digest, &flip_bit(&signature, 8 * 20)));
    assert!(!independent::ecdsa_verify(&key, &independent::digest(Hash::Sha384, b"Sample"), &signature));
}

#[test]
fn ecdsa_secp256k1_published_vector() {
    let key = ec_key(Curve::Secp256k1, K256_GX, K256_GY);
    let digest = independent::digest(Hash::Sha256, b"Satoshi Nakamoto");
    let signature = hex(K256_SIG);
    assert!(independent::ecdsa_verify(&key, &digest, &signature));
    assert!(!independent::ecdsa_verify(&key, &digest, &flip_bit(&signature, 8 * 40 + 7)));
}

#[test]
fn ecdsa_truncates_long_digests_to_the_order_length() {
    // SEC 1 §4.1.3 step 5: with SHA-512 on P-256 only the leftmost 256 bits count. RFC 6979 signs
    // "sample" with SHA-512 on P-256 too (A.2.5); its r and s:
    let key = ec_key(Curve::P256, P256_UX, P256_UY);
    let r = int("8496A60B5E9B47C825488827E0495B0E3FA109EC4568FD3F8D1097678EB97F00");
    let s = int("2362AB1ADBE2B8ADF9CB9EDAB740EA6049C028114F2460F96554F61FAE3302FE");
    let der = independent::der_tlv(0x30, &[independent::der_integer(&r), independent::der_integer(&s)].concat());
    let digest = independent::digest(Hash::Sha512, b"sample");
    assert!(independent::ecdsa_verify(&key, &digest, &der));
    // Changing only the discarded right half does not matter; changing the left half does.
    assert!(independent::ecdsa_verify(&key, &flip_bit(&digest, 300), &der));
    assert!(!independent::ecdsa_verify(&key, &flip_bit(&digest, 100), &der));
}

#[test]
fn ecdsa_rejects_keys_of_the_wrong_kind() {
    let digest = independent::digest(Hash::Sha256, b"sample");
    let signature = hex(P256_SIG);
    assert!(!independent::ecdsa_verify(&ec_key(Curve::Secp256k1, K256_GX, K256_GY), &digest, &signature));
    assert!(!independent::ecdsa_verify(&ec_key(Curve::Sm2, SM2_PX, SM2_PY), &digest, &signature));
    let rsa = PublicKey::Rsa { n: int(CAVP_N), e: int(CAVP_E) };
    assert!(!independent::ecdsa_verify(&rsa, &digest, &signature));
}

// ---------------------------------------------------------------------------------------------
// SM2
// ---------------------------------------------------------------------------------------------

fn sm2_standard_key() -> PublicKey {
    ec_key(Curve::Sm2, SM2_PX, SM2_PY)
}

/// A textbook SM2 signer (GB/T 32918.2 §6.1 A3-A7) with a caller-chosen nonce.
fn sm2_sign_with_k(d: &BigUint, e: &[u8], k: &BigUint) -> Vec<u8> {
    let c = Curve::Sm2.params();
    let n = &c.n;
    let Point::Affine { x: x1, .. } = c.mul(k, &c.generator()) else { panic!("[k]G = O") };
    let r = (BigUint::from_bytes_be(e) + x1) % n;
    assert!(r != BigUint::ZERO && &r + k != *n, "choose another k");
    let inv = independent::inverse_mod_prime(&(d + 1u32), n);
    let s = inv * ((k + n - (&r * d) % n) % n) % n;
    independent::der_tlv(0x30, &[independent::der_integer(&r), independent::der_integer(&s)].concat())
}

/// A textbook SM2 decryptor (GB/T 32918.4 §7.1) for GM/T 0009 DER ciphertexts.
fn sm2_decrypt_der(d: &BigUint, ciphertext: &[u8]) -> Vec<u8> {
    let c = Curve::Sm2.params();
    let mut outer = ciphertext;
    let mut body = take(&mut outer, 0x30);
    assert!(outer.is_empty(), "trailing bytes after the ciphertext");
    let x1 = BigUint::from_bytes_be(take(&mut body, 0x02));
    let y1 = BigUint::from_bytes_be(take(&mut body, 0x02));
    let c3 = take(&mut body, 0x04);
    let c2 = take(&mut body, 0x04);
    assert!(body.is_empty(), "unexpected fields in the ciphertext");
    assert!(c.is_on_curve(&x1, &y1), "B1: C1 is not on the curve");
    let Point::Affine { x: x2, y: y2 } = c.mul(d, &Point::Affine { x: x1, y: y1 }) else { panic!("[d]C1 = O") };
    let (x2, y2) = (independent::i2osp(&x2, 32).unwrap(), independent::i2osp(&y2, 32).unwrap());
    let t = independent::sm2_kdf(&[x2.as_slice(), y2.as_slice()].concat(), c2.len());
    let message: Vec<u8> = c2.iter().zip(&t).map(|(a, b)| a ^ b).collect();
    let u = independent::digest(Hash::Sm3, &[x2.as_slice(), &message, y2.as_slice()].concat());
    assert_eq!(u, c3, "B6: C3 does not match");
    message
}

#[test]
fn sm2_gbt32918_signature_example() {
    let c = Curve::Sm2.params();
    let d = int(SM2_D);
    // The published public key is [d]G.
    assert_eq!(c.mul(&d, &c.generator()), Point::Affine { x: int(SM2_PX), y: int(SM2_PY) });

    let key = sm2_standard_key();
    assert_eq!(independent::sm2_za(&key, independent::SM2_DEFAULT_ID), hex(SM2_ZA));
    let e = independent::sm2_message_digest(&key, b"1234567812345678", b"message digest");
    assert_eq!(e, independent::digest(Hash::Sm3, &[hex(SM2_ZA), b"message digest".to_vec()].concat()));

    let signature = independent::der_tlv(
        0x30,
        &[independent::der_integer(&int(SM2_R)), independent::der_integer(&int(SM2_S))].concat(),
    );
    assert!(independent::sm2_verify(&key, &e, &signature));
    assert!(!independent::sm2_verify(&key, &flip_bit(&e, 7), &signature));
    assert!(!independent::sm2_verify(&key, &e, &flip_bit(&signature, 8 * 30)));
    // A different identity changes Z_A and so e.
    let other_id = independent::sm2_message_digest(&key, b"ALICE123@YAHOO.COM", b"message digest");
    assert!(!independent::sm2_verify(&key, &other_id, &signature));

    // The textbook signer reproduces the published signature from the published nonce...
    assert_eq!(sm2_sign_with_k(&d, &e, &int(SM2_K)), signature);
}

#[test]
fn sm2_textbook_signer_and_verifier_agree() {
    let key = sm2_standard_key();
    let d = int(SM2_D);
    let e = independent::sm2_message_digest(&key, independent::SM2_DEFAULT_ID, b"kmsim interoperability");
    for k in ["01", "7FFFFFFF", SM2_K, "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54122"] {
        let signature = sm2_sign_with_k(&d, &e, &int(k));
        assert!(independent::sm2_verify(&key, &e, &signature), "k = {k}");
        assert!(!independent::sm2_verify(&key, &flip_bit(&e, 200), &signature), "k = {k}");
    }
    // SM2 signatures are not ECDSA signatures, and the verifiers refuse each other's keys.
    let signature = sm2_sign_with_k(&d, &e, &int(SM2_K));
    assert!(!independent::ecdsa_verify(&key, &e, &signature));
    assert!(!independent::sm2_verify(&ec_key(Curve::P256, P256_UX, P256_UY), &e, &signature));
    assert!(!independent::sm2_verify(&key, &e[..31], &signature));
}

#[test]
fn sm2_verifies_a_signature_from_another_implementation() {
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{GMSM_SPKI_B64}\n-----END PUBLIC KEY-----\n");
    let key = independent::parse_spki_pem(&pem);
    let e = independent::sm2_message_digest(&key, independent::SM2_DEFAULT_ID, b"message digest");
    assert!(independent::sm2_verify(&key, &e, &hex(GMSM_SIG)));
    let e = independent::sm2_message_digest(&key, independent::SM2_DEFAULT_ID, b"message digest!");
    assert!(!independent::sm2_verify(&key, &e, &hex(GMSM_SIG)));
}

#[test]
fn sm2_gmt0003_encryption_example() {
    let ciphertext = independent::sm2_encrypt_der_with_k(&sm2_standard_key(), b"encryption standard", &int(SM2_K));
    assert_eq!(ciphertext, hex(SM2_ANNEX_C_DER));
    assert_eq!(sm2_decrypt_der(&int(SM2_D), &ciphertext), b"encryption standard");
}

#[test]
fn sm2_textbook_decryptor_reads_another_implementations_ciphertext() {
    // Pins the decryptor (and with it the KDF, C3 and field order) to a third party's output.
    assert_eq!(sm2_decrypt_der(&int(SM2_D), &hex(GMSM_CIPHERTEXT)), b"0123456789abcdef");
}

#[test]
fn sm2_random_encryption_is_well_formed_and_decrypts() {
    let key = sm2_standard_key();
    let c = Curve::Sm2.params();
    for len in [1usize, 31, 32, 33, 200] {
        let message: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let ciphertext = independent::sm2_encrypt_der(&key, &message);

        // SEQUENCE { INTEGER x1, INTEGER y1, OCTET STRING C3 (32), OCTET STRING C2 (len) }, with
        // minimal INTEGERs: at most 33 bytes, a leading zero only before a set top bit.
        let mut outer: &[u8] = &ciphertext;
        let mut body = take(&mut outer, 0x30);
        assert!(outer.is_empty());
        let mut coordinates = Vec::new();
        for _ in 0..2 {
            let integer = take(&mut body, 0x02);
            assert!((1..=33).contains(&integer.len()), "INTEGER of {} bytes", integer.len());
            assert!(integer[0] & 0x80 == 0, "negative INTEGER");
            if integer.len() > 1 {
                assert!(integer[0] != 0 || integer[1] & 0x80 != 0, "non-minimal INTEGER");
            }
            coordinates.push(BigUint::from_bytes_be(integer));
        }
        assert!(c.is_on_curve(&coordinates[0], &coordinates[1]), "C1 not on the curve");
        assert_eq!(take(&mut body, 0x04).len(), 32, "C3 is an SM3 digest");
        assert_eq!(take(&mut body, 0x04).len(), len, "C2 is as long as the message");
        assert!(body.is_empty());

        assert_eq!(sm2_decrypt_der(&int(SM2_D), &ciphertext), message);
    }
    // Fresh randomness each time.
    assert_ne!(independent::sm2_encrypt_der(&key, b"x"), independent::sm2_encrypt_der(&key, b"x"));
}

// ---------------------------------------------------------------------------------------------
// RSA
// ---------------------------------------------------------------------------------------------

#[test]
fn rsa_pkcs1v15_nist_cavp_vectors() {
    let key = PublicKey::Rsa { n: int(CAVP_N), e: int(CAVP_E) };
    let digest = independent::digest(Hash::Sha256, &hex(CAVP_PASS_MSG));
    let signature = hex(CAVP_PASS_SIG);
    assert!(independent::rsa_verify_pkcs1v15(&key, Hash::Sha256, &digest, &signature));

    // CAVP's "Result = F" record.
    let failing = independent::digest(Hash::Sha256, &hex(CAVP_FAIL_MSG));
    assert!(!independent::rsa_verify_pkcs1v15(&key, Hash::Sha256, &failing, &hex(CAVP_FAIL_SIG)));

    // Tampering, the wrong hash, the wrong scheme and a short signature all fail.
    assert!(!independent::rsa_verify_pkcs1v15(&key, Hash::Sha256, &flip_bit(&digest, 3), &signature));
    assert!(!independent::rsa_verify_pkcs1v15(&key, Hash::Sha256, &digest, &flip_bit(&signature, 1000)));
    let sha384 = independent::digest(Hash::Sha384, &hex(CAVP_PASS_MSG));
    assert!(!independent::rsa_verify_pkcs1v15(&key, Hash::Sha384, &sha384, &signature));
    assert!(!independent::rsa_verify_pss(&key, Hash::Sha256, &digest, &signature));
    assert!(!independent::rsa_verify_pkcs1v15(&key, Hash::Sha256, &digest, &signature[1..]));
}

#[test]
fn rsa_pss_pkcs1_example_1_1() {
    let key = PublicKey::Rsa { n: int(PSS1_N), e: int("010001") };
    let digest = independent::digest(Hash::Sha1, &hex(PSS1_MSG));
    let signature = hex(PSS1_SIG);
    assert!(independent::rsa_verify_pss(&key, Hash::Sha1, &digest, &signature));
    assert!(!independent::rsa_verify_pss(&key, Hash::Sha1, &flip_bit(&digest, 0), &signature));
    assert!(!independent::rsa_verify_pss(&key, Hash::Sha1, &digest, &flip_bit(&signature, 500)));
    assert!(!independent::rsa_verify_pkcs1v15(&key, Hash::Sha1, &digest, &signature));
}

/// RSADP / RSASP1 with a private exponent, I2OSP'd to the modulus length.
fn rsa_private(n: &BigUint, d: &BigUint, input: &[u8]) -> Vec<u8> {
    let k = n.bits().div_ceil(8) as usize;
    independent::i2osp(&BigUint::from_bytes_be(input).modpow(d, n), k).unwrap()
}

/// EME-OAEP decoding (RFC 8017 §7.1.2 step 3), panicking on any inconsistency.
fn rsa_oaep_decrypt(n: &BigUint, d: &BigUint, hash: Hash, ciphertext: &[u8]) -> Vec<u8> {
    let h_len = hash.output_len();
    let em = rsa_private(n, d, ciphertext);
    assert_eq!(em[0], 0, "Y != 0");
    let (masked_seed, masked_db) = em[1..].split_at(h_len);
    let seed: Vec<u8> = masked_seed.iter().zip(independent::mgf1(hash, masked_db, h_len)).map(|(a, b)| a ^ b).collect();
    let db: Vec<u8> =
        masked_db.iter().zip(independent::mgf1(hash, &seed, masked_db.len())).map(|(a, b)| a ^ b).collect();
    assert_eq!(db[..h_len], independent::digest(hash, b""), "lHash mismatch");
    let rest = &db[h_len..];
    let one = rest.iter().position(|&b| b != 0).expect("no 0x01 separator");
    assert_eq!(rest[one], 0x01, "bad separator");
    rest[one + 1..].to_vec()
}

#[test]
fn rsa_oaep_pkcs1_example_1_1() {
    let key = PublicKey::Rsa { n: int(OAEP1_N), e: int("010001") };
    let ciphertext = independent::rsa_oaep_encrypt_with_seed(&key, Hash::Sha1, &hex(OAEP1_MSG), &hex(OAEP1_SEED));
    assert_eq!(ciphertext, hex(OAEP1_CIPHERTEXT));

    // With a random seed, the published private key still recovers the message.
    let random = independent::rsa_oaep_encrypt(&key, Hash::Sha1, &hex(OAEP1_MSG));
    assert_ne!(random, ciphertext);
    assert_eq!(rsa_oaep_decrypt(&int(OAEP1_N), &int(OAEP1_D), Hash::Sha1, &random), hex(OAEP1_MSG));
}

/// A test key built from known primes: (n, e, d).
fn textbook_rsa_key(p: &BigUint, q: &BigUint) -> (BigUint, BigUint, BigUint) {
    let e = BigUint::from(65537u32);
    let phi = (p - 1u32) * (q - 1u32);
    let d = e.modinv(&phi).expect("e must be coprime to (p-1)(q-1)");
    (p * q, e, d)
}

/// EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with an explicit salt, for the test-side signer.
fn pss_encode(hash: Hash, digest: &[u8], salt: &[u8], em_bits: usize) -> Vec<u8> {
    let h_len = hash.output_len();
    let em_len = em_bits.div_ceil(8);
    let m_prime = [&[0u8; 8][..], digest, salt].concat();
    let h = independent::digest(hash, &m_prime);
    let mut db = vec![0u8; em_len - salt.len() - h_len - 2];
    db.push(0x01);
    db.extend_from_slice(salt);
    let mut masked_db: Vec<u8> = db.iter().zip(independent::mgf1(hash, &h, db.len())).map(|(a, b)| a ^ b).collect();
    masked_db[0] &= 0xff >> (8 * em_len - em_bits);
    [masked_db, h, vec![0xbc]].concat()
}

#[test]
fn rsa_round_trips_through_textbook_private_keys() {
    let mersenne = |exponent: u32| (BigUint::from(1u32) << exponent) - 1u32;
    let secp256k1_p = Curve::Secp256k1.params().p;
    // 2^521-1 times the secp256k1 field prime is a 777-bit modulus (modBits = 8j + 1, so the PSS
    // encoding is one byte shorter than the modulus); (2^607-1)(2^1279-1) is a 1886-bit one.
    let keys = [textbook_rsa_key(&mersenne(521), &secp256k1_p), textbook_rsa_key(&mersenne(607), &mersenne(1279))];
    assert_eq!(keys[0].0.bits(), 777);
    assert_eq!(keys[1].0.bits(), 1886);

    for (n, e, d) in keys {
        let key = PublicKey::Rsa { n: n.clone(), e };
        let k = n.bits().div_ceil(8) as usize;
        for hash in [Hash::Sha1, Hash::Sha256, Hash::Sha384, Hash::Sha512] {
            let h_len = hash.output_len();
            let digest = independent::digest(hash, b"kmsim interoperability");

            // PKCS#1 v1.5: EM = 00 01 FF..FF 00 DigestInfo.
            let t = [independent::digest_info_prefix(hash), &digest].concat();
            let em = [vec![0x00, 0x01], vec![0xff; k - t.len() - 3], vec![0x00], t].concat();
            let signature = rsa_private(&n, &d, &em);
            assert!(independent::rsa_verify_pkcs1v15(&key, hash, &digest, &signature), "{hash:?}/{}", n.bits());
            assert!(!independent::rsa_verify_pkcs1v15(&key, hash, &flip_bit(&digest, 9), &signature));

            // PSS with a salt of hLen bytes, when the modulus is big enough for it.
            let em_bits = n.bits() as usize - 1;
            if em_bits.div_ceil(8) >= 2 * h_len + 2 {
                let salt: Vec<u8> = (0..h_len as u8).collect();
                let signature = rsa_private(&n, &d, &pss_encode(hash, &digest, &salt, em_bits));
                assert!(independent::rsa_verify_pss(&key, hash, &digest, &signature), "{hash:?}/{}", n.bits());
                assert!(!independent::rsa_verify_pss(&key, hash, &flip_bit(&digest, 9), &signature));
                assert!(!independent::rsa_verify_pkcs1v15(&key, hash, &digest, &signature));
                // Any other salt length is refused.
                let short_salt = rsa_private(&n, &d, &pss_encode(hash, &digest, &salt[..h_len - 1], em_bits));
                assert!(!independent::rsa_verify_pss(&key, hash, &digest, &short_salt));
            }

            // OAEP, up to the longest message the key takes (none at all for SHA-512 on 777 bits).
            let Some(longest) = k.checked_sub(2 * h_len + 2) else { continue };
            for len in [0, 1, longest].into_iter().filter(|&len| len <= longest) {
                let message: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
                let ciphertext = independent::rsa_oaep_encrypt(&key, hash, &message);
                assert_eq!(ciphertext.len(), k);
                assert_eq!(rsa_oaep_decrypt(&n, &d, hash, &ciphertext), message, "{hash:?}/{}/{len}", n.bits());
            }
        }
    }
}

#[test]
#[should_panic(expected = "too long")]
fn rsa_oaep_refuses_oversized_messages() {
    let key = PublicKey::Rsa { n: int(OAEP1_N), e: int("010001") };
    independent::rsa_oaep_encrypt(&key, Hash::Sha256, &[0u8; 128 - 2 * 32 - 1]);
}
