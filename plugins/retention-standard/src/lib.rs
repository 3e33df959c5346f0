//! Standard retention rules: maximum ages per mailbox (or a default, or the mailbox's
//! `/private/retention` annotation), Trash and Junk emptied by save date, messages
//! expunged some days after POP3 retrieved them, old mail archived into another
//! mailbox, `\Flagged` kept, and every age shortened while the disk is nearly full.
//!
//! Settings: see README.md.

mod rules;

use nestbox_plugin_sdk::retention::{
    Action, Decision, Level, MailboxInfo, Retention, Summary, host,
};

struct RetentionStandard;

impl Retention for RetentionStandard {
    fn review(mailbox: MailboxInfo, batch: Vec<Summary>) -> Vec<Decision> {
        let mb = rules::Mailbox {
            name: &mailbox.name,
            special_use: mailbox.special_use.as_deref(),
            annotations: &mailbox.annotations,
            disk_free: mailbox.disk.free_bytes,
            disk_total: mailbox.disk.total_bytes,
        };
        let settings = rules::Settings::read(&|key| host::config(key), &mb);
        if !settings.warnings.is_empty() {
            host::log(
                Level::Warn,
                &format!(
                    "mailbox {:?} of {}: ignoring malformed settings: {}",
                    mailbox.name,
                    mailbox.user,
                    settings.warnings.join("; ")
                ),
            );
        }
        if settings.disk_low {
            host::log(
                Level::Debug,
                &format!(
                    "mailbox {:?} of {}: disk nearly full, using shortened ages",
                    mailbox.name, mailbox.user
                ),
            );
        }
        let msgs: Vec<rules::Msg> = batch
            .iter()
            .map(|s| rules::Msg {
                uid: s.uid,
                internal_date: s.internal_date,
                save_date: s.save_date,
                flags: &s.flags,
                pop3_retrieved: s.pop3_retrieved,
            })
            .collect();
        rules::review(&settings, &mb, host::now(), &msgs)
            .into_iter()
            .map(|(uid, act)| Decision {
                uid,
                action: match act {
                    rules::Act::Expunge => Action::Expunge,
                    rules::Act::MoveTo(target) => Action::MoveTo(target),
                },
            })
            .collect()
    }
}

nestbox_plugin_sdk::export_retention!(RetentionStandard);
