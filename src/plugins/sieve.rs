//! The Sieve hook, host side: a plugin exporting `nestbox:plugin/sieve` (0.2.0) runs the
//! recipient's active script in the filter chain, at its place in the configured order.
//!
//! - [`SieveCall`]: what the `sieve-host` imports serve during one call (the user's
//!   scripts and mailboxes through [`SieveScripts`], duplicate tracking, whether
//!   vacation is on). The imports answer only for the user of the call.
//! - [`Duplicates`]: RFC 7352 `duplicate` and the vacation per-sender period, kept in
//!   memory by the plugin host (lost on restart; bounded).
//! - [`run`]: calls the plugin for one copy and turns its outcome into copies
//!   ([`Decision::Copies`]), a rejection, or a discard; a vacation reply is handed to
//!   [`super::vacation`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::bindings::SievePlugin;
use super::bindings::exports::filter::Envelope as FilterEnvelope;
use super::bindings::exports::sieve::{Action, Envelope, Outcome};
use super::call::{CallError, Plugin, invalid};
use super::engine::State;
use super::filter::{Decision, Flags, flags_of, sanitise};
use super::message::{MessageView, lend};
use crate::contracts::{HookMessage, MailData, Target, UserId};

/// The user's scripts and mailboxes, as the Sieve imports need them.
pub trait SieveScripts: Send + Sync {
    /// The active script's name and version (`None`: no active script).
    fn active(&self, user: &str) -> Option<(String, String)>;
    /// The script `name`: its version and text.
    fn script(&self, user: &str, name: &str) -> Option<(String, String)>;
    fn mailbox_exists(&self, user: &str, mailbox: &str) -> bool;
}

/// The state behind the `sieve-host` imports for one call.
#[derive(Clone)]
pub(crate) struct SieveCall {
    /// The user the call is for; the imports answer nothing for anyone else.
    pub user: String,
    pub scripts: Option<Arc<dyn SieveScripts>>,
    pub duplicates: Arc<Duplicates>,
    pub vacation: bool,
}

impl SieveCall {
    /// For the calls about no user or message (the extension list, compiling a script):
    /// the imports have nothing to serve.
    fn userless(vacation: bool) -> SieveCall {
        SieveCall {
            user: String::new(),
            scripts: None,
            duplicates: Arc::new(Duplicates::default()),
            vacation,
        }
    }

    pub fn for_user(&self, user: &str) -> Option<&SieveCall> {
        self.user.eq_ignore_ascii_case(user).then_some(self)
    }
}

/// Most identifiers tracked; past it, expired ones are dropped, and if none has
/// expired the oldest half goes.
const MAX_TRACKED: usize = 100_000;
/// The longest period tracked (RFC 7352 §3.3 lets the host cap `:seconds`).
const MAX_PERIOD: u64 = 90 * 86_400;

/// Duplicate tracking in memory: (user, id) -> (recorded at, expires at).
#[derive(Default)]
pub struct Duplicates {
    seen: Mutex<HashMap<(String, String), (i64, i64)>>,
}

impl Duplicates {
    /// Whether `id` was recorded for `user` within its period; records it when not
    /// (and restarts the period with `last`).
    pub fn seen(&self, user: &str, id: &str, seconds: u64, last: bool) -> bool {
        self.seen_at(crate::store::now(), user, id, seconds, last)
    }

    fn seen_at(&self, now: i64, user: &str, id: &str, seconds: u64, last: bool) -> bool {
        let Ok(mut map) = self.seen.lock() else {
            return false;
        };
        let period = i64::try_from(seconds.min(MAX_PERIOD)).unwrap_or(0);
        let key = (user.to_ascii_lowercase(), id.to_string());
        let hit = map.get(&key).is_some_and(|(_, until)| *until > now);
        if !hit || last {
            if map.len() >= MAX_TRACKED {
                map.retain(|_, (_, until)| *until > now);
                if map.len() >= MAX_TRACKED {
                    let mut times: Vec<i64> = map.values().map(|(at, _)| *at).collect();
                    times.sort_unstable();
                    let cut = times.get(times.len() / 2).copied().unwrap_or(now);
                    map.retain(|_, (at, _)| *at > cut);
                }
            }
            map.insert(key, (now, now.saturating_add(period)));
        }
        hit
    }
}

/// Calls the Sieve plugin for one copy: its decision, and the outcome's notes and
/// vacation reply.
pub(crate) fn call(
    plugin: &Plugin,
    env: &Envelope,
    view: &Arc<MessageView>,
    ctx: SieveCall,
) -> Result<(Decision, Outcome), CallError> {
    call_with(plugin, ctx, |store, bindings| {
        let outcome = lend(store, view, |store, message| {
            bindings
                .nestbox_plugin_sieve()
                .call_run(store, env, message)
        })??;
        Ok((decide(&outcome)?, outcome))
    })
}

/// Calls the Sieve hook with `ctx` behind the `sieve-host` imports for the length of
/// the call.
fn call_with<R>(
    plugin: &Plugin,
    ctx: SieveCall,
    f: impl FnOnce(&mut wasmtime::Store<State>, &SievePlugin) -> wasmtime::Result<R>,
) -> Result<R, CallError> {
    plugin.call(plugin.sieve.as_ref(), |store, bindings| {
        store.data_mut().sieve = Some(ctx);
        let r = f(store, bindings);
        store.data_mut().sieve = None;
        r
    })
}

/// What the Sieve hook needs besides the plugin: duplicate tracking and vacation.
pub struct SieveHost {
    pub duplicates: Arc<Duplicates>,
    pub vacation: Option<Arc<super::vacation::Sender>>,
}

impl SieveHost {
    pub fn new(config: &crate::config::Config) -> SieveHost {
        SieveHost {
            duplicates: Arc::new(Duplicates::default()),
            vacation: super::vacation::Sender::new(config).map(Arc::new),
        }
    }

    /// Runs one Sieve plugin for the copy `target` of `msg`.
    pub(crate) fn run(
        &self,
        plugin: &Plugin,
        env: &FilterEnvelope,
        view: &Arc<MessageView>,
        msg: &HookMessage<'_>,
        target: &Target,
    ) -> Result<Decision, CallError> {
        let ctx = SieveCall {
            user: target.user_name.clone(),
            scripts: msg.store.map(|s| {
                Arc::new(StoreScripts {
                    store: s.shared(),
                    user: target.user,
                }) as Arc<dyn SieveScripts>
            }),
            duplicates: self.duplicates.clone(),
            vacation: self.vacation.is_some(),
        };
        let env = Envelope {
            mail_from: env.mail_from.clone(),
            rcpt_to: env.rcpt_to.clone(),
            user: env.user.clone(),
            source: env.source.clone(),
        };
        let (decision, outcome) = call(plugin, &env, view, ctx)?;
        for note in &outcome.notes {
            log::info!("plugin {}: {}: {note}", plugin.name, target.user_name);
        }
        if let (Some(reply), Some(sender)) = (outcome.vacation, &self.vacation) {
            sender.send(reply, &target.address);
        }
        Ok(decision)
    }
}

/// The user's scripts (`crate::store` Sieve tables) and mailboxes in the store. Called
/// from plugin calls, which run on the blocking pool.
struct StoreScripts {
    store: Arc<dyn MailData>,
    user: UserId,
}

impl SieveScripts for StoreScripts {
    fn active(&self, user: &str) -> Option<(String, String)> {
        match self.store.active_script(user) {
            Ok(a) => a.map(|(name, version)| (name, version.to_string())),
            Err(e) => {
                log::warn!("sieve: cannot read the active script of {user}: {e}");
                None
            }
        }
    }

    fn script(&self, user: &str, name: &str) -> Option<(String, String)> {
        let text = self.store.script(user, name).ok()?;
        // Any change of a user's scripts bumps the store's version; a hash of the
        // text is as good a cache key and needs no second read.
        let version = blake3::hash(text.as_bytes()).to_hex()[..16].to_string();
        Some((version, text))
    }

    /// A store that cannot be read answers "no" (RFC 5490 §3.1 has no "unknown"), said in
    /// the log.
    fn mailbox_exists(&self, user: &str, mailbox: &str) -> bool {
        self.store
            .mailbox_exists(self.user, mailbox)
            .unwrap_or_else(|e| {
                log::warn!("sieve: cannot tell whether {user}'s mailbox {mailbox:?} exists: {e}");
                false
            })
    }
}

/// ManageSieve's checker and capability list, asked of the configured Sieve plugin (the
/// first one with the `sieve` hook in the current set); without one, or when the call
/// fails, the built-in lexical checker answers.
pub struct PluginChecker {
    pub host: Arc<super::PluginHost>,
}

impl PluginChecker {
    fn plugin(&self) -> Option<Arc<Plugin>> {
        self.host
            .current()
            .iter()
            .find(|p| p.hooks.contains(&crate::config::PluginHook::Sieve))
            .cloned()
    }
}

impl crate::managesieve::SieveChecker for PluginChecker {
    fn extensions(&self) -> Vec<String> {
        let Some(plugin) = self.plugin() else {
            return Vec::new();
        };
        match extensions(&plugin, self.host.sieve.vacation.is_some()) {
            Ok(e) => e,
            Err(e) => {
                log::warn!("plugin {}: extensions failed: {e}", plugin.name);
                Vec::new()
            }
        }
    }

    fn check(&self, script: &str) -> Result<(), crate::managesieve::ScriptError> {
        let lexical =
            || crate::managesieve::SieveChecker::check(&crate::managesieve::LexicalChecker, script);
        let Some(plugin) = self.plugin() else {
            return lexical();
        };
        match check(&plugin, script, self.host.sieve.vacation.is_some()) {
            Ok(Ok(())) => Ok(()),
            Ok(Err((line, column, message))) => Err(crate::managesieve::ScriptError {
                line,
                column,
                message,
            }),
            Err(e) => {
                log::warn!(
                    "plugin {}: check failed, checking lexically: {e}",
                    plugin.name
                );
                lexical()
            }
        }
    }
}

/// Turns the plugin's outcome into a decision, refusing nonsense (an invalid mailbox
/// name counts as a plugin failure, as for filters).
pub(crate) fn decide(outcome: &Outcome) -> wasmtime::Result<Decision> {
    Ok(match &outcome.action {
        Action::Reject(r) => Decision::Reject {
            permanent: r.permanent,
            text: sanitise(&r.text),
        },
        Action::Deliver(targets) if targets.is_empty() => Decision::Discard,
        Action::Deliver(targets) => {
            let mut copies = Vec::with_capacity(targets.len());
            for t in targets {
                let mailbox = crate::store::canonical_mailbox(&t.mailbox)
                    .map_err(|e| invalid(format!("fileinto {:?}: {e}", t.mailbox)))?;
                let Flags { flags, keywords } = flags_of(&t.flags);
                copies.push(crate::contracts::Copy {
                    mailbox: if mailbox == "INBOX" {
                        None
                    } else {
                        Some(mailbox)
                    },
                    create: true,
                    flags: crate::store::SystemFlags(flags),
                    keywords,
                });
            }
            Decision::Copies(copies)
        }
    })
}

/// The extensions (ManageSieve `SIEVE` capability) and compile errors, asked of a
/// loaded Sieve plugin.
pub(crate) fn extensions(plugin: &Plugin, vacation: bool) -> Result<Vec<String>, CallError> {
    call_with(plugin, SieveCall::userless(vacation), |store, bindings| {
        bindings.nestbox_plugin_sieve().call_extensions(&mut *store)
    })
}

/// A compile error: (line, column, message).
pub type ScriptError = (u32, u32, String);

/// Compiles `script` with the plugin (ManageSieve PUTSCRIPT/CHECKSCRIPT).
pub(crate) fn check(
    plugin: &Plugin,
    script: &str,
    vacation: bool,
) -> Result<Result<(), ScriptError>, CallError> {
    call_with(plugin, SieveCall::userless(vacation), |store, bindings| {
        let r = bindings
            .nestbox_plugin_sieve()
            .call_check(&mut *store, script);
        Ok(r?.map_err(|e| (e.line, e.column, e.message)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_expire_and_last_restarts() {
        let d = Duplicates::default();
        assert!(!d.seen_at(100, "bob", "x", 60, false));
        assert!(d.seen_at(150, "BOB", "x", 60, false));
        assert!(!d.seen_at(161, "bob", "x", 60, false));
        assert!(d.seen_at(200, "bob", "x", 60, true));
        assert!(d.seen_at(250, "bob", "x", 60, false));
        assert!(!d.seen_at(250, "alice", "x", 60, false));
    }
}
