//! The wasmtime engine, the per-store state and the host side of the `host` interface.
//!
//! One [`Engine`] per process: Cranelift, component model, epoch interruption (a ticker
//! thread advances the epoch every [`TICK`]), and wasmtime's compilation cache in the
//! data dir, keyed by a hash of the wasm bytes, the wasmtime version and the engine
//! settings, so a restart loads precompiled code instead of compiling again.
//!
//! WASI: only preview 2 and only what common guest toolchains import. The context has no
//! preopened directories, no network, no environment, no arguments, an empty stdin; the
//! guest's stdout and stderr become log lines prefixed with the plugin's name.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Engine, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{FilterPlugin, Level, sieve_host, wit_types};
use super::message::MessageRes;

/// How often the epoch advances: the granularity of plugin deadlines.
pub const TICK: Duration = Duration::from_millis(5);

/// Log lines one call may write (host `log` and stdout/stderr together).
const LOG_LINES_PER_CALL: u32 = 50;
/// Longest log line kept, in bytes.
const LOG_LINE_MAX: usize = 1000;

/// Builds the process's engine; `cache_dir` holds precompiled plugins (`None`: no cache).
pub fn engine(cache_dir: Option<&Path>) -> Result<Engine, String> {
    let mut c = wasmtime::Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.cranelift_opt_level(wasmtime::OptLevel::Speed);
    if let Some(dir) = cache_dir {
        let mut cc = wasmtime::CacheConfig::new();
        cc.with_directory(dir);
        match wasmtime::Cache::new(cc) {
            Ok(cache) => {
                c.cache(Some(cache));
            }
            Err(e) => log::warn!("plugins: no compilation cache in {}: {e:#}", dir.display()),
        }
    }
    let engine = Engine::new(&c).map_err(|e| format!("cannot create the wasm engine: {e:#}"))?;
    let weak = engine.weak();
    let ticker = std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        });
    if let Err(e) = ticker {
        return Err(format!("cannot start the epoch thread: {e}"));
    }
    Ok(engine)
}

/// The linker every plugin is instantiated with: WASI p2 (sandboxed by [`State`]'s
/// context) and the `nestbox:plugin` imports.
pub fn linker(engine: &Engine) -> Result<Linker<State>, String> {
    let mut linker = Linker::<State>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| format!("cannot link WASI: {e:#}"))?;
    FilterPlugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
        .map_err(|e| format!("cannot link the host interface: {e:#}"))?;
    sieve_host::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
        .map_err(|e| format!("cannot link the sieve-host interface: {e:#}"))?;
    Ok(linker)
}

/// Data of one store (one plugin instance).
pub struct State {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    plugin: Arc<str>,
    settings: Arc<BTreeMap<String, String>>,
    /// Log lines left in the current call.
    log_budget: Arc<Mutex<u32>>,
    /// What the `sieve-host` functions serve during a Sieve call; `None` otherwise.
    pub(crate) sieve: Option<super::sieve::SieveCall>,
}

impl State {
    pub fn new(plugin: Arc<str>, settings: Arc<BTreeMap<String, String>>, memory: usize) -> State {
        let budget = Arc::new(Mutex::new(LOG_LINES_PER_CALL));
        let out = |stream: &'static str| LogOut {
            plugin: plugin.clone(),
            stream,
            line: Arc::new(Mutex::new(Vec::new())),
            budget: budget.clone(),
        };
        // No preopens, no network, no environment, no args; stdin is empty.
        let wasi = WasiCtxBuilder::new()
            .stdout(out("stdout"))
            .stderr(out("stderr"))
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        State {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory)
                .instances(100)
                .tables(100)
                .table_elements(1 << 20)
                .trap_on_grow_failure(true)
                .build(),
            plugin,
            settings,
            log_budget: budget,
            sieve: None,
        }
    }

    /// Called before each call into the guest.
    pub fn begin_call(&mut self) {
        if let Ok(mut b) = self.log_budget.lock() {
            *b = LOG_LINES_PER_CALL;
        }
    }

    fn log_line(&self, level: log::Level, text: &str) {
        log_line(&self.plugin, &self.log_budget, level, text);
    }
}

fn log_line(plugin: &str, budget: &Mutex<u32>, level: log::Level, text: &str) {
    let Ok(mut left) = budget.lock() else {
        return;
    };
    if *left == 0 {
        return;
    }
    *left -= 1;
    let mut end = text.len().min(LOG_LINE_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text: String = text
        .get(..end)
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if *left == 0 {
        log::log!(target: "plugin", level, "plugin {plugin}: {text} (further lines of this call dropped)");
    } else {
        log::log!(target: "plugin", level, "plugin {plugin}: {text}");
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl super::bindings::filter::nestbox::plugin::host::Host for State {
    fn log(&mut self, level: Level, text: String) {
        let level = match level {
            Level::Error => log::Level::Error,
            Level::Warn => log::Level::Warn,
            Level::Info => log::Level::Info,
            Level::Debug => log::Level::Debug,
            Level::Trace => log::Level::Trace,
        };
        for line in text.lines() {
            self.log_line(level, line);
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.settings.get(&key).cloned()
    }

    fn now(&mut self) -> i64 {
        crate::store::now()
    }
}

impl sieve_host::Host for State {
    fn active_script(&mut self, user: String) -> Option<sieve_host::ScriptId> {
        let call = self.sieve.as_ref()?.for_user(&user)?;
        let (name, version) = call.scripts.as_ref()?.active(&user)?;
        Some(sieve_host::ScriptId { name, version })
    }

    fn script(&mut self, user: String, name: String) -> Option<sieve_host::ScriptText> {
        let call = self.sieve.as_ref()?.for_user(&user)?;
        let (version, text) = call.scripts.as_ref()?.script(&user, &name)?;
        Some(sieve_host::ScriptText { version, text })
    }

    fn duplicate(&mut self, user: String, id: String, seconds: u64, last: bool) -> bool {
        match self.sieve.as_ref().and_then(|c| c.for_user(&user)) {
            Some(call) => call.duplicates.seen(&user, &id, seconds, last),
            None => false,
        }
    }

    fn mailbox_exists(&mut self, user: String, mailbox: String) -> bool {
        self.sieve
            .as_ref()
            .and_then(|c| c.for_user(&user))
            .and_then(|c| c.scripts.as_ref())
            .is_some_and(|s| s.mailbox_exists(&user, &mailbox))
    }

    fn vacation_enabled(&mut self) -> bool {
        self.sieve.as_ref().is_some_and(|c| c.vacation)
    }
}

impl wit_types::Host for State {}

impl wit_types::HostMessage for State {
    fn size(&mut self, m: Resource<MessageRes>) -> u64 {
        self.table.get(&m).map(|m| m.size()).unwrap_or(0)
    }

    fn headers(&mut self, m: Resource<MessageRes>) -> Vec<wit_types::Header> {
        self.table
            .get(&m)
            .map(|m| {
                m.headers()
                    .iter()
                    .map(|(name, value)| wit_types::Header {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn header(&mut self, m: Resource<MessageRes>, name: String) -> Vec<String> {
        self.table
            .get(&m)
            .map(|m| m.header(&name))
            .unwrap_or_default()
    }

    fn read(&mut self, m: Resource<MessageRes>, offset: u64, len: u32) -> Vec<u8> {
        self.table
            .get(&m)
            .map(|m| m.read(offset, len))
            .unwrap_or_default()
    }

    fn text(&mut self, m: Resource<MessageRes>, max_bytes: u32) -> Option<String> {
        self.table.get(&m).ok().and_then(|m| m.text(max_bytes))
    }

    fn drop(&mut self, m: Resource<MessageRes>) -> wasmtime::Result<()> {
        // The host owns the message: the guest only ever gets a borrow.
        let _ = m;
        Ok(())
    }
}

/// A guest's stdout or stderr: complete lines go to the log.
#[derive(Clone)]
struct LogOut {
    plugin: Arc<str>,
    stream: &'static str,
    line: Arc<Mutex<Vec<u8>>>,
    budget: Arc<Mutex<u32>>,
}

impl LogOut {
    fn emit(&self, bytes: &[u8]) {
        let level = if self.stream == "stderr" {
            log::Level::Warn
        } else {
            log::Level::Info
        };
        let Ok(mut line) = self.line.lock() else {
            return;
        };
        for &b in bytes {
            if b == b'\n' {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                log_line(
                    &self.plugin,
                    &self.budget,
                    level,
                    &format!("{}: {text}", self.stream),
                );
                line.clear();
            } else if line.len() < LOG_LINE_MAX {
                line.push(b);
            }
        }
    }
}

impl IsTerminal for LogOut {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogOut {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASI p3 uses this, and p3 is not linked: output is dropped.
        Box::new(wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(0))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogOut {
    async fn ready(&mut self) {}
}

impl OutputStream for LogOut {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.emit(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}
