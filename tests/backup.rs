//! `nestbox backup`, `restore` and `verify` against the real binary (issue 20):
//! a backup taken while four LMTP senders and an IMAP session work holds every message
//! acknowledged before it began, and restores to the same UIDs, flags and modseqs;
//! damage injected into a copy of the store is named by `verify` (user, mailbox, UID),
//! and the server still starts and serves everything else.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking (see clippy.toml for #[test] functions)

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// [`IMAP_CONFIG`] with a POP3 listener too.
fn config() -> String {
    IMAP_CONFIG.replace(
        "pop3: (listen: [], tls_listen: [])",
        r#"pop3: (listen: ["127.0.0.1:0"], tls_listen: [])"#,
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn message(id: &str, n: u64) -> Vec<u8> {
    let mut m = format!(
        "From: load@remote.test\r\nSubject: backup load {id}\r\nMessage-ID: <{id}>\r\n\r\n"
    )
    .into_bytes();
    for i in 0..(n % 30 + 1) {
        m.extend_from_slice(
            format!("{id} line {i} {}\r\n", "y".repeat((n % 5) as usize * 30)).as_bytes(),
        );
    }
    m
}

/// Delivers until `stop`; returns (user, Message-ID, acknowledged at) for every 250.
fn sender(
    addr: std::net::SocketAddr,
    t: u64,
    stop: Arc<AtomicBool>,
) -> Vec<(String, String, Instant)> {
    let mut c = Lmtp::tcp(addr);
    assert_eq!(c.reply().code, 220);
    assert_eq!(c.cmd("LHLO load.test").code, 250);
    let mut acked = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let id = format!("t{t}.n{n}@backup.test");
        let rcpts: &[&str] = if n.is_multiple_of(2) {
            &["alice", "bob"]
        } else {
            &["alice"]
        };
        assert_eq!(c.cmd("MAIL FROM:<load@remote.test>").code, 250);
        for r in rcpts {
            assert_eq!(c.cmd(&format!("RCPT TO:<{r}>")).code, 250);
        }
        assert_eq!(c.cmd("DATA").code, 354);
        c.send(&data_block(&message(&id, n)));
        for r in rcpts {
            let reply = c.reply();
            if reply.code == 250 {
                acked.push((r.to_string(), id.clone(), Instant::now()));
            }
        }
    }
    acked
}

/// An IMAP session that keeps flagging and un-flagging messages and polling.
fn imap_worker(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> u64 {
    let mut c = LineClient::imap_login(addr, "alice");
    let r = c.cmd("e", "ENABLE CONDSTORE");
    assert!(r.last().unwrap().starts_with("e OK"), "{r:?}");
    let r = c.cmd("s", "SELECT INBOX");
    assert!(r.last().unwrap().starts_with("s OK"), "{r:?}");
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let flag = if n.is_multiple_of(2) {
            "\\Flagged"
        } else {
            "\\Seen"
        };
        let r = c.cmd(
            "f",
            &format!("UID STORE {}:* +FLAGS.SILENT ({flag})", n % 50 + 1),
        );
        assert!(r.last().unwrap().starts_with("f OK"), "{r:?}");
        let r = c.cmd("n", "NOOP");
        assert!(r.last().unwrap().starts_with("n OK"), "{r:?}");
    }
    n
}

/// What a client sees of one user's INBOX: per Message-ID (UID, FLAGS, MODSEQ, size,
/// INTERNALDATE), and the mailbox's STATUS line.
#[derive(Debug, PartialEq)]
struct Seen {
    messages: BTreeMap<String, String>,
    status: String,
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let at = line
        .find(name)
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        + name.len();
    let rest = &line[at..];
    let end = rest.find(')').map(|e| e + 1).unwrap_or(rest.len());
    &rest[..end]
}

fn seen(addr: std::net::SocketAddr, user: &str) -> Seen {
    let mut c = LineClient::imap_login(addr, user);
    let status = c.cmd(
        "t",
        "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)",
    );
    assert!(status.last().unwrap().starts_with("t OK"), "{status:?}");
    c.cmd("s", "EXAMINE INBOX");
    let r = c.cmd(
        "f",
        "UID FETCH 1:* (UID FLAGS MODSEQ RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
    );
    assert!(r.last().unwrap().starts_with("f OK"), "{r:?}");
    let mut messages = BTreeMap::new();
    for l in r
        .iter()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH ("))
    {
        let mid = l
            .split("Message-ID: <")
            .nth(1)
            .and_then(|s| s.split('>').next())
            .unwrap_or_else(|| panic!("no Message-ID: {l}"))
            .to_string();
        let uid = field(l, "UID ").split(' ').next().unwrap().to_string();
        let facts = format!(
            "UID {uid} FLAGS {} MODSEQ {} SIZE {} DATE {}",
            field(l, "FLAGS "),
            field(l, "MODSEQ "),
            field(l, "RFC822.SIZE ").split(' ').next().unwrap(),
            field(l, "INTERNALDATE ").split('"').nth(1).unwrap_or(""),
        );
        assert!(messages.insert(mid, facts).is_none(), "a Message-ID twice");
    }
    Seen {
        messages,
        status: status[0].clone(),
    }
}

/// Restores `backup` into a new environment with the same config.
fn restored(backup: &Path) -> Env {
    let env = Env::with_config(&config());
    let r = env.cli(&["restore", p(backup)], b"");
    r.expect_code(0);
    assert!(r.stdout.contains("restored "), "{r:?}");
    env
}

#[test]
fn backup_during_load_restores_every_acknowledged_message_with_its_state() {
    let env = Env::with_config(&config());
    env.add_user("alice");
    env.add_user("bob");
    let server = Server::start(&env);
    let imap = server.addr("imap");
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            let addr = server.lmtp;
            thread::spawn(move || sender(addr, t, stop))
        })
        .collect();
    let worker = {
        let stop = stop.clone();
        thread::spawn(move || imap_worker(imap, stop))
    };
    thread::sleep(Duration::from_millis(1500));
    let first = env.path().join("during.nbk");
    let started = Instant::now();
    let r = env.cli(&["backup", p(&first)], b"");
    r.expect_code(0);
    assert!(r.stdout.contains("backup of "), "{r:?}");
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<_> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    let stores = worker.join().unwrap();
    assert!(stores > 0);
    let before: BTreeSet<(String, String)> = acked
        .iter()
        .filter(|(_, _, at)| *at < started)
        .map(|(u, id, _)| (u.clone(), id.clone()))
        .collect();
    assert!(
        before.len() > 20,
        "only {} messages before the backup",
        before.len()
    );

    // The backup taken under load: everything acknowledged before it began is there,
    // under the UID the live store gave it, and the snapshot is consistent.
    let during = restored(&first);
    during.cli(&["verify"], b"").expect_code(0);
    let r = env.cli(&["verify", p(&first)], b"");
    r.expect_code(0);
    assert!(r.stdout.contains("no problems"), "{r:?}");
    let live_srv = (seen(imap, "alice"), seen(imap, "bob"));
    let during_srv = Server::start(&during);
    for (user, live) in [("alice", &live_srv.0), ("bob", &live_srv.1)] {
        let got = seen(during_srv.addr("imap"), user);
        for (u, id) in before.iter().filter(|(u, _)| u == user) {
            assert!(
                got.messages.contains_key(id),
                "{u}: {id} missing from the backup"
            );
        }
        for (id, facts) in &got.messages {
            let uid = facts.split(' ').nth(1).unwrap();
            let live_uid = live.messages[id].split(' ').nth(1).unwrap();
            assert_eq!(uid, live_uid, "{user}: {id}");
        }
    }
    drop(during_srv);

    // A backup of the same store at rest restores to exactly what clients saw.
    let second = env.path().join("rest.nbk");
    env.cli(&["backup", p(&second)], b"").expect_code(0);
    drop(server);
    let copy = restored(&second);
    let copy_srv = Server::start(&copy);
    let env_srv = Server::start(&env);
    for user in ["alice", "bob"] {
        let want = seen(env_srv.addr("imap"), user);
        assert!(!want.messages.is_empty());
        assert_eq!(seen(copy_srv.addr("imap"), user), want, "{user}");
    }
    // POP3 sees the same maildrop (UIDLs included).
    let uidl = |srv: &Server| {
        let mut c = LineClient::connect(srv.addr("pop3"));
        assert!(c.pop("USER bob").starts_with("+OK"));
        assert!(c.pop("PASS pw-bob").starts_with("+OK"));
        assert!(c.pop("UIDL").starts_with("+OK"));
        c.pop_rest()
    };
    assert_eq!(uidl(&copy_srv), uidl(&env_srv));
}

#[test]
fn restore_refuses_a_non_empty_data_dir_and_a_damaged_file() {
    let env = Env::with_config(&config());
    env.add_user("alice");
    let file = env.path().join("a.nbk");
    env.cli(&["backup", p(&file)], b"").expect_code(0);
    // The data dir of `env` is in use.
    let r = env.cli(&["restore", p(&file)], b"");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is not empty"), "{r:?}");
    // A second backup to the same name is refused, the first kept.
    let r = env.cli(&["backup", p(&file)], b"");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("already exists"), "{r:?}");
    // One flipped byte: refused before anything is written.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let bad = env.path().join("bad.nbk");
    std::fs::write(&bad, &bytes).unwrap();
    let other = env.path().join("other");
    let r = env.cli(&["restore", "--data-dir", p(&other), p(&bad)], b"");
    assert_eq!(r.code, 65, "{r:?}");
    assert!(!other.join("nestbox.redb").exists());
    let r = env.cli(&["verify", p(&bad)], b"");
    assert_eq!(r.code, 65, "{r:?}");
    // Restored elsewhere, the user can log in.
    env.cli(&["restore", "--data-dir", p(&other), p(&file)], b"")
        .expect_code(0);
    assert!(other.join("nestbox.redb").exists());
}

/// Finds `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn verify_names_a_damaged_message_and_the_server_serves_the_rest() {
    let env = Env::with_config(&config());
    env.add_user("alice");
    // Bytes zstd cannot compress are stored as they are, so the test can find them in
    // the database file: 60 lines of 70 random bytes (no NUL, CR or LF).
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = Vec::new();
    for _ in 0..60 {
        for _ in 0..70 {
            let b = loop {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let b = (seed >> 24) as u8;
                if !matches!(b, 0 | b'\r' | b'\n') {
                    break b;
                }
            };
            noise.push(b);
        }
        noise.extend_from_slice(b"\r\n");
    }
    for n in 1..=3u8 {
        let mut m = format!("From: a@remote.test\r\nSubject: m{n}\r\n\r\n").into_bytes();
        if n == 2 {
            m.extend_from_slice(&noise);
        } else {
            m.extend_from_slice(format!("plain body {n}\r\n").as_bytes());
        }
        env.cli(&["deliver", "--user", "alice"], &m).expect_code(0);
    }
    env.cli(&["verify"], b"").expect_code(0);

    let db = env.data_dir().join("nestbox.redb");
    let mut bytes = std::fs::read(&db).unwrap();
    // Every copy redb has of those bytes (a page may have been copied on write).
    let needle = &noise[20 * 72 + 5..20 * 72 + 53];
    let mut from = 0;
    while let Some(at) = find(&bytes[from..], needle) {
        bytes[from + at + 10] ^= 0x01;
        from += at + needle.len();
    }
    assert!(
        from > 0,
        "the message's bytes are not in the file as they are"
    );
    std::fs::write(&db, &bytes).unwrap();

    let r = env.cli(&["verify"], b"");
    assert_eq!(r.code, 65, "{r:?}");
    assert!(
        r.stdout.contains("alice/INBOX UID 2: content damaged"),
        "{r:?}"
    );
    assert!(
        !r.stdout.contains("UID 1") && !r.stdout.contains("UID 3"),
        "{r:?}"
    );
    // A backup carries the damage faithfully; verifying the file finds it too.
    let file = env.path().join("damaged.nbk");
    env.cli(&["backup", p(&file)], b"").expect_code(0);
    let r = env.cli(&["verify", p(&file)], b"");
    assert_eq!(r.code, 65, "{r:?}");
    assert!(
        r.stdout.contains("alice/INBOX UID 2: content damaged"),
        "{r:?}"
    );

    let server = Server::start(&env);
    // Through the control socket.
    let r = env.cli(&["verify"], b"");
    assert_eq!(r.code, 65, "{r:?}");
    assert!(r.stdout.contains("alice/INBOX UID 2"), "{r:?}");
    let mut c = LineClient::imap_login(server.addr("imap"), "alice");
    c.cmd("s", "SELECT INBOX");
    let r = c.cmd("a", "UID FETCH 2 BODY[]");
    assert!(r.last().unwrap().starts_with("a NO"), "{r:?}");
    for uid in [1, 3] {
        let r = c.cmd("b", &format!("UID FETCH {uid} BODY[]"));
        assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");
        assert!(r[0].contains(&format!("plain body {uid}")), "{r:?}");
    }
    let r = c.cmd("c", "UID FETCH 1:* (FLAGS RFC822.SIZE)");
    assert!(r.last().unwrap().starts_with("c OK"), "{r:?}");
    c.cmd("z", "LOGOUT");
    let mut pop = LineClient::connect(server.addr("pop3"));
    assert!(pop.pop("USER alice").starts_with("+OK"));
    let r = pop.pop("PASS pw-alice");
    assert!(r.starts_with("+OK"), "{r}");
    // The damaged message is left out of the maildrop (its UIDL comes from its
    // content); the others are served.
    assert!(pop.pop("STAT").starts_with("+OK 2 "));
    for (n, body) in [(1, "plain body 1"), (2, "plain body 3")] {
        assert!(pop.pop(&format!("RETR {n}")).starts_with("+OK"));
        assert!(pop.pop_rest().iter().any(|l| l.contains(body)));
    }
    assert!(pop.pop("TOP 2 0").starts_with("+OK"));
    assert!(pop.pop_rest().iter().any(|l| l == "Subject: m3"));
    assert!(pop.pop("UIDL").starts_with("+OK"));
    assert_eq!(pop.pop_rest().len(), 2);
    // No third message: a clear -ERR, and the connection stays usable.
    for cmd in ["RETR 3", "TOP 3 0", "LIST 3"] {
        assert!(pop.pop(cmd).starts_with("-ERR"), "{cmd}");
    }
    assert!(pop.pop("NOOP").starts_with("+OK"));
    assert!(pop.pop("QUIT").starts_with("+OK"));
}
