//! Declarative filter rules from the plugin's settings: what most people use Sieve for.
//!
//! Each setting `rule.N` (N orders them numerically) is one rule:
//!
//! ```text
//! FIELD OP PATTERN => ACTION [ARG] [; ACTION [ARG]]...
//! ```
//!
//! - FIELD: `from` (envelope MAIL FROM), `to` (RCPT TO), `user`, `source` (how the
//!   message arrived: `lmtp`, `deliver`, `append` or `import`), `size` (octets), or
//!   `header:NAME` (every value of that header, e.g. `header:List-Id`).
//! - OP: `contains`, `is`, `matches` (glob: `*` any run, `?` one character), each
//!   case-insensitive, optionally negated with `!` (`!contains`); for `size`: `>` or `<`.
//! - PATTERN: a word or a "quoted string" (`\"` and `\\` escape inside quotes).
//! - ACTION: `fileinto FOLDER`, `flag FLAG` (IMAP flag or keyword), `reject TEXT`
//!   (permanent, 550), `tempfail TEXT` (450, retry), `discard`, `stop` (no further rules).
//!
//! Every matching rule applies in order: the last `fileinto` wins, flags accumulate, and
//! `reject`, `tempfail` or `discard` ends processing. A rule that does not parse is
//! logged and skipped.

use std::sync::OnceLock;

use nestbox_plugin_sdk::{
    Delivery, Envelope, Filter, Level, Message, Rejection, Verdict, host, log,
};

#[derive(Debug, Clone, PartialEq)]
enum Field {
    From,
    To,
    User,
    Source,
    Size,
    Header(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Contains,
    Is,
    Matches,
    Greater,
    Less,
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    FileInto(String),
    Flag(String),
    Reject(String),
    TempFail(String),
    Discard,
    Stop,
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    field: Field,
    op: Op,
    negate: bool,
    pattern: String,
    actions: Vec<Action>,
}

/// Splits into words; "quoted strings" are one word.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut w = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => w.extend(chars.next()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => w.push(c),
                }
            }
            if !closed {
                return Err("unterminated quote".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
        }
        out.push(w);
    }
    Ok(out)
}

fn parse(rule: &str) -> Result<Rule, String> {
    let (cond, acts) = rule.split_once("=>").ok_or("missing =>")?;
    let w = words(cond)?;
    let [field, op, pattern] = w.as_slice() else {
        return Err("the condition must be FIELD OP PATTERN".into());
    };
    let field = match field.to_ascii_lowercase().as_str() {
        "from" => Field::From,
        "to" => Field::To,
        "user" => Field::User,
        "source" => Field::Source,
        "size" => Field::Size,
        f => match f.strip_prefix("header:") {
            Some(name) if !name.is_empty() => Field::Header(name.to_string()),
            _ => return Err(format!("unknown field {field:?}")),
        },
    };
    let (negate, op_name) = match op.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, op.as_str()),
    };
    let op = match op_name.to_ascii_lowercase().as_str() {
        "contains" => Op::Contains,
        "is" => Op::Is,
        "matches" => Op::Matches,
        ">" => Op::Greater,
        "<" => Op::Less,
        _ => return Err(format!("unknown operator {op:?}")),
    };
    if (field == Field::Size) != matches!(op, Op::Greater | Op::Less) {
        return Err("size takes > or <, other fields contains/is/matches".into());
    }
    if field == Field::Size && pattern.parse::<u64>().is_err() {
        return Err(format!("size needs a number, not {pattern:?}"));
    }
    let mut actions = Vec::new();
    for part in acts.split(';') {
        let w = words(part)?;
        let (name, arg) = match w.as_slice() {
            [] => continue,
            [name] => (name.to_ascii_lowercase(), None),
            [name, rest @ ..] => (name.to_ascii_lowercase(), Some(rest.join(" "))),
        };
        actions.push(match (name.as_str(), arg) {
            ("fileinto", Some(a)) => Action::FileInto(a),
            ("flag", Some(a)) => Action::Flag(a),
            ("reject", a) => Action::Reject(a.unwrap_or_else(|| "rejected".into())),
            ("tempfail", a) => Action::TempFail(a.unwrap_or_else(|| "try again later".into())),
            ("discard", None) => Action::Discard,
            ("stop", None) => Action::Stop,
            (n, _) => return Err(format!("bad action {n:?}")),
        });
    }
    if actions.is_empty() {
        return Err("no action".into());
    }
    Ok(Rule {
        field,
        op,
        negate,
        pattern: pattern.clone(),
        actions,
    })
}

/// Glob match, case-insensitive: `*` any run, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn test_value(op: &Op, pattern: &str, value: &str) -> bool {
    match op {
        Op::Contains => value.to_lowercase().contains(&pattern.to_lowercase()),
        Op::Is => value.trim().eq_ignore_ascii_case(pattern),
        Op::Matches => glob(pattern, value.trim()),
        Op::Greater | Op::Less => false,
    }
}

fn matches(rule: &Rule, env: &Envelope, msg: &Message) -> bool {
    let hit = match &rule.field {
        Field::Size => {
            let n: u64 = rule.pattern.parse().unwrap_or(u64::MAX);
            match rule.op {
                Op::Greater => msg.size() > n,
                _ => msg.size() < n,
            }
        }
        Field::From => test_value(
            &rule.op,
            &rule.pattern,
            env.mail_from.as_deref().unwrap_or(""),
        ),
        Field::To => test_value(&rule.op, &rule.pattern, &env.rcpt_to),
        Field::User => test_value(&rule.op, &rule.pattern, &env.user),
        Field::Source => test_value(&rule.op, &rule.pattern, &env.source),
        Field::Header(name) => msg
            .header(name)
            .iter()
            .any(|v| test_value(&rule.op, &rule.pattern, v)),
    };
    hit != rule.negate
}

/// The rules from the settings, parsed once per instance.
fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let mut keyed: Vec<(u64, String)> = Vec::new();
        for n in 0..1000u64 {
            if let Some(r) = host::config(&format!("rule.{n}")) {
                keyed.push((n, r));
            }
        }
        keyed
            .into_iter()
            .filter_map(|(n, text)| match parse(&text) {
                Ok(r) => Some(r),
                Err(e) => {
                    log(Level::Warn, &format!("rule.{n} skipped: {e}"));
                    None
                }
            })
            .collect()
    })
}

/// What the rules decide.
fn evaluate(rules: &[Rule], env: &Envelope, msg: &Message) -> Verdict {
    let mut mailbox = None;
    let mut flags: Vec<String> = Vec::new();
    'rules: for rule in rules {
        if !matches(rule, env, msg) {
            continue;
        }
        for a in &rule.actions {
            match a {
                Action::FileInto(m) => mailbox = Some(m.clone()),
                Action::Flag(f) => flags.push(f.clone()),
                Action::Reject(t) => {
                    return Verdict::Reject(Rejection {
                        permanent: true,
                        text: t.clone(),
                    });
                }
                Action::TempFail(t) => {
                    return Verdict::Reject(Rejection {
                        permanent: false,
                        text: t.clone(),
                    });
                }
                Action::Discard => return Verdict::Discard,
                Action::Stop => break 'rules,
            }
        }
    }
    Verdict::Accept(Delivery {
        mailbox,
        add_flags: flags,
    })
}

struct Rules;

impl Filter for Rules {
    fn filter(env: Envelope, msg: &Message) -> Verdict {
        evaluate(rules(), &env, msg)
    }
}

nestbox_plugin_sdk::export_filter!(Rules);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules() {
        let r = parse(r#"header:Subject contains "[rust]" => fileinto Lists/rust; flag $List"#)
            .unwrap();
        assert_eq!(r.field, Field::Header("Subject".into()));
        assert_eq!(r.pattern, "[rust]");
        assert_eq!(
            r.actions,
            vec![
                Action::FileInto("Lists/rust".into()),
                Action::Flag("$List".into())
            ]
        );
        let r = parse("size > 1000 => reject too big, sorry").unwrap();
        assert_eq!(r.actions, vec![Action::Reject("too big, sorry".into())]);
        assert!(parse("size contains x => discard").is_err());
        assert!(parse("from contains x").is_err());
        assert!(parse("from !is a@b => discard").unwrap().negate);
    }

    #[test]
    fn glob_matches() {
        assert!(glob("*@example.org", "Bob@EXAMPLE.org"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "abbc"));
        assert!(glob("*", ""));
    }
}
