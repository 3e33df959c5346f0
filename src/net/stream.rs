//! The byte stream under every protocol session: TCP, a Unix socket, or TLS over TCP
//! (implicit TLS, or upgraded in place by STARTTLS/STLS with
//! [`super::conn::Conn::start_tls`]), and IMAP's COMPRESS=DEFLATE over any of these
//! ([`super::conn::Conn::start_deflate`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use smol::io::{AsyncRead, AsyncWrite};
use smol::net::TcpStream;
use smol::net::unix::UnixStream;

use super::deflate::Deflate;

pub use crate::auth::Peer;

pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// TLS over TCP: implicit TLS, or a connection upgraded by STARTTLS/STLS.
    Tls(Box<futures_rustls::server::TlsStream<TcpStream>>),
    /// DEFLATE both ways over one of the others (RFC 4978; inside TLS when both are on).
    Deflate(Box<Deflate<Stream>>),
    /// Only while [`super::conn::Conn::start_tls`] swaps the stream; any I/O fails.
    Detached,
}

fn detached() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "stream detached for a TLS upgrade",
    )
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        match self {
            Stream::Tls(_) => true,
            Stream::Deflate(d) => d.inner().is_tls(),
            _ => false,
        }
    }

    /// Whether COMPRESS=DEFLATE is on.
    pub fn is_compressed(&self) -> bool {
        matches!(self, Stream::Deflate(_))
    }
}

/// Calls the poll method on whichever stream is inside; a detached one fails.
macro_rules! delegate {
    ($this:expr, $poll:ident($($arg:expr),*)) => {
        match $this.get_mut() {
            Stream::Tcp(s) => Pin::new(s).$poll($($arg),*),
            Stream::Unix(s) => Pin::new(s).$poll($($arg),*),
            Stream::Tls(s) => Pin::new(s.as_mut()).$poll($($arg),*),
            Stream::Deflate(s) => Pin::new(s.as_mut()).$poll($($arg),*),
            Stream::Detached => Poll::Ready(Err(detached())),
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, poll_close(cx))
    }
}
