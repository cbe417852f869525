//! What front ends may read of what is stored: the audit trail and the system
//! events. Front ends never hold the store; each read here answers a
//! [`KmsResult`], with a store failure logged and answered as `InternalFailure`.

use std::sync::Arc;

use ed25519_dalek::VerifyingKey;

use super::app::App;
use crate::audit::chain::{Digest, Verified, Violation};
use crate::audit::selection::Selection;
use crate::audit::{AuditFilter, AuditRecord};
use crate::engine::{KmsError, KmsResult};
pub use crate::store::{AuditPage, EventPage, EventQuery, Order};
use crate::store::{Scan, StoreError};

impl App {
    /// Audit records newest first, below sequence `before` when given.
    pub async fn list_audit(&self, filter: AuditFilter, limit: usize, before: Option<i64>) -> KmsResult<AuditPage> {
        self.store.list_audit(filter, limit, before).await.map_err(read_failed)
    }

    /// Up to `limit` records `selection` keeps, in `order`, after sequence `from` and up to
    /// `through` when given.
    pub async fn search_audit(
        &self,
        selection: Arc<Selection>,
        order: Order,
        (from, through): (Option<i64>, Option<i64>),
        limit: usize,
    ) -> KmsResult<AuditPage> {
        let scan = Scan { range: selection.range, order, from, through, limit, contains: selection.required_text() };
        match self.store.scan_audit(scan, move |record| selection.matches(record)).await.map_err(read_failed)? {
            Some(page) => Ok(page),
            None => Err(KmsError::invalid_because(
                "Query",
                &format!(
                    "The search read for more than {} s; narrow it with StartTime and EndTime or a more selective query.",
                    crate::store::MAX_SCAN_TIME.as_secs()
                ),
            )),
        }
    }

    /// Every record made with `access_key_id`, oldest first.
    pub async fn audit_by_access_key(&self, access_key_id: String) -> KmsResult<Vec<AuditRecord>> {
        self.store.audit_by_access_key(access_key_id).await.map_err(read_failed)
    }

    /// System event documents newest first, below `before` when given.
    pub async fn list_events(&self, query: EventQuery, before: Option<(i64, i64)>) -> KmsResult<EventPage> {
        self.store.list_events(query, before).await.map_err(read_failed)
    }

    /// The whole trail's chain and digests, checked, and against `kept` (a
    /// digest kept outside the store) when given.
    pub async fn verify_audit(&self, kept: Option<Digest>) -> KmsResult<Result<Verified, Violation>> {
        self.store.verify_audit(kept).await.map_err(read_failed)
    }

    /// The key the trail's digests are signed with.
    pub fn audit_public_key(&self) -> VerifyingKey {
        self.store.audit_public_key()
    }

    /// Signs a digest over the trail's head, so that everything committed so far is covered; answers the
    /// sequence number of the last record it covers.
    pub async fn sign_audit_digest(&self) -> KmsResult<i64> {
        self.store.sign_digest().await.map_err(read_failed)
    }

    /// The link the record `first_seq` follows (with its sequence number), and
    /// the digests that cover the records `first_seq..=last_seq`.
    pub async fn audit_chain_context(
        &self,
        first_seq: i64,
        last_seq: i64,
    ) -> KmsResult<(([u8; 32], i64), Vec<Digest>)> {
        self.store.chain_context(first_seq, last_seq).await.map_err(read_failed)
    }
}

fn read_failed(e: StoreError) -> KmsError {
    tracing::error!(error = %e, "a read of the store failed");
    KmsError::internal()
}
