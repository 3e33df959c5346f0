//! The contracts between the mail flow and the plugins: the hook trait the plugin
//! host implements ([`Hooks`]), what the hooks are told (how a message arrived, the copy
//! it is going to become, the retention facts) and what they answer (verdicts, reviews,
//! plugin status), what a hook may read of the store ([`MailData`]), and the
//! identifiers of the mail model ([`ids`]). The WIT interface (`wit/nestbox-plugin.wit`)
//! is their wire form. Every module may import this one; it imports nothing of ours
//! (`tests/layers.rs`), so a new hook or a new protocol never makes a cycle.

mod ids;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use ids::{
    BadMailboxName, MAILBOX_DELIMITER, MailboxId, MailboxName, ModSeq, Uid, UserId,
    canonical_mailbox,
};

/// How a message arrived: the filter envelope's `source` (wit/nestbox-plugin.wit) and
/// what the quota policy is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Lmtp,
    Deliver,
    Append,
    Import,
}

impl Source {
    /// The name the plugin interface uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Lmtp => "lmtp",
            Source::Deliver => "deliver",
            Source::Append => "append",
            Source::Import => "import",
        }
    }
}

/// One recipient's copy.
#[derive(Debug, Clone)]
pub struct Target {
    pub user: UserId,
    pub user_name: String,
    /// The address as given (RCPT TO), for Delivered-To.
    pub address: String,
    /// INBOX when `None`.
    pub mailbox: Option<String>,
    pub create_mailbox: bool,
    pub flags: SystemFlags,
    pub keywords: Vec<String>,
    /// Ids kept from another server (`import --dovecot`); dropped if a filter files the
    /// copy into another mailbox.
    pub kept: Option<KeptIds>,
}

impl Target {
    /// A copy for `user` addressed as `address`, into INBOX (which must exist), with no
    /// flags, keywords or kept ids: what a delivery starts from.
    pub fn new(user: UserId, user_name: String, address: String) -> Target {
        Target {
            user,
            user_name,
            address,
            mailbox: None,
            create_mailbox: false,
            flags: SystemFlags::default(),
            keywords: Vec::new(),
            kept: None,
        }
    }
}

/// One stored copy of a recipient's message, when filters file it into several
/// mailboxes (Sieve: several `fileinto`, or `fileinto` with `keep`).
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    /// `None`: where the message was going (the target's mailbox, INBOX by default).
    pub mailbox: Option<String>,
    pub create: bool,
    pub flags: SystemFlags,
    pub keywords: Vec<String>,
}

/// What a filter decided for one recipient.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterVerdict {
    Accept,
    /// Accept, storing one copy per entry (never empty) instead of the single target;
    /// flags and keywords already on the target are added to each copy.
    Copies(Vec<Copy>),
    Reject {
        permanent: bool,
        text: String,
    },
    Discard,
}

/// What a quota policy decided.
#[derive(Debug, Clone, PartialEq)]
pub enum QuotaVerdict {
    Allow,
    /// `text` is for the LMTP reply / IMAP `NO` (one line of printable ASCII).
    Deny {
        permanent: bool,
        text: String,
    },
}

/// What is about to store messages (the WIT `quota.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaAction {
    Deliver,
    Append,
    Copy,
    Move,
    Import,
}

impl QuotaAction {
    /// What a delivery from `source` asks of the quota policy.
    pub fn from_source(source: Source) -> QuotaAction {
        match source {
            Source::Append => QuotaAction::Append,
            Source::Import => QuotaAction::Import,
            Source::Lmtp | Source::Deliver => QuotaAction::Deliver,
        }
    }
}

/// One question to the quota policy: may `count` messages of `size` octets in all be
/// added to `mailbox` of `user`?
#[derive(Debug, Clone)]
pub struct QuotaQuery<'a> {
    pub user: UserId,
    pub user_name: &'a str,
    pub mailbox: &'a str,
    pub action: QuotaAction,
    pub size: u64,
    pub count: u64,
}

/// Limits a quota policy reports for a user (IMAP GETQUOTA); `None` = no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    pub storage_bytes: Option<u64>,
    pub messages: Option<u64>,
}

/// The message as hooks see it.
pub struct HookMessage<'a> {
    /// The message (CRLF line ends), shared so a plugin host can keep it for a call.
    pub raw: &'a Arc<Vec<u8>>,
    /// The trace headers that will be stored in front of it for this recipient.
    pub prefix: &'a [u8],
    pub mail_from: Option<&'a str>,
    /// How it arrived.
    pub source: Source,
    /// The store, for hooks that read the user's data (Sieve scripts, mailboxes).
    pub store: Option<&'a dyn MailData>,
}

/// HOOK POINT for plugins. The plugin host implements this; `NoHooks` accepts everything.
/// Both run per recipient, after parsing and before the commit, on the blocking pool
/// (unless [`Hooks::active`] says there is nothing to run).
/// A failing plugin must fail open (accept / allow) and log why (DESIGN.md decision 6).
pub trait Hooks: Send + Sync {
    /// Filter plugins: may re-target the copy (`target.mailbox`, flags, keywords).
    fn filter(&self, _msg: &HookMessage<'_>, _target: &mut Target) -> FilterVerdict {
        FilterVerdict::Accept
    }
    /// Quota policy: may this be stored? Called per recipient with the final target and
    /// size (delivery, APPEND, import) and once per COPY/MOVE with the batch's sum. Runs
    /// on the blocking pool; it may read the user's usage from `store`.
    fn quota(&self, _store: &dyn MailData, _query: &QuotaQuery<'_>) -> QuotaVerdict {
        QuotaVerdict::Allow
    }
    /// Whether any quota policy applies to `user` (lets COPY skip the size lookup).
    fn has_quota(&self, _user: &str) -> bool {
        false
    }
    /// The limits the quota policies report for a user; blocking like [`Hooks::quota`].
    fn quota_limits(&self, _store: &dyn MailData, _user: UserId, _user_name: &str) -> QuotaLimits {
        QuotaLimits::default()
    }
    /// Whether any retention rule applies to `user`.
    fn has_retention(&self, _user: &str) -> bool {
        false
    }
    /// Retention rules: reviews one batch of a mailbox's messages. Decisions of every
    /// rule that applies, merged; the rules that failed (so nothing of theirs may be
    /// applied in this run) by name with the reason. Blocking.
    fn retention(&self, _mailbox: &MailboxFacts, _batch: &[Summary]) -> Review {
        Review::default()
    }
    /// Whether any hook may do work; `false` lets deliveries skip the blocking pool.
    fn active(&self) -> bool {
        true
    }
    /// Loaded plugins and their counters (`nestbox plugin list`).
    fn plugins(&self) -> Vec<PluginStatus> {
        Vec::new()
    }
}

/// What a hook may read of the store; the store implements it. Every call blocks (hooks
/// run on the blocking pool); errors are the store's, as text, for the hook's log line.
pub trait MailData: Send + Sync {
    /// A user's usage, total and per mailbox.
    fn usage(&self, user: UserId) -> Result<UsageReport, String>;
    /// Free and total bytes of the file system the data dir is on; zeros when unknown.
    fn disk(&self) -> (u64, u64);
    /// The name and version of the user's active Sieve script, if one is active. The
    /// version changes whenever any of the user's scripts does.
    fn active_script(&self, user: &str) -> Result<Option<(String, u64)>, String>;
    /// The text of the user's Sieve script `name`.
    fn script(&self, user: &str, name: &str) -> Result<String, String>;
    /// Whether the user has a mailbox of that name.
    fn mailbox_exists(&self, user: UserId, name: &str) -> Result<bool, String>;
    /// The same data behind a handle that may outlive the call (a plugin call keeps one
    /// for the imports it answers).
    fn shared(&self) -> Arc<dyn MailData>;
}

/// IMAP system flags as bits (RFC 9051 §2.3.2). `\Recent` is per session, never stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemFlags(pub u8);

impl SystemFlags {
    pub const SEEN: u8 = 1;
    pub const ANSWERED: u8 = 2;
    pub const FLAGGED: u8 = 4;
    pub const DELETED: u8 = 8;
    pub const DRAFT: u8 = 16;

    /// The five flags by name, in the order of a `FLAGS` list (RFC 9051 §2.3.2).
    pub const NAMES: [(u8, &'static str); 5] = [
        (Self::ANSWERED, "\\Answered"),
        (Self::FLAGGED, "\\Flagged"),
        (Self::DELETED, "\\Deleted"),
        (Self::SEEN, "\\Seen"),
        (Self::DRAFT, "\\Draft"),
    ];

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    pub fn set(&mut self, bit: u8) {
        self.0 |= bit;
    }

    /// The bit of the system flag called `name` (`\Seen`, any case); `None` for anything
    /// else, `\Recent` included (no one sets it).
    pub fn bit_of(name: &str) -> Option<u8> {
        Self::NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(bit, _)| *bit)
    }

    /// The names of the flags that are set, in [`Self::NAMES`] order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(bit, _)| self.has(*bit))
            .map(|(_, n)| n)
    }
}

/// The ids a message keeps from the server it was moved from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptIds {
    /// Its UID: at least the mailbox's UIDNEXT, which becomes `uid + 1`.
    pub uid: Uid,
    /// The POP3 UIDL (RFC 1939 section 7) to show instead of the one nestbox computes.
    pub pop3_uidl: Option<String>,
}

/// Message counts and sizes (the WIT `usage` record).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub messages: u64,
    /// Octets as clients see them (RFC822.SIZE sums).
    pub logical: u64,
    /// Estimated octets on disk: the logical size times the store's overall ratio of
    /// file size to logical bytes (blobs are shared between copies and users, so a
    /// mailbox's own share can only be estimated).
    pub physical: u64,
}

/// A user's usage, total and per mailbox (by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageReport {
    pub total: Usage,
    pub mailboxes: Vec<(String, Usage)>,
}

/// No plugins configured.
pub struct NoHooks;
impl Hooks for NoHooks {
    fn active(&self) -> bool {
        false
    }
}

/// What a rule decided for one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Expunge,
    /// Into this mailbox (full name), created when missing.
    MoveTo(MailboxName),
}

/// One message as a rule sees it (the WIT `retention.summary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub uid: Uid,
    pub internal_date: i64,
    pub save_date: i64,
    pub size: u64,
    /// System flags (`\Seen` ...) and keywords.
    pub flags: Vec<String>,
    pub pop3_retrieved: Option<i64>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub list_id: Option<String>,
}

/// The mailbox under review (the WIT `retention.mailbox-info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxFacts {
    pub user: String,
    pub name: String,
    /// RFC 6154 attribute, e.g. `\Trash`.
    pub special_use: Option<String>,
    /// METADATA-style annotations; empty until the store keeps RFC 5464 METADATA.
    pub annotations: Vec<(String, String)>,
    pub usage: Usage,
    pub total: Usage,
    pub limits: QuotaLimits,
    /// Free and total bytes of the data dir's file system.
    pub disk: (u64, u64),
}

/// What the rules said about one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Review {
    /// (rule name, UID, action), checked: every UID is in the batch.
    pub decisions: Vec<(String, Uid, Action)>,
    /// (rule name, why) for each rule that failed on this batch.
    pub failed: Vec<(String, String)>,
}

/// One plugin as `nestbox plugin list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginStatus {
    pub name: String,
    pub path: String,
    /// `filter`, `quota`, `retention`.
    pub hooks: Vec<String>,
    /// Empty = everyone.
    pub users: Vec<String>,
    pub loaded: bool,
    pub healthy: bool,
    pub calls: u64,
    pub failures: u64,
    /// Mean wall time per call, microseconds.
    pub mean_us: u64,
    /// The load error, or the last call failure.
    pub last_error: Option<String>,
}
