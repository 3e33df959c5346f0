//! Response encoding (RFC 9051 §7) and the one error table of the IMAP server.
//!
//! Three kinds of failure (HOUSE.md): syntax and protocol misuse -> `BAD`; a request the
//! user may not or cannot have -> `NO [CODE]` (RFC 5530); a server fault -> `NO
//! [SERVERBUG]` with a generic text, details only in the log.

use crate::contracts::ModSeq;
use std::fmt;

use crate::store::StoreError;

/// Response codes we send (RFC 9051 §7.1, RFC 5530, RFC 4315, RFC 7162, RFC 7889, RFC 4978).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Alert,
    AlreadyExists,
    AppendUid {
        uidvalidity: u32,
        uids: String,
    },
    AuthenticationFailed,
    AuthorizationFailed,
    /// RFC 4469 §6: a CATENATE URL that cannot be resolved, as the client sent it.
    BadUrl(String),
    Cannot,
    Capability(String),
    ClientBug,
    Closed,
    /// RFC 4978 §3: COMPRESS while compression is already on.
    CompressionActive,
    /// RFC 4315 §3: `COPYUID <uidvalidity> <source set> <destination set>`.
    CopyUid {
        uidvalidity: u32,
        src: String,
        dst: String,
    },
    ExpungeIssued,
    /// RFC 5465 §3.1: NOTIFY asked for an event we cannot send; the ones we can.
    BadEvent(String),
    /// RFC 9051 §7.1: DELETE of a mailbox with children.
    HasChildren,
    /// RFC 7162 §3.1.2.1.
    HighestModSeq(ModSeq),
    Limit,
    NonExistent,
    NoPerm,
    OverQuota,
    PrivacyRequired,
    ReadOnly,
    ReadWrite,
    ServerBug,
    TooBig,
    TryCreate,
    Unavailable,
    // Read side (FETCH, STORE, SEARCH):
    /// RFC 9051 §7.1: the charsets SEARCH accepts.
    BadCharset(String),
    /// RFC 7162 §3.1.3: what failed the UNCHANGEDSINCE test.
    Modified(String),
    /// RFC 3516 §4.3, RFC 9051 §7.1.
    UnknownCte,
    /// RFC 5464 §4.2.1, §4.3.
    Metadata(MetadataCode),
    /// RFC 5267 §4.3.1: `NOUPDATE "tag"`, no updates for that search context.
    NoUpdate(String),
}

/// The `METADATA` response codes (RFC 5464 §5 `resp-text-code`). NOPRIVATE is never
/// needed: private annotations are supported everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataCode {
    /// GETMETADATA: the size of the largest value MAXSIZE left out (§4.2.1).
    LongEntries(usize),
    /// SETMETADATA: the largest value accepted (§4.3).
    MaxSize(usize),
    /// SETMETADATA: no room for another entry (§4.3).
    TooMany,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Alert => write!(f, "ALERT"),
            Code::AlreadyExists => write!(f, "ALREADYEXISTS"),
            Code::AppendUid { uidvalidity, uids } => write!(f, "APPENDUID {uidvalidity} {uids}"),
            Code::AuthenticationFailed => write!(f, "AUTHENTICATIONFAILED"),
            Code::AuthorizationFailed => write!(f, "AUTHORIZATIONFAILED"),
            Code::BadUrl(url) => write!(f, "BADURL {url}"),
            Code::Cannot => write!(f, "CANNOT"),
            Code::Capability(c) => write!(f, "CAPABILITY {c}"),
            Code::ClientBug => write!(f, "CLIENTBUG"),
            Code::Closed => write!(f, "CLOSED"),
            Code::CompressionActive => write!(f, "COMPRESSIONACTIVE"),
            Code::CopyUid {
                uidvalidity,
                src,
                dst,
            } => write!(f, "COPYUID {uidvalidity} {src} {dst}"),
            Code::ExpungeIssued => write!(f, "EXPUNGEISSUED"),
            Code::BadEvent(events) => write!(f, "BADEVENT ({events})"),
            Code::HasChildren => write!(f, "HASCHILDREN"),
            Code::HighestModSeq(n) => write!(f, "HIGHESTMODSEQ {n}"),
            Code::Limit => write!(f, "LIMIT"),
            Code::NonExistent => write!(f, "NONEXISTENT"),
            Code::NoPerm => write!(f, "NOPERM"),
            Code::OverQuota => write!(f, "OVERQUOTA"),
            Code::PrivacyRequired => write!(f, "PRIVACYREQUIRED"),
            Code::ReadOnly => write!(f, "READ-ONLY"),
            Code::ReadWrite => write!(f, "READ-WRITE"),
            Code::ServerBug => write!(f, "SERVERBUG"),
            Code::TooBig => write!(f, "TOOBIG"),
            Code::TryCreate => write!(f, "TRYCREATE"),
            Code::Unavailable => write!(f, "UNAVAILABLE"),
            Code::BadCharset(c) => write!(f, "BADCHARSET ({c})"),
            Code::Modified(set) => write!(f, "MODIFIED {set}"),
            Code::UnknownCte => write!(f, "UNKNOWN-CTE"),
            Code::Metadata(MetadataCode::LongEntries(n)) => write!(f, "METADATA LONGENTRIES {n}"),
            Code::Metadata(MetadataCode::MaxSize(n)) => write!(f, "METADATA MAXSIZE {n}"),
            Code::Metadata(MetadataCode::TooMany) => write!(f, "METADATA TOOMANY"),
            // Tags hold no quoted-specials (RFC 9051 §9 `tag`, `atom-specials`).
            Code::NoUpdate(tag) => write!(f, "NOUPDATE \"{tag}\""),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ok,
    No,
    Bad,
}

/// A command completion (tagged) or an untagged status (`tag: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kind: Kind,
    pub code: Option<Code>,
    pub text: String,
}

impl Status {
    pub fn ok(text: impl Into<String>) -> Status {
        Status {
            kind: Kind::Ok,
            code: None,
            text: text.into(),
        }
    }
    pub fn bad(text: impl Into<String>) -> Status {
        Status {
            kind: Kind::Bad,
            code: None,
            text: text.into(),
        }
    }
    pub fn no(code: Option<Code>, text: impl Into<String>) -> Status {
        Status {
            kind: Kind::No,
            code,
            text: text.into(),
        }
    }
    pub fn with(mut self, code: Code) -> Status {
        self.code = Some(code);
        self
    }

    /// Appends `tag KIND [CODE] text CRLF` (`*` without a tag).
    pub fn encode(&self, tag: Option<&str>, out: &mut Vec<u8>) {
        out.extend_from_slice(tag.unwrap_or("*").as_bytes());
        out.extend_from_slice(match self.kind {
            Kind::Ok => b" OK ",
            Kind::No => b" NO ",
            Kind::Bad => b" BAD ",
        });
        if let Some(c) = &self.code {
            out.extend_from_slice(format!("[{c}] ").as_bytes());
        }
        // Text may not hold CR or LF (RFC 9051 §9 `text`).
        let text: String = self
            .text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        out.extend_from_slice(if text.is_empty() { "done" } else { &text }.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Why a command failed; the one table from failures to what the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImapError {
    /// Syntax or protocol misuse: `BAD`.
    Bad(String),
    /// The user's request cannot be done: `NO [code] text`.
    No(Option<Code>, String),
    /// A server fault: logged with this detail; the client gets a generic `NO`.
    Internal(String),
}

impl ImapError {
    pub fn no(code: Code, text: impl Into<String>) -> ImapError {
        ImapError::No(Some(code), text.into())
    }

    /// The completion the client sees. Internal details go to the log here.
    pub fn status(&self, command: &str) -> Status {
        match self {
            ImapError::Bad(t) => Status::bad(t.clone()),
            ImapError::No(code, t) => Status {
                kind: Kind::No,
                code: code.clone(),
                text: t.clone(),
            },
            ImapError::Internal(detail) => {
                log::error!("imap: {command}: {detail}");
                Status::no(Some(Code::ServerBug), "Internal error, try again later")
            }
        }
    }
}

impl From<StoreError> for ImapError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchMailbox => ImapError::no(Code::NonExistent, "No such mailbox"),
            StoreError::MailboxExists => {
                ImapError::no(Code::AlreadyExists, "Mailbox already exists")
            }
            StoreError::InvalidName(_) => ImapError::no(Code::Cannot, "Invalid mailbox name"),
            // RFC 9051 §6.3.5, §7.1.
            StoreError::HasChildren => {
                ImapError::no(Code::HasChildren, "Mailbox has children; delete them first")
            }
            StoreError::NoSuchUser => ImapError::no(Code::Unavailable, "Account unavailable"),
            StoreError::DiskFull => ImapError::no(Code::OverQuota, "Out of disk space"),
            // Only imports with kept ids get these; IMAP never asks for them.
            e @ (StoreError::UserExists
            | StoreError::MailboxNotEmpty(_)
            | StoreError::UidNotFree(_)
            | StoreError::Locked
            | StoreError::Storage(_)
            | StoreError::Corrupt(_)
            | StoreError::Closed) => ImapError::Internal(e.to_string()),
        }
    }
}

/// Appends `bytes` as an IMAP string: quoted when that is safe, else a literal
/// (RFC 9051 §4.3; PROTOCOL.md 1.1 item 16, quirk Q13: strings holding `{` go as
/// literals). 8-bit text is quoted only when `utf8` (UTF8=ACCEPT, rev2) is on.
pub fn string(out: &mut Vec<u8>, bytes: &[u8], utf8: bool) {
    let quotable = bytes.len() <= 1024
        && bytes
            .iter()
            .all(|b| !matches!(b, 0 | b'\r' | b'\n' | b'{') && (utf8 || b.is_ascii()));
    if quotable {
        quoted(out, bytes);
    } else {
        literal(out, bytes);
    }
}

/// Appends `bytes` as a quoted string, `"` and `\` escaped (RFC 9051 §4.3
/// `quoted-specials`; ManageSieve quotes the same way, RFC 5804 §4). The caller has
/// checked that the bytes may go out quoted.
pub fn quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for b in bytes {
        if matches!(b, b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(*b);
    }
    out.push(b'"');
}

/// Appends `bytes` as an `astring`: bare when every byte is an `ASTRING-CHAR` (as RFC
/// 5464 §4.4 shows entry names), else as [`string`].
pub fn astring(out: &mut Vec<u8>, bytes: &[u8], utf8: bool) {
    if !bytes.is_empty() && bytes.iter().all(|b| super::grammar::is_astring_char(*b)) {
        out.extend_from_slice(bytes);
    } else {
        string(out, bytes, utf8);
    }
}

/// Appends `{n}CRLF` and the bytes.
pub fn literal(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
}

/// `nstring`: `NIL` or a string.
pub fn nstring(out: &mut Vec<u8>, bytes: Option<&[u8]>, utf8: bool) {
    match bytes {
        Some(b) => string(out, b, utf8),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A mailbox name as the client expects it: raw UTF-8 after UTF8=ACCEPT / rev2
/// (RFC 6855 §3), else modified UTF-7 (RFC 3501 §5.1.3).
pub fn mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        string(out, name.as_bytes(), true);
    } else {
        string(out, super::mutf7::encode(name).as_bytes(), false);
    }
}

/// Appends a LIST response up to its CRLF, `* LIST (attributes) "/" mailbox` (RFC 9051
/// §7.3.1); extended data such as CHILDINFO or OLDNAME may follow.
pub fn list(out: &mut Vec<u8>, attributes: &[&str], name: &str, utf8: bool) {
    out.extend_from_slice(b"* LIST (");
    out.extend_from_slice(attributes.join(" ").as_bytes());
    out.extend_from_slice(b") \"/\" ");
    mailbox(out, name, utf8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8], utf8: bool) -> String {
        let mut out = Vec::new();
        string(&mut out, b, utf8);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn strings_are_always_legal() {
        assert_eq!(s(b"a\"b\\", false), "\"a\\\"b\\\\\"");
        assert_eq!(s(b"a\r\nb", false), "{4}\r\na\r\nb");
        assert_eq!(s("é".as_bytes(), false), "{2}\r\né");
        assert_eq!(s("é".as_bytes(), true), "\"é\"");
        assert_eq!(s(b"{5}", true), "{3}\r\n{5}");
        assert_eq!(s(b"", false), "\"\"");
    }

    #[test]
    fn status_lines() {
        let mut out = Vec::new();
        Status::no(Some(Code::TryCreate), "no such\r\nmailbox").encode(Some("a1"), &mut out);
        assert_eq!(out, b"a1 NO [TRYCREATE] no such  mailbox\r\n");
    }
}
