//! Crash consistency (issue 2, acceptance 3; DESIGN.md decision 2): four LMTP
//! connections deliver in a loop, the server is killed with SIGKILL at a random moment,
//! and after a restart every message that got a 250 is present, once, and intact. Repeated
//! on the same data dir, so each round also checks the earlier rounds' mail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking (see clippy.toml for #[test] functions)

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

const ROUNDS: u64 = 4;
const THREADS: u64 = 4;
const USERS: [&str; 2] = ["alice", "bob"];

/// Every message ever sent, by Message-ID, in its CRLF form.
type Sent = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// xorshift64*: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn message(id: &str, n: u64) -> Vec<u8> {
    let mut m =
        format!("From: load@remote.test\r\nSubject: crash load {id}\r\nMessage-ID: <{id}>\r\n\r\n")
            .into_bytes();
    // 1 to 40 lines, so some messages take more than one write and one read to arrive.
    for i in 0..(n % 40 + 1) {
        m.extend_from_slice(
            format!("{id} line {i} {}\r\n", "x".repeat((n % 7 * 20) as usize)).as_bytes(),
        );
    }
    m
}

/// Delivers until the server goes away; returns (user, Message-ID) for every 250.
fn load(
    server_addr: std::net::SocketAddr,
    round: u64,
    t: u64,
    sent: Sent,
    stop: Arc<AtomicBool>,
) -> Vec<(String, String)> {
    let mut acked = Vec::new();
    let mut c = Lmtp::tcp(server_addr);
    let ok = |r: std::io::Result<Reply>, code: u16| matches!(r, Ok(ref r) if r.code == code);
    if !ok(c.try_reply(), 220)
        || c.try_send(b"LHLO load.test\r\n").is_err()
        || !ok(c.try_reply(), 250)
    {
        return acked;
    }
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let id = format!("r{round}.t{t}.n{n}@crash.test");
        let rcpts: Vec<&str> = match n % 3 {
            0 => vec!["alice", "bob"],
            1 => vec!["alice"],
            _ => vec!["bob"],
        };
        let msg = message(&id, n);
        sent.lock().unwrap().insert(id.clone(), msg.clone());
        // MAIL, RCPTs and DATA pipelined in one write.
        let mut cmds = b"MAIL FROM:<load@remote.test>\r\n".to_vec();
        for r in &rcpts {
            cmds.extend_from_slice(format!("RCPT TO:<{r}@test.example>\r\n").as_bytes());
        }
        cmds.extend_from_slice(b"DATA\r\n");
        if c.try_send(&cmds).is_err() || !ok(c.try_reply(), 250) {
            return acked;
        }
        for _ in &rcpts {
            if !ok(c.try_reply(), 250) {
                return acked;
            }
        }
        if !ok(c.try_reply(), 354) || c.try_send(&data_block(&msg)).is_err() {
            return acked;
        }
        for r in &rcpts {
            match c.try_reply() {
                Ok(reply) if reply.code == 250 => acked.push((r.to_string(), id.clone())),
                Ok(reply) => panic!("unexpected reply to {id} for {r}: {reply:?}"),
                Err(_) => return acked,
            }
        }
    }
    acked
}

/// Checks the store against what was sent and acknowledged; returns messages per user.
fn verify(env: &Env, sent: &Sent, acked: &[(String, String)]) -> usize {
    let sent = sent.lock().unwrap();
    let mut found: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut total = 0;
    for user in USERS {
        for exported in env.messages(user, "INBOX") {
            let (trace, body) = strip_trace(&exported);
            assert_eq!(trace.delivered_to, format!("{user}@test.example"));
            let text = show(&body);
            let id = text
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: <"))
                .and_then(|l| l.strip_suffix('>'))
                .unwrap_or_else(|| panic!("{user}: stored message without our Message-ID:\n{text}"))
                .to_owned();
            let original = sent
                .get(&id)
                .unwrap_or_else(|| panic!("{user}: stored message {id} was never sent"));
            assert!(
                body == as_exported(original),
                "{user}: {id} is damaged:\n{text}"
            );
            *found.entry((user.to_owned(), id)).or_default() += 1;
            total += 1;
        }
    }
    for (key, count) in &found {
        assert_eq!(*count, 1, "{key:?} stored {count} times");
    }
    for (user, id) in acked {
        assert!(
            found.contains_key(&(user.clone(), id.clone())),
            "acknowledged message {id} for {user} is missing after kill -9"
        );
    }
    total
}

#[test]
fn kill9_during_lmtp_load_loses_nothing_acknowledged() {
    let started = Instant::now();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let env = Env::new();
    for u in USERS {
        env.add_user(u);
    }
    let sent: Sent = Arc::default();
    let mut acked: Vec<(String, String)> = Vec::new();
    for round in 0..ROUNDS {
        let server = Server::start(&env);
        if round > 0 {
            // The store opened cleanly after the previous kill; check it through the server.
            let stored = verify(&env, &sent, &acked);
            println!(
                "round {round}: {stored} stored, {} acknowledged so far",
                acked.len()
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (addr, sent, stop) = (server.lmtp, sent.clone(), stop.clone());
                thread::spawn(move || load(addr, round, t, sent, stop))
            })
            .collect();
        let delay = Duration::from_millis(300 + rng.next() % 1200);
        println!("round {round}: kill -9 after {delay:?}");
        thread::sleep(delay);
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        let before = acked.len();
        for t in threads {
            acked.extend(t.join().expect("load thread panicked"));
        }
        assert!(
            acked.len() > before,
            "round {round}: no message was acknowledged"
        );
    }
    // Last restart: through a server, then with the store opened directly.
    let server = Server::start(&env);
    let stored = verify(&env, &sent, &acked);
    println!("final: {stored} stored, {} acknowledged", acked.len());
    env.cli(&["stats"], b"").expect_code(0);
    assert!(server.stop().success());
    verify(&env, &sent, &acked);
    println!("took {:?}", started.elapsed());
}
