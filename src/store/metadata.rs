//! IMAP METADATA annotations (RFC 5464): per user, on the server as a whole or on one
//! of the user's mailboxes, in [`METADATA`]. Entry names arrive validated and
//! lower-cased (`imap::cmd::metadata`); the store only keeps, finds and counts them.

use crate::contracts::{MailboxId, UserId};
use std::collections::BTreeMap;

use redb::{ReadableTable, WriteTransaction};

use super::schema::{self, MAILBOXES, METADATA, MailboxRecord};
use super::{ChangeKind, Origin, Store, StoreError};

/// Mailbox id under which a user's server entries are kept (mailbox ids start at 1).
const SERVER: u64 = 0;

/// What an annotation is attached to (RFC 5464 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Annotated {
    /// The server as a whole (the empty mailbox name).
    Server,
    /// One of the user's mailboxes, by id.
    Mailbox(u64),
}

impl Annotated {
    fn id(self) -> u64 {
        match self {
            Annotated::Server => SERVER,
            Annotated::Mailbox(id) => id,
        }
    }
}

/// How far below a requested entry GETMETADATA looks (RFC 5464 §4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Depth {
    /// The entry only.
    #[default]
    Zero,
    /// The entry and its children.
    One,
    /// The entry and everything below it.
    Infinity,
}

/// How a SETMETADATA went in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataSet {
    /// Every entry was set or removed.
    Done,
    /// Nothing changed: the user would hold more than the allowed number of entries.
    TooMany,
}

impl Depth {
    /// Whether `name` is `entry` itself or below it within this depth ("depth 1 for
    /// /a matches /a and /a/b, not /a/b/c", RFC 5464 §4.2.2).
    pub fn covers(self, entry: &str, name: &str) -> bool {
        let Some(rest) = name.strip_prefix(entry) else {
            return false;
        };
        match (rest.strip_prefix('/'), self) {
            _ if rest.is_empty() => true,
            (None, _) | (Some(_), Depth::Zero) => false,
            (Some(below), Depth::One) => !below.contains('/'),
            (Some(_), Depth::Infinity) => true,
        }
    }
}

/// Errs with `NoSuchMailbox` unless `target` is the server or a mailbox of `user`.
fn check_target(
    boxes: &impl ReadableTable<u64, &'static [u8]>,
    user: UserId,
    target: Annotated,
) -> Result<(), StoreError> {
    let Annotated::Mailbox(id) = target else {
        return Ok(());
    };
    let rec = boxes
        .get(id)?
        .map(|v| schema::decode::<MailboxRecord>(v.value()))
        .transpose()?;
    match rec {
        Some(r) if r.user == user => Ok(()),
        _ => Err(StoreError::NoSuchMailbox),
    }
}

/// `user`'s rows, all of them or those of one mailbox id, as (mailbox id, name, value);
/// the values only when `values` (counting needs the names alone).
type Row = (u64, String, Option<Vec<u8>>);

fn rows_in(
    tx: &WriteTransaction,
    user: UserId,
    mailbox: Option<u64>,
    values: bool,
) -> Result<Vec<Row>, StoreError> {
    let t = tx.open_table(METADATA)?;
    let mut out = Vec::new();
    for row in t.range((user.0, mailbox.unwrap_or(0), "")..)? {
        let (k, v) = row?;
        let (u, m, name) = k.value();
        if u != user.0 || mailbox.is_some_and(|want| want != m) {
            break;
        }
        out.push((m, name.to_string(), values.then(|| v.value().to_vec())));
    }
    Ok(out)
}

/// Removes `user`'s annotations: those of one mailbox (DELETE, RFC 5464 §4.1), or all
/// of them (`None`: user deletion).
pub(super) fn delete_in(
    tx: &WriteTransaction,
    user: UserId,
    mailbox: Option<u64>,
) -> Result<(), StoreError> {
    let rows = rows_in(tx, user, mailbox, false)?;
    let mut t = tx.open_table(METADATA)?;
    for (m, name, _) in rows {
        t.remove((user.0, m, name.as_str()))?;
    }
    Ok(())
}

/// Copies the annotations of mailbox `from` to `to` (RENAME INBOX, RFC 5464 §4.1: they
/// stay on INBOX and the new mailbox gets them too). The copy may take the user past
/// `imap.metadata_max_entries`; a later SETMETADATA that adds an entry is refused then.
pub(super) fn copy_mailbox_in(
    tx: &WriteTransaction,
    user: UserId,
    from: u64,
    to: u64,
) -> Result<(), StoreError> {
    let rows = rows_in(tx, user, Some(from), true)?;
    let mut t = tx.open_table(METADATA)?;
    for (_, name, value) in rows {
        t.insert(
            (user.0, to, name.as_str()),
            value.unwrap_or_default().as_slice(),
        )?;
    }
    Ok(())
}

impl Store {
    /// GETMETADATA (RFC 5464 §4.2): the entries of `target` that are one of `wanted` or
    /// below it within its depth, by name. `NoSuchMailbox` when the mailbox is not the
    /// user's (§3.3: a NO).
    pub async fn metadata(
        &self,
        user: UserId,
        target: Annotated,
        wanted: Vec<(String, Depth)>,
    ) -> Result<BTreeMap<String, Vec<u8>>, StoreError> {
        self.read(move |tx, _| {
            check_target(&tx.open_table(MAILBOXES)?, user, target)?;
            let t = tx.open_table(METADATA)?;
            let mailbox = target.id();
            let mut out = BTreeMap::new();
            for (entry, depth) in &wanted {
                // Names below `entry` start with `entry/`; '0' follows '/' in ASCII.
                let end = format!("{entry}0");
                for row in
                    t.range((user.0, mailbox, entry.as_str())..(user.0, mailbox, end.as_str()))?
                {
                    let (k, v) = row?;
                    let name = k.value().2;
                    if depth.covers(entry, name) {
                        out.insert(name.to_string(), v.value().to_vec());
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// SETMETADATA (RFC 5464 §4.3): sets each entry to its value, or removes it for
    /// `None`, all or nothing. [`MetadataSet::TooMany`] when the user would then hold
    /// more than `max_entries` entries (over all mailboxes and the server); nothing is
    /// written then. `NoSuchMailbox` when the mailbox is not (or no longer) the user's.
    pub async fn set_metadata(
        &self,
        user: UserId,
        target: Annotated,
        entries: Vec<(String, Option<Vec<u8>>)>,
        max_entries: usize,
        origin: Origin,
    ) -> Result<MetadataSet, StoreError> {
        self.write(move |tx, batch| {
            check_target(&tx.open_table(MAILBOXES)?, user, target)?;
            let mailbox = target.id();
            // The last value given for a name wins.
            let mut last: BTreeMap<&str, Option<&[u8]>> = BTreeMap::new();
            for (name, value) in &entries {
                last.insert(name.as_str(), value.as_deref());
            }
            let held = rows_in(tx, user, None, false)?.len();
            let mut t = tx.open_table(METADATA)?;
            let mut after = held;
            for (name, value) in &last {
                let exists = t.get((user.0, mailbox, *name))?.is_some();
                match (exists, value) {
                    (false, Some(_)) => after = after.saturating_add(1),
                    (true, None) => after = after.saturating_sub(1),
                    _ => {}
                }
            }
            // Checked before anything is written (§4.3: a NO changes no entry). A
            // command that adds nothing passes even over the limit.
            if after > held && after > max_entries {
                return Ok(MetadataSet::TooMany);
            }
            // RFC 5465 §5.6, §5.7: NOTIFY sessions hear which entries changed.
            batch.announce(
                user,
                MailboxId(mailbox),
                ChangeKind::Metadata {
                    entries: last.keys().map(|k| k.to_string()).collect(),
                },
                origin,
            );
            for (name, value) in last {
                match value {
                    Some(v) => {
                        t.insert((user.0, mailbox, name), v)?;
                    }
                    None => {
                        t.remove((user.0, mailbox, name))?;
                    }
                }
            }
            Ok(MetadataSet::Done)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;

    /// A user's annotations are theirs alone, even given another user's mailbox id, and
    /// go with the user; `verify` finds the table consistent throughout.
    #[test]
    fn metadata_is_per_user_and_goes_with_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        smol::block_on(async {
            let a = store.add_user("a", "h".into()).await.unwrap();
            let b = store.add_user("b", "h".into()).await.unwrap();
            let inbox_b = store.mailbox(b, "INBOX").await.unwrap().unwrap().id;
            let set = |name: &str| vec![(name.to_string(), Some(b"v".to_vec()))];
            let all = || vec![("/private".to_string(), Depth::Infinity)];
            assert_eq!(
                store
                    .set_metadata(
                        a,
                        Annotated::Mailbox(inbox_b.0),
                        set("/private/x"),
                        10,
                        Origin::NONE
                    )
                    .await,
                Err(StoreError::NoSuchMailbox)
            );
            for user in [a, b] {
                let r = store
                    .set_metadata(user, Annotated::Server, set("/private/s"), 10, Origin::NONE)
                    .await;
                assert_eq!(r, Ok(MetadataSet::Done));
            }
            let r = store
                .set_metadata(
                    b,
                    Annotated::Mailbox(inbox_b.0),
                    set("/private/m"),
                    10,
                    Origin::NONE,
                )
                .await;
            assert_eq!(r, Ok(MetadataSet::Done));
            assert!(store.verify().await.unwrap());
            store.delete_user("a").await.unwrap();
            let kept = store.metadata(b, Annotated::Server, all()).await.unwrap();
            assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["/private/s"]);
            let a2 = store.add_user("a", "h".into()).await.unwrap();
            let gone = store.metadata(a2, Annotated::Server, all()).await.unwrap();
            assert!(gone.is_empty());
            assert!(store.verify().await.unwrap());
        });
    }

    #[test]
    fn depth_selects_the_entry_and_what_is_below() {
        let e = "/private/a";
        for (depth, name, want) in [
            (Depth::Zero, "/private/a", true),
            (Depth::Zero, "/private/a/b", false),
            (Depth::One, "/private/a/b", true),
            (Depth::One, "/private/a/b/c", false),
            (Depth::Infinity, "/private/a/b/c", true),
            (Depth::Infinity, "/private/ab", false),
            (Depth::One, "/private/b", false),
        ] {
            assert_eq!(depth.covers(e, name), want, "{depth:?} {name}");
        }
    }
}
