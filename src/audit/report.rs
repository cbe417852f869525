//! The AccessKey usage report (ActionTrail's "AccessKey pair audit"): which
//! services an AccessKey reached and, per service, which operations, from
//! which addresses, on which resources, each with when it was last seen.

use std::collections::BTreeMap;

use super::record::AuditRecord;
use crate::clock::SimTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageItem {
    pub name: String,
    pub last_access: SimTime,
    pub count: u64,
    /// The latest record for the item, to look up its details.
    pub last_event_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUsage {
    pub service_name: String,
    pub last_access: SimTime,
    pub event_names: Vec<UsageItem>,
    pub source_ip_addresses: Vec<UsageItem>,
    pub resources: Vec<UsageItem>,
}

/// Builds the report from the key's records; services and items most recently used first.
pub fn access_key_usage(records: &[AuditRecord]) -> Vec<ServiceUsage> {
    #[derive(Default)]
    struct Tally {
        last: Option<SimTime>,
        event_names: BTreeMap<String, UsageItem>,
        addresses: BTreeMap<String, UsageItem>,
        resources: BTreeMap<String, UsageItem>,
    }
    let mut services: BTreeMap<&str, Tally> = BTreeMap::new();
    for record in records {
        let tally = services.entry(&record.service_name).or_default();
        tally.last = tally.last.max(Some(record.event_time));
        note(&mut tally.event_names, &record.event_name, record);
        note(&mut tally.addresses, &record.client_ip, record);
        note(&mut tally.resources, &record.key_arn, record);
        for referenced in &record.referenced_keys {
            note(&mut tally.resources, referenced, record);
        }
    }
    let mut report: Vec<ServiceUsage> = services
        .into_iter()
        .map(|(service, tally)| ServiceUsage {
            service_name: service.to_owned(),
            last_access: tally.last.unwrap_or(SimTime(0)),
            event_names: most_recent_first(tally.event_names),
            source_ip_addresses: most_recent_first(tally.addresses),
            resources: most_recent_first(tally.resources),
        })
        .collect();
    report.sort_by(|a, b| b.last_access.cmp(&a.last_access).then_with(|| a.service_name.cmp(&b.service_name)));
    report
}

fn note(items: &mut BTreeMap<String, UsageItem>, name: &str, record: &AuditRecord) {
    if name.is_empty() {
        return;
    }
    let item = items.entry(name.to_owned()).or_insert_with(|| UsageItem {
        name: name.to_owned(),
        last_access: record.event_time,
        count: 0,
        last_event_id: record.event_id.clone(),
    });
    item.count += 1;
    if record.event_time >= item.last_access {
        item.last_access = record.event_time;
        item.last_event_id.clone_from(&record.event_id);
    }
}

fn most_recent_first(items: BTreeMap<String, UsageItem>) -> Vec<UsageItem> {
    let mut items: Vec<UsageItem> = items.into_values().collect();
    items.sort_by(|a, b| b.last_access.cmp(&a.last_access).then_with(|| a.name.cmp(&b.name)));
    items
}
