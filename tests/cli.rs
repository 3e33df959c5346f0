//! The command line against the real binary, with no server (store opened directly)
//! and with `serve` running (control socket): the same commands must give the same
//! exit codes and output (DESIGN.md decision 1, issue 2 acceptance 5).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking (see clippy.toml for #[test] functions)

mod common;

use std::fs;
use std::process::Command;

use common::*;

/// One step of the scenario: its name and what the CLI did.
type Transcript = Vec<(String, Run)>;

/// Output without the temp dir's path and `stats`' database file size (which depends on
/// redb's allocation).
fn normalize(env: &Env, run: &Run) -> Run {
    let dir = env.path().to_str().unwrap();
    let stdout = run
        .stdout
        .replace(dir, "<dir>")
        .lines()
        .map(|l| match l.find(", file ") {
            Some(i) if l.starts_with("store: ") => format!("{}, file N bytes", &l[..i]),
            // The file's size, blocks and free pages depend on what the server did.
            _ if l.starts_with("disk: ") => "disk: N".to_owned(),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    Run {
        code: run.code,
        stdout,
        stderr: run.stderr.replace(dir, "<dir>"),
    }
}

/// Runs every CLI command once, checking each result, and returns the transcript.
fn scenario(env: &Env) -> Transcript {
    let mut t = Transcript::new();
    let mut step = |name: &str, args: &[&str], stdin: &[u8], code: i32| -> Run {
        let run = env.cli(args, stdin);
        assert_eq!(run.code, code, "{name}: {run:#?}");
        t.push((name.to_owned(), normalize(env, &run)));
        run
    };

    let r = step(
        "add alice",
        &["user", "add", "alice", "--password-stdin"],
        b"secret\n",
        0,
    );
    assert!(r.stdout.contains("alice"), "{r:?}");
    let r = step(
        "add alice again",
        &["user", "add", "alice", "--password-stdin"],
        b"x\n",
        65,
    );
    assert!(r.stderr.contains("user alice already exists"), "{r:?}");
    step(
        "add bob",
        &["user", "add", "bob", "--password-stdin"],
        b"pw\nignored\n",
        0,
    );
    let r = step(
        "add empty password",
        &["user", "add", "carol", "--password-stdin"],
        b"\n",
        65,
    );
    assert!(r.stderr.contains("password"), "{r:?}");
    let r = step("list", &["user", "list"], b"", 0);
    assert_eq!(r.stdout, "alice\nbob\n");

    step(
        "passwd alice",
        &["user", "passwd", "alice", "--password-stdin"],
        b"new\n",
        0,
    );
    let r = step(
        "passwd zed",
        &["user", "passwd", "zed", "--password-stdin"],
        b"new\n",
        67,
    );
    assert!(r.stderr.contains("no such user: zed"), "{r:?}");

    let msg = b"From: someone@remote.test\nSubject: cli\n\nline one\n.\nFrom here\n";
    step(
        "deliver",
        &[
            "deliver",
            "--user",
            "alice",
            "--from",
            "someone@remote.test",
        ],
        msg,
        0,
    );
    step(
        "deliver archive",
        &["deliver", "--user", "bob", "--mailbox", "Archive"],
        msg,
        0,
    );
    let r = step(
        "deliver unknown user",
        &["deliver", "--user", "zed"],
        msg,
        67,
    );
    assert!(r.stderr.contains("zed"), "{r:?}");
    step(
        "deliver no mailbox",
        &["deliver", "--user", "alice", "--mailbox", "Nope"],
        msg,
        73,
    );
    let big = vec![b'x'; MAX_SIZE + 1];
    let r = step("deliver too big", &["deliver", "--user", "alice"], &big, 73);
    assert!(r.stderr.contains("larger"), "{r:?}");

    let r = step("stats", &["stats"], b"", 0);
    let inbox = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("INBOX"))
        .expect("INBOX row");
    assert_eq!(inbox.split_whitespace().nth(1), Some("1"), "{}", r.stdout);
    assert!(
        r.stdout.contains("store: 1 blobs"),
        "same message twice: {}",
        r.stdout
    );
    // The disk figures a user compares with `ls -l` and `du`.
    let disk: Vec<u64> = r
        .stdout
        .lines()
        .find(|l| l.starts_with("disk: file "))
        .expect("disk line")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [file, allocated, free] = disk[..] else {
        panic!("{}", r.stdout)
    };
    assert!(file > 0 && allocated > 0 && free < file, "{}", r.stdout);
    let r = step("stats alice", &["stats", "--user", "alice"], b"", 0);
    assert!(!r.stdout.contains("bob"), "{}", r.stdout);
    step("stats zed", &["stats", "--user", "zed"], b"", 67);

    // What deliver stored: Return-Path from --from, then the message as given.
    let alice = env.messages("alice", "INBOX");
    assert_eq!(alice.len(), 1);
    let (trace, body) = strip_trace(&alice[0]);
    assert_eq!(trace.return_path.as_deref(), Some("<someone@remote.test>"));
    assert_eq!(trace.delivered_to, "alice@test.example");
    assert_eq!(show(&body), show(msg));
    assert_eq!(bodies(env, "bob", "Archive"), [msg.to_vec()]);

    step("del bob", &["user", "del", "bob"], b"", 0);
    let r = step("list after del", &["user", "list"], b"", 0);
    assert_eq!(r.stdout, "alice\n");
    step("del bob again", &["user", "del", "bob"], b"", 67);
    step("compact", &["compact"], b"", 0);
    let r = step("check-config", &["check-config"], b"", 0);
    assert!(r.stdout.contains("ok"), "{r:?}");
    t
}

#[test]
fn cli_same_behaviour_with_and_without_server() {
    let local_env = Env::new();
    let local = scenario(&local_env);

    let remote_env = Env::new();
    // The server must exist before the first command so every command uses the socket.
    let server = Server::start(&remote_env);
    let remote = scenario(&remote_env);
    // The server still serves LMTP after all that.
    let mut c = server.connect();
    assert_eq!(c.cmd("LHLO x").code, 250);
    drop(c);
    let status = server.stop();
    assert!(status.success(), "serve exit: {status:?}");

    for ((name, l), (_, r)) in local.iter().zip(&remote) {
        assert_eq!(l, r, "step {name:?} differs without/with a server");
    }
    assert_eq!(local.len(), remote.len());

    // With the server gone, the store opens directly and holds what the server wrote.
    let r = remote_env.cli(&["user", "list"], b"");
    assert_eq!(r.stdout, "alice\n");
}

#[test]
fn cli_works_with_server_started_on_existing_store() {
    let env = Env::new();
    env.add_user("alice");
    let server = Server::start(&env);
    env.cli(&["deliver", "--user", "alice"], b"Subject: a\n\nb\n")
        .expect_code(0);
    env.add_user("dave");
    assert_eq!(env.cli(&["user", "list"], b"").stdout, "alice\ndave\n");
    drop(server);
    assert_eq!(
        bodies(&env, "alice", "INBOX"),
        [b"Subject: a\n\nb\n".to_vec()]
    );
}

fn bad_key_config() -> String {
    CONFIG.replace(
        "    limits: (max_message_size: 100000),\n",
        "    limits: (max_message_size: 100000),\n    bogus_key: 3,\n",
    )
}

#[test]
fn check_config_unknown_key_is_78_with_key_and_line() {
    let config = bad_key_config();
    let line = config
        .lines()
        .position(|l| l.contains("bogus_key"))
        .unwrap()
        + 1;
    let env = Env::with_config(&config);
    let r = env.cli(&["check-config"], b"");
    assert_eq!(r.code, 78, "{r:#?}");
    assert!(r.stderr.contains("bogus_key"), "{r:?}");
    assert!(
        r.stderr.contains(&format!("config.ron:{line}:")),
        "line {line}: {r:?}"
    );
}

#[test]
fn check_config_bad_value_is_78_with_line() {
    let config = CONFIG.replace("max_message_size: 100000", "max_message_size: \"big\"");
    let line = config.lines().position(|l| l.contains("\"big\"")).unwrap() + 1;
    let env = Env::with_config(&config);
    let r = env.cli(&["check-config"], b"");
    assert_eq!(r.code, 78, "{r:#?}");
    assert!(r.stderr.contains(&format!("config.ron:{line}:")), "{r:?}");

    let config = CONFIG.replace("hostname: \"test.example\"", "hostname: \"bad host!\"");
    let env = Env::with_config(&config);
    let r = env.cli(&["check-config"], b"");
    assert_eq!(r.code, 78, "{r:#?}");
    assert!(r.stderr.contains("config.ron:2:"), "{r:?}");
    assert!(r.stderr.contains("hostname"), "{r:?}");
}

#[test]
fn serve_with_unknown_key_exits_naming_it() {
    let env = Env::with_config(&bad_key_config());
    let out = Command::new(bin())
        .arg("--config")
        .arg(env.config())
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bogus_key"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
    assert!(!env.data_dir().exists() || fs::read_dir(env.data_dir()).unwrap().next().is_none());
}

#[test]
fn shipped_config_passes_check_config() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.ron");
    let out = Command::new(bin())
        .args(["--config", path, "check-config"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
