//! Commands added one file per extension, grammar and handler together (SORT, THREAD,
//! COMPRESS, UNAUTHENTICATE, NOTIFY, METADATA, PARTIAL, CATENATE, CONTEXT),
//! and what they share: the header fields they order and group by ([`HeaderData`]),
//! from the index's records or read a batch of messages at a time
//! ([`Session::header_data`]).

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
pub mod thread;
pub mod unauthenticate;

use crate::contracts::{MailboxId, Uid};
use std::collections::HashMap;
use std::sync::Arc;

use super::cmd::search::Hit;
use super::response::ImapError;
use super::session::Session;
pub use crate::mime::summary::HeaderData;
use crate::store::{Loaded, Store, Want};

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
    mailbox: MailboxId,
    map: HashMap<Uid, Arc<HeaderData>>,
}

/// What a command reads from the headers: the keys SORT and THREAD=ORDEREDSUBJECT
/// order by, or also the ids THREAD=REFERENCES links by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderNeed {
    SortKeys,
    ThreadIds,
}

impl HeaderNeed {
    /// Whether `data` has what is needed.
    fn met_by(self, data: &HeaderData) -> bool {
        self == HeaderNeed::SortKeys || data.ids.is_some()
    }
}

impl Session {
    /// The [`HeaderData`] of each hit, in the same order: from this session's cache,
    /// or read a batch at a time. A message expunged meanwhile gets empty data (it
    /// still sorts, by its number).
    pub(super) async fn header_data(
        &mut self,
        hits: &[Hit],
        need: HeaderNeed,
    ) -> Result<Vec<Arc<HeaderData>>, ImapError> {
        let store = self.store().clone();
        let (_, view) = self.state.selected()?;
        let mailbox = view.mailbox;
        let cache = &mut self.headers;
        if cache.mailbox != mailbox || cache.map.len() > CACHE_MAX {
            cache.mailbox = mailbox;
            cache.map.clear();
        }
        let mut missing: Vec<Uid> = hits
            .iter()
            .map(|h| h.uid)
            .filter(|u| !cache.map.get(u).is_some_and(|d| need.met_by(d)))
            .collect();
        // The index keeps a record of every message it has read; only those it has
        // not read yet are read here.
        if !missing.is_empty() {
            for (uid, record) in store.header_records(mailbox, missing.clone()).await? {
                cache.map.insert(uid, record);
            }
            missing.retain(|u| !cache.map.get(u).is_some_and(|d| need.met_by(d)));
        }
        let want = Want {
            meta: false,
            bytes: true,
            skip_trace: true,
            header_only: true,
        };
        let batches = (HEADER_BATCH, HEADER_BYTES);
        load_in_batches(
            &store,
            mailbox,
            &missing,
            want,
            batches,
            |_, uid, loaded| {
                if let Some(raw) = loaded.and_then(|l| l.raw) {
                    cache.map.insert(uid, Arc::new(HeaderData::parse(&raw)));
                }
                Ok(())
            },
        )
        .await?;
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

/// Reads the messages `uids` of `mailbox` a batch at a time, each store call reading at
/// most `batch` messages and stopping after about `bytes` (see
/// [`Store::load_messages`]), and hands each to `each` with its index in `uids`.
pub(super) async fn load_in_batches(
    store: &Store,
    mailbox: MailboxId,
    uids: &[Uid],
    want: Want,
    (batch, bytes): (usize, usize),
    mut each: impl FnMut(usize, Uid, Option<Loaded>) -> Result<(), ImapError>,
) -> Result<(), ImapError> {
    let mut next = 0usize;
    while next < uids.len() {
        let chunk: Vec<Uid> = uids.iter().skip(next).take(batch).copied().collect();
        let got = store.load_messages(mailbox, chunk, want, bytes).await?;
        // At least one is read, so a store answering with nothing still ends the loop.
        let read = got.len().max(1);
        for (i, (uid, loaded)) in (next..).zip(got) {
            each(i, uid, loaded)?;
        }
        next = next.saturating_add(read);
    }
    Ok(())
}
