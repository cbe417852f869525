//! The catalogue: every operation the kernel can run describes itself once,
//! here, keyed by the operation rather than by any front end's wire name: the
//! service it belongs to, its audit event name and action, whether it reads or
//! writes, its resource type, the RAM action a policy names it by, the name an
//! injected fault matches, and what it costs to run. The kernel builds every
//! audit record, judges every permission and draws every fault from one of
//! these, so no front end or handler does any of it by hand.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceName {
    Kms,
    /// kmsim's own audit service: kept apart so reading the trail never shows up in KMS queries.
    KmsimAudit,
    KmsimSimulation,
    KmsimEvents,
    /// Identities and permissions (RAM users, AccessKeys, policies, AAPs, ClientKeys).
    KmsimAccess,
}

impl ServiceName {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Kms => "Kms",
            ServiceName::KmsimAudit => "KmsimAudit",
            ServiceName::KmsimSimulation => "KmsimSimulation",
            ServiceName::KmsimEvents => "KmsimEvents",
            ServiceName::KmsimAccess => "KmsimAccess",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadWrite {
    Read,
    Write,
}

impl ReadWrite {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadWrite::Read => "Read",
            ReadWrite::Write => "Write",
        }
    }
}

/// Whether a caller asked for the operation or kmsim did it on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    ApiCall,
    /// Work the scheduler does when it falls due: actual deletion, scheduled rotation…
    ServiceEvent,
}

impl EventType {
    /// ActionTrail's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ApiCall => "ApiCall",
            EventType::ServiceEvent => "AliyunServiceEvent",
        }
    }
}

/// What running an operation costs, which decides where the kernel runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Runs on the async workers.
    Light,
    /// May generate an RSA key (0.1 to 1.5 s of CPU): runs on the blocking pool,
    /// so it never stalls the calls that share its worker.
    GeneratesKeys,
}

/// One operation's catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpSpec {
    pub service: ServiceName,
    /// The operation's name, which its audit records carry, e.g. `Encrypt`.
    pub event_name: &'static str,
    /// e.g. `kms.encrypt`.
    pub action: &'static str,
    pub rw: ReadWrite,
    /// `kms_key` for operations on keys, empty otherwise.
    pub resource_type: &'static str,
    pub event_type: EventType,
    /// What a policy's `Action` names it by (`kms:Encrypt`); empty for the
    /// admin-only services, which no policy grants.
    pub ram_action: &'static str,
    /// What an injected fault's `Method` matches; empty where no fault applies
    /// (faults are for testing clients of the KMS API, and kmsim's own
    /// services stay reliable so a test can always see and undo what it did).
    pub fault_name: &'static str,
    pub cost: Cost,
}

/// The policy action namespace of a service; `None` for the admin-only services.
pub const fn product(service: ServiceName) -> Option<&'static str> {
    match service {
        ServiceName::Kms => Some("kms"),
        ServiceName::KmsimAudit => Some("actiontrail"),
        ServiceName::KmsimEvents => Some("cms"),
        ServiceName::KmsimSimulation | ServiceName::KmsimAccess => None,
    }
}

macro_rules! ram_action {
    (Kms $name:literal) => {
        concat!("kms:", $name)
    };
    (KmsimAudit $name:literal) => {
        concat!("actiontrail:", $name)
    };
    (KmsimEvents $name:literal) => {
        concat!("cms:", $name)
    };
    ($admin_only:ident $name:literal) => {
        ""
    };
}

macro_rules! fault_name {
    (ApiCall Kms $name:literal) => {
        $name
    };
    (ApiCall $other:ident $name:literal) => {
        ""
    };
    (ServiceEvent $service:ident $name:literal $fault:literal) => {
        $fault
    };
    (ServiceEvent $service:ident $name:literal) => {
        ""
    };
}

macro_rules! ops {
    ($list:ident: $event_type:ident {
        $($const:ident = $service:ident $name:literal $action:literal $rw:ident $resource:literal $cost:ident $(fault $fault:literal)?;)+
    }) => {
        impl OpSpec {
            $(pub const $const: OpSpec = OpSpec {
                service: ServiceName::$service,
                event_name: $name,
                action: $action,
                rw: ReadWrite::$rw,
                resource_type: $resource,
                event_type: EventType::$event_type,
                ram_action: ram_action!($service $name),
                fault_name: fault_name!($event_type $service $name $($fault)?),
                cost: Cost::$cost,
            };)+

            pub const $list: &'static [OpSpec] = &[$(OpSpec::$const),+];
        }
    };
}

// Every RPC the gRPC front end serves.
ops! { ALL: ApiCall {
    CREATE_KEY = Kms "CreateKey" "kms.create_key" Write "kms_key" GeneratesKeys;
    DESCRIBE_KEY = Kms "DescribeKey" "kms.describe_key" Read "kms_key" Light;
    LIST_KEYS = Kms "ListKeys" "kms.list_keys" Read "kms_key" Light;
    UPDATE_KEY_DESCRIPTION = Kms "UpdateKeyDescription" "kms.update_key_description" Write "kms_key" Light;
    ENABLE_KEY = Kms "EnableKey" "kms.enable_key" Write "kms_key" Light;
    DISABLE_KEY = Kms "DisableKey" "kms.disable_key" Write "kms_key" Light;
    SCHEDULE_KEY_DELETION = Kms "ScheduleKeyDeletion" "kms.schedule_key_deletion" Write "kms_key" Light;
    CANCEL_KEY_DELETION = Kms "CancelKeyDeletion" "kms.cancel_key_deletion" Write "kms_key" Light;
    SET_DELETION_PROTECTION = Kms "SetDeletionProtection" "kms.set_deletion_protection" Write "kms_key" Light;
    CREATE_ALIAS = Kms "CreateAlias" "kms.create_alias" Write "kms_key" Light;
    UPDATE_ALIAS = Kms "UpdateAlias" "kms.update_alias" Write "kms_key" Light;
    DELETE_ALIAS = Kms "DeleteAlias" "kms.delete_alias" Write "kms_key" Light;
    LIST_ALIASES = Kms "ListAliases" "kms.list_aliases" Read "kms_key" Light;
    LIST_ALIASES_BY_KEY_ID = Kms "ListAliasesByKeyId" "kms.list_aliases_by_key_id" Read "kms_key" Light;
    TAG_RESOURCE = Kms "TagResource" "kms.tag_resource" Write "kms_key" Light;
    UNTAG_RESOURCE = Kms "UntagResource" "kms.untag_resource" Write "kms_key" Light;
    LIST_RESOURCE_TAGS = Kms "ListResourceTags" "kms.list_resource_tags" Read "kms_key" Light;
    ENCRYPT = Kms "Encrypt" "kms.encrypt" Read "kms_key" Light;
    DECRYPT = Kms "Decrypt" "kms.decrypt" Read "kms_key" Light;
    RE_ENCRYPT = Kms "ReEncrypt" "kms.encrypt" Read "kms_key" Light;
    GENERATE_DATA_KEY = Kms "GenerateDataKey" "kms.encrypt" Read "kms_key" Light;
    GENERATE_DATA_KEY_WITHOUT_PLAINTEXT = Kms "GenerateDataKeyWithoutPlaintext" "kms.encrypt" Read "kms_key" Light;
    GENERATE_RANDOM = Kms "GenerateRandom" "kms.generate_random" Read "" Light;
    ASYMMETRIC_SIGN = Kms "AsymmetricSign" "kms.sign" Read "kms_key" Light;
    ASYMMETRIC_VERIFY = Kms "AsymmetricVerify" "kms.verify" Read "kms_key" Light;
    ASYMMETRIC_ENCRYPT = Kms "AsymmetricEncrypt" "kms.encrypt" Read "kms_key" Light;
    ASYMMETRIC_DECRYPT = Kms "AsymmetricDecrypt" "kms.decrypt" Read "kms_key" Light;
    GET_PUBLIC_KEY = Kms "GetPublicKey" "kms.get_public_key" Read "kms_key" Light;
    CREATE_KEY_VERSION = Kms "CreateKeyVersion" "kms.rotate" Write "kms_key" GeneratesKeys;
    DESCRIBE_KEY_VERSION = Kms "DescribeKeyVersion" "kms.describe_key_version" Read "kms_key" Light;
    LIST_KEY_VERSIONS = Kms "ListKeyVersions" "kms.list_key_versions" Read "kms_key" Light;
    UPDATE_ROTATION_POLICY = Kms "UpdateRotationPolicy" "kms.update_rotation_policy" Write "kms_key" Light;
    GET_PARAMETERS_FOR_IMPORT = Kms "GetParametersForImport" "kms.get_parameters_for_import" Read "kms_key" GeneratesKeys;
    IMPORT_KEY_MATERIAL = Kms "ImportKeyMaterial" "kms.import_key_material" Write "kms_key" Light;
    DELETE_KEY_MATERIAL = Kms "DeleteKeyMaterial" "kms.delete_key_material" Write "kms_key" Light;
    EXPORT_DATA_KEY = Kms "ExportDataKey" "kms.export" Read "kms_key" Light;
    GENERATE_AND_EXPORT_DATA_KEY = Kms "GenerateAndExportDataKey" "kms.export" Read "kms_key" Light;
    EXPORT_KEY = Kms "ExportKey" "kms.export" Read "kms_key" Light;
    GENERATE_MAC = Kms "GenerateMac" "kms.hmac" Read "kms_key" Light;
    VERIFY_MAC = Kms "VerifyMac" "kms.verify_hmac" Read "kms_key" Light;
    CREATE_KMS_INSTANCE = Kms "CreateKmsInstance" "kms.create_kms_instance" Write "kms_instance" Light;
    GET_KMS_INSTANCE = Kms "GetKmsInstance" "kms.get_kms_instance" Read "kms_instance" Light;
    LIST_KMS_INSTANCES = Kms "ListKmsInstances" "kms.list_kms_instances" Read "kms_instance" Light;
    REPLICATE_KEY = Kms "ReplicateKey" "kms.replicate_key" Write "kms_key" Light;
    SYNC_KEY = Kms "SyncKey" "kms.sync_key" Write "kms_key" Light;
    LIST_KEY_REPLICAS = Kms "ListKeyReplicas" "kms.list_key_replicas" Read "kms_key" Light;
    GET_KEY_POLICY = Kms "GetKeyPolicy" "kms.get_key_policy" Read "kms_key" Light;
    SET_KEY_POLICY = Kms "SetKeyPolicy" "kms.set_key_policy" Write "kms_key" Light;
    LIST_AUDIT_EVENTS = KmsimAudit "ListAuditEvents" "kmsim.list_audit_events" Read "" Light;
    QUERY_AUDIT_EVENTS = KmsimAudit "QueryAuditEvents" "kmsim.query_audit_events" Read "" Light;
    EXPORT_AUDIT_EVENTS = KmsimAudit "ExportAuditEvents" "kmsim.export_audit_events" Read "" Light;
    TAIL_AUDIT_EVENTS = KmsimAudit "TailAuditEvents" "kmsim.tail_audit_events" Read "" Light;
    GET_ACCESS_KEY_USAGE = KmsimAudit "GetAccessKeyUsage" "kmsim.get_access_key_usage" Read "" Light;
    GET_AUDIT_PUBLIC_KEY = KmsimAudit "GetAuditPublicKey" "kmsim.get_audit_public_key" Read "" Light;
    VERIFY_AUDIT_TRAIL = KmsimAudit "VerifyAuditTrail" "kmsim.verify_audit_trail" Read "" Light;
    LIST_TRAILS = KmsimAudit "ListTrails" "kmsim.list_trails" Read "" Light;
    PUT_EVENT_SELECTORS = KmsimAudit "PutEventSelectors" "kmsim.put_event_selectors" Write "" Light;
    GET_CLOCK = KmsimSimulation "GetClock" "kmsim.get_clock" Read "" Light;
    ADVANCE_CLOCK = KmsimSimulation "AdvanceClock" "kmsim.advance_clock" Write "" Light;
    SET_CLOCK = KmsimSimulation "SetClock" "kmsim.set_clock" Write "" Light;
    INJECT_FAULT = KmsimSimulation "InjectFault" "kmsim.inject_fault" Write "" Light;
    LIST_FAULTS = KmsimSimulation "ListFaults" "kmsim.list_faults" Read "" Light;
    CLEAR_FAULTS = KmsimSimulation "ClearFaults" "kmsim.clear_faults" Write "" Light;
    GET_METRICS = KmsimSimulation "GetMetrics" "kmsim.get_metrics" Read "" Light;
    APPLY_SEED = KmsimSimulation "ApplySeed" "kmsim.apply_seed" Write "" GeneratesKeys;
    RESET = KmsimSimulation "Reset" "kmsim.reset" Write "" GeneratesKeys;
    LIST_SYSTEM_EVENTS = KmsimEvents "ListSystemEvents" "kmsim.list_system_events" Read "" Light;
    WATCH_SYSTEM_EVENTS = KmsimEvents "WatchSystemEvents" "kmsim.watch_system_events" Read "" Light;
    CREATE_EVENT_SUBSCRIPTION = KmsimEvents "CreateEventSubscription" "kmsim.create_event_subscription" Write "" Light;
    LIST_EVENT_SUBSCRIPTIONS = KmsimEvents "ListEventSubscriptions" "kmsim.list_event_subscriptions" Read "" Light;
    DELETE_EVENT_SUBSCRIPTION = KmsimEvents "DeleteEventSubscription" "kmsim.delete_event_subscription" Write "" Light;
    CREATE_ACCESS_KEY = KmsimAccess "CreateAccessKey" "ram.create_access_key" Write "ram_access_key" Light;
    LIST_ACCESS_KEYS = KmsimAccess "ListAccessKeys" "ram.list_access_keys" Read "ram_access_key" Light;
    UPDATE_ACCESS_KEY = KmsimAccess "UpdateAccessKey" "ram.update_access_key" Write "ram_access_key" Light;
    DELETE_ACCESS_KEY = KmsimAccess "DeleteAccessKey" "ram.delete_access_key" Write "ram_access_key" Light;
    LIST_USERS = KmsimAccess "ListUsers" "ram.list_users" Read "ram_user" Light;
    CREATE_POLICY = KmsimAccess "CreatePolicy" "ram.create_policy" Write "ram_policy" Light;
    GET_POLICY = KmsimAccess "GetPolicy" "ram.get_policy" Read "ram_policy" Light;
    LIST_POLICIES = KmsimAccess "ListPolicies" "ram.list_policies" Read "ram_policy" Light;
    UPDATE_POLICY = KmsimAccess "UpdatePolicy" "ram.update_policy" Write "ram_policy" Light;
    DELETE_POLICY = KmsimAccess "DeletePolicy" "ram.delete_policy" Write "ram_policy" Light;
    ATTACH_POLICY = KmsimAccess "AttachPolicy" "ram.attach_policy" Write "ram_policy" Light;
    DETACH_POLICY = KmsimAccess "DetachPolicy" "ram.detach_policy" Write "ram_policy" Light;
    CREATE_AAP = KmsimAccess "CreateApplicationAccessPoint" "kms.create_application_access_point" Write "kms_aap" Light;
    GET_AAP = KmsimAccess "GetApplicationAccessPoint" "kms.get_application_access_point" Read "kms_aap" Light;
    LIST_AAPS = KmsimAccess "ListApplicationAccessPoints" "kms.list_application_access_points" Read "kms_aap" Light;
    DELETE_AAP = KmsimAccess "DeleteApplicationAccessPoint" "kms.delete_application_access_point" Write "kms_aap" Light;
    CREATE_CLIENT_KEY = KmsimAccess "CreateClientKey" "kms.create_client_key" Write "kms_client_key" GeneratesKeys;
    GET_CLIENT_KEY = KmsimAccess "GetClientKey" "kms.get_client_key" Read "kms_client_key" Light;
    LIST_CLIENT_KEYS = KmsimAccess "ListClientKeys" "kms.list_client_keys" Read "kms_client_key" Light;
    DELETE_CLIENT_KEY = KmsimAccess "DeleteClientKey" "kms.delete_client_key" Write "kms_client_key" Light;
    CREATE_SECRET = Kms "CreateSecret" "kms.create_secret" Write "kms_secret" Light;
    GET_SECRET_VALUE = Kms "GetSecretValue" "kms.get_secret_value" Read "kms_secret" Light;
    PUT_SECRET_VALUE = Kms "PutSecretValue" "kms.put_secret_value" Write "kms_secret" Light;
    DESCRIBE_SECRET = Kms "DescribeSecret" "kms.describe_secret" Read "kms_secret" Light;
    LIST_SECRETS = Kms "ListSecrets" "kms.list_secrets" Read "kms_secret" Light;
    UPDATE_SECRET = Kms "UpdateSecret" "kms.update_secret" Write "kms_secret" Light;
    UPDATE_SECRET_VERSION_STAGE = Kms "UpdateSecretVersionStage" "kms.update_secret_version_stage" Write "kms_secret" Light;
    LIST_SECRET_VERSION_IDS = Kms "ListSecretVersionIds" "kms.list_secret_version_ids" Read "kms_secret" Light;
    DELETE_SECRET = Kms "DeleteSecret" "kms.delete_secret" Write "kms_secret" Light;
    RESTORE_SECRET = Kms "RestoreSecret" "kms.restore_secret" Write "kms_secret" Light;
    ROTATE_SECRET = Kms "RotateSecret" "kms.rotate_secret" Write "kms_secret" Light;
    UPDATE_SECRET_ROTATION_POLICY = Kms "UpdateSecretRotationPolicy" "kms.update_secret_rotation_policy" Write "kms_secret" Light;
    GET_RANDOM_PASSWORD = Kms "GetRandomPassword" "kms.get_random_password" Read "" Light;
    GET_CALLER_IDENTITY = KmsimAccess "GetCallerIdentity" "sts.get_caller_identity" Read "" Light;
}}

// Calls only the Alibaba OpenAPI offers: Alibaba's account and region calls,
// tags and secret values of several resources at once, secret policies, and
// Alibaba's model of application access (its AAP calls, permission policies
// and network rules, which are kmsim's access service: the admin's alone).
// No kmsim.v1 RPC serves them.
ops! { OPENAPI_ONLY: ApiCall {
    DESCRIBE_REGIONS = Kms "DescribeRegions" "kms.describe_regions" Read "" Light;
    DESCRIBE_ACCOUNT_KMS_STATUS = Kms "DescribeAccountKmsStatus" "kms.describe_account_kms_status" Read "" Light;
    OPEN_KMS_SERVICE = Kms "OpenKmsService" "kms.open_kms_service" Write "" Light;
    GET_KMS_INSTANCE_QUOTA_INFOS = Kms "GetKmsInstanceQuotaInfos" "kms.get_kms_instance_quota_infos" Read "kms_instance" Light;
    TAG_RESOURCES = Kms "TagResources" "kms.tag_resources" Write "" Light;
    UNTAG_RESOURCES = Kms "UntagResources" "kms.untag_resources" Write "" Light;
    LIST_TAG_RESOURCES = Kms "ListTagResources" "kms.list_tag_resources" Read "" Light;
    BATCH_GET_SECRET_VALUE = Kms "BatchGetSecretValue" "kms.batch_get_secret_value" Read "kms_secret" Light;
    GET_SECRET_POLICY = Kms "GetSecretPolicy" "kms.get_secret_policy" Read "kms_secret" Light;
    SET_SECRET_POLICY = Kms "SetSecretPolicy" "kms.set_secret_policy" Write "kms_secret" Light;
    DESCRIBE_AAP = KmsimAccess "DescribeApplicationAccessPoint" "kms.describe_application_access_point" Read "kms_aap" Light;
    UPDATE_AAP = KmsimAccess "UpdateApplicationAccessPoint" "kms.update_application_access_point" Write "kms_aap" Light;
    CREATE_PERMISSION_POLICY = KmsimAccess "CreatePolicy" "kms.create_policy" Write "kms_policy" Light;
    DESCRIBE_PERMISSION_POLICY = KmsimAccess "DescribePolicy" "kms.describe_policy" Read "kms_policy" Light;
    LIST_PERMISSION_POLICIES = KmsimAccess "ListPolicies" "kms.list_policies" Read "kms_policy" Light;
    UPDATE_PERMISSION_POLICY = KmsimAccess "UpdatePolicy" "kms.update_policy" Write "kms_policy" Light;
    DELETE_PERMISSION_POLICY = KmsimAccess "DeletePolicy" "kms.delete_policy" Write "kms_policy" Light;
    CREATE_NETWORK_RULE = KmsimAccess "CreateNetworkRule" "kms.create_network_rule" Write "kms_network_rule" Light;
    DESCRIBE_NETWORK_RULE = KmsimAccess "DescribeNetworkRule" "kms.describe_network_rule" Read "kms_network_rule" Light;
    LIST_NETWORK_RULES = KmsimAccess "ListNetworkRules" "kms.list_network_rules" Read "kms_network_rule" Light;
    UPDATE_NETWORK_RULE = KmsimAccess "UpdateNetworkRule" "kms.update_network_rule" Write "kms_network_rule" Light;
    DELETE_NETWORK_RULE = KmsimAccess "DeleteNetworkRule" "kms.delete_network_rule" Write "kms_network_rule" Light;
}}

// Calls only AWS's API offers: grants, its own shapes of what kmsim does anyway
// (rotation, key policies, data key pairs, multi-Region keys), CloudTrail's LookupEvents (the trail looked up as
// CloudTrail does; ActionTrail's own API has a LookupEvents too, which its RAM action
// names) and KMS's GetKeyLastUsage, both answered from the audit trail. No kmsim.v1
// RPC serves them.
ops! { AWS_ONLY: ApiCall {
    ENABLE_KEY_ROTATION = Kms "EnableKeyRotation" "kms.enable_key_rotation" Write "kms_key" Light;
    DISABLE_KEY_ROTATION = Kms "DisableKeyRotation" "kms.disable_key_rotation" Write "kms_key" Light;
    GET_KEY_ROTATION_STATUS = Kms "GetKeyRotationStatus" "kms.get_key_rotation_status" Read "kms_key" Light;
    ROTATE_KEY_ON_DEMAND = Kms "RotateKeyOnDemand" "kms.rotate" Write "kms_key" GeneratesKeys;
    LIST_KEY_ROTATIONS = Kms "ListKeyRotations" "kms.list_key_rotations" Read "kms_key" Light;
    LIST_KEY_POLICIES = Kms "ListKeyPolicies" "kms.list_key_policies" Read "kms_key" Light;
    GENERATE_DATA_KEY_PAIR = Kms "GenerateDataKeyPair" "kms.generate_data_key_pair" Read "kms_key" GeneratesKeys;
    GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT = Kms "GenerateDataKeyPairWithoutPlaintext" "kms.generate_data_key_pair" Read "kms_key" GeneratesKeys;
    DERIVE_SHARED_SECRET = Kms "DeriveSharedSecret" "kms.derive_shared_secret" Read "kms_key" Light;
    LOOKUP_EVENTS = KmsimAudit "LookupEvents" "kmsim.lookup_events" Read "" Light;
    GET_KEY_LAST_USAGE = Kms "GetKeyLastUsage" "kms.get_key_last_usage" Read "kms_key" Light;
    // AWS's ReplicateKey, named as AWS (and its IAM action) names it; its action tells it apart
    // from Alibaba's instance ReplicateKey.
    REPLICATE_MULTI_REGION_KEY = Kms "ReplicateKey" "kms.replicate_multi_region_key" Write "kms_key" Light;
    UPDATE_PRIMARY_REGION = Kms "UpdatePrimaryRegion" "kms.update_primary_region" Write "kms_key" Light;
    CREATE_GRANT = Kms "CreateGrant" "kms.create_grant" Write "kms_key" Light;
    LIST_GRANTS = Kms "ListGrants" "kms.list_grants" Read "kms_key" Light;
    LIST_RETIRABLE_GRANTS = Kms "ListRetirableGrants" "kms.list_retirable_grants" Read "kms_key" Light;
    RETIRE_GRANT = Kms "RetireGrant" "kms.retire_grant" Write "kms_key" Light;
    REVOKE_GRANT = Kms "RevokeGrant" "kms.revoke_grant" Write "kms_key" Light;
}}

// Work kmsim does on its own as the clock passes its due time, with no caller.
// Of it, only key syncs and secret rotations stand in for a network call that
// a fault can break.
ops! { INTERNAL: ServiceEvent {
    ACTUAL_DELETION = Kms "DeleteKey" "kms.delete_key" Write "kms_key" Light;
    SCHEDULED_ROTATION = Kms "RotateKey" "kms.rotate.scheduled" Write "kms_key" GeneratesKeys;
    MATERIAL_EXPIRY = Kms "DeleteExpiredKeyMaterial" "kms.delete_expired_key_material" Write "kms_key" Light;
    INSTANCE_EXPIRY = Kms "ExpireKmsInstance" "kms.expire_kms_instance" Write "kms_instance" Light;
    KEY_SYNC = Kms "KeySync" "kms.sync_key" Write "kms_key" Light fault "KeySync";
    SECRET_DELETION = Kms "DeleteSecret" "kms.delete_secret" Write "kms_secret" Light;
    SECRET_ROTATION = Kms "RotateSecret" "kms.rotate_secret.scheduled" Write "kms_secret" Light fault "SecretRotation";
    CLIENT_KEY_REMINDER = Kms "ClientKeyExpireReminder" "kms.client_key_expire_reminder" Write "kms_client_key" Light;
    CLOCK_START = KmsimSimulation "SetClock" "kmsim.set_clock" Write "" Light;
    AUDIT_RETENTION = KmsimAudit "PruneAuditEvents" "kmsim.prune_audit_events" Write "" Light;
    EVENT_RETENTION = KmsimEvents "PruneSystemEvents" "kmsim.prune_system_events" Write "" Light;
}}

// Calls that name no operation kmsim has (an unknown gRPC method): refused, and audited as this.
ops! { UNROUTED: ApiCall {
    UNKNOWN_OPERATION = Kms "UnknownOperation" "kms.unknown_operation" Read "" Light;
}}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operations_ram_action_is_its_products_and_its_own_name() {
        let every = [OpSpec::ALL, OpSpec::OPENAPI_ONLY, OpSpec::AWS_ONLY, OpSpec::INTERNAL, OpSpec::UNROUTED];
        for op in every.iter().flat_map(|list| list.iter()) {
            match product(op.service) {
                Some(product) => assert_eq!(op.ram_action, format!("{product}:{}", op.event_name)),
                None => assert_eq!(op.ram_action, "", "{} is admin-only: no policy grants it", op.event_name),
            }
        }
    }
}
