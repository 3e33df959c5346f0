//! Per-message filter overhead: the plugin host's `Hooks::filter` called the way a
//! delivery calls it (one copy, one recipient), with 1 and 3 filter plugins, against
//! the same call with no plugins. Warm instances (the default) and fresh ones. With
//! `--sieve SIEVE.wasm SCRIPT`, also the Sieve plugin running SCRIPT as the recipient's
//! active script, read from a store as a delivery reads it.
//!
//! ```text
//! cargo bench --bench plugin_overhead -- MESSAGE.eml N [--sieve SIEVE.wasm SCRIPT] PLUGIN.wasm...
//! ```
//!
//! Output: `key: value` lines (microseconds), easy to grep from benches/plugins.sh.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use nestbox::config::{PluginConfig, PluginHook, RawConfig};
use nestbox::contracts::{HookMessage, Hooks, MailData, Source, Target, UserId};
use nestbox::plugins::PluginHost;
use nestbox::store::{SieveLimits, Store};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn plugin(name: &str, path: &str, hook: PluginHook, fresh: bool) -> PluginConfig {
    PluginConfig {
        name: name.into(),
        path: PathBuf::from(path),
        hooks: vec![hook],
        users: Vec::new(),
        settings: Default::default(),
        fresh_instance: fresh,
        on_failure: Default::default(),
        memory_mib: None,
        timeout_ms: None,
    }
}

/// A temp store with user `bench` whose active Sieve script is the file `script`.
fn sieve_store(script: &std::path::Path) -> Result<(tempfile::TempDir, Store), String> {
    let text = std::fs::read_to_string(script).map_err(|e| format!("{}: {e}", script.display()))?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = Store::open(dir.path(), &RawConfig::default().store).map_err(|e| e.to_string())?;
    smol::block_on(async {
        store
            .add_user("bench", String::new())
            .await
            .map_err(|e| e.to_string())?;
        let limits = SieveLimits {
            max_script_bytes: 1 << 20,
            max_scripts: 10,
        };
        store
            .sieve_put("bench", "bench", &text, limits)
            .await
            .map_err(|e| e.to_string())?;
        store
            .sieve_set_active("bench", Some("bench"))
            .await
            .map_err(|e| e.to_string())
    })?;
    Ok((dir, store))
}

/// Calls `Hooks::filter` N times (after N/10 to warm up) with `plugin_list` and prints
/// `LABEL_median_us`, `LABEL_p99_us` and `LABEL_failures`.
fn measure(
    label: &str,
    plugin_list: Vec<PluginConfig>,
    store: Option<&Store>,
    raw: &Arc<Vec<u8>>,
    prefix: &[u8],
    n: usize,
) -> Result<(), String> {
    let config = RawConfig {
        data_dir: PathBuf::from("/nonexistent"),
        plugins: plugin_list,
        ..RawConfig::default()
    };
    let host = PluginHost::new(&config)?;
    let msg = HookMessage {
        raw,
        prefix,
        mail_from: Some("a@example.org"),
        source: Source::Lmtp,
        store: store.map(|s| s as &dyn MailData),
    };
    let mut times = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        // The first user the store makes; the Sieve script looks up mailboxes by it.
        let mut target = Target::new(UserId(1), "bench".into(), "bench@example.org".into());
        let t = Instant::now();
        let v = host.filter(&msg, &mut target);
        let us = t.elapsed().as_secs_f64() * 1e6;
        std::hint::black_box(v);
        if i >= n / 10 {
            times.push(us); // the first tenth warms up
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!("{label}_median_us: {:.1}", percentile(&times, 0.5));
    println!("{label}_p99_us: {:.1}", percentile(&times, 0.99));
    let failures: u64 = host.plugins().iter().map(|p| p.failures).sum();
    println!("{label}_failures: {failures}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (args, sieve) = match args.iter().position(|a| a == "--sieve") {
        Some(i) => match (args.get(i + 1), args.get(i + 2)) {
            (Some(wasm), Some(script)) => {
                let sieve = (PathBuf::from(wasm), PathBuf::from(script));
                let mut rest = args.clone();
                rest.drain(i..i + 3);
                (rest, Some(sieve))
            }
            _ => {
                eprintln!("--sieve needs SIEVE.wasm SCRIPT");
                return ExitCode::from(2);
            }
        },
        None => (args, None),
    };
    let [message, n, plugins @ ..] = args.as_slice() else {
        eprintln!(
            "usage: plugin_overhead MESSAGE.eml N [--sieve SIEVE.wasm SCRIPT] PLUGIN.wasm..."
        );
        return ExitCode::from(2);
    };
    let n: usize = n.parse().unwrap_or(10_000);
    let raw = match std::fs::read(message) {
        Ok(r) => Arc::new(nestbox::util::to_crlf(r)),
        Err(e) => {
            eprintln!("{message}: {e}");
            return ExitCode::from(2);
        }
    };
    let prefix = b"Return-Path: <a@example.org>\r\nDelivered-To: bench@example.org\r\n".to_vec();
    for (label, count, fresh) in [
        ("0_filters", 0usize, false),
        ("1_filter", 1, false),
        ("3_filters", 3, false),
        ("1_filter_fresh", 1, true),
    ] {
        let plugin_list = (0..count)
            .map(|i| {
                plugin(
                    &format!("p{i}"),
                    plugins
                        .get(i % plugins.len().max(1))
                        .map(String::as_str)
                        .unwrap_or(""),
                    PluginHook::Filter,
                    fresh,
                )
            })
            .collect();
        if count > 0 && plugins.is_empty() {
            eprintln!("no plugin given");
            return ExitCode::from(2);
        }
        if let Err(e) = measure(label, plugin_list, None, &raw, &prefix, n) {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    }
    if let Some((wasm, script)) = sieve {
        let result = sieve_store(&script).and_then(|(_dir, store)| {
            let list = vec![plugin(
                "sieve",
                &wasm.to_string_lossy(),
                PluginHook::Sieve,
                false,
            )];
            measure("sieve_script", list, Some(&store), &raw, &prefix, n)
        });
        if let Err(e) = result {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
