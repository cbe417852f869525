//! The audit trail as its readers see it: listing records, searching them in
//! the Simple Log Service syntax, exporting and tailing them in a chosen
//! format, the AccessKey report, the key that signs the trail and its
//! verification, and the trails (`--audit-file` mirrors) with their event
//! selectors.

use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, ReceiverStream};

use super::{Missed, Stream, operation};
use crate::audit::chain::{self, Verified, Violation};
use crate::audit::formats::{Format, cloudtrail_file, render, render_text};
use crate::audit::report::{ServiceUsage, access_key_usage};
use crate::audit::selection::Selection;
use crate::audit::trail::{Selectors, Trail};
use crate::audit::{AuditFilter, AuditRecord, UserIdentity};
use crate::engine::{ErrorCode, KmsError, KmsResult, Outcome};
use crate::kernel::reads::Order;
use crate::kernel::{AfterCommit, App, Names, Ran};

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;
const DEFAULT_RECORDS_PER_CHUNK: usize = 1000;

/// A page of a token-paged listing, and the token that reads on from it
/// (`None` on the last page).
pub struct TokenPage<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// A record, with its text in the format the reader asked for.
pub struct Rendered {
    pub record: AuditRecord,
    pub text: String,
}

impl Rendered {
    fn new(record: AuditRecord, format: Format) -> Rendered {
        let text = render_text(&record, format);
        Rendered { record, text }
    }
}

/// One chunk of an export: whole lines (or, for CloudTrail, a whole file).
pub struct ExportChunk {
    pub data: Vec<u8>,
    pub records: u64,
    /// From 1, oldest first.
    pub chunk: u64,
}

/// What an AccessKey was used for.
pub struct AccessKeyUsage {
    pub access_key_id: String,
    /// Most recently used first.
    pub services: Vec<ServiceUsage>,
    /// Who the key belongs to, as its latest authenticated record shows it.
    pub owner: Option<UserIdentity>,
    pub failed_calls: u64,
    /// Of the failed calls, those authentication or permissions refused.
    pub refused_calls: u64,
}

operation! {
    /// Records newest first.
    ListAuditEvents = LIST_AUDIT_EVENTS -> TokenPage<AuditRecord> {
        key_id: String = "KeyId",
        event_name: String = "EventName",
        error_code: String = "ErrorCode",
        page_size: i32 = "PageSize",
        page_token: String = "PageToken",
    }
    names(_) { Names::none() }
    run(op, app, _) {
        let ListAuditEvents { key_id, event_name, error_code, page_size, page_token } = op;
        let limit = token_page_size(page_size)?;
        let before = page_token_seq(&page_token)?;
        let filter = AuditFilter { key_id, event_name, error_code };
        let page = app.list_audit(filter, limit, before).await?;
        Outcome::read(TokenPage { items: page.records, next_page_token: page.next_before.map(|seq| seq.to_string()) })
    }
}

operation! {
    /// The records a query selects, newest first, each rendered in the format asked for.
    QueryAuditEvents = QUERY_AUDIT_EVENTS -> TokenPage<Rendered> {
        query: String = "Query",
        start_time: String = "StartTime",
        end_time: String = "EndTime",
        page_size: i32 = "PageSize",
        page_token: String = "PageToken",
        format: String = "Format",
    }
    names(_) { Names::none() }
    run(op, app, _) {
        let format = format(&op.format)?;
        let selection = Arc::new(Selection::new(&op.query, &op.start_time, &op.end_time)?);
        let (from, limit) = (page_token_seq(&op.page_token)?, token_page_size(op.page_size)?);
        let page = app.search_audit(selection, Order::NewestFirst, (from, None), limit).await?;
        Outcome::read(TokenPage {
            items: page.records.into_iter().map(|record| Rendered::new(record, format)).collect(),
            next_page_token: page.next_before.map(|seq| seq.to_string()),
        })
    }
}

operation! {
    /// The records a query selects, oldest first, in chunks, as they stood
    /// when the export began.
    ExportAuditEvents = EXPORT_AUDIT_EVENTS -> Stream<KmsResult<ExportChunk>> {
        query: String = "Query",
        start_time: String = "StartTime",
        end_time: String = "EndTime",
        format: String = "Format",
        records_per_chunk: i32 = "RecordsPerChunk",
    }
    names(_) { Names::none() }
    run(op, app, _) {
        let format = format(&op.format)?;
        let selection = Arc::new(Selection::new(&op.query, &op.start_time, &op.end_time)?);
        let per_chunk = match op.records_per_chunk {
            0 => DEFAULT_RECORDS_PER_CHUNK,
            n @ 1..=10_000 => n as usize,
            _ => return Err(KmsError::invalid_because("RecordsPerChunk", "It must be between 1 and 10000.")),
        };
        // The export covers what was committed before it began (never itself), all of it signed: it reads
        // through the head the digest covered, not the head after it, which a commit may already have moved.
        let through = app.sign_audit_digest().await?;
        let (chunks, stream) = mpsc::channel(2);
        tokio::spawn(export(app, selection, format, (per_chunk, through), chunks));
        Outcome::read(Box::pin(ReceiverStream::new(stream)) as Stream<KmsResult<ExportChunk>>)
    }
}

operation! {
    /// Every record the query selects from now on, as it commits.
    TailAuditEvents = TAIL_AUDIT_EVENTS -> Stream<Result<Rendered, Missed>> {
        query: String = "Query",
        format: String = "Format",
    }
    names(_) { Names::none() }
    run(op, app, _) {
        let format = format(&op.format)?;
        let selection = Selection::new(&op.query, "", "")?;
        // Subscribed before the stream opens: every record committed after the answer is seen.
        let live = BroadcastStream::new(app.audit_tail.subscribe());
        let stream = live.filter_map(move |received| match received {
            Ok(record) => selection.matches(&record).then(|| Ok(Rendered::new((*record).clone(), format))),
            Err(BroadcastStreamRecvError::Lagged(missed)) => Some(Err(Missed(missed))),
        });
        Outcome::read(Box::pin(stream) as Stream<Result<Rendered, Missed>>)
    }
}

operation! {
    GetAccessKeyUsage = GET_ACCESS_KEY_USAGE -> AccessKeyUsage {
        access_key_id: String = "AccessKeyId",
    }
    names(_) { Names::none() }
    run(op, app, _) {
        if op.access_key_id.is_empty() {
            return Err(KmsError::missing("AccessKeyId"));
        }
        let mut records = app.audit_by_access_key(op.access_key_id.clone()).await?;
        // The calls a service made on the caller's behalf are part of the caller's own call.
        records.retain(|r| r.invoked_by.is_empty());
        let services = access_key_usage(&records);
        // The latest record whose identity was established names the owner; refused calls only claim it.
        let owner = records.iter().filter(|r| !r.user_identity.user_name.is_empty()).max_by_key(|r| r.event_time);
        let failed = records.iter().filter(|r| !r.error_code.is_empty());
        let refused_calls = failed.clone().filter(|r| is_access_refusal(&r.error_code)).count() as u64;
        Outcome::read(AccessKeyUsage {
            access_key_id: op.access_key_id,
            services,
            owner: owner.map(|r| r.user_identity.clone()),
            failed_calls: failed.count() as u64,
            refused_calls,
        })
    }
}

operation! {
    /// The Ed25519 key the trail's digests are signed with.
    GetAuditPublicKey = GET_AUDIT_PUBLIC_KEY -> VerifyingKey {}
    names(_) { Names::none() }
    run(_, app, _) { Outcome::read(app.audit_public_key()) }
}

operation! {
    /// The trails, each with the selectors in force.
    ListTrails = LIST_TRAILS -> Vec<(Arc<Trail>, Selectors)> {}
    names(_) { Names::none() }
    run(_, app, _) { Outcome::read(app.trails.all().iter().map(|t| (t.clone(), t.selectors())).collect()) }
}

operation! {
    /// The trail with its new selectors. Like every change, they take effect
    /// once the call's record is committed.
    PutEventSelectors = PUT_EVENT_SELECTORS -> (Arc<Trail>, Selectors) {
        trail_name: String = "TrailName",
        exclude_read_only_events: bool = "ExcludeReadOnlyEvents",
        exclude_cryptographic_events: bool = "ExcludeCryptographicEvents",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        if op.trail_name.is_empty() {
            return Err(KmsError::missing("TrailName"));
        }
        let trail = app.trails.find(&op.trail_name).ok_or(ErrorCode::ResourceNotFound)?.clone();
        let selectors = Selectors {
            exclude_read_only: op.exclude_read_only_events,
            exclude_cryptographic: op.exclude_cryptographic_events,
        };
        cx.trail.response_element("TrailName", trail.name.clone());
        let selecting = AfterCommit::SelectEvents { trail: trail.clone(), selectors };
        Ran::from(Outcome::read((trail, selectors))).then(selecting)
    }
}

/// A digest as a client kept it (hex, as verification printed it), checked when the operation runs.
#[derive(Debug, Clone, Default)]
pub struct KeptDigest {
    pub seq: i64,
    pub time_ms: i64,
    pub link: String,
    pub signature: String,
}

impl KeptDigest {
    fn parse(&self) -> KmsResult<chain::Digest> {
        match (chain::unhex::<32>(&self.link), chain::unhex::<64>(&self.signature)) {
            (Some(link), Some(signature)) => {
                Ok(chain::Digest { seq: self.seq, time_ms: self.time_ms, link, signature })
            }
            _ => Err(KmsError::invalid_because(
                "LastDigest",
                "Its link must be 64 hex digits and its signature 128, as verification printed them.",
            )),
        }
    }
}

operation! {
    /// The whole trail checked against its chain and signed digests: what
    /// it covered, or the first thing wrong.
    VerifyAuditTrail = VERIFY_AUDIT_TRAIL -> Result<Verified, Violation> {
        /// A digest kept outside the server from an earlier verification: the
        /// trail must still reach it and agree with it.
        last_digest: Option<KeptDigest>,
    }
    names(_) { Names::none() }
    run(op, app, _) {
        let kept = op.last_digest.as_ref().map(KeptDigest::parse).transpose()?;
        Outcome::read(app.verify_audit(kept).await?)
    }
}

/// The page size of token-paged listings: 1 to 1000, 0 for the default of 100.
pub(super) fn token_page_size(page_size: i32) -> KmsResult<usize> {
    match usize::try_from(page_size) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) if n <= MAX_PAGE_SIZE => Ok(n),
        _ => Err(KmsError::invalid_because("PageSize", "It must be between 1 and 1000.")),
    }
}

/// The sequence number a page token reads on below.
fn page_token_seq(token: &str) -> KmsResult<Option<i64>> {
    match token {
        "" => Ok(None),
        token => token.parse().map(Some).map_err(|_| KmsError::invalid("PageToken")),
    }
}

fn format(text: &str) -> KmsResult<Format> {
    Format::parse(text)
        .ok_or_else(|| KmsError::invalid_because("Format", "It must be native, actiontrail or cloudtrail."))
}

/// Whether a failure was authentication or authorisation refusing the caller.
fn is_access_refusal(code: &str) -> bool {
    use crate::engine::ErrorCode as C;
    [C::AccessKeyNotFound, C::SignatureNotMatch, C::RequestTimeTooSkewed, C::AccessKeyForbidden, C::NoPermission]
        .iter()
        .any(|c| c.as_str() == code)
}

/// Streams the selection oldest first, one chunk per page, until it is done or the reader hangs up.
/// Native exports also carry what an outside verifier needs: a header line with
/// the public key and the link the first record follows, each record's own
/// link under `auditChain`, and a trailer line with the signed digests.
async fn export(
    app: Arc<App>,
    selection: Arc<Selection>,
    format: Format,
    (per_chunk, through): (usize, i64),
    chunks: mpsc::Sender<KmsResult<ExportChunk>>,
) {
    let mut from = None;
    let mut span: Option<(i64, i64)> = None;
    let mut chunk = 0;
    loop {
        chunk += 1;
        let page = match app.search_audit(selection.clone(), Order::OldestFirst, (from, Some(through)), per_chunk).await
        {
            Ok(page) => page,
            Err(e) => {
                let _ = chunks.send(Err(e)).await;
                return;
            }
        };
        if page.records.is_empty() && chunk > 1 {
            break;
        }
        let mut data = Vec::new();
        if let (Format::Native, None, Some(&(first, _))) = (format, span, page.links.first()) {
            match export_header(&app, first).await {
                Ok(header) => data.extend(format!("{header}\n").into_bytes()),
                Err(e) => {
                    let _ = chunks.send(Err(e)).await;
                    return;
                }
            }
        }
        if let (Some(&(first, _)), Some(&(last, _))) = (page.links.first(), page.links.last()) {
            span = Some((span.map_or(first, |(start, _)| start), last));
        }
        let records = page.records.len() as u64;
        match format {
            Format::CloudTrail => {
                let rendered: Vec<Value> = page.records.iter().map(|r| render(r, format)).collect();
                data = cloudtrail_file(&rendered).to_string().into_bytes();
            }
            Format::Native | Format::ActionTrail => {
                for (record, (seq, link)) in page.records.iter().zip(&page.links) {
                    let mut line = render(record, format);
                    if let (Format::Native, Value::Object(fields)) = (format, &mut line) {
                        fields.insert("auditChain".into(), json!({ "seq": seq, "link": chain::hex(link) }));
                    }
                    data.extend(format!("{line}\n").into_bytes());
                }
            }
        }
        let sent = chunks.send(Ok(ExportChunk { data, records, chunk })).await;
        match (sent, page.next_before) {
            (Err(_), _) => return,
            (Ok(()), Some(seq)) => from = Some(seq),
            (Ok(()), None) => break,
        }
    }
    if let (Format::Native, Some((first, last))) = (format, span) {
        let trailer = app.audit_chain_context(first, last).await.map(|(_, digests)| ExportChunk {
            data: format!("{}\n", json!({ "kmsimAuditDigests": digests })).into_bytes(),
            records: 0,
            chunk: chunk + 1,
        });
        let _ = chunks.send(trailer).await;
    }
}

/// The first line of a native export: how to check the records that follow.
async fn export_header(app: &App, first_seq: i64) -> KmsResult<Value> {
    let ((link, seq), _) = app.audit_chain_context(first_seq, first_seq).await?;
    Ok(json!({ "kmsimAuditExport": {
        "version": 1,
        "algorithm": "Ed25519",
        "publicKey": chain::hex(app.audit_public_key().as_bytes()),
        "anchor": { "seq": seq, "link": chain::hex(&link) },
    }}))
}
