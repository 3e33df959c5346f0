//! Message blobs: content-addressed (BLAKE3), reference-counted, zstd-compressed.
//!
//! Until the store holds `dictionary_after` messages, blobs are compressed plainly. Then a
//! background thread trains a zstd dictionary from a sample of the store's own mail, makes
//! it the active one for new blobs; the packer then rewrites older blobs into packs with it.
//! Each blob and pack records the dictionary it was compressed with, and dictionaries are
//! never deleted, so everything stays readable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use super::pack::Loaded;
use super::schema::BlobId;
use super::schema::{
    self, BLOB_META, BLOBS, BlobRecord, DICT_CHUNKS, LOOSE, LOOSE_DATA, Location, META,
};
use super::{Shared, StoreError};

/// Samples used to train a dictionary: at most this many bytes in all...
const TRAIN_BYTES: usize = 8 << 20;
/// ...and at most this much of each message (headers carry most of what repeats).
const TRAIN_SAMPLE: usize = 16 << 10;

/// One dictionary: its id in [`DICT_CHUNKS`] and its bytes. `generation` is unique in the
/// process (two stores in one process may both have a dictionary 1): it keys the
/// per-thread zstd contexts that have this dictionary loaded.
struct Dict {
    id: u32,
    generation: u64,
    bytes: Arc<Vec<u8>>,
}

impl Dict {
    fn new(id: u32, bytes: Vec<u8>) -> Dict {
        Dict {
            id,
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
            bytes: Arc::new(bytes),
        }
    }
}

/// Generation 0 means "no dictionary".
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

struct Dicts {
    /// The dictionary new blobs and packs are compressed with.
    active: Option<Arc<Dict>>,
    /// Every dictionary by id, for decompressing.
    all: HashMap<u32, Arc<Dict>>,
}

/// zstd contexts kept for reuse, with the dictionary of their last use loaded: creating
/// a context and digesting a 64 KiB dictionary cost more than compressing a small
/// message. A context is taken for one call and given back; at most
/// [`crate::memory::BLOCKING_THREADS`] of each kind wait (as many as calls can run at
/// once), and [`contexts::drop_all`] frees them when the server is quiet. (They were
/// thread-locals: the blocking pool keeps its threads once it has grown, and with them
/// about 1 MiB of compression context each, 15 MiB after the benchmark workloads.)
mod contexts {
    use std::io;
    use std::sync::Mutex;

    use zstd::bulk::{Compressor, Decompressor};
    use zstd::stream::raw::CParameter;

    /// Idle contexts of one kind, each with its key (dictionary generation, and level).
    struct Pool<K, C> {
        idle: Mutex<Vec<(K, C)>>,
    }

    impl<K: PartialEq, C> Pool<K, C> {
        const fn new() -> Self {
            Pool {
                idle: Mutex::new(Vec::new()),
            }
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(K, C)>> {
            // A panic while the list was held leaves it valid: contexts are only pushed
            // and removed whole.
            self.idle.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// An idle context made for `key`, if one waits.
        fn take(&self, key: &K) -> Option<C> {
            let mut idle = self.lock();
            let at = idle.iter().rposition(|(k, _)| k == key)?;
            Some(idle.swap_remove(at).1)
        }

        /// Gives a context back; when the pool is full the oldest goes.
        fn give(&self, key: K, context: C) {
            let mut idle = self.lock();
            if idle.len() >= crate::memory::BLOCKING_THREADS {
                idle.remove(0);
            }
            idle.push((key, context));
        }

        fn clear(&self) {
            let all = std::mem::take(&mut *self.lock());
            drop(all);
        }

        /// Frees the idle contexts whose key `keep` refuses.
        fn retain(&self, keep: impl Fn(&K) -> bool) {
            let gone: Vec<(K, C)> = {
                let mut idle = self.lock();
                let (kept, gone) = std::mem::take(&mut *idle)
                    .into_iter()
                    .partition(|(k, _)| keep(k));
                *idle = kept;
                gone
            };
            drop(gone);
        }
    }

    static COMPRESSORS: Pool<(u64, i32), Compressor<'static>> = Pool::new();

    /// From this level on (the packer's), the match finder's tables are capped at
    /// 2^[`HASH_LOG`] and 2^[`CHAIN_LOG`] entries. For a 1 MiB pack zstd sizes them to
    /// the window at level 15, and the context made for each pack took about 10 MiB more
    /// than capped, for packs 0.2% smaller (docs/decisions.md, "Memory the allocator
    /// keeps").
    const CAPPED_FROM: i32 = 10;
    const HASH_LOG: u32 = 19;
    const CHAIN_LOG: u32 = 20;
    static DECOMPRESSORS: Pool<u64, Decompressor<'static>> = Pool::new();

    /// Frees every idle context.
    pub(super) fn drop_all() {
        COMPRESSORS.clear();
        DECOMPRESSORS.clear();
    }

    /// Frees the idle compression contexts of every level but `level`.
    pub(super) fn drop_levels_but(level: i32) {
        COMPRESSORS.retain(|&(_, l)| l == level);
    }

    /// Compresses `raw` at `level` with `dict` (`(generation, bytes)`, or none), with an
    /// idle context of that kind if one waits; the context waits for the next call.
    pub(super) fn compress(
        dict: Option<(u64, &[u8])>,
        level: i32,
        raw: &[u8],
    ) -> io::Result<Vec<u8>> {
        let key = (dict.map_or(0, |d| d.0), level);
        let mut c = match COMPRESSORS.take(&key) {
            Some(c) => c,
            None => {
                let mut c = match dict {
                    Some((_, bytes)) => Compressor::with_dictionary(level, bytes)?,
                    None => Compressor::new(level)?,
                };
                if level >= CAPPED_FROM {
                    c.set_parameter(CParameter::HashLog(HASH_LOG))?;
                    c.set_parameter(CParameter::ChainLog(CHAIN_LOG))?;
                }
                c
            }
        };
        let out = c.compress(raw);
        // A context that failed is not reused.
        if out.is_ok() {
            COMPRESSORS.give(key, c);
        }
        out
    }

    /// Decompresses `data` made with `dict` into at most `cap` bytes, in `buf` (emptied
    /// first; a buffer of a size used before saves the allocator a large block).
    pub(super) fn decompress(
        dict: Option<(u64, &[u8])>,
        data: &[u8],
        cap: usize,
        mut buf: Vec<u8>,
    ) -> io::Result<Vec<u8>> {
        let key = dict.map_or(0, |d| d.0);
        let mut d = match DECOMPRESSORS.take(&key) {
            Some(d) => d,
            None => match dict {
                Some((_, bytes)) => Decompressor::with_dictionary(bytes)?,
                None => Decompressor::new()?,
            },
        };
        buf.clear();
        buf.reserve_exact(cap);
        let out = d.decompress_to_buffer(data, &mut buf).map(|_| buf);
        if out.is_ok() {
            DECOMPRESSORS.give(key, d);
        }
        out
    }
}

/// Compresses and decompresses blobs with the store's dictionaries.
pub struct Codec {
    pub(crate) level: i32,
    dicts: RwLock<Arc<Dicts>>,
    pub(crate) training: AtomicBool,
    /// Set once training has been tried (or is not wanted): packing waits for it, so packs
    /// are compressed with the dictionary.
    pub(crate) trained: AtomicBool,
    pub(crate) packing: AtomicBool,
    pub(crate) packs: super::pack::PackCache,
}

/// A message body ready for the writer: hashed, compressed, parsed.
#[derive(Debug, Clone)]
pub struct PreparedBlob {
    pub hash: BlobId,
    pub compressed: Vec<u8>,
    pub dict: u32,
    pub raw_len: u64,
}

fn zstd_err(e: std::io::Error) -> StoreError {
    StoreError::Corrupt(format!("zstd: {e}"))
}

impl Codec {
    /// Frees the zstd contexts kept for reuse (all stores of the process share them).
    pub(crate) fn drop_contexts() {
        contexts::drop_all();
    }

    pub(crate) fn load(db: &Database, level: i32) -> Result<Codec, StoreError> {
        let tx = db.begin_read()?;
        let chunks = tx.open_table(DICT_CHUNKS)?;
        let meta = tx.open_table(META)?;
        let active_id = meta.get("active_dict")?.map(|v| v.value() as u32);
        let mut all = HashMap::new();
        let mut active = None;
        for (id, bytes) in schema::dictionaries(&chunks)? {
            let dict = Arc::new(Dict::new(id, bytes));
            if Some(id) == active_id {
                active = Some(dict.clone());
            }
            all.insert(id, dict);
        }
        let trained = active.is_some();
        Ok(Codec {
            level,
            dicts: RwLock::new(Arc::new(Dicts { active, all })),
            training: AtomicBool::new(false),
            trained: AtomicBool::new(trained),
            packing: AtomicBool::new(false),
            packs: super::pack::PackCache::default(),
        })
    }

    fn snapshot(&self) -> Arc<Dicts> {
        match self.dicts.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether new blobs and packs are compressed with a dictionary.
    pub(crate) fn has_dictionary(&self) -> bool {
        self.snapshot().active.is_some()
    }

    /// Hashes and compresses `raw` (already CRLF-normalised) with the active dictionary.
    pub fn prepare(&self, raw: &[u8]) -> Result<PreparedBlob, StoreError> {
        let hash = schema::blob_id(raw);
        let (dict, compressed) = self.compress(raw)?;
        Ok(PreparedBlob {
            hash,
            compressed,
            dict,
            raw_len: raw.len() as u64,
        })
    }

    pub(crate) fn compress(&self, raw: &[u8]) -> Result<(u32, Vec<u8>), StoreError> {
        self.compress_at(raw, self.level)
    }

    /// Compresses `raw` with the active dictionary at `level` (packs use their own level).
    /// A context at a pack's level (6-8 MiB at level 15 with its capped tables) is
    /// kept only until [`Codec::drop_pack_contexts`] at the end of the packer's run: the
    /// packs of a burst share one instead of faulting in fresh pages for each, and a
    /// quiet server holds none.
    pub(crate) fn compress_at(&self, raw: &[u8], level: i32) -> Result<(u32, Vec<u8>), StoreError> {
        let dicts = self.snapshot();
        let dict = dicts.active.as_deref();
        let with = dict.map(|d| (d.generation, d.bytes.as_slice()));
        let out = contexts::compress(with, level, raw).map_err(zstd_err)?;
        Ok((dict.map_or(0, |d| d.id), out))
    }

    /// Frees the idle compression contexts of levels other than the store's (the
    /// packer's), once it has nothing more to pack.
    pub(crate) fn drop_pack_contexts(&self) {
        contexts::drop_levels_but(self.level);
    }

    /// Decompresses a stored blob.
    pub fn decompress(&self, rec: &BlobRecord, data: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.decompress_with(rec.dict, data, rec.raw_len)
    }

    /// Decompresses `data` made with dictionary `dict` (0 = none) into exactly `len` bytes.
    pub(crate) fn decompress_with(
        &self,
        dict: u32,
        data: &[u8],
        len: u64,
    ) -> Result<Vec<u8>, StoreError> {
        self.decompress_into(dict, data, len, Vec::new())
    }

    /// [`Codec::decompress_with`] into `buf`, whose allocation is reused when large enough.
    pub(crate) fn decompress_into(
        &self,
        dict: u32,
        data: &[u8],
        len: u64,
        buf: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let cap = usize::try_from(len).map_err(|_| StoreError::Corrupt("blob size".into()))?;
        let dicts;
        let with = if dict == 0 {
            None
        } else {
            dicts = self.snapshot();
            let d = dicts
                .all
                .get(&dict)
                .ok_or_else(|| StoreError::Corrupt(format!("missing dictionary {dict}")))?;
            Some((d.generation, d.bytes.as_slice()))
        };
        let out = contexts::decompress(with, data, cap, buf).map_err(zstd_err)?;
        if out.len() as u64 != len {
            return Err(StoreError::Corrupt("blob length mismatch".into()));
        }
        Ok(out)
    }
}

/// Most bytes [`decompress_plain`] makes from one frame: more than any index segment.
const PLAIN_MAX: u64 = 256 << 20;

/// `raw` compressed at `level` without a dictionary, with a pooled context (the index
/// segments'): a context of its own for each call was fresh pages each time.
pub(crate) fn compress_plain(raw: &[u8], level: i32) -> Result<Vec<u8>, StoreError> {
    contexts::compress(None, level, raw).map_err(zstd_err)
}

/// The content of a frame made without a dictionary, decompressed with a pooled
/// context; `None` when the frame does not say its size (a streaming encoder's, which
/// the caller reads as a stream) or says more than [`PLAIN_MAX`].
pub(crate) fn decompress_plain(data: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    let size = match zstd::zstd_safe::get_frame_content_size(data) {
        Ok(Some(size)) if size <= PLAIN_MAX => size,
        _ => return Ok(None),
    };
    let cap = usize::try_from(size).map_err(|_| StoreError::Corrupt("frame size".into()))?;
    contexts::decompress(None, data, cap, Vec::new())
        .map(Some)
        .map_err(zstd_err)
}

impl Codec {
    /// Waits up to `limit` for background training and packing to end (they stop at the
    /// next batch once the writer is closed, or finish what they are doing).
    pub(crate) fn wait_background(&self, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        while (self.training.load(Ordering::SeqCst) || self.packing.load(Ordering::SeqCst))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The header of the message `data` holds (made with dictionary `dict`, `len` bytes
    /// decompressed), as [`crate::mime::header_end`] finds it, decompressing only as far
    /// as the blank line that ends it: a large message's attachments are not decompressed
    /// to read its Subject (SEARCH, ENVELOPE).
    pub(crate) fn decompress_header(
        &self,
        dict: u32,
        data: &[u8],
        len: u64,
    ) -> Result<Vec<u8>, StoreError> {
        use std::io::Read;
        const STEP: usize = 16 << 10;
        let cap = usize::try_from(len).map_err(|_| StoreError::Corrupt("blob size".into()))?;
        let mut decoder = if dict == 0 {
            zstd::stream::read::Decoder::with_buffer(data)
        } else {
            let dicts = self.snapshot();
            let d = dicts
                .all
                .get(&dict)
                .ok_or_else(|| StoreError::Corrupt(format!("missing dictionary {dict}")))?;
            zstd::stream::read::Decoder::with_dictionary(data, d.bytes.as_slice())
        }
        .map_err(zstd_err)?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let have = out.len();
            if have >= cap {
                break;
            }
            out.resize(have.saturating_add(STEP.min(cap - have)), 0);
            let n = match out.get_mut(have..) {
                Some(buf) => decoder.read(buf).map_err(zstd_err)?,
                None => 0,
            };
            out.truncate(have.saturating_add(n));
            if n == 0 {
                break;
            }
            // The blank line may straddle the previous read.
            if let Some(end) = header_len_from(&out, have.saturating_sub(3)) {
                out.truncate(end);
                return Ok(out);
            }
        }
        if out.len() != cap {
            return Err(StoreError::Corrupt("blob length mismatch".into()));
        }
        Ok(out)
    }
}

/// [`crate::mime::header::blank_line_end`] of `out`, looking for the blank line only from
/// `from` on.
fn header_len_from(out: &[u8], from: usize) -> Option<usize> {
    if from == 0 {
        return crate::mime::header::blank_line_end(out);
    }
    let p = memchr::memmem::find(out.get(from..)?, b"\r\n\r\n")?;
    Some(from.saturating_add(p).saturating_add(4))
}

/// Adds one reference to a blob, storing it if it is new. Returns true if it was new.
pub(crate) fn add_ref(
    tx: &WriteTransaction,
    blob: &PreparedBlob,
    undicted: &mut u64,
) -> Result<bool, StoreError> {
    let mut blobs = tx.open_table(BLOBS)?;
    let existing = blobs
        .get(&blob.hash)?
        .map(|v| schema::decode::<BlobRecord>(v.value()))
        .transpose()?;
    match existing {
        Some(mut rec) => {
            rec.refs = rec.refs.saturating_add(1);
            blobs.insert(&blob.hash, schema::encode(&rec)?.as_slice())?;
            Ok(false)
        }
        None => {
            let rec = place(tx, &blob.hash, 1, blob.raw_len, blob.dict, &blob.compressed)?;
            blobs.insert(&blob.hash, schema::encode(&rec)?.as_slice())?;
            if blob.dict == 0 {
                *undicted += 1;
            }
            Ok(true)
        }
    }
}

/// Compressed blobs larger than this are stored as a pack of their own at once.
pub(crate) const ALONE_OVER: usize = 2 * schema::PACK_CHUNK;

/// Stores the compressed bytes of a new blob, or of one leaving a sparse pack, and returns
/// its record. A small one goes loose, for the packer to compress with its neighbours
/// (where it gains most: 0.30 of the raw size alone, about 0.21 in a pack). One larger
/// than [`ALONE_OVER`] becomes a pack of its own at once, in final form: a loose value
/// of several pages takes a run of pages rounded up to a power of two, and the runs that
/// such values free during a burst are too large for the page-sized writes that follow,
/// so the file grows while they lie unused (docs/decisions.md, "Large messages are packed
/// alone").
pub(crate) fn place(
    tx: &WriteTransaction,
    hash: &BlobId,
    refs: u32,
    raw_len: u64,
    dict: u32,
    compressed: &[u8],
) -> Result<BlobRecord, StoreError> {
    if compressed.len() > ALONE_OVER {
        let pack = super::pack::put_alone(tx, hash, raw_len, dict, compressed)?;
        return Ok(BlobRecord {
            refs,
            dict: 0,
            raw_len,
            stored_len: 0,
            location: Location::Packed {
                pack,
                offset: 0,
                meta_len: 0,
            },
        });
    }
    let seq = add_loose(tx, hash, raw_len)?;
    tx.open_table(LOOSE_DATA)?.insert(seq, compressed)?;
    Ok(BlobRecord {
        refs,
        dict,
        raw_len,
        stored_len: compressed.len() as u64,
        location: Location::Loose { seq },
    })
}

/// Drops one reference; the last one frees the blob, its data and its metadata.
pub(crate) fn drop_ref(tx: &WriteTransaction, hash: &BlobId) -> Result<(), StoreError> {
    let mut blobs = tx.open_table(BLOBS)?;
    let rec = match blobs.get(hash)? {
        Some(v) => schema::decode::<BlobRecord>(v.value())?,
        None => {
            log::warn!("store: dropping a reference to a missing blob");
            return Ok(());
        }
    };
    if rec.refs > 1 {
        let rec = BlobRecord {
            refs: rec.refs - 1,
            ..rec
        };
        blobs.insert(hash, schema::encode(&rec)?.as_slice())?;
        return Ok(());
    }
    blobs.remove(hash)?;
    drop(blobs);
    match rec.location {
        Location::Loose { seq } => {
            tx.open_table(LOOSE_DATA)?.remove(seq)?;
            tx.open_table(BLOB_META)?.remove(hash)?;
            remove_loose(tx, seq, rec.raw_len)?;
        }
        Location::Packed {
            pack,
            offset: _,
            meta_len,
        } => super::pack::drop_item(tx, pack, hash, rec.raw_len + u64::from(meta_len))?,
    }
    Ok(())
}

/// Queues a blob for packing; returns its sequence number.
pub(crate) fn add_loose(
    tx: &WriteTransaction,
    hash: &BlobId,
    raw_len: u64,
) -> Result<u64, StoreError> {
    let mut meta = tx.open_table(META)?;
    let seq = meta.get("next_loose_seq")?.map(|v| v.value()).unwrap_or(1);
    meta.insert("next_loose_seq", seq + 1)?;
    let bytes = meta.get("loose_bytes")?.map(|v| v.value()).unwrap_or(0);
    meta.insert("loose_bytes", bytes.saturating_add(raw_len))?;
    tx.open_table(LOOSE)?.insert(seq, hash)?;
    Ok(seq)
}

pub(crate) fn remove_loose(
    tx: &WriteTransaction,
    seq: u64,
    raw_len: u64,
) -> Result<(), StoreError> {
    tx.open_table(LOOSE)?.remove(seq)?;
    let mut meta = tx.open_table(META)?;
    let bytes = meta.get("loose_bytes")?.map(|v| v.value()).unwrap_or(0);
    meta.insert("loose_bytes", bytes.saturating_sub(raw_len))?;
    Ok(())
}

/// How much of a blob to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extent {
    /// All its bytes.
    Whole,
    /// Its header, up to and with the blank line that ends it (all of a blob without
    /// one; see [`crate::mime::header_end`]). A packed blob is not copied whole.
    Header,
}

/// The bytes of a blob, whole or its header, wherever it is (`data`: the opened
/// [`LOOSE_DATA`]).
pub(crate) fn load(
    tx: &redb::ReadTransaction,
    data: &impl ReadableTable<u64, &'static [u8]>,
    shared: &Shared,
    hash: &BlobId,
    rec: &BlobRecord,
    extent: Extent,
) -> Result<Vec<u8>, StoreError> {
    let header_len = |blob: &[u8]| crate::mime::header_end(blob, 0, blob.len());
    let mut raw = match rec.location {
        Location::Loose { seq } => {
            let stored = data
                .get(seq)?
                .ok_or_else(|| StoreError::Corrupt("blob without data".into()))?;
            shared.codec.decompress(rec, stored.value())?
        }
        Location::Packed { pack, offset, .. } if extent == Extent::Header => {
            let bytes = match super::pack::load_shared(tx, shared, pack)? {
                Loaded::Shared(bytes) => bytes,
                // Packed alone: not cached, and only its start is decompressed.
                Loaded::Alone(alone) => {
                    return super::pack::load_alone_header(tx, shared, pack, &alone, rec.raw_len);
                }
            };
            let blob = slice(&bytes, offset, rec.raw_len)?;
            return Ok(blob.get(..header_len(blob)).unwrap_or(blob).to_vec());
        }
        Location::Packed { pack, offset, .. } => {
            let bytes = super::pack::load(tx, shared, pack)?;
            slice(&bytes, offset, rec.raw_len).map(<[u8]>::to_vec)?
        }
    };
    check_content(hash, &raw)?;
    if extent == Extent::Header {
        raw.truncate(header_len(&raw));
    }
    Ok(raw)
}

/// Checks that `raw` is the content `hash` names: damaged bytes that still decompress
/// (zstd blocks carry no checksum) are refused rather than served.
pub(crate) fn check_content(hash: &BlobId, raw: &[u8]) -> Result<(), StoreError> {
    if schema::blob_id(raw) == *hash {
        Ok(())
    } else {
        Err(StoreError::Corrupt("content hash mismatch".into()))
    }
}

/// The stored structure (`mime::MessageMeta`, postcard) of a blob, wherever it is
/// (`metas`: the opened [`BLOB_META`]); `None` when none is kept (blobs packed without
/// it, or unpacked from such a pack): the caller parses the blob instead.
pub(crate) fn load_meta(
    tx: &redb::ReadTransaction,
    metas: &impl ReadableTable<&'static BlobId, &'static [u8]>,
    shared: &Shared,
    hash: &BlobId,
    rec: &BlobRecord,
) -> Result<Option<Vec<u8>>, StoreError> {
    match rec.location {
        Location::Loose { .. } => Ok(metas.get(hash)?.map(|m| m.value().to_vec())),
        Location::Packed { meta_len: 0, .. } => Ok(None),
        Location::Packed {
            pack,
            offset,
            meta_len,
        } => {
            let bytes = super::pack::load(tx, shared, pack)?;
            slice(&bytes, offset + rec.raw_len, u64::from(meta_len)).map(|m| Some(m.to_vec()))
        }
    }
}

/// `len` bytes of a decompressed pack from `offset`.
fn slice(bytes: &[u8], offset: u64, len: u64) -> Result<&[u8], StoreError> {
    let start = usize::try_from(offset).map_err(|_| StoreError::Corrupt("pack offset".into()))?;
    let end = usize::try_from(offset.saturating_add(len))
        .map_err(|_| StoreError::Corrupt("pack offset".into()))?;
    bytes
        .get(start..end)
        .ok_or_else(|| StoreError::Corrupt("pack too short".into()))
}

pub(crate) fn count_undicted(tx: &WriteTransaction, n: u64) -> Result<(), StoreError> {
    let mut meta = tx.open_table(META)?;
    let old = meta.get("undicted_blobs")?.map(|v| v.value()).unwrap_or(0);
    meta.insert("undicted_blobs", old.saturating_add(n))?;
    Ok(())
}

/// Starts dictionary training in the background when enough undicted mail has arrived and
/// no dictionary exists yet; the packer, which waits for it, is started when it is done.
pub(crate) fn maybe_train(shared: &Arc<Shared>, writer: &super::writer::Writer) {
    let after = shared.config.dictionary_after;
    if after == 0 || shared.codec.snapshot().active.is_some() {
        shared.codec.trained.store(true, Ordering::SeqCst);
        return;
    }
    let due = (|| -> Result<bool, StoreError> {
        let tx = shared.begin_read()?;
        let meta = tx.open_table(META)?;
        Ok(meta.get("undicted_blobs")?.map(|v| v.value()).unwrap_or(0) >= after)
    })();
    if !matches!(due, Ok(true)) {
        return;
    }
    let writer = writer.clone();
    spawn_exclusive(
        shared,
        |c| &c.training,
        "store-dict",
        move |shared| {
            match train(shared) {
                // Older loose blobs are not recompressed one by one: the packer (which
                // waits for this dictionary) rewrites them into packs with it anyway.
                Ok(Some(id)) => log::info!("store: trained zstd dictionary {id}"),
                Ok(None) => {}
                Err(e) => log::warn!("store: dictionary training failed: {e}"),
            }
            shared.codec.trained.store(true, Ordering::SeqCst);
            super::pack::maybe_pack(shared, &writer);
        },
    );
}

/// Runs `job` on a thread named `name` unless one of its kind is running: `busy` picks
/// the [`Codec`] flag of that kind (training, packing), set while the job runs and
/// cleared when it ends or cannot start; the next commit that finds the work due then
/// tries again.
pub(crate) fn spawn_exclusive(
    shared: &Arc<Shared>,
    busy: fn(&Codec) -> &AtomicBool,
    name: &str,
    job: impl FnOnce(&Arc<Shared>) + Send + 'static,
) {
    if busy(&shared.codec).swap(true, Ordering::SeqCst) {
        return;
    }
    let owned = shared.clone();
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            job(&owned);
            busy(&owned.codec).store(false, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        log::warn!("store: cannot start thread {name}: {e}");
        busy(&shared.codec).store(false, Ordering::SeqCst);
    }
}

/// Trains and installs a dictionary. Returns its id, or None if there is too little mail.
fn train(shared: &Arc<Shared>) -> Result<Option<u32>, StoreError> {
    let mut samples: Vec<Vec<u8>> = Vec::new();
    let mut total = 0usize;
    {
        let tx = shared.begin_read()?;
        let blobs = tx.open_table(BLOBS)?;
        let data = tx.open_table(LOOSE_DATA)?;
        for row in tx.open_table(LOOSE)?.iter()? {
            let (seq, hash) = row?;
            let Some(rec) = blobs.get(hash.value())? else {
                continue;
            };
            let rec: BlobRecord = schema::decode(rec.value())?;
            let Some(bytes) = data.get(seq.value())? else {
                continue;
            };
            let raw = shared.codec.decompress(&rec, bytes.value())?;
            let take = raw.len().min(TRAIN_SAMPLE);
            total += take;
            samples.push(raw.get(..take).unwrap_or(&raw).to_vec());
            if total >= TRAIN_BYTES {
                break;
            }
        }
    }
    if samples.len() < 32 {
        return Ok(None);
    }
    let dict = zstd::dict::from_samples(&samples, shared.config.dictionary_size)
        .map_err(|e| StoreError::Storage(format!("zstd training: {e}")))?;
    drop(samples);
    let id = {
        let tx = shared.begin_write()?;
        let id = {
            let last = tx
                .open_table(DICT_CHUNKS)?
                .last()?
                .map(|(k, _)| k.value().0);
            let id = last.map_or(1, |l| l.saturating_add(1));
            schema::put_dictionary(&tx, id, &dict)?;
            let mut meta = tx.open_table(META)?;
            meta.insert("active_dict", u64::from(id))?;
            meta.insert("undicted_blobs", 0)?;
            id
        };
        tx.commit()?;
        id
    };
    let mut guard = match shared.codec.dicts.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let mut all = guard.all.clone();
    let dict = Arc::new(Dict::new(id, dict));
    all.insert(id, dict.clone());
    *guard = Arc::new(Dicts {
        active: Some(dict),
        all,
    });
    Ok(Some(id))
}
