//! Mailbox commands: LIST (RFC 9051 §6.3.9; RFC 5258 LIST-EXTENDED; RFC 5819
//! LIST-STATUS; RFC 6154 SPECIAL-USE; RFC 3348 CHILDREN), LSUB (RFC 3501 §6.3.9),
//! CREATE (§6.3.4), DELETE (§6.3.5), RENAME (§6.3.6), SUBSCRIBE and UNSUBSCRIBE
//! (§6.3.7, §6.3.8), STATUS (§6.3.11; RFC 8438 SIZE), SELECT/EXAMINE (§6.3.2, §6.3.3),
//! CLOSE and UNSELECT (§6.4.1, §6.4.2).

use std::collections::{BTreeMap, BTreeSet};

use super::super::grammar::{ListCommand, QresyncParams, StatusItem};
use super::super::response::{self, Code, ImapError, Status};
use super::super::session::{Outcome, Session, State, no};
use super::super::view::View;
use crate::store::{MailboxInfo, Origin, StoreError, SystemFlags, canonical_mailbox};

/// Hierarchy delimiter (RFC 9051 §5.1; the store's too).
pub const DELIM: char = '/';

/// One node of the mailbox tree: an existing mailbox, or a parent implied by a child.
struct Node<'a> {
    info: Option<&'a MailboxInfo>,
    has_children: bool,
}

/// `*` matches anything, `%` anything but the delimiter (RFC 9051 §6.3.9).
pub fn wildcard_match(pattern: &[char], name: &[char]) -> bool {
    // dp[j]: pattern[..i] matches name[..j].
    let mut dp = vec![false; name.len() + 1];
    if let Some(first) = dp.first_mut() {
        *first = true;
    }
    for p in pattern {
        let mut next = vec![false; name.len() + 1];
        match p {
            '*' | '%' => {
                let mut reach = false;
                for j in 0..=name.len() {
                    if dp.get(j).copied().unwrap_or(false) {
                        reach = true;
                    }
                    if reach && let Some(n) = next.get_mut(j) {
                        *n = true;
                    }
                    if *p == '%' && name.get(j) == Some(&DELIM) {
                        reach = false;
                    }
                }
            }
            c => {
                for j in 0..name.len() {
                    if dp.get(j).copied().unwrap_or(false)
                        && name.get(j) == Some(c)
                        && let Some(n) = next.get_mut(j + 1)
                    {
                        *n = true;
                    }
                }
            }
        }
        dp = next;
    }
    dp.last().copied().unwrap_or(false)
}

/// INBOX is case-insensitive (RFC 9051 §5.1): a pattern that starts with it in any case
/// is matched as `INBOX`.
fn canonical_pattern(p: &str) -> String {
    match p.get(..5) {
        Some(head) if head.eq_ignore_ascii_case("INBOX") => {
            let rest = p.get(5..).unwrap_or("");
            if rest.is_empty() || rest.starts_with(DELIM) {
                format!("INBOX{rest}")
            } else {
                p.to_string()
            }
        }
        _ => p.to_string(),
    }
}

fn tree(boxes: &[MailboxInfo]) -> BTreeMap<String, Node<'_>> {
    let mut t: BTreeMap<String, Node<'_>> = BTreeMap::new();
    for b in boxes {
        t.entry(b.name.clone())
            .or_insert(Node {
                info: None,
                has_children: false,
            })
            .info = Some(b);
        let mut prefix = b.name.as_str();
        while let Some(i) = prefix.rfind(DELIM) {
            prefix = prefix.get(..i).unwrap_or("");
            t.entry(prefix.to_string())
                .or_insert(Node {
                    info: None,
                    has_children: false,
                })
                .has_children = true;
        }
    }
    t
}

/// RFC 5258 §4 `mbox-list-extended-item` for RECURSIVEMATCH with SUBSCRIBED.
const CHILDINFO: &[u8] = b" (\"CHILDINFO\" (\"SUBSCRIBED\"))";

/// Whether a subscribed name lies below `name` in the hierarchy.
fn subscribed_below(subs: &BTreeSet<String>, name: &str) -> bool {
    let prefix = format!("{name}{DELIM}");
    subs.range(prefix.clone()..)
        .next()
        .is_some_and(|s| s.starts_with(&prefix))
}

impl Session {
    /// Decodes a mailbox name from the wire: UTF-8 after UTF8=ACCEPT / rev2, else
    /// modified UTF-7, normalised to NFC (RFC 9051 §5.1: the two spellings of "Café"
    /// are one name). A name that does not decode is a well-formed astring naming no
    /// mailbox we can have: `NO [CANNOT]`, not BAD (what clients and Dovecot expect).
    pub(in super::super) fn mailbox_name(&self, raw: &[u8]) -> Result<String, ImapError> {
        use unicode_normalization::UnicodeNormalization;
        let name = if self.utf8() {
            String::from_utf8(raw.to_vec())
                .map_err(|_| ImapError::no(Code::Cannot, "Mailbox name is not UTF-8"))?
        } else {
            super::super::mutf7::decode(raw)
                .ok_or_else(|| ImapError::no(Code::Cannot, "Invalid modified UTF-7 mailbox name"))?
        };
        if name.chars().any(|c| c.is_control()) {
            return Err(ImapError::no(
                Code::Cannot,
                "Control characters in a mailbox name",
            ));
        }
        Ok(name.nfc().collect())
    }

    /// A mailbox that must exist.
    pub(in super::super) async fn existing(&self, raw: &[u8]) -> Result<MailboxInfo, ImapError> {
        let (user, _) = self.user()?;
        let name = self.mailbox_name(raw)?;
        match self.store().mailbox(user, &name).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) | Err(crate::store::StoreError::InvalidName(_)) => {
                no(Code::NonExistent, "No such mailbox")
            }
            Err(e) => Err(e.into()),
        }
    }

    /// RFC 9051 §6.3.9 and RFC 5258.
    pub(in super::super) async fn list(
        &mut self,
        cmd: ListCommand,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let (user, _) = self.user()?;
        let utf8 = self.utf8();
        let reference = self.mailbox_name(&cmd.reference)?;
        // RFC 9051 §6.3.9: LIST "" "" asks for the delimiter.
        if !cmd.extended && cmd.patterns.iter().all(|p| p.is_empty()) {
            out.extend_from_slice(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
            return Ok(Outcome::ok("LIST completed"));
        }
        let mut patterns = Vec::new();
        for p in &cmd.patterns {
            let p = self.mailbox_name(p)?;
            if p.is_empty() {
                continue;
            }
            let full = canonical_pattern(&format!("{reference}{p}"));
            patterns.push(full.chars().collect::<Vec<char>>());
        }
        let boxes = self.store().mailboxes(user).await?;
        let t = tree(&boxes);
        let subscribed_mode = cmd.select.subscribed;
        let show_subscribed = cmd.ret.subscribed || subscribed_mode;
        // Subscriptions are per name and outlive mailboxes (RFC 9051 §6.3.7).
        let subs: BTreeSet<String> = if show_subscribed {
            self.store()
                .subscriptions(user)
                .await?
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        // RFC 5258 §3.1, §3.5: with RECURSIVEMATCH, a name matching the pattern whose
        // descendants (matching the pattern or not) include a subscribed one is listed
        // too, with `("CHILDINFO" ("SUBSCRIBED"))`.
        let recursive = subscribed_mode && cmd.select.recursive_match;
        let child_info = |name: &str| recursive && subscribed_below(&subs, name);
        // The largest METADATA value left out for MAXSIZE (RFC 5464 §4.2.1).
        let mut longest: Option<usize> = None;
        for (name, node) in &t {
            let chars: Vec<char> = name.chars().collect();
            if !patterns.iter().any(|p| wildcard_match(p, &chars)) {
                continue;
            }
            let subscribed = subs.contains(name);
            let info_item = child_info(name);
            if subscribed_mode && !subscribed && !info_item {
                continue;
            }
            if cmd.select.special_use && node.info.and_then(|i| i.special_use).is_none() {
                continue;
            }
            let mut attrs: Vec<&str> = Vec::new();
            match node.info {
                None if cmd.extended => attrs.push("\\NonExistent"),
                None => attrs.push("\\Noselect"),
                Some(_) => {}
            }
            attrs.push(if node.has_children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
            if show_subscribed && subscribed {
                attrs.push("\\Subscribed");
            }
            // Quirk Q1: special-use attributes in plain LIST output too.
            if let Some(su) = node.info.and_then(|i| i.special_use) {
                attrs.push(su.attribute());
            }
            response::list(out, &attrs, name, utf8);
            if info_item {
                out.extend_from_slice(CHILDINFO);
            }
            out.extend_from_slice(b"\r\n");
            if let (Some(items), Some(info)) = (&cmd.ret.status, node.info) {
                self.write_status(info, items, out).await?;
            }
            // RFC 9590 §3: the requested entries follow the mailbox's LIST response.
            if let (Some(want), Some(info)) = (&cmd.ret.metadata, node.info) {
                let target = crate::store::Annotated::Mailbox(info.id.0);
                if let Some(n) = self.write_metadata(target, name, want, out).await? {
                    longest = Some(longest.unwrap_or(0).max(n));
                }
            }
        }
        // RFC 5258 §3.1: a subscribed name without a mailbox is `\NonExistent`.
        // With RECURSIVEMATCH, so is a parent that exists only in subscribed names.
        if subscribed_mode {
            let mut names: BTreeSet<&str> = subs.iter().map(String::as_str).collect();
            if recursive {
                for sub in &subs {
                    let mut prefix = sub.as_str();
                    while let Some(i) = prefix.rfind(DELIM) {
                        prefix = prefix.get(..i).unwrap_or("");
                        names.insert(prefix);
                    }
                }
            }
            for name in names.into_iter().filter(|n| !t.contains_key(*n)) {
                let chars: Vec<char> = name.chars().collect();
                if !patterns.iter().any(|p| wildcard_match(p, &chars)) {
                    continue;
                }
                let attrs: &[&str] = if subs.contains(name) {
                    &["\\NonExistent", "\\Subscribed"]
                } else {
                    &["\\NonExistent"]
                };
                response::list(out, attrs, name, utf8);
                if child_info(name) {
                    out.extend_from_slice(CHILDINFO);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        let mut done = response::Status::ok("LIST completed");
        if let Some(n) = longest {
            done = done.with(response::Code::Metadata(
                response::MetadataCode::LongEntries(n),
            ));
        }
        Ok(Outcome::Done(done))
    }

    /// RFC 3501 §6.3.9: subscribed names; with a trailing `%`, an unsubscribed parent
    /// of a subscribed child appears with `\Noselect`.
    pub(in super::super) async fn lsub(
        &mut self,
        reference: &[u8],
        pattern: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let (user, _) = self.user()?;
        let utf8 = self.utf8();
        let reference = self.mailbox_name(reference)?;
        let pattern = self.mailbox_name(pattern)?;
        if pattern.is_empty() {
            out.extend_from_slice(b"* LSUB (\\Noselect) \"/\" \"\"\r\n");
            return Ok(Outcome::ok("LSUB completed"));
        }
        let full = canonical_pattern(&format!("{reference}{pattern}"));
        let p: Vec<char> = full.chars().collect();
        // Every subscribed name, mailbox or not (RFC 3501 §6.3.9).
        let subs = self.store().subscriptions(user).await?;
        let mut hits: BTreeMap<String, bool> = BTreeMap::new();
        for name in &subs {
            let chars: Vec<char> = name.chars().collect();
            if wildcard_match(&p, &chars) {
                hits.insert(name.clone(), true);
            }
            if full.ends_with('%') {
                let mut prefix = name.as_str();
                while let Some(i) = prefix.rfind(DELIM) {
                    prefix = prefix.get(..i).unwrap_or("");
                    let chars: Vec<char> = prefix.chars().collect();
                    if wildcard_match(&p, &chars) {
                        hits.entry(prefix.to_string()).or_insert(false);
                    }
                }
            }
        }
        for (name, subscribed) in hits {
            let attrs = if subscribed { "" } else { "\\Noselect" };
            out.extend_from_slice(format!("* LSUB ({attrs}) \"/\" ").as_bytes());
            response::mailbox(out, &name, utf8);
            out.extend_from_slice(b"\r\n");
        }
        Ok(Outcome::ok("LSUB completed"))
    }

    /// RFC 9051 §6.3.4: a trailing delimiter is dropped; missing parents are created.
    pub(in super::super) async fn create(&mut self, raw: &[u8]) -> Result<Outcome, ImapError> {
        let (user, _) = self.user()?;
        let name = self.mailbox_name(raw)?;
        let name = name.strip_suffix(DELIM).unwrap_or(&name).to_string();
        if name.contains(['*', '%']) {
            return no(Code::Cannot, "Wildcards are not allowed in mailbox names");
        }
        // Missing parents too, in one job: a refused name creates nothing.
        self.store().create_mailbox(user, &name).await?;
        Ok(Outcome::ok("CREATE completed"))
    }

    /// DELETE (RFC 9051 §6.3.5). INBOX cannot be deleted; a mailbox with children is
    /// refused with `NO [HASCHILDREN]` (the RFC 9051 choice: we keep no `\Noselect`
    /// placeholders, so a name without a mailbox, even a parent implied by its
    /// children, is `NO [NONEXISTENT]`). Children are never removed; a subscription to
    /// the name survives. Deleting the mailbox this session has selected first
    /// deselects it: `* OK [CLOSED]`, and the session is Authenticated again. Other
    /// sessions that have it selected get `* BYE` (see `Session::updates`).
    pub(in super::super) async fn delete(
        &mut self,
        raw: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let (user, _) = self.user()?;
        let name = self.mailbox_name(raw)?;
        if name.eq_ignore_ascii_case("INBOX") {
            return no(Code::Cannot, "INBOX cannot be deleted");
        }
        let store = self.store().clone();
        let info = match store.mailbox(user, &name).await {
            Ok(Some(m)) => m,
            Ok(None) | Err(StoreError::InvalidName(_)) => {
                return no(Code::NonExistent, "No such mailbox");
            }
            Err(e) => return Err(e.into()),
        };
        store.delete_mailbox(user, &info.name).await?;
        if self.view().is_some_and(|v| v.mailbox == info.id) {
            if let State::Selected(account, _) = std::mem::replace(&mut self.state, State::Logout) {
                self.state = State::Authenticated(account);
            }
            self.dirty = false;
            self.recheck = false;
            Status::ok("Selected mailbox was deleted")
                .with(Code::Closed)
                .encode(None, out);
        }
        Ok(Outcome::ok("DELETE completed"))
    }

    /// RENAME (RFC 9051 §6.3.6; RFC 3501 §6.3.5). Children move along; missing parents
    /// of the new name are created; renaming INBOX moves its messages into the new
    /// mailbox and leaves INBOX empty (its sessions see EXPUNGEs). The mailbox keeps its
    /// identity, so a session that has it selected carries on under the new name.
    pub(in super::super) async fn rename(
        &mut self,
        from: &[u8],
        to: &[u8],
    ) -> Result<Outcome, ImapError> {
        let (user, _) = self.user()?;
        let old = self.mailbox_name(from)?;
        let new = self.mailbox_name(to)?;
        let new = new.strip_suffix(DELIM).unwrap_or(&new).to_string();
        if new.contains(['*', '%']) {
            return no(Code::Cannot, "Wildcards are not allowed in mailbox names");
        }
        let (old, new) = match (canonical_mailbox(&old), canonical_mailbox(&new)) {
            (Ok(o), Ok(n)) => (o, n),
            (Err(_), _) => return no(Code::NonExistent, "No such mailbox"),
            (_, Err(_)) => return no(Code::Cannot, "Invalid mailbox name"),
        };
        match self.store().rename_mailbox(user, &old, &new).await {
            Ok(()) => {}
            Err(StoreError::InvalidName(_)) => {
                return no(Code::Cannot, "A mailbox cannot be renamed into itself");
            }
            Err(e) => return Err(e.into()),
        }
        if old != "INBOX"
            && let State::Selected(_, view) = &mut self.state
        {
            let below = format!("{old}{DELIM}");
            if view.name == old {
                view.name = new;
            } else if let Some(rest) = view.name.strip_prefix(&below) {
                view.name = format!("{new}{DELIM}{rest}");
            }
        }
        Ok(Outcome::ok("RENAME completed"))
    }

    /// SUBSCRIBE / UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8): per name; a name without a
    /// mailbox may be subscribed, and unsubscribing a name that is not subscribed is
    /// not an error.
    pub(in super::super) async fn subscribe(
        &mut self,
        raw: &[u8],
        on: bool,
    ) -> Result<Outcome, ImapError> {
        let (user, _) = self.user()?;
        let name = self.mailbox_name(raw)?;
        if name.is_empty() || name.contains(['*', '%']) {
            return no(Code::Cannot, "Invalid mailbox name");
        }
        self.store().set_subscribed(user, &name, on).await?;
        Ok(Outcome::ok(if on {
            "SUBSCRIBE completed"
        } else {
            "UNSUBSCRIBE completed"
        }))
    }

    /// Writes `* STATUS name (items)` for one mailbox.
    pub(in super::super) async fn write_status(
        &self,
        info: &MailboxInfo,
        items: &[StatusItem],
        out: &mut Vec<u8>,
    ) -> Result<(), ImapError> {
        let needs_messages = items.iter().any(|i| {
            matches!(
                i,
                StatusItem::Unseen | StatusItem::Deleted | StatusItem::Recent
            )
        });
        let msgs = if needs_messages {
            self.store().messages(info.id).await?
        } else {
            Default::default()
        };
        let count = |bit: u8, want: bool| msgs.iter().filter(|m| m.flags.has(bit) == want).count();
        let mut parts = Vec::new();
        for item in items {
            let value = match item {
                StatusItem::Messages => info.messages.to_string(),
                StatusItem::Recent => {
                    if self.enabled.rev2 {
                        "0".to_string()
                    } else {
                        self.shared.unclaimed(info.id, &msgs).len().to_string()
                    }
                }
                StatusItem::UidNext => info.uidnext.to_string(),
                StatusItem::UidValidity => info.uidvalidity.to_string(),
                StatusItem::Unseen => count(SystemFlags::SEEN, false).to_string(),
                StatusItem::Deleted => count(SystemFlags::DELETED, true).to_string(),
                StatusItem::Size => info.bytes.to_string(),
                StatusItem::HighestModSeq => info.highest_modseq.to_string(),
                StatusItem::AppendLimit => self.append_limit().to_string(),
            };
            parts.push(format!("{} {value}", item.name()));
        }
        out.extend_from_slice(b"* STATUS ");
        response::mailbox(out, &info.name, self.utf8());
        out.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        Ok(())
    }

    /// RFC 9051 §6.3.11: never selects, never clears `\Recent`.
    pub(in super::super) async fn status(
        &mut self,
        raw: &[u8],
        items: &[StatusItem],
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let info = self.existing(raw).await?;
        self.write_status(&info, items, out).await?;
        Ok(Outcome::ok("STATUS completed"))
    }

    /// RFC 9051 §6.3.2 / §6.3.3. Selecting while selected deselects first (without
    /// expunging); a failed SELECT leaves the session Authenticated.
    pub(in super::super) async fn select(
        &mut self,
        raw: &[u8],
        read_only: bool,
        condstore: bool,
        qresync: Option<QresyncParams>,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        if let State::Selected(..) = self.state {
            let State::Selected(account, _) = std::mem::replace(&mut self.state, State::Logout)
            else {
                return Err(ImapError::Internal("state changed".into()));
            };
            self.state = State::Authenticated(account);
            self.dirty = false;
            // RFC 9051 §7.1, RFC 7162 §3.2.11: the boundary between the two mailboxes'
            // responses, for rev2 and QRESYNC sessions.
            if self.enabled.rev2 || self.enabled.qresync {
                Status::ok("Previous mailbox closed")
                    .with(Code::Closed)
                    .encode(None, out);
            }
        }
        let info = self.existing(raw).await?;
        // The HIGHESTMODSEQ of the very state listed (RFC 7162 §3.1.2.1).
        let (msgs, modseq) = self.store().listing(info.id).await?;
        if condstore {
            self.enabled.condstore = true;
        }
        let recent = self.claim_recent(info.id, read_only, &msgs);
        let mut view = View::new(
            info.id,
            info.name.clone(),
            info.uidvalidity,
            read_only,
            (&msgs, modseq),
            recent,
        );
        // SELECT reports HIGHESTMODSEQ below; with CONDSTORE on that is the report.
        if self.enabled.condstore {
            view.told = Some(modseq);
        }
        let rev1 = !self.enabled.rev2;
        let mut o = String::new();
        o.push_str(&format!("* {} EXISTS\r\n", view.exists()));
        if rev1 {
            o.push_str(&format!("* {} RECENT\r\n", view.recent.len()));
        }
        o.push_str(&format!("* FLAGS {}\r\n", view.flags_response()));
        o.push_str(&format!(
            "* OK [PERMANENTFLAGS {}] Limited\r\n",
            view.permanent_flags()
        ));
        if rev1 && let Some(seq) = msgs.iter().position(|m| !m.flags.has(SystemFlags::SEEN)) {
            o.push_str(&format!("* OK [UNSEEN {}] First unseen\r\n", seq + 1));
        }
        o.push_str(&format!(
            "* OK [UIDVALIDITY {}] UIDs valid\r\n",
            info.uidvalidity
        ));
        o.push_str(&format!(
            "* OK [UIDNEXT {}] Predicted next UID\r\n",
            info.uidnext
        ));
        o.push_str(&format!("* OK [HIGHESTMODSEQ {modseq}] Highest\r\n"));
        out.extend_from_slice(o.as_bytes());
        if self.enabled.rev2 {
            // RFC 9051 §6.3.2: a LIST response for the mailbox.
            response::list(out, &[], &info.name, true);
            out.extend_from_slice(b"\r\n");
        }
        // RFC 7162 §3.2.5.1: with a matching UIDVALIDITY, what changed since the
        // client's mod-sequence; a different UIDVALIDITY is a plain SELECT.
        if let Some(q) = qresync.filter(|q| q.uidvalidity == info.uidvalidity) {
            self.qresync_select(&view, &q, out).await?;
        }
        let account = match std::mem::replace(&mut self.state, State::Logout) {
            State::Authenticated(a) => a,
            other => {
                self.state = other;
                return Err(ImapError::Internal("SELECT outside Authenticated".into()));
            }
        };
        self.state = State::Selected(account, view);
        self.dirty = false;
        let (code, verb) = if read_only {
            (Code::ReadOnly, "EXAMINE")
        } else {
            (Code::ReadWrite, "SELECT")
        };
        Ok(Outcome::Done(
            Status::ok(format!("{verb} completed")).with(code),
        ))
    }

    /// CLOSE (RFC 9051 §6.4.1: silently expunges `\Deleted` when read-write) and
    /// UNSELECT (RFC 3691; §6.4.2: never expunges).
    pub(in super::super) async fn close(&mut self, expunge: bool) -> Result<Outcome, ImapError> {
        let State::Selected(account, view) = std::mem::replace(&mut self.state, State::Logout)
        else {
            return Err(ImapError::Internal("CLOSE outside Selected".into()));
        };
        self.state = State::Authenticated(account);
        self.dirty = false;
        if expunge && !view.read_only {
            // One transaction decides what is `\Deleted` and removes it; no untagged
            // EXPUNGE is sent (RFC 9051 §6.4.1).
            match self
                .store()
                .expunge_deleted(view.mailbox, None, Origin::NONE)
                .await
            {
                Ok(_) | Err(StoreError::NoSuchMailbox) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Outcome::ok(if expunge {
            "CLOSE completed"
        } else {
            "UNSELECT completed"
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        let p: Vec<char> = p.chars().collect();
        let n: Vec<char> = n.chars().collect();
        wildcard_match(&p, &n)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", "a/b/c"));
        assert!(m("%", "a"));
        assert!(!m("%", "a/b"));
        assert!(m("a/%", "a/b"));
        assert!(!m("a/%", "a/b/c"));
        assert!(m("a*c", "a/b/c"));
        assert!(m("a%c", "abc"));
        assert!(!m("a%c", "a/c"));
        assert!(m("INBOX", "INBOX"));
        assert!(!m("INBOX", "INBOX/x"));
        assert!(m("%/%", "a/b"));
    }

    #[test]
    fn inbox_patterns_are_case_insensitive() {
        assert_eq!(canonical_pattern("inbox"), "INBOX");
        assert_eq!(canonical_pattern("Inbox/%"), "INBOX/%");
        assert_eq!(canonical_pattern("inboxes"), "inboxes");
    }
}
