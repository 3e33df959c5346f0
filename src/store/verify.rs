//! `nestbox verify`: reads every message and checks every reference in one read
//! transaction, and lists what is wrong, naming user, mailbox and UID.
//!
//! Checked: every record decodes; every mailbox belongs to a user and is found by its
//! name; every message's mailbox, blob and trace exist, its size is its trace prefix plus
//! its blob; each mailbox's message count, bytes, UIDNEXT and HIGHESTMODSEQ agree with
//! its messages; each blob's reference count equals the messages naming it; every blob
//! (loose or packed) decompresses to the bytes its content hash names.

use crate::contracts::UserId;
use std::collections::{HashMap, HashSet};
use std::fmt;

use redb::{ReadTransaction, ReadableTable};
use serde::{Deserialize, Serialize};

use super::schema::{
    self, BLOBS, BlobId, BlobRecord, LOOSE, Location, MAILBOX_NAMES, MAILBOXES, MESSAGES, METADATA,
    MailboxRecord, MessageRecord, PACKS, PackRecord, SUBSCRIPTIONS, TRACES, USERS, UserRecord,
};
use super::{Shared, StoreError};

/// Problems listed at most; more are counted.
const MAX_PROBLEMS: usize = 10_000;

/// One thing found wrong, with what it affects as far as known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub user: Option<String>,
    pub mailbox: Option<String>,
    pub uid: Option<u32>,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.user, &self.mailbox, self.uid) {
            (Some(u), Some(m), Some(uid)) => write!(f, "{u}/{m} UID {uid}: ")?,
            (Some(u), Some(m), None) => write!(f, "{u}/{m}: ")?,
            (Some(u), None, _) => write!(f, "{u}: ")?,
            _ => {}
        }
        f.write_str(&self.what)
    }
}

/// What `verify` looked at and found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub users: u64,
    pub mailboxes: u64,
    pub messages: u64,
    pub blobs: u64,
    pub packs: u64,
    /// Uncompressed bytes read and hashed.
    pub bytes: u64,
    pub problems: Vec<Problem>,
    /// Problems beyond [`MAX_PROBLEMS`], not listed.
    pub more_problems: u64,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.more_problems == 0
    }

    fn add(&mut self, p: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.more_problems += 1;
        }
    }

    fn store(&mut self, what: impl Into<String>) {
        self.add(Problem {
            user: None,
            mailbox: None,
            uid: None,
            what: what.into(),
        });
    }
}

fn hex(id: &BlobId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Per-mailbox totals counted from its messages.
#[derive(Default)]
struct Counted {
    messages: u64,
    bytes: u64,
    max_uid: u32,
    max_modseq: u64,
}

struct Check<'t> {
    tx: &'t ReadTransaction,
    shared: &'t Shared,
    report: VerifyReport,
    users: HashMap<UserId, String>,
    mailboxes: HashMap<u64, MailboxRecord>,
    blobs: HashMap<BlobId, BlobRecord>,
    /// Blobs found damaged, with why.
    bad: HashMap<BlobId, String>,
}

impl Check<'_> {
    fn names(&self, mailbox: u64) -> (Option<String>, Option<String>) {
        match self.mailboxes.get(&mailbox) {
            Some(m) => (
                Some(
                    self.users
                        .get(&m.user)
                        .cloned()
                        .unwrap_or_else(|| format!("user #{}", m.user)),
                ),
                Some(m.name.clone()),
            ),
            None => (None, Some(format!("mailbox #{mailbox}"))),
        }
    }

    fn message_problem(&mut self, mailbox: u64, uid: u32, what: String) {
        let (user, mailbox) = self.names(mailbox);
        self.report.add(Problem {
            user,
            mailbox,
            uid: Some(uid),
            what,
        });
    }

    fn users(&mut self) -> Result<(), StoreError> {
        for row in self.tx.open_table(USERS)?.iter()? {
            let (k, v) = row?;
            match schema::decode::<UserRecord>(v.value()) {
                Ok(u) => {
                    self.report.users += 1;
                    if self.users.insert(u.id, u.name.clone()).is_some() {
                        self.report
                            .store(format!("user {}: id {} used twice", u.name, u.id));
                    }
                }
                Err(e) => self.report.store(format!("user {}: {e}", k.value())),
            }
        }
        Ok(())
    }

    fn mailboxes(&mut self) -> Result<(), StoreError> {
        let names = self.tx.open_table(MAILBOX_NAMES)?;
        for row in self.tx.open_table(MAILBOXES)?.iter()? {
            let (k, v) = row?;
            let id = k.value();
            match schema::decode::<MailboxRecord>(v.value()) {
                Ok(m) => {
                    self.report.mailboxes += 1;
                    let user = self.users.get(&m.user).cloned();
                    if user.is_none() {
                        self.report.add(Problem {
                            user: Some(format!("user #{}", m.user)),
                            mailbox: Some(m.name.clone()),
                            uid: None,
                            what: "the mailbox's user does not exist".into(),
                        });
                    }
                    if names.get((m.user.0, m.name.as_str()))?.map(|v| v.value()) != Some(id) {
                        self.report.add(Problem {
                            user: user.clone(),
                            mailbox: Some(m.name.clone()),
                            uid: None,
                            what: "the mailbox is not found by its name".into(),
                        });
                    }
                    self.mailboxes.insert(id, m);
                }
                Err(e) => self.report.store(format!("mailbox #{id}: {e}")),
            }
        }
        for row in names.iter()? {
            let (k, v) = row?;
            let (user, name) = k.value();
            if !self.mailboxes.contains_key(&v.value()) {
                self.report.add(Problem {
                    user: Some(self.users.get(&UserId(user)).cloned().unwrap_or_default()),
                    mailbox: Some(name.to_string()),
                    uid: None,
                    what: format!("the name points to a missing mailbox #{}", v.value()),
                });
            }
        }
        for row in self.tx.open_table(SUBSCRIPTIONS)?.iter()? {
            let (k, _) = row?;
            let (user, name) = k.value();
            if !self.users.contains_key(&UserId(user)) {
                self.report
                    .store(format!("subscription {name:?} of a missing user #{user}"));
            }
        }
        // Annotations (RFC 5464) belong to a user and to the server (0) or one of the
        // user's mailboxes.
        for row in self.tx.open_table(METADATA)?.iter()? {
            let (k, _) = row?;
            let (user, mailbox, name) = k.value();
            let owned = mailbox == 0
                || self
                    .mailboxes
                    .get(&mailbox)
                    .is_some_and(|m| m.user.0 == user);
            if !self.users.contains_key(&UserId(user)) || !owned {
                self.report.store(format!(
                    "annotation {name:?} of a missing user #{user} or mailbox #{mailbox}"
                ));
            }
        }
        Ok(())
    }

    fn blob_records(&mut self) -> Result<(), StoreError> {
        for row in self.tx.open_table(BLOBS)?.iter()? {
            let (k, v) = row?;
            let id = *k.value();
            match schema::decode::<BlobRecord>(v.value()) {
                Ok(b) => {
                    self.blobs.insert(id, b);
                }
                Err(e) => {
                    self.bad.insert(id, format!("blob record unreadable: {e}"));
                }
            }
        }
        self.report.blobs = self.blobs.len() as u64;
        Ok(())
    }

    /// Messages: references, sizes, per-mailbox totals; returns references per blob.
    fn messages(&mut self) -> Result<HashMap<BlobId, u32>, StoreError> {
        let traces = self.tx.open_table(TRACES)?;
        let mut trace_ok: HashMap<u32, Option<schema::TraceRecord>> = HashMap::new();
        let mut refs: HashMap<BlobId, u32> = HashMap::new();
        let mut counted: HashMap<u64, Counted> = HashMap::new();
        for row in self.tx.open_table(MESSAGES)?.iter()? {
            let (k, v) = row?;
            let (mailbox, uid) = k.value();
            self.report.messages += 1;
            let rec = match schema::decode::<MessageRecord>(v.value()) {
                Ok(r) => r,
                Err(e) => {
                    self.message_problem(mailbox, uid, format!("record unreadable: {e}"));
                    continue;
                }
            };
            if !self.mailboxes.contains_key(&mailbox) {
                self.message_problem(mailbox, uid, "the message's mailbox does not exist".into());
            }
            let c = counted.entry(mailbox).or_default();
            c.messages += 1;
            c.bytes += rec.size;
            c.max_uid = c.max_uid.max(uid);
            c.max_modseq = c.max_modseq.max(rec.modseq);
            *refs.entry(rec.blob).or_default() += 1;
            let mut prefix_len = 0u64;
            if let Some(id) = rec.trace {
                let trace = trace_ok
                    .entry(id)
                    .or_insert_with(|| schema::trace(&traces, id).ok());
                match trace {
                    Some(t) => {
                        prefix_len = t
                            .render(rec.envelope_from.as_deref(), rec.internal_date, &rec.blob)
                            .len() as u64;
                    }
                    None => {
                        self.message_problem(mailbox, uid, format!("missing trace {id}"));
                        continue;
                    }
                }
            }
            match self.blobs.get(&rec.blob).copied() {
                Some(b) if b.raw_len + prefix_len != rec.size => {
                    let what = format!(
                        "size {} but the message has {} bytes",
                        rec.size,
                        b.raw_len + prefix_len
                    );
                    self.message_problem(mailbox, uid, what);
                }
                Some(_) => {}
                None if self.bad.contains_key(&rec.blob) => {}
                None => self.message_problem(
                    mailbox,
                    uid,
                    format!("its content {} is missing", hex(&rec.blob)),
                ),
            }
        }
        let ids: Vec<u64> = self.mailboxes.keys().copied().collect();
        for id in ids {
            let c = counted.remove(&id).unwrap_or_default();
            let Some(m) = self.mailboxes.get(&id) else {
                continue;
            };
            let mut whats = Vec::new();
            if m.messages != c.messages || m.bytes != c.bytes {
                whats.push(format!(
                    "counts {} messages, {} bytes; it holds {} messages, {} bytes",
                    m.messages, m.bytes, c.messages, c.bytes
                ));
            }
            if c.messages > 0 && m.uidnext <= c.max_uid {
                whats.push(format!(
                    "UIDNEXT {} but UID {} exists",
                    m.uidnext, c.max_uid
                ));
            }
            if m.highest_modseq < c.max_modseq {
                whats.push(format!(
                    "HIGHESTMODSEQ {} but a message has MODSEQ {}",
                    m.highest_modseq, c.max_modseq
                ));
            }
            for what in whats {
                let (user, mailbox) = self.names(id);
                self.report.add(Problem {
                    user,
                    mailbox,
                    uid: None,
                    what,
                });
            }
        }
        Ok(refs)
    }

    /// Reads every blob once (each pack decompressed once) and checks its content hash.
    fn contents(&mut self, refs: &HashMap<BlobId, u32>) -> Result<(), StoreError> {
        let data = self.tx.open_table(schema::LOOSE_DATA)?;
        let loose = self.tx.open_table(LOOSE)?;
        let mut in_packs: HashSet<BlobId> = HashSet::new();
        for row in self.tx.open_table(PACKS)?.iter()? {
            let (k, v) = row?;
            let pack = k.value();
            self.report.packs += 1;
            let rec = match schema::decode::<PackRecord>(v.value()) {
                Ok(r) => r,
                Err(e) => {
                    self.report
                        .store(format!("pack {pack}: record unreadable: {e}"));
                    continue;
                }
            };
            let bytes = super::pack::load_uncached(self.tx, self.shared, pack);
            for item in &rec.items {
                in_packs.insert(*item);
                let Some(b) = self.blobs.get(item) else {
                    self.report
                        .store(format!("pack {pack} lists a missing blob {}", hex(item)));
                    continue;
                };
                let raw = match (&bytes, b.location) {
                    (Err(e), _) => Err(format!("its pack {pack} cannot be read: {e}")),
                    (
                        Ok(bytes),
                        Location::Packed {
                            pack: p, offset, ..
                        },
                    ) if p == pack => usize::try_from(offset)
                        .ok()
                        .zip(usize::try_from(offset.saturating_add(b.raw_len)).ok())
                        .and_then(|(s, e)| bytes.get(s..e))
                        .ok_or_else(|| format!("pack {pack} is too short")),
                    (Ok(_), other) => Err(format!(
                        "pack {pack} lists it but its record says {other:?}"
                    )),
                };
                match raw {
                    Ok(raw) => {
                        self.report.bytes += raw.len() as u64;
                        if let Err(e) = super::blob::check_content(item, raw) {
                            self.bad.insert(*item, e.to_string());
                        }
                    }
                    Err(e) => {
                        self.bad.insert(*item, e);
                    }
                }
            }
        }
        let ids: Vec<BlobId> = self.blobs.keys().copied().collect();
        for id in ids {
            let Some(b) = self.blobs.get(&id).copied() else {
                continue;
            };
            let counted = refs.get(&id).copied().unwrap_or(0);
            if counted != b.refs {
                self.report.store(format!(
                    "blob {}: reference count {} but {} messages use it",
                    hex(&id),
                    b.refs,
                    counted
                ));
            }
            match b.location {
                Location::Packed { pack, .. } => {
                    if !in_packs.contains(&id) {
                        self.bad
                            .insert(id, format!("its pack {pack} does not hold it"));
                    }
                }
                Location::Loose { seq } => {
                    if loose.get(seq)?.map(|v| *v.value()) != Some(id) {
                        self.report.store(format!(
                            "blob {}: not queued for packing (loose #{seq})",
                            hex(&id)
                        ));
                    }
                    let result = match data.get(seq)? {
                        Some(stored) => {
                            self.shared
                                .codec
                                .decompress(&b, stored.value())
                                .and_then(|raw| {
                                    super::blob::check_content(&id, &raw).map(|()| raw.len())
                                })
                        }
                        None => Err(StoreError::Corrupt("its data is missing".into())),
                    };
                    match result {
                        Ok(n) => self.report.bytes += n as u64,
                        Err(e) => {
                            self.bad.insert(id, e.to_string());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Names every message whose content is damaged.
    fn damaged_messages(&mut self) -> Result<(), StoreError> {
        if self.bad.is_empty() {
            return Ok(());
        }
        let mut named: HashSet<BlobId> = HashSet::new();
        for row in self.tx.open_table(MESSAGES)?.iter()? {
            let (k, v) = row?;
            let (mailbox, uid) = k.value();
            let Ok(rec) = schema::decode::<MessageRecord>(v.value()) else {
                continue;
            };
            if let Some(why) = self.bad.get(&rec.blob).cloned() {
                named.insert(rec.blob);
                self.message_problem(mailbox, uid, format!("content damaged: {why}"));
            }
        }
        let unnamed: Vec<(BlobId, String)> = self
            .bad
            .iter()
            .filter(|(id, _)| !named.contains(*id))
            .map(|(id, why)| (*id, why.clone()))
            .collect();
        for (id, why) in unnamed {
            self.report
                .store(format!("blob {} (no message uses it): {why}", hex(&id)));
        }
        Ok(())
    }
}

/// Checks everything `tx` sees (see the module comment).
pub(crate) fn verify(tx: &ReadTransaction, shared: &Shared) -> VerifyReport {
    let mut c = Check {
        tx,
        shared,
        report: VerifyReport::default(),
        users: HashMap::new(),
        mailboxes: HashMap::new(),
        blobs: HashMap::new(),
        bad: HashMap::new(),
    };
    let result = (|| {
        c.users()?;
        c.mailboxes()?;
        c.blob_records()?;
        let refs = c.messages()?;
        c.contents(&refs)?;
        c.damaged_messages()
    })();
    if let Err(e) = result {
        c.report
            .store(format!("the store cannot be read to the end: {e}"));
    }
    c.report
}

impl super::Store {
    /// Verifies the whole store in one read transaction on the blocking pool.
    pub async fn verify_contents(&self) -> Result<VerifyReport, StoreError> {
        self.read(|tx, shared| Ok(verify(tx, shared))).await
    }
}
