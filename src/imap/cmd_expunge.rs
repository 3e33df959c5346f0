//! EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (RFC 4315 §2.1; RFC 9051 §6.4.9).
//!
//! The store removes the `\Deleted` messages in one transaction (only those in the UID
//! set for UID EXPUNGE, resolved against the UIDs this client knows); the untagged
//! `* n EXPUNGE` responses then come from the session's update step, which sends one per
//! removed message the client knew about, highest sequence number first so no number
//! shifts under the client (RFC 9051 §7.5.1). A `\Deleted` message that arrived after
//! the client last heard is removed without ever being announced (PROTOCOL.md item 68).
//! Without QRESYNC there is no VANISHED. A read-only mailbox gets `NO [READ-ONLY]`.

use super::response::{Code, ImapError};
use super::sequence::SequenceSet;
use super::session::{Outcome, Session, no};

impl Session {
    pub(super) async fn expunge(
        &mut self,
        uid: bool,
        set: Option<SequenceSet>,
    ) -> Result<Outcome, ImapError> {
        let (mailbox, read_only) = match self.view() {
            Some(v) => (v.mailbox, v.read_only),
            None => return Err(ImapError::Bad("Select a mailbox first".into())),
        };
        let restrict = match (uid, set) {
            (false, _) => None,
            (true, Some(set)) => Some(self.resolve_set(&set, true)?.uids),
            (true, None) => return Err(ImapError::Bad("UID EXPUNGE needs a UID set".into())),
        };
        if read_only {
            return no(Code::ReadOnly, "Mailbox is read-only");
        }
        let done = if uid {
            "UID EXPUNGE completed"
        } else {
            "EXPUNGE completed"
        };
        if restrict.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Outcome::ok(done));
        }
        self.ctx
            .pipeline
            .store
            .expunge_deleted(mailbox, restrict)
            .await?;
        self.dirty = true;
        Ok(Outcome::ok(done))
    }
}
