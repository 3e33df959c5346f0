//! Mailboxes: names, UIDVALIDITY, special-use, subscriptions.

use crate::contracts::{MailboxId, ModSeq, UserId};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::schema::{self, MAILBOX_NAMES, MAILBOXES, META, MailboxRecord, SpecialUse};
use super::writer::Batch;
use super::{Change, ChangeKind, Origin, Store, StoreError, now};

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
    batch.changes.push(Change {
        user,
        mailbox: MailboxId(id),
        kind: ChangeKind::Mailbox,
        origin: Origin::NONE,
    });
    Ok(rec)
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

    /// Creates a mailbox.
    pub async fn create_mailbox(
        &self,
        user: UserId,
        name: &str,
    ) -> Result<MailboxInfo, StoreError> {
        let name = name.to_string();
        self.write(move |tx, batch| Ok(create_in(tx, batch, user, &name, None)?.into()))
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
