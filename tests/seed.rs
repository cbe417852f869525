//! Seeds: keys with given material serve ciphertexts and signatures made
//! outside kmsim; applying a seed twice, or restarting with it, changes
//! nothing; a bad seed names its line and applies nothing.

mod common;

use common::{TestServer, error_code, http_status};
use kmsim::proto as pb;
use kmsim::proto::access_service_client::AccessServiceClient;
use kmsim::seed::SeedSource;
use kmsim::server::ServerConfig;
use kmsim::store::Location;

const AES_KEY: &str = "6f1a0c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b";
const AES_VERSION: &str = "0b9a1f1e-6f0c-4b7e-9a1a-2b3c4d5e6f70";
const AES_MATERIAL_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const SM4_KEY: &str = "7e2b1d3f-6c8e-4f90-8b1c-2d3e4f5a6b7c";
const SM4_MATERIAL_B64: &str = "ABEiM0RVZneImaq7zN3u/w==";
const EC_KEY: &str = "key-hzz6f1a0c2e5b7d4e8f";
const RSA_KEY: &str = "8f3c2e4a-7d9f-4a01-9c2d-3e4f5a6b7c8d";
const HMAC_KEY: &str = "9a4d3f5b-8e0a-4b12-8d3e-4f5a6b7c8d9e";
const HMAC_MATERIAL_HEX: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

/// A P-256 key in SEC1 PEM, as `openssl ecparam -genkey -noout` writes it.
fn ec_private_key() -> p256::SecretKey {
    p256::SecretKey::from_slice(&[0x42; 32]).unwrap()
}

fn ec_pem() -> String {
    use p256::pkcs8::LineEnding;
    ec_private_key().to_sec1_pem(LineEnding::LF).unwrap().to_string()
}

fn rsa_private_key() -> rsa::RsaPrivateKey {
    // Generated once per test run: seeds take whatever key the user has.
    rsa::RsaPrivateKey::new(&mut rand::rng(), 2048).unwrap()
}

fn rsa_pem(key: &rsa::RsaPrivateKey) -> String {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap().to_string()
}

fn indent(text: &str, by: usize) -> String {
    text.lines().map(|line| format!("{}{line}\n", " ".repeat(by))).collect()
}

fn seed_yaml(rsa_pem: &str) -> String {
    format!(
        r#"# Fixtures for tests/seed.rs
instances:
  - id: kst-hzz00000000seeded
    spec: 1000
keys:
  - id: {AES_KEY}
    spec: Aliyun_AES_256
    description: payments
    aliases: [alias/payments]
    tags: {{team: billing}}
    rotation_interval: 30d
    versions:
      - id: 1a2b3c4d-1111-4222-8333-444455556666
      - id: {AES_VERSION}
        material_hex: "{AES_MATERIAL_HEX}"
  - id: {SM4_KEY}
    spec: Aliyun_SM4
    origin: EXTERNAL
    versions:
      - material_base64: "{SM4_MATERIAL_B64}"
  - id: {EC_KEY}
    spec: EC_P256
    aliases: [alias/signer]
    instance: kst-hzz00000000seeded
    versions:
      - private_key_pem: |
{ec}  - id: {RSA_KEY}
    spec: RSA_2048
    usage: ENCRYPT/DECRYPT
    versions:
      - private_key_pem: |
{rsa}  - id: {HMAC_KEY}
    spec: HMAC_256
    state: Disabled
    versions:
      - material_hex: "{HMAC_MATERIAL_HEX}"
  - id: 5c6d7e8f-0a1b-4c2d-8e3f-405162738495
    state: PendingDeletion
    pending_window_days: 7
secrets:
  - name: billing-db
    key: alias/payments
    versions:
      - id: v1
        value: first-password
      - id: v2
        value: second-password
  - name: plain
    value: hello
policies:
  - name: kms-read
    document:
      Version: "1"
      Statement:
        - Effect: Allow
          Action: ["kms:Decrypt"]
          Resource: ["*"]
users:
  - name: alice
    policies: [kms-read]
    access_keys:
      - id: LTAI5tSeededAlice0001
        secret: alice-secret-0123456789abcdef
faults:
  - method: GenerateDataKey
    error_code: Rejected.Throttling
"#,
        ec = indent(&ec_pem(), 10),
        rsa = indent(rsa_pem, 10),
    )
}

fn seeded_config(yaml: &str, store: Location) -> ServerConfig {
    let seed = SeedSource { name: "fixtures.yaml".into(), text: yaml.to_owned() };
    ServerConfig { store, seed: Some(seed), ..ServerConfig::default() }
}

/// A kmsim ciphertext blob made without kmsim: the documented header with an
/// all-zero tag, sealed with AES-GCM under the seeded material.
fn blob_made_outside(
    key_id: &str,
    version: &str,
    material: &[u8],
    plaintext: &[u8],
    context: &[(&str, &str)],
) -> Vec<u8> {
    let mut header = vec![1u8, key_id.len() as u8];
    header.extend_from_slice(key_id.as_bytes());
    header.extend_from_slice(uuid::Uuid::parse_str(version).unwrap().as_bytes());
    let nonce = [9u8; 12];
    header.extend_from_slice(&nonce);
    header.extend_from_slice(&[0; 8]);
    let aad = common::associated_data(&header, context);
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let payload = Payload { msg: plaintext, aad: &aad };
    let nonce = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::from(nonce);
    let sealed = match material.len() {
        32 => aes_gcm::Aes256Gcm::new_from_slice(material).unwrap().encrypt(&nonce, payload).unwrap(),
        16 => aes_gcm::AesGcm::<sm4::Sm4, aes_gcm::aead::consts::U12>::new_from_slice(material)
            .unwrap()
            .encrypt(&nonce, payload)
            .unwrap(),
        n => panic!("no cipher for {n}-byte material"),
    };
    [header, sealed].concat()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

#[tokio::test]
async fn seeded_material_serves_what_was_made_outside_kmsim() {
    use base64::Engine as _;
    let rsa_key = rsa_private_key();
    let server = TestServer::start_config(seeded_config(&seed_yaml(&rsa_pem(&rsa_key)), Location::InMemory)).await;
    let mut kms = server.kms().await;

    // AES-256: a blob made outside, with an encryption context, decrypts; its key is named by the blob.
    let material = hex(AES_MATERIAL_HEX);
    let context = [("app", "billing")];
    let blob = blob_made_outside(AES_KEY, AES_VERSION, &material, b"made outside", &context);
    let request = pb::DecryptRequest {
        ciphertext_blob: blob.clone(),
        encryption_context: context.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    let opened = kms.decrypt(request).await.unwrap().into_inner();
    assert_eq!((opened.plaintext.as_slice(), opened.key_id.as_str()), (&b"made outside"[..], AES_KEY));
    assert_eq!(opened.key_version_id, AES_VERSION);
    // Without the context the AEAD refuses it, as it would any blob.
    let status = kms.decrypt(pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() }).await.unwrap_err();
    assert_eq!(error_code(&status), "InvalidParameter");
    // And what kmsim encrypts under the seeded (primary) version opens outside with the same material.
    let sealed = common::encrypt(&mut kms, "", "alias/payments", b"made inside").await;
    assert_eq!(common::open_outside(&sealed, &material.clone().try_into().unwrap(), &[]), b"made inside");

    // SM4, imported (EXTERNAL) material, with the version id derived by the seed.
    let sm4 = base64::engine::general_purpose::STANDARD.decode(SM4_MATERIAL_B64).unwrap();
    let described = kms.describe_key(pb::DescribeKeyRequest { key_id: SM4_KEY.into() }).await.unwrap().into_inner();
    let meta = described.key_metadata.unwrap();
    assert_eq!((meta.key_state.as_str(), meta.origin.as_str()), ("Enabled", "EXTERNAL"));
    let blob = blob_made_outside(SM4_KEY, &meta.primary_key_version, &sm4, b"sm4 outside", &[]);
    let opened = kms.decrypt(common::decrypt_request(&blob)).await.unwrap().into_inner();
    assert_eq!(opened.plaintext, b"sm4 outside");

    // EC P-256 from a SEC1 PEM: a signature made outside verifies, and kmsim's verifies outside.
    use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
    use sha2::Digest;
    let digest = sha2::Sha256::digest(b"contract").to_vec();
    let signer = p256::ecdsa::SigningKey::from(ec_private_key());
    let outside: p256::ecdsa::Signature = signer.sign_prehash(&digest).unwrap();
    let verify = pb::AsymmetricVerifyRequest {
        key_id: "alias/signer".into(),
        algorithm: "ECDSA_SHA_256".into(),
        digest: digest.clone(),
        signature: outside.to_der().as_bytes().to_vec(),
        ..Default::default()
    };
    assert!(kms.asymmetric_verify(verify).await.unwrap().into_inner().valid);
    let sign = pb::AsymmetricSignRequest {
        key_id: EC_KEY.into(),
        algorithm: "ECDSA_SHA_256".into(),
        digest: digest.clone(),
        ..Default::default()
    };
    let inside = kms.asymmetric_sign(sign).await.unwrap().into_inner().signature;
    let inside = p256::ecdsa::Signature::from_der(&inside).unwrap();
    signer.verifying_key().verify_prehash(&digest, &inside).expect("kmsim signed with the seeded key");

    // RSA from a PKCS#1 PEM: OAEP ciphertext made outside decrypts.
    let public = rsa::RsaPublicKey::from(&rsa_key);
    let ciphertext = public.encrypt(&mut rand::rng(), rsa::Oaep::<sha2::Sha256>::new(), b"rsa outside").unwrap();
    let request = pb::AsymmetricDecryptRequest {
        key_id: RSA_KEY.into(),
        algorithm: "RSAES_OAEP_SHA_256".into(),
        ciphertext_blob: ciphertext,
        ..Default::default()
    };
    assert_eq!(kms.asymmetric_decrypt(request).await.unwrap().into_inner().plaintext, b"rsa outside");

    // HMAC material, in a key seeded Disabled: refused until enabled, then the MAC is the outside one.
    let mac_request =
        || pb::GenerateMacRequest { key_id: HMAC_KEY.into(), algorithm: "HMAC_SHA_256".into(), message: b"m".to_vec() };
    let status = kms.generate_mac(mac_request()).await.unwrap_err();
    assert_eq!((error_code(&status).as_str(), http_status(&status).as_str()), ("Rejected.Disabled", "409"));
    kms.enable_key(pb::EnableKeyRequest { key_id: HMAC_KEY.into() }).await.unwrap();
    let mac = kms.generate_mac(mac_request()).await.unwrap().into_inner().mac;
    use hmac::Mac;
    let mut outside = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(&hex(HMAC_MATERIAL_HEX)).unwrap();
    outside.update(b"m");
    assert_eq!(mac, outside.finalize().into_bytes().to_vec());

    // The rest of the seed: versions, tags, rotation, the pending deletion, the instance, secrets, identities, faults.
    let versions = kms
        .list_key_versions(pb::ListKeyVersionsRequest { key_id: AES_KEY.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = versions.key_versions.iter().map(|v| v.key_version_id.as_str()).collect();
    assert_eq!(ids, ["1a2b3c4d-1111-4222-8333-444455556666", AES_VERSION]);
    let meta = kms.describe_key(pb::DescribeKeyRequest { key_id: AES_KEY.into() }).await.unwrap().into_inner();
    let meta = meta.key_metadata.unwrap();
    assert_eq!((meta.primary_key_version.as_str(), meta.automatic_rotation.as_str()), (AES_VERSION, "Enabled"));
    assert_eq!(meta.rotation_interval, "2592000s");
    let tags = kms.list_resource_tags(pb::ListResourceTagsRequest { key_id: AES_KEY.into() }).await.unwrap();
    assert_eq!(
        format!("{:?}", tags.into_inner().tags),
        format!("{:?}", vec![pb::Tag { tag_key: "team".into(), tag_value: "billing".into() }])
    );
    let pending = kms
        .describe_key(pb::DescribeKeyRequest { key_id: "5c6d7e8f-0a1b-4c2d-8e3f-405162738495".into() })
        .await
        .unwrap()
        .into_inner()
        .key_metadata
        .unwrap();
    assert_eq!(pending.key_state, "PendingDeletion");
    let signer_meta = kms.describe_key(pb::DescribeKeyRequest { key_id: EC_KEY.into() }).await.unwrap().into_inner();
    assert_eq!(signer_meta.key_metadata.unwrap().dkms_instance_id, "kst-hzz00000000seeded");

    let mut secrets = server.secrets().await;
    let value = |version_id: &str| pb::GetSecretValueRequest {
        secret_name: "billing-db".into(),
        version_id: version_id.into(),
        ..Default::default()
    };
    let current = secrets.get_secret_value(value("")).await.unwrap().into_inner();
    assert_eq!((current.secret_data.as_str(), current.version_id.as_str()), ("second-password", "v2"));
    let first = secrets.get_secret_value(value("v1")).await.unwrap().into_inner();
    assert_eq!(
        (first.secret_data.as_str(), first.version_stages.as_slice()),
        ("first-password", &["ACSPrevious".to_owned()][..])
    );
    let plain = pb::GetSecretValueRequest { secret_name: "plain".into(), ..Default::default() };
    assert_eq!(secrets.get_secret_value(plain).await.unwrap().into_inner().secret_data, "hello");

    let mut access = AccessServiceClient::new(server.channel().await);
    let keys = access.list_access_keys(pb::ListAccessKeysRequest { user_name: "alice".into() }).await.unwrap();
    let keys = keys.into_inner().access_keys;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].access_key_id, "LTAI5tSeededAlice0001");
    let policy = access.get_policy(pb::GetPolicyRequest { policy_name: "kms-read".into() }).await.unwrap().into_inner();
    assert!(format!("{policy:?}").contains("alice"), "the policy is attached to alice: {policy:?}");

    let request = pb::GenerateDataKeyRequest { key_id: AES_KEY.into(), ..Default::default() };
    let status = kms.generate_data_key(request).await.unwrap_err();
    assert_eq!(error_code(&status), "Rejected.Throttling", "the seeded fault");
    server.stop().await;
}

/// Everything a seed can create, as the API shows it (fault ids aside: faults live in memory).
async fn state_of(server: &TestServer) -> String {
    let mut kms = server.kms().await;
    let mut out = Vec::new();
    let keys = kms.list_keys(pb::ListKeysRequest { page_number: 1, page_size: 100 }).await.unwrap().into_inner();
    for entry in &keys.keys {
        let key_id = entry.key_id.clone();
        let meta = kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() }).await.unwrap().into_inner();
        let versions = kms
            .list_key_versions(pb::ListKeyVersionsRequest { key_id: key_id.clone(), page_number: 1, page_size: 100 })
            .await
            .unwrap()
            .into_inner();
        out.push(format!("{meta:?}\n{versions:?}"));
    }
    let aliases = kms.list_aliases(pb::ListAliasesRequest { page_number: 1, page_size: 100 }).await.unwrap();
    out.push(format!("{:?}", aliases.into_inner()));
    let mut secrets = server.secrets().await;
    let listed = secrets
        .list_secrets(pb::ListSecretsRequest { fetch_tags: true, page_number: 1, page_size: 100, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    for secret in &listed.secret_list {
        let name = secret.secret_name.clone();
        let versions = secrets
            .list_secret_version_ids(pb::ListSecretVersionIdsRequest {
                secret_name: name.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let value = pb::GetSecretValueRequest { secret_name: name, ..Default::default() };
        let value = secrets.get_secret_value(value).await.unwrap().into_inner();
        out.push(format!("{secret:?}\n{versions:?}\n{} {}", value.secret_data, value.version_id));
    }
    let instances = server.instances().await.list_kms_instances(pb::ListKmsInstancesRequest {}).await.unwrap();
    out.push(format!("{:?}", instances.into_inner()));
    let mut access = AccessServiceClient::new(server.channel().await);
    out.push(format!("{:?}", access.list_users(pb::ListUsersRequest {}).await.unwrap().into_inner()));
    out.push(format!(
        "{:?}",
        access.list_access_keys(pb::ListAccessKeysRequest::default()).await.unwrap().into_inner()
    ));
    out.push(format!("{:?}", access.list_policies(pb::ListPoliciesRequest {}).await.unwrap().into_inner()));
    let faults = server.simulation().await.list_faults(pb::ListFaultsRequest {}).await.unwrap().into_inner();
    for fault in faults.faults {
        out.push(format!("{:?}", pb::Fault { fault_id: String::new(), ..fault }));
    }
    out.join("\n")
}

fn apply(yaml: &str, dry_run: bool) -> pb::ApplySeedRequest {
    pb::ApplySeedRequest { seed: yaml.to_owned(), source: "fixtures.yaml".into(), dry_run }
}

#[tokio::test]
async fn applying_a_seed_twice_and_restarting_leaves_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = seed_yaml(&rsa_pem(&rsa_private_key()));
    let store = || Location::Dir(dir.path().to_path_buf());

    let server = TestServer::start_config(seeded_config(&yaml, store())).await;
    let seeded = state_of(&server).await;
    assert!(seeded.contains(AES_KEY) && seeded.contains("billing-db") && seeded.contains("LTAI5tSeededAlice0001"));

    // The same seed again, over the API: every entry is there already.
    let mut simulation = server.simulation().await;
    let again = simulation.apply_seed(apply(&yaml, false)).await.unwrap().into_inner();
    assert_eq!(again.created, 0, "{again:?}");
    assert!(again.unchanged >= 15, "{again:?}");
    assert!(again.items.iter().all(|item| item.action == "unchanged" && item.line > 0), "{again:?}");
    assert_eq!(state_of(&server).await, seeded, "a second apply changed the state");
    server.stop().await;

    // A restart on the same data dir with the same seed.
    let server = TestServer::start_config(seeded_config(&yaml, store())).await;
    assert_eq!(state_of(&server).await, seeded, "a restart with the seed changed the state");

    // What a test changes stays changed: a seed creates, it does not reset.
    let mut kms = server.kms().await;
    kms.disable_key(pb::DisableKeyRequest { key_id: RSA_KEY.into() }).await.unwrap();
    let changed = state_of(&server).await;
    server.stop().await;
    let server = TestServer::start_config(seeded_config(&yaml, store())).await;
    assert_eq!(state_of(&server).await, changed);
    assert_eq!(common::key_state(&mut server.kms().await, RSA_KEY).await, "Disabled");

    // Each application is one audit record; none of them carries the seed's secrets.
    let events = common::all_audit_events(&server).await;
    let applied: Vec<_> = events.iter().filter(|e| e.event_name == "ApplySeed").collect();
    assert_eq!(applied.len(), 4, "three starts with the seed and one ApplySeed call");
    let everything = format!("{events:?}");
    for secret in ["alice-secret-0123456789abcdef", AES_MATERIAL_HEX, "second-password", "PRIVATE KEY"] {
        assert!(!everything.contains(secret), "the audit trail holds {secret}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_malformed_seed_names_its_line_and_applies_nothing() {
    let server = TestServer::start().await;
    let mut simulation = server.simulation().await;
    let mut kms = server.kms().await;
    let key_id = common::create_key(&mut kms, "").await;
    kms.create_alias(pb::CreateAliasRequest { alias_name: "alias/taken".into(), key_id }).await.unwrap();
    let good_key = "keys:\n  - id: 0aaaaaaa-0000-4000-8000-000000000001\n    aliases: [alias/fresh]\n";
    let cases: Vec<(String, u32, &str)> = vec![
        ("keys: [\n".into(), 1, "unclosed bracket"),
        (format!("{good_key}    sepc: Aliyun_AES_256\n"), 4, "unknown field `sepc`"),
        (format!("{good_key}  - id: 0aaaaaaa-0000-4000-8000-000000000002\n    spec: Aliyun_AES_512\n"), 5, "KeySpec"),
        (
            format!(
                "{good_key}  - id: 0aaaaaaa-0000-4000-8000-000000000003\n    versions:\n      - material_hex: \"0011\"\n"
            ),
            6,
            "the material is 2 bytes; the spec takes 32",
        ),
        (
            format!("{good_key}  - id: 0aaaaaaa-0000-4000-8000-000000000004\n    aliases: [alias/taken]\n"),
            5,
            "alias/taken exists",
        ),
        (format!("{good_key}secrets:\n  - name: s\n    key: alias/nowhere\n    value: x\n"), 6, "no key alias/nowhere"),
        (format!("{good_key}faults:\n  - method: Decrypt\n    error_code: Rejected.Nope\n"), 5, "ErrorCode"),
        (format!("{good_key}users:\n  - name: bob\n    policies: [missing]\n"), 6, "no policy missing"),
    ];
    for (yaml, line, reason) in &cases {
        for dry_run in [true, false] {
            let status = simulation.apply_seed(apply(yaml, dry_run)).await.unwrap_err();
            assert_eq!((error_code(&status).as_str(), http_status(&status).as_str()), ("InvalidParameter", "400"));
            let message = status.message();
            assert!(message.contains("\"Seed\""), "{message}");
            assert!(message.contains(&format!("fixtures.yaml line {line}: ")), "expected line {line}: {message}");
            assert!(message.contains(reason), "expected {reason:?}: {message}");
        }
    }
    // The good first entry of each bad seed was not applied.
    let status = kms.describe_key(pb::DescribeKeyRequest { key_id: "alias/fresh".into() }).await.unwrap_err();
    assert_eq!(error_code(&status), "Forbidden.AliasNotFound");
    let listed = kms.list_keys(pb::ListKeysRequest { page_number: 1, page_size: 100 }).await.unwrap().into_inner();
    assert_eq!(listed.total_count, 1, "only the test's own key");
    assert!(
        server.simulation().await.list_faults(pb::ListFaultsRequest {}).await.unwrap().into_inner().faults.is_empty()
    );

    // A dry run of a good seed reports without creating; the real run creates the same items.
    let planned = simulation.apply_seed(apply(good_key, true)).await.unwrap().into_inner();
    assert_eq!(planned.created, 3, "the key, its derived version and its alias: {planned:?}");
    assert!(kms.describe_key(pb::DescribeKeyRequest { key_id: "alias/fresh".into() }).await.is_err());
    let applied = simulation.apply_seed(apply(good_key, false)).await.unwrap().into_inner();
    assert_eq!(format!("{:?}", applied.items), format!("{:?}", planned.items));
    assert_eq!(common::key_state(&mut kms, "alias/fresh").await, "Enabled");
    server.stop().await;
}

/// `kmsim serve --seed` with a bad seed does not start, and says where the seed is wrong.
#[test]
fn serve_refuses_a_bad_seed_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("bad.yaml");
    std::fs::write(&seed, "keys:\n  - id: 0aaaaaaa-0000-4000-8000-000000000001\n    state: Sleeping\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["serve", "--in-memory", "--listen", "127.0.0.1:0", "--seed"])
        .arg(&seed)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.yaml line 3: "), "{stderr}");
    assert!(stderr.contains("KeyState"), "{stderr}");
    assert!(output.stdout.is_empty(), "it never listened: {:?}", String::from_utf8_lossy(&output.stdout));
}

/// `kmsim seed check` reports without creating, `seed apply` creates, a second apply creates nothing,
/// and a bad seed prints `InvalidParameter (400): … line N: …` with a non-zero exit.
#[tokio::test]
async fn the_cli_checks_and_applies_a_seed_file() {
    use common::cli::{array, kmsim, kmsim_json};
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fixtures.yaml");
    let yaml = "keys:\n  - id: 0bbbbbbb-0000-4000-8000-000000000001\n    aliases: [alias/cli]\nsecrets:\n  - name: cli-secret\n    key: alias/cli\n    value: from-the-cli\n";
    std::fs::write(&file, yaml).unwrap();
    let path = file.to_str().unwrap();

    let checked = kmsim_json(&server, &["seed", "check", path]).await;
    assert_eq!((checked["dryRun"].as_bool(), checked["created"].as_u64()), (Some(true), Some(4)), "{checked:#}");
    let missing = kmsim(&server, &["key", "describe", "alias/cli"]).await;
    assert!(missing.failed().starts_with("Forbidden.AliasNotFound (404): "), "{missing:?}");

    let applied = kmsim_json(&server, &["seed", "apply", path]).await;
    assert_eq!(applied["created"].as_u64(), Some(4), "{applied:#}");
    let kinds: Vec<&str> = array(&applied, "items").iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["key", "key_version", "alias", "secret"]);
    let value = kmsim(&server, &["secret", "get", "cli-secret", "--value-only"]).await;
    assert_eq!(value.ok().trim_end(), "from-the-cli");

    let again = kmsim(&server, &["seed", "apply", path, "--query", "created"]).await;
    assert_eq!(again.ok().trim(), "0");

    std::fs::write(&file, format!("{yaml}faults:\n  - method: Decrypt\n    delay_ms: 999999\n")).unwrap();
    let refused = kmsim(&server, &["seed", "apply", path]).await;
    let line = refused.failed();
    assert!(line.starts_with("InvalidParameter (400): "), "{line}");
    assert!(line.contains("fixtures.yaml line 9: ") && line.contains("DelayMs"), "{line}");
    server.stop().await;
}

/// The ```yaml blocks of a Markdown text, in order.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<String> = None;
    for line in markdown.lines() {
        match (&mut open, line.trim_end()) {
            (None, "```yaml") => open = Some(String::new()),
            (Some(_), "```") => blocks.extend(open.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The seeds a new user meets: the `fixtures.yaml` the README's commands name, shipped at the top of the
/// repository, and every YAML block of the README and of docs/seeding.md, taken from the Markdown itself so that
/// they cannot drift. Each passes `kmsim seed check`; the fixtures apply, and applying them again changes nothing.
#[tokio::test]
async fn the_shipped_fixtures_and_every_documented_seed_pass_seed_check() {
    use common::cli::{kmsim, kmsim_json};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let readme = read("README.md");
    assert!(readme.contains("--seed fixtures.yaml"), "the README names the fixtures it ships");
    let fixtures = root.join("fixtures.yaml");
    let mut seeds = vec![fixtures.clone()];
    let dir = tempfile::tempdir().unwrap();
    for doc in ["README.md", "docs/seeding.md"] {
        let blocks = yaml_blocks(&read(doc));
        assert!(!blocks.is_empty(), "{doc} has no ```yaml block");
        for (i, block) in blocks.into_iter().enumerate() {
            let file = dir.path().join(format!("{}-{}.yaml", doc.replace('/', "-"), i + 1));
            std::fs::write(&file, block).unwrap();
            seeds.push(file);
        }
    }

    let server = TestServer::start().await;
    for seed in &seeds {
        let path = seed.to_str().unwrap();
        let checked = kmsim_json(&server, &["seed", "check", path]).await;
        assert_eq!(checked["dryRun"], true, "{checked:#}");
        assert!(checked["created"].as_u64() > Some(0), "{path}: {checked:#}");
    }
    let fixtures = fixtures.to_str().unwrap();
    let applied = kmsim_json(&server, &["seed", "apply", fixtures]).await;
    assert!(applied["created"].as_u64() > Some(0), "{applied:#}");
    assert_eq!(kmsim(&server, &["seed", "apply", fixtures, "--query", "created"]).await.ok(), "0\n");
    server.stop().await;
}
