//! Mailbox names as paths for `nestbox export` of all mailboxes. Every mailbox gets its
//! own path, inside the target directory, different from every other mailbox's:
//!
//! - mbox (the layout Thunderbird uses): `Work` is the file `Work`, its child `Work/2024`
//!   the file `Work.sbd/2024`, so a mailbox and its children never need the same path.
//! - maildir (Maildir++, as Dovecot lays it out): `INBOX` is the root, `Work/2024` the
//!   folder `.Work.2024`.
//!
//! Within a level, characters a file name cannot hold or that would change its meaning
//! are written `%XX` (their UTF-8 bytes in hex): `/`, `\`, control characters including
//! NUL, `%` and `~` themselves (so the escaping is reversible and two names never meet),
//! a leading `.` (so `.` and `..` are plain names), a `.sbd` ending in mbox and every `.`
//! in maildir (the Maildir++ level separator). A name longer than [`MAX_NAME`] bytes
//! after escaping is cut and ends in `~` and 16 hex digits of the BLAKE3 hash of the
//! unescaped name, which keeps it unique.

use std::path::{Path, PathBuf};

/// Longest file name written for one level (file systems allow 255 bytes; room is left
/// for the `.sbd` suffix).
pub const MAX_NAME: usize = 200;

/// `part` with the characters described in the module comment as `%XX`; `dots` escapes
/// every `.`, not only a leading one.
fn escape(part: &str, dots: bool) -> String {
    let mut out = String::with_capacity(part.len());
    for (i, c) in part.chars().enumerate() {
        let special =
            matches!(c, '%' | '~' | '/' | '\\') || c.is_control() || (c == '.' && (dots || i == 0));
        if special {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        // Not a valid mailbox level; still a name no other level maps to.
        out.push('%');
    }
    out
}

/// `name` cut to [`MAX_NAME`] bytes when longer, ending in `~` and a hash of `original`.
fn limit(name: String, original: &str) -> String {
    if name.len() <= MAX_NAME {
        return name;
    }
    let mut cut = MAX_NAME - 17;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let hash = blake3::hash(original.as_bytes()).to_hex();
    format!(
        "{}~{}",
        name.get(..cut).unwrap_or_default(),
        hash.as_str().get(..16).unwrap_or_default()
    )
}

/// The mbox file of `mailbox` under `root` (see the module comment).
pub fn mbox_file(root: &Path, mailbox: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    let mut parts = mailbox.split('/').peekable();
    while let Some(part) = parts.next() {
        let mut name = escape(part, false);
        if let Some(stem) = name.strip_suffix(".sbd") {
            name = format!("{stem}%2Esbd");
        }
        let name = limit(name, part);
        if parts.peek().is_some() {
            path.push(format!("{name}.sbd"));
        } else {
            path.push(name);
        }
    }
    path
}

/// The Maildir++ folder of `mailbox` under `root`: `root` itself for `INBOX`.
pub fn maildir_folder(root: &Path, mailbox: &str) -> PathBuf {
    if mailbox.eq_ignore_ascii_case("INBOX") {
        return root.to_path_buf();
    }
    let joined = mailbox
        .split('/')
        .map(|part| escape(part, true))
        .collect::<Vec<_>>()
        .join(".");
    root.join(format!(".{}", limit(joined, mailbox)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn inside(root: &Path, p: &Path) -> bool {
        let rel = p.strip_prefix(root).unwrap();
        rel.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    }

    #[test]
    fn export_names_hierarchies_and_hostile_names() {
        let root = Path::new("/out");
        assert_eq!(mbox_file(root, "Work"), root.join("Work"));
        assert_eq!(mbox_file(root, "Work/2024"), root.join("Work.sbd/2024"));
        assert_eq!(mbox_file(root, ".."), root.join("%2E."));
        assert_eq!(mbox_file(root, "a/../b"), root.join("a.sbd/%2E..sbd/b"));
        assert_eq!(mbox_file(root, "x.sbd"), root.join("x%2Esbd"));
        assert_eq!(maildir_folder(root, "inbox"), root);
        assert_eq!(maildir_folder(root, "Work/2024"), root.join(".Work.2024"));
        assert_eq!(maildir_folder(root, "a.b"), root.join(".a%2Eb"));
        assert_eq!(maildir_folder(root, "a/b\0c"), root.join(".a.b%00c"));
        let long = "é".repeat(250);
        let hostile = [
            "..",
            ".",
            "a/..",
            "../x",
            "a\0b",
            "a%2Fb",
            "a/b",
            "a.b",
            "a%2Eb",
            "%",
            "~",
            "x.sbd",
            "x%2Esbd",
            "x/y",
            "\\",
            "a\\b",
            &long,
            "Work",
            "Work/2024",
        ];
        let (mut seen_mbox, mut seen_maildir) = (HashSet::new(), HashSet::new());
        for name in hostile {
            let m = mbox_file(root, name);
            assert!(inside(root, &m), "{name:?} -> {m:?}");
            assert!(
                m.components().all(|c| c.as_os_str().len() <= 255),
                "{name:?} -> {m:?}"
            );
            assert!(seen_mbox.insert(m.clone()), "{name:?} collides: {m:?}");
            let d = maildir_folder(root, name);
            assert!(inside(root, &d), "{name:?} -> {d:?}");
            assert!(d.file_name().unwrap().len() <= 255);
            assert!(seen_maildir.insert(d.clone()), "{name:?} collides: {d:?}");
        }
        // A mailbox file never sits where another's children go.
        assert!(!seen_mbox.contains(&root.join("Work.sbd")));
    }
}
