//! What every call can reach: the engine, the store, the scheduler, admission,
//! identity, trails and metrics, and the one way state lands ([`App::settle`]:
//! commit the changes with their records, then apply them).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::admission::Admission;
use super::identity::Identity;
use super::scheduler::Scheduler;
use crate::audit::AuditRecord;
use crate::audit::trail::Trails;
use crate::engine::{Change, Engine};
use crate::events::webhook::Deliveries;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// What every call can reach.
pub struct App {
    pub engine: Arc<Engine>,
    pub store: Store,
    pub region: String,
    pub scheduler: Scheduler,
    pub deliveries: Arc<Deliveries>,
    /// Committed audit records, for TailAuditEvents.
    pub audit_tail: broadcast::Sender<Arc<AuditRecord>>,
    /// Files mirroring committed records.
    pub trails: Trails,
    pub admission: Admission,
    pub identity: Identity,
    pub metrics: Arc<Metrics>,
    /// `Some` when records are committed in batches rather than call by call (the generator).
    pub batching: Option<Batching>,
    /// The seed the server was started with, which a reset may return it to.
    pub seed: Option<crate::seed::SeedSource>,
}

/// Batched commits, for a caller that makes calls one after another and
/// answers no client: the audit-data generator. A call that changes nothing
/// but the trail has its records queued, and every `size` of them go to the
/// store in one transaction, submitted while later batches are being made
/// (up to [`BATCHES_IN_FLIGHT`] at once, so the two threads even out each
/// other's uneven batches instead of waiting on each one); a call with
/// changes first commits everything queued before it and then itself,
/// awaited and applied, so the next call sees its effect. Records reach the
/// store in call order either way. Not for concurrent callers.
pub struct Batching {
    size: usize,
    queued: std::sync::Mutex<Vec<AuditRecord>>,
    in_flight: std::sync::Mutex<std::collections::VecDeque<InFlight>>,
    /// Sees each record as it is queued or committed, in order.
    observer: Box<dyn Fn(&AuditRecord) + Send + Sync>,
}

/// Batches submitted and not yet seen committed.
const BATCHES_IN_FLIGHT: usize = 3;

/// A batch being committed, and its records if they are to be published once it is.
type InFlight = (std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>, Option<Vec<AuditRecord>>);

impl Batching {
    pub fn new(size: usize, observer: impl Fn(&AuditRecord) + Send + Sync + 'static) -> Batching {
        Batching {
            size: size.max(1),
            queued: std::sync::Mutex::default(),
            in_flight: std::sync::Mutex::default(),
            observer: Box::new(observer),
        }
    }
}

impl App {
    /// Commits `changes` with their audit `records`, then makes the changes
    /// visible: the one way any state change, a call's or the scheduler's, lands.
    pub async fn settle(&self, changes: Vec<Change>, records: Vec<AuditRecord>) -> Result<(), StoreError> {
        if let Some(batching) = &self.batching {
            records.iter().for_each(|r| (batching.observer)(r));
            if changes.is_empty() {
                let full = {
                    let mut queued = batching.queued.lock().unwrap_or_else(|p| p.into_inner());
                    queued.extend(records);
                    (queued.len() >= batching.size).then(|| std::mem::take(&mut *queued))
                };
                if let Some(batch) = full {
                    self.submit_batch(batching, batch).await?;
                }
                return Ok(());
            }
            // A change must be in memory before the next call runs, and its record after those queued before it.
            self.flush().await?;
        }
        self.store.commit(changes.clone(), &records).await?;
        self.engine.apply(changes);
        self.publish(records);
        Ok(())
    }

    /// With batching, commits every queued record and waits for it; otherwise does nothing.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let Some(batching) = &self.batching else { return Ok(()) };
        let batch = std::mem::take(&mut *batching.queued.lock().unwrap_or_else(|p| p.into_inner()));
        if !batch.is_empty() {
            self.submit_batch(batching, batch).await?;
        }
        self.await_in_flight(batching, 0).await
    }

    /// Queues `batch` behind the batches in flight, first waiting for the
    /// oldest if there are already [`BATCHES_IN_FLIGHT`].
    async fn submit_batch(&self, batching: &Batching, batch: Vec<AuditRecord>) -> Result<(), StoreError> {
        self.await_in_flight(batching, BATCHES_IN_FLIGHT - 1).await?;
        let committing = Box::pin(self.store.submit(Vec::new(), &batch)?);
        // Kept only for someone to publish them to; freed now otherwise, while still in cache.
        let batch = self.publishing().then_some(batch);
        batching.in_flight.lock().unwrap_or_else(|p| p.into_inner()).push_back((committing, batch));
        Ok(())
    }

    /// Waits for the oldest batches in flight, in order, until at most `left` remain.
    async fn await_in_flight(&self, batching: &Batching, left: usize) -> Result<(), StoreError> {
        loop {
            let oldest = {
                let mut in_flight = batching.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                if in_flight.len() <= left {
                    return Ok(());
                }
                in_flight.pop_front()
            };
            if let Some((committing, batch)) = oldest {
                committing.await?;
                self.publish(batch.unwrap_or_default());
            }
        }
    }

    /// Whether anyone takes committed records: a TailAuditEvents stream or a trail.
    fn publishing(&self) -> bool {
        self.audit_tail.receiver_count() > 0 || !self.trails.is_empty()
    }

    /// Hands committed records to the trails and to TailAuditEvents, if
    /// anyone tails them or a trail mirrors them. The store took only their
    /// encoding, so these are the records themselves, not copies.
    fn publish(&self, records: Vec<AuditRecord>) {
        if !self.publishing() {
            return;
        }
        let committed: Vec<Arc<AuditRecord>> = records.into_iter().map(Arc::new).collect();
        self.trails.mirror(&committed);
        if self.audit_tail.receiver_count() > 0 {
            for record in committed {
                let _ = self.audit_tail.send(record);
            }
        }
    }
}
