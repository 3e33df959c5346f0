//! IMAP string forms on output (RFC 3501 §4.3, §9; RFC 9051 §4.3): `NIL`, quoted
//! strings, literals and `literal8`.
//!
//! A value goes out quoted only when that is unambiguous for every client: no CR, LF,
//! NUL, no 8-bit byte (unless UTF-8 is enabled and the value is valid UTF-8, RFC 9051
//! `QUOTED-CHAR` / RFC 6855 §3), no `{` (curl looks for literal markers even inside
//! quoted strings, PROTOCOL Q13), and at most [`QUOTED_MAX`] octets. Everything else is
//! a literal. Message content always goes out as a literal (PROTOCOL 1.1 item 17, Q14).

/// Longest value sent as a quoted string; longer ones become literals.
pub const QUOTED_MAX: usize = 1024;

/// How strings may be written in this session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// UTF-8 allowed in quoted strings: after `ENABLE UTF8=ACCEPT` or `ENABLE IMAP4rev2`.
    pub utf8: bool,
    /// An IMAP4rev2 session: `message/global` parts are described as body-type-msg
    /// (RFC 9051 §9 `media-message`); in rev1 they are basic parts.
    pub rev2: bool,
}

/// Writes `NIL` for `None`, else [`string`].
pub fn nstring(value: Option<&[u8]>, opts: Options, out: &mut Vec<u8>) {
    match value {
        Some(v) => string(v, opts, out),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Writes a `string` (quoted or literal). NUL bytes cannot appear in either form
/// (`CHAR8` excludes %x00), so they are dropped: DEVIATION only for values that carry
/// NUL, which no valid header does.
pub fn string(value: &[u8], opts: Options, out: &mut Vec<u8>) {
    if value.contains(&0) {
        let clean: Vec<u8> = value.iter().copied().filter(|&b| b != 0).collect();
        string(&clean, opts, out);
        return;
    }
    if quotable(value, opts) {
        crate::imap::response::quoted(out, value);
    } else {
        literal(value, out);
    }
}

/// True when `value` can be sent as a quoted string; see the module documentation.
pub fn quotable(value: &[u8], opts: Options) -> bool {
    if value.len() > QUOTED_MAX {
        return false;
    }
    let ascii_ok = value
        .iter()
        .all(|&b| b != 0 && b != b'\r' && b != b'\n' && b != b'{');
    if !ascii_ok {
        return false;
    }
    if value.is_ascii() {
        return true;
    }
    opts.utf8 && std::str::from_utf8(value).is_ok()
}

/// Writes a synchronising-form literal `{n}CRLF` + bytes (RFC 3501 §4.3); `{0}` for
/// empty content. A literal never carries NUL (RFC 9051 §4.3: `CHAR8` excludes it):
/// each NUL of a message goes out as 0x80, byte for byte, so the size and partial
/// offsets stay those of the stored message (Dovecot does the same). Only
/// [`binary_literal`] may carry NUL.
pub fn literal(value: &[u8], out: &mut Vec<u8>) {
    literal_len(value.len(), out);
    if value.contains(&0) {
        out.extend(value.iter().map(|&b| if b == 0 { 0x80 } else { b }));
    } else {
        out.extend_from_slice(value);
    }
}

fn literal_len(n: usize, out: &mut Vec<u8>) {
    out.push(b'{');
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"}\r\n");
}

/// Writes BINARY content (RFC 3516 §4, RFC 9051 §7.5.2): `~{n}` (literal8), NUL and
/// all, when it contains NUL, else an ordinary literal.
pub fn binary_literal(value: &[u8], out: &mut Vec<u8>) {
    if value.contains(&0) {
        out.push(b'~');
        literal_len(value.len(), out);
        out.extend_from_slice(value);
    } else {
        literal(value, out);
    }
}

/// Writes an atom-like token as is (callers guarantee it needs no quoting).
pub(crate) fn raw(token: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(token);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn s(v: &[u8], utf8: bool) -> String {
        let mut out = Vec::new();
        string(v, Options { utf8, rev2: false }, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn string_forms() {
        let table: &[(&[u8], bool, &str)] = &[
            (b"", false, "\"\""),
            (b"plain", false, "\"plain\""),
            (b"a \"q\" \\ b", false, "\"a \\\"q\\\" \\\\ b\""),
            (b"line\r\nbreak", false, "{11}\r\nline\r\nbreak"),
            (b"lf\nonly", false, "{7}\r\nlf\nonly"),
            (b"cr\ronly", false, "{7}\r\ncr\ronly"),
            (b"brace {5}", false, "{9}\r\nbrace {5}"),
            ("caf\u{e9}".as_bytes(), false, "{5}\r\ncaf\u{e9}"),
            ("caf\u{e9}".as_bytes(), true, "\"caf\u{e9}\""),
            (b"bad \xff utf8", true, "{10}\r\nbad \u{fffd} utf8"),
            (b"nul\x00here", false, "\"nulhere\""),
        ];
        for (input, utf8, want) in table {
            assert_eq!(&s(input, *utf8), want, "{input:?}");
        }
        let long = vec![b'a'; QUOTED_MAX + 1];
        assert!(s(&long, false).starts_with("{1025}\r\n"));
        let mut out = Vec::new();
        nstring(None, Options::default(), &mut out);
        assert_eq!(out, b"NIL");
    }

    #[test]
    fn literals() {
        let mut out = Vec::new();
        literal(b"", &mut out);
        assert_eq!(out, b"{0}\r\n");
        out.clear();
        binary_literal(b"a\x00b", &mut out);
        assert_eq!(out, b"~{3}\r\na\x00b");
        out.clear();
        // RFC 9051 §4.3: never NUL in a literal; BINARY may use literal8.
        literal(b"a\x00b", &mut out);
        assert_eq!(out, b"{3}\r\na\x80b");
        out.clear();
        binary_literal(b"ab", &mut out);
        assert_eq!(out, b"{2}\r\nab");
    }
}
