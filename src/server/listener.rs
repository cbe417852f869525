//! The listening socket: how many connections the server holds at once, how
//! long a new one may stay silent, and what an accept error does. A client
//! that opens sockets and says nothing cannot hold them for ever, and at the
//! file-descriptor limit the server backs off and says so instead of spinning.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Sleep;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The first wait after a failed accept; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts connections from `listener` while fewer than `max_connections` are
/// open (the next waits in the kernel's backlog until one closes), each closed
/// if it sends nothing within `first_byte_timeout`.
pub fn incoming(
    listener: TcpListener,
    max_connections: usize,
    first_byte_timeout: Duration,
) -> ReceiverStream<io::Result<Connection>> {
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
                    if accepted.send(Ok(connection)).await.is_err() {
                        return;
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

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}
