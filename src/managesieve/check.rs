//! Checking scripts before they are stored (PUTSCRIPT, CHECKSCRIPT; RFC 5804 §2.6, §2.12)
//! and the extension list CAPABILITY's `SIEVE` shows (§1.7).
//!
//! The Sieve interpreter (a plugin) implements [`SieveChecker`]. Without one, ManageSieve
//! still runs with the [`LexicalChecker`]: scripts can be managed, and obvious mistakes
//! (an unterminated string or comment, unbalanced brackets) are refused with their line
//! and column, but no extension is advertised and nothing runs the scripts.

/// Where and why a script is not valid. `line` and `column` count from 1 (column in
/// characters). Shown as `line L: column C: message`: `line L:` is how Pigeonhole
/// words it, which clients parse (Roundcube's raw editor marks the line only then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ScriptError {}

/// What ManageSieve asks of the Sieve implementation.
pub trait SieveChecker: Send + Sync {
    /// The extensions scripts may `require` (RFC 5228 §3.2 capability strings, e.g.
    /// `fileinto`), for CAPABILITY's `SIEVE`. Called on the blocking pool when a
    /// connection starts; implementations should answer from memory.
    fn extensions(&self) -> Vec<String>;

    /// Parses `script` completely (syntax, `require` of supported extensions, argument
    /// types); the first error found. Called on the blocking pool.
    fn check(&self, script: &str) -> Result<(), ScriptError>;
}

/// The checker used when no Sieve plugin provides one: RFC 5228 §8.1 lexical rules only.
#[derive(Debug, Clone, Copy, Default)]
pub struct LexicalChecker;

impl SieveChecker for LexicalChecker {
    fn extensions(&self) -> Vec<String> {
        Vec::new()
    }

    fn check(&self, script: &str) -> Result<(), ScriptError> {
        lex(script)
    }
}

/// Position tracking over the script's characters.
struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    column: u32,
}

impl Cursor<'_> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn error(&self, line: u32, column: u32, message: impl Into<String>) -> ScriptError {
        let _ = self;
        ScriptError {
            line,
            column,
            message: message.into(),
        }
    }
}

/// RFC 5228 §8.1: comments, quoted strings, `text:` multi-line strings, brackets, and
/// that the script ends after a complete command (`;` or `}`).
fn lex(script: &str) -> Result<(), ScriptError> {
    let mut c = Cursor {
        chars: script.chars().peekable(),
        line: 1,
        column: 1,
    };
    // Open brackets: the character and where it was.
    let mut open: Vec<(char, u32, u32)> = Vec::new();
    // The last token that was not whitespace or a comment.
    let mut last: Option<char> = None;
    while let Some(ch) = c.peek() {
        let (line, column) = (c.line, c.column);
        match ch {
            ' ' | '\t' | '\r' | '\n' => {
                c.bump();
            }
            '#' => {
                while let Some(x) = c.bump() {
                    if x == '\n' {
                        break;
                    }
                }
            }
            '/' => {
                c.bump();
                if c.peek() != Some('*') {
                    return Err(c.error(line, column, "unexpected '/'"));
                }
                c.bump();
                let mut star = false;
                loop {
                    match c.bump() {
                        Some('/') if star => break,
                        Some(x) => star = x == '*',
                        None => return Err(c.error(line, column, "unterminated comment")),
                    }
                }
            }
            '"' => {
                c.bump();
                loop {
                    match c.bump() {
                        Some('"') => break,
                        Some('\\') => {
                            if c.bump().is_none() {
                                return Err(c.error(line, column, "unterminated string"));
                            }
                        }
                        Some(_) => {}
                        None => return Err(c.error(line, column, "unterminated string")),
                    }
                }
                last = Some('"');
            }
            '(' | '[' | '{' => {
                c.bump();
                open.push((ch, line, column));
                last = Some(ch);
            }
            ')' | ']' | '}' => {
                c.bump();
                let want = match ch {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                match open.pop() {
                    Some((o, _, _)) if o == want => {}
                    Some((o, l, col)) => {
                        return Err(c.error(
                            line,
                            column,
                            format!("'{ch}' does not close '{o}' of line {l}, column {col}"),
                        ));
                    }
                    None => return Err(c.error(line, column, format!("unmatched '{ch}'"))),
                }
                last = Some(ch);
            }
            ';' | ',' => {
                c.bump();
                last = Some(ch);
            }
            ':' => {
                c.bump();
                let mut word = String::new();
                while let Some(x) = c.peek().filter(|x| x.is_ascii_alphanumeric() || *x == '_') {
                    word.push(x);
                    c.bump();
                }
                if word.is_empty() {
                    return Err(c.error(line, column, "':' without a tag name"));
                }
                last = Some(':');
            }
            x if x.is_ascii_alphanumeric() || x == '_' => {
                let mut word = String::new();
                while let Some(x) = c.peek().filter(|x| x.is_ascii_alphanumeric() || *x == '_') {
                    word.push(x);
                    c.bump();
                }
                if word.eq_ignore_ascii_case("text") && c.peek() == Some(':') {
                    c.bump();
                    multiline(&mut c, line, column)?;
                    last = Some('"');
                } else {
                    last = Some('a');
                }
            }
            other => {
                return Err(c.error(line, column, format!("unexpected character {other:?}")));
            }
        }
    }
    if let Some((o, l, col)) = open.pop() {
        return Err(c.error(l, col, format!("'{o}' is never closed")));
    }
    match last {
        None | Some(';') | Some('}') => Ok(()),
        Some(_) => Err(c.error(c.line, c.column, "missing ';' at the end")),
    }
}

/// The rest of a `text:` string: optional blanks and a hash comment up to the line end,
/// then lines up to one holding only `.` (RFC 5228 §8.1 `multi-line`).
fn multiline(c: &mut Cursor<'_>, line: u32, column: u32) -> Result<(), ScriptError> {
    loop {
        match c.bump() {
            Some(' ' | '\t' | '\r') => {}
            Some('\n') => break,
            Some('#') => {
                while let Some(x) = c.bump() {
                    if x == '\n' {
                        break;
                    }
                }
                break;
            }
            _ => {
                return Err(c.error(line, column, "'text:' must end its line"));
            }
        }
    }
    let mut current = String::new();
    while let Some(x) = c.bump() {
        if x == '\n' {
            if current.trim_end_matches('\r') == "." {
                return Ok(());
            }
            current.clear();
        } else {
            current.push(x);
        }
    }
    Err(c.error(
        line,
        column,
        "unterminated 'text:' string (no line with '.')",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_checker() {
        let ok = [
            "",
            "keep;",
            "require [\"fileinto\"];\r\nif header :contains \"subject\" \"x\" {\r\n  fileinto \"Junk\";\r\n}\r\n",
            "# comment\n/* a\n * b */ stop;",
            "vacation :days 7 text:\r\nI am away.\r\n..\r\n.\r\n;",
            "if size :over 100K { discard; } else { keep; }",
        ];
        for s in ok {
            assert_eq!(LexicalChecker.check(s), Ok(()), "{s:?}");
        }
        let bad: &[(&str, u32, u32)] = &[
            ("keep", 1, 5),
            ("if true {\n  keep;\n", 1, 9),
            ("keep;\n}", 2, 1),
            ("fileinto \"x;\n", 1, 10),
            ("/* open", 1, 1),
            ("if anyof(true] {}", 1, 14),
            ("keep;\nvacation text:\nx\n", 2, 10),
            ("keep; @", 1, 7),
        ];
        for (s, line, column) in bad {
            let e = LexicalChecker.check(s).unwrap_err();
            assert_eq!((e.line, e.column), (*line, *column), "{s:?}: {e}");
        }
    }
}
