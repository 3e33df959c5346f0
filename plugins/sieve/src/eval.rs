//! Runs a compiled script over one message (RFC 5228 §2.10 action semantics).

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::address;
use crate::compile::{
    AddressPart, BodyTransform, Command, DuplicateId, FlagOp, Index, Match, MatchKind, Modifier,
    Part, Script, Str, Test, VacationArgs,
};
use crate::date::{self, Zone};
use crate::matching::{self, PatternCache};
use crate::{Envelope, Host, Limits, Message};

/// One copy to store.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInto {
    /// Mailbox name as the script wrote it (`INBOX` for keep).
    pub mailbox: String,
    /// IMAP flags and keywords to set on the copy.
    pub flags: Vec<String>,
    /// `:create` (RFC 5490): create the mailbox if missing. Without it a missing
    /// mailbox is also created (nestbox's delivery creates filter targets).
    pub create: bool,
}

/// An automatic reply to send (RFC 5230), already checked against §4.5 and the
/// per-sender period.
#[derive(Debug, Clone, PartialEq)]
pub struct Vacation {
    /// The envelope sender of the original message.
    pub to: String,
    pub from: String,
    pub subject: String,
    /// The reason: plain text, or a MIME entity when `mime`.
    pub body: String,
    pub mime: bool,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
}

/// What a run decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// `reject`/`ereject` text; `targets` is then empty.
    pub reject: Option<String>,
    /// Where copies go; empty (without reject) means the message was discarded.
    pub targets: Vec<FileInto>,
    pub vacation: Option<Vacation>,
    /// A run-time error (RFC 5228 §2.10.6): the message is kept in INBOX.
    pub error: Option<String>,
    /// Things worth logging (an ignored redirect, ...).
    pub notes: Vec<String>,
}

impl Outcome {
    /// The fail-safe result: keep in INBOX.
    pub fn keep_after_error(error: String) -> Outcome {
        Outcome {
            targets: vec![FileInto {
                mailbox: "INBOX".into(),
                flags: Vec::new(),
                create: false,
            }],
            error: Some(error),
            ..Outcome::default()
        }
    }
}

enum Flow {
    Go,
    Stop,
    Return,
}

#[derive(Default)]
struct Frame {
    locals: HashMap<String, String>,
    globals: HashSet<String>,
}

struct Run<'a> {
    msg: &'a dyn Message,
    env: &'a Envelope,
    host: &'a mut dyn Host,
    limits: Limits,
    cache: &'a mut PatternCache,
    globals: HashMap<String, String>,
    match_vars: Vec<String>,
    flags: Vec<String>,
    steps: u64,
    implicit_keep: bool,
    keep: Option<Vec<String>>,
    files: Vec<FileInto>,
    reject: Option<String>,
    vacation: Option<Vacation>,
    notes: Vec<String>,
    included: Vec<String>,
    stack: Vec<String>,
}

/// Runs `script` on `msg`.
pub fn run(
    script: &Script,
    msg: &dyn Message,
    env: &Envelope,
    host: &mut dyn Host,
    limits: Limits,
    cache: &mut PatternCache,
) -> Outcome {
    let mut r = Run {
        msg,
        env,
        host,
        limits,
        cache,
        globals: HashMap::new(),
        match_vars: Vec::new(),
        flags: Vec::new(),
        steps: 0,
        implicit_keep: true,
        keep: None,
        files: Vec::new(),
        reject: None,
        vacation: None,
        notes: Vec::new(),
        included: Vec::new(),
        stack: vec![String::new()],
    };
    let mut frame = Frame::default();
    if let Err(e) = r.block(&script.commands, &mut frame) {
        let mut o = Outcome::keep_after_error(e);
        o.notes = r.notes;
        return o;
    }
    r.finish()
}

type R<T> = Result<T, String>;

/// Adds the space-separated flags of `list` to `set`, without duplicates (flags compare
/// case-insensitively, RFC 5232 §3).
fn add_flags(set: &mut Vec<String>, list: &[String]) {
    for f in list.iter().flat_map(|s| s.split_ascii_whitespace()) {
        if !set.iter().any(|x| x.eq_ignore_ascii_case(f)) {
            set.push(f.to_string());
        }
    }
}

impl Run<'_> {
    fn finish(mut self) -> Outcome {
        if let Some(text) = self.reject.take() {
            return Outcome {
                reject: Some(text),
                notes: self.notes,
                ..Outcome::default()
            };
        }
        let mut targets: Vec<FileInto> = Vec::new();
        let keep = match self.keep.take() {
            Some(f) => Some(f),
            None if self.implicit_keep => Some(self.flags.clone()),
            None => None,
        };
        let files = std::mem::take(&mut self.files);
        let all = files.into_iter().chain(keep.map(|flags| FileInto {
            mailbox: "INBOX".into(),
            flags,
            create: false,
        }));
        // RFC 5228 §2.10.3: the same mailbox twice files one copy.
        for f in all {
            let same = |a: &str, b: &str| {
                a == b || (a.eq_ignore_ascii_case("inbox") && b.eq_ignore_ascii_case("inbox"))
            };
            match targets.iter_mut().find(|t| same(&t.mailbox, &f.mailbox)) {
                Some(t) => {
                    add_flags(&mut t.flags, &f.flags);
                    t.create |= f.create;
                }
                None => targets.push(f),
            }
        }
        Outcome {
            reject: None,
            targets,
            vacation: self.vacation,
            error: None,
            notes: self.notes,
        }
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(format!(
                "the script ran more than {} steps",
                self.limits.max_steps
            ));
        }
        Ok(())
    }

    fn var(&self, frame: &Frame, name: &str) -> String {
        if let Some(g) = name.strip_prefix("global.") {
            return self.globals.get(g).cloned().unwrap_or_default();
        }
        if frame.globals.contains(name) {
            return self.globals.get(name).cloned().unwrap_or_default();
        }
        frame.locals.get(name).cloned().unwrap_or_default()
    }

    fn set_var(&mut self, frame: &mut Frame, name: &str, mut value: String) {
        if value.len() > self.limits.max_variable_bytes {
            let mut cut = self.limits.max_variable_bytes;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value.truncate(cut);
        }
        if let Some(g) = name.strip_prefix("global.") {
            self.globals.insert(g.to_string(), value);
        } else if frame.globals.contains(name) {
            self.globals.insert(name.to_string(), value);
        } else {
            frame.locals.insert(name.to_string(), value);
        }
    }

    fn s(&self, frame: &Frame, s: &Str) -> String {
        match s {
            Str::Lit(l) => l.clone(),
            Str::Tmpl(parts) => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        Part::Lit(l) => out.push_str(l),
                        Part::Var(v) => out.push_str(&self.var(frame, v)),
                        Part::Match(n) => {
                            out.push_str(self.match_vars.get(*n).map(String::as_str).unwrap_or(""))
                        }
                    }
                }
                out
            }
        }
    }

    fn list(&self, frame: &Frame, l: &[Str]) -> Vec<String> {
        l.iter().map(|s| self.s(frame, s)).collect()
    }

    fn block(&mut self, cmds: &[Command], frame: &mut Frame) -> R<Flow> {
        for c in cmds {
            match self.command(c, frame)? {
                Flow::Go => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Go)
    }

    fn command(&mut self, c: &Command, frame: &mut Frame) -> R<Flow> {
        self.step()?;
        match c {
            Command::If {
                branches,
                otherwise,
            } => {
                for (t, body) in branches {
                    if self.test(t, frame)? {
                        return self.block(body, frame);
                    }
                }
                if let Some(body) = otherwise {
                    return self.block(body, frame);
                }
            }
            Command::Stop => return Ok(Flow::Stop),
            Command::Return => return Ok(Flow::Return),
            Command::Keep { flags } => {
                let f = match flags {
                    Some(f) => {
                        let mut v = Vec::new();
                        add_flags(&mut v, &self.list(frame, f));
                        v
                    }
                    None => self.flags.clone(),
                };
                self.no_reject("keep")?;
                match &mut self.keep {
                    Some(k) => add_flags(k, &f),
                    None => self.keep = Some(f),
                }
            }
            Command::Discard => self.implicit_keep = false,
            Command::FileInto {
                mailbox,
                copy,
                create,
                flags,
            } => {
                self.no_reject("fileinto")?;
                let mailbox = self.s(frame, mailbox);
                if mailbox.is_empty() {
                    return Err("fileinto with an empty mailbox name".into());
                }
                let flags = match flags {
                    Some(f) => {
                        let mut v = Vec::new();
                        add_flags(&mut v, &self.list(frame, f));
                        v
                    }
                    None => self.flags.clone(),
                };
                self.files.push(FileInto {
                    mailbox,
                    flags,
                    create: *create,
                });
                if !copy {
                    self.implicit_keep = false;
                }
            }
            Command::Redirect { address, .. } => {
                let a = self.s(frame, address);
                self.notes.push(format!(
                    "redirect to {a:?} ignored: redirect is not supported, the message is kept"
                ));
            }
            Command::Reject { reason, .. } => {
                if self.reject.is_some() {
                    return Err("reject used twice".into());
                }
                if self.keep.is_some() || !self.files.is_empty() {
                    return Err(
                        "reject cannot be combined with keep or fileinto (RFC 5429 §2.1)".into(),
                    );
                }
                if self.vacation.is_some() {
                    return Err("reject cannot be combined with vacation (RFC 5429 §2.1)".into());
                }
                let r = self.s(frame, reason);
                self.reject = Some(if r.trim().is_empty() {
                    "rejected by the recipient's filter".into()
                } else {
                    r
                });
                self.implicit_keep = false;
            }
            Command::Flags { op, var, flags } => {
                let list = self.list(frame, flags);
                let current: Vec<String> = match var {
                    Some(v) => {
                        let name = self.s(frame, v).to_ascii_lowercase();
                        self.var(frame, &name)
                            .split_ascii_whitespace()
                            .map(str::to_string)
                            .collect()
                    }
                    None => self.flags.clone(),
                };
                let mut new = match op {
                    FlagOp::Set => Vec::new(),
                    FlagOp::Add | FlagOp::Remove => current,
                };
                match op {
                    FlagOp::Set | FlagOp::Add => add_flags(&mut new, &list),
                    FlagOp::Remove => {
                        let gone: Vec<&str> = list
                            .iter()
                            .flat_map(|s| s.split_ascii_whitespace())
                            .collect();
                        new.retain(|f| !gone.iter().any(|g| g.eq_ignore_ascii_case(f)));
                    }
                }
                match var {
                    Some(v) => {
                        let name = self.s(frame, v).to_ascii_lowercase();
                        self.set_var(frame, &name, new.join(" "));
                    }
                    None => self.flags = new,
                }
            }
            Command::Set {
                name,
                modifiers,
                value,
            } => {
                let mut v = self.s(frame, value);
                for m in modifiers {
                    v = modify(*m, &v);
                }
                self.set_var(frame, name, v);
            }
            Command::Vacation(args) => {
                if self.vacation.is_some() {
                    return Err("vacation used twice".into());
                }
                if self.reject.is_some() {
                    return Err("vacation cannot be combined with reject (RFC 5429 §2.1)".into());
                }
                self.vacation = self.vacation(args, frame);
            }
            Command::Include {
                name,
                once,
                optional,
            } => {
                let name = self.s(frame, name);
                if *once && self.included.contains(&name) {
                    return Ok(Flow::Go);
                }
                if self.stack.contains(&name) {
                    return Err(format!("include loop: {name:?} includes itself"));
                }
                if self.stack.len() > self.limits.max_include_depth {
                    return Err(format!(
                        "includes nested deeper than {}",
                        self.limits.max_include_depth
                    ));
                }
                let script: Rc<Script> = match self.host.include(&name) {
                    Ok(s) => s,
                    Err(_) if *optional => return Ok(Flow::Go),
                    Err(e) => return Err(format!("include {name:?}: {e}")),
                };
                self.included.push(name.clone());
                self.stack.push(name);
                let mut inner = Frame::default();
                let flow = self.block(&script.commands, &mut inner)?;
                self.stack.pop();
                if let Flow::Stop = flow {
                    return Ok(Flow::Stop);
                }
            }
            Command::Global(names) => {
                for n in names {
                    frame.globals.insert(n.clone());
                }
            }
        }
        Ok(Flow::Go)
    }

    fn no_reject(&self, what: &str) -> R<()> {
        if self.reject.is_some() {
            return Err(format!("{what} cannot follow reject (RFC 5429 §2.1)"));
        }
        Ok(())
    }

    /// Matches `values` against `keys`; sets the match variables on a `:matches` or
    /// `:regex` hit.
    fn values(&mut self, m: Match, values: &[String], keys: &[String]) -> R<bool> {
        if let MatchKind::Count(op) = m.kind {
            let n = values.len().to_string();
            return Ok(keys
                .iter()
                .any(|k| matching::relation(op, matching::order(&n, k, m.comparator))));
        }
        for v in values {
            for k in keys {
                if let Some(caps) = matching::matches_one(m, v, k, self.cache)? {
                    if matches!(m.kind, MatchKind::Matches | MatchKind::Regex) {
                        self.match_vars = caps;
                    }
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn header_values(&self, names: &[String], index: Option<Index>) -> Vec<String> {
        let mut out = Vec::new();
        for n in names {
            let mut v = self.msg.header(n.trim());
            if let Some(ix) = index {
                let i = if ix.last {
                    v.len().checked_sub(ix.n)
                } else {
                    ix.n.checked_sub(1)
                };
                v = i.and_then(|i| v.get(i).cloned()).into_iter().collect();
            }
            out.extend(v);
        }
        out
    }

    fn test(&mut self, t: &Test, frame: &mut Frame) -> R<bool> {
        self.step()?;
        Ok(match t {
            Test::True => true,
            Test::False => false,
            Test::Not(t) => !self.test(t, frame)?,
            Test::AllOf(ts) => {
                for t in ts {
                    if !self.test(t, frame)? {
                        return Ok(false);
                    }
                }
                true
            }
            Test::AnyOf(ts) => {
                for t in ts {
                    if self.test(t, frame)? {
                        return Ok(true);
                    }
                }
                false
            }
            Test::Exists(names) => self
                .list(frame, names)
                .iter()
                .all(|n| !self.msg.header(n).is_empty()),
            Test::Size { over, limit } => {
                let size = self.msg.size();
                if *over { size > *limit } else { size < *limit }
            }
            Test::Header {
                m,
                index,
                names,
                keys,
            } => {
                let v = self.header_values(&self.list(frame, names), *index);
                let k = self.list(frame, keys);
                self.values(*m, &v, &k)?
            }
            Test::Address {
                m,
                index,
                part,
                names,
                keys,
            } => {
                let fields = self.header_values(&self.list(frame, names), *index);
                let v: Vec<String> = fields
                    .iter()
                    .flat_map(|f| address::parse_list(f))
                    .filter_map(|a| address::part(&a, *part))
                    .collect();
                let k = self.list(frame, keys);
                self.values(*m, &v, &k)?
            }
            Test::Envelope {
                m,
                part,
                names,
                keys,
            } => {
                let mut v = Vec::new();
                for n in self.list(frame, names) {
                    let a = match n.to_ascii_lowercase().as_str() {
                        "from" => self.env.from.clone().unwrap_or_default(),
                        "to" => self.env.to.clone(),
                        _ => continue,
                    };
                    // The null sender matches only "" with :all (RFC 5228 §5.4).
                    if a.is_empty() {
                        if *part == AddressPart::All {
                            v.push(String::new());
                        }
                        continue;
                    }
                    v.extend(address::part(&a, *part));
                }
                let k = self.list(frame, keys);
                self.values(*m, &v, &k)?
            }
            Test::Body { m, transform, keys } => {
                let body = match transform {
                    BodyTransform::Raw => Some(self.msg.body_raw()),
                    BodyTransform::Text => self.msg.body_text(),
                    BodyTransform::Content(types) => {
                        let types = self.list(frame, types);
                        if types.iter().any(|t| {
                            let t = t.to_ascii_lowercase();
                            t.is_empty() || t == "text" || t.starts_with("text/")
                        }) {
                            self.msg.body_text()
                        } else {
                            None
                        }
                    }
                };
                let mut body = body.unwrap_or_default();
                if body.len() > self.limits.max_body_bytes {
                    let mut cut = self.limits.max_body_bytes;
                    while !body.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    body.truncate(cut);
                }
                let k = self.list(frame, keys);
                self.values(*m, &[body], &k)?
            }
            Test::String { m, sources, keys } => {
                let mut v = self.list(frame, sources);
                if matches!(m.kind, MatchKind::Count(_)) {
                    v.retain(|s| !s.is_empty());
                }
                let k = self.list(frame, keys);
                self.values(*m, &v, &k)?
            }
            Test::HasFlag { m, vars, keys } => {
                let mut flags = Vec::new();
                if vars.is_empty() {
                    flags = self.flags.clone();
                } else {
                    for v in self.list(frame, vars) {
                        let value = self.var(frame, &v.to_ascii_lowercase());
                        add_flags(&mut flags, &[value]);
                    }
                }
                let mut k = Vec::new();
                for key in self.list(frame, keys) {
                    k.extend(key.split_ascii_whitespace().map(str::to_string));
                }
                self.values(*m, &flags, &k)?
            }
            Test::MailboxExists(names) => {
                let names = self.list(frame, names);
                names.iter().all(|n| self.host.mailbox_exists(n))
            }
            Test::Date {
                m,
                index,
                zone,
                header,
                part,
                keys,
            } => {
                let h = self.s(frame, header);
                let fields =
                    self.header_values(&[h], Some(index.unwrap_or(Index { n: 1, last: false })));
                let Some((t, orig)) = fields.first().and_then(|f| date::parse_rfc5322(f)) else {
                    return Ok(false);
                };
                let z = match zone {
                    Zone::Local => 0,
                    Zone::Fixed(z) => *z,
                    Zone::Original => orig,
                };
                let v = vec![date::part(t, z, *part)];
                let k = self.list(frame, keys);
                self.values(*m, &v, &k)?
            }
            Test::CurrentDate {
                m,
                zone,
                part,
                keys,
            } => {
                let z = match zone {
                    Zone::Fixed(z) => *z,
                    Zone::Local | Zone::Original => 0,
                };
                let v = vec![date::part(self.host.now(), z, *part)];
                let k = self.list(frame, keys);
                self.values(*m, &v, &k)?
            }
            Test::SpamTest { m, percent, value } => {
                let v = vec![spam_value(self.msg, *percent)];
                let k = vec![self.s(frame, value)];
                self.values(*m, &v, &k)?
            }
            Test::VirusTest { m, value } => {
                let v = vec![virus_value(self.msg)];
                let k = vec![self.s(frame, value)];
                self.values(*m, &v, &k)?
            }
            Test::Duplicate {
                handle,
                id,
                seconds,
                last,
            } => {
                let id = match id {
                    DuplicateId::MessageId => self.msg.header("message-id").into_iter().next(),
                    DuplicateId::Header(h) => {
                        let h = self.s(frame, h);
                        self.msg.header(&h).into_iter().next()
                    }
                    DuplicateId::Unique(u) => Some(self.s(frame, u)),
                };
                let Some(id) = id.map(|i| i.trim().to_string()).filter(|i| !i.is_empty()) else {
                    return Ok(false);
                };
                let handle = handle
                    .as_ref()
                    .map(|h| self.s(frame, h))
                    .unwrap_or_default();
                let key = format!("duplicate\0{handle}\0{id}");
                self.host
                    .duplicate(&key, seconds.unwrap_or(7 * 86_400), *last)
            }
        })
    }

    /// RFC 5230 §4.5 / RFC 3834 §2: whether to answer, and the reply.
    fn vacation(&mut self, a: &VacationArgs, frame: &Frame) -> Option<Vacation> {
        let sender = self.env.from.clone().filter(|s| !s.is_empty())?;
        let lower = sender.to_ascii_lowercase();
        let local = lower.rsplit_once('@').map_or(lower.as_str(), |(l, _)| l);
        if local == "mailer-daemon"
            || local.starts_with("owner-")
            || local.ends_with("-request")
            || local.ends_with("-bounces")
        {
            self.notes.push(format!(
                "vacation: no reply to {sender} (an automatic address)"
            ));
            return None;
        }
        let h = |n: &str| self.msg.header(n);
        if h("auto-submitted")
            .iter()
            .any(|v| !v.trim().to_ascii_lowercase().starts_with("no"))
        {
            self.notes
                .push("vacation: no reply to Auto-Submitted mail".into());
            return None;
        }
        if h("precedence").iter().any(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "bulk" | "list" | "junk"
            )
        }) || [
            "list-id",
            "list-unsubscribe",
            "list-post",
            "list-help",
            "x-list",
        ]
        .iter()
        .any(|n| !h(n).is_empty())
        {
            self.notes
                .push("vacation: no reply to list or bulk mail".into());
            return None;
        }
        let from = a.from.as_ref().map(|f| self.s(frame, f));
        let mut ours: Vec<String> = vec![self.env.to.to_ascii_lowercase()];
        ours.extend(
            self.list(frame, &a.addresses)
                .iter()
                .map(|s| s.to_ascii_lowercase()),
        );
        if let Some(f) = &from {
            ours.extend(
                address::parse_list(f)
                    .iter()
                    .map(|s| s.to_ascii_lowercase()),
            );
        }
        if ours.contains(&lower) {
            return None;
        }
        let strip = |a: &str| -> String {
            match a.rsplit_once('@') {
                Some((l, d)) => format!("{}@{d}", l.split_once('+').map_or(l, |(u, _)| u)),
                None => a.to_string(),
            }
        };
        let ours_plain: Vec<String> = ours.iter().map(|a| strip(a)).collect();
        let addressed = ["to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"]
            .iter()
            .flat_map(|n| h(n))
            .flat_map(|v| address::parse_list(&v))
            .any(|x| ours_plain.contains(&strip(&x.to_ascii_lowercase())));
        if !addressed {
            self.notes
                .push("vacation: not sent, our address is not in To/Cc".into());
            return None;
        }
        let reason = self.s(frame, &a.reason);
        let subject = a.subject.as_ref().map(|s| self.s(frame, s));
        let handle = match &a.handle {
            Some(hd) => self.s(frame, hd),
            None => format!(
                "{:016x}",
                fnv(&[
                    reason.as_str(),
                    subject.as_deref().unwrap_or(""),
                    from.as_deref().unwrap_or("")
                ])
            ),
        };
        let period = a.period.unwrap_or(7 * 86_400);
        if period > 0 {
            let key = format!("vacation\0{handle}\0{lower}");
            if self.host.duplicate(&key, period, false) {
                self.notes
                    .push(format!("vacation: {sender} was answered recently"));
                return None;
            }
        }
        let original = h("subject").into_iter().next().unwrap_or_default();
        let msg_id = h("message-id")
            .into_iter()
            .next()
            .map(|s| s.trim().to_string());
        let references = {
            let mut r: Vec<String> = h("references").into_iter().take(1).collect();
            r.extend(msg_id.clone());
            let r = r.join(" ");
            (!r.trim().is_empty()).then(|| r.trim().to_string())
        };
        Some(Vacation {
            to: sender,
            from: from.unwrap_or_else(|| self.env.to.clone()),
            subject: subject.unwrap_or_else(|| format!("Auto: {original}")),
            body: reason,
            mime: a.mime,
            in_reply_to: msg_id,
            references,
        })
    }
}

/// FNV-1a over the parts (a stable default vacation handle).
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// RFC 5229 §4.1 modifiers.
fn modify(m: Modifier, v: &str) -> String {
    match m {
        Modifier::Lower => v.to_lowercase(),
        Modifier::Upper => v.to_uppercase(),
        Modifier::LowerFirst | Modifier::UpperFirst => {
            let mut c = v.chars();
            match c.next() {
                Some(f) => {
                    let f: String = if m == Modifier::LowerFirst {
                        f.to_lowercase().collect()
                    } else {
                        f.to_uppercase().collect()
                    };
                    f + c.as_str()
                }
                None => String::new(),
            }
        }
        Modifier::QuoteWildcard => {
            let mut out = String::with_capacity(v.len());
            for c in v.chars() {
                if matches!(c, '*' | '?' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
        Modifier::Length => v.chars().count().to_string(),
    }
}

/// The spam score and threshold from `X-Spam-Score` / `X-Spam-Status` (SpamAssassin,
/// rspamd): `(score, required)`; `None` when the message was not tested.
fn spam_score(msg: &dyn Message) -> Option<(f64, f64)> {
    let status = msg.header("x-spam-status").into_iter().next();
    let field = |s: &str, name: &str| -> Option<f64> {
        s.split(|c: char| c.is_whitespace() || c == ',')
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
    };
    let required = status
        .as_deref()
        .and_then(|s| field(s, "required="))
        .unwrap_or(5.0);
    if let Some(score) = msg
        .header("x-spam-score")
        .into_iter()
        .next()
        .and_then(|s| s.trim().parse::<f64>().ok())
    {
        return Some((score, required));
    }
    let status = status?;
    if let Some(score) = field(&status, "score=") {
        return Some((score, required));
    }
    let yes = status.trim().to_ascii_lowercase().starts_with("yes");
    Some((if yes { 2.0 * required } else { 0.0 }, required))
}

/// RFC 5235: `0` untested, `1`..`10` (or `0`..`100` with `:percent`); the score is
/// scaled so that twice the spam threshold is certain spam.
fn spam_value(msg: &dyn Message, percent: bool) -> String {
    let Some((score, required)) = spam_score(msg) else {
        return "0".into();
    };
    let required = if required > 0.0 { required } else { 5.0 };
    let p = (score / (2.0 * required) * 100.0).clamp(0.0, 100.0);
    if percent {
        format!("{}", p.round() as u32)
    } else {
        format!("{}", 1 + (p * 9.0 / 100.0).round() as u32)
    }
}

/// RFC 5235 §3.3 from `X-Virus-Status` (ClamAV, amavis): `1` clean, `5` infected,
/// `0` untested.
fn virus_value(msg: &dyn Message) -> String {
    let status = msg.header("x-virus-status").into_iter().next();
    match status.map(|s| s.trim().to_ascii_lowercase()) {
        Some(s) if s.starts_with("clean") || s.starts_with("no") => "1".into(),
        Some(s) if s.starts_with("infected") || s.starts_with("yes") => "5".into(),
        Some(_) => "0".into(),
        None if !msg.header("x-virus-scanned").is_empty() => "1".into(),
        None => "0".into(),
    }
}
