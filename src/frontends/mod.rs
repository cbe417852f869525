//! Front ends: each decodes its wire requests into kernel operations and a
//! [`CallMeta`](crate::kernel::CallMeta), verifies its own credentials, and
//! renders the kernel's answer the way its clients expect. None of them
//! audits, authorizes or touches the store; that is the kernel's.

pub mod alibaba;
pub mod door;
pub mod grpc;
pub mod text;

use std::net::SocketAddr;

/// The longest text a record keeps of a header a client chose freely (a User-Agent, a method path).
pub const MAX_RECORDED_TEXT: usize = 256;

/// `text` cut to what a record keeps of a value a client chose freely.
pub fn bounded(text: &str) -> String {
    text.chars().take(MAX_RECORDED_TEXT).collect()
}

/// The client's address, from what the listener put in the request's extensions.
pub fn peer(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions.get::<crate::server::Peer>().and_then(|peer| peer.remote)
}
