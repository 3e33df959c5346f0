//! The generic syntax tree of RFC 5228 §8.2: commands and tests with arguments, before
//! any command is known. [`crate::compile`] turns it into typed commands.

use crate::lexer::{Lexer, Tok};
use crate::{Error, Pos};

/// How deep blocks and tests may nest: keeps a hostile script from exhausting the stack.
pub const MAX_NESTING: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Tag(String, Pos),
    Num(u64, Pos),
    /// A string or a string list; `list` tells `["x"]` from `"x"`.
    Strs {
        values: Vec<String>,
        list: bool,
        pos: Pos,
    },
}

impl Arg {
    pub fn pos(&self) -> Pos {
        match self {
            Arg::Tag(_, p) | Arg::Num(_, p) => *p,
            Arg::Strs { pos, .. } => *pos,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    pub name: String,
    pub pos: Pos,
    pub args: Vec<Arg>,
    pub tests: Vec<Test>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub name: String,
    pub pos: Pos,
    pub args: Vec<Arg>,
    pub tests: Vec<Test>,
    pub block: Option<Vec<Command>>,
}

struct Parser<'a> {
    lex: Lexer<'a>,
    peeked: Option<(Tok, Pos)>,
    end: Pos,
}

/// Parses a whole script.
pub fn parse(src: &str) -> Result<Vec<Command>, Error> {
    let mut p = Parser {
        lex: Lexer::new(src),
        peeked: None,
        end: Pos { line: 1, column: 1 },
    };
    let cmds = p.commands(0)?;
    if let Some((t, pos)) = p.next()? {
        return Err(Error::new(pos, format!("unexpected {}", describe(&t))));
    }
    Ok(cmds)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("identifier {s:?}"),
        Tok::Tag(s) => format!("tag :{s}"),
        Tok::Num(n) => format!("number {n}"),
        Tok::Str(_) => "string".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
        Tok::Semi => "';'".into(),
        Tok::LBrace => "'{'".into(),
        Tok::RBrace => "'}'".into(),
    }
}

impl Parser<'_> {
    fn next(&mut self) -> Result<Option<(Tok, Pos)>, Error> {
        if let Some(t) = self.peeked.take() {
            return Ok(Some(t));
        }
        let t = self.lex.next_tok()?;
        if let Some((_, p)) = &t {
            self.end = *p;
        }
        Ok(t)
    }

    fn peek(&mut self) -> Result<Option<&Tok>, Error> {
        if self.peeked.is_none() {
            self.peeked = self.lex.next_tok()?;
            if let Some((_, p)) = &self.peeked {
                self.end = *p;
            }
        }
        Ok(self.peeked.as_ref().map(|(t, _)| t))
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<Pos, Error> {
        match self.next()? {
            Some((t, p)) if t == want => Ok(p),
            Some((t, p)) => Err(Error::new(
                p,
                format!("expected {what}, found {}", describe(&t)),
            )),
            None => Err(Error::new(
                self.end,
                format!("expected {what} before the end"),
            )),
        }
    }

    fn commands(&mut self, depth: usize) -> Result<Vec<Command>, Error> {
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                None | Some(Tok::RBrace) => return Ok(out),
                Some(_) => out.push(self.command(depth)?),
            }
        }
    }

    fn command(&mut self, depth: usize) -> Result<Command, Error> {
        let (name, pos) = match self.next()? {
            Some((Tok::Ident(n), p)) => (n, p),
            Some((t, p)) => {
                return Err(Error::new(
                    p,
                    format!("expected a command, found {}", describe(&t)),
                ));
            }
            None => return Err(Error::new(self.end, "expected a command")),
        };
        if depth > MAX_NESTING {
            return Err(Error::new(pos, "blocks nested too deeply"));
        }
        let (args, tests) = self.arguments(depth)?;
        let block = match self.next()? {
            Some((Tok::Semi, _)) => None,
            Some((Tok::LBrace, _)) => {
                let b = self.commands(depth + 1)?;
                self.expect(Tok::RBrace, "'}'")?;
                Some(b)
            }
            Some((t, p)) => {
                return Err(Error::new(
                    p,
                    format!("expected ';' or '{{' after {name}, found {}", describe(&t)),
                ));
            }
            None => return Err(Error::new(self.end, format!("missing ';' after {name}"))),
        };
        Ok(Command {
            name: name.to_ascii_lowercase(),
            pos,
            args,
            tests,
            block,
        })
    }

    /// `*argument [test / test-list]`.
    fn arguments(&mut self, depth: usize) -> Result<(Vec<Arg>, Vec<Test>), Error> {
        let mut args = Vec::new();
        loop {
            match self.peek()? {
                Some(Tok::Tag(_) | Tok::Num(_) | Tok::Str(_) | Tok::LBracket) => {
                    args.push(self.argument()?);
                }
                Some(Tok::Ident(_)) => return Ok((args, vec![self.test(depth + 1)?])),
                Some(Tok::LParen) => {
                    self.next()?;
                    let mut tests = vec![self.test(depth + 1)?];
                    loop {
                        match self.next()? {
                            Some((Tok::Comma, _)) => tests.push(self.test(depth + 1)?),
                            Some((Tok::RParen, _)) => break,
                            Some((t, p)) => {
                                return Err(Error::new(
                                    p,
                                    format!("expected ',' or ')', found {}", describe(&t)),
                                ));
                            }
                            None => return Err(Error::new(self.end, "missing ')'")),
                        }
                    }
                    return Ok((args, tests));
                }
                _ => return Ok((args, Vec::new())),
            }
        }
    }

    fn argument(&mut self) -> Result<Arg, Error> {
        match self.next()? {
            Some((Tok::Tag(t), p)) => Ok(Arg::Tag(t, p)),
            Some((Tok::Num(n), p)) => Ok(Arg::Num(n, p)),
            Some((Tok::Str(s), p)) => Ok(Arg::Strs {
                values: vec![s],
                list: false,
                pos: p,
            }),
            Some((Tok::LBracket, p)) => {
                let mut values = Vec::new();
                loop {
                    match self.next()? {
                        Some((Tok::Str(s), _)) => values.push(s),
                        Some((t, p)) => {
                            return Err(Error::new(
                                p,
                                format!("expected a string in the list, found {}", describe(&t)),
                            ));
                        }
                        None => return Err(Error::new(self.end, "missing ']'")),
                    }
                    match self.next()? {
                        Some((Tok::Comma, _)) => {}
                        Some((Tok::RBracket, _)) => break,
                        Some((t, p)) => {
                            return Err(Error::new(
                                p,
                                format!("expected ',' or ']', found {}", describe(&t)),
                            ));
                        }
                        None => return Err(Error::new(self.end, "missing ']'")),
                    }
                }
                Ok(Arg::Strs {
                    values,
                    list: true,
                    pos: p,
                })
            }
            Some((t, p)) => Err(Error::new(p, format!("unexpected {}", describe(&t)))),
            None => Err(Error::new(self.end, "unexpected end")),
        }
    }

    fn test(&mut self, depth: usize) -> Result<Test, Error> {
        let (name, pos) = match self.next()? {
            Some((Tok::Ident(n), p)) => (n, p),
            Some((t, p)) => {
                return Err(Error::new(
                    p,
                    format!("expected a test, found {}", describe(&t)),
                ));
            }
            None => return Err(Error::new(self.end, "expected a test")),
        };
        if depth > MAX_NESTING {
            return Err(Error::new(pos, "tests nested too deeply"));
        }
        let (args, tests) = self.arguments(depth)?;
        Ok(Test {
            name: name.to_ascii_lowercase(),
            pos,
            args,
            tests,
        })
    }
}
