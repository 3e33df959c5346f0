//! ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 §7.4.2 and §9; RFC 9051 §7.5.2 and §9).
//!
//! The output follows the ABNF exactly, whatever the message looks like (PROTOCOL
//! items 82-85, quirk Q8): the MIME layer already guarantees a non-empty multipart, a
//! default type and a default encoding; here lists that the grammar requires to be
//! non-empty (`body-fld-param`, address lists, languages) become `NIL` when empty.

use super::strings::{Options, nstring, raw, string};
use crate::mime::{Address, BodyPart, Disposition, Envelope, Param, PartKind};

/// Writes `envelope` (RFC 3501 §9): the ten fields in wire order. Sender and Reply-To
/// default to From when absent or empty (RFC 3501 §7.4.2); encoded-words stay encoded.
pub fn envelope(env: &Envelope, opts: Options, out: &mut Vec<u8>) {
    let from = env.from.as_deref().filter(|l| !l.is_empty());
    fn or_from<'e>(
        list: Option<&'e [Address]>,
        from: Option<&'e [Address]>,
    ) -> Option<&'e [Address]> {
        list.filter(|l| !l.is_empty()).or(from)
    }
    out.push(b'(');
    nstring(env.date.as_deref(), opts, out);
    out.push(b' ');
    nstring(env.subject.as_deref(), opts, out);
    for list in [
        from,
        or_from(env.sender.as_deref(), from),
        or_from(env.reply_to.as_deref(), from),
        env.to.as_deref(),
        env.cc.as_deref(),
        env.bcc.as_deref(),
    ] {
        out.push(b' ');
        addresses(list, opts, out);
    }
    out.push(b' ');
    nstring(env.in_reply_to.as_deref(), opts, out);
    out.push(b' ');
    nstring(env.message_id.as_deref(), opts, out);
    out.push(b')');
}

/// `"(" 1*address ")" / nil`: an empty list is NIL, since the grammar needs one address.
fn addresses(list: Option<&[Address]>, opts: Options, out: &mut Vec<u8>) {
    match list {
        Some(list) if !list.is_empty() => {
            out.push(b'(');
            for a in list {
                out.push(b'(');
                nstring(a.name.as_deref(), opts, out);
                out.push(b' ');
                nstring(a.adl.as_deref(), opts, out);
                out.push(b' ');
                nstring(a.mailbox.as_deref(), opts, out);
                out.push(b' ');
                nstring(a.host.as_deref(), opts, out);
                out.push(b')');
            }
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
}

/// Writes `body` (RFC 3501 §9): the BODYSTRUCTURE of `part` with extension data when
/// `extended`, else the FETCH BODY form without it (RFC 3501 §7.4.2).
pub fn body_structure(part: &BodyPart, extended: bool, opts: Options, out: &mut Vec<u8>) {
    out.push(b'(');
    match &part.kind {
        PartKind::Multipart { children, .. } => {
            // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
            for child in children {
                body_structure(child, extended, opts, out);
            }
            out.push(b' ');
            string(&part.media_subtype, opts, out);
            if extended {
                out.push(b' ');
                params(&part.params, opts, out);
                ext_common(part, opts, out);
            }
        }
        PartKind::Message {
            envelope: env,
            body,
        } if opts.rev2 || part.media_subtype.eq_ignore_ascii_case(b"rfc822") => {
            // body-type-msg = media-message SP body-fields SP envelope SP body SP
            //                 body-fld-lines
            media_and_fields(part, opts, out);
            out.push(b' ');
            envelope(env, opts, out);
            out.push(b' ');
            body_structure(body, extended, opts, out);
            out.push(b' ');
            lines(part, out);
            ext_1part(part, extended, opts, out);
        }
        _ => {
            media_and_fields(part, opts, out);
            if part.media_type.eq_ignore_ascii_case(b"text") {
                // body-type-text = media-text SP body-fields SP body-fld-lines
                out.push(b' ');
                lines(part, out);
            }
            ext_1part(part, extended, opts, out);
        }
    }
    out.push(b')');
}

/// `media-* SP body-fields`: type, subtype, params, id, description, encoding, octets.
fn media_and_fields(part: &BodyPart, opts: Options, out: &mut Vec<u8>) {
    string(&part.media_type, opts, out);
    out.push(b' ');
    string(&part.media_subtype, opts, out);
    out.push(b' ');
    params(&part.params, opts, out);
    out.push(b' ');
    nstring(part.id.as_deref(), opts, out);
    out.push(b' ');
    nstring(part.description.as_deref(), opts, out);
    out.push(b' ');
    string(&part.encoding, opts, out);
    out.push(b' ');
    raw(part.body_size().to_string().as_bytes(), out);
}

fn lines(part: &BodyPart, out: &mut Vec<u8>) {
    raw(part.lines.unwrap_or(0).to_string().as_bytes(), out);
}

/// `body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]`
fn ext_1part(part: &BodyPart, extended: bool, opts: Options, out: &mut Vec<u8>) {
    if extended {
        out.push(b' ');
        nstring(part.md5.as_deref(), opts, out);
        ext_common(part, opts, out);
    }
}

/// `SP body-fld-dsp SP body-fld-lang SP body-fld-loc`, always all three.
fn ext_common(part: &BodyPart, opts: Options, out: &mut Vec<u8>) {
    out.push(b' ');
    disposition(part.disposition.as_ref(), opts, out);
    out.push(b' ');
    if part.language.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, tag) in part.language.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            string(tag, opts, out);
        }
        out.push(b')');
    }
    out.push(b' ');
    nstring(part.location.as_deref(), opts, out);
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`
fn disposition(d: Option<&Disposition>, opts: Options, out: &mut Vec<u8>) {
    match d {
        Some(d) => {
            out.push(b'(');
            string(&d.kind, opts, out);
            out.push(b' ');
            params(&d.params, opts, out);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`
fn params(list: &[Param], opts: Options, out: &mut Vec<u8>) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, p) in list.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(&p.name, opts, out);
        out.push(b' ');
        string(&p.value, opts, out);
    }
    out.push(b')');
}
