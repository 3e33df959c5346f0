//! Reply encoding (RFC 5321 §4.2, §4.2.1; enhanced status codes RFC 2034 §4, RFC 3463).

use super::grammar::SyntaxError;

/// Longest text we put on one reply line, so every line stays under the 512-octet reply
/// line limit of RFC 5321 §4.5.3.1.5 (code, separator, enhanced code and CRLF included).
const MAX_TEXT: usize = 480;

/// One server reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code (RFC 5321 §4.2.1).
    pub code: u16,
    /// Enhanced status code `class.subject.detail` (RFC 3463), written at the start of
    /// every line's text (RFC 2034 §4). `None` for the greeting and the LHLO reply.
    pub enhanced: Option<(u8, u16, u16)>,
    /// Text lines; the reply has as many lines as this (at least one on the wire).
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub fn new(code: u16, enhanced: (u8, u16, u16), text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced status code (greeting, LHLO; RFC 2034 §4).
    pub fn plain(code: u16, lines: Vec<String>) -> Self {
        Self {
            code,
            enhanced: None,
            lines,
        }
    }

    /// Appends the wire form to `out`: `code-text` CRLF for every line but the last,
    /// `code SP text` CRLF for the last (RFC 5321 §4.2.1). Text bytes outside printable
    /// ASCII are replaced by `?` so no text can inject a line; each line's text is cut
    /// at 480 octets. A code outside 200..=599 is sent as 451 (never as success).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let code = if (200..=599).contains(&self.code) {
            self.code
        } else {
            451
        };
        let empty = [String::new()];
        let lines: &[String] = if self.lines.is_empty() {
            &empty
        } else {
            &self.lines
        };
        let last = lines.len().saturating_sub(1);
        for (i, line) in lines.iter().enumerate() {
            out.extend_from_slice(code.to_string().as_bytes());
            out.push(if i == last { b' ' } else { b'-' });
            if let Some((class, subject, detail)) = self.enhanced {
                out.extend_from_slice(format!("{class}.{subject}.{detail}").as_bytes());
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            out.extend(
                line.bytes().take(MAX_TEXT).map(
                    |b| {
                        if (0x20..0x7f).contains(&b) { b } else { b'?' }
                    },
                ),
            );
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The encoded reply as a new buffer (convenience for tests and logs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl From<SyntaxError> for Reply {
    /// The reply for a refused command line, from the table in [`SyntaxError`].
    fn from(e: SyntaxError) -> Self {
        Self::new(e.code(), e.enhanced(), e.text())
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn encode() {
        let cases = [
            // One line with an enhanced code.
            (Reply::new(250, (2, 0, 0), "OK"), &b"250 2.0.0 OK\r\n"[..]),
            // Several lines: a dash after the code on all but the last.
            (
                Reply::plain(
                    250,
                    vec!["host".into(), "PIPELINING".into(), "SIZE 10".into()],
                ),
                b"250-host\r\n250-PIPELINING\r\n250 SIZE 10\r\n",
            ),
            // The enhanced code on every line.
            (
                Reply {
                    code: 214,
                    enhanced: Some((2, 0, 0)),
                    lines: vec!["a".into(), "b".into()],
                },
                b"214-2.0.0 a\r\n214 2.0.0 b\r\n",
            ),
            // No line breaks or non-ASCII from the text; a bad code becomes 451.
            (
                Reply::new(99, (5, 0, 0), "x\r\n250 ok\u{e9}"),
                b"451 5.0.0 x??250 ok??\r\n",
            ),
            // No lines at all.
            (Reply::plain(250, vec![]), b"250 \r\n"),
        ];
        for (reply, want) in cases {
            assert_eq!(reply.to_bytes(), want, "{reply:?}");
        }
    }
}
