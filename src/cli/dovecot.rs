//! `nestbox import --dovecot MAILDIR_ROOT --user U`: moves a Dovecot user in with the ids
//! their clients know (docs/migrate-dovecot.md). The maildir is read by
//! [`crate::mailfmt::dovecot`]; the store gets the mailbox layout first
//! ([`Request::ImportLayout`], refused if those mailboxes hold mail), then each mailbox's
//! messages in UID order with their kept UID (and, in INBOX, POP3 UIDL), then the mailbox's
//! UIDNEXT ([`Request::RaiseUidNext`]). Through the control socket when a server runs.

use std::path::Path;

use super::{Backend, Failure, Importer, exit, fail, progress, sieve, unexpected};
use crate::config::Config;
use crate::contracts::{KeptIds, Uid};
use crate::control::{ErrorKind, Request, Response};
use crate::mailfmt::{dovecot, maildir};
use crate::store::MailboxLayout;

pub(super) async fn import_dovecot(
    config: &Config,
    backend: &mut Backend,
    user: &str,
    root: &Path,
    sieve_dir: Option<&Path>,
) -> Result<(), Failure> {
    let tree = dovecot::scan_dovecot(root).map_err(|e| fail(exit::DATAERR, e.to_string()))?;
    let layout = tree
        .mailboxes
        .iter()
        .map(|m| MailboxLayout {
            name: m.name.clone(),
            uidvalidity: m.uidvalidity,
            special_use: m.special_use,
            subscribed: m.subscribed,
        })
        .collect();
    let request = Request::ImportLayout {
        user: user.to_string(),
        mailboxes: layout,
        other_subscriptions: tree.other_subscriptions.clone(),
    };
    match backend.call(request).await? {
        Response::Layout(report) => {
            for name in report.removed {
                println!("removed the empty mailbox {name} (Dovecot had none of that name)");
            }
        }
        Response::Error(ErrorKind::Invalid, text) => {
            return Err(fail(
                exit::DATAERR,
                format!(
                    "nothing imported: {text}; import --dovecot keeps Dovecot's UIDs and needs \
                     {user}'s mailboxes empty (a new user)"
                ),
            ));
        }
        r => return Err(unexpected(r)),
    }
    let max = usize::try_from(config.limits.max_message_size).unwrap_or(usize::MAX);
    let total: usize = tree.mailboxes.iter().map(|m| m.messages.len()).sum();
    let bar = progress(total as u64, false);
    let mut imp = Importer::new(backend, user);
    for mailbox in &tree.mailboxes {
        // POP3 serves INBOX only (RFC 1939 has no folders).
        let pop3 = mailbox.name == "INBOX";
        for message in &mailbox.messages {
            match maildir::read_maildir_message(&message.entry, max) {
                Ok(m) => {
                    let kept = KeptIds {
                        uid: Uid(message.uid),
                        pop3_uidl: pop3.then(|| message.pop3_uidl.clone()),
                    };
                    imp.push(&mailbox.name, m, Some(kept)).await?;
                }
                Err(e) => {
                    imp.failed += 1;
                    bar.suspend(|| eprintln!("nestbox: skipped: {e}"));
                }
            }
            bar.inc(1);
        }
        // The mailbox's messages are stored before its UIDNEXT moves past them.
        imp.flush().await?;
        let request = Request::RaiseUidNext {
            user: user.to_string(),
            mailbox: mailbox.name.clone(),
            uidnext: mailbox.next_uid,
        };
        imp.backend.call_done(request).await?;
    }
    bar.finish_and_clear();
    imp.backend.finish_packing().await;
    println!(
        "imported {} messages into {} mailboxes from Dovecot, {} failed",
        imp.stored,
        tree.mailboxes.len(),
        imp.failed
    );
    let failed_scripts = import_sieve(config, imp.backend, user, root, sieve_dir).await?;
    if imp.failed > 0 || failed_scripts > 0 {
        return Err(fail(
            exit::DATAERR,
            format!(
                "{} messages and {failed_scripts} Sieve scripts could not be imported",
                imp.failed
            ),
        ));
    }
    Ok(())
}

/// Imports the user's Pigeonhole scripts ([`dovecot::scan_sieve`]) and activates the one
/// `.dovecot.sieve` names. A script that cannot be stored (too large, not UTF-8, broken,
/// a name the store refuses) is named and skipped; returns how many were.
async fn import_sieve(
    config: &Config,
    backend: &mut Backend,
    user: &str,
    root: &Path,
    sieve_dir: Option<&Path>,
) -> Result<usize, Failure> {
    let home = root.parent().unwrap_or(Path::new(""));
    let dir = sieve_dir.map_or_else(|| home.join("sieve"), Path::to_path_buf);
    let link = dir.parent().unwrap_or(Path::new("")).join(".dovecot.sieve");
    let found = dovecot::scan_sieve(&dir, &link).map_err(|e| fail(exit::DATAERR, e.to_string()))?;
    let mut failed = 0;
    let mut stored = Vec::new();
    for (name, path) in found.scripts {
        let text = crate::store::check_sieve_name(&name)
            .map_err(|e| fail(exit::DATAERR, format!("{}: {e}", path.display())))
            .and_then(|()| sieve::read_script(config, Some(path)));
        let result = match text {
            Ok(text) => sieve::put(config, backend, user, &name, text).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => stored.push(name),
            Err(e) => {
                failed += 1;
                eprintln!("nestbox: Sieve script {name:?} skipped: {}", e.message);
            }
        }
    }
    let active = found.active.filter(|a| stored.contains(a));
    if let Some(name) = &active {
        sieve::activate(backend, user, Some(name)).await?;
    }
    if !stored.is_empty() {
        println!(
            "imported {} Sieve scripts{}",
            stored.len(),
            active.map_or(String::new(), |a| format!(", {a:?} active"))
        );
    }
    Ok(failed)
}
