//! Alert subscriptions: which system events go to which webhook. Delivery
//! itself is the business of [`crate::events::webhook`].

use std::sync::Arc;

use super::error::{ErrorCode, KmsError, KmsResult};
use super::{Change, Engine, Outcome, read_lock};
use crate::context::CallContext;
use crate::events::EventFilter;
use crate::events::webhook::{Subscription, check_webhook_url};

/// How many subscriptions one server keeps; a guard against runaway scripts.
pub const MAX_SUBSCRIPTIONS: usize = 100;

impl Engine {
    pub fn create_subscription(
        &self,
        cx: &CallContext,
        webhook_url: &str,
        filter: (&str, &str),
        description: &str,
    ) -> KmsResult<Outcome<Arc<Subscription>>> {
        if webhook_url.is_empty() {
            return Err(KmsError::missing("WebhookUrl"));
        }
        let uri = check_webhook_url(webhook_url).map_err(|reason| KmsError::invalid_because("WebhookUrl", &reason))?;
        let filter = EventFilter::new(filter.0, filter.1).map_err(KmsError::invalid)?;
        if read_lock(&self.subscriptions).len() >= MAX_SUBSCRIPTIONS {
            return Err(ErrorCode::LimitExceeded.into());
        }
        let subscription = Arc::new(Subscription {
            subscription_id: format!("sub-{}", crate::engine::crypto::new_uuid().simple()),
            webhook_url: webhook_url.to_owned(),
            filter,
            description: description.to_owned(),
            created: cx.received_at,
            from_command_line: false,
        });
        cx.trail.response_element("SubscriptionId", subscription.subscription_id.clone());
        let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
        let without_query = format!("http://{}{port}{}", uri.host().unwrap_or_default(), uri.path());
        cx.trail.response_element("WebhookUrl", without_query);
        Ok(Outcome::write(subscription.clone(), vec![Change::SaveSubscription(subscription)], Vec::new()))
    }

    /// The subscription `--event-webhook` asks for: it lives as long as the process and is never stored.
    pub fn subscribe_from_command_line(&self, webhook_url: &str, at: crate::clock::SimTime) -> Result<(), String> {
        check_webhook_url(webhook_url)?;
        let subscription = Arc::new(Subscription {
            subscription_id: "sub-command-line".to_owned(),
            webhook_url: webhook_url.to_owned(),
            filter: EventFilter::default(),
            description: "--event-webhook".to_owned(),
            created: at,
            from_command_line: true,
        });
        super::write_lock(&self.subscriptions).insert(subscription.subscription_id.clone(), subscription);
        Ok(())
    }

    pub fn subscriptions(&self) -> Vec<Arc<Subscription>> {
        read_lock(&self.subscriptions).values().cloned().collect()
    }

    pub fn delete_subscription(&self, cx: &CallContext, subscription_id: &str) -> KmsResult<Outcome<()>> {
        if subscription_id.is_empty() {
            return Err(KmsError::missing("SubscriptionId"));
        }
        if !read_lock(&self.subscriptions).contains_key(subscription_id) {
            return Err(ErrorCode::ResourceNotFound.into());
        }
        cx.trail.response_element("SubscriptionId", subscription_id.to_owned());
        let change = Change::RemoveSubscription { subscription_id: subscription_id.to_owned() };
        Ok(Outcome::write((), vec![change], Vec::new()))
    }
}
