//! The instance API's 14 calls, each with the kernel operation it runs as and
//! its messages (`proto/dkms/api.proto`, the SDK's own): one table, in the
//! instance API's vocabulary.
//!
//! - `Aad` is bound as the encryption context `{"Aad": base64(Aad)}`, so a
//!   ciphertext opens only with the same `Aad`, as on an instance.
//! - `Encrypt`'s `CiphertextBlob` is kmsim's blob and its `Iv` the nonce in
//!   it; `Decrypt` takes the blob back, with `Iv` (checked against the blob
//!   when given) and `KeyId` (a key that did not seal it is `IncorrectKey`).
//!   kmsim chooses every IV: a caller's `Iv` on Encrypt is refused.
//! - The `Advance*` calls answer Alibaba's self-describing form, `$`, a
//!   cipher-version/padding byte (0), an algorithm byte (2, AES-GCM), the key
//!   version id (36 characters), the 12-byte IV, then the ciphertext, which is
//!   kmsim's blob; `alibabacloud-kms-python-sdk` slices and reassembles that
//!   form by those offsets, and AdvanceDecrypt checks the version and IV
//!   against the blob.
//! - `Encrypt`/`Decrypt` with an `Algorithm` of an asymmetric key
//!   (`RSAES_OAEP_SHA_256`, `RSAES_OAEP_SHA_1`, `SM2PKE`) run as
//!   AsymmetricEncrypt/AsymmetricDecrypt; `Sign`/`Verify` as
//!   AsymmetricSign/AsymmetricVerify. Records keep the instance API's name.

use std::sync::Arc;

use base64::Engine as _;
use prost::Message;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::dkms_proto as pb;
use crate::engine::crypto::ciphertext::header_fields;
use crate::engine::secrets::encode_data;
use crate::engine::{ErrorCode, KmsError, KmsResult, Sealed};
use crate::frontends::text::{date, extended_config, rotation_fields, stages};
use crate::frontends::{execute_decoded, refuse_unknown};
use crate::kernel::ops::kms::Context;
use crate::kernel::ops::{kms, secrets};
use crate::kernel::{Answer, App, CallMeta, Described};

/// The form the `Advance*` calls answer: `$`, cipher version 0 with no padding, AES-GCM.
const ADVANCE_HEADER: [u8; 3] = [b'$', 0x00, 0x02];
const KEY_VERSION_ID_LEN: usize = 36;
const IV_LEN: usize = 12;
/// What symmetric keys answer as their algorithm.
const AES_GCM: &str = "AES_GCM";

/// Every call this front end honours.
pub const CALLS: &[&str] = &[
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateRandom",
    "GetPublicKey",
    "GetSecretValue",
    "Sign",
    "Verify",
    "AdvanceEncrypt",
    "AdvanceDecrypt",
    "AdvanceGenerateDataKey",
    "AdvanceGenerateDataKeyPair",
];

/// A call's answer: the response message, and the key version it used, which the SDKs read from the
/// `x-kms-migrationkeyversionid` header (the router SDK's Sign and Verify insist on it).
#[derive(Default)]
pub struct Reply {
    pub body: Vec<u8>,
    pub key_version_id: String,
}

/// Runs the call `api_name` with its protobuf `body`.
pub async fn dispatch(app: &Arc<App>, mut meta: CallMeta, api_name: &str, body: &[u8]) -> Answer<Reply> {
    let id = meta.request_id.clone();
    match api_name {
        "Encrypt" => {
            let request = message::<pb::EncryptRequest>(body);
            if let Some(r) = request.as_ref().ok().filter(|r| is_asymmetric(&r.algorithm)) {
                let (key_id, algorithm) = (r.key_id.clone(), r.algorithm.clone());
                meta.called_as = "Encrypt";
                let op = kms::AsymmetricEncrypt {
                    key_id: r.key_id.clone(),
                    key_version_id: String::new(),
                    algorithm: r.algorithm.clone(),
                    plaintext: Zeroizing::new(r.plaintext.clone()),
                };
                return run(app, meta, Ok(op), move |out| pb::EncryptResponse {
                    key_id: if out.key_id.is_empty() { key_id } else { out.key_id },
                    ciphertext_blob: out.value,
                    request_id: id,
                    algorithm,
                    ..Default::default()
                })
                .await;
            }
            let mut padding = String::new();
            let decoded = request.and_then(|r| {
                if !r.iv.is_empty() {
                    return Err(KmsError::invalid_because("Iv", "kmsim chooses the IV; leave Iv out."));
                }
                padding = r.padding_mode;
                Ok(kms::Encrypt {
                    key_id: r.key_id,
                    plaintext: Zeroizing::new(r.plaintext),
                    encryption_context: aad_context(&r.aad),
                })
            });
            run(app, meta, decoded, move |sealed| pb::EncryptResponse {
                key_id: sealed.key_id.clone(),
                iv: iv_of(&sealed.ciphertext_blob),
                ciphertext_blob: sealed.ciphertext_blob,
                request_id: id,
                algorithm: AES_GCM.into(),
                padding_mode: padding,
            })
            .await
        }
        "Decrypt" => {
            let request = message::<pb::DecryptRequest>(body);
            if let Some(r) = request.as_ref().ok().filter(|r| is_asymmetric(&r.algorithm)) {
                let algorithm = r.algorithm.clone();
                meta.called_as = "Decrypt";
                let op = kms::AsymmetricDecrypt {
                    key_id: r.key_id.clone(),
                    key_version_id: String::new(),
                    algorithm: r.algorithm.clone(),
                    ciphertext_blob: r.ciphertext_blob.clone(),
                };
                return run(app, meta, Ok(op), move |out| pb::DecryptResponse {
                    key_id: out.key_id,
                    plaintext: out.value.to_vec(),
                    request_id: id,
                    algorithm,
                    ..Default::default()
                })
                .await;
            }
            let mut padding = String::new();
            let decoded = request.and_then(|r| {
                check_iv(&r.ciphertext_blob, &r.iv)?;
                padding = r.padding_mode;
                Ok(kms::Decrypt {
                    ciphertext_blob: r.ciphertext_blob,
                    encryption_context: aad_context(&r.aad),
                    expected_key_id: r.key_id,
                })
            });
            run(app, meta, decoded, move |opened| pb::DecryptResponse {
                key_id: opened.key_id,
                plaintext: opened.plaintext.to_vec(),
                request_id: id,
                algorithm: AES_GCM.into(),
                padding_mode: padding,
            })
            .await
        }
        "GenerateDataKey" => {
            let decoded = message::<pb::GenerateDataKeyRequest>(body).map(|r| kms::GenerateDataKey {
                key_id: r.key_id,
                key_spec: String::new(),
                number_of_bytes: r.number_of_bytes,
                encryption_context: aad_context(&r.aad),
            });
            run(app, meta, decoded, move |data_key| pb::GenerateDataKeyResponse {
                key_id: data_key.sealed.key_id.clone(),
                iv: iv_of(&data_key.sealed.ciphertext_blob),
                plaintext: data_key.plaintext.to_vec(),
                ciphertext_blob: data_key.sealed.ciphertext_blob,
                request_id: id,
                algorithm: AES_GCM.into(),
            })
            .await
        }
        "AdvanceGenerateDataKey" => {
            meta.called_as = "AdvanceGenerateDataKey";
            let decoded = message::<pb::AdvanceGenerateDataKeyRequest>(body).map(|r| kms::GenerateDataKey {
                key_id: r.key_id,
                key_spec: String::new(),
                number_of_bytes: r.number_of_bytes,
                encryption_context: aad_context(&r.aad),
            });
            run(app, meta, decoded, move |data_key| pb::AdvanceGenerateDataKeyResponse {
                key_id: data_key.sealed.key_id.clone(),
                iv: iv_of(&data_key.sealed.ciphertext_blob),
                plaintext: data_key.plaintext.to_vec(),
                key_version_id: data_key.sealed.key_version_id.to_string(),
                ciphertext_blob: advance_blob(&data_key.sealed),
                request_id: id,
                algorithm: AES_GCM.into(),
            })
            .await
        }
        "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" | "AdvanceGenerateDataKeyPair" => {
            data_key_pair(app, meta, api_name, body).await
        }
        "GenerateRandom" => {
            let decoded = message::<pb::GenerateRandomRequest>(body).map(|r| kms::GenerateRandom { length: r.length });
            run(app, meta, decoded, move |random| pb::GenerateRandomResponse {
                random: random.to_vec(),
                request_id: id,
            })
            .await
        }
        "GetPublicKey" => {
            let decoded = message::<pb::GetPublicKeyRequest>(body)
                .map(|r| kms::GetPublicKey { key_id: r.key_id, key_version_id: String::new() });
            run(app, meta, decoded, move |key| pb::GetPublicKeyResponse {
                key_id: key.key_id,
                public_key: key.value.pem,
                request_id: id,
            })
            .await
        }
        "GetSecretValue" => {
            let decoded = message::<pb::GetSecretValueRequest>(body).map(|r| secrets::GetSecretValue {
                secret_name: r.secret_name,
                version_stage: r.version_stage,
                version_id: r.version_id,
                fetch_extended_config: r.fetch_extended_config,
            });
            run(app, meta, decoded, move |value| {
                let (automatic, interval, next) = rotation_fields(&value.secret);
                pb::GetSecretValueResponse {
                    secret_name: value.secret.name.clone(),
                    secret_type: value.secret.secret_type.as_str().to_owned(),
                    secret_data: encode_data(&value.data, value.secret.data_type).to_string(),
                    secret_data_type: value.secret.data_type.as_str().to_owned(),
                    version_stages: stages(&value.version),
                    version_id: value.version.version_id.clone(),
                    create_time: value.version.created.to_rfc3339(),
                    request_id: id,
                    last_rotation_date: date(value.secret.rotation.last),
                    next_rotation_date: next,
                    extended_config: extended_config(&value.secret),
                    automatic_rotation: automatic,
                    rotation_interval: interval,
                }
            })
            .await
        }
        "Sign" => {
            meta.called_as = "Sign";
            let mut echo = (String::new(), String::new());
            let decoded = message::<pb::SignRequest>(body).map(|r| {
                echo = (r.algorithm.clone(), r.message_type.clone());
                let (digest, message) = digest_or_message(&r.message_type, r.digest, r.message);
                kms::AsymmetricSign {
                    key_id: r.key_id,
                    key_version_id: String::new(),
                    algorithm: r.algorithm,
                    message_type: r.message_type,
                    digest,
                    message,
                }
            });
            run(app, meta, decoded, move |signed| pb::SignResponse {
                key_id: signed.key_id,
                signature: signed.value,
                request_id: id,
                algorithm: echo.0,
                message_type: echo.1,
            })
            .await
        }
        "Verify" => {
            meta.called_as = "Verify";
            let mut echo = (String::new(), String::new());
            let decoded = message::<pb::VerifyRequest>(body).map(|r| {
                echo = (r.algorithm.clone(), r.message_type.clone());
                let (digest, message) = digest_or_message(&r.message_type, r.digest, r.message);
                kms::AsymmetricVerify {
                    key_id: r.key_id,
                    key_version_id: String::new(),
                    algorithm: r.algorithm,
                    message_type: r.message_type,
                    digest,
                    message,
                    signature: r.signature,
                    invalid_is_error: false,
                }
            });
            run(app, meta, decoded, move |checked| pb::VerifyResponse {
                key_id: checked.key_id,
                value: checked.value,
                request_id: id,
                algorithm: echo.0,
                message_type: echo.1,
            })
            .await
        }
        "AdvanceEncrypt" => {
            meta.called_as = "AdvanceEncrypt";
            let mut padding = String::new();
            let decoded = message::<pb::AdvanceEncryptRequest>(body).and_then(|r| {
                if !r.iv.is_empty() {
                    return Err(KmsError::invalid_because("Iv", "kmsim chooses the IV; leave Iv out."));
                }
                padding = r.padding_mode;
                Ok(kms::Encrypt {
                    key_id: r.key_id,
                    plaintext: Zeroizing::new(r.plaintext),
                    encryption_context: aad_context(&r.aad),
                })
            });
            run(app, meta, decoded, move |sealed| pb::AdvanceEncryptResponse {
                key_id: sealed.key_id.clone(),
                iv: iv_of(&sealed.ciphertext_blob),
                ciphertext_blob: advance_blob(&sealed),
                request_id: id,
                algorithm: AES_GCM.into(),
                padding_mode: padding,
                key_version_id: sealed.key_version_id.to_string(),
            })
            .await
        }
        "AdvanceDecrypt" => {
            meta.called_as = "AdvanceDecrypt";
            let mut padding = String::new();
            let decoded = message::<pb::AdvanceDecryptRequest>(body).and_then(|r| {
                let blob = open_advance(&r.ciphertext_blob)?;
                check_iv(&blob, &r.iv)?;
                padding = r.padding_mode;
                Ok(kms::Decrypt {
                    ciphertext_blob: blob,
                    encryption_context: aad_context(&r.aad),
                    expected_key_id: r.key_id,
                })
            });
            run(app, meta, decoded, move |opened| pb::AdvanceDecryptResponse {
                key_id: opened.key_id,
                plaintext: opened.plaintext.to_vec(),
                request_id: id,
                algorithm: AES_GCM.into(),
                padding_mode: padding,
                key_version_id: opened.key_version_id.to_string(),
            })
            .await
        }
        _ => {
            let error = if api_name.is_empty() {
                KmsError::missing(super::API_NAME_HEADER)
            } else {
                KmsError::new(ErrorCode::ActionNotFound)
            };
            let Answer { request_id, result } = refuse_unknown(app, meta, "ApiName", api_name, error).await;
            Answer { request_id, result: result.map(|body| Reply { body, key_version_id: String::new() }) }
        }
    }
}

/// The three data-key-pair calls: one operation, answered in three shapes.
async fn data_key_pair(app: &Arc<App>, mut meta: CallMeta, api_name: &str, body: &[u8]) -> Answer<Reply> {
    let id = meta.request_id.clone();
    let fields = match api_name {
        "AdvanceGenerateDataKeyPair" => {
            meta.called_as = "AdvanceGenerateDataKeyPair";
            message::<pb::AdvanceGenerateDataKeyPairRequest>(body)
                .map(|r| (r.key_id, r.key_pair_spec, r.key_format, r.aad))
        }
        "GenerateDataKeyPairWithoutPlaintext" => message::<pb::GenerateDataKeyPairWithoutPlaintextRequest>(body)
            .map(|r| (r.key_id, r.key_pair_spec, r.key_format, r.aad)),
        _ => message::<pb::GenerateDataKeyPairRequest>(body).map(|r| (r.key_id, r.key_pair_spec, r.key_format, r.aad)),
    };
    let mut format = KeyFormat::Pem;
    let decoded = fields.and_then(|(key_id, key_pair_spec, key_format, aad)| {
        format = KeyFormat::parse(&key_format)?;
        Ok((key_id, key_pair_spec, aad_context(&aad)))
    });
    let id_and_spec = |pair: &crate::engine::DataKeyPair| (pair.sealed.key_id.clone(), pair.spec.as_str().to_owned());
    match api_name {
        "GenerateDataKeyPairWithoutPlaintext" => {
            let decoded = decoded.map(|(key_id, key_pair_spec, encryption_context)| {
                kms::GenerateDataKeyPairWithoutPlaintext { key_id, key_pair_spec, encryption_context }
            });
            run(app, meta, decoded, move |pair| {
                let (key_id, key_pair_spec) = id_and_spec(&pair);
                pb::GenerateDataKeyPairWithoutPlaintextResponse {
                    key_id,
                    iv: iv_of(&pair.sealed.ciphertext_blob),
                    key_pair_spec,
                    public_key: format.public(&pair.public_key),
                    private_key_ciphertext_blob: pair.sealed.ciphertext_blob,
                    request_id: id,
                    algorithm: AES_GCM.into(),
                }
            })
            .await
        }
        "AdvanceGenerateDataKeyPair" => {
            let decoded = decoded.map(|(key_id, key_pair_spec, encryption_context)| kms::GenerateDataKeyPair {
                key_id,
                key_pair_spec,
                encryption_context,
            });
            run(app, meta, decoded, move |pair| {
                let (key_id, key_pair_spec) = id_and_spec(&pair);
                pb::AdvanceGenerateDataKeyPairResponse {
                    key_id,
                    iv: iv_of(&pair.sealed.ciphertext_blob),
                    key_pair_spec,
                    private_key_plaintext: format.private(&pair.private_key),
                    private_key_ciphertext_blob: advance_blob(&pair.sealed),
                    public_key: format.public(&pair.public_key),
                    request_id: id,
                    algorithm: AES_GCM.into(),
                    key_version_id: pair.sealed.key_version_id.to_string(),
                }
            })
            .await
        }
        _ => {
            let decoded = decoded.map(|(key_id, key_pair_spec, encryption_context)| kms::GenerateDataKeyPair {
                key_id,
                key_pair_spec,
                encryption_context,
            });
            run(app, meta, decoded, move |pair| {
                let (key_id, key_pair_spec) = id_and_spec(&pair);
                pb::GenerateDataKeyPairResponse {
                    key_id,
                    iv: iv_of(&pair.sealed.ciphertext_blob),
                    key_pair_spec,
                    private_key_plaintext: format.private(&pair.private_key),
                    private_key_ciphertext_blob: pair.sealed.ciphertext_blob,
                    public_key: format.public(&pair.public_key),
                    request_id: id,
                    algorithm: AES_GCM.into(),
                }
            })
            .await
        }
    }
}

/// Runs a decoded call and answers its output as a protobuf message.
async fn run<Op: Described, M: Message>(
    app: &Arc<App>,
    meta: CallMeta,
    decoded: KmsResult<Op>,
    encode: impl FnOnce(Op::Output) -> M + Send + 'static,
) -> Answer<Reply>
where
    Op::Output: KeyVersioned,
{
    execute_decoded(app, meta, Op::SPEC, decoded, move |output| {
        let key_version_id = output.key_version().map(|v| v.to_string()).unwrap_or_default();
        let body = encode(output).encode_to_vec();
        let size = body.len() as u64;
        (Reply { body, key_version_id }, size)
    })
    .await
}

/// The key version an operation's output was made with, where it has one.
trait KeyVersioned {
    fn key_version(&self) -> Option<Uuid> {
        None
    }
}

impl KeyVersioned for Sealed {
    fn key_version(&self) -> Option<Uuid> {
        Some(self.key_version_id)
    }
}

impl KeyVersioned for crate::engine::Opened {
    fn key_version(&self) -> Option<Uuid> {
        Some(self.key_version_id)
    }
}

impl KeyVersioned for crate::engine::DataKey {
    fn key_version(&self) -> Option<Uuid> {
        Some(self.sealed.key_version_id)
    }
}

impl KeyVersioned for crate::engine::DataKeyPair {
    fn key_version(&self) -> Option<Uuid> {
        Some(self.sealed.key_version_id)
    }
}

impl<T> KeyVersioned for crate::engine::UnderKey<T> {
    fn key_version(&self) -> Option<Uuid> {
        Some(self.key_version_id)
    }
}

impl KeyVersioned for crate::engine::SecretValue {}
impl KeyVersioned for Zeroizing<Vec<u8>> {}

/// The request message, or InvalidParameter naming the body when it is not one.
fn message<M: Message + Default>(body: &[u8]) -> KmsResult<M> {
    M::decode(body).map_err(|_| KmsError::invalid_because("Body", "It is not this call's protobuf request message."))
}

/// The SDK sends what is signed in `Message`, a digest when `MessageType` is `DIGEST`
/// (its `Digest` field is the older spelling, taken when `Message` is empty).
fn digest_or_message(message_type: &str, digest: Vec<u8>, message: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    match message_type {
        "DIGEST" if digest.is_empty() => (message, Vec::new()),
        _ => (digest, message),
    }
}

fn is_asymmetric(algorithm: &str) -> bool {
    algorithm.starts_with("RSAES_") || algorithm == "SM2PKE"
}

/// `Aad` as the encryption context the engine binds into the ciphertext.
fn aad_context(aad: &[u8]) -> Context {
    let mut context = Context::new();
    if !aad.is_empty() {
        context.insert("Aad".to_owned(), base64::engine::general_purpose::STANDARD.encode(aad));
    }
    context
}

fn iv_of(blob: &[u8]) -> Vec<u8> {
    header_fields(blob).map(|(_, nonce)| nonce.to_vec()).unwrap_or_default()
}

/// A given `Iv` must be the one the ciphertext was sealed with.
fn check_iv(blob: &[u8], iv: &[u8]) -> KmsResult<()> {
    if !iv.is_empty() && header_fields(blob).is_some_and(|(_, nonce)| nonce != iv) {
        return Err(KmsError::invalid_because("Iv", "It is not the IV the ciphertext was sealed with."));
    }
    Ok(())
}

/// A sealed blob in the `Advance*` form (see the module docs).
fn advance_blob(sealed: &Sealed) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + KEY_VERSION_ID_LEN + IV_LEN + sealed.ciphertext_blob.len());
    out.extend_from_slice(&ADVANCE_HEADER);
    out.extend_from_slice(sealed.key_version_id.hyphenated().to_string().as_bytes());
    out.extend_from_slice(&iv_of(&sealed.ciphertext_blob));
    out.extend_from_slice(&sealed.ciphertext_blob);
    out
}

/// The kmsim blob inside an `Advance*` ciphertext, whose version and IV must be the ones its header names.
fn open_advance(blob: &[u8]) -> KmsResult<Vec<u8>> {
    let bad = || KmsError::invalid("CiphertextBlob");
    if blob.is_empty() {
        return Err(KmsError::missing("CiphertextBlob"));
    }
    let rest = blob.strip_prefix(&ADVANCE_HEADER).ok_or_else(bad)?;
    if rest.len() <= KEY_VERSION_ID_LEN + IV_LEN {
        return Err(bad());
    }
    let (version, rest) = rest.split_at(KEY_VERSION_ID_LEN);
    let (iv, inner) = rest.split_at(IV_LEN);
    let version = std::str::from_utf8(version).ok().and_then(|v| Uuid::parse_str(v).ok()).ok_or_else(bad)?;
    match header_fields(inner) {
        Some((named, nonce)) if named == version && nonce == iv => Ok(inner.to_vec()),
        _ => Err(bad()),
    }
}

/// `KeyFormat` of the data-key-pair calls: PEM (the default) or DER.
#[derive(Clone, Copy)]
enum KeyFormat {
    Pem,
    Der,
}

impl KeyFormat {
    fn parse(text: &str) -> KmsResult<KeyFormat> {
        match text {
            "" | "PEM" => Ok(KeyFormat::Pem),
            "DER" => Ok(KeyFormat::Der),
            _ => Err(KmsError::invalid_because("KeyFormat", "Write PEM or DER.")),
        }
    }

    fn private(self, der: &[u8]) -> Vec<u8> {
        self.encode("PRIVATE KEY", der)
    }

    fn public(self, der: &[u8]) -> Vec<u8> {
        self.encode("PUBLIC KEY", der)
    }

    fn encode(self, label: &str, der: &[u8]) -> Vec<u8> {
        match self {
            KeyFormat::Der => der.to_vec(),
            KeyFormat::Pem => pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der)
                .map(String::into_bytes)
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advance_ciphertext_is_alibabas_form_around_kmsims_blob() {
        let version = Uuid::new_v4();
        let mut blob = vec![1, 3];
        blob.extend_from_slice(b"key");
        blob.extend_from_slice(version.as_bytes());
        blob.extend_from_slice(&[7; IV_LEN]);
        blob.extend_from_slice(&[0; 8 + 16 + 5]);
        let sealed = Sealed { ciphertext_blob: blob.clone(), key_id: "key".into(), key_version_id: version };
        let advance = advance_blob(&sealed);
        assert_eq!(&advance[..3], b"$\x00\x02");
        assert_eq!(&advance[3..39], version.hyphenated().to_string().as_bytes());
        assert_eq!(&advance[39..51], &[7; IV_LEN]);
        assert_eq!(open_advance(&advance).unwrap(), blob);

        let mut other_iv = advance.clone();
        other_iv[40] ^= 1;
        assert!(open_advance(&other_iv).is_err(), "the IV must be the blob's");
        assert!(open_advance(&advance[..50]).is_err());
        assert!(open_advance(&blob).is_err(), "kmsim's own blob is not the Advance form");
        assert!(check_iv(&blob, &[7; IV_LEN]).is_ok() && check_iv(&blob, &[8; IV_LEN]).is_err());
        assert_eq!(CALLS.len(), 14);
    }
}
