//! `kmsim.v1.SimulationService`: the simulation clock.

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
        self.dispatch
            .run(&OpSpec::ADVANCE_CLOCK, request, |app, _cx, req| async move {
                let by = forward_duration(req.advance)?;
                let outcome = app.engine.advance_clock(by).await?;
                let clock = app.engine.clock();
                Ok(outcome.map(|offset| clock_response(clock.now_with_offset(offset), offset)))
            })
            .await
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
