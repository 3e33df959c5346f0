//! COMPRESS=DEFLATE (RFC 4978) and UNAUTHENTICATE under it (RFC 8437 §4.1) against the
//! real binary, with an independent client: Python's socket, ssl and zlib
//! (tests/fixtures/imap_compress.py), over plain TCP, implicit TLS and STARTTLS. The
//! error branches that need no compression are transcripts
//! (tests/imap/30-compress-unauthenticate.txt).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/imap_compress.py"
);

/// Runs the client in `mode` against a fresh server; returns its `wire` line.
fn session(mode: &str) -> String {
    let env = Env::with_config(IMAP_CONFIG);
    env.add_user("alice");
    env.add_user("bob");
    let server = Server::start(&env);
    let addr = if mode == "imaps" {
        server.imaps.expect("imaps listener")
    } else {
        server.imap.expect("imap listener")
    };
    let r = python3(&[
        SCRIPT,
        &addr.ip().to_string(),
        &addr.port().to_string(),
        mode,
    ]);
    assert_eq!(r.code, 0, "{r:#?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.last(), Some(&"ok"), "{r:#?}");
    let wire = lines
        .iter()
        .find(|l| l.starts_with("wire "))
        .expect("wire line")
        .to_string();
    // What the server logged: no deflate error, no input dropped at UNAUTHENTICATE.
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(!log.contains("deflate:"), "{log}");
    assert!(!log.contains("dropped"), "{log}");
    wire
}

/// `wire fetch W plain P`: the FETCH took W bytes on the socket for P bytes of IMAP.
fn ratio(wire: &str) -> f64 {
    let n: Vec<f64> = wire
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    n[0] / n[1]
}

#[test]
fn compress_deflate_session_over_plain_tcp() {
    let wire = session("plain");
    // Mail text compresses; a third of the messages carry random base64 that does not.
    assert!(ratio(&wire) < 0.6, "{wire}");
}

#[test]
fn compress_deflate_session_over_implicit_tls() {
    let wire = session("imaps");
    // Over TLS the socket also carries TLS records: still far below the plain size.
    assert!(ratio(&wire) < 0.7, "{wire}");
}

#[test]
fn compress_deflate_session_after_starttls() {
    let wire = session("starttls");
    assert!(ratio(&wire) < 0.7, "{wire}");
}
