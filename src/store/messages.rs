//! Messages in mailboxes: append, read back, expunge, statistics.

use std::sync::Arc;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::blob::{self, PreparedBlob};
use super::mailboxes::{self, canonical_mailbox};
use super::schema::{
    self, BLOB_DATA, BLOB_META, BLOBS, BlobRecord, DICTS, EXPUNGED, MAILBOXES, MESSAGES,
    MailboxRecord, MessageRecord, SystemFlags, USERS, UserRecord,
};
use super::writer::Batch;
use super::{Change, ChangeKind, Store, StoreError, now};

/// One copy of a message to store.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub user: u32,
    pub mailbox: String,
    /// Create the mailbox if it does not exist (a filter's file-into, import).
    pub create: bool,
    pub blob: Arc<PreparedBlob>,
    /// Per-delivery trace headers, see [`MessageRecord::prefix`].
    pub prefix: Vec<u8>,
    pub flags: SystemFlags,
    pub keywords: Vec<String>,
    pub internal_date: i64,
    pub envelope_from: Option<String>,
}

/// Where a stored copy went (for APPENDUID and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub mailbox: u64,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// A message as listed (no body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageInfo {
    pub uid: u32,
    pub flags: SystemFlags,
    pub keywords: Vec<String>,
    pub internal_date: i64,
    pub save_date: i64,
    pub size: u64,
    pub modseq: u64,
    pub envelope_from: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MailboxStats {
    pub name: String,
    pub messages: u64,
    /// Octets as clients see them.
    pub logical: u64,
    /// Compressed octets on disk; a blob shared by n copies counts 1/n per copy.
    pub physical: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserStats {
    pub name: String,
    pub messages: u64,
    pub logical: u64,
    pub physical: u64,
    pub mailboxes: Vec<MailboxStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub users: Vec<UserStats>,
    /// Distinct blobs, their raw and compressed sizes, and the dictionaries' size.
    pub blobs: u64,
    pub blob_raw: u64,
    pub blob_stored: u64,
    pub dict_bytes: u64,
    /// The database file.
    pub file_bytes: u64,
}

fn store_one(
    tx: &WriteTransaction,
    batch: &mut Batch,
    req: &AppendRequest,
) -> Result<Appended, StoreError> {
    // Validate first: nothing is written unless the copy can be stored.
    let name = canonical_mailbox(&req.mailbox)?;
    let mut mb = match mailboxes::find_in(tx, req.user, &name)? {
        Some(mb) => mb,
        None if req.create => mailboxes::create_in(tx, batch, req.user, &name, None)?,
        None => return Err(StoreError::NoSuchMailbox),
    };
    let uid = mb.uidnext;
    let next = uid
        .checked_add(1)
        .ok_or_else(|| StoreError::Storage("mailbox UIDs exhausted".into()))?;
    blob::add_ref(tx, &req.blob, &mut batch.undicted)?;
    mb.uidnext = next;
    mb.highest_modseq += 1;
    let size = req.prefix.len() as u64 + req.blob.raw_len;
    mb.messages += 1;
    mb.bytes += size;
    let rec = MessageRecord {
        blob: req.blob.hash,
        prefix: req.prefix.clone(),
        flags: req.flags,
        keywords: req.keywords.clone(),
        internal_date: req.internal_date,
        save_date: now(),
        size,
        modseq: mb.highest_modseq,
        pop3_retrieved: None,
        envelope_from: req.envelope_from.clone(),
    };
    tx.open_table(MESSAGES)?
        .insert((mb.id, uid), schema::encode(&rec)?.as_slice())?;
    mailboxes::save_in(tx, &mb)?;
    batch.changes.push(Change {
        user: req.user,
        mailbox: mb.id,
        kind: ChangeKind::Appended { uid },
    });
    Ok(Appended {
        mailbox: mb.id,
        uidvalidity: mb.uidvalidity,
        uid,
    })
}

pub(super) fn read_message(
    tx: &ReadTransaction,
    shared: &super::Shared,
    rec: &MessageRecord,
) -> Result<Vec<u8>, StoreError> {
    let blobs = tx.open_table(BLOBS)?;
    let data = tx.open_table(BLOB_DATA)?;
    let brec: BlobRecord = match blobs.get(&rec.blob)? {
        Some(v) => schema::decode(v.value())?,
        None => return Err(StoreError::Corrupt("message without blob".into())),
    };
    let stored = data
        .get(&rec.blob)?
        .ok_or_else(|| StoreError::Corrupt("blob without data".into()))?;
    let body = shared.codec.decompress(&brec, stored.value())?;
    let mut out = Vec::with_capacity(rec.prefix.len() + body.len());
    out.extend_from_slice(&rec.prefix);
    out.extend_from_slice(&body);
    Ok(out)
}

impl Store {
    /// Stores several copies in one transaction; each copy succeeds or fails on its own,
    /// unless the storage itself fails (then the outer error, and nothing is stored).
    pub async fn append_many(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Result<Appended, StoreError>>, StoreError> {
        self.write(move |tx, batch| {
            let mut out = Vec::with_capacity(requests.len());
            for req in &requests {
                match store_one(tx, batch, req) {
                    Err(e) if e.is_fault() => return Err(e),
                    r => out.push(r),
                }
            }
            Ok(out)
        })
        .await
    }

    /// Lists a mailbox's messages in UID order.
    pub async fn messages(&self, mailbox: u64) -> Result<Vec<MessageInfo>, StoreError> {
        self.read(move |tx, _| {
            let t = tx.open_table(MESSAGES)?;
            let mut out = Vec::new();
            for row in t.range((mailbox, 0)..=(mailbox, u32::MAX))? {
                let (k, v) = row?;
                let m: MessageRecord = schema::decode(v.value())?;
                out.push(MessageInfo {
                    uid: k.value().1,
                    flags: m.flags,
                    keywords: m.keywords,
                    internal_date: m.internal_date,
                    save_date: m.save_date,
                    size: m.size,
                    modseq: m.modseq,
                    envelope_from: m.envelope_from,
                });
            }
            Ok(out)
        })
        .await
    }

    /// The full bytes of one message as clients see them (prefix + blob).
    pub async fn message_bytes(
        &self,
        mailbox: u64,
        uid: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |tx, shared| {
            let t = tx.open_table(MESSAGES)?;
            let Some(v) = t.get((mailbox, uid))? else {
                return Ok(None);
            };
            let rec: MessageRecord = schema::decode(v.value())?;
            Ok(Some(read_message(tx, shared, &rec)?))
        })
        .await
    }

    /// The parsed structure stored for a message (`mime::MessageMeta`, postcard), and the
    /// length of its per-delivery prefix (offsets in the structure are relative to the blob).
    pub async fn message_meta(
        &self,
        mailbox: u64,
        uid: u32,
    ) -> Result<Option<(Vec<u8>, usize)>, StoreError> {
        self.read(move |tx, _| {
            let t = tx.open_table(MESSAGES)?;
            let Some(v) = t.get((mailbox, uid))? else {
                return Ok(None);
            };
            let rec: MessageRecord = schema::decode(v.value())?;
            let metas = tx.open_table(BLOB_META)?;
            let meta = metas
                .get(&rec.blob)?
                .ok_or_else(|| StoreError::Corrupt("blob without metadata".into()))?;
            Ok(Some((meta.value().to_vec(), rec.prefix.len())))
        })
        .await
    }

    /// Removes messages by UID (UIDs not present are ignored). Returns how many went.
    pub async fn expunge(&self, mailbox: u64, uids: Vec<u32>) -> Result<u64, StoreError> {
        self.write(move |tx, batch| {
            let Some(mut mb) = mailboxes::load_in(tx, mailbox)? else {
                return Err(StoreError::NoSuchMailbox);
            };
            let mut removed = Vec::new();
            {
                let mut t = tx.open_table(MESSAGES)?;
                for uid in &uids {
                    if let Some(v) = t.remove((mailbox, *uid))? {
                        let rec: MessageRecord = schema::decode(v.value())?;
                        removed.push((*uid, rec));
                    }
                }
            }
            if removed.is_empty() {
                return Ok(0);
            }
            mb.highest_modseq += 1;
            let mut gone = tx.open_table(EXPUNGED)?;
            for (uid, rec) in &removed {
                blob::drop_ref(tx, &rec.blob)?;
                mb.messages = mb.messages.saturating_sub(1);
                mb.bytes = mb.bytes.saturating_sub(rec.size);
                gone.insert((mailbox, *uid), mb.highest_modseq)?;
            }
            mailboxes::save_in(tx, &mb)?;
            batch.changes.push(Change {
                user: mb.user,
                mailbox,
                kind: ChangeKind::Expunged,
            });
            Ok(removed.len() as u64)
        })
        .await
    }

    /// Usage per user and mailbox, and the store's totals.
    pub async fn stats(&self, user: Option<String>) -> Result<Stats, StoreError> {
        let file_bytes = self.file_size();
        self.read(move |tx, _| {
            let users = tx.open_table(USERS)?;
            let boxes = tx.open_table(MAILBOXES)?;
            let msgs = tx.open_table(MESSAGES)?;
            let blobs = tx.open_table(BLOBS)?;
            let mut by_user: Vec<UserStats> = Vec::new();
            let mut ids: Vec<u32> = Vec::new();
            for row in users.iter()? {
                let (name, v) = row?;
                if user.as_deref().is_some_and(|u| u != name.value()) {
                    continue;
                }
                let rec: UserRecord = schema::decode(v.value())?;
                ids.push(rec.id);
                by_user.push(UserStats {
                    name: rec.name,
                    ..Default::default()
                });
            }
            if let Some(u) = &user
                && by_user.is_empty()
            {
                log::debug!("stats: no user {u}");
                return Err(StoreError::NoSuchUser);
            }
            for row in boxes.iter()? {
                let (_, v) = row?;
                let mb: MailboxRecord = schema::decode(v.value())?;
                let Some(pos) = ids.iter().position(|id| *id == mb.user) else {
                    continue;
                };
                let mut ms = MailboxStats {
                    name: mb.name.clone(),
                    ..Default::default()
                };
                for row in msgs.range((mb.id, 0)..=(mb.id, u32::MAX))? {
                    let (_, v) = row?;
                    let m: MessageRecord = schema::decode(v.value())?;
                    ms.messages += 1;
                    ms.logical += m.size;
                    if let Some(b) = blobs.get(&m.blob)? {
                        let b: BlobRecord = schema::decode(b.value())?;
                        ms.physical +=
                            b.stored_len / u64::from(b.refs.max(1)) + m.prefix.len() as u64;
                    }
                }
                if let Some(us) = by_user.get_mut(pos) {
                    us.messages += ms.messages;
                    us.logical += ms.logical;
                    us.physical += ms.physical;
                    us.mailboxes.push(ms);
                }
            }
            for us in &mut by_user {
                us.mailboxes.sort_by(|a, b| a.name.cmp(&b.name));
            }
            let mut stats = Stats {
                users: by_user,
                file_bytes,
                ..Default::default()
            };
            for row in blobs.iter()? {
                let (_, v) = row?;
                let b: BlobRecord = schema::decode(v.value())?;
                stats.blobs += 1;
                stats.blob_raw += b.raw_len;
                stats.blob_stored += b.stored_len;
            }
            for row in tx.open_table(DICTS)?.iter()? {
                let (_, v) = row?;
                stats.dict_bytes += v.value().len() as u64;
            }
            Ok(stats)
        })
        .await
    }

    /// Checks every committed page's checksum (used after crashes and by tests).
    pub async fn verify(&self) -> Result<bool, StoreError> {
        let shared = self.shared.clone();
        smol::unblock(move || shared.with_db_mut(|db| Ok(db.check_integrity()?))).await
    }
}
