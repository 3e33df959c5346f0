//! The POP3 connection driver: sockets, storage and the maildrop lock around the pure
//! [`Session`].
//!
//! Replies to pipelined commands are sent together once no complete command is left in
//! the input (RFC 2449 §6.6). A connection that ends without QUIT (drop, autologout,
//! shutdown) never reaches UPDATE, so nothing is deleted (RFC 1939 §6).

use crate::contracts::{MailboxId, Uid, UserId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::grammar::{encode_message, pop3_size, uidl_base};
use super::session::{LoginOutcome, Maildrop, Message, Options, Pop3Error, Session, Step};
use crate::auth::AuthError;
use crate::config::DelePolicy;
use crate::net::Context;
use crate::net::accept::{Accepted, Protocol};
use crate::net::conn::{Conn, NextLine};
use crate::net::limits::{ConnSlot, LimitError, Service};
use crate::net::stream::{Peer, Stream};
use crate::store::Pop3Removal;

/// Flush the output once this much is queued, so pipelined RETRs do not pile up.
const FLUSH_AT: usize = 64 * 1024;

/// The exclusive maildrop locks (RFC 1939 §8) and the last login times for
/// LOGIN-DELAY, shared by all POP3 connections of this server. IMAP does not take them.
#[derive(Clone, Default)]
pub struct Locks(Arc<Mutex<LockTable>>);

#[derive(Default)]
struct LockTable {
    held: HashMap<UserId, ()>,
    last_login: HashMap<UserId, Instant>,
}

/// Releases the maildrop lock when dropped (the connection's end, however it ends).
pub struct LockGuard {
    locks: Locks,
    user: UserId,
    /// The session's place under `connections.max_per_user`, released with the lock.
    _slot: Option<crate::net::limits::UserSlot>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Ok(mut t) = self.locks.0.lock() {
            t.held.remove(&self.user);
        }
    }
}

impl Locks {
    /// Takes `user`'s maildrop lock, refusing a login within `delay` of the last one.
    fn acquire(&self, user: UserId, delay: Option<Duration>) -> Result<LockGuard, LoginOutcome> {
        let mut t = self.0.lock().map_err(|_| LoginOutcome::Temporary)?;
        if t.held.contains_key(&user) {
            return Err(LoginOutcome::InUse);
        }
        let now = Instant::now();
        if let (Some(d), Some(last)) = (delay, t.last_login.get(&user))
            && now.saturating_duration_since(*last) < d
        {
            return Err(LoginOutcome::TooSoon);
        }
        t.held.insert(user, ());
        t.last_login.insert(user, now);
        Ok(LockGuard {
            locks: self.clone(),
            user,
            _slot: None,
        })
    }
}

/// POP3 on TCP: plain (`pop3`, STLS offered) and implicit TLS (`pop3s`, RFC 8314 §3.3).
/// Every session takes the maildrop locks (RFC 1939 §8) both kinds of listener share.
#[derive(Clone, Default)]
pub struct Pop3 {
    locks: Locks,
}

impl Protocol for Pop3 {
    const SERVICE: Service = Service::Pop3;

    /// Over a connection limit: `-ERR [SYS/TEMP]` (RFC 3206 §4) naming the limit and its
    /// config key, then close.
    fn refusal(_ctx: &Context, why: LimitError) -> Vec<u8> {
        let mut out = Vec::new();
        super::grammar::Response::err(Some(super::grammar::Code::SysTemp), why.to_string())
            .encode(&mut out);
        out
    }

    async fn serve(self, c: Accepted) {
        handle(&c.ctx, &self.locks, c.stream, c.peer, Some(c.slot)).await;
    }
}

/// Builds the maildrop snapshot: INBOX in UID order, each message's POP3 size and
/// UIDL: the one kept by an import, or computed from its bytes (exact duplicates
/// numbered, see docs/decisions.md).
async fn load_maildrop(ctx: &Context, user: UserId) -> Result<Maildrop, LoginOutcome> {
    let store = ctx.store();
    let inbox = match store.mailbox(user, "INBOX").await {
        Ok(Some(mb)) => mb,
        Ok(None) => {
            log::error!("pop3: user {user} has no INBOX");
            return Err(LoginOutcome::Temporary);
        }
        Err(e) => {
            log::error!("pop3: reading INBOX: {e}");
            return Err(LoginOutcome::Temporary);
        }
    };
    let entries = store
        .pop3_scan(inbox.id, |bytes, date| {
            (pop3_size(bytes), uidl_base(bytes, date))
        })
        .await;
    let entries = match entries {
        Ok(e) => e,
        Err(e) => {
            log::error!("pop3: scanning INBOX: {e}");
            return Err(LoginOutcome::Temporary);
        }
    };
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut messages = Vec::with_capacity(entries.len());
    for e in entries {
        let (size, base) = e.scanned;
        // A UIDL kept from the server the mail was moved from wins (no re-download).
        let uidl = match e.kept_uidl {
            Some(kept) => kept,
            None => {
                let count = seen.entry(base.clone()).or_insert(0);
                *count = count.saturating_add(1);
                if *count == 1 {
                    base
                } else {
                    format!("{base}-{count}")
                }
            }
        };
        messages.push(Message {
            uid: e.uid,
            size,
            uidl,
            retrieved: e.pop3_retrieved.is_some(),
            deleted: false,
        });
    }
    Ok(Maildrop {
        mailbox: inbox.id,
        messages,
    })
}

async fn login(
    ctx: &Context,
    locks: &Locks,
    peer: Peer,
    login: &str,
    password: &str,
) -> (LoginOutcome, Option<LockGuard>) {
    let user = match ctx.auth.authenticate(login, password, peer).await {
        Ok(u) => u,
        Err(AuthError::Failed) => return (LoginOutcome::Failed, None),
        Err(AuthError::Throttled { .. }) => return (LoginOutcome::Throttled, None),
        Err(AuthError::Temporary(e)) => {
            log::error!("pop3: authentication: {e}");
            return (LoginOutcome::Temporary, None);
        }
    };
    let delay = ctx
        .config
        .pop3
        .login_delay_secs
        .map(|s| Duration::from_secs(u64::from(s)));
    let Ok(slot) = ctx.limits.try_login(user.id) else {
        log::info!("pop3: {} refused: too many sessions", user.name);
        return (LoginOutcome::TooManySessions, None);
    };
    let mut guard = match locks.acquire(user.id, delay) {
        Ok(g) => g,
        Err(outcome) => return (outcome, None),
    };
    guard._slot = Some(slot);
    match load_maildrop(ctx, user.id).await {
        Ok(maildrop) => (
            LoginOutcome::Ok {
                user: user.name,
                maildrop,
            },
            Some(guard),
        ),
        Err(outcome) => (outcome, None),
    }
}

fn removal(policy: &DelePolicy) -> Pop3Removal {
    match policy {
        DelePolicy::Expunge => Pop3Removal::Expunge,
        DelePolicy::Hide => Pop3Removal::Hide,
        DelePolicy::Move(to) => Pop3Removal::Move(to.clone()),
    }
}

/// Serves one POP3 connection to the end; `slot` (from accept) is given back before the
/// last reply, or with the socket.
pub async fn handle(
    ctx: &Context,
    locks: &Locks,
    stream: Stream,
    peer: Peer,
    slot: Option<ConnSlot>,
) {
    let mut held = Held {
        locks: locks.clone(),
        lock: None,
        retrieved: Retrievals::default(),
    };
    serve(ctx, stream, peer, slot, &mut held).await;
    // However the connection ended (QUIT has written them already). The socket and its
    // slot are gone by now; the maildrop lock is held until these are written.
    held.retrieved.write(ctx).await;
}

/// What a connection holds besides its session: the server's maildrop locks, its own
/// (from login to the end, RFC 1939 §8) and the retrievals not yet written.
struct Held {
    locks: Locks,
    lock: Option<LockGuard>,
    retrieved: Retrievals,
}

/// Whole-message retrievals not yet written to the store: the first-retrieval time that
/// retention rules read (`MessageRecord::pop3_retrieved`). Writing one per RETR cost an
/// fsynced commit per message; they are written together at QUIT, every
/// [`Retrievals::MAX`], and when the connection ends. A crash loses only the pending
/// times, which the next RETR of those messages records again.
#[derive(Default)]
struct Retrievals {
    mailbox: MailboxId,
    uids: Vec<Uid>,
    /// When the first pending retrieval happened (unix seconds): the time written for
    /// all of them, a few seconds early at most.
    since: i64,
}

impl Retrievals {
    const MAX: usize = 256;

    async fn add(&mut self, ctx: &Context, mailbox: MailboxId, uid: Uid) {
        if self.mailbox != mailbox {
            self.write(ctx).await;
            self.mailbox = mailbox;
        }
        if self.uids.is_empty() {
            self.since = crate::store::now();
        }
        self.uids.push(uid);
        if self.uids.len() >= Self::MAX {
            self.write(ctx).await;
        }
    }

    async fn write(&mut self, ctx: &Context) {
        if self.uids.is_empty() {
            return;
        }
        let uids = std::mem::take(&mut self.uids);
        let store = ctx.store();
        if let Err(e) = store
            .set_pop3_retrieved(self.mailbox, uids, self.since)
            .await
        {
            log::warn!("pop3: recording retrievals: {e}");
        }
    }
}

async fn serve(ctx: &Context, stream: Stream, peer: Peer, slot: Option<ConnSlot>, held: &mut Held) {
    let cfg = &ctx.config.pop3;
    let mut session = Session::new(Options {
        plaintext: ctx.config.auth.plaintext,
        peer,
        expire_days: cfg.expire_days,
        login_delay: cfg.login_delay_secs,
        max_line: cfg.max_line,
    });
    let mut conn = Conn::new(
        stream,
        Duration::from_secs(cfg.timeout_secs),
        ctx.shutdown.clone(),
    )
    .with_slot(slot);
    conn.queue(&session.greeting());
    if conn.flush().await.is_err() {
        return;
    }
    loop {
        let line = match conn.next_line(session.max_line()).await {
            NextLine::Line(line) => line,
            NextLine::TooLong => {
                let step = session.too_long();
                if !apply(ctx, peer, &mut session, &mut conn, held, step).await {
                    return;
                }
                if !conn.skip_line().await {
                    return;
                }
                continue;
            }
            NextLine::Timeout => {
                conn.queue(&Pop3Error::Timeout.encode());
                conn.end().await;
                return;
            }
            NextLine::Shutdown => {
                conn.queue(&Pop3Error::ShuttingDown.encode());
                conn.end().await;
                return;
            }
            NextLine::Gone => return,
        };
        let _timer = crate::metrics::command(crate::metrics::CommandProtocol::Pop3, &line);
        let step = session.line(&line);
        if !apply(ctx, peer, &mut session, &mut conn, held, step).await {
            return;
        }
        if conn.out().len() >= FLUSH_AT && conn.flush().await.is_err() {
            return;
        }
    }
}

/// Carries out one step; false when the connection is to be closed.
async fn apply(
    ctx: &Context,
    peer: Peer,
    session: &mut Session,
    conn: &mut Conn<Stream>,
    held: &mut Held,
    mut step: Step,
) -> bool {
    loop {
        match step {
            Step::Reply(bytes) => {
                conn.queue(&bytes);
                return true;
            }
            Step::Authenticate {
                login: name,
                password,
            } => {
                // Failures are slowed down by the Authenticator's throttle (RFC 1939 §13).
                let (outcome, guard) = login(ctx, &held.locks, peer, &name, &password).await;
                held.lock = guard;
                step = session.login(outcome);
            }
            Step::Send {
                head,
                mailbox,
                uid,
                top,
                record,
            } => {
                match ctx.store().message_bytes(mailbox, uid).await {
                    Ok(Some(bytes)) => {
                        conn.queue(&head);
                        let whole = encode_message(&bytes, top, conn.out());
                        if record && whole {
                            held.retrieved.add(ctx, mailbox, uid).await;
                            session.recorded(uid);
                        }
                    }
                    Ok(None) => conn.queue(&Pop3Error::Gone.encode()),
                    Err(e) => {
                        log::error!("pop3: reading message {uid}: {e}");
                        conn.queue(&Pop3Error::Temporary.encode());
                    }
                }
                return true;
            }
            Step::Update {
                mailbox,
                user,
                deleted,
            } => {
                // Durable before QUIT's +OK, like the deletions.
                held.retrieved.write(ctx).await;
                let ok = if deleted.is_empty() {
                    true
                } else {
                    let policy = removal(ctx.config.pop3.dele_policy(&user));
                    match ctx.store().pop3_update(mailbox, deleted, policy).await {
                        Ok(_) => true,
                        Err(e) => {
                            log::error!("pop3: UPDATE for {user}: {e}");
                            false
                        }
                    }
                };
                step = session.updated(ok);
            }
            Step::StartTls(bytes) => {
                // RFC 2595 §4: `+OK`, then the handshake; `start_tls` discards any
                // plaintext pipelined after STLS, `tls_started` forgets any USER.
                conn.queue(&bytes);
                return match conn.start_tls(&ctx.tls.acceptor()).await {
                    Ok(()) => {
                        session.tls_started();
                        true
                    }
                    Err(e) => {
                        log::info!("pop3: STLS failed: {e}");
                        false
                    }
                };
            }
            Step::Close(bytes) => {
                // RFC 1939 §6: the lock (with the user's session slot) and the
                // connection's slot are released before the reply, so a client may
                // connect and log in again as soon as it has read it.
                held.lock = None;
                conn.queue(&bytes);
                conn.end().await;
                return false;
            }
        }
    }
}
