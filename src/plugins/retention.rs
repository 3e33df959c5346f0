//! The retention hook: every retention plugin for the user reviews a batch, in
//! configured order ([`crate::retention`] runs the sweep and applies the decisions).
//!
//! A plugin's answer is checked before anything is applied: more decisions than
//! `plugin_limits.max_decisions`, or a move to an invalid mailbox name, makes the whole
//! answer a failure (nothing of it is applied, and [`crate::retention::run`] drops the
//! plugin's decisions for the rest of the user's run). Decisions for UIDs outside the
//! batch are ignored, as the WIT says.

use std::sync::Arc;

use super::bindings::exports::retention::{self as wit, MailboxInfo};
use super::bindings::wit_types::Limits;
use super::call::{Plugin, invalid};
use super::quota::{disk_status_record, usage};
use crate::contracts::{Action, MailboxFacts, MailboxName, Review, Summary, Uid};

fn info(f: &MailboxFacts) -> MailboxInfo {
    MailboxInfo {
        user: f.user.clone(),
        name: f.name.clone(),
        special_use: f.special_use.clone(),
        annotations: f.annotations.clone(),
        usage: usage(f.usage),
        total: usage(f.total),
        limits: Limits {
            storage_bytes: f.limits.storage_bytes,
            messages: f.limits.messages,
        },
        disk: disk_status_record(f.disk),
    }
}

fn summary(s: &Summary) -> wit::Summary {
    wit::Summary {
        uid: s.uid.0,
        internal_date: s.internal_date,
        save_date: s.save_date,
        size: s.size,
        flags: s.flags.clone(),
        pop3_retrieved: s.pop3_retrieved,
        from: s.from.clone(),
        subject: s.subject.clone(),
        list_id: s.list_id.clone(),
    }
}

/// Checks one plugin's answer: (UID, action) for UIDs of the batch.
fn check(
    decisions: Vec<wit::Decision>,
    batch: &[Summary],
    max: u64,
) -> wasmtime::Result<Vec<(Uid, Action)>> {
    if decisions.len() as u64 > max {
        return Err(invalid(format!(
            "{} decisions for one batch, over plugin_limits.max_decisions ({max})",
            decisions.len()
        )));
    }
    let mut out = Vec::with_capacity(decisions.len());
    for d in decisions {
        let uid = Uid(d.uid);
        if batch.binary_search_by_key(&uid, |s| s.uid).is_err() {
            log::debug!(
                "retention: ignoring a decision for UID {} outside the batch",
                d.uid
            );
            continue;
        }
        let action = match d.action {
            wit::Action::Expunge => Action::Expunge,
            wit::Action::MoveTo(target) => Action::MoveTo(
                MailboxName::new(&target).map_err(|e| invalid(format!("move-to: {e}")))?,
            ),
        };
        out.push((uid, action));
    }
    Ok(out)
}

/// Runs `plugins` (already selected for the user, in order) on one batch.
pub(crate) fn review(plugins: &[Arc<Plugin>], facts: &MailboxFacts, batch: &[Summary]) -> Review {
    let mut out = Review::default();
    if plugins.is_empty() || batch.is_empty() {
        return out;
    }
    let info = info(facts);
    let wit_batch: Vec<wit::Summary> = batch.iter().map(summary).collect();
    for plugin in plugins {
        let max = plugin.limits.max_decisions;
        let got = plugin.call(plugin.retention.as_ref(), |store, bindings| {
            let decisions =
                bindings
                    .nestbox_plugin_retention()
                    .call_review(&mut *store, &info, &wit_batch)?;
            check(decisions, batch, max)
        });
        match got {
            Ok(decisions) => out.decisions.extend(
                decisions
                    .into_iter()
                    .map(|(uid, a)| (plugin.name.to_string(), uid, a)),
            ),
            Err(e) => out.failed.push((plugin.name.to_string(), e.to_string())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(uid: u32) -> Summary {
        Summary {
            uid: Uid(uid),
            internal_date: 0,
            save_date: 0,
            size: 1,
            flags: vec![],
            pop3_retrieved: None,
            from: None,
            subject: None,
            list_id: None,
        }
    }

    fn d(uid: u32, action: wit::Action) -> wit::Decision {
        wit::Decision { uid, action }
    }

    #[test]
    fn decisions_outside_the_batch_are_ignored() {
        let batch = [s(2), s(5)];
        let got = check(
            vec![
                d(2, wit::Action::Expunge),
                d(3, wit::Action::Expunge),
                d(5, wit::Action::MoveTo("archive/2020".into())),
            ],
            &batch,
            10,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                (Uid(2), Action::Expunge),
                (
                    Uid(5),
                    Action::MoveTo(MailboxName::new("archive/2020").unwrap())
                )
            ]
        );
    }

    #[test]
    fn too_many_decisions_or_a_bad_target_fail_the_answer() {
        let batch = [s(1), s(2)];
        assert!(
            check(
                vec![d(1, wit::Action::Expunge), d(2, wit::Action::Expunge)],
                &batch,
                1
            )
            .is_err()
        );
        assert!(check(vec![d(1, wit::Action::MoveTo("a//b".into()))], &batch, 10).is_err());
    }
}
