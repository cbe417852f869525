//! The one dispatcher every RPC goes through.
//!
//! It builds the [`CallContext`] (including the region the call picked with
//! `x-kms-region`), authenticates the caller ([`auth`](super::auth)), runs the
//! operation, checks the caller's permissions on what it touched, lets [`admission`](super::admission)
//! judge it (QPS quota, injected faults), builds the audit record from the
//! operation's [`OpSpec`], the context and the outcome, commits the
//! operation's changes and that record in one store transaction, applies the
//! changes to memory, counts the call in the metrics, and only then answers.
//! Success or failure, every call leaves exactly one record of its own, plus
//! one for each call it made on the caller's behalf (the Decrypt behind a
//! GetSecretValue); if the records cannot be stored, the call fails and its
//! change is not applied.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::sync::broadcast;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::admission::{Admission, Verdict};
use super::auth::Authenticator;
use super::params::AuditParams;
use super::scheduler::Scheduler;
use super::status::{REQUEST_ID_HEADER, to_status};
use crate::audit::trail::Trails;
use crate::audit::{AuditRecord, OpSpec, PayloadSizes, ServiceName};
use crate::context::{AuthMethod, CallContext, Principal, Stopwatch, Trail};
use crate::engine::instances::is_region_id;
use crate::engine::{Change, Engine, KmsError, KmsResult, Outcome};
use crate::events::webhook::Deliveries;
use crate::metrics::{CallSample, Metrics};
use crate::store::{Store, StoreError};

/// What every service handler can reach.
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
    pub auth: Authenticator,
    pub metrics: Arc<Metrics>,
    /// `Some` when records are committed in batches rather than call by call (the generator).
    pub batching: Option<Batching>,
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

/// A request extension, set only by in-process callers (the audit-data
/// generator): the latency to record for the call instead of measuring it.
#[derive(Debug, Clone, Copy)]
pub struct SimulatedLatency(pub Duration);

#[derive(Clone)]
pub struct Dispatcher {
    app: Arc<App>,
}

const MAX_REQUEST_ID_LEN: usize = 128;
/// The metadata a call names its region with.
pub const REGION_HEADER: &str = "x-kms-region";

impl Dispatcher {
    pub fn new(app: Arc<App>) -> Self {
        Dispatcher { app }
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Runs `operation` as the unary RPC described by `op`.
    pub async fn run<Req, Resp, F, Fut>(
        &self,
        op: &'static OpSpec,
        request: Request<Req>,
        operation: F,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message + AuditParams,
        Resp: Message,
        F: FnOnce(Arc<App>, Arc<CallContext>, Req) -> Fut,
        Fut: Future<Output = KmsResult<Outcome<Resp>>>,
    {
        self.run_as(op, request, operation, Message::encoded_len).await
    }

    /// Runs `operation`, which opens a server stream, as the RPC `op`: the
    /// record says the stream was opened (or refused), not what it carried.
    pub async fn run_stream<Req, S, F, Fut>(
        &self,
        op: &'static OpSpec,
        request: Request<Req>,
        operation: F,
    ) -> Result<Response<S>, Status>
    where
        Req: Message + AuditParams,
        F: FnOnce(Arc<App>, Arc<CallContext>, Req) -> Fut,
        Fut: Future<Output = KmsResult<Outcome<S>>>,
    {
        self.run_as(op, request, operation, |_| 0).await
    }

    async fn run_as<Req, Resp, F, Fut>(
        &self,
        op: &'static OpSpec,
        request: Request<Req>,
        operation: F,
        response_len: impl Fn(&Resp) -> usize,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message + AuditParams,
        F: FnOnce(Arc<App>, Arc<CallContext>, Req) -> Fut,
        Fut: Future<Output = KmsResult<Outcome<Resp>>>,
    {
        let (mut cx, bad_region) = self.context(&request);
        let auth = &self.app.auth;
        let authenticated =
            auth.authenticate(&self.app.engine, &request, &mut cx).and_then(|()| auth.admit_service(op, &cx));
        let refused = authenticated.err().or(bad_region);
        let ran = refused.is_none();
        let cx = Arc::new(cx);
        let request = request.into_inner();
        let request_parameters = request.audit_params();
        let request_bytes = request.encoded_len();

        let result = match refused {
            Some(error) => Err(error),
            None => operation(self.app.clone(), cx.clone(), request).await,
        };
        let (mut response, mut changes, gates, mut error) = match result {
            Ok(outcome) if outcome.failed.is_some() => (None, outcome.changes, outcome.gates, outcome.failed),
            Ok(outcome) => (Some(outcome.value), outcome.changes, outcome.gates, None),
            Err(error) => (None, Vec::new(), Vec::new(), Some(error)),
        };
        // Permission is judged on what the operation resolved, before anything
        // it did is committed; a denied call is not metered or faulted.
        let denied = if ran { auth.authorize(&self.app.engine, op, &cx, &request_parameters).err() } else { None };
        let verdict = match denied {
            Some(denied) => Verdict { error: Some(denied), ..Verdict::default() },
            None => self.app.admission.admit(&self.app.engine, op, &cx),
        };
        // A refused call did nothing: the calls it made on the caller's behalf are not recorded either.
        let nested = match verdict.error {
            Some(refusal) => {
                response = None;
                changes.clear();
                error = Some(refusal);
                Vec::new()
            }
            None => AuditRecord::nested_calls(op, &cx),
        };
        changes.extend(verdict.events.into_iter().map(Change::Emit));
        let sizes = PayloadSizes { request_bytes, response_bytes: response.as_ref().map_or(0, response_len) };
        let mut record = AuditRecord::for_call(op, &cx, request_parameters, sizes, error.as_ref());
        record.injected_fault = verdict.fault_id;
        let (http_status, instance_id) = (record.http_status, record.instance_id.clone());

        let mut records = vec![record];
        records.extend(nested);
        if let Err(e) = self.app.settle(changes, records).await {
            tracing::error!(error = %e, request_id = %cx.request_id, event = op.event_name, "call failed closed");
            return Err(to_status(&KmsError::internal(), &cx.request_id));
        }
        drop(gates);
        if !verdict.delay.is_zero() {
            tokio::time::sleep(verdict.delay).await;
        }
        if op.service == ServiceName::Kms {
            self.app.metrics.record(&CallSample {
                region: &cx.region,
                spec: verdict.spec,
                instance_id: &instance_id,
                event_name: op.event_name,
                http_status,
                latency: cx.started.elapsed(),
                at: cx.received_at,
            });
        }

        match (response, error) {
            (Some(body), _) => {
                let mut response = Response::new(body);
                if let Ok(value) = cx.request_id.parse() {
                    response.metadata_mut().insert(REQUEST_ID_HEADER, value);
                }
                Ok(response)
            }
            (None, Some(error)) => Err(to_status(&error, &cx.request_id)),
            (None, None) => Err(to_status(&KmsError::internal(), &cx.request_id)),
        }
    }

    /// The call's context before authentication, and the error it is refused
    /// with if its region is malformed (it is then audited in the server's region).
    fn context<T>(&self, request: &Request<T>) -> (CallContext, Option<KmsError>) {
        let metadata = request.metadata();
        let request_id = header(metadata, "x-request-id")
            .filter(|id| id.len() <= MAX_REQUEST_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or_else(|| crate::engine::crypto::new_uuid().to_string());
        let (region, refused) = match header(metadata, REGION_HEADER) {
            None => (self.app.region.clone(), None),
            Some(region) if is_region_id(&region) => (region, None),
            Some(_) => (
                self.app.region.clone(),
                Some(KmsError::invalid_because("RegionId", "Name a region such as cn-hangzhou in x-kms-region.")),
            ),
        };
        let cx = CallContext {
            request_id,
            region,
            account_id: self.app.engine.account_id().to_owned(),
            client: request.remote_addr(),
            user_agent: header(metadata, "user-agent").unwrap_or_default(),
            access_key_id: String::new(),
            principal: Principal::Account,
            authenticated_by: AuthMethod::None,
            received_at: self.app.engine.clock().now(),
            started: match request.extensions().get::<SimulatedLatency>() {
                Some(latency) => Stopwatch::Fixed(latency.0),
                None => Stopwatch::start(),
            },
            trail: Trail::default(),
        };
        (cx, refused)
    }
}

pub(super) fn header(metadata: &MetadataMap, name: &str) -> Option<String> {
    let value = metadata.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}
