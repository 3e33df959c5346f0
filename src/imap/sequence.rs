//! Sequence sets (RFC 9051 §9 `sequence-set`) and how they resolve against a mailbox
//! (PROTOCOL.md 1.1 items 11-13).

use std::fmt;

use crate::contracts::Uid;

/// One end of a range: a number or `*` (the largest in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Num(u32),
    Star,
}

/// A parsed sequence set, or `$` (RFC 5182 SEARCHRES: the saved result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    Ranges(Vec<(Bound, Bound)>),
    Saved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqError {
    /// Not a sequence set: empty, `0`, above 4294967295, bad punctuation.
    Syntax,
}

impl fmt::Display for SeqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid sequence set")
    }
}

/// Most members in one set; a longer one is refused (HOUSE.md habit 4).
const MAX_MEMBERS: usize = 10_000;

fn bound(s: &[u8]) -> Result<Bound, SeqError> {
    if s == b"*" {
        return Ok(Bound::Star);
    }
    let n: u32 = crate::util::decimal(s, 10).ok_or(SeqError::Syntax)?;
    if n == 0 {
        return Err(SeqError::Syntax);
    }
    Ok(Bound::Num(n))
}

impl SequenceSet {
    /// `sequence-set = (seq-number / seq-range) ["," sequence-set]`; `0` and numbers
    /// above 2^32-1 are syntax errors (RFC 9051 §9 `nz-number`).
    pub fn parse(s: &[u8]) -> Result<SequenceSet, SeqError> {
        if s == b"$" {
            return Ok(SequenceSet::Saved);
        }
        let mut out = Vec::new();
        for member in s.split(|b| *b == b',') {
            if out.len() >= MAX_MEMBERS {
                return Err(SeqError::Syntax);
            }
            let mut parts = member.splitn(3, |b| *b == b':');
            let a = bound(parts.next().unwrap_or(&[]))?;
            let b = match parts.next() {
                Some(p) => bound(p)?,
                None => a,
            };
            if parts.next().is_some() {
                return Err(SeqError::Syntax);
            }
            out.push((a, b));
        }
        Ok(SequenceSet::Ranges(out))
    }

    /// Resolves message sequence numbers against `exists` messages. `Err` when a number
    /// is above `exists`, including `*` in an empty mailbox (RFC 9051 §9 `seq-number`:
    /// PROTOCOL.md 1.1 item 12). Returns sorted, de-duplicated numbers.
    pub fn resolve_seq(&self, exists: u32) -> Result<Vec<u32>, SeqError> {
        let SequenceSet::Ranges(ranges) = self else {
            return Err(SeqError::Syntax);
        };
        let num = |b: Bound| -> Result<u32, SeqError> {
            let n = match b {
                Bound::Num(n) => n,
                Bound::Star => exists,
            };
            if n == 0 || n > exists {
                Err(SeqError::Syntax)
            } else {
                Ok(n)
            }
        };
        let mut out = Vec::new();
        for (a, b) in ranges {
            let (a, b) = (num(*a)?, num(*b)?);
            let (lo, hi) = (a.min(b), a.max(b));
            out.extend(lo..=hi);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Resolves UIDs against the mailbox's UIDs (ascending). UIDs that do not exist are
    /// ignored; `n:*` includes the highest UID even when n is above it (RFC 9051 §6.4.9;
    /// PROTOCOL.md 1.1 item 13). Returns indexes into `uids`, ascending.
    pub fn resolve_uid(&self, uids: &[Uid]) -> Vec<usize> {
        let SequenceSet::Ranges(ranges) = self else {
            return Vec::new();
        };
        let Some(&Uid(max)) = uids.last() else {
            return Vec::new();
        };
        let mut keep = vec![false; uids.len()];
        for (a, b) in ranges {
            let val = |x: Bound| match x {
                Bound::Num(n) => n,
                Bound::Star => max,
            };
            let (a, b) = (val(*a), val(*b));
            let (lo, hi) = (a.min(b), a.max(b));
            let start = uids.partition_point(|u| u.0 < lo);
            let end = uids.partition_point(|u| u.0 <= hi);
            for k in keep.iter_mut().take(end).skip(start) {
                *k = true;
            }
        }
        keep.iter()
            .enumerate()
            .filter_map(|(i, k)| k.then_some(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_resolve_seq() {
        let s = SequenceSet::parse(b"3:1,2,5:*").unwrap();
        assert_eq!(s.resolve_seq(6).unwrap(), vec![1, 2, 3, 5, 6]);
        assert!(s.resolve_seq(4).is_err());
        assert!(SequenceSet::parse(b"*").unwrap().resolve_seq(0).is_err());
        assert!(SequenceSet::parse(b"1:*").unwrap().resolve_seq(0).is_err());
    }

    #[test]
    fn must_fail() {
        let refused: &[&[u8]] = &[
            b"",
            b"0",
            b"1:0",
            b"4294967296",
            b"1,,2",
            b"1:2:3",
            b"a",
            b"1:",
        ];
        crate::testing::assert_refused(SequenceSet::parse, refused);
        assert!(SequenceSet::parse(b"4294967295").is_ok());
    }

    #[test]
    fn uid_sets() {
        let uids = crate::testing::uids([3, 7, 9]);
        let s = |t: &[u8]| SequenceSet::parse(t).unwrap();
        assert_eq!(s(b"1:*").resolve_uid(&uids), vec![0, 1, 2]);
        assert_eq!(s(b"100:*").resolve_uid(&uids), vec![2]);
        assert_eq!(s(b"4:6").resolve_uid(&uids), Vec::<usize>::new());
        assert_eq!(s(b"8,3,3").resolve_uid(&uids), vec![0]);
        assert_eq!(s(b"1:*").resolve_uid(&[]), Vec::<usize>::new());
    }
}
