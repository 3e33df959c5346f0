//! ACME (RFC 8555) end to end against pebble, the test CA (Debian package `pebble`,
//! installed by .ci/run), started here on free loopback ports with its mock DNS
//! (`pebble-challtestsrv`) answering every A query with 127.0.0.1. Pebble really
//! validates: TLS-ALPN-01 (RFC 8737) on the server's IMAPS listener, HTTP-01 on its HTTP
//! listener. Checked: a certificate for a test name is issued and served on IMAPS (a
//! rustls client trusting only pebble's root verifies it for that name); it is kept and
//! reused across a restart; `nestbox acme renew` gets a new one (another serial) served
//! to new connections; with the CA gone, a forced renewal fails, the old certificate
//! stays and the log says why; `/metrics` shows the ACME certificate's expiry.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking (see clippy.toml for #[test] functions)

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Env, Server};
use rustls::pki_types::{CertificateDer, ServerName};

/// The name the certificate is issued for; pebble's mock DNS resolves it to 127.0.0.1.
const NAME: &str = "mail.nestbox.test";

/// A free loopback port (TCP, and UDP too when `udp`): bound, read, released.
fn free_port(udp: bool) -> u16 {
    // The kernel may hand out a port again once its probe socket is closed: a port this
    // process gave away already is skipped, or pebble's DNS and ACME listeners could
    // be told the same one.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..50 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap();
        if given.contains(&port) {
            continue;
        }
        if !udp || UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port");
}

fn which(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{tool}` not found: install the Debian package `pebble` (.ci/run does); \
                 this test needs the pebble test CA"
            )
        })
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pebble and its mock DNS, on free loopback ports.
struct Pebble {
    ca: Option<Proc>,
    _dns: Proc,
    /// The ACME directory URL.
    directory: String,
    /// PEM of the certificate pebble's ACME API serves (what the server must trust to
    /// talk to it: `acme.ca_roots`).
    api_roots: PathBuf,
    /// Pebble's issuing root (from its management endpoint), DER.
    root: CertificateDer<'static>,
    log: PathBuf,
}

impl Pebble {
    /// Starts the CA; it validates challenges on `tls_port` (TLS-ALPN-01) and
    /// `http_port` (HTTP-01) of 127.0.0.1.
    fn start(dir: &Path, tls_port: u16, http_port: u16) -> Pebble {
        let pebble = which("pebble");
        let challtestsrv = which("pebble-challtestsrv");
        let (api, management, dns, dns_management) = (
            free_port(false),
            free_port(false),
            free_port(true),
            free_port(false),
        );
        // The API's own certificate: self-signed for 127.0.0.1.
        let (cert, key) =
            nestbox::tls::generate_pem_for("localhost", &["127.0.0.1".parse().unwrap()]).unwrap();
        let api_roots = dir.join("pebble-api.pem");
        std::fs::write(&api_roots, &cert).unwrap();
        std::fs::write(dir.join("pebble-api.key"), &key).unwrap();
        let config = format!(
            r#"{{"pebble": {{
                "listenAddress": "127.0.0.1:{api}",
                "managementListenAddress": "127.0.0.1:{management}",
                "certificate": "{cert}",
                "privateKey": "{key}",
                "httpPort": {http_port},
                "tlsPort": {tls_port},
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }}}}"#,
            cert = api_roots.display(),
            key = dir.join("pebble-api.key").display(),
        );
        std::fs::write(dir.join("pebble.json"), config).unwrap();

        let dns_log = std::fs::File::create(dir.join("challtestsrv.log")).unwrap();
        let dns_proc = Proc(
            Command::new(challtestsrv)
                .args([
                    "-defaultIPv4",
                    "127.0.0.1",
                    "-defaultIPv6",
                    "",
                    "-dns01",
                    &format!("127.0.0.1:{dns}"),
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                    "-management",
                    &format!("127.0.0.1:{dns_management}"),
                ])
                .stdout(dns_log.try_clone().unwrap())
                .stderr(dns_log)
                .spawn()
                .expect("start pebble-challtestsrv"),
        );
        let log = dir.join("pebble.log");
        let ca_log = std::fs::File::create(&log).unwrap();
        let ca = Proc(
            Command::new(pebble)
                .arg("-config")
                .arg(dir.join("pebble.json"))
                .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
                // Validate at once, no random nonce rejections, a fresh authorization for
                // every order (so each renewal is validated again).
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .env("PEBBLE_AUTHZREUSE", "0")
                .stdout(ca_log.try_clone().unwrap())
                .stderr(ca_log)
                .spawn()
                .expect("start pebble"),
        );
        for port in [api, management, dns_management] {
            wait_for_port(port, &log);
        }
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "20", "--cacert"])
            .arg(&api_roots)
            .arg(format!("https://127.0.0.1:{management}/roots/0"))
            .output()
            .expect("curl");
        assert!(out.status.success(), "pebble's root: {out:?}");
        let root = rustls_pemfile::certs(&mut out.stdout.as_slice())
            .next()
            .expect("a root certificate")
            .unwrap();
        Pebble {
            ca: Some(ca),
            _dns: dns_proc,
            directory: format!("https://127.0.0.1:{api}/dir"),
            api_roots,
            root,
            log,
        }
    }

    fn stop_ca(&mut self) {
        self.ca.take();
    }
}

fn wait_for_port(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "pebble did not listen on {port}; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Connects to IMAPS as a client trusting only `root`, for `NAME`; returns the leaf the
/// server sent (verified) after reading the IMAP greeting through the session.
fn served_leaf(addr: SocketAddr, root: &CertificateDer<'static>) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(NAME).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    let mut greeting = String::new();
    BufReader::new(&mut tls)
        .read_line(&mut greeting)
        .map_err(|e| e.to_string())?;
    if !greeting.starts_with("* OK") {
        return Err(format!("greeting {greeting:?}"));
    }
    let _ = tls.write_all(b"a LOGOUT\r\n");
    let _ = tls.read(&mut [0u8; 256]);
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate")?;
    Ok(leaf.as_ref().to_vec())
}

/// The body of a plain HTTP GET.
fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {NAME}\r\n\r\n").unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    all.split_once("\r\n\r\n").unwrap().1.to_string()
}

fn serial(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.raw_serial_as_string()
}

/// Waits until IMAPS serves a certificate for `NAME` that pebble's root verifies.
fn wait_for_issued(server: &Server, pebble: &Pebble) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match served_leaf(server.addr("imaps"), &pebble.root) {
            Ok(leaf) => return leaf,
            Err(e) if Instant::now() > deadline => panic!(
                "no certificate from pebble within 90 s ({e}); server log:\n{}\npebble log:\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default(),
                std::fs::read_to_string(&pebble.log).unwrap_or_default()
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

fn config(pebble: &Pebble, imaps: u16, http: u16, challenge: &str) -> String {
    format!(
        r#"(
    hostname: "{NAME}",
    data_dir: "data",
    imap: (listen: [], tls_listen: ["127.0.0.1:{imaps}"]),
    pop3: (listen: [], tls_listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    managesieve: (listen: []),
    http: (listen: ["127.0.0.1:{http}"]),
    acme: (
        names: ["{NAME}"],
        directory: "{directory}",
        contact: ["mailto:admin@nestbox.test"],
        challenge: {challenge},
        ca_roots: Some("{roots}"),
    ),
)
"#,
        directory = pebble.directory,
        roots = pebble.api_roots.display(),
    )
}

/// The whole life of an ACME certificate with one challenge type.
fn issue_renew_and_fail(challenge: &str) {
    let (imaps, http) = (free_port(false), free_port(false));
    let dir = tempfile::tempdir().unwrap();
    let mut pebble = Pebble::start(dir.path(), imaps, http);
    let env = Env::with_config(&config(&pebble, imaps, http, challenge));

    // Issued at start (no certificate kept yet) and served on IMAPS.
    let server = Server::start(&env);
    let first = wait_for_issued(&server, &pebble);
    let kept = env.data_dir().join("acme/certificate.pem");
    assert!(kept.exists());
    assert!(env.data_dir().join("acme/account.pem").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.contains("acme: certificate for mail.nestbox.test issued by"),
        "{log}"
    );

    // Forced renewal: a new certificate (another serial) for new connections.
    let run = env.cli(&["acme", "renew"], b"");
    run.expect_code(0);
    assert!(
        run.stdout.starts_with("renewed: mail.nestbox.test serial "),
        "{}",
        run.stdout
    );
    let second = served_leaf(server.addr("imaps"), &pebble.root).unwrap();
    assert_ne!(serial(&second), serial(&first));
    assert!(run.stdout.contains(&serial(&second)), "{}", run.stdout);
    // /metrics reports the served certificate's expiry.
    let (_, cert) = x509_parser::parse_x509_certificate(&second).unwrap();
    let expiry = format!(
        "nestbox_tls_certificate_expiry_seconds {}",
        cert.validity().not_after.timestamp()
    );
    let metrics = http_get(server.addr("http"), "/metrics");
    assert!(
        metrics.lines().any(|l| l == expiry),
        "{expiry} in\n{metrics}"
    );

    // The CA goes away: a forced renewal fails, the old certificate stays, one line says
    // which names, which CA, and why.
    pebble.stop_ca();
    let run = env.cli(&["acme", "renew"], b"");
    run.expect_code(75);
    assert!(!run.stderr.is_empty());
    let still = served_leaf(server.addr("imaps"), &pebble.root).unwrap();
    assert_eq!(serial(&still), serial(&second));
    let log = std::fs::read_to_string(&server.log).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("not renewed, keeping the current one"))
        .unwrap_or_else(|| panic!("no failure line in the log:\n{log}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains(NAME), "{line}");
    assert!(line.contains(&pebble.directory), "{line}");
    server.stop();

    // Kept across a restart (the CA is still down: nothing is ordered).
    let server = Server::start(&env);
    let again = served_leaf(server.addr("imaps"), &pebble.root).unwrap();
    assert_eq!(serial(&again), serial(&second));
    server.stop();
}

#[test]
fn acme_tls_alpn01_issue_renew_and_ca_failure() {
    issue_renew_and_fail("TlsAlpn01");
}

#[test]
fn acme_http01_issue_renew_and_ca_failure() {
    issue_renew_and_fail("Http01");
}
