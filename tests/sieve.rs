//! Sieve through the real server: the `plugins/sieve` component (built here for
//! wasm32-wasip2) runs each recipient's active script, installed with `nestbox sieve`,
//! on LMTP deliveries: fileinto, imap4flags (seen with IMAP FETCH FLAGS), reject (LMTP
//! 550 5.7.1), discard, and the fail-open policy for scripts that hit a limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg(feature = "plugins")]

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Env, Server, python3};

/// The Sieve component, built once per test run.
fn sieve_wasm() -> &'static PathBuf {
    static W: OnceLock<PathBuf> = OnceLock::new();
    W.get_or_init(|| {
        common::wasm::build("plugins/sieve/Cargo.toml");
        common::wasm::release_dir().join("sieve.wasm")
    })
}

fn config(settings: &str) -> String {
    format!(
        r#"(
    hostname: "test.example",
    data_dir: "data",
    imap: (listen: ["127.0.0.1:0"], tls_listen: []),
    pop3: (listen: [], tls_listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    managesieve: (listen: []),
    auth: (argon2: (memory_kib: 64, iterations: 1, parallelism: 1)),
    plugins: [(name: "sieve", path: {:?}, hooks: [Sieve], memory_mib: Some(32),
               settings: {{{settings}}})],
)
"#,
        sieve_wasm().to_str().unwrap()
    )
}

fn install(env: &Env, user: &str, name: &str, script: &str, activate: bool) {
    let file = env.path().join(format!("{user}-{name}.sieve"));
    std::fs::write(&file, script).unwrap();
    env.cli(&["sieve", "put", user, name, file.to_str().unwrap()], b"")
        .expect_code(0);
    if activate {
        env.cli(&["sieve", "activate", user, name], b"")
            .expect_code(0);
    }
}

fn msg(headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: s@example.org\r\nTo: alice@test.example\r\nDate: Tue, 23 Jun 2009 10:12:34 +0200\r\nMessage-ID: <{}@test>\r\n{headers}\r\n\r\n{body}\r\n",
        common::unique()
    )
    .into_bytes()
}

fn wait_for_log(server: &Server, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const MAIN: &str = r#"require ["fileinto", "reject", "ereject", "envelope", "encoded-character",
    "imap4flags", "body", "variables", "relational", "comparator-i;ascii-numeric",
    "subaddress", "copy", "mailbox", "regex", "date", "index", "spamtest", "virustest",
    "include", "duplicate"];
# reject / ereject (RFC 5429)
if header :contains "subject" "[reject]" { reject "Not wanted${hex: 21}"; stop; }
if header :contains "subject" "[ereject]" { ereject "Go away"; stop; }
if header :contains "subject" "[drop]" { discard; stop; }
# spamtest (RFC 5235) from X-Spam-Score, virustest from X-Virus-Status
if spamtest :value "ge" :comparator "i;ascii-numeric" "8" { fileinto :flags "$Junk" "Junk"; stop; }
if virustest :value "eq" :comparator "i;ascii-numeric" "5" { discard; stop; }
# duplicate (RFC 7352) on a header
if duplicate :header "x-dup" :seconds 3600 { discard; stop; }
# subaddress + envelope + mailbox :create
if envelope :detail "to" "lists" { fileinto :create "Lists"; }
# regex + variables: file by the [tag] of the subject
if header :regex "subject" "^\\[([a-z]+)\\]" { set :upperfirst "tag" "${1}"; fileinto "Tags/${tag}"; }
# body + imap4flags for the implicit keep
if body :text :contains "flag me" { addflag ["\\Flagged", "$Important"]; }
# copy + mailboxexists + relational count + index
if allof (header :count "ge" :comparator "i;ascii-numeric" "x-copy" "2",
          header :index 2 :is "x-copy" "second", mailboxexists "INBOX") {
    fileinto :copy "Copies";
}
# date (RFC 5260)
if date :value "ge" :originalzone "date" "year" "2009" { addflag "$Y2009"; }
if currentdate :value "lt" "year" "2000" { discard; }
include :personal :optional "extra";
"#;

const EXTRA: &str = r#"require ["fileinto", "imap4flags"];
if header :is "x-extra" "1" { fileinto :flags "\\Seen" "Extra"; }
"#;

#[test]
fn scripts_decide_lmtp_delivery() {
    let env = Env::with_config(&config(""));
    env.add_user("alice");
    env.add_user("bob");
    let server = Server::start(&env);
    install(&env, "alice", "extra", EXTRA, false);
    install(&env, "alice", "main", MAIN, true);
    let mut c = server.connect();
    let mut send = |to: &str, m: Vec<u8>| {
        let (rcpt, after) = c.transaction("s@example.org", &[to], &m);
        assert_eq!(rcpt[0].code, 250, "{rcpt:?}");
        after.into_iter().next().unwrap()
    };
    let a = "alice@test.example";
    // reject -> LMTP 550 5.7.1 with the script's text (encoded-character decoded).
    let r = send(a, msg("Subject: [reject] x", "b"));
    assert_eq!((r.code, r.enhanced()), (550, "5.7.1"), "{r:?}");
    assert!(r.text().contains("Not wanted!"), "{r:?}");
    let r = send(a, msg("Subject: [ereject] x", "b"));
    assert_eq!(r.code, 550, "{r:?}");
    // discard: acknowledged, stored nowhere.
    assert_eq!(send(a, msg("Subject: [drop] x", "b")).code, 250);
    assert_eq!(send(a, msg("X-Virus-Status: Infected", "b")).code, 250);
    // spamtest -> Junk with $Junk.
    assert_eq!(send(a, msg("X-Spam-Score: 9.5", "b")).code, 250);
    // duplicate: the second with the same X-Dup is dropped.
    assert_eq!(send(a, msg("X-Dup: 42\r\nSubject: dup", "b")).code, 250);
    assert_eq!(send(a, msg("X-Dup: 42\r\nSubject: dup", "b")).code, 250);
    // subaddress + :create; regex + variables; several fileinto -> several copies.
    assert_eq!(
        send(
            "alice+lists@test.example",
            msg("Subject: [rust] release", "b")
        )
        .code,
        250
    );
    // body + imap4flags on the implicit keep; :copy keeps it too; include :personal.
    assert_eq!(
        send(
            a,
            msg(
                "Subject: plain\r\nX-Copy: first\r\nX-Copy: second",
                "please flag me"
            )
        )
        .code,
        250
    );
    assert_eq!(send(a, msg("Subject: inc\r\nX-Extra: 1", "b")).code, 250);
    // bob has no script: INBOX.
    assert_eq!(
        send("bob@test.example", msg("Subject: [reject] x", "b")).code,
        250
    );

    let n = |user: &str, mbox: &str| env.messages(user, mbox).len();
    assert_eq!(n("alice", "Junk"), 1);
    assert_eq!(n("alice", "Lists"), 1);
    assert_eq!(n("alice", "Tags/Rust"), 1);
    assert_eq!(n("alice", "Copies"), 1);
    assert_eq!(n("alice", "Extra"), 1);
    // INBOX: the first "dup", "plain" (kept besides Copies).
    assert_eq!(n("alice", "INBOX"), 2);
    assert_eq!(n("bob", "INBOX"), 1);

    // The flags as IMAP shows them.
    let addr = server.imap.unwrap();
    let script = format!(
        r#"import imaplib
M = imaplib.IMAP4("{}", {})
M.login("alice", "pw-alice")
def flags(box):
    typ, _ = M.select(box)
    assert typ == "OK", box
    typ, data = M.fetch("1:*", "(FLAGS)")
    return [d.decode() for d in data if d]
print("JUNK", flags("Junk"))
print("INBOX", flags("INBOX"))
print("EXTRA", flags("Extra"))
M.logout()
"#,
        addr.ip(),
        addr.port()
    );
    let out = python3(&["-c", &script]);
    let text = out.stdout.clone();
    assert_eq!(out.code, 0, "{text}\n{}", out.stderr);
    let line = |p: &str| {
        text.lines()
            .find(|l| l.starts_with(p))
            .unwrap_or("")
            .to_string()
    };
    assert!(line("JUNK").contains("$Junk"), "{text}");
    let inbox = line("INBOX");
    assert!(
        inbox.contains("\\\\Flagged") && inbox.contains("$Important") && inbox.contains("$Y2009"),
        "{text}"
    );
    assert!(line("EXTRA").contains("\\\\Seen"), "{text}");
    server.stop();
}

#[test]
fn runaway_scripts_fail_open_to_inbox() {
    // Variables may grow without bound here, so the memory cap is what stops them.
    let env = Env::with_config(&config(r#""max_variable_bytes": "2000000000""#));
    env.add_user("alice");
    env.add_user("bob");
    env.add_user("carol");
    let server = Server::start(&env);
    let mut bomb =
        String::from("require [\"variables\", \"fileinto\"];\nset \"a\" \"0123456789abcdef\";\n");
    for _ in 0..40 {
        bomb.push_str("set \"a\" \"${a}${a}\";\n");
    }
    bomb.push_str("fileinto \"Never\";\n");
    install(&env, "alice", "bomb", &bomb, true);
    // A regex too big to compile (only known at run time: it is in a variable).
    install(
        &env,
        "bob",
        "re",
        "require [\"regex\", \"variables\", \"fileinto\"];\nset \"p\" \"(a{1000}){1000}\";\nif header :regex \"subject\" \"${p}\" { fileinto \"Never\"; }\nfileinto \"Never\";\n",
        true,
    );
    // Includes nested deeper than the interpreter allows.
    for i in 0..20 {
        install(
            &env,
            "carol",
            &format!("s{i}"),
            &format!("require [\"include\"]; include :personal \"s{}\";", i + 1),
            i == 0,
        );
    }
    let mut c = server.connect();
    for user in ["alice", "bob", "carol"] {
        let (rcpt, after) = c.transaction(
            "s@example.org",
            &[&format!("{user}@test.example")],
            &msg("Subject: x", "b"),
        );
        assert_eq!(rcpt[0].code, 250);
        assert_eq!(after[0].code, 250, "{user}: {after:?}");
        assert_eq!(env.messages(user, "INBOX").len(), 1, "{user}");
    }
    wait_for_log(&server, "filter failed, delivering as if accepted");
    wait_for_log(&server, "regular expression");
    wait_for_log(&server, "nested deeper");
    server.stop();
}
