//! The ciphertext blob that Decrypt takes from clients (src/engine/crypto/ciphertext.rs).
//!
//! Every input is used three ways:
//! 1. as a blob for `BlobCodec::parse`, and whatever parses is opened with `ParsedBlob::open` under each cipher;
//! 2. as a blob for `Engine::decrypt`, the whole path from the wire (parse, key lookup, version lookup, open);
//! 3. as a recipe for a real blob with one alteration: the engine encrypts the plaintext the input carries, the
//!    alteration is applied, and Decrypt must give the plaintext back exactly when nothing was altered.
//!
//! Nothing may panic, and no altered blob or changed context may decrypt.

#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use kmsim::clock::SimClock;
use kmsim::context::CallContext;
use kmsim::engine::crypto::ciphertext::BlobCodec;
use kmsim::engine::crypto::symmetric::Cipher;
use kmsim::engine::{CreateKeyInput, Engine, ErrorCode, Snapshot};
use libfuzzer_sys::fuzz_target;

const REGION: &str = "cn-hangzhou";
const ACCOUNT: &str = "1192853035118460";
const BLOB_SECRET: [u8; 32] = [7; 32];

struct Fixture {
    engine: Engine,
    /// The same header secret as the engine's, so blobs the engine made also pass `codec.parse`.
    codec: BlobCodec,
    key_ids: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let engine = Engine::new(ACCOUNT.into(), Arc::new(SimClock::default()), BLOB_SECRET, Snapshot::default());
    let key_ids = ["Aliyun_AES_256", "Aliyun_AES_128", "Aliyun_SM4"]
        .into_iter()
        .map(|spec| {
            let input = CreateKeyInput { key_spec: spec.into(), ..Default::default() };
            let outcome = engine.create_key(&context(&engine), input).expect("create_key");
            let id = outcome.value.meta.key_id.clone();
            engine.apply(outcome.changes);
            id
        })
        .collect();
    Fixture { engine, codec: BlobCodec::new(BLOB_SECRET), key_ids }
});

fn context(engine: &Engine) -> CallContext {
    CallContext::internal(REGION, ACCOUNT, engine.clock().now())
}

fuzz_target!(|data: &[u8]| {
    let fixture = &*FIXTURE;
    let cx = context(&fixture.engine);

    // 1. The codec alone.
    if let Ok(parsed) = fixture.codec.parse(data) {
        assert!(parsed.plaintext_len() < data.len());
        let materials: [(Cipher, &[u8]); 4] = [
            (Cipher::Aes128, &[1; 16]),
            (Cipher::Aes192, &[2; 24]),
            (Cipher::Aes256, &[3; 32]),
            (Cipher::Sm4, &[4; 16]),
        ];
        for (cipher, material) in materials {
            let _ = parsed.open(cipher, material, &BTreeMap::new());
        }
    }

    // 2. Decrypt, from the wire. Nobody outside knows the keys' material, so nothing the fuzzer writes opens.
    if let Ok(opened) = fixture.engine.decrypt(&cx, data, BTreeMap::new()) {
        panic!("an arbitrary blob decrypted under {} to {} bytes", opened.value.key_id, opened.value.plaintext.len());
    }

    // 3. A real blob with one alteration: [key, alteration, position (2 bytes), mask, plaintext...].
    let [key, alteration, position_high, position_low, mask, plaintext @ ..] = data else { return };
    if plaintext.is_empty() || plaintext.len() > 6144 {
        return;
    }
    let key_id = &fixture.key_ids[usize::from(*key) % fixture.key_ids.len()];
    let encryption_context: BTreeMap<String, String> =
        if alteration & 0x80 == 0 { BTreeMap::new() } else { [("purpose".into(), "fuzz".into())].into() };
    let mut blob = fixture
        .engine
        .encrypt(&cx, key_id, plaintext, encryption_context.clone())
        .expect("encrypt under an enabled key")
        .value
        .ciphertext_blob;
    let position = usize::from(u16::from_be_bytes([*position_high, *position_low])) % blob.len();
    let mut decrypt_context = encryption_context.clone();
    let altered = match alteration % 4 {
        0 => false,
        1 => {
            blob[position] ^= (*mask).max(1);
            true
        }
        2 => {
            blob.truncate(position);
            true
        }
        _ => {
            decrypt_context.insert("purpose".into(), "other".into());
            true
        }
    };
    match fixture.engine.decrypt(&cx, &blob, decrypt_context) {
        Ok(opened) => {
            assert!(!altered, "an altered blob or context decrypted");
            assert_eq!(&opened.value.plaintext[..], plaintext);
            assert_eq!(&opened.value.key_id, key_id);
        }
        Err(error) => {
            assert!(altered, "an unaltered blob failed to decrypt: {error:?}");
            // Truncating to nothing is a missing blob; everything else is a bad one, whatever part was hit.
            let expected = if blob.is_empty() { ErrorCode::MissingParameter } else { ErrorCode::InvalidParameter };
            assert_eq!(error.code, expected, "{error:?}");
        }
    }
});
