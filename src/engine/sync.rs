//! Cross-region key sync: a key of a primary instance is copied (same id,
//! material and versions) to a replica ("shadow") instance in another region.
//!
//! Replication is a list of [`ReplicaTarget`]s on the primary key. Each target
//! is synced periodically (every `interval_secs` after `since`) and whenever
//! SyncKey asks; each sync is a task on the agenda, done by the scheduler as a
//! service event that ends in `Instance:KeySync:Success` or
//! `Instance:KeySync:Failure`. A periodic sync that finds the replica already
//! up to date does nothing and leaves no trace, so a year of hourly ticks costs
//! only the syncs that copied something.

use std::sync::Arc;

use super::error::{ErrorCode, KmsError, KmsResult};
use super::key::{AutomaticRotation, Key, KeyOp, ReplicaTarget, RotationPolicy, SyncReport, parse_interval};
use super::{Change, DueItem, DueTask, Engine, Outcome};
use crate::clock::SimTime;
use crate::context::CallContext;
use crate::events::{KeySync, SystemEvent};

/// How often a replica is synced unless ReplicateKey says otherwise.
pub const DEFAULT_SYNC_INTERVAL_SECS: u64 = 3600;
const SYNC_INTERVAL_SECS: std::ops::RangeInclusive<u64> = 60..=365 * 86_400;

/// Draws the failure injected on a sync task, if any: the fault's id and its error.
pub type TaskFault<'a> = &'a (dyn Fn(&DueItem) -> Option<(String, KmsError)> + Send + Sync);

/// A sync task done within the call that asked for it (ReplicateKey's first
/// sync, SyncKey's): a service event of its own, with its own context, which
/// the kernel records beside the call and commits with it.
#[derive(Debug, Clone)]
pub struct TaskDone {
    pub item: DueItem,
    pub cx: Arc<CallContext>,
    pub error: Option<KmsError>,
}

/// The replica side of one sync, looked at under its gate.
struct ReplicaSide {
    shadow: Option<Arc<super::instances::Instance>>,
    gate: Option<super::Gate>,
    existing: Option<Arc<Key>>,
    desired: Option<Key>,
}

impl ReplicaSide {
    fn up_to_date(&self) -> bool {
        match (&self.existing, &self.desired) {
            (Some(existing), Some(desired)) => same_copy(existing, desired),
            _ => false,
        }
    }
}

/// One sync's result: the primary with its new report, what else to commit
/// (the copy, the system event), the replica's gate, and the failure, if the
/// copy failed.
struct Synced {
    primary: Arc<Key>,
    copies: Vec<Change>,
    gate: Option<super::Gate>,
    error: Option<KmsError>,
}

impl Engine {
    /// Starts (or re-times) the replication of a key to `shadow_instance_id`,
    /// and does its first sync within the call, so the answer shows it.
    pub async fn replicate_key(
        &self,
        cx: &CallContext,
        (key_id, shadow_instance_id, sync_interval): (&str, &str, &str),
        fault: TaskFault<'_>,
    ) -> KmsResult<Outcome<Arc<Key>>> {
        let interval_secs = if sync_interval.is_empty() {
            DEFAULT_SYNC_INTERVAL_SECS
        } else {
            parse_interval(
                sync_interval,
                "SyncInterval",
                SYNC_INTERVAL_SECS,
                "Write it as 1m to 365d (units d, h, m or s).",
            )?
        };
        let now = cx.received_at;
        let mut shadow_id = String::new();
        let outcome = self
            .change_key(cx, (key_id, "KeyId"), KeyOp::UpdateMetadata, |key| {
                if key.meta.instance_id.is_none() {
                    return Err(KmsError::with_message(
                        ErrorCode::UnsupportedOperation,
                        "Only keys in a KMS instance can be synchronised.".into(),
                    ));
                }
                if shadow_instance_id.is_empty() {
                    return Err(KmsError::missing("ShadowInstanceId"));
                }
                let shadow = self.instance(shadow_instance_id).ok_or(ErrorCode::InstanceNotFound)?;
                if shadow.region == key.meta.region {
                    return Err(KmsError::invalid_because(
                        "ShadowInstanceId",
                        "The replica must be in another region.",
                    ));
                }
                shadow_id.clone_from(&shadow.instance_id);
                let target = ReplicaTarget {
                    shadow_instance_id: shadow.instance_id.clone(),
                    shadow_region: shadow.region.clone(),
                    interval_secs,
                    since: now,
                    requested: Some(now),
                    last_sync: None,
                };
                Ok(key.with_meta(|m| {
                    match m.replicas.iter_mut().find(|t| t.shadow_instance_id == target.shadow_instance_id) {
                        Some(existing) => {
                            existing.interval_secs = interval_secs;
                            existing.since = now;
                            existing.requested = Some(now);
                        }
                        None => m.replicas.push(target),
                    }
                }))
            })
            .await?;
        self.sync_within(cx, outcome, |target| target.shadow_instance_id == shadow_id, fault).await
    }

    /// Syncs every replica of a key now, within the call.
    pub async fn request_sync(
        &self,
        cx: &CallContext,
        key_id: &str,
        fault: TaskFault<'_>,
    ) -> KmsResult<Outcome<Arc<Key>>> {
        let now = cx.received_at;
        let outcome = self
            .change_key(cx, (key_id, "KeyId"), KeyOp::Inspect, |key| {
                if key.meta.replicas.is_empty() {
                    return Err(KmsError::invalid_because(
                        "KeyId",
                        "The key has no replicas; add one with ReplicateKey.",
                    ));
                }
                Ok(key.with_meta(|m| m.replicas.iter_mut().for_each(|t| t.requested = Some(now))))
            })
            .await?;
        self.sync_within(cx, outcome, |_| true, fault).await
    }

    /// Does the syncs a call asked for, on the primary `outcome` made, as tasks
    /// of their own recorded in the call's trail: their changes join the
    /// call's, so the call, its syncs and all their records commit together,
    /// and its answer shows how the syncs went.
    async fn sync_within(
        &self,
        cx: &CallContext,
        outcome: Outcome<Arc<Key>>,
        which: impl Fn(&ReplicaTarget) -> bool,
        fault: TaskFault<'_>,
    ) -> KmsResult<Outcome<Arc<Key>>> {
        let Outcome { value: changed, changes, mut gates, failed: _ } = outcome;
        let now = cx.received_at;
        let mut primary = changed.clone();
        let mut copies = Vec::new();
        let targets: Vec<String> =
            primary.meta.replicas.iter().filter(|t| which(t)).map(|t| t.shadow_instance_id.clone()).collect();
        for shadow_instance_id in targets {
            let item = DueItem {
                at: now,
                region: primary.meta.region.clone(),
                task: DueTask::SyncKey {
                    key_id: primary.meta.key_id.clone(),
                    shadow_instance_id: shadow_instance_id.clone(),
                    forced: true,
                },
            };
            let task_cx = Arc::new(CallContext::internal(&item.region, &self.account_id, now));
            let replica = self.replica_side(&primary, &shadow_instance_id).await;
            let drawn = || {
                let (fault_id, error) = fault(&item)?;
                task_cx.trail.injected_fault(fault_id);
                Some(error)
            };
            let synced = self.sync_copy(&task_cx, &primary, &shadow_instance_id, replica, now, drawn);
            primary = synced.primary;
            copies.extend(synced.copies);
            gates.extend(synced.gate);
            cx.trail.task_done(TaskDone { item, cx: task_cx, error: synced.error });
        }
        // The primary is saved once, as it ends, with the reports of its syncs.
        let mut changes: Vec<Change> = changes
            .into_iter()
            .map(|change| match change {
                Change::SaveKey { key, new_versions } if Arc::ptr_eq(&key, &changed) => {
                    Change::SaveKey { key: primary.clone(), new_versions }
                }
                other => other,
            })
            .collect();
        changes.extend(copies);
        Ok(Outcome::write(primary, changes, gates))
    }

    /// The replicas of a key of `region`, as they stand.
    pub fn replicas_of(&self, region: &str, key_id: &str) -> Vec<ReplicaTarget> {
        self.slot(region, key_id).map(|slot| slot.snapshot().meta.replicas.clone()).unwrap_or_default()
    }

    /// Resolves a key name for the replica listing: the key's (region, id).
    pub fn key_address(&self, cx: &CallContext, key_name: &str) -> KmsResult<Outcome<(String, String)>> {
        let key = self.key_for_use(cx, key_name, "KeyId")?;
        key.allow(KeyOp::Inspect)?;
        Ok(Outcome::read((key.meta.region.clone(), key.meta.key_id.clone())))
    }

    /// Puts a primary's next syncs on the agenda: a requested one not yet
    /// done, and the next periodic tick after now (which starts the chain
    /// when the server starts; from then on each sync queues the next, see
    /// [`Engine::sync_replica`]).
    pub(super) fn schedule_syncs(&self, key: &super::key::KeyMeta) {
        let now = self.clock.now();
        for target in &key.replicas {
            let item = |at: SimTime, forced: bool| DueItem {
                at,
                region: key.region.clone(),
                task: DueTask::SyncKey {
                    key_id: key.key_id.clone(),
                    shadow_instance_id: target.shadow_instance_id.clone(),
                    forced,
                },
            };
            if let Some(requested) = target.requested.filter(|at| Some(*at) > target.last_sync_at()) {
                self.agenda.push(item(requested, true));
            }
            self.agenda.push(item(target.next_tick_after(Some(now.max(target.since))), false));
        }
    }

    /// One periodic (or still outstanding requested) sync task of `key_id` to
    /// `shadow_instance_id`, at `item.at`. `fault` is a failure injected on
    /// the task. `None` when nothing is due: the task was done already, the
    /// replication ended, or (periodic) the replica is up to date.
    pub(super) async fn sync_replica(
        &self,
        cx: &CallContext,
        item: &DueItem,
        (key_id, shadow_instance_id, forced): (&str, &str, bool),
        fault: impl FnOnce() -> Option<KmsError>,
    ) -> Option<Outcome<()>> {
        let slot = self.slot(&item.region, key_id)?;
        let gate = slot.gate.clone().lock_owned().await;
        let key = slot.snapshot();
        let target = key.meta.replicas.iter().find(|t| t.shadow_instance_id == shadow_instance_id)?;
        // Each sync, done or skipped, queues the next periodic one after its own
        // time, so a long jump of the clock runs every sync at its own time, as
        // far back as the catch-up horizon: ticks older than that would find
        // nothing the next one does not.
        let horizon = self.clock.now().plus_days(-super::CATCH_UP_DAYS);
        self.agenda.push(DueItem {
            task: DueTask::SyncKey {
                key_id: key_id.to_owned(),
                shadow_instance_id: shadow_instance_id.to_owned(),
                forced: false,
            },
            region: item.region.clone(),
            at: target.next_tick_after(Some(item.at.max(horizon))),
        });
        let done_already = target.last_sync_at().is_some_and(|at| at >= item.at);
        let due = if forced { target.requested == Some(item.at) } else { target.is_tick(item.at) };
        if done_already || !due {
            return None;
        }
        let replica = self.replica_side(&key, shadow_instance_id).await;
        if !forced && replica.up_to_date() {
            return None;
        }
        let Synced { primary, copies, gate: replica_gate, error } =
            self.sync_copy(cx, &key, shadow_instance_id, replica, item.at, fault);
        let changes =
            std::iter::once(Change::SaveKey { key: primary, new_versions: Vec::new() }).chain(copies).collect();
        let gates = std::iter::once(gate).chain(replica_gate).collect();
        Some(Outcome::write((), changes, gates).failing(error))
    }

    /// The replica of `key` in `shadow_instance_id` as it stands and as it
    /// should be, under the replica's gate.
    async fn replica_side(&self, key: &Key, shadow_instance_id: &str) -> ReplicaSide {
        let shadow = self.instance(shadow_instance_id);
        let replica_slot = shadow.as_ref().and_then(|s| self.slot(&s.region, &key.meta.key_id));
        let gate = match &replica_slot {
            Some(slot) => Some(slot.gate.clone().lock_owned().await),
            None => None,
        };
        let existing = replica_slot.map(|slot| slot.snapshot());
        let desired = shadow.as_ref().map(|s| replica_copy(key, &s.instance_id, &s.region));
        ReplicaSide { shadow, gate, existing, desired }
    }

    /// One sync task, done with `cx` (the task's own context) at `at`: copies
    /// `key` to its replica unless the task fails, and reports how it went on
    /// the primary, in the task's trail and as a system event.
    fn sync_copy(
        &self,
        cx: &CallContext,
        key: &Key,
        shadow_instance_id: &str,
        replica: ReplicaSide,
        at: SimTime,
        fault: impl FnOnce() -> Option<KmsError>,
    ) -> Synced {
        let ReplicaSide { shadow, gate, existing, desired } = replica;
        cx.trail.key(&key.meta);
        let error = fault().or_else(|| match &shadow {
            None => Some(ErrorCode::InstanceNotFound.into()),
            Some(s) if s.is_expired_at(at) => Some(ErrorCode::Unavailable.into()),
            Some(_)
                if key
                    .meta
                    .instance_id
                    .as_ref()
                    .and_then(|id| self.instance(id))
                    .is_some_and(|i| i.is_expired_at(at)) =>
            {
                Some(ErrorCode::Unavailable.into())
            }
            Some(_) => None,
        });
        let sync = KeySync {
            sync_task_id: crate::engine::crypto::new_uuid().to_string(),
            master_instance_id: key.meta.instance_id.clone().unwrap_or_default(),
            shadow_instance_id: shadow_instance_id.to_owned(),
            key_id: key.meta.key_id.clone(),
        };
        let error_code = error.as_ref().map(|e| e.code.as_str());
        cx.trail.response_element("SyncTaskId", sync.sync_task_id.clone());
        cx.trail.response_element("ShadowInstanceId", shadow_instance_id);
        cx.trail.response_element("SyncStatus", if error.is_none() { "SyncSuccess" } else { "SyncFailure" });

        let report = SyncReport {
            sync_task_id: sync.sync_task_id.clone(),
            at,
            error_code: error_code.unwrap_or_default().to_owned(),
        };
        let primary = key.with_meta(|m| {
            if let Some(t) = m.replicas.iter_mut().find(|t| t.shadow_instance_id == shadow_instance_id) {
                t.last_sync = Some(report);
            }
        });
        let mut copies = Vec::new();
        if let (None, Some(desired)) = (&error, desired) {
            let new_versions = desired
                .versions
                .iter()
                .filter(|v| existing.as_ref().is_none_or(|e| e.version(v.version_id).is_none()))
                .cloned()
                .collect();
            copies.push(Change::SaveKey { key: Arc::new(desired), new_versions });
        }
        let event = SystemEvent::key_synced(self.key_subject(&key.meta), &sync, error_code, at);
        copies.push(Change::Emit(Arc::new(event)));
        Synced { primary: Arc::new(primary), copies, gate, error }
    }
}

/// What the replica of `key` in `shadow_instance_id` should be: the primary's
/// metadata and versions, in the replica's region, with rotation left to the primary.
fn replica_copy(key: &Key, shadow_instance_id: &str, shadow_region: &str) -> Key {
    key.with_meta(|m| {
        m.region = shadow_region.to_owned();
        m.replica_of = m.instance_id.take();
        m.instance_id = Some(shadow_instance_id.to_owned());
        m.replicas.clear();
        m.rotation = RotationPolicy {
            automatic: AutomaticRotation::Disabled,
            interval_secs: None,
            last_rotation_date: m.rotation.last_rotation_date,
            next_rotation_date: None,
        };
    })
}

fn same_copy(existing: &Key, desired: &Key) -> bool {
    existing.meta == desired.meta
        && existing.versions.len() == desired.versions.len()
        && desired.versions.iter().all(|v| existing.version(v.version_id).is_some())
}
