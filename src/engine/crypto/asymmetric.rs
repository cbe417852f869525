//! Asymmetric keys: RSA (PSS, PKCS#1 v1.5, OAEP), ECDSA on P-256, secp256k1 and
//! P-384, and SM2 (SM2DSA, SM2PKE). Private keys are kept as PKCS#8 DER;
//! signatures sign a precomputed digest; ECDSA and SM2 signatures and SM2
//! ciphertexts are ASN.1 DER, as Alibaba and AWS return them.

use p256::elliptic_curve::Generate;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{Oaep, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use zeroize::Zeroizing;

use super::{CryptoFailure, HashAlg};

/// Runs `$body` with `$digest` bound to the SHA-2 type of `$hash`; `None` for other hashes.
macro_rules! with_sha2 {
    ($hash:expr, $digest:ident => $body:expr) => {
        match $hash {
            HashAlg::Sha256 => {
                type $digest = sha2::Sha256;
                Some($body)
            }
            HashAlg::Sha384 => {
                type $digest = sha2::Sha384;
                Some($body)
            }
            HashAlg::Sha512 => {
                type $digest = sha2::Sha512;
                Some($body)
            }
            _ => None,
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsymmetricKind {
    Rsa { bits: usize },
    P256,
    P256k,
    P384,
    P521,
    Sm2,
}

/// A signature scheme over a digest of the named hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignScheme {
    RsaPss(HashAlg),
    RsaPkcs1(HashAlg),
    Ecdsa(HashAlg),
    /// Over e = SM3(Z_A || M), with the default distinguishing identifier.
    Sm2Dsa,
}

/// What is signed: a digest the client computed, or a message kmsim hashes
/// (for SM2DSA, with Z_A, as GB/T 32918 prescribes).
#[derive(Debug, Clone, Copy)]
pub enum Signable<'a> {
    Digest(&'a [u8]),
    Message(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncryptScheme {
    RsaOaep(HashAlg),
    Sm2Pke,
}

impl SignScheme {
    /// The hash whose output the scheme signs.
    pub fn hash(self) -> HashAlg {
        match self {
            SignScheme::RsaPss(h) | SignScheme::RsaPkcs1(h) | SignScheme::Ecdsa(h) => h,
            SignScheme::Sm2Dsa => HashAlg::Sm3,
        }
    }
}

/// The largest SM2PKE plaintext accepted, as Alibaba documents.
pub const SM2_MAX_PLAINTEXT: usize = 6047;

impl AsymmetricKind {
    pub fn can_encrypt(self) -> bool {
        matches!(self, AsymmetricKind::Rsa { .. } | AsymmetricKind::Sm2)
    }

    /// Whether its keys can agree a shared secret (ECDH on a NIST or secp256k1 curve).
    pub fn can_agree(self) -> bool {
        matches!(self, AsymmetricKind::P256 | AsymmetricKind::P256k | AsymmetricKind::P384 | AsymmetricKind::P521)
    }

    /// The schemes a key of this kind signs with.
    pub fn signs_with(self, scheme: SignScheme) -> bool {
        match (self, scheme) {
            (AsymmetricKind::Rsa { .. }, SignScheme::RsaPss(h) | SignScheme::RsaPkcs1(h)) => {
                matches!(h, HashAlg::Sha256 | HashAlg::Sha384 | HashAlg::Sha512)
            }
            (AsymmetricKind::P256 | AsymmetricKind::P256k, SignScheme::Ecdsa(HashAlg::Sha256)) => true,
            (AsymmetricKind::P384, SignScheme::Ecdsa(HashAlg::Sha384)) => true,
            (AsymmetricKind::P521, SignScheme::Ecdsa(HashAlg::Sha512)) => true,
            (AsymmetricKind::Sm2, SignScheme::Sm2Dsa) => true,
            _ => false,
        }
    }

    pub fn encrypts_with(self, scheme: EncryptScheme) -> bool {
        matches!(
            (self, scheme),
            (AsymmetricKind::Rsa { .. }, EncryptScheme::RsaOaep(HashAlg::Sha1 | HashAlg::Sha256))
                | (AsymmetricKind::Sm2, EncryptScheme::Sm2Pke)
        )
    }

    /// The largest plaintext `scheme` can encrypt under a key of this kind.
    pub fn max_plaintext(self, scheme: EncryptScheme) -> usize {
        match (self, scheme) {
            // RFC 8017 7.1.1: k - 2 hLen - 2.
            (AsymmetricKind::Rsa { bits }, EncryptScheme::RsaOaep(h)) => bits / 8 - 2 * h.output_len() - 2,
            _ => SM2_MAX_PLAINTEXT,
        }
    }

    /// A new private key, as PKCS#8 DER.
    pub fn generate(self) -> Zeroizing<Vec<u8>> {
        let mut rng = crate::engine::crypto::rng();
        let document = match self {
            AsymmetricKind::Rsa { bits } => {
                RsaPrivateKey::new(&mut rng, bits).expect("RSA key generation").to_pkcs8_der()
            }
            AsymmetricKind::P256 => p256::SecretKey::generate_from_rng(&mut rng).to_pkcs8_der(),
            AsymmetricKind::P256k => k256::SecretKey::generate_from_rng(&mut rng).to_pkcs8_der(),
            AsymmetricKind::P384 => p384::SecretKey::generate_from_rng(&mut rng).to_pkcs8_der(),
            AsymmetricKind::P521 => p521::SecretKey::generate_from_rng(&mut rng).to_pkcs8_der(),
            AsymmetricKind::Sm2 => sm2::SecretKey::generate_from_rng(&mut rng).to_pkcs8_der(),
        }
        .expect("a fresh key encodes as PKCS#8");
        Zeroizing::new(document.as_bytes().to_vec())
    }
}

impl AsymmetricKind {
    /// A private key given as PEM (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY`
    /// or SEC1 `EC PRIVATE KEY`) as the PKCS#8 DER kmsim keeps, if it is a key of
    /// this kind (and, for RSA, of this size). The error says what is wrong
    /// without repeating any of the key.
    pub fn pkcs8_from_pem(self, pem: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        let (label, der) =
            pem_rfc7468::decode_vec(pem.trim().as_bytes()).map_err(|_| "the private key is not PEM".to_owned())?;
        let der = Zeroizing::new(der);
        // SEC1 keys re-encoded as PKCS#8; the curve is the spec's.
        macro_rules! sec1 {
            ($curve:ident) => {
                $curve::SecretKey::from_sec1_der(&der)
                    .ok()
                    .and_then(|k| k.to_pkcs8_der().ok())
                    .map(|d| Zeroizing::new(d.as_bytes().to_vec()))
            };
        }
        let pkcs8 = match (label, self) {
            ("PRIVATE KEY", _) => Some(der),
            ("RSA PRIVATE KEY", AsymmetricKind::Rsa { .. }) => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                RsaPrivateKey::from_pkcs1_der(&der)
                    .ok()
                    .and_then(|k| k.to_pkcs8_der().ok())
                    .map(|d| Zeroizing::new(d.as_bytes().to_vec()))
            }
            ("EC PRIVATE KEY", AsymmetricKind::P256) => sec1!(p256),
            ("EC PRIVATE KEY", AsymmetricKind::P256k) => sec1!(k256),
            ("EC PRIVATE KEY", AsymmetricKind::P384) => sec1!(p384),
            ("EC PRIVATE KEY", AsymmetricKind::P521) => sec1!(p521),
            ("EC PRIVATE KEY", AsymmetricKind::Sm2) => sec1!(sm2),
            (label, _) => return Err(format!("a {label} PEM block is not a private key of this spec")),
        }
        .ok_or_else(|| "the PEM block does not hold a private key of this spec".to_owned())?;
        match ParsedKey::from_pkcs8(self, &pkcs8) {
            Ok(ParsedKey::Rsa(key)) => {
                use rsa::traits::PublicKeyParts;
                let AsymmetricKind::Rsa { bits } = self else { unreachable!("from_pkcs8 parsed RSA for an RSA kind") };
                if key.n().bits() as usize != bits {
                    return Err(format!("the RSA key has {} bits, the spec {bits}", key.n().bits()));
                }
                Ok(pkcs8)
            }
            Ok(_) => Ok(pkcs8),
            Err(_) => Err("the private key is not a key of this spec".to_owned()),
        }
    }
}

/// A private key ready for use.
pub enum ParsedKey {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P256k(k256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    /// Both halves are built once at parse time: each derives the public key
    /// (and the signer hashes Z_A), which would otherwise dominate every call.
    Sm2 {
        signer: Box<sm2::dsa::SigningKey>,
        decrypter: Box<sm2::pke::DecryptingKey>,
    },
}

impl ParsedKey {
    pub fn from_pkcs8(kind: AsymmetricKind, der: &[u8]) -> Result<ParsedKey, CryptoFailure> {
        let parsed = match kind {
            AsymmetricKind::Rsa { .. } => RsaPrivateKey::from_pkcs8_der(der).map(|k| ParsedKey::Rsa(Box::new(k))).ok(),
            AsymmetricKind::P256 => p256::ecdsa::SigningKey::from_pkcs8_der(der).map(ParsedKey::P256).ok(),
            AsymmetricKind::P256k => k256::ecdsa::SigningKey::from_pkcs8_der(der).map(ParsedKey::P256k).ok(),
            AsymmetricKind::P384 => p384::ecdsa::SigningKey::from_pkcs8_der(der).map(ParsedKey::P384).ok(),
            AsymmetricKind::P521 => p521::ecdsa::SigningKey::from_pkcs8_der(der).map(ParsedKey::P521).ok(),
            AsymmetricKind::Sm2 => sm2::SecretKey::from_pkcs8_der(der).ok().and_then(|secret| {
                let signer = sm2::dsa::SigningKey::new(sm2_default_id(), &secret).ok()?;
                let decrypter = sm2::pke::DecryptingKey::new(secret);
                Some(ParsedKey::Sm2 { signer: Box::new(signer), decrypter: Box::new(decrypter) })
            }),
        };
        parsed.ok_or(CryptoFailure)
    }

    /// ECDH (SP 800-56A's primitive: the x-coordinate of the shared point) between this private
    /// key and a peer's public key on the same curve, given as DER SubjectPublicKeyInfo.
    pub fn derive_shared_secret(&self, peer_public_der: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoFailure> {
        use p256::elliptic_curve::point::AffineCoordinates;
        use rsa::pkcs8::DecodePublicKey;
        let x = match self {
            ParsedKey::P256(key) => {
                let peer = p256::PublicKey::from_public_key_der(peer_public_der).map_err(|_| CryptoFailure)?;
                (peer.to_projective() * **key.as_nonzero_scalar()).to_affine().x().to_vec()
            }
            ParsedKey::P256k(key) => {
                let peer = k256::PublicKey::from_public_key_der(peer_public_der).map_err(|_| CryptoFailure)?;
                (peer.to_projective() * **key.as_nonzero_scalar()).to_affine().x().to_vec()
            }
            ParsedKey::P384(key) => {
                let peer = p384::PublicKey::from_public_key_der(peer_public_der).map_err(|_| CryptoFailure)?;
                (peer.to_projective() * **key.as_nonzero_scalar()).to_affine().x().to_vec()
            }
            ParsedKey::P521(key) => {
                let peer = p521::PublicKey::from_public_key_der(peer_public_der).map_err(|_| CryptoFailure)?;
                (peer.to_projective() * **key.as_nonzero_scalar()).to_affine().x().to_vec()
            }
            ParsedKey::Rsa(_) | ParsedKey::Sm2 { .. } => return Err(CryptoFailure),
        };
        Ok(Zeroizing::new(x))
    }

    /// The public key as PEM SubjectPublicKeyInfo.
    pub fn public_key_pem(&self) -> String {
        let pem = match self {
            ParsedKey::Rsa(key) => RsaPublicKey::from(key.as_ref()).to_public_key_pem(LineEnding::LF),
            ParsedKey::P256(key) => key.verifying_key().to_public_key_pem(LineEnding::LF),
            ParsedKey::P256k(key) => key.verifying_key().to_public_key_pem(LineEnding::LF),
            ParsedKey::P384(key) => key.verifying_key().to_public_key_pem(LineEnding::LF),
            ParsedKey::P521(key) => key.verifying_key().to_public_key_pem(LineEnding::LF),
            ParsedKey::Sm2 { decrypter, .. } => sm2::PublicKey::from_affine(*decrypter.encrypting_key().as_affine())
                .map_err(|_| rsa::pkcs8::spki::Error::KeyMalformed)
                .and_then(|public| public.to_public_key_pem(LineEnding::LF)),
        };
        pem.expect("a valid public key encodes as PEM")
    }

    /// Signs a digest (whose length the caller has checked) or a message.
    pub fn sign(&self, scheme: SignScheme, input: Signable<'_>) -> Result<Vec<u8>, CryptoFailure> {
        let digest = match (self, scheme, input) {
            (ParsedKey::Sm2 { signer, .. }, SignScheme::Sm2Dsa, Signable::Message(message)) => {
                let signature: sm2::dsa::Signature = signer.try_sign(message).map_err(|_| CryptoFailure)?;
                return Ok(sm2::dsa::DerSignature::from(signature).to_vec());
            }
            (_, _, Signable::Message(message)) => scheme.hash().digest(message),
            (_, _, Signable::Digest(digest)) => digest.to_vec(),
        };
        self.sign_digest(scheme, &digest)
    }

    /// Whether `signature` is valid for the digest or message; malformed signatures are simply invalid.
    pub fn verify(&self, scheme: SignScheme, input: Signable<'_>, signature: &[u8]) -> bool {
        let digest = match (self, scheme, input) {
            (ParsedKey::Sm2 { signer, .. }, SignScheme::Sm2Dsa, Signable::Message(message)) => {
                return sm2::dsa::DerSignature::try_from(signature)
                    .and_then(sm2::dsa::Signature::try_from)
                    .is_ok_and(|s| signer.verifying_key().verify(message, &s).is_ok());
            }
            (_, _, Signable::Message(message)) => scheme.hash().digest(message),
            (_, _, Signable::Digest(digest)) => digest.to_vec(),
        };
        self.verify_digest(scheme, &digest, signature)
    }

    fn sign_digest(&self, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, CryptoFailure> {
        let signature = match (self, scheme) {
            (ParsedKey::Rsa(key), SignScheme::RsaPss(h)) => {
                with_sha2!(h, D => key.sign_with_rng(&mut crate::engine::crypto::rng(), Pss::<D>::new(), digest).ok())
                    .flatten()
            }
            (ParsedKey::Rsa(key), SignScheme::RsaPkcs1(h)) => {
                with_sha2!(h, D => key.sign(Pkcs1v15Sign::new::<D>(), digest).ok()).flatten()
            }
            (ParsedKey::P256(key), SignScheme::Ecdsa(_)) => {
                PrehashSigner::<p256::ecdsa::DerSignature>::sign_prehash(key, digest).ok().map(|s| s.to_vec())
            }
            (ParsedKey::P256k(key), SignScheme::Ecdsa(_)) => {
                PrehashSigner::<k256::ecdsa::DerSignature>::sign_prehash(key, digest).ok().map(|s| s.to_vec())
            }
            (ParsedKey::P384(key), SignScheme::Ecdsa(_)) => {
                PrehashSigner::<p384::ecdsa::DerSignature>::sign_prehash(key, digest).ok().map(|s| s.to_vec())
            }
            (ParsedKey::P521(key), SignScheme::Ecdsa(_)) => {
                PrehashSigner::<p521::ecdsa::DerSignature>::sign_prehash(key, digest).ok().map(|s| s.to_vec())
            }
            (ParsedKey::Sm2 { signer, .. }, SignScheme::Sm2Dsa) => {
                PrehashSigner::<sm2::dsa::Signature>::sign_prehash(signer.as_ref(), digest)
                    .ok()
                    .map(|s| sm2::dsa::DerSignature::from(s).to_vec())
            }
            _ => None,
        };
        signature.ok_or(CryptoFailure)
    }

    fn verify_digest(&self, scheme: SignScheme, digest: &[u8], signature: &[u8]) -> bool {
        match (self, scheme) {
            (ParsedKey::Rsa(key), SignScheme::RsaPss(h)) => {
                let public = RsaPublicKey::from(key.as_ref());
                with_sha2!(h, D => public.verify(Pss::<D>::new(), digest, signature).is_ok()) == Some(true)
            }
            (ParsedKey::Rsa(key), SignScheme::RsaPkcs1(h)) => {
                let public = RsaPublicKey::from(key.as_ref());
                with_sha2!(h, D => public.verify(Pkcs1v15Sign::new::<D>(), digest, signature).is_ok()) == Some(true)
            }
            (ParsedKey::P256(key), SignScheme::Ecdsa(_)) => p256::ecdsa::DerSignature::try_from(signature)
                .is_ok_and(|s| key.verifying_key().verify_prehash(digest, &s).is_ok()),
            (ParsedKey::P256k(key), SignScheme::Ecdsa(_)) => k256::ecdsa::DerSignature::try_from(signature)
                .is_ok_and(|s| key.verifying_key().verify_prehash(digest, &s).is_ok()),
            (ParsedKey::P384(key), SignScheme::Ecdsa(_)) => p384::ecdsa::DerSignature::try_from(signature)
                .is_ok_and(|s| key.verifying_key().verify_prehash(digest, &s).is_ok()),
            (ParsedKey::P521(key), SignScheme::Ecdsa(_)) => p521::ecdsa::DerSignature::try_from(signature)
                .is_ok_and(|s| key.verifying_key().verify_prehash(digest, &s).is_ok()),
            (ParsedKey::Sm2 { signer, .. }, SignScheme::Sm2Dsa) => sm2::dsa::DerSignature::try_from(signature)
                .and_then(sm2::dsa::Signature::try_from)
                .is_ok_and(|s| signer.verifying_key().verify_prehash(digest, &s).is_ok()),
            _ => false,
        }
    }

    pub fn encrypt(&self, scheme: EncryptScheme, plaintext: &[u8]) -> Result<Vec<u8>, CryptoFailure> {
        let mut rng = crate::engine::crypto::rng();
        let ciphertext = match (self, scheme) {
            (ParsedKey::Rsa(key), EncryptScheme::RsaOaep(HashAlg::Sha256)) => {
                RsaPublicKey::from(key.as_ref()).encrypt(&mut rng, Oaep::<sha2::Sha256>::new(), plaintext).ok()
            }
            (ParsedKey::Rsa(key), EncryptScheme::RsaOaep(HashAlg::Sha1)) => {
                RsaPublicKey::from(key.as_ref()).encrypt(&mut rng, Oaep::<sha1::Sha1>::new(), plaintext).ok()
            }
            (ParsedKey::Sm2 { decrypter, .. }, EncryptScheme::Sm2Pke) => {
                decrypter.encrypting_key().encrypt_der(&mut rng, plaintext).ok()
            }
            _ => None,
        };
        ciphertext.ok_or(CryptoFailure)
    }

    pub fn decrypt(&self, scheme: EncryptScheme, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoFailure> {
        let plaintext = match (self, scheme) {
            (ParsedKey::Rsa(key), EncryptScheme::RsaOaep(HashAlg::Sha256)) => {
                key.decrypt(Oaep::<sha2::Sha256>::new(), ciphertext).ok()
            }
            (ParsedKey::Rsa(key), EncryptScheme::RsaOaep(HashAlg::Sha1)) => {
                key.decrypt(Oaep::<sha1::Sha1>::new(), ciphertext).ok()
            }
            (ParsedKey::Sm2 { decrypter, .. }, EncryptScheme::Sm2Pke) => decrypter.decrypt_der(ciphertext).ok(),
            _ => None,
        };
        plaintext.map(Zeroizing::new).ok_or(CryptoFailure)
    }
}

/// SM2's default distinguishing identifier (GB/T 35276): only used to build
/// the signer; AsymmetricSign receives e = SM3(Z_A || M) already computed.
fn sm2_default_id() -> &'static str {
    "1234567812345678"
}
