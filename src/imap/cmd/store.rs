//! STORE and UID STORE (RFC 9051 §6.4.6, §6.4.9; RFC 3501 §6.4.6) with CONDSTORE
//! `UNCHANGEDSINCE` and `[MODIFIED ...]` (RFC 7162 §3.1.3).

use super::super::grammar::{Parser, R, Syntax};
use super::super::response::{Code, ImapError, Status};
use super::super::search::write_sequence_set;
use super::super::sequence::SequenceSet;
use super::super::session::{Outcome, Session};
use super::super::view::flag_list;
use super::append::split_flags;
use super::fetch::mod_sequence;
use crate::contracts::{ModSeq, Uid};
use crate::store::FlagMode;

/// A parsed STORE argument list (RFC 9051 §9 `store-att-flags`, RFC 7162 §7
/// `store-modifier`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreArgs {
    pub unchanged_since: Option<ModSeq>,
    pub mode: FlagMode,
    pub silent: bool,
    pub flags: Vec<String>,
}

/// `[SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"] SP ("+" / "-") "FLAGS"
/// [".SILENT"] SP (flag-list / (flag *(SP flag)))`, after the sequence set.
pub fn store_args(p: &mut Parser<'_>) -> R<StoreArgs> {
    let mut unchanged_since = None;
    if p.eat(b'(') {
        if !p.keyword("UNCHANGEDSINCE") {
            return Err(Syntax::Unknown("STORE modifier"));
        }
        p.sp()?;
        unchanged_since = Some(mod_sequence(p)?);
        p.expect(b')', ")")?;
        p.sp()?;
    }
    let mode = if p.eat(b'+') {
        FlagMode::Add
    } else if p.eat(b'-') {
        FlagMode::Remove
    } else {
        FlagMode::Replace
    };
    let silent = if p.keyword("FLAGS.SILENT") {
        true
    } else if p.keyword("FLAGS") {
        false
    } else {
        return Err(Syntax::Expected("FLAGS, +FLAGS or -FLAGS"));
    };
    p.sp()?;
    let flags = if p.peek() == Some(b'(') {
        p.flag_list()?
    } else {
        let mut v = Vec::new();
        loop {
            let bs = p.eat(b'\\');
            let a = String::from_utf8_lossy(p.atom()?).into_owned();
            v.push(if bs { format!("\\{a}") } else { a });
            if !p.eat(b' ') {
                break;
            }
        }
        v
    };
    Ok(StoreArgs {
        unchanged_since,
        mode,
        silent,
        flags,
    })
}

impl Session {
    /// STORE / UID STORE (RFC 9051 §6.4.6, §6.4.9; RFC 7162 §3.1.3).
    pub(in super::super) async fn store_flags(
        &mut self,
        uid: bool,
        set: SequenceSet,
        args: StoreArgs,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        // `\Recent` cannot be stored (RFC 3501 §2.3.2): split_flags ignores it.
        let (flags, keywords) = split_flags(&args.flags)?;
        if args.unchanged_since.is_some() {
            // RFC 7162 §3.1: UNCHANGEDSINCE enables CONDSTORE.
            self.enabled.condstore = true;
        }
        let condstore = self.enabled.condstore;
        let qresync = self.enabled.qresync;
        let rev1 = !self.enabled.rev2;
        let store = self.store().clone();
        let (account, view) = self.state.selected_mut()?;
        let origin = account.origin;
        let picked = view.resolve(&set, uid)?;
        // RFC 9051 §6.3.3: no changes in a mailbox selected with EXAMINE.
        if view.read_only {
            return Err(ImapError::no(Code::ReadOnly, "Mailbox is read-only"));
        }
        // RFC 2180 §4.2: messages expunged elsewhere are left alone; the rest are
        // stored and the completion is `OK [EXPUNGEISSUED]` (RFC 5530 §3).
        let uids: Vec<Uid> = picked
            .iter()
            .filter_map(|i| view.msgs.get(*i))
            .filter(|m| !m.expunged)
            .map(|m| m.uid)
            .collect();
        let mut expunge_issued = uids.len() < picked.len();
        if uids.is_empty() {
            return Ok(store_completed(expunge_issued));
        }
        let asked = uids.len();
        let done = store
            .store_flags(
                view.mailbox,
                uids,
                args.mode,
                flags,
                keywords,
                args.unchanged_since,
                origin,
            )
            .await?;
        // This session is not woken for its own change (`origin`): it brings its view up
        // to date here, new keywords included (FLAGS before the FETCHes that use them).
        view.learn_keywords(done.changed.iter().flat_map(|s| s.keywords.iter()), out);
        let changed: Vec<Uid> = done.changed.iter().map(|s| s.uid).collect();
        // A UID the view still knew but the store no longer has was expunged meanwhile.
        let answered = done.changed.len() + done.unchanged.len() + done.modified.len();
        expunge_issued |= answered < asked;
        for st in done.changed.into_iter().chain(done.unchanged) {
            let Some(i) = view.apply_own(&st) else {
                continue;
            };
            let Some(m) = view.msgs.get(i) else {
                continue;
            };
            // `.SILENT` suppresses the echo, except that a changed message's new MODSEQ
            // is still reported once CONDSTORE is on (RFC 7162 §3.1.3, example 3).
            let was_changed = changed.contains(&m.uid);
            if args.silent && !(condstore && was_changed) {
                continue;
            }
            let mut line = format!("* {} FETCH (", i.saturating_add(1));
            // RFC 7162 §3.2.4: with QRESYNC every STORE echo carries the UID.
            if uid || qresync {
                line.push_str(&format!("UID {} ", m.uid));
            }
            if !args.silent {
                let recent = rev1 && view.recent.contains(&m.uid);
                line.push_str(&format!(
                    "FLAGS {} ",
                    flag_list(m.flags, &m.keywords, recent)
                ));
            }
            if condstore {
                line.push_str(&format!("MODSEQ ({}) ", m.modseq));
            }
            let line = line.trim_end().to_string() + ")\r\n";
            out.extend_from_slice(line.as_bytes());
        }
        if !done.modified.is_empty() {
            // The set is of UIDs for UID STORE, else of sequence numbers.
            let mut nums: Vec<u32> = if uid {
                done.modified.iter().map(|u| u.0).collect()
            } else {
                view.msgs
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| done.modified.contains(&m.uid))
                    .filter_map(|(i, _)| u32::try_from(i.saturating_add(1)).ok())
                    .collect()
            };
            nums.sort_unstable();
            let mut set = Vec::new();
            write_sequence_set(&nums, &mut set);
            return Ok(Outcome::Done(
                Status::ok("Conditional STORE failed for some messages")
                    .with(Code::Modified(String::from_utf8_lossy(&set).into_owned())),
            ));
        }
        Ok(store_completed(expunge_issued))
    }
}

/// The STORE completion: `OK [EXPUNGEISSUED]` when a named message was expunged by
/// another session (RFC 5530 §3; RFC 2180 §4.2), never a failure of the whole command.
fn store_completed(expunge_issued: bool) -> Outcome {
    if expunge_issued {
        Outcome::Done(Status::ok("Some messages were expunged meanwhile").with(Code::ExpungeIssued))
    } else {
        Outcome::ok("STORE completed")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::imap::grammar::parse_whole;

    #[test]
    fn store_args_parse() {
        let a = parse_whole(b"(UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Seen foo)", store_args).unwrap();
        assert_eq!(a.unchanged_since, Some(ModSeq(5)));
        assert_eq!(a.mode, FlagMode::Add);
        assert!(a.silent);
        assert_eq!(a.flags, vec!["\\Seen", "foo"]);
        let a = parse_whole(b"flags \\Deleted \\Seen", store_args).unwrap();
        assert_eq!(a.mode, FlagMode::Replace);
        assert_eq!(a.flags, vec!["\\Deleted", "\\Seen"]);
        let a = parse_whole(b"-FLAGS ()", store_args).unwrap();
        assert_eq!(a.mode, FlagMode::Remove);
        assert!(a.flags.is_empty());
    }

    #[test]
    fn store_args_must_fail() {
        let refused: &[&[u8]] = &[
            b"FLAGS",
            b"+FLAG (\\Seen)",
            b"*FLAGS (\\Seen)",
            b"(UNCHANGEDSINCE) FLAGS (\\Seen)",
            b"(FOO 1) FLAGS (\\Seen)",
            b"FLAGS (\\Seen",
        ];
        crate::testing::assert_refused(|a: &[u8]| parse_whole(a, store_args), refused);
    }
}
