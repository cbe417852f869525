//! `kmsim.v1.AuditService`: reading the audit trail.

use tonic::{Request, Response, Status};

use super::dispatch::Dispatcher;
use crate::audit::{AuditFilter, AuditRecord, OpSpec};
use crate::engine::{KmsError, KmsResult, Outcome};
use crate::proto as pb;
use crate::proto::audit_service_server::AuditService;

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;

pub struct AuditApi {
    dispatch: Dispatcher,
}

impl AuditApi {
    pub fn new(dispatch: Dispatcher) -> Self {
        AuditApi { dispatch }
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        self.dispatch
            .run(&OpSpec::LIST_AUDIT_EVENTS, request, |app, _cx, req| async move {
                let limit = token_page_size(req.page_size)?;
                let before = match req.page_token.as_str() {
                    "" => None,
                    token => Some(token.parse::<i64>().map_err(|_| KmsError::invalid("PageToken"))?),
                };
                let filter = AuditFilter { key_id: req.key_id, event_name: req.event_name, error_code: req.error_code };
                let page = app.store.list_audit(filter, limit, before).await.map_err(|e| {
                    tracing::error!(error = %e, "audit read failed");
                    KmsError::internal()
                })?;
                Ok(Outcome::read(pb::ListAuditEventsResponse {
                    events: page.records.into_iter().map(audit_event).collect(),
                    next_page_token: page.next_before.map(|seq| seq.to_string()).unwrap_or_default(),
                }))
            })
            .await
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
    }
}
