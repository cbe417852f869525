//! How far the simulation clock can go, and what a long move costs: the clock
//! never passes 9999-12-31T23:59:59Z (the last instant a timestamp can say),
//! and a move far past the due work does that work a bounded number of times,
//! coalescing what lies beyond a year and a day into one occurrence that says
//! so, so the call answers and the server stops and starts again promptly.

mod common;

use std::time::Duration;

use common::process::ServerProcess;
use common::*;
use kmsim::proto as pb;
use serde_json::json;

const END: &str = "9999-12-31T23:59:59Z";

/// Generous bounds for work that takes a second or two; exceeding one is the failure.
const ANSWERS_WITHIN: Duration = Duration::from_secs(120);

fn timestamp(text: &str) -> prost_types::Timestamp {
    let at = kmsim::clock::SimTime::parse_rfc3339(text).expect("an RFC 3339 instant");
    prost_types::Timestamp { seconds: at.millis() / 1000, nanos: 0 }
}

fn advance_request(seconds: i64) -> pb::AdvanceClockRequest {
    pb::AdvanceClockRequest { advance: Some(prost_types::Duration { seconds, nanos: 0 }) }
}

#[tokio::test]
async fn the_clock_never_passes_the_end_of_time() {
    let server = TestServer::start().await;
    let mut simulation = server.simulation().await;

    for seconds in [10_000 * 366 * 86_400, i64::MAX] {
        let status = simulation.advance_clock(advance_request(seconds)).await.expect_err("a jump past the end");
        assert_invalid(&status, "Advance", &format!("an advance of {seconds}s"));
    }
    let past =
        pb::SetClockRequest { time: Some(prost_types::Timestamp { seconds: timestamp(END).seconds + 1, nanos: 0 }) };
    let status = simulation.set_clock(past).await.expect_err("an instant past the end");
    assert_invalid(&status, "Time", "an instant past the end");

    // The end itself may be reached; from there the clock stands still, and nothing moves it on.
    simulation.set_clock(pb::SetClockRequest { time: Some(timestamp(END)) }).await.expect("the end of time");
    let status = simulation.advance_clock(advance_request(2)).await.expect_err("a step past the end");
    assert_invalid(&status, "Advance", "two seconds past the end");
    let clock = simulation.get_clock(pb::GetClockRequest {}).await.expect("the clock reads").into_inner();
    assert_eq!(clock.now.map(|t| t.seconds), Some(timestamp(END).seconds), "the clock stands at the end");

    // Every record written there still has its time.
    let mut kms = server.kms().await;
    create_key(&mut kms, "Aliyun_AES_256").await;
    let records = all_audit_events(&server).await;
    let create = records.iter().find(|r| r.event_name == "CreateKey").expect("the CreateKey record");
    assert!(create.event_time.starts_with("9999-12-31T23:59:59"), "{create:#?}");
}

/// A managed secret rotating every six hours, the shortest interval there is.
fn rotating_secret(name: &str) -> pb::CreateSecretRequest {
    pb::CreateSecretRequest {
        secret_name: name.to_owned(),
        secret_data: r#"{"AccountName":"a","AccountPassword":"p"}"#.to_owned(),
        secret_type: "Rds".into(),
        extended_config: json!({"SecretSubType": "SingleUser", "DBInstanceId": "rm-1"}).to_string(),
        enable_automatic_rotation: true,
        rotation_interval: "6h".into(),
        ..Default::default()
    }
}

fn scheduled_rotations(records: &[pb::AuditEvent]) -> Vec<&pb::AuditEvent> {
    records.iter().filter(|r| r.event_name == "RotateSecret" && r.event_type == "AliyunServiceEvent").collect()
}

#[tokio::test]
async fn a_jump_of_decades_rotates_once_for_what_it_passed_over_then_every_time_in_the_last_year() {
    // Kept for ever, so the overdue rotation's record is still there to read after the jump.
    let config = kmsim::server::ServerConfig { audit_retention_days: None, ..kmsim::server::ServerConfig::default() };
    let server = TestServer::start_config(config).await;
    let mut secrets = server.secrets().await;
    secrets.create_secret(rotating_secret("db")).await.expect("a secret rotating every 6h");

    let mut simulation = server.simulation().await;
    let twenty_years = 20 * 365 * 86_400;
    let jump = tokio::time::timeout(ANSWERS_WITHIN, simulation.advance_clock(advance_request(twenty_years)));
    jump.await.expect("the jump answers").expect("the jump succeeds");

    let records = all_audit_events(&server).await;
    let rotations = scheduled_rotations(&records);
    // Listed newest first: the oldest is the overdue rotation that stands for the ones it passed over.
    let first = rotations.last().expect("the overdue rotation");
    let coalesced: u64 =
        first.response_elements_json().get("CoalescedRotations").and_then(|n| n.as_u64()).expect("says so");
    let per_year: usize = 366 * 4;
    assert!(
        coalesced as usize > 19 * 365 * 4 - per_year,
        "it stands for the rotations of the decades passed over: {coalesced}"
    );
    assert!(
        (per_year..=per_year + 2).contains(&(rotations.len() - 1)),
        "then one rotation every 6h within the last year and a day: {}",
        rotations.len()
    );
    assert_eq!(1 + coalesced as usize + rotations.len() - 1, 20 * 365 * 4, "every occurrence is accounted for");
}

trait ResponseElements {
    fn response_elements_json(&self) -> serde_json::Value;
}

impl ResponseElements for pb::AuditEvent {
    fn response_elements_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.response_elements).expect("response elements are JSON")
    }
}

#[tokio::test]
async fn after_a_jump_of_centuries_the_server_stops_on_sigterm_and_serves_again_on_its_data_dir() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let data_dir = dir.path().to_str().expect("a UTF-8 path");
    let server = ServerProcess::spawn(&["--listen", "127.0.0.1:0", "--data-dir", data_dir]);
    let channel = server.channel().await;
    let mut secrets = pb::secrets_manager_service_client::SecretsManagerServiceClient::new(channel.clone());
    secrets.create_secret(rotating_secret("db")).await.expect("a secret rotating every 6h");
    let mut simulation = pb::simulation_service_client::SimulationServiceClient::new(channel);
    let centuries = 7_000 * 365 * 86_400;
    let jump = tokio::time::timeout(ANSWERS_WITHIN, simulation.advance_clock(advance_request(centuries)));
    jump.await.expect("the jump answers").expect("the jump succeeds");

    let exited = tokio::task::spawn_blocking(move || server.signal_and_wait("TERM"));
    let status = tokio::time::timeout(ANSWERS_WITHIN, exited).await.expect("it stops on SIGTERM").expect("joined");
    assert!(status.success(), "a clean stop: {status:?}");

    let again = ServerProcess::spawn(&["--listen", "127.0.0.1:0", "--data-dir", data_dir]);
    let mut simulation = pb::simulation_service_client::SimulationServiceClient::new(again.channel().await);
    let clock = tokio::time::timeout(ANSWERS_WITHIN, simulation.get_clock(pb::GetClockRequest {}));
    let clock = clock.await.expect("the restarted server answers").expect("the clock reads").into_inner();
    assert!(clock.now.expect("a time").seconds > timestamp("8000-01-01T00:00:00Z").seconds);
}

#[tokio::test]
async fn system_events_are_kept_ninety_days_and_their_pruning_is_audited() {
    let server = TestServer::start().await;
    let mut secrets = server.secrets().await;
    secrets.create_secret(rotating_secret("db")).await.expect("a secret rotating every 6h");
    server.advance_days(2 * 365).await;

    let now = server.sim_now().await;
    let events = list_system_events(&server, "Secret:RotateSecret:*").await;
    let times = events.iter().map(|e| kmsim::clock::SimTime::parse_rfc3339(&e.time).expect("an RFC 3339 time"));
    let oldest = times.min().expect("recent events stay");
    assert!(oldest >= now.plus_days(-91), "an event older than 90 days is kept: {}", oldest.to_rfc3339());
    assert!(events.len() <= 91 * 4, "{} events kept", events.len());

    let records = all_audit_events(&server).await;
    let pruned = records.iter().find(|r| r.event_name == "PruneSystemEvents").expect("the pruning's record");
    assert_eq!(pruned.service_name, "KmsimEvents", "{pruned:#?}");
}
