#![allow(clippy::expect_used)]
//! The interpreter's cost per delivery for a 20-rule script, natively (no WebAssembly,
//! no host calls): `cargo run --release --example bench`. The cost through the server
//! (component call, host imports) is measured by the server's plugin benchmarks.

use std::rc::Rc;
use std::time::Instant;

use sieve::matching::PatternCache;
use sieve::{Envelope, Host, Limits, Message, Script};

struct Msg(Vec<(String, String)>);

impl Message for Msg {
    fn size(&self) -> u64 {
        4096
    }
    fn header(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
    fn body_text(&self) -> Option<String> {
        Some("Hello, this is the body of a plain message.\r\n".repeat(40))
    }
    fn body_raw(&self) -> String {
        String::new()
    }
}

struct NoHost;

impl Host for NoHost {
    fn include(&mut self, _: &str) -> Result<Rc<Script>, String> {
        Err("none".into())
    }
    fn duplicate(&mut self, _: &str, _: u64, _: bool) -> bool {
        false
    }
    fn mailbox_exists(&mut self, _: &str) -> bool {
        true
    }
    fn now(&self) -> i64 {
        1_700_000_000
    }
}

/// Twenty typical rules: lists by List-Id, senders, subjects, spam, size, a regex.
pub fn source() -> String {
    let mut s = String::from(
        "require [\"fileinto\", \"imap4flags\", \"variables\", \"regex\", \"spamtest\", \"relational\", \"comparator-i;ascii-numeric\", \"body\"];\n",
    );
    for i in 0..14 {
        s.push_str(&format!(
            "if header :contains \"list-id\" \"list{i}.example.org\" {{ fileinto \"Lists/l{i}\"; stop; }}\n"
        ));
    }
    s.push_str(
        "if address :domain :is \"from\" [\"spam.example\", \"junk.example\"] { discard; stop; }\n",
    );
    s.push_str("if header :matches \"subject\" \"*[SPAM]*\" { fileinto \"Junk\"; stop; }\n");
    s.push_str("if spamtest :value \"ge\" :comparator \"i;ascii-numeric\" \"6\" { fileinto :flags \"$Junk\" \"Junk\"; stop; }\n");
    s.push_str("if size :over 5M { addflag \"$Big\"; }\n");
    s.push_str("if header :regex \"subject\" \"^invoice [0-9]+$\" { fileinto \"Invoices\"; }\n");
    s.push_str("if body :contains \"unsubscribe\" { addflag \"$Newsletter\"; }\n");
    s
}

fn main() {
    let script = sieve::check(&source(), false).expect("the script compiles");
    let msg = Msg(vec![
        ("From".into(), "Alice <alice@example.net>".into()),
        ("To".into(), "bob@example.org".into()),
        ("Subject".into(), "Lunch tomorrow?".into()),
        ("X-Spam-Score".into(), "1.2".into()),
    ]);
    let env = Envelope {
        from: Some("alice@example.net".into()),
        to: "bob@example.org".into(),
        user: "bob".into(),
    };
    let mut cache = PatternCache::new(1 << 20);
    let mut times = Vec::new();
    for _ in 0..20_000 {
        let t = Instant::now();
        let o = sieve::run(
            &script,
            &msg,
            &env,
            &mut NoHost,
            Limits::default(),
            &mut cache,
        );
        times.push(t.elapsed().as_nanos() as u64);
        assert_eq!(o.targets.len(), 1);
    }
    times.sort_unstable();
    let t = Instant::now();
    for _ in 0..1000 {
        sieve::check(&source(), false).expect("compiles");
    }
    let compile = t.elapsed().as_nanos() as u64 / 1000;
    println!(
        "20-rule script, 20000 runs: median {} us, p99 {} us; compile {} us",
        times.get(times.len() / 2).copied().unwrap_or(0) as f64 / 1000.0,
        times.get(times.len() * 99 / 100).copied().unwrap_or(0) as f64 / 1000.0,
        compile as f64 / 1000.0
    );
}
