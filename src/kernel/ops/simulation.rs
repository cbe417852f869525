//! The simulation's own controls: its clock, injected faults, seeds and the
//! metrics it keeps. Moving the clock runs the work the move made due (see
//! [`crate::kernel::scheduler`]) before the call answers.

use std::time::Duration;

use super::operation;
use super::params::Span;
use crate::clock::SimTime;
use crate::context::CallContext;
use crate::engine::key::parse_interval;
use crate::engine::{Emptied, KmsError, KmsResult, Outcome, SeedReport};
use crate::kernel::admission::{Admission, Fault, FaultSpec};
use crate::kernel::{AfterCommit, App, Names, Ran};
use crate::metrics::{MetricsFilter, MinutePoint};
use crate::seed::{SeedError, SeedSource, line_of};

/// The simulated now, and how far the simulated clock is ahead of real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    pub now: SimTime,
    pub offset_ms: i64,
}

operation! {
    GetClock = GET_CLOCK -> ClockReading {}
    names(_) { Names::none() }
    run(_, app, _) {
        let clock = app.engine.clock();
        Outcome::read(ClockReading { now: clock.now(), offset_ms: clock.offset_ms() })
    }
}

operation! {
    /// The work the move made due is done before the answer, so the caller
    /// sees its effects at once.
    AdvanceClock = ADVANCE_CLOCK -> ClockReading {
        advance: Option<Span> = "Advance",
    }
    names(_) { Names::none() }
    run(op, app, _) {
        let by = forward_duration(op.advance)?;
        let outcome = app.engine.advance_clock(by).await?;
        let clock = app.engine.clock();
        let reading = |offset| ClockReading { now: clock.now_with_offset(offset), offset_ms: offset };
        Ran::from(outcome.map(reading)).then(AfterCommit::RunDueWork)
    }
}

operation! {
    /// Like AdvanceClock, to an instant.
    SetClock = SET_CLOCK -> ClockReading {
        time: Option<SimTime> = "Time",
        /// Whether the instant was given out of form (a fraction of a second
        /// outside 0 to 1s): refused, though the record keeps what it reads as.
        time_malformed: bool,
    }
    names(_) { Names::none() }
    run(op, app, _) {
        let time = op.time.ok_or_else(|| KmsError::missing("Time"))?;
        if op.time_malformed {
            return Err(KmsError::invalid("Time"));
        }
        let outcome = app.engine.set_clock(time).await?;
        let clock = app.engine.clock();
        let reading = |offset| ClockReading { now: clock.now_with_offset(offset), offset_ms: offset };
        Ran::from(outcome.map(reading)).then(AfterCommit::RunDueWork)
    }
}

operation! {
    /// The fault as it will stand; like every change, it is in force once
    /// the call's record is committed.
    InjectFault = INJECT_FAULT -> Fault {
        method: String = "Method",
        key_id: String = "KeyId",
        error_code: String = "ErrorCode",
        delay_ms: u32 = "DelayMs",
        probability: f64 = "Probability",
        count: u32 = "Count",
        expire_time: String = "ExpireTime",
        ttl: String = "Ttl",
    }
    names(_) { Names::none() }
    run(op, app, _) {
        let now = app.engine.clock().now();
        let expires = match (op.expire_time.as_str(), op.ttl.as_str()) {
            ("", "") => None,
            (time, "") => Some(SimTime::parse_rfc3339(time).ok_or_else(|| KmsError::invalid("ExpireTime"))?),
            ("", ttl) => {
                let secs = parse_interval(ttl, "Ttl", 1..=366 * 86_400, "Write it as 30s, 10m, 2h or 7d.")?;
                Some(now.plus_secs(secs))
            }
            _ => return Err(KmsError::invalid_because("Ttl", "Give ExpireTime or Ttl, not both.")),
        };
        let spec = FaultSpec {
            method: op.method,
            key_id: op.key_id,
            error_code: op.error_code,
            delay_ms: op.delay_ms,
            probability: op.probability,
            count: op.count,
            expires,
        };
        let fault = Admission::check_fault(spec, now)?;
        Ran::from(Outcome::read(fault.clone())).then(AfterCommit::InstallFaults(vec![fault]))
    }
}

operation! {
    /// The faults in force.
    ListFaults = LIST_FAULTS -> Vec<Fault> {}
    names(_) { Names::none() }
    run(_, app, _) { Outcome::read(app.admission.faults(app.engine.clock().now())) }
}

operation! {
    /// How many faults it takes out of force (one by id, or all), once the
    /// call's record is committed.
    ClearFaults = CLEAR_FAULTS -> u32 {
        fault_id: String = "FaultId",
    }
    names(_) { Names::none() }
    run(op, app, _) {
        let cleared = app.admission.to_clear(&op.fault_id)?;
        let clearing = AfterCommit::ClearFaults(Some(op.fault_id).filter(|id| !id.is_empty()));
        Ran::from(Outcome::read(cleared)).then(clearing)
    }
}

operation! {
    /// Minute points of the series the filter selects.
    GetMetrics = GET_METRICS -> Vec<MinutePoint> {
        region: String = "RegionId",
        kms_instance_id: String = "KmsInstanceId",
        start_time: String = "StartTime",
        end_time: String = "EndTime",
    }
    names(_) { Names::none() }
    run(op, app, _) {
        let time = |text: &str, param: &str| match text {
            "" => Ok(None),
            text => SimTime::parse_rfc3339(text).map(Some).ok_or_else(|| KmsError::invalid(param)),
        };
        let filter = MetricsFilter {
            region: op.region,
            instance_id: op.kms_instance_id,
            start: time(&op.start_time, "StartTime")?,
            end: time(&op.end_time, "EndTime")?,
        };
        Outcome::read(app.metrics.points(&filter))
    }
}

operation! {
    /// What the seed made (or, on a dry run, would make) and what it found
    /// already there.
    ApplySeed = APPLY_SEED -> SeedReport {
        seed: String,
        source: String = "Source",
        dry_run: bool = "DryRun",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let ApplySeed { seed, source, dry_run } = op;
        let name = if source.is_empty() { "seed".to_owned() } else { source };
        let source = SeedSource { name, text: seed };
        let (outcome, faults) = plan_seed(&app, &cx, &source, false)
            .await
            .map_err(|e| KmsError::invalid_because("Seed", &format!("{} {e}", source.name)))?;
        if dry_run {
            Ran::from(Outcome::read(outcome.value))
        } else {
            // Faults live in memory, not in the store: they are put in force once the seed is committed.
            Ran::from(outcome).then(AfterCommit::InstallFaults(faults))
        }
    }
}

/// What a reset returns kmsim to.
#[derive(Debug, Clone)]
pub enum ResetTo {
    /// No keys, aliases, secrets or faults.
    Empty,
    /// Empty, then the seed the server was started with (`--seed`).
    ServerSeed,
    /// Empty, then this seed.
    Seed(SeedSource),
}

/// What a reset removed, and what its seed made.
#[derive(Debug)]
pub struct ResetReport {
    pub emptied: Emptied,
    pub seeded: Option<SeedReport>,
}

operation! {
    /// Returns kmsim to empty (engine::reset says what stays) or to a seed, in one commit, and
    /// takes every fault out of force, so a suite isolates its tests without restarting the server.
    Reset = RESET -> ResetReport {
        to: ResetTo,
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let source = match op.to {
            ResetTo::Empty => None,
            ResetTo::ServerSeed => Some(app.seed.clone().ok_or_else(|| {
                KmsError::invalid_because("Seed", "The server was started without --seed: reset to empty, or send a seed.")
            })?),
            ResetTo::Seed(source) => Some(source),
        };
        cx.trail.response_element("To", source.as_ref().map_or("empty", |s| s.name.as_str()));
        match source {
            None => Ran::from(app.engine.reset(&cx).await.map(|emptied| ResetReport { emptied, seeded: None }))
                .then(AfterCommit::ClearFaults(None)),
            Some(source) => {
                let emptied = app.engine.emptied_by_reset();
                let (outcome, faults) = plan_seed(&app, &cx, &source, true)
                    .await
                    .map_err(|e| KmsError::invalid_because("Seed", &format!("{} {e}", source.name)))?;
                Ran::from(outcome.map(|report| ResetReport { emptied, seeded: Some(report) }))
                    .then(AfterCommit::ClearFaults(None))
                    .then(AfterCommit::InstallFaults(faults))
            }
        }
    }
}

/// Checks a whole seed: the engine's outcome (every change it makes, with its
/// report) and the faults to put in force, which the engine does not hold.
/// A bad seed's error names the line at fault.
pub async fn plan_seed(
    app: &App,
    cx: &CallContext,
    source: &SeedSource,
    over_empty: bool,
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
        let in_force = !over_empty && app.admission.has_fault_like(&fault);
        let like = in_force || faults.iter().any(|f: &Fault| f.same_as(&fault));
        fault_items.push((format!("{} {}", fault.method, fault.key_id), !like, line));
        if !like {
            faults.push(fault);
        }
    }
    let mut outcome = app.engine.apply_seed(cx, &doc, over_empty).await?;
    for (id, created, line) in fault_items {
        outcome.value.push("fault", &id, "", created, line);
    }
    cx.trail.response_element("Created", outcome.value.created().to_string());
    Ok((outcome, faults))
}

/// How far a clock move asks to go, refused unless it is forward.
fn forward_duration(advance: Option<Span>) -> KmsResult<Duration> {
    let advance = advance.ok_or_else(|| KmsError::missing("Advance"))?;
    if advance.seconds < 0 || advance.nanos < 0 || advance.nanos >= 1_000_000_000 {
        return Err(KmsError::invalid_because("Advance", "The clock only moves forward."));
    }
    Ok(Duration::new(advance.seconds as u64, advance.nanos as u32))
}
