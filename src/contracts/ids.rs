//! The identifiers of the mail model, as types: a user's number, a mailbox's number, a
//! message's UID, a modification sequence and a checked mailbox name. Each wraps the
//! number the store keeps in its tables (the tables hold the bare numbers; the store
//! wraps and unwraps them where it reads and writes), so that a function taking a user
//! and a mailbox cannot be handed them the wrong way round.

use std::fmt;

/// Declares a number newtype: `Copy`, ordered, serialised as the bare number, printed
/// as the number.
macro_rules! id {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// A user's number in the store, given when the user is first seen; names map to
    /// it in the `users` table.
    UserId(u32)
);
id!(
    /// A mailbox's number in the store; unique across users, never reused (a mailbox
    /// deleted and created again gets a new one, and a new UIDVALIDITY).
    MailboxId(u64)
);
id!(
    /// A message's UID in its mailbox (RFC 9051 §2.3.1.1): ascending, never reused while
    /// the mailbox's UIDVALIDITY stays. `0` is not a UID.
    Uid(u32)
);
id!(
    /// A modification sequence (RFC 7162 §3.1): the mailbox's counter at the change
    /// that last touched a message, or the mailbox's highest.
    ModSeq(u64)
);

/// A mailbox name [`canonical_mailbox`] refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMailboxName {
    pub name: String,
    pub why: &'static str,
}

impl std::fmt::Display for BadMailboxName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mailbox {:?}: {}", self.name, self.why)
    }
}

/// A mailbox name that [`canonical_mailbox`] accepted, in its canonical form: what the
/// config, the retention rules' decisions and POP3's DELE policy hold, checked once
/// where the name comes in (a config file is refused when it holds a bad one).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct MailboxName(String);

impl MailboxName {
    pub fn new(name: &str) -> Result<MailboxName, BadMailboxName> {
        canonical_mailbox(name).map(MailboxName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MailboxName {
    type Error = BadMailboxName;
    fn try_from(name: String) -> Result<MailboxName, BadMailboxName> {
        MailboxName::new(&name)
    }
}

impl From<MailboxName> for String {
    fn from(name: MailboxName) -> String {
        name.0
    }
}

impl std::ops::Deref for MailboxName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MailboxName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The hierarchy delimiter of mailbox names.
pub const MAILBOX_DELIMITER: char = '/';

/// Checks and canonicalises a mailbox name (UTF-8, already decoded from modified UTF-7):
/// `INBOX` in any case is `INBOX` (RFC 9051 §5.1); no empty hierarchy levels, no control
/// characters, at most 512 bytes and 16 levels. The error says why.
pub fn canonical_mailbox(name: &str) -> Result<String, BadMailboxName> {
    let bad = |why: &'static str| {
        Err(BadMailboxName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 512 {
        return bad("longer than 512 bytes");
    }
    if name.chars().any(|c| c.is_control()) {
        return bad("control characters");
    }
    let parts: Vec<&str> = name.split(MAILBOX_DELIMITER).collect();
    if parts.len() > 16 {
        return bad("more than 16 levels");
    }
    if parts.iter().any(|p| p.is_empty()) {
        return bad("empty hierarchy level");
    }
    match parts.split_first() {
        Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => {
            let mut out = String::from("INBOX");
            for p in rest {
                out.push(MAILBOX_DELIMITER);
                out.push_str(p);
            }
            Ok(out)
        }
        _ => Ok(name.to_string()),
    }
}
