//! TLS against the real binary: LMTP STARTTLS (RFC 3207) with a rustls client and with
//! Python's ssl + smtplib, the plaintext-injection rule (RFC 3207 §4.2), certificate
//! reload on SIGHUP without dropping open sessions, the self-signed certificate's
//! generation and reuse, LMTP's connection limit (`421 4.7.0`, `lmtp.max_connections`), and app passwords
//! through the CLI with and without a server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking (see clippy.toml for #[test] functions)

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// [`CONFIG`] with LMTP STARTTLS on.
fn tls_config() -> String {
    CONFIG.replace(
        r#"unix_socket: Some("lmtp.sock"))"#,
        r#"unix_socket: Some("lmtp.sock"), starttls: true)"#,
    )
}

fn setup() -> (Env, Server) {
    let config = tls_config();
    assert!(config.contains("starttls: true"));
    let env = Env::with_config(&config);
    env.add_user("alice");
    let server = Server::start(&env);
    (env, server)
}

/// Accepts any certificate but records what the server presented, so tests pin it by
/// fingerprint (the certificate is self-signed). Handshake signatures are still checked.
#[derive(Debug)]
struct Pin {
    seen: Mutex<Option<Vec<u8>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pin {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap() = Some(end_entity.as_ref().to_vec());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Reads one CRLF line byte by byte, so nothing after it is consumed from the socket.
fn read_line_raw(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "EOF after {line:?}");
        line.push(b[0]);
    }
    String::from_utf8(line).unwrap()
}

/// A TLS session after STARTTLS: the client and the fingerprint the server presented.
struct TlsSession {
    lmtp: Lmtp,
    fingerprint: String,
    version: rustls::ProtocolVersion,
}

/// Connects, LHLO, sends `STARTTLS` followed by `pipelined` in ONE write, expects the
/// 220, then runs the rustls handshake (TLS 1.3, or 1.2 when `tls12`).
fn starttls(server: &Server, pipelined: &[u8], tls12: bool) -> TlsSession {
    let mut tcp = TcpStream::connect(server.lmtp).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.set_nodelay(true).unwrap();
    assert!(read_line_raw(&mut tcp).starts_with("220 "));
    tcp.write_all(b"LHLO client.test\r\n").unwrap();
    let mut lhlo = Vec::new();
    loop {
        let l = read_line_raw(&mut tcp);
        let last = l.as_bytes()[3] == b' ';
        lhlo.push(l);
        if last {
            break;
        }
    }
    assert!(
        lhlo.iter()
            .any(|l| l == "250-STARTTLS\r\n" || l == "250 STARTTLS\r\n"),
        "{lhlo:?}"
    );
    let mut first = b"STARTTLS\r\n".to_vec();
    first.extend_from_slice(pipelined);
    tcp.write_all(&first).unwrap();
    assert_eq!(read_line_raw(&mut tcp), "220 2.0.0 Ready to start TLS\r\n");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pin = Arc::new(Pin {
        seen: Mutex::new(None),
        provider: provider.clone(),
    });
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(pin.clone())
        .with_no_client_auth();
    let name = ServerName::try_from("test.example").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    let version = tls.conn.protocol_version().unwrap();
    let der = pin
        .seen
        .lock()
        .unwrap()
        .clone()
        .expect("no certificate seen");
    TlsSession {
        lmtp: Lmtp::wrap(tls),
        fingerprint: nestbox::tls::fingerprint(&der),
        version,
    }
}

/// Delivers one message to alice over an open TLS session; the first LHLO after the
/// handshake must be answered as an LHLO (not by anything pipelined before it).
fn deliver_over(s: &mut TlsSession, tag: &str) {
    let lhlo = s.lmtp.cmd("LHLO client.test");
    assert_eq!(lhlo.code, 250, "{lhlo:?}");
    assert_eq!(
        lhlo.lines[0], "test.example",
        "not the LHLO reply: {lhlo:?}"
    );
    assert!(
        !lhlo.lines.iter().any(|l| l == "STARTTLS"),
        "STARTTLS advertised over TLS: {lhlo:?}"
    );
    let body = format!("Subject: {tag}\r\n\r\nsecret {tag}\r\n");
    let (rcpt, after) = s.lmtp.transaction(
        "sender@remote.test",
        &["alice@test.example"],
        body.as_bytes(),
    );
    assert_eq!(rcpt[0].code, 250, "{rcpt:?}");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].code, 250, "{after:?}");
}

fn inbox_has(env: &Env, tag: &str) -> bool {
    env.messages("alice", "INBOX").iter().any(|m| {
        let text = String::from_utf8_lossy(m);
        text.contains(&format!("secret {tag}")) && text.contains("with LMTPS")
    })
}

#[test]
fn starttls_rustls_client_delivers_and_pipelined_plaintext_is_discarded() {
    let (env, server) = setup();
    let printed = server
        .tls_fingerprint
        .clone()
        .expect("no tls fingerprint line");
    // Injected after STARTTLS in the same packet: must never be executed (RFC 3207 §4.2).
    let mut s = starttls(
        &server,
        b"NOOP\r\nMAIL FROM:<evil@x.test>\r\nQUIT\r\n",
        false,
    );
    assert_eq!(s.version, rustls::ProtocolVersion::TLSv1_3);
    assert_eq!(s.fingerprint, printed);
    // The session was reset: MAIL before a new LHLO is refused.
    let mail = s.lmtp.cmd("MAIL FROM:<a@b.test>");
    assert_eq!(mail.code, 503, "{mail:?}");
    deliver_over(&mut s, "rustls13");
    let again = s.lmtp.cmd("STARTTLS");
    assert_eq!(again.code, 503, "{again:?}");
    assert_eq!(s.lmtp.cmd("QUIT").code, 221);
    drop(s);
    // TLS 1.2 works too.
    let mut s = starttls(&server, b"", true);
    assert_eq!(s.version, rustls::ProtocolVersion::TLSv1_2);
    deliver_over(&mut s, "rustls12");
    assert!(inbox_has(&env, "rustls13"));
    assert!(inbox_has(&env, "rustls12"));
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        !log.contains("evil@x.test"),
        "injected command reached the session"
    );
}

#[test]
fn starttls_python_smtplib_delivers() {
    let (env, server) = setup();
    let msg = env.path().join("py.eml");
    std::fs::write(&msg, b"Subject: py\r\n\r\nsecret python\r\n").unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lmtp_starttls.py"
    );
    for extra in [None, Some("tls1.2")] {
        let port = server.lmtp.port().to_string();
        let mut args = vec![script, &port, msg.to_str().unwrap(), "alice@test.example"];
        args.extend(extra);
        let run = python3(&args);
        assert_eq!(run.code, 0, "python client failed: {run:#?}");
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert!(lines[0].contains("STARTTLS"), "{lines:?}");
        assert!(!lines[4].contains("STARTTLS"), "{lines:?}");
        assert!(lines.contains(&"starttls 220"), "{lines:?}");
        let fp = format!("fingerprint {}", server.tls_fingerprint.as_deref().unwrap());
        assert!(lines.contains(&fp.as_str()), "{lines:?}");
        let want = if extra.is_some() {
            "version TLSv1.2"
        } else {
            "version TLSv1.3"
        };
        assert!(lines.contains(&want), "{lines:?}");
        assert!(
            lines.contains(&"rcpt 250") && lines.contains(&"data 250"),
            "{lines:?}"
        );
    }
    assert_eq!(
        env.messages("alice", "INBOX")
            .iter()
            .filter(|m| String::from_utf8_lossy(m).contains("secret python"))
            .count(),
        2
    );
}

#[test]
fn starttls_not_offered_by_default() {
    let env = Env::new();
    let server = Server::start(&env);
    let mut c = server.connect();
    let lhlo = c.cmd("LHLO client.test");
    assert!(!lhlo.lines.iter().any(|l| l == "STARTTLS"), "{lhlo:?}");
    assert_eq!(c.cmd("STARTTLS").code, 502);
}

#[test]
fn sighup_reloads_certificate_without_dropping_sessions() {
    let (env, server) = setup();
    let old = server.tls_fingerprint.clone().unwrap();
    let mut open = starttls(&server, b"", false);
    assert_eq!(open.fingerprint, old);

    let (cert, key) = nestbox::tls::generate_pem("test.example").unwrap();
    let dir = env.data_dir().join("tls");
    std::fs::write(dir.join("key.pem"), key).unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    let status = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(server.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    // Wait until the log says the reload happened.
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        let log = std::fs::read_to_string(&server.log).unwrap();
        if log.contains("tls certificate reloaded") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reload in log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The session opened before the reload still works.
    deliver_over(&mut open, "before-reload");
    assert_eq!(open.lmtp.cmd("QUIT").code, 221);
    // A new session sees the new certificate.
    let mut fresh = starttls(&server, b"", false);
    assert_ne!(fresh.fingerprint, old);
    deliver_over(&mut fresh, "after-reload");
    assert!(inbox_has(&env, "before-reload") && inbox_has(&env, "after-reload"));
}

#[test]
fn self_signed_certificate_is_generated_once_and_reused() {
    let env = Env::with_config(&tls_config());
    let first = Server::start(&env);
    let fp = first.tls_fingerprint.clone().unwrap();
    assert!(fp.starts_with("SHA256:"), "{fp}");
    first.stop();
    let key = env.data_dir().join("tls/key.pem");
    let cert = std::fs::read_to_string(env.data_dir().join("tls/cert.pem")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let second = Server::start(&env);
    assert_eq!(second.tls_fingerprint.as_deref(), Some(fp.as_str()));
    let s = starttls(&second, b"", false);
    assert_eq!(s.fingerprint, fp);
}

#[test]
fn lmtp_connections_over_lmtp_max_connections_get_421() {
    let config = CONFIG.replace(
        "unix_socket: Some(\"lmtp.sock\")),",
        "unix_socket: Some(\"lmtp.sock\"), max_connections: 2),",
    );
    assert!(config.contains("max_connections"));
    let env = Env::with_config(&config);
    let server = Server::start(&env);
    let a = server.connect();
    let b = server.connect();
    let mut c = Lmtp::tcp(server.lmtp);
    let refused = c.reply();
    assert_eq!(refused.code, 421, "{refused:?}");
    assert_eq!(refused.enhanced(), "4.7.0");
    assert!(
        refused
            .text()
            .contains("too many LMTP connections (lmtp.max_connections)"),
        "{refused:?}"
    );
    assert!(c.at_eof());
    drop(a);
    // The slot is released when the connection closes.
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        let mut d = Lmtp::tcp(server.lmtp);
        if d.reply().code == 220 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slot never released");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(b);
}

#[test]
fn app_password_cli_add_list_del_with_and_without_server() {
    let env = Env::new();
    env.add_user("alice");
    // Without a server.
    let run = env.cli(&["user", "app-password", "add", "alice", "phone"], b"");
    run.expect_code(0);
    let pw = run
        .stdout
        .lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .to_string();
    assert_eq!(pw.len(), 23, "{run:?}");
    env.cli(&["user", "app-password", "add", "alice", "phone"], b"")
        .expect_code(65);
    // With a server: the same commands through the control socket.
    let server = Server::start(&env);
    env.cli(&["user", "app-password", "add", "alice", "laptop"], b"")
        .expect_code(0);
    let list = env.cli(&["user", "app-password", "list", "alice"], b"");
    list.expect_code(0);
    let labels: Vec<&str> = list
        .stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(labels, ["phone", "laptop"]);
    env.cli(&["user", "app-password", "del", "alice", "phone"], b"")
        .expect_code(0);
    env.cli(&["user", "app-password", "del", "alice", "phone"], b"")
        .expect_code(65);
    env.cli(&["user", "app-password", "list", "nobody"], b"")
        .expect_code(67);
    drop(server);
    let list = env.cli(&["user", "app-password", "list", "alice"], b"");
    assert_eq!(list.stdout.lines().count(), 1, "{list:?}");
    assert!(!list.stdout.contains(&pw));
}

/// One IMAP LOGIN on a fresh plain connection: the tagged reply line.
fn imap_login(addr: std::net::SocketAddr, user: &str, password: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    (&s).write_all(format!("a LOGIN {user} \"{password}\"\r\n").as_bytes())
        .unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line.starts_with("a ") || line.is_empty() {
            return line;
        }
    }
}

#[test]
fn app_passwords_log_in_over_imap_and_revoking_one_ends_only_that_device() {
    let env = Env::with_config(IMAP_CONFIG);
    env.add_user("alice");
    let add = |label: &str| {
        let run = env.cli(&["user", "app-password", "add", "alice", label], b"");
        run.expect_code(0);
        run.stdout
            .lines()
            .next()
            .and_then(|l| l.rsplit(' ').next())
            .unwrap()
            .to_string()
    };
    let phone = add("phone");
    let server = Server::start(&env);
    let laptop = add("laptop");
    let imap = server.imap.unwrap();
    for pw in [phone.as_str(), laptop.as_str(), "pw-alice"] {
        let r = imap_login(imap, "alice", pw);
        assert!(r.starts_with("a OK"), "{r}");
    }
    env.cli(&["user", "app-password", "del", "alice", "phone"], b"")
        .expect_code(0);
    // Revoked at once, although the login cache had just seen it.
    let r = imap_login(imap, "alice", &phone);
    assert!(
        r.starts_with("a NO"),
        "revoked app password still works: {r}"
    );
    for pw in [laptop.as_str(), "pw-alice"] {
        let r = imap_login(imap, "alice", pw);
        assert!(r.starts_with("a OK"), "{r}");
    }
}
