//! Per-message filter overhead: the plugin host's `Hooks::filter` called the way a
//! delivery calls it (one copy, one recipient), with 1 and 3 filter plugins, against
//! the same call with no plugins. Warm instances (the default) and fresh ones.
//!
//! ```text
//! cargo bench --bench plugin_overhead -- MESSAGE.eml N PLUGIN.wasm...
//! ```
//!
//! Output: `key: value` lines (microseconds), easy to grep from benches/plugins.sh.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use nestbox::config::{PluginConfig, PluginHook, RawConfig};
use nestbox::delivery::{HookMessage, Hooks, Target};
use nestbox::plugins::PluginHost;
use nestbox::store::SystemFlags;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [message, n, plugins @ ..] = args.as_slice() else {
        eprintln!("usage: plugin_overhead MESSAGE.eml N PLUGIN.wasm...");
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
            .map(|i| PluginConfig {
                name: format!("p{i}"),
                path: PathBuf::from(
                    plugins
                        .get(i % plugins.len().max(1))
                        .map(String::as_str)
                        .unwrap_or(""),
                ),
                hooks: vec![PluginHook::Filter],
                users: Vec::new(),
                settings: Default::default(),
                fresh_instance: fresh,
                on_failure: Default::default(),
                memory_mib: None,
                timeout_ms: None,
            })
            .collect();
        let config = RawConfig {
            data_dir: PathBuf::from("/nonexistent"),
            plugins: plugin_list,
            ..RawConfig::default()
        };
        if count > 0 && plugins.is_empty() {
            eprintln!("no plugin given");
            return ExitCode::from(2);
        }
        let host = match PluginHost::new(&config) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        };
        let msg = HookMessage {
            raw: &raw,
            prefix: &prefix,
            mail_from: Some("a@example.org"),
            source: "lmtp",
        };
        let mut times = Vec::with_capacity(n);
        for i in 0..n + n / 10 {
            let mut target = Target {
                user: 1,
                user_name: "bench".into(),
                address: "bench@example.org".into(),
                mailbox: None,
                create_mailbox: false,
                flags: SystemFlags::default(),
                keywords: Vec::new(),
                kept: None,
            };
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
    }
    ExitCode::SUCCESS
}
