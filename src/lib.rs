//! kmsim: a simulated Key Management Service, modelled on Alibaba Cloud KMS,
//! with real cryptography, enforced key states and an audit record for every
//! call.
//!
//! Map of the crate, following the path a call takes:
//!
//! - [`frontends`]: each protocol's front end (today kmsim.v1 over gRPC) decodes its
//!   wire request into an operation and a [`kernel::CallMeta`], verifies its own
//!   credentials, and renders the answer or maps [`engine::KmsError`] to its wire form.
//! - [`kernel`]: the one protocol-neutral path every call takes (authenticate,
//!   authorize, run, admit, audit, commit, apply, answer), the operation catalogue,
//!   admission and the scheduler.
//! - [`server`]: assembles the kernel and serves the front ends on one address.
//! - [`engine`]: the pure domain (keys, versions, aliases, tags, state machine, crypto,
//!   secrets, KMS instances and cross-region key sync, identities and policies with
//!   Alibaba's permission policies and network rules, and the agenda of work that falls
//!   due as the clock moves).
//! - [`audit`]: the audit record model and the catalogue of operations it describes.
//! - [`events`]: CloudMonitor-style system events, their bus and webhook delivery.
//! - [`metrics`]: per-minute KMS metrics per region and instance, and their Prometheus text.
//! - [`store`]: SQLite; one writer thread with group commit; state changes and
//!   audit records commit in one transaction.
//! - [`seed`]: fixtures from a YAML seed, applied at start or on demand.
//! - [`clock`]: the simulation clock, the one source of "now".
//! - [`cli`]: `kmsim serve` and the client subcommands.
//! - [`testing`]: an in-process server with connected clients, for your own tests.

pub mod audit;
pub mod cli;
pub mod clock;
pub mod context;
pub mod credentials;
pub mod engine;
pub mod events;
pub mod frontends;
pub mod generate;
pub mod glob;
pub mod kernel;
pub mod metrics;
pub mod seed;
pub mod server;
pub mod store;
pub mod testing;

/// Generated protobuf messages of the KMS instance API (`proto/dkms/api.proto`), named as Alibaba's SDK names them.
pub mod dkms_proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("dkms");
}

/// Generated protobuf and gRPC code for package `kmsim.v1`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("kmsim.v1");

    /// The file descriptor set served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("kmsim_descriptor");
}
