//! An in-memory cache of successful logins (config `auth.cache_secs`: how long an entry
//! lives after its last use), so clients that log in often (phones polling, IMAP clients
//! opening several connections) skip argon2.
//!
//! The key is a keyed BLAKE3 of (login, password) with a random key drawn at start: the
//! password itself is never kept, and the key never leaves the process, so the cache
//! gives nothing to guess passwords against offline.
//! The value is the PHC string that verified. A hit counts only while the user's record
//! still holds that exact string, so `user passwd` and `app-password del` take effect at
//! once (no explicit invalidation needed); [`AuthCache::forget_user`] exists for callers
//! that want to drop entries early.
//!
//! Logins with the same credentials that miss the cache together (a client opening several
//! connections, every phone of a household polling as the entries expire) take turns
//! ([`AuthCache::flight`]): the first runs argon2, the others find its result cached.
//! Each check costs `auth.argon2.memory_kib` (19 MiB) and ~50 ms of a CPU.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most cached logins; when full, expired entries go, and if none expired, all go.
pub const MAX_ENTRIES: usize = 10_000;

struct Entry {
    user: String,
    hash: String,
    expires: Instant,
}

pub struct AuthCache {
    key: [u8; 32],
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    /// Checks running, by the same key as `entries`.
    flights: Arc<Flights>,
}

/// The lines of checks running, by the cache's key of their credentials.
type Flights = Mutex<HashMap<[u8; 32], Arc<smol::lock::Mutex<()>>>>;

/// A login's place in the line of checks with the same credentials (see
/// [`AuthCache::flight`]). Leaves the line when dropped.
pub struct Flight {
    key: [u8; 32],
    turn: Arc<smol::lock::Mutex<()>>,
    flights: Arc<Flights>,
}

impl Flight {
    /// Waits until no other check with these credentials runs; holds the turn until the
    /// guard is dropped.
    pub async fn turn(&self) -> smol::lock::MutexGuard<'_, ()> {
        self.turn.lock().await
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut map = match self.flights.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        // The map's handle and this one: nobody else waits.
        if Arc::strong_count(&self.turn) <= 2 {
            map.remove(&self.key);
        }
    }
}

impl AuthCache {
    /// A cache with a fresh random key. `ttl` zero disables it.
    pub fn new(ttl: Duration) -> AuthCache {
        AuthCache {
            key: rand::random(),
            ttl,
            entries: Mutex::new(HashMap::new()),
            flights: Arc::default(),
        }
    }

    /// A place in the line of checks of exactly these credentials; `None` when the cache is
    /// off (a waiting login would find nothing cached after its turn).
    pub fn flight(&self, login: &str, password: &str) -> Option<Flight> {
        if self.ttl.is_zero() {
            return None;
        }
        let key = self.digest(login, password);
        let mut map = match self.flights.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let turn = map.entry(key).or_default().clone();
        Some(Flight {
            key,
            turn,
            flights: self.flights.clone(),
        })
    }

    /// Checks in line or running (for tests).
    pub fn flights(&self) -> usize {
        match self.flights.lock() {
            Ok(g) => g.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn digest(&self, login: &str, password: &str) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        h.update(&(login.len() as u64).to_le_bytes());
        h.update(login.to_lowercase().as_bytes());
        h.update(password.as_bytes());
        *h.finalize().as_bytes()
    }

    /// The (user name, PHC string) a previous successful login with exactly these
    /// credentials verified, if not expired. A hit keeps the entry for another `ttl`:
    /// a client that logs in more often than that (a phone polling every minute with
    /// the 60 s default, fifty connections of a busy household) never pays argon2 again,
    /// where a fixed lifetime made all of them check at once as their entries expired
    /// (19 MiB and ~30 ms each). A changed password still takes effect at once: the hit
    /// counts only while the user's record holds the cached hash.
    pub fn get(&self, login: &str, password: &str, now: Instant) -> Option<(String, String)> {
        if self.ttl.is_zero() {
            return None;
        }
        let d = self.digest(login, password);
        let mut map = self.lock();
        match map.get_mut(&d) {
            Some(e) if now < e.expires => {
                e.expires = now + self.ttl;
                Some((e.user.clone(), e.hash.clone()))
            }
            Some(_) => {
                map.remove(&d);
                None
            }
            None => None,
        }
    }

    /// Remembers a successful login.
    pub fn insert(&self, login: &str, password: &str, user: &str, hash: &str, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let d = self.digest(login, password);
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, e| now < e.expires);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(
            d,
            Entry {
                user: user.to_string(),
                hash: hash.to_string(),
                expires: now + self.ttl,
            },
        );
    }

    /// Drops every entry of a user.
    pub fn forget_user(&self, user: &str) {
        self.lock().retain(|_, e| e.user != user);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_miss_expiry_and_forget() {
        let c = AuthCache::new(Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(c.get("alice", "pw", now), None);
        c.insert("alice", "pw", "alice", "$h1", now);
        assert_eq!(
            c.get("ALICE", "pw", now + Duration::from_secs(59)),
            Some(("alice".into(), "$h1".into()))
        );
        assert_eq!(c.get("alice", "pW", now), None);
        assert_eq!(c.get("alicep", "w", now), None);
        // The hit at 59 s kept it until 119 s.
        let later = now + Duration::from_secs(118);
        assert!(c.get("alice", "pw", later).is_some());
        assert_eq!(c.get("alice", "pw", later + Duration::from_secs(60)), None);
        assert!(c.is_empty());
        c.insert("alice", "pw", "alice", "$h1", now);
        c.insert("bob", "pw", "bob", "$h2", now);
        c.forget_user("alice");
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn keys_differ_between_processes() {
        let a = AuthCache::new(Duration::from_secs(1));
        let b = AuthCache::new(Duration::from_secs(1));
        assert_ne!(a.digest("u", "p"), b.digest("u", "p"));
    }

    #[test]
    fn zero_ttl_disables() {
        let c = AuthCache::new(Duration::ZERO);
        let now = Instant::now();
        c.insert("a", "p", "a", "h", now);
        assert_eq!(c.get("a", "p", now), None);
    }
}
