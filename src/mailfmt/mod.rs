//! Conversion between mailbox files and the store's neutral message form.
//!
//! `nestbox import` reads an mbox file ([`mbox`], RFC 4155, mboxo and mboxrd) or a maildir
//! ([`maildir`], <https://cr.yp.to/proto/maildir.html>, Maildir++ folders as Dovecot lays
//! them out) into [`ImportedMessage`] values; `nestbox export` writes store messages back.
//! This module does file-format work only: no store, no config, no logging.
//!
//! Line ends: the store keeps messages with CRLF (RFC 5322 section 2.1). Import turns each
//! bare LF into CRLF and leaves CRLF alone. A bare CR (one not followed by LF) is kept as a
//! data byte: it is not a line end, and we do not invent one. Export turns CRLF into LF and
//! leaves bare CRs alone, so bare CRs survive a round trip.
//!
//! Limits: every reader takes a maximum message size, measured after CRLF normalisation.
//! [`DEFAULT_MAX_MESSAGE_SIZE`] is the suggested default.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::indexing_slicing
    )
)]

pub mod dovecot;
pub mod maildir;
pub mod mbox;
pub mod names;

use serde::{Deserialize, Serialize};

use crate::contracts::SystemFlags;

/// Default cap on one message (after CRLF normalisation): 32 MiB.
///
/// Reason: import holds one message at a time, and in the worst case (a message that is a
/// single enormous line) the mbox reader briefly holds two copies of it; 2 x 32 MiB stays
/// well inside the 100 MB RSS budget for importing a large mbox, and 32 MiB is above the
/// message size limits common mail providers accept (20-50 MB after base64).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 32 * 1024 * 1024;

/// The keyword that stands for the maildir `P` (passed) flag.
pub const FORWARDED_KEYWORD: &str = "$Forwarded";

/// IMAP system flags and keywords of one message (RFC 9051 section 2.3.2).
///
/// `keywords` is kept sorted and free of duplicates; use [`Flags::add_keyword`].
#[derive(Default, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    pub system: SystemFlags,
    pub keywords: Vec<String>,
}

impl Flags {
    /// Adds `keyword` if it is a valid IMAP `flag-keyword` (an atom) and not there yet.
    /// Returns false when the keyword is not valid and was dropped.
    pub fn add_keyword(&mut self, keyword: &str) -> bool {
        if !is_keyword(keyword) {
            return false;
        }
        if let Err(at) = self.keywords.binary_search_by(|k| k.as_str().cmp(keyword)) {
            self.keywords.insert(at, keyword.to_owned());
        }
        true
    }

    /// True when `keyword` is set.
    pub fn has_keyword(&self, keyword: &str) -> bool {
        self.keywords.iter().any(|k| k == keyword)
    }
}

/// One message read from a mailbox file, in the store's neutral form (also what
/// `nestbox import` sends the server in its import batches).
#[derive(Default, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedMessage {
    /// The message with CRLF line ends (bare CRs kept, see the module docs).
    pub raw: Vec<u8>,
    /// Internal date (RFC 9051 section 2.3.3) as unix seconds, when the file gave one.
    pub internal_date: Option<i64>,
    pub flags: Flags,
    /// Envelope sender from the mbox From_ line; maildir has none.
    pub envelope_from: Option<String>,
}

/// True when `s` is an IMAP `flag-keyword`, that is an `atom` (RFC 9051 section 9):
/// one or more CHARs except `( ) { SP CTL % * " \ ]`.
pub fn is_keyword(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            (0x21..0x7f).contains(&b)
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

/// Appends one line (ending in LF, CRLF, or nothing at end of input) to `out` with its
/// line end made CRLF. A CR that is not right before the LF stays a data byte.
pub(crate) fn push_line_crlf(out: &mut Vec<u8>, line: &[u8]) {
    match line.strip_suffix(b"\n") {
        Some(body) => {
            out.extend_from_slice(body.strip_suffix(b"\r").unwrap_or(body));
            out.extend_from_slice(b"\r\n");
        }
        None => out.extend_from_slice(line),
    }
}

/// Splits one line (as produced by `split_inclusive` on LF) into its content and whether
/// it had a line end (LF or CRLF).
pub(crate) fn split_line_end(line: &[u8]) -> (&[u8], bool) {
    if let Some(body) = line.strip_suffix(b"\r\n") {
        (body, true)
    } else if let Some(body) = line.strip_suffix(b"\n") {
        (body, true)
    } else {
        (line, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_atoms() {
        for good in ["$Forwarded", "Junk", "$label1", "a.b-c"] {
            assert!(is_keyword(good), "{good}");
        }
        for bad in ["", "a b", "\\Seen", "x]", "(y", "é", "a*"] {
            assert!(!is_keyword(bad), "{bad}");
        }
        let mut flags = Flags::default();
        assert!(flags.add_keyword("b"));
        assert!(flags.add_keyword("a"));
        assert!(flags.add_keyword("b"));
        assert!(!flags.add_keyword("no good"));
        assert_eq!(flags.keywords, ["a", "b"]);
    }
}
