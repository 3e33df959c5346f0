//! Header block helpers: field iteration, lookup, unfolding (RFC 5322 §2.2, §2.2.3).
//!
//! These work on a raw header block (`BODY[HEADER]`-style bytes, optionally ending in
//! the blank line) and are meant to be reused by FETCH `HEADER.FIELDS`, SEARCH and
//! delivery code. Only CRLF ends a line; a bare LF or CR is ordinary field content.

/// One header field as it appears in a header block (RFC 5322 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderField<'a> {
    /// Field name as written, with any whitespace before the `:` removed (obs-syntax).
    pub name: &'a [u8],
    /// Everything after the `:` up to, not including, the CRLF that ends the field's
    /// last line. Still folded; see [`unfold`].
    pub value: &'a [u8],
    /// The whole field, folded lines and final CRLF (if any) included: what
    /// `BODY[HEADER.FIELDS (..)]` returns for it (RFC 3501 §6.4.5).
    pub raw: &'a [u8],
}

/// Iterator over the fields of a header block; see [`header_fields`].
#[derive(Debug, Clone)]
pub struct HeaderFields<'a> {
    rest: &'a [u8],
}

/// Iterates over the fields of `header`, stopping at the first empty line.
///
/// Lines that are neither a field (`name ":" value`) nor a continuation of one are
/// skipped, as are continuation lines with no field before them.
pub fn header_fields(header: &[u8]) -> HeaderFields<'_> {
    HeaderFields { rest: header }
}

impl<'a> Iterator for HeaderFields<'a> {
    type Item = HeaderField<'a>;

    fn next(&mut self) -> Option<HeaderField<'a>> {
        loop {
            let rest = self.rest;
            if rest.is_empty() || rest.starts_with(b"\r\n") {
                self.rest = &[];
                return None;
            }
            let first_end = line_end(rest, 0);
            let mut end = first_end;
            while matches!(rest.get(end), Some(b' ' | b'\t')) {
                end = line_end(rest, end);
            }
            let (field, tail) = rest.split_at(end.min(rest.len()));
            self.rest = tail;
            if matches!(field.first(), Some(b' ' | b'\t')) {
                continue;
            }
            let first_line = field.get(..first_end).unwrap_or(field);
            let Some(colon) = memchr::memchr(b':', first_line) else {
                continue;
            };
            let name = trim_end(field.get(..colon).unwrap_or_default());
            if name.is_empty() {
                continue;
            }
            let value = field.get(colon.saturating_add(1)..).unwrap_or_default();
            let value = value.strip_suffix(b"\r\n").unwrap_or(value);
            return Some(HeaderField {
                name,
                value,
                raw: field,
            });
        }
    }
}

/// The raw (folded, untrimmed) value of the first field called `name`
/// (ASCII case-insensitive), or `None` when the header has no such field.
pub fn header_value<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    header_fields(header)
        .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| f.value)
}

/// Unfolds a field value (CRLF followed by WSP becomes the WSP, RFC 5322 §2.2.3) and
/// trims leading and trailing whitespace. Other bytes, 8-bit ones included, are kept.
pub fn unfold(value: &[u8]) -> Vec<u8> {
    let value = trim(value);
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        if b == b'\r' && value.get(i.saturating_add(1)) == Some(&b'\n') {
            i = i.saturating_add(2);
            continue;
        }
        out.push(b);
        i = i.saturating_add(1);
    }
    out
}

/// Unfolds a raw header value and decodes RFC 2047 encoded-words; invalid UTF-8 is
/// replaced.
pub fn decoded(raw: &[u8]) -> String {
    let unfolded = unfold(raw);
    if !unfolded.windows(2).any(|w| w == b"=?") {
        return String::from_utf8_lossy(&unfolded).into_owned();
    }
    let mut input = Vec::with_capacity(unfolded.len().saturating_add(2));
    input.push(b' ');
    input.extend_from_slice(&unfolded);
    input.extend_from_slice(b"\r\n");
    match mail_parser::parsers::MessageStream::new(&input).parse_unstructured() {
        mail_parser::HeaderValue::Text(t) => t.into_owned(),
        _ => String::from_utf8_lossy(&unfolded).into_owned(),
    }
}

/// The header block of a message: up to and including the first empty line (or all of it).
pub fn header_block(raw: &[u8]) -> &[u8] {
    let end = header_end(raw, 0, raw.len());
    raw.get(..end).unwrap_or(raw)
}

/// Where the header block starting at `start` ends: just after the blank line that
/// terminates it, `start + 2` when the entity starts with an empty line, or `end` when
/// there is no blank line before `end` (then the whole entity is header).
pub fn header_end(raw: &[u8], start: usize, end: usize) -> usize {
    match raw.get(start..end).and_then(blank_line_end) {
        Some(n) => start.saturating_add(n),
        None => end,
    }
}

/// The length of `entity`'s header up to and with the blank line that ends it, if that
/// line is in `entity` (an entity starting with an empty line has a header of 2).
pub fn blank_line_end(entity: &[u8]) -> Option<usize> {
    if entity.starts_with(b"\r\n") {
        return Some(2);
    }
    memchr::memmem::find(entity, b"\r\n\r\n").map(|p| p.saturating_add(4))
}

/// Index just after the CRLF ending the line that contains `from`, or `s.len()`.
pub(crate) fn line_end(s: &[u8], from: usize) -> usize {
    match find_crlf(s, from) {
        Some(p) => p.saturating_add(2),
        None => s.len(),
    }
}

/// Position of the first CRLF at or after `from`.
pub(crate) fn find_crlf(s: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let tail = s.get(i..)?;
        let lf = memchr::memchr(b'\n', tail)?;
        let at = i.saturating_add(lf);
        if at > from && s.get(at.saturating_sub(1)) == Some(&b'\r') {
            return Some(at.saturating_sub(1));
        }
        i = at.saturating_add(1);
    }
}

pub(crate) fn is_wsp(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `s` without the leading bytes `space` picks (what counts as space differs: SP and
/// HTAB in an SMTP command, also CR and LF in an unfolded header).
pub fn trim_start_by(s: &[u8], space: impl Fn(u8) -> bool) -> &[u8] {
    let n = s.iter().take_while(|&&b| space(b)).count();
    s.get(n..).unwrap_or_default()
}

/// `s` without the trailing bytes `space` picks.
pub fn trim_end_by(s: &[u8], space: impl Fn(u8) -> bool) -> &[u8] {
    let n = s.iter().rev().take_while(|&&b| space(b)).count();
    s.get(..s.len().saturating_sub(n)).unwrap_or_default()
}

pub(crate) fn trim(s: &[u8]) -> &[u8] {
    trim_end(trim_start_by(s, is_wsp))
}

fn trim_end(s: &[u8]) -> &[u8] {
    trim_end_by(s, is_wsp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(header_block(b"A: b\r\n\r\nbody"), b"A: b\r\n\r\n");
        assert_eq!(header_block(b"\r\nbody"), b"\r\n");
        assert_eq!(header_block(b"A: b\r\n"), b"A: b\r\n");
    }

    #[test]
    fn header_helpers() {
        let header = b"Subject: one\r\n two\r\nX-Empty:\r\n continued only\r\nbogus line\r\n\tfolded orphan\r\nsubject : second\r\n\r\nBody: not a header\r\n";
        assert_eq!(header_value(header, "SUBJECT"), Some(&b" one\r\n two"[..]));
        assert_eq!(unfold(header_value(header, "subject").unwrap()), b"one two");
        assert_eq!(header_value(header, "body"), None);
        let fields: Vec<_> = header_fields(header).collect();
        let names: Vec<&[u8]> = fields.iter().map(|f| f.name).collect();
        assert_eq!(names, vec![&b"Subject"[..], b"X-Empty", b"subject"]);
        assert_eq!(fields[0].raw, b"Subject: one\r\n two\r\n");
        assert_eq!(fields[1].value, b"\r\n continued only");
        assert_eq!(fields[2].value, b" second");
        assert_eq!(header_value(b"A: b", "a"), Some(&b" b"[..]));
    }
}
