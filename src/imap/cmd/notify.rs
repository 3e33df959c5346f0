//! NOTIFY (RFC 5465): the client names the events it wants to hear of, for the selected
//! mailbox and for others, and the server sends them as they happen, between commands
//! and in IDLE, without being asked.
//!
//! What is sent:
//! - The selected mailbox, with `SELECTED` or `SELECTED-DELAYED` and message events:
//!   `EXISTS`, `EXPUNGE` (or `VANISHED` with QRESYNC) and `FETCH (FLAGS)` as the change
//!   feed reports them (§5.1-§5.3), and for `MessageNew (fetch-att ...)` a FETCH of the
//!   new messages with those items (§5.2). `SELECTED-DELAYED` holds expunges back until
//!   a command that may carry them (§6.1.2). Without either, the selected mailbox gets
//!   updates only where the base protocol sends them (§3.1: same as `SELECTED NONE`),
//!   and none in IDLE (§4: IDLE sends exactly what NOTIFY asked for).
//! - Other mailboxes with `MessageNew`/`MessageExpunge`: `* STATUS name (MESSAGES n
//!   UIDNEXT n UIDVALIDITY n)`, plus `HIGHESTMODSEQ` when `FlagChange` is asked for
//!   (§5.1-§5.3); `MailboxName`: `* LIST` of a new name, `(\NonExistent)` for a deleted
//!   one, `("OLDNAME" (old))` for a renamed one (§5.4); `SubscriptionChange`: `* LIST`
//!   with or without `\Subscribed` (§5.5).
//!
//! How: the session keeps what it last told the client of every mailbox of the user
//! (one store read of the mailbox list), and when the change feed wakes it compares a
//! fresh read with that and sends the differences. Changes this session makes itself are
//! not reported (§5: SHOULD): after a command that changes mailboxes, the copy is read
//! again silently; another session's change that lands during that command is absorbed
//! the same way (its effect still shows in the next STATUS or LIST the client asks for).
//! `inboxes` is the same set as `personal` (§6.3 allows it: mail may be filed into any
//! mailbox by Sieve). MailboxMetadataChange and ServerMetadataChange (§5.6, §5.7,
//! required with METADATA) send `* METADATA name entry ...` with the names of the
//! annotations another session set or removed (RFC 5464 §4.4.2). AnnotationChange
//! (RFC 5257 ANNOTATE, not offered) is refused with `NO [BADEVENT ...]` (§3.1).

use crate::contracts::{MailboxId, Uid};
use std::collections::{BTreeMap, BTreeSet};

use super::super::grammar::{Parser, R, Syntax};
use super::super::response::{self, Code, ImapError};
use super::super::sequence::SequenceSet;
use super::super::session::{Outcome, Session};
use super::fetch::{FetchArgs, Item, att_list};
use crate::store::{Change, ChangeKind, MailboxInfo, canonical_mailbox};

/// The events this server can send (the `BADEVENT` list, RFC 5465 §3.1).
const SUPPORTED: &str = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange \
                         MailboxMetadataChange ServerMetadataChange";

/// `filter-mailboxes` (RFC 5465 §8). Names are raw astrings, decoded by the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Selected,
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<Vec<u8>>),
    Mailboxes(Vec<Vec<u8>>),
}

/// `event` (RFC 5465 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// With the items of its `(fetch-att ...)` list, if any.
    MessageNew(Option<Vec<Item>>),
    MessageExpunge,
    FlagChange,
    AnnotationChange,
    MailboxName,
    SubscriptionChange,
    MailboxMetadataChange,
    ServerMetadataChange,
    /// `event-ext`: an event this server does not know.
    Other(String),
}

impl Event {
    fn is_message_event(&self) -> bool {
        matches!(
            self,
            Event::MessageNew(_)
                | Event::MessageExpunge
                | Event::FlagChange
                | Event::AnnotationChange
        )
    }
}

/// `event-group = "(" filter-mailboxes SP events ")"`; no events = `NONE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventGroup {
    pub filter: Filter,
    pub events: Vec<Event>,
}

/// The NOTIFY command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyCommand {
    None,
    Set {
        /// `SET STATUS`: a STATUS of every watched mailbox before the OK (§3.1).
        status: bool,
        groups: Vec<EventGroup>,
    },
}

/// `notify = "NOTIFY" SP (notify-set / notify-none)`, after `NOTIFY`.
pub fn parse(p: &mut Parser<'_>) -> R<NotifyCommand> {
    p.sp()?;
    if p.keyword("NONE") {
        return Ok(NotifyCommand::None);
    }
    if !p.keyword("SET") {
        return Err(Syntax::Expected("SET or NONE"));
    }
    p.sp()?;
    let status = p.keyword("STATUS");
    if status {
        p.sp()?;
    }
    let mut groups = vec![event_group(p)?];
    while p.eat(b' ') {
        groups.push(event_group(p)?);
    }
    Ok(NotifyCommand::Set { status, groups })
}

fn event_group(p: &mut Parser<'_>) -> R<EventGroup> {
    p.expect(b'(', "an event group")?;
    let filter = if p.keyword("SELECTED-DELAYED") {
        Filter::SelectedDelayed
    } else if p.keyword("SELECTED") {
        Filter::Selected
    } else if p.keyword("INBOXES") {
        Filter::Inboxes
    } else if p.keyword("PERSONAL") {
        Filter::Personal
    } else if p.keyword("SUBSCRIBED") {
        Filter::Subscribed
    } else if p.keyword("SUBTREE") {
        p.sp()?;
        Filter::Subtree(mailboxes(p)?)
    } else if p.keyword("MAILBOXES") {
        p.sp()?;
        Filter::Mailboxes(mailboxes(p)?)
    } else {
        return Err(Syntax::Unknown("mailbox filter"));
    };
    p.sp()?;
    let events = if p.keyword("NONE") {
        Vec::new()
    } else {
        let mut events = Vec::new();
        p.expect(b'(', "( or NONE")?;
        loop {
            events.push(event(p)?);
            if p.eat(b')') {
                break;
            }
            p.sp()?;
        }
        events
    };
    p.expect(b')', ")")?;
    Ok(EventGroup { filter, events })
}

/// `one-or-more-mailbox = mailbox / many-mailboxes`.
fn mailboxes(p: &mut Parser<'_>) -> R<Vec<Vec<u8>>> {
    if !p.eat(b'(') {
        return Ok(vec![p.astring()?]);
    }
    let mut out = vec![p.astring()?];
    while p.eat(b' ') {
        out.push(p.astring()?);
    }
    p.expect(b')', ")")?;
    Ok(out)
}

fn event(p: &mut Parser<'_>) -> R<Event> {
    let name = p.atom()?.to_ascii_lowercase();
    Ok(match name.as_slice() {
        b"messagenew" => {
            // `MessageNew [SP "(" fetch-att *(SP fetch-att) ")"]`, in FETCH's grammar.
            let fetch = if p.rest().starts_with(b" (") {
                p.sp()?;
                Some(att_list(p)?)
            } else {
                None
            };
            Event::MessageNew(fetch)
        }
        b"messageexpunge" => Event::MessageExpunge,
        b"flagchange" => Event::FlagChange,
        b"annotationchange" => Event::AnnotationChange,
        b"mailboxname" => Event::MailboxName,
        b"subscriptionchange" => Event::SubscriptionChange,
        b"mailboxmetadatachange" => Event::MailboxMetadataChange,
        b"servermetadatachange" => Event::ServerMetadataChange,
        _ => Event::Other(String::from_utf8_lossy(&name).into_owned()),
    })
}

/// Which mailboxes a group of non-selected events covers, names canonical.
#[derive(Debug, Clone)]
enum Watch {
    /// `personal` and `inboxes`.
    All,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

#[derive(Debug, Clone)]
struct Group {
    watch: Watch,
    /// MessageNew and MessageExpunge (always together, §5).
    messages: bool,
    flags: bool,
    names: bool,
    subscriptions: bool,
    /// MailboxMetadataChange (§5.6).
    metadata: bool,
}

/// Message events for the selected mailbox.
#[derive(Debug, Clone)]
struct SelectedEvents {
    delayed: bool,
    /// `MessageNew (fetch-att ...)`: the FETCH items for new messages.
    fetch: Option<Vec<Item>>,
}

/// A session's NOTIFY state.
#[derive(Debug)]
pub struct Notify {
    /// `None`: `SELECTED NONE` (or no selected filter).
    selected: Option<SelectedEvents>,
    groups: Vec<Group>,
    /// What the client was last told of each mailbox (by id), and of subscriptions.
    known: BTreeMap<MailboxId, MailboxInfo>,
    subs: BTreeSet<String>,
    /// The feed reported a change the copy above has not seen yet.
    pending: bool,
    /// ServerMetadataChange was asked for (§5.7).
    server_metadata: bool,
    /// Annotations changed since the client last heard: (mailbox id, 0 for the server;
    /// entry names).
    metadata: Vec<(MailboxId, Vec<String>)>,
}

impl Notify {
    /// A change from the feed: worth a look unless it is only the selected mailbox's
    /// messages (those go through the view).
    pub fn note(&mut self, change: &Change, selected: Option<MailboxId>) {
        match &change.kind {
            // At most 1,024 changes wait; beyond that they are dropped (a client that
            // far behind re-reads anyway).
            ChangeKind::Metadata { entries } if self.metadata.len() < 1024 => {
                self.metadata.push((change.mailbox, entries.clone()));
            }
            ChangeKind::Metadata { .. } => {}
            ChangeKind::Mailbox => self.pending = true,
            _ if Some(change.mailbox) != selected => self.pending = true,
            _ => {}
        }
    }

    fn wants_subscriptions(&self) -> bool {
        self.groups
            .iter()
            .any(|g| g.subscriptions || matches!(g.watch, Watch::Subscribed))
    }

    /// The groups watching `name` (canonical).
    fn groups_for<'a>(
        &'a self,
        name: &'a str,
        subs: &'a BTreeSet<String>,
    ) -> impl Iterator<Item = &'a Group> + 'a {
        self.groups.iter().filter(move |g| match &g.watch {
            Watch::All => true,
            Watch::Subscribed => subs.contains(name),
            Watch::Mailboxes(names) => names.iter().any(|n| n == name),
            Watch::Subtree(names) => names.iter().any(|n| {
                name == n
                    || name
                        .strip_prefix(n.as_str())
                        .is_some_and(|rest| rest.starts_with(super::mailbox::DELIM))
            }),
        })
    }
}

/// What one event group asks for, checked (RFC 5465 §5, §6.1).
fn check_events(events: &[Event], selected: bool) -> Result<(), ImapError> {
    let has = |f: fn(&Event) -> bool| events.iter().any(f);
    let new = has(|e| matches!(e, Event::MessageNew(_)));
    let expunge = has(|e| matches!(e, Event::MessageExpunge));
    // §5: MessageNew and MessageExpunge go together; FlagChange and AnnotationChange
    // need both.
    if new != expunge {
        return Err(ImapError::Bad(
            "MessageNew and MessageExpunge must be given together".into(),
        ));
    }
    if !new && has(|e| matches!(e, Event::FlagChange | Event::AnnotationChange)) {
        return Err(ImapError::Bad(
            "FlagChange needs MessageNew and MessageExpunge".into(),
        ));
    }
    // §6.1: only message events with SELECTED / SELECTED-DELAYED.
    if selected && events.iter().any(|e| !e.is_message_event()) {
        return Err(ImapError::Bad(
            "Only message events are allowed for the selected mailbox".into(),
        ));
    }
    Ok(())
}

fn unsupported(events: &[Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::AnnotationChange | Event::Other(_)))
}

impl Session {
    /// NOTIFY (RFC 5465 §3.1). `SET` replaces what was asked before; a successful SET is
    /// an implicit NOOP (the completion sends what is pending for the selected mailbox).
    pub(in super::super) async fn notify(
        &mut self,
        cmd: NotifyCommand,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let (status, groups) = match cmd {
            NotifyCommand::None => {
                self.notifier = None;
                return Ok(Outcome::ok("NOTIFY completed"));
            }
            NotifyCommand::Set { status, groups } => (status, groups),
        };
        let mut selected = None;
        let mut saw_selected = false;
        let mut watch_groups = Vec::new();
        let mut refused = false;
        let mut server_metadata = false;
        for g in &groups {
            let is_selected = matches!(g.filter, Filter::Selected | Filter::SelectedDelayed);
            check_events(&g.events, is_selected)?;
            if is_selected {
                if saw_selected {
                    return Err(ImapError::Bad(
                        "Only one of SELECTED and SELECTED-DELAYED may be given".into(),
                    ));
                }
                saw_selected = true;
            }
            refused |= unsupported(&g.events);
            server_metadata |= g.events.contains(&Event::ServerMetadataChange);
        }
        if refused {
            return Err(ImapError::no(
                Code::BadEvent(SUPPORTED.into()),
                "Event not supported",
            ));
        }
        for g in groups {
            let fetch = g.events.iter().find_map(|e| match e {
                Event::MessageNew(f) => Some(f.clone()),
                _ => None,
            });
            let has = |want: &Event| g.events.iter().any(|e| e == want);
            let watch = match g.filter {
                Filter::Selected | Filter::SelectedDelayed => {
                    if let Some(fetch) = fetch {
                        selected = Some(SelectedEvents {
                            delayed: g.filter == Filter::SelectedDelayed,
                            fetch,
                        });
                    }
                    continue;
                }
                Filter::Inboxes | Filter::Personal => Watch::All,
                Filter::Subscribed => Watch::Subscribed,
                Filter::Subtree(names) => Watch::Subtree(self.notify_names(&names)?),
                Filter::Mailboxes(names) => Watch::Mailboxes(self.notify_names(&names)?),
            };
            watch_groups.push(Group {
                watch,
                messages: fetch.is_some(),
                flags: has(&Event::FlagChange),
                names: has(&Event::MailboxName),
                subscriptions: has(&Event::SubscriptionChange),
                metadata: has(&Event::MailboxMetadataChange),
            });
        }
        let mut notify = Notify {
            selected,
            groups: watch_groups,
            known: BTreeMap::new(),
            subs: BTreeSet::new(),
            pending: false,
            server_metadata,
            metadata: Vec::new(),
        };
        let (known, subs) = self.notify_read(&notify).await?;
        if status {
            let selected_id = self.view().map(|v| v.mailbox);
            for info in known.values() {
                if Some(info.id) == selected_id {
                    continue;
                }
                let flags = notify
                    .groups_for(&info.name, &subs)
                    .filter(|g| g.messages)
                    .fold(None, |acc, g| Some(acc.unwrap_or(false) | g.flags));
                if let Some(flags) = flags {
                    self.notify_status(info, flags, out).await?;
                }
            }
        }
        notify.known = known;
        notify.subs = subs;
        self.notifier = Some(Box::new(notify));
        Ok(Outcome::ok("NOTIFY completed"))
    }

    /// Mailbox names of a filter, decoded and canonical. A name that cannot name a
    /// mailbox is kept as given: it matches nothing (§6.6: names are not patterns).
    fn notify_names(&self, raw: &[Vec<u8>]) -> Result<Vec<String>, ImapError> {
        let mut out = Vec::new();
        for r in raw {
            let name = self.mailbox_name(r)?;
            out.push(canonical_mailbox(&name).unwrap_or(name));
        }
        Ok(out)
    }

    /// The user's mailboxes by id and, when some group needs them, the subscriptions.
    async fn notify_read(
        &self,
        notify: &Notify,
    ) -> Result<(BTreeMap<MailboxId, MailboxInfo>, BTreeSet<String>), ImapError> {
        let (user, _) = self.user()?;
        let store = &self.store();
        let known = store
            .mailboxes(user)
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        let subs = if notify.wants_subscriptions() {
            store.subscriptions(user).await?.into_iter().collect()
        } else {
            BTreeSet::new()
        };
        Ok((known, subs))
    }

    /// `* STATUS name (MESSAGES n UIDNEXT n UIDVALIDITY n [HIGHESTMODSEQ n])`.
    async fn notify_status(
        &self,
        info: &MailboxInfo,
        flags: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), ImapError> {
        use super::super::grammar::StatusItem as S;
        let mut items = vec![S::Messages, S::UidNext, S::UidValidity];
        if flags {
            items.push(S::HighestModSeq);
        }
        self.write_status(info, &items, out).await
    }

    /// Whether NOTIFY asked for anything: the driver then listens to the change feed
    /// between commands too.
    pub fn notify_active(&self) -> bool {
        self.notifier.is_some()
    }

    /// Between commands, after the feed woke the driver: the selected mailbox's events
    /// (if asked for), then the other mailboxes'.
    pub async fn notify_between(&mut self, out: &mut Vec<u8>) {
        let Some(selected) = self.notifier.as_ref().and_then(|n| n.selected.clone()) else {
            self.notify_others(out).await;
            return;
        };
        let before = self.view().map(|v| (v.mailbox, v.last_uid()));
        self.updates(!selected.delayed, out).await;
        if let (Some(items), Some((mailbox, last))) = (selected.fetch, before) {
            self.notify_fetch_new(mailbox, last, items, out).await;
        }
        self.notify_others(out).await;
    }

    /// IDLE's update step (RFC 2177): everything for the selected mailbox, or with
    /// NOTIFY on exactly what it asked for (RFC 5465 §4).
    pub async fn idle_updates(&mut self, out: &mut Vec<u8>) {
        if self.notifier.is_some() {
            self.notify_between(out).await;
        } else {
            self.updates(true, out).await;
        }
    }

    /// RFC 5465 §5.2: a FETCH with the MessageNew items of the messages above `last`.
    async fn notify_fetch_new(
        &mut self,
        mailbox: MailboxId,
        last: Uid,
        items: Vec<Item>,
        out: &mut Vec<u8>,
    ) {
        let Some(view) = self.view().filter(|v| v.mailbox == mailbox) else {
            return;
        };
        if view.last_uid() <= last {
            return;
        }
        let Ok(set) = SequenceSet::parse(format!("{}:*", last.0.saturating_add(1)).as_bytes())
        else {
            return;
        };
        let args = FetchArgs {
            items,
            ..FetchArgs::default()
        };
        let mut job = match self.fetch(true, set, args, out).await {
            Ok(job) => job,
            Err(e) => {
                log::info!("imap: NOTIFY MessageNew fetch: {e:?}");
                return;
            }
        };
        while self.fetch_step(&mut job, out).await.is_none() {}
    }

    /// The other mailboxes: STATUS, LIST for what changed since the client last heard.
    pub async fn notify_others(&mut self, out: &mut Vec<u8>) {
        let Some(mut notify) = self.notifier.take() else {
            return;
        };
        self.notify_metadata(&mut notify, out);
        if notify.pending {
            notify.pending = false;
            match self.notify_read(&notify).await {
                Ok((known, subs)) => {
                    if let Err(e) = self.notify_diff(&notify, &known, &subs, out).await {
                        log::info!("imap: NOTIFY: {e:?}");
                    }
                    notify.known = known;
                    notify.subs = subs;
                }
                Err(e) => log::info!("imap: NOTIFY: {e:?}"),
            }
        }
        self.notifier = Some(notify);
    }

    /// After a command of this session that may have changed mailboxes: take the new
    /// state as known without telling the client what it did itself (§5).
    pub(in super::super) async fn notify_absorb(&mut self) {
        let Some(mut notify) = self.notifier.take() else {
            return;
        };
        if let Ok((known, subs)) = self.notify_read(&notify).await {
            notify.known = known;
            notify.subs = subs;
            notify.pending = false;
        }
        notify.metadata.clear();
        self.notifier = Some(notify);
    }

    /// RFC 5464 §4.4.2, RFC 5465 §5.6, §5.7: `* METADATA name entry ...` (names only)
    /// for the annotations another session changed.
    fn notify_metadata(&self, notify: &mut Notify, out: &mut Vec<u8>) {
        let utf8 = self.utf8();
        for (mailbox, entries) in std::mem::take(&mut notify.metadata) {
            let name = if mailbox == MailboxId(0) {
                if !notify.server_metadata {
                    continue;
                }
                ""
            } else {
                let Some(info) = notify.known.get(&mailbox) else {
                    continue;
                };
                if !notify
                    .groups_for(&info.name, &notify.subs)
                    .any(|g| g.metadata)
                {
                    continue;
                }
                info.name.as_str()
            };
            out.extend_from_slice(b"* METADATA ");
            response::mailbox(out, name, utf8);
            for entry in &entries {
                out.push(b' ');
                response::string(out, entry.as_bytes(), utf8);
            }
            out.extend_from_slice(b"\r\n");
        }
    }

    async fn notify_diff(
        &self,
        notify: &Notify,
        known: &BTreeMap<MailboxId, MailboxInfo>,
        subs: &BTreeSet<String>,
        out: &mut Vec<u8>,
    ) -> Result<(), ImapError> {
        let utf8 = self.utf8();
        let selected_id = self.view().map(|v| v.mailbox);
        // §5.4 MailboxName: new, renamed, deleted (watched under the old or new name).
        // A listed name carries `\Subscribed` when it is (a CREATE that subscribes),
        // and is not listed again for its subscription (§5.5).
        let mut listed: BTreeSet<&str> = BTreeSet::new();
        let watched_names = |name: &str| {
            notify.groups_for(name, subs).any(|g| g.names)
                || notify.groups_for(name, &notify.subs).any(|g| g.names)
        };
        let attrs = |name: &str| -> &[&str] {
            if subs.contains(name) || known.values().any(|m| m.name == name && m.subscribed) {
                &["\\Subscribed"]
            } else {
                &[]
            }
        };
        for (id, info) in known {
            let old = notify.known.get(id).filter(|old| old.name != info.name);
            let is_new = !notify.known.contains_key(id);
            if !(is_new || old.is_some()) {
                continue;
            }
            let old_name = old.map(|o| o.name.as_str());
            if !watched_names(&info.name) && !old_name.is_some_and(watched_names) {
                continue;
            }
            response::list(out, attrs(&info.name), &info.name, utf8);
            if let Some(old_name) = old_name {
                out.extend_from_slice(b" (\"OLDNAME\" (");
                response::mailbox(out, old_name, utf8);
                out.extend_from_slice(b"))");
                listed.insert(old_name);
            }
            out.extend_from_slice(b"\r\n");
            listed.insert(&info.name);
        }
        for (id, old) in &notify.known {
            if !known.contains_key(id) && watched_names(&old.name) {
                response::list(out, &["\\NonExistent"], &old.name, utf8);
                out.extend_from_slice(b"\r\n");
                listed.insert(&old.name);
            }
        }
        // §5.5 SubscriptionChange.
        for name in subs.symmetric_difference(&notify.subs) {
            let watched = notify.groups_for(name, subs).any(|g| g.subscriptions)
                || notify
                    .groups_for(name, &notify.subs)
                    .any(|g| g.subscriptions);
            if !watched || listed.contains(name.as_str()) {
                continue;
            }
            let attrs: &[&str] = if subs.contains(name) {
                &["\\Subscribed"]
            } else {
                &[]
            };
            response::list(out, attrs, name, utf8);
            out.extend_from_slice(b"\r\n");
        }
        // §5.1-§5.3: STATUS of watched mailboxes whose messages or flags changed.
        for (id, info) in known {
            if Some(*id) == selected_id {
                continue;
            }
            let Some(flags) = notify
                .groups_for(&info.name, subs)
                .filter(|g| g.messages)
                .fold(None, |acc, g| Some(acc.unwrap_or(false) | g.flags))
            else {
                continue;
            };
            let changed = match notify.known.get(id) {
                // A new mailbox is announced by LIST (MailboxName); its STATUS only
                // when it already holds messages.
                None => info.messages > 0,
                Some(old) => {
                    old.messages != info.messages
                        || old.uidnext != info.uidnext
                        || old.uidvalidity != info.uidvalidity
                        || (flags && old.highest_modseq != info.highest_modseq)
                }
            };
            if changed {
                self.notify_status(info, flags, out).await?;
            }
        }
        Ok(())
    }
}

/// Whether a command may change other mailboxes than the selected one (their list,
/// messages or subscriptions): after it the session's NOTIFY copy is refreshed silently ([`Session::notify_absorb`]).
pub fn changes_mailboxes(body: &super::super::grammar::CommandBody) -> bool {
    use super::super::grammar::{CommandBody as C, MessageCommand as M};
    matches!(
        body,
        C::Create(_)
            | C::Delete(_)
            | C::Rename { .. }
            | C::Subscribe(_)
            | C::Unsubscribe(_)
            | C::Append { .. }
            | C::Message {
                command: M::Copy(..) | M::Move(..),
                ..
            }
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> R<NotifyCommand> {
        crate::imap::grammar::parse_whole(s.as_bytes(), parse)
    }

    #[test]
    fn notify_grammar() {
        assert_eq!(parse_str(" NONE").unwrap(), NotifyCommand::None);
        let NotifyCommand::Set { status, groups } = parse_str(
            " SET STATUS (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (From)]) \
             MessageExpunge FlagChange)) (subtree (INBOX \"Lists\") (MessageNew \
             MessageExpunge)) (mailboxes Work NONE) (personal (MailboxName SubscriptionChange))",
        )
        .unwrap() else {
            panic!("not SET");
        };
        assert!(status);
        assert_eq!(groups.len(), 4);
        assert_eq!(
            groups[0].events[0],
            Event::MessageNew(Some(vec![
                Item::Uid,
                Item::Section {
                    binary: false,
                    peek: true,
                    section: crate::imap::fetch::Section {
                        part: Vec::new(),
                        text: Some(crate::imap::fetch::SectionText::HeaderFields(vec![
                            b"From".to_vec()
                        ]))
                    },
                    partial: None
                }
            ]))
        );
        assert_eq!(
            groups[1].filter,
            Filter::Subtree(vec![b"INBOX".to_vec(), b"Lists".to_vec()])
        );
        assert_eq!(groups[2].events, Vec::new());
        assert_eq!(
            groups[3].events,
            vec![Event::MailboxName, Event::SubscriptionChange]
        );
        let refused: &[&str] = &[
            "",
            " SET",
            " SET ()",
            " SET (selected)",
            " SET (elsewhere (MessageNew))",
            " SET (subtree (MessageNew))",
            " SET (selected (MessageNew (UID)",
            " NONE extra",
        ];
        crate::testing::assert_refused(parse_str, refused);
    }

    #[test]
    fn event_rules() {
        let new = Event::MessageNew(None);
        assert!(check_events(&[new.clone(), Event::MessageExpunge], true).is_ok());
        assert!(check_events(std::slice::from_ref(&new), false).is_err());
        assert!(check_events(&[Event::FlagChange], false).is_err());
        assert!(check_events(&[Event::MailboxName], true).is_err());
        assert!(check_events(&[Event::MailboxName], false).is_ok());
        assert!(unsupported(&[Event::Other("foo".into())]));
        assert!(!unsupported(&[
            new,
            Event::MessageExpunge,
            Event::FlagChange
        ]));
    }
}
