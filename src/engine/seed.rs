//! Applying a seed: what a [`SeedDoc`] describes becomes one set of changes,
//! committed together, so a seed is applied whole or not at all.
//!
//! A seed creates; it never alters or removes what exists. An entry that
//! already exists as the seed describes it is `unchanged`; one that exists
//! but contradicts the seed (another spec, other material, an alias pointing
//! elsewhere, another AccessKey secret, another policy document) refuses the
//! whole seed, naming the line. Applying a seed twice therefore changes
//! nothing, and a restart with `--seed` leaves what tests changed alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use sha2::Digest;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::access::{AccessKey, MAX_ACCESS_KEYS_PER_USER, Policy, User};
use super::error::KmsError;
use super::instances::{Instance, MAX_SPEC, is_region_id};
use super::key::{ImportedMaterial, Key, KeyState, KeyUsage, KeyVersion, Origin, SpecKind};
use super::keys::{
    AliasRecord, CreateKeyInput, MAX_TAGS_PER_RESOURCE, PENDING_WINDOW_DAYS, check_alias_name, check_tag,
};
use super::secrets::{
    CURRENT, PREVIOUS, SecretDataType, SecretType, SecretVersion, check_label, parse_extended_config, rotation_policy,
};
use super::{AccessEntity, Change, Engine, Gate, Outcome, Secret, read_lock};
use crate::clock::SimTime;
use crate::context::CallContext;
use crate::seed::{KeySeed, SecretSeed, SeedDoc, SeedError, Spanned, line_of};

/// What applying a seed did (or, on a dry run, would do), entry by entry.
#[derive(Debug, Default)]
pub struct SeedReport {
    pub items: Vec<SeedItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedItem {
    /// key, key_version, alias, instance, secret, policy, user, access_key, policy_attachment, fault.
    pub kind: &'static str,
    pub id: String,
    /// Empty for account-wide items.
    pub region: String,
    pub created: bool,
    pub line: u64,
}

impl SeedReport {
    pub fn push(&mut self, kind: &'static str, id: &str, region: &str, created: bool, line: u64) {
        self.items.push(SeedItem { kind, id: id.to_owned(), region: region.to_owned(), created, line });
    }

    pub fn created(&self) -> usize {
        self.items.iter().filter(|i| i.created).count()
    }
}

type SeedResult<T> = Result<T, SeedError>;

/// An engine check's refusal, placed at the seed line it came from.
fn at<T>(line: u64, result: Result<T, KmsError>) -> SeedResult<T> {
    result.map_err(|e| SeedError::at(line, e.message))
}

fn text<T: AsRef<str>>(value: &Option<Spanned<T>>) -> &str {
    value.as_ref().map_or("", |v| v.value.as_ref())
}

fn line_or<T>(value: &Option<Spanned<T>>, fallback: u64) -> u64 {
    value.as_ref().map_or(fallback, line_of)
}

/// The work in progress: changes so far, and what the seed has made that later entries may name.
struct Plan<'a> {
    engine: &'a Engine,
    /// Whether the seed's changes follow a reset's in one commit, so what the store holds now is gone.
    over_empty: bool,
    now: SimTime,
    default_region: String,
    changes: Vec<Change>,
    report: SeedReport,
    /// Keys by (region, key id): the seed's new keys and existing keys it named.
    keys: HashMap<(String, String), Arc<Key>>,
    /// (region, alias name) to key id, for aliases the seed creates.
    aliases: HashMap<(String, String), String>,
    instances: HashMap<String, Arc<Instance>>,
    policies: BTreeSet<String>,
}

impl Engine {
    /// Checks a whole seed against the current state and builds the changes that
    /// create what is missing. Nothing is changed until the outcome is committed;
    /// any error names the line and leaves everything as it was.
    ///
    /// With `over_empty`, the changes first empty kmsim as [`Engine::reset`] does and the seed
    /// is planned over nothing: a reset to the seed, in one commit.
    pub async fn apply_seed(
        &self,
        cx: &CallContext,
        doc: &SeedDoc,
        over_empty: bool,
    ) -> SeedResult<Outcome<SeedReport>> {
        let mut gates: Vec<Gate> = vec![self.seed_gate.clone().lock_owned().await];
        // Aliases and secrets are gated by name like their own operations; names
        // are taken in order, so two seeds cannot wait on each other.
        let mut names: Vec<(bool, String)> = Vec::new();
        for key in &doc.keys {
            let region = text(&key.value.region).to_owned();
            for alias in &key.value.aliases {
                names.push((true, format!("{}/{}", or_region(&region, cx), alias.value)));
            }
        }
        for secret in &doc.secrets {
            let region = or_region(text(&secret.value.region), cx);
            if secret.value.key.is_none() {
                names.push((true, format!("{region}/{}", super::secrets::DEFAULT_KEY_ALIAS)));
            }
            names.push((false, format!("{region}/{}", secret.value.name.value)));
        }
        names.sort();
        names.dedup();
        for (alias, name) in names {
            gates.push(if alias { self.alias_gates.lock(&name).await } else { self.secret_gates.lock(&name).await });
        }
        gates.push(self.access_gate.clone().lock_owned().await);

        let mut plan = Plan {
            engine: self,
            over_empty,
            now: cx.received_at,
            default_region: cx.region.clone(),
            changes: if over_empty { self.emptying_changes().1 } else { Vec::new() },
            report: SeedReport::default(),
            keys: HashMap::new(),
            aliases: HashMap::new(),
            instances: HashMap::new(),
            policies: BTreeSet::new(),
        };
        plan.instances(doc)?;
        plan.keys(doc)?;
        plan.secrets(doc)?;
        plan.access(doc)?;
        Ok(Outcome::write(plan.report, plan.changes, gates))
    }
}

fn or_region(region: &str, cx: &CallContext) -> String {
    if region.is_empty() { cx.region.clone() } else { region.to_owned() }
}

impl Plan<'_> {
    fn region(&self, given: &Option<Spanned<String>>) -> SeedResult<String> {
        match given {
            None => Ok(self.default_region.clone()),
            Some(region) if is_region_id(&region.value) => Ok(region.value.clone()),
            Some(region) => Err(SeedError::at(line_of(region), "region is not a region id such as cn-hangzhou")),
        }
    }

    fn instances(&mut self, doc: &SeedDoc) -> SeedResult<()> {
        for entry in &doc.instances {
            let seed = &entry.value;
            let line = line_of(&seed.id);
            let id = &seed.id.value;
            if !id.starts_with("kst-") || id.len() > 64 || !id[4..].bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(SeedError::at(line, "an instance id is `kst-` followed by letters and digits"));
            }
            if self.instances.contains_key(id) {
                return Err(SeedError::at(line, format!("instance {id} is seeded twice")));
            }
            let region = self.region(&seed.region)?;
            let spec = seed.spec.as_ref().map_or(1000, |s| s.value);
            let spec = u32::try_from(spec)
                .ok()
                .filter(|s| (1..=MAX_SPEC).contains(s))
                .ok_or_else(|| SeedError::at(line_or(&seed.spec, line), format!("spec is 1 to {MAX_SPEC}")))?;
            let expires = match &seed.expire_time {
                None => self.now.plus_days(365),
                Some(at) => SimTime::parse_rfc3339(&at.value)
                    .filter(|t| *t > self.now)
                    .ok_or_else(|| SeedError::at(line_of(at), "expire_time is an RFC 3339 time after now"))?,
            };
            let instance = match self.engine.instance(id) {
                Some(existing) if existing.region != region => {
                    return Err(SeedError::at(line, format!("instance {id} exists in {}", existing.region)));
                }
                Some(existing) => {
                    self.report.push("instance", id, &region, false, line);
                    existing
                }
                None => {
                    let instance = Arc::new(Instance {
                        instance_id: id.clone(),
                        instance_name: seed.name.as_ref().map_or_else(|| id.clone(), |n| n.value.clone()),
                        region: region.clone(),
                        account_id: self.engine.account_id.clone(),
                        spec,
                        created: self.now,
                        expires,
                        expired: false,
                    });
                    self.changes.push(Change::SaveInstance(instance.clone()));
                    self.report.push("instance", id, &region, true, line);
                    instance
                }
            };
            self.instances.insert(id.clone(), instance);
        }
        Ok(())
    }

    fn keys(&mut self, doc: &SeedDoc) -> SeedResult<()> {
        for entry in &doc.keys {
            let seed = &entry.value;
            let line = line_of(&seed.id);
            let id = &seed.id.value;
            let valid_id =
                !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid_id {
                return Err(SeedError::at(line, "a key id is 1 to 64 letters, digits and '-', e.g. a UUID"));
            }
            let region = self.region(&seed.region)?;
            if self.keys.contains_key(&(region.clone(), id.clone())) {
                return Err(SeedError::at(line, format!("key {id} is seeded twice")));
            }
            let key = self.key(seed, &region, line)?;
            self.keys.insert((region.clone(), id.clone()), key.clone());
            self.aliases_of(seed, &key)?;
        }
        Ok(())
    }

    /// The seeded key: a new one, or the existing one when it matches.
    fn key(&mut self, seed: &KeySeed, region: &str, line: u64) -> SeedResult<Arc<Key>> {
        let id = &seed.id.value;
        let instance = match &seed.instance {
            None => None,
            Some(name) => {
                let found = self.instances.get(&name.value).cloned().or_else(|| self.engine.instance(&name.value));
                match found {
                    Some(instance) if instance.region == region => Some(instance),
                    _ => {
                        return Err(SeedError::at(
                            line_of(name),
                            format!("no KMS instance {} in {region}", name.value),
                        ));
                    }
                }
            }
        };
        let input = CreateKeyInput {
            key_spec: text(&seed.spec).to_owned(),
            key_usage: text(&seed.usage).to_owned(),
            origin: text(&seed.origin).to_owned(),
            description: text(&seed.description).to_owned(),
            protection_level: text(&seed.protection_level).to_owned(),
            enable_automatic_rotation: seed.rotation_interval.is_some(),
            rotation_interval: text(&seed.rotation_interval).to_owned(),
            exportable: seed.exportable,
            dkms_instance_id: String::new(),
            policy: String::new(),
            multi_region: false,
            tags: Vec::new(),
        };
        // Checked with no versions first, so that spec errors come before material errors.
        let field_line = |e: &KmsError| {
            let named = |param: &str| e.message.contains(&format!("\"{param}\""));
            if named("KeySpec") {
                line_or(&seed.spec, line)
            } else if named("KeyUsage") {
                line_or(&seed.usage, line)
            } else if named("Origin") {
                line_or(&seed.origin, line)
            } else if named("ProtectionLevel") {
                line_or(&seed.protection_level, line)
            } else if named("RotationInterval") || named("EnableAutomaticRotation") {
                line_or(&seed.rotation_interval, line)
            } else {
                line
            }
        };
        let shape = self
            .engine
            .new_key(region, self.now, input.clone(), instance.as_deref(), id.clone(), Some(Vec::new()))
            .map_err(|e| SeedError::at(field_line(&e), e.message.clone()))?;
        let versions = self.versions(seed, &shape)?;
        let state = self.state(seed, &shape, &versions, line)?;

        if let Some(existing) = self.stored_key(region, id) {
            self.check_existing(seed, &existing, &shape, &versions, line)?;
            self.report.push("key", id, region, false, line);
            return Ok(existing);
        }

        let mut key = self
            .engine
            .new_key(region, self.now, input, instance.as_deref(), id.clone(), Some(versions.clone()))
            .map_err(|e| SeedError::at(field_line(&e), e.message.clone()))?;
        key.meta.state = state;
        if state == KeyState::PendingDeletion {
            let days = seed.pending_window_days.as_ref().map_or(30, |d| d.value);
            key.meta.delete_date = Some(self.now.plus_days(i64::from(days)));
            key.meta.pending_window_in_days = Some(days);
        }
        if key.meta.origin == Origin::External
            && let Some(primary) = versions.last()
        {
            let sha256 = sha2::Sha256::digest(&primary.material[..]).iter().map(|b| format!("{b:02x}")).collect();
            key.meta.import = Some(ImportedMaterial { sha256, expires: None });
        }
        if let Some(tags) = &seed.tags {
            if tags.value.len() > MAX_TAGS_PER_RESOURCE {
                return Err(SeedError::at(line_of(tags), "a key can have at most 20 tags"));
            }
            for (tag_key, tag_value) in &tags.value {
                at(line_of(tags), check_tag(tag_key, tag_value))?;
            }
            key.meta.tags = tags.value.clone();
        }
        let key = Arc::new(key);
        self.changes.push(Change::SaveKey { key: key.clone(), new_versions: key.versions.clone() });
        self.report.push("key", id, region, true, line);
        for version in &key.versions {
            self.report.push("key_version", &version.version_id.to_string(), region, true, line);
        }
        Ok(key)
    }

    /// The versions a seed gives, with their material read and checked against the spec.
    fn versions(&self, seed: &KeySeed, shape: &Key) -> SeedResult<Vec<Arc<KeyVersion>>> {
        let spec = shape.meta.spec;
        let external = shape.meta.origin == Origin::External;
        if seed.versions.is_empty() {
            return Ok(match external {
                true => Vec::new(),
                false => vec![Arc::new(KeyVersion::new(
                    derived_version_id(&shape.meta.key_id, 0),
                    self.now,
                    spec.generate_material(),
                ))],
            });
        }
        if external && seed.versions.len() > 1 {
            return Err(SeedError::at(
                line_of(&seed.versions[1]),
                "an EXTERNAL key has one version of imported material",
            ));
        }
        let mut versions: Vec<Arc<KeyVersion>> = Vec::new();
        for (position, entry) in seed.versions.iter().enumerate() {
            let version = &entry.value;
            let vline = line_of(entry);
            let version_id = match &version.id {
                None => derived_version_id(&shape.meta.key_id, position),
                Some(id) => {
                    Uuid::parse_str(&id.value).map_err(|_| SeedError::at(line_of(id), "a version id is a UUID"))?
                }
            };
            if versions.iter().any(|v| v.version_id == version_id) {
                return Err(SeedError::at(vline, format!("version {version_id} is seeded twice")));
            }
            let given = [&version.material_base64, &version.material_hex, &version.private_key_pem];
            let material = match given.iter().filter(|m| m.is_some()).count() {
                0 if external => {
                    return Err(SeedError::at(vline, "an EXTERNAL key's version needs its material"));
                }
                0 => spec.generate_material(),
                1 => material(spec.kind(), version, vline)?,
                _ => {
                    return Err(SeedError::at(vline, "give one of material_base64, material_hex and private_key_pem"));
                }
            };
            versions.push(Arc::new(KeyVersion::new(version_id, self.now, material)));
        }
        Ok(versions)
    }

    fn state(&self, seed: &KeySeed, shape: &Key, versions: &[Arc<KeyVersion>], line: u64) -> SeedResult<KeyState> {
        let state_line = line_or(&seed.state, line);
        let state = match &seed.state {
            None if versions.is_empty() => KeyState::PendingImport,
            None => KeyState::Enabled,
            Some(state) => at(state_line, KeyState::parse(&state.value))?,
        };
        let has_material = !versions.is_empty();
        match state {
            KeyState::Enabled | KeyState::Disabled if !has_material => {
                Err(SeedError::at(state_line, format!("a key without material is PendingImport, not {state}")))
            }
            KeyState::PendingImport if has_material || shape.meta.origin != Origin::External => {
                Err(SeedError::at(state_line, "only an EXTERNAL key without material is PendingImport"))
            }
            KeyState::Unavailable => {
                Err(SeedError::at(state_line, "Unavailable comes from an expired instance; seed the instance expired"))
            }
            _ => Ok(()),
        }?;
        match &seed.pending_window_days {
            Some(days) if state != KeyState::PendingDeletion => {
                Err(SeedError::at(line_of(days), "pending_window_days goes with state PendingDeletion"))
            }
            Some(days) if !PENDING_WINDOW_DAYS.contains(&days.value) => {
                Err(SeedError::at(line_of(days), "pending_window_days is 7 to 366"))
            }
            _ => Ok(state),
        }
    }

    /// An existing key matches the seed when it has the seed's spec, usage and
    /// origin and every version the seed gives, with the same material.
    fn check_existing(
        &self,
        seed: &KeySeed,
        existing: &Key,
        shape: &Key,
        versions: &[Arc<KeyVersion>],
        line: u64,
    ) -> SeedResult<()> {
        let (have, want) = (&existing.meta, &shape.meta);
        if (have.spec, have.usage, have.origin) != (want.spec, want.usage, want.origin) {
            return Err(SeedError::at(
                line,
                format!(
                    "key {} exists as {} {} {}, not as the seed's {} {} {}",
                    have.key_id, have.spec, have.usage, have.origin, want.spec, want.usage, want.origin
                ),
            ));
        }
        for (entry, seeded) in seed.versions.iter().zip(versions) {
            let given_material = entry.value.material_base64.is_some()
                || entry.value.material_hex.is_some()
                || entry.value.private_key_pem.is_some();
            match existing.version(seeded.version_id) {
                None => {
                    return Err(SeedError::at(
                        line_of(entry),
                        format!("key {} exists without version {}", have.key_id, seeded.version_id),
                    ));
                }
                Some(version) if given_material && version.material[..] != seeded.material[..] => {
                    return Err(SeedError::at(
                        line_of(entry),
                        format!("key {} version {} exists with other material", have.key_id, seeded.version_id),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn aliases_of(&mut self, seed: &KeySeed, key: &Key) -> SeedResult<()> {
        let region = key.meta.region.clone();
        for alias in &seed.aliases {
            let aline = line_of(alias);
            at(aline, check_alias_name(&alias.value))?;
            let addr = (region.clone(), alias.value.clone());
            if self.aliases.contains_key(&addr) {
                return Err(SeedError::at(aline, format!("{} is seeded twice", alias.value)));
            }
            let existing = self.stored_alias(&addr.0, &addr.1);
            match existing {
                Some(target) if target == key.meta.key_id => {
                    self.report.push("alias", &alias.value, &region, false, aline);
                }
                Some(target) => {
                    return Err(SeedError::at(aline, format!("{} exists and points to key {target}", alias.value)));
                }
                None => {
                    self.changes.push(Change::SaveAlias(AliasRecord {
                        region: region.clone(),
                        alias_name: alias.value.clone(),
                        key_id: key.meta.key_id.clone(),
                        account_id: self.engine.account_id.clone(),
                    }));
                    self.report.push("alias", &alias.value, &region, true, aline);
                }
            }
            self.aliases.insert(addr, key.meta.key_id.clone());
        }
        Ok(())
    }

    /// A key a secret names (id, ARN or alias), from the seed or the store.
    fn find_key(&self, region: &str, name: &str) -> Option<Arc<Key>> {
        let name = match name.strip_prefix(&format!("acs:kms:{region}:{}:", self.engine.account_id)) {
            Some(resource) => resource.strip_prefix("key/").unwrap_or(resource),
            None => name,
        };
        let key_id = match name.starts_with("alias/") {
            true => self
                .aliases
                .get(&(region.to_owned(), name.to_owned()))
                .cloned()
                .or_else(|| self.stored_alias(region, name))?,
            false => name.to_owned(),
        };
        let addr = (region.to_owned(), key_id);
        self.keys.get(&addr).cloned().or_else(|| self.stored_key(&addr.0, &addr.1))
    }

    /// A key the store holds, unless the seed lands on a kmsim emptied in the same commit.
    fn stored_key(&self, region: &str, key_id: &str) -> Option<Arc<Key>> {
        if self.over_empty {
            return None;
        }
        self.engine.slot(region, key_id).map(|slot| slot.snapshot())
    }

    /// The key an alias the store holds names, likewise.
    fn stored_alias(&self, region: &str, alias_name: &str) -> Option<String> {
        if self.over_empty {
            return None;
        }
        read_lock(&self.engine.aliases).get(&(region.to_owned(), alias_name.to_owned())).map(|a| a.key_id.clone())
    }

    fn secrets(&mut self, doc: &SeedDoc) -> SeedResult<()> {
        let mut seen = BTreeSet::new();
        for entry in &doc.secrets {
            let seed = &entry.value;
            let line = line_of(&seed.name);
            let region = self.region(&seed.region)?;
            let name = at(line, super::secrets::check_name(&seed.name.value))?;
            if !seen.insert((region.clone(), name.clone())) {
                return Err(SeedError::at(line, format!("secret {name} is seeded twice")));
            }
            // Checked in full even when the secret exists, so a bad entry is never waved through.
            let secret = self.secret(seed, &region, &name, line)?;
            if !self.over_empty && self.engine.secret(&region, &name).is_some() {
                self.report.push("secret", &name, &region, false, line);
                continue;
            }
            let (secret, key_changes) = secret;
            self.changes.extend(key_changes);
            self.changes.push(Change::SaveSecret(Arc::new(secret)));
            self.report.push("secret", &name, &region, true, line);
        }
        Ok(())
    }

    fn secret(&mut self, seed: &SecretSeed, region: &str, name: &str, line: u64) -> SeedResult<(Secret, Vec<Change>)> {
        let secret_type = match &seed.secret_type {
            None => SecretType::Generic,
            Some(t) => at(line_of(t), SecretType::parse(&t.value))?,
        };
        let extended_config = match &seed.extended_config {
            None => None,
            Some(config) => at(line_of(config), parse_extended_config(&config.value.to_string()))?,
        };
        let named_sub_type = extended_config.as_ref().and_then(|c| c.get("SecretSubType")).and_then(Value::as_str);
        let sub_type =
            at(line_or(&seed.extended_config, line), secret_type.sub_type(named_sub_type.unwrap_or_default()))?;
        let description = text(&seed.description).to_owned();
        at(line_or(&seed.description, line), super::keys::check_description(&description))?;
        let rotation = at(
            line_or(&seed.rotation_interval, line),
            rotation_policy(secret_type, seed.rotation_interval.is_some(), text(&seed.rotation_interval), self.now),
        )?;
        let mut tags = BTreeMap::new();
        if let Some(given) = &seed.tags {
            for (tag_key, tag_value) in &given.value {
                at(line_of(given), check_tag(tag_key, tag_value))?;
            }
            tags = given.value.clone();
        }
        let values = secret_values(seed, line)?;
        let data_type = values[0].data_type;

        // The key: named (from the seed or the store), or the region's default secrets key.
        let mut key_changes = Vec::new();
        let key = match &seed.key {
            Some(named) => {
                let key = self
                    .find_key(region, &named.value)
                    .ok_or_else(|| SeedError::at(line_of(named), format!("no key {} in {region}", named.value)))?;
                let symmetric = matches!(key.meta.spec.kind(), SpecKind::Symmetric(_));
                if !symmetric || key.meta.usage != KeyUsage::EncryptDecrypt || !key.has_material() {
                    return Err(SeedError::at(
                        line_of(named),
                        "secrets are sealed under a symmetric ENCRYPT/DECRYPT key with material",
                    ));
                }
                key
            }
            None => match self.find_key(region, super::secrets::DEFAULT_KEY_ALIAS) {
                Some(key) => key,
                None => {
                    let key_id = crate::engine::crypto::new_uuid().to_string();
                    let input = CreateKeyInput {
                        description: super::secrets::DEFAULT_KEY_DESCRIPTION.into(),
                        ..CreateKeyInput::default()
                    };
                    let key = Arc::new(at(line, self.engine.new_key(region, self.now, input, None, key_id, None))?);
                    key_changes.push(Change::SaveKey { key: key.clone(), new_versions: key.versions.clone() });
                    let alias = AliasRecord {
                        region: region.to_owned(),
                        alias_name: super::secrets::DEFAULT_KEY_ALIAS.to_owned(),
                        key_id: key.meta.key_id.clone(),
                        account_id: self.engine.account_id.clone(),
                    };
                    key_changes.push(Change::SaveAlias(alias.clone()));
                    self.report.push("key", &key.meta.key_id, region, true, line);
                    self.aliases.insert((region.to_owned(), alias.alias_name.clone()), key.meta.key_id.clone());
                    self.keys.insert((region.to_owned(), key.meta.key_id.clone()), key.clone());
                    key
                }
            },
        };
        // A seeded key may be disabled or pending deletion: the fixture is a value
        // sealed while the key could still seal, so seal as if it were enabled.
        let sealing = key.with_meta(|m| m.state = KeyState::Enabled);
        let sealing_cx = CallContext::internal(region, &self.engine.account_id, self.now);
        let mut versions = Vec::new();
        for value in &values {
            let sealed =
                at(value.line, self.engine.seal_value(&sealing_cx, &sealing, name, &value.version_id, &value.data))?;
            versions.push(SecretVersion {
                version_id: value.version_id.clone(),
                created: self.now,
                stages: value.stages.clone(),
                sealed,
            });
        }
        let secret = Secret {
            name: name.to_owned(),
            region: region.to_owned(),
            account_id: self.engine.account_id.clone(),
            secret_type,
            sub_type: sub_type.to_owned(),
            data_type,
            description,
            encryption_key_id: key.meta.key_id.clone(),
            extended_config,
            tags,
            instance_id: key.meta.instance_id.clone(),
            created: self.now,
            updated: self.now,
            planned_delete: None,
            policy: None,
            rotation,
            versions,
        };
        Ok((secret, key_changes))
    }

    fn access(&mut self, doc: &SeedDoc) -> SeedResult<()> {
        let book_policies: BTreeMap<String, Arc<Policy>> = read_lock(&self.engine.access).policies.clone();
        for entry in &doc.policies {
            let seed = &entry.value;
            let line = line_of(&seed.name);
            let name = &seed.name.value;
            at(line, super::access::check_name(name, "PolicyName", 128))?;
            if !self.policies.insert(name.clone()) {
                return Err(SeedError::at(line, format!("policy {name} is seeded twice")));
            }
            let document = match &seed.document.value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            at(line_of(&seed.document), super::access::parse_identity_policy(&document))?;
            match book_policies.get(name) {
                Some(existing) => {
                    let same = serde_json::from_str::<Value>(&existing.document).ok()
                        == serde_json::from_str::<Value>(&document).ok();
                    if !same {
                        return Err(SeedError::at(line, format!("policy {name} exists with another document")));
                    }
                    self.report.push("policy", name, "", false, line);
                }
                None => {
                    let policy = Policy {
                        policy_name: name.clone(),
                        description: seed.description.clone(),
                        document,
                        created: self.now,
                        updated: self.now,
                        permission: None,
                    };
                    self.changes.push(Change::SaveAccess(AccessEntity::Policy(Arc::new(policy))));
                    self.report.push("policy", name, "", true, line);
                }
            }
        }

        let (users, access_keys) = {
            let book = read_lock(&self.engine.access);
            (book.users.clone(), book.access_keys.clone())
        };
        let mut seeded_keys = BTreeSet::new();
        for entry in &doc.users {
            let seed = &entry.value;
            let line = line_of(&seed.name);
            let name = &seed.name.value;
            at(line, super::access::check_name(name, "UserName", 64))?;
            let mut user: User = match users.get(name) {
                Some(existing) => {
                    self.report.push("user", name, "", false, line);
                    (**existing).clone()
                }
                None => {
                    self.report.push("user", name, "", true, line);
                    self.engine.new_user(name, self.now)
                }
            };
            let before = user.clone();
            for policy in &seed.policies {
                let pline = line_of(policy);
                if !self.policies.contains(&policy.value) && !book_policies.contains_key(&policy.value) {
                    return Err(SeedError::at(pline, format!("no policy {}", policy.value)));
                }
                let attached = user.policies.contains(&policy.value);
                if !attached {
                    user.policies.push(policy.value.clone());
                }
                self.report.push("policy_attachment", &format!("{}:{name}", policy.value), "", !attached, pline);
            }
            let mut owned = access_keys.values().filter(|k| k.user_name == *name).count();
            for key_entry in &seed.access_keys {
                let key = &key_entry.value;
                let kline = line_of(&key.id);
                let id = &key.id.value;
                if id.len() < 8 || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(SeedError::at(kline, "an AccessKey id is 8 to 64 letters and digits, e.g. LTAI…"));
                }
                let secret = &key.secret.value;
                if secret.len() < 16 || secret.len() > 128 || secret.chars().any(|c| c.is_control() || c == ' ') {
                    return Err(SeedError::at(line_of(&key.secret), "an AccessKey secret is 16 to 128 characters"));
                }
                if !seeded_keys.insert(id.clone()) {
                    return Err(SeedError::at(kline, format!("AccessKey {id} is seeded twice")));
                }
                match access_keys.get(id) {
                    Some(existing) if existing.user_name != *name || existing.secret.expose() != secret => {
                        return Err(SeedError::at(kline, format!("AccessKey {id} exists with another user or secret")));
                    }
                    Some(_) => self.report.push("access_key", id, "", false, kline),
                    None => {
                        owned += 1;
                        if owned > MAX_ACCESS_KEYS_PER_USER {
                            return Err(SeedError::at(kline, "a user has at most 2 AccessKeys"));
                        }
                        let access_key = AccessKey {
                            access_key_id: id.clone(),
                            secret: super::access::Secret::new(secret.clone()),
                            user_name: name.clone(),
                            active: key.active.unwrap_or(true),
                            created: self.now,
                        };
                        self.changes.push(Change::SaveAccess(AccessEntity::AccessKey(Arc::new(access_key))));
                        self.report.push("access_key", id, "", true, kline);
                    }
                }
            }
            if !users.contains_key(name) || user != before {
                self.changes.push(Change::SaveAccess(AccessEntity::User(Arc::new(user))));
            }
        }
        Ok(())
    }
}

/// A version id that is the same on every apply of the same seed, so that an
/// unnamed version is recognised the second time and ciphertexts made outside
/// kmsim can name it: a UUID (v4 layout) from SHA-256 of the key id and position.
pub fn derived_version_id(key_id: &str, position: usize) -> Uuid {
    let digest = sha2::Sha256::digest(format!("kmsim seed version\0{key_id}\0{position}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Material given in the seed, decoded and checked against the spec.
fn material(kind: SpecKind, version: &crate::seed::VersionSeed, line: u64) -> SeedResult<Zeroizing<Vec<u8>>> {
    if let Some(pem) = &version.private_key_pem {
        let SpecKind::Asymmetric(asymmetric) = kind else {
            return Err(SeedError::at(line_of(pem), "private_key_pem is for asymmetric specs; use material_base64"));
        };
        return asymmetric.pkcs8_from_pem(&pem.value).map_err(|reason| SeedError::at(line_of(pem), reason));
    }
    let (bytes, mline) = match (&version.material_base64, &version.material_hex) {
        (Some(b64), _) => (
            BASE64
                .decode(b64.value.trim())
                .map_err(|_| SeedError::at(line_of(b64), "material_base64 is not base64"))?,
            line_of(b64),
        ),
        (_, Some(hex)) => (
            decode_hex(hex.value.trim()).ok_or_else(|| SeedError::at(line_of(hex), "material_hex is not hex"))?,
            line_of(hex),
        ),
        _ => return Err(SeedError::at(line, "no material given")),
    };
    let bytes = Zeroizing::new(bytes);
    let expected = match kind {
        SpecKind::Symmetric(cipher) => cipher.key_len(),
        SpecKind::Hmac(hash) => hash.output_len(),
        SpecKind::Asymmetric(_) => {
            return Err(SeedError::at(mline, "an asymmetric key's material is a private_key_pem"));
        }
    };
    if bytes.len() != expected {
        return Err(SeedError::at(mline, format!("the material is {} bytes; the spec takes {expected}", bytes.len())));
    }
    Ok(bytes)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// One secret version as the seed gives it.
struct SeededValue {
    version_id: String,
    data: Zeroizing<Vec<u8>>,
    data_type: SecretDataType,
    stages: BTreeSet<String>,
    line: u64,
}

/// The secret's versions, oldest first, with stages: as given, or ACSCurrent on
/// the last and ACSPrevious on the one before.
fn secret_values(seed: &SecretSeed, line: u64) -> SeedResult<Vec<SeededValue>> {
    let mut values = Vec::new();
    match (&seed.value, seed.versions.is_empty()) {
        (Some(_), false) => return Err(SeedError::at(line, "give value or versions, not both")),
        (None, true) => return Err(SeedError::at(line, "a secret needs a value or versions")),
        (Some(value), true) => values.push(SeededValue {
            version_id: "v1".into(),
            data: Zeroizing::new(value.value.as_bytes().to_vec()),
            data_type: SecretDataType::Text,
            stages: BTreeSet::from([CURRENT.to_owned()]),
            line: line_of(value),
        }),
        (None, false) => {
            let explicit = seed.versions.iter().any(|v| v.value.stages.is_some());
            let count = seed.versions.len();
            for (position, entry) in seed.versions.iter().enumerate() {
                let version = &entry.value;
                let vline = line_of(entry);
                at(line_of(&version.id), check_label(&version.id.value, "VersionId"))?;
                let (data, data_type) = match (&version.value, &version.value_base64) {
                    (Some(text), None) => (text.value.as_bytes().to_vec(), SecretDataType::Text),
                    (None, Some(b64)) => (
                        BASE64
                            .decode(b64.value.trim())
                            .map_err(|_| SeedError::at(line_of(b64), "value_base64 is not base64"))?,
                        SecretDataType::Binary,
                    ),
                    _ => return Err(SeedError::at(vline, "a version has one of value and value_base64")),
                };
                if data.is_empty() || data.len() > 30720 {
                    return Err(SeedError::at(vline, "a secret value is 1 to 30720 bytes"));
                }
                let stages: BTreeSet<String> = match &version.stages {
                    Some(stages) => {
                        for stage in &stages.value {
                            at(line_of(stages), check_label(stage, "VersionStage"))?;
                        }
                        stages.value.iter().cloned().collect()
                    }
                    None if explicit => BTreeSet::new(),
                    None if position + 1 == count => BTreeSet::from([CURRENT.to_owned()]),
                    None if position + 2 == count => BTreeSet::from([PREVIOUS.to_owned()]),
                    None => BTreeSet::new(),
                };
                values.push(SeededValue {
                    version_id: version.id.value.clone(),
                    data: Zeroizing::new(data),
                    data_type,
                    stages,
                    line: vline,
                });
            }
        }
    }
    let mut ids = BTreeSet::new();
    let mut stages_seen = BTreeSet::new();
    for value in &values {
        if !ids.insert(value.version_id.clone()) {
            return Err(SeedError::at(value.line, format!("version {} is seeded twice", value.version_id)));
        }
        if value.data_type != values[0].data_type {
            return Err(SeedError::at(value.line, "a secret's versions are all text or all binary"));
        }
        for stage in &value.stages {
            if !stages_seen.insert(stage.clone()) {
                return Err(SeedError::at(value.line, format!("stage {stage} is on two versions")));
            }
        }
    }
    if !stages_seen.contains(CURRENT) {
        return Err(SeedError::at(line, "one version must have the ACSCurrent stage"));
    }
    Ok(values)
}
