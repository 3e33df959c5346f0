//! LOGIN, AUTHENTICATE (PLAIN, LOGIN, SASL-IR) and ENABLE (RFC 9051 §6.2.2, §6.2.3,
//! §6.3.1; RFC 4616; RFC 4959; RFC 5161).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::super::response::{Code, ImapError, Status};
use super::super::session::{Account, Action, MAX_AUTH_FAILURES, Outcome, Sasl, Session, State};
use crate::auth::AuthError;

/// `+ ` challenges of the LOGIN mechanism: "Username:" and "Password:".
const LOGIN_USER: &str = "VXNlcm5hbWU6";
const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

fn decode_b64(text: &[u8]) -> Result<Vec<u8>, ImapError> {
    if text == b"=" {
        return Ok(Vec::new());
    }
    STANDARD
        .decode(text)
        .map_err(|_| ImapError::Bad("Invalid base64".into()))
}

fn utf8(bytes: Vec<u8>) -> Result<String, ImapError> {
    String::from_utf8(bytes)
        .map_err(|_| ImapError::no(Code::AuthenticationFailed, "Authentication failed"))
}

impl Session {
    /// RFC 9051 §6.2.3; refused without TLS where plaintext is not allowed (§6.2.3,
    /// PROTOCOL.md item 25).
    pub(in super::super) async fn login(
        &mut self,
        tag: &str,
        user: Vec<u8>,
        password: Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        if !self.plaintext_allowed() {
            return Err(ImapError::no(
                Code::PrivacyRequired,
                "Plaintext login is not allowed without TLS",
            ));
        }
        let user = utf8(user)?;
        let password = utf8(password)?;
        self.finish_login(tag, &user, &password, out).await
    }

    /// Checks the credentials and enters Authenticated, or counts a failure.
    async fn finish_login(
        &mut self,
        tag: &str,
        user: &str,
        password: &str,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        match self.ctx.auth.authenticate(user, password, self.peer).await {
            Ok(rec) => {
                // RFC 5530 §3 LIMIT: the user has `connections.max_per_user` sessions
                // already (IMAP and POP3 together). The login itself was right, so it is
                // not counted as a failure.
                let Ok(slot) = self.ctx.limits.try_login(rec.id) else {
                    log::info!("imap: {} refused: too many sessions", rec.name);
                    return Err(ImapError::no(
                        Code::Limit,
                        "Too many sessions for this user (connections.max_per_user)",
                    ));
                };
                let (feed, origin) = self.store().feed().subscribe_as(rec.id);
                log::info!("imap: {} logged in from {}", rec.name, self.peer);
                self.state = State::Authenticated(Account {
                    id: rec.id,
                    name: rec.name,
                    feed,
                    origin,
                    slot,
                });
                // PROTOCOL.md item 23, quirk Q9: capabilities change after login.
                Status::ok("Logged in")
                    .with(Code::Capability(self.capabilities()))
                    .encode(Some(tag), out);
                Ok(Outcome::Action(Action::Continue))
            }
            Err(AuthError::Failed) => {
                // The authenticator already waited its throttle delay.
                self.auth_failures = self.auth_failures.saturating_add(1);
                if self.auth_failures >= MAX_AUTH_FAILURES {
                    Status::no(Some(Code::AuthenticationFailed), "Authentication failed")
                        .encode(Some(tag), out);
                    out.extend_from_slice(b"* BYE Too many failed logins\r\n");
                    self.state = State::Logout;
                    return Ok(Outcome::Action(Action::Close));
                }
                Err(ImapError::no(
                    Code::AuthenticationFailed,
                    "Authentication failed",
                ))
            }
            Err(AuthError::Throttled { .. }) => Err(ImapError::no(
                Code::Unavailable,
                "Too many failed logins, try again later",
            )),
            Err(AuthError::Temporary(e)) => {
                log::error!("imap: authentication backend: {e}");
                Err(ImapError::no(
                    Code::Unavailable,
                    "Temporary failure, try again later",
                ))
            }
        }
    }

    /// RFC 9051 §6.2.2 with SASL-IR (RFC 4959).
    pub(in super::super) async fn authenticate(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial: Option<Vec<u8>>,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let step = match mechanism {
            "PLAIN" => Sasl::Plain,
            "LOGIN" => Sasl::LoginUser,
            _ => {
                return Err(ImapError::no(
                    Code::Cannot,
                    "Unsupported authentication mechanism",
                ));
            }
        };
        if !self.plaintext_allowed() {
            return Err(ImapError::no(
                Code::PrivacyRequired,
                "Plaintext authentication is not allowed without TLS",
            ));
        }
        match initial {
            Some(ir) => {
                let data = decode_b64(&ir)?;
                self.sasl = Some((tag.to_string(), step));
                self.sasl_data(data, out).await
            }
            None => {
                let challenge = match step {
                    Sasl::LoginUser => LOGIN_USER,
                    _ => "",
                };
                self.sasl = Some((tag.to_string(), step));
                Ok(Outcome::Action(Action::Sasl(challenge.to_string())))
            }
        }
    }

    /// The client's answer to a `+` challenge (one line without CRLF). `*` cancels
    /// with BAD (RFC 9051 §6.2.2).
    pub async fn sasl_line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Action {
        let Some((tag, _)) = self.sasl.clone() else {
            return Action::Continue;
        };
        if line == b"*" {
            self.sasl = None;
            Status::bad("Authentication cancelled").encode(Some(&tag), out);
            return Action::Continue;
        }
        let result = match decode_b64(line) {
            Ok(data) => self.sasl_data(data, out).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(Outcome::Action(a)) => a,
            Ok(Outcome::Done(s)) => {
                s.encode(Some(&tag), out);
                Action::Continue
            }
            Err(e) => {
                self.sasl = None;
                e.status("AUTHENTICATE").encode(Some(&tag), out);
                Action::Continue
            }
        }
    }

    async fn sasl_data(&mut self, data: Vec<u8>, out: &mut Vec<u8>) -> Result<Outcome, ImapError> {
        let Some((tag, step)) = self.sasl.take() else {
            return Err(ImapError::Bad("No authentication in progress".into()));
        };
        match step {
            Sasl::Plain => {
                // RFC 4616 §2: authzid NUL authcid NUL passwd.
                let mut parts = data.split(|b| *b == 0);
                let (Some(authz), Some(authc), Some(pass), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(ImapError::Bad("Malformed PLAIN response".into()));
                };
                let authc = utf8(authc.to_vec())?;
                let pass = utf8(pass.to_vec())?;
                if !authz.is_empty() && authz != authc.as_bytes() {
                    return Err(ImapError::no(
                        Code::AuthorizationFailed,
                        "Cannot log in as another user",
                    ));
                }
                self.finish_login(&tag, &authc, &pass, out).await
            }
            Sasl::LoginUser => {
                let user = utf8(data)?;
                self.sasl = Some((tag, Sasl::LoginPassword(user)));
                Ok(Outcome::Action(Action::Sasl(LOGIN_PASSWORD.into())))
            }
            Sasl::LoginPassword(user) => {
                let pass = utf8(data)?;
                self.finish_login(&tag, &user, &pass, out).await
            }
        }
    }

    /// RFC 5161 §3.1: `* ENABLED` lists only what this command newly enabled.
    pub(in super::super) fn enable(&mut self, caps: Vec<String>, out: &mut Vec<u8>) -> Outcome {
        let mut newly = Vec::new();
        for c in caps {
            let flag = match c.as_str() {
                "IMAP4REV2" => &mut self.enabled.rev2,
                "UTF8=ACCEPT" => &mut self.enabled.utf8,
                "CONDSTORE" => &mut self.enabled.condstore,
                "QRESYNC" => {
                    // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE; ENABLED names only
                    // QRESYNC, as in the RFC's example.
                    self.enabled.condstore = true;
                    &mut self.enabled.qresync
                }
                _ => continue,
            };
            if !*flag {
                *flag = true;
                newly.push(
                    match c.as_str() {
                        "IMAP4REV2" => "IMAP4rev2",
                        other => other,
                    }
                    .to_string(),
                );
            }
        }
        out.extend_from_slice(b"* ENABLED");
        for n in newly {
            out.push(b' ');
            out.extend_from_slice(n.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        Outcome::ok("ENABLE completed")
    }
}
