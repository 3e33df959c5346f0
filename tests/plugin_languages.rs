//! The Python and JavaScript twins of the spam-to-junk filter against the real binary:
//! built with their build.sh (componentize-py, componentize-js), then a spam-marked
//! message over LMTP lands in Junk with `$Junk`, a clean one in INBOX, the `folder` /
//! `keyword` settings work, and IMAP APPEND gets the keyword too.
//!
//! The components are built into `<target dir>/plugin-languages/` and rebuilt only when
//! a source (app, build.sh, package files, the WIT) is newer than the output; the tools
//! are installed once into `<target dir>/plugin-tools/` (a Python virtualenv, `npm ci`).
//! A first build takes about 1 minute for Python and 1.5 minutes for JavaScript.
//!
//! Needs python3 with venv and pip, and node with npm: the test fails (it does not skip)
//! when they are missing, saying what to install.
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
use std::time::{Instant, SystemTime};

use common::{Env, Server, python3};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd args`; true when it exits 0.
fn works(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn mtime(p: &Path) -> SystemTime {
    fs::metadata(p)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Builds `plugins/<dir>` with its build.sh into `<target>/plugin-languages/<out>`,
/// unless the output is newer than every source.
fn build(dir: &str, sources: &[&str], out: &str) -> PathBuf {
    let plugin = root().join("plugins").join(dir);
    let output = common::wasm::target_dir()
        .join("plugin-languages")
        .join(out);
    let mut inputs: Vec<PathBuf> = sources.iter().map(|s| plugin.join(s)).collect();
    inputs.push(plugin.join("build.sh"));
    inputs.push(root().join("wit/nestbox-plugin.wit"));
    let newest = inputs.iter().map(|p| mtime(p)).max().unwrap();
    if output.is_file() && mtime(&output) > newest {
        return output;
    }
    let started = Instant::now();
    let run = Command::new("bash")
        .arg(plugin.join("build.sh"))
        .arg(&output)
        .env(
            "NESTBOX_TOOL_CACHE",
            common::wasm::target_dir().join("plugin-tools"),
        )
        .output()
        .expect("run bash");
    assert!(
        run.status.success(),
        "plugins/{dir}/build.sh failed ({}):\nstdout:\n{}\nstderr:\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(output.is_file(), "{} missing", output.display());
    eprintln!(
        "built plugins/{dir} in {:?} ({} bytes)",
        started.elapsed(),
        fs::metadata(&output).unwrap().len()
    );
    output
}

fn python_plugin() -> PathBuf {
    assert!(
        works("python3", &["-c", "import venv, ensurepip"]),
        "plugins/python-spam-to-junk needs python3 with the venv module and pip: \
         install them (Debian/Ubuntu: apt-get install python3 python3-venv python3-pip)"
    );
    build(
        "python-spam-to-junk",
        &["app.py"],
        "python_spam_to_junk.wasm",
    )
}

fn js_plugin() -> PathBuf {
    assert!(
        works("node", &["--version"]) && works("npm", &["--version"]),
        "plugins/js-spam-to-junk needs Node.js 18 or newer with npm: install them \
         (Debian/Ubuntu: apt-get install nodejs npm)"
    );
    build(
        "js-spam-to-junk",
        &["app.js", "package.json", "package-lock.json"],
        "js_spam_to_junk.wasm",
    )
}

/// Two entries for the same component: defaults for alice, custom `folder` / `keyword`
/// for bob. Python and JS components need more memory than Rust ones, and the first
/// call into a fresh instance takes longer. `data_dir` is absolute: the compilation
/// cache in `<data_dir>/plugin-cache` is used only then.
fn config(wasm: &Path, data_dir: &Path) -> String {
    let path = format!("{:?}", wasm.to_str().unwrap());
    let data = format!("{:?}", data_dir.to_str().unwrap());
    format!(
        r#"(
    hostname: "test.example",
    data_dir: {data},
    imap: (listen: ["127.0.0.1:0"], tls_listen: []),
    pop3: (listen: [], tls_listen: []),
    managesieve: (listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    auth: (argon2: (memory_kib: 64, iterations: 1, parallelism: 1)),
    limits: (max_message_size: 100000),
    plugins: [
        (name: "junk", path: {path}, hooks: [Filter], users: ["alice"],
         memory_mib: Some(128), timeout_ms: Some(10000)),
        (name: "junk-custom", path: {path}, hooks: [Filter], users: ["bob"],
         memory_mib: Some(128), timeout_ms: Some(10000),
         settings: {{"folder": "Spam/Caught", "keyword": "$Spam"}}),
    ],
)
"#
    )
}

fn msg(headers: &str) -> Vec<u8> {
    format!(
        "From: a@example.org\r\nMessage-ID: <{}@test>\r\n{headers}\r\n\r\nbody\r\n",
        common::unique()
    )
    .into_bytes()
}

/// Keywords of every message of one mailbox (in UID order), from a maildir export.
fn keywords(env: &Env, user: &str, mailbox: &str) -> Vec<Vec<String>> {
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
    let names: Vec<String> = fs::read_to_string(dir.join("dovecot-keywords"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, k)| k.to_string()))
        .collect();
    let mut files: Vec<_> = fs::read_dir(dir.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let info = f.rsplit_once(":2,").map(|(_, i)| i).unwrap_or("");
            info.chars()
                .filter(|c| c.is_ascii_lowercase())
                .filter_map(|c| names.get((c as u8 - b'a') as usize).cloned())
                .collect()
        })
        .collect()
}

fn count(env: &Env, user: &str, mailbox: &str) -> usize {
    env.messages(user, mailbox).len()
}

/// Compiles `wasm` into a compilation cache kept in the target dir (`nestbox plugin
/// check` with a config whose data dir is there) and returns that cache folder. The
/// server compiles plugins before it reports ready, and a 12-18 MB component takes
/// tens of seconds with the debug binary on a busy machine; with the cache it loads
/// in about a second. Checking also proves the component implements the filter world.
fn warm_cache(wasm: &Path) -> PathBuf {
    let name = wasm.file_stem().unwrap().to_str().unwrap();
    let dir = common::wasm::target_dir()
        .join("plugin-languages")
        .join(format!("warm-{name}"));
    let data = dir.join("data");
    fs::create_dir_all(&data).unwrap();
    let config = dir.join("config.ron");
    fs::write(&config, self::config(wasm, &data)).unwrap();
    let started = Instant::now();
    let out = Command::new(common::bin())
        .arg("--config")
        .arg(&config)
        .args(["plugin", "check"])
        .arg(wasm)
        .output()
        .expect("run nestbox plugin check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok, implements nestbox:plugin/filter"),
        "plugin check {}: {}\n{stdout}\n{}",
        wasm.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "plugin check {name}: {:?}: {}",
        started.elapsed(),
        stdout.trim()
    );
    data.join("plugin-cache")
}

/// The delivery check of tests/plugins.rs for the Rust spam-to-junk, for `wasm`.
fn spam_goes_to_junk(wasm: &Path) {
    let cache = warm_cache(wasm);
    // Users first, with the plugin-less default config: every CLI command loads the
    // configured plugins, and before the data dir exists there is no cache.
    let env = Env::new();
    env.add_user("alice");
    env.add_user("bob");
    fs::write(env.config(), config(wasm, &env.data_dir())).unwrap();
    let link = env.data_dir().join("plugin-cache");
    if link.is_dir() {
        fs::remove_dir_all(&link).unwrap();
    }
    std::os::unix::fs::symlink(&cache, &link).unwrap();
    let started = Instant::now();
    let server = Server::start(&env);
    eprintln!("server ready in {:?}", started.elapsed());
    let mut c = server.connect();

    // Marked spam (both headers, any case, with a score): Junk with $Junk.
    for headers in [
        "Subject: cheap\r\nX-Spam-Flag: YES",
        "Subject: cheap\r\nX-Spam-Flag:  yes ",
        "Subject: cheap\r\nX-Spam-Status: Yes, score=7.1 required=5.0",
    ] {
        let (rcpt, after) = c.transaction("s@example.org", &["alice@test.example"], &msg(headers));
        assert!(rcpt.iter().all(|r| r.code == 250), "{rcpt:?}");
        assert!(after.iter().all(|r| r.code == 250), "{after:?}");
    }
    // Clean (or only looking like spam): INBOX, no keyword.
    for headers in [
        "Subject: hello",
        "Subject: hi\r\nX-Spam-Flag: NO",
        "Subject: hi\r\nX-Spam-Status: No, score=0.3",
        "Subject: hi\r\nX-Spam-Status: Yesterday",
    ] {
        let (_, after) = c.transaction("h@example.org", &["alice@test.example"], &msg(headers));
        assert_eq!(after[0].code, 250, "{after:?}");
    }
    assert_eq!(
        keywords(&env, "alice", "Junk"),
        vec![vec!["$Junk".to_string()]; 3]
    );
    assert_eq!(
        keywords(&env, "alice", "INBOX"),
        vec![Vec::<String>::new(); 4]
    );

    // Settings: bob's entry files into Spam/Caught (created) with $Spam.
    let (_, after) = c.transaction(
        "s@example.org",
        &["bob@test.example"],
        &msg("Subject: x\r\nX-Spam-Flag: YES"),
    );
    assert_eq!(after[0].code, 250, "{after:?}");
    assert_eq!(
        keywords(&env, "bob", "Spam/Caught"),
        vec![vec!["$Spam".to_string()]]
    );
    assert_eq!(count(&env, "bob", "INBOX"), 0);
    drop(c);

    // IMAP APPEND: the mailbox stays the one the client named; the keyword is added.
    let addr = server.imap.unwrap();
    let script = format!(
        r#"
import imaplib
M = imaplib.IMAP4("{ip}", {port})
M.login("alice", "pw-alice")
typ, data = M.append("INBOX", None, None, b"Subject: a\r\nX-Spam-Flag: YES\r\n\r\nx\r\n")
assert typ == "OK", (typ, data)
typ, data = M.append("INBOX", None, None, b"Subject: b\r\n\r\nx\r\n")
assert typ == "OK", (typ, data)
M.logout()
print("ok")
"#,
        ip = addr.ip(),
        port = addr.port()
    );
    let r = python3(&["-c", &script]);
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");
    let inbox = keywords(&env, "alice", "INBOX");
    assert_eq!(inbox.len(), 6, "{inbox:?}");
    let junk = inbox
        .iter()
        .filter(|k| *k == &vec!["$Junk".to_string()])
        .count();
    let clean = inbox.iter().filter(|k| k.is_empty()).count();
    assert_eq!((junk, clean), (1, 5), "{inbox:?}");
    assert_eq!(count(&env, "alice", "Junk"), 3);

    // Both entries healthy, no failures logged.
    let list = env.cli(&["plugin", "list"], b"");
    list.expect_code(0);
    assert!(!list.stdout.contains("UNHEALTHY"), "{list:?}");
    let log = fs::read_to_string(&server.log).unwrap_or_default();
    assert!(!log.contains("filter failed"), "{log}");
}

#[test]
fn python_spam_to_junk_files_spam_into_junk() {
    spam_goes_to_junk(&python_plugin());
}

#[test]
fn js_spam_to_junk_files_spam_into_junk() {
    spam_goes_to_junk(&js_plugin());
}
