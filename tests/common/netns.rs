//! A network namespace joined to the host by a veth pair with a private /30
//! (10.213.A.B, A from the test process's pid), so a test can run a client from an
//! address that is not loopback; and the line client (tests/fixtures/line_client.py),
//! run inside one or on the host. Namespaces and links are named after the pid and a
//! counter and removed on drop, also when the test fails. Needs root and iproute2's `ip`.

use std::net::SocketAddr;
use std::process::Command;

pub const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/line_client.py");

/// A network namespace joined to the host by a veth pair; removed on drop.
pub struct Netns {
    pub name: String,
    host_if: String,
    /// The host side's address (the server binds here).
    pub host: String,
    /// The namespace side's address (the client's).
    pub inside: String,
}

pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("`ip` (iproute2) is needed to test non-loopback clients: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    pub fn new() -> Netns {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // 10.213.A.B/30: A from the pid, B picks one of 64 /30s for this test.
        let a = pid % 250;
        let b = (n % 64) * 4;
        let ns = Netns {
            name: format!("nbx{pid}-{n}"),
            host_if: format!("nbh{}x{n}", pid % 100_000),
            host: format!("10.213.{a}.{}", b + 1),
            inside: format!("10.213.{a}.{}", b + 2),
        };
        let peer_if = format!("nbn{}x{n}", pid % 100_000);
        let setup = || -> Result<(), String> {
            ip(&["netns", "add", &ns.name])?;
            ip(&[
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer_if,
            ])?;
            ip(&["link", "set", &peer_if, "netns", &ns.name])?;
            ip(&[
                "addr",
                "add",
                &format!("{}/30", ns.host),
                "dev",
                &ns.host_if,
            ])?;
            ip(&["link", "set", &ns.host_if, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &ns.name, "ip"];
                all.extend_from_slice(args);
                ip(&all)
            };
            inside(&["addr", "add", &format!("{}/30", ns.inside), "dev", &peer_if])?;
            inside(&["link", "set", &peer_if, "up"])?;
            inside(&["link", "set", "lo", "up"])?;
            Ok(())
        };
        if let Err(e) = setup() {
            drop(ns);
            panic!(
                "cannot create a network namespace with a veth pair ({e}); these tests need \
                 root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2's `ip`"
            );
        }
        ns
    }

    /// Runs a Python script (a test fixture) inside the namespace; returns its stdout.
    pub fn python(&self, script: &str, args: &[&str]) -> String {
        python(Some(&self.name), script, args)
    }

    /// Runs the line client inside the namespace; returns its transcript.
    pub fn client(&self, mode: &str, addr: SocketAddr, cmds: &[&str]) -> String {
        run_client(Some(&self.name), mode, addr, cmds)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both.
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Runs tests/fixtures/line_client.py, in a namespace if given; returns its transcript.
pub fn run_client(netns: Option<&str>, mode: &str, addr: SocketAddr, cmds: &[&str]) -> String {
    let port = addr.port().to_string();
    let host = addr.ip().to_string();
    let mut args = vec![mode, &host, &port];
    args.extend_from_slice(cmds);
    python(netns, CLIENT, &args)
}

/// Runs `python3 script args`, in a namespace if given; returns its stdout, panicking
/// with its output when it fails.
pub fn python(netns: Option<&str>, script: &str, args: &[&str]) -> String {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "python3"]);
            c
        }
        None => Command::new("python3"),
    };
    let out = cmd
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 (and `ip` for a namespace) is needed ({e})"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
