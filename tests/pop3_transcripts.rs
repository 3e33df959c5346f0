//! POP3 transcripts (tests/pop3/*.txt, format in tests/common/transcript.rs) replayed
//! against the real binary over TCP: once line by line in lock step, and once with all
//! client bytes sent up front in chunks of 1..=16 octets (PIPELINING, RFC 2449 §6.6, and
//! framing across reads).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

pub const POP3_CONFIG: &str = r#"(
    hostname: "test.example",
    data_dir: "data",
    imap: (listen: [], tls_listen: []),
    pop3: (listen: ["127.0.0.1:0"], tls_listen: []),
    managesieve: (listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    auth: (
        argon2: (memory_kib: 64, iterations: 1, parallelism: 1),
        throttle: (base_delay_ms: 10, max_delay_ms: 100),
    ),
    limits: (max_message_size: 100000),
)
"#;

macro_rules! transcripts {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn lock_step() {
                crate::common::transcript::run("pop3", stringify!($name), super::POP3_CONFIG, "pop3", false);
            }
            #[test]
            fn chunked() {
                crate::common::transcript::run("pop3", stringify!($name), super::POP3_CONFIG, "pop3", true);
            }
        }
    )*};
}

transcripts!(basic, errors, auth, dele, top, capa);
