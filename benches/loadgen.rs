//! Load generator for nestbox and Dovecot: an independent client (std sockets, threads and
//! the rustls client; no nestbox code) that drives LMTP, IMAP and POP3 with real messages.
//!
//! ```text
//! cargo bench --bench loadgen -- WORKLOAD [--flag value]...
//! ```
//!
//! Workloads:
//!
//! * `lmtp`   `--conns N` connections each deliver `--messages M` corpus messages (dealt
//!   round-robin over the corpus, cycling if needed) to `--rcpts a,b,..` (one RCPT per
//!   recipient; a name without `@` gets `@localhost`). MAIL/RCPT/DATA are pipelined
//!   (RFC 2920) unless `--pipelining off`. One op = one message acknowledged for every
//!   recipient (RFC 2033 §4.2: one reply per recipient after the dot).
//! * `mix`    `--conns N` IMAP clients for `--duration D` seconds, client i logging in as
//!   user i of `--users` (cycling). Each round: APPEND one corpus message (the "new mail"),
//!   NOOP, UID FETCH of the new mail's FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE
//!   INTERNALDATE, UID FETCH BODY.PEEK[], UID STORE +FLAGS.SILENT (\Seen), UID SEARCH
//!   UNSEEN, UID SEARCH SUBJECT, then on odd rounds UID MOVE to Archive, on even rounds UID
//!   COPY to Archive + UID STORE \Deleted + EXPUNGE, then IDLE/DONE; every 10 rounds
//!   LOGOUT and log in again (LOGIN, SELECT). With `--pipelining on` the commands of one
//!   step go out in one write (APPEND with a LITERAL+ literal + NOOP; the two FETCHes,
//!   STORE and the SEARCHes; MOVE or COPY/STORE/EXPUNGE). The mailbox `Archive` must exist.
//! * `append` `--conns N` clients each LOGIN and APPEND `--messages M` corpus messages to
//!   INBOX (LITERAL+ when offered, else a synchronizing literal), then LOGOUT.
//! * `login`  `--conns N` clients for `--duration D` s: connect, greeting, LOGIN, LOGOUT.
//! * `pop3`   `--conns N` clients (user i each), one pass: USER/PASS, STAT, UIDL, RETR of
//!   every message, DELE of each with `--delete`, QUIT (the deletions commit at QUIT).
//! * `stress` `--conns N` IMAP clients for `--duration D` seconds, client i as user i of
//!   `--users` (cycling, so several clients share a mailbox). Each round: APPEND a fresh
//!   message of `--size` bytes (default 32768: a corpus message's header, a unique
//!   Message-ID and a generated text body), NOOP, UID FETCH of the new mail's FLAGS
//!   ENVELOPE RFC822.SIZE, UID FETCH BODY.PEEK[], UID STORE \Seen; once the client holds
//!   more than `--keep` (default 10) of its messages, UID STORE \Deleted on its oldest and
//!   EXPUNGE (which also expunges what the other clients of that mailbox marked, while they
//!   work on it). Every 20 rounds LOGOUT and log in again. Mailboxes stay bounded, so the
//!   server's memory should too: the memory leak check of benches/rss.sh.
//! * `idle`   open `--conns K` IMAP connections (`--tls` for implicit TLS), LOGIN and
//!   SELECT INBOX on each (all as user 1), and with `--idle-cmd` enter IDLE; wait 2 s,
//!   measure the server, hold `--hold S` seconds, close. Reports memory per connection:
//!   (server memory with the K connections - before them) / K, where "before" already
//!   has 10 warm-up connections open (first-login costs are not per connection).
//!
//! * `fetchstore` `--conns N` IMAP clients for `--duration D` s (user i each), after LOGIN,
//!   SELECT INBOX and UID SEARCH ALL: a FETCH/STORE mix on random messages of INBOX, one
//!   command at a time, in turn UID FETCH BODY.PEEK[], UID FETCH FLAGS, UID STORE
//!   +FLAGS.SILENT (\Seen), UID STORE -FLAGS.SILENT (\Seen) (the last two on one message).
//!   With `--period P`, each P s is cut in phases: from `--fetch-only-from A` s on only
//!   the FETCHes are sent (the server's writer is quiet, readers are not), from
//!   `--pause-from B` s on nothing (0 = no such phase).
//!   `--log FILE` writes every command as `START_MS LATENCY_US NAME` (START_MS: ms since
//!   the Unix epoch, to match against the server's log), sorted by start.
//!
//! Common flags: `--addr HOST:PORT`, `--corpus DIR`, `--limit N` (corpus files used),
//! `--users u1,u2,..` or `--users bench1..bench10`, `--password PW`, `--pid P[,P..]` (the
//! server; its child processes are counted too: Dovecot runs one process per connection).
//!
//! Output: `key: value` lines (`ops`, `ops_per_s`, `errors`, `elapsed_s`, `server_*`) and
//! one `cmd NAME n=.. p50_ms=.. p99_ms=.. max_ms=.. errors=..` line per command. Server
//! figures are read from /proc: RSS (VmRSS summed over the server and its descendants), PSS
//! (smaps_rollup; counts shared pages once), CPU time (utime+stime, delta over the run).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

type Res<T> = Result<T, String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

// ---------------------------------------------------------------------------------------
// arguments

#[derive(Clone)]
struct Args {
    workload: String,
    addr: String,
    corpus: PathBuf,
    limit: usize,
    conns: usize,
    messages: usize,
    duration: Duration,
    users: Vec<String>,
    password: String,
    rcpts: Vec<String>,
    pipelining: bool,
    tls: bool,
    idle_cmd: bool,
    hold: Duration,
    delete: bool,
    size: usize,
    keep: usize,
    pids: Vec<u32>,
    log: Option<PathBuf>,
    period: f64,
    fetch_only_from: f64,
    pause_from: f64,
}

const USAGE: &str = "usage: loadgen lmtp|mix|append|login|pop3|stress|idle|fetchstore \
--addr HOST:PORT [--corpus DIR] [--limit N] [--conns N] [--messages M] [--duration S] \
[--users LIST] [--password PW] [--rcpts LIST] [--pipelining on|off] [--tls] [--idle-cmd] \
[--hold S] [--delete] [--size BYTES] [--keep N] [--pid P[,P]] [--log FILE] \
[--period S --fetch-only-from S --pause-from S]";

/// `bench1..bench10` or `a,b,c`.
fn parse_list(s: &str) -> Res<Vec<String>> {
    if let Some((a, b)) = s.split_once("..") {
        let split = |x: &str| {
            let d = x.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            (x[..d].to_string(), x[d..].parse::<usize>().ok())
        };
        let (pa, na) = split(a);
        let (pb, nb) = split(b);
        let (Some(na), Some(nb)) = (na, nb) else {
            return Err(format!("bad range {s:?}"));
        };
        if pa != pb && !pb.is_empty() {
            return Err(format!("bad range {s:?}"));
        }
        return Ok((na..=nb).map(|n| format!("{pa}{n}")).collect());
    }
    Ok(s.split(',')
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect())
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        workload: String::new(),
        addr: String::new(),
        corpus: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/corpus/spamassassin-dev"
        )),
        limit: usize::MAX,
        conns: 1,
        messages: 100,
        duration: Duration::from_secs(10),
        users: vec!["bench".into()],
        password: "pw".into(),
        rcpts: Vec::new(),
        pipelining: true,
        tls: false,
        idle_cmd: false,
        hold: Duration::from_secs(0),
        delete: false,
        size: 32 * 1024,
        keep: 10,
        pids: Vec::new(),
        log: None,
        period: 0.0,
        fetch_only_from: 0.0,
        pause_from: 0.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(f) = it.next() {
        let mut val = || {
            it.next()
                .ok_or_else(|| format!("{f} needs a value\n{USAGE}"))
        };
        let num = |v: String| v.parse::<usize>().map_err(|_| format!("bad number {v:?}"));
        match f.as_str() {
            "--bench" => {}
            "--addr" => a.addr = val()?,
            "--corpus" => a.corpus = PathBuf::from(val()?),
            "--limit" => a.limit = num(val()?)?,
            "--conns" => a.conns = num(val()?)?.max(1),
            "--messages" => a.messages = num(val()?)?,
            "--duration" => a.duration = Duration::from_secs_f64(num(val()?)? as f64),
            "--hold" => a.hold = Duration::from_secs_f64(num(val()?)? as f64),
            "--users" => a.users = parse_list(&val()?)?,
            "--password" => a.password = val()?,
            "--rcpts" => a.rcpts = parse_list(&val()?)?,
            "--pipelining" => a.pipelining = val()? != "off",
            "--tls" => a.tls = true,
            "--idle-cmd" => a.idle_cmd = true,
            "--delete" => a.delete = true,
            "--log" => a.log = Some(PathBuf::from(val()?)),
            "--period" => a.period = num(val()?)? as f64,
            "--fetch-only-from" => a.fetch_only_from = num(val()?)? as f64,
            "--pause-from" => a.pause_from = num(val()?)? as f64,
            "--size" => a.size = num(val()?)?,
            "--keep" => a.keep = num(val()?)?,
            "--pid" => {
                a.pids = val()?
                    .split(',')
                    .map(|p| p.parse().map_err(|_| format!("bad pid {p:?}")))
                    .collect::<Res<_>>()?
            }
            "-h" | "--help" => return Err(USAGE.into()),
            w if !w.starts_with('-') && a.workload.is_empty() => a.workload = w.into(),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if a.workload.is_empty() || a.addr.is_empty() {
        return Err(USAGE.into());
    }
    if a.users.is_empty() {
        return Err("--users is empty".into());
    }
    if a.rcpts.is_empty() {
        a.rcpts = vec![a.users.first().cloned().unwrap_or_default()];
    }
    Ok(a)
}

// ---------------------------------------------------------------------------------------
// corpus

/// The corpus files, sorted by name, LF converted to CRLF, ending in CRLF.
fn load_corpus(dir: &PathBuf, limit: usize) -> Res<Vec<Vec<u8>>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("corpus {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    names.truncate(limit);
    let mut out = Vec::with_capacity(names.len());
    for p in names {
        let raw = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mut m = Vec::with_capacity(raw.len() + raw.len() / 20);
        let mut prev = 0u8;
        for &b in &raw {
            if b == b'\n' && prev != b'\r' {
                m.push(b'\r');
            }
            m.push(b);
            prev = b;
        }
        if !m.ends_with(b"\r\n") {
            m.extend_from_slice(b"\r\n");
        }
        out.push(m);
    }
    if out.is_empty() {
        return Err(format!("no messages in {}", dir.display()));
    }
    Ok(out)
}

/// Dot-stuffed and terminated for SMTP/LMTP DATA (RFC 5321 §4.5.2).
fn dot_stuff(m: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.len() + 64);
    let mut start = true;
    for &b in m {
        if start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        start = b == b'\n';
    }
    out.extend_from_slice(b".\r\n");
    out
}

// ---------------------------------------------------------------------------------------
// statistics

#[derive(Default)]
struct Stats {
    lat: BTreeMap<&'static str, Vec<Duration>>,
    errs: BTreeMap<&'static str, u64>,
    ops: u64,
    first_errors: Vec<String>,
    /// Every command of `fetchstore`: start (ms since the Unix epoch), latency, name.
    log: Vec<(f64, Duration, &'static str)>,
}

impl Stats {
    fn ok(&mut self, cmd: &'static str, d: Duration) {
        self.lat.entry(cmd).or_default().push(d);
        self.ops += 1;
    }
    fn fail(&mut self, cmd: &'static str, why: &str) {
        *self.errs.entry(cmd).or_default() += 1;
        if self.first_errors.len() < 5 {
            self.first_errors.push(format!("{cmd}: {}", why.trim_end()));
        }
    }
    fn merge(&mut self, o: Stats) {
        for (k, v) in o.lat {
            self.lat.entry(k).or_default().extend(v);
        }
        for (k, v) in o.errs {
            *self.errs.entry(k).or_default() += v;
        }
        self.ops += o.ops;
        self.log.extend(o.log);
        for e in o.first_errors {
            if self.first_errors.len() < 5 {
                self.first_errors.push(e);
            }
        }
    }
    /// Writes `log` as `START_MS LATENCY_US NAME` lines, sorted by start.
    fn write_log(&mut self, path: &std::path::Path) -> Res<()> {
        self.log.sort_by(|x, y| x.0.total_cmp(&y.0));
        let mut out = String::new();
        for (start, lat, name) in &self.log {
            out.push_str(&format!("{start:.3} {} {name}\n", lat.as_micros()));
        }
        std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
    }
    fn errors(&self) -> u64 {
        self.errs.values().sum()
    }
    fn print(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-9);
        println!("elapsed_s: {secs:.3}");
        println!("ops: {}", self.ops);
        println!("ops_per_s: {:.1}", self.ops as f64 / secs);
        println!("errors: {}", self.errors());
        let mut names: Vec<&'static str> = self.lat.keys().copied().collect();
        for k in self.errs.keys() {
            if !names.contains(k) {
                names.push(k);
            }
        }
        for name in names {
            let v = self.lat.entry(name).or_default();
            v.sort();
            let pct = |p: f64| -> f64 {
                if v.is_empty() {
                    return 0.0;
                }
                let i = ((v.len() as f64 - 1.0) * p).round() as usize;
                v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
            };
            println!(
                "cmd {name} n={} per_s={:.1} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} errors={}",
                v.len(),
                v.len() as f64 / secs,
                pct(0.5),
                pct(0.99),
                pct(1.0),
                self.errs.get(name).copied().unwrap_or(0)
            );
        }
        for e in &self.first_errors {
            println!("first_error: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// the server process, from /proc

#[derive(Clone, Copy, Default)]
struct ProcSample {
    procs: u64,
    rss_kib: u64,
    pss_kib: u64,
    cpu_ticks: u64,
}

fn proc_children() -> BTreeMap<u32, Vec<u32>> {
    let mut m: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return m;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(st) = read_stat(pid) {
            m.entry(st.0).or_default().push(pid);
        }
    }
    m
}

/// (ppid, utime+stime) from /proc/PID/stat; the comm field may contain spaces.
fn read_stat(pid: u32) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // after comm: state(3) ppid(4) ... utime(14) stime(15) -> indexes 1, 11, 12
    let ppid = f.get(1)?.parse().ok()?;
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((ppid, ut + st))
}

fn kib_field(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn sample(pids: &[u32]) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    let kids = proc_children();
    let mut all = Vec::new();
    let mut todo: Vec<u32> = pids.to_vec();
    while let Some(p) = todo.pop() {
        if all.contains(&p) {
            continue;
        }
        all.push(p);
        if let Some(c) = kids.get(&p) {
            todo.extend(c);
        }
    }
    let mut s = ProcSample::default();
    for p in all {
        let Some((_, cpu)) = read_stat(p) else {
            continue;
        };
        s.procs += 1;
        s.cpu_ticks += cpu;
        s.rss_kib += kib_field(&format!("/proc/{p}/status"), "VmRSS:");
        s.pss_kib += kib_field(&format!("/proc/{p}/smaps_rollup"), "Pss:");
    }
    Some(s)
}

fn clk_tck() -> f64 {
    // Linux's USER_HZ is 100 on every common architecture; getconf is the check.
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn print_server(prefix: &str, before: Option<ProcSample>, after: Option<ProcSample>) {
    let (Some(b), Some(a)) = (before, after) else {
        return;
    };
    println!("{prefix}server_procs: {}", a.procs);
    println!("{prefix}server_rss_kib: {}", a.rss_kib);
    println!("{prefix}server_pss_kib: {}", a.pss_kib);
    println!(
        "{prefix}server_cpu_s: {:.2}",
        a.cpu_ticks.saturating_sub(b.cpu_ticks) as f64 / clk_tck()
    );
}

// ---------------------------------------------------------------------------------------
// connections

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(b),
            Stream::Tls(s) => s.read(b),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(b),
            Stream::Tls(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Accepts any certificate: the servers under test use self-signed ones.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config() -> Res<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

fn connect(addr: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> Res<BufReader<Stream>> {
    let s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).map_err(err)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(err)?;
    let stream = match tls {
        None => Stream::Plain(s),
        Some(cfg) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").map_err(err)?;
            let c = rustls::ClientConnection::new(cfg.clone(), name).map_err(err)?;
            Stream::Tls(Box::new(rustls::StreamOwned::new(c, s)))
        }
    };
    Ok(BufReader::with_capacity(64 * 1024, stream))
}

fn send(r: &mut BufReader<Stream>, b: &[u8]) -> Res<()> {
    let w = r.get_mut();
    w.write_all(b).map_err(err)?;
    w.flush().map_err(err)
}

fn read_line(r: &mut BufReader<Stream>) -> Res<String> {
    let mut buf = Vec::new();
    if r.read_until(b'\n', &mut buf).map_err(err)? == 0 {
        return Err("connection closed".into());
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

// ---------------------------------------------------------------------------------------
// IMAP

/// One IMAP connection: tags, response reading with literals.
struct Imap {
    r: BufReader<Stream>,
    n: u64,
    literal_plus: bool,
}

/// What came back for one tagged command.
struct Reply {
    ok: bool,
    tagged: String,
    untagged: Vec<String>,
}

impl Imap {
    fn open(addr: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> Res<Imap> {
        let mut r = connect(addr, tls)?;
        let greet = read_line(&mut r)?;
        if !greet.starts_with("* OK") {
            return Err(format!("greeting: {greet}"));
        }
        let literal_plus = greet.contains("LITERAL+");
        Ok(Imap {
            r,
            n: 0,
            literal_plus,
        })
    }

    fn tag(&mut self) -> String {
        self.n += 1;
        format!("a{}", self.n)
    }

    /// Reads one response line including any literals it carries; literal contents are
    /// dropped (only their size is kept in the line as `{n}`).
    fn read_resp(&mut self) -> Res<String> {
        let mut line = String::new();
        loop {
            let part = read_line(&mut self.r)?;
            let t = part.trim_end();
            let lit = t
                .strip_suffix('}')
                .and_then(|x| x.rfind('{').map(|i| (i, x)))
                .and_then(|(i, x)| x.get(i + 1..)?.trim_end_matches('+').parse::<u64>().ok());
            line.push_str(t);
            match lit {
                Some(n) => {
                    let got = std::io::copy(&mut (&mut self.r).take(n), &mut std::io::sink())
                        .map_err(err)?;
                    if got != n {
                        return Err("connection closed in a literal".into());
                    }
                }
                None => return Ok(line),
            }
        }
    }

    /// Reads until the tagged reply to `tag`.
    fn wait(&mut self, tag: &str) -> Res<Reply> {
        let mut untagged = Vec::new();
        loop {
            let l = self.read_resp()?;
            if let Some(rest) = l.strip_prefix(tag).and_then(|x| x.strip_prefix(' ')) {
                return Ok(Reply {
                    ok: rest.starts_with("OK"),
                    tagged: l.clone(),
                    untagged,
                });
            }
            if l.starts_with('+') {
                return Err(format!("unexpected continuation: {l}"));
            }
            untagged.push(l);
        }
    }

    /// Sends one command and waits for its completion, recording the time.
    fn cmd(&mut self, st: &mut Stats, name: &'static str, body: &str) -> Res<Reply> {
        let tag = self.tag();
        let t0 = Instant::now();
        send(&mut self.r, format!("{tag} {body}\r\n").as_bytes())?;
        let rep = self.wait(&tag)?;
        record(st, name, t0, &rep);
        Ok(rep)
    }

    fn login(&mut self, st: &mut Stats, user: &str, pw: &str) -> Res<()> {
        let rep = self.cmd(st, "login", &format!("LOGIN {} {}", quote(user), quote(pw)))?;
        if rep.ok {
            Ok(())
        } else {
            Err(format!("login refused: {}", rep.tagged))
        }
    }

    /// SELECT INBOX; returns UIDNEXT.
    fn select(&mut self, st: &mut Stats) -> Res<u64> {
        let rep = self.cmd(st, "select", "SELECT INBOX")?;
        if !rep.ok {
            return Err(format!("select: {}", rep.tagged));
        }
        Ok(rep
            .untagged
            .iter()
            .find_map(|l| code_num(l, "UIDNEXT"))
            .unwrap_or(1))
    }

    /// The bytes of an APPEND command: with LITERAL+ the whole command, else the part
    /// up to the literal (the caller waits for `+` and sends the message).
    fn append_cmd(&self, tag: &str, mailbox: &str, msg: &[u8]) -> (Vec<u8>, bool) {
        let plus = if self.literal_plus { "+" } else { "" };
        let mut b = format!("{tag} APPEND {mailbox} {{{}{plus}}}\r\n", msg.len()).into_bytes();
        if self.literal_plus {
            b.extend_from_slice(msg);
            b.extend_from_slice(b"\r\n");
        }
        (b, self.literal_plus)
    }

    /// APPEND one message and wait; returns the APPENDUID uid when given.
    fn append(&mut self, st: &mut Stats, mailbox: &str, msg: &[u8]) -> Res<Option<u64>> {
        let tag = self.tag();
        let t0 = Instant::now();
        let (head, whole) = self.append_cmd(&tag, mailbox, msg);
        send(&mut self.r, &head)?;
        if !whole {
            let l = self.read_resp()?;
            if !l.starts_with('+') {
                st.fail("append", &l);
                return Ok(None);
            }
            let mut rest = msg.to_vec();
            rest.extend_from_slice(b"\r\n");
            send(&mut self.r, &rest)?;
        }
        let rep = self.wait(&tag)?;
        record(st, "append", t0, &rep);
        Ok(appenduid(&rep.tagged))
    }
}

fn record(st: &mut Stats, name: &'static str, t0: Instant, rep: &Reply) {
    if rep.ok {
        st.ok(name, t0.elapsed());
    } else {
        st.fail(name, &rep.tagged);
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `[UIDNEXT 5]` and the like.
fn code_num(l: &str, code: &str) -> Option<u64> {
    let i = l.find(&format!("[{code} "))?;
    let rest = l.get(i + code.len() + 2..)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// `[APPENDUID validity uid]` (RFC 4315).
fn appenduid(l: &str) -> Option<u64> {
    let i = l.find("[APPENDUID ")?;
    let rest = l.get(i + 11..)?;
    let mut it = rest.split([' ', ']']);
    it.next()?;
    it.next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// workloads

fn user_for(a: &Args, i: usize) -> String {
    a.users.get(i % a.users.len()).cloned().unwrap_or_default()
}

/// Runs `f(i)` on `n` threads started together; returns the merged stats and wall time.
fn run_threads<F>(n: usize, f: F) -> (Stats, Duration)
where
    F: Fn(usize, &mut Stats) -> Res<()> + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n + 1));
    let mut hs = Vec::new();
    for i in 0..n {
        let f = f.clone();
        let b = barrier.clone();
        hs.push(std::thread::spawn(move || {
            let mut st = Stats::default();
            b.wait();
            if let Err(e) = f(i, &mut st) {
                st.fail("session", &e);
            }
            st
        }));
    }
    barrier.wait();
    let t0 = Instant::now();
    let mut all = Stats::default();
    for h in hs {
        match h.join() {
            Ok(s) => all.merge(s),
            Err(_) => all.fail("thread", "panicked"),
        }
    }
    (all, t0.elapsed())
}

fn lmtp(a: Arc<Args>, corpus: Arc<Vec<Vec<u8>>>) -> (Stats, Duration) {
    let n = a.conns;
    run_threads(n, move |i, st| {
        let mut r = connect(&a.addr, None)?;
        let smtp_reply = |r: &mut BufReader<Stream>| -> Res<(u16, String)> {
            loop {
                let l = read_line(r)?;
                let code = l.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                if l.as_bytes().get(3) != Some(&b'-') {
                    return Ok((code, l));
                }
            }
        };
        smtp_reply(&mut r)?;
        send(&mut r, b"LHLO loadgen.localhost\r\n")?;
        let mut pipelining = false;
        loop {
            let l = read_line(&mut r)?;
            pipelining |= l.to_ascii_uppercase().contains("PIPELINING");
            if l.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        pipelining &= a.pipelining;
        let rcpts: Vec<String> = a
            .rcpts
            .iter()
            .map(|r| {
                if r.contains('@') {
                    r.clone()
                } else {
                    format!("{r}@localhost")
                }
            })
            .collect();
        for k in 0..a.messages {
            let idx = (i + k * n) % corpus.len();
            let msg = dot_stuff(corpus.get(idx).map_or(&[][..], |m| m));
            let t0 = Instant::now();
            let mut env = b"MAIL FROM:<loadgen@localhost>\r\n".to_vec();
            for rc in &rcpts {
                env.extend_from_slice(format!("RCPT TO:<{rc}>\r\n").as_bytes());
            }
            env.extend_from_slice(b"DATA\r\n");
            let mut bad = None;
            if pipelining {
                send(&mut r, &env)?;
                for _ in 0..rcpts.len() + 2 {
                    let (c, l) = smtp_reply(&mut r)?;
                    if !(200..300).contains(&c) && c != 354 {
                        bad.get_or_insert(l);
                    }
                }
            } else {
                for l in env.split_inclusive(|&b| b == b'\n') {
                    send(&mut r, l)?;
                    let (c, l) = smtp_reply(&mut r)?;
                    if !(200..300).contains(&c) && c != 354 {
                        bad.get_or_insert(l);
                    }
                }
            }
            if bad.is_some() {
                // The DATA was refused (or not): reset and go on.
                send(&mut r, b"RSET\r\n")?;
                smtp_reply(&mut r)?;
                st.fail("deliver", &bad.unwrap_or_default());
                continue;
            }
            send(&mut r, &msg)?;
            for _ in &rcpts {
                let (c, l) = smtp_reply(&mut r)?;
                if c != 250 {
                    bad.get_or_insert(l);
                }
            }
            match bad {
                Some(l) => st.fail("deliver", &l),
                None => st.ok("deliver", t0.elapsed()),
            }
        }
        send(&mut r, b"QUIT\r\n")?;
        let _ = smtp_reply(&mut r);
        Ok(())
    })
}

fn append(a: Arc<Args>, corpus: Arc<Vec<Vec<u8>>>) -> (Stats, Duration) {
    let n = a.conns;
    run_threads(n, move |i, st| {
        let mut c = Imap::open(&a.addr, None)?;
        c.login(st, &user_for(&a, i), &a.password)?;
        for k in 0..a.messages {
            let msg = corpus
                .get((i + k * n) % corpus.len())
                .map_or(&[][..], |m| m);
            c.append(st, "INBOX", msg)?;
        }
        c.cmd(st, "logout", "LOGOUT")?;
        Ok(())
    })
}

fn login(a: Arc<Args>) -> (Stats, Duration) {
    let n = a.conns;
    run_threads(n, move |i, st| {
        let end = Instant::now() + a.duration;
        let user = user_for(&a, i);
        while Instant::now() < end {
            let t0 = Instant::now();
            let mut c = match Imap::open(&a.addr, None) {
                Ok(c) => c,
                Err(e) => {
                    st.fail("connect", &e);
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            st.ok("connect", t0.elapsed());
            if let Err(e) = c.login(st, &user, &a.password) {
                st.fail("login", &e);
                continue;
            }
            c.cmd(st, "logout", "LOGOUT")?;
        }
        Ok(())
    })
}

fn pop3(a: Arc<Args>) -> (Stats, Duration) {
    let n = a.conns;
    run_threads(n, move |i, st| {
        let mut r = connect(&a.addr, None)?;
        let user = user_for(&a, i);
        let t_all = Instant::now();
        read_line(&mut r)?;
        // One command, one status line; multi-line bodies are read by `body`.
        let cmd = |r: &mut BufReader<Stream>, st: &mut Stats, name: &'static str, c: &str| {
            let t0 = Instant::now();
            send(r, format!("{c}\r\n").as_bytes())?;
            let l = read_line(r)?;
            if l.starts_with("+OK") {
                st.ok(name, t0.elapsed());
                Ok((true, l, t0))
            } else {
                st.fail(name, &l);
                Ok::<_, String>((false, l, t0))
            }
        };
        let body = |r: &mut BufReader<Stream>| -> Res<Vec<String>> {
            let mut lines = Vec::new();
            loop {
                let l = read_line(r)?;
                if l == ".\r\n" {
                    return Ok(lines);
                }
                lines.push(l);
            }
        };
        cmd(&mut r, st, "user", &format!("USER {user}"))?;
        let (ok, l, _) = cmd(&mut r, st, "pass", &format!("PASS {}", a.password))?;
        if !ok {
            return Err(format!("login refused: {l}"));
        }
        let (_, l, _) = cmd(&mut r, st, "stat", "STAT")?;
        let count: u64 = l
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        let (ok, _, _) = cmd(&mut r, st, "uidl", "UIDL")?;
        if ok {
            body(&mut r)?;
        }
        for k in 1..=count {
            let (ok, _, t0) = cmd(&mut r, st, "retr_status", &format!("RETR {k}"))?;
            if ok {
                body(&mut r)?;
                st.ok("retr", t0.elapsed());
            }
            if a.delete {
                cmd(&mut r, st, "dele", &format!("DELE {k}"))?;
            }
        }
        cmd(&mut r, st, "quit", "QUIT")?;
        st.ok("session", t_all.elapsed());
        Ok(())
    })
}

/// Client `i`'s corpus message for `round`: clients start at different places.
fn pick(corpus: &[Vec<u8>], i: usize, round: usize) -> &[u8] {
    corpus
        .get((i * 7919 + round) % corpus.len().max(1))
        .map_or(&[][..], |m| m)
}

/// One IMAP mix client; see the module doc.
fn mix_client(a: &Args, corpus: &[Vec<u8>], i: usize, st: &mut Stats) -> Res<()> {
    let end = Instant::now() + a.duration;
    let user = user_for(a, i);
    let words = ["the", "re", "money", "list", "free", "new", "your"];
    let mut round = 0usize;
    while Instant::now() < end {
        let mut c = Imap::open(&a.addr, None)?;
        c.login(st, &user, &a.password)?;
        if round == 0 {
            // Archive may exist already (NO then); not counted.
            c.cmd(&mut Stats::default(), "create", "CREATE Archive")?;
        }
        let mut last_uid = c.select(st)?.saturating_sub(1);
        for _ in 0..10 {
            if Instant::now() >= end {
                break;
            }
            round += 1;
            let msg = pick(corpus, i, round);
            let word = words.get(round % words.len()).copied().unwrap_or("the");
            // 1. new mail arrives (APPEND), the client notices it (NOOP)
            let uid = if a.pipelining && c.literal_plus {
                let t1 = c.tag();
                let t2 = c.tag();
                let (mut b, _) = c.append_cmd(&t1, "INBOX", msg);
                b.extend_from_slice(format!("{t2} NOOP\r\n").as_bytes());
                let t0 = Instant::now();
                send(&mut c.r, &b)?;
                let r1 = c.wait(&t1)?;
                record(st, "append", t0, &r1);
                let r2 = c.wait(&t2)?;
                record(st, "noop", t0, &r2);
                appenduid(&r1.tagged)
            } else {
                let u = c.append(st, "INBOX", msg)?;
                c.cmd(st, "noop", "NOOP")?;
                u
            };
            let Some(uid) = uid else {
                st.fail("appenduid", "APPEND gave no APPENDUID");
                continue;
            };
            // 2. headers of the new mail, its body, mark read, searches
            let step2 = [
                (
                    "fetch_headers",
                    format!(
                        "UID FETCH {}:* (UID FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)",
                        last_uid + 1
                    ),
                ),
                ("fetch_body", format!("UID FETCH {uid} BODY.PEEK[]")),
                ("store", format!("UID STORE {uid} +FLAGS.SILENT (\\Seen)")),
                ("search", "UID SEARCH UNSEEN".to_string()),
                ("search_subject", format!("UID SEARCH SUBJECT \"{word}\"")),
            ];
            last_uid = uid;
            let step3: Vec<(&'static str, String)> = if round % 2 == 1 {
                vec![("move", format!("UID MOVE {uid} Archive"))]
            } else {
                vec![
                    ("copy", format!("UID COPY {uid} Archive")),
                    (
                        "store",
                        format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"),
                    ),
                    ("expunge", "EXPUNGE".to_string()),
                ]
            };
            for step in [&step2[..], &step3[..]] {
                if a.pipelining {
                    let mut b = Vec::new();
                    let mut tags = Vec::new();
                    for (name, body) in step {
                        let t = c.tag();
                        b.extend_from_slice(format!("{t} {body}\r\n").as_bytes());
                        tags.push((t, *name));
                    }
                    let t0 = Instant::now();
                    send(&mut c.r, &b)?;
                    for (t, name) in tags {
                        let rep = c.wait(&t)?;
                        record(st, name, t0, &rep);
                    }
                } else {
                    for (name, body) in step {
                        c.cmd(st, name, body)?;
                    }
                }
            }
            // 3. IDLE briefly, as a client does between checks
            let t = c.tag();
            let t0 = Instant::now();
            send(&mut c.r, format!("{t} IDLE\r\n").as_bytes())?;
            let mut cont = false;
            loop {
                let l = c.read_resp()?;
                if l.starts_with('+') {
                    cont = true;
                    break;
                }
                if l.starts_with(&format!("{t} ")) {
                    st.fail("idle", &l);
                    break;
                }
            }
            if cont {
                send(&mut c.r, b"DONE\r\n")?;
                let rep = c.wait(&t)?;
                record(st, "idle", t0, &rep);
            }
        }
        c.cmd(st, "logout", "LOGOUT")?;
    }
    Ok(())
}

/// One `fetchstore` client; see the module doc.
fn fetchstore_client(a: &Args, i: usize, st: &mut Stats) -> Res<()> {
    let mut c = Imap::open(&a.addr, None)?;
    c.login(st, &user_for(a, i), &a.password)?;
    c.select(st)?;
    let rep = c.cmd(st, "search_all", "UID SEARCH ALL")?;
    let uids: Vec<u64> = rep
        .untagged
        .iter()
        .filter_map(|l| l.strip_prefix("* SEARCH"))
        .flat_map(|l| l.split_whitespace().filter_map(|u| u.parse().ok()))
        .collect();
    if uids.is_empty() {
        return Err("INBOX is empty".into());
    }
    // xorshift64: a different sequence per client, the same on every run.
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (i as u64 + 1);
    let mut random_uid = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uids.get((x % uids.len() as u64) as usize)
            .copied()
            .unwrap_or(1)
    };
    let start = Instant::now();
    let end = start + a.duration;
    let mut stored = 1;
    let mut k = 0usize;
    while Instant::now() < end {
        let pos = if a.period > 0.0 {
            start.elapsed().as_secs_f64() % a.period
        } else {
            0.0
        };
        if a.pause_from > 0.0 && pos >= a.pause_from {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let quiet = a.fetch_only_from > 0.0 && pos >= a.fetch_only_from;
        let step = k % 4;
        k += 1;
        let (name, body) = match step {
            0 => (
                "fetch_body",
                format!("UID FETCH {} BODY.PEEK[]", random_uid()),
            ),
            1 => ("fetch_flags", format!("UID FETCH {} FLAGS", random_uid())),
            _ if quiet => continue,
            2 => {
                stored = random_uid();
                (
                    "store_add",
                    format!("UID STORE {stored} +FLAGS.SILENT (\\Seen)"),
                )
            }
            _ => (
                "store_remove",
                format!("UID STORE {stored} -FLAGS.SILENT (\\Seen)"),
            ),
        };
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let tag = c.tag();
        let t0 = Instant::now();
        send(&mut c.r, format!("{tag} {body}\r\n").as_bytes())?;
        let rep = c.wait(&tag)?;
        let took = t0.elapsed();
        if rep.ok {
            st.ok(name, took);
        } else {
            st.fail(name, &rep.tagged);
        }
        st.log.push((at, took, name));
    }
    c.cmd(st, "logout", "LOGOUT")?;
    Ok(())
}

fn fetchstore(a: Arc<Args>) -> (Stats, Duration) {
    run_threads(a.conns, move |i, st| fetchstore_client(&a, i, st))
}

fn mix(a: Arc<Args>, corpus: Arc<Vec<Vec<u8>>>) -> (Stats, Duration) {
    run_threads(a.conns, move |i, st| mix_client(&a, &corpus, i, st))
}

/// A message of about `size` bytes: the header of `base` (a corpus message) without its
/// Message-ID, a unique one, and a text body of pseudo-random words (compressible like
/// text, never the same twice, so neither dedup nor a cache hides the cost).
fn stress_message(base: &[u8], size: usize, client: usize, n: usize, seed: &mut u64) -> Vec<u8> {
    let head_end = memfind(base, b"\r\n\r\n").map_or(base.len(), |i| i + 2);
    let mut m = Vec::with_capacity(size + 200);
    let mut skip = false;
    for line in base
        .get(..head_end)
        .unwrap_or(base)
        .split_inclusive(|&b| b == b'\n')
    {
        if skip && line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            continue;
        }
        skip = line.to_ascii_lowercase().starts_with(b"message-id:");
        if !skip {
            m.extend_from_slice(line);
        }
    }
    m.extend_from_slice(
        format!("Message-ID: <{client}.{n}.{seed}@stress.loadgen>\r\n\r\n").as_bytes(),
    );
    const WORDS: [&str; 16] = [
        "mail",
        "server",
        "the",
        "of",
        "memory",
        "and",
        "arena",
        "message",
        "to",
        "a",
        "allocator",
        "in",
        "page",
        "cache",
        "is",
        "load",
    ];
    let mut col = 0;
    while m.len() < size {
        // xorshift64
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let w = WORDS.get((*seed % 16) as usize).copied().unwrap_or("x");
        m.extend_from_slice(w.as_bytes());
        col += w.len() + 1;
        if col > 70 {
            m.extend_from_slice(b"\r\n");
            col = 0;
        } else {
            m.push(b' ');
        }
    }
    m.extend_from_slice(b"\r\n");
    m
}

fn memfind(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// One stress client; see the module doc.
fn stress_client(a: &Args, corpus: &[Vec<u8>], i: usize, st: &mut Stats) -> Res<()> {
    let end = Instant::now() + a.duration;
    let user = user_for(a, i);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (i as u64 + 1).wrapping_mul(0x2545_f491);
    let mut mine: std::collections::VecDeque<u64> = std::collections::VecDeque::new();
    let mut round = 0usize;
    while Instant::now() < end {
        let mut c = Imap::open(&a.addr, None)?;
        c.login(st, &user, &a.password)?;
        c.select(st)?;
        for _ in 0..20 {
            if Instant::now() >= end {
                break;
            }
            round += 1;
            let msg = stress_message(pick(corpus, i, round), a.size, i, round, &mut seed);
            let Some(uid) = c.append(st, "INBOX", &msg)? else {
                st.fail("appenduid", "APPEND gave no APPENDUID");
                continue;
            };
            mine.push_back(uid);
            c.cmd(st, "noop", "NOOP")?;
            c.cmd(
                st,
                "fetch_headers",
                &format!("UID FETCH {uid} (UID FLAGS ENVELOPE RFC822.SIZE)"),
            )?;
            c.cmd(st, "fetch_body", &format!("UID FETCH {uid} BODY.PEEK[]"))?;
            c.cmd(
                st,
                "store",
                &format!("UID STORE {uid} +FLAGS.SILENT (\\Seen)"),
            )?;
            if mine.len() > a.keep
                && let Some(old) = mine.pop_front()
            {
                c.cmd(
                    st,
                    "store_deleted",
                    &format!("UID STORE {old} +FLAGS.SILENT (\\Deleted)"),
                )?;
                c.cmd(st, "expunge", "EXPUNGE")?;
            }
        }
        c.cmd(st, "logout", "LOGOUT")?;
    }
    Ok(())
}

fn stress(a: Arc<Args>, corpus: Arc<Vec<Vec<u8>>>) -> (Stats, Duration) {
    run_threads(a.conns, move |i, st| stress_client(&a, &corpus, i, st))
}

/// K idle connections; prints memory per connection.
fn idle(a: Arc<Args>) -> Res<()> {
    let tls = if a.tls { Some(tls_config()?) } else { None };
    // Warm-up: the first connections pay for one-time costs (argon2 on the first login,
    // allocator arenas, TLS set-up); they stay open and are not counted.
    let mut warm = Vec::new();
    let mut ws = Stats::default();
    for _ in 0..10 {
        let mut c = Imap::open(&a.addr, tls.as_ref())?;
        c.login(&mut ws, &user_for(&a, 0), &a.password)?;
        c.select(&mut ws)?;
        warm.push(c);
    }
    std::thread::sleep(Duration::from_secs(1));
    let base = sample(&a.pids);
    let threads = 8.min(a.conns);
    let opened = Arc::new(Barrier::new(threads + 1));
    let release = Arc::new(Barrier::new(threads + 1));
    let stats = Arc::new(Mutex::new(Stats::default()));
    let t_open = Instant::now();
    let mut hs = Vec::new();
    for t in 0..threads {
        let (a, tls, opened, release, stats) = (
            a.clone(),
            tls.clone(),
            opened.clone(),
            release.clone(),
            stats.clone(),
        );
        hs.push(std::thread::spawn(move || {
            let mut st = Stats::default();
            let mut held = Vec::new();
            let mine = (t..a.conns).step_by(threads);
            for _ in mine {
                let t0 = Instant::now();
                let r = (|| -> Res<Imap> {
                    let mut c = Imap::open(&a.addr, tls.as_ref())?;
                    c.login(&mut st, &user_for(&a, 0), &a.password)?;
                    c.select(&mut st)?;
                    if a.idle_cmd {
                        let tag = c.tag();
                        send(&mut c.r, format!("{tag} IDLE\r\n").as_bytes())?;
                        let l = c.read_resp()?;
                        if !l.starts_with('+') {
                            return Err(format!("IDLE: {l}"));
                        }
                    }
                    Ok(c)
                })();
                match r {
                    Ok(c) => {
                        st.ok("open", t0.elapsed());
                        held.push(c);
                    }
                    Err(e) => st.fail("open", &e),
                }
            }
            opened.wait();
            release.wait();
            if let Ok(mut s) = stats.lock() {
                s.merge(st);
            }
            drop(held);
        }));
    }
    opened.wait();
    let open_time = t_open.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let loaded = sample(&a.pids);
    std::thread::sleep(a.hold);
    release.wait();
    for h in hs {
        let _ = h.join();
    }
    let mut st = match Arc::try_unwrap(stats) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(_) => Stats::default(),
    };
    let held = st.lat.get("open").map_or(0, Vec::len);
    st.print(open_time);
    println!("connections_held: {held}");
    if let (Some(b), Some(l)) = (base, loaded) {
        println!("base_server_rss_kib: {}", b.rss_kib);
        println!("base_server_pss_kib: {}", b.pss_kib);
        print_server("", base, loaded);
        let per = |x: u64, y: u64| (x as f64 - y as f64) / held.max(1) as f64;
        println!("rss_per_conn_kib: {:.1}", per(l.rss_kib, b.rss_kib));
        println!("pss_per_conn_kib: {:.1}", per(l.pss_kib, b.pss_kib));
    }
    drop(warm);
    Ok(())
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let needs_corpus = matches!(a.workload.as_str(), "lmtp" | "mix" | "append" | "stress");
    let corpus = if needs_corpus {
        match load_corpus(&a.corpus, a.limit) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    } else {
        Arc::new(Vec::new())
    };
    println!("workload: {}", a.workload);
    if needs_corpus {
        let bytes: usize = corpus.iter().map(Vec::len).sum();
        println!("corpus_messages: {}", corpus.len());
        println!("corpus_crlf_bytes: {bytes}");
    }
    if a.workload == "idle" {
        return match idle(a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let before = sample(&a.pids);
    let (mut st, elapsed) = match a.workload.as_str() {
        "lmtp" => lmtp(a.clone(), corpus),
        "mix" => mix(a.clone(), corpus),
        "stress" => stress(a.clone(), corpus),
        "append" => append(a.clone(), corpus),
        "login" => login(a.clone()),
        "pop3" => pop3(a.clone()),
        "fetchstore" => fetchstore(a.clone()),
        w => {
            eprintln!("unknown workload {w:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let after = sample(&a.pids);
    st.print(elapsed);
    print_server("", before, after);
    if let Some(path) = &a.log
        && let Err(e) = st.write_log(path)
    {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
