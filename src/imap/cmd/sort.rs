//! SORT and UID SORT (RFC 5256 §3) with ESORT (RFC 5267 §3.2), PARTIAL (RFC 9394
//! §3.1) and the DISPLAYFROM / DISPLAYTO criteria (RFC 5957): grammar and handler.
//!
//! The messages are those SEARCH would return ([`Session::search_hits`]); their order
//! comes from the criteria, then the sequence number (RFC 5256 §3: "the message
//! sequence number is the final tie-breaker"). Only criteria that read the header
//! load it ([`Session::header_data`]), so `SORT (ARRIVAL)` and `SORT (SIZE)` need the
//! listing alone.

use std::cmp::Ordering;

use super::super::grammar::{Parser, R, Syntax};
use super::super::response::{ImapError, Status};
use super::super::search::{Return, SearchKey, write_esearch, write_search};
use super::super::session::{Outcome, Session};
use super::partial;
use super::search::{Hit, reply_modseq, return_options, search_program};
use super::{HeaderData, HeaderNeed};

/// A sort key (RFC 5256 §3 `sort-key`, RFC 5957 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

impl SortKey {
    /// Whether the key reads the message header (ARRIVAL and SIZE do not).
    fn needs_header(self) -> bool {
        !matches!(self, SortKey::Arrival | SortKey::Size)
    }
}

/// `sort-criterion = ["REVERSE" SP] sort-key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Criterion {
    pub reverse: bool,
    pub key: SortKey,
}

/// A parsed SORT command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortArgs {
    /// `RETURN (...)`: ESORT (RFC 5267 §3.2) answers with ESEARCH.
    pub ret: Option<Return>,
    pub criteria: Vec<Criterion>,
    /// The charset of the search strings, upper-cased (mandatory in SORT).
    pub charset: String,
    pub key: SearchKey,
}

/// `sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria SP
/// search-charset SP search-program` (RFC 5256 §5, RFC 5267 §3.2): the text after
/// `SORT `, up to the CRLF.
pub fn sort_args(p: &mut Parser<'_>) -> R<SortArgs> {
    let ret = match return_options(p)? {
        Some((_, true)) => return Err("SAVE is not supported with SORT".into()),
        Some((r, false)) => Some(r),
        None => None,
    };
    let criteria = p.nonempty_list_of(|p| {
        let mut word = p.atom()?.to_ascii_uppercase();
        let reverse = word == b"REVERSE";
        if reverse {
            p.sp()?;
            word = p.atom()?.to_ascii_uppercase();
        }
        let key = match word.as_slice() {
            b"ARRIVAL" => SortKey::Arrival,
            b"CC" => SortKey::Cc,
            b"DATE" => SortKey::Date,
            b"FROM" => SortKey::From,
            b"SIZE" => SortKey::Size,
            b"SUBJECT" => SortKey::Subject,
            b"TO" => SortKey::To,
            b"DISPLAYFROM" => SortKey::DisplayFrom,
            b"DISPLAYTO" => SortKey::DisplayTo,
            _ => return Err(Syntax::Unknown("sort key")),
        };
        Ok(Criterion { reverse, key })
    })?;
    p.sp()?;
    let charset = String::from_utf8_lossy(&p.astring()?).to_ascii_uppercase();
    p.sp()?;
    let key = search_program(p)?;
    Ok(SortArgs {
        ret,
        criteria,
        charset,
        key,
    })
}

/// Compares two messages by one criterion (RFC 5256 §3; strings with
/// `i;ascii-casemap`, §2.2: [`HeaderData`] keeps them upper-cased).
fn compare(key: SortKey, a: (&Hit, &HeaderData), b: (&Hit, &HeaderData)) -> Ordering {
    let (ha, da) = a;
    let (hb, db) = b;
    match key {
        SortKey::Arrival => ha.internal_date.cmp(&hb.internal_date),
        SortKey::Size => ha.size.cmp(&hb.size),
        SortKey::Date => da
            .date
            .unwrap_or(ha.internal_date)
            .cmp(&db.date.unwrap_or(hb.internal_date)),
        SortKey::Subject => da.subject.cmp(&db.subject),
        SortKey::From => da.from.cmp(&db.from),
        SortKey::To => da.to.cmp(&db.to),
        SortKey::Cc => da.cc.cmp(&db.cc),
        SortKey::DisplayFrom => da.display_from.cmp(&db.display_from),
        SortKey::DisplayTo => da.display_to.cmp(&db.display_to),
    }
}

impl Session {
    /// `hits` (as [`Session::search_hits`] gives them) in the order of `criteria`, the
    /// sequence number last (RFC 5256 §3). Also what a SORT context is kept in (RFC
    /// 5267 §4.3, `imap::cmd::context`).
    pub(in super::super) async fn sort_hits(
        &mut self,
        hits: Vec<Hit>,
        criteria: &[Criterion],
    ) -> Result<Vec<Hit>, ImapError> {
        let data = if criteria.iter().any(|c| c.key.needs_header()) {
            self.header_data(&hits, HeaderNeed::SortKeys).await?
        } else {
            let none = std::sync::Arc::new(HeaderData::default());
            vec![none; hits.len()]
        };
        let mut order: Vec<usize> = (0..hits.len()).collect();
        order.sort_by(|&i, &j| {
            let (Some(hi), Some(hj), Some(di), Some(dj)) =
                (hits.get(i), hits.get(j), data.get(i), data.get(j))
            else {
                return Ordering::Equal;
            };
            for c in criteria {
                let o = compare(c.key, (hi, di), (hj, dj));
                let o = if c.reverse { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            hi.seq.cmp(&hj.seq)
        });
        Ok(order.iter().filter_map(|&i| hits.get(i)).copied().collect())
    }

    /// SORT / UID SORT (RFC 5256 §3, RFC 5267 §3.2, RFC 5957).
    pub(in super::super) async fn sort(
        &mut self,
        tag: &str,
        uid: bool,
        mut a: SortArgs,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let (hits, update) = self.run_program(tag, &mut a.key, a.ret, &a.charset).await?;
        let sorted = self.sort_hits(hits, &a.criteria).await?;
        if update {
            // RFC 5267 §4.3: the context keeps the program, the order and the results.
            let uids = sorted.iter().map(|h| h.uid.0).collect();
            self.open_context(tag, uid, &a.key, Some(a.criteria.clone()), uids, out);
        }
        let numbers: Vec<u32> = sorted.iter().map(|h| h.number(uid)).collect();
        // RFC 7162 §3.1.6: with a MODSEQ key the reply carries the highest mod-sequence
        // of the messages it returns (MIN and MAX are first and last in sort order).
        let modseq = if a.key.uses_modseq() {
            let returned = partial::returned(&a.ret.unwrap_or_default(), &sorted);
            reply_modseq(true, &returned)
        } else {
            None
        };
        match a.ret {
            // RFC 5267 §3.2, RFC 9394 §3.1: PARTIAL pages the results in sort order.
            Some(r) => write_esearch(Some(tag.as_bytes()), uid, &numbers, r, modseq, out),
            None => write_search("SORT", &numbers, modseq, out),
        }
        Ok(Outcome::Done(Status::ok("SORT completed")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::imap::grammar::parse_whole;

    #[test]
    fn sort_args_parse() {
        let a = parse_whole(b"(REVERSE DATE subject) UTF-8 ALL", sort_args).unwrap();
        assert_eq!(
            a.criteria,
            vec![
                Criterion {
                    reverse: true,
                    key: SortKey::Date
                },
                Criterion {
                    reverse: false,
                    key: SortKey::Subject
                }
            ]
        );
        assert_eq!(a.charset, "UTF-8");
        assert_eq!(a.key, SearchKey::All);
        assert_eq!(a.ret, None);
        let a = parse_whole(
            b"RETURN (MIN COUNT) (DISPLAYFROM) US-ASCII SEEN UNDELETED",
            sort_args,
        )
        .unwrap();
        assert_eq!(
            a.ret,
            Some(Return {
                min: true,
                count: true,
                ..Return::default()
            })
        );
        assert!(matches!(a.key, SearchKey::And(_)));
    }

    #[test]
    fn sort_args_must_fail() {
        let refused: &[&[u8]] = &[
            b"DATE UTF-8 ALL",
            b"() UTF-8 ALL",
            b"(DATE) ALL",
            b"(REVERSE) UTF-8 ALL",
            b"(BOGUS) UTF-8 ALL",
            b"(DATE) UTF-8",
            b"RETURN (SAVE) (DATE) UTF-8 ALL",
        ];
        crate::testing::assert_refused(|a: &[u8]| parse_whole(a, sort_args), refused);
    }
}
