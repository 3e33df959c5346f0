//! IMAP4rev2 / IMAP4rev1 (RFC 9051, RFC 3501) and the extensions listed in
//! docs/rfc-status.md.
//!
//! Layers, bottom up:
//! 1. [`framing`]: finds complete commands (lines and literals) in the read buffer and
//!    enforces the line and literal limits before anything is parsed (pure);
//! 2. [`grammar`]: one framed command -> [`grammar::Command`] or a syntax error (pure);
//!    [`sequence`], [`mutf7`]: sequence sets and modified UTF-7 (pure);
//! 3. [`response`]: response encoding and the one error table (pure);
//! 4. [`view`]: the selected mailbox as the client knows it, and which untagged updates
//!    may be sent when (pure);
//! 5. [`session`]: the state machine; [`cmd`]: the command handlers, one file per
//!    command family or extension, each with its argument grammar (`cmd::fetch`,
//!    `cmd::search`, `cmd::store`, `cmd::mailbox`, `cmd::auth`, `cmd::sort`, ...),
//!    which call the store;
//! 6. [`server`]: the connection driver (sockets, timeouts, IDLE, SASL rounds).

pub mod cmd;
pub mod fetch;
pub mod framing;
pub mod grammar;
pub mod mutf7;
pub mod response;
pub mod search;
pub mod sequence;
pub mod server;
pub mod session;
pub mod view;

pub use cmd::mailbox::wildcard_match;
