//! Key versions and rotation: CreateKeyVersion (manual rotation), the rotation
//! the scheduler performs when a key's next rotation date comes, the rotation
//! policy, and reading versions.

use std::sync::Arc;

use uuid::Uuid;

use super::error::{ErrorCode, KmsError, KmsResult};
use super::key::{AutomaticRotation, Key, KeyOp, KeyVersion, Origin, RotationPolicy};
use super::paging::{Page, Paged};
use super::{Change, Engine, Outcome};
use crate::clock::SimTime;
use crate::context::CallContext;

/// A version as DescribeKeyVersion and ListKeyVersions show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub key_id: String,
    pub key_version_id: Uuid,
    pub creation_date: SimTime,
    /// Whether a caller's rotation made it, rather than the schedule or the key's creation.
    pub on_demand: bool,
}

/// Who asked for a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// A caller (CreateKeyVersion, RotateKeyOnDemand).
    OnDemand,
    /// The key's rotation schedule, as the clock reached it.
    Scheduled,
}

impl Engine {
    /// Makes a new primary version with fresh material; earlier versions keep
    /// decrypting and verifying. `at` is when the rotation happens: the call's
    /// time for CreateKeyVersion, the due time for a scheduled rotation.
    pub async fn rotate_key(&self, cx: &CallContext, key_id: &str, at: SimTime) -> KmsResult<Outcome<VersionInfo>> {
        let slot = self.resolve(cx, key_id, "KeyId")?;
        let named = slot.snapshot();
        if named.meta.multi_region.is_some() {
            // The copies all take the new version, under all their gates.
            return self.rotate_multi_region(cx, &named.meta.key_id, at).await;
        }
        let gate = slot.gate.clone().lock_owned().await;
        let key = slot.snapshot();
        cx.trail.key(&key.meta);
        let (info, change) = self.new_primary_version(cx, &key, at, Rotation::OnDemand)?;
        Ok(Outcome::write(info, vec![change], vec![gate]))
    }

    /// The rotation itself, for a caller that holds the key's gate.
    pub(super) fn new_primary_version(
        &self,
        cx: &CallContext,
        key: &Key,
        at: SimTime,
        rotation: Rotation,
    ) -> KmsResult<(VersionInfo, Change)> {
        key.allow(KeyOp::Cryptographic)?;
        key.managed_here()?;
        if key.meta.origin == Origin::External {
            return Err(ErrorCode::UnsupportedOrigin.into());
        }
        let version =
            Arc::new(KeyVersion::new(crate::engine::crypto::new_uuid(), at, key.meta.spec.generate_material()));
        cx.trail.key_version(version.version_id);
        let now = self.clock.now();
        let mut passed_over = 0;
        let mut next = key.with_meta(|m| {
            m.primary_version = Some(version.version_id);
            m.rotation.last_rotation_date = Some(at);
            if rotation == Rotation::OnDemand {
                m.on_demand_versions.push(version.version_id);
            }
            if m.rotation.automatic == AutomaticRotation::Enabled {
                m.rotation.next_rotation_date = m.rotation.interval_secs.map(|secs| {
                    let (next, passed) = super::next_occurrence(at, secs, now);
                    passed_over = passed;
                    next
                });
            }
        });
        if passed_over > 0 {
            // Far behind the clock: this rotation stands for the ones it passed over.
            cx.trail.response_element("CoalescedRotations", passed_over);
        }
        next.versions.push(version.clone());
        let info = version_info(&next, &version);
        Ok((info, Change::SaveKey { key: Arc::new(next), new_versions: vec![version] }))
    }

    /// Turns automatic rotation on (with an interval, default 365 days) or off.
    pub async fn update_rotation_policy(
        &self,
        cx: &CallContext,
        key_id: &str,
        enable: bool,
        interval: Option<u64>,
    ) -> KmsResult<Outcome<Arc<Key>>> {
        let now = cx.received_at;
        self.change_key(cx, (key_id, "KeyId"), KeyOp::Cryptographic, |key| {
            if key.meta.origin == Origin::External {
                return Err(ErrorCode::UnsupportedOrigin.into());
            }
            if key.meta.multi_region.is_some() && !key.is_multi_region_primary() {
                return Err(KmsError::with_message(
                    ErrorCode::UnsupportedOperation,
                    "A replica's rotation is its primary key's: set it on the primary.".into(),
                ));
            }
            Ok(key.with_meta(|m| {
                let last = m.rotation.last_rotation_date;
                m.rotation = if enable {
                    let interval_secs = interval.or(m.rotation.interval_secs).unwrap_or(365 * 86_400);
                    RotationPolicy {
                        automatic: AutomaticRotation::Enabled,
                        interval_secs: Some(interval_secs),
                        last_rotation_date: last,
                        next_rotation_date: Some(last.unwrap_or(now).max(now).plus_secs(interval_secs)),
                    }
                } else {
                    RotationPolicy {
                        automatic: AutomaticRotation::Disabled,
                        last_rotation_date: last,
                        ..Default::default()
                    }
                };
            }))
        })
        .await
    }

    pub fn describe_key_version(
        &self,
        cx: &CallContext,
        key_id: &str,
        key_version_id: &str,
    ) -> KmsResult<Outcome<VersionInfo>> {
        if key_version_id.is_empty() {
            return Err(KmsError::missing("KeyVersionId"));
        }
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        let id = Uuid::parse_str(key_version_id).map_err(|_| KmsError::invalid("KeyVersionId"))?;
        let version = key.version(id).ok_or(ErrorCode::KeyVersionNotFound)?;
        cx.trail.key_version(id);
        Ok(Outcome::read(version_info(&key, version)))
    }

    /// Versions oldest first.
    pub fn list_key_versions(
        &self,
        cx: &CallContext,
        key_id: &str,
        page: Page,
    ) -> KmsResult<Outcome<Paged<VersionInfo>>> {
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        let versions = key.versions.iter().map(|v| version_info(&key, v)).collect();
        Ok(Outcome::read(page.slice(versions)))
    }

    /// A page of the rotations of a key (its versions after the first), oldest first.
    pub fn list_key_rotations(
        &self,
        cx: &CallContext,
        key_id: &str,
        page: Page,
    ) -> KmsResult<Outcome<Paged<VersionInfo>>> {
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        let rotations = key.versions.iter().skip(1).map(|v| version_info(&key, v)).collect();
        Ok(Outcome::read(page.slice(rotations)))
    }
}

fn version_info(key: &Key, version: &KeyVersion) -> VersionInfo {
    VersionInfo {
        key_id: key.meta.key_id.clone(),
        key_version_id: version.version_id,
        creation_date: version.created,
        on_demand: key.meta.on_demand_versions.contains(&version.version_id),
    }
}
