//! Work that falls due with time rather than on request: actual deletion at the
//! end of a key's pending window, automatic rotation, expiry of imported
//! material, expiry of KMS instances, and key syncs to replica instances.
//!
//! The [`Agenda`] is a time-ordered queue of [`DueItem`]s. Whenever a change
//! is applied, the resources it touched put their next due dates on the agenda
//! ([`Engine::apply`] calls [`Engine::schedule_key`]); the scheduler pops items
//! as the clock passes them and asks [`Engine::perform`] to do each one at its
//! own due time. An item is only a reminder: `perform` checks it against the
//! resource's current state and ignores it if the work is no longer due (a
//! cancelled deletion, a rotation already done), so stale items are harmless.
//!
//! Other kinds of due work join by adding a [`DueTask`] variant, pushing it when
//! the state that makes it due is applied, and handling it in `perform`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use zeroize::Zeroizing;

use super::error::{KmsError, KmsResult};
use super::key::{AutomaticRotation, Key, KeyMeta, KeyState, KeyVersion};
use super::versions::Rotation;
use super::{Change, Engine, Outcome, read_lock};
use crate::clock::SimTime;
use crate::context::CallContext;
use crate::events::{Subject, SystemEvent};

/// One piece of due work.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DueTask {
    /// The key's pending-deletion window ends: destroy it.
    DeleteKey { key_id: String },
    /// The key's next automatic rotation date has come.
    RotateKey { key_id: String },
    /// The key's imported material expires.
    ExpireKeyMaterial { key_id: String },
    /// A KMS instance reaches its expiry date: its keys turn Unavailable.
    ExpireInstance { instance_id: String },
    /// A key is copied to its replica in `shadow_instance_id`; `forced` when SyncKey asked for it.
    SyncKey { key_id: String, shadow_instance_id: String, forced: bool },
    /// A ClientKey expires in `days` days: `Instance:ClientKey:ExpireReminder`.
    ClientKeyReminder { client_key_id: String, days: u32 },
    /// A secret's recovery window ends: delete it.
    DeleteSecret { secret_name: String },
    /// A secret's next automatic rotation date has come.
    RotateSecret { secret_name: String },
}

impl DueTask {
    /// The resource the work is about.
    pub fn resource_id(&self) -> &str {
        match self {
            DueTask::DeleteKey { key_id }
            | DueTask::RotateKey { key_id }
            | DueTask::ExpireKeyMaterial { key_id }
            | DueTask::SyncKey { key_id, .. } => key_id,
            DueTask::ExpireInstance { instance_id } => instance_id,
            DueTask::ClientKeyReminder { client_key_id, .. } => client_key_id,
            DueTask::DeleteSecret { secret_name } | DueTask::RotateSecret { secret_name } => secret_name,
        }
    }

    /// The request parameters the work's audit record shows.
    pub fn audit_params(&self) -> serde_json::Value {
        match self {
            DueTask::ExpireInstance { instance_id } => serde_json::json!({ "KmsInstanceId": instance_id }),
            DueTask::SyncKey { key_id, shadow_instance_id, .. } => {
                serde_json::json!({ "KeyId": key_id, "ShadowInstanceId": shadow_instance_id })
            }
            DueTask::ClientKeyReminder { client_key_id, days } => {
                serde_json::json!({ "ClientKeyId": client_key_id, "DaysToExpire": days })
            }
            DueTask::DeleteSecret { secret_name } | DueTask::RotateSecret { secret_name } => {
                serde_json::json!({ "SecretName": secret_name })
            }
            _ => serde_json::json!({ "KeyId": self.resource_id() }),
        }
    }
}

/// How far behind the clock periodic work (rotations, sync ticks) is still
/// done one occurrence at a time. A year and a day, so that moving the clock a
/// year shows every rotation of the year; a move further than that coalesces
/// the occurrences older than this into the first one, done at its due time,
/// as a service back from downtime does its overdue work once, and its record
/// says how many it stands for. So the work a clock move makes is bounded by
/// the resources and their intervals, however far the clock goes.
pub const CATCH_UP_DAYS: i64 = 366;

/// When work recurring every `interval_secs`, done at `at`, falls due next
/// with the clock at `now`, and how many occurrences that passes over (folded
/// into the one done at `at`): none unless `at` is older than the catch-up
/// horizon.
pub fn next_occurrence(at: SimTime, interval_secs: u64, now: SimTime) -> (SimTime, u64) {
    let interval_ms = i64::try_from(interval_secs).unwrap_or(i64::MAX).saturating_mul(1000).max(1);
    let next = SimTime(at.0.saturating_add(interval_ms));
    let horizon = now.plus_days(-CATCH_UP_DAYS);
    if next >= horizon {
        return (next, 0);
    }
    // The first occurrence at or after the horizon: at + k·interval, k ≥ 2 here.
    let gap = horizon.0 - at.0;
    let k = gap / interval_ms + i64::from(gap % interval_ms != 0);
    (SimTime(at.0.saturating_add(k.saturating_mul(interval_ms))), u64::try_from(k - 1).unwrap_or(0))
}

/// A task and when it is due; ordered by time first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DueItem {
    pub at: SimTime,
    /// The region of the resource, which the work's audit record carries.
    pub region: String,
    pub task: DueTask,
}

/// The time-ordered queue of due work.
#[derive(Default)]
pub struct Agenda {
    queue: Mutex<Queue>,
    /// Woken whenever an item is added or the clock jumps, so a waiting scheduler looks again.
    changed: Notify,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<DueItem>>,
    /// Items already in the heap, so re-saving a resource does not queue its work twice.
    queued: HashSet<DueItem>,
}

impl Agenda {
    pub fn push(&self, item: DueItem) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.queued.insert(item.clone()) {
            queue.heap.push(Reverse(item));
            drop(queue);
            self.changed.notify_one();
        }
    }

    /// The earliest item, if it is due at `now`.
    pub fn pop_due(&self, now: SimTime) -> Option<DueItem> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.heap.peek().is_none_or(|Reverse(item)| item.at > now) {
            return None;
        }
        let Reverse(item) = queue.heap.pop()?;
        queue.queued.remove(&item);
        Some(item)
    }

    pub fn next_due(&self) -> Option<SimTime> {
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.heap.peek().map(|Reverse(item)| item.at)
    }

    /// Completes when the agenda or the clock changes after this was called.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    pub fn clock_moved(&self) {
        self.changed.notify_one();
    }
}

impl Engine {
    /// Puts a key's upcoming work on the agenda.
    pub(super) fn schedule_key(&self, meta: &KeyMeta) {
        let region = &meta.region;
        let item = |at: SimTime, task: DueTask| DueItem { at, region: region.clone(), task };
        let key_id = || meta.key_id.clone();
        if let (KeyState::PendingDeletion, Some(at)) = (meta.state, meta.delete_date) {
            self.agenda.push(item(at, DueTask::DeleteKey { key_id: key_id() }));
        }
        if let (AutomaticRotation::Enabled, Some(at)) = (meta.rotation.automatic, meta.rotation.next_rotation_date) {
            self.agenda.push(item(at, DueTask::RotateKey { key_id: key_id() }));
        }
        if let Some(at) = meta.import.as_ref().and_then(|import| import.expires) {
            self.agenda.push(item(at, DueTask::ExpireKeyMaterial { key_id: key_id() }));
        }
        // A key saved into an instance that has already expired (created in the
        // instant of its expiry) is caught by running the expiry again.
        let instance = meta.instance_id.as_deref().and_then(|id| self.instance(id));
        if let Some(instance) = instance.filter(|i| i.expired && meta.state != KeyState::Unavailable) {
            let task = DueTask::ExpireInstance { instance_id: instance.instance_id.clone() };
            self.agenda.push(DueItem { at: self.clock.now(), region: instance.region.clone(), task });
        }
        self.schedule_syncs(meta);
    }

    pub fn agenda(&self) -> &Agenda {
        &self.agenda
    }

    /// Does `item`'s work with `cx` (an internal context at the item's due
    /// time); `None` when the work is no longer due. `fault` draws the
    /// failure injected on the work, if any, when the work really runs; only
    /// key syncs and secret rotations can be made to fail.
    pub async fn perform(
        &self,
        cx: &CallContext,
        item: &DueItem,
        fault: impl FnOnce() -> Option<KmsError>,
    ) -> Option<KmsResult<Outcome<()>>> {
        match &item.task {
            DueTask::ExpireInstance { instance_id } => return self.expire_instance(cx, instance_id).await.map(Ok),
            DueTask::SyncKey { key_id, shadow_instance_id, forced } => {
                return self.sync_replica(cx, item, (key_id, shadow_instance_id, *forced), fault).await.map(Ok);
            }
            DueTask::ClientKeyReminder { client_key_id, days } => {
                return self.remind_client_key(item, client_key_id, *days).map(Ok);
            }
            DueTask::DeleteSecret { .. } | DueTask::RotateSecret { .. } => {
                return self.perform_secret(cx, item, |_| fault()).await;
            }
            DueTask::DeleteKey { .. } | DueTask::RotateKey { .. } | DueTask::ExpireKeyMaterial { .. } => {}
        }
        let slot = self.slot(&item.region, item.task.resource_id())?;
        if let DueTask::RotateKey { key_id } = &item.task
            && slot.snapshot().meta.multi_region.is_some()
        {
            // The replicas take the primary's new version, under all the copies' gates.
            return self
                .rotate_multi_region_when_due(cx, &item.region, key_id, item.at, |key| rotation_due(key, item.at))
                .await;
        }
        let gate = slot.gate.clone().lock_owned().await;
        let key = slot.snapshot();
        let still_due = match &item.task {
            DueTask::DeleteKey { .. } => {
                key.meta.state == KeyState::PendingDeletion && key.meta.delete_date == Some(item.at)
            }
            // A key that is not Enabled when its rotation falls due rotates when it is enabled again.
            DueTask::RotateKey { .. } => rotation_due(&key, item.at),
            DueTask::ExpireKeyMaterial { .. } => {
                key.has_material() && key.meta.import.as_ref().and_then(|i| i.expires) == Some(item.at)
            }
            _ => false,
        };
        if !still_due {
            return None;
        }
        cx.trail.key(&key.meta);
        Some(match &item.task {
            DueTask::DeleteKey { .. } => Ok(self.destroy_key(cx, &key, item.at).gated(gate)),
            DueTask::RotateKey { .. } => self
                .new_primary_version(cx, &key, item.at, Rotation::Scheduled)
                .map(|(_, change)| Outcome::write((), vec![change], vec![gate])),
            DueTask::ExpireKeyMaterial { .. } => Ok(expire_material(&key).gated(gate)),
            _ => return None,
        })
    }

    /// The end of the pending window: the key, its material and its aliases go.
    fn destroy_key(&self, cx: &CallContext, key: &Key, at: SimTime) -> Outcome<()> {
        let meta = &key.meta;
        let mut changes: Vec<Change> = read_lock(&self.aliases)
            .values()
            .filter(|alias| alias.key_id == meta.key_id && alias.region == meta.region)
            .map(|alias| Change::RemoveAlias { region: alias.region.clone(), alias_name: alias.alias_name.clone() })
            .collect();
        changes.push(Change::DeleteKey { region: meta.region.clone(), key_id: meta.key_id.clone() });
        changes.push(Change::Emit(Arc::new(SystemEvent::key_deleted(self.key_subject(meta), at))));
        cx.trail.response_element("DeleteDate", at.to_rfc3339());
        Outcome::write((), changes, Vec::new())
    }

    /// Who a key event is about.
    pub(super) fn key_subject<'a>(&'a self, meta: &'a KeyMeta) -> Subject<'a> {
        Subject {
            account_id: &self.account_id,
            region: &meta.region,
            resource_arn: meta.arn(),
            instance_name: meta.key_id.clone(),
            event_resource: meta.key_id.clone(),
        }
    }
}

/// Whether the scheduled rotation of `key` at `at` is still to be done.
fn rotation_due(key: &Key, at: SimTime) -> bool {
    key.meta.state == KeyState::Enabled
        && key.meta.rotation.automatic == AutomaticRotation::Enabled
        && key.meta.rotation.next_rotation_date == Some(at)
}

/// Imported material that expires is destroyed; the key waits for an import
/// again, unless it is already on its way out.
fn expire_material(key: &Key) -> Outcome<()> {
    let (next, emptied) = without_material(key);
    let next = next.with_meta(|m| {
        if m.state != KeyState::PendingDeletion {
            m.state = KeyState::PendingImport;
        }
    });
    Outcome::write(
        (),
        vec![Change::SaveKey { key: Arc::new(next), new_versions: emptied.into_iter().collect() }],
        Vec::new(),
    )
}

/// The key with its imported material wiped; the version keeps its id so the
/// same material can come back and old ciphertext opens again.
pub(super) fn without_material(key: &Key) -> (Key, Option<Arc<KeyVersion>>) {
    let mut next = key.clone();
    let emptied = key
        .primary()
        .map(|primary| Arc::new(KeyVersion::new(primary.version_id, primary.created, Zeroizing::new(Vec::new()))));
    next.versions = emptied.iter().cloned().collect();
    (next, emptied)
}

impl<T> Outcome<T> {
    pub(super) fn gated(mut self, gate: super::Gate) -> Self {
        self.gates.push(gate);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(at: i64, key: &str) -> DueItem {
        DueItem { at: SimTime(at), region: "r".into(), task: DueTask::RotateKey { key_id: key.into() } }
    }

    #[test]
    fn periodic_work_far_behind_the_clock_is_coalesced_up_to_the_horizon() {
        let day = SimTime::MS_PER_DAY;
        let start = SimTime(0);
        // Within the horizon: the next occurrence, nothing passed over.
        assert_eq!(next_occurrence(start, 86_400, SimTime(300 * day)), (SimTime(day), 0));
        // Ten years behind with a daily interval: the next is the first one within the last 366 days.
        let now = SimTime(3650 * day);
        let (next, passed) = next_occurrence(start, 86_400, now);
        assert_eq!(next, now.plus_days(-CATCH_UP_DAYS));
        assert_eq!(passed, (3650 - 366 - 1) as u64);
        // An interval that does not divide the gap lands on its own grid, at or after the horizon.
        let (next, _) = next_occurrence(start, 7 * 86_400, now);
        assert!(next >= now.plus_days(-CATCH_UP_DAYS) && next.0 % (7 * day) == 0, "{next:?}");
    }

    #[test]
    fn the_agenda_hands_out_due_items_in_time_order_once_each() {
        let agenda = Agenda::default();
        agenda.push(item(30, "c"));
        agenda.push(item(10, "a"));
        agenda.push(item(20, "b"));
        agenda.push(item(10, "a"));
        assert_eq!(agenda.next_due(), Some(SimTime(10)));
        assert_eq!(agenda.pop_due(SimTime(5)), None);
        let due: Vec<_> = std::iter::from_fn(|| agenda.pop_due(SimTime(25))).map(|i| i.at.millis()).collect();
        assert_eq!(due, [10, 20], "the duplicate was queued once, and 30 is not due yet");
        assert_eq!(agenda.next_due(), Some(SimTime(30)));
    }
}
