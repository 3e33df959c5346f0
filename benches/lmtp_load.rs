//! LMTP load generator: an independent client (std `TcpStream` only, no nestbox code).
//!
//! Usage (through cargo, which appends `--bench`, ignored here):
//!
//! ```text
//! cargo bench --bench lmtp_load -- HOST:PORT [CONNS] [DIR] [RCPTS] [LIMIT] [--no-pipelining]
//! ```
//!
//! * `HOST:PORT` the LMTP listener (required)
//! * `CONNS`     number of concurrent connections (default 1)
//! * `DIR`       a directory of message files, one RFC 5322 message each
//!   (default `../shared/corpus/spamassassin-dev` relative to the repository root)
//! * `RCPTS`     comma-separated recipients, user names or addresses (default `bench`)
//! * `LIMIT`     use at most this many messages (default: all)
//!
//! The files (sorted by name) are dealt round-robin to `CONNS` connections. Each connection
//! sends LHLO once, then per message MAIL FROM, RCPT TO (one per recipient), DATA and the
//! body with LF converted to CRLF and dot-stuffed (RFC 5321 §4.5.2). When the server
//! advertises PIPELINING (RFC 2920) MAIL, RCPT and DATA go out in one write, as Postfix
//! does; `--no-pipelining` sends them one at a time. Latency is measured from sending
//! MAIL to receiving the last per-recipient reply after the final dot (RFC 2033 §4.2).
//! Every reply other than the 354 must be 2xx (the post-DATA ones 250); anything else
//! counts as an error for that message.
//!
//! Output: one `key: value` per line, easy to grep from a script.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    addr: String,
    conns: usize,
    dir: PathBuf,
    rcpts: Vec<String>,
    limit: Option<usize>,
    pipelining: bool,
}

fn usage() -> String {
    "usage: lmtp_load HOST:PORT [CONNS] [DIR] [RCPTS] [LIMIT] [--no-pipelining]".to_string()
}

fn parse_args() -> Result<Args, String> {
    let mut pipelining = true;
    let mut pos = Vec::new();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--bench" => {} // added by `cargo bench`
            "--no-pipelining" => pipelining = false,
            "-h" | "--help" => return Err(usage()),
            _ => pos.push(a),
        }
    }
    let mut it = pos.into_iter();
    let addr = it.next().ok_or_else(usage)?;
    let conns = match it.next() {
        Some(c) => c
            .parse()
            .map_err(|_| format!("bad CONNS {c:?}\n{}", usage()))?,
        None => 1,
    };
    if conns == 0 {
        return Err("CONNS must be at least 1".into());
    }
    let dir = match it.next() {
        Some(d) if d != "-" => PathBuf::from(d),
        _ => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let d = root.join("../shared/corpus/spamassassin-dev");
            if !d.is_dir() {
                return Err(format!(
                    "no DIR given and the default corpus {} does not exist",
                    d.display()
                ));
            }
            d
        }
    };
    let rcpts = match it.next() {
        Some(r) if r != "-" => r.split(',').map(str::to_string).collect(),
        _ => vec!["bench".to_string()],
    };
    let limit = match it.next() {
        Some(l) => Some(l.parse().map_err(|_| format!("bad LIMIT {l:?}"))?),
        None => None,
    };
    Ok(Args {
        addr,
        conns,
        dir,
        rcpts,
        limit,
        pipelining,
    })
}

/// LF (or CRLF) lines to CRLF, dot-stuffed, terminated by `.\r\n`.
fn encode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20 + 8);
    let mut at_line_start = true;
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        match b {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
                at_line_start = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            _ => {
                out.push(b);
                at_line_start = false;
            }
        }
        i += 1;
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Reads one (possibly multi-line) reply; returns its code and the last line.
fn read_reply(r: &mut BufReader<TcpStream>) -> std::io::Result<(u16, String)> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .unwrap_or(0);
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, line.trim_end().to_string()));
        }
    }
}

#[derive(Default)]
struct ConnResult {
    latencies: Vec<Duration>,
    ok: usize,
    errors: usize,
    bytes: u64,
    first_error: Option<String>,
}

fn run_conn(addr: &str, msgs: &[Vec<u8>], rcpts: &[String], pipelining: bool) -> ConnResult {
    let mut res = ConnResult::default();
    let fail_all = |res: &mut ConnResult, why: String| {
        res.errors += msgs.len() - res.ok - res.errors;
        res.first_error.get_or_insert(why);
    };
    let stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => {
            fail_all(&mut res, format!("connect: {e}"));
            return res;
        }
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let mut w = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            fail_all(&mut res, format!("clone: {e}"));
            return res;
        }
    };
    let mut r = BufReader::new(stream);
    let greet = (|| -> std::io::Result<bool> {
        let (code, _) = read_reply(&mut r)?;
        if code != 220 {
            return Ok(false);
        }
        w.write_all(b"LHLO bench.client\r\n")?;
        let mut pipe = false;
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Ok(false);
            }
            if line
                .get(4..)
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("PIPELINING"))
            {
                pipe = true;
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(line.starts_with("250") && pipe);
            }
        }
    })();
    let pipelining = match greet {
        Ok(p) => p && pipelining,
        Err(e) => {
            fail_all(&mut res, format!("greeting/LHLO: {e}"));
            return res;
        }
    };
    let mut envelope = Vec::new();
    envelope.extend_from_slice(b"MAIL FROM:<bench@load.test>\r\n");
    for rc in rcpts {
        let addr = if rc.contains('@') {
            rc.clone()
        } else {
            format!("{rc}@localhost")
        };
        envelope.extend_from_slice(format!("RCPT TO:<{addr}>\r\n").as_bytes());
    }
    envelope.extend_from_slice(b"DATA\r\n");
    let cmds: Vec<&[u8]> = envelope.split_inclusive(|&b| b == b'\n').collect();

    for body in msgs {
        let start = Instant::now();
        let one = (|| -> std::io::Result<Result<(), String>> {
            let mut bad: Option<String> = None;
            fn note(bad: &mut Option<String>, code: u16, line: &str, want: u16) {
                if code != want && bad.is_none() {
                    *bad = Some(line.to_string());
                }
            }
            if pipelining {
                w.write_all(&envelope)?;
                for (i, _) in cmds.iter().enumerate() {
                    let (code, line) = read_reply(&mut r)?;
                    note(
                        &mut bad,
                        code,
                        &line,
                        if i + 1 == cmds.len() { 354 } else { 250 },
                    );
                }
            } else {
                for (i, c) in cmds.iter().enumerate() {
                    w.write_all(c)?;
                    let (code, line) = read_reply(&mut r)?;
                    note(
                        &mut bad,
                        code,
                        &line,
                        if i + 1 == cmds.len() { 354 } else { 250 },
                    );
                }
            }
            if bad.is_some() {
                // DATA was refused (or a command failed): reset and move on.
                w.write_all(b"RSET\r\n")?;
                read_reply(&mut r)?;
                return Ok(Err(bad.unwrap_or_default()));
            }
            w.write_all(body)?;
            for _ in rcpts {
                let (code, line) = read_reply(&mut r)?;
                note(&mut bad, code, &line, 250);
            }
            Ok(match bad {
                Some(b) => Err(b),
                None => Ok(()),
            })
        })();
        match one {
            Ok(Ok(())) => {
                res.latencies.push(start.elapsed());
                res.ok += 1;
                res.bytes += body.len() as u64;
            }
            Ok(Err(line)) => {
                res.errors += 1;
                res.first_error.get_or_insert(line);
            }
            Err(e) => {
                fail_all(&mut res, format!("i/o: {e}"));
                return res;
            }
        }
    }
    let _ = w.write_all(b"QUIT\r\n");
    let _ = read_reply(&mut r);
    res
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&args.dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(e) => {
            eprintln!("cannot read {}: {e}", args.dir.display());
            return ExitCode::from(2);
        }
    };
    files.sort();
    if let Some(l) = args.limit {
        files.truncate(l);
    }
    if files.is_empty() {
        eprintln!("no message files in {}", args.dir.display());
        return ExitCode::from(2);
    }
    // Read and encode everything before the clock starts.
    let mut per_conn: Vec<Vec<Vec<u8>>> = vec![Vec::new(); args.conns];
    let mut raw_crlf: u64 = 0;
    for (i, f) in files.iter().enumerate() {
        let raw = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("cannot read {}: {e}", f.display());
                return ExitCode::from(2);
            }
        };
        let enc = encode(&raw);
        // Bytes of the message itself in CRLF form: without dot-stuffing and final ".\r\n".
        raw_crlf += crlf_len(&raw);
        per_conn[i % args.conns].push(enc);
    }
    let total = files.len();

    let start = Instant::now();
    let results: Vec<ConnResult> = std::thread::scope(|s| {
        let handles: Vec<_> = per_conn
            .iter()
            .map(|msgs| {
                let (addr, rcpts, p) = (&args.addr, &args.rcpts, args.pipelining);
                s.spawn(move || run_conn(addr, msgs, rcpts, p))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let elapsed = start.elapsed();

    let mut lat: Vec<Duration> = results
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    lat.sort();
    let ok: usize = results.iter().map(|r| r.ok).sum();
    let errors: usize = results.iter().map(|r| r.errors).sum();
    let wire: u64 = results.iter().map(|r| r.bytes).sum();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("server: {}", args.addr);
    println!("connections: {}", args.conns);
    println!("pipelining: {}", args.pipelining);
    println!("recipients: {}", args.rcpts.join(","));
    println!("messages: {total}");
    println!("delivered: {ok}");
    println!("errors: {errors}");
    println!("elapsed_s: {:.3}", elapsed.as_secs_f64());
    println!("msgs_per_s: {:.1}", ok as f64 / elapsed.as_secs_f64());
    println!("latency_p50_ms: {:.2}", ms(percentile(&lat, 0.50)));
    println!("latency_p99_ms: {:.2}", ms(percentile(&lat, 0.99)));
    println!(
        "latency_max_ms: {:.2}",
        ms(lat.last().copied().unwrap_or_default())
    );
    println!("raw_crlf_bytes: {raw_crlf}");
    println!("wire_data_bytes: {wire}");
    for (i, r) in results.iter().enumerate() {
        if let Some(e) = &r.first_error {
            println!("first_error_conn{i}: {e}");
        }
    }
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Length of the message with every bare LF counted as CRLF (what an IMAP client sees).
fn crlf_len(raw: &[u8]) -> u64 {
    let mut n = raw.len() as u64;
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            n += 1;
        }
        prev = b;
    }
    if raw.last().is_some_and(|&b| b != b'\n') {
        n += 2;
    }
    n
}
