//! Store operations on messages that IMAP needs beyond append: flags with CONDSTORE
//! modseqs, COPY, MOVE, EXPUNGE of `\Deleted`, the expunge history, STATUS counts and the
//! SELECT listing (`\Recent` is the IMAP sessions' own, `imap::session::Shared`). Each write
//! is one group-committed job that validates before it mutates and publishes its
//! [`Change`]s after the commit.

use crate::contracts::{MailboxId, ModSeq, Uid};
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::blob;
use super::mailboxes;
use super::schema::BlobId;
use super::schema::{
    self, BLOBS, BlobRecord, EXPUNGED, MAILBOXES, MESSAGES, MailboxRecord, MessageRecord,
    SystemFlags,
};
use super::writer::Batch;
use super::{ChangeKind, Origin, Store, StoreError, now};

/// How STORE combines the given flags with the present ones (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagMode {
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
    /// `FLAGS`
    Replace,
}

/// A message's flags after an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagState {
    pub uid: Uid,
    pub flags: SystemFlags,
    pub keywords: Vec<String>,
    pub modseq: ModSeq,
}

/// What [`Store::store_flags`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagOutcome {
    /// Messages whose flags changed, each with a new modseq (RFC 7162 §3.1.3).
    pub changed: Vec<FlagState>,
    /// Messages that passed the UNCHANGEDSINCE test but already had the result.
    pub unchanged: Vec<FlagState>,
    /// UIDs that failed the UNCHANGEDSINCE test: `OK [MODIFIED set]` (RFC 7162 §3.1.3).
    pub modified: Vec<Uid>,
}

/// COPYUID data (RFC 4315 §3): the destination's UIDVALIDITY and the UIDs in matching
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOutcome {
    pub uidvalidity: u32,
    pub src_uids: Vec<Uid>,
    pub dst_uids: Vec<Uid>,
}

/// STATUS counts (RFC 9051 §6.3.11, RFC 7162 §3.1.6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: u64,
    /// Messages without `\Seen` (a count).
    pub unseen: u64,
    /// Messages with `\Deleted` (RFC 9051 STATUS DELETED).
    pub deleted: u64,
    /// Sum of RFC822.SIZE (STATUS SIZE).
    pub size: u64,
    pub uidnext: u32,
    pub uidvalidity: u32,
    pub highest_modseq: ModSeq,
}

/// What [`Store::expunged_since`] found: UID ranges, ascending and disjoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vanished {
    pub uids: Vec<(u32, u32)>,
    /// The lowest UID the history answers exactly; below it `uids` holds every UID the
    /// mailbox lacks.
    pub exact_from: u32,
}

/// `ranges` clipped to `1..=last`, sorted and merged.
fn merge_ranges(ranges: Vec<(u32, u32)>, last: u32) -> Vec<(u32, u32)> {
    let mut r: Vec<(u32, u32)> = ranges
        .into_iter()
        .map(|(a, b)| (a.min(b).max(1), a.max(b).min(last)))
        .filter(|(a, b)| a <= b)
        .collect();
    r.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(r.len());
    for (a, b) in r {
        match out.last_mut() {
            Some(prev) if a <= prev.1.saturating_add(1) => prev.1 = prev.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Appends `a..=b` to ascending ranges, joining it to the last when adjacent.
fn push_range(out: &mut Vec<(u32, u32)>, a: u32, b: u32) {
    match out.last_mut() {
        Some(prev) if prev.1.checked_add(1) == Some(a) => prev.1 = b,
        _ => out.push((a, b)),
    }
}

/// UIDs as the tables' numbers, in the same order.
pub(super) fn numbers(uids: &[Uid]) -> Vec<u32> {
    uids.iter().map(|u| u.0).collect()
}

/// The UIDs a caller named, as the tables' numbers, ascending and each once.
pub(super) fn sorted(uids: Vec<Uid>) -> Vec<u32> {
    let mut uids: Vec<u32> = uids.into_iter().map(|u| u.0).collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

/// Applies a STORE to one message's flags; returns the new flags and keywords.
fn apply(
    mode: FlagMode,
    have: SystemFlags,
    have_kw: &[String],
    flags: SystemFlags,
    keywords: &[String],
) -> (SystemFlags, Vec<String>) {
    let mut kw: Vec<String> = Vec::new();
    let push = |k: &String, kw: &mut Vec<String>| {
        if !kw.iter().any(|x| x.eq_ignore_ascii_case(k)) {
            kw.push(k.clone());
        }
    };
    match mode {
        FlagMode::Add => {
            for k in have_kw.iter().chain(keywords) {
                push(k, &mut kw);
            }
            (SystemFlags(have.0 | flags.0), kw)
        }
        FlagMode::Remove => {
            for k in have_kw {
                if !keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    push(k, &mut kw);
                }
            }
            (SystemFlags(have.0 & !flags.0), kw)
        }
        FlagMode::Replace => {
            for k in keywords {
                push(k, &mut kw);
            }
            (flags, kw)
        }
    }
}

fn same_keywords(a: &[String], b: &[String]) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|k| b.iter().any(|x| x.eq_ignore_ascii_case(k)))
}

/// Adds one reference to a blob that is already stored (COPY shares blobs).
fn add_existing_ref(tx: &WriteTransaction, hash: &BlobId) -> Result<(), StoreError> {
    let mut blobs = tx.open_table(BLOBS)?;
    let mut rec: BlobRecord = match blobs.get(hash)? {
        Some(v) => schema::decode(v.value())?,
        None => return Err(StoreError::Corrupt("message without blob".into())),
    };
    rec.refs = rec.refs.saturating_add(1);
    blobs.insert(hash, schema::encode(&rec)?.as_slice())?;
    Ok(())
}

/// Copies the existing messages among `uids` from `src` to `dst` (same user), keeping
/// flags, keywords and INTERNALDATE; `None` when none of them exists.
pub(super) fn copy_in(
    tx: &WriteTransaction,
    batch: &mut Batch,
    src: u64,
    uids: &[u32],
    dst: u64,
) -> Result<Option<CopyOutcome>, StoreError> {
    let src_mb = mailboxes::existing_in(tx, src)?;
    let mut dst_mb = mailboxes::existing_in(tx, dst)?;
    if src_mb.user != dst_mb.user {
        return Err(StoreError::NoSuchMailbox);
    }
    let mut found = Vec::new();
    {
        let t = tx.open_table(MESSAGES)?;
        for &uid in uids {
            if let Some(v) = t.get((src, uid))? {
                found.push((uid, schema::decode::<MessageRecord>(v.value())?));
            }
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    let count = u32::try_from(found.len()).unwrap_or(u32::MAX);
    if dst_mb.uidnext.checked_add(count).is_none() {
        return Err(StoreError::Storage("mailbox UIDs exhausted".into()));
    }
    let saved = now();
    let mut out = CopyOutcome {
        uidvalidity: dst_mb.uidvalidity,
        src_uids: Vec::with_capacity(found.len()),
        dst_uids: Vec::with_capacity(found.len()),
    };
    for (uid, rec) in found {
        add_existing_ref(tx, &rec.blob)?;
        let new_uid = dst_mb.uidnext;
        dst_mb.uidnext = new_uid.saturating_add(1);
        dst_mb.highest_modseq = dst_mb.highest_modseq.saturating_add(1);
        dst_mb.messages = dst_mb.messages.saturating_add(1);
        dst_mb.bytes = dst_mb.bytes.saturating_add(rec.size);
        let copy = MessageRecord {
            save_date: saved,
            modseq: dst_mb.highest_modseq,
            pop3_retrieved: None,
            ..rec
        };
        tx.open_table(MESSAGES)?
            .insert((dst, new_uid), schema::encode(&copy)?.as_slice())?;
        out.src_uids.push(Uid(uid));
        out.dst_uids.push(Uid(new_uid));
    }
    mailboxes::save_in(tx, &dst_mb)?;
    batch.announce(
        dst_mb.user,
        MailboxId(dst),
        ChangeKind::Appended {
            uid: dst_mb.uidnext.saturating_sub(1),
        },
        Origin::NONE,
    );
    Ok(Some(out))
}

/// EXPUNGE of `uids` in `mailbox` (those present): removes them with
/// [`remove_messages`], frees blobs no other message shares and saves the mailbox.
/// Returns the removed UIDs, ascending. `origin`: the session that will announce the
/// EXPUNGEs itself, if any (see [`Origin`]).
pub(super) fn expunge_in(
    tx: &WriteTransaction,
    batch: &mut Batch,
    mailbox: u64,
    uids: &[u32],
    origin: Origin,
) -> Result<Vec<u32>, StoreError> {
    let mut mb = mailboxes::existing_in(tx, mailbox)?;
    let removed = remove_messages(tx, batch, &mut mb, uids, origin)?;
    if removed.is_empty() {
        return Ok(Vec::new());
    }
    for (_, rec) in &removed {
        blob::drop_ref(tx, &rec.blob)?;
    }
    batch.freed = true;
    mailboxes::save_in(tx, &mb)?;
    Ok(removed.into_iter().map(|(u, _)| u).collect())
}

/// The one expunge, under IMAP EXPUNGE/CLOSE/MOVE, POP3 UPDATE, retention and
/// [`Store::expunge`]: removes the `uids` of `mb` that exist, records each in EXPUNGED
/// at one new modseq (RFC 7162 §3.2.10: VANISHED needs them), takes them out of the
/// mailbox's counts and announces the change (named `origin`). Returns the removed
/// records by UID, ascending; the caller drops their blob references or files them
/// elsewhere, and saves `mb`.
pub(super) fn remove_messages(
    tx: &WriteTransaction,
    batch: &mut Batch,
    mb: &mut MailboxRecord,
    uids: &[u32],
    origin: Origin,
) -> Result<Vec<(u32, MessageRecord)>, StoreError> {
    let mut removed = Vec::new();
    {
        let mut t = tx.open_table(MESSAGES)?;
        for &uid in uids {
            if let Some(v) = t.remove((mb.id, uid))? {
                let rec: MessageRecord = schema::decode(v.value())?;
                removed.push((uid, rec));
                super::import::forget_uidl(tx, mb.id, uid)?;
            }
        }
    }
    if removed.is_empty() {
        return Ok(removed);
    }
    removed.sort_unstable_by_key(|(uid, _)| *uid);
    mb.highest_modseq = mb.highest_modseq.saturating_add(1);
    for (_, rec) in &removed {
        mb.messages = mb.messages.saturating_sub(1);
        mb.bytes = mb.bytes.saturating_sub(rec.size);
    }
    record_expunged(tx, mb, removed.iter().map(|(uid, _)| *uid))?;
    batch.announce(mb.user, MailboxId(mb.id), ChangeKind::Expunged, origin);
    Ok(removed)
}

/// Expunged UIDs remembered per mailbox: those at most this far below its UIDNEXT.
pub(super) const EXPUNGED_WINDOW: u32 = 2048;

/// Records `uids` of `mb` in EXPUNGED at its current HIGHESTMODSEQ, and forgets the
/// records of UIDs more than [`EXPUNGED_WINDOW`] below its UIDNEXT: kept for ever, the
/// table grew with every expunge and MOVE, also when the mail it held stayed level
/// (docs/decisions.md, "Steady churn"). [`Store::expunged_since`] reads it for
/// QRESYNC; below the window, a UID missing from the mailbox was expunged at an
/// unknown modseq.
pub(super) fn record_expunged(
    tx: &WriteTransaction,
    mb: &MailboxRecord,
    uids: impl Iterator<Item = u32>,
) -> Result<(), StoreError> {
    let floor = mb.uidnext.saturating_sub(EXPUNGED_WINDOW);
    let mut gone = tx.open_table(EXPUNGED)?;
    for uid in uids.filter(|uid| *uid >= floor) {
        gone.insert((mb.id, uid), mb.highest_modseq)?;
    }
    let old: Vec<u32> = gone
        .range((mb.id, 0)..(mb.id, floor))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for uid in old {
        gone.remove((mb.id, uid))?;
    }
    Ok(())
}

impl Store {
    /// STORE (RFC 9051 §6.4.6) with CONDSTORE UNCHANGEDSINCE (RFC 7162 §3.1.3). UIDs
    /// that do not exist are ignored. Each changed message gets a new modseq (the
    /// mailbox's HIGHESTMODSEQ grows by one per message); a message whose modseq is
    /// above `unchanged_since` is left alone and listed in `modified`. `origin`: the
    /// session that applies the outcome to its own view (it is not woken for it).
    #[allow(clippy::too_many_arguments)]
    pub async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: Vec<Uid>,
        mode: FlagMode,
        flags: SystemFlags,
        keywords: Vec<String>,
        unchanged_since: Option<ModSeq>,
        origin: Origin,
    ) -> Result<FlagOutcome, StoreError> {
        self.write(move |tx, batch| {
            let mut mb = mailboxes::existing_in(tx, mailbox.0)?;
            let mut out = FlagOutcome::default();
            let mut t = tx.open_table(MESSAGES)?;
            for uid in sorted(uids) {
                let Some(v) = t.get((mailbox.0, uid))? else {
                    continue;
                };
                let mut rec: MessageRecord = schema::decode(v.value())?;
                drop(v);
                if unchanged_since.is_some_and(|u| rec.modseq > u.0) {
                    out.modified.push(Uid(uid));
                    continue;
                }
                let (f, kw) = apply(mode, rec.flags, &rec.keywords, flags, &keywords);
                if f == rec.flags && same_keywords(&kw, &rec.keywords) {
                    out.unchanged.push(FlagState {
                        uid: Uid(uid),
                        flags: rec.flags,
                        keywords: rec.keywords,
                        modseq: ModSeq(rec.modseq),
                    });
                    continue;
                }
                mb.highest_modseq = mb.highest_modseq.saturating_add(1);
                rec.flags = f;
                rec.keywords = kw;
                rec.modseq = mb.highest_modseq;
                t.insert((mailbox.0, uid), schema::encode(&rec)?.as_slice())?;
                out.changed.push(FlagState {
                    uid: Uid(uid),
                    flags: rec.flags,
                    keywords: rec.keywords,
                    modseq: ModSeq(rec.modseq),
                });
            }
            drop(t);
            if !out.changed.is_empty() {
                mailboxes::save_in(tx, &mb)?;
                batch.announce(mb.user, mailbox, ChangeKind::Flags, origin);
            }
            Ok(out)
        })
        .await
    }

    /// COPY (RFC 9051 §6.4.7, RFC 4315 §3 COPYUID): all or nothing; the copies share
    /// the blobs (no recompression), keep flags, keywords and INTERNALDATE, and get a new
    /// save date. `None` when none of `uids` exists in `src`. Both mailboxes must belong
    /// to one user (`NoSuchMailbox` otherwise).
    pub async fn copy_messages(
        &self,
        src: MailboxId,
        uids: Vec<Uid>,
        dst: MailboxId,
    ) -> Result<Option<CopyOutcome>, StoreError> {
        self.write(move |tx, batch| copy_in(tx, batch, src.0, &sorted(uids), dst.0))
            .await
    }

    /// MOVE (RFC 6851 §3, RFC 9051 §6.4.8): copy and expunge in one transaction, so
    /// there is no partial move. Returns the COPYUID data; the expunged source UIDs are
    /// `src_uids`. Two sessions moving the same message: the second finds nothing.
    pub async fn move_messages(
        &self,
        src: MailboxId,
        uids: Vec<Uid>,
        dst: MailboxId,
        origin: Origin,
    ) -> Result<Option<CopyOutcome>, StoreError> {
        self.write(move |tx, batch| {
            let Some(copied) = copy_in(tx, batch, src.0, &sorted(uids), dst.0)? else {
                return Ok(None);
            };
            expunge_in(tx, batch, src.0, &numbers(&copied.src_uids), origin)?;
            Ok(Some(copied))
        })
        .await
    }

    /// EXPUNGE / CLOSE / UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315 §2.1): removes the
    /// messages flagged `\Deleted`, only those in `restrict_to` when given. Returns the
    /// removed UIDs, ascending.
    pub async fn expunge_deleted(
        &self,
        mailbox: MailboxId,
        restrict_to: Option<Vec<Uid>>,
        origin: Origin,
    ) -> Result<Vec<Uid>, StoreError> {
        let restrict = restrict_to.map(sorted);
        self.write(move |tx, batch| {
            mailboxes::existing_in(tx, mailbox.0)?;
            let mut doomed = Vec::new();
            {
                let t = tx.open_table(MESSAGES)?;
                for row in t.range((mailbox.0, 0)..=(mailbox.0, u32::MAX))? {
                    let (k, v) = row?;
                    let uid = k.value().1;
                    if restrict
                        .as_ref()
                        .is_some_and(|r| r.binary_search(&uid).is_err())
                    {
                        continue;
                    }
                    let rec: MessageRecord = schema::decode(v.value())?;
                    if rec.flags.has(SystemFlags::DELETED) {
                        doomed.push(uid);
                    }
                }
            }
            let gone = expunge_in(tx, batch, mailbox.0, &doomed, origin)?;
            Ok(gone.into_iter().map(Uid).collect())
        })
        .await
    }

    /// STATUS counts (RFC 9051 §6.3.11): one pass over the mailbox's message rows.
    pub async fn mailbox_status(&self, mailbox: MailboxId) -> Result<MailboxStatus, StoreError> {
        self.read(move |tx, _| {
            let mb = mailboxes::record_of(&tx.open_table(MAILBOXES)?, mailbox.0)?
                .ok_or(StoreError::NoSuchMailbox)?;
            let mut st = MailboxStatus {
                uidnext: mb.uidnext,
                uidvalidity: mb.uidvalidity,
                highest_modseq: ModSeq(mb.highest_modseq.max(1)),
                ..MailboxStatus::default()
            };
            let t = tx.open_table(MESSAGES)?;
            for row in t.range((mailbox.0, 0)..=(mailbox.0, u32::MAX))? {
                let (_, v) = row?;
                let rec: MessageRecord = schema::decode(v.value())?;
                st.messages = st.messages.saturating_add(1);
                st.size = st.size.saturating_add(rec.size);
                if !rec.flags.has(SystemFlags::SEEN) {
                    st.unseen = st.unseen.saturating_add(1);
                }
                if rec.flags.has(SystemFlags::DELETED) {
                    st.deleted = st.deleted.saturating_add(1);
                }
            }
            Ok(st)
        })
        .await
    }

    /// What the bounded expunge history says about `within` (UID ranges, inclusive,
    /// any order) since `modseq`, for RFC 7162 §3.2.5 (SELECT QRESYNC) and §3.2.6 (UID
    /// FETCH VANISHED). Rows are kept only for UIDs at most [`EXPUNGED_WINDOW`] below
    /// UIDNEXT (docs/decisions.md, "Steady churn"), so at and above
    /// [`Vanished::exact_from`] the answer is the UIDs expunged after `modseq`; below
    /// it every UID of `within` under UIDNEXT that the mailbox lacks is reported (a
    /// superset, which §3.2.5.2 and §3.2.10 allow: clients ignore UIDs they do not
    /// know). A `modseq` at or above HIGHESTMODSEQ saw every expunge: nothing.
    pub async fn expunged_since(
        &self,
        mailbox: MailboxId,
        modseq: ModSeq,
        within: Vec<(u32, u32)>,
    ) -> Result<Vanished, StoreError> {
        self.read(move |tx, _| {
            let mb = mailboxes::record_of(&tx.open_table(MAILBOXES)?, mailbox.0)?
                .ok_or(StoreError::NoSuchMailbox)?;
            let exact_from = mb.uidnext.saturating_sub(EXPUNGED_WINDOW).max(1);
            let mut out = Vanished {
                uids: Vec::new(),
                exact_from,
            };
            let last = mb.uidnext.saturating_sub(1);
            if modseq.0 >= mb.highest_modseq || last == 0 {
                return Ok(out);
            }
            let ranges = merge_ranges(within, last);
            let messages = tx.open_table(MESSAGES)?;
            let gone = tx.open_table(EXPUNGED)?;
            for (lo, hi) in ranges {
                // Below the window: every UID the mailbox lacks.
                if lo < exact_from {
                    let top = hi.min(exact_from - 1);
                    let mut next = lo;
                    for row in messages.range((mailbox.0, lo)..=(mailbox.0, top))? {
                        let uid = row?.0.value().1;
                        if uid > next {
                            push_range(&mut out.uids, next, uid - 1);
                        }
                        next = uid.saturating_add(1);
                    }
                    if next <= top {
                        push_range(&mut out.uids, next, top);
                    }
                }
                // In the window: the rows expunged after `modseq`.
                let lo = lo.max(exact_from);
                if lo <= hi {
                    for row in gone.range((mailbox.0, lo)..=(mailbox.0, hi))? {
                        let (k, v) = row?;
                        if v.value() > modseq.0 {
                            let uid = k.value().1;
                            push_range(&mut out.uids, uid, uid);
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
