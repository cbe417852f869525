//! Micro-benchmarks of the engine's cryptographic operations beside the raw
//! library calls they wrap, run side by side so the engine/raw ratio is
//! measured under the same conditions.
//!
//! Every group is one operation on one key spec with an `engine` function
//! (the [`Engine`] call, in process, with no gRPC and no store) and a `raw`
//! one (the RustCrypto call on a key of the same type, set up once outside the
//! loop). The groups:
//!
//! - `sign/{spec}/{algorithm}` and `verify/{spec}/{algorithm}` for RSA_2048
//!   (PSS, PKCS#1), RSA_3072 (PSS), EC_P256, EC_P256K, EC_P384 and EC_SM2;
//! - `mac/HMAC_256`, `mac/HMAC_512`;
//! - `encrypt/Aliyun_AES_256` and `decrypt/Aliyun_AES_256` (256-byte plaintext,
//!   no encryption context), each also with `raw_with_key_setup`: the cipher
//!   keyed per call, as the engine does, where `raw` keys it once;
//! - `generate_data_key/Aliyun_AES_256` (a 32-byte data key; `raw` draws it
//!   and seals it with a cipher keyed per call);
//! - `create_key/EC_P256`, `create_key/RSA_2048`, `create_key/RSA_3072`, and
//!   `create_key/RSA_4096` only with `KMSIM_BENCH_RSA4096=1`.
//!
//! ```text
//! cargo bench --bench crypto -- --warm-up-time 1 --measurement-time 2
//! cargo bench --bench crypto -- --warm-up-time 1 --measurement-time 2 '^(encrypt|decrypt|generate_data_key)/'
//! KMSIM_BENCH_RSA4096=1 cargo bench --bench crypto -- create_key/RSA_4096
//! ```
//!
//! See docs/benchmarks.md for the results and how to read them.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main, measurement::WallTime};
use hmac::{Hmac, Mac};
use kmsim::clock::SimClock;
use kmsim::context::CallContext;
use kmsim::engine::{CreateKeyInput, Engine, SignRequest, Snapshot};
use p256::elliptic_curve::Generate;
use rsa::signature::SignatureEncoding;
use rsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

const REGION: &str = "cn-hangzhou";
const ACCOUNT: &str = "1192853035118460";
/// The message that is hashed for signing, MACed and encrypted.
const MESSAGE: [u8; 256] = [0x5a; 256];
/// SM2's default distinguishing identifier, as the engine uses it.
const SM2_ID: &str = "1234567812345678";

fn engine() -> Engine {
    Engine::new(ACCOUNT.into(), Arc::new(SimClock::default()), [7; 32], Snapshot::default())
}

fn context(engine: &Engine) -> CallContext {
    CallContext::internal(REGION, ACCOUNT, engine.clock().now())
}

/// Creates an enabled key of `spec` (default usage) and makes it visible; answers its id.
fn create_key(engine: &Engine, spec: &str) -> String {
    let outcome = engine
        .create_key(&context(engine), CreateKeyInput { key_spec: spec.into(), ..Default::default() })
        .expect("create_key");
    let id = outcome.value.meta.key_id.clone();
    engine.apply(outcome.changes);
    id
}

/// A raw signer/verifier of one scheme, on a key generated with the same crate the engine uses.
/// Both closures take the digest; `verify` also takes a signature `sign` made.
struct Raw {
    sign: Box<SignFn>,
    verify: Box<VerifyFn>,
}

type SignFn = dyn Fn(&[u8]) -> Vec<u8>;
type VerifyFn = dyn Fn(&[u8], &[u8]) -> bool;

fn raw_rsa_pss(bits: usize) -> Raw {
    let private = RsaPrivateKey::new(&mut rand::rng(), bits).expect("RSA key generation");
    let public = RsaPublicKey::from(&private);
    Raw {
        sign: Box::new(move |digest| {
            private.sign_with_rng(&mut rand::rng(), Pss::<Sha256>::new(), digest).expect("PSS sign")
        }),
        verify: Box::new(move |digest, signature| public.verify(Pss::<Sha256>::new(), digest, signature).is_ok()),
    }
}

fn raw_rsa_pkcs1(bits: usize) -> Raw {
    let private = RsaPrivateKey::new(&mut rand::rng(), bits).expect("RSA key generation");
    let public = RsaPublicKey::from(&private);
    Raw {
        sign: Box::new(move |digest| private.sign(Pkcs1v15Sign::new::<Sha256>(), digest).expect("PKCS#1 sign")),
        verify: Box::new(move |digest, signature| {
            public.verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature).is_ok()
        }),
    }
}

/// ECDSA over a prehash to an ASN.1 DER signature; verification parses the DER first.
macro_rules! raw_ecdsa {
    ($curve:ident) => {{
        let secret = $curve::SecretKey::generate_from_rng(&mut rand::rng());
        let signing = $curve::ecdsa::SigningKey::from(&secret);
        let verifying = *signing.verifying_key();
        Raw {
            sign: Box::new(move |digest| {
                let signature: $curve::ecdsa::DerSignature = signing.sign_prehash(digest).expect("ECDSA sign");
                signature.to_vec()
            }),
            verify: Box::new(move |digest, signature| {
                $curve::ecdsa::DerSignature::try_from(signature)
                    .is_ok_and(|s| verifying.verify_prehash(digest, &s).is_ok())
            }),
        }
    }};
}

fn raw_sm2() -> Raw {
    let secret = sm2::SecretKey::generate_from_rng(&mut rand::rng());
    let signing = sm2::dsa::SigningKey::new(SM2_ID, &secret).expect("SM2 signing key");
    let verifying = signing.verifying_key().clone();
    Raw {
        sign: Box::new(move |digest| {
            let signature: sm2::dsa::Signature = signing.sign_prehash(digest).expect("SM2 sign");
            sm2::dsa::DerSignature::from(signature).to_vec()
        }),
        verify: Box::new(move |digest, signature| {
            sm2::dsa::DerSignature::try_from(signature)
                .and_then(sm2::dsa::Signature::try_from)
                .is_ok_and(|s| verifying.verify_prehash(digest, &s).is_ok())
        }),
    }
}

/// One signing case: key spec, algorithm, digest length, and the raw counterpart.
struct SignCase {
    spec: &'static str,
    algorithm: &'static str,
    digest: Vec<u8>,
    raw: fn() -> Raw,
    /// RSA private-key operations take milliseconds; fewer samples keep the run short.
    slow: bool,
}

fn sign_cases() -> Vec<SignCase> {
    let sha256 = Sha256::digest(MESSAGE).to_vec();
    let sha384 = Sha384::digest(MESSAGE).to_vec();
    // SM2DSA signs e = SM3(Z_A || M); any 32 bytes stand for it here.
    let sm2_e = sm3::Sm3::digest(MESSAGE).to_vec();
    vec![
        SignCase {
            spec: "RSA_2048",
            algorithm: "RSA_PSS_SHA_256",
            digest: sha256.clone(),
            raw: || raw_rsa_pss(2048),
            slow: true,
        },
        SignCase {
            spec: "RSA_2048",
            algorithm: "RSA_PKCS1_SHA_256",
            digest: sha256.clone(),
            raw: || raw_rsa_pkcs1(2048),
            slow: true,
        },
        SignCase {
            spec: "RSA_3072",
            algorithm: "RSA_PSS_SHA_256",
            digest: sha256.clone(),
            raw: || raw_rsa_pss(3072),
            slow: true,
        },
        SignCase {
            spec: "EC_P256",
            algorithm: "ECDSA_SHA_256",
            digest: sha256.clone(),
            raw: || raw_ecdsa!(p256),
            slow: false,
        },
        SignCase {
            spec: "EC_P256K",
            algorithm: "ECDSA_SHA_256",
            digest: sha256,
            raw: || raw_ecdsa!(k256),
            slow: false,
        },
        SignCase { spec: "EC_P384", algorithm: "ECDSA_SHA_384", digest: sha384, raw: || raw_ecdsa!(p384), slow: false },
        SignCase { spec: "EC_SM2", algorithm: "SM2DSA", digest: sm2_e, raw: raw_sm2, slow: false },
    ]
}

fn bench_signing(c: &mut Criterion) {
    let engine = engine();
    let cx = context(&engine);
    for case in sign_cases() {
        let key_id = create_key(&engine, case.spec);
        let request = SignRequest {
            key_id: &key_id,
            key_version_id: "",
            algorithm: case.algorithm,
            digest: &case.digest,
            message: &[],
            message_type: "DIGEST",
        };
        let raw = (case.raw)();
        let digest = case.digest.as_slice();

        // Each side verifies a signature it made itself, and both must accept it.
        let engine_signature = engine.asymmetric_sign(&cx, request).expect("engine sign").value.value;
        assert!(engine.asymmetric_verify(&cx, request, &engine_signature).expect("engine verify").value.value);
        let raw_signature = (raw.sign)(digest);
        assert!((raw.verify)(digest, &raw_signature));

        let mut group = c.benchmark_group(format!("sign/{}/{}", case.spec, case.algorithm));
        if case.slow {
            group.sample_size(20);
        }
        group.bench_function("engine", |b| b.iter(|| engine.asymmetric_sign(&cx, black_box(request)).unwrap()));
        group.bench_function("raw", |b| b.iter(|| (raw.sign)(black_box(digest))));
        group.finish();

        let mut group = c.benchmark_group(format!("verify/{}/{}", case.spec, case.algorithm));
        group.bench_function("engine", |b| {
            b.iter(|| engine.asymmetric_verify(&cx, black_box(request), black_box(&engine_signature)).unwrap())
        });
        group.bench_function("raw", |b| b.iter(|| (raw.verify)(black_box(digest), black_box(&raw_signature))));
        group.finish();
    }
}

fn raw_hmac<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn bench_mac(c: &mut Criterion) {
    let engine = engine();
    let cx = context(&engine);
    type RawMac = fn(&[u8], &[u8]) -> Vec<u8>;
    let cases: [(&str, &str, usize, RawMac); 2] = [
        ("HMAC_256", "HMAC_SHA_256", 32, raw_hmac::<Hmac<Sha256>>),
        ("HMAC_512", "HMAC_SHA_512", 64, raw_hmac::<Hmac<Sha512>>),
    ];
    for (spec, algorithm, key_len, raw) in cases {
        let key_id = create_key(&engine, spec);
        // Raw key of the length the engine generates: the hash's output length.
        let raw_key = kmsim::engine::crypto::random_secret(key_len);
        assert_eq!(engine.generate_mac(&cx, &key_id, algorithm, &MESSAGE).unwrap().value.value.len(), key_len);

        let mut group = c.benchmark_group(format!("mac/{spec}"));
        group.bench_function("engine", |b| {
            b.iter(|| engine.generate_mac(&cx, &key_id, algorithm, black_box(&MESSAGE)).unwrap())
        });
        group.bench_function("raw", |b| b.iter(|| raw(&raw_key, black_box(&MESSAGE))));
        group.finish();
    }
}

fn bench_encrypt(c: &mut Criterion) {
    let engine = engine();
    let cx = context(&engine);
    let key_id = create_key(&engine, "Aliyun_AES_256");
    let raw_key = kmsim::engine::crypto::random_secret(32);
    let cipher = Aes256Gcm::new_from_slice(&raw_key).expect("32-byte key");
    let nonce = Nonce::from([3u8; 12]);

    let mut group = c.benchmark_group("encrypt/Aliyun_AES_256");
    group.bench_function("engine", |b| {
        b.iter(|| engine.encrypt(&cx, &key_id, black_box(&MESSAGE), BTreeMap::new()).unwrap())
    });
    // The cipher is keyed once, as a library user would; "raw_with_key_setup" keys it per call, as the engine does.
    group.bench_function("raw", |b| b.iter(|| cipher.encrypt(&nonce, black_box(&MESSAGE[..])).unwrap()));
    group.bench_function("raw_with_key_setup", |b| {
        b.iter(|| {
            let cipher = Aes256Gcm::new_from_slice(black_box(&raw_key)).unwrap();
            cipher.encrypt(&nonce, black_box(&MESSAGE[..])).unwrap()
        })
    });
    group.finish();
}

fn bench_decrypt(c: &mut Criterion) {
    let engine = engine();
    let cx = context(&engine);
    let key_id = create_key(&engine, "Aliyun_AES_256");
    let blob = engine.encrypt(&cx, &key_id, &MESSAGE, BTreeMap::new()).expect("engine encrypt").value.ciphertext_blob;
    let raw_key = kmsim::engine::crypto::random_secret(32);
    let cipher = Aes256Gcm::new_from_slice(&raw_key).expect("32-byte key");
    let nonce = Nonce::from([3u8; 12]);
    let sealed = cipher.encrypt(&nonce, &MESSAGE[..]).expect("raw encrypt");

    // Both sides open what they sealed, and get the message back.
    assert_eq!(&engine.decrypt(&cx, &blob, BTreeMap::new()).expect("engine decrypt").value.plaintext[..], MESSAGE);
    assert_eq!(cipher.decrypt(&nonce, sealed.as_slice()).expect("raw decrypt"), MESSAGE);

    let mut group = c.benchmark_group("decrypt/Aliyun_AES_256");
    group.bench_function("engine", |b| b.iter(|| engine.decrypt(&cx, black_box(&blob), BTreeMap::new()).unwrap()));
    // As for encrypt: "raw" keys the cipher once, "raw_with_key_setup" per call, as the engine does.
    group.bench_function("raw", |b| b.iter(|| cipher.decrypt(&nonce, black_box(sealed.as_slice())).unwrap()));
    group.bench_function("raw_with_key_setup", |b| {
        b.iter(|| {
            let cipher = Aes256Gcm::new_from_slice(black_box(&raw_key)).unwrap();
            cipher.decrypt(&nonce, black_box(sealed.as_slice())).unwrap()
        })
    });
    group.finish();
}

/// GenerateDataKey of a 32-byte (AES_256) data key: the engine draws it and seals
/// it under the KMS key; "raw" draws 32 bytes from the same RNG (`random_secret`)
/// and seals them with a cipher keyed per call, as the engine does.
fn bench_generate_data_key(c: &mut Criterion) {
    let engine = engine();
    let cx = context(&engine);
    let key_id = create_key(&engine, "Aliyun_AES_256");
    let raw_key = kmsim::engine::crypto::random_secret(32);
    let nonce = Nonce::from([3u8; 12]);
    let raw = || {
        let data_key = kmsim::engine::crypto::random_secret(32);
        let cipher = Aes256Gcm::new_from_slice(black_box(&raw_key)).unwrap();
        let sealed = cipher.encrypt(&nonce, &data_key[..]).unwrap();
        (data_key, sealed)
    };

    // The engine's sealed data key opens to its plaintext, and the raw one likewise.
    let data_key =
        engine.generate_data_key(&cx, &key_id, "AES_256", 0, BTreeMap::new()).expect("engine data key").value;
    assert_eq!(data_key.plaintext.len(), 32);
    let opened = engine.decrypt(&cx, &data_key.sealed.ciphertext_blob, BTreeMap::new()).expect("engine decrypt");
    assert_eq!(opened.value.plaintext, data_key.plaintext);
    let (raw_data_key, raw_sealed) = raw();
    let cipher = Aes256Gcm::new_from_slice(&raw_key).expect("32-byte key");
    assert_eq!(cipher.decrypt(&nonce, raw_sealed.as_slice()).expect("raw decrypt"), *raw_data_key);

    let mut group = c.benchmark_group("generate_data_key/Aliyun_AES_256");
    group.bench_function("engine", |b| {
        b.iter(|| engine.generate_data_key(&cx, &key_id, black_box("AES_256"), 0, BTreeMap::new()).unwrap())
    });
    group.bench_function("raw", |b| b.iter(raw));
    group.finish();
}

/// Key generation: the engine's `create_key` (generation, PKCS#8 encoding, metadata;
/// the outcome is dropped, not applied) beside the raw key generation.
fn bench_create_key(c: &mut Criterion) {
    let engine = engine();
    let cx = context(&engine);
    let create =
        |spec: &str| engine.create_key(&cx, CreateKeyInput { key_spec: spec.into(), ..Default::default() }).unwrap();

    let mut group = c.benchmark_group("create_key/EC_P256");
    group.bench_function("engine", |b| b.iter(|| create(black_box("EC_P256"))));
    // A key pair: drawing the scalar alone takes nanoseconds; deriving the public key is the cost.
    group.bench_function("raw", |b| {
        b.iter(|| {
            let secret = p256::SecretKey::generate_from_rng(&mut rand::rng());
            let public = secret.public_key();
            (secret, public)
        })
    });
    group.finish();

    let mut rsa_sizes = vec![(2048, Duration::from_secs(8)), (3072, Duration::from_secs(15))];
    if std::env::var_os("KMSIM_BENCH_RSA4096").is_some_and(|v| v == "1") {
        rsa_sizes.push((4096, Duration::from_secs(60)));
    }
    for (bits, measurement_time) in rsa_sizes {
        let spec = format!("RSA_{bits}");
        let mut group = c.benchmark_group(format!("create_key/{spec}"));
        slow_group(&mut group, measurement_time);
        group.bench_function("engine", |b| b.iter(|| create(black_box(&spec))));
        group.bench_function("raw", |b| b.iter(|| RsaPrivateKey::new(&mut rand::rng(), black_box(bits)).unwrap()));
        group.finish();
    }
}

/// RSA key generation takes from tens of milliseconds to seconds, with a wide
/// spread (it searches for primes): ten samples of one generation each.
fn slow_group(group: &mut BenchmarkGroup<'_, WallTime>, measurement_time: Duration) {
    group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
    group.measurement_time(measurement_time);
}

criterion_group!(
    benches,
    bench_signing,
    bench_mac,
    bench_encrypt,
    bench_decrypt,
    bench_generate_data_key,
    bench_create_key
);
criterion_main!(benches);
