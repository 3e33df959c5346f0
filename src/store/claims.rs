//! Work one thread does while others that want the same result wait for it: a reader
//! that finds what it needs missing from a cache claims its key, and a second reader
//! of the same key waits until the first is done and looks in the cache again. Used for
//! decompressed packs ([`super::pack`]) and mailbox listings ([`super::messages`]).

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Condvar, Mutex, PoisonError};

/// The keys being worked on now, and the signal that one of them is done.
pub(crate) struct Claims<K> {
    busy: Mutex<HashSet<K>>,
    done: Condvar,
}

impl<K> Default for Claims<K> {
    fn default() -> Self {
        Claims {
            busy: Mutex::new(HashSet::new()),
            done: Condvar::new(),
        }
    }
}

/// A claim on one key; the others waiting for it go on when it is dropped, whether the
/// work succeeded or not.
pub(crate) struct Claim<'a, K: Eq + Hash + Copy> {
    claims: &'a Claims<K>,
    key: K,
}

impl<K: Eq + Hash + Copy> Claims<K> {
    /// The claim on `key`, or `None` after waiting for the thread that held it: its
    /// result is then in the cache, unless already pushed out or that thread failed,
    /// so the caller looks again (and may claim in turn).
    pub(crate) fn claim(&self, key: K) -> Option<Claim<'_, K>> {
        // The set only ever holds whole inserts and removals, so a panic elsewhere while
        // it was locked leaves it consistent.
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        if busy.insert(key) {
            return Some(Claim { claims: self, key });
        }
        while busy.contains(&key) {
            busy = self.done.wait(busy).unwrap_or_else(PoisonError::into_inner);
        }
        None
    }
}

impl<K: Eq + Hash + Copy> Drop for Claim<'_, K> {
    fn drop(&mut self) {
        let mut busy = self
            .claims
            .busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        busy.remove(&self.key);
        self.claims.done.notify_all();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_others_wait_for_the_one_that_claimed() {
        let claims = Arc::new(Claims::<u64>::default());
        let finished = Arc::new(AtomicUsize::new(0));
        let first = claims.claim(7).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (claims, finished) = (claims.clone(), finished.clone());
                std::thread::spawn(move || {
                    drop(claims.claim(7));
                    finished.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        // Another key is free meanwhile; the waiters are held.
        assert!(claims.claim(8).is_some());
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(finished.load(Ordering::SeqCst), 0);
        drop(first);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(finished.load(Ordering::SeqCst), 4);
        assert!(claims.claim(7).is_some(), "nothing is left claimed");
    }
}
