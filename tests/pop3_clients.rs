//! POP3 against independent clients (Python's poplib, curl) and the DELE policies,
//! through the real binary: keep and delete modes, TOP, UIDL stability across sessions,
//! restarts, compaction and export/import, a dropped connection deletes nothing, and a
//! second session gets [IN-USE] (RFC 1939 §5-§8, RFC 2449 §8).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{Env, Server, python3};

fn config(extra: &str) -> String {
    format!(
        r#"(
    hostname: "test.example",
    data_dir: "data",
    imap: (listen: [], tls_listen: []),
    pop3: (listen: ["127.0.0.1:0"], tls_listen: ["127.0.0.1:0"]{extra}),
    managesieve: (listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    auth: (argon2: (memory_kib: 64, iterations: 1, parallelism: 1)),
    limits: (max_message_size: 100000),
)
"#
    )
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pop3_client.py");

/// Runs the poplib client; returns its `key=value` lines.
fn poplib(server: &Server, mode: &str, user: &str) -> HashMap<String, String> {
    let addr = server.addr(if mode == "pop3s" { "pop3s" } else { "pop3" });
    let run = python3(&[
        SCRIPT,
        mode,
        &addr.ip().to_string(),
        &addr.port().to_string(),
        user,
        &format!("pw-{user}"),
    ]);
    assert_eq!(run.code, 0, "poplib {mode} failed: {run:#?}");
    run.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn deliver(env: &Env, user: &str, body: &str) {
    env.cli(&["deliver", "--user", user], body.as_bytes())
        .expect_code(0);
}

fn setup(extra: &str, users: &[&str]) -> (Env, Server) {
    let env = Env::with_config(&config(extra));
    for u in users {
        env.add_user(u);
    }
    let server = Server::start(&env);
    for u in users {
        for (i, body) in [
            "Subject: first\r\n\r\nhello\r\n",
            "Subject: second\r\n\r\n.dot line\r\nmore\r\n",
            "Subject: third\nX: lf only\n\nno final newline",
        ]
        .iter()
        .enumerate()
        {
            deliver(&env, u, &format!("Message-ID: <{i}@t>\r\n{body}"));
        }
    }
    (env, server)
}

#[test]
fn poplib_keep_mode_and_uidl_stability() {
    let (env, server) = setup("", &["alice"]);
    let first = poplib(&server, "keep", "alice");
    assert_eq!(first["stat"].split(',').next().unwrap(), "[3");
    assert_eq!(first["sizes_match"], "true", "{first:?}");
    // CAPA after login (USER and SASL are listed only before it: tests/pop3/capa.txt).
    for cap in ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "EXPIRE"] {
        assert!(first["capa"].contains(&format!("\"{cap}\"")), "{first:?}");
    }
    assert!(first["messages"].contains("\"subject\": \"Subject: third\""));
    // Keep mode: the same messages and UIDLs next time...
    let second = poplib(&server, "keep", "alice");
    assert_eq!(first["uidl"], second["uidl"]);
    assert_eq!(first["messages"], second["messages"]);
    // ...after new mail (old ids unchanged, the new one appended)...
    deliver(&env, "alice", "Subject: fourth\r\n\r\nx\r\n");
    let third = poplib(&server, "keep", "alice");
    let old = first["uidl"].trim_end_matches(']');
    assert!(third["uidl"].starts_with(old), "{first:?} {third:?}");
    assert_ne!(third["uidl"], first["uidl"]);
    // ...after a restart and a compaction...
    server.stop();
    env.cli(&["compact"], b"").expect_code(0);
    let server = Server::start(&env);
    let fourth = poplib(&server, "keep", "alice");
    assert_eq!(third["uidl"], fourth["uidl"]);
    server.stop();
    // ...and after an export and an import into a fresh store.
    let mbox = env.export_mbox("alice", "INBOX");
    let env2 = Env::with_config(&config(""));
    env2.add_user("alice");
    let path = env2.path().join("in.mbox");
    std::fs::write(&path, mbox).unwrap();
    env2.cli(&["import", "--user", "alice", path.to_str().unwrap()], b"")
        .expect_code(0);
    let server2 = Server::start(&env2);
    let fifth = poplib(&server2, "keep", "alice");
    assert_eq!(third["uidl"], fifth["uidl"]);
}

#[test]
fn poplib_delete_mode_empties_the_maildrop() {
    let (env, server) = setup("", &["alice"]);
    let run = poplib(&server, "delete", "alice");
    assert_eq!(run["sizes_match"], "true", "{run:?}");
    let again = poplib(&server, "keep", "alice");
    assert_eq!(again["stat"], "[0, 0]");
    assert!(env.messages("alice", "INBOX").is_empty());
}

#[test]
fn poplib_dropped_connection_deletes_nothing() {
    let (env, server) = setup("", &["alice"]);
    let run = poplib(&server, "drop", "alice");
    assert_eq!(run["deleted"], "3");
    // The lock is released when the connection ends; wait for the server to notice.
    let mut after = HashMap::new();
    for _ in 0..50 {
        let addr = server.addr("pop3");
        let r = python3(&[
            SCRIPT,
            "keep",
            &addr.ip().to_string(),
            &addr.port().to_string(),
            "alice",
            "pw-alice",
        ]);
        if r.code == 0 {
            after = r
                .stdout
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(after["stat"].starts_with("[3,"), "{after:?}");
    assert_eq!(env.messages("alice", "INBOX").len(), 3);
}

#[test]
fn poplib_second_session_gets_in_use() {
    let (_env, server) = setup("", &["alice"]);
    let run = poplib(&server, "inuse", "alice");
    assert!(run["second"].starts_with("\"-ERR [IN-USE]"), "{run:?}");
    assert_eq!(run["first_still_works"], "\"+OK\"");
    assert_eq!(run["after_release"], "3");
}

#[test]
fn poplib_top() {
    let (_env, server) = setup("", &["alice"]);
    let run = poplib(&server, "top", "alice");
    let tops = &run["tops"];
    // TOP n 0: headers and the blank line; TOP n 1: one body line more (stuffing undone).
    assert!(tops.contains("\"Subject: second\", \"\"], ["), "{tops}");
    assert!(
        tops.contains("\"Subject: second\", \"\", \".dot line\"]"),
        "{tops}"
    );
}

fn policy_run(extra: &str, user: &str) -> Env {
    let (env, server) = setup(extra, &["alice", "bob"]);
    poplib(&server, "delete", user);
    let after = poplib(&server, "keep", user);
    assert_eq!(after["stat"], "[0, 0]", "POP3 must not see deleted mail");
    server.stop();
    env
}

#[test]
fn dele_policy_expunge() {
    let env = policy_run("", "alice");
    assert!(env.messages("alice", "INBOX").is_empty());
    assert!(env.messages("alice", "Archive").is_empty());
    assert_eq!(env.messages("bob", "INBOX").len(), 3);
}

#[test]
fn dele_policy_hide_keeps_mail_for_imap() {
    let env = policy_run(", dele: Hide", "alice");
    let kept = env.messages("alice", "INBOX");
    // Still there for IMAP (the `$POP3Deleted` keyword is checked in src/store/pop3.rs).
    assert_eq!(kept.len(), 3);
}

#[test]
fn dele_policy_move_to_archive() {
    let env = policy_run(", dele: Move(\"Archive\")", "alice");
    assert!(env.messages("alice", "INBOX").is_empty());
    assert_eq!(env.messages("alice", "Archive").len(), 3);
}

#[test]
fn dele_policy_per_user_override() {
    let env = policy_run(", dele_for: [(\"bob\", Hide)]", "bob");
    assert_eq!(env.messages("bob", "INBOX").len(), 3);
    let env = policy_run(", dele_for: [(\"bob\", Hide)]", "alice");
    assert!(env.messages("alice", "INBOX").is_empty());
}

fn curl(args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("curl is needed as an independent POP3 client ({e}); install curl")
        });
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_lists_and_retrieves() {
    let (_env, server) = setup("", &["alice"]);
    let base = format!("pop3://{}/", server.addr("pop3"));
    let (code, list, err) = curl(&["-u", "alice:pw-alice", &base]);
    assert_eq!(code, 0, "{err}");
    let list = String::from_utf8(list).unwrap();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(lines[0].starts_with("1 "));
    let (code, msg, err) = curl(&["-u", "alice:pw-alice", &format!("{base}2")]);
    assert_eq!(code, 0, "{err}");
    let size: usize = lines[1].split(' ').nth(1).unwrap().trim().parse().unwrap();
    assert_eq!(msg.len(), size, "{}", common::show(&msg));
    assert!(common::show(&msg).contains("\r\n.dot line\r\n"));
    let (code, _, _) = curl(&["-u", "alice:wrong", &base]);
    assert_ne!(code, 0, "a wrong password must fail");
}

/// A raw POP3 line client for policy checks that poplib hides.
struct Raw {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl Raw {
    fn connect(server: &Server) -> Raw {
        let s = std::net::TcpStream::connect(server.addr("pop3")).unwrap();
        s.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        let mut r = Raw {
            reader: std::io::BufReader::new(s.try_clone().unwrap()),
            writer: s,
        };
        assert!(r.line().starts_with("+OK"));
        r
    }

    fn line(&mut self) -> String {
        use std::io::BufRead;
        let mut l = String::new();
        self.reader.read_line(&mut l).unwrap();
        l.trim_end().to_string()
    }

    fn cmd(&mut self, c: &str) -> String {
        use std::io::Write;
        self.writer
            .write_all(format!("{c}\r\n").as_bytes())
            .unwrap();
        self.line()
    }

    fn multi(&mut self, c: &str) -> Vec<String> {
        assert!(self.cmd(c).starts_with("+OK"));
        let mut out = Vec::new();
        loop {
            let l = self.line();
            if l == "." {
                return out;
            }
            out.push(l);
        }
    }
}

#[test]
fn capa_login_delay_and_expire_from_config() {
    let (_env, server) = setup(
        ", expire_days: Some(30), login_delay_secs: Some(3600)",
        &["alice"],
    );
    let mut c = Raw::connect(&server);
    let capa = c.multi("CAPA");
    assert!(capa.contains(&"EXPIRE 30".to_string()), "{capa:?}");
    assert!(capa.contains(&"LOGIN-DELAY 3600".to_string()), "{capa:?}");
    assert!(c.cmd("USER alice").starts_with("+OK"));
    assert!(c.cmd("PASS pw-alice").starts_with("+OK"));
    assert!(c.cmd("QUIT").starts_with("+OK"));
    let mut c = Raw::connect(&server);
    assert!(c.cmd("USER alice").starts_with("+OK"));
    assert_eq!(
        c.cmd("PASS pw-alice"),
        "-ERR [LOGIN-DELAY] Logged in too recently"
    );
    // Still in AUTHORIZATION and usable.
    assert_eq!(c.cmd("STAT"), "-ERR Command not valid in this state");
}

#[test]
fn plaintext_never_refuses_user_pass_and_hides_them_in_capa() {
    let env =
        Env::with_config(&config("").replace("auth: (argon2:", "auth: (plaintext: Never, argon2:"));
    env.add_user("alice");
    let server = Server::start(&env);
    let mut c = Raw::connect(&server);
    let capa = c.multi("CAPA");
    assert!(
        !capa.iter().any(|l| l == "USER" || l.starts_with("SASL")),
        "{capa:?}"
    );
    let refused = "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections";
    assert_eq!(c.cmd("USER alice"), refused);
    assert_eq!(c.cmd("PASS pw-alice"), refused);
    assert_eq!(c.cmd("AUTH PLAIN AGFsaWNlAHB3LWFsaWNl"), refused);
    assert_eq!(c.multi("AUTH"), Vec::<String>::new());
}

#[test]
fn poplib_stls_and_pop3s() {
    // Plaintext Never: USER only after TLS (RFC 2595 §4: CAPA changes after STLS).
    let env =
        Env::with_config(&config("").replace("auth: (argon2:", "auth: (plaintext: Never, argon2:"));
    env.add_user("alice");
    let server = Server::start(&env);
    deliver(&env, "alice", "Subject: x\r\n\r\ny\r\n");
    let run = poplib(&server, "stls", "alice");
    assert!(run["capa_before"].contains("\"STLS\""), "{run:?}");
    assert!(!run["capa_before"].contains("\"USER\""), "{run:?}");
    assert!(run["stls"].starts_with("\"+OK"), "{run:?}");
    assert!(!run["capa_after"].contains("\"STLS\""), "{run:?}");
    assert!(run["capa_after"].contains("\"USER\""), "{run:?}");
    assert_eq!(run["stls_again"], "\"-ERR TLS is already active\"");
    assert!(run["stat"].starts_with("[1,"), "{run:?}");
    let run = poplib(&server, "pop3s", "alice");
    assert!(!run["capa_after"].contains("\"STLS\""), "{run:?}");
    assert!(run["stat"].starts_with("[1,"), "{run:?}");
}

/// Logs in, retrying while the maildrop is still held by a session the server has not
/// yet seen end.
fn login_when_free(server: &Server) -> Raw {
    for _ in 0..100 {
        let mut c = Raw::connect(server);
        assert!(c.cmd("USER alice").starts_with("+OK"));
        let pass = c.cmd("PASS pw-alice");
        if pass.starts_with("+OK") {
            return c;
        }
        assert!(pass.starts_with("-ERR [IN-USE]"), "{pass}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the maildrop stayed locked");
}

/// The first-retrieval time (what retention's POP3 rules read) is written in one commit
/// at QUIT, and also when a client drops the connection without QUIT; TOP does not count.
#[test]
fn retr_records_first_retrieval_at_quit_and_when_dropped() {
    let (env, server) = setup("", &["alice"]);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut c = login_when_free(&server);
    assert!(c.multi("RETR 1").iter().any(|l| l == "Subject: first"));
    drop(c); // no QUIT
    let mut c = login_when_free(&server);
    c.multi("TOP 2 0");
    c.multi("RETR 3");
    assert!(c.cmd("QUIT").starts_with("+OK"));
    server.stop();

    let store =
        nestbox::store::Store::open(&env.data_dir(), &nestbox::config::StoreConfig::default())
            .unwrap();
    let times: Vec<Option<i64>> = smol::block_on(async {
        let user = store.find_user("alice", "").await.unwrap().unwrap();
        let inbox = store.mailbox(user.id, "INBOX").await.unwrap().unwrap();
        let scan = store.pop3_scan(inbox.id, |_, _| ()).await.unwrap();
        scan.iter().map(|e| e.pop3_retrieved).collect()
    });
    assert_eq!(times.len(), 3, "{times:?}");
    assert!(times[0].is_some_and(|t| t >= before), "dropped: {times:?}");
    assert_eq!(times[1], None, "TOP is not a retrieval: {times:?}");
    assert!(times[2].is_some_and(|t| t >= before), "QUIT: {times:?}");
}
