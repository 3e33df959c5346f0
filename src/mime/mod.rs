//! Per-message MIME analysis, computed when FETCH or SEARCH need a message's structure
//! (inside the read job; schema 3 no longer stores it, see docs/decisions.md):
//! everything IMAP FETCH needs (ENVELOPE, BODY/BODYSTRUCTURE, `BODY[section]`
//! byte ranges, RFC822.SIZE, PREVIEW). RFC 3501 §6.4.5, §7.4.2; RFC 9051 §7.5.2.
//!
//! Why a hand parser for the structure and mail-parser only for decoding: FETCH
//! needs exact offsets with RFC 2046 §5.1.1 semantics (the CRLF before a delimiter
//! belongs to the delimiter, `n.MIME` includes the blank line), the raw header bytes
//! (ENVELOPE and BODYSTRUCTURE send values as written, encoded-words not decoded,
//! parameters not RFC 2231-joined), a depth cap that degrades to opaque leaves, and
//! work linear in the input. mail-parser decodes values, keeps u32 offsets and has
//! its own notion of part ends, so matching its output to IMAP would be more code
//! than this walker. It is used for what it is good at: base64/QP/charset decoding
//! and HTML-to-text for the preview.
//!
//! Robustness: [`analyze`] never panics, recurses at most [`MAX_DEPTH`] levels and
//! allocates O(input) memory, with at most [`ITEM_BUDGET`] parts + parameters +
//! addresses + language tags per message. Only CRLF ends a line (input is normalised).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod address;
mod content;
pub mod cte;
mod envelope;
pub mod header;
mod preview;
mod structure;
pub mod subject;
pub mod summary;
#[cfg(test)]
mod tests;
pub mod text;

use serde::{Deserialize, Serialize};

pub use address::Address;
pub use content::{Disposition, Param};
pub use envelope::Envelope;
pub use header::{HeaderField, header_block, header_end, header_fields, header_value, unfold};
pub use preview::PREVIEW_MAX_CHARS;

/// Bump when the stored form or the analysis changes; the store re-analyzes messages
/// whose metadata carries an older version.
pub const META_VERSION: u32 = 1;

/// Deepest MIME nesting (multipart and message/rfc822 levels below the top) analysed.
/// Deeper multipart or message parts become opaque `application/octet-stream` leaves.
/// 64 is far above real mail (clients rarely nest past 10) and keeps recursion small.
pub const MAX_DEPTH: usize = 64;

/// Most parts + parameters + addresses + language tags kept per message. Past it,
/// further parameters/addresses are dropped and multiparts stop splitting. Bounds
/// memory to a few MiB for hostile input; real mail uses well under 1,000.
pub const ITEM_BUDGET: usize = 100_000;

/// Everything FETCH needs often about one message (RFC 3501 §6.4.5, §7.4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    /// RFC822.SIZE: octets of the whole message (RFC 3501 §2.3.4).
    pub size: u64,
    /// Length of `BODY[HEADER]`, blank line included; equals `body.header_end`.
    pub header_len: u64,
    /// ENVELOPE of the top-level message.
    pub envelope: Envelope,
    /// The MIME tree; its root covers the whole message (`header_start` 0).
    pub body: BodyPart,
    /// PREVIEW (RFC 8970): up to [`PREVIEW_MAX_CHARS`] characters of the first
    /// text/plain or text/html part; `None` when there is no such part.
    pub preview: Option<String>,
}

/// One MIME entity: a message, or a part of a multipart (RFC 2045 §2.4).
///
/// Offsets index the raw message: `raw[header_start..header_end]` is the entity's
/// header including its terminating blank line (`BODY[n.MIME]`, or `BODY[HEADER]` for
/// a message), `raw[header_end..body_end]` its body (`BODY[n]`, `BODY[TEXT]`).
/// Field values are the unfolded, trimmed header values, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyPart {
    pub header_start: u64,
    /// Just after the blank line ending the header; `header_start + 2` when the
    /// entity starts with an empty line; `body_end` when it has no blank line at all.
    pub header_end: u64,
    pub body_end: u64,
    /// Media type as written, e.g. `text` (RFC 2045 §5.1). Defaults: `TEXT`/`PLAIN`
    /// with `CHARSET=US-ASCII` (RFC 2045 §5.2), or `MESSAGE`/`RFC822` inside
    /// multipart/digest (RFC 2046 §5.1.5); also used for an unparseable Content-Type.
    pub media_type: Vec<u8>,
    pub media_subtype: Vec<u8>,
    /// Content-Type parameters in order; see [`Param`] (RFC 2231 not joined).
    pub params: Vec<Param>,
    /// Content-ID (RFC 2045 §7), as written, angle brackets included.
    pub id: Option<Vec<u8>>,
    /// Content-Description (RFC 2045 §8), encoded-words left encoded.
    pub description: Option<Vec<u8>>,
    /// Content-Transfer-Encoding mechanism as written; `7BIT` when absent
    /// (RFC 2045 §6.1).
    pub encoding: Vec<u8>,
    /// Body lines (RFC 3501 body-fld-lines), `Some` for `text/*` and analysed
    /// message/rfc822 or message/global parts: LF count plus one for a last line
    /// without CRLF.
    pub lines: Option<u64>,
    /// Content-MD5 (RFC 1864), as written.
    pub md5: Option<Vec<u8>>,
    /// Content-Disposition (RFC 2183).
    pub disposition: Option<Disposition>,
    /// Content-Language tags (RFC 3282); empty means NIL.
    pub language: Vec<Vec<u8>>,
    /// Content-Location (RFC 2557 §4), unfolded.
    pub location: Option<Vec<u8>>,
    pub kind: PartKind,
}

/// What an entity contains (RFC 3501 §7.4.2 body-type-1part / body-type-mpart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartKind {
    /// A leaf (body-type-basic or body-type-text).
    Single,
    /// multipart/*: `children` is never empty (a multipart with no parseable parts
    /// gets one empty text/plain child). `boundary` as found in the parameters.
    Multipart {
        boundary: Option<Vec<u8>>,
        children: Vec<BodyPart>,
    },
    /// message/rfc822 or message/global (body-type-msg): the encapsulated message,
    /// whose header starts at this part's `header_end`.
    Message {
        envelope: Box<Envelope>,
        body: Box<BodyPart>,
    },
}

impl BodyPart {
    /// Body size in octets (RFC 3501 body-fld-octets): encoded, as stored.
    pub fn body_size(&self) -> u64 {
        self.body_end.saturating_sub(self.header_end)
    }

    /// `raw[header_start..header_end]`, or empty if `raw` is not the analysed message.
    pub fn header<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        raw.get(to_usize(self.header_start)..to_usize(self.header_end))
            .unwrap_or_default()
    }

    /// `raw[header_end..body_end]`, or empty if `raw` is not the analysed message.
    pub fn text<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        raw.get(to_usize(self.header_end)..to_usize(self.body_end))
            .unwrap_or_default()
    }

    /// The part named by an IMAP section number path (`[1, 2]` for `1.2`), with `self`
    /// as a message root (RFC 3501 §6.4.5): part 1 of a non-multipart message is its
    /// body; the numbers after a message/rfc822 part address the encapsulated
    /// message's parts. `None` for a part that does not exist; `Some(self)` for `[]`.
    pub fn section(&self, path: &[u32]) -> Option<&BodyPart> {
        let mut node = self;
        let mut at_message = true;
        let mut rest = path;
        while let Some((&n, tail)) = rest.split_first() {
            match &node.kind {
                PartKind::Multipart { children, .. } => {
                    node = children.get(usize::try_from(n.checked_sub(1)?).ok()?)?;
                    at_message = false;
                }
                _ if at_message => {
                    if n != 1 {
                        return None;
                    }
                    at_message = false;
                }
                PartKind::Message { body, .. } => {
                    node = body;
                    at_message = true;
                    continue; // the same number now applies inside the message
                }
                PartKind::Single => return None,
            }
            rest = tail;
        }
        Some(node)
    }
}

/// Analyses one message. `raw` is the whole message with CRLF line ends.
/// Never panics; see the module documentation for limits.
pub fn analyze(raw: &[u8]) -> MessageMeta {
    let mut walker = structure::Walker {
        raw,
        budget: Budget(ITEM_BUDGET),
    };
    let body = walker.entity(0, raw.len(), 0, false);
    let header = raw.get(..to_usize(body.header_end)).unwrap_or_default();
    let envelope = envelope::parse_envelope(header, &mut walker.budget);
    let preview = preview::preview(raw, &body);
    MessageMeta {
        size: to_u64(raw.len()),
        header_len: body.header_end,
        envelope,
        body,
        preview,
    }
}

/// The ENVELOPE fields of a header block alone (SORT and THREAD read only headers).
pub fn envelope(header: &[u8]) -> Envelope {
    envelope::parse_envelope(header, &mut Budget(ITEM_BUDGET))
}

/// Remaining allowance of allocated items; see [`ITEM_BUDGET`].
pub(crate) struct Budget(usize);

impl Budget {
    /// Uses one item; false once the budget is spent.
    pub(crate) fn take(&mut self) -> bool {
        match self.0.checked_sub(1) {
            Some(left) => {
                self.0 = left;
                true
            }
            None => false,
        }
    }
}

pub(crate) fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

pub(crate) fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
