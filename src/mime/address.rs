//! Address lists for ENVELOPE (RFC 5322 §3.4, obs forms of §4.4; IMAP shape from
//! RFC 3501 §7.4.2 / RFC 9051 §7.5.2).
//!
//! Lenient by design: the parser never fails, it returns what it could recognise.
//! - Display names keep RFC 2047 encoded-words as written; quotes and backslash
//!   escapes are removed; words are joined by one space where whitespace separated
//!   them.
//! - `addr (Comment)` with no display name uses the comment as the name (Dovecot does
//!   the same).
//! - A mailbox without `@` (e.g. `To: undisclosed`) gets an empty host, and `<>` an
//!   empty mailbox and host, so that `host = None` always means group syntax.
//! - A group left open is closed at the end of the field; `;` outside a group and
//!   stray `>` are ignored; nested groups are flattened.
//! - Entries with no mailbox at all (only comments, empty list elements) are dropped.

use serde::{Deserialize, Serialize};

use super::Budget;
use super::header::is_wsp;

/// One IMAP address structure `(name adl mailbox host)` (RFC 3501 §7.4.2).
///
/// Groups (RFC 5322 §3.4) appear the IMAP way: a start marker with `host: None` and
/// `mailbox: Some(group name)`, the members, then an end marker with every field
/// `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Display name (phrase) as written, unquoted, encoded-words not decoded.
    pub name: Option<Vec<u8>>,
    /// Source route (obs-route, RFC 5322 §4.4), e.g. `@a.example,@b.example`.
    pub adl: Option<Vec<u8>>,
    /// Local part (unquoted), or the group name in a group start marker.
    pub mailbox: Option<Vec<u8>>,
    /// Domain, `None` only in group markers.
    pub host: Option<Vec<u8>>,
}

impl Address {
    /// Start-of-group marker for group `name`.
    pub fn group_start(name: Vec<u8>) -> Self {
        Address {
            name: None,
            adl: None,
            mailbox: Some(name),
            host: None,
        }
    }

    /// End-of-group marker.
    pub fn group_end() -> Self {
        Address {
            name: None,
            adl: None,
            mailbox: None,
            host: None,
        }
    }

    /// True for a start-of-group marker.
    pub fn is_group_start(&self) -> bool {
        self.host.is_none() && self.mailbox.is_some()
    }

    /// True for an end-of-group marker.
    pub fn is_group_end(&self) -> bool {
        self.host.is_none() && self.mailbox.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// An atom (dots included) or a quoted string (unquoted), or a domain literal.
    Word(Vec<u8>),
    Comment(Vec<u8>),
    /// One of `< > , : ; @`.
    Special(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    kind: Kind,
    /// Whitespace or a comment came before this token.
    spaced: bool,
}

const SPECIALS: &[u8] = b"<>,:;@";

fn tokenize(s: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut spaced = false;
    while let Some(&b) = s.get(i) {
        let start = i;
        i = i.saturating_add(1);
        let kind = match b {
            _ if is_wsp(b) => {
                spaced = true;
                continue;
            }
            b'"' => {
                let (word, next) = quoted(s, i);
                i = next;
                Kind::Word(word)
            }
            b'(' => {
                let (text, next) = comment(s, i);
                i = next;
                Kind::Comment(text)
            }
            b'[' => {
                let len = s
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .position(|&c| c == b']')
                    .map_or(s.len(), |p| i.saturating_add(p).saturating_add(1));
                i = len;
                Kind::Word(s.get(start..i).unwrap_or_default().to_vec())
            }
            _ if SPECIALS.contains(&b) => Kind::Special(b),
            _ => {
                while s
                    .get(i)
                    .is_some_and(|&c| !is_wsp(c) && !b"\"([".contains(&c) && !SPECIALS.contains(&c))
                {
                    i = i.saturating_add(1);
                }
                Kind::Word(s.get(start..i).unwrap_or_default().to_vec())
            }
        };
        let is_comment = matches!(kind, Kind::Comment(_));
        out.push(Token { kind, spaced });
        spaced = is_comment;
    }
    out
}

/// Quoted string body starting after the opening quote: (unescaped text, next index).
fn quoted(s: &[u8], mut i: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    while let Some(&b) = s.get(i) {
        i = i.saturating_add(1);
        match b {
            b'"' => break,
            b'\\' => {
                if let Some(&next) = s.get(i) {
                    out.push(next);
                    i = i.saturating_add(1);
                }
            }
            _ => out.push(b),
        }
    }
    (out, i)
}

/// Comment body starting after the opening parenthesis; nested comments are kept
/// verbatim inside, escapes removed, the outer parentheses dropped.
fn comment(s: &[u8], mut i: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut depth = 1usize;
    while let Some(&b) = s.get(i) {
        i = i.saturating_add(1);
        match b {
            b'(' => depth = depth.saturating_add(1),
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            b'\\' => {
                if let Some(&next) = s.get(i) {
                    out.push(next);
                    i = i.saturating_add(1);
                }
                continue;
            }
            _ => {}
        }
        out.push(b);
    }
    (out, i)
}

/// Bytes of one list element that are tokenized; the rest of an over-long element is
/// ignored. Real addresses are far shorter (RFC 5321 §4.5.3.1.3: a path is at most
/// 256 octets); this bounds the token memory per element.
const MAX_ELEMENT: usize = 4096;

/// Parses an unfolded address-list field value. Never fails; see the module docs.
///
/// The value is cut into list elements at top-level `,` and `;` first, and each
/// element is tokenized on its own, so memory stays proportional to the output (which
/// the budget caps), not to the field.
pub(crate) fn parse_address_list(value: &[u8], budget: &mut Budget) -> Vec<Address> {
    let mut out = Vec::new();
    let mut in_group = false;
    let mut rest = value;
    while !rest.is_empty() {
        let (element, terminator, tail) = split_element(rest);
        rest = tail;
        let mut tokens = tokenize(element.get(..MAX_ELEMENT).unwrap_or(element));
        if let Some(t) = terminator {
            tokens.push(Token {
                kind: Kind::Special(t),
                spaced: false,
            });
        }
        if !parse_tokens(&tokens, &mut in_group, &mut out, budget) {
            break;
        }
    }
    if in_group {
        out.push(Address::group_end());
    }
    out
}

/// Splits off one list element: bytes up to the first `,` or `;` outside quotes,
/// comments and domain literals; a `,` followed by `@` continues an obs-route.
/// Returns (element, terminator, rest after the terminator).
fn split_element(s: &[u8]) -> (&[u8], Option<u8>, &[u8]) {
    let mut quoted = false;
    let mut literal = false;
    let mut comment = 0usize;
    let mut i = 0usize;
    while let Some(&b) = s.get(i) {
        match b {
            b'\\' if quoted || comment > 0 => i = i.saturating_add(1),
            b'"' if comment == 0 => quoted = !quoted,
            _ if quoted => {}
            b'(' => comment = comment.saturating_add(1),
            b')' => comment = comment.saturating_sub(1),
            _ if comment > 0 => {}
            b'[' => literal = true,
            b']' => literal = false,
            _ if literal => {}
            b',' | b';' => {
                let next = s.get(i.saturating_add(1)..).unwrap_or_default();
                let route = b == b',' && next.iter().find(|&&c| !is_wsp(c)) == Some(&b'@');
                if !route {
                    let element = s.get(..i).unwrap_or_default();
                    return (element, Some(b), next);
                }
            }
            _ => {}
        }
        i = i.saturating_add(1);
    }
    (s, None, &[])
}

/// Runs the address grammar over the tokens of one element (plus its terminator),
/// appending to `out`. False once the budget is spent.
fn parse_tokens(
    tokens: &[Token],
    in_group: &mut bool,
    out: &mut Vec<Address>,
    budget: &mut Budget,
) -> bool {
    let mut rest = tokens;
    while let Some((first, tail)) = rest.split_first() {
        match first.kind {
            Kind::Special(b',') | Kind::Special(b'>') => {
                rest = tail;
                continue;
            }
            Kind::Special(b';') => {
                if *in_group {
                    out.push(Address::group_end());
                    *in_group = false;
                }
                rest = tail;
                continue;
            }
            _ => {}
        }
        let (item, next) = parse_item(rest, *in_group);
        // parse_item always consumes at least one token; guard anyway.
        rest = if next.len() < rest.len() { next } else { tail };
        let address = match item {
            Item::Nothing => continue,
            Item::GroupStart(name) => {
                *in_group = true;
                Address::group_start(name)
            }
            Item::Mailbox(address) => address,
        };
        if !budget.take() {
            return false;
        }
        out.push(address);
    }
    true
}

enum Item {
    Nothing,
    GroupStart(Vec<u8>),
    Mailbox(Address),
}

/// One mailbox or a group start, up to (not including) the next `,` or `;`.
fn parse_item(toks: &[Token], in_group: bool) -> (Item, &[Token]) {
    let mut words: Vec<&Token> = Vec::new();
    let mut comment: Option<&[u8]> = None;
    let mut rest = toks;
    while let Some((t, tail)) = rest.split_first() {
        match &t.kind {
            Kind::Word(_) => words.push(t),
            Kind::Comment(c) => comment = Some(c),
            Kind::Special(b':') if !in_group => return (Item::GroupStart(phrase(&words)), tail),
            Kind::Special(b'<') => {
                let (mut address, tail) = angle_addr(tail);
                let (comment_after, tail) = skip_to_end(tail);
                address.name =
                    non_empty(phrase(&words)).or_else(|| comment_name(&[comment, comment_after]));
                return (Item::Mailbox(address), tail);
            }
            Kind::Special(b'@') => {
                let split = words.len().saturating_sub(local_run(&words));
                let (name_words, local_words) = words.split_at(split);
                let (host, in_domain, tail) = domain(tail);
                let (comment_after, tail) = skip_to_end(tail);
                let name = non_empty(phrase(name_words))
                    .or_else(|| comment_name(&[comment, comment_after, in_domain]));
                let address = Address {
                    name,
                    adl: None,
                    mailbox: Some(concat(local_words)),
                    host: Some(host),
                };
                return (Item::Mailbox(address), tail);
            }
            Kind::Special(b',' | b';') => break,
            // Stray '>', or ':' inside a group: ignore.
            Kind::Special(_) => {}
        }
        rest = tail;
    }
    if words.is_empty() {
        return (Item::Nothing, rest);
    }
    let address = Address {
        name: comment_name(&[comment]),
        adl: None,
        mailbox: Some(concat(&words)),
        host: Some(Vec::new()),
    };
    (Item::Mailbox(address), rest)
}

/// After `<`: `[obs-route] local "@" domain ">"`; returns the address (no name yet)
/// and the tokens after `>`.
fn angle_addr(toks: &[Token]) -> (Address, &[Token]) {
    // An unclosed `<` ends at the next `,` or `;` rather than eating the list.
    let (inner, after) = match toks.iter().position(|t| t.kind == Kind::Special(b'>')) {
        Some(end) => {
            let (inner, after) = toks.split_at(end);
            (inner, after.get(1..).unwrap_or_default())
        }
        None => {
            let end = toks
                .iter()
                .position(|t| matches!(t.kind, Kind::Special(b',' | b';')))
                .unwrap_or(toks.len());
            toks.split_at(end)
        }
    };
    let mut inner = inner;
    let mut route = None;
    if matches!(inner.first(), Some(t) if t.kind == Kind::Special(b'@'))
        && let Some(colon) = inner.iter().position(|t| t.kind == Kind::Special(b':'))
    {
        let mut adl = Vec::new();
        for t in inner.get(..colon).unwrap_or_default() {
            match &t.kind {
                Kind::Word(w) => adl.extend_from_slice(w),
                Kind::Special(c) => adl.push(*c),
                Kind::Comment(_) => {}
            }
        }
        route = Some(adl);
        inner = inner.get(colon.saturating_add(1)..).unwrap_or_default();
    }
    let at = inner
        .iter()
        .position(|t| t.kind == Kind::Special(b'@'))
        .unwrap_or(inner.len());
    let (local, domain) = inner.split_at(at);
    let words = |ts: &[Token]| {
        let mut out = Vec::new();
        for t in ts {
            if let Kind::Word(w) = &t.kind {
                out.extend_from_slice(w);
            }
        }
        out
    };
    let address = Address {
        name: None,
        adl: route,
        mailbox: Some(words(local)),
        host: Some(words(domain)),
    };
    (address, after)
}

/// Domain after a bare `@`: the first word, then words glued to it or joined by dots
/// (obs-domain allows `example . com`). Stops at any special. Also returns the last
/// comment passed over (a name candidate, as in `a@b (Name)`).
fn domain(toks: &[Token]) -> (Vec<u8>, Option<&[u8]>, &[Token]) {
    let mut out: Vec<u8> = Vec::new();
    let mut comment = None;
    let mut rest = toks;
    while let Some((t, tail)) = rest.split_first() {
        match &t.kind {
            Kind::Word(w) => {
                let joins =
                    out.is_empty() || !t.spaced || out.ends_with(b".") || w.starts_with(b".");
                if !joins {
                    break;
                }
                out.extend_from_slice(w);
            }
            Kind::Comment(c) => comment = Some(c.as_slice()),
            Kind::Special(_) => break,
        }
        rest = tail;
    }
    (out, comment, rest)
}

/// Skips whatever follows an address up to the next `,`/`;`, returning the last
/// comment seen there (a name candidate).
fn skip_to_end(toks: &[Token]) -> (Option<&[u8]>, &[Token]) {
    let mut comment = None;
    let mut rest = toks;
    while let Some((t, tail)) = rest.split_first() {
        match &t.kind {
            Kind::Special(b',' | b';') => break,
            Kind::Comment(c) => comment = Some(c.as_slice()),
            _ => {}
        }
        rest = tail;
    }
    (comment, rest)
}

/// How many trailing words form the local part: the run not separated by whitespace
/// (so `John Doe jd@x` gives name `John Doe`, mailbox `jd`; `"a"."b"@x` stays whole).
fn local_run(words: &[&Token]) -> usize {
    let mut n = 0usize;
    for t in words.iter().rev() {
        n = n.saturating_add(1);
        if t.spaced {
            break;
        }
    }
    n
}

fn phrase(words: &[&Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in words {
        if let Kind::Word(w) = &t.kind {
            if !out.is_empty() && t.spaced {
                out.push(b' ');
            }
            out.extend_from_slice(w);
        }
    }
    out
}

fn concat(words: &[&Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in words {
        if let Kind::Word(w) = &t.kind {
            out.extend_from_slice(w);
        }
    }
    out
}

fn non_empty(v: Vec<u8>) -> Option<Vec<u8>> {
    (!v.is_empty()).then_some(v)
}

/// The name an address without a display name takes from a comment (`a@b (Name)`): the
/// first candidate with more than white space in it, so `a@b ()` has no name (NIL, not
/// `""`, which clients would show as a blank sender).
fn comment_name(candidates: &[Option<&[u8]>]) -> Option<Vec<u8>> {
    candidates
        .iter()
        .flatten()
        .find(|c| c.iter().any(|&b| !is_wsp(b)))
        .map(|c| c.to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::mime::ITEM_BUDGET;

    fn text(v: &Option<Vec<u8>>) -> Option<&str> {
        v.as_deref().map(|b| std::str::from_utf8(b).unwrap())
    }

    #[test]
    fn addresses_table() {
        type Row = (
            &'static str,
            &'static [(
                Option<&'static str>,
                Option<&'static str>,
                Option<&'static str>,
                Option<&'static str>,
            )],
        );
        let table: &[Row] = &[
            (
                "\"Doe, John\" <john@example.com>",
                &[(Some("Doe, John"), None, Some("john"), Some("example.com"))],
            ),
            (
                "=?UTF-8?Q?J=C3=B6rg?= =?UTF-8?Q?_M?= <j@x.de>",
                &[(
                    Some("=?UTF-8?Q?J=C3=B6rg?= =?UTF-8?Q?_M?="),
                    None,
                    Some("j"),
                    Some("x.de"),
                )],
            ),
            (
                "john@example.com (John Doe)",
                &[(Some("John Doe"), None, Some("john"), Some("example.com"))],
            ),
            (
                "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
                &[(Some("Pete"), None, Some("pete"), Some("silly.test"))],
            ),
            (
                "Team: a@x.com, \"B\" <b@y.com>;, c@z.com",
                &[
                    (None, None, Some("Team"), None),
                    (None, None, Some("a"), Some("x.com")),
                    (Some("B"), None, Some("b"), Some("y.com")),
                    (None, None, None, None),
                    (None, None, Some("c"), Some("z.com")),
                ],
            ),
            (
                "undisclosed-recipients:;",
                &[
                    (None, None, Some("undisclosed-recipients"), None),
                    (None, None, None, None),
                ],
            ),
            (
                "Open Group: a@b",
                &[
                    (None, None, Some("Open Group"), None),
                    (None, None, Some("a"), Some("b")),
                    (None, None, None, None),
                ],
            ),
            (
                "<@route.example,@r2.example:user@host.example>",
                &[(
                    None,
                    Some("@route.example,@r2.example"),
                    Some("user"),
                    Some("host.example"),
                )],
            ),
            (
                "John Q. Doe jd@x.test",
                &[(Some("John Q. Doe"), None, Some("jd"), Some("x.test"))],
            ),
            (
                "\"john doe\"@example.com",
                &[(None, None, Some("john doe"), Some("example.com"))],
            ),
            (
                "first.last@sub . example . com",
                &[(None, None, Some("first.last"), Some("sub.example.com"))],
            ),
            (
                "user@[192.0.2.1]",
                &[(None, None, Some("user"), Some("[192.0.2.1]"))],
            ),
            ("bare", &[(None, None, Some("bare"), Some(""))]),
            // An empty comment is no name (NIL), as an empty quoted phrase is not.
            (
                "jamie@msn.com ()",
                &[(None, None, Some("jamie"), Some("msn.com"))],
            ),
            (
                "( ) <j@x> (Jo)",
                &[(Some("Jo"), None, Some("j"), Some("x"))],
            ),
            ("\"\" <j@x>", &[(None, None, Some("j"), Some("x"))]),
            ("<>", &[(None, None, Some(""), Some(""))]),
            (
                "Unclosed <a@b, c@d",
                &[
                    (Some("Unclosed"), None, Some("a"), Some("b")),
                    (None, None, Some("c"), Some("d")),
                ],
            ),
            (";;;,,, (only a comment) >", &[]),
            ("", &[]),
        ];
        for (input, expected) in table {
            let got = parse_address_list(input.as_bytes(), &mut Budget(ITEM_BUDGET));
            let got: Vec<_> = got
                .iter()
                .map(|a| (text(&a.name), text(&a.adl), text(&a.mailbox), text(&a.host)))
                .collect();
            assert_eq!(&got, expected, "input {input:?}");
        }
        assert!(Address::group_start(b"g".to_vec()).is_group_start());
        assert!(Address::group_end().is_group_end());
    }

    #[test]
    fn addresses_respect_budget() {
        let many = "a@b,".repeat(50);
        assert_eq!(
            parse_address_list(many.as_bytes(), &mut Budget(10)).len(),
            10
        );
        let group = "g: a@b, c@d;";
        let got = parse_address_list(group.as_bytes(), &mut Budget(2));
        assert!(got.last().unwrap().is_group_end(), "groups stay balanced");
    }
}
