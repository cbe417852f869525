//! Round-trip properties over generated inputs (proptest), in process against an [`Engine`]:
//! encrypt/decrypt for any plaintext and encryption context, sign/verify for any digest or message, and
//! printing a parsed audit query and parsing it back. Case counts are kept small enough for a debug build.
//!
//! The fuzz targets (fuzz/, docs/fuzzing.md) cover the other side: inputs that must be refused without a panic.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use kmsim::audit::query::Query;
use kmsim::clock::SimClock;
use kmsim::context::CallContext;
use kmsim::engine::{CreateKeyInput, Engine, ErrorCode, SignRequest, Snapshot};
use proptest::prelude::*;
use proptest::sample::Index;

const REGION: &str = "cn-hangzhou";
const ACCOUNT: &str = "1192853035118460";
/// Encrypt's plaintext limit (/work/shared/reference/kms-semantics.md: 1 to 6144 bytes).
const MAX_PLAINTEXT: usize = 6144;

static ENGINE: LazyLock<Engine> =
    LazyLock::new(|| Engine::new(ACCOUNT.into(), Arc::new(SimClock::default()), [7; 32], Snapshot::default()));

fn context() -> CallContext {
    CallContext::internal(REGION, ACCOUNT, ENGINE.clock().now())
}

/// Creates an enabled key and makes it visible; answers its id.
fn create_key(spec: &str, usage: &str) -> String {
    let input = CreateKeyInput { key_spec: spec.into(), key_usage: usage.into(), ..Default::default() };
    let outcome = ENGINE.create_key(&context(), input).expect("create_key");
    let id = outcome.value.meta.key_id.clone();
    ENGINE.apply(outcome.changes);
    id
}

static SYMMETRIC_KEYS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ["Aliyun_AES_256", "Aliyun_AES_128", "Aliyun_AES_192", "Aliyun_SM4"].map(|spec| create_key(spec, "")).to_vec()
});
static EC_P256_KEY: LazyLock<String> = LazyLock::new(|| create_key("EC_P256", "SIGN/VERIFY"));
static RSA_2048_KEY: LazyLock<String> = LazyLock::new(|| create_key("RSA_2048", "SIGN/VERIFY"));

/// Arbitrary Unicode keys (never empty: Encrypt refuses an empty key) and values.
fn encryption_context() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map("\\PC{1,12}", "\\PC{0,12}", 0..4)
}

/// A different context: one value changed, one entry dropped, or one entry added.
fn changed(context: &BTreeMap<String, String>, how: u8) -> BTreeMap<String, String> {
    let mut other = context.clone();
    match (other.keys().next().cloned(), how % 3) {
        (Some(first), 0) => other.get_mut(&first).expect("present").push('x'),
        (Some(first), 1) => {
            other.remove(&first);
        }
        _ => {
            // Longer than every key there, so certainly new.
            let fresh = other.keys().max_by_key(|key| key.len()).cloned().unwrap_or_default() + "+";
            other.insert(fresh, String::new());
        }
    }
    other
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn encrypt_then_decrypt_gives_the_plaintext_back_only_under_the_same_context(
        key in any::<Index>(),
        plaintext in proptest::collection::vec(any::<u8>(), 1..=MAX_PLAINTEXT),
        encryption_context in encryption_context(),
        how in any::<u8>(),
    ) {
        let key_id = key.get(&SYMMETRIC_KEYS);
        let cx = context();
        let sealed = ENGINE.encrypt(&cx, key_id, &plaintext, encryption_context.clone()).expect("encrypt").value;
        prop_assert_eq!(&sealed.key_id, key_id);

        let opened = ENGINE.decrypt(&cx, &sealed.ciphertext_blob, encryption_context.clone()).expect("decrypt").value;
        prop_assert_eq!(&opened.plaintext[..], &plaintext[..]);
        prop_assert_eq!((&opened.key_id, opened.key_version_id), (key_id, sealed.key_version_id));

        let other = changed(&encryption_context, how);
        prop_assert_ne!(&other, &encryption_context);
        let error = ENGINE.decrypt(&cx, &sealed.ciphertext_blob, other).err().expect("another context must not decrypt");
        prop_assert_eq!(error.code, ErrorCode::InvalidParameter);
    }

    #[test]
    fn ec_p256_signatures_verify_and_a_flipped_bit_does_not(
        input in prop_oneof![
            proptest::collection::vec(any::<u8>(), 32).prop_map(|digest| (digest, "DIGEST")),
            proptest::collection::vec(any::<u8>(), 1..=4096).prop_map(|message| (message, "RAW")),
        ],
        at in any::<Index>(),
        bit in 0..8u8,
    ) {
        let (bytes, message_type) = input;
        assert_sign_verify(&EC_P256_KEY, "ECDSA_SHA_256", &bytes, message_type, at, bit)?;
    }
}

proptest! {
    // RSA signing is slow in a debug build; a few cases show the round trip.
    #![proptest_config(ProptestConfig::with_cases(4))]

    #[test]
    fn rsa_2048_pss_signatures_verify_and_a_flipped_bit_does_not(
        digest in proptest::collection::vec(any::<u8>(), 32),
        at in any::<Index>(),
        bit in 0..8u8,
    ) {
        assert_sign_verify(&RSA_2048_KEY, "RSA_PSS_SHA_256", &digest, "DIGEST", at, bit)?;
    }
}

/// Signs `bytes` (a digest or a raw message), checks the signature verifies, then that it no longer does with
/// bit `bit` of the byte at `at` flipped.
fn assert_sign_verify(
    key_id: &str,
    algorithm: &str,
    bytes: &[u8],
    message_type: &str,
    at: Index,
    bit: u8,
) -> Result<(), TestCaseError> {
    let (digest, message) = if message_type == "DIGEST" { (bytes, &[][..]) } else { (&[][..], bytes) };
    let request = SignRequest { key_id, key_version_id: "", algorithm, digest, message, message_type };
    let cx = context();
    let signature = ENGINE.asymmetric_sign(&cx, request).expect("sign").value.value;
    prop_assert!(ENGINE.asymmetric_verify(&cx, request, &signature).expect("verify").value.value);

    let mut altered = signature.clone();
    altered[at.index(signature.len())] ^= 1 << bit;
    let verified = ENGINE.asymmetric_verify(&cx, request, &altered).expect("verify answers, valid or not").value.value;
    prop_assert!(!verified, "a signature with a flipped bit verified");
    Ok(())
}

/// Words the parser takes as operators; as keywords they must be quoted or escaped (`in` only after a term).
fn is_operator(word: &str) -> bool {
    ["and", "or", "not", "in"].iter().any(|operator| word.eq_ignore_ascii_case(operator))
}

/// A keyword as a user writes it: bare (wildcards after the first character), quoted, or with escapes.
fn keyword() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9é漢][a-zA-Z0-9._é漢*?-]{0,8}",
        "\\PC{0,10}".prop_map(|text| {
            let escaped: String =
                text.chars().flat_map(|c| [(matches!(c, '"' | '\\')).then_some('\\'), Some(c)]).flatten().collect();
            format!("\"{escaped}\"")
        }),
        "[a-z][a-z():<>= \\[\\]\"*?]{0,6}".prop_map(|text| {
            text.chars().flat_map(|c| [(!c.is_ascii_alphabetic()).then_some('\\'), Some(c)]).flatten().collect()
        }),
    ]
    .prop_filter("operators are not keywords", |word| !is_operator(word))
}

fn field() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_]{0,5}(\\.[a-zA-Z][a-zA-Z0-9_]{0,5}){0,2}"
        .prop_filter("operators are not field names", |field| !is_operator(field))
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |n| n.is_finite()).prop_map(|n| format!("{n:e}")),
        (-1000.0..1000.0f64).prop_map(|n| n.to_string()),
    ]
}

fn term() -> impl Strategy<Value = String> {
    prop_oneof![
        keyword(),
        Just("*".to_owned()),
        (field(), keyword()).prop_map(|(field, keyword)| format!("{field}: {keyword}")),
        field().prop_map(|field| format!("{field}: *")),
        (field(), prop::sample::select(vec!["<", "<=", "=", ">=", ">"]), number())
            .prop_map(|(field, op, number)| format!("{field} {op} {number}")),
        (field(), any::<bool>(), number(), number(), any::<bool>()).prop_map(|(field, open, low, high, close)| {
            format!("{field} in {}{low} {high}{}", if open { '[' } else { '(' }, if close { ']' } else { ')' })
        }),
    ]
}

/// What may follow a `not`: `not not` does not parse, so a negated `not …` is parenthesised.
fn negatable(query: &str) -> String {
    if query.to_ascii_lowercase().starts_with("not ") { format!("({query})") } else { query.to_owned() }
}

/// Valid query text: terms combined with every operator spelling, juxtaposition and parentheses.
fn query_text() -> impl Strategy<Value = String> {
    term().prop_recursive(4, 32, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone(), prop::sample::select(vec!["and", "AND", "or", "Or"]))
                .prop_map(|(a, b, op)| format!("{a} {op} {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} {b}")),
            (inner.clone(), inner.clone(), prop::sample::select(vec!["not", "and not", "NOT"]))
                .prop_map(|(a, b, op)| format!("{a} {op} {}", negatable(&b))),
            inner.clone().prop_map(|a| format!("not {}", negatable(&a))),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn a_printed_query_parses_back_to_the_same_query(text in query_text()) {
        let query = Query::parse(&text).map_err(|error| TestCaseError::fail(format!("{text:?}: {error}")))?;
        let printed = query.to_string();
        let reparsed = Query::parse(&printed).map_err(|error| TestCaseError::fail(format!("{printed:?}: {error}")))?;
        prop_assert_eq!(&reparsed, &query, "{:?} printed as {:?}", text, printed);
        prop_assert_eq!(reparsed.to_string(), printed, "printing is not canonical");
    }
}
