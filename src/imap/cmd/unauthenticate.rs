//! UNAUTHENTICATE (RFC 8437): back to Not Authenticated on the same connection.

use super::super::grammar::Syntax;
use super::super::response::{Code, ImapError, Status};
use super::super::session::{Action, Outcome, Session};

impl Session {
    /// RFC 8437 §3: "reset all connection state except for the state of the TLS layer".
    /// The session is rebuilt as a new connection's, keeping only the peer (and with it
    /// whether TLS is on) and the count of failed logins (a limit on this connection's
    /// guesses, not state of the user who logged in). Dropping the old state:
    /// - closes the selected mailbox without expunging and without an expunge event
    ///   (§3), like UNSELECT;
    /// - gives back the user's place under `connections.max_per_user` and ends the
    ///   change-feed subscription (what IDLE waits on);
    /// - forgets ENABLE (UTF8=ACCEPT, CONDSTORE, IMAP4rev2), the CONDSTORE report and
    ///   the SORT/THREAD header cache (§4.1);
    /// - ends COMPRESS: the OK goes out compressed, then the driver takes the layer off
    ///   ([`Action::Uncompress`], §4.1).
    ///
    /// The tagged OK carries the new (pre-login) capabilities. Valid in Authenticated and
    /// Selected state; the state check answers BAD before login.
    pub(in super::super) fn unauthenticate(
        &mut self,
        tag: &str,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        if !self.ctx.config.imap.unauthenticate {
            // Not advertised (`imap.unauthenticate: false`, RFC 8437 §8): as if unknown.
            return Err(Syntax::Unknown("command").into());
        }
        let compressed = self.compressed;
        let mut fresh = Session::new(self.ctx.clone(), self.shared.clone(), self.peer);
        fresh.auth_failures = self.auth_failures;
        let old = std::mem::replace(self, fresh);
        if let Some(a) = old.account() {
            log::info!("imap: {} unauthenticated from {}", a.name, self.peer);
        }
        drop(old);
        Status::ok("UNAUTHENTICATE completed")
            .with(Code::Capability(self.capabilities()))
            .encode(Some(tag), out);
        Ok(Outcome::Action(if compressed {
            Action::Uncompress
        } else {
            Action::Continue
        }))
    }
}
