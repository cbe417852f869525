//! `kmsim.v1.AuditService`: reading the audit trail: listing, searching in the
//! Simple Log Service syntax, exporting, tailing, and the AccessKey report.

use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, ReceiverStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::status::to_status;
use super::{Grpc, Rpc};
use crate::audit::chain;
use crate::audit::formats::{Format, cloudtrail_file, render, render_text};
use crate::audit::report::{UsageItem, access_key_usage};
use crate::audit::selection::Selection;
use crate::audit::trail::{Selectors, Trail};
use crate::audit::{AuditFilter, AuditRecord, UserIdentity};
use crate::engine::{ErrorCode, KmsError, KmsResult, Outcome};
use crate::kernel::OpSpec;
use crate::kernel::reads::Order;
use crate::kernel::{AfterCommit, App, Operation, Ran};
use crate::proto as pb;
use crate::proto::audit_service_server::AuditService;

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;

pub struct AuditApi {
    grpc: Grpc,
}

impl AuditApi {
    pub fn new(grpc: Grpc) -> Self {
        AuditApi { grpc }
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        self.grpc.unary(request, list_audit_events).await
    }

    async fn query_audit_events(
        &self,
        request: Request<pb::QueryAuditEventsRequest>,
    ) -> Result<Response<pb::QueryAuditEventsResponse>, Status> {
        self.grpc.unary(request, query_audit_events).await
    }

    type ExportAuditEventsStream = ExportAuditEventsStream;

    async fn export_audit_events(
        &self,
        request: Request<pb::ExportAuditEventsRequest>,
    ) -> Result<Response<Self::ExportAuditEventsStream>, Status> {
        self.grpc.stream(request, export_audit_events).await
    }

    type TailAuditEventsStream = TailAuditEventsStream;

    async fn tail_audit_events(
        &self,
        request: Request<pb::TailAuditEventsRequest>,
    ) -> Result<Response<Self::TailAuditEventsStream>, Status> {
        self.grpc.stream(request, tail_audit_events).await
    }

    async fn get_access_key_usage(
        &self,
        request: Request<pb::GetAccessKeyUsageRequest>,
    ) -> Result<Response<pb::GetAccessKeyUsageResponse>, Status> {
        self.grpc.unary(request, get_access_key_usage).await
    }

    async fn get_audit_public_key(
        &self,
        request: Request<pb::GetAuditPublicKeyRequest>,
    ) -> Result<Response<pb::GetAuditPublicKeyResponse>, Status> {
        self.grpc.unary(request, get_audit_public_key).await
    }

    async fn list_trails(
        &self,
        request: Request<pb::ListTrailsRequest>,
    ) -> Result<Response<pb::ListTrailsResponse>, Status> {
        self.grpc.unary(request, list_trails).await
    }

    async fn put_event_selectors(
        &self,
        request: Request<pb::PutEventSelectorsRequest>,
    ) -> Result<Response<pb::TrailInfo>, Status> {
        self.grpc.unary(request, put_event_selectors).await
    }

    async fn verify_audit_trail(
        &self,
        request: Request<pb::VerifyAuditTrailRequest>,
    ) -> Result<Response<pb::VerifyAuditTrailResponse>, Status> {
        self.grpc.unary(request, verify_audit_trail).await
    }
}

impl AuditApi {
    async fn verify_trail(app: &App) -> KmsResult<pb::VerifyAuditTrailResponse> {
        let outcome = app.verify_audit().await?;
        Ok(match outcome {
            Ok(verified) => pb::VerifyAuditTrailResponse {
                valid: true,
                records: verified.records,
                digests: verified.digests,
                unsigned_tail: verified.unsigned_tail,
                ..Default::default()
            },
            Err(violation) => pb::VerifyAuditTrailResponse {
                valid: false,
                first_bad_seq: violation.seq,
                first_bad_event_id: violation.event_id,
                reason: violation.reason,
                ..Default::default()
            },
        })
    }
}

type ResultStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;
pub type ExportAuditEventsStream = ResultStream<pb::ExportChunk>;
pub type TailAuditEventsStream = ResultStream<pb::AuditEventResult>;

const DEFAULT_RECORDS_PER_CHUNK: usize = 1000;

/// Streams the selection oldest first, one chunk per page, until it is done or the client hangs up.
/// Native exports also carry what an outside verifier needs: a header line with
/// the public key and the link the first record follows, each record's own
/// link under `auditChain`, and a trailer line with the signed digests.
async fn export(
    app: Arc<App>,
    selection: Arc<Selection>,
    format: Format,
    (per_chunk, through): (usize, i64),
    chunks: mpsc::Sender<Result<pb::ExportChunk, Status>>,
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
                let _ = chunks.send(Err(to_status(&e, ""))).await;
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
                Err(status) => {
                    let _ = chunks.send(Err(status)).await;
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
        let sent = chunks.send(Ok(pb::ExportChunk { data, records, chunk })).await;
        match (sent, page.next_before) {
            (Err(_), _) => return,
            (Ok(()), Some(seq)) => from = Some(seq),
            (Ok(()), None) => break,
        }
    }
    if let (Format::Native, Some((first, last))) = (format, span) {
        let trailer = match app.audit_chain_context(first, last).await {
            Ok((_, digests)) => Ok(pb::ExportChunk {
                data: format!("{}\n", json!({ "kmsimAuditDigests": digests })).into_bytes(),
                records: 0,
                chunk: chunk + 1,
            }),
            Err(e) => Err(to_status(&e, "")),
        };
        let _ = chunks.send(trailer).await;
    }
}

/// The first line of a native export: how to check the records that follow.
async fn export_header(app: &App, first_seq: i64) -> Result<Value, Status> {
    let ((link, seq), _) = app.audit_chain_context(first_seq, first_seq).await.map_err(|e| to_status(&e, ""))?;
    Ok(json!({ "kmsimAuditExport": {
        "version": 1,
        "algorithm": "Ed25519",
        "publicKey": chain::hex(app.audit_public_key().as_bytes()),
        "anchor": { "seq": seq, "link": chain::hex(&link) },
    }}))
}

fn trail_info(trail: &Trail, selectors: Selectors) -> pb::TrailInfo {
    pb::TrailInfo {
        name: trail.name.clone(),
        path: trail.path.display().to_string(),
        format: trail.format.as_str().to_owned(),
        exclude_read_only_events: selectors.exclude_read_only,
        exclude_cryptographic_events: selectors.exclude_cryptographic,
    }
}

fn format(text: &str) -> KmsResult<Format> {
    Format::parse(text)
        .ok_or_else(|| KmsError::invalid_because("Format", "It must be native, actiontrail or cloudtrail."))
}

fn page_token(token: &str) -> KmsResult<Option<i64>> {
    match token {
        "" => Ok(None),
        token => token.parse().map(Some).map_err(|_| KmsError::invalid("PageToken")),
    }
}

fn result(record: AuditRecord, format: Format) -> pb::AuditEventResult {
    let json = render_text(&record, format);
    pb::AuditEventResult { event: Some(audit_event(record)), json }
}

/// The page size of token-paged listings: 1 to 1000, 0 for the default of 100.
pub(super) fn token_page_size(page_size: i32) -> KmsResult<usize> {
    match usize::try_from(page_size) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) if n <= MAX_PAGE_SIZE => Ok(n),
        _ => Err(KmsError::invalid_because("PageSize", "It must be between 1 and 1000.")),
    }
}

pub fn audit_event(r: AuditRecord) -> pb::AuditEvent {
    pb::AuditEvent {
        event_id: r.event_id,
        event_time: r.event_time.to_rfc3339_millis(),
        event_name: r.event_name,
        action: r.action,
        event_rw: r.event_rw,
        event_type: r.event_type,
        service_name: r.service_name,
        region: r.region,
        account_id: r.account_id,
        resource_type: r.resource_type,
        key_id: r.key_id,
        key_arn: r.key_arn,
        key_spec: r.key_spec,
        key_version_id: r.key_version_id,
        outcome: format!("{:?}", r.outcome),
        error_code: r.error_code,
        error_message: r.error_message,
        http_status: i32::from(r.http_status),
        request_bytes: r.request_bytes,
        response_bytes: r.response_bytes,
        plaintext_bytes: r.plaintext_bytes,
        ciphertext_bytes: r.ciphertext_bytes,
        client_ip: r.client_ip,
        client_port: u32::from(r.client_port),
        user_agent: r.user_agent,
        access_key_id: r.access_key_id,
        request_id: r.request_id,
        latency_us: r.latency_us,
        request_parameters: r.request_parameters.to_string(),
        response_elements: r.response_elements.to_string(),
        message_bytes: r.message_bytes,
        signature_bytes: r.signature_bytes,
        mac_bytes: r.mac_bytes,
        user_identity: Some(user_identity(&r.user_identity)),
        secret_name: r.secret_name.clone(),
        secret_arn: r.secret_arn.clone(),
        invoked_by: r.invoked_by.clone(),
        client_request_id: r.client_request_id,
    }
}

fn user_identity(id: &UserIdentity) -> pb::UserIdentity {
    pb::UserIdentity {
        r#type: id.kind.clone(),
        principal_id: id.principal_id.clone(),
        account_id: id.account_id.clone(),
        access_key_id: id.access_key_id.clone(),
        user_name: id.user_name.clone(),
    }
}

/// Whether a failure was authentication or authorisation refusing the caller.
fn is_access_refusal(code: &str) -> bool {
    use crate::engine::ErrorCode as C;
    [C::AccessKeyNotFound, C::SignatureNotMatch, C::RequestTimeTooSkewed, C::AccessKeyForbidden, C::NoPermission]
        .iter()
        .any(|c| c.as_str() == code)
}

/// list_audit_events as a kernel operation.
pub fn list_audit_events(req: pb::ListAuditEventsRequest) -> impl Operation<Output = pb::ListAuditEventsResponse> {
    Rpc::new(&OpSpec::LIST_AUDIT_EVENTS, req, |app, _cx, req| async move {
        let limit = token_page_size(req.page_size)?;
        let before = page_token(&req.page_token)?;
        let filter = AuditFilter { key_id: req.key_id, event_name: req.event_name, error_code: req.error_code };
        let page = app.list_audit(filter, limit, before).await?;
        Ok(Outcome::read(pb::ListAuditEventsResponse {
            events: page.records.into_iter().map(audit_event).collect(),
            next_page_token: page.next_before.map(|seq| seq.to_string()).unwrap_or_default(),
        }))
    })
}

/// query_audit_events as a kernel operation.
pub fn query_audit_events(req: pb::QueryAuditEventsRequest) -> impl Operation<Output = pb::QueryAuditEventsResponse> {
    Rpc::new(&OpSpec::QUERY_AUDIT_EVENTS, req, |app, _cx, req| async move {
        let format = format(&req.format)?;
        let selection = Arc::new(Selection::new(&req.query, &req.start_time, &req.end_time)?);
        let (from, limit) = (page_token(&req.page_token)?, token_page_size(req.page_size)?);
        let page = app.search_audit(selection, Order::NewestFirst, (from, None), limit).await?;
        Ok(Outcome::read(pb::QueryAuditEventsResponse {
            events: page.records.into_iter().map(|r| result(r, format)).collect(),
            next_page_token: page.next_before.map(|seq| seq.to_string()).unwrap_or_default(),
        }))
    })
}

/// put_event_selectors as a kernel operation. Like every change, the new
/// selectors take effect once the call's record is committed.
pub fn put_event_selectors(req: pb::PutEventSelectorsRequest) -> impl Operation<Output = pb::TrailInfo> {
    Rpc::new(&OpSpec::PUT_EVENT_SELECTORS, req, |app, cx, req| async move {
        if req.trail_name.is_empty() {
            return Err(KmsError::missing("TrailName"));
        }
        let trail = app.trails.find(&req.trail_name).ok_or(ErrorCode::ResourceNotFound)?;
        let selectors = Selectors {
            exclude_read_only: req.exclude_read_only_events,
            exclude_cryptographic: req.exclude_cryptographic_events,
        };
        cx.trail.response_element("TrailName", trail.name.clone());
        let selecting = AfterCommit::SelectEvents { trail: trail.clone(), selectors };
        Ok(Ran::from(Outcome::read(trail_info(trail, selectors))).then(selecting))
    })
}

/// get_access_key_usage as a kernel operation.
pub fn get_access_key_usage(
    req: pb::GetAccessKeyUsageRequest,
) -> impl Operation<Output = pb::GetAccessKeyUsageResponse> {
    Rpc::new(&OpSpec::GET_ACCESS_KEY_USAGE, req, |app, _cx, req| async move {
        if req.access_key_id.is_empty() {
            return Err(KmsError::missing("AccessKeyId"));
        }
        let mut records = app.audit_by_access_key(req.access_key_id.clone()).await?;
        // The calls a service made on the caller's behalf are part of the caller's own call.
        records.retain(|r| r.invoked_by.is_empty());
        let item = |i: UsageItem| pb::UsageItem {
            name: i.name,
            last_access_time: i.last_access.to_rfc3339(),
            count: i.count,
            last_event_id: i.last_event_id,
        };
        let services = access_key_usage(&records)
            .into_iter()
            .map(|s| pb::ServiceUsage {
                service_name: s.service_name,
                last_access_time: s.last_access.to_rfc3339(),
                event_names: s.event_names.into_iter().map(item).collect(),
                source_ip_addresses: s.source_ip_addresses.into_iter().map(item).collect(),
                resources: s.resources.into_iter().map(item).collect(),
            })
            .collect();
        // The latest record whose identity was established names the owner; refused calls only claim it.
        let owner = records.iter().filter(|r| !r.user_identity.user_name.is_empty()).max_by_key(|r| r.event_time);
        let failed = records.iter().filter(|r| !r.error_code.is_empty());
        let refused = failed.clone().filter(|r| is_access_refusal(&r.error_code)).count() as u64;
        Ok(Outcome::read(pb::GetAccessKeyUsageResponse {
            access_key_id: req.access_key_id,
            services,
            user_identity: owner.map(|r| user_identity(&r.user_identity)),
            failed_calls: failed.count() as u64,
            refused_calls: refused,
        }))
    })
}

/// get_audit_public_key as a kernel operation.
pub fn get_audit_public_key(
    req: pb::GetAuditPublicKeyRequest,
) -> impl Operation<Output = pb::GetAuditPublicKeyResponse> {
    Rpc::new(&OpSpec::GET_AUDIT_PUBLIC_KEY, req, |app, _cx, _req| async move {
        let key = app.audit_public_key();
        Ok(Outcome::read(pb::GetAuditPublicKeyResponse {
            algorithm: "Ed25519".into(),
            public_key_hex: chain::hex(key.as_bytes()),
            public_key_pem: chain::public_key_pem(&key),
        }))
    })
}

/// list_trails as a kernel operation.
pub fn list_trails(req: pb::ListTrailsRequest) -> impl Operation<Output = pb::ListTrailsResponse> {
    Rpc::new(&OpSpec::LIST_TRAILS, req, |app, _cx, _req| async move {
        let trails = app.trails.all().iter().map(|t| trail_info(t, t.selectors())).collect();
        Ok(Outcome::read(pb::ListTrailsResponse { trails }))
    })
}

/// verify_audit_trail as a kernel operation.
pub fn verify_audit_trail(req: pb::VerifyAuditTrailRequest) -> impl Operation<Output = pb::VerifyAuditTrailResponse> {
    Rpc::new(&OpSpec::VERIFY_AUDIT_TRAIL, req, |app, _cx, _req| async move {
        Ok(Outcome::read(AuditApi::verify_trail(&app).await?))
    })
}

/// export_audit_events as a kernel operation.
pub fn export_audit_events(req: pb::ExportAuditEventsRequest) -> impl Operation<Output = ExportAuditEventsStream> {
    Rpc::new(&OpSpec::EXPORT_AUDIT_EVENTS, req, |app, _cx, req| async move {
        let format = format(&req.format)?;
        let selection = Arc::new(Selection::new(&req.query, &req.start_time, &req.end_time)?);
        let per_chunk = match req.records_per_chunk {
            0 => DEFAULT_RECORDS_PER_CHUNK,
            n @ 1..=10_000 => n as usize,
            _ => return Err(KmsError::invalid_because("RecordsPerChunk", "It must be between 1 and 10000.")),
        };
        // The export covers what was committed before it began (never itself), all of it signed.
        app.sign_audit_digest().await?;
        let through = app.last_audit_seq().await?;
        let (chunks, stream) = mpsc::channel(2);
        tokio::spawn(export(app, selection, format, (per_chunk, through), chunks));
        Ok(Outcome::read(Box::pin(ReceiverStream::new(stream)) as ExportAuditEventsStream))
    })
}

/// tail_audit_events as a kernel operation.
pub fn tail_audit_events(req: pb::TailAuditEventsRequest) -> impl Operation<Output = TailAuditEventsStream> {
    Rpc::new(&OpSpec::TAIL_AUDIT_EVENTS, req, |app, _cx, req| async move {
        let format = format(&req.format)?;
        let selection = Selection::new(&req.query, "", "")?;
        // Subscribed before the stream opens: every record committed after the answer is seen.
        let live = BroadcastStream::new(app.audit_tail.subscribe());
        let stream = live.filter_map(move |received| match received {
            Ok(record) => selection.matches(&record).then(|| Ok(result((*record).clone(), format))),
            Err(BroadcastStreamRecvError::Lagged(missed)) => Some(Err(Status::data_loss(format!(
                "the tail fell behind and missed {missed} records; query them with QueryAuditEvents"
            )))),
        });
        Ok(Outcome::read(Box::pin(stream) as TailAuditEventsStream))
    })
}
