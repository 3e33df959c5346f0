//! Connection limits: IMAP and POP3 share `connections` (total, per IP and protocol,
//! per logged-in user); LMTP has a budget of its own (`lmtp.max_connections`), so clients
//! can never crowd out the local MTA, and IMAP/POP3 never count against it.
//!
//! Counters are taken with RAII slots: a [`ConnSlot`] when a connection is accepted, a
//! [`UserSlot`] when IMAP/POP3 authenticate. Taking a slot never waits: past a limit the
//! caller refuses at once, naming the limit and its config key (LMTP `421 4.7.0`, IMAP
//! `* BYE [UNAVAILABLE]`, POP3 `-ERR [SYS/TEMP]`; a login over the per-user limit: IMAP
//! `NO [LIMIT]`, POP3 `-ERR [IN-USE]`).
//!
//! A slot is given back before the connection's last reply is sent (LOGOUT's OK, QUIT's
//! +OK, a `* BYE`): [`super::conn::Conn`] holds the `ConnSlot` and
//! [`super::conn::Conn::end`] drops it before the final flush, so a client that reconnects
//! as soon as it has read that reply finds its place free. Addresses in
//! `connections.trusted` are not counted per IP at all.

use crate::contracts::UserId;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::{Config, ConnectionsConfig};

/// The budget a listener's connections are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// IMAP, plain and implicit TLS.
    Imap,
    /// POP3, plain and implicit TLS.
    Pop3,
    /// ManageSieve (RFC 5804): counted with IMAP and POP3 in `connections`.
    ManageSieve,
    /// The HTTP listener: counted with IMAP and POP3 in `connections`.
    Http,
    /// LMTP over TCP and the Unix socket: `lmtp.max_connections` only.
    Lmtp,
}

impl Service {
    /// Its listeners' names, plain and implicit TLS: for logs, metrics and `listening
    /// NAME ADDR`.
    pub fn listener_names(self) -> [&'static str; 2] {
        match self {
            Service::Imap => ["imap", "imaps"],
            Service::Pop3 => ["pop3", "pop3s"],
            Service::ManageSieve => ["managesieve"; 2],
            Service::Http => ["http", "https"],
            Service::Lmtp => ["lmtp"; 2],
        }
    }

    /// Its configured TCP addresses, plain and implicit TLS. LMTP and ManageSieve (RFC
    /// 5804) have no implicit-TLS port: STARTTLS only, when configured.
    pub fn addresses(self, config: &Config) -> (&[SocketAddr], &[SocketAddr]) {
        match self {
            Service::Imap => (&config.imap.listen, &config.imap.tls_listen),
            Service::Pop3 => (&config.pop3.listen, &config.pop3.tls_listen),
            Service::ManageSieve => (&config.managesieve.listen, &[]),
            Service::Http => (&config.http.listen, &config.http.tls_listen),
            Service::Lmtp => (&config.lmtp.listen, &[]),
        }
    }
}

/// Which limit refused a connection or login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitError {
    /// `connections.max_total` (IMAP and POP3 together).
    Total,
    /// `connections.max_per_ip` (one protocol, one address or /64).
    PerIp,
    /// `connections.max_per_user` (logged-in IMAP and POP3 sessions).
    PerUser,
    /// `lmtp.max_connections`.
    Lmtp,
}

impl LimitError {
    /// The config key that sets this limit; the refusal texts name it.
    pub fn key(self) -> &'static str {
        match self {
            LimitError::Total => "connections.max_total",
            LimitError::PerIp => "connections.max_per_ip",
            LimitError::PerUser => "connections.max_per_user",
            LimitError::Lmtp => "lmtp.max_connections",
        }
    }
}

impl std::fmt::Display for LimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self {
            LimitError::Total => "too many connections",
            LimitError::PerIp => "too many connections from your address",
            LimitError::PerUser => "too many sessions for this user",
            LimitError::Lmtp => "too many LMTP connections",
        };
        write!(f, "{what} ({})", self.key())
    }
}

#[derive(Default)]
struct Counts {
    /// Open IMAP and POP3 connections.
    clients: usize,
    /// Open LMTP connections.
    lmtp: usize,
    per_ip: HashMap<(Service, IpAddr), usize>,
    per_user: HashMap<UserId, usize>,
}

/// The shared counters. Cheap to clone.
#[derive(Clone)]
pub struct ConnLimits {
    cfg: ConnectionsConfig,
    max_lmtp: usize,
    counts: Arc<Mutex<Counts>>,
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64 (one customer's
/// prefix), IPv4-mapped IPv6 as IPv4.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl ConnLimits {
    /// The counters for `connections` and `lmtp.max_connections`.
    pub fn new(cfg: &ConnectionsConfig, max_lmtp: usize) -> ConnLimits {
        ConnLimits {
            cfg: cfg.clone(),
            max_lmtp,
            counts: Arc::new(Mutex::new(Counts::default())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        match self.counts.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Whether `ip` is in `connections.trusted` (not counted per IP).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.cfg.trusted.iter().any(|net| net.contains(ip))
    }

    /// Takes a connection slot of `service` for a peer (`ip` is `None` on a Unix socket).
    pub fn try_connect(
        &self,
        service: Service,
        ip: Option<IpAddr>,
    ) -> Result<ConnSlot, LimitError> {
        if service == Service::Lmtp {
            let mut c = self.lock();
            if c.lmtp >= self.max_lmtp {
                return Err(LimitError::Lmtp);
            }
            c.lmtp = c.lmtp.saturating_add(1);
            return Ok(ConnSlot {
                limits: self.clone(),
                service,
                ip: None,
            });
        }
        let key = ip
            .filter(|ip| !self.is_trusted(*ip))
            .map(|ip| (service, ip_key(ip)));
        let mut c = self.lock();
        if c.clients >= self.cfg.max_total {
            return Err(LimitError::Total);
        }
        if let Some(k) = key {
            let n = c.per_ip.entry(k).or_insert(0);
            if *n >= self.cfg.max_per_ip {
                return Err(LimitError::PerIp);
            }
            *n = n.saturating_add(1);
        }
        c.clients = c.clients.saturating_add(1);
        Ok(ConnSlot {
            limits: self.clone(),
            service,
            ip: key.map(|(_, ip)| ip),
        })
    }

    /// Takes a logged-in session slot for a user (IMAP/POP3, after authentication).
    pub fn try_login(&self, user_id: UserId) -> Result<UserSlot, LimitError> {
        let mut c = self.lock();
        let n = c.per_user.entry(user_id).or_insert(0);
        if *n >= self.cfg.max_per_user {
            return Err(LimitError::PerUser);
        }
        *n = n.saturating_add(1);
        Ok(UserSlot {
            limits: self.clone(),
            user: user_id,
        })
    }

    /// How long an unauthenticated IMAP/POP3 connection may sit idle.
    pub fn preauth_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.cfg.preauth_timeout_secs)
    }

    /// Open IMAP and POP3 connections now.
    pub fn total(&self) -> usize {
        self.lock().clients
    }

    /// Open LMTP connections now.
    pub fn lmtp(&self) -> usize {
        self.lock().lmtp
    }

    /// Logged-in sessions of a user now.
    pub fn sessions_of(&self, user_id: UserId) -> usize {
        self.lock().per_user.get(&user_id).copied().unwrap_or(0)
    }
}

/// One open connection; released on drop.
pub struct ConnSlot {
    limits: ConnLimits,
    service: Service,
    /// The address it is counted under per IP; `None` when not counted (Unix socket,
    /// trusted network, LMTP).
    ip: Option<IpAddr>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut c = self.limits.lock();
        match self.service {
            Service::Lmtp => c.lmtp = c.lmtp.saturating_sub(1),
            Service::Imap | Service::Pop3 | Service::ManageSieve | Service::Http => {
                c.clients = c.clients.saturating_sub(1)
            }
        }
        if let Some(ip) = self.ip {
            decrement(&mut c.per_ip, &(self.service, ip));
        }
    }
}

/// One logged-in session; released on drop.
pub struct UserSlot {
    limits: ConnLimits,
    user: UserId,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut c = self.limits.lock();
        decrement(&mut c.per_user, &self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Service::{Imap, Lmtp, Pop3};

    fn limits(total: usize, per_ip: usize, per_user: usize) -> ConnLimits {
        ConnLimits::new(
            &ConnectionsConfig {
                max_total: total,
                max_per_ip: per_ip,
                max_per_user: per_user,
                ..ConnectionsConfig::default()
            },
            2,
        )
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    /// Why a connection of `service` from `from` is refused, if it is.
    fn refusal(l: &ConnLimits, service: Service, from: Option<IpAddr>) -> Option<LimitError> {
        l.try_connect(service, from).err()
    }

    #[test]
    fn per_ip_and_total_limits_release_on_drop() {
        let l = limits(3, 2, 1);
        let s1 = l.try_connect(Imap, ip("192.0.2.1")).unwrap();
        let _s2 = l.try_connect(Imap, ip("192.0.2.1")).unwrap();
        assert_eq!(refusal(&l, Imap, ip("192.0.2.1")), Some(LimitError::PerIp));
        let _s3 = l.try_connect(Imap, ip("192.0.2.2")).unwrap();
        assert_eq!(refusal(&l, Pop3, None), Some(LimitError::Total));
        drop(s1);
        assert_eq!(l.total(), 2);
        let _s4 = l.try_connect(Imap, ip("192.0.2.1")).unwrap();
    }

    #[test]
    fn per_ip_is_counted_per_protocol() {
        let l = limits(10, 1, 1);
        let _imap = l.try_connect(Imap, ip("192.0.2.1")).unwrap();
        let pop3 = l.try_connect(Pop3, ip("192.0.2.1")).unwrap();
        assert_eq!(refusal(&l, Pop3, ip("192.0.2.1")), Some(LimitError::PerIp));
        drop(pop3);
        assert!(l.try_connect(Pop3, ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn trusted_networks_skip_per_ip_but_not_total_or_per_user() {
        let l = limits(3, 1, 1);
        let held: Vec<ConnSlot> = ["127.0.0.1", "127.0.0.1", "::1"]
            .iter()
            .map(|a| l.try_connect(Imap, ip(a)).unwrap())
            .collect();
        assert_eq!(refusal(&l, Imap, ip("127.0.0.1")), Some(LimitError::Total));
        drop(held);
        // An IPv4-mapped loopback peer (dual-stack listener) is trusted too.
        let _a = l.try_connect(Imap, ip("::ffff:127.0.0.1")).unwrap();
        let _b = l.try_connect(Imap, ip("::ffff:127.0.0.1")).unwrap();
        let _u = l.try_login(UserId(7)).unwrap();
        assert_eq!(l.try_login(UserId(7)).err(), Some(LimitError::PerUser));
        assert!(l.is_trusted("127.8.9.10".parse().unwrap()));
        assert!(!l.is_trusted("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn lmtp_has_its_own_budget() {
        let l = limits(1, 1, 1);
        let _imap = l.try_connect(Imap, ip("127.0.0.1")).unwrap();
        assert_eq!(refusal(&l, Pop3, ip("127.0.0.1")), Some(LimitError::Total));
        // IMAP/POP3 at their total: LMTP still gets its two places, from any address.
        let a = l.try_connect(Lmtp, ip("192.0.2.1")).unwrap();
        let _b = l.try_connect(Lmtp, None).unwrap();
        assert_eq!(refusal(&l, Lmtp, None), Some(LimitError::Lmtp));
        assert_eq!((l.total(), l.lmtp()), (1, 2));
        drop(a);
        assert!(l.try_connect(Lmtp, ip("127.0.0.1")).is_ok());
        assert_eq!(l.total(), 1);
    }

    #[test]
    fn refusal_texts_name_the_config_key() {
        for (e, text) in [
            (
                LimitError::Total,
                "too many connections (connections.max_total)",
            ),
            (
                LimitError::PerIp,
                "too many connections from your address (connections.max_per_ip)",
            ),
            (
                LimitError::PerUser,
                "too many sessions for this user (connections.max_per_user)",
            ),
            (
                LimitError::Lmtp,
                "too many LMTP connections (lmtp.max_connections)",
            ),
        ] {
            assert_eq!(e.to_string(), text);
        }
    }

    #[test]
    fn ipv6_counts_per_64() {
        let l = limits(10, 1, 1);
        let _s = l.try_connect(Imap, ip("2001:db8::1")).unwrap();
        assert_eq!(
            refusal(&l, Imap, ip("2001:db8::2")),
            Some(LimitError::PerIp)
        );
        assert!(l.try_connect(Imap, ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn per_user_sessions() {
        let l = limits(10, 10, 2);
        let a = l.try_login(UserId(7)).unwrap();
        let _b = l.try_login(UserId(7)).unwrap();
        assert_eq!(l.try_login(UserId(7)).err(), Some(LimitError::PerUser));
        assert!(l.try_login(UserId(8)).is_ok());
        drop(a);
        assert_eq!(l.sessions_of(UserId(7)), 1);
        assert!(l.try_login(UserId(7)).is_ok());
    }
}
