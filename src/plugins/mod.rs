//! The WebAssembly plugin host (cargo feature `plugins`): filters, quota policies and
//! retention rules as components of `wit/nestbox-plugin.wit`.
//!
//! - [`engine`]: one wasmtime engine per process (Cranelift, epoch deadlines, the
//!   compilation cache in `<data_dir>/plugin-cache`), the sandboxed WASI context and the
//!   `host` interface.
//! - [`bindings`]: `bindgen!` output for the filter, quota and retention worlds.
//! - [`call`]: one loaded plugin ([`call::Plugin`]) with its warm instances and the
//!   generic call layer (limits, failure accounting, health) every hook uses.
//! - [`message`]: the `message` resource.
//! - [`filter`]: the filter hook ([`crate::contracts::Hooks::filter`]).
//! - [`quota`]: the quota hook ([`crate::contracts::Hooks::quota`], `quota_limits`).
//! - [`retention`]: the retention hook ([`crate::contracts::Hooks::retention`]).
//!
//! [`PluginHost`] holds the configured plugins in order and swaps the whole set on
//! SIGHUP ([`PluginHost::reload`]); calls in flight finish on the old set.

pub mod bindings;
pub mod call;
pub mod cli;
pub mod engine;
pub mod filter;
pub mod message;
pub mod quota;
pub mod retention;
pub mod sieve;
pub mod vacation;

use std::path::Path;
use std::sync::{Arc, RwLock};

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::config::{Config, PluginConfig, PluginHook, PluginLimits};
use crate::contracts::{
    FilterVerdict, HookMessage, Hooks, MailData, QuotaLimits, QuotaQuery, QuotaVerdict, Target,
    UserId,
};
use call::Plugin;
use engine::State;

/// The plugins of a running server (or of one CLI command).
pub struct PluginHost {
    engine: Engine,
    linker: Linker<State>,
    plugins: RwLock<Arc<Vec<Arc<Plugin>>>>,
    pub(crate) sieve: sieve::SieveHost,
}

impl PluginHost {
    /// Creates the engine (cache in `<data_dir>/plugin-cache` when the data dir exists)
    /// and loads every configured plugin. A plugin that cannot load is kept with its
    /// error; only an engine failure is an error here.
    pub fn new(config: &Config) -> Result<PluginHost, String> {
        let cache = config.data_dir.join("plugin-cache");
        let cache = if config.data_dir.is_dir() {
            if let Err(e) = std::fs::create_dir_all(&cache) {
                log::warn!("plugins: cannot create {}: {e}", cache.display());
            }
            // wasmtime's cache refuses a relative directory (and would then compile
            // every plugin at every start): `data_dir: "data"` is relative.
            match cache.canonicalize() {
                Ok(abs) => Some(abs),
                Err(e) => {
                    log::warn!("plugins: no compilation cache in {}: {e}", cache.display());
                    None
                }
            }
        } else {
            None
        };
        let engine = engine::engine(cache.as_deref())?;
        let linker = engine::linker(&engine)?;
        let host = PluginHost {
            engine,
            linker,
            plugins: RwLock::new(Arc::new(Vec::new())),
            sieve: sieve::SieveHost::new(config),
        };
        host.install(&config.plugins, &config.plugin_limits);
        Ok(host)
    }

    /// Loads `plugins` and replaces the current set.
    pub fn install(&self, plugins: &[PluginConfig], limits: &PluginLimits) {
        let set: Vec<Arc<Plugin>> = plugins
            .iter()
            .map(|p| Arc::new(Plugin::load(&self.engine, &self.linker, p, limits)))
            .collect();
        if let Ok(mut current) = self.plugins.write() {
            *current = Arc::new(set);
        }
    }

    /// SIGHUP: reads the config file again and reloads the plugins. A config file that
    /// does not parse keeps the old plugins. Only `plugins` and `plugin_limits` take
    /// effect; other settings need a restart.
    pub fn reload(&self, config_file: &Path) -> Result<usize, String> {
        let config = crate::config::RawConfig::load(config_file).map_err(|e| e.to_string())?;
        self.install(&config.plugins, &config.plugin_limits);
        let set = self.current();
        let failed: Vec<&str> = set
            .iter()
            .filter(|p| p.load_error.is_some())
            .map(|p| &*p.name)
            .collect();
        if failed.is_empty() {
            Ok(set.len())
        } else {
            Err(format!(
                "{} loaded, failed: {}",
                set.len() - failed.len(),
                failed.join(", ")
            ))
        }
    }

    /// The current plugins, in configured order.
    pub(crate) fn current(&self) -> Arc<Vec<Arc<Plugin>>> {
        self.plugins
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The plugins serving `hook` for `user`, in configured order. Plugins that failed
    /// to load are included when configured for the hook (their calls fail, so the
    /// failure policy applies).
    pub(crate) fn for_hook(&self, hook: PluginHook, user: &str) -> Vec<Arc<Plugin>> {
        self.for_hooks(&[hook], user)
    }

    /// The plugins serving any of `hooks` for `user`, in configured order.
    pub(crate) fn for_hooks(&self, hooks: &[PluginHook], user: &str) -> Vec<Arc<Plugin>> {
        self.current()
            .iter()
            .filter(|p| {
                p.hooks.iter().any(|h| hooks.contains(h))
                    || (p.load_error.is_some() && p.hooks.is_empty())
            })
            .filter(|p| p.applies_to(user))
            .cloned()
            .collect()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles `path` and says which worlds it implements (`nestbox plugin check`).
    pub fn check(&self, path: &Path, limits: &PluginLimits) -> Result<Vec<PluginHook>, String> {
        let component = call::compile(&self.engine, path, limits.max_file_mib << 20)?;
        let worlds = call::exported_worlds(&self.engine, &component);
        if worlds.is_empty() {
            let exports: Vec<String> = component
                .component_type()
                .exports(&self.engine)
                .map(|(n, _)| n.to_string())
                .collect();
            return Err(format!(
                "exports none of nestbox:plugin/filter, quota, retention or sieve (it exports: {})",
                if exports.is_empty() {
                    "nothing".into()
                } else {
                    exports.join(", ")
                }
            ));
        }
        let config = PluginConfig {
            name: "check".into(),
            path: path.to_path_buf(),
            hooks: Vec::new(),
            users: Vec::new(),
            settings: Default::default(),
            fresh_instance: true,
            on_failure: Default::default(),
            memory_mib: None,
            timeout_ms: None,
        };
        let plugin = Plugin::load(&self.engine, &self.linker, &config, limits);
        match plugin.load_error {
            Some(e) => Err(e),
            None => Ok(plugin.hooks.clone()),
        }
    }

    /// Loads one plugin outside the configured set (`nestbox plugin test`).
    pub(crate) fn load_one(&self, config: &PluginConfig, limits: &PluginLimits) -> Plugin {
        Plugin::load(&self.engine, &self.linker, config, limits)
    }
}

impl Hooks for PluginHost {
    fn filter(&self, msg: &HookMessage<'_>, target: &mut Target) -> FilterVerdict {
        let plugins = self.for_hooks(&[PluginHook::Filter, PluginHook::Sieve], &target.user_name);
        filter::run(&plugins, msg, target, &self.sieve)
    }

    fn quota(&self, store: &dyn MailData, query: &QuotaQuery<'_>) -> QuotaVerdict {
        let plugins = self.for_hook(PluginHook::Quota, query.user_name);
        quota::check(&plugins, store, query)
    }

    fn has_quota(&self, user: &str) -> bool {
        !self.for_hook(PluginHook::Quota, user).is_empty()
    }

    fn quota_limits(&self, store: &dyn MailData, user: UserId, user_name: &str) -> QuotaLimits {
        let plugins = self.for_hook(PluginHook::Quota, user_name);
        quota::limits(&plugins, store, user, user_name)
    }

    fn has_retention(&self, user: &str) -> bool {
        !self.for_hook(PluginHook::Retention, user).is_empty()
    }

    fn retention(
        &self,
        mailbox: &crate::contracts::MailboxFacts,
        batch: &[crate::contracts::Summary],
    ) -> crate::contracts::Review {
        let plugins = self.for_hook(PluginHook::Retention, &mailbox.user);
        retention::review(&plugins, mailbox, batch)
    }

    fn active(&self) -> bool {
        !self.current().is_empty()
    }

    fn plugins(&self) -> Vec<crate::contracts::PluginStatus> {
        self.current().iter().map(|p| p.status()).collect()
    }
}

/// The hooks a server or a local CLI command should deliver with: the plugin host when
/// plugins are configured, else none.
pub fn hooks_for(config: &Config) -> Result<Arc<dyn Hooks>, String> {
    if config.plugins.is_empty() {
        return Ok(Arc::new(crate::contracts::NoHooks));
    }
    Ok(Arc::new(PluginHost::new(config)?))
}
