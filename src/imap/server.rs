//! The IMAP connection driver: sockets, timers and the change feed around the
//! [`Session`]. Replies to pipelined commands are flushed together once no complete
//! command is left in the input (RFC 9051 §5.5).
//!
//! Timeouts (RFC 9051 §5.4): `imap.login_timeout_secs` before login,
//! `imap.autologout_secs` (>= 30 min) after; one IDLE may last `imap.idle_timeout_secs`,
//! with `* OK Still here` every [`KEEPALIVE`] so NAT tables keep the connection. Every
//! close the server starts is preceded by `* BYE` (RFC 9051 §7.1.5). The session's
//! places under the connection limits are given back before that last reply (LOGOUT's
//! OK or the `* BYE`), so a client may reconnect as soon as it has read it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::Timer;

use super::framing::{FrameError, FrameLimits, Framed, Framer};
use super::grammar::parse_command;
use super::response::{Code, Status};
use super::session::{Action, Session, Shared};
use crate::net::Context;
use crate::net::accept::{Accepted, Protocol};
use crate::net::conn::{Conn, ReadError};
use crate::net::limits::{ConnSlot, LimitError, Service};
use crate::net::stream::{Peer, Stream};

/// A FETCH reply is sent whenever this much is queued, so memory stays about one
/// message plus this much however many messages one FETCH names.
pub const FLUSH_AT: usize = 256 * 1024;

/// How often an idling client hears `* OK Still here`.
pub const KEEPALIVE: Duration = Duration::from_secs(4 * 60);

/// IMAP on TCP: plain listeners (`listening imap ADDR`, STARTTLS) and implicit TLS
/// (`listening imaps ADDR`). Its sessions share who holds `\Recent` ([`Shared`]).
#[derive(Clone, Default)]
pub struct Imap {
    shared: Arc<Shared>,
}

impl Protocol for Imap {
    const SERVICE: Service = Service::Imap;

    /// Over a connection limit: `* BYE [UNAVAILABLE]` (RFC 9051 §7.1.5, RFC 5530 §3)
    /// naming the limit and its config key, then close.
    fn refusal(_ctx: &Context, why: LimitError) -> Vec<u8> {
        format!("* BYE [UNAVAILABLE] {why}\r\n").into_bytes()
    }

    async fn serve(self, c: Accepted) {
        handle(&c.ctx, self.shared, c.stream, c.peer, Some(c.slot)).await;
    }
}

fn limits(ctx: &Context) -> FrameLimits {
    let max_literal = ctx.config.imap.literal_limit(&ctx.config.limits);
    FrameLimits {
        max_line: ctx.config.imap.max_line,
        max_literal,
        // We advertise LITERAL+ (RFC 7888), so non-synchronizing literals may be as
        // large as synchronizing ones.
        max_nonsync: max_literal,
    }
}

fn timeout(ctx: &Context, session: &Session) -> Duration {
    Duration::from_secs(if session.logged_in() {
        ctx.config.imap.autologout_secs
    } else {
        ctx.config.imap.login_timeout_secs
    })
}

/// Why the driver stops.
enum End {
    /// Flush what is queued and close.
    Close,
    /// Send this `* BYE`, flush, close.
    Bye(&'static str),
    /// The peer is gone: close without writing.
    Gone,
    /// A layer went on or off (STARTTLS, COMPRESS, UNAUTHENTICATE under COMPRESS):
    /// frame afresh.
    Restart,
}

fn read_end(e: ReadError) -> End {
    match e {
        ReadError::Timeout => End::Bye("Autologout; idle for too long"),
        ReadError::Shutdown => End::Bye("Server shutting down"),
        _ => End::Gone,
    }
}

/// Serves one IMAP connection to the end; `slot` (from accept) is given back before the
/// last reply.
pub async fn handle(
    ctx: &Context,
    shared: Arc<Shared>,
    stream: Stream,
    peer: Peer,
    slot: Option<ConnSlot>,
) {
    let mut session = Session::new(ctx.clone(), shared, peer);
    let mut conn = Conn::new(
        stream,
        Duration::from_secs(ctx.config.imap.login_timeout_secs),
        ctx.shutdown.clone(),
    )
    .with_slot(slot);
    session.greeting(conn.out());
    let end = loop {
        match run(ctx, &mut session, &mut conn).await {
            End::Restart => continue,
            end => break end,
        }
    };
    // The user's session slot (LOGOUT already dropped it; autologout and shutdown have
    // not), then the connection's, then the last reply.
    drop(session);
    match end {
        End::Close | End::Restart => {}
        End::Bye(text) => {
            conn.queue(format!("* BYE {text}\r\n").as_bytes());
        }
        End::Gone => return,
    }
    conn.end().await;
}

async fn run(ctx: &Context, session: &mut Session, conn: &mut Conn<Stream>) -> End {
    let mut framer = Framer::new(limits(ctx));
    loop {
        match framer.next(conn.buffered()) {
            Framed::Incomplete => {
                if conn.flush().await.is_err() {
                    return End::Gone;
                }
                // RFC 5465: with NOTIFY on, changes are sent between commands too (not
                // while a command is half read: a literal may be on its way).
                let feed = match session.notify_active() && conn.buffered().is_empty() {
                    true => session.feed(),
                    false => None,
                };
                let woke = match &feed {
                    Some(rx) => conn.fill_or(rx.recv()).await,
                    None => Ok(conn.fill().await),
                };
                match woke {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return read_end(e),
                    Err(Ok(change)) => {
                        session.note_change(&change);
                        let mut out = std::mem::take(conn.out());
                        session.notify_between(&mut out).await;
                        *conn.out() = out;
                        if session.closing() {
                            return End::Close;
                        }
                    }
                    // The feed closed (store shutting down): wait for input only.
                    Err(Err(_)) => {
                        Timer::after(Duration::from_millis(100)).await;
                    }
                }
            }
            Framed::Continue => conn.queue(b"+ Ready for literal data\r\n"),
            Framed::Skip(n) => conn.consume(n),
            Framed::Fatal => return End::Bye("Cannot frame the input"),
            Framed::Refused {
                consume,
                tag,
                error,
            } => {
                conn.consume(consume);
                let status = match error {
                    FrameError::LineTooLong => {
                        Status::bad("Command line too long").with(Code::TooBig)
                    }
                    FrameError::LiteralTooBig { sync: true } => {
                        Status::no(Some(Code::TooBig), "Literal too big")
                    }
                    FrameError::LiteralTooBig { sync: false } => {
                        Status::bad("Literal too big").with(Code::TooBig)
                    }
                    FrameError::BadLiteral => Status::bad("Invalid literal length"),
                };
                status.encode(tag.as_deref(), conn.out());
            }
            Framed::Command(n) => {
                let bytes = conn.buffered().get(..n).unwrap_or(&[]).to_vec();
                conn.consume(n);
                let cmd = match parse_command(&bytes) {
                    Ok(cmd) => cmd,
                    Err(e) => {
                        Status::bad(e.reason.to_string()).encode(e.tag.as_deref(), conn.out());
                        continue;
                    }
                };
                drop(bytes);
                let mut out = std::mem::take(conn.out());
                let action = session.handle(cmd, &mut out).await;
                *conn.out() = out;
                match follow(ctx, session, conn, action).await {
                    Ok(()) => {}
                    Err(end) => return end,
                }
                conn.set_timeout(timeout(ctx, session));
            }
        }
    }
}

/// Carries out a session's [`Action`] (SASL rounds, IDLE, close).
async fn follow(
    ctx: &Context,
    session: &mut Session,
    conn: &mut Conn<Stream>,
    mut action: Action,
) -> Result<(), End> {
    loop {
        match action {
            Action::Continue => return Ok(()),
            Action::Close => return Err(End::Close),
            Action::Idle(tag) => return idle(ctx, session, conn, &tag).await,
            Action::Fetch => {
                action = loop {
                    let mut out = std::mem::take(conn.out());
                    let next = session.fetch_pump(&mut out).await;
                    *conn.out() = out;
                    if conn.out().len() >= FLUSH_AT && conn.flush().await.is_err() {
                        return Err(End::Gone);
                    }
                    if let Some(next) = next {
                        break next;
                    }
                };
                // Give back what one big message grew the buffer to.
                conn.out().shrink_to(FLUSH_AT);
            }
            Action::StartTls => {
                // Conn::start_tls flushes the OK, then drops every byte read but not
                // consumed: plaintext pipelined after STARTTLS is never executed.
                if let Err(e) = conn.start_tls(&ctx.tls.acceptor()).await {
                    log::info!("imap: STARTTLS: {e}");
                    return Err(End::Gone);
                }
                session.tls_started();
                return Err(End::Restart);
            }
            Action::Compress => {
                // RFC 4978 §3: the OK goes out as it is; from the next byte on, both
                // directions are DEFLATE. Frame afresh over the new layer.
                if let Err(e) = conn.start_deflate().await {
                    log::info!("imap: COMPRESS: {e}");
                    return Err(End::Gone);
                }
                return Err(End::Restart);
            }
            Action::Uncompress => {
                // RFC 8437 §4.1: the OK goes out compressed, then neither direction is.
                match conn.stop_deflate().await {
                    Ok(0) => {}
                    Ok(n) => {
                        log::info!("imap: UNAUTHENTICATE: dropped {n} bytes sent before its OK")
                    }
                    Err(e) => {
                        log::info!("imap: UNAUTHENTICATE: {e}");
                        return Err(End::Gone);
                    }
                }
                conn.set_timeout(timeout(ctx, session));
                return Err(End::Restart);
            }
            Action::Sasl(challenge) => {
                conn.queue(format!("+ {challenge}\r\n").as_bytes());
                let line = read_line(ctx, conn).await?;
                let mut out = std::mem::take(conn.out());
                action = match line {
                    Some(line) => session.sasl_line(&line, &mut out).await,
                    None => {
                        out.extend_from_slice(b"* BAD Line too long\r\n");
                        session.sasl_line(b"*", &mut out).await
                    }
                };
                *conn.out() = out;
            }
        }
    }
}

/// One raw line (SASL response, IDLE's DONE) without CRLF; `None` when it passed
/// `imap.max_line` (the rest of it is dropped).
async fn read_line(ctx: &Context, conn: &mut Conn<Stream>) -> Result<Option<Vec<u8>>, End> {
    let max = ctx.config.imap.max_line;
    let mut too_long = false;
    loop {
        if let Some(lf) = memchr::memchr(b'\n', conn.buffered()) {
            let line = conn.buffered().get(..lf).unwrap_or(&[]);
            let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
            conn.consume(lf + 1);
            return Ok(if too_long { None } else { Some(line) });
        }
        if conn.buffered().len() > max {
            too_long = true;
            let n = conn.buffered().len();
            conn.consume(n);
        }
        if conn.flush().await.is_err() {
            return Err(End::Gone);
        }
        conn.fill().await.map_err(read_end)?;
    }
}

/// IDLE (RFC 2177; RFC 9051 §6.3.13): push updates as the change feed wakes us; `DONE`
/// ends it and whatever the client pipelined after it stays buffered for the framer.
async fn idle(
    ctx: &Context,
    session: &mut Session,
    conn: &mut Conn<Stream>,
    tag: &str,
) -> Result<(), End> {
    conn.queue(b"+ idling\r\n");
    // Anything that changed before IDLE began is sent at once.
    let mut out = std::mem::take(conn.out());
    session.idle_updates(&mut out).await;
    *conn.out() = out;
    if session.closing() {
        return Err(End::Close);
    }
    let feed = session.feed();
    let deadline = Instant::now() + Duration::from_secs(ctx.config.imap.idle_timeout_secs);
    conn.set_timeout(KEEPALIVE);
    let result = loop {
        if let Some(lf) = memchr::memchr(b'\n', conn.buffered()) {
            let line = conn.buffered().get(..lf).unwrap_or(&[]);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let done = line.eq_ignore_ascii_case(b"DONE");
            conn.consume(lf + 1);
            let mut out = std::mem::take(conn.out());
            if done {
                session.idle_done(tag, &mut out).await;
            } else {
                Status::bad("Expected DONE").encode(Some(tag), &mut out);
            }
            *conn.out() = out;
            if session.closing() {
                break Err(End::Close);
            }
            break Ok(());
        }
        if conn.buffered().len() > 1024 {
            Status::bad("Expected DONE").encode(Some(tag), conn.out());
            let n = conn.buffered().len();
            conn.consume(n);
            break Ok(());
        }
        if conn.flush().await.is_err() {
            break Err(End::Gone);
        }
        let woke = match &feed {
            Some(rx) => conn.fill_or(rx.recv()).await,
            None => Ok(conn.fill().await),
        };
        match woke {
            Ok(Ok(_)) => {}
            Ok(Err(ReadError::Timeout)) => {
                if Instant::now() >= deadline {
                    break Err(End::Bye("IDLE too long"));
                }
                conn.queue(b"* OK Still here\r\n");
            }
            Ok(Err(e)) => break Err(read_end(e)),
            Err(Ok(change)) => {
                session.note_change(&change);
                let mut out = std::mem::take(conn.out());
                session.idle_updates(&mut out).await;
                *conn.out() = out;
                if session.closing() {
                    break Err(End::Close);
                }
            }
            Err(Err(_)) => {
                // The feed closed (store shutting down): keep waiting for input only.
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    };
    conn.set_timeout(timeout(ctx, session));
    result
}
