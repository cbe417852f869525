//! `kmsim events …` (system events and their webhook subscriptions) and
//! `kmsim key history` (a key's life as a timeline, from the audit trail and
//! the events).

use clap::Subcommand;
use serde_json::{Value, json};
use tokio_stream::StreamExt;

use super::client::{Connection, Failure};
use super::output::{self, OutputFormat, Stdout};
use crate::proto as pb;
use crate::proto::audit_service_client::AuditServiceClient;
use crate::proto::event_service_client::EventServiceClient;

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List system events of the last 90 days, newest first.
    #[command(after_help = "Examples:\n  kmsim events list --name 'Key:*'\n  \
                            kmsim events list --level CRITICAL --start-time 2025-09-01T00:00:00Z --output json")]
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// RFC 3339; default 90 days ago.
        #[arg(long, default_value = "")]
        start_time: String,
        /// RFC 3339; default now.
        #[arg(long, default_value = "")]
        end_time: String,
        /// Events per page, 1 to 1000.
        #[arg(long, default_value_t = 100)]
        page_size: i32,
        /// Continue from a previous page: the nextPageToken it printed (there is none after the last page).
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// Print matching events as they happen, one per line (the CloudMonitor JSON with --output json).
    #[command(
        after_help = "Examples:\n  kmsim events watch\n  kmsim events watch --name Key:DeleteKey:ActualDeletion --count 1"
    )]
    Watch {
        #[command(flatten)]
        filter: FilterArgs,
        /// Stop after this many events; default: run until interrupted.
        #[arg(long)]
        count: Option<u64>,
    },
    /// POST matching events to a webhook (http://), retried with backoff.
    #[command(after_help = "Example:\n  kmsim events subscribe http://127.0.0.1:8080/kms-events --level WARN")]
    Subscribe {
        webhook_url: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List webhook subscriptions with their delivery status.
    #[command(after_help = "Example:\n  kmsim events subscriptions")]
    Subscriptions,
    /// Delete a webhook subscription.
    #[command(after_help = "Example:\n  kmsim events unsubscribe sub-5f0c…")]
    Unsubscribe { subscription_id: String },
}

#[derive(Debug, Clone, clap::Args)]
pub struct FilterArgs {
    /// An event name (Key:DeleteKey:ActualDeletion) or a prefix ending in '*' (Key:*).
    #[arg(long, default_value = "")]
    name: String,
    /// CRITICAL, WARN or INFO.
    #[arg(long, default_value = "")]
    level: String,
}

pub async fn events(conn: &Connection, command: EventsCommand) -> Result<Value, Failure> {
    let mut client = EventServiceClient::new(conn.channel().await?);
    Ok(match command {
        EventsCommand::List { filter, start_time, end_time, page_size, page_token } => {
            let request = pb::ListSystemEventsRequest {
                name: filter.name,
                level: filter.level,
                start_time,
                end_time,
                page_size,
                page_token,
            };
            let response = client.list_system_events(conn.request(request)).await?.into_inner();
            let events: Vec<Value> = response.events.iter().map(|e| event_json(e, conn.output)).collect();
            output::page(events, response.next_page_token)
        }
        EventsCommand::Watch { filter, count } => {
            let request = pb::WatchSystemEventsRequest { name: filter.name, level: filter.level };
            let mut stream = client.watch_system_events(conn.request(request)).await?.into_inner();
            let mut seen = 0;
            while count.is_none_or(|limit| seen < limit) {
                let Some(event) = stream.next().await else { break };
                let event = event?;
                let line = match conn.output {
                    OutputFormat::Json => event.json,
                    OutputFormat::Table => {
                        format!("{}  {:<8}  {}  {}", event.time, event.level, event.name, event.resource_id)
                    }
                };
                if output::print_line(&line).map_err(|e| Failure(format!("writing the events: {e}")))? == Stdout::Closed
                {
                    break;
                }
                seen += 1;
            }
            return Ok(Value::Null);
        }
        EventsCommand::Subscribe { webhook_url, filter, description } => {
            let request =
                pb::CreateEventSubscriptionRequest { webhook_url, name: filter.name, level: filter.level, description };
            subscription_json(client.create_event_subscription(conn.request(request)).await?.into_inner())
        }
        EventsCommand::Subscriptions => {
            let request = pb::ListEventSubscriptionsRequest {};
            let response = client.list_event_subscriptions(conn.request(request)).await?.into_inner();
            json!({ "subscriptions": response.subscriptions.into_iter().map(subscription_json).collect::<Vec<_>>() })
        }
        EventsCommand::Unsubscribe { subscription_id } => {
            let request = pb::DeleteEventSubscriptionRequest { subscription_id: subscription_id.clone() };
            client.delete_event_subscription(conn.request(request)).await?;
            json!({ "deleted": subscription_id })
        }
    })
}

/// Tables show the facts; JSON output carries the CloudMonitor document itself.
fn event_json(event: &pb::SystemEvent, output: OutputFormat) -> Value {
    match output {
        OutputFormat::Json => serde_json::from_str(&event.json).unwrap_or(Value::Null),
        OutputFormat::Table => json!({
            "time": event.time,
            "level": event.level,
            "name": event.name,
            "resourceId": event.resource_id,
        }),
    }
}

fn subscription_json(s: pb::EventSubscription) -> Value {
    let d = s.delivery.unwrap_or_default();
    json!({
        "subscriptionId": s.subscription_id,
        "webhookUrl": s.webhook_url,
        "name": s.name,
        "level": s.level,
        "description": s.description,
        "creationDate": s.creation_date,
        "delivered": d.delivered,
        "failed": d.failed,
        "dropped": d.dropped,
        "queued": d.queued,
        "attempts": d.attempts,
        "lastError": d.last_error,
        "lastAttemptTime": d.last_attempt_time,
        "lastSuccessTime": d.last_success_time,
    })
}

/// `kmsim key history KEY`: the key's lifecycle, oldest first, from its
/// successful management records and its system events. Works for a key that
/// is already deleted, given its id.
pub async fn key_history(conn: &Connection, key: String) -> Result<Value, Failure> {
    let key_id =
        match conn.kms().await?.describe_key(conn.request(pb::DescribeKeyRequest { key_id: key.clone() })).await {
            Ok(described) => described.into_inner().key_metadata.map(|m| m.key_id).unwrap_or(key),
            Err(_) => key,
        };
    let mut timeline = Vec::new();
    let mut audit = AuditServiceClient::new(conn.channel().await?);
    let mut page_token = String::new();
    loop {
        let request = pb::ListAuditEventsRequest {
            key_id: key_id.clone(),
            page_size: 1000,
            page_token: page_token.clone(),
            ..Default::default()
        };
        let page = audit.list_audit_events(conn.request(request)).await?.into_inner();
        // Pages come newest first; the timeline is built oldest first so that equal times keep their order.
        timeline.extend(page.events.iter().rev().filter_map(lifecycle_step));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut events = EventServiceClient::new(conn.channel().await?);
    let mut page_token = String::new();
    loop {
        let request =
            pb::ListSystemEventsRequest { name: "Key:*".into(), page_size: 1000, page_token, ..Default::default() };
        let page = events.list_system_events(conn.request(request)).await?.into_inner();
        let about_key = page.events.iter().filter(|e| e.resource_id.ends_with(&format!("key/{key_id}")));
        timeline.extend(about_key.rev().map(|e| step(&e.time, "event", &e.name, &e.level)));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    // Same-instant entries keep their order: the call's record, then the event it raised.
    timeline.sort_by(|a, b| a["time"].as_str().cmp(&b["time"].as_str()));
    Ok(json!({ "keyId": key_id, "timeline": timeline }))
}

fn step(time: &str, kind: &str, what: &str, detail: &str) -> Value {
    json!({ "time": time, "kind": kind, "what": what, "detail": detail })
}

/// The timeline entry of a successful lifecycle record; reads and failures are not part of a key's life.
fn lifecycle_step(e: &pb::AuditEvent) -> Option<Value> {
    if e.outcome != "Success" || e.event_rw != "Write" {
        return None;
    }
    let params: Value = serde_json::from_str(&e.request_parameters).unwrap_or(Value::Null);
    let response: Value = serde_json::from_str(&e.response_elements).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    let detail = match e.event_name.as_str() {
        "CreateKey" => format!("{} key, version {}", e.key_spec, e.key_version_id),
        "CreateKeyVersion" => format!("manual rotation to version {}", e.key_version_id),
        "RotateKey" => format!("automatic rotation to version {}", e.key_version_id),
        "EnableKey" => "state Enabled".to_owned(),
        "DisableKey" => "state Disabled".to_owned(),
        "ScheduleKeyDeletion" => format!("state PendingDeletion, deletion due {}", text(&response["DeleteDate"])),
        "CancelKeyDeletion" => "deletion cancelled".to_owned(),
        "DeleteKey" => "key and material destroyed".to_owned(),
        "UpdateRotationPolicy" => match params["EnableAutomaticRotation"].as_bool() {
            Some(true) => format!("automatic rotation on, every {}", text(&params["RotationInterval"])),
            _ => "automatic rotation off".to_owned(),
        },
        "ImportKeyMaterial" => "material imported".to_owned(),
        "DeleteKeyMaterial" | "DeleteExpiredKeyMaterial" => "material destroyed, state PendingImport".to_owned(),
        "CreateAlias" | "UpdateAlias" | "DeleteAlias" => text(&params["AliasName"]),
        _ => String::new(),
    };
    let by = if e.event_type == "AliyunServiceEvent" { "kmsim" } else { "call" };
    Some(step(&e.event_time, by, &e.event_name, &detail))
}
