//! What quota policies and retention rules read and change: a user's usage, the size of
//! the messages a COPY/MOVE would add, message summaries in UID batches, and the
//! retention decisions of one batch applied in one transaction.

use std::sync::Arc;

use redb::{ReadTransaction, ReadableTable};

use crate::contracts::{MailData, MailboxId, Summary, Uid, UserId};
use crate::mime::header::{decoded, header_value};

use super::blob::Extent;
use super::imap::{copy_in, expunge_in, numbers};
use super::mailboxes::{self, canonical_mailbox, create_parents};
use super::messages::Reader;
use super::schema::{self, MAILBOXES, MESSAGES, MailboxRecord, MessageRecord};
use super::{Origin, Store, StoreError};

/// Longest header block a [`Summary`] is read from (enough for From, Subject, List-Id of
/// any sane message; a longer block is cut there).
pub const SUMMARY_HEADER_MAX: usize = 64 * 1024;

pub use crate::contracts::{Usage, UsageReport};

/// One message as retention rules see it: flag names, and the fields they read from
/// `header` decoded (RFC 2047).
fn summary(uid: Uid, rec: MessageRecord, header: &[u8]) -> Summary {
    let mut flags: Vec<String> = rec.flags.names().map(str::to_string).collect();
    flags.extend(rec.keywords);
    let field = |name: &str| header_value(header, name).map(decoded);
    Summary {
        uid,
        internal_date: rec.internal_date,
        save_date: rec.save_date,
        size: rec.size,
        flags,
        pop3_retrieved: rec.pop3_retrieved,
        from: field("From"),
        subject: field("Subject"),
        list_id: field("List-Id"),
    }
}

/// What the hooks read of the store (`crate::contracts`).
impl MailData for Store {
    fn usage(&self, user: UserId) -> Result<UsageReport, String> {
        self.usage_blocking(user).map_err(|e| e.to_string())
    }

    fn disk(&self) -> (u64, u64) {
        self.disk_status().unwrap_or((0, 0))
    }

    fn active_script(&self, user: &str) -> Result<Option<(String, u64)>, String> {
        match self.sieve_active_blocking(user) {
            Ok(active) => Ok(active.map(|a| (a.name, a.version))),
            Err(e) => Err(e.to_string()),
        }
    }

    fn script(&self, user: &str, name: &str) -> Result<String, String> {
        self.sieve_get_blocking(user, name)
            .map_err(|e| e.to_string())
    }

    fn mailbox_exists(&self, user: UserId, name: &str) -> Result<bool, String> {
        match smol::block_on(self.mailbox(user, name)) {
            Ok(found) => Ok(found.is_some()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn shared(&self) -> Arc<dyn MailData> {
        Arc::new(self.clone())
    }
}

/// What one applied retention batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// UIDs expunged (moved ones not included), ascending.
    pub expunged: Vec<u32>,
    /// (target mailbox, source UIDs moved there).
    pub moved: Vec<(String, Vec<u32>)>,
}

/// Sum of the logical bytes of every mailbox in the store, and the database file size:
/// the ratio for [`Usage::physical`].
fn physical_ratio(tx: &ReadTransaction, file_bytes: u64) -> Result<(u64, u64), StoreError> {
    let mut logical = 0u64;
    for row in tx.open_table(MAILBOXES)?.iter()? {
        let (_, v) = row?;
        let rec: MailboxRecord = schema::decode(v.value())?;
        logical = logical.saturating_add(rec.bytes);
    }
    Ok((file_bytes, logical))
}

fn estimate(logical: u64, (file, all): (u64, u64)) -> u64 {
    if all == 0 {
        return 0;
    }
    let est = u128::from(logical) * u128::from(file) / u128::from(all);
    u64::try_from(est).unwrap_or(u64::MAX).min(logical)
}

impl Store {
    /// A user's usage, read on the calling thread: for hooks, which already run on the
    /// blocking pool. Async code uses [`Store::usage`].
    pub fn usage_blocking(&self, user: UserId) -> Result<UsageReport, StoreError> {
        let tx = self.shared.begin_read()?;
        let ratio = physical_ratio(&tx, self.file_size())?;
        let mut out = UsageReport::default();
        for rec in mailboxes::records_of(&tx, user)? {
            let u = Usage {
                messages: rec.messages,
                logical: rec.bytes,
                physical: estimate(rec.bytes, ratio),
            };
            out.total.messages = out.total.messages.saturating_add(u.messages);
            out.total.logical = out.total.logical.saturating_add(u.logical);
            out.total.physical = out.total.physical.saturating_add(u.physical);
            out.mailboxes.push((rec.name, u));
        }
        Ok(out)
    }

    /// [`Store::usage_blocking`] on the blocking pool.
    pub async fn usage(&self, user: UserId) -> Result<UsageReport, StoreError> {
        let store = self.clone();
        smol::unblock(move || store.usage_blocking(user)).await
    }

    /// Octets and count of the messages among `uids` that exist in `mailbox` (what a
    /// COPY or MOVE of them would add to the target).
    pub async fn copy_size(
        &self,
        mailbox: MailboxId,
        uids: Vec<Uid>,
    ) -> Result<(u64, u64), StoreError> {
        self.read(move |tx, _| {
            let t = tx.open_table(MESSAGES)?;
            let (mut bytes, mut count) = (0u64, 0u64);
            for uid in uids {
                if let Some(v) = t.get((mailbox.0, uid.0))? {
                    let rec: MessageRecord = schema::decode(v.value())?;
                    bytes = bytes.saturating_add(rec.size);
                    count += 1;
                }
            }
            Ok((bytes, count))
        })
        .await
    }

    /// Up to `limit` summaries of the messages of `mailbox` with UID > `after`, in UID
    /// order, as retention rules see them.
    pub async fn summaries(
        &self,
        mailbox: MailboxId,
        after: Uid,
        limit: usize,
    ) -> Result<Vec<Summary>, StoreError> {
        let Some(first) = after.0.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.read(move |tx, shared| {
            let t = tx.open_table(MESSAGES)?;
            let mut reader = Reader::new(tx, shared)?;
            let mut out = Vec::new();
            for row in t.range((mailbox.0, first)..=(mailbox.0, u32::MAX))? {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = row?;
                let rec: MessageRecord = schema::decode(v.value())?;
                let mut header = reader.message(&rec, Extent::Header)?;
                header.truncate(SUMMARY_HEADER_MAX);
                out.push(summary(Uid(k.value().1), rec, &header));
            }
            Ok(out)
        })
        .await
    }

    /// Applies one batch of retention decisions in one transaction: expunges `expunge`
    /// and moves each `(target, uids)` (the target and its parents are created when
    /// missing; a move into the mailbox itself is ignored). UIDs already gone are
    /// skipped. Sessions see the result through the change feed after the commit (IMAP
    /// `EXPUNGE` / `EXISTS`).
    pub async fn apply_retention(
        &self,
        mailbox: MailboxId,
        expunge: Vec<u32>,
        moves: Vec<(String, Vec<u32>)>,
    ) -> Result<Applied, StoreError> {
        self.write(move |tx, batch| {
            let src = mailboxes::existing_in(tx, mailbox.0)?;
            let mut applied = Applied::default();
            let mut expunge = expunge;
            expunge.sort_unstable();
            expunge.dedup();
            applied.expunged = expunge_in(tx, batch, mailbox.0, &expunge, Origin::NONE)?;
            for (target, mut uids) in moves {
                let name = canonical_mailbox(&target)?;
                if name == src.name {
                    continue;
                }
                let dst = match mailboxes::find_in(tx, src.user, &name)? {
                    Some(d) => d.id,
                    None => {
                        create_parents(tx, batch, src.user, &name)?;
                        mailboxes::create_in(tx, batch, src.user, &name, None)?.id
                    }
                };
                uids.sort_unstable();
                uids.dedup();
                if let Some(c) = copy_in(tx, batch, mailbox.0, &uids, dst)? {
                    let gone =
                        expunge_in(tx, batch, mailbox.0, &numbers(&c.src_uids), Origin::NONE)?;
                    applied.moved.push((name, gone));
                }
            }
            Ok(applied)
        })
        .await
    }
}

/// Free and total bytes of the file system holding `path` (statvfs); `None` when it
/// cannot be read.
pub fn disk_status(path: &std::path::Path) -> Option<(u64, u64)> {
    let s = rustix::fs::statvfs(path).ok()?;
    let unit = if s.f_frsize > 0 {
        s.f_frsize
    } else {
        s.f_bsize
    };
    Some((
        s.f_bavail.saturating_mul(unit),
        s.f_blocks.saturating_mul(unit),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_estimate_is_proportional_and_capped() {
        assert_eq!(estimate(100, (50, 1000)), 5);
        assert_eq!(estimate(100, (5000, 1000)), 100);
        assert_eq!(estimate(100, (50, 0)), 0);
        assert_eq!(estimate(u64::MAX, (u64::MAX, u64::MAX)), u64::MAX);
    }

    #[test]
    fn disk_status_of_a_real_directory() {
        let (free, total) = disk_status(std::path::Path::new(".")).unwrap();
        assert!(total > 0 && free <= total);
        assert!(disk_status(std::path::Path::new("/no/such/dir")).is_none());
    }
}
