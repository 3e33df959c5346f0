//! `nestbox import` and `nestbox export` on the fixtures in tests/fixtures (issue 2,
//! acceptance 4): mbox round trips byte for byte, maildir keeps contents, flags and
//! dates; bad input gets a clear error. Each test runs with no server and with one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking (see clippy.toml for #[test] functions)

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs `f` on a fresh store with user `u`, first with no server, then with `serve`
/// running (so every command goes through the control socket).
fn both_modes(f: impl Fn(&Env)) {
    for with_server in [false, true] {
        let env = Env::new();
        env.add_user("u");
        let server = with_server.then(|| Server::start(&env));
        f(&env);
        drop(server);
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// One maildir message as found on disk: contents, flags after `:2,`, mtime (seconds).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct MaildirMsg {
    content: Vec<u8>,
    flags: String,
    mtime: u64,
}

/// The messages of a Maildir++ tree by mailbox name (`INBOX`, `Work/Projects`), sorted.
/// Skips names starting with `.` inside cur/ and new/ and ignores tmp/.
fn read_tree(root: &Path) -> BTreeMap<String, Vec<MaildirMsg>> {
    let mut out = BTreeMap::new();
    out.insert("INBOX".to_owned(), read_folder(root));
    for entry in fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if let Some(folder) = name.strip_prefix('.')
            && entry.file_type().unwrap().is_dir()
        {
            out.insert(folder.replace('.', "/"), read_folder(&entry.path()));
        }
    }
    out
}

fn read_folder(dir: &Path) -> Vec<MaildirMsg> {
    let mut msgs = Vec::new();
    for sub in ["cur", "new"] {
        for entry in fs::read_dir(dir.join(sub)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.starts_with('.') {
                continue;
            }
            let flags = name.split_once(":2,").map(|x| x.1).unwrap_or("").to_owned();
            let mtime = entry
                .metadata()
                .unwrap()
                .modified()
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            msgs.push(MaildirMsg {
                content: fs::read(entry.path()).unwrap(),
                flags,
                mtime,
            });
        }
    }
    msgs.sort();
    msgs
}

/// The maildir fixture copied to `dst`, each message's mtime set to a distinct past date
/// (git does not keep mtimes; the mtime is the internal date).
fn maildir_copy(dst: &Path) {
    copy_tree(&fixture("maildir"), dst);
    let mut t = 1_600_000_000;
    for folder in [
        dst.to_path_buf(),
        dst.join(".Work.Projects"),
        dst.join(".Drafts"),
    ] {
        for sub in ["cur", "new"] {
            for entry in fs::read_dir(folder.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                t += 86_400;
                let f = fs::File::options().write(true).open(&path).unwrap();
                f.set_modified(UNIX_EPOCH + Duration::from_secs(t)).unwrap();
            }
        }
    }
}

/// `nestbox export` of user `u`: one mailbox, or all of them with `None`.
fn export(env: &Env, mailbox: Option<&str>, format: &str, out: &Path) -> Run {
    let mut args = vec!["export", "--user", "u", "--format", format, p(out)];
    if let Some(m) = mailbox {
        args.extend(["--mailbox", m]);
    }
    env.cli(&args, b"")
}

#[test]
fn import_mbox_export_mbox_is_byte_exact() {
    both_modes(|env| {
        // A file that is not there: EX_NOINPUT, naming it.
        let missing = env.path().join("missing.mbox");
        let r = env.cli(&["import", "--user", "u", p(&missing)], b"");
        r.expect_code(66);
        assert!(r.stderr.contains("missing.mbox"), "{r:?}");
        let src = fixture("inbox.mbox");
        let r = env.cli(&["import", "--user", "u", p(&src)], b"");
        r.expect_code(0);
        assert!(r.stdout.contains("imported 5 messages, 0 failed"), "{r:?}");
        let out = env.path().join("out.mbox");
        export(env, Some("INBOX"), "mbox", &out).expect_code(0);
        let (a, b) = (fs::read(&src).unwrap(), fs::read(&out).unwrap());
        assert!(
            a == b,
            "round trip differs:\n--- fixture\n{}\n--- export\n{}",
            show(&a),
            show(&b)
        );
        // The `>From ` lines really were unquoted on the way in (mboxrd).
        assert_eq!(env.blob_count(), 5);
        let stored = env.messages("u", "INBOX");
        assert!(show(&stored[1]).contains("\nFrom the start of a line"));
        assert!(show(&stored[1]).contains("\n>From quoted twice"));
    });
}

#[test]
fn import_mbox_into_named_mailbox_and_export_all_as_mbox_folder() {
    both_modes(|env| {
        let src = fixture("inbox.mbox");
        env.cli(
            &["import", "--user", "u", "--mailbox", "Archive", p(&src)],
            b"",
        )
        .expect_code(0);
        let out = env.path().join("all");
        export(env, None, "mbox", &out).expect_code(0);
        assert_eq!(
            fs::read(out.join("Archive")).unwrap(),
            fs::read(&src).unwrap()
        );
        assert_eq!(fs::read(out.join("INBOX")).unwrap(), b"");

        // A second export finds the user's files there: it refuses, naming one, and
        // writes nothing (here the other mailbox's file is kept as it is too).
        fs::write(out.join("INBOX"), b"mine").unwrap();
        let r = export(env, None, "mbox", &out);
        r.expect_code(73);
        assert!(r.stderr.contains("already exists"), "{r:?}");
        assert_eq!(fs::read(out.join("INBOX")).unwrap(), b"mine");
        assert_eq!(
            fs::read(out.join("Archive")).unwrap(),
            fs::read(&src).unwrap()
        );
        let one = out.join("Archive");
        let r = export(env, Some("INBOX"), "mbox", &one);
        r.expect_code(73);
        assert_eq!(fs::read(&one).unwrap(), fs::read(&src).unwrap());
    });
}

#[test]
fn import_mbox_status_headers_become_flags() {
    both_modes(|env| {
        env.cli(&["import", "--user", "u", p(&fixture("inbox.mbox"))], b"")
            .expect_code(0);
        let out = env.path().join("md");
        export(env, Some("INBOX"), "maildir", &out).expect_code(0);
        let mut by_id = BTreeMap::new();
        for m in read_folder(&out) {
            let text = show(&m.content);
            let id = text
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .map(str::to_owned)
                .unwrap_or_else(|| "none".to_owned());
            by_id.insert(id, m.flags);
        }
        let expected: BTreeMap<String, String> = [
            ("<m1@remote.test>", "S"),   // Status: RO
            ("<m2@remote.test>", "FRS"), // X-Status: AF
            ("<m3@remote.test>", ""),
            ("<m4@remote.test>", ""),
            ("none", "D"), // X-Status: T
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        assert_eq!(by_id, expected);
        // The internal date is the From_ line's date.
        let dates: Vec<u64> = read_folder(&out).iter().map(|m| m.mtime).collect();
        assert!(
            dates.contains(&1_672_653_600),
            "Mon Jan  2 10:00:00 2023: {dates:?}"
        );
    });
}

#[test]
fn import_maildir_export_maildir_keeps_content_flags_and_dates() {
    both_modes(|env| {
        let src = env.path().join("src-maildir");
        maildir_copy(&src);
        let r = env.cli(&["import", "--user", "u", p(&src)], b"");
        r.expect_code(0);
        assert!(r.stdout.contains("imported 6 messages, 0 failed"), "{r:?}");
        let out = env.path().join("out-maildir");
        export(env, None, "maildir", &out).expect_code(0);

        let before = read_tree(&src);
        let after = read_tree(&out);
        assert_eq!(before["INBOX"].len(), 4);
        assert_eq!(before["Work/Projects"].len(), 1);
        for (mailbox, msgs) in &before {
            assert_eq!(Some(msgs), after.get(mailbox), "mailbox {mailbox}");
        }
        // The default mailboxes exist in the export, empty.
        for (mailbox, msgs) in &after {
            if !before.contains_key(mailbox) {
                assert!(msgs.is_empty(), "{mailbox}: {msgs:?}");
            }
        }
        assert!(after.contains_key("Trash"), "{:?}", after.keys());
        let stats = env.cli(&["stats", "--user", "u"], b"");
        let row = stats
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("Work/Projects"))
            .unwrap_or_else(|| panic!("no Work/Projects row: {}", stats.stdout));
        assert_eq!(row.split_whitespace().nth(1), Some("1"), "{row}");
    });
}

#[test]
fn import_malformed_mbox_fails_clearly() {
    both_modes(|env| {
        let src = fixture("not-an-mbox.txt");
        let r = env.cli(&["import", "--user", "u", p(&src)], b"");
        assert_ne!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains("not an mbox"), "{r:?}");
        assert!(
            r.stderr.contains("not-an-mbox.txt"),
            "names the file: {r:?}"
        );
        assert!(env.messages("u", "INBOX").is_empty());
    });
}

#[test]
fn import_maildir_truncated_file_is_reported_and_others_imported() {
    both_modes(|env| {
        let src = env.path().join("src-maildir");
        maildir_copy(&src);
        let bad = "1700000009.M9P100.host,S=999:2,S";
        fs::write(src.join("cur").join(bad), b"Subject: cut\n\nshort\n").unwrap();
        let r = env.cli(&["import", "--user", "u", p(&src)], b"");
        assert_ne!(r.code, 0, "a failed message makes the import fail: {r:?}");
        assert!(r.stderr.contains("truncated"), "{r:?}");
        assert!(r.stderr.contains(bad), "names the file: {r:?}");
        assert!(r.stdout.contains("imported 6 messages, 1 failed"), "{r:?}");
        assert_eq!(env.messages("u", "INBOX").len(), 4);
        assert_eq!(env.messages("u", "Work/Projects").len(), 1);
    });
}

#[test]
fn import_unknown_user_fails_before_reading() {
    both_modes(|env| {
        let r = env.cli(
            &["import", "--user", "nobody", p(&fixture("inbox.mbox"))],
            b"",
        );
        assert_eq!(r.code, 67, "{r:?}");
        assert!(env.messages("u", "INBOX").is_empty());
    });
}

#[test]
fn export_then_reimport_is_stable() {
    // mbox written by export, imported into a second user and exported again: identical.
    both_modes(|env| {
        env.add_user("v");
        env.cli(&["import", "--user", "u", p(&fixture("inbox.mbox"))], b"")
            .expect_code(0);
        let first = env.export_mbox("u", "INBOX");
        let path = env.path().join("first.mbox");
        fs::write(&path, &first).unwrap();
        env.cli(&["import", "--user", "v", p(&path)], b"")
            .expect_code(0);
        assert_eq!(env.export_mbox("v", "INBOX"), first);
        assert_eq!(env.blob_count(), 5, "the second import shares the blobs");
        let _ = SystemTime::now();
    });
}

/// Every file under `root` (relative paths), recursively.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let ty = entry.file_type().unwrap();
            assert!(!ty.is_symlink());
            if ty.is_dir() {
                dirs.push(entry.path());
            } else {
                out.push(entry.path().strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Issue 20: `export` of all mailboxes of a user with a hierarchy failed with "File
/// exists" (mbox), and names were joined into paths unchecked. Hierarchies now export in
/// both formats, and hostile names stay inside the target, each under its own name.
#[test]
fn export_all_keeps_hierarchies_and_hostile_names_inside_the_target() {
    both_modes(|env| {
        let src = fixture("inbox.mbox");
        let long = "L".repeat(300);
        let names = [
            "Work",
            "Work/2024",
            "..",
            ".",
            "../up",
            "a.b",
            "a%2Eb",
            "x.sbd",
            "c\\d",
            &long,
        ];
        for name in names {
            env.cli(&["import", "--user", "u", "--mailbox", name, p(&src)], b"")
                .expect_code(0);
        }
        let original = fs::read(&src).unwrap();

        let out = env.path().join("all-mbox");
        export(env, None, "mbox", &out).expect_code(0);
        for (name, file) in [
            ("Work", "Work"),
            ("Work/2024", "Work.sbd/2024"),
            ("..", "%2E."),
            (".", "%2E"),
            ("../up", "%2E..sbd/up"),
            ("a.b", "a.b"),
            ("a%2Eb", "a%252Eb"),
            ("x.sbd", "x%2Esbd"),
            ("c\\d", "c%5Cd"),
        ] {
            assert_eq!(
                fs::read(out.join(file)).unwrap(),
                original,
                "{name} -> {file}"
            );
        }
        let files = files_under(&out);
        let long_file = files
            .iter()
            .find(|f| f.to_string_lossy().starts_with("LLLL"))
            .unwrap_or_else(|| panic!("no file for the long name: {files:?}"));
        assert!(long_file.to_string_lossy().len() <= 200, "{long_file:?}");
        assert_eq!(fs::read(out.join(long_file)).unwrap(), original);
        // Nothing was written outside the target.
        assert!(!env.path().join("up").exists());

        let out = env.path().join("all-maildir");
        export(env, None, "maildir", &out).expect_code(0);
        for folder in [
            ".Work",
            ".Work.2024",
            ".%2E%2E",
            ".%2E",
            ".%2E%2E.up",
            ".a%2Eb",
            ".a%252Eb",
            ".x%2Esbd",
            ".c%5Cd",
        ] {
            assert_eq!(read_folder(&out.join(folder)).len(), 5, "{folder}");
        }
        assert!(!env.path().join("up").exists());
        // A plain hierarchy comes back under its own name.
        env.add_user("v");
        env.cli(&["import", "--user", "v", p(&out)], b"")
            .expect_code(0);
        let stats = env.cli(&["stats", "--user", "v"], b"");
        let row = stats
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("Work/2024 "))
            .unwrap_or_else(|| panic!("no Work/2024: {}", stats.stdout));
        assert_eq!(row.split_whitespace().nth(1), Some("5"), "{row}");
    });
}
