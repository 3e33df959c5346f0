//! Packs: many blobs compressed together.
//!
//! A message is first stored *loose* (compressed alone), so delivery stays cheap and
//! acknowledgements fast. Once at least [`PACK_TRIGGER`] bytes are loose, a background
//! thread takes the oldest loose blobs, concatenates each one's raw bytes and parsed
//! structure into a pack of about [`PACK_RAW`] bytes, compresses it with the store's
//! dictionary, and stores it as page-sized chunks; the blobs' records then point into the
//! pack and their loose copies are deleted, all in one group-committed transaction.
//!
//! Why: on real mail (the benchmark corpus), 512 KiB packs compress to about 0.215 of the
//! raw size against 0.30 for single messages with the same dictionary (0.228 at 128 KiB;
//! 1 MiB packs at level 15, the default `store.pack_level`, 0.205 at about four times the
//! CPU of level 9 — background CPU, spent when deliveries pause), and page-sized chunks
//! avoid redb's rounding of large values to power-of-two page runs. Reading a message
//! decompresses its pack (about 2 ms for 1 MiB); the last few packs stay in memory.
//!
//! The *tail*: mail that arrived since the last full pack. Once deliveries have paused for
//! [`TAIL_QUIET_MS`] and at least [`TAIL_MIN`] bytes are loose, they are packed too, into
//! a pack smaller than [`PACK_RAW`], remembered as the tail pack (`META` `tail_pack`). The
//! next pack absorbs the tail pack's live blobs first, so at most one small pack exists and
//! a trickle of mail is recompressed in bounded steps (at most [`PACK_RAW`] per pack).
//!
//! Deleting a packed blob only lowers its pack's live count. A pack whose live bytes fall
//! under two thirds is unpacked: its live blobs go back to loose, and the packer packs them
//! again with newer mail; an empty pack is deleted at once. (Under half, as it was, left
//! the packs of a day's mail at about 0.55 live for as long as the rest was kept, when
//! junk and POP3-downloaded mail went the same day: docs/decisions.md, "Steady churn".)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::claims::Claims;
use super::schema::BlobId;
use super::schema::{
    self, BLOB_META, BLOBS, BlobRecord, LOOSE, LOOSE_DATA, Location, META, PACK_CHUNK, PACK_CHUNKS,
    PACKS, PackRecord,
};
use super::writer::Writer;
use super::{Shared, StoreError};

/// Raw bytes per pack (messages and their structure).
pub const PACK_RAW: u64 = 1024 * 1024;
/// Loose bytes that start the packer.
pub const PACK_TRIGGER: u64 = PACK_RAW;
/// Packing waits until the writer has been quiet this long, so that it runs between
/// bursts of deliveries instead of competing with them for CPU...
const QUIET_MS: u64 = 500;
/// ...unless this much is waiting loose: then packs are made at once, at no more than
/// [`FORCED_LEVEL`].
const LOOSE_MAX: u64 = 2 << 20;
/// The highest level of a forced pack: zstd level 9 compresses a 1 MiB pack with the
/// dictionary at about 50 MB/s on the benchmark machine, well ahead of delivery, and
/// within 0.01 of level 15's ratio on the corpus.
const FORCED_LEVEL: i32 = 9;
/// The tail is packed once deliveries have paused this long...
pub const TAIL_QUIET_MS: u64 = 2000;
/// ...and at least this much is loose.
const TAIL_MIN: u64 = 32 * 1024;
/// Compaction after packing waits for the writer to be quiet this long.
const SETTLE_QUIET_MS: u64 = 3000;
/// `META` key: the pack holding the tail (smaller than [`PACK_RAW`]), absorbed by the next.
const TAIL_PACK: &str = "tail_pack";
/// Decompressed packs kept in memory (sequential FETCHes read neighbours).
const CACHE: usize = 4;
/// Most messages in one pack. Its record lists their content ids (16 bytes each), and a
/// record larger than a page would take a two-page run, which, like any value of more than
/// one page, can stop redb's compaction (see `schema::DICT_CHUNKS`). 240 ids and the
/// record's sizes fit one 4 KiB leaf; packs of small messages stay under [`PACK_RAW`].
pub(crate) const MAX_ITEMS: usize = 240;

/// A small cache of decompressed packs, most recently used first, and the buffer of the
/// last one it let go, for the next pack to be decompressed into: a SEARCH or FETCH over a
/// large mailbox decompresses one pack after another, and a fresh 1 MiB block for each
/// left the allocator's heap fragmented, holding several MiB more until the next trim.
///
/// A pack is decompressed by one reader at a time: a second reader of the same pack
/// waits for the first and takes its copy from the cache. Sessions that read the same
/// mail at once (ten POP3 users of a household's shared delivery, a client's several
/// IMAP connections) each decompressed their own 1 MiB copy before, and all but one
/// were thrown away: CPU spent twice and freed blocks left in the allocator's heaps.
#[derive(Default)]
pub struct PackCache {
    packs: Mutex<VecDeque<Cached>>,
    spare: Mutex<Option<Vec<u8>>>,
    /// The packs being decompressed now.
    loading: Claims<u64>,
    /// Packs decompressed for readers since the store opened (`/metrics`).
    decompressed: AtomicU64,
}

/// One decompressed pack in the [`PackCache`] and when it was last read.
struct Cached {
    id: u64,
    bytes: Arc<Vec<u8>>,
    used: Instant,
}

impl PackCache {
    fn get(&self, id: u64) -> Option<Arc<Vec<u8>>> {
        let mut packs = self.packs.lock().ok()?;
        let entry = packs.iter_mut().find(|c| c.id == id)?;
        entry.used = Instant::now();
        Some(entry.bytes.clone())
    }

    fn put(&self, id: u64, bytes: Arc<Vec<u8>>) {
        let evicted = match self.packs.lock() {
            Ok(mut packs) => {
                packs.retain(|c| c.id != id);
                let evicted = if packs.len() >= CACHE {
                    packs.pop_back()
                } else {
                    None
                };
                let used = Instant::now();
                packs.push_front(Cached { id, bytes, used });
                evicted
            }
            Err(_) => None,
        };
        // Kept for the next pack unless a reader still holds it.
        if let Some(Ok(buf)) = evicted.map(|c| Arc::try_unwrap(c.bytes))
            && let Ok(mut spare) = self.spare.lock()
        {
            *spare = Some(buf);
        }
    }

    /// An emptied buffer to decompress the next pack into (see [`PackCache`]).
    fn take_spare(&self) -> Vec<u8> {
        self.spare
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .unwrap_or_default()
    }

    /// Drops the packs not read for `idle`, and the spare buffer: up to 5 MiB a quiet
    /// server need not hold.
    pub(crate) fn drop_unused(&self, idle: Duration) {
        if let Ok(mut packs) = self.packs.lock() {
            packs.retain(|c| c.used.elapsed() < idle);
        }
        if let Ok(mut spare) = self.spare.lock() {
            *spare = None;
        }
    }

    /// Packs of several messages decompressed for readers, that is reads the cache did
    /// not answer.
    pub(crate) fn decompressed(&self) -> u64 {
        self.decompressed.load(Ordering::Relaxed)
    }

    fn forget(&self, id: u64) {
        if let Ok(mut packs) = self.packs.lock() {
            packs.retain(|c| c.id != id);
        }
    }
}

fn pack_record(
    packs: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<PackRecord, StoreError> {
    schema::record(packs, id, "pack")
}

/// What [`load_shared`] found: the decompressed bytes of a pack of several messages, or
/// the record of a message packed alone (read once, for the caller to decompress what it
/// needs).
pub(crate) enum Loaded {
    Shared(Arc<Vec<u8>>),
    Alone(PackRecord),
}

/// The decompressed bytes of a pack. A pack of several messages is kept in the cache
/// (FETCH and SEARCH read neighbours in turn); a message packed alone is not: it is read
/// once per FETCH anyway, and keeping it would push the packs of its neighbours out.
pub(crate) fn load(
    tx: &ReadTransaction,
    shared: &Shared,
    id: u64,
) -> Result<Arc<Vec<u8>>, StoreError> {
    match load_shared(tx, shared, id)? {
        Loaded::Shared(bytes) => Ok(bytes),
        Loaded::Alone(rec) => Ok(Arc::new(decompress(tx, shared, id, &rec)?)),
    }
}

/// The decompressed bytes of a pack of several messages, from the cache or read into it;
/// for a message packed alone, its record.
pub(crate) fn load_shared(
    tx: &ReadTransaction,
    shared: &Shared,
    id: u64,
) -> Result<Loaded, StoreError> {
    let cache = &shared.codec.packs;
    if let Some(b) = cache.get(id) {
        return Ok(Loaded::Shared(b));
    }
    let rec = pack_record(&tx.open_table(PACKS)?, id)?;
    if is_alone(&rec) {
        return Ok(Loaded::Alone(rec));
    }
    let _claim = loop {
        if let Some(claim) = cache.loading.claim(id) {
            break claim;
        }
        if let Some(b) = cache.get(id) {
            return Ok(Loaded::Shared(b));
        }
    };
    // Another reader may have put it in between the first look and the claim.
    if let Some(b) = cache.get(id) {
        return Ok(Loaded::Shared(b));
    }
    let stored = stored_bytes(tx, id, &rec)?;
    cache.decompressed.fetch_add(1, Ordering::Relaxed);
    let buf = cache.take_spare();
    let bytes = shared
        .codec
        .decompress_into(rec.dict, &stored, rec.raw_len, buf)?;
    let bytes = Arc::new(bytes);
    cache.put(id, bytes.clone());
    Ok(Loaded::Shared(bytes))
}

/// Whether a pack is one message and nothing else (packed alone, or a tail of one):
/// its message starts at offset 0. A pack of several with one left live is not: the
/// message may be anywhere in it.
fn is_alone(rec: &PackRecord) -> bool {
    rec.items.len() == 1 && rec.live == rec.raw_len
}

/// The header of the message packed alone as pack `id` (record `rec`, the message
/// `raw_len` bytes), decompressing only its start.
pub(crate) fn load_alone_header(
    tx: &ReadTransaction,
    shared: &Shared,
    id: u64,
    rec: &PackRecord,
    raw_len: u64,
) -> Result<Vec<u8>, StoreError> {
    let stored = stored_bytes(tx, id, rec)?;
    shared
        .codec
        .decompress_header(rec.dict, &stored, raw_len.min(rec.raw_len))
}

/// The decompressed bytes of a pack, read from the store (`verify` reads every pack once
/// and keeps them out of the cache FETCH uses).
pub(crate) fn load_uncached(
    tx: &ReadTransaction,
    shared: &Shared,
    id: u64,
) -> Result<Vec<u8>, StoreError> {
    let rec = pack_record(&tx.open_table(PACKS)?, id)?;
    decompress(tx, shared, id, &rec)
}

fn decompress(
    tx: &ReadTransaction,
    shared: &Shared,
    id: u64,
    rec: &PackRecord,
) -> Result<Vec<u8>, StoreError> {
    let stored = stored_bytes(tx, id, rec)?;
    shared.codec.decompress_with(rec.dict, &stored, rec.raw_len)
}

/// The compressed bytes of pack `id`, joined from their chunks.
fn stored_bytes(tx: &ReadTransaction, id: u64, rec: &PackRecord) -> Result<Vec<u8>, StoreError> {
    let chunks = tx.open_table(PACK_CHUNKS)?;
    let mut stored = Vec::with_capacity(usize::try_from(rec.stored_len).unwrap_or(0));
    for row in chunks.range((id, 0)..(id, rec.chunks))? {
        let (_, v) = row?;
        stored.extend_from_slice(v.value());
    }
    if stored.len() as u64 != rec.stored_len {
        return Err(StoreError::Corrupt(format!("pack {id} is incomplete")));
    }
    Ok(stored)
}

/// `hash`'s record, with its offset and structure length, while it is still stored in
/// pack `id` (`None` once it is freed or has moved out).
fn still_packed_in(
    blobs: &impl ReadableTable<&'static BlobId, &'static [u8]>,
    hash: &BlobId,
    id: u64,
) -> Result<Option<(BlobRecord, u64, u32)>, StoreError> {
    let Some(v) = blobs.get(hash)? else {
        return Ok(None);
    };
    let rec: BlobRecord = schema::decode(v.value())?;
    Ok(match rec.location {
        Location::Packed {
            pack,
            offset,
            meta_len,
        } if pack == id => Some((rec, offset, meta_len)),
        _ => None,
    })
}

/// The raw message and structure of the item at `offset` in the decompressed pack `id`.
fn item_bytes(
    bytes: &[u8],
    id: u64,
    offset: u64,
    raw_len: u64,
    meta_len: u32,
) -> Result<(&[u8], &[u8]), StoreError> {
    let too_short = || StoreError::Corrupt(format!("pack {id} is too short"));
    let start = usize::try_from(offset).map_err(|_| too_short())?;
    let mid = start
        .checked_add(usize::try_from(raw_len).map_err(|_| too_short())?)
        .ok_or_else(too_short)?;
    let end = mid.checked_add(meta_len as usize).ok_or_else(too_short)?;
    match (bytes.get(start..mid), bytes.get(mid..end)) {
        (Some(raw), Some(meta)) => Ok((raw, meta)),
        _ => Err(too_short()),
    }
}

fn delete_pack(tx: &WriteTransaction, id: u64, chunks: u32) -> Result<(), StoreError> {
    tx.open_table(PACKS)?.remove(id)?;
    let mut t = tx.open_table(PACK_CHUNKS)?;
    for n in 0..chunks {
        t.remove((id, n))?;
    }
    Ok(())
}

fn next_pack_id(tx: &WriteTransaction) -> Result<u64, StoreError> {
    let mut meta = tx.open_table(META)?;
    let id = meta.get("next_pack_id")?.map(|v| v.value()).unwrap_or(1);
    meta.insert("next_pack_id", id + 1)?;
    Ok(id)
}

/// Stores the compressed bytes of pack `id` as page-sized chunks; returns their number.
fn put_chunks(tx: &WriteTransaction, id: u64, compressed: &[u8]) -> Result<u32, StoreError> {
    let mut t = tx.open_table(PACK_CHUNKS)?;
    let mut n = 0u32;
    for chunk in compressed.chunks(PACK_CHUNK) {
        t.insert((id, n), chunk)?;
        n = n
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt("pack size".into()))?;
    }
    Ok(n)
}

/// Stores one blob's compressed bytes (made with dictionary `dict`) as a pack of its own
/// and returns its id (see `blob::place`). It is never the tail and never absorbed: it
/// only goes when its blob does.
pub(crate) fn put_alone(
    tx: &WriteTransaction,
    hash: &BlobId,
    raw_len: u64,
    dict: u32,
    compressed: &[u8],
) -> Result<u64, StoreError> {
    let id = next_pack_id(tx)?;
    let chunks = put_chunks(tx, id, compressed)?;
    let rec = PackRecord {
        raw_len,
        live: raw_len,
        stored_len: compressed.len() as u64,
        dict,
        chunks,
        items: vec![*hash],
    };
    tx.open_table(PACKS)?
        .insert(id, schema::encode(&rec)?.as_slice())?;
    Ok(id)
}

/// A packed blob lost its last reference: `len` bytes of pack `id` are dead.
pub(crate) fn drop_item(
    tx: &WriteTransaction,
    id: u64,
    hash: &BlobId,
    len: u64,
) -> Result<(), StoreError> {
    let mut rec = pack_record(&tx.open_table(PACKS)?, id)?;
    rec.live = rec.live.saturating_sub(len);
    rec.items.retain(|h| h != hash);
    if rec.items.is_empty() {
        delete_pack(tx, id, rec.chunks)?;
    } else {
        tx.open_table(PACKS)?
            .insert(id, schema::encode(&rec)?.as_slice())?;
    }
    Ok(())
}

/// Starts the packer thread when enough is loose and none is running. Until the first
/// dictionary is trained the packer waits for it, unless [`LOOSE_MAX`] is loose: a burst
/// into a new store must not pile up mail compressed alone without a dictionary (about
/// 0.45 of its size) while training runs; those first packs go without one.
pub(crate) fn maybe_pack(shared: &Arc<Shared>, writer: &Writer) {
    let codec = &shared.codec;
    if !codec.trained.load(Ordering::SeqCst) && loose_bytes(shared).unwrap_or(0) < LOOSE_MAX {
        return;
    }
    let writer = writer.clone();
    super::blob::spawn_exclusive(
        shared,
        |c| &c.packing,
        "store-pack",
        move |shared| {
            if let Err(e) = run(shared, &writer) {
                log::warn!("store: packing stopped: {e}");
            }
        },
    );
}

impl super::Store {
    /// Waits until what is loose has been packed: for `nestbox import` with no server
    /// running, which would otherwise leave the imported mail compressed one message at
    /// a time (about 0.55 of an mbox on disk instead of 0.22) until a server packs it.
    /// Returns at once when nothing will pack (no dictionary, none being trained), and
    /// when the loose total has not fallen for 30 s. Blocking.
    pub fn finish_packing(&self) {
        let shared = &self.shared;
        let codec = &shared.codec;
        let mut last = (u64::MAX, std::time::Instant::now());
        loop {
            let loose = loose_bytes(shared).unwrap_or(0);
            let busy = codec.packing.load(Ordering::SeqCst);
            if !busy && loose < TAIL_MIN {
                return;
            }
            if !codec.trained.load(Ordering::SeqCst) && !codec.training.load(Ordering::SeqCst) {
                return;
            }
            if loose < last.0 {
                last = (loose, std::time::Instant::now());
            } else if last.1.elapsed() > std::time::Duration::from_secs(30) {
                log::warn!("store: packing made no progress for 30 s; {loose} bytes left loose");
                return;
            }
            if !busy {
                maybe_pack(shared, &self.writer);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// The packer thread: [`run_until_done`], then frees the compression contexts it made.
fn run(shared: &Arc<Shared>, writer: &Writer) -> Result<(), StoreError> {
    let out = run_until_done(shared, writer);
    shared.codec.drop_pack_contexts();
    out
}

/// Unpacks what is sparse and packs what is loose until nothing is left to do.
fn run_until_done(shared: &Arc<Shared>, writer: &Writer) -> Result<(), StoreError> {
    loop {
        let did_unpack = unpack(shared, writer, Unpack::Sparse)?;
        let loose = loose_bytes(shared)?;
        if loose >= PACK_TRIGGER {
            let forced = !wait_for_quiet(shared, LOOSE_MAX, QUIET_MS);
            let level = if forced {
                shared.config.pack_level.min(FORCED_LEVEL)
            } else {
                shared.config.pack_level
            };
            if !pack_once(shared, writer, level)? {
                return Ok(());
            }
            continue;
        }
        if loose >= TAIL_MIN {
            // Past LOOSE_MAX it stops waiting: the loop then packs at once.
            wait_for_quiet(shared, LOOSE_MAX, TAIL_QUIET_MS);
            if !shared.is_open() {
                return Ok(());
            }
            // More mail may have come meanwhile: decide again with the new figure.
            if loose_bytes(shared)? < PACK_TRIGGER
                && !pack_once(shared, writer, shared.config.pack_level)?
            {
                return Ok(());
            }
            continue;
        }
        if !did_unpack && !unpack(shared, writer, Unpack::Undicted)? {
            // Deliveries and expunges while settle waited found the packer running and
            // did not start it again: look once more before stopping.
            let new_mail = settle(shared);
            if !shared.is_open()
                || (!new_mail && loose_bytes(shared)? < TAIL_MIN && !any_sparse(shared)?)
            {
                return Ok(());
            }
        }
    }
}

/// Whether a pack is sparse enough for [`unpack`]: under two thirds live.
pub(super) fn is_sparse(rec: &PackRecord) -> bool {
    rec.live.saturating_mul(3) < rec.raw_len.saturating_mul(2)
}

fn any_sparse(shared: &Shared) -> Result<bool, StoreError> {
    let tx = shared.begin_read()?;
    for row in tx.open_table(PACKS)?.iter()? {
        let (_, v) = row?;
        if is_sparse(&schema::decode::<PackRecord>(v.value())?) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Once packing is done, the pages the loose copies held are free but still in the file:
/// compact as soon as the store has been quiet for [`SETTLE_QUIET_MS`], so the data dir
/// comes down to the packed size within seconds of a burst instead of at the next
/// periodic check (`store.compact_check_secs`; 0 turns this off too). It only runs when
/// `store.compact_when_free` of the file's blocks are free, and only once clients have
/// been idle for a second (see `compact_blocking`; the periodic check tries again if
/// that does not come within a minute). Mail that arrives meanwhile ([`TAIL_MIN`] loose)
/// ends the wait: returns true, and the caller packs it first.
fn settle(shared: &Arc<Shared>) -> bool {
    if shared.config.compact_check_secs == 0 {
        return false;
    }
    if !wait_for_quiet(shared, TAIL_MIN, SETTLE_QUIET_MS) {
        return true;
    }
    if !shared.is_open() {
        return false;
    }
    let new_mail = || loose_bytes(shared).unwrap_or(0) >= TAIL_MIN;
    if let Err(e) = super::compact_blocking_unless(shared, false, &new_mail) {
        log::warn!("store: compaction after packing failed: {e}");
    }
    new_mail()
}

fn loose_bytes(shared: &Shared) -> Result<u64, StoreError> {
    let tx = shared.begin_read()?;
    let meta = tx.open_table(META)?;
    Ok(meta.get("loose_bytes")?.map(|v| v.value()).unwrap_or(0))
}

/// Sleeps until the writer has been quiet for `quiet_ms` (or the store closes). Gives up
/// early, returning false, once `force_at` bytes are loose: the loose total is read again
/// as it grows (a long import never pauses, and used to leave everything loose until it
/// ended; a stream of flag changes keeps the writer busy as long as it lasts).
fn wait_for_quiet(shared: &Shared, force_at: u64, quiet_ms: u64) -> bool {
    while shared.is_open() {
        if loose_bytes(shared).unwrap_or(0) >= force_at {
            return false;
        }
        let last = shared.last_write_ms.load(Ordering::Relaxed);
        let idle = super::now_ms().saturating_sub(last);
        if idle >= quiet_ms {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis((quiet_ms - idle).min(100)));
    }
    true
}

/// Where an item taken into a new pack was (checked again in the writing transaction).
#[derive(Clone, Copy, PartialEq)]
enum Source {
    Loose { seq: u64 },
    Tail { pack: u64, offset: u64 },
}

/// One item taken into a pack.
struct Item {
    source: Source,
    hash: BlobId,
    offset: u64,
    raw_len: u64,
    meta_len: u32,
}

/// Appends one message to the pack being built. Only the message goes in: its
/// structure is parsed when read (about 9 us for a typical message), which keeps packs
/// 0.02 of the raw mail smaller (docs/decisions.md, "The store keeps no parsed
/// structure"). Packs written before keep theirs (`meta_len` > 0) and are read as they are.
fn take(buf: &mut Vec<u8>, items: &mut Vec<Item>, source: Source, hash: BlobId, raw: &[u8]) {
    let offset = buf.len() as u64;
    buf.extend_from_slice(raw);
    items.push(Item {
        source,
        hash,
        offset,
        raw_len: raw.len() as u64,
        meta_len: 0,
    });
}

/// The live blobs of the tail pack, if there is one, taken into `buf` first.
fn take_tail(
    tx: &ReadTransaction,
    shared: &Shared,
    buf: &mut Vec<u8>,
    items: &mut Vec<Item>,
) -> Result<Option<u64>, StoreError> {
    let Some(tail) = tx.open_table(META)?.get(TAIL_PACK)?.map(|v| v.value()) else {
        return Ok(None);
    };
    let Some(rec) = tx
        .open_table(PACKS)?
        .get(tail)?
        .map(|v| schema::decode::<PackRecord>(v.value()))
        .transpose()?
    else {
        return Ok(None);
    };
    if rec.items.len() >= MAX_ITEMS {
        return Ok(None);
    }
    let bytes = load(tx, shared, tail)?;
    let blobs = tx.open_table(BLOBS)?;
    for hash in &rec.items {
        let Some((b, offset, meta_len)) = still_packed_in(&blobs, hash, tail)? else {
            continue;
        };
        let (raw, _) = item_bytes(&bytes, tail, offset, b.raw_len, meta_len)?;
        take(buf, items, Source::Tail { pack: tail, offset }, *hash, raw);
    }
    Ok(Some(tail))
}

/// Packs the tail pack's live blobs and the oldest loose blobs into a new pack compressed
/// at `level`. Returns false when nothing was loose.
fn pack_once(shared: &Arc<Shared>, writer: &Writer, level: i32) -> Result<bool, StoreError> {
    let started = std::time::Instant::now();
    let mut buf: Vec<u8> = Vec::with_capacity(usize::try_from(PACK_RAW).unwrap_or(0) * 2);
    let mut items: Vec<Item> = Vec::new();
    let tail;
    {
        let tx = shared.begin_read()?;
        tail = take_tail(&tx, shared, &mut buf, &mut items)?;
        let from_tail = items.len();
        let loose = tx.open_table(LOOSE)?;
        let blobs = tx.open_table(BLOBS)?;
        let data = tx.open_table(LOOSE_DATA)?;
        for row in loose.iter()? {
            let (seq, hash) = row?;
            let (seq, hash) = (seq.value(), *hash.value());
            let Some(rec) = blobs.get(&hash)? else {
                continue;
            };
            let rec: BlobRecord = schema::decode(rec.value())?;
            if rec.location != (Location::Loose { seq }) {
                continue;
            }
            let Some(stored) = data.get(seq)? else {
                continue;
            };
            let raw = shared.codec.decompress(&rec, stored.value())?;
            take(&mut buf, &mut items, Source::Loose { seq }, hash, &raw);
            if buf.len() as u64 >= PACK_RAW || items.len() >= MAX_ITEMS {
                break;
            }
        }
        if items.len() == from_tail {
            return Ok(false);
        }
    }
    let (dict, compressed) = shared.codec.compress_at(&buf, level)?;
    let raw_len = buf.len() as u64;
    drop(buf);
    let stored_len = compressed.len() as u64;
    let n_items = items.len();
    smol::block_on(writer.submit(move |tx, batch| {
        batch.background_jobs += 1;
        let id = next_pack_id(tx)?;
        let mut live = 0u64;
        let mut alive = Vec::new();
        for item in &items {
            let mut blobs = tx.open_table(BLOBS)?;
            let rec = blobs
                .get(&item.hash)?
                .map(|v| schema::decode::<BlobRecord>(v.value()))
                .transpose()?;
            // Freed or moved since we read it: its bytes in the pack are dead.
            let Some(mut rec) = rec else { continue };
            let still = match (item.source, rec.location) {
                (Source::Loose { seq }, Location::Loose { seq: s }) => seq == s,
                (
                    Source::Tail { pack, offset },
                    Location::Packed {
                        pack: p, offset: o, ..
                    },
                ) => pack == p && offset == o,
                _ => false,
            };
            if !still {
                continue;
            }
            rec.location = Location::Packed {
                pack: id,
                offset: item.offset,
                meta_len: item.meta_len,
            };
            rec.dict = 0;
            rec.stored_len = 0;
            blobs.insert(&item.hash, schema::encode(&rec)?.as_slice())?;
            drop(blobs);
            if let Source::Loose { seq } = item.source {
                tx.open_table(LOOSE_DATA)?.remove(seq)?;
                tx.open_table(BLOB_META)?.remove(&item.hash)?;
                super::blob::remove_loose(tx, seq, item.raw_len)?;
            }
            live += item.raw_len + u64::from(item.meta_len);
            alive.push(item.hash);
        }
        // Every live blob of the old tail pack now points into the new pack.
        if let Some(old) = tail {
            let current = tx
                .open_table(PACKS)?
                .get(old)?
                .map(|v| schema::decode::<PackRecord>(v.value()))
                .transpose()?;
            if let Some(current) = current {
                delete_pack(tx, old, current.chunks)?;
            }
        }
        if alive.is_empty() {
            tx.open_table(META)?.remove(TAIL_PACK)?;
            return Ok(());
        }
        let n_chunks = put_chunks(tx, id, &compressed)?;
        let full = raw_len >= PACK_RAW || alive.len() >= MAX_ITEMS;
        let rec = PackRecord {
            raw_len,
            live,
            stored_len,
            dict,
            chunks: n_chunks,
            items: alive,
        };
        tx.open_table(PACKS)?
            .insert(id, schema::encode(&rec)?.as_slice())?;
        let mut meta = tx.open_table(META)?;
        // Only a pack with room left is the tail: a full one (bytes or items) is never
        // absorbed, or each new pack would recompress it whole for a few messages more.
        if !full {
            meta.insert(TAIL_PACK, id)?;
        } else {
            meta.remove(TAIL_PACK)?;
        }
        Ok(())
    }))?;
    if let Some(old) = tail {
        shared.codec.packs.forget(old);
    }
    // Read by benches/pack_latency.sh to find when packing ran.
    log::debug!(
        "store: packed {n_items} blobs ({raw_len} -> {stored_len} bytes, dictionary {dict}) \
         at level {level} in {} ms",
        started.elapsed().as_millis()
    );
    crate::metrics::pack_run();
    Ok(true)
}

/// A live blob taken out of a sparse pack, recompressed alone.
struct Unpacked {
    hash: BlobId,
    rec: BlobRecord,
    dict: u32,
    compressed: Vec<u8>,
    meta: Vec<u8>,
}

/// Which packs [`unpack`] turns back into loose blobs.
#[derive(Clone, Copy, PartialEq)]
enum Unpack {
    /// Every pack under two thirds live ([`is_sparse`]).
    Sparse,
    /// One pack of several messages made without a dictionary (before the first one was
    /// trained), once there is one: packed again with it, they take about 0.03 of their
    /// raw size less. One per call, between quiet waits, so it never adds to a burst.
    Undicted,
}

/// Turns packs back into loose blobs, one pack per transaction (see [`Unpack`]).
/// Returns whether it unpacked any.
fn unpack(shared: &Arc<Shared>, writer: &Writer, which: Unpack) -> Result<bool, StoreError> {
    let has_dict = shared.codec.has_dictionary();
    let sparse: Vec<(u64, PackRecord)> = {
        let tx = shared.begin_read()?;
        let packs = tx.open_table(PACKS)?;
        let mut out = Vec::new();
        for row in packs.iter()? {
            let (id, v) = row?;
            let rec: PackRecord = schema::decode(v.value())?;
            let wanted = match which {
                Unpack::Sparse => is_sparse(&rec),
                Unpack::Undicted => has_dict && rec.dict == 0 && rec.items.len() > 1,
            };
            if wanted {
                out.push((id.value(), rec));
                if which == Unpack::Undicted {
                    break;
                }
            }
        }
        out
    };
    let any = !sparse.is_empty();
    for (id, pack) in sparse {
        // Read and recompress the live blobs outside the writer.
        let mut loose: Vec<Unpacked> = Vec::new();
        {
            let tx = shared.begin_read()?;
            let bytes = load(&tx, shared, id)?;
            let blobs = tx.open_table(BLOBS)?;
            for hash in &pack.items {
                let Some((rec, offset, meta_len)) = still_packed_in(&blobs, hash, id)? else {
                    continue;
                };
                let (raw, meta) = item_bytes(&bytes, id, offset, rec.raw_len, meta_len)?;
                let (dict, compressed) = shared.codec.compress(raw)?;
                loose.push(Unpacked {
                    hash: *hash,
                    rec,
                    dict,
                    compressed,
                    meta: meta.to_vec(),
                });
            }
        }
        let expected_live = pack.live;
        smol::block_on(writer.submit(move |tx, batch| {
            batch.background_jobs += 1;
            let current = tx
                .open_table(PACKS)?
                .get(id)?
                .map(|v| schema::decode::<PackRecord>(v.value()))
                .transpose()?;
            // Changed meanwhile (more deletes): try again on the next round.
            let Some(current) = current else {
                return Ok(());
            };
            if current.live != expected_live {
                return Ok(());
            }
            for u in &loose {
                let new = super::blob::place(
                    tx,
                    &u.hash,
                    u.rec.refs,
                    u.rec.raw_len,
                    u.dict,
                    &u.compressed,
                )?;
                let loose = matches!(new.location, Location::Loose { .. });
                tx.open_table(BLOBS)?
                    .insert(&u.hash, schema::encode(&new)?.as_slice())?;
                // A pack without structure gives none: it is parsed when read.
                if loose && !u.meta.is_empty() {
                    tx.open_table(BLOB_META)?
                        .insert(&u.hash, u.meta.as_slice())?;
                }
            }
            delete_pack(tx, id, current.chunks)?;
            Ok(())
        }))?;
        shared.codec.packs.forget(id);
    }
    Ok(any)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_pack_cache_keeps_the_last_packs_read_and_drops_those_unused() {
        let cache = PackCache::default();
        for id in 1..=(CACHE as u64 + 1) {
            cache.put(id, Arc::new(vec![0; 16]));
        }
        assert!(cache.get(1).is_none(), "the oldest went");
        assert!(cache.get(2).is_some());
        assert_eq!(
            cache.take_spare().len(),
            16,
            "the evicted pack's buffer is kept"
        );
        assert!(cache.take_spare().is_empty(), "once");
        cache.drop_unused(Duration::from_secs(60));
        assert!(cache.get(2).is_some(), "recently used packs stay");
        cache.drop_unused(Duration::ZERO);
        assert!((1..=(CACHE as u64 + 1)).all(|id| cache.get(id).is_none()));
    }

    #[test]
    fn only_a_pack_of_one_whole_message_counts_as_alone() {
        let rec = |items: usize, live: u64| PackRecord {
            raw_len: 100,
            live,
            stored_len: 50,
            dict: 0,
            chunks: 1,
            items: vec![[0u8; 16]; items],
        };
        assert!(is_alone(&rec(1, 100)));
        assert!(
            !is_alone(&rec(1, 40)),
            "the last live message of a pack of several"
        );
        assert!(!is_alone(&rec(2, 100)));
    }
}
