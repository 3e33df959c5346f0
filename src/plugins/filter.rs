//! The filter hook: every filter plugin for the recipient, in configured order.
//!
//! The first reject or discard wins; the mailbox (last one named) and flags (all of
//! them) accumulate over accepting plugins. A plugin that fails (trap, deadline, memory,
//! an invalid mailbox name, not loaded) is skipped under `on_failure: Accept` and turns
//! the copy into a temporary failure under `on_failure: TempFail`.

use std::sync::Arc;

use super::bindings::exports::filter::{Envelope, Verdict};
use super::call::{CallError, Plugin, invalid};
use super::message::{MessageView, lend};
use crate::config::{OnFailure, PluginHook};
use crate::contracts::{FilterVerdict, HookMessage, Source, Target};
use crate::store::SystemFlags;

/// What one plugin decided, checked and normalised.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    Accept {
        mailbox: Option<String>,
        flags: u8,
        keywords: Vec<String>,
    },
    Reject {
        permanent: bool,
        text: String,
    },
    Discard,
    /// A Sieve plugin's copies (never empty).
    Copies(Vec<crate::contracts::Copy>),
}

/// System flag bits and keywords from a list of IMAP flags.
pub(crate) struct Flags {
    pub flags: u8,
    pub keywords: Vec<String>,
}

/// Splits `list` into system flags and keywords: `\Recent`, unknown system flags and
/// invalid keywords are dropped, keywords deduplicated case-insensitively.
pub(crate) fn flags_of(list: &[String]) -> Flags {
    let mut flags = 0u8;
    let mut keywords: Vec<String> = Vec::new();
    for f in list {
        match SystemFlags::bit_of(f) {
            Some(bit) => flags |= bit,
            None if f.starts_with('\\') => {} // \Recent and unknown system flags
            None if is_keyword(f) => {
                if !keywords.iter().any(|k| k.eq_ignore_ascii_case(f)) {
                    keywords.push(f.clone());
                }
            }
            None => log::debug!("filter: ignoring invalid keyword {f:?}"),
        }
    }
    Flags { flags, keywords }
}

/// The envelope a filter sees for this copy.
pub(crate) fn envelope(msg: &HookMessage<'_>, target: &Target) -> Envelope {
    Envelope {
        mail_from: msg.mail_from.filter(|m| !m.is_empty()).map(str::to_string),
        rcpt_to: if target.address.is_empty() {
            target.user_name.clone()
        } else {
            target.address.clone()
        },
        user: target.user_name.clone(),
        source: msg.source.as_str().to_string(),
    }
}

/// Calls one filter plugin.
pub(crate) fn call(
    plugin: &Plugin,
    env: &Envelope,
    view: &Arc<MessageView>,
) -> Result<Decision, CallError> {
    plugin.call(plugin.filter.as_ref(), |store, bindings| {
        let verdict = lend(store, view, |store, message| {
            bindings
                .nestbox_plugin_filter()
                .call_filter(store, env, message)
        })??;
        check(verdict)
    })
}

/// Turns a verdict into a decision, refusing nonsense.
fn check(verdict: Verdict) -> wasmtime::Result<Decision> {
    Ok(match verdict {
        Verdict::Accept(d) => {
            let mailbox = match d.mailbox {
                Some(m) => Some(
                    crate::store::canonical_mailbox(&m)
                        .map_err(|e| invalid(format!("accept: {e}")))?,
                ),
                None => None,
            };
            let Flags { flags, keywords } = flags_of(&d.add_flags);
            Decision::Accept {
                mailbox,
                flags,
                keywords,
            }
        }
        Verdict::Reject(r) => Decision::Reject {
            permanent: r.permanent,
            text: sanitise(&r.text),
        },
        Verdict::Discard => Decision::Discard,
    })
}

/// An IMAP keyword: a non-empty atom (RFC 9051 `flag-keyword`), at most 100 bytes.
fn is_keyword(k: &str) -> bool {
    !k.is_empty() && k.len() <= 100 && k.bytes().all(crate::imap::grammar::is_atom_char)
}

/// One line of printable ASCII, at most 200 characters, for an LMTP/IMAP reply.
pub(crate) fn sanitise(text: &str) -> String {
    let t: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .take(200)
        .collect();
    let t = t.trim();
    if t.is_empty() {
        "rejected by a filter".into()
    } else {
        t.to_string()
    }
}

/// Runs `plugins` (already selected for the user, in order: filters and Sieve) on one
/// copy. Sieve plugins run for deliveries only (not APPEND or import); their copies
/// replace the target (the last Sieve plugin's, if several), while mailboxes and flags
/// of filter plugins still apply to the copy that keeps the message where it was going.
pub(crate) fn run(
    plugins: &[Arc<Plugin>],
    msg: &HookMessage<'_>,
    target: &mut Target,
    sieve: &super::sieve::SieveHost,
) -> FilterVerdict {
    if plugins.is_empty() {
        return FilterVerdict::Accept;
    }
    let env = envelope(msg, target);
    let view = Arc::new(MessageView::new(msg.prefix.to_vec(), msg.raw.clone()));
    let mut copies = None;
    for plugin in plugins {
        let result = if plugin.hooks.contains(&PluginHook::Sieve) {
            if matches!(msg.source, Source::Append | Source::Import) {
                continue;
            }
            sieve.run(plugin, &env, &view, msg, target)
        } else {
            call(plugin, &env, &view)
        };
        match result {
            Ok(Decision::Copies(c)) => copies = Some(c),
            Ok(Decision::Accept {
                mailbox,
                flags,
                keywords,
            }) => {
                // APPEND stores where the client said (its APPENDUID names that
                // mailbox); other paths may re-file.
                if let Some(m) = mailbox
                    && msg.source != Source::Append
                {
                    target.mailbox = Some(m);
                    target.create_mailbox = true;
                }
                target.flags.0 |= flags;
                for k in keywords {
                    if !target.keywords.iter().any(|t| t.eq_ignore_ascii_case(&k)) {
                        target.keywords.push(k);
                    }
                }
            }
            Ok(Decision::Reject { permanent, text }) => {
                log::info!(
                    "plugin {}: rejected the copy for {} ({}): {text}",
                    plugin.name,
                    target.user_name,
                    if permanent { "permanent" } else { "temporary" }
                );
                return FilterVerdict::Reject { permanent, text };
            }
            Ok(Decision::Discard) => {
                log::info!(
                    "plugin {}: discarded the copy for {}",
                    plugin.name,
                    target.user_name
                );
                return FilterVerdict::Discard;
            }
            Err(e) => match plugin.on_failure {
                OnFailure::Accept => {
                    log::warn!(
                        "plugin {}: filter failed, delivering as if accepted: {e}",
                        plugin.name
                    );
                }
                OnFailure::TempFail => {
                    log::warn!(
                        "plugin {}: filter failed, temporary failure (on_failure: TempFail): {e}",
                        plugin.name
                    );
                    return FilterVerdict::Reject {
                        permanent: false,
                        text: "Filter temporarily unavailable, try again later".into(),
                    };
                }
            },
        }
    }
    match copies {
        Some(c) => FilterVerdict::Copies(c),
        None => FilterVerdict::Accept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::exports::filter::Delivery;
    use crate::plugins::bindings::wit_types::Rejection;

    #[test]
    fn accept_normalises_flags_and_mailbox() {
        let d = check(Verdict::Accept(Delivery {
            mailbox: Some("inbox/x".into()),
            add_flags: vec![
                "\\Seen".into(),
                "\\Recent".into(),
                "$Junk".into(),
                "$junk".into(),
                "bad word".into(),
            ],
        }))
        .unwrap();
        assert_eq!(
            d,
            Decision::Accept {
                mailbox: Some("INBOX/x".into()),
                flags: SystemFlags::SEEN,
                keywords: vec!["$Junk".into()],
            }
        );
    }

    #[test]
    fn invalid_mailbox_is_a_failure() {
        assert!(
            check(Verdict::Accept(Delivery {
                mailbox: Some("a//b".into()),
                add_flags: vec![],
            }))
            .is_err()
        );
    }

    #[test]
    fn reject_text_is_sanitised() {
        let d = check(Verdict::Reject(Rejection {
            permanent: true,
            text: "no\r\n250 ok".into(),
        }))
        .unwrap();
        assert_eq!(
            d,
            Decision::Reject {
                permanent: true,
                text: "no  250 ok".into()
            }
        );
    }
}
