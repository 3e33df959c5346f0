//! A server with its data dir on a small tmpfs, in a private mount namespace
//! (`unshare -m`), so nothing outside the test is touched; CLI commands run in the same
//! namespace through `nsenter`. Needs root (as CI has) and util-linux. For
//! tests/disk_full.rs and tests/compact_full.rs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_nestbox");

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub http: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a nestbox CLI command inside the server's mount namespace.
pub fn cli(server: &Server, config: &Path, args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new("nsenter")
        .args([
            "-t",
            &server.child.id().to_string(),
            "-m",
            "--",
            BIN,
            "--config",
        ])
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nsenter (util-linux) is needed for this test");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Starts the server with its data dir on a 4 MiB tmpfs holding a 1 MiB `ballast` file.
pub fn start(dir: &Path) -> Server {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.join("config.ron");
    std::fs::write(
        &config,
        "(data_dir: \"data\", imap: (listen: [], tls_listen: []), pop3: (listen: [], tls_listen: []), managesieve: (listen: []), \
         lmtp: (listen: [\"127.0.0.1:0\"], unix_socket: None), http: (listen: [\"127.0.0.1:0\"]), \
         store: (dictionary_after: 0, compact_check_secs: 0), limits: (max_message_size: 524288), \
         auth: (argon2: (memory_kib: 64, iterations: 1, parallelism: 1)))",
    )
    .unwrap();
    let script = format!(
        "mount -t tmpfs -o size=4m tmpfs '{d}' && head -c 1048576 /dev/zero > '{d}/ballast' && exec '{BIN}' --config '{c}' serve",
        d = data.display(),
        c = config.display()
    );
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("unshare (util-linux) is needed for this test");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut port, mut http) = (0, 0);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(addr) = line.strip_prefix("listening lmtp ") {
            port = addr.rsplit(':').next().unwrap().parse().unwrap();
        }
        if let Some(addr) = line.strip_prefix("listening http ") {
            http = addr.rsplit(':').next().unwrap().parse().unwrap();
        }
        if line == "ready" {
            break;
        }
    }
    assert!(
        port != 0,
        "server did not start; this test needs root to mount a tmpfs"
    );
    std::thread::spawn(move || for _ in lines {});
    Server { child, port, http }
}

/// `GET /healthz`: the status code and the body.
pub fn healthz(server: &Server) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", server.http)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

pub fn read_reply(r: &mut BufReader<TcpStream>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "connection closed");
        all.push_str(&line);
        if line.as_bytes().get(3) == Some(&b' ') {
            return all;
        }
    }
}

pub fn send(w: &mut TcpStream, r: &mut BufReader<TcpStream>, line: &str) -> String {
    w.write_all(line.as_bytes()).unwrap();
    w.write_all(b"\r\n").unwrap();
    read_reply(r)
}

/// A message of `n` incompressible bytes (hex of a xorshift stream), tagged with `id`.
pub fn message(id: u32, n: usize) -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(id);
    let mut body = String::new();
    while body.len() < n {
        for _ in 0..38 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            body.push_str(&format!("{:x}", x & 0xf));
        }
        body.push_str("\r\n");
    }
    format!("Subject: fill {id}\r\nMessage-ID: <fill-{id}@test>\r\n\r\n{body}")
}

/// Delivers [`message`] `id` of 200 kB to `to` (a local part) over LMTP.
pub fn deliver_to(w: &mut TcpStream, r: &mut BufReader<TcpStream>, to: &str, id: u32) -> String {
    assert!(send(w, r, "MAIL FROM:<s@test>").starts_with("250"));
    assert!(send(w, r, &format!("RCPT TO:<{to}@test>")).starts_with("250"));
    assert!(send(w, r, "DATA").starts_with("354"));
    w.write_all(message(id, 200_000).as_bytes()).unwrap();
    w.write_all(b".\r\n").unwrap();
    read_reply(r)
}

/// Delivers [`message`] `id` to alice.
pub fn deliver(w: &mut TcpStream, r: &mut BufReader<TcpStream>, id: u32) -> String {
    deliver_to(w, r, "alice", id)
}

/// Runs `args` (a plain command, e.g. `rm`) inside the server's mount namespace.
pub fn in_ns(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .args(["-t", &server.child.id().to_string(), "-m", "--"])
        .args(args)
        .output()
        .expect("nsenter (util-linux) is needed for this test")
}

/// `user`'s INBOX as `nestbox export` writes it (mbox, LF line ends).
pub fn export_inbox(server: &Server, config: &Path, dir: &Path, user: &str) -> String {
    let export = dir.join(format!("{user}.mbox"));
    let out = cli(
        server,
        config,
        &[
            "export",
            "--user",
            user,
            "--mailbox",
            "INBOX",
            "--format",
            "mbox",
            export.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut text = String::new();
    std::fs::File::open(&export)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Asserts that `text` (from [`export_inbox`]) holds exactly the messages `ids`, each
/// once and intact.
pub fn assert_exactly(text: &str, ids: &[u32]) {
    for id in ids {
        let body = message(*id, 200_000).replace("\r\n", "\n");
        assert_eq!(
            text.matches(&body).count(),
            1,
            "message {id} is stored exactly once and intact"
        );
    }
    let stored = text.matches("\nSubject: fill ").count();
    assert_eq!(
        stored,
        ids.len(),
        "exactly the acknowledged messages are stored: {stored} stored, {} acknowledged",
        ids.len()
    );
}

/// An LMTP session to the server, greeted.
pub fn lmtp(server: &Server) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    assert!(read_reply(&mut r).starts_with("220"));
    assert!(send(&mut w, &mut r, "LHLO test").starts_with("250"));
    (w, r)
}

pub fn add_user(server: &Server, config: &Path, name: &str) {
    let out = cli(
        server,
        config,
        &["user", "add", name, "--password-stdin"],
        b"pw\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
