//! System events: listing the stored ones, watching them as they happen, and
//! the webhook subscriptions that receive them.

use std::sync::Arc;

use serde_json::Value;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::audit::{TokenPage, token_page_size};
use super::{Missed, Stream, operation};
use crate::clock::SimTime;
use crate::engine::{KmsError, KmsResult, Outcome};
use crate::events::webhook::{DeliveryStatus, Subscription};
use crate::events::{EventFilter, LISTABLE_DAYS, SystemEvent};
use crate::kernel::Names;
use crate::kernel::reads::EventQuery;

operation! {
    /// Event documents newest first, from at most 90 days back.
    ListSystemEvents = LIST_SYSTEM_EVENTS -> TokenPage<Value> {
        name: String = "Name",
        level: String = "Level",
        start_time: String = "StartTime",
        end_time: String = "EndTime",
        page_size: i32 = "PageSize",
        page_token: String = "PageToken",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let filter = filter(&op.name, &op.level)?;
        let earliest = cx.received_at.plus_days(-LISTABLE_DAYS);
        let start = optional_time(&op.start_time, "StartTime")?.map_or(earliest, |t| t.max(earliest));
        let end = optional_time(&op.end_time, "EndTime")?.unwrap_or(cx.received_at);
        let limit = token_page_size(op.page_size)?;
        let before = match op.page_token.split_once('.') {
            None if op.page_token.is_empty() => None,
            Some((time, seq)) => {
                Some(time.parse().ok().zip(seq.parse().ok()).ok_or_else(|| KmsError::invalid("PageToken"))?)
            }
            None => return Err(KmsError::invalid("PageToken")),
        };
        let query = EventQuery { filter, start, end, limit };
        let page = app.list_events(query, before).await?;
        Outcome::read(TokenPage {
            items: page.documents,
            next_page_token: page.next_before.map(|(time, seq)| format!("{time}.{seq}")),
        })
    }
}

operation! {
    /// Every event the filter keeps from now on, as it happens.
    WatchSystemEvents = WATCH_SYSTEM_EVENTS -> Stream<Result<Arc<SystemEvent>, Missed>> {
        name: String = "Name",
        level: String = "Level",
    }
    names(_) { Names::none() }
    run(op, app, _) {
        let filter = filter(&op.name, &op.level)?;
        // Subscribed before the stream opens, so nothing committed after the answer is missed.
        let live = BroadcastStream::new(app.engine.events().watch());
        let stream = live.filter_map(move |received| match received {
            Ok(event) => filter.matches(&event).then_some(Ok(event)),
            Err(BroadcastStreamRecvError::Lagged(missed)) => Some(Err(Missed(missed))),
        });
        Outcome::read(Box::pin(stream) as Stream<Result<Arc<SystemEvent>, Missed>>)
    }
}

operation! {
    /// The webhook URL may carry a token (chat-bot webhooks do): it is not a
    /// parameter, and the engine records it without its query.
    CreateEventSubscription = CREATE_EVENT_SUBSCRIPTION -> Arc<Subscription> {
        webhook_url: String,
        name: String = "Name",
        level: String = "Level",
        description: String = "Description",
    }
    names(_) { Names::none() }
    run(op, app, cx) { app.engine.create_subscription(&cx, &op.webhook_url, (&op.name, &op.level), &op.description)? }
}

operation! {
    /// Every subscription, with how its deliveries stand.
    ListEventSubscriptions = LIST_EVENT_SUBSCRIPTIONS -> Vec<(Arc<Subscription>, DeliveryStatus)> {}
    names(_) { Names::none() }
    run(_, app, _) {
        let subscriptions = app.engine.subscriptions();
        Outcome::read(
            subscriptions
                .into_iter()
                .map(|s| {
                    let status = app.deliveries.status(&s.subscription_id);
                    (s, status)
                })
                .collect(),
        )
    }
}

operation! {
    DeleteEventSubscription = DELETE_EVENT_SUBSCRIPTION -> () {
        subscription_id: String = "SubscriptionId",
    }
    names(_) { Names::none() }
    run(op, app, cx) { app.engine.delete_subscription(&cx, &op.subscription_id)? }
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
