//! Maildir directories: <https://cr.yp.to/proto/maildir.html>, with Maildir++ folders
//! (<https://www.courier-mta.org/imap/README.maildirquota.html>) and Dovecot's additions
//! (<https://doc.dovecot.org/admin_manual/mailbox_formats/maildir/>).
//!
//! - A maildir has `cur/`, `new/` and `tmp/`. Messages are files in `cur/` and `new/`
//!   (`tmp/` holds deliveries in progress and is ignored, as are names starting with `.`).
//! - A name is `<unique>[:2,<flags>]`. Flags: `D` draft, `F` flagged, `P` passed (mapped to
//!   the keyword `$Forwarded`), `R` replied (answered), `S` seen, `T` trashed (deleted).
//!   Lowercase `a`..`z` are Dovecot keywords: letter `n` is line `n <keyword>` of the
//!   folder's `dovecot-keywords` file; letters without a line there are ignored.
//! - Maildir++ folders are direct subdirectories named `.Name.Sub`, read as mailbox
//!   `Name/Sub`; the top maildir is `INBOX`. Names are returned as they are on disk
//!   (Dovecot stores modified UTF-7, RFC 3501 section 5.1.3); they are not decoded. Dovecot's
//!   `LAYOUT=fs` (nested directories without dots) is not read.
//! - `,S=<size>` in the unique part (Maildir++/Dovecot) is the file size; a shorter file is
//!   reported as truncated.
//! - The internal date is the file's mtime (Dovecot does the same without `dovecot-uidlist`).
//!
//! Writing ([`write_maildir_message`]) stores LF line ends (CRLF -> LF, bare CR kept), sets
//! flags in the name and keywords through `dovecot-keywords` (at most 26 per folder; more
//! are dropped), and the mtime to the internal date. Reading a maildir whose files use LF
//! and writing it back yields the same contents, flags and dates; files stored with CRLF
//! come back with LF, and messages from `new/` come back in `cur/`.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{FORWARDED_KEYWORD, Flags, ImportedMessage, split_line_end};
use crate::contracts::SystemFlags;

/// Dovecot's keyword file in each maildir folder.
const KEYWORDS_FILE: &str = "dovecot-keywords";
/// Cap on reading `dovecot-keywords`: 26 keywords never need more.
const KEYWORDS_FILE_LIMIT: u64 = 64 * 1024;
/// Keyword letters `a`..`z`.
const KEYWORD_SLOTS: usize = 26;

/// What went wrong reading a maildir. Each variant names the path involved.
#[derive(Debug)]
pub enum MaildirError {
    /// The directory lacks `cur/`, `new/` or `tmp/`.
    NotAMaildir { path: PathBuf },
    /// A Maildir++ folder name that is not UTF-8.
    FolderNameNotUtf8 { path: PathBuf },
    /// A mailbox name that cannot be a Maildir++ folder (see [`folder_path`]).
    MailboxNameUnusable { name: String },
    /// The message file is bigger than the size cap (after CRLF normalisation).
    MessageTooLarge {
        path: PathBuf,
        size: u64,
        limit: usize,
    },
    /// The file is shorter than the `,S=` size in its name.
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    /// The message file is empty.
    EmptyFile { path: PathBuf },
    /// Listing or reading failed.
    Io { path: PathBuf, source: io::Error },
}

impl fmt::Display for MaildirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaildirError::NotAMaildir { path } => write!(
                f,
                "not a maildir: {} has no cur/, new/ and tmp/ directories",
                path.display()
            ),
            MaildirError::FolderNameNotUtf8 { path } => {
                write!(f, "maildir folder name is not UTF-8: {}", path.display())
            }
            MaildirError::MailboxNameUnusable { name } => {
                write!(f, "mailbox name {name:?} cannot be a Maildir++ folder")
            }
            MaildirError::MessageTooLarge { path, size, limit } => write!(
                f,
                "message file {} is {size} bytes, over the {limit}-byte limit",
                path.display()
            ),
            MaildirError::Truncated {
                path,
                expected,
                actual,
            } => write!(
                f,
                "message file {} is truncated: {actual} bytes, its name says {expected}",
                path.display()
            ),
            MaildirError::EmptyFile { path } => {
                write!(f, "message file {} is empty", path.display())
            }
            MaildirError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for MaildirError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MaildirError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> MaildirError + '_ {
    move |source| MaildirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One message file found by [`scan_maildir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaildirEntry {
    /// `INBOX` for the top maildir, `Name/Sub` for Maildir++ folder `.Name.Sub`.
    pub mailbox: String,
    pub path: PathBuf,
    /// The file is in `new/` (not yet seen by a client; it has no flags).
    pub is_new: bool,
    /// Flags from the name's `:2,` info, keywords resolved through `dovecot-keywords`.
    pub flags: Flags,
    /// `,S=<size>` from the name, if any.
    pub expected_size: Option<u64>,
}

/// Lists the messages of the maildir at `path` and of its Maildir++ folders.
///
/// Order is deterministic: INBOX first, then folders by directory name; within a folder,
/// by the name's leading timestamp (names without one last), then by name.
pub fn scan_maildir(path: &Path) -> Result<Vec<MaildirEntry>, MaildirError> {
    if !["cur", "new", "tmp"].iter().all(|d| path.join(d).is_dir()) {
        return Err(MaildirError::NotAMaildir {
            path: path.to_owned(),
        });
    }
    let mut entries = Vec::new();
    for (mailbox, dir) in folders(path)? {
        scan_folder(&dir, &mailbox, &mut entries)?;
    }
    Ok(entries)
}

/// The folders of the maildir at `path` as (mailbox name, directory): `INBOX` for `path`
/// itself first, then the Maildir++ folders by directory name (`.Name.Sub` is `Name/Sub`,
/// names as on disk).
pub fn folders(path: &Path) -> Result<Vec<(String, PathBuf)>, MaildirError> {
    let mut dirs = Vec::new();
    for item in fs::read_dir(path).map_err(io_err(path))? {
        let item = item.map_err(io_err(path))?;
        let name = item.file_name();
        if name.as_encoded_bytes().starts_with(b".") && item.path().is_dir() {
            dirs.push((name, item.path()));
        }
    }
    dirs.sort();
    let mut out = vec![("INBOX".to_owned(), path.to_owned())];
    for (name, dir) in dirs {
        let mailbox = mailbox_name(&name)
            .ok_or_else(|| MaildirError::FolderNameNotUtf8 { path: dir.clone() })?;
        out.push((mailbox, dir));
    }
    Ok(out)
}

/// `.Name.Sub` -> `Name/Sub`; `None` when not UTF-8.
fn mailbox_name(dir_name: &OsStr) -> Option<String> {
    let name = dir_name.to_str()?;
    Some(name.strip_prefix('.').unwrap_or(name).replace('.', "/"))
}

/// The directory of `mailbox` in a Maildir++ tree rooted at `root`: `root` for `INBOX`,
/// `root/.Name.Sub` for `Name/Sub`, with characters a folder name cannot hold escaped
/// (see [`super::names`]). Only the empty name is refused.
pub fn folder_path(root: &Path, mailbox: &str) -> Result<PathBuf, MaildirError> {
    if mailbox.is_empty() {
        return Err(MaildirError::MailboxNameUnusable {
            name: mailbox.to_owned(),
        });
    }
    Ok(super::names::maildir_folder(root, mailbox))
}

fn scan_folder(
    dir: &Path,
    mailbox: &str,
    entries: &mut Vec<MaildirEntry>,
) -> Result<(), MaildirError> {
    let keywords = read_keywords(dir)?;
    let start = entries.len();
    for (sub, is_new) in [("cur", false), ("new", true)] {
        let sub_dir = dir.join(sub);
        let listing = match fs::read_dir(&sub_dir) {
            Ok(listing) => listing,
            // Maildir++ folders may lack a subdirectory until something is delivered.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&sub_dir)(e)),
        };
        for item in listing {
            let item = item.map_err(io_err(&sub_dir))?;
            let path = item.path();
            let name = item.file_name();
            if name.as_encoded_bytes().starts_with(b".") || !path.is_file() {
                continue;
            }
            let info = NameInfo::parse(name.as_encoded_bytes());
            entries.push(MaildirEntry {
                mailbox: mailbox.to_owned(),
                path,
                is_new,
                flags: info.flags(&keywords),
                expected_size: info.size,
            });
        }
    }
    if let Some(folder) = entries.get_mut(start..) {
        folder.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    }
    Ok(())
}

fn sort_key(entry: &MaildirEntry) -> (bool, u64, &[u8], bool) {
    let name = entry
        .path
        .file_name()
        .map_or(&b""[..], OsStr::as_encoded_bytes);
    let timestamp = leading_number(name);
    (
        timestamp.is_none(),
        timestamp.unwrap_or(0),
        name,
        entry.is_new,
    )
}

fn leading_number(name: &[u8]) -> Option<u64> {
    let digits = name.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(name.get(..digits)?).ok()?.parse().ok()
}

/// What a message file name says: `<unique>[,S=<size>][,W=<size>][:2,<flags>]`.
struct NameInfo<'a> {
    size: Option<u64>,
    letters: &'a [u8],
}

impl<'a> NameInfo<'a> {
    fn parse(name: &'a [u8]) -> NameInfo<'a> {
        let colon = name.iter().position(|&b| b == b':');
        let (base, info) = match colon {
            Some(at) => (
                name.get(..at).unwrap_or(name),
                name.get(at.saturating_add(1)..).unwrap_or(&[]),
            ),
            None => (name, &b""[..]),
        };
        let size = base
            .split(|&b| b == b',')
            .find_map(|part| part.strip_prefix(b"S="))
            .and_then(|digits| std::str::from_utf8(digits).ok()?.parse().ok());
        NameInfo {
            size,
            letters: info.strip_prefix(b"2,").unwrap_or(&[]),
        }
    }

    fn flags(&self, keywords: &[Option<String>]) -> Flags {
        let mut flags = Flags::default();
        for &letter in self.letters {
            match letter {
                b'D' => flags.system.set(SystemFlags::DRAFT),
                b'F' => flags.system.set(SystemFlags::FLAGGED),
                b'P' => {
                    flags.add_keyword(FORWARDED_KEYWORD);
                }
                b'R' => flags.system.set(SystemFlags::ANSWERED),
                b'S' => flags.system.set(SystemFlags::SEEN),
                b'T' => flags.system.set(SystemFlags::DELETED),
                b'a'..=b'z' => {
                    let slot = usize::from(letter - b'a');
                    if let Some(Some(keyword)) = keywords.get(slot) {
                        flags.add_keyword(keyword);
                    }
                }
                _ => {}
            }
        }
        flags
    }
}

/// Reads `dir/dovecot-keywords` (lines `<0..25> <keyword>`); missing file = no keywords.
/// Lines that do not parse, or name an invalid keyword, are ignored.
fn read_keywords(dir: &Path) -> Result<Vec<Option<String>>, MaildirError> {
    let mut table = vec![None; KEYWORD_SLOTS];
    let path = dir.join(KEYWORDS_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(table),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let mut text = Vec::new();
    file.take(KEYWORDS_FILE_LIMIT)
        .read_to_end(&mut text)
        .map_err(io_err(&path))?;
    for line in String::from_utf8_lossy(&text).lines() {
        let Some((index, keyword)) = line.trim().split_once(' ') else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        if let Some(slot) = table.get_mut(index)
            && super::is_keyword(keyword)
        {
            *slot = Some(keyword.to_owned());
        }
    }
    Ok(table)
}

/// Reads one message file: size-checked before and while reading, LF -> CRLF, flags from
/// the entry, internal date from the mtime.
pub fn read_maildir_message(
    entry: &MaildirEntry,
    max_size: usize,
) -> Result<ImportedMessage, MaildirError> {
    let path = entry.path.as_path();
    let file = File::open(path).map_err(io_err(path))?;
    let meta = file.metadata().map_err(io_err(path))?;
    let limit = u64::try_from(max_size).unwrap_or(u64::MAX);
    let too_large = |size: u64| MaildirError::MessageTooLarge {
        path: path.to_owned(),
        size,
        limit: max_size,
    };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow after the check; never read more than the cap + 1.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(io_err(path))?;
    let actual = u64::try_from(data.len()).unwrap_or(u64::MAX);
    if actual > limit {
        return Err(too_large(actual));
    }
    if let Some(expected) = entry.expected_size
        && actual < expected
    {
        return Err(MaildirError::Truncated {
            path: path.to_owned(),
            expected,
            actual,
        });
    }
    if data.is_empty() {
        return Err(MaildirError::EmptyFile {
            path: path.to_owned(),
        });
    }
    let raw = crate::util::to_crlf(data);
    if raw.len() > max_size {
        return Err(too_large(u64::try_from(raw.len()).unwrap_or(u64::MAX)));
    }
    Ok(ImportedMessage {
        raw,
        internal_date: meta.modified().ok().map(unix_seconds),
        flags: entry.flags.clone(),
        envelope_from: None,
    })
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

fn system_time(unix: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(unix.unsigned_abs());
    if unix >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// Writes one message into the maildir `dir` (created with `cur/`, `new/`, `tmp/` if
/// missing) the maildir way: into `tmp/`, synced, then renamed into `cur/` as
/// `<internal_date>.<seq>_<pid>.nestbox:2,<flags>` with the flag letters in ASCII order.
///
/// The caller gives each message of one export a distinct `seq`; a name that already exists
/// is an `AlreadyExists` error, never overwritten. Keywords other than `$Forwarded` are
/// recorded in `dir/dovecot-keywords`; when its 26 letters are taken, further keywords are
/// dropped. The mtime is set to `internal_date` where the filesystem allows.
pub fn write_maildir_message(
    dir: &Path,
    raw_crlf: &[u8],
    flags: &Flags,
    internal_date: i64,
    seq: u64,
) -> io::Result<PathBuf> {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    let letters = flag_letters(dir, flags)?;
    let unique = format!("{internal_date}.{seq}_{}.nestbox", std::process::id());
    let target = dir.join("cur").join(format!("{unique}:2,{letters}"));
    if fs::symlink_metadata(&target).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists", target.display()),
        ));
    }
    let tmp = dir.join("tmp").join(&unique);
    let result = write_tmp(&tmp, raw_crlf, internal_date).and_then(|()| fs::rename(&tmp, &target));
    if result.is_err() {
        // Best effort: do not leave a half-written file in tmp/.
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| target)
}

fn write_tmp(tmp: &Path, raw_crlf: &[u8], internal_date: i64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    {
        let mut w = BufWriter::new(&file);
        for line in raw_crlf.split_inclusive(|&b| b == b'\n') {
            let (content, newline) = split_line_end(line);
            w.write_all(content)?;
            if newline {
                w.write_all(b"\n")?;
            }
        }
        w.flush()?;
    }
    if let Some(mtime) = system_time(internal_date) {
        // Best effort: some filesystems refuse; the message is still stored.
        let _ = file.set_modified(mtime);
    }
    file.sync_all()
}

/// The `:2,` letters for `flags`, sorted; assigns keyword letters in `dovecot-keywords`.
fn flag_letters(dir: &Path, flags: &Flags) -> io::Result<String> {
    let mut letters = Vec::new();
    for (set, letter) in [
        (flags.system.has(SystemFlags::DRAFT), b'D'),
        (flags.system.has(SystemFlags::FLAGGED), b'F'),
        (flags.has_keyword(FORWARDED_KEYWORD), b'P'),
        (flags.system.has(SystemFlags::ANSWERED), b'R'),
        (flags.system.has(SystemFlags::SEEN), b'S'),
        (flags.system.has(SystemFlags::DELETED), b'T'),
    ] {
        if set {
            letters.push(letter);
        }
    }
    let wanted: Vec<&String> = flags
        .keywords
        .iter()
        .filter(|k| k.as_str() != FORWARDED_KEYWORD && super::is_keyword(k))
        .collect();
    if !wanted.is_empty() {
        let mut table = read_keywords(dir).map_err(|e| match e {
            MaildirError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        })?;
        let mut changed = false;
        for keyword in wanted {
            let slot = match table.iter().position(|k| k.as_deref() == Some(keyword)) {
                Some(slot) => Some(slot),
                None => {
                    let free = table.iter().position(Option::is_none);
                    if let Some(Some(entry)) = free.map(|at| table.get_mut(at)) {
                        *entry = Some(keyword.clone());
                        changed = true;
                    }
                    free
                }
            };
            if let Some(letter) = slot.and_then(|s| u8::try_from(s).ok()) {
                letters.push(b'a'.saturating_add(letter));
            }
        }
        if changed {
            write_keywords(dir, &table)?;
        }
    }
    letters.sort_unstable();
    letters.dedup();
    Ok(String::from_utf8_lossy(&letters).into_owned())
}

fn write_keywords(dir: &Path, table: &[Option<String>]) -> io::Result<()> {
    let mut text = String::new();
    for (index, keyword) in table.iter().enumerate() {
        if let Some(keyword) = keyword {
            text.push_str(&format!("{index} {keyword}\n"));
        }
    }
    let tmp = dir
        .join("tmp")
        .join(format!("{KEYWORDS_FILE}.{}", std::process::id()));
    fs::write(&tmp, text)?;
    fs::rename(&tmp, dir.join(KEYWORDS_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn make_maildir(dir: &Path) {
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
    }

    fn put(path: &Path, content: &[u8], mtime: i64) {
        fs::write(path, content).unwrap();
        let file = File::options().write(true).open(path).unwrap();
        file.set_modified(system_time(mtime).unwrap()).unwrap();
    }

    type Summary = BTreeSet<(String, Vec<u8>, String, Option<i64>)>;

    fn summarise(root: &Path) -> Summary {
        scan_maildir(root)
            .unwrap()
            .iter()
            .map(|e| {
                let m = read_maildir_message(e, 1 << 20).unwrap();
                (
                    e.mailbox.clone(),
                    m.raw,
                    format!("{:?}", m.flags),
                    m.internal_date,
                )
            })
            .collect()
    }

    fn fixture(root: &Path) {
        make_maildir(root);
        fs::write(
            root.join(KEYWORDS_FILE),
            "0 Junk\n1 $Label1\nbad line\n30 Nope\n",
        )
        .unwrap();
        put(
            &root.join("cur/1000000000.M1P1.host,S=25:2,FRS"),
            b"Subject: one\n\nhello\r\nbye\n",
            1_000_000_000,
        );
        put(
            &root.join("cur/1000000050.M2P1.host:2,DPTab"),
            b"Subject: two\n\nbare\rCR\n",
            1_000_000_050,
        );
        put(
            &root.join("new/1000000100.M3P1.host"),
            b"Subject: new\n\nno final newline",
            1_000_000_100,
        );
        fs::write(root.join("cur/.hidden"), b"ignored").unwrap();
        fs::write(root.join("tmp/1000000200.M4P1.host"), b"in progress").unwrap();
        let sub = root.join(".Work.Projects");
        make_maildir(&sub);
        put(
            &sub.join("cur/999999999.M5P1.host:2,S"),
            b"Subject: sub\n\nin a folder\n",
            999_999_999,
        );
        let work = root.join(".Work");
        fs::create_dir_all(work.join("cur")).unwrap();
        put(&work.join("cur/5.x:2,"), b"Subject: w\n\nw\n", 5);
    }

    #[test]
    fn scan_maildir_lists_folders_in_order() {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        let entries = scan_maildir(dir.path()).unwrap();
        let names: Vec<(String, String)> = entries
            .iter()
            .map(|e| {
                (
                    e.mailbox.clone(),
                    e.path.file_name().unwrap().to_string_lossy().into_owned(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("INBOX", "1000000000.M1P1.host,S=25:2,FRS"),
                ("INBOX", "1000000050.M2P1.host:2,DPTab"),
                ("INBOX", "1000000100.M3P1.host"),
                ("Work", "5.x:2,"),
                ("Work/Projects", "999999999.M5P1.host:2,S"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert!(entries[2].is_new);
        assert_eq!(entries[0].expected_size, Some(25));
        let flags = &entries[1].flags;
        assert_eq!(
            flags.system,
            SystemFlags(SystemFlags::DRAFT | SystemFlags::DELETED)
        );
        assert_eq!(flags.keywords, ["$Forwarded", "$Label1", "Junk"]);
        let first = read_maildir_message(&entries[0], 1000).unwrap();
        assert_eq!(first.raw, b"Subject: one\r\n\r\nhello\r\nbye\r\n");
        assert_eq!(first.internal_date, Some(1_000_000_000));
        assert_eq!(
            first.flags.system,
            SystemFlags(SystemFlags::SEEN | SystemFlags::FLAGGED | SystemFlags::ANSWERED)
        );
    }

    #[test]
    fn maildir_round_trip_keeps_content_flags_and_dates() {
        let src = tempfile::tempdir().unwrap();
        // CRLF files come back with LF (documented), so the round-trip fixture is LF only.
        fs::remove_dir_all(src.path()).unwrap();
        fixture(src.path());
        fs::remove_file(src.path().join("cur/1000000000.M1P1.host,S=25:2,FRS")).unwrap();
        put(
            &src.path().join("cur/1000000000.M1P1.host:2,FRS"),
            b"Subject: one\n\nhello\nbye\n",
            1_000_000_000,
        );
        let out = tempfile::tempdir().unwrap();
        for (seq, entry) in scan_maildir(src.path()).unwrap().iter().enumerate() {
            let m = read_maildir_message(entry, 1 << 20).unwrap();
            let dir = folder_path(out.path(), &entry.mailbox).unwrap();
            write_maildir_message(&dir, &m.raw, &m.flags, m.internal_date.unwrap(), seq as u64)
                .unwrap();
        }
        assert_eq!(summarise(out.path()), summarise(src.path()));

        // Same file contents, byte for byte.
        let contents = |root: &Path| -> BTreeSet<Vec<u8>> {
            scan_maildir(root)
                .unwrap()
                .iter()
                .map(|e| fs::read(&e.path).unwrap())
                .collect()
        };
        assert_eq!(contents(out.path()), contents(src.path()));
        let written = scan_maildir(out.path()).unwrap();
        let name = written[1]
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.ends_with(".nestbox:2,DPTab"), "{name}");
    }

    #[test]
    fn write_maildir_message_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let flags = Flags::default();
        write_maildir_message(dir.path(), b"a\r\n", &flags, 7, 1).unwrap();
        let err = write_maildir_message(dir.path(), b"b\r\n", &flags, 7, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn scan_maildir_not_a_maildir() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("cur")).unwrap();
        let err = scan_maildir(dir.path()).unwrap_err();
        assert!(matches!(err, MaildirError::NotAMaildir { .. }));
        assert!(err.to_string().starts_with("not a maildir: "));
    }

    #[test]
    fn read_maildir_message_truncated_or_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        make_maildir(dir.path());
        put(
            &dir.path().join("cur/1.a,S=500:2,S"),
            b"Subject: cut\n\nshort",
            1,
        );
        put(&dir.path().join("cur/2.b:2,S"), b"", 2);
        put(&dir.path().join("cur/3.c:2,S"), b"Subject: gone\n\n", 3);
        put(&dir.path().join("cur/4.d:2,S"), &[b'x'; 2000], 4);
        let entries = scan_maildir(dir.path()).unwrap();
        fs::remove_file(&entries[2].path).unwrap();

        let err = read_maildir_message(&entries[0], 1000).unwrap_err();
        assert!(matches!(
            err,
            MaildirError::Truncated {
                expected: 500,
                actual: 19,
                ..
            }
        ));
        assert!(err.to_string().contains("1.a,S=500:2,S"), "{err}");
        let err = read_maildir_message(&entries[1], 1000).unwrap_err();
        assert!(matches!(err, MaildirError::EmptyFile { .. }));
        assert!(err.to_string().contains("2.b:2,S"), "{err}");
        let err = read_maildir_message(&entries[2], 1000).unwrap_err();
        assert!(matches!(err, MaildirError::Io { .. }));
        assert!(err.to_string().contains("3.c:2,S"), "{err}");
        let err = read_maildir_message(&entries[3], 1000).unwrap_err();
        assert!(matches!(
            err,
            MaildirError::MessageTooLarge { size: 2000, .. }
        ));
    }

    #[test]
    fn folder_path_maps_mailbox_names() {
        let root = Path::new("/m");
        assert_eq!(folder_path(root, "INBOX").unwrap(), root);
        assert_eq!(folder_path(root, "A/B").unwrap(), root.join(".A.B"));
        assert_eq!(folder_path(root, "a.b").unwrap(), root.join(".a%2Eb"));
        assert!(folder_path(root, "").is_err());
    }
}
