//! Sieve scripts of each user (RFC 5804's storage model): several named scripts, at most
//! one of them active. ManageSieve, the `sieve` CLI and the delivery path (the Sieve
//! plugin) all go through this API.
//!
//! Scripts live in [`SIEVE_SCRIPTS`] keyed by (user id, name); which one is active lives in
//! the user's [`SieveState`] in [`SIEVE_STATE`], with a *version* taken from a store-wide
//! counter on every change of the user's scripts (put, activate, rename, delete). A
//! plugin may cache what it parsed under that version: the same version always means the
//! same scripts, also across deleting and re-creating a user.
//!
//! Like every store write, a job checks everything (names, limits, existence) before it
//! writes: a refused request leaves nothing behind.

use crate::contracts::UserId;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::schema::{self, META};
use super::users::{UsersRead, canonical_name};
use super::{Shared, Store, StoreError};

/// (user id, script name) -> the script's text (UTF-8, as uploaded).
pub const SIEVE_SCRIPTS: TableDefinition<(u32, &str), &[u8]> =
    TableDefinition::new("sieve_scripts");
/// User id -> [`SieveState`]. No row: no script was ever stored (nothing active).
pub const SIEVE_STATE: TableDefinition<u32, &[u8]> = TableDefinition::new("sieve_state");

/// `META` key of the last version handed out.
const VERSION_KEY: &str = "sieve_version";

/// Longest script name in Unicode characters. RFC 5804 §1.6 asks servers to allow at least
/// 128 and to refuse (never truncate) longer names than they allow.
pub const MAX_NAME_CHARS: usize = 128;

/// Which script is active, and the version of the user's scripts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SieveState {
    pub active: Option<String>,
    pub version: u64,
}

/// Per-user limits (config `managesieve.max_script_bytes` / `max_scripts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SieveLimits {
    /// Largest script in octets.
    pub max_script_bytes: u64,
    /// Most scripts per user.
    pub max_scripts: usize,
}

impl Default for SieveLimits {
    fn default() -> Self {
        SieveLimits {
            max_script_bytes: crate::config::DEFAULT_MAX_SCRIPT_BYTES,
            max_scripts: crate::config::DEFAULT_MAX_SCRIPTS,
        }
    }
}

/// One line of LISTSCRIPTS / `sieve list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptInfo {
    pub name: String,
    /// Octets of the script.
    pub size: u64,
    pub active: bool,
}

/// The script deliveries run, for the Sieve plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveScript {
    pub name: String,
    pub text: String,
    /// Changes whenever any of the user's scripts changes (an included one too).
    pub version: u64,
}

/// Why a Sieve script operation was refused. Everything but `Store` is the client's to
/// hear about (ManageSieve response codes of RFC 5804 §1.3 in brackets).
#[derive(Debug, Clone, PartialEq)]
pub enum SieveError {
    NoSuchUser,
    /// `NO (NONEXISTENT)`.
    NoSuchScript,
    /// RENAMESCRIPT onto an existing name: `NO (ALREADYEXISTS)`.
    AlreadyExists,
    /// DELETESCRIPT of the active script: `NO (ACTIVE)` (RFC 5804 §2.10).
    Active,
    /// The script is larger than `max` octets: `NO (QUOTA/MAXSIZE)`.
    TooLarge {
        max: u64,
    },
    /// The user has `max` scripts already: `NO (QUOTA/MAXSCRIPTS)`.
    TooMany {
        max: usize,
    },
    /// A name RFC 5804 §1.6 does not allow (the reason inside).
    InvalidName(String),
    /// A storage fault (logged; the client hears "try later").
    Store(StoreError),
}

impl SieveError {
    /// True for faults of the server rather than of the request.
    pub fn is_fault(&self) -> bool {
        matches!(self, SieveError::Store(e) if e.is_fault())
    }
}

impl From<StoreError> for SieveError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchUser => SieveError::NoSuchUser,
            StoreError::InvalidName(why) => SieveError::InvalidName(why),
            other => SieveError::Store(other),
        }
    }
}

super::from_via!(SieveError, StoreError: redb::StorageError, redb::TableError);

impl std::fmt::Display for SieveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SieveError::NoSuchUser => write!(f, "no such user"),
            SieveError::NoSuchScript => write!(f, "no such script"),
            SieveError::AlreadyExists => write!(f, "a script of that name exists"),
            SieveError::Active => write!(f, "the script is active"),
            SieveError::TooLarge { max } => write!(f, "the script is larger than {max} octets"),
            SieveError::TooMany { max } => write!(f, "at most {max} scripts per user"),
            SieveError::InvalidName(why) => write!(f, "invalid script name: {why}"),
            SieveError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SieveError {}

/// Checks a script name (RFC 5804 §1.6): not empty, at most [`MAX_NAME_CHARS`]
/// characters, none of U+0000-001F, U+007F, U+0080-009F, U+2028, U+2029.
///
/// DEVIATION: names are not normalised to NFC (Net-Unicode, RFC 5198); a name is
/// stored as the client sent it.
pub fn check_name(name: &str) -> Result<(), SieveError> {
    if name.is_empty() {
        return Err(SieveError::InvalidName("the name is empty".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(SieveError::InvalidName(format!(
            "longer than {MAX_NAME_CHARS} characters"
        )));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return Err(SieveError::InvalidName(
            "control characters are not allowed".into(),
        ));
    }
    Ok(())
}

/// Whether a script of `size` octets may be stored under `name` for a user who has
/// `names` scripts now (HAVESPACE and PUTSCRIPT, RFC 5804 §2.5/§2.6): size first, then
/// the count (a replaced script does not add to it).
fn check_space(
    names: &[String],
    name: &str,
    size: u64,
    limits: SieveLimits,
) -> Result<(), SieveError> {
    if size > limits.max_script_bytes {
        return Err(SieveError::TooLarge {
            max: limits.max_script_bytes,
        });
    }
    if !names.iter().any(|n| n == name) && names.len() >= limits.max_scripts {
        return Err(SieveError::TooMany {
            max: limits.max_scripts,
        });
    }
    Ok(())
}

fn user_id(tx: &impl UsersRead, name: &str) -> Result<UserId, SieveError> {
    Ok(tx.user(name)?.ok_or(SieveError::NoSuchUser)?.id)
}

/// Every script of `user`: (name, text), by name.
fn scripts(
    t: &impl ReadableTable<(u32, &'static str), &'static [u8]>,
    user: UserId,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    for row in t.range(schema::user_names(user))? {
        let (k, v) = row?;
        let (u, name) = k.value();
        if u == user.0 {
            out.push((name.to_string(), v.value().to_vec()));
        }
    }
    Ok(out)
}

fn state(
    t: &impl ReadableTable<u32, &'static [u8]>,
    user: UserId,
) -> Result<SieveState, StoreError> {
    t.get(user.0)?
        .map(|v| schema::decode(v.value()))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn text(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| StoreError::Corrupt("a Sieve script is not UTF-8".into()))
}

/// Saves `state` with a new version.
fn save_state(
    tx: &WriteTransaction,
    user: UserId,
    mut state: SieveState,
) -> Result<(), StoreError> {
    let mut meta = tx.open_table(META)?;
    let version = meta
        .get(VERSION_KEY)?
        .map(|v| v.value())
        .unwrap_or(0)
        .saturating_add(1);
    meta.insert(VERSION_KEY, version)?;
    state.version = version;
    tx.open_table(SIEVE_STATE)?
        .insert(user.0, schema::encode(&state)?.as_slice())?;
    Ok(())
}

/// Removes every script of `user` (user deletion).
pub(super) fn delete_all(tx: &WriteTransaction, user: UserId) -> Result<(), StoreError> {
    let mut t = tx.open_table(SIEVE_SCRIPTS)?;
    for row in t.extract_from_if(schema::user_names(user), |k, _| k.0 == user.0)? {
        row?;
    }
    tx.open_table(SIEVE_STATE)?.remove(user.0)?;
    Ok(())
}

/// The active script of `user`, from a read transaction.
fn active_in(tx: &redb::ReadTransaction, user: &str) -> Result<Option<ActiveScript>, SieveError> {
    let id = user_id(tx, user)?;
    let st = state(&tx.open_table(SIEVE_STATE)?, id)?;
    let Some(name) = st.active else {
        return Ok(None);
    };
    let bytes = tx
        .open_table(SIEVE_SCRIPTS)?
        .get((id.0, name.as_str()))?
        .map(|v| v.value().to_vec())
        .ok_or_else(|| StoreError::Corrupt(format!("active Sieve script {name:?} is missing")))?;
    Ok(Some(ActiveScript {
        name,
        text: text(bytes)?,
        version: st.version,
    }))
}

fn get_in(tx: &redb::ReadTransaction, user: &str, name: &str) -> Result<String, SieveError> {
    let id = user_id(tx, user)?;
    let bytes = tx
        .open_table(SIEVE_SCRIPTS)?
        .get((id.0, name))?
        .map(|v| v.value().to_vec())
        .ok_or(SieveError::NoSuchScript)?;
    Ok(text(bytes)?)
}

impl Store {
    /// Runs a read on the blocking pool, with the user name canonicalised.
    async fn sieve_read<T, F>(&self, user: &str, f: F) -> Result<T, SieveError>
    where
        T: Send + 'static,
        F: FnOnce(&redb::ReadTransaction, &str) -> Result<T, SieveError> + Send + 'static,
    {
        let user = canonical_name(user)?;
        self.read(move |tx, _| Ok(f(tx, &user)))
            .await
            .map_err(SieveError::from)?
    }

    /// Runs a write job for `user` (canonicalised) with the user's id; a logical error
    /// comes back without anything written.
    async fn sieve_write<T, F>(&self, user: &str, f: F) -> Result<T, SieveError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction, UserId) -> Result<T, SieveError> + Send + 'static,
    {
        let user = canonical_name(user)?;
        self.write(move |tx, _| {
            let id = match user_id(tx, &user) {
                Ok(id) => id,
                Err(SieveError::Store(e)) => return Err(e),
                Err(other) => return Ok(Err(other)),
            };
            match f(tx, id) {
                Err(SieveError::Store(e)) => Err(e),
                other => Ok(other),
            }
        })
        .await
        .map_err(SieveError::from)?
    }

    /// `user`'s scripts by name, with their sizes and which one is active (LISTSCRIPTS).
    pub async fn sieve_list(&self, user: &str) -> Result<Vec<ScriptInfo>, SieveError> {
        self.sieve_read(user, |tx, user| {
            let id = user_id(tx, user)?;
            let active = state(&tx.open_table(SIEVE_STATE)?, id)?.active;
            Ok(scripts(&tx.open_table(SIEVE_SCRIPTS)?, id)?
                .into_iter()
                .map(|(name, text)| ScriptInfo {
                    active: active.as_deref() == Some(name.as_str()),
                    size: text.len() as u64,
                    name,
                })
                .collect())
        })
        .await
    }

    /// The text of one script (GETSCRIPT).
    pub async fn sieve_get(&self, user: &str, name: &str) -> Result<String, SieveError> {
        let name = name.to_string();
        self.sieve_read(user, move |tx, user| get_in(tx, user, &name))
            .await
    }

    /// Whether a script of `size` octets could be stored as `name` now (HAVESPACE).
    pub async fn sieve_have_space(
        &self,
        user: &str,
        name: &str,
        size: u64,
        limits: SieveLimits,
    ) -> Result<(), SieveError> {
        check_name(name)?;
        let name = name.to_string();
        self.sieve_read(user, move |tx, user| {
            let id = user_id(tx, user)?;
            let names: Vec<String> = scripts(&tx.open_table(SIEVE_SCRIPTS)?, id)?
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            check_space(&names, &name, size, limits)
        })
        .await
    }

    /// Stores `text` as script `name`, replacing one of that name (an active script stays
    /// active). The caller has checked the script (PUTSCRIPT, RFC 5804 §2.6).
    pub async fn sieve_put(
        &self,
        user: &str,
        name: &str,
        text: &str,
        limits: SieveLimits,
    ) -> Result<(), SieveError> {
        check_name(name)?;
        let name = name.to_string();
        let text = text.to_string();
        self.sieve_write(user, move |tx, id| {
            let mut t = tx.open_table(SIEVE_SCRIPTS)?;
            let names: Vec<String> = scripts(&t, id)?.into_iter().map(|(n, _)| n).collect();
            check_space(&names, &name, text.len() as u64, limits)?;
            t.insert((id.0, name.as_str()), text.as_bytes())?;
            drop(t);
            let st = state(&tx.open_table(SIEVE_STATE)?, id)?;
            save_state(tx, id, st)?;
            Ok(())
        })
        .await
    }

    /// Makes `name` the active script, or none with `None` (SETACTIVE, RFC 5804 §2.8).
    pub async fn sieve_set_active(&self, user: &str, name: Option<&str>) -> Result<(), SieveError> {
        let name = name.map(str::to_string);
        self.sieve_write(user, move |tx, id| {
            if let Some(n) = &name
                && tx
                    .open_table(SIEVE_SCRIPTS)?
                    .get((id.0, n.as_str()))?
                    .is_none()
            {
                return Err(SieveError::NoSuchScript);
            }
            let mut st = state(&tx.open_table(SIEVE_STATE)?, id)?;
            st.active = name;
            save_state(tx, id, st)?;
            Ok(())
        })
        .await
    }

    /// Deletes a script; the active one is refused (DELETESCRIPT, RFC 5804 §2.10).
    pub async fn sieve_delete(&self, user: &str, name: &str) -> Result<(), SieveError> {
        let name = name.to_string();
        self.sieve_write(user, move |tx, id| {
            let st = state(&tx.open_table(SIEVE_STATE)?, id)?;
            let mut t = tx.open_table(SIEVE_SCRIPTS)?;
            if t.get((id.0, name.as_str()))?.is_none() {
                return Err(SieveError::NoSuchScript);
            }
            if st.active.as_deref() == Some(name.as_str()) {
                return Err(SieveError::Active);
            }
            t.remove((id.0, name.as_str()))?;
            drop(t);
            save_state(tx, id, st)?;
            Ok(())
        })
        .await
    }

    /// Renames a script; an active script stays active (RENAMESCRIPT, RFC 5804 §2.11.1).
    pub async fn sieve_rename(&self, user: &str, from: &str, to: &str) -> Result<(), SieveError> {
        check_name(to)?;
        let (from, to) = (from.to_string(), to.to_string());
        self.sieve_write(user, move |tx, id| {
            let mut t = tx.open_table(SIEVE_SCRIPTS)?;
            let bytes = t
                .get((id.0, from.as_str()))?
                .map(|v| v.value().to_vec())
                .ok_or(SieveError::NoSuchScript)?;
            if t.get((id.0, to.as_str()))?.is_some() {
                return Err(SieveError::AlreadyExists);
            }
            t.remove((id.0, from.as_str()))?;
            t.insert((id.0, to.as_str()), bytes.as_slice())?;
            drop(t);
            let mut st = state(&tx.open_table(SIEVE_STATE)?, id)?;
            if st.active.as_deref() == Some(from.as_str()) {
                st.active = Some(to);
            }
            save_state(tx, id, st)?;
            Ok(())
        })
        .await
    }

    /// The script deliveries to `user` run, if one is active.
    pub async fn sieve_active(&self, user: &str) -> Result<Option<ActiveScript>, SieveError> {
        self.sieve_read(user, active_in).await
    }

    /// [`Store::sieve_active`] for code already on the blocking pool (a plugin call):
    /// one read transaction on the calling thread.
    pub fn sieve_active_blocking(&self, user: &str) -> Result<Option<ActiveScript>, SieveError> {
        let user = canonical_name(user)?;
        let tx = Shared::begin_read(&self.shared)?;
        active_in(&tx, &user)
    }

    /// [`Store::sieve_get`] for code already on the blocking pool (Sieve `include
    /// :personal`, RFC 6609).
    pub fn sieve_get_blocking(&self, user: &str, name: &str) -> Result<String, SieveError> {
        let user = canonical_name(user)?;
        let tx = Shared::begin_read(&self.shared)?;
        get_in(&tx, &user, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_store(f: impl AsyncFnOnce(&Store)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &crate::config::StoreConfig::default()).unwrap();
        smol::block_on(async {
            store.add_user("alice", "h".into()).await.unwrap();
            f(&store).await;
        });
        store.shutdown();
    }

    #[test]
    fn names_follow_rfc5804() {
        assert!(check_name("vacation").is_ok());
        assert!(check_name("Урлаub ✓ 2").is_ok());
        assert!(check_name(&"x".repeat(128)).is_ok());
        for bad in [
            "",
            "a\nb",
            "a\u{7f}",
            "a\u{85}",
            "a\u{2028}",
            &"é".repeat(129),
        ] {
            assert!(
                matches!(check_name(bad), Err(SieveError::InvalidName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn put_list_get_activate_rename_delete() {
        with_store(async |s| {
            let l = SieveLimits::default();
            assert_eq!(s.sieve_list("alice").await.unwrap(), []);
            assert_eq!(s.sieve_active("alice").await.unwrap(), None);
            s.sieve_put("alice", "b", "keep;\r\n", l).await.unwrap();
            s.sieve_put("Alice", "a", "discard;", l).await.unwrap();
            let list = s.sieve_list("alice").await.unwrap();
            assert_eq!(
                list.iter()
                    .map(|i| (i.name.as_str(), i.size, i.active))
                    .collect::<Vec<_>>(),
                [("a", 8, false), ("b", 7, false)]
            );
            assert_eq!(s.sieve_get("alice", "b").await.unwrap(), "keep;\r\n");
            assert_eq!(
                s.sieve_get("alice", "c").await,
                Err(SieveError::NoSuchScript)
            );
            assert_eq!(
                s.sieve_set_active("alice", Some("c")).await,
                Err(SieveError::NoSuchScript)
            );
            s.sieve_set_active("alice", Some("b")).await.unwrap();
            let a1 = s.sieve_active("alice").await.unwrap().unwrap();
            assert_eq!((a1.name.as_str(), a1.text.as_str()), ("b", "keep;\r\n"));
            assert_eq!(s.sieve_active_blocking("alice").unwrap(), Some(a1.clone()));
            // Replacing the active script keeps it active under a new version.
            s.sieve_put("alice", "b", "stop;", l).await.unwrap();
            let a2 = s.sieve_active("alice").await.unwrap().unwrap();
            assert_eq!(a2.text, "stop;");
            assert!(a2.version > a1.version);
            assert_eq!(s.sieve_delete("alice", "b").await, Err(SieveError::Active));
            assert_eq!(
                s.sieve_rename("alice", "b", "a").await,
                Err(SieveError::AlreadyExists)
            );
            assert_eq!(
                s.sieve_rename("alice", "x", "y").await,
                Err(SieveError::NoSuchScript)
            );
            s.sieve_rename("alice", "b", "main").await.unwrap();
            let a3 = s.sieve_active("alice").await.unwrap().unwrap();
            assert_eq!(a3.name, "main");
            assert!(a3.version > a2.version);
            assert_eq!(s.sieve_get_blocking("alice", "main").unwrap(), "stop;");
            s.sieve_delete("alice", "a").await.unwrap();
            assert_eq!(
                s.sieve_delete("alice", "a").await,
                Err(SieveError::NoSuchScript)
            );
            s.sieve_set_active("alice", None).await.unwrap();
            assert_eq!(s.sieve_active("alice").await.unwrap(), None);
            s.sieve_delete("alice", "main").await.unwrap();
            assert_eq!(s.sieve_list("alice").await.unwrap(), []);
            assert_eq!(s.sieve_list("bob").await, Err(SieveError::NoSuchUser));
            assert_eq!(
                s.sieve_put("bob", "x", "keep;", l).await,
                Err(SieveError::NoSuchUser)
            );
        });
    }

    #[test]
    fn limits_refuse_before_writing() {
        with_store(async |s| {
            let l = SieveLimits {
                max_script_bytes: 10,
                max_scripts: 2,
            };
            assert_eq!(
                s.sieve_put("alice", "a", &"#".repeat(11), l).await,
                Err(SieveError::TooLarge { max: 10 })
            );
            s.sieve_put("alice", "a", "keep;", l).await.unwrap();
            s.sieve_put("alice", "b", "keep;", l).await.unwrap();
            assert_eq!(
                s.sieve_put("alice", "c", "keep;", l).await,
                Err(SieveError::TooMany { max: 2 })
            );
            assert_eq!(
                s.sieve_have_space("alice", "c", 1, l).await,
                Err(SieveError::TooMany { max: 2 })
            );
            // Replacing an existing script does not count as one more.
            s.sieve_have_space("alice", "b", 10, l).await.unwrap();
            s.sieve_put("alice", "b", "discard;", l).await.unwrap();
            assert_eq!(s.sieve_list("alice").await.unwrap().len(), 2);
        });
    }

    #[test]
    fn deleting_the_user_deletes_the_scripts() {
        with_store(async |s| {
            s.sieve_put("alice", "a", "keep;", SieveLimits::default())
                .await
                .unwrap();
            s.sieve_set_active("alice", Some("a")).await.unwrap();
            let v1 = s.sieve_active("alice").await.unwrap().unwrap().version;
            s.delete_user("alice").await.unwrap();
            s.add_user("alice", "h".into()).await.unwrap();
            assert_eq!(s.sieve_list("alice").await.unwrap(), []);
            s.sieve_put("alice", "a", "stop;", SieveLimits::default())
                .await
                .unwrap();
            s.sieve_set_active("alice", Some("a")).await.unwrap();
            // A version is never handed out twice.
            assert!(s.sieve_active("alice").await.unwrap().unwrap().version > v1);
        });
    }
}
