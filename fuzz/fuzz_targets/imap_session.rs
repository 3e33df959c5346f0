//! A whole IMAP session through the real connection driver (framing -> grammar ->
//! Session, streamed FETCH, IDLE, SASL rounds) against a real store: see `common`.
//! The input's first byte is a mode: bit 0 clear prefixes `a LOGIN alice secret`, so the
//! fuzzer spends its time past authentication; set, the input starts unauthenticated
//! (LOGIN, AUTHENTICATE rounds, STARTTLS).
//! Never panics, never hangs; the reply starts with the greeting.
//! Run: `cargo +nightly fuzz run imap_session`.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

/// Bounds one input's work: its length, and how many COPYs (each can double a mailbox).
const MAX_INPUT: usize = 4096;
const MAX_COPIES: usize = 4;

fn copies(data: &[u8]) -> usize {
    data.windows(4)
        .filter(|w| w.eq_ignore_ascii_case(b"copy"))
        .count()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    if data.len() > MAX_INPUT || copies(data) > MAX_COPIES {
        return;
    }
    let f = common::fixture();
    let mut input = Vec::with_capacity(data.len() + 32);
    if mode & 1 == 0 {
        input.extend_from_slice(
            format!("a LOGIN {} {}\r\n", common::USER, common::PASSWORD).as_bytes(),
        );
    }
    input.extend_from_slice(data);
    let shared = f.shared.clone();
    let reply = f.session(&input, move |ctx, stream, peer| async move {
        nestbox::imap::server::handle(&ctx, shared, stream, peer, None).await
    });
    assert!(reply.starts_with(b"* OK [CAPABILITY "), "no greeting");
    if mode & 1 == 0 {
        let login = reply.split(|b| *b == b'\n').nth(1).unwrap_or(&[]);
        assert!(
            login.starts_with(b"a OK"),
            "login failed: {:?} in {:?}",
            String::from_utf8_lossy(login),
            String::from_utf8_lossy(&reply)
        );
    }
});
