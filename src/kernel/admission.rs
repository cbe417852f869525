//! Admission: whether a call may have its answer. Two things can refuse it:
//! its KMS instance's QPS quota (`Rejected.Throttling`, with the
//! `Instance:QPS:Reminder` event as the instance nears it) and an injected
//! fault.
//!
//! Admission is decided once the operation has resolved the key it works on,
//! because only then is the instance known (a Decrypt names its key only
//! inside the ciphertext), and before anything the operation changed is
//! committed: a refused call changes nothing and is audited as the failure
//! the client sees.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;

use super::catalogue::OpSpec;
use crate::clock::SimTime;
use crate::context::CallContext;
use crate::engine::{Engine, ErrorCode, Instance, KmsError, KmsResult};
use crate::events::{Subject, SystemEvent};
use crate::glob::glob_match;

/// The share of its spec at which an instance raises `Instance:QPS:Reminder`.
pub const DEFAULT_REMINDER_RATIO: f64 = 0.9;
/// An instance raises the reminder at most once per simulated minute.
const REMINDER_EVERY_MS: i64 = 60_000;
/// The QPS window: one second.
const WINDOW_MS: i64 = 1000;

/// What admission decided about one call.
#[derive(Debug, Default)]
pub struct Verdict {
    /// The call fails with this instead of its own outcome.
    pub error: Option<KmsError>,
    /// The fault that hit the call, if one did.
    pub fault_id: Option<String>,
    /// Added before the answer.
    pub delay: Duration,
    /// Events to commit with the call's record.
    pub events: Vec<Arc<SystemEvent>>,
    /// The QPS spec of the instance the call counted against, for the metrics.
    pub spec: Option<u32>,
}

pub struct Admission {
    meters: Mutex<HashMap<String, Meter>>,
    reminder_ratio: f64,
    faults: Mutex<BTreeMap<String, Fault>>,
}

/// The calls an instance admitted in the last second of simulated time, which
/// follows real time except where the clock is advanced or (in the generator) manual.
#[derive(Default)]
struct Meter {
    admitted: VecDeque<SimTime>,
    last_reminder: Option<SimTime>,
}

/// An injected fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub fault_id: String,
    pub method: String,
    pub key_id: String,
    pub error: Option<ErrorCode>,
    pub delay: Duration,
    pub probability: f64,
    /// Hits left; `None` for unlimited.
    pub remaining: Option<u32>,
    pub expires: Option<SimTime>,
    pub hits: u64,
    created: u64,
}

/// InjectFault's parameters as the client gave them.
#[derive(Debug, Clone, Default)]
pub struct FaultSpec {
    pub method: String,
    pub key_id: String,
    pub error_code: String,
    pub delay_ms: u32,
    pub probability: f64,
    pub count: u32,
    pub expires: Option<SimTime>,
}

/// The longest delay a fault may add, so a typo cannot hang a client for a day.
const MAX_DELAY_MS: u32 = 300_000;

impl Fault {
    /// Same matching, effect, budget and expiry; id, age and hits aside.
    pub fn same_as(&self, other: &Fault) -> bool {
        (&self.method, &self.key_id, self.error, self.delay, self.probability, self.remaining, self.expires)
            == (
                &other.method,
                &other.key_id,
                other.error,
                other.delay,
                other.probability,
                other.remaining,
                other.expires,
            )
    }
}

impl Admission {
    pub fn new(reminder_ratio: f64) -> Admission {
        Admission { meters: Mutex::default(), reminder_ratio, faults: Mutex::default() }
    }

    /// Judges the operation `op` of `cx`, which has run and resolved its key (if any).
    pub fn admit(&self, engine: &Engine, op: &OpSpec, cx: &CallContext) -> Verdict {
        let (key_id, instance_id) = cx.trail.resource();
        let mut verdict = Verdict::default();
        if let Some(instance) = instance_id.and_then(|id| engine.instance(&id)) {
            verdict.spec = Some(instance.spec);
            self.meter(&instance, cx, &mut verdict);
            if verdict.error.is_some() {
                return verdict;
            }
        }
        // The catalogue says which operations a fault can break.
        if !op.fault_name.is_empty() {
            self.apply_fault(op.fault_name, &key_id, cx.received_at, &mut verdict);
        }
        verdict
    }

    /// The fault (if any) that breaks due work `operation` (`KeySync`,
    /// `SecretRotation`) on `resource` at `at`: its id and error.
    pub fn task_fault(&self, operation: &str, resource: &str, at: SimTime) -> Option<(String, KmsError)> {
        if operation.is_empty() {
            return None;
        }
        let mut verdict = Verdict::default();
        self.apply_fault(operation, resource, at, &mut verdict);
        Some((verdict.fault_id?, verdict.error?))
    }

    /// The calls `instance_id` admitted in the second up to `now`: the QPS it is using.
    pub fn calls_in_window(&self, instance_id: &str, now: SimTime) -> u64 {
        let meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
        let Some(meter) = meters.get(instance_id) else { return 0 };
        let recent = meter.admitted.iter().filter(|t| now.millis().saturating_sub(t.millis()) < WINDOW_MS).count();
        u64::try_from(recent).unwrap_or(u64::MAX)
    }

    fn meter(&self, instance: &Instance, cx: &CallContext, verdict: &mut Verdict) {
        let mut meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
        let meter = meters.entry(instance.instance_id.clone()).or_default();
        // Taken under the lock, so the window stays in time order however calls interleave.
        let now = cx.received_at;
        while meter.admitted.front().is_some_and(|t| now.millis().saturating_sub(t.millis()) >= WINDOW_MS) {
            meter.admitted.pop_front();
        }
        let spec = instance.spec as usize;
        if meter.admitted.len() >= spec {
            verdict.error = Some(ErrorCode::Throttling.into());
            return;
        }
        meter.admitted.push_back(now);
        let qps = meter.admitted.len();
        let threshold = (self.reminder_ratio * spec as f64).ceil().max(1.0) as usize;
        let quiet = meter.last_reminder.is_some_and(|last| cx.received_at.millis() - last.millis() < REMINDER_EVERY_MS);
        if qps >= threshold && !quiet {
            meter.last_reminder = Some(cx.received_at);
            let subject = Subject {
                account_id: &instance.account_id,
                region: &instance.region,
                resource_arn: instance.arn(),
                instance_name: instance.instance_name.clone(),
                event_resource: instance.instance_id.clone(),
            };
            let event =
                SystemEvent::qps_reminder(subject, &instance.instance_id, qps as u64, spec as u64, cx.received_at);
            verdict.events.push(Arc::new(event));
        }
    }

    fn apply_fault(&self, operation: &str, key_id: &str, now: SimTime, verdict: &mut Verdict) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        faults.retain(|_, f| f.expires.is_none_or(|at| now < at));
        let mut candidates: Vec<&mut Fault> = faults
            .values_mut()
            .filter(|f| glob_match(&f.method, operation) && (f.key_id == "*" || glob_match(&f.key_id, key_id)))
            .collect();
        // The oldest matching fault decides.
        candidates.sort_by_key(|f| f.created);
        let Some(fault) = candidates.into_iter().next() else { return };
        if fault.probability < 1.0 && !crate::engine::crypto::rng().random_bool(fault.probability) {
            return;
        }
        fault.hits += 1;
        verdict.fault_id = Some(fault.fault_id.clone());
        verdict.delay = fault.delay;
        verdict.error = fault.error.map(KmsError::new);
        let spent = fault.remaining.as_mut().is_some_and(|left| {
            *left -= 1;
            *left == 0
        });
        if spent {
            let id = fault.fault_id.clone();
            faults.remove(&id);
        }
    }

    /// The fault `spec` describes, checked and given its id, not yet in force.
    pub fn check_fault(spec: FaultSpec, now: SimTime) -> KmsResult<Fault> {
        let pattern = |text: String, param: &str| -> KmsResult<String> {
            match text.as_str() {
                "" => Ok("*".to_owned()),
                t if t.len() > 256 || t.chars().any(char::is_control) => Err(KmsError::invalid(param)),
                _ => Ok(text),
            }
        };
        let error = match spec.error_code.as_str() {
            "" => None,
            code => Some(ErrorCode::parse(code).ok_or_else(|| {
                KmsError::invalid_because("ErrorCode", "Name an error code of the reference, e.g. Rejected.Throttling.")
            })?),
        };
        if error.is_none() && spec.delay_ms == 0 {
            return Err(KmsError::invalid_because("ErrorCode", "A fault needs an error code, a delay, or both."));
        }
        if spec.delay_ms > MAX_DELAY_MS {
            return Err(KmsError::invalid_because("DelayMs", &format!("At most {MAX_DELAY_MS} ms.")));
        }
        let probability = if spec.probability == 0.0 { 1.0 } else { spec.probability };
        if !(probability > 0.0 && probability <= 1.0) {
            return Err(KmsError::invalid_because("Probability", "Give a probability above 0 and at most 1."));
        }
        if spec.expires.is_some_and(|at| at <= now) {
            return Err(KmsError::invalid_because("ExpireTime", "It must be in the future."));
        }
        Ok(Fault {
            fault_id: format!("fault-{}", &crate::engine::crypto::new_uuid().simple().to_string()[..12]),
            method: pattern(spec.method, "Method")?,
            key_id: pattern(spec.key_id, "KeyId")?,
            error,
            delay: Duration::from_millis(u64::from(spec.delay_ms)),
            probability,
            remaining: (spec.count > 0).then_some(spec.count),
            expires: spec.expires,
            hits: 0,
            created: 0,
        })
    }

    /// Puts a checked fault in force.
    pub fn install(&self, mut fault: Fault) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        fault.created = faults.values().map(|f| f.created + 1).max().unwrap_or(0);
        faults.insert(fault.fault_id.clone(), fault);
    }

    /// Whether a fault like `fault` (same matching, effect, budget and expiry) is in force.
    pub fn has_fault_like(&self, fault: &Fault) -> bool {
        let faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        faults.values().any(|f| f.same_as(fault))
    }

    /// The faults in force at `now`, oldest first.
    pub fn faults(&self, now: SimTime) -> Vec<Fault> {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        faults.retain(|_, f| f.expires.is_none_or(|at| now < at));
        let mut list: Vec<Fault> = faults.values().cloned().collect();
        list.sort_by_key(|f| f.created);
        list
    }

    /// How many faults clearing `fault_id` would remove: all of them when it
    /// is empty, else one (`Forbidden.ResourceNotFound` if there is none such).
    pub fn to_clear(&self, fault_id: &str) -> KmsResult<u32> {
        let faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        match fault_id {
            "" => Ok(u32::try_from(faults.len()).unwrap_or(u32::MAX)),
            id if faults.contains_key(id) => Ok(1),
            _ => Err(ErrorCode::ResourceNotFound.into()),
        }
    }

    /// Removes one fault, or all of them with `None`.
    pub fn clear(&self, fault_id: Option<&str>) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        match fault_id {
            None => faults.clear(),
            Some(id) => {
                faults.remove(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a fault and puts it in force.
    fn inject(admission: &Admission, spec: FaultSpec, now: SimTime) -> KmsResult<Fault> {
        let fault = Admission::check_fault(spec, now)?;
        admission.install(fault.clone());
        Ok(fault)
    }

    fn spec(error: &str, count: u32) -> FaultSpec {
        FaultSpec { method: "Decrypt".into(), error_code: error.into(), count, ..Default::default() }
    }

    #[test]
    fn a_counted_fault_hits_exactly_that_many_calls() {
        let admission = Admission::new(DEFAULT_REMINDER_RATIO);
        let fault = inject(&admission, spec("ServiceUnavailableTemporary", 3), SimTime(0)).unwrap();
        let mut hits = 0;
        for _ in 0..5 {
            let mut verdict = Verdict::default();
            admission.apply_fault("Decrypt", "k", SimTime(0), &mut verdict);
            if let Some(error) = verdict.error {
                assert_eq!(error.code, ErrorCode::ServiceUnavailable);
                assert_eq!(verdict.fault_id.as_deref(), Some(fault.fault_id.as_str()));
                hits += 1;
            }
        }
        assert_eq!(hits, 3);
        assert!(admission.faults(SimTime(0)).is_empty(), "a spent fault goes");
    }

    #[test]
    fn faults_are_checked_and_expire() {
        let admission = Admission::new(DEFAULT_REMINDER_RATIO);
        assert_eq!(
            inject(&admission, spec("Rejected.Nope", 0), SimTime(0)).unwrap_err().code,
            ErrorCode::InvalidParameter
        );
        assert!(inject(&admission, spec("", 0), SimTime(0)).is_err(), "neither error nor delay");
        let bad_probability = FaultSpec { probability: 1.5, ..spec("InternalFailure", 0) };
        assert!(inject(&admission, bad_probability, SimTime(0)).is_err());
        let expiring = FaultSpec { expires: Some(SimTime(1000)), ..spec("InternalFailure", 0) };
        inject(&admission, expiring, SimTime(0)).unwrap();
        assert_eq!(admission.faults(SimTime(999)).len(), 1);
        assert!(admission.faults(SimTime(1000)).is_empty());
        assert_eq!(admission.to_clear("fault-none").unwrap_err().code, ErrorCode::ResourceNotFound);
    }
}
