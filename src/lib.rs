//! nestbox: a single-binary IMAP/POP3 mail store for small boxes.
// Denied everywhere but src/memory.rs (two calls into glibc's allocator).
#![deny(unsafe_code)]

pub mod acme;
pub mod auth;
pub mod cidr;
pub mod cli;
pub mod config;
pub mod contracts;
pub mod control;
pub mod delivery;
pub mod http;
pub mod imap;
pub mod lmtp;
pub mod mailfmt;
pub mod managesieve;
pub mod memory;
pub mod metrics;
pub mod mime;
pub mod net;
#[cfg(feature = "plugins")]
pub mod plugins;
pub mod pop3;
pub mod retention;
pub mod server;
pub mod shutdown;
pub mod store;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod util;
