//! The `config.ron` schema, its defaults and its validation.
//!
//! Read in two stages (as ripgrep does): [`RawConfig`] is what the user wrote, parsed
//! strictly (`deny_unknown_fields`, so a typo is an error with a line and column), then
//! [`RawConfig::validate`] checks values and resolves paths into a [`Config`]. Every key
//! has a default, so `()` is a valid file; the shipped `config.ron` spells all of them out
//! (a test checks that it parses to exactly [`Config::default`] apart from comments).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A configuration error: what is wrong, and where in the file when known.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Whether passwords may be sent without TLS (LOGIN, AUTHENTICATE PLAIN, POP3 USER/PASS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Plaintext {
    /// Never without TLS, not even on loopback.
    Never,
    /// Only on connections from a loopback address (the default).
    #[default]
    Loopback,
    /// Always (not recommended outside a trusted network).
    Always,
}

/// The IMAP server: listeners, input limits and timeouts (RFC 9051, RFC 3501).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImapConfig {
    /// Plain listeners (STARTTLS upgrades them).
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS listeners (993 style).
    pub tls_listen: Vec<SocketAddr>,
    /// Longest command line in octets, not counting literals (RFC 7162 §4 asks for 8192).
    pub max_line: usize,
    /// Largest literal in octets; `None` = `limits.max_message_size`.
    pub max_literal: Option<u64>,
    /// Seconds a connection may stay idle before logging in.
    pub login_timeout_secs: u64,
    /// Autologout after this many idle seconds once logged in (RFC 9051 §5.4: >= 30 min).
    pub autologout_secs: u64,
    /// How long one IDLE command may last, in seconds (RFC 2177 §3: >= 29 min).
    pub idle_timeout_secs: u64,
    /// Offer COMPRESS=DEFLATE (RFC 4978) after login. A compressed connection holds the
    /// DEFLATE state of both directions: about 300 KiB while it sends, 50 KiB once idle
    /// (docs/decisions.md, "COMPRESS=DEFLATE and UNAUTHENTICATE").
    pub compress: bool,
    /// Offer UNAUTHENTICATE (RFC 8437; its §8 asks for a way to turn it off).
    pub unauthenticate: bool,
    /// Largest METADATA value in octets (RFC 5464 §4.1: at least 1024). A larger one is
    /// refused with `NO [METADATA MAXSIZE n]`.
    pub metadata_max_size: usize,
    /// Most METADATA entries one user may hold, over all mailboxes and the server
    /// (RFC 5464 §4.1: at least 10; §7: limits keep a client from filling the disk).
    pub metadata_max_entries: usize,
    /// The server entry `/shared/admin` (RFC 5464 §3.2.1.1): a URI to reach the
    /// administrator (`mailto:` or `tel:`), read-only; `None`: the entry does not exist.
    pub metadata_admin: Option<String>,
}

impl ImapConfig {
    /// The literal limit, resolved against the message size limit.
    pub fn literal_limit(&self, limits: &Limits) -> u64 {
        self.max_literal.unwrap_or(limits.max_message_size)
    }
}

/// The LMTP listener (RFC 2033): where an MTA hands mail over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmtpConfig {
    /// TCP addresses. LMTP must not face the internet: keep these on loopback.
    pub listen: Vec<SocketAddr>,
    /// A Unix socket, relative to `data_dir` unless absolute.
    pub unix_socket: Option<PathBuf>,
    /// Most recipients accepted in one transaction (RFC 5321 §4.5.3.1.8 asks for >= 100).
    pub max_recipients: usize,
    /// Longest command line accepted, in octets (RFC 5321 says 512; we are lenient).
    pub max_line: usize,
    /// Idle time before the server closes the connection, in seconds (RFC 5321 §4.5.3.2).
    pub timeout_secs: u64,
    /// Offer STARTTLS (RFC 3207) on the TCP listeners.
    pub starttls: bool,
    /// Open LMTP connections (TCP and the Unix socket together): a budget of its own, so
    /// IMAP/POP3 clients never crowd out the local MTA.
    pub max_connections: usize,
}

/// TLS certificate source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain. With `None`, a self-signed certificate is generated on first
    /// start and kept in the data dir.
    pub cert: Option<PathBuf>,
    /// PEM private key, required when `cert` is set.
    pub key: Option<PathBuf>,
}

/// argon2id cost parameters (RFC 9106). The defaults follow OWASP's small-memory profile,
/// which keeps a login under ~30 ms on a Raspberry Pi 4 class CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub plaintext: Plaintext,
    pub argon2: Argon2Config,
    pub throttle: ThrottleConfig,
    /// Seconds a successful login is remembered in memory after its last use, so
    /// repeated logins skip argon2 (0 = no cache).
    pub cache_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            plaintext: Plaintext::default(),
            argon2: Argon2Config::default(),
            throttle: ThrottleConfig::default(),
            cache_secs: 60,
        }
    }
}

/// Brute-force protection. Each failed login doubles the delay before the next attempt
/// from that IP and for that user is answered, from `base_delay_ms` up to `max_delay_ms`;
/// after `ban_after` failures an IP is refused for `ban_secs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// Failures from one IP before it is refused (0 = never).
    pub ban_after: u32,
    pub ban_secs: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            base_delay_ms: 500,
            max_delay_ms: 15_000,
            ban_after: 20,
            ban_secs: 900,
        }
    }
}

/// Input limits. Every input has one; the reasons are in the comments of `config.ron`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message accepted by any delivery path, in octets (after CRLF normalisation).
    pub max_message_size: u64,
}

/// How messages are kept on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// zstd level for a message stored alone (1..=19), before the packer recompresses it
    /// with its neighbours at `pack_level`. Delivery pays this on every message, so it is
    /// fast by default.
    pub compression_level: i32,
    /// zstd level for packs (1..=19): many messages compressed together in the background,
    /// once deliveries pause. Higher costs CPU in that background work only.
    pub pack_level: i32,
    /// Train a zstd dictionary once this many messages were stored without one (0 = never).
    pub dictionary_after: u64,
    /// Dictionary size in bytes.
    pub dictionary_size: usize,
    /// Compact the database file when at least this share of it is free space (0.0..1.0).
    pub compact_when_free: f64,
    /// How often to check whether compaction is due, in seconds (0 = never automatically).
    pub compact_check_secs: u64,
    /// Page cache of the database, in MiB. Memory use grows to this; the OS page cache
    /// still helps beyond it.
    pub cache_mib: u64,
    /// What the full-text index of every mailbox (`store::fts`, built in the
    /// background) holds; SEARCH reads only the messages the index cannot rule out.
    pub full_text_index: FullTextIndex,
}

/// `store.full_text_index` (docs/decisions.md, "Full-text index").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FullTextIndex {
    /// No index: every search reads the messages.
    Off,
    /// The words of From, To, Cc, Bcc and Subject (the default): searches of those
    /// fields answer from the index, for about 1% of the mail's size on disk.
    #[default]
    Headers,
    /// Every word of every message, header and body: every string search answers from
    /// the index, for about 8% of the raw mail's size on disk, which takes the store
    /// past its 0.30x promise.
    Full,
}

/// A plugin hook: which world of `wit/nestbox-plugin.wit` the plugin serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PluginHook {
    /// `nestbox:plugin/filter`: per delivered copy.
    Filter,
    /// `nestbox:plugin/quota`: before a message is committed.
    Quota,
    /// `nestbox:plugin/retention`: periodic sweeps.
    Retention,
    /// `nestbox:plugin/sieve` (0.2.0): runs the recipient's active Sieve script on each
    /// delivered copy, in the filter chain, at this plugin's place in the order.
    Sieve,
}

impl PluginHook {
    /// The interface name (`filter`, `quota`, `retention`).
    pub fn name(self) -> &'static str {
        match self {
            PluginHook::Filter => "filter",
            PluginHook::Quota => "quota",
            PluginHook::Retention => "retention",
            PluginHook::Sieve => "sieve",
        }
    }
}

/// What happens to a message when a filter or quota plugin fails (traps, runs past its
/// deadline or memory cap, returns nonsense, or could not be loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum OnFailure {
    /// Fail open: deliver as if the plugin had accepted / allowed it (the default).
    #[default]
    Accept,
    /// Answer with a temporary failure (LMTP 451, IMAP `NO`), so the sender retries.
    TempFail,
}

/// A WebAssembly plugin (filters, quota policies, retention rules).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Shown in logs and `nestbox plugin list`: letters, digits, `-`, `_`.
    pub name: String,
    /// The component (.wasm), relative to the config file's folder unless absolute.
    pub path: PathBuf,
    /// The hooks it serves; `[]` = every world the component exports.
    #[serde(default)]
    pub hooks: Vec<PluginHook>,
    /// Login names it applies to; `[]` = everyone.
    #[serde(default)]
    pub users: Vec<String>,
    /// Its settings, read by the plugin through `host.config(key)`.
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, String>,
    /// A fresh instance for every call instead of reusing warm ones.
    #[serde(default)]
    pub fresh_instance: bool,
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Overrides `plugin_limits.memory_mib` for this plugin.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Overrides `plugin_limits.timeout_ms` for this plugin.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Limits for every plugin call (DESIGN.md: plugins are sandboxed and bounded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginLimits {
    /// Linear memory one plugin instance may grow to, in MiB.
    pub memory_mib: u64,
    /// Wall-clock deadline of one call (instantiation included), in milliseconds.
    pub timeout_ms: u64,
    /// Most decisions one retention call may return; more counts as a failure.
    pub max_decisions: u64,
    /// Warm instances kept per plugin and hook (0 = a fresh instance every call).
    pub pool_size: usize,
    /// Failures in a row after which a plugin is reported unhealthy.
    pub unhealthy_after: u32,
    /// Largest plugin file accepted, in MiB.
    pub max_file_mib: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_mib: 64,
            timeout_ms: 1000,
            max_decisions: 10_000,
            pool_size: 4,
            unhealthy_after: 5,
            max_file_mib: 64,
        }
    }
}

/// Periodic retention sweeps (run by retention plugins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    pub interval_secs: u64,
}

/// What POP3 `DELE` does to a message when the session ends with `QUIT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DelePolicy {
    /// Remove it for every protocol (RFC 1939 behaviour); IMAP sessions see EXPUNGE.
    #[default]
    Expunge,
    /// Hide it from POP3 only: IMAP keeps it, marked with the `$POP3Deleted` keyword.
    Hide,
    /// Move it into this mailbox of the same user (created if missing), e.g. "Archive";
    /// a bad name is refused when the config is read.
    Move(crate::contracts::MailboxName),
}

/// The POP3 server (RFC 1939, 2449, 5034).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pop3Config {
    /// Plain listeners (STLS upgrades them).
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS listeners (995 style).
    pub tls_listen: Vec<SocketAddr>,
    /// Idle seconds before the autologout timer closes the session without UPDATE
    /// (RFC 1939 §3: at least 10 minutes).
    pub timeout_secs: u64,
    /// Longest command line in octets (RFC 2449 §4: at least 255). SASL responses may be
    /// up to 16 times longer.
    pub max_line: usize,
    /// What DELE does, for everyone without an entry in `dele_for`.
    pub dele: DelePolicy,
    /// Per-user overrides: `[("bob", Hide)]`.
    pub dele_for: Vec<(String, DelePolicy)>,
    /// Days a retrieved message may stay on the server, advertised as `EXPIRE n`
    /// (RFC 2449 §6.7); `None` advertises `EXPIRE NEVER`.
    pub expire_days: Option<u32>,
    /// Seconds required between two logins of one user, advertised and enforced as
    /// `LOGIN-DELAY n` (RFC 2449 §6.8); `None` for no delay.
    pub login_delay_secs: Option<u32>,
}

impl Pop3Config {
    /// The DELE policy for `user` (login name, lower case).
    pub fn dele_policy(&self, user: &str) -> &DelePolicy {
        self.dele_for
            .iter()
            .find(|(u, _)| u.eq_ignore_ascii_case(user))
            .map(|(_, p)| p)
            .unwrap_or(&self.dele)
    }
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            listen: vec![local(1110)],
            tls_listen: vec![local(1995)],
            timeout_secs: 600,
            max_line: 1024,
            dele: DelePolicy::Expunge,
            dele_for: Vec::new(),
            expire_days: None,
            login_delay_secs: None,
        }
    }
}

/// The ManageSieve server (RFC 5804) and the per-user Sieve script limits, which the
/// `sieve` CLI obeys too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManageSieveConfig {
    /// Plain listeners (STARTTLS upgrades them; RFC 5804 has no implicit-TLS port).
    pub listen: Vec<SocketAddr>,
    /// Largest script in octets (PUTSCRIPT answers `NO (QUOTA/MAXSIZE)` past it).
    pub max_script_bytes: u64,
    /// Most scripts per user (`NO (QUOTA/MAXSCRIPTS)` past it).
    pub max_scripts: usize,
    /// Idle seconds before a logged-in session is closed.
    pub timeout_secs: u64,
}

/// Largest Sieve script and most scripts per user, by default (RFC 5804 leaves both
/// to the server).
pub const DEFAULT_MAX_SCRIPT_BYTES: u64 = 128 * 1024;
pub const DEFAULT_MAX_SCRIPTS: usize = 32;

impl Default for ManageSieveConfig {
    fn default() -> Self {
        ManageSieveConfig {
            listen: vec![local(4190)],
            max_script_bytes: DEFAULT_MAX_SCRIPT_BYTES,
            max_scripts: DEFAULT_MAX_SCRIPTS,
            timeout_secs: 1800,
        }
    }
}

/// IMAP and POP3 connection limits (DoS protection for a small box). LMTP has its own,
/// `lmtp.max_connections`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsConfig {
    /// Open IMAP and POP3 connections together.
    pub max_total: usize,
    /// Open connections of one protocol (IMAP, POP3) from one IP address (IPv6: one /64).
    pub max_per_ip: usize,
    /// Networks exempt from `max_per_ip` (a webmail or a sync job on this box is one
    /// address with many users); `max_total` and `max_per_user` still apply.
    pub trusted: Vec<crate::cidr::Cidr>,
    /// Logged-in IMAP/POP3 sessions of one user.
    pub max_per_user: usize,
    /// Seconds an IMAP/POP3 connection may stay unauthenticated while idle.
    pub preauth_timeout_secs: u64,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        ConnectionsConfig {
            max_total: 1000,
            max_per_ip: 50,
            trusted: ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
            max_per_user: 20,
            preauth_timeout_secs: 60,
        }
    }
}

/// The user name mail clients are told to log in with (autoconfig, Autodiscover,
/// `.mobileconfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ClientUsername {
    /// The address's local part (`alice`; Thunderbird's `%EMAILLOCALPART%`).
    #[default]
    LocalPart,
    /// The whole address (`alice@example.org`; `%EMAILADDRESS%`).
    Address,
}

/// The HTTP listener: client autoconfiguration, `/metrics`, `/healthz` (docs/http.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Plain HTTP listeners (off by default).
    pub listen: Vec<SocketAddr>,
    /// HTTPS listeners, with the certificate of the other TLS listeners.
    pub tls_listen: Vec<SocketAddr>,
    /// The user name clients are told to use.
    pub username: ClientUsername,
    /// Largest request accepted (request line, headers and body), in octets.
    pub max_request: usize,
    /// Seconds a client has to send its whole request.
    pub timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: Vec::new(),
            tls_listen: Vec::new(),
            username: ClientUsername::LocalPart,
            max_request: 16 * 1024,
            timeout_secs: 10,
        }
    }
}

/// How the CA checks that this server answers for a name (RFC 8555 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum AcmeChallenge {
    /// TLS-ALPN-01 (RFC 8737): answered on every implicit-TLS listener (IMAPS, POP3S,
    /// HTTPS). Let's Encrypt connects to port 443 of the name.
    #[default]
    TlsAlpn01,
    /// HTTP-01 (RFC 8555 §8.3): answered on the HTTP listener (`http.listen`). Let's
    /// Encrypt connects to port 80 of the name.
    Http01,
}

/// Let's Encrypt's production directory, the default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// ACME (RFC 8555) certificates (docs/http.md "ACME"). Off while `names` is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeConfig {
    /// The DNS names of the certificate; `[]` = no ACME (the self-signed certificate or
    /// `tls.cert` is served).
    pub names: Vec<String>,
    /// The CA's directory URL (https).
    pub directory: String,
    /// Account contacts, `mailto:` URLs.
    pub contact: Vec<String>,
    pub challenge: AcmeChallenge,
    /// PEM roots to trust when talking to the CA (a test or private CA); `None` = the
    /// Mozilla roots (webpki-roots).
    pub ca_roots: Option<PathBuf>,
}

impl AcmeConfig {
    /// Whether ACME manages the certificate.
    pub fn enabled(&self) -> bool {
        !self.names.is_empty()
    }
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            names: Vec::new(),
            directory: LETS_ENCRYPT.into(),
            contact: Vec::new(),
            challenge: AcmeChallenge::TlsAlpn01,
            ca_roots: None,
        }
    }
}

/// The file as written: every key optional, unknown keys refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub hostname: String,
    pub data_dir: PathBuf,
    pub imap: ImapConfig,
    pub pop3: Pop3Config,
    pub lmtp: LmtpConfig,
    pub tls: TlsConfig,
    /// ACME certificates (off by default).
    pub acme: AcmeConfig,
    pub auth: AuthConfig,
    pub limits: Limits,
    pub store: StoreConfig,
    pub plugins: Vec<PluginConfig>,
    pub retention: RetentionConfig,
    pub connections: ConnectionsConfig,
    pub plugin_limits: PluginLimits,
    /// The HTTP listener (autoconfig, Autodiscover, .mobileconfig, metrics).
    pub http: HttpConfig,
    /// The mail domains clients are configured for; empty means `hostname`.
    pub domains: Vec<String>,
    pub managesieve: ManageSieveConfig,
    pub sieve: SieveConfig,
}

/// Sieve (the `sieve` plugin hook): what the host does for scripts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SieveConfig {
    /// The command that sends a vacation reply (RFC 5230), the reply on its stdin, e.g.
    /// `/usr/sbin/sendmail -i -f <> --` (the recipient is appended as the last
    /// argument). `None` disables vacation: the extension is then not offered.
    pub vacation_command: Option<String>,
    /// How long the command may run, in seconds, before it is killed.
    pub vacation_timeout_secs: u64,
}

impl Default for SieveConfig {
    fn default() -> Self {
        SieveConfig {
            vacation_command: None,
            vacation_timeout_secs: 30,
        }
    }
}

/// The validated configuration, with paths resolved against the config file's folder.
pub type Config = RawConfig;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            hostname: "localhost".into(),
            data_dir: PathBuf::from("./data"),
            imap: ImapConfig::default(),
            pop3: Pop3Config::default(),
            lmtp: LmtpConfig::default(),
            tls: TlsConfig::default(),
            acme: AcmeConfig::default(),
            auth: AuthConfig::default(),
            limits: Limits::default(),
            store: StoreConfig::default(),
            plugins: Vec::new(),
            retention: RetentionConfig::default(),
            connections: ConnectionsConfig::default(),
            plugin_limits: PluginLimits::default(),
            http: HttpConfig::default(),
            managesieve: ManageSieveConfig::default(),
            sieve: SieveConfig::default(),
            domains: Vec::new(),
        }
    }
}

impl RawConfig {
    /// The mail domains (`domains`, or `hostname` when none are listed).
    pub fn mail_domains(&self) -> Vec<String> {
        if self.domains.is_empty() {
            vec![self.hostname.clone()]
        } else {
            self.domains.clone()
        }
    }
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            listen: vec![local(1143)],
            tls_listen: vec![local(1993)],
            max_line: 64 * 1024,
            max_literal: None,
            login_timeout_secs: 60,
            autologout_secs: 30 * 60,
            idle_timeout_secs: 60 * 60,
            compress: true,
            unauthenticate: true,
            metadata_max_size: 16 * 1024,
            metadata_max_entries: 1000,
            metadata_admin: None,
        }
    }
}

impl Default for LmtpConfig {
    fn default() -> Self {
        LmtpConfig {
            listen: vec![local(2424)],
            unix_socket: Some(PathBuf::from("lmtp.sock")),
            max_recipients: 100,
            max_line: 2048,
            timeout_secs: 300,
            starttls: false,
            max_connections: 100,
        }
    }
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 64 * 1024 * 1024,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            compression_level: 3,
            pack_level: 15,
            dictionary_after: 500,
            dictionary_size: 64 * 1024,
            compact_when_free: 0.25,
            compact_check_secs: 3600,
            cache_mib: 4,
            full_text_index: FullTextIndex::Headers,
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            interval_secs: 86_400,
        }
    }
}

/// Letters, digits, `.` and `-`, not empty.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// Where the setting `path` (`pop3.timeout_secs`, `plugins.name`) is given in the text
/// (1-based line and column of its key), for error messages about values that parsed
/// but are not valid; `None` when the file leaves it at its default.
fn locate(text: &str, path: &str) -> (Option<usize>, Option<usize>) {
    let want: Vec<&str> = path.split('.').collect();
    let mut found = (None, None);
    walk_keys(text, None, |keys, (line, col)| {
        let hit = keys == want.as_slice();
        if hit {
            found = (Some(line), Some(col));
        }
        hit
    });
    found
}

/// Where (line, column) (1-based, as ron counts them) is in the file: the keys of the
/// sections whose brackets enclose it, outermost first, and the key whose value it is
/// in, if any. For `(imap: (max_line: "big"))` at `"big"`: `(["imap"], Some("max_line"))`.
/// ron's errors give only a position; this names the setting there.
fn keys_at(text: &str, line: usize, col: usize) -> (Vec<String>, Option<String>) {
    walk_keys(text, Some((line, col)), |_, _| false)
}

/// Reads the config text as far as `until` (line, column; `None`: to the end), keeping
/// track of the keys of the sections open there. At each `key:` it calls `on_key` with
/// the path to that key (section keys, then the key) and where the key starts; `true`
/// stops the walk. Strings (with the colons of `"127.0.0.1:0"`) and comments are passed
/// over. Returns the open sections' keys and the key whose value the walk stopped in.
fn walk_keys(
    text: &str,
    until: Option<(usize, usize)>,
    mut on_key: impl FnMut(&[&str], (usize, usize)) -> bool,
) -> (Vec<String>, Option<String>) {
    let mut open: Vec<Option<String>> = Vec::new();
    let mut key: Option<String> = None;
    let mut word = String::new();
    let mut word_at = (0, 0);
    let (mut in_string, mut escaped, mut comment, mut block, mut gap) =
        (false, false, false, false, false);
    let mut chars = text
        .lines()
        .enumerate()
        .flat_map(|(n, l)| {
            let line = n + 1;
            l.chars()
                .chain(std::iter::once('\n'))
                .enumerate()
                .map(move |(c, ch)| ((line, c + 1), ch))
        })
        .take_while(|&(at, _)| until.is_none_or(|u| at < u))
        .peekable();
    let next_is = |chars: &mut std::iter::Peekable<_>, want: char| {
        chars
            .next_if(|&(_, c): &((usize, usize), char)| c == want)
            .is_some()
    };
    while let Some((at, c)) = chars.next() {
        if comment {
            comment = c != '\n';
            continue;
        }
        if block {
            if c == '*' && next_is(&mut chars, '/') {
                block = false;
            }
            continue;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                word.clear();
            }
            '/' if next_is(&mut chars, '/') => comment = true,
            '/' if next_is(&mut chars, '*') => block = true,
            c if c.is_alphanumeric() || c == '_' => {
                if std::mem::take(&mut gap) || word.is_empty() {
                    word.clear();
                    word_at = at;
                }
                word.push(c);
            }
            ':' => {
                if word.starts_with(|c: char| c.is_alphabetic() || c == '_') {
                    let mut path: Vec<&str> = open.iter().flatten().map(String::as_str).collect();
                    path.push(&word);
                    if on_key(&path, word_at) {
                        break;
                    }
                    key = Some(std::mem::take(&mut word));
                }
            }
            '(' | '[' | '{' => {
                open.push(key.take());
                word.clear();
            }
            ')' | ']' | '}' => {
                open.pop();
                key = None;
                word.clear();
            }
            ',' => {
                key = None;
                word.clear();
            }
            c if c.is_whitespace() => gap = true,
            _ => word.clear(),
        }
    }
    (open.into_iter().flatten().collect(), key)
}

/// What a ron error says, named by the setting it is about (`imap.max_line: ...`) and
/// in the words of the config file, not of our types.
fn parse_error_message(text: &str, e: &ron::error::SpannedError) -> String {
    let (mut path, key) = keys_at(text, e.position.line, e.position.col);
    let one_of = |expected: &[&str]| {
        let names: Vec<String> = expected.iter().map(|n| format!("`{n}`")).collect();
        names.join(", ")
    };
    let what = match &e.code {
        ron::Error::NoSuchStructField {
            expected, found, ..
        } => {
            path.push(found.clone());
            format!("unknown key; expected one of {}", one_of(expected))
        }
        ron::Error::DuplicateStructField { field, .. } => {
            path.push((*field).to_string());
            "given twice".to_string()
        }
        ron::Error::NoSuchEnumVariant {
            expected, found, ..
        } => {
            path.extend(key);
            format!(
                "unknown value `{found}`; expected one of {}",
                one_of(expected)
            )
        }
        ron::Error::MissingStructField { field, .. } => format!("missing key `{field}`"),
        ron::Error::ExpectedOption => {
            path.extend(key);
            "expected `Some(...)` or `None`".to_string()
        }
        ron::Error::ExpectedComma => {
            path.extend(key);
            "expected `,` or a closing bracket".to_string()
        }
        ron::Error::Eof => "the file ends too early: a closing bracket is missing".to_string(),
        ron::Error::ExpectedNamedStructLike(_) | ron::Error::ExpectedStructLike => {
            path.extend(key);
            if path.is_empty() {
                "expected `(`: the file is one `( ... )` of settings, `()` for every default"
                    .to_string()
            } else {
                "expected `(`".to_string()
            }
        }
        other => {
            path.extend(key);
            // ron says "Expected integer"; the rest of the line is ours, lower case. An
            // acronym ("IMAP ...") keeps its case.
            let text = other.to_string();
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(a), Some(b)) if a.is_uppercase() && b.is_lowercase() => {
                    a.to_lowercase().chain(text.chars().skip(1)).collect()
                }
                _ => text,
            }
        }
    };
    if path.is_empty() {
        what
    } else {
        format!("{}: {what}", path.join("."))
    }
}

/// Checks that the value of `key` lies in `range`; the error names the range.
fn within<T: PartialOrd + std::fmt::Display>(
    err: &dyn Fn(&str, String) -> ConfigError,
    key: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        let (lo, hi) = range.into_inner();
        Err(err(key, format!("{value} is outside {lo}..={hi}")))
    }
}

impl RawConfig {
    /// Parses config text strictly. `file` only names the source in errors.
    pub fn parse(text: &str, file: &Path) -> Result<RawConfig, ConfigError> {
        ron::Options::default()
            .from_str::<RawConfig>(text)
            .map_err(|e| ConfigError {
                file: file.to_path_buf(),
                line: Some(e.position.line),
                column: Some(e.position.col),
                message: parse_error_message(text, &e),
            })
    }

    /// Checks values and resolves relative paths against `base` (the config file's folder).
    pub fn validate(mut self, text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
        let err = |key: &str, message: String| {
            let (line, column) = locate(text, key);
            ConfigError {
                file: file.to_path_buf(),
                line,
                column,
                message: format!("{key}: {message}"),
            }
        };
        if !is_host_name(&self.hostname) {
            return Err(err(
                "hostname",
                format!("{:?} is not a valid host name", self.hostname),
            ));
        }
        within(
            &err,
            "store.compression_level",
            self.store.compression_level,
            1..=19,
        )?;
        within(&err, "store.pack_level", self.store.pack_level, 1..=19)?;
        if !(0.0..1.0).contains(&self.store.compact_when_free) {
            return Err(err(
                "store.compact_when_free",
                format!("{} is outside 0.0..1.0", self.store.compact_when_free),
            ));
        }
        within(
            &err,
            "store.dictionary_size",
            self.store.dictionary_size,
            1024..=1 << 20,
        )?;
        within(&err, "store.cache_mib", self.store.cache_mib, 1..=65_536)?;
        within(
            &err,
            "limits.max_message_size",
            self.limits.max_message_size,
            1024..=1 << 30,
        )?;
        if self.lmtp.max_recipients == 0 {
            return Err(err("lmtp.max_recipients", "must be at least 1".into()));
        }
        if self.lmtp.max_line < 512 {
            return Err(err(
                "lmtp.max_line",
                "must be at least 512 (RFC 5321 §4.5.3.1.4)".into(),
            ));
        }
        if self.lmtp.timeout_secs < 30 {
            return Err(err("lmtp.timeout_secs", "must be at least 30".into()));
        }
        if self.pop3.timeout_secs < 600 {
            return Err(err(
                "pop3.timeout_secs",
                "must be at least 600 (RFC 1939 §3: autologout >= 10 minutes)".into(),
            ));
        }
        if !(255..=65536).contains(&self.pop3.max_line) {
            return Err(err(
                "pop3.max_line",
                "must be within 255..=65536 (RFC 2449 §4 asks for at least 255)".into(),
            ));
        }
        for (key, policy) in std::iter::once(("pop3.dele", &self.pop3.dele))
            .chain(self.pop3.dele_for.iter().map(|(_, p)| ("pop3.dele_for", p)))
        {
            if matches!(policy, DelePolicy::Move(t) if t.as_str() == "INBOX") {
                return Err(err(key, "cannot move POP3-deleted mail into INBOX".into()));
            }
        }
        if self.imap.max_line < 8192 || self.imap.max_line > 16 << 20 {
            return Err(err(
                "imap.max_line",
                "must be within 8192..=16777216 (RFC 7162 §4)".into(),
            ));
        }
        if let Some(n) = self.imap.max_literal
            && !(1024..=self.limits.max_message_size).contains(&n)
        {
            return Err(err(
                "imap.max_literal",
                format!("{n} is outside 1024..=limits.max_message_size"),
            ));
        }
        if !(10..=self.imap.autologout_secs).contains(&self.imap.login_timeout_secs) {
            return Err(err(
                "imap.login_timeout_secs",
                "must be within 10..=autologout_secs".into(),
            ));
        }
        if self.imap.autologout_secs < 30 * 60 {
            return Err(err(
                "imap.autologout_secs",
                "must be at least 1800 (RFC 9051 §5.4)".into(),
            ));
        }
        if self.imap.idle_timeout_secs < 29 * 60 {
            return Err(err(
                "imap.idle_timeout_secs",
                "must be at least 1740 (RFC 2177 §3)".into(),
            ));
        }
        if !(1024..=1 << 20).contains(&self.imap.metadata_max_size) {
            return Err(err(
                "imap.metadata_max_size",
                "must be within 1024..=1048576 (RFC 5464 §4.1 asks for at least 1024)".into(),
            ));
        }
        if !(10..=100_000).contains(&self.imap.metadata_max_entries) {
            return Err(err(
                "imap.metadata_max_entries",
                "must be within 10..=100000 (RFC 5464 §4.1 asks for at least 10)".into(),
            ));
        }
        if let Some(uri) = &self.imap.metadata_admin
            && (!uri.contains(':') || uri.chars().any(|c| c.is_control()) || uri.len() > 1024)
        {
            return Err(err(
                "imap.metadata_admin",
                "must be a URI such as \"mailto:postmaster@example.org\" (RFC 5464 §3.2.1.1)"
                    .into(),
            ));
        }
        let a = &self.auth.argon2;
        if a.memory_kib < 8 * a.parallelism.max(1) || a.iterations == 0 || a.parallelism == 0 {
            return Err(err(
                "auth.argon2",
                "memory_kib must be >= 8 x parallelism, iterations and parallelism >= 1".into(),
            ));
        }
        let t = &self.auth.throttle;
        if t.base_delay_ms > t.max_delay_ms || t.max_delay_ms > 300_000 {
            return Err(err(
                "auth.throttle",
                "base_delay_ms must be <= max_delay_ms <= 300000".into(),
            ));
        }
        if self.auth.cache_secs > 3600 {
            return Err(err("auth.cache_secs", "must be at most 3600".into()));
        }
        let m = &self.managesieve;
        within(
            &err,
            "managesieve.max_script_bytes",
            m.max_script_bytes,
            1024..=16 << 20,
        )?;
        within(&err, "managesieve.max_scripts", m.max_scripts, 1..=1000)?;
        if m.timeout_secs < 60 {
            return Err(err(
                "managesieve.timeout_secs",
                "must be at least 60".into(),
            ));
        }
        let c = &self.connections;
        if c.max_total == 0 || c.max_per_ip == 0 || c.max_per_user == 0 {
            return Err(err(
                "connections",
                "max_total, max_per_ip and max_per_user must be at least 1".into(),
            ));
        }
        if self.lmtp.max_connections == 0 {
            return Err(err("lmtp.max_connections", "must be at least 1".into()));
        }
        if c.preauth_timeout_secs < 10 {
            return Err(err(
                "connections.preauth_timeout_secs",
                "must be at least 10".into(),
            ));
        }
        for d in &self.domains {
            if !is_host_name(d) {
                return Err(err("domains", format!("{d:?} is not a valid domain name")));
            }
        }
        let http = &self.http;
        within(&err, "http.max_request", http.max_request, 1024..=1 << 20)?;
        within(&err, "http.timeout_secs", http.timeout_secs, 1..=300)?;
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(err("tls", "cert and key must be given together".into()));
        }
        self.validate_acme(&err)?;
        let mut seen = std::collections::HashSet::new();
        for (key, addr) in self
            .imap
            .listen
            .iter()
            .map(|a| ("imap.listen", a))
            .chain(self.imap.tls_listen.iter().map(|a| ("imap.tls_listen", a)))
            .chain(self.pop3.listen.iter().map(|a| ("pop3.listen", a)))
            .chain(self.pop3.tls_listen.iter().map(|a| ("pop3.tls_listen", a)))
            .chain(self.lmtp.listen.iter().map(|a| ("lmtp.listen", a)))
            .chain(self.http.listen.iter().map(|a| ("http.listen", a)))
            .chain(self.http.tls_listen.iter().map(|a| ("http.tls_listen", a)))
            .chain(
                self.managesieve
                    .listen
                    .iter()
                    .map(|a| ("managesieve.listen", a)),
            )
        {
            if addr.port() != 0 && !seen.insert(*addr) {
                return Err(err(key, format!("{addr} is used by two listeners")));
            }
        }
        self.validate_plugins(&err)?;
        self.data_dir = base.join(&self.data_dir);
        for p in [
            &mut self.tls.cert,
            &mut self.tls.key,
            &mut self.acme.ca_roots,
        ]
        .into_iter()
        .flatten()
        {
            *p = base.join(&*p);
        }
        if let Some(sock) = &mut self.lmtp.unix_socket {
            *sock = self.data_dir.join(&*sock);
        }
        for p in &mut self.plugins {
            p.path = base.join(&p.path);
        }
        Ok(self)
    }

    /// `acme`: names a CA can validate, an https directory, a listener for the challenge.
    fn validate_acme(&self, err: &dyn Fn(&str, String) -> ConfigError) -> Result<(), ConfigError> {
        let a = &self.acme;
        if !a.enabled() {
            return Ok(());
        }
        for n in &a.names {
            // No wildcards: TLS-ALPN-01 and HTTP-01 cannot prove them (RFC 8555 §7.1.3).
            if !is_host_name(n) || !n.contains('.') {
                return Err(err(
                    "acme.names",
                    format!("{n:?} is not a DNS name a CA can validate"),
                ));
            }
        }
        if !a.directory.starts_with("https://") {
            return Err(err(
                "acme.directory",
                format!("{:?} is not an https URL", a.directory),
            ));
        }
        if let Some(c) = a.contact.iter().find(|c| !c.starts_with("mailto:")) {
            return Err(err("acme.contact", format!("{c:?} must be a mailto: URL")));
        }
        if self.tls.cert.is_some() {
            return Err(err(
                "acme",
                "ACME certificates and tls.cert exclude each other; remove one".into(),
            ));
        }
        let listening = match a.challenge {
            AcmeChallenge::TlsAlpn01 => {
                !(self.imap.tls_listen.is_empty()
                    && self.pop3.tls_listen.is_empty()
                    && self.http.tls_listen.is_empty())
            }
            AcmeChallenge::Http01 => !self.http.listen.is_empty(),
        };
        if !listening {
            return Err(err(
                "acme.challenge",
                match a.challenge {
                    AcmeChallenge::TlsAlpn01 => "TlsAlpn01 needs an implicit-TLS listener (imap.tls_listen, pop3.tls_listen or http.tls_listen)",
                    AcmeChallenge::Http01 => "Http01 needs http.listen",
                }
                .into(),
            ));
        }
        Ok(())
    }

    /// `plugins` and `plugin_limits`.
    fn validate_plugins(
        &self,
        err: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let l = &self.plugin_limits;
        within(err, "plugin_limits.memory_mib", l.memory_mib, 1..=4096)?;
        within(err, "plugin_limits.timeout_ms", l.timeout_ms, 1..=60_000)?;
        if l.max_decisions == 0 {
            return Err(err(
                "plugin_limits.max_decisions",
                "must be at least 1".into(),
            ));
        }
        if l.pool_size > 64 {
            return Err(err(
                "plugin_limits.pool_size",
                format!("{} is over 64", l.pool_size),
            ));
        }
        if l.unhealthy_after == 0 {
            return Err(err(
                "plugin_limits.unhealthy_after",
                "must be at least 1".into(),
            ));
        }
        within(err, "plugin_limits.max_file_mib", l.max_file_mib, 1..=1024)?;
        let mut names = std::collections::HashSet::new();
        for p in &self.plugins {
            if !cfg!(feature = "plugins") {
                return Err(err(
                    "plugins",
                    format!(
                        "plugin {:?}: this build has no plugin host (cargo feature `plugins`); leave `plugins: []`",
                        p.name
                    ),
                ));
            }
            let bad = |key: &str, why: String| {
                err(
                    &format!("plugins.{key}"),
                    format!("plugin {:?}: {why}", p.name),
                )
            };
            if p.name.is_empty()
                || p.name.len() > 64
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad(
                    "name",
                    "use 1 to 64 letters, digits, `-` or `_`".into(),
                ));
            }
            if !names.insert(p.name.to_ascii_lowercase()) {
                return Err(bad("name", "two plugins have this name".into()));
            }
            if p.path.as_os_str().is_empty() {
                return Err(bad("path", "is empty".into()));
            }
            if p.hooks
                .iter()
                .enumerate()
                .any(|(i, h)| p.hooks.iter().skip(i + 1).any(|o| o == h))
            {
                return Err(bad("hooks", "a hook is listed twice".into()));
            }
            if p.users.iter().any(|u| u.is_empty()) {
                return Err(bad("users", "an empty user name".into()));
            }
            if let Some(k) = p.settings.keys().find(|k| k.is_empty()) {
                return Err(bad("settings", format!("empty key {k:?}")));
            }
            if let Some(m) = p.memory_mib {
                within(&bad, "memory_mib", m, 1..=4096)?;
            }
            if let Some(t) = p.timeout_ms {
                within(&bad, "timeout_ms", t, 1..=60_000)?;
            }
        }
        Ok(())
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            message: format!("cannot read: {e}"),
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        RawConfig::parse(&text, path)?.validate(&text, path, base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, ConfigError> {
        let p = Path::new("test.ron");
        RawConfig::parse(text, p)?.validate(text, p, Path::new("/base"))
    }

    #[test]
    fn shipped_config_is_every_default() {
        let text = include_str!("../config.ron");
        let parsed = RawConfig::parse(text, Path::new("config.ron")).unwrap();
        assert_eq!(parsed, RawConfig::default());
    }

    #[test]
    fn empty_config_is_valid() {
        let c = check("()").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/base/./data"));
        assert_eq!(
            c.lmtp.unix_socket,
            Some(PathBuf::from("/base/./data/lmtp.sock"))
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = check("(\n  hostname: \"a\",\n  bogus: 1,\n)").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("bogus"), "{e}");
    }

    #[test]
    fn parse_errors_name_the_setting_in_the_words_of_the_file() {
        let message = |text: &str| check(text).unwrap_err().message;
        assert_eq!(
            message("(imap: (listen: [\"127.0.0.1:143\"], bogus: 2))"),
            "imap.bogus: unknown key; expected one of `listen`, `tls_listen`, `max_line`, \
             `max_literal`, `login_timeout_secs`, `autologout_secs`, `idle_timeout_secs`, \
             `compress`, `unauthenticate`, `metadata_max_size`, `metadata_max_entries`, \
             `metadata_admin`"
        );
        assert_eq!(
            message("(pop3: (dele: Nuke))"),
            "pop3.dele: unknown value `Nuke`; expected one of `Expunge`, `Hide`, `Move`"
        );
        assert_eq!(
            message("(imap: (max_line: 10, max_line: 20))"),
            "imap.max_line: given twice"
        );
        // Colons in strings and comments, and sections closed before, are passed over.
        let e = message(
            "(\n // the old one: gone\n lmtp: (listen: [\"[::1]:24\"]),\n /* was: (a: 1 */\n imap: (max_line: \"x\"),\n)",
        );
        assert!(e.starts_with("imap.max_line: "), "{e}");
        let e = message("(plugins: [(name: \"x\", path: \"p.wasm\", hooks: [Filtre])])");
        assert!(
            e.starts_with("plugins.hooks: unknown value `Filtre`"),
            "{e}"
        );
        assert_eq!(
            message("(imap: (max_literal: 5))"),
            "imap.max_literal: expected `Some(...)` or `None`"
        );
        assert_eq!(
            message("(plugins: [(name: \"x\")])"),
            "plugins: missing key `path`"
        );
        assert_eq!(
            message("(imap: (listen: [\"127.0.0.1:1\" \"x\"]))"),
            "imap.listen: expected `,` or a closing bracket"
        );
        // No type names of ours.
        for text in [
            "",
            "(bogus: 1)",
            "(store: (full_text_index: Partial))",
            "(imap: 1)",
        ] {
            let e = message(text);
            assert!(!e.contains("Config") && !e.contains("FullTextIndex"), "{e}");
        }
    }

    #[test]
    fn nested_unknown_key_is_refused() {
        let e = check("(\n lmtp: (\n  lisen: [],\n ),\n)").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("lisen"), "{e}");
    }

    #[test]
    fn a_dele_move_target_is_a_checked_mailbox_name() {
        let c = check("(pop3: (dele: Move(\"archive//pop\")))");
        let e = c.unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("empty hierarchy level"), "{e}");
        let e =
            check("(\n pop3: (\n  dele_for: [(\"bob\", Move(\"inbox\"))],\n ),\n)").unwrap_err();
        assert!(e.message.contains("into INBOX"), "{e}");
        let c = check("(pop3: (dele: Move(\"Archive/POP\")))").unwrap();
        assert!(matches!(&c.pop3.dele, DelePolicy::Move(n) if n.as_str() == "Archive/POP"));
    }

    #[test]
    fn bad_value_names_key_and_line() {
        let e = check("(\n store: (\n  compression_level: 40,\n ),\n)").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("store.compression_level"), "{e}");
    }

    #[test]
    fn invalid_value_is_located_by_its_whole_path() {
        // `max_line` is a key of pop3 and of imap; the error is about imap's, on line 3.
        let e = check("(\n pop3: (max_line: 512),\n imap: (max_line: 10),\n)").unwrap_err();
        assert!(e.message.starts_with("imap.max_line: "), "{e}");
        assert_eq!((e.line, e.column), (Some(3), Some(9)));
        let e = check("(lmtp: (timeout_secs: 5))").unwrap_err();
        assert_eq!((e.line, e.column), (Some(1), Some(9)));
    }

    #[test]
    fn wrong_type_has_position() {
        let e = check("(\n limits: (max_message_size: \"big\"),\n)").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(
            e.message, "limits.max_message_size: expected integer",
            "{e}"
        );
    }

    #[test]
    fn bad_address_is_refused() {
        assert!(check("(lmtp: (listen: [\"nowhere\"]))").is_err());
    }

    #[test]
    fn duplicate_listener_is_refused() {
        let e = check("(imap: (listen: [\"127.0.0.1:1\"]), pop3: (listen: [\"127.0.0.1:1\"]))")
            .unwrap_err();
        assert!(e.message.contains("two listeners"), "{e}");
    }

    #[test]
    fn bad_throttle_and_connection_limits_are_refused() {
        let e = check("(auth: (throttle: (base_delay_ms: 10, max_delay_ms: 5)))").unwrap_err();
        assert!(e.message.contains("auth.throttle"), "{e}");
        let e = check("(connections: (max_per_ip: 0))").unwrap_err();
        assert!(e.message.contains("connections"), "{e}");
        let e = check("(connections: (preauth_timeout_secs: 1))").unwrap_err();
        assert!(e.message.contains("preauth_timeout_secs"), "{e}");
        let e = check("(lmtp: (max_connections: 0))").unwrap_err();
        assert!(e.message.contains("lmtp.max_connections"), "{e}");
        let c = check("(lmtp: (starttls: true), auth: (cache_secs: 0))").unwrap();
        assert!(c.lmtp.starttls);
        assert_eq!(c.auth.cache_secs, 0);
    }

    #[test]
    fn trusted_networks_are_parsed_and_a_bad_entry_names_the_key() {
        let c = check("(connections: (trusted: [\"10.0.0.0/8\", \"2001:db8::1\"]))").unwrap();
        let shown: Vec<String> = c
            .connections
            .trusted
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(shown, ["10.0.0.0/8", "2001:db8::1/128"]);
        let d = check("()").unwrap().connections.trusted;
        assert!(d.iter().any(|n| n.contains("127.0.0.1".parse().unwrap())));
        assert!(d.iter().any(|n| n.contains("::1".parse().unwrap())));
        let e = check("(\n connections: (\n  trusted: [\"127.0.0.0/8\", \"10.0.0/8\"],\n ),\n)")
            .unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(
            e.message
                .starts_with("connections.trusted: \"10.0.0/8\" is not a network"),
            "{e}"
        );
        // A list over several lines: the entry's line is given, and the message still
        // names the key.
        let e = check("(connections: (trusted: [\n  \"::1/128\",\n  \"ten\",\n]))").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(
            e.message
                .starts_with("connections.trusted: \"ten\" is not a network"),
            "{e}"
        );
    }

    #[test]
    fn plugin_entries_are_checked() {
        let c = check(
            "(plugins: [(name: \"junk\", path: \"p/j.wasm\", hooks: [Filter], users: [\"bob\"],
               settings: {\"folder\": \"Junk\"}, on_failure: TempFail, timeout_ms: Some(50))])",
        );
        if cfg!(feature = "plugins") {
            let c = c.unwrap();
            let p = &c.plugins[0];
            assert_eq!(p.path, PathBuf::from("/base/p/j.wasm"));
            assert_eq!(p.on_failure, OnFailure::TempFail);
            assert_eq!(p.settings.get("folder").map(String::as_str), Some("Junk"));
        } else {
            assert!(c.unwrap_err().message.contains("plugins"));
            return;
        }
        for (text, key) in [
            ("(plugins: [(name: \"a b\", path: \"x\")])", "plugins.name"),
            (
                "(plugins: [(name: \"a\", path: \"x\"), (name: \"A\", path: \"y\")])",
                "plugins.name",
            ),
            ("(plugins: [(name: \"a\", path: \"\")])", "plugins.path"),
            (
                "(plugins: [(name: \"a\", path: \"x\", hooks: [Filter, Filter])])",
                "plugins.hooks",
            ),
            (
                "(plugins: [(name: \"a\", path: \"x\", memory_mib: Some(0))])",
                "plugins.memory_mib",
            ),
            (
                "(plugin_limits: (timeout_ms: 0))",
                "plugin_limits.timeout_ms",
            ),
            (
                "(plugin_limits: (pool_size: 65))",
                "plugin_limits.pool_size",
            ),
        ] {
            let e = check(text).unwrap_err();
            assert!(e.message.starts_with(key), "{text}: {e}");
        }
        let e = check("(plugins: [(name: \"a\", path: \"x\", bogus: 1)])").unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
    }

    #[test]
    fn acme_is_checked() {
        let c = check(
            "(imap: (tls_listen: [\"127.0.0.1:993\"]), acme: (names: [\"mail.example.org\"],
               contact: [\"mailto:a@example.org\"], ca_roots: Some(\"roots.pem\")))",
        )
        .unwrap();
        assert!(c.acme.enabled());
        assert_eq!(c.acme.challenge, AcmeChallenge::TlsAlpn01);
        assert_eq!(c.acme.ca_roots, Some(PathBuf::from("/base/roots.pem")));
        assert!(!check("()").unwrap().acme.enabled());
        for (text, key) in [
            ("(acme: (names: [\"*.example.org\"]))", "acme.names"),
            (
                "(acme: (names: [\"a.example\"], directory: \"http://ca\"))",
                "acme.directory",
            ),
            (
                "(acme: (names: [\"a.example\"], contact: [\"a@example.org\"]))",
                "acme.contact",
            ),
            (
                "(acme: (names: [\"a.example\"], challenge: Http01))",
                "acme.challenge",
            ),
            (
                "(imap: (tls_listen: []), pop3: (tls_listen: []), acme: (names: [\"a.example\"]))",
                "acme.challenge",
            ),
        ] {
            let e = check(text).unwrap_err();
            assert!(e.message.starts_with(key), "{text}: {e}");
        }
    }

    #[test]
    fn cert_without_key_is_refused() {
        assert!(check("(tls: (cert: Some(\"c.pem\")))").is_err());
    }
}
