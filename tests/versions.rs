//! Key versions and rotation: manual rotation keeps old ciphertexts,
//! signatures and MACs working; rotation policies; versions are listed.

mod common;

use common::*;
use kmsim::proto as pb;
use sha2::Digest;
use tonic::Code;

async fn create(kms: &mut Kms, request: pb::CreateKeyRequest) -> pb::KeyMetadata {
    kms.create_key(request).await.unwrap().into_inner().key_metadata.unwrap()
}

async fn describe(kms: &mut Kms, key_id: &str) -> pb::KeyMetadata {
    kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.into() }).await.unwrap().into_inner().key_metadata.unwrap()
}

async fn rotate(kms: &mut Kms, key_id: &str) -> pb::KeyVersion {
    let request = pb::CreateKeyVersionRequest { key_id: key_id.into() };
    kms.create_key_version(request).await.unwrap().into_inner().key_version.unwrap()
}

async fn clock_now(server: &TestServer) -> time::OffsetDateTime {
    let now = server.simulation().await.get_clock(pb::GetClockRequest {}).await.unwrap().into_inner().now.unwrap();
    time::OffsetDateTime::from_unix_timestamp(now.seconds).unwrap()
}

fn parse(date: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339).unwrap()
}

#[tokio::test]
async fn ciphertexts_from_every_version_decrypt_after_three_rotations() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for spec in ["Aliyun_AES_256", "Aliyun_SM4"] {
        let key = create(&mut kms, pb::CreateKeyRequest { key_spec: spec.into(), ..Default::default() }).await;
        let mut blobs = Vec::new();
        let mut versions = vec![key.primary_key_version.clone()];
        for round in 0..4 {
            let request = pb::EncryptRequest {
                key_id: key.key_id.clone(),
                plaintext: format!("round {round}").into_bytes(),
                ..Default::default()
            };
            let sealed = kms.encrypt(request).await.unwrap().into_inner();
            assert_eq!(&sealed.key_version_id, versions.last().unwrap(), "{spec}: new work uses the primary");
            blobs.push(sealed.ciphertext_blob);
            if round < 3 {
                let version = rotate(&mut kms, &key.key_id).await;
                assert_eq!(describe(&mut kms, &key.key_id).await.primary_key_version, version.key_version_id);
                versions.push(version.key_version_id);
            }
        }
        for (round, blob) in blobs.into_iter().enumerate() {
            let opened = kms.decrypt(pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() }).await;
            let opened = opened.unwrap_or_else(|e| panic!("{spec} round {round}: {e:?}")).into_inner();
            assert_eq!(opened.plaintext, format!("round {round}").into_bytes());
            assert_eq!(opened.key_version_id, versions[round], "{spec}: decrypted under its own version");
        }
        let listed =
            kms.list_key_versions(pb::ListKeyVersionsRequest { key_id: key.key_id.clone(), ..Default::default() });
        let listed = listed.await.unwrap().into_inner();
        assert_eq!(listed.total_count, 4);
        let ids: Vec<_> = listed.key_versions.iter().map(|v| v.key_version_id.clone()).collect();
        assert_eq!(ids, versions, "{spec}: versions oldest first");
    }
    server.stop().await;
}

#[tokio::test]
async fn signatures_and_macs_from_old_versions_still_verify() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let signer = create(&mut kms, pb::CreateKeyRequest { key_spec: "EC_P256".into(), ..Default::default() }).await;
    let digest = sha2::Sha256::digest(b"m").to_vec();
    let sign = pb::AsymmetricSignRequest {
        key_id: signer.key_id.clone(),
        algorithm: "ECDSA_SHA_256".into(),
        digest: digest.clone(),
        ..Default::default()
    };
    let v1 = kms.asymmetric_sign(sign.clone()).await.unwrap().into_inner();
    let v2 = rotate(&mut kms, &signer.key_id).await;
    let verify = |version: &str, signature: Vec<u8>| pb::AsymmetricVerifyRequest {
        key_id: signer.key_id.clone(),
        key_version_id: version.into(),
        algorithm: "ECDSA_SHA_256".into(),
        digest: digest.clone(),
        signature,
        ..Default::default()
    };
    let old = kms.asymmetric_verify(verify(&v1.key_version_id, v1.signature.clone())).await.unwrap().into_inner();
    assert!(old.valid, "a v1 signature verifies under v1 after rotation");
    let primary = kms.asymmetric_verify(verify("", v1.signature.clone())).await.unwrap().into_inner();
    assert!(!primary.valid, "the new primary is a new key pair");
    assert_eq!(primary.key_version_id, v2.key_version_id);
    let v2_signed = kms.asymmetric_sign(sign).await.unwrap().into_inner();
    assert_eq!(v2_signed.key_version_id, v2.key_version_id, "new signatures use the primary");
    let public =
        |version: &str| pb::GetPublicKeyRequest { key_id: signer.key_id.clone(), key_version_id: version.into() };
    let pem_v1 = kms.get_public_key(public(&v1.key_version_id)).await.unwrap().into_inner().public_key;
    let pem_v2 = kms.get_public_key(public("")).await.unwrap().into_inner().public_key;
    assert_ne!(pem_v1, pem_v2);

    let hmac = create(&mut kms, pb::CreateKeyRequest { key_spec: "HMAC_256".into(), ..Default::default() }).await;
    let generate = pb::GenerateMacRequest {
        key_id: hmac.key_id.clone(),
        algorithm: "HMAC_SHA_256".into(),
        message: b"m".to_vec(),
    };
    let mac_v1 = kms.generate_mac(generate.clone()).await.unwrap().into_inner();
    let hmac_v2 = rotate(&mut kms, &hmac.key_id).await;
    let mac_v2 = kms.generate_mac(generate).await.unwrap().into_inner();
    assert_ne!(mac_v1.mac, mac_v2.mac);
    for (mac, version) in [(mac_v1.mac, &mac_v1.key_version_id), (mac_v2.mac, &hmac_v2.key_version_id)] {
        let request = pb::VerifyMacRequest {
            key_id: hmac.key_id.clone(),
            algorithm: "HMAC_SHA_256".into(),
            message: b"m".to_vec(),
            mac,
        };
        let checked = kms.verify_mac(request).await.unwrap().into_inner();
        assert!(checked.valid);
        assert_eq!(&checked.key_version_id, version, "the matching version is named");
    }
    server.stop().await;
}

#[tokio::test]
async fn rotation_policy_is_validated_and_shown_in_metadata() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key = create(
        &mut kms,
        pb::CreateKeyRequest { enable_automatic_rotation: true, rotation_interval: "30d".into(), ..Default::default() },
    )
    .await;
    assert_eq!((key.automatic_rotation.as_str(), key.rotation_interval.as_str()), ("Enabled", "2592000s"));
    let created = parse(&key.creation_date);
    assert_eq!(parse(&key.next_rotation_date) - created, time::Duration::days(30));
    assert_eq!(key.last_rotation_date, "");

    let plain = create(&mut kms, pb::CreateKeyRequest::default()).await;
    assert_eq!((plain.automatic_rotation.as_str(), plain.rotation_interval.as_str()), ("Disabled", ""));
    for interval in ["6d", "366d", "167h", "8w", "d", "-7d", "7 d"] {
        let request = pb::UpdateRotationPolicyRequest {
            key_id: plain.key_id.clone(),
            enable_automatic_rotation: true,
            rotation_interval: interval.into(),
        };
        assert_invalid(&kms.update_rotation_policy(request).await.unwrap_err(), "RotationInterval", interval);
        let create_request = pb::CreateKeyRequest {
            enable_automatic_rotation: true,
            rotation_interval: interval.into(),
            ..Default::default()
        };
        assert_invalid(&kms.create_key(create_request).await.unwrap_err(), "RotationInterval", interval);
    }
    for (interval, seconds) in [
        ("7d", "604800s"),
        ("365d", "31536000s"),
        ("168h", "604800s"),
        ("10080m", "604800s"),
        ("31536000s", "31536000s"),
    ] {
        let request = pb::UpdateRotationPolicyRequest {
            key_id: plain.key_id.clone(),
            enable_automatic_rotation: true,
            rotation_interval: interval.into(),
        };
        kms.update_rotation_policy(request).await.unwrap_or_else(|e| panic!("{interval}: {e:?}"));
        let meta = describe(&mut kms, &plain.key_id).await;
        assert_eq!(
            (meta.automatic_rotation.as_str(), meta.rotation_interval.as_str()),
            ("Enabled", seconds),
            "{interval}"
        );
        let next = parse(&meta.next_rotation_date) - clock_now(&server).await;
        let expected = time::Duration::seconds(seconds.trim_end_matches('s').parse().unwrap());
        assert!((next - expected).abs() <= time::Duration::seconds(2), "{interval}: next rotation in {next}");
    }

    // A manual rotation restarts the automatic schedule from the rotation.
    let version = rotate(&mut kms, &plain.key_id).await;
    let meta = describe(&mut kms, &plain.key_id).await;
    assert_eq!(meta.last_rotation_date, version.creation_date);
    assert_eq!(parse(&meta.next_rotation_date) - parse(&version.creation_date), time::Duration::days(365));

    let off = pb::UpdateRotationPolicyRequest {
        key_id: plain.key_id.clone(),
        enable_automatic_rotation: false,
        ..Default::default()
    };
    kms.update_rotation_policy(off).await.unwrap();
    let meta = describe(&mut kms, &plain.key_id).await;
    assert_eq!((meta.automatic_rotation.as_str(), meta.next_rotation_date.as_str()), ("Disabled", ""));
    assert_eq!(meta.last_rotation_date, version.creation_date, "the last rotation is still shown");
    server.stop().await;
}

#[tokio::test]
async fn rotation_obeys_key_states_and_origin() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for (state, code) in [("Disabled", "Rejected.Disabled"), ("PendingDeletion", "Rejected.PendingDeletion")] {
        let key = create(&mut kms, pb::CreateKeyRequest::default()).await;
        if state == "Disabled" {
            kms.disable_key(pb::DisableKeyRequest { key_id: key.key_id.clone() }).await.unwrap();
        } else {
            let request = pb::ScheduleKeyDeletionRequest { key_id: key.key_id.clone(), pending_window_in_days: 7 };
            kms.schedule_key_deletion(request).await.unwrap();
        }
        let status =
            kms.create_key_version(pb::CreateKeyVersionRequest { key_id: key.key_id.clone() }).await.unwrap_err();
        assert_error(&status, Code::FailedPrecondition, code, "409", None, &format!("CreateKeyVersion when {state}"));
        let policy = pb::UpdateRotationPolicyRequest {
            key_id: key.key_id.clone(),
            enable_automatic_rotation: true,
            ..Default::default()
        };
        let status = kms.update_rotation_policy(policy).await.unwrap_err();
        assert_error(
            &status,
            Code::FailedPrecondition,
            code,
            "409",
            None,
            &format!("UpdateRotationPolicy when {state}"),
        );
        assert_eq!(describe(&mut kms, &key.key_id).await.primary_key_version, key.primary_key_version);
    }
    let external = create(&mut kms, pb::CreateKeyRequest { origin: "EXTERNAL".into(), ..Default::default() }).await;
    let status =
        kms.create_key_version(pb::CreateKeyVersionRequest { key_id: external.key_id.clone() }).await.unwrap_err();
    assert_error(
        &status,
        Code::FailedPrecondition,
        "Rejected.PendingImport",
        "409",
        None,
        "CreateKeyVersion when PendingImport",
    );
    let request =
        pb::CreateKeyRequest { origin: "EXTERNAL".into(), enable_automatic_rotation: true, ..Default::default() };
    let status = kms.create_key(request).await.unwrap_err();
    assert_error(
        &status,
        Code::FailedPrecondition,
        "Unsupported.Origin",
        "400",
        None,
        "automatic rotation of an EXTERNAL key",
    );

    let key = create(&mut kms, pb::CreateKeyRequest::default()).await;
    let missing =
        pb::DescribeKeyVersionRequest { key_id: key.key_id.clone(), key_version_id: uuid::Uuid::new_v4().to_string() };
    let status = kms.describe_key_version(missing).await.unwrap_err();
    assert_error(&status, Code::NotFound, "Forbidden.KeyVersionNotFound", "404", None, "unknown version");
    let described = kms
        .describe_key_version(pb::DescribeKeyVersionRequest {
            key_id: key.key_id.clone(),
            key_version_id: key.primary_key_version.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .key_version
        .unwrap();
    assert_eq!(described.creation_date, key.creation_date);
    server.stop().await;
}

#[tokio::test]
async fn rotations_are_audited_as_kms_rotate_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let mut kms = server.kms().await;
    let key = create(
        &mut kms,
        pb::CreateKeyRequest { key_spec: "RSA_2048".into(), key_usage: "ENCRYPT/DECRYPT".into(), ..Default::default() },
    )
    .await;
    let encrypt = pb::AsymmetricEncryptRequest {
        key_id: key.key_id.clone(),
        algorithm: "RSAES_OAEP_SHA_256".into(),
        plaintext: b"v1 secret".to_vec(),
        ..Default::default()
    };
    let v1_ciphertext = kms.asymmetric_encrypt(encrypt).await.unwrap().into_inner();
    let v2 = rotate(&mut kms, &key.key_id).await;
    let events = all_audit_events(&server).await;
    let record = events.iter().find(|e| e.event_name == "CreateKeyVersion").expect("rotation audited");
    assert_eq!((record.action.as_str(), record.key_version_id.as_str()), ("kms.rotate", v2.key_version_id.as_str()));
    assert_eq!(record.key_id, key.key_id);
    drop(kms);
    server.stop().await;

    let server = TestServer::start_in(dir.path()).await;
    let mut kms = server.kms().await;
    assert_eq!(describe(&mut kms, &key.key_id).await.primary_key_version, v2.key_version_id);
    let decrypt = pb::AsymmetricDecryptRequest {
        key_id: key.key_id.clone(),
        key_version_id: v1_ciphertext.key_version_id.clone(),
        algorithm: "RSAES_OAEP_SHA_256".into(),
        ciphertext_blob: v1_ciphertext.ciphertext_blob,
    };
    assert_eq!(kms.asymmetric_decrypt(decrypt).await.unwrap().into_inner().plaintext, b"v1 secret");
    server.stop().await;
}
