//! The ManageSieve session state machine (RFC 5804 §2). No I/O: the driver
//! ([`super::server`]) frames the input, hands each framed command to [`Session::input`]
//! and performs the [`Step`] it gets back:
//! - [`Step::Reply`]: write it;
//! - [`Step::Authenticate`]: check the credentials with the Authenticator, then write what
//!   [`Session::login`] returns;
//! - [`Step::Run`]: carry out the script operation (checker, store) and write
//!   [`answer`]'s reply for its result;
//! - [`Step::StartTls`]: write it, run the handshake, then write what
//!   [`Session::tls_started`] returns;
//! - [`Step::Close`]: write it and close.
//!
//! States own their data: [`State::NonAuth`] (a SASL exchange in progress, failures so
//! far) and [`State::Auth`] (the user). There is no BAD in ManageSieve: a command that
//! cannot be read or does not fit the state gets `NO` (§1.2).

use super::grammar::{Code, Command, Response, SaslResponse, SyntaxError};
use super::grammar::{encode_string, parse_command, parse_sasl_response};
use crate::auth::sasl::{self, Credentials, LoginExchange, LoginStep, Mechanism};
use crate::config::Plaintext;
use crate::imap::framing::FrameError;
use crate::net::stream::Peer;
use crate::store::{ScriptInfo, SieveError, SieveLimits};

/// After this many failed logins the connection is closed.
pub const MAX_AUTH_FAILURES: u32 = 5;

/// What the session needs to know about its connection and the server's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub plaintext: Plaintext,
    /// Who is connected; `peer.tls` becomes true after STARTTLS. STARTTLS is offered
    /// whenever it is false: the server always has a certificate (its own self-signed
    /// one when none is configured).
    pub peer: Peer,
    /// CAPABILITY `SIEVE` (from the checker).
    pub extensions: Vec<String>,
    pub limits: SieveLimits,
}

/// How a login attempt ended, as the driver found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The canonical user name.
    Ok(String),
    Failed,
    Throttled,
    Temporary,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sasl {
    /// `AUTHENTICATE "PLAIN"` without initial response: the empty challenge was sent.
    Plain,
    Login(LoginExchange),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NonAuth {
    sasl: Option<Sasl>,
    failures: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    NonAuth(NonAuth),
    Auth {
        user: String,
    },
    /// After LOGOUT or BYE; nothing more is read.
    Logout,
}

/// A command on the user's scripts, run by the server for an authenticated user.
pub use super::grammar::ScriptCommand as Op;

/// What an [`Op`] gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Ok,
    List(Vec<ScriptInfo>),
    Script(String),
}

/// Why an [`Op`] failed.
#[derive(Debug, Clone, PartialEq)]
pub enum OpError {
    Store(SieveError),
    /// The checker refused the script.
    Script(super::ScriptError),
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Reply(Vec<u8>),
    Authenticate(Credentials),
    Run { user: String, op: Op },
    StartTls(Vec<u8>),
    Close(Vec<u8>),
}

fn reply(r: Response) -> Step {
    Step::Reply(r.to_bytes())
}

fn no(text: &str) -> Step {
    reply(Response::no(None, text))
}

/// The one error table for script operations (RFC 5804 §1.3 response codes).
pub fn answer(result: Result<Done, OpError>) -> Vec<u8> {
    let mut out = Vec::new();
    match result {
        Ok(Done::Ok) => Response::ok("Done").encode(&mut out),
        Ok(Done::List(list)) => {
            // §2.7: one line per script, ACTIVE after the active one.
            for s in list {
                encode_string(s.name.as_bytes(), &mut out);
                if s.active {
                    out.extend_from_slice(b" ACTIVE");
                }
                out.extend_from_slice(b"\r\n");
            }
            Response::ok("Listscripts completed").encode(&mut out);
        }
        Ok(Done::Script(text)) => {
            // §2.9: the script as a string (a literal, it has line breaks), then OK.
            out.extend_from_slice(format!("{{{}}}\r\n", text.len()).as_bytes());
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
            Response::ok("Getscript completed").encode(&mut out);
        }
        Err(OpError::Script(e)) => Response::no(None, e.to_string()).encode(&mut out),
        Err(OpError::Store(e)) => {
            let (code, text) = match &e {
                SieveError::NoSuchScript => (Some(Code::NonExistent), "There is no such script"),
                SieveError::AlreadyExists => (
                    Some(Code::AlreadyExists),
                    "A script with that name already exists",
                ),
                SieveError::Active => (
                    Some(Code::Active),
                    "The active script cannot be deleted; deactivate it first",
                ),
                SieveError::TooLarge { .. } => {
                    (Some(Code::QuotaMaxSize), "The script is too large")
                }
                SieveError::TooMany { .. } => (Some(Code::QuotaMaxScripts), "Too many scripts"),
                SieveError::InvalidName(_) => (None, ""),
                SieveError::NoSuchUser | SieveError::Store(_) => {
                    log::error!("managesieve: {e}");
                    (Some(Code::TryLater), "Temporary server failure, try later")
                }
            };
            match (&e, code) {
                (SieveError::InvalidName(why), _) => {
                    Response::no(None, format!("Invalid script name: {why}"))
                }
                (SieveError::TooLarge { max }, Some(code)) => {
                    Response::no(Some(code), format!("{text} (at most {max} octets)"))
                }
                (SieveError::TooMany { max }, Some(code)) => {
                    Response::no(Some(code), format!("{text} (at most {max})"))
                }
                (_, code) => Response::no(code, text),
            }
            .encode(&mut out)
        }
    }
    out
}

pub struct Session {
    opts: Options,
    state: State,
}

impl Session {
    pub fn new(opts: Options) -> Session {
        Session {
            opts,
            state: State::NonAuth(NonAuth::default()),
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    fn plaintext_allowed(&self) -> bool {
        crate::auth::plaintext_allowed(self.opts.plaintext, self.opts.peer)
    }

    /// The capability lines (RFC 5804 §1.7), without the final OK.
    fn capabilities(&self, out: &mut Vec<u8>) {
        let mut line = |name: &str, value: Option<&str>| {
            encode_string(name.as_bytes(), out);
            if let Some(v) = value {
                out.push(b' ');
                encode_string(v.as_bytes(), out);
            }
            out.extend_from_slice(b"\r\n");
        };
        line("IMPLEMENTATION", Some("nestbox"));
        // No mechanism where passwords may not be sent yet (as IMAP's LOGINDISABLED).
        let sasl = if self.plaintext_allowed() {
            Mechanism::ALL.map(Mechanism::name).join(" ")
        } else {
            String::new()
        };
        line("SASL", Some(&sasl));
        line("SIEVE", Some(&self.opts.extensions.join(" ")));
        // Only where STARTTLS may be given (§2.2: before authentication, once).
        if !self.opts.peer.tls && matches!(self.state, State::NonAuth(_)) {
            line("STARTTLS", None);
        }
        if let State::Auth { user } = &self.state {
            line("OWNER", Some(user));
        }
        // MAXREDIRECTS and NOTIFY are omitted: nestbox sends no mail for scripts.
        line("UNAUTHENTICATE", None);
        line("VERSION", Some("1.0"));
    }

    /// The greeting: the capabilities, then OK (§1.7).
    pub fn greeting(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.capabilities(&mut out);
        Response::ok("nestbox ManageSieve ready").encode(&mut out);
        out
    }

    /// One framed command (or SASL response) from the client.
    pub fn input(&mut self, framed: &[u8]) -> Step {
        if let State::NonAuth(NonAuth { sasl: Some(_), .. }) = &self.state {
            return self.sasl_response(framed);
        }
        match parse_command(framed) {
            Ok(cmd) => self.command(cmd),
            Err(e) => no(&e.to_string()),
        }
    }

    /// A command the framer refused; `None` when the connection must close (the client
    /// sent a synchronizing literal too large to skip safely).
    pub fn refused(&mut self, error: FrameError) -> Step {
        if let State::NonAuth(n) = &mut self.state {
            n.sasl = None;
        }
        match error {
            FrameError::LiteralTooBig { sync: true } => {
                self.state = State::Logout;
                Step::Close(
                    Response::bye("Literal too large; send {n+} literals within the limit")
                        .to_bytes(),
                )
            }
            FrameError::LiteralTooBig { sync: false } => reply(Response::no(
                Some(Code::QuotaMaxSize),
                format!(
                    "Literal too large (scripts up to {} octets)",
                    self.opts.limits.max_script_bytes
                ),
            )),
            e => no(&SyntaxError::Frame(e).to_string()),
        }
    }

    /// Input could no longer be framed: say BYE.
    pub fn fatal(&mut self) -> Vec<u8> {
        self.state = State::Logout;
        Response::bye("Protocol error").to_bytes()
    }

    fn command(&mut self, cmd: Command) -> Step {
        match cmd {
            // §2.4.
            Command::Capability => {
                let mut out = Vec::new();
                self.capabilities(&mut out);
                Response::ok("Capability completed").encode(&mut out);
                Step::Reply(out)
            }
            // §2.13: the string comes back as a TAG response code.
            Command::Noop { tag } => {
                let mut r = Response::ok("Done");
                if let Some(t) = tag {
                    r = r.with(Code::Tag(t));
                }
                reply(r)
            }
            // §2.3.
            Command::Logout => {
                self.state = State::Logout;
                Step::Close(Response::ok("Logout completed").to_bytes())
            }
            Command::StartTls => self.starttls(),
            Command::Authenticate { mechanism, initial } => self.authenticate(&mechanism, initial),
            // §2.14.1: back to the non-authenticated state.
            Command::Unauthenticate => match self.state {
                State::Auth { .. } => {
                    self.state = State::NonAuth(NonAuth::default());
                    reply(Response::ok("Unauthenticate completed"))
                }
                _ => no("Not authenticated"),
            },
            Command::Script(op) => {
                let State::Auth { user } = &self.state else {
                    return no("Authenticate first");
                };
                // §2.6: refused before checking when it can never fit.
                if let Op::PutScript { script, .. } = &op
                    && script.len() as u64 > self.opts.limits.max_script_bytes
                {
                    return Step::Reply(answer(Err(OpError::Store(SieveError::TooLarge {
                        max: self.opts.limits.max_script_bytes,
                    }))));
                }
                Step::Run {
                    user: user.clone(),
                    op,
                }
            }
        }
    }

    /// §2.2: only before authentication, once.
    fn starttls(&mut self) -> Step {
        if !matches!(self.state, State::NonAuth(_)) {
            return no("STARTTLS is only allowed before authentication");
        }
        if self.opts.peer.tls {
            return no("TLS is already active");
        }
        Step::StartTls(Response::ok("Begin TLS negotiation now").to_bytes())
    }

    /// After the handshake: §2.2 asks for the capabilities again, then OK.
    pub fn tls_started(&mut self) -> Vec<u8> {
        self.opts.peer.tls = true;
        self.state = State::NonAuth(NonAuth::default());
        self.greeting()
    }

    /// §2.1; PLAIN (RFC 4616) and LOGIN, with or without an initial response.
    fn authenticate(&mut self, mechanism: &str, initial: Option<Vec<u8>>) -> Step {
        if !matches!(self.state, State::NonAuth(_)) {
            return no("Already authenticated");
        }
        let Some(mech) = Mechanism::parse(mechanism) else {
            return no("Unsupported authentication mechanism");
        };
        if !self.plaintext_allowed() {
            return reply(Response::no(
                Some(Code::EncryptNeeded),
                "Authentication without TLS is not allowed; use STARTTLS",
            ));
        }
        match mech {
            Mechanism::Plain => match initial {
                Some(data) => self.plain(&data),
                None => {
                    self.set_sasl(Some(Sasl::Plain));
                    challenge("")
                }
            },
            Mechanism::Login => {
                let started = match initial {
                    Some(data) => LoginExchange::start(Some(sasl::encode_base64(&data).as_bytes())),
                    None => LoginExchange::start(None),
                };
                match started {
                    Ok((ex, step)) => self.login_step(ex, step),
                    Err(e) => no(&e.to_string()),
                }
            }
        }
    }

    fn set_sasl(&mut self, sasl: Option<Sasl>) {
        if let State::NonAuth(n) = &mut self.state {
            n.sasl = sasl;
        }
    }

    fn plain(&mut self, data: &[u8]) -> Step {
        self.set_sasl(None);
        match sasl::decode_plain(data) {
            Ok(creds) => Step::Authenticate(creds),
            Err(e) => no(&e.to_string()),
        }
    }

    fn login_step(&mut self, ex: LoginExchange, step: LoginStep) -> Step {
        match step {
            LoginStep::Challenge(c) => {
                self.set_sasl(Some(Sasl::Login(ex)));
                // The challenges are base64 already; the client decodes them.
                challenge_b64(c)
            }
            LoginStep::Done(creds) => {
                self.set_sasl(None);
                Step::Authenticate(creds)
            }
        }
    }

    /// A client response during AUTHENTICATE (§2.1): `"*"` cancels with NO.
    fn sasl_response(&mut self, framed: &[u8]) -> Step {
        let sasl = match &mut self.state {
            State::NonAuth(n) => n.sasl.take(),
            _ => None,
        };
        let Some(sasl) = sasl else {
            return no("No authentication in progress");
        };
        let data = match parse_sasl_response(framed) {
            Ok(SaslResponse::Abort) => return no("Authentication cancelled"),
            Ok(SaslResponse::Data(d)) => d,
            Err(e) => return no(&e.to_string()),
        };
        match sasl {
            Sasl::Plain => self.plain(&data),
            Sasl::Login(mut ex) => match ex.step(sasl::encode_base64(&data).as_bytes()) {
                Ok(step) => self.login_step(ex, step),
                Err(e) => no(&e.to_string()),
            },
        }
    }

    /// What the driver found out about the credentials of [`Step::Authenticate`].
    pub fn login(&mut self, outcome: LoginOutcome) -> Step {
        match outcome {
            LoginOutcome::Ok(user) => {
                log::info!("managesieve: {user} logged in from {}", self.opts.peer);
                self.state = State::Auth { user };
                reply(Response::ok("Logged in"))
            }
            LoginOutcome::Failed => {
                let failures = match &mut self.state {
                    State::NonAuth(n) => {
                        n.failures = n.failures.saturating_add(1);
                        n.failures
                    }
                    _ => MAX_AUTH_FAILURES,
                };
                if failures >= MAX_AUTH_FAILURES {
                    self.state = State::Logout;
                    return Step::Close(Response::bye("Too many failed logins").to_bytes());
                }
                no("Authentication failed")
            }
            LoginOutcome::Throttled => reply(Response::no(
                Some(Code::TryLater),
                "Too many failed logins, try again later",
            )),
            LoginOutcome::Temporary => reply(Response::no(
                Some(Code::TryLater),
                "Temporary failure, try again later",
            )),
        }
    }
}

/// A SASL challenge of raw bytes, as a base64 string line.
fn challenge(raw: &str) -> Step {
    challenge_b64(&sasl::encode_base64(raw.as_bytes()))
}

fn challenge_b64(b64: &str) -> Step {
    let mut out = Vec::new();
    encode_string(b64.as_bytes(), &mut out);
    out.extend_from_slice(b"\r\n");
    Step::Reply(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(plaintext: Plaintext) -> Session {
        Session::new(Options {
            plaintext,
            peer: Peer {
                ip: Some([192, 0, 2, 1].into()),
                tls: false,
            },
            extensions: vec!["fileinto".into(), "vacation".into()],
            limits: SieveLimits {
                max_script_bytes: 100,
                max_scripts: 3,
            },
        })
    }

    fn text(step: &Step) -> String {
        match step {
            Step::Reply(b) | Step::Close(b) | Step::StartTls(b) => {
                String::from_utf8_lossy(b).into_owned()
            }
            other => format!("{other:?}"),
        }
    }

    /// Sends each line in turn and checks the session's reply to it.
    fn converse(s: &mut Session, script: &[(&[u8], &str)]) {
        for (line, want) in script {
            let got = text(&s.input(line));
            assert_eq!(got, *want, "reply to {:?}", String::from_utf8_lossy(line));
        }
    }

    /// What a session asks for once the client has sent login "a", password "b".
    fn authenticate_a_b() -> Step {
        Step::Authenticate(Credentials {
            login: "a".into(),
            password: "b".into(),
        })
    }

    #[test]
    fn greeting_and_capabilities() {
        let s = session(Plaintext::Never);
        let g = String::from_utf8(s.greeting()).unwrap();
        assert!(g.starts_with("\"IMPLEMENTATION\" \"nestbox\"\r\n"), "{g}");
        assert!(g.contains("\"SASL\" \"\"\r\n"), "{g}");
        assert!(g.contains("\"SIEVE\" \"fileinto vacation\"\r\n"), "{g}");
        assert!(g.contains("\"STARTTLS\"\r\n"), "{g}");
        assert!(g.contains("\"VERSION\" \"1.0\"\r\n"), "{g}");
        assert!(g.ends_with("OK \"nestbox ManageSieve ready\"\r\n"), "{g}");
        let s = session(Plaintext::Always);
        let g = String::from_utf8(s.greeting()).unwrap();
        assert!(g.contains("\"SASL\" \"PLAIN LOGIN\"\r\n"), "{g}");
    }

    #[test]
    fn state_errors_and_auth() {
        let mut s = session(Plaintext::Never);
        converse(
            &mut s,
            &[
                (b"LISTSCRIPTS\r\n", "NO \"Authenticate first\"\r\n"),
                (
                    b"AUTHENTICATE \"PLAIN\" \"AGEAYg==\"\r\n",
                    "NO (ENCRYPT-NEEDED) \"Authentication without TLS is not allowed; use STARTTLS\"\r\n",
                ),
            ],
        );
        assert!(matches!(s.input(b"STARTTLS\r\n"), Step::StartTls(_)));
        let again = String::from_utf8(s.tls_started()).unwrap();
        assert!(!again.contains("STARTTLS"), "{again}");
        assert!(again.contains("\"SASL\" \"PLAIN LOGIN\""), "{again}");
        assert_eq!(
            s.input(b"AUTHENTICATE \"PLAIN\" \"AGEAYg==\"\r\n"),
            authenticate_a_b()
        );
        assert_eq!(
            text(&s.login(LoginOutcome::Ok("a".into()))),
            "OK \"Logged in\"\r\n"
        );
        assert!(text(&s.input(b"CAPABILITY\r\n")).contains("\"OWNER\" \"a\"\r\n"));
        assert_eq!(
            s.input(b"LISTSCRIPTS\r\n"),
            Step::Run {
                user: "a".into(),
                op: Op::ListScripts
            }
        );
        let too_large = [&b"PUTSCRIPT \"x\" {101+}\r\n"[..], &[b'#'; 101], b"\r\n"].concat();
        converse(
            &mut s,
            &[
                (
                    b"STARTTLS\r\n",
                    "NO \"STARTTLS is only allowed before authentication\"\r\n",
                ),
                (
                    &too_large,
                    "NO (QUOTA/MAXSIZE) \"The script is too large (at most 100 octets)\"\r\n",
                ),
                (b"UNAUTHENTICATE\r\n", "OK \"Unauthenticate completed\"\r\n"),
                (b"GETSCRIPT \"x\"\r\n", "NO \"Authenticate first\"\r\n"),
                (b"NOOP \"t\"\r\n", "OK (TAG \"t\") \"Done\"\r\n"),
            ],
        );
        assert!(matches!(s.input(b"LOGOUT\r\n"), Step::Close(_)));
    }

    #[test]
    fn sasl_exchanges() {
        let mut s = session(Plaintext::Always);
        // PLAIN without initial response: an empty challenge.
        converse(&mut s, &[(b"AUTHENTICATE \"PLAIN\"\r\n", "\"\"\r\n")]);
        assert_eq!(s.input(b"\"AGEAYg==\"\r\n"), authenticate_a_b());
        assert_eq!(
            text(&s.login(LoginOutcome::Failed)),
            "NO \"Authentication failed\"\r\n"
        );
        converse(
            &mut s,
            &[
                // LOGIN, then cancelled.
                (b"AUTHENTICATE \"login\"\r\n", "\"VXNlcm5hbWU6\"\r\n"),
                (b"\"YQ==\"\r\n", "\"UGFzc3dvcmQ6\"\r\n"),
                (b"\"*\"\r\n", "NO \"Authentication cancelled\"\r\n"),
                // LOGIN with the user name as initial response.
                (
                    b"AUTHENTICATE \"LOGIN\" \"YQ==\"\r\n",
                    "\"UGFzc3dvcmQ6\"\r\n",
                ),
            ],
        );
        assert_eq!(s.input(b"{4+}\r\nYg==\r\n"), authenticate_a_b());
        for _ in 1..MAX_AUTH_FAILURES - 1 {
            assert!(matches!(s.login(LoginOutcome::Failed), Step::Reply(_)));
        }
        assert_eq!(
            text(&s.login(LoginOutcome::Failed)),
            "BYE \"Too many failed logins\"\r\n"
        );
    }

    #[test]
    fn answers() {
        let e = |x| String::from_utf8(answer(Err(OpError::Store(x)))).unwrap();
        for (error, code) in [
            (SieveError::Active, "(ACTIVE)"),
            (SieveError::NoSuchScript, "(NONEXISTENT)"),
            (SieveError::AlreadyExists, "(ALREADYEXISTS)"),
            (SieveError::TooMany { max: 3 }, "(QUOTA/MAXSCRIPTS)"),
            (
                SieveError::Store(crate::store::StoreError::DiskFull),
                "(TRYLATER)",
            ),
        ] {
            let line = e(error);
            assert_eq!(line.split(' ').nth(1), Some(code), "{line}");
        }
        let list = answer(Ok(Done::List(vec![
            ScriptInfo {
                name: "a".into(),
                size: 1,
                active: false,
            },
            ScriptInfo {
                name: "b".into(),
                size: 1,
                active: true,
            },
        ])));
        assert_eq!(
            String::from_utf8(list).unwrap(),
            "\"a\"\r\n\"b\" ACTIVE\r\nOK \"Listscripts completed\"\r\n"
        );
        let script = answer(Ok(Done::Script("keep;\r\n".into())));
        assert_eq!(
            String::from_utf8(script).unwrap(),
            "{7}\r\nkeep;\r\n\r\nOK \"Getscript completed\"\r\n"
        );
        let bad = answer(Err(OpError::Script(crate::managesieve::ScriptError {
            line: 2,
            column: 3,
            message: "unknown command".into(),
        })));
        assert_eq!(
            String::from_utf8(bad).unwrap(),
            "NO \"line 2: column 3: unknown command\"\r\n"
        );
    }
}
