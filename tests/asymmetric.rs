//! Asymmetric keys and HMAC over gRPC: round trips for every spec and
//! algorithm, usage and state rules, parameter checks, and what the audit
//! trail records.

mod common;

use common::*;
use kmsim::proto as pb;
use sha2::Digest;
use tonic::Code;

type DigestFn = fn(&[u8]) -> Vec<u8>;

/// (key spec, signing algorithm, the digest function the algorithm signs)
const SIGNING: &[(&str, &str, DigestFn)] = &[
    ("RSA_2048", "RSA_PSS_SHA_256", sha256),
    ("RSA_2048", "RSA_PKCS1_SHA_256", sha256),
    ("RSA_2048", "RSA_PSS_SHA_384", sha384),
    ("RSA_2048", "RSA_PKCS1_SHA_512", sha512),
    ("RSA_3072", "RSA_PSS_SHA_256", sha256),
    ("RSA_3072", "RSA_PKCS1_SHA_256", sha256),
    ("EC_P256", "ECDSA_SHA_256", sha256),
    ("EC_P256K", "ECDSA_SHA_256", sha256),
    ("EC_P384", "ECDSA_SHA_384", sha384),
    ("EC_SM2", "SM2DSA", sm3),
];

fn sha256(m: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(m).to_vec()
}
fn sha384(m: &[u8]) -> Vec<u8> {
    sha2::Sha384::digest(m).to_vec()
}
fn sha512(m: &[u8]) -> Vec<u8> {
    sha2::Sha512::digest(m).to_vec()
}
/// For SM2DSA the digest is SM3(Z_A || M); for a round trip any 32 bytes do.
fn sm3(m: &[u8]) -> Vec<u8> {
    sm3::Sm3::digest(m).to_vec()
}

async fn create(kms: &mut Kms, spec: &str, usage: &str) -> pb::KeyMetadata {
    let request = pb::CreateKeyRequest { key_spec: spec.into(), key_usage: usage.into(), ..Default::default() };
    kms.create_key(request)
        .await
        .unwrap_or_else(|e| panic!("create {spec} {usage}: {e:?}"))
        .into_inner()
        .key_metadata
        .unwrap()
}

fn sign_request(key_id: &str, algorithm: &str, digest: Vec<u8>) -> pb::AsymmetricSignRequest {
    pb::AsymmetricSignRequest { key_id: key_id.into(), algorithm: algorithm.into(), digest, ..Default::default() }
}

fn verify_request(key_id: &str, algorithm: &str, digest: Vec<u8>, signature: Vec<u8>) -> pb::AsymmetricVerifyRequest {
    pb::AsymmetricVerifyRequest {
        key_id: key_id.into(),
        algorithm: algorithm.into(),
        digest,
        signature,
        ..Default::default()
    }
}

#[tokio::test]
async fn specs_default_to_the_reference_usages() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for (spec, usage) in [
        ("RSA_2048", "SIGN/VERIFY"),
        ("EC_P256", "SIGN/VERIFY"),
        ("EC_P256K", "SIGN/VERIFY"),
        ("EC_P384", "SIGN/VERIFY"),
        ("EC_SM2", "SIGN/VERIFY"),
        ("HMAC_256", "GENERATE/VERIFY_MAC"),
        ("HMAC_384", "GENERATE/VERIFY_MAC"),
        ("HMAC_512", "GENERATE/VERIFY_MAC"),
        ("Aliyun_AES_256", "ENCRYPT/DECRYPT"),
    ] {
        let meta = create(&mut kms, spec, "").await;
        assert_eq!((meta.key_spec.as_str(), meta.key_usage.as_str()), (spec, usage));
    }
    for (spec, usage) in [("EC_P256", "ENCRYPT/DECRYPT"), ("EC_P384", "ENCRYPT/DECRYPT"), ("HMAC_256", "SIGN/VERIFY")] {
        let request = pb::CreateKeyRequest { key_spec: spec.into(), key_usage: usage.into(), ..Default::default() };
        let status = kms.create_key(request).await.unwrap_err();
        assert_invalid(&status, "KeyUsage", &format!("{spec} with {usage}"));
    }
    server.stop().await;
}

#[tokio::test]
async fn sign_then_verify_for_every_spec_and_algorithm() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for (spec, algorithm, hash) in SIGNING {
        let key = create(&mut kms, spec, "SIGN/VERIFY").await;
        let digest = hash(b"pay 100 to bob");
        let signed = kms.asymmetric_sign(sign_request(&key.key_id, algorithm, digest.clone())).await;
        let signed = signed.unwrap_or_else(|e| panic!("{spec} {algorithm}: {e:?}")).into_inner();
        assert_eq!(signed.key_version_id, key.primary_key_version, "{spec}");
        let check = |digest: Vec<u8>, signature: Vec<u8>| verify_request(&key.key_id, algorithm, digest, signature);

        let ok = kms.asymmetric_verify(check(digest.clone(), signed.signature.clone())).await.unwrap();
        assert!(ok.into_inner().valid, "{spec} {algorithm}: own signature does not verify");

        let other = kms.asymmetric_verify(check(hash(b"pay 900 to bob"), signed.signature.clone())).await.unwrap();
        assert!(!other.into_inner().valid, "{spec} {algorithm}: another digest verified");

        let mut bad = signed.signature.clone();
        let last = bad.len() - 1;
        bad[last / 2] ^= 0x40;
        let tampered = kms.asymmetric_verify(check(digest.clone(), bad)).await.unwrap();
        assert!(!tampered.into_inner().valid, "{spec} {algorithm}: tampered signature verified");

        let garbage = kms.asymmetric_verify(check(digest.clone(), vec![1, 2, 3])).await.unwrap();
        assert!(!garbage.into_inner().valid, "{spec} {algorithm}: garbage verified");
    }
    server.stop().await;
}

#[tokio::test]
async fn raw_messages_are_hashed_by_the_server() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for (spec, algorithm) in [("EC_P256", "ECDSA_SHA_256"), ("RSA_2048", "RSA_PSS_SHA_256"), ("EC_SM2", "SM2DSA")] {
        let key = create(&mut kms, spec, "").await;
        let request = pb::AsymmetricSignRequest {
            key_id: key.key_id.clone(),
            algorithm: algorithm.into(),
            message: b"a raw message".to_vec(),
            message_type: "RAW".into(),
            ..Default::default()
        };
        let signature = kms.asymmetric_sign(request).await.unwrap().into_inner().signature;
        let raw = |message: &[u8]| pb::AsymmetricVerifyRequest {
            key_id: key.key_id.clone(),
            algorithm: algorithm.into(),
            message: message.to_vec(),
            message_type: "RAW".into(),
            signature: signature.clone(),
            ..Default::default()
        };
        assert!(kms.asymmetric_verify(raw(b"a raw message")).await.unwrap().into_inner().valid, "{spec}");
        assert!(!kms.asymmetric_verify(raw(b"another message")).await.unwrap().into_inner().valid, "{spec}");
        if spec != "EC_SM2" {
            // A RAW signature is the signature of the message's digest.
            let digest = sha256(b"a raw message");
            let verify = verify_request(&key.key_id, algorithm, digest, signature.clone());
            assert!(kms.asymmetric_verify(verify).await.unwrap().into_inner().valid, "{spec} digest form");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn asymmetric_encrypt_then_decrypt_with_limits() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for (spec, algorithm, limit) in [
        ("RSA_2048", "RSAES_OAEP_SHA_256", 190),
        ("RSA_2048", "RSAES_OAEP_SHA_1", 214),
        ("RSA_3072", "RSAES_OAEP_SHA_256", 318),
        ("RSA_3072", "RSAES_OAEP_SHA_1", 342),
        ("EC_SM2", "SM2PKE", 6047),
    ] {
        let key = create(&mut kms, spec, "ENCRYPT/DECRYPT").await;
        let encrypt = |plaintext: Vec<u8>| pb::AsymmetricEncryptRequest {
            key_id: key.key_id.clone(),
            algorithm: algorithm.into(),
            plaintext,
            ..Default::default()
        };
        let plaintext: Vec<u8> = (0..limit).map(|i| i as u8).collect();
        let sealed = kms.asymmetric_encrypt(encrypt(plaintext.clone())).await;
        let sealed = sealed.unwrap_or_else(|e| panic!("{spec} {algorithm}: {e:?}")).into_inner();
        let decrypt = |ciphertext_blob: Vec<u8>| pb::AsymmetricDecryptRequest {
            key_id: key.key_id.clone(),
            algorithm: algorithm.into(),
            ciphertext_blob,
            ..Default::default()
        };
        let opened = kms.asymmetric_decrypt(decrypt(sealed.ciphertext_blob.clone())).await.unwrap().into_inner();
        assert_eq!(opened.plaintext, plaintext, "{spec} {algorithm}");

        let too_long = kms.asymmetric_encrypt(encrypt(vec![0; limit + 1])).await.unwrap_err();
        assert_invalid(&too_long, "Plaintext", &format!("{spec} {algorithm} at {} bytes", limit + 1));

        let mut tampered = sealed.ciphertext_blob.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 1;
        let refused = kms.asymmetric_decrypt(decrypt(tampered)).await.unwrap_err();
        assert_invalid(&refused, "CiphertextBlob", &format!("{spec} {algorithm} tampered"));
    }
    server.stop().await;
}

#[tokio::test]
async fn get_public_key_returns_spki_pem() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for spec in ["RSA_2048", "EC_P256", "EC_P256K", "EC_P384", "EC_SM2"] {
        let key = create(&mut kms, spec, "").await;
        let request = pb::GetPublicKeyRequest { key_id: key.key_id.clone(), ..Default::default() };
        let answer = kms.get_public_key(request).await.unwrap().into_inner();
        assert!(answer.public_key.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{spec}: {}", answer.public_key);
        assert!(answer.public_key.trim_end().ends_with("-----END PUBLIC KEY-----"), "{spec}");
        assert!(!answer.public_key.contains("PRIVATE"), "{spec}");
        assert_eq!(answer.key_version_id, key.primary_key_version, "{spec}");
    }
    let hmac = create(&mut kms, "HMAC_256", "").await;
    let status = kms.get_public_key(pb::GetPublicKeyRequest { key_id: hmac.key_id, ..Default::default() }).await;
    let status = status.unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "Rejected.UnsupportedOperation", "400", None, "HMAC key");
    server.stop().await;
}

#[tokio::test]
async fn hmac_generate_and_verify() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for (spec, algorithm, len) in
        [("HMAC_256", "HMAC_SHA_256", 32), ("HMAC_384", "HMAC_SHA_384", 48), ("HMAC_512", "HMAC_SHA_512", 64)]
    {
        let key = create(&mut kms, spec, "").await;
        let generate = pb::GenerateMacRequest {
            key_id: key.key_id.clone(),
            algorithm: algorithm.into(),
            message: b"order 42".to_vec(),
        };
        let mac = kms.generate_mac(generate).await.unwrap().into_inner().mac;
        assert_eq!(mac.len(), len, "{spec}");
        let verify = |message: &[u8], mac: Vec<u8>| pb::VerifyMacRequest {
            key_id: key.key_id.clone(),
            algorithm: algorithm.into(),
            message: message.to_vec(),
            mac,
        };
        assert!(kms.verify_mac(verify(b"order 42", mac.clone())).await.unwrap().into_inner().valid, "{spec}");
        assert!(!kms.verify_mac(verify(b"order 43", mac.clone())).await.unwrap().into_inner().valid, "{spec}");
        let mut bad = mac.clone();
        bad[0] ^= 1;
        assert!(!kms.verify_mac(verify(b"order 42", bad)).await.unwrap().into_inner().valid, "{spec}");

        let wrong_algorithm = pb::GenerateMacRequest {
            key_id: key.key_id.clone(),
            algorithm: if len == 32 { "HMAC_SHA_512".into() } else { "HMAC_SHA_256".into() },
            message: b"x".to_vec(),
        };
        assert_invalid(&kms.generate_mac(wrong_algorithm).await.unwrap_err(), "Algorithm", spec);
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let ec = create(&mut kms, "EC_P256", "").await;
    let rsa = create(&mut kms, "RSA_2048", "ENCRYPT/DECRYPT").await;

    let short = kms.asymmetric_sign(sign_request(&ec.key_id, "ECDSA_SHA_256", vec![0; 31])).await.unwrap_err();
    assert_invalid(&short, "Digest", "31-byte digest for ECDSA_SHA_256");
    let long = kms.asymmetric_sign(sign_request(&ec.key_id, "ECDSA_SHA_256", vec![0; 48])).await.unwrap_err();
    assert_invalid(&long, "Digest", "48-byte digest for ECDSA_SHA_256");
    let wrong = kms.asymmetric_sign(sign_request(&ec.key_id, "ECDSA_SHA_384", vec![0; 48])).await.unwrap_err();
    assert_invalid(&wrong, "Algorithm", "ECDSA_SHA_384 on EC_P256");
    let unknown = kms.asymmetric_sign(sign_request(&ec.key_id, "ECDSA_SHA_1", vec![0; 20])).await.unwrap_err();
    assert_invalid(&unknown, "Algorithm", "unknown algorithm");
    let missing = kms.asymmetric_sign(sign_request(&ec.key_id, "", vec![0; 32])).await.unwrap_err();
    assert_missing(&missing, "Algorithm", "no algorithm");
    let no_digest = kms.asymmetric_sign(sign_request(&ec.key_id, "ECDSA_SHA_256", vec![])).await.unwrap_err();
    assert_missing(&no_digest, "Digest", "no digest");
    let bad_type = pb::AsymmetricSignRequest {
        message_type: "HASHED".into(),
        ..sign_request(&ec.key_id, "ECDSA_SHA_256", vec![0; 32])
    };
    assert_invalid(&kms.asymmetric_sign(bad_type).await.unwrap_err(), "MessageType", "message type");
    let bad_version = pb::AsymmetricSignRequest {
        key_version_id: uuid::Uuid::new_v4().to_string(),
        ..sign_request(&ec.key_id, "ECDSA_SHA_256", vec![0; 32])
    };
    let status = kms.asymmetric_sign(bad_version).await.unwrap_err();
    assert_error(&status, Code::NotFound, "Forbidden.KeyVersionNotFound", "404", None, "unknown version");

    let sm2_on_rsa = pb::AsymmetricEncryptRequest {
        key_id: rsa.key_id.clone(),
        algorithm: "SM2PKE".into(),
        plaintext: b"x".to_vec(),
        ..Default::default()
    };
    assert_invalid(&kms.asymmetric_encrypt(sm2_on_rsa).await.unwrap_err(), "Algorithm", "SM2PKE on RSA");
    server.stop().await;
}

#[tokio::test]
async fn usage_mismatches_are_rejected() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let signing = create(&mut kms, "RSA_2048", "SIGN/VERIFY").await;
    let encrypting = create(&mut kms, "RSA_2048", "ENCRYPT/DECRYPT").await;
    let aes = create(&mut kms, "Aliyun_AES_256", "").await;
    let hmac = create(&mut kms, "HMAC_256", "").await;
    let unsupported = |status: tonic::Status, what: &str| {
        assert_error(&status, Code::FailedPrecondition, "Rejected.UnsupportedOperation", "400", None, what);
    };

    let status = kms.asymmetric_sign(sign_request(&encrypting.key_id, "RSA_PSS_SHA_256", sha256(b"m"))).await;
    unsupported(status.unwrap_err(), "sign with an ENCRYPT/DECRYPT key");
    let status = kms.asymmetric_sign(sign_request(&aes.key_id, "RSA_PSS_SHA_256", sha256(b"m"))).await;
    unsupported(status.unwrap_err(), "sign with a symmetric key");
    let encrypt = |key_id: &str| pb::AsymmetricEncryptRequest {
        key_id: key_id.into(),
        algorithm: "RSAES_OAEP_SHA_256".into(),
        plaintext: b"m".to_vec(),
        ..Default::default()
    };
    unsupported(kms.asymmetric_encrypt(encrypt(&signing.key_id)).await.unwrap_err(), "encrypt with a SIGN/VERIFY key");
    unsupported(kms.asymmetric_encrypt(encrypt(&hmac.key_id)).await.unwrap_err(), "encrypt with an HMAC key");
    let mac = |key_id: &str| pb::GenerateMacRequest {
        key_id: key_id.into(),
        algorithm: "HMAC_SHA_256".into(),
        message: b"m".to_vec(),
    };
    unsupported(kms.generate_mac(mac(&signing.key_id)).await.unwrap_err(), "MAC with an RSA key");
    unsupported(kms.generate_mac(mac(&aes.key_id)).await.unwrap_err(), "MAC with an AES key");
    // The symmetric API answers with Alibaba's Encrypt/GenerateDataKey code.
    let status = kms
        .encrypt(pb::EncryptRequest { key_id: signing.key_id.clone(), plaintext: b"m".to_vec(), ..Default::default() })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "UnsupportedOperation", "400", None, "Encrypt with an RSA key");
    server.stop().await;
}

#[tokio::test]
async fn key_states_apply_to_every_asymmetric_and_mac_call() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for (state, code) in [("Disabled", "Rejected.Disabled"), ("PendingDeletion", "Rejected.PendingDeletion")] {
        let signer = create(&mut kms, "EC_P256", "").await;
        let decrypter = create(&mut kms, "EC_SM2", "ENCRYPT/DECRYPT").await;
        let hmac = create(&mut kms, "HMAC_256", "").await;
        let digest = sha256(b"m");
        let signature = kms.asymmetric_sign(sign_request(&signer.key_id, "ECDSA_SHA_256", digest.clone())).await;
        let signature = signature.unwrap().into_inner().signature;
        let encrypt = pb::AsymmetricEncryptRequest {
            key_id: decrypter.key_id.clone(),
            algorithm: "SM2PKE".into(),
            plaintext: b"m".to_vec(),
            ..Default::default()
        };
        let ciphertext = kms.asymmetric_encrypt(encrypt.clone()).await.unwrap().into_inner().ciphertext_blob;
        let mac_request = pb::GenerateMacRequest {
            key_id: hmac.key_id.clone(),
            algorithm: "HMAC_SHA_256".into(),
            message: b"m".to_vec(),
        };
        let mac = kms.generate_mac(mac_request.clone()).await.unwrap().into_inner().mac;

        for key in [&signer, &decrypter, &hmac] {
            if state == "Disabled" {
                kms.disable_key(pb::DisableKeyRequest { key_id: key.key_id.clone() }).await.unwrap();
            } else {
                let request = pb::ScheduleKeyDeletionRequest { key_id: key.key_id.clone(), pending_window_in_days: 7 };
                kms.schedule_key_deletion(request).await.unwrap();
            }
        }
        let rejected = |result: Result<(), tonic::Status>, what: &str| {
            let status = result.expect_err(what);
            assert_error(&status, Code::FailedPrecondition, code, "409", None, &format!("{what} when {state}"));
        };
        rejected(
            kms.asymmetric_sign(sign_request(&signer.key_id, "ECDSA_SHA_256", digest.clone())).await.map(drop),
            "sign",
        );
        let verify = verify_request(&signer.key_id, "ECDSA_SHA_256", digest.clone(), signature.clone());
        rejected(kms.asymmetric_verify(verify).await.map(drop), "verify");
        let public = pb::GetPublicKeyRequest { key_id: signer.key_id.clone(), ..Default::default() };
        rejected(kms.get_public_key(public).await.map(drop), "get public key");
        rejected(kms.asymmetric_encrypt(encrypt.clone()).await.map(drop), "asymmetric encrypt");
        let decrypt = pb::AsymmetricDecryptRequest {
            key_id: decrypter.key_id.clone(),
            algorithm: "SM2PKE".into(),
            ciphertext_blob: ciphertext.clone(),
            ..Default::default()
        };
        rejected(kms.asymmetric_decrypt(decrypt).await.map(drop), "asymmetric decrypt");
        rejected(kms.generate_mac(mac_request.clone()).await.map(drop), "generate mac");
        let verify_mac = pb::VerifyMacRequest {
            key_id: hmac.key_id.clone(),
            algorithm: "HMAC_SHA_256".into(),
            message: b"m".to_vec(),
            mac: mac.clone(),
        };
        rejected(kms.verify_mac(verify_mac).await.map(drop), "verify mac");
    }

    // PendingImport: an EXTERNAL key has no material yet.
    for spec in ["EC_P256", "HMAC_256", "RSA_2048"] {
        let request = pb::CreateKeyRequest { key_spec: spec.into(), origin: "EXTERNAL".into(), ..Default::default() };
        let key = kms.create_key(request).await.unwrap().into_inner().key_metadata.unwrap();
        assert_eq!(key.key_state, "PendingImport");
        let status = match spec {
            "HMAC_256" => {
                let request = pb::GenerateMacRequest {
                    key_id: key.key_id.clone(),
                    algorithm: "HMAC_SHA_256".into(),
                    message: b"m".to_vec(),
                };
                kms.generate_mac(request).await.unwrap_err()
            }
            "EC_P256" => {
                kms.asymmetric_sign(sign_request(&key.key_id, "ECDSA_SHA_256", sha256(b"m"))).await.unwrap_err()
            }
            _ => kms
                .get_public_key(pb::GetPublicKeyRequest { key_id: key.key_id, ..Default::default() })
                .await
                .unwrap_err(),
        };
        assert_error(&status, Code::FailedPrecondition, "Rejected.PendingImport", "409", None, spec);
    }
    server.stop().await;
}

#[tokio::test]
async fn audit_records_actions_and_sizes_but_never_secrets() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let signer = create(&mut kms, "EC_P384", "").await;
    let decrypter = create(&mut kms, "RSA_2048", "ENCRYPT/DECRYPT").await;
    let hmac = create(&mut kms, "HMAC_512", "").await;

    let signature = kms.asymmetric_sign(sign_request(&signer.key_id, "ECDSA_SHA_384", sha384(b"m"))).await.unwrap();
    let signature = signature.into_inner().signature;
    kms.asymmetric_verify(verify_request(&signer.key_id, "ECDSA_SHA_384", sha384(b"m"), signature.clone()))
        .await
        .unwrap();
    let secret = b"the launch code is 0000".to_vec();
    let encrypt = pb::AsymmetricEncryptRequest {
        key_id: decrypter.key_id.clone(),
        algorithm: "RSAES_OAEP_SHA_256".into(),
        plaintext: secret.clone(),
        ..Default::default()
    };
    let ciphertext = kms.asymmetric_encrypt(encrypt).await.unwrap().into_inner().ciphertext_blob;
    let decrypt = pb::AsymmetricDecryptRequest {
        key_id: decrypter.key_id.clone(),
        algorithm: "RSAES_OAEP_SHA_256".into(),
        ciphertext_blob: ciphertext.clone(),
        ..Default::default()
    };
    kms.asymmetric_decrypt(decrypt).await.unwrap();
    let mac_request = pb::GenerateMacRequest {
        key_id: hmac.key_id.clone(),
        algorithm: "HMAC_SHA_512".into(),
        message: secret.clone(),
    };
    let mac = kms.generate_mac(mac_request).await.unwrap().into_inner().mac;
    let verify = pb::VerifyMacRequest {
        key_id: hmac.key_id.clone(),
        algorithm: "HMAC_SHA_512".into(),
        message: secret.clone(),
        mac: mac.clone(),
    };
    kms.verify_mac(verify).await.unwrap();
    kms.get_public_key(pb::GetPublicKeyRequest { key_id: signer.key_id.clone(), ..Default::default() }).await.unwrap();

    let events = all_audit_events(&server).await;
    let find = |name: &str| events.iter().find(|e| e.event_name == name).unwrap_or_else(|| panic!("{name} audited"));
    let sign = find("AsymmetricSign");
    assert_eq!((sign.action.as_str(), sign.key_spec.as_str()), ("kms.sign", "EC_P384"));
    assert_eq!((sign.message_bytes, sign.signature_bytes), (Some(48), Some(signature.len() as u64)));
    assert_eq!(sign.key_version_id, signer.primary_key_version);
    let verify = find("AsymmetricVerify");
    assert_eq!((verify.action.as_str(), verify.message_bytes), ("kms.verify", Some(48)));
    let encrypt = find("AsymmetricEncrypt");
    assert_eq!(encrypt.action, "kms.encrypt");
    assert_eq!((encrypt.plaintext_bytes, encrypt.ciphertext_bytes), (Some(secret.len() as u64), Some(256)));
    let decrypt = find("AsymmetricDecrypt");
    assert_eq!(decrypt.action, "kms.decrypt");
    assert_eq!((decrypt.plaintext_bytes, decrypt.ciphertext_bytes), (Some(secret.len() as u64), Some(256)));
    let generate = find("GenerateMac");
    assert_eq!((generate.action.as_str(), generate.mac_bytes), ("kms.hmac", Some(64)));
    assert_eq!(generate.message_bytes, Some(secret.len() as u64));
    assert_eq!(find("VerifyMac").action, "kms.verify_hmac");
    assert_eq!(find("GetPublicKey").action, "kms.get_public_key");

    let everything = format!("{events:?}");
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert!(!everything.contains("launch code"));
    for secret_bytes in [&ciphertext, &mac, &signature] {
        assert!(!everything.contains(&hex(secret_bytes)));
        assert!(!everything.contains(&format!("{secret_bytes:?}")[1..40]));
    }
    server.stop().await;
}

#[tokio::test]
async fn rsa_4096_and_p384_serve_the_sha_384_and_512_variants() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key = create(&mut kms, "RSA_4096", "").await;
    for (algorithm, digest) in [("RSA_PSS_SHA_512", sha512(b"m")), ("RSA_PKCS1_SHA_384", sha384(b"m"))] {
        let signature = kms.asymmetric_sign(sign_request(&key.key_id, algorithm, digest.clone())).await.unwrap();
        let verify = verify_request(&key.key_id, algorithm, digest, signature.into_inner().signature);
        assert!(kms.asymmetric_verify(verify).await.unwrap().into_inner().valid, "{algorithm}");
    }
    let encrypting = create(&mut kms, "RSA_4096", "ENCRYPT/DECRYPT").await;
    let too_long = pb::AsymmetricEncryptRequest {
        key_id: encrypting.key_id.clone(),
        algorithm: "RSAES_OAEP_SHA_256".into(),
        plaintext: vec![0; 447],
        ..Default::default()
    };
    assert_invalid(&kms.asymmetric_encrypt(too_long).await.unwrap_err(), "Plaintext", "RSA_4096 OAEP 447 bytes");
    server.stop().await;
}
