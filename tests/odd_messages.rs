//! Messages that are legal but unusual, or not quite legal, are stored intact: a 50 MB
//! message, one with no body and no final line end, 8-bit headers, NUL bytes, bare CR.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Env, strip_trace};

const CONFIG: &str = "(data_dir: \"data\", imap: (listen: [], tls_listen: []), \
    pop3: (listen: [], tls_listen: []), managesieve: (listen: []), lmtp: (listen: [], unix_socket: None), \
    limits: (max_message_size: 67108864), \
    auth: (argon2: (memory_kib: 64, iterations: 1, parallelism: 1)))";

/// Delivers `raw` with `nestbox deliver` and returns what export gives back (trace
/// headers removed, LF line ends).
fn round_trip(env: &Env, raw: &[u8]) -> Vec<u8> {
    env.cli(&["deliver", "--user", "alice", "--from", "s@test"], raw)
        .expect_code(0);
    let messages = env.messages("alice", "INBOX");
    let last = messages.last().expect("a message");
    strip_trace(last).1
}

#[test]
fn fifty_megabyte_message_is_stored_intact() {
    let env = Env::with_config(CONFIG);
    env.add_user("alice");
    let mut raw = b"Subject: big\nMessage-ID: <big@test>\n\n".to_vec();
    let mut x: u32 = 7;
    while raw.len() < 50 << 20 {
        for _ in 0..76 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            raw.push(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                    [(x % 64) as usize],
            );
        }
        raw.push(b'\n');
    }
    let back = round_trip(&env, &raw);
    assert_eq!(back.len(), raw.len());
    assert!(back == raw, "the 50 MB message came back different");
}

#[test]
fn no_body_and_no_final_newline() {
    let env = Env::with_config(CONFIG);
    env.add_user("alice");
    // Export writes a final newline after a message that lacks one (mbox needs it).
    assert_eq!(
        round_trip(&env, b"Subject: only headers"),
        b"Subject: only headers\n"
    );
    assert_eq!(
        round_trip(&env, b"Subject: empty body\n\n"),
        b"Subject: empty body\n\n"
    );
}

#[test]
fn eight_bit_headers_nul_and_bare_cr_are_kept() {
    let env = Env::with_config(CONFIG);
    env.add_user("alice");
    let raw = b"Subject: caf\xe9 \xff\xfe\nFrom: J\xfcrgen <j@test>\n\nnul:\x00: cr:\r: end\n";
    assert_eq!(round_trip(&env, raw), raw.to_vec());
}

#[test]
fn over_the_limit_is_refused_and_nothing_is_stored() {
    let env = Env::with_config(&CONFIG.replace("67108864", "2048"));
    env.add_user("alice");
    let raw = vec![b'x'; 4096];
    let run = env.cli(&["deliver", "--user", "alice"], &raw);
    run.expect_code(73);
    assert!(run.stderr.contains("larger than 2048"), "{}", run.stderr);
    assert!(env.messages("alice", "INBOX").is_empty());
}
