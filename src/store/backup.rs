//! Whole-store backups: one consistent snapshot of every table in one compressed file,
//! written from one read transaction (so clients keep working), and restored into an
//! empty data dir with every key and value as it was (same UIDVALIDITY, UIDs, flags,
//! modseqs: clients do not re-sync).
//!
//! The file (format version [`FORMAT_VERSION`]) is one zstd stream, with zstd's own frame
//! checksum, holding:
//!
//! ```text
//! header  MAGIC (16 bytes) | format version u32 | schema version u64 | created i64 (unix s)
//! table   'T' | name length u16 | name (the redb table name)
//! row     'R' | key length u32 | key | value length u32 | value   (redb's own encodings)
//! end     'E' | rows of the table u64
//! ...     (one table after the other)
//! trailer 'Z' | tables u32 | rows u64 | BLAKE3 of every byte before the hash (32 bytes)
//! ```
//!
//! All integers little-endian. Rows are the tables' raw redb bytes, so a backup carries
//! whatever the schema holds (blobs and packs stay compressed as stored) and restoring
//! needs no knowledge of the records; a backup of an older schema is restored as it was
//! and upgraded by the usual migration when the store is opened.
//!
//! **Adding a table** (a new feature's table in `schema.rs`): add one line to
//! [`tables`]. A backup refuses a store holding a table that list lacks, and the test
//! `every_table_is_backed_up` fails until it is there.

use std::io::{self, Read, Write};
use std::path::Path;

use redb::{
    Database, Durability, Key, ReadTransaction, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableHandle, Value,
};
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::schema;

/// Version of the backup file layout written by this build.
pub const FORMAT_VERSION: u32 = 1;
/// The first bytes of a backup's content.
pub const MAGIC: &[u8; 16] = b"nestbox-backup\r\n";
/// Bytes of content per chunk handed to the sink while writing.
pub const CHUNK: usize = 1 << 20;
/// Largest key or value accepted when reading a backup (redb values are far smaller in
/// a nestbox store: a message's compressed blob at most).
const MAX_FIELD: u64 = 1 << 30;
/// Rows of one table restored per write transaction, in bytes.
const RESTORE_BATCH: u64 = 64 << 20;
/// The page cache of the database being restored.
const RESTORE_CACHE: usize = 16 << 20;

/// Every table a backup carries, in the order it writes them. **One line per table**:
/// a table added to the schema is added here too.
fn tables(v: &mut impl Tables) -> Result<(), BackupError> {
    v.table(schema::META)?;
    v.table(schema::USERS)?;
    v.table(schema::MAILBOXES)?;
    v.table(schema::MAILBOX_NAMES)?;
    v.table(schema::SUBSCRIPTIONS)?;
    v.table(schema::POP3_UIDLS)?;
    v.table(schema::METADATA)?;
    v.table(schema::FTS_MAILBOXES)?;
    v.table(schema::FTS_SEGMENTS)?;
    v.table(super::sieve::SIEVE_SCRIPTS)?;
    v.table(super::sieve::SIEVE_STATE)?;
    v.table(schema::MESSAGES)?;
    v.table(schema::EXPUNGED)?;
    v.table(schema::TRACES)?;
    v.table(schema::TRACE_IDS)?;
    v.table(schema::DICTS)?;
    v.table(schema::DICT_CHUNKS)?;
    v.table(schema::BLOBS)?;
    v.table(schema::BLOB_DATA)?;
    v.table(schema::LOOSE_DATA)?;
    v.table(schema::BLOB_META)?;
    v.table(schema::LOOSE)?;
    v.table(schema::PACKS)?;
    v.table(schema::PACK_CHUNKS)?;
    Ok(())
}

/// Something done for each table of [`tables`], with its key and value types.
trait Tables {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), BackupError>;
}

/// What a backup, restore or check of a backup file can fail with.
#[derive(Debug)]
pub enum BackupError {
    Store(StoreError),
    Io(io::Error),
    /// The file is not a backup this build can read, or is damaged.
    Format(String),
    /// The store holds a table the backup format does not list (see [`tables`]).
    UnknownTable(String),
}

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupError::Store(e) => write!(f, "{e}"),
            BackupError::Io(e) => write!(f, "{e}"),
            BackupError::Format(why) => write!(f, "not a readable nestbox backup: {why}"),
            BackupError::UnknownTable(name) => write!(
                f,
                "the store has a table {name:?} that this build's backup does not cover"
            ),
        }
    }
}

impl std::error::Error for BackupError {}

impl From<StoreError> for BackupError {
    fn from(e: StoreError) -> Self {
        BackupError::Store(e)
    }
}

impl From<io::Error> for BackupError {
    fn from(e: io::Error) -> Self {
        BackupError::Io(e)
    }
}

super::from_via!(
    BackupError,
    StoreError:
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);

/// What a backup holds, as written or read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub format: u32,
    pub schema: u64,
    /// Unix seconds when the snapshot was taken.
    pub created: i64,
    pub tables: u32,
    pub rows: u64,
    /// Uncompressed content bytes.
    pub bytes: u64,
}

/// Progress of a backup: key and value bytes written so far, of about `total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// Counts and hashes what passes through.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or(buf);
        self.hasher.update(written);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn len_u32(n: usize) -> Result<[u8; 4], BackupError> {
    u32::try_from(n)
        .map(u32::to_le_bytes)
        .map_err(|_| BackupError::Format("a value larger than 4 GiB".into()))
}

/// Names of the tables [`tables`] lists.
struct Names(Vec<String>);

impl Tables for Names {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), BackupError> {
        self.0.push(def.name().to_string());
        Ok(())
    }
}

fn table_names() -> Result<Vec<String>, BackupError> {
    let mut n = Names(Vec::new());
    tables(&mut n)?;
    Ok(n.0)
}

/// Sums the stored bytes of every table, for progress.
struct Total<'t> {
    tx: &'t ReadTransaction,
    bytes: u64,
}

impl Tables for Total<'_> {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), BackupError> {
        match self.tx.open_table(def) {
            Ok(t) => self.bytes += t.stats()?.stored_bytes(),
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}

/// Writes every table's rows.
struct Dump<'t, W: Write> {
    tx: &'t ReadTransaction,
    out: Hashing<W>,
    progress: &'t mut dyn FnMut(Progress),
    total: u64,
    done: u64,
    tables: u32,
    rows: u64,
}

impl<W: Write> Tables for Dump<'_, W> {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), BackupError> {
        let t = match self.tx.open_table(def) {
            Ok(t) => t,
            // An old store without a newer table: nothing to carry.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let name = def.name().as_bytes();
        let name_len = u16::try_from(name.len())
            .map_err(|_| BackupError::Format("table name too long".into()))?;
        self.out.write_all(b"T")?;
        self.out.write_all(&name_len.to_le_bytes())?;
        self.out.write_all(name)?;
        let mut rows = 0u64;
        let mut since = 0u64;
        for row in t.iter()? {
            let (k, v) = row?;
            let kv = k.value();
            let vv = v.value();
            let kb = K::as_bytes(&kv);
            let vb = V::as_bytes(&vv);
            let (kb, vb) = (kb.as_ref(), vb.as_ref());
            self.out.write_all(b"R")?;
            self.out.write_all(&len_u32(kb.len())?)?;
            self.out.write_all(kb)?;
            self.out.write_all(&len_u32(vb.len())?)?;
            self.out.write_all(vb)?;
            rows += 1;
            let n = (kb.len() + vb.len()) as u64;
            self.done += n;
            since += n;
            if since >= CHUNK as u64 {
                since = 0;
                (self.progress)(Progress {
                    done: self.done,
                    total: self.total.max(self.done),
                });
            }
        }
        self.out.write_all(b"E")?;
        self.out.write_all(&rows.to_le_bytes())?;
        self.tables += 1;
        self.rows += rows;
        Ok(())
    }
}

/// Writes a backup of everything `tx` sees to `out` (compressed at zstd `level`),
/// reporting progress about every [`CHUNK`] of rows. Refuses a store that holds a table
/// [`tables`] does not list, rather than leave it out silently.
pub fn write(
    tx: &ReadTransaction,
    out: impl Write,
    level: i32,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, BackupError> {
    let known = table_names()?;
    for handle in tx.list_tables()? {
        if !known.iter().any(|n| n == handle.name()) {
            return Err(BackupError::UnknownTable(handle.name().to_string()));
        }
    }
    let schema_version = tx
        .open_table(schema::META)?
        .get("schema_version")?
        .map(|v| v.value())
        .unwrap_or(0);
    let mut total = Total { tx, bytes: 0 };
    tables(&mut total)?;
    let mut enc = zstd::stream::write::Encoder::new(out, level)?;
    enc.include_checksum(true)?;
    let created = super::now();
    let mut dump = Dump {
        tx,
        out: Hashing {
            inner: enc,
            hasher: blake3::Hasher::new(),
            bytes: 0,
        },
        progress,
        total: total.bytes,
        done: 0,
        tables: 0,
        rows: 0,
    };
    dump.out.write_all(MAGIC)?;
    dump.out.write_all(&FORMAT_VERSION.to_le_bytes())?;
    dump.out.write_all(&schema_version.to_le_bytes())?;
    dump.out.write_all(&created.to_le_bytes())?;
    tables(&mut dump)?;
    let (tables_n, rows) = (dump.tables, dump.rows);
    dump.out.write_all(b"Z")?;
    dump.out.write_all(&tables_n.to_le_bytes())?;
    dump.out.write_all(&rows.to_le_bytes())?;
    let hash = dump.out.hasher.finalize();
    let bytes = dump.out.bytes + 32;
    (dump.progress)(Progress {
        done: dump.done,
        total: dump.done,
    });
    let mut enc = dump.out.inner;
    enc.write_all(hash.as_bytes())?;
    enc.finish()?.flush()?;
    Ok(Summary {
        format: FORMAT_VERSION,
        schema: schema_version,
        created,
        tables: tables_n,
        rows,
        bytes,
    })
}

/// One record of a backup's content.
enum Record {
    Table(String),
    Row(Vec<u8>, Vec<u8>),
    TableEnd(u64),
    /// The trailer (its hash already checked).
    End {
        tables: u32,
        rows: u64,
    },
}

/// Reads a backup's records, checking the hash at the end.
struct Reader<R: Read> {
    inner: zstd::stream::read::Decoder<'static, io::BufReader<R>>,
    hasher: blake3::Hasher,
    bytes: u64,
    summary: Summary,
}

fn format(why: impl Into<String>) -> BackupError {
    BackupError::Format(why.into())
}

impl<R: Read> Reader<R> {
    /// Reads the header.
    pub fn new(inner: R) -> Result<Self, BackupError> {
        let mut r = Reader {
            inner: zstd::stream::read::Decoder::new(inner)
                .map_err(|e| format(format!("not zstd: {e}")))?,
            hasher: blake3::Hasher::new(),
            bytes: 0,
            summary: Summary::default(),
        };
        let magic: [u8; 16] = r.array()?;
        if &magic != MAGIC {
            return Err(format("no nestbox backup header"));
        }
        let version = u32::from_le_bytes(r.array()?);
        if version != FORMAT_VERSION {
            return Err(format(format!(
                "format version {version}; this build reads version {FORMAT_VERSION}"
            )));
        }
        r.summary.format = version;
        r.summary.schema = u64::from_le_bytes(r.array()?);
        r.summary.created = i64::from_le_bytes(r.array()?);
        if r.summary.schema > schema::SCHEMA_VERSION {
            return Err(format(format!(
                "the store in it has schema version {}; this build reads up to {}",
                r.summary.schema,
                schema::SCHEMA_VERSION
            )));
        }
        Ok(r)
    }

    fn fill(&mut self, buf: &mut [u8], hash: bool) -> Result<(), BackupError> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => format("the file ends early (truncated?)"),
            _ => format(e.to_string()),
        })?;
        if hash {
            self.hasher.update(buf);
            self.bytes += buf.len() as u64;
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BackupError> {
        let mut a = [0u8; N];
        self.fill(&mut a, true)?;
        Ok(a)
    }

    fn field(&mut self) -> Result<Vec<u8>, BackupError> {
        let len = u64::from(u32::from_le_bytes(self.array()?));
        if len > MAX_FIELD {
            return Err(format("a field larger than 1 GiB"));
        }
        let mut buf = Vec::new();
        (&mut self.inner)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|e| format(e.to_string()))?;
        if buf.len() as u64 != len {
            return Err(format("the file ends early (truncated?)"));
        }
        self.hasher.update(&buf);
        self.bytes += len;
        Ok(buf)
    }

    fn record(&mut self) -> Result<Record, BackupError> {
        let [tag] = self.array()?;
        match tag {
            b'T' => {
                let len = u16::from_le_bytes(self.array()?);
                let mut name = vec![0u8; usize::from(len)];
                self.fill(&mut name, true)?;
                String::from_utf8(name)
                    .map(Record::Table)
                    .map_err(|_| format("a table name is not UTF-8"))
            }
            b'R' => {
                let k = self.field()?;
                let v = self.field()?;
                Ok(Record::Row(k, v))
            }
            b'E' => Ok(Record::TableEnd(u64::from_le_bytes(self.array()?))),
            b'Z' => {
                let tables = u32::from_le_bytes(self.array()?);
                let rows = u64::from_le_bytes(self.array()?);
                let expected = self.hasher.finalize();
                let mut hash = [0u8; 32];
                self.fill(&mut hash, false)?;
                if &hash != expected.as_bytes() {
                    return Err(format("checksum mismatch: the file is damaged"));
                }
                // Anything after the trailer (zstd verifies its own frame checksum when
                // the frame ends) means the file is not what was written.
                let mut rest = [0u8; 1];
                match self.inner.read(&mut rest) {
                    Ok(0) => {}
                    Ok(_) => return Err(format("data after the end of the backup")),
                    Err(e) => return Err(format(e.to_string())),
                }
                self.summary.tables = tables;
                self.summary.rows = rows;
                self.summary.bytes = self.bytes + 32;
                Ok(Record::End { tables, rows })
            }
            other => Err(format(format!("unknown record type {other:#04x}"))),
        }
    }

    /// The header's facts (and, after the end, the counts).
    pub fn summary(&self) -> &Summary {
        &self.summary
    }
}

/// Reads a whole backup without writing anything: structure, table names, row counts
/// and the checksum.
pub fn check(input: impl Read) -> Result<Summary, BackupError> {
    let known = table_names()?;
    let mut r = Reader::new(input)?;
    let (mut tables, mut rows) = (0u32, 0u64);
    let mut in_table: Option<(String, u64)> = None;
    loop {
        match (r.record()?, &mut in_table) {
            (Record::Table(name), None) => {
                if !known.contains(&name) {
                    return Err(format(format!("unknown table {name:?}")));
                }
                in_table = Some((name, 0));
            }
            (Record::Row(..), Some((_, n))) => *n += 1,
            (Record::TableEnd(count), Some((name, n))) => {
                if count != *n {
                    return Err(format(format!("table {name}: {n} rows, {count} announced")));
                }
                tables += 1;
                rows += *n;
                in_table = None;
            }
            (Record::End { tables: t, rows: n }, None) => {
                if (t, n) != (tables, rows) {
                    return Err(format("the trailer's counts do not match the content"));
                }
                return Ok(r.summary().clone());
            }
            _ => return Err(format("records out of order")),
        }
    }
}

/// Inserts one table's rows from the reader, committing every [`RESTORE_BATCH`] bytes.
struct Load<'a, R: Read> {
    db: &'a Database,
    reader: &'a mut Reader<R>,
    name: String,
    found: bool,
    progress: &'a mut dyn FnMut(Progress),
    done: u64,
}

fn width_ok<T: Value>(bytes: &[u8]) -> bool {
    T::fixed_width().is_none_or(|w| w == bytes.len())
}

impl<R: Read> Tables for Load<'_, R> {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), BackupError> {
        if def.name() != self.name {
            return Ok(());
        }
        self.found = true;
        let mut rows = 0u64;
        loop {
            let mut tx = self.db.begin_write()?;
            tx.set_durability(Durability::None)
                .map_err(|e| BackupError::Store(StoreError::Storage(e.to_string())))?;
            let mut batch = 0u64;
            let finished = {
                let mut t = tx.open_table(def)?;
                loop {
                    match self.reader.record()? {
                        Record::Row(k, v) => {
                            if !width_ok::<K>(&k) || !width_ok::<V>(&v) {
                                return Err(format(format!(
                                    "table {}: a key or value of the wrong size",
                                    self.name
                                )));
                            }
                            t.insert(K::from_bytes(&k), V::from_bytes(&v))?;
                            rows += 1;
                            let n = (k.len() + v.len()) as u64;
                            batch += n;
                            self.done += n;
                            if batch >= RESTORE_BATCH {
                                break false;
                            }
                        }
                        Record::TableEnd(n) if n == rows => break true,
                        Record::TableEnd(n) => {
                            return Err(format(format!(
                                "table {}: {rows} rows, {n} announced",
                                self.name
                            )));
                        }
                        _ => return Err(format("records out of order")),
                    }
                }
            };
            tx.commit()?;
            (self.progress)(Progress {
                done: self.done,
                total: 0,
            });
            if finished {
                return Ok(());
            }
        }
    }
}

/// Restores a backup into a new database file at `db_path`, which must not exist. The
/// file is checked whole first (so a damaged backup writes nothing), then loaded into
/// `db_path` with a temporary name and renamed when complete and durable.
pub fn restore(
    backup: &Path,
    db_path: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, BackupError> {
    let open = || std::fs::File::open(backup).map_err(BackupError::Io);
    let summary = check(open()?)?;
    let mut tmp = db_path.as_os_str().to_owned();
    tmp.push(".restoring");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        // redb's default page cache is 1 GiB, and a restore writes every page once: with
        // it, RSS grew with the store (289 MiB for a 276 MB one). 16 MiB is plenty for
        // writing in key order, and the restore is over before anyone waits for it.
        let db = Database::builder()
            .set_cache_size(RESTORE_CACHE)
            .create(&tmp)?;
        let mut reader = Reader::new(open()?)?;
        let mut done = 0u64;
        loop {
            match reader.record()? {
                Record::Table(name) => {
                    let mut load = Load {
                        db: &db,
                        reader: &mut reader,
                        name,
                        found: false,
                        progress: &mut *progress,
                        done,
                    };
                    tables(&mut load)?;
                    if !load.found {
                        return Err(format(format!("unknown table {:?}", load.name)));
                    }
                    done = load.done;
                }
                Record::End { .. } => break,
                _ => return Err(format("records out of order")),
            }
        }
        // The last commit makes the earlier non-durable ones durable too.
        let tx = db.begin_write()?;
        tx.commit()?;
        drop(db);
        std::fs::rename(&tmp, db_path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| summary)
}

impl super::Store {
    /// Streams a backup of the whole store from one read transaction on the blocking
    /// pool (never on the writer thread): `sink` gets the file's bytes in chunks of about
    /// [`CHUNK`] with the progress so far, and may stop the backup by
    /// returning false. Writes and reads go on meanwhile; the snapshot is what was
    /// committed when the backup started.
    pub async fn backup<F>(&self, sink: F) -> Result<Summary, String>
    where
        F: FnMut(Vec<u8>, Progress) -> bool + Send + 'static,
    {
        let shared = self.shared.clone();
        let level = shared.config.compression_level;
        smol::unblock(move || {
            let tx = shared.begin_read().map_err(|e| e.to_string())?;
            let progress = std::sync::Arc::new(std::sync::Mutex::new(Progress::default()));
            let mut out = ChunkSink {
                buf: Vec::with_capacity(CHUNK),
                sink,
                progress: progress.clone(),
            };
            let mut on_progress = |p: Progress| {
                if let Ok(mut g) = progress.lock() {
                    *g = p;
                }
            };
            let summary =
                write(&tx, &mut out, level, &mut on_progress).map_err(|e| e.to_string())?;
            out.send().map_err(|e| e.to_string())?;
            Ok(summary)
        })
        .await
    }
}

/// Buffers a backup's bytes into chunks for a sink.
struct ChunkSink<F> {
    buf: Vec<u8>,
    sink: F,
    progress: std::sync::Arc<std::sync::Mutex<Progress>>,
}

impl<F: FnMut(Vec<u8>, Progress) -> bool> ChunkSink<F> {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let p = self.progress.lock().map(|g| *g).unwrap_or_default();
        if (self.sink)(chunk, p) {
            Ok(())
        } else {
            Err(std::io::Error::other("the backup was abandoned"))
        }
    }
}

impl<F: FnMut(Vec<u8>, Progress) -> bool> std::io::Write for ChunkSink<F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    /// A new database at `path` with every table of the current schema.
    fn migrated(path: &Path) -> Database {
        let db = Database::create(path).unwrap();
        let tx = db.begin_write().unwrap();
        schema::migrate(&tx).unwrap();
        tx.commit().unwrap();
        db
    }

    #[test]
    fn every_table_is_backed_up() {
        let dir = tempfile::tempdir().unwrap();
        let db = migrated(&dir.path().join("t.redb"));
        let known = table_names().unwrap();
        let tx = db.begin_read().unwrap();
        for t in tx.list_tables().unwrap() {
            assert!(
                known.iter().any(|n| n == t.name()),
                "table {} is not in store::backup::tables",
                t.name()
            );
        }
    }

    #[test]
    fn backup_round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let db = migrated(&dir.path().join("a.redb"));
        let tx = db.begin_write().unwrap();
        tx.open_table(schema::USERS)
            .unwrap()
            .insert("alice", b"record".as_slice())
            .unwrap();
        tx.open_table(schema::MESSAGES)
            .unwrap()
            .insert((7, 42), b"message".as_slice())
            .unwrap();
        tx.commit().unwrap();
        let mut file = Vec::new();
        let tx = db.begin_read().unwrap();
        let written = write(&tx, &mut file, 3, &mut |_| {}).unwrap();
        assert_eq!(check(file.as_slice()).unwrap().rows, written.rows);

        let path = dir.path().join("b.nbk");
        std::fs::write(&path, &file).unwrap();
        let target = dir.path().join("b.redb");
        restore(&path, &target, &mut |_| {}).unwrap();
        let db2 = Database::create(&target).unwrap();
        let tx2 = db2.begin_read().unwrap();
        let m = tx2.open_table(schema::MESSAGES).unwrap();
        assert_eq!(m.get((7, 42)).unwrap().unwrap().value(), b"message");

        // Damage: the zstd frame checksum or our hash must catch any flipped byte.
        for at in [20, file.len() / 2, file.len() - 5] {
            let mut bad = file.clone();
            bad[at] ^= 0x40;
            assert!(check(bad.as_slice()).is_err(), "flip at {at} not noticed");
        }
        assert!(check(&file[..file.len() - 10]).is_err());
    }
}
