//! ManageSieve (RFC 5804): users upload, check, list, activate and delete their Sieve
//! scripts from a mail client (Roundcube's managesieve plugin, Thunderbird's Sieve add-on).
//!
//! The parts, in the order the driver uses them:
//! 1. [`grammar::Parser`] frames commands (lines joined by `{n+}` literals) under the line
//!    and literal limits; [`grammar::parse_command`] turns one into a [`grammar::Command`];
//! 2. [`session::Session`] answers it and says what to do next ([`session::Step`]);
//! 3. the driver ([`server`]) authenticates, runs the script operations against the store
//!    (`store::sieve`) and the [`SieveChecker`], and writes the replies.
//!
//! Scripts are checked by a [`SieveChecker`]: the Sieve plugin's when one is loaded, else
//! the built-in [`LexicalChecker`].

mod check;
pub mod grammar;
pub mod server;
pub mod session;

pub use check::{LexicalChecker, ScriptError, SieveChecker};
