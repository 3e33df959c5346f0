//! Process-wide counters for `/metrics` (Prometheus text format 0.0.4).
//!
//! Every counter is a relaxed atomic in one static [`METRICS`]: recording costs an atomic
//! add, never a lock or an allocation. Label values come from fixed tables in this file
//! (protocols, command names, outcomes), never from what a client sent, so the number of
//! series is bounded: a command name not in the table is counted as `OTHER`.
//!
//! Protocol code records with one call: [`connection`], [`login`], [`delivery`],
//! [`command`] (a guard that records the latency when dropped), [`plugin_call`],
//! [`pack_run`], [`compaction_run`]. Values read at scrape time (store sizes, certificate
//! expiry, listeners) are passed to [`render`] by the HTTP server.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The listeners, as named in `listening <proto> <addr>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Imap,
    Imaps,
    Pop3,
    Pop3s,
    Lmtp,
    Http,
    Https,
    /// A listener this table does not know yet.
    Other,
}

impl Proto {
    const ALL: [Proto; 8] = [
        Proto::Imap,
        Proto::Imaps,
        Proto::Pop3,
        Proto::Pop3s,
        Proto::Lmtp,
        Proto::Http,
        Proto::Https,
        Proto::Other,
    ];

    /// From the accept loop's listener name (`AcceptOptions::proto`).
    pub fn from_listener(name: &str) -> Proto {
        match name {
            "imap" => Proto::Imap,
            "imaps" => Proto::Imaps,
            "pop3" => Proto::Pop3,
            "pop3s" => Proto::Pop3s,
            "lmtp" => Proto::Lmtp,
            "http" => Proto::Http,
            "https" => Proto::Https,
            _ => Proto::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Proto::Imap => "imap",
            Proto::Imaps => "imaps",
            Proto::Pop3 => "pop3",
            Proto::Pop3s => "pop3s",
            Proto::Lmtp => "lmtp",
            Proto::Http => "http",
            Proto::Https => "https",
            Proto::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The protocols whose commands are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandProtocol {
    Imap,
    Pop3,
    Lmtp,
}

impl CommandProtocol {
    fn name(self) -> &'static str {
        match self {
            CommandProtocol::Imap => "imap",
            CommandProtocol::Pop3 => "pop3",
            CommandProtocol::Lmtp => "lmtp",
        }
    }

    /// The command names counted separately; the last entry is the catch-all.
    fn commands(self) -> &'static [&'static str] {
        match self {
            CommandProtocol::Imap => IMAP_COMMANDS,
            CommandProtocol::Pop3 => POP3_COMMANDS,
            CommandProtocol::Lmtp => LMTP_COMMANDS,
        }
    }

    /// Where this protocol's histograms start in [`Metrics::commands`].
    fn offset(self) -> usize {
        match self {
            CommandProtocol::Imap => 0,
            CommandProtocol::Pop3 => IMAP_COMMANDS.len(),
            CommandProtocol::Lmtp => IMAP_COMMANDS.len() + POP3_COMMANDS.len(),
        }
    }
}

const IMAP_COMMANDS: &[&str] = &[
    "CAPABILITY",
    "NOOP",
    "LOGOUT",
    "STARTTLS",
    "ID",
    "ENABLE",
    "LOGIN",
    "AUTHENTICATE",
    "NAMESPACE",
    "LIST",
    "LSUB",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "SELECT",
    "EXAMINE",
    "STATUS",
    "APPEND",
    "IDLE",
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "SEARCH",
    "FETCH",
    "STORE",
    "COPY",
    "MOVE",
    "GETQUOTA",
    "GETQUOTAROOT",
    "COMPRESS",
    "UNAUTHENTICATE",
    "OTHER",
];

const POP3_COMMANDS: &[&str] = &[
    "USER", "PASS", "APOP", "AUTH", "STLS", "CAPA", "STAT", "LIST", "RETR", "TOP", "DELE", "NOOP",
    "RSET", "UIDL", "QUIT", "OTHER",
];

const LMTP_COMMANDS: &[&str] = &[
    "LHLO", "STARTTLS", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "QUIT", "OTHER",
];

const COMMAND_SLOTS: usize = IMAP_COMMANDS.len() + POP3_COMMANDS.len() + LMTP_COMMANDS.len();

/// Upper bounds of the latency buckets, in microseconds (Prometheus `le` in seconds).
const BUCKETS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000, 2_000_000,
];

/// A latency histogram: cumulative only when rendered, one atomic add per observation.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS_US.len()],
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if let Some(i) = BUCKETS_US.iter().position(|b| us <= *b)
            && let Some(b) = self.buckets.get(i)
        {
            b.fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (b, le) in self.buckets.iter().zip(BUCKETS_US) {
            cumulative += b.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
                le as f64 / 1e6
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// How a login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    Ok,
    Failed,
    Throttled,
}

/// What became of one delivered copy (per recipient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Accepted,
    Refused,
}

/// A listener as bound, and whether its accept loop still runs.
struct Listener {
    proto: &'static str,
    addr: SocketAddr,
    up: Arc<AtomicBool>,
}

/// All counters of the process.
pub struct Metrics {
    connections: [AtomicU64; Proto::ALL.len()],
    refused: [AtomicU64; Proto::ALL.len()],
    logins: [AtomicU64; 3],
    deliveries: [AtomicU64; 2],
    commands: [Histogram; COMMAND_SLOTS],
    pack_runs: AtomicU64,
    compaction_runs: AtomicU64,
    plugin_calls: AtomicU64,
    plugin_failures: AtomicU64,
    plugin_latency: Histogram,
    listeners: RwLock<Vec<Listener>>,
}

/// The counters of this process.
pub static METRICS: Metrics = Metrics {
    connections: [const { AtomicU64::new(0) }; Proto::ALL.len()],
    refused: [const { AtomicU64::new(0) }; Proto::ALL.len()],
    logins: [const { AtomicU64::new(0) }; 3],
    deliveries: [const { AtomicU64::new(0) }; 2],
    commands: [const { Histogram::new() }; COMMAND_SLOTS],
    pack_runs: AtomicU64::new(0),
    compaction_runs: AtomicU64::new(0),
    plugin_calls: AtomicU64::new(0),
    plugin_failures: AtomicU64::new(0),
    plugin_latency: Histogram::new(),
    listeners: RwLock::new(Vec::new()),
};

fn add(counters: &[AtomicU64], i: usize) {
    if let Some(c) = counters.get(i) {
        c.fetch_add(1, Relaxed);
    }
}

/// A connection accepted (`accepted`) or refused over a limit, on a listener.
pub fn connection(listener: &str, accepted: bool) {
    let p = Proto::from_listener(listener).index();
    add(
        if accepted {
            &METRICS.connections
        } else {
            &METRICS.refused
        },
        p,
    );
}

/// A login attempt's outcome (every protocol, from the authenticator).
pub fn login(outcome: Login) {
    add(&METRICS.logins, outcome as usize);
}

/// One delivered copy's outcome (the delivery pipeline says which).
pub fn delivery(outcome: Delivery) {
    add(&METRICS.deliveries, outcome as usize);
}

/// A background pack run that packed something.
pub fn pack_run() {
    METRICS.pack_runs.fetch_add(1, Relaxed);
}

/// A compaction that ran.
pub fn compaction_run() {
    METRICS.compaction_runs.fetch_add(1, Relaxed);
}

/// One plugin call: its latency and whether it failed.
pub fn plugin_call(elapsed: Duration, failed: bool) {
    METRICS.plugin_calls.fetch_add(1, Relaxed);
    if failed {
        METRICS.plugin_failures.fetch_add(1, Relaxed);
    }
    METRICS.plugin_latency.observe(elapsed);
}

/// Times one command: its latency is recorded when the guard is dropped.
pub struct CommandTimer {
    slot: usize,
    start: Instant,
}

impl Drop for CommandTimer {
    fn drop(&mut self) {
        if let Some(h) = METRICS.commands.get(self.slot) {
            h.observe(self.start.elapsed());
        }
    }
}

/// Starts timing a command named `name` (a command name or a whole command line, whose
/// first word is used, case-insensitively).
pub fn command(protocol: CommandProtocol, name: &[u8]) -> CommandTimer {
    let word = name
        .split(|b| *b == b' ' || *b == b'\r' || *b == b'\n')
        .next()
        .unwrap_or(&[]);
    let table = protocol.commands();
    let i = table
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(word))
        .unwrap_or(table.len().saturating_sub(1));
    CommandTimer {
        slot: protocol.offset() + i,
        start: Instant::now(),
    }
}

/// Records a listener as bound; it counts as up until the returned guard is dropped.
pub fn listener_up(proto: &'static str, addr: SocketAddr) -> ListenerGuard {
    let up = Arc::new(AtomicBool::new(true));
    let mut l = match METRICS.listeners.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    l.push(Listener {
        proto,
        addr,
        up: up.clone(),
    });
    ListenerGuard(up)
}

/// Marks its listener down when dropped (the accept loop ended).
pub struct ListenerGuard(Arc<AtomicBool>);

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        self.0.store(false, Relaxed);
    }
}

/// The first bound port of the listener `proto` (`imaps`, `pop3`, ...).
pub fn bound_port(proto: &str) -> Option<u16> {
    let l = match METRICS.listeners.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    l.iter().find(|l| l.proto == proto).map(|l| l.addr.port())
}

/// Listeners that are down (their accept loop ended), as `proto addr`.
pub fn listeners_down() -> Vec<String> {
    let l = match METRICS.listeners.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    l.iter()
        .filter(|l| !l.up.load(Relaxed))
        .map(|l| format!("{} {}", l.proto, l.addr))
        .collect()
}

/// Values read when scraped.
pub struct Gauges {
    /// Bytes of live message data, of the database file, and free inside it.
    pub store_live: u64,
    pub store_file: u64,
    pub store_free: u64,
    /// Packs decompressed to read messages since start (pack cache misses).
    pub pack_decompressions: u64,
    /// Seconds since the epoch when the current certificate expires.
    pub tls_not_after: Option<i64>,
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The Prometheus text exposition of every counter and `gauges`.
pub fn render(gauges: &Gauges) -> String {
    let m = &METRICS;
    let mut out = String::with_capacity(32 * 1024);
    let load = |counters: &[AtomicU64], i: usize| counters.get(i).map_or(0, |c| c.load(Relaxed));
    let by_proto = |counters: &[AtomicU64]| -> Vec<(&str, u64)> {
        Proto::ALL
            .into_iter()
            .map(|p| (p.name(), load(counters, p.index())))
            .collect()
    };
    let by_outcome = |names: &[&'static str], counters: &[AtomicU64]| -> Vec<(&str, u64)> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| (*name, load(counters, i)))
            .collect()
    };
    // Counters kept for each value of one label: (name, help, label, samples).
    let labelled = [
        (
            "nestbox_connections_total",
            "Connections accepted, by listener.",
            "protocol",
            by_proto(&m.connections),
        ),
        (
            "nestbox_connections_refused_total",
            "Connections refused over a connection limit, by listener.",
            "protocol",
            by_proto(&m.refused),
        ),
        (
            "nestbox_logins_total",
            "Login attempts, by outcome.",
            "outcome",
            by_outcome(&["ok", "failed", "throttled"], &m.logins),
        ),
        (
            "nestbox_deliveries_total",
            "Delivered copies (one per recipient), by outcome.",
            "outcome",
            by_outcome(&["accepted", "refused"], &m.deliveries),
        ),
    ];
    for (name, help, label, samples) in labelled {
        header(&mut out, name, "counter", help);
        for (value, n) in samples {
            let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
        }
    }
    header(
        &mut out,
        "nestbox_command_duration_seconds",
        "histogram",
        "Time to answer a command, by protocol and command.",
    );
    for p in [
        CommandProtocol::Imap,
        CommandProtocol::Pop3,
        CommandProtocol::Lmtp,
    ] {
        for (i, c) in p.commands().iter().enumerate() {
            if let Some(h) = m.commands.get(p.offset() + i)
                && h.count.load(Relaxed) > 0
            {
                let labels = format!("protocol=\"{}\",command=\"{c}\"", p.name());
                h.render(&mut out, "nestbox_command_duration_seconds", &labels);
            }
        }
    }
    let simple = [
        (
            "nestbox_pack_runs_total",
            "counter",
            "Background pack runs that packed messages.",
            m.pack_runs.load(Relaxed),
        ),
        (
            "nestbox_pack_decompressions_total",
            "counter",
            "Packs decompressed to read messages (reads the pack cache did not answer).",
            gauges.pack_decompressions,
        ),
        (
            "nestbox_compaction_runs_total",
            "counter",
            "Database compactions.",
            m.compaction_runs.load(Relaxed),
        ),
        (
            "nestbox_plugin_calls_total",
            "counter",
            "Plugin calls.",
            m.plugin_calls.load(Relaxed),
        ),
        (
            "nestbox_plugin_failures_total",
            "counter",
            "Plugin calls that failed (trap, deadline, memory, bad answer).",
            m.plugin_failures.load(Relaxed),
        ),
        (
            "nestbox_store_live_bytes",
            "gauge",
            "Bytes of stored message data.",
            gauges.store_live,
        ),
        (
            "nestbox_store_file_bytes",
            "gauge",
            "Size of the database file.",
            gauges.store_file,
        ),
        (
            "nestbox_store_free_bytes",
            "gauge",
            "Free space inside the database file (reclaimed by compaction).",
            gauges.store_free,
        ),
    ];
    for (name, kind, help, v) in simple {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    header(
        &mut out,
        "nestbox_plugin_call_duration_seconds",
        "histogram",
        "Time of one plugin call.",
    );
    m.plugin_latency.render(
        &mut out,
        "nestbox_plugin_call_duration_seconds",
        "hook=\"all\"",
    );
    if let Some(t) = gauges.tls_not_after {
        header(
            &mut out,
            "nestbox_tls_certificate_expiry_seconds",
            "gauge",
            "When the served certificate expires, in seconds since the Unix epoch.",
        );
        let _ = writeln!(out, "nestbox_tls_certificate_expiry_seconds {t}");
    }
    header(
        &mut out,
        "nestbox_listener_up",
        "gauge",
        "1 while a listener accepts connections.",
    );
    let l = match m.listeners.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    for l in l.iter() {
        let _ = writeln!(
            out,
            "nestbox_listener_up{{protocol=\"{}\",address=\"{}\"}} {}",
            Proto::from_listener(l.proto).name(),
            l.addr,
            u8::from(l.up.load(Relaxed))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_map_to_fixed_slots() {
        let before = METRICS.commands[CommandProtocol::Pop3.offset() + 8]
            .count
            .load(Relaxed);
        drop(command(CommandProtocol::Pop3, b"retr 1\r\n"));
        let after = METRICS.commands[CommandProtocol::Pop3.offset() + 8]
            .count
            .load(Relaxed);
        assert_eq!(after, before + 1);
        let other = CommandProtocol::Lmtp.offset() + LMTP_COMMANDS.len() - 1;
        let before = METRICS.commands[other].count.load(Relaxed);
        drop(command(CommandProtocol::Lmtp, b"\xffGARBAGE"));
        assert_eq!(METRICS.commands[other].count.load(Relaxed), before + 1);
    }

    #[test]
    fn histogram_renders_cumulative_buckets() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.0001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
    }
}
