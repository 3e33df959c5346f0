//! TLS for every listener: the server certificate, the rustls configuration, and reloads.
//!
//! rustls with the *ring* provider (pure Rust + small C/asm core that cross-compiles to
//! small ARM boards), TLS 1.2 and 1.3 only (RFC 8996 retired 1.0/1.1). Connections use
//! futures-rustls, the maintained successor of async-rustls (docs/decisions.md).
//!
//! Certificates come from the PEM files in `tls.cert` / `tls.key`, or, when none are
//! configured, from a self-signed certificate generated on first start (SANs: the
//! configured hostname, `localhost`, and the listen IP addresses with 127.0.0.1 and ::1,
//! see [`listen_ips`]) and kept in `<data_dir>/tls/{cert.pem,key.pem}`
//! (key mode 0600), reused on later starts. Its SHA-256 fingerprint is printed so users
//! can trust it.
//!
//! With `acme` on, the certificate issued by the CA (src/acme.rs) replaces the
//! self-signed one once issued, through [`TlsManager::use_files`].
//!
//! [`TlsManager::reload`] re-reads the files (SIGHUP): connections already open keep the
//! configuration they started with; new handshakes use the new one.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use futures_rustls::TlsAcceptor;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// Why certificates could not be loaded.
#[derive(Debug)]
pub enum TlsError {
    /// A file could not be read or written.
    Io(PathBuf, std::io::Error),
    /// A PEM file holds no certificate or no private key, or cannot be parsed.
    Pem(PathBuf, String),
    /// rustls refused the certificate/key pair (e.g. the key does not match).
    Config(String),
    /// The self-signed certificate could not be generated.
    Generate(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            TlsError::Pem(p, e) => write!(f, "{}: {e}", p.display()),
            TlsError::Config(e) => write!(f, "unusable certificate or key: {e}"),
            TlsError::Generate(e) => write!(f, "cannot generate a certificate: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// Where the certificate and key live.
#[derive(Debug, Clone)]
struct Source {
    cert: PathBuf,
    key: PathBuf,
}

struct Current {
    config: Arc<ServerConfig>,
    fingerprint: String,
    /// The leaf certificate's notAfter, in seconds since the Unix epoch.
    not_after: Option<i64>,
}

/// The server's TLS state, shared by all listeners. Cheap to clone.
#[derive(Clone)]
pub struct TlsManager {
    /// The files [`TlsManager::reload`] reads; ACME points it at its certificate
    /// ([`TlsManager::use_files`]).
    source: Arc<RwLock<Source>>,
    current: Arc<RwLock<Arc<Current>>>,
}

/// The IP addresses the TLS-capable listeners are bound to, for the self-signed
/// certificate's SANs: loopback always, unspecified addresses (`0.0.0.0`, `::`) skipped.
pub fn listen_ips(config: &Config) -> Vec<IpAddr> {
    let mut ips = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    let all = [
        &config.imap.listen,
        &config.imap.tls_listen,
        &config.pop3.listen,
        &config.pop3.tls_listen,
        &config.lmtp.listen,
        &config.http.tls_listen,
    ];
    for addr in all.into_iter().flatten() {
        let ip = addr.ip();
        if !ip.is_unspecified() && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

/// `<data_dir>/acme`: ACME's account key and the certificate it got (the ACME client
/// writes there; this module serves the certificate).
pub fn acme_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("acme")
}

/// The ACME certificate: the issued private key and certificate chain, one PEM file.
pub fn acme_certificate_path(data_dir: &Path) -> PathBuf {
    acme_dir(data_dir).join("certificate.pem")
}

/// `<data_dir>/tls`, where the generated certificate is kept.
pub fn self_signed_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

impl TlsManager {
    /// Loads the configured certificate, the ACME one kept in the data dir (when `acme`
    /// is on and one was issued), or the self-signed one (generating it on first start).
    pub fn load(config: &Config) -> Result<TlsManager, TlsError> {
        let acme_file = acme_certificate_path(&config.data_dir);
        let acme = Source {
            cert: acme_file.clone(),
            key: acme_file,
        };
        let source = match (&config.tls.cert, &config.tls.key) {
            (Some(cert), Some(key)) => Source {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ if config.acme.enabled() && acme.cert.exists() => match build(&acme) {
                Ok(_) => acme,
                Err(e) => {
                    log::warn!(
                        "acme: cannot use the kept certificate, serving the self-signed one until a new one is issued: {e}"
                    );
                    self_signed(config)?
                }
            },
            _ => self_signed(config)?,
        };
        let current = build(&source)?;
        Ok(TlsManager {
            source: Arc::new(RwLock::new(source)),
            current: Arc::new(RwLock::new(Arc::new(current))),
        })
    }

    /// The acceptor for a new handshake, with the configuration current now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.snapshot().config.clone())
    }

    /// The rustls configuration current now.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.snapshot().config.clone()
    }

    /// `SHA256:AB:CD:…` of the current leaf certificate (the form `openssl x509
    /// -fingerprint -sha256` prints).
    pub fn fingerprint(&self) -> String {
        self.snapshot().fingerprint.clone()
    }

    /// When the current leaf certificate expires, in seconds since the Unix epoch.
    pub fn not_after(&self) -> Option<i64> {
        self.snapshot().not_after
    }

    /// Re-reads the certificate and key files. On error the old configuration stays.
    /// Returns the new fingerprint.
    pub fn reload(&self) -> Result<String, TlsError> {
        let source = match self.source.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        self.swap(source)
    }

    /// Serves `cert` and `key` (PEM; may be one file) from now on, and after a reload
    /// (ACME: its new certificate). Like [`TlsManager::reload`], open connections keep
    /// theirs and on error nothing changes. Returns the new fingerprint.
    pub fn use_files(&self, cert: PathBuf, key: PathBuf) -> Result<String, TlsError> {
        self.swap(Source { cert, key })
    }

    fn swap(&self, source: Source) -> Result<String, TlsError> {
        let next = build(&source)?;
        let fp = next.fingerprint.clone();
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        match self.source.write() {
            Ok(mut g) => *g = source,
            Err(poisoned) => *poisoned.into_inner() = source,
        }
        Ok(fp)
    }

    fn snapshot(&self) -> Arc<Current> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The self-signed certificate's files, generated on first use.
fn self_signed(config: &Config) -> Result<Source, TlsError> {
    let dir = self_signed_dir(&config.data_dir);
    let source = Source {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if !source.cert.exists() || !source.key.exists() {
        generate_self_signed(&dir, &source, &config.hostname, &listen_ips(config))?;
        log::info!(
            "tls: generated a self-signed certificate in {}",
            dir.display()
        );
    }
    Ok(source)
}

/// SHA-256 of a DER certificate as `SHA256:AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = String::from("SHA256:");
    for (i, b) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::Io(path.to_path_buf(), e))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem(path.to_path_buf(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Pem(
            path.to_path_buf(),
            "no CERTIFICATE block found".into(),
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::Io(path.to_path_buf(), e))?;
    rustls_pemfile::private_key(&mut bytes.as_slice())
        .map_err(|e| TlsError::Pem(path.to_path_buf(), e.to_string()))?
        .ok_or_else(|| TlsError::Pem(path.to_path_buf(), "no PRIVATE KEY block found".into()))
}

/// A rustls server configuration: ring provider, TLS 1.3 and 1.2, no client certificates.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))
}

fn build(source: &Source) -> Result<Current, TlsError> {
    let certs = read_certs(&source.cert)?;
    let key = read_key(&source.key)?;
    let fingerprint = certs
        .first()
        .map(|c| fingerprint(c.as_ref()))
        .unwrap_or_default();
    let not_after = certs.first().and_then(|c| {
        x509_parser::parse_x509_certificate(c.as_ref())
            .ok()
            .map(|(_, cert)| cert.validity().not_after.timestamp())
    });
    let config = server_config(certs, key)?;
    Ok(Current {
        config: Arc::new(config),
        fingerprint,
        not_after,
    })
}

/// Generates a self-signed certificate (ECDSA P-256) for `hostname` and `localhost`.
/// Returns (certificate PEM, key PEM).
pub fn generate_pem(hostname: &str) -> Result<(String, String), TlsError> {
    generate_pem_for(hostname, &[])
}

/// [`generate_pem`] with IP address SANs too, so clients that connect by IP and check
/// the name (RFC 6125 §6.2.1 / RFC 9525 §6.2.1: IP-ID) accept it.
pub fn generate_pem_for(hostname: &str, ips: &[IpAddr]) -> Result<(String, String), TlsError> {
    let mut names = vec![hostname.to_string()];
    if !hostname.eq_ignore_ascii_case("localhost") {
        names.push("localhost".into());
    }
    let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut params =
        rcgen::CertificateParams::new(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    for ip in ips {
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(*ip));
    }
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn generate_self_signed(
    dir: &Path,
    source: &Source,
    hostname: &str,
    ips: &[IpAddr],
) -> Result<(), TlsError> {
    create_private_dir(dir)?;
    let (cert, key) = generate_pem_for(hostname, ips)?;
    // Key first, so a crash never leaves a certificate without its key.
    write_atomic(&source.key, key.as_bytes(), 0o600)?;
    write_atomic(&source.cert, cert.as_bytes(), 0o644)?;
    Ok(())
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|e| TlsError::Io(dir.to_path_buf(), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| TlsError::Io(dir.to_path_buf(), e))?;
    }
    Ok(())
}

/// Writes `bytes` to a temp file created with `mode`, fsyncs, and renames it over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let io = |e| TlsError::Io(path.to_path_buf(), e);
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config for mail.example whose data directory is a fresh temp dir.
    fn config() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            data_dir: dir.path().to_path_buf(),
            hostname: "mail.example".into(),
            ..Config::default()
        };
        (dir, cfg)
    }

    #[test]
    fn self_signed_is_generated_once_and_reused() {
        let (dir, cfg) = config();
        let first = TlsManager::load(&cfg).unwrap();
        let fp = first.fingerprint();
        assert!(
            fp.starts_with("SHA256:") && fp.len() == 7 + 32 * 3 - 1,
            "{fp}"
        );
        let key = dir.path().join("tls/key.pem");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = TlsManager::load(&cfg).unwrap();
        assert_eq!(second.fingerprint(), fp);
        assert!(second.not_after().unwrap() > 2_000_000_000);
    }

    #[test]
    fn self_signed_names_the_listen_ips() {
        let (dir, mut cfg) = config();
        cfg.imap.tls_listen = vec![
            "192.0.2.7:993".parse().unwrap(),
            "0.0.0.0:994".parse().unwrap(),
        ];
        TlsManager::load(&cfg).unwrap();
        let pem = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
        let der = rustls_pemfile::certs(&mut pem.as_slice())
            .next()
            .unwrap()
            .unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let ips: Vec<_> = san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::IPAddress(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect();
        assert!(ips.contains(&vec![192, 0, 2, 7]), "{ips:?}");
        assert!(ips.contains(&vec![127, 0, 0, 1]), "{ips:?}");
        assert!(!ips.contains(&vec![0, 0, 0, 0]), "{ips:?}");
    }

    #[test]
    fn reload_picks_up_new_files_and_keeps_old_on_error() {
        let (dir, cfg) = config();
        let m = TlsManager::load(&cfg).unwrap();
        let old = m.fingerprint();
        let old_config = m.server_config();
        let (cert, key) = generate_pem("other.example").unwrap();
        std::fs::write(dir.path().join("tls/cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("tls/key.pem"), key).unwrap();
        let new = m.reload().unwrap();
        assert_ne!(new, old);
        assert_eq!(m.fingerprint(), new);
        assert!(!Arc::ptr_eq(&old_config, &m.server_config()));
        std::fs::write(dir.path().join("tls/cert.pem"), "garbage").unwrap();
        assert!(m.reload().is_err());
        assert_eq!(m.fingerprint(), new);
    }

    #[test]
    fn configured_files_are_used() {
        let (dir, mut cfg) = config();
        let (cert, key) = generate_pem("files.example").unwrap();
        std::fs::write(dir.path().join("c.pem"), cert).unwrap();
        std::fs::write(dir.path().join("k.pem"), key).unwrap();
        cfg.tls.cert = Some(dir.path().join("c.pem"));
        cfg.tls.key = Some(dir.path().join("k.pem"));
        TlsManager::load(&cfg).unwrap();
        assert!(!dir.path().join("tls").exists());
        cfg.tls.key = Some(dir.path().join("missing.pem"));
        assert!(TlsManager::load(&cfg).is_err());
    }
}
