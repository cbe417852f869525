//! Bring your own key: material wrapped outside kmsim imports; kmsim's
//! ciphertext then opens outside kmsim with that material, following the
//! documented blob format; token and material errors get their exact codes.

mod common;
#[path = "support/independent.rs"]
mod independent;

use common::*;
use independent::Hash;
use kmsim::proto as pb;
use tonic::Code;

const MATERIAL: [u8; 32] = *b"0123456789abcdef0123456789ABCDEF";

async fn external_key(kms: &mut Kms, spec: &str) -> pb::KeyMetadata {
    let request = pb::CreateKeyRequest { key_spec: spec.into(), origin: "EXTERNAL".into(), ..Default::default() };
    kms.create_key(request).await.unwrap().into_inner().key_metadata.unwrap()
}

async fn parameters(kms: &mut Kms, key_id: &str, algorithm: &str) -> pb::GetParametersForImportResponse {
    let request = pb::GetParametersForImportRequest {
        key_id: key_id.into(),
        wrapping_algorithm: algorithm.into(),
        wrapping_key_spec: "RSA_2048".into(),
    };
    kms.get_parameters_for_import(request).await.unwrap().into_inner()
}

fn wrap(params: &pb::GetParametersForImportResponse, hash: Hash, material: &[u8]) -> Vec<u8> {
    independent::rsa_oaep_encrypt(&independent::parse_spki_pem(&params.public_key), hash, material)
}

async fn import(kms: &mut Kms, key_id: &str, wrapped: Vec<u8>, token: &str) -> Result<(), tonic::Status> {
    let request = pb::ImportKeyMaterialRequest {
        key_id: key_id.into(),
        encrypted_key_material: wrapped,
        import_token: token.into(),
        key_material_expire_unix: 0,
    };
    kms.import_key_material(request).await.map(drop)
}

#[tokio::test]
async fn imported_material_is_the_material_kmsim_encrypts_with() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for (algorithm, hash) in [("RSAES_OAEP_SHA_256", Hash::Sha256), ("RSAES_OAEP_SHA_1", Hash::Sha1)] {
        let key = external_key(&mut kms, "Aliyun_AES_256").await;
        assert_eq!(key.key_state, "PendingImport");
        let params = parameters(&mut kms, &key.key_id, algorithm).await;
        assert!(params.public_key.starts_with("-----BEGIN PUBLIC KEY-----"));
        import(&mut kms, &key.key_id, wrap(&params, hash, &MATERIAL), &params.import_token).await.unwrap();
        let described = kms.describe_key(pb::DescribeKeyRequest { key_id: key.key_id.clone() }).await.unwrap();
        assert_eq!(described.into_inner().key_metadata.unwrap().key_state, "Enabled");

        let request = pb::EncryptRequest {
            key_id: key.key_id.clone(),
            plaintext: b"made inside".to_vec(),
            encryption_context: [("b".to_string(), "2".to_string()), ("a".to_string(), "1".to_string())].into(),
        };
        let blob = kms.encrypt(request).await.unwrap().into_inner().ciphertext_blob;
        assert_eq!(open_outside(&blob, &MATERIAL, &[("a", "1"), ("b", "2")]), b"made inside", "{algorithm}");
    }
    server.stop().await;
}

#[tokio::test]
async fn token_and_material_errors_have_their_codes() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key = external_key(&mut kms, "Aliyun_AES_256").await;
    let other = external_key(&mut kms, "Aliyun_AES_256").await;
    let params = parameters(&mut kms, &key.key_id, "RSAES_OAEP_SHA_256").await;
    let other_params = parameters(&mut kms, &other.key_id, "RSAES_OAEP_SHA_256").await;
    let wrapped = wrap(&params, Hash::Sha256, &MATERIAL);
    let check = |result: Result<(), tonic::Status>, code: &str, what: &str| {
        let status = result.expect_err(what);
        assert_error(&status, Code::InvalidArgument, code, "400", None, what);
    };

    let mut tampered_token = params.import_token.clone();
    tampered_token.replace_range(0..1, if tampered_token.starts_with('0') { "1" } else { "0" });
    check(
        import(&mut kms, &key.key_id, wrapped.clone(), &tampered_token).await,
        "InvalidImportToken",
        "tampered token",
    );
    check(
        import(&mut kms, &key.key_id, wrapped.clone(), &other_params.import_token).await,
        "InvalidImportToken",
        "another key's token",
    );
    let short = wrap(&params, Hash::Sha256, &MATERIAL[..16]);
    check(
        import(&mut kms, &key.key_id, short, &params.import_token).await,
        "InvalidKeyMaterial",
        "16 bytes for AES_256",
    );
    let mut corrupted = wrapped.clone();
    corrupted[100] ^= 1;
    check(
        import(&mut kms, &key.key_id, corrupted, &params.import_token).await,
        "InvalidKeyMaterial",
        "corrupted wrapping",
    );
    let sha1_wrapped = wrap(&params, Hash::Sha1, &MATERIAL);
    check(
        import(&mut kms, &key.key_id, sha1_wrapped, &params.import_token).await,
        "InvalidKeyMaterial",
        "wrong OAEP hash",
    );
    let status = import(&mut kms, &key.key_id, wrapped.clone(), "").await.unwrap_err();
    assert_missing(&status, "ImportToken", "no token");

    // 24 hours on the simulated clock and the token is spent.
    let advance = pb::AdvanceClockRequest { advance: Some(prost_types::Duration { seconds: 24 * 3600 + 1, nanos: 0 }) };
    server.simulation().await.advance_clock(advance).await.unwrap();
    check(
        import(&mut kms, &key.key_id, wrapped.clone(), &params.import_token).await,
        "ExpiredImportToken",
        "expired token",
    );
    let fresh = parameters(&mut kms, &key.key_id, "RSAES_OAEP_SHA_256").await;
    import(&mut kms, &key.key_id, wrap(&fresh, Hash::Sha256, &MATERIAL), &fresh.import_token).await.unwrap();

    let native = kms.create_key(pb::CreateKeyRequest::default()).await.unwrap().into_inner().key_metadata.unwrap();
    let request = pb::GetParametersForImportRequest {
        key_id: native.key_id.clone(),
        wrapping_algorithm: "RSAES_OAEP_SHA_256".into(),
        wrapping_key_spec: "RSA_2048".into(),
    };
    let status = kms.get_parameters_for_import(request).await.unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "Unsupported.Origin", "400", None, "a KMS-made key");
    for (algorithm, spec, param) in
        [("SM2PKE", "RSA_2048", "WrappingAlgorithm"), ("RSAES_OAEP_SHA_256", "RSA_1024", "WrappingKeySpec")]
    {
        let request = pb::GetParametersForImportRequest {
            key_id: key.key_id.clone(),
            wrapping_algorithm: algorithm.into(),
            wrapping_key_spec: spec.into(),
        };
        assert_invalid(&kms.get_parameters_for_import(request).await.unwrap_err(), param, param);
    }

    let events = format!("{:?}", all_audit_events(&server).await);
    assert!(!events.contains(&params.import_token), "import tokens stay out of the audit trail");
    server.stop().await;
}

#[tokio::test]
async fn deleted_material_returns_the_key_to_pending_import_until_the_same_material_returns() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key = external_key(&mut kms, "Aliyun_AES_256").await;
    let params = parameters(&mut kms, &key.key_id, "RSAES_OAEP_SHA_256").await;
    import(&mut kms, &key.key_id, wrap(&params, Hash::Sha256, &MATERIAL), &params.import_token).await.unwrap();
    let request = pb::EncryptRequest { key_id: key.key_id.clone(), plaintext: b"kept".to_vec(), ..Default::default() };
    let blob = kms.encrypt(request).await.unwrap().into_inner().ciphertext_blob;

    kms.delete_key_material(pb::DeleteKeyMaterialRequest { key_id: key.key_id.clone() }).await.unwrap();
    assert_eq!(key_state(&mut kms, &key.key_id).await, "PendingImport");
    // The Decrypt × PendingImport cell of the key-state table.
    let decrypt = pb::DecryptRequest { ciphertext_blob: blob.clone(), ..Default::default() };
    let status = kms.decrypt(decrypt.clone()).await.unwrap_err();
    assert_error(
        &status,
        Code::FailedPrecondition,
        "Rejected.PendingImport",
        "409",
        None,
        "Decrypt after DeleteKeyMaterial",
    );

    let params = parameters(&mut kms, &key.key_id, "RSAES_OAEP_SHA_256").await;
    let different = wrap(&params, Hash::Sha256, &[9u8; 32]);
    let status = import(&mut kms, &key.key_id, different, &params.import_token).await.unwrap_err();
    assert_error(&status, Code::InvalidArgument, "InvalidKeyMaterial", "400", None, "different material");
    import(&mut kms, &key.key_id, wrap(&params, Hash::Sha256, &MATERIAL), &params.import_token).await.unwrap();
    assert_eq!(kms.decrypt(decrypt).await.unwrap().into_inner().plaintext, b"kept");

    let native = kms.create_key(pb::CreateKeyRequest::default()).await.unwrap().into_inner().key_metadata.unwrap();
    let status = kms.delete_key_material(pb::DeleteKeyMaterialRequest { key_id: native.key_id }).await.unwrap_err();
    assert_error(
        &status,
        Code::FailedPrecondition,
        "Unsupported.Origin",
        "400",
        None,
        "DeleteKeyMaterial of a KMS-made key",
    );
    server.stop().await;
}

#[tokio::test]
async fn import_tokens_and_imported_material_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let mut kms = server.kms().await;
    let key = external_key(&mut kms, "Aliyun_SM4").await;
    let params = parameters(&mut kms, &key.key_id, "RSAES_OAEP_SHA_256").await;
    drop(kms);
    server.stop().await;

    let server = TestServer::start_in(dir.path()).await;
    let mut kms = server.kms().await;
    import(&mut kms, &key.key_id, wrap(&params, Hash::Sha256, &MATERIAL[..16]), &params.import_token).await.unwrap();
    let request = pb::EncryptRequest { key_id: key.key_id.clone(), plaintext: b"sm4".to_vec(), ..Default::default() };
    let blob = kms.encrypt(request).await.unwrap().into_inner().ciphertext_blob;
    drop(kms);
    server.stop().await;

    let server = TestServer::start_in(dir.path()).await;
    let mut kms = server.kms().await;
    let opened = kms.decrypt(pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() }).await.unwrap();
    assert_eq!(opened.into_inner().plaintext, b"sm4");
    server.stop().await;
}
