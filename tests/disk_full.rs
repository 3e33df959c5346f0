//! A full disk: LMTP answers 4xx and keeps the connection, nothing acknowledged is lost,
//! `/healthz` answers 503 naming the store, and delivery works again (and `/healthz` 200)
//! once space is freed (the store reopens its poisoned handle).
//!
//! The server runs in a private mount namespace (`unshare -m`) with its data dir on a
//! 4 MiB tmpfs, so nothing outside the test is touched. Needs root (as CI has) and
//! util-linux's `unshare` and `nsenter`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_nestbox");

struct Server {
    child: Child,
    port: u16,
    http: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a nestbox CLI command inside the server's mount namespace.
fn cli(server: &Server, config: &Path, args: &[&str], stdin: &[u8]) -> std::process::Output {
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

fn start(dir: &Path) -> Server {
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
fn healthz(server: &Server) -> (u16, String) {
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

fn read_reply(r: &mut BufReader<TcpStream>) -> String {
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

fn send(w: &mut TcpStream, r: &mut BufReader<TcpStream>, line: &str) -> String {
    w.write_all(line.as_bytes()).unwrap();
    w.write_all(b"\r\n").unwrap();
    read_reply(r)
}

/// A message of `n` incompressible bytes (hex of a xorshift stream), tagged with `id`.
fn message(id: u32, n: usize) -> String {
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

fn deliver(w: &mut TcpStream, r: &mut BufReader<TcpStream>, id: u32) -> String {
    assert!(send(w, r, "MAIL FROM:<s@test>").starts_with("250"));
    assert!(send(w, r, "RCPT TO:<alice@test>").starts_with("250"));
    assert!(send(w, r, "DATA").starts_with("354"));
    w.write_all(message(id, 200_000).as_bytes()).unwrap();
    w.write_all(b".\r\n").unwrap();
    read_reply(r)
}

#[test]
fn disk_full_is_a_temporary_failure_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let config = dir.path().join("config.ron");
    let out = cli(
        &server,
        &config,
        &["user", "add", "alice", "--password-stdin"],
        b"pw\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    assert!(read_reply(&mut r).starts_with("220"));
    assert!(send(&mut w, &mut r, "LHLO test").starts_with("250"));

    let mut acked = Vec::new();
    let mut refusal = None;
    for id in 0..40 {
        let reply = deliver(&mut w, &mut r, id);
        if reply.starts_with("250") {
            acked.push(id);
        } else {
            refusal = Some(reply);
            break;
        }
    }
    let refusal = refusal.expect("a 4 MiB disk must fill up");
    assert!(
        refusal.starts_with("452 4.3.1") || refusal.starts_with("451 4.3.0"),
        "full disk is a temporary failure: {refusal}"
    );
    assert!(!acked.is_empty(), "some mail fitted before the disk filled");
    // The session is still usable.
    assert!(send(&mut w, &mut r, "NOOP").starts_with("250"));
    // A monitor sees it.
    let (code, body) = healthz(&server);
    assert_eq!(code, 503, "/healthz on a full disk: {body}");
    assert!(body.contains("store not writable"), "{body}");

    // Free space; delivery works again without restarting the server.
    let rm = Command::new("nsenter")
        .args(["-t", &server.child.id().to_string(), "-m", "rm"])
        .arg(dir.path().join("data/ballast"))
        .status()
        .unwrap();
    assert!(rm.success());
    let again = deliver(&mut w, &mut r, 1000);
    assert!(again.starts_with("250"), "after freeing space: {again}");
    acked.push(1000);
    let (code, body) = healthz(&server);
    assert_eq!(code, 200, "/healthz after freeing space: {body}");

    // Every acknowledged message is there, intact.
    let export = dir.path().join("inbox.mbox");
    let out = cli(
        &server,
        &config,
        &[
            "export",
            "--user",
            "alice",
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
    for id in &acked {
        let body = message(*id, 200_000).replace("\r\n", "\n");
        assert_eq!(
            text.matches(&body).count(),
            1,
            "message {id} is stored exactly once and intact"
        );
    }
    // redb can fail *after* its commit record reached the disk; the writer then finds
    // its batch stamp after reopening and acknowledges the batch. So what is stored is
    // exactly what was acknowledged: no duplicate on the sender's retry.
    let stored = text.matches("\nSubject: fill ").count();
    assert_eq!(
        stored,
        acked.len(),
        "exactly the acknowledged messages are stored: {stored} stored, {} acknowledged",
        acked.len()
    );
}
