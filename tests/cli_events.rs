//! The `kmsim` CLI for system events, the clock and key history, run as a real
//! child process against an in-process server.

mod common;

use common::cli::*;
use common::*;
use kmsim::proto as pb;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const SCHEDULED: &str = "Key:DeleteKey:ScheduleDeletion";
const DELETED: &str = "Key:DeleteKey:ActualDeletion";

#[track_caller]
fn rfc3339(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

async fn create_key_cli(server: &TestServer, extra: &[&str]) -> String {
    let mut args = vec!["key", "create"];
    args.extend(extra);
    str_field(&kmsim_json(server, &args).await, "keyId").to_owned()
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_can_be_set_forward_to_an_instant_but_not_back() {
    let server = TestServer::start().await;
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let target = now + time::Duration::days(400);
    let text = target.format(&Rfc3339).unwrap();

    let set = kmsim_json(&server, &["clock", "set", &text]).await;
    let shown = rfc3339(str_field(&set, "now"));
    assert!((shown - target).abs() <= time::Duration::seconds(2), "set to {text}, the clock says {set:#}");
    // The server agrees.
    let clock = server.simulation().await.get_clock(pb::GetClockRequest {}).await.unwrap().into_inner();
    let server_now = clock.now.expect("now").seconds;
    assert!((server_now - target.unix_timestamp()).abs() <= 2, "the server's clock: {clock:?}");

    let earlier = (target - time::Duration::days(1)).format(&Rfc3339).unwrap();
    let run = kmsim(&server, &["clock", "set", &earlier]).await;
    let stderr = run.failed();
    assert!(stderr.contains("InvalidParameter (400)"), "{run:#?}");
    let after = kmsim_json(&server, &["clock", "show"]).await;
    assert!(rfc3339(str_field(&after, "now")) >= target, "the clock did not go back: {after:#}");

    let run = kmsim(&server, &["clock", "set", "next tuesday"]).await;
    run.failed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_list_prints_the_cloudmonitor_document() {
    let server = TestServer::start().await;
    let key_id = create_key_cli(&server, &[]).await;
    let scheduled = kmsim_json(&server, &["key", "schedule-deletion", &key_id, "--pending-window-in-days", "7"]).await;
    let delete_date = str_field(&scheduled, "deleteDate").to_owned();

    let listed = kmsim_json(&server, &["events", "list"]).await;
    let events = array(&listed, "events");
    assert_eq!(events.len(), 1, "{listed:#}");
    let token = listed.get("nextPageToken").and_then(Value::as_str).unwrap_or_default();
    assert_eq!(token, "", "a single page: {listed:#}");
    let doc = &events[0];
    assert_eq!(field_names(doc), KEY_EVENT_FIELDS, "{doc:#}");
    assert_eq!(field_names(&doc["content"]), ["eventId", "keyId", "deleteEntityArn", "plannedDeleteTime"], "{doc:#}");
    let arn = format!("acs:kms:cn-hangzhou:1192853035118460:key/{key_id}");
    let time_ms = doc["time"].as_i64().unwrap_or_else(|| panic!("time is not a number: {doc:#}"));
    assert_eq!(doc["name"], SCHEDULED);
    assert_eq!(doc["status"], "normal");
    assert_eq!(doc["level"], "WARN");
    assert_eq!(doc["product"], "kms");
    assert_eq!(doc["groupId"], "0");
    assert_eq!(doc["regionId"], "cn-hangzhou");
    assert_eq!(doc["instanceName"], key_id.as_str());
    assert_eq!(doc["resourceId"], arn.as_str());
    assert_eq!(doc["content"]["keyId"], key_id.as_str());
    assert_eq!(doc["content"]["deleteEntityArn"], arn.as_str());
    assert_eq!(doc["content"]["plannedDeleteTime"], delete_date.as_str());
    assert_eq!(doc["content"]["eventId"], format!("1192853035118460:{key_id}:{}", time_ms / 1000));

    let table = kmsim(&server, &["events", "list", "--name", "Key:*"]).await;
    let table = table.ok();
    assert!(table.contains(SCHEDULED) && table.contains(&arn), "{table}");
    let none = kmsim(&server, &["events", "list", "--name", "Secret:*"]).await;
    assert!(!none.ok().contains(SCHEDULED), "{none:#?}");
    let run = kmsim(&server, &["events", "list", "--level", "LOUD"]).await;
    assert!(run.failed().contains("InvalidParameter (400)"), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_watch_prints_the_next_event_and_exits_after_count() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;

    let args = ["events", "watch", "--count", "1", "--output", "json"];
    let mut watch = Streaming::start(&server, &args);
    watch.connected(&server, "WatchSystemEvents").await;

    let request = pb::ScheduleKeyDeletionRequest { key_id: key_id.clone(), pending_window_in_days: 7 };
    kms.schedule_key_deletion(request).await.expect("schedule key deletion");

    let run = watch.finish().await;
    let lines: Vec<&str> = run.ok().lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line: {run:#?}");
    let doc: Value = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {run:#?}"));
    assert_eq!(doc["name"], SCHEDULED, "{doc:#}");
    assert_eq!(doc["content"]["keyId"], key_id.as_str(), "{doc:#}");
    assert_eq!(doc["status"], "normal", "the CloudMonitor document itself: {doc:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_created_listed_and_deleted_from_the_command_line() {
    let server = TestServer::start().await;
    let url = "http://127.0.0.1:1/x";
    let created = kmsim_json(&server, &["events", "subscribe", url, "--level", "WARN", "--description", "ops"]).await;
    let id = str_field(&created, "subscriptionId").to_owned();
    assert!(id.starts_with("sub-"), "{created:#}");

    let listed = kmsim_json(&server, &["events", "subscriptions"]).await;
    let subscriptions = array(&listed, "subscriptions");
    assert_eq!(subscriptions.len(), 1, "{listed:#}");
    let subscription = &subscriptions[0];
    assert_eq!(str_field(subscription, "subscriptionId"), id);
    assert_eq!(str_field(subscription, "webhookUrl"), url);
    assert_eq!(str_field(subscription, "level"), "WARN");
    assert_eq!(str_field(subscription, "name"), "");
    assert_eq!(str_field(subscription, "description"), "ops");
    assert_eq!(subscription["delivered"], 0, "{subscription:#}");
    assert_eq!(subscription["queued"], 0, "{subscription:#}");
    let table = kmsim(&server, &["events", "subscriptions"]).await;
    assert!(table.ok().contains(&id), "{table:#?}");

    let deleted = kmsim_json(&server, &["events", "unsubscribe", &id]).await;
    assert_eq!(str_field(&deleted, "deleted"), id);
    let listed = kmsim_json(&server, &["events", "subscriptions"]).await;
    assert!(array(&listed, "subscriptions").is_empty(), "{listed:#}");

    let run = kmsim(&server, &["events", "unsubscribe", &id]).await;
    assert!(run.failed().contains("Forbidden.ResourceNotFound (404)"), "{run:#?}");
    let run = kmsim(&server, &["events", "subscribe", "https://127.0.0.1:1/x"]).await;
    assert!(run.failed().contains("InvalidParameter (400)"), "{run:#?}");
}

/// `kind` and `what` of each timeline step, checking that times never go back.
#[track_caller]
fn steps(history: &Value) -> Vec<(String, String)> {
    let timeline = array(history, "timeline");
    let times: Vec<OffsetDateTime> = timeline.iter().map(|s| rfc3339(str_field(s, "time"))).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order: {history:#}");
    timeline.iter().map(|s| (str_field(s, "kind").to_owned(), str_field(s, "what").to_owned())).collect()
}

fn expected_steps(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(kind, what)| ((*kind).to_owned(), (*what).to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_history_shows_the_life_of_a_deleted_key() {
    let server = TestServer::start().await;
    let key_id =
        create_key_cli(&server, &["--enable-automatic-rotation", "--rotation-interval", "30d", "--description", "h"])
            .await;
    // Past the first automatic rotation (due 30 days after creation), then the key's own calls.
    kmsim_json(&server, &["clock", "advance", "31d"]).await;
    kmsim_json(&server, &["key", "disable", &key_id]).await;
    kmsim_json(&server, &["key", "enable", &key_id]).await;
    kmsim_json(&server, &["key", "schedule-deletion", &key_id, "--pending-window-in-days", "7"]).await;
    kmsim_json(&server, &["clock", "advance", "9d"]).await;
    let mut kms = server.kms().await;
    let gone = kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() }).await.expect_err("deleted");
    assert_eq!(error_code(&gone), "Forbidden.KeyNotFound");

    let history = kmsim_json(&server, &["key", "history", &key_id]).await;
    assert_eq!(str_field(&history, "keyId"), key_id);
    assert_eq!(
        steps(&history),
        expected_steps(&[
            ("call", "CreateKey"),
            ("kmsim", "RotateKey"),
            ("call", "DisableKey"),
            ("call", "EnableKey"),
            ("call", "ScheduleKeyDeletion"),
            ("event", SCHEDULED),
            ("kmsim", "DeleteKey"),
            ("event", DELETED),
        ]),
        "{history:#}"
    );
    let timeline = array(&history, "timeline");
    let time = |i: usize| rfc3339(str_field(&timeline[i], "time"));
    // The rotation is due 30 days after the key's creation date, which CreateKey reads from the clock a moment
    // after the instant its audit record carries; the two may differ by a millisecond.
    let rotation_after = time(1) - time(0);
    let thirty_days = time::Duration::days(30);
    assert!(
        rotation_after >= thirty_days && rotation_after < thirty_days + time::Duration::seconds(1),
        "the rotation is due 30 days after creation: {history:#}"
    );
    assert_eq!(time(5), time(4), "the event is raised by the call");
    assert_eq!(time(6) - time(4), time::Duration::days(7), "the deletion ends the 7-day window");
    assert_eq!(time(7), time(6), "the event is raised by the deletion");

    let table = kmsim(&server, &["key", "history", &key_id]).await;
    let table = table.ok();
    assert!(table.contains("RotateKey") && table.contains(DELETED), "{table}");
}

/// EnableKey on a key whose rotation fell due while it was disabled rotates it
/// at once: the RotateKey record carries the EnableKey's own instant, and the
/// history must still show the call before the rotation it caused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_history_keeps_the_order_of_steps_in_the_same_millisecond() {
    let server = TestServer::start().await;
    let key_id = create_key_cli(&server, &["--enable-automatic-rotation", "--rotation-interval", "30d"]).await;
    kmsim_json(&server, &["key", "disable", &key_id]).await;
    kmsim_json(&server, &["clock", "advance", "31d"]).await;
    kmsim_json(&server, &["key", "enable", &key_id]).await;
    // The catch-up rotation is due now; advancing the clock returns once due work is done.
    kmsim_json(&server, &["clock", "advance", "1s"]).await;
    let mut kms = server.kms().await;
    let request = pb::ListKeyVersionsRequest { key_id: key_id.clone(), ..Default::default() };
    let versions = kms.list_key_versions(request).await.expect("list versions").into_inner();
    assert_eq!(versions.key_versions.len(), 2, "rotated on enable: {versions:#?}");

    let history = kmsim_json(&server, &["key", "history", &key_id]).await;
    let timeline = array(&history, "timeline");
    assert_eq!(
        steps(&history),
        expected_steps(&[("call", "CreateKey"), ("call", "DisableKey"), ("call", "EnableKey"), ("kmsim", "RotateKey")]),
        "{history:#}"
    );
    assert_eq!(str_field(&timeline[2], "time"), str_field(&timeline[3], "time"), "the same instant");
}
