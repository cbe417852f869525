//! `kmsim serve`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::audit::formats::Format;
use crate::audit::trail::{Selectors, TrailSpec};
use crate::clock::SimTime;
use crate::server::{self, DEFAULT_ACCOUNT_ID, DEFAULT_AUDIT_RETENTION_DAYS, DEFAULT_REGION, ServerConfig};
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
    /// Directory of the durable store [default: $XDG_DATA_HOME/kmsim or ~/.local/share/kmsim].
    #[arg(long, env = "KMSIM_DATA_DIR", conflicts_with = "in_memory")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory; nothing is written to disk.
    #[arg(long)]
    in_memory: bool,
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
}

fn parse_format(text: &str) -> Result<Format, String> {
    Format::parse(text).ok_or_else(|| format!("{text:?} is not native, actiontrail or cloudtrail"))
}

pub async fn run(args: ServeArgs) -> ExitCode {
    let store = if args.in_memory {
        Location::InMemory
    } else {
        Location::Dir(args.data_dir.unwrap_or_else(super::default_data_dir))
    };
    let config = ServerConfig {
        listen: args.listen,
        region: args.region,
        account_id: args.account_id,
        store,
        clock_start: args.clock_start,
        event_webhook: args.event_webhook,
        audit_retention_days: (args.audit_retention_days > 0).then_some(args.audit_retention_days),
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
        ..ServerConfig::default()
    };
    tracing::info!(store = ?config.store, "starting kmsim");
    let running = match server::start(config, shutdown_signal()).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", running.local_addr);
    if let Some(metrics) = running.metrics_addr {
        println!("metrics on {metrics}");
    }
    let _ = std::io::stdout().flush();
    match running.wait().await {
        Ok(()) => {
            tracing::info!("kmsim stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
