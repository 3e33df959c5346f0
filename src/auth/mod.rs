//! Accounts' secrets: argon2id password hashes (RFC 9106) in PHC string form.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::Argon2Config;
use crate::server::stream::Peer;
use crate::store::{Store, UserRecord};

/// Why a login failed. Unknown user and wrong password are the same `Failed`, so replies
/// cannot tell them apart.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthError {
    Failed,
    /// The store could not be asked; try again later.
    Temporary(String),
}

/// Checks credentials for every protocol (IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS/AUTH).
/// Throttling, the auth cache and app passwords belong here (the TLS/auth issue), so that
/// every protocol gets them the same way.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    hostname: String,
    /// A hash of a random password, verified for unknown users so that a failed login takes
    /// as long whether or not the user exists.
    dummy: String,
}

impl Authenticator {
    pub fn new(store: Store, hostname: &str, cfg: &Argon2Config) -> Authenticator {
        let random: [u8; 16] = rand::random();
        let dummy = hash_password(&format!("{random:?}"), cfg).unwrap_or_default();
        Authenticator {
            store,
            hostname: hostname.to_string(),
            dummy,
        }
    }

    /// Verifies `password` for `login` (`alice` or `alice@<hostname>`). argon2 runs on the
    /// blocking pool. `peer` is for throttling and logs.
    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
        peer: Peer,
    ) -> Result<UserRecord, AuthError> {
        let user = self
            .store
            .find_user(login, &self.hostname)
            .await
            .map_err(|e| AuthError::Temporary(e.to_string()))?;
        let stored = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy.clone());
        let password = password.to_string();
        let ok = smol::unblock(move || verify_password(&stored, &password)).await;
        match user {
            Some(u) if ok => Ok(u),
            _ => {
                log::info!("auth: failed login for {login:?} from {:?}", peer.ip);
                Err(AuthError::Failed)
            }
        }
    }
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

/// Checks a password against a stored PHC string (constant-time comparison inside argon2).
/// A malformed stored hash never matches.
pub fn verify_password(stored: &str, password: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
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
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &crate::config::StoreConfig::default()).unwrap();
        let auth = Authenticator::new(store.clone(), "mail.example", &cheap());
        let peer = Peer {
            ip: None,
            tls: false,
        };
        smol::block_on(async {
            store
                .add_user("alice", hash_password("pw", &cheap()).unwrap())
                .await
                .unwrap();
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
