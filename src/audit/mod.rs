//! The audit trail's model: the native record every call leaves, and the
//! catalogue of operations that says how each call describes itself.

mod op;
mod record;

pub use self::op::{EventType, OpSpec, ReadWrite, ServiceName};
pub use self::record::{AuditFilter, AuditRecord, Outcome, PayloadSizes};
