//! PREVIEW text (RFC 8970 §3): a short plain-text summary of the message body.

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::html::html_to_text;

use std::borrow::Cow;

use super::{BodyPart, PartKind};

/// Most characters kept (RFC 8970 §3: a preview SHOULD be at most 200 characters).
pub const PREVIEW_MAX_CHARS: usize = 200;

/// Most encoded body bytes decoded for a preview: bounds the work per message while
/// leaving room for HTML markup before the first visible text.
const PREVIEW_INPUT_MAX: usize = 64 * 1024;

/// Preview from the first text/plain or text/html leaf in depth-first order that is
/// not `Content-Disposition: attachment`, not looking inside attached messages.
/// `None` when there is no such part. Whitespace and control characters collapse to
/// single spaces.
pub(crate) fn preview(raw: &[u8], root: &BodyPart) -> Option<String> {
    let part = first_text(root)?;
    let body = part.text(raw);
    let body = match body.get(..PREVIEW_INPUT_MAX) {
        // Cut at a line end so base64 quanta and QP escapes stay whole.
        Some(prefix) => match prefix.windows(2).rposition(|w| w == b"\r\n") {
            Some(p) => prefix.get(..p).unwrap_or(prefix),
            None => prefix,
        },
        None => body,
    };
    // An encoding we do not know: the text as it is.
    let decoded = super::cte::decode(&part.encoding, body).unwrap_or(Cow::Borrowed(body));
    let bytes = decoded.as_ref();
    let charset = part
        .params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(b"charset"))
        .map(|p| p.value.as_slice());
    let text = match charset.and_then(charset_decoder) {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    };
    let text = if part.media_subtype.eq_ignore_ascii_case(b"html") {
        html_to_text(&text)
    } else {
        text
    };
    Some(squeeze(&text))
}

fn first_text(part: &BodyPart) -> Option<&BodyPart> {
    match &part.kind {
        PartKind::Multipart { children, .. } => children.iter().find_map(first_text),
        PartKind::Message { .. } => None,
        PartKind::Single => {
            let attachment = part
                .disposition
                .as_ref()
                .is_some_and(|d| d.kind.eq_ignore_ascii_case(b"attachment"));
            let wanted = part.media_type.eq_ignore_ascii_case(b"text")
                && (part.media_subtype.eq_ignore_ascii_case(b"plain")
                    || part.media_subtype.eq_ignore_ascii_case(b"html"));
            (wanted && !attachment).then_some(part)
        }
    }
}

fn squeeze(text: &str) -> String {
    let mut out = String::new();
    let mut count = 0usize;
    let mut space = false;
    for ch in text.chars() {
        if ch.is_whitespace() || ch.is_control() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            if count >= PREVIEW_MAX_CHARS.saturating_sub(1) {
                break;
            }
            out.push(' ');
            count = count.saturating_add(1);
        }
        space = false;
        if count >= PREVIEW_MAX_CHARS {
            break;
        }
        out.push(ch);
        count = count.saturating_add(1);
    }
    out
}
