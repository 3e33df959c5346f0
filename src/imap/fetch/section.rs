//! `BODY[section]<partial>` and `BINARY[section]` content (RFC 3501 §6.4.5, RFC 9051
//! §6.4.5, RFC 3516 §4.2).
//!
//! The message a client sees is `prefix + blob`; the stored [`MessageMeta`] offsets are
//! relative to the blob. Every range that starts at the top of the blob (the message
//! header, the whole message, part 1's MIME header of a single-part message) starts at
//! the top of the prefix instead, so the trace headers belong to the top-level header.

use std::borrow::Cow;

use super::strings::{Options, binary_literal, literal, string};
use crate::mime::cte::UnknownCte;
use crate::mime::header::header_end;
use crate::mime::{BodyPart, MessageMeta, PartKind, header_fields};

/// A section specification (RFC 3501 §9 `section-spec`): a part path (empty for the
/// whole message) and an optional text specifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// Part numbers, `[1, 2]` for `1.2`; all non-zero.
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

/// `section-msgtext` / `"MIME"` (RFC 3501 §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    /// Field names as the client sent them.
    HeaderFields(Vec<Vec<u8>>),
    HeaderFieldsNot(Vec<Vec<u8>>),
    Text,
    /// Only valid after a part number.
    Mime,
}

/// `"<" number "." nz-number ">"`: origin and count in octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    pub origin: u64,
    pub count: u64,
}

impl Section {
    /// `BODY[]`: the whole message.
    pub fn whole() -> Section {
        Section::default()
    }

    /// `MIME` needs a part number (RFC 3501 §6.4.5); part numbers are non-zero.
    pub fn is_valid(&self) -> bool {
        let top_mime = self.part.is_empty() && self.text == Some(SectionText::Mime);
        !self.part.contains(&0) && !top_mime
    }

    /// Writes the section spec as the response key repeats it (RFC 3501 §7.4.2), e.g.
    /// `1.2.HEADER.FIELDS (From "X y")`, without the brackets.
    pub fn write_spec(&self, out: &mut Vec<u8>) {
        for (i, n) in self.part.iter().enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        let Some(text) = &self.text else { return };
        if !self.part.is_empty() {
            out.push(b'.');
        }
        let (word, names): (&[u8], Option<&Vec<Vec<u8>>>) = match text {
            SectionText::Header => (b"HEADER", None),
            SectionText::HeaderFields(n) => (b"HEADER.FIELDS", Some(n)),
            SectionText::HeaderFieldsNot(n) => (b"HEADER.FIELDS.NOT", Some(n)),
            SectionText::Text => (b"TEXT", None),
            SectionText::Mime => (b"MIME", None),
        };
        out.extend_from_slice(word);
        if let Some(names) = names {
            out.extend_from_slice(b" (");
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                astring(name, out);
            }
            out.push(b')');
        }
    }
}

/// An `astring` for a header field name: the atom form when every byte is an
/// ASTRING-CHAR, else a string.
fn astring(value: &[u8], out: &mut Vec<u8>) {
    let atom = !value.is_empty()
        && value
            .iter()
            .all(|&b| b > b' ' && b < 0x7f && !b"(){%*\"\\".contains(&b));
    if atom {
        out.extend_from_slice(value);
    } else {
        string(value, Options::default(), out);
    }
}

/// Maps blob offsets to offsets in `prefix + blob`.
struct Layout<'r> {
    raw: &'r [u8],
    prefix: usize,
}

impl<'r> Layout<'r> {
    /// `[start, end)` of the blob as a slice of the full message; a range starting at
    /// blob offset 0 starts at the top of the prefix.
    fn range(&self, start: u64, end: u64) -> &'r [u8] {
        let to = |o: u64| usize::try_from(o).unwrap_or(usize::MAX);
        let s = if start == 0 {
            0
        } else {
            to(start).saturating_add(self.prefix)
        };
        let e = to(end).saturating_add(self.prefix).max(s);
        self.raw.get(s..e).unwrap_or_default()
    }

    fn header(&self, p: &BodyPart) -> &'r [u8] {
        self.range(p.header_start, p.header_end)
    }

    fn text(&self, p: &BodyPart) -> &'r [u8] {
        if p.header_end == p.body_end {
            return &[];
        }
        self.range(p.header_end, p.body_end)
    }
}

/// The content of `BODY[section]` (without partial), from the full message `raw` =
/// prefix + blob, `prefix_len` and the blob's `meta`, which only sections below the
/// top level need (`None` otherwise: no MIME analysis for `BODY[]`, `BODY[HEADER]`,
/// `BODY[HEADER.FIELDS (...)]` or `BODY[TEXT]`).
///
/// A part that does not exist, `n.HEADER`/`n.TEXT` of a part that is not a
/// message/rfc822, and `MIME` at the top level give empty content (RFC 3501 §6.4.5:
/// nonexistent parts are not an error; DEVIATION-free since the RFC leaves it open).
pub fn section_bytes<'r>(
    raw: &'r [u8],
    prefix_len: usize,
    meta: Option<&MessageMeta>,
    section: &Section,
) -> Cow<'r, [u8]> {
    let empty = Cow::Borrowed(&[][..]);
    if !section.is_valid() {
        return empty;
    }
    if section.part.is_empty() {
        // The message's header ends at the first blank line of prefix + blob (the
        // prefix is header lines): where the structure would put it, without one.
        let (header, text) = raw.split_at(header_end(raw, 0, raw.len()).min(raw.len()));
        return match &section.text {
            None => Cow::Borrowed(raw),
            Some(t) => message_text(header, text, t),
        };
    }
    let lay = Layout {
        raw,
        prefix: prefix_len,
    };
    let Some(part) = meta.and_then(|m| m.body.section(&section.part)) else {
        return empty;
    };
    match (&section.text, &part.kind) {
        (None, _) => Cow::Borrowed(lay.text(part)),
        (Some(SectionText::Mime), _) => Cow::Borrowed(lay.header(part)),
        // HEADER, TEXT and the field lists of an encapsulated message.
        (Some(t), PartKind::Message { body, .. }) => {
            message_text(lay.header(body), lay.text(body), t)
        }
        (Some(_), _) => empty,
    }
}

/// `HEADER`, `TEXT` and the field lists of a message whose header and text are these
/// (RFC 3501 §6.4.5); `MIME` is not one of them (empty).
fn message_text<'r>(header: &'r [u8], text: &'r [u8], t: &SectionText) -> Cow<'r, [u8]> {
    match t {
        SectionText::Header => Cow::Borrowed(header),
        SectionText::Text => Cow::Borrowed(text),
        SectionText::HeaderFields(names) => Cow::Owned(header_subset(header, names, true)),
        SectionText::HeaderFieldsNot(names) => Cow::Owned(header_subset(header, names, false)),
        SectionText::Mime => Cow::Borrowed(&[][..]),
    }
}

/// `HEADER.FIELDS` (`keep` true) or `HEADER.FIELDS.NOT`: every matching field with its
/// folded lines, in message order, then the blank line (RFC 3501 §6.4.5). Names match
/// ASCII case-insensitively.
pub fn header_subset(header: &[u8], names: &[Vec<u8>], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in header_fields(header) {
        let listed = names.iter().any(|n| n.eq_ignore_ascii_case(field.name));
        if listed == keep {
            out.extend_from_slice(field.raw);
            if !field.raw.ends_with(b"\r\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Applies `<origin.count>` (RFC 3501 §6.4.5): an origin past the end gives nothing, a
/// count past the end is cut.
pub fn partial(bytes: &[u8], p: Partial) -> &[u8] {
    let len = bytes.len();
    let start = usize::try_from(p.origin).unwrap_or(usize::MAX).min(len);
    let end = start
        .saturating_add(usize::try_from(p.count).unwrap_or(usize::MAX))
        .min(len);
    bytes.get(start..end).unwrap_or_default()
}

/// The content of `BINARY[part]` (RFC 3516 §4.2): the part's body with its
/// Content-Transfer-Encoding removed. `[]` is the whole message, as is. A multipart or
/// message/rfc822 part has an identity encoding (RFC 2045 §6.4) and comes out as is;
/// a part that does not exist is empty.
pub fn binary_bytes<'r>(
    raw: &'r [u8],
    prefix_len: usize,
    meta: Option<&MessageMeta>,
    part: &[u32],
) -> Result<Cow<'r, [u8]>, UnknownCte> {
    if part.is_empty() {
        return Ok(Cow::Borrowed(raw));
    }
    let lay = Layout {
        raw,
        prefix: prefix_len,
    };
    let Some(node) = meta.and_then(|m| m.body.section(part)) else {
        return Ok(Cow::Borrowed(&[][..]));
    };
    crate::mime::cte::decode(&node.encoding, lay.text(node))
}

/// Writes `BODY[spec]<origin> {n}CRLF data` (or with `name` = `BINARY`, using literal8
/// when needed). `data` is the already-cut content; the key carries only the origin
/// (RFC 3501 §7.4.2).
pub fn write_section_item(
    name: &[u8],
    section: &Section,
    origin: Option<u64>,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(name);
    out.push(b'[');
    section.write_spec(out);
    out.push(b']');
    if let Some(o) = origin {
        out.push(b'<');
        out.extend_from_slice(o.to_string().as_bytes());
        out.push(b'>');
    }
    out.push(b' ');
    if name.eq_ignore_ascii_case(b"BINARY") {
        binary_literal(data, out);
    } else {
        literal(data, out);
    }
}

/// Writes `BINARY.SIZE[part] n` (RFC 3516 §4.2): the decoded size of the part.
pub fn write_binary_size(part: &[u32], size: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"BINARY.SIZE[");
    Section {
        part: part.to_vec(),
        text: None,
    }
    .write_spec(out);
    out.extend_from_slice(b"] ");
    out.extend_from_slice(size.to_string().as_bytes());
}
