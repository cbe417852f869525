//! `kmsim serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::output::{print_error, print_line};
use crate::audit::formats::Format;
use crate::audit::trail::{Selectors, TrailSpec};
use crate::clock::SimTime;
use crate::credentials::Credentials;
use crate::frontends::grpc::tls::TlsFiles;
use crate::server::AuthMode;
use crate::server::{
    self, DEFAULT_ACCOUNT_ID, DEFAULT_AUDIT_RETENTION_DAYS, DEFAULT_EVENT_RETENTION_DAYS, DEFAULT_REGION, Limits,
    ServerConfig,
};
use crate::store::Location;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. The bound address is printed as `listening on IP:PORT`.
    #[arg(long, default_value = "127.0.0.1:9595", env = "KMSIM_LISTEN")]
    listen: SocketAddr,
    /// The default region: calls that name none with `x-kms-region` (or the CLI's --region) work here.
    #[arg(long, default_value = DEFAULT_REGION, env = "KMSIM_REGION")]
    region: String,
    /// The simulated account: 16 digits.
    #[arg(long, default_value = DEFAULT_ACCOUNT_ID, env = "KMSIM_ACCOUNT_ID")]
    account_id: String,
    /// The AWS account the AWS KMS API's ARNs name (`arn:aws:kms:<region>:<account>:key/<id>`): 12 digits.
    #[arg(long, default_value = crate::frontends::aws::DEFAULT_AWS_ACCOUNT_ID, env = "KMSIM_AWS_ACCOUNT_ID")]
    aws_account_id: String,
    /// Do not serve the browser console at `/` (docs/console.md); its page and its calls are then refused as
    /// requests to no API.
    #[arg(long)]
    no_console: bool,
    /// Directory of the durable store [default: $XDG_DATA_HOME/kmsim or ~/.local/share/kmsim]. kmsim creates it
    /// 0700 (or makes an empty one so) and its files 0600, and refuses one with files in it that the group or
    /// others can reach.
    #[arg(long, env = "KMSIM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Keep nothing: the store lives in a private scratch dir under $TMPDIR, never synced and removed when the
    /// server stops (one left by a SIGKILL is removed by the next in-memory server). Conflicts with --data-dir,
    /// and with a KMSIM_DATA_DIR set in the environment.
    #[arg(long)]
    in_memory: bool,
    /// Serve a data dir even though the group or others have permissions on it. It holds the audit signing key,
    /// key material and AccessKey secrets, so without this flag such a dir is refused (fix it with chmod 700).
    #[arg(long)]
    allow_shared_data_dir: bool,
    /// Create the fixtures of this YAML seed before serving (docs/seeding.md): what already exists as the
    /// seed describes it is left alone, so restarting with the same seed changes nothing. A bad seed stops
    /// the start with its line and reason.
    #[arg(long, env = "KMSIM_SEED")]
    seed: Option<PathBuf>,
    /// Start the simulation clock at this instant (RFC 3339), e.g. 2025-01-01T00:00:00Z. The clock only moves
    /// forward: a data dir whose clock is already later keeps its time.
    #[arg(long, env = "KMSIM_CLOCK_START", value_parser = super::parse_instant)]
    clock_start: Option<SimTime>,
    /// POST every system event, as CloudMonitor's JSON document, to this http:// URL (retried with backoff).
    #[arg(long, env = "KMSIM_EVENT_WEBHOOK")]
    event_webhook: Option<String>,
    /// Keep audit records this many days of simulated time; 0 keeps them for ever.
    #[arg(long, env = "KMSIM_AUDIT_RETENTION_DAYS", default_value_t = DEFAULT_AUDIT_RETENTION_DAYS)]
    audit_retention_days: u32,
    /// Keep system events this many days of simulated time; 0 keeps them for ever.
    #[arg(long, env = "KMSIM_EVENT_RETENTION_DAYS", default_value_t = DEFAULT_EVENT_RETENTION_DAYS)]
    event_retention_days: u32,
    /// Mirror committed audit records to this JSON-lines file (appended); repeat for more trails.
    #[arg(long)]
    audit_file: Vec<PathBuf>,
    /// The format of --audit-file lines: native, actiontrail or cloudtrail.
    #[arg(long, default_value = "native", value_parser = parse_format)]
    audit_file_format: Format,
    /// Leave read-only events out of the --audit-file trails (changeable later with PutEventSelectors).
    #[arg(long)]
    audit_file_exclude_read_only: bool,
    /// Leave cryptographic events (Encrypt, Decrypt, Sign, …) out of the --audit-file trails.
    #[arg(long)]
    audit_file_exclude_cryptographic: bool,
    /// Serve Prometheus metrics on this address at /metrics; port 0 picks a free port (printed as
    /// `metrics on IP:PORT`).
    #[arg(long, env = "KMSIM_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Raise Instance:QPS:Reminder when an instance's QPS reaches this percentage of its spec.
    #[arg(long, env = "KMSIM_QPS_REMINDER_PERCENT", default_value_t = 90.0)]
    qps_reminder_percent: f64,
    /// `off`: callers are taken at their word (x-kms-access-key-id is recorded as given) and nothing is
    /// refused. `required`: every call must be signed (or made over mutual TLS) and is checked against
    /// policies; needs --admin-key-file.
    #[arg(long, env = "KMSIM_AUTH", default_value = "off", value_parser = parse_auth)]
    auth: AuthMode,
    /// The admin credential, `{"AccessKeyId": "...", "AccessKeySecret": "..."}`: read if the file exists,
    /// otherwise created (mode 0600). The admin is the account root, and the only identity that may use
    /// the simulation and access services when --auth required.
    #[arg(long, env = "KMSIM_ADMIN_KEY_FILE")]
    admin_key_file: Option<PathBuf>,
    /// Serve TLS with this PEM certificate (chain); needs --tls-key.
    #[arg(long, env = "KMSIM_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "KMSIM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates issued by this PEM CA (mutual TLS). A certificate whose subject common name
    /// is an AccessKey or ClientKey id authenticates its calls as that identity.
    #[arg(long, env = "KMSIM_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// The largest request message accepted, in bytes; a larger one is refused before it is decoded, with gRPC
    /// OUT_OF_RANGE naming its size and the limit.
    #[arg(long, env = "KMSIM_MAX_MESSAGE_BYTES", default_value_t = Limits::DEFAULT_MAX_MESSAGE_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(64 * 1024..=64 * 1024 * 1024))]
    max_message_bytes: usize,
    /// The most calls one HTTP/2 connection may have open at once; a client past it waits for one to finish.
    #[arg(long, env = "KMSIM_MAX_CONCURRENT_STREAMS", default_value_t = Limits::DEFAULT_MAX_CONCURRENT_STREAMS,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    max_concurrent_streams: u32,
    /// The most connections held at once; the next waits until one closes.
    #[arg(long, env = "KMSIM_MAX_CONNECTIONS", default_value_t = Limits::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    max_connections: usize,
}

/// `--in-memory` with a data dir asks for two stores. Checked here rather than by clap's `conflicts_with`,
/// whose message names `--data-dir` even when the dir came from `KMSIM_DATA_DIR`, which the user may have
/// forgotten setting.
pub fn check_in_memory(matches: &clap::ArgMatches) -> Result<(), String> {
    if !matches.get_flag("in_memory") {
        return Ok(());
    }
    let dir = || matches.get_one::<PathBuf>("data_dir").map(|d| d.display().to_string()).unwrap_or_default();
    match matches.value_source("data_dir") {
        Some(clap::parser::ValueSource::EnvVariable) => Err(format!(
            "--in-memory conflicts with KMSIM_DATA_DIR={}, set in the environment: unset it to keep the store in \
             memory, or drop --in-memory to use that directory",
            dir()
        )),
        Some(_) => Err(format!(
            "--in-memory conflicts with --data-dir {}: the store is either in memory or in a directory",
            dir()
        )),
        None => Ok(()),
    }
}

fn parse_auth(text: &str) -> Result<AuthMode, String> {
    AuthMode::parse(text).ok_or_else(|| format!("{text:?} is not off or required"))
}

/// --admin-key-file and the --tls-* files, read before the server starts.
fn read_credentials(args: &ServeArgs) -> Result<(Option<Credentials>, Option<TlsFiles>), String> {
    let admin = match &args.admin_key_file {
        Some(path) => {
            let (credentials, created) =
                Credentials::read_or_create_file(path).map_err(|e| format!("--admin-key-file {e}"))?;
            if created {
                tracing::info!(path = %path.display(), access_key_id = %credentials.access_key_id, "admin credential created");
            }
            Some(credentials)
        }
        None => None,
    };
    let read = |flag: &str, path: &PathBuf| std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()));
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert_pem: read("--tls-cert", cert)?,
            key_pem: read("--tls-key", key)?,
            client_ca_pem: args.tls_client_ca.as_ref().map(|ca| read("--tls-client-ca", ca)).transpose()?,
        }),
        _ => None,
    };
    Ok((admin, tls))
}

fn parse_format(text: &str) -> Result<Format, String> {
    Format::parse(text).ok_or_else(|| format!("{text:?} is not native, actiontrail or cloudtrail"))
}

pub async fn run(args: ServeArgs) -> ExitCode {
    let (admin, tls) = match read_credentials(&args) {
        Ok(read) => read,
        Err(e) => {
            print_error(&format!("error: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let seed = match args.seed.as_deref().map(|path| (path, crate::seed::SeedSource::read(path))) {
        None => None,
        Some((_, Ok(seed))) => Some(seed),
        Some((path, Err(e))) => {
            print_error(&format!("error: --seed {}: {e}", path.display()));
            return ExitCode::FAILURE;
        }
    };
    let store = if args.in_memory {
        Location::InMemory
    } else {
        Location::Dir(args.data_dir.unwrap_or_else(super::default_data_dir))
    };
    let config = ServerConfig {
        listen: args.listen,
        region: args.region,
        account_id: args.account_id,
        aws_account_id: args.aws_account_id,
        console: !args.no_console,
        store,
        allow_shared_data_dir: args.allow_shared_data_dir,
        clock_start: args.clock_start,
        event_webhook: args.event_webhook,
        audit_retention_days: (args.audit_retention_days > 0).then_some(args.audit_retention_days),
        event_retention_days: (args.event_retention_days > 0).then_some(args.event_retention_days),
        trails: args
            .audit_file
            .into_iter()
            .map(|path| TrailSpec {
                path,
                format: args.audit_file_format,
                selectors: Selectors {
                    exclude_read_only: args.audit_file_exclude_read_only,
                    exclude_cryptographic: args.audit_file_exclude_cryptographic,
                },
            })
            .collect(),
        metrics_listen: args.metrics_listen,
        qps_reminder_ratio: args.qps_reminder_percent / 100.0,
        auth: args.auth,
        admin,
        tls,
        seed,
        limits: Limits {
            max_message_bytes: args.max_message_bytes,
            max_concurrent_streams: args.max_concurrent_streams,
            max_connections: args.max_connections,
            first_byte_timeout: Limits::FIRST_BYTE_TIMEOUT,
        },
        ..ServerConfig::default()
    };
    tracing::info!(store = ?config.store, "starting kmsim");
    let running = match server::start(config, shutdown_signal()).await {
        Ok(running) => running,
        Err(e) => {
            print_error(&format!("error: {e}"));
            return ExitCode::FAILURE;
        }
    };
    // The lines are for whoever started the server; one that stopped reading is no reason to stop serving.
    let mut announced = print_line(&format!("listening on {}", running.local_addr));
    if let Some(metrics) = running.metrics_addr {
        announced = announced.and_then(|_| print_line(&format!("metrics on {metrics}")));
    }
    if let Err(e) = announced {
        tracing::warn!(error = %e, "could not print the bound addresses on stdout");
    }
    match running.wait().await {
        Ok(()) => {
            tracing::info!("kmsim stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_error(&format!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM. The handlers are installed
/// here, before the server starts and prints its address, not when the future is
/// first polled: a supervisor that signals as soon as it reads the address must
/// get a clean stop, not the default disposition's kill.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            let received = |stream: Option<tokio::signal::unix::Signal>| async move {
                match stream {
                    Some(mut stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = received(interrupt) => tracing::info!("SIGINT: shutting down"),
                () = received(terminate) => tracing::info!("SIGTERM: shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C: shutting down");
        } else {
            std::future::pending::<()>().await;
        }
    }
}
