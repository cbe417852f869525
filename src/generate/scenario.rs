//! The scenario document: the tenant `kmsim generate` simulates (its
//! instances, keys, secrets and applications), what its operators do, and the
//! anomalies to inject. Parsed from YAML with the seed's rules (unknown fields
//! refused, errors name their line), then checked as a whole into a
//! [`Scenario`] whose names all resolve.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde::Deserialize;

use crate::clock::SimTime;
use crate::seed::SeedError;

/// The scenarios that ship with kmsim, by name.
pub const BUILT_IN: &[(&str, &str)] =
    &[("standard", include_str!("../../scenarios/standard.yaml")), ("busy", include_str!("../../scenarios/busy.yaml"))];

/// A scenario as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDoc {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// RFC 3339: when the simulated tenant's history begins.
    pub start: String,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default)]
    pub operator: Option<OperatorDoc>,
    #[serde(default)]
    pub instances: Vec<InstanceDoc>,
    pub keys: Vec<KeyDoc>,
    #[serde(default)]
    pub secrets: Vec<SecretDoc>,
    pub applications: Vec<ApplicationDoc>,
    #[serde(default)]
    pub lifecycle: Vec<LifecycleDoc>,
    #[serde(default)]
    pub anomalies: Vec<AnomalyDoc>,
}

fn default_region() -> String {
    crate::server::DEFAULT_REGION.to_owned()
}

/// Who performs setup and lifecycle: a RAM user at the console by default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorDoc {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceDoc {
    pub name: String,
    /// The QPS spec.
    pub qps: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDoc {
    /// Also its alias: `alias/<name>`.
    pub name: String,
    #[serde(default = "default_key_spec")]
    pub spec: String,
    #[serde(default)]
    pub usage: Option<String>,
    #[serde(default)]
    pub instance: Option<String>,
    /// Automatic rotation interval, e.g. `30d`.
    #[serde(default)]
    pub rotation: Option<String>,
    #[serde(default)]
    pub exportable: bool,
}

fn default_key_spec() -> String {
    "Aliyun_AES_256".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretDoc {
    pub name: String,
    /// The key (by scenario name) that seals it.
    pub key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationDoc {
    pub name: String,
    #[serde(default = "one")]
    pub access_keys: u32,
    /// IPv4 ranges its calls come from, in CIDR form.
    pub ips: Vec<String>,
    /// SDK presets (`java`, `go`, `python`, `nodejs`, `cli`, `console`) or literal user agents.
    pub user_agents: Vec<String>,
    /// Mean call rate, e.g. `600/h` (also `/s`, `/m`, `/d`).
    pub rate: String,
    /// The hour (UTC) of the daily peak.
    #[serde(default = "default_peak_hour")]
    pub peak_hour: f64,
    /// How deep the daily cycle is: 0 is flat, 1 falls to nothing at night.
    #[serde(default = "default_daily")]
    pub daily: f64,
    /// The weekend's rate as a share of a weekday's.
    #[serde(default = "default_weekend")]
    pub weekend: f64,
    #[serde(default)]
    pub bursts: Option<BurstsDoc>,
    pub calls: Vec<CallDoc>,
}

fn one() -> u32 {
    1
}
fn default_peak_hour() -> f64 {
    6.0
}
fn default_daily() -> f64 {
    0.6
}
fn default_weekend() -> f64 {
    0.5
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstsDoc {
    pub per_week: f64,
    /// The rate multiplier during a burst.
    pub factor: f64,
    /// How long a burst lasts, e.g. `20m`.
    pub lasting: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallDoc {
    pub op: Operation,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default = "one")]
    pub weight: u32,
}

/// The calls an application makes in its normal traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Operation {
    Encrypt,
    Decrypt,
    GenerateDataKey,
    AsymmetricSign,
    AsymmetricVerify,
    GenerateMac,
    GetSecretValue,
    DescribeKey,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleDoc {
    /// Offset from the start, e.g. `9d6h`.
    pub at: String,
    pub action: Action,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub app: Option<String>,
    /// Which of the application's AccessKeys (from 0).
    #[serde(default)]
    pub access_key: u32,
    /// ScheduleKeyDeletion's pending window.
    #[serde(default = "default_pending_days")]
    pub days: u32,
}

fn default_pending_days() -> u32 {
    7
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    RotateKey,
    DisableKey,
    EnableKey,
    ScheduleKeyDeletion,
    CancelKeyDeletion,
    RotateSecret,
    DisableAccessKey,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyDoc {
    pub kind: AnomalyKind,
    pub at: String,
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub instance: Option<String>,
    #[serde(default)]
    pub calls: Option<u32>,
    /// How long the anomaly's calls are spread over, e.g. `10m`.
    #[serde(default)]
    pub over: Option<String>,
    /// The source IP of a new caller.
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub access_key: u32,
    /// For `qps-quota`: the share of the instance's QPS reached within one second.
    #[serde(default)]
    pub ratio: Option<f64>,
}

/// The kinds of anomaly the generator injects and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    DecryptSpike,
    KeyExport,
    DisabledKeyUse,
    BruteForce,
    DisabledAccessKeyUse,
    UnusualRegion,
    UnusualUserAgent,
    QpsQuota,
    NewSecretReader,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 9] = [
        AnomalyKind::DecryptSpike,
        AnomalyKind::KeyExport,
        AnomalyKind::DisabledKeyUse,
        AnomalyKind::BruteForce,
        AnomalyKind::DisabledAccessKeyUse,
        AnomalyKind::UnusualRegion,
        AnomalyKind::UnusualUserAgent,
        AnomalyKind::QpsQuota,
        AnomalyKind::NewSecretReader,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::DecryptSpike => "decrypt-spike",
            AnomalyKind::KeyExport => "key-export",
            AnomalyKind::DisabledKeyUse => "disabled-key-use",
            AnomalyKind::BruteForce => "brute-force",
            AnomalyKind::DisabledAccessKeyUse => "disabled-access-key-use",
            AnomalyKind::UnusualRegion => "unusual-region",
            AnomalyKind::UnusualUserAgent => "unusual-user-agent",
            AnomalyKind::QpsQuota => "qps-quota",
            AnomalyKind::NewSecretReader => "new-secret-reader",
        }
    }
}

/// An IPv4 range in CIDR form.
#[derive(Debug, Clone, Copy)]
pub struct IpRange {
    base: u32,
    size: u32,
}

impl IpRange {
    pub fn parse(text: &str) -> Result<IpRange, String> {
        let (addr, bits) = text.split_once('/').unwrap_or((text, "32"));
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("{text:?} is not an IPv4 range such as 10.0.0.0/24"))?;
        let bits: u32 = bits
            .parse()
            .ok()
            .filter(|b| (8..=32).contains(b))
            .ok_or_else(|| format!("{text:?}: the prefix length must be 8 to 32"))?;
        let size = 1u32 << (32 - bits);
        Ok(IpRange { base: u32::from(addr) & !(size - 1), size })
    }

    /// The `n`th usable address (network and broadcast addresses left out when the range has room).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        let (first, usable) = if self.size >= 4 { (1, self.size - 2) } else { (0, self.size) };
        Ipv4Addr::from(self.base + first + n % usable)
    }

    /// How many usable addresses the range has.
    pub fn hosts(&self) -> u32 {
        if self.size >= 4 { self.size - 2 } else { self.size }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip).wrapping_sub(self.base) < self.size
    }
}

/// The real user agents of Alibaba Cloud's SDKs and tools, by preset name.
pub fn user_agent(preset: &str) -> String {
    match preset {
        "java" => "AlibabaCloud (Linux; amd64) Java/17.0.9 Core/4.7.0 HTTPClient/ApacheHttpClient kms-sdk/1.2.3",
        "go" => "AlibabaCloud (linux; amd64) Go/1.21.5 Core/1.63.72 kms-sdk/1.2.1",
        "python" => "AlibabaCloud (Linux; x86_64) Python/3.11.6 Core/2.14.0 python-requests/2.31.0",
        "nodejs" => "AlibabaCloud (linux; x64) Node.js/v20.10.0 Core/1.7.2 TeaDSL/2",
        "cli" => "Aliyun-CLI/3.0.190",
        "console" => {
            "AlibabaCloud-Console (Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
             (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36)"
        }
        literal => literal,
    }
    .to_owned()
}

/// A duration such as `30d`, `6h`, `1d12h` or `90s`, in milliseconds.
pub fn millis(text: &str, what: &str) -> Result<i64, String> {
    let duration = crate::clock::parse_duration(text).map_err(|e| format!("{what}: {e}"))?;
    i64::try_from(duration.as_millis()).map_err(|_| format!("{what}: {text:?} is too long"))
}

/// A rate such as `600/h`, in calls per minute.
pub fn per_minute(text: &str, what: &str) -> Result<f64, String> {
    let (count, unit) = text
        .split_once('/')
        .ok_or_else(|| format!("{what}: write a rate as calls per unit, such as 600/h, not {text:?}"))?;
    let count: f64 = count
        .trim()
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite() && *c >= 0.0)
        .ok_or_else(|| format!("{what}: {count:?} is not a number of calls"))?;
    let minutes = match unit.trim() {
        "s" => 1.0 / 60.0,
        "m" => 1.0,
        "h" => 60.0,
        "d" => 1440.0,
        other => return Err(format!("{what}: unit {other:?} is not one of s, m, h, d")),
    };
    Ok(count / minutes)
}

/// Reads a scenario: a built-in by name, or a YAML file.
pub fn load(name_or_path: &str) -> Result<(ScenarioDoc, String), String> {
    let text = match BUILT_IN.iter().find(|(name, _)| *name == name_or_path) {
        Some((_, text)) => (*text).to_owned(),
        None => std::fs::read_to_string(name_or_path).map_err(|e| {
            let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            format!("--scenario {name_or_path}: {e} (and it is not a built-in: {})", names.join(", "))
        })?,
    };
    let doc: ScenarioDoc =
        crate::seed::parse_yaml(&text).map_err(|e: SeedError| format!("scenario {name_or_path}: {e}"))?;
    Ok((doc, text))
}

/// Checks what the document names, before anything runs.
pub fn check(doc: &ScenarioDoc) -> Result<SimTime, String> {
    let start = SimTime::parse_rfc3339(&doc.start)
        .ok_or_else(|| format!("start: {:?} is not an RFC 3339 instant", doc.start))?;
    if !crate::engine::instances::is_region_id(&doc.region) {
        return Err(format!("region: {:?} is not a region id such as cn-hangzhou", doc.region));
    }
    let unique = |names: Vec<&String>, what: &str| -> Result<BTreeSet<String>, String> {
        let mut seen = BTreeSet::new();
        for name in names {
            if !seen.insert(name.clone()) {
                return Err(format!("{what} {name:?} is named twice"));
            }
        }
        Ok(seen)
    };
    let instances = unique(doc.instances.iter().map(|i| &i.name).collect(), "instance")?;
    let keys = unique(doc.keys.iter().map(|k| &k.name).collect(), "key")?;
    let secrets = unique(doc.secrets.iter().map(|s| &s.name).collect(), "secret")?;
    let apps = unique(doc.applications.iter().map(|a| &a.name).collect(), "application")?;
    let known = |set: &BTreeSet<String>, name: &Option<String>, what: &str, at: &str| match name {
        Some(n) if !set.contains(n) => Err(format!("{at}: no {what} is named {n:?}")),
        _ => Ok(()),
    };
    for key in &doc.keys {
        known(&instances, &key.instance, "instance", &format!("key {}", key.name))?;
        if let Some(rotation) = &key.rotation {
            millis(rotation, &format!("key {} rotation", key.name))?;
        }
    }
    for secret in &doc.secrets {
        known(&keys, &Some(secret.key.clone()), "key", &format!("secret {}", secret.name))?;
    }
    for app in &doc.applications {
        let at = format!("application {}", app.name);
        let most = crate::engine::access::MAX_ACCESS_KEYS_PER_USER;
        if app.access_keys as usize > most {
            return Err(format!("{at}: a RAM user has at most {most} AccessKeys"));
        }
        if app.access_keys == 0 || app.ips.is_empty() || app.user_agents.is_empty() || app.calls.is_empty() {
            return Err(format!("{at}: needs at least one access key, IP range, user agent and call"));
        }
        for ip in &app.ips {
            IpRange::parse(ip).map_err(|e| format!("{at}: {e}"))?;
        }
        per_minute(&app.rate, &at)?;
        if !(0.0..=1.0).contains(&app.daily) || !(0.0..=10.0).contains(&app.weekend) {
            return Err(format!("{at}: daily must be 0 to 1 and weekend 0 to 10"));
        }
        if let Some(bursts) = &app.bursts {
            millis(&bursts.lasting, &format!("{at} bursts"))?;
            if !(bursts.per_week >= 0.0 && bursts.factor >= 1.0) {
                return Err(format!("{at}: bursts need per_week ≥ 0 and factor ≥ 1"));
            }
        }
        for call in &app.calls {
            let needs_secret = call.op == Operation::GetSecretValue;
            match (needs_secret, &call.key, &call.secret) {
                (true, _, Some(_)) | (false, Some(_), None) => {}
                _ if needs_secret => return Err(format!("{at}: GetSecretValue names a secret")),
                _ => return Err(format!("{at}: {:?} names a key (and no secret)", call.op)),
            }
            known(&keys, &call.key, "key", &at)?;
            known(&secrets, &call.secret, "secret", &at)?;
        }
    }
    for (i, step) in doc.lifecycle.iter().enumerate() {
        let at = format!("lifecycle step {} ({:?})", i + 1, step.action);
        millis(&step.at, &at)?;
        known(&keys, &step.key, "key", &at)?;
        known(&secrets, &step.secret, "secret", &at)?;
        known(&apps, &step.app, "application", &at)?;
        let ok = match step.action {
            Action::RotateSecret => step.secret.is_some(),
            Action::DisableAccessKey => step.app.is_some(),
            _ => step.key.is_some(),
        };
        if !ok {
            return Err(format!(
                "{at}: names no {}",
                match step.action {
                    Action::RotateSecret => "secret",
                    Action::DisableAccessKey => "app",
                    _ => "key",
                }
            ));
        }
    }
    for (i, anomaly) in doc.anomalies.iter().enumerate() {
        let at = format!("anomaly {} ({})", i + 1, anomaly.kind.as_str());
        millis(&anomaly.at, &at)?;
        if let Some(over) = &anomaly.over {
            millis(over, &at)?;
        }
        known(&keys, &anomaly.key, "key", &at)?;
        known(&secrets, &anomaly.secret, "secret", &at)?;
        known(&apps, &anomaly.app, "application", &at)?;
        known(&instances, &anomaly.instance, "instance", &at)?;
        if let Some(ip) = &anomaly.ip {
            ip.parse::<Ipv4Addr>().map_err(|_| format!("{at}: ip {ip:?} is not an IPv4 address"))?;
        }
        // Every anomaly acts as an application; the other thing it names depends on its kind.
        let (field, given) = match anomaly.kind {
            AnomalyKind::UnusualRegion => ("region", anomaly.region.is_some()),
            AnomalyKind::NewSecretReader => ("secret", anomaly.secret.is_some()),
            _ => ("key", anomaly.key.is_some()),
        };
        if anomaly.app.is_none() {
            return Err(format!("{at}: names no app"));
        }
        if !given {
            return Err(format!("{at}: names no {field}"));
        }
        if anomaly.kind == AnomalyKind::QpsQuota {
            let key = doc.keys.iter().find(|k| Some(&k.name) == anomaly.key.as_ref());
            if key.is_some_and(|k| k.instance.is_none()) {
                return Err(format!("{at}: key {:?} is in no instance, so it has no QPS quota", anomaly.key));
            }
        }
        if let Some(region) = &anomaly.region
            && !crate::engine::instances::is_region_id(region)
        {
            return Err(format!("{at}: region {region:?} is not a region id"));
        }
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_scenario_parses_and_checks() {
        for (name, _) in BUILT_IN {
            let (doc, _) = load(name).unwrap();
            check(&doc).unwrap_or_else(|e| panic!("{name}: {e}"));
            let kinds: BTreeSet<AnomalyKind> = doc.anomalies.iter().map(|a| a.kind).collect();
            assert_eq!(kinds.len(), AnomalyKind::ALL.len(), "{name} injects every kind of anomaly");
        }
    }

    #[test]
    fn rates_ranges_and_mistakes_are_read_precisely() {
        assert_eq!(per_minute("600/h", "x").unwrap(), 10.0);
        assert_eq!(per_minute("2/s", "x").unwrap(), 120.0);
        assert!(per_minute("600", "x").unwrap_err().contains("600/h"));
        let range = IpRange::parse("10.20.1.0/24").unwrap();
        assert_eq!(range.nth(0), Ipv4Addr::new(10, 20, 1, 1));
        assert_eq!(range.nth(253), Ipv4Addr::new(10, 20, 1, 254));
        assert_eq!(range.nth(254), Ipv4Addr::new(10, 20, 1, 1));
        assert!(range.contains(Ipv4Addr::new(10, 20, 1, 77)) && !range.contains(Ipv4Addr::new(10, 20, 2, 1)));
        assert!(IpRange::parse("10.0.0.0/4").is_err());
        let doc: ScenarioDoc = crate::seed::parse_yaml(
            "name: x\nstart: 2026-10-01T00:00:00Z\nkeys: [{name: a}]\napplications:\n  - name: app\n    ips: [10.0.0.0/24]\n    user_agents: [java]\n    rate: 1/m\n    calls: [{op: Decrypt, key: b}]\n",
        )
        .unwrap();
        assert_eq!(check(&doc).unwrap_err(), "application app: no key is named \"b\"");
        let typo =
            crate::seed::parse_yaml::<ScenarioDoc>("name: x\nstart: s\nkeys: []\napplications: []\nanomaly: []\n");
        assert_eq!(typo.unwrap_err().line, 5);
    }
}
