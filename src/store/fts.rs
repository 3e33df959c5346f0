//! The full-text index: for each mailbox, the words of its messages (`mime::text`) and
//! the UIDs they occur in, so SEARCH answers from the index instead of decompressing
//! every message (docs/decisions.md, "Full-text index").
//!
//! - **Segments.** The words of a batch of messages make a segment: per [`TextKind`],
//!   the sorted words, each after a 0 byte in one buffer (a search string is looked for
//!   *inside* words with one `memmem` pass: IMAP SEARCH is a substring match), and per
//!   word its UIDs, delta-coded. A segment is immutable and stored zstd-compressed in
//!   the redb file (`FTS_SEGMENTS`, in chunks of one page: a value of many pages is
//!   given a block of a power of two pages, which compaction cannot pack), under a key
//!   that is never reused, so a decoded copy kept in memory stays right. Segments of one mailbox hold increasing, disjoint
//!   UID ranges; four of a size are merged into one (a message is rewritten about
//!   log4(n) times), dropping the UIDs expunged meanwhile.
//! - **Records.** A segment also keeps, per message, what SORT and THREAD read from
//!   its header ([`HeaderData`]: sent date, base subject, first From/To/Cc mailbox,
//!   display names; Message-ID and References with the full index), stored column by
//!   column so like values
//!   compress together: a session sorts a mailbox the index has read without reading
//!   its messages ([`Store::header_records`]), and sessions share the decoded records.
//!   An index written before the records (its [`Layout`]) is built again.
//! - **Progress.** Per mailbox, `FTS_MAILBOXES` records the highest UID indexed and
//!   the list of segments, written in the same transaction as the segments: after a
//!   crash the index is what the last commit left, consistent with itself, and the
//!   messages above that UID are read again. UIDs only grow, so everything at or below
//!   it is indexed; a search treats the messages above it (new mail not yet indexed) as
//!   unknown and reads them.
//! - **Expunge** needs nothing: a search only ever asks about the messages the
//!   mailbox still has; the stale UIDs go at the next merge. A deleted mailbox's index
//!   goes at the indexer's next pass.
//! - **What it holds** follows `store.full_text_index`: with `Headers` (the default)
//!   only the words of From, To, Cc, Bcc and Subject, with `Full` also the whole
//!   header's and the body's. The mailbox's record says which; an index built for the
//!   other setting is built again.
//! - **The indexer** is one background thread ([`Store::start_indexer`]) woken by every
//!   commit; it waits for a quiet moment so deliveries are not slowed, reads new mail a
//!   batch at a time, and commits each batch and merge durably (a crash loses only the
//!   work not committed, done again).

use crate::contracts::{MailboxId, Uid};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::messages::{Loaded, Want, load_in};
use super::schema::{FTS_MAILBOXES, FTS_SEGMENTS, MAILBOXES, MESSAGES, META};
use super::{Shared, Store, StoreError};
use crate::config::FullTextIndex;
use crate::mime::summary::{HeaderData, ThreadIds};
use crate::mime::text::{self, KINDS, TextKind};

/// Messages read per indexing batch, and the raw bytes after which a batch stops.
const BATCH_MESSAGES: usize = 1000;
const BATCH_BYTES: usize = 16 << 20;
/// Segments of one size class merged together...
const MERGE_FAN: usize = 4;
/// ...unless the result would hold more messages than this: a merge holds its inputs
/// and its output in memory, and a stored segment is one redb value. A mailbox of
/// 50,000 messages keeps four or five segments.
const MERGE_MAX_DOCS: u32 = 16_384;
/// The indexer waits this long without a commit before it reads new mail...
const QUIET_MS: u64 = 300;
/// ...but no longer than this.
const QUIET_MAX: Duration = Duration::from_secs(3);
/// Indexed messages beyond those a mailbox has, below which its segments are not
/// looked at for pruning ([`prune_once`]).
const PRUNE_SLACK: u64 = 64;
/// Decoded segments kept in memory at most (bytes); the memory timer drops those unused.
const CACHE_MAX: usize = 64 << 20;
/// How long a pass that wrote waits for idle clients to compact the file.
const COMPACT_WAIT: Duration = Duration::from_secs(3);
/// zstd level of a stored segment.
const LEVEL: i32 = 3;
/// Free space below which the indexer writes nothing (bytes, and share of the disk).
const ROOM_MIN: u64 = 64 << 20;
const ROOM_SHARE: f64 = 0.02;

/// One mailbox's index: the highest UID read, and its segments in UID order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct MailboxIndex {
    pub done: u32,
    pub segments: Vec<SegmentRef>,
    /// What its segments hold.
    pub layout: Layout,
}

/// What a mailbox's segments hold. Stored as postcard's varint of the variant: the
/// first two are the `false` and `true` of the `full` flag that an index written
/// before the records had in this place, so such an index reads as one of them, and
/// is built again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Layout {
    /// The fields' words, no records (an index from before the records).
    #[default]
    FieldsBeforeRecords,
    /// Every word, no records (an index from before the records).
    FullBeforeRecords,
    /// The fields' words and every message's [`HeaderData`] record.
    Fields,
    /// Every word and the records.
    Full,
}

impl Layout {
    /// The layout an index built now has.
    fn current(full: bool) -> Layout {
        if full { Layout::Full } else { Layout::Fields }
    }

    /// Whether it holds every word, not only the fields'.
    fn full(self) -> bool {
        matches!(self, Layout::FullBeforeRecords | Layout::Full)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct SegmentRef {
    /// Its key in `FTS_SEGMENTS` after the mailbox: first UID << 32 | generation.
    pub key: u64,
    /// Messages in it, and its stored size.
    pub docs: u32,
    pub bytes: u32,
}

/// The words of one kind in a segment.
#[derive(Debug, Clone, Default, PartialEq)]
struct Dict {
    /// The words in byte order, each after a 0 byte.
    words: Vec<u8>,
    /// Where each word starts in `words`.
    starts: Vec<u32>,
    /// Per word: its number of UIDs, then the UIDs as deltas, all varints.
    postings: Vec<u8>,
    post_starts: Vec<u32>,
}

/// The words of a batch of messages ([`TextKind`] order), and what SORT and THREAD
/// read from each one's header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Segment {
    docs: u32,
    dicts: Vec<Dict>,
    /// Per message, in UID order: its [`HeaderData`].
    records: Records,
}

/// A segment's records, in UID order: as stored (decoded only when first asked for:
/// a search needs the words alone), or as built.
#[derive(Debug, Clone, Default)]
struct Records {
    /// [`RecordColumns`] in postcard; empty when built here, or stored before records.
    stored: Vec<u8>,
    decoded: std::sync::OnceLock<Vec<(u32, Arc<HeaderData>)>>,
}

impl Records {
    fn built(list: Vec<(u32, Arc<HeaderData>)>) -> Records {
        Records {
            stored: Vec::new(),
            decoded: std::sync::OnceLock::from(list),
        }
    }

    fn get(&self) -> Result<&[(u32, Arc<HeaderData>)], StoreError> {
        if let Some(list) = self.decoded.get() {
            return Ok(list);
        }
        let list = if self.stored.is_empty() {
            Vec::new()
        } else {
            super::schema::decode::<RecordColumns>(&self.stored)?.records()?
        };
        Ok(self.decoded.get_or_init(|| list))
    }

    /// The stored form.
    fn encoded(&self) -> Result<Vec<u8>, StoreError> {
        if !self.stored.is_empty() {
            return Ok(self.stored.clone());
        }
        super::schema::encode(&RecordColumns::of(self.get()?))
    }

    /// About the memory they take.
    fn bytes(&self) -> usize {
        let decoded: usize = self
            .decoded
            .get()
            .map_or(0, |l| l.iter().map(|(_, h)| record_bytes(h)).sum());
        self.stored.len() + decoded
    }
}

/// Two segments' records are alike when they decode alike.
impl PartialEq for Records {
    fn eq(&self, other: &Records) -> bool {
        self.get().ok() == other.get().ok()
    }
}

/// The first u32 of a stored segment with records; a segment stored before them starts
/// with its message count, never this high.
const RECORDS_MAGIC: u32 = 0xFFFF_FF02;

/// The stored form of a segment's records: one column per field, so that like values
/// stand together for zstd; UIDs and dates as differences from the previous one.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RecordColumns {
    uids: Vec<u32>,
    dates: Vec<Option<i64>>,
    reply: Vec<bool>,
    subject: Vec<String>,
    from: Vec<Vec<u8>>,
    to: Vec<Vec<u8>>,
    cc: Vec<Vec<u8>>,
    display_from: Vec<String>,
    display_to: Vec<String>,
    ids: Vec<Option<ThreadIds>>,
}

impl RecordColumns {
    fn of(records: &[(u32, Arc<HeaderData>)]) -> RecordColumns {
        let mut c = RecordColumns::default();
        let (mut last_uid, mut last_date) = (0u32, 0i64);
        for (uid, h) in records {
            c.uids.push(uid.wrapping_sub(last_uid));
            last_uid = *uid;
            c.dates.push(h.date.map(|d| {
                let delta = d.wrapping_sub(last_date);
                last_date = d;
                delta
            }));
            c.reply.push(h.reply);
            c.subject.push(h.subject.clone());
            c.from.push(h.from.clone());
            c.to.push(h.to.clone());
            c.cc.push(h.cc.clone());
            c.display_from.push(h.display_from.clone());
            c.display_to.push(h.display_to.clone());
            c.ids.push(h.ids.clone());
        }
        c
    }

    fn records(self) -> Result<Vec<(u32, Arc<HeaderData>)>, StoreError> {
        let short = || StoreError::Corrupt("index segment: a record column is short".into());
        let (mut uid, mut date) = (0u32, 0i64);
        let mut dates = self.dates.into_iter();
        let mut reply = self.reply.into_iter();
        let mut subject = self.subject.into_iter();
        let mut from = self.from.into_iter();
        let mut to = self.to.into_iter();
        let mut cc = self.cc.into_iter();
        let mut display_from = self.display_from.into_iter();
        let mut display_to = self.display_to.into_iter();
        let mut ids = self.ids.into_iter();
        let mut out = Vec::with_capacity(self.uids.len());
        for delta in self.uids {
            uid = uid.wrapping_add(delta);
            let h = HeaderData {
                date: dates.next().ok_or_else(short)?.map(|d| {
                    date = date.wrapping_add(d);
                    date
                }),
                reply: reply.next().ok_or_else(short)?,
                subject: subject.next().ok_or_else(short)?,
                from: from.next().ok_or_else(short)?,
                to: to.next().ok_or_else(short)?,
                cc: cc.next().ok_or_else(short)?,
                display_from: display_from.next().ok_or_else(short)?,
                display_to: display_to.next().ok_or_else(short)?,
                ids: ids.next().ok_or_else(short)?,
            };
            out.push((uid, Arc::new(h)));
        }
        Ok(out)
    }
}

/// About the memory a record takes.
fn record_bytes(h: &HeaderData) -> usize {
    let strings = h.subject.len()
        + h.from.len()
        + h.to.len()
        + h.cc.len()
        + h.display_from.len()
        + h.display_to.len()
        + h.ids.as_ref().map_or(0, |i| {
            i.message_id.as_ref().map_or(0, Vec::len)
                + i.references.iter().map(|r| r.len() + 24).sum::<usize>()
        });
    strings + 240
}

fn put_varint(mut v: u32, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8], at: &mut usize) -> Option<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        let b = *buf.get(*at)?;
        *at = at.saturating_add(1);
        v |= u32::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

impl Dict {
    fn push(&mut self, word: &[u8], uids: &[u32]) {
        self.words.push(0);
        self.starts.push(self.words.len() as u32);
        self.words.extend_from_slice(word);
        self.post_starts.push(self.postings.len() as u32);
        put_varint(uids.len() as u32, &mut self.postings);
        let mut last = 0u32;
        for &u in uids {
            put_varint(u.wrapping_sub(last), &mut self.postings);
            last = u;
        }
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    fn word(&self, i: usize) -> &[u8] {
        let start = self.starts.get(i).map_or(0, |&s| s as usize);
        let end = self
            .starts
            .get(i.saturating_add(1))
            .map_or(self.words.len(), |&s| (s as usize).saturating_sub(1));
        self.words.get(start..end).unwrap_or_default()
    }

    fn uids(&self, i: usize, out: &mut Vec<u32>) {
        let mut at = self.post_starts.get(i).map_or(usize::MAX, |&s| s as usize);
        let Some(n) = get_varint(&self.postings, &mut at) else {
            return;
        };
        let mut last = 0u32;
        for _ in 0..n {
            let Some(d) = get_varint(&self.postings, &mut at) else {
                return;
            };
            last = last.wrapping_add(d);
            out.push(last);
        }
    }

    /// Appends the UIDs of every word that contains `run`.
    fn find(&self, run: &[u8], out: &mut Vec<u32>) {
        let mut last_word = usize::MAX;
        for at in memchr::memmem::find_iter(&self.words, run) {
            // `run` holds no 0 byte, so the match lies inside one word.
            let i = self
                .starts
                .partition_point(|&s| (s as usize) <= at)
                .saturating_sub(1);
            if i != last_word {
                self.uids(i, out);
                last_word = i;
            }
        }
    }

    fn bytes(&self) -> usize {
        self.words.len() + self.postings.len() + 4 * (self.starts.len() + self.post_starts.len())
    }
}

/// Collects the words of messages, in UID order, into a [`Segment`].
#[derive(Default)]
pub struct Builder {
    docs: u32,
    words: Vec<HashMap<String, Vec<u32>>>,
    records: Vec<(u32, Arc<HeaderData>)>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            docs: 0,
            words: (0..KINDS).map(|_| HashMap::new()).collect(),
            records: Vec::new(),
        }
    }

    /// Adds one message, UIDs growing from call to call: its header block (the delivery
    /// prefix included), and for a full index the whole message (`raw`, the prefix's
    /// length, the structure of the blob after it).
    pub fn add(
        &mut self,
        uid: u32,
        header: &[u8],
        body: Option<(&[u8], usize, &crate::mime::MessageMeta)>,
    ) {
        self.docs = self.docs.saturating_add(1);
        // The record is read from the message's own header, as a session reads it. The
        // ids THREAD=REFERENCES needs are kept with the full index only: unique strings
        // that do not compress, 0.5% of the raw mail, which the store's 0.30x promise
        // has no room for.
        let own = body.map_or(header, |(_, prefix, _)| {
            header.get(prefix..).unwrap_or(header)
        });
        let mut record = HeaderData::parse(own);
        if body.is_none() {
            record.ids = None;
        }
        self.records.push((uid, Arc::new(record)));
        // This message's words by kind, first: the header's words that a field of its
        // own holds too are kept only there (a search of the whole header asks every
        // field kind as well: `text::HEADER_KINDS`).
        let mut mine: Vec<std::collections::HashSet<String>> = (0..KINDS)
            .map(|_| std::collections::HashSet::new())
            .collect();
        text::message_terms(header, body, &mut |kind, word| {
            if let Some(set) = mine.get_mut(kind.index())
                && !set.contains(word)
            {
                set.insert(word.to_string());
            }
        });
        let fields = mine
            .get(TextKind::From.index()..=TextKind::Subject.index())
            .unwrap_or_default();
        let in_field = |w: &String| fields.iter().any(|f| f.contains(w));
        for (k, set) in mine.iter().enumerate() {
            let Some(map) = self.words.get_mut(k) else {
                continue;
            };
            for w in set {
                if k == TextKind::Header.index() && in_field(w) {
                    continue;
                }
                match map.get_mut(w.as_str()) {
                    Some(uids) => uids.push(uid),
                    None => {
                        map.insert(w.clone(), vec![uid]);
                    }
                }
            }
        }
    }

    pub fn finish(self) -> Segment {
        let dicts = self
            .words
            .into_iter()
            .map(|map| {
                let mut words: Vec<(String, Vec<u32>)> = map.into_iter().collect();
                words.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                let mut d = Dict::default();
                for (w, uids) in &words {
                    d.push(w.as_bytes(), uids);
                }
                d
            })
            .collect();
        Segment {
            docs: self.docs,
            dicts,
            records: Records::built(self.records),
        }
    }
}

impl Segment {
    /// The UIDs of messages with a word of one of `kinds` that contains `run`,
    /// appended to `out` (unsorted, maybe repeated).
    fn find(&self, kinds: &[TextKind], run: &[u8], out: &mut Vec<u32>) {
        for k in kinds {
            if let Some(d) = self.dicts.get(k.index()) {
                d.find(run, out);
            }
        }
    }

    fn bytes(&self) -> usize {
        self.dicts.iter().map(Dict::bytes).sum::<usize>() + self.records.bytes()
    }

    /// The records of `uids` (sorted) that this segment holds, appended to `out`.
    fn records_of(
        &self,
        uids: &[Uid],
        out: &mut Vec<(Uid, Arc<HeaderData>)>,
    ) -> Result<(), StoreError> {
        let records = self.records.get()?;
        let (mut i, mut j) = (0, 0);
        while let (Some(&want), Some((have, h))) = (uids.get(i), records.get(j)) {
            match want.0.cmp(have) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    out.push((want, h.clone()));
                    i += 1;
                    j += 1;
                }
            }
        }
        Ok(())
    }

    /// Merges segments of increasing, disjoint UID ranges (in that order), keeping the
    /// UIDs `live` accepts.
    fn merge(parts: &[Arc<Segment>], live: &dyn Fn(u32) -> bool) -> Result<Segment, StoreError> {
        let mut dicts = Vec::with_capacity(KINDS);
        let mut docs = std::collections::BTreeSet::new();
        let mut uids = Vec::new();
        for k in 0..KINDS {
            let inputs: Vec<&Dict> = parts.iter().filter_map(|s| s.dicts.get(k)).collect();
            let mut at = vec![0usize; inputs.len()];
            let mut out = Dict::default();
            // The smallest word among the inputs' next ones, in turn.
            while let Some(word) = inputs
                .iter()
                .zip(&at)
                .filter(|(d, i)| **i < d.len())
                .map(|(d, i)| d.word(*i))
                .min()
                .map(<[u8]>::to_vec)
            {
                uids.clear();
                for (d, i) in inputs.iter().zip(at.iter_mut()) {
                    if *i < d.len() && d.word(*i) == word.as_slice() {
                        d.uids(*i, &mut uids);
                        *i = i.saturating_add(1);
                    }
                }
                uids.retain(|&u| live(u));
                if !uids.is_empty() {
                    docs.extend(uids.iter().copied());
                    out.push(&word, &uids);
                }
            }
            dicts.push(out);
        }
        let mut records = Vec::new();
        for part in parts {
            records.extend(
                part.records
                    .get()?
                    .iter()
                    .filter(|(u, _)| live(*u))
                    .cloned(),
            );
        }
        Ok(Segment {
            docs: docs.len() as u32,
            dicts,
            records: Records::built(records),
        })
    }

    /// The stored form: zstd over [`RECORDS_MAGIC`] and the message count, then per
    /// kind the word buffer and the postings, then the records ([`RecordColumns`] in
    /// postcard), each after its length (u32 LE). The offsets into the words and
    /// postings are not stored: [`Segment::decode`] finds them again.
    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let records = self.records.encoded()?;
        let parts: Vec<&Vec<u8>> = self
            .dicts
            .iter()
            .flat_map(|d| [&d.words, &d.postings])
            .chain([&records])
            .collect();
        let len = parts
            .iter()
            .map(|p| p.len().saturating_add(4))
            .sum::<usize>();
        let mut plain = Vec::with_capacity(len.saturating_add(8));
        plain.extend_from_slice(&RECORDS_MAGIC.to_le_bytes());
        plain.extend_from_slice(&self.docs.to_le_bytes());
        for part in parts {
            let len = u32::try_from(part.len())
                .map_err(|_| StoreError::Storage("index segment over 4 GiB".into()))?;
            plain.extend_from_slice(&len.to_le_bytes());
            plain.extend_from_slice(part);
        }
        super::blob::compress_plain(&plain, LEVEL)
    }

    /// [`Segment::encode`]'s form back. A segment compressed in one piece says its size
    /// and is decompressed with a pooled context; one an older version wrote with a
    /// streaming encoder (no size) is read as a stream.
    fn decode(stored: &[u8]) -> Result<Segment, StoreError> {
        match super::blob::decompress_plain(stored)? {
            Some(plain) => Segment::parse(&mut plain.as_slice()),
            None => {
                let mut z = zstd::stream::Decoder::new(stored)
                    .map_err(|e| StoreError::Corrupt(format!("index segment: {e}")))?;
                Segment::parse(&mut z)
            }
        }
    }

    fn parse(z: &mut impl std::io::Read) -> Result<Segment, StoreError> {
        let bad = |why: &str| StoreError::Corrupt(format!("index segment: {why}"));
        let mut word = [0u8; 4];
        let mut u32_of = |z: &mut dyn std::io::Read| -> Result<u32, StoreError> {
            z.read_exact(&mut word).map_err(|e| bad(&e.to_string()))?;
            Ok(u32::from_le_bytes(word))
        };
        let first = u32_of(&mut *z)?;
        let with_records = first == RECORDS_MAGIC;
        let docs = if with_records {
            u32_of(&mut *z)?
        } else {
            first
        };
        let mut dicts = Vec::with_capacity(KINDS);
        for _ in 0..KINDS {
            let mut parts = [Vec::new(), Vec::new()];
            for part in &mut parts {
                let len = u32_of(&mut *z)? as usize;
                part.resize(len, 0);
                z.read_exact(part).map_err(|e| bad(&e.to_string()))?;
            }
            let [words, postings] = parts;
            let starts: Vec<u32> = memchr::memchr_iter(0, &words)
                .map(|at| at.saturating_add(1) as u32)
                .collect();
            let mut post_starts = Vec::with_capacity(starts.len());
            let mut at = 0usize;
            while at < postings.len() {
                post_starts.push(at as u32);
                let n = get_varint(&postings, &mut at).ok_or_else(|| bad("postings"))?;
                for _ in 0..n {
                    get_varint(&postings, &mut at).ok_or_else(|| bad("postings"))?;
                }
            }
            if post_starts.len() != starts.len() {
                return Err(bad("words and postings disagree"));
            }
            dicts.push(Dict {
                words,
                starts,
                postings,
                post_starts,
            });
        }
        let mut records = Records::default();
        if with_records {
            let len = u32_of(&mut *z)? as usize;
            records.stored.resize(len, 0);
            z.read_exact(&mut records.stored)
                .map_err(|e| bad(&e.to_string()))?;
        }
        Ok(Segment {
            docs,
            dicts,
            records,
        })
    }
}

/// What the index knows of a search string: the messages that may contain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextQuery {
    /// The texts it looks at (TEXT: the header and the body).
    pub kinds: Vec<TextKind>,
    pub needle: Vec<u8>,
}

/// The index's answer for a mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextAnswer {
    /// Messages above this UID are not indexed yet: the index says nothing of them.
    pub upto: u32,
    /// Per query, the sorted UIDs (at or below `upto`) of the messages that may match;
    /// `None` when the index cannot narrow it (a string without a letter or digit).
    pub maybe: Vec<Option<Vec<u32>>>,
}

/// The indexer's wake-up call, and the decoded segments in memory.
#[derive(Default)]
pub(crate) struct State {
    wake: Mutex<bool>,
    bell: Condvar,
    running: AtomicBool,
    stop: AtomicBool,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    segments: HashMap<(u64, u64), (Arc<Segment>, Instant)>,
    bytes: usize,
}

impl State {
    /// Tells the indexer that something was committed.
    pub(crate) fn ring(&self) {
        if !self.running.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(mut w) = self.wake.lock() {
            *w = true;
            self.bell.notify_one();
        }
    }

    /// Drops the decoded segments not used for `idle`.
    pub(crate) fn drop_unused(&self, idle: Duration) {
        if let Ok(mut c) = self.cache.lock() {
            c.segments.retain(|_, (_, used)| used.elapsed() < idle);
            c.bytes = c.segments.values().map(|(s, _)| s.bytes()).sum();
        }
    }

    /// Drops the cached copies of segments merged away.
    fn forget(&self, mailbox: u64, keys: &[u64]) {
        if let Ok(mut c) = self.cache.lock() {
            for k in keys {
                if let Some((s, _)) = c.segments.remove(&(mailbox, *k)) {
                    c.bytes = c.bytes.saturating_sub(s.bytes());
                }
            }
        }
    }

    fn cached(&self, key: (u64, u64)) -> Option<Arc<Segment>> {
        let mut c = self.cache.lock().ok()?;
        let (seg, used) = c.segments.get_mut(&key)?;
        *used = Instant::now();
        Some(seg.clone())
    }

    fn keep(&self, key: (u64, u64), seg: &Arc<Segment>) {
        let Ok(mut c) = self.cache.lock() else {
            return;
        };
        let size = seg.bytes();
        while c.bytes.saturating_add(size) > CACHE_MAX {
            let Some(oldest) = c
                .segments
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((s, _)) = c.segments.remove(&oldest) {
                c.bytes = c.bytes.saturating_sub(s.bytes());
            }
        }
        c.bytes = c.bytes.saturating_add(size);
        c.segments.insert(key, (seg.clone(), Instant::now()));
    }
}

/// A mailbox's index record from `FTS_MAILBOXES`, read or written.
fn index_record(
    table: &impl ReadableTable<u64, &'static [u8]>,
    mailbox: u64,
) -> Result<Option<MailboxIndex>, StoreError> {
    match table.get(mailbox)? {
        Some(v) => Ok(Some(super::schema::decode(v.value())?)),
        None => Ok(None),
    }
}

fn mailbox_index(tx: &ReadTransaction, mailbox: u64) -> Result<MailboxIndex, StoreError> {
    Ok(index_record(&tx.open_table(FTS_MAILBOXES)?, mailbox)?.unwrap_or_default())
}

/// A segment, from the cache or decoded (and then kept in the cache when `keep`).
fn load_segment(
    tx: &ReadTransaction,
    shared: &Shared,
    mailbox: u64,
    key: u64,
    keep: bool,
) -> Result<Arc<Segment>, StoreError> {
    if let Some(s) = shared.fts.cached((mailbox, key)) {
        return Ok(s);
    }
    let mut stored = Vec::new();
    for row in tx
        .open_table(FTS_SEGMENTS)?
        .range((mailbox, key, 0)..=(mailbox, key, u32::MAX))?
    {
        stored.extend_from_slice(row?.1.value());
    }
    if stored.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "missing index segment {mailbox}/{key}"
        )));
    }
    let seg = Arc::new(Segment::decode(&stored)?);
    if keep {
        shared.fts.keep((mailbox, key), &seg);
    }
    Ok(seg)
}

/// Sorted intersection of two sorted lists.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(x);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Answers `queries` for `mailbox` from the index, in one read transaction.
pub(crate) fn lookup(
    tx: &ReadTransaction,
    shared: &Shared,
    mailbox: MailboxId,
    queries: &[TextQuery],
) -> Result<TextAnswer, StoreError> {
    let index = mailbox_index(tx, mailbox.0)?;
    let segments = index
        .segments
        .iter()
        .map(|r| load_segment(tx, shared, mailbox.0, r.key, true))
        .collect::<Result<Vec<_>, _>>()?;
    let maybe = queries
        .iter()
        .map(|q| {
            // An index of the fields only knows nothing of the body and the header.
            if !index.layout.full()
                && q.kinds
                    .iter()
                    .any(|k| matches!(k, TextKind::Body | TextKind::Header))
            {
                return None;
            }
            let mut runs = Vec::new();
            text::terms(&q.needle, &mut |t| runs.push(t.to_string()));
            let mut result: Option<Vec<u32>> = None;
            for run in &runs {
                let mut uids = Vec::new();
                for s in &segments {
                    s.find(&q.kinds, run.as_bytes(), &mut uids);
                }
                uids.sort_unstable();
                uids.dedup();
                result = Some(match result {
                    Some(prev) => intersect(&prev, &uids),
                    None => uids,
                });
            }
            result
        })
        .collect();
    Ok(TextAnswer {
        upto: index.done,
        maybe,
    })
}

/// The records ([`HeaderData`]) of those of `uids` (sorted) that the index holds.
pub(crate) fn records(
    tx: &ReadTransaction,
    shared: &Shared,
    mailbox: MailboxId,
    uids: &[Uid],
) -> Result<Vec<(Uid, Arc<HeaderData>)>, StoreError> {
    let index = mailbox_index(tx, mailbox.0)?;
    let mut out = Vec::new();
    for r in &index.segments {
        // Segments hold increasing, disjoint UID ranges from their first UID on.
        let first = (r.key >> 32) as u32;
        let from = uids.partition_point(|u| u.0 < first);
        let Some(asked) = uids.get(from..).filter(|a| !a.is_empty()) else {
            continue;
        };
        load_segment(tx, shared, mailbox.0, r.key, true)?.records_of(asked, &mut out)?;
    }
    Ok(out)
}

/// The highest UID of a mailbox, 0 when empty.
fn last_uid(tx: &ReadTransaction, mailbox: u64) -> Result<u32, StoreError> {
    let t = tx.open_table(MESSAGES)?;
    let last = t.range((mailbox, 0)..=(mailbox, u32::MAX))?.next_back();
    match last {
        Some(row) => Ok(row?.0.value().1),
        None => Ok(0),
    }
}

fn next_generation(tx: &WriteTransaction) -> Result<u64, StoreError> {
    let mut meta = tx.open_table(META)?;
    let g = meta.get("fts_generation")?.map_or(0, |v| v.value());
    let next = g.wrapping_add(1) & u64::from(u32::MAX);
    meta.insert("fts_generation", next)?;
    Ok(next)
}

/// A mailbox's index record as a write transaction sees it.
fn index_in(tx: &WriteTransaction, mailbox: u64) -> Result<Option<MailboxIndex>, StoreError> {
    index_record(&tx.open_table(FTS_MAILBOXES)?, mailbox)
}

fn write_index(
    tx: &WriteTransaction,
    mailbox: u64,
    index: &MailboxIndex,
) -> Result<(), StoreError> {
    tx.open_table(FTS_MAILBOXES)?
        .insert(mailbox, super::schema::encode(index)?.as_slice())?;
    Ok(())
}

/// Stores a segment and returns its reference.
fn put_segment(
    tx: &WriteTransaction,
    mailbox: u64,
    first_uid: u32,
    seg: &Segment,
) -> Result<SegmentRef, StoreError> {
    let key = (u64::from(first_uid) << 32) | next_generation(tx)?;
    let stored = seg.encode()?;
    let mut t = tx.open_table(FTS_SEGMENTS)?;
    for (i, chunk) in stored.chunks(super::schema::PACK_CHUNK).enumerate() {
        t.insert((mailbox, key, i as u32), chunk)?;
    }
    Ok(SegmentRef {
        key,
        docs: seg.docs,
        bytes: u32::try_from(stored.len()).unwrap_or(u32::MAX),
    })
}

/// A write transaction for index work. Durable, like the writer's: redb reuses the
/// pages a `Durability::None` commit frees only after a durable commit, and index work
/// may have none after it (a catch-up after an import, say).
fn begin_index_write(shared: &Shared) -> Result<super::Txn<WriteTransaction>, StoreError> {
    shared.begin_write()
}

/// Indexes one batch of `mailbox`'s new messages, all their words with `full`, else
/// only the fields'; false when there was nothing to do.
fn index_batch(shared: &Shared, mailbox: u64, full: bool) -> Result<bool, StoreError> {
    let tx = shared.begin_read()?;
    let index = mailbox_index(&tx, mailbox)?;
    let uids: Vec<u32> = {
        let t = tx.open_table(MESSAGES)?;
        let from = index.done.saturating_add(1);
        let mut uids = Vec::new();
        for row in t
            .range((mailbox, from)..=(mailbox, u32::MAX))?
            .take(BATCH_MESSAGES)
        {
            uids.push(row?.0.value().1);
        }
        uids
    };
    let Some(&last) = uids.last() else {
        return Ok(false);
    };
    // The fields need only the header, without the delivery prefix (it holds none of
    // them); the rest needs the whole message as SEARCH reads it.
    let want = Want {
        meta: full,
        bytes: true,
        skip_trace: !full,
        header_only: !full,
    };
    let asked: Vec<Uid> = uids.iter().copied().map(Uid).collect();
    let loaded = load_in(&tx, shared, MailboxId(mailbox), &asked, want, BATCH_BYTES)?;
    drop(tx);
    let read_to = loaded.last().map_or(last, |(u, _)| u.0);
    let mut builder = Builder::new();
    let mut first = None;
    for (uid, l) in &loaded {
        let Some(Loaded {
            meta: structure,
            raw: Some(raw),
            ..
        }) = l
        else {
            continue;
        };
        let uid = uid.0;
        first.get_or_insert(uid);
        let Some((structure, prefix)) = structure else {
            builder.add(uid, raw, None);
            continue;
        };
        // A stored structure that does not decode is parsed again: every message at or
        // below the mark must be in the index, or SEARCH would miss it.
        let stored = match structure {
            super::Structure::Stored(b) => postcard::from_bytes(b).ok(),
            super::Structure::Derive => None,
        };
        let Some(meta) = stored.or_else(|| raw.get(*prefix..).map(crate::mime::analyze)) else {
            continue;
        };
        let header_end = usize::try_from(meta.body.header_end)
            .unwrap_or(usize::MAX)
            .saturating_add(*prefix)
            .min(raw.len());
        let header = raw.get(..header_end).unwrap_or(raw);
        builder.add(uid, header, Some((raw, *prefix, &meta)));
    }
    let seg = builder.finish();
    let tx = begin_index_write(shared)?;
    let layout = Layout::current(full);
    let mut now = match index_in(&tx, mailbox)? {
        Some(i) if i.done > 0 || !i.segments.is_empty() => i,
        _ => MailboxIndex {
            layout,
            ..MailboxIndex::default()
        },
    };
    // A reindex or a merge may have changed the record meanwhile: start again.
    if now.done != index.done || now.layout != layout {
        return Ok(true);
    }
    if let Some(first) = first {
        now.segments.push(put_segment(&tx, mailbox, first, &seg)?);
    }
    now.done = read_to;
    write_index(&tx, mailbox, &now)?;
    tx.commit()?;
    Ok(true)
}

/// The size class of a segment: segments of one class are merged [`MERGE_FAN`] at a time.
fn class(docs: u32) -> u32 {
    let mut c = 0;
    let mut d = docs.max(1);
    while d >= MERGE_FAN as u32 {
        d /= MERGE_FAN as u32;
        c += 1;
    }
    c
}

/// The UIDs of `mailbox` from `first` to `last` that are still in MESSAGES: what a
/// rewritten segment keeps.
fn live_uids(
    messages: &impl ReadableTable<(u64, u32), &'static [u8]>,
    mailbox: u64,
    first: u32,
    last: u32,
) -> Result<std::collections::HashSet<u32>, StoreError> {
    let mut live = std::collections::HashSet::new();
    for row in messages.range((mailbox, first)..=(mailbox, last))? {
        live.insert(row?.0.value().1);
    }
    Ok(live)
}

/// Merges the last [`MERGE_FAN`] segments of `mailbox` when they are of one class;
/// false when there is nothing to merge. The merge is computed outside the write
/// transaction, which checks that the inputs are still there.
fn merge_once(shared: &Shared, mailbox: u64) -> Result<bool, StoreError> {
    let tx = shared.begin_read()?;
    let index = mailbox_index(&tx, mailbox)?;
    let n = index.segments.len();
    if n < MERGE_FAN {
        return Ok(false);
    }
    let tail = index
        .segments
        .get(n - MERGE_FAN..)
        .unwrap_or_default()
        .to_vec();
    let c = class(tail.first().map_or(0, |r| r.docs));
    let docs: u32 = tail.iter().map(|r| r.docs).sum();
    if tail.iter().any(|r| class(r.docs) != c) || docs > MERGE_MAX_DOCS {
        return Ok(false);
    }
    let parts = tail
        .iter()
        .map(|r| load_segment(&tx, shared, mailbox, r.key, false))
        .collect::<Result<Vec<_>, _>>()?;
    let first_uid = tail.first().map_or(0, |r| (r.key >> 32) as u32);
    let live = live_uids(&tx.open_table(MESSAGES)?, mailbox, first_uid, index.done)?;
    drop(tx);
    let merged = Segment::merge(&parts, &|u| live.contains(&u))?;
    drop(parts);
    log::debug!(
        "index: merged {MERGE_FAN} segments of mailbox {mailbox}: {} messages, {} words, {} bytes decoded",
        merged.docs,
        merged.dicts.iter().map(Dict::len).sum::<usize>(),
        merged.bytes()
    );
    let tx = begin_index_write(shared)?;
    let Some(mut now) = index_in(&tx, mailbox)? else {
        return Ok(false);
    };
    let keys: Vec<u64> = tail.iter().map(|r| r.key).collect();
    let at = now.segments.len().saturating_sub(MERGE_FAN);
    let still: Vec<u64> = now
        .segments
        .get(at..)
        .unwrap_or_default()
        .iter()
        .map(|r| r.key)
        .collect();
    if still != keys {
        return Ok(true);
    }
    now.segments.truncate(at);
    {
        let mut t = tx.open_table(FTS_SEGMENTS)?;
        for &k in &keys {
            t.retain_in((mailbox, k, 0)..=(mailbox, k, u32::MAX), |_, _| false)?;
        }
    }
    if merged.docs > 0 {
        now.segments
            .push(put_segment(&tx, mailbox, first_uid, &merged)?);
    }
    write_index(&tx, mailbox, &now)?;
    tx.commit()?;
    shared.fts.forget(mailbox, &keys);
    Ok(true)
}

/// Rewrites the first segment of `mailbox` that has fewer than half of its messages
/// left, without the expunged ones (or drops it when none is left): a mailbox whose
/// mail comes and goes would otherwise keep the words and records of mail long gone
/// until a merge happens to take that segment. False when there is no such segment.
fn prune_once(shared: &Shared, mailbox: u64) -> Result<bool, StoreError> {
    let tx = shared.begin_read()?;
    let index = mailbox_index(&tx, mailbox)?;
    let mut pick = None;
    {
        let t = tx.open_table(MESSAGES)?;
        for (i, r) in index.segments.iter().enumerate() {
            let first = (r.key >> 32) as u32;
            let last = index
                .segments
                .get(i.saturating_add(1))
                .map_or(index.done, |next| {
                    ((next.key >> 32) as u32).saturating_sub(1)
                });
            let live = live_uids(&t, mailbox, first, last)?;
            if (live.len() as u64).saturating_mul(2) < u64::from(r.docs) {
                pick = Some((*r, live));
                break;
            }
        }
    }
    let Some((old, live)) = pick else {
        return Ok(false);
    };
    let seg = load_segment(&tx, shared, mailbox, old.key, false)?;
    drop(tx);
    let pruned = Segment::merge(&[seg], &|u| live.contains(&u))?;
    let tx = begin_index_write(shared)?;
    let Some(mut now) = index_in(&tx, mailbox)? else {
        return Ok(false);
    };
    // A merge or a reindex may have changed the list meanwhile: look again.
    let Some(at) = now.segments.iter().position(|r| r.key == old.key) else {
        return Ok(true);
    };
    tx.open_table(FTS_SEGMENTS)?.retain_in(
        (mailbox, old.key, 0)..=(mailbox, old.key, u32::MAX),
        |_, _| false,
    )?;
    if pruned.docs > 0 {
        let first_uid = (old.key >> 32) as u32;
        let r = put_segment(&tx, mailbox, first_uid, &pruned)?;
        if let Some(slot) = now.segments.get_mut(at) {
            *slot = r;
        }
    } else {
        now.segments.remove(at);
    }
    write_index(&tx, mailbox, &now)?;
    tx.commit()?;
    shared.fts.forget(mailbox, &[old.key]);
    log::debug!(
        "index: mailbox {mailbox}: a segment of {} messages rewritten with the {} left",
        old.docs,
        pruned.docs
    );
    Ok(true)
}

/// Removes the index of mailboxes that are gone.
fn drop_orphans(shared: &Shared) -> Result<(), StoreError> {
    let tx = shared.begin_read()?;
    let orphans: Vec<u64> = {
        let boxes = tx.open_table(MAILBOXES)?;
        let mut out = Vec::new();
        for row in tx.open_table(FTS_MAILBOXES)?.iter()? {
            let id = row?.0.value();
            if boxes.get(id)?.is_none() {
                out.push(id);
            }
        }
        out
    };
    drop(tx);
    if orphans.is_empty() {
        return Ok(());
    }
    let tx = begin_index_write(shared)?;
    clear(&tx, &orphans)?;
    tx.commit()?;
    Ok(())
}

/// Removes the index of `mailboxes`.
fn clear(tx: &WriteTransaction, mailboxes: &[u64]) -> Result<(), StoreError> {
    let mut segs = tx.open_table(FTS_SEGMENTS)?;
    let mut index = tx.open_table(FTS_MAILBOXES)?;
    for &m in mailboxes {
        segs.retain_in((m, 0, 0)..=(m, u64::MAX, u32::MAX), |_, _| false)?;
        index.remove(m)?;
    }
    Ok(())
}

/// Whether the data dir's file system has room for index work: at least
/// [`ROOM_MIN`] and [`ROOM_SHARE`] of it free. Mail comes first on a full disk: the
/// index waits, and SEARCH reads the messages it does not cover.
fn has_room(shared: &Shared) -> bool {
    let dir = shared.path.parent().unwrap_or(&shared.path);
    match super::disk_status(dir) {
        Some((free, total)) => free >= ROOM_MIN && free as f64 >= total as f64 * ROOM_SHARE,
        None => true,
    }
}

/// One pass over every mailbox: new mail indexed and segments merged. Returns early
/// (false) when the store is stopping or the disk is nearly full.
fn pass(shared: &Shared) -> Result<bool, StoreError> {
    if !has_room(shared) {
        log::info!("index: the disk is nearly full; indexing waits for space");
        return Ok(false);
    }
    drop_orphans(shared)?;
    let full = shared.config.full_text_index == FullTextIndex::Full;
    let (todo, other_kind, dead) = {
        let tx = shared.begin_read()?;
        let (mut todo, mut other, mut dead) = (Vec::new(), Vec::new(), Vec::new());
        for row in tx.open_table(MAILBOXES)?.iter()? {
            let (id, record) = row?;
            let id = id.value();
            let record: super::schema::MailboxRecord = super::schema::decode(record.value())?;
            let index = mailbox_index(&tx, id)?;
            // Many messages expunged since their segments were written: some segment
            // may be mostly dead (`prune_once` looks).
            let indexed: u64 = index.segments.iter().map(|r| u64::from(r.docs)).sum();
            if indexed
                > record
                    .messages
                    .saturating_add((indexed / 4).max(PRUNE_SLACK))
            {
                dead.push(id);
            }
            // An index built for the other setting, or before the records, is built
            // again.
            let stale = index.layout != Layout::current(full)
                && (index.done > 0 || !index.segments.is_empty());
            if stale {
                other.push(id);
            }
            if stale || last_uid(&tx, id)? > index.done {
                todo.push(id);
            }
        }
        (todo, other, dead)
    };
    if !other_kind.is_empty() {
        let tx = begin_index_write(shared)?;
        clear(&tx, &other_kind)?;
        tx.commit()?;
        shared.fts.drop_unused(Duration::ZERO);
    }
    let mut merged = false;
    for mailbox in todo {
        while index_batch(shared, mailbox, full)? {
            if shared.fts.stop.load(Ordering::Relaxed) || !shared.is_open() || !has_room(shared) {
                return Ok(false);
            }
            while merge_once(shared, mailbox)? {
                merged = true;
            }
        }
    }
    for mailbox in dead {
        while prune_once(shared, mailbox)? {
            merged = true;
            if shared.fts.stop.load(Ordering::Relaxed) || !shared.is_open() {
                return Ok(false);
            }
        }
    }
    if merged && shared.config.compact_check_secs != 0 {
        // Merges leave free pages behind: give them back as after packing, when a
        // quarter of the file is free (`store.compact_when_free`) and clients are idle.
        // It waits for the clients to be idle for a second, up to COMPACT_WAIT: the
        // periodic check (`store.compact_check_secs`) is there for a busier store.
        let start = Instant::now();
        let stop = || shared.fts.stop.load(Ordering::Relaxed) || start.elapsed() > COMPACT_WAIT;
        if let Err(e) = super::compact_blocking_unless(shared, false, &stop) {
            log::warn!("index: compaction after indexing failed: {e}");
        }
    }
    Ok(true)
}

fn wait_for_quiet(shared: &Shared) {
    let start = Instant::now();
    while start.elapsed() < QUIET_MAX && !shared.fts.stop.load(Ordering::Relaxed) {
        let last = shared.last_write_ms.load(Ordering::Relaxed);
        let idle = super::now_ms().saturating_sub(last);
        if idle >= QUIET_MS {
            return;
        }
        std::thread::sleep(Duration::from_millis((QUIET_MS - idle).min(100)));
    }
}

fn run(shared: &Arc<Shared>) {
    let state = &shared.fts;
    loop {
        if let Ok(mut w) = state.wake.lock() {
            if !*w {
                w = state
                    .bell
                    .wait_timeout(w, Duration::from_secs(60))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            *w = false;
        }
        if state.stop.load(Ordering::Relaxed) || !shared.is_open() {
            break;
        }
        wait_for_quiet(shared);
        if let Err(e) = pass(shared) {
            log::warn!("index: {e}; trying again in 10 s");
            std::thread::sleep(Duration::from_secs(10));
        }
    }
    state.running.store(false, Ordering::SeqCst);
}

impl Store {
    /// Starts the indexer thread (the server does; a command that opens the store for
    /// a moment does not). It catches up with what is not indexed at once.
    pub fn start_indexer(&self) {
        let state = &self.shared.fts;
        if state.running.swap(true, Ordering::SeqCst) {
            return;
        }
        state.stop.store(false, Ordering::SeqCst);
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("store-index".into())
            .spawn(move || run(&shared));
        match spawned {
            Ok(_) => state.ring(),
            Err(e) => {
                log::warn!("index: cannot start the indexer: {e}");
                state.running.store(false, Ordering::SeqCst);
            }
        }
    }

    /// Stops the indexer thread, waiting for it up to 10 s.
    pub(crate) fn stop_indexer(&self) {
        let state = &self.shared.fts;
        state.stop.store(true, Ordering::SeqCst);
        if let Ok(mut w) = state.wake.lock() {
            *w = true;
            state.bell.notify_one();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while state.running.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Indexes everything not indexed yet, here and now (blocking): for `nestbox
    /// reindex` without a server, and tests.
    pub fn index_now(&self) -> Result<(), StoreError> {
        pass(&self.shared).map(|_| ())
    }

    /// What the index says of `queries` in `mailbox` ([`TextAnswer`]).
    pub async fn text_lookup(
        &self,
        mailbox: MailboxId,
        queries: Vec<TextQuery>,
    ) -> Result<TextAnswer, StoreError> {
        self.read(move |tx, shared| lookup(tx, shared, mailbox, &queries))
            .await
    }

    /// The index's records of those of `uids` that it holds: what SORT and THREAD
    /// read from a header, without reading the message.
    pub async fn header_records(
        &self,
        mailbox: MailboxId,
        mut uids: Vec<Uid>,
    ) -> Result<Vec<(Uid, Arc<HeaderData>)>, StoreError> {
        uids.sort_unstable();
        self.read(move |tx, shared| records(tx, shared, mailbox, &uids))
            .await
    }

    /// Drops the index of one user's mailboxes (or everyone's) and wakes the indexer,
    /// which builds it again. Returns how many mailboxes lost their index.
    pub async fn reindex(&self, user: Option<String>) -> Result<u64, StoreError> {
        let user_id = match &user {
            Some(name) => Some(
                self.find_user(name, "")
                    .await?
                    .ok_or(StoreError::NoSuchUser)?
                    .id,
            ),
            None => None,
        };
        let shared = self.shared.clone();
        let n = smol::unblock(move || {
            let tx = shared.begin_write()?;
            let boxes: Vec<u64> = {
                let mut out = Vec::new();
                for row in tx.open_table(MAILBOXES)?.iter()? {
                    let (k, v) = row?;
                    let rec: super::schema::MailboxRecord = super::schema::decode(v.value())?;
                    if user_id.is_none_or(|u| rec.user == u) {
                        out.push(k.value());
                    }
                }
                out
            };
            clear(&tx, &boxes)?;
            tx.commit()?;
            Ok::<u64, StoreError>(boxes.len() as u64)
        })
        .await?;
        self.shared.fts.drop_unused(Duration::ZERO);
        if self.shared.fts.running.load(Ordering::SeqCst) {
            self.shared.fts.ring();
        } else {
            // No indexer in this process (the command opened the store itself).
            let shared = self.shared.clone();
            smol::unblock(move || pass(&shared)).await?;
        }
        Ok(n)
    }

    /// Bytes the stored index takes, and how many messages wait to be indexed.
    pub(crate) fn index_size(tx: &ReadTransaction) -> Result<(u64, u64), StoreError> {
        let mut bytes = 0u64;
        let mut behind = 0u64;
        for row in tx.open_table(MAILBOXES)?.iter()? {
            let id = row?.0.value();
            let index = mailbox_index(tx, id)?;
            bytes = bytes.saturating_add(index.segments.iter().map(|r| u64::from(r.bytes)).sum());
            let t = tx.open_table(MESSAGES)?;
            for row in t.range((id, index.done.saturating_add(1))..=(id, u32::MAX))? {
                row?;
                behind = behind.saturating_add(1);
            }
        }
        Ok((bytes, behind))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn seg(docs: &[(u32, &str)]) -> Segment {
        let mut b = Builder::new();
        for (uid, body) in docs {
            let raw = format!("Subject: s{uid}\r\n\r\n{body}\r\n");
            let meta = crate::mime::analyze(raw.as_bytes());
            let header_end = meta.body.header_end as usize;
            b.add(
                *uid,
                &raw.as_bytes()[..header_end],
                Some((raw.as_bytes(), 0, &meta)),
            );
        }
        b.finish()
    }

    fn find(s: &Segment, kind: TextKind, run: &str) -> Vec<u32> {
        let mut out = Vec::new();
        s.find(&[kind], run.as_bytes(), &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    #[test]
    fn a_word_is_found_by_any_part_of_it_and_only_in_its_kind() {
        let s = seg(&[
            (3, "hello world"),
            (7, "Worldwide 東京で会議"),
            (9, "nothing"),
        ]);
        assert_eq!(find(&s, TextKind::Body, "world"), [3, 7]);
        assert_eq!(find(&s, TextKind::Body, "orldw"), [7]);
        assert_eq!(find(&s, TextKind::Body, "会議"), [7]);
        assert_eq!(find(&s, TextKind::Subject, "s9"), [9]);
        assert_eq!(find(&s, TextKind::Subject, "world"), Vec::<u32>::new());
        let round = Segment::decode(&s.encode().unwrap()).unwrap();
        assert_eq!(round, s);
    }

    #[test]
    fn a_merge_keeps_the_live_uids_in_order() {
        let a = Arc::new(seg(&[(1, "alpha beta"), (2, "beta")]));
        let b = Arc::new(seg(&[(5, "beta gamma"), (6, "alpha")]));
        let m = Segment::merge(&[a, b], &|u| u != 2).unwrap();
        assert_eq!(find(&m, TextKind::Body, "beta"), [1, 5]);
        assert_eq!(find(&m, TextKind::Body, "alpha"), [1, 6]);
        assert_eq!(find(&m, TextKind::Body, "gamma"), [5]);
        assert_eq!(m.docs, 3);
    }

    #[test]
    fn records_are_stored_merged_and_read_back() {
        let a = seg(&[(1, "x"), (2, "y"), (4, "z")]);
        assert_eq!(a.records.get().unwrap().len(), 3);
        assert_eq!(a.records.get().unwrap()[1].1.subject, "S2");
        let round = Segment::decode(&a.encode().unwrap()).unwrap();
        assert!(
            round.records.decoded.get().is_none(),
            "decoded when asked for"
        );
        assert_eq!(round, a);
        // Stored again as it was read, without decoding.
        assert_eq!(Segment::decode(&round.encode().unwrap()).unwrap(), a);
        let b = seg(&[(9, "w")]);
        let m = Segment::merge(&[Arc::new(a), Arc::new(b)], &|u| u != 2).unwrap();
        let uids: Vec<u32> = m.records.get().unwrap().iter().map(|(u, _)| *u).collect();
        assert_eq!(uids, [1, 4, 9]);
        let mut out = Vec::new();
        m.records_of(&crate::testing::uids([0, 4, 5, 9, 10]), &mut out)
            .unwrap();
        let got: Vec<(u32, &str)> = out.iter().map(|(u, h)| (u.0, h.subject.as_str())).collect();
        assert_eq!(got, [(4, "S4"), (9, "S9")]);
        let mut short = RecordColumns::of(m.records.get().unwrap());
        short.subject.pop();
        assert!(short.records().is_err());
    }

    #[test]
    fn a_segment_a_streaming_encoder_wrote_still_reads() {
        let s = seg(&[(3, "hello world"), (4, "again")]);
        let stored = s.encode().unwrap();
        // Compressed in one piece: the frame says its size.
        let size = zstd::zstd_safe::get_frame_content_size(&stored).unwrap();
        let plain = zstd::bulk::decompress(&stored, 1 << 20).unwrap();
        assert_eq!(size, Some(plain.len() as u64));
        // The same bytes as an older version streamed them, without a size.
        let streamed = zstd::stream::encode_all(plain.as_slice(), LEVEL).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&streamed).unwrap(),
            None
        );
        assert_eq!(Segment::decode(&streamed).unwrap(), s);
        assert_eq!(Segment::decode(&stored).unwrap(), s);
    }

    #[test]
    fn a_segment_and_a_record_stored_before_the_records_still_read() {
        // The segment form before the records: no magic, no record columns.
        let s = seg(&[(3, "hello")]);
        let mut old = Vec::new();
        old.extend_from_slice(&s.docs.to_le_bytes());
        for d in &s.dicts {
            for part in [&d.words, &d.postings] {
                old.extend_from_slice(&(part.len() as u32).to_le_bytes());
                old.extend_from_slice(part);
            }
        }
        let read = Segment::decode(&zstd::bulk::compress(&old, 3).unwrap()).unwrap();
        assert_eq!(read.dicts, s.dicts);
        assert!(read.records.get().unwrap().is_empty());
        // The mailbox record then had `full: bool` where the layout is now.
        #[derive(Serialize)]
        struct Before {
            done: u32,
            segments: Vec<SegmentRef>,
            full: bool,
        }
        for (full, layout) in [
            (false, Layout::FieldsBeforeRecords),
            (true, Layout::FullBeforeRecords),
        ] {
            let bytes = super::super::schema::encode(&Before {
                done: 7,
                segments: Vec::new(),
                full,
            })
            .unwrap();
            let now: MailboxIndex = super::super::schema::decode(&bytes).unwrap();
            assert_eq!((now.done, now.layout), (7, layout));
            assert_ne!(now.layout, Layout::current(full), "built again");
        }
    }

    #[test]
    fn varints_round_trip() {
        let mut buf = Vec::new();
        for v in [0, 1, 127, 128, 300, u32::MAX] {
            put_varint(v, &mut buf);
        }
        let mut at = 0;
        for v in [0, 1, 127, 128, 300, u32::MAX] {
            assert_eq!(get_varint(&buf, &mut at), Some(v));
        }
        assert_eq!(get_varint(&buf, &mut at), None);
    }
}
