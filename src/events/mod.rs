//! System events: the CloudMonitor-style notifications kmsim raises when
//! something happens to a resource without a caller asking for it (a key is
//! scheduled for deletion or deleted, a secret rotates, an instance nears its
//! QPS quota…).
//!
//! One model serves every kind: an event is built once, by the constructor of
//! its kind, as the exact JSON document CloudMonitor delivers; the engine hands
//! it to the store as a [`Change`](crate::engine::Change) so it commits with the
//! state change that raised it, and only then is it broadcast on the
//! [`EventBus`] to live watchers and webhook subscriptions.

pub mod webhook;

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::clock::SimTime;

/// How far back ListSystemEvents reaches, as CloudMonitor does.
pub const LISTABLE_DAYS: i64 = 90;

/// The ten kinds of event, by their CloudMonitor names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventName {
    QpsReminder,
    KeyScheduleDeletion,
    KeyActualDeletion,
    SecretScheduleDeletion,
    SecretActualDeletion,
    SecretRotationFailure,
    SecretRotationSuccess,
    KeySyncFailure,
    KeySyncSuccess,
    ClientKeyExpireReminder,
}

impl EventName {
    pub const ALL: [EventName; 10] = [
        EventName::QpsReminder,
        EventName::KeyScheduleDeletion,
        EventName::KeyActualDeletion,
        EventName::SecretScheduleDeletion,
        EventName::SecretActualDeletion,
        EventName::SecretRotationFailure,
        EventName::SecretRotationSuccess,
        EventName::KeySyncFailure,
        EventName::KeySyncSuccess,
        EventName::ClientKeyExpireReminder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventName::QpsReminder => "Instance:QPS:Reminder",
            EventName::KeyScheduleDeletion => "Key:DeleteKey:ScheduleDeletion",
            EventName::KeyActualDeletion => "Key:DeleteKey:ActualDeletion",
            EventName::SecretScheduleDeletion => "Secret:DeleteSecret:ScheduleDeletion",
            EventName::SecretActualDeletion => "Secret:DeleteSecret:ActualDeletion",
            EventName::SecretRotationFailure => "Secret:RotateSecret:Failure",
            EventName::SecretRotationSuccess => "Secret:RotateSecret:Success",
            EventName::KeySyncFailure => "Instance:KeySync:Failure",
            EventName::KeySyncSuccess => "Instance:KeySync:Success",
            EventName::ClientKeyExpireReminder => "Instance:ClientKey:ExpireReminder",
        }
    }

    pub fn parse(text: &str) -> Option<EventName> {
        EventName::ALL.into_iter().find(|name| name.as_str() == text)
    }

    pub fn level(self) -> Level {
        match self {
            EventName::QpsReminder
            | EventName::SecretRotationFailure
            | EventName::KeySyncFailure
            | EventName::ClientKeyExpireReminder => Level::Critical,
            EventName::KeyScheduleDeletion
            | EventName::KeyActualDeletion
            | EventName::SecretScheduleDeletion
            | EventName::SecretActualDeletion => Level::Warn,
            EventName::SecretRotationSuccess | EventName::KeySyncSuccess => Level::Info,
        }
    }

    /// The `status` field, as each of the seed's documents spells it.
    fn status(self) -> &'static str {
        match self {
            EventName::SecretRotationFailure => "Failed",
            EventName::KeySyncFailure | EventName::KeySyncSuccess | EventName::ClientKeyExpireReminder => "Normal",
            _ => "normal",
        }
    }

    /// Key and secret events put the envelope's fields in one order, instance
    /// events in another; kmsim keeps each as the seed prints it.
    fn is_instance_event(self) -> bool {
        matches!(
            self,
            EventName::QpsReminder
                | EventName::KeySyncFailure
                | EventName::KeySyncSuccess
                | EventName::ClientKeyExpireReminder
        )
    }
}

/// Event levels, spelled as the JSON documents spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Info,
    Warn,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Critical => "CRITICAL",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        [Level::Info, Level::Warn, Level::Critical].into_iter().find(|l| l.as_str().eq_ignore_ascii_case(text))
    }
}

/// One system event: the CloudMonitor document plus the facts it is filtered by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemEvent {
    pub id: Uuid,
    pub name: String,
    pub level: String,
    pub time: SimTime,
    pub region: String,
    /// The ARN of the key, secret, instance or application access point.
    pub resource_id: String,
    /// The document exactly as delivered.
    pub document: Value,
}

/// Who an event is about: the envelope fields common to every kind.
pub struct Subject<'a> {
    pub account_id: &'a str,
    pub region: &'a str,
    /// The ARN of the resource.
    pub resource_arn: String,
    /// What the console shows as the instance name (a key id, a secret name, an instance id).
    pub instance_name: String,
    /// The resource's id inside `content.eventId`.
    pub event_resource: String,
}

impl SystemEvent {
    pub fn json(&self) -> String {
        self.document.to_string()
    }

    pub fn level(&self) -> Option<Level> {
        Level::parse(&self.level)
    }

    /// Builds the document of kind `name` about `subject` at `time`;
    /// `content` is the kind's own fields after `eventId`.
    fn new(name: EventName, subject: Subject<'_>, time: SimTime, content: Map<String, Value>) -> SystemEvent {
        let id = crate::engine::crypto::new_uuid();
        let event_id = format!("{}:{}:{}", subject.account_id, subject.event_resource, time.millis().div_euclid(1000));
        let mut full_content = Map::new();
        full_content.insert("eventId".into(), event_id.into());
        full_content.extend(content);
        let level = name.level().as_str();
        let document = if name.is_instance_event() {
            json!({
                "product": "kms",
                "resourceId": subject.resource_arn,
                "level": level,
                "instanceName": subject.instance_name,
                "regionId": subject.region,
                "name": name.as_str(),
                "content": full_content,
                "status": name.status(),
                "id": id.to_string(),
                "time": time.millis(),
                "groupId": "0",
            })
        } else {
            json!({
                "id": id.to_string(),
                "status": name.status(),
                "instanceName": subject.instance_name,
                "resourceId": subject.resource_arn,
                "content": full_content,
                "product": "kms",
                "time": time.millis(),
                "level": level,
                "regionId": subject.region,
                "groupId": "0",
                "name": name.as_str(),
            })
        };
        SystemEvent {
            id,
            name: name.as_str().to_owned(),
            level: level.to_owned(),
            time,
            region: subject.region.to_owned(),
            resource_id: subject.resource_arn,
            document,
        }
    }

    pub fn key_deletion_scheduled(key: Subject<'_>, planned: SimTime, at: SimTime) -> SystemEvent {
        SystemEvent::deletion(EventName::KeyScheduleDeletion, key, ("keyId", "plannedDeleteTime"), planned, at)
    }

    pub fn key_deleted(key: Subject<'_>, at: SimTime) -> SystemEvent {
        SystemEvent::deletion(EventName::KeyActualDeletion, key, ("keyId", "deleteTime"), at, at)
    }

    pub fn secret_deletion_scheduled(secret: Subject<'_>, planned: SimTime, at: SimTime) -> SystemEvent {
        SystemEvent::deletion(
            EventName::SecretScheduleDeletion,
            secret,
            ("secretName", "plannedDeleteTime"),
            planned,
            at,
        )
    }

    pub fn secret_deleted(secret: Subject<'_>, at: SimTime) -> SystemEvent {
        SystemEvent::deletion(EventName::SecretActualDeletion, secret, ("secretName", "deleteTime"), at, at)
    }

    /// The four deletion events share one shape: the resource's name, its ARN, and a time.
    fn deletion(
        name: EventName,
        subject: Subject<'_>,
        (name_field, time_field): (&str, &str),
        when: SimTime,
        at: SimTime,
    ) -> SystemEvent {
        let content = fields([
            (name_field, subject.instance_name.clone().into()),
            ("deleteEntityArn", subject.resource_arn.clone().into()),
            (time_field, when.to_rfc3339().into()),
        ]);
        SystemEvent::new(name, subject, at, content)
    }

    /// A managed rotation that worked (`Ok(message)`) or failed (`Err((code, message))`).
    pub fn secret_rotated(
        secret: Subject<'_>,
        rotation: &SecretRotation,
        result: Result<&str, (&str, &str)>,
        at: SimTime,
    ) -> SystemEvent {
        let mut content = fields([
            ("secretName", secret.instance_name.clone().into()),
            ("secretType", rotation.secret_type.clone().into()),
            ("rotationEntityArn", secret.resource_arn.clone().into()),
            ("rotationStatus", rotation.rotation_status.clone().into()),
            ("secretSubType", rotation.secret_sub_type.clone().into()),
        ]);
        let name = match result {
            Ok(message) => {
                content.insert("successTime".into(), at.to_rfc3339().into());
                content.insert("message".into(), message.into());
                EventName::SecretRotationSuccess
            }
            Err((code, message)) => {
                content.insert("failureInfo".into(), json!({"errorCode": code, "errorMessage": message}));
                content.insert("failureTime".into(), at.to_rfc3339().into());
                EventName::SecretRotationFailure
            }
        };
        SystemEvent::new(name, secret, at, content)
    }

    /// `qps` and `quota` in calls per second; the content's `time` is written `YYYY-MM-DD HH:MM:SS` as the seed does.
    pub fn qps_reminder(instance: Subject<'_>, instance_id: &str, qps: u64, quota: u64, at: SimTime) -> SystemEvent {
        let content = fields([
            ("qps", qps.to_string().into()),
            ("kmsInstanceId", instance_id.into()),
            ("time", at.to_rfc3339().trim_end_matches('Z').replace('T', " ").into()),
            ("qpsQuota", quota.to_string().into()),
        ]);
        SystemEvent::new(EventName::QpsReminder, instance, at, content)
    }

    /// A key synced (`error_code` `None`) or failed to sync from one instance to its replica.
    pub fn key_synced(key: Subject<'_>, sync: &KeySync, error_code: Option<&str>, at: SimTime) -> SystemEvent {
        let (name, status) = match error_code {
            None => (EventName::KeySyncSuccess, "SyncSuccess"),
            Some(_) => (EventName::KeySyncFailure, "SyncFailure"),
        };
        let content = fields([
            ("syncTaskId", sync.sync_task_id.clone().into()),
            ("masterInstanceId", sync.master_instance_id.clone().into()),
            ("shadowInstanceId", sync.shadow_instance_id.clone().into()),
            ("syncStatus", status.into()),
            ("errorCode", error_code.unwrap_or_default().into()),
            ("resourceId", sync.key_id.clone().into()),
            ("resourceType", "KEY".into()),
            ("eventTime", at.to_rfc3339().into()),
        ]);
        SystemEvent::new(name, key, at, content)
    }

    /// `aap` is the application access point; its `instance_name` is the ClientKey's name.
    pub fn client_key_expiring(
        aap: Subject<'_>,
        affected_instance_id: &str,
        expires: SimTime,
        days_to_expire: u32,
        at: SimTime,
    ) -> SystemEvent {
        let content = fields([
            ("clientKeyName", aap.instance_name.clone().into()),
            ("dateOfExpiration", expires.to_rfc3339().into()),
            ("daysToExpire", days_to_expire.to_string().into()),
            ("affectedKmsInstanceId", affected_instance_id.into()),
        ]);
        // The seed puts clientKeyName before eventId; the order of `content` follows it.
        let mut event = SystemEvent::new(EventName::ClientKeyExpireReminder, aap, at, content);
        if let Some(Value::Object(content)) = event.document.get_mut("content") {
            let event_id = content.shift_remove("eventId").unwrap_or_default();
            content.shift_insert(1, "eventId".into(), event_id);
        }
        event
    }
}

/// The rotation facts a secret-rotation event carries.
#[derive(Debug, Clone)]
pub struct SecretRotation {
    pub secret_type: String,
    pub secret_sub_type: String,
    /// `Enabled`, `Disabled` or `Invalid`.
    pub rotation_status: String,
}

/// The sync task a key-sync event reports.
#[derive(Debug, Clone)]
pub struct KeySync {
    pub sync_task_id: String,
    pub master_instance_id: String,
    pub shadow_instance_id: String,
    pub key_id: String,
}

fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Which events a listing, a watch or a subscription wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// An event name, or a prefix ending in `*` (`Key:*`); empty for all.
    pub name: String,
    /// `CRITICAL`, `WARN` or `INFO`; empty for all.
    pub level: String,
}

impl EventFilter {
    /// Checks the filter's spelling; the error names the parameter at fault.
    pub fn new(name: &str, level: &str) -> Result<EventFilter, &'static str> {
        let name = name.trim();
        let known = match name.strip_suffix('*') {
            Some(prefix) => EventName::ALL.iter().any(|n| n.as_str().starts_with(prefix)),
            None => name.is_empty() || EventName::parse(name).is_some(),
        };
        if !known {
            return Err("Name");
        }
        let level = match level.trim() {
            "" => String::new(),
            text => Level::parse(text).ok_or("Level")?.as_str().to_owned(),
        };
        Ok(EventFilter { name: name.to_owned(), level })
    }

    pub fn matches(&self, event: &SystemEvent) -> bool {
        let name_matches = match self.name.strip_suffix('*') {
            Some(prefix) => event.name.starts_with(prefix),
            None => self.name.is_empty() || self.name == event.name,
        };
        name_matches && (self.level.is_empty() || self.level == event.level)
    }
}

/// Capacity of the live broadcast; a watcher that falls this far behind is told how many it missed.
const LIVE_CAPACITY: usize = 4096;

/// Where committed events go: live watchers, and the outbox the webhook deliverer drains.
pub struct EventBus {
    live: broadcast::Sender<Arc<SystemEvent>>,
    /// Unbounded so publishing never waits; the deliverer bounds each subscription's queue instead.
    outbox: Mutex<Option<mpsc::UnboundedSender<Arc<SystemEvent>>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus { live: broadcast::channel(LIVE_CAPACITY).0, outbox: Mutex::new(None) }
    }
}

impl EventBus {
    /// Called only after the event is committed.
    pub fn publish(&self, event: Arc<SystemEvent>) {
        let outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(outbox) = outbox.as_ref() {
            let _ = outbox.send(event.clone());
        }
        let _ = self.live.send(event);
    }

    pub fn watch(&self) -> broadcast::Receiver<Arc<SystemEvent>> {
        self.live.subscribe()
    }

    /// Every event published from now on is also sent to the returned receiver.
    pub fn connect_outbox(&self) -> mpsc::UnboundedReceiver<Arc<SystemEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.outbox.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> Subject<'static> {
        Subject {
            account_id: "1192853035118460",
            region: "cn-hangzhou",
            resource_arn: format!("acs:kms:cn-hangzhou:1192853035118460:key/{id}"),
            instance_name: id.to_owned(),
            event_resource: id.to_owned(),
        }
    }

    fn keys_of(value: &Value) -> Vec<&str> {
        value.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn key_deletion_events_have_exactly_the_seed_fields_in_the_seed_order() {
        let at = SimTime(1_755_855_590_000);
        let event = SystemEvent::key_deleted(key("key-1"), at);
        let doc = &event.document;
        assert_eq!(
            keys_of(doc),
            [
                "id",
                "status",
                "instanceName",
                "resourceId",
                "content",
                "product",
                "time",
                "level",
                "regionId",
                "groupId",
                "name"
            ]
        );
        assert_eq!(keys_of(&doc["content"]), ["eventId", "keyId", "deleteEntityArn", "deleteTime"]);
        assert_eq!(doc["content"]["eventId"], "1192853035118460:key-1:1755855590");
        assert_eq!(doc["content"]["deleteTime"], "2025-08-22T09:39:50Z");
        assert_eq!(doc["time"], 1_755_855_590_000_i64);
        assert_eq!((doc["level"].as_str(), doc["status"].as_str()), (Some("WARN"), Some("normal")));

        let scheduled = SystemEvent::key_deletion_scheduled(key("key-1"), at.plus_days(7), at);
        assert_eq!(
            keys_of(&scheduled.document["content"]),
            ["eventId", "keyId", "deleteEntityArn", "plannedDeleteTime"]
        );
        assert_eq!(scheduled.document["content"]["plannedDeleteTime"], "2025-08-29T09:39:50Z");
    }

    #[test]
    fn every_kind_carries_its_content_fields_and_level() {
        let at = SimTime(1_756_102_245_000);
        let rotation = SecretRotation {
            secret_type: "ECS".into(),
            secret_sub_type: "ECSLoginPassword".into(),
            rotation_status: "Enabled".into(),
        };
        let sync = KeySync {
            sync_task_id: "task".into(),
            master_instance_id: "kst-a".into(),
            shadow_instance_id: "kst-b".into(),
            key_id: "key-1".into(),
        };
        let cases = [
            (SystemEvent::qps_reminder(key("kst-1"), "kst-1", 1800, 2000, at), "qps kmsInstanceId time qpsQuota"),
            (SystemEvent::secret_deletion_scheduled(key("s"), at, at), "secretName deleteEntityArn plannedDeleteTime"),
            (SystemEvent::secret_deleted(key("s"), at), "secretName deleteEntityArn deleteTime"),
            (
                SystemEvent::secret_rotated(key("s"), &rotation, Err(("RotateError", "boom")), at),
                "secretName secretType rotationEntityArn rotationStatus secretSubType failureInfo failureTime",
            ),
            (
                SystemEvent::secret_rotated(key("s"), &rotation, Ok(""), at),
                "secretName secretType rotationEntityArn rotationStatus secretSubType successTime message",
            ),
            (
                SystemEvent::key_synced(key("key-1"), &sync, Some("Timeout"), at),
                "syncTaskId masterInstanceId shadowInstanceId syncStatus errorCode resourceId resourceType eventTime",
            ),
            (
                SystemEvent::key_synced(key("key-1"), &sync, None, at),
                "syncTaskId masterInstanceId shadowInstanceId syncStatus errorCode resourceId resourceType eventTime",
            ),
        ];
        let mut names = vec![EventName::KeyActualDeletion.as_str(), EventName::KeyScheduleDeletion.as_str()];
        for (event, expected) in &cases {
            let content = keys_of(&event.document["content"]);
            let expected: Vec<&str> = std::iter::once("eventId").chain(expected.split(' ')).collect();
            assert_eq!(content, expected, "{}", event.name);
            let name = EventName::parse(&event.name).unwrap();
            assert_eq!(event.document["level"], name.level().as_str());
            names.push(name.as_str());
        }
        let reminder = SystemEvent::client_key_expiring(key("ck"), "kst-1", at.plus_days(30), 30, at);
        assert_eq!(
            keys_of(&reminder.document["content"]),
            ["clientKeyName", "eventId", "dateOfExpiration", "daysToExpire", "affectedKmsInstanceId"]
        );
        assert_eq!(reminder.document["content"]["daysToExpire"], "30");
        names.push(&reminder.name);
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventName::ALL.len(), "every kind has a constructor");
        assert_eq!(cases[0].0.document["content"]["time"], "2025-08-25 06:10:45");
        assert_eq!(cases[3].0.document["status"], "Failed");
    }

    #[test]
    fn filters_match_by_name_prefix_and_level() {
        let event = SystemEvent::key_deleted(key("k"), SimTime(0));
        assert!(EventFilter::new("", "").unwrap().matches(&event));
        assert!(EventFilter::new("Key:*", "warn").unwrap().matches(&event));
        assert!(!EventFilter::new("Secret:*", "").unwrap().matches(&event));
        assert!(!EventFilter::new("", "CRITICAL").unwrap().matches(&event));
        assert_eq!(EventFilter::new("Key:Nope", ""), Err("Name"));
        assert_eq!(EventFilter::new("", "LOUD"), Err("Level"));
    }
}
