//! From the generic syntax tree to typed commands: `require` is checked (RFC 5228 §3.2),
//! every command's tagged and positional arguments are validated, strings are decoded
//! (encoded-character, RFC 5228 §2.4.2.4) and split into variable references
//! (RFC 5229 §3) when `variables` is required.

use crate::ast::{self, Arg};
use crate::date::{DatePart, Zone};
use crate::{Error, Pos};

/// One piece of a string with variables.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Lit(String),
    /// `${name}`, name lower-cased (variable names are case-insensitive).
    Var(String),
    /// `${N}`: a match variable.
    Match(usize),
}

/// A string argument: literal, or a template when it refers to variables.
#[derive(Debug, Clone, PartialEq)]
pub enum Str {
    Lit(String),
    Tmpl(Vec<Part>),
}

impl Str {
    pub fn literal(&self) -> Option<&str> {
        match self {
            Str::Lit(s) => Some(s),
            Str::Tmpl(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Octet,
    AsciiCasemap,
    AsciiNumeric,
}

/// RFC 5231 relational operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Is,
    Contains,
    Matches,
    Regex,
    Value(RelOp),
    Count(RelOp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub comparator: Comparator,
    pub kind: MatchKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPart {
    All,
    LocalPart,
    Domain,
    User,
    Detail,
}

/// RFC 5260 §4 `:index N [:last]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub n: usize,
    pub last: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BodyTransform {
    Raw,
    Text,
    Content(Vec<Str>),
}

/// Where `duplicate` takes its identifier from (RFC 7352 §3).
#[derive(Debug, Clone, PartialEq)]
pub enum DuplicateId {
    MessageId,
    Header(Str),
    Unique(Str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Set,
    Add,
    Remove,
}

/// `:lower` ... `:length` (RFC 5229 §4.1), applied in this order (highest precedence
/// first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Modifier {
    Lower,
    Upper,
    LowerFirst,
    UpperFirst,
    QuoteWildcard,
    Length,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    True,
    False,
    Not(Box<Test>),
    AllOf(Vec<Test>),
    AnyOf(Vec<Test>),
    Exists(Vec<Str>),
    Size {
        over: bool,
        limit: u64,
    },
    Header {
        m: Match,
        index: Option<Index>,
        names: Vec<Str>,
        keys: Vec<Str>,
    },
    Address {
        m: Match,
        index: Option<Index>,
        part: AddressPart,
        names: Vec<Str>,
        keys: Vec<Str>,
    },
    Envelope {
        m: Match,
        part: AddressPart,
        names: Vec<Str>,
        keys: Vec<Str>,
    },
    Body {
        m: Match,
        transform: BodyTransform,
        keys: Vec<Str>,
    },
    String {
        m: Match,
        sources: Vec<Str>,
        keys: Vec<Str>,
    },
    HasFlag {
        m: Match,
        vars: Vec<Str>,
        keys: Vec<Str>,
    },
    MailboxExists(Vec<Str>),
    Date {
        m: Match,
        index: Option<Index>,
        zone: Zone,
        header: Str,
        part: DatePart,
        keys: Vec<Str>,
    },
    CurrentDate {
        m: Match,
        zone: Zone,
        part: DatePart,
        keys: Vec<Str>,
    },
    SpamTest {
        m: Match,
        percent: bool,
        value: Str,
    },
    VirusTest {
        m: Match,
        value: Str,
    },
    Duplicate {
        handle: Option<Str>,
        id: DuplicateId,
        seconds: Option<u64>,
        last: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct VacationArgs {
    /// `:days` in seconds, or `:seconds`.
    pub period: Option<u64>,
    pub subject: Option<Str>,
    pub from: Option<Str>,
    pub addresses: Vec<Str>,
    pub mime: bool,
    pub handle: Option<Str>,
    pub reason: Str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    If {
        branches: Vec<(Test, Vec<Command>)>,
        otherwise: Option<Vec<Command>>,
    },
    Stop,
    Return,
    Keep {
        flags: Option<Vec<Str>>,
    },
    Discard,
    FileInto {
        mailbox: Str,
        copy: bool,
        create: bool,
        flags: Option<Vec<Str>>,
    },
    Redirect {
        address: Str,
        copy: bool,
    },
    Reject {
        reason: Str,
        extended: bool,
    },
    Flags {
        op: FlagOp,
        var: Option<Str>,
        flags: Vec<Str>,
    },
    Set {
        name: String,
        modifiers: Vec<Modifier>,
        value: Str,
    },
    Vacation(Box<VacationArgs>),
    Include {
        name: Str,
        once: bool,
        optional: bool,
    },
    Global(Vec<String>),
}

/// A compiled script.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub commands: Vec<Command>,
    /// The extensions it requires.
    pub requires: Vec<String>,
}

/// Compiles `src` against the extensions `available`.
pub fn compile(src: &str, available: &[&str]) -> Result<Script, Error> {
    let tree = ast::parse(src)?;
    let mut c = Compiler {
        available,
        requires: Vec::new(),
    };
    let mut body = Vec::new();
    for cmd in tree {
        if cmd.name == "require" && body.is_empty() {
            c.require(cmd)?;
        } else {
            body.push(cmd);
        }
    }
    let commands = c.commands(body)?;
    Ok(Script {
        commands,
        requires: c.requires,
    })
}

struct Compiler<'a> {
    available: &'a [&'a str],
    requires: Vec<String>,
}

/// The tagged arguments of one command or test, and the positional ones after them.
struct Args {
    tags: Vec<(String, Pos, Option<Arg>)>,
    positional: Vec<Arg>,
    name: String,
    pos: Pos,
}

#[derive(Clone, Copy, PartialEq)]
enum TagValue {
    Nothing,
    Number,
    Strings,
}

/// What follows each known tag.
fn tag_value(tag: &str) -> TagValue {
    match tag {
        "comparator" | "value" | "count" | "zone" | "content" | "flags" | "subject" | "from"
        | "addresses" | "handle" | "header" | "uniqueid" => TagValue::Strings,
        "over" | "under" | "index" | "days" | "seconds" => TagValue::Number,
        _ => TagValue::Nothing,
    }
}

impl Args {
    fn split(name: &str, pos: Pos, args: Vec<Arg>, allowed: &[&str]) -> Result<Args, Error> {
        let mut tags: Vec<(String, Pos, Option<Arg>)> = Vec::new();
        let mut positional = Vec::new();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            match a {
                Arg::Tag(t, p) => {
                    if !positional.is_empty() {
                        return Err(Error::new(
                            p,
                            format!(":{t} must come before {name}'s other arguments"),
                        ));
                    }
                    if !allowed.contains(&t.as_str()) {
                        return Err(Error::new(p, format!("{name} has no :{t} argument")));
                    }
                    if tags.iter().any(|(o, _, _)| *o == t) {
                        return Err(Error::new(p, format!(":{t} given twice")));
                    }
                    let value = match tag_value(&t) {
                        TagValue::Nothing => None,
                        want => match it.next() {
                            Some(v @ Arg::Num(..)) if want == TagValue::Number => Some(v),
                            Some(v @ Arg::Strs { .. }) if want == TagValue::Strings => Some(v),
                            _ => {
                                return Err(Error::new(
                                    p,
                                    format!(
                                        ":{t} needs a {} after it",
                                        if want == TagValue::Number {
                                            "number"
                                        } else {
                                            "string"
                                        }
                                    ),
                                ));
                            }
                        },
                    };
                    tags.push((t, p, value));
                }
                other => positional.push(other),
            }
        }
        Ok(Args {
            tags,
            positional,
            name: name.to_string(),
            pos,
        })
    }

    fn has(&self, tag: &str) -> bool {
        self.tags.iter().any(|(t, _, _)| t == tag)
    }

    fn tag_pos(&self, tag: &str) -> Option<Pos> {
        self.tags
            .iter()
            .find(|(t, _, _)| t == tag)
            .map(|(_, p, _)| *p)
    }

    fn tag_num(&self, tag: &str) -> Option<u64> {
        self.tags.iter().find_map(|(t, _, v)| match v {
            Some(Arg::Num(n, _)) if t == tag => Some(*n),
            _ => None,
        })
    }

    fn tag_strs(&self, tag: &str) -> Option<(Vec<String>, bool, Pos)> {
        self.tags.iter().find_map(|(t, _, v)| match v {
            Some(Arg::Strs { values, list, pos }) if t == tag => {
                Some((values.clone(), *list, *pos))
            }
            _ => None,
        })
    }

    /// Exactly `n` positional arguments.
    fn count(&self, n: usize) -> Result<(), Error> {
        if self.positional.len() != n {
            let at = self.positional.get(n).map(Arg::pos).unwrap_or(self.pos);
            return Err(Error::new(
                at,
                format!(
                    "{} takes {n} positional argument{}, not {}",
                    self.name,
                    if n == 1 { "" } else { "s" },
                    self.positional.len()
                ),
            ));
        }
        Ok(())
    }

    /// Positional `i` as a string list.
    fn strs(&self, i: usize) -> Result<(Vec<String>, Pos), Error> {
        match self.positional.get(i) {
            Some(Arg::Strs { values, pos, .. }) => Ok((values.clone(), *pos)),
            Some(a) => Err(Error::new(
                a.pos(),
                format!("{} expects a string here", self.name),
            )),
            None => Err(Error::new(
                self.pos,
                format!("{} is missing an argument", self.name),
            )),
        }
    }

    /// Positional `i` as one string (not a list).
    fn one(&self, i: usize) -> Result<(String, Pos), Error> {
        match self.positional.get(i) {
            Some(Arg::Strs {
                values,
                list: false,
                pos,
            }) => Ok((values.first().cloned().unwrap_or_default(), *pos)),
            Some(a) => Err(Error::new(
                a.pos(),
                format!("{} expects a single string here", self.name),
            )),
            None => Err(Error::new(
                self.pos,
                format!("{} is missing an argument", self.name),
            )),
        }
    }
}

const MATCH_TAGS: &[&str] = &[
    "is",
    "contains",
    "matches",
    "regex",
    "value",
    "count",
    "comparator",
];
const ADDRESS_TAGS: &[&str] = &["all", "localpart", "domain", "user", "detail"];

fn tags(groups: &[&[&str]]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for g in groups {
        for t in *g {
            if let Some(s) = ALL_TAGS.iter().find(|a| **a == *t) {
                v.push(s);
            }
        }
    }
    v
}

const ALL_TAGS: &[&str] = &[
    "is",
    "contains",
    "matches",
    "regex",
    "value",
    "count",
    "comparator",
    "all",
    "localpart",
    "domain",
    "user",
    "detail",
    "index",
    "last",
    "over",
    "under",
    "raw",
    "text",
    "content",
    "zone",
    "originalzone",
    "percent",
    "copy",
    "create",
    "flags",
    "days",
    "seconds",
    "subject",
    "from",
    "addresses",
    "mime",
    "handle",
    "personal",
    "global",
    "once",
    "optional",
    "lower",
    "upper",
    "lowerfirst",
    "upperfirst",
    "quotewildcard",
    "length",
    "header",
    "uniqueid",
];

fn relop(s: &str, pos: Pos) -> Result<RelOp, Error> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "gt" => RelOp::Gt,
        "ge" => RelOp::Ge,
        "lt" => RelOp::Lt,
        "le" => RelOp::Le,
        "eq" => RelOp::Eq,
        "ne" => RelOp::Ne,
        _ => {
            return Err(Error::new(
                pos,
                format!("unknown relational operator {s:?}"),
            ));
        }
    })
}

impl Compiler<'_> {
    fn require(&mut self, cmd: ast::Command) -> Result<(), Error> {
        if cmd.block.is_some() || !cmd.tests.is_empty() {
            return Err(Error::new(cmd.pos, "require takes a string list"));
        }
        let a = Args::split("require", cmd.pos, cmd.args, &[])?;
        a.count(1)?;
        let (names, pos) = a.strs(0)?;
        for n in names {
            let n = n.to_ascii_lowercase();
            if n == "comparator-i;octet" || n == "comparator-i;ascii-casemap" {
                continue;
            }
            if !self.available.contains(&n.as_str()) {
                return Err(Error::new(pos, format!("unsupported extension {n:?}")));
            }
            if !self.requires.contains(&n) {
                self.requires.push(n);
            }
        }
        Ok(())
    }

    fn has(&self, ext: &str) -> bool {
        self.requires.iter().any(|r| r == ext)
    }

    fn need(&self, ext: &str, pos: Pos, what: &str) -> Result<(), Error> {
        if self.has(ext) {
            Ok(())
        } else {
            Err(Error::new(pos, format!("{what} needs require \"{ext}\"")))
        }
    }

    /// A string argument: decoded and split into variable references.
    fn s(&self, raw: String, pos: Pos) -> Result<Str, Error> {
        let raw = if self.has("encoded-character") {
            decode_encoded(&raw)
        } else {
            raw
        };
        if !self.has("variables") || !raw.contains("${") {
            return Ok(Str::Lit(raw));
        }
        let _ = pos;
        Ok(template(&raw))
    }

    fn list(&self, raw: Vec<String>, pos: Pos) -> Result<Vec<Str>, Error> {
        raw.into_iter().map(|r| self.s(r, pos)).collect()
    }

    fn commands(&mut self, cmds: Vec<ast::Command>) -> Result<Vec<Command>, Error> {
        let mut out: Vec<Command> = Vec::new();
        for cmd in cmds {
            let pos = cmd.pos;
            match cmd.name.as_str() {
                "elsif" | "else" => {
                    let Some(Command::If {
                        branches,
                        otherwise,
                    }) = out.last_mut()
                    else {
                        return Err(Error::new(
                            pos,
                            format!("{} without a preceding if", cmd.name),
                        ));
                    };
                    if otherwise.is_some() {
                        return Err(Error::new(pos, format!("{} after else", cmd.name)));
                    }
                    let is_else = cmd.name == "else";
                    let (test, block) = self.conditional(cmd, !is_else)?;
                    match test {
                        Some(t) => branches.push((t, block)),
                        None => *otherwise = Some(block),
                    }
                }
                "if" => {
                    let (test, block) = self.conditional(cmd, true)?;
                    out.push(Command::If {
                        branches: test.map(|t| vec![(t, block)]).unwrap_or_default(),
                        otherwise: None,
                    });
                }
                "require" => {
                    return Err(Error::new(pos, "require must come before other commands"));
                }
                _ => out.push(self.command(cmd)?),
            }
        }
        Ok(out)
    }

    /// `if`/`elsif` (with a test) and `else` (without).
    fn conditional(
        &mut self,
        mut cmd: ast::Command,
        with_test: bool,
    ) -> Result<(Option<Test>, Vec<Command>), Error> {
        let Some(block) = cmd.block.take() else {
            return Err(Error::new(cmd.pos, format!("{} needs a block", cmd.name)));
        };
        if !cmd.args.is_empty() {
            return Err(Error::new(
                cmd.pos,
                format!("{} takes no arguments", cmd.name),
            ));
        }
        let test = if with_test {
            if cmd.tests.len() != 1 {
                return Err(Error::new(
                    cmd.pos,
                    format!("{} needs exactly one test", cmd.name),
                ));
            }
            let t = cmd
                .tests
                .pop()
                .ok_or_else(|| Error::new(cmd.pos, "missing test"))?;
            Some(self.test(t)?)
        } else {
            if !cmd.tests.is_empty() {
                return Err(Error::new(cmd.pos, "else takes no test"));
            }
            None
        };
        Ok((test, self.commands(block)?))
    }

    fn command(&mut self, cmd: ast::Command) -> Result<Command, Error> {
        let ast::Command {
            name,
            pos,
            args,
            tests,
            block,
        } = cmd;
        if block.is_some() {
            return Err(Error::new(pos, format!("{name} takes no block")));
        }
        if !tests.is_empty() {
            return Err(Error::new(pos, format!("{name} takes no test")));
        }
        let a = |allowed: &[&[&str]]| Args::split(&name, pos, args.clone(), &tags(allowed));
        let flags_of = |c: &Compiler, a: &Args| -> Result<Option<Vec<Str>>, Error> {
            match a.tag_strs("flags") {
                Some((f, _, p)) => {
                    c.need("imap4flags", p, ":flags")?;
                    Ok(Some(c.list(f, p)?))
                }
                None => Ok(None),
            }
        };
        Ok(match name.as_str() {
            "stop" => {
                a(&[])?.count(0)?;
                Command::Stop
            }
            "keep" => {
                let a = a(&[&["flags"]])?;
                a.count(0)?;
                Command::Keep {
                    flags: flags_of(self, &a)?,
                }
            }
            "discard" => {
                a(&[])?.count(0)?;
                Command::Discard
            }
            "fileinto" => {
                self.need("fileinto", pos, "fileinto")?;
                let a = a(&[&["copy", "create", "flags"]])?;
                a.count(1)?;
                if let Some(p) = a.tag_pos("copy") {
                    self.need("copy", p, ":copy")?;
                }
                if let Some(p) = a.tag_pos("create") {
                    self.need("mailbox", p, ":create")?;
                }
                let (m, p) = a.one(0)?;
                Command::FileInto {
                    mailbox: self.s(m, p)?,
                    copy: a.has("copy"),
                    create: a.has("create"),
                    flags: flags_of(self, &a)?,
                }
            }
            "redirect" => {
                let a = a(&[&["copy"]])?;
                a.count(1)?;
                if let Some(p) = a.tag_pos("copy") {
                    self.need("copy", p, ":copy")?;
                }
                let (m, p) = a.one(0)?;
                Command::Redirect {
                    address: self.s(m, p)?,
                    copy: a.has("copy"),
                }
            }
            "reject" | "ereject" => {
                self.need(&name, pos, &name)?;
                let a = a(&[])?;
                a.count(1)?;
                let (m, p) = a.one(0)?;
                Command::Reject {
                    reason: self.s(m, p)?,
                    extended: name == "ereject",
                }
            }
            "setflag" | "addflag" | "removeflag" => {
                self.need("imap4flags", pos, &name)?;
                let a = a(&[])?;
                let op = match name.as_str() {
                    "setflag" => FlagOp::Set,
                    "addflag" => FlagOp::Add,
                    _ => FlagOp::Remove,
                };
                let (var, flags) = match a.positional.len() {
                    1 => (None, a.strs(0)?),
                    2 => {
                        let (v, p) = a.one(0)?;
                        self.need("variables", p, "a flag variable")?;
                        (Some(self.s(v, p)?), a.strs(1)?)
                    }
                    _ => {
                        a.count(1)?;
                        (None, a.strs(0)?)
                    }
                };
                Command::Flags {
                    op,
                    var,
                    flags: self.list(flags.0, flags.1)?,
                }
            }
            "set" => {
                self.need("variables", pos, "set")?;
                let a = a(&[&[
                    "lower",
                    "upper",
                    "lowerfirst",
                    "upperfirst",
                    "quotewildcard",
                    "length",
                ]])?;
                a.count(2)?;
                let (n, np) = a.one(0)?;
                if !valid_variable_name(&n) {
                    return Err(Error::new(np, format!("invalid variable name {n:?}")));
                }
                let mut modifiers = Vec::new();
                for (t, p, _) in &a.tags {
                    let m = match t.as_str() {
                        "lower" => Modifier::Lower,
                        "upper" => Modifier::Upper,
                        "lowerfirst" => Modifier::LowerFirst,
                        "upperfirst" => Modifier::UpperFirst,
                        "quotewildcard" => Modifier::QuoteWildcard,
                        _ => Modifier::Length,
                    };
                    let level = |m: Modifier| match m {
                        Modifier::Lower | Modifier::Upper => 40,
                        Modifier::LowerFirst | Modifier::UpperFirst => 30,
                        Modifier::QuoteWildcard => 20,
                        Modifier::Length => 10,
                    };
                    if modifiers.iter().any(|o| level(*o) == level(m)) {
                        return Err(Error::new(*p, "two modifiers of the same precedence"));
                    }
                    modifiers.push(m);
                }
                modifiers.sort();
                let (v, vp) = a.one(1)?;
                Command::Set {
                    name: n.to_ascii_lowercase(),
                    modifiers,
                    value: self.s(v, vp)?,
                }
            }
            "vacation" => {
                self.need("vacation", pos, "vacation")?;
                let a = a(&[&[
                    "days",
                    "seconds",
                    "subject",
                    "from",
                    "addresses",
                    "mime",
                    "handle",
                ]])?;
                a.count(1)?;
                if a.has("days") && a.has("seconds") {
                    return Err(Error::new(
                        pos,
                        "vacation takes :days or :seconds, not both",
                    ));
                }
                if let Some(p) = a.tag_pos("seconds") {
                    self.need("vacation-seconds", p, ":seconds")?;
                }
                let (r, rp) = a.one(0)?;
                Command::Vacation(Box::new(VacationArgs {
                    period: a
                        .tag_num("days")
                        .map(|d| d.saturating_mul(86_400))
                        .or(a.tag_num("seconds")),
                    subject: self.tag_str(&a, "subject")?,
                    from: self.tag_str(&a, "from")?,
                    addresses: match a.tag_strs("addresses") {
                        Some((v, _, p)) => self.list(v, p)?,
                        None => Vec::new(),
                    },
                    mime: a.has("mime"),
                    handle: self.tag_str(&a, "handle")?,
                    reason: self.s(r, rp)?,
                }))
            }
            "include" => {
                self.need("include", pos, "include")?;
                let a = a(&[&["personal", "global", "once", "optional"]])?;
                a.count(1)?;
                if let Some(p) = a.tag_pos("global") {
                    return Err(Error::new(
                        p,
                        "include :global is not supported (there are no global scripts)",
                    ));
                }
                let (n, p) = a.one(0)?;
                if n.is_empty() || n.contains('/') {
                    return Err(Error::new(p, format!("invalid script name {n:?}")));
                }
                Command::Include {
                    name: self.s(n, p)?,
                    once: a.has("once"),
                    optional: a.has("optional"),
                }
            }
            "return" => {
                self.need("include", pos, "return")?;
                a(&[])?.count(0)?;
                Command::Return
            }
            "global" => {
                self.need("include", pos, "global")?;
                self.need("variables", pos, "global")?;
                let a = a(&[])?;
                a.count(1)?;
                let (names, p) = a.strs(0)?;
                for n in &names {
                    if !valid_variable_name(n) {
                        return Err(Error::new(p, format!("invalid variable name {n:?}")));
                    }
                }
                Command::Global(names.iter().map(|n| n.to_ascii_lowercase()).collect())
            }
            _ => return Err(Error::new(pos, format!("unknown command {name:?}"))),
        })
    }

    /// The comparator and match type of a test.
    fn matcher(&self, a: &Args) -> Result<Match, Error> {
        let mut kind = None;
        for (t, p, v) in &a.tags {
            let k = match t.as_str() {
                "is" => MatchKind::Is,
                "contains" => MatchKind::Contains,
                "matches" => MatchKind::Matches,
                "regex" => {
                    self.need("regex", *p, ":regex")?;
                    MatchKind::Regex
                }
                "value" | "count" => {
                    self.need("relational", *p, &format!(":{t}"))?;
                    let Some(Arg::Strs {
                        values,
                        list: false,
                        pos,
                    }) = v
                    else {
                        return Err(Error::new(*p, format!(":{t} takes one string")));
                    };
                    let op = relop(values.first().map(String::as_str).unwrap_or(""), *pos)?;
                    if t == "value" {
                        MatchKind::Value(op)
                    } else {
                        MatchKind::Count(op)
                    }
                }
                _ => continue,
            };
            if kind.is_some() {
                return Err(Error::new(*p, "only one match type per test"));
            }
            kind = Some(k);
        }
        let kind = kind.unwrap_or(MatchKind::Is);
        let comparator = match a.tag_strs("comparator") {
            None => Comparator::AsciiCasemap,
            Some((v, _, p)) => match v.first().map(|s| s.to_ascii_lowercase()).as_deref() {
                Some("i;octet") => Comparator::Octet,
                Some("i;ascii-casemap") => Comparator::AsciiCasemap,
                Some("i;ascii-numeric") => {
                    self.need("comparator-i;ascii-numeric", p, "i;ascii-numeric")?;
                    if matches!(
                        kind,
                        MatchKind::Contains | MatchKind::Matches | MatchKind::Regex
                    ) {
                        return Err(Error::new(
                            p,
                            "i;ascii-numeric supports only :is, :value and :count",
                        ));
                    }
                    Comparator::AsciiNumeric
                }
                other => {
                    return Err(Error::new(
                        p,
                        format!("unknown comparator {:?}", other.unwrap_or("")),
                    ));
                }
            },
        };
        Ok(Match { comparator, kind })
    }

    fn address_part(&self, a: &Args) -> Result<AddressPart, Error> {
        let mut part = None;
        for (t, p, _) in &a.tags {
            let x = match t.as_str() {
                "all" => AddressPart::All,
                "localpart" => AddressPart::LocalPart,
                "domain" => AddressPart::Domain,
                "user" | "detail" => {
                    self.need("subaddress", *p, &format!(":{t}"))?;
                    if t == "user" {
                        AddressPart::User
                    } else {
                        AddressPart::Detail
                    }
                }
                _ => continue,
            };
            if part.is_some() {
                return Err(Error::new(*p, "only one address part per test"));
            }
            part = Some(x);
        }
        Ok(part.unwrap_or(AddressPart::All))
    }

    fn index(&self, a: &Args) -> Result<Option<Index>, Error> {
        if let Some(p) = a.tag_pos("last")
            && !a.has("index")
        {
            return Err(Error::new(p, ":last needs :index"));
        }
        match a.tag_num("index") {
            None => Ok(None),
            Some(n) => {
                let p = a.tag_pos("index").unwrap_or(a.pos);
                self.need("index", p, ":index")?;
                if n == 0 {
                    return Err(Error::new(p, ":index counts from 1"));
                }
                Ok(Some(Index {
                    n: usize::try_from(n).unwrap_or(usize::MAX),
                    last: a.has("last"),
                }))
            }
        }
    }

    /// A literal regular expression key must compile (RFC draft-ietf-sieve-regex §3).
    fn check_regex(&self, m: &Match, keys: &[Str], pos: Pos) -> Result<(), Error> {
        if m.kind != MatchKind::Regex {
            return Ok(());
        }
        for k in keys {
            if let Some(k) = k.literal() {
                crate::matching::regex(k, m.comparator, crate::Limits::default().max_regex_bytes)
                    .map_err(|e| Error::new(pos, e))?;
            }
        }
        Ok(())
    }

    /// The string of `:tag` when given: exactly one string, not a list.
    fn tag_str(&self, a: &Args, tag: &str) -> Result<Option<Str>, Error> {
        match a.tag_strs(tag) {
            Some((v, false, p)) => Ok(Some(self.s(v.into_iter().next().unwrap_or_default(), p)?)),
            Some((_, true, p)) => Err(Error::new(p, format!(":{tag} takes one string"))),
            None => Ok(None),
        }
    }

    fn zone(&self, a: &Args) -> Result<Zone, Error> {
        if a.has("zone") && a.has("originalzone") {
            return Err(Error::new(
                a.pos,
                ":zone and :originalzone exclude each other",
            ));
        }
        if a.has("originalzone") {
            return Ok(Zone::Original);
        }
        match a.tag_strs("zone") {
            None => Ok(Zone::Local),
            Some((v, _, p)) => {
                let z = v.first().map(String::as_str).unwrap_or("");
                crate::date::parse_offset(z)
                    .map(Zone::Fixed)
                    .ok_or_else(|| Error::new(p, format!("invalid time zone {z:?} (use +hhmm)")))
            }
        }
    }

    fn date_part(&self, raw: &str, pos: Pos) -> Result<DatePart, Error> {
        DatePart::parse(raw).ok_or_else(|| Error::new(pos, format!("unknown date part {raw:?}")))
    }

    fn test(&mut self, t: ast::Test) -> Result<Test, Error> {
        let ast::Test {
            name,
            pos,
            args,
            mut tests,
        } = t;
        let subtests = |c: &mut Compiler, tests: Vec<ast::Test>| -> Result<Vec<Test>, Error> {
            tests.into_iter().map(|t| c.test(t)).collect()
        };
        if !matches!(name.as_str(), "not" | "allof" | "anyof") && !tests.is_empty() {
            return Err(Error::new(pos, format!("{name} takes no tests")));
        }
        let split = |allowed: &[&[&str]]| Args::split(&name, pos, args.clone(), &tags(allowed));
        Ok(match name.as_str() {
            "true" | "false" => {
                split(&[])?.count(0)?;
                if name == "true" {
                    Test::True
                } else {
                    Test::False
                }
            }
            "not" => {
                split(&[])?.count(0)?;
                if tests.len() != 1 {
                    return Err(Error::new(pos, "not takes exactly one test"));
                }
                let t = tests.pop().ok_or_else(|| Error::new(pos, "missing test"))?;
                Test::Not(Box::new(self.test(t)?))
            }
            "allof" | "anyof" => {
                split(&[])?.count(0)?;
                if tests.is_empty() {
                    return Err(Error::new(pos, format!("{name} needs a test list")));
                }
                let v = subtests(self, tests)?;
                if name == "allof" {
                    Test::AllOf(v)
                } else {
                    Test::AnyOf(v)
                }
            }
            "exists" => {
                let a = split(&[])?;
                a.count(1)?;
                let (v, p) = a.strs(0)?;
                Test::Exists(self.list(v, p)?)
            }
            "size" => {
                let a = split(&[&["over", "under"]])?;
                a.count(0)?;
                let over = match (a.tag_num("over"), a.tag_num("under")) {
                    (Some(n), None) => (true, n),
                    (None, Some(n)) => (false, n),
                    _ => return Err(Error::new(pos, "size takes :over N or :under N")),
                };
                Test::Size {
                    over: over.0,
                    limit: over.1,
                }
            }
            "header" => {
                let a = split(&[MATCH_TAGS, &["index", "last"]])?;
                a.count(2)?;
                let m = self.matcher(&a)?;
                let (n, np) = a.strs(0)?;
                let (k, kp) = a.strs(1)?;
                let keys = self.list(k, kp)?;
                self.check_regex(&m, &keys, kp)?;
                Test::Header {
                    m,
                    index: self.index(&a)?,
                    names: self.list(n, np)?,
                    keys,
                }
            }
            "address" | "envelope" => {
                if name == "envelope" {
                    self.need("envelope", pos, "envelope")?;
                }
                let extra: &[&str] = if name == "address" {
                    &["index", "last"]
                } else {
                    &[]
                };
                let a = split(&[MATCH_TAGS, ADDRESS_TAGS, extra])?;
                a.count(2)?;
                let m = self.matcher(&a)?;
                let part = self.address_part(&a)?;
                let (n, np) = a.strs(0)?;
                let (k, kp) = a.strs(1)?;
                let keys = self.list(k, kp)?;
                self.check_regex(&m, &keys, kp)?;
                let names = self.list(n, np)?;
                if name == "envelope" {
                    Test::Envelope {
                        m,
                        part,
                        names,
                        keys,
                    }
                } else {
                    Test::Address {
                        m,
                        index: self.index(&a)?,
                        part,
                        names,
                        keys,
                    }
                }
            }
            "body" => {
                self.need("body", pos, "body")?;
                let a = split(&[MATCH_TAGS, &["raw", "text", "content"]])?;
                a.count(1)?;
                let m = self.matcher(&a)?;
                let n = usize::from(a.has("raw"))
                    + usize::from(a.has("text"))
                    + usize::from(a.has("content"));
                if n > 1 {
                    return Err(Error::new(pos, "body takes one of :raw, :text, :content"));
                }
                let transform = if a.has("raw") {
                    BodyTransform::Raw
                } else if let Some((v, _, p)) = a.tag_strs("content") {
                    BodyTransform::Content(self.list(v, p)?)
                } else {
                    BodyTransform::Text
                };
                let (k, kp) = a.strs(0)?;
                let keys = self.list(k, kp)?;
                self.check_regex(&m, &keys, kp)?;
                Test::Body { m, transform, keys }
            }
            "string" => {
                self.need("variables", pos, "string")?;
                let a = split(&[MATCH_TAGS])?;
                a.count(2)?;
                let m = self.matcher(&a)?;
                let (s, sp) = a.strs(0)?;
                let (k, kp) = a.strs(1)?;
                let keys = self.list(k, kp)?;
                self.check_regex(&m, &keys, kp)?;
                Test::String {
                    m,
                    sources: self.list(s, sp)?,
                    keys,
                }
            }
            "hasflag" => {
                self.need("imap4flags", pos, "hasflag")?;
                let a = split(&[MATCH_TAGS])?;
                let m = self.matcher(&a)?;
                let (vars, keys) = match a.positional.len() {
                    1 => (Vec::new(), a.strs(0)?),
                    _ => {
                        a.count(2)?;
                        let (v, p) = a.strs(0)?;
                        self.need("variables", p, "hasflag with variables")?;
                        (self.list(v, p)?, a.strs(1)?)
                    }
                };
                Test::HasFlag {
                    m,
                    vars,
                    keys: self.list(keys.0, keys.1)?,
                }
            }
            "mailboxexists" => {
                self.need("mailbox", pos, "mailboxexists")?;
                let a = split(&[])?;
                a.count(1)?;
                let (v, p) = a.strs(0)?;
                Test::MailboxExists(self.list(v, p)?)
            }
            "date" => {
                self.need("date", pos, "date")?;
                let a = split(&[MATCH_TAGS, &["index", "last", "zone", "originalzone"]])?;
                a.count(3)?;
                let m = self.matcher(&a)?;
                let (h, hp) = a.one(0)?;
                let (d, dp) = a.one(1)?;
                let (k, kp) = a.strs(2)?;
                Test::Date {
                    m,
                    index: self.index(&a)?,
                    zone: self.zone(&a)?,
                    header: self.s(h, hp)?,
                    part: self.date_part(&d, dp)?,
                    keys: self.list(k, kp)?,
                }
            }
            "currentdate" => {
                self.need("date", pos, "currentdate")?;
                let a = split(&[MATCH_TAGS, &["zone"]])?;
                a.count(2)?;
                let m = self.matcher(&a)?;
                let (d, dp) = a.one(0)?;
                let (k, kp) = a.strs(1)?;
                Test::CurrentDate {
                    m,
                    zone: self.zone(&a)?,
                    part: self.date_part(&d, dp)?,
                    keys: self.list(k, kp)?,
                }
            }
            "spamtest" | "virustest" => {
                let spam = name == "spamtest";
                let extra: &[&str] = if spam { &["percent"] } else { &[] };
                let a = split(&[MATCH_TAGS, extra])?;
                match a.tag_pos("percent") {
                    Some(p) => self.need("spamtestplus", p, ":percent")?,
                    None if spam && !self.has("spamtestplus") => {
                        self.need("spamtest", pos, "spamtest")?
                    }
                    None if !spam => self.need("virustest", pos, "virustest")?,
                    None => {}
                }
                a.count(1)?;
                let m = self.matcher(&a)?;
                let (v, p) = a.one(0)?;
                let value = self.s(v, p)?;
                if spam {
                    Test::SpamTest {
                        m,
                        percent: a.has("percent"),
                        value,
                    }
                } else {
                    Test::VirusTest { m, value }
                }
            }
            "duplicate" => {
                self.need("duplicate", pos, "duplicate")?;
                let a = split(&[&["handle", "header", "uniqueid", "seconds", "last"]])?;
                a.count(0)?;
                let id = match (self.tag_str(&a, "header")?, self.tag_str(&a, "uniqueid")?) {
                    (Some(_), Some(_)) => {
                        return Err(Error::new(pos, ":header and :uniqueid exclude each other"));
                    }
                    (Some(h), None) => DuplicateId::Header(h),
                    (None, Some(u)) => DuplicateId::Unique(u),
                    (None, None) => DuplicateId::MessageId,
                };
                Test::Duplicate {
                    handle: self.tag_str(&a, "handle")?,
                    id,
                    seconds: a.tag_num("seconds"),
                    last: a.has("last"),
                }
            }
            _ => return Err(Error::new(pos, format!("unknown test {name:?}"))),
        })
    }
}

/// An identifier, or a namespaced `a.b` (RFC 5229 §3).
fn valid_variable_name(n: &str) -> bool {
    !n.is_empty()
        && n.split('.').all(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Splits `${...}` references out of a string (RFC 5229 §3); anything that is not a
/// valid reference stays literal.
pub fn template(raw: &str) -> Str {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find("${") {
        let (before, after) = rest.split_at(i);
        lit.push_str(before);
        let inner = &after[2..];
        match inner.find('}') {
            Some(end) => {
                let name = &inner[..end];
                let part = if !name.is_empty() && name.chars().all(|c| c.is_ascii_digit()) {
                    name.parse().ok().map(Part::Match)
                } else if valid_variable_name(name) {
                    Some(Part::Var(name.to_ascii_lowercase()))
                } else {
                    None
                };
                match part {
                    Some(p) => {
                        if !lit.is_empty() {
                            parts.push(Part::Lit(std::mem::take(&mut lit)));
                        }
                        parts.push(p);
                        rest = &inner[end + 1..];
                    }
                    None => {
                        lit.push_str("${");
                        rest = inner;
                    }
                }
            }
            None => {
                lit.push_str(after);
                rest = "";
            }
        }
    }
    lit.push_str(rest);
    if parts.is_empty() {
        return Str::Lit(lit);
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Str::Tmpl(parts)
}

/// RFC 5228 §2.4.2.4: `${hex: 41 42}` and `${unicode: 263a}`; malformed sequences stay
/// as written.
pub fn decode_encoded(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find("${") {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let inner = &after[2..];
        let decoded = inner.find('}').and_then(|end| {
            let body = &inner[..end];
            let (kind, data) = body.split_once(':')?;
            let kind = kind.trim().to_ascii_lowercase();
            let words: Vec<&str> = data.split_ascii_whitespace().collect();
            let s = match kind.as_str() {
                "hex" => {
                    let mut bytes = Vec::new();
                    for w in &words {
                        if w.len() % 2 != 0 {
                            return None;
                        }
                        for k in (0..w.len()).step_by(2) {
                            bytes.push(u8::from_str_radix(w.get(k..k + 2)?, 16).ok()?);
                        }
                    }
                    String::from_utf8(bytes).ok()?
                }
                "unicode" => {
                    let mut s = String::new();
                    for w in &words {
                        let n = u32::from_str_radix(w, 16).ok()?;
                        s.push(char::from_u32(n)?);
                    }
                    s
                }
                _ => return None,
            };
            Some((s, end))
        });
        match decoded {
            Some((s, end)) => {
                out.push_str(&s);
                rest = &inner[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = inner;
            }
        }
    }
    out.push_str(rest);
    out
}
