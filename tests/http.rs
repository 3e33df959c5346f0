//! The HTTP listener through the real server: Thunderbird autoconfig parsed and checked
//! against the bound ports, Autodiscover POX, the Apple profile parsed as a plist (by
//! Python's plistlib), `/metrics` parsed as Prometheus text with counters that move,
//! `/healthz`, limits, HTTPS with the server certificate, and `nestbox dns-records`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking (see clippy.toml for #[test] functions)

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use common::{Env, IO_TIMEOUT, Server};

const CONFIG: &str = r#"(
    hostname: "mail.test.example",
    domains: ["test.example", "other.example"],
    data_dir: "data",
    imap: (listen: ["127.0.0.1:0"], tls_listen: ["127.0.0.1:0"]),
    pop3: (listen: ["127.0.0.1:0"], tls_listen: ["127.0.0.1:0"]),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: Some("lmtp.sock")),
    managesieve: (listen: []),
    http: (listen: ["127.0.0.1:0"], tls_listen: ["127.0.0.1:0"], max_request: 2048),
    auth: (
        argon2: (memory_kib: 64, iterations: 1, parallelism: 1),
        throttle: (base_delay_ms: 10, max_delay_ms: 40),
    ),
    limits: (max_message_size: 100000),
)
"#;

/// One HTTP/1.1 exchange on a fresh connection: (status, headers, body).
fn http(addr: SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(request).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read response");
    split_response(&all)
}

fn split_response(all: &[u8]) -> (u16, String, Vec<u8>) {
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(all)));
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = head[9..12].parse().expect("status code");
    (status, head, all[end + 4..].to_vec())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: autoconfig.test.example\r\n\r\n").as_bytes(),
    )
}

/// Runs a Python script with `input` on stdin; returns stdout, panics on failure.
fn python(script: &str, input: &[u8]) -> String {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn start() -> (Env, Server) {
    let env = Env::with_config(CONFIG);
    let server = Server::start(&env);
    (env, server)
}

#[test]
fn autoconfig_lists_the_bound_tls_ports() {
    let (_env, server) = start();
    let http = server.addr("http");
    for path in [
        "/mail/config-v1.1.xml",
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a%40test.example",
    ] {
        let (status, head, body) = get(http, path);
        assert_eq!(status, 200, "{head}");
        assert!(head.contains("Content-Type: application/xml"), "{head}");
        // Parsed by an independent XML parser; one line per incoming server.
        let servers = python(
            "import sys, xml.etree.ElementTree as ET\n\
             root = ET.fromstring(sys.stdin.buffer.read())\n\
             p = root.find('emailProvider')\n\
             print(' '.join(d.text for d in p.findall('domain')))\n\
             for s in p.findall('incomingServer'):\n\
             \x20   print(s.get('type'), s.find('hostname').text, s.find('port').text,\n\
             \x20         s.find('socketType').text, s.find('authentication').text,\n\
             \x20         s.find('username').text)\n",
            &body,
        );
        let port = |p: &str| server.addr(p).port();
        let expected = format!(
            "test.example other.example\n\
             imap mail.test.example {} SSL password-cleartext %EMAILLOCALPART%\n\
             pop3 mail.test.example {} SSL password-cleartext %EMAILLOCALPART%\n\
             imap mail.test.example {} STARTTLS password-cleartext %EMAILLOCALPART%\n\
             pop3 mail.test.example {} STARTTLS password-cleartext %EMAILLOCALPART%\n",
            port("imaps"),
            port("pop3s"),
            port("imap"),
            port("pop3"),
        );
        assert_eq!(servers, expected);
    }
}

#[test]
fn autodiscover_answers_a_pox_request() {
    let (_env, server) = start();
    let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
        <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\
        <Request><EMailAddress>bob@Other.Example</EMailAddress>\
        <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>\
        </Request></Autodiscover>";
    let req = format!(
        "POST /Autodiscover/Autodiscover.xml HTTP/1.1\r\nHost: autodiscover.other.example\r\n\
         Content-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, head, resp) = http(server.addr("http"), req.as_bytes());
    assert_eq!(status, 200, "{head}");
    let protocols = python(
        "import sys, xml.etree.ElementTree as ET\n\
         ns = {'r': 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a'}\n\
         root = ET.fromstring(sys.stdin.buffer.read())\n\
         for p in root.findall('r:Response/r:Account/r:Protocol', ns):\n\
         \x20   print(p.find('r:Type', ns).text, p.find('r:Server', ns).text, p.find('r:Port', ns).text,\n\
         \x20         p.find('r:LoginName', ns).text, p.find('r:SSL', ns).text)\n",
        &resp,
    );
    let first = protocols.lines().next().unwrap_or("");
    assert_eq!(
        first,
        format!(
            "IMAP mail.test.example {} bob on",
            server.addr("imaps").port()
        )
    );
    assert_eq!(protocols.lines().count(), 4, "{protocols}");
    // An address of a domain we do not serve, and a GET.
    let stranger = req.replace("bob@Other.Example", "bob@elsewhere.test");
    assert_eq!(http(server.addr("http"), stranger.as_bytes()).0, 404);
    assert_eq!(
        get(server.addr("http"), "/autodiscover/autodiscover.xml").0,
        405
    );
}

#[test]
fn mobileconfig_is_a_valid_plist() {
    let (_env, server) = start();
    let (status, head, body) = get(
        server.addr("http"),
        "/profile.mobileconfig?address=carol%40test.example",
    );
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("application/x-apple-aspen-config"), "{head}");
    let parsed = python(
        "import sys, plistlib\n\
         p = plistlib.loads(sys.stdin.buffer.read())\n\
         a = p['PayloadContent'][0]\n\
         print(p['PayloadType'], a['PayloadType'], a['EmailAddress'], a['IncomingMailServerHostName'],\n\
         \x20     a['IncomingMailServerPortNumber'], a['IncomingMailServerUseSSL'], a['IncomingMailServerUsername'])\n",
        &body,
    );
    assert_eq!(
        parsed.trim(),
        format!(
            "Configuration com.apple.mail.managed carol@test.example mail.test.example {} True carol",
            server.addr("imaps").port()
        )
    );
    assert_eq!(
        get(
            server.addr("http"),
            "/profile.mobileconfig?address=x%40nowhere.test"
        )
        .0,
        404
    );
    // Markup in the address never reaches the XML.
    assert_eq!(
        get(
            server.addr("http"),
            "/profile.mobileconfig?address=%3Cb%3E%40test.example"
        )
        .0,
        404
    );
}

/// `name{labels} value` lines of a Prometheus text exposition, checked for syntax.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            assert!(
                rest.starts_with("HELP ") || rest.starts_with("TYPE "),
                "bad comment: {line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels: {line}");
        }
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        out.insert(series.to_string(), v);
    }
    out
}

fn metrics(server: &Server) -> HashMap<String, f64> {
    let (status, head, body) = get(server.addr("http"), "/metrics");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    parse_prometheus(&String::from_utf8(body).unwrap())
}

fn imap_session(addr: SocketAddr, lines: &[&str]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    for l in lines {
        s.write_all(l.as_bytes()).unwrap();
        s.write_all(b"\r\n").unwrap();
    }
    let mut all = String::new();
    let _ = s.read_to_string(&mut all);
    all
}

#[test]
fn metrics_parse_and_move_with_traffic() {
    let (env, server) = start();
    env.add_user("dave");
    let before = metrics(&server);
    let up: Vec<_> = before
        .iter()
        .filter(|(k, _)| k.starts_with("nestbox_listener_up{"))
        .collect();
    assert_eq!(up.len(), 7, "{up:?}");
    assert!(up.iter().all(|(_, v)| **v == 1.0));
    assert!(before["nestbox_tls_certificate_expiry_seconds"] > 1.7e9);
    assert!(before["nestbox_store_file_bytes"] > 0.0);

    let mut lmtp = server.connect();
    let (rcpt, data) = lmtp.transaction(
        "a@test.example",
        &["dave@test.example", "nobody@test.example"],
        b"Subject: m\r\n\r\nhello\r\n",
    );
    assert_eq!((rcpt[0].code, rcpt[1].code), (250, 550), "{rcpt:?}");
    assert_eq!(data.len(), 1, "{data:?}");
    let out = imap_session(
        server.addr("imap"),
        &[
            "a LOGIN dave pw-dave",
            "b SELECT INBOX",
            "c FETCH 1 BODY[]",
            "d LOGIN dave nope",
            "e LOGOUT",
        ],
    );
    assert!(out.contains("a OK"), "{out}");
    let bad = imap_session(server.addr("imap"), &["a LOGIN dave wrong", "b LOGOUT"]);
    assert!(bad.contains("a NO"), "{bad}");

    let after = metrics(&server);
    let delta =
        |k: &str| after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0);
    assert_eq!(delta("nestbox_logins_total{outcome=\"ok\"}"), 1.0);
    assert_eq!(delta("nestbox_logins_total{outcome=\"failed\"}"), 1.0);
    assert_eq!(delta("nestbox_deliveries_total{outcome=\"accepted\"}"), 1.0);
    assert!(delta("nestbox_connections_total{protocol=\"imap\"}") >= 2.0);
    assert!(delta("nestbox_connections_total{protocol=\"http\"}") >= 1.0);
    assert!(delta("nestbox_connections_total{protocol=\"lmtp\"}") >= 1.0);
    assert_eq!(
        after["nestbox_command_duration_seconds_count{protocol=\"imap\",command=\"FETCH\"}"],
        1.0
    );
    assert_eq!(
        after["nestbox_command_duration_seconds_bucket{protocol=\"imap\",command=\"LOGIN\",le=\"+Inf\"}"],
        after["nestbox_command_duration_seconds_count{protocol=\"imap\",command=\"LOGIN\"}"],
    );
    assert!(after.contains_key(
        "nestbox_command_duration_seconds_count{protocol=\"lmtp\",command=\"DATA\"}"
    ));
    // The one message is still loose: reading it decompressed no pack.
    assert_eq!(after["nestbox_pack_decompressions_total"], 0.0);
}

#[test]
fn healthz_limits_and_https() {
    let (_env, server) = start();
    let (status, _, body) = get(server.addr("http"), "/healthz");
    assert_eq!((status, body.as_slice()), (200, b"ok\n".as_slice()));
    assert_eq!(get(server.addr("http"), "/nothing").0, 404);
    // Over max_request (2048): 413 without reading the rest.
    let big = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "x".repeat(4000));
    assert_eq!(http(server.addr("http"), big.as_bytes()).0, 413);
    assert_eq!(
        http(
            server.addr("http"),
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .0,
        411
    );
    assert_eq!(
        http(server.addr("http"), b"\x16\x03\x01garbage\r\n\r\n").0,
        400
    );
    // HTTPS with the server's certificate (curl, trusting nothing: -k).
    let url = format!("https://{}/healthz", server.addr("https"));
    let out = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "20", &url])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{out:?}");
}

#[test]
fn dns_records_name_the_configured_ports() {
    let env = Env::with_config(
        r#"(
        hostname: "mail.example.org",
        domains: ["example.org"],
        data_dir: "data",
        imap: (listen: ["0.0.0.0:143"], tls_listen: ["0.0.0.0:993"]),
        pop3: (listen: [], tls_listen: []),
        http: (listen: ["0.0.0.0:80"], tls_listen: ["0.0.0.0:443"]),
    )"#,
    );
    let run = env.cli(&["dns-records"], b"");
    run.expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with(';')).collect();
    assert_eq!(
        lines,
        [
            "_imaps._tcp.example.org. 3600 IN SRV 0 1 993 mail.example.org.",
            "_pop3s._tcp.example.org. 3600 IN SRV 0 0 0 .",
            "_imap._tcp.example.org. 3600 IN SRV 0 0 0 .",
            "_pop3._tcp.example.org. 3600 IN SRV 0 0 0 .",
            "autoconfig.example.org. 3600 IN CNAME mail.example.org.",
            "autodiscover.example.org. 3600 IN CNAME mail.example.org.",
            "_autodiscover._tcp.example.org. 3600 IN SRV 0 1 443 mail.example.org.",
        ]
    );
}
