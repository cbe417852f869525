//! The audit trail: the native record every call leaves, the catalogue of
//! operations that says how each call describes itself, its renderings
//! (ActionTrail, CloudTrail), the search language, and the AccessKey report.

pub mod chain;
pub mod formats;
pub mod json;
mod op;
pub mod query;
mod record;
pub mod report;
pub mod selection;
pub mod trail;

pub use self::op::{EventType, OpSpec, ReadWrite, ServiceName};
pub use self::record::{AuditFilter, AuditRecord, Outcome, PayloadSizes, UserIdentity};
