//! What each kmsim.v1 request tells the kernel about itself: the request
//! parameters its audit record keeps, and the resources it names.
//!
//! An allow-list: each request names the fields it records, in Alibaba's
//! spelling. Plaintext, ciphertext and anything secret are simply never
//! listed, so a new sensitive field cannot leak by default.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::kernel::Names;
use crate::proto as pb;

pub trait AuditParams {
    fn audit_params(&self) -> Value;
}

/// A field value as an audit parameter; `None` for "not given".
trait Param {
    fn param(&self) -> Option<Value>;
}

impl Param for String {
    fn param(&self) -> Option<Value> {
        (!self.is_empty()).then(|| Value::String(self.clone()))
    }
}

impl Param for i32 {
    fn param(&self) -> Option<Value> {
        (*self != 0).then(|| Value::from(*self))
    }
}

impl Param for i64 {
    fn param(&self) -> Option<Value> {
        (*self != 0).then(|| Value::from(*self))
    }
}

impl Param for u32 {
    fn param(&self) -> Option<Value> {
        (*self != 0).then(|| Value::from(*self))
    }
}

impl Param for f64 {
    fn param(&self) -> Option<Value> {
        (*self != 0.0).then(|| Value::from(*self))
    }
}

impl Param for bool {
    fn param(&self) -> Option<Value> {
        Some(Value::Bool(*self))
    }
}

impl Param for HashMap<String, String> {
    fn param(&self) -> Option<Value> {
        (!self.is_empty()).then(|| {
            let sorted: std::collections::BTreeMap<_, _> = self.iter().collect();
            serde_json::to_value(sorted).unwrap_or(Value::Null)
        })
    }
}

impl Param for Vec<String> {
    fn param(&self) -> Option<Value> {
        (!self.is_empty()).then(|| Value::from(self.clone()))
    }
}

impl Param for Vec<pb::Tag> {
    fn param(&self) -> Option<Value> {
        (!self.is_empty()).then(|| {
            Value::Array(
                self.iter().map(|t| serde_json::json!({"TagKey": t.tag_key, "TagValue": t.tag_value})).collect(),
            )
        })
    }
}

impl Param for Option<bool> {
    fn param(&self) -> Option<Value> {
        self.map(Value::Bool)
    }
}

impl Param for Option<prost_types::Duration> {
    fn param(&self) -> Option<Value> {
        self.as_ref().map(|d| Value::String(format!("{}.{:09}s", d.seconds, d.nanos)))
    }
}

impl Param for Option<prost_types::Timestamp> {
    fn param(&self) -> Option<Value> {
        let t = self.as_ref()?;
        let millis = t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos / 1_000_000));
        Some(Value::String(crate::clock::SimTime(millis).to_rfc3339_millis()))
    }
}

macro_rules! audit_params {
    ($($ty:ident { $($name:literal => $field:ident),* $(,)? })+) => {
        $(impl AuditParams for pb::$ty {
            #[allow(unused_mut)]
            fn audit_params(&self) -> Value {
                let mut params = Map::new();
                $(if let Some(value) = self.$field.param() {
                    params.insert($name.to_owned(), value);
                })*
                Value::Object(params)
            }
        })+
    };
}

audit_params! {
    CreateKeyRequest {
        "KeySpec" => key_spec, "KeyUsage" => key_usage, "Origin" => origin,
        "Description" => description, "ProtectionLevel" => protection_level,
        "EnableAutomaticRotation" => enable_automatic_rotation, "RotationInterval" => rotation_interval,
        "Exportable" => exportable, "DKMSInstanceId" => dkms_instance_id,
    }
    DescribeKeyRequest { "KeyId" => key_id }
    ListKeysRequest { "PageNumber" => page_number, "PageSize" => page_size }
    UpdateKeyDescriptionRequest { "KeyId" => key_id, "Description" => description }
    EnableKeyRequest { "KeyId" => key_id }
    DisableKeyRequest { "KeyId" => key_id }
    ScheduleKeyDeletionRequest { "KeyId" => key_id, "PendingWindowInDays" => pending_window_in_days }
    CancelKeyDeletionRequest { "KeyId" => key_id }
    SetDeletionProtectionRequest {
        "ProtectedResourceArn" => protected_resource_arn,
        "EnableDeletionProtection" => enable_deletion_protection,
        "DeletionProtectionDescription" => deletion_protection_description,
    }
    CreateAliasRequest { "AliasName" => alias_name, "KeyId" => key_id }
    UpdateAliasRequest { "AliasName" => alias_name, "TargetKeyId" => target_key_id }
    DeleteAliasRequest { "AliasName" => alias_name }
    ListAliasesRequest { "PageNumber" => page_number, "PageSize" => page_size }
    ListAliasesByKeyIdRequest { "KeyId" => key_id, "PageNumber" => page_number, "PageSize" => page_size }
    TagResourceRequest { "KeyId" => key_id, "Tags" => tags }
    UntagResourceRequest { "KeyId" => key_id, "TagKeys" => tag_keys }
    ListResourceTagsRequest { "KeyId" => key_id }
    EncryptRequest { "KeyId" => key_id, "EncryptionContext" => encryption_context }
    DecryptRequest { "EncryptionContext" => encryption_context }
    ReEncryptRequest {
        "SourceEncryptionContext" => source_encryption_context,
        "DestinationKeyId" => destination_key_id,
        "DestinationEncryptionContext" => destination_encryption_context,
    }
    GenerateDataKeyRequest {
        "KeyId" => key_id, "KeySpec" => key_spec, "NumberOfBytes" => number_of_bytes,
        "EncryptionContext" => encryption_context,
    }
    GenerateRandomRequest { "Length" => length }
    AsymmetricSignRequest {
        "KeyId" => key_id, "KeyVersionId" => key_version_id, "Algorithm" => algorithm,
        "MessageType" => message_type,
    }
    AsymmetricVerifyRequest {
        "KeyId" => key_id, "KeyVersionId" => key_version_id, "Algorithm" => algorithm,
        "MessageType" => message_type,
    }
    AsymmetricEncryptRequest { "KeyId" => key_id, "KeyVersionId" => key_version_id, "Algorithm" => algorithm }
    AsymmetricDecryptRequest { "KeyId" => key_id, "KeyVersionId" => key_version_id, "Algorithm" => algorithm }
    GetPublicKeyRequest { "KeyId" => key_id, "KeyVersionId" => key_version_id }
    CreateKeyVersionRequest { "KeyId" => key_id }
    DescribeKeyVersionRequest { "KeyId" => key_id, "KeyVersionId" => key_version_id }
    ListKeyVersionsRequest { "KeyId" => key_id, "PageNumber" => page_number, "PageSize" => page_size }
    UpdateRotationPolicyRequest {
        "KeyId" => key_id, "EnableAutomaticRotation" => enable_automatic_rotation,
        "RotationInterval" => rotation_interval,
    }
    GetParametersForImportRequest {
        "KeyId" => key_id, "WrappingAlgorithm" => wrapping_algorithm, "WrappingKeySpec" => wrapping_key_spec,
    }
    ImportKeyMaterialRequest { "KeyId" => key_id, "KeyMaterialExpireUnix" => key_material_expire_unix }
    DeleteKeyMaterialRequest { "KeyId" => key_id }
    ExportDataKeyRequest {
        "EncryptionContext" => encryption_context, "WrappingAlgorithm" => wrapping_algorithm,
        "WrappingKeySpec" => wrapping_key_spec,
    }
    GenerateAndExportDataKeyRequest {
        "KeyId" => key_id, "KeySpec" => key_spec, "NumberOfBytes" => number_of_bytes,
        "EncryptionContext" => encryption_context, "WrappingAlgorithm" => wrapping_algorithm,
        "WrappingKeySpec" => wrapping_key_spec,
    }
    ExportKeyRequest {
        "KeyId" => key_id, "KeyVersionId" => key_version_id, "WrappingAlgorithm" => wrapping_algorithm,
        "WrappingKeySpec" => wrapping_key_spec,
    }
    GenerateMacRequest { "KeyId" => key_id, "Algorithm" => algorithm }
    VerifyMacRequest { "KeyId" => key_id, "Algorithm" => algorithm }
    CreateSecretRequest {
        "SecretName" => secret_name, "SecretDataType" => secret_data_type, "VersionId" => version_id,
        "EncryptionKeyId" => encryption_key_id, "Description" => description, "SecretType" => secret_type,
        "EnableAutomaticRotation" => enable_automatic_rotation, "RotationInterval" => rotation_interval,
        "Tags" => tags, "DKMSInstanceId" => dkms_instance_id,
    }
    GetSecretValueRequest {
        "SecretName" => secret_name, "VersionStage" => version_stage, "VersionId" => version_id,
        "FetchExtendedConfig" => fetch_extended_config,
    }
    PutSecretValueRequest {
        "SecretName" => secret_name, "VersionId" => version_id, "SecretDataType" => secret_data_type,
        "VersionStages" => version_stages,
    }
    DescribeSecretRequest { "SecretName" => secret_name, "FetchTags" => fetch_tags }
    ListSecretsRequest {
        "FetchTags" => fetch_tags, "PageNumber" => page_number, "PageSize" => page_size, "Filters" => filters,
    }
    UpdateSecretRequest { "SecretName" => secret_name, "Description" => description }
    UpdateSecretVersionStageRequest {
        "SecretName" => secret_name, "VersionStage" => version_stage,
        "RemoveFromVersion" => remove_from_version, "MoveToVersion" => move_to_version,
    }
    ListSecretVersionIdsRequest {
        "SecretName" => secret_name, "IncludeDeprecated" => include_deprecated, "PageNumber" => page_number,
        "PageSize" => page_size,
    }
    DeleteSecretRequest {
        "SecretName" => secret_name, "RecoveryWindowInDays" => recovery_window_in_days,
        "ForceDeleteWithoutRecovery" => force_delete_without_recovery,
    }
    RestoreSecretRequest { "SecretName" => secret_name }
    RotateSecretRequest { "SecretName" => secret_name, "VersionId" => version_id }
    UpdateSecretRotationPolicyRequest {
        "SecretName" => secret_name, "EnableAutomaticRotation" => enable_automatic_rotation,
        "RotationInterval" => rotation_interval,
    }
    GetRandomPasswordRequest {
        "PasswordLength" => password_length, "ExcludeCharacters" => exclude_characters,
        "ExcludeNumbers" => exclude_numbers, "ExcludeLowercase" => exclude_lowercase,
        "ExcludeUppercase" => exclude_uppercase, "ExcludePunctuation" => exclude_punctuation,
        "RequireEachIncludedType" => require_each_included_type,
    }
    ListAuditEventsRequest {
        "KeyId" => key_id, "EventName" => event_name, "ErrorCode" => error_code,
        "PageSize" => page_size, "PageToken" => page_token,
    }
    QueryAuditEventsRequest {
        "Query" => query, "StartTime" => start_time, "EndTime" => end_time, "PageSize" => page_size,
        "PageToken" => page_token, "Format" => format,
    }
    ExportAuditEventsRequest {
        "Query" => query, "StartTime" => start_time, "EndTime" => end_time, "Format" => format,
        "RecordsPerChunk" => records_per_chunk,
    }
    TailAuditEventsRequest { "Query" => query, "Format" => format }
    GetAccessKeyUsageRequest { "AccessKeyId" => access_key_id }
    GetAuditPublicKeyRequest {}
    VerifyAuditTrailRequest {}
    ListTrailsRequest {}
    PutEventSelectorsRequest {
        "TrailName" => trail_name, "ExcludeReadOnlyEvents" => exclude_read_only_events,
        "ExcludeCryptographicEvents" => exclude_cryptographic_events,
    }
    GetClockRequest {}
    AdvanceClockRequest { "Advance" => advance }
    SetClockRequest { "Time" => time }
    InjectFaultRequest {
        "Method" => method, "KeyId" => key_id, "ErrorCode" => error_code, "DelayMs" => delay_ms,
        "Probability" => probability, "Count" => count, "ExpireTime" => expire_time, "Ttl" => ttl,
    }
    ListFaultsRequest {}
    ClearFaultsRequest { "FaultId" => fault_id }
    ApplySeedRequest { "Source" => source, "DryRun" => dry_run }
    GetMetricsRequest {
        "RegionId" => region, "KmsInstanceId" => kms_instance_id, "StartTime" => start_time, "EndTime" => end_time,
    }
    CreateKmsInstanceRequest {
        "RegionId" => region, "Spec" => spec, "ExpireTime" => expire_time, "InstanceName" => instance_name,
    }
    GetKmsInstanceRequest { "KmsInstanceId" => kms_instance_id }
    ListKmsInstancesRequest {}
    ReplicateKeyRequest {
        "KeyId" => key_id, "ShadowInstanceId" => shadow_instance_id, "SyncInterval" => sync_interval,
    }
    SyncKeyRequest { "KeyId" => key_id }
    ListKeyReplicasRequest { "KeyId" => key_id }
    ListSystemEventsRequest {
        "Name" => name, "Level" => level, "StartTime" => start_time, "EndTime" => end_time,
        "PageSize" => page_size, "PageToken" => page_token,
    }
    WatchSystemEventsRequest { "Name" => name, "Level" => level }
    // The webhook URL may carry a token (chat-bot webhooks do), so the engine records it without its query.
    CreateEventSubscriptionRequest { "Name" => name, "Level" => level, "Description" => description }
    ListEventSubscriptionsRequest {}
    DeleteEventSubscriptionRequest { "SubscriptionId" => subscription_id }
    GetKeyPolicyRequest { "KeyId" => key_id, "PolicyName" => policy_name }
    SetKeyPolicyRequest { "KeyId" => key_id, "PolicyName" => policy_name, "Policy" => policy }
    // Secrets are in responses only, and responses are never recorded.
    CreateAccessKeyRequest { "UserName" => user_name }
    ListAccessKeysRequest { "UserName" => user_name }
    UpdateAccessKeyRequest { "UserAccessKeyId" => access_key_id, "Status" => status }
    DeleteAccessKeyRequest { "UserAccessKeyId" => access_key_id }
    ListUsersRequest {}
    CreatePolicyRequest { "PolicyName" => policy_name, "PolicyDocument" => policy_document, "Description" => description }
    GetPolicyRequest { "PolicyName" => policy_name }
    ListPoliciesRequest {}
    UpdatePolicyRequest { "PolicyName" => policy_name, "PolicyDocument" => policy_document }
    DeletePolicyRequest { "PolicyName" => policy_name }
    AttachPolicyRequest { "PolicyName" => policy_name, "PrincipalType" => principal_type, "PrincipalName" => principal_name }
    DetachPolicyRequest { "PolicyName" => policy_name, "PrincipalType" => principal_type, "PrincipalName" => principal_name }
    CreateApplicationAccessPointRequest {
        "Name" => name, "Description" => description, "KmsInstanceId" => kms_instance_id, "Policies" => policy_names,
    }
    GetApplicationAccessPointRequest { "Name" => name }
    ListApplicationAccessPointsRequest {}
    DeleteApplicationAccessPointRequest { "Name" => name }
    CreateClientKeyRequest { "AapName" => aap_name, "NotBefore" => not_before, "NotAfter" => not_after }
    GetClientKeyRequest { "ClientKeyId" => client_key_id }
    ListClientKeysRequest { "AapName" => aap_name }
    DeleteClientKeyRequest { "ClientKeyId" => client_key_id }
    GetCallerIdentityRequest {}
}

/// The resources a request names, for authorization: apart from the audit
/// allow-list, so that a parameter's audit spelling never decides a permission.
pub trait RequestNames {
    fn names(&self) -> Names;
}

macro_rules! names_a_key {
    ($($ty:ident => $field:ident),+ $(,)?) => {
        $(impl RequestNames for pb::$ty {
            fn names(&self) -> Names {
                Names::key(&self.$field)
            }
        })+
    };
}

macro_rules! names_a_secret {
    ($($ty:ident),+ $(,)?) => {
        $(impl RequestNames for pb::$ty {
            fn names(&self) -> Names {
                Names::secret(&self.secret_name)
            }
        })+
    };
}

macro_rules! names_with {
    ($names:expr => $($ty:ident),+ $(,)?) => {
        $(impl RequestNames for pb::$ty {
            fn names(&self) -> Names {
                $names
            }
        })+
    };
}

names_a_key! {
    DescribeKeyRequest => key_id,
    UpdateKeyDescriptionRequest => key_id,
    EnableKeyRequest => key_id,
    DisableKeyRequest => key_id,
    ScheduleKeyDeletionRequest => key_id,
    CancelKeyDeletionRequest => key_id,
    ListAliasesByKeyIdRequest => key_id,
    TagResourceRequest => key_id,
    UntagResourceRequest => key_id,
    ListResourceTagsRequest => key_id,
    EncryptRequest => key_id,
    GenerateDataKeyRequest => key_id,
    AsymmetricSignRequest => key_id,
    AsymmetricVerifyRequest => key_id,
    AsymmetricEncryptRequest => key_id,
    AsymmetricDecryptRequest => key_id,
    GetPublicKeyRequest => key_id,
    CreateKeyVersionRequest => key_id,
    DescribeKeyVersionRequest => key_id,
    ListKeyVersionsRequest => key_id,
    UpdateRotationPolicyRequest => key_id,
    GetParametersForImportRequest => key_id,
    ImportKeyMaterialRequest => key_id,
    DeleteKeyMaterialRequest => key_id,
    GenerateAndExportDataKeyRequest => key_id,
    ExportKeyRequest => key_id,
    GenerateMacRequest => key_id,
    VerifyMacRequest => key_id,
    ReplicateKeyRequest => key_id,
    SyncKeyRequest => key_id,
    ListKeyReplicasRequest => key_id,
    GetKeyPolicyRequest => key_id,
    SetKeyPolicyRequest => key_id,
    SetDeletionProtectionRequest => protected_resource_arn,
}

names_a_secret! {
    CreateSecretRequest, GetSecretValueRequest,
    PutSecretValueRequest, DescribeSecretRequest,
    UpdateSecretRequest, UpdateSecretVersionStageRequest,
    ListSecretVersionIdsRequest, DeleteSecretRequest,
    RestoreSecretRequest, RotateSecretRequest,
    UpdateSecretRotationPolicyRequest,
}

// Their key is inside their ciphertext: found only as they run.
names_with! { Names::found_while_running() =>
    DecryptRequest, ReEncryptRequest, ExportDataKeyRequest,
}

// About no particular resource.
names_with! { Names::none() =>
    CreateKeyRequest, ListKeysRequest, ListAliasesRequest,
    GenerateRandomRequest, ListSecretsRequest, GetRandomPasswordRequest,
    ListAuditEventsRequest, QueryAuditEventsRequest, ExportAuditEventsRequest,
    TailAuditEventsRequest, GetAccessKeyUsageRequest, GetAuditPublicKeyRequest,
    VerifyAuditTrailRequest, ListTrailsRequest, PutEventSelectorsRequest,
    GetClockRequest, AdvanceClockRequest, SetClockRequest,
    InjectFaultRequest, ListFaultsRequest, ClearFaultsRequest,
    ApplySeedRequest, GetMetricsRequest, CreateKmsInstanceRequest,
    GetKmsInstanceRequest, ListKmsInstancesRequest, ListSystemEventsRequest,
    WatchSystemEventsRequest, CreateEventSubscriptionRequest, ListEventSubscriptionsRequest,
    DeleteEventSubscriptionRequest, CreateAccessKeyRequest, ListAccessKeysRequest,
    UpdateAccessKeyRequest, DeleteAccessKeyRequest, ListUsersRequest,
    CreatePolicyRequest, GetPolicyRequest, ListPoliciesRequest,
    UpdatePolicyRequest, DeletePolicyRequest, AttachPolicyRequest,
    DetachPolicyRequest, CreateApplicationAccessPointRequest, GetApplicationAccessPointRequest,
    ListApplicationAccessPointsRequest, DeleteApplicationAccessPointRequest, CreateClientKeyRequest,
    GetClientKeyRequest, ListClientKeysRequest, DeleteClientKeyRequest,
    GetCallerIdentityRequest,
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

impl RequestNames for pb::CreateAliasRequest {
    fn names(&self) -> Names {
        Names { alias: non_empty(&self.alias_name), ..Names::key(&self.key_id) }
    }
}

impl RequestNames for pb::UpdateAliasRequest {
    fn names(&self) -> Names {
        Names { alias: non_empty(&self.alias_name), ..Names::key(&self.target_key_id) }
    }
}

impl RequestNames for pb::DeleteAliasRequest {
    fn names(&self) -> Names {
        Names { alias: non_empty(&self.alias_name), up_front: true, ..Names::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_never_becomes_a_parameter() {
        let request = pb::EncryptRequest {
            key_id: "alias/app".into(),
            plaintext: b"card number 4111".to_vec(),
            encryption_context: HashMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
        };
        let params = request.audit_params().to_string();
        assert_eq!(params, r#"{"KeyId":"alias/app","EncryptionContext":{"a":"1","b":"2"}}"#);
    }
}
