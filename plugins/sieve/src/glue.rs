//! The component: `world sieve-plugin` of `wit/nestbox-plugin.wit` over the interpreter.
//!
//! Compiled scripts are cached in the warm instance by (user, name, version); the host
//! gives the version with the active script's name, so an unchanged script is compiled
//! once per instance, not once per message.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::matching::PatternCache;
use crate::{Envelope, Limits, Script};

#[allow(unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "sieve-plugin",
    });
}

use bindings::exports::nestbox::plugin::sieve::{
    Action, Envelope as WitEnvelope, Guest, Outcome as WitOutcome, ScriptError, Target,
    VacationReply,
};
use bindings::nestbox::plugin::host;
use bindings::nestbox::plugin::sieve_host;
use bindings::nestbox::plugin::types::{Message as WitMessage, Rejection};

/// Compiled scripts kept per instance; more and the cache starts over.
const CACHED_SCRIPTS: usize = 256;

type Key = (String, String, String);

thread_local! {
    static SCRIPTS: RefCell<HashMap<Key, Result<Rc<Script>, crate::Error>>> =
        RefCell::new(HashMap::new());
    static PATTERNS: RefCell<Option<PatternCache>> = const { RefCell::new(None) };
    static LIMITS: RefCell<Option<Limits>> = const { RefCell::new(None) };
}

/// The run limits, from the plugin's settings (`max_steps`, `max_variable_bytes`,
/// `max_include_depth`, `max_regex_bytes`, `max_body_bytes`) over the defaults.
fn limits() -> Limits {
    LIMITS.with(|l| {
        *l.borrow_mut().get_or_insert_with(|| {
            let d = Limits::default();
            let get = |k: &str, d: u64| {
                host::config(k)
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(d)
            };
            let size = |k: &str, d: usize| usize::try_from(get(k, d as u64)).unwrap_or(d);
            Limits {
                max_steps: get("max_steps", d.max_steps),
                max_variable_bytes: size("max_variable_bytes", d.max_variable_bytes),
                max_include_depth: size("max_include_depth", d.max_include_depth),
                max_regex_bytes: size("max_regex_bytes", d.max_regex_bytes),
                max_body_bytes: size("max_body_bytes", d.max_body_bytes),
            }
        })
    })
}

/// The user's script `name` at `version`, compiled once per instance.
fn compiled(
    user: &str,
    name: &str,
    version: &str,
    text: impl FnOnce() -> Option<String>,
    vacation: bool,
) -> Result<Rc<Script>, String> {
    let key = (user.to_string(), name.to_string(), version.to_string());
    if let Some(hit) = SCRIPTS.with(|c| c.borrow().get(&key).cloned()) {
        return hit.map_err(|e| e.to_string());
    }
    let src = text().ok_or_else(|| format!("script {name:?} does not exist"))?;
    let result = crate::check(&src, vacation).map(Rc::new);
    SCRIPTS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHED_SCRIPTS {
            c.clear();
        }
        c.insert(key, result.clone());
    });
    result.map_err(|e| e.to_string())
}

struct Msg<'a> {
    msg: &'a WitMessage,
    max_body: usize,
}

impl crate::Message for Msg<'_> {
    fn size(&self) -> u64 {
        self.msg.size()
    }
    fn header(&self, name: &str) -> Vec<String> {
        self.msg.header(name)
    }
    fn body_text(&self) -> Option<String> {
        self.msg
            .text(u32::try_from(self.max_body).unwrap_or(u32::MAX))
    }
    fn body_raw(&self) -> String {
        let mut raw = Vec::new();
        let want = self.max_body as u64 + 64 * 1024;
        while (raw.len() as u64) < want.min(self.msg.size()) {
            let chunk = self.msg.read(raw.len() as u64, 1 << 20);
            if chunk.is_empty() {
                break;
            }
            raw.extend_from_slice(&chunk);
        }
        let body = match raw.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(i) => raw.get(i + 4..).unwrap_or_default(),
            None => &[],
        };
        String::from_utf8_lossy(body).into_owned()
    }
}

struct Host {
    user: String,
    vacation: bool,
}

impl crate::Host for Host {
    fn include(&mut self, name: &str) -> Result<Rc<Script>, String> {
        let script =
            sieve_host::script(&self.user, name).ok_or_else(|| "no such script".to_string())?;
        let text = script.text;
        compiled(
            &self.user,
            name,
            &script.version,
            || Some(text),
            self.vacation,
        )
    }
    fn duplicate(&mut self, id: &str, seconds: u64, last: bool) -> bool {
        sieve_host::duplicate(&self.user, id, seconds, last)
    }
    fn mailbox_exists(&mut self, name: &str) -> bool {
        sieve_host::mailbox_exists(&self.user, name)
    }
    fn now(&self) -> i64 {
        host::now()
    }
}

fn keep(notes: Vec<String>) -> WitOutcome {
    WitOutcome {
        action: Action::Deliver(vec![Target {
            mailbox: "INBOX".into(),
            flags: Vec::new(),
            create: false,
        }]),
        vacation: None,
        notes,
    }
}

struct Sieve;

impl Guest for Sieve {
    fn extensions() -> Vec<String> {
        crate::extensions(sieve_host::vacation_enabled())
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    fn check(script: String) -> Result<(), ScriptError> {
        crate::check(&script, sieve_host::vacation_enabled())
            .map(|_| ())
            .map_err(|e| ScriptError {
                line: e.pos.line,
                column: e.pos.column,
                message: e.message,
            })
    }

    fn run(env: WitEnvelope, msg: &WitMessage) -> WitOutcome {
        let Some(active) = sieve_host::active_script(&env.user) else {
            return keep(Vec::new());
        };
        let vacation = sieve_host::vacation_enabled();
        let user = env.user.clone();
        let script = match compiled(
            &user,
            &active.name,
            &active.version,
            || sieve_host::script(&user, &active.name).map(|s| s.text),
            vacation,
        ) {
            Ok(s) => s,
            Err(e) => {
                return keep(vec![format!(
                    "the active script {:?} cannot run, keeping: {e}",
                    active.name
                )]);
            }
        };
        let limits = limits();
        let envelope = Envelope {
            from: env.mail_from,
            to: env.rcpt_to,
            user: env.user,
        };
        let m = Msg {
            msg,
            max_body: limits.max_body_bytes,
        };
        let mut h = Host { user, vacation };
        let out = PATTERNS.with(|p| {
            let mut p = p.borrow_mut();
            let cache = p.get_or_insert_with(|| PatternCache::new(limits.max_regex_bytes));
            crate::run(&script, &m, &envelope, &mut h, limits, cache)
        });
        let mut notes = out.notes;
        if let Some(e) = out.error {
            notes.push(format!("run-time error in {:?}, keeping: {e}", active.name));
        }
        let action = match out.reject {
            Some(text) => Action::Reject(Rejection {
                permanent: true,
                text,
            }),
            None => Action::Deliver(
                out.targets
                    .into_iter()
                    .map(|t| Target {
                        mailbox: t.mailbox,
                        flags: t.flags,
                        create: t.create,
                    })
                    .collect(),
            ),
        };
        WitOutcome {
            action,
            vacation: out.vacation.filter(|_| vacation).map(|v| VacationReply {
                to: v.to,
                from: v.from,
                subject: v.subject,
                body: v.body,
                mime: v.mime,
                in_reply_to: v.in_reply_to,
                references: v.references,
            }),
            notes,
        }
    }
}

bindings::export!(Sieve with_types_in bindings);
