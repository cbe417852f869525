//! `kmsim generate`: realistic audit data with labelled anomalies (see
//! [`crate::generate`] and docs/generator.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use super::output::{OutputFormat, emit};
use super::progress::Progress;
use crate::generate::{Options, run, summary_json};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  kmsim generate --out ./audit-data\n  \
                        kmsim generate --scenario busy --duration 7d --seed 42 --out ./busy-week\n  \
                        kmsim generate --scenario ./my-tenant.yaml --duration 90d --out ./q4 --output json")]
pub struct GenerateArgs {
    /// A built-in scenario (`standard`, `busy`) or a scenario YAML file (docs/generator.md).
    #[arg(long, default_value = "standard")]
    scenario: String,
    /// How much simulated time to generate, from the scenario's start: e.g. 30d, 36h.
    #[arg(long, default_value = "30d", value_parser = crate::clock::parse_duration)]
    duration: Duration,
    /// The same scenario, duration and seed give byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A new or empty directory for the store, the exports, the system events and labels.jsonl.
    #[arg(long)]
    out: PathBuf,
    /// Leave out the three JSON-lines exports (`kmsim audit export` can write them later from the store).
    #[arg(long)]
    no_exports: bool,
    /// How to print the summary.
    #[arg(long, value_enum, default_value = "table")]
    output: OutputFormat,
    /// Print one field of the JSON summary raw, e.g. `records`, `recordsPerSecond`.
    #[arg(long = "query", value_name = "PATH")]
    result_query: Option<String>,
}

pub async fn run_command(args: GenerateArgs) -> ExitCode {
    let options = Options {
        scenario: args.scenario,
        duration: args.duration,
        seed: args.seed,
        out: args.out,
        exports: !args.no_exports,
    };
    let mut progress = Progress::on_stderr("generated", true);
    match run(&options, |records, share| progress.update_share(records, share)).await {
        Ok(summary) => {
            progress.finish(summary.records);
            let report = summary_json(&summary, &options.out);
            emit(&report, args.output, args.result_query.as_deref(), table)
        }
        Err(e) => {
            drop(progress);
            super::output::print_error(&format!("generate: {e}"));
            ExitCode::FAILURE
        }
    }
}

fn table(report: &Value) -> String {
    let field = |name: &str| report.get(name).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    let mut text = String::new();
    for name in ["scenario", "start", "end", "out", "records", "failures", "systemEvents"] {
        text.push_str(&format!("{name:<24} {}\n", field(name).unwrap_or_default()));
    }
    let seconds = |name: &str| report.get(name).and_then(Value::as_f64).unwrap_or(0.0);
    text.push_str(&format!(
        "{:<24} {:.2}s ({} records/s through the engine and store)\n",
        "generated in",
        seconds("generateSeconds"),
        field("recordsPerSecond").unwrap_or_default()
    ));
    text.push_str(&format!("{:<24} {:.2}s\n", "exports finished in", seconds("exportSeconds")));
    text.push_str("anomalies\n");
    for anomaly in report.get("anomalies").and_then(Value::as_array).into_iter().flatten() {
        let kind = anomaly.get("kind").and_then(Value::as_str).unwrap_or_default();
        let records = anomaly.get("records").and_then(Value::as_u64).unwrap_or(0);
        text.push_str(&format!("  {kind:<22} {records} records\n"));
    }
    text.trim_end().to_owned()
}
