//! Unwrapping imported key material (src/engine/import.rs): `Engine::import_key_material` with arbitrary
//! EncryptedKeyMaterial and import tokens, against real wrapping keys that GetParametersForImport handed out once.
//! The unwrapping itself is `ParsedKey::decrypt` (src/engine/crypto/asymmetric.rs).
//!
//! The first input byte picks one of four import tokens (AES-256 or SM4 key, RSAES_OAEP_SHA_256 or
//! RSAES_OAEP_SHA_1) and a mode; the rest is:
//! - 0: the EncryptedKeyMaterial, under the real token;
//! - 1: `[n, token (n bytes), material...]`, both arbitrary;
//! - 2: the material in plaintext, wrapped properly with the token's public key: it imports exactly when it has
//!   the key's length;
//! - 3: `[position (2 bytes), mask, material...]`: wrapped properly, then one byte altered: it must not import;
//! - 4: a ciphertext for the same `ParsedKey::decrypt` under SM2PKE (through AsymmetricDecrypt), the scheme whose
//!   input is DER to parse. Import itself refuses SM2PKE as a wrapping algorithm.
//!
//! Outcomes are never applied, so every input meets the keys still waiting for their material.

#![no_main]

use std::sync::{Arc, LazyLock};

use kmsim::clock::SimClock;
use kmsim::context::CallContext;
use kmsim::engine::crypto::wrap::{WrapAlgorithm, WrappingKey};
use kmsim::engine::{CreateKeyInput, Engine, ErrorCode, KmsError, Snapshot};
use libfuzzer_sys::fuzz_target;

const REGION: &str = "cn-hangzhou";
const ACCOUNT: &str = "1192853035118460";

/// One GetParametersForImport answer.
struct Token {
    key_id: String,
    material_len: usize,
    token: String,
    algorithm: WrapAlgorithm,
    wrapping_key: WrappingKey,
}

struct Fixture {
    engine: Engine,
    runtime: tokio::runtime::Runtime,
    tokens: Vec<Token>,
    sm2_key_id: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let engine = Engine::new(ACCOUNT.into(), Arc::new(SimClock::default()), [7; 32], Snapshot::default());
    let create = |spec: &str, origin: &str| {
        let input = CreateKeyInput { key_spec: spec.into(), origin: origin.into(), ..Default::default() };
        let outcome = engine.create_key(&context(&engine), input).expect("create_key");
        let id = outcome.value.meta.key_id.clone();
        engine.apply(outcome.changes);
        id
    };
    let mut tokens = Vec::new();
    for (spec, material_len) in [("Aliyun_AES_256", 32), ("Aliyun_SM4", 16)] {
        let key_id = create(spec, "EXTERNAL");
        for (name, algorithm) in
            [("RSAES_OAEP_SHA_256", WrapAlgorithm::RsaOaepSha256), ("RSAES_OAEP_SHA_1", WrapAlgorithm::RsaOaepSha1)]
        {
            let outcome = engine
                .get_parameters_for_import(&context(&engine), &key_id, name, "RSA_2048")
                .expect("get_parameters_for_import");
            let parameters = outcome.value;
            engine.apply(outcome.changes);
            let wrapping_key = WrappingKey::parse(parameters.public_key.as_bytes()).expect("the wrapping key parses");
            tokens.push(Token {
                key_id: key_id.clone(),
                material_len,
                token: parameters.import_token,
                algorithm,
                wrapping_key,
            });
        }
    }
    let sm2_key_id = {
        let input =
            CreateKeyInput { key_spec: "EC_SM2".into(), key_usage: "ENCRYPT/DECRYPT".into(), ..Default::default() };
        let outcome = engine.create_key(&context(&engine), input).expect("create_key EC_SM2");
        let id = outcome.value.meta.key_id.clone();
        engine.apply(outcome.changes);
        id
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    Fixture { engine, runtime, tokens, sm2_key_id }
});

fn context(engine: &Engine) -> CallContext {
    CallContext::internal(REGION, ACCOUNT, engine.clock().now())
}

impl Fixture {
    fn import(&self, key_id: &str, material: &[u8], token: &str) -> Result<(), KmsError> {
        let cx = context(&self.engine);
        let outcome = self.runtime.block_on(self.engine.import_key_material(&cx, key_id, material, token, 0))?;
        drop(outcome);
        Ok(())
    }
}

fn assert_code(result: Result<(), KmsError>, expected: ErrorCode) {
    match result {
        Ok(()) => panic!("imported, where {expected:?} was due"),
        Err(error) => assert_eq!(error.code, expected, "{error:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let fixture = &*FIXTURE;
    let Some((&selector, rest)) = data.split_first() else { return };
    let token = &fixture.tokens[usize::from(selector & 3)];
    match (selector >> 2) % 5 {
        0 => {
            let expected = if rest.is_empty() { ErrorCode::MissingParameter } else { ErrorCode::InvalidKeyMaterial };
            assert_code(fixture.import(&token.key_id, rest, &token.token), expected);
        }
        1 => {
            let Some((&len, rest)) = rest.split_first() else { return };
            let (arbitrary_token, material) = rest.split_at(usize::from(len).min(rest.len()));
            let arbitrary_token = String::from_utf8_lossy(arbitrary_token);
            let expected = if material.is_empty() || arbitrary_token.is_empty() {
                ErrorCode::MissingParameter
            } else if tokens_include(fixture, &arbitrary_token) {
                return;
            } else {
                ErrorCode::InvalidImportToken
            };
            assert_code(fixture.import(&token.key_id, material, &arbitrary_token), expected);
        }
        2 => {
            let Ok(wrapped) = token.wrapping_key.wrap(token.algorithm, rest) else { return };
            let result = fixture.import(&token.key_id, &wrapped, &token.token);
            if rest.len() == token.material_len {
                result.expect("properly wrapped material of the right length imports");
            } else {
                assert_code(result, ErrorCode::InvalidKeyMaterial);
            }
        }
        3 => {
            let [position_high, position_low, mask, material @ ..] = rest else { return };
            let Ok(mut wrapped) = token.wrapping_key.wrap(token.algorithm, material) else { return };
            let position = usize::from(u16::from_be_bytes([*position_high, *position_low])) % wrapped.len();
            wrapped[position] ^= (*mask).max(1);
            assert_code(fixture.import(&token.key_id, &wrapped, &token.token), ErrorCode::InvalidKeyMaterial);
        }
        _ => {
            let cx = context(&fixture.engine);
            let result = fixture.engine.asymmetric_decrypt(&cx, (&fixture.sm2_key_id, ""), "SM2PKE", rest);
            let expected = if rest.is_empty() { ErrorCode::MissingParameter } else { ErrorCode::InvalidParameter };
            assert_code(result.map(drop), expected);
        }
    }
});

fn tokens_include(fixture: &Fixture, text: &str) -> bool {
    fixture.tokens.iter().any(|token| token.token == text)
}
