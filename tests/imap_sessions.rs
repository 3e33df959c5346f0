//! Two or more real sockets to the real binary on one mailbox: what one IMAP session
//! sees of another's APPEND, flag change, EXPUNGE, MOVE, DELETE and RENAME, and at
//! which moments (RFC 9051 §5.2, §7.5.1; RFC 2180 §3, §4; RFC 2177 IDLE); and POP3 +
//! IMAP on one mailbox (issue 4: DELE+QUIT is an EXPUNGE for IMAP, the Hide and Move
//! policies, IMAP appends appear at the next POP3 login only).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

fn config(pop3_extra: &str) -> String {
    format!(
        r#"(
    hostname: "test.example",
    data_dir: "data",
    imap: (listen: ["127.0.0.1:0"], tls_listen: []),
    pop3: (listen: ["127.0.0.1:0"], tls_listen: []{pop3_extra}),
    managesieve: (listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    auth: (
        argon2: (memory_kib: 64, iterations: 1, parallelism: 1),
        throttle: (base_delay_ms: 10, max_delay_ms: 40),
    ),
    limits: (max_message_size: 100000),
)
"#
    )
}

/// A line-oriented client (IMAP or POP3).
struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        let mut c = Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        };
        let greeting = c.line().expect("greeting");
        assert!(greeting.starts_with("* OK") || greeting.starts_with("+OK"));
        c
    }

    fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

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

    /// One POP3 command and its first line.
    fn pop(&mut self, text: &str) -> String {
        self.send(format!("{text}\r\n").as_bytes());
        self.line().expect("POP3 reply")
    }

    /// Everything until the server closes.
    fn rest(&mut self) -> String {
        let mut rest = Vec::new();
        let _ = self.r.read_to_end(&mut rest);
        String::from_utf8_lossy(&rest).into_owned()
    }
}

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: Bob <bob@remote.test>\r\nTo: alice@test.example\r\nSubject: {subject}\r\n\
         Message-ID: <{}@remote.test>\r\n\r\nHello, {subject}.\r\n",
        unique()
    )
    .into_bytes()
}

fn deliver(env: &Env, mailbox: &str, subject: &str) {
    env.cli(
        &["deliver", "--user", "alice", "--mailbox", mailbox],
        &message(subject),
    )
    .expect_code(0);
}

fn setup(pop3_extra: &str, preloaded: usize) -> (Env, Server) {
    let env = Env::with_config(&config(pop3_extra));
    env.add_user("alice");
    for i in 0..preloaded {
        deliver(&env, "INBOX", &format!("pre {i}"));
    }
    let server = Server::start(&env);
    (env, server)
}

fn imap(server: &Server) -> Client {
    let mut c = Client::connect(server.addr("imap"));
    let r = c.cmd("l", "LOGIN alice pw-alice");
    assert!(r.last().unwrap().starts_with("l OK"), "{r:?}");
    c
}

fn pop3(server: &Server) -> Client {
    let mut c = Client::connect(server.addr("pop3"));
    assert!(c.pop("USER alice").starts_with("+OK"));
    let r = c.pop("PASS pw-alice");
    assert!(r.starts_with("+OK"), "{r}");
    c
}

fn append(c: &mut Client, tag: &str, mailbox: &str, flags: &str, subject: &str) -> Vec<String> {
    let msg = message(subject);
    c.send(format!("{tag} APPEND {mailbox} {flags}{{{}+}}\r\n", msg.len()).as_bytes());
    c.send(&msg);
    c.send(b"\r\n");
    c.until_tagged(tag)
}

fn select(c: &mut Client, mailbox: &str) -> Vec<String> {
    let r = c.cmd("s", &format!("SELECT {mailbox}"));
    assert!(r.last().unwrap().starts_with("s OK"), "{r:?}");
    r
}

fn expunges(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.ends_with(" EXPUNGE")).collect()
}

#[test]
fn append_in_a_is_exists_in_b_at_its_next_command() {
    let (_env, server) = setup("", 1);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut b, "INBOX");
    let r = append(&mut a, "a1", "INBOX", "", "new");
    assert!(r.last().unwrap().starts_with("a1 OK [APPENDUID "), "{r:?}");
    let r = b.cmd("n", "NOOP");
    assert_eq!(r[0], "* 2 EXISTS", "{r:?}");
}

/// RFC 9051 §7.5.1: no EXPUNGE during FETCH, STORE or SEARCH; the sequence numbers the
/// client knows stay valid until a command that may carry EXPUNGE.
#[test]
fn expunge_in_a_waits_for_a_command_of_b_that_allows_it() {
    let (_env, server) = setup("", 3);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut b, "INBOX");
    select(&mut a, "INBOX");
    append(&mut a, "a1", "INBOX", "(\\Deleted) ", "doomed");
    let r = b.cmd("n1", "NOOP");
    assert!(r.contains(&"* 4 EXISTS".to_string()), "{r:?}");
    let r = a.cmd("a2", "UID EXPUNGE 4");
    assert_eq!(r, vec!["* 4 EXPUNGE", "a2 OK UID EXPUNGE completed"]);
    for (tag, cmd) in [
        ("f", "FETCH 1:4 (FLAGS)"),
        ("t", "STORE 4 +FLAGS (\\Seen)"),
        ("q", "SEARCH ALL"),
    ] {
        let r = b.cmd(tag, cmd);
        assert!(expunges(&r).is_empty(), "{cmd}: {r:?}");
        // Message 4 is still known to b: its number is not out of range.
        assert!(!r.last().unwrap().contains("out of range"), "{cmd}: {r:?}");
    }
    let r = b.cmd("n2", "NOOP");
    assert_eq!(r, vec!["* 4 EXPUNGE", "n2 OK NOOP completed"]);
}

/// PROTOCOL.md item 68: a message added and removed between two of b's commands is
/// never announced, neither as EXISTS nor as EXPUNGE.
#[test]
fn no_expunge_for_a_message_b_was_never_told_about() {
    let (_env, server) = setup("", 1);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut b, "INBOX");
    select(&mut a, "INBOX");
    append(&mut a, "a1", "INBOX", "(\\Deleted) ", "brief");
    let r = a.cmd("a2", "EXPUNGE");
    assert_eq!(r, vec!["* 2 EXPUNGE", "a2 OK EXPUNGE completed"]);
    let r = b.cmd("n", "NOOP");
    assert_eq!(r, vec!["n OK NOOP completed"]);
    let r = b.cmd("x", "UID EXPUNGE 1:*");
    assert_eq!(r, vec!["x OK UID EXPUNGE completed"]);
}

#[test]
fn idle_pushes_expunge_and_exists_and_accepts_commands_pipelined_after_done() {
    let (_env, server) = setup("", 2);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut a, "INBOX");
    select(&mut b, "INBOX");
    b.send(b"i IDLE\r\n");
    assert_eq!(b.line().unwrap(), "+ idling");
    let start = Instant::now();
    let r = a.cmd("m", "MOVE 1 Archive");
    assert!(r[0].starts_with("* OK [COPYUID "), "{r:?}");
    b.w.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(b.line().unwrap(), "* 1 EXPUNGE");
    assert!(start.elapsed() < Duration::from_secs(1));
    let start = Instant::now();
    append(&mut a, "a1", "INBOX", "", "pushed");
    assert_eq!(b.line().unwrap(), "* 2 EXISTS");
    assert!(start.elapsed() < Duration::from_secs(1));
    b.w.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    // Whatever else the push carried (RECENT), then DONE and a pipelined command.
    b.send(b"DONE\r\nn UID COPY 1:* Trash\r\n");
    let r = b.until_tagged("i");
    assert_eq!(r.last().unwrap(), "i OK IDLE terminated", "{r:?}");
    let r = b.until_tagged("n");
    assert!(r.last().unwrap().starts_with("n OK [COPYUID "), "{r:?}");
}

/// RFC 6851 §3: two sessions moving the same message never make two copies; the
/// second, which still knows the message by number, moves nothing and hears
/// `OK [EXPUNGEISSUED]` (RFC 5530 §3), not a NO that fails its sync.
#[test]
fn two_sessions_moving_one_message_make_one_copy() {
    let (_env, server) = setup("", 1);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut a, "INBOX");
    select(&mut b, "INBOX");
    let r = a.cmd("a1", "MOVE 1 Trash");
    assert_eq!(r.last().unwrap(), "a1 OK MOVE completed", "{r:?}");
    let r = b.cmd("b1", "MOVE 1 Archive");
    assert_eq!(
        r.last().unwrap(),
        "b1 OK [EXPUNGEISSUED] The messages were expunged meanwhile",
        "{r:?}"
    );
    assert_eq!(expunges(&r), vec!["* 1 EXPUNGE"], "{r:?}");
    let r = b.cmd("b2", "STATUS Archive (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"Archive\" (MESSAGES 0)");
    let r = b.cmd("b3", "STATUS Trash (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"Trash\" (MESSAGES 1)");
}

/// RFC 2180 §3.3 (our choice, docs/rfc-status.md): a session whose selected mailbox
/// another session deletes gets `* BYE` at its next command and is closed.
#[test]
fn delete_of_the_mailbox_b_has_selected_is_bye_for_b() {
    let (env, server) = setup("", 0);
    deliver(&env, "Archive", "kept");
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut b, "Archive");
    let r = a.cmd("a1", "DELETE Archive");
    assert_eq!(r, vec!["a1 OK DELETE completed"]);
    b.send(b"n NOOP\r\n");
    assert_eq!(b.line().unwrap(), "* BYE Selected mailbox was deleted");
    assert_eq!(b.rest(), "");
    // The deleting session is fine.
    let r = a.cmd("a2", "NOOP");
    assert_eq!(r, vec!["a2 OK NOOP completed"]);
}

#[test]
fn delete_of_the_mailbox_b_idles_in_is_pushed_as_bye() {
    let (_env, server) = setup("", 0);
    let mut a = imap(&server);
    let mut b = imap(&server);
    assert_eq!(
        a.cmd("c", "CREATE Tmp").last().unwrap(),
        "c OK CREATE completed"
    );
    select(&mut b, "Tmp");
    b.send(b"i IDLE\r\n");
    assert_eq!(b.line().unwrap(), "+ idling");
    a.cmd("a1", "DELETE Tmp");
    b.w.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(b.line().unwrap(), "* BYE Selected mailbox was deleted");
    assert_eq!(b.line(), None);
}

/// RFC 2180 §3.4: a mailbox renamed under a session keeps its messages and UIDs, so
/// the session carries on; renaming INBOX empties it, which INBOX sessions see as
/// EXPUNGEs.
#[test]
fn rename_under_a_selected_session() {
    let (env, server) = setup("", 2);
    deliver(&env, "Archive", "a");
    let mut a = imap(&server);
    let mut b = imap(&server);
    let mut c = imap(&server);
    select(&mut b, "Archive");
    select(&mut c, "INBOX");
    assert_eq!(
        a.cmd("a1", "RENAME Archive Attic"),
        vec!["a1 OK RENAME completed"]
    );
    let r = b.cmd("b1", "NOOP");
    assert_eq!(r, vec!["b1 OK NOOP completed"]);
    let r = b.cmd("b2", "UID COPY 1 INBOX");
    assert!(r.last().unwrap().starts_with("b2 OK [COPYUID "), "{r:?}");
    let r = a.cmd("a2", "RENAME INBOX Old");
    assert_eq!(r, vec!["a2 OK RENAME completed"]);
    let r = c.cmd("c1", "NOOP");
    assert_eq!(
        expunges(&r),
        vec!["* 2 EXPUNGE", "* 1 EXPUNGE"],
        "INBOX's messages left: {r:?}"
    );
    // INBOX's two, and the one b copied in before the rename (c never heard of it).
    let r = c.cmd("c2", "STATUS Old (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"Old\" (MESSAGES 3)");
}

// ---- POP3 + IMAP on one mailbox (issue 4) ----

#[test]
fn pop3_dele_quit_is_expunge_for_a_selected_imap_session() {
    let (_env, server) = setup("", 3);
    let mut b = imap(&server);
    select(&mut b, "INBOX");
    let mut p = pop3(&server);
    assert!(p.pop("DELE 2").starts_with("+OK"));
    // Nothing happens before QUIT.
    let r = b.cmd("n1", "NOOP");
    assert_eq!(r, vec!["n1 OK NOOP completed"]);
    assert!(p.pop("QUIT").starts_with("+OK"));
    let r = b.cmd("n2", "NOOP");
    assert_eq!(r, vec!["* 2 EXPUNGE", "n2 OK NOOP completed"]);
}

#[test]
fn pop3_dele_with_hide_keeps_the_message_for_imap() {
    let (_env, server) = setup(", dele: Hide", 2);
    let mut b = imap(&server);
    select(&mut b, "INBOX");
    let mut p = pop3(&server);
    assert!(p.pop("DELE 1").starts_with("+OK"));
    assert!(p.pop("QUIT").starts_with("+OK"));
    // A flag change by someone else reaches b as an untagged FETCH.
    let r = b.cmd("n", "NOOP");
    assert!(expunges(&r).is_empty(), "{r:?}");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 1 FETCH (UID 1 FLAGS (") && l.contains("$POP3Deleted")),
        "{r:?}"
    );
    let r = b.cmd("st", "STATUS INBOX (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"INBOX\" (MESSAGES 2)");
    let mut p = pop3(&server);
    assert_eq!(p.pop("STAT").split(' ').nth(1), Some("1"));
}

#[test]
fn pop3_dele_with_move_puts_the_message_in_the_target() {
    let (_env, server) = setup(", dele: Move(\"Archive\")", 2);
    let mut b = imap(&server);
    select(&mut b, "INBOX");
    let mut p = pop3(&server);
    assert!(p.pop("DELE 1").starts_with("+OK"));
    assert!(p.pop("QUIT").starts_with("+OK"));
    let r = b.cmd("n", "NOOP");
    assert_eq!(expunges(&r), vec!["* 1 EXPUNGE"], "{r:?}");
    let r = b.cmd("st", "STATUS Archive (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"Archive\" (MESSAGES 1)");
}

#[test]
fn imap_append_appears_at_the_next_pop3_login_not_during_a_session() {
    let (_env, server) = setup("", 1);
    let mut p = pop3(&server);
    assert!(p.pop("STAT").starts_with("+OK 1 "));
    let mut a = imap(&server);
    let r = append(&mut a, "a1", "INBOX", "", "late");
    assert!(r.last().unwrap().starts_with("a1 OK"), "{r:?}");
    assert!(p.pop("STAT").starts_with("+OK 1 "));
    assert!(p.pop("LIST 2").starts_with("-ERR"));
    assert!(p.pop("QUIT").starts_with("+OK"));
    let mut p = pop3(&server);
    assert!(p.pop("STAT").starts_with("+OK 2 "));
}

/// Issue 4: an IMAP expunge during a POP3 session leaves the POP3 numbering intact;
/// RETR of the message that went gets -ERR, and the session goes on.
#[test]
fn imap_expunge_during_a_pop3_session_is_err_for_that_message() {
    let (_env, server) = setup("", 2);
    let mut p = pop3(&server);
    let mut a = imap(&server);
    select(&mut a, "INBOX");
    let r = a.cmd("m", "MOVE 1 Trash");
    assert!(r.last().unwrap().starts_with("m OK"), "{r:?}");
    assert!(p.pop("RETR 1").starts_with("-ERR"));
    let r = p.pop("RETR 2");
    assert!(r.starts_with("+OK"), "{r}");
    loop {
        if p.line().unwrap() == "." {
            break;
        }
    }
    assert!(p.pop("QUIT").starts_with("+OK"));
}

/// Python's imaplib as an independent client for the write commands (issue 3,
/// acceptance 2): COPY, UID MOVE, EXPUNGE, RENAME, SUBSCRIBE/LSUB, DELETE, GETQUOTAROOT.
#[test]
fn imaplib_write_commands() {
    let (_env, server) = setup("", 0);
    let addr = server.addr("imap");
    let script = format!(
        r#"
import imaplib, time
M = imaplib.IMAP4("{ip}", {port})
M.login("alice", "pw-alice")
typ, data = M.capability()
caps = data[0].split()
for c in (b"UIDPLUS", b"MOVE", b"QUOTA", b"QUOTA=RES-STORAGE", b"QUOTA=RES-MESSAGE"):
    assert c in caps, caps
msg = b"From: a@b.test\r\nSubject: hi\r\n\r\nbody\r\n"
for flags in ("(\\Seen)", "(\\Deleted)", None):
    typ, data = M.append("INBOX", flags, None, msg)
    assert typ == "OK", data
typ, data = M.select("INBOX")
assert typ == "OK" and data == [b"3"], data
typ, data = M.copy("1:2", "Archive")
assert typ == "OK" and b"COPYUID" in data[0], data
typ, data = M.copy("1", "Nowhere")
assert typ == "NO" and b"TRYCREATE" in data[0], data
typ, data = M.uid("MOVE", "3", "Trash")
assert typ == "OK", data
typ, data = M.expunge()
assert typ == "OK" and data == [b"3", b"2"], data  # the MOVE's EXPUNGE, then ours
typ, data = M.status("INBOX", "(MESSAGES)")
assert b"MESSAGES 1" in data[0], data
assert M.create("Work")[0] == "OK"
assert M.rename("Work", "Play")[0] == "OK"
typ, data = M.rename("Play", "Archive")
assert typ == "NO" and b"ALREADYEXISTS" in data[0], data
assert M.subscribe("Ghost")[0] == "OK"
typ, data = M.lsub('""', "Gh*")
assert typ == "OK" and b'"Ghost"' in data[0], data
assert M.delete("Play")[0] == "OK"
typ, data = M.delete("INBOX")
assert typ == "NO", data
typ, data = M.getquotaroot("INBOX")
assert typ == "OK", data
# No quota policy: no quota root (RFC 9208 §4.3 allows none).
assert data[0] == [b'"INBOX"'], data
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

/// RFC 9051 §7.5.1: UID FETCH (unlike FETCH, STORE and SEARCH) may carry the EXPUNGE
/// of a message removed by another session, since UIDs do not shift.
#[test]
fn expunge_elsewhere_waits_through_fetch_store_search_but_uid_fetch_may_carry_it() {
    let (_env, server) = setup("", 3);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut a, "INBOX");
    select(&mut b, "INBOX");
    let r = b.cmd("b1", "STORE 2 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(r, vec!["b1 OK STORE completed"]);
    let r = b.cmd("b2", "EXPUNGE");
    assert_eq!(r, vec!["* 2 EXPUNGE", "b2 OK EXPUNGE completed"]);
    for (tag, cmd) in [
        ("f", "FETCH 1:3 (UID)"),
        ("t", "STORE 3 +FLAGS (\\Seen)"),
        ("q", "SEARCH ALL"),
    ] {
        let r = a.cmd(tag, cmd);
        assert!(expunges(&r).is_empty(), "{cmd}: {r:?}");
        assert!(
            r.last().unwrap().starts_with(&format!("{tag} OK")),
            "{cmd}: {r:?}"
        );
    }
    let r = a.cmd("u", "UID FETCH 1:* (FLAGS)");
    assert_eq!(expunges(&r), vec!["* 2 EXPUNGE"], "{r:?}");
    assert!(r.last().unwrap().starts_with("u OK"), "{r:?}");
    let r = a.cmd("n", "NOOP");
    assert_eq!(r, vec!["n OK NOOP completed"]);
}

/// RFC 5530 §3, RFC 2180 §4.1.2, §4.2, §4.4: FETCH, STORE and COPY naming a message
/// another session expunged answer for the messages that still exist and complete with
/// `OK [EXPUNGEISSUED]`; clients treat a NO on FETCH as a failed sync.
#[test]
fn fetch_store_copy_of_messages_expunged_elsewhere_are_ok_expungeissued() {
    let (_env, server) = setup("", 3);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut a, "INBOX");
    select(&mut b, "INBOX");
    let r = b.cmd("b1", "STORE 2 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(r, vec!["b1 OK STORE completed"]);
    let r = b.cmd("b2", "EXPUNGE");
    assert_eq!(r, vec!["* 2 EXPUNGE", "b2 OK EXPUNGE completed"]);
    // a has not heard of it: message 2 is gone in the store only.
    let r = a.cmd("f", "FETCH 1:3 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    let fetched: Vec<&String> = r.iter().filter(|l| l.contains(" FETCH (")).collect();
    assert_eq!(fetched.len(), 2, "{r:?}");
    assert!(fetched[0].starts_with("* 1 FETCH (UID 1 "), "{r:?}");
    assert!(fetched[1].starts_with("* 3 FETCH (UID 3 "), "{r:?}");
    assert_eq!(
        r.last().unwrap(),
        "f OK [EXPUNGEISSUED] Some messages were expunged meanwhile",
        "{r:?}"
    );
    let r = a.cmd("t", "STORE 1:3 +FLAGS (\\Flagged)");
    assert!(
        r.contains(&"* 1 FETCH (FLAGS (\\Flagged))".to_string()),
        "{r:?}"
    );
    assert!(
        r.contains(&"* 3 FETCH (FLAGS (\\Flagged))".to_string()),
        "{r:?}"
    );
    assert_eq!(
        r.last().unwrap(),
        "t OK [EXPUNGEISSUED] Some messages were expunged meanwhile",
        "{r:?}"
    );
    let r = a.cmd("c", "COPY 1:3 Archive");
    assert!(
        r.contains(
            &"* OK [EXPUNGEISSUED] Some of the messages were expunged meanwhile".to_string()
        ),
        "{r:?}"
    );
    assert!(r.last().unwrap().starts_with("c OK [COPYUID "), "{r:?}");
    assert!(r.last().unwrap().contains(" 1,3 "), "{r:?}");
    // COPY may carry EXPUNGE (RFC 9051 §7.5.1): a learns of it now.
    assert_eq!(expunges(&r), vec!["* 2 EXPUNGE"], "{r:?}");
    let r = a.cmd("s", "STATUS Archive (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"Archive\" (MESSAGES 2)");
}

/// RFC 5256 with RFC 9051 §7.5.1: a message another session appends during IDLE is
/// in the next SORT and THREAD; one it expunges is left out of a SORT (non-UID SORT
/// carries no EXPUNGE, like SEARCH, so the numbers stay those the client knows), and
/// the EXPUNGE comes with the next command that allows it.
#[test]
fn sort_and_thread_see_other_sessions_appends_and_expunges() {
    let (_env, server) = setup("", 2);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut a, "INBOX");
    select(&mut b, "INBOX");
    b.send(b"i IDLE\r\n");
    assert_eq!(b.line().unwrap(), "+ idling");
    append(&mut a, "a1", "INBOX", "", "pre 0");
    assert_eq!(b.line().unwrap(), "* 3 EXISTS");
    b.send(b"DONE\r\n");
    let r = b.until_tagged("i");
    assert_eq!(r.last().unwrap(), "i OK IDLE terminated", "{r:?}");
    // Same subject, same second: the sequence number breaks the tie (RFC 5256 §3).
    let r = b.cmd("s1", "SORT (SUBJECT) UTF-8 ALL");
    assert_eq!(r, vec!["* SORT 1 3 2", "s1 OK SORT completed"]);
    let r = b.cmd("t1", "THREAD ORDEREDSUBJECT UTF-8 ALL");
    assert_eq!(r, vec!["* THREAD (1 3)(2)", "t1 OK THREAD completed"]);
    let r = a.cmd("a2", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(r, vec!["a2 OK STORE completed"]);
    let r = a.cmd("a3", "EXPUNGE");
    assert_eq!(r, vec!["* 1 EXPUNGE", "a3 OK EXPUNGE completed"]);
    let r = b.cmd("s2", "SORT (SUBJECT) UTF-8 ALL");
    assert_eq!(r, vec!["* SORT 3 2", "s2 OK SORT completed"]);
    let r = b.cmd("t2", "THREAD REFERENCES UTF-8 ALL");
    assert_eq!(r, vec!["* THREAD (2)(3)", "t2 OK THREAD completed"]);
    let r = b.cmd("s3", "UID SORT (SUBJECT) UTF-8 ALL");
    assert_eq!(r, vec!["* SORT 3 2", "* 1 EXPUNGE", "s3 OK SORT completed"]);
}

/// The number after `[NAME ` in the untagged OK lines of `lines`.
fn code_number(lines: &[String], name: &str) -> u64 {
    let key = format!("[{name} ");
    lines
        .iter()
        .find_map(|l| {
            let rest = &l[l.find(&key)? + key.len()..];
            rest[..rest.find(']')?].parse().ok()
        })
        .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
}

fn vanished(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| l.starts_with("* VANISHED"))
        .collect()
}

/// RFC 7162 §3.2.10: with QRESYNC, another session's expunges reach b as `* VANISHED
/// uid-set`, never as EXPUNGE, at the same moments EXPUNGE would (RFC 9051 §7.5.1),
/// pushed during IDLE too; flag changes carry UID and MODSEQ (§3.2.4).
#[test]
fn qresync_expunges_elsewhere_are_vanished_when_allowed_and_in_idle() {
    let (_env, server) = setup("", 4);
    let mut a = imap(&server);
    let mut b = imap(&server);
    let r = b.cmd("e", "ENABLE QRESYNC");
    assert_eq!(r, vec!["* ENABLED QRESYNC", "e OK ENABLE completed"]);
    select(&mut a, "INBOX");
    select(&mut b, "INBOX");
    // a never enabled QRESYNC: its parameter and modifier are BAD (§3.2.5, §3.2.6).
    let r = a.cmd("x1", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)");
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].starts_with("x1 BAD "), "{r:?}");
    let r = a.cmd("x2", "SELECT INBOX (QRESYNC (1 1))");
    assert_eq!(r, vec!["x2 BAD ENABLE QRESYNC first"]);
    a.cmd("a1", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    let r = a.cmd("a2", "EXPUNGE");
    assert_eq!(r, vec!["* 1 EXPUNGE", "a2 OK EXPUNGE completed"]);
    let r = b.cmd("f", "FETCH 1:4 (FLAGS)");
    assert!(vanished(&r).is_empty() && expunges(&r).is_empty(), "{r:?}");
    // The expunge raised HIGHESTMODSEQ, which the VANISHED does not carry: the new
    // value follows it, and covers it (RFC 7162 §3.1.2.1, §3.2.6).
    let r = b.cmd("n", "NOOP");
    assert_eq!(r.len(), 3, "{r:?}");
    assert_eq!(r[0], "* VANISHED 1");
    let told = code_number(&r, "HIGHESTMODSEQ");
    assert_eq!(r[2], "n OK NOOP completed");
    let r = b.cmd(
        "c",
        &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {told} VANISHED)"),
    );
    assert_eq!(r, vec!["c OK FETCH completed"]);

    b.send(b"i IDLE\r\n");
    assert_eq!(b.line().unwrap(), "+ idling");
    let r = a.cmd("m", "MOVE 1:2 Archive");
    assert!(r[0].starts_with("* OK [COPYUID "), "{r:?}");
    b.w.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(b.line().unwrap(), "* VANISHED 2:3");
    let line = b.line().unwrap();
    assert!(line.starts_with("* OK [HIGHESTMODSEQ "), "{line}");
    b.w.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    b.send(b"DONE\r\n");
    let r = b.until_tagged("i");
    assert_eq!(r, vec!["i OK IDLE terminated"]);

    a.cmd("a3", "STORE 1 +FLAGS (\\Flagged)");
    let r = b.cmd("n2", "NOOP");
    assert!(
        r[0].starts_with("* 1 FETCH (UID 4 FLAGS (\\Flagged") && r[0].contains(" MODSEQ ("),
        "{r:?}"
    );
    // A new message likewise (EXISTS carries no mod-sequence either).
    a.cmd("a4", "APPEND INBOX {8+}\r\nx: y\r\n\r\n");
    let r = b.cmd("n3", "NOOP");
    assert_eq!(r.first().map(String::as_str), Some("* 2 EXISTS"), "{r:?}");
    let told = code_number(&r, "HIGHESTMODSEQ");
    let r = b.cmd(
        "c2",
        &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {told} VANISHED)"),
    );
    assert_eq!(r, vec!["c2 OK FETCH completed"]);
}

/// RFC 7162 §3.2.5: b comes back with SELECT (QRESYNC (uidvalidity modseq)) after a
/// expunged and flagged messages: `* VANISHED (EARLIER)` for what went, a FETCH with
/// UID and MODSEQ for what changed; known-uids narrows both; SELECT over a selected
/// mailbox says `[CLOSED]` first (§3.2.11), in a rev1 session too.
#[test]
fn qresync_select_reports_what_another_session_changed_since() {
    let (_env, server) = setup("", 5);
    let mut a = imap(&server);
    let mut b = imap(&server);
    b.cmd("e", "ENABLE QRESYNC");
    let r = select(&mut b, "INBOX");
    let uv = code_number(&r, "UIDVALIDITY");
    let ms = code_number(&r, "HIGHESTMODSEQ");
    let r = b.cmd("u", "UNSELECT");
    assert_eq!(r, vec!["u OK UNSELECT completed"]);

    select(&mut a, "INBOX");
    a.cmd("a1", "STORE 2,4 +FLAGS.SILENT (\\Deleted)");
    a.cmd("a2", "EXPUNGE");
    a.cmd("a3", "UID STORE 5 +FLAGS.SILENT (\\Seen)");

    let r = b.cmd("q1", &format!("SELECT INBOX (QRESYNC ({uv} {ms}))"));
    assert_eq!(vanished(&r), vec!["* VANISHED (EARLIER) 2,4"], "{r:?}");
    let fetches: Vec<&String> = r.iter().filter(|l| l.contains(" FETCH ")).collect();
    assert_eq!(fetches.len(), 1, "{r:?}");
    assert!(
        fetches[0].starts_with("* 3 FETCH (UID 5 FLAGS (\\Seen") && fetches[0].contains("MODSEQ ("),
        "{r:?}"
    );
    assert!(r.last().unwrap().starts_with("q1 OK [READ-WRITE]"), "{r:?}");

    let r = b.cmd("q2", &format!("SELECT INBOX (QRESYNC ({uv} {ms} 1:3))"));
    assert_eq!(r[0], "* OK [CLOSED] Previous mailbox closed", "{r:?}");
    assert_eq!(vanished(&r), vec!["* VANISHED (EARLIER) 2"], "{r:?}");
    assert!(!r.iter().any(|l| l.contains(" FETCH ")), "{r:?}");

    // A different UIDVALIDITY: a plain SELECT.
    let r = b.cmd("q3", &format!("EXAMINE INBOX (QRESYNC ({} {ms}))", uv + 1));
    assert!(vanished(&r).is_empty(), "{r:?}");
    assert!(!r.iter().any(|l| l.contains(" FETCH ")), "{r:?}");
}

/// The next line, waiting at most `secs` seconds.
fn line_within(c: &mut Client, secs: u64) -> Option<String> {
    c.w.set_read_timeout(Some(Duration::from_secs(secs)))
        .unwrap();
    let mut buf = Vec::new();
    let got = match c.r.read_until(b'\n', &mut buf) {
        Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buf).trim_end().to_string()),
        _ => None,
    };
    c.w.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    got
}

/// RFC 5465 §5.2-§5.5: with NOTIFY on, what another session does arrives between
/// commands, without a command: STATUS of a watched mailbox, EXISTS and the MessageNew
/// FETCH items of the selected one, LIST for a created, renamed and deleted mailbox and
/// for a subscription.
#[test]
fn notify_sends_other_sessions_changes_between_commands() {
    let (_env, server) = setup("", 1);
    let mut a = imap(&server);
    let mut b = imap(&server);
    let caps = b.cmd("c", "CAPABILITY");
    assert!(caps[0].contains(" NOTIFY"), "{caps:?}");
    select(&mut b, "INBOX");
    let r = b.cmd(
        "n",
        "NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange)) \
         (personal (MessageNew MessageExpunge MailboxName SubscriptionChange))",
    );
    assert_eq!(r.last().unwrap(), "n OK NOTIFY completed", "{r:?}");

    // A message into another mailbox: its STATUS.
    append(&mut a, "a1", "Archive", "", "elsewhere");
    let l = line_within(&mut b, 5).expect("STATUS pushed");
    assert!(
        l.starts_with("* STATUS \"Archive\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "),
        "{l}"
    );
    // A message into the selected mailbox: EXISTS, then FETCH (UID FLAGS).
    append(&mut a, "a2", "INBOX", "(\\Flagged) ", "here");
    assert_eq!(line_within(&mut b, 5).as_deref(), Some("* 2 EXISTS"));
    let mut l = line_within(&mut b, 5).expect("FETCH pushed");
    if l.ends_with(" RECENT") {
        l = line_within(&mut b, 5).expect("FETCH pushed");
    }
    assert!(l.starts_with("* 2 FETCH (UID 2 FLAGS ("), "{l}");
    assert!(l.contains("\\Flagged"), "{l}");
    // Flags changed by another session: FETCH FLAGS.
    let r = a.cmd("a3", "SELECT INBOX");
    assert!(r.last().unwrap().starts_with("a3 OK"), "{r:?}");
    a.cmd("a4", "STORE 1 +FLAGS.SILENT (\\Answered)");
    let l = line_within(&mut b, 5).expect("flags pushed");
    assert!(
        l.starts_with("* 1 FETCH (") && l.contains("\\Answered"),
        "{l}"
    );
    // Mailbox names.
    // CREATE subscribes the new name (docs/rfc-status.md), so its LIST says so (§5.4).
    a.cmd("a5", "CREATE Lists");
    let l = line_within(&mut b, 5).expect("LIST pushed");
    assert_eq!(l, "* LIST (\\Subscribed) \"/\" \"Lists\"");
    a.cmd("a6", "RENAME Lists Groups");
    let l = line_within(&mut b, 5).expect("rename pushed");
    assert!(
        l.starts_with("* LIST (") && l.ends_with(" \"/\" \"Groups\" (\"OLDNAME\" (\"Lists\"))"),
        "{l}"
    );
    // RENAME gave Groups a new UIDVALIDITY: its STATUS says so (§5.1).
    let l = line_within(&mut b, 5).expect("STATUS pushed");
    assert!(
        l.starts_with("* STATUS \"Groups\" (MESSAGES 0 UIDNEXT 1 "),
        "{l}"
    );
    a.cmd("a7", "UNSUBSCRIBE Groups");
    let l = line_within(&mut b, 5).expect("subscription pushed");
    assert_eq!(l, "* LIST () \"/\" \"Groups\"");
    // A subscription to a name without a mailbox (RFC 9051 §6.3.7) is heard too.
    a.cmd("a7b", "SUBSCRIBE Ghost");
    let l = line_within(&mut b, 5).expect("subscription pushed");
    assert_eq!(l, "* LIST (\\Subscribed) \"/\" \"Ghost\"");
    a.cmd("a8", "DELETE Groups");
    let mut seen = Vec::new();
    while let Some(l) = line_within(&mut b, 2) {
        seen.push(l);
    }
    assert!(
        seen.contains(&"* LIST (\\NonExistent) \"/\" \"Groups\"".to_string()),
        "{seen:?}"
    );
    // An expunge in the selected mailbox arrives at once with SELECTED.
    a.cmd("a9", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    a.cmd("a10", "EXPUNGE");
    let mut seen = Vec::new();
    while let Some(l) = line_within(&mut b, 2) {
        seen.push(l);
    }
    assert!(seen.contains(&"* 1 EXPUNGE".to_string()), "{seen:?}");
    // Annotations (RFC 5465 §5.6, §5.7; RFC 5464 §4.4.2): the names of what changed.
    let r = b.cmd(
        "n1",
        "NOTIFY SET (selected (MessageNew MessageExpunge)) \
         (mailboxes Archive (MailboxMetadataChange ServerMetadataChange))",
    );
    assert_eq!(r.last().unwrap(), "n1 OK NOTIFY completed", "{r:?}");
    a.cmd(
        "m1",
        "SETMETADATA Archive (/private/comment \"hi\" /shared/x NIL)",
    );
    let l = line_within(&mut b, 5).expect("METADATA pushed");
    assert_eq!(
        l,
        "* METADATA \"Archive\" \"/private/comment\" \"/shared/x\""
    );
    a.cmd("m2", "SETMETADATA \"\" (/private/vendor/x/y \"1\")");
    let l = line_within(&mut b, 5).expect("server METADATA pushed");
    assert_eq!(l, "* METADATA \"\" \"/private/vendor/x/y\"");
    a.cmd("m3", "SETMETADATA INBOX (/private/comment \"not watched\")");
    assert_eq!(line_within(&mut b, 2), None);
    // NOTIFY NONE: nothing more arrives unasked.
    let r = b.cmd("n2", "NOTIFY NONE");
    assert_eq!(r.last().unwrap(), "n2 OK NOTIFY completed", "{r:?}");
    append(&mut a, "a11", "Archive", "", "unheard");
    assert_eq!(line_within(&mut b, 2), None);
}

/// RFC 5465 §4, §6.1.2: IDLE sends what NOTIFY asked for (STATUS of another mailbox,
/// nothing for the selected one without SELECTED); with SELECTED-DELAYED an expunge
/// waits for a command that may carry it.
#[test]
fn notify_in_idle_and_selected_delayed() {
    let (_env, server) = setup("", 2);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut a, "INBOX");
    select(&mut b, "INBOX");
    let r = b.cmd("n", "NOTIFY SET (inboxes (MessageNew MessageExpunge))");
    assert_eq!(r.last().unwrap(), "n OK NOTIFY completed", "{r:?}");
    b.send(b"i IDLE\r\n");
    assert_eq!(b.line().unwrap(), "+ idling");
    append(&mut a, "a1", "INBOX", "", "not for idle");
    append(&mut a, "a2", "Trash", "", "for idle");
    let l = line_within(&mut b, 5).expect("STATUS in IDLE");
    assert!(l.starts_with("* STATUS \"Trash\" (MESSAGES 1 "), "{l}");
    b.send(b"DONE\r\n");
    let r = b.until_tagged("i");
    // The selected mailbox's news come with the command that ends IDLE.
    assert!(r.contains(&"* 3 EXISTS".to_string()), "{r:?}");

    let r = b.cmd(
        "n2",
        "NOTIFY SET (selected-delayed (MessageNew MessageExpunge))",
    );
    assert_eq!(r.last().unwrap(), "n2 OK NOTIFY completed", "{r:?}");
    a.cmd("a3", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    a.cmd("a4", "EXPUNGE");
    append(&mut a, "a5", "INBOX", "", "four");
    let mut seen = Vec::new();
    while let Some(l) = line_within(&mut b, 2) {
        seen.push(l);
    }
    assert!(seen.contains(&"* 4 EXISTS".to_string()), "{seen:?}");
    assert!(expunges(&seen).is_empty(), "{seen:?}");
    let r = b.cmd("f", "FETCH 1 FLAGS");
    assert!(expunges(&r).is_empty(), "{r:?}");
    let r = b.cmd("p", "NOOP");
    assert!(r.contains(&"* 1 EXPUNGE".to_string()), "{r:?}");
}

/// SETMETADATA `args` (RFC 5464 §4.3), which must succeed.
fn set_metadata(c: &mut Client, tag: &str, args: &str) {
    let r = c.cmd(tag, &format!("SETMETADATA {args}"));
    assert_eq!(r, vec![format!("{tag} OK SETMETADATA completed")]);
}

/// GETMETADATA `args` (RFC 5464 §4.2), which must succeed with one METADATA response:
/// that response.
fn get_metadata(c: &mut Client, tag: &str, args: &str) -> String {
    let mut r = c.cmd(tag, &format!("GETMETADATA {args}"));
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[1], format!("{tag} OK GETMETADATA completed"));
    r.swap_remove(0)
}

/// RFC 5464 §4.3, §4.4: what one session sets, another of the same user reads at once;
/// a session idling in the annotated mailbox hears nothing (no unsolicited METADATA
/// without ENABLE METADATA, §4.1), and ENABLE METADATA is not taken.
#[test]
fn metadata_set_in_a_is_read_by_b_and_leaves_an_idle_session_alone() {
    let (_env, server) = setup("", 1);
    let mut a = imap(&server);
    let mut b = imap(&server);
    let mut c = imap(&server);
    let r = c.cmd("e", "ENABLE METADATA");
    assert_eq!(r, vec!["* ENABLED", "e OK ENABLE completed"], "{r:?}");
    select(&mut c, "INBOX");
    c.send(b"i IDLE\r\n");
    assert_eq!(c.line().unwrap(), "+ idling");

    set_metadata(&mut a, "s1", "INBOX (/private/comment \"from a\")");
    assert_eq!(
        get_metadata(&mut b, "g1", "INBOX /private/comment"),
        "* METADATA \"INBOX\" (/private/comment \"from a\")"
    );
    set_metadata(&mut a, "s2", "INBOX (/private/comment NIL)");
    assert_eq!(
        get_metadata(&mut b, "g2", "INBOX /private/comment"),
        "* METADATA \"INBOX\" (/private/comment NIL)"
    );

    // Nothing reached the idling session: DONE ends IDLE with no response before it.
    c.w.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert!(c.r.read(&mut buf).is_err(), "unsolicited data during IDLE");
    c.w.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    c.send(b"DONE\r\n");
    assert_eq!(c.until_tagged("i"), vec!["i OK IDLE terminated"]);
}

/// RFC 9590 §3: LIST's METADATA return option in one session shows what another session
/// of the user set a moment before, and drops what it removed.
#[test]
fn list_metadata_shows_what_another_session_set() {
    let (_env, server) = setup("", 1);
    let mut a = imap(&server);
    let mut b = imap(&server);
    let list = |b: &mut Client, tag: &str| {
        b.cmd(tag, "LIST \"\" INBOX RETURN (METADATA (/private/comment))")
    };
    set_metadata(&mut a, "s1", "INBOX (/private/comment \"from a\")");
    assert_eq!(
        list(&mut b, "l1"),
        vec![
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* METADATA \"INBOX\" (/private/comment \"from a\")",
            "l1 OK LIST completed"
        ]
    );
    set_metadata(&mut a, "s2", "INBOX (/private/comment NIL)");
    assert_eq!(
        list(&mut b, "l2")[1],
        "* METADATA \"INBOX\" (/private/comment NIL)"
    );
}

/// RFC 5464 §4.1, §4.3, §7: `imap.metadata_max_entries` per user, all-or-nothing
/// SETMETADATA, and the read-only server entry `/shared/admin` from
/// `imap.metadata_admin` (§3.2.1.1).
#[test]
fn metadata_too_many_entries_and_the_admin_entry() {
    let cfg = config("").replace(
        "imap: (listen: [\"127.0.0.1:0\"], tls_listen: []),",
        "imap: (listen: [\"127.0.0.1:0\"], tls_listen: [], metadata_max_entries: 10, \
         metadata_admin: Some(\"mailto:postmaster@test.example\")),",
    );
    let env = Env::with_config(&cfg);
    env.add_user("alice");
    let server = Server::start(&env);
    let mut a = imap(&server);
    let nine: Vec<String> = (0..9).map(|i| format!("/private/e{i} \"v\"")).collect();
    set_metadata(&mut a, "s1", &format!("INBOX ({})", nine.join(" ")));
    // Two new entries where one fits: refused, and neither is written.
    let r = a.cmd("s2", "SETMETADATA \"\" (/private/x \"1\" /private/y \"2\")");
    assert_eq!(r, vec!["s2 NO [METADATA TOOMANY] Too many annotations"]);
    assert_eq!(
        get_metadata(&mut a, "g1", "\"\" (/private/x /private/y)"),
        "* METADATA \"\" (/private/x NIL /private/y NIL)"
    );
    // The tenth fits; an eleventh does not; replacing and removing always do.
    set_metadata(&mut a, "s3", "\"\" (/private/x \"1\")");
    let r = a.cmd("s4", "SETMETADATA INBOX (/private/y \"2\")");
    assert_eq!(r, vec!["s4 NO [METADATA TOOMANY] Too many annotations"]);
    set_metadata(&mut a, "s5", "INBOX (/private/e0 \"w\" /private/e1 NIL)");
    set_metadata(&mut a, "s6", "INBOX (/private/y \"2\")");
    // /shared/admin: there, and read-only.
    assert_eq!(
        get_metadata(&mut a, "g2", "(DEPTH 1) \"\" /shared"),
        "* METADATA \"\" (/shared/admin \"mailto:postmaster@test.example\")"
    );
    let r = a.cmd("s7", "SETMETADATA \"\" (/shared/admin \"tel:1\")");
    assert_eq!(
        r,
        vec!["s7 NO [NOPERM] Shared server annotations are read-only"]
    );
}

/// RFC 9394 §3.1: each page is counted in the mailbox as it is at that command. A
/// message another session expunged between two pages is no longer counted, though not
/// yet announced (no EXPUNGE during SEARCH, RFC 9051 §7.5.1), so the next page starts
/// one later; paging by UID range from the last UID seen misses nothing. SEARCH and
/// UID FETCH pages agree.
#[test]
fn partial_pages_with_an_expunge_between_them() {
    let (_env, server) = setup("", 8);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut b, "INBOX");
    select(&mut a, "INBOX");
    let r = b.cmd("p1", "SEARCH RETURN (PARTIAL 1:3) ALL");
    assert_eq!(
        r,
        vec![
            "* ESEARCH (TAG \"p1\") PARTIAL (1:3 1:3)",
            "p1 OK SEARCH completed"
        ]
    );
    a.cmd("a1", "UID STORE 2 +FLAGS.SILENT (\\Deleted)");
    let r = a.cmd("a2", "UID EXPUNGE 2");
    assert_eq!(r, vec!["* 2 EXPUNGE", "a2 OK UID EXPUNGE completed"]);

    // Message 2 is gone but still known to b: results 4..6 are messages 5..7.
    let r = b.cmd("p2", "SEARCH RETURN (PARTIAL 4:6) ALL");
    assert_eq!(
        r,
        vec![
            "* ESEARCH (TAG \"p2\") PARTIAL (4:6 5:7)",
            "p2 OK SEARCH completed"
        ]
    );
    // The same page by UID FETCH; UID FETCH may then announce the expunge.
    let r = b.cmd("f2", "UID FETCH 1:* (UID) (PARTIAL 4:6)");
    assert_eq!(
        r,
        vec![
            "* 5 FETCH (UID 5)",
            "* 6 FETCH (UID 6)",
            "* 7 FETCH (UID 7)",
            "* 2 EXPUNGE",
            "f2 OK FETCH completed"
        ]
    );
    let r = b.cmd("p3", "UID SEARCH RETURN (PARTIAL 1:3) UID 4:*");
    assert_eq!(
        r,
        vec![
            "* ESEARCH (TAG \"p3\") UID PARTIAL (1:3 4:6)",
            "p3 OK SEARCH completed"
        ]
    );
    let r = b.cmd("p4", "UID SEARCH RETURN (PARTIAL -1:-3) ALL");
    assert_eq!(
        r,
        vec![
            "* ESEARCH (TAG \"p4\") UID PARTIAL (-1:-3 6:8)",
            "p4 OK SEARCH completed"
        ]
    );
}

fn position(lines: &[String], line: &str) -> usize {
    lines
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no {line:?} in {lines:?}"))
}

/// RFC 5267 §4.3: another session's STORE, APPEND and EXPUNGE change b's search
/// contexts: ADDTO after EXISTS (§4.3.3), REMOVEFROM before the EXPUNGE that renumbers
/// (§4.3.4), and for a SORT context the positions in sort order. While EXPUNGE is held
/// back (FETCH), the REMOVEFROM still goes out, naming the numbers b knows.
#[test]
fn context_updates_follow_another_sessions_store_append_expunge() {
    let (_env, server) = setup("", 3);
    let mut a = imap(&server);
    let mut b = imap(&server);
    let caps = b.cmd("c", "CAPABILITY");
    assert!(caps[0].contains(" CONTEXT=SEARCH CONTEXT=SORT"), "{caps:?}");
    select(&mut b, "INBOX");
    select(&mut a, "INBOX");
    let r = b.cmd("s1", "SEARCH RETURN (UPDATE) UNSEEN");
    assert_eq!(r, vec!["* ESEARCH (TAG \"s1\")", "s1 OK SEARCH completed"]);
    // Subjects "pre 0".."pre 2": REVERSE SUBJECT is UIDs 3, 2, 1.
    let r = b.cmd(
        "s2",
        "UID SORT RETURN (UPDATE ALL) (REVERSE SUBJECT) UTF-8 UNSEEN",
    );
    assert_eq!(r[0], "* ESEARCH (TAG \"s2\") UID ALL 3,2,1", "{r:?}");

    a.cmd("a1", "STORE 2 +FLAGS.SILENT (\\Seen)");
    let r = b.cmd("n1", "NOOP");
    assert_eq!(
        r,
        vec![
            "* 2 FETCH (UID 2 FLAGS (\\Seen))",
            "* ESEARCH (TAG \"s1\") REMOVEFROM (0 2)",
            "* ESEARCH (TAG \"s2\") UID REMOVEFROM (2 2)",
            "n1 OK NOOP completed",
        ]
    );

    append(&mut a, "a2", "INBOX", "", "pre 9");
    let r = b.cmd("n2", "NOOP");
    let exists = position(&r, "* 4 EXISTS");
    assert!(
        exists < position(&r, "* ESEARCH (TAG \"s1\") ADDTO (0 4)"),
        "{r:?}"
    );
    // "pre 9" sorts first in REVERSE SUBJECT.
    assert!(
        exists < position(&r, "* ESEARCH (TAG \"s2\") UID ADDTO (1 4)"),
        "{r:?}"
    );

    a.cmd("a3", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    let r = a.cmd("a4", "EXPUNGE");
    assert_eq!(r[0], "* 1 EXPUNGE", "{r:?}");
    // FETCH may not carry EXPUNGE (RFC 9051 §7.5.1); the REMOVEFROM names message 1,
    // which b still knows as 1.
    let r = b.cmd("f", "FETCH 1 (UID)");
    assert!(expunges(&r).is_empty(), "{r:?}");
    assert!(
        r.contains(&"* ESEARCH (TAG \"s1\") REMOVEFROM (0 1)".to_string()),
        "{r:?}"
    );
    // s2 was 4, 3, 1: UID 1 was at position 3.
    assert!(
        r.contains(&"* ESEARCH (TAG \"s2\") UID REMOVEFROM (3 1)".to_string()),
        "{r:?}"
    );
    let r = b.cmd("n3", "NOOP");
    assert_eq!(r, vec!["* 1 EXPUNGE", "n3 OK NOOP completed"]);

    // After CANCELUPDATE, s1 hears nothing more; s2 still does.
    let r = b.cmd("x", "CANCELUPDATE \"s1\"");
    assert_eq!(r, vec!["x OK CANCELUPDATE completed"]);
    a.cmd("a5", "UID STORE 3 +FLAGS.SILENT (\\Seen)");
    let r = b.cmd("n4", "NOOP");
    assert_eq!(
        r,
        vec![
            "* 2 FETCH (UID 3 FLAGS (\\Seen))",
            "* ESEARCH (TAG \"s2\") UID REMOVEFROM (2 3)",
            "n4 OK NOOP completed",
        ]
    );
}

/// RFC 5267 §4.3.2: updates go out during IDLE too, REMOVEFROM before EXPUNGE.
#[test]
fn context_updates_in_idle() {
    let (_env, server) = setup("", 2);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut a, "INBOX");
    select(&mut b, "INBOX");
    let r = b.cmd("s", "UID SEARCH RETURN (UPDATE COUNT) FLAGGED");
    assert_eq!(r[0], "* ESEARCH (TAG \"s\") UID COUNT 0", "{r:?}");
    b.send(b"i IDLE\r\n");
    assert_eq!(b.line().unwrap(), "+ idling");
    a.cmd("a1", "STORE 2 +FLAGS.SILENT (\\Flagged \\Deleted)");
    assert_eq!(
        line_within(&mut b, 5).unwrap(),
        "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Deleted))"
    );
    assert_eq!(
        line_within(&mut b, 5).unwrap(),
        "* ESEARCH (TAG \"s\") UID ADDTO (0 2)"
    );
    a.cmd("a2", "EXPUNGE");
    assert_eq!(
        line_within(&mut b, 5).unwrap(),
        "* ESEARCH (TAG \"s\") UID REMOVEFROM (0 2)"
    );
    assert_eq!(line_within(&mut b, 5).unwrap(), "* 2 EXPUNGE");
    b.send(b"DONE\r\n");
    let r = b.until_tagged("i");
    assert_eq!(r, vec!["i OK IDLE terminated"]);
}

/// RFC 5267 §4.3.2 with RFC 5465: with NOTIFY on, context updates go out between
/// commands, with the changes that cause them.
#[test]
fn context_updates_between_commands_with_notify() {
    let (_env, server) = setup("", 2);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut a, "INBOX");
    select(&mut b, "INBOX");
    let r = b.cmd(
        "n",
        "NOTIFY SET (selected (MessageNew (UID) MessageExpunge FlagChange))",
    );
    assert_eq!(r.last().unwrap(), "n OK NOTIFY completed", "{r:?}");
    let r = b.cmd("s", "SEARCH RETURN (UPDATE) SEEN");
    assert_eq!(r[0], "* ESEARCH (TAG \"s\")", "{r:?}");
    a.cmd("a1", "STORE 1 +FLAGS.SILENT (\\Seen)");
    assert_eq!(
        line_within(&mut b, 5).unwrap(),
        "* 1 FETCH (UID 1 FLAGS (\\Seen))"
    );
    assert_eq!(
        line_within(&mut b, 5).unwrap(),
        "* ESEARCH (TAG \"s\") ADDTO (0 1)"
    );
}

/// RFC 4469: a message APPENDed with CATENATE from parts of another message (a URL
/// into this user's own mailbox, RFC 5092) is announced like any other to a session
/// idling in the target (RFC 2177), and a URL naming a message another session
/// expunged is `NO [BADURL]` with nothing stored (§5).
#[test]
fn catenate_result_is_pushed_to_an_idle_session_and_an_expunged_url_is_badurl() {
    let (_env, server) = setup("", 2);
    let mut a = imap(&server);
    let mut b = imap(&server);
    select(&mut b, "Archive");
    b.send(b"i IDLE\r\n");
    assert_eq!(b.line().unwrap(), "+ idling");
    let text = "\r\nA new body.\r\n";
    a.send(
        format!(
            "c1 APPEND Archive CATENATE (URL \"/INBOX/;UID=1/;SECTION=HEADER\" TEXT {{{}+}}\r\n{text})\r\n",
            text.len()
        )
        .as_bytes(),
    );
    let r = a.until_tagged("c1");
    assert!(r.last().unwrap().starts_with("c1 OK [APPENDUID "), "{r:?}");
    assert_eq!(line_within(&mut b, 5).as_deref(), Some("* 1 EXISTS"));
    b.send(b"DONE\r\n");
    b.until_tagged("i");
    let r = b.cmd("f", "FETCH 1 BODY.PEEK[]");
    let joined = r.join("\n");
    assert!(joined.contains("Subject: pre 0"), "{joined}");
    assert!(joined.contains("A new body."), "{joined}");
    // Message 2 of INBOX goes away under a's feet; a's URL to it is refused.
    select(&mut a, "INBOX");
    let mut c = imap(&server);
    select(&mut c, "INBOX");
    c.cmd("d", "UID STORE 2 +FLAGS.SILENT (\\Deleted)");
    c.cmd("e", "UID EXPUNGE 2");
    let r = a.cmd("c2", "APPEND Archive CATENATE (URL \"/INBOX/;UID=2\")");
    assert!(r.last().unwrap().starts_with("c2 NO [BADURL "), "{r:?}");
    let r = a.cmd("s", "STATUS Archive (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"Archive\" (MESSAGES 1)", "{r:?}");
}
