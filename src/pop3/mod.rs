//! POP3 (RFC 1939 with RFC 2449 CAPA, RFC 5034 AUTH, RFC 6856 UTF8).
//!
//! [`grammar`] and [`session`] are pure (bytes in, values out; no I/O, clock or store);
//! [`server`] is the connection driver. The maildrop is the user's INBOX, fixed at login.

pub mod grammar;
pub mod server;
pub mod session;

pub use grammar::{Command, SyntaxError, parse_command};
pub use server::Locks;
pub use session::{Session, Step};
