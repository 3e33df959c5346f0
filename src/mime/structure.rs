//! The MIME tree walk: entity = header + body (RFC 2045 §2.4), multipart bodies
//! (RFC 2046 §5.1.1), encapsulated messages (RFC 2046 §5.2.1, RFC 6532 §3.7).

use super::content::{
    Param, parse_content_type, parse_disposition, parse_encoding, parse_language,
};
use super::envelope::parse_envelope;
use super::header::{self, find_crlf, header_fields, unfold};
use super::{BodyPart, Budget, MAX_DEPTH, PartKind, to_u64, to_usize};

pub(crate) struct Walker<'a> {
    pub raw: &'a [u8],
    pub budget: Budget,
}

/// First occurrence of each MIME field in a part header.
#[derive(Default)]
struct MimeFields<'a> {
    content_type: Option<&'a [u8]>,
    encoding: Option<&'a [u8]>,
    id: Option<&'a [u8]>,
    description: Option<&'a [u8]>,
    md5: Option<&'a [u8]>,
    disposition: Option<&'a [u8]>,
    language: Option<&'a [u8]>,
    location: Option<&'a [u8]>,
}

impl<'a> MimeFields<'a> {
    fn collect(header: &'a [u8]) -> Self {
        let mut m = MimeFields::default();
        for f in header_fields(header) {
            let Some(rest) = strip_prefix_ci(f.name, b"content-") else {
                continue;
            };
            let slot = match rest.to_ascii_lowercase().as_slice() {
                b"type" => &mut m.content_type,
                b"transfer-encoding" => &mut m.encoding,
                b"id" => &mut m.id,
                b"description" => &mut m.description,
                b"md5" => &mut m.md5,
                b"disposition" => &mut m.disposition,
                b"language" => &mut m.language,
                b"location" => &mut m.location,
                _ => continue,
            };
            slot.get_or_insert(f.value);
        }
        m
    }
}

fn strip_prefix_ci<'s>(s: &'s [u8], prefix: &[u8]) -> Option<&'s [u8]> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// RFC 2045 §5.2 default: `text/plain; charset=us-ascii`.
fn default_type() -> (Vec<u8>, Vec<u8>, Vec<Param>) {
    let charset = Param {
        name: b"CHARSET".to_vec(),
        value: b"US-ASCII".to_vec(),
    };
    (b"TEXT".to_vec(), b"PLAIN".to_vec(), vec![charset])
}

/// The synthetic part a multipart without parts gets, so BODYSTRUCTURE stays valid
/// (Dovecot does the same): empty text/plain at the end of the multipart.
fn empty_part(at: usize) -> BodyPart {
    let (media_type, media_subtype, params) = default_type();
    BodyPart {
        header_start: to_u64(at),
        header_end: to_u64(at),
        body_end: to_u64(at),
        media_type,
        media_subtype,
        params,
        id: None,
        description: None,
        encoding: b"7BIT".to_vec(),
        lines: Some(0),
        md5: None,
        disposition: None,
        language: Vec::new(),
        location: None,
        kind: PartKind::Single,
    }
}

/// RFC 3501 §7.4.2 body-fld-lines: LF count, plus one for a final line without CRLF.
pub(crate) fn count_lines(body: &[u8]) -> u64 {
    let lf = body.iter().filter(|&&b| b == b'\n').count();
    let partial = usize::from(body.last().is_some_and(|&b| b != b'\n'));
    to_u64(lf.saturating_add(partial))
}

struct Delimiter {
    line_start: usize,
    close: bool,
    /// Just after the delimiter line's CRLF (or `end`).
    next: usize,
}

/// Next boundary delimiter line in `raw[from..end]`; `from` must be a line start.
///
/// A delimiter line is `"--" boundary` followed by `"--"` (close-delimiter, anything
/// may follow) or by nothing but whitespace (RFC 2046 §5.1.1 transport-padding).
/// Linear in the bytes scanned: it hops between `"\r\n--"` line starts and compares
/// each candidate line at most once.
fn next_delimiter(raw: &[u8], from: usize, end: usize, boundary: &[u8]) -> Option<Delimiter> {
    let scope = raw.get(..end)?;
    let mut line_start = from;
    loop {
        let line = scope.get(line_start..)?;
        if let Some(after) = line
            .strip_prefix(b"--")
            .and_then(|l| l.strip_prefix(boundary))
        {
            let stop = find_crlf(after, 0);
            let padding = after.get(..stop.unwrap_or(after.len())).unwrap_or_default();
            let close = after.starts_with(b"--");
            if close || padding.iter().all(|&b| b == b' ' || b == b'\t') {
                let consumed = line.len().saturating_sub(after.len());
                let next = match stop {
                    Some(p) => line_start
                        .saturating_add(consumed)
                        .saturating_add(p)
                        .saturating_add(2),
                    None => end,
                };
                return Some(Delimiter {
                    line_start,
                    close,
                    next,
                });
            }
        }
        // Hop to the next line that starts with "--" (at least 2 bytes forward; the
        // current line may itself be empty, so search from its first byte).
        let tail = scope.get(line_start..)?;
        let hop = memchr::memmem::find(tail, b"\r\n--")?;
        line_start = line_start.saturating_add(hop).saturating_add(2);
    }
}

impl Walker<'_> {
    /// Parses the entity `raw[start..end]` at nesting `depth` (root = 0).
    /// `in_digest`: the parent is multipart/digest, so the default type is
    /// message/rfc822 (RFC 2046 §5.1.5).
    pub(crate) fn entity(
        &mut self,
        start: usize,
        end: usize,
        depth: usize,
        in_digest: bool,
    ) -> BodyPart {
        let raw = self.raw;
        let header_end = header::header_end(raw, start, end);
        let header = raw.get(start..header_end).unwrap_or_default();
        let body = raw.get(header_end..end).unwrap_or_default();
        let fields = MimeFields::collect(header);
        let budget = &mut self.budget;

        let parsed = fields
            .content_type
            .and_then(|v| parse_content_type(&unfold(v), budget));
        let (media_type, media_subtype, params) = match parsed {
            Some(ct) => (ct.media_type, ct.subtype, ct.params),
            None if in_digest => (b"MESSAGE".to_vec(), b"RFC822".to_vec(), Vec::new()),
            None => default_type(),
        };
        let encoding = fields
            .encoding
            .and_then(|v| parse_encoding(&unfold(v)))
            .unwrap_or_else(|| b"7BIT".to_vec());
        let disposition = fields
            .disposition
            .and_then(|v| parse_disposition(&unfold(v), budget));
        let language = fields
            .language
            .map(|v| parse_language(&unfold(v), budget))
            .unwrap_or_default();

        let mut part = BodyPart {
            header_start: to_u64(start),
            header_end: to_u64(header_end),
            body_end: to_u64(end),
            media_type,
            media_subtype,
            params,
            id: fields.id.map(unfold),
            description: fields.description.map(unfold),
            encoding,
            lines: None,
            md5: fields.md5.map(unfold),
            disposition,
            language,
            location: fields.location.map(unfold),
            kind: PartKind::Single,
        };

        let is_multipart = part.media_type.eq_ignore_ascii_case(b"multipart");
        let is_message = part.media_type.eq_ignore_ascii_case(b"message")
            && (part.media_subtype.eq_ignore_ascii_case(b"rfc822")
                || part.media_subtype.eq_ignore_ascii_case(b"global"));
        if is_multipart || is_message {
            if depth >= MAX_DEPTH || !self.budget.take() {
                // DEVIATION: too deep or too many parts: an opaque leaf. Its bytes stay
                // reachable through BODY[section]; only the structure is cut.
                part.media_type = b"APPLICATION".to_vec();
                part.media_subtype = b"OCTET-STREAM".to_vec();
                return part;
            }
            if is_multipart {
                let digest = part.media_subtype.eq_ignore_ascii_case(b"digest");
                let boundary = part
                    .params
                    .iter()
                    .find(|p| p.name.eq_ignore_ascii_case(b"boundary"))
                    .map(|p| p.value.clone())
                    .filter(|b| !b.is_empty());
                let children = self.children(header_end, end, boundary.as_deref(), depth, digest);
                part.kind = PartKind::Multipart { boundary, children };
            } else {
                let inner = self.entity(header_end, end, depth.saturating_add(1), false);
                let inner_header = raw
                    .get(header_end..to_usize(inner.header_end))
                    .unwrap_or_default();
                let envelope = parse_envelope(inner_header, &mut self.budget);
                part.lines = Some(count_lines(body));
                part.kind = PartKind::Message {
                    envelope: Box::new(envelope),
                    body: Box::new(inner),
                };
            }
        } else if part.media_type.eq_ignore_ascii_case(b"text") {
            part.lines = Some(count_lines(body));
        }
        part
    }

    /// Splits a multipart body `raw[body_start..end]` (RFC 2046 §5.1.1). The CRLF
    /// before a delimiter belongs to the delimiter. Preamble and epilogue belong to
    /// no part. A missing close-delimiter ends the last part at `end`. Always returns
    /// at least one part.
    fn children(
        &mut self,
        body_start: usize,
        end: usize,
        boundary: Option<&[u8]>,
        depth: usize,
        digest: bool,
    ) -> Vec<BodyPart> {
        let mut children = Vec::new();
        let child_depth = depth.saturating_add(1);
        if let Some(boundary) = boundary {
            let mut current: Option<usize> = None;
            let mut pos = body_start;
            while let Some(d) = next_delimiter(self.raw, pos, end, boundary) {
                if let Some(start) = current.take() {
                    let part_end = d.line_start.saturating_sub(2).max(start);
                    if !self.budget.take() {
                        break;
                    }
                    children.push(self.entity(start, part_end, child_depth, digest));
                }
                if d.close {
                    break;
                }
                current = Some(d.next);
                pos = d.next;
            }
            if let Some(start) = current
                && self.budget.take()
            {
                children.push(self.entity(start, end, child_depth, digest));
            }
        }
        if children.is_empty() {
            children.push(empty_part(end));
        }
        children
    }
}
