//! Interoperability: kmsim's signatures verify, and outside ciphertexts decrypt,
//! against the textbook implementations in `support/independent.rs`, given
//! only the PEM that GetPublicKey returns.

mod common;
#[path = "support/independent.rs"]
mod independent;

use common::*;
use independent::{Hash, PublicKey};
use kmsim::proto as pb;

async fn create(kms: &mut Kms, spec: &str, usage: &str) -> String {
    let request = pb::CreateKeyRequest { key_spec: spec.into(), key_usage: usage.into(), ..Default::default() };
    kms.create_key(request).await.unwrap().into_inner().key_metadata.unwrap().key_id
}

async fn public_key(kms: &mut Kms, key_id: &str) -> PublicKey {
    let request = pb::GetPublicKeyRequest { key_id: key_id.into(), ..Default::default() };
    independent::parse_spki_pem(&kms.get_public_key(request).await.unwrap().into_inner().public_key)
}

async fn sign(kms: &mut Kms, key_id: &str, algorithm: &str, digest: Vec<u8>) -> Vec<u8> {
    let request =
        pb::AsymmetricSignRequest { key_id: key_id.into(), algorithm: algorithm.into(), digest, ..Default::default() };
    kms.asymmetric_sign(request).await.unwrap_or_else(|e| panic!("{algorithm}: {e:?}")).into_inner().signature
}

async fn decrypt(kms: &mut Kms, key_id: &str, algorithm: &str, ciphertext_blob: Vec<u8>) -> Vec<u8> {
    let request = pb::AsymmetricDecryptRequest {
        key_id: key_id.into(),
        algorithm: algorithm.into(),
        ciphertext_blob,
        ..Default::default()
    };
    kms.asymmetric_decrypt(request).await.unwrap_or_else(|e| panic!("{algorithm}: {e:?}")).into_inner().plaintext
}

#[tokio::test]
async fn rsa_signatures_verify_independently() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for spec in ["RSA_2048", "RSA_3072"] {
        let key_id = create(&mut kms, spec, "SIGN/VERIFY").await;
        let public = public_key(&mut kms, &key_id).await;
        for (algorithm, hash) in [
            ("RSA_PSS_SHA_256", Hash::Sha256),
            ("RSA_PSS_SHA_384", Hash::Sha384),
            ("RSA_PSS_SHA_512", Hash::Sha512),
            ("RSA_PKCS1_SHA_256", Hash::Sha256),
            ("RSA_PKCS1_SHA_384", Hash::Sha384),
            ("RSA_PKCS1_SHA_512", Hash::Sha512),
        ] {
            let digest = independent::digest(hash, b"transfer 100");
            let signature = sign(&mut kms, &key_id, algorithm, digest.clone()).await;
            let other = independent::digest(hash, b"transfer 900");
            let verify = if algorithm.starts_with("RSA_PSS") {
                independent::rsa_verify_pss
            } else {
                independent::rsa_verify_pkcs1v15
            };
            assert!(verify(&public, hash, &digest, &signature), "{spec} {algorithm}");
            assert!(!verify(&public, hash, &other, &signature), "{spec} {algorithm} verified another digest");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn ecdsa_signatures_verify_independently() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for (spec, algorithm, hash) in [
        ("EC_P256", "ECDSA_SHA_256", Hash::Sha256),
        ("EC_P256K", "ECDSA_SHA_256", Hash::Sha256),
        ("EC_P384", "ECDSA_SHA_384", Hash::Sha384),
    ] {
        let key_id = create(&mut kms, spec, "").await;
        let public = public_key(&mut kms, &key_id).await;
        let digest = independent::digest(hash, b"transfer 100");
        let signature = sign(&mut kms, &key_id, algorithm, digest.clone()).await;
        assert!(independent::ecdsa_verify(&public, &digest, &signature), "{spec}");
        let other = independent::digest(hash, b"transfer 900");
        assert!(!independent::ecdsa_verify(&public, &other, &signature), "{spec} verified another digest");
    }
    server.stop().await;
}

#[tokio::test]
async fn sm2_signatures_verify_independently_for_digests_and_raw_messages() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create(&mut kms, "EC_SM2", "SIGN/VERIFY").await;
    let public = public_key(&mut kms, &key_id).await;
    let message = b"transfer 100";
    let e = independent::sm2_message_digest(&public, independent::SM2_DEFAULT_ID, message);

    let signature = sign(&mut kms, &key_id, "SM2DSA", e.clone()).await;
    assert!(independent::sm2_verify(&public, &e, &signature), "digest form");

    // RAW: the server computes Z_A with the default ID exactly as GB/T 32918 does.
    let request = pb::AsymmetricSignRequest {
        key_id: key_id.clone(),
        algorithm: "SM2DSA".into(),
        message: message.to_vec(),
        message_type: "RAW".into(),
        ..Default::default()
    };
    let raw_signature = kms.asymmetric_sign(request).await.unwrap().into_inner().signature;
    assert!(independent::sm2_verify(&public, &e, &raw_signature), "raw form");
    let other = independent::sm2_message_digest(&public, independent::SM2_DEFAULT_ID, b"transfer 900");
    assert!(!independent::sm2_verify(&public, &other, &raw_signature));
    server.stop().await;
}

#[tokio::test]
async fn ciphertexts_made_outside_decrypt_inside() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for spec in ["RSA_2048", "RSA_3072"] {
        let key_id = create(&mut kms, spec, "ENCRYPT/DECRYPT").await;
        let public = public_key(&mut kms, &key_id).await;
        for (algorithm, hash) in [("RSAES_OAEP_SHA_256", Hash::Sha256), ("RSAES_OAEP_SHA_1", Hash::Sha1)] {
            let ciphertext = independent::rsa_oaep_encrypt(&public, hash, b"pin 1234");
            assert_eq!(decrypt(&mut kms, &key_id, algorithm, ciphertext).await, b"pin 1234", "{spec} {algorithm}");
        }
    }
    let key_id = create(&mut kms, "EC_SM2", "ENCRYPT/DECRYPT").await;
    let public = public_key(&mut kms, &key_id).await;
    for plaintext in [&b"x"[..], b"pin 1234", &[7u8; 1000]] {
        let ciphertext = independent::sm2_encrypt_der(&public, plaintext);
        assert_eq!(
            decrypt(&mut kms, &key_id, "SM2PKE", ciphertext).await,
            plaintext,
            "SM2PKE {} bytes",
            plaintext.len()
        );
    }
    server.stop().await;
}
