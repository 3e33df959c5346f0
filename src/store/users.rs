//! Accounts. Password hashing happens in `auth` before a job is queued; the store only
//! keeps the PHC strings.

use crate::contracts::{MailboxId, UserId};
use std::collections::HashMap;
use std::sync::Mutex;

use redb::{ReadableTable, WriteTransaction};

use super::schema::BlobId;
use super::schema::{self, MAILBOX_NAMES, MAILBOXES, MESSAGES, META, USERS, UserRecord};
use super::writer::Batch;
use super::{ChangeKind, MailboxRecord, Origin, Store, StoreError, blob, mailboxes, now};

/// What `user list` shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub created: i64,
}

/// Checks and canonicalises a user name: ASCII letters, digits, `.`, `_`, `-`, at most 64
/// characters, starting with a letter or digit; stored in lower case.
pub fn canonical_name(name: &str) -> Result<String, StoreError> {
    let lower = name.to_ascii_lowercase();
    let ok = !lower.is_empty()
        && lower.len() <= 64
        && lower
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && lower
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(lower)
    } else {
        Err(StoreError::InvalidName(format!(
            "{name:?}: use 1 to 64 letters, digits, '.', '_' or '-'"
        )))
    }
}

pub(crate) fn user_by_name(
    tx: &impl UsersRead,
    name: &str,
) -> Result<Option<UserRecord>, StoreError> {
    tx.user(name)
}

/// Read access to USERS from either kind of transaction.
pub(crate) trait UsersRead {
    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
}

impl UsersRead for redb::ReadTransaction {
    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let t = self.open_table(USERS)?;
        let v = t.get(name)?;
        v.map(|v| schema::decode(v.value())).transpose()
    }
}

impl UsersRead for WriteTransaction {
    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let t = self.open_table(USERS)?;
        let v = t.get(name)?;
        v.map(|v| schema::decode(v.value())).transpose()
    }
}

impl Store {
    /// Creates a user with the default mailboxes (INBOX, Drafts, Sent, Trash, Junk,
    /// Archive; RFC 6154 special-use, all subscribed).
    pub async fn add_user(&self, name: &str, password_hash: String) -> Result<UserId, StoreError> {
        let name = canonical_name(name)?;
        self.write(move |tx, batch| {
            if tx.user(&name)?.is_some() {
                return Err(StoreError::UserExists);
            }
            let id = {
                let mut meta = tx.open_table(META)?;
                let id = meta.get("next_user_id")?.map(|v| v.value()).unwrap_or(1);
                meta.insert("next_user_id", id + 1)?;
                u32::try_from(id)
                    .map(UserId)
                    .map_err(|_| StoreError::Storage("user ids exhausted".into()))?
            };
            let rec = UserRecord {
                id,
                name: name.clone(),
                password_hash,
                created: now(),
                app_passwords: Vec::new(),
            };
            save_user(tx, batch, &rec)?;
            for (mailbox, special) in mailboxes::DEFAULT_MAILBOXES {
                mailboxes::create_in(tx, batch, id, mailbox, *special)?;
            }
            Ok(id)
        })
        .await
    }

    /// Replaces a user's password hash.
    pub async fn set_password(&self, name: &str, password_hash: String) -> Result<(), StoreError> {
        let name = canonical_name(name)?;
        self.write(move |tx, batch| {
            let mut rec = tx.user(&name)?.ok_or(StoreError::NoSuchUser)?;
            rec.password_hash = password_hash;
            save_user(tx, batch, &rec)
        })
        .await
    }

    /// Deletes a user, their mailboxes and messages; blobs no longer referenced are freed.
    pub async fn delete_user(&self, name: &str) -> Result<(), StoreError> {
        let name = canonical_name(name)?;
        self.write(move |tx, batch| delete_user_in(tx, batch, &name))
            .await
    }

    /// All users, by name.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>, StoreError> {
        self.read(|tx, _| {
            let t = tx.open_table(USERS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (_, v) = row?;
                let rec: UserRecord = schema::decode(v.value())?;
                out.push(UserInfo {
                    name: rec.name,
                    created: rec.created,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Looks a user up by login name: `alice`, or `alice@<hostname>` when `hostname` matches.
    pub async fn find_user(
        &self,
        login: &str,
        hostname: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let local = match login.rsplit_once('@') {
            Some((local, domain)) if domain.eq_ignore_ascii_case(hostname) => local,
            Some(_) => return Ok(None),
            None => login,
        };
        let Ok(name) = canonical_name(local) else {
            return Ok(None);
        };
        let generation = match self.shared.users.get(&name) {
            Ok(hit) => return Ok(Some(hit)),
            Err(generation) => generation,
        };
        let key = name.clone();
        let found = self.read(move |tx, _| user_by_name(tx, &key)).await?;
        if let Some(rec) = &found {
            self.shared.users.put(generation, name, rec.clone());
        }
        Ok(found)
    }
}

/// Writes a user's record; every write of `USERS` goes through here (or the delete),
/// so the writer knows to drop the [`UserCache`] after the commit.
pub(super) fn save_user(
    tx: &WriteTransaction,
    batch: &mut Batch,
    rec: &UserRecord,
) -> Result<(), StoreError> {
    tx.open_table(USERS)?
        .insert(rec.name.as_str(), schema::encode(rec)?.as_slice())?;
    batch.users_changed = true;
    Ok(())
}

/// Users found by name, kept in memory so that checking a delivery's recipient (every
/// LMTP RCPT) needs no trip to the blocking pool. Only users that exist are kept (names
/// that a sender makes up cannot fill it), at most [`UserCache::MAX`].
///
/// Coherent with the writer: it drops everything, and bumps the generation, after a
/// commit that wrote `USERS` and before answering that batch's jobs. A lookup notes the
/// generation before it reads and keeps its result only if the generation is unchanged,
/// so a read that raced a change never stores what it saw.
#[derive(Default)]
pub(crate) struct UserCache {
    inner: Mutex<(u64, HashMap<String, UserRecord>)>,
}

impl UserCache {
    const MAX: usize = 1024;

    /// The user, or the generation to hand to [`UserCache::put`].
    fn get(&self, name: &str) -> Result<UserRecord, u64> {
        match self.inner.lock() {
            Ok(g) => g.1.get(name).cloned().ok_or(g.0),
            Err(_) => Err(u64::MAX),
        }
    }

    fn put(&self, generation: u64, name: String, rec: UserRecord) {
        if let Ok(mut g) = self.inner.lock()
            && g.0 == generation
        {
            if g.1.len() >= Self::MAX {
                g.1.clear();
            }
            g.1.insert(name, rec);
        }
    }

    pub(crate) fn invalidate(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.0 = g.0.wrapping_add(1);
            g.1.clear();
        }
    }
}

fn delete_user_in(tx: &WriteTransaction, batch: &mut Batch, name: &str) -> Result<(), StoreError> {
    let rec = tx.user(name)?.ok_or(StoreError::NoSuchUser)?;
    let ids: Vec<u64> = mailboxes::names_of(&tx.open_table(MAILBOX_NAMES)?, rec.id)?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    for id in ids {
        let hashes: Vec<BlobId> = {
            let mut messages = tx.open_table(MESSAGES)?;
            let mut hashes = Vec::new();
            for row in messages.extract_from_if((id, 0)..=(id, u32::MAX), |_, _| true)? {
                let (_, v) = row?;
                let m: super::MessageRecord = schema::decode(v.value())?;
                hashes.push(m.blob);
            }
            hashes
        };
        for h in hashes {
            blob::drop_ref(tx, &h)?;
            batch.freed = true;
        }
        let mut mailboxes = tx.open_table(MAILBOXES)?;
        if let Some(v) = mailboxes.remove(id)? {
            let mb: MailboxRecord = schema::decode(v.value())?;
            tx.open_table(MAILBOX_NAMES)?
                .remove((rec.id.0, mb.name.as_str()))?;
        }
        let mut expunged = tx.open_table(super::schema::EXPUNGED)?;
        for row in expunged.extract_from_if((id, 0)..=(id, u32::MAX), |_, _| true)? {
            row?;
        }
    }
    super::sieve::delete_all(tx, rec.id)?;
    super::metadata::delete_in(tx, rec.id, None)?;
    tx.open_table(USERS)?.remove(name)?;
    batch.users_changed = true;
    batch.announce(rec.id, MailboxId(0), ChangeKind::Mailbox, Origin::NONE);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_name("Alice").as_deref(), Ok("alice"));
        assert!(canonical_name("a.b-c_d9").is_ok());
        for bad in ["", ".x", "a b", "a/b", "ä", &"x".repeat(65)] {
            assert!(canonical_name(bad).is_err(), "{bad:?}");
        }
    }
}
