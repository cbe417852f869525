//! The call kernel: the one protocol-neutral path every call takes, whichever
//! front end decoded it (gRPC, the in-process generator, and the HTTP front
//! ends to come).
//!
//! A front end turns its wire request into an [`Operation`] and a
//! [`CallMeta`] (who, from where, with what verified credential) and hands
//! both to [`App::execute`], which authenticates, authorizes, runs, admits,
//! audits, commits, applies and answers (see [`execute`]). The front end then
//! renders the [`Answer`] in its own wire form. Nothing here knows a
//! transport: no tonic, prost or HTTP type appears in this module.
//!
//! - [`catalogue`]: every operation's entry (audit, RAM action, fault name, cost).
//! - [`operation`]: what an operation tells the kernel, and what it returns.
//! - [`ops`]: every operation kmsim offers, described once for every front end.
//! - [`meta`]: what a front end tells the kernel about a call.
//! - [`identity`]: authentication from what a front end verified, and authorization.
//! - [`admission`]: QPS quotas and injected faults.
//! - [`scheduler`]: due work as the simulation clock passes it.
//! - [`reads`]: what front ends may read of what is stored (the audit trail, system events).
//! - [`app`]: the shared state, and the one way state lands (commit, then apply).

pub mod admission;
pub mod app;
pub mod catalogue;
pub mod execute;
pub mod identity;
pub mod meta;
pub mod operation;
pub mod ops;
pub mod reads;
pub mod scheduler;

pub use self::app::{App, Batching};
pub use self::catalogue::{Cost, OpSpec};
pub use self::execute::{Answer, Undecoded};
pub use self::meta::{CallMeta, Presented};
pub use self::operation::{AfterCommit, Described, IntoRan, Names, Operation, Ran};
