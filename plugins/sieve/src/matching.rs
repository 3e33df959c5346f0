//! Comparators (RFC 4790 via RFC 5228 §2.7.3, RFC 4790 §9.1 i;ascii-numeric) and match
//! types: `:is`, `:contains`, `:matches` (RFC 5228 §2.7.1), `:regex` (draft-ietf-sieve-
//! regex), `:value`/`:count` (RFC 5231).

use std::cmp::Ordering;

use regex::{Regex, RegexBuilder};

use crate::compile::{Comparator, Match, MatchKind, RelOp};

/// Compiles a `:regex` key (POSIX extended syntax is close enough to the `regex` crate's
/// for the usual patterns) with a size limit; `i;ascii-casemap` matches ignoring case.
pub fn regex(pattern: &str, cmp: Comparator, max_bytes: usize) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(cmp == Comparator::AsciiCasemap)
        .size_limit(max_bytes)
        .dfa_size_limit(max_bytes)
        .nest_limit(64)
        .build()
        .map_err(|e| {
            format!(
                "invalid regular expression {pattern:?}: {}",
                one_line(&e.to_string())
            )
        })
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `:matches` pattern as an anchored regular expression: `*` is a lazy run, `?` one
/// character, `\` escapes the next character. Each wildcard is a capture group (the
/// match variables of RFC 5229 §3.2). Case folding for i;ascii-casemap is done by the
/// caller on both sides.
pub fn glob_regex(pattern: &str, max_bytes: usize) -> Result<Regex, String> {
    let mut re = String::from("(?s)^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("(.*?)"),
            '?' => re.push_str("(.)"),
            '\\' => {
                if let Some(n) = chars.next() {
                    re.push_str(&regex::escape(&n.to_string()));
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    RegexBuilder::new(&re)
        .size_limit(max_bytes)
        .dfa_size_limit(max_bytes)
        .build()
        .map_err(|e| {
            format!(
                "pattern {pattern:?} too complex: {}",
                one_line(&e.to_string())
            )
        })
}

/// `s` folded for the comparator (ASCII only for i;ascii-casemap, RFC 4790 §9.2).
pub fn fold(s: &str, cmp: Comparator) -> std::borrow::Cow<'_, str> {
    if cmp == Comparator::AsciiCasemap && s.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(s.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// i;ascii-numeric: the leading digits as a number; none is positive infinity.
fn numeric(s: &str) -> Option<&str> {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let d = s.get(..digits)?.trim_start_matches('0');
    Some(d)
}

/// Orders `a` and `b` under the comparator.
pub fn order(a: &str, b: &str, cmp: Comparator) -> Ordering {
    match cmp {
        Comparator::Octet => a.as_bytes().cmp(b.as_bytes()),
        Comparator::AsciiCasemap => fold(a, cmp).as_bytes().cmp(fold(b, cmp).as_bytes()),
        Comparator::AsciiNumeric => match (numeric(a), numeric(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
        },
    }
}

pub fn relation(op: RelOp, o: Ordering) -> bool {
    match op {
        RelOp::Gt => o == Ordering::Greater,
        RelOp::Ge => o != Ordering::Less,
        RelOp::Lt => o == Ordering::Less,
        RelOp::Le => o != Ordering::Greater,
        RelOp::Eq => o == Ordering::Equal,
        RelOp::Ne => o != Ordering::Equal,
    }
}

/// What a successful `:matches` or `:regex` captured: `${0}` is the whole match.
pub type Captures = Vec<String>;

/// Matches one value against one key (not for `:count`, which the caller handles).
/// `Ok(Some(captures))` on a match; `Err` for a key that is not a valid pattern.
pub fn matches_one(
    m: Match,
    value: &str,
    key: &str,
    cache: &mut PatternCache,
) -> Result<Option<Captures>, String> {
    let hit = match m.kind {
        MatchKind::Is => order(value, key, m.comparator) == Ordering::Equal,
        MatchKind::Contains => fold(value, m.comparator).contains(&*fold(key, m.comparator)),
        MatchKind::Value(op) => relation(op, order(value, key, m.comparator)),
        MatchKind::Count(_) => false,
        MatchKind::Matches => {
            let value = fold(value, m.comparator);
            let key = fold(key, m.comparator);
            let re = cache.glob(&key)?;
            return Ok(re.captures(&value).map(|c| {
                c.iter()
                    .map(|g| g.map(|g| g.as_str().to_string()).unwrap_or_default())
                    .collect()
            }));
        }
        MatchKind::Regex => {
            let re = cache.regex(key, m.comparator)?;
            return Ok(re.captures(value).map(|c| {
                c.iter()
                    .map(|g| g.map(|g| g.as_str().to_string()).unwrap_or_default())
                    .collect()
            }));
        }
    };
    Ok(hit.then(Vec::new))
}

/// Compiled `:matches` and `:regex` keys, kept across messages in a warm instance.
#[derive(Default)]
pub struct PatternCache {
    globs: std::collections::HashMap<String, Regex>,
    regexes: std::collections::HashMap<(String, bool), Regex>,
    pub max_bytes: usize,
}

/// More entries than this and the cache starts over.
const CACHE_ENTRIES: usize = 1024;

impl PatternCache {
    pub fn new(max_bytes: usize) -> PatternCache {
        PatternCache {
            max_bytes,
            ..PatternCache::default()
        }
    }

    fn glob(&mut self, key: &str) -> Result<&Regex, String> {
        if !self.globs.contains_key(key) {
            if self.globs.len() >= CACHE_ENTRIES {
                self.globs.clear();
            }
            let re = glob_regex(key, self.max_bytes)?;
            self.globs.insert(key.to_string(), re);
        }
        self.globs
            .get(key)
            .ok_or_else(|| "pattern cache".to_string())
    }

    fn regex(&mut self, key: &str, cmp: Comparator) -> Result<&Regex, String> {
        let k = (key.to_string(), cmp == Comparator::AsciiCasemap);
        if !self.regexes.contains_key(&k) {
            if self.regexes.len() >= CACHE_ENTRIES {
                self.regexes.clear();
            }
            let re = regex(key, cmp, self.max_bytes)?;
            self.regexes.insert(k.clone(), re);
        }
        self.regexes
            .get(&k)
            .ok_or_else(|| "pattern cache".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MatchKind, comparator: Comparator) -> Match {
        Match { comparator, kind }
    }

    #[test]
    fn comparators_and_match_types() {
        let mut c = PatternCache::new(1 << 20);
        let ci = Comparator::AsciiCasemap;
        assert!(
            matches_one(m(MatchKind::Is, ci), "Hello", "hello", &mut c)
                .unwrap()
                .is_some()
        );
        assert!(
            matches_one(
                m(MatchKind::Is, Comparator::Octet),
                "Hello",
                "hello",
                &mut c
            )
            .unwrap()
            .is_none()
        );
        assert!(
            matches_one(m(MatchKind::Contains, ci), "Big SALE now", "sale", &mut c)
                .unwrap()
                .is_some()
        );
        let caps = matches_one(
            m(MatchKind::Matches, ci),
            "[list] Hi there",
            "[*] *",
            &mut c,
        )
        .unwrap()
        .unwrap();
        assert_eq!(caps, vec!["[list] hi there", "list", "hi there"]);
        assert!(
            matches_one(m(MatchKind::Matches, ci), "abc", "a?c", &mut c)
                .unwrap()
                .is_some()
        );
        assert!(
            matches_one(m(MatchKind::Matches, ci), "a*c", "a\\*c", &mut c)
                .unwrap()
                .is_some()
        );
        assert!(
            matches_one(m(MatchKind::Matches, ci), "abc", "a\\*c", &mut c)
                .unwrap()
                .is_none()
        );
        let caps = matches_one(m(MatchKind::Regex, ci), "Order 1234", "([0-9]+)$", &mut c)
            .unwrap()
            .unwrap();
        assert_eq!(caps[1], "1234");
        let num = Comparator::AsciiNumeric;
        assert!(
            matches_one(m(MatchKind::Value(RelOp::Gt), num), "10", "9", &mut c)
                .unwrap()
                .is_some()
        );
        assert!(
            matches_one(m(MatchKind::Value(RelOp::Gt), ci), "10", "9", &mut c)
                .unwrap()
                .is_none()
        );
        assert!(
            matches_one(m(MatchKind::Value(RelOp::Gt), num), "x", "999", &mut c)
                .unwrap()
                .is_some()
        );
        assert!(
            matches_one(m(MatchKind::Is, num), "007", "7", &mut c)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn huge_regex_is_refused() {
        assert!(regex("(a{1000}){1000}", Comparator::Octet, 1 << 20).is_err());
    }
}
