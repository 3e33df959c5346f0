//! FETCH data encoders (RFC 3501 §6.4.5 and §7.4.2; RFC 9051 §6.4.5 and §7.5.2):
//! pure functions that append the value of one message data item to an output buffer.
//! The session assembles `* n FETCH (...)` around them.
//!
//! - [`envelope`], [`body_structure`]: ENVELOPE, BODY, BODYSTRUCTURE.
//! - [`section_bytes`], [`partial`], [`binary_bytes`], [`write_section_item`]:
//!   `BODY[section]<partial>`, `BODY.PEEK`, `BINARY[...]`, `BINARY.SIZE`, and the
//!   RFC822 forms (`RFC822` = `BODY[]`, `RFC822.HEADER` = `BODY.PEEK[HEADER]`,
//!   `RFC822.TEXT` = `BODY[TEXT]`; see [`rfc822_section`]).
//! - [`internal_date`], [`save_date`], [`preview`]: INTERNALDATE, SAVEDATE (RFC 8514),
//!   PREVIEW (RFC 8970).
//!
//! Message content always goes out as a literal, never quoted (PROTOCOL 1.1 item 17,
//! quirks Q13, Q14).

mod section;
mod strings;
mod structure;
#[cfg(test)]
mod tests;

pub use section::{
    Partial, Section, SectionText, binary_bytes, header_subset, partial, section_bytes,
    write_binary_size, write_section_item,
};
pub use strings::{Options, QUOTED_MAX, binary_literal, literal, nstring, quotable, string};
pub use structure::{body_structure, envelope};

use crate::mime::MessageMeta;
use crate::store::Structure;
pub use crate::util::{civil_from_days, days_from_civil};

/// The RFC822 fetch items as the sections they stand for (RFC 3501 §6.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rfc822 {
    /// `RFC822`: `BODY[]`, sets `\Seen`.
    Full,
    /// `RFC822.HEADER`: `BODY.PEEK[HEADER]`.
    Header,
    /// `RFC822.TEXT`: `BODY[TEXT]`, sets `\Seen`.
    Text,
}

/// The section an RFC822 item returns, and whether it sets `\Seen`.
pub fn rfc822_section(item: Rfc822) -> (Section, bool) {
    match item {
        Rfc822::Full => (Section::whole(), true),
        Rfc822::Header => (
            Section {
                part: Vec::new(),
                text: Some(SectionText::Header),
            },
            false,
        ),
        Rfc822::Text => (
            Section {
                part: Vec::new(),
                text: Some(SectionText::Text),
            },
            true,
        ),
    }
}

/// Writes `RFC822 {n}..`, `RFC822.HEADER {n}..` or `RFC822.TEXT {n}..`.
pub fn write_rfc822_item(item: Rfc822, raw: &[u8], out: &mut Vec<u8>) {
    let (section, _) = rfc822_section(item);
    let name: &[u8] = match item {
        Rfc822::Full => b"RFC822",
        Rfc822::Header => b"RFC822.HEADER",
        Rfc822::Text => b"RFC822.TEXT",
    };
    out.extend_from_slice(name);
    out.push(b' ');
    literal(&section_bytes(raw, 0, None, &section), out);
}

/// RFC822.SIZE of a stored message: the blob's size plus its prefix (RFC 3501 §2.3.4).
pub fn rfc822_size(meta: &MessageMeta, prefix_len: usize) -> u64 {
    meta.size
        .saturating_add(u64::try_from(prefix_len).unwrap_or(u64::MAX))
}

/// Writes `date-time` (RFC 3501 §9): `"dd-Mon-yyyy hh:mm:ss +0000"` with a
/// space-padded day (`date-day-fixed`), in UTC, from unix seconds. Years outside
/// 0..=9999 are clamped so the four-digit field stays valid.
pub fn internal_date(unix: i64, out: &mut Vec<u8>) {
    let t = crate::util::Utc::from_unix(unix.clamp(-62_167_219_200, 253_402_300_799));
    let (d, mon, y, time) = (t.day, t.month_name(), t.year, t.time());
    let text = format!("\"{d:>2}-{mon}-{y:04} {time} +0000\"");
    out.extend_from_slice(text.as_bytes());
}

/// Writes the SAVEDATE value (RFC 8514 §4): a date-time, or NIL when the mailbox does
/// not keep save dates.
pub fn save_date(unix: Option<i64>, out: &mut Vec<u8>) {
    match unix {
        Some(t) => internal_date(t, out),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Writes the PREVIEW value (RFC 8970 §3): the stored preview text as an nstring
/// (a literal when it holds 8-bit text and UTF-8 is not enabled); NIL when the message
/// has no text part, `""` when that part is empty.
pub fn preview(meta: &MessageMeta, opts: Options, out: &mut Vec<u8>) {
    nstring(meta.preview.as_deref().map(str::as_bytes), opts, out);
}

/// Decodes a stored structure ([`Structure::Stored`]).
pub fn decode_meta(bytes: &[u8]) -> Option<MessageMeta> {
    postcard::from_bytes(bytes).ok()
}

/// A message's structure: decoded when the store kept it, else parsed from the blob,
/// `raw[prefix..]` (messages in packs; see `store::Structure`). `None` when the stored
/// bytes do not decode or the bytes to parse are missing.
pub fn structure(s: &Structure, raw: Option<&[u8]>, prefix: usize) -> Option<MessageMeta> {
    match s {
        Structure::Stored(bytes) => decode_meta(bytes),
        Structure::Derive => raw.and_then(|r| r.get(prefix..)).map(crate::mime::analyze),
    }
}
