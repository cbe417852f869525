//! System events end to end: webhook delivery (order, headers, retries,
//! a stalled receiver, `--event-webhook`), WatchSystemEvents, ListSystemEvents
//! (filters, time range, paging, the 90-day window) and subscription errors.
//!
//! Webhooks are received by a small HTTP/1.1 server the test runs itself on
//! 127.0.0.1:0, which hands every POST to the test through a channel.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use kmsim::events::webhook::RetryPolicy;
use kmsim::proto as pb;
use kmsim::proto::event_service_client::EventServiceClient;
use kmsim::server::ServerConfig;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;

type Events = EventServiceClient<Channel>;

const SCHEDULED: &str = "Key:DeleteKey:ScheduleDeletion";
const DELETED: &str = "Key:DeleteKey:ActualDeletion";

/// A guard against hangs only: every wait below ends as soon as the awaited thing happens.
const HANG_GUARD: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The webhook receiver
// ---------------------------------------------------------------------------

/// One POST the receiver got.
#[derive(Debug)]
struct Post {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Post {
    #[track_caller]
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("POST without a {name} header: {self:?}"))
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {self:?}"))
    }

    fn event_name(&self) -> &str {
        self.header("x-kmsim-event-name")
    }

    fn attempt(&self) -> &str {
        self.header("x-kmsim-delivery-attempt")
    }
}

/// What the receiver answers to its n-th request (0-based): an HTTP status, possibly after a while.
type Answer = Pin<Box<dyn Future<Output = u16> + Send>>;

struct Receiver {
    port: u16,
    posts: mpsc::UnboundedReceiver<Post>,
}

impl Receiver {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The next POST; it is handed over as soon as its body is read, before it is answered.
    async fn next(&mut self) -> Post {
        match tokio::time::timeout(HANG_GUARD, self.posts.recv()).await {
            Ok(Some(post)) => post,
            Ok(None) => panic!("the receiver stopped"),
            Err(_) => panic!("no POST arrived within {HANG_GUARD:?}"),
        }
    }

    async fn take(&mut self, n: usize) -> Vec<Post> {
        let mut posts = Vec::new();
        for _ in 0..n {
            posts.push(self.next().await);
        }
        posts
    }

    #[track_caller]
    fn assert_nothing_received(&mut self, what: &str) {
        match self.posts.try_recv() {
            Err(mpsc::error::TryRecvError::Empty) => {}
            other => panic!("{what}: the receiver got {other:?}"),
        }
    }
}

/// A webhook receiver answering 200 to everything.
async fn receiver_ok() -> Receiver {
    receiver(|_| Box::pin(async { 200 })).await
}

/// Serves HTTP/1.1 on 127.0.0.1:0; `answer(n)` decides the status of the n-th request.
async fn receiver(answer: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("the receiver binds");
    let port = listener.local_addr().unwrap().port();
    let (sender, posts) = mpsc::unbounded_channel();
    let answer = Arc::new(answer);
    let count = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (sender, answer, count) = (sender.clone(), answer.clone(), count.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let (sender, answer, count) = (sender.clone(), answer.clone(), count.clone());
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        let post = Post {
                            method: parts.method.to_string(),
                            path: parts.uri.to_string(),
                            headers: parts.headers,
                            body,
                        };
                        let _ = sender.send(post);
                        let status = answer(n).await;
                        let response = Response::builder().status(status).body(Full::new(Bytes::new())).unwrap();
                        Ok::<_, hyper::Error>(response)
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Receiver { port, posts }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Retries quickly, and never gives up on a POST merely because its answer is slow.
fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(80),
        timeout: Duration::from_secs(300),
    }
}

async fn server_with_retry(policy: RetryPolicy) -> TestServer {
    TestServer::start_config(ServerConfig { webhook_retry: policy, ..ServerConfig::default() }).await
}

async fn schedule_deletion(kms: &mut Kms, key_id: &str, days: i32) -> String {
    let request = pb::ScheduleKeyDeletionRequest { key_id: key_id.to_owned(), pending_window_in_days: days };
    kms.schedule_key_deletion(request).await.expect("schedule key deletion").into_inner().delete_date
}

async fn subscribe(events: &mut Events, url: &str, name: &str) -> String {
    let request =
        pb::CreateEventSubscriptionRequest { webhook_url: url.to_owned(), name: name.to_owned(), ..Default::default() };
    events.create_event_subscription(request).await.expect("create subscription").into_inner().subscription_id
}

async fn subscriptions(events: &mut Events) -> Vec<pb::EventSubscription> {
    let request = pb::ListEventSubscriptionsRequest {};
    events.list_event_subscriptions(request).await.expect("list subscriptions").into_inner().subscriptions
}

async fn delivery(events: &mut Events, subscription_id: &str) -> pb::DeliveryStatus {
    let all = subscriptions(events).await;
    let found = all.iter().find(|s| s.subscription_id == subscription_id);
    let found = found.unwrap_or_else(|| panic!("{subscription_id} is not listed: {all:#?}"));
    found.delivery.clone().expect("a delivery status")
}

/// Polls a subscription's delivery status until `done` holds.
///
/// The deliverer counts a POST as delivered (and takes the event off its
/// queue) only once it has read the webhook's answer, which is necessarily
/// after the receiver saw the request; nothing a client can await marks that
/// moment, so the status is polled, with a bound, instead.
async fn delivery_when(
    events: &mut Events,
    subscription_id: &str,
    done: impl Fn(&pb::DeliveryStatus) -> bool,
) -> pb::DeliveryStatus {
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let status = delivery(events, subscription_id).await;
        if done(&status) {
            return status;
        }
        assert!(tokio::time::Instant::now() < deadline, "the delivery status never settled: {status:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn list_request(name: &str, level: &str) -> pb::ListSystemEventsRequest {
    pb::ListSystemEventsRequest { name: name.to_owned(), level: level.to_owned(), ..Default::default() }
}

/// Every page of a listing, newest first.
async fn list_all(events: &mut Events, mut request: pb::ListSystemEventsRequest) -> Vec<pb::SystemEvent> {
    let mut all = Vec::new();
    loop {
        let page = events.list_system_events(request.clone()).await.expect("list system events").into_inner();
        all.extend(page.events);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
}

async fn list_error(events: &mut Events, request: pb::ListSystemEventsRequest) -> tonic::Status {
    match events.list_system_events(request.clone()).await {
        Ok(answer) => panic!("{request:?} succeeded: {answer:?}"),
        Err(status) => status,
    }
}

/// The key an event is about, from its document.
fn key_of(document: &Value) -> &str {
    document["content"]["keyId"].as_str().unwrap_or_else(|| panic!("no content.keyId in {document:#}"))
}

fn parse(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"))
}

fn rfc3339(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

fn millis_of(text: &str) -> i64 {
    i64::try_from(rfc3339(text).unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn format_rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

/// A key event's message and document agree, and the document has exactly CloudMonitor's fields in order.
#[track_caller]
fn assert_key_document(event: &pb::SystemEvent, name: &str, key_id: &str) {
    let doc = parse(&event.json);
    assert_eq!(field_names(&doc), KEY_EVENT_FIELDS, "{doc:#}");
    let last = if name == SCHEDULED { "plannedDeleteTime" } else { "deleteTime" };
    assert_eq!(field_names(&doc["content"]), ["eventId", "keyId", "deleteEntityArn", last], "{doc:#}");
    let arn = format!("acs:kms:cn-hangzhou:1192853035118460:key/{key_id}");
    let time_ms = doc["time"].as_i64().unwrap_or_else(|| panic!("time is not a number: {doc:#}"));
    assert_eq!(doc["id"], event.id.as_str());
    assert_eq!(doc["status"], "normal");
    assert_eq!(doc["instanceName"], key_id);
    assert_eq!(doc["resourceId"], arn.as_str());
    assert_eq!(doc["content"]["eventId"], format!("1192853035118460:{key_id}:{}", time_ms.div_euclid(1000)));
    assert_eq!(doc["content"]["keyId"], key_id);
    assert_eq!(doc["content"]["deleteEntityArn"], arn.as_str());
    assert_eq!(doc["product"], "kms");
    assert_eq!(doc["level"], "WARN");
    assert_eq!(doc["regionId"], "cn-hangzhou");
    assert_eq!(doc["groupId"], "0");
    assert_eq!(doc["name"], name);
    assert_eq!((event.name.as_str(), event.level.as_str(), event.region.as_str()), (name, "WARN", "cn-hangzhou"));
    assert_eq!(event.resource_id, arn);
    assert_eq!(millis_of(&event.time), time_ms, "the message's time is the document's");
    if name == DELETED {
        // deleteTime is the event's own time, to the second.
        let deleted = doc["content"]["deleteTime"].as_str().unwrap();
        assert_eq!(millis_of(deleted), time_ms.div_euclid(1000) * 1000, "{doc:#}");
    }
}

/// Creates `n` keys and schedules each for deletion with its window from `windows`, in order.
async fn keys_scheduled(kms: &mut Kms, windows: &[i32]) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for &days in windows {
        let key_id = create_key(kms, "").await;
        let delete_date = schedule_deletion(kms, &key_id, days).await;
        keys.push((key_id, delete_date));
    }
    keys
}

// ---------------------------------------------------------------------------
// Webhook delivery
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_webhook_receives_every_event_in_order_exactly_as_listed() {
    let server = TestServer::start().await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);
    let mut hook = receiver_ok().await;
    let subscription_id = subscribe(&mut events, &hook.url(), "").await;

    // Windows of 9, 7 and 8 days: the deletions fall due in another order than the calls were made.
    let keys = keys_scheduled(&mut kms, &[9, 7, 8]).await;
    server.advance_days(10).await;
    let posts = hook.take(6).await;

    let expected: Vec<(&str, &str)> = [
        (SCHEDULED, 0),
        (SCHEDULED, 1),
        (SCHEDULED, 2),
        (DELETED, 1), // due after 7 days
        (DELETED, 2), // 8
        (DELETED, 0), // 9
    ]
    .into_iter()
    .map(|(name, key)| (name, keys[key].0.as_str()))
    .collect();
    let received: Vec<(String, String)> = posts
        .iter()
        .map(|post| {
            let doc = post.json();
            (doc["name"].as_str().unwrap_or_default().to_owned(), key_of(&doc).to_owned())
        })
        .collect();
    let received: Vec<(&str, &str)> = received.iter().map(|(n, k)| (n.as_str(), k.as_str())).collect();
    assert_eq!(received, expected, "the order of delivery");

    let mut listed = list_all(&mut events, list_request("", "")).await;
    listed.reverse();
    assert_eq!(listed.len(), 6, "{listed:#?}");
    for (post, event) in posts.iter().zip(&listed) {
        assert_eq!((post.method.as_str(), post.path.as_str()), ("POST", "/hook"));
        assert_eq!(post.json(), parse(&event.json), "the body is the listed document");
        assert_eq!(field_names(&post.json()), field_names(&parse(&event.json)), "in the same field order");
        assert_eq!(post.header("content-type"), "application/json");
        assert_eq!(post.event_name(), event.name);
        assert_eq!(post.header("x-kmsim-event-id"), event.id);
        assert_eq!(post.attempt(), "1");
        assert_key_document(event, &event.name, key_of(&post.json()));
    }
    // plannedDeleteTime is the DeleteDate the call answered.
    for ((key_id, delete_date), event) in keys.iter().zip(&listed) {
        let doc = parse(&event.json);
        assert_eq!(
            (key_of(&doc), doc["content"]["plannedDeleteTime"].as_str()),
            (key_id.as_str(), Some(&**delete_date))
        );
    }

    let status = delivery_when(&mut events, &subscription_id, |s| s.delivered == 6 && s.queued == 0).await;
    assert_eq!((status.delivered, status.failed, status.dropped, status.queued), (6, 0, 0, 0), "{status:#?}");
    assert_eq!(status.attempts, 6, "{status:#?}");
    assert!(status.last_error.is_empty(), "{status:#?}");
    assert!(!status.last_success_time.is_empty() && !status.last_attempt_time.is_empty(), "{status:#?}");
    hook.assert_nothing_received("after the six events");
}

#[tokio::test]
async fn a_stalled_webhook_delays_no_kms_call() {
    let server = server_with_retry(fast_retry(3)).await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);
    // The first POST is answered only when the test says so.
    let (release, released) = watch::channel(false);
    let mut hook = receiver(move |n| {
        let mut released = released.clone();
        Box::pin(async move {
            if n == 0 {
                let _ = released.wait_for(|r| *r).await;
            }
            200
        })
    })
    .await;
    let subscription_id = subscribe(&mut events, &hook.url(), "").await;

    let first = create_key(&mut kms, "").await;
    schedule_deletion(&mut kms, &first, 7).await;
    let held = hook.next().await;
    assert_eq!((held.event_name(), key_of(&held.json())), (SCHEDULED, first.as_str()));

    // The receiver now holds that POST unanswered. KMS calls go on regardless.
    let worker = create_key(&mut kms, "").await;
    let calls = async {
        for i in 0..20 {
            let request = pb::EncryptRequest {
                key_id: worker.clone(),
                plaintext: format!("message {i}").into_bytes(),
                ..Default::default()
            };
            kms.encrypt(request).await.expect("encrypt while the webhook stalls");
        }
        let second = create_key(&mut kms, "").await;
        schedule_deletion(&mut kms, &second, 7).await;
        second
    };
    let second = tokio::time::timeout(HANG_GUARD, calls).await.expect("KMS calls wait for the stalled webhook");
    // The new event is committed and listable while its delivery waits behind the held one.
    let listed = list_all(&mut events, list_request(SCHEDULED, "")).await;
    assert_eq!(
        listed.iter().map(|e| key_of(&parse(&e.json)).to_owned()).collect::<Vec<_>>(),
        [second.as_str(), first.as_str()]
    );
    let waiting = delivery_when(&mut events, &subscription_id, |s| s.queued == 2).await;
    assert_eq!((waiting.delivered, waiting.attempts), (0, 0), "{waiting:#?}");
    hook.assert_nothing_received("while the first POST is held, delivery is in order");

    release.send(true).unwrap();
    let next = hook.next().await;
    assert_eq!((next.event_name(), key_of(&next.json())), (SCHEDULED, second.as_str()));
    assert_eq!(next.attempt(), "1", "the held POST succeeded, nothing was retried");
    let status = delivery_when(&mut events, &subscription_id, |s| s.delivered == 2).await;
    assert_eq!((status.failed, status.queued, status.attempts), (0, 0, 2), "{status:#?}");
}

#[tokio::test]
async fn a_failed_post_is_retried_with_backoff_until_it_succeeds() {
    let server = server_with_retry(fast_retry(4)).await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);
    let mut hook = receiver(|n| Box::pin(async move { if n == 0 { 500 } else { 200 } })).await;
    let subscription_id = subscribe(&mut events, &hook.url(), "").await;

    let key_id = create_key(&mut kms, "").await;
    schedule_deletion(&mut kms, &key_id, 7).await;
    let posts = hook.take(2).await;
    assert_eq!(posts.iter().map(Post::attempt).collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(posts[0].header("x-kmsim-event-id"), posts[1].header("x-kmsim-event-id"), "the same event again");
    assert_eq!(posts[0].body, posts[1].body);

    let status = delivery_when(&mut events, &subscription_id, |s| s.delivered == 1 && s.queued == 0).await;
    assert_eq!((status.delivered, status.failed, status.attempts), (1, 0, 2), "{status:#?}");
    assert!(status.last_error.contains("500"), "last_error: {status:#?}");
    hook.assert_nothing_received("after the successful retry");
}

#[tokio::test]
async fn an_event_given_up_on_counts_as_failed_and_the_next_one_is_still_delivered() {
    let server = server_with_retry(fast_retry(3)).await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);
    // 500 to the first event's three attempts; the fourth request (the second event) waits, then succeeds.
    let (release, released) = watch::channel(false);
    let mut hook = receiver(move |n| {
        let mut released = released.clone();
        Box::pin(async move {
            if n < 3 {
                return 500;
            }
            let _ = released.wait_for(|r| *r).await;
            200
        })
    })
    .await;
    let subscription_id = subscribe(&mut events, &hook.url(), "").await;

    // Both events are raised before the first is given up on: the second waits in the queue.
    let keys = keys_scheduled(&mut kms, &[7, 7]).await;
    let posts = hook.take(4).await;
    let seen: Vec<(&str, String)> = posts.iter().map(|p| (p.attempt(), key_of(&p.json()).to_owned())).collect();
    let (first, second) = (keys[0].0.clone(), keys[1].0.clone());
    assert_eq!(seen, [("1", first.clone()), ("2", first.clone()), ("3", first), ("1", second)]);

    // The first event was given up on before the second was posted, and the second is still unanswered.
    let status = delivery(&mut events, &subscription_id).await;
    assert_eq!((status.failed, status.delivered, status.attempts), (1, 0, 3), "{status:#?}");
    assert!(status.last_error.contains("500"), "last_error: {status:#?}");
    assert!(status.last_success_time.is_empty(), "{status:#?}");

    release.send(true).unwrap();
    let status = delivery_when(&mut events, &subscription_id, |s| s.delivered == 1 && s.queued == 0).await;
    assert_eq!((status.failed, status.attempts), (1, 4), "{status:#?}");
    hook.assert_nothing_received("the failed event is not tried again");
}

#[tokio::test]
async fn the_command_line_webhook_receives_every_event_and_is_listed() {
    let mut hook = receiver_ok().await;
    let config = ServerConfig { event_webhook: Some(hook.url()), ..ServerConfig::default() };
    let server = TestServer::start_config(config).await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);

    let listed = subscriptions(&mut events).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0].webhook_url, hook.url());
    assert_eq!((listed[0].name.as_str(), listed[0].level.as_str()), ("", ""), "every event: {listed:#?}");
    let subscription_id = listed[0].subscription_id.clone();

    let key_id = create_key(&mut kms, "").await;
    schedule_deletion(&mut kms, &key_id, 7).await;
    server.advance_days(8).await;
    let posts = hook.take(2).await;
    let names: Vec<&str> = posts.iter().map(Post::event_name).collect();
    assert_eq!(names, [SCHEDULED, DELETED]);
    assert!(posts.iter().all(|p| key_of(&p.json()) == key_id));

    let status = delivery_when(&mut events, &subscription_id, |s| s.delivered == 2).await;
    assert_eq!((status.failed, status.queued), (0, 0), "{status:#?}");
}

#[tokio::test]
async fn a_subscription_receives_only_the_events_its_filter_selects() {
    let server = TestServer::start().await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);
    let mut deletions = receiver_ok().await;
    let mut everything = receiver_ok().await;
    subscribe(&mut events, &deletions.url(), DELETED).await;
    subscribe(&mut events, &everything.url(), "Key:*").await;

    let key_id = create_key(&mut kms, "").await;
    schedule_deletion(&mut kms, &key_id, 7).await;
    server.advance_days(8).await;

    let all: Vec<String> = everything.take(2).await.iter().map(|p| p.event_name().to_owned()).collect();
    assert_eq!(all, [SCHEDULED, DELETED]);
    // Delivery is in order, so the ScheduleDeletion event, had it been sent, would have come first.
    let first = deletions.next().await;
    assert_eq!((first.event_name(), key_of(&first.json())), (DELETED, key_id.as_str()));
}

// ---------------------------------------------------------------------------
// WatchSystemEvents
// ---------------------------------------------------------------------------

async fn watch(events: &mut Events, name: &str) -> tonic::Streaming<pb::SystemEvent> {
    let request = pb::WatchSystemEventsRequest { name: name.to_owned(), level: String::new() };
    events.watch_system_events(request).await.expect("watch").into_inner()
}

async fn next_watched(stream: &mut tonic::Streaming<pb::SystemEvent>) -> pb::SystemEvent {
    match tokio::time::timeout(HANG_GUARD, stream.message()).await {
        Ok(Ok(Some(event))) => event,
        Ok(other) => panic!("the watch ended: {other:?}"),
        Err(_) => panic!("no event was streamed within {HANG_GUARD:?}"),
    }
}

#[tokio::test]
async fn a_watch_streams_the_matching_events_as_they_happen() {
    let server = TestServer::start().await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);
    let mut deletions = watch(&mut events, DELETED).await;
    let mut everything = watch(&mut events, "").await;

    let key_id = create_key(&mut kms, "").await;
    schedule_deletion(&mut kms, &key_id, 7).await;
    server.advance_days(8).await;

    let deleted = next_watched(&mut deletions).await;
    assert_key_document(&deleted, DELETED, &key_id);
    let first = next_watched(&mut everything).await;
    let second = next_watched(&mut everything).await;
    assert_key_document(&first, SCHEDULED, &key_id);
    assert_key_document(&second, DELETED, &key_id);
    assert_eq!(second, deleted, "both watches stream the same event");

    // What was streamed is what is listed.
    let mut listed = list_all(&mut events, list_request("", "")).await;
    listed.reverse();
    assert_eq!(listed, [first, second]);

    let request = pb::WatchSystemEventsRequest { name: "Key:Nope".into(), level: String::new() };
    let status = events.watch_system_events(request).await.expect_err("an unknown name");
    assert_invalid(&status, "Name", "WatchSystemEvents with an unknown name");
    let request = pb::WatchSystemEventsRequest { name: String::new(), level: "LOUD".into() };
    let status = events.watch_system_events(request).await.expect_err("an unknown level");
    assert_invalid(&status, "Level", "WatchSystemEvents with an unknown level");
}

// ---------------------------------------------------------------------------
// ListSystemEvents
// ---------------------------------------------------------------------------

#[tokio::test]
async fn events_are_listed_newest_first_and_filtered_by_name_level_and_time() {
    let server = TestServer::start().await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);
    let keys = keys_scheduled(&mut kms, &[7, 7, 7]).await;
    server.advance_days(8).await;
    let ids: Vec<&str> = keys.iter().map(|(id, _)| id.as_str()).collect();
    let named = |list: &[pb::SystemEvent]| -> Vec<(String, String)> {
        list.iter().map(|e| (e.name.clone(), key_of(&parse(&e.json)).to_owned())).collect()
    };
    let expect = |pairs: &[(&str, usize)]| -> Vec<(String, String)> {
        pairs.iter().map(|(name, key)| ((*name).to_owned(), ids[*key].to_owned())).collect()
    };

    let all = list_all(&mut events, list_request("", "")).await;
    let newest_first =
        expect(&[(DELETED, 2), (DELETED, 1), (DELETED, 0), (SCHEDULED, 2), (SCHEDULED, 1), (SCHEDULED, 0)]);
    assert_eq!(named(&all), newest_first);
    for event in &all {
        assert_key_document(event, &event.name, key_of(&parse(&event.json)));
    }

    for (name, level, expected) in [
        (SCHEDULED, "", expect(&[(SCHEDULED, 2), (SCHEDULED, 1), (SCHEDULED, 0)])),
        (DELETED, "", expect(&[(DELETED, 2), (DELETED, 1), (DELETED, 0)])),
        ("Key:*", "", newest_first.clone()),
        ("Key:DeleteKey:*", "", newest_first.clone()),
        ("*", "", newest_first.clone()),
        ("Secret:*", "", Vec::new()),
        ("Instance:*", "", Vec::new()),
        ("", "WARN", newest_first.clone()),
        ("", "CRITICAL", Vec::new()),
        ("", "INFO", Vec::new()),
        ("Key:*", "WARN", newest_first.clone()),
        (DELETED, "CRITICAL", Vec::new()),
    ] {
        let listed = list_all(&mut events, list_request(name, level)).await;
        assert_eq!(named(&listed), expected, "name {name:?}, level {level:?}");
    }

    // Seven days separate the scheduling from the deletions; cut the range between them.
    let last_scheduled = rfc3339(&all[3].time);
    let first_deleted = rfc3339(&all[2].time);
    let middle = format_rfc3339(last_scheduled + (first_deleted - last_scheduled) / 2);
    let request = pb::ListSystemEventsRequest { start_time: middle.clone(), ..Default::default() };
    assert_eq!(named(&list_all(&mut events, request).await), expect(&[(DELETED, 2), (DELETED, 1), (DELETED, 0)]));
    let request = pb::ListSystemEventsRequest { end_time: middle.clone(), ..Default::default() };
    assert_eq!(named(&list_all(&mut events, request).await), expect(&[(SCHEDULED, 2), (SCHEDULED, 1), (SCHEDULED, 0)]));
    let before_all = format_rfc3339(rfc3339(&all[5].time) - time::Duration::hours(1));
    let request =
        pb::ListSystemEventsRequest { start_time: before_all.clone(), end_time: middle, ..Default::default() };
    assert_eq!(named(&list_all(&mut events, request).await).len(), 3);
    let request = pb::ListSystemEventsRequest {
        end_time: before_all,
        name: "Key:*".into(),
        level: "WARN".into(),
        ..Default::default()
    };
    assert!(list_all(&mut events, request).await.is_empty(), "nothing before the first event");
}

#[tokio::test]
async fn paging_one_event_at_a_time_returns_each_event_once() {
    let server = TestServer::start().await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);
    keys_scheduled(&mut kms, &[7, 8, 9, 10]).await;
    server.advance_days(11).await;

    let all = list_all(&mut events, list_request("", "")).await;
    assert_eq!(all.len(), 8, "{all:#?}");

    let mut paged = Vec::new();
    let mut request = pb::ListSystemEventsRequest { page_size: 1, ..Default::default() };
    loop {
        let page = events.list_system_events(request.clone()).await.expect("a page").into_inner();
        assert_eq!(page.events.len(), 1, "page {} of size 1: {page:#?}", paged.len() + 1);
        paged.extend(page.events);
        assert!(paged.len() <= all.len(), "more pages than events: {paged:#?}");
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(paged, all, "every event once, in the same order");
    let mut ids: Vec<&str> = paged.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8, "no duplicates");
    let times: Vec<i64> = paged.iter().map(|e| millis_of(&e.time)).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");

    // Pages of three, under a name filter, also cover everything once.
    let request = pb::ListSystemEventsRequest { page_size: 3, name: "Key:*".into(), ..Default::default() };
    let first = events.list_system_events(request.clone()).await.unwrap().into_inner();
    assert_eq!(first.events.len(), 3);
    assert!(!first.next_page_token.is_empty());
    assert_eq!(list_all(&mut events, request).await, all);
}

#[tokio::test]
async fn malformed_listing_requests_are_invalid_parameters() {
    let server = TestServer::start().await;
    let mut events = server.events().await;
    let cases = [
        (pb::ListSystemEventsRequest { level: "LOUD".into(), ..Default::default() }, "Level"),
        (pb::ListSystemEventsRequest { name: "Key:Nope".into(), ..Default::default() }, "Name"),
        (pb::ListSystemEventsRequest { name: "Nope:*".into(), ..Default::default() }, "Name"),
        (pb::ListSystemEventsRequest { start_time: "yesterday".into(), ..Default::default() }, "StartTime"),
        (pb::ListSystemEventsRequest { start_time: "2026-13-01T00:00:00Z".into(), ..Default::default() }, "StartTime"),
        (pb::ListSystemEventsRequest { end_time: "2026-01-01".into(), ..Default::default() }, "EndTime"),
        (pb::ListSystemEventsRequest { page_token: "garbage".into(), ..Default::default() }, "PageToken"),
        (pb::ListSystemEventsRequest { page_token: "12.x".into(), ..Default::default() }, "PageToken"),
        (pb::ListSystemEventsRequest { page_size: 1001, ..Default::default() }, "PageSize"),
        (pb::ListSystemEventsRequest { page_size: -1, ..Default::default() }, "PageSize"),
    ];
    for (request, param) in cases {
        let status = list_error(&mut events, request.clone()).await;
        assert_invalid(&status, param, &format!("{request:?}"));
    }
}

#[tokio::test]
async fn events_older_than_ninety_days_are_no_longer_listed() {
    let server = TestServer::start().await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);
    let key_id = create_key(&mut kms, "").await;
    schedule_deletion(&mut kms, &key_id, 30).await;

    let listed = list_all(&mut events, list_request(SCHEDULED, "")).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let scheduled_at = rfc3339(&listed[0].time);

    server.advance_days(89).await;
    assert_eq!(list_all(&mut events, list_request(SCHEDULED, "")).await, listed, "89 days old: still listed");

    server.advance_days(2).await;
    assert!(list_all(&mut events, list_request(SCHEDULED, "")).await.is_empty(), "91 days old: gone");
    // Asking for an earlier start does not reach past the window.
    let request = pb::ListSystemEventsRequest {
        name: SCHEDULED.into(),
        start_time: format_rfc3339(scheduled_at - time::Duration::days(1)),
        ..Default::default()
    };
    assert!(list_all(&mut events, request).await.is_empty(), "the window is a floor");
    // The deletion, 61 days ago, still is listed.
    let deleted = list_all(&mut events, list_request(DELETED, "")).await;
    assert_eq!(deleted.len(), 1, "{deleted:#?}");
    assert_key_document(&deleted[0], DELETED, &key_id);
}

// ---------------------------------------------------------------------------
// Subscriptions: errors, deletion, secrets in the URL
// ---------------------------------------------------------------------------

#[tokio::test]
async fn malformed_subscriptions_are_refused() {
    let server = TestServer::start().await;
    let mut events = server.events().await;
    let create = |url: &str, name: &str, level: &str| pb::CreateEventSubscriptionRequest {
        webhook_url: url.to_owned(),
        name: name.to_owned(),
        level: level.to_owned(),
        description: String::new(),
    };

    let status = events.create_event_subscription(create("", "", "")).await.expect_err("no URL");
    assert_missing(&status, "WebhookUrl", "CreateEventSubscription without a URL");
    for url in ["https://127.0.0.1:8443/hook", "ftp://127.0.0.1/hook", "not a url", "127.0.0.1:8080/hook"] {
        let status = events.create_event_subscription(create(url, "", "")).await.expect_err(url);
        assert_invalid(&status, "WebhookUrl", url);
    }
    let status = events.create_event_subscription(create("http://127.0.0.1:1/x", "Key:Nope", "")).await;
    assert_invalid(&status.expect_err("an unknown name"), "Name", "an unknown name");
    let status = events.create_event_subscription(create("http://127.0.0.1:1/x", "", "LOUD")).await;
    assert_invalid(&status.expect_err("an unknown level"), "Level", "an unknown level");
    assert!(subscriptions(&mut events).await.is_empty(), "nothing was created");

    let request = pb::DeleteEventSubscriptionRequest { subscription_id: "sub-0123456789".into() };
    let status = events.delete_event_subscription(request).await.expect_err("an unknown subscription");
    assert_error(&status, tonic::Code::NotFound, "Forbidden.ResourceNotFound", "404", None, "unknown subscription");
    let request = pb::DeleteEventSubscriptionRequest { subscription_id: String::new() };
    let status = events.delete_event_subscription(request).await.expect_err("no id");
    assert_missing(&status, "SubscriptionId", "DeleteEventSubscription without an id");
}

#[tokio::test]
async fn a_deleted_subscription_receives_no_new_events() {
    let server = TestServer::start().await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);
    let mut leaving = receiver_ok().await;
    let mut staying = receiver_ok().await;
    let leaving_id = subscribe(&mut events, &leaving.url(), "").await;
    let staying_id = subscribe(&mut events, &staying.url(), "").await;
    assert_ne!(leaving_id, staying_id);
    let created = subscriptions(&mut events).await;
    let mut ids: Vec<&str> = created.iter().map(|s| s.subscription_id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![leaving_id.as_str(), staying_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);

    let first = create_key(&mut kms, "").await;
    schedule_deletion(&mut kms, &first, 7).await;
    assert_eq!(key_of(&leaving.next().await.json()), first);
    assert_eq!(key_of(&staying.next().await.json()), first);

    let request = pb::DeleteEventSubscriptionRequest { subscription_id: leaving_id.clone() };
    events.delete_event_subscription(request.clone()).await.expect("delete subscription");
    let listed = subscriptions(&mut events).await;
    assert_eq!(listed.iter().map(|s| s.subscription_id.as_str()).collect::<Vec<_>>(), [staying_id.as_str()]);
    let status = events.delete_event_subscription(request).await.expect_err("deleted twice");
    assert_error(&status, tonic::Code::NotFound, "Forbidden.ResourceNotFound", "404", None, "deleted twice");

    let second = create_key(&mut kms, "").await;
    schedule_deletion(&mut kms, &second, 7).await;
    server.advance_days(8).await;
    // The subscriber that stayed gets the three new events in order ...
    let posts = staying.take(3).await;
    let got: Vec<(&str, String)> = posts.iter().map(|p| (p.event_name(), key_of(&p.json()).to_owned())).collect();
    assert_eq!(got, [(SCHEDULED, second.clone()), (DELETED, first), (DELETED, second)]);
    // ... and by then the one that left has got none of them.
    leaving.assert_nothing_received("after its subscription was deleted");
}

#[tokio::test]
async fn the_webhook_query_string_stays_out_of_the_audit_trail() {
    let server = TestServer::start().await;
    let mut events = server.events().await;
    let mut hook = receiver_ok().await;
    let url = format!("http://127.0.0.1:{}/hook?access_token=SECRET123", hook.port);
    let request = pb::CreateEventSubscriptionRequest {
        webhook_url: url.clone(),
        description: "with a token".into(),
        ..Default::default()
    };
    let created = events.create_event_subscription(request).await.expect("subscribe").into_inner();
    assert_eq!(created.webhook_url, url, "the owner sees the URL as given");
    assert_eq!(subscriptions(&mut events).await[0].webhook_url, url);
    // A refused URL with a secret is not recorded either.
    let request = pb::CreateEventSubscriptionRequest {
        webhook_url: "https://127.0.0.1:1/hook?access_token=SECRET456".into(),
        ..Default::default()
    };
    events.create_event_subscription(request).await.expect_err("https");

    // The webhook itself is called with its query string.
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    schedule_deletion(&mut kms, &key_id, 7).await;
    let post = hook.next().await;
    assert_eq!(post.path, "/hook?access_token=SECRET123");

    let audit = all_audit_events(&server).await;
    let record = audit
        .iter()
        .find(|e| e.event_name == "CreateEventSubscription" && e.outcome == "Success")
        .unwrap_or_else(|| panic!("no CreateEventSubscription record in {audit:#?}"));
    let response = parse(&record.response_elements);
    assert_eq!(response["WebhookUrl"], format!("http://127.0.0.1:{}/hook", hook.port), "{record:#?}");
    assert_eq!(response["SubscriptionId"], created.subscription_id.as_str(), "{record:#?}");
    for event in &audit {
        let text = format!("{event:?}");
        assert!(!text.contains("SECRET123") && !text.contains("SECRET456"), "a secret in the audit trail: {event:#?}");
        assert!(!text.contains("access_token"), "the query string in the audit trail: {event:#?}");
    }
}

// ---------------------------------------------------------------------------
// Restarts
// ---------------------------------------------------------------------------

#[tokio::test]
async fn subscriptions_and_events_survive_a_restart_but_the_command_line_webhook_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut hook = receiver_ok().await;
    let mut command_line = receiver_ok().await;
    let config =
        || ServerConfig { store: kmsim::store::Location::Dir(dir.path().to_path_buf()), ..ServerConfig::default() };

    let server = TestServer::start_config(ServerConfig { event_webhook: Some(command_line.url()), ..config() }).await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);
    let subscription_id = subscribe(&mut events, &hook.url(), "").await;
    let key_id = create_key(&mut kms, "").await;
    schedule_deletion(&mut kms, &key_id, 7).await;
    assert_eq!(hook.next().await.event_name(), SCHEDULED);
    assert_eq!(command_line.next().await.event_name(), SCHEDULED);
    let before = list_all(&mut events, list_request("", "")).await;
    assert_eq!(before.len(), 1);
    server.stop().await;

    let server = TestServer::start_config(config()).await;
    let (mut kms, mut events) = (server.kms().await, server.events().await);
    let listed = subscriptions(&mut events).await;
    let listed: Vec<(&str, &str)> =
        listed.iter().map(|s| (s.subscription_id.as_str(), s.webhook_url.as_str())).collect();
    let url = hook.url();
    assert_eq!(listed, [(subscription_id.as_str(), url.as_str())], "only the stored subscription");
    assert_eq!(list_all(&mut events, list_request("", "")).await, before, "the event is still listed");

    server.advance_days(8).await;
    let post = hook.next().await;
    assert_eq!((post.event_name(), key_of(&post.json())), (DELETED, key_id.as_str()));
    let other = create_key(&mut kms, "").await;
    schedule_deletion(&mut kms, &other, 7).await;
    let post = hook.next().await;
    assert_eq!((post.event_name(), key_of(&post.json())), (SCHEDULED, other.as_str()));
    command_line.assert_nothing_received("the command-line webhook of the previous process");
    server.stop().await;
}
