//! Brute-force protection (config `auth.throttle`), pure: every method takes `now`, so
//! tests drive a clock by hand.
//!
//! - Each failure from an IP doubles that IP's delay (`base_delay_ms` .. `max_delay_ms`).
//!   The failure's answer waits that long, and attempts from the IP before it has passed
//!   are refused without checking the password ([`Verdict::Wait`]), so parallel
//!   connections gain nothing.
//! - Each failure for a user doubles that user's delay, applied to *failed* answers for
//!   the user only: an attacker guessing alice's password from many addresses is slowed,
//!   while alice logging in correctly from her own address is not refused.
//! - After `ban_after` failures an IP is refused for `ban_secs` ([`Verdict::Banned`]).
//! - A record is forgotten `ban_secs` (at least `max_delay_ms`) after its last failure;
//!   a success clears the user's record (not the IP's: a valid account must not reset an
//!   attacker's counter). Memory is bounded by [`MAX_ENTRIES`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::ThrottleConfig;

/// Most IPs and users tracked at once; past it, expired records are pruned and, if still
/// full, new ones are not recorded (the ban of known attackers keeps working).
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    /// Attempts are refused before this.
    until: Instant,
}

/// What to do with a login attempt before checking the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// The IP must wait this long (its delay has not passed).
    Wait(Duration),
    /// The IP is banned for this long.
    Banned(Duration),
}

pub struct Throttle {
    cfg: ThrottleConfig,
    ips: HashMap<IpAddr, Record>,
    users: HashMap<String, Record>,
}

impl Throttle {
    pub fn new(cfg: &ThrottleConfig) -> Throttle {
        Throttle {
            cfg: cfg.clone(),
            ips: HashMap::new(),
            users: HashMap::new(),
        }
    }

    fn delay(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(30);
        let ms = self
            .cfg
            .base_delay_ms
            .saturating_mul(1u64 << shift)
            .min(self.cfg.max_delay_ms);
        Duration::from_millis(ms)
    }

    fn forget_after(&self) -> Duration {
        Duration::from_secs(self.cfg.ban_secs).max(Duration::from_millis(self.cfg.max_delay_ms))
    }

    /// Before checking a password: may `ip` try now? (`None`: a Unix socket, never
    /// throttled by address.)
    pub fn check(&mut self, ip: Option<IpAddr>, now: Instant) -> Verdict {
        let Some(ip) = ip else {
            return Verdict::Allow;
        };
        let forget = self.forget_after();
        let Some(r) = self.ips.get(&ip).copied() else {
            return Verdict::Allow;
        };
        if now.saturating_duration_since(r.last) >= forget {
            self.ips.remove(&ip);
            return Verdict::Allow;
        }
        if now < r.until {
            let left = r.until.saturating_duration_since(now);
            if self.cfg.ban_after > 0 && r.failures >= self.cfg.ban_after {
                return Verdict::Banned(left);
            }
            return Verdict::Wait(left);
        }
        Verdict::Allow
    }

    fn prune(&mut self, now: Instant) {
        let forget = self.forget_after();
        self.ips
            .retain(|_, r| now.saturating_duration_since(r.last) < forget);
        self.users
            .retain(|_, r| now.saturating_duration_since(r.last) < forget);
    }

    /// Records a failed login; returns how long to wait before answering it.
    pub fn failure(&mut self, ip: Option<IpAddr>, user: &str, now: Instant) -> Duration {
        if self.ips.len().saturating_add(self.users.len()) >= MAX_ENTRIES {
            self.prune(now);
        }
        let room = self.ips.len().saturating_add(self.users.len()) < MAX_ENTRIES;
        let forget = self.forget_after();
        let mut wait = Duration::ZERO;
        if let Some(ip) = ip {
            let failures = match self.ips.get(&ip) {
                Some(r) if now.saturating_duration_since(r.last) < forget => {
                    r.failures.saturating_add(1)
                }
                _ => 1,
            };
            let delay = self.delay(failures);
            let until = if self.cfg.ban_after > 0 && failures >= self.cfg.ban_after {
                now + Duration::from_secs(self.cfg.ban_secs)
            } else {
                now + delay
            };
            if room || self.ips.contains_key(&ip) {
                self.ips.insert(
                    ip,
                    Record {
                        failures,
                        last: now,
                        until,
                    },
                );
            }
            wait = wait.max(delay);
        }
        let key = user.to_lowercase();
        let failures = match self.users.get(&key) {
            Some(r) if now.saturating_duration_since(r.last) < forget => {
                r.failures.saturating_add(1)
            }
            _ => 1,
        };
        let delay = self.delay(failures);
        if room || self.users.contains_key(&key) {
            self.users.insert(
                key,
                Record {
                    failures,
                    last: now,
                    until: now + delay,
                },
            );
        }
        wait.max(delay)
    }

    /// Records a successful login: the user's failures are forgotten.
    pub fn success(&mut self, user: &str) {
        self.users.remove(&user.to_lowercase());
    }

    /// Tracked IPs and users (for tests and stats).
    pub fn len(&self) -> usize {
        self.ips.len().saturating_add(self.users.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ThrottleConfig {
        ThrottleConfig {
            base_delay_ms: 100,
            max_delay_ms: 800,
            ban_after: 6,
            ban_secs: 60,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delays_double_to_the_cap_then_ban() {
        let mut t = Throttle::new(&cfg());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..5 {
            assert_eq!(t.check(Some(ip), now), Verdict::Allow);
            let w = t.failure(Some(ip), "alice", now);
            // An attempt before the delay has passed is refused.
            assert_eq!(t.check(Some(ip), now + w / 2), Verdict::Wait(w / 2));
            waits.push(w);
            now += w;
        }
        assert_eq!(waits, [ms(100), ms(200), ms(400), ms(800), ms(800)]);
        // The sixth failure bans the IP for ban_secs.
        t.failure(Some(ip), "alice", now);
        assert_eq!(
            t.check(Some(ip), now + Duration::from_secs(1)),
            Verdict::Banned(Duration::from_secs(59))
        );
        assert_eq!(
            t.check(Some(ip), now + Duration::from_secs(61)),
            Verdict::Allow
        );
    }

    #[test]
    fn other_ip_is_not_refused_and_success_clears_the_user() {
        let mut t = Throttle::new(&cfg());
        let bad: IpAddr = "192.0.2.7".parse().unwrap();
        let good: IpAddr = "198.51.100.1".parse().unwrap();
        let now = Instant::now();
        for i in 0..10 {
            t.failure(Some(bad), "alice", now + ms(i));
        }
        assert!(matches!(
            t.check(Some(bad), now + ms(20)),
            Verdict::Banned(_)
        ));
        assert_eq!(t.check(Some(good), now + ms(20)), Verdict::Allow);
        // A failure from the good IP waits the user's (capped) delay.
        assert_eq!(t.failure(Some(good), "Alice", now + ms(20)), ms(800));
        t.success("alice");
        assert_eq!(t.failure(Some(good), "alice", now + ms(30)), ms(200));
        // Unix-socket peers are never refused by address.
        assert_eq!(t.check(None, now), Verdict::Allow);
    }

    #[test]
    fn records_are_forgotten() {
        let mut t = Throttle::new(&cfg());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let now = Instant::now();
        t.failure(Some(ip), "alice", now);
        t.failure(Some(ip), "alice", now);
        let later = now + Duration::from_secs(61);
        assert_eq!(t.check(Some(ip), later), Verdict::Allow);
        assert_eq!(t.failure(Some(ip), "alice", later), ms(100));
        t.prune(later + Duration::from_secs(61));
        assert!(t.is_empty());
    }

    #[test]
    fn ban_after_zero_never_bans() {
        let mut t = Throttle::new(&ThrottleConfig {
            ban_after: 0,
            ..cfg()
        });
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let now = Instant::now();
        for _ in 0..100 {
            t.failure(Some(ip), "x", now);
        }
        assert_eq!(t.check(Some(ip), now), Verdict::Wait(ms(800)));
    }
}
