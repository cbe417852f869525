//! The one path every call takes, whichever front end it came through.
//!
//! [`App::execute`] makes the call's [`CallContext`] from its [`CallMeta`],
//! authenticates the caller ([`identity`](super::identity)), authorizes what
//! the call names when it names everything up front, runs the operation
//! (on the blocking pool if it may generate keys), authorizes what it
//! touched, lets [`admission`](super::admission) judge it (QPS quota,
//! injected faults), has the front end render the answer (so the record
//! holds the size the client receives), builds the audit record from the
//! operation's catalogue entry, the context and the outcome, commits the
//! operation's changes and that record in one store transaction, applies
//! the changes, does the work that may only follow a commit, counts the call
//! in the metrics, and only then answers. Success or failure, every call
//! leaves exactly one record of its own, plus one for each call it made on
//! the caller's behalf (the Decrypt behind a GetSecretValue); if the records
//! cannot be stored, the call fails and its change is not applied.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use super::admission::Verdict;
use super::app::App;
use super::catalogue::{Cost, OpSpec};
use super::meta::CallMeta;
use super::operation::{AfterCommit, Names, Operation, Ran};
use crate::audit::{AuditRecord, PayloadSizes};
use crate::context::{AuthMethod, CallContext, Principal, Stopwatch, Trail};
use crate::engine::{Change, ErrorCode, KmsError, KmsResult, Outcome};
use crate::metrics::CallSample;

/// What an operation did, apart from its output.
#[derive(Default)]
struct Done {
    changes: Vec<Change>,
    gates: Vec<crate::engine::Gate>,
    error: Option<KmsError>,
    after_commit: Vec<AfterCommit>,
}

/// How a call ended: what its front end renders, and the id it answers under.
#[derive(Debug)]
pub struct Answer<R> {
    pub request_id: String,
    pub result: Result<R, KmsError>,
}

/// A request that never became an operation (its body could not be decoded,
/// it named no operation this front end offers): audited as the operation it
/// was addressed to, refused with the front end's reason.
pub struct Undecoded {
    pub spec: &'static OpSpec,
    /// What could be told of the request, for its record (the method it named).
    pub params: Value,
}

impl Operation for Undecoded {
    type Output = ();

    fn spec(&self) -> &'static OpSpec {
        self.spec
    }

    fn audit_params(&self) -> Value {
        self.params.clone()
    }

    fn names(&self) -> Names {
        Names::found_while_running()
    }

    /// Never reached: the front end refuses an undecoded call in its [`CallMeta`].
    async fn run(self, _app: Arc<App>, _cx: Arc<CallContext>) -> KmsResult<Ran<()>> {
        Err(KmsError::invalid("Body"))
    }
}

impl App {
    /// Runs `operation` for the call `meta` describes and answers it, with
    /// `render` turning its output into the front end's response and that
    /// response's size in bytes.
    ///
    /// Only what touches the operation's own types is generic here; the rest
    /// is in [`App::admit_call`] and [`App::conclude`], made once for all.
    pub async fn execute<O: Operation, R>(
        self: &Arc<App>,
        meta: CallMeta,
        operation: O,
        render: impl FnOnce(O::Output) -> (R, u64),
    ) -> Answer<R> {
        let spec = operation.spec();
        // What a call names matters only to permissions; with auth off nothing is judged.
        let judged = self.identity.judges_permissions() || meta.served_by_instance.is_some();
        let names = if judged { operation.names() } else { Names::default() };
        let mut request_parameters = operation.audit_params();
        let (cx, refused, request_bytes) = self.admit_call(meta, spec, &names);
        if let (Value::Object(params), given @ 1..) = (&mut request_parameters, cx.grant_tokens) {
            params.insert("GrantTokens".to_owned(), Value::from(given));
        }
        let ran = refused.is_none();
        let cx = Arc::new(cx);
        let result = match refused {
            Some(refused) => Err(refused),
            None => run_for_cost(spec.cost, operation.run(self.clone(), cx.clone()))
                .await
                .unwrap_or_else(|| Err(KmsError::internal())),
        };
        let (output, done) = match result {
            Ok(Ran { outcome, after_commit }) => {
                let Outcome { value, changes, gates, failed } = outcome;
                let output = failed.is_none().then_some(value);
                (output, Done { changes, gates, error: failed, after_commit })
            }
            Err(error) => (None, Done { error: Some(error), ..Done::default() }),
        };
        let verdict = self.judge(spec, &cx, &names, ran);
        // A refused call did nothing: no answer, no change, no work to follow.
        let rendered = if verdict.error.is_none() { output.map(render) } else { None };
        let response_bytes = rendered.as_ref().map_or(0, |(_, bytes)| *bytes);
        let sizes = PayloadSizes { request_bytes, response_bytes };
        let request_id = cx.request_id.clone();
        let result = match (self.conclude(spec, cx, request_parameters, sizes, done, verdict).await, rendered) {
            (Err(error), _) => Err(error),
            (Ok(()), Some((response, _))) => Ok(response),
            (Ok(()), None) => Err(KmsError::internal()),
        };
        Answer { request_id, result }
    }

    /// The call's context from its metadata, and the error it is refused with
    /// before it runs, if it is: by authentication, which needs no resource,
    /// ahead of what the front end itself found wrong; then by a grant token
    /// this server did not issue; then by permission on what the call names.
    /// Also the request's size, for its record.
    fn admit_call(&self, meta: CallMeta, spec: &OpSpec, names: &Names) -> (CallContext, Option<KmsError>, u64) {
        let CallMeta {
            request_id,
            client_request_id,
            peer,
            user_agent,
            endpoint,
            aws_account_id,
            region,
            frontend,
            credential,
            simulated_latency,
            request_bytes,
            called_as,
            wire_error,
            refusal,
            grant_tokens,
            served_by_instance,
        } = meta;
        let mut cx = CallContext {
            request_id,
            client_request_id,
            region,
            account_id: self.engine.account_id().to_owned(),
            client: peer,
            user_agent,
            endpoint,
            frontend,
            aws_account_id,
            access_key_id: String::new(),
            principal: Principal::Account,
            authenticated_by: AuthMethod::None,
            received_at: self.engine.clock().now(),
            started: simulated_latency.map_or_else(Stopwatch::start, Stopwatch::Fixed),
            called_as,
            wire_error,
            grant_tokens: grant_tokens.len(),
            served_by_instance,
            trail: Trail::default(),
        };
        if let Some(instance_id) = cx.served_by_instance.as_deref().filter(|id| !id.is_empty()) {
            cx.trail.served_by(instance_id);
        }
        let identity = &self.identity;
        let refused = identity
            .authenticate(&self.engine, credential, &mut cx)
            .and_then(|()| identity.admit_service(spec, &cx))
            .err()
            .or(refusal)
            .or_else(|| self.engine.check_grant_tokens(&grant_tokens).err())
            .or_else(|| {
                let (key, secret) = (names.key.as_deref(), names.secret.as_deref());
                let outside = self.outside_instance(&cx, key, secret)?;
                // The record names what was asked for, and the instance that did not have it.
                self.engine.note_named(&cx, key, secret);
                cx.served_by_instance.as_deref().inspect(|id| cx.trail.served_by(id));
                Some(outside)
            })
            .or_else(|| {
                let forbidden = identity.preauthorize(&self.engine, spec, &cx, names).err()?;
                self.engine.note_named(&cx, names.key.as_deref(), names.secret.as_deref());
                Some(forbidden)
            });
        (cx, refused, request_bytes)
    }

    /// A call that ran is judged on what it resolved, before anything it did
    /// is committed, then admitted; a denied call is not metered or faulted,
    /// and one refused before it ran did nothing to count.
    fn judge(&self, spec: &OpSpec, cx: &CallContext, names: &Names, ran: bool) -> Verdict {
        let judged = ran.then(|| match self.outside_instance_resolved(cx) {
            Some(outside) => Err(outside),
            None => self.identity.authorize(&self.engine, spec, cx, names),
        });
        match judged {
            Some(Err(denied)) => Verdict { error: Some(denied), ..Verdict::default() },
            Some(Ok(())) => self.admission.admit(&self.engine, spec, cx),
            None => Verdict::default(),
        }
    }

    /// For a call served by an instance: `Forbidden.KeyNotFound` (or
    /// `Forbidden.ResourceNotFound` for a secret) when what it names lives
    /// elsewhere, as an instance knows nothing of other instances' keys. What
    /// does not exist is left to the operation to refuse.
    fn outside_instance(&self, cx: &CallContext, key: Option<&str>, secret: Option<&str>) -> Option<KmsError> {
        let serving = cx.served_by_instance.as_deref().filter(|s| !s.is_empty())?;
        let (found, is_secret) = match (key, secret) {
            (Some(key), _) => (self.engine.instance_of_key(cx, key)?, false),
            (None, Some(secret)) => (self.engine.instance_of_secret(cx, secret)?, true),
            (None, None) => return None,
        };
        (found.as_deref() != Some(serving)).then(|| outside_error(is_secret))
    }

    /// The same, on what the call resolved as it ran (the key inside a ciphertext).
    fn outside_instance_resolved(&self, cx: &CallContext) -> Option<KmsError> {
        let serving = cx.served_by_instance.as_deref().filter(|s| !s.is_empty())?;
        let facts = cx.trail.snapshot();
        let touched = !facts.key_id.is_empty() || !facts.secret_name.is_empty();
        (touched && facts.instance_id.as_deref() != Some(serving)).then(|| outside_error(!facts.secret_name.is_empty()))
    }

    /// Records the call and what it did, commits both, applies the changes
    /// and does the work that follows them, then counts the call: the error
    /// it answers with, if any.
    async fn conclude(
        self: &Arc<App>,
        spec: &'static OpSpec,
        cx: Arc<CallContext>,
        request_parameters: Value,
        sizes: PayloadSizes,
        done: Done,
        verdict: Verdict,
    ) -> Result<(), KmsError> {
        let Done { mut changes, gates, mut error, mut after_commit } = done;
        // A refused call did nothing: the calls it made on the caller's behalf, and the
        // due work it did itself, are not recorded either.
        let nested = match verdict.error {
            Some(refusal) => {
                changes.clear();
                after_commit.clear();
                error = Some(refusal);
                Vec::new()
            }
            None => {
                let mut nested = AuditRecord::nested_calls(spec, &cx);
                for task in cx.trail.snapshot().tasks {
                    nested.extend(super::scheduler::task_records(&task.item, &task.cx, task.error.as_ref()));
                }
                nested
            }
        };
        changes.extend(verdict.events.into_iter().map(Change::Emit));
        let mut record = AuditRecord::for_call(spec, &cx, request_parameters, sizes, error.as_ref());
        if verdict.fault_id.is_some() {
            record.injected_fault = verdict.fault_id;
        }
        let (http_status, instance_id) = (record.http_status, record.instance_id.clone());

        let mut records = vec![record];
        records.extend(nested);
        if let Err(e) = self.settle(changes, records).await {
            tracing::error!(error = %e, request_id = %cx.request_id, frontend = cx.frontend, event = spec.event_name, "call failed closed");
            return Err(KmsError::internal());
        }
        drop(gates);
        for work in after_commit {
            self.after_commit(work).await;
        }
        if !verdict.delay.is_zero() {
            tokio::time::sleep(verdict.delay).await;
        }
        if spec.service == super::catalogue::ServiceName::Kms {
            self.metrics.record(&CallSample {
                region: &cx.region,
                spec: verdict.spec,
                instance_id: &instance_id,
                event_name: spec.event_name,
                http_status,
                latency: cx.started.elapsed(),
                at: cx.received_at,
            });
        }
        error.map_or(Ok(()), Err)
    }

    /// Work a committed call left to follow it.
    async fn after_commit(self: &Arc<App>, work: AfterCommit) {
        match work {
            AfterCommit::InstallFaults(faults) => faults.into_iter().for_each(|fault| self.admission.install(fault)),
            AfterCommit::ClearFaults(fault_id) => self.admission.clear(fault_id.as_deref()),
            AfterCommit::SelectEvents { trail, selectors } => trail.set_selectors(selectors),
            AfterCommit::RunDueWork => {
                self.scheduler.run_due(self).await;
            }
        }
    }
}

/// Runs `work` where its cost says: on the async worker, or, for work that may
/// generate keys, on the blocking pool, so it never stalls the calls that
/// share a worker with it. `None` if the work panicked.
pub async fn run_for_cost<T: Send + 'static>(cost: Cost, work: impl Future<Output = T> + Send + 'static) -> Option<T> {
    match cost {
        Cost::Light => Some(work.await),
        Cost::GeneratesKeys => {
            // Boxed so the blocking path is made once per output type, not once per operation.
            let work: std::pin::Pin<Box<dyn Future<Output = T> + Send>> = Box::pin(work);
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || runtime.block_on(work)).await.ok()
        }
    }
}

fn outside_error(is_secret: bool) -> KmsError {
    if is_secret { ErrorCode::ResourceNotFound.into() } else { ErrorCode::KeyNotFound.into() }
}
