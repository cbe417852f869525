//! The OpenAPI's actions as one table: for each, the kernel operation it is,
//! how its parameters decode into that operation, and how the operation's
//! output renders as the JSON Alibaba documents for it (the SDKs' response
//! models read these names and this nesting). An action that is not in the
//! table gets Alibaba's answer for an unknown action, audited like any call.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::request::Params;
use crate::engine::access::{Aap, CLIENT_KEY, ClientKey, Policy};
use crate::engine::instances::{KEY_QUOTA, Quota, SECRET_QUOTA, VPC_QUOTA};
use crate::engine::key::KeyMeta;
use crate::engine::permissions::NetworkRule;
use crate::engine::secrets::{SecretVersion, encode_data};
use crate::engine::tags::{TagPage, TagRow};
use crate::engine::{AliasRecord, ErrorCode, Instance, KmsResult, Paged, Sealed, Secret, SecretValue, VersionInfo};
use crate::frontends::text::{date, extended_config, page_fields, rotation_fields, stages};
use crate::frontends::{decode, execute_decoded, refuse_unknown};
use crate::kernel::ops::kms::CancelRestores;
use crate::kernel::ops::{self, access, account, instances, kms, secrets, tags};
use crate::kernel::{Answer, App, CallMeta, Described};

/// Every action of the 2016-01-20 API in Alibaba's current SDK
/// (`alibabacloud-kms20160120` 3.3.1), honoured or not: what the docs' table is made from.
pub const SDK_ACTIONS: &[&str] = &[
    "AsymmetricDecrypt",
    "AsymmetricEncrypt",
    "AsymmetricSign",
    "AsymmetricVerify",
    "BatchGetSecretValue",
    "CancelKeyDeletion",
    "ConnectKmsInstance",
    "CreateAlias",
    "CreateApplicationAccessPoint",
    "CreateClientKey",
    "CreateKey",
    "CreateKeyVersion",
    "CreateNetworkRule",
    "CreatePolicy",
    "CreateSecret",
    "Decrypt",
    "DeleteAlias",
    "DeleteApplicationAccessPoint",
    "DeleteClientKey",
    "DeleteKeyMaterial",
    "DeleteNetworkRule",
    "DeletePolicy",
    "DeleteSecret",
    "DescribeAccountKmsStatus",
    "DescribeApplicationAccessPoint",
    "DescribeKey",
    "DescribeKeyVersion",
    "DescribeNetworkRule",
    "DescribePolicy",
    "DescribeRegions",
    "DescribeSecret",
    "DisableKey",
    "EnableKey",
    "Encrypt",
    "ExportDataKey",
    "GenerateAndExportDataKey",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GetChallenge",
    "GetClientKey",
    "GetDefaultKmsInstance",
    "GetKeyPolicy",
    "GetKmsInstance",
    "GetKmsInstanceQuotaInfos",
    "GetManagedDataKey",
    "GetParametersForImport",
    "GetPublicKey",
    "GetRandomPassword",
    "GetSecretPolicy",
    "GetSecretValue",
    "ImportKeyMaterial",
    "ListAliases",
    "ListAliasesByKeyId",
    "ListApplicationAccessPoints",
    "ListClientKeys",
    "ListKeyVersions",
    "ListKeys",
    "ListKmsInstances",
    "ListManagedDataKeyVersions",
    "ListNetworkRules",
    "ListPolicies",
    "ListResourceTags",
    "ListSecretVersionIds",
    "ListSecrets",
    "ListTagResources",
    "OpenKmsService",
    "PutSecretValue",
    "ReEncrypt",
    "ReleaseKmsInstance",
    "RestoreSecret",
    "RotateSecret",
    "ScheduleKeyDeletion",
    "SetDeletionProtection",
    "SetKeyPolicy",
    "SetSecretPolicy",
    "TagResource",
    "TagResources",
    "UntagResource",
    "UntagResources",
    "UpdateAlias",
    "UpdateApplicationAccessPoint",
    "UpdateKeyDescription",
    "UpdateKmsInstanceBindVpc",
    "UpdateNetworkRule",
    "UpdatePolicy",
    "UpdateRotationPolicy",
    "UpdateSecret",
    "UpdateSecretRotationPolicy",
    "UpdateSecretVersionStage",
    "VerifyMac",
];

/// Declares the table: `"Action" => ops::Op { field: decoder, … } => encoder;`.
/// Decoders read the action's parameters through `$p` ([`Params`]); a
/// decoder that fails refuses the call, audited as that operation. An
/// encoder that repeats the call's request id inside its body reads it as `$request_id`.
macro_rules! actions {
    ($p:ident, $request_id:ident; $($action:literal => $module:ident::$op:ident { $($field:ident: $decode:expr),* $(,)? } => $encode:expr;)+) => {
        /// Every action this front end honours, in the table's order.
        pub const ACTIONS: &[&str] = &[$($action),+];

        /// Runs the call to `action` with its parameters.
        pub async fn dispatch(app: &Arc<App>, meta: CallMeta, action: &str, $p: Params<'_>) -> Answer<Vec<u8>> {
            let $request_id = meta.request_id.clone();
            match action {
                $($action => {
                    let decoded = decode(|| Ok($module::$op { $($field: $decode),* }));
                    run(app, meta, decoded, $encode).await
                })+
                _ => unknown(app, meta, action).await,
            }
        }
    };
}

actions! { p, request_id;
    // Keys and their lifecycle.
    "CreateKey" => kms::CreateKey {
        key_spec: p.text("KeySpec"),
        key_usage: p.text("KeyUsage"),
        origin: p.text("Origin"),
        description: p.text("Description"),
        protection_level: p.text("ProtectionLevel"),
        enable_automatic_rotation: p.boolean("EnableAutomaticRotation")?,
        rotation_interval: p.text("RotationInterval"),
        exportable: false,
        dkms_instance_id: p.text("DKMSInstanceId"),
        policy: String::new(),
        multi_region: None,
        tags: Vec::new(),
    } => |key| json!({ "KeyMetadata": key_metadata(&key.meta) });
    "DescribeKey" => kms::DescribeKey { key_id: p.text("KeyId") }
        => |described| json!({ "KeyMetadata": key_metadata(&described.meta) });
    "ListKeys" => kms::ListKeys { page_number: p.int("PageNumber")?, page_size: p.int("PageSize")? } => |paged| {
        let keys: Vec<Value> =
            paged.items.iter().map(|k| json!({ "KeyId": k.key.meta.key_id, "KeyArn": k.key.meta.arn() })).collect();
        paged_body(&paged, "Keys", "Key", keys)
    };
    "UpdateKeyDescription" => kms::UpdateKeyDescription { key_id: p.text("KeyId"), description: p.text("Description") }
        => |_| json!({});
    "EnableKey" => kms::EnableKey { key_id: p.text("KeyId") } => |_| json!({});
    "DisableKey" => kms::DisableKey { key_id: p.text("KeyId") } => |_| json!({});
    "ScheduleKeyDeletion" => kms::ScheduleKeyDeletion {
        key_id: p.text("KeyId"),
        pending_window_in_days: p.int("PendingWindowInDays")?,
    } => |_| json!({});
    "CancelKeyDeletion" => kms::CancelKeyDeletion { key_id: p.text("KeyId"), restore: CancelRestores::Enabled }
        => |_| json!({});
    "SetDeletionProtection" => kms::SetDeletionProtection {
        protected_resource_arn: p.text("ProtectedResourceArn"),
        enable_deletion_protection: p.boolean("EnableDeletionProtection")?,
        deletion_protection_description: p.text("DeletionProtectionDescription"),
    } => |_| json!({});
    "GetKeyPolicy" => kms::GetKeyPolicy { key_id: p.text("KeyId"), policy_name: p.text("PolicyName") }
        => |policy| json!({ "Policy": policy });
    "SetKeyPolicy" => kms::SetKeyPolicy {
        key_id: p.text("KeyId"),
        policy_name: p.text("PolicyName"),
        policy: p.text("Policy"),
    } => |()| json!({});
    "UpdateRotationPolicy" => kms::UpdateRotationPolicy {
        key_id: p.text("KeyId"),
        enable_automatic_rotation: p.boolean("EnableAutomaticRotation")?,
        rotation_interval: p.text("RotationInterval"),
    } => |_| json!({});

    // Versions.
    "CreateKeyVersion" => kms::CreateKeyVersion { key_id: p.text("KeyId") }
        => |info| json!({ "KeyVersion": key_version(&info) });
    "DescribeKeyVersion" => kms::DescribeKeyVersion { key_id: p.text("KeyId"), key_version_id: p.text("KeyVersionId") }
        => |info| json!({ "KeyVersion": key_version(&info) });
    "ListKeyVersions" => kms::ListKeyVersions {
        key_id: p.text("KeyId"),
        page_number: p.int("PageNumber")?,
        page_size: p.int("PageSize")?,
    } => |paged| {
        let versions = paged.items.iter().map(key_version).collect();
        paged_body(&paged, "KeyVersions", "KeyVersion", versions)
    };

    // Aliases and tags.
    "CreateAlias" => kms::CreateAlias { alias_name: p.text("AliasName"), key_id: p.text("KeyId") } => |()| json!({});
    "UpdateAlias" => kms::UpdateAlias { alias_name: p.text("AliasName"), target_key_id: p.text("KeyId") }
        => |()| json!({});
    "DeleteAlias" => kms::DeleteAlias { alias_name: p.text("AliasName") } => |()| json!({});
    "ListAliases" => kms::ListAliases {
        key_id: String::new(),
        page_number: p.int("PageNumber")?,
        page_size: p.int("PageSize")?,
    }
        => aliases_body;
    "ListAliasesByKeyId" => kms::ListAliasesByKeyId {
        key_id: p.text("KeyId"),
        page_number: p.int("PageNumber")?,
        page_size: p.int("PageSize")?,
    } => aliases_body;
    "TagResource" => kms::TagResource { key_id: p.text("KeyId"), tags: p.tags("Tags")? } => |_| json!({});
    "UntagResource" => kms::UntagResource { key_id: p.text("KeyId"), tag_keys: p.list("TagKeys")? } => |_| json!({});
    "ListResourceTags" => kms::ListResourceTags { key_id: p.text("KeyId"), page: None } => {
        // Each tag names its key, as the caller named it.
        let key_id = p.text("KeyId");
        move |tags| {
            let tags: Vec<Value> =
                tags.items.into_iter().map(|(k, v)| json!({ "KeyId": key_id, "TagKey": k, "TagValue": v })).collect();
            json!({ "Tags": { "Tag": tags } })
        }
    };

    "TagResources" => tags::TagResources {
        resource_type: p.text("ResourceType"),
        resource_ids: p.repeat_list("ResourceId")?,
        tags: p.repeat_tags("Tag")?,
    } => |()| json!({});
    "UntagResources" => tags::UntagResources {
        resource_type: p.text("ResourceType"),
        resource_ids: p.repeat_list("ResourceId")?,
        tag_keys: p.repeat_list("TagKey")?,
        all: p.boolean("All")?,
    } => |()| json!({});
    "ListTagResources" => tags::ListTagResources {
        resource_type: p.text("ResourceType"),
        resource_ids: p.repeat_list("ResourceId")?,
        tags: p.repeat_tags("Tag")?,
        next_token: p.text("NextToken"),
    } => |page| {
        let TagPage { rows, next_token } = page;
        let rows: Vec<Value> = rows
            .into_iter()
            .map(|TagRow { resource_id, resource_type, tag_key, tag_value }| json!({
                "ResourceId": resource_id,
                "ResourceType": resource_type.as_str(),
                "TagKey": tag_key,
                "TagValue": tag_value,
            }))
            .collect();
        json!({ "TagResources": { "TagResource": rows }, "NextToken": next_token })
    };

    // Symmetric cryptography and data keys.
    "Encrypt" => kms::Encrypt {
        key_id: p.text("KeyId"),
        plaintext: p.secret_base64("Plaintext")?,
        encryption_context: p.context("EncryptionContext")?,
    } => |sealed| sealed_body(&sealed);
    "Decrypt" => kms::Decrypt {
        ciphertext_blob: p.base64("CiphertextBlob")?,
        encryption_context: p.context("EncryptionContext")?,
        // Alibaba's Decrypt names no key: the ciphertext does.
        expected_key_id: String::new(),
    } => |opened| under(opened.key_id, opened.key_version_id, "Plaintext", b64(&opened.plaintext));
    "ReEncrypt" => kms::ReEncrypt {
        ciphertext_blob: p.base64("CiphertextBlob")?,
        source_encryption_context: p.context("SourceEncryptionContext")?,
        destination_key_id: p.text("DestinationKeyId"),
        destination_encryption_context: p.context("DestinationEncryptionContext")?,
        expected_source_key_id: String::new(),
    } => |re| sealed_body(&re.sealed);
    "GenerateDataKey" => kms::GenerateDataKey {
        key_id: p.text("KeyId"),
        key_spec: p.text("KeySpec"),
        number_of_bytes: p.int("NumberOfBytes")?,
        encryption_context: p.context("EncryptionContext")?,
    } => |data_key| with(sealed_body(&data_key.sealed), "Plaintext", b64(&data_key.plaintext));
    "GenerateDataKeyWithoutPlaintext" => kms::GenerateDataKeyWithoutPlaintext {
        key_id: p.text("KeyId"),
        key_spec: p.text("KeySpec"),
        number_of_bytes: p.int("NumberOfBytes")?,
        encryption_context: p.context("EncryptionContext")?,
    } => |sealed| sealed_body(&sealed);
    "ExportDataKey" => kms::ExportDataKey {
        encryption_context: p.context("EncryptionContext")?,
        wrapping_algorithm: p.text("WrappingAlgorithm"),
        wrapping_key_spec: p.text("WrappingKeySpec"),
        ciphertext_blob: p.base64("CiphertextBlob")?,
        public_key_blob: p.base64("PublicKeyBlob")?,
    } => |exported| under(exported.key_id, exported.key_version_id, "ExportedDataKey", b64(&exported.export_blob));
    "GenerateAndExportDataKey" => kms::GenerateAndExportDataKey {
        key_id: p.text("KeyId"),
        key_spec: p.text("KeySpec"),
        number_of_bytes: p.int("NumberOfBytes")?,
        encryption_context: p.context("EncryptionContext")?,
        wrapping_algorithm: p.text("WrappingAlgorithm"),
        wrapping_key_spec: p.text("WrappingKeySpec"),
        public_key_blob: p.base64("PublicKeyBlob")?,
    } => |(data_key, export_blob)| with(sealed_body(&data_key.sealed), "ExportedDataKey", b64(&export_blob));

    // Asymmetric keys and MACs. Alibaba signs digests: the SDK sends the digest, never the message.
    "AsymmetricSign" => kms::AsymmetricSign {
        key_id: p.text("KeyId"),
        key_version_id: p.text("KeyVersionId"),
        algorithm: p.text("Algorithm"),
        message_type: String::new(),
        digest: p.base64("Digest")?,
        message: Vec::new(),
    } => |signed| under(signed.key_id, signed.key_version_id, "Value", b64(&signed.value));
    "AsymmetricVerify" => kms::AsymmetricVerify {
        key_id: p.text("KeyId"),
        key_version_id: p.text("KeyVersionId"),
        algorithm: p.text("Algorithm"),
        message_type: String::new(),
        digest: p.base64("Digest")?,
        message: Vec::new(),
        signature: p.base64("Value")?,
        invalid_is_error: false,
    } => |checked| under(checked.key_id, checked.key_version_id, "Value", checked.value);
    "AsymmetricEncrypt" => kms::AsymmetricEncrypt {
        key_id: p.text("KeyId"),
        key_version_id: p.text("KeyVersionId"),
        algorithm: p.text("Algorithm"),
        plaintext: p.secret_base64("Plaintext")?,
    } => |sealed| under(sealed.key_id, sealed.key_version_id, "CiphertextBlob", b64(&sealed.value));
    "AsymmetricDecrypt" => kms::AsymmetricDecrypt {
        key_id: p.text("KeyId"),
        key_version_id: p.text("KeyVersionId"),
        algorithm: p.text("Algorithm"),
        ciphertext_blob: p.base64("CiphertextBlob")?,
    } => |opened| under(opened.key_id, opened.key_version_id, "Plaintext", b64(&opened.value));
    "GetPublicKey" => kms::GetPublicKey { key_id: p.text("KeyId"), key_version_id: p.text("KeyVersionId") }
        => |public| under(public.key_id, public.key_version_id, "PublicKey", public.value.pem);
    "GenerateMac" => kms::GenerateMac {
        key_id: p.text("KeyId"),
        algorithm: p.text("Algorithm"),
        message: p.base64("Message")?,
    } => {
        // The algorithm is required, so the one the call named is the one used.
        let algorithm = p.text("Algorithm");
        move |mac| json!({ "KeyId": mac.key_id, "Algorithm": algorithm, "Mac": b64(&mac.value) })
    };
    "VerifyMac" => kms::VerifyMac {
        key_id: p.text("KeyId"),
        algorithm: p.text("Algorithm"),
        message: p.base64("Message")?,
        mac: p.base64("Mac")?,
        invalid_is_error: false,
    } => {
        let algorithm = p.text("Algorithm");
        move |checked| json!({ "KeyId": checked.key_id, "Algorithm": algorithm, "Value": checked.value })
    };

    // Bring your own key.
    "GetParametersForImport" => kms::GetParametersForImport {
        key_id: p.text("KeyId"),
        wrapping_algorithm: p.text("WrappingAlgorithm"),
        wrapping_key_spec: p.text("WrappingKeySpec"),
    } => |params| json!({
        "KeyId": params.key_id,
        "ImportToken": params.import_token,
        "PublicKey": params.public_key,
        "TokenExpireTime": params.token_expire_time.to_rfc3339(),
    });
    "ImportKeyMaterial" => kms::ImportKeyMaterial {
        key_id: p.text("KeyId"),
        key_material_expire_unix: p.int("KeyMaterialExpireUnix")?,
        encrypted_key_material: p.base64("EncryptedKeyMaterial")?,
        import_token: p.text("ImportToken"),
    } => |_| json!({});
    "DeleteKeyMaterial" => kms::DeleteKeyMaterial { key_id: p.text("KeyId"), absent_is_deleted: false } => |_| json!({});

    // Secrets Manager.
    "CreateSecret" => secrets::CreateSecret {
        secret_name: p.text("SecretName"),
        secret_data: p.secret_text("SecretData"),
        secret_data_type: p.text("SecretDataType"),
        version_id: p.text("VersionId"),
        encryption_key_id: p.text("EncryptionKeyId"),
        description: p.text("Description"),
        secret_type: p.text("SecretType"),
        extended_config: p.text("ExtendedConfig"),
        enable_automatic_rotation: p.boolean("EnableAutomaticRotation")?,
        rotation_interval: p.text("RotationInterval"),
        tags: p.tags("Tags")?,
        dkms_instance_id: p.text("DKMSInstanceId"),
    } => |secret| {
        let (automatic, interval, next) = rotation_fields(&secret);
        json!({
            "Arn": secret.arn(),
            "SecretName": secret.name,
            "VersionId": secret.versions.first().map(|v| v.version_id.clone()).unwrap_or_default(),
            "SecretType": secret.secret_type.as_str(),
            "AutomaticRotation": automatic,
            "RotationInterval": interval,
            "NextRotationDate": next,
            "ExtendedConfig": extended_config(&secret),
            "DKMSInstanceId": secret.instance_id.clone().unwrap_or_default(),
        })
    };
    "GetSecretValue" => secrets::GetSecretValue {
        secret_name: p.text("SecretName"),
        version_stage: p.text("VersionStage"),
        version_id: p.text("VersionId"),
        fetch_extended_config: p.boolean("FetchExtendedConfig")?,
    } => |value| secret_value(&value);
    "BatchGetSecretValue" => secrets::BatchGetSecretValue { secrets_list: p.secrets_list("SecretsList")? } => {
        move |answers| {
            let (mut values, mut errors) = (Vec::new(), Vec::new());
            for (name, answer) in answers {
                match answer {
                    Ok(value) => values.push(with(secret_value(&value), "RequestId", request_id.as_str())),
                    Err(error) => errors.push(json!({
                        "SecretName": name,
                        "Code": error.code.as_str(),
                        "Message": error.message,
                        "HttpStatus": error.code.http_status(),
                    })),
                }
            }
            json!({ "SecretValues": values, "Errors": errors })
        }
    };
    "GetSecretPolicy" => secrets::GetSecretPolicy {
        secret_name: p.text("SecretName"),
        policy_name: p.text("PolicyName"),
    } => |policy| json!({ "Policy": policy });
    "SetSecretPolicy" => secrets::SetSecretPolicy {
        secret_name: p.text("SecretName"),
        policy_name: p.text("PolicyName"),
        policy: p.text("Policy"),
    } => |()| json!({});
    "PutSecretValue" => secrets::PutSecretValue {
        secret_name: p.text("SecretName"),
        version_id: p.text("VersionId"),
        secret_data: p.secret_text("SecretData"),
        secret_data_type: p.text("SecretDataType"),
        version_stages: p.list("VersionStages")?,
    } => |(secret, version_id)| {
        let stages = secret.version(&version_id).map(version_stages).unwrap_or_else(|| json!({ "VersionStage": [] }));
        json!({ "SecretName": secret.name, "VersionId": version_id, "VersionStages": stages })
    };
    "DescribeSecret" => secrets::DescribeSecret { secret_name: p.text("SecretName"), fetch_tags: p.boolean("FetchTags")? }
        => |secret| {
            let (automatic, interval, next) = rotation_fields(&secret);
            json!({
                "Arn": secret.arn(),
                "SecretName": secret.name,
                "SecretType": secret.secret_type.as_str(),
                "EncryptionKeyId": secret.encryption_key_id,
                "Description": secret.description,
                "CreateTime": secret.created.to_rfc3339(),
                "UpdateTime": secret.updated.to_rfc3339(),
                "PlannedDeleteTime": date(secret.planned_delete),
                "AutomaticRotation": automatic,
                "RotationInterval": interval,
                "LastRotationDate": date(secret.rotation.last),
                "NextRotationDate": next,
                "ExtendedConfig": extended_config(&secret),
                "DKMSInstanceId": secret.instance_id.clone().unwrap_or_default(),
                "Tags": secret_tags(&secret),
            })
        };
    "ListSecrets" => secrets::ListSecrets {
        fetch_tags: p.boolean("FetchTags")?,
        page_number: p.int("PageNumber")?,
        page_size: p.int("PageSize")?,
        filters: p.text("Filters"),
    } => |paged| {
        let list = paged
            .items
            .iter()
            .map(|secret| json!({
                "SecretName": secret.name,
                "SecretType": secret.secret_type.as_str(),
                "CreateTime": secret.created.to_rfc3339(),
                "UpdateTime": secret.updated.to_rfc3339(),
                "PlannedDeleteTime": date(secret.planned_delete),
                "Tags": secret_tags(secret),
            }))
            .collect();
        paged_body(&paged, "SecretList", "Secret", list)
    };
    "UpdateSecret" => secrets::UpdateSecret {
        secret_name: p.text("SecretName"),
        description: p.text("Description"),
        update_description: p.has("Description"),
        extended_config: p.text("ExtendedConfig"),
    } => |secret| json!({ "SecretName": secret.name });
    "UpdateSecretVersionStage" => secrets::UpdateSecretVersionStage {
        secret_name: p.text("SecretName"),
        version_stage: p.text("VersionStage"),
        remove_from_version: p.text("RemoveFromVersion"),
        move_to_version: p.text("MoveToVersion"),
    } => |secret| json!({ "SecretName": secret.name });
    "ListSecretVersionIds" => secrets::ListSecretVersionIds {
        secret_name: p.text("SecretName"),
        include_deprecated: p.boolean("IncludeDeprecated")?,
        page_number: p.int("PageNumber")?,
        page_size: p.int("PageSize")?,
    } => |(secret, paged)| {
        let versions = paged
            .items
            .iter()
            .map(|v| json!({
                "VersionId": v.version_id,
                "CreateTime": v.created.to_rfc3339(),
                "VersionStages": version_stages(v),
            }))
            .collect();
        let mut body = paged_body(&paged, "VersionIds", "VersionId", versions);
        body["SecretName"] = json!(secret.name);
        body
    };
    "DeleteSecret" => secrets::DeleteSecret {
        secret_name: p.text("SecretName"),
        recovery_window_in_days: p.int("RecoveryWindowInDays")?,
        force_delete_without_recovery: p.boolean("ForceDeleteWithoutRecovery")?,
    } => |(secret, planned)| json!({ "SecretName": secret.name, "PlannedDeleteTime": planned.to_rfc3339() });
    "RestoreSecret" => secrets::RestoreSecret { secret_name: p.text("SecretName") }
        => |secret| json!({ "SecretName": secret.name });
    "RotateSecret" => secrets::RotateSecret { secret_name: p.text("SecretName"), version_id: p.text("VersionId") }
        => |(secret, version_id)| json!({ "Arn": secret.arn(), "SecretName": secret.name, "VersionId": version_id });
    "UpdateSecretRotationPolicy" => secrets::UpdateSecretRotationPolicy {
        secret_name: p.text("SecretName"),
        enable_automatic_rotation: p.boolean("EnableAutomaticRotation")?,
        rotation_interval: p.text("RotationInterval"),
    } => |secret| json!({ "SecretName": secret.name });
    "GetRandomPassword" => secrets::GetRandomPassword {
        password_length: p.int("PasswordLength")?,
        exclude_characters: p.text("ExcludeCharacters"),
        exclude_numbers: p.boolean("ExcludeNumbers")?,
        exclude_lowercase: p.boolean("ExcludeLowercase")?,
        exclude_uppercase: p.boolean("ExcludeUppercase")?,
        exclude_punctuation: p.boolean("ExcludePunctuation")?,
        require_each_included_type: p.optional_boolean("RequireEachIncludedType")?,
    } => |password| json!({ "RandomPassword": password.as_str() });

    // KMS instances.
    "GetKmsInstance" => instances::GetKmsInstance { kms_instance_id: p.text("KmsInstanceId") }
        => |(instance, _)| json!({ "KmsInstance": kms_instance(&instance) });
    "ListKmsInstances" => ops::PageOf {
        listing: instances::ListKmsInstances {},
        page_number: p.int("PageNumber")?,
        page_size: p.int("PageSize")?,
    } => |paged| {
        let listed = paged
            .items
            .iter()
            .map(|(instance, _)| json!({ "KmsInstanceId": instance.instance_id, "KmsInstanceArn": instance.arn() }))
            .collect();
        paged_body(&paged, "KmsInstances", "KmsInstance", listed)
    };
    "GetKmsInstanceQuotaInfos" => instances::GetKmsInstanceQuotaInfos {
        kms_instance_id: p.text("KmsInstanceId"),
        resource_type: p.text("ResourceType"),
    } => |(instance, quotas)| {
        let quotas: Vec<Value> = quotas
            .iter()
            .map(|Quota { resource_type, quota, used }| json!({
                "ResourceType": resource_type,
                "ResourceQuota": quota,
                "UsedQuantity": used,
            }))
            .collect();
        json!({ "KmsInstanceId": instance.instance_id, "KmsInstanceQuotaInfos": quotas })
    };

    // The account and its regions.
    "DescribeRegions" => account::DescribeRegions {} => |regions| {
        let regions: Vec<Value> = regions.iter().map(|region| json!({ "RegionId": region })).collect();
        json!({ "Regions": { "Region": regions } })
    };
    "DescribeAccountKmsStatus" => account::DescribeAccountKmsStatus {} => |status| json!({ "AccountStatus": status });
    "OpenKmsService" => account::OpenKmsService {} => |()| json!({});

    // Application access as Alibaba models it: network rules, permission
    // policies, application access points and their ClientKeys.
    "CreateNetworkRule" => access::CreateNetworkRule {
        name: p.text("Name"),
        rule_type: p.text("Type"),
        description: p.text("Description"),
        source_private_ips: p.addresses("SourcePrivateIp")?.unwrap_or_default(),
    } => |rule| network_rule(&rule);
    "DescribeNetworkRule" => access::DescribeNetworkRule { name: p.text("Name") } => |rule| network_rule(&rule);
    "ListNetworkRules" => ops::PageOf {
        listing: access::ListNetworkRules {},
        page_number: p.int("PageNumber")?,
        page_size: p.int("PageSize")?,
    } => |paged| {
        let rules = paged.items.iter().map(|rule| json!({ "Name": rule.name, "Type": rule.rule_type })).collect();
        paged_body(&paged, "NetworkRules", "NetworkRule", rules)
    };
    "UpdateNetworkRule" => access::UpdateNetworkRule {
        name: p.text("Name"),
        description: p.optional_text("Description"),
        source_private_ips: p.addresses("SourcePrivateIp")?,
    } => |_| json!({});
    "DeleteNetworkRule" => access::DeleteNetworkRule { name: p.text("Name") } => |()| json!({});
    "CreatePolicy" => access::CreatePermissionPolicy {
        name: p.text("Name"),
        description: p.text("Description"),
        kms_instance: p.text("KmsInstance"),
        permissions: p.list("Permissions")?,
        resources: p.list("Resources")?,
        network_rules: p.network_rules("AccessControlRules")?.unwrap_or_default(),
    } => |policy| {
        // CreatePolicy's model reads the lists as the JSON text they were sent as.
        let body = permission_policy(&policy);
        let text = |name: &str| body[name].to_string();
        let (permissions, resources) = (text("Permissions"), text("Resources"));
        with(with(body, "Permissions", permissions), "Resources", resources)
    };
    "DescribePolicy" => access::DescribePermissionPolicy { name: p.text("Name") }
        => |policy| permission_policy(&policy);
    "ListPolicies" => ops::PageOf {
        listing: access::ListPermissionPolicies {},
        page_number: p.int("PageNumber")?,
        page_size: p.int("PageSize")?,
    } => |paged| {
        let policies = paged.items.iter().map(|policy| json!({ "Name": policy.policy_name })).collect();
        paged_body(&paged, "Policies", "Policy", policies)
    };
    "UpdatePolicy" => access::UpdatePermissionPolicy {
        name: p.text("Name"),
        description: p.optional_text("Description"),
        permissions: p.optional_list("Permissions")?,
        resources: p.optional_list("Resources")?,
        network_rules: p.network_rules("AccessControlRules")?,
    } => |_| json!({});
    "DeletePolicy" => access::DeletePermissionPolicy { name: p.text("Name") } => |()| json!({});
    "CreateApplicationAccessPoint" => access::CreateApplicationAccessPoint {
        name: p.text("Name"),
        description: p.text("Description"),
        kms_instance_id: String::new(),
        policy_names: p.list("Policies")?,
        authentication_method: p.text("AuthenticationMethod"),
    } => |aap| application_access_point(&aap);
    "DescribeApplicationAccessPoint" => access::DescribeApplicationAccessPoint { name: p.text("Name") }
        => |aap| application_access_point(&aap);
    "ListApplicationAccessPoints" => ops::PageOf {
        listing: access::ListApplicationAccessPoints {},
        page_number: p.int("PageNumber")?,
        page_size: p.int("PageSize")?,
    } => |paged| {
        let aaps =
            paged.items.iter().map(|aap| json!({ "Name": aap.name, "AuthenticationMethod": CLIENT_KEY })).collect();
        paged_body(&paged, "ApplicationAccessPoints", "ApplicationAccessPoint", aaps)
    };
    "UpdateApplicationAccessPoint" => access::UpdateApplicationAccessPoint {
        name: p.text("Name"),
        description: p.optional_text("Description"),
        policy_names: p.optional_list("Policies")?,
    } => |_| json!({});
    "DeleteApplicationAccessPoint" => access::DeleteApplicationAccessPoint { name: p.text("Name") } => |()| json!({});
    // Alibaba's kind only: an RSA key pair whose PKCS#12 file, under `Password`, is answered once here.
    "CreateClientKey" => access::CreateClientKey {
        aap_name: p.text("AapName"),
        not_before: p.text("NotBefore"),
        not_after: p.text("NotAfter"),
        password: Zeroizing::new(p.required("Password")?),
    } => |made| with(client_key(&made.key), "PrivateKeyData", made.private_key_data.as_ref().map_or("", |p| p.expose()));
    "GetClientKey" => access::GetClientKey { client_key_id: p.text("ClientKeyId") } => |(key, _)| client_key(&key);
    "ListClientKeys" => access::ListClientKeys { aap_name: p.text("AapName") } => |keys| {
        let keys: Vec<Value> = keys.iter().map(|(key, _)| client_key(key)).collect();
        json!({ "ClientKeys": keys })
    };
    "DeleteClientKey" => access::DeleteClientKey { client_key_id: p.text("ClientKeyId") } => |()| json!({});
}

/// Runs a decoded call and renders its output with the request id.
async fn run<Op: Described>(
    app: &Arc<App>,
    meta: CallMeta,
    decoded: KmsResult<Op>,
    encode: impl FnOnce(Op::Output) -> Value + Send + 'static,
) -> Answer<Vec<u8>> {
    let request_id = meta.request_id.clone();
    execute_decoded(app, meta, Op::SPEC, decoded, move |output| with_request_id(encode(output), &request_id)).await
}

/// An action not in the table: audited as an unknown operation, naming the action.
async fn unknown(app: &Arc<App>, meta: CallMeta, action: &str) -> Answer<Vec<u8>> {
    let error = if action.is_empty() {
        crate::engine::KmsError::missing("Action")
    } else {
        crate::engine::KmsError::new(ErrorCode::ActionNotFound)
    };
    refuse_unknown(app, meta, "Action", action, error).await
}

/// The body as sent, `RequestId` first, and its size for the call's record.
fn with_request_id(body: Value, request_id: &str) -> (Vec<u8>, u64) {
    let mut object = Map::new();
    object.insert("RequestId".to_owned(), json!(request_id));
    if let Value::Object(fields) = body {
        object.extend(fields);
    }
    let bytes = serde_json::to_vec(&Value::Object(object)).unwrap_or_default();
    let size = bytes.len() as u64;
    (bytes, size)
}

/// A result made under a key version: `{KeyId, KeyVersionId, <name>: value}`.
fn under(key_id: String, key_version_id: uuid::Uuid, name: &str, value: impl Into<Value>) -> Value {
    let body = json!({ "KeyId": key_id, "KeyVersionId": key_version_id.to_string() });
    with(body, name, value)
}

/// A ciphertext sealed under a key version.
fn sealed_body(sealed: &Sealed) -> Value {
    under(sealed.key_id.clone(), sealed.key_version_id, "CiphertextBlob", b64(&sealed.ciphertext_blob))
}

/// `body` with one more field.
fn with(mut body: Value, name: &str, value: impl Into<Value>) -> Value {
    body[name] = value.into();
    body
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A page as Alibaba nests it: `{"Keys": {"Key": [...]}, "TotalCount", "PageNumber", "PageSize"}`.
fn paged_body<T>(paged: &Paged<T>, list: &str, item: &str, items: Vec<Value>) -> Value {
    let (total_count, page_number, page_size) = page_fields(paged);
    let mut body = Map::new();
    body.insert(list.to_owned(), json!({ item: items }));
    body.insert("TotalCount".to_owned(), json!(total_count));
    body.insert("PageNumber".to_owned(), json!(page_number));
    body.insert("PageSize".to_owned(), json!(page_size));
    Value::Object(body)
}

fn key_metadata(meta: &KeyMeta) -> Value {
    let enabled = |on: bool| if on { "Enabled" } else { "Disabled" };
    json!({
        "KeyId": meta.key_id,
        "Arn": meta.arn(),
        "KeyState": meta.state.as_str(),
        "KeySpec": meta.spec.as_str(),
        "KeyUsage": meta.usage.as_str(),
        "Origin": meta.origin.as_str(),
        "CreationDate": meta.creation_date.to_rfc3339(),
        "DeleteDate": date(meta.delete_date),
        "PrimaryKeyVersion": meta.primary_version.map(|v| v.to_string()).unwrap_or_default(),
        "Description": meta.description,
        "Creator": meta.creator,
        "ProtectionLevel": meta.protection_level.as_str(),
        "DeletionProtection": enabled(meta.deletion_protection),
        "DeletionProtectionDescription": meta.deletion_protection_description,
        "AutomaticRotation": meta.rotation.automatic.as_str(),
        "RotationInterval": meta.rotation.interval_secs.map(|secs| format!("{secs}s")).unwrap_or_default(),
        "LastRotationDate": date(meta.rotation.last_rotation_date),
        "NextRotationDate": date(meta.rotation.next_rotation_date),
        "MaterialExpireTime": date(meta.import.as_ref().and_then(|i| i.expires)),
        "DKMSInstanceId": meta.instance_id.clone().unwrap_or_default(),
    })
}

fn key_version(info: &VersionInfo) -> Value {
    under(info.key_id.clone(), info.key_version_id, "CreationDate", info.creation_date.to_rfc3339())
}

fn aliases_body(paged: Paged<AliasRecord>) -> Value {
    let aliases = paged
        .items
        .iter()
        .map(|a| json!({ "AliasName": a.alias_name, "AliasArn": a.arn(), "KeyId": a.key_id }))
        .collect();
    paged_body(&paged, "Aliases", "Alias", aliases)
}

/// A secret's value as GetSecretValue answers it (and each of BatchGetSecretValue's).
fn secret_value(value: &SecretValue) -> Value {
    let SecretValue { secret, version, data } = value;
    let (automatic, interval, next) = rotation_fields(secret);
    json!({
        "SecretName": secret.name,
        "SecretType": secret.secret_type.as_str(),
        "SecretData": encode_data(data, secret.data_type).to_string(),
        "SecretDataType": secret.data_type.as_str(),
        "VersionId": version.version_id,
        "VersionStages": version_stages(version),
        "CreateTime": version.created.to_rfc3339(),
        "ExtendedConfig": extended_config(secret),
        "AutomaticRotation": automatic,
        "RotationInterval": interval,
        "NextRotationDate": next,
        "LastRotationDate": date(secret.rotation.last),
    })
}

/// An instance as GetKmsInstance answers it. `KeyNum`, `SecretNum` and
/// `VpcNum` are its quotas, as Alibaba's are; kmsim binds no VPC, so an
/// instance reads `Connected` until it expires.
fn kms_instance(instance: &Instance) -> Value {
    let status = if instance.expired { "Disconnected" } else { "Connected" };
    json!({
        "InstanceId": instance.instance_id,
        "InstanceName": instance.instance_name,
        "Status": status,
        "Spec": instance.spec,
        "KeyNum": KEY_QUOTA,
        "SecretNum": SECRET_QUOTA.to_string(),
        "VpcNum": VPC_QUOTA,
        "CreateTime": instance.created.to_rfc3339(),
        "StartDate": instance.created.to_rfc3339(),
        "EndDate": instance.expires.to_rfc3339(),
        "ChargeType": "Subscription",
        "VpcId": "",
        "VswitchIds": [],
        "ZoneIds": [],
        "BindVpcs": { "BindVpc": [] },
    })
}

fn network_rule(rule: &NetworkRule) -> Value {
    json!({
        "Arn": rule.arn(),
        "Name": rule.name,
        "Description": rule.description,
        "Type": rule.rule_type,
        "SourcePrivateIp": json!(rule.source_private_ips).to_string(),
    })
}

/// A permission policy as DescribePolicy answers it: its lists as JSON arrays,
/// its network rules as the JSON text of `AccessControlRules`.
fn permission_policy(policy: &Policy) -> Value {
    let permission = policy.permission.clone().unwrap_or_default();
    json!({
        "Arn": permission.arn(&policy.policy_name),
        "Name": policy.policy_name,
        "Description": policy.description,
        "KmsInstance": permission.kms_instance,
        "Permissions": permission.permissions,
        "Resources": permission.resources,
        "AccessControlRules": json!({ "NetworkRules": permission.network_rules }).to_string(),
    })
}

/// An AAP as Alibaba answers it, its policies as the JSON text they are sent as.
fn application_access_point(aap: &Aap) -> Value {
    json!({
        "Arn": aap.arn(),
        "Name": aap.name,
        "Description": aap.description,
        "AuthenticationMethod": CLIENT_KEY,
        "Policies": json!(aap.policies).to_string(),
    })
}

/// A ClientKey without its secret.
fn client_key(key: &ClientKey) -> Value {
    json!({
        "ClientKeyId": key.client_key_id,
        "AapName": key.aap_name,
        "CreateTime": key.created.to_rfc3339(),
        "NotBefore": key.not_before.to_rfc3339(),
        "NotAfter": key.not_after.to_rfc3339(),
    })
}

fn version_stages(version: &SecretVersion) -> Value {
    json!({ "VersionStage": stages(version) })
}

fn secret_tags(secret: &Secret) -> Value {
    let tags: Vec<Value> = secret.tags.iter().map(|(k, v)| json!({ "TagKey": k, "TagValue": v })).collect();
    json!({ "Tag": tags })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_an_action_of_the_2016_01_20_api_and_named_once() {
        let mut seen = std::collections::HashSet::new();
        for action in ACTIONS {
            assert!(seen.insert(action), "{action} twice");
            assert!(SDK_ACTIONS.contains(action), "{action} is not an action of the SDK");
        }
        assert_eq!(SDK_ACTIONS.len(), 91);
    }

    /// docs/alibaba.md's table of actions, as the table above makes it.
    fn action_table() -> String {
        let mut table = String::from("| action | kmsim |\n|---|---|\n");
        for action in SDK_ACTIONS {
            let answer = if ACTIONS.contains(action) { "honoured" } else { "`InvalidAction.NotFound` (404)" };
            table.push_str(&format!("| {action} | {answer} |\n"));
        }
        table
    }

    #[test]
    fn the_docs_list_exactly_the_actions_this_table_honours() {
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/alibaba.md")).unwrap();
        let table = action_table();
        assert!(docs.contains(&table), "docs/alibaba.md must carry this table:\n{table}");
    }
}
