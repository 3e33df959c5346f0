//! Messages in mailboxes: append, read back, expunge, statistics.

use crate::contracts::{MailboxId, ModSeq, Uid, UserId};
use std::collections::HashMap;
use std::sync::Arc;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::blob::{self, Extent, PreparedBlob};
use super::import::{self, KeptIds};
use super::mailboxes::{self, canonical_mailbox};
use super::schema::BlobId;
use super::schema::{
    self, BLOBS, BlobRecord, DICT_CHUNKS, EXPUNGED, Location, MAILBOXES, MESSAGES, MailboxRecord,
    MessageRecord, PACKS, PackRecord, SystemFlags, TraceRecord, USERS, UserRecord,
};
use super::writer::Batch;
use super::{ChangeKind, Origin, Store, StoreError, now};

/// One copy of a message to store.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub user: UserId,
    pub mailbox: String,
    /// Create the mailbox if it does not exist (a filter's file-into, import).
    pub create: bool,
    pub blob: Arc<PreparedBlob>,
    /// Per-delivery trace headers, see [`MessageRecord::trace`].
    pub trace: Option<TraceRecord>,
    pub flags: SystemFlags,
    pub keywords: Vec<String>,
    pub internal_date: i64,
    pub envelope_from: Option<String>,
    /// The UID (and POP3 UIDL) the message keeps from another server; `None`: the
    /// mailbox's UIDNEXT.
    pub kept: Option<KeptIds>,
}

/// Where a stored copy went (for APPENDUID and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub mailbox: MailboxId,
    pub uidvalidity: u32,
    pub uid: Uid,
}

/// What [`Store::load_messages`] reads besides each message's listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Want {
    /// The parsed structure (`mime::MessageMeta`, postcard) and the prefix length.
    pub meta: bool,
    /// The message as clients see it (prefix + blob).
    pub bytes: bool,
    /// Leave out the per-delivery prefix (its length is then given as 0): for readers
    /// that cannot need the trace fields (Return-Path, Delivered-To, Received).
    pub skip_trace: bool,
    /// Give only the blob's header (with its blank line), not the body: for readers of
    /// header fields. A packed message is then not copied whole. Ignored for a message
    /// whose structure is asked for and must be parsed ([`Structure::Derive`]).
    pub header_only: bool,
}

/// A message's parsed structure as the store has it.
#[derive(Debug, Clone, PartialEq)]
pub enum Structure {
    /// `mime::MessageMeta`, postcard, as computed at delivery.
    Stored(Vec<u8>),
    /// Not kept (schema 3 keeps none): parse the blob, `raw[prefix..]`, with
    /// `mime::analyze`. [`Store::load_messages`] then always gives `raw`.
    Derive,
}

/// One message read by [`Store::load_messages`].
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub info: MessageInfo,
    /// With [`Want::meta`]: the structure, and the length of the per-delivery prefix
    /// (offsets in the structure are relative to the blob).
    pub meta: Option<(Structure, usize)>,
    /// With [`Want::bytes`], or when the structure is [`Structure::Derive`]: prefix + blob.
    pub raw: Option<Vec<u8>>,
}

/// A message as listed (no body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageInfo {
    pub uid: Uid,
    pub flags: SystemFlags,
    pub keywords: Vec<String>,
    pub internal_date: i64,
    pub save_date: i64,
    pub size: u64,
    pub modseq: ModSeq,
    pub envelope_from: Option<String>,
}

impl MessageInfo {
    fn of(uid: Uid, rec: MessageRecord) -> MessageInfo {
        MessageInfo {
            uid,
            flags: rec.flags,
            keywords: rec.keywords,
            internal_date: rec.internal_date,
            save_date: rec.save_date,
            size: rec.size,
            modseq: ModSeq(rec.modseq),
            envelope_from: rec.envelope_from,
        }
    }
}

/// What SEARCH and SORT read of a message besides what a session's view holds (UID,
/// flags, keywords, modseq): its dates and size. Small, so that the listing of a large
/// mailbox is one small block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listed {
    /// Unix seconds (IMAP INTERNALDATE).
    pub internal_date: i64,
    /// Unix seconds (RFC 8514 SAVEDATE).
    pub save_date: i64,
    /// RFC822.SIZE.
    pub size: u64,
}

impl Listed {
    fn of(rec: &MessageRecord) -> Listed {
        Listed {
            internal_date: rec.internal_date,
            save_date: rec.save_date,
            size: rec.size,
        }
    }
}

/// What says a mailbox's listing is still what it was: every append, flag change and
/// expunge moves HIGHESTMODSEQ (and the UID and count with the first and last), and a
/// mailbox made again under the same id has another UIDVALIDITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListingKey {
    uidvalidity: u32,
    uidnext: u32,
    highest_modseq: u64,
    messages: u64,
}

impl ListingKey {
    fn of(mb: &MailboxRecord) -> ListingKey {
        ListingKey {
            uidvalidity: mb.uidvalidity,
            uidnext: mb.uidnext,
            highest_modseq: mb.highest_modseq,
            messages: mb.messages,
        }
    }
}

/// The most the kept listings may take, estimated.
const LISTINGS_MAX: usize = 16 << 20;

/// The last listing read of each mailbox ([`Store::messages`]), while it is current and
/// in use. After a change every session with the mailbox selected reads it again: with
/// 100 clients in IDLE on a 50,000-message INBOX one new message meant 100 reads of
/// 50,000 records. Dropped when not used for a memory tick, like the other caches.
#[derive(Default)]
pub(crate) struct Listings {
    kept: std::sync::Mutex<HashMap<u64, Kept>>,
    /// The mailboxes whose listing is being read now.
    building: super::claims::Claims<u64>,
}

struct Kept {
    key: ListingKey,
    msgs: Arc<Vec<MessageInfo>>,
    bytes: usize,
    used: std::time::Instant,
}

impl Listings {
    fn get(&self, mailbox: u64, key: ListingKey) -> Option<Arc<Vec<MessageInfo>>> {
        let mut kept = self.kept.lock().ok()?;
        let k = kept.get_mut(&mailbox).filter(|k| k.key == key)?;
        k.used = std::time::Instant::now();
        Some(k.msgs.clone())
    }

    fn keep(&self, mailbox: u64, key: ListingKey, msgs: &Arc<Vec<MessageInfo>>) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        // A reader with an older transaction does not replace a newer listing.
        if kept
            .get(&mailbox)
            .is_some_and(|k| k.key.highest_modseq > key.highest_modseq)
        {
            return;
        }
        // The entries and, roughly, the envelope senders they hold.
        let bytes = msgs
            .len()
            .saturating_mul(std::mem::size_of::<MessageInfo>() + 32);
        kept.remove(&mailbox);
        let mut total: usize = kept.values().map(|k| k.bytes).sum();
        while total.saturating_add(bytes) > LISTINGS_MAX {
            let Some(oldest) = kept.iter().min_by_key(|(_, k)| k.used).map(|(m, _)| *m) else {
                break;
            };
            if let Some(k) = kept.remove(&oldest) {
                total = total.saturating_sub(k.bytes);
            }
        }
        if bytes <= LISTINGS_MAX {
            let used = std::time::Instant::now();
            let msgs = msgs.clone();
            kept.insert(
                mailbox,
                Kept {
                    key,
                    msgs,
                    bytes,
                    used,
                },
            );
        }
    }

    /// Drops the listings not used for `idle`.
    pub(crate) fn drop_unused(&self, idle: std::time::Duration) {
        if let Ok(mut kept) = self.kept.lock() {
            kept.retain(|_, k| k.used.elapsed() < idle);
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MailboxStats {
    pub name: String,
    pub messages: u64,
    /// Octets as clients see them.
    pub logical: u64,
    /// Compressed octets on disk; a blob shared by n copies counts 1/n per copy.
    pub physical: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserStats {
    pub name: String,
    pub messages: u64,
    pub logical: u64,
    pub physical: u64,
    pub mailboxes: Vec<MailboxStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub users: Vec<UserStats>,
    /// Distinct blobs, their raw and compressed sizes, and the dictionaries' size.
    pub blobs: u64,
    pub blob_raw: u64,
    pub blob_stored: u64,
    pub dict_bytes: u64,
    /// The full-text index: its stored size, and the messages not indexed yet.
    #[serde(default)]
    pub index_bytes: u64,
    #[serde(default)]
    pub index_behind: u64,
    /// `store.full_text_index` of the process that answered.
    #[serde(default)]
    pub index_mode: Option<crate::config::FullTextIndex>,
    /// The database file: its size (what `ls -l` shows), the bytes its blocks take on
    /// the disk (what `du` shows; less while redb has grown the file sparsely), and its
    /// free space (file size less the pages the tables use), which compaction gives back.
    pub file_bytes: u64,
    pub allocated_bytes: u64,
    pub free_bytes: u64,
    /// Per table: name, stored bytes, page bytes (leaf + branch).
    pub tables: Vec<(String, u64, u64)>,
}

fn store_one(
    tx: &WriteTransaction,
    batch: &mut Batch,
    req: &AppendRequest,
) -> Result<Appended, StoreError> {
    // Validate first: nothing is written unless the copy can be stored.
    let name = canonical_mailbox(&req.mailbox)?;
    let mut mb = match mailboxes::find_in(tx, req.user, &name)? {
        Some(mb) => mb,
        // Every user has an INBOX that cannot be deleted: without one, the user is gone
        // (deleted after the delivery looked them up).
        None if mailboxes::find_in(tx, req.user, "INBOX")?.is_none() => {
            return Err(StoreError::NoSuchUser);
        }
        None if req.create => mailboxes::create_in(tx, batch, req.user, &name, None)?,
        None => return Err(StoreError::NoSuchMailbox),
    };
    let uid = match &req.kept {
        Some(kept) if kept.uid.0 >= mb.uidnext && kept.uid.0 > 0 => kept.uid.0,
        Some(kept) => return Err(StoreError::UidNotFree(kept.uid.0)),
        None => mb.uidnext,
    };
    let next = uid
        .checked_add(1)
        .ok_or_else(|| StoreError::Storage("mailbox UIDs exhausted".into()))?;
    if blob::add_ref(tx, &req.blob, &mut batch.undicted)? {
        batch.loose_added = true;
    }
    mb.uidnext = next;
    mb.highest_modseq += 1;
    let prefix_len = prefix_of(
        req.trace.as_ref(),
        req.envelope_from.as_deref(),
        req.internal_date,
        &req.blob.hash,
    )
    .len();
    let size = prefix_len as u64 + req.blob.raw_len;
    mb.messages += 1;
    mb.bytes += size;
    let trace = match &req.trace {
        Some(t) => Some(schema::intern_trace(tx, t)?),
        None => None,
    };
    let rec = MessageRecord {
        blob: req.blob.hash,
        trace,
        flags: req.flags,
        keywords: req.keywords.clone(),
        internal_date: req.internal_date,
        save_date: now(),
        size,
        modseq: mb.highest_modseq,
        pop3_retrieved: None,
        envelope_from: req.envelope_from.clone(),
    };
    tx.open_table(MESSAGES)?
        .insert((mb.id, uid), schema::encode(&rec)?.as_slice())?;
    if let Some(kept) = &req.kept {
        import::keep_uidl(tx, mb.id, uid, kept)?;
    }
    mailboxes::save_in(tx, &mb)?;
    batch.announce(
        req.user,
        MailboxId(mb.id),
        ChangeKind::Appended { uid },
        Origin::NONE,
    );
    Ok(Appended {
        mailbox: MailboxId(mb.id),
        uidvalidity: mb.uidvalidity,
        uid: Uid(uid),
    })
}

fn prefix_of(
    trace: Option<&TraceRecord>,
    envelope_from: Option<&str>,
    date: i64,
    blob: &BlobId,
) -> Vec<u8> {
    trace
        .map(|t| t.render(envelope_from, date, blob))
        .unwrap_or_default()
}

fn table_stats(tx: &ReadTransaction) -> Result<Vec<(String, u64, u64)>, StoreError> {
    use redb::ReadableTableMetadata;
    let mut out = Vec::new();
    let mut add = |name: &str, s: redb::TableStats| {
        out.push((
            name.to_string(),
            s.stored_bytes(),
            (s.leaf_pages() + s.branch_pages()) * 4096,
        ));
    };
    add("users", tx.open_table(USERS)?.stats()?);
    add("mailboxes", tx.open_table(MAILBOXES)?.stats()?);
    add("messages", tx.open_table(MESSAGES)?.stats()?);
    add("expunged", tx.open_table(EXPUNGED)?.stats()?);
    add("blobs", tx.open_table(BLOBS)?.stats()?);
    add("loose_data", tx.open_table(schema::LOOSE_DATA)?.stats()?);
    add("blob_meta", tx.open_table(schema::BLOB_META)?.stats()?);
    add("loose", tx.open_table(schema::LOOSE)?.stats()?);
    add("packs", tx.open_table(PACKS)?.stats()?);
    add("pack_chunks", tx.open_table(schema::PACK_CHUNKS)?.stats()?);
    add("dict_chunks", tx.open_table(DICT_CHUNKS)?.stats()?);
    Ok(out)
}

/// Reads messages inside one read transaction, with each table opened once and each
/// interned trace decoded once: a batch of messages costs one table open per table, not
/// a few per message.
pub(super) struct Reader<'t> {
    tx: &'t ReadTransaction,
    shared: &'t super::Shared,
    blobs: redb::ReadOnlyTable<&'static BlobId, &'static [u8]>,
    data: redb::ReadOnlyTable<u64, &'static [u8]>,
    metas: redb::ReadOnlyTable<&'static BlobId, &'static [u8]>,
    traces: redb::ReadOnlyTable<u32, &'static [u8]>,
    trace_cache: HashMap<u32, TraceRecord>,
}

impl<'t> Reader<'t> {
    pub(super) fn new(
        tx: &'t ReadTransaction,
        shared: &'t super::Shared,
    ) -> Result<Self, StoreError> {
        Ok(Reader {
            tx,
            shared,
            blobs: tx.open_table(BLOBS)?,
            data: tx.open_table(schema::LOOSE_DATA)?,
            metas: tx.open_table(schema::BLOB_META)?,
            traces: tx.open_table(schema::TRACES)?,
            trace_cache: HashMap::new(),
        })
    }

    /// The record of the message's blob.
    pub(super) fn blob(&self, rec: &MessageRecord) -> Result<BlobRecord, StoreError> {
        let v = self
            .blobs
            .get(&rec.blob)?
            .ok_or_else(|| StoreError::Corrupt("message without blob".into()))?;
        schema::decode(v.value())
    }

    /// The per-delivery prefix (empty when the message has no trace).
    pub(super) fn prefix(&mut self, rec: &MessageRecord) -> Result<Vec<u8>, StoreError> {
        let Some(id) = rec.trace else {
            return Ok(Vec::new());
        };
        if !self.trace_cache.contains_key(&id) {
            let t = schema::trace(&self.traces, id)?;
            self.trace_cache.insert(id, t);
        }
        Ok(prefix_of(
            self.trace_cache.get(&id),
            rec.envelope_from.as_deref(),
            rec.internal_date,
            &rec.blob,
        ))
    }

    /// The blob's stored structure (`mime::MessageMeta`, postcard), if it has one.
    pub(super) fn meta(
        &self,
        rec: &MessageRecord,
        brec: &BlobRecord,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        blob::load_meta(self.tx, &self.metas, self.shared, &rec.blob, brec)
    }

    /// The blob's bytes (the message without its prefix), whole or its header as
    /// `mime::analyze` finds it.
    pub(super) fn body(
        &self,
        rec: &MessageRecord,
        brec: &BlobRecord,
        extent: Extent,
    ) -> Result<Vec<u8>, StoreError> {
        blob::load(self.tx, &self.data, self.shared, &rec.blob, brec, extent)
    }

    /// The message as clients see it, prefix + blob; or its header, prefix + the blob's
    /// header (a packed message is not copied whole).
    pub(super) fn message(
        &mut self,
        rec: &MessageRecord,
        extent: Extent,
    ) -> Result<Vec<u8>, StoreError> {
        let brec = self.blob(rec)?;
        let prefix = self.prefix(rec)?;
        Ok(join(prefix, &self.body(rec, &brec, extent)?))
    }
}

/// `prefix` followed by `body`.
fn join(mut prefix: Vec<u8>, body: &[u8]) -> Vec<u8> {
    prefix.extend_from_slice(body);
    prefix
}

impl Store {
    /// Stores several copies in one transaction; each copy succeeds or fails on its own,
    /// unless the storage itself fails (then the outer error, and nothing is stored).
    pub async fn append_many(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Result<Appended, StoreError>>, StoreError> {
        self.write(move |tx, batch| {
            let mut out = Vec::with_capacity(requests.len());
            for req in &requests {
                match store_one(tx, batch, req) {
                    Err(e) if e.is_fault() => return Err(e),
                    r => out.push(r),
                }
            }
            Ok(out)
        })
        .await
    }

    /// Lists a mailbox's messages in UID order. The listing is shared: the sessions
    /// that have a mailbox selected all read it again after a change, and all but the
    /// first find it in [`Listings`].
    pub async fn messages(&self, mailbox: MailboxId) -> Result<Arc<Vec<MessageInfo>>, StoreError> {
        Ok(self.listing(mailbox).await?.0)
    }

    /// [`Store::messages`], with the mailbox's HIGHESTMODSEQ (at least 1) in the same
    /// state: every change up to it, and none after, is in the listing (RFC 7162 §3.1.2.1:
    /// what a client may be told it is up to date with).
    pub async fn listing(
        &self,
        mailbox: MailboxId,
    ) -> Result<(Arc<Vec<MessageInfo>>, ModSeq), StoreError> {
        self.read(move |tx, shared| {
            let Some(mb) = mailboxes::record_of(&tx.open_table(MAILBOXES)?, mailbox.0)? else {
                return Ok((Arc::default(), ModSeq(1)));
            };
            let key = ListingKey::of(&mb);
            let modseq = ModSeq(mb.highest_modseq.max(1));
            let listings = &shared.listings;
            if let Some(hit) = listings.get(mailbox.0, key) {
                return Ok((hit, modseq));
            }
            // The sessions a change wakes all ask at once: one reads, the others wait
            // for its listing (or, when it read another state, claim in turn).
            let _claim = loop {
                if let Some(claim) = listings.building.claim(mailbox.0) {
                    break claim;
                }
                if let Some(hit) = listings.get(mailbox.0, key) {
                    return Ok((hit, modseq));
                }
            };
            if let Some(hit) = listings.get(mailbox.0, key) {
                return Ok((hit, modseq));
            }
            let t = tx.open_table(MESSAGES)?;
            let mut out = Vec::new();
            for row in t.range((mailbox.0, 0)..=(mailbox.0, u32::MAX))? {
                let (k, v) = row?;
                out.push(MessageInfo::of(
                    Uid(k.value().1),
                    schema::decode(v.value())?,
                ));
            }
            let out = Arc::new(out);
            listings.keep(mailbox.0, key, &out);
            Ok((out, modseq))
        })
        .await
    }

    /// The dates and size of the messages of `mailbox` in the order of `uids`, in one
    /// read transaction: `None` for a message not (or no longer) in the mailbox.
    pub async fn listed(
        &self,
        mailbox: MailboxId,
        uids: Vec<Uid>,
    ) -> Result<Vec<Option<Listed>>, StoreError> {
        self.read(move |tx, _| {
            let t = tx.open_table(MESSAGES)?;
            let mut out = Vec::with_capacity(uids.len());
            for uid in uids {
                let rec = t.get((mailbox.0, uid.0))?;
                let rec: Option<MessageRecord> =
                    rec.map(|v| schema::decode(v.value())).transpose()?;
                out.push(rec.as_ref().map(Listed::of));
            }
            Ok(out)
        })
        .await
    }

    /// Reads messages of `mailbox` in the order of `uids`, in one read transaction (one
    /// trip to the blocking pool for a whole batch instead of one or two per message).
    /// Stops after the message that brings the bytes read (`raw` and `meta`) to
    /// `budget` or more, so a caller streaming a large reply holds about `budget` in
    /// memory; at least one message is read. Returns one entry per UID looked at, in
    /// order: `None` when that message is not (or no longer) in the mailbox.
    pub async fn load_messages(
        &self,
        mailbox: MailboxId,
        uids: Vec<Uid>,
        want: Want,
        budget: usize,
    ) -> Result<Vec<(Uid, Option<Loaded>)>, StoreError> {
        self.read(move |tx, shared| load_in(tx, shared, mailbox, &uids, want, budget))
            .await
    }

    /// The full bytes of one message as clients see them (prefix + blob).
    pub async fn message_bytes(
        &self,
        mailbox: MailboxId,
        uid: Uid,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let want = Want {
            meta: false,
            bytes: true,
            ..Want::default()
        };
        let got = self.load_messages(mailbox, vec![uid], want, 0).await?;
        Ok(got.into_iter().next().and_then(|(_, l)| l?.raw))
    }

    /// Removes messages by UID (UIDs not present are ignored). Returns how many went.
    pub async fn expunge(&self, mailbox: MailboxId, uids: Vec<Uid>) -> Result<u64, StoreError> {
        self.write(move |tx, batch| {
            super::imap::expunge_in(
                tx,
                batch,
                mailbox.0,
                &super::imap::sorted(uids),
                Origin::NONE,
            )
            .map(|gone| gone.len() as u64)
        })
        .await
    }

    /// Usage per user and mailbox, and the store's totals.
    pub async fn stats(&self, user: Option<String>) -> Result<Stats, StoreError> {
        let file_bytes = self.file_size();
        let allocated_bytes = self.allocated_size();
        self.read(move |tx, shared| {
            let users = tx.open_table(USERS)?;
            let boxes = tx.open_table(MAILBOXES)?;
            let msgs = tx.open_table(MESSAGES)?;
            let blobs = tx.open_table(BLOBS)?;
            let packs = tx.open_table(PACKS)?;
            // Compressed bytes per raw byte of each pack, to apportion packed blobs.
            let mut pack_ratio = std::collections::HashMap::new();
            let mut pack_stored = 0u64;
            for row in packs.iter()? {
                let (id, v) = row?;
                let p: PackRecord = schema::decode(v.value())?;
                pack_stored += p.stored_len;
                pack_ratio.insert(id.value(), p.stored_len as f64 / (p.raw_len.max(1) as f64));
            }
            let stored_of = |b: &BlobRecord| -> u64 {
                match b.location {
                    Location::Loose { .. } => b.stored_len,
                    Location::Packed { pack, meta_len, .. } => {
                        let ratio = pack_ratio.get(&pack).copied().unwrap_or(1.0);
                        ((b.raw_len + u64::from(meta_len)) as f64 * ratio) as u64
                    }
                }
            };
            let mut by_user: Vec<UserStats> = Vec::new();
            let mut ids: Vec<UserId> = Vec::new();
            for row in users.iter()? {
                let (name, v) = row?;
                if user.as_deref().is_some_and(|u| u != name.value()) {
                    continue;
                }
                let rec: UserRecord = schema::decode(v.value())?;
                ids.push(rec.id);
                by_user.push(UserStats {
                    name: rec.name,
                    ..Default::default()
                });
            }
            if let Some(u) = &user
                && by_user.is_empty()
            {
                log::debug!("stats: no user {u}");
                return Err(StoreError::NoSuchUser);
            }
            for row in boxes.iter()? {
                let (_, v) = row?;
                let mb: MailboxRecord = schema::decode(v.value())?;
                let Some(pos) = ids.iter().position(|id| *id == mb.user) else {
                    continue;
                };
                let mut ms = MailboxStats {
                    name: mb.name.clone(),
                    ..Default::default()
                };
                for row in msgs.range((mb.id, 0)..=(mb.id, u32::MAX))? {
                    let (_, v) = row?;
                    let m: MessageRecord = schema::decode(v.value())?;
                    ms.messages += 1;
                    ms.logical += m.size;
                    if let Some(b) = blobs.get(&m.blob)? {
                        let b: BlobRecord = schema::decode(b.value())?;
                        ms.physical += stored_of(&b) / u64::from(b.refs.max(1));
                    }
                }
                if let Some(us) = by_user.get_mut(pos) {
                    us.messages += ms.messages;
                    us.logical += ms.logical;
                    us.physical += ms.physical;
                    us.mailboxes.push(ms);
                }
            }
            for us in &mut by_user {
                us.mailboxes.sort_by(|a, b| a.name.cmp(&b.name));
            }
            let mut stats = Stats {
                users: by_user,
                file_bytes,
                allocated_bytes,
                ..Default::default()
            };
            for row in blobs.iter()? {
                let (_, v) = row?;
                let b: BlobRecord = schema::decode(v.value())?;
                stats.blobs += 1;
                stats.blob_raw += b.raw_len;
                if let Location::Loose { .. } = b.location {
                    stats.blob_stored += b.stored_len;
                }
            }
            stats.blob_stored += pack_stored;
            for row in tx.open_table(DICT_CHUNKS)?.iter()? {
                let (_, v) = row?;
                stats.dict_bytes += v.value().len() as u64;
            }
            (stats.index_bytes, stats.index_behind) = Store::index_size(tx)?;
            stats.index_mode = Some(shared.config.full_text_index);
            if shared.config.full_text_index == crate::config::FullTextIndex::Off {
                stats.index_behind = 0;
            }
            stats.tables = table_stats(tx)?;
            let in_pages: u64 = stats.tables.iter().map(|(_, _, pages)| pages).sum();
            stats.free_bytes = file_bytes.saturating_sub(in_pages);
            Ok(stats)
        })
        .await
    }

    /// Checks every committed page's checksum (used after crashes and by tests).
    pub async fn verify(&self) -> Result<bool, StoreError> {
        let shared = self.shared.clone();
        smol::unblock(move || shared.with_db_mut(|db| Ok(db.check_integrity()?))).await
    }
}

/// [`Store::load_messages`] in a read transaction the caller holds (the full-text
/// indexer reads this way on its own thread).
pub(crate) fn load_in(
    tx: &redb::ReadTransaction,
    shared: &super::Shared,
    mailbox: MailboxId,
    uids: &[Uid],
    want: Want,
    budget: usize,
) -> Result<Vec<(Uid, Option<Loaded>)>, StoreError> {
    let t = tx.open_table(MESSAGES)?;
    let mut reader = Reader::new(tx, shared)?;
    let mut out = Vec::with_capacity(uids.len());
    let mut bytes = 0usize;
    for &uid in uids {
        if bytes > 0 && bytes >= budget {
            break;
        }
        let Some(v) = t.get((mailbox.0, uid.0))? else {
            out.push((uid, None));
            continue;
        };
        let rec: MessageRecord = schema::decode(v.value())?;
        drop(v);
        let (mut meta, mut raw) = (None, None);
        if want.meta || want.bytes {
            let brec = reader.blob(&rec)?;
            let prefix = if want.skip_trace {
                Vec::new()
            } else {
                reader.prefix(&rec)?
            };
            let (mut need_bytes, mut header_only) = (want.bytes, want.header_only);
            if want.meta {
                let structure = match reader.meta(&rec, &brec)? {
                    Some(m) => {
                        bytes = bytes.saturating_add(m.len());
                        Structure::Stored(m)
                    }
                    None => {
                        // Parsing the structure takes the whole message.
                        need_bytes = true;
                        header_only = false;
                        Structure::Derive
                    }
                };
                meta = Some((structure, prefix.len()));
            }
            if need_bytes {
                let extent = if header_only {
                    Extent::Header
                } else {
                    Extent::Whole
                };
                let body = reader.body(&rec, &brec, extent)?;
                let whole = join(prefix, &body);
                bytes = bytes.saturating_add(whole.len());
                raw = Some(whole);
            }
        }
        let info = MessageInfo::of(uid, rec);
        out.push((uid, Some(Loaded { info, meta, raw })));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod listing_tests {
    use super::*;

    fn key(highest_modseq: u64) -> ListingKey {
        ListingKey {
            uidvalidity: 1,
            uidnext: 10,
            highest_modseq,
            messages: 3,
        }
    }

    #[test]
    fn a_listing_read_in_an_older_transaction_does_not_replace_a_newer_one() {
        let listings = Listings::default();
        let newer = Arc::new(Vec::new());
        listings.keep(5, key(8), &newer);
        listings.keep(5, key(7), &Arc::new(Vec::new()));
        assert!(Arc::ptr_eq(&listings.get(5, key(8)).unwrap(), &newer));
        assert!(listings.get(5, key(7)).is_none());
        // A newer one replaces it.
        listings.keep(5, key(9), &Arc::new(Vec::new()));
        assert!(listings.get(5, key(8)).is_none() && listings.get(5, key(9)).is_some());
    }
}
