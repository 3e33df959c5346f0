//! mbox files: RFC 4155 (`application/mbox`), read as mboxrd, written as mboxrd.
//!
//! Format (RFC 4155 section 2 and appendix A): each message starts with a "From_" line,
//! `From <envelope sender> <asctime date>`, and is followed by one empty line. Body lines
//! that would look like a From_ line are quoted with `>`. The mboxrd variant
//! (<https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml>, qmail's
//! `mbox(5)`) quotes `^>*From ` by adding one `>` and unquotes `^>+From ` by removing one;
//! the older mboxo only quotes `^From ` and never unquotes.
//!
//! Reading ([`MboxReader`]) streams line by line and holds one message at a time:
//! - Any line starting with `From ` starts a new message (no Content-Length, so mboxcl2
//!   files whose bodies hold unquoted `From ` lines are split there).
//! - The empty line right before a From_ line (and at end of file) is the separator and is
//!   dropped; the message keeps its own final line end.
//! - `^>+From ` loses one `>` (mboxrd). DEVIATION for mboxo files: a body line that really
//!   was `>From ` before delivery is imported as `From `; mboxo cannot tell the two apart.
//!   The file itself still round-trips, because the writer adds the `>` back.
//! - LF becomes CRLF; CRLF and bare CR are kept (see the parent module).
//! - `Status:` (R = seen), `X-Status:` (A answered, F flagged, T draft, D deleted) and
//!   `X-Keywords:` (Dovecot, mutt) in the top header block set flags; the headers stay in
//!   the message.
//!
//! Writing ([`write_mbox_message`]) produces the standard form: LF line ends, the From_
//! line with the date in asctime form in UTC, mboxrd quoting, one empty line after each
//! message. Reading a file in that form and writing every message back reproduces it byte
//! for byte. Files that differ from it do not: CRLF files come back with LF, dates with a
//! zone or a `remote from` tail come back as plain UTC asctime, an empty sender comes back
//! as `MAILER-DAEMON`, and a final message without the closing empty line (or without a
//! final newline) gains it. A store message that does not end in a line end gets one
//! (mbox cannot say "no final newline"), so it comes back from mbox with a final CRLF.
//! Flags are not written: only `Status:`/`X-Status:` headers already in the message carry
//! them.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use super::{Flags, ImportedMessage, push_line_crlf, split_line_end};
use crate::contracts::SystemFlags;
use crate::util::{Utc, days_from_civil, days_in_month, month_from_name};

const FROM: &[u8] = b"From ";

/// How much of a line is kept when only a From_ line matters (while skipping an oversized
/// message, and for the From_ line itself). Envelope sender plus date fit easily; the
/// rest of a longer line is read and dropped.
const SEPARATOR_LINE_LIMIT: usize = 1024;

/// Line buffers that grew past this are freed after a message, so one long line does not
/// pin memory for the rest of the import.
const LINE_BUFFER_KEEP: usize = 64 * 1024;

/// What went wrong reading an mbox file. `index` is the 1-based message number, `offset`
/// the byte offset of the message's From_ line (for I/O errors: of the line being read).
#[derive(Debug)]
pub enum MboxError {
    /// The file does not start with a From_ line.
    NotMbox,
    /// The message exceeds the size cap; it was skipped and reading goes on.
    MessageTooLarge {
        index: usize,
        offset: u64,
        limit: usize,
    },
    /// Reading failed; the reader stops.
    Io {
        index: usize,
        offset: u64,
        source: io::Error,
    },
}

impl fmt::Display for MboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MboxError::NotMbox => f.write_str("not an mbox file: first line is not a From_ line"),
            MboxError::MessageTooLarge {
                index,
                offset,
                limit,
            } => write!(
                f,
                "message {index} (at byte {offset}) is larger than the {limit}-byte limit; skipped"
            ),
            MboxError::Io {
                index,
                offset,
                source,
            } => write!(
                f,
                "read error in message {index} at byte {offset}: {source}"
            ),
        }
    }
}

impl std::error::Error for MboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MboxError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A From_ line already read: it starts the next message.
struct Separator {
    offset: u64,
    envelope_from: Option<String>,
    date: Option<i64>,
}

impl Separator {
    /// Parses `From <sender> <date>` (RFC 4155 section 2). Lenient: an unreadable date is
    /// `None`, an empty sender is `None`.
    fn parse(line: &[u8], offset: u64) -> Separator {
        let (content, _) = split_line_end(line);
        let rest = content.strip_prefix(FROM).unwrap_or(content);
        let rest = String::from_utf8_lossy(rest);
        let (sender, date) = rest.split_once(' ').unwrap_or((&rest, ""));
        Separator {
            offset,
            envelope_from: (!sender.is_empty()).then(|| sender.to_owned()),
            date: parse_asctime(date),
        }
    }
}

enum Line {
    Eof,
    /// A whole line (with its LF unless at end of input) is in the line buffer.
    Complete,
    /// The line was longer than the limit; the buffer holds its start, the rest was dropped.
    TooLong,
}

/// Streams messages out of an mbox file, one at a time.
///
/// Items are `Ok(message)` or `Err`: [`MboxError::MessageTooLarge`] skips one message and
/// the iterator goes on; [`MboxError::NotMbox`] and [`MboxError::Io`] end it. An empty file
/// yields nothing. Memory: the current message (at most `max_size`) plus one line buffer
/// (at most what is left of `max_size`, or 1 KiB while skipping).
pub struct MboxReader<R: BufRead> {
    reader: R,
    max_size: usize,
    /// Bytes consumed so far.
    offset: u64,
    line: Vec<u8>,
    line_start: u64,
    /// Number of From_ lines turned into messages so far.
    index: usize,
    started: bool,
    next: Option<Separator>,
    done: bool,
}

impl<R: BufRead> MboxReader<R> {
    /// `max_size` caps one message after CRLF normalisation (see
    /// [`super::DEFAULT_MAX_MESSAGE_SIZE`]).
    pub fn new(reader: R, max_size: usize) -> Self {
        MboxReader {
            reader,
            max_size,
            offset: 0,
            line: Vec::new(),
            line_start: 0,
            index: 0,
            started: false,
            next: None,
            done: false,
        }
    }

    /// Bytes consumed from the reader so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads one line into `self.line`, keeping at most `limit` bytes of it.
    fn read_line(&mut self, limit: usize) -> io::Result<Line> {
        self.line.clear();
        self.line_start = self.offset;
        let cap = u64::try_from(limit).unwrap_or(u64::MAX);
        let n = (&mut self.reader)
            .take(cap)
            .read_until(b'\n', &mut self.line)?;
        self.offset = self.offset.saturating_add(to_u64(n));
        if n == 0 {
            return Ok(Line::Eof);
        }
        if self.line.ends_with(b"\n") || n < limit {
            return Ok(Line::Complete);
        }
        let skipped = self.reader.skip_until(b'\n')?;
        self.offset = self.offset.saturating_add(to_u64(skipped));
        Ok(if skipped == 0 {
            Line::Complete
        } else {
            Line::TooLong
        })
    }

    fn io_error(&mut self, source: io::Error) -> MboxError {
        self.done = true;
        MboxError::Io {
            index: self.index.max(1),
            offset: self.line_start,
            source,
        }
    }

    /// Reads the message that `sep` starts, up to the next From_ line or end of input.
    fn read_message(&mut self, sep: Separator) -> Result<ImportedMessage, MboxError> {
        let mut raw = Vec::new();
        let mut flags = Flags::default();
        let mut in_headers = true;
        let mut pending_blank = false;
        let mut oversize = false;
        loop {
            let limit = if oversize {
                SEPARATOR_LINE_LIMIT
            } else {
                // A line longer than what is left + 1 (one `>` may be unquoted away) cannot
                // fit; + 2 leaves room for that. At least 1 KiB so a From_ line is seen.
                self.max_size
                    .saturating_sub(raw.len())
                    .saturating_add(2)
                    .max(SEPARATOR_LINE_LIMIT)
            };
            let status = match self.read_line(limit) {
                Ok(status) => status,
                Err(e) => return Err(self.io_error(e)),
            };
            match status {
                Line::Eof => break,
                Line::Complete | Line::TooLong if self.line.starts_with(FROM) => {
                    self.next = Some(Separator::parse(&self.line, self.line_start));
                    break;
                }
                _ if oversize => continue,
                Line::TooLong => {
                    oversize = true;
                    raw = Vec::new();
                    continue;
                }
                Line::Complete => {}
            }
            let line = self.line.as_slice();
            if pending_blank {
                raw.extend_from_slice(b"\r\n");
                pending_blank = false;
            }
            if line == b"\n" || line == b"\r\n" {
                pending_blank = true;
                in_headers = false;
            } else {
                if in_headers {
                    read_flag_header(line, &mut flags);
                }
                push_line_crlf(&mut raw, unquote(line));
            }
            if raw.len() > self.max_size {
                oversize = true;
                raw = Vec::new();
            }
        }
        if self.line.capacity() > LINE_BUFFER_KEEP {
            self.line = Vec::new();
        }
        if oversize {
            return Err(MboxError::MessageTooLarge {
                index: self.index,
                offset: sep.offset,
                limit: self.max_size,
            });
        }
        Ok(ImportedMessage {
            raw,
            internal_date: sep.date,
            flags,
            envelope_from: sep.envelope_from,
        })
    }
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = Result<ImportedMessage, MboxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            match self.read_line(SEPARATOR_LINE_LIMIT) {
                Err(e) => return Some(Err(self.io_error(e))),
                Ok(Line::Eof) => {
                    self.done = true;
                    return None;
                }
                Ok(Line::Complete | Line::TooLong) => {
                    if !self.line.starts_with(FROM) {
                        self.done = true;
                        return Some(Err(MboxError::NotMbox));
                    }
                    self.next = Some(Separator::parse(&self.line, self.line_start));
                }
            }
        }
        let Some(sep) = self.next.take() else {
            self.done = true;
            return None;
        };
        self.index = self.index.saturating_add(1);
        Some(self.read_message(sep))
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// mboxrd: `^>+From ` loses one `>`.
fn unquote(line: &[u8]) -> &[u8] {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    match line.get(quotes..) {
        Some(rest) if quotes > 0 && rest.starts_with(FROM) => line.get(1..).unwrap_or(line),
        _ => line,
    }
}

/// mboxrd: `^>*From ` gets one more `>`.
fn needs_quote(line: &[u8]) -> bool {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    line.get(quotes..)
        .is_some_and(|rest| rest.starts_with(FROM))
}

/// Sets flags from `Status:`, `X-Status:` and `X-Keywords:` header lines (the de-facto
/// convention of Pine, mutt and Dovecot's mbox driver; see Dovecot's mbox notes,
/// <https://doc.dovecot.org/admin_manual/mailbox_formats/mbox/>). `O` (old) and unknown
/// letters are ignored; continuation lines are not read.
fn read_flag_header(line: &[u8], flags: &mut Flags) {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return;
    };
    let (Some(name), Some(value)) = (line.get(..colon), line.get(colon.saturating_add(1)..)) else {
        return;
    };
    if name.eq_ignore_ascii_case(b"status") {
        if value.contains(&b'R') {
            flags.system.set(SystemFlags::SEEN);
        }
    } else if name.eq_ignore_ascii_case(b"x-status") {
        for &b in value {
            match b {
                b'A' => flags.system.set(SystemFlags::ANSWERED),
                b'F' => flags.system.set(SystemFlags::FLAGGED),
                b'T' => flags.system.set(SystemFlags::DRAFT),
                b'D' => flags.system.set(SystemFlags::DELETED),
                _ => {}
            }
        }
    } else if name.eq_ignore_ascii_case(b"x-keywords") {
        let value = String::from_utf8_lossy(value);
        for keyword in value.split(|c: char| c == ',' || c.is_ascii_whitespace()) {
            if !keyword.is_empty() {
                flags.add_keyword(keyword);
            }
        }
    }
}

/// Writes one message in the standard mboxrd form (see the module docs).
///
/// `msg_raw_crlf` is the stored message; CRLF becomes LF, bare CRs stay. The From_ line
/// carries `envelope_from` (angle brackets stripped, whitespace and control characters
/// replaced by `_`; `MAILER-DAEMON` when absent or empty) and `internal_date` as UTC
/// asctime. A non-empty message without a final line end gets one before the closing
/// empty line. Wrap `w` in a `BufWriter`: this writes line by line.
pub fn write_mbox_message<W: Write + ?Sized>(
    w: &mut W,
    msg_raw_crlf: &[u8],
    envelope_from: Option<&str>,
    internal_date: i64,
) -> io::Result<()> {
    let sender = envelope_sender(envelope_from);
    writeln!(w, "From {sender} {}", format_asctime(internal_date))?;
    let mut ends_with_newline = true;
    for line in msg_raw_crlf.split_inclusive(|&b| b == b'\n') {
        let (content, newline) = split_line_end(line);
        if needs_quote(content) {
            w.write_all(b">")?;
        }
        w.write_all(content)?;
        if newline {
            w.write_all(b"\n")?;
        }
        ends_with_newline = newline;
    }
    if !ends_with_newline {
        w.write_all(b"\n")?;
    }
    w.write_all(b"\n")
}

fn envelope_sender(envelope_from: Option<&str>) -> String {
    let sender = envelope_from.unwrap_or("").trim();
    let sender = sender
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(sender);
    if sender.is_empty() {
        return "MAILER-DAEMON".to_owned();
    }
    sender
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Formats unix seconds as C `asctime` in UTC without the newline:
/// `Thu Jan  1 00:00:00 1970` (RFC 4155 section 2: the From_ line date is UTC).
pub fn format_asctime(t: i64) -> String {
    let t = Utc::from_unix(t);
    let (wd, mon, d, time, y) = (t.weekday(), t.month_name(), t.day, t.time(), t.year);
    format!("{wd} {mon} {d:2} {time} {y}")
}

/// Parses a From_ line date to unix seconds; `None` when it cannot be read.
///
/// Lenient about what real files hold: the weekday is optional and not checked; month
/// and day may come in either order; seconds are optional; the year is a 3- or 4-digit
/// token before or after a zone; a `+hhmm`/`-hhmm` zone is applied, a named zone is
/// taken as UTC; anything from `remote from` on is ignored.
pub fn parse_asctime(s: &str) -> Option<i64> {
    let (mut year, mut month, mut day, mut time, mut zone) = (None, None, None, None, 0i64);
    for token in s.split_ascii_whitespace() {
        let token = token.trim_end_matches(',');
        if token.eq_ignore_ascii_case("remote") {
            break;
        }
        if let Some(m) = token.get(..3).and_then(month_from_name) {
            month = month.or(Some(m));
        } else if token.contains(':') {
            time = time.or(parse_time(token));
        } else if let Some(offset) = parse_zone(token) {
            zone = offset;
        } else if let Ok(n) = token.parse::<u16>() {
            if token.len() >= 3 {
                year = year.or(Some(i64::from(n)));
            } else {
                day = day.or(Some(u32::from(n)));
            }
        }
    }
    let (year, month, day, time) = (year?, month?, day?, time?);
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + time - zone)
}

/// `hh:mm` or `hh:mm:ss` -> seconds into the day (a leap second 60 is accepted).
fn parse_time(token: &str) -> Option<i64> {
    let mut parts = token.split(':');
    let hour: i64 = parts.next()?.parse().ok()?;
    let minute: i64 = parts.next()?.parse().ok()?;
    let second: i64 = parts.next().map_or(Ok(0), str::parse).ok()?;
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 60 || hour < 0 {
        return None;
    }
    Some(hour * 3600 + minute * 60 + second)
}

/// `+hhmm` / `-hhmm` -> offset east of UTC in seconds.
fn parse_zone(token: &str) -> Option<i64> {
    let (sign, digits) = match token.as_bytes().first()? {
        b'+' => (1, token.get(1..)?),
        b'-' => (-1, token.get(1..)?),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hhmm: i64 = digits.parse().ok()?;
    Some(sign * (hhmm / 100 * 3600 + hhmm % 100 * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::{civil_from_days, is_leap};
    use std::io::{BufReader, BufWriter, Cursor};

    fn read_all(data: &[u8], max: usize) -> Vec<Result<ImportedMessage, MboxError>> {
        MboxReader::new(Cursor::new(data), max).collect()
    }

    fn read_ok(data: &[u8]) -> Vec<ImportedMessage> {
        read_all(data, 1 << 20)
            .into_iter()
            .map(|r| r.unwrap())
            .collect()
    }

    fn write_all(messages: &[ImportedMessage]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            write_mbox_message(
                &mut out,
                &m.raw,
                m.envelope_from.as_deref(),
                m.internal_date.unwrap(),
            )
            .unwrap();
        }
        out
    }

    const STANDARD: &[u8] = b"From alice@example.com Tue Jan  1 00:00:00 2002\n\
Subject: one\n\
\n\
hello\n\
>From the body, quoted once\n\
\n\
From bob@example.org Tue Feb 29 12:34:56 2000\n\
Subject: two\n\
Status: RO\n\
X-Status: AFT\n\
X-Keywords: Junk $Label1\n\
\n\
>>From was quoted twice\n\
>>>From three\n\
> From not a From_ line\n\
ends with an empty line\n\
\n\
\n\
From MAILER-DAEMON Fri Dec 31 23:59:59 1999\n\
Subject: three\n\
\n\
bare\rCR kept\n\
\n";

    #[test]
    fn mbox_round_trip_standard_form_is_byte_exact() {
        let messages = read_ok(STANDARD);
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages[0].raw,
            b"Subject: one\r\n\r\nhello\r\nFrom the body, quoted once\r\n"
        );
        assert_eq!(
            messages[0].envelope_from.as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(messages[0].internal_date, Some(1_009_843_200));
        assert_eq!(messages[0].flags, Flags::default());
        assert_eq!(
            messages[1].raw,
            b"Subject: two\r\nStatus: RO\r\nX-Status: AFT\r\nX-Keywords: Junk $Label1\r\n\r\n\
>From was quoted twice\r\n>>From three\r\n> From not a From_ line\r\nends with an empty line\r\n\r\n"
        );
        assert_eq!(
            messages[1].flags,
            Flags {
                system: SystemFlags(
                    SystemFlags::SEEN
                        | SystemFlags::ANSWERED
                        | SystemFlags::FLAGGED
                        | SystemFlags::DRAFT
                ),
                keywords: vec!["$Label1".into(), "Junk".into()],
            }
        );
        assert_eq!(messages[1].internal_date, Some(951_827_696));
        assert_eq!(messages[2].raw, b"Subject: three\r\n\r\nbare\rCR kept\r\n");
        assert_eq!(write_all(&messages), STANDARD);
    }

    #[test]
    fn mbox_message_without_final_newline() {
        // Read at end of file: returned intact, no line end added.
        let file = b"From a Tue Jan  1 00:00:00 2002\nSubject: x\n\nno newline";
        let messages = read_ok(file);
        assert_eq!(messages[0].raw, b"Subject: x\r\n\r\nno newline");
        // Written back it gains a newline and the separator: the file grows by "\n\n" ...
        let written = write_all(&messages);
        assert_eq!(written, [&file[..], b"\n\n"].concat());
        // ... and from there on it is a fixed point.
        assert_eq!(write_all(&read_ok(&written)), written);

        // A store message without final CRLF in the middle of an export round-trips at
        // file level too (the message gains a CRLF).
        let mut stored = read_ok(STANDARD);
        stored.insert(1, messages[0].clone());
        let file = write_all(&stored);
        let again = read_ok(&file);
        assert_eq!(again[1].raw, b"Subject: x\r\n\r\nno newline\r\n");
        assert_eq!(write_all(&again), file);
    }

    #[test]
    fn mbox_empty_message_round_trips() {
        let empty = ImportedMessage {
            internal_date: Some(0),
            ..Default::default()
        };
        let file = write_all(&[empty.clone(), empty]);
        assert_eq!(
            file,
            b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n\nFrom MAILER-DAEMON Thu Jan  1 00:00:00 1970\n\n"
        );
        let messages = read_ok(&file);
        assert_eq!(messages.len(), 2);
        assert!(messages.iter().all(|m| m.raw.is_empty()));
    }

    #[test]
    fn mbox_mboxo_sample() {
        // mboxo quoted the body's "From " once and left the original ">From " alone: both
        // read as "From " (the documented ambiguity), and the file still round-trips.
        let file = b"From someone@example.net Sat Mar  1 10:00:00 2003\n\
Subject: mboxo\n\
\n\
>From quoted by the mboxo writer\n\
>From was literally this in the original\n\
\n";
        let messages = read_ok(file);
        assert_eq!(
            messages[0].raw,
            b"Subject: mboxo\r\n\r\nFrom quoted by the mboxo writer\r\nFrom was literally this in the original\r\n"
        );
        assert_eq!(write_all(&messages), file);
    }

    #[test]
    fn mbox_not_an_mbox_file() {
        let items = read_all(b"Subject: hi\n\nbody\n", 1000);
        assert_eq!(items.len(), 1);
        let err = items.into_iter().next().unwrap().unwrap_err();
        assert!(matches!(err, MboxError::NotMbox));
        assert_eq!(
            err.to_string(),
            "not an mbox file: first line is not a From_ line"
        );
        assert!(read_all(b"", 1000).is_empty());
    }

    #[test]
    fn mbox_oversized_message_is_skipped() {
        let m1 = b"From a Tue Jan  1 00:00:00 2002\nSubject: small\n\nok\n\n".to_vec();
        let mut m2 = b"From b Tue Jan  1 00:00:01 2002\nSubject: big\n\n".to_vec();
        for _ in 0..50 {
            m2.extend_from_slice(b"0123456789\n");
        }
        m2.push(b'\n');
        let m3 = b"From c Tue Jan  1 00:00:02 2002\nSubject: small too\n\nok\n\n".to_vec();
        let mut m4 = b"From d Tue Jan  1 00:00:03 2002\nSubject: one long line\n\n".to_vec();
        m4.extend(std::iter::repeat_n(b'x', 10_000));
        m4.extend_from_slice(b"\n\n");
        let m5 = b"From e Tue Jan  1 00:00:04 2002\nSubject: last\n\nend\n".to_vec();
        let file = [&m1[..], &m2, &m3, &m4, &m5].concat();
        let items = read_all(&file, 200);
        assert_eq!(items.len(), 5);
        assert_eq!(
            items[0].as_ref().unwrap().envelope_from.as_deref(),
            Some("a")
        );
        match &items[1] {
            Err(MboxError::MessageTooLarge {
                index: 2,
                offset,
                limit: 200,
            }) => assert_eq!(*offset, m1.len() as u64),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            items[2].as_ref().unwrap().envelope_from.as_deref(),
            Some("c")
        );
        match &items[3] {
            Err(
                e @ MboxError::MessageTooLarge {
                    index: 4, offset, ..
                },
            ) => {
                assert_eq!(*offset, (m1.len() + m2.len() + m3.len()) as u64);
                assert!(e.to_string().starts_with("message 4 (at byte "));
            }
            other => panic!("{other:?}"),
        }
        let last = items[4].as_ref().unwrap();
        assert_eq!(last.raw, b"Subject: last\r\n\r\nend\r\n");
    }

    #[test]
    fn mbox_crlf_input() {
        let file = b"From a@example.com Tue Jan  1 00:00:00 2002\r\n\
Subject: crlf\r\nStatus: R\r\n\r\nbody\r\n>From x\r\n\r\n\
From b@example.com Tue Jan  1 00:00:01 2002 +0100\r\nSubject: two\r\n\r\nend\r\n";
        let messages = read_ok(file);
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[0].raw,
            b"Subject: crlf\r\nStatus: R\r\n\r\nbody\r\nFrom x\r\n"
        );
        assert!(messages[0].flags.system.has(SystemFlags::SEEN));
        assert_eq!(messages[0].envelope_from.as_deref(), Some("a@example.com"));
        assert_eq!(messages[1].internal_date, Some(1_009_843_201 - 3600));
        assert_eq!(messages[1].raw, b"Subject: two\r\n\r\nend\r\n");
    }

    #[test]
    fn mbox_from_line_variants() {
        let cases: &[(&str, Option<i64>)] = &[
            ("Tue Jan  1 00:00:00 2002", Some(1_009_843_200)),
            ("Thu Jan 01 00:00:00 2002", Some(1_009_843_200)),
            ("Tue Jan  1 00:00:00 2002 +0200", Some(1_009_843_200 - 7200)),
            (
                "Thu Jan  1 00:00:00 -0500 2002",
                Some(1_009_843_200 + 18_000),
            ),
            ("Thu Jan  1 00:00:00 GMT 2002", Some(1_009_843_200)),
            (
                "Thu Jan  1 00:00 2002 remote from gateway",
                Some(1_009_843_200),
            ),
            ("Thu, 1 Jan 2002 00:00:00 +0000", Some(1_009_843_200)),
            ("Thu Feb 30 00:00:00 2002", None),
            ("Thu Jan  1 25:00:00 2002", None),
            ("yesterday", None),
            ("", None),
        ];
        for (date, want) in cases {
            assert_eq!(parse_asctime(date), *want, "{date}");
        }
        let sep = Separator::parse(b"From  Tue Jan  1 00:00:00 2002\n", 7);
        assert_eq!(sep.envelope_from, None);
        assert_eq!(sep.date, Some(1_009_843_200));
        assert_eq!(sep.offset, 7);
        let sep = Separator::parse(b"From x@y\n", 0);
        assert_eq!(sep.envelope_from.as_deref(), Some("x@y"));
        assert_eq!(sep.date, None);
    }

    #[test]
    fn mbox_writer_sanitises_sender() {
        assert_eq!(envelope_sender(None), "MAILER-DAEMON");
        assert_eq!(envelope_sender(Some("<>")), "MAILER-DAEMON");
        assert_eq!(envelope_sender(Some("<a@b>")), "a@b");
        assert_eq!(envelope_sender(Some("a b\tc")), "a_b_c");
    }

    #[test]
    fn asctime_known_values() {
        assert_eq!(format_asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(format_asctime(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(format_asctime(-1), "Wed Dec 31 23:59:59 1969");
        assert_eq!(format_asctime(4_107_542_399), "Sun Feb 28 23:59:59 2100");
        assert_eq!(format_asctime(4_107_542_400), "Mon Mar  1 00:00:00 2100");
        assert_eq!(format_asctime(1_709_164_800), "Thu Feb 29 00:00:00 2024");
    }

    #[test]
    fn asctime_round_trip_many_timestamps() {
        // 1900-01-01 .. about 2200, step a prime so every field value comes up.
        let mut t: i64 = -2_208_988_800;
        while t < 7_258_118_400 {
            let text = format_asctime(t);
            assert_eq!(parse_asctime(&text), Some(t), "{text}");
            t += 86_399 * 7 + 3_607;
        }
        // Every day of a few leap and non-leap years around the edges.
        for year in [1900, 1999, 2000, 2023, 2024, 2100] {
            let start = days_from_civil(year, 1, 1);
            let end = days_from_civil(year + 1, 1, 1);
            assert_eq!(end - start, if is_leap(year) { 366 } else { 365 });
            for day in start..end {
                let (y, m, d) = civil_from_days(day);
                assert_eq!(days_from_civil(y, m, d), day);
                let t = day * 86_400 + 43_210;
                assert_eq!(parse_asctime(&format_asctime(t)), Some(t));
            }
        }
    }

    #[test]
    fn mbox_streams_a_large_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.mbox");
        let mut body = Vec::new();
        for i in 0..120 {
            body.extend_from_slice(
                format!(
                    "line {i:03} of a generated message body, padded to look like mail text.....\n"
                )
                .as_bytes(),
            );
        }
        let target: u64 = 50 * 1024 * 1024;
        let mut written: u64 = 0;
        let mut count = 0usize;
        {
            let mut w = BufWriter::new(std::fs::File::create(&path).unwrap());
            while written < target {
                let head = format!(
                    "From gen@example.com Tue Jan  1 00:00:00 2002\nSubject: message {count}\n\n"
                );
                w.write_all(head.as_bytes()).unwrap();
                w.write_all(&body).unwrap();
                w.write_all(b"\n").unwrap();
                written += (head.len() + body.len() + 1) as u64;
                count += 1;
            }
            w.flush().unwrap();
        }
        let reader = BufReader::new(std::fs::File::open(&path).unwrap());
        let mut seen = 0usize;
        let mut bytes = 0usize;
        let mut mbox = MboxReader::new(reader, 1 << 20);
        for item in mbox.by_ref() {
            bytes += item.unwrap().raw.len();
            seen += 1;
        }
        assert_eq!(seen, count);
        assert_eq!(mbox.offset(), written);
        assert!(bytes as u64 > written);
        // Memory while reading is measured by benches/import_rss.sh: a process-wide peak
        // RSS taken here also counts whatever the other tests of this binary allocate.
    }
}
