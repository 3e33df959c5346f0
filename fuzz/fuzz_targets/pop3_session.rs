//! A whole POP3 session through the real connection driver (`pop3::server::handle`:
//! lines -> grammar -> Session, the maildrop lock, RETR/TOP streaming, UPDATE) against a
//! real store: see `common`. Logged in as alice first unless bit 0 of the first byte is
//! set. Never panics, never hangs; the reply starts with `+OK`.
//! Run: `cargo +nightly fuzz run pop3_session`.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

const MAX_INPUT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    if data.len() > MAX_INPUT {
        return;
    }
    let f = common::fixture();
    let mut input = Vec::with_capacity(data.len() + 32);
    if mode & 1 == 0 {
        input.extend_from_slice(
            format!("USER {}\r\nPASS {}\r\n", common::USER, common::PASSWORD).as_bytes(),
        );
    }
    input.extend_from_slice(data);
    let reply = f.session(&input, |ctx, stream, peer| async move {
        let locks = nestbox::pop3::Locks::default();
        nestbox::pop3::server::handle(&ctx, &locks, stream, peer, None).await
    });
    assert!(reply.starts_with(b"+OK"), "no greeting");
    if mode & 1 == 0 {
        let pass = reply.split(|b| *b == b'\n').nth(2).unwrap_or(&[]);
        assert!(
            pass.starts_with(b"+OK"),
            "login failed: {:?}",
            String::from_utf8_lossy(pass)
        );
    }
});
