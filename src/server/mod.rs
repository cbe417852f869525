//! The server: opens the store, assembles the kernel's [`App`], catches up on
//! due work, binds the one listening address and serves every front end on
//! it until shutdown. Front ends live in [`crate::frontends`]; the path each
//! call takes is [`crate::kernel`]'s.

mod listener;

pub use listener::Peer;
mod metrics_http;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::audit::trail::{TrailSpec, Trails};
use crate::audit::{AuditRecord, PayloadSizes};
use crate::clock::{SimClock, SimTime};
use crate::context::CallContext;
use crate::credentials::Credentials;
use crate::engine::Engine;
use crate::events::webhook::{Deliveries, RetryPolicy};
use crate::frontends::grpc::{self, tls::TlsFiles};
use crate::kernel::admission::{self, Admission};
pub use crate::kernel::identity::AuthMode;
use crate::kernel::identity::Identity;
use crate::kernel::ops::simulation::plan_seed;
use crate::kernel::scheduler::Scheduler;
use crate::kernel::{App, Batching, OpSpec};
use crate::store::{Location, Store};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub const DEFAULT_REGION: &str = "cn-hangzhou";
pub const DEFAULT_ACCOUNT_ID: &str = "1192853035118460";
/// The KMS log service keeps 180 days (seed 000).
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 180;
/// How long system events are kept by default: the 90 days CloudMonitor keeps them for.
pub const DEFAULT_EVENT_RETENTION_DAYS: u32 = 90;

/// How far a TailAuditEvents subscriber may fall behind before it is told it lagged.
const TAIL_CAPACITY: usize = 4096;

/// How long a shutdown waits for in-flight calls before it stops regardless.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub region: String,
    pub account_id: String,
    /// The AWS account the AWS front end's ARNs name: 12 digits.
    pub aws_account_id: String,
    /// Serve the browser console at `/` (`--no-console` turns it off).
    pub console: bool,
    pub store: Location,
    /// Serve a data dir that the group or others can reach (`--allow-shared-data-dir`); refused otherwise.
    pub allow_shared_data_dir: bool,
    /// Moves the simulation clock forward to this instant at start (never back).
    pub clock_start: Option<SimTime>,
    /// A webhook that receives every system event, for as long as the process runs.
    pub event_webhook: Option<String>,
    pub webhook_retry: RetryPolicy,
    /// Audit records older than this many days are pruned as the clock moves; `None` keeps everything.
    pub audit_retention_days: Option<u32>,
    /// How long system events are kept, in days of simulated time; `None` keeps them for ever.
    pub event_retention_days: Option<u32>,
    /// JSON-lines files mirroring committed audit records.
    pub trails: Vec<TrailSpec>,
    /// Where to serve Prometheus metrics (`/metrics`); `None` for nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// The share of an instance's QPS spec at which it raises `Instance:QPS:Reminder`.
    pub qps_reminder_ratio: f64,
    /// Whether calls must be signed and are checked against policies.
    pub auth: AuthMode,
    /// The admin credential (`--admin-key-file`): the account root, the only
    /// identity that may use the simulation and access services when auth is required.
    pub admin: Option<Credentials>,
    /// Serve TLS (and with a client CA, mutual TLS) instead of plaintext HTTP/2.
    pub tls: Option<TlsFiles>,
    /// Fixtures to create before serving (`--seed`); a bad seed stops the start.
    pub seed: Option<crate::seed::SeedSource>,
    /// What one client can make the server hold: see [`Limits`].
    pub limits: Limits,
}

/// Bounds on what one connection can make the server buffer. A request over
/// `max_message_bytes` is refused before it is decoded (gRPC `OUT_OF_RANGE`,
/// naming the size and the limit); a connection past `max_concurrent_streams`
/// open calls has its client wait (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`).
/// So one connection can hold at most about `streams × message bytes` of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_concurrent_streams: u32,
    /// Connections held at once; the next waits in the listen backlog until one closes.
    pub max_connections: usize,
    /// How long a new connection may stay silent before it is closed.
    pub first_byte_timeout: std::time::Duration,
}

impl Limits {
    /// The largest legitimate requests are a seed file and an import's wrapped
    /// material; KMS payloads themselves stop at 6 KiB (Encrypt) and 64 KiB (secrets).
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;
    /// Far above what the load generator's 64-call concurrency needs on one connection.
    pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 256;
    /// HTTP/2 header blocks are small in gRPC; a client's metadata has no reason to approach this.
    pub const MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;
    /// Well under the 1024 file descriptors a process gets by default, with room for the store's.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
    /// A client opens a connection to speak; one that says nothing for this long is gone.
    pub const FIRST_BYTE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: Limits::DEFAULT_MAX_MESSAGE_BYTES,
            max_concurrent_streams: Limits::DEFAULT_MAX_CONCURRENT_STREAMS,
            max_connections: Limits::DEFAULT_MAX_CONNECTIONS,
            first_byte_timeout: Limits::FIRST_BYTE_TIMEOUT,
        }
    }
}

impl Default for ServerConfig {
    /// An in-memory server on a free loopback port: what tests and embedders start from.
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            region: DEFAULT_REGION.to_owned(),
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            aws_account_id: crate::frontends::aws::DEFAULT_AWS_ACCOUNT_ID.to_owned(),
            console: true,
            store: Location::InMemory,
            allow_shared_data_dir: false,
            clock_start: None,
            event_webhook: None,
            webhook_retry: RetryPolicy::default(),
            audit_retention_days: Some(DEFAULT_AUDIT_RETENTION_DAYS),
            event_retention_days: Some(DEFAULT_EVENT_RETENTION_DAYS),
            trails: Vec::new(),
            metrics_listen: None,
            qps_reminder_ratio: admission::DEFAULT_REMINDER_RATIO,
            auth: AuthMode::Off,
            admin: None,
            tls: None,
            seed: None,
            limits: Limits::default(),
        }
    }
}

/// A server that is bound and serving.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    /// Where Prometheus metrics are served, with `metrics_listen`.
    pub metrics_addr: Option<SocketAddr>,
    task: JoinHandle<Result<(), BoxError>>,
}

impl RunningServer {
    /// Waits for the server to stop (after its shutdown signal) and its store to close.
    pub async fn wait(self) -> Result<(), BoxError> {
        self.task.await?
    }
}

/// Opens the store, binds `config.listen`, and serves until `shutdown` completes.
pub async fn start(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningServer, BoxError> {
    if config.account_id.len() != 16 || !config.account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("account id must be 16 digits, got {:?}", config.account_id).into());
    }
    if config.aws_account_id.len() != 12 || !config.aws_account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("AWS account id must be 12 digits, got {:?}", config.aws_account_id).into());
    }
    if !crate::engine::instances::is_region_id(&config.region) {
        return Err(format!("region must be a region id such as cn-hangzhou, got {:?}", config.region).into());
    }
    if !(config.qps_reminder_ratio > 0.0 && config.qps_reminder_ratio <= 1.0) {
        return Err(format!(
            "the QPS reminder threshold must be above 0% and at most 100%, got {}",
            config.qps_reminder_ratio
        )
        .into());
    }
    if config.auth == AuthMode::Required && config.admin.is_none() {
        return Err("--auth required needs an admin credential (--admin-key-file)".into());
    }
    if let Location::Dir(dir) = &config.store
        && !config.allow_shared_data_dir
    {
        crate::store::ensure_private(dir).map_err(|e| format!("data directory {}: {e}", dir.display()))??;
    }
    let (store, loaded) = Store::open(&config.store)?;
    let clock = Arc::new(SimClock::with_offset(loaded.clock_offset_ms));
    let engine = Arc::new(Engine::new(config.account_id.clone(), clock.clone(), loaded.blob_secret, loaded.snapshot));
    if let Some(url) = &config.event_webhook {
        engine.subscribe_from_command_line(url, clock.now()).map_err(|e| format!("--event-webhook {url}: {e}"))?;
    }
    let outbox = engine.events().connect_outbox();
    let app = assemble(&config, store.clone(), engine, None)?;
    let deliveries = app.deliveries.clone();
    let delivering = tokio::spawn(deliveries.run(outbox));
    if let Some(start) = config.clock_start {
        start_clock_at(&app, &config.region, start).await?;
    }
    // Work that fell due while the server was down is done before the first call is served.
    if !app.scheduler.run_due(&app).await {
        return Err("the store refused the work that fell due while the server was down".into());
    }
    if let Some(seed) = &config.seed {
        apply_seed_at_start(&app, &config.region, seed).await.map_err(|e| format!("--seed {e}"))?;
    }
    let (stop_scheduler, scheduler_stopped) = tokio::sync::watch::channel(false);
    let metrics_endpoint = match config.metrics_listen {
        Some(listen) => Some(
            metrics_http::serve(listen, app.metrics.clone(), scheduler_stopped.clone())
                .await
                .map_err(|e| format!("--metrics-listen {listen}: {e}"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_endpoint.as_ref().map(|(addr, _)| *addr);
    let scheduling = Scheduler::spawn(app.clone(), scheduler_stopped);
    let app_at_shutdown = app.clone();
    let router = grpc::router(app, &config).await?;

    let listener = TcpListener::bind(config.listen).await?;
    let local_addr = listener.local_addr()?;
    let tls = match &config.tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(files.server_config()?)),
        None => None,
    };
    let limits = &config.limits;
    let incoming = listener::incoming(listener, limits.max_connections, limits.first_byte_timeout, tls);

    let task = tokio::spawn(async move {
        let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
        let app_stopping = app_at_shutdown.clone();
        let shutdown = async move {
            shutdown.await;
            // Due work (a long clock move in progress) stops between items, so calls finish and the process exits.
            app_stopping.scheduler.stop();
            let _ = signalled.send(());
        };
        let serving = router.serve_with_incoming_shutdown(incoming, shutdown);
        // Streams left open by clients must not hold the process up for ever.
        let grace_expired = async move {
            match on_signal.await {
                Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
                Err(_) => std::future::pending().await,
            }
        };
        let served = tokio::select! {
            served = serving => served,
            () = grace_expired => {
                tracing::warn!(grace = ?SHUTDOWN_GRACE, "calls still open after the shutdown grace period; stopping");
                Ok(())
            }
        };
        // In-flight calls have been answered and the scheduler is stopped, so every record is committed; flush and close.
        let _ = stop_scheduler.send(true);
        let _ = scheduling.await;
        if let Some((_, endpoint)) = metrics_endpoint {
            let _ = endpoint.await;
        }
        delivering.abort();
        app_at_shutdown.trails.close().await;
        tokio::task::spawn_blocking(move || store.close()).await?;
        served.map_err(BoxError::from)
    });
    let (auth, tls) =
        (config.auth, config.tls.as_ref().map(|t| if t.client_ca_pem.is_some() { "mutual" } else { "server" }));
    tracing::info!(%local_addr, region = %config.region, ?metrics_addr, ?auth, tls = tls.unwrap_or("off"), "kmsim serving");
    Ok(RunningServer { local_addr, metrics_addr, task })
}

/// Puts together what every handler reaches, from an opened store and the
/// engine loaded from it: the one place an [`App`] is made, for the server and
/// for the in-process generator alike.
pub fn assemble(
    config: &ServerConfig,
    store: Store,
    engine: Arc<Engine>,
    batching: Option<Batching>,
) -> Result<Arc<App>, BoxError> {
    let subscriptions = {
        let engine = engine.clone();
        Arc::new(move || engine.subscriptions())
    };
    let deliveries = Deliveries::new(subscriptions, engine.shared_clock(), config.webhook_retry);
    Ok(Arc::new(App {
        engine,
        store,
        region: config.region.clone(),
        scheduler: Scheduler::new(config.audit_retention_days, config.event_retention_days),
        deliveries,
        audit_tail: tokio::sync::broadcast::channel(TAIL_CAPACITY).0,
        trails: Trails::open(config.trails.clone()).map_err(|e| format!("--audit-file: {e}"))?,
        admission: Admission::new(config.qps_reminder_ratio),
        identity: Identity::new(config.auth, config.admin.clone()),
        metrics: Arc::default(),
        batching,
        seed: config.seed.clone(),
    }))
}

/// `--seed`: applies the seed as an internal ApplySeed, before the first call is
/// served. A bad seed stops the start, naming its line.
async fn apply_seed_at_start(app: &Arc<App>, region: &str, seed: &crate::seed::SeedSource) -> Result<(), BoxError> {
    let cx = CallContext::internal(region, app.engine.account_id(), app.engine.clock().now());
    let (outcome, faults) = plan_seed(app, &cx, seed, false).await.map_err(|e| format!("{} {e}", seed.name))?;
    let params = serde_json::json!({ "Source": seed.name });
    let record = AuditRecord::for_call(&OpSpec::APPLY_SEED, &cx, params, PayloadSizes::default(), None);
    let report = outcome.value;
    app.settle(outcome.changes, vec![record]).await?;
    drop(outcome.gates);
    // Faults live in memory, not in the store: in force once the seed is committed.
    for fault in faults {
        app.admission.install(fault);
    }
    tracing::info!(seed = %seed.name, created = report.created(), entries = report.items.len(), "seed applied");
    Ok(())
}

/// `--clock-start`: moves the clock forward to `start`, recorded as an internal
/// SetClock so the trail explains the jump. A clock already past `start` stays.
async fn start_clock_at(app: &Arc<App>, region: &str, start: SimTime) -> Result<(), BoxError> {
    let clock = app.engine.clock();
    if start <= clock.now() {
        tracing::info!(start = %start.to_rfc3339(), now = %clock.now().to_rfc3339(), "clock already past --clock-start");
        return Ok(());
    }
    let cx = CallContext::internal(region, app.engine.account_id(), clock.now());
    let outcome = app.engine.set_clock(start).await?;
    let params = serde_json::json!({ "Time": start.to_rfc3339_millis() });
    let record = AuditRecord::for_call(&OpSpec::CLOCK_START, &cx, params, PayloadSizes::default(), None);
    app.settle(outcome.changes, vec![record]).await?;
    Ok(())
}
