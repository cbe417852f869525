//! `kmsim.v1.EventService`: which kernel operation each method is, how its
//! request decodes into it, and how its output (the watch stream's events
//! too) encodes as the response. The kernel does the rest.

use std::sync::Arc;

use serde_json::Value;
use tokio_stream::StreamExt;
use tonic::{Request, Status};

use super::{Grpc, Reply, decode, service};
use crate::clock::SimTime;
use crate::events::SystemEvent;
use crate::events::webhook::{DeliveryStatus, Subscription};
use crate::kernel::ops::events as ops;
use crate::kernel::ops::{Missed, Stream};
use crate::proto as pb;
use crate::proto::event_service_server::EventService;

pub struct EventsApi {
    grpc: Grpc,
}

impl EventsApi {
    pub fn new(grpc: Grpc) -> Self {
        EventsApi { grpc }
    }
}

pub type EventStream = Stream<Result<pb::SystemEvent, Status>>;

service! {
    impl EventService for EventsApi {
        list_system_events(ListSystemEventsRequest) -> ListSystemEventsResponse = ListSystemEvents,
            |page| pb::ListSystemEventsResponse {
                events: page.items.iter().map(event_message).collect(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            };
        create_event_subscription(CreateEventSubscriptionRequest) -> EventSubscription = CreateEventSubscription,
            |subscription| subscription_message(&subscription, pb::DeliveryStatus::default());
        list_event_subscriptions(ListEventSubscriptionsRequest) -> ListEventSubscriptionsResponse =
            ListEventSubscriptions, |subscriptions| pb::ListEventSubscriptionsResponse {
                subscriptions: subscriptions
                    .iter()
                    .map(|(s, status)| subscription_message(s, delivery_message(status)))
                    .collect(),
            };
        delete_event_subscription(DeleteEventSubscriptionRequest) -> DeleteEventSubscriptionResponse =
            DeleteEventSubscription, |()| pb::DeleteEventSubscriptionResponse {};

        @by_hand
        type WatchSystemEventsStream = EventStream;

        async fn watch_system_events(&self, request: Request<pb::WatchSystemEventsRequest>) -> Reply<EventStream> {
            self.grpc.open(request, ops::WatchSystemEvents::from, watched).await
        }
    }
}

decode! {
    ListSystemEventsRequest => ListSystemEvents { name, level, start_time, end_time, page_size, page_token }
    WatchSystemEventsRequest => WatchSystemEvents { name, level }
    CreateEventSubscriptionRequest => CreateEventSubscription { webhook_url, name, level, description }
    ListEventSubscriptionsRequest => ListEventSubscriptions {}
    DeleteEventSubscriptionRequest => DeleteEventSubscription { subscription_id }
}

/// The watched events; falling behind ends the stream with DATA_LOSS, so the
/// watcher learns it missed events rather than silently skipping them.
fn watched(events: Stream<Result<Arc<SystemEvent>, Missed>>) -> EventStream {
    Box::pin(events.map(|received| {
        received
            .map(|event| event_message(&event.document))
            .map_err(|Missed(missed)| Status::data_loss(format!("the watcher fell behind and missed {missed} events")))
    }))
}

/// The message for an event, read from its CloudMonitor document.
fn event_message(document: &Value) -> pb::SystemEvent {
    let text = |field: &str| document[field].as_str().unwrap_or_default().to_owned();
    pb::SystemEvent {
        id: text("id"),
        name: text("name"),
        level: text("level"),
        time: document["time"].as_i64().map(|ms| SimTime(ms).to_rfc3339_millis()).unwrap_or_default(),
        region: text("regionId"),
        resource_id: text("resourceId"),
        json: document.to_string(),
    }
}

fn subscription_message(s: &Subscription, delivery: pb::DeliveryStatus) -> pb::EventSubscription {
    pb::EventSubscription {
        subscription_id: s.subscription_id.clone(),
        webhook_url: s.webhook_url.clone(),
        name: s.filter.name.clone(),
        level: s.filter.level.clone(),
        description: s.description.clone(),
        creation_date: s.created.to_rfc3339(),
        delivery: Some(delivery),
    }
}

fn delivery_message(status: &DeliveryStatus) -> pb::DeliveryStatus {
    let time = |t: Option<SimTime>| t.map(SimTime::to_rfc3339_millis).unwrap_or_default();
    pb::DeliveryStatus {
        delivered: status.delivered,
        failed: status.failed,
        dropped: status.dropped,
        queued: status.queued,
        attempts: status.attempts,
        last_error: status.last_error.clone(),
        last_attempt_time: time(status.last_attempt),
        last_success_time: time(status.last_success),
    }
}
