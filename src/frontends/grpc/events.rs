//! `kmsim.v1.EventService`: listing and watching system events, and managing
//! the webhook subscriptions that receive them.

use std::pin::Pin;

use serde_json::Value;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::audit::token_page_size;
use super::{Grpc, Rpc};
use crate::clock::SimTime;
use crate::engine::{KmsError, KmsResult, Outcome};
use crate::events::webhook::Subscription;
use crate::events::{EventFilter, LISTABLE_DAYS};
use crate::kernel::OpSpec;
use crate::kernel::Operation;
use crate::kernel::reads::EventQuery;
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

pub type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SystemEvent, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for EventsApi {
    async fn list_system_events(
        &self,
        request: Request<pb::ListSystemEventsRequest>,
    ) -> Result<Response<pb::ListSystemEventsResponse>, Status> {
        self.grpc.unary(request, list_system_events).await
    }

    type WatchSystemEventsStream = EventStream;

    async fn watch_system_events(
        &self,
        request: Request<pb::WatchSystemEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        self.grpc.stream(request, watch_system_events).await
    }

    async fn create_event_subscription(
        &self,
        request: Request<pb::CreateEventSubscriptionRequest>,
    ) -> Result<Response<pb::EventSubscription>, Status> {
        self.grpc.unary(request, create_event_subscription).await
    }

    async fn list_event_subscriptions(
        &self,
        request: Request<pb::ListEventSubscriptionsRequest>,
    ) -> Result<Response<pb::ListEventSubscriptionsResponse>, Status> {
        self.grpc.unary(request, list_event_subscriptions).await
    }

    async fn delete_event_subscription(
        &self,
        request: Request<pb::DeleteEventSubscriptionRequest>,
    ) -> Result<Response<pb::DeleteEventSubscriptionResponse>, Status> {
        self.grpc.unary(request, delete_event_subscription).await
    }
}

fn filter(name: &str, level: &str) -> KmsResult<EventFilter> {
    EventFilter::new(name, level).map_err(KmsError::invalid)
}

fn optional_time(text: &str, param: &str) -> KmsResult<Option<SimTime>> {
    match text {
        "" => Ok(None),
        text => SimTime::parse_rfc3339(text)
            .map(Some)
            .ok_or_else(|| KmsError::invalid_because(param, "Write it as RFC 3339, e.g. 2025-09-01T07:15:07Z.")),
    }
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

fn delivery_message(status: &crate::events::webhook::DeliveryStatus) -> pb::DeliveryStatus {
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

/// list_system_events as a kernel operation.
pub fn list_system_events(req: pb::ListSystemEventsRequest) -> impl Operation<Output = pb::ListSystemEventsResponse> {
    Rpc::new(&OpSpec::LIST_SYSTEM_EVENTS, req, |app, cx, req| async move {
        let filter = filter(&req.name, &req.level)?;
        let earliest = cx.received_at.plus_days(-LISTABLE_DAYS);
        let start = optional_time(&req.start_time, "StartTime")?.map_or(earliest, |t| t.max(earliest));
        let end = optional_time(&req.end_time, "EndTime")?.unwrap_or(cx.received_at);
        let limit = token_page_size(req.page_size)?;
        let before = match req.page_token.split_once('.') {
            None if req.page_token.is_empty() => None,
            Some((time, seq)) => {
                Some(time.parse().ok().zip(seq.parse().ok()).ok_or_else(|| KmsError::invalid("PageToken"))?)
            }
            None => return Err(KmsError::invalid("PageToken")),
        };
        let query = EventQuery { filter, start, end, limit };
        let page = app.list_events(query, before).await?;
        Ok(Outcome::read(pb::ListSystemEventsResponse {
            events: page.documents.iter().map(event_message).collect(),
            next_page_token: page.next_before.map(|(time, seq)| format!("{time}.{seq}")).unwrap_or_default(),
        }))
    })
}

/// create_event_subscription as a kernel operation.
pub fn create_event_subscription(
    req: pb::CreateEventSubscriptionRequest,
) -> impl Operation<Output = pb::EventSubscription> {
    Rpc::new(&OpSpec::CREATE_EVENT_SUBSCRIPTION, req, |app, cx, req| async move {
        let outcome =
            app.engine.create_subscription(&cx, &req.webhook_url, (&req.name, &req.level), &req.description)?;
        Ok(outcome.map(|subscription| subscription_message(&subscription, Default::default())))
    })
}

/// list_event_subscriptions as a kernel operation.
pub fn list_event_subscriptions(
    req: pb::ListEventSubscriptionsRequest,
) -> impl Operation<Output = pb::ListEventSubscriptionsResponse> {
    Rpc::new(&OpSpec::LIST_EVENT_SUBSCRIPTIONS, req, |app, _cx, _req| async move {
        let subscriptions = app
            .engine
            .subscriptions()
            .iter()
            .map(|s| subscription_message(s, delivery_message(&app.deliveries.status(&s.subscription_id))))
            .collect();
        Ok(Outcome::read(pb::ListEventSubscriptionsResponse { subscriptions }))
    })
}

/// delete_event_subscription as a kernel operation.
pub fn delete_event_subscription(
    req: pb::DeleteEventSubscriptionRequest,
) -> impl Operation<Output = pb::DeleteEventSubscriptionResponse> {
    Rpc::new(&OpSpec::DELETE_EVENT_SUBSCRIPTION, req, |app, cx, req| async move {
        let outcome = app.engine.delete_subscription(&cx, &req.subscription_id)?;
        Ok(outcome.map(|()| pb::DeleteEventSubscriptionResponse {}))
    })
}

/// watch_system_events as a kernel operation.
pub fn watch_system_events(req: pb::WatchSystemEventsRequest) -> impl Operation<Output = EventStream> {
    Rpc::new(&OpSpec::WATCH_SYSTEM_EVENTS, req, |app, _cx, req| async move {
        let filter = filter(&req.name, &req.level)?;
        // Subscribed before the stream opens, so nothing committed after the answer is missed.
        let live = BroadcastStream::new(app.engine.events().watch());
        let stream = live.filter_map(move |received| match received {
            Ok(event) => filter.matches(&event).then(|| Ok(event_message(&event.document))),
            // An error ends the stream: the watcher learns it missed events rather than silently skipping.
            Err(BroadcastStreamRecvError::Lagged(missed)) => {
                Some(Err(Status::data_loss(format!("the watcher fell behind and missed {missed} events"))))
            }
        });
        Ok(Outcome::read(Box::pin(stream) as EventStream))
    })
}
