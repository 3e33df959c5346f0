//! `nestbox import --dovecot` against a maildir written by Dovecot 2.3 itself
//! (tests/fixtures/dovecot, made by scripts/dovecot-fixture.sh). The fixture holds what
//! Dovecot served from that maildir (served.txt: IMAP LIST with SPECIAL-USE, LSUB, STATUS
//! UIDVALIDITY/UIDNEXT, UID FETCH FLAGS/INTERNALDATE/RFC822.SIZE/body hash, POP3 UIDL, as
//! tests/fixtures/mail_probe.py records them); after the import nestbox must serve the
//! same, read by the same probe. Needs python3.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking (see clippy.toml for #[test] functions)

mod common;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use common::{Env, Server, python3};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dovecot");
const PROBE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mail_probe.py");

const CONFIG: &str = r#"(
    hostname: "test.example",
    data_dir: "data",
    imap: (listen: ["127.0.0.1:0"], tls_listen: []),
    pop3: (listen: ["127.0.0.1:0"], tls_listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    managesieve: (listen: []),
    auth: (argon2: (memory_kib: 64, iterations: 1, parallelism: 1)),
)
"#;

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for item in fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_tree(&item.path(), &target);
        } else {
            fs::copy(item.path(), &target).unwrap();
        }
    }
}

/// A copy of the fixture maildir with the mtimes Dovecot gave its files (git keeps none;
/// they are Dovecot's INTERNALDATEs).
fn dovecot_maildir(env: &Env) -> PathBuf {
    let root = env.path().join("Maildir");
    copy_tree(&Path::new(FIXTURE).join("Maildir"), &root);
    let mtimes = fs::read_to_string(Path::new(FIXTURE).join("mtimes.txt")).unwrap();
    for line in mtimes.lines() {
        let (path, secs) = line.split_once('\t').unwrap();
        let file = File::options().write(true).open(root.join(path)).unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(secs.parse().unwrap()))
            .unwrap();
    }
    root
}

/// What nestbox serves to alice, in the probe's form.
fn probe(server: &Server) -> String {
    let run = python3(&[
        PROBE,
        "--imap",
        &server.addr("imap").to_string(),
        "--pop3",
        &server.addr("pop3").to_string(),
        "--user",
        "alice",
        "--password",
        "pw-alice",
    ]);
    assert_eq!(run.code, 0, "probe failed: {run:#?}");
    run.stdout
}

fn served_by_dovecot() -> String {
    fs::read_to_string(Path::new(FIXTURE).join("served.txt")).unwrap()
}

#[track_caller]
fn assert_same_lines(nestbox: &str, dovecot: &str) {
    let diff: Vec<String> = dovecot
        .lines()
        .filter(|l| !nestbox.lines().any(|n| n == *l))
        .map(|l| format!("- {l}"))
        .chain(
            nestbox
                .lines()
                .filter(|l| !dovecot.lines().any(|d| d == *l))
                .map(|l| format!("+ {l}")),
        )
        .collect();
    assert!(
        diff.is_empty() && nestbox == dovecot,
        "nestbox (+) serves other than Dovecot (-) did:\n{}\n\nnestbox:\n{nestbox}",
        diff.join("\n")
    );
}

#[test]
fn import_dovecot_through_the_server_serves_what_dovecot_served() {
    let env = Env::with_config(CONFIG);
    env.add_user("alice");
    let root = dovecot_maildir(&env);
    let server = Server::start(&env);
    let run = env.cli(
        &[
            "import",
            "--dovecot",
            root.to_str().unwrap(),
            "--user",
            "alice",
        ],
        b"",
    );
    run.expect_code(0);
    assert!(
        run.stdout.contains("imported 16 messages into 9 mailboxes"),
        "{run:#?}"
    );
    // nestbox's default Archive is not Dovecot's Archives: it goes, being empty.
    assert!(
        run.stdout.contains("removed the empty mailbox Archive"),
        "{run:#?}"
    );
    assert_same_lines(&probe(&server), &served_by_dovecot());
    server.stop();
}

#[test]
fn import_dovecot_without_a_server_then_refuses_a_second_import() {
    let env = Env::with_config(CONFIG);
    env.add_user("alice");
    let root = dovecot_maildir(&env);
    let args = [
        "import",
        "--dovecot",
        root.to_str().unwrap(),
        "--user",
        "alice",
    ];
    env.cli(&args, b"").expect_code(0);
    let again = env.cli(&args, b"");
    again.expect_code(65);
    assert!(
        again.stderr.contains("INBOX (7 messages)") && again.stderr.contains("nothing imported"),
        "{again:#?}"
    );
    let server = Server::start(&env);
    assert_same_lines(&probe(&server), &served_by_dovecot());
    // Mail delivered after the move continues Dovecot's UIDs.
    let mut lmtp = server.connect();
    let (_, done) = lmtp.transaction(
        "a@example.org",
        &["alice@test.example"],
        b"Subject: after the move\r\n\r\nnew\r\n",
    );
    assert_eq!(done[0].code, 250, "{done:?}");
    let inbox_status = |text: &str| -> (u32, u32, String) {
        let line = text
            .lines()
            .find(|l| l.starts_with("status INBOX "))
            .unwrap()
            .to_owned();
        let field = |name: &str| -> u32 {
            line.split(' ')
                .find_map(|f| f.strip_prefix(name))
                .unwrap()
                .parse()
                .unwrap()
        };
        (field("messages="), field("uidnext="), line.clone())
    };
    let (messages, uidnext, before) = inbox_status(&served_by_dovecot());
    let (now_messages, now_uidnext, after) = inbox_status(&probe(&server));
    assert_eq!(
        (now_messages, now_uidnext),
        (messages + 1, uidnext + 1),
        "{before} -> {after}"
    );
    assert!(
        after.ends_with(before.rsplit(' ').next().unwrap()),
        "{after}"
    );
    server.stop();
}

#[test]
fn import_dovecot_unknown_user_or_not_a_maildir() {
    let env = Env::with_config(CONFIG);
    let root = dovecot_maildir(&env);
    let run = env.cli(
        &[
            "import",
            "--dovecot",
            root.to_str().unwrap(),
            "--user",
            "nobody",
        ],
        b"",
    );
    run.expect_code(67);
    env.add_user("alice");
    let run = env.cli(
        &[
            "import",
            "--dovecot",
            env.path().to_str().unwrap(),
            "--user",
            "alice",
        ],
        b"",
    );
    run.expect_code(65);
    assert!(run.stderr.contains("not a maildir"), "{run:#?}");
}

#[test]
fn import_dovecot_brings_the_sieve_scripts_and_the_active_one() {
    let env = Env::with_config(CONFIG);
    env.add_user("alice");
    let root = dovecot_maildir(&env);
    // Pigeonhole's default layout: ~/sieve/NAME.sieve, ~/.dovecot.sieve -> the active one.
    let dir = env.path().join("sieve");
    fs::create_dir_all(dir.join("tmp")).unwrap();
    fs::write(
        dir.join("lists.sieve"),
        "require \"fileinto\";\nif exists \"list-id\" { fileinto \"Lists\"; }\n",
    )
    .unwrap();
    fs::write(dir.join("plain.sieve"), "keep;\n").unwrap();
    fs::write(dir.join("broken.sieve"), "keep \"unterminated;\n").unwrap();
    fs::write(dir.join("lists.svbin"), b"\0compiled").unwrap();
    std::os::unix::fs::symlink("sieve/lists.sieve", env.path().join(".dovecot.sieve")).unwrap();

    let run = env.cli(
        &[
            "import",
            "--dovecot",
            root.to_str().unwrap(),
            "--user",
            "alice",
        ],
        b"",
    );
    // The mail and two scripts are in; the broken script is named and the exit says so.
    run.expect_code(65);
    assert!(
        run.stderr.contains("\"broken\" skipped") && run.stdout.contains("\"lists\" active"),
        "{run:#?}"
    );
    let list = env.cli(&["sieve", "list", "alice"], b"");
    list.expect_code(0);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{list:#?}");
    assert!(lines[0].starts_with("lists\t") && lines[0].ends_with("\tactive"));
    assert!(lines[1].starts_with("plain\t") && !lines[1].ends_with("active"));
    let got = env.cli(&["sieve", "get", "alice", "lists"], b"");
    assert!(got.stdout.contains("fileinto \"Lists\""), "{got:#?}");
}
