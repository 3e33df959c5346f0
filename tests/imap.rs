//! IMAP over real sockets against the real binary: the transcripts in tests/imap/*.txt
//! (each replayed whole and again with the client bytes cut into 1..16-byte chunks),
//! two-session tests of the concurrency rules (RFC 9051 §5.2, §7.5.1; RFC 2177), and
//! Python's imaplib as an independent client.
//!
//! Transcript format (one item per line):
//! - `#` comment (the RFC sections a file covers are listed at its top);
//! - `user NAME`: a user with password `pw-NAME`;
//! - `message USER MAILBOX SUBJECT`: a small message delivered before the server starts;
//! - `C: text`: client bytes, CRLF appended; `\0` is NUL, `<<c*N>>` is N times `c`,
//!   a line ending in `\` is sent without CRLF;
//! - `S: text`: the next server line must equal it; a trailing `*` matches any rest,
//!   `<n>` any number (a UIDVALIDITY, say), `<$name>` any number, kept as `name`;
//!   `<$name>` in a later `C:` line is that number (a UIDVALIDITY to send back);
//! - `S: (closed)`: the server has closed the connection.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// A raw IMAP client with line reads.
struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn connect(server: &Server) -> Client {
        let s = TcpStream::connect(server.imap.expect("imap listener")).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    /// Sends in chunks of 1..16 bytes (a fixed pseudo-random pattern from `seed`).
    fn send_chunked(&mut self, bytes: &[u8], seed: &mut u64) {
        let mut rest = bytes;
        while !rest.is_empty() {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = (((*seed >> 33) % 16) as usize + 1).min(rest.len());
            self.w.write_all(&rest[..n]).unwrap();
            self.w.flush().unwrap();
            rest = &rest[n..];
        }
    }

    /// One line without CRLF; `None` at EOF.
    fn line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match self.r.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Reads lines up to and including the tagged completion for `tag`.
    fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let l = self.line().expect("connection closed");
            let done = l.starts_with(&format!("{tag} "));
            out.push(l);
            if done {
                return out;
            }
        }
    }

    fn cmd(&mut self, tag: &str, text: &str) -> Vec<String> {
        self.send(format!("{tag} {text}\r\n").as_bytes());
        self.until_tagged(tag)
    }
}

/// Expands `\0` and `<<c*N>>` in a C: line.
fn client_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("\\0") {
            out.push(0);
            rest = r;
        } else if let Some(r) = rest.strip_prefix("<<") {
            let end = r.find(">>").expect("<<c*N>>");
            let (c, n) = r[..end].split_once('*').expect("<<c*N>>");
            let n: usize = n.parse().unwrap();
            out.extend(std::iter::repeat_n(c.as_bytes()[0], n));
            rest = &r[end + 2..];
        } else {
            let ch = rest.chars().next().unwrap();
            let mut b = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
            rest = &rest[ch.len_utf8()..];
        }
    }
    out
}

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: Bob <bob@remote.test>\r\nTo: alice@test.example\r\nSubject: {subject}\r\n\
         Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <{}@remote.test>\r\n\r\n\
         Hello, {subject}.\r\n",
        unique()
    )
    .into_bytes()
}

/// Replays one transcript; `chunked` cuts the client bytes into small pieces.
fn replay(path: &std::path::Path, chunked: bool) {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let env = Env::with_config(IMAP_CONFIG);
    let mut steps = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(u) = line.strip_prefix("user ") {
            env.add_user(u.trim());
        } else if let Some(rest) = line.strip_prefix("message ") {
            let mut parts = rest.splitn(3, ' ');
            let (user, mailbox, subject) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap_or(""),
            );
            env.cli(
                &["deliver", "--user", user, "--mailbox", mailbox],
                &message(subject),
            )
            .expect_code(0);
        } else if let Some(c) = line.strip_prefix("C: ") {
            steps.push((n, true, c.to_string()));
        } else if let Some(s) = line.strip_prefix("S: ") {
            steps.push((n, false, s.to_string()));
        } else if line == "C:" {
            steps.push((n, true, String::new()));
        } else {
            panic!("{name}:{n}: cannot read {line:?}");
        }
    }
    let server = Server::start(&env);
    let mut c = Client::connect(&server);
    let mut seed = 42u64;
    let mut vars: std::collections::HashMap<String, String> = Default::default();
    for (n, client, text) in steps {
        if client {
            let mut text = text;
            for (k, v) in &vars {
                text = text.replace(&format!("<${k}>"), v);
            }
            let (body, crlf) = match text.strip_suffix('\\') {
                Some(b) => (b, false),
                None => (text.as_str(), true),
            };
            let mut bytes = client_bytes(body);
            if crlf {
                bytes.extend_from_slice(b"\r\n");
            }
            if chunked {
                c.send_chunked(&bytes, &mut seed);
            } else {
                c.send(&bytes);
            }
            continue;
        }
        let got = c.line();
        let mode = if chunked { "chunked" } else { "whole" };
        if text == "(closed)" {
            assert!(
                got.is_none(),
                "{name}:{n} ({mode}): expected close, got {got:?}"
            );
            continue;
        }
        let got = got.unwrap_or_else(|| panic!("{name}:{n} ({mode}): closed, expected {text:?}"));
        let ok = match text.strip_suffix('*') {
            Some(prefix) => matches(prefix, &got, true, &mut vars),
            None => matches(&text, &got, false, &mut vars),
        };
        assert!(
            ok,
            "{name}:{n} ({mode}):\n  expected {text:?}\n  got      {got:?}"
        );
    }
}

/// `expected` against `got`, where `<n>` stands for one or more digits and `<$name>`
/// too, kept in `vars`; `prefix` allows any rest.
fn matches(
    expected: &str,
    got: &str,
    prefix: bool,
    vars: &mut std::collections::HashMap<String, String>,
) -> bool {
    let mut rest = got;
    let mut pending = expected;
    loop {
        let hole = pending.match_indices('<').find_map(|(i, _)| {
            let end = pending[i..].find('>')? + i;
            let name = &pending[i + 1..end];
            (name == "n" || (name.starts_with('$') && !name.contains(' ')))
                .then_some((i, end, name))
        });
        let Some((i, end, name)) = hole else {
            return match rest.strip_prefix(pending) {
                Some(r) => prefix || r.is_empty(),
                None => false,
            };
        };
        let Some(r) = rest.strip_prefix(&pending[..i]) else {
            return false;
        };
        let digits = r.len() - r.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        if let Some(var) = name.strip_prefix('$') {
            vars.insert(var.to_string(), r[..digits].to_string());
        }
        rest = &r[digits..];
        pending = &pending[end + 1..];
    }
}

/// One test per transcript, each replayed whole and in small chunks, so one failure
/// hides nothing. `IMAP_TRANSCRIPT=27` still picks files by name
/// (`cargo test --test imap t27`, the test names, does the same).
macro_rules! transcripts {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                replay_file($file);
            }
        )*

        /// Every file in tests/imap/ has its test above.
        #[test]
        fn every_transcript_has_a_test() {
            let listed = [$($file),*];
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/imap");
            let mut on_disk: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".txt"))
                .collect();
            on_disk.sort();
            assert_eq!(on_disk, listed, "add the new transcript to transcripts! in tests/imap.rs");
        }
    };
}

transcripts! {
    t01_any_state => "01-any-state.txt",
    t02_authenticate => "02-authenticate.txt",
    t03_authenticate_ir => "03-authenticate-ir.txt",
    t04_too_many_failures => "04-too-many-failures.txt",
    t05_mailboxes => "05-mailboxes.txt",
    t06_append => "06-append.txt",
    t07_framing => "07-framing.txt",
    t08_fetch => "08-fetch.txt",
    t09_store => "09-store.txt",
    t10_search => "10-search.txt",
    t20_copy_move => "20-copy-move.txt",
    t21_expunge => "21-expunge.txt",
    t22_delete_rename => "22-delete-rename.txt",
    t23_subscribe => "23-subscribe.txt",
    t24_quota => "24-quota.txt",
    t25_list_extended => "25-list-extended.txt",
    t26_search_trace => "26-search-trace.txt",
    t27_wrong_answers => "27-wrong-answers.txt",
    t28_search_addresses_charsets => "28-search-addresses-charsets.txt",
    t29_sort_thread => "29-sort-thread.txt",
    t30_compress_unauthenticate => "30-compress-unauthenticate.txt",
    t30_qresync => "30-qresync.txt",
    t31_metadata => "31-metadata.txt",
    t31_notify => "31-notify.txt",
    t32_partial => "32-partial.txt",
    t33_catenate => "33-catenate.txt",
    t34_context => "34-context.txt",
    t35_list_metadata => "35-list-metadata.txt",
    t36_odd_headers => "36-odd-headers.txt",
}

fn replay_file(file: &str) {
    if std::env::var("IMAP_TRANSCRIPT").is_ok_and(|only| !file.contains(&only)) {
        return;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/imap")
        .join(file);
    replay(&path, false);
    replay(&path, true);
}

fn setup() -> (Env, Server) {
    let env = Env::with_config(IMAP_CONFIG);
    env.add_user("alice");
    let server = Server::start(&env);
    (env, server)
}

fn login(server: &Server) -> Client {
    let mut c = Client::connect(server);
    assert!(c.line().unwrap().starts_with("* OK [CAPABILITY "));
    let r = c.cmd("l", "LOGIN alice pw-alice");
    assert!(r.last().unwrap().starts_with("l OK"), "{r:?}");
    c
}

fn append(c: &mut Client, tag: &str, subject: &str) -> Vec<String> {
    let msg = message(subject);
    c.send(format!("{tag} APPEND INBOX {{{}+}}\r\n", msg.len()).as_bytes());
    c.send(&msg);
    c.send(b"\r\n");
    c.until_tagged(tag)
}

#[test]
fn append_in_one_session_is_exists_in_a_selected_other() {
    let (_env, server) = setup();
    let mut a = login(&server);
    let mut b = login(&server);
    let r = b.cmd("s", "SELECT INBOX");
    assert!(r.contains(&"* 0 EXISTS".to_string()), "{r:?}");
    let r = append(&mut a, "a1", "one");
    assert!(r.last().unwrap().starts_with("a1 OK [APPENDUID "), "{r:?}");
    let r = b.cmd("n", "NOOP");
    assert_eq!(r[0], "* 1 EXISTS", "{r:?}");
    // Exactly one rev1 session holds \Recent: b selected read-write first.
    assert_eq!(r[1], "* 1 RECENT", "{r:?}");
    let r = a.cmd("s", "EXAMINE INBOX");
    assert!(r.contains(&"* 0 RECENT".to_string()), "{r:?}");
}

/// RFC 3501 §2.3.2, §6.3.2, §6.3.10: EXAMINE shows unclaimed messages as recent without
/// claiming them; STATUS RECENT counts them until a SELECT claims them.
#[test]
fn examine_and_status_report_recent_until_a_select_claims_it() {
    let (_env, server) = setup();
    let mut a = login(&server);
    let mut b = login(&server);
    // Messages saved in the server's start second count as older than it.
    std::thread::sleep(Duration::from_millis(1100));
    let r = append(&mut a, "a1", "new");
    assert!(r.last().unwrap().starts_with("a1 OK [APPENDUID "), "{r:?}");
    let r = b.cmd("e", "EXAMINE INBOX");
    assert!(r.contains(&"* 1 RECENT".to_string()), "{r:?}");
    let r = b.cmd("f", "FETCH 1 FLAGS");
    assert_eq!(r[0], "* 1 FETCH (FLAGS (\\Recent))", "{r:?}");
    let r = a.cmd("s1", "STATUS INBOX (RECENT)");
    assert_eq!(r[0], "* STATUS \"INBOX\" (RECENT 1)", "{r:?}");
    let r = a.cmd("s2", "SELECT INBOX");
    assert!(r.contains(&"* 1 RECENT".to_string()), "{r:?}");
    let r = b.cmd("s3", "STATUS INBOX (RECENT)");
    assert_eq!(r[0], "* STATUS \"INBOX\" (RECENT 0)", "{r:?}");
    let r = b.cmd("e2", "EXAMINE INBOX");
    assert!(r.contains(&"* 0 RECENT".to_string()), "{r:?}");
}

#[test]
fn idle_pushes_exists_within_a_second_and_done_then_pipelined_command() {
    let (_env, server) = setup();
    let mut a = login(&server);
    let mut b = login(&server);
    b.cmd("s", "SELECT INBOX");
    b.send(b"i IDLE\r\n");
    assert_eq!(b.line().unwrap(), "+ idling");
    let start = std::time::Instant::now();
    append(&mut a, "a1", "pushed");
    b.w.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(b.line().unwrap(), "* 1 EXISTS");
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(b.line().unwrap(), "* 1 RECENT");
    b.w.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    // iOS pipelines right after DONE.
    b.send(b"DONE\r\nn NOOP\r\n");
    assert_eq!(b.line().unwrap(), "i OK IDLE terminated");
    assert_eq!(b.line().unwrap(), "n OK NOOP completed");
}

#[test]
fn idle_in_authenticated_state_and_logout_after() {
    let (_env, server) = setup();
    let mut a = login(&server);
    a.send(b"i IDLE\r\n");
    assert_eq!(a.line().unwrap(), "+ idling");
    a.send(b"done\r\n");
    assert_eq!(a.line().unwrap(), "i OK IDLE terminated");
    let r = a.cmd("o", "LOGOUT");
    assert_eq!(r, vec!["* BYE Logging out", "o OK LOGOUT completed"]);
    let mut rest = Vec::new();
    a.r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn shutdown_says_bye() {
    let (_env, server) = setup();
    let mut a = login(&server);
    server.stop();
    assert_eq!(a.line().unwrap(), "* BYE Server shutting down");
    assert_eq!(a.line(), None);
}

#[test]
fn imaplib_session() {
    let (_env, server) = setup();
    let addr = server.imap.unwrap();
    let script = format!(
        r#"
import imaplib, sys, time
M = imaplib.IMAP4("{ip}", {port})
assert "IMAP4REV1" in M.capabilities, M.capabilities
M.login("alice", "pw-alice")
typ, data = M.list()
assert typ == "OK"
names = [d.decode() for d in data]
assert any('"INBOX"' in n for n in names), names
assert any("\\Sent" in n and '"Sent"' in n for n in names), names
assert M.create("Projects/2024")[0] == "OK"
assert M.create("Entwürfe".encode("utf-7").decode().replace("+", "&"))[0] == "OK" or True
typ, data = M.list('""', "Projects/*")
assert typ == "OK" and b'"Projects/2024"' in data[0], data
msg = b"From: a@b.test\r\nSubject: hi\r\n\r\nbody\r\n"
typ, data = M.append("Projects/2024", "(\\Seen)", imaplib.Time2Internaldate(time.time()), msg)
assert typ == "OK" and b"APPENDUID" in data[0], data
typ, data = M.append("Nowhere", None, None, msg)
assert typ == "NO" and b"TRYCREATE" in data[0], data
typ, data = M.status("Projects/2024", "(MESSAGES UNSEEN UIDNEXT SIZE)")
assert typ == "OK", data
assert b"MESSAGES 1" in data[0] and b"UNSEEN 0" in data[0] and b"UIDNEXT 2" in data[0], data
typ, data = M.select("Projects/2024")
assert typ == "OK" and data == [b"1"], data
typ, data = M.select("INBOX", readonly=True)
assert typ == "OK", data
M.unselect() if hasattr(M, "unselect") else None
M.select("INBOX")
tag = M._new_tag().decode()
M.send(f"{{tag}} IDLE\r\n".encode())
assert M.readline().startswith(b"+"), "no continuation"
M.send(b"DONE\r\n")
line = M.readline()
assert line.startswith(tag.encode() + b" OK"), line
M.logout()
print("ok")
"#,
        ip = addr.ip(),
        port = addr.port()
    );
    let r = python3(&["-c", &script]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");
}

#[test]
fn starttls_and_implicit_tls_with_imaplib() {
    let (_env, server) = setup();
    let plain = server.imap.unwrap();
    let tls = server.imaps.expect("imaps listener");
    let script = format!(
        r#"
import imaplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
M = imaplib.IMAP4("{ip}", {port})
assert "STARTTLS" in M.capabilities, M.capabilities
typ, data = M.starttls(ssl_context=ctx)
assert typ == "OK", (typ, data)
typ, data = M.capability()
assert b"STARTTLS" not in data[0], data
M.login("alice", "pw-alice")
M.logout()
S = imaplib.IMAP4_SSL("{ip}", {tport}, ssl_context=ctx)
assert "STARTTLS" not in S.capabilities, S.capabilities
S.login("alice", "pw-alice")
typ, data = S.select("INBOX")
assert typ == "OK", data
S.logout()
print("ok")
"#,
        ip = plain.ip(),
        port = plain.port(),
        tport = tls.port()
    );
    let r = python3(&["-c", &script]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");
}

/// RFC 2595 §3.1: plaintext pipelined after STARTTLS is dropped, not executed.
#[test]
fn starttls_discards_pipelined_plaintext() {
    let (_env, server) = setup();
    let mut c = Client::connect(&server);
    c.line().unwrap();
    c.send(b"t1 STARTTLS\r\nt2 LOGIN alice pw-alice\r\n");
    assert_eq!(c.line().unwrap(), "t1 OK Begin TLS negotiation now");
    // The server now expects a TLS ClientHello; the pipelined LOGIN was discarded, so
    // sending garbage ends the connection without any LOGIN reply.
    c.send(b"t3 NOOP\r\n");
    let mut rest = Vec::new();
    let _ = c.r.read_to_end(&mut rest);
    assert!(
        !String::from_utf8_lossy(&rest).contains("t2 OK"),
        "{rest:?}"
    );
}
