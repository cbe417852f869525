//! The scheduler: does the engine's due work (see `engine::lifecycle`) as the
//! simulation clock passes it.
//!
//! Work runs in time order, one item at a time, each as an internal operation
//! at its own due time: its audit record and events carry the due time, not
//! the moment the clock was advanced past it. A background task follows real
//! time; AdvanceClock and SetClock run the work they made due before they
//! answer, so a client sees its effects at once. Both paths take the same
//! turn, so work is never done twice or out of order. At start the server
//! catches up on work that fell due while it was down.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use super::app::App;
use super::catalogue::OpSpec;
use super::execute::run_for_cost;
use crate::audit::{AuditRecord, PayloadSizes};
use crate::clock::SimTime;
use crate::context::CallContext;
use crate::engine::{Change, DueItem, DueTask, KmsError};

/// How long the background task waits before retrying after the store failed.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// The longest the background task sleeps without looking again, so a change
/// of the host's wall clock is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Due items done between two yields to the runtime: items that turn out to
/// be no longer due finish without awaiting anything, and a long run of them
/// must not hold a worker from other calls.
const ITEMS_PER_STEP: usize = 64;

pub struct Scheduler {
    turn: Mutex<()>,
    /// How long audit records are kept.
    audit_retention: Retention,
    /// How long system events are kept.
    event_retention: Retention,
    /// Set when the server is stopping: due work stops between items, and what
    /// is left stays due, to be found again from the stored state on the next start.
    stopping: watch::Sender<bool>,
}

/// The audit description of each kind of due work.
fn op_of(task: &DueTask) -> &'static OpSpec {
    match task {
        DueTask::DeleteKey { .. } => &OpSpec::ACTUAL_DELETION,
        DueTask::RotateKey { .. } => &OpSpec::SCHEDULED_ROTATION,
        DueTask::ExpireKeyMaterial { .. } => &OpSpec::MATERIAL_EXPIRY,
        DueTask::ExpireInstance { .. } => &OpSpec::INSTANCE_EXPIRY,
        DueTask::SyncKey { .. } => &OpSpec::KEY_SYNC,
        DueTask::ClientKeyReminder { .. } => &OpSpec::CLIENT_KEY_REMINDER,
        DueTask::DeleteSecret { .. } => &OpSpec::SECRET_DELETION,
        DueTask::RotateSecret { .. } => &OpSpec::SECRET_ROTATION,
    }
}

impl App {
    /// The failure injected on `item`'s work, if any: the fault's id and its error.
    pub fn task_fault(&self, item: &DueItem) -> Option<(String, KmsError)> {
        self.admission.task_fault(op_of(&item.task).fault_name, item.task.resource_id(), item.at)
    }
}

/// The records of one piece of due work done with `cx`: its own, and those of
/// the calls it made on the account's behalf.
pub(super) fn task_records(item: &DueItem, cx: &CallContext, error: Option<&KmsError>) -> Vec<AuditRecord> {
    let op = op_of(&item.task);
    let mut records = vec![AuditRecord::for_call(op, cx, item.task.audit_params(), PayloadSizes::default(), error)];
    records.extend(AuditRecord::nested_calls(op, cx));
    records
}

/// How long something stored is kept, in days of simulated time (`None`: for
/// ever), and where its last cut fell, so it is cut once per simulated day at most.
struct Retention {
    days: Option<u32>,
    cut_at: std::sync::Mutex<Option<SimTime>>,
}

impl Retention {
    fn new(days: Option<u32>) -> Retention {
        Retention { days, cut_at: std::sync::Mutex::new(None) }
    }

    /// Where to cut with the clock at `now`, if a simulated day has passed since the last cut.
    fn cutoff(&self, now: SimTime) -> Option<SimTime> {
        let cutoff = now.plus_days(-i64::from(self.days?));
        let last = *self.cut_at.lock().unwrap_or_else(|p| p.into_inner());
        let recent = last.is_some_and(|last| cutoff.millis() - last.millis() < SimTime::MS_PER_DAY);
        (!recent).then_some(cutoff)
    }

    fn cut(&self, cutoff: SimTime) {
        *self.cut_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(cutoff);
    }
}

impl Scheduler {
    pub fn new(audit_retention_days: Option<u32>, event_retention_days: Option<u32>) -> Scheduler {
        Scheduler {
            turn: Mutex::new(()),
            audit_retention: Retention::new(audit_retention_days),
            event_retention: Retention::new(event_retention_days),
            stopping: watch::Sender::new(false),
        }
    }

    /// Stops due work between items, for a prompt shutdown; a clock move in
    /// progress answers with the work done so far.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Turns true when the server begins to stop: what a stream that would otherwise stay open for ever (the
    /// console's live views) watches, so a shutdown does not wait out its grace period for it.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Does all work due by now, then applies audit retention. Returns false
    /// if the store refused a commit; the item that failed is back on the agenda.
    pub async fn run_due(&self, app: &Arc<App>) -> bool {
        let _turn = self.turn.lock().await;
        let mut done = 0usize;
        while let Some(item) = app.engine.agenda().pop_due(app.engine.clock().now()) {
            if self.is_stopping() {
                app.engine.agenda().push(item);
                return true;
            }
            if !perform(app, &item).await {
                app.engine.agenda().push(item);
                return false;
            }
            done += 1;
            if done.is_multiple_of(ITEMS_PER_STEP) {
                tokio::task::yield_now().await;
            }
        }
        self.prune_audit(app).await && self.prune_events(app).await
    }

    /// Drops system events older than their retention period, recorded as an
    /// internal PruneSystemEvents, so a clock run for decades keeps a bounded store.
    async fn prune_events(&self, app: &App) -> bool {
        let now = app.engine.clock().now();
        let Some(cutoff) = self.event_retention.cutoff(now) else { return true };
        match app.store.oldest_event_time().await {
            Ok(Some(oldest)) if oldest < cutoff => {}
            Ok(_) => return true,
            Err(e) => {
                tracing::error!(error = %e, "event retention could not read the events");
                return false;
            }
        }
        let cx = CallContext::internal(&app.region, app.engine.account_id(), now);
        let params = json!({ "Before": cutoff.to_rfc3339() });
        let record = AuditRecord::for_call(&OpSpec::EVENT_RETENTION, &cx, params, PayloadSizes::default(), None);
        match app.settle(vec![Change::PruneEvents { cutoff }], vec![record]).await {
            Ok(()) => {
                self.event_retention.cut(cutoff);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "event retention failed; will retry");
                false
            }
        }
    }

    /// Drops audit records older than the retention period, recorded as an
    /// internal PruneAuditEvents. The head is signed first so that the cut
    /// can fall on a signed digest, from which the rest still verifies.
    async fn prune_audit(&self, app: &App) -> bool {
        let now = app.engine.clock().now();
        let Some(cutoff) = self.audit_retention.cutoff(now) else { return true };
        match app.store.oldest_audit_time().await {
            Ok(Some(oldest)) if oldest < cutoff => {}
            Ok(_) => return true,
            Err(e) => {
                tracing::error!(error = %e, "audit retention could not read the trail");
                return false;
            }
        }
        let cx = CallContext::internal(&app.region, app.engine.account_id(), now);
        let params = json!({ "Before": cutoff.to_rfc3339() });
        let record = AuditRecord::for_call(&OpSpec::AUDIT_RETENTION, &cx, params, PayloadSizes::default(), None);
        let pruned = match app.store.sign_digest().await {
            Ok(_) => app.settle(vec![Change::PruneAudit { cutoff }], vec![record]).await,
            Err(e) => Err(e),
        };
        match pruned {
            Ok(()) => {
                self.audit_retention.cut(cutoff);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "audit retention failed; will retry");
                false
            }
        }
    }

    /// Follows real time until `shutdown` turns true.
    pub fn spawn(app: Arc<App>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let healthy = app.scheduler.run_due(&app).await;
                if app.scheduler.is_stopping() {
                    break;
                }
                let wait = match (healthy, app.engine.agenda().next_due()) {
                    (false, _) => RETRY_AFTER_FAILURE,
                    (true, None) => MAX_SLEEP,
                    (true, Some(at)) => {
                        let ms = at.millis().saturating_sub(app.engine.clock().now().millis()).max(0);
                        Duration::from_millis(ms.unsigned_abs()).min(MAX_SLEEP)
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = app.engine.agenda().changed() => {}
                    _ = shutdown.changed() => break,
                }
            }
        })
    }
}

/// Performs one item and records it; false if the store could not take it.
async fn perform(app: &Arc<App>, item: &DueItem) -> bool {
    let op = op_of(&item.task);
    let cx = Arc::new(CallContext::internal(&item.region, app.engine.account_id(), item.at));
    let work = {
        let (app, cx, item) = (app.clone(), cx.clone(), item.clone());
        async move {
            // The fault is drawn only if the task really runs.
            let fault = || {
                let (fault_id, error) = app.task_fault(&item)?;
                cx.trail.injected_fault(fault_id);
                Some(error)
            };
            app.engine.perform(&cx, &item, fault).await
        }
    };
    let Some(result) = run_for_cost(op.cost, work).await.unwrap_or_else(|| Some(Err(KmsError::internal()))) else {
        return true;
    };
    let (changes, gates, error) = match result {
        Ok(outcome) => (outcome.changes, outcome.gates, outcome.failed),
        Err(error) => (Vec::new(), Vec::new(), Some(error)),
    };
    let records = task_records(item, &cx, error.as_ref());
    let settled = app.settle(changes, records).await;
    drop(gates);
    match settled {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, task = ?item.task, "due work could not be recorded; will retry");
            false
        }
    }
}
