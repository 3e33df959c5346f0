//! FETCH and UID FETCH (RFC 9051 §6.4.5, §6.4.9; RFC 3501 §6.4.5, §6.4.8) with BINARY
//! (RFC 3516), CONDSTORE `MODSEQ` / `CHANGEDSINCE` (RFC 7162 §3.1.4) and the QRESYNC
//! `VANISHED` modifier (§3.2.6, answered by `cmd::qresync`), the PARTIAL modifier of
//! UID FETCH (RFC 9394 §3.3), SAVEDATE (RFC 8514) and PREVIEW (RFC 8970).
//!
//! Work per message is what the items ask for: FLAGS, UID and MODSEQ come from the
//! session's [`View`](super::super::view::View); INTERNALDATE, RFC822.SIZE and SAVEDATE
//! from the message's record; only section and RFC822 items load the message bytes, and
//! those that name the header alone load the header alone. The MIME structure (parsed
//! from the message when the store keeps none) only for ENVELOPE, BODY, BODYSTRUCTURE,
//! PREVIEW and sections below the top level: the top-level sections are cut at the
//! message's first blank line. Whatever the store must give is read a batch of messages
//! at a time, in one call (see [`BATCH`]).

use crate::contracts::{ModSeq, Uid};
use std::collections::VecDeque;

use super::super::fetch::{self, Options, Partial, Rfc822, Section, SectionText};
use super::super::grammar::{MAX_DEPTH, Parser, R, Syntax, is_atom_char};
use super::super::response::{Code, ImapError, Status};
use super::super::sequence::SequenceSet;
use super::super::session::{Outcome, Session};
use super::super::view::flag_list;
use super::partial::Range as PartialRange;
use crate::mime::MessageMeta;
use crate::store::{FlagMode, Loaded, SystemFlags, Want};

/// One FETCH data item (RFC 9051 §9 `fetch-att`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Flags,
    InternalDate,
    Rfc822Size,
    Envelope,
    /// `BODY` without a section: the structure without extension data.
    Body,
    BodyStructure,
    Uid,
    ModSeq,
    SaveDate,
    Preview,
    /// `RFC822`, `RFC822.HEADER`, `RFC822.TEXT`; `peek` for the non-standard
    /// `RFC822.PEEK` (Outlook, PROTOCOL Q7), answered as `RFC822`.
    Rfc822(Rfc822, bool),
    /// `BODY[...]`, `BODY.PEEK[...]`, `BINARY[...]`, `BINARY.PEEK[...]`.
    Section {
        binary: bool,
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    /// `BINARY.SIZE[part]` (RFC 3516 §4.2).
    BinarySize(Vec<u32>),
}

impl Item {
    /// Sets `\Seen` on a read-write mailbox (RFC 3501 §6.4.5; RFC 3516 §4.2).
    fn sets_seen(&self) -> bool {
        match self {
            Item::Rfc822(Rfc822::Full | Rfc822::Text, peek) => !peek,
            Item::Section { peek, .. } => !peek,
            _ => false,
        }
    }

    fn needs_listing(&self) -> bool {
        matches!(self, Item::InternalDate | Item::Rfc822Size | Item::SaveDate)
    }

    /// Whether the item needs the MIME structure: the structure items and the
    /// sections below the top level. The top-level sections and the RFC822 items need
    /// only where the header ends (`fetch::section_bytes`).
    fn needs_meta(&self) -> bool {
        match self {
            Item::Envelope | Item::Body | Item::BodyStructure | Item::Preview => true,
            Item::Section { section, .. } => !section.part.is_empty(),
            Item::BinarySize(part) => !part.is_empty(),
            _ => false,
        }
    }

    /// Whether the item reads nothing of the message but its header.
    fn header_only(&self) -> bool {
        match self {
            Item::Rfc822(Rfc822::Header, _) => true,
            Item::Section {
                binary: false,
                section,
                ..
            } => {
                section.part.is_empty()
                    && matches!(
                        section.text,
                        Some(
                            SectionText::Header
                                | SectionText::HeaderFields(_)
                                | SectionText::HeaderFieldsNot(_)
                        )
                    )
            }
            _ => false,
        }
    }

    fn needs_bytes(&self) -> bool {
        matches!(
            self,
            Item::Rfc822(..) | Item::Section { .. } | Item::BinarySize(_)
        )
    }
}

/// A parsed FETCH argument list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchArgs {
    pub items: Vec<Item>,
    /// `(CHANGEDSINCE n)` (RFC 7162 §3.1.4.1); 0 is accepted as "everything"
    /// (PROTOCOL item 102, quirk Q3).
    pub changed_since: Option<ModSeq>,
    /// The `VANISHED` modifier of UID FETCH (RFC 7162 §3.2.6).
    pub vanished: bool,
    /// The `PARTIAL range` modifier of UID FETCH (RFC 9394 §3.3).
    pub partial: Option<PartialRange>,
}

/// Consumes bytes while `f` holds.
fn take(p: &mut Parser<'_>, f: impl Fn(u8) -> bool) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = p.peek()
        && f(b)
    {
        out.push(b);
        p.eat(b);
    }
    out
}

/// `mod-sequence-value`: 1..2^63-1 (RFC 7162 §7); 0 allowed where the caller says so.
pub fn mod_sequence(p: &mut Parser<'_>) -> R<ModSeq> {
    p.number64()
        .map(ModSeq)
        .map_err(|_| Syntax::Expected("a mod-sequence value (at most 2^63-1)"))
}

/// A fetch attribute name: atom characters up to `[`.
fn att_name(p: &mut Parser<'_>) -> Vec<u8> {
    take(p, |b| is_atom_char(b) && b != b'[').to_ascii_uppercase()
}

/// `section-part = nz-number *("." nz-number)` followed by an optional text part, up to
/// and including `]` (RFC 3501 §9 `section`).
pub(in super::super) fn section(p: &mut Parser<'_>, binary: bool) -> R<Section> {
    p.expect(b'[', "[")?;
    let mut s = Section::default();
    if p.eat(b']') {
        return Ok(s);
    }
    let mut want_text = true;
    if p.peek().is_some_and(|b| b.is_ascii_digit()) {
        loop {
            let n = p.number()?;
            if n == 0 {
                return Err("part numbers start at 1".into());
            }
            if s.part.len() >= MAX_DEPTH {
                return Err(Syntax::TooDeep("section"));
            }
            s.part.push(n);
            if !p.eat(b'.') {
                want_text = false;
                break;
            }
            if !p.peek().is_some_and(|b| b.is_ascii_digit()) {
                break;
            }
        }
    }
    if want_text {
        if binary {
            return Err("BINARY takes only a part number".into());
        }
        s.text = Some(if p.keyword("HEADER.FIELDS.NOT") {
            SectionText::HeaderFieldsNot(header_list(p)?)
        } else if p.keyword("HEADER.FIELDS") {
            SectionText::HeaderFields(header_list(p)?)
        } else if p.keyword("HEADER") {
            SectionText::Header
        } else if p.keyword("TEXT") {
            SectionText::Text
        } else if !s.part.is_empty() && p.keyword("MIME") {
            SectionText::Mime
        } else {
            return Err("bad section text".into());
        });
    }
    p.expect(b']', "]")?;
    Ok(s)
}

/// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`.
fn header_list(p: &mut Parser<'_>) -> R<Vec<Vec<u8>>> {
    p.sp()?;
    p.nonempty_list_of(|p| p.astring())
}

/// `"<" number64 "." nz-number64 ">"` (RFC 9051 §9 `partial`; RFC 3501 had 32-bit
/// numbers, a superset we accept in both). An origin past the end gives "".
fn partial(p: &mut Parser<'_>) -> R<Option<Partial>> {
    if !p.eat(b'<') {
        return Ok(None);
    }
    let origin = p.number64()?;
    p.expect(b'.', ".")?;
    let count = p.number64()?;
    if count == 0 {
        return Err("partial count must be non-zero".into());
    }
    p.expect(b'>', ">")?;
    Ok(Some(Partial { origin, count }))
}

fn att(p: &mut Parser<'_>) -> R<Item> {
    let name = att_name(p);
    let sect = |p: &mut Parser<'_>, binary: bool, peek: bool| -> R<Item> {
        let section = section(p, binary)?;
        let partial = partial(p)?;
        Ok(Item::Section {
            binary,
            peek,
            section,
            partial,
        })
    };
    Ok(match name.as_slice() {
        b"FLAGS" => Item::Flags,
        b"INTERNALDATE" => Item::InternalDate,
        b"RFC822.SIZE" => Item::Rfc822Size,
        b"ENVELOPE" => Item::Envelope,
        b"BODYSTRUCTURE" => Item::BodyStructure,
        b"UID" => Item::Uid,
        b"MODSEQ" => Item::ModSeq,
        b"SAVEDATE" => Item::SaveDate,
        b"RFC822" => Item::Rfc822(Rfc822::Full, false),
        b"RFC822.PEEK" => Item::Rfc822(Rfc822::Full, true),
        b"RFC822.HEADER" => Item::Rfc822(Rfc822::Header, true),
        b"RFC822.TEXT" => Item::Rfc822(Rfc822::Text, false),
        b"PREVIEW" => {
            // RFC 8970 §3: `PREVIEW [SP "(" "LAZY" *(SP "LAZY") ")"]`; we always
            // have the preview, so LAZY changes nothing.
            let rest = p.rest();
            if rest.starts_with(b" (")
                && rest
                    .get(2..6)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"LAZY"))
            {
                p.sp()?;
                p.nonempty_list_of(|p| {
                    if p.keyword("LAZY") {
                        Ok(())
                    } else {
                        Err(Syntax::Unknown("PREVIEW modifier"))
                    }
                })?;
            }
            Item::Preview
        }
        b"BODY" if p.peek() == Some(b'[') => sect(p, false, false)?,
        b"BODY" => Item::Body,
        b"BODY.PEEK" => sect(p, false, true)?,
        b"BINARY" => sect(p, true, false)?,
        b"BINARY.PEEK" => sect(p, true, true)?,
        b"BINARY.SIZE" => Item::BinarySize(section(p, true)?.part),
        _ => return Err(Syntax::Unknown("FETCH item")),
    })
}

/// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
/// "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]`, after the sequence set.
pub fn fetch_args(p: &mut Parser<'_>) -> R<FetchArgs> {
    let items = if p.keyword("ALL") {
        vec![
            Item::Flags,
            Item::InternalDate,
            Item::Rfc822Size,
            Item::Envelope,
        ]
    } else if p.keyword("FAST") {
        vec![Item::Flags, Item::InternalDate, Item::Rfc822Size]
    } else if p.keyword("FULL") {
        vec![
            Item::Flags,
            Item::InternalDate,
            Item::Rfc822Size,
            Item::Envelope,
            Item::Body,
        ]
    } else if p.peek() == Some(b'(') {
        att_list(p)?
    } else {
        vec![att(p)?]
    };
    let mut changed_since = None;
    let mut vanished = false;
    let mut partial = None;
    if p.eat(b' ') {
        p.nonempty_list_of(|p| {
            if p.keyword("CHANGEDSINCE") {
                p.sp()?;
                changed_since = Some(mod_sequence(p)?);
            } else if p.keyword("VANISHED") {
                vanished = true;
            } else if p.keyword("PARTIAL") {
                // `fetch-modifier =/ modifier-partial` (RFC 9394 §4), at most once.
                if partial.is_some() {
                    return Err("PARTIAL given twice".into());
                }
                p.sp()?;
                partial = Some(PartialRange::parse(p)?);
            } else {
                return Err(Syntax::Unknown("FETCH modifier"));
            }
            Ok(())
        })?;
    }
    Ok(FetchArgs {
        items,
        changed_since,
        vanished,
        partial,
    })
}

/// The structure and the prefix length, if the structure was asked for.
fn split_meta(meta: &Option<(MessageMeta, usize)>) -> (Option<&MessageMeta>, usize) {
    match meta {
        Some((m, prefix)) => (Some(m), *prefix),
        None => (None, 0),
    }
}

/// `"(" fetch-att *(SP fetch-att) ")"`, also the list of NOTIFY's MessageNew (RFC 5465
/// §8).
pub fn att_list(p: &mut Parser<'_>) -> R<Vec<Item>> {
    p.nonempty_list_of(att)
}

/// The listing entry of `uid` (`list` in UID order).
/// Messages read from the store in one trip to the blocking pool...
const BATCH: usize = 64;
/// ...and at most about this many bytes of them: what the driver sends at once (it
/// flushes past 256 KiB), so a `FETCH 1:* BODY[]` holds about this much, not the reply.
const BATCH_BYTES: usize = 256 * 1024;

/// A FETCH in progress: the driver calls [`Session::fetch_step`] once per message and
/// may send what is queued in between. Messages are read from the store a batch at a
/// time ([`BATCH`], [`BATCH_BYTES`]).
pub(in super::super) struct FetchJob {
    args: FetchArgs,
    /// Indexes into `view.msgs` not read yet, in reverse order (popped from the end).
    todo: Vec<usize>,
    /// Indexes read and waiting to be answered, with what the store gave (`None`: the
    /// message is gone; always `None` when `load` is false).
    ready: VecDeque<(usize, Option<Loaded>)>,
    /// Whether an item needs the store at all (else the view answers everything).
    load: bool,
    want: Want,
    /// UIDs whose `\Seen` this FETCH set (RFC 3501 §6.4.5).
    seen_now: Vec<Uid>,
    opts: Options,
    condstore: bool,
    qresync: bool,
    rev1: bool,
    expunge_issued: bool,
    unknown_cte: bool,
}

impl FetchJob {
    /// The completion once every message is answered.
    fn result(&self) -> Result<Outcome, ImapError> {
        if self.unknown_cte {
            return Err(ImapError::no(
                Code::UnknownCte,
                "Cannot decode the content transfer encoding of some parts",
            ));
        }
        if self.expunge_issued {
            // RFC 5530 §3, RFC 2180 §4.1.2: the data of what still exists, and OK, so
            // a client does not treat the whole FETCH as a failed sync.
            return Ok(Outcome::Done(
                Status::ok("Some messages were expunged meanwhile").with(Code::ExpungeIssued),
            ));
        }
        Ok(Outcome::ok("FETCH completed"))
    }
}

impl Session {
    /// FETCH / UID FETCH (RFC 9051 §6.4.5, §6.4.9): checks the arguments, sets `\Seen`
    /// and returns the job whose messages [`Session::fetch_step`] answers one by one.
    pub(in super::super) async fn fetch(
        &mut self,
        uid: bool,
        set: SequenceSet,
        mut args: FetchArgs,
        out: &mut Vec<u8>,
    ) -> Result<FetchJob, ImapError> {
        if args.vanished {
            // RFC 7162 §3.2.6: UID FETCH only, with CHANGEDSINCE, after ENABLE QRESYNC;
            // the expunges in the set come first, as `* VANISHED (EARLIER)`.
            let Some(since) = args.changed_since.filter(|_| uid && self.enabled.qresync) else {
                return Err(ImapError::Bad(
                    "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC".into(),
                ));
            };
            let (_, view) = self.state.selected()?;
            let within = super::qresync::uid_ranges(&set, &view.saved);
            self.vanished_earlier(view.mailbox, &view.uids(), since, within, out)
                .await?;
        }
        if args.partial.is_some() && !uid {
            // RFC 9394 §3.3 extends UID FETCH only.
            return Err(ImapError::Bad("PARTIAL needs UID FETCH".into()));
        }
        // RFC 9051 §6.4.9: UID FETCH always reports UID.
        if uid && !args.items.contains(&Item::Uid) {
            args.items.insert(0, Item::Uid);
        }
        // RFC 7162 §3.1: MODSEQ and CHANGEDSINCE enable CONDSTORE; CHANGEDSINCE implies
        // the MODSEQ item (§3.1.4.1).
        if args.changed_since.is_some() || args.items.contains(&Item::ModSeq) {
            self.enabled.condstore = true;
            if !args.items.contains(&Item::ModSeq) {
                args.items.push(Item::ModSeq);
            }
        }
        let opts = Options {
            utf8: self.utf8(),
            rev2: self.enabled.rev2,
        };
        let condstore = self.enabled.condstore;
        let rev1 = !self.enabled.rev2;
        let store = self.store().clone();
        let (account, view) = self.state.selected_mut()?;
        let origin = account.origin;
        let mut picked = view.resolve(&set, uid)?;
        if let Some(since) = args.changed_since {
            picked.retain(|i| view.msgs.get(*i).is_some_and(|m| m.modseq > since));
        }
        // RFC 9394 §3.3: only the messages in the range, counted in UID order among
        // those the command would answer; with CHANGEDSINCE (§3.4), among the changed
        // ones. Messages another session expunged are not counted, as SEARCH skips
        // them (RFC 2180 §4.3), so that a SEARCH and a FETCH page agree.
        if let Some(range) = args.partial {
            picked.retain(|i| view.msgs.get(*i).is_some_and(|m| !m.expunged));
            picked = range.page(&picked).to_vec();
        }
        let mailbox = view.mailbox;

        // Non-PEEK sections set \Seen first, so FLAGS below shows it (RFC 3501 §6.4.5).
        let mut seen_now: Vec<Uid> = Vec::new();
        if !view.read_only && args.items.iter().any(Item::sets_seen) {
            let unseen: Vec<Uid> = picked
                .iter()
                .filter_map(|i| view.msgs.get(*i))
                .filter(|m| !m.expunged && !m.flags.has(SystemFlags::SEEN))
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let done = store
                    .store_flags(
                        mailbox,
                        unseen,
                        FlagMode::Add,
                        SystemFlags(SystemFlags::SEEN),
                        Vec::new(),
                        None,
                        origin,
                    )
                    .await?;
                for st in done.changed {
                    view.apply_own(&st);
                    seen_now.push(st.uid);
                }
                seen_now.sort_unstable();
            }
        }

        let bytes: Vec<&Item> = args.items.iter().filter(|i| i.needs_bytes()).collect();
        let want = Want {
            meta: args.items.iter().any(Item::needs_meta),
            bytes: !bytes.is_empty(),
            // The header alone for `BODY.PEEK[HEADER.FIELDS (...)]`, what list views ask.
            header_only: !bytes.is_empty() && bytes.iter().all(|i| i.header_only()),
            ..Want::default()
        };
        let load = want.meta || want.bytes || args.items.iter().any(Item::needs_listing);
        picked.reverse();
        Ok(FetchJob {
            args,
            todo: picked,
            ready: VecDeque::new(),
            load,
            want,
            seen_now,
            opts,
            condstore,
            qresync: self.enabled.qresync,
            rev1,
            expunge_issued: false,
            unknown_cte: false,
        })
    }

    /// Answers the next message of `job` into `out`: `None` while messages are left,
    /// then the command's result.
    pub(in super::super) async fn fetch_step(
        &mut self,
        job: &mut FetchJob,
        out: &mut Vec<u8>,
    ) -> Option<Result<Outcome, ImapError>> {
        if job.ready.is_empty()
            && !job.todo.is_empty()
            && let Err(e) = self.fetch_load(job).await
        {
            return Some(Err(e));
        }
        let Some((i, loaded)) = job.ready.pop_front() else {
            return Some(job.result());
        };
        match self.fetch_one(job, i, loaded, out) {
            Ok(()) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Moves the next batch of `job.todo` to `job.ready`, read from the store in one
    /// call when an item needs it.
    async fn fetch_load(&mut self, job: &mut FetchJob) -> Result<(), ImapError> {
        if !job.load {
            while let Some(i) = job.todo.pop() {
                job.ready.push_back((i, None));
            }
            return Ok(());
        }
        let store = self.store().clone();
        let (_, view) = self.state.selected()?;
        let n = job.todo.len().min(BATCH);
        let mut batch = job.todo.split_off(job.todo.len().saturating_sub(n));
        batch.reverse();
        let uids: Vec<Uid> = batch
            .iter()
            .map(|i| view.msgs.get(*i).map_or(Uid(0), |m| m.uid))
            .collect();
        let got = store
            .load_messages(view.mailbox, uids, job.want, BATCH_BYTES)
            .await?;
        let read = got.len();
        for (i, (_, loaded)) in batch.iter().zip(got) {
            job.ready.push_back((*i, loaded));
        }
        // What the byte budget left goes back, in order.
        for i in batch.iter().skip(read).rev() {
            job.todo.push(*i);
        }
        Ok(())
    }

    /// One `* n FETCH (...)` line for `view.msgs[i]`, from what the store gave.
    fn fetch_one(
        &mut self,
        job: &mut FetchJob,
        i: usize,
        loaded: Option<Loaded>,
        out: &mut Vec<u8>,
    ) -> Result<(), ImapError> {
        let (_, view) = self.state.selected()?;
        let mailbox = view.mailbox;
        let args = &job.args;
        let (opts, condstore, rev1) = (job.opts, job.condstore, job.rev1);
        let Some(m) = view.msgs.get(i) else {
            return Ok(());
        };
        let seq = i.saturating_add(1);
        // RFC 9051 §7.5.1 / RFC 2180 §4.1.2: expunged by another session meanwhile.
        if job.load && loaded.is_none() {
            job.expunge_issued = true;
            return Ok(());
        }
        let (info, meta, raw) = match loaded {
            Some(l) => (Some(l.info), l.meta, l.raw),
            None => (None, None, None),
        };
        let info = info.as_ref();
        let meta = match meta {
            Some((structure, prefix)) => match fetch::structure(&structure, raw.as_deref(), prefix)
            {
                Some(meta) => Some((meta, prefix)),
                None => {
                    return Err(ImapError::Internal(format!(
                        "undecodable structure of {mailbox}/{}",
                        m.uid
                    )));
                }
            },
            None => None,
        };
        // Written straight into `out` (no copy of the message); cut back on failure.
        let mark = out.len();
        let line = out;
        line.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
        let mut failed = false;
        let mut first = true;
        let mut has_flags = false;
        let mut has_modseq = false;
        for item in &args.items {
            if !first {
                line.push(b' ');
            }
            first = false;
            match item {
                Item::Flags => {
                    has_flags = true;
                    let recent = rev1 && view.recent.contains(&m.uid);
                    line.extend_from_slice(b"FLAGS ");
                    line.extend_from_slice(flag_list(m.flags, &m.keywords, recent).as_bytes());
                }
                Item::Uid => line.extend_from_slice(format!("UID {}", m.uid).as_bytes()),
                Item::ModSeq => {
                    has_modseq = true;
                    line.extend_from_slice(format!("MODSEQ ({})", m.modseq).as_bytes());
                }
                Item::InternalDate => {
                    line.extend_from_slice(b"INTERNALDATE ");
                    fetch::internal_date(info.map(|i| i.internal_date).unwrap_or(0), line);
                }
                Item::SaveDate => {
                    line.extend_from_slice(b"SAVEDATE ");
                    fetch::save_date(info.map(|i| i.save_date), line);
                }
                Item::Rfc822Size => line.extend_from_slice(
                    format!("RFC822.SIZE {}", info.map(|i| i.size).unwrap_or(0)).as_bytes(),
                ),
                Item::Envelope | Item::Body | Item::BodyStructure | Item::Preview => {
                    let Some((meta, _)) = &meta else { continue };
                    match item {
                        Item::Envelope => {
                            line.extend_from_slice(b"ENVELOPE ");
                            fetch::envelope(&meta.envelope, opts, line);
                        }
                        Item::Body => {
                            line.extend_from_slice(b"BODY ");
                            fetch::body_structure(&meta.body, false, opts, line);
                        }
                        Item::BodyStructure => {
                            line.extend_from_slice(b"BODYSTRUCTURE ");
                            fetch::body_structure(&meta.body, true, opts, line);
                        }
                        _ => {
                            line.extend_from_slice(b"PREVIEW ");
                            fetch::preview(meta, opts, line);
                        }
                    }
                }
                Item::Rfc822(kind, _) => {
                    let Some(raw) = &raw else { continue };
                    fetch::write_rfc822_item(*kind, raw, line);
                }
                Item::Section {
                    binary,
                    section,
                    partial,
                    ..
                } => {
                    let Some(raw) = &raw else { continue };
                    let (meta, prefix) = split_meta(&meta);
                    let data = if *binary {
                        match fetch::binary_bytes(raw, prefix, meta, &section.part) {
                            Ok(d) => d,
                            Err(_) => {
                                failed = true;
                                break;
                            }
                        }
                    } else {
                        fetch::section_bytes(raw, prefix, meta, section)
                    };
                    let cut = match partial {
                        Some(pa) => fetch::partial(&data, *pa),
                        None => data.as_ref(),
                    };
                    let name: &[u8] = if *binary { b"BINARY" } else { b"BODY" };
                    fetch::write_section_item(
                        name,
                        section,
                        partial.map(|pa| pa.origin),
                        cut,
                        line,
                    );
                }
                Item::BinarySize(part) => {
                    let Some(raw) = &raw else { continue };
                    let (meta, prefix) = split_meta(&meta);
                    match fetch::binary_bytes(raw, prefix, meta, part) {
                        Ok(d) => fetch::write_binary_size(
                            part,
                            u64::try_from(d.len()).unwrap_or(u64::MAX),
                            line,
                        ),
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
            }
        }
        if failed {
            line.truncate(mark);
            job.unknown_cte = true;
            return Ok(());
        }
        // RFC 3501 §6.4.5: a \Seen set by this FETCH is reported.
        let seen_now = job.seen_now.binary_search(&m.uid).is_ok();
        if seen_now && !has_flags {
            let recent = rev1 && view.recent.contains(&m.uid);
            line.extend_from_slice(b" FLAGS ");
            line.extend_from_slice(flag_list(m.flags, &m.keywords, recent).as_bytes());
            has_flags = true;
        }
        // RFC 7162 §3.1.4 / PROTOCOL item 100: FLAGS travel with MODSEQ once enabled.
        if condstore && has_flags && !has_modseq {
            line.extend_from_slice(format!(" MODSEQ ({})", m.modseq).as_bytes());
        }
        // RFC 7162 §3.2.4: with QRESYNC, a FETCH that set \Seen reports the UID too.
        if job.qresync && seen_now && !job.args.items.contains(&Item::Uid) {
            line.extend_from_slice(format!(" UID {}", m.uid).as_bytes());
        }
        line.extend_from_slice(b")\r\n");
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::imap::grammar::parse_whole;

    #[test]
    fn fetch_items_parse() {
        let a = parse_whole(
            b"(UID BODY.PEEK[1.2.HEADER.FIELDS (From \"To\")]<0.10> BINARY.SIZE[1] PREVIEW (LAZY))",
            fetch_args,
        )
        .unwrap();
        assert_eq!(a.items.len(), 4);
        assert_eq!(
            a.items[1],
            Item::Section {
                binary: false,
                peek: true,
                section: Section {
                    part: vec![1, 2],
                    text: Some(SectionText::HeaderFields(vec![
                        b"From".to_vec(),
                        b"To".to_vec()
                    ]))
                },
                partial: Some(Partial {
                    origin: 0,
                    count: 10
                })
            }
        );
        assert_eq!(parse_whole(b"FAST", fetch_args).unwrap().items.len(), 3);
        assert_eq!(
            parse_whole(b"body", fetch_args).unwrap().items,
            vec![Item::Body]
        );
        assert_eq!(
            parse_whole(b"(FLAGS) (CHANGEDSINCE 0)", fetch_args)
                .unwrap()
                .changed_since,
            Some(ModSeq(0))
        );
        // RFC 7162 §3.2.6: the VANISHED modifier (checked against UID and CHANGEDSINCE
        // by the command, which answers BAD).
        let v = parse_whole(b"(FLAGS) (CHANGEDSINCE 12345 VANISHED)", fetch_args).unwrap();
        assert_eq!((v.changed_since, v.vanished), (Some(ModSeq(12345)), true));
        assert!(
            parse_whole(b"(FLAGS) (VANISHED)", fetch_args)
                .unwrap()
                .vanished
        );
        assert!(!parse_whole(b"FLAGS", fetch_args).unwrap().vanished);
        // RFC 9394 §3.3, §3.4: PARTIAL, alone or with CHANGEDSINCE in either order.
        let v = parse_whole(b"(FLAGS) (PARTIAL -1:-30)", fetch_args).unwrap();
        assert!(v.partial.is_some());
        let v = parse_whole(b"(FLAGS) (PARTIAL 1:500 CHANGEDSINCE 7)", fetch_args).unwrap();
        assert!(v.partial.is_some() && v.changed_since == Some(ModSeq(7)));
        assert_eq!(
            parse_whole(b"BODY[1.MIME]", fetch_args).unwrap().items,
            vec![Item::Section {
                binary: false,
                peek: false,
                section: Section {
                    part: vec![1],
                    text: Some(SectionText::Mime)
                },
                partial: None
            }]
        );
    }

    /// Only items that need the structure ask the store for it (a message without a
    /// stored one is then analysed), and header items read the header alone.
    #[test]
    fn items_ask_for_what_they_use() {
        let item = |s: &str| {
            parse_whole(s.as_bytes(), fetch_args)
                .unwrap()
                .items
                .remove(0)
        };
        for (s, meta, header) in [
            ("BODY.PEEK[]", false, false),
            ("BINARY.PEEK[]", false, false),
            ("BINARY.SIZE[]", false, false),
            ("RFC822", false, false),
            ("RFC822.HEADER", false, true),
            ("BODY.PEEK[HEADER]", false, true),
            ("BODY.PEEK[HEADER.FIELDS (From Subject)]", false, true),
            (
                "BODY.PEEK[HEADER.FIELDS.NOT (Received)]<0.100>",
                false,
                true,
            ),
            ("BODY.PEEK[TEXT]", false, false),
            ("BODY.PEEK[1]", true, false),
            ("BODY.PEEK[1.HEADER]", true, false),
            ("BINARY.PEEK[1]", true, false),
            ("BINARY.SIZE[2]", true, false),
            ("BODYSTRUCTURE", true, false),
            ("ENVELOPE", true, false),
            ("PREVIEW", true, false),
        ] {
            let i = item(s);
            assert_eq!((i.needs_meta(), i.header_only()), (meta, header), "{s}");
        }
    }

    #[test]
    fn fetch_items_must_fail() {
        let refused: &[&[u8]] = &[
            b"(FLAGS",
            b"FOO",
            b"BODY[MIME]",
            b"BODY[0]",
            b"BODY[]<1.0>",
            b"BINARY[1.TEXT]",
            b"BODY.PEEK",
            b"BODY[HEADER.FIELDS ()]",
            b"(FLAGS) (CHANGEDSINCE)",
            b"(FLAGS) (FOO 1)",
            b"(FLAGS) (PARTIAL)",
            b"(FLAGS) (PARTIAL 0:5)",
            b"(FLAGS) (PARTIAL 1:*)",
            b"(FLAGS) (PARTIAL -1:5)",
            b"(FLAGS) (PARTIAL 1:5 PARTIAL 1:2)",
            b"FLAGS extra",
        ];
        crate::testing::assert_refused(|a: &[u8]| parse_whole(a, fetch_args), refused);
    }
}
