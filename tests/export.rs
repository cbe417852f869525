//! Export: exportable keys' material and data keys, wrapped under a caller's
//! public key, unwrap outside kmsim to material that reproduces kmsim's results.

mod common;

use common::*;
use kmsim::proto as pb;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey};
use sha2::Digest;
use tonic::Code;

/// The caller's wrapping key pair, made outside kmsim.
fn caller_key() -> (RsaPrivateKey, String) {
    let private = RsaPrivateKey::new(&mut rand::rng(), 2048).unwrap();
    let pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    (private, pem)
}

fn unwrap_oaep(private: &RsaPrivateKey, blob: &[u8]) -> Vec<u8> {
    private.decrypt(Oaep::<sha2::Sha256>::new(), blob).expect("OAEP unwraps")
}

/// RSA_AES_KEY_WRAP_SHA_256: OAEP(AES key) of the modulus length, then AES-KWP(material).
fn unwrap_kwp(private: &RsaPrivateKey, blob: &[u8]) -> Vec<u8> {
    let (wrapped_key, wrapped_material) = blob.split_at(256);
    let aes_key = unwrap_oaep(private, wrapped_key);
    let kwp = <aes_kw::KwpAes256 as aes_kw::cipher::KeyInit>::new_from_slice(&aes_key).unwrap();
    let mut buf = vec![0u8; wrapped_material.len()];
    kwp.unwrap_key(wrapped_material, &mut buf).expect("KWP unwraps").to_vec()
}

fn export_key_request(key_id: &str, pem: &str, algorithm: &str) -> pb::ExportKeyRequest {
    pb::ExportKeyRequest {
        key_id: key_id.into(),
        public_key_blob: pem.as_bytes().to_vec(),
        wrapping_algorithm: algorithm.into(),
        wrapping_key_spec: "RSA_2048".into(),
        ..Default::default()
    }
}

async fn create(kms: &mut Kms, spec: &str, exportable: bool) -> pb::KeyMetadata {
    let request = pb::CreateKeyRequest { key_spec: spec.into(), exportable, ..Default::default() };
    kms.create_key(request).await.unwrap().into_inner().key_metadata.unwrap()
}

#[tokio::test]
async fn an_exported_aes_key_opens_kmsim_ciphertext_outside() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let (private, pem) = caller_key();
    let key = create(&mut kms, "Aliyun_AES_256", true).await;
    assert!(key.exportable);
    let request =
        pb::EncryptRequest { key_id: key.key_id.clone(), plaintext: b"exported".to_vec(), ..Default::default() };
    let blob = kms.encrypt(request).await.unwrap().into_inner().ciphertext_blob;

    let exported =
        kms.export_key(export_key_request(&key.key_id, &pem, "RSAES_OAEP_SHA_256")).await.unwrap().into_inner();
    assert_eq!(exported.key_version_id, key.primary_key_version);
    let material: [u8; 32] = unwrap_oaep(&private, &exported.export_blob).try_into().expect("32 bytes of AES-256");
    assert_eq!(open_outside(&blob, &material, &[]), b"exported");
    server.stop().await;
}

#[tokio::test]
async fn an_exported_ec_key_signs_outside_what_kmsim_verifies() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let (private, pem) = caller_key();
    let key = create(&mut kms, "EC_P256", true).await;
    let exported = kms.export_key(export_key_request(&key.key_id, &pem, "RSA_AES_KEY_WRAP_SHA_256")).await;
    let pkcs8 = unwrap_kwp(&private, &exported.unwrap().into_inner().export_blob);
    let signer = p256::ecdsa::SigningKey::from_pkcs8_der(&pkcs8).expect("PKCS#8 P-256 key");
    let digest = sha2::Sha256::digest(b"signed outside").to_vec();
    let signature: p256::ecdsa::DerSignature =
        p256::ecdsa::signature::hazmat::PrehashSigner::sign_prehash(&signer, &digest).unwrap();
    let verify = pb::AsymmetricVerifyRequest {
        key_id: key.key_id.clone(),
        algorithm: "ECDSA_SHA_256".into(),
        digest,
        signature: signature.to_bytes().to_vec(),
        ..Default::default()
    };
    assert!(kms.asymmetric_verify(verify).await.unwrap().into_inner().valid);

    let rsa = create(&mut kms, "RSA_2048", true).await;
    let too_big = kms.export_key(export_key_request(&rsa.key_id, &pem, "RSAES_OAEP_SHA_256")).await.unwrap_err();
    assert_invalid(&too_big, "WrappingAlgorithm", "an RSA private key under OAEP alone");
    let wrapped = kms.export_key(export_key_request(&rsa.key_id, &pem, "RSA_AES_KEY_WRAP_SHA_256")).await.unwrap();
    assert!(RsaPrivateKey::from_pkcs8_der(&unwrap_kwp(&private, &wrapped.into_inner().export_blob)).is_ok());
    server.stop().await;
}

#[tokio::test]
async fn a_non_exportable_key_is_refused_and_the_refusal_is_audited() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let (_, pem) = caller_key();
    let key = create(&mut kms, "Aliyun_AES_256", false).await;
    let status = kms.export_key(export_key_request(&key.key_id, &pem, "RSAES_OAEP_SHA_256")).await.unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "Rejected.UnsupportedOperation", "400", None, "non-exportable");
    let mut wrong_spec = export_key_request(&key.key_id, &pem, "RSAES_OAEP_SHA_256");
    wrong_spec.wrapping_key_spec = "RSA_3072".into();
    assert_invalid(&kms.export_key(wrong_spec).await.unwrap_err(), "WrappingKeySpec", "spec unlike the key");
    let mut garbage = export_key_request(&key.key_id, &pem, "RSAES_OAEP_SHA_256");
    garbage.public_key_blob = b"not a key".to_vec();
    assert_invalid(&kms.export_key(garbage).await.unwrap_err(), "PublicKeyBlob", "garbage public key");

    let request =
        pb::ListAuditEventsRequest { error_code: "Rejected.UnsupportedOperation".into(), ..Default::default() };
    let events = server.audit().await.list_audit_events(request).await.unwrap().into_inner().events;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].action.as_str(), events[0].event_name.as_str()), ("kms.export", "ExportKey"));
    assert_eq!(events[0].key_id, key.key_id);
    server.stop().await;
}

#[tokio::test]
async fn data_keys_export_under_rsa_and_sm2_public_keys() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let (private, pem) = caller_key();
    let key = create(&mut kms, "Aliyun_AES_256", false).await;
    let context: std::collections::HashMap<String, String> = [("app".to_string(), "billing".to_string())].into();
    let generated = kms
        .generate_data_key(pb::GenerateDataKeyRequest {
            key_id: key.key_id.clone(),
            encryption_context: context.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let export = pb::ExportDataKeyRequest {
        ciphertext_blob: generated.ciphertext_blob.clone(),
        encryption_context: context.clone(),
        public_key_blob: pem.as_bytes().to_vec(),
        wrapping_algorithm: "RSAES_OAEP_SHA_256".into(),
        wrapping_key_spec: "RSA_2048".into(),
    };
    let exported = kms.export_data_key(export.clone()).await.unwrap().into_inner();
    assert_eq!(unwrap_oaep(&private, &exported.export_blob), generated.plaintext);
    let wrong_context = pb::ExportDataKeyRequest { encryption_context: Default::default(), ..export };
    assert_invalid(&kms.export_data_key(wrong_context).await.unwrap_err(), "CiphertextBlob", "wrong context");

    // SM2: the caller's key pair made outside kmsim, the public key given as DER.
    let sm2_secret = <sm2::SecretKey as sm2::elliptic_curve::Generate>::generate_from_rng(&mut rand::rng());
    let sm2_der = sm2_secret.public_key().to_public_key_der().unwrap().as_bytes().to_vec();
    let both = pb::GenerateAndExportDataKeyRequest {
        key_id: key.key_id.clone(),
        number_of_bytes: 16,
        public_key_blob: sm2_der,
        wrapping_algorithm: "SM2PKE".into(),
        wrapping_key_spec: "EC_SM2".into(),
        ..Default::default()
    };
    let both = kms.generate_and_export_data_key(both).await.unwrap().into_inner();
    let outside = sm2::pke::DecryptingKey::new(sm2_secret).decrypt_der(&both.export_blob).unwrap();
    let inside = kms
        .decrypt(pb::DecryptRequest { ciphertext_blob: both.ciphertext_blob, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .plaintext;
    assert_eq!((outside.len(), outside.clone()), (16, inside));

    let events = all_audit_events(&server).await;
    for name in ["ExportDataKey", "GenerateAndExportDataKey"] {
        let record = events.iter().find(|e| e.event_name == name && e.outcome == "Success").unwrap();
        assert_eq!(record.action, "kms.export", "{name}");
    }
    server.stop().await;
}
