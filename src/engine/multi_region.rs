//! AWS's multi-Region keys: a primary key and its replicas, which are copies of
//! one key (the same `mrk-` id, the same versions and so the same material) in
//! other regions, so a ciphertext made under one copy opens under any other.
//!
//! Keys are addressed by (region, key id), so a replica is an ordinary key of
//! its own region: its state, description, tags and policy are its own, and
//! every operation judges it as any other key. What ties the copies together is
//! data on each, [`MultiRegion`], naming the primary's region; the set's
//! replicas are the copies that exist, read from the engine when asked for
//! ([`Engine::multi_region_configuration`]), so a destroyed replica leaves no
//! stale entry behind. An operation on the set (ReplicateKey,
//! UpdatePrimaryRegion) holds the gate of every copy, taken in region order.
//!
//! Rotation is the primary's: its new version is every replica's in the same
//! commit, and a replica's rotation is refused (it follows its primary).
//!
//! Not modelled: AWS's `Creating`, `Updating` and `PendingReplicaDeletion`
//! states (a replica exists as soon as its call commits, and a primary with
//! replicas cannot be scheduled for deletion), and imported material, which
//! AWS imports into each copy separately.

use std::sync::Arc;

use super::error::{ErrorCode, KmsError, KmsResult};
use super::key::{Key, KeyOp, KeyState, MultiRegion, Origin, RotationPolicy};
use super::keys::{CreateKeyInput, add_tags, check_description};
use super::versions::{Rotation, VersionInfo};
use super::{Change, Engine, Gate, KeySlot, Outcome, read_lock};
use crate::clock::SimTime;
use crate::context::CallContext;
use crate::engine::instances::is_region_id;

/// A multi-Region key's set as DescribeKey shows it on any copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiRegionConfiguration {
    pub primary_region: String,
    /// The regions of its replicas, sorted.
    pub replica_regions: Vec<String>,
}

impl MultiRegionConfiguration {
    /// Whether the copy of `region` is the primary.
    pub fn is_primary(&self, region: &str) -> bool {
        self.primary_region == region
    }
}

/// A key as DescribeKey answers it: its metadata and, for a multi-Region key, its set.
#[derive(Debug, Clone)]
pub struct KeyDescription {
    pub meta: super::key::KeyMeta,
    pub multi_region: Option<MultiRegionConfiguration>,
}

/// ReplicateKey's parameters for the new replica; its description, tags and policy are its own.
#[derive(Debug, Default, Clone)]
pub struct ReplicaInput {
    pub replica_region: String,
    pub description: String,
    pub policy: String,
    pub tags: Vec<(String, String)>,
}

/// What ReplicateKey made: the replica, and the set it joined.
#[derive(Debug, Clone)]
pub struct Replicated {
    pub replica: Arc<Key>,
    pub configuration: MultiRegionConfiguration,
    /// The replica's key policy, the default one if none was given.
    pub policy: String,
}

/// A new multi-Region key's id: AWS's `mrk-` and 32 hex digits.
pub(super) fn new_key_id() -> String {
    format!("mrk-{}", crate::engine::crypto::new_uuid().simple())
}

/// Refuses what a multi-Region key cannot be made with here.
pub(super) fn check_creatable(input: &CreateKeyInput) -> KmsResult<()> {
    if !input.dkms_instance_id.is_empty() {
        return Err(unsupported("A multi-Region key cannot be created in a KMS instance."));
    }
    if super::keys::or_default(&input.origin, Origin::AliyunKms, Origin::parse)? == Origin::External {
        return Err(unsupported(
            "kmsim does not create multi-Region keys with Origin EXTERNAL: each copy would need its material \
             imported separately, which kmsim does not model.",
        ));
    }
    Ok(())
}

/// What a rotation of the primary (`rotated`, its SaveKey) makes of each
/// replica among `copies`: the same new version, primary as on the primary.
fn shared_with_replicas(copies: &[Arc<Key>], rotated: &Change) -> Vec<Change> {
    let Change::SaveKey { key: primary, new_versions } = rotated else { return Vec::new() };
    copies
        .iter()
        .filter(|copy| copy.meta.region != primary.meta.region)
        .map(|replica| {
            let mut next = replica.with_meta(|m| {
                m.primary_version = primary.meta.primary_version;
                m.rotation.last_rotation_date = primary.meta.rotation.last_rotation_date;
                m.on_demand_versions.clone_from(&primary.meta.on_demand_versions);
            });
            next.versions.extend(new_versions.iter().cloned());
            Change::SaveKey { key: Arc::new(next), new_versions: new_versions.clone() }
        })
        .collect()
}

fn unsupported(message: &str) -> KmsError {
    KmsError::with_message(ErrorCode::UnsupportedOperation, message.to_owned())
}

impl Engine {
    /// The set a copy of a multi-Region key belongs to, as it stands; `None` for any other key.
    pub fn multi_region_configuration(&self, meta: &super::key::KeyMeta) -> Option<MultiRegionConfiguration> {
        let primary_region = meta.multi_region.as_ref()?.primary_region.clone();
        let replica_regions = self
            .copies(&meta.key_id)
            .into_iter()
            .map(|(region, _)| region)
            .filter(|region| *region != primary_region)
            .collect();
        Some(MultiRegionConfiguration { primary_region, replica_regions })
    }

    /// DescribeKey: the key, with its multi-Region set if it has one.
    pub fn describe_key_with_set(&self, cx: &CallContext, key_id: &str) -> KmsResult<Outcome<KeyDescription>> {
        let described = self.describe_key(cx, key_id)?;
        Ok(described.map(|meta| KeyDescription { multi_region: self.multi_region_configuration(&meta), meta }))
    }

    /// Copies the multi-Region primary key `key_id` (of the caller's region) to
    /// another region: the same id and versions, with a state, description,
    /// tags and policy of its own.
    pub async fn replicate_to_region(
        &self,
        cx: &CallContext,
        key_id: &str,
        input: ReplicaInput,
    ) -> KmsResult<Outcome<Replicated>> {
        let named = self.key_for_use(cx, key_id, "KeyId")?;
        if named.meta.multi_region.is_none() {
            return Err(unsupported("ReplicateKey copies only multi-Region keys; this is a single-Region key."));
        }
        let ReplicaInput { replica_region, description, policy, tags } = input;
        if replica_region.is_empty() {
            return Err(KmsError::missing("ReplicaRegion"));
        }
        if !is_region_id(&replica_region) {
            return Err(KmsError::invalid_because("ReplicaRegion", "Name a region, such as eu-west-1."));
        }
        check_description(&description)?;
        let policy = match policy.as_str() {
            "" => None,
            text => {
                super::access::check_resource_policy("default", text)?;
                Some(policy)
            }
        };
        let mut replica_tags = Default::default();
        add_tags(&mut replica_tags, &tags, "Tags")?;

        let (copies, gates) = self.lock_copies(&named.meta.key_id).await;
        let primary = copies.iter().find(|k| k.meta.region == cx.region).ok_or(ErrorCode::KeyNotFound)?.clone();
        cx.trail.key(&primary.meta);
        primary.allow(KeyOp::UpdateMetadata)?;
        if !primary.is_multi_region_primary() {
            let primary_region = primary.meta.multi_region.as_ref().map_or("", |m| m.primary_region.as_str());
            return Err(unsupported(&format!("This is a replica; replicate the primary key, in {primary_region}.")));
        }
        if replica_region == cx.region {
            return Err(KmsError::invalid_because("ReplicaRegion", "It is the primary key's own region."));
        }
        if copies.iter().any(|k| k.meta.region == replica_region) {
            return Err(KmsError::new(ErrorCode::ResourceExist)
                .because(&format!("The key already has a replica in {replica_region}.")));
        }
        let now = cx.received_at;
        let replica = primary.with_meta(|m| {
            m.region.clone_from(&replica_region);
            m.state = if primary.has_material() { KeyState::Enabled } else { KeyState::PendingImport };
            m.description = description;
            m.tags = replica_tags;
            m.policy = policy;
            m.creation_date = now;
            m.delete_date = None;
            m.pending_window_in_days = None;
            m.deletion_protection = false;
            m.deletion_protection_description = String::new();
            // Rotation is the primary's: its new versions reach the replicas from there.
            m.rotation = RotationPolicy { last_rotation_date: m.rotation.last_rotation_date, ..Default::default() };
        });
        cx.trail.response_element("ReplicaKeyArn", replica.meta.arn());
        let mut replica_regions: Vec<String> =
            copies.iter().map(|k| k.meta.region.clone()).filter(|r| *r != cx.region).collect();
        replica_regions.push(replica_region);
        replica_regions.sort();
        let configuration = MultiRegionConfiguration { primary_region: cx.region.clone(), replica_regions };
        let policy =
            replica.meta.policy.clone().unwrap_or_else(|| super::policy::default_resource_policy(&self.account_id));
        let replica = Arc::new(replica);
        let change = Change::SaveKey { key: replica.clone(), new_versions: replica.versions.clone() };
        Ok(Outcome::write(Replicated { replica, configuration, policy }, vec![change], gates))
    }

    /// Makes the replica in `primary_region` the primary of the multi-Region
    /// key `key_id` (the primary, of the caller's region), and the old primary a
    /// replica. The rotation schedule moves with the role.
    pub async fn update_primary_region(
        &self,
        cx: &CallContext,
        key_id: &str,
        primary_region: &str,
    ) -> KmsResult<Outcome<()>> {
        let named = self.key_for_use(cx, key_id, "KeyId")?;
        if named.meta.multi_region.is_none() {
            return Err(unsupported(
                "UpdatePrimaryRegion applies only to multi-Region keys; this is a single-Region key.",
            ));
        }
        if primary_region.is_empty() {
            return Err(KmsError::missing("PrimaryRegion"));
        }
        if !is_region_id(primary_region) {
            return Err(KmsError::invalid_because("PrimaryRegion", "Name a region, such as eu-west-1."));
        }
        let (copies, gates) = self.lock_copies(&named.meta.key_id).await;
        let old = copies.iter().find(|k| k.meta.region == cx.region).ok_or(ErrorCode::KeyNotFound)?.clone();
        cx.trail.key(&old.meta);
        if !old.is_multi_region_primary() {
            let current = old.meta.multi_region.as_ref().map_or("", |m| m.primary_region.as_str());
            return Err(unsupported(&format!("Call UpdatePrimaryRegion on the primary key, in {current}.")));
        }
        old.allow(KeyOp::EnableOrDisable)?;
        if primary_region == cx.region {
            return Err(KmsError::invalid_because("PrimaryRegion", "The key in that region is the primary already."));
        }
        let new = copies.iter().find(|k| k.meta.region == primary_region).ok_or_else(|| {
            KmsError::new(ErrorCode::KeyNotFound).because(&format!("The key has no replica in {primary_region}."))
        })?;
        new.allow(KeyOp::EnableOrDisable)?;
        cx.trail.response_element("PrimaryRegion", primary_region);
        let rotation = old.meta.rotation.clone();
        let changes = copies
            .iter()
            .map(|copy| {
                let next = copy.with_meta(|m| {
                    m.multi_region = Some(MultiRegion { primary_region: primary_region.to_owned() });
                    if m.region == primary_region {
                        m.rotation = rotation.clone();
                    } else if m.region == cx.region {
                        m.rotation =
                            RotationPolicy { last_rotation_date: rotation.last_rotation_date, ..Default::default() };
                    }
                });
                Change::SaveKey { key: Arc::new(next), new_versions: Vec::new() }
            })
            .collect();
        Ok(Outcome::write((), changes, gates))
    }

    /// A rotation of the multi-Region key `key_id` asked for in the caller's
    /// region (RotateKeyOnDemand, CreateKeyVersion): only the primary rotates,
    /// and its new version becomes every replica's too.
    pub(super) async fn rotate_multi_region(
        &self,
        cx: &CallContext,
        key_id: &str,
        at: SimTime,
    ) -> KmsResult<Outcome<VersionInfo>> {
        let (copies, gates) = self.lock_copies(key_id).await;
        let key = copies.iter().find(|k| k.meta.region == cx.region).ok_or(ErrorCode::KeyNotFound)?;
        cx.trail.key(&key.meta);
        if !key.is_multi_region_primary() {
            let primary_region = key.meta.multi_region.as_ref().map_or("", |m| m.primary_region.as_str());
            return Err(unsupported(&format!(
                "A replica is rotated through its primary key, in {primary_region}, whose new material it shares."
            )));
        }
        let (info, change) = self.new_primary_version(cx, key, at, Rotation::OnDemand)?;
        let mut changes = shared_with_replicas(&copies, &change);
        changes.insert(0, change);
        Ok(Outcome::write(info, changes, gates))
    }

    /// The scheduled rotation of the multi-Region primary `key_id` of `region`
    /// due at `at`, shared with its replicas; `None` when it is no longer due
    /// (the key changed, or is no longer the primary).
    pub(super) async fn rotate_multi_region_when_due(
        &self,
        cx: &CallContext,
        region: &str,
        key_id: &str,
        at: SimTime,
        due: impl Fn(&Key) -> bool,
    ) -> Option<KmsResult<Outcome<()>>> {
        let (copies, gates) = self.lock_copies(key_id).await;
        let key = copies.iter().find(|k| k.meta.region == region)?;
        if !key.is_multi_region_primary() || !due(key) {
            return None;
        }
        cx.trail.key(&key.meta);
        Some(self.new_primary_version(cx, key, at, Rotation::Scheduled).map(|(_, change)| {
            let mut changes = shared_with_replicas(&copies, &change);
            changes.insert(0, change);
            Outcome::write((), changes, gates)
        }))
    }

    /// The copies of the multi-Region key `key_id`, by region, sorted.
    fn copies(&self, key_id: &str) -> Vec<(String, Arc<KeySlot>)> {
        let mut copies: Vec<(String, Arc<KeySlot>)> = read_lock(&self.keys)
            .iter()
            .filter(|((_, id), slot)| id == key_id && slot.snapshot().meta.multi_region.is_some())
            .map(|((region, _), slot)| (region.clone(), slot.clone()))
            .collect();
        copies.sort_by(|a, b| a.0.cmp(&b.0));
        copies
    }

    /// Every copy of a multi-Region key, each under its gate. The gates are
    /// taken in region order, so two calls on one set never wait on each other
    /// crosswise; and the set is read again under them, so a copy added or
    /// destroyed while this waited is seen rather than overwritten or revived.
    async fn lock_copies(&self, key_id: &str) -> (Vec<Arc<Key>>, Vec<Gate>) {
        loop {
            let copies = self.copies(key_id);
            let mut gates = Vec::with_capacity(copies.len());
            for (_, slot) in &copies {
                gates.push(slot.gate.clone().lock_owned().await);
            }
            let again = self.copies(key_id);
            let unchanged = again.len() == copies.len()
                && again.iter().zip(&copies).all(|((ra, a), (rb, b))| ra == rb && Arc::ptr_eq(a, b));
            if unchanged {
                return (copies.iter().map(|(_, slot)| slot.snapshot()).collect(), gates);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimClock;
    use crate::engine::Snapshot;

    const EAST: &str = "us-east-1";
    const WEST: &str = "eu-west-1";

    fn engine() -> Engine {
        Engine::new("111122223333".into(), Arc::new(SimClock::default()), [7; 32], Snapshot::default())
    }

    fn cx(engine: &Engine, region: &str) -> CallContext {
        CallContext::internal(region, engine.account_id(), engine.clock().now())
    }

    fn create(engine: &Engine, multi_region: bool) -> String {
        let input = CreateKeyInput { multi_region, ..CreateKeyInput::default() };
        let outcome = engine.create_key(&cx(engine, EAST), input).unwrap();
        let id = outcome.value.meta.key_id.clone();
        engine.apply(outcome.changes);
        id
    }

    async fn replicate(engine: &Engine, region: &str, key_id: &str, to: &str) -> KmsResult<Replicated> {
        let input = ReplicaInput { replica_region: to.into(), ..ReplicaInput::default() };
        let outcome = engine.replicate_to_region(&cx(engine, region), key_id, input).await?;
        engine.apply(outcome.changes);
        Ok(outcome.value)
    }

    fn set_of(engine: &Engine, region: &str, key_id: &str) -> MultiRegionConfiguration {
        engine.describe_key_with_set(&cx(engine, region), key_id).unwrap().value.multi_region.unwrap()
    }

    #[tokio::test]
    async fn a_replica_is_the_same_key_id_and_material_in_another_region() {
        let engine = engine();
        let id = create(&engine, true);
        assert!(id.starts_with("mrk-") && id.len() == 36 && id[4..].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        let replicated = replicate(&engine, EAST, &id, WEST).await.unwrap();
        assert_eq!(
            (replicated.replica.meta.key_id.as_str(), replicated.replica.meta.region.as_str()),
            (id.as_str(), WEST)
        );
        let expected = MultiRegionConfiguration { primary_region: EAST.into(), replica_regions: vec![WEST.into()] };
        assert_eq!(replicated.configuration, expected);
        assert_eq!(set_of(&engine, EAST, &id), expected, "the primary sees its replica");
        assert_eq!(set_of(&engine, WEST, &id), expected, "the replica sees the same set");

        let sealed = engine.encrypt(&cx(&engine, EAST), &id, b"across regions", Default::default()).unwrap().value;
        let opened = engine.decrypt(&cx(&engine, WEST), &sealed.ciphertext_blob, Default::default()).unwrap().value;
        assert_eq!(&opened.plaintext[..], b"across regions");
    }

    #[tokio::test]
    async fn a_replica_has_a_state_of_its_own() {
        let engine = engine();
        let id = create(&engine, true);
        replicate(&engine, EAST, &id, WEST).await.unwrap();
        let disabled = engine.set_key_enabled(&cx(&engine, WEST), &id, false).await.unwrap();
        engine.apply(disabled.changes);
        drop(disabled.gates);
        assert!(engine.encrypt(&cx(&engine, EAST), &id, b"x", Default::default()).is_ok());
        let refused = engine.encrypt(&cx(&engine, WEST), &id, b"x", Default::default()).unwrap_err();
        assert_eq!(refused.code, ErrorCode::Disabled);
    }

    #[tokio::test]
    async fn replicate_key_refuses_what_aws_refuses() {
        let engine = engine();
        let single = create(&engine, false);
        let code = |r: KmsResult<Replicated>| r.unwrap_err().code;
        assert_eq!(code(replicate(&engine, EAST, &single, WEST).await), ErrorCode::UnsupportedOperation);
        let id = create(&engine, true);
        assert_eq!(code(replicate(&engine, EAST, &id, EAST).await), ErrorCode::InvalidParameter);
        assert_eq!(code(replicate(&engine, EAST, &id, "").await), ErrorCode::MissingParameter);
        assert_eq!(code(replicate(&engine, EAST, &id, "Not A Region").await), ErrorCode::InvalidParameter);
        replicate(&engine, EAST, &id, WEST).await.unwrap();
        assert_eq!(code(replicate(&engine, EAST, &id, WEST).await), ErrorCode::ResourceExist);
        assert_eq!(code(replicate(&engine, WEST, &id, "ap-south-1").await), ErrorCode::UnsupportedOperation);

        let external = CreateKeyInput { multi_region: true, origin: "EXTERNAL".into(), ..CreateKeyInput::default() };
        let refused = engine.create_key(&cx(&engine, EAST), external).unwrap_err();
        assert_eq!(refused.code, ErrorCode::UnsupportedOperation);
        assert!(refused.message.contains("EXTERNAL"), "{}", refused.message);
    }

    #[tokio::test]
    async fn update_primary_region_swaps_the_roles() {
        let engine = engine();
        let id = create(&engine, true);
        replicate(&engine, EAST, &id, WEST).await.unwrap();
        replicate(&engine, EAST, &id, "ap-south-1").await.unwrap();
        let moved = engine.update_primary_region(&cx(&engine, EAST), &id, WEST).await.unwrap();
        engine.apply(moved.changes);
        drop(moved.gates);
        let expected = MultiRegionConfiguration {
            primary_region: WEST.into(),
            replica_regions: vec!["ap-south-1".into(), EAST.into()],
        };
        for region in [EAST, WEST, "ap-south-1"] {
            assert_eq!(set_of(&engine, region, &id), expected, "{region}");
        }
        let refused = engine.update_primary_region(&cx(&engine, EAST), &id, WEST).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::UnsupportedOperation, "the old primary is a replica now");
        let refused = engine.update_primary_region(&cx(&engine, WEST), &id, "us-west-2").await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::KeyNotFound, "no replica there");
        assert!(replicate(&engine, WEST, &id, "us-west-2").await.is_ok(), "the new primary replicates");
    }

    #[tokio::test]
    async fn a_primary_with_replicas_is_not_scheduled_for_deletion() {
        let engine = engine();
        let id = create(&engine, true);
        replicate(&engine, EAST, &id, WEST).await.unwrap();
        let refused = engine.schedule_key_deletion(&cx(&engine, EAST), &id, 7).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::StateModifiedFailed);
        assert!(engine.schedule_key_deletion(&cx(&engine, WEST), &id, 7).await.is_ok(), "a replica may go");
    }

    #[tokio::test]
    async fn a_rotation_of_the_primary_reaches_its_replicas() {
        let engine = engine();
        let id = create(&engine, true);
        replicate(&engine, EAST, &id, WEST).await.unwrap();
        let now = engine.clock().now();
        let rotated = engine.rotate_key(&cx(&engine, EAST), &id, now).await.unwrap();
        let version = rotated.value.key_version_id;
        engine.apply(rotated.changes);
        drop(rotated.gates);
        for region in [EAST, WEST] {
            let key = engine.key_for_use(&cx(&engine, region), &id, "KeyId").unwrap();
            assert_eq!((key.meta.primary_version, key.versions.len()), (Some(version), 2), "{region}");
        }
        let sealed = engine.encrypt(&cx(&engine, EAST), &id, b"new material", Default::default()).unwrap().value;
        let opened = engine.decrypt(&cx(&engine, WEST), &sealed.ciphertext_blob, Default::default()).unwrap().value;
        assert_eq!(&opened.plaintext[..], b"new material");

        let refused = engine.rotate_key(&cx(&engine, WEST), &id, now).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::UnsupportedOperation, "a replica rotates through its primary");
        let refused = engine.update_rotation_policy(&cx(&engine, WEST), &id, true, None).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::UnsupportedOperation);
    }
}
