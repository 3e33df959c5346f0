//! Accounts' secrets and logins: argon2id password hashes (RFC 9106) in PHC string form,
//! app passwords, SASL decoders ([`sasl`]), brute-force throttling ([`throttle`]), the
//! login cache ([`cache`]) and the plaintext policy ([`plaintext_allowed`]).
//!
//! Passwords are never logged, never kept after a login (the cache keeps a keyed hash),
//! and compared only in constant time (argon2's verifier, [`ct_eq`]).

pub mod cache;
mod peer;
pub mod sasl;
pub mod throttle;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::{Argon2Config, AuthConfig, Plaintext};
use crate::store::{Store, UserRecord};
pub use peer::Peer;

use cache::AuthCache;
use throttle::{Throttle, Verdict};

/// Why a login failed. Unknown user and wrong password are the same `Failed`, so replies
/// cannot tell them apart.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthError {
    Failed,
    /// Too many failures from this address: refused without checking the password.
    /// IMAP: `NO [UNAVAILABLE]` (RFC 5530 §3); POP3: `-ERR [LOGIN-DELAY]` or
    /// `-ERR [SYS/TEMP]` (RFC 2449 §8.1.2, RFC 3206).
    Throttled {
        retry_after: Duration,
    },
    /// The store could not be asked; try again later.
    Temporary(String),
}

/// Whether passwords may be sent on this connection (config `auth.plaintext`): always
/// over TLS; without TLS per the policy, where `Loopback` means a loopback address or a
/// Unix socket. IMAP advertises LOGINDISABLED and POP3 hides USER/SASL when this is false
/// (RFC 3501 §6.2.3, RFC 2595 §2.1).
pub fn plaintext_allowed(policy: Plaintext, peer: Peer) -> bool {
    peer.tls
        || match policy {
            Plaintext::Always => true,
            Plaintext::Loopback => peer.is_local(),
            Plaintext::Never => false,
        }
}

/// Constant-time equality of two byte strings (the length is not hidden).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a record still holds this PHC string, as its password or an app password.
fn holds_hash(user: &UserRecord, hash: &str) -> bool {
    let mut found = ct_eq(user.password_hash.as_bytes(), hash.as_bytes());
    for a in &user.app_passwords {
        found |= ct_eq(a.hash.as_bytes(), hash.as_bytes());
    }
    found
}

/// Checks credentials for every protocol (IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS/AUTH):
/// throttling, the login cache and app passwords live here, so that every protocol gets
/// them the same way. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    hostname: String,
    /// A hash of a random password, verified for unknown users so that a failed login takes
    /// as long whether or not the user exists.
    dummy: String,
    throttle: Arc<Mutex<Throttle>>,
    cache: Arc<AuthCache>,
    /// argon2 checks running at once: no more than the CPUs (they are CPU-bound), so ten
    /// logins at once take at most that many times `argon2.memory_kib`, not ten times.
    hashing: Arc<smol::lock::Semaphore>,
    /// See [`Authenticator::checks`].
    checks: Arc<std::sync::atomic::AtomicU64>,
}

impl Authenticator {
    /// With the default throttle and cache settings.
    pub fn new(store: Store, hostname: &str, cfg: &Argon2Config) -> Authenticator {
        let auth = AuthConfig {
            argon2: cfg.clone(),
            ..AuthConfig::default()
        };
        Authenticator::from_config(store, hostname, &auth)
    }

    /// With the `auth` section of the config.
    pub fn from_config(store: Store, hostname: &str, cfg: &AuthConfig) -> Authenticator {
        let random: [u8; 16] = rand::random();
        let dummy = hash_password(&format!("{random:?}"), &cfg.argon2).unwrap_or_default();
        Authenticator {
            store,
            hostname: hostname.to_string(),
            dummy,
            throttle: Arc::new(Mutex::new(Throttle::new(&cfg.throttle))),
            cache: Arc::new(AuthCache::new(Duration::from_secs(cfg.cache_secs))),
            hashing: Arc::new(smol::lock::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
            checks: Arc::default(),
        }
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, Throttle> {
        match self.throttle.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The login cache (for `forget_user` and tests).
    pub fn cache(&self) -> &AuthCache {
        &self.cache
    }

    /// Verifies `password` for `login` (`alice` or `alice@<hostname>`), as the user's
    /// password or one of their app passwords. argon2 runs on the blocking pool, at most
    /// one check per CPU at a time.
    ///
    /// An address with too many recent failures gets [`AuthError::Throttled`] without a
    /// check. A failure is answered only after the throttle's delay (doubling per failure
    /// from that address and for that user); a success is answered at once.
    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
        peer: Peer,
    ) -> Result<UserRecord, AuthError> {
        let result = self.check(login, password, peer).await;
        crate::metrics::login(match &result {
            Ok(_) => crate::metrics::Login::Ok,
            Err(AuthError::Throttled { .. }) => crate::metrics::Login::Throttled,
            Err(AuthError::Failed | AuthError::Temporary(_)) => crate::metrics::Login::Failed,
        });
        result
    }

    /// [`Authenticator::authenticate`] without the metrics.
    async fn check(
        &self,
        login: &str,
        password: &str,
        peer: Peer,
    ) -> Result<UserRecord, AuthError> {
        let now = Instant::now();
        match self.throttle().check(peer.ip, now) {
            Verdict::Allow => {}
            Verdict::Wait(retry_after) | Verdict::Banned(retry_after) => {
                log::info!("auth: throttled login for {login:?} from {peer}");
                return Err(AuthError::Throttled { retry_after });
            }
        }
        // Logins with these credentials checked now go first; their success is then found
        // in the cache below.
        let flight = self.cache.flight(login, password);
        let turn = match &flight {
            Some(f) => Some(f.turn().await),
            None => None,
        };
        let user = self
            .store
            .find_user(login, &self.hostname)
            .await
            .map_err(|e| AuthError::Temporary(e.to_string()))?;
        if let (Some(u), Some((name, hash))) = (&user, self.cache.get(login, password, now))
            && u.name == name
            && holds_hash(u, &hash)
        {
            return Ok(u.clone());
        }
        let verified = match &user {
            Some(u) => self.verify_user(u, password).await,
            None => {
                let dummy = self.dummy.clone();
                let password = password.to_string();
                let _slot = self.hashing.acquire().await;
                smol::unblock(move || verify_password(&dummy, &password)).await;
                None
            }
        };
        match (user, verified) {
            (Some(u), Some(hash)) => {
                self.throttle().success(&u.name);
                self.cache.insert(login, password, &u.name, &hash, now);
                Ok(u)
            }
            (user, _) => {
                // The next in line checks for itself: failures are not cached, and the
                // throttle's wait below is this login's alone.
                drop(turn);
                let key = user.map(|u| u.name).unwrap_or_else(|| login.to_lowercase());
                let wait = self.throttle().failure(peer.ip, &key, Instant::now());
                log::info!(
                    "auth: failed login for {login:?} from {}; answering in {} ms",
                    peer,
                    wait.as_millis()
                );
                if !wait.is_zero() {
                    smol::Timer::after(wait).await;
                }
                Err(AuthError::Failed)
            }
        }
    }

    /// The PHC string `password` matches: the user's password, else an app password.
    async fn verify_user(&self, user: &UserRecord, password: &str) -> Option<String> {
        let mut hashes = vec![user.password_hash.clone()];
        hashes.extend(user.app_passwords.iter().map(|a| a.hash.clone()));
        let password = password.to_string();
        let _slot = self.hashing.acquire().await;
        self.checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        smol::unblock(move || hashes.into_iter().find(|h| verify_password(h, &password))).await
    }

    /// argon2 checks of users' passwords run since start (for tests).
    pub fn checks(&self) -> u64 {
        self.checks.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Characters of generated app passwords: lower-case letters and digits without the
/// look-alikes 0/o, 1/l/i (31 symbols, ~4.95 bits each).
const APP_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A new random app password: four groups of five characters (~99 bits), easy to type on
/// a phone, e.g. `k7hqm-x3vbd-9srfa-eu2wn`.
pub fn generate_app_password() -> String {
    use rand::RngExt as _;
    let mut rng = rand::rng();
    let mut out = String::with_capacity(23);
    for i in 0..20 {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        let n = rng.random_range(0..APP_ALPHABET.len());
        out.push(char::from(APP_ALPHABET.get(n).copied().unwrap_or(b'a')));
    }
    out
}

/// Why a password could not be hashed.
#[derive(Debug)]
pub struct HashError(pub String);

impl std::fmt::Display for HashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot hash the password: {}", self.0)
    }
}

impl std::error::Error for HashError {}

/// Hashes a password with argon2id and a fresh random salt.
pub fn hash_password(password: &str, cfg: &Argon2Config) -> Result<String, HashError> {
    let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
        .map_err(|e| HashError(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| HashError(e.to_string()))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Checks a password against a stored PHC string: argon2 with the stored parameters and
/// salt, then a constant-time comparison ([`ct_eq`]). A malformed stored hash never
/// matches. The working memory comes from [`working_memory`] and is returned to the
/// system when the check ends.
pub fn verify_password(stored: &str, password: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(expected), Ok(params), Ok(algorithm)) = (
        hash.hash,
        Params::try_from(&hash),
        Algorithm::try_from(hash.algorithm),
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt = [0u8; 64];
    let Some(salt) = hash.salt.and_then(|s| s.decode_b64(&mut salt).ok()) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut computed = vec![0u8; expected.len()];
    let mut memory = working_memory(argon.params().block_count());
    argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, &mut memory)
        .is_ok()
        && ct_eq(&computed, expected.as_bytes())
}

/// argon2's working memory for one hash: `blocks` KiB (19 MiB by default), in an
/// allocation of more than 32 MiB. glibc serves a request above its mmap threshold with
/// a mapping of its own and unmaps it on free, but the threshold adapts upwards to the
/// largest block freed, up to 32 MiB: after that a 19 MiB request comes from the thread's
/// heap and stays resident once freed (ten logins at once left the server at 208 MB).
/// Asking for more than the highest threshold keeps every hash in its own mapping; only
/// the blocks argon2 uses are ever touched.
fn working_memory(blocks: usize) -> Vec<argon2::Block> {
    const OWN_MAPPING: usize = (32 << 20) / argon2::Block::SIZE + 1;
    let mut v = Vec::with_capacity(blocks.max(OWN_MAPPING));
    v.resize(blocks, argon2::Block::default());
    v
}

/// Validates a new password: not empty, no control characters, at most 1024 bytes.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    if password.len() > 1024 {
        return Err("the password is longer than 1024 bytes".into());
    }
    if password.chars().any(|c| c.is_control()) {
        return Err("the password contains control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Config {
        Argon2Config {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// Cheap argon2 and a 1 ms throttle, so tests do not sleep noticeably.
    fn fast() -> AuthConfig {
        AuthConfig {
            argon2: cheap(),
            throttle: crate::config::ThrottleConfig {
                base_delay_ms: 1,
                max_delay_ms: 4,
                ban_after: 5,
                ban_secs: 600,
            },
            ..AuthConfig::default()
        }
    }

    fn ip(s: &str) -> Peer {
        Peer {
            ip: Some(s.parse().unwrap()),
            tls: false,
        }
    }

    /// Runs `test` on a store with the user alice (password "pw"), given the store, an
    /// authenticator on it and a peer at 127.0.0.1.
    fn with_alice(test: impl AsyncFnOnce(&Store, &Authenticator, Peer)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &crate::config::StoreConfig::default()).unwrap();
        let auth = Authenticator::from_config(store.clone(), "mail.example", &fast());
        smol::block_on(async {
            let hash = hash_password("pw", &cheap()).unwrap();
            store.add_user("alice", hash).await.unwrap();
            test(&store, &auth, ip("127.0.0.1")).await;
        });
        store.shutdown();
    }

    #[test]
    fn throttled_ip_is_refused_other_ip_still_logs_in() {
        with_alice(async |_, auth, _| {
            let attacker = ip("192.0.2.66");
            let mut refused = None;
            for _ in 0..10 {
                match auth.authenticate("alice", "guess", attacker).await {
                    Err(AuthError::Failed) => {}
                    Err(AuthError::Throttled { retry_after }) => {
                        refused = Some(retry_after);
                        break;
                    }
                    other => panic!("{other:?}"),
                }
            }
            let retry = refused.expect("the attacker was never refused");
            assert!(retry > Duration::from_secs(500), "{retry:?}");
            // Even the right password is refused from the banned address...
            assert!(matches!(
                auth.authenticate("alice", "pw", attacker).await,
                Err(AuthError::Throttled { .. })
            ));
            // ...but works from another one.
            assert_eq!(
                auth.authenticate("alice", "pw", ip("198.51.100.2"))
                    .await
                    .map(|u| u.name),
                Ok("alice".into())
            );
        });
    }

    #[test]
    fn cache_skips_argon2_and_follows_password_changes() {
        with_alice(async |store, auth, peer| {
            assert!(auth.authenticate("alice", "pw", peer).await.is_ok());
            assert_eq!(auth.cache().len(), 1);
            // Served from the cache (the entry stays, no second one).
            assert!(auth.authenticate("alice", "pw", peer).await.is_ok());
            assert_eq!(auth.cache().len(), 1);
            store
                .set_password("alice", hash_password("new", &cheap()).unwrap())
                .await
                .unwrap();
            assert_eq!(
                auth.authenticate("alice", "pw", peer).await,
                Err(AuthError::Failed)
            );
            assert!(auth.authenticate("alice", "new", peer).await.is_ok());
        });
    }

    /// Ten logins with the same credentials at once run argon2 once; the others wait for
    /// it and find it cached. Wrong passwords are not let through by the wait.
    #[test]
    fn logins_with_the_same_credentials_at_once_share_one_check() {
        with_alice(async |_, auth, peer| {
            // Logins as alice, (password, from), all under way before the first ends.
            let at_once = |logins: Vec<(&'static str, Peer)>| {
                let tasks: Vec<_> = logins
                    .into_iter()
                    .map(|(password, from)| {
                        let auth = auth.clone();
                        smol::spawn(async move { auth.authenticate("alice", password, from).await })
                    })
                    .collect();
                async move {
                    let mut out = Vec::new();
                    for t in tasks {
                        out.push(t.await);
                    }
                    out
                }
            };
            let right = at_once(vec![("pw", peer); 10]).await;
            assert!(right.iter().all(Result::is_ok));
            assert_eq!(auth.checks(), 1);
            assert_eq!(auth.cache().flights(), 0, "the line is gone");
            // From three addresses: the throttle counts failures per address, and one
            // that failed first would get the others throttled, not checked.
            let from = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
            let wrong = at_once(from.into_iter().map(|a| ("nope", ip(a))).collect()).await;
            assert!(
                wrong.iter().all(|r| *r == Err(AuthError::Failed)),
                "{wrong:?}"
            );
            assert_eq!(auth.checks(), 4, "a failure is not cached: each checks");
        });
    }

    #[test]
    fn app_passwords_log_in_and_are_revoked_alone() {
        with_alice(async |store, auth, peer| {
            let phone = generate_app_password();
            let laptop = generate_app_password();
            assert_ne!(phone, laptop);
            for (label, pw) in [("phone", &phone), ("laptop", &laptop)] {
                let h = hash_password(pw, &cheap()).unwrap();
                assert!(store.add_app_password("alice", label, h).await.unwrap());
            }
            for pw in ["pw", phone.as_str(), laptop.as_str()] {
                assert!(auth.authenticate("alice", pw, peer).await.is_ok(), "{pw}");
            }
            assert!(store.delete_app_password("alice", "phone").await.unwrap());
            // Revoked at once, although the login is cached.
            assert_eq!(
                auth.authenticate("alice", &phone, peer).await,
                Err(AuthError::Failed)
            );
            assert!(auth.authenticate("alice", &laptop, peer).await.is_ok());
            assert!(auth.authenticate("alice", "pw", peer).await.is_ok());
        });
    }

    #[test]
    fn verify_password_agrees_with_the_argon2_crate() {
        use argon2::password_hash::PasswordVerifier;
        // Our check (explicit working memory) against the crate's own, on hashes of every
        // algorithm and version, more lanes, a longer output, and wrong passwords.
        let cases = [
            (Algorithm::Argon2id, Version::V0x13, 64, 1, 1, 32),
            (Algorithm::Argon2i, Version::V0x13, 32, 2, 1, 32),
            (Algorithm::Argon2d, Version::V0x10, 32, 1, 2, 32),
            (Algorithm::Argon2id, Version::V0x13, 64, 1, 2, 48),
        ];
        for (alg, version, m, t, p, len) in cases {
            let params = Params::new(m, t, p, Some(len)).unwrap();
            let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
            let phc = Argon2::new(alg, version, params)
                .hash_password(b"correct horse", &salt)
                .unwrap()
                .to_string();
            let parsed = PasswordHash::new(&phc).unwrap();
            for pw in ["correct horse", "correct hors", ""] {
                let theirs = Argon2::default()
                    .verify_password(pw.as_bytes(), &parsed)
                    .is_ok();
                assert_eq!(verify_password(&phc, pw), theirs, "{phc} {pw:?}");
            }
            assert!(verify_password(&phc, "correct horse"), "{phc}");
        }
        for bad in [
            "",
            "$argon2id$v=19$m=64,t=1,p=1$",
            "$scrypt$ln=4,r=8,p=1$c2FsdA$aGFzaA",
        ] {
            assert!(!verify_password(bad, ""), "{bad}");
        }
    }

    #[test]
    fn app_password_shape() {
        let p = generate_app_password();
        assert_eq!(p.len(), 23, "{p}");
        assert_eq!(p.matches('-').count(), 3);
        assert!(check_new_password(&p).is_ok());
    }

    #[test]
    fn plaintext_policy_table() {
        let unix = Peer {
            ip: None,
            tls: false,
        };
        let lo = ip("127.0.0.1");
        let lo6 = ip("::1");
        let remote = ip("192.0.2.1");
        let remote_tls = Peer {
            tls: true,
            ..remote
        };
        use Plaintext::*;
        let table = [
            (Never, unix, false),
            (Never, lo, false),
            (Never, remote, false),
            (Never, remote_tls, true),
            (Loopback, unix, true),
            (Loopback, lo, true),
            (Loopback, lo6, true),
            (Loopback, remote, false),
            (Loopback, remote_tls, true),
            (Always, remote, true),
            (Always, lo, true),
        ];
        for (policy, peer, want) in table {
            assert_eq!(plaintext_allowed(policy, peer), want, "{policy:?} {peer:?}");
        }
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn hash_then_verify() {
        let h = hash_password("correct horse", &cheap()).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsE"));
        assert!(!verify_password("garbage", "x"));
    }

    #[test]
    fn salts_differ() {
        assert_ne!(
            hash_password("a", &cheap()).unwrap(),
            hash_password("a", &cheap()).unwrap()
        );
    }

    #[test]
    fn authenticate_checks_the_password_and_hides_unknown_users() {
        with_alice(async |_, auth, _| {
            let peer = Peer {
                ip: None,
                tls: false,
            };
            assert_eq!(
                auth.authenticate("alice", "pw", peer).await.map(|u| u.name),
                Ok("alice".into())
            );
            assert_eq!(
                auth.authenticate("Alice@mail.example", "pw", peer)
                    .await
                    .map(|u| u.name),
                Ok("alice".into())
            );
            assert_eq!(
                auth.authenticate("alice", "PW", peer).await,
                Err(AuthError::Failed)
            );
            assert_eq!(
                auth.authenticate("alice@elsewhere", "pw", peer).await,
                Err(AuthError::Failed)
            );
            assert_eq!(
                auth.authenticate("nobody", "pw", peer).await,
                Err(AuthError::Failed)
            );
        });
    }

    #[test]
    fn new_password_rules() {
        assert!(check_new_password("").is_err());
        assert!(check_new_password("a\tb").is_err());
        assert!(check_new_password("fine pass").is_ok());
    }
}
