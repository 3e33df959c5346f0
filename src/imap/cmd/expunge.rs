//! EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (RFC 4315 §2.1; RFC 9051 §6.4.9).
//!
//! The store removes the `\Deleted` messages in one transaction (only those in the UID
//! set for UID EXPUNGE, resolved against the UIDs this client knows); the session marks
//! the removed UIDs in its view, and the untagged `* n EXPUNGE` responses come from the
//! update step, which sends one per removed message the client knew about, highest
//! sequence number first so no number shifts under the client (RFC 9051 §7.5.1). A
//! `\Deleted` message that arrived after the client last heard is removed without ever
//! being announced (PROTOCOL.md item 68).
//! With QRESYNC the update step sends one `* VANISHED uid-set` instead (RFC 7162 §3.2.7).
//! A read-only mailbox gets `NO [READ-ONLY]`.

use super::super::response::{Code, ImapError};
use super::super::sequence::SequenceSet;
use super::super::session::{Outcome, Session, State, no};

impl Session {
    /// EXPUNGE (`uid_set` None) or UID EXPUNGE of `uid_set`.
    pub(in super::super) async fn expunge(
        &mut self,
        uid_set: Option<SequenceSet>,
    ) -> Result<Outcome, ImapError> {
        let (account, view) = self.state.selected()?;
        let (mailbox, read_only, origin) = (view.mailbox, view.read_only, account.origin);
        let restrict = match &uid_set {
            None => None,
            Some(set) => Some(self.resolve_set(set, true)?.uids),
        };
        if read_only {
            return no(Code::ReadOnly, "Mailbox is read-only");
        }
        let done = if uid_set.is_some() {
            "UID EXPUNGE completed"
        } else {
            "EXPUNGE completed"
        };
        if restrict.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Outcome::ok(done));
        }
        let removed = self
            .store()
            .expunge_deleted(mailbox, restrict, origin)
            .await?;
        // Not woken for its own removal (`origin`): marked here, announced by the
        // update step before the tagged OK. With CONDSTORE on, that step also reads
        // the mailbox again, for the HIGHESTMODSEQ the tagged OK carries (RFC 7162
        // §3.2.10).
        if let State::Selected(_, view) = &mut self.state {
            view.mark_expunged(&removed);
        }
        if self.enabled.condstore && !removed.is_empty() {
            self.dirty = true;
        }
        Ok(Outcome::ok(done))
    }
}
