//! Alert notifications: each subscription gets the matching events as an HTTP
//! POST of the event's JSON document to its webhook, in order.
//!
//! Delivery is decoupled from the calls that raise events: publishing only
//! appends to a subscription's queue, and one worker task per subscription
//! drains it, retrying a failed POST with exponential backoff before it gives
//! up on that event and moves on. A slow or dead webhook therefore delays only
//! its own queue, never a KMS call. Queues live in memory: events still queued
//! when the server stops are not delivered after a restart (they stay listable).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};

use super::{EventFilter, SystemEvent};
use crate::clock::{SimClock, SimTime};

/// Events a subscription may have waiting; beyond it the oldest are dropped (and counted).
const MAX_QUEUED: usize = 10_000;

/// One alert subscription: where to POST and which events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub subscription_id: String,
    pub webhook_url: String,
    pub filter: EventFilter,
    pub description: String,
    pub created: SimTime,
    /// Subscriptions from `--event-webhook` live as long as the process and are not stored.
    #[serde(default)]
    pub from_command_line: bool,
}

/// Checks that `url` is a webhook kmsim can POST to: plain `http://` with a host.
pub fn check_webhook_url(url: &str) -> Result<hyper::Uri, String> {
    let uri: hyper::Uri = url.parse().map_err(|_| "It is not a URL.".to_owned())?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(uri),
        Some("https") => Err("kmsim delivers over plain http:// only.".to_owned()),
        _ => Err("Write it as http://host[:port]/path.".to_owned()),
    }
}

/// How hard delivery tries before giving up on one event.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// How long one POST may take before it counts as failed.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, failed_attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed_attempts.saturating_sub(1));
        self.first_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// What a subscription's delivery has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStatus {
    pub delivered: u64,
    /// Events given up on after every attempt failed.
    pub failed: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    pub queued: u64,
    pub attempts: u64,
    pub last_error: String,
    pub last_attempt: Option<SimTime>,
    pub last_success: Option<SimTime>,
}

/// The current subscriptions; delivery asks on every event, so a deleted subscription stops receiving at once.
pub type SubscriptionSource = Arc<dyn Fn() -> Vec<Arc<Subscription>> + Send + Sync>;

/// Fans committed events out to the workers of matching subscriptions.
pub struct Deliveries {
    workers: Mutex<HashMap<String, Arc<Worker>>>,
    subscriptions: SubscriptionSource,
    client: Client<HttpConnector, Full<Bytes>>,
    clock: Arc<SimClock>,
    policy: RetryPolicy,
}

struct Worker {
    subscription_id: String,
    url: hyper::Uri,
    queue: Mutex<VecDeque<Arc<SystemEvent>>>,
    wake: Notify,
    status: Mutex<DeliveryStatus>,
}

impl Deliveries {
    pub fn new(subscriptions: SubscriptionSource, clock: Arc<SimClock>, policy: RetryPolicy) -> Arc<Deliveries> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(policy.timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Arc::new(Deliveries { workers: Mutex::default(), subscriptions, client, clock, policy })
    }

    /// Drains the bus's outbox until it closes.
    pub async fn run(self: Arc<Self>, mut outbox: mpsc::UnboundedReceiver<Arc<SystemEvent>>) {
        while let Some(event) = outbox.recv().await {
            for subscription in (self.subscriptions)() {
                if subscription.filter.matches(&event) {
                    self.worker(&subscription).enqueue(event.clone());
                }
            }
        }
    }

    /// The delivery status of a subscription; all zero before its first event.
    pub fn status(&self, subscription_id: &str) -> DeliveryStatus {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.get(subscription_id).map(|w| lock(&w.status).clone()).unwrap_or_default()
    }

    fn worker(self: &Arc<Self>, subscription: &Subscription) -> Arc<Worker> {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(worker) = workers.get(&subscription.subscription_id) {
            return worker.clone();
        }
        let url = check_webhook_url(&subscription.webhook_url).unwrap_or_default();
        let worker = Arc::new(Worker {
            subscription_id: subscription.subscription_id.clone(),
            url,
            queue: Mutex::default(),
            wake: Notify::new(),
            status: Mutex::default(),
        });
        workers.insert(subscription.subscription_id.clone(), worker.clone());
        tokio::spawn(self.clone().drain(worker.clone()));
        worker
    }

    fn still_subscribed(&self, subscription_id: &str) -> bool {
        (self.subscriptions)().iter().any(|s| s.subscription_id == subscription_id)
    }

    /// One worker's loop: deliver the queue's head, in order, until the subscription is deleted.
    async fn drain(self: Arc<Self>, worker: Arc<Worker>) {
        loop {
            let head = lock(&worker.queue).front().cloned();
            let Some(event) = head else {
                worker.wake.notified().await;
                continue;
            };
            if !self.still_subscribed(&worker.subscription_id) {
                break;
            }
            self.deliver(&worker, &event).await;
            let mut queue = lock(&worker.queue);
            // The head may have been dropped for space while we were delivering it.
            if queue.front().is_some_and(|e| Arc::ptr_eq(e, &event)) {
                queue.pop_front();
            }
            lock(&worker.status).queued = queue.len() as u64;
        }
        lock(&worker.queue).clear();
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.remove(&worker.subscription_id);
    }

    async fn deliver(&self, worker: &Worker, event: &SystemEvent) {
        let body = Bytes::from(event.json());
        for attempt in 1..=self.policy.attempts {
            // A subscription deleted while its event is being retried gets no further attempts.
            if !self.still_subscribed(&worker.subscription_id) {
                return;
            }
            let result = self.post(worker, event, body.clone(), attempt).await;
            let delivered = {
                let mut status = lock(&worker.status);
                status.attempts += 1;
                status.last_attempt = Some(self.clock.now());
                match result {
                    Ok(()) => {
                        status.delivered += 1;
                        status.last_success = status.last_attempt;
                        true
                    }
                    Err(error) => {
                        tracing::warn!(subscription = %worker.subscription_id, event = %event.id, attempt, %error, "webhook delivery failed");
                        status.last_error = error;
                        false
                    }
                }
            };
            if delivered {
                return;
            }
            if attempt < self.policy.attempts {
                tokio::time::sleep(self.policy.backoff(attempt)).await;
            }
        }
        lock(&worker.status).failed += 1;
    }

    async fn post(&self, worker: &Worker, event: &SystemEvent, body: Bytes, attempt: u32) -> Result<(), String> {
        let request = Request::post(worker.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("kmsim/", env!("CARGO_PKG_VERSION")))
            .header("x-kmsim-event-id", event.id.to_string())
            .header("x-kmsim-event-name", &event.name)
            .header("x-kmsim-delivery-attempt", attempt.to_string())
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(self.policy.timeout, self.client.request(request)).await {
            Err(_) => Err(format!("no answer within {:?}", self.policy.timeout)),
            Ok(Err(e)) => Err(format!("{e}")),
            Ok(Ok(response)) if response.status().is_success() => Ok(()),
            Ok(Ok(response)) => Err(format!("HTTP {}", response.status())),
        }
    }
}

impl Worker {
    fn enqueue(&self, event: Arc<SystemEvent>) {
        let mut queue = lock(&self.queue);
        let mut status = lock(&self.status);
        if queue.len() >= MAX_QUEUED {
            queue.pop_front();
            status.dropped += 1;
        }
        queue.push_back(event);
        status.queued = queue.len() as u64;
        drop((queue, status));
        self.wake.notify_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = RetryPolicy { first_backoff: Duration::from_millis(500), ..RetryPolicy::default() };
        let waits: Vec<u64> = (1..=8).map(|n| policy.backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    }

    #[test]
    fn only_plain_http_webhooks_are_accepted() {
        assert!(check_webhook_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_webhook_url("https://example.com/hook").unwrap_err().contains("http://"));
        assert!(check_webhook_url("ftp://example.com").is_err());
        assert!(check_webhook_url("not a url").is_err());
    }
}
