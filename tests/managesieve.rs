//! ManageSieve (RFC 5804) through the real server: transcripts of the raw protocol
//! (tests/managesieve/*.txt, format in tests/common/transcript.rs), an independent client
//! (sievelib, from PyPI, installed by .ci/run into tests/.tools/sievelib), the plaintext
//! policy with STARTTLS, and `nestbox sieve` with and without a running server.
//!
//! Until the Sieve plugin exists, scripts are checked by the built-in lexical checker,
//! which is enough to see a syntax error come back as NO with its line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Env, IO_TIMEOUT, Run, Server};

/// ManageSieve on an ephemeral port, small script limits, a fast throttle.
const CONFIG: &str = r#"(
    hostname: "test.example",
    data_dir: "data",
    imap: (listen: [], tls_listen: []),
    pop3: (listen: [], tls_listen: []),
    managesieve: (listen: ["127.0.0.1:0"], max_script_bytes: 1024, max_scripts: 2),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    auth: (
        argon2: (memory_kib: 64, iterations: 1, parallelism: 1),
        throttle: (base_delay_ms: 10, max_delay_ms: 40),
        plaintext: PLAINTEXT,
    ),
)
"#;

fn config(plaintext: &str) -> String {
    CONFIG.replace("PLAINTEXT", plaintext)
}

macro_rules! transcripts {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn lock_step() {
                let config = super::config("Loopback");
                crate::common::transcript::run("managesieve", stringify!($name), &config, "managesieve", false);
            }
            #[test]
            fn chunked() {
                let config = super::config("Loopback");
                crate::common::transcript::run("managesieve", stringify!($name), &config, "managesieve", true);
            }
        }
    )*};
}

transcripts!(basic, errors, limits);

/// The Python of the venv .ci/run makes, with sievelib in it.
fn sievelib_python() -> PathBuf {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/.tools/sievelib/bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import sievelib.managesieve"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "these tests need sievelib in tests/.tools/sievelib: run .ci/run, or \
         python3 -m venv tests/.tools/sievelib && tests/.tools/sievelib/bin/pip install sievelib"
    );
    py
}

/// Runs a sievelib script with `port` and the server's certificate as arguments.
fn sievelib(script: &str, port: u16, cafile: &std::path::Path) -> Run {
    let out = Command::new(sievelib_python())
        .arg("-c")
        .arg(format!("{SIEVELIB_PRELUDE}\n{script}"))
        .arg(port.to_string())
        .arg(cafile)
        .stdin(Stdio::null())
        .output()
        .expect("run python");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Shared by the sievelib scripts: the port, trust in the server's self-signed
/// certificate, and `check`, which fails with the server's answer.
const SIEVELIB_PRELUDE: &str = r#"
import ssl, sys, warnings
from sievelib import managesieve as m
warnings.simplefilter("ignore")
port, cafile = int(sys.argv[1]), sys.argv[2]
_default_context = ssl.create_default_context
m.ssllib.create_default_context = lambda: _default_context(cafile=cafile)
m.Client.read_timeout = 20

def client():
    return m.Client("127.0.0.1", port, srvhostname="localhost")

def check(c, ok, what):
    if not ok:
        raise SystemExit(f"{what} failed: {c.errcode!r} {c.errmsg!r}")
"#;

fn cert(env: &Env) -> PathBuf {
    env.data_dir().join("tls/cert.pem")
}

#[test]
fn sievelib_uploads_lists_checks_activates_renames_and_deletes() {
    let env = Env::with_config(&config("Loopback"));
    env.add_user("alice");
    let server = Server::start(&env);
    let port = server.addr("managesieve").port();
    let script = r##"
c = client()
check(c, c.connect("alice", "pw-alice", authmech="PLAIN"), "PLAIN login")
assert c.get_implementation() == "nestbox"
assert c.listscripts() == (None, []), c.listscripts()
main = 'require ["fileinto"];\nif header :contains "subject" "x" {\n  fileinto "Junk";\n}\n'
check(c, c.havespace("main", len(main)), "HAVESPACE")
check(c, c.putscript("main", main), "PUTSCRIPT main")
check(c, c.putscript("second", "keep;\n"), "PUTSCRIPT second")
assert c.listscripts() == (None, ["main", "second"]), c.listscripts()
assert c.getscript("main") == main.rstrip("\n"), repr(c.getscript("main"))
check(c, c.checkscript("stop;"), "CHECKSCRIPT")
assert not c.checkscript("if true {\n  keep;\n")
assert c.errmsg.startswith(b"line 1: column 9:"), c.errmsg
assert not c.putscript("broken", "keep;\n}\n")
assert c.errmsg.startswith(b"line 2: column 1:"), c.errmsg
assert c.listscripts() == (None, ["main", "second"]), c.listscripts()
check(c, c.setactive("main"), "SETACTIVE")
assert c.listscripts() == ("main", ["second"]), c.listscripts()
assert not c.deletescript("main")
assert c.errcode == b"ACTIVE", c.errcode
check(c, c.renamescript("main", "filters"), "RENAMESCRIPT")
assert c.listscripts() == ("filters", ["second"]), c.listscripts()
assert not c.renamescript("second", "filters")
assert c.errcode == b"ALREADYEXISTS", c.errcode
assert c.getscript("nope") is None
assert c.errcode == b"NONEXISTENT", c.errcode
# Limits: 2 scripts, 1024 octets.
assert not c.putscript("third", "keep;")
assert c.errcode == b"QUOTA/MAXSCRIPTS", c.errcode
assert not c.havespace("third", 10)
assert c.errcode == b"QUOTA/MAXSCRIPTS", c.errcode
assert not c.putscript("second", "#" * 1025)
assert c.errcode == b"QUOTA/MAXSIZE", c.errcode
assert not c.havespace("second", 1025)
assert c.errcode == b"QUOTA/MAXSIZE", c.errcode
check(c, c.setactive(""), "SETACTIVE \"\"")
check(c, c.deletescript("second"), "DELETESCRIPT")
c.logout()

c = client()
check(c, c.connect("alice", "pw-alice", authmech="LOGIN"), "LOGIN login")
assert c.listscripts() == (None, ["filters"]), c.listscripts()
c.logout()

c = client()
assert not c.connect("alice", "wrong", authmech="PLAIN")
print("ok")
"##;
    let r = sievelib(script, port, &cert(&env));
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");
    // The CLI through the control socket sees what the client left.
    let list = env.cli(&["sieve", "list", "alice"], b"");
    list.expect_code(0);
    let want = "require [\"fileinto\"];\r\nif header :contains \"subject\" \"x\" {\r\n  fileinto \"Junk\";\r\n}\r\n";
    assert_eq!(list.stdout, format!("filters\t{}\n", want.len()));
    let get = env.cli(&["sieve", "get", "alice", "filters"], b"");
    get.expect_code(0);
    assert_eq!(get.stdout, want);
}

/// A raw connection: reads the greeting up to its OK.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn connect(port: u16) -> (Raw, Vec<String>) {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut raw = Raw {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        };
        let greeting = raw.until_response();
        (raw, greeting)
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.reader.read_line(&mut l).unwrap();
        l.trim_end_matches("\r\n").to_string()
    }

    /// Lines up to and including the first OK/NO/BYE.
    fn until_response(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            let done = l.is_empty() || ["OK", "NO", "BYE"].iter().any(|p| l.starts_with(p));
            lines.push(l);
            if done {
                return lines;
            }
        }
    }

    fn cmd(&mut self, line: &str) -> Vec<String> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.until_response()
    }
}

/// Roundcube's managesieve plugin marks the line of a refused script in its raw editor
/// only when the NO text has `line N:` (its pattern `/line (\d+):(.*)/`, Pigeonhole's
/// format); `line 3, column 1:` left the line unmarked.
#[test]
fn putscript_error_names_the_line_as_roundcube_reads_it() {
    let env = Env::with_config(&config("Loopback"));
    env.add_user("alice");
    let server = Server::start(&env);
    let (mut raw, _) = Raw::connect(server.addr("managesieve").port());
    assert_eq!(
        raw.cmd("AUTHENTICATE \"PLAIN\" \"AGFsaWNlAHB3LWFsaWNl\""),
        ["OK \"Logged in\""]
    );
    assert_eq!(
        raw.cmd("PUTSCRIPT \"roundcube\" {15+}\r\nkeep;\r\nkeep;\r\n}"),
        ["NO \"line 3: column 1: unmatched '}'\""]
    );
}

#[test]
fn plaintext_policy_and_starttls() {
    let env = Env::with_config(&config("Never"));
    env.add_user("alice");
    let server = Server::start(&env);
    let port = server.addr("managesieve").port();
    // Without TLS no mechanism is offered and AUTHENTICATE is refused (RFC 5804 §1.3
    // ENCRYPT-NEEDED), even on loopback.
    let (mut raw, greeting) = Raw::connect(port);
    assert!(
        greeting.contains(&"\"SASL\" \"\"".to_string()),
        "{greeting:?}"
    );
    assert!(
        greeting.contains(&"\"STARTTLS\"".to_string()),
        "{greeting:?}"
    );
    assert_eq!(
        raw.cmd("AUTHENTICATE \"PLAIN\" \"AGFsaWNlAHB3LWFsaWNl\""),
        ["NO (ENCRYPT-NEEDED) \"Authentication without TLS is not allowed; use STARTTLS\""]
    );
    // STARTTLS, then the capabilities again (§2.2): mechanisms offered, STARTTLS gone.
    let script = r#"
c = client()
assert not c.connect("alice", "pw-alice", authmech="PLAIN")
c = client()
check(c, c.connect("alice", "pw-alice", starttls=True, authmech="PLAIN"), "login after STARTTLS")
assert c.get_sasl_mechanisms() == ["PLAIN", "LOGIN"], c.get_sasl_mechanisms()
assert not c.has_tls_support()
check(c, c.putscript("main", "keep;"), "PUTSCRIPT over TLS")
check(c, c.setactive("main"), "SETACTIVE over TLS")
c.logout()
print("ok")
"#;
    let r = sievelib(script, port, &cert(&env));
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");
    let list = env.cli(&["sieve", "list", "alice"], b"");
    assert_eq!(list.stdout, "main\t5\tactive\n", "{list:?}");
}

#[test]
fn cli_sieve_with_and_without_a_server() {
    let env = Env::with_config(&config("Loopback"));
    env.add_user("alice");
    let file = env.path().join("vacation.sieve");
    std::fs::write(&file, "keep;\n").unwrap();
    let file = file.to_str().unwrap();
    for running in [true, false] {
        let server = running.then(|| Server::start(&env));
        env.cli(&["sieve", "put", "alice", "main", file], b"")
            .expect_code(0);
        env.cli(&["sieve", "put", "alice", "other"], b"discard;")
            .expect_code(0);
        env.cli(&["sieve", "activate", "alice", "main"], b"")
            .expect_code(0);
        let list = env.cli(&["sieve", "list", "alice"], b"");
        assert_eq!(list.stdout, "main\t6\tactive\nother\t8\n", "{list:?}");
        let get = env.cli(&["sieve", "get", "alice", "other"], b"");
        assert_eq!(get.stdout, "discard;");
        // The active script cannot be deleted; the limits and the lexical check apply.
        let del = env.cli(&["sieve", "del", "alice", "main"], b"");
        del.expect_code(65);
        assert!(del.stderr.contains("active"), "{del:?}");
        let third = env.cli(&["sieve", "put", "alice", "third"], b"keep;");
        third.expect_code(65);
        assert!(third.stderr.contains("at most 2 scripts"), "{third:?}");
        let broken = env.cli(&["sieve", "put", "alice", "other"], b"if true {\n");
        broken.expect_code(65);
        assert!(broken.stderr.contains("line 1: column 9"), "{broken:?}");
        env.cli(&["sieve", "put", "bob", "x"], b"keep;")
            .expect_code(67);
        env.cli(&["sieve", "get", "alice", "nope"], b"")
            .expect_code(65);
        // Deactivate, then delete both.
        env.cli(&["sieve", "activate", "alice"], b"").expect_code(0);
        env.cli(&["sieve", "del", "alice", "main"], b"")
            .expect_code(0);
        env.cli(&["sieve", "del", "alice", "other"], b"")
            .expect_code(0);
        assert_eq!(env.cli(&["sieve", "list", "alice"], b"").stdout, "");
        drop(server);
    }
}
