//! Running under systemd (contrib/nestbox.service, `Type=notify`): `serve` sends READY=1
//! to `$NOTIFY_SOCKET` once it listens, and STOPPING=1 on SIGTERM, after which it exits
//! cleanly well within the unit's TimeoutStopSec (30 s) even with a client connected.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking (see clippy.toml for #[test] functions)

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, IMAP_CONFIG, bin};

#[test]
fn serve_notifies_systemd_and_stops_on_sigterm() {
    let env = Env::with_config(IMAP_CONFIG);
    let notify_path = env.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(env.config())
        .arg("serve")
        .current_dir(env.path())
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 128];
    let n = notify.recv(&mut buf).expect("READY=1 within 20 s");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means listening: the IMAP port answers.
    // Kept open to the end: the server may still write to its stdout.
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let imap: std::net::SocketAddr = stdout
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening imap ").map(str::to_owned))
        .unwrap()
        .parse()
        .unwrap();
    let mut client = TcpStream::connect(imap).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut greeting = String::new();
    BufReader::new(client.try_clone().unwrap())
        .read_line(&mut greeting)
        .unwrap();
    assert!(greeting.starts_with("* OK"), "{greeting}");
    client.write_all(b"a1 NOOP\r\n").unwrap();

    let start = Instant::now();
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let n = notify.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "still running 25 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    // The drain waits at most 10 s for the connected client.
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    drop(stdout);
}
