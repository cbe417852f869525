//! `kmsim.v1.SimulationService`: the simulation clock, fault injection and
//! metrics. Moving the clock forward runs the work it made due (see
//! [`super::scheduler`]) before the call answers.

use tonic::{Request, Response, Status};

use super::{Grpc, Rpc};
use crate::clock::SimTime;
use crate::context::CallContext;
use crate::engine::key::parse_interval;
use crate::engine::{KmsError, KmsResult, Outcome, SeedReport};
use crate::kernel::OpSpec;
use crate::kernel::admission::{Admission, Fault, FaultSpec};
use crate::kernel::{AfterCommit, App, Operation, Ran};
use crate::metrics::{CallClass, MetricsFilter, MinutePoint};
use crate::proto as pb;
use crate::proto::simulation_service_server::SimulationService;
use crate::seed::{SeedError, SeedSource, line_of};

pub struct SimulationApi {
    grpc: Grpc,
}

impl SimulationApi {
    pub fn new(grpc: Grpc) -> Self {
        SimulationApi { grpc }
    }
}

#[tonic::async_trait]
impl SimulationService for SimulationApi {
    async fn get_clock(&self, request: Request<pb::GetClockRequest>) -> Result<Response<pb::ClockResponse>, Status> {
        self.grpc.unary(request, get_clock).await
    }

    async fn advance_clock(
        &self,
        request: Request<pb::AdvanceClockRequest>,
    ) -> Result<Response<pb::ClockResponse>, Status> {
        self.grpc.unary(request, advance_clock).await
    }

    async fn set_clock(&self, request: Request<pb::SetClockRequest>) -> Result<Response<pb::ClockResponse>, Status> {
        self.grpc.unary(request, set_clock).await
    }

    async fn inject_fault(
        &self,
        request: Request<pb::InjectFaultRequest>,
    ) -> Result<Response<pb::InjectFaultResponse>, Status> {
        self.grpc.unary(request, inject_fault).await
    }

    async fn list_faults(
        &self,
        request: Request<pb::ListFaultsRequest>,
    ) -> Result<Response<pb::ListFaultsResponse>, Status> {
        self.grpc.unary(request, list_faults).await
    }

    async fn clear_faults(
        &self,
        request: Request<pb::ClearFaultsRequest>,
    ) -> Result<Response<pb::ClearFaultsResponse>, Status> {
        self.grpc.unary(request, clear_faults).await
    }

    async fn get_metrics(
        &self,
        request: Request<pb::GetMetricsRequest>,
    ) -> Result<Response<pb::GetMetricsResponse>, Status> {
        self.grpc.unary(request, get_metrics).await
    }

    async fn apply_seed(
        &self,
        request: Request<pb::ApplySeedRequest>,
    ) -> Result<Response<pb::ApplySeedResponse>, Status> {
        self.grpc.unary(request, apply_seed).await
    }
}

/// Checks a whole seed: the engine's outcome (every change it makes, with its
/// report) and the faults to put in force, which the engine does not hold.
/// A bad seed's error names the line at fault.
pub async fn plan_seed(
    app: &App,
    cx: &CallContext,
    source: &SeedSource,
) -> Result<(Outcome<SeedReport>, Vec<Fault>), SeedError> {
    let doc = crate::seed::parse(&source.text)?;
    let now = app.engine.clock().now();
    let mut faults = Vec::new();
    let mut fault_items = Vec::new();
    for entry in &doc.faults {
        let seed = &entry.value;
        let line = line_of(entry);
        let expires = match &seed.expire_time {
            None => None,
            Some(at) => Some(SimTime::parse_rfc3339(&at.value).ok_or_else(|| {
                SeedError::at(line_of(at), "expire_time is an RFC 3339 time such as 2027-01-01T00:00:00Z")
            })?),
        };
        let spec = FaultSpec {
            method: seed.method.clone(),
            key_id: seed.key_id.clone(),
            error_code: seed.error_code.clone(),
            delay_ms: seed.delay_ms,
            probability: seed.probability,
            count: seed.count,
            expires,
        };
        let fault = Admission::check_fault(spec, now).map_err(|e| SeedError::at(line, e.message))?;
        let like = app.admission.has_fault_like(&fault) || faults.iter().any(|f: &Fault| f.same_as(&fault));
        fault_items.push((format!("{} {}", fault.method, fault.key_id), !like, line));
        if !like {
            faults.push(fault);
        }
    }
    let mut outcome = app.engine.apply_seed(cx, &doc).await?;
    for (id, created, line) in fault_items {
        outcome.value.push("fault", &id, "", created, line);
    }
    cx.trail.response_element("Created", outcome.value.created().to_string());
    Ok((outcome, faults))
}

fn seed_response(report: &SeedReport) -> pb::ApplySeedResponse {
    let items: Vec<pb::SeedItem> = report
        .items
        .iter()
        .map(|item| pb::SeedItem {
            kind: item.kind.to_owned(),
            id: item.id.clone(),
            region: item.region.clone(),
            action: if item.created { "created" } else { "unchanged" }.to_owned(),
            line: u32::try_from(item.line).unwrap_or(u32::MAX),
        })
        .collect();
    let created = u32::try_from(report.created()).unwrap_or(u32::MAX);
    let total = u32::try_from(items.len()).unwrap_or(u32::MAX);
    pb::ApplySeedResponse { items, created, unchanged: total - created }
}

fn fault_message(fault: &Fault) -> pb::Fault {
    pb::Fault {
        fault_id: fault.fault_id.clone(),
        method: fault.method.clone(),
        key_id: fault.key_id.clone(),
        error_code: fault.error.map(|code| code.as_str().to_owned()).unwrap_or_default(),
        delay_ms: u32::try_from(fault.delay.as_millis()).unwrap_or(u32::MAX),
        probability: fault.probability,
        remaining: fault.remaining.unwrap_or(0),
        expire_time: fault.expires.map(SimTime::to_rfc3339).unwrap_or_default(),
        hits: fault.hits,
    }
}

fn metric_point(point: &MinutePoint) -> pb::MetricPoint {
    let c = &point.counters;
    let count = |class: CallClass| i64::try_from(c.class(class)).unwrap_or(i64::MAX);
    pb::MetricPoint {
        minute: point.minute.to_rfc3339(),
        region: point.region.clone(),
        kms_instance_id: point.instance_id.clone(),
        requests: i64::try_from(c.requests()).unwrap_or(i64::MAX),
        symmetric_encrypt_requests: count(CallClass::SymmetricEncrypt),
        symmetric_decrypt_requests: count(CallClass::SymmetricDecrypt),
        asymmetric_encrypt_requests: count(CallClass::AsymmetricEncrypt),
        asymmetric_decrypt_requests: count(CallClass::AsymmetricDecrypt),
        asymmetric_sign_requests: count(CallClass::AsymmetricSign),
        asymmetric_verify_requests: count(CallClass::AsymmetricVerify),
        secret_requests: count(CallClass::Secret),
        other_requests: count(CallClass::Other),
        errors_4xx: i64::try_from(c.errors_4xx).unwrap_or(i64::MAX),
        errors_5xx: i64::try_from(c.errors_5xx).unwrap_or(i64::MAX),
        average_latency_ms: c.average_latency_ms(),
        symmetric_qps_utilization: point.symmetric_utilization,
        asymmetric_qps_utilization: point.asymmetric_utilization,
    }
}

fn forward_duration(advance: Option<prost_types::Duration>) -> KmsResult<std::time::Duration> {
    let advance = advance.ok_or_else(|| KmsError::missing("Advance"))?;
    if advance.seconds < 0 || advance.nanos < 0 || advance.nanos >= 1_000_000_000 {
        return Err(KmsError::invalid_because("Advance", "The clock only moves forward."));
    }
    Ok(std::time::Duration::new(advance.seconds as u64, advance.nanos as u32))
}

fn clock_response(now: SimTime, offset_ms: i64) -> pb::ClockResponse {
    pb::ClockResponse {
        now: Some(prost_types::Timestamp {
            seconds: now.millis().div_euclid(1000),
            nanos: (now.millis().rem_euclid(1000) * 1_000_000) as i32,
        }),
        offset: Some(prost_types::Duration {
            seconds: offset_ms.div_euclid(1000),
            nanos: (offset_ms.rem_euclid(1000) * 1_000_000) as i32,
        }),
    }
}

/// advance_clock as a kernel operation: the work the move made due is done
/// before the answer, so the caller sees its effects at once.
pub fn advance_clock(req: pb::AdvanceClockRequest) -> impl Operation<Output = pb::ClockResponse> {
    Rpc::new(&OpSpec::ADVANCE_CLOCK, req, |app, _cx, req| async move {
        let by = forward_duration(req.advance)?;
        let outcome = app.engine.advance_clock(by).await?;
        let clock = app.engine.clock();
        let ran = Ran::from(outcome.map(|offset| clock_response(clock.now_with_offset(offset), offset)));
        Ok(ran.then(AfterCommit::RunDueWork))
    })
}

/// set_clock as a kernel operation; like advance_clock.
pub fn set_clock(req: pb::SetClockRequest) -> impl Operation<Output = pb::ClockResponse> {
    Rpc::new(&OpSpec::SET_CLOCK, req, |app, _cx, req| async move {
        let time = req.time.ok_or_else(|| KmsError::missing("Time"))?;
        if !(0..1_000_000_000).contains(&time.nanos) {
            return Err(KmsError::invalid("Time"));
        }
        let millis = time.seconds.saturating_mul(1000).saturating_add(i64::from(time.nanos / 1_000_000));
        let outcome = app.engine.set_clock(SimTime(millis)).await?;
        let clock = app.engine.clock();
        let ran = Ran::from(outcome.map(|offset| clock_response(clock.now_with_offset(offset), offset)));
        Ok(ran.then(AfterCommit::RunDueWork))
    })
}

/// get_clock as a kernel operation.
pub fn get_clock(req: pb::GetClockRequest) -> impl Operation<Output = pb::ClockResponse> {
    Rpc::new(&OpSpec::GET_CLOCK, req, |app, _cx, _req| async move {
        let clock = app.engine.clock();
        Ok(Outcome::read(clock_response(clock.now(), clock.offset_ms())))
    })
}

/// inject_fault as a kernel operation.
pub fn inject_fault(req: pb::InjectFaultRequest) -> impl Operation<Output = pb::InjectFaultResponse> {
    Rpc::new(&OpSpec::INJECT_FAULT, req, |app, _cx, req| async move {
        let now = app.engine.clock().now();
        let expires = match (req.expire_time.as_str(), req.ttl.as_str()) {
            ("", "") => None,
            (time, "") => Some(SimTime::parse_rfc3339(time).ok_or_else(|| KmsError::invalid("ExpireTime"))?),
            ("", ttl) => {
                let secs = parse_interval(ttl, "Ttl", 1..=366 * 86_400, "Write it as 30s, 10m, 2h or 7d.")?;
                Some(now.plus_secs(secs))
            }
            _ => return Err(KmsError::invalid_because("Ttl", "Give ExpireTime or Ttl, not both.")),
        };
        let spec = FaultSpec {
            method: req.method,
            key_id: req.key_id,
            error_code: req.error_code,
            delay_ms: req.delay_ms,
            probability: req.probability,
            count: req.count,
            expires,
        };
        // Like every change, the fault is in force once the call's record is committed.
        let fault = Admission::check_fault(spec, now)?;
        let response = pb::InjectFaultResponse { fault: Some(fault_message(&fault)) };
        Ok(Ran::from(Outcome::read(response)).then(AfterCommit::InstallFaults(vec![fault])))
    })
}

/// list_faults as a kernel operation.
pub fn list_faults(req: pb::ListFaultsRequest) -> impl Operation<Output = pb::ListFaultsResponse> {
    Rpc::new(&OpSpec::LIST_FAULTS, req, |app, _cx, _req| async move {
        let faults = app.admission.faults(app.engine.clock().now());
        Ok(Outcome::read(pb::ListFaultsResponse { faults: faults.iter().map(fault_message).collect() }))
    })
}

/// clear_faults as a kernel operation.
pub fn clear_faults(req: pb::ClearFaultsRequest) -> impl Operation<Output = pb::ClearFaultsResponse> {
    Rpc::new(&OpSpec::CLEAR_FAULTS, req, |app, _cx, req| async move {
        let cleared = app.admission.to_clear(&req.fault_id)?;
        let clearing = AfterCommit::ClearFaults(Some(req.fault_id).filter(|id| !id.is_empty()));
        Ok(Ran::from(Outcome::read(pb::ClearFaultsResponse { cleared })).then(clearing))
    })
}

/// get_metrics as a kernel operation.
pub fn get_metrics(req: pb::GetMetricsRequest) -> impl Operation<Output = pb::GetMetricsResponse> {
    Rpc::new(&OpSpec::GET_METRICS, req, |app, _cx, req| async move {
        let time = |text: &str, param: &str| match text {
            "" => Ok(None),
            text => SimTime::parse_rfc3339(text).map(Some).ok_or_else(|| KmsError::invalid(param)),
        };
        let filter = MetricsFilter {
            region: req.region,
            instance_id: req.kms_instance_id,
            start: time(&req.start_time, "StartTime")?,
            end: time(&req.end_time, "EndTime")?,
        };
        let points = app.metrics.points(&filter).iter().map(metric_point).collect();
        Ok(Outcome::read(pb::GetMetricsResponse { points }))
    })
}

/// apply_seed as a kernel operation.
pub fn apply_seed(req: pb::ApplySeedRequest) -> impl Operation<Output = pb::ApplySeedResponse> {
    Rpc::new(&OpSpec::APPLY_SEED, req, |app, cx, req| async move {
        let name = if req.source.is_empty() { "seed".to_owned() } else { req.source };
        let source = SeedSource { name, text: req.seed };
        let (outcome, faults) = plan_seed(&app, &cx, &source)
            .await
            .map_err(|e| KmsError::invalid_because("Seed", &format!("{} {e}", source.name)))?;
        if req.dry_run {
            return Ok(Ran::from(Outcome::read(seed_response(&outcome.value))));
        }
        // Faults live in memory, not in the store: they are put in force once the seed is committed.
        Ok(Ran::from(outcome.map(|report| seed_response(&report))).then(AfterCommit::InstallFaults(faults)))
    })
}
