//! A Sieve interpreter (RFC 5228 and extensions), written for nestbox from the RFCs, and
//! the WebAssembly component that runs it as a nestbox plugin (`world sieve-plugin`).
//!
//! The language lives in plain modules that build and test on any target:
//! [`lexer`] → [`ast`] (generic syntax, errors carry line and column) → [`compile`]
//! (typed commands, `require` checked, every argument validated) → [`eval`] (runs a
//! compiled script over the [`Message`] and [`Host`] traits and yields an [`Outcome`]).
//! The component glue (`glue`, wasm32 only) implements those traits with the host's
//! imports and caches compiled scripts per version.

pub mod address;
pub mod ast;
pub mod compile;
pub mod date;
pub mod eval;
pub mod lexer;
pub mod matching;

// The generated component bindings and their export need unsafe code.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod glue;

pub use compile::Script;
pub use eval::{FileInto, Outcome, Vacation, run};

/// A place in a script: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// A compile error, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub pos: Pos,
    pub message: String,
}

impl Error {
    pub fn new(pos: Pos, message: impl Into<String>) -> Error {
        Error {
            pos,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: column {}: {}",
            self.pos.line, self.pos.column, self.message
        )
    }
}

/// The message a script looks at.
pub trait Message {
    /// Size in octets.
    fn size(&self) -> u64;
    /// Every value of the top-level header field `name` (case-insensitive), in order,
    /// unfolded and decoded.
    fn header(&self, name: &str) -> Vec<String>;
    /// The first text part, decoded (for `body :text` and `:content "text"`).
    fn body_text(&self) -> Option<String>;
    /// The body as stored, after the header (for `body :raw`).
    fn body_raw(&self) -> String;
}

/// Who the message is from and for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope {
    /// MAIL FROM; `None` or empty for the null sender.
    pub from: Option<String>,
    /// RCPT TO.
    pub to: String,
    /// The local user the copy is for.
    pub user: String,
}

/// What a script may ask of the server while it runs.
pub trait Host {
    /// The user's personal script `name`, compiled (`include :personal`); `Err` says
    /// why it is not there or does not compile.
    fn include(&mut self, name: &str) -> Result<std::rc::Rc<Script>, String>;
    /// RFC 7352 tracking: was `id` seen within `seconds`? Records it (and with `last`
    /// restarts its period even when seen).
    fn duplicate(&mut self, id: &str, seconds: u64, last: bool) -> bool;
    /// Does the user's mailbox `name` exist (RFC 5490 `mailboxexists`)?
    fn mailbox_exists(&mut self, name: &str) -> bool;
    /// Now, Unix seconds (UTC).
    fn now(&self) -> i64;
}

/// Limits of one run; a script that exceeds one gets a run-time error (the message is
/// then kept in INBOX, RFC 5228 §2.10.6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Commands and tests evaluated, over all included scripts.
    pub max_steps: u64,
    /// Length of one variable's value in bytes (RFC 5229 §6 lets us truncate).
    pub max_variable_bytes: usize,
    /// Nesting depth of `include`.
    pub max_include_depth: usize,
    /// Compiled size of one regular expression.
    pub max_regex_bytes: usize,
    /// Bytes of the body `body` looks at.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_steps: 100_000,
            max_variable_bytes: 4096,
            max_include_depth: 8,
            max_regex_bytes: 1 << 20,
            max_body_bytes: 1 << 20,
        }
    }
}

/// The extensions this interpreter implements, as the ManageSieve `SIEVE` capability
/// lists them; `vacation` and `vacation-seconds` only when the server can send mail.
pub fn extensions(vacation: bool) -> Vec<&'static str> {
    let mut v = vec![
        "fileinto",
        "reject",
        "ereject",
        "envelope",
        "encoded-character",
        "imap4flags",
        "body",
        "variables",
        "relational",
        "comparator-i;ascii-numeric",
        "subaddress",
        "copy",
        "mailbox",
        "regex",
        "date",
        "index",
        "spamtest",
        "spamtestplus",
        "virustest",
        "include",
        "duplicate",
    ];
    if vacation {
        v.push("vacation");
        v.push("vacation-seconds");
    }
    v
}

/// Compiles `src` (what ManageSieve's PUTSCRIPT and CHECKSCRIPT run).
pub fn check(src: &str, vacation: bool) -> Result<Script, Error> {
    compile::compile(src, &extensions(vacation))
}

#[cfg(test)]
mod tests;
