//! The `kmsim` command line: `serve`, and client subcommands that talk to a
//! running server over gRPC.

mod access;
mod aliases;
mod audit;
mod bench;
mod client;
mod events;
mod generate;
mod instances;
mod output;
mod progress;
mod rpcs;
mod secrets;
mod seed;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use self::output::OutputFormat;
pub use self::rpcs::RPC_COMMANDS;

#[derive(Debug, Parser)]
#[command(
    name = "kmsim",
    version,
    about = "A simulated Key Management Service, modelled on Alibaba Cloud KMS.",
    after_help = "Client commands print a table for people, or stable camelCase JSON with --output json. \
                  --query PATH prints one field of that JSON raw, for scripts. Failures print \
                  `Code (HTTP status): message` on stderr and exit non-zero.\n\n\
                  Examples:\n  kmsim serve --in-memory\n  KEY=$(kmsim key create --query keyId)\n  \
                  kmsim encrypt --key-id \"$KEY\" --plaintext hello --query ciphertextBlob\n  \
                  kmsim key list --query keys.0.keyId"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the kmsim gRPC server.
    #[command(after_help = "Example:\n  kmsim serve --listen 127.0.0.1:9595 --data-dir ./kmsim-data")]
    Serve(serve::ServeArgs),
    /// Load a server over real gRPC and report calls/s and latency percentiles per operation, each beside a
    /// floor (the gRPC health check) measured in the same run (docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// Generate realistic audit data with labelled anomalies: a scenario's tenant simulated through the real
    /// engine and store in simulated time, deterministic for a seed (docs/generator.md).
    Generate(generate::GenerateArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

/// Parses the command line, runs the command, and returns the process exit code.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    if let Some(("serve", serve)) = matches.subcommand()
        && let Err(conflict) = serve::check_in_memory(serve)
    {
        output::print_error(&format!("error: {conflict}"));
        // What clap exits with for a usage error.
        return ExitCode::from(2);
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            output::print_error(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => {
            init_logging("info");
            runtime.block_on(serve::run(args))
        }
        Command::Bench(args) => {
            init_logging("warn");
            runtime.block_on(bench::run(args))
        }
        Command::Generate(args) => {
            init_logging("warn");
            runtime.block_on(generate::run_command(args))
        }
        Command::Client(command) => {
            init_logging("warn");
            runtime.block_on(command.run())
        }
    }
}

/// Logs go to stderr, so stdout stays clean for output and for `listening on`.
fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}

/// `$KMSIM_DATA_DIR` is handled by clap; after it, the platform's data directory.
fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("kmsim");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/kmsim");
    }
    PathBuf::from("kmsim-data")
}

/// Parses an RFC 3339 instant such as `2025-01-01T00:00:00Z`.
pub fn parse_instant(text: &str) -> Result<crate::clock::SimTime, String> {
    crate::clock::SimTime::parse_rfc3339(text)
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 instant such as 2025-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
