//! The accept loop of every listener ([`accept_loop`]: until shutdown, errors retried)
//! and, for TCP listeners ([`accept_tcp`]: LMTP, IMAP, POP3, ManageSieve, plain and
//! 993/995-style, HTTP): connection limits, implicit TLS, the peer, and a task per
//! connection. A protocol served on TCP is a [`Protocol`]; the composition root
//! registers each with [`serve_tcp`].
//!
//! For each accepted socket: take a [`ConnSlot`] of the listener's [`Service`] (past a
//! limit, write the protocol's refusal in plaintext and close; on an implicit-TLS
//! listener just close, since plaintext there is noise); for implicit TLS run the
//! handshake within `connections.preauth_timeout_secs`; then call the handler with the
//! stream, a [`Peer`] whose `tls` says whether it is encrypted, and the slot. The handler
//! gives the slot to its [`super::conn::Conn`], which gives it back before the last
//! reply ([`super::conn::Conn::end`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{Context, Listening, ServeError};
use smol::io::{AsyncWrite, AsyncWriteExt};
use smol::{Executor, Timer};

use super::conn::{handshake, handshake_or_acme};
use super::limits::{ConnSlot, LimitError, Service};
use super::stream::{Peer, Stream};

/// A protocol served on TCP listeners: its listeners and limits, its words for a refusal,
/// and its driver. The value holds what the protocol's sessions share (POP3's maildrop
/// locks, IMAP's `\Recent` claims); each connection gets a clone.
pub trait Protocol: Clone + Send + Sync + 'static {
    /// Which listeners (`<service>.listen`, `<service>.tls_listen`), which connection
    /// budget, which names in logs.
    const SERVICE: Service;

    /// The plaintext reply sent before closing a connection over a limit (LMTP
    /// `421 4.7.0 …`, IMAP `* BYE …`, POP3 `-ERR [SYS/TEMP] …`), CRLF included.
    fn refusal(ctx: &Context, why: LimitError) -> Vec<u8>;

    /// Serves one accepted connection to its end.
    fn serve(self, conn: Accepted) -> impl Future<Output = ()> + Send;
}

/// A connection past the limits and the implicit-TLS handshake.
pub struct Accepted {
    pub ctx: Context,
    /// TLS already on an implicit-TLS listener.
    pub stream: Stream,
    /// `tls` true on an implicit-TLS listener.
    pub peer: Peer,
    /// Its place under the connection limits; the driver gives it to its
    /// [`super::conn::Conn`].
    pub slot: ConnSlot,
}

/// How a listener treats new connections.
#[derive(Clone, Copy)]
pub struct AcceptOptions {
    /// For logs: `lmtp`, `imap`, `imaps`, `pop3`, `pop3s`.
    pub proto: &'static str,
    /// TLS handshake right after accept (993/995 style).
    pub implicit_tls: bool,
}

/// Writes `bytes` (bounded by 5 s) and drops the stream: a connection refused over a
/// limit.
pub async fn refuse<S: AsyncWrite + Unpin>(mut stream: S, bytes: Vec<u8>) {
    let _ = smol::future::or(
        async {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.flush().await;
        },
        async {
            Timer::after(Duration::from_secs(5)).await;
        },
    )
    .await;
}

/// The accept loop every listener runs (TCP, the LMTP Unix socket, the control socket):
/// `accept` until shutdown begins, each connection to `on_conn`; a failed accept (out of
/// descriptors, say) is logged under `proto` and tried again 100 ms later.
pub async fn accept_loop<S, A, Fut>(
    ctx: &Context,
    proto: &str,
    accept: impl Fn() -> Fut,
    mut on_conn: impl FnMut(S, A),
) where
    Fut: Future<Output = std::io::Result<(S, A)>>,
{
    loop {
        let accepted = smol::future::or(async { Some(accept().await) }, async {
            ctx.shutdown.wait().await;
            None
        })
        .await;
        match accepted {
            Some(Ok((stream, addr))) => on_conn(stream, addr),
            Some(Err(e)) => {
                log::warn!("{proto}: accept: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
            None => return,
        }
    }
}

/// Accepts until shutdown; each connection is served by a clone of `protocol` on `ex`.
pub async fn accept_tcp<P: Protocol>(
    ctx: Context,
    listening: Listening,
    ex: Arc<Executor<'static>>,
    opts: AcceptOptions,
    protocol: P,
) {
    // Marks the listener down when the loop ends.
    let Listening { listener, up: _up } = listening;
    accept_loop(
        &ctx,
        opts.proto,
        || listener.accept(),
        |tcp, addr| {
            let _ = tcp.set_nodelay(true);
            let ctx = ctx.clone();
            let protocol = protocol.clone();
            ex.spawn(async move {
                let _guard = ctx.tracker.enter();
                let mut peer = Peer {
                    ip: Some(addr.ip()),
                    tls: false,
                };
                let slot = match ctx.limits.try_connect(P::SERVICE, peer.ip) {
                    Ok(slot) => slot,
                    Err(why) => {
                        crate::metrics::connection(opts.proto, false);
                        log::info!("{}: refused {}: {why}", opts.proto, addr.ip());
                        if !opts.implicit_tls {
                            refuse(tcp, P::refusal(&ctx, why)).await;
                        }
                        return;
                    }
                };
                crate::metrics::connection(opts.proto, true);
                let stream = if opts.implicit_tls {
                    let timeout = ctx.limits.preauth_timeout();
                    let shaken = match &ctx.acme {
                        Some(acme) if acme.answers_tls_alpn() => {
                            handshake_or_acme(&ctx.tls, acme, tcp, timeout, &ctx.shutdown).await
                        }
                        _ => handshake(&ctx.tls.acceptor(), tcp, timeout, &ctx.shutdown).await,
                    };
                    match shaken {
                        Ok(s) => {
                            peer.tls = true;
                            s
                        }
                        Err(e) => {
                            log::info!("{}: {}: {e}", opts.proto, addr.ip());
                            return;
                        }
                    }
                } else {
                    Stream::Tcp(tcp)
                };
                let conn = Accepted {
                    ctx: ctx.clone(),
                    stream,
                    peer,
                    slot,
                };
                protocol.serve(conn).await;
            })
            .detach();
        },
    )
    .await;
}

/// Binds the configured plain listeners of `P::SERVICE`, then its implicit-TLS ones
/// ([`Service::addresses`], each printed as `listening <name> <addr>`), each served by
/// [`accept_tcp`] on `ex` with its own clone of `protocol` until shutdown.
pub async fn serve_tcp<P: Protocol>(
    ctx: &Context,
    ex: &Arc<Executor<'static>>,
    protocol: P,
) -> Result<(), ServeError> {
    let [plain_name, tls_name] = P::SERVICE.listener_names();
    let (plain, tls) = P::SERVICE.addresses(&ctx.config);
    for (addr, implicit_tls) in super::plain_then_tls(plain, tls) {
        let proto = if implicit_tls { tls_name } else { plain_name };
        let l = super::listen(addr, proto).await?;
        let opts = AcceptOptions {
            proto,
            implicit_tls,
        };
        let task = accept_tcp(ctx.clone(), l, ex.clone(), opts, protocol.clone());
        ex.spawn(task).detach();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::contracts::NoHooks;
    use crate::delivery::Pipeline;
    use crate::net::limits::ConnLimits;
    use crate::net::{Shutdown, Tracker};
    use crate::store::Store;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use std::io::{Read, Write};

    /// Trusts any certificate (the test only checks that TLS is spoken).
    #[derive(Debug)]
    struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// Writes `tls=<peer.tls>` and waits for a byte from the client.
    #[derive(Clone)]
    struct TlsProbe;

    impl Protocol for TlsProbe {
        const SERVICE: Service = Service::Imap;

        fn refusal(_: &Context, why: LimitError) -> Vec<u8> {
            format!("NO {why}\r\n").into_bytes()
        }

        async fn serve(self, c: Accepted) {
            // Held until the connection ends, as a protocol's `Conn` holds it.
            let (_slot, mut stream) = (c.slot, c.stream);
            let _ = stream
                .write_all(format!("tls={}\r\n", c.peer.tls).as_bytes())
                .await;
            let _ = stream.flush().await;
            let mut b = [0u8; 1];
            let _ = smol::io::AsyncReadExt::read(&mut stream, &mut b).await;
        }
    }

    /// Implicit TLS: the handler sees `peer.tls` and a working TLS stream; a connection
    /// over the per-IP limit is closed without a handshake.
    #[test]
    fn implicit_tls_accept_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.connections.max_per_ip = 1;
        config.connections.trusted.clear();
        let store = Store::open(dir.path(), &config.store).unwrap();
        let (stop, shutdown) = Shutdown::new();
        let ctx = Context {
            config: Arc::new(config.clone()),
            pipeline: Pipeline::new(store.clone(), "localhost", 1 << 20, Arc::new(NoHooks)),
            auth: crate::auth::Authenticator::new(store.clone(), "localhost", &config.auth.argon2),
            shutdown,
            tracker: Tracker::default(),
            tls: crate::tls::TlsManager::load(&config).unwrap(),
            acme: None,
            limits: ConnLimits::new(&config.connections, config.lmtp.max_connections),
        };
        let ex: Arc<Executor<'static>> = Arc::new(Executor::new());
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = smol::block_on(crate::net::listen(any, "test")).unwrap();
        let addr = listener.listener.local_addr().unwrap();
        let opts = AcceptOptions {
            proto: "test",
            implicit_tls: true,
        };
        let task = ex.spawn(accept_tcp(
            ctx.clone(),
            listener,
            ex.clone(),
            opts,
            TlsProbe,
        ));
        let runner = {
            let ex = ex.clone();
            std::thread::spawn(move || smol::block_on(ex.run(task)))
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth();
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let conn = rustls::ClientConnection::new(
            Arc::new(client),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut line = [0u8; 10];
        tls.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"tls=true\r\n");
        // A second connection from the same IP is over max_per_ip: closed, no reply.
        let mut second = std::net::TcpStream::connect(addr).unwrap();
        second
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = Vec::new();
        assert_eq!(second.read_to_end(&mut buf).unwrap(), 0);
        tls.write_all(b"x").unwrap();
        drop(tls);
        stop.close();
        runner.join().unwrap();
        store.shutdown();
    }
}
