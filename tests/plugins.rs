//! WebAssembly plugins against the real binary: the example Rust filters (built here for
//! wasm32-wasip2) through LMTP deliveries and IMAP APPEND, hostile plugins, the
//! `nestbox plugin` commands and SIGHUP reload.
//!
//! The plugins are built once per test run with `cargo build --release --target
//! wasm32-wasip2` into `<target dir>/wasm-plugins` (cargo's own cache makes later runs
//! quick). Needs the wasm32-wasip2 target (rust-toolchain.toml lists it) and python3.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg(feature = "plugins")]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Env, Server, python3};

/// The built example plugins.
struct Wasm {
    spam_to_junk: PathBuf,
    rules: PathBuf,
    hostile: PathBuf,
    quota_tiered: PathBuf,
    retention_standard: PathBuf,
}

fn wasm() -> &'static Wasm {
    static W: OnceLock<Wasm> = OnceLock::new();
    W.get_or_init(|| {
        for m in [
            "plugins/spam-to-junk/Cargo.toml",
            "plugins/rules/Cargo.toml",
            "plugins/quota-tiered/Cargo.toml",
            "plugins/retention-standard/Cargo.toml",
            "tests/fixtures/plugins/hostile/Cargo.toml",
        ] {
            common::wasm::build(m);
        }
        let dir = common::wasm::release_dir();
        let w = Wasm {
            spam_to_junk: dir.join("spam_to_junk.wasm"),
            rules: dir.join("rules.wasm"),
            hostile: dir.join("hostile.wasm"),
            quota_tiered: dir.join("quota_tiered.wasm"),
            retention_standard: dir.join("retention_standard.wasm"),
        };
        for p in [
            &w.spam_to_junk,
            &w.rules,
            &w.hostile,
            &w.quota_tiered,
            &w.retention_standard,
        ] {
            assert!(p.is_file(), "{} missing", p.display());
        }
        w
    })
}

fn config(plugins: &str, extra: &str) -> String {
    format!(
        r#"(
    hostname: "test.example",
    data_dir: "data",
    imap: (listen: ["127.0.0.1:0"], tls_listen: []),
    pop3: (listen: [], tls_listen: []),
    managesieve: (listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    auth: (argon2: (memory_kib: 64, iterations: 1, parallelism: 1)),
    limits: (max_message_size: 100000),
    plugins: [{plugins}],
    {extra}
)
"#
    )
}

fn ron_str(p: &Path) -> String {
    format!("{:?}", p.to_str().unwrap())
}

fn rules_plugin() -> String {
    format!(
        r#"(name: "rules", path: {}, hooks: [Filter], settings: {{
            "rule.1": "header:Subject contains [reject-me] => reject Go away",
            "rule.2": "header:Subject contains [later] => tempfail Busy now",
            "rule.3": "header:Subject contains [drop] => discard",
            "rule.4": "header:List-Id contains rust => fileinto Lists/rust; flag \\Flagged",
            "rule.5": "to contains carol => flag $Carol",
            "rule.6": "user is bob => reject No mail for bob",
        }})"#,
        ron_str(&wasm().rules)
    )
}

fn junk_plugin() -> String {
    format!(
        r#"(name: "junk", path: {}, hooks: [Filter])"#,
        ron_str(&wasm().spam_to_junk)
    )
}

fn msg(headers: &str) -> Vec<u8> {
    format!(
        "From: a@example.org\r\nMessage-ID: <{}@test>\r\n{headers}\r\n\r\nbody\r\n",
        common::unique()
    )
    .into_bytes()
}

/// Flags and keywords of every message of one mailbox, from a maildir export:
/// (flag letters, keywords).
fn flags(env: &Env, user: &str, mailbox: &str) -> Vec<(String, Vec<String>)> {
    let dir = env.path().join(format!("md-{}", common::unique()));
    env.cli(
        &[
            "export",
            "--user",
            user,
            "--mailbox",
            mailbox,
            "--format",
            "maildir",
            dir.to_str().unwrap(),
        ],
        b"",
    )
    .expect_code(0);
    let keywords: Vec<String> = fs::read_to_string(dir.join("dovecot-keywords"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, k)| k.to_string()))
        .collect();
    let mut out = Vec::new();
    let mut names: Vec<_> = fs::read_dir(dir.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let info = name.rsplit_once(":2,").map(|(_, i)| i).unwrap_or("");
        let letters: String = info.chars().filter(|c| c.is_ascii_uppercase()).collect();
        let kws = info
            .chars()
            .filter(|c| c.is_ascii_lowercase())
            .filter_map(|c| keywords.get((c as u8 - b'a') as usize).cloned())
            .collect();
        out.push((letters, kws));
    }
    out
}

fn count(env: &Env, user: &str, mailbox: &str) -> usize {
    env.messages(user, mailbox).len()
}

fn wait_for_log(server: &Server, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = fs::read_to_string(&server.log).unwrap_or_default();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn filters_file_flag_reject_and_discard_over_lmtp_and_append() {
    let w = wasm();
    let env = Env::with_config(&config(
        &format!("{}, {}", rules_plugin(), junk_plugin()),
        "",
    ));
    for u in ["alice", "bob", "carol"] {
        env.add_user(u);
    }
    let server = Server::start(&env);
    let mut c = server.connect();

    // Spam to alice and carol: Junk with $Junk (carol also gets $Carol from rules).
    let (rcpt, after) = c.transaction(
        "s@example.org",
        &["alice@test.example", "carol@test.example"],
        &msg("Subject: cheap\r\nX-Spam-Flag: YES"),
    );
    assert!(rcpt.iter().all(|r| r.code == 250), "{rcpt:?}");
    assert!(after.iter().all(|r| r.code == 250), "{after:?}");
    assert_eq!(
        flags(&env, "alice", "Junk"),
        vec![(String::new(), vec!["$Junk".into()])]
    );
    let carol = flags(&env, "carol", "Junk");
    assert_eq!(carol.len(), 1);
    assert!(
        carol[0].1.contains(&"$Junk".to_string()) && carol[0].1.contains(&"$Carol".to_string()),
        "{carol:?}"
    );

    // A list message: filed into Lists/rust (created) with \Flagged.
    let (_, after) = c.transaction(
        "l@example.org",
        &["alice@test.example"],
        &msg("Subject: release\r\nList-Id: <rust.lists.example>"),
    );
    assert_eq!(after[0].code, 250, "{after:?}");
    assert_eq!(
        flags(&env, "alice", "Lists/rust"),
        vec![("F".to_string(), vec![])]
    );

    // Reject: 550 for each recipient, with the plugin's text; temporary: 450.
    let (_, after) = c.transaction(
        "r@example.org",
        &["alice@test.example", "carol@test.example"],
        &msg("Subject: [reject-me] hi"),
    );
    assert_eq!(after.len(), 2);
    for r in &after {
        assert_eq!(r.code, 550, "{r:?}");
        assert!(r.text().contains("Go away"), "{r:?}");
    }
    let (_, after) = c.transaction(
        "r@example.org",
        &["alice@test.example"],
        &msg("Subject: [later]"),
    );
    assert_eq!(after[0].code, 450, "{after:?}");
    assert!(after[0].text().contains("Busy now"), "{after:?}");

    // Per recipient: alice accepted, bob rejected in the same transaction.
    let (_, after) = c.transaction(
        "r@example.org",
        &["alice@test.example", "bob@test.example"],
        &msg("Subject: for two"),
    );
    assert_eq!(after[0].code, 250, "{after:?}");
    assert_eq!(after[1].code, 550, "{after:?}");
    assert!(after[1].text().contains("No mail for bob"), "{after:?}");

    // Discard: acknowledged, not stored.
    let inbox = count(&env, "alice", "INBOX");
    let (_, after) = c.transaction(
        "d@example.org",
        &["alice@test.example"],
        &msg("Subject: [drop] x"),
    );
    assert_eq!(after[0].code, 250, "{after:?}");
    assert_eq!(count(&env, "alice", "INBOX"), inbox);
    drop(c);

    // IMAP APPEND runs the filters too: reject -> NO, discard -> OK without storing,
    // flags added; the mailbox stays the one the client named.
    let addr = server.imap.unwrap();
    let script = format!(
        r#"
import imaplib
M = imaplib.IMAP4("{ip}", {port})
M.login("alice", "pw-alice")
typ, data = M.append("INBOX", None, None, b"Subject: [reject-me] a\r\n\r\nx\r\n")
assert typ == "NO" and b"Go away" in data[0], (typ, data)
typ, data = M.append("INBOX", None, None, b"Subject: [drop] a\r\n\r\nx\r\n")
assert typ == "OK", (typ, data)
typ, data = M.append("Archive", None, None, b"Subject: a\r\nX-Spam-Flag: YES\r\nList-Id: rust\r\n\r\nx\r\n")
assert typ == "OK", (typ, data)
M.logout()
print("ok")
"#,
        ip = addr.ip(),
        port = addr.port()
    );
    let r = python3(&["-c", &script]);
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");
    assert_eq!(count(&env, "alice", "INBOX"), inbox);
    let archive = flags(&env, "alice", "Archive");
    assert_eq!(archive.len(), 1, "{archive:?}");
    assert_eq!(archive[0].0, "F");
    assert_eq!(archive[0].1, vec!["$Junk".to_string()]);

    // plugin list through the control socket: both healthy, calls counted.
    let list = env.cli(&["plugin", "list"], b"");
    list.expect_code(0);
    assert!(
        list.stdout.contains("rules") && list.stdout.contains("junk"),
        "{list:?}"
    );
    assert!(
        list.stdout.contains("healthy") && !list.stdout.contains("UNHEALTHY"),
        "{list:?}"
    );
    assert!(!list.stdout.contains("calls: 0\t"), "{list:?}");
    let _ = w;
}

/// wit/nestbox-plugin.wit promises filters `source = lmtp` for LMTP mail. After STARTTLS
/// the trace protocol is `LMTPS` (RFC 3848 §2), and filters were told `deliver`.
#[test]
fn filter_sees_source_lmtp_after_starttls() {
    let rules = format!(
        r#"(name: "rules", path: {}, hooks: [Filter], settings: {{
            "rule.1": "source is lmtp => fileinto ViaLmtp",
            "rule.2": "source is deliver => fileinto ViaDeliver",
        }})"#,
        ron_str(&wasm().rules)
    );
    let plain = r#"unix_socket: Some("lmtp.sock"))"#;
    let cfg = config(&rules, "");
    assert!(cfg.contains(plain));
    let cfg = cfg.replace(plain, r#"unix_socket: Some("lmtp.sock"), starttls: true)"#);
    let env = Env::with_config(&cfg);
    env.add_user("alice");
    let server = Server::start(&env);

    let file = env.path().join("tls.eml");
    fs::write(&file, msg("Subject: over tls")).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lmtp_starttls.py"
    );
    let port = server.lmtp.port().to_string();
    let run = python3(&[script, &port, file.to_str().unwrap(), "alice@test.example"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.lines().any(|l| l == "data 250"), "{run:#?}");

    let mut c = server.connect();
    let (_, after) = c.transaction(
        "s@example.org",
        &["alice@test.example"],
        &msg("Subject: plain"),
    );
    assert_eq!(after[0].code, 250, "{after:?}");
    env.cli(&["deliver", "--user", "alice"], &msg("Subject: local"))
        .expect_code(0);

    assert_eq!(count(&env, "alice", "ViaLmtp"), 2);
    assert_eq!(count(&env, "alice", "ViaDeliver"), 1);
    assert_eq!(count(&env, "alice", "INBOX"), 0);
}

#[test]
fn hostile_plugins_fail_by_policy_and_the_server_stays_up() {
    let w = wasm();
    let env = Env::new();
    let huge = env.path().join("huge.wasm");
    fs::File::create(&huge).unwrap().set_len(100 << 20).unwrap();
    let garbage = env.path().join("garbage.wasm");
    fs::write(&garbage, b"\0asm\x01\0\0\0 not really").unwrap();
    let hostile = |name: &str, mode: &str, extra: &str| {
        format!(
            r#"(name: "{name}", path: {}, settings: {{"mode": "{mode}"}}, {extra})"#,
            ron_str(&w.hostile)
        )
    };
    let plugins = [
        hostile("looper", "loop", "timeout_ms: Some(200)"),
        hostile("hog", "memory", "memory_mib: Some(16)"),
        hostile("trapper", "trap", "users: [\"alice\"]"),
        hostile("badbox", "bad-mailbox", ""),
        hostile("chatty", "log", ""),
        format!(
            r#"(name: "wrongworld", path: {}, hooks: [Quota])"#,
            ron_str(&w.spam_to_junk)
        ),
        format!(r#"(name: "huge", path: {})"#, ron_str(&huge)),
        format!(r#"(name: "garbage", path: {})"#, ron_str(&garbage)),
        hostile(
            "tempfailer",
            "trap",
            "users: [\"bob\"], on_failure: TempFail",
        ),
        hostile("survivor", "ok", ""),
    ]
    .join(", ");
    fs::write(
        env.config(),
        config(&plugins, "plugin_limits: (unhealthy_after: 2),").replace(
            r#"imap: (listen: ["127.0.0.1:0"], tls_listen: []),"#,
            "imap: (listen: [], tls_listen: []),",
        ),
    )
    .unwrap();
    env.add_user("alice");
    env.add_user("bob");
    let server = Server::start(&env);
    let mut c = server.connect();
    for round in 0..2 {
        let started = Instant::now();
        let (rcpt, after) = c.transaction(
            "h@example.org",
            &["alice@test.example", "bob@test.example"],
            &msg(&format!("Subject: round {round}")),
        );
        assert!(rcpt.iter().all(|r| r.code == 250), "{rcpt:?}");
        // alice: every failure fails open, the survivor still adds its keyword.
        assert_eq!(after[0].code, 250, "{after:?}");
        // bob: the TempFail plugin traps -> 4xx.
        assert!((400..500).contains(&after[1].code), "{after:?}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
    }
    let alice = flags(&env, "alice", "INBOX");
    assert_eq!(alice.len(), 2, "{alice:?}");
    assert!(
        alice
            .iter()
            .all(|(_, k)| k == &vec!["$Survived".to_string()]),
        "{alice:?}"
    );
    assert_eq!(count(&env, "bob", "INBOX"), 0);

    let log = wait_for_log(&server, "plugin tempfailer");
    for needle in [
        "plugin looper: filter failed, delivering as if accepted: deadline of 200 ms exceeded",
        "plugin hog: filter failed, delivering as if accepted: memory limit of 16 MiB exceeded",
        "plugin trapper: filter failed, delivering as if accepted: trapped",
        "plugin badbox: filter failed, delivering as if accepted: invalid result",
        "plugin wrongworld: cannot load: configured for the quota hook but does not export nestbox:plugin/quota",
        "plugin huge: cannot load:",
        "over plugin_limits.max_file_mib",
        "plugin garbage: cannot load:",
        "plugin tempfailer: filter failed, temporary failure (on_failure: TempFail)",
        "plugin chatty: stdout: line 0",
        "further lines of this call dropped",
        "plugin looper: unhealthy after 2 failures in a row",
    ] {
        assert!(log.contains(needle), "log lacks {needle:?}:\n{log}");
    }
    assert!(!log.contains("line 9999"), "log flood not capped");

    let list = env.cli(&["plugin", "list"], b"");
    list.expect_code(0);
    let line = |name: &str| {
        list.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} not listed: {}", list.stdout))
            .to_string()
    };
    assert!(line("looper").contains("UNHEALTHY"), "{}", list.stdout);
    assert!(line("huge").contains("NOT LOADED"), "{}", list.stdout);
    assert!(line("wrongworld").contains("NOT LOADED"), "{}", list.stdout);
    assert!(line("survivor").contains("healthy"), "{}", list.stdout);
    assert!(line("survivor").contains("calls: 2"), "{}", list.stdout);

    // Still serving.
    let (_, after) = c.transaction(
        "h@example.org",
        &["alice@test.example"],
        &msg("Subject: after"),
    );
    assert_eq!(after[0].code, 250, "{after:?}");
}

#[test]
fn plugin_check_test_and_list_without_a_server() {
    let w = wasm();
    let env = Env::with_config(&config(&junk_plugin(), ""));
    let check = env.cli(&["plugin", "check", w.spam_to_junk.to_str().unwrap()], b"");
    check.expect_code(0);
    assert!(
        check.stdout.contains("implements nestbox:plugin/filter"),
        "{check:?}"
    );

    let garbage = env.path().join("garbage.wasm");
    fs::write(&garbage, b"hello").unwrap();
    let bad = env.cli(&["plugin", "check", garbage.to_str().unwrap()], b"");
    bad.expect_code(65);
    assert!(
        bad.stderr.contains("not a WebAssembly component"),
        "{bad:?}"
    );

    let eml = env.path().join("m.eml");
    fs::write(
        &eml,
        "Subject: Hello there\nX-Spam-Status: Yes, score=9\n\nbody\n",
    )
    .unwrap();
    let t = env.cli(
        &[
            "plugin",
            "test",
            w.spam_to_junk.to_str().unwrap(),
            "--message",
            eml.to_str().unwrap(),
        ],
        b"",
    );
    t.expect_code(0);
    assert!(
        t.stdout.starts_with("accept mailbox=Junk flags=[$Junk]"),
        "{t:?}"
    );
    let t = env.cli(
        &[
            "plugin",
            "test",
            w.rules.to_str().unwrap(),
            "--message",
            eml.to_str().unwrap(),
            "--setting",
            "rule.1=header:Subject matches \"hello *\" => fileinto Greetings; flag \\Seen",
        ],
        b"",
    );
    t.expect_code(0);
    assert!(
        t.stdout
            .starts_with("accept mailbox=Greetings flags=[\\Seen]"),
        "{t:?}"
    );
    let t = env.cli(
        &[
            "plugin",
            "test",
            w.rules.to_str().unwrap(),
            "--message",
            eml.to_str().unwrap(),
            "--setting",
            "rule.1=size > 10 => reject too long",
        ],
        b"",
    );
    assert!(t.stdout.starts_with("reject permanent too long"), "{t:?}");

    let list = env.cli(&["plugin", "list"], b"");
    list.expect_code(0);
    assert!(list.stdout.contains("no server running"), "{list:?}");
    assert!(
        list.stdout.contains("junk\t") && list.stdout.contains("hooks: filter"),
        "{list:?}"
    );

    // A bad plugin entry names the key.
    fs::write(
        env.config(),
        config(r#"(name: "bad name", path: "x.wasm")"#, ""),
    )
    .unwrap();
    let r = env.cli(&["check-config"], b"");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("plugins.name"), "{r:?}");
}

#[test]
fn sighup_reloads_plugins_without_dropping_connections() {
    let w = wasm();
    let env = Env::with_config(&config("", ""));
    env.add_user("alice");
    let server = Server::start(&env);
    let mut c = server.connect();
    let spam = || msg("Subject: s\r\nX-Spam-Flag: YES");
    let (_, after) = c.transaction("s@example.org", &["alice@test.example"], &spam());
    assert_eq!(after[0].code, 250);
    assert_eq!(count(&env, "alice", "INBOX"), 1);

    fs::write(env.config(), config(&junk_plugin(), "")).unwrap();
    let ok = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    wait_for_log(&server, "SIGHUP: 1 plugins loaded");
    // The connection opened before the reload still works, now with the filter.
    let (_, after) = c.transaction("s@example.org", &["alice@test.example"], &spam());
    assert_eq!(after[0].code, 250, "{after:?}");
    assert_eq!(count(&env, "alice", "Junk"), 1);
    assert_eq!(count(&env, "alice", "INBOX"), 1);
    let _ = w;
}

/// A message of about `kib` KiB (line-wrapped filler).
fn sized(subject: &str, kib: usize) -> Vec<u8> {
    let mut m = format!(
        "From: a@example.org\r\nMessage-ID: <{}@test>\r\nSubject: {subject}\r\n\r\n",
        common::unique()
    )
    .into_bytes();
    let line = format!("{}\r\n", "x".repeat(1022));
    for _ in 0..kib {
        m.extend_from_slice(line.as_bytes());
    }
    m
}

/// Runs a Python imaplib script logged in as alice; `M` is the connection. The script
/// prints "ok" at the end.
fn imap_script(server: &Server, body: &str) -> common::Run {
    let addr = server.imap.unwrap();
    let script = format!(
        "import imaplib, re\nM = imaplib.IMAP4(\"{}\", {})\nM.login(\"alice\", \"pw-alice\")\n{body}\nM.logout()\nprint(\"ok\")\n",
        addr.ip(),
        addr.port()
    );
    python3(&["-c", &script])
}

#[test]
fn quota_plugin_answers_lmtp_452_552_and_imap_overquota() {
    let w = wasm();
    // The disk rules (limits halved below 10% free, 16 MiB kept back) would make the
    // answers depend on how full the test machine's disk is: off here, the policy's own
    // tests cover them.
    let plugin = format!(
        r#"(name: "tiers", path: {}, hooks: [Quota], users: ["alice"],
            settings: {{"storage_mib": "1", "messages": "5",
                        "disk_low_percent": "0", "disk_reserve_mib": "0"}})"#,
        ron_str(&w.quota_tiered)
    );
    let env = Env::with_config(
        &config(&plugin, "").replace("max_message_size: 100000", "max_message_size: 2000000"),
    );
    env.add_user("alice");
    env.add_user("bob");
    let server = Server::start(&env);
    let mut c = server.connect();
    let mut send = |to: &[&str], kib: usize| {
        let (rcpt, after) = c.transaction("s@example.org", to, &sized("q", kib));
        assert!(rcpt.iter().all(|r| r.code == 250), "{rcpt:?}");
        after
    };
    // 1 MiB storage limit: two 400 KiB copies fit, a third would cross the limit ->
    // temporary (the user can make room); a 100 KiB one still fits.
    for _ in 0..2 {
        let r = send(&["alice@test.example"], 400);
        assert_eq!(r[0].code, 250, "{r:?}");
    }
    let r = send(&["alice@test.example"], 400);
    assert_eq!(r[0].code, 452, "{r:?}");
    assert_eq!(r[0].enhanced(), "4.2.2", "{r:?}");
    assert_eq!(send(&["alice@test.example"], 100)[0].code, 250);

    // IMAP: GETQUOTAROOT reports the plugin's limits; APPEND and COPY over the limit
    // get NO [OVERQUOTA] and store nothing; MOVE adds nothing to the total: allowed.
    let r = imap_script(
        &server,
        r#"
typ, data = M.getquotaroot("INBOX")
assert typ == "OK", (typ, data)
q = [d for d in data[1] if d.startswith(b'"" (')][0]
m = re.match(rb'"" \(STORAGE (\d+) (\d+) MESSAGE (\d+) (\d+)\)', q)
assert m, q
used, limit, n, nlimit = map(int, m.groups())
assert limit == 1024 and nlimit == 5 and n == 3 and 900 < used <= 1024, q
big = b"Subject: big\r\n\r\n" + b"y" * (400 * 1024) + b"\r\n"
typ, data = M.append("INBOX", None, None, big)
assert typ == "NO" and b"[OVERQUOTA]" in data[0], (typ, data)
M.select("INBOX")
typ, data = M.copy("1", "Archive")
assert typ == "NO" and b"[OVERQUOTA]" in data[0], (typ, data)
typ, data = M.uid("MOVE", "1", "Archive")
assert typ == "OK", (typ, data)
"#,
    );
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");
    assert_eq!(count(&env, "alice", "INBOX"), 2);
    assert_eq!(count(&env, "alice", "Archive"), 1);

    // 5 messages at most: two more fit, the sixth is refused for good (552) while bob,
    // whom the plugin does not cover, gets his copy in the same transaction.
    assert_eq!(send(&["alice@test.example"], 1)[0].code, 250);
    assert_eq!(send(&["alice@test.example"], 1)[0].code, 250);
    let r = send(&["alice@test.example", "bob@test.example"], 1);
    assert_eq!(r[0].code, 552, "{r:?}");
    assert_eq!(r[0].enhanced(), "5.2.2", "{r:?}");
    assert_eq!(r[1].code, 250, "{r:?}");
    assert_eq!(
        count(&env, "alice", "INBOX") + count(&env, "alice", "Archive"),
        5
    );

    // `nestbox deliver` maps the policy's answer to sysexits: 73 can't create.
    let d = env.cli(
        &["deliver", "--user", "alice"],
        b"Subject: more\r\n\r\nx\r\n",
    );
    d.expect_code(73);
    assert!(d.stderr.contains("over quota"), "{d:?}");
    let log = wait_for_log(&server, "plugin tiers: quota denied");
    assert!(log.contains("plugin tiers: quota denied"), "{log}");
}

#[test]
fn retention_plugin_dry_run_then_real_run_seen_by_imap() {
    let w = wasm();
    let plugin = format!(
        r#"(name: "std", path: {}, hooks: [Retention],
            settings: {{"max_age_days.INBOX": "30", "archive.Lists": "10 Archive"}})"#,
        ron_str(&w.retention_standard)
    );
    let env = Env::with_config(&config(&plugin, "retention: (interval_secs: 0),"));
    env.add_user("alice");
    let server = Server::start(&env);
    // INBOX: old, old and flagged, new. Lists: old, new. UIDs 1..3 and 1..2.
    let r = imap_script(
        &server,
        r#"
old = '"01-Jan-2020 00:00:00 +0000"'
M.create("Lists")
for box, date, flags in [("INBOX", old, None), ("INBOX", old, r"(\Flagged)"), ("INBOX", None, None),
                         ("Lists", old, None), ("Lists", None, None)]:
    typ, data = M.append(box, flags, date, b"Subject: m\r\nFrom: x@y\r\n\r\nbody\r\n")
    assert typ == "OK", (typ, data)
"#,
    );
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");

    let dry = env.cli(&["retention", "run", "--dry-run"], b"");
    dry.expect_code(0);
    assert!(
        dry.stdout.contains("alice/INBOX: would expunge 1: 1\n"),
        "{dry:?}"
    );
    assert!(
        dry.stdout
            .contains("alice/Lists: would move 1 to Archive: 1\n"),
        "{dry:?}"
    );
    assert_eq!(count(&env, "alice", "INBOX"), 3);
    assert_eq!(count(&env, "alice", "Lists"), 2);

    // A session with INBOX selected sees the real run's EXPUNGE at its next command.
    let addr = server.imap.unwrap();
    let mut imap = std::net::TcpStream::connect(addr).unwrap();
    imap.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut session = std::io::BufReader::new(imap.try_clone().unwrap());
    let mut lines = |until: &str| {
        use std::io::BufRead;
        let mut got = String::new();
        loop {
            let mut l = String::new();
            assert!(session.read_line(&mut l).unwrap() > 0, "eof: {got}");
            got.push_str(&l);
            if l.starts_with(until) {
                return got;
            }
        }
    };
    use std::io::Write;
    lines("* OK");
    imap.write_all(b"a LOGIN alice pw-alice\r\nb SELECT INBOX\r\n")
        .unwrap();
    let sel = lines("b OK");
    assert!(sel.contains("* 3 EXISTS"), "{sel}");

    let run = env.cli(&["retention", "run", "--user", "alice"], b"");
    run.expect_code(0);
    assert!(
        run.stdout.contains("alice/INBOX: expunged 1: 1\n"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("alice/Lists: moved 1 to Archive: 1\n"),
        "{run:?}"
    );
    imap.write_all(b"c NOOP\r\n").unwrap();
    let noop = lines("c OK");
    assert!(noop.contains("* 1 EXPUNGE"), "{noop}");
    assert_eq!(count(&env, "alice", "INBOX"), 2);
    assert_eq!(count(&env, "alice", "Lists"), 1);
    assert_eq!(count(&env, "alice", "Archive"), 1);
    // The flagged old message stays.
    assert_eq!(flags(&env, "alice", "INBOX")[0].0, "F");

    // Nothing left to do: a second run changes nothing.
    let again = env.cli(&["retention", "run"], b"");
    again.expect_code(0);
    assert!(again.stdout.contains("0 expunged, 0 moved"), "{again:?}");
    drop(imap);

    // A rule whose answer breaks a limit (two moves, one allowed) applies nothing and
    // says why (exit 70).
    let r = imap_script(
        &server,
        r#"
for _ in range(2):
    typ, data = M.append("Lists", None, '"01-Jan-2020 00:00:00 +0000"', b"Subject: old\r\n\r\nx\r\n")
    assert typ == "OK", (typ, data)
"#,
    );
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");
    server.stop();
    let strict = env.path().join("strict.ron");
    fs::write(
        &strict,
        config(
            &plugin,
            "retention: (interval_secs: 0), plugin_limits: (max_decisions: 1),",
        ),
    )
    .unwrap();
    let r = Command::new(common::bin())
        .args(["--config", strict.to_str().unwrap(), "retention", "run"])
        .current_dir(env.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(70), "{stderr}");
    assert!(
        stderr.contains("over plugin_limits.max_decisions"),
        "{stderr}"
    );
    assert_eq!(count(&env, "alice", "Lists"), 3);
}
