//! Secrets Manager: secrets, their versions and stage labels, values sealed
//! under a KMS key, deletion windows, managed rotation, and secret policies.
//!
//! A value is sealed with the engine's own Encrypt path under the secret's
//! key (bound to the secret and version by its encryption context), so the
//! key's state rules apply unchanged: a disabled key makes the secret
//! unreadable. Each seal and open runs as a nested call
//! ([`CallContext::nested`]) that the audit trail records as its own
//! Encrypt or Decrypt, sharing the secret call's request id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::access::{check_resource_policy, check_resource_policy_name};
use super::error::{ErrorCode, KmsError, KmsResult};
use super::instances::SECRET_QUOTA;
use super::key::{Key, KeyUsage, SpecKind, parse_interval, wire_enum};
use super::keys::{CreateKeyInput, add_tags, check_description, or_default};
use super::paging::{Page, Paged};
use super::policy::default_resource_policy;
use super::{Change, DueItem, DueTask, Engine, Gate, Outcome, read_lock};
use crate::clock::SimTime;
use crate::context::{CallContext, NestedKind};
use crate::events::{SecretRotation, Subject, SystemEvent};

pub const CURRENT: &str = "ACSCurrent";
pub const PREVIOUS: &str = "ACSPrevious";
/// Alibaba's limit on one value.
pub const MAX_SECRET_DATA_BYTES: usize = 30_720;
pub const RECOVERY_WINDOW_DAYS: std::ops::RangeInclusive<i32> = 7..=30;
pub const DEFAULT_RECOVERY_WINDOW_DAYS: i32 = 30;
/// Rotation intervals of secrets: 6 hours to 8760 hours.
pub const ROTATION_INTERVAL_SECS: std::ops::RangeInclusive<u64> = 6 * 3_600..=8_760 * 3_600;
const DEFAULT_ROTATION_INTERVAL_SECS: u64 = 7 * 86_400;
/// The service-managed key that seals secrets which name no key of their own.
pub const DEFAULT_KEY_ALIAS: &str = "alias/acs/secretsmanager";
pub(super) const DEFAULT_KEY_DESCRIPTION: &str =
    "Default key that protects Secrets Manager secrets when no other key is defined";
/// Operation name of rotations (scheduled or asked for), for fault patterns.
pub const ROTATION_FAULT_NAME: &str = "SecretRotation";
/// Versions that have lost every stage are kept for a while (ListSecretVersionIds
/// shows them as deprecated), then dropped, oldest first, so a secret rotated
/// every six hours for years stays small.
pub const MAX_DEPRECATED_VERSIONS: usize = 10;
const MAX_NAME_CHARS: usize = 192;
const MAX_LABEL_CHARS: usize = 64;
const MAX_EXTENDED_CONFIG_BYTES: usize = 8_192;
/// The extended-config flag that makes every rotation of a secret fail, as if its target could not be reached.
pub const TARGET_UNREACHABLE: &str = "TargetUnreachable";
/// The most secrets one BatchGetSecretValue may ask for, as Alibaba allows.
pub const MAX_BATCH_SECRETS: usize = 20;

wire_enum!(SecretType, "SecretType" {
    Generic => "Generic",
    Rds => "Rds",
    Redis => "Redis",
    RamCredentials => "RAMCredentials",
    Ecs => "ECS",
    PolarDb => "PolarDB",
});

wire_enum!(SecretDataType, "SecretDataType" {
    Text => "text",
    Binary => "binary",
});

impl SecretType {
    /// The sub-type named in extended config (Alibaba's short or full spelling), or the type's default.
    pub(super) fn sub_type(self, named: &str) -> KmsResult<&'static str> {
        let choices: &[(&str, &'static str)] = match self {
            SecretType::Generic => return Ok(""),
            SecretType::Rds => &[("SingleUser", "RdsSingleUser"), ("DoubleUsers", "RdsDoubleUsers")],
            SecretType::Redis => &[("DoubleUsers", "RedisDoubleUsers")],
            SecretType::RamCredentials => &[("RamUserAccessKey", "RamUserAccessKey")],
            SecretType::Ecs => &[("Password", "ECSLoginPassword"), ("SSHKey", "ECSLoginSSHKey")],
            SecretType::PolarDb => &[("DoubleUsers", "PolarDBDoubleUsers")],
        };
        if named.is_empty() {
            return Ok(choices[0].1);
        }
        choices.iter().find(|(short, full)| named == *short || named == *full).map(|(_, full)| *full).ok_or_else(|| {
            let known: Vec<&str> = choices.iter().map(|(short, _)| *short).collect();
            KmsError::invalid_because(
                "ExtendedConfig",
                &format!("SecretSubType of a {self} secret is one of {}.", known.join(", ")),
            )
        })
    }
}

/// One secret and every version it keeps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Secret {
    pub name: String,
    pub region: String,
    pub account_id: String,
    pub secret_type: SecretType,
    /// The full sub-type (`RdsSingleUser`, `ECSLoginSSHKey`…); empty for generic secrets.
    pub sub_type: String,
    pub data_type: SecretDataType,
    pub description: String,
    /// The id of the KMS key that seals the values.
    pub encryption_key_id: String,
    pub extended_config: Option<Map<String, Value>>,
    pub tags: BTreeMap<String, String>,
    /// The instance of the secret's key, whose quota its calls count against.
    pub instance_id: Option<String>,
    pub created: SimTime,
    pub updated: SimTime,
    /// Set while the secret is in its recovery window.
    pub planned_delete: Option<SimTime>,
    /// The secret policy as set (SetSecretPolicy); without one the secret answers the default.
    #[serde(default)]
    pub policy: Option<String>,
    pub rotation: SecretRotationPolicy,
    /// Oldest first.
    pub versions: Vec<SecretVersion>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SecretRotationPolicy {
    pub automatic: bool,
    pub interval_secs: Option<u64>,
    pub last: Option<SimTime>,
    pub next: Option<SimTime>,
    /// Rotations that succeeded; dual-account secrets alternate accounts by it.
    pub rotations: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecretVersion {
    pub version_id: String,
    pub created: SimTime,
    pub stages: BTreeSet<String>,
    /// The value sealed under the secret's key: a kmsim ciphertext blob.
    #[serde(with = "base64_bytes")]
    pub sealed: Vec<u8>,
}

impl Secret {
    pub fn arn(&self) -> String {
        secret_arn(&self.region, &self.account_id, &self.name)
    }

    pub fn version(&self, version_id: &str) -> Option<&SecretVersion> {
        self.versions.iter().find(|v| v.version_id == version_id)
    }

    pub fn staged(&self, stage: &str) -> Option<&SecretVersion> {
        self.versions.iter().find(|v| v.stages.contains(stage))
    }

    pub fn is_managed(&self) -> bool {
        self.secret_type != SecretType::Generic
    }

    fn subject(&self) -> Subject<'_> {
        Subject {
            account_id: &self.account_id,
            region: &self.region,
            resource_arn: self.arn(),
            instance_name: self.name.clone(),
            event_resource: self.name.clone(),
        }
    }

    fn config_str(&self, field: &str) -> Option<&str> {
        self.extended_config.as_ref()?.get(field)?.as_str().filter(|s| !s.is_empty())
    }

    fn target_unreachable(&self) -> bool {
        self.extended_config.as_ref().and_then(|c| c.get(TARGET_UNREACHABLE)).is_some_and(|v| v.as_bool() == Some(true))
    }

    /// Gives `stage` to `version_id` alone. A new ACSCurrent demotes the old one
    /// to ACSPrevious, which leaves whichever version had it.
    fn move_stage(&mut self, stage: &str, version_id: &str) {
        let old_current = (stage == CURRENT)
            .then(|| self.staged(CURRENT).map(|v| v.version_id.clone()))
            .flatten()
            .filter(|old| old != version_id);
        for version in &mut self.versions {
            version.stages.remove(stage);
            if version.version_id == version_id {
                version.stages.insert(stage.to_owned());
            }
        }
        if let Some(old) = old_current {
            self.move_stage(PREVIOUS, &old);
        }
    }

    /// Drops the oldest versions without stages beyond [`MAX_DEPRECATED_VERSIONS`].
    fn prune_versions(&mut self) {
        let deprecated = self.versions.iter().filter(|v| v.stages.is_empty()).count();
        let mut excess = deprecated.saturating_sub(MAX_DEPRECATED_VERSIONS);
        self.versions.retain(|v| {
            let drop = excess > 0 && v.stages.is_empty();
            excess -= usize::from(drop);
            !drop
        });
    }

    fn rotation_event(&self, result: Result<&str, (&str, &str)>, at: SimTime) -> Arc<SystemEvent> {
        let rotation = SecretRotation {
            secret_type: self.secret_type.as_str().to_owned(),
            secret_sub_type: self.sub_type.clone(),
            rotation_status: if self.rotation.automatic { "Enabled" } else { "Disabled" }.to_owned(),
        };
        Arc::new(SystemEvent::secret_rotated(self.subject(), &rotation, result, at))
    }
}

pub fn secret_arn(region: &str, account_id: &str, name: &str) -> String {
    format!("acs:kms:{region}:{account_id}:secret/{name}")
}

/// One secret a BatchGetSecretValue asks for, as GetSecretValue names one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretWanted {
    /// By name or ARN.
    pub secret_name: String,
    pub version_id: String,
    pub version_stage: String,
    pub fetch_extended_config: bool,
}

/// One secret of a BatchGetSecretValue as it was asked for, and its value or the error it met.
pub type BatchAnswer = (String, KmsResult<SecretValue>);

/// A value as read: the secret, the version, and its plaintext.
pub struct SecretValue {
    pub secret: Arc<Secret>,
    pub version: SecretVersion,
    pub data: Zeroizing<Vec<u8>>,
}

/// CreateSecret's parameters as the client gave them; empty means "default".
#[derive(Default)]
pub struct CreateSecretInput {
    pub secret_name: String,
    pub secret_data: Zeroizing<String>,
    pub secret_data_type: String,
    pub version_id: String,
    pub encryption_key_id: String,
    pub description: String,
    pub secret_type: String,
    pub extended_config: String,
    pub enable_automatic_rotation: bool,
    pub rotation_interval: String,
    pub tags: Vec<(String, String)>,
    pub dkms_instance_id: String,
}

/// ListSecrets' filters: values of one filter are ORed, filters ANDed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Filter {
    key: String,
    values: Vec<String>,
}

/// GetRandomPassword's rules.
#[derive(Debug, Clone)]
pub struct PasswordRules {
    pub length: usize,
    pub exclude_characters: String,
    pub exclude_numbers: bool,
    pub exclude_lowercase: bool,
    pub exclude_uppercase: bool,
    pub exclude_punctuation: bool,
    pub require_each_included_type: bool,
}

impl Default for PasswordRules {
    fn default() -> Self {
        PasswordRules {
            length: 32,
            exclude_characters: String::new(),
            exclude_numbers: false,
            exclude_lowercase: false,
            exclude_uppercase: false,
            exclude_punctuation: false,
            require_each_included_type: true,
        }
    }
}

const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

impl Engine {
    pub async fn create_secret(&self, cx: &CallContext, input: CreateSecretInput) -> KmsResult<Outcome<Arc<Secret>>> {
        let name = check_name(&input.secret_name)?;
        let gate = self.secret_gate(cx, &name).await;
        let arn = secret_arn(&cx.region, &self.account_id, &name);
        cx.trail.secret(&name, arn, None);
        if let Some(existing) = self.secret(&cx.region, &name) {
            return Err(if existing.planned_delete.is_some() {
                ErrorCode::ResourceInDeleteWindow.into()
            } else {
                ErrorCode::ResourceExist.into()
            });
        }
        let secret_type = or_default(&input.secret_type, SecretType::Generic, SecretType::parse)?;
        let data_type = or_default(&input.secret_data_type, SecretDataType::Text, SecretDataType::parse)?;
        let data = decode_data(&input.secret_data, data_type)?;
        check_description(&input.description)?;
        let extended_config = parse_extended_config(&input.extended_config)?;
        let named_sub_type = extended_config.as_ref().and_then(|c| c.get("SecretSubType")).and_then(Value::as_str);
        let sub_type = secret_type.sub_type(named_sub_type.unwrap_or_default())?;
        let mut tags = BTreeMap::new();
        add_tags(&mut tags, &input.tags, "Tags")?;
        let now = cx.received_at;
        let rotation = rotation_policy(secret_type, input.enable_automatic_rotation, &input.rotation_interval, now)?;
        let version_id = version_id_or_new(&input.version_id)?;

        let (key, mut changes, key_gate) = self.secret_key(cx, &input.encryption_key_id).await?;
        let instance_id = match input.dkms_instance_id.as_str() {
            "" => key.meta.instance_id.clone(),
            id => {
                let instance = self.instance_in(&cx.region, id, "DKMSInstanceId")?;
                if key.meta.instance_id.as_deref() != Some(instance.instance_id.as_str()) {
                    return Err(KmsError::invalid_because(
                        "EncryptionKeyId",
                        "A secret in a KMS instance needs a key of that instance.",
                    ));
                }
                Some(instance.instance_id.clone())
            }
        };
        cx.trail.secret(&name, secret_arn(&cx.region, &self.account_id, &name), instance_id.clone());
        cx.trail.referenced_key(key.meta.arn());
        if let Some(instance) = instance_id.as_deref().and_then(|id| self.instance(id)) {
            self.check_quota(&instance, |usage| usage.secrets, SECRET_QUOTA, "secrets")?;
        }
        let sealed = self.seal_value(cx, &key, &name, &version_id, &data)?;
        let secret = Arc::new(Secret {
            name,
            region: cx.region.clone(),
            account_id: self.account_id.clone(),
            secret_type,
            sub_type: sub_type.to_owned(),
            data_type,
            description: input.description,
            encryption_key_id: key.meta.key_id.clone(),
            extended_config,
            tags,
            instance_id,
            created: now,
            updated: now,
            planned_delete: None,
            policy: None,
            rotation,
            versions: vec![SecretVersion {
                version_id,
                created: now,
                stages: BTreeSet::from([CURRENT.to_owned()]),
                sealed,
            }],
        });
        cx.trail.response_element("Arn", secret.arn());
        changes.push(Change::SaveSecret(secret.clone()));
        Ok(Outcome::write(secret, changes, [Some(gate), key_gate].into_iter().flatten().collect()))
    }

    /// The version of `secret_name` named by id or stage (default ACSCurrent), opened.
    pub fn get_secret_value(
        &self,
        cx: &CallContext,
        secret_name: &str,
        version_id: &str,
        version_stage: &str,
    ) -> KmsResult<Outcome<SecretValue>> {
        let secret = self.live_secret(cx, secret_name)?;
        let version = match (version_id, version_stage) {
            ("", "") => secret.staged(CURRENT),
            ("", stage) => secret.staged(stage),
            (id, "") => secret.version(id),
            (id, stage) => secret.version(id).filter(|v| v.stages.contains(stage)),
        }
        .cloned()
        .ok_or(ErrorCode::ResourceNotFound)?;
        let data = self.open_value(cx, &secret, &version)?;
        Ok(Outcome::read(SecretValue { secret, version, data }))
    }

    /// Stores a new version of a generic secret. The same version id with the
    /// same value again is a no-op success; with another value, ResourceExist.
    pub async fn put_secret_value(
        &self,
        cx: &CallContext,
        secret_name: &str,
        version_id: &str,
        secret_data: &str,
        secret_data_type: &str,
        stages: Vec<String>,
    ) -> KmsResult<Outcome<(Arc<Secret>, String)>> {
        check_label(version_id, "VersionId")?;
        let stages = if stages.is_empty() { vec![CURRENT.to_owned()] } else { stages };
        for stage in &stages {
            check_label(stage, "VersionStages")?;
        }
        let (secret, gate) = self.live_secret_gated(cx, secret_name).await?;
        if secret.is_managed() {
            return Err(KmsError::new(ErrorCode::RejectedUnsupportedOperation)
                .because("A managed secret gets its values by rotation; use RotateSecret."));
        }
        let data_type = or_default(secret_data_type, secret.data_type, SecretDataType::parse)?;
        let data = decode_data(secret_data, data_type)?;
        if let Some(existing) = secret.version(version_id) {
            let same = *self.open_value(cx, &secret, existing)? == *data;
            return if same {
                let id = existing.version_id.clone();
                Ok(Outcome::read((secret, id)))
            } else {
                Err(KmsError::new(ErrorCode::ResourceExist).because("The version id is taken by another value."))
            };
        }
        let key = self.secret_key_for_use(cx, &secret)?;
        let sealed = self.seal_value(cx, &key, &secret.name, version_id, &data)?;
        let mut next = (*secret).clone();
        next.data_type = data_type;
        next.updated = cx.received_at;
        next.versions.push(SecretVersion {
            version_id: version_id.to_owned(),
            created: cx.received_at,
            stages: BTreeSet::new(),
            sealed,
        });
        for stage in &stages {
            next.move_stage(stage, version_id);
        }
        next.prune_versions();
        let next = Arc::new(next);
        Ok(Outcome::write((next.clone(), version_id.to_owned()), vec![Change::SaveSecret(next)], vec![gate]))
    }

    /// Opens each secret asked for as GetSecretValue opens one (each leaving
    /// its own nested Decrypt), and answers each on its own: its value, or the
    /// error it met. The call is authorised on every secret it names.
    pub fn batch_get_secret_value(
        &self,
        cx: &CallContext,
        wanted: &[SecretWanted],
    ) -> KmsResult<Outcome<Vec<BatchAnswer>>> {
        if wanted.is_empty() {
            return Err(KmsError::missing("SecretsList"));
        }
        if wanted.len() > MAX_BATCH_SECRETS {
            return Err(KmsError::invalid_because("SecretsList", "Ask for at most 20 secrets."));
        }
        let mut answers = Vec::with_capacity(wanted.len());
        for SecretWanted { secret_name, version_id, version_stage, fetch_extended_config: _ } in wanted {
            let arn = match self.secret_name(cx, secret_name) {
                Ok(name) => secret_arn(&cx.region, &self.account_id, &name),
                Err(_) => secret_name.clone(),
            };
            cx.trail.batch_resource(arn);
            let value = self.get_secret_value(cx, secret_name, version_id, version_stage).map(|read| read.value);
            answers.push((secret_name.clone(), value));
        }
        Ok(Outcome::read(answers))
    }

    pub fn describe_secret(&self, cx: &CallContext, secret_name: &str) -> KmsResult<Outcome<Arc<Secret>>> {
        Ok(Outcome::read(self.any_secret(cx, secret_name)?))
    }

    /// Secrets of the caller's region by name, those in their recovery window included.
    pub fn list_secrets(&self, cx: &CallContext, filters: &str, page: Page) -> KmsResult<Outcome<Paged<Arc<Secret>>>> {
        let filters: Vec<Filter> = match filters.trim() {
            "" => Vec::new(),
            text => serde_json::from_str(text).map_err(|_| {
                KmsError::invalid_because("Filters", "Write it as [{\"Key\":\"SecretName\",\"Values\":[\"db\"]}].")
            })?,
        };
        for filter in &filters {
            if !matches!(filter.key.as_str(), "SecretName" | "Description" | "TagKey" | "TagValue") {
                return Err(KmsError::invalid_because(
                    "Filters",
                    "Filter keys are SecretName, Description, TagKey and TagValue.",
                ));
            }
        }
        let matches = |secret: &Secret, filter: &Filter| {
            filter.values.iter().any(|value| match filter.key.as_str() {
                "SecretName" => secret.name.contains(value.as_str()),
                "Description" => secret.description.contains(value.as_str()),
                "TagKey" => secret.tags.contains_key(value),
                _ => secret.tags.values().any(|v| v == value),
            })
        };
        let mut secrets: Vec<Arc<Secret>> = read_lock(&self.secrets)
            .values()
            .filter(|s| s.region == cx.region && filters.iter().all(|f| matches(s, f)))
            .cloned()
            .collect();
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Outcome::read(page.slice(secrets)))
    }

    pub async fn update_secret(
        &self,
        cx: &CallContext,
        secret_name: &str,
        description: Option<String>,
        extended_config: &str,
    ) -> KmsResult<Outcome<Arc<Secret>>> {
        if let Some(description) = &description {
            check_description(description)?;
        }
        let extended_config = parse_extended_config(extended_config)?;
        let (secret, gate) = self.live_secret_gated(cx, secret_name).await?;
        let mut next = (*secret).clone();
        if let Some(description) = description {
            next.description = description;
        }
        if let Some(config) = extended_config {
            let named = config.get("SecretSubType").and_then(Value::as_str).unwrap_or_default();
            // The sub-type is fixed at creation; the config may restate it.
            if !named.is_empty() && secret.secret_type.sub_type(named)? != secret.sub_type {
                return Err(KmsError::invalid_because("ExtendedConfig", "SecretSubType cannot change."));
            }
            next.extended_config = Some(config);
        }
        next.updated = cx.received_at;
        let next = Arc::new(next);
        Ok(Outcome::write(next.clone(), vec![Change::SaveSecret(next)], vec![gate]))
    }

    /// Moves `stage` from `remove_from` (which must have it, when any version
    /// does) to `move_to`; ACSCurrent cannot be removed without a new home.
    pub async fn update_secret_version_stage(
        &self,
        cx: &CallContext,
        secret_name: &str,
        stage: &str,
        remove_from: &str,
        move_to: &str,
    ) -> KmsResult<Outcome<Arc<Secret>>> {
        check_label(stage, "VersionStage")?;
        if remove_from.is_empty() && move_to.is_empty() {
            return Err(KmsError::missing("MoveToVersion"));
        }
        let (secret, gate) = self.live_secret_gated(cx, secret_name).await?;
        let holder = secret.staged(stage).map(|v| v.version_id.as_str());
        if holder.is_some() && holder != Some(remove_from) {
            return Err(KmsError::invalid_because(
                "RemoveFromVersion",
                "It must name the version that has the stage now.",
            ));
        }
        if holder.is_none() && !remove_from.is_empty() {
            return Err(KmsError::invalid_because("RemoveFromVersion", "That version does not have the stage."));
        }
        if !move_to.is_empty() && secret.version(move_to).is_none() {
            return Err(KmsError::new(ErrorCode::ResourceNotFound).because("MoveToVersion names no version."));
        }
        if stage == CURRENT && move_to.is_empty() {
            return Err(KmsError::invalid_because("MoveToVersion", "ACSCurrent can only move to another version."));
        }
        let mut next = (*secret).clone();
        if move_to.is_empty() {
            for version in &mut next.versions {
                version.stages.remove(stage);
            }
        } else {
            next.move_stage(stage, move_to);
        }
        next.prune_versions();
        next.updated = cx.received_at;
        let next = Arc::new(next);
        Ok(Outcome::write(next.clone(), vec![Change::SaveSecret(next)], vec![gate]))
    }

    /// Versions newest first; those without stages only with `include_deprecated`.
    pub fn list_secret_version_ids(
        &self,
        cx: &CallContext,
        secret_name: &str,
        include_deprecated: bool,
        page: Page,
    ) -> KmsResult<Outcome<(Arc<Secret>, Paged<SecretVersion>)>> {
        let secret = self.live_secret(cx, secret_name)?;
        let versions: Vec<SecretVersion> =
            secret.versions.iter().rev().filter(|v| include_deprecated || !v.stages.is_empty()).cloned().collect();
        Ok(Outcome::read((secret, page.slice(versions))))
    }

    /// Schedules deletion after the recovery window, or deletes at once when forced.
    pub async fn delete_secret(
        &self,
        cx: &CallContext,
        secret_name: &str,
        recovery_window_in_days: i32,
        force: bool,
    ) -> KmsResult<Outcome<(Arc<Secret>, SimTime)>> {
        let days = match recovery_window_in_days {
            0 => DEFAULT_RECOVERY_WINDOW_DAYS,
            days if RECOVERY_WINDOW_DAYS.contains(&days) => days,
            _ => return Err(KmsError::invalid_because("RecoveryWindowInDays", "It must be between 7 and 30.")),
        };
        let (secret, gate) = self.any_secret_gated(cx, secret_name).await?;
        let now = cx.received_at;
        if force {
            let outcome = self.destroy_secret(&secret, now).map(|()| (secret, now));
            return Ok(outcome.gated(gate));
        }
        if secret.planned_delete.is_some() {
            return Err(ErrorCode::ResourceInDeleteWindow.into());
        }
        let planned = now.plus_days(i64::from(days));
        let mut next = (*secret).clone();
        next.planned_delete = Some(planned);
        next.updated = now;
        let next = Arc::new(next);
        let event = SystemEvent::secret_deletion_scheduled(next.subject(), planned, now);
        cx.trail.response_element("PlannedDeleteTime", planned.to_rfc3339());
        let changes = vec![Change::SaveSecret(next.clone()), Change::Emit(Arc::new(event))];
        Ok(Outcome::write((next, planned), changes, vec![gate]))
    }

    pub async fn restore_secret(&self, cx: &CallContext, secret_name: &str) -> KmsResult<Outcome<Arc<Secret>>> {
        let (secret, gate) = self.any_secret_gated(cx, secret_name).await?;
        if secret.planned_delete.is_none() {
            return Err(KmsError::new(ErrorCode::ResourceInUse).because("The secret is not scheduled for deletion."));
        }
        let mut next = (*secret).clone();
        next.planned_delete = None;
        next.updated = cx.received_at;
        let next = Arc::new(next);
        Ok(Outcome::write(next.clone(), vec![Change::SaveSecret(next)], vec![gate]))
    }

    /// Rotates a managed secret now. A failed rotation is committed with its
    /// failure event, and the caller sees the failure; ACSCurrent is unchanged.
    pub async fn rotate_secret(
        &self,
        cx: &CallContext,
        secret_name: &str,
        version_id: &str,
        fault: impl FnOnce(&str) -> Option<KmsError>,
    ) -> KmsResult<Outcome<(Arc<Secret>, String)>> {
        let version_id = version_id_or_new(version_id)?;
        let (secret, gate) = self.live_secret_gated(cx, secret_name).await?;
        if !secret.is_managed() {
            return Err(KmsError::new(ErrorCode::RejectedUnsupportedOperation)
                .because("Only managed secrets rotate; give a generic secret a new value with PutSecretValue."));
        }
        if secret.version(&version_id).is_some() {
            return Err(KmsError::new(ErrorCode::ResourceExist).because("The version id is taken."));
        }
        let (next, changes, failure) = self.rotate(cx, &secret, version_id.clone(), cx.received_at, fault);
        Ok(Outcome::write((next, version_id), changes, vec![gate]).failing(failure))
    }

    pub async fn update_secret_rotation_policy(
        &self,
        cx: &CallContext,
        secret_name: &str,
        enable: bool,
        interval: &str,
    ) -> KmsResult<Outcome<Arc<Secret>>> {
        let (secret, gate) = self.live_secret_gated(cx, secret_name).await?;
        let mut rotation = rotation_policy(secret.secret_type, enable, interval, cx.received_at)?;
        rotation.last = secret.rotation.last;
        rotation.rotations = secret.rotation.rotations;
        let mut next = (*secret).clone();
        next.rotation = rotation;
        next.updated = cx.received_at;
        let next = Arc::new(next);
        Ok(Outcome::write(next.clone(), vec![Change::SaveSecret(next)], vec![gate]))
    }

    pub fn get_random_password(&self, rules: &PasswordRules) -> KmsResult<Outcome<Zeroizing<String>>> {
        random_password(rules).map(Outcome::read)
    }

    /// Due work on a secret: its deletion when the window ends, or its
    /// scheduled rotation; `None` when no longer due.
    pub(super) async fn perform_secret(
        &self,
        cx: &CallContext,
        item: &DueItem,
        fault: impl FnOnce(&str) -> Option<KmsError>,
    ) -> Option<KmsResult<Outcome<()>>> {
        let (name, deleting) = match &item.task {
            DueTask::DeleteSecret { secret_name } => (secret_name, true),
            DueTask::RotateSecret { secret_name } => (secret_name, false),
            _ => return None,
        };
        let gate = self.secret_gates.lock(&format!("{}/{name}", item.region)).await;
        let secret = self.secret(&item.region, name)?;
        cx.trail.secret(name, secret.arn(), secret.instance_id.clone());
        if deleting {
            if secret.planned_delete != Some(item.at) {
                return None;
            }
            cx.trail.response_element("DeleteDate", item.at.to_rfc3339());
            return Some(Ok(self.destroy_secret(&secret, item.at).gated(gate)));
        }
        let due = secret.planned_delete.is_none() && secret.rotation.automatic && secret.rotation.next == Some(item.at);
        if !due {
            return None;
        }
        let version_id = crate::engine::crypto::new_uuid().to_string();
        let (_, changes, failure) = self.rotate(cx, &secret, version_id, item.at, fault);
        Some(Ok(Outcome::write((), changes, vec![gate]).failing(failure)))
    }

    /// Puts a secret's upcoming work on the agenda.
    pub(super) fn schedule_secret(&self, secret: &Secret) {
        let item = |at: SimTime, task: DueTask| DueItem { at, region: secret.region.clone(), task };
        let secret_name = || secret.name.clone();
        if let Some(at) = secret.planned_delete {
            self.agenda.push(item(at, DueTask::DeleteSecret { secret_name: secret_name() }));
        }
        if let (true, Some(at)) = (secret.rotation.automatic, secret.rotation.next) {
            self.agenda.push(item(at, DueTask::RotateSecret { secret_name: secret_name() }));
        }
    }

    /// One rotation at `at`: the secret as it ends up, the changes (the new
    /// version, or none, and the rotation's event), and the error the rotation
    /// failed with, if it did.
    fn rotate(
        &self,
        cx: &CallContext,
        secret: &Secret,
        version_id: String,
        at: SimTime,
        fault: impl FnOnce(&str) -> Option<KmsError>,
    ) -> (Arc<Secret>, Vec<Change>, Option<KmsError>) {
        let mut next = secret.clone();
        let now = self.clock.now();
        let (next_due, passed_over) = match (next.rotation.automatic, next.rotation.interval_secs) {
            (true, Some(secs)) => {
                let (due, passed) = super::next_occurrence(at, secs, now);
                (Some(due), passed)
            }
            _ => (None, 0),
        };
        next.rotation.next = next_due;
        if passed_over > 0 {
            // Far behind the clock: this rotation stands for the ones it passed over.
            cx.trail.response_element("CoalescedRotations", passed_over);
        }
        next.updated = at;
        let sealed = if secret.target_unreachable() {
            let target = match secret.secret_type {
                SecretType::Rds => "DescribeDBInstances",
                SecretType::Redis => "DescribeRedisInstances",
                SecretType::PolarDb => "DescribePolarDBClusters",
                SecretType::RamCredentials => "GetRamUser",
                SecretType::Ecs | SecretType::Generic => "DescribeECSInstances",
            };
            let message = format!("output , err stdout:[Module:{target} failed] target unreachable");
            let error = KmsError::new(ErrorCode::ServiceUnavailable)
                .because("The rotation target is unreachable; ACSCurrent is unchanged.");
            Err(("RotateError".to_owned(), message, error))
        } else if let Some(error) = fault(&secret.name) {
            Err((error.code.as_str().to_owned(), error.message.clone(), error))
        } else {
            self.secret_key_for_use(cx, secret)
                .and_then(|key| {
                    let value = rotated_value(secret, at)?;
                    self.seal_value(cx, &key, &secret.name, &version_id, &value)
                })
                .map_err(|error| (error.code.as_str().to_owned(), error.message.clone(), error))
        };
        let (event, failure) = match sealed {
            Err((code, message, error)) => (next.rotation_event(Err((&code, &message)), at), Some(error)),
            Ok(sealed) => {
                next.versions.push(SecretVersion {
                    version_id: version_id.clone(),
                    created: at,
                    stages: BTreeSet::new(),
                    sealed,
                });
                next.move_stage(CURRENT, &version_id);
                next.prune_versions();
                next.rotation.last = Some(at);
                next.rotation.rotations += 1;
                cx.trail.response_element("VersionId", version_id.as_str());
                (next.rotation_event(Ok(&format!("The secret rotated to version {version_id}.")), at), None)
            }
        };
        let next = Arc::new(next);
        (next.clone(), vec![Change::SaveSecret(next), Change::Emit(event)], failure)
    }

    /// The secret and its versions go, with the ActualDeletion event.
    fn destroy_secret(&self, secret: &Secret, at: SimTime) -> Outcome<()> {
        let changes = vec![
            Change::DeleteSecret { region: secret.region.clone(), secret_name: secret.name.clone() },
            Change::Emit(Arc::new(SystemEvent::secret_deleted(secret.subject(), at))),
        ];
        Outcome::write((), changes, Vec::new())
    }

    /// The secret's policy document, or the default one.
    pub fn get_secret_policy(
        &self,
        cx: &CallContext,
        secret_name: &str,
        policy_name: &str,
    ) -> KmsResult<Outcome<String>> {
        check_resource_policy_name(policy_name)?;
        let secret = self.any_secret(cx, secret_name)?;
        let text = secret.policy.clone().unwrap_or_else(|| default_resource_policy(&self.account_id));
        Ok(Outcome::read(text))
    }

    pub async fn set_secret_policy(
        &self,
        cx: &CallContext,
        secret_name: &str,
        policy_name: &str,
        text: &str,
    ) -> KmsResult<Outcome<()>> {
        check_resource_policy(policy_name, text)?;
        let (secret, gate) = self.live_secret_gated(cx, secret_name).await?;
        let next = Arc::new(Secret { policy: Some(text.to_owned()), ..(*secret).clone() });
        Ok(Outcome::write((), vec![Change::SaveSecret(next)], vec![gate]))
    }

    /// Changes a secret's tags with `change`, which may refuse; not in its recovery window.
    pub(super) async fn change_secret_tags(
        &self,
        cx: &CallContext,
        secret_name: &str,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> KmsResult<()>,
    ) -> KmsResult<Outcome<()>> {
        let (secret, gate) = self.live_secret_gated(cx, secret_name).await?;
        let mut tags = secret.tags.clone();
        change(&mut tags)?;
        let next = Arc::new(Secret { tags, ..(*secret).clone() });
        Ok(Outcome::write((), vec![Change::SaveSecret(next)], vec![gate]))
    }

    pub(super) fn secret(&self, region: &str, name: &str) -> Option<Arc<Secret>> {
        read_lock(&self.secrets).get(&(region.to_owned(), name.to_owned())).cloned()
    }

    async fn secret_gate(&self, cx: &CallContext, name: &str) -> Gate {
        self.secret_gates.lock(&format!("{}/{name}", cx.region)).await
    }

    /// The secret a client named by name or ARN, in or out of its recovery window.
    fn any_secret(&self, cx: &CallContext, named: &str) -> KmsResult<Arc<Secret>> {
        let name = self.secret_name(cx, named)?;
        cx.trail.secret(&name, secret_arn(&cx.region, &self.account_id, &name), None);
        let secret = self.secret(&cx.region, &name).ok_or(ErrorCode::ResourceNotFound)?;
        cx.trail.secret(&name, secret.arn(), secret.instance_id.clone());
        Ok(secret)
    }

    /// The named secret, which must not be in its recovery window.
    fn live_secret(&self, cx: &CallContext, named: &str) -> KmsResult<Arc<Secret>> {
        let secret = self.any_secret(cx, named)?;
        if secret.planned_delete.is_some() {
            return Err(ErrorCode::ResourceInDeleteWindow.into());
        }
        Ok(secret)
    }

    /// [`Engine::any_secret`] with the secret's gate held, read after taking it.
    async fn any_secret_gated(&self, cx: &CallContext, named: &str) -> KmsResult<(Arc<Secret>, Gate)> {
        let name = self.secret_name(cx, named)?;
        let gate = self.secret_gate(cx, &name).await;
        Ok((self.any_secret(cx, &name)?, gate))
    }

    async fn live_secret_gated(&self, cx: &CallContext, named: &str) -> KmsResult<(Arc<Secret>, Gate)> {
        let name = self.secret_name(cx, named)?;
        let gate = self.secret_gate(cx, &name).await;
        Ok((self.live_secret(cx, &name)?, gate))
    }

    /// A secret's name from its name or ARN; an ARN of another region or account names nothing here.
    pub(super) fn secret_name(&self, cx: &CallContext, named: &str) -> KmsResult<String> {
        if named.is_empty() {
            return Err(KmsError::missing("SecretName"));
        }
        let Some(rest) = named.strip_prefix("acs:kms:") else { return Ok(named.to_owned()) };
        let mut parts = rest.splitn(3, ':');
        let (Some(region), Some(account), Some(resource)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(KmsError::invalid("SecretName"));
        };
        let name = resource.strip_prefix("secret/").ok_or_else(|| KmsError::invalid("SecretName"))?;
        if region != cx.region || account != self.account_id {
            return Err(ErrorCode::ResourceNotFound.into());
        }
        Ok(name.to_owned())
    }

    /// The key a new secret's values are sealed under: the one named, or the
    /// region's service-managed key, made (with its alias) on first use.
    async fn secret_key(&self, cx: &CallContext, named: &str) -> KmsResult<(Arc<Key>, Vec<Change>, Option<Gate>)> {
        if !named.is_empty() {
            let key = self.resolve(cx, named, "EncryptionKeyId")?.snapshot();
            let symmetric = matches!(key.meta.spec.kind(), SpecKind::Symmetric(_));
            if !symmetric || key.meta.usage != KeyUsage::EncryptDecrypt {
                return Err(KmsError::invalid_because(
                    "EncryptionKeyId",
                    "Secrets are sealed under a symmetric ENCRYPT/DECRYPT key.",
                ));
            }
            return Ok((key, Vec::new(), None));
        }
        let alias_gate = self.alias_gates.lock(&format!("{}/{DEFAULT_KEY_ALIAS}", cx.region)).await;
        if let Ok(slot) = self.resolve(cx, DEFAULT_KEY_ALIAS, "EncryptionKeyId") {
            return Ok((slot.snapshot(), Vec::new(), Some(alias_gate)));
        }
        let nested = cx.nested();
        let input = CreateKeyInput { description: DEFAULT_KEY_DESCRIPTION.into(), ..CreateKeyInput::default() };
        let created = self.create_key(&nested, input);
        let params = json!({ "KeySpec": "Aliyun_AES_256", "AliasName": DEFAULT_KEY_ALIAS });
        cx.trail.nested(NestedKind::CreateKey, nested, params, created.as_ref().err().cloned());
        let created = created?;
        let key = created.value;
        let alias = super::AliasRecord {
            region: cx.region.clone(),
            alias_name: DEFAULT_KEY_ALIAS.to_owned(),
            key_id: key.meta.key_id.clone(),
            account_id: self.account_id.clone(),
        };
        let mut changes = created.changes;
        changes.push(Change::SaveAlias(alias));
        Ok((key, changes, Some(alias_gate)))
    }

    /// The current snapshot of a secret's key; a key that is gone is KeyNotFound.
    fn secret_key_for_use(&self, cx: &CallContext, secret: &Secret) -> KmsResult<Arc<Key>> {
        match self.slot(&cx.region, &secret.encryption_key_id) {
            Some(slot) => Ok(slot.snapshot()),
            None => {
                // Recorded as the Encrypt that could not find its key.
                let nested = cx.nested();
                let error = KmsError::from(ErrorCode::KeyNotFound);
                let params = json!({ "KeyId": secret.encryption_key_id });
                cx.trail.nested(NestedKind::Encrypt, nested, params, Some(error.clone()));
                Err(error)
            }
        }
    }

    /// Seals a value under `key` as a nested Encrypt, bound to the secret and version.
    pub(super) fn seal_value(
        &self,
        cx: &CallContext,
        key: &Key,
        secret_name: &str,
        version_id: &str,
        data: &[u8],
    ) -> KmsResult<Vec<u8>> {
        let nested = cx.nested();
        let context = value_context(secret_name, version_id);
        nested.trail.key(&key.meta);
        nested.trail.plaintext_bytes(data.len());
        let sealed = self.seal(&nested, key, data, &context);
        let params = json!({ "KeyId": key.meta.key_id, "EncryptionContext": context });
        cx.trail.nested(NestedKind::Encrypt, nested, params, sealed.as_ref().err().cloned());
        Ok(sealed?.ciphertext_blob)
    }

    /// Opens a version's value as a nested Decrypt; the key's state decides as it does for Decrypt.
    fn open_value(&self, cx: &CallContext, secret: &Secret, version: &SecretVersion) -> KmsResult<Zeroizing<Vec<u8>>> {
        let nested = cx.nested();
        let context = value_context(&secret.name, &version.version_id);
        let opened = self.open(&nested, &version.sealed, &context);
        if let Ok(opened) = &opened {
            nested.trail.plaintext_bytes(opened.plaintext.len());
        }
        let params = json!({ "EncryptionContext": context });
        cx.trail.nested(NestedKind::Decrypt, nested, params, opened.as_ref().err().cloned());
        Ok(opened?.plaintext)
    }
}

/// What binds a sealed value to its secret and version.
fn value_context(secret_name: &str, version_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("SecretName".to_owned(), secret_name.to_owned()),
        ("SecretVersionId".to_owned(), version_id.to_owned()),
    ])
}

/// 1 to 192 characters of letters, digits and `_/+=.@-`.
pub(super) fn check_name(name: &str) -> KmsResult<String> {
    if name.is_empty() {
        return Err(KmsError::missing("SecretName"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_/+=.@-".contains(c);
    if name.chars().count() > MAX_NAME_CHARS || !name.chars().all(allowed) {
        return Err(KmsError::invalid_because("SecretName", "Use 1 to 192 letters, digits and the characters _/+=.@-"));
    }
    Ok(name.to_owned())
}

/// Version ids and stages: 1 to 64 letters, digits and `_.-`.
pub(super) fn check_label(label: &str, param: &str) -> KmsResult<()> {
    if label.is_empty() {
        return Err(KmsError::missing(param));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    if label.chars().count() > MAX_LABEL_CHARS || !label.chars().all(allowed) {
        return Err(KmsError::invalid_because(param, "Use 1 to 64 letters, digits and the characters _.-"));
    }
    Ok(())
}

fn version_id_or_new(version_id: &str) -> KmsResult<String> {
    if version_id.is_empty() {
        return Ok(crate::engine::crypto::new_uuid().to_string());
    }
    check_label(version_id, "VersionId")?;
    Ok(version_id.to_owned())
}

/// The value's bytes: text as given, or binary from base64.
pub(super) fn decode_data(data: &str, data_type: SecretDataType) -> KmsResult<Zeroizing<Vec<u8>>> {
    if data.is_empty() {
        return Err(KmsError::missing("SecretData"));
    }
    let bytes = match data_type {
        SecretDataType::Text => Zeroizing::new(data.as_bytes().to_vec()),
        SecretDataType::Binary => Zeroizing::new(
            BASE64.decode(data).map_err(|_| KmsError::invalid_because("SecretData", "Binary data is base64."))?,
        ),
    };
    if bytes.len() > MAX_SECRET_DATA_BYTES {
        return Err(KmsError::invalid_because("SecretData", "It can be at most 30720 bytes."));
    }
    Ok(bytes)
}

/// The value as the API returns it: text, or binary in base64.
pub fn encode_data(data: &[u8], data_type: SecretDataType) -> Zeroizing<String> {
    match data_type {
        SecretDataType::Text => Zeroizing::new(String::from_utf8_lossy(data).into_owned()),
        SecretDataType::Binary => Zeroizing::new(BASE64.encode(data)),
    }
}

pub(super) fn parse_extended_config(text: &str) -> KmsResult<Option<Map<String, Value>>> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_EXTENDED_CONFIG_BYTES {
        return Err(KmsError::invalid_because("ExtendedConfig", "It can be at most 8192 bytes."));
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        _ => Err(KmsError::invalid_because("ExtendedConfig", "It must be a JSON object.")),
    }
}

pub(super) fn rotation_policy(
    secret_type: SecretType,
    enable: bool,
    interval: &str,
    now: SimTime,
) -> KmsResult<SecretRotationPolicy> {
    if !enable {
        return Ok(SecretRotationPolicy::default());
    }
    if secret_type == SecretType::Generic {
        return Err(KmsError::invalid_because(
            "EnableAutomaticRotation",
            "Only managed secrets (Rds, Redis, RAMCredentials, ECS, PolarDB) rotate automatically.",
        ));
    }
    let secs = match interval {
        "" => DEFAULT_ROTATION_INTERVAL_SECS,
        text => parse_interval(
            text,
            "RotationInterval",
            ROTATION_INTERVAL_SECS,
            "Write it as 6h to 8760h (units d, h, m or s).",
        )?,
    };
    Ok(SecretRotationPolicy {
        automatic: true,
        interval_secs: Some(secs),
        last: None,
        next: Some(now.plus_secs(secs)),
        rotations: 0,
    })
}

/// A fresh credential of the shape the secret's type and sub-type hold.
fn rotated_value(secret: &Secret, at: SimTime) -> KmsResult<Zeroizing<Vec<u8>>> {
    let password = || random_password(&PasswordRules::default());
    let rules = PasswordRules { exclude_punctuation: true, ..PasswordRules::default() };
    let value = match secret.sub_type.as_str() {
        "RamUserAccessKey" => {
            let (access_key_id, access_key_secret) = super::access::new_access_key_pair();
            json!({
                "AccessKeyId": access_key_id,
                "AccessKeySecret": access_key_secret.expose(),
                "GenerateTimestamp": at.to_rfc3339(),
                "UserName": secret.config_str("UserName").unwrap_or("kmsim-user"),
            })
        }
        "ECSLoginPassword" => json!({
            "UserName": secret.config_str("UserName").unwrap_or("root"),
            "Password": password()?.as_str(),
        }),
        "ECSLoginSSHKey" => {
            let (public, private) = ssh_key_pair();
            json!({
                "UserName": secret.config_str("UserName").unwrap_or("root"),
                "PublicKey": public,
                "PrivateKey": private.as_str(),
            })
        }
        sub_type => {
            let base = secret.config_str("AccountName").unwrap_or("kmsim_app");
            // Dual-account secrets alternate between the account and its clone,
            // so the account in use keeps working while the other one changes.
            let account = if sub_type.ends_with("DoubleUsers") && secret.rotation.rotations.is_multiple_of(2) {
                format!("{base}_clone")
            } else {
                base.to_owned()
            };
            json!({ "AccountName": account, "AccountPassword": random_password(&rules)?.as_str() })
        }
    };
    Ok(Zeroizing::new(value.to_string().into_bytes()))
}

/// An Ed25519 key pair: the OpenSSH public key line and the PKCS#8 PEM private key.
fn ssh_key_pair() -> (String, Zeroizing<String>) {
    let seed = super::crypto::random_secret(32);
    let mut seed_bytes = [0u8; 32];
    seed_bytes.copy_from_slice(&seed);
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed_bytes);
    zeroize::Zeroize::zeroize(&mut seed_bytes);
    let public = signing.verifying_key().to_bytes();
    let mut blob = Vec::new();
    for part in [&b"ssh-ed25519"[..], &public[..]] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    // PKCS#8 for Ed25519 (RFC 8410) is a fixed prefix and the 32-byte seed.
    const PKCS8_PREFIX: [u8; 16] =
        [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    let mut der = Zeroizing::new(PKCS8_PREFIX.to_vec());
    der.extend_from_slice(&seed);
    let body = Zeroizing::new(BASE64.encode(&*der));
    let mut pem = Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
    pem.push_str(&body);
    pem.push_str("\n-----END PRIVATE KEY-----\n");
    (format!("ssh-ed25519 {} kmsim", BASE64.encode(blob)), pem)
}

/// A random password by GetRandomPassword's rules.
pub fn random_password(rules: &PasswordRules) -> KmsResult<Zeroizing<String>> {
    if !(8..=128).contains(&rules.length) {
        return Err(KmsError::invalid_because("PasswordLength", "It must be between 8 and 128."));
    }
    let kinds: Vec<Vec<char>> = [
        ("0123456789", rules.exclude_numbers),
        ("abcdefghijklmnopqrstuvwxyz", rules.exclude_lowercase),
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", rules.exclude_uppercase),
        (PUNCTUATION, rules.exclude_punctuation),
    ]
    .into_iter()
    .filter(|(_, excluded)| !excluded)
    .map(|(chars, _)| chars.chars().filter(|c| !rules.exclude_characters.contains(*c)).collect::<Vec<char>>())
    .filter(|chars| !chars.is_empty())
    .collect();
    if kinds.is_empty() {
        return Err(KmsError::invalid_because("ExcludeCharacters", "Every character is excluded."));
    }
    let all: Vec<char> = kinds.iter().flatten().copied().collect();
    let mut rng = crate::engine::crypto::rng();
    let mut password: Vec<char> = Vec::with_capacity(rules.length);
    if rules.require_each_included_type {
        if kinds.len() > rules.length {
            return Err(KmsError::invalid_because("PasswordLength", "It is too short to hold every kind."));
        }
        password.extend(kinds.iter().map(|kind| kind[rng.random_range(0..kind.len())]));
    }
    while password.len() < rules.length {
        password.push(all[rng.random_range(0..all.len())]);
    }
    // Shuffle, so the required kinds are not always in front.
    for i in (1..password.len()).rev() {
        password.swap(i, rng.random_range(0..=i));
    }
    let text = Zeroizing::new(password.iter().collect::<String>());
    zeroize::Zeroize::zeroize(&mut password);
    Ok(text)
}

/// Ciphertext in the stored JSON as base64 rather than a list of numbers.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        BASE64.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_with(versions: &[&str]) -> Secret {
        Secret {
            name: "s".into(),
            region: "cn-hangzhou".into(),
            account_id: "1".into(),
            secret_type: SecretType::Generic,
            sub_type: String::new(),
            data_type: SecretDataType::Text,
            description: String::new(),
            encryption_key_id: "k".into(),
            extended_config: None,
            tags: BTreeMap::new(),
            instance_id: None,
            created: SimTime(0),
            updated: SimTime(0),
            planned_delete: None,
            policy: None,
            rotation: SecretRotationPolicy::default(),
            versions: versions
                .iter()
                .map(|id| SecretVersion {
                    version_id: (*id).into(),
                    created: SimTime(0),
                    stages: BTreeSet::new(),
                    sealed: Vec::new(),
                })
                .collect(),
        }
    }

    fn stages(secret: &Secret) -> Vec<(String, Vec<String>)> {
        secret.versions.iter().map(|v| (v.version_id.clone(), v.stages.iter().cloned().collect())).collect()
    }

    #[test]
    fn a_new_current_demotes_the_old_one_to_previous() {
        let mut secret = secret_with(&["v1", "v2", "v3"]);
        secret.move_stage(CURRENT, "v1");
        secret.move_stage(CURRENT, "v2");
        secret.move_stage("Custom", "v1");
        secret.move_stage(CURRENT, "v3");
        let s = |list: &[&str]| list.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            stages(&secret),
            vec![("v1".into(), s(&["Custom"])), ("v2".into(), s(&[PREVIOUS])), ("v3".into(), s(&[CURRENT]))]
        );
        // Re-staging the current version changes nothing.
        secret.move_stage(CURRENT, "v3");
        assert_eq!(secret.staged(PREVIOUS).unwrap().version_id, "v2");
    }

    #[test]
    fn only_the_oldest_deprecated_versions_are_pruned() {
        let ids: Vec<String> = (0..15).map(|i| format!("v{i}")).collect();
        let mut secret = secret_with(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        secret.move_stage(CURRENT, "v0");
        secret.prune_versions();
        let kept: Vec<&str> = secret.versions.iter().map(|v| v.version_id.as_str()).collect();
        assert_eq!(kept.len(), 1 + MAX_DEPRECATED_VERSIONS);
        assert_eq!(kept[0], "v0", "a staged version is never pruned, however old");
        assert_eq!(kept[1], "v5");
    }

    #[test]
    fn sub_types_take_either_spelling_and_default_per_type() {
        assert_eq!(SecretType::Rds.sub_type("").unwrap(), "RdsSingleUser");
        assert_eq!(SecretType::Rds.sub_type("DoubleUsers").unwrap(), "RdsDoubleUsers");
        assert_eq!(SecretType::Ecs.sub_type("ECSLoginSSHKey").unwrap(), "ECSLoginSSHKey");
        assert_eq!(SecretType::Generic.sub_type("").unwrap(), "");
        assert_eq!(SecretType::Redis.sub_type("SingleUser").unwrap_err().code, ErrorCode::InvalidParameter);
    }

    #[test]
    fn passwords_follow_their_rules() {
        for _ in 0..50 {
            let rules = PasswordRules { length: 8, exclude_characters: "aeiou0".into(), ..PasswordRules::default() };
            let password = random_password(&rules).unwrap();
            assert_eq!(password.chars().count(), 8);
            assert!(!password.contains(|c: char| "aeiou0".contains(c)));
            assert!(password.contains(|c: char| c.is_ascii_digit()));
            assert!(password.contains(|c: char| c.is_ascii_lowercase()));
            assert!(password.contains(|c: char| c.is_ascii_uppercase()));
            assert!(password.contains(|c: char| PUNCTUATION.contains(c)));
        }
        let digits_only = PasswordRules {
            exclude_lowercase: true,
            exclude_uppercase: true,
            exclude_punctuation: true,
            ..PasswordRules::default()
        };
        assert!(random_password(&digits_only).unwrap().chars().all(|c| c.is_ascii_digit()));
        assert!(random_password(&PasswordRules { length: 7, ..PasswordRules::default() }).is_err());
        let nothing = PasswordRules { exclude_numbers: true, ..digits_only };
        assert_eq!(random_password(&nothing).unwrap_err().code, ErrorCode::InvalidParameter);
    }

    #[test]
    fn the_ssh_key_pair_is_a_matching_ed25519_pair() {
        let (public, private) = ssh_key_pair();
        let body: String = private.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = BASE64.decode(body).unwrap();
        assert_eq!(der.len(), 48, "an RFC 8410 Ed25519 PrivateKeyInfo");
        let signing = ed25519_dalek::SigningKey::from_bytes(&der[16..].try_into().unwrap());
        let blob = BASE64.decode(public.split(' ').nth(1).unwrap()).unwrap();
        assert_eq!(&blob[blob.len() - 32..], signing.verifying_key().as_bytes());
        assert!(public.starts_with("ssh-ed25519 "));
    }

    #[test]
    fn names_and_values_are_checked() {
        assert!(check_name("db/prod+app=1.x@y-z_").is_ok());
        assert_eq!(check_name("").unwrap_err().code, ErrorCode::MissingParameter);
        assert_eq!(check_name("bad name").unwrap_err().code, ErrorCode::InvalidParameter);
        assert_eq!(check_name(&"a".repeat(193)).unwrap_err().code, ErrorCode::InvalidParameter);
        assert!(decode_data(&"x".repeat(MAX_SECRET_DATA_BYTES), SecretDataType::Text).is_ok());
        assert!(decode_data(&"x".repeat(MAX_SECRET_DATA_BYTES + 1), SecretDataType::Text).is_err());
        assert_eq!(decode_data("not base64!", SecretDataType::Binary).unwrap_err().code, ErrorCode::InvalidParameter);
        assert_eq!(&*decode_data("AAEC", SecretDataType::Binary).unwrap(), &[0, 1, 2]);
        assert!(parse_extended_config("[1]").is_err());
        assert!(parse_extended_config("{\"A\":1}").unwrap().is_some());
    }

    #[test]
    fn rotation_intervals_are_six_hours_to_a_year() {
        let now = SimTime(0);
        assert_eq!(rotation_policy(SecretType::Rds, true, "6h", now).unwrap().next, Some(SimTime(6 * 3_600_000)));
        assert!(rotation_policy(SecretType::Rds, true, "5h", now).is_err());
        assert!(rotation_policy(SecretType::Rds, true, "8761h", now).is_err());
        assert!(rotation_policy(SecretType::Generic, true, "6h", now).is_err());
        assert_eq!(rotation_policy(SecretType::Generic, false, "", now).unwrap(), SecretRotationPolicy::default());
    }
}
