//! IMAP store operations on a real redb file in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use crate::config::StoreConfig;
use crate::contracts::{MailboxId, ModSeq, Uid, UserId};
use crate::store::{AppendRequest, MailboxInfo, Store};
use crate::testing::uids as uid_list;

/// Runs `test` on a fresh store with one user, "a".
fn with_user(test: impl AsyncFnOnce(&Store, UserId)) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
    smol::block_on(async {
        let u = store.add_user("a", "h".into()).await.unwrap();
        test(&store, u).await;
    });
}

fn message(i: usize) -> Vec<u8> {
    format!("From: s{i}@example.org\r\nSubject: note {i}\r\n\r\nHello number {i}.\r\n").into_bytes()
}

async fn append(store: &Store, user: UserId, mailbox: &str, i: usize, flags: u8) -> u32 {
    let req = AppendRequest {
        trace: Some(crate::store::TraceRecord {
            format: 1,
            protocol: "LMTP".into(),
            delivered_to: "x".into(),
            helo: None,
            peer: None,
            by: "test".into(),
        }),
        flags: SystemFlags(flags),
        internal_date: 1_000_000 + i as i64,
        ..crate::store::tests::request(store, user, mailbox, &message(i))
    };
    let r = store.append_many(vec![req]).await.unwrap();
    r[0].as_ref().unwrap().uid.0
}

async fn mailbox(store: &Store, user: UserId, name: &str) -> MailboxInfo {
    store.mailbox(user, name).await.unwrap().unwrap()
}

async fn id(store: &Store, user: UserId, name: &str) -> MailboxId {
    mailbox(store, user, name).await.id
}

/// Appends messages 1..=3 to the user's INBOX, unflagged; its id.
async fn inbox_of_three(store: &Store, user: UserId) -> MailboxId {
    for i in 1..=3 {
        append(store, user, "INBOX", i, 0).await;
    }
    id(store, user, "INBOX").await
}

/// The UIDs in a mailbox, in order.
async fn uids(store: &Store, mailbox: MailboxId) -> Vec<u32> {
    let list = store.messages(mailbox).await.unwrap();
    list.iter().map(|m| m.uid.0).collect()
}

/// STORE on behalf of no session, so every change is published.
async fn store_flags(
    store: &Store,
    mailbox: MailboxId,
    uids: Vec<u32>,
    mode: FlagMode,
    flags: u8,
    keywords: &[&str],
    unchanged_since: Option<ModSeq>,
) -> Result<FlagOutcome, StoreError> {
    let keywords = keywords.iter().map(|k| k.to_string()).collect();
    let flags = SystemFlags(flags);
    store
        .store_flags(
            mailbox,
            uid_list(uids),
            mode,
            flags,
            keywords,
            unchanged_since,
            Origin::NONE,
        )
        .await
}

/// Whether `name` is among the user's subscriptions.
async fn subscribed(store: &Store, user: UserId, name: &str) -> bool {
    let names = store.subscriptions(user).await.unwrap();
    names.iter().any(|n| n == name)
}

async fn blobs(store: &Store) -> u64 {
    store.stats(None).await.unwrap().blobs
}

#[test]
fn store_flags_modes_modseq_and_unchangedsince() {
    with_user(async |store, u| {
        let inbox = inbox_of_three(store, u).await;
        let before = mailbox(store, u, "INBOX").await.highest_modseq;
        let rx = store.feed().subscribe(u);

        let out = store_flags(
            store,
            inbox,
            vec![2, 1, 99, 1],
            FlagMode::Add,
            SystemFlags::SEEN,
            &["$Work"],
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            out.changed.iter().map(|c| c.uid.0).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(out.unchanged.is_empty() && out.modified.is_empty());
        assert_eq!(out.changed[0].modseq, ModSeq(before.0 + 1));
        assert_eq!(out.changed[1].modseq, ModSeq(before.0 + 2));
        assert_eq!(out.changed[0].keywords, vec!["$Work".to_string()]);
        assert_eq!(rx.try_recv().unwrap().kind, ChangeKind::Flags);
        let hms = mailbox(store, u, "INBOX").await.highest_modseq;
        assert_eq!(hms, ModSeq(before.0 + 2));

        // Adding what is there changes nothing and bumps nothing.
        let out = store_flags(
            store,
            inbox,
            vec![1],
            FlagMode::Add,
            SystemFlags::SEEN,
            &["$work"],
            None,
        )
        .await
        .unwrap();
        assert!(out.changed.is_empty());
        assert_eq!(out.unchanged.len(), 1);
        assert!(rx.try_recv().is_err(), "no change published");

        // UNCHANGEDSINCE: message 1 (modseq before+1) passes at before+1, message 2 fails.
        let out = store_flags(
            store,
            inbox,
            vec![1, 2, 3],
            FlagMode::Replace,
            SystemFlags::FLAGGED,
            &[],
            Some(ModSeq(before.0 + 1)),
        )
        .await
        .unwrap();
        assert_eq!(out.modified, uid_list([2]));
        assert_eq!(
            out.changed.iter().map(|c| c.uid.0).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert!(
            out.changed
                .iter()
                .all(|c| c.flags == SystemFlags(SystemFlags::FLAGGED) && c.keywords.is_empty())
        );

        // Remove.
        let out = store_flags(
            store,
            inbox,
            vec![2],
            FlagMode::Remove,
            SystemFlags::SEEN,
            &["$WORK"],
            None,
        )
        .await
        .unwrap();
        assert_eq!(out.changed[0].flags, SystemFlags(0));
        assert!(out.changed[0].keywords.is_empty());

        let list = store.messages(inbox).await.unwrap();
        assert_eq!(list.len(), 3);
        assert!(list.windows(2).all(|w| w[0].uid < w[1].uid));
        let st = store.mailbox_status(inbox).await.unwrap();
        assert_eq!(
            st.highest_modseq,
            list.iter().map(|m| m.modseq).max().unwrap()
        );
        assert_eq!(
            store_flags(store, MailboxId(999), vec![1], FlagMode::Add, 1, &[], None).await,
            Err(StoreError::NoSuchMailbox)
        );
    });
}

/// The sessions of a mailbox share one listing until the mailbox changes: an append, a
/// flag change and an expunge each give a new one, and its content is the store's.
#[test]
fn a_listing_is_shared_until_the_mailbox_changes() {
    with_user(async |store, u| {
        let inbox = inbox_of_three(store, u).await;
        let first = store.messages(inbox).await.unwrap();
        let again = store.messages(inbox).await.unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &again));

        append(store, u, "INBOX", 4, 0).await;
        let appended = store.messages(inbox).await.unwrap();
        assert!(!std::sync::Arc::ptr_eq(&first, &appended));
        assert_eq!(appended.len(), 4);

        store_flags(
            store,
            inbox,
            vec![2],
            FlagMode::Add,
            SystemFlags::DELETED,
            &[],
            None,
        )
        .await
        .unwrap();
        let flagged = store.messages(inbox).await.unwrap();
        assert!(flagged[1].flags.has(SystemFlags::DELETED));
        assert!(
            !appended[1].flags.has(SystemFlags::DELETED),
            "the old one stays as it was"
        );

        store
            .expunge_deleted(inbox, None, Origin::NONE)
            .await
            .unwrap();
        assert_eq!(uids(store, inbox).await, vec![1, 3, 4]);

        // Unused for a while, it goes; the next read builds it again.
        let kept = store.messages(inbox).await.unwrap();
        store.drop_unused_caches(std::time::Duration::ZERO);
        let rebuilt = store.messages(inbox).await.unwrap();
        assert!(!std::sync::Arc::ptr_eq(&kept, &rebuilt));
        assert_eq!(kept, rebuilt);

        // A mailbox that does not exist lists nothing.
        assert!(store.messages(MailboxId(9999)).await.unwrap().is_empty());
    });
}

#[test]
fn copy_shares_blobs_and_keeps_flags() {
    with_user(async |store, u| {
        append(store, u, "INBOX", 1, SystemFlags::SEEN).await;
        append(store, u, "INBOX", 2, 0).await;
        let inbox = id(store, u, "INBOX").await;
        let trash = id(store, u, "Trash").await;
        assert_eq!(blobs(store).await, 2);
        let original = store.message_bytes(inbox, Uid(1)).await.unwrap().unwrap();

        let out = store
            .copy_messages(inbox, vec![Uid(2), Uid(1), Uid(7)], trash)
            .await
            .unwrap()
            .unwrap();
        let tv = mailbox(store, u, "Trash").await;
        assert_eq!(out.uidvalidity, tv.uidvalidity);
        assert_eq!(out.src_uids, uid_list([1, 2]));
        assert_eq!(out.dst_uids, uid_list([1, 2]));
        assert_eq!((tv.messages, tv.uidnext), (2, 3));
        assert_eq!(blobs(store).await, 2, "copies share blobs");
        assert_eq!(
            store.message_bytes(trash, Uid(1)).await.unwrap().unwrap(),
            original
        );
        let copied = store.messages(trash).await.unwrap();
        assert_eq!(copied[0].flags, SystemFlags(SystemFlags::SEEN));
        assert_eq!(copied[0].internal_date, 1_000_001);

        // Copying into the same mailbox is allowed.
        let again = store
            .copy_messages(inbox, vec![Uid(1)], inbox)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.dst_uids, uid_list([3]));
        // Nothing to copy.
        assert_eq!(
            store
                .copy_messages(inbox, vec![Uid(50)], trash)
                .await
                .unwrap(),
            None
        );
        // Another user's mailbox is not a target.
        let v = store.add_user("v", "h".into()).await.unwrap();
        let vinbox = id(store, v, "INBOX").await;
        assert_eq!(
            store.copy_messages(inbox, vec![Uid(1)], vinbox).await,
            Err(StoreError::NoSuchMailbox)
        );

        // Expunging the originals keeps the blobs alive for the copies.
        store
            .expunge(inbox, vec![Uid(1), Uid(2), Uid(3)])
            .await
            .unwrap();
        assert_eq!(blobs(store).await, 2);
        store.expunge(trash, vec![Uid(1), Uid(2)]).await.unwrap();
        assert_eq!(blobs(store).await, 0);
    });
}

#[test]
fn move_is_copy_plus_expunge() {
    with_user(async |store, u| {
        let inbox = inbox_of_three(store, u).await;
        let archive = id(store, u, "Archive").await;
        let rx = store.feed().subscribe(u);
        let out = store
            .move_messages(inbox, vec![Uid(3), Uid(1)], archive, Origin::NONE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (out.src_uids.clone(), out.dst_uids.clone()),
            (uid_list([1, 3]), uid_list([1, 2]))
        );
        let kinds: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| c.kind)
            .collect();
        assert!(kinds.contains(&ChangeKind::Expunged));
        assert!(kinds.contains(&ChangeKind::Appended { uid: 2 }));
        let left: Vec<u32> = uids(store, inbox).await;
        assert_eq!(left, vec![2]);
        assert_eq!(mailbox(store, u, "INBOX").await.messages, 1);
        assert_eq!(mailbox(store, u, "Archive").await.messages, 2);
        assert_eq!(blobs(store).await, 3);
        // The second mover finds nothing: no duplicates.
        assert_eq!(
            store
                .move_messages(inbox, vec![Uid(1), Uid(3)], archive, Origin::NONE)
                .await
                .unwrap(),
            None
        );
        // Move within one mailbox gives new UIDs and removes the old ones.
        let same = store
            .move_messages(inbox, vec![Uid(2)], inbox, Origin::NONE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(same.dst_uids, uid_list([4]));
        let left: Vec<u32> = uids(store, inbox).await;
        assert_eq!(left, vec![4]);
        assert_eq!(mailbox(store, u, "INBOX").await.messages, 1);
    });
}

#[test]
fn expunge_deleted_respects_flags_and_restriction() {
    with_user(async |store, u| {
        append(store, u, "INBOX", 1, SystemFlags::DELETED).await;
        append(store, u, "INBOX", 2, 0).await;
        append(
            store,
            u,
            "INBOX",
            3,
            SystemFlags::DELETED | SystemFlags::SEEN,
        )
        .await;
        append(store, u, "INBOX", 4, SystemFlags::DELETED).await;
        let inbox = id(store, u, "INBOX").await;
        let st = store.mailbox_status(inbox).await.unwrap();
        assert_eq!((st.messages, st.unseen, st.deleted), (4, 3, 3));
        assert_eq!(
            store
                .expunge_deleted(inbox, Some(vec![Uid(3), Uid(2), Uid(9)]), Origin::NONE)
                .await
                .unwrap(),
            uid_list([3])
        );
        assert_eq!(
            store
                .expunge_deleted(inbox, None, Origin::NONE)
                .await
                .unwrap(),
            uid_list([1, 4])
        );
        assert_eq!(
            store
                .expunge_deleted(inbox, None, Origin::NONE)
                .await
                .unwrap(),
            Vec::<Uid>::new()
        );
        let st = store.mailbox_status(inbox).await.unwrap();
        assert_eq!(
            (st.messages, st.unseen, st.deleted, st.uidnext),
            (1, 1, 0, 5)
        );
        assert_eq!(st.size, store.messages(inbox).await.unwrap()[0].size);
        assert_eq!(blobs(store).await, 1);
    });
}

#[test]
fn rename_moves_children_and_creates_parents() {
    with_user(async |store, u| {
        for name in ["Work", "Work/2024", "Work/2024/Q1", "Workshop", "Work b"] {
            store.create_mailbox(u, name).await.unwrap();
        }
        append(store, u, "Work/2024", 1, 0).await;
        let before = mailbox(store, u, "Work/2024").await;

        store
            .rename_mailbox(u, "Work", "Old/Jobs/Work")
            .await
            .unwrap();
        let names: Vec<String> = store
            .mailboxes(u)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        for want in [
            "Old",
            "Old/Jobs",
            "Old/Jobs/Work",
            "Old/Jobs/Work/2024",
            "Old/Jobs/Work/2024/Q1",
            "Workshop",
            "Work b",
        ] {
            assert!(names.contains(&want.to_string()), "{want} in {names:?}");
        }
        assert!(!names.iter().any(|n| n == "Work" || n.starts_with("Work/")));
        let after = mailbox(store, u, "Old/Jobs/Work/2024").await;
        // Same mailbox and messages; a fresh UIDVALIDITY (RFC 9051 §2.3.1.1).
        assert_eq!((after.id, after.messages), (before.id, 1));
        assert!(after.uidvalidity > before.uidvalidity);

        // Errors: missing source, existing target, into itself, invalid name.
        assert_eq!(
            store.rename_mailbox(u, "Nope", "X").await,
            Err(StoreError::NoSuchMailbox)
        );
        assert_eq!(
            store.rename_mailbox(u, "Workshop", "Trash").await,
            Err(StoreError::MailboxExists)
        );
        assert_eq!(
            store.rename_mailbox(u, "Workshop", "inbox").await,
            Err(StoreError::MailboxExists)
        );
        assert!(matches!(
            store.rename_mailbox(u, "Old", "Old/Inside").await,
            Err(StoreError::InvalidName(_))
        ));
        assert!(matches!(
            store.rename_mailbox(u, "Workshop", "a//b").await,
            Err(StoreError::InvalidName(_))
        ));
    });
}

#[test]
fn rename_inbox_moves_messages_and_leaves_it_empty() {
    with_user(async |store, u| {
        store.create_mailbox(u, "INBOX/Child").await.unwrap();
        append(store, u, "INBOX", 1, SystemFlags::SEEN).await;
        append(store, u, "INBOX", 2, 0).await;
        let inbox = mailbox(store, u, "INBOX").await;
        let bytes = store
            .message_bytes(inbox.id, Uid(2))
            .await
            .unwrap()
            .unwrap();

        store
            .rename_mailbox(u, "inbox", "Saved/Old Inbox")
            .await
            .unwrap();
        let after = mailbox(store, u, "INBOX").await;
        assert_eq!(
            (after.id, after.messages, after.bytes, after.uidnext),
            (inbox.id, 0, 0, inbox.uidnext)
        );
        assert!(after.highest_modseq > inbox.highest_modseq);
        assert!(store.messages(inbox.id).await.unwrap().is_empty());
        let moved = mailbox(store, u, "Saved/Old Inbox").await;
        assert_ne!(moved.uidvalidity, inbox.uidvalidity);
        assert_eq!(
            (moved.messages, moved.uidnext, moved.bytes),
            (2, 3, inbox.bytes)
        );
        assert_eq!(
            store
                .message_bytes(moved.id, Uid(2))
                .await
                .unwrap()
                .unwrap(),
            bytes
        );
        assert_eq!(
            store.messages(moved.id).await.unwrap()[0].flags,
            SystemFlags(SystemFlags::SEEN)
        );
        assert!(
            store.mailbox(u, "INBOX/Child").await.unwrap().is_some(),
            "children stay"
        );
        assert!(store.mailbox(u, "Saved").await.unwrap().is_some());
        assert_eq!(blobs(store).await, 2);
        // New mail to INBOX continues its UIDs.
        assert_eq!(append(store, u, "INBOX", 3, 0).await, 3);
    });
}

#[test]
fn delete_frees_blobs_refuses_inbox_and_parents() {
    with_user(async |store, u| {
        store.create_mailbox(u, "Lists").await.unwrap();
        store.create_mailbox(u, "Lists/rust").await.unwrap();
        append(store, u, "Lists/rust", 1, 0).await;
        append(store, u, "Lists/rust", 2, 0).await;
        append(store, u, "INBOX", 2, 0).await; // same bytes as one above: shared blob
        let rust = id(store, u, "Lists/rust").await;
        store.expunge(rust, vec![Uid(1)]).await.unwrap();
        append(store, u, "Lists/rust", 3, 0).await;
        assert_eq!(blobs(store).await, 2);

        assert!(matches!(
            store.delete_mailbox(u, "inbox").await,
            Err(StoreError::InvalidName(_))
        ));
        assert_eq!(
            store.delete_mailbox(u, "Lists").await,
            Err(StoreError::HasChildren)
        );
        assert_eq!(
            store.delete_mailbox(u, "Nope").await,
            Err(StoreError::NoSuchMailbox)
        );
        let rx = store.feed().subscribe(u);
        assert_eq!(store.delete_mailbox(u, "Lists/rust").await, Ok(2));
        assert_eq!(rx.try_recv().unwrap().kind, ChangeKind::Mailbox);
        assert_eq!(blobs(store).await, 1, "the blob INBOX shares survives");
        assert!(store.mailbox(u, "Lists/rust").await.unwrap().is_none());
        assert_eq!(store.message_bytes(rust, Uid(2)).await.unwrap(), None);
        // Now the parent can go; a re-created name gets a new UIDVALIDITY.
        let old = mailbox(store, u, "Lists").await;
        assert_eq!(store.delete_mailbox(u, "Lists").await, Ok(0));
        let new = store.create_mailbox(u, "Lists").await.unwrap();
        assert!(new.uidvalidity > old.uidvalidity);
        assert!(store.verify().await.unwrap());
    });
}

#[test]
fn subscriptions_are_per_name() {
    with_user(async |store, u| {
        let defaults = store.subscriptions(u).await.unwrap();
        assert!(defaults.contains(&"INBOX".to_string()) && defaults.contains(&"Sent".to_string()));

        // A name without a mailbox.
        assert_eq!(store.set_subscribed(u, "Future/box", true).await, Ok(false));
        assert!(subscribed(store, u, "Future/box").await);
        assert_eq!(store.set_subscribed(u, "Future/box", true).await, Ok(true));

        // Unsubscribe an existing mailbox.
        assert_eq!(store.set_subscribed(u, "Junk", false).await, Ok(true));
        assert!(!mailbox(store, u, "Junk").await.subscribed);
        assert!(!subscribed(store, u, "Junk").await);
        assert_eq!(store.set_subscribed(u, "Junk", false).await, Ok(false));

        // Deleting a subscribed mailbox keeps the subscription.
        store.create_mailbox(u, "Temp").await.unwrap();
        store.set_subscribed(u, "Temp", true).await.unwrap();
        store.delete_mailbox(u, "Temp").await.unwrap();
        assert!(subscribed(store, u, "Temp").await);
        assert_eq!(store.set_subscribed(u, "Temp", false).await, Ok(true));
        assert!(!subscribed(store, u, "Temp").await);

        // Other users do not see them; inbox is canonical.
        let v = store.add_user("v", "h".into()).await.unwrap();
        assert!(!subscribed(store, v, "Future/box").await);
        assert_eq!(store.set_subscribed(u, "inbox", true).await, Ok(true));
    });
}

/// RFC 9051 §2.3.1.1: after `DELETE B; RENAME A B`, B's UIDVALIDITY is greater than any
/// value B had (A was created first, so it had the lower one).
#[test]
fn uidvalidity_of_a_name_only_grows_after_delete_and_rename() {
    with_user(async |store, u| {
        let a = store.create_mailbox(u, "A").await.unwrap();
        let b = store.create_mailbox(u, "B").await.unwrap();
        assert!(a.uidvalidity < b.uidvalidity);
        store.delete_mailbox(u, "B").await.unwrap();
        store.rename_mailbox(u, "A", "B").await.unwrap();
        let now = mailbox(store, u, "B").await;
        assert_eq!(now.id, a.id);
        assert!(now.uidvalidity > b.uidvalidity, "{now:?} vs {b:?}");
    });
}
