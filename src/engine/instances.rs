//! KMS instances: dedicated key stores with a region, a QPS spec and an expiry
//! date, and the resource ids that carry their region's code.
//!
//! When an instance expires (by the clock) every key in it turns
//! `Unavailable`; that is due work on the agenda like a deletion date. Keys
//! created outside instances are "default keys" and never expire.
//!
//! An instance comes with quotas (keys, secrets, VPCs, and its QPS spec) and
//! a new key or secret beyond its quota is refused. Also here: the regions
//! kmsim knows by name.

use std::sync::Arc;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, KmsError, KmsResult};
use super::key::{Key, KeyState};
use super::{Change, Engine, Outcome, read_lock};
use crate::clock::SimTime;
use crate::context::CallContext;

/// The specs Alibaba sells; any other positive QPS is accepted too ("more on request").
pub const STANDARD_SPECS: [u32; 4] = [200, 1000, 2000, 4000];
/// The largest spec accepted, so a meter's window stays bounded.
pub const MAX_SPEC: u32 = 100_000;
/// An instance bought without a stated expiry runs for a year.
const DEFAULT_TERM_DAYS: i64 = 365;
/// Keys, secrets and VPCs an instance may hold: kmsim's instances come with the
/// quotas of Alibaba's smallest purchase and no way to buy more.
pub const KEY_QUOTA: usize = 1000;
pub const SECRET_QUOTA: usize = 1000;
pub const VPC_QUOTA: usize = 1;

/// Alibaba's regions that kmsim knows by name, with the three-letter code
/// their instance and key ids carry. Every other well-formed region id is
/// served too.
const KNOWN_REGIONS: [(&str, &str); 7] = [
    ("cn-hangzhou", "hzz"),
    ("cn-shanghai", "shh"),
    ("cn-beijing", "bjj"),
    ("cn-shenzhen", "szz"),
    ("cn-chengdu", "cdd"),
    ("cn-hongkong", "hkk"),
    ("ap-southeast-1", "sgp"),
];

/// A KMS instance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Instance {
    pub instance_id: String,
    pub instance_name: String,
    pub region: String,
    pub account_id: String,
    /// Calls per second the instance serves; beyond it calls are throttled.
    pub spec: u32,
    pub created: SimTime,
    pub expires: SimTime,
    /// Set when the expiry has been carried out (the keys made Unavailable).
    #[serde(default)]
    pub expired: bool,
}

impl Instance {
    pub fn arn(&self) -> String {
        format!("acs:kms:{}:{}:instance/{}", self.region, self.account_id, self.instance_id)
    }

    /// Whether the instance is past its expiry at `now`, carried out or not yet.
    pub fn is_expired_at(&self, now: SimTime) -> bool {
        self.expired || now >= self.expires
    }

    /// `Enabled`, or `Expired` once the expiry has been carried out.
    pub fn status(&self) -> &'static str {
        if self.expired { "Expired" } else { "Enabled" }
    }
}

/// What an instance holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Its keys, replicas included.
    pub keys: usize,
    /// The secrets sealed under its keys.
    pub secrets: usize,
}

/// One of an instance's quotas, and how much of it is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// `key`, `secret`, `qps` or `vpc`, as Alibaba names them.
    pub resource_type: &'static str,
    pub quota: u64,
    pub used: u64,
}

/// CreateKmsInstance's parameters as the client gave them; empty means "default".
#[derive(Debug, Default, Clone)]
pub struct CreateInstanceInput {
    pub region: String,
    pub spec: i64,
    pub expire_time: String,
    pub instance_name: String,
}

/// The three-letter code that instance and key ids carry for their region
/// (`kst-hzz…`, `key-hzz…`). Regions not in the table use the first letters of
/// their city part, so every region gets a stable code.
pub fn region_code(region: &str) -> String {
    if let Some((_, code)) = KNOWN_REGIONS.iter().find(|(known, _)| *known == region) {
        return (*code).to_owned();
    }
    let city = region.split('-').nth(1).unwrap_or(region);
    let mut code: String = city.chars().filter(char::is_ascii_alphanumeric).take(3).collect();
    while code.len() < 3 {
        code.push('x');
    }
    code
}

/// Whether `region` is spelled like an Alibaba region id (`cn-hangzhou`, `ap-southeast-1`).
pub fn is_region_id(region: &str) -> bool {
    let mut parts = region.split('-');
    let first_ok = parts.next().is_some_and(|p| p.len() >= 2 && p.bytes().all(|b| b.is_ascii_lowercase()));
    let rest: Vec<&str> = parts.collect();
    region.len() <= 32
        && first_ok
        && !rest.is_empty()
        && rest.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// `prefix` + region code + `len` random lowercase letters and digits.
pub fn resource_id(prefix: &str, region: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = crate::engine::crypto::rng();
    let random: String = (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("{prefix}-{}{random}", region_code(region))
}

impl Engine {
    pub fn create_instance(&self, cx: &CallContext, input: CreateInstanceInput) -> KmsResult<Outcome<Arc<Instance>>> {
        let region = if input.region.is_empty() { cx.region.clone() } else { input.region };
        if !is_region_id(&region) {
            return Err(KmsError::invalid_because("RegionId", "Write a region id such as cn-hangzhou."));
        }
        let spec = u32::try_from(input.spec)
            .ok()
            .filter(|spec| (1..=MAX_SPEC).contains(spec))
            .ok_or_else(|| KmsError::invalid_because("Spec", &format!("The QPS spec is 1 to {MAX_SPEC}.")))?;
        let now = cx.received_at;
        let expires = if input.expire_time.is_empty() {
            now.plus_days(DEFAULT_TERM_DAYS)
        } else {
            SimTime::parse_rfc3339(&input.expire_time)
                .filter(|at| *at > now)
                .ok_or_else(|| KmsError::invalid_because("ExpireTime", "Give an RFC 3339 time after now."))?
        };
        let instance_id = resource_id("kst", &region, 14);
        let instance = Arc::new(Instance {
            instance_name: if input.instance_name.is_empty() { instance_id.clone() } else { input.instance_name },
            instance_id,
            region,
            account_id: self.account_id.clone(),
            spec,
            created: now,
            expires,
            expired: false,
        });
        cx.trail.response_element("KmsInstanceId", instance.instance_id.clone());
        Ok(Outcome::write(instance.clone(), vec![Change::SaveInstance(instance)], Vec::new()))
    }

    /// An instance of the caller's region.
    pub fn get_instance(&self, cx: &CallContext, instance_id: &str) -> KmsResult<Outcome<Arc<Instance>>> {
        let instance = self.instance_in(&cx.region, instance_id, "KmsInstanceId")?;
        Ok(Outcome::read(instance))
    }

    /// Instances of the caller's region, oldest first.
    pub fn list_instances(&self, cx: &CallContext) -> Outcome<Vec<Arc<Instance>>> {
        let mut instances: Vec<Arc<Instance>> =
            read_lock(&self.instances).values().filter(|i| i.region == cx.region).cloned().collect();
        instances.sort_by(|a, b| (a.created, &a.instance_id).cmp(&(b.created, &b.instance_id)));
        Outcome::read(instances)
    }

    /// What `instance_id` holds.
    pub fn instance_usage(&self, instance_id: &str) -> Usage {
        let keys = read_lock(&self.keys)
            .values()
            .filter(|slot| slot.snapshot().meta.instance_id.as_deref() == Some(instance_id))
            .count();
        let secrets =
            read_lock(&self.secrets).values().filter(|s| s.instance_id.as_deref() == Some(instance_id)).count();
        Usage { keys, secrets }
    }

    /// An instance of the caller's region and its quotas of `resource_type`
    /// (every type when empty), with `qps_used` the calls it admitted in the
    /// last second, which admission counts.
    pub fn instance_quotas(
        &self,
        cx: &CallContext,
        instance_id: &str,
        resource_type: &str,
        qps_used: u64,
    ) -> KmsResult<Outcome<(Arc<Instance>, Vec<Quota>)>> {
        const TYPES: [&str; 4] = ["key", "secret", "qps", "vpc"];
        if !resource_type.is_empty() && !TYPES.contains(&resource_type) {
            return Err(KmsError::invalid_because("ResourceType", "Use key, secret, qps or vpc."));
        }
        let instance = self.instance_in(&cx.region, instance_id, "KmsInstanceId")?;
        let Usage { keys, secrets } = self.instance_usage(instance_id);
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let quotas = [
            Quota { resource_type: "key", quota: count(KEY_QUOTA), used: count(keys) },
            Quota { resource_type: "secret", quota: count(SECRET_QUOTA), used: count(secrets) },
            Quota { resource_type: "qps", quota: u64::from(instance.spec), used: qps_used },
            // kmsim binds no VPCs: every client reaches every instance.
            Quota { resource_type: "vpc", quota: count(VPC_QUOTA), used: 0 },
        ];
        let wanted = quotas.into_iter().filter(|q| resource_type.is_empty() || q.resource_type == resource_type);
        Ok(Outcome::read((instance, wanted.collect())))
    }

    /// The regions kmsim knows by name, with `also` (the server's own and the
    /// caller's) and every region that holds a key, a secret or an instance.
    pub fn regions(&self, also: &[&str]) -> Vec<String> {
        let mut regions: std::collections::BTreeSet<String> =
            KNOWN_REGIONS.iter().map(|(region, _)| (*region).to_owned()).collect();
        regions.extend(also.iter().map(|region| (*region).to_owned()));
        regions.extend(read_lock(&self.keys).keys().map(|(region, _)| region.clone()));
        regions.extend(read_lock(&self.secrets).keys().map(|(region, _)| region.clone()));
        regions.extend(read_lock(&self.instances).values().map(|i| i.region.clone()));
        regions.into_iter().collect()
    }

    /// A quota refusal when `instance` already holds `quota` of what `held` counts.
    pub(super) fn check_quota(
        &self,
        instance: &Instance,
        held: fn(Usage) -> usize,
        quota: usize,
        what: &str,
    ) -> KmsResult<()> {
        if held(self.instance_usage(&instance.instance_id)) < quota {
            return Ok(());
        }
        Err(KmsError::new(ErrorCode::LimitExceeded)
            .because(&format!("The KMS instance {} holds its quota of {quota} {what}.", instance.instance_id)))
    }

    /// The QPS spec of an instance, for the admission meter.
    pub fn instance_spec(&self, instance_id: &str) -> Option<u32> {
        read_lock(&self.instances).get(instance_id).map(|i| i.spec)
    }

    pub fn instance(&self, instance_id: &str) -> Option<Arc<Instance>> {
        read_lock(&self.instances).get(instance_id).cloned()
    }

    /// The instance `instance_id` if it is in `region`; otherwise DKMSInstanceNotFound.
    pub(super) fn instance_in(&self, region: &str, instance_id: &str, param: &str) -> KmsResult<Arc<Instance>> {
        if instance_id.is_empty() {
            return Err(KmsError::missing(param));
        }
        self.instance(instance_id).filter(|i| i.region == region).ok_or_else(|| ErrorCode::InstanceNotFound.into())
    }

    /// Where CreateKey puts a key: the named instance of the caller's region, which must not have expired.
    pub(super) fn instance_for_new_key(&self, cx: &CallContext, instance_id: &str) -> KmsResult<Arc<Instance>> {
        let instance = self.instance_in(&cx.region, instance_id, "DKMSInstanceId")?;
        if instance.is_expired_at(cx.received_at) {
            return Err(KmsError::invalid_because("DKMSInstanceId", "The KMS instance has expired."));
        }
        self.check_quota(&instance, |usage| usage.keys, KEY_QUOTA, "keys")?;
        Ok(instance)
    }

    /// Puts an instance's expiry on the agenda, unless it has been carried out.
    pub(super) fn schedule_instance(&self, instance: &Instance) {
        if !instance.expired {
            self.agenda.push(super::DueItem {
                at: instance.expires,
                region: instance.region.clone(),
                task: super::DueTask::ExpireInstance { instance_id: instance.instance_id.clone() },
            });
        }
    }

    /// The expiry of an instance: it reads Expired and each of its keys turns
    /// Unavailable. Also catches a key that was created in it just before it
    /// expired; `None` when nothing is left to do.
    pub(super) async fn expire_instance(&self, cx: &CallContext, instance_id: &str) -> Option<Outcome<()>> {
        let instance = self.instance(instance_id)?;
        cx.trail.response_element("KmsInstanceId", instance_id);
        let slots: Vec<_> = read_lock(&self.keys)
            .values()
            .filter(|slot| slot.snapshot().meta.instance_id.as_deref() == Some(instance_id))
            .cloned()
            .collect();
        let mut changes = Vec::new();
        let mut gates = Vec::new();
        for slot in slots {
            let gate = slot.gate.clone().lock_owned().await;
            let key = slot.snapshot();
            if key.meta.state != KeyState::Unavailable {
                let next: Key = key.with_meta(|m| m.state = KeyState::Unavailable);
                changes.push(Change::SaveKey { key: Arc::new(next), new_versions: Vec::new() });
                gates.push(gate);
            }
        }
        if !instance.expired {
            changes.push(Change::SaveInstance(Arc::new(Instance { expired: true, ..(*instance).clone() })));
        }
        (!changes.is_empty()).then(|| Outcome::write((), changes, gates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_region_code() {
        let id = resource_id("kst", "cn-hangzhou", 14);
        assert!(id.starts_with("kst-hzz"), "{id}");
        assert_eq!(id.len(), "kst-hzz".len() + 14);
        assert!(id.bytes().skip(4).all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_eq!(region_code("cn-shanghai"), "shh");
        assert_eq!(region_code("eu-central-1"), "cen");
        assert_eq!(region_code("us-x"), "xxx");
    }

    #[test]
    fn region_ids_are_checked() {
        for ok in ["cn-hangzhou", "ap-southeast-1", "eu-central-1"] {
            assert!(is_region_id(ok), "{ok}");
        }
        for bad in ["", "hangzhou", "CN-hangzhou", "cn-", "cn--x", "cn-hang zhou", "c-x"] {
            assert!(!is_region_id(bad), "{bad}");
        }
    }
}
