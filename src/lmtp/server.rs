//! The LMTP connection driver: sockets and storage around the pure [`Session`].
//!
//! Replies to pipelined commands are sent together once no complete command is left in
//! the input (RFC 2920 §3); after DATA, one reply per accepted recipient is sent only when
//! the delivery has committed (RFC 2033 §4.2).
//!
//! TCP and Unix-socket connections share `lmtp.max_connections` and nothing else: IMAP
//! and POP3 clients never make the local MTA wait, whatever address they come from.

use crate::contracts::UserId;
use std::sync::Arc;
use std::time::Duration;

use smol::Executor;
use smol::io::{AsyncRead, AsyncWrite};
use smol::net::unix::UnixListener;

use super::{
    DataDecoder, DataState, Mailbox, RcptOutcome, RecipientCheck, Reply, ReversePath, Session,
    Step, parse_command,
};
use crate::contracts::Target;
use crate::delivery::{Incoming, Outcome, Trace, TraceProtocol};
use crate::net::Context;
use crate::net::accept::{self, Accepted, Protocol};
use crate::net::conn::{Conn, NextLine};
use crate::net::limits::{ConnSlot, LimitError, Service};
use crate::net::stream::{Peer, Stream};
use crate::store::StoreError;

/// LMTP on TCP (`lmtp.listen`; limits and tasks: [`accept::accept_tcp`]).
#[derive(Debug, Clone, Copy)]
pub struct Lmtp;

impl Protocol for Lmtp {
    const SERVICE: Service = Service::Lmtp;

    /// Over a connection limit: `421 4.7.0` (RFC 5321 §3.8, RFC 3463 §3.8) naming the
    /// limit and its config key, then close.
    fn refusal(ctx: &Context, why: LimitError) -> Vec<u8> {
        let mut out = Vec::new();
        let text = format!("4.7.0 {} {why}, try again later", ctx.config.hostname);
        Reply::plain(421, vec![text]).encode(&mut out);
        out
    }

    async fn serve(self, c: Accepted) {
        handle(&c.ctx, c.stream, c.peer, Some(c.slot)).await;
    }
}

/// Accepts Unix-socket connections until shutdown.
pub async fn accept_unix(ctx: Context, listener: UnixListener, ex: Arc<Executor<'static>>) {
    accept::accept_loop(
        &ctx,
        "lmtp",
        || listener.accept(),
        |stream, _| {
            let ctx = ctx.clone();
            ex.spawn(async move {
                let _guard = ctx.tracker.enter();
                let peer = Peer {
                    ip: None,
                    tls: false,
                };
                match ctx.limits.try_connect(Service::Lmtp, None) {
                    Ok(slot) => handle(&ctx, Stream::Unix(stream), peer, Some(slot)).await,
                    Err(why) => {
                        log::info!("lmtp: connection refused: {why}");
                        accept::refuse(stream, Lmtp::refusal(&ctx, why)).await;
                    }
                }
            })
            .detach();
        },
    )
    .await;
}

/// The user a recipient address names: the local part, without a `+detail` (RFC 5233).
/// Any domain is accepted: the MTA decides which domains are local.
fn user_part(mb: &Mailbox) -> String {
    let local = mb.local_part_unquoted();
    match local.split_once('+') {
        Some((user, _)) if !user.is_empty() => user.to_string(),
        _ => local,
    }
}

async fn lookup(ctx: &Context, mb: &Mailbox) -> Result<Option<(UserId, String)>, StoreError> {
    let name = user_part(mb);
    Ok(ctx
        .store()
        .find_user(&name, "")
        .await?
        .map(|u| (u.id, u.name)))
}

fn rcpt_outcome(o: Outcome) -> RcptOutcome {
    match o {
        Outcome::Stored(_) | Outcome::Discarded => RcptOutcome::Delivered,
        Outcome::TooBig => RcptOutcome::TooBig,
        // RFC 3463 §3.2 X.1.1: deleted between RCPT and the end of DATA.
        Outcome::NoSuchUser => RcptOutcome::UnknownUser,
        Outcome::Loop => RcptOutcome::Rejected {
            code: 554,
            enhanced: (5, 4, 6),
            text: "Mail loop: already delivered to this recipient".into(),
        },
        Outcome::Rejected { permanent, text } => RcptOutcome::Rejected {
            code: if permanent { 550 } else { 450 },
            enhanced: if permanent { (5, 7, 1) } else { (4, 7, 1) },
            text,
        },
        // RFC 3463 §3.3: X.2.2 "mailbox full"; the policy's text says why.
        Outcome::OverQuota { permanent, text } => RcptOutcome::Rejected {
            code: if permanent { 552 } else { 452 },
            enhanced: if permanent { (5, 2, 2) } else { (4, 2, 2) },
            text,
        },
        Outcome::Failed(StoreError::DiskFull) => RcptOutcome::DiskFull,
        Outcome::NoSuchMailbox | Outcome::Failed(_) => RcptOutcome::StorageFailure,
    }
}

fn queue(conn: &mut Conn<impl AsyncRead + AsyncWrite + Unpin>, reply: &Reply) {
    reply.encode(conn.out());
}

/// Serves one LMTP connection to the end; `slot` (from accept) is given back before the
/// last reply.
pub async fn handle(ctx: &Context, stream: Stream, mut peer: Peer, slot: Option<ConnSlot>) {
    let cfg = &ctx.config.lmtp;
    let max_size = ctx.pipeline.max_size();
    let offer_tls = cfg.starttls && matches!(stream, Stream::Tcp(_));
    let mut session =
        Session::new(&ctx.config.hostname, max_size, cfg.max_recipients).with_starttls(offer_tls);
    let mut conn = Conn::new(
        stream,
        Duration::from_secs(cfg.timeout_secs),
        ctx.shutdown.clone(),
    )
    .with_slot(slot);
    queue(&mut conn, &session.greeting());
    if conn.flush().await.is_err() {
        return;
    }
    loop {
        let line = match conn.next_line(cfg.max_line).await {
            NextLine::Line(line) => line,
            NextLine::TooLong => {
                queue(&mut conn, &Reply::new(500, (5, 5, 2), "Line too long"));
                if !conn.skip_line().await {
                    return;
                }
                continue;
            }
            NextLine::Timeout => {
                queue(
                    &mut conn,
                    &Reply::new(421, (4, 4, 2), "Idle too long, closing"),
                );
                conn.end().await;
                return;
            }
            NextLine::Shutdown => {
                queue(&mut conn, &Reply::new(421, (4, 3, 2), "Shutting down"));
                conn.end().await;
                return;
            }
            NextLine::Gone => return,
        };
        let _timer = crate::metrics::command(crate::metrics::CommandProtocol::Lmtp, &line);
        match session.handle(parse_command(&line)) {
            Step::Reply(r) => queue(&mut conn, &r),
            Step::CheckRecipient(mb) => {
                let check = match lookup(ctx, &mb).await {
                    Ok(Some(_)) => RecipientCheck::Ok,
                    Ok(None) => RecipientCheck::UnknownUser,
                    Err(e) => {
                        log::error!("lmtp: recipient lookup: {e}");
                        RecipientCheck::TempFail
                    }
                };
                let r = session.recipient_result(mb, check);
                queue(&mut conn, &r);
            }
            Step::StartData(r) => {
                queue(&mut conn, &r);
                if conn.flush().await.is_err() {
                    return;
                }
                let mut decoder = DataDecoder::new(max_size);
                loop {
                    let (used, state) = decoder.feed(conn.buffered());
                    conn.consume(used);
                    if matches!(state, DataState::Done) {
                        break;
                    }
                    // A connection that drops mid-DATA delivers nothing (PROTOCOL.md §3.11).
                    if conn.fill().await.is_err() {
                        return;
                    }
                }
                let too_big = decoder.too_big();
                let raw = decoder.take_message();
                let Some(txn) = session.data_done(too_big) else {
                    continue;
                };
                let outcomes = if txn.too_big {
                    vec![RcptOutcome::TooBig; txn.recipients.len()]
                } else {
                    deliver(ctx, &txn, raw, peer).await
                };
                for r in session.delivery_replies(&outcomes) {
                    queue(&mut conn, &r);
                }
            }
            Step::Close(r) => {
                queue(&mut conn, &r);
                conn.end().await;
                return;
            }
            // RFC 3207 §4.2: the 220 in plaintext, then everything already buffered is
            // dropped (start_tls does it) and the session starts over.
            Step::StartTls(r) => {
                queue(&mut conn, &r);
                match conn.start_tls(&ctx.tls.acceptor()).await {
                    Ok(()) => {
                        session.tls_started();
                        peer.tls = true;
                    }
                    Err(e) => {
                        log::info!("lmtp: STARTTLS from {peer}: {e}");
                        return;
                    }
                }
            }
        }
    }
}

async fn deliver(
    ctx: &Context,
    txn: &super::Transaction,
    raw: Vec<u8>,
    peer: Peer,
) -> Vec<RcptOutcome> {
    let mut outcomes: Vec<Option<RcptOutcome>> = vec![None; txn.recipients.len()];
    let mut targets = Vec::new();
    let mut slots = Vec::new();
    for (i, mb) in txn.recipients.iter().enumerate() {
        match lookup(ctx, mb).await {
            Ok(Some((id, name))) => {
                slots.push(i);
                targets.push(Target::new(id, name, mb.as_str().to_string()));
            }
            Ok(None) => {
                if let Some(o) = outcomes.get_mut(i) {
                    *o = Some(RcptOutcome::UnknownUser);
                }
            }
            Err(e) => {
                log::error!("lmtp: recipient lookup: {e}");
                if let Some(o) = outcomes.get_mut(i) {
                    *o = Some(RcptOutcome::StorageFailure);
                }
            }
        }
    }
    let mail_from = match &txn.mail_from {
        ReversePath::Null => Some(String::new()),
        ReversePath::Mailbox(m) => Some(m.as_str().to_string()),
    };
    let incoming = Incoming {
        raw,
        mail_from,
        trace: Some(Trace {
            // RFC 3848: "LMTPS" when the transfer was protected by STARTTLS.
            protocol: if peer.tls {
                TraceProtocol::Lmtps
            } else {
                TraceProtocol::Lmtp
            },
            helo: Some(txn.client.clone()),
            peer: peer.ip.map(|ip| ip.to_string()),
        }),
        internal_date: None,
    };
    let results = ctx.pipeline.deliver(incoming, targets).await;
    for (slot, o) in slots.into_iter().zip(results) {
        if let Outcome::Failed(e) = &o {
            log::error!("lmtp: delivery failed: {e}");
        }
        if let Some(out) = outcomes.get_mut(slot) {
            *out = Some(rcpt_outcome(o));
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(RcptOutcome::StorageFailure))
        .collect()
}
