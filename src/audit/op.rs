//! Each RPC describes itself once, here: the service it belongs to, its event
//! name, its audit action and whether it reads or writes. The dispatcher builds
//! every audit record from one of these, so no handler writes a record by hand.

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

/// How one operation appears in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpSpec {
    pub service: ServiceName,
    /// The RPC name, e.g. `Encrypt`.
    pub event_name: &'static str,
    /// e.g. `kms.encrypt`.
    pub action: &'static str,
    pub rw: ReadWrite,
    /// `kms_key` for operations on keys, empty otherwise.
    pub resource_type: &'static str,
    pub event_type: EventType,
}

macro_rules! ops {
    ($list:ident: $event_type:ident {
        $($const:ident = $service:ident $name:literal $action:literal $rw:ident $resource:literal;)+
    }) => {
        impl OpSpec {
            $(pub const $const: OpSpec = OpSpec {
                service: ServiceName::$service,
                event_name: $name,
                action: $action,
                rw: ReadWrite::$rw,
                resource_type: $resource,
                event_type: EventType::$event_type,
            };)+

            pub const $list: &'static [OpSpec] = &[$(OpSpec::$const),+];
        }
    };
}

// Every RPC the server serves.
ops! { ALL: ApiCall {
    CREATE_KEY = Kms "CreateKey" "kms.create_key" Write "kms_key";
    DESCRIBE_KEY = Kms "DescribeKey" "kms.describe_key" Read "kms_key";
    LIST_KEYS = Kms "ListKeys" "kms.list_keys" Read "kms_key";
    UPDATE_KEY_DESCRIPTION = Kms "UpdateKeyDescription" "kms.update_key_description" Write "kms_key";
    ENABLE_KEY = Kms "EnableKey" "kms.enable_key" Write "kms_key";
    DISABLE_KEY = Kms "DisableKey" "kms.disable_key" Write "kms_key";
    SCHEDULE_KEY_DELETION = Kms "ScheduleKeyDeletion" "kms.schedule_key_deletion" Write "kms_key";
    CANCEL_KEY_DELETION = Kms "CancelKeyDeletion" "kms.cancel_key_deletion" Write "kms_key";
    SET_DELETION_PROTECTION = Kms "SetDeletionProtection" "kms.set_deletion_protection" Write "kms_key";
    CREATE_ALIAS = Kms "CreateAlias" "kms.create_alias" Write "kms_key";
    UPDATE_ALIAS = Kms "UpdateAlias" "kms.update_alias" Write "kms_key";
    DELETE_ALIAS = Kms "DeleteAlias" "kms.delete_alias" Write "kms_key";
    LIST_ALIASES = Kms "ListAliases" "kms.list_aliases" Read "kms_key";
    LIST_ALIASES_BY_KEY_ID = Kms "ListAliasesByKeyId" "kms.list_aliases_by_key_id" Read "kms_key";
    TAG_RESOURCE = Kms "TagResource" "kms.tag_resource" Write "kms_key";
    UNTAG_RESOURCE = Kms "UntagResource" "kms.untag_resource" Write "kms_key";
    LIST_RESOURCE_TAGS = Kms "ListResourceTags" "kms.list_resource_tags" Read "kms_key";
    ENCRYPT = Kms "Encrypt" "kms.encrypt" Read "kms_key";
    DECRYPT = Kms "Decrypt" "kms.decrypt" Read "kms_key";
    RE_ENCRYPT = Kms "ReEncrypt" "kms.encrypt" Read "kms_key";
    GENERATE_DATA_KEY = Kms "GenerateDataKey" "kms.encrypt" Read "kms_key";
    GENERATE_DATA_KEY_WITHOUT_PLAINTEXT = Kms "GenerateDataKeyWithoutPlaintext" "kms.encrypt" Read "kms_key";
    GENERATE_RANDOM = Kms "GenerateRandom" "kms.generate_random" Read "";
    ASYMMETRIC_SIGN = Kms "AsymmetricSign" "kms.sign" Read "kms_key";
    ASYMMETRIC_VERIFY = Kms "AsymmetricVerify" "kms.verify" Read "kms_key";
    ASYMMETRIC_ENCRYPT = Kms "AsymmetricEncrypt" "kms.encrypt" Read "kms_key";
    ASYMMETRIC_DECRYPT = Kms "AsymmetricDecrypt" "kms.decrypt" Read "kms_key";
    GET_PUBLIC_KEY = Kms "GetPublicKey" "kms.get_public_key" Read "kms_key";
    CREATE_KEY_VERSION = Kms "CreateKeyVersion" "kms.rotate" Write "kms_key";
    DESCRIBE_KEY_VERSION = Kms "DescribeKeyVersion" "kms.describe_key_version" Read "kms_key";
    LIST_KEY_VERSIONS = Kms "ListKeyVersions" "kms.list_key_versions" Read "kms_key";
    UPDATE_ROTATION_POLICY = Kms "UpdateRotationPolicy" "kms.update_rotation_policy" Write "kms_key";
    GET_PARAMETERS_FOR_IMPORT = Kms "GetParametersForImport" "kms.get_parameters_for_import" Read "kms_key";
    IMPORT_KEY_MATERIAL = Kms "ImportKeyMaterial" "kms.import_key_material" Write "kms_key";
    DELETE_KEY_MATERIAL = Kms "DeleteKeyMaterial" "kms.delete_key_material" Write "kms_key";
    EXPORT_DATA_KEY = Kms "ExportDataKey" "kms.export" Read "kms_key";
    GENERATE_AND_EXPORT_DATA_KEY = Kms "GenerateAndExportDataKey" "kms.export" Read "kms_key";
    EXPORT_KEY = Kms "ExportKey" "kms.export" Read "kms_key";
    GENERATE_MAC = Kms "GenerateMac" "kms.hmac" Read "kms_key";
    VERIFY_MAC = Kms "VerifyMac" "kms.verify_hmac" Read "kms_key";
    CREATE_KMS_INSTANCE = Kms "CreateKmsInstance" "kms.create_kms_instance" Write "kms_instance";
    GET_KMS_INSTANCE = Kms "GetKmsInstance" "kms.get_kms_instance" Read "kms_instance";
    LIST_KMS_INSTANCES = Kms "ListKmsInstances" "kms.list_kms_instances" Read "kms_instance";
    REPLICATE_KEY = Kms "ReplicateKey" "kms.replicate_key" Write "kms_key";
    SYNC_KEY = Kms "SyncKey" "kms.sync_key" Write "kms_key";
    LIST_KEY_REPLICAS = Kms "ListKeyReplicas" "kms.list_key_replicas" Read "kms_key";
    GET_KEY_POLICY = Kms "GetKeyPolicy" "kms.get_key_policy" Read "kms_key";
    SET_KEY_POLICY = Kms "SetKeyPolicy" "kms.set_key_policy" Write "kms_key";
    LIST_AUDIT_EVENTS = KmsimAudit "ListAuditEvents" "kmsim.list_audit_events" Read "";
    QUERY_AUDIT_EVENTS = KmsimAudit "QueryAuditEvents" "kmsim.query_audit_events" Read "";
    EXPORT_AUDIT_EVENTS = KmsimAudit "ExportAuditEvents" "kmsim.export_audit_events" Read "";
    TAIL_AUDIT_EVENTS = KmsimAudit "TailAuditEvents" "kmsim.tail_audit_events" Read "";
    GET_ACCESS_KEY_USAGE = KmsimAudit "GetAccessKeyUsage" "kmsim.get_access_key_usage" Read "";
    GET_AUDIT_PUBLIC_KEY = KmsimAudit "GetAuditPublicKey" "kmsim.get_audit_public_key" Read "";
    VERIFY_AUDIT_TRAIL = KmsimAudit "VerifyAuditTrail" "kmsim.verify_audit_trail" Read "";
    LIST_TRAILS = KmsimAudit "ListTrails" "kmsim.list_trails" Read "";
    PUT_EVENT_SELECTORS = KmsimAudit "PutEventSelectors" "kmsim.put_event_selectors" Write "";
    GET_CLOCK = KmsimSimulation "GetClock" "kmsim.get_clock" Read "";
    ADVANCE_CLOCK = KmsimSimulation "AdvanceClock" "kmsim.advance_clock" Write "";
    SET_CLOCK = KmsimSimulation "SetClock" "kmsim.set_clock" Write "";
    INJECT_FAULT = KmsimSimulation "InjectFault" "kmsim.inject_fault" Write "";
    LIST_FAULTS = KmsimSimulation "ListFaults" "kmsim.list_faults" Read "";
    CLEAR_FAULTS = KmsimSimulation "ClearFaults" "kmsim.clear_faults" Write "";
    GET_METRICS = KmsimSimulation "GetMetrics" "kmsim.get_metrics" Read "";
    APPLY_SEED = KmsimSimulation "ApplySeed" "kmsim.apply_seed" Write "";
    LIST_SYSTEM_EVENTS = KmsimEvents "ListSystemEvents" "kmsim.list_system_events" Read "";
    WATCH_SYSTEM_EVENTS = KmsimEvents "WatchSystemEvents" "kmsim.watch_system_events" Read "";
    CREATE_EVENT_SUBSCRIPTION = KmsimEvents "CreateEventSubscription" "kmsim.create_event_subscription" Write "";
    LIST_EVENT_SUBSCRIPTIONS = KmsimEvents "ListEventSubscriptions" "kmsim.list_event_subscriptions" Read "";
    DELETE_EVENT_SUBSCRIPTION = KmsimEvents "DeleteEventSubscription" "kmsim.delete_event_subscription" Write "";
    CREATE_ACCESS_KEY = KmsimAccess "CreateAccessKey" "ram.create_access_key" Write "ram_access_key";
    LIST_ACCESS_KEYS = KmsimAccess "ListAccessKeys" "ram.list_access_keys" Read "ram_access_key";
    UPDATE_ACCESS_KEY = KmsimAccess "UpdateAccessKey" "ram.update_access_key" Write "ram_access_key";
    DELETE_ACCESS_KEY = KmsimAccess "DeleteAccessKey" "ram.delete_access_key" Write "ram_access_key";
    LIST_USERS = KmsimAccess "ListUsers" "ram.list_users" Read "ram_user";
    CREATE_POLICY = KmsimAccess "CreatePolicy" "ram.create_policy" Write "ram_policy";
    GET_POLICY = KmsimAccess "GetPolicy" "ram.get_policy" Read "ram_policy";
    LIST_POLICIES = KmsimAccess "ListPolicies" "ram.list_policies" Read "ram_policy";
    UPDATE_POLICY = KmsimAccess "UpdatePolicy" "ram.update_policy" Write "ram_policy";
    DELETE_POLICY = KmsimAccess "DeletePolicy" "ram.delete_policy" Write "ram_policy";
    ATTACH_POLICY = KmsimAccess "AttachPolicy" "ram.attach_policy" Write "ram_policy";
    DETACH_POLICY = KmsimAccess "DetachPolicy" "ram.detach_policy" Write "ram_policy";
    CREATE_AAP = KmsimAccess "CreateApplicationAccessPoint" "kms.create_application_access_point" Write "kms_aap";
    GET_AAP = KmsimAccess "GetApplicationAccessPoint" "kms.get_application_access_point" Read "kms_aap";
    LIST_AAPS = KmsimAccess "ListApplicationAccessPoints" "kms.list_application_access_points" Read "kms_aap";
    DELETE_AAP = KmsimAccess "DeleteApplicationAccessPoint" "kms.delete_application_access_point" Write "kms_aap";
    CREATE_CLIENT_KEY = KmsimAccess "CreateClientKey" "kms.create_client_key" Write "kms_client_key";
    GET_CLIENT_KEY = KmsimAccess "GetClientKey" "kms.get_client_key" Read "kms_client_key";
    LIST_CLIENT_KEYS = KmsimAccess "ListClientKeys" "kms.list_client_keys" Read "kms_client_key";
    DELETE_CLIENT_KEY = KmsimAccess "DeleteClientKey" "kms.delete_client_key" Write "kms_client_key";
    CREATE_SECRET = Kms "CreateSecret" "kms.create_secret" Write "kms_secret";
    GET_SECRET_VALUE = Kms "GetSecretValue" "kms.get_secret_value" Read "kms_secret";
    PUT_SECRET_VALUE = Kms "PutSecretValue" "kms.put_secret_value" Write "kms_secret";
    DESCRIBE_SECRET = Kms "DescribeSecret" "kms.describe_secret" Read "kms_secret";
    LIST_SECRETS = Kms "ListSecrets" "kms.list_secrets" Read "kms_secret";
    UPDATE_SECRET = Kms "UpdateSecret" "kms.update_secret" Write "kms_secret";
    UPDATE_SECRET_VERSION_STAGE = Kms "UpdateSecretVersionStage" "kms.update_secret_version_stage" Write "kms_secret";
    LIST_SECRET_VERSION_IDS = Kms "ListSecretVersionIds" "kms.list_secret_version_ids" Read "kms_secret";
    DELETE_SECRET = Kms "DeleteSecret" "kms.delete_secret" Write "kms_secret";
    RESTORE_SECRET = Kms "RestoreSecret" "kms.restore_secret" Write "kms_secret";
    ROTATE_SECRET = Kms "RotateSecret" "kms.rotate_secret" Write "kms_secret";
    UPDATE_SECRET_ROTATION_POLICY = Kms "UpdateSecretRotationPolicy" "kms.update_secret_rotation_policy" Write "kms_secret";
    GET_RANDOM_PASSWORD = Kms "GetRandomPassword" "kms.get_random_password" Read "";
    GET_CALLER_IDENTITY = KmsimAccess "GetCallerIdentity" "sts.get_caller_identity" Read "";
}}

// Work kmsim does on its own as the clock passes its due time, with no caller.
ops! { INTERNAL: ServiceEvent {
    ACTUAL_DELETION = Kms "DeleteKey" "kms.delete_key" Write "kms_key";
    SCHEDULED_ROTATION = Kms "RotateKey" "kms.rotate.scheduled" Write "kms_key";
    MATERIAL_EXPIRY = Kms "DeleteExpiredKeyMaterial" "kms.delete_expired_key_material" Write "kms_key";
    INSTANCE_EXPIRY = Kms "ExpireKmsInstance" "kms.expire_kms_instance" Write "kms_instance";
    KEY_SYNC = Kms "KeySync" "kms.sync_key" Write "kms_key";
    SECRET_DELETION = Kms "DeleteSecret" "kms.delete_secret" Write "kms_secret";
    SECRET_ROTATION = Kms "RotateSecret" "kms.rotate_secret.scheduled" Write "kms_secret";
    CLIENT_KEY_REMINDER = Kms "ClientKeyExpireReminder" "kms.client_key_expire_reminder" Write "kms_client_key";
    CLOCK_START = KmsimSimulation "SetClock" "kmsim.set_clock" Write "";
    AUDIT_RETENTION = KmsimAudit "PruneAuditEvents" "kmsim.prune_audit_events" Write "";
}}
