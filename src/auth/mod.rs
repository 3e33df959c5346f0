//! Accounts' secrets: argon2id password hashes (RFC 9106) in PHC string form.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::Argon2Config;

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
    fn new_password_rules() {
        assert!(check_new_password("").is_err());
        assert!(check_new_password("a\tb").is_err());
        assert!(check_new_password("fine pass").is_ok());
    }
}
