//! SEARCH evaluation tables and ESEARCH encoding.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::type_complexity
)]

use super::*;
use crate::mime::analyze;

const DAY: i64 = 86_400;
/// 2024-03-10 12:00:00 UTC.
const T: i64 = 1_710_072_000;

struct Msg {
    seq: u32,
    uid: u32,
    flags: u8,
    keywords: Vec<String>,
    recent: bool,
    internal: i64,
    saved: Option<i64>,
    modseq: u64,
    raw: Vec<u8>,
}

fn msgs() -> Vec<Msg> {
    let m1 = b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nCc: carol@example.com\r\n\
Subject: Quarterly Report\r\nDate: Fri, 8 Mar 2024 23:30:00 -0800\r\nX-Tag: red\r\n\r\n\
The numbers are UP this quarter.\r\n"
        .to_vec();
    let m2 = "From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.de>\r\nTo: alice@example.org\r\n\
Bcc: hidden@example.org\r\nSubject: =?UTF-8?B?w5xiZXJ3ZWlzdW5n?=\r\n\
Date: Sun, 10 Mar 2024 01:00:00 +0100\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Gr=FC=DFe aus M=FCnchen\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\r\nU2VjcmV0IHBocmFzZQ==\r\n--b--\r\n"
        .as_bytes()
        .to_vec();
    let m3 = b"Subject: no date\r\n\r\nshort\r\n".to_vec();
    vec![
        Msg {
            seq: 1,
            uid: 10,
            flags: SystemFlags::SEEN | SystemFlags::ANSWERED,
            keywords: vec!["$Label1".into()],
            recent: false,
            internal: T - 2 * DAY,
            saved: Some(T - 2 * DAY),
            modseq: 5,
            raw: m1,
        },
        Msg {
            seq: 2,
            uid: 20,
            flags: SystemFlags::FLAGGED,
            keywords: vec![],
            recent: true,
            internal: T,
            saved: Some(T),
            modseq: 9,
            raw: m2,
        },
        Msg {
            seq: 3,
            uid: 30,
            flags: SystemFlags::DELETED | SystemFlags::DRAFT | SystemFlags::SEEN,
            keywords: vec!["Work".into()],
            recent: true,
            internal: T + DAY,
            saved: None,
            modseq: 12,
            raw: m3,
        },
    ]
}

const SCOPE: Scope<'static> = Scope {
    exists: 3,
    max_uid: 30,
    now: T + DAY + 100,
    index: None,
};

/// Runs `key` over the fixture messages, loading content only when asked; returns the
/// matching sequence numbers and how many contents were loaded.
fn run(key: &SearchKey) -> (Vec<u32>, usize) {
    run_listed(key, true)
}

/// [`run`]; without `listed`, the dates and size are placeholders, as a session gives
/// them when [`SearchKey::needs_listing`] says no key reads them.
fn run_listed(key: &SearchKey, listed: bool) -> (Vec<u32>, usize) {
    let mut hits = Vec::new();
    let mut loads = 0;
    for m in msgs() {
        let c = Candidate {
            seq: m.seq,
            uid: m.uid,
            flags: SystemFlags(m.flags),
            keywords: &m.keywords,
            recent: m.recent,
            internal_date: if listed { m.internal } else { 0 },
            save_date: if listed { m.saved } else { Some(0) },
            size: if listed { m.raw.len() as u64 } else { 0 },
            modseq: ModSeq(m.modseq),
        };
        let result = match matches(key, &c, &SCOPE, None) {
            Some(r) => r,
            None => {
                loads += 1;
                let meta = analyze(&m.raw);
                // As the session gives it: the structure only when the key needs it.
                let content = Content {
                    raw: &m.raw,
                    prefix_len: 0,
                    header_len: meta.header_len,
                    meta: key.needs_structure().then_some(&meta),
                };
                matches(key, &c, &SCOPE, Some(&content)).expect("decided with content")
            }
        };
        if result {
            hits.push(m.seq);
        }
    }
    (hits, loads)
}

fn seqs(ranges: &[(SeqBound, SeqBound)]) -> SeqSet {
    SeqSet(ranges.to_vec())
}

use SeqBound::{Last, Value as V};

#[test]
fn search_keys_table() {
    for (key, want) in keys_table() {
        assert_eq!(run(&key).0, want, "{key:?}");
    }
}

/// A key that does not ask for the dates and size gives the same answer without them;
/// the table has both kinds.
#[test]
fn keys_that_need_no_listing_answer_without_it() {
    let (mut with, mut without) = (0, 0);
    for (key, want) in keys_table() {
        if key.needs_listing() {
            with += 1;
        } else {
            without += 1;
            assert_eq!(run_listed(&key, false).0, want, "{key:?}");
        }
    }
    assert!(with >= 10 && without >= 10, "{with} {without}");
}

fn keys_table() -> Vec<(SearchKey, Vec<u32>)> {
    let d = |y, m, day| Date::new(y, m, day);
    let not = |k| SearchKey::Not(Box::new(k));
    let or = |a, b| SearchKey::Or(Box::new(a), Box::new(b));
    let h = SearchKey::header;
    let size1 = msgs()[0].raw.len() as u64;
    let table: Vec<(SearchKey, Vec<u32>)> = vec![
        (SearchKey::All, vec![1, 2, 3]),
        (SearchKey::And(vec![]), vec![1, 2, 3]),
        (SearchKey::SeqSet(seqs(&[(V(2), Last)])), vec![2, 3]),
        (SearchKey::SeqSet(seqs(&[(Last, Last)])), vec![3]),
        (SearchKey::SeqSet(seqs(&[(V(3), V(1))])), vec![1, 2, 3]),
        (SearchKey::SeqSet(seqs(&[(V(5), V(9))])), vec![]),
        (SearchKey::Uid(seqs(&[(V(15), V(25))])), vec![2]),
        // n:* includes the highest UID even when n is larger.
        (SearchKey::Uid(seqs(&[(V(99), Last)])), vec![3]),
        (SearchKey::Uid(SeqSet::from_numbers(&[10, 30])), vec![1, 3]),
        (SearchKey::Flag(SystemFlags::SEEN, true), vec![1, 3]),
        (SearchKey::Flag(SystemFlags::SEEN, false), vec![2]),
        (SearchKey::Flag(SystemFlags::ANSWERED, true), vec![1]),
        (SearchKey::Flag(SystemFlags::ANSWERED, false), vec![2, 3]),
        (SearchKey::Flag(SystemFlags::DELETED, true), vec![3]),
        (SearchKey::Flag(SystemFlags::DRAFT, false), vec![1, 2]),
        (SearchKey::Flag(SystemFlags::FLAGGED, true), vec![2]),
        (SearchKey::Keyword("work".into(), true), vec![3]),
        (SearchKey::Keyword("$label1".into(), false), vec![2, 3]),
        (SearchKey::Recent, vec![2, 3]),
        (SearchKey::New, vec![2]),
        (SearchKey::Old, vec![1]),
        (SearchKey::Larger(size1), vec![2]),
        (SearchKey::Smaller(size1), vec![3]),
        (SearchKey::Larger(0), vec![1, 2, 3]),
        // Internal date: 2024-03-08, 2024-03-10, 2024-03-11 (UTC).
        (
            SearchKey::Internal(DateCmp::Before, d(2024, 3, 10)),
            vec![1],
        ),
        (SearchKey::Internal(DateCmp::On, d(2024, 3, 10)), vec![2]),
        (
            SearchKey::Internal(DateCmp::Since, d(2024, 3, 10)),
            vec![2, 3],
        ),
        // Sent date: the Date header's own date (8 Mar, 10 Mar); message 3 has none
        // and falls back to its internal date (11 Mar).
        (SearchKey::Sent(DateCmp::On, d(2024, 3, 8)), vec![1]),
        (SearchKey::Sent(DateCmp::On, d(2024, 3, 10)), vec![2]),
        (SearchKey::Sent(DateCmp::Before, d(2024, 3, 10)), vec![1]),
        (SearchKey::Sent(DateCmp::Since, d(2024, 3, 10)), vec![2, 3]),
        (SearchKey::Saved(DateCmp::Since, d(2024, 3, 9)), vec![2]),
        (SearchKey::Saved(DateCmp::Before, d(2024, 3, 9)), vec![1]),
        (SearchKey::SaveDateSupported, vec![1, 2, 3]),
        (SearchKey::ModSeq(ModSeq(9)), vec![2, 3]),
        (SearchKey::ModSeq(ModSeq(13)), vec![]),
        (SearchKey::Older(DAY as u64 + 50), vec![1, 2]),
        (SearchKey::Younger(DAY as u64 + 50), vec![3]),
        (h("From", b"ALICE"), vec![1]),
        (h("from", b"example"), vec![1, 2]),
        // RFC 2047 decoded: J=C3=BCrgen is Jürgen, any case.
        (h("From", "jürgen".as_bytes()), vec![2]),
        (h("From", "JÜRGEN".as_bytes()), vec![2]),
        (h("To", b"alice"), vec![2]),
        (h("Cc", b"carol"), vec![1]),
        (h("Bcc", b"hidden"), vec![2]),
        (h("Subject", b"report"), vec![1]),
        (h("Subject", "überweisung".as_bytes()), vec![2]),
        (h("X-Tag", b""), vec![1]),
        (h("x-tag", b"RED"), vec![1]),
        (h("X-Missing", b""), vec![]),
        (SearchKey::Body(b"numbers ARE up".to_vec()), vec![1]),
        (SearchKey::Body(b"subject".to_vec()), vec![]),
        // Body of a QP part in ISO-8859-1, and of a base64 part.
        (
            SearchKey::Body("grüße aus münchen".as_bytes().to_vec()),
            vec![2],
        ),
        (SearchKey::Body(b"secret PHRASE".to_vec()), vec![2]),
        (SearchKey::Text(b"quarterly".to_vec()), vec![1]),
        (SearchKey::Text(b"short".to_vec()), vec![3]),
        (SearchKey::Text("ÜBERWEISUNG".as_bytes().to_vec()), vec![2]),
        (not(SearchKey::Flag(SystemFlags::SEEN, true)), vec![2]),
        (
            or(
                SearchKey::Flag(SystemFlags::FLAGGED, true),
                SearchKey::Keyword("Work".into(), true),
            ),
            vec![2, 3],
        ),
        (
            SearchKey::And(vec![
                SearchKey::Flag(SystemFlags::SEEN, true),
                h("Subject", b"no date"),
            ]),
            vec![3],
        ),
        (
            not(or(h("From", b"alice"), SearchKey::Body(b"secret".to_vec()))),
            vec![3],
        ),
    ];
    table
}

#[test]
fn cheap_keys_never_load_content() {
    let cheap = SearchKey::And(vec![
        SearchKey::Flag(SystemFlags::SEEN, false),
        SearchKey::Uid(seqs(&[(V(1), Last)])),
        SearchKey::Larger(1),
    ]);
    assert_eq!(run(&cheap), (vec![2], 0));
    // A failing cheap key decides the AND without loading; only message 2 is loaded.
    let mixed = SearchKey::And(vec![
        SearchKey::Flag(SystemFlags::SEEN, false),
        SearchKey::Body(b"secret".to_vec()),
    ]);
    assert_eq!(run(&mixed), (vec![2], 1));
    // OR with a true cheap side needs no content either.
    let or = SearchKey::Or(
        Box::new(SearchKey::All),
        Box::new(SearchKey::Text(b"x".to_vec())),
    );
    assert_eq!(run(&or), (vec![1, 2, 3], 0));
}

#[test]
fn key_properties() {
    let k = SearchKey::Not(Box::new(SearchKey::And(vec![SearchKey::ModSeq(ModSeq(3))])));
    assert!(k.uses_modseq());
    assert_eq!(k.depth(), 3);
    assert!(!SearchKey::All.uses_modseq());
}

#[test]
fn case_insensitive_contains() {
    let table: &[(&[u8], &[u8], bool)] = &[
        (b"Hello World", b"WORLD", true),
        (b"Hello", b"", true),
        (b"", b"a", false),
        (b"abc", b"abcd", false),
        ("Straße".as_bytes(), "STRASSE".as_bytes(), false),
        ("ÉCOLE".as_bytes(), "école".as_bytes(), true),
        (b"\xff\xfeabc", b"ABC", true),
    ];
    for (hay, needle, want) in table {
        assert_eq!(contains_ci(hay, needle), *want, "{hay:?} {needle:?}");
    }
}

#[test]
fn sequence_set_compression() {
    let table: &[(&[u32], &str)] = &[
        (&[], ""),
        (&[1], "1"),
        (&[1, 2, 3, 5, 7, 8, 9], "1:3,5,7:9"),
        (&[9, 1, 2, 2, 8], "1:2,8:9"),
        (&[u32::MAX - 1, u32::MAX], "4294967294:4294967295"),
    ];
    for (nums, want) in table {
        let mut out = Vec::new();
        write_sequence_set(nums, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), *want);
    }
}

#[test]
fn search_and_esearch_responses() {
    let mut out = Vec::new();
    write_search("SEARCH", &[], None, &mut out);
    assert_eq!(out, b"* SEARCH\r\n");
    out.clear();
    write_search("SEARCH", &[2, 5], Some(ModSeq(917)), &mut out);
    assert_eq!(out, b"* SEARCH 2 5 (MODSEQ 917)\r\n");
    out.clear();
    write_search("SEARCH", &[], Some(ModSeq(917)), &mut out);
    assert_eq!(out, b"* SEARCH\r\n");

    let all = Return {
        min: true,
        max: true,
        count: true,
        all: true,
        partial: None,
        update: false,
    };
    let table: &[(Option<&[u8]>, bool, &[u32], Return, Option<ModSeq>, &str)] = &[
        (
            Some(b"A1"),
            true,
            &[1, 2, 3, 4, 9],
            all,
            None,
            "* ESEARCH (TAG \"A1\") UID MIN 1 MAX 9 COUNT 5 ALL 1:4,9\r\n",
        ),
        (
            Some(b"A2"),
            false,
            &[],
            all,
            None,
            "* ESEARCH (TAG \"A2\") COUNT 0\r\n",
        ),
        (
            Some(b"t"),
            false,
            &[],
            Return::default(),
            None,
            "* ESEARCH (TAG \"t\")\r\n",
        ),
        (
            None,
            false,
            &[3, 4],
            Return::default(),
            None,
            "* ESEARCH ALL 3:4\r\n",
        ),
        (
            Some(b"x\"y"),
            true,
            &[7],
            Return {
                count: true,
                ..Return::default()
            },
            Some(ModSeq(44)),
            "* ESEARCH (TAG \"x\\\"y\") UID COUNT 1 MODSEQ 44\r\n",
        ),
    ];
    let partial = |s: &str| {
        let buf = format!("{s})");
        let mut p = crate::imap::grammar::Parser::new(buf.as_bytes());
        Some(crate::imap::cmd::partial::Range::parse(&mut p).unwrap())
    };
    let more: &[(Option<&[u8]>, bool, &[u32], Return, Option<ModSeq>, &str)] = &[
        // ESORT (RFC 5267 §3.2): the results in sort order; MIN and MAX are the first
        // and the last, ALL keeps the order.
        (
            Some(b"t"),
            false,
            &[5, 1, 2, 3, 9, 8],
            all,
            None,
            "* ESEARCH (TAG \"t\") MIN 5 MAX 8 COUNT 6 ALL 5,1:3,9,8\r\n",
        ),
        // RFC 9394 §3.1: the page, the range as sent, NIL for an empty page.
        (
            Some(b"p"),
            true,
            &[2, 4, 5, 6, 9],
            Return {
                count: true,
                partial: partial("-1:-3"),
                ..Return::default()
            },
            Some(ModSeq(8)),
            "* ESEARCH (TAG \"p\") UID COUNT 5 PARTIAL (-1:-3 5:6,9) MODSEQ 8\r\n",
        ),
        (
            Some(b"q"),
            false,
            &[9, 8, 7],
            Return {
                partial: partial("4:2"),
                ..Return::default()
            },
            None,
            "* ESEARCH (TAG \"q\") PARTIAL (4:2 8,7)\r\n",
        ),
        (
            Some(b"r"),
            false,
            &[],
            Return {
                partial: partial("1:10"),
                ..Return::default()
            },
            None,
            "* ESEARCH (TAG \"r\") PARTIAL (1:10 NIL)\r\n",
        ),
    ];
    for (tag, uid, nums, ret, modseq, want) in table.iter().chain(more) {
        let mut out = Vec::new();
        write_esearch(*tag, *uid, nums, *ret, *modseq, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), *want);
    }
}

#[test]
fn header_keys_see_the_prefix_and_body_keys_do_not() {
    let prefix = b"Delivered-To: alice@example.org\r\n";
    let blob = b"Subject: hi\r\n\r\nbody text\r\n";
    let meta = analyze(blob);
    let mut raw = prefix.to_vec();
    raw.extend_from_slice(blob);
    let content = Content {
        raw: &raw,
        prefix_len: prefix.len(),
        header_len: meta.header_len,
        meta: Some(&meta),
    };
    let kw: Vec<String> = Vec::new();
    let m = Candidate {
        seq: 1,
        uid: 1,
        flags: SystemFlags(0),
        keywords: &kw,
        recent: false,
        internal_date: T,
        save_date: None,
        size: raw.len() as u64,
        modseq: ModSeq(1),
    };
    let run = |k: SearchKey| matches(&k, &m, &SCOPE, Some(&content)).unwrap();
    assert!(run(SearchKey::header("delivered-to", b"alice")));
    assert!(run(SearchKey::header("Subject", b"HI")));
    assert!(run(SearchKey::Body(b"BODY TEXT".to_vec())));
    assert!(!run(SearchKey::Body(b"delivered".to_vec())));
    assert!(run(SearchKey::Text(b"delivered".to_vec())));
    // Without content the content keys are undecided.
    assert_eq!(
        matches(&SearchKey::Body(b"x".to_vec()), &m, &SCOPE, None),
        None
    );
    assert_eq!(
        matches(
            &SearchKey::Not(Box::new(SearchKey::Text(b"x".to_vec()))),
            &m,
            &SCOPE,
            None
        ),
        None
    );
}
