//! Retention sweeps: retention rules (plugins of the `retention` world) choose messages
//! to expunge or move; the host applies what they chose.
//!
//! Run by the server every `retention.interval_secs` and by `nestbox retention run
//! [--user U] [--dry-run]` (through the control socket while a server runs, so IMAP
//! sessions see the EXPUNGEs at once).
//!
//! Per user: every mailbox is reviewed in UID batches of [`BATCH`] messages. The
//! decisions are collected for the whole user first and applied afterwards, one
//! transaction per reviewed batch, leaving out every decision of a rule that failed at any
//! point of the user's run (the WIT contract: "a retention plugin that fails expunges and
//! moves nothing in that run"). Messages that changed or went between review and apply
//! are skipped by the store; a message both expunged and moved by different rules is
//! expunged. A dry run reviews the same way and applies nothing.

use crate::contracts::{MailboxId, Uid, UserId};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::contracts::{Action, MailboxFacts};
use crate::contracts::{Hooks, QuotaLimits};
use crate::store::{self, MailboxInfo, Store, StoreError};

/// Messages per review call.
pub const BATCH: usize = 256;

/// What a run did (or, dry, would do) in one mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxReport {
    pub user: String,
    pub mailbox: String,
    pub expunged: Vec<u32>,
    /// (target mailbox, UIDs).
    pub moved: Vec<(String, Vec<u32>)>,
}

/// The result of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub dry_run: bool,
    /// Users whose rules ran.
    pub users: u64,
    /// Messages reviewed.
    pub reviewed: u64,
    /// Mailboxes where something was (or would be) done.
    pub mailboxes: Vec<MailboxReport>,
    /// `user: rule: why` for each rule that failed; nothing of its was applied for that
    /// user.
    pub failures: Vec<String>,
}

impl Report {
    pub fn expunged(&self) -> usize {
        self.mailboxes.iter().map(|m| m.expunged.len()).sum()
    }
    pub fn moved(&self) -> usize {
        self.mailboxes
            .iter()
            .flat_map(|m| &m.moved)
            .map(|(_, u)| u.len())
            .sum()
    }
}

/// One reviewed batch waiting to be applied.
struct Pending {
    mailbox: MailboxId,
    name: String,
    decisions: Vec<(String, Uid, Action)>,
}

/// Runs the retention rules for every user (or one) and applies their decisions unless
/// `dry_run`. Store errors stop the run; plugin failures are reported in the result.
pub async fn run(
    store: &Store,
    hooks: &Arc<dyn Hooks>,
    user: Option<&str>,
    dry_run: bool,
) -> Result<Report, StoreError> {
    let names: Vec<String> = match user {
        Some(name) => vec![name.to_string()],
        None => store
            .list_users()
            .await?
            .into_iter()
            .map(|u| u.name)
            .collect(),
    };
    let mut users: Vec<(UserId, String)> = Vec::with_capacity(names.len());
    for name in names {
        match store.find_user(&name, "").await? {
            Some(u) => users.push((u.id, u.name)),
            None if user.is_some() => return Err(StoreError::NoSuchUser),
            None => {} // deleted meanwhile
        }
    }
    let disk = store.disk_status().unwrap_or((0, 0));
    let mut report = Report {
        dry_run,
        ..Report::default()
    };
    for (id, name) in users {
        if !hooks.has_retention(&name) {
            continue;
        }
        report.users += 1;
        let usage = store.usage(id).await?;
        let limits = {
            let (hooks, store, name) = (hooks.clone(), store.clone(), name.clone());
            smol::unblock(move || hooks.quota_limits(&store, id, &name)).await
        };
        let mut pending: Vec<Pending> = Vec::new();
        let mut failed: Vec<String> = Vec::new();
        for mb in store.mailboxes(id).await? {
            let facts = facts(&name, &mb, &usage, limits, disk);
            let mut after = Uid(0);
            loop {
                let batch = store.summaries(mb.id, after, BATCH).await?;
                let Some(last) = batch.last().map(|s| s.uid) else {
                    break;
                };
                after = last;
                report.reviewed += batch.len() as u64;
                let review = {
                    let (hooks, facts) = (hooks.clone(), facts.clone());
                    smol::unblock(move || hooks.retention(&facts, &batch)).await
                };
                for (rule, why) in review.failed {
                    log::warn!("retention: {name}/{}: rule {rule} failed: {why}", mb.name);
                    report.failures.push(format!("{name}: {rule}: {why}"));
                    if !failed.contains(&rule) {
                        failed.push(rule);
                    }
                }
                if !review.decisions.is_empty() {
                    pending.push(Pending {
                        mailbox: mb.id,
                        name: mb.name.clone(),
                        decisions: review.decisions,
                    });
                }
            }
        }
        for batch in pending {
            let (expunge, moves) = split(&batch.decisions, &failed);
            if expunge.is_empty() && moves.is_empty() {
                continue;
            }
            let done = if dry_run {
                MailboxReport {
                    user: name.clone(),
                    mailbox: batch.name,
                    expunged: expunge,
                    moved: moves,
                }
            } else {
                let applied = store.apply_retention(batch.mailbox, expunge, moves).await?;
                MailboxReport {
                    user: name.clone(),
                    mailbox: batch.name,
                    expunged: applied.expunged,
                    moved: applied.moved,
                }
            };
            merge(&mut report.mailboxes, done);
        }
    }
    for m in &report.mailboxes {
        let moved: usize = m.moved.iter().map(|(_, u)| u.len()).sum();
        log::info!(
            "retention{}: {}/{}: {} expunged, {moved} moved",
            if dry_run {
                " (dry run, nothing applied)"
            } else {
                ""
            },
            m.user,
            m.mailbox,
            m.expunged.len(),
        );
    }
    Ok(report)
}

fn facts(
    user: &str,
    mb: &MailboxInfo,
    usage: &store::UsageReport,
    limits: QuotaLimits,
    disk: (u64, u64),
) -> MailboxFacts {
    let own = usage
        .mailboxes
        .iter()
        .find(|(n, _)| *n == mb.name)
        .map(|(_, u)| *u)
        .unwrap_or_default();
    MailboxFacts {
        user: user.to_string(),
        name: mb.name.clone(),
        special_use: mb.special_use.map(|s| s.attribute().to_string()),
        annotations: Vec::new(),
        usage: own,
        total: usage.total,
        limits,
        disk,
    }
}

/// The decisions of rules that did not fail, as UIDs to expunge and (target, UIDs) to
/// move (as the store's bare UIDs). Expunge wins over move; the first rule to move a
/// message chooses the target.
type Split = (Vec<u32>, Vec<(String, Vec<u32>)>);
fn split(decisions: &[(String, Uid, Action)], failed: &[String]) -> Split {
    let ok = || {
        decisions
            .iter()
            .filter(|(rule, _, _)| !failed.contains(rule))
            .map(|(_, uid, action)| (uid.0, action))
    };
    let mut expunge: Vec<u32> = ok()
        .filter(|(_, a)| **a == Action::Expunge)
        .map(|(uid, _)| uid)
        .collect();
    expunge.sort_unstable();
    expunge.dedup();
    let mut seen: Vec<u32> = expunge.clone();
    let mut moves: Vec<(String, Vec<u32>)> = Vec::new();
    for (uid, action) in ok() {
        let Action::MoveTo(target) = action else {
            continue;
        };
        if seen.contains(&uid) {
            continue;
        }
        seen.push(uid);
        match moves.iter_mut().find(|(t, _)| t == target.as_str()) {
            Some((_, uids)) => uids.push(uid),
            None => moves.push((target.to_string(), vec![uid])),
        }
    }
    (expunge, moves)
}

fn merge(all: &mut Vec<MailboxReport>, one: MailboxReport) {
    match all
        .iter_mut()
        .find(|m| m.user == one.user && m.mailbox == one.mailbox)
    {
        Some(m) => {
            m.expunged.extend(one.expunged);
            for (target, uids) in one.moved {
                match m.moved.iter_mut().find(|(t, _)| *t == target) {
                    Some((_, u)) => u.extend(uids),
                    None => m.moved.push((target, uids)),
                }
            }
        }
        None => all.push(one),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(rule: &str, uid: u32, a: Action) -> (String, Uid, Action) {
        (rule.into(), Uid(uid), a)
    }

    fn name(n: &str) -> crate::contracts::MailboxName {
        crate::contracts::MailboxName::new(n).unwrap()
    }

    #[test]
    fn split_drops_failed_rules_and_expunge_wins() {
        let decisions = vec![
            d("a", 3, Action::Expunge),
            d("b", 3, Action::MoveTo(name("Archive"))),
            d("b", 4, Action::MoveTo(name("Archive"))),
            d("a", 5, Action::MoveTo(name("Old"))),
            d("b", 5, Action::MoveTo(name("Archive"))),
            d("c", 6, Action::Expunge),
        ];
        let (e, m) = split(&decisions, &["c".into()]);
        assert_eq!(e, vec![3]);
        assert_eq!(
            m,
            vec![("Archive".into(), vec![4]), ("Old".into(), vec![5])]
        );
        let (e, m) = split(&decisions, &["a".into(), "b".into(), "c".into()]);
        assert!(e.is_empty() && m.is_empty());
    }
}
