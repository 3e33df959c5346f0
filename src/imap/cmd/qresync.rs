//! QRESYNC (RFC 7162 §3.2): what SELECT / EXAMINE `(QRESYNC (...))` adds after the
//! usual responses (§3.2.5), and the `* VANISHED (EARLIER)` of UID FETCH `(CHANGEDSINCE
//! n VANISHED)` (§3.2.6). ENABLE is in `auth`, the `* VANISHED` that replaces EXPUNGE
//! in `view`.
//!
//! The expunge history keeps the UIDs of the last 2,048 below UIDNEXT
//! ([`Store::expunged_since`](crate::store::Store::expunged_since)): above that the
//! VANISHED (EARLIER) list is exact, below it is every UID asked about that the mailbox
//! lacks, a superset the RFC allows (§3.2.5.2, §3.2.10: a client ignores UIDs it does
//! not know). UIDs the client still knows as messages (the view, including removals not
//! announced yet) are never in it: those are announced by `* VANISHED` when allowed.

use super::super::grammar::QresyncParams;
use super::super::response::ImapError;
use super::super::sequence::{Bound, SequenceSet};
use super::super::session::Session;
use super::super::view::{View, flag_list};
use crate::contracts::{MailboxId, ModSeq, Uid};

/// `set` as inclusive UID ranges; `*` is the largest UID there can be (the store clips
/// to UIDNEXT), `$` the SEARCHRES result (RFC 5182).
pub(in super::super) fn uid_ranges(set: &SequenceSet, saved: &[Uid]) -> Vec<(u32, u32)> {
    let num = |b: Bound| match b {
        Bound::Num(n) => n,
        Bound::Star => u32::MAX,
    };
    match set {
        SequenceSet::Ranges(r) => r.iter().map(|(a, b)| (num(*a), num(*b))).collect(),
        SequenceSet::Saved => saved.iter().map(|u| (u.0, u.0)).collect(),
    }
}

/// `ranges` (ascending, disjoint) without the UIDs in `present` (ascending).
fn without(ranges: &[(u32, u32)], present: &[Uid]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for &(lo, hi) in ranges {
        let start = present.partition_point(|u| u.0 < lo);
        let end = present.partition_point(|u| u.0 <= hi);
        let mut next = Some(lo);
        for &Uid(u) in present.get(start..end).unwrap_or(&[]) {
            if let Some(n) = next
                && u > n
            {
                out.push((n, u - 1));
            }
            next = u.checked_add(1);
        }
        if let Some(n) = next
            && n <= hi
        {
            out.push((n, hi));
        }
    }
    out
}

/// `a:b,c` (RFC 9051 §9 `sequence-set`).
fn ranges_text(ranges: &[(u32, u32)]) -> String {
    ranges
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}:{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn contains(ranges: &[(u32, u32)], uid: u32) -> bool {
    ranges
        .iter()
        .any(|(a, b)| (*a.min(b)..=*a.max(b)).contains(&uid))
}

impl Session {
    /// `* VANISHED (EARLIER) uids` for the UIDs of `within` expunged from `mailbox`
    /// after `modseq` (RFC 7162 §3.2.5.1, §3.2.6), leaving out `present`, the UIDs the
    /// client knows as messages (ascending). Nothing when there are none.
    pub(in super::super) async fn vanished_earlier(
        &self,
        mailbox: MailboxId,
        present: &[Uid],
        modseq: ModSeq,
        within: Vec<(u32, u32)>,
        out: &mut Vec<u8>,
    ) -> Result<(), ImapError> {
        let found = self.store().expunged_since(mailbox, modseq, within).await?;
        let uids = without(&found.uids, present);
        if !uids.is_empty() {
            out.extend_from_slice(
                format!("* VANISHED (EARLIER) {}\r\n", ranges_text(&uids)).as_bytes(),
            );
        }
        Ok(())
    }

    /// RFC 7162 §3.2.5.1, after the usual SELECT responses when the UIDVALIDITY
    /// matched: the expunges since the client's mod-sequence, then `* n FETCH (UID
    /// FLAGS MODSEQ)` for every message changed since, both among `known-uids` when
    /// given.
    pub(in super::super) async fn qresync_select(
        &self,
        view: &View,
        q: &QresyncParams,
        out: &mut Vec<u8>,
    ) -> Result<(), ImapError> {
        let within = match &q.known_uids {
            Some(set) => uid_ranges(set, &[]),
            None => vec![(1, u32::MAX)],
        };
        self.vanished_earlier(view.mailbox, &view.uids(), q.modseq, within.clone(), out)
            .await?;
        let rev1 = !self.enabled.rev2;
        for (i, m) in view.msgs.iter().enumerate() {
            if m.modseq > q.modseq && contains(&within, m.uid.0) {
                let recent = rev1 && view.recent.contains(&m.uid);
                out.extend_from_slice(
                    format!(
                        "* {} FETCH (UID {} FLAGS {} MODSEQ ({}))\r\n",
                        i + 1,
                        m.uid,
                        flag_list(m.flags, &m.keywords, recent),
                        m.modseq
                    )
                    .as_bytes(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_uids_are_cut_out_of_the_ranges() {
        assert_eq!(
            without(
                &[(1, 10), (20, 20)],
                &[Uid(1), Uid(4), Uid(5), Uid(10), Uid(20)]
            ),
            vec![(2, 3), (6, 9)]
        );
        assert_eq!(without(&[(3, 3)], &[]), vec![(3, 3)]);
        assert_eq!(
            without(&[(1, u32::MAX)], &[Uid(u32::MAX)]),
            vec![(1, u32::MAX - 1)]
        );
    }

    #[test]
    fn ranges_print_as_a_sequence_set() {
        assert_eq!(ranges_text(&[(1, 3), (7, 7), (9, 10)]), "1:3,7,9:10");
    }

    #[test]
    fn star_and_saved_results_become_ranges() {
        let set = SequenceSet::parse(b"5:*,2").unwrap();
        assert_eq!(uid_ranges(&set, &[]), vec![(5, u32::MAX), (2, 2)]);
        assert_eq!(
            uid_ranges(&SequenceSet::Saved, &[Uid(4), Uid(6)]),
            vec![(4, 4), (6, 6)]
        );
    }
}
