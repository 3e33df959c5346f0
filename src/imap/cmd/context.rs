//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): searches kept alive with `RETURN
//! (UPDATE)`, and the CANCELUPDATE command (§4.3.5): grammar and handler.
//!
//! - SEARCH, UID SEARCH, SORT or UID SORT with the UPDATE return option leaves a
//!   [`SearchContext`] in the selected mailbox's view: the tag, UID or not, the search
//!   program, the SORT criteria, and the results as UIDs in their order (mailbox order
//!   for SEARCH, sort order for SORT). It lives until CANCELUPDATE names it or the
//!   mailbox is no longer selected (§4.3).
//! - Wherever the session sends untagged updates ([`Session::updates`]: the end of
//!   every command, IDLE, between commands with NOTIFY), a context whose messages
//!   changed is evaluated again and the difference goes out as `* ESEARCH (TAG "t")
//!   [UID] REMOVEFROM (...)`, then `* ESEARCH (TAG "t") [UID] ADDTO (...)`:
//!   - after EXISTS, so new sequence numbers are valid (§4.3.3), and before the EXPUNGE
//!     responses that renumber, so removed ones still are (§4.3.4);
//!   - SEARCH contexts use context position 0 and a set in mailbox order (§4.3.3,
//!     §4.3.4: "the context position MAY be zero"; mailbox order is RECOMMENDED);
//!   - SORT contexts name 1-based positions in sort order: removals from the last
//!     position to the first, then insertions from the first to the last, so that each
//!     pair is right when the client applies them in order (§4.3.2).
//! - Only the messages that changed (new, or new flags or mod-sequence) are evaluated
//!   again, unless the program depends on other messages (sequence numbers, `*`) or
//!   on the clock (OLDER, YOUNGER): then all are, at the next change, and once more
//!   after EXPUNGE renumbered the messages (the updates then follow the EXPUNGE and
//!   use the new numbers). A context whose evaluation fails is dropped with `* NO
//!   [NOUPDATE "tag"]` (§4.3.1).
//! - At most [`MAX_CONTEXTS`] per session; one more gets `* NO [NOUPDATE "tag"]` and
//!   the command otherwise completes as asked (§4.3.1: "Other return options
//!   specified SHALL still be honoured").

use crate::contracts::ModSeq;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::super::grammar::{Parser, R};
use super::super::response::{Code, ImapError, Status};
use super::super::search::{SearchKey, SeqBound, write_runs};
use super::super::session::{Outcome, Session, State};
use super::super::view::View;
use super::sort::Criterion;
use crate::store::SystemFlags;

/// Live contexts per session: each holds a UID per result and one entry per message of
/// the mailbox, so memory stays bounded by this times the mailbox size. §4.3.1 asks
/// for at least one.
pub const MAX_CONTEXTS: usize = 8;

/// What a context last saw of one message: a change to any of these re-evaluates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    uid: u32,
    modseq: ModSeq,
    flags: SystemFlags,
}

/// One search kept up to date (RFC 5267 §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchContext {
    /// The tag of the searching command: the ESEARCH correlator.
    tag: String,
    /// UID SEARCH / UID SORT: the updates name UIDs, else sequence numbers (§4.3.2).
    uid: bool,
    key: SearchKey,
    /// SORT criteria; `None` for SEARCH.
    sort: Option<Vec<Criterion>>,
    /// The results as UIDs: ascending for SEARCH, in sort order for SORT.
    results: Vec<u32>,
    /// The messages not expunged at the last evaluation, in mailbox order.
    seen: Vec<Seen>,
    /// How many messages the client knew of then (EXPUNGE not yet sent included):
    /// when it changes, sequence numbers may have shifted.
    known: usize,
}

/// The contexts of the selected mailbox, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contexts(Vec<SearchContext>);

impl Contexts {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn has(&self, tag: &str) -> bool {
        self.0.iter().any(|c| c.tag == tag)
    }
}

/// The messages of `view` not expunged, as a context sees them.
fn snapshot(view: &View) -> Vec<Seen> {
    view.msgs
        .iter()
        .filter(|m| !m.expunged)
        .map(|m| Seen {
            uid: m.uid.0,
            modseq: m.modseq,
            flags: m.flags,
        })
        .collect()
}

/// Whether a message's match can change without the message changing: keys on
/// sequence numbers (they shift on expunge), `*` (the last message changes), and
/// OLDER/YOUNGER (the clock moves).
fn depends_on_others(key: &SearchKey) -> bool {
    let has_last = |s: &super::super::search::SeqSet| {
        s.0.iter()
            .any(|(a, b)| *a == SeqBound::Last || *b == SeqBound::Last)
    };
    match key {
        SearchKey::SeqSet(_) | SearchKey::Older(_) | SearchKey::Younger(_) => true,
        SearchKey::Uid(s) => has_last(s),
        SearchKey::And(keys) => keys.iter().any(depends_on_others),
        SearchKey::Or(a, b) => depends_on_others(a) || depends_on_others(b),
        SearchKey::Not(k) => depends_on_others(k),
        _ => false,
    }
}

/// `"CANCELUPDATE" 1*(SP quoted)` (RFC 5267 §5), the text after the command name; the
/// caller checks the CRLF.
pub fn parse(p: &mut Parser<'_>) -> R<Vec<String>> {
    let mut tags = Vec::new();
    while p.eat(b' ') {
        let t = p.quoted()?;
        tags.push(String::from_utf8(t).map_err(|_| "a tag is ASCII")?);
    }
    if tags.is_empty() {
        return Err("CANCELUPDATE needs a quoted tag".into());
    }
    Ok(tags)
}

/// The number a client knows message `uid` by: the UID itself, or its sequence number
/// in `view` (messages expunged but not yet announced keep theirs).
fn number(view: &View, uid_mode: bool, uid: u32) -> Option<u32> {
    if uid_mode {
        return Some(uid);
    }
    let i = view.msgs.binary_search_by_key(&uid, |m| m.uid.0).ok()?;
    u32::try_from(i.checked_add(1)?).ok()
}

/// `context-position SP sequence-set` pairs (§5): a position and the numbers there.
type Pairs = Vec<(usize, Vec<u32>)>;

/// Pairs of `context-position SP sequence-set` (§5): consecutive positions whose
/// numbers ascend share one pair, since a client expands a set in increasing order
/// (§3.2). `items` are (1-based position, number), positions ascending.
fn runs(items: &[(usize, u32)]) -> Pairs {
    let mut out: Pairs = Vec::new();
    for &(pos, n) in items {
        if let Some((start, nums)) = out.last_mut()
            && nums.last().is_some_and(|&last| last < n)
            && start.saturating_add(nums.len()) == pos
        {
            nums.push(n);
            continue;
        }
        out.push((pos, vec![n]));
    }
    out
}

/// `* ESEARCH (TAG "t") [UID] NAME (pos set pos set ...)`.
fn write_update(tag: &str, uid: bool, name: &str, pairs: &[(usize, Vec<u32>)], out: &mut Vec<u8>) {
    if pairs.is_empty() {
        return;
    }
    out.extend_from_slice(b"* ESEARCH (TAG ");
    super::super::fetch::string(tag.as_bytes(), super::super::fetch::Options::default(), out);
    out.push(b')');
    if uid {
        out.extend_from_slice(b" UID");
    }
    out.extend_from_slice(format!(" {name} (").as_bytes());
    for (i, (pos, nums)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(format!("{pos} ").as_bytes());
        write_runs(nums, out);
    }
    out.extend_from_slice(b")\r\n");
}

/// The REMOVEFROM and ADDTO pairs that turn `old` into `new` (UIDs in result order),
/// as numbers the client knows in `view`.
fn diff(view: &View, uid_mode: bool, sorted: bool, old: &[u32], new: &[u32]) -> (Pairs, Pairs) {
    let old_set: HashSet<u32> = old.iter().copied().collect();
    let new_set: HashSet<u32> = new.iter().copied().collect();
    let num = |u: &u32| number(view, uid_mode, *u);
    if !sorted {
        // §4.3.3, §4.3.4: position 0, the set in mailbox order (UIDs and sequence
        // numbers ascend together).
        let pair = |from: &[u32], other: &HashSet<u32>| -> Pairs {
            let nums: Vec<u32> = from
                .iter()
                .filter(|u| !other.contains(u))
                .filter_map(num)
                .collect();
            if nums.is_empty() {
                Vec::new()
            } else {
                vec![(0, nums)]
            }
        };
        return (pair(old, &new_set), pair(new, &old_set));
    }
    // The messages in both keep their relative order (sort keys do not change, and
    // the final tie-breaker, the sequence number, keeps its order across expunges);
    // should they not, everything is removed and added again.
    let kept_old: Vec<u32> = old
        .iter()
        .copied()
        .filter(|u| new_set.contains(u))
        .collect();
    let kept_new: Vec<u32> = new
        .iter()
        .copied()
        .filter(|u| old_set.contains(u))
        .collect();
    let (old_set, new_set) = if kept_old == kept_new {
        (old_set, new_set)
    } else {
        (HashSet::new(), HashSet::new())
    };
    let positioned = |list: &[u32], other: &HashSet<u32>| -> Vec<(usize, u32)> {
        list.iter()
            .enumerate()
            .filter(|(_, u)| !other.contains(u))
            .filter_map(|(i, u)| Some((i.checked_add(1)?, num(u)?)))
            .collect()
    };
    // Removals last position first: each pair's position is then still the one it
    // had in `old`.
    let mut removed = runs(&positioned(old, &new_set));
    removed.reverse();
    // Insertions first position first: everything before each is then in place.
    let added = runs(&positioned(new, &old_set));
    (removed, added)
}

impl Session {
    /// RFC 5267 §4.3: "An attempt to use UPDATE where a tag is already in use with a
    /// previous searching command that itself used UPDATE SHALL result in the server
    /// rejecting the searching command with a BAD response."
    pub(in super::super) fn check_update_tag(&self, tag: &str) -> Result<(), ImapError> {
        match self.view() {
            Some(v) if v.contexts.has(tag) => Err(ImapError::Bad(
                "Tag already names a search context (RFC 5267 §4.3)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Keeps a search as a context with its `results` (UIDs, in order), or says
    /// `* NO [NOUPDATE "tag"]` when this session has [`MAX_CONTEXTS`] (§4.3.1).
    pub(in super::super) fn open_context(
        &mut self,
        tag: &str,
        uid: bool,
        key: &SearchKey,
        sort: Option<Vec<Criterion>>,
        results: Vec<u32>,
        out: &mut Vec<u8>,
    ) {
        let State::Selected(_, view) = &mut self.state else {
            return;
        };
        if view.contexts.0.len() >= MAX_CONTEXTS {
            Status::no(
                Some(Code::NoUpdate(tag.to_string())),
                "Too many search contexts; no updates",
            )
            .encode(None, out);
            return;
        }
        let seen = snapshot(view);
        let known = view.msgs.len();
        view.contexts.0.push(SearchContext {
            tag: tag.to_string(),
            uid,
            key: key.clone(),
            sort,
            results,
            seen,
            known,
        });
    }

    /// CANCELUPDATE (RFC 5267 §4.3.5): no more updates for the contexts named. A tag
    /// that names none fails the command and cancels nothing.
    pub(in super::super) fn cancel_update(
        &mut self,
        tags: &[String],
    ) -> Result<Outcome, ImapError> {
        let (_, view) = self.state.selected_mut()?;
        if let Some(t) = tags.iter().find(|t| !view.contexts.has(t)) {
            return Err(ImapError::No(
                None,
                format!("No search context has the tag {t}"),
            ));
        }
        view.contexts.0.retain(|c| !tags.contains(&c.tag));
        Ok(Outcome::ok("CANCELUPDATE completed"))
    }

    /// The ADDTO / REMOVEFROM updates of every context whose messages changed (RFC
    /// 5267 §4.3.2-§4.3.4). Called by [`Session::updates`] after EXISTS and before
    /// EXPUNGE are announced.
    pub(in super::super) async fn context_updates(&mut self, out: &mut Vec<u8>) {
        let (contexts, now, known) = match &mut self.state {
            State::Selected(_, view) if !view.contexts.is_empty() => (
                std::mem::take(&mut view.contexts),
                snapshot(view),
                view.msgs.len(),
            ),
            _ => return,
        };
        let mut kept = Vec::with_capacity(contexts.0.len());
        for mut c in contexts.0 {
            // After an EXPUNGE, a program on sequence numbers may match others.
            if c.seen == now && (c.known == known || !depends_on_others(&c.key)) {
                c.known = known;
                kept.push(c);
                continue;
            }
            match self.evaluate(&c, &now).await {
                Ok(results) => {
                    if let Some(view) = self.view() {
                        let (removed, added) =
                            diff(view, c.uid, c.sort.is_some(), &c.results, &results);
                        write_update(&c.tag, c.uid, "REMOVEFROM", &removed, out);
                        write_update(&c.tag, c.uid, "ADDTO", &added, out);
                    }
                    c.results = results;
                    c.seen.clone_from(&now);
                    c.known = known;
                    kept.push(c);
                }
                Err(e) => {
                    log::error!("imap: search context {}: {e:?}", c.tag);
                    Status::no(
                        Some(Code::NoUpdate(c.tag.clone())),
                        "Search context dropped",
                    )
                    .encode(None, out);
                }
            }
        }
        if let State::Selected(_, view) = &mut self.state {
            view.contexts = Contexts(kept);
        }
    }

    /// The results of `c` now (UIDs in its order): its last results, with the
    /// messages that changed since its last evaluation (`now` against `c.seen`) tested
    /// again, or all of them when the program depends on other messages.
    async fn evaluate(&mut self, c: &SearchContext, now: &[Seen]) -> Result<Vec<u32>, ImapError> {
        let before: HashMap<u32, (ModSeq, SystemFlags)> = c
            .seen
            .iter()
            .map(|s| (s.uid, (s.modseq, s.flags)))
            .collect();
        let changed: BTreeSet<u32> = now
            .iter()
            .filter(|s| before.get(&s.uid) != Some(&(s.modseq, s.flags)))
            .map(|s| s.uid)
            .collect();
        let matched: BTreeSet<u32> = if depends_on_others(&c.key) {
            let hits = self.search_hits_in(&c.key, None).await?;
            hits.iter().map(|h| h.uid.0).collect()
        } else {
            let live: HashSet<u32> = now.iter().map(|s| s.uid).collect();
            let hits = self.search_hits_in(&c.key, Some(&changed)).await?;
            c.results
                .iter()
                .copied()
                .filter(|u| live.contains(u) && !changed.contains(u))
                .chain(hits.iter().map(|h| h.uid.0))
                .collect()
        };
        match &c.sort {
            None => Ok(matched.into_iter().collect()),
            Some(criteria) => {
                let hits = self.search_hits_in(&SearchKey::All, Some(&matched)).await?;
                let sorted = self.sort_hits(hits, criteria).await?;
                Ok(sorted.iter().map(|h| h.uid.0).collect())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::imap::view::tests::view;

    fn wire(tag: &str, uid: bool, pairs: (Pairs, Pairs)) -> String {
        let mut out = Vec::new();
        write_update(tag, uid, "REMOVEFROM", &pairs.0, &mut out);
        write_update(tag, uid, "ADDTO", &pairs.1, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn cancelupdate_parses_quoted_tags() {
        let p = |s: &str| crate::imap::grammar::parse_whole(s.as_bytes(), parse);
        assert_eq!(p(" \"a1\" \"b2\"").unwrap(), vec!["a1", "b2"]);
        crate::testing::assert_refused(p, &["", " a1", " \"a1", " \"a1\"x", "  \"a1\""]);
    }

    #[test]
    fn search_updates_use_position_zero_and_mailbox_order() {
        let v = view(&[10, 11, 12, 13, 14]);
        // Sequence numbers: 10 -> 1, 14 -> 5.
        let d = diff(&v, false, false, &[10, 11], &[10, 12, 13, 14]);
        assert_eq!(
            wire("t", false, d),
            "* ESEARCH (TAG \"t\") REMOVEFROM (0 2)\r\n\
             * ESEARCH (TAG \"t\") ADDTO (0 3:5)\r\n"
        );
        let d = diff(&v, true, false, &[10, 11, 14], &[10, 14]);
        assert_eq!(
            wire("t", true, d),
            "* ESEARCH (TAG \"t\") UID REMOVEFROM (0 11)\r\n"
        );
        assert_eq!(wire("t", true, diff(&v, true, false, &[10], &[10])), "");
    }

    #[test]
    fn sort_updates_name_positions_that_hold_in_order() {
        let v = view(&[1, 2, 3, 4, 5, 6]);
        // Sort order 5 3 1 6; 3 and 6 go, 2 comes in after 5 and 4 at the end.
        let d = diff(&v, true, true, &[5, 3, 1, 6], &[5, 2, 1, 4]);
        assert_eq!(
            wire("s", true, d),
            "* ESEARCH (TAG \"s\") UID REMOVEFROM (4 6 2 3)\r\n\
             * ESEARCH (TAG \"s\") UID ADDTO (2 2 4 4)\r\n"
        );
        // Consecutive positions with ascending numbers share a pair.
        let d = diff(&v, false, true, &[6], &[1, 2, 6, 3]);
        assert_eq!(
            wire("s", false, d),
            "* ESEARCH (TAG \"s\") ADDTO (1 1:2 4 3)\r\n"
        );
    }

    #[test]
    fn programs_on_positions_or_the_clock_are_evaluated_whole() {
        assert!(depends_on_others(&SearchKey::SeqSet(Default::default())));
        assert!(depends_on_others(&SearchKey::Not(Box::new(
            SearchKey::Older(5)
        ))));
        let last = super::super::super::search::SeqSet(vec![(SeqBound::Value(3), SeqBound::Last)]);
        assert!(depends_on_others(&SearchKey::Uid(last)));
        assert!(!depends_on_others(&SearchKey::Flag(
            SystemFlags::SEEN,
            true
        )));
    }
}
