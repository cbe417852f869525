//! Key lifecycle, aliases and tags: the management half of the KMS API.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, KmsError, KmsResult};
use super::key::{
    AutomaticRotation, Key, KeyMeta, KeyOp, KeySpec, KeyState, KeyUsage, KeyVersion, MultiRegion, Origin,
    ProtectionLevel, ROTATION_INTERVAL_SECS, RotationPolicy, parse_rotation_interval,
};
use super::paging::{Page, Paged};
use super::{Change, Engine, Outcome, read_lock};
use crate::clock::SimTime;
use crate::context::CallContext;
use crate::events::SystemEvent;

pub const MAX_DESCRIPTION_CHARS: usize = 8192;
pub const MAX_TAGS_PER_RESOURCE: usize = 20;
pub const PENDING_WINDOW_DAYS: std::ops::RangeInclusive<i32> = 7..=366;

/// CreateKey's parameters as the client gave them; empty means "default".
#[derive(Debug, Default, Clone)]
pub struct CreateKeyInput {
    pub key_spec: String,
    pub key_usage: String,
    pub origin: String,
    pub description: String,
    pub protection_level: String,
    pub enable_automatic_rotation: bool,
    pub rotation_interval: String,
    pub exportable: bool,
    /// The instance to create the key in; empty for a default key.
    pub dkms_instance_id: String,
    /// The key policy to start with; empty for the default.
    pub policy: String,
    /// An AWS multi-Region primary key (`mrk-` id), which ReplicateKey can copy to other regions.
    pub multi_region: bool,
    /// Tags to start with, checked as TagResource checks them.
    pub tags: Vec<(String, String)>,
}

/// A key as ListKeys shows it: what tells keys apart at a glance.
#[derive(Debug, Clone)]
pub struct KeyListing {
    pub key: Arc<Key>,
    /// The key's aliases in its region, by name.
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub region: String,
    pub alias_name: String,
    pub key_id: String,
    pub account_id: String,
}

impl AliasRecord {
    pub fn arn(&self) -> String {
        format!("acs:kms:{}:{}:{}", self.region, self.account_id, self.alias_name)
    }
}

impl Engine {
    pub fn create_key(&self, cx: &CallContext, input: CreateKeyInput) -> KmsResult<Outcome<Arc<Key>>> {
        let multi_region = input.multi_region;
        if multi_region {
            super::multi_region::check_creatable(&input)?;
        }
        let instance = match input.dkms_instance_id.as_str() {
            "" => None,
            id => Some(self.instance_for_new_key(cx, id)?),
        };
        let key_id = match &instance {
            Some(_) => super::instances::resource_id("key", &cx.region, 18),
            None if multi_region => super::multi_region::new_key_id(),
            None => crate::engine::crypto::new_uuid().to_string(),
        };
        let mut key = self.new_key(&cx.region, cx.received_at, input, instance.as_deref(), key_id, None)?;
        if multi_region {
            key.meta.multi_region = Some(MultiRegion { primary_region: cx.region.clone() });
        }
        cx.trail.key(&key.meta);
        if let Some(v) = key.primary() {
            cx.trail.key_version(v.version_id);
        }
        let key = Arc::new(key);
        let change = Change::SaveKey { key: key.clone(), new_versions: key.versions.clone() };
        Ok(Outcome::write(key, vec![change], Vec::new()))
    }

    /// A new key as CreateKey makes it (and a seed, with a fixed id and given
    /// versions): the parameters checked, in `instance` when given. Without
    /// `versions`, a KMS-made key gets one fresh version and an EXTERNAL key
    /// none; a key with versions is Enabled, its last version primary.
    pub(super) fn new_key(
        &self,
        region: &str,
        now: SimTime,
        input: CreateKeyInput,
        instance: Option<&super::Instance>,
        key_id: String,
        versions: Option<Vec<Arc<KeyVersion>>>,
    ) -> KmsResult<Key> {
        let spec = or_default(&input.key_spec, KeySpec::Aes256, KeySpec::parse)?;
        let usage = or_default(&input.key_usage, spec.default_usage(), KeyUsage::parse)?;
        if !spec.allows_usage(usage) {
            return Err(KmsError::invalid_because("KeyUsage", &format!("{spec} keys cannot be used for {usage}.")));
        }
        let origin = or_default(&input.origin, Origin::AliyunKms, Origin::parse)?;
        let protection_level = or_default(&input.protection_level, ProtectionLevel::Software, ProtectionLevel::parse)?;
        check_description(&input.description)?;
        let policy = match input.policy.as_str() {
            "" => None,
            text => {
                super::access::check_resource_policy("default", text)?;
                Some(input.policy.clone())
            }
        };
        let rotation = if input.enable_automatic_rotation {
            if origin == Origin::External {
                return Err(ErrorCode::UnsupportedOrigin.into());
            }
            automatic_rotation(&input.rotation_interval, now)?
        } else {
            RotationPolicy::default()
        };
        let versions = versions.unwrap_or_else(|| match origin {
            Origin::AliyunKms => {
                vec![Arc::new(KeyVersion::new(crate::engine::crypto::new_uuid(), now, spec.generate_material()))]
            }
            Origin::External => Vec::new(),
        });
        let mut tags = BTreeMap::new();
        if !input.tags.is_empty() {
            add_tags(&mut tags, &input.tags, "Tags")?;
        }
        let meta = KeyMeta {
            key_id,
            region: region.to_owned(),
            account_id: self.account_id.clone(),
            state: if versions.is_empty() { KeyState::PendingImport } else { KeyState::Enabled },
            spec,
            usage,
            origin,
            protection_level,
            description: input.description,
            creator: self.account_id.clone(),
            creation_date: now,
            delete_date: None,
            pending_window_in_days: None,
            primary_version: versions.last().map(|v| v.version_id),
            deletion_protection: false,
            deletion_protection_description: String::new(),
            tags,
            rotation,
            on_demand_versions: Vec::new(),
            import: None,
            exportable: input.exportable,
            instance_id: instance.map(|i| i.instance_id.clone()),
            replica_of: None,
            replicas: Vec::new(),
            policy,
            multi_region: None,
        };
        Ok(Key { meta, versions })
    }

    pub fn describe_key(&self, cx: &CallContext, key_id: &str) -> KmsResult<Outcome<KeyMeta>> {
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        key.allow(KeyOp::Inspect)?;
        Ok(Outcome::read(key.meta.clone()))
    }

    /// A page of the caller's region's keys, oldest first, each with its aliases.
    pub fn list_keys(&self, cx: &CallContext, page: Page) -> KmsResult<Outcome<Paged<KeyListing>>> {
        let mut keys: Vec<Arc<Key>> = read_lock(&self.keys)
            .values()
            .map(|slot| slot.snapshot())
            .filter(|key| key.meta.region == cx.region)
            .collect();
        keys.sort_by(|a, b| (a.meta.creation_date, &a.meta.key_id).cmp(&(b.meta.creation_date, &b.meta.key_id)));
        let paged = page.slice(keys);
        let mut aliases: HashMap<&str, Vec<String>> =
            paged.items.iter().map(|k| (k.meta.key_id.as_str(), vec![])).collect();
        let records = read_lock(&self.aliases);
        for alias in records.values().filter(|alias| alias.region == cx.region) {
            if let Some(names) = aliases.get_mut(alias.key_id.as_str()) {
                names.push(alias.alias_name.clone());
            }
        }
        let listed = paged
            .items
            .iter()
            .map(|key| {
                let mut names = aliases.remove(key.meta.key_id.as_str()).unwrap_or_default();
                names.sort();
                KeyListing { key: key.clone(), aliases: names }
            })
            .collect();
        Ok(Outcome::read(Paged { items: listed, total: paged.total, page: paged.page }))
    }

    pub async fn update_key_description(
        &self,
        cx: &CallContext,
        key_id: &str,
        description: String,
    ) -> KmsResult<Outcome<Arc<Key>>> {
        check_description(&description)?;
        self.change_key(cx, (key_id, "KeyId"), KeyOp::UpdateMetadata, |key| {
            Ok(key.with_meta(|m| m.description = description))
        })
        .await
    }

    /// EnableKey (`enabled`) or DisableKey.
    pub async fn set_key_enabled(&self, cx: &CallContext, key_id: &str, enabled: bool) -> KmsResult<Outcome<Arc<Key>>> {
        let state = if enabled { KeyState::Enabled } else { KeyState::Disabled };
        let now = cx.received_at;
        self.change_key(cx, (key_id, "KeyId"), KeyOp::EnableOrDisable, |key| {
            Ok(key.with_meta(|m| {
                m.state = state;
                if enabled {
                    catch_up_rotation(m, now);
                }
            }))
        })
        .await
    }

    /// Returns the key's id and the date it will be destroyed.
    pub async fn schedule_key_deletion(
        &self,
        cx: &CallContext,
        key_id: &str,
        pending_window_in_days: i32,
    ) -> KmsResult<Outcome<(String, SimTime)>> {
        if pending_window_in_days == 0 {
            return Err(KmsError::missing("PendingWindowInDays"));
        }
        if !PENDING_WINDOW_DAYS.contains(&pending_window_in_days) {
            return Err(KmsError::invalid_because("PendingWindowInDays", "It must be between 7 and 366."));
        }
        let now = cx.received_at;
        let delete_date = now.plus_days(i64::from(pending_window_in_days));
        let mut outcome = self
            .change_key(cx, (key_id, "KeyId"), KeyOp::ScheduleDeletion, |key| {
                if key.meta.deletion_protection {
                    return Err(KmsError::new(ErrorCode::StateModifiedFailed)
                        .because("The key has deletion protection enabled."));
                }
                let has_replicas = key.is_multi_region_primary()
                    && self.multi_region_configuration(&key.meta).is_some_and(|set| !set.replica_regions.is_empty());
                if has_replicas {
                    // AWS holds such a primary in PendingReplicaDeletion until its replicas are gone; kmsim
                    // does not model that state, so it asks for the replicas to go first.
                    return Err(KmsError::new(ErrorCode::StateModifiedFailed).because(
                        "The multi-Region primary key has replicas: delete them, or make one the primary, first.",
                    ));
                }
                Ok(key.with_meta(|m| {
                    m.state = KeyState::PendingDeletion;
                    m.delete_date = Some(delete_date);
                    m.pending_window_in_days = Some(pending_window_in_days);
                }))
            })
            .await?;
        cx.trail.response_element("DeleteDate", delete_date.to_rfc3339());
        let event = SystemEvent::key_deletion_scheduled(self.key_subject(&outcome.value.meta), delete_date, now);
        outcome.changes.push(Change::Emit(Arc::new(event)));
        Ok(outcome.map(|key| (key.meta.key_id.clone(), delete_date)))
    }

    /// Restores the key to Enabled (as Alibaba does), or to PendingImport when it has no material.
    /// Takes a key out of its deletion window: `enabled` or Disabled if it has material, else PendingImport.
    pub async fn cancel_key_deletion(
        &self,
        cx: &CallContext,
        key_id: &str,
        enabled: bool,
    ) -> KmsResult<Outcome<Arc<Key>>> {
        let now = cx.received_at;
        self.change_key(cx, (key_id, "KeyId"), KeyOp::CancelDeletion, |key| {
            let restored = match (key.has_material(), enabled) {
                (false, _) => KeyState::PendingImport,
                (true, true) => KeyState::Enabled,
                (true, false) => KeyState::Disabled,
            };
            Ok(key.with_meta(|m| {
                m.state = restored;
                m.delete_date = None;
                m.pending_window_in_days = None;
                catch_up_rotation(m, now);
            }))
        })
        .await
    }

    pub async fn set_deletion_protection(
        &self,
        cx: &CallContext,
        protected_resource_arn: &str,
        enable: bool,
        description: String,
    ) -> KmsResult<Outcome<Arc<Key>>> {
        check_description(&description)?;
        self.change_key(cx, (protected_resource_arn, "ProtectedResourceArn"), KeyOp::Inspect, |key| {
            Ok(key.with_meta(|m| {
                m.deletion_protection = enable;
                m.deletion_protection_description = if enable { description } else { String::new() };
            }))
        })
        .await
    }

    pub async fn create_alias(&self, cx: &CallContext, alias_name: &str, key_id: &str) -> KmsResult<Outcome<()>> {
        check_alias_name(alias_name)?;
        let alias_gate = self.alias_gates.lock(&format!("{}/{alias_name}", cx.region)).await;
        let slot = self.resolve(cx, key_id, "KeyId")?;
        let key_gate = slot.gate.clone().lock_owned().await;
        let key = slot.snapshot();
        cx.trail.key(&key.meta);
        key.allow(KeyOp::CreateAlias)?;
        if read_lock(&self.aliases).contains_key(&(cx.region.clone(), alias_name.to_owned())) {
            return Err(ErrorCode::AliasAlreadyExists.into());
        }
        let alias = self.alias_record(cx, alias_name, &key.meta.key_id);
        cx.trail.response_element("AliasArn", alias.arn());
        Ok(Outcome::write((), vec![Change::SaveAlias(alias)], vec![alias_gate, key_gate]))
    }

    /// Points an existing alias at another key; judged on the target key's state only.
    pub async fn update_alias(
        &self,
        cx: &CallContext,
        alias_name: &str,
        target_key_id: &str,
    ) -> KmsResult<Outcome<()>> {
        check_alias_name(alias_name)?;
        let alias_gate = self.alias_gates.lock(&format!("{}/{alias_name}", cx.region)).await;
        if !read_lock(&self.aliases).contains_key(&(cx.region.clone(), alias_name.to_owned())) {
            return Err(ErrorCode::AliasNotFound.into());
        }
        let slot = self.resolve(cx, target_key_id, "TargetKeyId")?;
        let key_gate = slot.gate.clone().lock_owned().await;
        let key = slot.snapshot();
        cx.trail.key(&key.meta);
        key.allow(KeyOp::BeAliasTarget)?;
        let alias = self.alias_record(cx, alias_name, &key.meta.key_id);
        cx.trail.response_element("AliasArn", alias.arn());
        Ok(Outcome::write((), vec![Change::SaveAlias(alias)], vec![alias_gate, key_gate]))
    }

    pub async fn delete_alias(&self, cx: &CallContext, alias_name: &str) -> KmsResult<Outcome<()>> {
        check_alias_name(alias_name)?;
        let alias_gate = self.alias_gates.lock(&format!("{}/{alias_name}", cx.region)).await;
        let alias = read_lock(&self.aliases)
            .get(&(cx.region.clone(), alias_name.to_owned()))
            .cloned()
            .ok_or(ErrorCode::AliasNotFound)?;
        if let Some(slot) = self.slot(&alias.region, &alias.key_id) {
            cx.trail.key(&slot.snapshot().meta);
        }
        cx.trail.response_element("AliasArn", alias.arn());
        let change = Change::RemoveAlias { region: alias.region, alias_name: alias.alias_name };
        Ok(Outcome::write((), vec![change], vec![alias_gate]))
    }

    /// Aliases of the caller's region, by name; only those of `key_id` when given.
    pub fn list_aliases(
        &self,
        cx: &CallContext,
        key_id: Option<&str>,
        page: Page,
    ) -> KmsResult<Outcome<Paged<AliasRecord>>> {
        let only = match key_id {
            Some(name) => Some(self.key_for_use(cx, name, "KeyId")?.meta.key_id.clone()),
            None => None,
        };
        let mut aliases: Vec<AliasRecord> = read_lock(&self.aliases)
            .values()
            .filter(|a| a.region == cx.region && only.as_ref().is_none_or(|id| &a.key_id == id))
            .cloned()
            .collect();
        aliases.sort_by(|a, b| a.alias_name.cmp(&b.alias_name));
        Ok(Outcome::read(page.slice(aliases)))
    }

    pub async fn tag_resource(
        &self,
        cx: &CallContext,
        key_id: &str,
        tags: Vec<(String, String)>,
    ) -> KmsResult<Outcome<Arc<Key>>> {
        if tags.is_empty() {
            return Err(KmsError::missing("Tags"));
        }
        self.change_key(cx, (key_id, "KeyId"), KeyOp::UpdateMetadata, |key| {
            let mut all = key.meta.tags.clone();
            add_tags(&mut all, &tags, "Tags")?;
            Ok(key.with_meta(|m| m.tags = all))
        })
        .await
    }

    pub async fn untag_resource(
        &self,
        cx: &CallContext,
        key_id: &str,
        tag_keys: Vec<String>,
    ) -> KmsResult<Outcome<Arc<Key>>> {
        if tag_keys.is_empty() {
            return Err(KmsError::missing("TagKeys"));
        }
        self.change_key(cx, (key_id, "KeyId"), KeyOp::UpdateMetadata, |key| {
            Ok(key.with_meta(|m| {
                for tag_key in &tag_keys {
                    m.tags.remove(tag_key);
                }
            }))
        })
        .await
    }

    pub fn list_resource_tags(&self, cx: &CallContext, key_id: &str) -> KmsResult<Outcome<BTreeMap<String, String>>> {
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        Ok(Outcome::read(key.meta.tags.clone()))
    }

    /// The one path for changing a key's metadata: resolve, take the key's
    /// gate, apply the state table for `op`, then let `change` build the next
    /// snapshot from the current one.
    pub(super) async fn change_key(
        &self,
        cx: &CallContext,
        (key_name, param): (&str, &str),
        op: KeyOp,
        change: impl FnOnce(&Key) -> KmsResult<Key>,
    ) -> KmsResult<Outcome<Arc<Key>>> {
        let slot = self.resolve(cx, key_name, param)?;
        let gate = slot.gate.clone().lock_owned().await;
        let key = slot.snapshot();
        cx.trail.key(&key.meta);
        key.allow(op)?;
        key.managed_here()?;
        let next = Arc::new(change(&key)?);
        Ok(Outcome::write(next.clone(), vec![Change::SaveKey { key: next, new_versions: Vec::new() }], vec![gate]))
    }

    fn alias_record(&self, cx: &CallContext, alias_name: &str, key_id: &str) -> AliasRecord {
        AliasRecord {
            region: cx.region.clone(),
            alias_name: alias_name.to_owned(),
            key_id: key_id.to_owned(),
            account_id: self.account_id.clone(),
        }
    }
}

/// A rotation that fell due while the key could not rotate (disabled, or
/// pending deletion) happens as soon as it can again: now.
fn catch_up_rotation(meta: &mut KeyMeta, now: SimTime) {
    if meta.rotation.automatic == AutomaticRotation::Enabled {
        meta.rotation.next_rotation_date = meta.rotation.next_rotation_date.map(|due| due.max(now));
    }
}

/// An enabled policy rotating every `interval` (default 365 days), first due one interval from `now`.
fn automatic_rotation(interval: &str, now: SimTime) -> KmsResult<RotationPolicy> {
    let interval_secs =
        if interval.is_empty() { *ROTATION_INTERVAL_SECS.end() } else { parse_rotation_interval(interval)? };
    Ok(RotationPolicy {
        automatic: AutomaticRotation::Enabled,
        interval_secs: Some(interval_secs),
        last_rotation_date: None,
        next_rotation_date: Some(now.plus_secs(interval_secs)),
    })
}

pub(super) fn or_default<T>(text: &str, default: T, parse: fn(&str) -> KmsResult<T>) -> KmsResult<T> {
    if text.is_empty() { Ok(default) } else { parse(text) }
}

pub(super) fn check_description(description: &str) -> KmsResult<()> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(KmsError::invalid_because("Description", "It can be at most 8192 characters."));
    }
    Ok(())
}

/// `alias/` followed by 1 to 255 characters of letters, digits, `_`, `-`, `/`
/// and `:`; names under `alias/acs` are reserved.
pub(super) fn check_alias_name(alias_name: &str) -> KmsResult<()> {
    if alias_name.is_empty() {
        return Err(KmsError::missing("AliasName"));
    }
    let Some(name) = alias_name.strip_prefix("alias/") else {
        return Err(KmsError::invalid_because("AliasName", "It must start with \"alias/\"."));
    };
    let valid_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || "_-/:".contains(c));
    if name.is_empty() || name.len() > 255 || !valid_chars || name.starts_with("acs") {
        return Err(KmsError::invalid("AliasName"));
    }
    Ok(())
}

/// Adds `added` to a resource's `tags`, refusing a malformed tag or a 21st, naming `param`.
pub(super) fn add_tags(tags: &mut BTreeMap<String, String>, added: &[(String, String)], param: &str) -> KmsResult<()> {
    for (tag_key, tag_value) in added {
        check_tag(tag_key, tag_value)?;
    }
    tags.extend(added.iter().cloned());
    if tags.len() > MAX_TAGS_PER_RESOURCE {
        return Err(KmsError::invalid_because(param, "A resource can have at most 20 tags."));
    }
    Ok(())
}

pub(super) fn check_tag(tag_key: &str, tag_value: &str) -> KmsResult<()> {
    let reserved = ["aliyun", "acs:"].iter().any(|prefix| tag_key.to_ascii_lowercase().starts_with(prefix));
    if tag_key.is_empty() || tag_key.chars().count() > 128 || reserved {
        return Err(KmsError::invalid("TagKey"));
    }
    if tag_value.chars().count() > 128 {
        return Err(KmsError::invalid("TagValue"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names_follow_the_rules() {
        assert!(check_alias_name("alias/payments-prod_1").is_ok());
        assert_eq!(check_alias_name("").unwrap_err().code, ErrorCode::MissingParameter);
        for bad in ["payments", "alias/", "alias/acs-reserved", "alias/sp ace", &format!("alias/{}", "a".repeat(256))] {
            assert_eq!(check_alias_name(bad).unwrap_err().code, ErrorCode::InvalidParameter, "{bad}");
        }
    }

    #[test]
    fn tags_follow_the_rules() {
        assert!(check_tag("team", "payments").is_ok());
        assert!(check_tag("", "x").is_err());
        assert!(check_tag("acs:owner", "x").is_err());
        assert!(check_tag("Aliyun-tag", "x").is_err());
        assert!(check_tag("k", &"v".repeat(129)).is_err());
    }
}
