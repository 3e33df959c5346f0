//! IMAP framing + grammar never panic, never loop, and never buffer past the limits:
//! the input is fed in two pieces (first byte = split point), continuations answered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox::imap::framing::{FrameLimits, Framed, Framer};
use nestbox::imap::grammar::parse_command;

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let split = usize::from(split).min(data.len());
    let limits = FrameLimits { max_line: 256, max_literal: 512, max_nonsync: 64 };
    let mut framer = Framer::new(limits);
    let mut buf: Vec<u8> = Vec::new();
    for piece in [&data[..split], &data[split..]] {
        buf.extend_from_slice(piece);
        for _ in 0..10_000 {
            match framer.next(&buf) {
                Framed::Incomplete => break,
                // The driver sends `* BYE` and closes: nothing buffered is kept.
                Framed::Fatal => return,
                Framed::Continue => {}
                Framed::Command(n) => {
                    assert!(n <= buf.len());
                    let _ = parse_command(&buf[..n]);
                    buf.drain(..n);
                }
                Framed::Refused { consume, .. } => {
                    assert!(consume <= buf.len());
                    buf.drain(..consume);
                }
                Framed::Skip(n) => {
                    assert!(n > 0 && n <= buf.len());
                    buf.drain(..n);
                }
            }
        }
        // Text outside literals is capped by max_line, literals by max_literal.
        assert!(buf.len() <= 256 + 512 + 64, "buffered {}", buf.len());
    }
});
