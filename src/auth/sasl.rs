//! SASL mechanisms as pure decoders (RFC 4422): PLAIN (RFC 4616) and LOGIN
//! (draft-murchison-sasl-login). No I/O: IMAP AUTHENTICATE (RFC 3501 §6.2.2) and POP3 AUTH
//! (RFC 5034 §4) frame the lines, handle the `*` abort themselves (see [`is_abort`]) and
//! pass the base64 text here.
//!
//! SCRAM-SHA-256 (RFC 7677) is not offered: it needs the server to keep a salted
//! PBKDF2 key per user, while nestbox stores argon2id hashes only (docs/decisions.md).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Longest authcid, authzid or password accepted (RFC 4616 §2 bounds them at 255 octets;
/// we allow passphrases up to the 1024 bytes `check_new_password` allows).
pub const MAX_FIELD: usize = 1024;

/// The mechanisms offered, in the order they are advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    /// Case-insensitive lookup of a mechanism name (RFC 4422 §3.1).
    pub fn parse(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    /// Every mechanism, for CAPABILITY `AUTH=` / CAPA `SASL`.
    pub const ALL: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];
}

/// Why a client's SASL data was refused. Protocols map these: `Base64` and `Malformed`
/// are client syntax errors (IMAP `BAD`, POP3 `-ERR`); `AuthzidMismatch` is
/// `NO [AUTHORIZATIONFAILED]` (RFC 5530 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslError {
    /// Not valid base64 (RFC 4648 §4).
    Base64,
    /// Decoded, but not the mechanism's format (missing NULs, empty or too long fields,
    /// not UTF-8).
    Malformed,
    /// PLAIN with an authorization identity other than the authentication identity: we do
    /// not support proxy authorization (RFC 4616 §2).
    AuthzidMismatch,
}

impl std::fmt::Display for SaslError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SaslError::Base64 => "invalid base64 in SASL response",
            SaslError::Malformed => "malformed SASL response",
            SaslError::AuthzidMismatch => "authorization identity differs from the login",
        })
    }
}

impl std::error::Error for SaslError {}

/// A login name and password from a SASL exchange. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub login: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// A client line that cancels the exchange: `*` (RFC 3501 §6.2.2, RFC 5034 §4).
pub fn is_abort(line: &[u8]) -> bool {
    line == b"*"
}

/// Decodes one base64 client response. `=` is the empty response (RFC 4959 §3, RFC 5034
/// §4); surrounding spaces are not allowed.
pub fn decode_base64(text: &[u8]) -> Result<Vec<u8>, SaslError> {
    if text == b"=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(text).map_err(|_| SaslError::Base64)
}

/// Encodes a server challenge.
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn field(bytes: &[u8], allow_empty: bool) -> Result<String, SaslError> {
    if (!allow_empty && bytes.is_empty()) || bytes.len() > MAX_FIELD {
        return Err(SaslError::Malformed);
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| SaslError::Malformed)
}

/// PLAIN (RFC 4616 §2): `[authzid] NUL authcid NUL passwd`, already base64-decoded. The
/// authzid must be empty or equal to the authcid.
pub fn decode_plain(message: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = message.splitn(3, |b| *b == 0);
    let (Some(authzid), Some(authcid), Some(passwd)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if passwd.contains(&0) {
        return Err(SaslError::Malformed);
    }
    let authzid = field(authzid, true)?;
    let login = field(authcid, false)?;
    let password = field(passwd, false)?;
    if !authzid.is_empty() && authzid != login {
        return Err(SaslError::AuthzidMismatch);
    }
    Ok(Credentials { login, password })
}

/// PLAIN from the base64 text of a response line.
pub fn decode_plain_base64(text: &[u8]) -> Result<Credentials, SaslError> {
    decode_plain(&decode_base64(text)?)
}

/// What to do next in a LOGIN exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStep {
    /// Send this challenge (already base64: `VXNlcm5hbWU6` or `UGFzc3dvcmQ6`) and pass
    /// the client's next line to [`LoginExchange::step`].
    Challenge(&'static str),
    /// The exchange is complete: check these credentials.
    Done(Credentials),
}

/// LOGIN: the server asks `Username:` then `Password:`, each answered in base64.
/// A state machine: `Username` -> `Password` -> done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginExchange {
    Username,
    Password { login: String },
    Finished,
}

/// `Username:` in base64.
pub const USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
/// `Password:` in base64.
pub const PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

impl LoginExchange {
    /// Starts an exchange. With an initial response (SASL-IR, RFC 4959; POP3 AUTH
    /// argument) it is the user name, and the first challenge is `Password:`.
    pub fn start(initial: Option<&[u8]>) -> Result<(LoginExchange, LoginStep), SaslError> {
        let mut ex = LoginExchange::Username;
        match initial {
            None => Ok((ex, LoginStep::Challenge(USERNAME_CHALLENGE))),
            Some(text) => {
                let step = ex.step(text)?;
                Ok((ex, step))
            }
        }
    }

    /// Feeds one base64 client line (not `*`: callers check [`is_abort`] first).
    pub fn step(&mut self, text: &[u8]) -> Result<LoginStep, SaslError> {
        let bytes = decode_base64(text)?;
        match std::mem::replace(self, LoginExchange::Finished) {
            LoginExchange::Username => {
                let login = field(&bytes, false)?;
                *self = LoginExchange::Password { login };
                Ok(LoginStep::Challenge(PASSWORD_CHALLENGE))
            }
            LoginExchange::Password { login } => {
                let password = field(&bytes, false)?;
                Ok(LoginStep::Done(Credentials { login, password }))
            }
            LoginExchange::Finished => Err(SaslError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(login: &str, password: &str) -> Credentials {
        Credentials {
            login: login.into(),
            password: password.into(),
        }
    }

    #[test]
    fn plain_table() {
        let ok: &[(&[u8], Credentials)] = &[
            (b"\0alice\0pw", creds("alice", "pw")),
            (b"alice\0alice\0pw", creds("alice", "pw")),
            (
                "\0j\u{f6}rg\0p\u{e4}ss w".as_bytes(),
                creds("j\u{f6}rg", "p\u{e4}ss w"),
            ),
        ];
        for (input, want) in ok {
            assert_eq!(decode_plain(input).as_ref(), Ok(want), "{input:?}");
        }
        let bad: &[(&[u8], SaslError)] = &[
            (b"", SaslError::Malformed),
            (b"alice\0pw", SaslError::Malformed),
            (b"\0\0pw", SaslError::Malformed),
            (b"\0alice\0", SaslError::Malformed),
            (b"\0alice\0p\0w", SaslError::Malformed),
            (b"\0al\xffice\0pw", SaslError::Malformed),
            (b"bob\0alice\0pw", SaslError::AuthzidMismatch),
        ];
        for (input, want) in bad {
            assert_eq!(decode_plain(input), Err(*want), "{input:?}");
        }
    }

    #[test]
    fn plain_base64_and_empty_response() {
        // "\0alice\0pw"
        assert_eq!(
            decode_plain_base64(b"AGFsaWNlAHB3"),
            Ok(creds("alice", "pw"))
        );
        assert_eq!(
            decode_plain_base64(b"AGFsaWNlAHB3!"),
            Err(SaslError::Base64)
        );
        assert_eq!(
            decode_plain_base64(b" AGFsaWNlAHB3"),
            Err(SaslError::Base64)
        );
        assert_eq!(decode_base64(b"="), Ok(Vec::new()));
        assert_eq!(decode_plain_base64(b"="), Err(SaslError::Malformed));
        assert_eq!(encode_base64(b"\0alice\0pw"), "AGFsaWNlAHB3");
    }

    #[test]
    fn login_two_steps() {
        let (mut ex, step) = LoginExchange::start(None).unwrap();
        assert_eq!(step, LoginStep::Challenge(USERNAME_CHALLENGE));
        assert_eq!(
            ex.step(encode_base64(b"alice").as_bytes()),
            Ok(LoginStep::Challenge(PASSWORD_CHALLENGE))
        );
        assert_eq!(
            ex.step(encode_base64(b"pw").as_bytes()),
            Ok(LoginStep::Done(creds("alice", "pw")))
        );
        assert_eq!(ex.step(b"YQ=="), Err(SaslError::Malformed));
    }

    #[test]
    fn login_with_initial_response_and_errors() {
        let (mut ex, step) = LoginExchange::start(Some(b"YWxpY2U=")).unwrap();
        assert_eq!(step, LoginStep::Challenge(PASSWORD_CHALLENGE));
        assert_eq!(ex.step(b"***"), Err(SaslError::Base64));
        let (mut ex, _) = LoginExchange::start(None).unwrap();
        assert_eq!(ex.step(b"="), Err(SaslError::Malformed));
        assert!(is_abort(b"*"));
        assert!(!is_abort(b"**"));
        assert_eq!(
            format!("{:?}", creds("a", "secret")),
            "Credentials { login: \"a\", password: \"<hidden>\" }"
        );
    }

    #[test]
    fn mechanism_names() {
        assert_eq!(Mechanism::parse("plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::parse("LOGIN"), Some(Mechanism::Login));
        assert_eq!(Mechanism::parse("SCRAM-SHA-256"), None);
        assert_eq!(Mechanism::ALL.map(Mechanism::name), ["PLAIN", "LOGIN"]);
    }
}
