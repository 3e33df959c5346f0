//! The full-text index (issue #17) against an unindexed scan: two real servers hold the
//! same generated mail (ASCII, accented, Greek, CJK; 8bit, quoted-printable, base64,
//! Latin-1, HTML, attachments; RFC 2047 headers), one with `store.full_text_index`
//! (Full, or Headers) and one without (Off), and an independent client (tests/fixtures/search_index.py) compares
//! their answers to random SEARCH queries: before and after expunges, with mail not
//! yet indexed, and after a kill -9 while indexing; and their SORT and THREAD answers,
//! one from the index's records, the other from the headers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, Instant};

use common::*;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/search_index.py"
);

/// The test config with `store.full_text_index` set to `mode` (Off, Headers, Full).
fn config(mode: &str) -> String {
    IMAP_CONFIG.replace(
        "limits:",
        &format!("store: (full_text_index: {mode}),\n    limits:"),
    )
}

fn run(seed: u64, indexed: &Server, plain: &Server, command: &str, arg: &str) -> String {
    let (a, b) = (indexed.imap.unwrap().port(), plain.imap.unwrap().port());
    let out = python3(&[
        SCRIPT,
        &seed.to_string(),
        &a.to_string(),
        &b.to_string(),
        command,
        arg,
    ]);
    assert_eq!(out.code, 0, "{command} {arg}: {}{}", out.stdout, out.stderr);
    out.stdout
}

/// Waits until `nestbox stats` says nothing waits to be indexed; returns the index size.
fn wait_indexed(env: &Env) -> u64 {
    let start = Instant::now();
    loop {
        let out = env.cli(&["stats"], b"");
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("full-text index:"))
            .unwrap_or_else(|| panic!("no index line in stats: {}", out.stdout))
            .to_string();
        let numbers: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if numbers.get(1) == Some(&0) && numbers.first().is_some_and(|&b| b > 0) {
            return numbers[0];
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "not indexed after 90 s: {line}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn pair() -> (Env, Server, Env, Server) {
    pair_with("Full")
}

/// A server with the index as `mode` says, and one without.
fn pair_with(mode: &str) -> (Env, Server, Env, Server) {
    let (ea, eb) = (
        Env::with_config(&config(mode)),
        Env::with_config(&config("Off")),
    );
    ea.add_user("alice");
    eb.add_user("alice");
    let (a, b) = (Server::start(&ea), Server::start(&eb));
    (ea, a, eb, b)
}

#[test]
fn indexed_search_answers_as_a_scan_does() {
    let (ea, a, _eb, b) = pair();
    run(1, &a, &b, "fill", "300");
    let size = wait_indexed(&ea);
    assert!(size > 0);
    print!("{}", run(2, &a, &b, "expect", ""));
    print!("{}", run(3, &a, &b, "compare", "200"));
    print!("{}", run(3, &a, &b, "sorts", ""));
    // Expunged messages are no longer found; the rest still are.
    run(4, &a, &b, "expunge", "7");
    print!("{}", run(5, &a, &b, "compare", "100"));
    print!("{}", run(5, &a, &b, "sorts", ""));
    // New mail not indexed yet is read instead.
    run(6, &a, &b, "fill", "40");
    print!("{}", run(7, &a, &b, "compare", "60"));
    wait_indexed(&ea);
    print!("{}", run(8, &a, &b, "compare", "60"));
    // A rebuild gives the same answers.
    let out = ea.cli(&["reindex", "--user", "alice"], b"");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    wait_indexed(&ea);
    print!("{}", run(9, &a, &b, "compare", "60"));
}

#[test]
fn kill_9_while_indexing_leaves_a_consistent_index() {
    let (ea, mut a, _eb, b) = pair();
    run(11, &a, &b, "fill", "600");
    // The indexer starts once appends pause: kill it at work.
    std::thread::sleep(Duration::from_millis(400));
    a.kill9();
    a = Server::start(&ea);
    wait_indexed(&ea);
    print!("{}", run(12, &a, &b, "compare", "60"));
    // A rebuild starts at once: kill it at a few points on its way.
    for (round, delay) in [(13, 20), (14, 60), (15, 120)] {
        let out = ea.cli(&["reindex"], b"");
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        std::thread::sleep(Duration::from_millis(delay));
        a.kill9();
        a = Server::start(&ea);
        wait_indexed(&ea);
        print!("{}", run(round, &a, &b, "compare", "40"));
    }
}

#[test]
fn reindex_without_a_server_builds_the_index_itself() {
    let (ea, a, _eb, b) = pair();
    run(21, &a, &b, "fill", "50");
    wait_indexed(&ea);
    a.stop();
    let out = ea.cli(&["reindex"], b"");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("dropped for"), "{}", out.stdout);
    let stats = ea.cli(&["stats"], b"").stdout;
    assert!(stats.contains(", 0 messages waiting"), "{stats}");
    let out = ea.cli(&["reindex", "--user", "nobody"], b"");
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("no such user"), "{}", out.stderr);
}

#[test]
fn an_index_of_the_fields_answers_them_and_leaves_the_rest_to_the_scan() {
    let (ea, a, _eb, b) = pair_with("Headers");
    run(31, &a, &b, "fill", "150");
    wait_indexed(&ea);
    print!("{}", run(32, &a, &b, "expect", ""));
    print!("{}", run(33, &a, &b, "compare", "100"));
    print!("{}", run(33, &a, &b, "sorts", ""));
    // Turned to Full, the server builds the index again, answering alike meanwhile.
    a.stop();
    std::fs::write(ea.config(), config("Full")).unwrap();
    let a = Server::start(&ea);
    print!("{}", run(34, &a, &b, "compare", "40"));
    wait_indexed(&ea);
    print!("{}", run(35, &a, &b, "compare", "60"));
}
