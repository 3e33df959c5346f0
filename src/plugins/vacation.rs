//! Sending Sieve vacation replies (RFC 5230) with the configured command.
//!
//! The plugin decides whether to answer (RFC 5230 §4.5, RFC 3834 §2: never to the null
//! sender, lists, bulk or automatic mail, or ourselves; once per sender per period). The
//! host checks the recipient address once more, builds the reply (Auto-Submitted:
//! auto-replied, In-Reply-To, References; RFC 3834 §3.1) and runs
//! `sieve.vacation_command` with the reply on stdin and the recipient as the last
//! argument, on its own thread (never on the reactor, never holding up the delivery),
//! killed after `sieve.vacation_timeout_secs`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::bindings::exports::sieve::VacationReply;

/// Replies being sent at once; more are dropped (and logged).
const MAX_IN_FLIGHT: usize = 16;

pub struct Sender {
    program: String,
    args: Vec<String>,
    timeout: Duration,
    hostname: String,
    in_flight: Arc<AtomicUsize>,
}

impl Sender {
    /// `None` when `sieve.vacation_command` is not set (vacation is off).
    pub fn new(config: &crate::config::Config) -> Option<Sender> {
        let command = config.sieve.vacation_command.as_deref()?;
        let mut words = command.split_whitespace().map(str::to_string);
        let program = words.next()?;
        Some(Sender {
            program,
            args: words.collect(),
            timeout: Duration::from_secs(config.sieve.vacation_timeout_secs.max(1)),
            hostname: config.hostname.clone(),
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Sends `reply` in the background. `ours` is the recipient address the message
    /// was delivered to (a reply to it would loop).
    pub fn send(&self, reply: VacationReply, ours: &str) {
        if !plain_address(&reply.to) || reply.to.eq_ignore_ascii_case(ours) {
            log::warn!("vacation: not replying to {:?}", reply.to);
            return;
        }
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            log::warn!(
                "vacation: too many replies in flight, not replying to {}",
                reply.to
            );
            return;
        }
        let message = render(&reply, &self.hostname, crate::store::now());
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .arg(&reply.to)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let timeout = self.timeout;
        let in_flight = self.in_flight.clone();
        let to = reply.to;
        let spawned = std::thread::Builder::new()
            .name("vacation".into())
            .spawn(move || {
                match run(cmd, &message, timeout) {
                    Ok(()) => log::info!("vacation: replied to {to}"),
                    Err(e) => log::warn!("vacation: reply to {to} failed: {e}"),
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            log::warn!("vacation: cannot start a thread: {e}");
        }
    }
}

/// `local@domain` with nothing a command line or a header could misread.
fn plain_address(a: &str) -> bool {
    a.contains('@')
        && !a.starts_with('-')
        && a.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'(' | b')' | b',' | b';'))
}

/// Runs the command with `input` on stdin, killing it after `timeout`.
fn run(mut cmd: Command, input: &[u8], timeout: Duration) -> Result<(), String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run the command: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that exits early closes the pipe; its status says what happened.
        let _ = stdin.write_all(input);
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(format!(
                    "{status}: {}",
                    err.lines().next().unwrap_or("").trim()
                ));
            }
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("killed after {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// One header line's value: no line breaks, RFC 2047 encoded when not ASCII.
fn header_value(v: &str) -> String {
    let v: String = v
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    if v.is_ascii() {
        v
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v.as_bytes())
        )
    }
}

/// The reply as an RFC 5322 message with CRLF line ends.
pub fn render(r: &VacationReply, hostname: &str, now: i64) -> Vec<u8> {
    let id = format!(
        "<vacation.{now}.{:016x}@{}>",
        rand::random::<u64>(),
        header_value(hostname)
    );
    let mut h = vec![
        format!("From: {}", header_value(&r.from)),
        format!("To: <{}>", header_value(&r.to)),
        format!("Subject: {}", header_value(&r.subject)),
        format!("Date: {}", crate::util::rfc5322_date(now)),
        format!("Message-ID: {id}"),
        "Auto-Submitted: auto-replied (vacation)".to_string(),
    ];
    if let Some(v) = &r.in_reply_to {
        h.push(format!("In-Reply-To: {}", header_value(v)));
    }
    if let Some(v) = &r.references {
        h.push(format!("References: {}", header_value(v)));
    }
    h.push("MIME-Version: 1.0".to_string());
    let body = r.body.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut out = h.join("\r\n");
    if r.mime {
        // The reason is a MIME entity: its own header, a blank line, its body.
        out.push_str("\r\n");
        out.push_str(&body);
    } else {
        out.push_str(
            "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        );
        out.push_str(&body);
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_headers() {
        let r = VacationReply {
            to: "alice@example.net".into(),
            from: "bob@example.org".into(),
            subject: "Auto: héllo\r\nBcc: x".into(),
            body: "Away.\nBack soon.".into(),
            mime: false,
            in_reply_to: Some("<m1@example.net>".into()),
            references: Some("<m0@example.net> <m1@example.net>".into()),
        };
        let m = String::from_utf8(render(&r, "mx.example.org", 0)).unwrap();
        assert!(m.contains("\r\nAuto-Submitted: auto-replied"));
        assert!(m.contains("\r\nIn-Reply-To: <m1@example.net>\r\n"));
        assert!(m.contains("\r\nReferences: <m0@example.net> <m1@example.net>\r\n"));
        assert!(m.contains("Subject: =?UTF-8?B?"));
        assert!(!m.contains("\r\nBcc:"));
        assert!(m.ends_with("Away.\r\nBack soon.\r\n"));
        assert!(!plain_address("-oQ/tmp@x"));
        assert!(!plain_address("a@b c"));
        assert!(plain_address("alice+x@example.net"));
    }
}
