//! `kmsim generate`: realistic, labelled audit data from a deterministic
//! simulation of a KMS tenant.
//!
//! The generator builds the same [`App`] the server serves, on a data dir of
//! its own with a manual clock, and makes every call through the kernel as
//! a front end of its own, with the kmsim.v1 operations a gRPC client
//! reaches and a [`CallMeta`] of the caller it plays, so every record is one
//! the kernel built for an operation the engine really performed. It moves the clock to each call's instant, runs the due work
//! (rotations, deletions) the scheduler would have run by then, and commits
//! records in batches ([`Batching`]), which is what makes it fast. Everything
//! it decides comes from one seeded stream ([`Dice`]) and everything the
//! engine draws from another ([`crate::engine::crypto::seed_randomness`]), so
//! the same scenario and seed give the same bytes.
//!
//! The scenario ([`scenario`]) names the tenant; [`traffic`] shapes when its
//! applications call; the anomalies are injected as calls of their own and
//! labelled in `labels.jsonl` with the ids of the records they made.

pub mod scenario;
pub mod traffic;

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use serde_json::{Value, json};

use self::scenario::{Action, AnomalyDoc, AnomalyKind, IpRange, Operation, ScenarioDoc, millis, per_minute};
use self::traffic::{Dice, RateShape, plan_bursts};
use crate::audit::AuditRecord;
use crate::audit::formats::Format;
use crate::audit::trail::{Selectors, TrailSpec};
use crate::clock::{SimClock, SimTime};
use crate::engine::Engine;
use crate::engine::KmsError;
use crate::frontends::grpc::{access, instances, kms, secrets};
use crate::kernel::ops::instances as instances_ops;
use crate::kernel::ops::kms as kms_ops;
use crate::kernel::ops::{access as access_ops, secrets as secrets_ops};
use crate::kernel::{App, Batching, CallMeta, Presented};
use crate::proto as pb;
use crate::server::ServerConfig;
use crate::store::{Durability, EventQuery, Location, Store};

/// Records per store transaction. Small enough that a batch is still in the
/// cache when it is encoded and written: 4,096 was slower by a fifth and
/// 1,024 by about a sixth, while 128 was no faster.
const BATCH_RECORDS: usize = 256;
/// Ciphertexts an application keeps per key to decrypt later.
const POOL: usize = 16;

/// What to generate, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// A built-in scenario's name or a YAML file.
    pub scenario: String,
    pub duration: Duration,
    pub seed: u64,
    pub out: PathBuf,
    /// Whether to write the ActionTrail, CloudTrail and native JSON-lines exports as records commit.
    pub exports: bool,
}

/// What a run produced.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub scenario: String,
    pub start: String,
    pub end: String,
    pub records: u64,
    pub failures: u64,
    pub system_events: u64,
    pub labels: Vec<(String, usize)>,
    /// Wall-clock seconds spent making the records (engine and store), and writing the other files.
    pub generate_seconds: f64,
    pub export_seconds: f64,
}

/// The files a run leaves in `--out`.
pub const STORE_FILE: &str = "kmsim.db";
pub const NATIVE_FILE: &str = "audit.native.jsonl";
pub const ACTIONTRAIL_FILE: &str = "audit.actiontrail.jsonl";
pub const CLOUDTRAIL_FILE: &str = "audit.cloudtrail.jsonl";
pub const EVENTS_FILE: &str = "events.jsonl";
pub const LABELS_FILE: &str = "labels.jsonl";
pub const SCENARIO_FILE: &str = "scenario.yaml";

/// Runs the scenario for `options.duration` of simulated time. `progress` is
/// told the records made so far and the share of simulated time done.
pub async fn run(options: &Options, mut progress: impl FnMut(u64, f64)) -> Result<Summary, String> {
    let (doc, text) = scenario::load(&options.scenario)?;
    let start = scenario::check(&doc)?;
    let duration_ms = i64::try_from(options.duration.as_millis()).map_err(|_| "--duration is too long")?;
    if duration_ms < 60_000 {
        return Err("--duration must be at least a minute (1m)".into());
    }
    prepare_out_dir(&options.out)?;
    // The engine's randomness follows the seed too; a different stream from the generator's own.
    if !crate::engine::crypto::seed_randomness(options.seed ^ 0x6b6d_7369_6d00_0001) {
        return Err("randomness was already seeded in this process; run one generation per process".into());
    }
    std::fs::write(options.out.join(SCENARIO_FILE), &text).map_err(|e| format!("{}: {e}", options.out.display()))?;
    let book = Arc::new(LabelBook::default());
    let name = doc.name.clone();
    let (mut sim, store) = Simulation::open(doc, start, options, book.clone())?;
    let started = std::time::Instant::now();
    let end = SimTime(start.millis() + duration_ms);
    sim.setup(end).await?;
    sim.run_until(end, &mut progress).await?;
    let generate_seconds = started.elapsed().as_secs_f64();

    let exporting = std::time::Instant::now();
    let app = sim.app.clone();
    drop(sim);
    app.trails.close().await;
    let system_events = write_events(&store, &options.out.join(EVENTS_FILE), end).await?;
    let records = book.records.load(Ordering::Relaxed);
    let failures = book.failures.load(Ordering::Relaxed);
    drop(app);
    tokio::task::spawn_blocking(move || store.close()).await.map_err(|e| e.to_string())?;
    let labels = book.write(&options.out.join(LABELS_FILE))?;
    Ok(Summary {
        scenario: name,
        start: start.to_rfc3339(),
        end: end.to_rfc3339(),
        records,
        failures,
        system_events,
        labels,
        generate_seconds,
        export_seconds: exporting.elapsed().as_secs_f64(),
    })
}

fn prepare_out_dir(out: &Path) -> Result<(), String> {
    if let Ok(mut entries) = std::fs::read_dir(out)
        && entries.next().is_some()
    {
        return Err(format!("--out {}: the directory is not empty; name a new or empty one", out.display()));
    }
    // Private like any data dir (the store in it holds the audit signing key and key material), so that
    // `kmsim serve --data-dir` accepts it: created 0700, or, if the user made it empty beforehand, made 0700.
    crate::store::create_private_dir(out).map_err(|e| format!("--out {}: {e}", out.display()))?;
    match crate::store::ensure_private(out) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(shared)) => Err(format!("--out: {shared}")),
        Err(e) => Err(format!("--out {}: {e}", out.display())),
    }
}

/// The system events, oldest first, one CloudMonitor document per line.
async fn write_events(store: &Store, path: &Path, end: SimTime) -> Result<u64, String> {
    let mut documents = Vec::new();
    let mut before = None;
    loop {
        let query = EventQuery {
            filter: Default::default(),
            start: SimTime(i64::MIN),
            end: SimTime(end.millis() + 1),
            limit: 1000,
        };
        let page = store.list_events(query, before).await.map_err(|e| e.to_string())?;
        documents.extend(page.documents);
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    documents.reverse();
    let mut text = String::new();
    for document in &documents {
        text.push_str(&document.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(documents.len() as u64)
}

/// One anomaly as labelled.
#[derive(Debug, Clone)]
struct Label {
    id: String,
    kind: AnomalyKind,
    from: SimTime,
    to: SimTime,
    actors: BTreeMap<&'static str, Vec<String>>,
    query: String,
    description: String,
    event_ids: Vec<String>,
    request_ids: Vec<String>,
}

/// The labels, filled in as records are made: [`Batching`]'s observer sees
/// every record in order, and adds it to the label whose call is running, or
/// whose instance and second it falls in.
#[derive(Default)]
struct LabelBook {
    labels: Mutex<Vec<Label>>,
    /// The label of the call being made, if it is an anomaly's.
    current: Mutex<Option<usize>>,
    /// An instance's burst second: every record on the instance in it belongs to the label.
    window: Mutex<Option<(usize, String, SimTime, SimTime)>>,
    records: AtomicU64,
    failures: AtomicU64,
}

impl LabelBook {
    fn observe(&self, record: &AuditRecord) {
        self.records.fetch_add(1, Ordering::Relaxed);
        if !record.error_code.is_empty() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let current = *self.current.lock().unwrap_or_else(|p| p.into_inner());
        let windowed =
            self.window.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|(label, instance, from, to)| {
                (record.instance_id == *instance && (*from..*to).contains(&record.event_time)).then_some(*label)
            });
        if let Some(label) = current.or(windowed) {
            let mut labels = self.labels.lock().unwrap_or_else(|p| p.into_inner());
            let label = &mut labels[label];
            label.event_ids.push(record.event_id.clone());
            if label.request_ids.last() != Some(&record.request_id) {
                label.request_ids.push(record.request_id.clone());
            }
        }
    }

    fn write(&self, path: &Path) -> Result<Vec<(String, usize)>, String> {
        let labels = self.labels.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::new();
        for label in labels.iter() {
            let line = json!({
                "anomalyId": label.id,
                "kind": label.kind.as_str(),
                "from": label.from.to_rfc3339_millis(),
                "to": label.to.to_rfc3339_millis(),
                "description": label.description,
                "actors": label.actors,
                "query": label.query,
                "recordCount": label.event_ids.len(),
                "eventIds": label.event_ids,
                "requestIds": label.request_ids,
            });
            text.push_str(&line.to_string());
            text.push('\n');
        }
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(labels.iter().map(|l| (l.kind.as_str().to_owned(), l.event_ids.len())).collect())
    }
}

/// Who makes a call, as its record will show.
#[derive(Debug, Clone)]
struct Caller {
    access_key_id: String,
    ip: Ipv4Addr,
    user_agent: String,
    region: Option<String>,
}

/// A key as the generator tracks it: its id and what its applications know of its state.
#[derive(Debug, Clone)]
struct KeyState {
    id: String,
    spec: String,
    usable: bool,
    /// Ciphertexts (and for signing keys, digest and signature pairs) kept for later calls.
    blobs: VecDeque<Vec<u8>>,
    signatures: VecDeque<(Vec<u8>, Vec<u8>)>,
}

struct AppState {
    name: String,
    access_keys: Vec<(String, bool)>,
    ranges: Vec<IpRange>,
    user_agents: Vec<String>,
    shape: RateShape,
    weights: Vec<u32>,
}

/// Something that happens at one instant, in the order it was planned.
#[derive(Debug, Clone)]
enum Planned {
    Normal { app: usize },
    Lifecycle { step: usize },
    Anomaly { anomaly: usize, index: u32 },
}

struct Simulation {
    app: Arc<App>,
    doc: ScenarioDoc,
    start: SimTime,
    dice: Dice,
    book: Arc<LabelBook>,
    keys: BTreeMap<String, KeyState>,
    instance_ids: BTreeMap<String, String>,
    apps: Vec<AppState>,
    operator: Caller,
    payload: Vec<u8>,
    /// Anomaly calls and lifecycle steps, in time order.
    agenda: VecDeque<(SimTime, Planned)>,
    /// The label of each anomaly, by its index in the scenario.
    anomaly_labels: Vec<usize>,
    /// The RSA public key (PEM) an exfiltrating caller asks a key to be exported under.
    export_public_key: String,
}

impl Simulation {
    fn open(
        doc: ScenarioDoc,
        start: SimTime,
        options: &Options,
        book: Arc<LabelBook>,
    ) -> Result<(Simulation, Store), String> {
        let trail =
            |file: &str, format| TrailSpec { path: options.out.join(file), format, selectors: Selectors::default() };
        let config = ServerConfig {
            region: doc.region.clone(),
            store: Location::Dir(options.out.clone()),
            // The whole generated history stays; pruning would cut it at 180 days (events at 90).
            audit_retention_days: None,
            event_retention_days: None,
            trails: if !options.exports {
                Vec::new()
            } else {
                vec![
                    trail(NATIVE_FILE, Format::Native),
                    trail(ACTIONTRAIL_FILE, Format::ActionTrail),
                    trail(CLOUDTRAIL_FILE, Format::CloudTrail),
                ]
            },
            ..ServerConfig::default()
        };
        let (store, loaded) = Store::open_with(&config.store, Durability::Bulk).map_err(|e| e.to_string())?;
        let clock = Arc::new(SimClock::manual(start));
        let engine = Arc::new(Engine::new(config.account_id.clone(), clock, loaded.blob_secret, loaded.snapshot));
        let observer = {
            let book = book.clone();
            move |record: &AuditRecord| book.observe(record)
        };
        let app = crate::server::assemble(&config, store.clone(), engine, Some(Batching::new(BATCH_RECORDS, observer)))
            .map_err(|e| e.to_string())?;
        let mut dice = Dice::new(options.seed);
        let end = SimTime(start.millis() + i64::try_from(options.duration.as_millis()).unwrap_or(i64::MAX));
        let apps = doc
            .applications
            .iter()
            .map(|a| {
                let bursts = match &a.bursts {
                    Some(b) => plan_bursts(&mut dice, start, end, b.per_week, b.factor, millis(&b.lasting, "")?),
                    None => Vec::new(),
                };
                Ok(AppState {
                    name: a.name.clone(),
                    access_keys: Vec::new(),
                    ranges: a.ips.iter().map(|r| IpRange::parse(r)).collect::<Result<_, _>>()?,
                    user_agents: a.user_agents.iter().map(|u| scenario::user_agent(u)).collect(),
                    shape: RateShape {
                        per_minute: per_minute(&a.rate, &a.name)?,
                        peak_hour: a.peak_hour,
                        daily: a.daily,
                        weekend: a.weekend,
                        bursts,
                    },
                    weights: a.calls.iter().map(|c| c.weight).collect(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let operator_doc = doc.operator.as_ref();
        let operator_ip = operator_doc
            .and_then(|o| o.ips.first())
            .map(|r| IpRange::parse(r))
            .transpose()?
            .map_or(Ipv4Addr::new(100, 104, 12, 5), |r| r.nth(dice.below(u64::from(r.hosts())) as u32));
        let operator = Caller {
            access_key_id: String::new(),
            ip: operator_ip,
            user_agent: scenario::user_agent(operator_doc.and_then(|o| o.user_agent.as_deref()).unwrap_or("console")),
            region: None,
        };
        let kind = crate::engine::crypto::asymmetric::AsymmetricKind::Rsa { bits: 2048 };
        let exfiltration_key = crate::engine::crypto::ParsedKey::from_pkcs8(kind, &kind.generate())
            .map_err(|_| "could not make the export key")?
            .public_key_pem();
        let simulation = Simulation {
            app,
            doc,
            start,
            dice,
            book,
            keys: BTreeMap::new(),
            instance_ids: BTreeMap::new(),
            apps,
            operator,
            payload: vec![0x5a; 6144],
            agenda: VecDeque::new(),
            anomaly_labels: Vec::new(),
            export_public_key: exfiltration_key,
        };
        Ok((simulation, store))
    }
}

/// The code a call failed with, as a client reads it.
fn error_code(error: &KmsError) -> String {
    error.code.as_str().to_owned()
}

type Answer<T> = Result<T, KmsError>;

/// A call the generator makes: what its caller's SDK would send.
struct Call<T> {
    meta: CallMeta,
    message: T,
}

/// The name the generator's calls go by in the kernel's logs.
const FRONTEND: &str = "generator";

impl Simulation {
    fn now(&self) -> SimTime {
        self.app.engine.clock().now()
    }

    /// Moves the clock to `at` and does the work that fell due on the way, each at its own time.
    async fn advance_to(&self, at: SimTime) -> Result<(), String> {
        let clock = self.app.engine.clock();
        clock.set_offset(clock.offset_reaching(at));
        if self.app.engine.agenda().next_due().is_some_and(|due| due <= at)
            && !self.app.scheduler.run_due(&self.app).await
        {
            return Err("the store refused due work".into());
        }
        Ok(())
    }

    /// A call as `caller`'s SDK would make it, with a simulated latency.
    fn request<T>(&mut self, caller: &Caller, message: T, typical_ms: f64) -> Call<T> {
        let mut id = [0u8; 16];
        self.dice.fill(&mut id);
        // The generator is the server's own front end: it chooses the request ids, reproducibly.
        let request_id = uuid::Builder::from_random_bytes(id).into_uuid().hyphenated().to_string().to_uppercase();
        let region = caller.region.as_deref().unwrap_or(&self.app.region);
        let mut meta = CallMeta::new(FRONTEND, region, request_id);
        meta.user_agent = caller.user_agent.clone();
        if !caller.access_key_id.is_empty() {
            meta.credential = Presented::Claimed(caller.access_key_id.clone());
        }
        let port = 32768 + self.dice.below(28_000) as u16;
        meta.peer = Some(SocketAddr::new(IpAddr::V4(caller.ip), port));
        // Most calls near the typical latency, a long tail of slow ones.
        let spread = 0.6 + 0.8 * self.dice.unit();
        let tail = if self.dice.below(100) == 0 { 4.0 + 8.0 * self.dice.unit() } else { 1.0 };
        let micros = (typical_ms * 1000.0 * spread * tail) as u64;
        meta.simulated_latency = Some(Duration::from_micros(micros));
        Call { meta, message }
    }

    /// Makes `call` through the kernel as the gRPC front end would: `decode`
    /// makes it the kernel's operation, `encode` its kmsim.v1 response.
    async fn send<T, Op, R>(
        &self,
        call: Call<T>,
        decode: impl FnOnce(T) -> Op,
        encode: impl FnOnce(Op::Output) -> R,
    ) -> Answer<R>
    where
        T: Message,
        Op: crate::kernel::Operation,
        R: Message,
    {
        let Call { mut meta, message } = call;
        meta.request_bytes = message.encoded_len() as u64;
        self.app.execute(meta, decode(message), |output| crate::frontends::grpc::sized(encode(output))).await.result
    }

    /// Creates the tenant at the start, as its operator would at the console.
    async fn setup(&mut self, end: SimTime) -> Result<(), String> {
        let operator_user =
            self.doc.operator.as_ref().and_then(|o| o.user.clone()).unwrap_or_else(|| "kms-admin".into());
        let created = self.create_access_key(&operator_user).await?;
        self.operator.access_key_id = created;
        let mut at = self.start;
        let mut step = || {
            at = at.plus_secs(7);
            at
        };
        for i in 0..self.doc.instances.len() {
            self.advance_to(step()).await?;
            let (name, qps) = (self.doc.instances[i].name.clone(), self.doc.instances[i].qps);
            let operator = self.operator.clone();
            let request = self.request(
                &operator,
                pb::CreateKmsInstanceRequest {
                    spec: i64::from(qps),
                    instance_name: name.clone(),
                    ..Default::default()
                },
                180.0,
            );
            let instance = ok(
                self.send(request, instances_ops::CreateKmsInstance::from, instances::encode::create_kms_instance)
                    .await,
                "CreateKmsInstance",
            )?
            .kms_instance;
            self.instance_ids.insert(name, instance.map(|i| i.kms_instance_id).unwrap_or_default());
        }
        for i in 0..self.doc.keys.len() {
            self.advance_to(step()).await?;
            let key = &self.doc.keys[i];
            let rotation = key.rotation.as_deref().map(|r| millis(r, "")).transpose()?;
            let message = pb::CreateKeyRequest {
                key_spec: key.spec.clone(),
                key_usage: key.usage.clone().unwrap_or_default(),
                description: format!("{} key", key.name),
                enable_automatic_rotation: rotation.is_some(),
                rotation_interval: rotation.map(|ms| format!("{}s", ms / 1000)).unwrap_or_default(),
                exportable: key.exportable,
                dkms_instance_id: key
                    .instance
                    .as_ref()
                    .and_then(|i| self.instance_ids.get(i))
                    .cloned()
                    .unwrap_or_default(),
                ..Default::default()
            };
            let (name, spec) = (key.name.clone(), key.spec.clone());
            let operator = self.operator.clone();
            let request = self.request(&operator, message, 60.0);
            let metadata = ok(
                self.send(request, kms_ops::CreateKey::from, kms::encode::create_key).await,
                &format!("CreateKey {name}"),
            )?
            .key_metadata;
            let id = metadata.map(|m| m.key_id).unwrap_or_default();
            self.advance_to(step()).await?;
            let request = self.request(
                &operator,
                pb::CreateAliasRequest { alias_name: format!("alias/{name}"), key_id: id.clone() },
                40.0,
            );
            ok(self.send(request, kms_ops::CreateAlias::from, kms::encode::create_alias).await, "CreateAlias")?;
            self.keys
                .insert(name, KeyState { id, spec, usable: true, blobs: VecDeque::new(), signatures: VecDeque::new() });
        }
        for i in 0..self.doc.secrets.len() {
            self.advance_to(step()).await?;
            let (name, key) = (self.doc.secrets[i].name.clone(), self.doc.secrets[i].key.clone());
            let message = pb::CreateSecretRequest {
                secret_name: name.clone(),
                secret_data: self.secret_value(),
                secret_data_type: "text".into(),
                version_id: "v1".into(),
                encryption_key_id: self.keys[&key].id.clone(),
                ..Default::default()
            };
            let operator = self.operator.clone();
            let request = self.request(&operator, message, 80.0);
            ok(
                self.send(request, secrets_ops::CreateSecret::from, secrets::encode::create_secret).await,
                &format!("CreateSecret {name}"),
            )?;
        }
        for i in 0..self.apps.len() {
            for _ in 0..self.doc.applications[i].access_keys {
                self.advance_to(step()).await?;
                let user = self.apps[i].name.clone();
                let id = self.create_access_key(&user).await?;
                self.apps[i].access_keys.push((id, true));
            }
        }
        self.plan(at, end)?;
        Ok(())
    }

    /// A fresh password-like secret value.
    fn secret_value(&mut self) -> String {
        let mut value = [0u8; 12];
        self.dice.fill(&mut value);
        value.iter().map(|b| format!("{b:02x}")).collect()
    }

    async fn create_access_key(&mut self, user: &str) -> Result<String, String> {
        let operator = self.operator.clone();
        let request = self.request(&operator, pb::CreateAccessKeyRequest { user_name: user.to_owned() }, 50.0);
        let created = ok(
            self.send(request, access_ops::CreateAccessKey::from, access::encode::create_access_key).await,
            "CreateAccessKey",
        )?;
        Ok(created.access_key.map(|k| k.access_key_id).unwrap_or_default())
    }

    /// Puts the lifecycle steps and the anomalies' calls on the agenda, and opens their labels.
    fn plan(&mut self, setup_done: SimTime, end: SimTime) -> Result<(), String> {
        let mut planned: Vec<(SimTime, Planned)> = Vec::new();
        let offset = |text: &str, what: &str| -> Result<SimTime, String> {
            Ok(SimTime(self.start.millis() + millis(text, what)?).max(setup_done))
        };
        for (i, step) in self.doc.lifecycle.iter().enumerate() {
            planned.push((offset(&step.at, "lifecycle")?, Planned::Lifecycle { step: i }));
        }
        let mut labels = Vec::new();
        self.anomaly_labels = vec![usize::MAX; self.doc.anomalies.len()];
        let first_label = self.book.labels.lock().unwrap_or_else(|p| p.into_inner()).len();
        for (i, anomaly) in self.doc.anomalies.iter().enumerate() {
            let from = offset(&anomaly.at, "anomaly")?;
            // Only what begins within the generated time happens (and is labelled).
            if from >= end {
                continue;
            }
            self.anomaly_labels[i] = first_label + labels.len();
            let (calls, over) = anomaly_extent(anomaly, &self.doc)?;
            for index in 0..calls {
                let at = SimTime(from.millis() + over * i64::from(index) / i64::from(calls.max(1)));
                planned.push((at, Planned::Anomaly { anomaly: i, index }));
            }
            let to = SimTime(from.millis() + over.max(1));
            labels.push(self.open_label(i, anomaly, from, to)?);
        }
        planned.retain(|(at, _)| *at < end);
        planned.sort_by_key(|(at, _)| *at);
        self.agenda = planned.into();
        self.book.labels.lock().unwrap_or_else(|p| p.into_inner()).extend(labels);
        Ok(())
    }

    fn app_index(&self, name: &Option<String>) -> usize {
        self.apps.iter().position(|a| Some(&a.name) == name.as_ref()).unwrap_or(0)
    }

    /// The label of anomaly `i`, with the query that finds it.
    fn open_label(&self, i: usize, anomaly: &AnomalyDoc, from: SimTime, to: SimTime) -> Result<Label, String> {
        let app = &self.apps[self.app_index(&anomaly.app)];
        let key_id = anomaly.key.as_ref().map(|k| self.keys[k].id.clone()).unwrap_or_default();
        let access_key = app.access_keys.get(anomaly.access_key as usize).map(|k| k.0.clone()).unwrap_or_default();
        let ip = anomaly_ip(anomaly).to_string();
        let mut actors = BTreeMap::new();
        actors.insert("applications", vec![app.name.clone()]);
        actors.insert("accessKeyIds", vec![access_key.clone()]);
        let (query, description) = match anomaly.kind {
            AnomalyKind::DecryptSpike => {
                actors.insert("sourceIps", vec![ip.clone()]);
                (
                    format!("eventName: Decrypt AND clientIp: \"{ip}\""),
                    format!(
                        "{} Decrypts with {}'s AccessKey from {ip}, an address it never used",
                        anomaly.calls.unwrap_or(0),
                        app.name
                    ),
                )
            }
            AnomalyKind::KeyExport => (
                format!("eventName: ExportKey AND keyId: \"{key_id}\""),
                format!("{}'s AccessKey exports the material of key {key_id}", app.name),
            ),
            AnomalyKind::DisabledKeyUse => (
                format!("errorCode: Rejected* AND keyId: \"{key_id}\""),
                format!("{} keeps using key {key_id} after it was disabled or scheduled for deletion", app.name),
            ),
            AnomalyKind::BruteForce => {
                actors.insert("sourceIps", vec![ip.clone()]);
                (
                    format!("outcome: Failure AND clientIp: \"{ip}\""),
                    format!("repeated failing Decrypts of forged ciphertexts from {ip}"),
                )
            }
            AnomalyKind::DisabledAccessKeyUse => (
                format!("accessKeyId: \"{access_key}\""),
                format!(
                    "{}'s AccessKey {access_key} is used after it was disabled (UpdateAccessKey Inactive)",
                    app.name
                ),
            ),
            AnomalyKind::UnusualRegion => {
                let region = anomaly.region.clone().unwrap_or_default();
                actors.insert("regions", vec![region.clone()]);
                (
                    format!("region: \"{region}\""),
                    format!("{}'s AccessKey lists and probes keys in {region}, where the tenant has none", app.name),
                )
            }
            AnomalyKind::UnusualUserAgent => {
                let agent = anomaly_user_agent(anomaly);
                actors.insert("userAgents", vec![agent.clone()]);
                (format!("userAgent: \"{agent}\""), format!("{}'s AccessKey is used by {agent}", app.name))
            }
            AnomalyKind::QpsQuota => {
                let instance = self.instance_of(anomaly)?;
                actors.insert("instances", vec![instance.clone()]);
                (
                    format!("instanceId: \"{instance}\""),
                    format!("{} pushes instance {instance} past 90% of its QPS quota within one second", app.name),
                )
            }
            AnomalyKind::NewSecretReader => {
                let secret = anomaly.secret.clone().unwrap_or_default();
                (
                    format!(
                        "eventName: GetSecretValue AND accessKeyId: \"{access_key}\" AND requestParameters.SecretName: \"{secret}\""
                    ),
                    format!("{} reads secret {secret}, which it never read before", app.name),
                )
            }
        };
        Ok(Label {
            id: format!("anomaly-{:03}", i + 1),
            kind: anomaly.kind,
            from,
            to,
            actors,
            query,
            description,
            event_ids: Vec::new(),
            request_ids: Vec::new(),
        })
    }

    fn instance_of(&self, anomaly: &AnomalyDoc) -> Result<String, String> {
        let key = self.doc.keys.iter().find(|k| Some(&k.name) == anomaly.key.as_ref());
        key.and_then(|k| k.instance.as_ref())
            .and_then(|name| self.instance_ids.get(name))
            .cloned()
            .ok_or_else(|| "qps-quota: the key is in no instance".to_owned())
    }

    /// Runs minute by minute to `end`: each minute's normal calls, lifecycle
    /// steps and anomaly calls in time order.
    async fn run_until(&mut self, end: SimTime, progress: &mut impl FnMut(u64, f64)) -> Result<(), String> {
        let first = self.now();
        let span = (end.millis() - first.millis()).max(1) as f64;
        let mut minute = first;
        let mut calls: Vec<(SimTime, u64, Planned)> = Vec::new();
        while minute < end {
            let next = SimTime((minute.millis() + 60_000).min(end.millis()));
            calls.clear();
            for (i, app) in self.apps.iter().enumerate() {
                let mean = app.shape.mean_at(minute) * (next.millis() - minute.millis()) as f64 / 60_000.0;
                for _ in 0..self.dice.poisson(mean) {
                    let at =
                        SimTime(minute.millis() + self.dice.below((next.millis() - minute.millis()) as u64) as i64);
                    calls.push((at, calls.len() as u64, Planned::Normal { app: i }));
                }
            }
            while self.agenda.front().is_some_and(|(at, _)| *at < next) {
                let (at, planned) = self.agenda.pop_front().expect("front exists");
                calls.push((at.max(minute), calls.len() as u64, planned));
            }
            calls.sort_by_key(|(at, order, _)| (*at, *order));
            for (at, _, planned) in std::mem::take(&mut calls) {
                self.advance_to(at).await?;
                match planned {
                    Planned::Normal { app } => self.normal_call(app).await?,
                    Planned::Lifecycle { step } => self.lifecycle(step).await?,
                    Planned::Anomaly { anomaly, index } => self.anomaly_call(anomaly, index).await?,
                }
            }
            minute = next;
            progress(self.book.records.load(Ordering::Relaxed), (minute.millis() - first.millis()) as f64 / span);
        }
        self.advance_to(end).await?;
        self.app.flush().await.map_err(|e| e.to_string())
    }

    fn caller_of(&mut self, app: usize) -> Option<Caller> {
        let state = &self.apps[app];
        let active: Vec<&String> = state.access_keys.iter().filter(|(_, on)| *on).map(|(id, _)| id).collect();
        if active.is_empty() {
            return None;
        }
        let access_key_id = active[self.dice.below(active.len() as u64) as usize].clone();
        let state = &self.apps[app];
        let range = state.ranges[self.dice.below(state.ranges.len() as u64) as usize];
        let ip = range.nth(self.dice.below(u64::from(range.hosts())) as u32);
        let user_agent = state.user_agents[self.dice.below(state.user_agents.len() as u64) as usize].clone();
        Some(Caller { access_key_id, ip, user_agent, region: None })
    }

    /// One call of an application's normal traffic. Applications leave keys
    /// alone once they are disabled or going away, so every `Rejected.*` in
    /// the trail is an anomaly's.
    async fn normal_call(&mut self, app: usize) -> Result<(), String> {
        let which = self.dice.weighted(&self.apps[app].weights);
        let (op, key, secret) = {
            let call = &self.doc.applications[app].calls[which];
            (call.op, call.key.clone(), call.secret.clone())
        };
        // A secret's calls depend on the key that seals it.
        let key = key.unwrap_or_else(|| key_of_secret(&self.doc, &secret));
        if !self.keys.get(&key).is_some_and(|k| k.usable) {
            return Ok(());
        }
        let Some(caller) = self.caller_of(app) else { return Ok(()) };
        self.call(op, &caller, &key, secret.as_deref()).await.map(|_| ())
    }

    /// Makes `op` on `key` (or `secret`) as `caller`; the error code if it failed.
    async fn call(
        &mut self,
        op: Operation,
        caller: &Caller,
        key: &str,
        secret: Option<&str>,
    ) -> Result<Option<String>, String> {
        let key_id = self.keys[key].id.clone();
        let size = 32 + self.dice.below(2048) as usize;
        let answer: Answer<()> = match op {
            Operation::Encrypt => {
                let message = pb::EncryptRequest {
                    key_id: format!("alias/{key}"),
                    plaintext: self.payload[..size].to_vec(),
                    ..Default::default()
                };
                let request = self.request(caller, message, 3.0);
                self.send(request, kms_ops::Encrypt::from, kms::encode::encrypt)
                    .await
                    .map(|r| self.keep_blob(key, r.ciphertext_blob))
            }
            Operation::GenerateDataKey => {
                let message = pb::GenerateDataKeyRequest { key_id: format!("alias/{key}"), ..Default::default() };
                let request = self.request(caller, message, 3.5);
                self.send(request, kms_ops::GenerateDataKey::from, kms::encode::generate_data_key)
                    .await
                    .map(|r| self.keep_blob(key, r.ciphertext_blob))
            }
            Operation::Decrypt => {
                let blobs = &self.keys[key].blobs;
                if blobs.is_empty() {
                    return Box::pin(self.call(Operation::GenerateDataKey, caller, key, None)).await;
                }
                let blob = blobs[self.dice.below(blobs.len() as u64) as usize].clone();
                let request =
                    self.request(caller, pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() }, 3.0);
                self.send(request, kms_ops::Decrypt::from, kms::encode::decrypt).await.map(|_| ())
            }
            Operation::AsymmetricSign => {
                let mut digest = vec![0u8; 32];
                self.dice.fill(&mut digest);
                let algorithm = sign_algorithm(&self.keys[key].spec).to_owned();
                let message = pb::AsymmetricSignRequest {
                    key_id: key_id.clone(),
                    algorithm,
                    digest: digest.clone(),
                    ..Default::default()
                };
                let request = self.request(caller, message, 6.0);
                self.send(request, kms_ops::AsymmetricSign::from, kms::encode::asymmetric_sign).await.map(|r| {
                    let signatures = &mut self.keys.get_mut(key).expect("known key").signatures;
                    if signatures.len() >= POOL {
                        signatures.pop_front();
                    }
                    signatures.push_back((digest, r.signature));
                })
            }
            Operation::AsymmetricVerify => {
                let signatures = &self.keys[key].signatures;
                if signatures.is_empty() {
                    return Box::pin(self.call(Operation::AsymmetricSign, caller, key, None)).await;
                }
                let (digest, signature) = signatures[self.dice.below(signatures.len() as u64) as usize].clone();
                let algorithm = sign_algorithm(&self.keys[key].spec).to_owned();
                let message =
                    pb::AsymmetricVerifyRequest { key_id, algorithm, digest, signature, ..Default::default() };
                let request = self.request(caller, message, 6.0);
                self.send(request, kms_ops::AsymmetricVerify::from, kms::encode::asymmetric_verify).await.map(|_| ())
            }
            Operation::GenerateMac => {
                let message = pb::GenerateMacRequest {
                    key_id,
                    algorithm: mac_algorithm(&self.keys[key].spec).into(),
                    message: self.payload[..size.min(256)].to_vec(),
                };
                let request = self.request(caller, message, 2.5);
                self.send(request, kms_ops::GenerateMac::from, kms::encode::generate_mac).await.map(|_| ())
            }
            Operation::GetSecretValue => {
                let message = pb::GetSecretValueRequest {
                    secret_name: secret.unwrap_or_default().to_owned(),
                    ..Default::default()
                };
                let request = self.request(caller, message, 8.0);
                self.send(request, secrets_ops::GetSecretValue::from, secrets::encode::get_secret_value)
                    .await
                    .map(|_| ())
            }
            Operation::DescribeKey => {
                let request = self.request(caller, pb::DescribeKeyRequest { key_id }, 2.0);
                self.send(request, kms_ops::DescribeKey::from, kms::encode::describe_key).await.map(|_| ())
            }
        };
        Ok(answer.err().map(|status| error_code(&status)))
    }

    fn keep_blob(&mut self, key: &str, blob: Vec<u8>) {
        let blobs = &mut self.keys.get_mut(key).expect("known key").blobs;
        if blobs.len() >= POOL {
            blobs.pop_front();
        }
        blobs.push_back(blob);
    }

    /// An operator's lifecycle step.
    async fn lifecycle(&mut self, step: usize) -> Result<(), String> {
        let (action, key, secret, app, access_key, days) = {
            let s = &self.doc.lifecycle[step];
            (s.action, s.key.clone().unwrap_or_default(), s.secret.clone(), s.app.clone(), s.access_key, s.days)
        };
        let operator = self.operator.clone();
        let key_id = self.keys.get(&key).map(|k| k.id.clone()).unwrap_or_default();
        let what = format!("lifecycle step {} ({action:?})", step + 1);
        let usable = match action {
            Action::RotateKey => {
                let request = self.request(&operator, pb::CreateKeyVersionRequest { key_id }, 40.0);
                ok(self.send(request, kms_ops::CreateKeyVersion::from, kms::encode::create_key_version).await, &what)?;
                None
            }
            Action::DisableKey => {
                let request = self.request(&operator, pb::DisableKeyRequest { key_id }, 30.0);
                ok(self.send(request, kms_ops::DisableKey::from, kms::encode::disable_key).await, &what)?;
                Some(false)
            }
            Action::EnableKey => {
                let request = self.request(&operator, pb::EnableKeyRequest { key_id }, 30.0);
                ok(self.send(request, kms_ops::EnableKey::from, kms::encode::enable_key).await, &what)?;
                Some(true)
            }
            Action::ScheduleKeyDeletion => {
                let message = pb::ScheduleKeyDeletionRequest { key_id, pending_window_in_days: days as i32 };
                let request = self.request(&operator, message, 30.0);
                ok(
                    self.send(request, kms_ops::ScheduleKeyDeletion::from, kms::encode::schedule_key_deletion).await,
                    &what,
                )?;
                Some(false)
            }
            Action::CancelKeyDeletion => {
                let request = self.request(&operator, pb::CancelKeyDeletionRequest { key_id }, 30.0);
                ok(
                    self.send(request, kms_ops::CancelKeyDeletion::from, kms::encode::cancel_key_deletion).await,
                    &what,
                )?;
                Some(true)
            }
            // A generic secret rotates by a new value under a new version, as its owner puts it.
            Action::RotateSecret => {
                let message = pb::PutSecretValueRequest {
                    secret_name: secret.unwrap_or_default(),
                    secret_data: self.secret_value(),
                    secret_data_type: "text".into(),
                    version_id: format!("v{}", step + 2),
                    ..Default::default()
                };
                let request = self.request(&operator, message, 60.0);
                ok(
                    self.send(request, secrets_ops::PutSecretValue::from, secrets::encode::put_secret_value).await,
                    &what,
                )?;
                None
            }
            Action::DisableAccessKey => {
                let app = self.app_index(&app);
                let id = self.apps[app]
                    .access_keys
                    .get(access_key as usize)
                    .map(|k| k.0.clone())
                    .ok_or_else(|| format!("{what}: no such access key"))?;
                let message = pb::UpdateAccessKeyRequest { access_key_id: id, status: "Inactive".into() };
                let request = self.request(&operator, message, 50.0);
                ok(
                    self.send(request, access_ops::UpdateAccessKey::from, access::encode::update_access_key).await,
                    &what,
                )?;
                self.apps[app].access_keys[access_key as usize].1 = false;
                None
            }
        };
        if let (Some(usable), Some(state)) = (usable, self.keys.get_mut(&key)) {
            state.usable = usable;
        }
        Ok(())
    }

    /// One call of an anomaly, recorded under its label.
    async fn anomaly_call(&mut self, anomaly: usize, index: u32) -> Result<(), String> {
        let label = self.anomaly_labels[anomaly];
        let doc = &self.doc.anomalies[anomaly].clone();
        let (kind, key, secret, region) =
            (doc.kind, doc.key.clone().unwrap_or_default(), doc.secret.clone(), doc.region.clone());
        let app = self.app_index(&doc.app);
        let access_key =
            self.apps[app].access_keys.get(doc.access_key as usize).map(|k| k.0.clone()).unwrap_or_default();
        let mut caller = self.caller_of_any(app, &access_key);
        match kind {
            AnomalyKind::DecryptSpike | AnomalyKind::BruteForce => caller.ip = anomaly_ip(doc),
            AnomalyKind::UnusualUserAgent => caller.user_agent = anomaly_user_agent(doc),
            AnomalyKind::UnusualRegion => caller.region = region,
            _ => {}
        }
        let window = (kind == AnomalyKind::QpsQuota).then(|| self.instance_of(doc)).transpose()?;
        if index == 0
            && let Some(instance) = window
        {
            let now = self.now();
            *self.book.window.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((label, instance, now, SimTime(now.millis() + 1000)));
        }
        *self.book.current.lock().unwrap_or_else(|p| p.into_inner()) = (kind != AnomalyKind::QpsQuota).then_some(label);
        let failed = |code: Option<String>| code.map(|code| format!("failed with {code}"));
        let problem = match kind {
            AnomalyKind::DecryptSpike => failed(self.call(Operation::Decrypt, &caller, &key, None).await?),
            AnomalyKind::KeyExport => {
                let message = pb::ExportKeyRequest {
                    key_id: self.keys[&key].id.clone(),
                    public_key_blob: self.export_public_key.clone().into_bytes(),
                    wrapping_algorithm: "RSA_AES_KEY_WRAP_SHA_256".into(),
                    wrapping_key_spec: "RSA_2048".into(),
                    ..Default::default()
                };
                let request = self.request(&caller, message, 40.0);
                failed(
                    self.send(request, kms_ops::ExportKey::from, kms::encode::export_key)
                        .await
                        .err()
                        .map(|s| error_code(&s)),
                )
            }
            AnomalyKind::DisabledKeyUse => {
                let symmetric = self.keys[&key].spec.starts_with("Aliyun");
                let op = if symmetric { Operation::GenerateDataKey } else { Operation::AsymmetricSign };
                match self.call(op, &caller, &key, None).await? {
                    Some(code) if code.starts_with("Rejected.") => None,
                    other => Some(format!("expected Rejected.*, got {}", other.unwrap_or_else(|| "success".into()))),
                }
            }
            AnomalyKind::BruteForce => {
                let mut forged = self.keys[&key].blobs.front().cloned().unwrap_or_else(|| vec![1; 64]);
                let at = forged.len() - 1 - self.dice.below(16) as usize;
                forged[at] ^= 1 + self.dice.below(255) as u8;
                let message = pb::DecryptRequest { ciphertext_blob: forged, ..Default::default() };
                let request = self.request(&caller, message, 2.0);
                self.send(request, kms_ops::Decrypt::from, kms::encode::decrypt)
                    .await
                    .ok()
                    .map(|_| "a forged ciphertext decrypted".to_owned())
            }
            AnomalyKind::DisabledAccessKeyUse => {
                if self.apps[app].access_keys.iter().any(|(id, on)| *id == access_key && *on) {
                    Some("its access key is not disabled by then; disable it in lifecycle first".to_owned())
                } else {
                    failed(self.call(Operation::Decrypt, &caller, &key, None).await?)
                }
            }
            AnomalyKind::UnusualRegion => {
                // Listing succeeds (there is nothing there); describing a key of the home region is KeyNotFound.
                if index.is_multiple_of(2) {
                    let request = self.request(&caller, pb::ListKeysRequest { page_number: 1, page_size: 100 }, 4.0);
                    let _ = self.send(request, kms_ops::ListKeys::from, kms::encode::list_keys).await;
                } else {
                    let key_id = self.keys.values().next().map(|k| k.id.clone()).unwrap_or_default();
                    let request = self.request(&caller, pb::DescribeKeyRequest { key_id }, 4.0);
                    let _ = self.send(request, kms_ops::DescribeKey::from, kms::encode::describe_key).await;
                }
                None
            }
            AnomalyKind::UnusualUserAgent => failed(self.call(Operation::GenerateDataKey, &caller, &key, None).await?),
            // Past the quota some calls are throttled, as they would be.
            AnomalyKind::QpsQuota => {
                self.call(Operation::Encrypt, &caller, &key, None).await?;
                None
            }
            AnomalyKind::NewSecretReader => {
                let key = key_of_secret(&self.doc, &secret);
                failed(self.call(Operation::GetSecretValue, &caller, &key, secret.as_deref()).await?)
            }
        };
        *self.book.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match problem {
            Some(problem) => Err(format!("anomaly {} ({}): {problem}", anomaly + 1, kind.as_str())),
            None => Ok(()),
        }
    }

    /// `app`'s caller with a given AccessKey, active or not.
    fn caller_of_any(&mut self, app: usize, access_key: &str) -> Caller {
        let state = &self.apps[app];
        let range = state.ranges[0];
        let ip = range.nth(self.dice.below(u64::from(range.hosts())) as u32);
        Caller { access_key_id: access_key.to_owned(), ip, user_agent: state.user_agents[0].clone(), region: None }
    }
}

fn key_of_secret(doc: &ScenarioDoc, secret: &Option<String>) -> String {
    doc.secrets.iter().find(|s| Some(&s.name) == secret.as_ref()).map(|s| s.key.clone()).unwrap_or_default()
}

/// The address of an anomaly's new caller.
fn anomaly_ip(anomaly: &AnomalyDoc) -> Ipv4Addr {
    anomaly.ip.as_deref().and_then(|ip| ip.parse().ok()).unwrap_or(match anomaly.kind {
        AnomalyKind::BruteForce => Ipv4Addr::new(198, 51, 100, 77),
        _ => Ipv4Addr::new(203, 0, 113, 45),
    })
}

fn anomaly_user_agent(anomaly: &AnomalyDoc) -> String {
    scenario::user_agent(anomaly.user_agent.as_deref().unwrap_or("python-requests/2.31.0"))
}

/// How many calls an anomaly makes, and over how many milliseconds.
fn anomaly_extent(anomaly: &AnomalyDoc, doc: &ScenarioDoc) -> Result<(u32, i64), String> {
    let over = anomaly.over.as_deref().map(|o| millis(o, "over")).transpose()?;
    Ok(match anomaly.kind {
        AnomalyKind::QpsQuota => {
            let key = doc.keys.iter().find(|k| Some(&k.name) == anomaly.key.as_ref());
            let qps = key
                .and_then(|k| k.instance.as_ref())
                .and_then(|i| doc.instances.iter().find(|d| &d.name == i))
                .map_or(0, |i| i.qps);
            let ratio = anomaly.ratio.unwrap_or(0.95);
            ((f64::from(qps) * ratio).ceil() as u32, 1000)
        }
        AnomalyKind::KeyExport | AnomalyKind::NewSecretReader => (anomaly.calls.unwrap_or(1), over.unwrap_or(60_000)),
        _ => (anomaly.calls.unwrap_or(20), over.unwrap_or(600_000)),
    })
}

fn sign_algorithm(spec: &str) -> &'static str {
    match spec {
        s if s.starts_with("RSA") => "RSA_PSS_SHA_256",
        "EC_SM2" => "SM2DSA",
        "EC_P384" => "ECDSA_SHA_384",
        _ => "ECDSA_SHA_256",
    }
}

fn mac_algorithm(spec: &str) -> &'static str {
    match spec {
        "HMAC_384" => "HMAC_SHA_384",
        "HMAC_512" => "HMAC_SHA_512",
        _ => "HMAC_SHA_256",
    }
}

fn ok<T>(answer: Answer<T>, what: &str) -> Result<T, String> {
    answer.map_err(|error| format!("{what} failed: {} ({})", error.message, error_code(&error)))
}

/// The summary as JSON (for `--output json`).
pub fn summary_json(summary: &Summary, out: &Path) -> Value {
    let rate = |seconds: f64| if seconds > 0.0 { (summary.records as f64 / seconds).round() } else { 0.0 };
    json!({
        "scenario": summary.scenario,
        "start": summary.start,
        "end": summary.end,
        "out": out.display().to_string(),
        "records": summary.records,
        "failures": summary.failures,
        "systemEvents": summary.system_events,
        "anomalies": summary.labels.iter().map(|(kind, n)| json!({"kind": kind, "records": n})).collect::<Vec<_>>(),
        "generateSeconds": summary.generate_seconds,
        "recordsPerSecond": rate(summary.generate_seconds),
        "exportSeconds": summary.export_seconds,
        "recordsPerSecondOverall": rate(summary.generate_seconds + summary.export_seconds),
    })
}
