//! LMTP over real sockets against the real binary (RFC 2033; RFC 5321 §4.1, §4.5.2;
//! RFC 1870 SIZE; RFC 2920 PIPELINING; RFC 2034 enhanced codes). Messages are read
//! back with `nestbox export` and compared byte for byte.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking (see clippy.toml for #[test] functions)

mod common;

use std::fs;
use std::thread;
use std::time::Duration;

use common::*;

/// A fresh store with users alice and bob, and a server on it.
fn setup() -> (Env, Server) {
    let env = Env::new();
    env.add_user("alice");
    env.add_user("bob");
    let server = Server::start(&env);
    (env, server)
}

fn codes(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.code).collect()
}

/// A message with 8-bit header and body bytes, dot lines, a `From ` body line (mbox
/// quoting on export) and a multipart body.
fn rich_message() -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(b"From: Andr\xc3\xa9 <andre@remote.test>\r\n");
    m.extend_from_slice(b"To: alice@test.example, bob@test.example\r\n");
    m.extend_from_slice(b"Subject: caf\xc3\xa9 \xe9t\xe9\r\n");
    m.extend_from_slice(b"Message-ID: <rich@remote.test>\r\n");
    m.extend_from_slice(b"MIME-Version: 1.0\r\n");
    m.extend_from_slice(b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n");
    m.extend_from_slice(b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    m.extend_from_slice(b".leading dot\r\n..two dots\r\n.\r\nFrom the start of a line\r\n");
    m.extend_from_slice(b">From quoted already\r\n8-bit: \xff\xfe\r\n");
    m.extend_from_slice(b"--b1--\r\n");
    m
}

#[test]
fn greeting_is_220_with_hostname() {
    let (_env, server) = setup();
    let mut c = Lmtp::tcp(server.lmtp);
    let g = c.reply();
    assert_eq!(g.code, 220, "{g:?}");
    assert!(g.text().starts_with("test.example"), "{g:?}");
}

#[test]
fn lhlo_advertises_extensions() {
    let (_env, server) = setup();
    let mut c = server.connect();
    let r = c.cmd("LHLO client.test");
    assert_eq!(r.code, 250, "{r:?}");
    for ext in ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"] {
        assert!(r.lines.iter().any(|l| l == ext), "{ext} missing: {r:?}");
    }
    assert!(
        r.lines.iter().any(|l| *l == format!("SIZE {MAX_SIZE}")),
        "SIZE {MAX_SIZE} missing: {r:?}"
    );
}

#[test]
fn multi_recipient_python_client() {
    let (env, server) = setup();
    let msg = rich_message();
    let msg_path = env.path().join("rich.eml");
    fs::write(&msg_path, &msg).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lmtp_client.py");
    let run = python3(&[
        script,
        "127.0.0.1",
        &server.lmtp.port().to_string(),
        msg_path.to_str().unwrap(),
        "sender@remote.test",
        "alice@test.example",
        "bob@other.test",
        "nobody@test.example",
        "alice+tag@x.test",
    ]);
    assert_eq!(run.code, 0, "python client failed: {run:#?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines.contains(&"lhlo 250"), "{lines:?}");
    for f in ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE"] {
        assert!(
            lines.contains(&format!("feature {f}").as_str()),
            "{f}: {lines:?}"
        );
    }
    let rcpt: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("rcpt "))
        .copied()
        .collect();
    assert_eq!(rcpt.len(), 4, "{lines:?}");
    assert!(rcpt[0].starts_with("rcpt 250 2.1.5"), "{rcpt:?}");
    assert!(rcpt[1].starts_with("rcpt 250 2.1.5"), "{rcpt:?}");
    assert!(rcpt[2].starts_with("rcpt 550 5.1.1"), "{rcpt:?}");
    assert!(rcpt[3].starts_with("rcpt 250 2.1.5"), "{rcpt:?}");
    let data: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("data "))
        .copied()
        .collect();
    assert_eq!(data.len(), 3, "one reply per accepted recipient: {lines:?}");
    assert!(data.iter().all(|d| d.starts_with("data 250 ")), "{data:?}");

    let expected = as_exported(&msg);
    let alice = env.messages("alice", "INBOX");
    assert_eq!(alice.len(), 2, "alice gets both of her copies");
    let traces: Vec<Trace> = alice
        .iter()
        .map(|m| {
            let (trace, body) = strip_trace(m);
            assert_eq!(body, expected, "alice's copy differs:\n{}", show(&body));
            trace
        })
        .collect();
    assert_eq!(traces[0].delivered_to, "alice@test.example");
    assert_eq!(traces[1].delivered_to, "alice+tag@x.test");
    for t in &traces {
        assert_eq!(t.return_path.as_deref(), Some("<sender@remote.test>"));
        assert!(t.received.contains("python.test"), "{}", t.received);
        assert!(t.received.contains("\n\tby test.example"), "{}", t.received);
    }
    assert!(traces[0].received.contains("for <alice@test.example>;"));
    let bob = env.messages("bob", "INBOX");
    assert_eq!(bob.len(), 1);
    let (trace, body) = strip_trace(&bob[0]);
    assert_eq!(trace.delivered_to, "bob@other.test");
    assert_eq!(body, expected);
    assert_eq!(env.blob_count(), 1, "three copies share one stored blob");
}

#[test]
fn rcpt_duplicate_and_unknown_get_one_reply_each_in_order() {
    let (env, server) = setup();
    let body = b"Subject: dup\r\n\r\nduplicate recipient\r\n";
    let mut c = server.connect();
    let (rcpt, after) = c.transaction(
        "s@remote.test",
        &[
            "alice@test.example",
            "bob@test.example",
            "zed@test.example",
            "ALICE@test.example",
        ],
        body,
    );
    assert_eq!(codes(&rcpt), [250, 250, 550, 250]);
    assert_eq!(rcpt[2].enhanced(), "5.1.1");
    assert_eq!(codes(&after), [250, 250, 250], "{after:?}");
    assert_eq!(bodies(&env, "alice", "INBOX").len(), 2);
    assert_eq!(bodies(&env, "bob", "INBOX"), [as_exported(body)]);
    assert_eq!(env.blob_count(), 1);
}

/// RFC 2033 §4.2: the replies after DATA follow RCPT order, so a recipient that fails
/// late gets its failure in its own slot.
#[test]
fn data_replies_follow_rcpt_order_when_one_recipient_fails_late() {
    let (env, server) = setup();
    let mut c = server.connect();
    assert_eq!(c.cmd("LHLO client.test").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@test.example>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@test.example>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@test.example>").code, 250);
    // bob disappears between RCPT and DATA (through the control socket).
    env.cli(&["user", "del", "bob"], b"").expect_code(0);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(&data_block(b"Subject: late\r\n\r\nx\r\n"));
    let after: Vec<Reply> = (0..3).map(|_| c.reply()).collect();
    assert_eq!(codes(&after), [250, 550, 250], "{after:?}");
    assert_eq!(after[1].enhanced(), "5.1.1");
    assert_eq!(bodies(&env, "alice", "INBOX").len(), 2);
}

#[test]
fn rcpt_unknown_user_is_550_and_nothing_is_stored() {
    let (env, server) = setup();
    let mut c = server.connect();
    let (rcpt, after) = c.transaction("s@remote.test", &["nobody@test.example"], b"x\r\n");
    assert_eq!(rcpt[0].code, 550, "{rcpt:?}");
    assert_eq!(rcpt[0].enhanced(), "5.1.1");
    assert!(after.is_empty());
    assert!(bodies(&env, "alice", "INBOX").is_empty());
    assert_eq!(env.blob_count(), 0);
}

#[test]
fn data_oversize_is_552_per_recipient_and_connection_stays_usable() {
    let (env, server) = setup();
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    while big.len() <= MAX_SIZE + 10 {
        big.extend_from_slice(b"0123456789012345678901234567890123456789012345678\r\n");
    }
    let mut c = server.connect();
    let (rcpt, after) = c.transaction(
        "s@remote.test",
        &["alice@test.example", "bob@test.example"],
        &big,
    );
    assert_eq!(codes(&rcpt), [250, 250]);
    assert_eq!(codes(&after), [552, 552], "{after:?}");
    assert!(after.iter().all(|r| r.enhanced() == "5.3.4"), "{after:?}");

    let good = b"Subject: after big\r\n\r\nstill in step\r\n";
    let (_, after) = c.transaction("s@remote.test", &["alice@test.example"], good);
    assert_eq!(codes(&after), [250], "{after:?}");
    assert_eq!(bodies(&env, "alice", "INBOX"), [as_exported(good)]);
    assert!(bodies(&env, "bob", "INBOX").is_empty());
}

#[test]
fn mail_size_parameter_too_big_is_552() {
    let (_env, server) = setup();
    let mut c = server.connect();
    assert_eq!(c.cmd("LHLO client.test").code, 250);
    let r = c.cmd(&format!("MAIL FROM:<s@remote.test> SIZE={}", MAX_SIZE + 1));
    assert_eq!(r.code, 552, "{r:?}");
    assert_eq!(r.enhanced(), "5.3.4");
    let r = c.cmd("MAIL FROM:<s@remote.test> SIZE=1000 BODY=8BITMIME");
    assert_eq!(r.code, 250, "{r:?}");
}

#[test]
fn data_without_rcpt_is_503() {
    let (_env, server) = setup();
    let mut c = server.connect();
    let r = c.cmd("DATA");
    assert_eq!(r.code, 503, "before LHLO: {r:?}");
    assert_eq!(c.cmd("LHLO client.test").code, 250);
    let r = c.cmd("DATA");
    assert_eq!(r.code, 503, "before MAIL: {r:?}");
    assert_eq!(c.cmd("MAIL FROM:<>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<nobody@test.example>").code, 550);
    let r = c.cmd("DATA");
    assert_eq!((r.code, r.enhanced()), (503, "5.5.1"), "{r:?}");
    assert_eq!(c.cmd("NOOP").code, 250, "the connection stays usable");
}

#[test]
fn helo_and_ehlo_are_refused() {
    let (_env, server) = setup();
    let mut c = server.connect();
    for cmd in ["HELO client.test", "EHLO client.test"] {
        let r = c.cmd(cmd);
        assert!((500..600).contains(&r.code), "{cmd}: {r:?}");
        let r = c.cmd("MAIL FROM:<s@remote.test>");
        assert_eq!(r.code, 503, "{cmd} must not start a session: {r:?}");
    }
    assert_eq!(c.cmd("LHLO client.test").code, 250);
}

#[test]
fn pipelined_commands_in_one_write() {
    let (env, server) = setup();
    let mut c = server.connect();
    c.send(
        b"LHLO client.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@test.example>\r\n\
          RCPT TO:<nobody@test.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n",
    );
    let replies: Vec<Reply> = (0..6).map(|_| c.reply()).collect();
    assert_eq!(
        codes(&replies),
        [250, 250, 250, 550, 250, 354],
        "{replies:?}"
    );
    let body = b"Subject: pipelined\r\n\r\nbody\r\n";
    let mut rest = data_block(body);
    rest.extend_from_slice(b"NOOP\r\nQUIT\r\n");
    c.send(&rest);
    let replies: Vec<Reply> = (0..4).map(|_| c.reply()).collect();
    assert_eq!(codes(&replies), [250, 250, 250, 221], "{replies:?}");
    assert!(c.at_eof(), "QUIT closes the connection");
    assert_eq!(bodies(&env, "alice", "INBOX"), [as_exported(body)]);
    assert_eq!(bodies(&env, "bob", "INBOX"), [as_exported(body)]);
}

#[test]
fn data_dot_stuffing_is_removed() {
    let (env, server) = setup();
    let mut c = server.connect();
    assert_eq!(c.cmd("LHLO client.test").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@test.example>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: dots\r\n\r\n..leading\r\n...two\r\n..\r\nend.\r\n.x\r\n.\r\n");
    assert_eq!(c.reply().code, 250);
    assert_eq!(
        show(&bodies(&env, "alice", "INBOX")[0]),
        "Subject: dots\n\n.leading\n..two\n.\nend.\nx\n"
    );
}

#[test]
fn data_bare_lf_dot_does_not_end_the_message() {
    let (env, server) = setup();
    let mut c = server.connect();
    assert_eq!(c.cmd("LHLO client.test").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@test.example>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: lf\r\n\r\nline1\n.\nline2\r\n.\r\n");
    let r = c.reply();
    assert_eq!(r.code, 250, "{r:?}");
    // Had `\n.\n` ended the data, `line2` and `.` would have been answered as commands.
    let r = c.cmd("NOOP");
    assert_eq!((r.code, r.enhanced()), (250, "2.0.0"), "{r:?}");
    let stored = bodies(&env, "alice", "INBOX");
    assert_eq!(stored.len(), 1);
    assert_eq!(show(&stored[0]), "Subject: lf\n\nline1\n.\nline2\n");
}

#[test]
fn unix_socket_delivers() {
    let (env, server) = setup();
    let mut c = Lmtp::unix(&server.lmtp_unix);
    assert_eq!(c.reply().code, 220);
    let body = b"Subject: via unix socket\r\n\r\nhello\r\n";
    let (_, after) = c.transaction("", &["bob@test.example"], body);
    assert_eq!(codes(&after), [250]);
    let msgs = env.messages("bob", "INBOX");
    assert_eq!(msgs.len(), 1);
    let (trace, stored) = strip_trace(&msgs[0]);
    assert_eq!(trace.return_path.as_deref(), Some("<>"));
    assert_eq!(stored, as_exported(body));
}

#[test]
fn connection_dropped_mid_data_delivers_nothing() {
    let (env, server) = setup();
    {
        let mut c = server.connect();
        assert_eq!(c.cmd("LHLO client.test").code, 250);
        assert_eq!(c.cmd("MAIL FROM:<s@remote.test>").code, 250);
        assert_eq!(c.cmd("RCPT TO:<alice@test.example>").code, 250);
        assert_eq!(c.cmd("DATA").code, 354);
        c.send(b"Subject: cut off\r\n\r\nhalf a message\r\n");
    } // dropped: no terminator
    let marker = b"Subject: marker\r\n\r\nafter the drop\r\n";
    let mut c = server.connect();
    let (_, after) = c.transaction("s@remote.test", &["alice@test.example"], marker);
    assert_eq!(codes(&after), [250]);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(bodies(&env, "alice", "INBOX"), [as_exported(marker)]);
}
