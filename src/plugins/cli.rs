//! `nestbox plugin list | check | test` without a server.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::PluginHost;
use super::filter::{Decision, call, envelope};
use super::message::MessageView;
use crate::config::{Config, PluginConfig};
use crate::contracts::PluginStatus;
use crate::contracts::{HookMessage, Source, Target, UserId};
use crate::store::SystemFlags;

/// Loads the configured plugins as the server would and reports them.
pub fn list_local(config: &Config) -> Result<Vec<PluginStatus>, String> {
    let host = PluginHost::new(config)?;
    Ok(host.current().iter().map(|p| p.status()).collect())
}

/// A table of plugins; `running` says whether counters are live.
pub fn format_list(list: &[PluginStatus], running: bool) -> String {
    let mut out = String::new();
    if list.is_empty() {
        out.push_str("no plugins configured\n");
        return out;
    }
    if !running {
        out.push_str("(no server running: what the config would load)\n");
    }
    for p in list {
        let state = match (p.loaded, p.healthy) {
            (false, _) => "NOT LOADED",
            (true, true) => "healthy",
            (true, false) => "UNHEALTHY",
        };
        let _ = write!(
            out,
            "{}\t{}\thooks: {}\tusers: {}\t{state}",
            p.name,
            p.path,
            if p.hooks.is_empty() {
                "-".into()
            } else {
                p.hooks.join(",")
            },
            if p.users.is_empty() {
                "all".into()
            } else {
                p.users.join(",")
            },
        );
        if running {
            let _ = write!(
                out,
                "\tcalls: {}\tfailures: {}\tmean: {} us",
                p.calls, p.failures, p.mean_us
            );
        }
        out.push('\n');
        if let Some(e) = &p.last_error {
            let _ = writeln!(out, "  last error: {e}");
        }
    }
    out
}

/// `nestbox plugin check FILE`.
pub fn check(config: &Config, file: &Path) -> Result<String, String> {
    let host = PluginHost::new(config)?;
    let started = Instant::now();
    let hooks = host.check(file, &config.plugin_limits)?;
    Ok(format!(
        "{}: ok, implements {} (loaded in {} ms)\n",
        file.display(),
        hooks
            .iter()
            .map(|h| format!("nestbox:plugin/{}", h.name()))
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_millis()
    ))
}

/// `nestbox plugin test FILE --message M`: the filter's verdict on the message.
pub fn test(
    config: &Config,
    file: &Path,
    raw: Vec<u8>,
    settings: BTreeMap<String, String>,
    user: &str,
    from: Option<String>,
) -> Result<String, String> {
    let host = PluginHost::new(config)?;
    let pc = PluginConfig {
        name: file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into()),
        path: file.to_path_buf(),
        hooks: vec![crate::config::PluginHook::Filter],
        users: Vec::new(),
        settings,
        fresh_instance: true,
        on_failure: Default::default(),
        memory_mib: None,
        timeout_ms: None,
    };
    let plugin = host.load_one(&pc, &config.plugin_limits);
    if let Some(e) = &plugin.load_error {
        return Err(e.clone());
    }
    let raw = Arc::new(crate::util::to_crlf(raw));
    let target = Target::new(UserId(0), user.to_string(), String::new());
    let msg = HookMessage {
        raw: &raw,
        prefix: &[],
        mail_from: from.as_deref(),
        source: Source::Deliver,
        store: None,
    };
    let env = envelope(&msg, &target);
    let view = Arc::new(MessageView::new(Vec::new(), raw.clone()));
    let started = Instant::now();
    let decision = call(&plugin, &env, &view).map_err(|e| format!("the filter failed: {e}"))?;
    let took = started.elapsed();
    let mut out = match decision {
        Decision::Accept {
            mailbox,
            flags,
            keywords,
        } => {
            let mut all: Vec<String> = SystemFlags(flags).names().map(str::to_string).collect();
            all.extend(keywords);
            format!(
                "accept mailbox={} flags=[{}]\n",
                mailbox.as_deref().unwrap_or("(unchanged)"),
                all.join(" ")
            )
        }
        Decision::Reject { permanent, text } => format!(
            "reject {} {text}\n",
            if permanent { "permanent" } else { "temporary" }
        ),
        Decision::Discard => "discard\n".to_string(),
        // Only Sieve plugins store several copies; `plugin test` runs filters.
        Decision::Copies(c) => format!("copies {}\n", c.len()),
    };
    let _ = writeln!(out, "time {} us (fresh instance)", took.as_micros());
    Ok(out)
}
