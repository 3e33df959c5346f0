//! Who is on the other end of a connection: what login policy and throttling look at.

use std::net::IpAddr;

/// Who is on the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// `None` for a Unix socket.
    pub ip: Option<IpAddr>,
    pub tls: bool,
}

/// For logs: the address, or `local socket`.
impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("local socket"),
        }
    }
}

impl Peer {
    /// Loopback or a Unix socket: the local machine.
    pub fn is_local(&self) -> bool {
        self.ip.is_none_or(|ip| ip.is_loopback())
    }
}
