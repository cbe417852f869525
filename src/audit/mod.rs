//! The audit trail: the native record every call leaves (built from the
//! kernel's catalogue entry of the operation, the call and its outcome), its renderings
//! (ActionTrail, CloudTrail), the search language, and the AccessKey report.

mod aws;
pub mod chain;
pub mod formats;
pub mod json;
pub mod query;
mod record;
pub mod report;
pub mod selection;
pub mod trail;

pub use self::record::{AuditFilter, AuditRecord, CRYPTOGRAPHIC_ACTIONS, Outcome, PayloadSizes, UserIdentity};
