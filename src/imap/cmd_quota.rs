//! QUOTA (RFC 9208): GETQUOTAROOT (§4.3) and GETQUOTA (§4.2); SETQUOTA is not offered.
//!
//! Every mailbox of a user has the one quota root `""`; its resources are STORAGE (the
//! sum of the messages' RFC822.SIZE over all the user's mailboxes, in KiB rounded up,
//! §5.1) and MESSAGE (the number of messages, §5.2), read from the store's per-mailbox
//! counters. Limits will come from a quota policy plugin; until one is configured no
//! limit applies, and because the grammar needs a limit (`quota-resource = resource-name
//! SP resource-usage SP resource-limit`), "no limit" is reported as the largest
//! `number64`, [`NO_LIMIT`] (docs/rfc-status.md).

use super::response::{self, Code, ImapError};
use super::session::{Outcome, Session, no};

/// The largest RFC 9208 `number64` (2^63 - 1): the limit reported while none applies.
pub const NO_LIMIT: u64 = 9_223_372_036_854_775_807;

impl Session {
    /// `* QUOTA "" (STORAGE used limit MESSAGE count limit)` for the user's root.
    async fn write_quota(&self, out: &mut Vec<u8>) -> Result<(), ImapError> {
        let (user, _) = self.user()?;
        let boxes = self.ctx.pipeline.store.mailboxes(user).await?;
        let bytes: u64 = boxes.iter().fold(0, |a, b| a.saturating_add(b.bytes));
        let messages: u64 = boxes.iter().fold(0, |a, b| a.saturating_add(b.messages));
        let kib = bytes.div_ceil(1024);
        out.extend_from_slice(
            format!("* QUOTA \"\" (STORAGE {kib} {NO_LIMIT} MESSAGE {messages} {NO_LIMIT})\r\n")
                .as_bytes(),
        );
        Ok(())
    }

    /// GETQUOTAROOT (RFC 9208 §4.3): the mailbox's roots, then each root's QUOTA.
    pub(super) async fn get_quota_root(
        &mut self,
        raw: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let info = self.existing(raw).await?;
        out.extend_from_slice(b"* QUOTAROOT ");
        response::mailbox(out, &info.name, self.utf8());
        out.extend_from_slice(b" \"\"\r\n");
        self.write_quota(out).await?;
        Ok(Outcome::ok("GETQUOTAROOT completed"))
    }

    /// GETQUOTA (RFC 9208 §4.2): only the root `""` exists.
    pub(super) async fn get_quota(
        &mut self,
        root: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        if !root.is_empty() {
            return no(Code::NonExistent, "No such quota root");
        }
        self.write_quota(out).await?;
        Ok(Outcome::ok("GETQUOTA completed"))
    }
}
