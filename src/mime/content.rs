//! MIME content header values: Content-Type (RFC 2045 §5.1), Content-Disposition
//! (RFC 2183 §2), Content-Language (RFC 3282 §2), Content-Transfer-Encoding
//! (RFC 2045 §6.1). Input is an unfolded value (see [`super::header::unfold`]).

use serde::{Deserialize, Serialize};

use super::Budget;
use super::header::is_wsp;

/// A `name=value` parameter of Content-Type or Content-Disposition.
///
/// Name as written; value with quoting and backslash escapes removed. RFC 2231
/// continuations and charset/language markup (`title*0*=us-ascii'en'...`) are left as
/// separate, undecoded parameters, which is what IMAP BODYSTRUCTURE carries
/// (RFC 3501 §7.4.2 sends parameters as they are).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// Content-Disposition: type (as written, e.g. `attachment`) and parameters
/// (RFC 2183 §2; BODYSTRUCTURE body-fld-dsp, RFC 3501 §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    pub kind: Vec<u8>,
    pub params: Vec<Param>,
}

/// A parsed Content-Type value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentType {
    pub media_type: Vec<u8>,
    pub subtype: Vec<u8>,
    pub params: Vec<Param>,
}

/// Parses `type "/" subtype *(";" parameter)`. `None` when type or subtype is missing:
/// the caller then applies the RFC 2045 §5.2 default, as that section recommends for
/// a syntactically invalid field. Unparseable parameters are dropped.
pub(crate) fn parse_content_type(value: &[u8], budget: &mut Budget) -> Option<ContentType> {
    let (mut c, media_type) = leading_token(value)?;
    c.skip_cfws();
    if !c.eat(b'/') {
        return None;
    }
    c.skip_cfws();
    let subtype = c.token();
    if subtype.is_empty() {
        return None;
    }
    Some(ContentType {
        media_type: media_type.to_vec(),
        subtype: subtype.to_vec(),
        params: c.params(budget),
    })
}

/// Parses `disposition-type *(";" parameter)`; `None` when the type is empty.
pub(crate) fn parse_disposition(value: &[u8], budget: &mut Budget) -> Option<Disposition> {
    let (mut c, kind) = leading_token(value)?;
    Some(Disposition {
        kind: kind.to_vec(),
        params: c.params(budget),
    })
}

/// The first token of `value` (comments and folding white space before it skipped),
/// and a cursor just past it; `None` when there is no token there.
fn leading_token(value: &[u8]) -> Option<(Cursor<'_>, &[u8])> {
    let mut c = Cursor::new(value);
    c.skip_cfws();
    let token = c.token();
    (!token.is_empty()).then_some((c, token))
}

/// Comma-separated language tags, comments removed, empty entries dropped.
pub(crate) fn parse_language(value: &[u8], budget: &mut Budget) -> Vec<Vec<u8>> {
    let mut c = Cursor::new(value);
    let mut tags = Vec::new();
    loop {
        c.skip_cfws();
        let Some(b) = c.peek() else { break };
        if b == b',' {
            c.bump();
            continue;
        }
        let tag = c.take_while(|b| b != b',' && b != b'(' && !is_wsp(b));
        if tag.is_empty() {
            // A stray byte such as ')' that cannot start anything: skip it.
            c.bump();
        } else if budget.take() {
            tags.push(tag.to_vec());
        }
    }
    tags
}

/// The mechanism token of Content-Transfer-Encoding, as written; `None` if empty.
pub(crate) fn parse_encoding(value: &[u8]) -> Option<Vec<u8>> {
    let mut c = Cursor::new(value);
    c.skip_cfws();
    let token = c.token();
    (!token.is_empty()).then(|| token.to_vec())
}

/// RFC 2045 §5.1 tspecials plus SP and CTLs end a token; 8-bit bytes are accepted.
fn is_token_byte(b: u8) -> bool {
    b > b' ' && b != 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a [u8]) -> Self {
        Cursor { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos = self.pos.saturating_add(1);
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.bump();
        }
        hit
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    fn token(&mut self) -> &'a [u8] {
        self.take_while(is_token_byte)
    }

    /// Skips whitespace and (nested, escaped) comments; an unclosed comment runs to
    /// the end of the value.
    fn skip_cfws(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'(' => depth = depth.saturating_add(1),
                b')' if depth > 0 => depth = depth.saturating_sub(1),
                b'\\' if depth > 0 => self.bump(),
                _ if depth > 0 || is_wsp(b) => {}
                _ => return,
            }
            self.bump();
        }
    }

    /// A quoted-string after its opening quote; escapes removed, unterminated runs to
    /// the end.
    fn quoted(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.bump();
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.bump();
                    }
                }
                _ => out.push(b),
            }
        }
        out
    }

    /// `*(";" parameter)`. Leniencies: a token value runs to the next `;` or
    /// whitespace (boundaries often contain `=`, `/`, `?` unquoted); a parameter
    /// without `=` or with an empty name is dropped.
    fn params(&mut self, budget: &mut Budget) -> Vec<Param> {
        let mut params = Vec::new();
        loop {
            self.skip_cfws();
            match self.peek() {
                None => break,
                Some(b';') => self.bump(),
                Some(_) => {
                    // Garbage between parameters: skip to the next ';'.
                    self.take_while(|b| b != b';');
                    continue;
                }
            }
            self.skip_cfws();
            let name = self.token();
            self.skip_cfws();
            if name.is_empty() || !self.eat(b'=') {
                continue;
            }
            self.skip_cfws();
            let value = if self.eat(b'"') {
                self.quoted()
            } else {
                self.take_while(|b| b != b';' && !is_wsp(b)).to_vec()
            };
            if budget.take() {
                params.push(Param {
                    name: name.to_vec(),
                    value,
                });
            }
        }
        params
    }
}
