//! Store tests on a real redb file in a temp dir.

use std::sync::Arc;

use super::*;
use crate::config::StoreConfig;
use crate::contracts::{MailboxId, ModSeq, Uid, UserId};
use crate::testing::uids as uid_list;

fn cfg(dictionary_after: u64) -> StoreConfig {
    StoreConfig {
        dictionary_after,
        dictionary_size: 4096,
        ..StoreConfig::default()
    }
}

/// A fresh store in a temp dir (to keep while the store is open).
fn temp_store(dictionary_after: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &cfg(dictionary_after)).unwrap();
    (dir, store)
}

/// Runs `test` on a fresh store with one user, "a".
fn with_user_a(test: impl AsyncFnOnce(&Store, UserId)) {
    let (_dir, store) = temp_store(0);
    smol::block_on(async {
        let a = store.add_user("a", "h".into()).await.unwrap();
        test(&store, a).await;
    });
}

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: sender{i}@example.org\r\nTo: alice@example.org\r\nSubject: note {i}\r\n\
         Message-ID: <{i}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n\
         Hello number {i}. The quarterly report is attached as usual.\r\n"
    )
    .into_bytes()
}

/// A message's structure as [`Store::load_messages`] gives it, and its prefix length.
async fn message_meta(store: &Store, mailbox: MailboxId, uid: u32) -> (Structure, usize) {
    let want = Want {
        meta: true,
        ..Want::default()
    };
    let got = store.load_messages(mailbox, vec![Uid(uid)], want, 0).await;
    got.unwrap().remove(0).1.unwrap().meta.unwrap()
}

/// An append of `raw` to `mailbox` with no flags, keywords or trace; the store's other
/// test modules build on it.
pub(super) fn request(store: &Store, user: UserId, mailbox: &str, raw: &[u8]) -> AppendRequest {
    AppendRequest {
        user,
        mailbox: mailbox.into(),
        create: false,
        blob: Arc::new(store.codec().prepare(raw).unwrap()),
        trace: None,
        flags: SystemFlags::default(),
        keywords: Vec::new(),
        internal_date: 1_000_000,
        envelope_from: None,
        kept: None,
    }
}

#[test]
fn summaries_name_flags_and_decode_headers() {
    with_user_a(async |store, a| {
        let raw = b"From: =?utf-8?q?J=C3=BCrgen?= <j@x>\r\nSubject: hi\r\n there\r\n\
                    List-Id: <rust.lists>\r\n\r\nbody\r\n";
        let mut req = request(store, a, "INBOX", raw);
        req.flags = SystemFlags(SystemFlags::SEEN | SystemFlags::FLAGGED);
        req.keywords = vec!["$Junk".into()];
        store
            .append_many(vec![req, request(store, a, "INBOX", b"\r\n")])
            .await
            .unwrap();
        let inbox = store.mailbox(a, "INBOX").await.unwrap().unwrap().id;
        let got = store.summaries(inbox, Uid(0), 10).await.unwrap();
        assert_eq!(got.len(), 2);
        let v = &got[0];
        assert_eq!(v.flags, vec!["\\Flagged", "\\Seen", "$Junk"]);
        assert_eq!(v.from.as_deref(), Some("Jürgen <j@x>"));
        assert_eq!(v.subject.as_deref(), Some("hi there"));
        assert_eq!(v.list_id.as_deref(), Some("<rust.lists>"));
        assert_eq!(v.size, raw.len() as u64);
        assert_eq!((got[1].from.as_deref(), got[1].flags.len()), (None, 0));
        // UID batches: after the first, only the second.
        let rest = store.summaries(inbox, v.uid, 10).await.unwrap();
        assert_eq!(
            rest.iter().map(|s| s.uid).collect::<Vec<_>>(),
            vec![got[1].uid]
        );
    });
}

#[test]
fn new_user_gets_special_use_mailboxes() {
    let (_dir, store) = temp_store(0);
    smol::block_on(async {
        let id = store.add_user("Alice", "h".into()).await.unwrap();
        assert_eq!(
            store.add_user("alice", "h".into()).await,
            Err(StoreError::UserExists)
        );
        let boxes = store.mailboxes(id).await.unwrap();
        let names: Vec<_> = boxes
            .iter()
            .map(|b| (b.name.as_str(), b.special_use))
            .collect();
        assert!(names.contains(&("INBOX", None)));
        assert!(names.contains(&("Sent", Some(SpecialUse::Sent))));
        assert!(names.contains(&("Junk", Some(SpecialUse::Junk))));
        assert_eq!(names.len(), 6);
        assert!(
            boxes
                .iter()
                .all(|b| b.subscribed && b.highest_modseq >= ModSeq(1) && b.uidnext == 1)
        );
        let mut v: Vec<u32> = boxes.iter().map(|b| b.uidvalidity).collect();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), 6, "UIDVALIDITY values are unique");
    });
}

#[test]
fn copies_share_one_blob_and_last_expunge_frees_it() {
    with_user_a(async |store, a| {
        let b = store.add_user("b", "h".into()).await.unwrap();
        let raw = message(1);
        let results = store
            .append_many(vec![
                request(store, a, "INBOX", &raw),
                request(store, b, "INBOX", &raw),
            ])
            .await
            .unwrap();
        assert!(results.iter().all(|r| r.is_ok()));
        let s = store.stats(None).await.unwrap();
        assert_eq!(s.blobs, 1);
        let a_inbox = store.mailbox(a, "inbox").await.unwrap().unwrap();
        let b_inbox = store.mailbox(b, "INBOX").await.unwrap().unwrap();
        assert_eq!(
            store.message_bytes(a_inbox.id, Uid(1)).await.unwrap(),
            Some(raw.clone())
        );
        assert_eq!(
            store
                .expunge(a_inbox.id, vec![Uid(1), Uid(99)])
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store.stats(None).await.unwrap().blobs,
            1,
            "b still refers to it"
        );
        assert_eq!(
            store.message_bytes(b_inbox.id, Uid(1)).await.unwrap(),
            Some(raw)
        );
        store.expunge(b_inbox.id, vec![Uid(1)]).await.unwrap();
        assert_eq!(store.stats(None).await.unwrap().blobs, 0);
        let after = store.mailbox(b, "INBOX").await.unwrap().unwrap();
        assert_eq!(
            (after.messages, after.bytes, after.uidnext),
            (0, 0, 2),
            "UIDs are never reused"
        );
        assert!(after.highest_modseq > b_inbox.highest_modseq);
    });
}

#[test]
fn missing_mailbox_fails_alone_in_a_batch() {
    with_user_a(async |store, a| {
        let raw = message(2);
        let mut create = request(store, a, "Lists/rust", &raw);
        create.create = true;
        let r = store
            .append_many(vec![
                request(store, a, "INBOX", &raw),
                request(store, a, "Nope", &raw),
                create,
            ])
            .await
            .unwrap();
        assert!(r[0].is_ok());
        assert_eq!(r[1], Err(StoreError::NoSuchMailbox));
        assert!(r[2].is_ok());
        assert!(store.mailbox(a, "Lists/rust").await.unwrap().is_some());
        assert!(store.mailbox(a, "Nope").await.unwrap().is_none());
    });
}

#[test]
fn feed_publishes_after_commit() {
    with_user_a(async |store, a| {
        let rx = store.feed().subscribe(a);
        let raw = message(3);
        let r = store
            .append_many(vec![request(store, a, "INBOX", &raw)])
            .await
            .unwrap();
        let uid = r[0].as_ref().unwrap().uid;
        let change = rx.try_recv().unwrap();
        assert_eq!(change.kind, ChangeKind::Appended { uid: uid.0 });
    });
}

#[test]
fn concurrent_appends_get_distinct_uids() {
    with_user_a(async |store, a| {
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                let req = request(&store, a, "INBOX", &message(i));
                smol::spawn(async move { store.append_many(vec![req]).await })
            })
            .collect();
        let mut uids = Vec::new();
        for t in tasks {
            uids.push(t.await.unwrap()[0].as_ref().unwrap().uid.0);
        }
        uids.sort();
        assert_eq!(uids, (1..=50).collect::<Vec<u32>>());
    });
}

#[test]
fn dictionary_is_trained_and_old_blobs_stay_readable() {
    let (dir, store) = temp_store(40);
    smol::block_on(async {
        let a = store.add_user("a", "h".into()).await.unwrap();
        let inbox = store.mailbox(a, "INBOX").await.unwrap().unwrap().id;
        for i in 0..60 {
            store
                .append_many(vec![request(&store, a, "INBOX", &message(i))])
                .await
                .unwrap();
        }
        // Training and recompression run in the background; wait for both.
        let mut stats = store.stats(None).await.unwrap();
        for _ in 0..200 {
            if stats.dict_bytes > 0 {
                break;
            }
            smol::Timer::after(std::time::Duration::from_millis(50)).await;
            stats = store.stats(None).await.unwrap();
        }
        assert!(stats.dict_bytes > 0, "a dictionary was trained");
        for _ in 0..100 {
            if !store
                .codec()
                .training
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                break;
            }
            smol::Timer::after(std::time::Duration::from_millis(50)).await;
        }
        // New mail uses it; every message, old and new, reads back exactly.
        store
            .append_many(vec![request(&store, a, "INBOX", &message(1000))])
            .await
            .unwrap();
        for (uid, i) in (1..=60).zip(0..60).chain([(61, 1000)]) {
            let got = store.message_bytes(inbox, Uid(uid)).await.unwrap();
            assert_eq!(got, Some(message(i)), "uid {uid}");
        }
    });
    store.shutdown();
    drop(store);
    // Dictionaries survive a reopen.
    let store = Store::open(dir.path(), &cfg(40)).unwrap();
    smol::block_on(async {
        let a = store.find_user("a", "").await.unwrap().unwrap().id;
        let inbox = store.mailbox(a, "INBOX").await.unwrap().unwrap().id;
        assert_eq!(
            store.message_bytes(inbox, Uid(61)).await.unwrap(),
            Some(message(1000))
        );
    });
}

#[test]
fn delete_user_frees_everything_and_compaction_shrinks() {
    with_user_a(async |store, a| {
        let big: Vec<u8> = (0..400_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut raw = b"Subject: big\r\n\r\n".to_vec();
        raw.extend_from_slice(&big);
        store
            .append_many(vec![request(store, a, "INBOX", &raw)])
            .await
            .unwrap();
        let full = store.file_size();
        store.delete_user("a").await.unwrap();
        let s = store.stats(None).await.unwrap();
        assert_eq!((s.blobs, s.users.len()), (0, 0));
        assert!(store.find_user("a", "").await.unwrap().is_none());
        // Compaction gives up while background work holds a transaction. The packer may
        // have compacted already (after packing, once the writer is quiet): either way
        // the file is smaller.
        wait_packer(store);
        store.compact(true).await.unwrap();
        assert!(store.file_size() < full, "{} < {full}", store.file_size());
        assert!(store.verify().await.unwrap());
    });
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = redb::Database::create(dir.path().join(DB_FILE)).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(schema::META)
            .unwrap()
            .insert("schema_version", schema::SCHEMA_VERSION + 1)
            .unwrap();
        tx.commit().unwrap();
    }
    match Store::open(dir.path(), &cfg(0)) {
        Err(StoreError::Corrupt(why)) => assert!(why.contains("schema version"), "{why}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
}

#[test]
fn second_process_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _store = Store::open(dir.path(), &cfg(0)).unwrap();
    assert!(matches!(
        Store::open(dir.path(), &cfg(0)),
        Err(StoreError::Locked)
    ));
}

fn pack_state(store: &Store) -> (usize, u64) {
    smol::block_on(store.read(|tx, _| {
        use redb::ReadableTableMetadata;
        let packs = tx.open_table(schema::PACKS)?.len()? as usize;
        let loose = tx
            .open_table(schema::META)?
            .get("loose_bytes")?
            .map(|v| v.value())
            .unwrap_or(0);
        Ok((packs, loose))
    }))
    .unwrap()
}

/// Waits until the packer thread is done, including its compaction after packing (which
/// waits for 3 s without writes).
fn wait_packer(store: &Store) {
    for _ in 0..4000 {
        let busy = store
            .codec()
            .packing
            .load(std::sync::atomic::Ordering::SeqCst);
        if !busy {
            // One more look: the packer may be about to start after the last commit.
            std::thread::sleep(std::time::Duration::from_millis(20));
            if !store
                .codec()
                .packing
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                return;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("packer did not finish");
}

/// About 1.5 KB, so a few hundred fill several packs.
fn big(i: usize) -> Vec<u8> {
    let mut m = message(i);
    for l in 0..20 {
        m.extend_from_slice(
            format!("line {l} of message {i}: lorem ipsum dolor sit amet\r\n").as_bytes(),
        );
    }
    m
}

/// A user "a" with `big(0..n)` in INBOX as UIDs 1..=n, once the packer is done with them;
/// returns the user and INBOX ids.
fn deliver_big(store: &Store, n: usize) -> (UserId, MailboxId) {
    let ids = smol::block_on(async {
        let a = store.add_user("a", "h".into()).await.unwrap();
        let inbox = store.mailbox(a, "INBOX").await.unwrap().unwrap().id;
        for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
            let reqs = chunk
                .iter()
                .map(|i| request(store, a, "INBOX", &big(*i)))
                .collect();
            store.append_many(reqs).await.unwrap();
        }
        (a, inbox)
    });
    wait_packer(store);
    ids
}

/// Asserts that `uid` reads back as `big(uid - 1)`, which [`deliver_big`] gave it.
async fn assert_big(store: &Store, inbox: MailboxId, uid: u32) {
    assert_eq!(
        store.message_bytes(inbox, Uid(uid)).await.unwrap(),
        Some(big(uid as usize - 1)),
        "uid {uid}"
    );
}

#[test]
fn loose_blobs_are_packed_and_read_back_and_sparse_packs_unpacked() {
    let (_dir, store) = temp_store(0);
    let n = 1200;
    let (a, inbox) = deliver_big(&store, n);
    let (packs, loose) = pack_state(&store);
    assert!(packs >= 2, "{packs} packs");
    assert!(
        loose < super::pack::PACK_TRIGGER,
        "{loose} bytes still loose"
    );
    smol::block_on(async {
        let mut derived = 0;
        for (uid, i) in (1..=n as u32).zip(0..n) {
            assert_big(&store, inbox, uid).await;
            // No structure is kept (it is parsed from the message when read).
            let (meta, prefix) = message_meta(&store, inbox, uid).await;
            let meta: crate::mime::MessageMeta = match meta {
                Structure::Stored(bytes) => postcard::from_bytes(&bytes).unwrap(),
                Structure::Derive => {
                    derived += 1;
                    crate::mime::analyze(&big(i))
                }
            };
            assert_eq!((meta.size, prefix), (big(i).len() as u64, 0));
        }
        assert!(
            derived >= n / 2,
            "only {derived} of {n} packed without structure"
        );
        // A packed message's header alone, without copying the rest.
        let header_only = Want {
            bytes: true,
            header_only: true,
            ..Want::default()
        };
        for uid in [1u32, 250, 700] {
            let i = uid as usize - 1;
            let got = store
                .load_messages(inbox, vec![Uid(uid)], header_only, 0)
                .await
                .unwrap();
            let raw = got[0].1.as_ref().unwrap().raw.clone().unwrap();
            let end = crate::mime::header_end(&big(i), 0, big(i).len());
            assert_eq!(raw, &big(i)[..end], "uid {uid}");
        }
        // Retention summaries are read from the same header, read the same way.
        let summaries = store.summaries(inbox, Uid(0), 700).await.unwrap();
        assert_eq!(summaries.len(), 700);
        for s in summaries.iter().step_by(97) {
            let whole = big(s.uid.0 as usize - 1);
            let header = crate::mime::header_block(&whole);
            let subject = crate::mime::header::header_value(header, "Subject");
            let subject = subject.map(crate::mime::header::decoded);
            assert_eq!((s.subject.clone(), s.size), (subject, whole.len() as u64));
        }
        // A copy elsewhere keeps a packed blob alive.
        store
            .append_many(vec![request(&store, a, "Archive", &big(3))])
            .await
            .unwrap();
        // Expunge three in four: packs become sparse and are unpacked, then repacked.
        let gone = uid_list((1..=n as u32).filter(|u| u % 4 != 0));
        store.expunge(inbox, gone).await.unwrap();
    });
    wait_packer(&store);
    smol::block_on(async {
        for uid in (4..=n as u32).step_by(4) {
            assert_big(&store, inbox, uid).await;
            // Unpacked from (and packed again without) structure: parsed when read.
            let (meta, _) = message_meta(&store, inbox, uid).await;
            assert!(
                matches!(meta, Structure::Derive)
                    || postcard::from_bytes::<crate::mime::MessageMeta>(match &meta {
                        Structure::Stored(b) => b,
                        Structure::Derive => &[],
                    })
                    .is_ok(),
                "uid {uid}"
            );
        }
        let archive = store.mailbox(a, "Archive").await.unwrap().unwrap().id;
        assert_eq!(
            store.message_bytes(archive, Uid(1)).await.unwrap(),
            Some(big(3))
        );
        let s = store.stats(None).await.unwrap();
        assert_eq!(
            s.blobs,
            (n / 4) as u64,
            "the Archive copy shares uid 4's blob"
        );
        let everything = uid_list(1..=n as u32);
        store.expunge(inbox, everything).await.unwrap();
        store.expunge(archive, vec![Uid(1)]).await.unwrap();
    });
    wait_packer(&store);
    assert_eq!(pack_state(&store), (0, 0), "nothing left behind");
    smol::block_on(async {
        let s = store.stats(None).await.unwrap();
        assert_eq!((s.blobs, s.blob_stored), (0, 0));
        assert!(store.verify().await.unwrap());
    });
}

/// A message that compresses to more than `blob::ALONE_OVER`: pseudo-random base64, as
/// an attachment of compressed data is.
fn attachment(i: usize, len: usize) -> Vec<u8> {
    let mut m = message(i);
    let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ i as u64;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for n in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m.push(alphabet[(x % 64) as usize]);
        if n % 76 == 75 {
            m.extend_from_slice(b"\r\n");
        }
    }
    m
}

/// A header read of a message packed alone decompresses only its start, and gives what
/// `mime::header_end` finds in the whole message: a blank line straddling the reads, a
/// message starting with an empty line, one with no blank line at all.
#[test]
fn the_header_of_a_message_packed_alone_is_what_the_whole_message_has() {
    let (_dir, store) = temp_store(0);
    let codec = store.codec();
    let body = attachment(7, 120_000);
    let mut cases: Vec<Vec<u8>> = vec![body.clone()];
    // The reads are 16 KiB: end the header on each side of that.
    for len in [16_380usize, 16_382, 16_383, 16_384, 16_386, 40_000] {
        let mut m = Vec::new();
        while m.len() + 12 < len {
            m.extend_from_slice(b"X-Fill: ab\r\n");
        }
        while m.len() < len - 2 {
            m.insert(0, b'Y');
        }
        m.extend_from_slice(b"\r\n\r\n");
        m.extend_from_slice(&body);
        cases.push(m);
    }
    cases.push([b"\r\n".as_slice(), &body].concat());
    cases.push(
        body.iter()
            .map(|b| if *b == b'\n' { b'.' } else { *b })
            .collect(),
    );
    for raw in &cases {
        let (dict, compressed) = codec.compress(raw).unwrap();
        let got = codec
            .decompress_header(dict, &compressed, raw.len() as u64)
            .unwrap();
        let want = &raw[..crate::mime::header_end(raw, 0, raw.len())];
        assert_eq!(got.len(), want.len());
        assert!(got == want);
    }
    // Through the store: a header-only read of the large message packed alone.
    smol::block_on(async {
        let a = store.add_user("a", "h".into()).await.unwrap();
        let inbox = store.mailbox(a, "INBOX").await.unwrap().unwrap().id;
        store
            .append_many(vec![request(&store, a, "INBOX", &cases[3])])
            .await
            .unwrap();
        assert_eq!(pack_state(&store), (1, 0), "packed alone");
        let want = Want {
            bytes: true,
            header_only: true,
            skip_trace: true,
            ..Want::default()
        };
        let got = store
            .load_messages(inbox, vec![Uid(1)], want, 0)
            .await
            .unwrap();
        let raw = got.into_iter().next().unwrap().1.unwrap().raw.unwrap();
        let m = &cases[3];
        assert!(raw == m[..crate::mime::header_end(m, 0, m.len())]);
    });
}

#[test]
fn a_large_message_is_packed_alone_at_once_and_leaves_with_its_last_copy() {
    let (_dir, store) = temp_store(0);
    let raw = attachment(1, 60_000);
    let small = message(2);
    let (inbox, archive) = smol::block_on(async {
        let a = store.add_user("a", "h".into()).await.unwrap();
        let inbox = store.mailbox(a, "INBOX").await.unwrap().unwrap().id;
        let archive = store.mailbox(a, "Archive").await.unwrap().unwrap().id;
        let reqs = vec![
            request(&store, a, "INBOX", &raw),
            request(&store, a, "INBOX", &small),
            request(&store, a, "Archive", &raw),
        ];
        store.append_many(reqs).await.unwrap();
        (inbox, archive)
    });
    // No packer run needed: one pack (the large message, shared by both copies), and only
    // the small message loose.
    let (packs, loose) = pack_state(&store);
    assert_eq!((packs, loose), (1, small.len() as u64));
    smol::block_on(async {
        assert_eq!(
            store.message_bytes(inbox, Uid(1)).await.unwrap(),
            Some(raw.clone())
        );
        assert_eq!(
            store.message_bytes(archive, Uid(1)).await.unwrap(),
            Some(raw.clone())
        );
        let s = store.stats(None).await.unwrap();
        assert_eq!(s.blobs, 2);
        assert!(store.verify().await.unwrap());
        store.expunge(inbox, vec![Uid(1)]).await.unwrap();
    });
    assert_eq!(pack_state(&store).0, 1, "the Archive copy keeps it");
    smol::block_on(async {
        assert_eq!(
            store.message_bytes(archive, Uid(1)).await.unwrap(),
            Some(raw.clone())
        );
        store.expunge(archive, vec![Uid(1)]).await.unwrap();
        assert!(store.verify().await.unwrap());
    });
    assert_eq!(pack_state(&store).0, 0, "the last copy took its pack");
}

/// Every pack record in the store.
fn packs(store: &Store) -> Vec<schema::PackRecord> {
    smol::block_on(store.read(|tx, _| {
        use redb::ReadableTable;
        let mut out = Vec::new();
        for row in tx.open_table(schema::PACKS)?.iter()? {
            out.push(schema::decode(row?.1.value())?);
        }
        Ok(out)
    }))
    .unwrap()
}

/// (packs of several messages, how many of them have no dictionary)
fn multi_packs(store: &Store) -> (usize, usize) {
    let multi: Vec<_> = packs(store)
        .into_iter()
        .filter(|rec| rec.items.len() > 1)
        .collect();
    let undicted = multi.iter().filter(|rec| rec.dict == 0).count();
    (multi.len(), undicted)
}

#[test]
fn packs_made_before_the_dictionary_are_packed_again_with_it() {
    let dir = tempfile::tempdir().unwrap();
    // No dictionary yet: past 2 MiB loose the packer packs without one.
    let store = Store::open(dir.path(), &cfg(100_000)).unwrap();
    let n = 1800;
    let (a, inbox) = deliver_big(&store, n);
    let (packs, undicted) = multi_packs(&store);
    assert!(
        packs >= 2 && undicted == packs,
        "{packs} packs, {undicted} without"
    );
    store.shutdown();
    drop(store);
    // Now a dictionary is trained from newer mail, and the old packs get it.
    let store = Store::open(dir.path(), &cfg(50)).unwrap();
    smol::block_on(async {
        let reqs = (n..n + 100)
            .map(|i| request(&store, a, "INBOX", &big(i)))
            .collect();
        store.append_many(reqs).await.unwrap();
    });
    for _ in 0..100 {
        if store.codec().has_dictionary() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(store.codec().has_dictionary());
    // Training starts the packer when it is done.
    std::thread::sleep(std::time::Duration::from_millis(100));
    wait_packer(&store);
    let (packs, undicted) = multi_packs(&store);
    assert!(
        packs >= 2 && undicted == 0,
        "{packs} packs, {undicted} without"
    );
    smol::block_on(async {
        for uid in (1..=(n + 100) as u32).step_by(37) {
            assert_big(&store, inbox, uid).await;
        }
        assert!(store.verify().await.unwrap());
    });
}

#[test]
fn trace_renders_the_same_bytes_every_time() {
    let t = TraceRecord {
        format: 1,
        protocol: "LMTP".into(),
        delivered_to: "alice@example.org".into(),
        helo: Some("mx.example.org".into()),
        peer: Some("127.0.0.1".into()),
        by: "mail.example.org".into(),
    };
    let blob = [7u8; 16];
    let a = t.render(Some("bob@example.net"), 1_795_304_182, &blob);
    assert_eq!(a, t.render(Some("bob@example.net"), 1_795_304_182, &blob));
    let text = String::from_utf8(a).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[0], "Return-Path: <bob@example.net>");
    assert_eq!(lines[1], "Delivered-To: alice@example.org");
    assert_eq!(lines[2], "Received: from mx.example.org (127.0.0.1)");
    assert!(
        lines[3].starts_with("\tby mail.example.org (nestbox) with LMTP id "),
        "{}",
        lines[3]
    );
    assert_eq!(
        lines[4],
        "\tfor <alice@example.org>; Sat, 21 Nov 2026 23:36:22 +0000"
    );
    assert!(text.ends_with("\r\n"));
    // The id differs per recipient and per message.
    let other = TraceRecord {
        delivered_to: "carol@example.org".into(),
        ..t.clone()
    };
    let id = |s: &[u8]| {
        String::from_utf8_lossy(s)
            .split(" id ")
            .nth(1)
            .map(|x| x[..16].to_string())
    };
    assert_ne!(
        id(&other.render(None, 1_795_304_182, &blob)),
        id(&text.clone().into_bytes())
    );
    assert!(!String::from_utf8_lossy(&t.render(None, 0, &blob)).contains("Return-Path"));
}

#[test]
fn the_tail_is_packed_after_a_pause_and_absorbed_by_the_next_pack() {
    let (_dir, store) = temp_store(0);
    let (a, inbox) = smol::block_on(async {
        let a = store.add_user("a", "h".into()).await.unwrap();
        let inbox = store.mailbox(a, "INBOX").await.unwrap().unwrap().id;
        (a, inbox)
    });
    let deliver = |range: std::ops::Range<usize>| {
        smol::block_on(async {
            let reqs = range
                .map(|i| request(&store, a, "INBOX", &big(i)))
                .collect();
            store.append_many(reqs).await.unwrap();
        })
    };
    deliver(0..100);
    wait_packer(&store);
    assert_eq!(
        pack_state(&store),
        (1, 0),
        "the tail went into one small pack"
    );
    deliver(100..200);
    wait_packer(&store);
    assert_eq!(
        pack_state(&store),
        (1, 0),
        "the next pack absorbed the tail pack"
    );
    smol::block_on(async {
        for uid in 1..=200 {
            assert_big(&store, inbox, uid).await;
        }
        assert!(store.verify().await.unwrap());
    });
}

/// User `a` with `message(i)` for each `i` in `range` delivered to INBOX; its id.
async fn user_with_inbox(store: &Store, range: std::ops::RangeInclusive<usize>) -> MailboxId {
    let a = store.add_user("a", "h".into()).await.unwrap();
    let requests = range
        .map(|i| request(store, a, "INBOX", &message(i)))
        .collect();
    let done = store.append_many(requests).await.unwrap();
    assert!(done.iter().all(|r| r.is_ok()));
    store.mailbox(a, "INBOX").await.unwrap().unwrap().id
}

#[test]
fn load_messages_reads_in_order_marks_gone_and_stops_at_the_budget() {
    let (_dir, store) = temp_store(0);
    smol::block_on(async {
        let inbox = user_with_inbox(&store, 1..=5).await;
        store.expunge(inbox, vec![Uid(2)]).await.unwrap();
        let all = Want {
            meta: true,
            bytes: true,
            ..Want::default()
        };

        // Order as asked, a gone message (2) and an unknown one (9) as None.
        let got = store
            .load_messages(inbox, vec![Uid(3), Uid(2), Uid(1), Uid(9)], all, usize::MAX)
            .await
            .unwrap();
        let uids: Vec<(u32, bool)> = got.iter().map(|(u, l)| (u.0, l.is_some())).collect();
        assert_eq!(uids, vec![(3, true), (2, false), (1, true), (9, false)]);
        let first = got[0].1.as_ref().unwrap();
        assert_eq!(first.raw.as_deref(), Some(&message(3)[..]));
        assert_eq!(first.info.size, message(3).len() as u64);
        let (meta, prefix) = first.meta.as_ref().unwrap();
        assert_eq!(*prefix, 0);
        assert_eq!(meta, &message_meta(&store, inbox, 3).await.0);

        // Without Want, only the listing; nothing counts against the budget.
        let listed = store
            .load_messages(
                inbox,
                vec![Uid(1), Uid(3), Uid(4), Uid(5)],
                Want::default(),
                0,
            )
            .await
            .unwrap();
        assert_eq!(listed.len(), 4);
        assert!(listed.iter().all(|(_, l)| {
            let l = l.as_ref().unwrap();
            l.raw.is_none() && l.meta.is_none() && l.info.size > 0
        }));

        // A budget of one message's bytes stops after that message; 0 still reads one.
        let one = message(1).len();
        let bytes_only = Want {
            meta: false,
            bytes: true,
            ..Want::default()
        };
        let cut = store
            .load_messages(inbox, vec![Uid(1), Uid(3), Uid(4), Uid(5)], bytes_only, one)
            .await
            .unwrap();
        assert_eq!(cut.len(), 1);
        let cut = store
            .load_messages(
                inbox,
                vec![Uid(1), Uid(3), Uid(4), Uid(5)],
                bytes_only,
                one + 1,
            )
            .await
            .unwrap();
        assert_eq!(cut.len(), 2);
        assert_eq!(
            store
                .load_messages(inbox, vec![Uid(4), Uid(5)], bytes_only, 0)
                .await
                .unwrap()
                .len(),
            1
        );
    });
}

#[test]
fn find_user_cache_follows_password_changes_and_deletion() {
    let (_dir, store) = temp_store(0);
    smol::block_on(async {
        assert_eq!(store.find_user("carol", "").await.unwrap(), None);
        let id = store.add_user("carol", "h1".into()).await.unwrap();
        // Not cached as missing: found right after it was added.
        let first = store.find_user("Carol", "").await.unwrap().unwrap();
        assert_eq!((first.id, first.password_hash.as_str()), (id, "h1"));
        // Cached now; a new password shows at once, as do app passwords.
        store.find_user("carol", "").await.unwrap();
        store.set_password("carol", "h2".into()).await.unwrap();
        let again = store.find_user("carol", "").await.unwrap().unwrap();
        assert_eq!(again.password_hash, "h2");
        store
            .add_app_password("carol", "phone", "ah".into())
            .await
            .unwrap();
        let with_app = store.find_user("carol", "").await.unwrap().unwrap();
        assert_eq!(with_app.app_passwords.len(), 1);
        // Deleted: gone, even though it was cached.
        store.delete_user("carol").await.unwrap();
        assert_eq!(store.find_user("carol", "").await.unwrap(), None);
    });
}

#[test]
fn a_full_pack_record_fits_one_page() {
    // Larger values take multi-page runs, which can stop compaction (pack::MAX_ITEMS).
    let rec = schema::PackRecord {
        raw_len: 64 << 20,
        live: 64 << 20,
        stored_len: 64 << 20,
        dict: u32::MAX,
        chunks: u32::MAX,
        items: vec![[0xff; 16]; super::pack::MAX_ITEMS],
    };
    let len = schema::encode(&rec).unwrap().len();
    assert!(len <= schema::PACK_CHUNK, "{len} bytes");
}

#[test]
fn schema_2_store_is_upgraded_dictionaries_into_chunks() {
    use redb::{ReadableDatabase, ReadableTableMetadata};
    let (dir, store) = temp_store(0);
    smol::block_on(store.add_user("a", "h".into())).unwrap();
    store.shutdown();
    drop(store);
    // Make it a schema 2 store with dictionary 7 whole in `dicts`, as 2 kept it.
    let dict: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let path = dir.path().join(DB_FILE);
    {
        let db = redb::Database::open(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(schema::META).unwrap();
            meta.insert("schema_version", 2).unwrap();
            meta.insert("active_dict", 7).unwrap();
            tx.open_table(schema::DICTS)
                .unwrap()
                .insert(7, dict.as_slice())
                .unwrap();
            tx.delete_table(schema::DICT_CHUNKS).unwrap();
        }
        tx.commit().unwrap();
    }
    let store = Store::open(dir.path(), &cfg(0)).unwrap();
    let stats = smol::block_on(store.stats(None)).unwrap();
    assert_eq!(stats.dict_bytes, dict.len() as u64);
    let blob = store.codec().prepare(&message(1)).unwrap();
    assert_eq!(blob.dict, 7, "the moved dictionary is still the active one");
    store.shutdown();
    drop(store);
    let db = redb::Database::open(&path).unwrap();
    let tx = db.begin_read().unwrap();
    let meta = tx.open_table(schema::META).unwrap();
    assert_eq!(
        meta.get("schema_version").unwrap().unwrap().value(),
        schema::SCHEMA_VERSION
    );
    assert_eq!(tx.open_table(schema::DICTS).unwrap().len().unwrap(), 0);
    let chunks = tx.open_table(schema::DICT_CHUNKS).unwrap();
    assert_eq!(
        chunks.len().unwrap(),
        3,
        "10,000 bytes in 4,000-byte chunks"
    );
    assert_eq!(schema::dictionaries(&chunks).unwrap()[&7], dict);
}

#[test]
fn schema_3_store_is_upgraded_loose_bytes_keyed_by_arrival() {
    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
    use schema::BlobId;
    let (dir, store) = temp_store(0);
    let inbox = smol::block_on(async {
        let a = store.add_user("a", "h".into()).await.unwrap();
        let reqs = (0..5)
            .map(|i| request(&store, a, "INBOX", &big(i)))
            .collect();
        store.append_many(reqs).await.unwrap();
        store.mailbox(a, "INBOX").await.unwrap().unwrap().id
    });
    store.shutdown();
    drop(store);
    // Make it a schema 3 store: loose bytes keyed by content hash in `blob_data`.
    let path = dir.path().join(DB_FILE);
    {
        let db = redb::Database::open(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let loose: Vec<(u64, BlobId)> = tx
                .open_table(schema::LOOSE)
                .unwrap()
                .iter()
                .unwrap()
                .map(|r| r.map(|(k, v)| (k.value(), *v.value())).unwrap())
                .collect();
            assert_eq!(loose.len(), 5);
            let mut new = tx.open_table(schema::LOOSE_DATA).unwrap();
            let mut old = tx.open_table(schema::BLOB_DATA).unwrap();
            for (seq, hash) in &loose {
                let bytes = new.remove(*seq).unwrap().unwrap().value().to_vec();
                old.insert(hash, bytes.as_slice()).unwrap();
            }
            // A stray row no blob names is dropped by the upgrade.
            old.insert(&[9u8; 16], b"stray".as_slice()).unwrap();
            tx.open_table(schema::META)
                .unwrap()
                .insert("schema_version", 3)
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let store = Store::open(dir.path(), &cfg(0)).unwrap();
    smol::block_on(async {
        for uid in 1..=5 {
            assert_big(&store, inbox, uid).await;
        }
        assert!(store.verify().await.unwrap());
    });
    store.shutdown();
    drop(store);
    let db = redb::Database::open(&path).unwrap();
    let tx = db.begin_read().unwrap();
    assert_eq!(tx.open_table(schema::BLOB_DATA).unwrap().len().unwrap(), 0);
    assert_eq!(tx.open_table(schema::LOOSE_DATA).unwrap().len().unwrap(), 5);
}

#[test]
fn load_messages_gives_only_the_header_and_skips_the_trace_when_asked() {
    with_user_a(async |store, a| {
        let raw = message(1);
        let mut req = request(store, a, "INBOX", &raw);
        req.trace = Some(TraceRecord {
            format: 1,
            protocol: "LMTP".into(),
            delivered_to: "a@example.org".into(),
            helo: None,
            peer: None,
            by: "mx.example.org".into(),
        });
        store.append_many(vec![req]).await.unwrap();
        let inbox = store.mailbox(a, "INBOX").await.unwrap().unwrap().id;
        let load = |skip_trace, header_only| {
            let want = Want {
                bytes: true,
                skip_trace,
                header_only,
                ..Want::default()
            };
            let store = store.clone();
            async move {
                let got = store
                    .load_messages(inbox, vec![Uid(1)], want, 0)
                    .await
                    .unwrap();
                got.into_iter().next().unwrap().1.unwrap().raw.unwrap()
            }
        };
        let whole = load(false, false).await;
        let header_end = crate::mime::header_end(&raw, 0, raw.len());
        assert!(whole.starts_with(b"Delivered-To: a@example.org\r\n"));
        assert!(whole.ends_with(&raw));
        let prefix = whole.len() - raw.len();
        assert_eq!(load(true, false).await, raw, "no trace");
        assert_eq!(load(true, true).await, &raw[..header_end], "header only");
        assert_eq!(
            load(false, true).await,
            &whole[..prefix + header_end],
            "trace and header"
        );
    });
}

/// Fills a store with `n` big messages, waits for the packer, and gives (file bytes,
/// free bytes in the file).
fn packed_file(store: &Store, n: usize) -> (u64, u64) {
    deliver_big(store, n);
    let stats = smol::block_on(store.stats(None)).unwrap();
    (stats.file_bytes, stats.free_bytes)
}

#[test]
fn the_file_is_compacted_once_packing_is_done() {
    // Without automatic compaction the loose copies' pages stay free in the file...
    let dir = tempfile::tempdir().unwrap();
    let off = StoreConfig {
        compact_check_secs: 0,
        ..cfg(0)
    };
    let store = Store::open(dir.path(), &off).unwrap();
    let (file, free) = packed_file(&store, 1200);
    assert!(
        free * 4 >= file,
        "packing frees over a quarter of the file: {free} of {file} free"
    );
    // ...with it (the default), the packer gives them back once the writer is quiet.
    let (_dir, store) = temp_store(0);
    let (after, free) = packed_file(&store, 1200);
    assert!(
        free * 4 < after && after < file,
        "compacted after packing: {free} of {after} free (uncompacted file {file})"
    );
    assert!(
        store.allocated_size() <= after + (64 << 10),
        "no sparse tail left: {} allocated, {after} apparent",
        store.allocated_size()
    );
}

#[test]
fn mail_is_packed_while_writes_never_pause() {
    // After packing, the packer waits for a quiet writer before it compacts. A steady
    // stream of writes (an IMAP client's flag changes) used to keep it in that wait with
    // its `packing` flag set, so mail delivered meanwhile was never packed.
    let (_dir, store) = temp_store(0);
    let append = |range: std::ops::Range<usize>, a: UserId| {
        smol::block_on(async {
            for chunk in range.collect::<Vec<_>>().chunks(50) {
                let reqs = chunk
                    .iter()
                    .map(|i| request(&store, a, "INBOX", &big(*i)))
                    .collect();
                store.append_many(reqs).await.unwrap();
            }
        })
    };
    let a = smol::block_on(store.add_user("a", "h".into())).unwrap();
    append(0..1200, a);
    // Packed: the packer now waits for the writer to be quiet 3 s.
    let packed = |limit: u64, secs: u64| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if pack_state(&store).1 < limit {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    };
    assert!(packed(32 * 1024, 30), "the first mail was not packed");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writes = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                smol::block_on(store.health_check()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Past 2 MiB loose (pack::LOOSE_MAX) the packer packs without waiting for quiet.
    append(1200..3200, a);
    let ok = packed(2 << 20, 10);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writes.join().unwrap();
    assert!(
        ok,
        "{} bytes loose after 10 s of writes",
        pack_state(&store).1
    );
}

#[test]
fn finish_packing_leaves_nothing_loose() {
    // What `nestbox import` calls before closing a store it opened itself.
    let (_dir, store) = temp_store(0);
    smol::block_on(async {
        let a = store.add_user("a", "h".into()).await.unwrap();
        for chunk in (0..900).collect::<Vec<_>>().chunks(100) {
            let reqs = chunk
                .iter()
                .map(|i| request(&store, a, "INBOX", &big(*i)))
                .collect();
            store.append_many(reqs).await.unwrap();
        }
    });
    let (_, before) = pack_state(&store);
    assert!(before > 1 << 20, "{before} bytes loose");
    store.finish_packing();
    let (packs, after) = pack_state(&store);
    assert!(
        packs >= 1 && after < 32 * 1024,
        "{packs} packs, {after} bytes loose"
    );
}

#[test]
fn import_layout_kept_uids_and_uidls() {
    let (_dir, store) = temp_store(0);
    smol::block_on(async {
        let user = store.add_user("alice", "h".into()).await.unwrap();
        let layout = vec![
            MailboxLayout {
                name: "INBOX".into(),
                uidvalidity: Some(0x6b11_5a3f),
                special_use: None,
                subscribed: true,
            },
            MailboxLayout {
                name: "Sent Messages".into(),
                uidvalidity: Some(7),
                special_use: Some(SpecialUse::Sent),
                subscribed: false,
            },
        ];
        let report = store
            .import_layout(user, layout.clone(), vec!["Gone".into()])
            .await
            .unwrap();
        // The empty defaults Dovecot did not have went; INBOX stays.
        assert_eq!(
            report.removed,
            ["Archive", "Drafts", "Junk", "Sent", "Trash"]
        );
        let boxes = store.mailboxes(user).await.unwrap();
        let names: Vec<&str> = boxes.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["INBOX", "Sent Messages"]);
        assert_eq!(boxes[0].uidvalidity, 0x6b11_5a3f);
        assert_eq!(boxes[1].special_use, Some(SpecialUse::Sent));
        assert_eq!(store.subscriptions(user).await.unwrap(), ["Gone", "INBOX"]);

        let kept = |uid: u32, uidl: Option<&str>| {
            let mut req = request(&store, user, "INBOX", &message(uid as usize));
            req.kept = Some(KeptIds {
                uid: Uid(uid),
                pop3_uidl: uidl.map(str::to_owned),
            });
            req
        };
        let out = store
            .append_many(vec![
                kept(3, Some("u3")),
                kept(9, Some("u9")),
                kept(5, None),
            ])
            .await
            .unwrap();
        assert_eq!(out[0].as_ref().unwrap().uid, Uid(3));
        assert_eq!(out[1].as_ref().unwrap().uid, Uid(9));
        // Below UIDNEXT (10 after UID 9): refused, nothing stored.
        assert_eq!(out[2], Err(StoreError::UidNotFree(5)));
        store.raise_uidnext(user, "INBOX", 12).await.unwrap();
        store.raise_uidnext(user, "INBOX", 4).await.unwrap();
        let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap();
        assert_eq!((inbox.uidnext, inbox.messages), (12, 2));
        let plain = store
            .append_many(vec![request(&store, user, "INBOX", b"x\r\n\r\ny\r\n")])
            .await
            .unwrap();
        assert_eq!(plain[0].as_ref().unwrap().uid, Uid(12));

        let scan = |store: &Store| {
            let store = store.clone();
            async move {
                store
                    .pop3_scan(inbox.id, |_, _| ())
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| (e.uid, e.kept_uidl))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            scan(&store).await,
            [
                (Uid(3), Some("u3".into())),
                (Uid(9), Some("u9".into())),
                (Uid(12), None)
            ]
        );
        // The row goes with its message.
        store.expunge(inbox.id, vec![Uid(3)]).await.unwrap();
        assert_eq!(
            scan(&store).await,
            [(Uid(9), Some("u9".into())), (Uid(12), None)]
        );

        // A mailbox that holds mail refuses a second layout, changing nothing.
        let err = store.import_layout(user, layout, Vec::new()).await;
        assert_eq!(
            err,
            Err(StoreError::MailboxNotEmpty("INBOX (2 messages)".into()))
        );
        assert_eq!(store.mailboxes(user).await.unwrap().len(), 2);
    });
}

#[test]
fn expunge_history_stays_within_the_window_under_churn() {
    let (_dir, store) = temp_store(0);
    let window = imap::EXPUNGED_WINDOW;
    smol::block_on(async {
        let a = store.add_user("a", "h".into()).await.unwrap();
        let inbox = store.mailbox(a, "INBOX").await.unwrap().unwrap();
        // Deliver and expunge in rounds, as churn does, until UIDNEXT is well past the
        // window.
        let rounds = 2 * window as usize / 250 + 2;
        for round in 0..rounds {
            let reqs = (0..250)
                .map(|i| request(&store, a, "INBOX", &message(round * 250 + i)))
                .collect();
            store.append_many(reqs).await.unwrap();
            let uids = uid_list(1..=(round as u32 + 1) * 250);
            store.expunge(inbox.id, uids).await.unwrap();
        }
        let uidnext = store.mailbox(a, "INBOX").await.unwrap().unwrap().uidnext;
        assert!(uidnext > 2 * window);
        let tx = store.shared.begin_read().unwrap();
        let rows: Vec<u32> = tx
            .open_table(schema::EXPUNGED)
            .unwrap()
            .range((inbox.id.0, 0)..=(inbox.id.0, u32::MAX))
            .unwrap()
            .map(|r| r.unwrap().0.value().1)
            .collect();
        let floor = uidnext - window;
        assert_eq!(
            rows,
            (floor..uidnext).collect::<Vec<_>>(),
            "every expunged UID of the window, none below it"
        );
    });
}

/// RFC 7162 §3.2.5 over the bounded history: exact in the window, below it every UID
/// the mailbox lacks (docs/decisions.md, "QRESYNC over a bounded expunge history").
#[test]
fn expunged_since_is_exact_in_the_window_and_a_superset_below_it() {
    let (_dir, store) = temp_store(0);
    let window = imap::EXPUNGED_WINDOW;
    let all = || vec![(1, u32::MAX)];
    smol::block_on(async {
        let a = store.add_user("a", "h".into()).await.unwrap();
        let inbox = store.mailbox(a, "INBOX").await.unwrap().unwrap().id;
        let deliver = |from: usize, n: usize| {
            let reqs = (from..from + n)
                .map(|i| request(&store, a, "INBOX", &message(i)))
                .collect();
            store.append_many(reqs)
        };
        let highest = || async { store.mailbox_status(inbox).await.unwrap().highest_modseq };
        deliver(0, 300).await.unwrap();
        // Small mailbox: the window covers every UID, the answer is exact.
        store.expunge(inbox, uid_list(10..=19)).await.unwrap();
        let m1 = highest().await;
        let v = store.expunged_since(inbox, m1, all()).await.unwrap();
        assert!(v.uids.is_empty(), "{v:?}");
        assert_eq!(v.exact_from, 1);
        let v = store
            .expunged_since(inbox, ModSeq(m1.0 - 1), all())
            .await
            .unwrap();
        assert_eq!(v.uids, [(10, 19)]);

        // UIDNEXT moves well past the window; UID 100 goes, then 2500..=2509.
        for round in 0..9 {
            deliver(300 + round * 256, 256).await.unwrap();
        }
        let uidnext = store.mailbox(a, "INBOX").await.unwrap().unwrap().uidnext;
        assert_eq!(uidnext, 300 + 9 * 256 + 1);
        store.expunge(inbox, vec![Uid(2400)]).await.unwrap();
        let m2 = highest().await;
        store.expunge(inbox, vec![Uid(100)]).await.unwrap();
        let m3 = highest().await;
        store.expunge(inbox, uid_list(2500..=2509)).await.unwrap();
        let floor = uidnext - window;
        let v = store.expunged_since(inbox, m2, all()).await.unwrap();
        assert_eq!(v.exact_from, floor);
        // 10..=19 went before m2 but lie below the window: reported all the same.
        assert_eq!(v.uids, [(10, 19), (100, 100), (2500, 2509)]);
        // In the window the modseq counts (2400 went before m2); below it, it cannot.
        let v = store
            .expunged_since(inbox, ModSeq(m2.0 - 1), all())
            .await
            .unwrap();
        assert_eq!(v.uids, [(10, 19), (100, 100), (2400, 2400), (2500, 2509)]);
        let v = store.expunged_since(inbox, m3, all()).await.unwrap();
        assert_eq!(v.uids, [(10, 19), (100, 100), (2500, 2509)]);
        let v = store
            .expunged_since(inbox, m3, vec![(2505, 2600), (1, 12)])
            .await
            .unwrap();
        assert_eq!(v.uids, [(10, 12), (2505, 2509)]);
        let v = store
            .expunged_since(inbox, m2, vec![(floor, u32::MAX)])
            .await
            .unwrap();
        assert_eq!(v.uids, [(2500, 2509)]);
        // Nothing changed since the highest modseq: nothing, exact.
        let v = store
            .expunged_since(inbox, highest().await, all())
            .await
            .unwrap();
        assert!(v.uids.is_empty(), "{v:?}");
    });
}

/// Packs sparse enough for the packer to unpack them.
fn sparse_packs(store: &Store) -> usize {
    packs(store)
        .iter()
        .filter(|rec| super::pack::is_sparse(rec))
        .count()
}

#[test]
fn a_pack_under_two_thirds_live_is_repacked() {
    let (_dir, store) = temp_store(0);
    let n = 1200;
    let (_, inbox) = deliver_big(&store, n);
    // Two in five go, as junk and POP3-downloaded mail do on the day it came: every pack
    // is left 0.6 live.
    smol::block_on(async {
        let gone = uid_list((1..=n as u32).filter(|u| u % 5 < 2));
        store.expunge(inbox, gone).await.unwrap();
    });
    wait_packer(&store);
    let dead: u64 = packs(&store).iter().map(|rec| rec.raw_len - rec.live).sum();
    assert_eq!(dead, 0, "the packs were made again of the live mail");
    smol::block_on(async {
        for uid in (1..=n as u32).filter(|u| u % 5 >= 2) {
            assert_big(&store, inbox, uid).await;
        }
    });
}

#[test]
fn expunge_while_the_packer_waits_to_compact_still_unpacks() {
    let (_dir, store) = temp_store(0);
    let n = 1200;
    let (a, inbox) = deliver_big(&store, n);
    assert!(pack_state(&store).0 >= 2);
    assert_eq!(sparse_packs(&store), 0);
    smol::block_on(async {
        // Too little to pack: the packer goes straight to waiting for 3 s of quiet before
        // it compacts...
        store
            .append_many(vec![request(&store, a, "INBOX", &message(n))])
            .await
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        // ...and this expunge, which finds it running, makes every pack sparse.
        let gone = uid_list((1..=n as u32).filter(|u| u % 4 != 0));
        store.expunge(inbox, gone).await.unwrap();
    });
    wait_packer(&store);
    assert_eq!(
        sparse_packs(&store),
        0,
        "sparse packs left after the packer stopped"
    );
    smol::block_on(async {
        for uid in (4..=n as u32).step_by(4) {
            assert_big(&store, inbox, uid).await;
        }
    });
}

#[test]
fn compaction_need_counts_sparse_pages_and_a_margin() {
    const P: u64 = 4096;
    // A dense file: the margin (64 pages) and 1/256 of the live pages.
    assert_eq!(compaction_need(1 << 20, 1 << 20, 1 << 20, P), 64 * P + 4096);
    // A sparse one: its holes on top...
    assert_eq!(
        compaction_need(1 << 20, 1 << 19, 1 << 20, P),
        (1 << 19) + 64 * P + 4096
    );
    // ...but no more than the live pages, which are all compaction moves.
    assert_eq!(
        compaction_need(1 << 22, 1 << 20, 1 << 18, P),
        (1 << 18) + 64 * P + 1024
    );
    // `du` can exceed `ls -l` (blocks beyond the end): no holes then.
    assert_eq!(compaction_need(0, 8192, 0, P), 64 * P);
}

#[test]
fn caches_are_released_only_when_no_transaction_is_open_and_nothing_is_lost() {
    with_user_a(async |store, a| {
        let reqs = (0..40).map(|i| request(store, a, "INBOX", &message(i)));
        store.append_many(reqs.collect()).await.unwrap();
        let inbox = store.mailbox(a, "INBOX").await.unwrap().unwrap().id;
        let raw = store.message_bytes(inbox, Uid(7)).await.unwrap();
        assert!(raw.is_some());

        // A transaction begun outside the lock keeps the database open.
        let held = store.shared.begin_read().unwrap();
        assert_eq!(store.release_caches().await, Ok(false));
        assert!(held.open_table(schema::MESSAGES).is_ok());
        drop(held);

        // (How much memory this gives back is measured by benches/rss.sh.)
        assert_eq!(store.release_caches().await, Ok(true));
        // Everything is still there, and the store takes writes.
        assert_eq!(store.message_bytes(inbox, Uid(7)).await.unwrap(), raw);
        let r = store
            .append_many(vec![request(store, a, "INBOX", &message(99))])
            .await
            .unwrap();
        assert_eq!(r[0].as_ref().unwrap().uid, Uid(41));
    });
}

#[test]
fn the_index_keeps_what_sort_and_thread_read_from_each_header() {
    use crate::config::FullTextIndex;
    use crate::mime::summary::HeaderData;
    for mode in [FullTextIndex::Headers, FullTextIndex::Full] {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            full_text_index: mode,
            ..cfg(0)
        };
        let store = Store::open(dir.path(), &config).unwrap();
        smol::block_on(async {
            let a = store.add_user("a", "h".into()).await.unwrap();
            let raws: Vec<Vec<u8>> = (0..40)
                .map(|i| {
                    format!(
                        "From: \"Sender {i}\" <s{i}@example.org>\r\nTo: t{}@example.net\r\n\
                         Subject: Re: [list] topic {}\r\nDate: {} Dec 2026 10:00:00 +0{}00\r\n\
                         Message-ID: <{i}@x>\r\nReferences: <{}@x> <{}@x>\r\n\r\nbody {i}\r\n",
                        i % 3,
                        i % 5,
                        1 + i % 28,
                        i % 10,
                        i / 2,
                        i / 3
                    )
                    .into_bytes()
                })
                .collect();
            let requests = raws
                .iter()
                .map(|raw| request(&store, a, "INBOX", raw))
                .collect();
            let done = store.append_many(requests).await.unwrap();
            assert!(done.iter().all(|r| r.is_ok()));
            let inbox = store.mailbox(a, "INBOX").await.unwrap().unwrap();
            let uids = uid_list(1..=40);
            assert!(
                store
                    .header_records(inbox.id, uids.clone())
                    .await
                    .unwrap()
                    .is_empty()
            );
            store.index_now().unwrap();
            let records = store.header_records(inbox.id, uids).await.unwrap();
            assert_eq!(records.len(), 40, "{mode:?}");
            for ((uid, record), raw) in records.iter().zip(&raws) {
                let end = crate::mime::header_end(raw, 0, raw.len());
                let mut expected = HeaderData::parse(&raw[..end]);
                if mode == FullTextIndex::Headers {
                    expected.ids = None;
                }
                assert_eq!(**record, expected, "{mode:?} UID {uid}");
                assert!(record.date.is_some() && record.reply, "{record:?}");
            }
            // Asked for some, in any order, and for UIDs it does not have.
            let some = store
                .header_records(inbox.id, vec![Uid(40), Uid(3), Uid(77), Uid(2)])
                .await
                .unwrap();
            let got: Vec<u32> = some.iter().map(|(u, _)| u.0).collect();
            assert_eq!(got, [2, 3, 40]);
        });
    }
}

#[test]
fn segments_mostly_expunged_are_rewritten_without_the_dead() {
    let (_dir, store) = temp_store(0);
    smol::block_on(async {
        let inbox = user_with_inbox(&store, 0..=199).await;
        store.index_now().unwrap();
        let all = uid_list(1..=200);
        let held = |uids: Vec<Uid>| async {
            let records = store.header_records(inbox, uids).await.unwrap();
            records.len()
        };
        assert_eq!(held(all.clone()).await, 200);
        let before = store.stats(None).await.unwrap().index_bytes;
        // A third gone: the segment stays as it is.
        store.expunge(inbox, uid_list(1..=60)).await.unwrap();
        store.index_now().unwrap();
        assert_eq!(held(all.clone()).await, 200);
        // Three quarters gone: it is written again with the 50 left.
        store.expunge(inbox, uid_list(61..=150)).await.unwrap();
        store.index_now().unwrap();
        let left = store.header_records(inbox, all.clone()).await.unwrap();
        let uids: Vec<u32> = left.iter().map(|(u, _)| u.0).collect();
        assert_eq!(uids, (151..=200).collect::<Vec<u32>>());
        let after = store.stats(None).await.unwrap().index_bytes;
        assert!(after * 2 < before, "{after} against {before}");
        // The words of the rest are still found; those of the gone are not asked for.
        let query = fts::TextQuery {
            kinds: vec![crate::mime::text::TextKind::Subject],
            needle: b"note".to_vec(),
        };
        let answer = store.text_lookup(inbox, vec![query]).await.unwrap();
        assert_eq!(answer.maybe[0].as_deref(), Some(&uids[..]));
    });
}

#[test]
fn readers_of_one_pack_at_once_decompress_it_once() {
    let (_dir, store) = temp_store(0);
    let (_, inbox) = deliver_big(&store, 700);
    let packs = &store.codec().packs;
    packs.drop_unused(std::time::Duration::ZERO);
    let before = packs.decompressed();
    let readers = 8;
    let start = std::sync::Barrier::new(readers);
    std::thread::scope(|s| {
        for _ in 0..readers {
            s.spawn(|| {
                start.wait();
                smol::block_on(assert_big(&store, inbox, 1));
            });
        }
    });
    assert_eq!(packs.decompressed() - before, 1);
}
