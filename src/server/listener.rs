//! The listening socket: how many connections the server holds at once, how
//! long a new one may stay silent, what an accept error does, and TLS. A
//! client that opens sockets and says nothing cannot hold them for ever, and
//! at the file-descriptor limit the server backs off and says so instead of
//! spinning. TLS handshakes run beside the accept loop, one task each, so a
//! slow one delays no other connection.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// The first wait after a failed accept; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Who is at the other end of a connection: what every request on it carries
/// in its extensions, for the front ends.
#[derive(Debug, Clone)]
pub struct Peer {
    pub remote: Option<SocketAddr>,
    /// The client's certificate chain, leaf first, when it presented one that
    /// the TLS layer verified against `--tls-client-ca`; empty otherwise.
    pub certificates: Arc<[CertificateDer<'static>]>,
}

/// Accepts connections from `listener` while fewer than `max_connections` are
/// open (the next waits in the kernel's backlog until one closes), each closed
/// if it sends nothing within `first_byte_timeout`; with `tls`, each is a TLS
/// connection once its handshake (bounded by the same timeout) completes.
pub fn incoming(
    listener: TcpListener,
    max_connections: usize,
    first_byte_timeout: Duration,
    tls: Option<TlsAcceptor>,
) -> ReceiverStream<io::Result<Accepted>> {
    let (accepted, stream) = mpsc::channel(1);
    tokio::spawn(async move {
        let open = Arc::new(Semaphore::new(max_connections.max(1)));
        let mut backoff = MIN_BACKOFF;
        loop {
            // The server dropping the stream (at shutdown) ends the loop.
            let permit = tokio::select! {
                permit = open.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
                () = accepted.closed() => return,
            };
            let next = tokio::select! {
                next = listener.accept() => next,
                () = accepted.closed() => return,
            };
            match next {
                Ok((stream, _)) => {
                    backoff = MIN_BACKOFF;
                    let _ = stream.set_nodelay(true);
                    let connection = Connection::new(stream, permit, first_byte_timeout);
                    match &tls {
                        None => {
                            if accepted.send(Ok(Accepted::Plain(connection))).await.is_err() {
                                return;
                            }
                        }
                        Some(acceptor) => {
                            let (acceptor, accepted) = (acceptor.clone(), accepted.clone());
                            tokio::spawn(async move {
                                match tokio::time::timeout(first_byte_timeout, acceptor.accept(connection)).await {
                                    Ok(Ok(stream)) => {
                                        let _ = accepted.send(Ok(Accepted::Tls(Box::new(stream)))).await;
                                    }
                                    Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                                    Err(_) => tracing::debug!("TLS handshake timed out"),
                                }
                            });
                        }
                    }
                }
                Err(error) => {
                    // EMFILE and friends: retrying at once would spin; wait, and say why.
                    tracing::warn!(%error, retry_in = ?backoff, "accepting a connection failed; backing off");
                    drop(permit);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    });
    ReceiverStream::new(stream)
}

/// An accepted connection: it holds one of the server's connection slots
/// until it closes, and fails its first read if the client stays silent.
pub struct Connection {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    /// Until the client's first byte: when it must have come.
    silent_until: Option<Pin<Box<Sleep>>>,
}

impl Connection {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, first_byte_timeout: Duration) -> Connection {
        Connection { stream, _slot: slot, silent_until: Some(Box::pin(tokio::time::sleep(first_byte_timeout))) }
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.silent_until = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.silent_until.as_mut().map(|deadline| deadline.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => {
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client sent nothing in time")))
                }
                _ => Poll::Pending,
            },
            failed => failed,
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A connection as the server serves it: plain, or TLS over it.
pub enum Accepted {
    Plain(Connection),
    Tls(Box<tokio_rustls::server::TlsStream<Connection>>),
}

impl Accepted {
    fn io(self: Pin<&mut Self>) -> Pin<&mut (dyn AsyncReadWrite + Unpin)> {
        match self.get_mut() {
            Accepted::Plain(connection) => Pin::new(connection),
            Accepted::Tls(stream) => Pin::new(stream.as_mut()),
        }
    }
}

/// What both kinds of connection are, for [`Accepted`] to delegate to.
trait AsyncReadWrite: AsyncRead + AsyncWrite {}
impl<T: AsyncRead + AsyncWrite> AsyncReadWrite for T {}

impl AsyncRead for Accepted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.io().poll_read(cx, buf)
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io().poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Accepted::Plain(connection) => connection.is_write_vectored(),
            Accepted::Tls(stream) => stream.is_write_vectored(),
        }
    }
}

impl Connected for Accepted {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        match self {
            Accepted::Plain(connection) => {
                Peer { remote: connection.stream.peer_addr().ok(), certificates: Arc::from(Vec::new()) }
            }
            Accepted::Tls(stream) => {
                let (connection, session) = stream.get_ref();
                let certificates =
                    session.peer_certificates().map(|c| c.iter().map(|c| c.clone().into_owned()).collect::<Vec<_>>());
                Peer {
                    remote: connection.stream.peer_addr().ok(),
                    certificates: Arc::from(certificates.unwrap_or_default()),
                }
            }
        }
    }
}
