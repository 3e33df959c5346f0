//! Commands added one file per extension, grammar and handler together (SORT, THREAD,
//! COMPRESS, UNAUTHENTICATE, NOTIFY, METADATA, PARTIAL, CATENATE, CONTEXT),
//! and what they share: the header fields they order and group by ([`HeaderData`]),
//! read a batch of messages at a time ([`Session::header_data`]).

pub mod append;
pub mod auth;
pub mod catenate;
pub mod compress;
pub mod context;
pub mod copy;
pub mod expunge;
pub mod fetch;
pub mod mailbox;
pub mod metadata;
pub mod notify;
pub mod partial;
pub mod qresync;
pub mod quota;
pub mod search;
pub mod sort;
pub mod store;
pub mod subject;
pub mod thread;
pub mod unauthenticate;

use std::collections::HashMap;
use std::sync::Arc;

use super::cmd::search::Hit;
use super::response::ImapError;
use super::session::{Session, State};
use crate::mime::{Address, header_fields, unfold};
use crate::store::Want;

/// Messages whose header one store call reads, and the bytes after which it stops.
const HEADER_BATCH: usize = 512;
const HEADER_BYTES: usize = 1 << 20;

/// At most this many messages' [`HeaderData`] are kept per session (about 300 bytes
/// each): a 50,000-message mailbox sorts again without reading a header.
const CACHE_MAX: usize = 200_000;

/// The [`HeaderData`] this session has read, for one mailbox. A message's header never
/// changes, so an entry stays right until the message goes (UIDs are not reused).
#[derive(Debug, Default)]
pub struct HeaderCache {
    mailbox: u64,
    map: HashMap<u32, Arc<HeaderData>>,
}

/// What SORT and THREAD read from one message's header. Strings that are compared are
/// kept upper-cased in ASCII: the `i;ascii-casemap` collation (RFC 4790 §9.2, the
/// default of RFC 5256 §2.2) is then a plain byte comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderData {
    /// The Date header as UTC seconds; `None` when absent or unreadable (RFC 5256 §3:
    /// the INTERNALDATE is used then).
    pub date: Option<i64>,
    /// The base subject (RFC 5256 §2.1) of the decoded Subject, ASCII upper-cased.
    pub subject: String,
    /// Whether extracting the base subject removed a reply/forward marker.
    pub reply: bool,
    /// `addr-mailbox` of the first From / To / Cc address (RFC 5256 §3), raw, ASCII
    /// upper-cased.
    pub from: Vec<u8>,
    pub to: Vec<u8>,
    pub cc: Vec<u8>,
    /// RFC 5957 §3: the decoded display name of the first From / To address, or its
    /// `mailbox@host` when it has none; ASCII upper-cased.
    pub display_from: String,
    pub display_to: String,
    /// The Message-ID (`<...>` included); `None` when absent or not a msg-id.
    pub message_id: Option<Vec<u8>>,
    /// The msg-ids of References, or else the first of In-Reply-To (RFC 5256 §3
    /// REFERENCES, step 1).
    pub references: Vec<Vec<u8>>,
}

/// The `<...>` msg-ids in a header value, in order (RFC 5322 §3.6.4; comments and
/// phrases between them are skipped).
fn msg_ids(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.iter().position(|&b| b == b'<') {
        let Some(after) = rest.get(start..) else {
            break;
        };
        let Some(len) = after.iter().position(|&b| b == b'>') else {
            break;
        };
        let id: Vec<u8> = after
            .get(..=len)
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        // `<>` and ids without `@` are not msg-ids.
        if id.len() > 2 && id.contains(&b'@') {
            out.push(id);
        }
        rest = after.get(len.saturating_add(1)..).unwrap_or_default();
    }
    out
}

/// The first address of a list that is not a group marker (RFC 3501 §7.4.2: group
/// start and end have no host).
fn first_address(list: Option<&Vec<Address>>) -> Option<&Address> {
    list?.iter().find(|a| a.host.is_some())
}

fn display(a: Option<&Address>) -> String {
    let Some(a) = a else {
        return String::new();
    };
    if let Some(name) = &a.name {
        let decoded = crate::mime::header::decoded(name);
        let trimmed = decoded.trim();
        if !trimmed.is_empty() {
            return trimmed.to_string();
        }
    }
    let mut s = String::from_utf8_lossy(a.mailbox.as_deref().unwrap_or_default()).into_owned();
    if let Some(host) = &a.host {
        s.push('@');
        s.push_str(&String::from_utf8_lossy(host));
    }
    s
}

impl HeaderData {
    /// Reads a header block.
    pub fn parse(header: &[u8]) -> HeaderData {
        let env = crate::mime::envelope(header);
        let date = env.date.as_ref().and_then(|d| {
            mail_parser::DateTime::parse_rfc822(&String::from_utf8_lossy(d))
                .filter(|dt| dt.month != 0 && dt.day != 0)
                .map(|dt| dt.to_timestamp())
        });
        let (subject, reply) = match &env.subject {
            Some(s) => subject::base_subject(&crate::mime::header::decoded(s)),
            None => (String::new(), false),
        };
        let subject = subject.to_ascii_uppercase();
        let mailbox = |l: Option<&Vec<Address>>| {
            first_address(l)
                .and_then(|a| a.mailbox.as_deref())
                .unwrap_or_default()
                .to_ascii_uppercase()
        };
        let mut references = Vec::new();
        for f in header_fields(header) {
            if f.name.eq_ignore_ascii_case(b"references") {
                references = msg_ids(&unfold(f.value));
                break;
            }
        }
        if references.is_empty()
            && let Some(first) = env
                .in_reply_to
                .as_deref()
                .and_then(|v| msg_ids(v).into_iter().next())
        {
            references.push(first);
        }
        HeaderData {
            date,
            subject,
            reply,
            from: mailbox(env.from.as_ref()),
            to: mailbox(env.to.as_ref()),
            cc: mailbox(env.cc.as_ref()),
            display_from: display(first_address(env.from.as_ref())).to_ascii_uppercase(),
            display_to: display(first_address(env.to.as_ref())).to_ascii_uppercase(),
            message_id: env
                .message_id
                .as_deref()
                .and_then(|v| msg_ids(v).into_iter().next()),
            references,
        }
    }
}

impl Session {
    /// The [`HeaderData`] of each hit, in the same order: from this session's cache,
    /// or read a batch at a time. A message expunged meanwhile gets empty data (it
    /// still sorts, by its number).
    pub(super) async fn header_data(
        &mut self,
        hits: &[Hit],
    ) -> Result<Vec<Arc<HeaderData>>, ImapError> {
        let store = self.store().clone();
        let State::Selected(_, view) = &self.state else {
            return Err(ImapError::Bad("Select a mailbox first".into()));
        };
        let mailbox = view.mailbox;
        let cache = &mut self.headers;
        if cache.mailbox != mailbox || cache.map.len() > CACHE_MAX {
            cache.mailbox = mailbox;
            cache.map.clear();
        }
        let missing: Vec<u32> = hits
            .iter()
            .map(|h| h.uid)
            .filter(|u| !cache.map.contains_key(u))
            .collect();
        let want = Want {
            meta: false,
            bytes: true,
            skip_trace: true,
            header_only: true,
        };
        let mut done = 0usize;
        while done < missing.len() {
            let uids: Vec<u32> = missing
                .iter()
                .skip(done)
                .take(HEADER_BATCH)
                .copied()
                .collect();
            let got = store
                .load_messages(mailbox, uids, want, HEADER_BYTES)
                .await?;
            done = done.saturating_add(got.len().max(1));
            for (uid, loaded) in got {
                if let Some(raw) = loaded.and_then(|l| l.raw) {
                    cache.map.insert(uid, Arc::new(HeaderData::parse(&raw)));
                }
            }
        }
        let empty = Arc::new(HeaderData::default());
        Ok(hits
            .iter()
            .map(|h| {
                cache
                    .map
                    .get(&h.uid)
                    .cloned()
                    .unwrap_or_else(|| empty.clone())
            })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_data_reads_what_sort_and_thread_need() {
        let h = HeaderData::parse(
            b"From: \"Doe, Jane\" <jane@example.org>\r\n\
              To: undisclosed:;, bob@example.net\r\n\
              Subject: =?UTF-8?Q?Re:_Caf=C3=A9?=\r\n\
              Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\
              Message-ID: <a@x>\r\n\
              In-Reply-To: <p@x> (comment)\r\n\r\n",
        );
        assert_eq!(h.date, Some(1_704_099_600));
        assert_eq!((h.subject.as_str(), h.reply), ("CAFé", true));
        assert_eq!(h.from, b"JANE");
        assert_eq!(h.to, b"BOB");
        assert_eq!(h.display_from, "DOE, JANE");
        assert_eq!(h.display_to, "BOB@EXAMPLE.NET");
        assert_eq!(h.message_id.as_deref(), Some(&b"<a@x>"[..]));
        assert_eq!(h.references, vec![b"<p@x>".to_vec()]);
        let h = HeaderData::parse(b"References: <r1@x> <r2@x>\r\nIn-Reply-To: <p@x>\r\n\r\n");
        assert_eq!(h.references, vec![b"<r1@x>".to_vec(), b"<r2@x>".to_vec()]);
        assert_eq!(h.date, None);
    }
}
