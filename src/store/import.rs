//! Moving in from another server with the same IMAP and POP3 ids (`nestbox import
//! --dovecot`): clients that compare UIDVALIDITY, UIDs and POP3 UIDLs then see nothing new
//! and download nothing again.
//!
//! The order: [`Store::import_layout`] gives the user the other server's mailboxes (names,
//! UIDVALIDITY, special-use, subscriptions) while they are still empty; the messages are
//! then appended with [`AppendRequest::kept`](super::AppendRequest::kept) (their UID, and
//! the POP3 UIDL the other server showed) in ascending UID order; last,
//! [`Store::raise_uidnext`] sets each mailbox's UIDNEXT to the other server's, past UIDs
//! that were expunged there.

use crate::contracts::{MailboxId, UserId};
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::mailboxes::{self, canonical_mailbox, delete_in};
use super::schema::{
    self, EXPUNGED, MAILBOX_NAMES, META, MailboxRecord, POP3_UIDLS, SUBSCRIPTIONS, SpecialUse,
};
use super::writer::Batch;
use super::{ChangeKind, Origin, Store, StoreError};

pub use crate::contracts::KeptIds;

/// One mailbox of the layout [`Store::import_layout`] sets up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxLayout {
    pub name: String,
    /// `None`: keep an existing mailbox's, or pick a new one.
    pub uidvalidity: Option<u32>,
    pub special_use: Option<SpecialUse>,
    pub subscribed: bool,
}

/// What [`Store::import_layout`] did besides setting up the layout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutReport {
    /// The user's empty mailboxes that were not in the layout, deleted.
    pub removed: Vec<String>,
}

/// Stores the kept POP3 UIDL of a message just appended as `uid`.
pub(super) fn keep_uidl(
    tx: &WriteTransaction,
    mailbox: u64,
    uid: u32,
    kept: &KeptIds,
) -> Result<(), StoreError> {
    if let Some(uidl) = &kept.pop3_uidl {
        tx.open_table(POP3_UIDLS)?
            .insert((mailbox, uid), uidl.as_str())?;
    }
    Ok(())
}

/// Forgets the kept POP3 UIDL of a message that is removed (if it had one).
pub(super) fn forget_uidl(tx: &WriteTransaction, mailbox: u64, uid: u32) -> Result<(), StoreError> {
    tx.open_table(POP3_UIDLS)?.remove((mailbox, uid))?;
    Ok(())
}

/// Removes every row of `mailbox` from a table keyed by (mailbox id, UID).
pub(super) fn clear_mailbox_rows<V: redb::Value + 'static>(
    tx: &WriteTransaction,
    table: redb::TableDefinition<(u64, u32), V>,
    mailbox: u64,
) -> Result<(), StoreError> {
    let mut t = tx.open_table(table)?;
    let uids: Vec<u32> = t
        .range((mailbox, 0)..=(mailbox, u32::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for uid in uids {
        t.remove((mailbox, uid))?;
    }
    Ok(())
}

/// Saves a changed mailbox record and announces it to sessions after the commit.
fn save_changed(
    tx: &WriteTransaction,
    batch: &mut Batch,
    mb: &MailboxRecord,
) -> Result<(), StoreError> {
    mailboxes::save_in(tx, mb)?;
    batch.announce(mb.user, MailboxId(mb.id), ChangeKind::Mailbox, Origin::NONE);
    Ok(())
}

fn layout_in(
    tx: &WriteTransaction,
    batch: &mut Batch,
    user: UserId,
    layout: &[MailboxLayout],
    other_subscriptions: &[String],
) -> Result<LayoutReport, StoreError> {
    if mailboxes::find_in(tx, user, "INBOX")?.is_none() {
        return Err(StoreError::NoSuchUser);
    }
    let mut wanted = Vec::with_capacity(layout.len());
    for m in layout {
        wanted.push((canonical_mailbox(&m.name)?, m));
    }
    let mut holding = Vec::new();
    for (name, _) in &wanted {
        if let Some(mb) = mailboxes::find_in(tx, user, name)?
            && mb.messages > 0
        {
            holding.push(format!("{name} ({} messages)", mb.messages));
        }
    }
    if !holding.is_empty() {
        return Err(StoreError::MailboxNotEmpty(holding.join(", ")));
    }
    // The user's other mailboxes: empty ones go (children before parents), so that the
    // user sees the same mailboxes as before the move; ones holding mail stay.
    let existing: Vec<String> = mailboxes::names_of(&tx.open_table(MAILBOX_NAMES)?, user)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut report = LayoutReport::default();
    for name in existing.iter().rev() {
        if name == "INBOX" || wanted.iter().any(|(w, _)| w == name) {
            continue;
        }
        let Some(mb) = mailboxes::find_in(tx, user, name)? else {
            continue;
        };
        if mb.messages > 0 {
            continue;
        }
        match delete_in(tx, batch, user, name) {
            Ok(_) => report.removed.push(name.clone()),
            // A child that holds mail keeps its parent.
            Err(StoreError::HasChildren) => {}
            Err(e) => return Err(e),
        }
    }
    report.removed.reverse();
    // Subscriptions become the other server's: those of names without a mailbox here,
    // the rest on the mailboxes below.
    {
        let mut subs = tx.open_table(SUBSCRIPTIONS)?;
        let old: Vec<String> = subs
            .range(schema::user_names(user))?
            .map(|r| r.map(|(k, _)| k.value().1.to_owned()))
            .collect::<Result<_, _>>()?;
        for name in old {
            subs.remove((user.0, name.as_str()))?;
        }
        for name in other_subscriptions {
            let name = canonical_mailbox(name)?;
            if !wanted.iter().any(|(w, _)| w == &name) {
                subs.insert((user.0, name.as_str()), ())?;
            }
        }
    }
    let mut highest = 0u32;
    for (name, m) in &wanted {
        let mut mb = match mailboxes::find_in(tx, user, name)? {
            Some(mb) => mb,
            None => mailboxes::create_in(tx, batch, user, name, None)?,
        };
        if let Some(v) = m.uidvalidity
            && v != mb.uidvalidity
        {
            // A new UIDVALIDITY starts the UIDs afresh (RFC 9051 section 2.3.1.1): what
            // was recorded under the old one goes.
            mb.uidvalidity = v;
            mb.uidnext = 1;
            clear_mailbox_rows(tx, EXPUNGED, mb.id)?;
            clear_mailbox_rows(tx, POP3_UIDLS, mb.id)?;
        }
        highest = highest.max(mb.uidvalidity);
        mb.special_use = m.special_use;
        mb.subscribed = m.subscribed;
        save_changed(tx, batch, &mb)?;
    }
    // Mailboxes created later must still get a UIDVALIDITY above every one in use.
    let mut meta = tx.open_table(META)?;
    let last = meta
        .get("last_uidvalidity")?
        .map(|v| v.value())
        .unwrap_or(0);
    if u64::from(highest) > last {
        meta.insert("last_uidvalidity", u64::from(highest))?;
    }
    Ok(report)
}

impl Store {
    /// Gives `user` the mailboxes of `layout` (created, or reset if they exist and are
    /// empty: UIDVALIDITY, special-use, subscription), deletes the user's other empty
    /// mailboxes (never INBOX), and makes the subscriptions those of the layout plus
    /// `other_subscriptions`. Refused with [`StoreError::MailboxNotEmpty`], changing
    /// nothing, when a mailbox of the layout holds mail.
    pub async fn import_layout(
        &self,
        user: UserId,
        layout: Vec<MailboxLayout>,
        other_subscriptions: Vec<String>,
    ) -> Result<LayoutReport, StoreError> {
        self.write(move |tx, batch| layout_in(tx, batch, user, &layout, &other_subscriptions))
            .await
    }

    /// Raises the UIDNEXT of the user's mailbox `name` to `uidnext` (never lowers it).
    pub async fn raise_uidnext(
        &self,
        user: UserId,
        name: &str,
        uidnext: u32,
    ) -> Result<(), StoreError> {
        let name = canonical_mailbox(name)?;
        self.write(move |tx, batch| {
            let mut mb = mailboxes::find_in(tx, user, &name)?.ok_or(StoreError::NoSuchMailbox)?;
            if uidnext > mb.uidnext {
                mb.uidnext = uidnext;
                save_changed(tx, batch, &mb)?;
            }
            Ok(())
        })
        .await
    }
}

/// Kept UIDLs of `mailbox`, read in the caller's transaction (POP3 maildrop snapshot).
pub(super) fn kept_uidls(
    tx: &redb::ReadTransaction,
    mailbox: u64,
) -> Result<std::collections::HashMap<u32, String>, StoreError> {
    let t = tx.open_table(POP3_UIDLS)?;
    let mut out = std::collections::HashMap::new();
    for row in t.range((mailbox, 0)..=(mailbox, u32::MAX))? {
        let (k, v) = row?;
        out.insert(k.value().1, v.value().to_owned());
    }
    Ok(out)
}
