//! POP3 grammar and session: never panic on any input; RETR output un-stuffs to exactly
//! the size LIST reports (RFC 1939 §11); TOP output is well terminated.
//! Run: `cargo +nightly fuzz run pop3_grammar`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nestbox::config::Plaintext;
use nestbox::contracts::{MailboxId, Uid};
use nestbox::pop3::grammar::{encode_message, parse_command, pop3_size};
use nestbox::pop3::session::{LoginOutcome, Maildrop, Message, Options, Session, Step};

fn unstuffed_len(out: &[u8]) -> u64 {
    let body = out.strip_suffix(b".\r\n").expect("terminator");
    let mut n = 0u64;
    for line in body.split_inclusive(|b| *b == b'\n') {
        assert!(line.ends_with(b"\r\n"), "line without CRLF");
        assert!(!line.contains(&0), "NUL sent");
        n += line.len() as u64 - u64::from(line.starts_with(b".."));
    }
    n
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_command(data);

    let mut out = Vec::new();
    assert!(encode_message(data, None, &mut out));
    assert_eq!(unstuffed_len(&out), pop3_size(data));
    let k = data.first().copied().unwrap_or(0) % 8;
    let mut top = Vec::new();
    encode_message(data, Some(u32::from(k)), &mut top);
    let _ = unstuffed_len(&top);

    let mut session = Session::new(Options {
        plaintext: Plaintext::Always,
        peer: nestbox::net::stream::Peer {
            ip: None,
            tls: false,
        },
        expire_days: None,
        login_delay: Some(10),
        max_line: 255,
    });
    for line in data.split(|b| *b == b'\n') {
        let mut step = session.line(line);
        while let Step::Authenticate { login, .. } = step {
            let outcome = match login.len() % 3 {
                0 => LoginOutcome::Failed,
                1 => LoginOutcome::InUse,
                _ => LoginOutcome::Ok {
                    user: login,
                    maildrop: Maildrop {
                        mailbox: MailboxId(1),
                        messages: (1..4)
                            .map(|uid| Message {
                                uid: Uid(uid),
                                size: 10,
                                uidl: format!("u{uid}"),
                                retrieved: false,
                                deleted: false,
                            })
                            .collect(),
                    },
                },
            };
            step = session.login(outcome);
        }
        match step {
            Step::Reply(r) | Step::StartTls(r) => {
                assert!(r.ends_with(b"\r\n"));
                let first = r.split(|b| *b == b'\n').next().unwrap_or(&[]);
                assert!(first.len() < 512);
            }
            Step::Update { .. } => {
                let _ = session.updated(true);
                return;
            }
            Step::Close(_) => return,
            Step::Send { .. } | Step::Authenticate { .. } => {}
        }
    }
});
