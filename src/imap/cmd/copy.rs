//! COPY and MOVE and their UID forms (RFC 9051 §6.4.7, §6.4.8, §6.4.9; RFC 3501
//! §6.4.7; RFC 4315 §3 COPYUID; RFC 6851 MOVE; RFC 2180 §4.4 for messages another
//! session has expunged).
//!
//! - The target must exist: `NO [TRYCREATE]` otherwise (never created on the fly).
//! - A COPY/MOVE naming a message another session expunged copies the rest and sends
//!   `* OK [EXPUNGEISSUED]` before its completion (RFC 2180 §4.4, RFC 5530 §3): clients
//!   treat a NO as a failed sync. The tagged OK keeps COPYUID for what was copied
//!   (RFC 4315 §3 wants it there); UID forms skip UIDs that are gone the same way.
//! - COPY answers `OK [COPYUID v src dst] COPY completed`; MOVE sends `* OK [COPYUID
//!   ...]` first, then the EXPUNGE responses (from the session's update step, which
//!   MOVE allows), then the tagged OK (RFC 6851 §4.3). Without QRESYNC there is no
//!   VANISHED.
//! - MOVE out of a read-only (EXAMINEd) mailbox gets `NO [READ-ONLY]` (RFC 9051 §6.3.3).

use super::super::response::{Code, ImapError, Status};
use super::super::sequence::SequenceSet;
use super::super::session::{Outcome, Session, State, no};
use crate::contracts::{MailboxId, QuotaAction, QuotaQuery, QuotaVerdict, Uid, UserId};
use crate::store::{CopyOutcome, StoreError};

/// The messages a message command names, resolved against what the client knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(in super::super) struct Resolved {
    /// UIDs, ascending, of named messages that still exist as far as the view knows.
    pub uids: Vec<Uid>,
    /// A named message is gone in the store but not yet announced (RFC 2180 §4).
    pub expunged: bool,
}

/// `a:b,c` for UIDs in ascending order (RFC 4315 `uid-set`): consecutive runs become
/// ranges, so the source and destination sets of COPYUID stay in matching order.
pub(in super::super) fn uid_set(uids: &[Uid]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(u32, u32)> = None;
    for &Uid(u) in uids {
        run = match run {
            Some((a, b)) if b.checked_add(1) == Some(u) => Some((a, u)),
            Some((a, b)) => {
                parts.push(range(a, b));
                Some((u, u))
            }
            None => Some((u, u)),
        };
    }
    if let Some((a, b)) = run {
        parts.push(range(a, b));
    }
    parts.join(",")
}

/// `OK [EXPUNGEISSUED]` when every named message was expunged by another session.
fn expunged_meanwhile() -> Outcome {
    Outcome::Done(Status::ok("The messages were expunged meanwhile").with(Code::ExpungeIssued))
}

fn range(a: u32, b: u32) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}:{b}")
    }
}

impl Session {
    /// The messages `set` names ([`super::super::view::View::resolve`]), as UIDs, with
    /// whether any of them is already expunged elsewhere.
    pub(in super::super) fn resolve_set(
        &self,
        set: &SequenceSet,
        uid: bool,
    ) -> Result<Resolved, ImapError> {
        let (_, view) = self.state.selected()?;
        let idx = view.resolve(set, uid)?;
        let mut out = Resolved::default();
        for i in idx {
            match view.msgs.get(i) {
                Some(m) if m.expunged => out.expunged = true,
                Some(m) => out.uids.push(m.uid),
                None => {}
            }
        }
        out.uids.sort_unstable();
        out.uids.dedup();
        Ok(out)
    }

    /// COPY / MOVE / UID COPY / UID MOVE.
    pub(in super::super) async fn copy(
        &mut self,
        uid: bool,
        set: SequenceSet,
        raw: &[u8],
        remove: bool,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let verb = if remove { "MOVE" } else { "COPY" };
        let (account, view) = self.state.selected()?;
        let (src, read_only, origin) = (view.mailbox, view.read_only, account.origin);
        let named = self.resolve_set(&set, uid)?;
        let (user, user_name) = self.user()?;
        let name = self.mailbox_name(raw)?;
        if remove && read_only {
            return no(Code::ReadOnly, "Mailbox is read-only");
        }
        let store = self.store().clone();
        let dst = match store.mailbox(user, &name).await {
            Ok(Some(m)) => m,
            Ok(None) => return no(Code::TryCreate, "No such mailbox"),
            Err(StoreError::InvalidName(_)) => return no(Code::Cannot, "Invalid mailbox name"),
            Err(e) => return Err(e.into()),
        };
        let done = format!("{verb} completed");
        if named.uids.is_empty() {
            // Nothing named exists; nothing to do (RFC 9051 §6.4.9).
            if named.expunged {
                return Ok(expunged_meanwhile());
            }
            return Ok(Outcome::ok(&done));
        }
        self.check_quota(
            user,
            user_name,
            src,
            &named.uids,
            &dst.name,
            if remove {
                QuotaAction::Move
            } else {
                QuotaAction::Copy
            },
        )
        .await?;
        // A MOVE's removals name this session (`origin`): it marks them below and
        // announces them itself. What arrives in the destination wakes every session,
        // this one too when it copies into the mailbox it has selected.
        //
        // RFC 2180 §4.4, RFC 5530 §3: what another session expunged is skipped and the
        // rest is copied (or moved); the client hears `* OK [EXPUNGEISSUED]`.
        let asked = named.uids.len();
        let copied: Option<CopyOutcome> = if remove {
            store.move_messages(src, named.uids, dst.id, origin).await?
        } else {
            store.copy_messages(src, named.uids, dst.id).await?
        };
        let Some(c) = copied else {
            // Every named UID vanished between resolving and copying.
            self.dirty = true;
            return Ok(expunged_meanwhile());
        };
        if named.expunged || c.src_uids.len() < asked {
            self.dirty = true;
            Status::ok("Some of the messages were expunged meanwhile")
                .with(Code::ExpungeIssued)
                .encode(None, out);
        }
        if remove && let State::Selected(_, view) = &mut self.state {
            let mut gone = c.src_uids.clone();
            gone.sort_unstable();
            view.mark_expunged(&gone);
            // The update step then reads the mailbox again, for its new HIGHESTMODSEQ
            // (the expunges carry none of their own).
            if self.enabled.condstore {
                self.dirty = true;
            }
        }
        let code = Code::CopyUid {
            uidvalidity: c.uidvalidity,
            src: uid_set(&c.src_uids),
            dst: uid_set(&c.dst_uids),
        };
        if remove {
            // RFC 6851 §4.3: COPYUID in an untagged OK before the EXPUNGEs.
            Status::ok("Moved").with(code).encode(None, out);
            Ok(Outcome::ok(&done))
        } else {
            Ok(Outcome::Done(Status::ok(done).with(code)))
        }
    }
}

impl Session {
    /// The quota policy for a COPY/MOVE batch: `NO [OVERQUOTA]` (RFC 5530 §3, RFC 9208
    /// §4) when it refuses; nothing is copied then.
    async fn check_quota(
        &self,
        user: UserId,
        user_name: String,
        src: MailboxId,
        uids: &[Uid],
        target: &str,
        action: QuotaAction,
    ) -> Result<(), ImapError> {
        let hooks = self.ctx.pipeline.hooks().clone();
        if !hooks.has_quota(&user_name) {
            return Ok(());
        }
        let store = self.store().clone();
        let (size, count) = store.copy_size(src, uids.to_vec()).await?;
        let target = target.to_string();
        let verdict = smol::unblock(move || {
            let query = QuotaQuery {
                user,
                user_name: &user_name,
                mailbox: &target,
                action,
                size,
                count,
            };
            hooks.quota(&store, &query)
        })
        .await;
        match verdict {
            QuotaVerdict::Allow => Ok(()),
            QuotaVerdict::Deny { text, .. } => Err(ImapError::No(Some(Code::OverQuota), text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_keep_order_and_compress_runs() {
        let set = |uids: &[u32]| uid_set(&uids.iter().copied().map(Uid).collect::<Vec<_>>());
        assert_eq!(set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(set(&[5]), "5");
        assert_eq!(set(&[]), "");
        assert_eq!(set(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
        // APPENDUID's set (RFC 4315 §3) is the same writer's.
        assert_eq!(set(&[4]), "4");
        assert_eq!(set(&[4, 5, 6]), "4:6");
        assert_eq!(set(&[4, 6]), "4,6");
    }
}
