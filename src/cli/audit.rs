//! `kmsim audit …`: listing, searching, tailing and exporting the audit trail,
//! and the AccessKey usage report.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};
use tokio_stream::StreamExt;

use super::client::{Connection, Failure};
use super::output::{self, OutputFormat, Stdout};
use super::progress::{Progress, REDRAW_EVERY};
use crate::audit::chain::{self, Verified, Violation};
use crate::proto as pb;
use crate::proto::audit_service_client::AuditServiceClient;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit records, newest first, by key, event name or error code.
    #[command(after_help = "Example:\n  kmsim audit list --error-code Rejected.Disabled")]
    List {
        #[arg(long, default_value = "")]
        key_id: String,
        #[arg(long, default_value = "")]
        event_name: String,
        #[arg(long, default_value = "")]
        error_code: String,
        /// Records per page, 1 to 1000.
        #[arg(long, default_value_t = 20)]
        page_size: i32,
        /// Continue from a previous page: the nextPageToken it printed (there is none after the last page).
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// Search records with the Simple Log Service / ActionTrail query syntax, newest first; says how many matched.
    /// Only the search part of SLS is supported: an analytic statement after `|` is refused.
    #[command(after_help = "Examples:\n  \
        kmsim audit query '* AND (event.serviceName: \"Kms\") AND (event.errorCode:\"Rejected.Disabled\")'\n  \
        kmsim audit query 'event.userIdentity.accessKeyId: * and not eventName: Decrypt' --format cloudtrail --output json\n  \
        kmsim audit query 'latencyUs > 1000' --start-time 2026-11-01T00:00:00Z")]
    Query {
        /// The query; empty or `*` for everything.
        #[arg(default_value = "")]
        query: String,
        #[command(flatten)]
        selection: SelectionArgs,
        /// Records per page, 1 to 1000.
        #[arg(long, default_value_t = 20)]
        page_size: i32,
        /// Continue from a previous page: the nextPageToken it printed (there is none after the last page).
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// Print matching records as they commit: a row of the main fields each, or with --output json one document
    /// per line, in --format.
    #[command(after_help = "Examples:\n  kmsim audit tail 'outcome: Failure'\n  \
                            kmsim audit tail 'outcome: Failure' --format actiontrail --output json")]
    Tail {
        #[arg(default_value = "")]
        query: String,
        /// The format of the --output json lines: native, actiontrail or cloudtrail.
        #[arg(long, default_value = "native")]
        format: String,
        /// Stop after this many records; default: run until interrupted.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Export matching records, oldest first: JSON lines (native, actiontrail), or CloudTrail
    /// `{"Records":[…]}` files.
    #[command(after_help = "Examples:\n  kmsim audit export --format actiontrail > trail.jsonl\n  \
                            kmsim audit export 'event.eventRW: Write' --format cloudtrail --out-dir ./cloudtrail")]
    Export {
        #[arg(default_value = "")]
        query: String,
        #[command(flatten)]
        selection: SelectionArgs,
        /// Records per CloudTrail file (or per write for JSON lines).
        #[arg(long, default_value_t = 1000)]
        records_per_file: i32,
        /// Write CloudTrail files here (one per chunk); JSON lines go to stdout unless --out-file is given.
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Write JSON lines to this file instead of stdout.
        #[arg(long, conflicts_with = "out_dir")]
        out_file: Option<PathBuf>,
    },
    /// Check the trail's hash chain, signed digests and indexed columns: of the server, of a data directory
    /// (offline), or of a native export file. Names the first record that was changed, removed, inserted or moved;
    /// reports the records covered, the newest signed digest (`lastDigest`) and the records after it. Keep the
    /// public key and `lastDigest` outside the data directory and pass them back: the signing key is inside it.
    #[command(after_help = "Examples:\n  kmsim audit verify\n  kmsim audit verify --data-dir ~/.local/share/kmsim\n  \
                            kmsim audit export --out-file trail.jsonl && kmsim audit verify --file trail.jsonl \\\n    \
                            --public-key $(kmsim audit public-key --output json | jq -r .publicKeyHex)\n  \
                            kmsim audit verify --data-dir DIR --query lastDigest > kept-digest.json\n  \
                            kmsim audit verify --data-dir DIR --public-key HEX --last-digest kept-digest.json")]
    Verify {
        /// A kmsim data directory to check without a server (stop the server first, or accept a moving target).
        #[arg(long, conflicts_with = "file")]
        data_dir: Option<PathBuf>,
        /// A native export (`kmsim audit export --format native`).
        #[arg(long)]
        file: Option<PathBuf>,
        /// The Ed25519 public key (hex) to trust; default: the one the data directory or file carries.
        #[arg(long)]
        public_key: Option<String>,
        /// A digest kept from an earlier verification (its `lastDigest`): JSON, or a file holding it. The trail
        /// must still reach it and agree with it, which holds even against someone with the signing key.
        #[arg(long)]
        last_digest: Option<String>,
    },
    /// Print the Ed25519 public key that verifies the trail's signed digests.
    #[command(after_help = "Example:\n  kmsim audit public-key")]
    PublicKey,
    /// List the trails (the server's --audit-file mirrors) and what each one leaves out.
    #[command(after_help = "Example:\n  kmsim audit trails")]
    Trails,
    /// Choose what a trail mirrors (PutEventSelectors): every record, or without read-only and/or cryptographic
    /// ones. The flags given replace the trail's selectors; a flag left out includes those records again.
    #[command(after_help = "Examples:\n  kmsim audit event-selectors trail-1 --exclude-read-only-events\n  \
                            kmsim audit event-selectors trail-1   # mirror everything again")]
    EventSelectors {
        /// The trail: trail-1, trail-2, … in the order of the server's --audit-file.
        trail_name: String,
        /// Leave out records of calls that change nothing (Describe*, List*, Get*).
        #[arg(long)]
        exclude_read_only_events: bool,
        /// Leave out records of cryptographic calls (Encrypt, Decrypt, GenerateDataKey, Sign, …).
        #[arg(long)]
        exclude_cryptographic_events: bool,
    },
    /// What an AccessKey was used for: services, operations, source IPs and resources, with last access times.
    #[command(after_help = "Example:\n  kmsim audit access-key LTAI5tExampleKeyId")]
    AccessKey { access_key_id: String },
}

#[derive(Debug, Clone, clap::Args)]
pub struct SelectionArgs {
    /// RFC 3339.
    #[arg(long, default_value = "")]
    start_time: String,
    /// RFC 3339.
    #[arg(long, default_value = "")]
    end_time: String,
    /// native (default), actiontrail or cloudtrail.
    #[arg(long, default_value = "native")]
    format: String,
}

pub async fn audit(conn: &Connection, command: AuditCommand) -> Result<Value, Failure> {
    // Offline verification needs no server.
    if let AuditCommand::Verify { data_dir, file, public_key, last_digest } = command {
        return verify(conn, data_dir, file, public_key, last_digest).await;
    }
    let mut client = AuditServiceClient::new(conn.channel().await?);
    match command {
        AuditCommand::List { key_id, event_name, error_code, page_size, page_token } => {
            let request = pb::ListAuditEventsRequest { key_id, event_name, error_code, page_size, page_token };
            let response = client.list_audit_events(conn.request(request)).await?.into_inner();
            let events: Vec<Value> = response.events.iter().map(summary).collect();
            Ok(output::page(events, response.next_page_token))
        }
        AuditCommand::Query { query, selection, page_size, page_token } => {
            let request = pb::QueryAuditEventsRequest {
                query,
                start_time: selection.start_time,
                end_time: selection.end_time,
                page_size,
                page_token,
                format: selection.format,
            };
            let response = client.query_audit_events(conn.request(request)).await?.into_inner();
            let count = response.events.len();
            // People get the summary columns; scripts get each record in the chosen format.
            Ok(match conn.output {
                OutputFormat::Json => {
                    let events =
                        response.events.iter().map(|r| serde_json::from_str(&r.json).unwrap_or(Value::Null)).collect();
                    let mut page = output::page(events, response.next_page_token);
                    page["count"] = json!(count);
                    page
                }
                OutputFormat::Table => {
                    let events = response.events.iter().filter_map(|r| r.event.as_ref()).map(summary).collect();
                    let footer = matched(count, &response.next_page_token);
                    match count {
                        0 => Value::String(footer),
                        _ => {
                            Value::String(format!("{}\n\n{footer}", output::render(&Value::Array(events), conn.output)))
                        }
                    }
                }
            })
        }
        AuditCommand::Tail { query, format, count } => {
            let request = pb::TailAuditEventsRequest { query, format };
            let mut stream = client.tail_audit_events(conn.request(request)).await?.into_inner();
            let write_failed = |e: std::io::Error| Failure(format!("writing the records: {e}"));
            // A stream cannot size its columns to rows yet to come, so the table's are fixed.
            if conn.output == OutputFormat::Table
                && output::print_line(&tail_row(TAIL_HEADINGS)).map_err(write_failed)? == Stdout::Closed
            {
                return Ok(Value::Null);
            }
            let mut seen = 0;
            while count.is_none_or(|limit| seen < limit) {
                let Some(record) = stream.next().await else { break };
                let record = record?;
                let line = match (conn.output, &record.event) {
                    (OutputFormat::Table, Some(event)) => tail_row(tail_cells(event)),
                    _ => record.json,
                };
                if output::print_line(&line).map_err(write_failed)? == Stdout::Closed {
                    break;
                }
                seen += 1;
            }
            Ok(Value::Null)
        }
        AuditCommand::Export { query, selection, records_per_file, out_dir, out_file } => {
            let request = pb::ExportAuditEventsRequest {
                query,
                start_time: selection.start_time,
                end_time: selection.end_time,
                format: selection.format.clone(),
                records_per_chunk: records_per_file,
            };
            let mut stream = client.export_audit_events(conn.request(request)).await?.into_inner();
            // Lines going to this very terminal show their own progress, and a progress line would garble them.
            let to_terminal = out_dir.is_none() && out_file.is_none() && std::io::stdout().is_terminal();
            let mut sink = Sink::open(out_dir, out_file, &selection.format)?;
            let mut progress = Progress::on_stderr("exported", !to_terminal);
            let mut records = 0;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                records += chunk.records;
                if sink.write(&chunk)? == Stdout::Closed {
                    // Whoever read the lines has what they wanted (`| head`).
                    return Ok(Value::Null);
                }
                progress.update(records);
            }
            let finished = sink.finish(records);
            progress.finish(records);
            finished
        }
        AuditCommand::Verify { data_dir, file, public_key, last_digest } => {
            verify(conn, data_dir, file, public_key, last_digest).await
        }
        AuditCommand::Trails => {
            let response = client.list_trails(conn.request(pb::ListTrailsRequest {})).await?.into_inner();
            Ok(json!({ "trails": response.trails.into_iter().map(trail_json).collect::<Vec<_>>() }))
        }
        AuditCommand::EventSelectors { trail_name, exclude_read_only_events, exclude_cryptographic_events } => {
            let request =
                pb::PutEventSelectorsRequest { trail_name, exclude_read_only_events, exclude_cryptographic_events };
            Ok(trail_json(client.put_event_selectors(conn.request(request)).await?.into_inner()))
        }
        AuditCommand::PublicKey => {
            let response =
                client.get_audit_public_key(conn.request(pb::GetAuditPublicKeyRequest {})).await?.into_inner();
            Ok(json!({
                "algorithm": response.algorithm,
                "publicKeyHex": response.public_key_hex,
                "publicKeyPem": response.public_key_pem,
            }))
        }
        AuditCommand::AccessKey { access_key_id } => {
            let request = pb::GetAccessKeyUsageRequest { access_key_id };
            let response = client.get_access_key_usage(conn.request(request)).await?.into_inner();
            let items = |items: Vec<pb::UsageItem>| -> Vec<Value> {
                items
                    .into_iter()
                    .map(|i| json!({ "name": i.name, "lastAccessTime": i.last_access_time, "count": i.count }))
                    .collect()
            };
            let services: Vec<Value> = response
                .services
                .into_iter()
                .map(|s| {
                    json!({
                        "serviceName": s.service_name,
                        "lastAccessTime": s.last_access_time,
                        "eventNames": items(s.event_names),
                        "sourceIpAddresses": items(s.source_ip_addresses),
                        "resources": items(s.resources),
                    })
                })
                .collect();
            let owner = response
                .user_identity
                .map(|id| json!({ "type": id.r#type, "principalId": id.principal_id, "userName": id.user_name }));
            Ok(json!({
                "accessKeyId": response.access_key_id,
                "userIdentity": owner,
                "failedCalls": response.failed_calls,
                "refusedCalls": response.refused_calls,
                "services": services,
            }))
        }
    }
}

async fn verify(
    conn: &Connection,
    data_dir: Option<PathBuf>,
    file: Option<PathBuf>,
    public_key: Option<String>,
    last_digest: Option<String>,
) -> Result<Value, Failure> {
    let pinned = match public_key {
        None => None,
        Some(hex) => Some(
            chain::unhex::<32>(hex.trim())
                .and_then(|bytes| ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok())
                .ok_or_else(|| Failure("--public-key must be 64 hex digits of an Ed25519 key".into()))?,
        ),
    };
    let kept = last_digest.as_deref().map(kept_digest).transpose()?;
    let kept_seq = kept.as_ref().map(|digest| digest.seq);
    // Neither the server nor the offline checks report as they go, so the ticker shows time, not records.
    let mut progress = Progress::on_stderr("verifying the audit trail", true);
    let outcome = match (data_dir, file) {
        (Some(dir), _) => {
            let checked = tokio::task::spawn_blocking(move || crate::store::verify_dir(&dir, pinned, kept));
            ticking(&mut progress, checked)
                .await
                .map_err(|e| Failure(e.to_string()))?
                .map_err(|e| Failure(e.to_string()))?
        }
        (None, Some(path)) => {
            let checked = tokio::task::spawn_blocking(move || {
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                chain::verify_export(&text, pinned, kept).map_err(|e| format!("{}: {e}", path.display()))
            });
            ticking(&mut progress, checked).await.map_err(|e| Failure(e.to_string()))?.map_err(Failure)?
        }
        (None, None) => {
            let mut client = AuditServiceClient::new(conn.channel().await?);
            let request = pb::VerifyAuditTrailRequest { last_digest: kept.as_ref().map(audit_digest) };
            let checked = client.verify_audit_trail(conn.request(request));
            let r = ticking(&mut progress, checked).await?.into_inner();
            if r.valid {
                let last_digest = match r.last_digest {
                    None => None,
                    Some(digest) => Some(
                        digest_of(digest).ok_or_else(|| Failure("the server answered a malformed digest".into()))?,
                    ),
                };
                Ok(Verified {
                    records: r.records,
                    digests: r.digests,
                    unsigned_tail: r.unsigned_tail,
                    first_seq: r.first_seq,
                    last_seq: r.last_seq,
                    last_digest,
                    stopped_cleanly: None,
                })
            } else {
                Err(Violation { seq: r.first_bad_seq, event_id: r.first_bad_event_id, reason: r.reason })
            }
        }
    };
    match outcome {
        Ok(v) => Ok(verified_json(&v, kept_seq)),
        Err(violation) => Err(Failure(format!("tampered: {violation}"))),
    }
}

/// What a verification covered: the records, the signed range (up to `signedThrough`, the newest digest's seq,
/// which `lastDigest` gives in full for keeping), and the unsigned tail after it.
fn verified_json(v: &Verified, kept_seq: Option<i64>) -> Value {
    let mut report = json!({
        "valid": true,
        "records": v.records,
        "firstSeq": v.first_seq,
        "lastSeq": v.last_seq,
        "digests": v.digests,
        "signedThrough": v.last_digest.as_ref().map_or(0, |digest| digest.seq),
        "unsignedTail": v.unsigned_tail,
    });
    if let Value::Object(fields) = &mut report {
        if let Some(stopped_cleanly) = v.stopped_cleanly {
            fields.insert("stoppedCleanly".into(), json!(stopped_cleanly));
        }
        if let Some(seq) = kept_seq {
            fields.insert("matchesKeptDigest".into(), json!(seq));
        }
        if let Some(digest) = &v.last_digest {
            fields.insert("lastDigest".into(), json!(digest));
        }
    }
    report
}

/// `--last-digest`: the JSON a verification printed as `lastDigest`, given as is or in a file.
fn kept_digest(given: &str) -> Result<chain::Digest, Failure> {
    let text = if given.trim_start().starts_with('{') {
        given.to_owned()
    } else {
        std::fs::read_to_string(given).map_err(|e| Failure(format!("--last-digest {given}: {e}")))?
    };
    serde_json::from_str(&text).map_err(|e| {
        Failure(format!("--last-digest must be a digest as verify printed it (seq, timeMs, link, signature): {e}"))
    })
}

fn audit_digest(digest: &chain::Digest) -> pb::AuditDigest {
    pb::AuditDigest {
        seq: digest.seq,
        time_ms: digest.time_ms,
        link: chain::hex(&digest.link),
        signature: chain::hex(&digest.signature),
    }
}

fn digest_of(digest: pb::AuditDigest) -> Option<chain::Digest> {
    Some(chain::Digest {
        seq: digest.seq,
        time_ms: digest.time_ms,
        link: chain::unhex(&digest.link)?,
        signature: chain::unhex(&digest.signature)?,
    })
}

/// Awaits `work`, ticking `progress` meanwhile, and erases the progress line when it is done.
async fn ticking<T>(progress: &mut Progress<std::io::Stderr>, work: impl Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    let mut ticks = tokio::time::interval(REDRAW_EVERY);
    loop {
        tokio::select! {
            done = &mut work => {
                progress.clear();
                return done;
            }
            _ = ticks.tick() => progress.tick(),
        }
    }
}

fn trail_json(t: pb::TrailInfo) -> Value {
    json!({
        "name": t.name,
        "path": t.path,
        "format": t.format,
        "excludeReadOnlyEvents": t.exclude_read_only_events,
        "excludeCryptographicEvents": t.exclude_cryptographic_events,
    })
}

/// How many records a query page holds, and whether more match beyond it.
fn matched(count: usize, next_page_token: &str) -> String {
    let records = if count == 1 { "record" } else { "records" };
    match next_page_token {
        "" => format!("{count} matching {records}."),
        token => format!("{count} matching {records} shown; more match: --page-token {token}"),
    }
}

const TAIL_HEADINGS: [&str; 7] = ["eventTime", "eventName", "outcome", "errorCode", "keyId", "clientIp", "requestId"];

/// A record's cells in `audit tail`'s table, `-` where a field is empty so that every row has every column.
fn tail_cells(e: &pb::AuditEvent) -> [&str; 7] {
    let cells = [&e.event_time, &e.event_name, &e.outcome, &e.error_code, &e.key_id, &e.client_ip, &e.request_id];
    cells.map(|cell| if cell.is_empty() { "-" } else { cell.as_str() })
}

/// One line of `audit tail`'s table, in columns wide enough for the usual values.
fn tail_row(cells: [&str; 7]) -> String {
    const WIDTHS: [usize; 7] = [24, 20, 7, 24, 36, 15, 0];
    let mut line = String::new();
    for (cell, width) in cells.into_iter().zip(WIDTHS) {
        line.push_str(&format!("{cell:<width$}  "));
    }
    line.trim_end().to_owned()
}

fn summary(e: &pb::AuditEvent) -> Value {
    json!({
        "eventTime": e.event_time,
        "eventName": e.event_name,
        "action": e.action,
        "outcome": e.outcome,
        "errorCode": e.error_code,
        "keyId": e.key_id,
        "clientIp": e.client_ip,
        "userAgent": e.user_agent,
        "accessKeyId": e.access_key_id,
        "requestId": e.request_id,
    })
}

/// Where an export goes: CloudTrail files in a directory, or JSON lines to a file or stdout.
enum Sink {
    Dir { dir: PathBuf, files: Vec<String> },
    Lines(Box<dyn Write>),
}

impl Sink {
    fn open(out_dir: Option<PathBuf>, out_file: Option<PathBuf>, format: &str) -> Result<Sink, Failure> {
        let io = |path: &PathBuf, e: std::io::Error| Failure(format!("{}: {e}", path.display()));
        match (out_dir, out_file) {
            (Some(dir), _) => {
                std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
                Ok(Sink::Dir { dir, files: Vec::new() })
            }
            (None, Some(path)) => Ok(Sink::Lines(Box::new(std::fs::File::create(&path).map_err(|e| io(&path, e))?))),
            (None, None) if format.eq_ignore_ascii_case("cloudtrail") => {
                Err(Failure("CloudTrail exports are files: give --out-dir DIR".into()))
            }
            (None, None) => Ok(Sink::Lines(Box::new(std::io::stdout().lock()))),
        }
    }

    /// [`Stdout::Closed`] when the lines went to stdout and its reader has gone.
    fn write(&mut self, chunk: &pb::ExportChunk) -> Result<Stdout, Failure> {
        match self {
            Sink::Dir { dir, files } => {
                let name = format!("kmsim_CloudTrail_{:06}.json", chunk.chunk);
                let path = dir.join(&name);
                std::fs::write(&path, &chunk.data).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
                files.push(name);
                Ok(Stdout::Written)
            }
            Sink::Lines(out) => output::stdout_result(out.write_all(&chunk.data))
                .map_err(|e| Failure(format!("writing the export: {e}"))),
        }
    }

    /// Files report what they wrote; lines on stdout are the output themselves.
    fn finish(self, records: u64) -> Result<Value, Failure> {
        match self {
            Sink::Dir { dir, files } => {
                Ok(json!({ "records": records, "dir": dir.display().to_string(), "files": files }))
            }
            Sink::Lines(mut out) => {
                output::stdout_result(out.flush()).map_err(|e| Failure(format!("writing the export: {e}")))?;
                Ok(Value::Null)
            }
        }
    }
}
