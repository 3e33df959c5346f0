//! `nestbox serve`, the composition root: opens the store, builds the shared
//! [`Context`], starts every protocol's listeners and the timers, and shuts down
//! gracefully on a signal. The connection layer the protocols build on is
//! [`crate::net`].

mod notify;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::net::unix::UnixListener;
use smol::{Executor, Timer};

use crate::config::Config;
use crate::contracts::Hooks;
use crate::control;
use crate::delivery::Pipeline;
use crate::http::Http;
use crate::imap::server::Imap;
use crate::lmtp::server::Lmtp;
use crate::managesieve::server::ManageSieve;
use crate::net::{Context, ServeError, Shutdown, Tracker, accept, limits};
use crate::pop3::server::Pop3;
use crate::store::Store;

/// How long shutdown waits for open connections to finish.
const DRAIN: Duration = Duration::from_secs(10);

fn bind_unix(path: &Path) -> Result<UnixListener, ServeError> {
    // A socket file left by a crash would make bind fail; we own the data dir (the redb
    // lock proves no other server runs), so a stale one is safe to remove.
    if path.exists() {
        let _ = std::fs::remove_file(path);
    }
    let l =
        UnixListener::bind(path).map_err(|e| ServeError::Bind(path.display().to_string(), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(l)
}

/// Runs the server until SIGINT or SIGTERM. Prints `listening <proto> <addr>` for every
/// listener and then `ready` on stdout, so scripts and tests can find ephemeral ports.
pub fn serve(config: Config) -> Result<(), ServeError> {
    serve_from(config, None)
}

/// [`serve`], with the config file's path so SIGHUP can reload plugins from it.
pub fn serve_from(config: Config, config_file: Option<PathBuf>) -> Result<(), ServeError> {
    crate::memory::configure();
    let config = Arc::new(config);
    let store = Store::open(&config.data_dir, &config.store).map_err(ServeError::Store)?;
    if config.store.full_text_index != crate::config::FullTextIndex::Off {
        store.start_indexer();
    }
    let plugins = match Plugins::start(&config) {
        Ok(p) => p,
        Err(e) => {
            store.shutdown();
            return Err(ServeError::Plugins(e));
        }
    };
    let pipeline = Pipeline::new(
        store.clone(),
        &config.hostname,
        config.limits.max_message_size,
        plugins.hooks(),
    );
    let sieve_checker = plugins.sieve_checker();
    let tls = match crate::tls::TlsManager::load(&config) {
        Ok(t) => t,
        Err(e) => {
            store.shutdown();
            return Err(ServeError::Tls(e));
        }
    };
    println!("tls fingerprint {}", tls.fingerprint());
    log::info!("tls: certificate fingerprint {}", tls.fingerprint());
    let (stop_tx, shutdown) = Shutdown::new();
    let (acme, acme_worker) = if config.acme.enabled() {
        match crate::acme::Acme::start(&config, tls.clone(), shutdown.clone()) {
            Ok((a, worker)) => (Some(a), Some(worker)),
            Err(e) => {
                store.shutdown();
                return Err(ServeError::Tls(e));
            }
        }
    } else {
        (None, None)
    };
    let ctx = Context {
        acme,
        tls: tls.clone(),
        limits: limits::ConnLimits::new(&config.connections, config.lmtp.max_connections),
        config: config.clone(),
        auth: crate::auth::Authenticator::from_config(
            store.clone(),
            &config.hostname,
            &config.auth,
        ),
        pipeline,
        shutdown: shutdown.clone(),
        tracker: Tracker::default(),
    };
    let ex: Arc<Executor<'static>> = Arc::new(Executor::new());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    for i in 0..threads {
        let ex = ex.clone();
        let sd = shutdown.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("exec-{i}"))
            .spawn(move || {
                smol::block_on(ex.run(async move {
                    sd.wait().await;
                }))
            });
        if let Err(e) = spawned {
            log::warn!("cannot start executor thread {i}: {e}");
        }
    }

    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(ServeError::Signals)?;
    let handle = signals.handle();
    let stop = stop_tx.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signals = signals;
            for sig in signals.forever() {
                if sig == signal_hook::consts::SIGHUP {
                    // New handshakes use the new certificate; open connections keep
                    // theirs. A bad file keeps the old certificate.
                    match tls.reload() {
                        Ok(fp) => log::info!("SIGHUP: tls certificate reloaded, fingerprint {fp}"),
                        Err(e) => log::error!(
                            "SIGHUP: tls reload failed, keeping the old certificate: {e}"
                        ),
                    }
                    plugins.reload(config_file.as_deref());
                    continue;
                }
                log::info!("signal {sig}: shutting down");
                stop.close();
                break;
            }
        })
        .map_err(ServeError::Signals)?;

    let mut unix_paths: Vec<PathBuf> = Vec::new();
    let result = smol::block_on(ex.run(async {
        let control_path = control::socket_path(&config.data_dir);
        let control = bind_unix(&control_path)?;
        unix_paths.push(control_path);
        {
            let ctx = ctx.clone();
            ex.spawn(accept_control(ctx, control)).detach();
        }
        accept::serve_tcp(&ctx, &ex, Lmtp).await?;
        if let Some(path) = &config.lmtp.unix_socket {
            let l = bind_unix(path)?;
            println!("listening lmtp-unix {}", path.display());
            unix_paths.push(path.clone());
            ex.spawn(crate::lmtp::server::accept_unix(ctx.clone(), l, ex.clone()))
                .detach();
        }
        accept::serve_tcp(&ctx, &ex, Imap::default()).await?;
        accept::serve_tcp(&ctx, &ex, ManageSieve::new(sieve_checker.clone())).await?;
        accept::serve_tcp(&ctx, &ex, Pop3::default()).await?;
        accept::serve_tcp(&ctx, &ex, Http).await?;
        // After the listeners: the CA may validate as soon as the order starts.
        if let Some(worker) = acme_worker {
            ex.spawn(worker).detach();
        }
        if config.store.compact_check_secs > 0 {
            ex.spawn(compaction_timer(ctx.clone())).detach();
        }
        if config.retention.interval_secs > 0 {
            ex.spawn(retention_timer(ctx.clone())).detach();
        }
        ex.spawn(memory_timer(ctx.clone())).detach();
        println!("ready");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        notify::notify(notify::Notice::Ready);
        log::info!("nestbox ready; data in {}", config.data_dir.display());
        shutdown.wait().await;
        notify::notify(notify::Notice::Stopping);
        // Drain: stop accepting (accept loops watch `shutdown`), let live connections end.
        let deadline = Instant::now() + DRAIN;
        while ctx.tracker.live() > 0 && Instant::now() < deadline {
            Timer::after(Duration::from_millis(50)).await;
        }
        if ctx.tracker.live() > 0 {
            log::warn!("shutdown: closing {} connections", ctx.tracker.live());
        }
        Ok::<(), ServeError>(())
    }));
    handle.close();
    stop_tx.close();
    store.shutdown();
    for p in unix_paths {
        let _ = std::fs::remove_file(p);
    }
    result
}

async fn accept_control(ctx: Context, listener: UnixListener) {
    accept::accept_loop(
        &ctx,
        "control",
        || listener.accept(),
        |stream, _| {
            let p = ctx.pipeline.clone();
            let host = ctx.config.hostname.clone();
            let acme = ctx.acme.clone();
            let guard = ctx.tracker.enter();
            smol::spawn(async move {
                control::serve_conn(p, host, acme, stream).await;
                drop(guard);
            })
            .detach();
        },
    )
    .await;
}

/// Waits `every`; false when shutdown began first.
async fn sleep_unless_shutdown(ctx: &Context, every: Duration) -> bool {
    smol::future::or(
        async {
            Timer::after(every).await;
            true
        },
        async {
            ctx.shutdown.wait().await;
            false
        },
    )
    .await
}

/// How often the memory timer gives free memory back.
const MEMORY_TICK: Duration = Duration::from_secs(5);
/// For how many ticks after the last connection closed it goes on: the packer and
/// compaction still work for a while after the clients have gone.
const MEMORY_QUIET_TICKS: u32 = 12;
/// The least time between two ticks when the last open connection closing brings the
/// next one forward: a burst of short connections (LMTP from an MTA, a login test)
/// trims at most once a second, and a close sooner than that after a tick has the
/// next tick at the end of this gap.
const MEMORY_EARLY_GAP: Duration = Duration::from_secs(1);
/// How long the store must have been without client reads and writes before its caches
/// are dropped whole (redb's page cache too): long enough that a client coming back at
/// once still finds them warm. Connections may stay open (a mail client in IDLE).
const MEMORY_RELEASE_IDLE: Duration = Duration::from_secs(20);
/// How much the server must have grown since the last release (or its start) before
/// the next one: a release closes and reopens the database, a few writes and fsyncs, so
/// work that leaves little behind (a metrics scrape every 15 s, a mail check) does not
/// cause one each time.
const MEMORY_RELEASE_GROWTH: u64 = 8 << 20;

/// Gives the free memory the allocator keeps back to the system
/// ([`crate::memory::release_free`]) every [`MEMORY_TICK`] while connections are open or
/// opening, and for a minute after the last one closed; a server that stays quiet is left
/// alone until the next connection. The last open connection closing brings the next
/// tick forward, so a burst's freed memory goes back when the burst ends, not up to a
/// tick later. Decompressed packs not read for a tick go first.
/// Under load this bounds what freed memory the arenas hold to about one tick's worth.
/// Once the store has seen no client read or write for [`MEMORY_RELEASE_IDLE`], if the
/// server has grown by [`MEMORY_RELEASE_GROWTH`] since the last time, the store's caches
/// go as well (once no background transaction is open) and the code pages after them,
/// so the server shrinks to about what it held at start (docs/benchmarks.md, "Memory
/// under load").
async fn memory_timer(ctx: Context) {
    let mut seen = ctx.tracker.entered();
    let mut quiet: u32 = 0;
    let mut floor = crate::memory::resident_bytes();
    // Connections entered at the last release, where the size cannot be read.
    let mut released_at = seen;
    let mut last_tick = Instant::now();
    loop {
        let early = smol::future::or(
            async {
                sleep_unless_shutdown(&ctx, MEMORY_TICK)
                    .await
                    .then_some(false)
            },
            async {
                ctx.tracker.last_closed().await;
                Some(true)
            },
        )
        .await;
        match early {
            None => return,
            // Too soon after the last tick: this one comes at the gap's end instead (not
            // a whole tick later, which left a short burst's memory held for 5 s).
            Some(true) => {
                let wait = MEMORY_EARLY_GAP.saturating_sub(last_tick.elapsed());
                if !wait.is_zero() && !sleep_unless_shutdown(&ctx, wait).await {
                    return;
                }
            }
            Some(false) => {}
        }
        last_tick = Instant::now();
        let entered = ctx.tracker.entered();
        let trim = if entered != seen || ctx.tracker.live() > 0 {
            seen = entered;
            quiet = 0;
            true
        } else if quiet < MEMORY_QUIET_TICKS {
            quiet += 1;
            true
        } else {
            false
        };
        let store = ctx.store();
        // The size is read (a /proc file) only once the store is quiet.
        let grown = || match (crate::memory::resident_bytes(), floor) {
            (Some(now), Some(floor)) => now > floor.saturating_add(MEMORY_RELEASE_GROWTH),
            _ => entered != released_at,
        };
        if store.idle_for() >= MEMORY_RELEASE_IDLE && grown() {
            match store.release_caches().await {
                Ok(true) => {
                    crate::memory::release_code();
                    crate::memory::release_free();
                    floor = crate::memory::resident_bytes();
                    released_at = entered;
                    continue;
                }
                Ok(false) => {}
                Err(e) => log::warn!("store: cannot release its caches: {e}"),
            }
        }
        if trim {
            store.drop_unused_caches(MEMORY_TICK);
            crate::memory::release_free();
        }
    }
}

/// The periodic retention sweep (`retention.interval_secs`; the first one interval
/// after start). Users without a retention plugin cost nothing.
async fn retention_timer(ctx: Context) {
    let every = Duration::from_secs(ctx.config.retention.interval_secs);
    loop {
        if !sleep_unless_shutdown(&ctx, every).await {
            return;
        }
        match crate::retention::run(ctx.store(), ctx.pipeline.hooks(), None, false).await {
            Ok(r) if r.users > 0 => log::info!(
                "retention: swept {} users, {} messages reviewed, {} expunged, {} moved, {} rule failures",
                r.users,
                r.reviewed,
                r.expunged(),
                r.moved(),
                r.failures.len()
            ),
            Ok(_) => {}
            Err(e) => log::warn!("retention: sweep stopped: {e}"),
        }
    }
}

async fn compaction_timer(ctx: Context) {
    let every = Duration::from_secs(ctx.config.store.compact_check_secs);
    loop {
        if !sleep_unless_shutdown(&ctx, every).await {
            return;
        }
        if let Err(e) = ctx.store().compact(false).await {
            log::warn!("store: compaction failed: {e}");
        }
    }
}

/// The plugin host of a running server (an empty stand-in without the `plugins` feature).
struct Plugins {
    #[cfg(feature = "plugins")]
    host: Arc<crate::plugins::PluginHost>,
}

impl Plugins {
    #[cfg(feature = "plugins")]
    fn start(config: &Config) -> Result<Plugins, String> {
        Ok(Plugins {
            host: Arc::new(crate::plugins::PluginHost::new(config)?),
        })
    }

    #[cfg(not(feature = "plugins"))]
    fn start(_config: &Config) -> Result<Plugins, String> {
        Ok(Plugins {})
    }

    fn hooks(&self) -> Arc<dyn Hooks> {
        #[cfg(feature = "plugins")]
        {
            self.host.clone()
        }
        #[cfg(not(feature = "plugins"))]
        {
            Arc::new(crate::contracts::NoHooks)
        }
    }

    /// What checks Sieve scripts for ManageSieve: the Sieve plugin's checker when one is
    /// loaded, else the built-in lexical checker.
    fn sieve_checker(&self) -> Arc<dyn crate::managesieve::SieveChecker> {
        #[cfg(feature = "plugins")]
        {
            Arc::new(crate::plugins::sieve::PluginChecker {
                host: self.host.clone(),
            })
        }
        #[cfg(not(feature = "plugins"))]
        {
            Arc::new(crate::managesieve::LexicalChecker)
        }
    }

    /// SIGHUP: loads the plugins again from the config file. Connections stay open;
    /// calls in flight finish with the old plugins.
    fn reload(&self, config_file: Option<&Path>) {
        #[cfg(feature = "plugins")]
        match config_file {
            Some(file) => match self.host.reload(file) {
                Ok(n) => log::info!("SIGHUP: {n} plugins loaded"),
                Err(e) => log::error!("SIGHUP: plugin reload: {e}"),
            },
            None => log::warn!("SIGHUP: no config file known, plugins not reloaded"),
        }
        #[cfg(not(feature = "plugins"))]
        let _ = config_file;
    }
}
