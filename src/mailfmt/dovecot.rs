//! A Dovecot user's maildir, read so that clients see the same mailboxes after the move
//! (`nestbox import --dovecot`, docs/migrate-dovecot.md): the messages with their flags
//! and keywords ([`super::maildir`]), plus what Dovecot keeps beside them
//! (<https://doc.dovecot.org/admin_manual/mailbox_formats/maildir/>):
//!
//! - `dovecot-uidlist` in each folder: the folder's UIDVALIDITY, next UID and each
//!   message's UID, keyed by the file name without its `:2,` info. Version 3
//!   (`3 V<uidvalidity> N<next uid> G<guid>`, lines `<uid> [<ext>...] :<name>`) and
//!   version 1 (`1 <uidvalidity> <next uid>`, lines `<uid> <name>`) are read. Of the
//!   extensions, `P<uidl>` (a POP3 UIDL Dovecot saved, `pop3_save_uidl`) is kept.
//! - POP3 UIDLs: Dovecot's default `pop3_uidl_format = %08Xu%08Xv` (UID and UIDVALIDITY,
//!   eight hex digits each) unless the uidlist saved one ([`default_uidl`]).
//! - `subscriptions` at the root: `V\t2` then one name per line with TAB between
//!   hierarchy levels (Dovecot 2.2+); a file without that header has one name per line
//!   with `/` between levels.
//! - Folder names on disk (`.Work.2024`, `.Caf&AOk-`) are modified UTF-7 (RFC 3501 section
//!   5.1.3) with `.` between levels; they are decoded to the store's UTF-8 names.
//! - INTERNALDATE is the file's mtime, as Dovecot's maildir keeps it (the `,W=` part of a
//!   name is the size with CRLF line ends, not a date).
//! - SPECIAL-USE (RFC 6154) comes from the top-level folder name ([`special_use_for`]):
//!   Dovecot keeps it in its config, not in the maildir.
//!
//! Messages not in the uidlist (delivered after Dovecot last looked) get UIDs from the
//! folder's next UID on, in the maildir scan order, as Dovecot would give them.
//!
//! Sieve scripts ([`scan_sieve`]) are where Pigeonhole keeps them by default
//! (`sieve = file:~/sieve;active=~/.dovecot.sieve`): one `NAME.sieve` file per script in
//! the user's `sieve/` directory, and `.dovecot.sieve` beside it a symlink to the active
//! one (or, in old set-ups, a plain file that is the only script).

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::maildir::{self, MaildirEntry, MaildirError};
use crate::store::SpecialUse;

/// Dovecot's per-folder UID list.
const UIDLIST_FILE: &str = "dovecot-uidlist";
/// Dovecot's list of subscribed mailboxes, at the root.
const SUBSCRIPTIONS_FILE: &str = "subscriptions";
/// Cap on reading a uidlist or the subscriptions file: a uidlist line is under 200 bytes,
/// so 256 MiB holds over a million messages in one folder.
const METADATA_FILE_LIMIT: u64 = 256 << 20;

/// What went wrong reading a Dovecot maildir.
#[derive(Debug)]
pub enum DovecotError {
    Maildir(MaildirError),
    /// A `dovecot-uidlist` (or `subscriptions`) that cannot be read as Dovecot writes it.
    Unreadable {
        path: PathBuf,
        line: usize,
        why: &'static str,
    },
    /// A folder name that is not valid modified UTF-7.
    FolderName {
        path: PathBuf,
    },
    Io {
        path: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for DovecotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DovecotError::Maildir(e) => write!(f, "{e}"),
            DovecotError::Unreadable { path, line, why } => {
                write!(f, "{} line {line}: {why}", path.display())
            }
            DovecotError::FolderName { path } => write!(
                f,
                "maildir folder name is not modified UTF-7: {}",
                path.display()
            ),
            DovecotError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for DovecotError {}

impl From<MaildirError> for DovecotError {
    fn from(e: MaildirError) -> Self {
        DovecotError::Maildir(e)
    }
}

/// One message of a [`DovecotMailbox`], with the ids Dovecot gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DovecotMessage {
    pub entry: MaildirEntry,
    pub uid: u32,
    /// The UIDL Dovecot's POP3 server shows for it (only meaningful in INBOX).
    pub pop3_uidl: String,
}

/// One folder of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DovecotMailbox {
    /// The store's name: UTF-8, `/` between levels, `INBOX` for the top maildir.
    pub name: String,
    /// `None` when the folder has no uidlist (Dovecot never opened it).
    pub uidvalidity: Option<u32>,
    /// The UID the next message would get (IMAP UIDNEXT).
    pub next_uid: u32,
    pub special_use: Option<SpecialUse>,
    pub subscribed: bool,
    /// In UID order.
    pub messages: Vec<DovecotMessage>,
}

/// A Dovecot user's maildir, read by [`scan_dovecot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DovecotTree {
    /// INBOX first, then by on-disk folder name.
    pub mailboxes: Vec<DovecotMailbox>,
    /// Subscribed names that are not folders of the tree.
    pub other_subscriptions: Vec<String>,
}

/// A parsed `dovecot-uidlist`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UidList {
    pub uidvalidity: u32,
    pub next_uid: u32,
    /// File name without its `:2,` info -> (UID, saved POP3 UIDL).
    pub uids: HashMap<String, (u32, Option<String>)>,
}

/// Dovecot's default POP3 UIDL, `pop3_uidl_format = %08Xu%08Xv`. Despite the `X`,
/// Dovecot's variable expansion writes lowercase hex digits: Dovecot 2.3.19 serves
/// `000000016b115a3f` for UID 1 in a mailbox with UIDVALIDITY 0x6b115a3f
/// (tests/fixtures/dovecot/served.txt).
pub fn default_uidl(uid: u32, uidvalidity: u32) -> String {
    format!("{uid:08x}{uidvalidity:08x}")
}

/// The special-use attribute Dovecot's example config (and common clients) give a
/// top-level folder of this name; `None` for other names and for sub-folders.
pub fn special_use_for(name: &str) -> Option<SpecialUse> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        "sent" | "sent messages" | "sent items" | "sent mail" => SpecialUse::Sent,
        "drafts" | "draft" => SpecialUse::Drafts,
        "trash" | "deleted messages" | "deleted items" | "bin" => SpecialUse::Trash,
        "junk" | "spam" | "junk e-mail" | "junk email" | "bulk mail" => SpecialUse::Junk,
        "archive" | "archives" => SpecialUse::Archive,
        _ => return None,
    })
}

/// The key a uidlist uses for a message file: its name without the `:2,` info.
fn base_name(file_name: &str) -> &str {
    file_name
        .split_once(':')
        .map_or(file_name, |(base, _)| base)
}

fn unreadable(path: &Path, line: usize, why: &'static str) -> DovecotError {
    DovecotError::Unreadable {
        path: path.to_owned(),
        line,
        why,
    }
}

/// Parses a `dovecot-uidlist`; `path` is only for messages.
pub fn parse_uidlist(text: &str, path: &Path) -> Result<UidList, DovecotError> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let mut fields = header.split(' ');
    let version = fields.next().unwrap_or_default();
    let mut list = UidList::default();
    match version {
        "1" => {
            let mut number = || fields.next().and_then(|f| f.parse::<u32>().ok());
            let (Some(v), Some(n)) = (number(), number()) else {
                return Err(unreadable(
                    path,
                    1,
                    "version 1 header without UIDVALIDITY and next UID",
                ));
            };
            list.uidvalidity = v;
            list.next_uid = n;
        }
        "3" => {
            for field in fields {
                if let Some(v) = field.strip_prefix('V') {
                    list.uidvalidity = v.parse().map_err(|_| unreadable(path, 1, "bad V"))?;
                } else if let Some(n) = field.strip_prefix('N') {
                    list.next_uid = n.parse().map_err(|_| unreadable(path, 1, "bad N"))?;
                }
            }
        }
        _ => return Err(unreadable(path, 1, "not a version 1 or 3 dovecot-uidlist")),
    }
    if list.uidvalidity == 0 {
        return Err(unreadable(path, 1, "no UIDVALIDITY"));
    }
    for (at, line) in lines.enumerate() {
        let number = at.saturating_add(2);
        if line.is_empty() {
            continue;
        }
        let (uid, rest) = line
            .split_once(' ')
            .ok_or_else(|| unreadable(path, number, "no file name"))?;
        let uid: u32 = uid
            .parse()
            .ok()
            .filter(|&u| u > 0)
            .ok_or_else(|| unreadable(path, number, "bad UID"))?;
        // Version 3 puts the name after " :" (extensions before it); version 1 and old
        // version 3 lines have only the name.
        let (extensions, name) = match rest.split_once(':') {
            Some((ext, name)) if ext.is_empty() || ext.ends_with(' ') => (ext, name),
            _ => ("", rest),
        };
        let pop3_uidl = extensions
            .split(' ')
            .find_map(|ext| ext.strip_prefix('P'))
            .filter(|uidl| !uidl.is_empty())
            .map(str::to_owned);
        list.uids
            .insert(base_name(name).to_owned(), (uid, pop3_uidl));
        list.next_uid = list.next_uid.max(uid.saturating_add(1));
    }
    Ok(list)
}

/// Subscribed names from a `subscriptions` file, decoded to the store's names; names that
/// are not valid modified UTF-7 are skipped.
pub fn parse_subscriptions(text: &str) -> Vec<String> {
    let mut lines = text.lines().peekable();
    let tab_separated = lines.peek() == Some(&"V\t2");
    if tab_separated {
        lines.next();
    }
    lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let name = if tab_separated {
                l.replace('\t', "/")
            } else {
                l.to_owned()
            };
            crate::imap::mutf7::decode(name.as_bytes())
        })
        .collect()
}

fn read_small(path: &Path) -> Result<Option<String>, DovecotError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DovecotError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut bytes = Vec::new();
    file.take(METADATA_FILE_LIMIT)
        .read_to_end(&mut bytes)
        .map_err(|source| DovecotError::Io {
            path: path.to_owned(),
            source,
        })?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Reads the Dovecot maildir at `root` (a user's `~/Maildir`).
pub fn scan_dovecot(root: &Path) -> Result<DovecotTree, DovecotError> {
    let entries = maildir::scan_maildir(root)?;
    let mut by_folder: HashMap<String, Vec<MaildirEntry>> = HashMap::new();
    for entry in entries {
        by_folder
            .entry(entry.mailbox.clone())
            .or_default()
            .push(entry);
    }
    let subscribed = read_small(&root.join(SUBSCRIPTIONS_FILE))?
        .map(|text| parse_subscriptions(&text))
        .unwrap_or_default();
    let mut mailboxes = Vec::new();
    for (on_disk, dir) in maildir::folders(root)? {
        let name = if on_disk == "INBOX" {
            on_disk.clone()
        } else {
            crate::imap::mutf7::decode(on_disk.as_bytes())
                .ok_or_else(|| DovecotError::FolderName { path: dir.clone() })?
        };
        let uidlist_path = dir.join(UIDLIST_FILE);
        let uidlist = read_small(&uidlist_path)?
            .map(|text| parse_uidlist(&text, &uidlist_path))
            .transpose()?;
        let files = by_folder.remove(&on_disk).unwrap_or_default();
        let mailbox = assign_uids(name, uidlist, files, &subscribed);
        mailboxes.push(mailbox);
    }
    let other_subscriptions = subscribed
        .into_iter()
        .filter(|s| !mailboxes.iter().any(|m| &m.name == s))
        .collect();
    Ok(DovecotTree {
        mailboxes,
        other_subscriptions,
    })
}

fn assign_uids(
    name: String,
    uidlist: Option<UidList>,
    files: Vec<MaildirEntry>,
    subscribed: &[String],
) -> DovecotMailbox {
    let uidvalidity = uidlist.as_ref().map(|l| l.uidvalidity);
    let (mut known, mut next_uid) = match uidlist {
        Some(l) => (l.uids, l.next_uid.max(1)),
        None => (HashMap::new(), 1),
    };
    let mut listed = Vec::new();
    let mut unlisted = Vec::new();
    for entry in files {
        let file_name = entry
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match known.remove(base_name(&file_name)) {
            Some((uid, uidl)) => listed.push((uid, uidl, entry)),
            None => unlisted.push(entry),
        }
    }
    listed.sort_by_key(|(uid, _, _)| *uid);
    for entry in unlisted {
        listed.push((next_uid, None, entry));
        next_uid = next_uid.saturating_add(1);
    }
    let messages = listed
        .into_iter()
        .map(|(uid, uidl, entry)| DovecotMessage {
            pop3_uidl: uidl.unwrap_or_else(|| default_uidl(uid, uidvalidity.unwrap_or(0))),
            uid,
            entry,
        })
        .collect();
    let top_level = !name.contains('/');
    DovecotMailbox {
        special_use: special_use_for(&name).filter(|_| top_level),
        subscribed: subscribed.iter().any(|s| s == &name),
        uidvalidity,
        next_uid,
        messages,
        name,
    }
}

/// A Dovecot user's Sieve scripts ([`scan_sieve`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SieveScripts {
    /// Name (the file name without `.sieve`) and path, sorted by name.
    pub scripts: Vec<(String, PathBuf)>,
    /// The script `.dovecot.sieve` names, if any.
    pub active: Option<String>,
}

/// The name a plain `.dovecot.sieve` file (not a symlink) is imported under.
pub const SINGLE_SCRIPT_NAME: &str = "dovecot";

/// Finds the scripts in Pigeonhole's `dir` (`*.sieve` files; its `tmp/` and compiled
/// `.svbin` files are not scripts) and the active one from `active_link`
/// (`~/.dovecot.sieve`): a symlink names its target's script; a plain file is a script of
/// its own, named [`SINGLE_SCRIPT_NAME`]. A missing `dir` or link is no script.
pub fn scan_sieve(dir: &Path, active_link: &Path) -> Result<SieveScripts, DovecotError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DovecotError::Io { path, source }
    };
    let mut found = SieveScripts::default();
    match fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(io_err(dir))?;
                let path = entry.path();
                let is_file = entry.file_type().map_err(io_err(&path))?.is_file();
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if let Some(stem) = name.strip_suffix(".sieve")
                    && is_file
                    && !stem.is_empty()
                {
                    found.scripts.push((stem.to_string(), path));
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(dir)(e)),
    }
    found.scripts.sort();
    match fs::symlink_metadata(active_link) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = fs::read_link(active_link).map_err(io_err(active_link))?;
            let stem = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .and_then(|n| n.strip_suffix(".sieve").map(str::to_string));
            // Only a script that is imported can be active.
            found.active = stem.filter(|s| found.scripts.iter().any(|(n, _)| n == s));
        }
        Ok(meta) if meta.is_file() => {
            found
                .scripts
                .retain(|(n, _)| n.as_str() != SINGLE_SCRIPT_NAME);
            found
                .scripts
                .push((SINGLE_SCRIPT_NAME.to_string(), active_link.to_path_buf()));
            found.active = Some(SINGLE_SCRIPT_NAME.to_string());
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(active_link)(e)),
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sieve_scripts_and_the_active_link() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("sieve");
        fs::create_dir_all(dir.join("tmp")).unwrap();
        fs::write(dir.join("main.sieve"), "keep;").unwrap();
        fs::write(dir.join("spam.sieve"), "discard;").unwrap();
        fs::write(dir.join("main.svbin"), "compiled").unwrap();
        fs::write(dir.join("tmp/x.sieve"), "half written").unwrap();
        let link = home.path().join(".dovecot.sieve");
        std::os::unix::fs::symlink("sieve/spam.sieve", &link).unwrap();
        let found = scan_sieve(&dir, &link).unwrap();
        let names: Vec<&str> = found.scripts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["main", "spam"]);
        assert_eq!(found.active.as_deref(), Some("spam"));

        // An old-style plain file is a script of its own, and the active one.
        fs::remove_file(&link).unwrap();
        fs::write(&link, "stop;").unwrap();
        let found = scan_sieve(&dir, &link).unwrap();
        assert_eq!(found.active.as_deref(), Some(SINGLE_SCRIPT_NAME));
        assert_eq!(found.scripts.len(), 3);

        // Neither there: nothing, and no error.
        let none = scan_sieve(&home.path().join("nope"), &home.path().join("nope2")).unwrap();
        assert_eq!(none, SieveScripts::default());
    }

    #[test]
    fn parse_uidlist_version_3_with_extensions() {
        let text = "3 V1796299327 N11 Gbac89c263f5a116b4750000083ecc375\n\
                    1 :1796299327.M647796P20551.vm,S=124,W=130\n\
                    5 W146 Pabc-uidl G1234 :1796299328.M167944P20596.vm,S=139,W=146\n\
                    7 1796299328.M2.vm:2,S\n";
        let list = parse_uidlist(text, Path::new("x")).unwrap();
        assert_eq!((list.uidvalidity, list.next_uid), (1_796_299_327, 11));
        assert_eq!(
            list.uids["1796299327.M647796P20551.vm,S=124,W=130"],
            (1, None)
        );
        assert_eq!(
            list.uids["1796299328.M167944P20596.vm,S=139,W=146"],
            (5, Some("abc-uidl".to_owned()))
        );
        assert_eq!(list.uids["1796299328.M2.vm"], (7, None));
    }

    #[test]
    fn parse_uidlist_version_1_and_next_uid_past_the_last() {
        let list = parse_uidlist("1 1000 3\n2 a.host\n9 b.host\n", Path::new("x")).unwrap();
        assert_eq!((list.uidvalidity, list.next_uid), (1000, 10));
        assert_eq!(list.uids["b.host"], (9, None));
    }

    #[test]
    fn parse_uidlist_refuses_what_it_cannot_read() {
        for bad in [
            "",
            "2 V1 N2\n",
            "3 N5\n",
            "3 V1 N2\nx :a\n",
            "3 V1 N2\n0 :a\n",
            "3 V1\n5\n",
        ] {
            let err = parse_uidlist(bad, Path::new("dir/dovecot-uidlist")).unwrap_err();
            assert!(
                err.to_string().starts_with("dir/dovecot-uidlist line "),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn subscriptions_both_formats() {
        assert_eq!(
            parse_subscriptions("V\t2\n\nINBOX\nWork\t2024\nCaf&AOk-\n"),
            ["INBOX", "Work/2024", "Café"]
        );
        assert_eq!(parse_subscriptions("Sent\nA/B\n&bad\n"), ["Sent", "A/B"]);
    }

    #[test]
    fn uidl_and_special_use() {
        assert_eq!(default_uidl(10, 0x6b11_5a3f), "0000000a6b115a3f");
        assert_eq!(special_use_for("Sent Messages"), Some(SpecialUse::Sent));
        assert_eq!(special_use_for("junk"), Some(SpecialUse::Junk));
        assert_eq!(special_use_for("Archives"), Some(SpecialUse::Archive));
        assert_eq!(special_use_for("Work"), None);
    }

    #[test]
    fn scan_dovecot_assigns_uids_to_unlisted_files_and_reads_subscriptions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in [
            "cur",
            "new",
            "tmp",
            ".Sent/cur",
            ".Sent/new",
            ".Sent/tmp",
            ".A.B/cur",
        ] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        fs::write(root.join("cur/100.a.h,S=4:2,S"), "a\n\nx").unwrap();
        fs::write(root.join("cur/101.b.h:2,"), "b\n\nx").unwrap();
        fs::write(root.join("new/102.c.h"), "c\n\nx").unwrap();
        fs::write(
            root.join(UIDLIST_FILE),
            "3 V77 N9 G0\n4 :100.a.h,S=4\n8 P0001 :101.b.h\n",
        )
        .unwrap();
        fs::write(root.join(".Sent/cur/5.s.h:2,S"), "s\n\nx").unwrap();
        fs::write(root.join(SUBSCRIPTIONS_FILE), "V\t2\n\nSent\nA\tB\nGone\n").unwrap();
        let tree = scan_dovecot(root).unwrap();
        let names: Vec<&str> = tree.mailboxes.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["INBOX", "A/B", "Sent"]);
        let inbox = &tree.mailboxes[0];
        assert_eq!((inbox.uidvalidity, inbox.next_uid), (Some(77), 10));
        let ids: Vec<(u32, &str)> = inbox
            .messages
            .iter()
            .map(|m| (m.uid, m.pop3_uidl.as_str()))
            .collect();
        assert_eq!(
            ids,
            [
                (4, "000000040000004d"),
                (8, "0001"),
                (9, "000000090000004d")
            ]
        );
        assert!(!inbox.subscribed && inbox.special_use.is_none());
        let sent = &tree.mailboxes[2];
        assert_eq!((sent.uidvalidity, sent.next_uid), (None, 2));
        assert_eq!(sent.special_use, Some(SpecialUse::Sent));
        assert!(sent.subscribed && tree.mailboxes[1].subscribed);
        assert_eq!(tree.other_subscriptions, ["Gone"]);
    }
}
