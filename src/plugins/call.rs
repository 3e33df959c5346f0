//! One loaded plugin, its warm instances, and the generic "call with limits and failure
//! accounting" layer every hook uses.
//!
//! ```text
//! plugin.call(plugin.filter.as_ref()?, |store, bindings| {
//!     bindings.nestbox_plugin_filter().call_filter(store, &env, msg)
//! })  -> Result<R, CallError>
//! ```
//!
//! [`Plugin::call`] takes a warm instance of the world (or instantiates one), arms the
//! deadline (epoch ticks) and resets the per-call log budget, runs the closure, and then
//! either puts the instance back into the pool or, after any error, drops it (a trapped
//! instance is poisoned). It times the call and counts calls, failures and failures in a
//! row (health). Closures signal a result that makes no sense with [`invalid`]; that
//! counts as a failure too. The caller applies the failure policy ([`Plugin::on_failure`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store};

use super::bindings::{
    FilterPlugin, FilterPluginPre, QuotaPlugin, QuotaPluginPre, RetentionPlugin,
    RetentionPluginPre, SievePlugin, SievePluginPre,
};
use super::engine::{State, TICK};
use crate::config::{OnFailure, PluginConfig, PluginHook, PluginLimits};

/// A world the host can call: how to pre-link it and instantiate it.
pub(crate) trait World: Sized + Send + 'static {
    type Pre: Send + Sync;
    /// The hook name used in config and logs: `filter`, `quota`, `retention`.
    const HOOK: PluginHook;
    fn pre(pre: InstancePre<State>) -> wasmtime::Result<Self::Pre>;
    fn instantiate(pre: &Self::Pre, store: &mut Store<State>) -> wasmtime::Result<Self>;
    fn engine(pre: &Self::Pre) -> &Engine;
}

/// The generated bindings of each world have the same shape; only the names differ.
macro_rules! world {
    ($world:ident, $pre:ident, $hook:expr) => {
        impl World for $world {
            type Pre = $pre<State>;
            const HOOK: PluginHook = $hook;
            fn pre(pre: InstancePre<State>) -> wasmtime::Result<Self::Pre> {
                $pre::new(pre)
            }
            fn instantiate(pre: &Self::Pre, store: &mut Store<State>) -> wasmtime::Result<Self> {
                pre.instantiate(store)
            }
            fn engine(pre: &Self::Pre) -> &Engine {
                pre.instance_pre().engine()
            }
        }
    };
}

world!(FilterPlugin, FilterPluginPre, PluginHook::Filter);
world!(QuotaPlugin, QuotaPluginPre, PluginHook::Quota);
world!(RetentionPlugin, RetentionPluginPre, PluginHook::Retention);
world!(SievePlugin, SievePluginPre, PluginHook::Sieve);

/// The instances of one world of one plugin.
pub(crate) struct Hook<W: World> {
    pre: W::Pre,
    pool: Mutex<Vec<(Store<State>, W)>>,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The plugin is not loaded (its load error), or does not implement the hook.
    NotLoaded(String),
    /// Ran past its deadline.
    Deadline(Duration),
    /// Tried to grow memory past the cap.
    Memory(usize),
    /// Trapped (or a host error during the call).
    Trap(String),
    /// Returned something that makes no sense (see [`invalid`]).
    Invalid(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NotLoaded(e) => write!(f, "not loaded: {e}"),
            CallError::Deadline(d) => write!(f, "deadline of {} ms exceeded", d.as_millis()),
            CallError::Memory(cap) => {
                write!(f, "memory limit of {} MiB exceeded", cap >> 20)
            }
            CallError::Trap(e) => write!(f, "trapped: {e}"),
            CallError::Invalid(e) => write!(f, "invalid result: {e}"),
        }
    }
}

/// Marks a closure's result as nonsense: `return Err(invalid("mailbox name empty"))`.
pub(crate) fn invalid(why: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(Invalid(why.into()))
}

#[derive(Debug)]
struct Invalid(String);
impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Invalid {}

/// Per-call limits, resolved from `plugin_limits` and the plugin's overrides.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallLimits {
    pub memory: usize,
    pub deadline: Duration,
    /// Most decisions one retention answer may hold.
    pub max_decisions: u64,
}

#[derive(Default)]
struct Stats {
    calls: AtomicU64,
    failures: AtomicU64,
    in_a_row: AtomicU32,
    nanos: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// One configured plugin.
pub(crate) struct Plugin {
    pub name: Arc<str>,
    pub path: PathBuf,
    /// Users it applies to (login names); empty = everyone.
    pub users: Vec<String>,
    pub on_failure: OnFailure,
    pub limits: CallLimits,
    fresh_instance: bool,
    pool_size: usize,
    unhealthy_after: u32,
    settings: Arc<BTreeMap<String, String>>,
    /// Why the plugin could not be loaded; its hooks then fail every call.
    pub load_error: Option<String>,
    /// The hooks it was configured for (or, with `hooks: []`, the worlds it exports).
    pub hooks: Vec<PluginHook>,
    pub filter: Option<Hook<FilterPlugin>>,
    pub quota: Option<Hook<QuotaPlugin>>,
    pub retention: Option<Hook<RetentionPlugin>>,
    pub sieve: Option<Hook<SievePlugin>>,
    stats: Stats,
}

/// The worlds a component exports, by export name.
pub(crate) fn exported_worlds(engine: &Engine, component: &Component) -> Vec<PluginHook> {
    let ty = component.component_type();
    let mut found = Vec::new();
    for (name, _) in ty.exports(engine) {
        for hook in [
            PluginHook::Filter,
            PluginHook::Quota,
            PluginHook::Retention,
            PluginHook::Sieve,
        ] {
            let prefix = format!("nestbox:plugin/{}@0.", hook.name());
            if name.starts_with(&prefix) && !found.contains(&hook) {
                found.push(hook);
            }
        }
    }
    found
}

/// Reads and compiles a plugin file (through the engine's cache).
pub(crate) fn compile(
    engine: &Engine,
    path: &std::path::Path,
    max_bytes: u64,
) -> Result<Component, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > max_bytes {
        return Err(format!(
            "{}: {} bytes is over plugin_limits.max_file_mib ({} MiB)",
            path.display(),
            meta.len(),
            max_bytes >> 20
        ));
    }
    let mut bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !wasmparser_is_component(&bytes) {
        return Err(format!(
            "{}: not a WebAssembly component (build for wasm32-wasip2, or wrap a core module with `wasm-tools component new`)",
            path.display()
        ));
    }
    upgrade_0_1(&mut bytes);
    Component::new(engine, &bytes).map_err(|e| format!("{}: {}", path.display(), one_line(&e)))
}

/// Lets a component built against `nestbox:plugin@0.1.0` load into this 0.2.0 host.
/// 0.2.0 only added interfaces; the ones 0.1.0 has are unchanged. The component model
/// matches 0.x versions only within one minor version, so the `nestbox:plugin/NAME@0.1.0`
/// import and export names are renamed to `@0.2.0` (the same length, so nothing else in
/// the binary moves); wasmtime then type-checks the component against this host as
/// usual, so a component that does not fit still fails to load.
pub(crate) fn upgrade_0_1(bytes: &mut [u8]) {
    const PREFIX: &[u8] = b"nestbox:plugin/";
    const OLD: &[u8] = b"@0.1.0";
    let mut i = 0;
    while let Some(at) = bytes
        .get(i..)
        .and_then(|rest| rest.windows(PREFIX.len()).position(|w| w == PREFIX))
    {
        let mut j = i + at + PREFIX.len();
        while bytes
            .get(j)
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            j += 1;
        }
        if bytes.get(j..j + OLD.len()) == Some(OLD)
            && let Some(minor) = bytes.get_mut(j + 3)
        {
            *minor = b'2';
        }
        i = j;
    }
}

/// `\0asm` with the component layer (version 0x0d, layer 1).
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.get(..8) == Some(&[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00])
}

/// The first line of an error's root cause.
pub(crate) fn one_line(e: &wasmtime::Error) -> String {
    let outer = e.to_string();
    let outer = outer.lines().next().unwrap_or("").trim_end_matches(':');
    let root = e.root_cause().to_string();
    let root = root.lines().next().unwrap_or("");
    if root.is_empty() || outer.contains(root) {
        outer.to_string()
    } else {
        format!("{outer}: {root}")
    }
}

impl Plugin {
    /// Builds the plugin from its config entry: compiles it, pre-links the worlds it
    /// should serve. A plugin that cannot load is returned with `load_error` set, so the
    /// server still starts and the failure policy applies to its hooks.
    pub fn load(
        engine: &Engine,
        linker: &Linker<State>,
        config: &PluginConfig,
        limits: &PluginLimits,
    ) -> Plugin {
        let call_limits = CallLimits {
            memory: (config.memory_mib.unwrap_or(limits.memory_mib) as usize) << 20,
            deadline: Duration::from_millis(config.timeout_ms.unwrap_or(limits.timeout_ms)),
            max_decisions: limits.max_decisions,
        };
        let mut plugin = Plugin {
            name: Arc::from(config.name.as_str()),
            path: config.path.clone(),
            users: config.users.clone(),
            on_failure: config.on_failure,
            limits: call_limits,
            fresh_instance: config.fresh_instance,
            pool_size: limits.pool_size,
            unhealthy_after: limits.unhealthy_after,
            settings: Arc::new(config.settings.clone()),
            load_error: None,
            hooks: config.hooks.clone(),
            filter: None,
            quota: None,
            retention: None,
            sieve: None,
            stats: Stats::default(),
        };
        if let Err(e) = plugin.link(engine, linker, limits.max_file_mib << 20) {
            log::error!("plugin {}: cannot load: {e}", plugin.name);
            plugin.load_error = Some(e);
        }
        plugin
    }

    fn link(&mut self, engine: &Engine, linker: &Linker<State>, max: u64) -> Result<(), String> {
        let started = Instant::now();
        let component = compile(engine, &self.path, max)?;
        let exported = exported_worlds(engine, &component);
        if exported.is_empty() {
            return Err(
                "exports none of nestbox:plugin/filter, quota, retention or sieve (wrong world?)"
                    .into(),
            );
        }
        if self.hooks.is_empty() {
            self.hooks = exported.clone();
        }
        for hook in self.hooks.clone() {
            if !exported.contains(&hook) {
                return Err(format!(
                    "configured for the {} hook but does not export nestbox:plugin/{}",
                    hook.name(),
                    hook.name()
                ));
            }
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| one_line(&e))?;
            match hook {
                PluginHook::Filter => self.filter = Some(Hook::new(pre)?),
                PluginHook::Quota => self.quota = Some(Hook::new(pre)?),
                PluginHook::Retention => self.retention = Some(Hook::new(pre)?),
                PluginHook::Sieve => self.sieve = Some(Hook::new(pre)?),
            }
        }
        log::info!(
            "plugin {}: loaded {} for {} in {} ms",
            self.name,
            self.path.display(),
            self.hooks
                .iter()
                .map(|h| h.name())
                .collect::<Vec<_>>()
                .join(", "),
            started.elapsed().as_millis()
        );
        Ok(())
    }

    /// Whether the plugin applies to `user` (login name).
    pub fn applies_to(&self, user: &str) -> bool {
        self.users.is_empty() || self.users.iter().any(|u| u.eq_ignore_ascii_case(user))
    }

    /// Calls into one world of the plugin under its limits, with failure accounting.
    /// `hook` is one of `self.filter`, `self.quota`, `self.retention`.
    pub fn call<W: World, R>(
        &self,
        hook: Option<&Hook<W>>,
        f: impl FnOnce(&mut Store<State>, &W) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let Some(hook) = hook else {
            let why = self
                .load_error
                .clone()
                .unwrap_or_else(|| format!("does not implement the {} hook", W::HOOK.name()));
            let e = CallError::NotLoaded(why);
            self.failed(&e);
            return Err(e);
        };
        let started = Instant::now();
        let ticks = self.limits.deadline.as_nanos() / TICK.as_nanos().max(1) + 1;
        let ticks = u64::try_from(ticks).unwrap_or(u64::MAX);
        let warm = if self.fresh_instance {
            None
        } else {
            hook.pool.lock().ok().and_then(|mut p| p.pop())
        };
        let result = (|| {
            let (mut store, bindings) = match warm {
                Some(w) => w,
                None => {
                    let state =
                        State::new(self.name.clone(), self.settings.clone(), self.limits.memory);
                    let mut store = Store::new(W::engine(&hook.pre), state);
                    store.limiter(|s| &mut s.limits);
                    store.set_epoch_deadline(ticks);
                    let bindings = W::instantiate(&hook.pre, &mut store)?;
                    (store, bindings)
                }
            };
            store.data_mut().begin_call();
            store.set_epoch_deadline(ticks);
            let r = f(&mut store, &bindings)?;
            Ok::<_, wasmtime::Error>((r, store, bindings))
        })();
        let elapsed = started.elapsed();
        crate::metrics::plugin_call(elapsed, result.is_err());
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        self.stats.nanos.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        match result {
            Ok((r, store, bindings)) => {
                if !self.fresh_instance
                    && let Ok(mut pool) = hook.pool.lock()
                    && pool.len() < self.pool_size
                {
                    pool.push((store, bindings));
                }
                let before = self.stats.in_a_row.swap(0, Ordering::Relaxed);
                if before >= self.unhealthy_after {
                    log::info!("plugin {}: healthy again", self.name);
                }
                Ok(r)
            }
            Err(e) => {
                let e = self.classify(&e);
                self.failed(&e);
                Err(e)
            }
        }
    }

    fn classify(&self, e: &wasmtime::Error) -> CallError {
        if let Some(Invalid(why)) = e.downcast_ref::<Invalid>() {
            return CallError::Invalid(why.clone());
        }
        if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
            if *trap == wasmtime::Trap::Interrupt {
                return CallError::Deadline(self.limits.deadline);
            }
            return CallError::Trap(trap.to_string());
        }
        let text = one_line(e);
        if text.contains("forcing trap when growing memory") {
            return CallError::Memory(self.limits.memory);
        }
        CallError::Trap(text)
    }

    /// Counts a failure (also for results the caller found invalid after the call).
    pub fn failed(&self, e: &CallError) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        let n = self.stats.in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut last) = self.stats.last_error.lock() {
            *last = Some(e.to_string());
        }
        if n == self.unhealthy_after {
            log::error!(
                "plugin {}: unhealthy after {n} failures in a row; last: {e}",
                self.name
            );
        }
    }

    pub fn healthy(&self) -> bool {
        self.load_error.is_none()
            && self.stats.in_a_row.load(Ordering::Relaxed) < self.unhealthy_after
    }

    /// What `nestbox plugin list` shows.
    pub fn status(&self) -> crate::contracts::PluginStatus {
        let calls = self.stats.calls.load(Ordering::Relaxed);
        let nanos = self.stats.nanos.load(Ordering::Relaxed);
        crate::contracts::PluginStatus {
            name: self.name.to_string(),
            path: self.path.display().to_string(),
            hooks: self.hooks.iter().map(|h| h.name().to_string()).collect(),
            users: self.users.clone(),
            loaded: self.load_error.is_none(),
            healthy: self.healthy(),
            calls,
            failures: self.stats.failures.load(Ordering::Relaxed),
            mean_us: nanos.checked_div(calls).unwrap_or(0) / 1000,
            last_error: self
                .load_error
                .clone()
                .or_else(|| self.stats.last_error.lock().ok().and_then(|l| l.clone())),
        }
    }
}

impl<W: World> Hook<W> {
    fn new(pre: InstancePre<State>) -> Result<Hook<W>, String> {
        let pre = W::pre(pre).map_err(|e| {
            format!(
                "exports nestbox:plugin/{} with the wrong shape: {}",
                W::HOOK.name(),
                one_line(&e)
            )
        })?;
        Ok(Hook {
            pre,
            pool: Mutex::new(Vec::new()),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn upgrade_renames_only_our_0_1_names() {
        let mut b = b"..nestbox:plugin/types@0.1.0..nestbox:plugin/filter@0.1.0..other:pkg/x@0.1.0..nestbox:plugin/host@0.1.1".to_vec();
        super::upgrade_0_1(&mut b);
        assert_eq!(
            &b[..],
            &b"..nestbox:plugin/types@0.2.0..nestbox:plugin/filter@0.2.0..other:pkg/x@0.1.0..nestbox:plugin/host@0.1.1"[..]
        );
    }
}
