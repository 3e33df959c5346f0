//! Command-line framing for the line protocols, LMTP and POP3 (RFC 5321 §2.3.8,
//! §4.5.3.1.4; RFC 1939 §3); [`super::conn::Conn::next_line`] drives it.

use std::ops::Range;

/// What [`split_line`] found at the start of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineResult {
    /// A complete line: `.0` octets to consume (terminator included) and the range of
    /// the line's content (terminator excluded) within the buffer.
    Line(usize, Range<usize>),
    /// No line end yet and the buffer is still within the cap: read more.
    Incomplete,
    /// The line is longer than the cap. The driver answers (LMTP `500 5.5.2`, POP3
    /// `-ERR`) and discards input up to and including the next LF, which may arrive in
    /// later reads ([`super::conn::Conn::skip_line`]).
    TooLong,
}

/// Finds the next command line at the start of `buf`.
///
/// A line ends at CRLF; a bare LF is tolerated as a line end (a lone CR is not: it
/// stays in the content and the grammar rejects it), per RFC 5321 §2.3.8's advice to
/// be conservative only about what ends DATA. A line whose content exceeds `max_line`
/// octets is [`LineResult::TooLong`], whether or not its end has arrived, so the
/// driver never buffers more than `max_line + 2` octets of one command.
pub fn split_line(buf: &[u8], max_line: usize) -> LineResult {
    let window = max_line.saturating_add(2).min(buf.len());
    let Some(head) = buf.get(..window) else {
        return LineResult::Incomplete;
    };
    match memchr::memchr(b'\n', head) {
        Some(lf) => {
            let end = if lf > 0 && head.get(lf.saturating_sub(1)) == Some(&b'\r') {
                lf.saturating_sub(1)
            } else {
                lf
            };
            if end > max_line {
                LineResult::TooLong
            } else {
                LineResult::Line(lf.saturating_add(1), 0..end)
            }
        }
        None if buf.len() > max_line.saturating_add(1) => LineResult::TooLong,
        None => LineResult::Incomplete,
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn split_line_crlf() {
        assert_eq!(
            split_line(b"NOOP\r\nQUIT\r\n", 512),
            LineResult::Line(6, 0..4)
        );
    }

    #[test]
    fn split_line_bare_lf() {
        assert_eq!(split_line(b"NOOP\nQUIT", 512), LineResult::Line(5, 0..4));
    }

    #[test]
    fn split_line_incomplete() {
        assert_eq!(split_line(b"NOOP\r", 512), LineResult::Incomplete);
        assert_eq!(split_line(b"", 512), LineResult::Incomplete);
    }

    #[test]
    fn split_line_exact_cap() {
        assert_eq!(split_line(b"1234\r\n", 4), LineResult::Line(6, 0..4));
        assert_eq!(split_line(b"1234\r", 4), LineResult::Incomplete);
        assert_eq!(split_line(b"1234\n", 4), LineResult::Line(5, 0..4));
    }

    #[test]
    fn split_line_too_long() {
        assert_eq!(split_line(b"12345\r\n", 4), LineResult::TooLong);
        assert_eq!(split_line(b"123456", 4), LineResult::TooLong);
        assert_eq!(split_line(b"12345", 4), LineResult::Incomplete);
    }

    #[test]
    fn split_line_empty_line() {
        assert_eq!(split_line(b"\r\n", 4), LineResult::Line(2, 0..0));
    }
}
