//! Authentication policy against the real binary: each value of `auth.plaintext` seen by
//! a loopback client and by a client on another address (RFC 3501 §6.2.3 LOGINDISABLED,
//! RFC 2595 §2.1 and §4, RFC 2449 §5 CAPA), brute-force throttling over IMAP and POP3
//! (RFC 1939 §13; RFC 5530 §3 UNAVAILABLE; RFC 3206 SYS/TEMP), and the per-user session
//! limit (`connections.max_per_user`; RFC 5530 LIMIT, RFC 2449 §8.1.1 IN-USE).
//!
//! The non-loopback client runs in a network namespace the test creates: a veth pair
//! with a private /30 (10.213.x.y), the server bound to the host side, the client
//! (tests/fixtures/line_client.py) started with `ip netns exec`. Everything is removed on
//! drop, also when the test fails. This needs root and `ip` (iproute2); no other address
//! of the machine is used.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Env, IO_TIMEOUT, Server};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/line_client.py");

/// A network namespace joined to the host by a veth pair; removed on drop.
struct Netns {
    name: String,
    host_if: String,
    /// The host side's address (the server binds here).
    host: String,
    /// The namespace side's address (the client's).
    inside: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("`ip` (iproute2) is needed to test non-loopback clients: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    fn new() -> Netns {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // 10.213.A.B/30: A from the pid, B picks one of 64 /30s for this test.
        let a = pid % 250;
        let b = (n % 64) * 4;
        let ns = Netns {
            name: format!("nbx{pid}-{n}"),
            host_if: format!("nbh{}x{n}", pid % 100_000),
            host: format!("10.213.{a}.{}", b + 1),
            inside: format!("10.213.{a}.{}", b + 2),
        };
        let peer_if = format!("nbn{}x{n}", pid % 100_000);
        let setup = || -> Result<(), String> {
            ip(&["netns", "add", &ns.name])?;
            ip(&[
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer_if,
            ])?;
            ip(&["link", "set", &peer_if, "netns", &ns.name])?;
            ip(&[
                "addr",
                "add",
                &format!("{}/30", ns.host),
                "dev",
                &ns.host_if,
            ])?;
            ip(&["link", "set", &ns.host_if, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &ns.name, "ip"];
                all.extend_from_slice(args);
                ip(&all)
            };
            inside(&["addr", "add", &format!("{}/30", ns.inside), "dev", &peer_if])?;
            inside(&["link", "set", &peer_if, "up"])?;
            inside(&["link", "set", "lo", "up"])?;
            Ok(())
        };
        if let Err(e) = setup() {
            drop(ns);
            panic!(
                "cannot create a network namespace with a veth pair ({e}); these tests need \
                 root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2's `ip`"
            );
        }
        ns
    }

    /// Runs the line client inside the namespace; returns its transcript.
    fn client(&self, mode: &str, addr: SocketAddr, cmds: &[&str]) -> String {
        run_client(Some(&self.name), mode, addr, cmds)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both.
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Runs tests/fixtures/line_client.py, in a namespace if given; returns its transcript.
fn run_client(netns: Option<&str>, mode: &str, addr: SocketAddr, cmds: &[&str]) -> String {
    let port = addr.port().to_string();
    let host = addr.ip().to_string();
    let mut args: Vec<&str> = Vec::new();
    if let Some(ns) = netns {
        args.extend(["netns", "exec", ns, "python3"]);
    }
    args.extend([CLIENT, mode, &host, &port]);
    args.extend_from_slice(cmds);
    let (prog, args) = if netns.is_some() {
        ("ip", &args[..])
    } else {
        ("python3", &args[..])
    };
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{prog} is needed to run the line client ({e})"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "line client failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The reply lines of the transcript that follow `C: cmd`, up to the next command.
fn replies<'a>(transcript: &'a str, cmd: &str) -> Vec<&'a str> {
    let mut lines = transcript.lines();
    lines
        .by_ref()
        .find(|l| *l == format!("C: {cmd}"))
        .unwrap_or_else(|| panic!("no `{cmd}` in:\n{transcript}"));
    lines
        .take_while(|l| !l.starts_with("C: "))
        .filter_map(|l| l.strip_prefix("S: "))
        .collect()
}

fn last_reply<'a>(transcript: &'a str, cmd: &str) -> &'a str {
    replies(transcript, cmd)
        .last()
        .copied()
        .unwrap_or_else(|| panic!("no reply to `{cmd}` in:\n{transcript}"))
}

fn config(plaintext: &str, listen: &[&str], extra: &str) -> String {
    let plain: Vec<String> = listen.iter().map(|h| format!("\"{h}:0\"")).collect();
    let plain = plain.join(", ");
    format!(
        r#"(
    hostname: "test.example",
    data_dir: "data",
    imap: (listen: [{plain}], tls_listen: []),
    pop3: (listen: [{plain}], tls_listen: []),
    managesieve: (listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    auth: (
        plaintext: {plaintext},
        argon2: (memory_kib: 64, iterations: 1, parallelism: 1),
        {extra}
    ),
    limits: (max_message_size: 100000),
)
"#
    )
}

/// The listener of `proto` bound to `host`.
fn listener(server: &Server, proto: &str, host: &str) -> SocketAddr {
    server
        .listening
        .iter()
        .filter(|(p, _)| p == proto)
        .filter_map(|(_, a)| a.parse::<SocketAddr>().ok())
        .find(|a| a.ip().to_string() == host)
        .unwrap_or_else(|| panic!("no {proto} listener on {host}: {:?}", server.listening))
}

const IMAP_PRIVACY: &str = "a2 NO [PRIVACYREQUIRED] Plaintext login is not allowed without TLS";
const IMAP_AUTH_PRIVACY: &str =
    "a3 NO [PRIVACYREQUIRED] Plaintext authentication is not allowed without TLS";
const POP3_PRIVACY: &str =
    "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections";

/// IMAP and POP3 as a client where plaintext is refused sees them: LOGINDISABLED and no
/// AUTH=, a clear NO for LOGIN and AUTHENTICATE; POP3 CAPA without USER/SASL and `-ERR
/// [AUTH]`; after STARTTLS/STLS login works.
fn assert_refused_until_tls(
    run: &dyn Fn(&str, SocketAddr, &[&str]) -> String,
    server: &Server,
    host: &str,
) {
    let imap = listener(server, "imap", host);
    let t = run(
        "imap",
        imap,
        &[
            "a1 CAPABILITY",
            "a2 LOGIN alice pw-alice",
            "a3 AUTHENTICATE PLAIN AGFsaWNlAHB3LWFsaWNl",
            "a4 STARTTLS",
            "a5 CAPABILITY",
            "a6 LOGIN alice pw-alice",
            "a7 LOGOUT",
        ],
    );
    let caps = replies(&t, "a1 CAPABILITY")[0];
    assert!(caps.contains(" LOGINDISABLED"), "{t}");
    assert!(caps.contains(" STARTTLS"), "{t}");
    assert!(!caps.contains("AUTH="), "{t}");
    assert_eq!(
        last_reply(&t, "a2 LOGIN alice pw-alice"),
        IMAP_PRIVACY,
        "{t}"
    );
    assert_eq!(
        last_reply(&t, "a3 AUTHENTICATE PLAIN AGFsaWNlAHB3LWFsaWNl"),
        IMAP_AUTH_PRIVACY,
        "{t}"
    );
    assert!(t.contains("TLS: TLSv1."), "{t}");
    let caps = replies(&t, "a5 CAPABILITY")[0];
    assert!(!caps.contains("LOGINDISABLED"), "{t}");
    assert!(caps.contains("AUTH=PLAIN"), "{t}");
    assert!(
        last_reply(&t, "a6 LOGIN alice pw-alice").starts_with("a6 OK"),
        "{t}"
    );

    let pop3 = listener(server, "pop3", host);
    let t = run(
        "pop3",
        pop3,
        &[
            "CAPA",
            "USER alice",
            "AUTH PLAIN AGFsaWNlAHB3LWFsaWNl",
            "STLS",
            "CAPA",
            "USER alice",
            "PASS pw-alice",
            "QUIT",
        ],
    );
    let capa = replies(&t, "CAPA");
    assert!(capa.contains(&"STLS"), "{t}");
    assert!(
        !capa.iter().any(|l| *l == "USER" || l.starts_with("SASL")),
        "{t}"
    );
    assert_eq!(last_reply(&t, "USER alice"), POP3_PRIVACY, "{t}");
    assert_eq!(
        last_reply(&t, "AUTH PLAIN AGFsaWNlAHB3LWFsaWNl"),
        POP3_PRIVACY,
        "{t}"
    );
    let after = t
        .split("TLS: TLSv1.")
        .nth(1)
        .unwrap_or_else(|| panic!("{t}"));
    let capa = replies(after, "CAPA");
    assert!(capa.contains(&"USER"), "{t}");
    assert!(capa.contains(&"SASL PLAIN LOGIN"), "{t}");
    assert!(last_reply(after, "PASS pw-alice").starts_with("+OK"), "{t}");
}

/// Plaintext login works: no LOGINDISABLED, AUTH=PLAIN offered, LOGIN and USER/PASS ok.
fn assert_plaintext_allowed(
    run: &dyn Fn(&str, SocketAddr, &[&str]) -> String,
    server: &Server,
    host: &str,
) {
    let t = run(
        "imap",
        listener(server, "imap", host),
        &["a1 CAPABILITY", "a2 LOGIN alice pw-alice", "a3 LOGOUT"],
    );
    let caps = replies(&t, "a1 CAPABILITY")[0];
    assert!(!caps.contains("LOGINDISABLED"), "{t}");
    assert!(caps.contains("AUTH=PLAIN"), "{t}");
    assert!(
        last_reply(&t, "a2 LOGIN alice pw-alice").starts_with("a2 OK"),
        "{t}"
    );
    let t = run(
        "pop3",
        listener(server, "pop3", host),
        &["CAPA", "USER alice", "PASS pw-alice", "QUIT"],
    );
    let capa = replies(&t, "CAPA");
    assert!(
        capa.contains(&"USER") && capa.contains(&"SASL PLAIN LOGIN"),
        "{t}"
    );
    assert!(last_reply(&t, "PASS pw-alice").starts_with("+OK"), "{t}");
}

fn start(plaintext: &str, ns: &Netns, extra: &str) -> (Env, Server) {
    let env = Env::with_config(&config(plaintext, &["127.0.0.1", &ns.host], extra));
    env.add_user("alice");
    let server = Server::start(&env);
    (env, server)
}

fn local(mode: &str, addr: SocketAddr, cmds: &[&str]) -> String {
    run_client(None, mode, addr, cmds)
}

#[test]
fn plaintext_loopback_allows_loopback_and_refuses_other_addresses_until_tls() {
    let ns = Netns::new();
    let (_env, server) = start("Loopback", &ns, "");
    assert_plaintext_allowed(&local, &server, "127.0.0.1");
    let remote = |m: &str, a: SocketAddr, c: &[&str]| ns.client(m, a, c);
    assert_refused_until_tls(&remote, &server, &ns.host);
}

#[test]
fn plaintext_never_refuses_loopback_and_other_addresses_until_tls() {
    let ns = Netns::new();
    let (_env, server) = start("Never", &ns, "");
    assert_refused_until_tls(&local, &server, "127.0.0.1");
    let remote = |m: &str, a: SocketAddr, c: &[&str]| ns.client(m, a, c);
    assert_refused_until_tls(&remote, &server, &ns.host);
}

#[test]
fn plaintext_always_allows_every_address() {
    let ns = Netns::new();
    let (_env, server) = start("Always", &ns, "");
    assert_plaintext_allowed(&local, &server, "127.0.0.1");
    let remote = |m: &str, a: SocketAddr, c: &[&str]| ns.client(m, a, c);
    assert_plaintext_allowed(&remote, &server, &ns.host);
}

/// A raw line client over loopback.
struct Raw {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut c = Raw {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        };
        let greeting = c.line();
        assert!(
            greeting.starts_with("* OK") || greeting.starts_with("+OK"),
            "{greeting}"
        );
        c
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l.trim_end().to_string()
    }

    fn send(&mut self, line: &str) {
        self.w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    }

    /// Sends an IMAP command and returns its tagged reply (untagged lines skipped).
    fn imap(&mut self, cmd: &str) -> String {
        self.send(cmd);
        let tag = format!("{} ", cmd.split(' ').next().unwrap());
        loop {
            let l = self.line();
            assert!(
                !l.is_empty(),
                "connection closed before `{cmd}` was answered"
            );
            if l.starts_with(&tag) {
                return l;
            }
        }
    }

    fn pop3(&mut self, cmd: &str) -> String {
        self.send(cmd);
        self.line()
    }
}

/// One IMAP LOGIN on a fresh connection: the tagged reply and how long it took.
fn imap_login(addr: SocketAddr, user: &str, pass: &str) -> (String, Duration) {
    let mut c = Raw::connect(addr);
    let t = Instant::now();
    let reply = c.imap(&format!("a LOGIN {user} {pass}"));
    (reply, t.elapsed())
}

/// One POP3 USER/PASS on a fresh connection: the PASS reply and how long it took.
fn pop3_login(addr: SocketAddr, user: &str, pass: &str) -> (String, Duration) {
    let mut c = Raw::connect(addr);
    let user_reply = c.pop3(&format!("USER {user}"));
    assert!(user_reply.starts_with("+OK"), "{user_reply}");
    let t = Instant::now();
    let reply = c.pop3(&format!("PASS {pass}"));
    let took = t.elapsed();
    if reply.starts_with("+OK") {
        assert!(c.pop3("QUIT").starts_with("+OK"));
    }
    (reply, took)
}

/// 100 ms doubling to 400 ms; the fifth failure from an address bans it for an hour.
const THROTTLE: &str =
    "throttle: (base_delay_ms: 100, max_delay_ms: 400, ban_after: 5, ban_secs: 3600),";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Checks the shape of throttling through `login` (IMAP or POP3) against a server whose
/// loopback address starts clean.
fn assert_throttles(
    login: &dyn Fn(SocketAddr, &str, &str) -> (String, Duration),
    addr: SocketAddr,
    failed: &str,
    refused: &str,
) {
    // Unknown user and wrong password: the same reply; each failure from this address is
    // answered later than the one before (100, 200, 400, 400 ms at least).
    let mut replies = Vec::new();
    let attempts = [
        ("alice", "wrong", 100),
        ("nobody", "wrong", 200),
        ("alice", "wrong", 400),
        ("nobody", "pw-alice", 400),
    ];
    for (user, pass, at_least) in attempts {
        let (reply, took) = login(addr, user, pass);
        assert!(
            took >= ms(at_least),
            "{user}/{pass}: answered after {took:?}"
        );
        replies.push(reply);
    }
    for r in &replies {
        assert_eq!(r, failed, "{replies:?}");
    }
    // The fifth failure bans the address: even the right password is refused, without
    // being checked.
    assert_eq!(login(addr, "alice", "wrong").0, failed);
    assert_eq!(login(addr, "alice", "pw-alice").0, refused);
    assert_eq!(login(addr, "nobody", "x").0, refused);
}

#[test]
fn throttle_imap_delays_then_bans_the_address_and_other_address_still_logs_in() {
    let ns = Netns::new();
    let (_env, server) = start("Always", &ns, THROTTLE);
    let addr = listener(&server, "imap", "127.0.0.1");
    assert_throttles(
        &imap_login,
        addr,
        "a NO [AUTHENTICATIONFAILED] Authentication failed",
        "a NO [UNAVAILABLE] Too many failed logins, try again later",
    );
    // The ban covers POP3 too: it is the address that is refused.
    let (reply, _) = pop3_login(listener(&server, "pop3", "127.0.0.1"), "alice", "pw-alice");
    assert_eq!(reply, "-ERR [SYS/TEMP] Too many failed logins, try later");

    // Another address: alice's failures slow down wrong guesses for her (the user's delay,
    // capped at 400 ms), but her right password logs in at once.
    let remote = listener(&server, "imap", &ns.host);
    let t = Instant::now();
    let run = ns.client("imap", remote, &["a1 LOGIN alice wrong"]);
    assert!(t.elapsed() >= ms(400), "answered after {:?}", t.elapsed());
    assert_eq!(
        last_reply(&run, "a1 LOGIN alice wrong"),
        "a1 NO [AUTHENTICATIONFAILED] Authentication failed"
    );
    let run = ns.client("imap", remote, &["a1 LOGIN alice pw-alice", "a2 LOGOUT"]);
    assert!(
        last_reply(&run, "a1 LOGIN alice pw-alice").starts_with("a1 OK"),
        "{run}"
    );
    // The loopback address is still banned.
    assert_eq!(
        imap_login(addr, "alice", "pw-alice").0,
        "a NO [UNAVAILABLE] Too many failed logins, try again later"
    );
}

#[test]
fn throttle_pop3_delays_then_bans_the_address_and_other_address_still_logs_in() {
    let ns = Netns::new();
    let (_env, server) = start("Always", &ns, THROTTLE);
    let addr = listener(&server, "pop3", "127.0.0.1");
    assert_throttles(
        &pop3_login,
        addr,
        "-ERR [AUTH] Authentication failed",
        "-ERR [SYS/TEMP] Too many failed logins, try later",
    );
    let remote = listener(&server, "pop3", &ns.host);
    let run = ns.client("pop3", remote, &["USER alice", "PASS pw-alice", "QUIT"]);
    assert!(
        last_reply(&run, "PASS pw-alice").starts_with("+OK"),
        "{run}"
    );
}

/// `connections.max_per_user` counts logged-in IMAP and POP3 sessions of a user
/// together: past it IMAP says `NO [LIMIT]`, POP3 `-ERR [IN-USE]`; a logout frees a place.
#[test]
fn per_user_session_limit_imap_and_pop3() {
    let env = Env::with_config(&config("Loopback", &["127.0.0.1"], "").replace(
        "limits: (max_message_size: 100000),",
        "limits: (max_message_size: 100000),\n    connections: (max_per_user: 2),",
    ));
    env.add_user("alice");
    env.add_user("bob");
    let server = Server::start(&env);
    let imap = listener(&server, "imap", "127.0.0.1");
    let pop3 = listener(&server, "pop3", "127.0.0.1");
    let session = |user: &str| {
        let mut c = Raw::connect(imap);
        let reply = c.imap(&format!("a LOGIN {user} pw-{user}"));
        (c, reply)
    };
    let (mut first, r) = session("alice");
    assert!(r.starts_with("a OK"), "{r}");
    let (_second, r) = session("alice");
    assert!(r.starts_with("a OK"), "{r}");
    let (mut third, r) = session("alice");
    assert_eq!(
        r,
        "a NO [LIMIT] Too many sessions for this user, try again later"
    );
    // Not a failed login: the connection stays usable and may try again.
    assert!(third.imap("b NOOP").starts_with("b OK"));
    // Other users are not affected.
    let (_bob, r) = session("bob");
    assert!(r.starts_with("a OK"), "{r}");
    // POP3 counts against the same limit.
    let (r, _) = pop3_login(pop3, "alice", "pw-alice");
    assert_eq!(r, "-ERR [IN-USE] Too many sessions for this user");

    // LOGOUT frees a place: the refused connection now gets in.
    assert!(first.imap("z LOGOUT").starts_with("z OK"));
    assert!(third.imap("c LOGIN alice pw-alice").starts_with("c OK"));
    assert!(third.imap("d LOGOUT").starts_with("d OK"));

    // A POP3 session holds a place until QUIT.
    let mut pop = Raw::connect(pop3);
    assert!(pop.pop3("USER alice").starts_with("+OK"));
    assert!(pop.pop3("PASS pw-alice").starts_with("+OK"));
    let (_, r) = session("alice");
    assert_eq!(
        r,
        "a NO [LIMIT] Too many sessions for this user, try again later"
    );
    assert!(pop.pop3("QUIT").starts_with("+OK"));
    let (_, r) = session("alice");
    assert!(r.starts_with("a OK"), "{r}");
}
