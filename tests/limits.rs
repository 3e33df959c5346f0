//! Connection limits against the real binary (issue: a webmail on the same box must not
//! starve local delivery, and a client that logs out and reconnects at once must not be
//! refused):
//!
//! - 200 IMAP connections from 127.0.0.1 and LMTP deliveries at the same time, with the
//!   default `connections` and `lmtp` limits: every delivery accepted, every IMAP
//!   connection served (loopback is in `connections.trusted`; LMTP has its own budget).
//! - From a non-trusted address (a network namespace, tests/common/netns.rs), at the
//!   per-IP limit minus one: 500 IMAP LOGIN/LOGOUT/reconnect cycles and 200 POP3
//!   USER/PASS/QUIT cycles back to back, none refused; one connection over the cap is
//!   refused with the key named; IMAP and POP3 are counted apart.
//! - `connections.max_total` still holds for trusted addresses and never refuses LMTP;
//!   `lmtp.max_connections` refuses LMTP with its key named.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::netns::Netns;
use common::raw::Raw;
use common::{Env, Lmtp, Server};

const CYCLE_CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cycle_client.py"
);

/// IMAP and POP3 on `hosts`, LMTP on loopback and a Unix socket, cheap argon2; `extra`
/// goes at the top level (a `connections:` block, say) and `lmtp_extra` into `lmtp`.
fn config(hosts: &[&str], plaintext: &str, extra: &str, lmtp_extra: &str) -> String {
    let listen: Vec<String> = hosts.iter().map(|h| format!("\"{h}:0\"")).collect();
    let listen = listen.join(", ");
    format!(
        r#"(
    hostname: "test.example",
    data_dir: "data",
    imap: (listen: [{listen}], tls_listen: []),
    pop3: (listen: [{listen}], tls_listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock"), {lmtp_extra}),
    managesieve: (listen: []),
    auth: (plaintext: {plaintext}, argon2: (memory_kib: 64, iterations: 1, parallelism: 1)),
    limits: (max_message_size: 100000),
    {extra}
)
"#
    )
}

/// `n` LMTP transactions of one message to two users, a new connection every third;
/// returns every reply after the final dot.
fn deliver(mut connect: impl FnMut() -> Lmtp, n: usize, users: usize, seed: usize) -> Vec<u16> {
    let mut codes = Vec::new();
    let mut conn: Option<Lmtp> = None;
    for i in 0..n {
        if i % 3 == 0 {
            if let Some(mut c) = conn.take() {
                assert_eq!(c.cmd("QUIT").code, 221);
            }
            let mut c = connect();
            let greeting = c.reply();
            assert_eq!(greeting.code, 220, "LMTP refused: {greeting:?}");
            conn = Some(c);
        }
        let c = conn.as_mut().unwrap();
        let (a, b) = ((seed + i) % users, (seed + i + 1) % users);
        let body = format!("Subject: load {seed}-{i}\r\n\r\nbody {seed}-{i}\r\n");
        let (rcpt, after) = c.transaction(
            "mta@test.example",
            &[&format!("u{a}@test.example"), &format!("u{b}@test.example")],
            body.as_bytes(),
        );
        assert!(rcpt.iter().all(|r| r.code == 250), "{rcpt:?}");
        codes.extend(after.iter().map(|r| r.code));
    }
    codes
}

#[test]
fn imap_200_loopback_connections_and_lmtp_deliveries_at_once_with_default_limits() {
    let text = config(&["127.0.0.1"], "Loopback", "", "");
    assert!(!text.contains("connections:") && !text.contains("max_connections"));
    let env = Env::with_config(&text);
    const USERS: usize = 20;
    for u in 0..USERS {
        env.add_user(&format!("u{u}"));
    }
    let server = Server::start(&env);
    let imap = server.listener("imap", "127.0.0.1");

    // 4 threads open 50 IMAP sessions each (10 per user, under max_per_user 20) while 3
    // threads deliver: 2 over TCP, 1 over the Unix socket, a new connection every third
    // message.
    const OPENERS: usize = 4;
    const PER_OPENER: usize = 50;
    const MESSAGES: usize = 15;
    let start = Arc::new(Barrier::new(OPENERS + 3));
    let openers: Vec<_> = (0..OPENERS)
        .map(|t| {
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                (0..PER_OPENER)
                    .map(|i| {
                        let u = (t * PER_OPENER + i) % USERS;
                        let (mut c, greeting) = Raw::open(imap);
                        assert!(greeting.starts_with("* OK"), "refused: {greeting}");
                        let r = c.imap(&format!("a LOGIN u{u} pw-u{u}"));
                        assert!(r.starts_with("a OK"), "{r}");
                        let r = c.imap("b SELECT INBOX");
                        assert!(r.starts_with("b OK"), "{r}");
                        (u, c)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let lmtp_tcp = server.lmtp;
    let lmtp_unix = server.lmtp_unix.clone();
    let deliverers: Vec<_> = (0..3)
        .map(|t| {
            let start = start.clone();
            let unix = lmtp_unix.clone();
            thread::spawn(move || {
                start.wait();
                let connect = move || {
                    if t == 2 {
                        Lmtp::unix(&unix)
                    } else {
                        Lmtp::tcp(lmtp_tcp)
                    }
                };
                deliver(connect, MESSAGES, USERS, t * MESSAGES)
            })
        })
        .collect();
    let mut sessions = Vec::new();
    for o in openers {
        sessions.extend(o.join().unwrap());
    }
    let mut codes = Vec::new();
    for d in deliverers {
        codes.extend(d.join().unwrap());
    }
    assert_eq!(sessions.len(), OPENERS * PER_OPENER);
    assert_eq!(codes.len(), 3 * MESSAGES * 2);
    assert!(codes.iter().all(|c| *c == 250), "{codes:?}");

    // Every session is still served, and together the users hold every delivery.
    let mut counted = [false; USERS];
    let mut total = 0;
    for (u, c) in &mut sessions {
        let r = c.imap("c NOOP");
        assert!(r.starts_with("c OK"), "{r}");
        if !counted[*u] {
            counted[*u] = true;
            c.send("d STATUS INBOX (MESSAGES)");
            let status = c.line();
            let n: usize = status
                .rsplit("MESSAGES ")
                .next()
                .and_then(|s| s.trim_end_matches(')').parse().ok())
                .unwrap_or_else(|| panic!("{status}"));
            total += n;
            assert!(c.line().starts_with("d OK"));
        }
    }
    assert_eq!(total, 3 * MESSAGES * 2);
    for (_, c) in &mut sessions {
        assert!(c.imap("z LOGOUT").starts_with("z OK"));
    }
}

#[test]
fn non_trusted_address_reconnects_at_per_ip_limit_minus_one_never_refused_and_over_cap_named() {
    let ns = Netns::new();
    let env = Env::with_config(&config(
        &["127.0.0.1", &ns.host],
        "Always",
        "connections: (max_per_ip: 5),",
        "",
    ));
    env.add_user("alice");
    let server = Server::start(&env);
    let imap = server.listener("imap", &ns.host);
    let pop3 = server.listener("pop3", &ns.host);
    let out = ns.python(
        CYCLE_CLIENT,
        &[
            &ns.host,
            &imap.port().to_string(),
            &pop3.port().to_string(),
            "4",
            "500",
            "200",
            "alice",
            "pw-alice",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(!out.contains("hold refused"), "{out}");
    assert!(lines.contains(&"imap served 500 refused 0"), "{out}");
    assert!(lines.contains(&"pop3 served 200 refused 0"), "{out}");
    assert!(
        lines.contains(
            &"over imap 5: * BYE [UNAVAILABLE] too many connections from your address \
              (connections.max_per_ip)"
        ),
        "{out}"
    );
    assert!(
        lines.contains(
            &"over pop3 5: -ERR [SYS/TEMP] too many connections from your address \
              (connections.max_per_ip)"
        ),
        "{out}"
    );
    // The namespace's connections are gone: its address is served again.
    let again = ns.client("imap", imap, &["a1 LOGIN alice pw-alice", "a2 LOGOUT"]);
    assert!(again.contains("S: a1 OK"), "{again}");
}

#[test]
fn max_total_holds_for_trusted_addresses_and_lmtp_has_its_own_budget() {
    let env = Env::with_config(&config(
        &["127.0.0.1"],
        "Loopback",
        "connections: (max_total: 4, max_per_ip: 1),",
        "max_connections: 2",
    ));
    env.add_user("alice");
    let server = Server::start(&env);
    let imap = server.listener("imap", "127.0.0.1");
    let pop3 = server.listener("pop3", "127.0.0.1");
    // Loopback is trusted: max_per_ip 1 does not apply, max_total 4 does.
    let mut held: Vec<Raw> = (0..3).map(|_| Raw::connect(imap)).collect();
    held.push(Raw::connect(pop3));
    let (_, refused) = Raw::open(imap);
    assert_eq!(
        refused,
        "* BYE [UNAVAILABLE] too many connections (connections.max_total)"
    );
    let (_, refused) = Raw::open(pop3);
    assert_eq!(
        refused,
        "-ERR [SYS/TEMP] too many connections (connections.max_total)"
    );
    // IMAP/POP3 are at their total; LMTP (TCP and Unix socket) is not refused for it.
    let mut tcp = server.connect();
    let mut unix = Lmtp::unix(&server.lmtp_unix);
    assert_eq!(unix.reply().code, 220);
    let (_, after) = tcp.transaction(
        "mta@test.example",
        &["alice@test.example"],
        b"Subject: hi\r\n\r\nhi\r\n",
    );
    assert_eq!(after[0].code, 250, "{after:?}");
    // Its own limit refuses it, naming the key.
    let mut third = Lmtp::tcp(server.lmtp);
    let r = third.reply();
    assert_eq!(r.code, 421, "{r:?}");
    assert_eq!(
        r.text(),
        "4.7.0 test.example too many LMTP connections (lmtp.max_connections), try again later"
    );
    // A LOGOUT gives its place back before the OK: a new connection gets in at once.
    let mut first = held.remove(0);
    assert!(first.imap("a LOGOUT").starts_with("a OK"));
    let (mut c, greeting) = Raw::open(imap);
    assert!(greeting.starts_with("* OK"), "{greeting}");
    assert!(c.imap("b LOGIN alice pw-alice").starts_with("b OK"));
    assert!(c.imap("c LOGOUT").starts_with("c OK"));
    drop(first);
}
