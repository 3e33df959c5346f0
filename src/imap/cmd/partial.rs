//! PARTIAL (RFC 9394): paged SEARCH, SORT and UID FETCH results.
//!
//! - The `PARTIAL range` return option of SEARCH and SORT (§3.1, parsed with the other
//!   return options in `cmd::search::return_options`) and its `PARTIAL (range set)`
//!   ESEARCH return data (`search::write_esearch`). MIN, MAX and COUNT still describe
//!   every match; only the set is paged.
//! - Which results SAVE keeps and the MODSEQ return data describes ([`returned`], §3.2).
//! - The `PARTIAL` modifier of UID FETCH (§3.3, parsed in `cmd::fetch::fetch_args`):
//!   the page of the messages the command would otherwise answer.
//!
//! Results are numbered from 1 in their order (mailbox order for SEARCH and FETCH, sort
//! order for SORT); `-1` is the last one (§3.1).

use super::super::grammar::{Parser, R};
use super::super::search::Return;

/// `partial-range = partial-range-first / partial-range-last` (RFC 9394 §4): two
/// non-zero 32-bit numbers, both negative (`-1:-100`, counted from the last result) or
/// neither. `500:400` is the same as `400:500`; the range is kept as the client wrote
/// it, since the response repeats "the original range" (§3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    first: u32,
    last: u32,
    from_end: bool,
}

/// `nz-number = digit-nz *DIGIT`, at most 2^32-1 (RFC 9051 §9).
fn nz_number(p: &mut Parser<'_>) -> R<u32> {
    if p.peek() == Some(b'0') {
        return Err("PARTIAL range numbers start at 1".into());
    }
    p.number()
        .map_err(|_| "PARTIAL expects a range like 1:100 or -1:-100".into())
}

impl Range {
    /// Parses a `partial-range`; every malformed range (0, `*`, mixed signs, one
    /// number) is an error, answered BAD.
    pub fn parse(p: &mut Parser<'_>) -> R<Range> {
        let from_end = p.eat(b'-');
        let first = nz_number(p)?;
        p.expect(b':', "a PARTIAL range like 1:100 or -1:-100")?;
        if p.eat(b'-') != from_end {
            return Err("both ends of a PARTIAL range have the same sign".into());
        }
        let last = nz_number(p)?;
        Ok(Range {
            first,
            last,
            from_end,
        })
    }

    /// The half-open index range of the results the range names among `len` results;
    /// what lies past either end is left out (§3.1), so it may be empty.
    fn bounds(&self, len: usize) -> (usize, usize) {
        let n = |x: u32| usize::try_from(x).unwrap_or(usize::MAX);
        let (lo, hi) = (n(self.first.min(self.last)), n(self.first.max(self.last)));
        let (start, end) = if self.from_end {
            // -lo is index len - lo, -hi is index len - hi.
            (
                len.saturating_sub(hi),
                len.saturating_sub(lo.saturating_sub(1)),
            )
        } else {
            (lo.saturating_sub(1), hi.min(len))
        };
        (start.min(end), end)
    }

    /// The results the range names, in their order.
    pub fn page<'a, T>(&self, results: &'a [T]) -> &'a [T] {
        let (start, end) = self.bounds(results.len());
        results.get(start..end).unwrap_or_default()
    }

    /// The range as the client sent it.
    pub fn write(&self, out: &mut Vec<u8>) {
        let sign = if self.from_end { "-" } else { "" };
        out.extend_from_slice(format!("{sign}{}:{sign}{}", self.first, self.last).as_bytes());
    }
}

/// The results a SEARCH returns, in their order: every one with ALL or COUNT, or
/// without MIN, MAX and PARTIAL; else the PARTIAL page and the MIN and MAX result.
/// SAVE keeps these (RFC 5182 §2.4 for MIN/MAX, RFC 9394 §3.2 Table 1 with PARTIAL:
/// with COUNT `$` is every match), and MODSEQ is their highest (RFC 7162 §3.1.5, "the
/// messages returned").
pub fn returned<T: Copy>(ret: &Return, results: &[T]) -> Vec<T> {
    if ret.all || ret.count || !(ret.min || ret.max || ret.partial.is_some()) {
        return results.to_vec();
    }
    let (start, end) = ret.partial.map_or((0, 0), |r| r.bounds(results.len()));
    let last = results.len().saturating_sub(1);
    results
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            (start..end).contains(i) || (ret.min && *i == 0) || (ret.max && *i == last)
        })
        .map(|(_, r)| *r)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn range(s: &str) -> R<Range> {
        crate::imap::grammar::parse_whole(s.as_bytes(), Range::parse)
    }

    #[test]
    fn partial_ranges_parse_and_echo() {
        for s in ["1:100", "500:400", "-1:-100", "-30:-1", "1:4294967295"] {
            let mut out = Vec::new();
            range(s).unwrap().write(&mut out);
            assert_eq!(out, s.as_bytes());
        }
    }

    #[test]
    fn partial_ranges_must_fail() {
        let refused: &[&str] = &[
            "",
            "1",
            "-1",
            "0:5",
            "5:0",
            "-0:-5",
            "1:*",
            "*:1",
            "-1:5",
            "1:-5",
            "01:5",
            "1:4294967296",
            "1:5:6",
            "1,5",
            "-1:-",
            "1:",
            ":5",
            "\"1:5\"",
        ];
        crate::testing::assert_refused(range, refused);
    }

    #[test]
    fn partial_pages_count_from_either_end() {
        let r: Vec<u32> = (1..=10).collect();
        let page = |s: &str| range(s).unwrap().page(&r).to_vec();
        assert_eq!(page("1:3"), [1, 2, 3]);
        assert_eq!(page("3:1"), [1, 2, 3]);
        assert_eq!(page("9:20"), [9, 10]);
        assert_eq!(page("11:20"), Vec::<u32>::new());
        assert_eq!(page("-1:-3"), [8, 9, 10]);
        assert_eq!(page("-3:-1"), [8, 9, 10]);
        assert_eq!(page("-9:-20"), [1, 2]);
        assert_eq!(page("-11:-20"), Vec::<u32>::new());
        assert_eq!(page("1:4294967295"), r);
        assert_eq!(page("-1:-4294967295"), r);
        assert_eq!(range("-1:-5").unwrap().page::<u32>(&[]), &[] as &[u32]);
    }

    #[test]
    fn returned_follows_rfc_9394_table_1() {
        let r: Vec<u32> = (1..=10).collect();
        let ret = |partial: &str, min: bool, max: bool, count: bool| Return {
            min,
            max,
            count,
            all: false,
            partial: Some(range(partial).unwrap()),
            update: false,
        };
        assert_eq!(returned(&ret("2:3", false, false, false), &r), [2, 3]);
        assert_eq!(returned(&ret("2:3", true, false, false), &r), [1, 2, 3]);
        assert_eq!(
            returned(&ret("-2:-3", true, true, false), &r),
            [1, 8, 9, 10]
        );
        assert_eq!(returned(&ret("2:3", true, true, true), &r), r);
        assert_eq!(returned(&ret("20:30", false, false, false), &r), [0u32; 0]);
        let min_only = Return {
            min: true,
            ..Return::default()
        };
        assert_eq!(returned(&min_only, &r), [1]);
        assert_eq!(returned(&Return::default(), &r), r);
        assert_eq!(returned(&min_only, &[] as &[u32]), [0u32; 0]);
    }
}
