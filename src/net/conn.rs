//! The connection driver's buffer: read with a timeout into a bounded buffer, hand out
//! what was read, write replies. Protocol modules frame and parse; this only moves bytes.

use std::time::Duration;

use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Shutdown;
use super::limits::ConnSlot;
use super::line::{LineResult, split_line};
use super::stream::Stream;

/// Why reading stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection.
    Eof,
    /// Nothing arrived within the timeout.
    Timeout,
    /// The server is shutting down.
    Shutdown,
    Io(std::io::Error),
}

/// What [`Conn::next_line`] read.
#[derive(Debug, PartialEq, Eq)]
pub enum NextLine {
    /// A command line, without its line end.
    Line(Vec<u8>),
    /// The line passes the cap: answer, then [`Conn::skip_line`].
    TooLong,
    /// Nothing arrived within the timeout: say so and end.
    Timeout,
    /// The server is shutting down: say so and end.
    Shutdown,
    /// The peer closed the connection, or it failed.
    Gone,
}

/// Size of one read.
const CHUNK: usize = 16 * 1024;

/// Capacity the input and output buffers keep once emptied. A larger one (an APPEND
/// literal, a FETCH of a big message) is freed rather than held for the connection's
/// life: 50 clients that each once fetched a 10 MB message would otherwise keep 500 MB.
const KEEP: usize = 2 * CHUNK;

/// Frees `v` (empty) if its capacity is above [`KEEP`].
fn release_if_large(v: &mut Vec<u8>) {
    if v.capacity() > KEEP {
        *v = Vec::new();
    }
}

pub struct Conn<S> {
    /// The connection's place under the limits. Declared before `stream` so that even
    /// a plain drop gives it back before the socket closes; [`Conn::end`] gives it back
    /// before the last reply is sent.
    slot: Option<ConnSlot>,
    stream: S,
    buf: Vec<u8>,
    start: usize,
    out: Vec<u8>,
    timeout: Duration,
    shutdown: Shutdown,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(stream: S, timeout: Duration, shutdown: Shutdown) -> Self {
        Conn {
            slot: None,
            stream,
            buf: Vec::new(),
            start: 0,
            out: Vec::new(),
            timeout,
            shutdown,
        }
    }

    /// Holds the connection's [`ConnSlot`] (taken at accept) until [`Conn::end`] or drop.
    pub fn with_slot(mut self, slot: Option<ConnSlot>) -> Self {
        self.slot = slot;
        self
    }

    /// Ends the connection: gives back its slot, then sends what is queued (the last
    /// reply: LOGOUT's OK, QUIT's +OK, a `* BYE`, a 421). The caller drops the `Conn`
    /// next. In this order a client that reconnects as soon as it has read that reply
    /// is never refused for the place it just left.
    pub async fn end(&mut self) {
        self.slot = None;
        let _ = self.flush().await;
    }

    /// Bytes read but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }

    /// Marks `n` buffered bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            release_if_large(&mut self.buf);
            self.start = 0;
        }
    }

    /// Reads more bytes, waiting at most the timeout. The buffer never holds more than
    /// what was unconsumed plus one chunk, so callers bound memory by consuming.
    pub async fn fill(&mut self) -> Result<usize, ReadError> {
        match self.fill_or(std::future::pending::<()>()).await {
            Ok(r) => r,
            Err(()) => Err(ReadError::Timeout),
        }
    }

    /// Changes the read timeout (IMAP: short before login, autologout after).
    /// The next command line of at most `max_line` octets (CRLF or a bare LF, see
    /// [`super::line::split_line`]); what is queued goes out before it waits for input.
    pub async fn next_line(&mut self, max_line: usize) -> NextLine {
        loop {
            match split_line(self.buffered(), max_line) {
                LineResult::Line(len, range) => {
                    let line = self.buffered().get(range).unwrap_or(&[]).to_vec();
                    self.consume(len);
                    return NextLine::Line(line);
                }
                LineResult::TooLong => return NextLine::TooLong,
                LineResult::Incomplete => {
                    if self.flush().await.is_err() {
                        return NextLine::Gone;
                    }
                    match self.fill().await {
                        Ok(_) => {}
                        Err(ReadError::Timeout) => return NextLine::Timeout,
                        Err(ReadError::Shutdown) => return NextLine::Shutdown,
                        Err(_) => return NextLine::Gone,
                    }
                }
            }
        }
    }

    /// Discards input up to and including the next LF (after a too-long line); false
    /// when the connection ended first.
    pub async fn skip_line(&mut self) -> bool {
        loop {
            if let Some(p) = memchr::memchr(b'\n', self.buffered()) {
                self.consume(p.saturating_add(1));
                return true;
            }
            let n = self.buffered().len();
            self.consume(n);
            if self.flush().await.is_err() || self.fill().await.is_err() {
                return false;
            }
        }
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Like [`Conn::fill`], but also stops when `other` resolves first, returning its
    /// value in `Err` (IDLE waits for input and the change feed at once). The buffer is
    /// left consistent either way.
    pub async fn fill_or<T>(
        &mut self,
        other: impl std::future::Future<Output = T>,
    ) -> Result<Result<usize, ReadError>, T> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + CHUNK, 0);
        let timeout = self.timeout;
        let shutdown = self.shutdown.clone();
        let target = self.buf.get_mut(old..).unwrap_or(&mut []);
        let stream = &mut self.stream;
        enum Ev<T> {
            Read(std::io::Result<usize>),
            Timeout,
            Shutdown,
            Other(T),
        }
        let r = smol::future::or(
            async { Ev::Read(stream.read(target).await) },
            smol::future::or(
                async {
                    smol::Timer::after(timeout).await;
                    Ev::Timeout
                },
                smol::future::or(
                    async {
                        shutdown.wait().await;
                        Ev::Shutdown
                    },
                    async { Ev::Other(other.await) },
                ),
            ),
        )
        .await;
        match r {
            Ev::Read(Ok(0)) => {
                self.buf.truncate(old);
                Ok(Err(ReadError::Eof))
            }
            Ev::Read(Ok(n)) => {
                self.buf.truncate(old + n);
                Ok(Ok(n))
            }
            Ev::Read(Err(e)) => {
                self.buf.truncate(old);
                if self.shutdown.is_down() {
                    Ok(Err(ReadError::Shutdown))
                } else {
                    Ok(Err(ReadError::Io(e)))
                }
            }
            Ev::Timeout => {
                self.buf.truncate(old);
                Ok(Err(ReadError::Timeout))
            }
            Ev::Shutdown => {
                self.buf.truncate(old);
                Ok(Err(ReadError::Shutdown))
            }
            Ev::Other(v) => {
                self.buf.truncate(old);
                Err(v)
            }
        }
    }

    /// Queues bytes to send.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// The output buffer, for encoders that append.
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Sends what is queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            let r = self.stream.write_all(&self.out).await;
            self.out.clear();
            release_if_large(&mut self.out);
            r?;
        }
        self.stream.flush().await
    }
}

/// Why a TLS upgrade or an implicit-TLS accept failed. The connection is unusable after.
#[derive(Debug)]
pub enum TlsStartError {
    /// The stream is not TCP (a Unix socket), or already TLS.
    NotTcp,
    /// The handshake failed (bad record, protocol mismatch, peer hung up).
    Handshake(std::io::Error),
    /// The handshake did not finish within the timeout.
    Timeout,
    /// The server is shutting down.
    Shutdown,
    /// The connection was an ACME TLS-ALPN-01 validation, answered and closed.
    AcmeChallenge,
}

impl std::fmt::Display for TlsStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsStartError::NotTcp => write!(f, "TLS needs a plain TCP connection"),
            TlsStartError::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
            TlsStartError::Timeout => write!(f, "TLS handshake timed out"),
            TlsStartError::Shutdown => write!(f, "shutting down"),
            TlsStartError::AcmeChallenge => write!(f, "answered an ACME TLS-ALPN-01 challenge"),
        }
    }
}

/// Runs a server handshake on `tcp`, bounded by `timeout` and shutdown.
pub(crate) async fn handshake(
    acceptor: &futures_rustls::TlsAcceptor,
    tcp: smol::net::TcpStream,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Stream, TlsStartError> {
    bounded(
        async { tls_stream(acceptor.accept(tcp).await) },
        timeout,
        shutdown,
    )
    .await
}

/// The connection once a server handshake has finished, or why it failed.
fn tls_stream(
    done: std::io::Result<futures_rustls::server::TlsStream<smol::net::TcpStream>>,
) -> Result<Stream, TlsStartError> {
    done.map(|tls| Stream::Tls(Box::new(tls)))
        .map_err(TlsStartError::Handshake)
}

/// [`handshake`] on a listener that also answers ACME TLS-ALPN-01 validations
/// (RFC 8737 §3): a ClientHello whose only ALPN protocol is `acme-tls/1` gets the
/// challenge certificate and the connection ends after the handshake; any other gets the
/// server certificate as usual.
pub(crate) async fn handshake_or_acme(
    tls: &crate::tls::TlsManager,
    acme: &crate::acme::Acme,
    tcp: smol::net::TcpStream,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Stream, TlsStartError> {
    bounded(
        async {
            let start =
                futures_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
                    .await
                    .map_err(TlsStartError::Handshake)?;
            if rustls_acme::is_tls_alpn_challenge(&start.client_hello()) {
                if let Some(config) = acme.tls_alpn_config() {
                    start
                        .into_stream(config)
                        .await
                        .map_err(TlsStartError::Handshake)?;
                }
                return Err(TlsStartError::AcmeChallenge);
            }
            tls_stream(start.into_stream(tls.server_config()).await)
        },
        timeout,
        shutdown,
    )
    .await
}

/// Runs `fut` unless `timeout` passes or shutdown begins first.
async fn bounded(
    fut: impl std::future::Future<Output = Result<Stream, TlsStartError>>,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Stream, TlsStartError> {
    let r = smol::future::or(
        async { Some(fut.await) },
        smol::future::or(
            async {
                smol::Timer::after(timeout).await;
                Some(Err(TlsStartError::Timeout))
            },
            async {
                shutdown.wait().await;
                None
            },
        ),
    )
    .await;
    r.unwrap_or(Err(TlsStartError::Shutdown))
}

impl Conn<Stream> {
    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// STARTTLS/STLS: sends what is queued (the "go ahead" reply) in plaintext, DISCARDS
    /// every byte read but not consumed, then runs the TLS handshake on the same socket.
    ///
    /// Discarding is what RFC 3207 §4.2 and RFC 2595 §3.1 require: anything a client (or
    /// a man in the middle) pipelined after the STARTTLS command arrived in plaintext and
    /// must not be executed as if it came over TLS. The caller must also forget its
    /// pre-TLS session state (LHLO/EHLO, USER, capabilities).
    ///
    /// On error the connection is unusable and should be dropped.
    pub async fn start_tls(
        &mut self,
        acceptor: &futures_rustls::TlsAcceptor,
    ) -> Result<(), TlsStartError> {
        // The replies before it go out in any case (the client reads them all).
        self.flush().await.map_err(TlsStartError::Handshake)?;
        if !matches!(self.stream, Stream::Tcp(_)) {
            return Err(TlsStartError::NotTcp);
        }
        self.buf.clear();
        self.start = 0;
        let Stream::Tcp(tcp) = std::mem::replace(&mut self.stream, Stream::Detached) else {
            return Err(TlsStartError::NotTcp);
        };
        self.stream = handshake(acceptor, tcp, self.timeout, &self.shutdown).await?;
        Ok(())
    }

    /// Whether COMPRESS=DEFLATE is on.
    pub fn is_compressed(&self) -> bool {
        self.stream.is_compressed()
    }

    /// IMAP COMPRESS=DEFLATE (RFC 4978 §3): sends what is queued (the tagged OK) as it
    /// is, then puts a DEFLATE layer over the stream, at the seam STARTTLS uses: every
    /// later byte either way is compressed. Bytes read but not consumed came after the
    /// COMPRESS command, so the client compressed them (it must not send them before the
    /// OK, RFC 4978 §3; mox and Dovecot read them the same way): they are inflated, not
    /// dropped. A second call while compressed does nothing.
    pub async fn start_deflate(&mut self) -> std::io::Result<()> {
        self.flush().await?;
        if self.is_compressed() {
            return Ok(());
        }
        let early = self.buffered().to_vec();
        self.buf.clear();
        self.start = 0;
        release_if_large(&mut self.buf);
        let plain = std::mem::replace(&mut self.stream, Stream::Detached);
        self.stream = Stream::Deflate(Box::new(super::deflate::Deflate::new(plain, &early)));
        Ok(())
    }

    /// Ends COMPRESS=DEFLATE (RFC 8437 §4.1, after UNAUTHENTICATE): sends what is queued
    /// (the tagged OK, still compressed, with a sync flush), then takes the layer off.
    /// The client stops compressing after its command's CRLF, but where its DEFLATE
    /// stream ends inside the bytes already read cannot be told, so everything read but
    /// not consumed is dropped, as STARTTLS does. Returns how many bytes that was.
    /// Without compression it only sends what is queued and keeps the input.
    pub async fn stop_deflate(&mut self) -> std::io::Result<usize> {
        self.flush().await?;
        if !self.is_compressed() {
            return Ok(0);
        }
        let dropped = self.buffered().len();
        self.buf.clear();
        self.start = 0;
        release_if_large(&mut self.buf);
        self.stream = match std::mem::replace(&mut self.stream, Stream::Detached) {
            Stream::Deflate(d) => d.into_inner(),
            other => other,
        };
        Ok(dropped)
    }
}

/// Implicit TLS (993/995 style): the handshake right after accept, bounded by `timeout`.
/// Returns the connection ready for the greeting.
pub async fn accept_tls(
    acceptor: &futures_rustls::TlsAcceptor,
    tcp: smol::net::TcpStream,
    timeout: Duration,
    shutdown: Shutdown,
) -> Result<Conn<Stream>, TlsStartError> {
    let stream = handshake(acceptor, tcp, timeout, &shutdown).await?;
    Ok(Conn::new(stream, timeout, shutdown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConnectionsConfig;
    use crate::net::limits::{ConnLimits, Service};
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::Poll;

    /// A stream that notes, at each write, how many connections the limits count.
    struct Watch {
        limits: ConnLimits,
        seen: Arc<Mutex<Vec<usize>>>,
    }

    impl AsyncRead for Watch {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Ok(0))
        }
    }

    impl AsyncWrite for Watch {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.seen.lock().unwrap().push(self.limits.total());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// The slot is free before the last reply is written, so the peer can never read
    /// that reply while its place is still counted.
    #[test]
    fn end_releases_the_slot_before_the_last_reply() {
        let limits = ConnLimits::new(&ConnectionsConfig::default(), 1);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stream = Watch {
            limits: limits.clone(),
            seen: seen.clone(),
        };
        let slot = limits.try_connect(Service::Imap, None).unwrap();
        let (_stop, shutdown) = Shutdown::pair();
        let mut conn = Conn::new(stream, Duration::from_secs(5), shutdown).with_slot(Some(slot));
        smol::block_on(async {
            conn.queue(b"* OK hello\r\n");
            conn.flush().await.unwrap();
            conn.queue(b"* BYE\r\na OK LOGOUT completed\r\n");
            conn.end().await;
        });
        assert_eq!(*seen.lock().unwrap(), [1, 0]);
        assert_eq!(limits.total(), 0);
    }

    /// A big literal read or a big reply written is not held once used: 50 connections
    /// that each fetched a large message kept its size each (issue #21).
    #[test]
    fn buffers_let_go_of_a_big_literal_and_reply() {
        let big = vec![b'x'; 10 * CHUNK];
        let (_stop, shutdown) = Shutdown::pair();
        let stream = smol::io::Cursor::new(big.clone());
        let mut conn = Conn::new(stream, Duration::from_secs(5), shutdown);
        smol::block_on(async {
            while conn.buffered().len() < big.len() {
                conn.fill().await.unwrap();
            }
            assert!(conn.buf.capacity() > KEEP);
            conn.consume(big.len());
            assert!(conn.buf.capacity() <= KEEP);
            conn.queue(&big);
            conn.flush().await.unwrap();
            assert!(conn.out.capacity() <= KEEP);
            // A small reply keeps its buffer for the next one.
            conn.queue(b"a OK done\r\n");
            conn.flush().await.unwrap();
            assert!(conn.out.capacity() > 0);
        });
    }
}
