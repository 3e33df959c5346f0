//! Store operations for POP3 (RFC 1939): the maildrop snapshot taken at login, the
//! first-retrieval time, and the UPDATE state's removal of DELEted messages.

use redb::{ReadableTable, WriteTransaction};

use super::blob::{self, Extent};
use super::mailboxes;
use super::messages::Reader;
use super::schema::{self, MESSAGES, MessageRecord};
use super::writer::Batch;
use super::{ChangeKind, Origin, Store, StoreError};
use crate::contracts::{MailboxId, MailboxName, Uid};

/// The keyword that hides a message from POP3 while IMAP keeps it (`DelePolicy::Hide`).
pub const POP3_DELETED: &str = "$POP3Deleted";

/// One message of a POP3 maildrop, as the caller's scan function saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pop3Entry<T> {
    pub uid: Uid,
    pub internal_date: i64,
    pub pop3_retrieved: Option<i64>,
    /// The UIDL the message keeps from the server it was moved from, if any
    /// ([`super::KeptIds`]): shown instead of a computed one.
    pub kept_uidl: Option<String>,
    /// What the scan function computed from the message bytes (prefix + blob).
    pub scanned: T,
}

/// What happens to the messages POP3 deleted, applied at QUIT (RFC 1939 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop3Removal {
    /// Expunge them: IMAP sessions see EXPUNGE.
    Expunge,
    /// Keep them, marked with [`POP3_DELETED`] (hidden from later POP3 sessions).
    Hide,
    /// Move them into this mailbox of the same user, creating it if needed.
    Move(MailboxName),
}

impl Store {
    /// Reads a mailbox's messages for a POP3 session in UID order, skipping those
    /// marked [`POP3_DELETED`], and runs `scan` over each one's bytes (prefix + blob) in
    /// the same read transaction, so the snapshot is consistent. `scan` gets the bytes and
    /// the internal date; only what it returns is kept.
    pub async fn pop3_scan<T, F>(
        &self,
        mailbox: MailboxId,
        scan: F,
    ) -> Result<Vec<Pop3Entry<T>>, StoreError>
    where
        T: Send + 'static,
        F: Fn(&[u8], i64) -> T + Send + 'static,
    {
        self.read(move |tx, shared| {
            let t = tx.open_table(MESSAGES)?;
            let mut reader = Reader::new(tx, shared)?;
            let mut kept = super::import::kept_uidls(tx, mailbox.0)?;
            let mut out = Vec::new();
            for row in t.range((mailbox.0, 0)..=(mailbox.0, u32::MAX))? {
                let (k, v) = row?;
                let rec: MessageRecord = schema::decode(v.value())?;
                if rec.keywords.iter().any(|k| k == POP3_DELETED) {
                    continue;
                }
                // A damaged message (its content hash fails) is left out of the
                // maildrop rather than failing every login; `nestbox verify` names it.
                let uid = k.value().1;
                let bytes = match reader.message(&rec, Extent::Whole) {
                    Ok(b) => b,
                    Err(StoreError::Corrupt(why)) => {
                        log::error!(
                            "pop3: mailbox {mailbox} UID {uid}: left out of the maildrop: {why}"
                        );
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                out.push(Pop3Entry {
                    uid: Uid(uid),
                    internal_date: rec.internal_date,
                    pop3_retrieved: rec.pop3_retrieved,
                    kept_uidl: kept.remove(&uid),
                    scanned: scan(&bytes, rec.internal_date),
                });
            }
            Ok(out)
        })
        .await
    }

    /// Marks messages as retrieved by POP3 at `when` (unix seconds), keeping an earlier
    /// mark. Not an IMAP-visible change: no modseq, no feed entry.
    pub async fn set_pop3_retrieved(
        &self,
        mailbox: MailboxId,
        uids: Vec<Uid>,
        when: i64,
    ) -> Result<(), StoreError> {
        self.write(move |tx, _| {
            mailboxes::existing_in(tx, mailbox.0)?;
            let mut t = tx.open_table(MESSAGES)?;
            for uid in uids {
                let Some(v) = t.get((mailbox.0, uid.0))? else {
                    continue;
                };
                let mut rec: MessageRecord = schema::decode(v.value())?;
                drop(v);
                if rec.pop3_retrieved.is_none() {
                    rec.pop3_retrieved = Some(when);
                    t.insert((mailbox.0, uid.0), schema::encode(&rec)?.as_slice())?;
                }
            }
            Ok(())
        })
        .await
    }

    /// The UPDATE state (RFC 1939 §6): applies `removal` to the messages `uids` of
    /// `mailbox` in one transaction, and publishes the changes after the commit. UIDs
    /// that are already gone (an IMAP expunge) are skipped. Returns how many were handled.
    pub async fn pop3_update(
        &self,
        mailbox: MailboxId,
        uids: Vec<Uid>,
        removal: Pop3Removal,
    ) -> Result<u64, StoreError> {
        let uids = super::imap::sorted(uids);
        self.write(move |tx, batch| {
            let Some(mut mb) = mailboxes::load_in(tx, mailbox.0)? else {
                return Err(StoreError::NoSuchMailbox);
            };
            // Validate before mutating: the target of a move must be a proper name.
            let target = match &removal {
                Removal::Move(name) => {
                    let name = name.to_string();
                    if name == mb.name {
                        return Err(StoreError::InvalidName("moving into itself".into()));
                    }
                    Some(name)
                }
                _ => None,
            };
            let mut done = 0u64;
            match (&removal, target) {
                (Removal::Hide, _) => {
                    let mut t = tx.open_table(MESSAGES)?;
                    for uid in &uids {
                        let rec = t
                            .get((mailbox.0, *uid))?
                            .map(|v| schema::decode::<MessageRecord>(v.value()))
                            .transpose()?;
                        let Some(mut rec) = rec else { continue };
                        if !rec.keywords.iter().any(|k| k == POP3_DELETED) {
                            mb.highest_modseq += 1;
                            rec.keywords.push(POP3_DELETED.to_string());
                            rec.modseq = mb.highest_modseq;
                            t.insert((mailbox.0, *uid), schema::encode(&rec)?.as_slice())?;
                        }
                        done += 1;
                    }
                    if done > 0 {
                        batch.announce(mb.user, mailbox, ChangeKind::Flags, Origin::NONE);
                    }
                }
                (Removal::Expunge, _) => {
                    done = expunge_in(tx, batch, &mut mb, &uids, None)?;
                }
                (Removal::Move(_), Some(name)) => {
                    let mut dest = match mailboxes::find_in(tx, mb.user, &name)? {
                        Some(d) => d,
                        None => mailboxes::create_in(tx, batch, mb.user, &name, None)?,
                    };
                    done = expunge_in(tx, batch, &mut mb, &uids, Some(&mut dest))?;
                    if done > 0 {
                        mailboxes::save_in(tx, &dest)?;
                        batch.announce(
                            dest.user,
                            MailboxId(dest.id),
                            ChangeKind::Appended {
                                uid: dest.uidnext.saturating_sub(1),
                            },
                            Origin::NONE,
                        );
                    }
                }
                (Removal::Move(_), None) => {}
            }
            mailboxes::save_in(tx, &mb)?;
            Ok(done)
        })
        .await
    }
}

use Pop3Removal as Removal;

/// Removes `uids` from `mb` ([`super::imap::remove_messages`]). With `dest`, each record
/// moves there under a new UID and keeps its blob reference; without, the blob reference
/// is dropped.
fn expunge_in(
    tx: &WriteTransaction,
    batch: &mut Batch,
    mb: &mut schema::MailboxRecord,
    uids: &[u32],
    mut dest: Option<&mut schema::MailboxRecord>,
) -> Result<u64, StoreError> {
    let removed = super::imap::remove_messages(tx, batch, mb, uids, Origin::NONE)?;
    for (_, mut rec) in removed.iter().cloned() {
        match dest.as_deref_mut() {
            Some(d) => {
                let uid = d.uidnext;
                d.uidnext = uid
                    .checked_add(1)
                    .ok_or_else(|| StoreError::Storage("mailbox UIDs exhausted".into()))?;
                d.highest_modseq = d.highest_modseq.saturating_add(1);
                d.messages = d.messages.saturating_add(1);
                d.bytes = d.bytes.saturating_add(rec.size);
                rec.modseq = d.highest_modseq;
                rec.keywords.retain(|k| k != POP3_DELETED);
                tx.open_table(MESSAGES)?
                    .insert((d.id, uid), schema::encode(&rec)?.as_slice())?;
            }
            None => {
                blob::drop_ref(tx, &rec.blob)?;
                batch.freed = true;
            }
        }
    }
    Ok(removed.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::contracts::{MailboxId, UserId};

    /// Runs `test` on a store with one user and three INBOX messages (UIDs 1..=3), given
    /// the store, the user and the INBOX id.
    fn with_inbox(test: impl AsyncFnOnce(&Store, UserId, MailboxId)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        smol::block_on(async {
            let user = store.add_user("alice", "h".into()).await.unwrap();
            let reqs = (1..=3)
                .map(|i| {
                    let raw = format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes();
                    crate::store::tests::request(&store, user, "INBOX", &raw)
                })
                .collect();
            store.append_many(reqs).await.unwrap();
            let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap().id;
            test(&store, user, inbox).await;
        });
    }

    async fn uids(store: &Store, mailbox: MailboxId) -> Vec<u32> {
        store
            .pop3_scan(mailbox, |b, _| b.len())
            .await
            .unwrap()
            .iter()
            .map(|e| e.uid.0)
            .collect()
    }

    #[test]
    fn retrieved_is_recorded_once() {
        with_inbox(async |store, _, inbox| {
            let modseq = store.messages(inbox).await.unwrap()[1].modseq;
            store
                .set_pop3_retrieved(inbox, vec![Uid(2), Uid(9)], 100)
                .await
                .unwrap();
            store
                .set_pop3_retrieved(inbox, vec![Uid(2)], 200)
                .await
                .unwrap();
            let scan = store.pop3_scan(inbox, |b, _| b.to_vec()).await.unwrap();
            let times: Vec<_> = scan.iter().map(|e| e.pop3_retrieved).collect();
            assert_eq!(times, vec![None, Some(100), None]);
            // Not a change a client sees: the mod-sequence stays.
            assert_eq!(store.messages(inbox).await.unwrap()[1].modseq, modseq);
            assert_eq!(scan[0].scanned, b"Subject: 1\r\n\r\nbody 1\r\n");
        });
    }

    #[test]
    fn update_expunge_publishes_and_skips_missing() {
        with_inbox(async |store, user, inbox| {
            let feed = store.feed().subscribe(user);
            let n = store
                .pop3_update(inbox, vec![Uid(1), Uid(3), Uid(7)], Pop3Removal::Expunge)
                .await
                .unwrap();
            assert_eq!(n, 2);
            assert_eq!(uids(store, inbox).await, vec![2]);
            let change = feed.try_recv().unwrap();
            assert_eq!(change.kind, ChangeKind::Expunged);
            let mb = store.mailbox(user, "INBOX").await.unwrap().unwrap();
            assert_eq!(mb.messages, 1);
        });
    }

    #[test]
    fn update_hide_keeps_the_message_with_a_keyword() {
        with_inbox(async |store, _, inbox| {
            store
                .pop3_update(inbox, vec![Uid(2)], Pop3Removal::Hide)
                .await
                .unwrap();
            assert_eq!(uids(store, inbox).await, vec![1, 3]);
            let all = store.messages(inbox).await.unwrap();
            assert_eq!(all.len(), 3);
            assert_eq!(all[1].keywords, vec![POP3_DELETED.to_string()]);
        });
    }

    #[test]
    fn update_move_creates_the_target_and_keeps_blobs() {
        with_inbox(async |store, user, inbox| {
            store
                .pop3_update(
                    inbox,
                    vec![Uid(1), Uid(2)],
                    Pop3Removal::Move(MailboxName::new("Old/POP").unwrap()),
                )
                .await
                .unwrap();
            assert_eq!(uids(store, inbox).await, vec![3]);
            let old = store.mailbox(user, "Old/POP").await.unwrap().unwrap();
            assert_eq!(old.messages, 2);
            let bytes = store.message_bytes(old.id, Uid(2)).await.unwrap().unwrap();
            assert_eq!(bytes, b"Subject: 2\r\n\r\nbody 2\r\n");
            assert_eq!(
                store
                    .pop3_update(
                        inbox,
                        vec![Uid(3)],
                        Pop3Removal::Move(MailboxName::new("INBOX").unwrap())
                    )
                    .await,
                Err(StoreError::InvalidName("moving into itself".into()))
            );
        });
    }
}
