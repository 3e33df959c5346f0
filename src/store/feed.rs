//! The change feed: who must hear about a committed change.
//!
//! A change is a wake-up, not a diff: a session that hears of one re-reads the mailbox
//! state it cares about and computes what to tell its client (EXISTS, EXPUNGE, FETCH). So a
//! subscriber whose queue is full loses nothing by missing a notification: it already has
//! one pending, and it will read the latest state when it gets to it.
//!
//! A change may name its [`Origin`]: the subscription of the session that made it, when
//! that session applies the change's effects to its own view (its STORE, EXPUNGE, the
//! expunge half of its MOVE). That subscription is not woken for it, saving a re-read of
//! the mailbox after every command that writes. The queue argument above still holds:
//! a queue only ever holds other sessions' changes.

use crate::contracts::{MailboxId, UserId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use smol::channel::{Receiver, Sender, TrySendError, bounded};

/// What happened, to whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub user: UserId,
    pub mailbox: MailboxId,
    pub kind: ChangeKind,
    /// The subscription not to wake (see the module doc); [`Origin::NONE`] wakes all.
    pub origin: Origin,
}

/// A subscription's identity, unique in the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Origin(u64);

impl Origin {
    /// Nobody in particular: every subscriber hears the change.
    pub const NONE: Origin = Origin(0);
}

static NEXT_ORIGIN: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// Messages were added; the highest new UID.
    Appended { uid: u32 },
    /// Messages were removed.
    Expunged,
    /// Flags or keywords changed.
    Flags,
    /// The mailbox was created, deleted or renamed.
    Mailbox,
    /// Annotations of the mailbox (`mailbox` 0: of the server) were set or removed
    /// (RFC 5464); their entry names.
    Metadata { entries: Vec<String> },
}

/// Queue length per subscriber.
const QUEUE: usize = 64;

/// Every this many subscriptions, dropped ones of all users are pruned.
const SWEEP_EVERY: u32 = 256;

#[derive(Default)]
struct Subscribers {
    by_user: HashMap<UserId, Vec<(Origin, Sender<Change>)>>,
    since_sweep: u32,
}

#[derive(Default)]
pub struct ChangeFeed {
    subscribers: Mutex<Subscribers>,
}

impl ChangeFeed {
    /// Subscribes to every change of one user's mailboxes. Dropping the receiver ends the
    /// subscription: it is pruned on the next publish or subscribe for that user, and by a
    /// sweep of all users every [`SWEEP_EVERY`] subscriptions, so sessions that come and
    /// go without any mail arriving leave nothing behind.
    pub fn subscribe(&self, user: UserId) -> Receiver<Change> {
        self.subscribe_as(user).0
    }

    /// [`ChangeFeed::subscribe`], with the subscription's [`Origin`]: changes that name
    /// it are not sent to it.
    pub fn subscribe_as(&self, user: UserId) -> (Receiver<Change>, Origin) {
        let origin = Origin(NEXT_ORIGIN.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = bounded(QUEUE);
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.since_sweep += 1;
            if subs.since_sweep >= SWEEP_EVERY {
                subs.since_sweep = 0;
                subs.by_user.retain(|_, list| {
                    list.retain(|(_, tx)| !tx.is_closed());
                    !list.is_empty()
                });
            }
            let list = subs.by_user.entry(user).or_default();
            list.retain(|(_, tx)| !tx.is_closed());
            list.push((origin, tx));
        }
        (rx, origin)
    }

    /// Live subscriptions (for tests and stats).
    pub fn subscriptions(&self) -> usize {
        self.subscribers
            .lock()
            .map(|s| {
                s.by_user
                    .values()
                    .map(|l| l.iter().filter(|(_, t)| !t.is_closed()).count())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Tells every subscriber of `change.user`. Called only after the commit.
    pub fn publish(&self, change: Change) {
        let Ok(mut subs) = self.subscribers.lock() else {
            return;
        };
        if let Some(list) = subs.by_user.get_mut(&change.user) {
            list.retain(|(origin, tx)| {
                if change.origin != Origin::NONE && *origin == change.origin {
                    return !tx.is_closed();
                }
                !matches!(tx.try_send(change.clone()), Err(TrySendError::Closed(_)))
            });
            if list.is_empty() {
                subs.by_user.remove(&change.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_subscriptions_do_not_pile_up_without_publishes() {
        let feed = ChangeFeed::default();
        for _ in 0..1000 {
            drop(feed.subscribe(UserId(1)));
        }
        for user in 0..1000 {
            drop(feed.subscribe(UserId(100 + user)));
        }
        let keep = feed.subscribe(UserId(1));
        let held = feed.subscribers.lock().unwrap();
        let total: usize = held.by_user.values().map(Vec::len).sum();
        assert!(total <= SWEEP_EVERY as usize + 1, "{total} senders held");
        drop(held);
        assert_eq!(feed.subscriptions(), 1);
        drop(keep);
    }

    #[test]
    fn publish_reaches_only_that_user_and_prunes_dropped() {
        let feed = ChangeFeed::default();
        let a = feed.subscribe(UserId(1));
        let b = feed.subscribe(UserId(2));
        let gone = feed.subscribe(UserId(1));
        drop(gone);
        feed.publish(Change {
            user: UserId(1),
            mailbox: MailboxId(7),
            kind: ChangeKind::Flags,
            origin: Origin::NONE,
        });
        assert_eq!(a.try_recv().map(|c| c.mailbox), Ok(MailboxId(7)));
        assert!(b.try_recv().is_err());
        assert_eq!(
            feed.subscribers
                .lock()
                .map(|s| s.by_user[&UserId(1)].len())
                .unwrap_or(0),
            1
        );
    }

    #[test]
    fn a_change_skips_only_the_subscription_it_names() {
        let feed = ChangeFeed::default();
        let (mine, me) = feed.subscribe_as(UserId(1));
        let (other, _) = feed.subscribe_as(UserId(1));
        let change = |origin| Change {
            user: UserId(1),
            mailbox: MailboxId(7),
            kind: ChangeKind::Flags,
            origin,
        };
        feed.publish(change(me));
        assert!(mine.try_recv().is_err(), "its own change does not wake it");
        assert_eq!(other.try_recv().map(|c| c.origin), Ok(me));
        feed.publish(change(Origin::NONE));
        assert!(mine.try_recv().is_ok() && other.try_recv().is_ok());
        drop(mine);
        feed.publish(change(me));
        assert_eq!(feed.subscriptions(), 1, "a closed one is still pruned");
    }

    #[test]
    fn full_queue_does_not_block_or_drop_subscriber() {
        let feed = ChangeFeed::default();
        let a = feed.subscribe(UserId(1));
        for _ in 0..QUEUE * 2 {
            feed.publish(Change {
                user: UserId(1),
                mailbox: MailboxId(1),
                kind: ChangeKind::Expunged,
                origin: Origin::NONE,
            });
        }
        assert_eq!(a.len(), QUEUE);
    }
}
