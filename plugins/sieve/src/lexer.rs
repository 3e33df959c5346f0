//! Tokens of a Sieve script (RFC 5228 §2 and §8.1), each with its line and column.

use crate::{Error, Pos};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A command or test name, e.g. `fileinto` (kept as written; compared
    /// case-insensitively).
    Ident(String),
    /// `:is` without the colon.
    Tag(String),
    /// A number with its quantifier applied (K, M, G: RFC 5228 §2.4.1).
    Num(u64),
    /// A quoted string or a `text:` multi-line string, escapes and dot-stuffing removed.
    Str(String),
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Semi,
    LBrace,
    RBrace,
}

pub struct Lexer<'a> {
    src: &'a [u8],
    at: usize,
    line: u32,
    col: u32,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Lexer<'a> {
        Lexer {
            src: src.as_bytes(),
            at: 0,
            line: 1,
            col: 1,
        }
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.col,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if c & 0xC0 != 0x80 {
            // Columns count characters, not UTF-8 continuation bytes.
            self.col += 1;
        }
        Some(c)
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        self.src.get(self.at..).is_some_and(|r| r.starts_with(s))
    }

    /// Skips white space and comments.
    fn skip(&mut self) -> Result<(), Error> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => {
                    self.bump();
                }
                Some(b'#') => {
                    while let Some(c) = self.bump() {
                        if c == b'\n' {
                            break;
                        }
                    }
                }
                Some(b'/') if self.starts_with(b"/*") => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        if self.starts_with(b"*/") {
                            self.bump();
                            self.bump();
                            break;
                        }
                        if self.bump().is_none() {
                            return Err(Error::new(start, "unterminated /* comment"));
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn text(&self, from: usize) -> String {
        String::from_utf8_lossy(self.src.get(from..self.at).unwrap_or_default()).into_owned()
    }

    /// The next token and where it starts; `None` at the end.
    pub fn next_tok(&mut self) -> Result<Option<(Tok, Pos)>, Error> {
        self.skip()?;
        let pos = self.pos();
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        let tok = match c {
            b'[' | b']' | b'(' | b')' | b',' | b';' | b'{' | b'}' => {
                self.bump();
                match c {
                    b'[' => Tok::LBracket,
                    b']' => Tok::RBracket,
                    b'(' => Tok::LParen,
                    b')' => Tok::RParen,
                    b',' => Tok::Comma,
                    b';' => Tok::Semi,
                    b'{' => Tok::LBrace,
                    _ => Tok::RBrace,
                }
            }
            b'"' => Tok::Str(self.quoted(pos)?),
            b':' => {
                self.bump();
                let from = self.at;
                self.ident_chars();
                if self.at == from {
                    return Err(Error::new(pos, "a tag needs a name after ':'"));
                }
                Tok::Tag(self.text(from).to_ascii_lowercase())
            }
            b'0'..=b'9' => {
                let from = self.at;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
                let n: u64 = self
                    .text(from)
                    .parse()
                    .map_err(|_| Error::new(pos, "number too large"))?;
                let shift = match self.peek() {
                    Some(b'k' | b'K') => 10,
                    Some(b'm' | b'M') => 20,
                    Some(b'g' | b'G') => 30,
                    _ => 0,
                };
                if shift > 0 {
                    self.bump();
                }
                Tok::Num(
                    n.checked_mul(1 << shift)
                        .ok_or_else(|| Error::new(pos, "number too large"))?,
                )
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let from = self.at;
                self.ident_chars();
                let word = self.text(from);
                if word.eq_ignore_ascii_case("text") && self.peek() == Some(b':') {
                    self.bump();
                    Tok::Str(self.multiline(pos)?)
                } else {
                    Tok::Ident(word)
                }
            }
            _ => {
                let ch = std::str::from_utf8(self.src.get(self.at..).unwrap_or_default())
                    .ok()
                    .and_then(|s| s.chars().next())
                    .unwrap_or('?');
                return Err(Error::new(pos, format!("unexpected character {ch:?}")));
            }
        };
        Ok(Some((tok, pos)))
    }

    fn ident_chars(&mut self) {
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.bump();
        }
    }

    /// A quoted string (RFC 5228 §2.4.2): `\"` and `\\` escape; any other `\x` is `x`.
    fn quoted(&mut self, pos: Pos) -> Result<String, Error> {
        self.bump();
        let mut out = Vec::new();
        loop {
            match self.bump() {
                None => return Err(Error::new(pos, "unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => match self.bump() {
                    Some(c) => out.push(c),
                    None => return Err(Error::new(pos, "unterminated string")),
                },
                Some(c) => out.push(c),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// A `text:` multi-line string (RFC 5228 §2.4.2): up to a line holding only `.`;
    /// a leading `..` stands for `.`.
    fn multiline(&mut self, pos: Pos) -> Result<String, Error> {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
        match self.peek() {
            Some(b'#') => {
                while let Some(c) = self.bump() {
                    if c == b'\n' {
                        break;
                    }
                }
            }
            Some(b'\r') if self.starts_with(b"\r\n") => {
                self.bump();
                self.bump();
            }
            Some(b'\n') => {
                self.bump();
            }
            _ => {
                return Err(Error::new(
                    self.pos(),
                    "text: must be followed by a line end",
                ));
            }
        }
        let mut out = String::new();
        loop {
            let from = self.at;
            let mut ended = false;
            while let Some(c) = self.bump() {
                if c == b'\n' {
                    ended = true;
                    break;
                }
            }
            let line = self.text(from);
            let content = line.trim_end_matches('\n').trim_end_matches('\r');
            if content == "." {
                return Ok(out);
            }
            if !ended {
                return Err(Error::new(pos, "text: string without a closing '.' line"));
            }
            let content = content
                .strip_prefix('.')
                .filter(|r| r.starts_with('.'))
                .unwrap_or(content);
            out.push_str(content);
            out.push_str("\r\n");
        }
    }
}
