//! SEARCH evaluation (RFC 3501 §6.4.4, RFC 9051 §6.4.4) with CONDSTORE `MODSEQ`
//! (RFC 7162 §3.1.5), WITHIN `OLDER`/`YOUNGER` (RFC 5032), SAVEDATE keys (RFC 8514),
//! and ESEARCH results (RFC 4731, RFC 9051 §7.3.4).
//!
//! Evaluation is three-valued so that cheap keys never load a body: [`matches`] first
//! runs without the message content and answers `None` only when a key that needs the
//! header or body decides the result; the session then loads the bytes and calls it
//! again with [`Content`].
//!
//! String keys are case-insensitive substring matches (RFC 3501 §6.4.4): on the raw
//! bytes with ASCII case folding, and on the decoded text (RFC 2047 words in header
//! fields; base64/quoted-printable and the charset of text parts) with Unicode
//! lower-casing.

use super::fetch::days_from_civil;
use crate::contracts::ModSeq;
use crate::mime::text::{self, TextKind};
use crate::mime::{MessageMeta, header_fields};
use crate::store::SystemFlags;
use crate::store::fts::TextQuery;

/// One side of a sequence range: a number or `*` (RFC 3501 §9 `seq-number`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqBound {
    Value(u32),
    /// `*`: the largest number in use (the last sequence number or the highest UID).
    Last,
}

/// A sequence set (RFC 3501 §9 `sequence-set`): ranges in any order, `a:b` = `b:a`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeqSet(pub Vec<(SeqBound, SeqBound)>);

impl SeqSet {
    /// A set of single numbers (for example a saved `$` result, RFC 5182).
    pub fn from_numbers(numbers: &[u32]) -> SeqSet {
        SeqSet(
            numbers
                .iter()
                .map(|&n| (SeqBound::Value(n), SeqBound::Value(n)))
                .collect(),
        )
    }

    /// Whether `n` is in the set, `*` standing for `last`. With UIDs, `n:*` includes
    /// the highest UID even when `n` is larger (RFC 3501 §6.4.8).
    pub fn contains(&self, n: u32, last: u32) -> bool {
        let value = |b: SeqBound| match b {
            SeqBound::Value(v) => v,
            SeqBound::Last => last,
        };
        self.0.iter().any(|&(a, b)| {
            let (a, b) = (value(a), value(b));
            a.min(b) <= n && n <= a.max(b)
        })
    }
}

/// A calendar date, as search keys carry it (RFC 3501 §9 `date`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Days since 1970-01-01.
    pub days: i64,
}

impl Date {
    pub fn new(year: i64, month: u32, day: u32) -> Date {
        Date {
            days: days_from_civil(year, month, day),
        }
    }

    /// The UTC date of a unix time.
    pub fn of_unix(t: i64) -> Date {
        Date {
            days: t.div_euclid(86_400),
        }
    }
}

/// How a date key compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateCmp {
    /// Strictly before the day.
    Before,
    /// On the day.
    On,
    /// On or after the day.
    Since,
}

impl DateCmp {
    fn test(self, day: Date, key: Date) -> bool {
        match self {
            DateCmp::Before => day < key,
            DateCmp::On => day == key,
            DateCmp::Since => day >= key,
        }
    }
}

/// A search key (RFC 9051 §6.4.4), as the grammar parses it (`cmd::search::search_program`);
/// FROM/TO/CC/BCC/SUBJECT are `Header` keys on those fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// Every key must match (consecutive keys, parentheses). Empty matches all.
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    All,
    /// Message sequence numbers.
    SeqSet(SeqSet),
    Uid(SeqSet),
    /// `$`, the result saved by SEARCH RETURN (SAVE) (RFC 5182 §2.1): UIDs, read when
    /// the command runs ([`SearchKey::resolve_saved`]); unresolved it matches nothing.
    SavedResult,
    /// A system flag bit ([`SystemFlags`]) set (`true`) or clear (`false`):
    /// ANSWERED/UNANSWERED, DELETED, DRAFT, FLAGGED, SEEN.
    Flag(u8, bool),
    /// KEYWORD (`true`) / UNKEYWORD (`false`); case-insensitive.
    Keyword(String, bool),
    /// rev1 only: RECENT, NEW (= RECENT UNSEEN), OLD (= NOT RECENT).
    Recent,
    New,
    Old,
    /// RFC822.SIZE strictly larger / smaller.
    Larger(u64),
    Smaller(u64),
    /// BEFORE/ON/SINCE on the INTERNALDATE's date (UTC).
    Internal(DateCmp, Date),
    /// SENTBEFORE/SENTON/SENTSINCE on the Date header's date, as written (time and zone
    /// ignored); a message without a usable Date header uses its INTERNALDATE.
    Sent(DateCmp, Date),
    /// SAVEDBEFORE/SAVEDON/SAVEDSINCE (RFC 8514 §4.3) on the save date.
    Saved(DateCmp, Date),
    /// SAVEDATESUPPORTED (RFC 8514): every message, since every mailbox keeps it.
    SaveDateSupported,
    /// HEADER name value; an empty value matches every message with the field.
    Header(Vec<u8>, Vec<u8>),
    /// BODY: the text after the top-level header.
    Body(Vec<u8>),
    /// TEXT: header or body.
    Text(Vec<u8>),
    /// MODSEQ (RFC 7162 §3.1.5): modseq >= n.
    ModSeq(ModSeq),
    /// OLDER n / YOUNGER n (RFC 5032): INTERNALDATE more than / at most n seconds ago.
    Older(u64),
    Younger(u64),
}

impl SearchKey {
    /// Replaces every `$` with the UIDs of the saved result (RFC 5182 §2.1: the
    /// result as it is when the command runs).
    pub fn resolve_saved(&mut self, saved: &[u32]) {
        match self {
            SearchKey::SavedResult => *self = SearchKey::Uid(SeqSet::from_numbers(saved)),
            SearchKey::And(keys) => keys.iter_mut().for_each(|k| k.resolve_saved(saved)),
            SearchKey::Or(a, b) => {
                a.resolve_saved(saved);
                b.resolve_saved(saved);
            }
            SearchKey::Not(k) => k.resolve_saved(saved),
            _ => {}
        }
    }

    /// FROM/TO/CC/BCC/SUBJECT as a header key.
    pub fn header(name: &str, value: &[u8]) -> SearchKey {
        SearchKey::Header(name.as_bytes().to_vec(), value.to_vec())
    }

    /// Whether the key mentions MODSEQ (the ESEARCH/SEARCH reply then carries the
    /// highest modseq of the matches, RFC 7162 §3.1.5).
    pub fn uses_modseq(&self) -> bool {
        match self {
            SearchKey::ModSeq(_) => true,
            SearchKey::And(keys) => keys.iter().any(SearchKey::uses_modseq),
            SearchKey::Or(a, b) => a.uses_modseq() || b.uses_modseq(),
            SearchKey::Not(k) => k.uses_modseq(),
            _ => false,
        }
    }

    /// Whether evaluating reads the message's dates or size ([`Candidate::internal_date`],
    /// `save_date`, `size`): a search without such keys reads them only for its matches.
    /// SENTBEFORE and its kin fall back to the INTERNALDATE. Every key is named, so that
    /// a new one must say.
    pub fn needs_listing(&self) -> bool {
        match self {
            SearchKey::Larger(_)
            | SearchKey::Smaller(_)
            | SearchKey::Internal(..)
            | SearchKey::Sent(..)
            | SearchKey::Saved(..)
            | SearchKey::Older(_)
            | SearchKey::Younger(_) => true,
            SearchKey::And(keys) => keys.iter().any(SearchKey::needs_listing),
            SearchKey::Or(a, b) => a.needs_listing() || b.needs_listing(),
            SearchKey::Not(k) => k.needs_listing(),
            SearchKey::All
            | SearchKey::SeqSet(_)
            | SearchKey::Uid(_)
            | SearchKey::SavedResult
            | SearchKey::Flag(..)
            | SearchKey::Keyword(..)
            | SearchKey::Recent
            | SearchKey::New
            | SearchKey::Old
            | SearchKey::SaveDateSupported
            | SearchKey::Header(..)
            | SearchKey::Body(_)
            | SearchKey::Text(_)
            | SearchKey::ModSeq(_) => false,
        }
    }

    /// Whether evaluating needs the message's MIME structure (BODY and TEXT look into
    /// the decoded text parts); header keys need only the header's length.
    pub fn needs_structure(&self) -> bool {
        match self {
            SearchKey::Body(_) | SearchKey::Text(_) => true,
            SearchKey::And(keys) => keys.iter().any(SearchKey::needs_structure),
            SearchKey::Or(a, b) => a.needs_structure() || b.needs_structure(),
            SearchKey::Not(k) => k.needs_structure(),
            _ => false,
        }
    }

    /// Whether the answer may depend on the per-delivery trace fields that nestbox adds
    /// in front of the message (Return-Path, Delivered-To, Received): HEADER on one of
    /// them, or TEXT. Other keys are evaluated without rendering that prefix.
    pub fn needs_trace(&self) -> bool {
        const TRACE: [&[u8]; 3] = [b"return-path", b"delivered-to", b"received"];
        match self {
            SearchKey::Header(name, _) => TRACE.iter().any(|t| name.eq_ignore_ascii_case(t)),
            SearchKey::Text(_) => true,
            SearchKey::And(keys) => keys.iter().any(SearchKey::needs_trace),
            SearchKey::Or(a, b) => a.needs_trace() || b.needs_trace(),
            SearchKey::Not(k) => k.needs_trace(),
            _ => false,
        }
    }

    /// The index query for a string key, and whether the index's answer is exact
    /// (see [`IndexHits`]); `None` for other keys and for the empty string (which
    /// every text contains; HEADER with it asks whether the field exists).
    pub fn text_query(&self) -> Option<(TextQuery, bool)> {
        let (kinds, needle, exact) = self.text_scope()?;
        Some((
            TextQuery {
                kinds: kinds.to_vec(),
                needle: needle.to_vec(),
            },
            exact,
        ))
    }

    /// [`SearchKey::text_query`] without copies: the kinds, the string, exactness.
    fn text_scope(&self) -> Option<(&'static [TextKind], &[u8], bool)> {
        let (kinds, needle, exact): (&'static [TextKind], &Vec<u8>, bool) = match self {
            SearchKey::Body(s) => (&[TextKind::Body], s, true),
            SearchKey::Text(s) => (&text::TEXT_KINDS, s, true),
            SearchKey::Header(name, s) => match TextKind::of_field(name) {
                Some(k) => (k.alone(), s, true),
                // The header's words hold every field's: a superset.
                None => (text::HEADER_KINDS, s, false),
            },
            _ => return None,
        };
        if needle.is_empty() {
            return None;
        }
        Some((kinds, needle, exact && text::is_one_word(needle)))
    }

    /// The index queries of every string key in the program, without repeats.
    pub fn text_queries(&self, out: &mut Vec<TextQuery>) {
        match self {
            SearchKey::And(keys) => keys.iter().for_each(|k| k.text_queries(out)),
            SearchKey::Or(a, b) => {
                a.text_queries(out);
                b.text_queries(out);
            }
            SearchKey::Not(k) => k.text_queries(out),
            key => {
                if let Some((q, _)) = key.text_query()
                    && !out.contains(&q)
                {
                    out.push(q);
                }
            }
        }
    }

    /// Nesting depth (for a limit that answers BAD, PROTOCOL item 89).
    pub fn depth(&self) -> usize {
        let inner = match self {
            SearchKey::And(keys) => keys.iter().map(SearchKey::depth).max().unwrap_or(0),
            SearchKey::Or(a, b) => a.depth().max(b.depth()),
            SearchKey::Not(k) => k.depth(),
            _ => 0,
        };
        inner.saturating_add(1)
    }
}

/// What a message offers without loading its content.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub seq: u32,
    pub uid: u32,
    pub flags: SystemFlags,
    pub keywords: &'a [String],
    /// `\Recent` in this session (rev1).
    pub recent: bool,
    /// Unix seconds.
    pub internal_date: i64,
    pub save_date: Option<i64>,
    /// RFC822.SIZE.
    pub size: u64,
    pub modseq: ModSeq,
}

/// The mailbox-wide values keys refer to.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Number of messages (what `*` means in a sequence set).
    pub exists: u32,
    /// Highest UID in the mailbox (what `*` means in a UID set); 0 when empty.
    pub max_uid: u32,
    /// Now, unix seconds (OLDER/YOUNGER).
    pub now: i64,
    /// What the full-text index says of the string keys, when it was asked.
    pub index: Option<&'a IndexHits>,
}

/// The full-text index's answers for the string keys of one search (`store::fts`,
/// `mime::text`): per key, the UIDs of the messages that may match. A message indexed
/// and not among them does not match; one among them matches for sure when the string
/// is one word (the index then holds exactly what the texts hold), else its text is
/// read to confirm. Messages above `upto` are not indexed yet and are read.
#[derive(Debug, Clone, Default)]
pub struct IndexHits {
    pub upto: u32,
    pub keys: Vec<(TextQuery, Vec<u32>)>,
}

impl IndexHits {
    /// The index's answer for `key` on message `uid`, when it has a definite one.
    fn answer(&self, key: &SearchKey, uid: u32) -> Option<bool> {
        if uid > self.upto {
            return None;
        }
        // Per message and key: compared in place, nothing copied.
        let (kinds, needle, exact) = key.text_scope()?;
        let (_, uids) = self
            .keys
            .iter()
            .find(|(q, _)| q.needle == needle && q.kinds == kinds)?;
        match uids.binary_search(&uid) {
            Ok(_) if exact => Some(true),
            Ok(_) => None,
            Err(_) => Some(false),
        }
    }
}

/// A message's content: the full bytes (prefix + blob), the prefix length, the length
/// of the blob's header, and the blob's stored structure when the key needs it
/// ([`SearchKey::needs_structure`]; header keys do not).
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    pub raw: &'a [u8],
    pub prefix_len: usize,
    pub header_len: u64,
    pub meta: Option<&'a MessageMeta>,
}

impl Content<'_> {
    /// The top-level header: prefix + blob header.
    fn header(&self) -> &[u8] {
        let end = usize::try_from(self.header_len)
            .unwrap_or(usize::MAX)
            .saturating_add(self.prefix_len);
        self.raw.get(..end).unwrap_or(self.raw)
    }
}

/// Evaluates `key` for one message. `None` when the answer depends on the message
/// content and `content` is `None`: load it and ask again.
pub fn matches(
    key: &SearchKey,
    m: &Candidate<'_>,
    scope: &Scope<'_>,
    content: Option<&Content<'_>>,
) -> Option<bool> {
    let flag = |bit: u8| m.flags.has(bit);
    Some(match key {
        SearchKey::And(keys) => {
            let mut unknown = false;
            for k in keys {
                match matches(k, m, scope, content) {
                    Some(false) => return Some(false),
                    None => unknown = true,
                    Some(true) => {}
                }
            }
            if unknown {
                return None;
            }
            true
        }
        SearchKey::Or(a, b) => match (matches(a, m, scope, content), matches(b, m, scope, content))
        {
            (Some(true), _) | (_, Some(true)) => true,
            (Some(false), Some(false)) => false,
            _ => return None,
        },
        SearchKey::Not(k) => !matches(k, m, scope, content)?,
        SearchKey::All | SearchKey::SaveDateSupported => true,
        SearchKey::SeqSet(set) => set.contains(m.seq, scope.exists),
        SearchKey::Uid(set) => set.contains(m.uid, scope.max_uid),
        SearchKey::SavedResult => false,
        SearchKey::Flag(bit, set) => flag(*bit) == *set,
        SearchKey::Keyword(k, set) => {
            m.keywords.iter().any(|have| have.eq_ignore_ascii_case(k)) == *set
        }
        SearchKey::Recent => m.recent,
        SearchKey::New => m.recent && !flag(SystemFlags::SEEN),
        SearchKey::Old => !m.recent,
        SearchKey::Larger(n) => m.size > *n,
        SearchKey::Smaller(n) => m.size < *n,
        SearchKey::Internal(cmp, d) => cmp.test(Date::of_unix(m.internal_date), *d),
        SearchKey::Saved(cmp, d) => match m.save_date {
            Some(t) => cmp.test(Date::of_unix(t), *d),
            None => false,
        },
        SearchKey::ModSeq(n) => m.modseq >= *n,
        SearchKey::Older(n) => age(m, scope) > i128::from(*n),
        SearchKey::Younger(n) => age(m, scope) <= i128::from(*n),
        SearchKey::Sent(cmp, d) => {
            let c = content?;
            let day = sent_date(c.header()).unwrap_or(Date::of_unix(m.internal_date));
            cmp.test(day, *d)
        }
        SearchKey::Header(..) | SearchKey::Body(_) | SearchKey::Text(_) if content.is_none() => {
            return scope.index.and_then(|i| i.answer(key, m.uid));
        }
        SearchKey::Header(name, value) => header_matches(content?.header(), name, value),
        SearchKey::Body(s) => body_matches(content?, s),
        SearchKey::Text(s) => {
            let c = content?;
            text::header_texts(c.header(), &mut |t| contains_ci(t, s)) || body_matches(c, s)
        }
    })
}

fn age(m: &Candidate<'_>, scope: &Scope<'_>) -> i128 {
    i128::from(scope.now) - i128::from(m.internal_date)
}

/// The date of the Date header as written (RFC 3501 §6.4.4: time and zone ignored).
fn sent_date(header: &[u8]) -> Option<Date> {
    let field = header_fields(header).find(|f| f.name.eq_ignore_ascii_case(b"date"))?;
    let d = crate::mime::summary::sent_date(field.value)?;
    Some(Date::new(d.year, d.month, d.day))
}

/// HEADER name value: some field `name` whose value contains `value`, raw or decoded
/// (`mime::text`); with an empty value, some field `name`.
fn header_matches(header: &[u8], name: &[u8], value: &[u8]) -> bool {
    if value.is_empty() {
        return header_fields(header).any(|f| f.name.eq_ignore_ascii_case(name));
    }
    text::field_texts(header, name, &mut |t| contains_ci(t, value))
}

/// BODY: the texts of the body (`mime::text`).
fn body_matches(c: &Content<'_>, s: &[u8]) -> bool {
    // Callers give the structure whenever the key needs it (`needs_structure`).
    let Some(meta) = c.meta else {
        return false;
    };
    text::body_texts(c.raw, c.prefix_len, meta, &mut |t| contains_ci(t, s))
}

pub use crate::mime::text::contains_ci;

/// Numbers as a compressed sequence set (`1:3,5,7:9`), RFC 3501 §9 `sequence-set`.
/// Input in any order; duplicates are merged. Empty input writes nothing.
pub fn write_sequence_set(numbers: &[u32], out: &mut Vec<u8>) {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    write_runs(&sorted, out);
}

/// Writes `numbers` in the order given as a sequence set, each ascending run of
/// consecutive numbers as one `a:b` range (ESORT's ALL keeps the sort order, RFC 5267
/// §3.2; [`write_sequence_set`] sorts first).
pub fn write_runs(numbers: &[u32], out: &mut Vec<u8>) {
    let mut iter = numbers.iter().copied().peekable();
    let mut first = true;
    while let Some(start) = iter.next() {
        let mut end = start;
        while let Some(next) = end.checked_add(1)
            && iter.peek() == Some(&next)
        {
            iter.next();
            end = next;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(start.to_string().as_bytes());
        if end != start {
            out.push(b':');
            out.extend_from_slice(end.to_string().as_bytes());
        }
    }
}

/// Writes `* SEARCH n n n` (RFC 3501 §7.2.5) or, with `name` "SORT", `* SORT n n n`
/// (RFC 5256 §4), with `(MODSEQ m)` when the search used MODSEQ and matched something
/// (RFC 7162 §3.1.5), and the CRLF.
pub fn write_search(name: &str, numbers: &[u32], modseq: Option<ModSeq>, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("* {name}").as_bytes());
    for n in numbers {
        out.push(b' ');
        out.extend_from_slice(n.to_string().as_bytes());
    }
    if let Some(m) = modseq
        && !numbers.is_empty()
    {
        out.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// ESEARCH return options (RFC 4731 §3.1), and PARTIAL (RFC 9394 §3.1). All unset
/// means ALL (RFC 4731 §3.1: an empty RETURN () list is `ALL`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Return {
    pub min: bool,
    pub max: bool,
    pub count: bool,
    pub all: bool,
    /// `PARTIAL range`; never together with `all` (RFC 9394 §3.1).
    pub partial: Option<super::cmd::partial::Range>,
    /// `UPDATE` (RFC 5267 §4.3): keep the search as a context and report how its
    /// results change (`imap::cmd::context`). Alone it asks for no result data.
    pub update: bool,
}

impl Return {
    /// Whether no result data was asked for, so ALL is meant (RFC 4731 §3.1: an empty
    /// `RETURN ()`). UPDATE alone asks for none (RFC 5267 §4.3): its ESEARCH carries
    /// the tag only.
    pub fn means_all(&self) -> bool {
        !(self.min || self.max || self.count || self.all || self.partial.is_some() || self.update)
    }
}

/// Writes `* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [PARTIAL
/// (range set)] [MODSEQ m]` and the CRLF (RFC 4731 §3.1, RFC 9051 §7.3.4, RFC 9394
/// §3.1). `numbers` are the results in their order: mailbox order for SEARCH, sort
/// order for ESORT, where MIN and MAX are the first and last and ALL keeps the order
/// (RFC 5267 §3.2). MIN, MAX and ALL are left out when nothing matched; COUNT is
/// always sent when asked for, and PARTIAL too (`NIL` when its page is empty).
pub fn write_esearch(
    tag: Option<&[u8]>,
    uid: bool,
    numbers: &[u32],
    ret: Return,
    modseq: Option<ModSeq>,
    out: &mut Vec<u8>,
) {
    let ret = if ret.means_all() {
        Return { all: true, ..ret }
    } else {
        ret
    };
    out.extend_from_slice(b"* ESEARCH");
    if let Some(tag) = tag {
        out.extend_from_slice(b" (TAG ");
        super::fetch::string(tag, super::fetch::Options::default(), out);
        out.push(b')');
    }
    if uid {
        out.extend_from_slice(b" UID");
    }
    if ret.min
        && let Some(n) = numbers.first()
    {
        out.extend_from_slice(format!(" MIN {n}").as_bytes());
    }
    if ret.max
        && let Some(n) = numbers.last()
    {
        out.extend_from_slice(format!(" MAX {n}").as_bytes());
    }
    if ret.count {
        out.extend_from_slice(format!(" COUNT {}", numbers.len()).as_bytes());
    }
    if ret.all && !numbers.is_empty() {
        out.extend_from_slice(b" ALL ");
        write_runs(numbers, out);
    }
    if let Some(range) = ret.partial {
        // `ret-data-partial = "PARTIAL" SP "(" partial-range SP partial-results ")"`,
        // `partial-results = sequence-set / "NIL"` (RFC 9394 §4).
        out.extend_from_slice(b" PARTIAL (");
        range.write(out);
        let page = range.page(numbers);
        if page.is_empty() {
            out.extend_from_slice(b" NIL)");
        } else {
            out.push(b' ');
            write_runs(page, out);
            out.push(b')');
        }
    }
    if let Some(m) = modseq
        && !numbers.is_empty()
    {
        out.extend_from_slice(format!(" MODSEQ {m}").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
