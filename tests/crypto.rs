//! Symmetric cryptography through the real gRPC API: round trips for every
//! spec, encryption context binding, tampered and foreign blobs, limits,
//! data keys, ReEncrypt, GenerateRandom and the ways a key can be named.

mod common;

use std::collections::HashMap;

use common::*;
use kmsim::proto as pb;
use tonic::Code;

const SYMMETRIC_SPECS: [&str; 4] = ["Aliyun_AES_256", "Aliyun_AES_128", "Aliyun_AES_192", "Aliyun_SM4"];

fn context(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (k, v) in pairs {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    map
}

async fn encrypt(kms: &mut Kms, key_id: &str, plaintext: &[u8], ctx: HashMap<String, String>) -> pb::EncryptResponse {
    let request =
        pb::EncryptRequest { key_id: key_id.to_owned(), plaintext: plaintext.to_vec(), encryption_context: ctx };
    kms.encrypt(request).await.expect("encrypt").into_inner()
}

async fn decrypt(
    kms: &mut Kms,
    blob: &[u8],
    ctx: HashMap<String, String>,
) -> Result<pb::DecryptResponse, tonic::Status> {
    let request = pb::DecryptRequest { ciphertext_blob: blob.to_vec(), encryption_context: ctx };
    kms.decrypt(request).await.map(tonic::Response::into_inner)
}

async fn key_metadata(kms: &mut Kms, key_id: &str) -> pb::KeyMetadata {
    let request = pb::DescribeKeyRequest { key_id: key_id.to_owned() };
    kms.describe_key(request).await.expect("describe key").into_inner().key_metadata.expect("key metadata")
}

#[tokio::test]
async fn every_symmetric_spec_round_trips_with_and_without_context() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for spec in SYMMETRIC_SPECS {
        let key_id = create_key(&mut kms, spec).await;
        assert_eq!(key_metadata(&mut kms, &key_id).await.key_spec, spec);
        let plaintext = format!("secret under {spec}").into_bytes();

        let sealed = encrypt(&mut kms, &key_id, &plaintext, HashMap::new()).await;
        assert_eq!(sealed.key_id, key_id, "{spec}");
        assert!(!sealed.ciphertext_blob.windows(plaintext.len()).any(|w| w == plaintext), "{spec}: plaintext visible");
        let opened = decrypt(&mut kms, &sealed.ciphertext_blob, HashMap::new()).await.expect("decrypt without context");
        assert_eq!(opened.plaintext, plaintext, "{spec}");
        assert_eq!(opened.key_id, key_id, "{spec}");

        let ctx = context(&[("purpose", "test"), ("spec", spec)]);
        let sealed = encrypt(&mut kms, &key_id, &plaintext, ctx.clone()).await;
        let opened = decrypt(&mut kms, &sealed.ciphertext_blob, ctx.clone()).await.expect("decrypt with context");
        assert_eq!(opened.plaintext, plaintext, "{spec}");
        assert_eq!(opened.key_id, key_id, "{spec}");
        // The context is bound: leaving it out fails.
        let status = decrypt(&mut kms, &sealed.ciphertext_blob, HashMap::new()).await.unwrap_err();
        assert_invalid(&status, "CiphertextBlob", &format!("{spec}: context left out"));
    }
    server.stop().await;
}

#[tokio::test]
async fn two_encryptions_of_the_same_plaintext_differ() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let a = encrypt(&mut kms, &key_id, b"same", HashMap::new()).await;
    let b = encrypt(&mut kms, &key_id, b"same", HashMap::new()).await;
    assert_ne!(a.ciphertext_blob, b.ciphertext_blob);
    server.stop().await;
}

#[tokio::test]
async fn a_context_given_in_another_insertion_order_decrypts() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let entries =
        [("tenant", "acme"), ("app", "billing"), ("region", "cn-hangzhou"), ("env", "prod"), ("z", ""), ("a", "1")];

    let mut forward = HashMap::new();
    for (k, v) in entries {
        forward.insert(k.to_owned(), v.to_owned());
    }
    let sealed = encrypt(&mut kms, &key_id, b"order does not matter", forward).await;

    let mut backward = HashMap::with_capacity(64);
    for (k, v) in entries.iter().rev() {
        backward.insert((*k).to_owned(), (*v).to_owned());
    }
    let mut interleaved = HashMap::with_capacity(3);
    for i in [3, 0, 5, 1, 4, 2] {
        interleaved.insert(entries[i].0.to_owned(), entries[i].1.to_owned());
    }
    for ctx in [backward, interleaved] {
        let opened = decrypt(&mut kms, &sealed.ciphertext_blob, ctx).await.expect("any order decrypts");
        assert_eq!(opened.plaintext, b"order does not matter");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_context_is_invalid_ciphertext_blob() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let ctx = context(&[("a", "1"), ("b", "2"), ("c", "3")]);
    let sealed = encrypt(&mut kms, &key_id, b"bound", ctx.clone()).await;

    let mut missing = ctx.clone();
    missing.remove("b");
    let mut extra = ctx.clone();
    extra.insert("d".to_owned(), "4".to_owned());
    let mut changed = ctx.clone();
    changed.insert("c".to_owned(), "33".to_owned());
    let mut renamed = ctx.clone();
    renamed.remove("a");
    renamed.insert("A".to_owned(), "1".to_owned());
    // Moving characters between key and value must not collide.
    let mut shifted = ctx.clone();
    shifted.remove("a");
    shifted.insert("a1".to_owned(), String::new());

    let cases = [
        ("missing entry", missing),
        ("extra entry", extra),
        ("changed value", changed),
        ("renamed key", renamed),
        ("shifted boundary", shifted),
        ("no context", HashMap::new()),
    ];
    for (what, wrong) in cases {
        let status = decrypt(&mut kms, &sealed.ciphertext_blob, wrong).await.unwrap_err();
        assert_invalid(&status, "CiphertextBlob", what);
    }
    // A blob sealed without context refuses one given at decryption.
    let bare = encrypt(&mut kms, &key_id, b"bare", HashMap::new()).await;
    let status = decrypt(&mut kms, &bare.ciphertext_blob, context(&[("a", "1")])).await.unwrap_err();
    assert_invalid(&status, "CiphertextBlob", "context added");
    // And the right one still works after all those failures.
    assert_eq!(decrypt(&mut kms, &sealed.ciphertext_blob, ctx).await.unwrap().plaintext, b"bound");
    server.stop().await;
}

#[tokio::test]
async fn every_flipped_byte_of_a_real_blob_is_invalid_ciphertext_blob() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for spec in ["Aliyun_AES_256", "Aliyun_SM4"] {
        let key_id = create_key(&mut kms, spec).await;
        let ctx = context(&[("k", "v")]);
        let blob = encrypt(&mut kms, &key_id, b"tamper with me", ctx.clone()).await.ciphertext_blob;
        assert!(blob.len() > 2 + 16 + 12 + 8 + 14 + 16, "{spec}: blob is {} bytes", blob.len());
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            // A different bit at each index, so every bit position is exercised.
            bad[i] ^= 1 << (i % 8);
            let status = decrypt(&mut kms, &bad, ctx.clone()).await.unwrap_err();
            assert_invalid(&status, "CiphertextBlob", &format!("{spec}: bit {} of byte {i} flipped", i % 8));
        }
        // The untouched blob still decrypts.
        assert_eq!(decrypt(&mut kms, &blob, ctx).await.unwrap().plaintext, b"tamper with me");
    }
    server.stop().await;
}

#[tokio::test]
async fn every_truncation_of_a_real_blob_is_invalid_ciphertext_blob() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let blob = encrypt(&mut kms, &key_id, b"cut me short", HashMap::new()).await.ciphertext_blob;
    for len in 1..blob.len() {
        let status = decrypt(&mut kms, &blob[..len], HashMap::new()).await.unwrap_err();
        assert_invalid(&status, "CiphertextBlob", &format!("truncated to {len} of {} bytes", blob.len()));
    }
    // Trailing garbage is no better than a missing tail.
    let mut longer = blob.clone();
    longer.push(0);
    let status = decrypt(&mut kms, &longer, HashMap::new()).await.unwrap_err();
    assert_invalid(&status, "CiphertextBlob", "one byte appended");
    server.stop().await;
}

#[tokio::test]
async fn garbage_and_empty_ciphertexts() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let status = decrypt(&mut kms, &[], HashMap::new()).await.unwrap_err();
    assert_missing(&status, "CiphertextBlob", "empty ciphertext");
    for garbage in [vec![0u8], vec![1u8; 200], b"not a ciphertext blob at all".to_vec(), vec![0xff; 4096]] {
        let status = decrypt(&mut kms, &garbage, HashMap::new()).await.unwrap_err();
        assert_invalid(&status, "CiphertextBlob", &format!("garbage of {} bytes", garbage.len()));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_blob_from_another_server_is_invalid_ciphertext_blob() {
    let first = TestServer::start().await;
    let second = TestServer::start().await;
    let mut kms1 = first.kms().await;
    let mut kms2 = second.kms().await;
    let key_id = create_key(&mut kms1, "").await;
    // The second server has a key too, so "no keys at all" is not the reason.
    create_key(&mut kms2, "").await;
    let blob = encrypt(&mut kms1, &key_id, b"from elsewhere", HashMap::new()).await.ciphertext_blob;

    let status = decrypt(&mut kms2, &blob, HashMap::new()).await.unwrap_err();
    assert_invalid(&status, "CiphertextBlob", "blob from another server");
    // ReEncrypt on the other server refuses it alike.
    let other_key = create_key(&mut kms2, "").await;
    let request =
        pb::ReEncryptRequest { ciphertext_blob: blob.clone(), destination_key_id: other_key, ..Default::default() };
    let status = kms2.re_encrypt(request).await.unwrap_err();
    assert_invalid(&status, "CiphertextBlob", "ReEncrypt of a blob from another server");
    // It still decrypts where it was made.
    assert_eq!(decrypt(&mut kms1, &blob, HashMap::new()).await.unwrap().plaintext, b"from elsewhere");
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn plaintext_limits() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;

    let largest: Vec<u8> = (0..6144u32).map(|i| (i % 251) as u8).collect();
    let sealed = encrypt(&mut kms, &key_id, &largest, HashMap::new()).await;
    assert_eq!(decrypt(&mut kms, &sealed.ciphertext_blob, HashMap::new()).await.unwrap().plaintext, largest);

    let one = encrypt(&mut kms, &key_id, &[0x42], HashMap::new()).await;
    assert_eq!(decrypt(&mut kms, &one.ciphertext_blob, HashMap::new()).await.unwrap().plaintext, [0x42]);

    let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: vec![7; 6145], ..Default::default() };
    let status = kms.encrypt(request).await.unwrap_err();
    assert_invalid(&status, "Plaintext", "6145-byte plaintext");

    let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: Vec::new(), ..Default::default() };
    let status = kms.encrypt(request).await.unwrap_err();
    assert_missing(&status, "Plaintext", "empty plaintext");

    let request = pb::EncryptRequest { key_id: String::new(), plaintext: b"x".to_vec(), ..Default::default() };
    let status = kms.encrypt(request).await.unwrap_err();
    assert_missing(&status, "KeyId", "no key id");
    server.stop().await;
}

async fn generate_data_key(
    kms: &mut Kms,
    key_id: &str,
    key_spec: &str,
    number_of_bytes: i32,
    ctx: HashMap<String, String>,
) -> Result<pb::GenerateDataKeyResponse, tonic::Status> {
    let request = pb::GenerateDataKeyRequest {
        key_id: key_id.to_owned(),
        key_spec: key_spec.to_owned(),
        number_of_bytes,
        encryption_context: ctx,
    };
    kms.generate_data_key(request).await.map(tonic::Response::into_inner)
}

#[tokio::test]
async fn generate_data_key_lengths() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let cases =
        [("", 0, 32), ("AES_256", 0, 32), ("AES_128", 0, 16), ("", 1, 1), ("", 1024, 1024), ("AES_128", 64, 64)];
    for (spec, number_of_bytes, expected) in cases {
        let data_key = generate_data_key(&mut kms, &key_id, spec, number_of_bytes, HashMap::new()).await.unwrap();
        assert_eq!(data_key.plaintext.len(), expected, "key_spec {spec:?}, number_of_bytes {number_of_bytes}");
        assert_eq!(data_key.key_id, key_id);
    }
    for number_of_bytes in [1025, -1] {
        let status = generate_data_key(&mut kms, &key_id, "", number_of_bytes, HashMap::new()).await.unwrap_err();
        assert_invalid(&status, "NumberOfBytes", &format!("number_of_bytes {number_of_bytes}"));
    }
    let status = generate_data_key(&mut kms, &key_id, "AES_512", 0, HashMap::new()).await.unwrap_err();
    assert_invalid(&status, "KeySpec", "data key spec AES_512");
    server.stop().await;
}

#[tokio::test]
async fn a_data_key_blob_decrypts_to_its_plaintext_under_the_same_context() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for spec in SYMMETRIC_SPECS {
        let key_id = create_key(&mut kms, spec).await;
        let ctx = context(&[("file", "report.pdf"), ("owner", "alice")]);
        let data_key = generate_data_key(&mut kms, &key_id, "", 0, ctx.clone()).await.unwrap();
        assert_eq!(data_key.plaintext.len(), 32);
        let opened = decrypt(&mut kms, &data_key.ciphertext_blob, ctx).await.unwrap();
        assert_eq!(opened.plaintext, data_key.plaintext, "{spec}");
        assert_eq!(opened.key_id, key_id);
        assert_eq!(opened.key_version_id, data_key.key_version_id);
        let status = decrypt(&mut kms, &data_key.ciphertext_blob, HashMap::new()).await.unwrap_err();
        assert_invalid(&status, "CiphertextBlob", &format!("{spec}: data key without its context"));
    }
    // Two data keys differ.
    let key_id = create_key(&mut kms, "").await;
    let a = generate_data_key(&mut kms, &key_id, "", 0, HashMap::new()).await.unwrap();
    let b = generate_data_key(&mut kms, &key_id, "", 0, HashMap::new()).await.unwrap();
    assert_ne!(a.plaintext, b.plaintext);
    server.stop().await;
}

#[tokio::test]
async fn generate_data_key_without_plaintext_returns_a_blob_of_the_right_length() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "Aliyun_SM4").await;
    let ctx = context(&[("purpose", "envelope")]);
    for (spec, number_of_bytes, expected) in [("", 0, 32), ("AES_128", 0, 16), ("", 100, 100)] {
        let request = pb::GenerateDataKeyRequest {
            key_id: key_id.clone(),
            key_spec: spec.to_owned(),
            number_of_bytes,
            encryption_context: ctx.clone(),
        };
        let response = kms.generate_data_key_without_plaintext(request).await.unwrap().into_inner();
        assert_eq!(response.key_id, key_id);
        let opened = decrypt(&mut kms, &response.ciphertext_blob, ctx.clone()).await.unwrap();
        assert_eq!(opened.plaintext.len(), expected, "key_spec {spec:?}, number_of_bytes {number_of_bytes}");
        assert_eq!(opened.key_version_id, response.key_version_id);
    }
    let request = pb::GenerateDataKeyRequest { key_id: key_id.clone(), number_of_bytes: 1025, ..Default::default() };
    let status = kms.generate_data_key_without_plaintext(request).await.unwrap_err();
    assert_invalid(&status, "NumberOfBytes", "without plaintext, 1025 bytes");
    server.stop().await;
}

#[tokio::test]
async fn re_encrypt_moves_a_blob_to_another_key_and_context() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_a = create_key(&mut kms, "Aliyun_AES_128").await;
    let key_b = create_key(&mut kms, "Aliyun_SM4").await;
    let source_ctx = context(&[("stage", "source"), ("n", "1")]);
    let destination_ctx = context(&[("stage", "destination"), ("n", "2"), ("extra", "yes")]);
    let original = encrypt(&mut kms, &key_a, b"moving house", source_ctx.clone()).await;

    let request = pb::ReEncryptRequest {
        ciphertext_blob: original.ciphertext_blob.clone(),
        source_encryption_context: source_ctx.clone(),
        destination_key_id: key_b.clone(),
        destination_encryption_context: destination_ctx.clone(),
    };
    let moved = kms.re_encrypt(request).await.unwrap().into_inner();
    assert_eq!(moved.source_key_id, key_a);
    assert_eq!(moved.source_key_version_id, original.key_version_id);
    assert_eq!(moved.key_id, key_b);
    assert_eq!(moved.key_version_id, key_metadata(&mut kms, &key_b).await.primary_key_version);
    assert_ne!(moved.ciphertext_blob, original.ciphertext_blob);

    let opened = decrypt(&mut kms, &moved.ciphertext_blob, destination_ctx).await.unwrap();
    assert_eq!(opened.plaintext, b"moving house");
    assert_eq!(opened.key_id, key_b);
    assert_eq!(opened.key_version_id, moved.key_version_id);
    // The new blob is bound to the destination context, not the source one.
    let status = decrypt(&mut kms, &moved.ciphertext_blob, source_ctx.clone()).await.unwrap_err();
    assert_invalid(&status, "CiphertextBlob", "re-encrypted blob under the source context");

    let mut wrong = source_ctx.clone();
    wrong.insert("stage".to_owned(), "elsewhere".to_owned());
    let request = pb::ReEncryptRequest {
        ciphertext_blob: original.ciphertext_blob.clone(),
        source_encryption_context: wrong,
        destination_key_id: key_b.clone(),
        destination_encryption_context: HashMap::new(),
    };
    let status = kms.re_encrypt(request).await.unwrap_err();
    assert_invalid(&status, "CiphertextBlob", "ReEncrypt with a wrong source context");

    let request = pb::ReEncryptRequest {
        ciphertext_blob: original.ciphertext_blob,
        source_encryption_context: source_ctx,
        destination_key_id: String::new(),
        destination_encryption_context: HashMap::new(),
    };
    let status = kms.re_encrypt(request).await.unwrap_err();
    assert_missing(&status, "DestinationKeyId", "ReEncrypt without a destination");
    server.stop().await;
}

#[tokio::test]
async fn generate_random_lengths() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let random = |length: i32| {
        let mut kms = kms.clone();
        async move { kms.generate_random(pb::GenerateRandomRequest { length }).await.map(|r| r.into_inner().random) }
    };
    assert_eq!(random(1).await.unwrap().len(), 1);
    let a = random(1024).await.unwrap();
    let b = random(1024).await.unwrap();
    assert_eq!((a.len(), b.len()), (1024, 1024));
    assert_ne!(a, b, "two random draws are equal");
    assert!(a.iter().any(|&byte| byte != a[0]), "1024 random bytes are all {}", a[0]);

    assert_missing(&random(0).await.unwrap_err(), "Length", "length 0");
    assert_invalid(&random(1025).await.unwrap_err(), "Length", "length 1025");
    assert_invalid(&random(-1).await.unwrap_err(), "Length", "length -1");
    // The client is still usable afterwards.
    assert_eq!(
        kms.generate_random(pb::GenerateRandomRequest { length: 16 }).await.unwrap().into_inner().random.len(),
        16
    );
    server.stop().await;
}

#[tokio::test]
async fn keys_can_be_named_by_id_arn_and_alias() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let arn = key_metadata(&mut kms, &key_id).await.arn;
    assert!(arn.starts_with("acs:kms:") && arn.ends_with(&format!(":key/{key_id}")), "arn {arn}");
    let request = pb::CreateAliasRequest { alias_name: "alias/xyz".to_owned(), key_id: key_id.clone() };
    kms.create_alias(request).await.expect("create alias");

    for name in [key_id.as_str(), arn.as_str(), "alias/xyz"] {
        let meta = key_metadata(&mut kms, name).await;
        assert_eq!(meta.key_id, key_id, "DescribeKey by {name}");
        assert_eq!(meta.arn, arn, "DescribeKey by {name}");

        let sealed = encrypt(&mut kms, name, name.as_bytes(), HashMap::new()).await;
        assert_eq!(sealed.key_id, key_id, "Encrypt by {name} answers with the key id");
        let opened = decrypt(&mut kms, &sealed.ciphertext_blob, HashMap::new()).await.unwrap();
        assert_eq!((opened.key_id.as_str(), opened.plaintext.as_slice()), (key_id.as_str(), name.as_bytes()));
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_keys_and_aliases_are_not_found() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let arn = key_metadata(&mut kms, &key_id).await.arn;
    let missing_id = "00000000-0000-4000-8000-000000000000";
    let missing_arn = arn.replace(&key_id, missing_id);

    for name in ["alias/does-not-exist", "alias/xyz"] {
        let describe = kms.describe_key(pb::DescribeKeyRequest { key_id: name.to_owned() }).await.unwrap_err();
        assert_error(&describe, Code::NotFound, "Forbidden.AliasNotFound", "404", None, &format!("DescribeKey {name}"));
        let request = pb::EncryptRequest { key_id: name.to_owned(), plaintext: b"x".to_vec(), ..Default::default() };
        let status = kms.encrypt(request).await.unwrap_err();
        assert_error(&status, Code::NotFound, "Forbidden.AliasNotFound", "404", None, &format!("Encrypt {name}"));
    }
    for name in [missing_id, missing_arn.as_str(), "no-such-key"] {
        let describe = kms.describe_key(pb::DescribeKeyRequest { key_id: name.to_owned() }).await.unwrap_err();
        assert_error(&describe, Code::NotFound, "Forbidden.KeyNotFound", "404", None, &format!("DescribeKey {name}"));
        let request = pb::EncryptRequest { key_id: name.to_owned(), plaintext: b"x".to_vec(), ..Default::default() };
        let status = kms.encrypt(request).await.unwrap_err();
        assert_error(&status, Code::NotFound, "Forbidden.KeyNotFound", "404", None, &format!("Encrypt {name}"));
        let status = generate_data_key(&mut kms, name, "", 0, HashMap::new()).await.unwrap_err();
        assert_error(&status, Code::NotFound, "Forbidden.KeyNotFound", "404", None, &format!("GenerateDataKey {name}"));
    }
    server.stop().await;
}

#[tokio::test]
async fn decrypt_answers_with_the_key_version_that_encrypted() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    for spec in SYMMETRIC_SPECS {
        let key_id = create_key(&mut kms, spec).await;
        let sealed = encrypt(&mut kms, &key_id, b"versioned", HashMap::new()).await;
        assert!(!sealed.key_version_id.is_empty(), "{spec}");
        assert_eq!(sealed.key_version_id, key_metadata(&mut kms, &key_id).await.primary_key_version, "{spec}");
        let opened = decrypt(&mut kms, &sealed.ciphertext_blob, HashMap::new()).await.unwrap();
        assert_eq!(opened.key_version_id, sealed.key_version_id, "{spec}");
    }
    server.stop().await;
}
