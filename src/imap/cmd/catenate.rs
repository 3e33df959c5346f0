//! CATENATE (RFC 4469): an APPEND whose message is put together from literal text and
//! IMAP URLs (RFC 5092) of messages and parts the user already has; with MULTIAPPEND
//! (RFC 3502) each message may be a literal or a CATENATE.
//!
//! - Grammar: [`cat_parts`], called by the APPEND grammar after the `CATENATE` keyword
//!   (RFC 4469 §5), and [`ImapUrl::parse`] for the URLs.
//! - Handler: [`Session::catenate`] resolves every part before anything is stored (a
//!   URL to the mailbox appended to sees it as it was before the APPEND); the message
//!   then takes the one APPEND path (`imap::append`).
//!
//! URLs are the path form `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`
//! in the user's own mailboxes; the section grammar is FETCH's `BODY[...]` and its
//! content the same function's (`fetch::section_bytes`). DEVIATION: absolute
//! `imap://` URLs and URLAUTH are not supported; they are answered `NO [BADURL]`
//! (RFC 4469 §5 allows refusing a URL the server cannot resolve).

use crate::contracts::Uid;
use std::borrow::Cow;

use super::super::fetch::{self, Partial, Section, SectionText};
use super::super::grammar::{Parser, R};
use super::super::response::{Code, ImapError};
use super::super::session::Session;
use super::fetch::section as section_spec;
use crate::mime::{MessageMeta, PartKind};
use crate::store::{StoreError, Want};

/// `cat-part = text-literal / url` (RFC 4469 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `"TEXT" SP literal`.
    Text(Vec<u8>),
    /// `"URL" SP astring`, as sent.
    Url(Vec<u8>),
}

/// `"(" cat-part *(SP cat-part) ")"` after `CATENATE SP` (RFC 4469 §5).
pub fn cat_parts(p: &mut Parser<'_>) -> R<Vec<CatPart>> {
    p.nonempty_list_of(|p| {
        if p.keyword("TEXT") {
            p.sp()?;
            // `text-literal = "TEXT" SP literal`: no literal8, no NUL.
            Ok(CatPart::Text(p.literal(false)?))
        } else if p.keyword("URL") {
            p.sp()?;
            Ok(CatPart::Url(p.astring()?))
        } else {
            Err("CATENATE expects TEXT or URL parts".into())
        }
    })
}

/// A message (or a part of it) named by an IMAP URL (RFC 5092 §6 `imessagepart`),
/// relative to the server: `/enc-mailbox [uidvalidity] iuid [isection] [ipartial]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// The mailbox name, percent-decoded (UTF-8, RFC 5092 §3.3 via RFC 3986).
    pub mailbox: String,
    pub uidvalidity: Option<u32>,
    pub uid: u32,
    pub section: Option<Section>,
    pub partial: Option<Partial>,
}

/// `%XX` decoding (RFC 3986 §2.1); `None` for a bad escape.
fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = s.iter();
    while let Some(&b) = i.next() {
        if b == b'%' {
            let h = [*i.next()?, *i.next()?];
            let h = std::str::from_utf8(&h).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// `nz-number` (RFC 5092 §11: `digit-nz *DIGIT`), 32-bit.
fn nz_number(s: &[u8]) -> Option<u32> {
    if s.first() == Some(&b'0') {
        return None;
    }
    // Ten digits hold every u32; more overflow it anyway.
    crate::util::decimal(s, 10)
}

/// The value after `;key=` (case-insensitive key) in one `/`-separated segment.
fn param<'a>(segment: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let k = key.as_bytes();
    let head = segment.get(..k.len())?;
    head.eq_ignore_ascii_case(k)
        .then(|| segment.get(k.len()..))
        .flatten()
}

impl ImapUrl {
    /// Parses a URL as sent; `None` when it is not a path-absolute IMAP message URL
    /// we can resolve.
    pub fn parse(url: &[u8]) -> Option<ImapUrl> {
        let path = url.strip_prefix(b"/")?;
        // `enc-mailbox` has no `;` (RFC 5092 `achar`): the mailbox ends at the first
        // `;`, followed by `;UIDVALIDITY=` or (after a `/`) `;UID=`.
        let semi = path.iter().position(|b| *b == b';')?;
        let (mailbox, rest) = path.split_at(semi);
        let mut segments = rest.split(|b| *b == b'/').peekable();
        // `enc-mailbox [uidvalidity] iuid`: `;UIDVALIDITY=n/;UID=n` or `/;UID=n`.
        let (mailbox, uidvalidity) = match mailbox.strip_suffix(b"/") {
            Some(m) => (m, None),
            None => (
                mailbox,
                Some(nz_number(param(segments.next()?, ";UIDVALIDITY=")?)?),
            ),
        };
        if mailbox.is_empty() {
            return None;
        }
        let mailbox = String::from_utf8(percent_decode(mailbox)?).ok()?;
        let uid = nz_number(param(segments.next()?, ";UID=")?)?;
        let mut section = None;
        if let Some(v) = segments.peek().and_then(|s| param(s, ";SECTION=")) {
            // `isection = "/;SECTION=" enc-section`: FETCH's section-spec, encoded.
            let mut spec = b"[".to_vec();
            spec.extend_from_slice(&percent_decode(v)?);
            spec.extend_from_slice(b"]\r\n");
            let mut p = Parser::new(&spec);
            let s = section_spec(&mut p, false).ok()?;
            p.end().ok()?;
            section = Some(s);
            segments.next();
        }
        let mut partial = None;
        if let Some(v) = segments.peek().and_then(|s| param(s, ";PARTIAL=")) {
            // `partial-range = number ["." nz-number]` (RFC 5092 §11).
            let (origin, count) = match v.iter().position(|b| *b == b'.') {
                Some(dot) => (v.get(..dot)?, Some(v.get(dot.saturating_add(1)..)?)),
                None => (v, None),
            };
            let origin: u64 = if origin.iter().all(u8::is_ascii_digit) {
                std::str::from_utf8(origin).ok()?.parse().ok()?
            } else {
                return None;
            };
            let count = match count {
                Some(c) => u64::from(nz_number(c)?),
                None => u64::MAX,
            };
            partial = Some(Partial { origin, count });
            segments.next();
        }
        // Anything else (URLAUTH, EXPIRE, a search) we do not resolve.
        if segments.next().is_some() {
            return None;
        }
        Some(ImapUrl {
            mailbox,
            uidvalidity,
            uid,
            section,
            partial,
        })
    }
}

/// `NO [BADURL url]` (RFC 4469 §5, §6): the URL as sent, without what `url-resp-text`
/// cannot hold (`]`, CR, LF, NUL, 8-bit).
fn bad_url(url: &[u8]) -> ImapError {
    let text: String = url
        .iter()
        .filter(|b| (0x20..0x7f).contains(*b) && **b != b']')
        .map(|b| char::from(*b))
        .collect();
    ImapError::no(Code::BadUrl(text), "Cannot resolve the URL")
}

impl Session {
    /// The message a CATENATE list makes (RFC 4469 §3, §5): the TEXT parts and the
    /// content of each URL ([`Session::url_content`]), in order; over `limit`
    /// (APPENDLIMIT) it is `NO [TOOBIG]`.
    pub(in super::super) async fn catenate(
        &self,
        parts: Vec<CatPart>,
        limit: u64,
    ) -> Result<Vec<u8>, ImapError> {
        let mut out: Vec<u8> = Vec::new();
        for part in parts {
            match part {
                CatPart::Text(t) => out.extend_from_slice(&t),
                CatPart::Url(raw) => out.extend_from_slice(&self.url_content(&raw).await?),
            }
            if out.len() as u64 > limit {
                return Err(ImapError::no(Code::TooBig, "Message too big"));
            }
        }
        Ok(out)
    }

    /// What an IMAP URL names, as `BODY.PEEK[section]<partial>` gives it (RFC 5092 §6,
    /// no `\Seen`). A URL that does not parse, names a mailbox the user does not have,
    /// carries another UIDVALIDITY, or names a message or part that does not exist is
    /// `NO [BADURL url]` (RFC 4469 §5).
    async fn url_content(&self, raw: &[u8]) -> Result<Vec<u8>, ImapError> {
        let (user, _) = self.user()?;
        let store = &self.store();
        let url = ImapUrl::parse(raw).ok_or_else(|| bad_url(raw))?;
        let mailbox = match store.mailbox(user, &nfc(&url.mailbox)).await {
            Ok(Some(m)) => m,
            Ok(None) | Err(StoreError::InvalidName(_)) => return Err(bad_url(raw)),
            Err(e) => return Err(e.into()),
        };
        if url.uidvalidity.is_some_and(|v| v != mailbox.uidvalidity) {
            return Err(bad_url(raw));
        }
        let want = Want {
            meta: url.section.is_some(),
            bytes: true,
            ..Want::default()
        };
        let Some(loaded) = store
            .load_messages(mailbox.id, vec![Uid(url.uid)], want, usize::MAX)
            .await?
            .into_iter()
            .next()
            .and_then(|(_, l)| l)
        else {
            return Err(bad_url(raw));
        };
        let Some(message) = loaded.raw.as_deref() else {
            return Err(bad_url(raw));
        };
        let content = match (&url.section, &loaded.meta) {
            (None, _) => Cow::Borrowed(message),
            (Some(s), Some((structure, prefix))) => {
                let meta =
                    fetch::structure(structure, Some(message), *prefix).ok_or_else(|| {
                        ImapError::Internal(format!(
                            "undecodable structure of {}/{}",
                            mailbox.id, url.uid
                        ))
                    })?;
                if !section_exists(&meta, s) {
                    return Err(bad_url(raw));
                }
                Cow::Owned(fetch::section_bytes(message, *prefix, Some(&meta), s).into_owned())
            }
            (Some(_), None) => {
                return Err(ImapError::Internal("no structure loaded".into()));
            }
        };
        Ok(match url.partial {
            Some(p) => fetch::partial(&content, p).to_vec(),
            None => content.into_owned(),
        })
    }
}

/// Whether `section` names content the message has: FETCH answers a part that does
/// not exist, or HEADER/TEXT of a part that is not a message/rfc822, with nothing
/// (`fetch::section_bytes`), but a URL to it is one the server cannot resolve.
fn section_exists(meta: &MessageMeta, section: &Section) -> bool {
    if section.part.is_empty() {
        return true;
    }
    let Some(part) = meta.body.section(&section.part) else {
        return false;
    };
    match section.text {
        None | Some(SectionText::Mime) => true,
        Some(_) => matches!(part.kind, PartKind::Message { .. }),
    }
}

/// Mailbox names are kept in NFC (RFC 9051 §5.1), as `Session::mailbox_name` makes them.
fn nfc(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfc().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn imap_urls_parse() {
        let u = ImapUrl::parse(b"/INBOX;UIDVALIDITY=385759045/;UID=20/;section=1.MIME").unwrap();
        assert_eq!(u.mailbox, "INBOX");
        assert_eq!((u.uidvalidity, u.uid), (Some(385_759_045), 20));
        assert_eq!(u.section.unwrap().part, vec![1]);
        let u = ImapUrl::parse(
            b"/Caf%C3%A9/Sub/;UID=7/;SECTION=HEADER.FIELDS%20(From%20To)/;PARTIAL=0.100",
        )
        .unwrap();
        assert_eq!(
            (u.mailbox.as_str(), u.uidvalidity, u.uid),
            ("Café/Sub", None, 7)
        );
        assert!(matches!(
            u.section.unwrap().text,
            Some(SectionText::HeaderFields(n)) if n == vec![b"From".to_vec(), b"To".to_vec()]
        ));
        assert_eq!(
            u.partial,
            Some(Partial {
                origin: 0,
                count: 100
            })
        );
        let u = ImapUrl::parse(b"/INBOX/;UID=1/;PARTIAL=5").unwrap();
        assert_eq!(u.partial.unwrap().origin, 5);
    }

    #[test]
    fn imap_urls_must_fail() {
        let refused: &[&[u8]] = &[
            b"",
            b"INBOX/;UID=1",
            b"imap://alice@host/INBOX/;UID=1",
            b"/INBOX",
            b"/INBOX/;UID=0",
            b"/INBOX/;UID=x",
            b"/INBOX;UID=1",
            b"/INBOX;UIDVALIDITY=0/;UID=1",
            b"/INBOX/;UIDVALIDITY=5/;UID=1",
            b"/;UID=1",
            b"/INBOX/;UID=1/;SECTION=0",
            b"/INBOX/;UID=1/;SECTION=MIME",
            b"/INBOX/;UID=1/;SECTION=BOGUS",
            b"/INBOX/;UID=1/;PARTIAL=1.0",
            b"/INBOX/;UID=1/;URLAUTH=anonymous",
            b"/INBOX/;UID=1/;PARTIAL=0.5/;SECTION=1",
            b"/IN%ZZBOX/;UID=1",
            b"/%FF/;UID=1",
        ];
        crate::testing::assert_refused(ImapUrl::parse, refused);
    }

    #[test]
    fn cat_parts_parse() {
        let buf = b"(URL \"/INBOX/;UID=1\" TEXT {2}\r\nhi url /Drafts/;UID=2)\r\n";
        let mut p = Parser::new(buf);
        assert_eq!(
            cat_parts(&mut p).unwrap(),
            vec![
                CatPart::Url(b"/INBOX/;UID=1".to_vec()),
                CatPart::Text(b"hi".to_vec()),
                CatPart::Url(b"/Drafts/;UID=2".to_vec()),
            ]
        );
        let refused: &[&[u8]] = &[
            b"()\r\n",
            b"(TEXT \"x\")\r\n",
            b"(TEXT ~{1}\r\nx)\r\n",
            b"(BODY x)\r\n",
            b"TEXT {1}\r\nx\r\n",
        ];
        crate::testing::assert_refused(|bad| cat_parts(&mut Parser::new(bad)), refused);
    }

    #[test]
    fn bad_url_codes_hold_no_bracket() {
        let ImapError::No(Some(Code::BadUrl(u)), _) = bad_url(b"/a]b\r\n\xff") else {
            panic!()
        };
        assert_eq!(u, "/ab");
    }
}
