//! The mail store: one redb file holding users, mailboxes, messages and their blobs.
//!
//! Concurrency rules (see docs/design.md):
//! - All writes go through one writer thread ([`writer`]) that batches whatever jobs are
//!   queued into one transaction and one fsync (group commit). A job validates before it
//!   mutates; a logical error leaves nothing behind, a storage error aborts the whole batch.
//! - Reads open their own read transaction on the blocking pool; they never wait for writes.
//! - Changes are published on the [`feed`] only after their transaction committed.
//! - Expensive per-message work (normalising, parsing, hashing, compressing) happens in the
//!   caller before the job is queued, so the writer thread only touches B-trees.

mod app_passwords;
pub mod backup;
pub mod blob;
mod claims;
pub mod feed;
pub mod fts;
mod imap;
mod import;
mod mailboxes;
mod messages;
mod metadata;
mod pack;
mod policy;
mod pop3;
pub mod schema;
mod sieve;
mod users;
mod verify;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};

use crate::config::StoreConfig;
pub use app_passwords::{AppPasswordInfo, MAX_APP_PASSWORDS, check_label};
pub use blob::{Codec, PreparedBlob};
pub use feed::{Change, ChangeFeed, ChangeKind, Origin};
pub use imap::{CopyOutcome, FlagMode, FlagOutcome, FlagState, MailboxStatus, Vanished};
pub use import::{KeptIds, LayoutReport, MailboxLayout};
pub use mailboxes::MailboxInfo;
pub use mailboxes::canonical_mailbox;
pub use messages::{
    AppendRequest, Appended, Listed, Loaded, MailboxStats, MessageInfo, Stats, Structure,
    UserStats, Want,
};
pub use metadata::{Annotated, Depth, MetadataSet};
pub use policy::{Applied, Usage, UsageReport, disk_status};
pub use pop3::{POP3_DELETED, Pop3Entry, Pop3Removal};
pub use schema::{MailboxRecord, MessageRecord, SpecialUse, SystemFlags, TraceRecord, UserRecord};
pub use sieve::{
    ActiveScript, MAX_NAME_CHARS, ScriptInfo, SieveError, SieveLimits,
    check_name as check_sieve_name,
};
pub use users::UserInfo;
pub use verify::{Problem, VerifyReport};

/// What a store operation can fail with. Logical errors (`NoSuch*`, `*Exists`, `Invalid*`)
/// are the caller's to report to the client; `Storage`, `DiskFull` and `Corrupt` are
/// server faults (temporary for the client, logged in detail).
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    NoSuchUser,
    UserExists,
    NoSuchMailbox,
    MailboxExists,
    InvalidName(String),
    /// DELETE of a mailbox that has children (IMAP `NO [HASCHILDREN]`, RFC 9051 §6.3.5).
    HasChildren,
    /// An import with kept ids into a mailbox that already holds mail (the names, with
    /// their message counts).
    MailboxNotEmpty(String),
    /// A kept UID below the mailbox's UIDNEXT (it may have been used).
    UidNotFree(u32),
    /// The database file is held by another process.
    Locked,
    /// No space left on the device: nothing of the failed batch was written.
    DiskFull,
    /// An I/O or database error: nothing of the failed batch was written.
    Storage(String),
    /// The file holds something this build cannot read.
    Corrupt(String),
    /// The store is shutting down.
    Closed,
}

impl StoreError {
    /// True for faults of the server rather than of the request.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            StoreError::Storage(_)
                | StoreError::DiskFull
                | StoreError::Corrupt(_)
                | StoreError::Closed
        )
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NoSuchUser => write!(f, "no such user"),
            StoreError::UserExists => write!(f, "user already exists"),
            StoreError::NoSuchMailbox => write!(f, "no such mailbox"),
            StoreError::MailboxExists => write!(f, "mailbox already exists"),
            StoreError::InvalidName(why) => write!(f, "invalid name: {why}"),
            StoreError::HasChildren => write!(f, "the mailbox has children"),
            StoreError::MailboxNotEmpty(names) => {
                write!(f, "mailboxes already hold mail: {names}")
            }
            StoreError::UidNotFree(uid) => {
                write!(f, "UID {uid} is below the mailbox's UIDNEXT")
            }
            StoreError::Locked => write!(f, "the store is in use by another process"),
            StoreError::DiskFull => write!(f, "no space left on the device"),
            StoreError::Storage(e) => write!(f, "storage error: {e}"),
            StoreError::Corrupt(e) => write!(f, "store cannot be read: {e}"),
            StoreError::Closed => write!(f, "the store is shutting down"),
        }
    }
}

impl std::error::Error for StoreError {}

fn from_io(e: &std::io::Error) -> StoreError {
    // ENOSPC = 28, EDQUOT = 122 on Linux.
    match e.raw_os_error() {
        Some(28) | Some(122) => StoreError::DiskFull,
        _ => StoreError::Storage(e.to_string()),
    }
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(io) => from_io(&io),
            redb::Error::DatabaseAlreadyOpen => StoreError::Locked,
            redb::Error::Corrupted(why) => StoreError::Corrupt(why),
            redb::Error::UpgradeRequired(v) => {
                StoreError::Corrupt(format!("redb file format {v} needs an upgrade"))
            }
            other => StoreError::Storage(other.to_string()),
        }
    }
}

/// `From` each error type after the colon for `$target`, through `$via`: the
/// conversion `$target` already has from `$via` decides what each one becomes.
macro_rules! from_via {
    ($target:ty, $via:ty: $($t:ty),*) => {$(
        impl From<$t> for $target {
            fn from(e: $t) -> Self {
                <$target>::from(<$via>::from(e))
            }
        }
    )*};
}
pub(crate) use from_via;

from_via!(
    StoreError,
    redb::Error:
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
    redb::CompactionError
);

fn builder(config: &StoreConfig) -> redb::Builder {
    let mut b = Database::builder();
    b.set_cache_size(usize::try_from(config.cache_mib.saturating_mul(1 << 20)).unwrap_or(16 << 20));
    b
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The database lock was poisoned by a panic while it was held.
fn poisoned() -> StoreError {
    StoreError::Storage("lock poisoned".into())
}

/// The database is closed: shut down, or opening it again failed.
fn not_open() -> StoreError {
    StoreError::Storage("the database is not open".into())
}

impl Shared {
    /// Runs `f` with the database, holding the lock shared.
    pub(crate) fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let guard = self.db.read().map_err(|_| poisoned())?;
        f(guard.as_ref().ok_or_else(not_open)?)
    }

    /// Runs `f` with exclusive access to the database.
    pub(crate) fn with_db_mut<T>(
        &self,
        f: impl FnOnce(&mut Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.db.write().map_err(|_| poisoned())?;
        f(guard.as_mut().ok_or_else(not_open)?)
    }

    /// A read transaction (it does not borrow the lock; it is counted while it lives).
    pub(crate) fn begin_read(&self) -> Result<Txn<ReadTransaction>, StoreError> {
        self.with_db(|db| Ok(Txn::new(db.begin_read()?, &self.open_txns)))
    }

    /// A write transaction for background work outside the writer thread (dictionary
    /// training, the full-text index). redb serialises it with the writer's.
    pub(crate) fn begin_write(&self) -> Result<Txn<WriteTransaction>, StoreError> {
        self.with_db(|db| Ok(Txn::new(db.begin_write()?, &self.open_txns)))
    }

    pub(crate) fn is_open(&self) -> bool {
        self.db.read().map(|g| g.is_some()).unwrap_or(false)
    }

    /// Closes and reopens the database file. redb refuses every transaction after an I/O
    /// error (a full disk, say) until the file is opened again, which also repairs it.
    pub(crate) fn reopen(&self) -> Result<(), StoreError> {
        let mut guard = self.db.write().map_err(|_| poisoned())?;
        // The file lock is released only when the old handle is gone.
        drop(guard.take());
        self.open_into(&mut guard)?;
        log::info!("store: database reopened");
        Ok(())
    }

    /// Empties redb's page cache, which otherwise stays full (up to `store.cache_mib`)
    /// for the life of the handle, by closing the database and opening it again: for the
    /// memory timer once the server is quiet. Does nothing (false) while the lock is
    /// taken or a transaction begun outside it is still alive, so no reader ever sees
    /// the file closed under it; a failed open is retried by the writer's next batch.
    pub(crate) fn release_cache(&self) -> Result<bool, StoreError> {
        let Ok(mut guard) = self.db.try_write() else {
            return Ok(false);
        };
        // Nothing can begin a transaction while the lock is held exclusively, so the count
        // can only fall from here.
        if self.open_txns.load(Ordering::SeqCst) > 0 {
            return Ok(false);
        }
        let Some(db) = guard.take() else {
            return Ok(false);
        };
        // Open again even if the close reported an error: the handle is gone either way.
        let closed = db.close();
        self.open_into(&mut guard)?;
        closed?;
        log::debug!("store: database reopened to empty its page cache");
        Ok(true)
    }

    /// Opens the database file into the (empty) slot.
    fn open_into(&self, slot: &mut Option<Database>) -> Result<(), StoreError> {
        let mut tries = 0;
        loop {
            match builder(&self.config).create(&self.path) {
                Ok(db) => {
                    *slot = Some(db);
                    return Ok(());
                }
                // A read transaction that was in flight may still hold the old handle.
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A transaction begun outside the database lock ([`Shared::begin_read`],
/// [`Shared::begin_write`]), counted while it lives so that [`Shared::release_cache`]
/// closes the database only when none is open. It reads as the transaction it holds.
pub(crate) struct Txn<T> {
    tx: T,
    _open: OpenTxn,
}

/// One count in [`Shared::open_txns`], given back when dropped.
struct OpenTxn(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for OpenTxn {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T> Txn<T> {
    fn new(tx: T, open: &Arc<std::sync::atomic::AtomicUsize>) -> Txn<T> {
        open.fetch_add(1, Ordering::SeqCst);
        Txn {
            tx,
            _open: OpenTxn(open.clone()),
        }
    }
}

impl<T> std::ops::Deref for Txn<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.tx
    }
}

impl Txn<WriteTransaction> {
    /// Commits; the count ends with the transaction.
    pub(crate) fn commit(self) -> Result<(), redb::CommitError> {
        let Txn { tx, _open } = self;
        tx.commit()
    }
}

pub(crate) struct Shared {
    /// When the writer last committed (ms since the Unix epoch); background packing waits
    /// for a quiet moment so it does not compete with deliveries.
    pub(crate) last_write_ms: std::sync::atomic::AtomicU64,
    /// Client reads ([`Store::read`]) running now, and when the last one ended (ms since
    /// the Unix epoch): automatic compaction waits for a moment without any.
    reads_in_flight: std::sync::atomic::AtomicUsize,
    last_read_ms: std::sync::atomic::AtomicU64,
    /// Readers and the writer take this lock shared; compaction and reopening take it
    /// exclusively. `None` after a failed reopen: every operation then fails as a
    /// storage fault until the next reopen succeeds.
    db: RwLock<Option<Database>>,
    pub(crate) codec: Codec,
    pub(crate) feed: ChangeFeed,
    pub(crate) config: StoreConfig,
    pub(crate) path: PathBuf,
    /// Users by name (see `users::UserCache`).
    pub(crate) users: users::UserCache,
    /// The full-text indexer's wake-up call and segment cache.
    pub(crate) fts: fts::State,
    /// The last listing of each mailbox in use ([`Store::messages`]).
    pub(crate) listings: messages::Listings,
    /// Transactions begun outside the database lock and still alive ([`Txn`]).
    open_txns: Arc<std::sync::atomic::AtomicUsize>,
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    writer: writer::Writer,
}

/// The file name of the database inside the data dir.
pub const DB_FILE: &str = "nestbox.redb";

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, runs migrations, and starts the
    /// writer thread.
    pub fn open(data_dir: &Path, config: &StoreConfig) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| from_io(&e))?;
        let path = data_dir.join(DB_FILE);
        let db = builder(config).create(&path)?;
        {
            let tx = db.begin_write()?;
            schema::migrate(&tx)?;
            tx.commit()?;
        }
        let codec = Codec::load(&db, config.compression_level)?;
        let shared = Arc::new(Shared {
            last_write_ms: std::sync::atomic::AtomicU64::new(0),
            reads_in_flight: std::sync::atomic::AtomicUsize::new(0),
            last_read_ms: std::sync::atomic::AtomicU64::new(0),
            db: RwLock::new(Some(db)),
            codec,
            feed: ChangeFeed::default(),
            config: config.clone(),
            path,
            users: users::UserCache::default(),
            fts: fts::State::default(),
            listings: messages::Listings::default(),
            open_txns: Arc::default(),
        });
        let writer = writer::Writer::start(shared.clone());
        Ok(Store { shared, writer })
    }

    /// The change feed sessions subscribe to.
    pub fn feed(&self) -> &ChangeFeed {
        &self.shared.feed
    }

    /// The compressor; callers prepare blobs with it before handing them to the store.
    /// Drops what the store caches in memory and has not used for `idle` (decompressed
    /// packs): for the server's memory timer, when clients are quiet.
    pub fn drop_unused_caches(&self, idle: std::time::Duration) {
        self.shared.codec.packs.drop_unused(idle);
        self.shared.fts.drop_unused(idle);
        self.shared.listings.drop_unused(idle);
    }

    /// How long since the last client read ended or write committed (zero while a read
    /// is in flight; background packing and indexing do not count).
    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(self.shared.idle_for())
    }

    /// Drops every cache the store keeps in memory, the zstd contexts and redb's page
    /// cache included ([`Shared::release_cache`]): for the memory timer once the server
    /// has been quiet for a while. False when a transaction was still open (try again
    /// later).
    pub async fn release_caches(&self) -> Result<bool, StoreError> {
        self.drop_unused_caches(Duration::ZERO);
        Codec::drop_contexts();
        let shared = self.shared.clone();
        smol::unblock(move || shared.release_cache()).await
    }

    pub fn codec(&self) -> &Codec {
        &self.shared.codec
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Runs `f` inside the next group-committed write transaction and returns its result
    /// once that transaction is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction, &mut writer::Batch) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.submit(f).await
    }

    /// For `/healthz`: a write job that writes nothing, so it succeeds only while the
    /// writer runs and commits succeed.
    pub async fn health_check(&self) -> Result<(), StoreError> {
        self.write(|_, _| Ok(())).await
    }

    /// Runs `f` with a fresh read transaction on the blocking pool.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction, &Shared) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = self.shared.clone();
        smol::unblock(move || {
            let _active = ReadActivity::begin(&shared);
            let tx = shared.begin_read()?;
            f(&tx, &shared)
        })
        .await
    }

    /// Bytes the database file takes on disk.
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.shared.path)
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Free and total bytes of the file system holding the database file (statvfs), if
    /// readable.
    pub fn disk_status(&self) -> Option<(u64, u64)> {
        policy::disk_status(self.shared.path.parent()?)
    }

    /// Free bytes of the file system holding the database file, if readable.
    pub fn disk_free(&self) -> Option<u64> {
        self.disk_status().map(|(free, _)| free)
    }

    /// The bytes the database file's blocks take on the disk (`du`): less than
    /// [`Store::file_size`] where the file is sparse.
    pub fn allocated_size(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.shared.path)
            .map(|m| m.blocks().saturating_mul(512))
            .unwrap_or(0)
    }

    /// Compacts the database file when `store.compact_when_free` of its disk blocks are
    /// free (or always, with `force`); returns whether it compacted. It holds every reader
    /// and the writer off while it runs, so it first waits for a moment without client
    /// reads and writes ([`compact_blocking`]).
    pub async fn compact(&self, force: bool) -> Result<bool, StoreError> {
        let shared = self.shared.clone();
        smol::unblock(move || {
            if force {
                // Asked for explicitly: let background packing finish first, since its
                // transactions make compaction give up.
                shared
                    .codec
                    .wait_background(std::time::Duration::from_secs(60));
            }
            compact_blocking(&shared, force)
        })
        .await
    }

    /// Stops the writer after the queued jobs are committed, and waits (up to 10 s) for
    /// background training and packing to notice and stop.
    pub fn shutdown(&self) {
        self.stop_indexer();
        self.writer.close();
        self.shared
            .codec
            .wait_background(std::time::Duration::from_secs(10));
    }
}

/// A client read in flight, for [`Shared::idle_for`]: counted from `begin` until dropped.
struct ReadActivity<'a>(&'a Shared);

impl<'a> ReadActivity<'a> {
    fn begin(shared: &'a Shared) -> Self {
        shared.reads_in_flight.fetch_add(1, Ordering::SeqCst);
        ReadActivity(shared)
    }
}

impl Drop for ReadActivity<'_> {
    fn drop(&mut self) {
        self.0.last_read_ms.store(now_ms(), Ordering::SeqCst);
        self.0.reads_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// Milliseconds since the last client read ended or write committed (background
    /// packing does not count); 0 while a read is in flight.
    fn idle_for(&self) -> u64 {
        if self.reads_in_flight.load(Ordering::SeqCst) > 0 {
            return 0;
        }
        let last = self
            .last_read_ms
            .load(Ordering::SeqCst)
            .max(self.last_write_ms.load(Ordering::Relaxed));
        now_ms().saturating_sub(last)
    }

    /// Sleeps until the store has been idle for [`COMPACT_IDLE_MS`]; false if `deadline`
    /// came first or `stop` said so.
    fn wait_for_idle(&self, deadline: Instant, stop: &dyn Fn() -> bool) -> bool {
        loop {
            let idle = self.idle_for();
            if idle >= COMPACT_IDLE_MS {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || stop() {
                return false;
            }
            let nap = Duration::from_millis((COMPACT_IDLE_MS - idle).min(50));
            std::thread::sleep(nap.min(deadline - now));
        }
    }
}

/// Compaction blocks every reader and writer until it is done (redb's `compact` relocates
/// pages and needs the file to itself; see docs/decisions.md, "Compaction waits for an
/// idle store"), up to a second for a store of tens of MB. So it starts only once no
/// client read or write has run for this long...
const COMPACT_IDLE_MS: u64 = 1000;
/// ...waiting at most this long for that when automatic (the packer after a burst, the
/// periodic check: they give up, and the next check tries again)...
const AUTO_IDLE_WAIT: Duration = Duration::from_secs(60);
/// ...and this long when asked for (`nestbox compact`), which then compacts regardless.
const FORCED_IDLE_WAIT: Duration = Duration::from_secs(10);
/// Between attempts while a transaction is open (compaction cannot start then).
const BUSY_RETRY: Duration = Duration::from_millis(50);

/// [`Store::compact`] on the calling thread (blocking): compacts when at least
/// `store.compact_when_free` of the file's disk blocks are free, or always with `force`.
/// Waits for an idle store first ([`COMPACT_IDLE_MS`]): without `force` it gives up,
/// returning false, when none comes within [`AUTO_IDLE_WAIT`]; with `force` it compacts
/// anyway after [`FORCED_IDLE_WAIT`]. A transaction open at that moment makes it try
/// again (without holding the database) until the wait is over.
pub(crate) fn compact_blocking(shared: &Shared, force: bool) -> Result<bool, StoreError> {
    compact_blocking_unless(shared, force, &|| false)
}

/// [`compact_blocking`], giving up (false) when `stop` says so while it waits for an idle
/// store: the packer stops waiting when new mail is to be packed.
pub(crate) fn compact_blocking_unless(
    shared: &Shared,
    force: bool,
    stop: &dyn Fn() -> bool,
) -> Result<bool, StoreError> {
    let wait = if force {
        FORCED_IDLE_WAIT
    } else {
        AUTO_IDLE_WAIT
    };
    let deadline = Instant::now() + wait;
    loop {
        if !shared.wait_for_idle(deadline, stop) && !force {
            if !stop() {
                log::info!("store: compaction put off: the store was not idle for a second");
            }
            return Ok(false);
        }
        if !force && !worth_compacting(shared)? {
            return Ok(false);
        }
        let size = || {
            std::fs::metadata(&shared.path)
                .map(|m| m.len())
                .unwrap_or(0)
        };
        let (before, started) = (size(), Instant::now());
        // Past the wait, an explicit compaction holds the lock while transactions are
        // open: none can begin, so the open ones end and it gets its turn under any load.
        let drain = force && Instant::now() >= deadline;
        match compact_file(shared, force, drain)? {
            Some(done) => {
                if done {
                    crate::metrics::compaction_run();
                    log::info!(
                        "store: compacted {before} -> {} bytes in {} ms",
                        size(),
                        started.elapsed().as_millis()
                    );
                }
                return Ok(done);
            }
            None if Instant::now() < deadline => std::thread::sleep(BUSY_RETRY),
            None => return Ok(false),
        }
    }
}

/// Whether at least `store.compact_when_free` of the file's disk blocks hold no data.
/// The blocks, not the file length: redb grows a small file by doubling it, sparsely,
/// and that unwritten tail costs no disk and is not worth a compaction (which blocks
/// everyone) — the next commits shrink it again. Read under the shared lock: only the
/// writer waits meanwhile.
fn worth_compacting(shared: &Shared) -> Result<bool, StoreError> {
    use std::os::unix::fs::MetadataExt;
    let stats = shared.with_db(|db| {
        let tx = db.begin_write()?;
        let s = tx.stats()?;
        tx.abort()?;
        Ok(s)
    })?;
    let used = stats.stored_bytes() + stats.metadata_bytes();
    let pages = stats.allocated_pages() * stats.page_size() as u64;
    let disk = std::fs::metadata(&shared.path)
        .map(|m| m.len().min(m.blocks().saturating_mul(512)))
        .unwrap_or(0);
    let free = disk.saturating_sub(used.min(pages)) as f64;
    Ok(disk > 0 && free / (disk as f64) >= shared.config.compact_when_free)
}

/// Pages a compaction may add to the file on top of the ones it moves: each of its
/// commits copies the root-to-leaf paths of the table tree, the system tree and the
/// tables it relocates (a few levels each), and grows the file when no free page is left
/// for them (`grow` in redb's page manager).
const COMPACT_MARGIN_PAGES: u64 = 64;

/// What `Database::compact` may need from the file system, for a file of `apparent`
/// bytes (`ls -l`) taking `allocated` bytes of blocks (`du`) and holding `live` bytes of
/// pages in use, with pages of `page` bytes: blocks for the sparse free pages it moves
/// pages into (at most the holes, and at most the pages it moves, which are live
/// pages), [`COMPACT_MARGIN_PAGES`], and 1/256 of the live bytes for the freed-page
/// lists its commits write (an 8-byte page number per moved page of 4 KiB, doubled for
/// half-full B-tree leaves). See docs/decisions.md, "What compaction needs on a nearly
/// full disk".
fn compaction_need(apparent: u64, allocated: u64, live: u64, page: u64) -> u64 {
    apparent
        .saturating_sub(allocated)
        .min(live)
        .saturating_add(COMPACT_MARGIN_PAGES.saturating_mul(page))
        .saturating_add(live / 256)
}

/// The bytes compaction of the file at `path` may need and the bytes free on its file
/// system; `None` when either cannot be read (compaction then goes ahead, as before).
fn compaction_room(path: &Path, live: u64, page: u64) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let (free, _) = policy::disk_status(path.parent()?)?;
    let allocated = meta.blocks().saturating_mul(512);
    Some((compaction_need(meta.len(), allocated, live, page), free))
}

/// The compaction itself, for [`compact_blocking`]: whether it compacted, or `None` when
/// a transaction was open (with `drain`, after waiting up to 2 s for them to end, holding
/// the lock). One call of redb's `compact`, which itself repeats its steps until no page
/// can move lower (each step relocates up to a million pages and commits); it offers no
/// way to stop between steps, so the lock is held for the whole of it.
fn compact_file(shared: &Shared, force: bool, drain: bool) -> Result<Option<bool>, StoreError> {
    let path = shared.path.clone();
    shared.with_db_mut(|db| {
        let stats = {
            let tx = db.begin_write()?;
            let s = tx.stats()?;
            tx.abort()?;
            s
        };
        let page = stats.page_size() as u64;
        let live = stats.allocated_pages() * page;
        if let Some((need, free)) = compaction_room(&path, live, page)
            && free < need
        {
            let why = format!(
                "compaction needs about {need} bytes free on the data dir's file system, \
                 {free} are free; free some space (or move the data dir) and compact again"
            );
            if force {
                return Err(StoreError::Storage(why));
            }
            log::warn!("store: compaction skipped: {why}");
            return Ok(Some(false));
        }
        let mut waits = if drain { 40 } else { 0 };
        loop {
            match db.compact() {
                Ok(done) => return Ok(Some(done)),
                Err(redb::CompactionError::TransactionInProgress) if waits > 0 => {
                    waits -= 1;
                    std::thread::sleep(BUSY_RETRY);
                }
                Err(redb::CompactionError::TransactionInProgress) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    })
}

#[cfg(test)]
mod tests;
