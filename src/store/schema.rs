//! Every redb table and stored record, in one place, with the schema version.
//!
//! Records are serde structs encoded with postcard (compact, varint integers). A change to
//! any record's shape bumps [`SCHEMA_VERSION`] and adds a step to [`migrate`].

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// Version of the on-disk layout written by this build.
pub const SCHEMA_VERSION: u64 = 1;

/// Counters and settings: `schema_version`, `next_user_id`, `next_mailbox_id`,
/// `last_uidvalidity`, `active_dict`, `undicted_blobs`.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// User name (lower case) -> [`UserRecord`].
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Mailbox id -> [`MailboxRecord`].
pub const MAILBOXES: TableDefinition<u64, &[u8]> = TableDefinition::new("mailboxes");
/// (user id, mailbox name) -> mailbox id.
pub const MAILBOX_NAMES: TableDefinition<(u32, &str), u64> = TableDefinition::new("mailbox_names");
/// (mailbox id, UID) -> [`MessageRecord`].
pub const MESSAGES: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("messages");
/// (mailbox id, UID) -> the modseq at which it was expunged (RFC 7162 VANISHED).
pub const EXPUNGED: TableDefinition<(u64, u32), u64> = TableDefinition::new("expunged");
/// Content hash -> [`BlobRecord`] (reference count and sizes).
pub const BLOBS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blobs");
/// Content hash -> the compressed message bytes.
pub const BLOB_DATA: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blob_data");
/// Content hash -> the parsed structure FETCH needs (`mime::MessageMeta`, postcard).
pub const BLOB_META: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blob_meta");
/// Dictionary id -> zstd dictionary bytes.
pub const DICTS: TableDefinition<u32, &[u8]> = TableDefinition::new("dicts");
/// (user id, mailbox name) subscribed without a mailbox of that name (IMAP SUBSCRIBE of
/// a name that does not exist, or a deleted subscribed mailbox; RFC 9051 §6.3.7).
/// Subscriptions of existing mailboxes live in [`MailboxRecord::subscribed`]. A new
/// table, not a record change: `migrate` creates it in stores of this version.
pub const SUBSCRIPTIONS: TableDefinition<(u32, &str), ()> = TableDefinition::new("subscriptions");

/// IMAP system flags as bits (RFC 9051 §2.3.2). `\Recent` is per session, never stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemFlags(pub u8);

impl SystemFlags {
    pub const SEEN: u8 = 1;
    pub const ANSWERED: u8 = 2;
    pub const FLAGGED: u8 = 4;
    pub const DELETED: u8 = 8;
    pub const DRAFT: u8 = 16;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// A special-use attribute (RFC 6154).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpecialUse {
    Drafts,
    Sent,
    Trash,
    Junk,
    Archive,
    All,
    Flagged,
}

impl SpecialUse {
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::All => "\\All",
            SpecialUse::Flagged => "\\Flagged",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppPassword {
    pub label: String,
    pub hash: String,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: u32,
    pub name: String,
    /// argon2id in PHC string form.
    pub password_hash: String,
    pub created: i64,
    pub app_passwords: Vec<AppPassword>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailboxRecord {
    pub id: u64,
    pub user: u32,
    pub name: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    /// RFC 7162: starts at 1 so an empty mailbox never reports 0 (client quirk Q16).
    pub highest_modseq: u64,
    pub subscribed: bool,
    pub special_use: Option<SpecialUse>,
    /// Kept up to date on every append and expunge, for STATUS and stats.
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub blob: [u8; 32],
    /// Per-delivery trace headers (Return-Path, Delivered-To, Received) kept apart from the
    /// shared blob so that one message to many recipients is stored once. The message a
    /// client sees is `prefix + blob`.
    pub prefix: Vec<u8>,
    pub flags: SystemFlags,
    pub keywords: Vec<String>,
    /// Unix seconds (IMAP INTERNALDATE).
    pub internal_date: i64,
    /// Unix seconds (RFC 8514 SAVEDATE).
    pub save_date: i64,
    /// Octets as a client receives them: prefix + blob, CRLF line ends.
    pub size: u64,
    pub modseq: u64,
    /// When POP3 first retrieved the whole message (unix seconds).
    pub pop3_retrieved: Option<i64>,
    /// The envelope sender, when the message came with one (LMTP, deliver, mbox From_).
    pub envelope_from: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub refs: u32,
    /// 0 = compressed without a dictionary.
    pub dict: u32,
    pub raw_len: u64,
    pub stored_len: u64,
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value).map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("decode: {e}")))
}

/// Creates every table, writes the version on a new store, and upgrades an old one.
/// A store written by a newer build is refused rather than misread.
pub fn migrate(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut meta = tx.open_table(META)?;
    let version = meta.get("schema_version")?.map(|v| v.value());
    match version {
        None => {
            meta.insert("schema_version", SCHEMA_VERSION)?;
            meta.insert("next_user_id", 1)?;
            meta.insert("next_mailbox_id", 1)?;
        }
        Some(SCHEMA_VERSION) => {}
        // Future: `Some(1) => upgrade_1_to_2(tx)?`, one step per version.
        Some(v) if v > SCHEMA_VERSION => {
            return Err(StoreError::Corrupt(format!(
                "the store has schema version {v}; this build reads up to {SCHEMA_VERSION}"
            )));
        }
        Some(v) => {
            return Err(StoreError::Corrupt(format!(
                "no migration from schema version {v}"
            )));
        }
    }
    drop(meta);
    tx.open_table(USERS)?;
    tx.open_table(MAILBOXES)?;
    tx.open_table(MAILBOX_NAMES)?;
    tx.open_table(MESSAGES)?;
    tx.open_table(EXPUNGED)?;
    tx.open_table(BLOBS)?;
    tx.open_table(BLOB_DATA)?;
    tx.open_table(BLOB_META)?;
    tx.open_table(DICTS)?;
    tx.open_table(SUBSCRIPTIONS)?;
    Ok(())
}
