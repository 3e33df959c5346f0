//! LMTP (RFC 2033): the pure protocol half of local delivery.
//!
//! Nothing in this module does I/O, reads a clock or touches storage. The connection
//! driver owns the socket and the store and uses these parts in this order:
//!
//! 1. [`split_line`] frames one command line out of its read buffer (RFC 5321 §2.3.8,
//!    §4.5.3.1.4, with a lenient configurable cap, PROTOCOL.md §3.17);
//! 2. [`parse_command`] turns it into a [`Command`] or a [`SyntaxError`] (RFC 5321 §4.1);
//! 3. [`Session::handle`] answers it and says what to do next ([`Step`]): write a reply,
//!    look a recipient up, start reading DATA, or close;
//! 4. during DATA a [`DataDecoder`] removes dot-stuffing and finds `CRLF.CRLF`
//!    (RFC 5321 §4.5.2); bytes after the terminator stay in the driver's buffer for the
//!    next pipelined command (RFC 2920 §3);
//! 5. [`Session::data_done`] hands over the [`Transaction`]; the driver delivers one copy
//!    per accepted recipient and [`Session::delivery_replies`] gives exactly one reply per
//!    accepted RCPT, in order (RFC 2033 §4.2).
//!
//! Replies are [`Reply`] values encoded with [`Reply::encode`].

mod data;
mod grammar;
mod reply;
mod session;

pub use crate::net::line::{LineResult, split_line};
pub use data::{DataDecoder, DataState};

/// Default cap on one command line, terminator excluded. RFC 5321 §4.5.3.1.4 sets 512
/// octets; we allow 2048 because long source routes and parameters from real MTAs
/// exceed it and LMTP peers are trusted local MTAs (PROTOCOL.md §3.17: be lenient).
pub const DEFAULT_MAX_LINE: usize = 2048;
pub use grammar::{Body, Command, MailParams, Mailbox, ReversePath, SyntaxError, parse_command};
pub use reply::Reply;
pub use session::{RcptOutcome, RecipientCheck, Session, Step, Transaction};

pub mod server;
