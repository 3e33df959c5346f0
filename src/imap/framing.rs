//! Framing: finds complete IMAP commands (lines plus literals) in a read buffer and
//! enforces the line and literal limits *before* anything is parsed.
//!
//! RFC 9051 §2.2.1 / RFC 3501 §2.2.1: a command is text lines joined by literals. A line
//! that ends in `{n}` announces a synchronizing literal: the server sends a continuation
//! request (`+ `) before the client may send the n octets, or refuses the command with a
//! tagged `NO`/`BAD` *instead* (§7.5; PROTOCOL.md 1.1 items 5-9). `{n+}` (RFC 7888
//! LITERAL+) is sent without waiting, so a refused one is skipped: exactly n octets, never
//! parsed as command text. `~{n}` (literal8, RFC 3516) is framed the same way; the grammar
//! decides where it is allowed.
//!
//! Pure: bytes in, [`Framed`] out. The driver keeps the buffer; the framer remembers how
//! far into the current command it has looked, so it can be fed one byte at a time.

/// Limits the framer enforces (PROTOCOL.md 1.1 items 7, 15; HOUSE.md habit 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Longest command text (all lines of one command, literals not counted).
    pub max_line: usize,
    /// Largest single literal, and largest sum of literals in one command.
    pub max_literal: u64,
    /// Largest non-synchronizing literal: `max_literal` with LITERAL+, 4096 with LITERAL-.
    pub max_nonsync: u64,
}

/// Why a command was refused before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The command text passed `max_line`.
    LineTooLong,
    /// A literal (or the command's literals together) passed the limit. `sync`: the
    /// client waits for a continuation (answer `NO [TOOBIG]`); else it already sends the
    /// octets, which are skipped (answer `BAD [TOOBIG]`, RFC 7888 §4).
    LiteralTooBig { sync: bool },
    /// A literal length that is not a number within 64 bits.
    BadLiteral,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// More input is needed.
    Incomplete,
    /// A synchronizing literal was accepted: send a `+ ` continuation, then call again.
    Continue,
    /// The first `n` buffered bytes are one complete command (with CRLF and literals).
    Command(usize),
    /// The command is refused: consume `consume` bytes, answer `tag` (when it could be
    /// read) with `error`. Anything left of the command is reported as [`Framed::Skip`]
    /// by the following calls.
    Refused {
        consume: usize,
        tag: Option<String>,
        error: FrameError,
    },
    /// Consume and drop `n` bytes of a refused command (a literal, the rest of a line).
    Skip(usize),
    /// The input cannot be framed any more (an unparseable literal length after a refused
    /// line): send `* BYE` and close.
    Fatal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Looking for the end of a line at `pos`.
    Line,
    /// Inside an accepted literal: `remaining` octets to pass over.
    Literal { remaining: u64 },
    /// Dropping the rest of a refused command's line.
    DiscardLine,
    /// Dropping a refused command's non-synchronizing literal.
    DiscardLiteral { remaining: u64 },
}

/// The framer's memory of the command being assembled.
#[derive(Debug, Clone)]
pub struct Framer {
    limits: FrameLimits,
    /// Bytes of the current command already examined.
    pos: usize,
    /// Command text bytes (outside literals) so far.
    text: usize,
    /// Literal octets so far.
    literals: u64,
    mode: Mode,
}

/// A literal announced at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LiteralHeader {
    len: u64,
    sync: bool,
}

/// Looks at the end of `line` (without CRLF) for `{n}`, `{n+}`, `~{n}`.
/// `Err` for a brace group that is not a valid length.
fn literal_header(line: &[u8]) -> Result<Option<LiteralHeader>, FrameError> {
    let Some(body) = line.strip_suffix(b"}") else {
        return Ok(None);
    };
    let Some(open) = body.iter().rposition(|b| *b == b'{') else {
        return Ok(None);
    };
    let inner = body.get(open + 1..).unwrap_or(&[]);
    let (digits, sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (inner, true),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        // `{abc}` at the end of a line is not a literal; the grammar will say BAD.
        return Ok(None);
    }
    if digits.len() > 19 {
        return Err(FrameError::BadLiteral);
    }
    let len = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or(FrameError::BadLiteral)?;
    Ok(Some(LiteralHeader { len, sync }))
}

/// The tag at the start of a command, if it is a valid one (RFC 9051 §9 `tag`).
pub fn tag_of(buf: &[u8]) -> Option<String> {
    let end = buf
        .iter()
        .position(|b| *b == b' ' || *b == b'\r' || *b == b'\n')
        .unwrap_or(buf.len());
    let tag = buf.get(..end)?;
    if tag.is_empty() || tag.len() > 64 || !tag.iter().all(|b| super::grammar::is_tag_char(*b)) {
        return None;
    }
    String::from_utf8(tag.to_vec()).ok()
}

impl Framer {
    pub fn new(limits: FrameLimits) -> Framer {
        Framer {
            limits,
            pos: 0,
            text: 0,
            literals: 0,
            mode: Mode::Line,
        }
    }

    pub fn limits(&self) -> FrameLimits {
        self.limits
    }

    /// Changes the limits (LITERAL- after ENABLE IMAP4rev2, say); takes effect at the
    /// next command.
    pub fn set_limits(&mut self, limits: FrameLimits) {
        self.limits = limits;
    }

    /// True between commands (nothing of a command examined yet).
    pub fn at_boundary(&self) -> bool {
        self.pos == 0 && matches!(self.mode, Mode::Line)
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.text = 0;
        self.literals = 0;
        self.mode = Mode::Line;
    }

    fn refuse(&mut self, buf: &[u8], consume: usize, error: FrameError, mode: Mode) -> Framed {
        let tag = tag_of(buf);
        self.reset();
        self.mode = mode;
        Framed::Refused {
            consume,
            tag,
            error,
        }
    }

    /// Examines `buf` (the driver's unconsumed input, starting at the current command).
    pub fn next(&mut self, buf: &[u8]) -> Framed {
        loop {
            match self.mode {
                Mode::Literal { remaining } => {
                    let have = buf.len().saturating_sub(self.pos) as u64;
                    if have < remaining {
                        return Framed::Incomplete;
                    }
                    // `remaining <= have <= usize::MAX` here.
                    self.pos = self.pos.saturating_add(remaining as usize);
                    self.mode = Mode::Line;
                }
                Mode::DiscardLiteral { remaining: 0 } => self.mode = Mode::DiscardLine,
                Mode::DiscardLiteral { remaining } => {
                    if buf.is_empty() {
                        return Framed::Incomplete;
                    }
                    let n = (buf.len() as u64).min(remaining);
                    let left = remaining - n;
                    self.mode = if left == 0 {
                        Mode::DiscardLine
                    } else {
                        Mode::DiscardLiteral { remaining: left }
                    };
                    return Framed::Skip(n as usize);
                }
                Mode::DiscardLine => {
                    let Some(lf) = memchr::memchr(b'\n', buf) else {
                        if buf.is_empty() {
                            return Framed::Incomplete;
                        }
                        // Keep a short tail: it may hold the start of a literal header.
                        let keep = 24.min(buf.len());
                        let drop = buf.len() - keep;
                        if drop == 0 {
                            return Framed::Incomplete;
                        }
                        return Framed::Skip(drop);
                    };
                    let line = buf.get(..lf).unwrap_or(&[]);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    self.reset();
                    match literal_header(line) {
                        // A non-synchronizing literal follows even though we refused:
                        // drop exactly its octets (RFC 7888 §4).
                        Ok(Some(LiteralHeader { len, sync: false })) => {
                            self.mode = Mode::DiscardLiteral { remaining: len };
                        }
                        // A synchronizing one is never sent without our `+`.
                        Ok(_) => {}
                        Err(_) => return Framed::Fatal,
                    }
                    return Framed::Skip(lf + 1);
                }
                Mode::Line => {
                    let rest = buf.get(self.pos..).unwrap_or(&[]);
                    let Some(lf) = memchr::memchr(b'\n', rest) else {
                        if self.text.saturating_add(rest.len()) > self.limits.max_line {
                            // Keep a short tail: it may hold the start of a literal header.
                            let consume = buf.len().saturating_sub(24);
                            return self.refuse(
                                buf,
                                consume,
                                FrameError::LineTooLong,
                                Mode::DiscardLine,
                            );
                        }
                        return Framed::Incomplete;
                    };
                    self.text = self.text.saturating_add(lf + 1);
                    let end = self.pos + lf + 1;
                    if self.text > self.limits.max_line {
                        return self
                            .refuse(buf, end, FrameError::LineTooLong, Mode::Line)
                            .with_rest(self, buf, end);
                    }
                    let line = rest.get(..lf).unwrap_or(&[]);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    match literal_header(line) {
                        Ok(None) => {
                            self.reset();
                            return Framed::Command(end);
                        }
                        Err(e) => {
                            return self.refuse(buf, end, e, Mode::Line);
                        }
                        Ok(Some(h)) => {
                            let total = self.literals.saturating_add(h.len);
                            let limit = if h.sync {
                                self.limits.max_literal
                            } else {
                                self.limits.max_nonsync.min(self.limits.max_literal)
                            };
                            if h.len > limit || total > self.limits.max_literal {
                                let mode = if h.sync {
                                    // The client waits for `+`; it sends nothing more.
                                    Mode::Line
                                } else {
                                    Mode::DiscardLiteral { remaining: h.len }
                                };
                                return self.refuse(
                                    buf,
                                    end,
                                    FrameError::LiteralTooBig { sync: h.sync },
                                    mode,
                                );
                            }
                            self.literals = total;
                            self.pos = end;
                            self.mode = Mode::Literal { remaining: h.len };
                            if h.sync {
                                return Framed::Continue;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Framed {
    /// A too-long line that ended within the buffer may still announce a literal; keep
    /// framing its tail so those octets are dropped, not parsed.
    fn with_rest(self, framer: &mut Framer, buf: &[u8], end: usize) -> Framed {
        let line = buf.get(..end).unwrap_or(&[]);
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Ok(Some(LiteralHeader { len, sync: false })) = literal_header(line) {
            framer.mode = Mode::DiscardLiteral { remaining: len };
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: FrameLimits = FrameLimits {
        max_line: 100,
        max_literal: 1000,
        max_nonsync: 1000,
    };

    /// Feeds `input` one byte at a time, answering continuations; returns the events.
    fn run(limits: FrameLimits, input: &[u8]) -> Vec<String> {
        let mut f = Framer::new(limits);
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for b in input {
            buf.push(*b);
            loop {
                match f.next(&buf) {
                    Framed::Incomplete => break,
                    Framed::Continue => out.push("+".to_string()),
                    Framed::Command(n) => {
                        out.push(format!("cmd {}", String::from_utf8_lossy(&buf[..n])));
                        buf.drain(..n);
                    }
                    Framed::Refused {
                        consume,
                        tag,
                        error,
                    } => {
                        out.push(format!("refused {tag:?} {error:?}"));
                        buf.drain(..consume);
                    }
                    Framed::Skip(n) => {
                        buf.drain(..n);
                    }
                    Framed::Fatal => {
                        out.push("fatal".into());
                        return out;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn plain_lines_are_commands() {
        assert_eq!(
            run(L, b"a NOOP\r\nb LOGOUT\r\n"),
            ["cmd a NOOP\r\n", "cmd b LOGOUT\r\n"]
        );
    }

    #[test]
    fn sync_literal_gets_continuation_and_is_not_parsed() {
        assert_eq!(
            run(L, b"a LOGIN {3}\r\nx\r\n {2}\r\n\r\n\r\nb NOOP\r\n"),
            [
                "+",
                "+",
                "cmd a LOGIN {3}\r\nx\r\n {2}\r\n\r\n\r\n",
                "cmd b NOOP\r\n"
            ]
        );
    }

    #[test]
    fn nonsync_literal_needs_no_continuation() {
        assert_eq!(
            run(L, b"a LOGIN {1+}\r\n\n {1+}\r\n{\r\n"),
            ["cmd a LOGIN {1+}\r\n\n {1+}\r\n{\r\n"]
        );
    }

    #[test]
    fn too_big_sync_literal_is_refused_before_data() {
        assert_eq!(
            run(L, b"a APPEND x {1001}\r\nb NOOP\r\n"),
            [
                "refused Some(\"a\") LiteralTooBig { sync: true }",
                "cmd b NOOP\r\n"
            ]
        );
    }

    #[test]
    fn too_big_nonsync_literal_is_skipped_exactly() {
        let mut input = b"a APPEND x {1001+}\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'z', 999));
        input.extend_from_slice(b"\r\n\r\nb NOOP\r\n");
        assert_eq!(
            run(L, &input),
            [
                "refused Some(\"a\") LiteralTooBig { sync: false }",
                "cmd b NOOP\r\n"
            ]
        );
    }

    #[test]
    fn literal_minus_limit() {
        let l = FrameLimits {
            max_nonsync: 4,
            ..L
        };
        assert_eq!(
            run(l, b"a X {5+}\r\nb NOO\r\nc NOOP\r\n"),
            [
                "refused Some(\"a\") LiteralTooBig { sync: false }",
                "cmd c NOOP\r\n"
            ]
        );
    }

    #[test]
    fn long_line_is_refused_and_skipped() {
        // The line ends plainly, or in a non-synchronising literal (empty or not) that
        // is dropped with it.
        for (start, end) in [
            (&b"t1 NOOP "[..], &b"\r\nt2 NOOP\r\n"[..]),
            (b"t1 X ", b" {8+}\r\nt3 NOOP\r\nt2 NOOP\r\n"),
            (b"t1 X ", b" {0+}\r\n\r\nt2 NOOP\r\n"),
        ] {
            let input = [start, &[b'x'; 300], end].concat();
            assert_eq!(
                run(L, &input),
                ["refused Some(\"t1\") LineTooLong", "cmd t2 NOOP\r\n"],
                "{:?}",
                String::from_utf8_lossy(end)
            );
        }
    }

    #[test]
    fn absurd_literal_length() {
        assert_eq!(
            run(L, b"a X {99999999999999999999999}\r\nb NOOP\r\n"),
            ["refused Some(\"a\") BadLiteral", "cmd b NOOP\r\n"]
        );
    }

    #[test]
    fn whole_input_at_once_matches_bytewise() {
        let input = b"a LOGIN {3}\r\nabc {2+}\r\nde\r\nb NOOP\r\n";
        let mut f = Framer::new(L);
        assert_eq!(f.next(input), Framed::Continue);
        assert_eq!(f.next(input), Framed::Command(27));
    }
}
