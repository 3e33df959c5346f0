//! Transcript tests: a file of client lines and expected server lines replayed against
//! the real binary over TCP, once line by line in lock step, and once with all client
//! bytes sent up front in chunks of 1..=16 octets (pipelining, framing across reads).
//!
//! File format, one directive per line (`#` comments and blank lines are skipped):
//! - `user NAME`: an account with password `pw-NAME`;
//! - `mbox USER` then `|`-prefixed lines: an mbox file imported into USER's INBOX;
//! - `connect`: open a new connection (the first `S:` after it is the greeting);
//! - `C: text`: a client line, CRLF appended;
//! - `S: text`: the next server line; a final `*` matches any rest of the line;
//! - `closed`: the server has closed the connection.
//!
//! In `C:` and `|` lines, `\0` is NUL, `\r` a CR, and `{N*c}` is `c` repeated N times.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{Env, IO_TIMEOUT, Server};

pub fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && (b[i + 1] == b'0' || b[i + 1] == b'r') {
            out.push(if b[i + 1] == b'0' { 0 } else { b'\r' });
            i += 2;
        } else if b[i] == b'{'
            && let Some(end) = s[i..].find('}')
            && let Some((n, c)) = s[i + 1..i + end].split_once('*')
            && let Ok(n) = n.parse::<usize>()
        {
            for _ in 0..n {
                out.extend_from_slice(c.as_bytes());
            }
            i += end + 1;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

enum Item {
    Send(Vec<u8>),
    Expect(String, usize),
    Closed(usize),
}

struct Transcript {
    users: Vec<String>,
    mboxes: Vec<(String, Vec<u8>)>,
    /// One list of items per connection.
    conns: Vec<Vec<Item>>,
}

fn parse(text: &str) -> Transcript {
    let mut t = Transcript {
        users: Vec::new(),
        mboxes: Vec::new(),
        conns: Vec::new(),
    };
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if let Some(rest) = line.strip_prefix('|') {
            let (_, mbox) = t.mboxes.last_mut().expect("| line without mbox");
            mbox.extend(unescape(rest.strip_prefix(' ').unwrap_or(rest)));
            mbox.push(b'\n');
        } else if line.trim().is_empty() || line.starts_with('#') {
        } else if let Some(u) = line.strip_prefix("user ") {
            t.users.push(u.trim().to_string());
        } else if let Some(u) = line.strip_prefix("mbox ") {
            t.mboxes.push((u.trim().to_string(), Vec::new()));
        } else if line == "connect" {
            t.conns.push(Vec::new());
        } else if let Some(c) = line.strip_prefix("C: ") {
            let mut bytes = unescape(c);
            bytes.extend_from_slice(b"\r\n");
            t.conns
                .last_mut()
                .expect("C: before connect")
                .push(Item::Send(bytes));
        } else if let Some(s) = line.strip_prefix("S: ") {
            t.conns
                .last_mut()
                .expect("S: before connect")
                .push(Item::Expect(s.to_string(), n));
        } else if line == "closed" {
            t.conns
                .last_mut()
                .expect("closed before connect")
                .push(Item::Closed(n));
        } else {
            panic!("line {n}: cannot parse {line:?}");
        }
    }
    t
}

fn setup(t: &Transcript, config: &str) -> (Env, Server) {
    let env = Env::with_config(config);
    for u in &t.users {
        env.add_user(u);
    }
    let server = Server::start(&env);
    for (user, mbox) in &t.mboxes {
        let path = env.path().join(format!("fixture-{}.mbox", super::unique()));
        std::fs::write(&path, mbox).unwrap();
        env.cli(
            &[
                "import",
                "--user",
                user,
                "--mailbox",
                "INBOX",
                path.to_str().unwrap(),
            ],
            b"",
        )
        .expect_code(0);
    }
    (env, server)
}

fn check(name: &str, reader: &mut impl BufRead, items: &[Item]) {
    for item in items {
        match item {
            Item::Send(_) => {}
            Item::Expect(want, n) => {
                let mut got = Vec::new();
                reader
                    .read_until(b'\n', &mut got)
                    .unwrap_or_else(|e| panic!("{name}:{n}: reading, expected {want:?}: {e}"));
                let got = String::from_utf8_lossy(&got).into_owned();
                let Some(line) = got.strip_suffix("\r\n") else {
                    panic!("{name}:{n}: expected {want:?}, got {got:?} (no CRLF)");
                };
                let ok = match want.strip_suffix('*') {
                    Some(prefix) => line.starts_with(prefix),
                    None => line == want,
                };
                assert!(ok, "{name}:{n}: expected {want:?}, got {line:?}");
            }
            Item::Closed(n) => {
                let mut rest = Vec::new();
                let r = reader.read_to_end(&mut rest);
                assert!(
                    r.is_ok() && rest.is_empty(),
                    "{name}:{n}: expected the server to close, got {:?}",
                    String::from_utf8_lossy(&rest)
                );
            }
        }
    }
}

/// Replays `tests/<dir>/<name>.txt` against a server started with `config`, connecting
/// to its `listening <proto>` address: in lock step, or with all client bytes sent up
/// front in chunks of 1..=16 octets.
pub fn run(dir: &str, name: &str, config: &str, proto: &str, chunked: bool) {
    let path = format!("{}/tests/{dir}/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let t = parse(&text);
    let (_env, server) = setup(&t, config);
    let addr = server.addr(proto);
    for items in &t.conns {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        if chunked {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(|i| match i {
                    Item::Send(b) => Some(b.clone()),
                    _ => None,
                })
                .flatten()
                .collect();
            let mut w = stream.try_clone().unwrap();
            let writer = std::thread::spawn(move || {
                let mut seed = bytes.len() as u64 + 7;
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let n = (1 + (seed >> 33) % 16) as usize;
                    let (now, later) = rest.split_at(n.min(rest.len()));
                    // The server may close early (QUIT, too many failures): stop quietly.
                    if w.write_all(now).is_err() {
                        return;
                    }
                    rest = later;
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
            check(&format!("{name} (chunked)"), &mut reader, items);
            writer.join().unwrap();
        } else {
            let mut w = stream.try_clone().unwrap();
            let mut start = 0;
            for (i, item) in items.iter().enumerate() {
                if let Item::Send(b) = item {
                    check(name, &mut reader, &items[start..i]);
                    w.write_all(b).unwrap();
                    start = i + 1;
                }
            }
            check(name, &mut reader, &items[start..]);
        }
    }
}
