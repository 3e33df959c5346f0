//! ACME (RFC 8555) certificates: issued by a CA for `acme.names`, kept in the data dir,
//! renewed before expiry, hot-swapped into the [`TlsManager`] (docs/http.md "ACME").
//!
//! The protocol (account, order, authorizations, CSR, download) is rustls-acme's
//! (docs/decisions.md "ACME client"): one [`rustls_acme::AcmeState`] is driven per
//! order, with a cache that never offers a certificate (so it orders at once) and keeps
//! the account key in `<data_dir>/acme/account.pem`. This module decides *when* to order
//! and what to do with the result:
//!
//! - At start, and whenever the certificate in `<data_dir>/acme/certificate.pem` is
//!   missing, does not cover the names, or has less than a third of its lifetime left.
//! - When asked ([`Acme::renew`], `nestbox acme renew` through the control socket).
//! - After a failure, again after a backoff (1 min doubling up to 6 h); the certificate
//!   served stays as it was, and one error line names the names, the CA and the error.
//!
//! Challenges are answered while an order is in flight: TLS-ALPN-01 (RFC 8737) on every
//! implicit-TLS listener ([`Acme::tls_alpn_config`], used by the accept loop when the
//! ClientHello offers only `acme-tls/1`), HTTP-01 (RFC 8555 §8.3) by the HTTP listener
//! ([`Acme::http01`]).
//!
//! The issued key and chain are written to one file (key first, then the chain; mode
//! 0600) by an atomic rename, so a crash never pairs a key with another certificate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::ServerConfig;
use rustls::client::ClientConfig;
use rustls_acme::{EventOk, ResolvesServerCertAcme, UseChallenge};
use serde::{Deserialize, Serialize};
use smol::stream::StreamExt;

use crate::config::{AcmeChallenge, AcmeConfig, Config};
use crate::shutdown::Shutdown;
use crate::tls::{TlsError, TlsManager};

/// How long one order may take (authorizations, processing, download) before it counts
/// as failed.
const ORDER_TIMEOUT: Duration = Duration::from_secs(600);
/// The first retry after a failure; doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// The renewal check wakes at least this often (clock changes, suspend).
const RECHECK: Duration = Duration::from_secs(24 * 3600);

pub use crate::tls::{acme_certificate_path as certificate_path, acme_dir as dir};

fn account_path(data_dir: &Path) -> PathBuf {
    dir(data_dir).join("account.pem")
}

/// A certificate now served, as `nestbox acme renew` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issued {
    pub names: Vec<String>,
    /// The serial number, hex with colons.
    pub serial: String,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
    pub fingerprint: String,
}

/// What the leaf of a kept certificate says.
#[derive(Debug, Clone, PartialEq)]
struct Leaf {
    names: Vec<String>,
    serial: String,
    not_before: i64,
    not_after: i64,
}

fn parse_leaf(der: &[u8]) -> Option<Leaf> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        Some(d.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Leaf {
        names,
        serial: cert.raw_serial_as_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// The leaf of the kept certificate file, if it can be read.
fn kept_leaf(data_dir: &Path) -> Option<Leaf> {
    let bytes = std::fs::read(certificate_path(data_dir)).ok()?;
    let der = rustls_pemfile::certs(&mut bytes.as_slice()).next()?.ok()?;
    parse_leaf(der.as_ref())
}

/// When a certificate valid from `not_before` to `not_after` is renewed: once less than
/// a third of its lifetime is left (Let's Encrypt's advice for 90-day certificates).
fn renew_at(not_before: i64, not_after: i64) -> i64 {
    not_after.saturating_sub(not_after.saturating_sub(not_before).max(0) / 3)
}

/// Whether `leaf` names exactly `names` (case-insensitively).
fn covers(leaf: &Leaf, names: &[String]) -> bool {
    let mut want: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let mut have = leaf.names.clone();
    want.sort();
    want.dedup();
    have.sort();
    have.dedup();
    want == have
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How long until the kept certificate should be renewed (zero: now).
fn until_due(data_dir: &Path, names: &[String]) -> Duration {
    match kept_leaf(data_dir) {
        Some(leaf) if covers(&leaf, names) => {
            let secs = renew_at(leaf.not_before, leaf.not_after).saturating_sub(unix_now());
            Duration::from_secs(u64::try_from(secs).unwrap_or(0))
        }
        _ => Duration::ZERO,
    }
}

fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// A renewal request: where to send its outcome.
type Reply = smol::channel::Sender<Result<Issued, String>>;

/// The resolver of the order in flight (it holds the challenge answers).
type Challenges = Arc<RwLock<Option<Arc<ResolvesServerCertAcme>>>>;

/// The running ACME manager: challenge answers for the listeners, renewal on request.
/// Cheap to clone.
#[derive(Clone)]
pub struct Acme {
    challenge: AcmeChallenge,
    challenges: Challenges,
    renew: smol::channel::Sender<Reply>,
}

impl Acme {
    /// Prepares the manager; the returned future runs it until `shutdown` (spawn it).
    pub fn start(
        config: &Config,
        tls: TlsManager,
        shutdown: Shutdown,
    ) -> Result<(Acme, impl Future<Output = ()> + Send + 'static), TlsError> {
        let client = client_config(&config.acme)?;
        let (renew, requests) = smol::channel::unbounded();
        let acme = Acme {
            challenge: config.acme.challenge,
            challenges: Arc::default(),
            renew,
        };
        let worker = Worker {
            config: config.acme.clone(),
            data_dir: config.data_dir.clone(),
            client,
            tls,
            challenges: acme.challenges.clone(),
        };
        Ok((acme, worker.run(requests, shutdown)))
    }

    /// Whether the accept loop must look for TLS-ALPN-01 challenge handshakes.
    pub fn answers_tls_alpn(&self) -> bool {
        self.challenge == AcmeChallenge::TlsAlpn01
    }

    /// The rustls configuration for a TLS-ALPN-01 challenge handshake (RFC 8737 §3):
    /// the challenge certificate for the SNI name, ALPN `acme-tls/1` only. `None` when no
    /// order is in flight.
    pub fn tls_alpn_config(&self) -> Option<Arc<ServerConfig>> {
        let resolver = self.resolver()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .ok()?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![rustls_acme::acme::ACME_TLS_ALPN_NAME.to_vec()];
        Some(Arc::new(config))
    }

    /// The key authorization for an HTTP-01 `token` (RFC 8555 §8.3), while its order is
    /// in flight.
    pub fn http01(&self, token: &str) -> Option<String> {
        if self.challenge != AcmeChallenge::Http01 {
            return None;
        }
        self.resolver()?.get_http_01_key_auth(token)
    }

    /// Orders a new certificate now and waits for the outcome (the error text names the
    /// CA and what failed; the old certificate then stays).
    pub async fn renew(&self) -> Result<Issued, String> {
        let (tx, rx) = smol::channel::bounded(1);
        self.renew
            .send(tx)
            .await
            .map_err(|_| "the ACME manager is not running".to_string())?;
        rx.recv()
            .await
            .map_err(|_| "the ACME manager stopped".to_string())?
    }

    fn resolver(&self) -> Option<Arc<ResolvesServerCertAcme>> {
        match self.challenges.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

/// The TLS client configuration for talking to the CA: `acme.ca_roots`, or Mozilla's
/// roots.
fn client_config(acme: &AcmeConfig) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match &acme.ca_roots {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| TlsError::Io(path.clone(), e))?;
            for cert in rustls_pemfile::certs(&mut bytes.as_slice()) {
                let cert = cert.map_err(|e| TlsError::Pem(path.clone(), e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Pem(path.clone(), e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(TlsError::Pem(
                    path.clone(),
                    "no CERTIFICATE block found".into(),
                ));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Why the worker woke up.
enum Wake {
    Due,
    Asked(Reply),
    Stop,
}

struct Worker {
    config: AcmeConfig,
    data_dir: PathBuf,
    client: Arc<ClientConfig>,
    tls: TlsManager,
    challenges: Challenges,
}

impl Worker {
    async fn run(self, requests: smol::channel::Receiver<Reply>, shutdown: Shutdown) {
        let mut failures = 0u32;
        let mut retry: Option<Instant> = None;
        loop {
            let wait = match retry {
                Some(at) => at.saturating_duration_since(Instant::now()),
                None => until_due(&self.data_dir, &self.config.names),
            };
            let timer_fired = smol::Timer::after(wait.min(RECHECK));
            let wake = smol::future::or(
                async {
                    timer_fired.await;
                    Wake::Due
                },
                smol::future::or(
                    async {
                        match requests.recv().await {
                            Ok(reply) => Wake::Asked(reply),
                            Err(_) => Wake::Stop,
                        }
                    },
                    async {
                        shutdown.wait().await;
                        Wake::Stop
                    },
                ),
            )
            .await;
            let reply = match wake {
                Wake::Stop => return,
                Wake::Asked(reply) => Some(reply),
                // Woken to re-check, not yet due.
                Wake::Due if wait > RECHECK => continue,
                Wake::Due => None,
            };
            let outcome = smol::future::or(self.order(), async {
                shutdown.wait().await;
                Err("the server is shutting down".to_string())
            })
            .await;
            match &outcome {
                Ok(issued) => {
                    failures = 0;
                    retry = None;
                    log::info!(
                        "acme: certificate for {} issued by {}: serial {}, expires {} (Unix), fingerprint {}",
                        issued.names.join(","),
                        self.config.directory,
                        issued.serial,
                        issued.not_after,
                        issued.fingerprint
                    );
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let next = backoff(failures);
                    retry = Some(Instant::now() + next);
                    log::error!(
                        "acme: certificate for {} from {} not renewed, keeping the current one (next try in {} s): {e}",
                        self.config.names.join(","),
                        self.config.directory,
                        next.as_secs()
                    );
                }
            }
            if let Some(reply) = reply {
                let _ = reply.send(outcome).await;
            }
        }
    }

    /// One order, start to finish: on success the new certificate is written and served.
    async fn order(&self) -> Result<Issued, String> {
        let issued = Arc::new(Mutex::new(None));
        let cache = Files {
            account: account_path(&self.data_dir),
            issued: issued.clone(),
        };
        let mut state = rustls_acme::AcmeConfig::new_with_client_config(
            &self.config.names,
            self.client.clone(),
        )
        .directory(&self.config.directory)
        .contact(&self.config.contact)
        .challenge_type(match self.config.challenge {
            AcmeChallenge::TlsAlpn01 => UseChallenge::TlsAlpn01,
            AcmeChallenge::Http01 => UseChallenge::Http01,
        })
        .cache(cache)
        .state();
        self.set_challenges(Some(state.resolver()));
        let outcome = smol::future::or(
            async {
                // The cache offers no certificate, so the state orders at once; the
                // first error ends this attempt (the backoff is ours, not the state's).
                loop {
                    match state.next().await {
                        Some(Ok(EventOk::CertCacheStore)) => return Ok(()),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.to_string()),
                        None => return Err("the ACME client stopped".to_string()),
                    }
                }
            },
            async {
                smol::Timer::after(ORDER_TIMEOUT).await;
                Err(format!(
                    "no certificate within {} s",
                    ORDER_TIMEOUT.as_secs()
                ))
            },
        )
        .await;
        self.set_challenges(None);
        outcome?;
        let pem = take(&issued).ok_or("the CA sent no certificate")?;
        self.install(&pem)
    }

    /// Writes the key and chain and serves them.
    fn install(&self, pem: &[u8]) -> Result<Issued, String> {
        let path = certificate_path(&self.data_dir);
        let leaf = rustls_pemfile::certs(&mut &pem[..])
            .next()
            .and_then(|c| c.ok())
            .and_then(|der| parse_leaf(der.as_ref()))
            .ok_or("the CA's certificate cannot be parsed")?;
        crate::tls::create_private_dir(&dir(&self.data_dir)).map_err(|e| e.to_string())?;
        crate::tls::write_atomic(&path, pem, 0o600).map_err(|e| e.to_string())?;
        let fingerprint = self
            .tls
            .use_files(path.clone(), path)
            .map_err(|e| e.to_string())?;
        Ok(Issued {
            names: leaf.names,
            serial: leaf.serial,
            not_after: leaf.not_after,
            fingerprint,
        })
    }

    fn set_challenges(&self, resolver: Option<Arc<ResolvesServerCertAcme>>) {
        match self.challenges.write() {
            Ok(mut g) => *g = resolver,
            Err(p) => *p.into_inner() = resolver,
        }
    }
}

fn take(slot: &Mutex<Option<Vec<u8>>>) -> Option<Vec<u8>> {
    match slot.lock() {
        Ok(mut g) => g.take(),
        Err(p) => p.into_inner().take(),
    }
}

/// rustls-acme's cache: the account key in a file; no certificate offered (we decide
/// when to order), the issued one handed back through `issued`.
struct Files {
    account: PathBuf,
    issued: Arc<Mutex<Option<Vec<u8>>>>,
}

#[async_trait::async_trait]
impl rustls_acme::CertCache for Files {
    type EC = String;
    async fn load_cert(&self, _: &[String], _: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
    async fn store_cert(&self, _: &[String], _: &str, cert: &[u8]) -> Result<(), String> {
        match self.issued.lock() {
            Ok(mut g) => *g = Some(cert.to_vec()),
            Err(p) => *p.into_inner() = Some(cert.to_vec()),
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl rustls_acme::AccountCache for Files {
    type EA = String;
    /// The PKCS#8 account key, if one was kept.
    async fn load_account(&self, _: &[String], _: &str) -> Result<Option<Vec<u8>>, String> {
        let bytes = match std::fs::read(&self.account) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", self.account.display())),
        };
        match rustls_pemfile::private_key(&mut bytes.as_slice()) {
            Ok(Some(rustls::pki_types::PrivateKeyDer::Pkcs8(k))) => {
                Ok(Some(k.secret_pkcs8_der().to_vec()))
            }
            _ => Err(format!(
                "{}: no PKCS#8 PRIVATE KEY block",
                self.account.display()
            )),
        }
    }
    async fn store_account(&self, _: &[String], _: &str, account: &[u8]) -> Result<(), String> {
        let pem = pem_block("PRIVATE KEY", account);
        if let Some(dir) = self.account.parent() {
            crate::tls::create_private_dir(dir).map_err(|e| e.to_string())?;
        }
        crate::tls::write_atomic(&self.account, pem.as_bytes(), 0o600).map_err(|e| e.to_string())
    }
}

/// `-----BEGIN label-----`, base64 in 64-column lines, `-----END label-----` (RFC 7468).
fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_with_a_third_left() {
        // 90 days from 0: due after 60 days.
        assert_eq!(renew_at(0, 90 * 86400), 60 * 86400);
        assert_eq!(renew_at(100, 100), 100);
        // A certificate whose notAfter is before notBefore is due at notAfter.
        assert_eq!(renew_at(200, 100), 100);
    }

    #[test]
    fn backoff_doubles_up_to_six_hours() {
        assert_eq!(backoff(1), Duration::from_secs(60));
        assert_eq!(backoff(2), Duration::from_secs(120));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn a_kept_certificate_is_checked_against_the_names() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["mail.example.org".to_string()];
        assert_eq!(until_due(dir.path(), &names), Duration::ZERO);
        let (cert, key) = crate::tls::generate_pem("mail.example.org").unwrap();
        std::fs::create_dir_all(super::dir(dir.path())).unwrap();
        std::fs::write(certificate_path(dir.path()), format!("{key}{cert}")).unwrap();
        let leaf = kept_leaf(dir.path()).unwrap();
        assert_eq!(leaf.names, ["mail.example.org", "localhost"]);
        // The self-signed one also names localhost: not exactly the names, so due now.
        assert_eq!(until_due(dir.path(), &names), Duration::ZERO);
        let both = vec!["localhost".to_string(), "Mail.Example.org".to_string()];
        assert!(until_due(dir.path(), &both) > Duration::from_secs(86400));
    }

    #[test]
    fn account_key_round_trips_through_pem() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files {
            account: dir.path().join("acme/account.pem"),
            issued: Arc::default(),
        };
        use rustls_acme::AccountCache;
        assert_eq!(smol::block_on(files.load_account(&[], "")).unwrap(), None);
        let key = rustls_acme::acme::Account::generate_key_pair();
        smol::block_on(files.store_account(&[], "", &key)).unwrap();
        assert_eq!(
            smol::block_on(files.load_account(&[], "")).unwrap(),
            Some(key)
        );
    }
}
