//! App passwords: extra, separately revocable passwords of one user (one per device),
//! kept in `UserRecord.app_passwords` as argon2id PHC strings. Hashing happens in the
//! CLI (`auth::hash_password`); the store only keeps the strings.

use super::schema::AppPassword;
use super::users::{UsersRead, canonical_name};
use super::{Store, StoreError, now};

/// Most app passwords per user: each one is tried on a failed login, so they cost time.
pub const MAX_APP_PASSWORDS: usize = 16;

/// What `user app-password list` shows (never the hash).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AppPasswordInfo {
    pub label: String,
    pub created: i64,
}

/// A label: 1 to 64 characters, printable ASCII (spaces allowed inside).
pub fn check_label(label: &str) -> Result<(), StoreError> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label.bytes().all(|b| (0x20..0x7f).contains(&b))
        && label.trim() == label;
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName(format!(
            "app password label {label:?}: use 1 to 64 printable ASCII characters"
        )))
    }
}

impl Store {
    /// Adds an app password. `Ok(false)` if the label is taken.
    pub async fn add_app_password(
        &self,
        user: &str,
        label: &str,
        hash: String,
    ) -> Result<bool, StoreError> {
        let name = canonical_name(user)?;
        check_label(label)?;
        let label = label.to_string();
        self.write(move |tx, batch| {
            let mut rec = tx.user(&name)?.ok_or(StoreError::NoSuchUser)?;
            if rec.app_passwords.iter().any(|a| a.label == label) {
                return Ok(false);
            }
            if rec.app_passwords.len() >= MAX_APP_PASSWORDS {
                return Err(StoreError::InvalidName(format!(
                    "at most {MAX_APP_PASSWORDS} app passwords per user"
                )));
            }
            rec.app_passwords.push(AppPassword {
                label,
                hash,
                created: now(),
            });
            super::users::save_user(tx, batch, &rec)?;
            Ok(true)
        })
        .await
    }

    /// Deletes one app password. `Ok(false)` if there is none with that label.
    pub async fn delete_app_password(&self, user: &str, label: &str) -> Result<bool, StoreError> {
        let name = canonical_name(user)?;
        let label = label.to_string();
        self.write(move |tx, batch| {
            let mut rec = tx.user(&name)?.ok_or(StoreError::NoSuchUser)?;
            let before = rec.app_passwords.len();
            rec.app_passwords.retain(|a| a.label != label);
            if rec.app_passwords.len() == before {
                return Ok(false);
            }
            super::users::save_user(tx, batch, &rec)?;
            Ok(true)
        })
        .await
    }

    /// A user's app passwords, in creation order.
    pub async fn app_passwords(&self, user: &str) -> Result<Vec<AppPasswordInfo>, StoreError> {
        let name = canonical_name(user)?;
        self.read(move |tx, _| {
            let rec = tx.user(&name)?.ok_or(StoreError::NoSuchUser)?;
            Ok(rec
                .app_passwords
                .into_iter()
                .map(|a| AppPasswordInfo {
                    label: a.label,
                    created: a.created,
                })
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &crate::config::StoreConfig::default()).unwrap();
        smol::block_on(async {
            store.add_user("alice", "h".into()).await.unwrap();
            assert!(
                store
                    .add_app_password("alice", "phone", "p1".into())
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .add_app_password("Alice", "phone", "p2".into())
                    .await
                    .unwrap()
            );
            assert!(
                store
                    .add_app_password("alice", "laptop", "p3".into())
                    .await
                    .unwrap()
            );
            let labels: Vec<_> = store
                .app_passwords("alice")
                .await
                .unwrap()
                .into_iter()
                .map(|a| a.label)
                .collect();
            assert_eq!(labels, ["phone", "laptop"]);
            assert!(store.delete_app_password("alice", "phone").await.unwrap());
            assert!(!store.delete_app_password("alice", "phone").await.unwrap());
            let rec = store.find_user("alice", "").await.unwrap().unwrap();
            assert_eq!(rec.app_passwords.len(), 1);
            assert_eq!(rec.app_passwords[0].hash, "p3");
            assert!(matches!(
                store.add_app_password("nobody", "x", "h".into()).await,
                Err(StoreError::NoSuchUser)
            ));
            assert!(
                store
                    .add_app_password("alice", " x", "h".into())
                    .await
                    .is_err()
            );
        });
        store.shutdown();
    }
}
