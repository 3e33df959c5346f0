//! Every redb table and stored record, in one place, with the schema version.
//!
//! Records are serde structs encoded with postcard (compact, varint integers). A change to
//! any record's shape bumps [`SCHEMA_VERSION`] and adds a step to [`migrate`].

use crate::contracts::UserId;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// Version of the on-disk layout written by this build.
pub const SCHEMA_VERSION: u64 = 4;

/// A blob's content id: the first 128 bits of its BLAKE3 hash. Collisions are out of
/// reach (2^64 work for a birthday collision on purpose), and half the bytes of a full
/// hash in every message, blob and pack record.
pub type BlobId = [u8; 16];

/// The content id of `raw`.
pub fn blob_id(raw: &[u8]) -> BlobId {
    blake3::hash(raw)
        .as_bytes()
        .first_chunk::<16>()
        .copied()
        .unwrap_or_default()
}

/// Counters and settings: `schema_version`, `next_user_id`, `next_mailbox_id`,
/// `last_uidvalidity`, `active_dict`, `undicted_blobs`.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// User name (lower case) -> [`UserRecord`].
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Mailbox id -> [`MailboxRecord`].
pub const MAILBOXES: TableDefinition<u64, &[u8]> = TableDefinition::new("mailboxes");
/// (user id, mailbox name) -> mailbox id.
pub const MAILBOX_NAMES: TableDefinition<(u32, &str), u64> = TableDefinition::new("mailbox_names");
/// (mailbox id, UID) -> [`MessageRecord`].
pub const MESSAGES: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("messages");
/// (mailbox id, UID) -> the modseq at which it was expunged (RFC 7162 VANISHED).
pub const EXPUNGED: TableDefinition<(u64, u32), u64> = TableDefinition::new("expunged");
/// Content hash -> [`BlobRecord`] (reference count and sizes).
pub const BLOBS: TableDefinition<&BlobId, &[u8]> = TableDefinition::new("blobs");
/// Content hash -> the compressed bytes of a loose blob, up to schema 3. The upgrade to 4
/// moves them to [`LOOSE_DATA`] and leaves this table empty.
pub const BLOB_DATA: TableDefinition<&BlobId, &[u8]> = TableDefinition::new("blob_data");
/// Arrival sequence (as in [`LOOSE`]) -> the compressed bytes of a blob stored loose.
/// Keyed by arrival, not by content hash: deliveries append at the right edge of the tree
/// (redb then leaves full leaves behind) and the packer removes from the left edge, so a
/// pack's commit frees whole pages instead of copying nearly every leaf of a table keyed
/// by random hashes, and a burst leaves far fewer pages waiting to be reused.
pub const LOOSE_DATA: TableDefinition<u64, &[u8]> = TableDefinition::new("loose_data");
/// Content hash -> the parsed structure FETCH needs (`mime::MessageMeta`, postcard), as
/// schema 2 kept it for loose blobs. Schema 3 keeps no structure: it is parsed from the
/// message when read (`store::Structure::Derive`); rows written before are still used.
pub const BLOB_META: TableDefinition<&BlobId, &[u8]> = TableDefinition::new("blob_meta");
/// Arrival sequence -> hash of a blob stored loose (not yet in a pack), oldest first.
pub const LOOSE: TableDefinition<u64, &BlobId> = TableDefinition::new("loose");
/// Pack id -> [`PackRecord`].
pub const PACKS: TableDefinition<u64, &[u8]> = TableDefinition::new("packs");
/// (pack id, chunk number) -> up to [`PACK_CHUNK`] bytes of the compressed pack. Chunks of
/// one page each: redb rounds values larger than a page up to power-of-two page runs, and
/// a value that fills a page alone wastes almost nothing.
pub const PACK_CHUNKS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("pack_chunks");
/// Size of a pack chunk: a 4 KiB page less the leaf's header and offsets.
pub const PACK_CHUNK: usize = 4000;
/// Dictionary id -> zstd dictionary bytes, in schema 2. The upgrade to 3 moves them to
/// [`DICT_CHUNKS`] and leaves this table empty.
pub const DICTS: TableDefinition<u32, &[u8]> = TableDefinition::new("dicts");
/// (dictionary id, chunk number) -> up to [`PACK_CHUNK`] bytes of a zstd dictionary.
/// Page-sized chunks like packs: one 64 KiB value takes a 16-page run, and redb's
/// compaction stops at the first page it cannot move lower, so such a run near the end of
/// the file kept everything before it from being reclaimed (measured: files 10-35% larger
/// than their pages after `compact`).
pub const DICT_CHUNKS: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("dict_chunks");
/// Trace id -> [`TraceRecord`]: the per-delivery facts that repeat across messages (the
/// same recipient, client and host name), stored once. Never deleted: a store sees few
/// distinct combinations.
pub const TRACES: TableDefinition<u32, &[u8]> = TableDefinition::new("traces");
/// Encoded [`TraceRecord`] -> its id in [`TRACES`].
pub const TRACE_IDS: TableDefinition<&[u8], u32> = TableDefinition::new("trace_ids");
/// (user id, mailbox name) subscribed without a mailbox of that name (IMAP SUBSCRIBE of
/// a name that does not exist, or a deleted subscribed mailbox; RFC 9051 §6.3.7).
/// Subscriptions of existing mailboxes live in [`MailboxRecord::subscribed`]. A new
/// table, not a record change: `migrate` creates it in stores of this version.
pub const SUBSCRIPTIONS: TableDefinition<(u32, &str), ()> = TableDefinition::new("subscriptions");

/// The keys of one user's rows in the tables keyed by (user, name): `MAILBOX_NAMES`,
/// `SUBSCRIPTIONS`, `SIEVE_SCRIPTS`. Every name sorts at or after `""`.
pub fn user_names(user: UserId) -> std::ops::Range<(u32, &'static str)> {
    (user.0, "")..(user.0.saturating_add(1), "")
}

/// (mailbox id, UID) -> the POP3 UIDL a message keeps from the server it was moved from
/// (`nestbox import --dovecot`), shown instead of the UIDL nestbox computes so that POP3
/// clients do not download it again (docs/decisions.md). Rows go with their message. A
/// new table, not a record change: `migrate` creates it in stores of this version.
pub const POP3_UIDLS: TableDefinition<(u64, u32), &str> = TableDefinition::new("pop3_uidls");

/// The full-text index (`store::fts`): per mailbox, segments keyed by the first UID they
/// hold (high 32 bits) and a generation (low 32 bits, never reused, so a cached
/// segment stays valid under its key), then the chunk number: the chunks, at most
/// [`PACK_CHUNK`] bytes each, make a zstd-compressed `fts::Segment`.
pub const FTS_SEGMENTS: TableDefinition<(u64, u64, u32), &[u8]> =
    TableDefinition::new("fts_segments");
/// Per mailbox, `fts::MailboxIndex`: the highest UID the index has read (every message
/// of the mailbox at or below it is in a segment, those above it not yet) and the list
/// of its segments.
pub const FTS_MAILBOXES: TableDefinition<u64, &[u8]> = TableDefinition::new("fts_mailboxes");

/// (user id, mailbox id, entry name) -> value: IMAP METADATA annotations (RFC 5464).
/// Mailbox id 0 (never a mailbox's: ids start at 1) holds the user's server entries.
/// Entry names are stored lower-cased (§3.2: they are case-insensitive). Keyed by
/// mailbox id, so entries follow a RENAME by themselves; DELETE removes them (§4.1).
/// A new table, not a record change: `migrate` creates it in stores of this version.
pub const METADATA: TableDefinition<(u32, u64, &str), &[u8]> = TableDefinition::new("metadata");

pub use crate::contracts::SystemFlags;

/// A special-use attribute (RFC 6154).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpecialUse {
    Drafts,
    Sent,
    Trash,
    Junk,
    Archive,
    All,
    Flagged,
}

impl SpecialUse {
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::All => "\\All",
            SpecialUse::Flagged => "\\Flagged",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppPassword {
    pub label: String,
    pub hash: String,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: UserId,
    pub name: String,
    /// argon2id in PHC string form.
    pub password_hash: String,
    pub created: i64,
    pub app_passwords: Vec<AppPassword>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailboxRecord {
    pub id: u64,
    pub user: UserId,
    pub name: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    /// RFC 7162: starts at 1 so an empty mailbox never reports 0 (client quirk Q16).
    pub highest_modseq: u64,
    pub subscribed: bool,
    pub special_use: Option<SpecialUse>,
    /// Kept up to date on every append and expunge, for STATUS and stats.
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub blob: BlobId,
    /// Per-delivery trace headers (Return-Path, Delivered-To, Received) kept apart from the
    /// shared blob so that one message to many recipients is stored once. The message a
    /// client sees is `trace.render(..) + blob` (the *prefix*). The facts that repeat from
    /// one delivery to the next (recipient, client, our name) are interned in [`TRACES`];
    /// this is their id there.
    pub trace: Option<u32>,
    pub flags: SystemFlags,
    pub keywords: Vec<String>,
    /// Unix seconds (IMAP INTERNALDATE).
    pub internal_date: i64,
    /// Unix seconds (RFC 8514 SAVEDATE).
    pub save_date: i64,
    /// Octets as a client receives them: prefix + blob, CRLF line ends.
    pub size: u64,
    pub modseq: u64,
    /// When POP3 first retrieved the whole message (unix seconds).
    pub pop3_retrieved: Option<i64>,
    /// The envelope sender, when the message came with one (LMTP, deliver, mbox From_).
    pub envelope_from: Option<String>,
}

/// Where a blob's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Location {
    /// Compressed alone in `LOOSE_DATA` (its structure in `BLOB_META` if schema 2 wrote
    /// it); `seq` is its key in `LOOSE`.
    Loose { seq: u64 },
    /// Inside pack `pack`: the raw message at `offset`, then `meta_len` bytes of structure.
    Packed {
        pack: u64,
        offset: u64,
        meta_len: u32,
    },
}

/// The facts behind a message's trace headers (Return-Path, Delivered-To, Received),
/// which [`TraceRecord::render`] turns into the same bytes every time. Storing the facts
/// (~40 bytes) instead of the text (~230 bytes) keeps the message table small; the date is
/// the message's internal date and the id a hash, so nothing random is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Rendering format; only 1 exists. A new format gets a new number, old ones stay.
    pub format: u8,
    /// "LMTP" or "local".
    pub protocol: String,
    /// The recipient address as given (Delivered-To, `for <...>`).
    pub delivered_to: String,
    /// The client's LHLO name and address.
    pub helo: Option<String>,
    pub peer: Option<String>,
    /// Our host name at delivery time.
    pub by: String,
}

impl TraceRecord {
    /// The trace header block for a message with this envelope sender, internal date and
    /// blob (RFC 5321 §4.4). Return-Path comes first and only when there was a sender.
    pub fn render(&self, envelope_from: Option<&str>, date: i64, blob: &BlobId) -> Vec<u8> {
        let mut h = blake3::Hasher::new();
        h.update(blob);
        h.update(self.delivered_to.as_bytes());
        h.update(&date.to_le_bytes());
        let id = h.finalize();
        let id = id.as_bytes().get(..8).map(hex8).unwrap_or_default();
        let mut p = String::with_capacity(256);
        if let Some(from) = envelope_from {
            p.push_str("Return-Path: <");
            p.push_str(from);
            p.push_str(">\r\n");
        }
        p.push_str("Delivered-To: ");
        p.push_str(&self.delivered_to);
        p.push_str("\r\nReceived: ");
        if let Some(helo) = &self.helo {
            p.push_str("from ");
            p.push_str(helo);
            if let Some(peer) = &self.peer {
                p.push_str(" (");
                p.push_str(peer);
                p.push(')');
            }
            p.push_str("\r\n\t");
        }
        p.push_str(&format!(
            "by {} (nestbox) with {} id {id}\r\n\tfor <{}>; {}\r\n",
            self.by,
            self.protocol,
            self.delivered_to,
            crate::util::rfc5322_date(date)
        ));
        p.into_bytes()
    }
}

fn hex8(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        for nibble in [x >> 4, x & 15] {
            s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub refs: u32,
    /// Dictionary of a loose blob; 0 = none.
    pub dict: u32,
    pub raw_len: u64,
    /// Compressed size of a loose blob; 0 when packed (the pack records its size).
    pub stored_len: u64,
    pub location: Location,
}

/// A pack: many blobs (raw bytes and structure) compressed together, which compresses far
/// better than each message alone (similar headers across messages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackRecord {
    /// Uncompressed length.
    pub raw_len: u64,
    /// Bytes of it still referenced (raw + structure of live blobs).
    pub live: u64,
    pub stored_len: u64,
    pub dict: u32,
    pub chunks: u32,
    /// The blobs inside that are still live.
    pub items: Vec<BlobId>,
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value).map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

/// The id of `trace` in [`TRACES`], adding it when new.
pub fn intern_trace(tx: &WriteTransaction, trace: &TraceRecord) -> Result<u32, StoreError> {
    let key = encode(trace)?;
    let mut ids = tx.open_table(TRACE_IDS)?;
    if let Some(id) = ids.get(key.as_slice())? {
        return Ok(id.value());
    }
    let mut traces = tx.open_table(TRACES)?;
    let id = match traces.last()? {
        Some((k, _)) => k
            .value()
            .checked_add(1)
            .ok_or_else(|| StoreError::Storage("trace ids exhausted".into()))?,
        None => 1,
    };
    traces.insert(id, key.as_slice())?;
    ids.insert(key.as_slice(), id)?;
    Ok(id)
}

/// The trace facts with id `id`.
pub fn trace(
    traces: &impl ReadableTable<u32, &'static [u8]>,
    id: u32,
) -> Result<TraceRecord, StoreError> {
    record(traces, id, "trace")
}

/// The record under the number `key` of `table`, decoded; `Corrupt` when there is none
/// (`what` names the record in the error).
pub fn record<K, T>(
    table: &impl ReadableTable<K, &'static [u8]>,
    key: K,
    what: &str,
) -> Result<T, StoreError>
where
    K: redb::Key
        + for<'a> std::borrow::Borrow<K::SelfType<'a>>
        + std::fmt::Display
        + Copy
        + 'static,
    T: for<'a> Deserialize<'a>,
{
    let missing = || StoreError::Corrupt(format!("missing {what} {key}"));
    let v = table.get(key)?.ok_or_else(missing)?;
    decode(v.value())
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("decode: {e}")))
}

/// Schema 2 -> 3: dictionaries move into page-sized chunks ([`DICT_CHUNKS`]). Nothing
/// else is rewritten: schema 3 also lets a pack hold messages without their structure
/// (`Location::Packed` with `meta_len` 0), which a schema 2 build could not read, hence
/// the new version.
fn upgrade_2_to_3(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut dicts = tx.open_table(DICTS)?;
    let mut all = Vec::new();
    for row in dicts.iter()? {
        let (id, bytes) = row?;
        all.push((id.value(), bytes.value().to_vec()));
    }
    for (id, bytes) in &all {
        put_dictionary(tx, *id, bytes)?;
        dicts.remove(*id)?;
    }
    Ok(())
}

/// Stores dictionary `id` in [`DICT_CHUNKS`].
pub fn put_dictionary(tx: &WriteTransaction, id: u32, bytes: &[u8]) -> Result<(), StoreError> {
    let mut t = tx.open_table(DICT_CHUNKS)?;
    for (n, chunk) in bytes.chunks(PACK_CHUNK).enumerate() {
        let n = u32::try_from(n).map_err(|_| StoreError::Corrupt("dictionary size".into()))?;
        t.insert((id, n), chunk)?;
    }
    Ok(())
}

/// Every dictionary in [`DICT_CHUNKS`], by id, reassembled.
pub fn dictionaries(
    t: &impl ReadableTable<(u32, u32), &'static [u8]>,
) -> Result<std::collections::BTreeMap<u32, Vec<u8>>, StoreError> {
    let mut out: std::collections::BTreeMap<u32, Vec<u8>> = std::collections::BTreeMap::new();
    for row in t.iter()? {
        let (k, v) = row?;
        out.entry(k.value().0)
            .or_default()
            .extend_from_slice(v.value());
    }
    Ok(out)
}

/// Creates every table, writes the version on a new store, and upgrades an old one.
/// A store written by a newer build is refused rather than misread.
/// Schema 3 -> 4: the bytes of loose blobs move from [`BLOB_DATA`] (keyed by hash) to
/// [`LOOSE_DATA`] (keyed by their arrival sequence). Rows no loose blob names are dropped
/// (none exist in a store `verify` passes).
fn upgrade_3_to_4(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut old = tx.open_table(BLOB_DATA)?;
    let blobs = tx.open_table(BLOBS)?;
    let mut new = tx.open_table(LOOSE_DATA)?;
    while let Some((hash, bytes)) = old.pop_first()? {
        let hash = *hash.value();
        let rec = blobs
            .get(&hash)?
            .map(|v| decode::<BlobRecord>(v.value()))
            .transpose()?;
        if let Some(BlobRecord {
            location: Location::Loose { seq },
            ..
        }) = rec
        {
            new.insert(seq, bytes.value())?;
        }
    }
    Ok(())
}

pub fn migrate(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut meta = tx.open_table(META)?;
    let version = meta.get("schema_version")?.map(|v| v.value());
    match version {
        None => {
            meta.insert("schema_version", SCHEMA_VERSION)?;
            meta.insert("next_user_id", 1)?;
            meta.insert("next_mailbox_id", 1)?;
        }
        Some(SCHEMA_VERSION) => {}
        // Version 1 (32-byte content ids, trace facts inline) existed only before the
        // first release; there is no upgrade step (docs/decisions.md).
        Some(1) => {
            return Err(StoreError::Corrupt(
                "the store has schema version 1, written by a pre-release build; export its \
                 mail with that build (`nestbox export`) and import it into a new data dir"
                    .into(),
            ));
        }
        // One step per version.
        Some(2) => {
            upgrade_2_to_3(tx)?;
            upgrade_3_to_4(tx)?;
            meta.insert("schema_version", SCHEMA_VERSION)?;
        }
        Some(3) => {
            upgrade_3_to_4(tx)?;
            meta.insert("schema_version", SCHEMA_VERSION)?;
        }
        Some(v) if v > SCHEMA_VERSION => {
            return Err(StoreError::Corrupt(format!(
                "the store has schema version {v}; this build reads up to {SCHEMA_VERSION}"
            )));
        }
        Some(v) => {
            return Err(StoreError::Corrupt(format!(
                "no migration from schema version {v}"
            )));
        }
    }
    drop(meta);
    tx.open_table(USERS)?;
    tx.open_table(MAILBOXES)?;
    tx.open_table(MAILBOX_NAMES)?;
    tx.open_table(MESSAGES)?;
    tx.open_table(EXPUNGED)?;
    tx.open_table(BLOBS)?;
    tx.open_table(BLOB_DATA)?;
    tx.open_table(LOOSE_DATA)?;
    tx.open_table(BLOB_META)?;
    tx.open_table(DICTS)?;
    tx.open_table(DICT_CHUNKS)?;
    tx.open_table(LOOSE)?;
    tx.open_table(PACKS)?;
    tx.open_table(PACK_CHUNKS)?;
    tx.open_table(SUBSCRIPTIONS)?;
    tx.open_table(POP3_UIDLS)?;
    tx.open_table(FTS_SEGMENTS)?;
    tx.open_table(FTS_MAILBOXES)?;
    tx.open_table(METADATA)?;
    tx.open_table(TRACES)?;
    tx.open_table(TRACE_IDS)?;
    // New tables, not record changes: created in stores of this version too.
    tx.open_table(super::sieve::SIEVE_SCRIPTS)?;
    tx.open_table(super::sieve::SIEVE_STATE)?;
    Ok(())
}
