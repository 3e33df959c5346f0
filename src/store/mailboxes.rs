//! Mailboxes and their lifecycle: names, UIDVALIDITY, special-use, CREATE (with the
//! missing parents), RENAME (with the children, and RENAME INBOX), DELETE,
//! subscriptions. Each write is one group-committed job that validates before it mutates
//! and publishes its [`Change`]s after the commit.

use crate::contracts::{MailboxId, ModSeq, UserId};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::blob;
use super::import::clear_mailbox_rows;
use super::schema::{
    self, EXPUNGED, MAILBOX_NAMES, MAILBOXES, MESSAGES, META, MailboxRecord, MessageRecord,
    POP3_UIDLS, SUBSCRIPTIONS, SpecialUse,
};
use super::writer::Batch;
use super::{ChangeKind, Origin, Store, StoreError, now};

/// The mailboxes every new user gets, with their RFC 6154 attributes.
pub const DEFAULT_MAILBOXES: &[(&str, Option<SpecialUse>)] = &[
    ("INBOX", None),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Sent", Some(SpecialUse::Sent)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

/// Hierarchy delimiter (RFC 9051 §5.1).
pub const DELIMITER: char = crate::contracts::MAILBOX_DELIMITER;

/// A mailbox as listed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MailboxInfo {
    pub id: MailboxId,
    pub name: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: ModSeq,
    pub subscribed: bool,
    pub special_use: Option<SpecialUse>,
    pub messages: u64,
    pub bytes: u64,
}

impl From<MailboxRecord> for MailboxInfo {
    fn from(r: MailboxRecord) -> Self {
        MailboxInfo {
            id: MailboxId(r.id),
            name: r.name,
            uidvalidity: r.uidvalidity,
            uidnext: r.uidnext,
            highest_modseq: ModSeq(r.highest_modseq),
            subscribed: r.subscribed,
            special_use: r.special_use,
            messages: r.messages,
            bytes: r.bytes,
        }
    }
}

/// Checks and canonicalises a mailbox name ([`crate::contracts::canonical_mailbox`]).
pub fn canonical_mailbox(name: &str) -> Result<String, StoreError> {
    crate::contracts::canonical_mailbox(name).map_err(|e| StoreError::InvalidName(e.to_string()))
}

pub(crate) fn next_uidvalidity(tx: &WriteTransaction) -> Result<u32, StoreError> {
    let mut meta = tx.open_table(META)?;
    let last = meta
        .get("last_uidvalidity")?
        .map(|v| v.value())
        .unwrap_or(0);
    // Time-based, strictly increasing, never 0 and within u32 (RFC 9051 §2.3.1.1).
    let v = (now().max(1) as u64).max(last + 1) & 0xFFFF_FFFF;
    let v = if v <= last { last + 1 } else { v };
    let v = u32::try_from(v).unwrap_or(1).max(1);
    meta.insert("last_uidvalidity", u64::from(v))?;
    Ok(v)
}

pub(crate) fn find_in(
    tx: &WriteTransaction,
    user: UserId,
    name: &str,
) -> Result<Option<MailboxRecord>, StoreError> {
    let id = tx
        .open_table(MAILBOX_NAMES)?
        .get((user.0, name))?
        .map(|v| v.value());
    match id {
        Some(id) => load_in(tx, id),
        None => Ok(None),
    }
}

/// A user's mailbox names and ids, in name order (`MAILBOX_NAMES`, in a read or a write
/// transaction).
pub(crate) fn names_of(
    names: &impl ReadableTable<(u32, &'static str), u64>,
    user: UserId,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut out = Vec::new();
    for row in names.range(schema::user_names(user))? {
        let (k, id) = row?;
        let (u, name) = k.value();
        if u == user.0 {
            out.push((name.to_owned(), id.value()));
        }
    }
    Ok(out)
}

/// A user's mailbox records, in name order.
pub(crate) fn records_of(
    tx: &ReadTransaction,
    user: UserId,
) -> Result<Vec<MailboxRecord>, StoreError> {
    let boxes = tx.open_table(MAILBOXES)?;
    let mut out = Vec::new();
    for (_, id) in names_of(&tx.open_table(MAILBOX_NAMES)?, user)? {
        if let Some(v) = boxes.get(id)? {
            out.push(schema::decode(v.value())?);
        }
    }
    Ok(out)
}

pub(crate) fn load_in(tx: &WriteTransaction, id: u64) -> Result<Option<MailboxRecord>, StoreError> {
    record_of(&tx.open_table(MAILBOXES)?, id)
}

/// The record of mailbox `id`, which must exist (`NoSuchMailbox` otherwise).
pub(crate) fn existing_in(tx: &WriteTransaction, id: u64) -> Result<MailboxRecord, StoreError> {
    load_in(tx, id)?.ok_or(StoreError::NoSuchMailbox)
}

/// The record of mailbox `id` in the opened [`MAILBOXES`], if there is one (in a read or
/// a write transaction).
pub(crate) fn record_of(
    boxes: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<Option<MailboxRecord>, StoreError> {
    boxes
        .get(id)?
        .map(|v| schema::decode(v.value()))
        .transpose()
}

pub(crate) fn save_in(tx: &WriteTransaction, rec: &MailboxRecord) -> Result<(), StoreError> {
    tx.open_table(MAILBOXES)?
        .insert(rec.id, schema::encode(rec)?.as_slice())?;
    Ok(())
}

pub(crate) fn create_in(
    tx: &WriteTransaction,
    batch: &mut Batch,
    user: UserId,
    name: &str,
    special_use: Option<SpecialUse>,
) -> Result<MailboxRecord, StoreError> {
    let name = canonical_mailbox(name)?;
    if find_in(tx, user, &name)?.is_some() {
        return Err(StoreError::MailboxExists);
    }
    let uidvalidity = next_uidvalidity(tx)?;
    let id = {
        let mut meta = tx.open_table(META)?;
        let id = meta.get("next_mailbox_id")?.map(|v| v.value()).unwrap_or(1);
        meta.insert("next_mailbox_id", id + 1)?;
        id
    };
    let rec = MailboxRecord {
        id,
        user,
        name: name.clone(),
        uidvalidity,
        uidnext: 1,
        highest_modseq: 1,
        subscribed: true,
        special_use,
        messages: 0,
        bytes: 0,
    };
    save_in(tx, &rec)?;
    tx.open_table(MAILBOX_NAMES)?
        .insert((user.0, name.as_str()), id)?;
    batch.announce(user, MailboxId(id), ChangeKind::Mailbox, Origin::NONE);
    Ok(rec)
}

/// A user's mailboxes named `name` or below it (`name/...`), as (name, id).
fn subtree(
    tx: &WriteTransaction,
    user: UserId,
    name: &str,
) -> Result<Vec<(String, u64)>, StoreError> {
    let names = tx.open_table(MAILBOX_NAMES)?;
    let below = format!("{name}{DELIMITER}");
    let mut out = Vec::new();
    for row in names.range((user.0, name)..(user.0.saturating_add(1), ""))? {
        let (k, id) = row?;
        let (u, n) = k.value();
        if u != user.0 {
            break;
        }
        if n == name || n.starts_with(&below) {
            out.push((n.to_string(), id.value()));
        } else if !n.starts_with(name) {
            // Names sort after `name` but share no prefix: the subtree is over.
            break;
        }
    }
    Ok(out)
}

/// Creates the missing ancestors of `name` (`a` and `a/b` for `a/b/c`).
pub(super) fn create_parents(
    tx: &WriteTransaction,
    batch: &mut Batch,
    user: UserId,
    name: &str,
) -> Result<(), StoreError> {
    let mut prefix = String::new();
    let levels: Vec<&str> = name.split(DELIMITER).collect();
    let parents = levels.len().saturating_sub(1);
    for level in levels.into_iter().take(parents) {
        if !prefix.is_empty() {
            prefix.push(DELIMITER);
        }
        prefix.push_str(level);
        if find_in(tx, user, &prefix)?.is_none() {
            create_in(tx, batch, user, &prefix, None)?;
        }
    }
    Ok(())
}

/// DELETE of the user's mailbox `name` (canonical) in `tx`; see [`Store::delete_mailbox`].
pub(super) fn delete_in(
    tx: &WriteTransaction,
    batch: &mut Batch,
    user: UserId,
    name: &str,
) -> Result<u64, StoreError> {
    if is_inbox(name) {
        return Err(StoreError::InvalidName("INBOX cannot be deleted".into()));
    }
    let mb = find_in(tx, user, name)?.ok_or(StoreError::NoSuchMailbox)?;
    if subtree(tx, user, name)?.len() > 1 {
        return Err(StoreError::HasChildren);
    }
    let mut removed = 0u64;
    {
        let mut t = tx.open_table(MESSAGES)?;
        let mut doomed = Vec::new();
        for row in t.range((mb.id, 0)..=(mb.id, u32::MAX))? {
            let (k, v) = row?;
            let rec: MessageRecord = schema::decode(v.value())?;
            doomed.push((k.value().1, rec.blob));
        }
        for (uid, hash) in doomed {
            t.remove((mb.id, uid))?;
            blob::drop_ref(tx, &hash)?;
            batch.freed = true;
            removed = removed.saturating_add(1);
        }
    }
    clear_mailbox_rows(tx, EXPUNGED, mb.id)?;
    clear_mailbox_rows(tx, POP3_UIDLS, mb.id)?;
    // RFC 5464 §4.1: a mailbox created later under this name starts without them.
    super::metadata::delete_in(tx, user, Some(mb.id))?;
    tx.open_table(MAILBOXES)?.remove(mb.id)?;
    tx.open_table(MAILBOX_NAMES)?.remove((user.0, name))?;
    if mb.subscribed {
        tx.open_table(SUBSCRIPTIONS)?.insert((user.0, name), ())?;
    }
    batch.announce(user, MailboxId(mb.id), ChangeKind::Mailbox, Origin::NONE);
    Ok(removed)
}

fn is_inbox(name: &str) -> bool {
    name == "INBOX"
}

/// RENAME INBOX: a new mailbox gets INBOX's messages with their UIDs; INBOX stays, empty.
fn rename_inbox(
    tx: &WriteTransaction,
    batch: &mut Batch,
    mut inbox: MailboxRecord,
    new: &str,
) -> Result<(), StoreError> {
    let user = inbox.user;
    create_parents(tx, batch, user, new)?;
    let mut dst = create_in(tx, batch, user, new, None)?;
    // RFC 5464 §4.1: INBOX keeps its annotations, the new mailbox gets a copy.
    super::metadata::copy_mailbox_in(tx, user, inbox.id, dst.id)?;
    let mut moved = Vec::new();
    {
        let mut t = tx.open_table(MESSAGES)?;
        let rows: Vec<(u32, Vec<u8>)> = t
            .range((inbox.id, 0)..=(inbox.id, u32::MAX))?
            .map(|r| r.map(|(k, v)| (k.value().1, v.value().to_vec())))
            .collect::<Result<_, _>>()?;
        for (uid, bytes) in rows {
            t.remove((inbox.id, uid))?;
            t.insert((dst.id, uid), bytes.as_slice())?;
            moved.push(uid);
        }
    }
    dst.uidnext = inbox.uidnext;
    dst.highest_modseq = inbox.highest_modseq.max(dst.highest_modseq);
    dst.messages = inbox.messages;
    dst.bytes = inbox.bytes;
    save_in(tx, &dst)?;
    inbox.messages = 0;
    inbox.bytes = 0;
    if !moved.is_empty() {
        inbox.highest_modseq = inbox.highest_modseq.saturating_add(1);
        super::imap::record_expunged(tx, &inbox, moved.iter().copied())?;
        batch.announce(
            user,
            MailboxId(inbox.id),
            ChangeKind::Expunged,
            Origin::NONE,
        );
        batch.announce(
            user,
            MailboxId(dst.id),
            ChangeKind::Appended {
                uid: dst.uidnext.saturating_sub(1),
            },
            Origin::NONE,
        );
    }
    save_in(tx, &inbox)?;
    Ok(())
}

impl Store {
    /// A user's mailboxes, by name.
    pub async fn mailboxes(&self, user: UserId) -> Result<Vec<MailboxInfo>, StoreError> {
        self.read(move |tx, _| Ok(records_of(tx, user)?.into_iter().map(Into::into).collect()))
            .await
    }

    /// Looks a mailbox up by name.
    pub async fn mailbox(
        &self,
        user: UserId,
        name: &str,
    ) -> Result<Option<MailboxInfo>, StoreError> {
        let name = canonical_mailbox(name)?;
        self.read(move |tx, _| {
            let id = tx
                .open_table(MAILBOX_NAMES)?
                .get((user.0, name.as_str()))?
                .map(|v| v.value());
            let Some(id) = id else { return Ok(None) };
            let boxes = tx.open_table(MAILBOXES)?;
            let v = boxes.get(id)?;
            Ok(v.map(|v| schema::decode::<MailboxRecord>(v.value()))
                .transpose()?
                .map(Into::into))
        })
        .await
    }

    /// RENAME (RFC 9051 §6.3.6, RFC 3501 §6.3.5). Children move with the mailbox and
    /// missing parents of the new name are created. Renaming INBOX moves its messages
    /// (same UIDs) into a new mailbox with a new UIDVALIDITY and leaves INBOX empty,
    /// with its UIDNEXT unchanged and its children where they are.
    ///
    /// Errors: `NoSuchMailbox` (old missing), `MailboxExists` (new, or a renamed
    /// child's new name, exists), `InvalidName` (bad name, or into its own subtree).
    pub async fn rename_mailbox(
        &self,
        user: UserId,
        old: &str,
        new: &str,
    ) -> Result<(), StoreError> {
        let old = canonical_mailbox(old)?;
        let new = canonical_mailbox(new)?;
        self.write(move |tx, batch| {
            let src = find_in(tx, user, &old)?.ok_or(StoreError::NoSuchMailbox)?;
            if find_in(tx, user, &new)?.is_some() {
                return Err(StoreError::MailboxExists);
            }
            if new.starts_with(&format!("{old}{DELIMITER}")) {
                return Err(StoreError::InvalidName(
                    "a mailbox cannot be moved into itself".into(),
                ));
            }
            if is_inbox(&old) {
                return rename_inbox(tx, batch, src, &new);
            }
            let moving = subtree(tx, user, &old)?;
            let mut renamed = Vec::with_capacity(moving.len());
            for (name, id) in moving {
                let suffix = name.get(old.len()..).unwrap_or_default();
                let target = canonical_mailbox(&format!("{new}{suffix}"))?;
                if target != new && find_in(tx, user, &target)?.is_some() {
                    return Err(StoreError::MailboxExists);
                }
                renamed.push((name, id, target));
            }
            // Validated: now mutate.
            create_parents(tx, batch, user, &new)?;
            for (name, id, target) in renamed {
                let mut rec = existing_in(tx, id)?;
                {
                    let mut names = tx.open_table(MAILBOX_NAMES)?;
                    names.remove((user.0, name.as_str()))?;
                    names.insert((user.0, target.as_str()), id)?;
                }
                rec.name = target;
                // RFC 9051 §2.3.1.1: UIDVALIDITY of a name only grows. The new name may
                // have been a deleted mailbox's with a higher value (`DELETE B; RENAME A
                // B`), so the renamed mailbox takes a fresh one; its UIDs stay.
                rec.uidvalidity = next_uidvalidity(tx)?;
                save_in(tx, &rec)?;
                batch.announce(user, MailboxId(id), ChangeKind::Mailbox, Origin::NONE);
            }
            Ok(())
        })
        .await
    }

    /// CREATE (RFC 9051 §6.3.4): the mailbox and its missing parents in one job. The
    /// whole name is validated first, so a name the store refuses creates nothing.
    pub async fn create_mailbox(
        &self,
        user: UserId,
        name: &str,
    ) -> Result<MailboxInfo, StoreError> {
        let name = canonical_mailbox(name)?;
        self.write(move |tx, batch| {
            if find_in(tx, user, &name)?.is_some() {
                return Err(StoreError::MailboxExists);
            }
            create_parents(tx, batch, user, &name)?;
            Ok(create_in(tx, batch, user, &name, None)?.into())
        })
        .await
    }

    /// DELETE (RFC 9051 §6.3.5): removes the mailbox and its messages, freeing blobs no
    /// other message shares. INBOX is refused (`InvalidName`); a mailbox with children is
    /// refused with `HasChildren` (the RFC 9051 option; we have no `\Noselect`
    /// placeholders). A subscription to the name survives (RFC 9051 §6.3.7). Returns how
    /// many messages went.
    pub async fn delete_mailbox(&self, user: UserId, name: &str) -> Result<u64, StoreError> {
        let name = canonical_mailbox(name)?;
        self.write(move |tx, batch| delete_in(tx, batch, user, &name))
            .await
    }

    /// SUBSCRIBE / UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8). Subscriptions are per name:
    /// a name with no mailbox can be subscribed (it is kept in a table of its own and
    /// listed by [`Store::subscriptions`]), and deleting a mailbox keeps its
    /// subscription. Returns whether the name was subscribed before.
    pub async fn set_subscribed(
        &self,
        user: UserId,
        name: &str,
        subscribed: bool,
    ) -> Result<bool, StoreError> {
        let name = canonical_mailbox(name)?;
        self.write(move |tx, batch| {
            let mut subs = tx.open_table(SUBSCRIPTIONS)?;
            let mut was = subs.get((user.0, name.as_str()))?.is_some();
            match find_in(tx, user, &name)? {
                Some(mut rec) => {
                    was |= rec.subscribed;
                    if rec.subscribed != subscribed {
                        rec.subscribed = subscribed;
                        save_in(tx, &rec)?;
                        batch.announce(user, MailboxId(rec.id), ChangeKind::Mailbox, Origin::NONE);
                    }
                    if !subscribed {
                        subs.remove((user.0, name.as_str()))?;
                    }
                }
                None => {
                    if subscribed {
                        subs.insert((user.0, name.as_str()), ())?;
                    } else {
                        subs.remove((user.0, name.as_str()))?;
                    }
                    if was != subscribed {
                        // No mailbox to name: NOTIFY SubscriptionChange (RFC 5465 §5.5)
                        // still hears of it.
                        batch.announce(user, MailboxId(0), ChangeKind::Mailbox, Origin::NONE);
                    }
                }
            }
            Ok(was)
        })
        .await
    }

    /// Every subscribed name of a user, mailbox or not, sorted (LSUB, LIST (SUBSCRIBED)).
    pub async fn subscriptions(&self, user: UserId) -> Result<Vec<String>, StoreError> {
        self.read(move |tx, _| {
            let mut out: Vec<String> = records_of(tx, user)?
                .into_iter()
                .filter(|rec| rec.subscribed)
                .map(|rec| rec.name)
                .collect();
            match tx.open_table(SUBSCRIPTIONS) {
                Ok(subs) => {
                    for row in subs.range(schema::user_names(user))? {
                        let (k, _) = row?;
                        let (u, n) = k.value();
                        if u == user.0 {
                            out.push(n.to_string());
                        }
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(e.into()),
            }
            out.sort();
            out.dedup();
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names() {
        assert_eq!(canonical_mailbox("inbox").as_deref(), Ok("INBOX"));
        assert_eq!(canonical_mailbox("Inbox/Sub").as_deref(), Ok("INBOX/Sub"));
        assert_eq!(canonical_mailbox("Inboxes").as_deref(), Ok("Inboxes"));
        assert_eq!(canonical_mailbox("Été/Reçu").as_deref(), Ok("Été/Reçu"));
        for bad in ["", "a//b", "/a", "a/", "a\u{0}b", "a\nb"] {
            assert!(canonical_mailbox(bad).is_err(), "{bad:?}");
        }
    }
}
