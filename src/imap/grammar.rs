//! The command grammar (RFC 9051 §9, RFC 3501 §9, with the extensions we advertise):
//! one framed command (see [`super::framing`]) in, a [`Command`] or a [`ParseError`]
//! (answered `BAD`) out. Hand-written; docs/decisions.md says why not imap-codec.
//!
//! Mailbox names stay raw bytes here: whether they are modified UTF-7 or UTF-8 depends on
//! the session (RFC 6855 §3), so the session decodes them.

use super::cmd::fetch::FetchArgs;
use super::cmd::search::SearchArgs;
use super::cmd::store::StoreArgs;
use super::cmd::{sort::SortArgs, thread::ThreadArgs};
use super::sequence::SequenceSet;
use crate::contracts::ModSeq;
use crate::util::{days_from_civil, month_from_name};

/// RFC 9051 §9 `ATOM-CHAR`: any CHAR except atom-specials.
pub fn is_atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR = ATOM-CHAR / resp-specials`.
pub fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// `tag = 1*<any ASTRING-CHAR except "+">`.
pub fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// `list-char = ATOM-CHAR / list-wildcards / resp-specials`.
fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub body: CommandBody,
}

/// A syntax error: answered with `tag BAD reason` (or `* BAD` without a tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub tag: Option<String>,
    pub reason: Syntax,
}

/// Why a command does not parse. Its text is the reason of the BAD response
/// (RFC 9051 §7.1.5): printable ASCII, one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Something else stands where this must: "a space", "(", "a number".
    Expected(&'static str),
    /// A word the grammar does not have at this place: "command", "FETCH item".
    Unknown(&'static str),
    /// Not a `sequence-set` (RFC 9051 §9).
    SequenceSet,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep(&'static str),
    /// A METADATA entry name that §3.2 of RFC 5464 refuses, and why.
    EntryName(&'static str),
    /// Any other rule broken, as the reason to give.
    Invalid(&'static str),
}

impl std::fmt::Display for Syntax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Syntax::Expected(what) => write!(f, "expected {what}"),
            Syntax::Unknown(what) => write!(f, "unknown {what}"),
            Syntax::SequenceSet => f.write_str("invalid sequence set"),
            Syntax::TooDeep(what) => write!(f, "{what} nested too deeply"),
            Syntax::EntryName(why) => write!(f, "invalid entry name: {why}"),
            Syntax::Invalid(why) => f.write_str(why),
        }
    }
}

impl From<&'static str> for Syntax {
    fn from(why: &'static str) -> Syntax {
        Syntax::Invalid(why)
    }
}

impl From<super::sequence::SeqError> for Syntax {
    fn from(_: super::sequence::SeqError) -> Syntax {
        Syntax::SequenceSet
    }
}

impl From<Syntax> for super::response::ImapError {
    fn from(s: Syntax) -> super::response::ImapError {
        super::response::ImapError::Bad(s.to_string())
    }
}

/// STATUS data items (RFC 9051 §6.3.11; RFC 7162 HIGHESTMODSEQ; RFC 8438 SIZE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    HighestModSeq,
    AppendLimit,
}

impl StatusItem {
    pub fn name(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::Recent => "RECENT",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Deleted => "DELETED",
            StatusItem::Size => "SIZE",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
            StatusItem::AppendLimit => "APPENDLIMIT",
        }
    }
}

/// LIST-EXTENDED selection options (RFC 5258 §3.1, RFC 6154 §5.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSelect {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

/// LIST-EXTENDED return options (RFC 5258 §3.2, RFC 5819 STATUS, RFC 6154).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    pub status: Option<Vec<StatusItem>>,
    /// RFC 9590 LIST-METADATA.
    pub metadata: Option<super::cmd::metadata::MetadataRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCommand {
    /// True when any LIST-EXTENDED syntax was used (selects the extended reply form).
    pub extended: bool,
    pub select: ListSelect,
    pub reference: Vec<u8>,
    pub patterns: Vec<Vec<u8>>,
    pub ret: ListReturn,
}

/// One message of an APPEND (RFC 3502 MULTIAPPEND allows several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<String>,
    /// Unix seconds.
    pub date: Option<i64>,
    pub data: AppendData,
}

/// `append-data`: a literal, or the parts of a CATENATE (RFC 4469 §5,
/// `imap::cmd::catenate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendData {
    Literal(Vec<u8>),
    Catenate(Vec<super::cmd::catenate::CatPart>),
}

/// Message commands (RFC 9051 §6.4) and their UID forms, fully parsed; each one's
/// argument grammar lives beside its handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageCommand {
    Fetch(SequenceSet, FetchArgs),
    Store(SequenceSet, StoreArgs),
    /// COPY and MOVE (RFC 6851): the set and the target mailbox as sent.
    Copy(SequenceSet, Vec<u8>),
    Move(SequenceSet, Vec<u8>),
    /// EXPUNGE has no set, UID EXPUNGE has one (RFC 9051 §6.4.9).
    Expunge(Option<SequenceSet>),
    Search(SearchArgs),
    /// RFC 5256 SORT (`imap::cmd::sort`).
    Sort(SortArgs),
    /// RFC 5256 THREAD (`imap::cmd::thread`).
    Thread(ThreadArgs),
}

impl MessageCommand {
    pub fn name(&self) -> &'static str {
        match self {
            MessageCommand::Fetch(..) => "FETCH",
            MessageCommand::Store(..) => "STORE",
            MessageCommand::Copy(..) => "COPY",
            MessageCommand::Move(..) => "MOVE",
            MessageCommand::Expunge(_) => "EXPUNGE",
            MessageCommand::Search(_) => "SEARCH",
            MessageCommand::Sort(_) => "SORT",
            MessageCommand::Thread(_) => "THREAD",
        }
    }
}

/// COMPRESS mechanisms (RFC 4978 §3; DEFLATE is the only one registered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressMechanism {
    Deflate,
}

/// The QRESYNC parameter of SELECT / EXAMINE (RFC 7162 §3.2.5). `seq-match-data` is
/// parsed and dropped: the RFC lets a server ignore it (§3.2.5.2), and the answer below
/// the expunge-history window is a superset anyway (docs/decisions.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParams {
    pub uidvalidity: u32,
    pub modseq: ModSeq,
    /// `known-uids`; `None`: every UID below UIDNEXT.
    pub known_uids: Option<SequenceSet>,
}

/// `"(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"`
/// (RFC 7162 §7 `select-param`; §3.2.5). `uidvalidity` and the mod-sequence are
/// non-zero.
fn qresync_params(p: &mut Parser<'_>) -> R<QresyncParams> {
    p.expect(b'(', "(")?;
    let uidvalidity = p.number()?;
    p.sp()?;
    let modseq = ModSeq(p.number64()?);
    if uidvalidity == 0 || modseq == ModSeq(0) {
        return Err("QRESYNC needs a non-zero UIDVALIDITY and mod-sequence".into());
    }
    let mut known_uids = None;
    if p.eat(b' ') {
        known_uids = Some(uid_set(p)?);
        if p.eat(b' ') {
            // seq-match-data = "(" known-sequence-set SP known-uid-set ")"
            p.expect(b'(', "seq-match-data")?;
            uid_set(p)?;
            p.sp()?;
            uid_set(p)?;
            p.expect(b')', ")")?;
        }
    }
    p.expect(b')', ")")?;
    Ok(QresyncParams {
        uidvalidity,
        modseq,
        known_uids,
    })
}

/// A `sequence-set` of numbers and ranges (RFC 9051 §9), not `$`.
fn uid_set(p: &mut Parser<'_>) -> R<SequenceSet> {
    match p.sequence_set()? {
        SequenceSet::Saved => Err(Syntax::SequenceSet),
        set => Ok(set),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    Capability,
    Noop,
    Logout,
    StartTls,
    /// RFC 2971: `None` for `ID NIL`.
    Id(Option<Vec<(String, Option<String>)>>),
    Enable(Vec<String>),
    Login {
        user: Vec<u8>,
        password: Vec<u8>,
    },
    Authenticate {
        mechanism: String,
        /// SASL-IR (RFC 4959): the base64 text, `=` for empty.
        initial: Option<Vec<u8>>,
    },
    Namespace,
    List(ListCommand),
    Lsub {
        reference: Vec<u8>,
        pattern: Vec<u8>,
    },
    Create(Vec<u8>),
    Delete(Vec<u8>),
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
    },
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
    Select {
        mailbox: Vec<u8>,
        read_only: bool,
        condstore: bool,
        /// RFC 7162 §3.2.5 `(QRESYNC (...))`.
        qresync: Option<QresyncParams>,
    },
    Status {
        mailbox: Vec<u8>,
        items: Vec<StatusItem>,
    },
    Append {
        mailbox: Vec<u8>,
        messages: Vec<AppendMessage>,
    },
    Check,
    Close,
    Unselect,
    Idle,
    GetQuota(Vec<u8>),
    GetQuotaRoot(Vec<u8>),
    /// RFC 4978 §3.
    Compress(CompressMechanism),
    /// RFC 8437 §3.
    Unauthenticate,
    /// RFC 5465 §3.1 (`imap::cmd::notify`).
    Notify(super::cmd::notify::NotifyCommand),
    /// RFC 5464 §4.2 (`imap::cmd::metadata`).
    GetMetadata(super::cmd::metadata::GetMetadata),
    /// RFC 5464 §4.3.
    SetMetadata(super::cmd::metadata::SetMetadata),
    /// RFC 5267 §4.3.5: the tags of the contexts to stop (`imap::cmd::context`).
    CancelUpdate(Vec<String>),
    /// FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE, SORT, THREAD and their UID forms.
    Message {
        uid: bool,
        command: MessageCommand,
    },
}

impl CommandBody {
    /// The command name, for logs and completion texts.
    pub fn name(&self) -> &'static str {
        match self {
            CommandBody::Capability => "CAPABILITY",
            CommandBody::Noop => "NOOP",
            CommandBody::Logout => "LOGOUT",
            CommandBody::StartTls => "STARTTLS",
            CommandBody::Id(_) => "ID",
            CommandBody::Enable(_) => "ENABLE",
            CommandBody::Login { .. } => "LOGIN",
            CommandBody::Authenticate { .. } => "AUTHENTICATE",
            CommandBody::Namespace => "NAMESPACE",
            CommandBody::List(_) => "LIST",
            CommandBody::Lsub { .. } => "LSUB",
            CommandBody::Create(_) => "CREATE",
            CommandBody::Delete(_) => "DELETE",
            CommandBody::Rename { .. } => "RENAME",
            CommandBody::Subscribe(_) => "SUBSCRIBE",
            CommandBody::Unsubscribe(_) => "UNSUBSCRIBE",
            CommandBody::Select {
                read_only: true, ..
            } => "EXAMINE",
            CommandBody::Select { .. } => "SELECT",
            CommandBody::Status { .. } => "STATUS",
            CommandBody::Append { .. } => "APPEND",
            CommandBody::Check => "CHECK",
            CommandBody::Close => "CLOSE",
            CommandBody::Unselect => "UNSELECT",
            CommandBody::Idle => "IDLE",
            CommandBody::GetQuota(_) => "GETQUOTA",
            CommandBody::GetQuotaRoot(_) => "GETQUOTAROOT",
            CommandBody::Compress(_) => "COMPRESS",
            CommandBody::Unauthenticate => "UNAUTHENTICATE",
            CommandBody::Notify(_) => "NOTIFY",
            CommandBody::GetMetadata(_) => "GETMETADATA",
            CommandBody::SetMetadata(_) => "SETMETADATA",
            CommandBody::CancelUpdate(_) => "CANCELUPDATE",
            CommandBody::Message { command, .. } => command.name(),
        }
    }
}

/// Most nested parentheses accepted anywhere (PROTOCOL.md "10,000-deep nesting").
pub const MAX_DEPTH: usize = 32;

/// A cursor over one command's bytes.
pub struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// What the grammar's functions return.
pub type R<T> = Result<T, Syntax>;

impl<'a> Parser<'a> {
    pub fn new(buf: &'a [u8]) -> Parser<'a> {
        Parser { buf, pos: 0 }
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    fn bump(&mut self) {
        self.pos = self.pos.saturating_add(1);
    }

    /// Consumes `b` if it is next.
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.bump();
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, b: u8, what: &'static str) -> R<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(Syntax::Expected(what))
        }
    }

    pub fn sp(&mut self) -> R<()> {
        self.expect(b' ', "a space")
    }

    /// Consumes a case-insensitive keyword if it is next and not followed by an atom char.
    pub fn keyword(&mut self, word: &str) -> bool {
        let w = word.as_bytes();
        let Some(s) = self.buf.get(self.pos..self.pos.saturating_add(w.len())) else {
            return false;
        };
        let next = self.buf.get(self.pos + w.len()).copied();
        if s.eq_ignore_ascii_case(w) && !next.is_some_and(is_atom_char) {
            self.pos += w.len();
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        self.buf.get(start..self.pos).unwrap_or(&[])
    }

    pub fn atom(&mut self) -> R<&'a [u8]> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            Err(Syntax::Expected("an atom"))
        } else {
            Ok(a)
        }
    }

    /// `sequence-set` (RFC 9051 §9), `$` included (RFC 5182 §2.1).
    pub fn sequence_set(&mut self) -> R<SequenceSet> {
        let s = self.take_while(|b| b.is_ascii_digit() || matches!(b, b':' | b',' | b'*' | b'$'));
        Ok(SequenceSet::parse(s)?)
    }

    /// 1 to `max_digits` digits as a `T`; `None` when they overflow it.
    fn digits<T: std::str::FromStr>(&mut self, max_digits: usize) -> R<Option<T>> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() || d.len() > max_digits {
            return Err(Syntax::Expected("a number"));
        }
        Ok(std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse::<T>().ok()))
    }

    /// `number` (RFC 9051 §9): an unsigned 32-bit decimal.
    pub fn number(&mut self) -> R<u32> {
        self.digits::<u32>(10)?
            .ok_or_else(|| "number out of range".into())
    }

    /// `number64` (RFC 9051 §9): 0..=2^63-1.
    pub fn number64(&mut self) -> R<u64> {
        self.digits::<u64>(19)?
            .filter(|n| *n <= i64::MAX as u64)
            .ok_or_else(|| "number out of range".into())
    }

    pub fn quoted(&mut self) -> R<Vec<u8>> {
        self.expect(b'"', "a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted string".into()),
                Some(b'"') => {
                    self.bump();
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.bump();
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.bump();
                        }
                        _ => return Err("bad escape in quoted string".into()),
                    }
                }
                Some(0 | b'\r' | b'\n') => {
                    return Err("NUL, CR or LF in a quoted string".into());
                }
                Some(c) => {
                    out.push(c);
                    self.bump();
                }
            }
        }
    }

    /// `literal` / `literal8` (RFC 9051 §4.3; RFC 3516 §4). NUL only in literal8.
    pub fn literal(&mut self, allow8: bool) -> R<Vec<u8>> {
        let eight = self.eat(b'~');
        if eight && !allow8 {
            return Err("literal8 is not allowed here".into());
        }
        self.expect(b'{', "a literal")?;
        let d = self.take_while(|b| b.is_ascii_digit());
        let n: usize = std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("bad literal length")?;
        self.eat(b'+');
        self.expect(b'}', "}")?;
        self.eat(b'\r');
        self.expect(b'\n', "CRLF after a literal length")?;
        let end = self.pos.checked_add(n).ok_or("bad literal length")?;
        let data = self.buf.get(self.pos..end).ok_or("literal data missing")?;
        if !eight && data.contains(&0) {
            return Err("NUL in a literal".into());
        }
        self.pos = end;
        Ok(data.to_vec())
    }

    pub fn string(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') | Some(b'~') => self.literal(false),
            _ => Err(Syntax::Expected("a string")),
        }
    }

    /// `nstring / literal8` (RFC 5464 §5 `value`): NUL only in a literal8.
    pub fn nstring8(&mut self) -> R<Option<Vec<u8>>> {
        if self.peek() == Some(b'~') {
            return self.literal(true).map(Some);
        }
        self.nstring()
    }

    pub fn astring(&mut self) -> R<Vec<u8>> {
        self.string_or(is_astring_char, "an atom or string")
    }

    /// A string, or else a non-empty run of the characters `class` allows (`expected`
    /// names both when there is neither).
    fn string_or(&mut self, class: fn(u8) -> bool, expected: &'static str) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let a = self.take_while(class);
                if a.is_empty() {
                    Err(Syntax::Expected(expected))
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    pub fn nstring(&mut self) -> R<Option<Vec<u8>>> {
        if self.keyword("NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// `list-mailbox = 1*list-char / string`.
    fn list_mailbox(&mut self) -> R<Vec<u8>> {
        self.string_or(is_list_char, "a mailbox pattern")
    }

    /// CRLF and nothing after it.
    pub fn end(&mut self) -> R<()> {
        self.eat(b'\r');
        if self.eat(b'\n') && self.pos == self.buf.len() {
            Ok(())
        } else {
            Err("unexpected characters at the end of the command".into())
        }
    }

    /// `"(" [item *(SP item)] ")"`.
    pub fn list_of<T>(&mut self, item: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        self.expect(b'(', "(")?;
        if self.eat(b')') {
            return Ok(Vec::new());
        }
        self.items_to_paren(item)
    }

    /// `"(" item *(SP item) ")"`: one item at least.
    pub fn nonempty_list_of<T>(&mut self, item: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        self.expect(b'(', "(")?;
        self.items_to_paren(item)
    }

    /// `item *(SP item) ")"`, the rest of a list after its `(`.
    fn items_to_paren<T>(&mut self, mut item: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        let mut out = Vec::new();
        loop {
            out.push(item(self)?);
            if self.eat(b')') {
                return Ok(out);
            }
            self.sp()?;
        }
    }

    /// `flag-list` (RFC 9051 §9): system flags as `\Name`, keywords as atoms.
    pub fn flag_list(&mut self) -> R<Vec<String>> {
        self.list_of(|p| {
            let bs = p.eat(b'\\');
            let a = p.atom()?;
            let a = String::from_utf8_lossy(a).into_owned();
            Ok(if bs { format!("\\{a}") } else { a })
        })
    }

    /// `date-time` (RFC 9051 §9): `"dd-Mon-yyyy hh:mm:ss +zzzz"` -> unix seconds.
    pub fn date_time(&mut self) -> R<i64> {
        let s = self.quoted()?;
        parse_date_time(&s).ok_or_else(|| "bad date-time".into())
    }
}

fn parse_date_time(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    // date-day-fixed is `SP DIGIT` or `2DIGIT`.
    let s = s.strip_prefix(' ').unwrap_or(s);
    let (date, rest) = s.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let mut d = date.split('-');
    let day: u32 = d.next()?.parse().ok()?;
    let mon = d.next()?;
    let month = month_from_name(mon)?;
    let year_s = d.next()?;
    if d.next().is_some() || year_s.len() != 4 {
        return None;
    }
    let year: i64 = year_s.parse().ok()?;
    let mut t = time.split(':');
    let (h, mi, se): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    // An impossible day (`31-Feb-2020`) is refused, not rolled over into March.
    if t.next().is_some()
        || day == 0
        || day > days_in_month(year, month)
        || h > 23
        || mi > 59
        || se > 60
    {
        return None;
    }
    // `zone = ("+" / "-") 4DIGIT`: hours and minutes, minutes at most 59.
    let zb = zone.as_bytes();
    let digits = zone.get(1..)?;
    if zb.len() != 5
        || !matches!(zb.first(), Some(b'+' | b'-'))
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let zn: i64 = digits.parse().ok()?;
    if zn % 100 > 59 {
        return None;
    }
    let offset = (zn / 100) * 3600 + (zn % 100) * 60;
    let offset = if zb.first() == Some(&b'-') {
        -offset
    } else {
        offset
    };
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// Days in `month` (1..=12) of `year` (proleptic Gregorian).
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn status_item(p: &mut Parser<'_>) -> R<StatusItem> {
    let a = p.atom()?.to_ascii_uppercase();
    Ok(match a.as_slice() {
        b"MESSAGES" => StatusItem::Messages,
        b"RECENT" => StatusItem::Recent,
        b"UIDNEXT" => StatusItem::UidNext,
        b"UIDVALIDITY" => StatusItem::UidValidity,
        b"UNSEEN" => StatusItem::Unseen,
        b"DELETED" => StatusItem::Deleted,
        b"SIZE" => StatusItem::Size,
        b"HIGHESTMODSEQ" => StatusItem::HighestModSeq,
        b"APPENDLIMIT" => StatusItem::AppendLimit,
        _ => return Err(Syntax::Unknown("STATUS item")),
    })
}

fn parse_list(p: &mut Parser<'_>) -> R<ListCommand> {
    let mut cmd = ListCommand {
        extended: false,
        select: ListSelect::default(),
        reference: Vec::new(),
        patterns: Vec::new(),
        ret: ListReturn::default(),
    };
    p.sp()?;
    if p.peek() == Some(b'(') {
        cmd.extended = true;
        let opts = p.list_of(|p| Ok(p.atom()?.to_ascii_uppercase()))?;
        for o in opts {
            match o.as_slice() {
                b"SUBSCRIBED" => cmd.select.subscribed = true,
                b"REMOTE" => cmd.select.remote = true,
                b"RECURSIVEMATCH" => cmd.select.recursive_match = true,
                b"SPECIAL-USE" => cmd.select.special_use = true,
                _ => return Err(Syntax::Unknown("LIST selection option")),
            }
        }
        // RFC 5258 §3.1: RECURSIVEMATCH needs another option.
        if cmd.select.recursive_match && !(cmd.select.subscribed || cmd.select.special_use) {
            return Err("RECURSIVEMATCH alone".into());
        }
        p.sp()?;
    }
    cmd.reference = p.astring()?;
    p.sp()?;
    if p.peek() == Some(b'(') {
        cmd.extended = true;
        cmd.patterns = p.list_of(|p| p.list_mailbox())?;
        if cmd.patterns.is_empty() {
            return Err("empty pattern list".into());
        }
    } else {
        cmd.patterns.push(p.list_mailbox()?);
    }
    if p.eat(b' ') {
        if !p.keyword("RETURN") {
            return Err(Syntax::Expected("RETURN"));
        }
        cmd.extended = true;
        p.sp()?;
        p.list_of(|p| {
            let o = p.atom()?.to_ascii_uppercase();
            match o.as_slice() {
                b"SUBSCRIBED" => cmd.ret.subscribed = true,
                b"CHILDREN" => cmd.ret.children = true,
                b"SPECIAL-USE" => cmd.ret.special_use = true,
                b"STATUS" => {
                    p.sp()?;
                    cmd.ret.status = Some(p.list_of(status_item)?);
                }
                b"METADATA" => {
                    p.sp()?;
                    cmd.ret.metadata = Some(super::cmd::metadata::parse_list_return(p)?);
                }
                _ => return Err(Syntax::Unknown("LIST return option")),
            }
            Ok(())
        })?;
    }
    Ok(cmd)
}

fn parse_append(p: &mut Parser<'_>) -> R<CommandBody> {
    p.sp()?;
    let mailbox = p.astring()?;
    let mut messages = Vec::new();
    while p.eat(b' ') {
        let mut m = AppendMessage {
            flags: Vec::new(),
            date: None,
            data: AppendData::Literal(Vec::new()),
        };
        if p.peek() == Some(b'(') {
            m.flags = p.flag_list()?;
            p.sp()?;
        }
        if p.peek() == Some(b'"') {
            m.date = Some(p.date_time()?);
            p.sp()?;
        }
        m.data = if p.keyword("CATENATE") {
            p.sp()?;
            AppendData::Catenate(super::cmd::catenate::cat_parts(p)?)
        } else {
            // RFC 3516 §4.4: `literal8` with BINARY (advertised once logged in, the
            // only state APPEND is valid in).
            AppendData::Literal(p.literal(true)?)
        };
        messages.push(m);
    }
    if messages.is_empty() {
        return Err("APPEND needs a message literal".into());
    }
    Ok(CommandBody::Append { mailbox, messages })
}

fn parse_id(p: &mut Parser<'_>) -> R<CommandBody> {
    p.sp()?;
    if p.keyword("NIL") {
        return Ok(CommandBody::Id(None));
    }
    p.expect(b'(', "(")?;
    let mut out = Vec::new();
    if !p.eat(b')') {
        loop {
            let k = p.string()?;
            p.sp()?;
            let v = p.nstring()?;
            if out.len() < 30 {
                out.push((
                    String::from_utf8_lossy(&k).into_owned(),
                    v.map(|v| String::from_utf8_lossy(&v).into_owned()),
                ));
            }
            if p.eat(b')') {
                break;
            }
            p.sp()?;
        }
    }
    Ok(CommandBody::Id(Some(out)))
}

/// The message commands (RFC 9051 §6.4, RFC 5256), the ones `UID` may precede.
const MESSAGE_COMMANDS: [&[u8]; 8] = [
    b"FETCH", b"STORE", b"SEARCH", b"COPY", b"MOVE", b"EXPUNGE", b"SORT", b"THREAD",
];

/// A message command after its name (and `UID`): `SP` and its arguments, without the
/// CRLF.
fn parse_message(p: &mut Parser<'_>, name: &[u8], uid: bool) -> R<MessageCommand> {
    use super::cmd::fetch::fetch_args;
    use super::cmd::search::search_args;
    use super::cmd::store::store_args;
    use super::cmd::{sort::sort_args, thread::thread_args};
    // RFC 9051 §6.4.3: `expunge = "EXPUNGE"`; RFC 4315 §2.1 `uid-expunge = "UID" SP
    // "EXPUNGE" SP sequence-set`.
    if name == b"EXPUNGE" {
        if !uid {
            return Ok(MessageCommand::Expunge(None));
        }
        p.sp()?;
        return Ok(MessageCommand::Expunge(Some(p.sequence_set()?)));
    }
    p.sp()?;
    Ok(match name {
        b"SEARCH" => MessageCommand::Search(search_args(p)?),
        b"SORT" => MessageCommand::Sort(sort_args(p)?),
        b"THREAD" => MessageCommand::Thread(thread_args(p)?),
        _ => {
            let set = p.sequence_set()?;
            p.sp()?;
            match name {
                b"FETCH" => MessageCommand::Fetch(set, fetch_args(p)?),
                b"STORE" => MessageCommand::Store(set, store_args(p)?),
                b"COPY" => MessageCommand::Copy(set, p.astring()?),
                b"MOVE" => MessageCommand::Move(set, p.astring()?),
                _ => return Err(Syntax::Unknown("command")),
            }
        }
    })
}

/// Parses `args` (a command's arguments, without the CRLF) with `f`, to the end: for
/// the unit tests of the argument grammars.
#[cfg(test)]
pub fn parse_whole<T>(args: &[u8], f: impl FnOnce(&mut Parser<'_>) -> R<T>) -> R<T> {
    let mut buf = args.to_vec();
    buf.extend_from_slice(b"\r\n");
    let mut p = Parser::new(&buf);
    let v = f(&mut p)?;
    p.end()?;
    Ok(v)
}

fn parse_body(p: &mut Parser<'_>, name: &[u8]) -> R<CommandBody> {
    let simple = |p: &mut Parser<'_>, b: CommandBody| -> R<CommandBody> {
        p.end()?;
        Ok(b)
    };
    let one_mailbox = |p: &mut Parser<'_>| -> R<Vec<u8>> {
        p.sp()?;
        let m = p.astring()?;
        p.end()?;
        Ok(m)
    };
    let body = match name {
        b"CAPABILITY" => return simple(p, CommandBody::Capability),
        b"NOOP" => return simple(p, CommandBody::Noop),
        b"LOGOUT" => return simple(p, CommandBody::Logout),
        b"STARTTLS" => return simple(p, CommandBody::StartTls),
        b"NAMESPACE" => return simple(p, CommandBody::Namespace),
        b"CHECK" => return simple(p, CommandBody::Check),
        b"CLOSE" => return simple(p, CommandBody::Close),
        b"UNSELECT" => return simple(p, CommandBody::Unselect),
        b"IDLE" => return simple(p, CommandBody::Idle),
        b"UNAUTHENTICATE" => return simple(p, CommandBody::Unauthenticate),
        b"NOTIFY" => CommandBody::Notify(super::cmd::notify::parse(p)?),
        b"CANCELUPDATE" => CommandBody::CancelUpdate(super::cmd::context::parse(p)?),
        // RFC 4978 §5: `compress = "COMPRESS" SP algorithm`, case-insensitive. An
        // unknown algorithm is a syntax error: tagged BAD (§3).
        b"COMPRESS" => {
            p.sp()?;
            let mechanism = match p.atom()?.to_ascii_uppercase().as_slice() {
                b"DEFLATE" => CompressMechanism::Deflate,
                _ => return Err(Syntax::Unknown("compression mechanism")),
            };
            return simple(p, CommandBody::Compress(mechanism));
        }
        b"GETMETADATA" => CommandBody::GetMetadata(super::cmd::metadata::parse_get(p)?),
        b"SETMETADATA" => CommandBody::SetMetadata(super::cmd::metadata::parse_set(p)?),
        b"ID" => parse_id(p)?,
        b"ENABLE" => {
            let mut caps = Vec::new();
            while p.eat(b' ') {
                caps.push(String::from_utf8_lossy(p.atom()?).to_ascii_uppercase());
            }
            if caps.is_empty() {
                return Err("ENABLE needs a capability".into());
            }
            CommandBody::Enable(caps)
        }
        b"LOGIN" => {
            p.sp()?;
            let user = p.astring()?;
            p.sp()?;
            let password = p.astring()?;
            CommandBody::Login { user, password }
        }
        b"AUTHENTICATE" => {
            p.sp()?;
            let mechanism = String::from_utf8_lossy(p.atom()?).to_ascii_uppercase();
            let initial = if p.eat(b' ') {
                let ir =
                    p.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                if ir.is_empty() {
                    return Err("bad initial response".into());
                }
                Some(ir.to_vec())
            } else {
                None
            };
            CommandBody::Authenticate { mechanism, initial }
        }
        b"LIST" => CommandBody::List(parse_list(p)?),
        b"LSUB" => {
            p.sp()?;
            let reference = p.astring()?;
            p.sp()?;
            let pattern = p.list_mailbox()?;
            CommandBody::Lsub { reference, pattern }
        }
        b"CREATE" => return Ok(CommandBody::Create(one_mailbox(p)?)),
        b"DELETE" => return Ok(CommandBody::Delete(one_mailbox(p)?)),
        b"SUBSCRIBE" => return Ok(CommandBody::Subscribe(one_mailbox(p)?)),
        b"UNSUBSCRIBE" => return Ok(CommandBody::Unsubscribe(one_mailbox(p)?)),
        b"GETQUOTA" => return Ok(CommandBody::GetQuota(one_mailbox(p)?)),
        b"GETQUOTAROOT" => return Ok(CommandBody::GetQuotaRoot(one_mailbox(p)?)),
        b"RENAME" => {
            p.sp()?;
            let from = p.astring()?;
            p.sp()?;
            let to = p.astring()?;
            CommandBody::Rename { from, to }
        }
        b"SELECT" | b"EXAMINE" => {
            p.sp()?;
            let mailbox = p.astring()?;
            let mut condstore = false;
            let mut qresync = None;
            if p.eat(b' ') {
                p.list_of(|p| {
                    if p.keyword("CONDSTORE") {
                        condstore = true;
                    } else if p.keyword("QRESYNC") && qresync.is_none() {
                        p.sp()?;
                        qresync = Some(qresync_params(p)?);
                    } else {
                        return Err(Syntax::Unknown("SELECT parameter"));
                    }
                    Ok(())
                })?;
            }
            CommandBody::Select {
                mailbox,
                read_only: name == b"EXAMINE",
                condstore,
                qresync,
            }
        }
        b"STATUS" => {
            p.sp()?;
            let mailbox = p.astring()?;
            p.sp()?;
            let items = p.list_of(status_item)?;
            if items.is_empty() {
                return Err("STATUS needs items".into());
            }
            CommandBody::Status { mailbox, items }
        }
        b"APPEND" => parse_append(p)?,
        _ if MESSAGE_COMMANDS.contains(&name) => CommandBody::Message {
            uid: false,
            command: parse_message(p, name, false)?,
        },
        b"UID" => {
            p.sp()?;
            let sub = p.atom()?.to_ascii_uppercase();
            if !MESSAGE_COMMANDS.contains(&sub.as_slice()) {
                return Err(Syntax::Unknown("UID command"));
            }
            CommandBody::Message {
                uid: true,
                command: parse_message(p, &sub, true)?,
            }
        }
        _ => return Err(Syntax::Unknown("command")),
    };
    p.end()?;
    Ok(body)
}

/// Parses one framed command (RFC 9051 §2.2.1: `tag SP command CRLF`).
pub fn parse_command(buf: &[u8]) -> Result<Command, ParseError> {
    let mut p = Parser::new(buf);
    let tag = p.take_while(is_tag_char);
    if tag.is_empty() || tag.len() > 64 {
        return Err(ParseError {
            tag: None,
            reason: Syntax::Expected("a tag"),
        });
    }
    let tag = String::from_utf8_lossy(tag).into_owned();
    let fail = |reason: Syntax| ParseError {
        tag: Some(tag.clone()),
        reason,
    };
    p.sp().map_err(fail)?;
    let name = p.atom().map_err(|_| fail(Syntax::Expected("a command")))?;
    let name = name.to_ascii_uppercase();
    let body = parse_body(&mut p, &name).map_err(fail)?;
    Ok(Command { tag, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &[u8]) -> CommandBody {
        parse_command(s)
            .unwrap_or_else(|e| panic!("{s:?}: {e:?}"))
            .body
    }

    #[test]
    fn simple_commands() {
        assert_eq!(ok(b"a noop\r\n"), CommandBody::Noop);
        assert_eq!(ok(b"a CAPABILITY\r\n"), CommandBody::Capability);
        assert_eq!(parse_command(b"a.1 NOOP\r\n").unwrap().tag, "a.1");
        assert_eq!(ok(b"a unauthenticate\r\n"), CommandBody::Unauthenticate);
    }

    /// RFC 5267 §5: `"CANCELUPDATE" 1*(SP quoted)`.
    #[test]
    fn cancelupdate_takes_quoted_tags() {
        assert_eq!(
            ok(b"a CancelUpdate \"s1\" \"s.2\"\r\n"),
            CommandBody::CancelUpdate(vec!["s1".into(), "s.2".into()])
        );
        let refused: &[&[u8]] = &[
            b"a CANCELUPDATE\r\n",
            b"a CANCELUPDATE s1\r\n",
            b"a CANCELUPDATE \"s1\" x\r\n",
        ];
        crate::testing::assert_refused(parse_command, refused);
    }

    /// RFC 4978 §5: the command and the algorithm are case-insensitive.
    #[test]
    fn compress_deflate_any_case() {
        for line in [&b"a COMPRESS DEFLATE\r\n"[..], b"a compress Deflate\r\n"] {
            assert_eq!(ok(line), CommandBody::Compress(CompressMechanism::Deflate));
        }
    }

    #[test]
    fn login_in_three_string_forms() {
        assert!(parse_command(b"a LOGIN {5}\r\nal\x00ce \"pw\"\r\n").is_err());
        assert_eq!(
            ok(b"a LOGIN {5+}\r\nalice \"p\\\"w\"\r\n"),
            CommandBody::Login {
                user: b"alice".to_vec(),
                password: b"p\"w".to_vec()
            }
        );
        assert_eq!(
            ok(b"a LOGIN alice pw]\r\n"),
            CommandBody::Login {
                user: b"alice".to_vec(),
                password: b"pw]".to_vec()
            }
        );
    }

    /// RFC 7162 §3.2.5 `select-param`: the QRESYNC parameter and its must-fail list.
    #[test]
    fn select_qresync_parameter() {
        let q = |s: &[u8]| match ok(s) {
            CommandBody::Select {
                condstore, qresync, ..
            } => (condstore, qresync),
            other => panic!("{other:?}"),
        };
        let p = |uidvalidity, modseq, known: Option<&[u8]>| QresyncParams {
            uidvalidity,
            modseq: ModSeq(modseq),
            known_uids: known.map(|k| SequenceSet::parse(k).unwrap()),
        };
        assert_eq!(
            q(b"a SELECT INBOX (QRESYNC (67890007 20050715194045000))\r\n"),
            (false, Some(p(67890007, 20050715194045000, None)))
        );
        assert_eq!(
            q(b"a EXAMINE x (CONDSTORE QRESYNC (1 2 41,43:211))\r\n"),
            (true, Some(p(1, 2, Some(b"41,43:211"))))
        );
        assert_eq!(
            q(b"a select x (qresync (1 2 1:9 (1:3,5 1:2,4:5)))\r\n"),
            (false, Some(p(1, 2, Some(b"1:9"))))
        );
        let refused: &[&[u8]] = &[
            b"a SELECT x (QRESYNC)\r\n",
            b"a SELECT x (QRESYNC (1))\r\n",
            b"a SELECT x (QRESYNC (0 1))\r\n",
            b"a SELECT x (QRESYNC (1 0))\r\n",
            b"a SELECT x (QRESYNC (1 2 0:3))\r\n",
            b"a SELECT x (QRESYNC (1 2 1:3 (1:2)))\r\n",
            b"a SELECT x (QRESYNC (1 2 1:3 4))\r\n",
            b"a SELECT x (QRESYNC (1 2 (1 5)))\r\n",
            b"a SELECT x (QRESYNC (1 2) QRESYNC (1 2))\r\n",
            b"a SELECT x (QRESYNC (1 2)\r\n",
        ];
        crate::testing::assert_refused(parse_command, refused);
    }

    #[test]
    fn must_fail() {
        let refused: &[&[u8]] = &[
            b"NOOP\r\n",
            b"+a NOOP\r\n",
            b"a NOOP extra\r\n",
            b"a FROB\r\n",
            b"a LOGIN alice\r\n",
            b"a LOGIN \"a\rb\" x\r\n",
            b"a SELECT\r\n",
            b"a FETCH 0 FLAGS\r\n",
            b"a FETCH 4294967296 FLAGS\r\n",
            b"a STATUS x ()\r\n",
            b"a APPEND x\r\n",
            b"a LIST (FOO) \"\" *\r\n",
            b"a ENABLE\r\n",
            b"a NOOP\x00\r\n",
            b"a COMPRESS\r\n",
            b"a COMPRESS GZIP\r\n",
            b"a COMPRESS DEFLATE 9\r\n",
            b"a UNAUTHENTICATE now\r\n",
            b"a COPY 1 a b\r\n",
            b"a COPY 1\r\n",
            b"a COPY Archive\r\n",
            b"a EXPUNGE 1\r\n",
            b"a UID EXPUNGE\r\n",
            b"a FETCH 1:x FLAGS\r\n",
            b"a FETCH 1 FLAGS extra\r\n",
            b"a STORE 1 FLAGS\r\n",
            b"a SEARCH\r\n",
            b"a UID BOGUS 1\r\n",
            b"a SORT (DATE) UTF-8\r\n",
        ];
        crate::testing::assert_refused(parse_command, refused);
    }

    #[test]
    fn list_extended() {
        let CommandBody::List(l) =
            ok(b"a LIST (SUBSCRIBED) \"\" (\"*\" %) RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n")
        else {
            panic!()
        };
        assert!(l.extended && l.select.subscribed && l.ret.children);
        assert_eq!(l.patterns, vec![b"*".to_vec(), b"%".to_vec()]);
        assert_eq!(
            l.ret.status,
            Some(vec![StatusItem::Messages, StatusItem::Size])
        );
        assert!(matches!(ok(b"a LIST \"\" *\r\n"), CommandBody::List(_)));
        let CommandBody::List(l) = ok(b"a LIST \"\" INBOX/%\r\n") else {
            panic!()
        };
        assert!(!l.extended);
    }

    #[test]
    fn multiappend_with_flags_and_dates() {
        let CommandBody::Append { mailbox, messages } = ok(
            b"a APPEND INBOX (\\Seen foo) \" 1-Feb-2024 10:00:00 +0100\" {2}\r\nhi {1+}\r\nx\r\n",
        ) else {
            panic!()
        };
        assert_eq!(mailbox, b"INBOX");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].flags, vec!["\\Seen", "foo"]);
        assert_eq!(messages[0].date, Some(1_706_778_000));
        assert_eq!(messages[1].data, AppendData::Literal(b"x".to_vec()));
    }

    /// RFC 4469 §5 `append-data =/ "CATENATE" SP "(" cat-part *(SP cat-part) ")"`,
    /// next to a literal in a MULTIAPPEND.
    #[test]
    fn append_with_catenate() {
        use super::super::cmd::catenate::CatPart;
        let CommandBody::Append { messages, .. } = ok(
            b"a APPEND Drafts (\\Draft) CATENATE (URL \"/INBOX/;UID=1\" TEXT {2+}\r\nhi) {1}\r\nx\r\n",
        ) else {
            panic!()
        };
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].flags, vec!["\\Draft"]);
        assert_eq!(
            messages[0].data,
            AppendData::Catenate(vec![
                CatPart::Url(b"/INBOX/;UID=1".to_vec()),
                CatPart::Text(b"hi".to_vec())
            ])
        );
        assert_eq!(messages[1].data, AppendData::Literal(b"x".to_vec()));
        let refused: &[&[u8]] = &[
            b"a APPEND INBOX CATENATE ()\r\n",
            b"a APPEND INBOX CATENATE\r\n",
            b"a APPEND INBOX CATENATE (TEXT \"x\")\r\n",
        ];
        crate::testing::assert_refused(parse_command, refused);
    }

    #[test]
    fn message_commands_are_parsed_whole() {
        let CommandBody::Message {
            uid: true,
            command: MessageCommand::Fetch(set, args),
        } = ok(b"a UID FETCH 1:* (FLAGS)\r\n")
        else {
            panic!()
        };
        assert_eq!(set, SequenceSet::parse(b"1:*").unwrap());
        assert_eq!(args.items, vec![super::super::cmd::fetch::Item::Flags]);
        // The target mailbox of COPY and MOVE is an astring (RFC 9051 §9).
        for (line, name) in [
            (&b"a COPY 1 Archive\r\n"[..], &b"Archive"[..]),
            (b"a MOVE 1 \"My box\"\r\n", b"My box"),
            (b"a UID COPY 1:3 {3+}\r\nabc\r\n", b"abc"),
        ] {
            let CommandBody::Message { command, .. } = ok(line) else {
                panic!()
            };
            assert!(
                matches!(&command, MessageCommand::Copy(_, m) | MessageCommand::Move(_, m) if m == name),
                "{command:?}"
            );
        }
        assert!(matches!(
            ok(b"a UID EXPUNGE 4:7\r\n"),
            CommandBody::Message {
                uid: true,
                command: MessageCommand::Expunge(Some(_))
            }
        ));
        assert!(matches!(
            ok(b"a EXPUNGE\r\n"),
            CommandBody::Message {
                uid: false,
                command: MessageCommand::Expunge(None)
            }
        ));
        // `$` stays a key of its own until the command runs (RFC 5182 §2.1).
        let CommandBody::Message {
            command: MessageCommand::Search(s),
            ..
        } = ok(b"a SEARCH RETURN (SAVE) $ UNSEEN\r\n")
        else {
            panic!()
        };
        assert!(
            matches!(&s.key, super::super::search::SearchKey::And(k) if k[0] == super::super::search::SearchKey::SavedResult)
        );
    }

    #[test]
    fn date_time() {
        assert_eq!(parse_date_time(b"01-Jan-1970 00:00:00 +0000"), Some(0));
        assert_eq!(parse_date_time(b" 1-Jan-1970 01:00:00 +0100"), Some(0));
        assert_eq!(parse_date_time(b"01-Foo-1970 00:00:00 +0000"), None);
        // Impossible days and zone minutes (RFC 9051 §9 `date-time`).
        assert_eq!(parse_date_time(b"31-Feb-2020 00:00:00 +0000"), None);
        assert_eq!(parse_date_time(b"30-Feb-2020 00:00:00 +0000"), None);
        assert_eq!(parse_date_time(b"29-Feb-2021 00:00:00 +0000"), None);
        assert_eq!(parse_date_time(b"31-Apr-2020 00:00:00 +0000"), None);
        assert_eq!(parse_date_time(b"01-Jan-2020 00:00:00 +0160"), None);
        assert_eq!(parse_date_time(b"01-Jan-2020 00:00:00 ++100"), None);
        assert!(parse_date_time(b"29-Feb-2020 00:00:00 +0000").is_some());
        assert!(parse_date_time(b"29-Feb-2000 00:00:00 +0000").is_some());
        assert!(parse_date_time(b"31-Dec-2020 00:00:00 +0059").is_some());
    }
}
