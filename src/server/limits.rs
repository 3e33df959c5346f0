//! Connection limits (config `connections`): total, per IP, and per logged-in user.
//!
//! Counters are taken with RAII slots: a [`ConnSlot`] when a connection is accepted
//! (dropped when it closes), a [`UserSlot`] when IMAP/POP3 authenticate (dropped at
//! logout or close). Taking a slot never waits: past a limit the caller refuses at once
//! (LMTP `421 4.7.0`, IMAP `* BYE`, POP3 `-ERR [SYS/TEMP]`; IMAP/POP3 login over the
//! per-user limit: `NO [LIMIT]` / `-ERR [IN-USE]`-style refusals chosen by those modules).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::ConnectionsConfig;

/// Which limit refused a connection or login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitError {
    Total,
    PerIp,
    PerUser,
}

impl std::fmt::Display for LimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitError::Total => "too many connections",
            LimitError::PerIp => "too many connections from your address",
            LimitError::PerUser => "too many sessions for this user",
        })
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    per_user: HashMap<u32, usize>,
}

/// The shared counters. Cheap to clone.
#[derive(Clone)]
pub struct ConnLimits {
    cfg: ConnectionsConfig,
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
    pub fn new(cfg: &ConnectionsConfig) -> ConnLimits {
        ConnLimits {
            cfg: cfg.clone(),
            counts: Arc::new(Mutex::new(Counts::default())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        match self.counts.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Takes a connection slot for a peer (`None`: a Unix socket, counted in the total
    /// only).
    pub fn try_connect(&self, ip: Option<IpAddr>) -> Result<ConnSlot, LimitError> {
        let mut c = self.lock();
        if c.total >= self.cfg.max_total {
            return Err(LimitError::Total);
        }
        let key = ip.map(ip_key);
        if let Some(k) = key {
            let n = c.per_ip.entry(k).or_insert(0);
            if *n >= self.cfg.max_per_ip {
                return Err(LimitError::PerIp);
            }
            *n = n.saturating_add(1);
        }
        c.total = c.total.saturating_add(1);
        Ok(ConnSlot {
            limits: self.clone(),
            ip: key,
        })
    }

    /// Takes a logged-in session slot for a user (IMAP/POP3, after authentication).
    pub fn try_login(&self, user_id: u32) -> Result<UserSlot, LimitError> {
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

    /// Open connections now.
    pub fn total(&self) -> usize {
        self.lock().total
    }

    /// Logged-in sessions of a user now.
    pub fn sessions_of(&self, user_id: u32) -> usize {
        self.lock().per_user.get(&user_id).copied().unwrap_or(0)
    }
}

/// One open connection; released on drop.
pub struct ConnSlot {
    limits: ConnLimits,
    ip: Option<IpAddr>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut c = self.limits.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(ip) = &self.ip {
            decrement(&mut c.per_ip, ip);
        }
    }
}

/// One logged-in session; released on drop.
pub struct UserSlot {
    limits: ConnLimits,
    user: u32,
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

    fn limits(total: usize, per_ip: usize, per_user: usize) -> ConnLimits {
        ConnLimits::new(&ConnectionsConfig {
            max_total: total,
            max_per_ip: per_ip,
            max_per_user: per_user,
            preauth_timeout_secs: 60,
        })
    }

    #[test]
    fn per_ip_and_total_limits_release_on_drop() {
        let l = limits(3, 2, 1);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = l.try_connect(Some(a)).unwrap();
        let _s2 = l.try_connect(Some(a)).unwrap();
        assert_eq!(l.try_connect(Some(a)).err(), Some(LimitError::PerIp));
        let _s3 = l.try_connect(Some(b)).unwrap();
        assert_eq!(l.try_connect(None).err(), Some(LimitError::Total));
        drop(s1);
        assert_eq!(l.total(), 2);
        let _s4 = l.try_connect(Some(a)).unwrap();
    }

    #[test]
    fn ipv6_counts_per_64() {
        let l = limits(10, 1, 1);
        let _s = l.try_connect(Some("2001:db8::1".parse().unwrap())).unwrap();
        assert_eq!(
            l.try_connect(Some("2001:db8::2".parse().unwrap())).err(),
            Some(LimitError::PerIp)
        );
        assert!(
            l.try_connect(Some("2001:db8:0:1::1".parse().unwrap()))
                .is_ok()
        );
    }

    #[test]
    fn per_user_sessions() {
        let l = limits(10, 10, 2);
        let a = l.try_login(7).unwrap();
        let _b = l.try_login(7).unwrap();
        assert_eq!(l.try_login(7).err(), Some(LimitError::PerUser));
        assert!(l.try_login(8).is_ok());
        drop(a);
        assert_eq!(l.sessions_of(7), 1);
        assert!(l.try_login(7).is_ok());
    }
}
