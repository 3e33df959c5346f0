//! The connection layer every protocol builds on: the accept loop and its limits
//! ([`accept`], [`limits`]), the connection driver with its line reader, STARTTLS and
//! COMPRESS ([`conn`], [`line`], [`stream`], [`deflate`]), and what a connection task is
//! given ([`Context`]). It knows no protocol: each protocol module starts its own
//! listeners with it and owns its own shared state; `server` composes them.

pub mod accept;
pub mod conn;
pub mod deflate;
pub mod limits;
pub mod line;
pub mod stream;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use smol::channel::{Receiver, Sender, bounded};

use crate::config::Config;
use crate::delivery::Pipeline;
use crate::store::StoreError;

pub use crate::shutdown::Shutdown;

/// Why the server could not start or run.
#[derive(Debug)]
pub enum ServeError {
    Store(StoreError),
    Bind(String, std::io::Error),
    Signals(std::io::Error),
    Tls(crate::tls::TlsError),
    Plugins(String),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Store(StoreError::Locked) => write!(
                f,
                "the data dir is in use by another nestbox process (is a server already running?)"
            ),
            ServeError::Store(e) => write!(f, "cannot open the store: {e}"),
            ServeError::Bind(what, e) => write!(f, "cannot listen on {what}: {e}"),
            ServeError::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
            ServeError::Tls(e) => write!(f, "tls: {e}"),
            ServeError::Plugins(e) => write!(f, "plugins: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// A protocol's listener addresses, the plain ones then the implicit-TLS ones, each with
/// whether it is implicit TLS.
pub fn plain_then_tls<'a>(
    plain: &'a [std::net::SocketAddr],
    tls: &'a [std::net::SocketAddr],
) -> impl Iterator<Item = (std::net::SocketAddr, bool)> + 'a {
    let plain = plain.iter().map(|a| (*a, false));
    plain.chain(tls.iter().map(|a| (*a, true)))
}

/// A bound listener, already in the metrics' list of listeners (whose ports
/// autoconfig describes and `/healthz` checks); it is marked down when the accept loop
/// that owns it ends.
pub struct Listening {
    pub listener: smol::net::TcpListener,
    pub up: crate::metrics::ListenerGuard,
}

/// Binds a TCP listener for `proto`, lists it, and then announces it on stdout as
/// `listening <proto> <addr>`, from which scripts and tests learn ephemeral ports: once
/// announced, it is described by autoconfig and accepts connections.
pub async fn listen(
    addr: std::net::SocketAddr,
    proto: &'static str,
) -> Result<Listening, ServeError> {
    let listener = smol::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Bind(format!("{proto} {addr}"), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| ServeError::Bind(proto.into(), e))?;
    let up = crate::metrics::listener_up(proto, local);
    println!("listening {proto} {local}");
    Ok(Listening { listener, up })
}

/// Counts live connections so shutdown can wait for them, and connections ever opened so
/// the memory timer can tell a quiet server; [`Tracker::last_closed`] wakes it when the
/// last open connection closes.
#[derive(Clone)]
pub struct Tracker(Arc<Counts>);

struct Counts {
    live: AtomicUsize,
    entered: AtomicUsize,
    /// One pending wake-up at most: the timer wants to know "it happened", not how often.
    closed_tx: Sender<()>,
    closed_rx: Receiver<()>,
}

impl Default for Tracker {
    fn default() -> Self {
        let (closed_tx, closed_rx) = bounded(1);
        Tracker(Arc::new(Counts {
            live: AtomicUsize::new(0),
            entered: AtomicUsize::new(0),
            closed_tx,
            closed_rx,
        }))
    }
}

pub struct TrackGuard(Arc<Counts>);

impl Tracker {
    pub fn enter(&self) -> TrackGuard {
        self.0.live.fetch_add(1, Ordering::SeqCst);
        self.0.entered.fetch_add(1, Ordering::Relaxed);
        TrackGuard(self.0.clone())
    }
    pub fn live(&self) -> usize {
        self.0.live.load(Ordering::SeqCst)
    }
    /// Connections opened since start (wraps).
    pub fn entered(&self) -> usize {
        self.0.entered.load(Ordering::Relaxed)
    }
    /// Resolves once the number of open connections has dropped to zero since the last
    /// call (at once if it did meanwhile); there may be new connections by then.
    pub async fn last_closed(&self) {
        let _ = self.0.closed_rx.recv().await;
    }
}

impl Drop for TrackGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Full means a wake-up is pending already.
            let _ = self.0.closed_tx.try_send(());
        }
    }
}

/// Everything a connection task needs.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub pipeline: Pipeline,
    pub auth: crate::auth::Authenticator,
    pub shutdown: Shutdown,
    pub tracker: Tracker,
    /// The certificate and rustls configuration; `acceptor()` for each handshake.
    pub tls: crate::tls::TlsManager,
    /// Connection counters (IMAP/POP3: total, per IP and protocol, per user; LMTP).
    pub limits: limits::ConnLimits,
    /// ACME certificates (`acme`), when on: challenge answers and forced renewal.
    pub acme: Option<crate::acme::Acme>,
}

impl Context {
    /// The store: what sessions read and write through. The delivery pipeline is for
    /// mail that arrives (LMTP, APPEND) and for its hooks.
    pub fn store(&self) -> &crate::store::Store {
        &self.pipeline.store
    }
}

#[cfg(test)]
mod tests {
    use super::Tracker;
    use smol::future::{block_on, poll_once};

    #[test]
    fn last_closed_wakes_once_when_the_count_reaches_zero() {
        let tracker = Tracker::default();
        let (a, b) = (tracker.enter(), tracker.enter());
        drop(a);
        assert!(
            block_on(poll_once(tracker.last_closed())).is_none(),
            "one is still open"
        );
        drop(b);
        assert!(block_on(poll_once(tracker.last_closed())).is_some());
        assert!(
            block_on(poll_once(tracker.last_closed())).is_none(),
            "consumed"
        );
        // Two bursts before the timer looks: one wake-up.
        drop(tracker.enter());
        drop(tracker.enter());
        assert!(block_on(poll_once(tracker.last_closed())).is_some());
        assert!(block_on(poll_once(tracker.last_closed())).is_none());
        assert_eq!((tracker.live(), tracker.entered()), (0, 4));
    }
}
