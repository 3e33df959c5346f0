//! Scripts run end to end over a fake message and host.

use std::collections::HashMap;
use std::rc::Rc;

use crate::matching::PatternCache;
use crate::{Envelope, Host, Limits, Message, Outcome, Script, check, compile, run};

pub struct Msg {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Msg {
    pub fn new(headers: &[(&str, &str)], body: &str) -> Msg {
        Msg {
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_string(),
        }
    }
}

impl Message for Msg {
    fn size(&self) -> u64 {
        (self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>()
            + 2
            + self.body.len()) as u64
    }
    fn header(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
    fn body_text(&self) -> Option<String> {
        Some(self.body.clone())
    }
    fn body_raw(&self) -> String {
        self.body.clone()
    }
}

#[derive(Default)]
pub struct FakeHost {
    pub scripts: HashMap<String, String>,
    pub seen: HashMap<String, i64>,
    pub mailboxes: Vec<String>,
    pub now: i64,
}

impl Host for FakeHost {
    fn include(&mut self, name: &str) -> Result<Rc<Script>, String> {
        let src = self.scripts.get(name).ok_or("no such script")?;
        check(src, true).map(Rc::new).map_err(|e| e.to_string())
    }
    fn duplicate(&mut self, id: &str, seconds: u64, last: bool) -> bool {
        let now = self.now;
        match self.seen.get(id) {
            Some(t) if now - t < seconds as i64 => {
                if last {
                    self.seen.insert(id.to_string(), now);
                }
                true
            }
            _ => {
                self.seen.insert(id.to_string(), now);
                false
            }
        }
    }
    fn mailbox_exists(&mut self, name: &str) -> bool {
        self.mailboxes.iter().any(|m| m == name)
    }
    fn now(&self) -> i64 {
        self.now
    }
}

fn env() -> Envelope {
    Envelope {
        from: Some("alice+news@example.net".into()),
        to: "bob+sieve@example.org".into(),
        user: "bob".into(),
    }
}

fn msg() -> Msg {
    Msg::new(
        &[
            ("From", "\"Alice A.\" <alice@example.net>"),
            ("To", "Bob <bob@example.org>, carol@example.com"),
            ("Subject", "[rust] Release 1.95 is out"),
            ("Date", "Tue, 23 Jun 2009 10:12:34 +0200"),
            ("Message-ID", "<m1@example.net>"),
            ("X-Spam-Score", "7.5"),
            ("X-Spam-Status", "Yes, score=7.5 required=5.0"),
            ("Received", "from a by b"),
            ("Received", "from c by d"),
        ],
        "Hello Bob,\r\nthe new release is out.\r\n",
    )
}

fn go_with(src: &str, m: &Msg, host: &mut FakeHost) -> Outcome {
    let script = check(src, true).unwrap_or_else(|e| panic!("{e}"));
    run(
        &script,
        m,
        &env(),
        host,
        Limits::default(),
        &mut PatternCache::new(1 << 20),
    )
}

fn go(src: &str) -> Outcome {
    go_with(src, &msg(), &mut FakeHost::default())
}

fn boxes(o: &Outcome) -> Vec<&str> {
    o.targets.iter().map(|t| t.mailbox.as_str()).collect()
}

#[test]
fn implicit_keep_and_empty_script() {
    assert_eq!(boxes(&go("")), vec!["INBOX"]);
    assert_eq!(boxes(&go("# nothing\r\n/* at all */")), vec!["INBOX"]);
}

#[test]
fn core_tests_and_actions() {
    let o = go(r#"require ["fileinto"];
        if header :contains "subject" "[rust]" { fileinto "Lists/rust"; }
        elsif true { discard; }"#);
    assert_eq!(boxes(&o), vec!["Lists/rust"]);
    let o = go(r#"if anyof (size :over 10M, not exists "X-Nope") { discard; stop; } keep;"#);
    assert!(o.targets.is_empty());
    let o = go(
        r#"if allof (address :domain "from" "EXAMPLE.net", address :localpart :is "to" "carol") { keep; } else { discard; }"#,
    );
    assert_eq!(boxes(&o), vec!["INBOX"]);
    let o = go(r#"if header :matches "Subject" "*1.9?*" { discard; }"#);
    assert!(o.targets.is_empty());
    let o = go(
        r#"if header :is :comparator "i;octet" "subject" "[RUST] RELEASE 1.95 IS OUT" { discard; }"#,
    );
    assert_eq!(boxes(&o), vec!["INBOX"]);
    let o = go(r#"if size :under 1 { discard; }"#);
    assert_eq!(boxes(&o), vec!["INBOX"]);
    let o = go("if false { discard; } else { stop; } discard;");
    assert_eq!(boxes(&o), vec!["INBOX"]);
}

#[test]
fn strings_multiline_and_encoded_character() {
    let o = go(
        "require [\"fileinto\", \"encoded-character\"];\nfileinto \"a${hex: 42 43}${unicode:263A}\";",
    );
    assert_eq!(boxes(&o), vec!["aBC\u{263a}"]);
    let o = go("require \"reject\";\nreject text:\r\nGo away.\r\n..dot\r\n.\r\n;");
    assert_eq!(o.reject.as_deref(), Some("Go away.\r\n.dot\r\n"));
    let o = go("require \"fileinto\"; fileinto \"x${hex:42}\";");
    assert_eq!(boxes(&o), vec!["x${hex:42}"]);
}

#[test]
fn errors_carry_line_and_column() {
    let e = check("keep;\nif header :is \"a\" {\n", true).unwrap_err();
    assert_eq!(e.pos.line, 2);
    let e = check("fileinto \"x\";", true).unwrap_err();
    assert!(e.message.contains("require"), "{e}");
    assert_eq!((e.pos.line, e.pos.column), (1, 1));
    let e = check("require \"fileinto\";\n  frobnicate;", true).unwrap_err();
    assert_eq!((e.pos.line, e.pos.column), (2, 3));
    assert!(check("require \"nope\";", true).is_err());
    assert!(check("keep; require \"fileinto\";", true).is_err());
    assert!(check("if true keep;", true).is_err());
    assert!(check("else { keep; }", true).is_err());
    assert!(check("header :is \"a\" \"b\";", true).is_err());
    assert!(check("if header :is :contains \"a\" \"b\" { keep; }", true).is_err());
    assert!(check("require \"vacation\"; vacation \"x\";", false).is_err());
    let e = check(
        "require \"regex\"; if header :regex \"s\" \"(a{1000}){1000}\" { keep; }",
        true,
    )
    .unwrap_err();
    assert!(e.message.contains("regular expression"), "{e}");
    let deep = "if true {".repeat(100) + &"}".repeat(100);
    assert!(check(&deep, true).is_err());
}

#[test]
fn reject_and_ereject() {
    let o = go("require \"ereject\"; ereject \"no thanks\";");
    assert_eq!(o.reject.as_deref(), Some("no thanks"));
    assert!(o.targets.is_empty());
    let o = go("require [\"reject\", \"fileinto\"]; fileinto \"x\"; reject \"no\";");
    assert!(o.error.is_some());
    assert_eq!(boxes(&o), vec!["INBOX"]);
}

#[test]
fn envelope_and_subaddress() {
    let o = go(r#"require ["envelope", "subaddress", "fileinto"];
        if envelope :detail "to" "sieve" { fileinto "detail"; }
        if envelope :user "from" "alice" { fileinto "user"; }
        if envelope :domain :is "from" "example.com" { fileinto "wrong"; }"#);
    assert_eq!(boxes(&o), vec!["detail", "user"]);
    let mut e = env();
    e.from = None;
    let script = check(
        r#"require "envelope"; if envelope :all :is "from" "" { discard; }"#,
        true,
    )
    .unwrap();
    let o = run(
        &script,
        &msg(),
        &e,
        &mut FakeHost::default(),
        Limits::default(),
        &mut PatternCache::new(1 << 20),
    );
    assert!(o.targets.is_empty());
}

#[test]
fn imap4flags() {
    let o = go(r#"require ["imap4flags", "fileinto", "copy"];
        setflag "\\Seen";
        addflag ["$Work", "\\Flagged \\Seen"];
        removeflag "\\Seen";
        if hasflag :contains "work" { fileinto :copy :flags "\\Answered" "Work"; }
        "#);
    assert_eq!(o.targets.len(), 2);
    assert_eq!(o.targets[0].mailbox, "Work");
    assert_eq!(o.targets[0].flags, vec!["\\Answered"]);
    assert_eq!(o.targets[1].mailbox, "INBOX");
    assert_eq!(o.targets[1].flags, vec!["$Work", "\\Flagged"]);
    let o = go(r#"require ["imap4flags", "variables"];
        addflag "f" ["a", "b"]; removeflag "f" "a";
        if hasflag "f" "b" { keep :flags "\\Seen"; }"#);
    assert_eq!(o.targets[0].flags, vec!["\\Seen"]);
}

#[test]
fn body() {
    let o = go(r#"require ["body", "fileinto"];
        if body :contains "new release" { fileinto "a"; }
        if body :raw :contains "HELLO" { fileinto "b"; }
        if body :content "image" :contains "Hello" { fileinto "c"; }
        if body :text :matches "*bob*" { fileinto "d"; }"#);
    assert_eq!(boxes(&o), vec!["a", "b", "d"]);
}

#[test]
fn variables() {
    let o = go(
        r#"require ["variables", "fileinto", "relational", "comparator-i;ascii-numeric"];
        if header :matches "subject" "[*] *" { set :lower "list" "${1}"; }
        set :upperfirst "x" "${list}";
        set :length "n" "${x}";
        set :quotewildcard "q" "a*b";
        if string :is "${n}" "4" { fileinto "Lists/${x}-${q}"; }
        if string :count "eq" :comparator "i;ascii-numeric" ["a", "", "b"] "2" { fileinto "two"; }"#,
    );
    assert_eq!(boxes(&o), vec!["Lists/Rust-a\\*b", "two"]);
    let o = go("require [\"variables\", \"fileinto\"]; set \"a\" \"xy\";\
        set \"a\" \"${a}${a}\"; set \"a\" \"${a}${a}\"; set \"a\" \"${a}${a}\";\
        set \"a\" \"${a}${a}\"; set \"a\" \"${a}${a}\"; set \"a\" \"${a}${a}\";\
        set \"a\" \"${a}${a}\"; set \"a\" \"${a}${a}\"; set \"a\" \"${a}${a}\";\
        set \"a\" \"${a}${a}\"; set \"a\" \"${a}${a}\"; set :length \"n\" \"${a}\"; fileinto \"${n}\";");
    assert_eq!(boxes(&o), vec!["4096"]);
}

#[test]
fn relational_and_index() {
    let o = go(
        r#"require ["relational", "comparator-i;ascii-numeric", "index", "fileinto"];
        if header :count "ge" :comparator "i;ascii-numeric" "received" "2" { fileinto "many"; }
        if header :value "gt" :comparator "i;ascii-numeric" "x-spam-score" "5" { fileinto "spammy"; }
        if header :index 2 :is "received" "from c by d" { fileinto "second"; }
        if header :index 1 :last :is "received" "from c by d" { fileinto "last"; }
        if address :count "eq" :comparator "i;ascii-numeric" "to" "2" { fileinto "two"; }"#,
    );
    assert_eq!(boxes(&o), vec!["many", "spammy", "second", "last", "two"]);
}

#[test]
fn copy_and_mailbox() {
    let mut host = FakeHost {
        mailboxes: vec!["Archive".into()],
        ..FakeHost::default()
    };
    let o = go_with(
        r#"require ["copy", "mailbox", "fileinto"];
        if mailboxexists "Archive" { fileinto :copy "Archive"; }
        if mailboxexists ["Archive", "Nope"] { fileinto "Never"; }
        fileinto :create :copy "New/Box";"#,
        &msg(),
        &mut host,
    );
    assert_eq!(boxes(&o), vec!["Archive", "New/Box", "INBOX"]);
    assert!(o.targets[1].create);
}

#[test]
fn regex() {
    let o = go(r#"require ["regex", "variables", "fileinto"];
        if header :regex "subject" "release ([0-9.]+)" { fileinto "v${1}"; }"#);
    assert_eq!(boxes(&o), vec!["v1.95"]);
}

#[test]
fn date_and_currentdate() {
    let mut host = FakeHost {
        now: 1_700_000_000, // 2023-11-14 22:13:20 UTC
        ..FakeHost::default()
    };
    let o = go_with(
        r#"require ["date", "relational", "fileinto"];
        if date :is "date" "date" "2009-06-23" { fileinto "utc-date"; }
        if date :originalzone :is "date" "hour" "10" { fileinto "orig-hour"; }
        if date :zone "-0500" :is "date" "hour" "03" { fileinto "zoned"; }
        if currentdate :is "year" "2023" { fileinto "this-year"; }
        if currentdate :value "ge" "date" "2023-01-01" { fileinto "after"; }
        if currentdate :zone "+0200" :is "weekday" "3" { fileinto "wednesday"; }"#,
        &msg(),
        &mut host,
    );
    assert_eq!(
        boxes(&o),
        vec![
            "utc-date",
            "orig-hour",
            "zoned",
            "this-year",
            "after",
            "wednesday"
        ]
    );
}

#[test]
fn spamtest_and_virustest() {
    let o = go(
        r#"require ["spamtest", "spamtestplus", "virustest", "relational", "comparator-i;ascii-numeric", "fileinto"];
        if spamtest :value "ge" :comparator "i;ascii-numeric" "7" { fileinto "Junk"; }
        if spamtest :percent :value "eq" :comparator "i;ascii-numeric" "75" { fileinto "75"; }
        if virustest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "untested"; }"#,
    );
    assert_eq!(boxes(&o), vec!["Junk", "75", "untested"]);
    let m = Msg::new(&[("X-Virus-Status", "Infected: Eicar")], "x");
    let o = go_with(
        r#"require ["virustest", "spamtest", "relational", "comparator-i;ascii-numeric"];
        if virustest :value "ge" :comparator "i;ascii-numeric" "4" { discard; }
        if spamtest :is "0" { keep; }"#,
        &m,
        &mut FakeHost::default(),
    );
    assert_eq!(boxes(&o), vec!["INBOX"]);
    assert_eq!(o.targets.len(), 1);
}

#[test]
fn include_and_globals() {
    let mut host = FakeHost::default();
    host.scripts.insert(
        "lists".into(),
        r#"require ["include", "variables", "fileinto"]; global "box";
           if header :contains "subject" "[rust]" { fileinto "${box}"; return; } discard;"#
            .into(),
    );
    host.scripts.insert(
        "loop".into(),
        r#"require "include"; include "loop";"#.into(),
    );
    let o = go_with(
        r#"require ["include", "variables"]; global "box"; set "box" "Rust";
           include :personal "lists"; include :once "lists"; include :optional "missing";"#,
        &msg(),
        &mut host,
    );
    assert_eq!(boxes(&o), vec!["Rust"]);
    let o = go_with(r#"require "include"; include "loop";"#, &msg(), &mut host);
    assert!(o.error.as_deref().unwrap_or("").contains("loop"), "{o:?}");
    let o = go_with(
        r#"require "include"; include "missing";"#,
        &msg(),
        &mut host,
    );
    assert!(o.error.is_some());
    assert_eq!(boxes(&o), vec!["INBOX"]);
}

#[test]
fn deep_include_hits_the_limit() {
    let mut host = FakeHost::default();
    for i in 0..20 {
        host.scripts.insert(
            format!("s{i}"),
            format!("require \"include\"; include \"s{}\";", i + 1),
        );
    }
    let o = go_with(r#"require "include"; include "s0";"#, &msg(), &mut host);
    assert!(o.error.as_deref().unwrap_or("").contains("nested"), "{o:?}");
}

#[test]
fn duplicate() {
    let mut host = FakeHost::default();
    let src = r#"require ["duplicate", "fileinto"]; if duplicate { discard; } else { fileinto "first"; }"#;
    assert_eq!(boxes(&go_with(src, &msg(), &mut host)), vec!["first"]);
    assert!(go_with(src, &msg(), &mut host).targets.is_empty());
    let src = r#"require "duplicate"; if duplicate :header "subject" :handle "s" :seconds 60 { discard; }"#;
    assert_eq!(boxes(&go_with(src, &msg(), &mut host)), vec!["INBOX"]);
    host.now += 61;
    assert_eq!(boxes(&go_with(src, &msg(), &mut host)), vec!["INBOX"]);
    let src = r#"require "duplicate"; if duplicate :uniqueid "x" { discard; }"#;
    assert_eq!(boxes(&go_with(src, &msg(), &mut host)), vec!["INBOX"]);
    assert!(go_with(src, &msg(), &mut host).targets.is_empty());
}

#[test]
fn vacation() {
    let mut host = FakeHost::default();
    let src = r#"require ["vacation", "vacation-seconds"];
        vacation :seconds 3600 :subject "Away" :addresses "bob@example.org" "I am away.";"#;
    let o = go_with(src, &msg(), &mut host);
    let v = o.vacation.clone().expect("a reply");
    assert_eq!(v.to, "alice+news@example.net");
    assert_eq!(v.subject, "Away");
    assert_eq!(v.in_reply_to.as_deref(), Some("<m1@example.net>"));
    assert_eq!(boxes(&o), vec!["INBOX"]);
    // Once per period per sender.
    assert!(go_with(src, &msg(), &mut host).vacation.is_none());
    // Never to lists, bulk or automatic mail, or when we are not addressed.
    let mut list = msg();
    list.headers.push(("List-Id".into(), "<rust.lists>".into()));
    assert!(
        go_with(src, &list, &mut FakeHost::default())
            .vacation
            .is_none()
    );
    let mut auto = msg();
    auto.headers
        .push(("Auto-Submitted".into(), "auto-replied".into()));
    assert!(
        go_with(src, &auto, &mut FakeHost::default())
            .vacation
            .is_none()
    );
    let mut bulk = msg();
    bulk.headers.push(("Precedence".into(), "bulk".into()));
    assert!(
        go_with(src, &bulk, &mut FakeHost::default())
            .vacation
            .is_none()
    );
    let other = Msg::new(&[("To", "someone@else.org")], "x");
    assert!(
        go_with(src, &other, &mut FakeHost::default())
            .vacation
            .is_none()
    );
    let o = go_with(
        r#"require "vacation"; vacation :days 1 "x";"#,
        &msg(),
        &mut FakeHost::default(),
    );
    // RCPT TO is bob+sieve@example.org; To has bob@example.org: the detail is ignored.
    assert_eq!(
        o.vacation.map(|v| v.subject),
        Some("Auto: [rust] Release 1.95 is out".into())
    );
}

#[test]
fn step_limit() {
    let script = check(
        "if true { keep; } if true { keep; } if true { keep; }",
        true,
    )
    .unwrap();
    let limits = Limits {
        max_steps: 3,
        ..Limits::default()
    };
    let o = run(
        &script,
        &msg(),
        &env(),
        &mut FakeHost::default(),
        limits,
        &mut PatternCache::new(1 << 20),
    );
    assert!(o.error.is_some());
}

#[test]
fn redirect_is_ignored_and_keeps() {
    let o = go("redirect \"x@example.com\";");
    assert_eq!(boxes(&o), vec!["INBOX"]);
    assert_eq!(o.notes.len(), 1);
}

#[test]
fn extension_list() {
    assert!(!crate::extensions(false).contains(&"vacation"));
    assert!(crate::extensions(true).contains(&"vacation-seconds"));
    let _ = compile::compile("", &[]);
}
