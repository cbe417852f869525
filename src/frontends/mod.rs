//! Front ends: each decodes its wire requests into kernel operations and a
//! [`CallMeta`](crate::kernel::CallMeta), verifies its own credentials, and
//! renders the kernel's answer the way its clients expect. None of them
//! audits, authorizes or touches the store; that is the kernel's.

pub mod grpc;
