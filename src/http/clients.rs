//! Client autoconfiguration, as pure functions of [`MailSettings`]: Thunderbird's
//! autoconfig XML, Microsoft's Autodiscover POX answer, Apple's `.mobileconfig` profile,
//! and the DNS records of RFC 6186 / RFC 8314 that `nestbox dns-records` prints.
//!
//! Everything taken from the config or a request is XML-escaped ([`escape`]).
//! Outgoing servers are not described: nestbox does not accept mail for submission.

use std::fmt::Write as _;

use crate::config::{ClientUsername, Config};

/// How a listener is secured, as clients are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (993/995 style, RFC 8314 §3.3: preferred).
    Implicit,
    /// Plain text upgraded with STARTTLS / STLS.
    StartTls,
}

/// The mail protocols clients are configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailProtocol {
    Imap,
    Pop3,
}

/// One way to reach the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub protocol: MailProtocol,
    pub security: Security,
    pub port: u16,
}

/// What every description needs: the server's name, the domains, the endpoints (best
/// first) and the user-name style.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub hostname: String,
    pub domains: Vec<String>,
    pub endpoints: Vec<Endpoint>,
    pub username: ClientUsername,
}

/// A mail address split at its last `@`, its domain one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub local: String,
    pub domain: String,
}

impl Address {
    pub fn full(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

impl MailSettings {
    /// From the config, with the ports of the listeners as bound (`bound(proto)` gives the
    /// port of the first listener of `imaps`, `imap`, `pop3s`, `pop3`), so ephemeral
    /// ports are described as they really are.
    pub fn new(config: &Config, bound: impl Fn(&str) -> Option<u16>) -> MailSettings {
        let mut endpoints = Vec::new();
        for (name, protocol, security) in [
            ("imaps", MailProtocol::Imap, Security::Implicit),
            ("pop3s", MailProtocol::Pop3, Security::Implicit),
            ("imap", MailProtocol::Imap, Security::StartTls),
            ("pop3", MailProtocol::Pop3, Security::StartTls),
        ] {
            if let Some(port) = bound(name).filter(|p| *p != 0) {
                endpoints.push(Endpoint {
                    protocol,
                    security,
                    port,
                });
            }
        }
        MailSettings {
            hostname: config.hostname.clone(),
            domains: config.mail_domains(),
            endpoints,
            username: config.http.username,
        }
    }

    /// The configured ports (not the bound ones): for the CLI, which runs without a server.
    pub fn configured(config: &Config) -> MailSettings {
        MailSettings::new(config, |name| {
            let list = match name {
                "imaps" => &config.imap.tls_listen,
                "imap" => &config.imap.listen,
                "pop3s" => &config.pop3.tls_listen,
                "pop3" => &config.pop3.listen,
                _ => return None,
            };
            list.first().map(|a| a.port())
        })
    }

    /// `text` as an address in one of our domains, or `None`.
    pub fn address(&self, text: &str) -> Option<Address> {
        let text = text.trim();
        let (local, domain) = text.rsplit_once('@')?;
        let ok_local = !local.is_empty()
            && local.len() <= 64
            && local
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"<>\"\\@&'".contains(&b));
        let domain = self
            .domains
            .iter()
            .find(|d| d.eq_ignore_ascii_case(domain))?;
        ok_local.then(|| Address {
            local: local.to_string(),
            domain: domain.clone(),
        })
    }

    fn login_name(&self, a: &Address) -> String {
        match self.username {
            ClientUsername::LocalPart => a.local.clone(),
            ClientUsername::Address => a.full(),
        }
    }

    /// Thunderbird autoconfig (the "config-v1.1.xml" format of Mozilla's ISPDB), with
    /// `%EMAILLOCALPART%` or `%EMAILADDRESS%` for the user name.
    pub fn autoconfig(&self) -> String {
        let host = escape(&self.hostname);
        let username = match self.username {
            ClientUsername::LocalPart => "%EMAILLOCALPART%",
            ClientUsername::Address => "%EMAILADDRESS%",
        };
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.push_str("<clientConfig version=\"1.1\">\n");
        let first = self.domains.first().map(String::as_str).unwrap_or("");
        let _ = writeln!(x, "  <emailProvider id=\"{}\">", escape(first));
        for d in &self.domains {
            let _ = writeln!(x, "    <domain>{}</domain>", escape(d));
        }
        let _ = writeln!(x, "    <displayName>{}</displayName>", escape(first));
        let _ = writeln!(
            x,
            "    <displayShortName>{}</displayShortName>",
            escape(first)
        );
        for e in &self.endpoints {
            let (kind, socket) = (
                match e.protocol {
                    MailProtocol::Imap => "imap",
                    MailProtocol::Pop3 => "pop3",
                },
                match e.security {
                    Security::Implicit => "SSL",
                    Security::StartTls => "STARTTLS",
                },
            );
            let _ = write!(
                x,
                "    <incomingServer type=\"{kind}\">\n      <hostname>{host}</hostname>\n      \
                 <port>{}</port>\n      <socketType>{socket}</socketType>\n      \
                 <authentication>password-cleartext</authentication>\n      \
                 <username>{username}</username>\n    </incomingServer>\n",
                e.port
            );
        }
        x.push_str("  </emailProvider>\n</clientConfig>\n");
        x
    }

    /// Microsoft Autodiscover, POX "outlook" response schema 2006a, for `address`.
    pub fn autodiscover(&self, address: &Address) -> String {
        let host = escape(&self.hostname);
        let login = escape(&self.login_name(address));
        let mut x = String::from(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
             <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n\
             <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n\
             <Account>\n<AccountType>email</AccountType>\n<Action>settings</Action>\n",
        );
        for e in &self.endpoints {
            let kind = match e.protocol {
                MailProtocol::Imap => "IMAP",
                MailProtocol::Pop3 => "POP3",
            };
            let (ssl, encryption) = match e.security {
                Security::Implicit => ("on", "SSL"),
                Security::StartTls => ("on", "TLS"),
            };
            let _ = write!(
                x,
                "<Protocol>\n<Type>{kind}</Type>\n<Server>{host}</Server>\n<Port>{}</Port>\n\
                 <LoginName>{login}</LoginName>\n<DomainRequired>off</DomainRequired>\n\
                 <SPA>off</SPA>\n<SSL>{ssl}</SSL>\n<Encryption>{encryption}</Encryption>\n\
                 <AuthRequired>on</AuthRequired>\n</Protocol>\n",
                e.port
            );
        }
        x.push_str("</Account>\n</Response>\n</Autodiscover>\n");
        x
    }

    /// An Apple configuration profile (`com.apple.mail.managed` payload) for `address`,
    /// using the best endpoint of the preferred protocol (IMAP, else POP3).
    pub fn mobileconfig(&self, address: &Address) -> Option<String> {
        let e = self
            .endpoints
            .iter()
            .find(|e| e.protocol == MailProtocol::Imap)
            .or_else(|| self.endpoints.first())?;
        let full = escape(&address.full());
        let domain = escape(&address.domain);
        let reversed: Vec<&str> = address.domain.rsplit('.').collect();
        let id = escape(&format!("{}.nestbox.mail", reversed.join(".")));
        let account_type = match e.protocol {
            MailProtocol::Imap => "EmailTypeIMAP",
            MailProtocol::Pop3 => "EmailTypePOP",
        };
        let ssl = match e.security {
            Security::Implicit => "<true/>",
            Security::StartTls => "<false/>",
        };
        Some(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
<plist version=\"1.0\">\n<dict>\n\
<key>PayloadContent</key>\n<array>\n<dict>\n\
<key>EmailAccountDescription</key><string>{full}</string>\n\
<key>EmailAccountName</key><string>{local}</string>\n\
<key>EmailAccountType</key><string>{account_type}</string>\n\
<key>EmailAddress</key><string>{full}</string>\n\
<key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>\n\
<key>IncomingMailServerHostName</key><string>{host}</string>\n\
<key>IncomingMailServerPortNumber</key><integer>{port}</integer>\n\
<key>IncomingMailServerUseSSL</key>{ssl}\n\
<key>IncomingMailServerUsername</key><string>{login}</string>\n\
<key>PayloadDisplayName</key><string>{full}</string>\n\
<key>PayloadIdentifier</key><string>{id}.account</string>\n\
<key>PayloadType</key><string>com.apple.mail.managed</string>\n\
<key>PayloadUUID</key><string>{uuid_account}</string>\n\
<key>PayloadVersion</key><integer>1</integer>\n\
</dict>\n</array>\n\
<key>PayloadDisplayName</key><string>Mail: {domain}</string>\n\
<key>PayloadIdentifier</key><string>{id}</string>\n\
<key>PayloadType</key><string>Configuration</string>\n\
<key>PayloadUUID</key><string>{uuid_profile}</string>\n\
<key>PayloadVersion</key><integer>1</integer>\n\
</dict>\n</plist>\n",
            local = escape(&address.local),
            host = escape(&self.hostname),
            port = e.port,
            login = escape(&self.login_name(address)),
            uuid_account = uuid_for(&format!("account {}", address.full())),
            uuid_profile = uuid_for(&format!("profile {}", address.full())),
        ))
    }

    /// The DNS records to create, as zone-file lines: RFC 6186 §3 SRV records for the
    /// implicit-TLS services (RFC 8314 §5.1), "not offered" records (`0 0 0 .`, RFC 6186
    /// §3.4) for the plaintext ones, and the autoconfig / autodiscover names when the
    /// HTTP listener is configured.
    pub fn dns_records(&self, config: &Config) -> String {
        let host = format!("{}.", self.hostname.trim_end_matches('.'));
        let port = |p: MailProtocol| {
            self.endpoints
                .iter()
                .find(|e| e.protocol == p && e.security == Security::Implicit)
                .map(|e| e.port)
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "; nestbox: DNS records for {} (ports as configured; adjust for port forwarding)",
            self.hostname
        );
        for d in &self.domains {
            let d = d.trim_end_matches('.');
            let _ = writeln!(out, "; {d}");
            for (service, p) in [
                ("_imaps._tcp", MailProtocol::Imap),
                ("_pop3s._tcp", MailProtocol::Pop3),
            ] {
                match port(p) {
                    Some(port) => {
                        let _ = writeln!(out, "{service}.{d}. 3600 IN SRV 0 1 {port} {host}");
                    }
                    None => {
                        let _ = writeln!(out, "{service}.{d}. 3600 IN SRV 0 0 0 .");
                    }
                }
            }
            // Plaintext is not offered to clients that use SRV (RFC 8314 §5.1).
            for service in ["_imap._tcp", "_pop3._tcp"] {
                let _ = writeln!(out, "{service}.{d}. 3600 IN SRV 0 0 0 .");
            }
            if !config.http.listen.is_empty() || !config.http.tls_listen.is_empty() {
                let _ = writeln!(out, "autoconfig.{d}. 3600 IN CNAME {host}");
                let _ = writeln!(out, "autodiscover.{d}. 3600 IN CNAME {host}");
            }
            if let Some(a) = config.http.tls_listen.first() {
                let _ = writeln!(
                    out,
                    "_autodiscover._tcp.{d}. 3600 IN SRV 0 1 {} {host}",
                    a.port()
                );
            }
        }
        out
    }
}

/// A stable UUID-shaped identifier derived from `seed` (profiles for the same address
/// replace each other on the device).
fn uuid_for(seed: &str) -> String {
    let h = blake3::hash(seed.as_bytes());
    let hex = h.to_hex();
    let s = hex.as_str();
    format!(
        "{}-{}-{}-{}-{}",
        s.get(0..8).unwrap_or(""),
        s.get(8..12).unwrap_or(""),
        s.get(12..16).unwrap_or(""),
        s.get(16..20).unwrap_or(""),
        s.get(20..32).unwrap_or("")
    )
    .to_uppercase()
}

/// XML character data / attribute escaping (XML 1.0 §2.4).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The text of the first `EMailAddress` element of an Autodiscover request (any
/// namespace prefix), entity references undone for the five XML ones.
pub fn autodiscover_address(body: &str) -> Option<String> {
    let mut rest = body;
    loop {
        let start = rest.find("EMailAddress")?;
        let before = rest.get(..start)?;
        let after = rest.get(start + "EMailAddress".len()..)?;
        // An opening tag: `<EMailAddress>` or `<prefix:EMailAddress>`.
        let opening = before
            .rfind('<')
            .and_then(|lt| before.get(lt + 1..))
            .is_some_and(|between| {
                !between.starts_with('/') && between.bytes().all(|b| b != b'>' && b != b' ')
            });
        if opening && let Some(gt) = after.find('>') {
            let text = after.get(gt + 1..)?;
            let end = text.find('<')?;
            let raw = text.get(..end)?.trim();
            return Some(
                raw.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&"),
            );
        }
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MailSettings {
        MailSettings {
            hostname: "mail.example.org".into(),
            domains: vec!["example.org".into(), "example.net".into()],
            endpoints: vec![
                Endpoint {
                    protocol: MailProtocol::Imap,
                    security: Security::Implicit,
                    port: 993,
                },
                Endpoint {
                    protocol: MailProtocol::Pop3,
                    security: Security::Implicit,
                    port: 995,
                },
            ],
            username: ClientUsername::LocalPart,
        }
    }

    #[test]
    fn escape_covers_markup_and_controls() {
        assert_eq!(escape("a<b>&\"'\u{1}c"), "a&lt;b&gt;&amp;&quot;&apos;c");
    }

    #[test]
    fn address_must_be_in_our_domains() {
        let s = settings();
        assert_eq!(
            s.address("Alice@EXAMPLE.net"),
            Some(Address {
                local: "Alice".into(),
                domain: "example.net".into()
            })
        );
        assert_eq!(s.address("alice@other.org"), None);
        assert_eq!(s.address("alice"), None);
        assert_eq!(s.address("<x>@example.org"), None);
    }

    #[test]
    fn autodiscover_request_address_is_found() {
        let body = "<?xml version=\"1.0\"?><Autodiscover xmlns=\"x\"><Request>\
                    <EMailAddress>bob@example.org</EMailAddress>\
                    <AcceptableResponseSchema>y</AcceptableResponseSchema></Request></Autodiscover>";
        assert_eq!(
            autodiscover_address(body).as_deref(),
            Some("bob@example.org")
        );
        let prefixed = "<a:Request><a:EMailAddress> c&amp;d@example.org </a:EMailAddress>";
        assert_eq!(
            autodiscover_address(prefixed).as_deref(),
            Some("c&d@example.org")
        );
        assert_eq!(autodiscover_address("<Request></Request>"), None);
    }

    #[test]
    fn autoconfig_lists_endpoints_with_placeholders() {
        let x = settings().autoconfig();
        assert!(x.contains("<domain>example.net</domain>"), "{x}");
        assert!(x.contains("<port>993</port>\n      <socketType>SSL</socketType>"));
        assert!(x.contains("<incomingServer type=\"pop3\">"));
        assert!(x.contains("%EMAILLOCALPART%"));
    }

    #[test]
    fn dns_records_offer_tls_and_refuse_plaintext() {
        let config = Config::default();
        let r = settings().dns_records(&config);
        assert!(r.contains("_imaps._tcp.example.org. 3600 IN SRV 0 1 993 mail.example.org."));
        assert!(r.contains("_pop3._tcp.example.net. 3600 IN SRV 0 0 0 ."));
        assert!(!r.contains("autoconfig."), "http is off by default");
    }
}
