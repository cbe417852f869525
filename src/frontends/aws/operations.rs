//! AWS KMS's operations as one table: each, the kernel operation it is, how
//! its JSON request decodes into it (AWS's names and vocabulary), and how the
//! output renders as the JSON AWS answers. An operation of AWS's API that is
//! not in the table is refused with UnsupportedOperationException; a name that
//! is not an operation of AWS's API at all, with UnknownOperationException.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::vocabulary::{
    Algorithms, KEY_SPECS, KEY_USAGES, SIGNING_ALGORITHMS, WRAPPING_KEY_SPECS, algorithms, aws_name, aws_operation,
    from_aws,
};
use super::{Arns, unsupported};
use crate::clock::SimTime;
use crate::engine::grants::{MAX_GRANT_TOKEN_LEN, MAX_GRANT_TOKENS};
use crate::engine::key::{AutomaticRotation, KeyMeta, KeySpec, KeyUsage, MessageType};
use crate::engine::{DataKeyPair, Grant, GrantConstraints, MultiRegionConfiguration, PublicKey};
use crate::engine::{ErrorCode, KmsError, KmsResult, Page, Paged};
pub use crate::frontends::json::Json;
use crate::frontends::text::page_fields;
use crate::frontends::{decode, refuse_unknown};
use crate::kernel::ops::kms::{CancelRestores, Context};
use crate::kernel::ops::lookup::KeyLastUsage;
use crate::kernel::ops::params::Withheld;
use crate::kernel::ops::{grants, kms, lookup};
use crate::kernel::{Answer, App, CallMeta};

/// Every operation of AWS KMS's current API (botocore's service model, 56), offered or not.
pub const AWS_OPERATIONS: &[&str] = &[
    "CancelKeyDeletion",
    "ConnectCustomKeyStore",
    "CreateAlias",
    "CreateCustomKeyStore",
    "CreateGrant",
    "CreateKey",
    "Decapsulate",
    "Decrypt",
    "DeleteAlias",
    "DeleteCustomKeyStore",
    "DeleteImportedKeyMaterial",
    "DeriveSharedSecret",
    "DescribeCustomKeyStores",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "DisconnectCustomKeyStore",
    "EnableKey",
    "EnableKeyRotation",
    "Encapsulate",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "GetKeyLastUsage",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetParametersForImport",
    "GetPublicKey",
    "ImportKeyMaterial",
    "ListAliases",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListKeys",
    "ListResourceTags",
    "ListRetirableGrants",
    "PutKeyPolicy",
    "ReEncrypt",
    "ReplicateKey",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "Sign",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateCustomKeyStore",
    "UpdateKeyDescription",
    "UpdatePrimaryRegion",
    "Verify",
    "VerifyMac",
];

/// The largest page AWS's list operations return, and kmsim's.
const MAX_LIMIT: i32 = 100;
/// The page ListGrants and ListRetirableGrants answer when no `Limit` is given (AWS's default).
const DEFAULT_GRANT_LIMIT: i32 = 50;

/// The operations whose requests carry `GrantTokens` (botocore's model), which the kernel checks.
const TAKE_GRANT_TOKENS: &[&str] = &[
    "CreateGrant",
    "Decrypt",
    "DescribeKey",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GetPublicKey",
    "ReEncrypt",
    "Sign",
    "Verify",
    "VerifyMac",
];

/// The most plaintext AWS's Encrypt takes.
const MAX_PLAINTEXT_BYTES: usize = 4096;

/// Declares the table: `"Operation" => module::Op { field: decoder, … } => encoder;`. An
/// operation AWS serves with two of kmsim's (Encrypt: symmetric or asymmetric) has a guarded
/// row first: `"Operation" if condition => …`.
/// Decoders read the request through `$j` ([`Json`]) and name ARNs through `$arns`.
macro_rules! operations {
    ($j:ident, $arns:ident; $($name:literal $(if $guard:expr)? => $module:ident::$op:ident { $($field:ident: $decode:expr),* $(,)? } => $encode:expr;)+) => {
        /// Every operation this front end offers, in the table's order.
        pub const OFFERED: &[&str] = &[$($name),+];

        /// Runs the call to `operation` with its JSON request.
        pub async fn dispatch(app: &Arc<App>, mut meta: CallMeta, operation: &str, $j: Json<'_>, $arns: &Arns) -> Answer<Vec<u8>> {
            match operation {
                $($name $(if $guard)? => {
                    // The record names the operation as AWS does, as CloudTrail would.
                    meta.called_as = $name;
                    if TAKE_GRANT_TOKENS.contains(&$name) {
                        match $j.grant_tokens() {
                            Ok(tokens) => meta.grant_tokens = tokens,
                            Err(refused) => {
                                meta.refusal.get_or_insert(refused);
                            }
                        }
                    }
                    let decoded = decode(|| Ok($module::$op { $($field: $decode),* }));
                    run(app, meta, decoded, $encode).await
                })+
                _ => refuse(app, meta, operation).await,
            }
        }
    };
}

operations! { j, arns;
    "CreateKey" => kms::CreateKey {
        key_spec: engine_name(from_aws(KEY_SPECS, &j.text_or("KeySpec", "CustomerMasterKeySpec"), "KeySpec")?),
        key_usage: engine_name(from_aws(KEY_USAGES, &j.text("KeyUsage"), "KeyUsage")?),
        origin: match j.text("Origin").as_str() {
            "" | "AWS_KMS" => String::new(),
            "EXTERNAL" => "EXTERNAL".to_owned(),
            _ => return Err(KmsError::invalid_because("Origin", "Use AWS_KMS or EXTERNAL.")),
        },
        description: j.text("Description"),
        protection_level: String::new(),
        enable_automatic_rotation: false,
        rotation_interval: String::new(),
        exportable: false,
        dkms_instance_id: String::new(),
        policy: j.text("Policy"),
        multi_region: j.boolean("MultiRegion")?,
        tags: j.tags("Tags")?,
    } => {
        let arns = arns.clone();
        move |key| {
            // A new multi-Region key is a primary with no replicas yet.
            let set = key.meta.multi_region.as_ref().map(|m| MultiRegionConfiguration {
                primary_region: m.primary_region.clone(),
                replica_regions: Vec::new(),
            });
            json!({ "KeyMetadata": key_metadata(&key.meta, set.as_ref(), &arns) })
        }
    };
    "DescribeKey" => kms::DescribeKey { key_id: arns.key_reference(&j.text("KeyId")) } => {
        let arns = arns.clone();
        move |described| json!({ "KeyMetadata": key_metadata(&described.meta, described.multi_region.as_ref(), &arns) })
    };
    "ReplicateKey" => kms::ReplicateMultiRegionKey {
        key_id: arns.key_reference(&j.text("KeyId")),
        replica_region: j.text("ReplicaRegion"),
        description: j.text("Description"),
        policy: j.text("Policy"),
        tags: j.tags("Tags")?,
    } => {
        let arns = arns.clone();
        move |replicated| {
            let meta = &replicated.replica.meta;
            let tags: Vec<Value> = meta.tags.iter().map(|(k, v)| json!({ "TagKey": k, "TagValue": v })).collect();
            json!({
                "ReplicaKeyMetadata": key_metadata(meta, Some(&replicated.configuration), &arns),
                "ReplicaPolicy": aws_policy(&replicated.policy, &arns.account_id),
                "ReplicaTags": tags,
            })
        }
    };
    "UpdatePrimaryRegion" => kms::UpdatePrimaryRegion {
        key_id: arns.key_reference(&j.text("KeyId")),
        primary_region: j.text("PrimaryRegion"),
    } => |()| json!({});
    "ListKeys" => kms::ListKeys { page_number: j.marker()?, page_size: j.limit()? } => {
        let arns = arns.clone();
        move |paged| {
            let keys = paged.items.iter().map(|k| json!({ "KeyId": k.key.meta.key_id, "KeyArn": arns.key(&k.key.meta.key_id) })).collect();
            listing(&paged, "Keys", keys)
        }
    };
    "EnableKey" => kms::EnableKey { key_id: arns.key_reference(&j.text("KeyId")) } => |_| json!({});
    "DisableKey" => kms::DisableKey { key_id: arns.key_reference(&j.text("KeyId")) } => |_| json!({});
    "ScheduleKeyDeletion" => kms::ScheduleKeyDeletion {
        key_id: arns.key_reference(&j.text("KeyId")),
        // AWS's default window is 30 days, as kmsim's; AWS's longest is 30, not Alibaba's 366.
        pending_window_in_days: match j.int("PendingWindowInDays")? {
            0 => 30,
            days @ 7..=30 => days,
            _ => return Err(KmsError::invalid_because("PendingWindowInDays", "Send 7 to 30.")),
        },
    } => {
        let arns = arns.clone();
        // The window as decoded (its default is 30): the decoder has refused any other.
        let days = match j.int("PendingWindowInDays") { Ok(0) | Err(_) => 30, Ok(days) => days };
        move |(key_id, date)| json!({
            "KeyId": arns.key(&key_id),
            "DeletionDate": epoch(date),
            "KeyState": "PendingDeletion",
            "PendingWindowInDays": days,
        })
    };
    // AWS leaves a key whose deletion is cancelled Disabled.
    "CancelKeyDeletion" => kms::CancelKeyDeletion { key_id: arns.key_reference(&j.text("KeyId")), restore: CancelRestores::Disabled }
        => { let arns = arns.clone(); move |key| json!({ "KeyId": arns.key(&key.meta.key_id) }) };
    "UpdateKeyDescription" => kms::UpdateKeyDescription {
        key_id: arns.key_reference(&j.text("KeyId")),
        description: j.text("Description"),
    } => |_| json!({});
    "CreateAlias" => kms::CreateAlias { alias_name: j.alias_name()?, key_id: arns.key_reference(&j.text("TargetKeyId")) }
        => |()| json!({});
    "UpdateAlias" => kms::UpdateAlias {
        alias_name: j.alias_name()?,
        target_key_id: arns.key_reference(&j.text("TargetKeyId")),
    } => |()| json!({});
    "DeleteAlias" => kms::DeleteAlias { alias_name: j.text("AliasName") } => |()| json!({});
    "ListAliases" => kms::ListAliases {
        key_id: arns.key_reference(&j.text("KeyId")),
        page_number: j.marker()?,
        page_size: j.limit()?,
    } => {
        let arns = arns.clone();
        move |paged| {
            let aliases = paged.items.iter().map(|a| json!({
                "AliasName": a.alias_name,
                "AliasArn": arns.alias(&a.alias_name),
                "TargetKeyId": a.key_id,
            })).collect();
            listing(&paged, "Aliases", aliases)
        }
    };
    "TagResource" => kms::TagResource { key_id: arns.key_reference(&j.text("KeyId")), tags: j.tags("Tags")? } => |_| json!({});
    "UntagResource" => kms::UntagResource { key_id: arns.key_reference(&j.text("KeyId")), tag_keys: j.list("TagKeys")? }
        => |_| json!({});
    "ListResourceTags" => kms::ListResourceTags {
        key_id: arns.key_reference(&j.text("KeyId")),
        page: Some(Page::from_request(j.marker()?, j.limit()?)?),
    } => |paged| {
        let tags = paged.items.iter().map(|(k, v)| json!({ "TagKey": k, "TagValue": v })).collect();
        listing(&paged, "Tags", tags)
    };
    "Encrypt" if j.asymmetric() => kms::AsymmetricEncrypt {
        key_id: arns.key_reference(&j.text("KeyId")),
        key_version_id: String::new(),
        algorithm: j.text("EncryptionAlgorithm"),
        plaintext: zeroize::Zeroizing::new(j.blob("Plaintext")?),
    } => {
        let (arns, algorithm) = (arns.clone(), j.text("EncryptionAlgorithm"));
        move |sealed| json!({
            "CiphertextBlob": b64(&sealed.value),
            "KeyId": arns.key(&sealed.key_id),
            "EncryptionAlgorithm": algorithm,
        })
    };
    "Decrypt" if j.asymmetric() => kms::AsymmetricDecrypt {
        key_id: arns.key_reference(&j.text("KeyId")),
        key_version_id: String::new(),
        algorithm: j.text("EncryptionAlgorithm"),
        ciphertext_blob: j.blob("CiphertextBlob")?,
    } => {
        let (arns, algorithm) = (arns.clone(), j.text("EncryptionAlgorithm"));
        move |opened| json!({
            "KeyId": arns.key(&opened.key_id),
            "Plaintext": b64(&opened.value),
            "EncryptionAlgorithm": algorithm,
        })
    };
    "Encrypt" => kms::Encrypt {
        key_id: arns.key_reference(&j.text("KeyId")),
        plaintext: zeroize::Zeroizing::new(j.plaintext()?),
        encryption_context: j.context("EncryptionContext")?,
    } => {
        let arns = arns.clone();
        move |sealed| json!({
            "CiphertextBlob": b64(&sealed.ciphertext_blob),
            "KeyId": arns.key(&sealed.key_id),
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        })
    };
    "Decrypt" => kms::Decrypt {
        ciphertext_blob: j.blob("CiphertextBlob")?,
        encryption_context: j.context("EncryptionContext")?,
        // Optional in AWS's API; one that is not the ciphertext's key is IncorrectKeyException.
        expected_key_id: arns.key_reference(&j.text("KeyId")),
    } => {
        let arns = arns.clone();
        move |opened| json!({
            "KeyId": arns.key(&opened.key_id),
            "Plaintext": b64(&opened.plaintext),
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        })
    };
    "ReEncrypt" => kms::ReEncrypt {
        ciphertext_blob: j.blob("CiphertextBlob")?,
        source_encryption_context: j.context("SourceEncryptionContext")?,
        destination_key_id: arns.key_reference(&j.text("DestinationKeyId")),
        destination_encryption_context: j.context("DestinationEncryptionContext")?,
        expected_source_key_id: arns.key_reference(&j.text("SourceKeyId")),
    } => {
        let arns = arns.clone();
        move |re| json!({
            "CiphertextBlob": b64(&re.sealed.ciphertext_blob),
            "SourceKeyId": arns.key(&re.source_key_id),
            "KeyId": arns.key(&re.sealed.key_id),
            "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        })
    };
    "GenerateDataKey" => kms::GenerateDataKey {
        key_id: arns.key_reference(&j.text("KeyId")),
        key_spec: j.text("KeySpec"),
        number_of_bytes: j.int("NumberOfBytes")?,
        encryption_context: j.context("EncryptionContext")?,
    } => {
        let arns = arns.clone();
        move |data_key| json!({
            "CiphertextBlob": b64(&data_key.sealed.ciphertext_blob),
            "Plaintext": b64(&data_key.plaintext),
            "KeyId": arns.key(&data_key.sealed.key_id),
        })
    };
    "GenerateDataKeyWithoutPlaintext" => kms::GenerateDataKeyWithoutPlaintext {
        key_id: arns.key_reference(&j.text("KeyId")),
        key_spec: j.text("KeySpec"),
        number_of_bytes: j.int("NumberOfBytes")?,
        encryption_context: j.context("EncryptionContext")?,
    } => {
        let arns = arns.clone();
        move |sealed| json!({ "CiphertextBlob": b64(&sealed.ciphertext_blob), "KeyId": arns.key(&sealed.key_id) })
    };
    "GenerateDataKeyPair" => kms::GenerateDataKeyPair {
        key_id: arns.key_reference(&j.text("KeyId")),
        key_pair_spec: j.key_pair_spec()?,
        encryption_context: j.context("EncryptionContext")?,
    } => { let arns = arns.clone(); move |pair| key_pair(&pair, &arns, true) };
    "GenerateDataKeyPairWithoutPlaintext" => kms::GenerateDataKeyPairWithoutPlaintext {
        key_id: arns.key_reference(&j.text("KeyId")),
        key_pair_spec: j.key_pair_spec()?,
        encryption_context: j.context("EncryptionContext")?,
    } => { let arns = arns.clone(); move |pair| key_pair(&pair, &arns, false) };
    "GenerateRandom" => kms::GenerateRandom { length: j.int("NumberOfBytes")? }
        => |random| json!({ "Plaintext": b64(&random) });
    "Sign" => kms::AsymmetricSign {
        key_id: arns.key_reference(&j.text("KeyId")),
        key_version_id: String::new(),
        algorithm: engine_name(from_aws(SIGNING_ALGORITHMS, &j.text("SigningAlgorithm"), "SigningAlgorithm")?),
        message_type: j.message_type().to_owned(),
        digest: j.message_if(MessageType::Digest)?,
        message: j.message_if(MessageType::Raw)?,
    } => {
        let (arns, algorithm) = (arns.clone(), j.text("SigningAlgorithm"));
        move |signed| json!({
            "KeyId": arns.key(&signed.key_id),
            "Signature": b64(&signed.value),
            "SigningAlgorithm": algorithm,
        })
    };
    "Verify" => kms::AsymmetricVerify {
        key_id: arns.key_reference(&j.text("KeyId")),
        key_version_id: String::new(),
        algorithm: engine_name(from_aws(SIGNING_ALGORITHMS, &j.text("SigningAlgorithm"), "SigningAlgorithm")?),
        message_type: j.message_type().to_owned(),
        digest: j.message_if(MessageType::Digest)?,
        message: j.message_if(MessageType::Raw)?,
        signature: j.blob("Signature")?,
        // AWS answers an invalid signature with KMSInvalidSignatureException, never SignatureValid false.
        invalid_is_error: true,
    } => {
        let (arns, algorithm) = (arns.clone(), j.text("SigningAlgorithm"));
        move |checked| json!({ "KeyId": arns.key(&checked.key_id), "SignatureValid": checked.value, "SigningAlgorithm": algorithm })
    };
    "DeriveSharedSecret" => kms::DeriveSharedSecret {
        key_id: arns.key_reference(&j.text("KeyId")),
        key_agreement_algorithm: j.text("KeyAgreementAlgorithm"),
        public_key: j.blob("PublicKey")?,
    } => {
        let arns = arns.clone();
        move |derived| json!({
            "KeyId": arns.key(&derived.key_id),
            "SharedSecret": b64(&derived.value),
            "KeyAgreementAlgorithm": "ECDH",
            "KeyOrigin": "AWS_KMS",
        })
    };
    "GetPublicKey" => kms::GetPublicKey { key_id: arns.key_reference(&j.text("KeyId")), key_version_id: String::new() } => {
        let arns = arns.clone();
        move |public| {
            let PublicKey { pem, spec, usage } = &public.value;
            let mut body = json!({
                "KeyId": arns.key(&public.key_id),
                "PublicKey": b64(&pem_body(pem)),
                "KeySpec": aws_name(KEY_SPECS, *spec),
                "CustomerMasterKeySpec": aws_name(KEY_SPECS, *spec),
                "KeyUsage": aws_name(KEY_USAGES, *usage),
            });
            algorithm_lists(&mut body, *spec, *usage);
            body
        }
    };
    "EnableKeyRotation" => kms::EnableKeyRotation {
        key_id: arns.key_reference(&j.text("KeyId")),
        rotation_period_in_days: j.int("RotationPeriodInDays")?,
    } => |_| json!({});
    "DisableKeyRotation" => kms::DisableKeyRotation { key_id: arns.key_reference(&j.text("KeyId")) } => |_| json!({});
    "GetKeyRotationStatus" => kms::GetKeyRotationStatus { key_id: arns.key_reference(&j.text("KeyId")) } => {
        let arns = arns.clone();
        move |meta| {
            let rotation = &meta.rotation;
            let enabled = rotation.automatic == AutomaticRotation::Enabled;
            let mut body = json!({ "KeyId": arns.key(&meta.key_id), "KeyRotationEnabled": enabled });
            if enabled {
                body["RotationPeriodInDays"] = json!(rotation.interval_secs.map(|secs| secs / 86_400));
                body["NextRotationDate"] = json!(rotation.next_rotation_date.map(epoch));
            }
            body
        }
    };
    "RotateKeyOnDemand" => kms::RotateKeyOnDemand { key_id: arns.key_reference(&j.text("KeyId")) }
        => { let arns = arns.clone(); move |version| json!({ "KeyId": arns.key(&version.key_id) }) };
    "ListKeyRotations" => kms::ListKeyRotations {
        key_id: arns.key_reference(&j.text("KeyId")),
        page_number: j.marker()?,
        page_size: j.limit()?,
    } => {
        let arns = arns.clone();
        move |paged| {
            let rotations = paged.items.iter().map(|v| json!({
                "KeyId": arns.key(&v.key_id),
                "RotationDate": epoch(v.creation_date),
                "RotationType": if v.on_demand { "ON_DEMAND" } else { "AUTOMATIC" },
            })).collect();
            listing(&paged, "Rotations", rotations)
        }
    };
    "GetKeyPolicy" => kms::GetKeyPolicy { key_id: arns.key_reference(&j.text("KeyId")), policy_name: j.text("PolicyName") }
        => { let account_id = arns.account_id.clone(); move |policy| json!({ "Policy": aws_policy(&policy, &account_id), "PolicyName": "default" }) };
    "PutKeyPolicy" => kms::SetKeyPolicy {
        key_id: arns.key_reference(&j.text("KeyId")),
        policy_name: j.text("PolicyName"),
        policy: j.text("Policy"),
    } => |()| json!({});
    "ListKeyPolicies" => kms::ListKeyPolicies { key_id: arns.key_reference(&j.text("KeyId")) }
        => |names| json!({ "PolicyNames": names, "Truncated": false });
    "GetParametersForImport" => kms::GetParametersForImport {
        key_id: arns.key_reference(&j.text("KeyId")),
        wrapping_algorithm: j.text("WrappingAlgorithm"),
        wrapping_key_spec: engine_name(from_aws(WRAPPING_KEY_SPECS, &j.text("WrappingKeySpec"), "WrappingKeySpec")?),
    } => {
        let arns = arns.clone();
        move |parameters| json!({
            "KeyId": arns.key(&parameters.key_id),
            // AWS's token is opaque bytes; kmsim's is text, carried as its bytes.
            "ImportToken": b64(parameters.import_token.as_bytes()),
            "PublicKey": b64(&pem_body(&parameters.public_key)),
            "ParametersValidTo": epoch(parameters.token_expire_time),
        })
    };
    "ImportKeyMaterial" => kms::ImportKeyMaterial {
        key_id: arns.key_reference(&j.text("KeyId")),
        key_material_expire_unix: j.valid_to()?,
        encrypted_key_material: j.blob("EncryptedKeyMaterial")?,
        import_token: String::from_utf8(j.blob("ImportToken")?)
            .map_err(|_| KmsError::new(ErrorCode::InvalidImportToken))?,
    } => |_| json!({});
    "DeleteImportedKeyMaterial" => kms::DeleteKeyMaterial { key_id: arns.key_reference(&j.text("KeyId")), absent_is_deleted: true }
        => |_| json!({});
    "GenerateMac" => kms::GenerateMac {
        key_id: arns.key_reference(&j.text("KeyId")),
        algorithm: j.text("MacAlgorithm"),
        message: j.blob("Message")?,
    } => {
        let (arns, algorithm) = (arns.clone(), j.text("MacAlgorithm"));
        move |mac| json!({ "Mac": b64(&mac.value), "MacAlgorithm": algorithm, "KeyId": arns.key(&mac.key_id) })
    };
    "GetKeyLastUsage" => lookup::GetKeyLastUsage { key_id: arns.key_reference(&j.text("KeyId")) }
        => { let arns = arns.clone(); move |usage| key_last_usage(&usage, &arns) };
    "VerifyMac" => kms::VerifyMac {
        key_id: arns.key_reference(&j.text("KeyId")),
        algorithm: j.text("MacAlgorithm"),
        message: j.blob("Message")?,
        mac: j.blob("Mac")?,
        invalid_is_error: true,
    } => {
        let (arns, algorithm) = (arns.clone(), j.text("MacAlgorithm"));
        move |checked| json!({ "KeyId": arns.key(&checked.key_id), "MacValid": checked.value, "MacAlgorithm": algorithm })
    };
    "CreateGrant" => grants::CreateGrant {
        key_id: arns.key_reference(&j.text("KeyId")),
        grantee_principal: j.principal("GranteePrincipal", "GranteeServicePrincipal")?,
        retiring_principal: j.principal("RetiringPrincipal", "RetiringServicePrincipal")?,
        operations: j.list("Operations")?,
        constraints: j.constraints()?,
        name: j.text("Name"),
        dry_run: j.flag("DryRun")?,
        issuing_account: arns.account_id.clone(),
    } => |made| json!({ "GrantId": made.grant_id, "GrantToken": made.grant_token });
    "ListGrants" => grants::ListGrants {
        key_id: arns.key_reference(&j.text("KeyId")),
        grant_id: j.text("GrantId"),
        grantee_principal: j.principal("GranteePrincipal", "GranteeServicePrincipal")?,
        page_number: j.marker()?,
        page_size: j.limit_or(DEFAULT_GRANT_LIMIT)?,
    } => grant_listing(arns);
    "ListRetirableGrants" => grants::ListRetirableGrants {
        retiring_principal: j.principal("RetiringPrincipal", "RetiringServicePrincipal")?,
        page_number: j.marker()?,
        page_size: j.limit_or(DEFAULT_GRANT_LIMIT)?,
    } => grant_listing(arns);
    "RetireGrant" => grants::RetireGrant {
        grant_token: Withheld(j.text("GrantToken")),
        key_id: arns.key_reference(&j.text("KeyId")),
        grant_id: j.text("GrantId"),
        dry_run: j.flag("DryRun")?,
    } => |()| json!({});
    "RevokeGrant" => grants::RevokeGrant {
        key_id: arns.key_reference(&j.text("KeyId")),
        grant_id: j.text("GrantId"),
        dry_run: j.flag("DryRun")?,
    } => |()| json!({});
}

pub(super) use crate::frontends::execute_json as run;

/// An operation not in the table: AWS's, but not offered; or not AWS's at all.
async fn refuse(app: &Arc<App>, meta: CallMeta, operation: &str) -> Answer<Vec<u8>> {
    let error = if AWS_OPERATIONS.contains(&operation) {
        unsupported(operation)
    } else {
        KmsError::new(ErrorCode::ActionNotFound).because("Name a TrentService operation in X-Amz-Target.")
    };
    refuse_unknown(app, meta, "Operation", operation, error).await
}

/// kmsim's spelling of a value AWS named, or empty for the default.
fn engine_name<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A time as AWS's JSON carries it: seconds since the epoch, with a fraction.
pub(super) fn epoch(time: SimTime) -> f64 {
    time.millis() as f64 / 1000.0
}

/// The DER inside a PEM document (AWS answers public keys as DER).
fn pem_body(pem: &str) -> Vec<u8> {
    let base64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(base64.trim()).unwrap_or_default()
}

/// A page as AWS lists it: the items, `Truncated`, and a `NextMarker` while more follow.
fn listing<T>(paged: &Paged<T>, name: &str, items: Vec<Value>) -> Value {
    let (total, number, size) = page_fields(paged);
    let mut body = Map::new();
    body.insert(name.to_owned(), Value::Array(items));
    let truncated = i64::from(number) * i64::from(size) < i64::from(total);
    body.insert("Truncated".to_owned(), json!(truncated));
    if truncated {
        body.insert("NextMarker".to_owned(), json!((number + 1).to_string()));
    }
    Value::Object(body)
}

/// ListGrants' and ListRetirableGrants' answer: a page of grants.
fn grant_listing(arns: &Arns) -> impl FnOnce(Paged<Arc<Grant>>) -> Value + Send + 'static {
    let arns = arns.clone();
    move |paged| {
        let grants = paged.items.iter().map(|grant| grant_entry(grant, &arns)).collect();
        listing(&paged, "Grants", grants)
    }
}

/// A grant as ListGrants describes it; its issuing account as the account's root ARN, as AWS writes it.
fn grant_entry(grant: &Grant, arns: &Arns) -> Value {
    let Grant {
        grant_id,
        region: _,
        key_id,
        name,
        grantee_principal,
        retiring_principal,
        operations,
        constraints,
        issuing_account,
        creation_date,
    } = grant;
    let mut entry = json!({
        "KeyId": arns.key(key_id),
        "GrantId": grant_id,
        "CreationDate": epoch(*creation_date),
        "GranteePrincipal": grantee_principal,
        "IssuingAccount": format!("arn:aws:iam::{issuing_account}:root"),
        "Operations": operations,
    });
    if !name.is_empty() {
        entry["Name"] = json!(name);
    }
    if !retiring_principal.is_empty() {
        entry["RetiringPrincipal"] = json!(retiring_principal);
    }
    let GrantConstraints { encryption_context_subset, encryption_context_equals } = constraints;
    let mut constraint = Map::new();
    for (field, pairs) in
        [("EncryptionContextSubset", encryption_context_subset), ("EncryptionContextEquals", encryption_context_equals)]
    {
        if let Some(pairs) = pairs {
            constraint.insert(field.to_owned(), json!(pairs));
        }
    }
    if !constraint.is_empty() {
        entry["Constraints"] = Value::Object(constraint);
    }
    entry
}

/// A data key pair as AWS answers it, with its private key in plaintext only when asked for.
fn key_pair(pair: &DataKeyPair, arns: &Arns, with_plaintext: bool) -> Value {
    let mut body = json!({
        "KeyId": arns.key(&pair.sealed.key_id),
        "KeyPairSpec": aws_name(KEY_SPECS, pair.spec),
        "PublicKey": b64(&pair.public_key),
        "PrivateKeyCiphertextBlob": b64(&pair.sealed.ciphertext_blob),
    });
    if with_plaintext {
        body["PrivateKeyPlaintext"] = json!(b64(&pair.private_key));
    }
    body
}

/// KeyMetadata as AWS describes a key, with the set of a multi-Region key.
/// The ARN is the key's own region's (a replica's answer names the replica).
fn key_metadata(meta: &KeyMeta, set: Option<&MultiRegionConfiguration>, arns: &Arns) -> Value {
    let spec = aws_name(KEY_SPECS, meta.spec);
    let arn_in =
        |region: &str| Arns { region: region.to_owned(), account_id: arns.account_id.clone() }.key(&meta.key_id);
    let mut metadata = json!({
        "AWSAccountId": arns.account_id,
        "KeyId": meta.key_id,
        "Arn": arn_in(&meta.region),
        "CreationDate": epoch(meta.creation_date),
        "Enabled": meta.state == crate::engine::key::KeyState::Enabled,
        "Description": meta.description,
        "KeyUsage": aws_name(KEY_USAGES, meta.usage),
        "KeyState": meta.state.as_str(),
        "Origin": if meta.origin == crate::engine::key::Origin::External { "EXTERNAL" } else { "AWS_KMS" },
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": spec,
        "KeySpec": spec,
        "MultiRegion": set.is_some(),
    });
    if let Some(set) = set {
        let replicas: Vec<Value> =
            set.replica_regions.iter().map(|region| json!({ "Arn": arn_in(region), "Region": region })).collect();
        metadata["MultiRegionConfiguration"] = json!({
            "MultiRegionKeyType": if set.is_primary(&meta.region) { "PRIMARY" } else { "REPLICA" },
            "PrimaryKey": { "Arn": arn_in(&set.primary_region), "Region": set.primary_region },
            "ReplicaKeys": replicas,
        });
    }
    if let Some(date) = meta.delete_date {
        metadata["DeletionDate"] = json!(epoch(date));
    }
    if let Some(days) = meta.pending_window_in_days {
        metadata["PendingDeletionWindowInDays"] = json!(days);
    }
    algorithm_lists(&mut metadata, meta.spec, meta.usage);
    metadata
}

/// The algorithm lists AWS gives a key of `spec` and `usage` (only the non-empty ones).
fn algorithm_lists(body: &mut Value, spec: KeySpec, usage: KeyUsage) {
    let Algorithms { encryption, signing, mac, key_agreement } = algorithms(spec, usage);
    let lists = [
        ("EncryptionAlgorithms", encryption),
        ("SigningAlgorithms", signing),
        ("MacAlgorithms", mac),
        ("KeyAgreementAlgorithms", key_agreement),
    ];
    for (name, list) in lists {
        if !list.is_empty() {
            body[name] = json!(list);
        }
    }
}

/// A key policy as AWS shows it. A document written in AWS's words is shown as
/// it was put; one in RAM's (kmsim's default, or one set through Alibaba's API)
/// is put into AWS's: its version, `AWS` principals of the account kmsim plays
/// here, and one-element lists as the single strings AWS writes.
fn aws_policy(text: &str, account_id: &str) -> String {
    let Ok(Value::Object(mut document)) = serde_json::from_str::<Value>(text) else { return text.to_owned() };
    if document.get("Version").and_then(Value::as_str) != Some("1") {
        return text.to_owned();
    }
    document.insert("Version".into(), json!("2012-10-17"));
    if let Some(Value::Array(statements)) = document.get_mut("Statement") {
        for statement in statements.iter_mut().filter_map(Value::as_object_mut) {
            if statement.get("Sid").and_then(Value::as_str) == Some("Enable RAM User Permissions") {
                statement.insert("Sid".into(), json!("Enable IAM User Permissions"));
            }
            if let Some(Value::Object(principal)) = statement.get_mut("Principal")
                && let Some(Value::Array(ram)) = principal.remove("RAM")
            {
                let aws: Vec<Value> = ram
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|arn| match arn.strip_prefix("acs:ram::").and_then(|rest| rest.split_once(':')) {
                        Some((_, resource)) => json!(format!("arn:aws:iam::{account_id}:{resource}")),
                        None => json!(arn),
                    })
                    .collect();
                principal.insert("AWS".into(), Value::Array(aws));
            }
            for value in statement.values_mut() {
                collapse_singletons(value);
            }
        }
    }
    Value::Object(document).to_string()
}

/// `["x"]` as `"x"`, here and in the values of an object.
fn collapse_singletons(value: &mut Value) {
    match value {
        Value::Array(items) if items.len() == 1 => *value = items.remove(0),
        Value::Object(fields) => fields.values_mut().for_each(collapse_singletons),
        _ => {}
    }
}

/// GetKeyLastUsage's answer: the key's latest successful cryptographic use the audit trail holds, named
/// as AWS names the operation, with the record's event id (its CloudTrail `eventID`) and request id; and
/// since when the trail holds records.
fn key_last_usage(usage: &KeyLastUsage, arns: &Arns) -> Value {
    let mut body = json!({ "KeyId": arns.key(&usage.key.key_id), "KeyCreationDate": epoch(usage.key.creation_date) });
    if let Some(since) = usage.tracking_since {
        body["TrackingStartDate"] = json!(epoch(since));
    }
    if let Some(used) = &usage.last_use {
        body["KeyLastUsage"] = json!({
            "Operation": aws_operation(&used.event_name),
            "Timestamp": epoch(used.event_time),
            "CloudTrailEventId": used.event_id,
            "KmsRequestId": used.request_id,
        });
    }
    body
}

/// AWS's own readers, beside the shared ones ([`crate::frontends::json::Json`]).
impl Json<'_> {
    /// `name`, else the older field AWS still accepts for it.
    fn text_or(&self, name: &str, older: &str) -> String {
        let text = self.text(name);
        if text.is_empty() && !older.is_empty() { self.text(older) } else { text }
    }

    pub fn tags(&self, name: &str) -> KmsResult<Vec<(String, String)>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Tag {
            tag_key: String,
            tag_value: String,
        }
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(value) => serde_json::from_value::<Vec<Tag>>(value.clone())
                .map(|tags| tags.into_iter().map(|t| (t.tag_key, t.tag_value)).collect())
                .map_err(|_| KmsError::invalid_because(name, "Send a list of {TagKey, TagValue}.")),
        }
    }

    /// The kind of `Message` a Sign or Verify carries: AWS signs the message
    /// itself unless told it is a digest (kmsim's default is the other way).
    fn message_type(&self) -> &'static str {
        if self.text("MessageType") == "DIGEST" { MessageType::Digest.as_str() } else { MessageType::Raw.as_str() }
    }

    /// `Message`, for the field of its kind (kmsim keeps digests and messages apart); empty for the other.
    fn message_if(&self, kind: MessageType) -> KmsResult<Vec<u8>> {
        if self.message_type() == kind.as_str() { self.blob("Message") } else { Ok(Vec::new()) }
    }

    /// `AliasName`, refused under `alias/aws/`, which AWS keeps for its managed keys.
    fn alias_name(&self) -> KmsResult<String> {
        let name = self.text("AliasName");
        if name.starts_with("alias/aws/") {
            return Err(KmsError::invalid_because(
                "AliasName",
                "The prefix alias/aws/ is reserved for AWS managed keys.",
            ));
        }
        Ok(name)
    }

    /// `ValidTo` as seconds since the epoch, or 0 for material that does not expire; AWS's
    /// `ExpirationModel` must agree with it.
    fn valid_to(&self) -> KmsResult<i64> {
        let valid_to = match self.0.get("ValidTo") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_f64().map_or(0, |secs| secs as i64)),
            Some(_) => return Err(KmsError::invalid_because("ValidTo", "Send a timestamp.")),
        };
        match (self.text("ExpirationModel").as_str(), valid_to) {
            ("" | "KEY_MATERIAL_EXPIRES", Some(secs)) => Ok(secs),
            ("KEY_MATERIAL_EXPIRES", None) => Err(KmsError::missing("ValidTo")),
            ("" | "KEY_MATERIAL_DOES_NOT_EXPIRE", None) => Ok(0),
            ("KEY_MATERIAL_DOES_NOT_EXPIRE", Some(_)) => {
                Err(KmsError::invalid_because("ValidTo", "Material that does not expire takes no ValidTo."))
            }
            _ => Err(KmsError::invalid_because(
                "ExpirationModel",
                "Use KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE.",
            )),
        }
    }

    /// `KeyPairSpec` in kmsim's words: AWS's asymmetric key specs.
    fn key_pair_spec(&self) -> KmsResult<String> {
        let spec = from_aws(KEY_SPECS, &self.text("KeyPairSpec"), "KeyPairSpec")?;
        Ok(engine_name(spec))
    }

    /// `Plaintext`, at most AWS's 4096 bytes (kmsim's engine takes up to 6144).
    fn plaintext(&self) -> KmsResult<Vec<u8>> {
        let plaintext = self.blob("Plaintext")?;
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(KmsError::invalid_because("Plaintext", "Send 1 to 4096 bytes."));
        }
        Ok(plaintext)
    }

    /// AWS's `Limit` (1 to 1000; kmsim pages at most 100), as a page size.
    fn limit(&self) -> KmsResult<i32> {
        let limit = self.int("Limit")?;
        if !(0..=1000).contains(&limit) {
            return Err(KmsError::invalid_because("Limit", "Send 1 to 1000."));
        }
        // Absent, AWS's default page: 100 entries.
        Ok(if limit == 0 { MAX_LIMIT } else { limit.min(MAX_LIMIT) })
    }

    /// `Limit`, with `default` for none.
    fn limit_or(&self, default: i32) -> KmsResult<i32> {
        self.limit().map(|limit| if limit == 0 { default } else { limit })
    }

    /// A flag AWS takes as optional (`DryRun`): `None` when absent.
    fn flag(&self, name: &str) -> KmsResult<Option<bool>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(KmsError::invalid_because(name, "Send true or false.")),
        }
    }

    /// A principal's ARN; kmsim has no AWS service principals, so one named by `service` is refused.
    fn principal(&self, name: &str, service: &str) -> KmsResult<String> {
        if !self.text(service).is_empty() {
            return Err(unsupported(&format!("{service} (grants to AWS service principals)")));
        }
        Ok(self.text(name))
    }

    /// `Constraints`: an encryption context constraint. SourceArn names an AWS service's resource,
    /// which kmsim has none of, so it is refused.
    fn constraints(&self) -> KmsResult<GrantConstraints> {
        match self.0.get("Constraints") {
            None | Some(Value::Null) => Ok(GrantConstraints::default()),
            Some(Value::Object(fields)) => {
                let fields = Json(fields);
                if !fields.text("SourceArn").is_empty() {
                    return Err(unsupported("the SourceArn grant constraint"));
                }
                let given = |name: &str| -> KmsResult<Option<Context>> {
                    fields.0.contains_key(name).then(|| fields.context(name)).transpose()
                };
                Ok(GrantConstraints {
                    encryption_context_subset: given("EncryptionContextSubset")?,
                    encryption_context_equals: given("EncryptionContextEquals")?,
                })
            }
            Some(_) => Err(KmsError::invalid_because("Constraints", "Send an object.")),
        }
    }

    /// `GrantTokens`: up to 10 strings of 1 to 8192 characters; whether each is a token is the kernel's to say.
    fn grant_tokens(&self) -> KmsResult<Vec<String>> {
        let tokens = self.list("GrantTokens")?;
        let well_formed = |token: &String| (1..=MAX_GRANT_TOKEN_LEN).contains(&token.len());
        if tokens.len() > MAX_GRANT_TOKENS || !tokens.iter().all(well_formed) {
            return Err(KmsError::invalid_because(
                "GrantTokens",
                "Send up to 10 grant tokens as CreateGrant answered them.",
            ));
        }
        Ok(tokens)
    }

    /// AWS's `Marker`: the `NextMarker` of the page before, which kmsim makes the next page's number.
    fn marker(&self) -> KmsResult<i32> {
        match self.text("Marker").as_str() {
            "" => Ok(0),
            marker => marker.parse().map_err(|_| KmsError::invalid_because("Marker", "Send a NextMarker as given.")),
        }
    }

    /// Whether the call names an asymmetric `EncryptionAlgorithm` (anything but SYMMETRIC_DEFAULT).
    fn asymmetric(&self) -> bool {
        !matches!(self.text("EncryptionAlgorithm").as_str(), "" | "SYMMETRIC_DEFAULT")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_offered_operation_is_an_operation_of_awss_api() {
        for name in OFFERED {
            assert!(AWS_OPERATIONS.contains(name), "{name}");
        }
        assert_eq!(AWS_OPERATIONS.len(), 56);
    }

    #[test]
    fn an_arn_of_this_account_and_region_names_the_key_and_any_other_names_none() {
        let arns = Arns { region: "us-east-1".into(), account_id: "111122223333".into() };
        assert_eq!(arns.key_reference("arn:aws:kms:us-east-1:111122223333:key/abc"), "abc");
        assert_eq!(arns.key_reference("arn:aws:kms:us-east-1:111122223333:alias/x"), "alias/x");
        assert_eq!(arns.key_reference("alias/x"), "alias/x");
        let other = "arn:aws:kms:eu-west-1:111122223333:key/abc";
        assert_eq!(arns.key_reference(other), other);
    }
}
