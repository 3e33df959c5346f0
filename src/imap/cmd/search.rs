//! SEARCH and UID SEARCH (RFC 9051 §6.4.4, RFC 3501 §6.4.4) with ESEARCH return
//! options (RFC 4731), SEARCHRES `SAVE` and `$` (RFC 5182), WITHIN `OLDER`/`YOUNGER`
//! (RFC 5032), CONDSTORE `MODSEQ` (RFC 7162 §3.1.5) and the SAVEDATE keys (RFC 8514).
//!
//! Keys that need the message content are evaluated only for messages the cheap keys
//! did not already decide (see [`super::super::search`]); those load one message at a time.

use crate::contracts::{MailboxId, ModSeq, Uid};
use std::collections::BTreeSet;

use super::super::grammar::{MAX_DEPTH, Parser, R, Syntax};
use super::super::response::{Code, ImapError, Status};
use super::super::search::{
    self, Candidate, Content, Date, DateCmp, IndexHits, Return, Scope, SearchKey, SeqBound, SeqSet,
};
use super::super::sequence::{Bound, SequenceSet};
use super::super::session::{Outcome, Session, State};
use super::fetch::mod_sequence;
use super::partial::{self, Range};
use crate::store::{Listed, Loaded, SystemFlags, Want};

/// A parsed SEARCH command (RFC 9051 §9 `search`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchArgs {
    /// `RETURN (...)`: `Some` selects the ESEARCH response (RFC 4731 §3.1).
    pub ret: Option<Return>,
    /// `SAVE` (RFC 5182 §2.2).
    pub save: bool,
    /// The CHARSET the client named, upper-cased.
    pub charset: Option<String>,
    pub key: SearchKey,
}

/// Charsets we search in: UTF-8 and its subset US-ASCII (RFC 9051 §6.4.4).
const CHARSETS: &str = "US-ASCII UTF-8";

/// Whether a search CHARSET (upper-cased) is one of [`CHARSETS`].
pub(in super::super) fn charset_supported(charset: &str) -> bool {
    CHARSETS.split(' ').any(|c| c == charset)
}

/// `NO [BADCHARSET (...)]` (RFC 9051 §6.4.4, §7.1).
pub(in super::super) fn bad_charset() -> ImapError {
    ImapError::no(Code::BadCharset(CHARSETS.into()), "Unsupported charset")
}

/// A message a search matched, with what SORT may order it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in super::super) struct Hit {
    pub seq: u32,
    pub uid: Uid,
    pub modseq: ModSeq,
    pub internal_date: i64,
    pub size: u64,
}

impl Hit {
    fn new(seq: u32, m: &super::super::view::Msg, listed: Listed) -> Hit {
        Hit {
            seq,
            uid: m.uid,
            modseq: m.modseq,
            internal_date: listed.internal_date,
            size: listed.size,
        }
    }

    /// How a reply names this message: by UID in the UID form of the command, else by
    /// sequence number.
    pub(in super::super) fn number(&self, uid: bool) -> u32 {
        if uid { self.uid.0 } else { self.seq }
    }
}

/// Messages whose content a search reads in one call to the store, and the bytes
/// after which a call stops (one message at least): a few hops for a mailbox, and a
/// bounded amount in memory.
const CONTENT_BATCH: usize = 256;
const CONTENT_BYTES: usize = 1 << 20;

/// `date = date-text / DQUOTE date-text DQUOTE`, `date-text = date-day "-"
/// date-month "-" date-year`.
fn date(p: &mut Parser<'_>) -> R<Date> {
    let s = p.astring()?;
    let s = std::str::from_utf8(&s).map_err(|_| "bad date")?;
    let mut parts = s.split('-');
    let (Some(d), Some(m), Some(y), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("bad date".into());
    };
    let day: u32 = d
        .parse()
        .ok()
        .filter(|n| (1..=31).contains(n) && (1..=2).contains(&d.len()))
        .ok_or("bad date")?;
    let month = crate::util::month_from_name(m).ok_or("bad date")?;
    if y.len() != 4 {
        return Err("bad date".into());
    }
    let year: i64 = y.parse().map_err(|_| "bad date")?;
    Ok(Date::new(year, month, day))
}

/// A sequence set inside a search key as a [`SeqSet`]; `None` for `$`.
fn to_seqset(set: &SequenceSet) -> Option<SeqSet> {
    match set {
        SequenceSet::Saved => None,
        SequenceSet::Ranges(r) => {
            let b = |x: Bound| match x {
                Bound::Num(n) => SeqBound::Value(n),
                Bound::Star => SeqBound::Last,
            };
            Some(SeqSet(r.iter().map(|(x, y)| (b(*x), b(*y))).collect()))
        }
    }
}

fn nz_number(p: &mut Parser<'_>) -> R<u32> {
    let n = p.number()?;
    if n == 0 {
        return Err(Syntax::Expected("a non-zero number"));
    }
    Ok(n)
}

/// One `search-key` (RFC 9051 §9, RFC 3501 §9, RFC 5032, RFC 7162 §7, RFC 8514).
/// `$` (RFC 5182) is [`SearchKey::SavedResult`], resolved when the command runs.
fn key(p: &mut Parser<'_>, depth: usize) -> R<SearchKey> {
    if depth > MAX_DEPTH {
        return Err(Syntax::TooDeep("search keys"));
    }
    if p.peek() == Some(b'(') {
        p.eat(b'(');
        let mut keys = Vec::new();
        loop {
            keys.push(key(p, depth.saturating_add(1))?);
            if p.eat(b')') {
                return Ok(SearchKey::And(keys));
            }
            p.sp()?;
        }
    }
    if p.peek()
        .is_some_and(|b| b.is_ascii_digit() || b == b'*' || b == b'$')
    {
        // `$` as a key is the saved UIDs (RFC 5182 §2.1), not sequence numbers.
        return Ok(to_seqset(&p.sequence_set()?).map_or(SearchKey::SavedResult, SearchKey::SeqSet));
    }
    let word = p.atom()?.to_ascii_uppercase();
    let arg = |p: &mut Parser<'_>| -> R<Vec<u8>> {
        p.sp()?;
        p.astring()
    };
    let dt = |p: &mut Parser<'_>| -> R<Date> {
        p.sp()?;
        date(p)
    };
    let flag = |bit: u8, set: bool| SearchKey::Flag(bit, set);
    Ok(match word.as_slice() {
        b"ALL" => SearchKey::All,
        b"ANSWERED" => flag(SystemFlags::ANSWERED, true),
        b"DELETED" => flag(SystemFlags::DELETED, true),
        b"DRAFT" => flag(SystemFlags::DRAFT, true),
        b"FLAGGED" => flag(SystemFlags::FLAGGED, true),
        b"SEEN" => flag(SystemFlags::SEEN, true),
        b"UNANSWERED" => flag(SystemFlags::ANSWERED, false),
        b"UNDELETED" => flag(SystemFlags::DELETED, false),
        b"UNDRAFT" => flag(SystemFlags::DRAFT, false),
        b"UNFLAGGED" => flag(SystemFlags::FLAGGED, false),
        b"UNSEEN" => flag(SystemFlags::SEEN, false),
        b"NEW" => SearchKey::New,
        b"OLD" => SearchKey::Old,
        b"RECENT" => SearchKey::Recent,
        b"KEYWORD" | b"UNKEYWORD" => {
            p.sp()?;
            let k = String::from_utf8_lossy(p.atom()?).into_owned();
            SearchKey::Keyword(k, word.as_slice() == b"KEYWORD")
        }
        b"BCC" => SearchKey::header("Bcc", &arg(p)?),
        b"CC" => SearchKey::header("Cc", &arg(p)?),
        b"FROM" => SearchKey::header("From", &arg(p)?),
        b"TO" => SearchKey::header("To", &arg(p)?),
        b"SUBJECT" => SearchKey::header("Subject", &arg(p)?),
        b"HEADER" => {
            let name = arg(p)?;
            SearchKey::Header(name, arg(p)?)
        }
        b"BODY" => SearchKey::Body(arg(p)?),
        b"TEXT" => SearchKey::Text(arg(p)?),
        b"BEFORE" => SearchKey::Internal(DateCmp::Before, dt(p)?),
        b"ON" => SearchKey::Internal(DateCmp::On, dt(p)?),
        b"SINCE" => SearchKey::Internal(DateCmp::Since, dt(p)?),
        b"SENTBEFORE" => SearchKey::Sent(DateCmp::Before, dt(p)?),
        b"SENTON" => SearchKey::Sent(DateCmp::On, dt(p)?),
        b"SENTSINCE" => SearchKey::Sent(DateCmp::Since, dt(p)?),
        b"SAVEDBEFORE" => SearchKey::Saved(DateCmp::Before, dt(p)?),
        b"SAVEDON" => SearchKey::Saved(DateCmp::On, dt(p)?),
        b"SAVEDSINCE" => SearchKey::Saved(DateCmp::Since, dt(p)?),
        b"SAVEDATESUPPORTED" => SearchKey::SaveDateSupported,
        b"LARGER" => {
            p.sp()?;
            SearchKey::Larger(u64::from(p.number()?))
        }
        b"SMALLER" => {
            p.sp()?;
            SearchKey::Smaller(u64::from(p.number()?))
        }
        b"OLDER" => {
            p.sp()?;
            SearchKey::Older(u64::from(nz_number(p)?))
        }
        b"YOUNGER" => {
            p.sp()?;
            SearchKey::Younger(u64::from(nz_number(p)?))
        }
        b"UID" => {
            p.sp()?;
            to_seqset(&p.sequence_set()?).map_or(SearchKey::SavedResult, SearchKey::Uid)
        }
        b"NOT" => {
            p.sp()?;
            SearchKey::Not(Box::new(key(p, depth.saturating_add(1))?))
        }
        b"OR" => {
            p.sp()?;
            let a = key(p, depth.saturating_add(1))?;
            p.sp()?;
            let b = key(p, depth.saturating_add(1))?;
            SearchKey::Or(Box::new(a), Box::new(b))
        }
        b"MODSEQ" => {
            // `"MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer`
            // (RFC 7162 §7); we keep one modseq per message, so the entry is ignored.
            p.sp()?;
            if p.peek() == Some(b'"') {
                p.astring()?;
                p.sp()?;
                let t = p.atom()?.to_ascii_lowercase();
                if !matches!(t.as_slice(), b"priv" | b"shared" | b"all") {
                    return Err("bad MODSEQ entry type".into());
                }
                p.sp()?;
            }
            SearchKey::ModSeq(mod_sequence(p)?)
        }
        _ => return Err(Syntax::Unknown("search key")),
    })
}

/// `search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP
/// search-return-opt)] ")"` (RFC 4731 §3.1; RFC 5182 SAVE; RFC 5267 §3.2 for SORT,
/// §4.2 CONTEXT, §4.3 UPDATE; RFC 9394 §4 `PARTIAL range`), with the space after it.
/// `None` without RETURN; the bool is SAVE.
pub(in super::super) fn return_options(p: &mut Parser<'_>) -> R<Option<(Return, bool)>> {
    if !p.keyword("RETURN") {
        return Ok(None);
    }
    p.sp()?;
    let mut r = Return::default();
    let mut save = false;
    p.list_of(|p| {
        let o = p.atom()?.to_ascii_uppercase();
        match o.as_slice() {
            b"MIN" => r.min = true,
            b"MAX" => r.max = true,
            b"COUNT" => r.count = true,
            // RFC 9394 §3.1: "either one PARTIAL, one ALL, or neither".
            b"ALL" | b"PARTIAL" if r.all || r.partial.is_some() => {
                return Err("RETURN takes one PARTIAL or one ALL".into());
            }
            b"ALL" => r.all = true,
            b"PARTIAL" => {
                p.sp()?;
                r.partial = Some(Range::parse(p)?);
            }
            b"SAVE" => save = true,
            // RFC 5267 §4.3; CONTEXT (§4.2) is a hint servers may ignore, as we do.
            b"UPDATE" => r.update = true,
            b"CONTEXT" => {}
            _ => return Err(Syntax::Unknown("RETURN option")),
        }
        Ok(())
    })?;
    p.sp()?;
    Ok(Some((r, save)))
}

/// `search-key *(SP search-key)`, the last argument of its command: one key, or
/// their AND.
pub(in super::super) fn search_program(p: &mut Parser<'_>) -> R<SearchKey> {
    let mut keys = vec![key(p, 1)?];
    while p.eat(b' ') {
        keys.push(key(p, 1)?);
    }
    Ok(if keys.len() == 1 {
        keys.pop().unwrap_or(SearchKey::All)
    } else {
        SearchKey::And(keys)
    })
}

/// `search = "SEARCH" [search-return-opts] SP search-program` (RFC 4731 §3.1,
/// RFC 9051 §9), after `SEARCH `, up to the CRLF.
pub fn search_args(p: &mut Parser<'_>) -> R<SearchArgs> {
    let (ret, save) = match return_options(p)? {
        Some((r, save)) => (Some(r), save),
        None => (None, false),
    };
    let mut charset = None;
    if p.keyword("CHARSET") {
        p.sp()?;
        charset = Some(String::from_utf8_lossy(&p.astring()?).to_ascii_uppercase());
        p.sp()?;
    }
    let key = search_program(p)?;
    Ok(SearchArgs {
        ret,
        save,
        charset,
        key,
    })
}

/// What [`search::matches`] knows of one message: the session's view of it (flags,
/// modseq) and the store's record (dates, size).
fn candidate<'a>(
    seq: u32,
    m: &'a super::super::view::Msg,
    listed: Listed,
    recent: bool,
) -> Candidate<'a> {
    Candidate {
        seq,
        uid: m.uid.0,
        flags: m.flags,
        keywords: &m.keywords,
        recent,
        internal_date: listed.internal_date,
        save_date: Some(listed.save_date),
        size: listed.size,
        modseq: m.modseq,
    }
}

/// The mod-sequence a SEARCH or SORT reply carries when its program has a MODSEQ key:
/// the highest of the messages it returns (RFC 7162 §3.1.5; for SORT §3.1.6); `None`
/// without such a key or when nothing is returned.
pub(in super::super) fn reply_modseq(uses_modseq: bool, returned: &[Hit]) -> Option<ModSeq> {
    returned
        .iter()
        .map(|h| h.modseq)
        .max()
        .filter(|_| uses_modseq)
}

impl Session {
    /// SEARCH / UID SEARCH (RFC 9051 §6.4.4, §6.4.9).
    pub(in super::super) async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        mut a: SearchArgs,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let charset = a.charset.as_deref().unwrap_or("US-ASCII");
        let (hits, update) = match self.run_program(tag, &mut a.key, a.ret, charset).await {
            Ok(run) => run,
            Err(e) => {
                // RFC 5182 §2.1: a failed SEARCH SAVE leaves `$` empty.
                if a.save
                    && let State::Selected(_, view) = &mut self.state
                {
                    view.saved.clear();
                }
                return Err(e);
            }
        };
        let uses_modseq = a.key.uses_modseq();
        let rev2 = self.enabled.rev2;
        if update {
            // RFC 5267 §4.3: the context keeps the program and the results, in mailbox
            // order.
            let uids = hits.iter().map(|h| h.uid.0).collect();
            self.open_context(tag, uid, &a.key, None, uids, out);
        }
        let (_, view) = self.state.selected_mut()?;
        let numbers: Vec<u32> = hits.iter().map(|h| h.number(uid)).collect();
        // What the command returns (RFC 9394 §3.2): SAVE keeps it, and with MODSEQ the
        // reply carries its highest mod-sequence (RFC 7162 §3.1.5).
        let returned = partial::returned(&a.ret.unwrap_or_default(), &hits);
        let modseq = reply_modseq(uses_modseq, &returned);
        if a.save {
            view.saved = returned.iter().map(|h| h.uid).collect();
        }
        let only_save = a.save && a.ret.is_some_and(|r| r == Return::default());
        match a.ret {
            // RFC 5182 §2.4: SAVE alone gives no ESEARCH response.
            Some(_) if only_save => {}
            Some(r) => search::write_esearch(Some(tag.as_bytes()), uid, &numbers, r, modseq, out),
            // RFC 9051 §6.4.4: rev2 answers with ESEARCH (ALL).
            None if rev2 => search::write_esearch(
                Some(tag.as_bytes()),
                uid,
                &numbers,
                Return::default(),
                modseq,
                out,
            ),
            None => search::write_search("SEARCH", &numbers, modseq, out),
        }
        Ok(Outcome::Done(Status::ok("SEARCH completed")))
    }

    /// The SEARCHRES result `$` (RFC 5182), empty when nothing is selected.
    fn saved_result(&self) -> Vec<u32> {
        match &self.state {
            State::Selected(_, v) => v.saved.iter().map(|u| u.0).collect(),
            _ => Vec::new(),
        }
    }

    /// What the full-text index says of the string keys of `key` in `mailbox`; `None`
    /// when the key has none, the index is turned off, or it cannot be read (the search
    /// then reads every message, as without an index).
    async fn index_hits(&self, mailbox: MailboxId, key: &SearchKey) -> Option<IndexHits> {
        if self.ctx.config.store.full_text_index == crate::config::FullTextIndex::Off {
            return None;
        }
        let mut queries = Vec::new();
        key.text_queries(&mut queries);
        if queries.is_empty() {
            return None;
        }
        let store = &self.store();
        match store.text_lookup(mailbox, queries.clone()).await {
            Ok(answer) => Some(IndexHits {
                upto: answer.upto,
                keys: queries
                    .into_iter()
                    .zip(answer.maybe)
                    .filter_map(|(q, uids)| Some((q, uids?)))
                    .collect(),
            }),
            Err(e) => {
                log::warn!(
                    "search: the full-text index cannot be read ({e}); reading the messages"
                );
                None
            }
        }
    }

    /// How SEARCH, SORT and THREAD run their search program, once parsed:
    /// - `$` becomes the saved result as it is now (RFC 5182 §2.1);
    /// - `RETURN (UPDATE)` has its tag checked (RFC 5267 §4.3);
    /// - the charset must be one we search in;
    /// - a MODSEQ key enables CONDSTORE (RFC 7162 §3.1).
    ///
    /// Then the matching messages in sequence order ([`Session::search_hits`]), and
    /// whether a context is asked for.
    pub(in super::super) async fn run_program(
        &mut self,
        tag: &str,
        key: &mut SearchKey,
        ret: Option<Return>,
        charset: &str,
    ) -> Result<(Vec<Hit>, bool), ImapError> {
        key.resolve_saved(&self.saved_result());
        let update = ret.is_some_and(|r| r.update);
        if update {
            self.check_update_tag(tag)?;
        }
        if !charset_supported(charset) {
            return Err(bad_charset());
        }
        if key.uses_modseq() {
            self.enabled.condstore = true;
        }
        Ok((self.search_hits(key).await?, update))
    }

    /// The messages of the selected mailbox that `key` matches, in sequence order
    /// (SEARCH, and SORT and THREAD before they order them). Messages expunged
    /// elsewhere are skipped (RFC 2180 §4.3).
    pub(in super::super) async fn search_hits(
        &self,
        key: &SearchKey,
    ) -> Result<Vec<Hit>, ImapError> {
        self.search_hits_in(key, None).await
    }

    /// [`Session::search_hits`] among the messages `only` names (UIDs), or all of them;
    /// the others still count for `*` and sequence numbers. A search context evaluates
    /// the messages that changed this way (RFC 5267 §4.3, `imap::cmd::context`).
    pub(in super::super) async fn search_hits_in(
        &self,
        key: &SearchKey,
        only: Option<&BTreeSet<u32>>,
    ) -> Result<Vec<Hit>, ImapError> {
        let rev1 = !self.enabled.rev2;
        let store = self.store().clone();
        let (_, view) = self.state.selected()?;
        // A sequence number past EXISTS matches nothing: OK with no match, as Dovecot
        // and clients expect (RFC 9051 §6.4.4 defines the key as a set of messages).
        if key.depth() > MAX_DEPTH {
            return Err(Syntax::TooDeep("search keys").into());
        }
        // RFC 2180 §4.3: messages expunged elsewhere are skipped (the view marks the
        // ones it knows of; the store drops the rest).
        let picked: Vec<(u32, &super::super::view::Msg)> = view
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.expunged)
            .map(|(i, m)| (u32::try_from(i.saturating_add(1)).unwrap_or(u32::MAX), m))
            .filter(|(_, m)| only.is_none_or(|o| o.contains(&m.uid.0)))
            .collect();
        // The dates and sizes of every message only when a key reads them; otherwise
        // only the matches' (at the end), so that a search the view's flags or the
        // full-text index answer reads no other message record.
        let listed_first = key.needs_listing();
        let listed = if listed_first {
            let uids: Vec<Uid> = picked.iter().map(|(_, m)| m.uid).collect();
            store.listed(view.mailbox, uids).await?
        } else {
            Vec::new()
        };
        let hits_of_index = self.index_hits(view.mailbox, key).await;
        let scope = Scope {
            exists: view.exists(),
            max_uid: view.last_uid().0,
            now: crate::store::now(),
            index: hits_of_index.as_ref(),
        };
        let recent = |m: &super::super::view::Msg| rev1 && view.recent.contains(&m.uid);
        let mut hits: Vec<Hit> = Vec::new();
        // Messages whose answer needs their content: (seq, view message, listing).
        let mut undecided: Vec<(u32, &super::super::view::Msg, Listed)> = Vec::new();
        for (i, (seq, m)) in picked.iter().enumerate() {
            // Without `listed_first` no key reads the listing: a placeholder stands in.
            let l = if listed_first {
                match listed.get(i) {
                    Some(Some(l)) => *l,
                    _ => continue, // gone from the store
                }
            } else {
                Listed::default()
            };
            let cand = candidate(*seq, m, l, recent(m));
            match search::matches(key, &cand, &scope, None) {
                Some(true) => hits.push(Hit::new(*seq, m, l)),
                Some(false) => {}
                None => undecided.push((*seq, m, l)),
            }
        }
        // The content of the undecided ones, read a batch at a time.
        let structure = key.needs_structure();
        // Only what the keys can look at: BODY and TEXT need the whole message and its
        // structure, header keys only the header, and the trace prefix only keys that
        // can see its fields.
        let want = Want {
            meta: structure,
            bytes: true,
            skip_trace: !key.needs_trace(),
            header_only: !structure,
        };
        let uids: Vec<Uid> = undecided.iter().map(|(_, m, _)| m.uid).collect();
        let batches = (CONTENT_BATCH, CONTENT_BYTES);
        super::load_in_batches(
            &store,
            view.mailbox,
            &uids,
            want,
            batches,
            |i, _, loaded| {
                let Some(&(seq, m, l)) = undecided.get(i) else {
                    return Ok(());
                };
                let Some(Loaded {
                    meta,
                    raw: Some(raw),
                    ..
                }) = loaded
                else {
                    return Ok(());
                };
                let undecodable = || {
                    ImapError::Internal(format!(
                        "undecodable structure of {}/{}",
                        view.mailbox, m.uid
                    ))
                };
                // BODY/TEXT keys: the whole message and its structure. Header keys: only
                // the header came (after the trace prefix when the keys can see it), so
                // all of it counts as header, the prefix included.
                let (full, prefix_len, header_len) = match &meta {
                    Some((s, p)) => {
                        let f = super::super::fetch::structure(s, Some(&raw), *p)
                            .ok_or_else(undecodable)?;
                        let len = f.header_len;
                        (Some(f), *p, len)
                    }
                    None => (None, 0, raw.len() as u64),
                };
                let content = Content {
                    raw: &raw,
                    prefix_len,
                    header_len,
                    meta: full.as_ref(),
                };
                let cand = candidate(seq, m, l, recent(m));
                if search::matches(key, &cand, &scope, Some(&content)).unwrap_or(false) {
                    hits.push(Hit::new(seq, m, l));
                }
                Ok(())
            },
        )
        .await?;
        hits.sort_unstable_by_key(|h| h.seq);
        if !listed_first && !hits.is_empty() {
            // The matches' dates and sizes (SORT orders by them); a match gone from the
            // store meanwhile is dropped, as above.
            let uids: Vec<Uid> = hits.iter().map(|h| h.uid).collect();
            let listed = store.listed(view.mailbox, uids).await?;
            hits = hits
                .into_iter()
                .zip(listed)
                .filter_map(|(h, l)| {
                    let l = l?;
                    Some(Hit {
                        internal_date: l.internal_date,
                        size: l.size,
                        ..h
                    })
                })
                .collect();
        }
        Ok(hits)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::imap::grammar::parse_whole;

    fn k(s: &str) -> SearchKey {
        let mut key = parse_whole(s.as_bytes(), search_args)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .key;
        key.resolve_saved(&[7, 9]);
        key
    }

    #[test]
    fn search_keys_parse() {
        assert_eq!(k("ALL"), SearchKey::All);
        assert_eq!(
            k("OR SEEN (FLAGGED NOT DRAFT)"),
            SearchKey::Or(
                Box::new(SearchKey::Flag(SystemFlags::SEEN, true)),
                Box::new(SearchKey::And(vec![
                    SearchKey::Flag(SystemFlags::FLAGGED, true),
                    SearchKey::Not(Box::new(SearchKey::Flag(SystemFlags::DRAFT, true)))
                ]))
            )
        );
        assert_eq!(
            k("SINCE \"1-Feb-2024\""),
            SearchKey::Internal(DateCmp::Since, Date::new(2024, 2, 1))
        );
        assert_eq!(k("$"), SearchKey::Uid(SeqSet::from_numbers(&[7, 9])));
        assert_eq!(
            k("MODSEQ \"/flags/\\\\draft\" all 620162338"),
            SearchKey::ModSeq(ModSeq(620_162_338))
        );
        assert_eq!(k("YOUNGER 60"), SearchKey::Younger(60));
        assert_eq!(
            k("SUBJECT {3}\r\nfoo"),
            SearchKey::Header(b"Subject".to_vec(), b"foo".to_vec())
        );
        let a = parse_whole(b"RETURN (partial -1:-100 COUNT) UNSEEN", search_args).unwrap();
        assert!(
            a.ret
                .is_some_and(|r| r.count && r.partial.is_some() && !r.all)
        );
        let a = parse_whole(b"RETURN (MIN COUNT SAVE) CHARSET utf-8 1:*", search_args).unwrap();
        assert!(a.save);
        assert_eq!(a.charset.as_deref(), Some("UTF-8"));
        assert_eq!(
            a.ret,
            Some(Return {
                min: true,
                count: true,
                ..Return::default()
            })
        );
    }

    #[test]
    fn search_keys_must_fail() {
        let refused: &[&str] = &[
            "",
            "FOO",
            "SINCE 1-Foo-2024",
            "SINCE 2024-02-01",
            "OR SEEN",
            "(SEEN",
            "LARGER x",
            "OLDER 0",
            "RETURN (BOGUS) ALL",
            "RETURN (PARTIAL 1:5 ALL) ALL",
            "RETURN (ALL PARTIAL 1:5) ALL",
            "RETURN (PARTIAL 1:5 PARTIAL 6:9) ALL",
            "RETURN (ALL ALL) ALL",
            "RETURN (PARTIAL) ALL",
            "RETURN (PARTIAL 0:5) ALL",
            "RETURN (PARTIAL -1:5) ALL",
            "RETURN (PARTIAL 5) ALL",
            "RETURN (PARTIAL \"1:5\") ALL",
            "RETURN (PARTIAL 1:4294967296) ALL",
            "ALL extra)",
        ];
        crate::testing::assert_refused(
            |bad: &str| parse_whole(bad.as_bytes(), search_args),
            refused,
        );
        let deep = "NOT ".repeat(100) + "ALL";
        assert!(parse_whole(deep.as_bytes(), search_args).is_err());
    }
}
