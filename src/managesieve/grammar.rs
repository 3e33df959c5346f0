//! ManageSieve grammar (RFC 5804 §4): commands in, responses out. Pure: bytes in, a
//! [`Command`] or a typed [`SyntaxError`] out; responses encode into a buffer.
//!
//! Framing (finding where a command ends, with its literals, under the line and literal
//! limits) is IMAP's [`Framer`]: RFC 5804 commands are lines joined by literals exactly as
//! in IMAP. Clients send non-synchronizing literals `{n+}` (`literal-c2s`); ManageSieve
//! has no continuation request, so a `{n}` from a client is taken the same way, unless it
//! is over the limit: then the stream cannot be re-synchronised and the server says BYE
//! (see [`Framed`] handling in the driver).

use crate::imap::framing::{FrameError, FrameLimits, Framed, Framer};
use crate::imap::response;

/// Longest command text (literals not counted). Names are at most 128 characters and
/// quoted strings 1024 octets (RFC 5804 §4 `quoted`); a SASL PLAIN initial response with
/// the longest password allowed is under 3 KiB.
pub const MAX_LINE: usize = 8192;

/// Longest quoted string (RFC 5804 §4: `quoted = <"> *1024QUOTED-CHAR <">`).
pub const MAX_QUOTED: usize = 1024;

/// Why a command could not be read. Every one is answered `NO` (RFC 5804 has no `BAD`),
/// except where the driver must close ([`FrameError::LiteralTooBig`] with `sync`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    Empty,
    UnknownCommand,
    MissingArgument,
    ExtraArgument,
    /// A string was expected (quoted or literal), an atom came.
    ExpectedString,
    /// HAVESPACE's size is not a 32-bit number (RFC 5804 §4 `number`).
    BadNumber,
    /// An unterminated or over-long quoted string, or one with CR, LF or a bad escape.
    BadQuoted,
    /// A literal header that is not `{n+}` or `{n}` followed by CRLF.
    BadLiteral,
    /// Bytes outside the atom characters.
    BadAtom,
    /// A name or script that is not UTF-8 (RFC 5804 §1.6, RFC 5228 §2.2).
    NotUtf8,
    /// A SASL response or initial response that is not base64.
    BadBase64,
    /// Refused by framing: the line or a literal was too long.
    Frame(FrameError),
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SyntaxError::Empty => "Empty command",
            SyntaxError::UnknownCommand => "Unknown command",
            SyntaxError::MissingArgument => "Missing argument",
            SyntaxError::ExtraArgument => "Too many arguments",
            SyntaxError::ExpectedString => "Expected a quoted string or a literal",
            SyntaxError::BadNumber => "Invalid number",
            SyntaxError::BadQuoted => "Invalid quoted string",
            SyntaxError::BadLiteral => "Invalid literal",
            SyntaxError::BadAtom => "Invalid characters in command",
            SyntaxError::NotUtf8 => "Not valid UTF-8",
            SyntaxError::BadBase64 => "Invalid base64",
            SyntaxError::Frame(FrameError::LineTooLong) => "Line too long",
            SyntaxError::Frame(FrameError::LiteralTooBig { .. }) => "Literal too large",
            SyntaxError::Frame(FrameError::BadLiteral) => "Invalid literal length",
        })
    }
}

/// A ManageSieve command (RFC 5804 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// §2.1: the mechanism and the initial response, base64-decoded.
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    StartTls,
    Logout,
    Capability,
    /// A command on the user's scripts (authenticated state only).
    Script(ScriptCommand),
    Noop {
        tag: Option<String>,
    },
    Unauthenticate,
}

/// The commands that work on the authenticated user's scripts (RFC 5804 §2.3–§2.12);
/// the session hands them to the server as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptCommand {
    HaveSpace {
        name: String,
        size: u32,
    },
    PutScript {
        name: String,
        script: String,
    },
    ListScripts,
    /// `""` deactivates (§2.8): `None`.
    SetActive {
        name: Option<String>,
    },
    GetScript {
        name: String,
    },
    DeleteScript {
        name: String,
    },
    RenameScript {
        from: String,
        to: String,
    },
    CheckScript {
        script: String,
    },
}

/// A client's answer in a SASL exchange (RFC 5804 §2.1): base64 data, or `"*"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslResponse {
    Data(Vec<u8>),
    Abort,
}

/// One lexical item of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Atom(String),
    Str(Vec<u8>),
}

/// Framing for ManageSieve: [`Framer`] with ManageSieve's limits.
pub struct Parser {
    framer: Framer,
}

impl Parser {
    /// Literals up to `max_literal` octets (a script's size limit).
    pub fn new(max_literal: u64) -> Parser {
        Parser {
            framer: Framer::new(FrameLimits {
                max_line: MAX_LINE,
                max_literal,
                max_nonsync: max_literal,
            }),
        }
    }

    /// Examines the driver's unconsumed input (see [`Framed`]). [`Framed::Continue`]
    /// needs no answer here: call again.
    pub fn next(&mut self, buf: &[u8]) -> Framed {
        loop {
            match self.framer.next(buf) {
                Framed::Continue => continue,
                other => return other,
            }
        }
    }
}

/// `ATOM-CHAR`-like: printable ASCII except the specials of RFC 5804 §4.
fn is_atom_char(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'{' | b'}' | b'(' | b')' | b'%' | b'*')
}

/// Splits a framed command (ending in CRLF or LF) into tokens.
fn tokens(buf: &[u8]) -> Result<Vec<Token>, SyntaxError> {
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        if !out.is_empty() {
            if body.get(pos) != Some(&b' ') {
                return Err(SyntaxError::BadAtom);
            }
            pos += 1;
        }
        let rest = body.get(pos..).unwrap_or(&[]);
        match rest.first() {
            Some(b'"') => {
                let (s, used) = quoted(rest)?;
                out.push(Token::Str(s));
                pos += used;
            }
            Some(b'{') => {
                let (s, used) = literal(rest)?;
                out.push(Token::Str(s));
                pos += used;
            }
            Some(_) => {
                let len = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
                let atom = rest.get(..len).unwrap_or(&[]);
                if atom.is_empty() || !atom.iter().all(|b| is_atom_char(*b)) {
                    return Err(SyntaxError::BadAtom);
                }
                out.push(Token::Atom(String::from_utf8_lossy(atom).into_owned()));
                pos += len;
            }
            None => return Err(SyntaxError::BadAtom),
        }
    }
    Ok(out)
}

/// `quoted` at the start of `s`: its value and the octets it took.
fn quoted(s: &[u8]) -> Result<(Vec<u8>, usize), SyntaxError> {
    let mut value = Vec::new();
    let mut i = 1;
    loop {
        match s.get(i) {
            Some(b'"') => return Ok((value, i + 1)),
            Some(b'\\') => match s.get(i + 1) {
                Some(c @ (b'"' | b'\\')) => {
                    value.push(*c);
                    i += 2;
                }
                _ => return Err(SyntaxError::BadQuoted),
            },
            Some(b'\r' | b'\n' | 0) | None => return Err(SyntaxError::BadQuoted),
            Some(c) => {
                value.push(*c);
                i += 1;
            }
        }
        if value.len() > MAX_QUOTED {
            return Err(SyntaxError::BadQuoted);
        }
    }
}

/// A literal at the start of `s` (`{n+}` CRLF n octets; the framer has checked that the
/// octets are there).
fn literal(s: &[u8]) -> Result<(Vec<u8>, usize), SyntaxError> {
    let close = s
        .iter()
        .position(|b| *b == b'}')
        .ok_or(SyntaxError::BadLiteral)?;
    let inner = s.get(1..close).ok_or(SyntaxError::BadLiteral)?;
    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
    let n: usize = crate::util::decimal(digits, 19).ok_or(SyntaxError::BadLiteral)?;
    let after = s.get(close + 1..).unwrap_or(&[]);
    let eol = if after.starts_with(b"\r\n") {
        2
    } else if after.starts_with(b"\n") {
        1
    } else {
        return Err(SyntaxError::BadLiteral);
    };
    let start = close + 1 + eol;
    let end = start.checked_add(n).ok_or(SyntaxError::BadLiteral)?;
    let value = s.get(start..end).ok_or(SyntaxError::BadLiteral)?;
    Ok((value.to_vec(), end))
}

fn utf8(bytes: Vec<u8>) -> Result<String, SyntaxError> {
    String::from_utf8(bytes).map_err(|_| SyntaxError::NotUtf8)
}

/// Arguments of one command, taken in order.
struct Args(std::vec::IntoIter<Token>);

impl Args {
    fn string(&mut self) -> Result<Vec<u8>, SyntaxError> {
        match self.0.next() {
            Some(Token::Str(s)) => Ok(s),
            Some(Token::Atom(_)) => Err(SyntaxError::ExpectedString),
            None => Err(SyntaxError::MissingArgument),
        }
    }

    fn text(&mut self) -> Result<String, SyntaxError> {
        utf8(self.string()?)
    }

    fn optional_string(&mut self) -> Result<Option<Vec<u8>>, SyntaxError> {
        match self.0.as_slice().first() {
            None => Ok(None),
            Some(_) => self.string().map(Some),
        }
    }

    fn number(&mut self) -> Result<u32, SyntaxError> {
        match self.0.next() {
            Some(Token::Atom(a)) if a.bytes().all(|b| b.is_ascii_digit()) => {
                a.parse().map_err(|_| SyntaxError::BadNumber)
            }
            Some(_) => Err(SyntaxError::BadNumber),
            None => Err(SyntaxError::MissingArgument),
        }
    }

    fn end<T>(mut self, value: T) -> Result<T, SyntaxError> {
        match self.0.next() {
            None => Ok(value),
            Some(_) => Err(SyntaxError::ExtraArgument),
        }
    }
}

/// Decodes base64 SASL data; `""` is the empty response.
fn base64(bytes: &[u8]) -> Result<Vec<u8>, SyntaxError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    crate::auth::sasl::decode_base64(bytes).map_err(|_| SyntaxError::BadBase64)
}

/// Parses one framed command (RFC 5804 §4 `command`). Command names are
/// case-insensitive; arguments are strings except HAVESPACE's number.
pub fn parse_command(buf: &[u8]) -> Result<Command, SyntaxError> {
    let mut toks = tokens(buf)?.into_iter();
    let name = match toks.next() {
        None => return Err(SyntaxError::Empty),
        Some(Token::Str(_)) => return Err(SyntaxError::UnknownCommand),
        Some(Token::Atom(a)) => a.to_ascii_uppercase(),
    };
    let mut a = Args(toks);
    match name.as_str() {
        "AUTHENTICATE" => {
            let mechanism = a.text()?;
            let initial = a.optional_string()?.map(|s| base64(&s)).transpose()?;
            a.end(Command::Authenticate { mechanism, initial })
        }
        "STARTTLS" => a.end(Command::StartTls),
        "LOGOUT" => a.end(Command::Logout),
        "CAPABILITY" => a.end(Command::Capability),
        "HAVESPACE" => {
            let name = a.text()?;
            let size = a.number()?;
            a.end(Command::Script(ScriptCommand::HaveSpace { name, size }))
        }
        "PUTSCRIPT" => {
            let name = a.text()?;
            let script = a.text()?;
            a.end(Command::Script(ScriptCommand::PutScript { name, script }))
        }
        "LISTSCRIPTS" => a.end(Command::Script(ScriptCommand::ListScripts)),
        "SETACTIVE" => {
            let name = a.text()?;
            a.end(Command::Script(ScriptCommand::SetActive {
                name: (!name.is_empty()).then_some(name),
            }))
        }
        "GETSCRIPT" => {
            let name = a.text()?;
            a.end(Command::Script(ScriptCommand::GetScript { name }))
        }
        "DELETESCRIPT" => {
            let name = a.text()?;
            a.end(Command::Script(ScriptCommand::DeleteScript { name }))
        }
        "RENAMESCRIPT" => {
            let from = a.text()?;
            let to = a.text()?;
            a.end(Command::Script(ScriptCommand::RenameScript { from, to }))
        }
        "CHECKSCRIPT" => {
            let script = a.text()?;
            a.end(Command::Script(ScriptCommand::CheckScript { script }))
        }
        "NOOP" => {
            let tag = a.optional_string()?.map(utf8).transpose()?;
            a.end(Command::Noop { tag })
        }
        "UNAUTHENTICATE" => a.end(Command::Unauthenticate),
        _ => Err(SyntaxError::UnknownCommand),
    }
}

/// Parses a client's SASL response: one string, `"*"` to cancel (RFC 5804 §2.1).
pub fn parse_sasl_response(buf: &[u8]) -> Result<SaslResponse, SyntaxError> {
    let mut a = Args(tokens(buf)?.into_iter());
    let s = a.string()?;
    let r = if s == b"*" {
        SaslResponse::Abort
    } else {
        SaslResponse::Data(base64(&s)?)
    };
    a.end(r)
}

/// Response codes (RFC 5804 §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// DELETESCRIPT of the active script.
    Active,
    AlreadyExists,
    /// Authentication without TLS where the policy requires it.
    EncryptNeeded,
    NonExistent,
    QuotaMaxScripts,
    QuotaMaxSize,
    /// §2.13: NOOP's string echoed back.
    Tag(String),
    TryLater,
}

impl Code {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'(');
        match self {
            Code::Active => out.extend_from_slice(b"ACTIVE"),
            Code::AlreadyExists => out.extend_from_slice(b"ALREADYEXISTS"),
            Code::EncryptNeeded => out.extend_from_slice(b"ENCRYPT-NEEDED"),
            Code::NonExistent => out.extend_from_slice(b"NONEXISTENT"),
            Code::QuotaMaxScripts => out.extend_from_slice(b"QUOTA/MAXSCRIPTS"),
            Code::QuotaMaxSize => out.extend_from_slice(b"QUOTA/MAXSIZE"),
            Code::Tag(t) => {
                out.extend_from_slice(b"TAG ");
                encode_string(t.as_bytes(), out);
            }
            Code::TryLater => out.extend_from_slice(b"TRYLATER"),
        }
        out.push(b')');
    }
}

/// The three responses (RFC 5804 §1.2, §4 `response`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ok,
    No,
    Bye,
}

/// `OK`/`NO`/`BYE` [SP "(" code ")"] [SP string] CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub kind: Kind,
    pub code: Option<Code>,
    pub text: String,
}

impl Response {
    pub fn ok(text: &str) -> Response {
        Response {
            kind: Kind::Ok,
            code: None,
            text: text.into(),
        }
    }

    pub fn no(code: Option<Code>, text: impl Into<String>) -> Response {
        Response {
            kind: Kind::No,
            code,
            text: text.into(),
        }
    }

    pub fn bye(text: &str) -> Response {
        Response {
            kind: Kind::Bye,
            code: None,
            text: text.into(),
        }
    }

    pub fn with(mut self, code: Code) -> Response {
        self.code = Some(code);
        self
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.kind {
            Kind::Ok => b"OK",
            Kind::No => b"NO",
            Kind::Bye => b"BYE",
        });
        if let Some(code) = &self.code {
            out.push(b' ');
            code.encode(out);
        }
        if !self.text.is_empty() {
            out.push(b' ');
            encode_string(self.text.as_bytes(), out);
        }
        out.extend_from_slice(b"\r\n");
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A string as the server sends it: quoted when it can be (short, no CR, LF or NUL),
/// else a literal `{n}` CRLF octets (RFC 5804 §4 `literal-s2c`).
pub fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    if s.len() <= MAX_QUOTED && !s.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        response::quoted(out, s);
    } else {
        response::literal(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Result<Command, SyntaxError> {
        parse_command(s.as_bytes())
    }

    #[test]
    fn commands_table() {
        let ok: &[(&str, Command)] = &[
            ("CAPABILITY\r\n", Command::Capability),
            ("capability\r\n", Command::Capability),
            ("Logout\r\n", Command::Logout),
            ("STARTTLS\r\n", Command::StartTls),
            (
                "AUTHENTICATE \"PLAIN\" \"AGFsaWNlAHB3\"\r\n",
                Command::Authenticate {
                    mechanism: "PLAIN".into(),
                    initial: Some(b"\0alice\0pw".to_vec()),
                },
            ),
            (
                "AUTHENTICATE \"LOGIN\"\r\n",
                Command::Authenticate {
                    mechanism: "LOGIN".into(),
                    initial: None,
                },
            ),
            (
                "HAVESPACE \"my script\" 999\r\n",
                Command::Script(ScriptCommand::HaveSpace {
                    name: "my script".into(),
                    size: 999,
                }),
            ),
            (
                "PUTSCRIPT \"a\" {7+}\r\nkeep;\r\n\r\n",
                Command::Script(ScriptCommand::PutScript {
                    name: "a".into(),
                    script: "keep;\r\n".into(),
                }),
            ),
            (
                "PUTSCRIPT {1+}\r\nb {5}\r\nstop;\r\n",
                Command::Script(ScriptCommand::PutScript {
                    name: "b".into(),
                    script: "stop;".into(),
                }),
            ),
            (
                "PUTSCRIPT \"q\\\"uote\" \"keep;\"\r\n",
                Command::Script(ScriptCommand::PutScript {
                    name: "q\"uote".into(),
                    script: "keep;".into(),
                }),
            ),
            (
                "LISTSCRIPTS\r\n",
                Command::Script(ScriptCommand::ListScripts),
            ),
            (
                "SETACTIVE \"\"\r\n",
                Command::Script(ScriptCommand::SetActive { name: None }),
            ),
            (
                "SETACTIVE \"x\"\r\n",
                Command::Script(ScriptCommand::SetActive {
                    name: Some("x".into()),
                }),
            ),
            (
                "GETSCRIPT \"x\"\n",
                Command::Script(ScriptCommand::GetScript { name: "x".into() }),
            ),
            (
                "DELETESCRIPT \"x\"\r\n",
                Command::Script(ScriptCommand::DeleteScript { name: "x".into() }),
            ),
            (
                "RENAMESCRIPT \"x\" \"y\"\r\n",
                Command::Script(ScriptCommand::RenameScript {
                    from: "x".into(),
                    to: "y".into(),
                }),
            ),
            (
                "CHECKSCRIPT \"keep;\"\r\n",
                Command::Script(ScriptCommand::CheckScript {
                    script: "keep;".into(),
                }),
            ),
            ("NOOP\r\n", Command::Noop { tag: None }),
            (
                "NOOP \"t1\"\r\n",
                Command::Noop {
                    tag: Some("t1".into()),
                },
            ),
            ("UNAUTHENTICATE\r\n", Command::Unauthenticate),
        ];
        for (input, want) in ok {
            assert_eq!(cmd(input).as_ref(), Ok(want), "{input:?}");
        }
        let bad: &[(&str, SyntaxError)] = &[
            ("\r\n", SyntaxError::Empty),
            ("FOO\r\n", SyntaxError::UnknownCommand),
            ("\"LOGOUT\"\r\n", SyntaxError::UnknownCommand),
            ("LOGOUT x\r\n", SyntaxError::ExtraArgument),
            ("CAPABILITY \"x\"\r\n", SyntaxError::ExtraArgument),
            ("GETSCRIPT\r\n", SyntaxError::MissingArgument),
            ("GETSCRIPT x\r\n", SyntaxError::ExpectedString),
            ("GETSCRIPT \"x\r\n", SyntaxError::BadQuoted),
            ("GETSCRIPT \"a\\nb\"\r\n", SyntaxError::BadQuoted),
            ("HAVESPACE \"x\" 4294967296\r\n", SyntaxError::BadNumber),
            ("HAVESPACE \"x\" \"1\"\r\n", SyntaxError::BadNumber),
            ("GETSCRIPT  \"x\"\r\n", SyntaxError::BadAtom),
            ("AUTHENTICATE \"PLAIN\" \"!!\"\r\n", SyntaxError::BadBase64),
        ];
        for (input, want) in bad {
            assert_eq!(cmd(input).as_ref(), Err(want), "{input:?}");
        }
        assert_eq!(
            parse_command(b"GETSCRIPT {2+}\r\n\xff\xfe\r\n"),
            Err(SyntaxError::NotUtf8)
        );
        let long = format!("GETSCRIPT \"{}\"\r\n", "x".repeat(MAX_QUOTED + 1));
        assert_eq!(cmd(&long), Err(SyntaxError::BadQuoted));
    }

    #[test]
    fn sasl_responses() {
        assert_eq!(parse_sasl_response(b"\"*\"\r\n"), Ok(SaslResponse::Abort));
        assert_eq!(
            parse_sasl_response(b"\"YWxpY2U=\"\r\n"),
            Ok(SaslResponse::Data(b"alice".to_vec()))
        );
        assert_eq!(
            parse_sasl_response(b"{8+}\r\nYWxpY2U=\r\n"),
            Ok(SaslResponse::Data(b"alice".to_vec()))
        );
        assert_eq!(
            parse_sasl_response(b"\"\"\r\n"),
            Ok(SaslResponse::Data(Vec::new()))
        );
        assert!(parse_sasl_response(b"YWxpY2U=\r\n").is_err());
    }

    #[test]
    fn responses_encode() {
        let r = Response::no(Some(Code::QuotaMaxSize), "Too \"big\"");
        assert_eq!(r.to_bytes(), b"NO (QUOTA/MAXSIZE) \"Too \\\"big\\\"\"\r\n");
        let r = Response::ok("").with(Code::Tag("abc".into()));
        assert_eq!(r.to_bytes(), b"OK (TAG \"abc\")\r\n");
        let mut out = Vec::new();
        encode_string(b"a\r\nb", &mut out);
        assert_eq!(out, b"{4}\r\na\r\nb");
    }

    /// The framer fed in chunks of every size gives the same commands.
    #[test]
    fn framing_in_chunks() {
        let input: &[u8] =
            b"PUTSCRIPT \"a\" {7+}\r\nkeep;\r\n\r\nNOOP\r\nPUTSCRIPT \"b\" {20+}\r\n01234567890123456789\r\nLOGOUT\r\n";
        for chunk in 1..=input.len() {
            let mut p = Parser::new(10);
            let mut buf: Vec<u8> = Vec::new();
            let mut seen = Vec::new();
            let mut fed = 0;
            loop {
                match p.next(&buf) {
                    Framed::Command(n) => {
                        seen.push(format!("{:?}", parse_command(&buf[..n])));
                        buf.drain(..n);
                    }
                    Framed::Refused { consume, error, .. } => {
                        seen.push(format!("refused {error:?}"));
                        buf.drain(..consume);
                    }
                    Framed::Skip(n) => {
                        buf.drain(..n);
                    }
                    Framed::Incomplete if fed < input.len() => {
                        let end = (fed + chunk).min(input.len());
                        buf.extend_from_slice(&input[fed..end]);
                        fed = end;
                    }
                    other => {
                        assert_eq!(other, Framed::Incomplete);
                        break;
                    }
                }
            }
            assert_eq!(
                seen,
                [
                    format!(
                        "{:?}",
                        Ok::<_, SyntaxError>(Command::Script(ScriptCommand::PutScript {
                            name: "a".into(),
                            script: "keep;\r\n".into()
                        }))
                    ),
                    format!("{:?}", Ok::<_, SyntaxError>(Command::Noop { tag: None })),
                    "refused LiteralTooBig { sync: false }".to_string(),
                    format!("{:?}", Ok::<_, SyntaxError>(Command::Logout)),
                ],
                "chunk {chunk}"
            );
        }
    }
}
