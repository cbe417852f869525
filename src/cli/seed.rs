//! `kmsim seed …`: apply a YAML seed (fixtures) to a running server, or check one (SimulationService/ApplySeed).

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};

use super::access::read_text;
use super::client::{Connection, Failure};
use crate::proto as pb;
use crate::proto::simulation_service_client::SimulationServiceClient;

#[derive(Debug, Subcommand)]
pub enum SeedCommand {
    /// Create what a seed file describes (keys, aliases, secrets, instances, users, policies, faults) on the
    /// server; items that already exist as described are left unchanged, so applying twice is harmless.
    #[command(after_help = "Examples:\n  kmsim seed apply fixtures.yaml\n  \
                            kmsim seed apply fixtures.yaml --dry-run\n  \
                            printf 'keys:\\n  - id: k1\\n    aliases: [alias/app]\\n' | kmsim seed apply -")]
    Apply {
        /// The seed, YAML; `-` reads stdin.
        file: PathBuf,
        /// Only report what would be created or left unchanged; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check a seed file against the server and report what `apply` would do, changing nothing
    /// (the same as `apply --dry-run`).
    #[command(after_help = "Example:\n  kmsim seed check fixtures.yaml && kmsim seed apply fixtures.yaml")]
    Check {
        /// The seed, YAML; `-` reads stdin.
        file: PathBuf,
    },
    /// Return the server to empty (no keys, aliases, secrets or faults; users, AccessKeys, instances, the clock and
    /// the audit trail stay), or to a seed, in one audited commit: the way to isolate tests without a restart.
    #[command(after_help = "Examples:\n  kmsim seed reset\n  kmsim seed reset fixtures.yaml\n  \
                            kmsim seed reset --server-seed")]
    Reset {
        /// A seed to apply after emptying, YAML; `-` reads stdin.
        file: Option<PathBuf>,
        /// Apply the seed the server was started with (`serve --seed`) after emptying.
        #[arg(long, conflicts_with = "file")]
        server_seed: bool,
    },
}

pub(super) async fn seed(conn: &Connection, command: SeedCommand) -> Result<Value, Failure> {
    let (file, dry_run) = match command {
        SeedCommand::Apply { file, dry_run } => (file, dry_run),
        SeedCommand::Check { file } => (file, true),
        SeedCommand::Reset { file, server_seed } => return reset(conn, file, server_seed).await,
    };
    let seed = read_text(&file)?;
    // The source names the seed in the server's messages and its audit record.
    let source = if file.as_os_str() == "-" { "stdin".to_owned() } else { file.display().to_string() };
    let mut client = SimulationServiceClient::new(conn.channel().await?);
    let request = pb::ApplySeedRequest { seed, source: source.clone(), dry_run };
    let response = client.apply_seed(conn.request(request)).await?.into_inner();
    Ok(applied_json(&source, dry_run, response))
}

async fn reset(conn: &Connection, file: Option<PathBuf>, to_server_seed: bool) -> Result<Value, Failure> {
    let (seed, source) = match &file {
        Some(file) => {
            (read_text(file)?, if file.as_os_str() == "-" { "stdin".to_owned() } else { file.display().to_string() })
        }
        None => (String::new(), String::new()),
    };
    let mut client = SimulationServiceClient::new(conn.channel().await?);
    let request = pb::ResetRequest { to_server_seed, seed, source };
    let response = client.reset(conn.request(request)).await?.into_inner();
    let seeded: Vec<Value> = response
        .seeded
        .iter()
        .map(|item| json!({ "kind": item.kind, "id": item.id, "region": item.region, "action": item.action }))
        .collect();
    Ok(json!({
        "keysDeleted": response.keys_deleted,
        "aliasesDeleted": response.aliases_deleted,
        "secretsDeleted": response.secrets_deleted,
        "seeded": seeded,
    }))
}

fn applied_json(source: &str, dry_run: bool, response: pb::ApplySeedResponse) -> Value {
    let items: Vec<Value> = response
        .items
        .into_iter()
        .map(|i| json!({ "kind": i.kind, "id": i.id, "region": i.region, "action": i.action, "line": i.line }))
        .collect();
    json!({
        "source": source,
        "dryRun": dry_run,
        "created": response.created,
        "unchanged": response.unchanged,
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::{OutputFormat, render};

    #[test]
    fn applied_items_render_as_a_table_under_the_totals() {
        let item = |kind: &str, id: &str, region: &str, action: &str, line| pb::SeedItem {
            kind: kind.into(),
            id: id.into(),
            region: region.into(),
            action: action.into(),
            line,
        };
        let response = pb::ApplySeedResponse {
            items: vec![
                item("key", "k1", "cn-hangzhou", "created", 2),
                item("alias", "alias/app", "cn-hangzhou", "unchanged", 4),
                item("user", "alice", "", "created", 9),
            ],
            created: 2,
            unchanged: 1,
        };
        let value = applied_json("fixtures.yaml", false, response);
        assert_eq!(
            render(&value, OutputFormat::Table),
            "source     fixtures.yaml\ndryRun     false\ncreated    2\nunchanged  1\n\n\
             kind   id         region       action     line\n\
             key    k1         cn-hangzhou  created    2\n\
             alias  alias/app  cn-hangzhou  unchanged  4\n\
             user   alice                   created    9"
        );
        assert_eq!(value["items"][1]["line"], 4);
    }
}
