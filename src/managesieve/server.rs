//! The ManageSieve connection driver: sockets, the Authenticator, the store and the
//! checker around the pure [`Session`]. Listeners use the shared accept loop
//! ([`crate::net::accept`]); there is no implicit-TLS port (RFC 5804 §2.2: STARTTLS).

use std::sync::Arc;
use std::time::Duration;

use super::SieveChecker;
use super::grammar::Parser;
use super::session::{Done, LoginOutcome, Op, OpError, Options, Session, Step, answer};
use crate::auth::AuthError;
use crate::imap::framing::Framed;
use crate::net::Context;
use crate::net::accept::{Accepted, Protocol};
use crate::net::conn::{Conn, ReadError};
use crate::net::limits::{LimitError, Service};
use crate::net::stream::{Peer, Stream};
use crate::store::SieveLimits;

/// The per-user limits from the config.
pub fn limits(ctx: &Context) -> SieveLimits {
    let c = &ctx.config.managesieve;
    SieveLimits {
        max_script_bytes: c.max_script_bytes,
        max_scripts: c.max_scripts,
    }
}

/// ManageSieve on TCP (`managesieve.listen`, STARTTLS only: RFC 5804 §2.2). Its
/// sessions share the checker that compiles uploaded scripts.
#[derive(Clone)]
pub struct ManageSieve {
    checker: Arc<dyn SieveChecker>,
}

impl ManageSieve {
    pub fn new(checker: Arc<dyn SieveChecker>) -> ManageSieve {
        ManageSieve { checker }
    }
}

impl Protocol for ManageSieve {
    const SERVICE: Service = Service::ManageSieve;

    /// Over a connection limit: `BYE` naming the limit and its config key, then close.
    fn refusal(_ctx: &Context, why: LimitError) -> Vec<u8> {
        super::grammar::Response::bye(&format!("{why}, try again later")).to_bytes()
    }

    async fn serve(self, c: Accepted) {
        handle(&c.ctx, self.checker, c.stream, c.peer).await;
        drop(c.slot);
    }
}

/// Serves one connection to the end.
pub async fn handle(ctx: &Context, checker: Arc<dyn SieveChecker>, stream: Stream, peer: Peer) {
    let limits = limits(ctx);
    let ext_checker = checker.clone();
    let extensions = smol::unblock(move || ext_checker.extensions()).await;
    let mut session = Session::new(Options {
        plaintext: ctx.config.auth.plaintext,
        peer,
        extensions,
        limits,
    });
    let mut parser = Parser::new(limits.max_script_bytes);
    let mut conn = Conn::new(stream, ctx.limits.preauth_timeout(), ctx.shutdown.clone());
    let idle = Duration::from_secs(ctx.config.managesieve.timeout_secs);
    conn.queue(&session.greeting());
    if conn.flush().await.is_err() {
        return;
    }
    loop {
        let step = match parser.next(conn.buffered()) {
            Framed::Command(n) => {
                let step = session.input(conn.buffered().get(..n).unwrap_or(&[]));
                conn.consume(n);
                step
            }
            Framed::Refused { consume, error, .. } => {
                conn.consume(consume);
                session.refused(error)
            }
            Framed::Skip(n) => {
                conn.consume(n);
                continue;
            }
            Framed::Fatal => Step::Close(session.fatal()),
            Framed::Incomplete | Framed::Continue => {
                if conn.flush().await.is_err() {
                    return;
                }
                match conn.fill().await {
                    Ok(_) => continue,
                    Err(ReadError::Timeout) => {
                        conn.queue(
                            &super::grammar::Response::bye("Disconnected for inactivity")
                                .to_bytes(),
                        );
                        let _ = conn.flush().await;
                        return;
                    }
                    Err(ReadError::Shutdown) => {
                        conn.queue(
                            &super::grammar::Response::bye("Server shutting down").to_bytes(),
                        );
                        let _ = conn.flush().await;
                        return;
                    }
                    Err(_) => return,
                }
            }
        };
        if !apply(ctx, &checker, peer, &mut session, &mut conn, step).await {
            return;
        }
        if matches!(session.state(), super::session::State::Auth { .. }) {
            conn.set_timeout(idle);
        } else {
            conn.set_timeout(ctx.limits.preauth_timeout());
        }
    }
}

/// Carries out one step; false when the connection is to be closed.
async fn apply(
    ctx: &Context,
    checker: &Arc<dyn SieveChecker>,
    peer: Peer,
    session: &mut Session,
    conn: &mut Conn<Stream>,
    mut step: Step,
) -> bool {
    loop {
        match step {
            Step::Reply(bytes) => {
                conn.queue(&bytes);
                return true;
            }
            Step::Authenticate(creds) => {
                // Failures are slowed down by the Authenticator's throttle.
                let outcome = match ctx
                    .auth
                    .authenticate(&creds.login, &creds.password, peer)
                    .await
                {
                    Ok(user) => LoginOutcome::Ok(user.name),
                    Err(AuthError::Failed) => LoginOutcome::Failed,
                    Err(AuthError::Throttled { .. }) => LoginOutcome::Throttled,
                    Err(AuthError::Temporary(e)) => {
                        log::error!("managesieve: authentication: {e}");
                        LoginOutcome::Temporary
                    }
                };
                step = session.login(outcome);
            }
            Step::Run { user, op } => {
                let result = run(ctx, checker, &user, op).await;
                conn.queue(&answer(result));
                return true;
            }
            Step::StartTls(bytes) => {
                // RFC 5804 §2.2: OK, then the handshake; `start_tls` discards anything
                // pipelined in plaintext, and the session re-sends its capabilities.
                conn.queue(&bytes);
                return match conn.start_tls(&ctx.tls.acceptor()).await {
                    Ok(()) => {
                        conn.queue(&session.tls_started());
                        true
                    }
                    Err(e) => {
                        log::info!("managesieve: STARTTLS failed: {e}");
                        false
                    }
                };
            }
            Step::Close(bytes) => {
                conn.queue(&bytes);
                let _ = conn.flush().await;
                return false;
            }
        }
    }
}

/// Checks a script on the blocking pool (a plugin call may take its whole deadline).
async fn check(checker: &Arc<dyn SieveChecker>, script: String) -> Result<(), OpError> {
    let checker = checker.clone();
    smol::unblock(move || checker.check(&script))
        .await
        .map_err(OpError::Script)
}

/// One script operation of `user` (RFC 5804 §2.5-§2.12).
async fn run(
    ctx: &Context,
    checker: &Arc<dyn SieveChecker>,
    user: &str,
    op: Op,
) -> Result<Done, OpError> {
    let store = ctx.store();
    let limits = limits(ctx);
    let done = match op {
        Op::HaveSpace { name, size } => store
            .sieve_have_space(user, &name, u64::from(size), limits)
            .await
            .map(|()| Done::Ok),
        Op::PutScript { name, script } => {
            crate::store::check_sieve_name(&name).map_err(OpError::Store)?;
            check(checker, script.clone()).await?;
            store
                .sieve_put(user, &name, &script, limits)
                .await
                .map(|()| Done::Ok)
        }
        Op::CheckScript { script } => {
            check(checker, script).await?;
            Ok(Done::Ok)
        }
        Op::ListScripts => store.sieve_list(user).await.map(Done::List),
        Op::SetActive { name } => store
            .sieve_set_active(user, name.as_deref())
            .await
            .map(|()| Done::Ok),
        Op::GetScript { name } => store.sieve_get(user, &name).await.map(Done::Script),
        Op::DeleteScript { name } => store.sieve_delete(user, &name).await.map(|()| Done::Ok),
        Op::RenameScript { from, to } => store
            .sieve_rename(user, &from, &to)
            .await
            .map(|()| Done::Ok),
    };
    done.map_err(OpError::Store)
}
