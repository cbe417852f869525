//! `kmsim.v1.AuditService`: which kernel operation each method is, how its
//! request decodes into it, and how its output (a server stream's items too)
//! encodes as the response. The kernel does the rest.

use tokio_stream::StreamExt;
use tonic::{Request, Status};

use super::status::to_status;
use super::{Grpc, Reply, decode, service};
use crate::audit::chain::{self, Verified, Violation};
use crate::audit::report::{ServiceUsage, UsageItem};
use crate::audit::trail::{Selectors, Trail};
use crate::audit::{AuditRecord, UserIdentity};
use crate::engine::KmsResult;
use crate::kernel::ops::audit as ops;
use crate::kernel::ops::{Missed, Stream};
use crate::proto as pb;
use crate::proto::audit_service_server::AuditService;

pub struct AuditApi {
    grpc: Grpc,
}

impl AuditApi {
    pub fn new(grpc: Grpc) -> Self {
        AuditApi { grpc }
    }
}

type ResultStream<T> = Stream<Result<T, Status>>;
pub type ExportAuditEventsStream = ResultStream<pb::ExportChunk>;
pub type TailAuditEventsStream = ResultStream<pb::AuditEventResult>;

service! {
    impl AuditService for AuditApi {
        list_audit_events(ListAuditEventsRequest) -> ListAuditEventsResponse = ListAuditEvents,
            |page| pb::ListAuditEventsResponse {
                events: page.items.into_iter().map(audit_event).collect(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            };
        query_audit_events(QueryAuditEventsRequest) -> QueryAuditEventsResponse = QueryAuditEvents,
            |page| pb::QueryAuditEventsResponse {
                events: page.items.into_iter().map(result).collect(),
                next_page_token: page.next_page_token.unwrap_or_default(),
            };
        get_access_key_usage(GetAccessKeyUsageRequest) -> GetAccessKeyUsageResponse = GetAccessKeyUsage,
            |usage| pb::GetAccessKeyUsageResponse {
                access_key_id: usage.access_key_id,
                services: usage.services.into_iter().map(service_usage).collect(),
                user_identity: usage.owner.as_ref().map(user_identity),
                failed_calls: usage.failed_calls,
                refused_calls: usage.refused_calls,
            };
        get_audit_public_key(GetAuditPublicKeyRequest) -> GetAuditPublicKeyResponse = GetAuditPublicKey,
            |key| pb::GetAuditPublicKeyResponse {
                algorithm: "Ed25519".into(),
                public_key_hex: chain::hex(key.as_bytes()),
                public_key_pem: chain::public_key_pem(&key),
            };
        list_trails(ListTrailsRequest) -> ListTrailsResponse = ListTrails,
            |trails| pb::ListTrailsResponse {
                trails: trails.iter().map(|(trail, selectors)| trail_info(trail, *selectors)).collect(),
            };
        put_event_selectors(PutEventSelectorsRequest) -> TrailInfo = PutEventSelectors,
            |(trail, selectors)| trail_info(&trail, selectors);
        verify_audit_trail(VerifyAuditTrailRequest) -> VerifyAuditTrailResponse = VerifyAuditTrail, verification;

        @by_hand
        type ExportAuditEventsStream = ExportAuditEventsStream;

        async fn export_audit_events(
            &self,
            request: Request<pb::ExportAuditEventsRequest>,
        ) -> Reply<Self::ExportAuditEventsStream> {
            self.grpc.open(request, ops::ExportAuditEvents::from, export_chunks).await
        }

        type TailAuditEventsStream = TailAuditEventsStream;

        async fn tail_audit_events(
            &self,
            request: Request<pb::TailAuditEventsRequest>,
        ) -> Reply<Self::TailAuditEventsStream> {
            self.grpc.open(request, ops::TailAuditEvents::from, tailed).await
        }
    }
}

decode! {
    ListAuditEventsRequest => ListAuditEvents { key_id, event_name, error_code, page_size, page_token }
    QueryAuditEventsRequest => QueryAuditEvents { query, start_time, end_time, page_size, page_token, format }
    ExportAuditEventsRequest => ExportAuditEvents { query, start_time, end_time, format, records_per_chunk }
    TailAuditEventsRequest => TailAuditEvents { query, format }
    GetAccessKeyUsageRequest => GetAccessKeyUsage { access_key_id }
    GetAuditPublicKeyRequest => GetAuditPublicKey {}
    ListTrailsRequest => ListTrails {}
    PutEventSelectorsRequest => PutEventSelectors {
        trail_name, exclude_read_only_events, exclude_cryptographic_events,
    }
    VerifyAuditTrailRequest => VerifyAuditTrail { last_digest: |kept: Option<pb::AuditDigest>| kept.map(kept_digest) }
}

/// An export's chunks; a failure part way ends the stream with its status.
fn export_chunks(chunks: Stream<KmsResult<ops::ExportChunk>>) -> ExportAuditEventsStream {
    Box::pin(chunks.map(|chunk| {
        chunk
            .map(|ops::ExportChunk { data, records, chunk }| pb::ExportChunk { data, records, chunk })
            .map_err(|e| to_status(&e, ""))
    }))
}

/// A tail's records; falling behind ends the stream with DATA_LOSS.
fn tailed(records: Stream<Result<ops::Rendered, Missed>>) -> TailAuditEventsStream {
    Box::pin(records.map(|received| {
        received.map(result).map_err(|Missed(missed)| {
            Status::data_loss(format!(
                "the tail fell behind and missed {missed} records; query them with QueryAuditEvents"
            ))
        })
    }))
}

fn kept_digest(digest: pb::AuditDigest) -> ops::KeptDigest {
    let pb::AuditDigest { seq, time_ms, link, signature } = digest;
    ops::KeptDigest { seq, time_ms, link, signature }
}

fn audit_digest(digest: &chain::Digest) -> pb::AuditDigest {
    pb::AuditDigest {
        seq: digest.seq,
        time_ms: digest.time_ms,
        link: chain::hex(&digest.link),
        signature: chain::hex(&digest.signature),
    }
}

fn verification(outcome: Result<Verified, Violation>) -> pb::VerifyAuditTrailResponse {
    match outcome {
        Ok(verified) => pb::VerifyAuditTrailResponse {
            valid: true,
            records: verified.records,
            digests: verified.digests,
            unsigned_tail: verified.unsigned_tail,
            first_seq: verified.first_seq,
            last_seq: verified.last_seq,
            last_digest: verified.last_digest.as_ref().map(audit_digest),
            ..Default::default()
        },
        Err(violation) => pb::VerifyAuditTrailResponse {
            valid: false,
            first_bad_seq: violation.seq,
            first_bad_event_id: violation.event_id,
            reason: violation.reason,
            ..Default::default()
        },
    }
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

fn service_usage(s: ServiceUsage) -> pb::ServiceUsage {
    let item = |i: UsageItem| pb::UsageItem {
        name: i.name,
        last_access_time: i.last_access.to_rfc3339(),
        count: i.count,
        last_event_id: i.last_event_id,
    };
    pb::ServiceUsage {
        service_name: s.service_name,
        last_access_time: s.last_access.to_rfc3339(),
        event_names: s.event_names.into_iter().map(item).collect(),
        source_ip_addresses: s.source_ip_addresses.into_iter().map(item).collect(),
        resources: s.resources.into_iter().map(item).collect(),
    }
}

fn result(rendered: ops::Rendered) -> pb::AuditEventResult {
    let ops::Rendered { record, text } = rendered;
    pb::AuditEventResult { event: Some(audit_event(record)), json: text }
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
        endpoint: r.endpoint,
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
