//! QUOTA (RFC 9208): GETQUOTAROOT (§4.3) and GETQUOTA (§4.2); SETQUOTA is not offered.
//!
//! Every mailbox of a user has the one quota root `""`; its resources are STORAGE (the
//! sum of the messages' RFC822.SIZE over all the user's mailboxes, in KiB rounded up,
//! §5.1) and MESSAGE (the number of messages, §5.2), read from the store's per-mailbox
//! counters. Limits come from the quota policy plugins (`limits`, the smallest any of
//! them reports). A resource without a limit is not reported; without any limit there
//! is no quota root at all: GETQUOTAROOT names none (§4.3 allows zero roots) and
//! GETQUOTA `""` is `NO [NONEXISTENT]`. (Reporting a 2^63 limit made webmail draw a
//! quota bar stuck at 0%.)

use super::super::response::{self, Code, ImapError};
use super::super::session::{Outcome, Session, no};
use crate::contracts::QuotaLimits;

/// `* QUOTA "" (STORAGE used limit MESSAGE used limit)`: STORAGE in KiB, rounded up
/// (RFC 9208 §5.1), the message count (§5.2); only resources that have a limit.
/// `None` when no resource has one (the root does not exist).
fn quota_line(bytes: u64, messages: u64, limits: QuotaLimits) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(b) = limits.storage_bytes {
        parts.push(format!("STORAGE {} {}", bytes.div_ceil(1024), b / 1024));
    }
    if let Some(n) = limits.messages {
        parts.push(format!("MESSAGE {messages} {n}"));
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!("* QUOTA \"\" ({})\r\n", parts.join(" ")))
}

impl Session {
    /// The `* QUOTA` line of the user's root, `None` when no limit applies.
    async fn quota(&self) -> Result<Option<String>, ImapError> {
        let (user, user_name) = self.user()?;
        let hooks = self.ctx.pipeline.hooks().clone();
        if !hooks.has_quota(&user_name) {
            return Ok(None);
        }
        let store = self.store().clone();
        let boxes = store.mailboxes(user).await?;
        let bytes: u64 = boxes.iter().fold(0, |a, b| a.saturating_add(b.bytes));
        let messages: u64 = boxes.iter().fold(0, |a, b| a.saturating_add(b.messages));
        let limits = smol::unblock(move || hooks.quota_limits(&store, user, &user_name)).await;
        Ok(quota_line(bytes, messages, limits))
    }

    /// GETQUOTAROOT (RFC 9208 §4.3): the mailbox's roots, then each root's QUOTA.
    pub(in super::super) async fn get_quota_root(
        &mut self,
        raw: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let info = self.existing(raw).await?;
        let quota = self.quota().await?;
        out.extend_from_slice(b"* QUOTAROOT ");
        response::mailbox(out, &info.name, self.utf8());
        if let Some(line) = quota {
            out.extend_from_slice(b" \"\"\r\n");
            out.extend_from_slice(line.as_bytes());
        } else {
            out.extend_from_slice(b"\r\n");
        }
        Ok(Outcome::ok("GETQUOTAROOT completed"))
    }

    /// GETQUOTA (RFC 9208 §4.2): only the root `""` exists, and only while a limit
    /// applies.
    pub(in super::super) async fn get_quota(
        &mut self,
        root: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        if !root.is_empty() {
            return no(Code::NonExistent, "No such quota root");
        }
        let Some(line) = self.quota().await? else {
            return no(Code::NonExistent, "No quota applies");
        };
        out.extend_from_slice(line.as_bytes());
        Ok(Outcome::ok("GETQUOTA completed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_line_reports_only_resources_with_a_limit() {
        assert_eq!(quota_line(1025, 3, QuotaLimits::default()), None);
        let limits = QuotaLimits {
            storage_bytes: Some(10 << 20),
            messages: Some(100),
        };
        assert_eq!(
            quota_line(0, 0, limits).as_deref(),
            Some("* QUOTA \"\" (STORAGE 0 10240 MESSAGE 0 100)\r\n")
        );
        let limits = QuotaLimits {
            storage_bytes: None,
            messages: Some(100),
        };
        assert_eq!(
            quota_line(1025, 3, limits).as_deref(),
            Some("* QUOTA \"\" (MESSAGE 3 100)\r\n")
        );
    }
}
