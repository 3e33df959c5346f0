//! LMTP command grammar (RFC 2033 §4; RFC 5321 §4.1.1, §4.1.2; RFC 1870; RFC 6152).
//!
//! [`parse_command`] takes one command line without its line terminator and returns a
//! [`Command`] or a [`SyntaxError`]; it never allocates more than the line's length.
//!
//! Leniency (PROTOCOL.md §3.17), each a `DEVIATION:` from the strict ABNF:
//! - verbs and `FROM:`/`TO:` are case-insensitive (that one is RFC 5321 §2.4);
//! - spaces after the colon and runs of spaces/tabs between parameters are accepted,
//!   trailing whitespace is ignored;
//! - a dot-string local part may contain leading, trailing or doubled dots (seen in the
//!   wild; the stored address is the one the MTA sent);
//! - a domain may contain `_`;
//! - a mailbox without `@domain` is accepted in MAIL and RCPT (LMTP peers often hand
//!   over bare user names; RFC 5321 §4.1.1.3 only allows `<Postmaster>`).
//!
//! Not accepted: paths without angle brackets, 8-bit octets in addresses (SMTPUTF8,
//! RFC 6531, is not advertised), RCPT parameters, and any MAIL parameter but `SIZE`
//! and `BODY`.

use crate::mime::header::{trim_end_by, trim_start_by};
use std::fmt;

/// Longest mailbox we accept, in octets. RFC 5321 §4.5.3.1.3 limits a path to 256
/// octets; SRS and VERP senders exceed it in practice, so we allow twice that.
const MAX_MAILBOX: usize = 512;

/// One parsed LMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `LHLO domain` (RFC 2033 §4.1).
    Lhlo { domain: String },
    /// `HELO …`: recognised only so the session can refuse it (RFC 2033 §4.1).
    Helo,
    /// `EHLO …`: recognised only so the session can refuse it (RFC 2033 §4.1).
    Ehlo,
    /// `MAIL FROM:<reverse-path> [params]` (RFC 5321 §4.1.1.2).
    Mail {
        from: ReversePath,
        params: MailParams,
    },
    /// `RCPT TO:<forward-path>` (RFC 5321 §4.1.1.3); source routes are dropped.
    Rcpt { to: Mailbox },
    /// `DATA` (RFC 5321 §4.1.1.4).
    Data,
    /// `RSET` (RFC 5321 §4.1.1.5).
    Rset,
    /// `NOOP [string]` (RFC 5321 §4.1.1.9); the argument is ignored.
    Noop,
    /// `QUIT` (RFC 5321 §4.1.1.10).
    Quit,
    /// `STARTTLS` (RFC 3207 §4); no parameters.
    StartTls,
    /// `VRFY string` (RFC 5321 §4.1.1.6); answered 252 without looking anything up.
    Vrfy,
    /// `HELP [string]` (RFC 5321 §4.1.1.8).
    Help,
}

/// The MAIL reverse-path (RFC 5321 §4.1.2): the null path `<>` or a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversePath {
    /// `<>`, used by bounces and other notifications (RFC 5321 §4.5.5).
    Null,
    Mailbox(Mailbox),
}

impl fmt::Display for ReversePath {
    /// The bracketed form for a `Return-Path:` header (RFC 5321 §4.4): `<>` or `<a@b>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("<>"),
            Self::Mailbox(m) => write!(f, "<{}>", m.as_str()),
        }
    }
}

/// A mailbox as it appeared on the wire, source route removed: `local@domain` or a bare
/// `local`. Printable ASCII only. A quoted local part keeps its quotes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    text: String,
    /// Byte offset of the `@` separating local part and domain, if there is a domain.
    at: Option<usize>,
}

impl Mailbox {
    /// The whole mailbox as sent, e.g. `"a b"@example.org`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The local part as sent (quotes included if it was quoted).
    pub fn local_part(&self) -> &str {
        match self.at {
            Some(at) => self.text.get(..at).unwrap_or(&self.text),
            None => &self.text,
        }
    }

    /// The domain, if the mailbox had one.
    pub fn domain(&self) -> Option<&str> {
        self.at.and_then(|at| self.text.get(at.saturating_add(1)..))
    }

    /// The local part with quoting removed (`"a\"b"` -> `a"b`); RFC 5321 §4.1.2 says a
    /// quoted and an unquoted form of the same string name the same mailbox. Use this
    /// for user lookup.
    pub fn local_part_unquoted(&self) -> String {
        let local = self.local_part();
        let Some(inner) = local
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
        else {
            return local.to_owned();
        };
        let mut out = String::with_capacity(inner.len());
        let mut escaped = false;
        for c in inner.chars() {
            if escaped || c != '\\' {
                out.push(c);
                escaped = false;
            } else {
                escaped = true;
            }
        }
        out
    }
}

/// `BODY=` values (RFC 6152 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

/// MAIL parameters we support (RFC 5321 §4.1.1.11 esmtp-param).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n`, the client's size estimate (RFC 1870 §3, §6); saturates at `u64::MAX`.
    pub size: Option<u64>,
    /// `BODY=7BIT|8BITMIME` (RFC 6152 §3).
    pub body: Option<Body>,
}

/// Why a command line was refused. [`SyntaxError::code`], [`SyntaxError::enhanced`] and
/// [`SyntaxError::text`] form the one table mapping parse errors to replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxError {
    /// Unknown verb or empty line: 500 5.5.1 (RFC 5321 §4.2.4, RFC 3463 §3.6).
    UnknownCommand,
    /// The framing layer found a line over the cap: 500 5.5.2 (RFC 5321 §4.5.3.1.4).
    LineTooLong,
    /// Known verb, malformed arguments: 501 5.5.4 (RFC 5321 §4.2.2).
    BadArguments,
    /// Malformed MAIL reverse-path: 501 5.1.7 (RFC 3463 §3.2).
    BadSender,
    /// Malformed RCPT forward-path: 501 5.1.3 (RFC 3463 §3.2).
    BadRecipient,
    /// 8-bit octets in a MAIL address without SMTPUTF8: 553 5.1.7.
    NonAsciiSender,
    /// 8-bit octets in a RCPT address without SMTPUTF8: 553 5.1.3.
    NonAsciiRecipient,
    /// A parameter we do not implement or advertise: 555 5.5.4 (RFC 5321 §4.1.1.11).
    UnsupportedParameter,
}

impl SyntaxError {
    /// The reply code.
    pub fn code(self) -> u16 {
        match self {
            Self::UnknownCommand | Self::LineTooLong => 500,
            Self::BadArguments | Self::BadSender | Self::BadRecipient => 501,
            Self::NonAsciiSender | Self::NonAsciiRecipient => 553,
            Self::UnsupportedParameter => 555,
        }
    }

    /// The enhanced status code (RFC 3463).
    pub fn enhanced(self) -> (u8, u16, u16) {
        match self {
            Self::UnknownCommand => (5, 5, 1),
            Self::LineTooLong => (5, 5, 2),
            Self::BadArguments | Self::UnsupportedParameter => (5, 5, 4),
            Self::BadSender | Self::NonAsciiSender => (5, 1, 7),
            Self::BadRecipient | Self::NonAsciiRecipient => (5, 1, 3),
        }
    }

    /// The reply text. Fixed strings only: nothing from the input is echoed.
    pub fn text(self) -> &'static str {
        match self {
            Self::UnknownCommand => "command not recognized",
            Self::LineTooLong => "line too long",
            Self::BadArguments => "syntax error in arguments",
            Self::BadSender => "bad sender address syntax",
            Self::BadRecipient => "bad recipient address syntax",
            Self::NonAsciiSender | Self::NonAsciiRecipient => {
                "8-bit addresses not supported (no SMTPUTF8)"
            }
            Self::UnsupportedParameter => "unsupported parameter",
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.text())
    }
}

impl std::error::Error for SyntaxError {}

/// Parses one command line, terminator excluded (RFC 5321 §4.1.1; RFC 2033 §4.1).
pub fn parse_command(line: &[u8]) -> Result<Command, SyntaxError> {
    let line = trim_end_by(line, is_space);
    let verb_len = line
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(line.len());
    let (verb, rest) = line.split_at(verb_len);
    let args = trim_start(rest);
    // The one verb longer than four letters (RFC 3207 §4).
    if verb.eq_ignore_ascii_case(b"STARTTLS") {
        return no_args(args, Command::StartTls);
    }
    let mut verb: [u8; 4] = verb.try_into().map_err(|_| SyntaxError::UnknownCommand)?;
    verb.make_ascii_uppercase();
    match &verb {
        b"LHLO" => parse_lhlo(args),
        b"HELO" => Ok(Command::Helo),
        b"EHLO" => Ok(Command::Ehlo),
        b"MAIL" => parse_mail(args),
        b"RCPT" => parse_rcpt(args),
        b"DATA" => no_args(args, Command::Data),
        b"RSET" => no_args(args, Command::Rset),
        b"QUIT" => no_args(args, Command::Quit),
        b"NOOP" => Ok(Command::Noop),
        b"VRFY" => Ok(Command::Vrfy),
        b"HELP" => Ok(Command::Help),
        _ => Err(SyntaxError::UnknownCommand),
    }
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_start(s: &[u8]) -> &[u8] {
    trim_start_by(s, is_space)
}

fn no_args(args: &[u8], cmd: Command) -> Result<Command, SyntaxError> {
    if args.is_empty() {
        Ok(cmd)
    } else {
        Err(SyntaxError::BadArguments)
    }
}

/// `LHLO SP Domain` (RFC 2033 §4.1; RFC 5321 §4.1.1.1). Any single token of printable
/// ASCII is taken: the name only goes into our `Received:` header, where such a token
/// cannot break the header.
fn parse_lhlo(args: &[u8]) -> Result<Command, SyntaxError> {
    if args.is_empty() || args.len() > 255 || !args.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(SyntaxError::BadArguments);
    }
    let domain = String::from_utf8(args.to_vec()).map_err(|_| SyntaxError::BadArguments)?;
    Ok(Command::Lhlo { domain })
}

/// Strips a case-insensitive keyword such as `FROM:` and the spaces after it.
fn strip_keyword<'a>(args: &'a [u8], keyword: &[u8]) -> Option<&'a [u8]> {
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    Some(trim_start(args.get(keyword.len()..)?))
}

/// Splits `<path> rest` into the path's inside and the rest. Quoted strings may contain
/// `>`, so the closing bracket is found by scanning past quoted pairs.
fn split_path(args: &[u8]) -> Option<(&[u8], &[u8])> {
    let inner = args.strip_prefix(b"<")?;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &b) in inner.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if in_quotes && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == b'>' && !in_quotes {
            let (path, rest) = inner.split_at(i);
            return Some((path, rest.get(1..)?));
        }
    }
    None
}

/// Which side of the envelope an address is on, for picking the error.
#[derive(Clone, Copy)]
enum Side {
    Sender,
    Recipient,
}

impl Side {
    fn bad(self) -> SyntaxError {
        match self {
            Self::Sender => SyntaxError::BadSender,
            Self::Recipient => SyntaxError::BadRecipient,
        }
    }

    fn non_ascii(self) -> SyntaxError {
        match self {
            Self::Sender => SyntaxError::NonAsciiSender,
            Self::Recipient => SyntaxError::NonAsciiRecipient,
        }
    }
}

/// `MAIL FROM:<reverse-path> [SP Mail-parameters]` (RFC 5321 §4.1.1.2).
fn parse_mail(args: &[u8]) -> Result<Command, SyntaxError> {
    let args = strip_keyword(args, b"FROM:").ok_or(SyntaxError::BadArguments)?;
    let (path, rest) = split_path(args).ok_or(SyntaxError::BadSender)?;
    let from = if path.is_empty() {
        ReversePath::Null
    } else {
        ReversePath::Mailbox(parse_path(path, Side::Sender)?)
    };
    let params = parse_mail_params(rest)?;
    Ok(Command::Mail { from, params })
}

/// `RCPT TO:<forward-path> [SP Rcpt-parameters]` (RFC 5321 §4.1.1.3). We support no
/// RCPT parameters (no DSN), so any parameter is 555.
fn parse_rcpt(args: &[u8]) -> Result<Command, SyntaxError> {
    let args = strip_keyword(args, b"TO:").ok_or(SyntaxError::BadArguments)?;
    let (path, rest) = split_path(args).ok_or(SyntaxError::BadRecipient)?;
    let to = parse_path(path, Side::Recipient)?;
    if trim_start(rest).is_empty() {
        Ok(Command::Rcpt { to })
    } else if rest.first().is_some_and(|&b| is_space(b)) {
        Err(SyntaxError::UnsupportedParameter)
    } else {
        Err(SyntaxError::BadArguments)
    }
}

fn is_esmtp_keyword_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// `Mail-parameters = esmtp-param *(SP esmtp-param)` (RFC 5321 §4.1.2).
fn parse_mail_params(rest: &[u8]) -> Result<MailParams, SyntaxError> {
    let mut params = MailParams::default();
    if rest.is_empty() {
        return Ok(params);
    }
    if !rest.first().is_some_and(|&b| is_space(b)) {
        return Err(SyntaxError::BadArguments);
    }
    for param in rest.split(|&b| is_space(b)).filter(|p| !p.is_empty()) {
        let (keyword, value) = match param.iter().position(|&b| b == b'=') {
            Some(eq) => {
                let (k, v) = param.split_at(eq);
                (k, Some(v.get(1..).unwrap_or_default()))
            }
            None => (param, None),
        };
        let keyword_ok = keyword.first().is_some_and(u8::is_ascii_alphanumeric)
            && keyword.iter().all(|&b| is_esmtp_keyword_char(b));
        let value_ok = value.is_none_or(|v| {
            !v.is_empty() && v.iter().all(|&b| (33..=126).contains(&b) && b != b'=')
        });
        if !keyword_ok || !value_ok {
            return Err(SyntaxError::BadArguments);
        }
        if keyword.eq_ignore_ascii_case(b"SIZE") {
            let v = value.ok_or(SyntaxError::BadArguments)?;
            if params.size.is_some() {
                return Err(SyntaxError::BadArguments);
            }
            params.size = Some(parse_size(v)?);
        } else if keyword.eq_ignore_ascii_case(b"BODY") {
            let v = value.ok_or(SyntaxError::BadArguments)?;
            if params.body.is_some() {
                return Err(SyntaxError::BadArguments);
            }
            params.body = Some(if v.eq_ignore_ascii_case(b"7BIT") {
                Body::SevenBit
            } else if v.eq_ignore_ascii_case(b"8BITMIME") {
                Body::EightBitMime
            } else {
                return Err(SyntaxError::BadArguments);
            });
        } else {
            return Err(SyntaxError::UnsupportedParameter);
        }
    }
    Ok(params)
}

/// `size-value = 1*20DIGIT` (RFC 1870 §3); values beyond `u64` saturate, which any
/// limit then refuses.
fn parse_size(v: &[u8]) -> Result<u64, SyntaxError> {
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return Err(SyntaxError::BadArguments);
    }
    Ok(v.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10)
            .saturating_add(u64::from(d.saturating_sub(b'0')))
    }))
}

/// `Path = "<" [ A-d-l ":" ] Mailbox ">"` without the brackets (RFC 5321 §4.1.2). The
/// source route (`A-d-l`) is parsed and dropped (RFC 5321 §4.1.1.3, Appendix C).
fn parse_path(path: &[u8], side: Side) -> Result<Mailbox, SyntaxError> {
    if !path.is_ascii() {
        return Err(side.non_ascii());
    }
    if path.len() > MAX_MAILBOX.saturating_add(256) {
        return Err(side.bad());
    }
    let mut rest = path;
    if rest.first() == Some(&b'@') {
        // A-d-l = At-domain *( "," At-domain ); At-domain = "@" Domain
        loop {
            let after_at = rest.strip_prefix(b"@").ok_or(side.bad())?;
            let domain_len = domain_len(after_at);
            if domain_len == 0 {
                return Err(side.bad());
            }
            let (_, tail) = after_at.split_at(domain_len);
            match tail.split_first() {
                Some((b',', more)) => rest = more,
                Some((b':', more)) => {
                    rest = more;
                    break;
                }
                _ => return Err(side.bad()),
            }
        }
    }
    parse_mailbox(rest, side)
}

/// `Mailbox = Local-part [ "@" ( Domain / address-literal ) ]` (RFC 5321 §4.1.2; the
/// domain is optional here, see the module notes).
fn parse_mailbox(s: &[u8], side: Side) -> Result<Mailbox, SyntaxError> {
    let local_len = if s.first() == Some(&b'"') {
        quoted_string_len(s).ok_or(side.bad())?
    } else {
        s.iter().take_while(|&&b| is_atext(b) || b == b'.').count()
    };
    if local_len == 0 || local_len > MAX_MAILBOX {
        return Err(side.bad());
    }
    let (_, tail) = s.split_at(local_len);
    let at = match tail.split_first() {
        None => None,
        Some((b'@', domain)) => {
            if domain.is_empty() || domain_len(domain) != domain.len() {
                return Err(side.bad());
            }
            Some(local_len)
        }
        Some(_) => return Err(side.bad()),
    };
    if s.len() > MAX_MAILBOX {
        return Err(side.bad());
    }
    let text = String::from_utf8(s.to_vec()).map_err(|_| side.bad())?;
    Ok(Mailbox { text, at })
}

/// `atext` (RFC 5322 §3.2.3), as used by RFC 5321's `Atom`.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// Length of a `Quoted-string` at the start of `s` (RFC 5321 §4.1.2): `qtextSMTP` is
/// %d32-33 / %d35-91 / %d93-126, `quoted-pairSMTP` is `\` followed by %d32-126.
fn quoted_string_len(s: &[u8]) -> Option<usize> {
    let mut iter = s.iter().enumerate().skip(1);
    while let Some((i, &b)) = iter.next() {
        match b {
            b'"' => return Some(i.saturating_add(1)),
            b'\\' => match iter.next() {
                Some((_, c)) if (32..=126).contains(c) => {}
                _ => return None,
            },
            32..=126 => {}
            _ => return None,
        }
    }
    None
}

/// Length of a `Domain` or `address-literal` at the start of `s`; 0 if there is none.
/// Sub-domains are taken as letters, digits, `-`, `_` and `.`; a literal is `[` dtext
/// (%d33-90 / %d94-126) `]` (RFC 5321 §4.1.2, §4.1.3).
fn domain_len(s: &[u8]) -> usize {
    if s.first() == Some(&b'[') {
        let inner = s
            .iter()
            .skip(1)
            .take_while(|&&b| (33..=90).contains(&b) || (94..=126).contains(&b))
            .count();
        let close = inner.saturating_add(1);
        if inner > 0 && s.get(close) == Some(&b']') {
            close.saturating_add(1)
        } else {
            0
        }
    } else {
        let n = s
            .iter()
            .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            .count();
        let label_ok = s
            .get(..n)
            .is_some_and(|d| d.split(|&b| b == b'.').all(|label| !label.is_empty()));
        if label_ok { n } else { 0 }
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn mb(s: &str) -> Mailbox {
        match parse_command(format!("RCPT TO:<{s}>").as_bytes()) {
            Ok(Command::Rcpt { to }) => to,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn parse_command_valid_table() {
        let cases: &[(&str, Command)] = &[
            (
                "LHLO mx.example.org",
                Command::Lhlo {
                    domain: "mx.example.org".into(),
                },
            ),
            (
                "lhlo [127.0.0.1]",
                Command::Lhlo {
                    domain: "[127.0.0.1]".into(),
                },
            ),
            ("HELO x", Command::Helo),
            ("ehlo x", Command::Ehlo),
            ("DATA", Command::Data),
            ("data  ", Command::Data),
            ("RSET", Command::Rset),
            ("NOOP", Command::Noop),
            ("NOOP anything at all", Command::Noop),
            ("QUIT", Command::Quit),
            ("starttls", Command::StartTls),
            ("VRFY bob", Command::Vrfy),
            ("HELP", Command::Help),
            ("HELP DATA", Command::Help),
            (
                "MAIL FROM:<>",
                Command::Mail {
                    from: ReversePath::Null,
                    params: MailParams::default(),
                },
            ),
            (
                "mail from: <> BODY=8BITMIME SIZE=100",
                Command::Mail {
                    from: ReversePath::Null,
                    params: MailParams {
                        size: Some(100),
                        body: Some(Body::EightBitMime),
                    },
                },
            ),
            (
                "MAIL FROM:<a@b.example> body=7bit",
                Command::Mail {
                    from: ReversePath::Mailbox(Mailbox {
                        text: "a@b.example".into(),
                        at: Some(1),
                    }),
                    params: MailParams {
                        size: None,
                        body: Some(Body::SevenBit),
                    },
                },
            ),
            (
                "MAIL FROM:<a@b> SIZE=99999999999999999999",
                Command::Mail {
                    from: ReversePath::Mailbox(Mailbox {
                        text: "a@b".into(),
                        at: Some(1),
                    }),
                    params: MailParams {
                        size: Some(u64::MAX),
                        body: None,
                    },
                },
            ),
            (
                "RCPT TO:<bob@example.org>",
                Command::Rcpt {
                    to: mb("bob@example.org"),
                },
            ),
            (
                "Rcpt To:  <bob@example.org>  ",
                Command::Rcpt {
                    to: mb("bob@example.org"),
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_command(line.as_bytes()).as_ref(), Ok(want), "{line}");
        }
    }

    #[test]
    fn parse_command_mailbox_forms() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            // (inside brackets, stored text, local part, domain)
            (
                "bob@example.org",
                "bob@example.org",
                "bob",
                Some("example.org"),
            ),
            (
                "@a.example,@b.example:bob@c.example",
                "bob@c.example",
                "bob",
                Some("c.example"),
            ),
            ("@[IPv6:::1]:bob@c", "bob@c", "bob", Some("c")),
            ("\"a b\"@dom", "\"a b\"@dom", "\"a b\"", Some("dom")),
            ("\"a>b@c\"@dom", "\"a>b@c\"@dom", "\"a>b@c\"", Some("dom")),
            ("Postmaster", "Postmaster", "Postmaster", None),
            (
                "bob@[192.0.2.1]",
                "bob@[192.0.2.1]",
                "bob",
                Some("[192.0.2.1]"),
            ),
            (
                "first.last+tag@sub_1.example",
                "first.last+tag@sub_1.example",
                "first.last+tag",
                Some("sub_1.example"),
            ),
            ("a..b.@x", "a..b.@x", "a..b.", Some("x")),
        ];
        for (inside, text, local, domain) in cases {
            let m = mb(inside);
            assert_eq!(m.as_str(), *text, "{inside}");
            assert_eq!(m.local_part(), *local, "{inside}");
            assert_eq!(m.domain(), *domain, "{inside}");
        }
    }

    #[test]
    fn parse_command_quoted_local_unquoted() {
        assert_eq!(mb("\"a\\\"b c\"@d").local_part_unquoted(), "a\"b c");
        assert_eq!(mb("plain@d").local_part_unquoted(), "plain");
    }

    #[test]
    fn parse_command_must_fail_table() {
        let cases: &[(&[u8], u16)] = &[
            (b"", 500),
            (b"   ", 500),
            (b"FOO", 500),
            (b"MAILX FROM:<>", 500),
            (b"STARTTLS now", 501),
            (b"BDAT 10 LAST", 500),
            (b"AUTH PLAIN", 500),
            (b"LHLO", 501),
            (b"LHLO a b", 501),
            (b"LHLO caf\xc3\xa9", 501),
            (b"DATA x", 501),
            (b"RSET x", 501),
            (b"QUIT now", 501),
            (b"MAIL", 501),
            (b"MAIL TO:<a@b>", 501),
            (b"MAIL FROM:a@b", 501),
            (b"MAIL FROM:<a@b", 501),
            (b"MAIL FROM:<a@>", 501),
            (b"MAIL FROM:<@b>", 501),
            (b"MAIL FROM:<a b@c>", 501),
            (b"MAIL FROM:<a@b..c>", 501),
            (b"MAIL FROM:<a@b.>", 501),
            (b"MAIL FROM:<\"unterminated@b>", 501),
            (b"MAIL FROM:<@a,b:c@d>", 501),
            (b"MAIL FROM:<@a:>", 501),
            (b"MAIL FROM:<a@b>SIZE=1", 501),
            (b"MAIL FROM:<a@b> SIZE=", 501),
            (b"MAIL FROM:<a@b> SIZE=12x", 501),
            (b"MAIL FROM:<a@b> SIZE=123456789012345678901", 501),
            (b"MAIL FROM:<a@b> SIZE", 501),
            (b"MAIL FROM:<a@b> SIZE=1 SIZE=2", 501),
            (b"MAIL FROM:<a@b> BODY=BINARYMIME", 501),
            (b"MAIL FROM:<a@b> =x", 501),
            (b"MAIL FROM:<a@b> SMTPUTF8", 555),
            (b"MAIL FROM:<a@b> RET=HDRS", 555),
            (b"MAIL FROM:<a@b> AUTH=<>", 555),
            (b"MAIL FROM:<j\xc3\xb6@b>", 553),
            (b"MAIL FROM:<a\x01@b>", 501),
            (b"RCPT TO:<>", 501),
            (b"RCPT TO:", 501),
            (b"RCPT FROM:<a@b>", 501),
            (b"RCPT TO:<a@b> NOTIFY=NEVER", 555),
            (b"RCPT TO:<a@b>x", 501),
            (b"RCPT TO:<j\xc3\xb6@b>", 553),
            (b"RCPT TO:<a@b\r>", 501),
        ];
        for (line, code) in cases {
            let got = parse_command(line);
            assert_eq!(
                got.map_err(SyntaxError::code),
                Err(*code),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn parse_command_address_length_cap() {
        let long = format!("RCPT TO:<{}@b>", "a".repeat(MAX_MAILBOX));
        assert_eq!(
            parse_command(long.as_bytes()),
            Err(SyntaxError::BadRecipient)
        );
        let ok = format!("RCPT TO:<{}@b>", "a".repeat(MAX_MAILBOX - 2));
        assert!(parse_command(ok.as_bytes()).is_ok());
    }

    #[test]
    fn parse_command_error_table_enhanced() {
        assert_eq!(SyntaxError::UnknownCommand.enhanced(), (5, 5, 1));
        assert_eq!(SyntaxError::UnsupportedParameter.enhanced(), (5, 5, 4));
        assert_eq!(SyntaxError::NonAsciiRecipient.enhanced(), (5, 1, 3));
        assert_eq!(SyntaxError::LineTooLong.code(), 500);
    }

    #[test]
    fn parse_command_never_panics_on_prefixes() {
        let line: &[u8] = b"MAIL FROM:<@a,@[IPv6:::1]:\"q\\\"x\"@[1.2.3.4]> SIZE=10 BODY=8BITMIME";
        for end in 0..=line.len() {
            let _ = parse_command(&line[..end]);
        }
    }

    #[test]
    fn reverse_path_display() {
        assert_eq!(ReversePath::Null.to_string(), "<>");
        assert_eq!(ReversePath::Mailbox(mb("a@b")).to_string(), "<a@b>");
    }

    /// Deterministic pseudo-random lines built from grammar-relevant octets never panic.
    #[test]
    fn parse_command_random_never_panics() {
        let alphabet: &[u8] = b"MAILRCPTFROMTO:<>@\\\",.:[] =SIZEBODY8\x80\ta";
        let mut seed: u64 = 42;
        for _ in 0..5000 {
            let mut line = b"MAIL FROM:".to_vec();
            if seed & 1 == 0 {
                line = b"RCPT TO:".to_vec();
            }
            for _ in 0..(seed % 30) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                line.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            seed = seed.wrapping_add(7);
            let _ = parse_command(&line);
        }
    }
}
