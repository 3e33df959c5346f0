//! POP3 commands and responses as bytes (RFC 1939 §3, §9; RFC 2449 §3, §8; RFC 5034 §4).
//!
//! Pure: a framed line in, a [`Command`] or a [`SyntaxError`] out; responses and message
//! payloads encode into a buffer. Framing itself is [`crate::net::line::split_line`] (the
//! same CRLF-or-LF line rule with a cap).

use std::fmt::Write as _;

/// One POP3 command (RFC 1939 §4-§7, RFC 2449 §5, RFC 2595 §4, RFC 5034 §4, RFC 6856 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name` (RFC 1939 §7).
    User(String),
    /// `PASS string`: everything after the first space, spaces included (RFC 1939 §7).
    Pass(String),
    /// `APOP name digest`: recognised so it can be refused clearly (we keep only argon2id
    /// hashes, so the shared secret APOP needs does not exist).
    Apop,
    /// `AUTH [mechanism [initial-response]]` (RFC 5034 §4); bare `AUTH` lists mechanisms.
    Auth(Option<AuthStart>),
    Stls,
    Capa,
    Utf8,
    Quit,
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    /// `TOP msg n` (RFC 1939 §7).
    Top(u32, u32),
    Uidl(Option<u32>),
}

/// `AUTH mechanism [initial-response]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthStart {
    /// Upper-cased (SASL mechanism names are case-insensitive, RFC 4422 §3.1).
    pub mechanism: String,
    /// The base64 initial response as sent; `=` stands for an empty one.
    pub initial: Option<String>,
}

/// Why a line is not a command. Each becomes `-ERR` with the connection kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    Empty,
    /// A NUL or other control byte in the line.
    BadByte,
    Unknown,
    MissingArgument,
    ExtraArgument,
    /// Not a decimal number in 1..=u32::MAX (or 0..=u32::MAX for TOP's line count).
    BadNumber,
    /// The line exceeded the configured cap.
    LineTooLong,
}

fn number(s: &str, zero_ok: bool) -> Result<u32, SyntaxError> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SyntaxError::BadNumber);
    }
    match s.parse::<u32>() {
        Ok(0) if !zero_ok => Err(SyntaxError::BadNumber),
        Ok(n) => Ok(n),
        Err(_) => Err(SyntaxError::BadNumber),
    }
}

/// Parses one command line (terminator removed).
///
/// RFC 1939 §3: a case-insensitive keyword of 3-4 characters, arguments separated by a
/// single space. We also accept trailing spaces, which some clients send.
pub fn parse_command(line: &[u8]) -> Result<Command, SyntaxError> {
    if line.iter().any(|b| *b == 0 || *b == b'\r' || *b == b'\n') {
        return Err(SyntaxError::BadByte);
    }
    let text = std::str::from_utf8(line).map_err(|_| SyntaxError::BadByte)?;
    if text.trim().is_empty() {
        return Err(SyntaxError::Empty);
    }
    let (keyword, rest) = match text.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (text, None),
    };
    let keyword = keyword.to_ascii_uppercase();
    if keyword == "PASS" {
        // The password is the rest of the line, verbatim (RFC 1939 §7 allows spaces).
        return match rest {
            Some(p) if !p.is_empty() => Ok(Command::Pass(p.to_string())),
            _ => Err(SyntaxError::MissingArgument),
        };
    }
    let args: Vec<&str> = rest
        .map(|r| r.trim_end_matches(' '))
        .filter(|r| !r.is_empty())
        .map(|r| r.split(' ').collect())
        .unwrap_or_default();
    if args
        .iter()
        .any(|a| a.is_empty() || a.bytes().any(|b| b < 0x20 || b == 0x7f))
    {
        return Err(SyntaxError::BadByte);
    }
    let none = |c: Command| {
        if args.is_empty() {
            Ok(c)
        } else {
            Err(SyntaxError::ExtraArgument)
        }
    };
    let optional = |f: fn(Option<u32>) -> Command| match args.as_slice() {
        [] => Ok(f(None)),
        [n] => Ok(f(Some(number(n, false)?))),
        _ => Err(SyntaxError::ExtraArgument),
    };
    let one = |f: fn(u32) -> Command| match args.as_slice() {
        [] => Err(SyntaxError::MissingArgument),
        [n] => Ok(f(number(n, false)?)),
        _ => Err(SyntaxError::ExtraArgument),
    };
    match keyword.as_str() {
        "USER" => match args.as_slice() {
            [] => Err(SyntaxError::MissingArgument),
            [name] => Ok(Command::User((*name).to_string())),
            _ => Err(SyntaxError::ExtraArgument),
        },
        "APOP" => Ok(Command::Apop),
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth(None)),
            [m] => Ok(Command::Auth(Some(AuthStart {
                mechanism: m.to_ascii_uppercase(),
                initial: None,
            }))),
            [m, ir] => Ok(Command::Auth(Some(AuthStart {
                mechanism: m.to_ascii_uppercase(),
                initial: Some((*ir).to_string()),
            }))),
            _ => Err(SyntaxError::ExtraArgument),
        },
        "STLS" => none(Command::Stls),
        "CAPA" => none(Command::Capa),
        "UTF8" => none(Command::Utf8),
        "QUIT" => none(Command::Quit),
        "STAT" => none(Command::Stat),
        "NOOP" => none(Command::Noop),
        "RSET" => none(Command::Rset),
        "LIST" => optional(Command::List),
        "UIDL" => optional(Command::Uidl),
        "RETR" => one(Command::Retr),
        "DELE" => one(Command::Dele),
        "TOP" => match args.as_slice() {
            [] | [_] => Err(SyntaxError::MissingArgument),
            [n, k] => Ok(Command::Top(number(n, false)?, number(k, true)?)),
            _ => Err(SyntaxError::ExtraArgument),
        },
        _ => Err(SyntaxError::Unknown),
    }
}

/// An extended response code (RFC 2449 §8, RFC 3206 §4-§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InUse,
    LoginDelay,
    SysTemp,
    SysPerm,
    Auth,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InUse => "IN-USE",
            Code::LoginDelay => "LOGIN-DELAY",
            Code::SysTemp => "SYS/TEMP",
            Code::SysPerm => "SYS/PERM",
            Code::Auth => "AUTH",
        }
    }
}

/// A single-line status response, `+OK text` or `-ERR [CODE] text` (RFC 1939 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub ok: bool,
    pub code: Option<Code>,
    pub text: String,
}

impl Response {
    pub fn ok(text: impl Into<String>) -> Response {
        Response {
            ok: true,
            code: None,
            text: text.into(),
        }
    }

    pub fn err(code: Option<Code>, text: impl Into<String>) -> Response {
        Response {
            ok: false,
            code,
            text: text.into(),
        }
    }

    /// Appends the line. The text is cut to keep the line within 512 octets including
    /// CRLF (RFC 1939 §3) and never carries CR or LF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut line = String::from(if self.ok { "+OK" } else { "-ERR" });
        if let Some(c) = self.code {
            let _ = write!(line, " [{}]", c.as_str());
        }
        if !self.text.is_empty() {
            line.push(' ');
            for ch in self.text.chars() {
                if line.len() + ch.len_utf8() > 510 {
                    break;
                }
                line.push(if ch.is_control() { ' ' } else { ch });
            }
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends a multi-line body: each line byte-stuffed, then the `.` terminator (RFC 1939 §3).
pub fn encode_lines<'a>(lines: impl IntoIterator<Item = &'a str>, out: &mut Vec<u8>) {
    for l in lines {
        if l.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// The lines of a message as POP3 sends them, without line ends.
///
/// A line ends at CRLF, a bare LF or a bare CR (each is sent as CRLF, PROTOCOL.md §2.12);
/// a last line without an end is still a line (and gets a CRLF). NUL bytes are kept here
/// and replaced by 0x80 when sent (see [`push_line`]), which keeps the size unchanged.
pub fn message_lines(msg: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = msg;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            None => {
                let line = rest;
                rest = &[];
                Some(line)
            }
            Some(p) => {
                let line = rest.get(..p).unwrap_or(&[]);
                let crlf = rest.get(p) == Some(&b'\r') && rest.get(p + 1) == Some(&b'\n');
                rest = rest.get(p + if crlf { 2 } else { 1 }..).unwrap_or(&[]);
                Some(line)
            }
        }
    })
}

/// The octets RETR sends for `msg` before byte-stuffing and without the terminator
/// (RFC 1939 §11: what LIST and STAT report).
pub fn pop3_size(msg: &[u8]) -> u64 {
    message_lines(msg).map(|l| l.len() as u64 + 2).sum()
}

/// Appends one message line: byte-stuffed, NUL replaced by 0x80 (Dovecot's
/// `outlook-no-nuls`, PROTOCOL.md §2.26), CRLF-terminated.
fn push_line(line: &[u8], out: &mut Vec<u8>) {
    if line.first() == Some(&b'.') {
        out.push(b'.');
    }
    out.extend(line.iter().map(|b| if *b == 0 { 0x80 } else { *b }));
    out.extend_from_slice(b"\r\n");
}

/// Appends the body of a `RETR` (`top == None`) or `TOP n k` response and the terminator
/// (RFC 1939 §7). TOP always sends the blank line that ends the header, even for a
/// message that has none (Dovecot `oe-ns-eoh`, quirk Q7). Returns true when the whole
/// message was sent (RETR, or TOP with `k` covering the whole body).
pub fn encode_message(msg: &[u8], top: Option<u32>, out: &mut Vec<u8>) -> bool {
    let Some(k) = top else {
        for line in message_lines(msg) {
            push_line(line, out);
        }
        out.extend_from_slice(b".\r\n");
        return true;
    };
    let mut lines = message_lines(msg);
    let mut had_blank = false;
    for line in lines.by_ref() {
        if line.is_empty() {
            had_blank = true;
            break;
        }
        push_line(line, out);
    }
    out.extend_from_slice(b"\r\n");
    let mut whole = true;
    for (sent, line) in lines.enumerate() {
        if u64::try_from(sent).unwrap_or(u64::MAX) >= u64::from(k) {
            whole = false;
            break;
        }
        push_line(line, out);
    }
    out.extend_from_slice(b".\r\n");
    whole && had_blank
}

/// A UIDL (RFC 1939 §7): 24 lowercase hex digits of the BLAKE3 hash of the message as
/// RETR sends it (its [`message_lines`], each with CRLF, before stuffing) and its internal
/// date. Hashing the sent form makes a message whose last line lacked an end, and that
/// comes back from an mbox round trip with one, keep its id. The same message in the same store, after
/// compaction, or after an export and re-import that keeps the bytes and date, gets the
/// same id. Exact duplicates in one maildrop get `-2`, `-3`, ... by UID order (see
/// docs/decisions.md for the limits).
pub fn uidl_base(msg: &[u8], internal_date: i64) -> String {
    let mut h = blake3::Hasher::new();
    for line in message_lines(msg) {
        h.update(line);
        h.update(b"\r\n");
    }
    h.update(&internal_date.to_le_bytes());
    let hash = h.finalize();
    let mut s = String::with_capacity(24);
    for b in hash.as_bytes().iter().take(12) {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(
            parse_command(b"user alice"),
            Ok(Command::User("alice".into()))
        );
        assert_eq!(
            parse_command(b"PASS a b  c"),
            Ok(Command::Pass("a b  c".into()))
        );
        assert_eq!(parse_command(b"LIST"), Ok(Command::List(None)));
        assert_eq!(parse_command(b"list 2 "), Ok(Command::List(Some(2))));
        assert_eq!(parse_command(b"TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(
            parse_command(b"AUTH plain ="),
            Ok(Command::Auth(Some(AuthStart {
                mechanism: "PLAIN".into(),
                initial: Some("=".into())
            })))
        );
        assert_eq!(parse_command(b"AUTH"), Ok(Command::Auth(None)));
    }

    #[test]
    fn bad_commands() {
        for (line, e) in [
            (&b""[..], SyntaxError::Empty),
            (b"   ", SyntaxError::Empty),
            (b"XYZZY", SyntaxError::Unknown),
            (b"RETR", SyntaxError::MissingArgument),
            (b"RETR 0", SyntaxError::BadNumber),
            (b"RETR -1", SyntaxError::BadNumber),
            (b"RETR +1", SyntaxError::BadNumber),
            (b"RETR 99999999999", SyntaxError::BadNumber),
            (b"RETR 1 2", SyntaxError::ExtraArgument),
            (b"STAT x", SyntaxError::ExtraArgument),
            (b"TOP 1", SyntaxError::MissingArgument),
            (b"LIST  1", SyntaxError::BadByte),
            (b"USER a\0b", SyntaxError::BadByte),
            (b"PASS", SyntaxError::MissingArgument),
            (b"\xff\xfe", SyntaxError::BadByte),
        ] {
            assert_eq!(
                parse_command(line),
                Err(e),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    fn sent(msg: &[u8], top: Option<u32>) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let whole = encode_message(msg, top, &mut out);
        (out, whole)
    }

    #[test]
    fn retr_stuffs_and_ends_lines() {
        let msg = b"A: b\r\n\r\n.x\r\nno end";
        assert_eq!(sent(msg, None).0, b"A: b\r\n\r\n..x\r\nno end\r\n.\r\n");
        assert_eq!(pop3_size(msg), 6 + 2 + 4 + 8);
        assert_eq!(pop3_size(b""), 0);
        assert_eq!(sent(b"", None).0, b".\r\n");
        assert_eq!(sent(b"a\rb\nc\0", None).0, b"a\r\nb\r\nc\x80\r\n.\r\n");
        assert_eq!(pop3_size(b"a\rb\nc\0"), 10);
    }

    #[test]
    fn size_matches_unstuffed_retr() {
        for msg in [&b"x\r\n.\r\n..\r\n"[..], b"\r\n\r\n", b"a\r\r\nb", b"\n.\n"] {
            let (out, _) = sent(msg, None);
            let body = out.strip_suffix(b".\r\n").unwrap();
            let unstuffed: usize = body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| l.len() + 1 - usize::from(l.starts_with(b"..")))
                .sum();
            assert_eq!(unstuffed as u64, pop3_size(msg), "{msg:?}");
        }
    }

    #[test]
    fn top_emits_the_blank_line() {
        let msg = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n";
        assert_eq!(
            sent(msg, Some(0)),
            (b"A: 1\r\nB: 2\r\n\r\n.\r\n".to_vec(), false)
        );
        assert_eq!(
            sent(msg, Some(1)),
            (b"A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n".to_vec(), false)
        );
        assert_eq!(
            sent(msg, Some(9)),
            (b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n".to_vec(), true)
        );
        assert!(sent(msg, Some(2)).1);
        // A message that is only headers still gets the end-of-header line (Q7).
        assert_eq!(
            sent(b"A: 1\r\n", Some(5)),
            (b"A: 1\r\n\r\n.\r\n".to_vec(), false)
        );
    }

    #[test]
    fn responses_are_bounded() {
        let mut out = Vec::new();
        Response::err(Some(Code::InUse), "x\r\ny".repeat(400)).encode(&mut out);
        assert!(out.len() <= 512);
        assert!(out.starts_with(b"-ERR [IN-USE] x  y"));
        assert!(out.ends_with(b"\r\n"));
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
    }

    #[test]
    fn uidl_is_printable_and_date_dependent() {
        let a = uidl_base(b"m", 1);
        assert_eq!(a.len(), 24);
        assert!(a.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_ne!(a, uidl_base(b"m", 2));
        assert_eq!(a, uidl_base(b"m\r\n", 1));
        assert_eq!(a, uidl_base(b"m\n", 1));
        assert_ne!(a, uidl_base(b"m\r\n\r\n", 1));
        assert_eq!(a, uidl_base(b"m", 1));
    }
}
