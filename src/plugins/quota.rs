//! The quota hook: every quota plugin for the user, in configured order.
//!
//! `check` runs before a delivered copy, an APPEND, an imported message or a COPY/MOVE
//! batch is committed; the first deny wins. A plugin that fails (trap, deadline, memory,
//! not loaded) counts as "allow" under `on_failure: Accept` and as a temporary deny
//! under `on_failure: TempFail`. `limits` answers IMAP GETQUOTA: for each resource the
//! smallest limit any plugin reports; a failing plugin reports none.

use std::sync::Arc;

use super::bindings::exports::quota::{Action, Decision, Request};
use super::bindings::wit_types::{DiskStatus, Limits, MailboxUsage, Usage};
use super::call::Plugin;
use super::filter::sanitise;
use crate::config::OnFailure;
use crate::contracts::{self, MailData, UsageReport, UserId};
use crate::contracts::{QuotaAction, QuotaLimits, QuotaQuery, QuotaVerdict};

pub(crate) fn usage(u: contracts::Usage) -> Usage {
    Usage {
        messages: u.messages,
        logical_bytes: u.logical,
        physical_bytes: u.physical,
    }
}

/// (free, total) bytes as the WIT record.
pub(crate) fn disk_status_record((free, total): (u64, u64)) -> DiskStatus {
    DiskStatus {
        free_bytes: free,
        total_bytes: total,
    }
}

fn request(q: &QuotaQuery<'_>, report: &UsageReport, disk: DiskStatus) -> Request {
    Request {
        user: q.user_name.to_string(),
        mailbox: q.mailbox.to_string(),
        action: match q.action {
            QuotaAction::Deliver => Action::Deliver,
            QuotaAction::Append => Action::Append,
            QuotaAction::Copy => Action::Copy,
            QuotaAction::Move => Action::Move,
            QuotaAction::Import => Action::Import,
        },
        size: q.size,
        count: q.count,
        total: usage(report.total),
        mailboxes: report
            .mailboxes
            .iter()
            .map(|(name, u)| MailboxUsage {
                mailbox: name.clone(),
                usage: usage(*u),
            })
            .collect(),
        disk,
    }
}

/// Runs `plugins` (already selected for the user, in order) for one request.
pub(crate) fn check(
    plugins: &[Arc<Plugin>],
    store: &dyn MailData,
    q: &QuotaQuery<'_>,
) -> QuotaVerdict {
    if plugins.is_empty() {
        return QuotaVerdict::Allow;
    }
    let report = match store.usage(q.user) {
        Ok(r) => r,
        Err(e) => {
            // The commit that follows meets the same store; the policy cannot be asked.
            log::warn!("quota: cannot read the usage of {}: {e}", q.user_name);
            return QuotaVerdict::Allow;
        }
    };
    let req = request(q, &report, disk_status_record(store.disk()));
    for plugin in plugins {
        let decision = plugin.call(plugin.quota.as_ref(), |store, bindings| {
            bindings
                .nestbox_plugin_quota()
                .call_check(&mut *store, &req)
        });
        match decision {
            Ok(Decision::Allow) => {}
            Ok(Decision::Deny(r)) => {
                let text = if r.text.trim().is_empty() {
                    "Mailbox full".to_string()
                } else {
                    sanitise(&r.text)
                };
                log::info!(
                    "plugin {}: quota denied {} octets for {}/{} ({}): {text}",
                    plugin.name,
                    q.size,
                    q.user_name,
                    q.mailbox,
                    if r.permanent {
                        "permanent"
                    } else {
                        "temporary"
                    }
                );
                return QuotaVerdict::Deny {
                    permanent: r.permanent,
                    text,
                };
            }
            Err(e) => match plugin.on_failure {
                OnFailure::Accept => log::warn!(
                    "plugin {}: quota check failed, allowing as if it had: {e}",
                    plugin.name
                ),
                OnFailure::TempFail => {
                    log::warn!(
                        "plugin {}: quota check failed, temporary failure (on_failure: TempFail): {e}",
                        plugin.name
                    );
                    return QuotaVerdict::Deny {
                        permanent: false,
                        text: "Quota policy temporarily unavailable, try again later".into(),
                    };
                }
            },
        }
    }
    QuotaVerdict::Allow
}

/// The limits to report for a user: per resource, the smallest any plugin gives.
pub(crate) fn limits(
    plugins: &[Arc<Plugin>],
    store: &dyn MailData,
    user: UserId,
    user_name: &str,
) -> QuotaLimits {
    let mut out = QuotaLimits::default();
    if plugins.is_empty() {
        return out;
    }
    let total = match store.usage(user) {
        Ok(r) => usage(r.total),
        Err(e) => {
            log::warn!("quota: cannot read the usage of {user_name}: {e}");
            return out;
        }
    };
    let disk = disk_status_record(store.disk());
    for plugin in plugins {
        let got = plugin.call(plugin.quota.as_ref(), |store, bindings| {
            bindings
                .nestbox_plugin_quota()
                .call_limits(&mut *store, user_name, total, disk)
        });
        match got {
            Ok(Limits {
                storage_bytes,
                messages,
            }) => {
                out.storage_bytes = min(out.storage_bytes, storage_bytes);
                out.messages = min(out.messages, messages);
            }
            Err(e) => log::warn!(
                "plugin {}: quota limits failed, reporting none from it: {e}",
                plugin.name
            ),
        }
    }
    out
}

fn min(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallest_limit_wins_and_none_is_no_limit() {
        assert_eq!(min(None, None), None);
        assert_eq!(min(Some(5), None), Some(5));
        assert_eq!(min(None, Some(7)), Some(7));
        assert_eq!(min(Some(9), Some(7)), Some(7));
    }
}
