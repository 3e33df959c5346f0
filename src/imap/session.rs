//! The IMAP session: states that own their data, command dispatch with state gating,
//! capabilities, and the moments untagged updates are sent.
//!
//! States (RFC 9051 §3): `NotAuthenticated` -(LOGIN/AUTHENTICATE)-> `Authenticated`
//! -(SELECT/EXAMINE)-> `Selected` -(CLOSE/UNSELECT/failed SELECT)-> `Authenticated`;
//! UNAUTHENTICATE from either -> `NotAuthenticated` (RFC 8437 §5); LOGOUT from any ->
//! `Logout`. A command in the wrong state gets `BAD` and changes
//! nothing (RFC 9051 §6; PROTOCOL.md 1.1 item 14).
//!
//! Concurrency (docs/design.md): the session holds no store transaction across an await;
//! the change feed only says "look again", and [`Session::updates`] re-reads the mailbox.

use crate::contracts::{MailboxId, ModSeq, Uid, UserId};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use smol::channel::Receiver;

use super::grammar::{Command, CommandBody, MessageCommand};
use super::response::{Code, ImapError, Kind, Status};
use super::view::{SyncOptions, View};
use crate::net::Context;
use crate::net::stream::Peer;
use crate::store::{Change, ChangeKind, MessageInfo, Origin};

/// State shared by all IMAP sessions of one server: who holds `\Recent`.
pub struct Shared {
    /// Unix seconds when the server started: messages saved before it are not recent (nor
    /// those saved in the start second itself: save dates have 1 s resolution).
    started: i64,
    /// Mailbox id -> highest UID whose `\Recent` was claimed.
    marks: Mutex<HashMap<MailboxId, Uid>>,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            started: crate::store::now(),
            marks: Mutex::new(HashMap::new()),
        }
    }

    fn initial_mark(&self, msgs: &[MessageInfo]) -> Uid {
        msgs.iter()
            .filter(|m| m.save_date <= self.started)
            .map(|m| m.uid)
            .max()
            .unwrap_or(Uid(0))
    }

    /// Claims `\Recent` for every message above the mailbox's mark: exactly one session
    /// learns a message as recent (RFC 3501 §2.3.2). `msgs` in UID order.
    pub fn claim(&self, mailbox: MailboxId, msgs: &[MessageInfo]) -> Vec<Uid> {
        let Ok(mut marks) = self.marks.lock() else {
            return Vec::new();
        };
        let init = self.initial_mark(msgs);
        let mark = marks.entry(mailbox).or_insert(init);
        let claimed: Vec<Uid> = msgs
            .iter()
            .filter(|m| m.uid > *mark)
            .map(|m| m.uid)
            .collect();
        if let Some(last) = claimed.last() {
            *mark = *last;
        }
        claimed
    }

    /// The messages nobody has claimed as recent yet, in UID order, without claiming
    /// them (EXAMINE, RFC 3501 §6.3.2; STATUS RECENT, §6.3.10).
    pub fn unclaimed(&self, mailbox: MailboxId, msgs: &[MessageInfo]) -> Vec<Uid> {
        let mark = self
            .marks
            .lock()
            .ok()
            .and_then(|m| m.get(&mailbox).copied())
            .unwrap_or_else(|| self.initial_mark(msgs));
        msgs.iter()
            .filter(|m| m.uid > mark)
            .map(|m| m.uid)
            .collect()
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

/// A logged-in user and their change-feed subscription.
pub struct Account {
    pub id: UserId,
    pub name: String,
    pub feed: Receiver<Change>,
    /// This session's subscription: changes it makes and announces itself name it, so
    /// the feed does not wake it for them.
    pub origin: Origin,
    /// Counts this session against `connections.max_per_user`; released with the state.
    pub slot: crate::net::limits::UserSlot,
}

/// RFC 9051 §3 connection states; each owns what it needs.
pub enum State {
    NotAuthenticated,
    Authenticated(Account),
    Selected(Account, View),
    Logout,
}

impl State {
    /// The account and the view of the Selected state; `BAD` in any other.
    pub(crate) fn selected(&self) -> Result<(&Account, &View), ImapError> {
        match self {
            State::Selected(account, view) => Ok((account, view)),
            _ => Err(not_selected()),
        }
    }

    /// [`State::selected`], to change.
    pub(crate) fn selected_mut(&mut self) -> Result<(&mut Account, &mut View), ImapError> {
        match self {
            State::Selected(account, view) => Ok((account, view)),
            _ => Err(not_selected()),
        }
    }
}

/// The reply to a command that needs a selected mailbox, outside the Selected state.
fn not_selected() -> ImapError {
    ImapError::Bad("Select a mailbox first".into())
}

/// What ENABLE turned on (RFC 5161).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enabled {
    pub rev2: bool,
    pub utf8: bool,
    pub condstore: bool,
    /// RFC 7162 §3.2.3: enabling QRESYNC enables CONDSTORE too.
    pub qresync: bool,
}

/// SASL exchange in progress (RFC 9051 §6.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sasl {
    Plain,
    LoginUser,
    LoginPassword(String),
}

/// What the driver does after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Read the next command.
    Continue,
    /// Flush and close (after LOGOUT or a `* BYE`).
    Close,
    /// Send `+ idling` and run IDLE for this tag (RFC 2177).
    Idle(String),
    /// Send `+ <challenge>` and pass the client's next line to [`Session::sasl_line`].
    Sasl(String),
    /// The tagged OK is queued: flush it, discard buffered input, run the TLS handshake
    /// (RFC 9051 §6.2.1; RFC 2595 §3.1).
    StartTls,
    /// A FETCH is under way: call [`Session::fetch_pump`] until it returns the next
    /// action, sending what is queued whenever it grows large.
    Fetch,
    /// The tagged OK of COMPRESS is queued: send it as it is, then compress both
    /// directions (RFC 4978 §3).
    Compress,
    /// The tagged OK of UNAUTHENTICATE is queued: send it still compressed, then take
    /// the compression layer off (RFC 8437 §4.1).
    Uncompress,
}

/// The FETCH the driver is pumping.
struct Fetching {
    tag: String,
    allow_expunge: bool,
    job: super::cmd::fetch::FetchJob,
}

/// Whether a message command is among those during which EXPUNGE must not be sent
/// (RFC 9051 §7.5.1: FETCH, STORE, SEARCH, and SORT and THREAD that answer with
/// sequence numbers too, RFC 5256 §3; their UID forms may).
fn expunge_allowed(body: &CommandBody) -> bool {
    !matches!(
        body,
        CommandBody::Message {
            command: MessageCommand::Fetch(..)
                | MessageCommand::Store(..)
                | MessageCommand::Search(_)
                | MessageCommand::Sort(_)
                | MessageCommand::Thread(_),
            uid: false,
        }
    )
}

pub struct Session {
    pub(super) ctx: Context,
    pub(super) shared: Arc<Shared>,
    pub(super) peer: Peer,
    pub(super) enabled: Enabled,
    pub(super) state: State,
    pub(super) auth_failures: u32,
    /// The tag of the AUTHENTICATE in progress and its step.
    pub(super) sasl: Option<(String, Sasl)>,
    /// A change for the selected mailbox arrived since the last sync.
    pub(super) dirty: bool,
    /// The selected mailbox itself changed (deleted or renamed): check it still exists.
    pub(super) recheck: bool,
    /// The FETCH in progress ([`Action::Fetch`]).
    fetching: Option<Fetching>,
    /// What SORT and THREAD read from headers in the selected mailbox.
    pub(super) headers: super::cmd::HeaderCache,
    /// COMPRESS=DEFLATE is on (RFC 4978).
    pub(super) compressed: bool,
    /// What NOTIFY asked for (RFC 5465); `None` before it and after `NOTIFY NONE`.
    pub(super) notifier: Option<Box<super::cmd::notify::Notify>>,
}

/// Failed logins before `* BYE` (RFC 9051 §11; PROTOCOL.md item 28).
pub const MAX_AUTH_FAILURES: u32 = 3;

impl Session {
    pub fn new(ctx: Context, shared: Arc<Shared>, peer: Peer) -> Session {
        Session {
            ctx,
            shared,
            peer,
            enabled: Enabled::default(),
            state: State::NotAuthenticated,
            auth_failures: 0,
            sasl: None,
            dirty: false,
            recheck: false,
            fetching: None,
            headers: super::cmd::HeaderCache::default(),
            compressed: false,
            notifier: None,
        }
    }

    /// The greeting (RFC 9051 §7.1.1).
    pub fn greeting(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            format!(
                "* OK [CAPABILITY {}] nestbox ready\r\n",
                self.capabilities()
            )
            .as_bytes(),
        );
    }

    pub fn logged_in(&self) -> bool {
        matches!(self.state, State::Authenticated(_) | State::Selected(..))
    }

    /// The change feed, while logged in (the driver waits on it during IDLE).
    pub fn feed(&self) -> Option<Receiver<Change>> {
        match &self.state {
            State::Authenticated(a) | State::Selected(a, _) => Some(a.feed.clone()),
            _ => None,
        }
    }

    /// True when modified UTF-7 is off: names travel as UTF-8 (RFC 6855 §3, 9051 §5.1).
    pub fn utf8(&self) -> bool {
        self.enabled.utf8 || self.enabled.rev2
    }

    /// Whether passwords may be sent on this connection (PROTOCOL.md item 25).
    pub fn plaintext_allowed(&self) -> bool {
        crate::auth::plaintext_allowed(self.ctx.config.auth.plaintext, self.peer)
    }

    /// After a successful STARTTLS: the connection is encrypted; the state stays Not
    /// Authenticated (RFC 9051 §6.2.1).
    pub fn tls_started(&mut self) {
        self.peer.tls = true;
    }

    /// The largest APPEND we accept (RFC 7889).
    pub fn append_limit(&self) -> u64 {
        self.ctx
            .config
            .imap
            .literal_limit(&self.ctx.config.limits)
            .min(self.ctx.config.limits.max_message_size)
    }

    /// RFC 9051 §7.2.2; they differ before and after login (PROTOCOL.md item 22).
    pub fn capabilities(&self) -> String {
        let mut c: Vec<String> = [
            "IMAP4rev1",
            "IMAP4rev2",
            "LITERAL+",
            "SASL-IR",
            "ID",
            "ENABLE",
            "IDLE",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if matches!(self.state, State::NotAuthenticated) {
            // RFC 9051 §6.2.1: not advertised once TLS is on.
            if !self.peer.tls && self.peer.ip.is_some() {
                c.push("STARTTLS".into());
            }
            if self.plaintext_allowed() {
                c.push("AUTH=PLAIN".into());
                c.push("AUTH=LOGIN".into());
            } else {
                c.push("LOGINDISABLED".into());
            }
        } else {
            for s in [
                "NAMESPACE",
                "UNSELECT",
                "CHILDREN",
                "LIST-EXTENDED",
                "LIST-STATUS",
                "SPECIAL-USE",
                "STATUS=SIZE",
                "MULTIAPPEND",
                // RFC 4469 (imap::cmd::catenate).
                "CATENATE",
                "UTF8=ACCEPT",
                "UIDPLUS",
                "MOVE",
                "QUOTA",
                "QUOTA=RES-STORAGE",
                "QUOTA=RES-MESSAGE",
                // Read side: FETCH, STORE, SEARCH (cmd::fetch, cmd::store, cmd::search).
                "CONDSTORE",
                // RFC 7162 §3.2: SELECT (QRESYNC ...), UID FETCH (VANISHED), VANISHED
                // for expunges (cmd::mailbox, cmd::fetch, view).
                "QRESYNC",
                "ESEARCH",
                "SEARCHRES",
                "WITHIN",
                "BINARY",
                "PREVIEW",
                "SAVEDATE",
                // imap::cmd: SORT, ESORT (RFC 5256, 5267), DISPLAYFROM/TO (RFC 5957),
                // THREAD (RFC 5256).
                "SORT",
                "SORT=DISPLAY",
                "ESORT",
                // RFC 5267 §4: SEARCH/SORT RETURN (UPDATE), CANCELUPDATE
                // (imap::cmd::context).
                "CONTEXT=SEARCH",
                "CONTEXT=SORT",
                // RFC 9394: SEARCH/SORT RETURN (PARTIAL), UID FETCH (PARTIAL) (imap::cmd).
                "PARTIAL",
                "THREAD=ORDEREDSUBJECT",
                "THREAD=REFERENCES",
                // imap::cmd::notify (RFC 5465).
                "NOTIFY",
                // imap::cmd::metadata: mailbox and server annotations (RFC 5464), also
                // returned by LIST (RFC 9590).
                "METADATA",
                "METADATA-SERVER",
                "LIST-METADATA",
            ] {
                c.push(s.into());
            }
            c.push(format!("APPENDLIMIT={}", self.append_limit()));
            // Not offered once on: a second COMPRESS is refused (RFC 4978 §3).
            if self.ctx.config.imap.compress && !self.compressed {
                c.push("COMPRESS=DEFLATE".into());
            }
            // RFC 8437 §3 allows offering it only after login.
            if self.ctx.config.imap.unauthenticate {
                c.push("UNAUTHENTICATE".into());
            }
        }
        c.join(" ")
    }

    pub(super) fn sync_options(&self) -> SyncOptions {
        SyncOptions {
            condstore: self.enabled.condstore,
            rev1: !self.enabled.rev2,
            qresync: self.enabled.qresync,
        }
    }

    /// Handles one command: untagged responses and the completion go to `out`.
    pub async fn handle(&mut self, cmd: Command, out: &mut Vec<u8>) -> Action {
        let Command { tag, body } = cmd;
        let name = body.name();
        let _timer =
            crate::metrics::command(crate::metrics::CommandProtocol::Imap, name.as_bytes());
        if let Err(e) = self.check_state(&body) {
            e.status(name).encode(Some(&tag), out);
            return Action::Continue;
        }
        let allow_expunge = expunge_allowed(&body);
        // RFC 5465: what other sessions changed is sent first; what this command
        // changes itself is not reported back (§5).
        let absorb = self.notifier.is_some() && super::cmd::notify::changes_mailboxes(&body);
        if absorb {
            self.notify_others(out).await;
        }
        let result = self.dispatch(&tag, body, out).await;
        if absorb {
            self.notify_absorb().await;
        }
        self.complete(&tag, name, allow_expunge, result, out).await
    }

    /// Answers the next message of the FETCH under way ([`Action::Fetch`]); `None`
    /// while messages are left, then the action after the tagged completion.
    pub async fn fetch_pump(&mut self, out: &mut Vec<u8>) -> Option<Action> {
        let Some(mut f) = self.fetching.take() else {
            return Some(Action::Continue);
        };
        match self.fetch_step(&mut f.job, out).await {
            None => {
                self.fetching = Some(f);
                None
            }
            Some(result) => Some(
                self.complete(&f.tag, "FETCH", f.allow_expunge, result, out)
                    .await,
            ),
        }
    }

    /// The end of a command: pending updates, then the tagged completion.
    async fn complete(
        &mut self,
        tag: &str,
        name: &str,
        allow_expunge: bool,
        result: Result<Outcome, ImapError>,
        out: &mut Vec<u8>,
    ) -> Action {
        let mut status = match result {
            Ok(Outcome::Done(status)) => status,
            Ok(Outcome::Action(a)) => return a,
            Err(e) => e.status(name),
        };
        self.sync_view(allow_expunge, out).await;
        if self.closing() {
            // The selected mailbox was deleted under us: `* BYE` is written.
            return Action::Close;
        }
        match self.modseq_news() {
            // RFC 7162 §3.2.10: after an EXPUNGE that removed messages, the new
            // HIGHESTMODSEQ goes in its tagged OK.
            Some(n) if name == "EXPUNGE" && status.kind == Kind::Ok && status.code.is_none() => {
                status = status.with(Code::HighestModSeq(n));
            }
            Some(n) => report_modseq(n, out),
            None => {}
        }
        status.encode(Some(tag), out);
        Action::Continue
    }

    /// State gating (RFC 9051 §6, PROTOCOL.md 1.2).
    fn check_state(&self, body: &CommandBody) -> Result<(), ImapError> {
        use CommandBody as C;
        let bad = |t: &str| Err(ImapError::Bad(t.into()));
        match (&self.state, body) {
            (_, C::Capability | C::Noop | C::Logout | C::Id(_)) => Ok(()),
            (State::NotAuthenticated, C::StartTls | C::Login { .. } | C::Authenticate { .. }) => {
                Ok(())
            }
            (State::NotAuthenticated, _) => bad("Log in first"),
            (_, C::StartTls | C::Login { .. } | C::Authenticate { .. }) => bad("Already logged in"),
            (State::Selected(..), C::Enable(_)) => {
                bad("ENABLE is valid only before selecting a mailbox (RFC 5161)")
            }
            (
                State::Authenticated(_),
                C::Check | C::Close | C::Unselect | C::Message { .. } | C::CancelUpdate(_),
            ) => Err(not_selected()),
            (State::Logout, _) => bad("Logging out"),
            _ => Ok(()),
        }
    }

    async fn dispatch(
        &mut self,
        tag: &str,
        body: CommandBody,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        use CommandBody as C;
        match body {
            C::Capability => {
                out.extend_from_slice(
                    format!("* CAPABILITY {}\r\n", self.capabilities()).as_bytes(),
                );
                Ok(Outcome::ok("CAPABILITY completed"))
            }
            C::Noop => Ok(Outcome::ok("NOOP completed")),
            C::Check => Ok(Outcome::ok("CHECK completed")),
            C::Logout => {
                out.extend_from_slice(b"* BYE Logging out\r\n");
                Status::ok("LOGOUT completed").encode(Some(tag), out);
                self.state = State::Logout;
                Ok(Outcome::Action(Action::Close))
            }
            C::Id(_) => {
                // RFC 2971 §3: never change behaviour on what the client sends.
                out.extend_from_slice(
                    format!(
                        "* ID (\"name\" \"nestbox\" \"version\" \"{}\")\r\n",
                        env!("CARGO_PKG_VERSION")
                    )
                    .as_bytes(),
                );
                Ok(Outcome::ok("ID completed"))
            }
            C::StartTls => {
                if self.peer.tls {
                    return Err(ImapError::Bad("TLS is already active".into()));
                }
                if self.peer.ip.is_none() {
                    return Err(ImapError::no(Code::Cannot, "No TLS on a local socket"));
                }
                Status::ok("Begin TLS negotiation now").encode(Some(tag), out);
                Ok(Outcome::Action(Action::StartTls))
            }
            C::Enable(caps) => Ok(self.enable(caps, out)),
            C::Login { user, password } => self.login(tag, user, password, out).await,
            C::Authenticate { mechanism, initial } => {
                self.authenticate(tag, &mechanism, initial, out).await
            }
            C::Namespace => {
                out.extend_from_slice(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
                Ok(Outcome::ok("NAMESPACE completed"))
            }
            C::List(l) => self.list(l, out).await,
            C::Lsub { reference, pattern } => self.lsub(&reference, &pattern, out).await,
            C::Create(name) => self.create(&name).await,
            C::Status { mailbox, items } => self.status(&mailbox, &items, out).await,
            C::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => {
                // RFC 7162 §3.2.5: BAD unless this connection sent ENABLE QRESYNC.
                if qresync.is_some() && !self.enabled.qresync {
                    return Err(ImapError::Bad("ENABLE QRESYNC first".into()));
                }
                self.select(&mailbox, read_only, condstore, qresync, out)
                    .await
            }
            C::Close => self.close(true).await,
            C::Unselect => self.close(false).await,
            C::Append { mailbox, messages } => self.append(&mailbox, messages, out).await,
            C::Idle => Ok(Outcome::Action(Action::Idle(tag.to_string()))),
            C::Delete(name) => self.delete(&name, out).await,
            C::Rename { from, to } => self.rename(&from, &to).await,
            C::Subscribe(name) => self.subscribe(&name, true).await,
            C::Unsubscribe(name) => self.subscribe(&name, false).await,
            C::GetQuota(root) => self.get_quota(&root, out).await,
            C::GetQuotaRoot(name) => self.get_quota_root(&name, out).await,
            C::Compress(mechanism) => self.compress(tag, mechanism, out),
            C::Unauthenticate => self.unauthenticate(tag, out),
            C::Notify(cmd) => self.notify(cmd, out).await,
            C::GetMetadata(cmd) => self.get_metadata(cmd, out).await,
            C::SetMetadata(cmd) => self.set_metadata(cmd).await,
            C::CancelUpdate(tags) => self.cancel_update(&tags),
            C::Message { uid, command } => match command {
                MessageCommand::Copy(set, mailbox) => {
                    self.copy(uid, set, &mailbox, false, out).await
                }
                MessageCommand::Move(set, mailbox) => {
                    self.copy(uid, set, &mailbox, true, out).await
                }
                MessageCommand::Expunge(uid_set) => self.expunge(uid_set).await,
                MessageCommand::Fetch(set, args) => {
                    let job = self.fetch(uid, set, args, out).await?;
                    self.fetching = Some(Fetching {
                        tag: tag.to_string(),
                        allow_expunge: uid,
                        job,
                    });
                    Ok(Outcome::Action(Action::Fetch))
                }
                MessageCommand::Store(set, args) => self.store_flags(uid, set, args, out).await,
                MessageCommand::Search(args) => self.search(tag, uid, args, out).await,
                MessageCommand::Sort(args) => self.sort(tag, uid, args, out).await,
                MessageCommand::Thread(args) => self.thread(uid, args, out).await,
            },
        }
    }

    /// Sends what changed in the selected mailbox since the client last heard
    /// (RFC 9051 §5.2, §7.5.1), with its new HIGHESTMODSEQ. Called from IDLE and
    /// NOTIFY; a command's completion does the same with its own tagged response.
    pub async fn updates(&mut self, allow_expunge: bool, out: &mut Vec<u8>) {
        self.sync_view(allow_expunge, out).await;
        if !self.closing()
            && let Some(n) = self.modseq_news()
        {
            report_modseq(n, out);
        }
    }

    /// What changed in the selected mailbox, without the HIGHESTMODSEQ.
    async fn sync_view(&mut self, allow_expunge: bool, out: &mut Vec<u8>) {
        let State::Selected(account, view) = &mut self.state else {
            if let State::Authenticated(a) = &self.state {
                while let Ok(change) = a.feed.try_recv() {
                    if let Some(n) = &mut self.notifier {
                        n.note(&change, None);
                    }
                }
            }
            return;
        };
        while let Ok(change) = account.feed.try_recv() {
            if let Some(n) = &mut self.notifier {
                n.note(&change, Some(view.mailbox));
            }
            if change.mailbox == view.mailbox || matches!(change.kind, ChangeKind::Mailbox) {
                self.dirty = true;
            }
            if change.mailbox == view.mailbox && matches!(change.kind, ChangeKind::Mailbox) {
                self.recheck = true;
            }
        }
        if !self.dirty && !self.recheck {
            // Nothing new from others. Removals this session made (and marked) itself,
            // or learnt of earlier while EXPUNGE was held back, need no re-read. What
            // this session changed itself may change its search contexts: their
            // REMOVEFROM goes before the EXPUNGE that renumbers (RFC 5267 §4.3.4).
            self.context_updates(out).await;
            if allow_expunge {
                self.announce_expunged(out).await;
            }
            return;
        }
        let mailbox = view.mailbox;
        if std::mem::take(&mut self.recheck) && self.selected_gone(mailbox).await {
            // RFC 2180 §3.3 (and PROTOCOL.md item 43): another session deleted the
            // mailbox we have selected. We say `* BYE` and close rather than serve a
            // mailbox that no longer exists; see docs/rfc-status.md.
            out.extend_from_slice(b"* BYE Selected mailbox was deleted\r\n");
            self.state = State::Logout;
            return;
        }
        let (fresh, modseq) = match self.store().listing(mailbox).await {
            Ok(f) => f,
            Err(e) => {
                log::error!("imap: re-reading mailbox {mailbox}: {e}");
                return;
            }
        };
        self.dirty = false;
        let opts = self.sync_options();
        let State::Selected(_, view) = &mut self.state else {
            return;
        };
        let claimed = if opts.rev1 {
            let last = view.last_uid();
            let start = fresh.partition_point(|m| m.uid <= last);
            let new = fresh.get(start..).unwrap_or(&[]);
            if view.read_only {
                self.shared.unclaimed(mailbox, new)
            } else {
                self.shared.claim(mailbox, new)
            }
        } else {
            Vec::new()
        };
        // With search contexts, EXPUNGE waits for their updates: ADDTO after EXISTS,
        // REMOVEFROM before EXPUNGE (RFC 5267 §4.3.3, §4.3.4).
        let contexts = !view.contexts.is_empty();
        view.sync(&fresh, allow_expunge && !contexts, &claimed, opts, out);
        view.synced = modseq;
        if contexts {
            self.context_updates(out).await;
            if allow_expunge {
                self.announce_expunged(out).await;
            }
        }
    }

    /// EXPUNGE (or VANISHED) for the messages marked removed; a search context on
    /// sequence numbers is then evaluated again with the new numbers (RFC 5267 §4.3).
    async fn announce_expunged(&mut self, out: &mut Vec<u8>) {
        let qresync = self.enabled.qresync;
        let State::Selected(_, view) = &mut self.state else {
            return;
        };
        let before = view.msgs.len();
        view.announce_expunged(qresync, out);
        if view.msgs.len() != before {
            self.context_updates(out).await;
        }
    }

    /// With CONDSTORE on, the HIGHESTMODSEQ the client is to hear now ([`View::modseq_news`]):
    /// after the first CONDSTORE-enabling command (`FETCH 1 MODSEQ`, `SEARCH MODSEQ`,
    /// `STORE (UNCHANGEDSINCE)`, ...) of a selection (RFC 7162 §3.1), and whenever new
    /// messages or expunges raised it, which carry no mod-sequence of their own.
    fn modseq_news(&mut self) -> Option<ModSeq> {
        if !self.enabled.condstore {
            return None;
        }
        match &mut self.state {
            State::Selected(_, view) => view.modseq_news(),
            _ => None,
        }
    }

    /// Whether the selected mailbox `id` no longer exists (a store fault counts as
    /// "still there": it is logged, and the next command will see the fault).
    async fn selected_gone(&self, id: MailboxId) -> bool {
        match self.store().mailbox_status(id).await {
            Ok(_) => false,
            Err(crate::store::StoreError::NoSuchMailbox) => true,
            Err(e) => {
                log::error!("imap: checking mailbox {id}: {e}");
                false
            }
        }
    }

    /// The session ended itself (LOGOUT, or `* BYE` after its mailbox was deleted).
    pub fn closing(&self) -> bool {
        matches!(self.state, State::Logout)
    }

    /// The tagged end of IDLE after `DONE` (RFC 2177 §3).
    pub async fn idle_done(&mut self, tag: &str, out: &mut Vec<u8>) {
        self.updates(true, out).await;
        if !self.closing() {
            Status::ok("IDLE terminated").encode(Some(tag), out);
        }
    }

    /// Marks the selected mailbox as changed (the driver got a change-feed wake-up).
    pub fn note_change(&mut self, change: &Change) {
        let selected = self.view().map(|v| v.mailbox);
        if let Some(n) = &mut self.notifier {
            n.note(change, selected);
        }
        if let State::Selected(_, view) = &self.state
            && (change.mailbox == view.mailbox || matches!(change.kind, ChangeKind::Mailbox))
        {
            self.dirty = true;
            if change.mailbox == view.mailbox && matches!(change.kind, ChangeKind::Mailbox) {
                self.recheck = true;
            }
        }
    }

    /// The store: what the handlers read and write through (the delivery pipeline only
    /// for APPEND, and its hooks for quota).
    pub(super) fn store(&self) -> &crate::store::Store {
        self.ctx.store()
    }

    /// Session selected view, if any.
    pub fn view(&self) -> Option<&View> {
        match &self.state {
            State::Selected(_, v) => Some(v),
            _ => None,
        }
    }

    pub(super) fn account(&self) -> Option<&Account> {
        match &self.state {
            State::Authenticated(a) | State::Selected(a, _) => Some(a),
            _ => None,
        }
    }

    /// The logged-in user's id; callers have passed the state check.
    pub(super) fn user(&self) -> Result<(UserId, String), ImapError> {
        self.account()
            .map(|a| (a.id, a.name.clone()))
            .ok_or_else(|| ImapError::Bad("Log in first".into()))
    }

    /// Claims `\Recent` on select for rev1 read-write sessions; EXAMINE shows the
    /// unclaimed ones as recent without claiming them (RFC 3501 §2.3.2, §6.3.2).
    pub(super) fn claim_recent(
        &self,
        mailbox: MailboxId,
        read_only: bool,
        msgs: &[MessageInfo],
    ) -> BTreeSet<Uid> {
        if self.enabled.rev2 {
            return BTreeSet::new();
        }
        if read_only {
            return self.shared.unclaimed(mailbox, msgs).into_iter().collect();
        }
        self.shared.claim(mailbox, msgs).into_iter().collect()
    }
}

/// A command's result: a completion, or an action the driver takes (the command wrote
/// its own completion, or continues in the driver).
pub(super) enum Outcome {
    Done(Status),
    Action(Action),
}

impl Outcome {
    pub(super) fn ok(text: &str) -> Outcome {
        Outcome::Done(Status::ok(text))
    }
}

/// `NO [CODE] text` shorthand for handlers.
pub(super) fn no<T>(code: Code, text: &str) -> Result<T, ImapError> {
    Err(ImapError::no(code, text))
}

/// `* OK [HIGHESTMODSEQ n]` (RFC 7162 §3.1.2.1).
fn report_modseq(n: ModSeq, out: &mut Vec<u8>) {
    Status::ok("Highest")
        .with(Code::HighestModSeq(n))
        .encode(None, out);
}
