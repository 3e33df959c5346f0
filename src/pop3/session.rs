//! The POP3 session state machine (RFC 1939 §3-§7; RFC 2449; RFC 2595 §4; RFC 5034 §4).
//!
//! States own their data: [`State::Authorization`] (a pending USER name or SASL
//! exchange, failures so far), [`State::Transaction`] (the maildrop snapshot with its
//! deletion marks), and [`State::Update`] (after QUIT). No I/O here: the driver
//! ([`super::server`]) performs what a [`Step`] asks and reports back.
//!
//! The driver's loop, for each framed line: `match session.line(line)`:
//! - [`Step::Reply`]: write it;
//! - [`Step::Authenticate`]: check the credentials, take the maildrop lock, scan INBOX,
//!   then write what [`Session::login`] returns;
//! - [`Step::Send`]: write the `+OK` line, then the message (or `TOP`) with
//!   [`super::grammar::encode_message`]; if it is gone, write [`Pop3Error::Gone`];
//! - [`Step::Update`]: apply the deletions in one transaction, then write what
//!   [`Session::updated`] returns and close;
//! - [`Step::StartTls`]: write it, run the TLS handshake, call [`Session::tls_started`];
//! - [`Step::Close`]: write it and close (no UPDATE).

use super::grammar::{
    AuthStart, Code, Command, Response, SyntaxError, encode_lines, parse_command,
};
use crate::auth::sasl;
use crate::config::Plaintext;
use crate::contracts::{MailboxId, Uid};
use crate::net::stream::Peer;

/// After this many failed logins the connection is closed (RFC 1939 §13).
pub const MAX_AUTH_FAILURES: u32 = 5;

/// SASL responses may be this many times longer than a command line (RFC 5034 §4 has
/// no limit of its own; tokens of other mechanisms run to kilobytes).
pub const SASL_LINE_FACTOR: usize = 16;

/// What the session needs to know about its connection and the server's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub plaintext: Plaintext,
    /// Who is connected; `peer.tls` is true on implicit TLS and after STLS. STLS is
    /// offered whenever it is false: the server always has a certificate (its own
    /// self-signed one when none is configured).
    pub peer: Peer,
    /// `EXPIRE` in days; `None` for `NEVER` (RFC 2449 §6.7).
    pub expire_days: Option<u32>,
    /// `LOGIN-DELAY` in seconds (RFC 2449 §6.8).
    pub login_delay: Option<u32>,
    /// Longest command line.
    pub max_line: usize,
}

/// One message of the maildrop as fixed at login (RFC 1939 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub uid: Uid,
    /// Octets RETR sends ([`super::grammar::pop3_size`]).
    pub size: u64,
    pub uidl: String,
    /// Whether POP3 retrieved it before (so the time need not be recorded again).
    pub retrieved: bool,
    pub deleted: bool,
}

/// The snapshot a session works on: numbers are positions in `messages` plus one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maildrop {
    pub mailbox: MailboxId,
    pub messages: Vec<Message>,
}

/// How a login attempt ended, as the driver found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    Ok {
        user: String,
        maildrop: Maildrop,
    },
    /// Unknown user or wrong password.
    Failed,
    /// Another POP3 session holds the maildrop.
    InUse,
    /// The user logged in less than LOGIN-DELAY seconds ago.
    TooSoon,
    /// The user has `connections.max_per_user` IMAP/POP3 sessions already.
    TooManySessions,
    /// Too many failures from this address (the Authenticator's throttle).
    Throttled,
    /// The store could not be read.
    Temporary,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sasl {
    /// `AUTH PLAIN` sent `+ ` and waits for the response.
    Plain,
    /// `AUTH LOGIN` asked for the user name.
    LoginUser,
    /// `AUTH LOGIN` asked for the password.
    LoginPass(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Authorization {
    /// The name from a successful `USER`, waiting for `PASS`.
    user: Option<String>,
    sasl: Option<Sasl>,
    /// `UTF8` was given (RFC 6856 §2).
    utf8: bool,
    failures: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    user: String,
    maildrop: Maildrop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Authorization(Authorization),
    Transaction(Transaction),
    /// After QUIT in TRANSACTION; nothing more is read.
    Update,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Reply(Vec<u8>),
    Authenticate {
        login: String,
        password: String,
    },
    Send {
        /// The `+OK` line.
        head: Vec<u8>,
        mailbox: MailboxId,
        uid: Uid,
        /// `Some(k)` for `TOP n k`.
        top: Option<u32>,
        /// Record the first retrieval time if the whole message goes out.
        record: bool,
    },
    Update {
        mailbox: MailboxId,
        user: String,
        deleted: Vec<Uid>,
    },
    StartTls(Vec<u8>),
    Close(Vec<u8>),
}

/// Every `-ERR` a session sends, and its response code (RFC 2449 §8, RFC 3206): the one
/// error table of POP3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop3Error {
    Syntax(SyntaxError),
    /// A command that exists but not in this state (RFC 1939 §3).
    WrongState,
    NoSuchMessage,
    Deleted,
    PassWithoutUser,
    /// Login refused: plaintext is not allowed on this connection.
    PlaintextDisallowed,
    AuthFailed,
    AuthAborted,
    BadSaslResponse,
    UnknownMechanism,
    Apop,
    InUse,
    /// Over `connections.max_per_user`: `[IN-USE]`, as other sessions hold the account
    /// (RFC 2449 §8.1.1).
    TooManySessions,
    LoginDelay,
    Throttled,
    Temporary,
    /// The message was expunged (by IMAP) after the maildrop was fixed.
    Gone,
    TlsActive,
    UpdateFailed,
    Timeout,
    ShuttingDown,
}

impl Pop3Error {
    pub fn response(&self) -> Response {
        use Pop3Error as E;
        let (code, text) = match self {
            E::Syntax(SyntaxError::Empty) => (None, "Empty command"),
            E::Syntax(SyntaxError::BadByte) => (None, "Invalid characters in command"),
            E::Syntax(SyntaxError::Unknown) => (None, "Unknown command"),
            E::Syntax(SyntaxError::MissingArgument) => (None, "Missing argument"),
            E::Syntax(SyntaxError::ExtraArgument) => (None, "Too many arguments"),
            E::Syntax(SyntaxError::BadNumber) => (None, "Invalid number"),
            E::Syntax(SyntaxError::LineTooLong) => (None, "Line too long"),
            E::WrongState => (None, "Command not valid in this state"),
            E::NoSuchMessage => (None, "No such message"),
            E::Deleted => (None, "Message is deleted"),
            E::PassWithoutUser => (None, "Send USER first"),
            E::PlaintextDisallowed => (
                Some(Code::Auth),
                "Plaintext authentication disallowed on non-secure connections",
            ),
            E::AuthFailed => (Some(Code::Auth), "Authentication failed"),
            E::AuthAborted => (None, "Authentication aborted"),
            E::BadSaslResponse => (None, "Invalid SASL response"),
            E::UnknownMechanism => (None, "Unsupported authentication mechanism"),
            E::Apop => (None, "APOP is not supported"),
            E::InUse => (Some(Code::InUse), "Maildrop is locked by another session"),
            E::TooManySessions => (
                Some(Code::InUse),
                "Too many sessions for this user (connections.max_per_user)",
            ),
            E::LoginDelay => (Some(Code::LoginDelay), "Logged in too recently"),
            E::Throttled => (Some(Code::SysTemp), "Too many failed logins, try later"),
            E::Temporary => (Some(Code::SysTemp), "Temporary server failure, try later"),
            E::Gone => (
                Some(Code::SysTemp),
                "Message was removed by another session",
            ),
            E::TlsActive => (None, "TLS is already active"),
            E::UpdateFailed => (
                Some(Code::SysTemp),
                "Some deleted messages were not removed",
            ),
            E::Timeout => (None, "Disconnected for inactivity"),
            E::ShuttingDown => (Some(Code::SysTemp), "Server shutting down"),
        };
        Response::err(code, text)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.response().encode(&mut out);
        out
    }
}

fn ok(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Response::ok(text).encode(&mut out);
    out
}

fn err(e: Pop3Error) -> Step {
    Step::Reply(e.encode())
}

/// Decodes one SASL response line: base64, `=` for empty (RFC 5034 §4).
fn decode_b64(s: &str) -> Option<Vec<u8>> {
    sasl::decode_base64(s.trim_end().as_bytes()).ok()
}

fn utf8_of(raw: Vec<u8>) -> Option<String> {
    String::from_utf8(raw).ok().filter(|s| !s.is_empty())
}

pub struct Session {
    opts: Options,
    state: State,
}

impl Session {
    pub fn new(opts: Options) -> Session {
        Session {
            opts,
            state: State::Authorization(Authorization::default()),
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// The greeting (RFC 1939 §4). No APOP timestamp: APOP is not offered.
    pub fn greeting(&self) -> Vec<u8> {
        ok("nestbox POP3 server ready")
    }

    /// Whether USER/PASS and AUTH PLAIN/LOGIN are allowed on this connection.
    pub fn plaintext_allowed(&self) -> bool {
        crate::auth::plaintext_allowed(self.opts.plaintext, self.opts.peer)
    }

    /// The longest line to accept next: longer while a SASL exchange is running.
    pub fn max_line(&self) -> usize {
        match &self.state {
            State::Authorization(a) if a.sasl.is_some() => {
                self.opts.max_line.saturating_mul(SASL_LINE_FACTOR)
            }
            _ => self.opts.max_line,
        }
    }

    /// Failed logins so far, for the driver's slow-down.
    pub fn auth_failures(&self) -> u32 {
        match &self.state {
            State::Authorization(a) => a.failures,
            _ => 0,
        }
    }

    /// An over-long line: `-ERR`, and a SASL exchange in progress is aborted.
    pub fn too_long(&mut self) -> Step {
        if let State::Authorization(a) = &mut self.state
            && a.sasl.take().is_some()
        {
            return err(Pop3Error::AuthAborted);
        }
        err(Pop3Error::Syntax(SyntaxError::LineTooLong))
    }

    /// The STLS handshake succeeded (RFC 2595 §4): back to a fresh AUTHORIZATION state,
    /// forgetting any USER; the capabilities now reflect TLS.
    pub fn tls_started(&mut self) {
        self.opts.peer.tls = true;
        let failures = self.auth_failures();
        self.state = State::Authorization(Authorization {
            failures,
            ..Authorization::default()
        });
    }

    /// The CAPA response (RFC 2449 §5-§6, RFC 2595 §4, RFC 6856 §2).
    fn capa(&self) -> Vec<u8> {
        let mut lines: Vec<String> = vec!["TOP".into(), "UIDL".into()];
        let authorization = matches!(self.state, State::Authorization(_));
        if authorization && self.plaintext_allowed() {
            lines.push("USER".into());
            lines.push("SASL PLAIN LOGIN".into());
        }
        lines.push("RESP-CODES".into());
        lines.push("AUTH-RESP-CODE".into());
        lines.push("PIPELINING".into());
        match self.opts.expire_days {
            Some(d) => lines.push(format!("EXPIRE {d}")),
            None => lines.push("EXPIRE NEVER".into()),
        }
        if let Some(d) = self.opts.login_delay {
            lines.push(format!("LOGIN-DELAY {d}"));
        }
        if authorization && !self.opts.peer.tls {
            lines.push("STLS".into());
        }
        lines.push("UTF8".into());
        lines.push("IMPLEMENTATION nestbox".into());
        let mut out = ok("Capability list follows");
        encode_lines(lines.iter().map(String::as_str), &mut out);
        out
    }

    /// Handles one framed line: a command, or a SASL response while AUTH runs.
    pub fn line(&mut self, line: &[u8]) -> Step {
        if let State::Authorization(a) = &mut self.state
            && let Some(sasl) = a.sasl.take()
        {
            return Self::sasl_response(a, sasl, line);
        }
        match parse_command(line) {
            Ok(cmd) => self.command(cmd),
            Err(e) => err(Pop3Error::Syntax(e)),
        }
    }

    /// RFC 5034 §4: `*` aborts; otherwise a base64 response.
    fn sasl_response(a: &mut Authorization, sasl: Sasl, line: &[u8]) -> Step {
        let text = std::str::from_utf8(line).unwrap_or("");
        if sasl::is_abort(text.trim_end().as_bytes()) {
            return err(Pop3Error::AuthAborted);
        }
        let Some(raw) = decode_b64(text) else {
            return err(Pop3Error::BadSaslResponse);
        };
        match sasl {
            Sasl::Plain => match sasl::decode_plain(&raw) {
                Ok(c) => Step::Authenticate {
                    login: c.login,
                    password: c.password,
                },
                Err(_) => err(Pop3Error::BadSaslResponse),
            },
            Sasl::LoginUser => match utf8_of(raw) {
                Some(user) => {
                    a.sasl = Some(Sasl::LoginPass(user));
                    Step::Reply(b"+ UGFzc3dvcmQ6\r\n".to_vec())
                }
                None => err(Pop3Error::BadSaslResponse),
            },
            Sasl::LoginPass(login) => match utf8_of(raw) {
                Some(password) => Step::Authenticate { login, password },
                None => err(Pop3Error::BadSaslResponse),
            },
        }
    }

    fn command(&mut self, cmd: Command) -> Step {
        // Valid in every state (RFC 2449 §5, RFC 1939 §5-§6).
        match cmd {
            Command::Capa => return Step::Reply(self.capa()),
            Command::Quit => return self.quit(),
            _ => {}
        }
        let plaintext = self.plaintext_allowed();
        let opts_tls = self.opts.peer.tls;
        match &mut self.state {
            State::Authorization(a) => Self::authorization(a, cmd, plaintext, opts_tls),
            State::Transaction(t) => Self::transaction(t, cmd),
            State::Update => err(Pop3Error::WrongState),
        }
    }

    fn quit(&mut self) -> Step {
        match std::mem::replace(&mut self.state, State::Update) {
            // RFC 1939 §6: QUIT in TRANSACTION enters UPDATE.
            State::Transaction(t) => Step::Update {
                mailbox: t.maildrop.mailbox,
                user: t.user,
                deleted: t
                    .maildrop
                    .messages
                    .iter()
                    .filter(|m| m.deleted)
                    .map(|m| m.uid)
                    .collect(),
            },
            // RFC 1939 §4: QUIT in AUTHORIZATION just closes.
            _ => Step::Close(ok("nestbox POP3 server signing off")),
        }
    }

    /// AUTHORIZATION (RFC 1939 §4, §7; RFC 2595 §4; RFC 5034 §4; RFC 6856 §2).
    fn authorization(a: &mut Authorization, cmd: Command, plaintext: bool, tls: bool) -> Step {
        match cmd {
            Command::User(name) => {
                if !plaintext {
                    return err(Pop3Error::PlaintextDisallowed);
                }
                a.user = Some(name);
                Step::Reply(ok("Send PASS"))
            }
            Command::Pass(password) => {
                if !plaintext {
                    return err(Pop3Error::PlaintextDisallowed);
                }
                match a.user.take() {
                    Some(login) => Step::Authenticate { login, password },
                    None => err(Pop3Error::PassWithoutUser),
                }
            }
            Command::Apop => err(Pop3Error::Apop),
            Command::Auth(None) => {
                // The legacy mechanism listing (PROTOCOL.md §2.22).
                let mut out = ok("Mechanisms follow");
                let mechs: &[&str] = if plaintext { &["PLAIN", "LOGIN"] } else { &[] };
                encode_lines(mechs.iter().copied(), &mut out);
                Step::Reply(out)
            }
            Command::Auth(Some(AuthStart { mechanism, initial })) => {
                a.user = None;
                if mechanism != "PLAIN" && mechanism != "LOGIN" {
                    return err(Pop3Error::UnknownMechanism);
                }
                if !plaintext {
                    return err(Pop3Error::PlaintextDisallowed);
                }
                let sasl = if mechanism == "PLAIN" {
                    Sasl::Plain
                } else {
                    Sasl::LoginUser
                };
                match initial {
                    None => {
                        a.sasl = Some(sasl.clone());
                        Step::Reply(match sasl {
                            Sasl::Plain => b"+ \r\n".to_vec(),
                            _ => b"+ VXNlcm5hbWU6\r\n".to_vec(),
                        })
                    }
                    Some(ir) => Self::sasl_response(a, sasl, ir.as_bytes()),
                }
            }
            Command::Stls if tls => err(Pop3Error::TlsActive),
            Command::Stls => Step::StartTls(ok("Begin TLS negotiation")),
            Command::Utf8 => {
                a.utf8 = true;
                Step::Reply(ok("UTF8 enabled"))
            }
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top(..)
            | Command::Uidl(_)
            | Command::Capa
            | Command::Quit => err(Pop3Error::WrongState),
        }
    }

    /// The driver's answer to [`Step::Authenticate`].
    pub fn login(&mut self, outcome: LoginOutcome) -> Step {
        let State::Authorization(a) = &mut self.state else {
            return err(Pop3Error::WrongState);
        };
        let e = match outcome {
            LoginOutcome::Ok { user, maildrop } => {
                let n = maildrop.messages.len();
                let octets: u64 = maildrop.messages.iter().map(|m| m.size).sum();
                self.state = State::Transaction(Transaction { user, maildrop });
                return Step::Reply(ok(&format!("Maildrop has {n} messages ({octets} octets)")));
            }
            LoginOutcome::Failed => {
                a.failures = a.failures.saturating_add(1);
                if a.failures >= MAX_AUTH_FAILURES {
                    return Step::Close(Pop3Error::AuthFailed.encode());
                }
                Pop3Error::AuthFailed
            }
            LoginOutcome::InUse => Pop3Error::InUse,
            LoginOutcome::TooSoon => Pop3Error::LoginDelay,
            LoginOutcome::TooManySessions => Pop3Error::TooManySessions,
            LoginOutcome::Throttled => Pop3Error::Throttled,
            LoginOutcome::Temporary => Pop3Error::Temporary,
        };
        err(e)
    }

    /// TRANSACTION (RFC 1939 §5, §7).
    fn transaction(t: &mut Transaction, cmd: Command) -> Step {
        let drop = &mut t.maildrop;
        let live = |drop: &Maildrop, n: u32| -> Result<(usize, Message), Pop3Error> {
            let i = usize::try_from(n.saturating_sub(1)).map_err(|_| Pop3Error::NoSuchMessage)?;
            match drop.messages.get(i) {
                None => Err(Pop3Error::NoSuchMessage),
                Some(m) if m.deleted => Err(Pop3Error::Deleted),
                Some(m) => Ok((i, m.clone())),
            }
        };
        match cmd {
            Command::Stat => {
                let (n, octets) = drop
                    .messages
                    .iter()
                    .filter(|m| !m.deleted)
                    .fold((0u64, 0u64), |(n, o), m| (n + 1, o + m.size));
                Step::Reply(ok(&format!("{n} {octets}")))
            }
            Command::List(None) | Command::Uidl(None) => {
                let uidl = matches!(cmd, Command::Uidl(_));
                let lines: Vec<String> = drop
                    .messages
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| !m.deleted)
                    .map(|(i, m)| {
                        if uidl {
                            format!("{} {}", i + 1, m.uidl)
                        } else {
                            format!("{} {}", i + 1, m.size)
                        }
                    })
                    .collect();
                let mut out = ok(if uidl {
                    "Unique-ID listing follows"
                } else {
                    "Scan listing follows"
                });
                encode_lines(lines.iter().map(String::as_str), &mut out);
                Step::Reply(out)
            }
            Command::List(Some(n)) => match live(drop, n) {
                Ok((_, m)) => Step::Reply(ok(&format!("{n} {}", m.size))),
                Err(e) => err(e),
            },
            Command::Uidl(Some(n)) => match live(drop, n) {
                Ok((_, m)) => Step::Reply(ok(&format!("{n} {}", m.uidl))),
                Err(e) => err(e),
            },
            Command::Retr(n) => match live(drop, n) {
                Ok((_, m)) => Step::Send {
                    head: ok(&format!("{} octets", m.size)),
                    mailbox: drop.mailbox,
                    uid: m.uid,
                    top: None,
                    record: !m.retrieved,
                },
                Err(e) => err(e),
            },
            Command::Top(n, k) => match live(drop, n) {
                Ok((_, m)) => Step::Send {
                    head: ok("Top of message follows"),
                    mailbox: drop.mailbox,
                    uid: m.uid,
                    top: Some(k),
                    record: !m.retrieved,
                },
                Err(e) => err(e),
            },
            Command::Dele(n) => match live(drop, n) {
                Ok((i, _)) => {
                    if let Some(m) = drop.messages.get_mut(i) {
                        m.deleted = true;
                    }
                    Step::Reply(ok(&format!("Message {n} deleted")))
                }
                Err(e) => err(e),
            },
            Command::Noop => Step::Reply(ok("")),
            Command::Rset => {
                for m in &mut drop.messages {
                    m.deleted = false;
                }
                let n = drop.messages.len();
                Step::Reply(ok(&format!("Maildrop has {n} messages")))
            }
            Command::User(_)
            | Command::Pass(_)
            | Command::Apop
            | Command::Auth(_)
            | Command::Stls
            | Command::Utf8
            | Command::Capa
            | Command::Quit => err(Pop3Error::WrongState),
        }
    }

    /// The driver recorded a whole-message retrieval of `uid`: later RETRs need not.
    pub fn recorded(&mut self, uid: Uid) {
        if let State::Transaction(t) = &mut self.state
            && let Some(m) = t.maildrop.messages.iter_mut().find(|m| m.uid == uid)
        {
            m.retrieved = true;
        }
    }

    /// The driver's answer to [`Step::Update`] (RFC 1939 §6): the final reply.
    pub fn updated(&mut self, ok_update: bool) -> Step {
        if ok_update {
            Step::Close(ok("nestbox POP3 server signing off"))
        } else {
            Step::Close(Pop3Error::UpdateFailed.encode())
        }
    }
}
