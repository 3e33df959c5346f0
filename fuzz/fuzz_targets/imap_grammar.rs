//! The IMAP grammar alone (no framing, no store, no TLS): `parse_command` on one
//! command line never panics, gives the same answer twice, and answers only what can
//! be sent: a tag that is the input's own, a BAD reason of one line of printable
//! ASCII (RFC 9051 §7.1.5: `resp-text` has no CR/LF), and for a message command a
//! non-empty sequence set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox::imap::grammar::{CommandBody, MessageCommand, parse_command};
use nestbox::imap::sequence::SequenceSet;

fuzz_target!(|data: &[u8]| {
    let mut line = data.to_vec();
    if !line.ends_with(b"\r\n") {
        line.extend_from_slice(b"\r\n");
    }
    let first = parse_command(&line);
    assert_eq!(first, parse_command(&line), "not a function of the bytes");
    match first {
        Ok(cmd) => {
            assert!(!cmd.tag.is_empty() && line.starts_with(cmd.tag.as_bytes()));
            assert!(!cmd.body.name().is_empty());
            if let CommandBody::Message { command, .. } = &cmd.body {
                let set = match command {
                    MessageCommand::Fetch(s, _)
                    | MessageCommand::Store(s, _)
                    | MessageCommand::Copy(s, _)
                    | MessageCommand::Move(s, _)
                    | MessageCommand::Expunge(Some(s)) => Some(s),
                    _ => None,
                };
                if let Some(SequenceSet::Ranges(r)) = set {
                    assert!(!r.is_empty(), "empty sequence set");
                }
            }
        }
        Err(e) => {
            let reason = e.reason.to_string();
            assert!(
                !reason.is_empty() && reason.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "reason {reason:?}"
            );
            if let Some(tag) = &e.tag {
                assert!(!tag.is_empty() && line.starts_with(tag.as_bytes()));
            }
        }
    }
});
