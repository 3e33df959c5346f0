//! The selected mailbox as this session's client knows it: sequence numbers, UIDs, the
//! flags last told, and `\Recent` (RFC 9051 §2.3.1.2, §7.5.1; RFC 3501 §2.3.2; RFC 2180).
//!
//! Pure. The session re-reads the store's listing when the change feed wakes it and
//! calls [`View::sync`], which writes the untagged EXISTS / EXPUNGE / FETCH / FLAGS
//! responses the client may be told *now*:
//! - EXPUNGE only when the command allows it (never during FETCH, STORE, SEARCH:
//!   RFC 9051 §7.5.1); until then the message keeps its sequence number and its last
//!   known flags (RFC 2180 §4.1); with QRESYNC, `* VANISHED uid-set` instead of
//!   EXPUNGE, at the same moments (RFC 7162 §3.2.10);
//! - never an EXPUNGE for a message the client was never told about (PROTOCOL.md item
//!   68): a message added and removed between two syncs is never announced at all;
//! - EXISTS only grows (RFC 9051 §7.4.1).

use crate::contracts::{MailboxId, ModSeq, Uid};
use std::collections::BTreeSet;

use super::response::ImapError;
use super::sequence::SequenceSet;
use crate::store::{FlagState, MessageInfo, SystemFlags};

/// One message as the client knows it: 24 bytes, since every session keeps one per
/// message of its selected mailbox (100 sessions on a 50,000-message INBOX hold 5
/// million; docs/benchmarks.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub uid: Uid,
    pub flags: SystemFlags,
    /// Removed in the store, not yet announced with EXPUNGE.
    pub expunged: bool,
    pub modseq: ModSeq,
    pub keywords: Keywords,
}

/// A message's keywords, out of line: nearly every message has none, and then this is a
/// null pointer (8 bytes where a `Vec` takes 24; a boxed slice would be 16). Reads as a
/// `[String]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(clippy::box_collection)] // the point: a thin pointer, the Vec itself out of line
pub struct Keywords(Option<Box<Vec<String>>>);

impl Keywords {
    pub fn new(keywords: &[String]) -> Keywords {
        if keywords.is_empty() {
            Keywords(None)
        } else {
            Keywords(Some(Box::new(keywords.to_vec())))
        }
    }
}

impl std::ops::Deref for Keywords {
    type Target = [String];
    fn deref(&self) -> &[String] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

/// What the session has enabled, for the shape of updates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Include MODSEQ in FETCH updates (RFC 7162 §3.2).
    pub condstore: bool,
    /// rev1 session: `\Recent` and RECENT are sent (RFC 9051 Appendix E).
    pub rev1: bool,
    /// QRESYNC is enabled: removals are `* VANISHED uid-set` (RFC 7162 §3.2.10).
    pub qresync: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub mailbox: MailboxId,
    pub name: String,
    pub uidvalidity: u32,
    pub read_only: bool,
    pub msgs: Vec<Msg>,
    /// UIDs this session holds `\Recent` for.
    pub recent: BTreeSet<Uid>,
    /// Keywords announced in FLAGS.
    pub keywords: BTreeSet<String>,
    /// SEARCHRES (RFC 5182) saved result, as UIDs.
    pub saved: Vec<Uid>,
    /// Searches kept up to date (RFC 5267 §4.3); they end with the selection.
    pub contexts: super::cmd::context::Contexts,
    /// The mailbox's HIGHESTMODSEQ in the state the view was last brought to.
    pub synced: ModSeq,
    /// The HIGHESTMODSEQ the client was last given (SELECT, `* OK [HIGHESTMODSEQ n]`);
    /// `None` until CONDSTORE is on.
    pub told: Option<ModSeq>,
}

/// `(\Seen \Answered kw ...)` for one message.
pub fn flag_list(flags: SystemFlags, keywords: &[String], recent: bool) -> String {
    let mut parts: Vec<&str> = flags.names().collect();
    if recent {
        parts.push("\\Recent");
    }
    parts.extend(keywords.iter().map(String::as_str));
    format!("({})", parts.join(" "))
}

fn msg(m: &MessageInfo) -> Msg {
    Msg {
        uid: m.uid,
        flags: m.flags,
        keywords: Keywords::new(&m.keywords),
        modseq: m.modseq,
        expunged: false,
    }
}

impl View {
    /// A view of `fresh` (the store's listing, UID order, in the state of mod-sequence
    /// `synced`) with `recent` claimed.
    pub fn new(
        mailbox: MailboxId,
        name: String,
        uidvalidity: u32,
        read_only: bool,
        (fresh, synced): (&[MessageInfo], ModSeq),
        recent: BTreeSet<Uid>,
    ) -> View {
        let keywords = fresh
            .iter()
            .flat_map(|m| m.keywords.iter().cloned())
            .collect();
        View {
            mailbox,
            name,
            uidvalidity,
            read_only,
            msgs: fresh.iter().map(msg).collect(),
            recent,
            keywords,
            saved: Vec::new(),
            contexts: Default::default(),
            synced,
            told: None,
        }
    }

    /// The HIGHESTMODSEQ to tell the client now, if any (RFC 7162 §3.1.2.1): the
    /// state the view was brought to, once it is higher than what the client was told
    /// (or when it was told nothing yet), and only when every removal up to it has been
    /// announced. A client that hears a mod-sequence takes itself to be up to date with
    /// it, and would never hear of an expunge held back behind it (RFC 7162 §3.2.5.1).
    pub fn modseq_news(&mut self) -> Option<ModSeq> {
        if self.msgs.iter().any(|m| m.expunged) || self.told.is_some_and(|t| t >= self.synced) {
            return None;
        }
        self.told = Some(self.synced);
        self.told
    }

    /// EXISTS as the client knows it.
    pub fn exists(&self) -> u32 {
        u32::try_from(self.msgs.len()).unwrap_or(u32::MAX)
    }

    /// UIDs in sequence order.
    pub fn uids(&self) -> Vec<Uid> {
        self.msgs.iter().map(|m| m.uid).collect()
    }

    /// The one sequence-set resolver of every message command (FETCH, STORE, COPY,
    /// MOVE, UID EXPUNGE): indexes into `msgs`, ascending, each once (PROTOCOL item 87).
    /// - sequence numbers: any number above EXISTS, and `*` in an empty mailbox, is
    ///   `BAD` (RFC 9051 §9 `seq-number`; PROTOCOL item 12);
    /// - UIDs: those that do not exist are ignored, `n:*` always includes the highest
    ///   (RFC 9051 §6.4.9; item 13); in an empty mailbox the set names nothing;
    /// - `$`: the SEARCHRES result, as UIDs, in both forms (RFC 5182 §2.1, §2.4).
    ///
    /// Messages expunged elsewhere but not yet announced keep their place (RFC 2180
    /// §4.1); each command decides what to do with them.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, ImapError> {
        match set {
            SequenceSet::Saved => {
                let mut saved = self.saved.clone();
                saved.sort_unstable();
                Ok(self
                    .msgs
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| saved.binary_search(&m.uid).is_ok())
                    .map(|(i, _)| i)
                    .collect())
            }
            _ if uid => Ok(set.resolve_uid(&self.uids())),
            _ => set
                .resolve_seq(self.exists())
                .map(|seqs| {
                    seqs.into_iter()
                        .filter_map(|s| usize::try_from(s).ok()?.checked_sub(1))
                        .collect()
                })
                .map_err(|_| ImapError::Bad("Invalid message sequence number".into())),
        }
    }

    /// The highest UID the client was told about.
    pub fn last_uid(&self) -> Uid {
        self.msgs.last().map(|m| m.uid).unwrap_or(Uid(0))
    }

    /// UIDs in `fresh` the client has not been told about yet.
    pub fn new_uids(&self, fresh: &[MessageInfo]) -> Vec<Uid> {
        let last = self.last_uid();
        fresh
            .iter()
            .filter(|m| m.uid > last)
            .map(|m| m.uid)
            .collect()
    }

    /// The system flags and every keyword in use, by name.
    fn flag_names(&self) -> Vec<&str> {
        let system = SystemFlags::NAMES.iter().map(|(_, n)| *n);
        system
            .chain(self.keywords.iter().map(String::as_str))
            .collect()
    }

    /// The `FLAGS (...)` list: system flags and every keyword in use.
    pub fn flags_response(&self) -> String {
        format!("({})", self.flag_names().join(" "))
    }

    /// Brings the view up to `fresh` and writes what the client may be told now.
    /// `claimed` are new UIDs this session holds `\Recent` for.
    pub fn sync(
        &mut self,
        fresh: &[MessageInfo],
        allow_expunge: bool,
        claimed: &[Uid],
        opts: SyncOptions,
        out: &mut Vec<u8>,
    ) {
        // Mark what is gone; refresh flags of what stays.
        let mut changed: Vec<Uid> = Vec::new();
        let mut j = 0;
        for m in &mut self.msgs {
            while fresh.get(j).is_some_and(|f| f.uid < m.uid) {
                j += 1;
            }
            match fresh.get(j) {
                Some(f) if f.uid == m.uid => {
                    if !m.expunged && (f.flags != m.flags || f.keywords[..] != m.keywords[..]) {
                        changed.push(m.uid);
                    }
                    m.flags = f.flags;
                    m.keywords = Keywords::new(&f.keywords);
                    m.modseq = f.modseq;
                }
                _ => m.expunged = true,
            }
        }
        if allow_expunge {
            self.announce_expunged(opts.qresync, out);
        }
        self.learn_keywords(fresh.iter().flat_map(|m| m.keywords.iter()), out);
        // `changed` is in UID order, as `msgs` is.
        for (i, m) in self.msgs.iter().enumerate() {
            if changed.binary_search(&m.uid).is_ok() {
                let recent = opts.rev1 && self.recent.contains(&m.uid);
                let mut line = format!(
                    "* {} FETCH (UID {} FLAGS {}",
                    i + 1,
                    m.uid,
                    flag_list(m.flags, &m.keywords, recent)
                );
                if opts.condstore {
                    line.push_str(&format!(" MODSEQ ({})", m.modseq));
                }
                line.push_str(")\r\n");
                out.extend_from_slice(line.as_bytes());
            }
        }
        let last = self.last_uid();
        let added: Vec<Msg> = fresh.iter().filter(|f| f.uid > last).map(msg).collect();
        if !added.is_empty() {
            self.msgs.extend(added);
            self.recent.extend(claimed.iter().copied());
            out.extend_from_slice(format!("* {} EXISTS\r\n", self.msgs.len()).as_bytes());
            if opts.rev1 {
                out.extend_from_slice(format!("* {} RECENT\r\n", self.recent.len()).as_bytes());
            }
        }
    }

    /// Applies a flag change this session made (the store's answer, which does not wake
    /// it); the message's sequence index, or `None` when the view no longer has it.
    pub fn apply_own(&mut self, st: &FlagState) -> Option<usize> {
        let i = self.msgs.iter().position(|m| m.uid == st.uid)?;
        let m = self.msgs.get_mut(i)?;
        m.flags = st.flags;
        m.keywords = Keywords::new(&st.keywords);
        m.modseq = st.modseq;
        if st.modseq > self.synced {
            // With CONDSTORE on, the client hears this change with its MODSEQ (echoed
            // even after .SILENT, RFC 7162 §3.1.3): if it was up to date, it still is.
            if self.told == Some(self.synced) {
                self.told = Some(st.modseq);
            }
            // The writer publishes every earlier change before it answers, so the next
            // sync reads them all: the view is then as new as this change.
            self.synced = st.modseq;
        }
        Some(i)
    }

    /// Marks the messages `uids` (ascending) as removed in the store: this session
    /// removed them itself (EXPUNGE, MOVE) and will announce them.
    pub fn mark_expunged(&mut self, uids: &[Uid]) {
        for m in &mut self.msgs {
            if uids.binary_search(&m.uid).is_ok() {
                m.expunged = true;
            }
        }
    }

    /// `* n EXPUNGE` for every message marked removed, highest sequence number first so
    /// no number shifts under the client (RFC 9051 §7.4.1), and forgets them. With
    /// QRESYNC one `* VANISHED uid-set` replaces them (RFC 7162 §3.2.7, §3.2.10: no
    /// EXPUNGE once it is enabled).
    pub fn announce_expunged(&mut self, qresync: bool, out: &mut Vec<u8>) {
        let mut vanished = Vec::new();
        for seq in (1..=self.msgs.len()).rev() {
            if self.msgs.get(seq - 1).is_some_and(|m| m.expunged) {
                let uid = self.msgs.remove(seq - 1).uid;
                self.recent.remove(&uid);
                if qresync {
                    vanished.push(uid);
                } else {
                    out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
                }
            }
        }
        if !vanished.is_empty() {
            vanished.reverse();
            let set = super::cmd::copy::uid_set(&vanished);
            out.extend_from_slice(format!("* VANISHED {set}\r\n").as_bytes());
        }
    }

    /// Adds keywords the client has not been told of to FLAGS and PERMANENTFLAGS, and
    /// tells it (RFC 9051 §7.3.5: FLAGS is sent again when the set changes).
    pub fn learn_keywords<'a>(
        &mut self,
        keywords: impl Iterator<Item = &'a String>,
        out: &mut Vec<u8>,
    ) {
        let new: BTreeSet<String> = keywords
            .filter(|k| !self.keywords.contains(*k))
            .cloned()
            .collect();
        if new.is_empty() {
            return;
        }
        self.keywords.extend(new);
        out.extend_from_slice(format!("* FLAGS {}\r\n", self.flags_response()).as_bytes());
        out.extend_from_slice(
            format!("* OK [PERMANENTFLAGS {}] Flags\r\n", self.permanent_flags()).as_bytes(),
        );
    }

    /// `PERMANENTFLAGS`: what STORE keeps, and `\*` (new keywords) when writable.
    pub fn permanent_flags(&self) -> String {
        if self.read_only {
            return "()".into();
        }
        let mut parts = self.flag_names();
        parts.push("\\*");
        format!("({})", parts.join(" "))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every session holds one per message of its mailbox: keep it small.
    #[test]
    fn a_view_entry_is_24_bytes_and_keywords_read_as_a_slice() {
        assert_eq!(std::mem::size_of::<Msg>(), 24);
        assert!(Keywords::new(&[]).is_empty());
        let k = Keywords::new(&["$Junk".to_string()]);
        assert_eq!(&k[..], ["$Junk".to_string()]);
    }

    fn info(uid: u32, flags: u8) -> MessageInfo {
        MessageInfo {
            uid: Uid(uid),
            flags: SystemFlags(flags),
            keywords: Vec::new(),
            internal_date: 0,
            save_date: 0,
            size: 1,
            modseq: ModSeq(1),
            envelope_from: None,
        }
    }

    fn sync(v: &mut View, fresh: &[MessageInfo], expunge: bool) -> String {
        let mut out = Vec::new();
        v.sync(fresh, expunge, &[], SyncOptions::default(), &mut out);
        String::from_utf8(out).unwrap()
    }

    /// A view of messages `uids`, no flags (also for `imap::cmd::context` tests).
    pub(crate) fn view(uids: &[u32]) -> View {
        let fresh: Vec<_> = uids.iter().map(|u| info(*u, 0)).collect();
        View::new(
            MailboxId(1),
            "INBOX".into(),
            7,
            false,
            (&fresh, ModSeq(1)),
            BTreeSet::new(),
        )
    }

    #[test]
    fn expunges_wait_for_a_command_that_allows_them() {
        let mut v = view(&[1, 2, 3, 4]);
        let fresh = [info(1, 0), info(2, 0)];
        assert_eq!(sync(&mut v, &fresh, false), "");
        assert_eq!(v.exists(), 4);
        assert_eq!(sync(&mut v, &fresh, true), "* 4 EXPUNGE\r\n* 3 EXPUNGE\r\n");
        assert_eq!(v.uids(), crate::testing::uids([1, 2]));
    }

    #[test]
    fn new_mail_is_exists_and_unseen_removal_is_silent() {
        let mut v = view(&[1]);
        assert_eq!(
            sync(&mut v, &[info(1, 0), info(3, 0)], false),
            "* 2 EXISTS\r\n"
        );
        // UID 4 came and went between two syncs: never told, never expunged.
        assert_eq!(sync(&mut v, &[info(1, 0), info(3, 0)], true), "");
    }

    #[test]
    fn flag_changes_are_fetch_updates() {
        let mut v = view(&[1, 2]);
        assert_eq!(
            sync(&mut v, &[info(1, 0), info(2, SystemFlags::SEEN)], false),
            "* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n"
        );
    }

    #[test]
    fn expunges_are_one_vanished_with_qresync() {
        let mut v = view(&[1, 2, 3, 4, 7]);
        let fresh = [info(1, 0), info(4, 0)];
        let opts = SyncOptions {
            condstore: true,
            rev1: false,
            qresync: true,
        };
        let mut out = Vec::new();
        v.sync(&fresh, false, &[], opts, &mut out);
        assert!(out.is_empty());
        v.sync(&fresh, true, &[], opts, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "* VANISHED 2:3,7\r\n");
        assert_eq!(v.uids(), crate::testing::uids([1, 4]));
    }

    #[test]
    fn expunge_then_exists_in_one_sync() {
        let mut v = view(&[1, 2]);
        assert_eq!(
            sync(&mut v, &[info(2, 0), info(5, 0)], true),
            "* 1 EXPUNGE\r\n* 2 EXISTS\r\n"
        );
        assert_eq!(v.uids(), crate::testing::uids([2, 5]));
    }
}
