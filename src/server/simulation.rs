//! `kmsim.v1.SimulationService`: the simulation clock. Moving it forward runs
//! the work it made due (see [`super::scheduler`]) before the call answers.

use tonic::{Request, Response, Status};

use super::dispatch::Dispatcher;
use crate::audit::OpSpec;
use crate::clock::SimTime;
use crate::engine::{KmsError, KmsResult, Outcome};
use crate::proto as pb;
use crate::proto::simulation_service_server::SimulationService;

pub struct SimulationApi {
    dispatch: Dispatcher,
}

impl SimulationApi {
    pub fn new(dispatch: Dispatcher) -> Self {
        SimulationApi { dispatch }
    }
}

#[tonic::async_trait]
impl SimulationService for SimulationApi {
    async fn get_clock(&self, request: Request<pb::GetClockRequest>) -> Result<Response<pb::ClockResponse>, Status> {
        self.dispatch
            .run(&OpSpec::GET_CLOCK, request, |app, _cx, _req| async move {
                let clock = app.engine.clock();
                Ok(Outcome::read(clock_response(clock.now(), clock.offset_ms())))
            })
            .await
    }

    async fn advance_clock(
        &self,
        request: Request<pb::AdvanceClockRequest>,
    ) -> Result<Response<pb::ClockResponse>, Status> {
        let moved = self
            .dispatch
            .run(&OpSpec::ADVANCE_CLOCK, request, |app, _cx, req| async move {
                let by = forward_duration(req.advance)?;
                let outcome = app.engine.advance_clock(by).await?;
                let clock = app.engine.clock();
                Ok(outcome.map(|offset| clock_response(clock.now_with_offset(offset), offset)))
            })
            .await?;
        self.catch_up().await;
        Ok(moved)
    }

    async fn set_clock(&self, request: Request<pb::SetClockRequest>) -> Result<Response<pb::ClockResponse>, Status> {
        let moved = self
            .dispatch
            .run(&OpSpec::SET_CLOCK, request, |app, _cx, req| async move {
                let time = req.time.ok_or_else(|| KmsError::missing("Time"))?;
                if !(0..1_000_000_000).contains(&time.nanos) {
                    return Err(KmsError::invalid("Time"));
                }
                let millis = time.seconds.saturating_mul(1000).saturating_add(i64::from(time.nanos / 1_000_000));
                let outcome = app.engine.set_clock(SimTime(millis)).await?;
                let clock = app.engine.clock();
                Ok(outcome.map(|offset| clock_response(clock.now_with_offset(offset), offset)))
            })
            .await?;
        self.catch_up().await;
        Ok(moved)
    }
}

impl SimulationApi {
    /// Does the work the move made due before answering, so the caller sees its effects at once.
    async fn catch_up(&self) {
        let app = self.dispatch.app();
        app.scheduler.run_due(app).await;
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
