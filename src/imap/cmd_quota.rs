//! QUOTA (RFC 9208): GETQUOTAROOT (§4.3) and GETQUOTA (§4.2); SETQUOTA is not offered.
//!
//! Every mailbox of a user has the one quota root `""`; its resources are STORAGE (the
//! sum of the messages' RFC822.SIZE over all the user's mailboxes, in KiB rounded up,
//! §5.1) and MESSAGE (the number of messages, §5.2), read from the store's per-mailbox
//! counters. Limits come from the quota policy plugins (`limits`, the smallest any of
//! them reports); without one no limit applies, and because the grammar needs a limit
//! (`quota-resource = resource-name SP resource-usage SP resource-limit`), "no limit" is
//! reported as the largest `number64`, [`NO_LIMIT`] (docs/rfc-status.md).

use super::response::{self, Code, ImapError};
use super::session::{Outcome, Session, no};
use crate::delivery::QuotaLimits;

/// The largest RFC 9208 `number64` (2^63 - 1): the limit reported while none applies.
pub const NO_LIMIT: u64 = 9_223_372_036_854_775_807;

/// `* QUOTA "" (STORAGE used limit MESSAGE used limit)`: STORAGE in KiB, rounded up
/// (RFC 9208 §5.1), the message count (§5.2); a missing limit is [`NO_LIMIT`].
fn quota_line(bytes: u64, messages: u64, limits: QuotaLimits) -> String {
    let kib = bytes.div_ceil(1024);
    let storage = limits
        .storage_bytes
        .map(|b| b / 1024)
        .unwrap_or(NO_LIMIT)
        .min(NO_LIMIT);
    let count = limits.messages.unwrap_or(NO_LIMIT).min(NO_LIMIT);
    format!("* QUOTA \"\" (STORAGE {kib} {storage} MESSAGE {messages} {count})\r\n")
}

impl Session {
    /// `* QUOTA "" (STORAGE used limit MESSAGE count limit)` for the user's root.
    async fn write_quota(&self, out: &mut Vec<u8>) -> Result<(), ImapError> {
        let (user, user_name) = self.user()?;
        let store = self.ctx.pipeline.store.clone();
        let boxes = store.mailboxes(user).await?;
        let bytes: u64 = boxes.iter().fold(0, |a, b| a.saturating_add(b.bytes));
        let messages: u64 = boxes.iter().fold(0, |a, b| a.saturating_add(b.messages));
        let hooks = self.ctx.pipeline.hooks().clone();
        let limits = if hooks.has_quota(&user_name) {
            smol::unblock(move || hooks.quota_limits(&store, user, &user_name)).await
        } else {
            QuotaLimits::default()
        };
        out.extend_from_slice(quota_line(bytes, messages, limits).as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_line_reports_limits_in_kib_or_the_largest_number() {
        assert_eq!(
            quota_line(1025, 3, QuotaLimits::default()),
            format!("* QUOTA \"\" (STORAGE 2 {NO_LIMIT} MESSAGE 3 {NO_LIMIT})\r\n")
        );
        let limits = QuotaLimits {
            storage_bytes: Some(10 << 20),
            messages: Some(100),
        };
        assert_eq!(
            quota_line(0, 0, limits),
            "* QUOTA \"\" (STORAGE 0 10240 MESSAGE 0 100)\r\n"
        );
    }
}
