//! Helpers shared by the black-box tests: a temp environment with a config, the real
//! `nestbox` binary started as a server on ephemeral ports, CLI runs, a raw LMTP client,
//! and an mbox reader for what `export` writes.
//!
//! Every network read has a timeout, so a hung server fails a test instead of hanging it.

#![allow(dead_code)]

pub mod netns;
pub mod raw;
pub mod tmpfs;
pub mod transcript;
pub mod wasm;

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any single read from a server may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nestbox")
}

/// The test config: no IMAP/POP3, LMTP on an ephemeral port and a Unix socket, cheap
/// argon2, a 100,000-byte size limit. Paths are relative to the config file's folder.
pub const CONFIG: &str = r#"(
    hostname: "test.example",
    data_dir: "data",
    imap: (listen: [], tls_listen: []),
    pop3: (listen: [], tls_listen: []),
    managesieve: (listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    auth: (argon2: (memory_kib: 64, iterations: 1, parallelism: 1)),
    limits: (max_message_size: 100000),
)
"#;

/// [`CONFIG`] with a plain IMAP listener on an ephemeral port.
pub const IMAP_CONFIG: &str = r#"(
    hostname: "test.example",
    data_dir: "data",
    imap: (listen: ["127.0.0.1:0"], tls_listen: ["127.0.0.1:0"]),
    pop3: (listen: [], tls_listen: []),
    managesieve: (listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    auth: (
        argon2: (memory_kib: 64, iterations: 1, parallelism: 1),
        throttle: (base_delay_ms: 10, max_delay_ms: 40),
    ),
    limits: (max_message_size: 100000),
)
"#;

/// The size limit in [`CONFIG`].
pub const MAX_SIZE: usize = 100_000;

/// A temp folder holding `config.ron` and the data dir.
pub struct Env {
    pub dir: tempfile::TempDir,
}

/// The result of one CLI run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }
}

impl Env {
    pub fn new() -> Env {
        Env::with_config(CONFIG)
    }

    pub fn with_config(config: &str) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("nbt")
            .tempdir()
            .expect("temp dir");
        fs::write(dir.path().join("config.ron"), config).expect("write config");
        Env { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.ron")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `nestbox --config <config> args...` with `stdin`, within 60 seconds.
    pub fn cli(&self, args: &[&str], stdin: &[u8]) -> Run {
        let mut child = Command::new(bin())
            .arg("--config")
            .arg(self.config())
            .args(args)
            .current_dir(self.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nestbox");
        let mut input = child.stdin.take().expect("stdin");
        let stdin = stdin.to_vec();
        let writer = thread::spawn(move || {
            // The command may exit before reading everything (e.g. on a usage error).
            let _ = input.write_all(&stdin);
        });
        let (tx, rx) = mpsc::channel();
        let pid = child.id();
        thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(out) => out.expect("wait for nestbox"),
            Err(_) => {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                panic!("nestbox {args:?} did not finish within 60 s");
            }
        };
        writer.join().expect("stdin writer");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `user add NAME` with password `pw-NAME`; panics on failure.
    pub fn add_user(&self, name: &str) {
        let pw = format!("pw-{name}\n");
        self.cli(&["user", "add", name, "--password-stdin"], pw.as_bytes())
            .expect_code(0);
    }

    /// Exports one mailbox as mbox and returns the file's bytes.
    pub fn export_mbox(&self, user: &str, mailbox: &str) -> Vec<u8> {
        let out = self.path().join(format!("export-{user}-{}.mbox", unique()));
        let out_s = out.to_str().expect("utf-8 path");
        self.cli(
            &[
                "export",
                "--user",
                user,
                "--mailbox",
                mailbox,
                "--format",
                "mbox",
                out_s,
            ],
            b"",
        )
        .expect_code(0);
        let bytes = fs::read(&out).expect("read export");
        fs::remove_file(&out).expect("remove export");
        bytes
    }

    /// The messages of one mailbox, as exported (LF line ends, trace headers included).
    pub fn messages(&self, user: &str, mailbox: &str) -> Vec<Vec<u8>> {
        parse_mbox(&self.export_mbox(user, mailbox))
    }

    /// The `store: N blobs` number from `stats`.
    pub fn blob_count(&self) -> u64 {
        let run = self.cli(&["stats"], b"");
        run.expect_code(0);
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("store: "))
            .unwrap_or_else(|| panic!("no store line in stats: {}", run.stdout));
        line["store: ".len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad store line: {line}"))
    }
}

/// A number unique within this process, for file names and message bodies.
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A running `nestbox serve`. Sends SIGTERM on drop (SIGKILL if it does not stop).
pub struct Server {
    child: Option<Child>,
    /// The TCP LMTP listener.
    pub lmtp: SocketAddr,
    /// The LMTP Unix socket.
    pub lmtp_unix: PathBuf,
    /// The first plain IMAP listener, when the config has one.
    pub imap: Option<SocketAddr>,
    /// The first implicit-TLS IMAP listener, when the config has one.
    pub imaps: Option<SocketAddr>,
    /// Where the server's stderr goes.
    pub log: PathBuf,
    /// Every `listening <proto> <addr>` line, as (proto, addr).
    pub listening: Vec<(String, String)>,
    /// The `tls fingerprint SHA256:…` the server printed, without the prefix.
    pub tls_fingerprint: Option<String>,
}

impl Server {
    /// Starts `serve` on `env` and waits for `ready`.
    pub fn start(env: &Env) -> Server {
        Server::try_start(env).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `serve`; `Err` describes why it did not become ready (with its log).
    pub fn try_start(env: &Env) -> Result<Server, String> {
        let log = env.path().join(format!("server-{}.log", unique()));
        let mut child = Command::new(bin())
            .arg("--config")
            .arg(env.config())
            .arg("serve")
            .current_dir(env.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("server log"))
            .spawn()
            .expect("spawn nestbox serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + IO_TIMEOUT;
        let (mut lmtp, mut lmtp_unix, mut imap, mut imaps, mut tls_fingerprint) =
            (None, None, None, None, None);
        let mut seen = Vec::new();
        let mut listening = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some((proto, addr)) = line
                        .strip_prefix("listening ")
                        .and_then(|l| l.split_once(' '))
                    {
                        listening.push((proto.to_string(), addr.to_string()));
                    }
                    if let Some(addr) = line.strip_prefix("listening lmtp ") {
                        lmtp = Some(addr.parse().expect("lmtp address"));
                    } else if let Some(path) = line.strip_prefix("listening lmtp-unix ") {
                        lmtp_unix = Some(env.path().join(path));
                    } else if let Some(addr) = line.strip_prefix("listening imap ") {
                        imap = imap.or(Some(addr.parse().expect("imap address")));
                    } else if let Some(addr) = line.strip_prefix("listening imaps ") {
                        imaps = imaps.or(Some(addr.parse().expect("imaps address")));
                    } else if let Some(fp) = line.strip_prefix("tls fingerprint ") {
                        tls_fingerprint = Some(fp.to_string());
                    } else if line == "ready" {
                        break;
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    return Err(format!(
                        "server not ready (exit {status:?}); stdout {seen:?}; log:\n{}",
                        fs::read_to_string(&log).unwrap_or_default()
                    ));
                }
            }
        }
        Ok(Server {
            child: Some(child),
            lmtp: lmtp.ok_or("no `listening lmtp` line")?,
            lmtp_unix: lmtp_unix.ok_or("no `listening lmtp-unix` line")?,
            imap,
            imaps,
            log,
            listening,
            tls_fingerprint,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, then reap.
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill -9");
        child.wait().expect("wait");
    }

    /// SIGTERM, then wait up to 20 s for a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        self.terminate().expect("server did not stop on SIGTERM")
    }

    fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + IO_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The address of the first `listening <proto>` line.
    pub fn addr(&self, proto: &str) -> SocketAddr {
        self.listening
            .iter()
            .find(|(p, _)| p == proto)
            .unwrap_or_else(|| panic!("no `listening {proto}` line"))
            .1
            .parse()
            .expect("listener address")
    }

    /// The listener of `proto` bound to `host` (when a config lists several addresses).
    pub fn listener(&self, proto: &str, host: &str) -> SocketAddr {
        self.listening
            .iter()
            .filter(|(p, _)| p == proto)
            .filter_map(|(_, a)| a.parse::<SocketAddr>().ok())
            .find(|a| a.ip().to_string() == host)
            .unwrap_or_else(|| panic!("no {proto} listener on {host}: {:?}", self.listening))
    }

    /// A raw LMTP connection to the TCP listener, greeting read.
    pub fn connect(&self) -> Lmtp {
        let mut c = Lmtp::tcp(self.lmtp);
        let greeting = c.reply();
        assert_eq!(greeting.code, 220, "greeting: {greeting:?}");
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A byte stream to an LMTP server.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One server reply: the code and each line's text after `NNN-` / `NNN `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The first line's text (after the code), e.g. `5.1.1 no such user`.
    pub fn text(&self) -> &str {
        self.lines.first().map(String::as_str).unwrap_or("")
    }

    /// The enhanced status code at the start of the first line, e.g. `5.1.1`.
    pub fn enhanced(&self) -> &str {
        self.text().split(' ').next().unwrap_or("")
    }
}

/// A raw LMTP client with read timeouts.
pub struct Lmtp {
    stream: BufReader<Box<dyn Stream>>,
}

impl Lmtp {
    pub fn tcp(addr: SocketAddr) -> Lmtp {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect LMTP");
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        Lmtp {
            stream: BufReader::new(Box::new(s)),
        }
    }

    /// A client over any stream (e.g. TLS after STARTTLS); nothing is read yet.
    pub fn wrap(stream: impl Stream + 'static) -> Lmtp {
        Lmtp {
            stream: BufReader::new(Box::new(stream)),
        }
    }

    pub fn unix(path: &Path) -> Lmtp {
        let s = UnixStream::connect(path).expect("connect LMTP Unix socket");
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        Lmtp {
            stream: BufReader::new(Box::new(s)),
        }
    }

    /// Writes raw bytes in one write.
    pub fn send(&mut self, bytes: &[u8]) {
        let s = self.stream.get_mut();
        s.write_all(bytes).expect("write to LMTP server");
        s.flush().expect("flush");
    }

    /// Like [`Lmtp::send`], but reports errors (the server may be gone).
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let s = self.stream.get_mut();
        s.write_all(bytes)?;
        s.flush()
    }

    /// Reads one (possibly multi-line) reply; panics on timeout, EOF or bad syntax.
    #[track_caller]
    pub fn reply(&mut self) -> Reply {
        self.try_reply()
            .unwrap_or_else(|e| panic!("reading reply: {e}"))
    }

    /// Reads one reply; `Err` on EOF, timeout or a malformed line.
    pub fn try_reply(&mut self) -> io::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed after {lines:?}"),
                ));
            }
            let line = line
                .strip_suffix("\r\n")
                .ok_or_else(|| bad(format!("reply line without CRLF: {line:?}")))?;
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| bad(format!("reply line without code: {line:?}")))?;
            let sep = line.as_bytes().get(3).copied();
            lines.push(line.get(4..).unwrap_or("").to_owned());
            match sep {
                Some(b'-') => continue,
                Some(b' ') | None => return Ok(Reply { code, lines }),
                Some(_) => return Err(bad(format!("bad reply separator: {line:?}"))),
            }
        }
    }

    /// Sends one command line (CRLF added) and reads its reply.
    #[track_caller]
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Whether the server has closed the connection (reads EOF within the timeout).
    pub fn at_eof(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(self.stream.read(&mut buf), Ok(0))
    }

    /// LHLO, MAIL, RCPTs, DATA and the message (dot-stuffed here, `body` must use CRLF);
    /// returns the RCPT replies and the replies after the final dot (one per accepted
    /// recipient). Panics on anything unexpected before the data.
    #[track_caller]
    pub fn transaction(
        &mut self,
        from: &str,
        rcpts: &[&str],
        body: &[u8],
    ) -> (Vec<Reply>, Vec<Reply>) {
        let lhlo = self.cmd("LHLO client.test");
        assert_eq!(lhlo.code, 250, "{lhlo:?}");
        let mail = self.cmd(&format!("MAIL FROM:<{from}>"));
        assert_eq!(mail.code, 250, "{mail:?}");
        let rcpt: Vec<Reply> = rcpts
            .iter()
            .map(|r| self.cmd(&format!("RCPT TO:<{r}>")))
            .collect();
        let accepted = rcpt.iter().filter(|r| r.code == 250).count();
        let data = self.cmd("DATA");
        if accepted == 0 {
            assert_eq!(data.code, 503, "{data:?}");
            return (rcpt, Vec::new());
        }
        assert_eq!(data.code, 354, "{data:?}");
        self.send(&data_block(body));
        let after = (0..accepted).map(|_| self.reply()).collect();
        (rcpt, after)
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// `body` (CRLF line ends) dot-stuffed and terminated with `.CRLF` (a CRLF is added
/// first when `body` does not end in one).
pub fn data_block(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    let mut line_start = true;
    for &b in body {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// CRLF -> LF, as `export` writes messages.
pub fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Splits an mbox file in the form `export` writes (From_ line, message, one empty line;
/// mboxrd quoting) into messages, each unquoted and without its From_ line and separator.
/// Panics when the file is not in that form.
pub fn parse_mbox(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut prev_empty = true;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        assert!(line.ends_with(b"\n"), "mbox without a final newline");
        if prev_empty && line.starts_with(b"From ") {
            if let Some(last) = messages.last_mut() {
                assert!(last.ends_with(b"\n\n"), "message without separator line");
                last.pop();
            }
            messages.push(Vec::new());
            prev_empty = false;
            continue;
        }
        let msg = messages
            .last_mut()
            .unwrap_or_else(|| panic!("mbox does not start with a From_ line"));
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            msg.extend_from_slice(&line[1..]);
        } else {
            assert!(!line.starts_with(b"From "), "unquoted From_ line in a body");
            msg.extend_from_slice(line);
        }
        prev_empty = line == b"\n";
    }
    if let Some(last) = messages.last_mut() {
        assert!(
            last.ends_with(b"\n\n"),
            "last message without separator line"
        );
        last.pop();
    }
    messages
}

/// The trace headers LMTP/deliver add at the top of a copy, parsed off an exported (LF)
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub return_path: Option<String>,
    pub delivered_to: String,
    /// The Received header, continuation lines joined with `\n`.
    pub received: String,
}

/// Splits an exported message into its trace headers and the original message. Panics
/// when the trace is not there in the documented order.
#[track_caller]
pub fn strip_trace(msg: &[u8]) -> (Trace, Vec<u8>) {
    let mut rest = msg;
    let take_line = |rest: &mut &[u8]| -> String {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .expect("line end in trace");
        let line = String::from_utf8_lossy(&rest[..end]).into_owned();
        *rest = &rest[end + 1..];
        line
    };
    let mut line = take_line(&mut rest);
    let return_path = match line.strip_prefix("Return-Path: ") {
        Some(rp) => {
            let rp = rp.to_owned();
            line = take_line(&mut rest);
            Some(rp)
        }
        None => None,
    };
    let delivered_to = line
        .strip_prefix("Delivered-To: ")
        .unwrap_or_else(|| panic!("no Delivered-To: {line:?}"))
        .to_owned();
    let mut received = take_line(&mut rest);
    assert!(
        received.starts_with("Received: "),
        "no Received: {received:?}"
    );
    while rest.starts_with(b"\t") || rest.starts_with(b" ") {
        received.push('\n');
        received.push_str(&take_line(&mut rest));
    }
    (
        Trace {
            return_path,
            delivered_to,
            received,
        },
        rest.to_vec(),
    )
}

/// The original messages in a mailbox: exported, trace stripped (LF line ends).
pub fn bodies(env: &Env, user: &str, mailbox: &str) -> Vec<Vec<u8>> {
    env.messages(user, mailbox)
        .iter()
        .map(|m| strip_trace(m).1)
        .collect()
}

/// What a message sent with CRLF looks like after export (LF, final newline).
pub fn as_exported(sent_crlf: &[u8]) -> Vec<u8> {
    let mut lf = crlf_to_lf(sent_crlf);
    if !lf.is_empty() && !lf.ends_with(b"\n") {
        lf.push(b'\n');
    }
    lf
}

/// Runs `python3` with `args`; panics with install advice when it is missing.
pub fn python3(args: &[&str]) -> Run {
    let out = Command::new("python3")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is needed as an independent LMTP client ({e}); install python3")
        });
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Shows bytes readably in assertion messages.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A line-oriented IMAP or POP3 client whose IMAP replies fold literals (`{N}` then N
/// bytes) into the line that announced them, so one response is one string.
pub struct LineClient {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl LineClient {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr) -> LineClient {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        let mut c = LineClient {
            w: s.try_clone().expect("clone"),
            r: BufReader::new(s),
        };
        let greeting = c.line();
        assert!(
            greeting.starts_with("* OK") || greeting.starts_with("+OK"),
            "{greeting}"
        );
        c
    }

    /// IMAP: connects and logs in as `user` with password `pw-USER`.
    pub fn imap_login(addr: SocketAddr, user: &str) -> LineClient {
        let mut c = LineClient::connect(addr);
        let r = c.cmd("l", &format!("LOGIN {user} pw-{user}"));
        assert!(r.last().expect("reply").starts_with("l OK"), "{r:?}");
        c
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).expect("write");
    }

    /// One line without its CRLF, with any literals it announces folded in.
    pub fn line(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = self.r.read_until(b'\n', &mut buf).expect("read");
            assert!(n > 0, "connection closed");
            while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                buf.pop();
            }
            let literal = buf
                .strip_suffix(b"}")
                .and_then(|b| b.iter().rposition(|c| *c == b'{').map(|at| &b[at + 1..]))
                .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok());
            out.extend_from_slice(&buf);
            match literal {
                Some(len) => {
                    let mut lit = vec![0u8; len];
                    self.r.read_exact(&mut lit).expect("literal");
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&lit);
                }
                None => return String::from_utf8_lossy(&out).into_owned(),
            }
        }
    }

    /// IMAP: sends `TAG TEXT` and returns every response up to the tagged one.
    pub fn cmd(&mut self, tag: &str, text: &str) -> Vec<String> {
        self.send(format!("{tag} {text}\r\n").as_bytes());
        let mut out = Vec::new();
        loop {
            let l = self.line();
            let done = l.starts_with(&format!("{tag} "));
            out.push(l);
            if done {
                return out;
            }
        }
    }

    /// POP3: one command and its first line.
    pub fn pop(&mut self, text: &str) -> String {
        self.send(format!("{text}\r\n").as_bytes());
        let mut buf = String::new();
        self.r.read_line(&mut buf).expect("read");
        buf.trim_end().to_string()
    }

    /// POP3: the lines of a multi-line reply after its first line, up to the final `.`.
    pub fn pop_rest(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let mut buf = String::new();
            self.r.read_line(&mut buf).expect("read");
            let l = buf.trim_end().to_string();
            if l == "." {
                return out;
            }
            out.push(l);
        }
    }
}
