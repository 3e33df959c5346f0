//! METADATA and METADATA-SERVER (RFC 5464): GETMETADATA and SETMETADATA, grammar and
//! handler.
//!
//! Annotations live in the store per user ([`crate::store::Annotated`]): on the server
//! (mailbox name `""`) and on each of the user's mailboxes, under `/private/...` and
//! `/shared/...`. Mailboxes have a single owner here, so a mailbox's `/shared` entries
//! are that user's too (§3.3: "shared between authorized users"). Server `/shared`
//! entries would be seen by every user, so users cannot set them (§3.3 lets a server
//! restrict that, with a NO); the one there is `/shared/admin`, from
//! `imap.metadata_admin`.
//!
//! Limits (§4.1, §7): `imap.metadata_max_size` per value, `imap.metadata_max_entries`
//! per user, entry names of at most [`ENTRY_MAX`] octets.
//!
//! No unsolicited METADATA responses (§4.4): a session changes only its own user's
//! annotations, and ENABLE METADATA is not accepted (§4.1 allows sending them only
//! after it), so there is never a third-party change to report.

use super::super::grammar::{Parser, R, Syntax};
use super::super::response::{self, Code, ImapError, MetadataCode};
use super::super::session::{Outcome, Session};
use crate::imap::fetch::binary_literal;
use crate::store::{Annotated, Depth, MetadataSet};

/// Longest entry name accepted, in octets (a name is stored with every value).
pub const ENTRY_MAX: usize = 256;

/// A valid entry name (RFC 5464 §3.2), lower-cased: names are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry(String);

impl Entry {
    /// Checks a name from the wire (§3.2): an invalid one is BAD "in any IMAP command in
    /// which [it is] used". Starts with `/private` or `/shared` (§6: every entry has one
    /// of those prefixes), no `//`, no trailing `/`, no `*` or `%`, ASCII without
    /// controls. DEVIATION: §3.2 forbids 0x00-0x19 and only discourages other
    /// controls; 0x1A-0x1F and DEL are refused too (docs/rfc-status.md). `set`: a
    /// name to store has at least 2 components, and 4 under `vendor` (§3.2); GETMETADATA
    /// also takes the bare `/private` and `/shared`, so that `DEPTH infinity` can ask
    /// for everything.
    pub fn parse(raw: &[u8], set: bool) -> R<Entry> {
        let bad = |why: &'static str| Err(Syntax::EntryName(why));
        if raw.len() > ENTRY_MAX {
            return bad("too long");
        }
        if raw
            .iter()
            .any(|&b| !(0x20..0x7f).contains(&b) || b == b'*' || b == b'%')
        {
            return bad("wildcards, controls or 8-bit characters");
        }
        let name = String::from_utf8_lossy(raw).to_ascii_lowercase();
        let Some(path) = name.strip_prefix('/') else {
            return bad("must start with /private or /shared");
        };
        let parts: Vec<&str> = path.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return bad("empty component (// or a trailing /)");
        }
        if !matches!(parts.first(), Some(&("private" | "shared"))) {
            return bad("must start with /private or /shared");
        }
        let least = if parts.get(1) == Some(&"vendor") {
            4
        } else {
            2
        };
        if set && parts.len() < least {
            return bad("too few components");
        }
        Ok(Entry(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a server `/shared` entry name, which users cannot set.
    fn shared(&self) -> bool {
        self.0.starts_with("/shared/")
    }
}

/// A parsed GETMETADATA (RFC 5464 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMetadata {
    /// Raw mailbox name; empty for the server.
    pub mailbox: Vec<u8>,
    /// `MAXSIZE` (§4.2.1).
    pub max_size: Option<u32>,
    /// `DEPTH` (§4.2.2); 0 when absent.
    pub depth: Depth,
    pub entries: Vec<Entry>,
}

/// A parsed SETMETADATA (RFC 5464 §4.3): each entry with its value, `None` for NIL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetMetadata {
    pub mailbox: Vec<u8>,
    pub entries: Vec<(Entry, Option<Vec<u8>>)>,
}

fn entry(p: &mut Parser<'_>, set: bool) -> R<Entry> {
    Entry::parse(&p.astring()?, set)
}

/// `getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries`
/// (RFC 5464 §5), after the command name. `getmetadata-option` is any
/// `tagged-ext-label [SP tagged-ext-val]`; we know `MAXSIZE number` and `DEPTH ("0" /
/// "1" / "infinity")`, anything else is BAD. Besides `entries = entry / "(" entry
/// *(SP entry) ")"`, several bare entries are taken, as the examples of §4.4.1 send.
pub fn parse_get(p: &mut Parser<'_>) -> R<GetMetadata> {
    p.sp()?;
    let mut max_size = None;
    let mut depth = Depth::Zero;
    if p.peek() == Some(b'(') {
        p.list_of(|p| match option(p, &mut max_size, &mut depth)? {
            true => Ok(()),
            false => Err(Syntax::Unknown("GETMETADATA option")),
        })?;
        p.sp()?;
    }
    let mailbox = p.astring()?;
    p.sp()?;
    let entries = if p.peek() == Some(b'(') {
        p.list_of(|p| entry(p, false))?
    } else {
        let mut v = vec![entry(p, false)?];
        while p.eat(b' ') {
            v.push(entry(p, false)?);
        }
        v
    };
    if entries.is_empty() {
        return Err("GETMETADATA needs an entry".into());
    }
    Ok(GetMetadata {
        mailbox,
        max_size,
        depth,
        entries,
    })
}

/// One `getmetadata-option` (RFC 5464 §5) we know: `MAXSIZE number` or `DEPTH ("0" / "1"
/// / "infinity")`; false (nothing consumed) when the next word is neither.
fn option(p: &mut Parser<'_>, max_size: &mut Option<u32>, depth: &mut Depth) -> R<bool> {
    if p.keyword("MAXSIZE") {
        p.sp()?;
        *max_size = Some(p.number()?);
    } else if p.keyword("DEPTH") {
        p.sp()?;
        *depth = if p.keyword("infinity") {
            Depth::Infinity
        } else {
            match p.number()? {
                0 => Depth::Zero,
                1 => Depth::One,
                _ => return Err("DEPTH is 0, 1 or infinity".into()),
            }
        };
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// What LIST's `METADATA` return option asks for (RFC 9590 §3): the entries of each
/// listed mailbox, with GETMETADATA's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    pub entries: Vec<Entry>,
    pub max_size: Option<u32>,
    pub depth: Depth,
}

/// The argument of LIST's `METADATA` return option (RFC 9590 §5), after `METADATA SP`:
/// a parenthesised list of entries, as RFC 9590's examples send (`("/shared/comment"
/// "/private/comment")`), and, since the option carries GETMETADATA's options (§3),
/// `MAXSIZE n` and `DEPTH d` among them or in a list of their own, which clients and
/// servers write both ways.
pub fn parse_list_return(p: &mut Parser<'_>) -> R<MetadataRequest> {
    let mut out = MetadataRequest {
        entries: Vec::new(),
        max_size: None,
        depth: Depth::Zero,
    };
    p.list_of(|p| {
        if p.peek() == Some(b'(') {
            p.list_of(|p| match option(p, &mut out.max_size, &mut out.depth)? {
                true => Ok(()),
                false => Err(Syntax::Unknown("METADATA option")),
            })?;
        } else if !option(p, &mut out.max_size, &mut out.depth)? {
            out.entries.push(entry(p, false)?);
        }
        Ok(())
    })?;
    if out.entries.is_empty() {
        return Err("METADATA needs an entry".into());
    }
    Ok(out)
}

/// `setmetadata = "SETMETADATA" SP mailbox SP entry-values`, `entry-values = "("
/// entry-value *(SP entry-value) ")"`, `entry-value = entry SP value`, `value =
/// nstring / literal8` (RFC 5464 §5), after the command name.
pub fn parse_set(p: &mut Parser<'_>) -> R<SetMetadata> {
    p.sp()?;
    let mailbox = p.astring()?;
    p.sp()?;
    let entries = p.list_of(|p| {
        let e = entry(p, true)?;
        p.sp()?;
        Ok((e, p.nstring8()?))
    })?;
    if entries.is_empty() {
        return Err("SETMETADATA needs an entry".into());
    }
    Ok(SetMetadata { mailbox, entries })
}

/// Appends an entry value (RFC 5464 §5 `value = nstring / literal8`): a literal8 when it
/// holds NUL (binary data, §3.2), else a string.
fn value(out: &mut Vec<u8>, v: Option<&[u8]>, utf8: bool) {
    match v {
        Some(v) if v.contains(&0) => binary_literal(v, out),
        _ => response::nstring(out, v, utf8),
    }
}

impl Session {
    /// What a mailbox argument names (RFC 5464 §4.1): the server for `""`, else a
    /// mailbox that must exist (§3.3: NO otherwise), with its name for the response.
    async fn annotated(&self, raw: &[u8]) -> Result<(Annotated, String), ImapError> {
        if raw.is_empty() {
            return Ok((Annotated::Server, String::new()));
        }
        let info = self.existing(raw).await?;
        Ok((Annotated::Mailbox(info.id.0), info.name))
    }

    /// GETMETADATA (RFC 5464 §4.2): one `* METADATA` response with every requested entry
    /// and, per DEPTH (§4.2.2), those below it. A requested entry for which nothing
    /// was found is listed as NIL (§3.2: "NIL (has no value)"), so the response the
    /// command requires is there. Values longer than MAXSIZE are left out and the largest of
    /// their sizes is reported in `OK [METADATA LONGENTRIES n]` (§4.2.1).
    pub(in super::super) async fn get_metadata(
        &mut self,
        cmd: GetMetadata,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let (target, name) = self.annotated(&cmd.mailbox).await?;
        let want = MetadataRequest {
            entries: cmd.entries,
            max_size: cmd.max_size,
            depth: cmd.depth,
        };
        let longest = self.write_metadata(target, &name, &want, out).await?;
        let mut done = response::Status::ok("GETMETADATA completed");
        if let Some(n) = longest {
            done = done.with(Code::Metadata(MetadataCode::LongEntries(n)));
        }
        Ok(Outcome::Done(done))
    }

    /// Writes the `* METADATA` response of `target` (named `name`) for `want`: every
    /// requested entry and, per DEPTH (§4.2.2), those below it; a requested entry for
    /// which nothing was found is listed as NIL (§3.2: "NIL (has no value)"). Values
    /// longer than MAXSIZE are left out; returns the largest of their sizes (§4.2.1).
    /// GETMETADATA and LIST's METADATA return option (RFC 9590 §3: "the same syntax
    /// and semantics") both answer with it.
    pub(in super::super) async fn write_metadata(
        &self,
        target: Annotated,
        name: &str,
        want: &MetadataRequest,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, ImapError> {
        let (user, _) = self.user()?;
        let wanted = want
            .entries
            .iter()
            .map(|e| (e.as_str().to_string(), want.depth))
            .collect();
        let mut found = self.store().metadata(user, target, wanted).await?;
        if target == Annotated::Server
            && let Some(admin) = &self.ctx.config.imap.metadata_admin
            && want
                .entries
                .iter()
                .any(|e| want.depth.covers(e.as_str(), "/shared/admin"))
        {
            // §3.2.1.1: read-only, from the configuration.
            found.insert("/shared/admin".into(), admin.as_bytes().to_vec());
        }
        let mut entries: std::collections::BTreeMap<String, Option<Vec<u8>>> =
            found.into_iter().map(|(k, v)| (k, Some(v))).collect();
        for e in &want.entries {
            if !entries.keys().any(|k| want.depth.covers(e.as_str(), k)) {
                entries.insert(e.as_str().to_string(), None);
            }
        }
        let mut longest: Option<usize> = None;
        if let Some(max) = want.max_size {
            let max = usize::try_from(max).unwrap_or(usize::MAX);
            entries.retain(|_, v| {
                let len = v.as_ref().map_or(0, Vec::len);
                if len > max {
                    longest = Some(longest.unwrap_or(0).max(len));
                }
                len <= max
            });
        }
        if !entries.is_empty() {
            let utf8 = self.utf8();
            out.extend_from_slice(b"* METADATA ");
            response::mailbox(out, name, utf8);
            let mut sep = b" (".as_slice();
            for (entry, v) in &entries {
                out.extend_from_slice(sep);
                sep = b" ";
                response::astring(out, entry.as_bytes(), false);
                out.push(b' ');
                value(out, v.as_deref(), utf8);
            }
            out.extend_from_slice(b")\r\n");
        }
        Ok(longest)
    }

    /// SETMETADATA (RFC 5464 §4.3): all entries or none. A value over
    /// `imap.metadata_max_size` is `NO [METADATA MAXSIZE n]`; an entry more than
    /// `imap.metadata_max_entries` allow is `NO [METADATA TOOMANY]`; a server `/shared`
    /// entry is `NO [NOPERM]` (§3.3; `/shared/admin` is read-only by §3.2.1.1).
    pub(in super::super) async fn set_metadata(
        &mut self,
        cmd: SetMetadata,
    ) -> Result<Outcome, ImapError> {
        let (user, _) = self.user()?;
        let (target, _) = self.annotated(&cmd.mailbox).await?;
        if target == Annotated::Server && cmd.entries.iter().any(|(e, _)| e.shared()) {
            return Err(ImapError::no(
                Code::NoPerm,
                "Shared server annotations are read-only",
            ));
        }
        let imap = &self.ctx.config.imap;
        let max = imap.metadata_max_size;
        if cmd
            .entries
            .iter()
            .any(|(_, v)| v.as_ref().is_some_and(|v| v.len() > max))
        {
            return Err(ImapError::no(
                Code::Metadata(MetadataCode::MaxSize(max)),
                "Annotation value too large",
            ));
        }
        let entries = cmd.entries.into_iter().map(|(e, v)| (e.0, v)).collect();
        let origin = self
            .account()
            .map(|a| a.origin)
            .unwrap_or(crate::store::Origin::NONE);
        match self
            .store()
            .set_metadata(user, target, entries, imap.metadata_max_entries, origin)
            .await?
        {
            MetadataSet::Done => Ok(Outcome::ok("SETMETADATA completed")),
            MetadataSet::TooMany => Err(ImapError::no(
                Code::Metadata(MetadataCode::TooMany),
                "Too many annotations",
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::super::grammar::{CommandBody, parse_command};
    use super::*;

    fn e(s: &str) -> Entry {
        Entry::parse(s.as_bytes(), true).unwrap()
    }

    #[test]
    fn entry_names() {
        assert_eq!(e("/Private/Comment").as_str(), "/private/comment");
        assert_eq!(e("/shared/vendor/x/y").as_str(), "/shared/vendor/x/y");
        assert!(Entry::parse(b"/private", false).is_ok());
        let refused: &[&[u8]] = &[
            b"/private",
            b"/shared/vendor/x",
            b"private/comment",
            b"/public/comment",
            b"/private//comment",
            b"/private/comment/",
            b"/private/*",
            b"/private/a%",
            b"/private/\xc3\xa9",
            b"/private/a\x19",
            b"",
            b"/",
        ];
        crate::testing::assert_refused(|bad| Entry::parse(bad, true), refused);
        assert!(Entry::parse(&[b'a'; ENTRY_MAX + 1], false).is_err());
    }

    fn body(s: &[u8]) -> CommandBody {
        parse_command(s).unwrap().body
    }

    #[test]
    fn getmetadata_forms() {
        let get = |s: &[u8]| {
            let CommandBody::GetMetadata(g) = body(s) else {
                panic!("{s:?}")
            };
            g
        };
        let g = get(b"a GETMETADATA \"\" /shared/comment\r\n");
        assert_eq!(
            (g.mailbox, g.max_size, g.depth, g.entries),
            (Vec::new(), None, Depth::Zero, vec![e("/shared/comment")])
        );
        let g =
            get(b"a getmetadata (maxsize 1024 DEPTH infinity) INBOX (/private/a /shared/b)\r\n");
        assert_eq!(
            (g.max_size, g.depth, g.entries.len()),
            (Some(1024), Depth::Infinity, 2)
        );
        let g = get(b"a GETMETADATA (DEPTH 1) INBOX /private/a /shared/b\r\n");
        assert_eq!((g.depth, g.entries.len()), (Depth::One, 2));
        let refused: &[&[u8]] = &[
            b"a GETMETADATA INBOX\r\n",
            b"a GETMETADATA INBOX ()\r\n",
            b"a GETMETADATA (DEPTH 2) INBOX /private/a\r\n",
            b"a GETMETADATA (FOO 1) INBOX /private/a\r\n",
            b"a GETMETADATA (MAXSIZE) INBOX /private/a\r\n",
            b"a GETMETADATA INBOX /private/a*\r\n",
        ];
        crate::testing::assert_refused(parse_command, refused);
    }

    #[test]
    fn setmetadata_forms() {
        let CommandBody::SetMetadata(s) = body(b"a SETMETADATA INBOX (/private/comment {4}\r\na\r\nb /shared/comment NIL /shared/x ~{2}\r\n\x00z)\r\n") else {
            panic!()
        };
        assert_eq!(
            s.entries,
            vec![
                (e("/private/comment"), Some(b"a\r\nb".to_vec())),
                (e("/shared/comment"), None),
                (e("/shared/x"), Some(b"\x00z".to_vec())),
            ]
        );
        let refused: &[&[u8]] = &[
            b"a SETMETADATA INBOX ()\r\n",
            b"a SETMETADATA INBOX /private/a \"x\"\r\n",
            b"a SETMETADATA INBOX (/private/a)\r\n",
            b"a SETMETADATA INBOX (/private \"x\")\r\n",
            b"a SETMETADATA INBOX (/private/a {1}\r\n\x00)\r\n",
        ];
        crate::testing::assert_refused(parse_command, refused);
    }

    #[test]
    fn binary_values_go_as_literal8() {
        let mut out = Vec::new();
        value(&mut out, Some(b"a\x00"), false);
        value(&mut out, None, false);
        value(&mut out, Some(b"plain"), false);
        assert_eq!(out, b"~{2}\r\na\x00NIL\"plain\"");
    }
}
