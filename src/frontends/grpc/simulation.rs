//! `kmsim.v1.SimulationService`: which kernel operation each method is, how
//! its request decodes into it, and how its output encodes as the response.
//! The kernel does the rest.

use super::{Grpc, decode, service};
use crate::clock::SimTime;
use crate::engine::SeedReport;
use crate::kernel::admission::Fault;
use crate::kernel::ops::params::Span;
use crate::kernel::ops::simulation as ops;
use crate::metrics::{CallClass, MinutePoint};
use crate::proto as pb;
use crate::proto::simulation_service_server::SimulationService;

pub struct SimulationApi {
    grpc: Grpc,
}

impl SimulationApi {
    pub fn new(grpc: Grpc) -> Self {
        SimulationApi { grpc }
    }
}

service! {
    impl SimulationService for SimulationApi {
        get_clock(GetClockRequest) -> ClockResponse = GetClock, clock_response;
        advance_clock(AdvanceClockRequest) -> ClockResponse = AdvanceClock, clock_response;
        set_clock(SetClockRequest) -> ClockResponse = SetClock, clock_response;
        inject_fault(InjectFaultRequest) -> InjectFaultResponse = InjectFault,
            |fault| pb::InjectFaultResponse { fault: Some(fault_message(&fault)) };
        list_faults(ListFaultsRequest) -> ListFaultsResponse = ListFaults,
            |faults| pb::ListFaultsResponse { faults: faults.iter().map(fault_message).collect() };
        clear_faults(ClearFaultsRequest) -> ClearFaultsResponse = ClearFaults,
            |cleared| pb::ClearFaultsResponse { cleared };
        get_metrics(GetMetricsRequest) -> GetMetricsResponse = GetMetrics,
            |points| pb::GetMetricsResponse { points: points.iter().map(metric_point).collect() };
        apply_seed(ApplySeedRequest) -> ApplySeedResponse = ApplySeed, |report| seed_response(&report);
        reset(ResetRequest) -> ResetResponse = Reset, |report| {
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            pb::ResetResponse {
                keys_deleted: count(report.emptied.keys),
                aliases_deleted: count(report.emptied.aliases),
                secrets_deleted: count(report.emptied.secrets),
                seeded: report.seeded.as_ref().map(|seeded| seed_response(seeded).items).unwrap_or_default(),
            }
        };
    }
}

decode! {
    GetClockRequest => GetClock {}
    AdvanceClockRequest => AdvanceClock { advance: span }
    InjectFaultRequest => InjectFault {
        method, key_id, error_code, delay_ms, probability, count, expire_time, ttl,
    }
    ListFaultsRequest => ListFaults {}
    ClearFaultsRequest => ClearFaults { fault_id }
    GetMetricsRequest => GetMetrics { region, kms_instance_id, start_time, end_time }
    ApplySeedRequest => ApplySeed { seed, source, dry_run }
}

// By hand: one of three destinations, from two fields.
impl From<pb::ResetRequest> for ops::Reset {
    fn from(request: pb::ResetRequest) -> ops::Reset {
        let pb::ResetRequest { to_server_seed, seed, source } = request;
        let to = match (to_server_seed, seed.is_empty()) {
            (true, _) => ops::ResetTo::ServerSeed,
            (false, true) => ops::ResetTo::Empty,
            (false, false) => {
                let name = if source.is_empty() { "seed".to_owned() } else { source };
                ops::ResetTo::Seed(crate::seed::SeedSource { name, text: seed })
            }
        };
        ops::Reset { to }
    }
}

// By hand: a Timestamp is one field on the wire and two facts for the kernel,
// the instant and whether it was given in form.
impl From<pb::SetClockRequest> for ops::SetClock {
    fn from(request: pb::SetClockRequest) -> ops::SetClock {
        let pb::SetClockRequest { time } = request;
        ops::SetClock {
            time: time
                .as_ref()
                .map(|t| SimTime(t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos / 1_000_000)))),
            time_malformed: time.as_ref().is_some_and(|t| !(0..1_000_000_000).contains(&t.nanos)),
        }
    }
}

fn span(duration: Option<prost_types::Duration>) -> Option<Span> {
    duration.map(|prost_types::Duration { seconds, nanos }| Span { seconds, nanos })
}

fn clock_response(reading: ops::ClockReading) -> pb::ClockResponse {
    let ops::ClockReading { now, offset_ms } = reading;
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
