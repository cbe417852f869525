//! kmsim inside your own tests: an in-process server on a free loopback port,
//! with connected clients, started in a few milliseconds and stopped when you
//! are done (the way testcontainers starts LocalStack, without a container).
//!
//! ```rust
//! use kmsim::proto::{CreateKeyRequest, DecryptRequest, EncryptRequest};
//! use kmsim::testing::Kmsim;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // In memory, on 127.0.0.1 and a port the OS picks.
//!     let server = Kmsim::start().await?;
//!     let mut kms = server.kms();
//!
//!     let key = kms.create_key(CreateKeyRequest::default()).await?.into_inner();
//!     let key_id = key.key_metadata.ok_or("CreateKey returned no metadata")?.key_id;
//!
//!     let request = EncryptRequest { key_id, plaintext: b"card 4111".to_vec(), ..Default::default() };
//!     let sealed = kms.encrypt(request).await?.into_inner().ciphertext_blob;
//!
//!     let request = DecryptRequest { ciphertext_blob: sealed, ..Default::default() };
//!     let opened = kms.decrypt(request).await?.into_inner();
//!     assert_eq!(opened.plaintext, b"card 4111");
//!
//!     // Waits for in-flight calls and closes the store; dropping `server` stops it too.
//!     server.shutdown().await?;
//!     Ok(())
//! }
//! ```
//!
//! With a seed (fixtures with fixed ids), another default region and a durable
//! store, through the [builder](Kmsim::builder):
//!
//! ```rust,no_run
//! # async fn example() -> Result<(), kmsim::testing::Error> {
//! let dir = std::env::temp_dir().join("kmsim-example");
//! let server = kmsim::testing::Kmsim::builder()
//!     .seed_file("tests/fixtures/seed.yaml")
//!     .region("cn-shanghai")
//!     .data_dir(&dir)
//!     .start()
//!     .await?;
//! println!("kmsim at {}", server.endpoint()); // http://127.0.0.1:PORT
//! # Ok(())
//! # }
//! ```
//!
//! - Every call made through [`Kmsim::kms`] and the other clients runs in the
//!   server's default region ([`KmsimBuilder::region`]); another region is
//!   request metadata `x-kms-region`.
//! - The simulation clock moves with [`Kmsim::advance_clock`] (or
//!   [`Kmsim::simulation`]'s `AdvanceClock` / `SetClock`), and answers once the
//!   work that fell due (deletions, rotations, expiries) is done; faults are
//!   injected with `InjectFault` on [`Kmsim::simulation`].
//! - Servers are independent: start one per test (or several in one test).
//! - Anything [`ServerConfig`] offers is reachable with
//!   [`KmsimBuilder::configure`]. The clients speak plaintext HTTP/2; for TLS,
//!   start [`crate::server::start`] yourself.
//!
//! From another language, run the binary instead: `kmsim serve --listen
//! 127.0.0.1:0 --in-memory` prints `listening on IP:PORT` as its first line of
//! standard output (see `docs/testing.md`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};

use crate::clock::SimTime;
use crate::proto::access_service_client::AccessServiceClient;
use crate::proto::audit_service_client::AuditServiceClient;
use crate::proto::event_service_client::EventServiceClient;
use crate::proto::instance_service_client::InstanceServiceClient;
use crate::proto::key_management_service_client::KeyManagementServiceClient;
use crate::proto::secrets_manager_service_client::SecretsManagerServiceClient;
use crate::proto::simulation_service_client::SimulationServiceClient;
use crate::seed::SeedSource;
use crate::server::{BoxError, RunningServer, ServerConfig};
use crate::store::Location;

/// A client of `KeyManagementService`.
pub type KmsClient = KeyManagementServiceClient<Channel>;
/// A client of `SecretsManagerService`.
pub type SecretsClient = SecretsManagerServiceClient<Channel>;
/// A client of `AuditService`.
pub type AuditClient = AuditServiceClient<Channel>;
/// A client of `SimulationService` (clock, faults, metrics, seeds).
pub type SimulationClient = SimulationServiceClient<Channel>;
/// A client of `EventService`.
pub type EventsClient = EventServiceClient<Channel>;
/// A client of `InstanceService`.
pub type InstancesClient = InstanceServiceClient<Channel>;
/// A client of `AccessService`.
pub type AccessClient = AccessServiceClient<Channel>;

/// What can go wrong starting, using or stopping a [`Kmsim`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A builder setting is not valid (e.g. `clock_start` is not RFC 3339).
    Config(String),
    /// The seed file could not be read.
    SeedFile {
        /// The file given to [`KmsimBuilder::seed_file`].
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The server refused to start: a bad region or account id, a bad seed,
    /// a data dir it cannot open, an address in use.
    Start(BoxError),
    /// The client could not connect to the server just started.
    Connect(tonic::transport::Error),
    /// A call made by a convenience method (e.g. [`Kmsim::advance_clock`]) failed.
    Call(tonic::Status),
    /// The server did not stop cleanly (e.g. its store could not be flushed).
    Stop(BoxError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(message) => write!(f, "kmsim: {message}"),
            Error::SeedFile { path, source } => write!(f, "kmsim: cannot read seed {}: {source}", path.display()),
            Error::Start(e) => write!(f, "kmsim did not start: {e}"),
            Error::Connect(e) => write!(f, "kmsim: cannot connect to the server: {e}"),
            Error::Call(status) => write!(f, "kmsim: {}: {}", status.code(), status.message()),
            Error::Stop(e) => write!(f, "kmsim did not stop cleanly: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(_) => None,
            Error::SeedFile { source, .. } => Some(source),
            Error::Start(e) | Error::Stop(e) => Some(e.as_ref()),
            Error::Connect(e) => Some(e),
            Error::Call(status) => Some(status),
        }
    }
}

/// Settings for a [`Kmsim`]; made by [`Kmsim::builder`], consumed by [`KmsimBuilder::start`].
///
/// The defaults are those of [`ServerConfig::default`]: in memory, on
/// `127.0.0.1:0`, region `cn-hangzhou`, account `1192853035118460`, no seed,
/// no authentication.
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until .start().await"]
pub struct KmsimBuilder {
    config: ServerConfig,
    seed_file: Option<PathBuf>,
    clock_start: Option<String>,
    user_agent: Option<String>,
}

impl KmsimBuilder {
    /// Creates the fixtures of the YAML seed in `path` before the server serves
    /// (`kmsim serve --seed`). The file is read by [`start`](Self::start); a
    /// missing file or a bad seed makes `start` fail. Replaces any earlier seed.
    pub fn seed_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.seed_file = Some(path.into());
        self.config.seed = None;
        self
    }

    /// Like [`seed_file`](Self::seed_file), with the YAML given as text.
    pub fn seed_yaml(mut self, yaml: impl Into<String>) -> Self {
        self.seed_file = None;
        self.config.seed = Some(SeedSource { name: "seed_yaml".to_owned(), text: yaml.into() });
        self
    }

    /// The default region (`--region`), e.g. `cn-shanghai`: where calls that
    /// carry no `x-kms-region` metadata run.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.config.region = region.into();
        self
    }

    /// The simulated account, 16 digits (`--account-id`).
    pub fn account_id(mut self, account_id: impl Into<String>) -> Self {
        self.config.account_id = account_id.into();
        self
    }

    /// Keeps the durable store (SQLite) in `dir`, created if missing, instead
    /// of in memory. A later server on the same `dir` sees the same state.
    /// The dir is private like every data dir: an empty one (`tempfile`'s) is
    /// made 0700, and one with files in it that the group or others can reach
    /// is refused (`.configure(|c| c.allow_shared_data_dir = true)` serves it).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.store = Location::Dir(dir.into());
        self
    }

    /// Keeps nothing past the server (the default): its store is a private
    /// scratch dir under the system temp dir, removed when the server stops.
    pub fn in_memory(mut self) -> Self {
        self.config.store = Location::InMemory;
        self
    }

    /// Starts the simulation clock at this RFC 3339 instant, e.g.
    /// `2026-01-01T00:00:00Z` (`--clock-start`; forward only).
    pub fn clock_start(mut self, rfc3339: impl Into<String>) -> Self {
        self.clock_start = Some(rfc3339.into());
        self
    }

    /// The `user-agent` the clients send (and the audit trail records).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Changes anything else in the [`ServerConfig`], in call order with the
    /// other settings: audit trails, metrics, webhooks, retention, auth.
    ///
    /// ```rust
    /// # async fn example() -> Result<(), kmsim::testing::Error> {
    /// let server = kmsim::testing::Kmsim::builder()
    ///     .configure(|config| config.metrics_listen = Some("127.0.0.1:0".parse().unwrap()))
    ///     .start()
    ///     .await?;
    /// let metrics = server.metrics_addr(); // Some(127.0.0.1:PORT)
    /// # Ok(())
    /// # }
    /// ```
    pub fn configure(mut self, change: impl FnOnce(&mut ServerConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Starts the server (seeded, bound and serving) and connects a client to it.
    ///
    /// Needs a Tokio runtime (e.g. `#[tokio::test]`); the server runs on it
    /// until [`Kmsim::shutdown`] or until the [`Kmsim`] is dropped.
    pub async fn start(self) -> Result<Kmsim, Error> {
        let KmsimBuilder { mut config, seed_file, clock_start, user_agent } = self;
        if config.tls.is_some() {
            return Err(Error::Config(
                "kmsim::testing connects over plaintext; with TLS, start kmsim::server::start yourself".to_owned(),
            ));
        }
        if let Some(text) = clock_start {
            let start = SimTime::parse_rfc3339(&text).ok_or_else(|| {
                Error::Config(format!("clock_start {text:?} is not an RFC 3339 instant such as 2026-01-01T00:00:00Z"))
            })?;
            config.clock_start = Some(start);
        }
        if let Some(path) = seed_file {
            config.seed = Some(SeedSource::read(&path).map_err(|source| Error::SeedFile { path, source })?);
        }
        let (region, account_id) = (config.region.clone(), config.account_id.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let running = crate::server::start(config, async move {
            // Completes when `stop` is used by shutdown, or dropped with the Kmsim.
            let _ = stopped.await;
        })
        .await
        .map_err(Error::Start)?;
        let addr = running.local_addr;
        // An early return from here on drops `stop`, which stops the server.
        let mut endpoint = Endpoint::from_shared(format!("http://{addr}")).map_err(Error::Connect)?;
        if let Some(agent) = user_agent {
            endpoint = endpoint.user_agent(agent).map_err(|e| Error::Config(format!("user_agent: {e}")))?;
        }
        let channel = endpoint.connect().await.map_err(Error::Connect)?;
        Ok(Kmsim { addr, metrics_addr: running.metrics_addr, region, account_id, channel, stop, running })
    }
}

/// A kmsim server running in this process, with a client connection to it.
///
/// Dropping it stops the server (in the background, on the runtime it was
/// started on); [`shutdown`](Self::shutdown) stops it and waits until it has
/// stopped and its store is closed.
#[must_use = "the server stops when this is dropped"]
pub struct Kmsim {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    region: String,
    account_id: String,
    channel: Channel,
    /// Stops the server when used, or when dropped with the `Kmsim`.
    stop: oneshot::Sender<()>,
    running: RunningServer,
}

impl fmt::Debug for Kmsim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kmsim")
            .field("addr", &self.addr)
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

impl Kmsim {
    /// Starts a server with the defaults (in memory, `127.0.0.1:0`, no seed):
    /// `Kmsim::builder().start()`.
    pub async fn start() -> Result<Kmsim, Error> {
        Kmsim::builder().start().await
    }

    /// Settings for a server: seed, region, data dir, anything in [`ServerConfig`].
    pub fn builder() -> KmsimBuilder {
        KmsimBuilder::default()
    }

    /// The address the server is bound to, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's URL, `http://127.0.0.1:PORT`: the `--endpoint` (or
    /// `KMSIM_ENDPOINT`) of the kmsim CLI, or the target of any gRPC client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where Prometheus metrics are served, when configured with `metrics_listen`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The default region: where the clients' calls run.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The simulated account id (in every ARN).
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// A connected channel to the server, for any generated client (or a
    /// `tower` stack around one). Cheap: every clone shares one connection.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A `KeyManagementService` client.
    pub fn kms(&self) -> KmsClient {
        KmsClient::new(self.channel())
    }

    /// A `SecretsManagerService` client.
    pub fn secrets(&self) -> SecretsClient {
        SecretsClient::new(self.channel())
    }

    /// An `AuditService` client: the audit trail of every call.
    pub fn audit(&self) -> AuditClient {
        AuditClient::new(self.channel())
    }

    /// A `SimulationService` client: the clock, faults, metrics and seeds.
    pub fn simulation(&self) -> SimulationClient {
        SimulationClient::new(self.channel())
    }

    /// An `EventService` client: system events and their subscriptions.
    pub fn events(&self) -> EventsClient {
        EventsClient::new(self.channel())
    }

    /// An `InstanceService` client: KMS instances and key sync.
    pub fn instances(&self) -> InstancesClient {
        InstancesClient::new(self.channel())
    }

    /// An `AccessService` client: AccessKeys, policies, application access points.
    pub fn access(&self) -> AccessClient {
        AccessClient::new(self.channel())
    }

    /// The simulated now.
    pub async fn now(&self) -> Result<SimTime, Error> {
        let clock = self.simulation().get_clock(crate::proto::GetClockRequest {}).await.map_err(Error::Call)?;
        Ok(clock_reading(clock.into_inner()))
    }

    /// Moves the simulation clock forward by `by` and returns the new now,
    /// once every piece of work that fell due (deletions, rotations, expiries)
    /// is done: a test can assert on its effects at once.
    pub async fn advance_clock(&self, by: Duration) -> Result<SimTime, Error> {
        let advance =
            prost_types::Duration::try_from(by).map_err(|e| Error::Config(format!("advance_clock {by:?}: {e}")))?;
        let request = crate::proto::AdvanceClockRequest { advance: Some(advance) };
        let clock = self.simulation().advance_clock(request).await.map_err(Error::Call)?;
        Ok(clock_reading(clock.into_inner()))
    }

    /// Stops the server gracefully: it stops accepting calls, lets in-flight
    /// calls finish (streams left open get 5 seconds), then flushes and closes
    /// its store. Returns once all of that is done and the port is released.
    pub async fn shutdown(self) -> Result<(), Error> {
        let Kmsim { channel, stop, running, .. } = self;
        // Our own connection must not keep the server waiting.
        drop(channel);
        let _ = stop.send(());
        running.wait().await.map_err(Error::Stop)
    }
}

fn clock_reading(clock: crate::proto::ClockResponse) -> SimTime {
    let now = clock.now.unwrap_or_default();
    SimTime(now.seconds.saturating_mul(1000).saturating_add(i64::from(now.nanos) / 1_000_000))
}
