//! Table tests, offset checks and a "never panics" mutation loop for `analyze`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use super::*;

const SIMPLE: &[u8] = b"From: Alice <alice@example.com>\r\n\
To: bob@example.org\r\n\
Subject: Hello\r\n\tworld \r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Message-ID: <1@example.com>\r\n\
Content-Type: text/plain; charset=\"utf-8\"\r\n\
\r\n\
Hi Bob,\r\n\
bye\r\n";

const NO_CONTENT_TYPE: &[u8] = b"Subject: plain\r\n\r\nline one\r\nline two";

const MIXED: &[u8] = b"From: a@b.example\r\n\
Content-Type: multipart/mixed; boundary=\"XX\"\r\n\
\r\n\
preamble\r\n\
--XX\r\n\
Content-Type: text/plain\r\n\
\r\n\
body one\r\n\
--XX  \r\n\
Content-Type: application/octet-stream; name=a.bin\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"a.bin\"\r\n\
\r\n\
AAEC\r\n\
AwQF\r\n\
--XX--\r\n\
epilogue\r\n";

const NESTED: &[u8] = b"Subject: nested\r\n\
Content-Type: multipart/mixed; boundary=outer\r\n\
\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
plain text\r\n\
--inner\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>html</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: image/png\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
iVBORw0K\r\n\
--outer--\r\n";

const RFC822: &[u8] = b"Subject: fwd\r\n\
Content-Type: multipart/mixed; boundary=A\r\n\
\r\n\
--A\r\n\
Content-Type: text/plain\r\n\
\r\n\
see attached\r\n\
--A\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
From: Carol <carol@example.net>\r\n\
Content-Type: multipart/alternative; boundary=B\r\n\
\r\n\
--B\r\n\
Content-Type: text/plain\r\n\
\r\n\
inner plain\r\n\
--B\r\n\
Content-Type: text/html\r\n\
\r\n\
<b>inner</b>\r\n\
--B--\r\n\
--A--\r\n";

const UNCLOSED: &[u8] = b"Content-Type: multipart/mixed; boundary=Q\r\n\
\r\n\
--Q\r\n\
\r\n\
first\r\n\
--Q\r\n\
Content-Type: text/plain\r\n\
\r\n\
never closed\r\n";

const DIGEST: &[u8] = b"Content-Type: multipart/digest; boundary=D\r\n\
\r\n\
--D\r\n\
\r\n\
Subject: digested\r\n\
\r\n\
hi\r\n\
--D--\r\n";

const EIGHT_BIT: &[u8] =
    b"Subject: Gr\xfc\xdfe\r\nFrom: J\xf6rg <j@x.example>\r\n\r\nk\xf6rper\r\n";

const FIXTURES: &[&[u8]] = &[
    SIMPLE,
    NO_CONTENT_TYPE,
    MIXED,
    NESTED,
    RFC822,
    UNCLOSED,
    DIGEST,
    EIGHT_BIT,
];

fn text(v: &Option<Vec<u8>>) -> Option<&str> {
    v.as_deref().map(|b| std::str::from_utf8(b).unwrap())
}

fn children(p: &BodyPart) -> &[BodyPart] {
    match &p.kind {
        PartKind::Multipart { children, .. } => children,
        other => panic!("not a multipart: {other:?}"),
    }
}

fn param<'p>(p: &'p BodyPart, name: &str) -> Option<&'p [u8]> {
    p.params
        .iter()
        .find(|x| x.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|x| x.value.as_slice())
}

/// Checks every structural invariant the FETCH code relies on.
fn check_invariants(raw: &[u8], m: &MessageMeta) {
    assert_eq!(m.size, raw.len() as u64);
    assert_eq!(m.header_len, m.body.header_end);
    assert_eq!(m.body.header_start, 0);
    assert_eq!(m.body.body_end, m.size);
    if let Some(p) = &m.preview {
        assert!(p.chars().count() <= PREVIEW_MAX_CHARS);
    }
    check_part(&m.body, 0);
}

fn check_part(p: &BodyPart, depth: usize) {
    assert!(depth <= MAX_DEPTH + 1, "depth {depth}");
    assert!(p.header_start <= p.header_end && p.header_end <= p.body_end);
    match &p.kind {
        PartKind::Single => {}
        PartKind::Multipart { children, .. } => {
            assert!(!children.is_empty());
            let mut at = p.header_end;
            for c in children {
                assert!(c.header_start >= at, "children overlap or leave parent");
                assert!(c.body_end <= p.body_end);
                at = c.body_end;
                check_part(c, depth + 1);
            }
        }
        PartKind::Message { body, .. } => {
            assert_eq!(body.header_start, p.header_end);
            assert_eq!(body.body_end, p.body_end);
            check_part(body, depth + 1);
        }
    }
}

fn analyze_checked(raw: &[u8]) -> MessageMeta {
    let m = analyze(raw);
    check_invariants(raw, &m);
    m
}

#[test]
fn analyze_simple_text_message() {
    let m = analyze_checked(SIMPLE);
    let root = &m.body;
    let blank = SIMPLE.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(m.header_len, blank as u64);
    assert_eq!(root.text(SIMPLE), b"Hi Bob,\r\nbye\r\n");
    assert!(root.header(SIMPLE).ends_with(b"charset=\"utf-8\"\r\n\r\n"));
    assert_eq!(
        (&root.media_type[..], &root.media_subtype[..]),
        (&b"text"[..], &b"plain"[..])
    );
    assert_eq!(param(root, "charset"), Some(&b"utf-8"[..]));
    assert_eq!(root.encoding, b"7BIT");
    assert_eq!(root.lines, Some(2));
    assert_eq!(root.body_size(), 14);
    assert_eq!(root.kind, PartKind::Single);
    // BODY[1] of a non-multipart message is its body; nothing else exists.
    assert_eq!(root.section(&[1]), Some(root));
    assert_eq!(root.section(&[2]), None);
    assert_eq!(root.section(&[1, 1]), None);
    let env = &m.envelope;
    assert_eq!(text(&env.subject), Some("Hello\tworld"));
    assert_eq!(text(&env.date), Some("Mon, 1 Jan 2024 00:00:00 +0000"));
    assert_eq!(text(&env.message_id), Some("<1@example.com>"));
    assert_eq!(env.in_reply_to, None);
    let from = env.from.as_ref().unwrap();
    assert_eq!(text(&from[0].name), Some("Alice"));
    assert_eq!(text(&from[0].mailbox), Some("alice"));
    assert_eq!(text(&from[0].host), Some("example.com"));
    assert_eq!(env.sender, None, "defaulting to From is the encoder's job");
    assert_eq!(m.preview.as_deref(), Some("Hi Bob, bye"));
}

#[test]
fn analyze_no_content_type_defaults() {
    let m = analyze_checked(NO_CONTENT_TYPE);
    let root = &m.body;
    assert_eq!(root.media_type, b"TEXT");
    assert_eq!(root.media_subtype, b"PLAIN");
    assert_eq!(param(root, "charset"), Some(&b"US-ASCII"[..]));
    assert_eq!(root.encoding, b"7BIT");
    assert_eq!(root.lines, Some(2), "a last line without CRLF still counts");
    assert_eq!(root.text(NO_CONTENT_TYPE), b"line one\r\nline two");
}

#[test]
fn analyze_multipart_mixed_offsets() {
    let m = analyze_checked(MIXED);
    let root = &m.body;
    assert_eq!(root.media_subtype, b"mixed");
    assert!(matches!(&root.kind, PartKind::Multipart { boundary: Some(b), .. } if b == b"XX"));
    assert!(root.text(MIXED).starts_with(b"preamble\r\n--XX\r\n"));
    assert!(root.text(MIXED).ends_with(b"--XX--\r\nepilogue\r\n"));
    let parts = children(root);
    assert_eq!(parts.len(), 2);

    let one = &parts[0];
    assert_eq!(one.header(MIXED), b"Content-Type: text/plain\r\n\r\n");
    assert_eq!(
        one.text(MIXED),
        b"body one",
        "CRLF before a delimiter is the delimiter's"
    );
    assert_eq!(one.body_size(), 8);
    assert_eq!(one.lines, Some(1));
    assert_eq!(root.section(&[1]), Some(one));

    let two = &parts[1];
    assert_eq!(
        two.header(MIXED),
        &b"Content-Type: application/octet-stream; name=a.bin\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"a.bin\"\r\n\r\n"[..]
    );
    assert_eq!(two.text(MIXED), b"AAEC\r\nAwQF");
    assert_eq!(two.body_size(), 10);
    assert_eq!(two.encoding, b"base64");
    assert_eq!(two.lines, None, "no line count for non-text parts");
    assert_eq!(param(two, "name"), Some(&b"a.bin"[..]));
    let disp = two.disposition.as_ref().unwrap();
    assert_eq!(disp.kind, b"attachment");
    assert_eq!(
        disp.params,
        vec![Param {
            name: b"filename".to_vec(),
            value: b"a.bin".to_vec()
        }]
    );
    // Offsets are absolute: check them against the raw positions too.
    let at = |needle: &[u8]| {
        MIXED
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap() as u64
    };
    assert_eq!(two.header_start, at(b"Content-Type: application"));
    assert_eq!(two.body_end, at(b"\r\n--XX--"));
    assert_eq!(root.section(&[3]), None);
    assert_eq!(m.preview.as_deref(), Some("body one"));
}

#[test]
fn analyze_nested_alternative_in_mixed() {
    let m = analyze_checked(NESTED);
    let root = &m.body;
    let alt = root.section(&[1]).unwrap();
    assert_eq!(alt.media_subtype, b"alternative");
    assert!(
        alt.header(NESTED)
            .starts_with(b"Content-Type: multipart/alternative")
    );
    assert!(alt.text(NESTED).starts_with(b"--inner\r\n"));
    assert!(alt.text(NESTED).ends_with(b"--inner--"));
    let plain = root.section(&[1, 1]).unwrap();
    assert_eq!(plain.text(NESTED), b"plain text");
    let html = root.section(&[1, 2]).unwrap();
    assert_eq!(html.header(NESTED), b"Content-Type: text/html\r\n\r\n");
    assert_eq!(html.text(NESTED), b"<p>html</p>");
    let png = root.section(&[2]).unwrap();
    assert_eq!(png.media_type, b"image");
    assert_eq!(png.text(NESTED), b"iVBORw0K");
    assert_eq!(root.section(&[1, 3]), None);
    assert_eq!(root.section(&[2, 1]), None);
    assert_eq!(m.preview.as_deref(), Some("plain text"));
}

#[test]
fn analyze_message_rfc822_attachment() {
    let m = analyze_checked(RFC822);
    let root = &m.body;
    let msg = root.section(&[2]).unwrap();
    assert_eq!(msg.media_type, b"message");
    let PartKind::Message { envelope, body } = &msg.kind else {
        panic!("expected message/rfc822");
    };
    assert_eq!(text(&envelope.subject), Some("inner"));
    assert_eq!(
        text(&envelope.from.as_ref().unwrap()[0].name),
        Some("Carol")
    );
    assert_eq!(body.header_start, msg.header_end);
    assert!(body.header(RFC822).starts_with(b"Subject: inner\r\n"));
    assert!(body.header(RFC822).ends_with(b"boundary=B\r\n\r\n"));
    assert!(msg.text(RFC822).ends_with(b"--B--"));
    assert_eq!(msg.lines, Some(count_lines_of(msg.text(RFC822))));
    // 2.1 and 2.2 are the encapsulated message's parts.
    assert_eq!(root.section(&[2, 1]).unwrap().text(RFC822), b"inner plain");
    assert_eq!(root.section(&[2, 2]).unwrap().text(RFC822), b"<b>inner</b>");
    assert_eq!(root.section(&[2, 3]), None);
    assert_eq!(m.preview.as_deref(), Some("see attached"));
}

fn count_lines_of(b: &[u8]) -> u64 {
    super::structure::count_lines(b)
}

#[test]
fn analyze_message_rfc822_single_part_inside() {
    let raw = b"Content-Type: multipart/mixed; boundary=A\r\n\r\n--A\r\nContent-Type: message/rfc822\r\n\r\nSubject: s\r\n\r\ninner body\r\n--A--\r\n";
    let m = analyze_checked(raw);
    let inner = m.body.section(&[1, 1]).unwrap();
    assert_eq!(inner.text(raw), b"inner body");
    assert_eq!(m.body.section(&[1, 2]), None);
}

#[test]
fn analyze_digest_default_is_message() {
    let m = analyze_checked(DIGEST);
    let part = m.body.section(&[1]).unwrap();
    assert_eq!(
        (&part.media_type[..], &part.media_subtype[..]),
        (&b"MESSAGE"[..], &b"RFC822"[..])
    );
    let PartKind::Message { envelope, .. } = &part.kind else {
        panic!("digest part should be a message");
    };
    assert_eq!(text(&envelope.subject), Some("digested"));
    assert_eq!(m.body.section(&[1, 1]).unwrap().text(DIGEST), b"hi");
}

#[test]
fn analyze_boundary_never_closed() {
    let m = analyze_checked(UNCLOSED);
    let parts = children(&m.body);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].header(UNCLOSED), b"\r\n");
    assert_eq!(parts[0].text(UNCLOSED), b"first");
    assert_eq!(parts[1].text(UNCLOSED), b"never closed\r\n");
    assert_eq!(parts[1].body_end, UNCLOSED.len() as u64);

    // An unclosed inner multipart ends at the outer delimiter.
    let raw = b"Content-Type: multipart/mixed; boundary=O\r\n\r\n--O\r\nContent-Type: multipart/mixed; boundary=I\r\n\r\n--I\r\n\r\ninner\r\n--O\r\n\r\nsecond\r\n--O--";
    let m = analyze_checked(raw);
    assert_eq!(m.body.section(&[1, 1]).unwrap().text(raw), b"inner");
    assert_eq!(m.body.section(&[2]).unwrap().text(raw), b"second");
}

#[test]
fn analyze_multipart_without_parts_gets_one() {
    for raw in [
        &b"Content-Type: multipart/mixed\r\n\r\nno boundary param\r\n"[..],
        b"Content-Type: multipart/mixed; boundary=Z\r\n\r\nno delimiter here\r\n",
        b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n",
        b"Content-Type: multipart/mixed; boundary=Z\r\n\r\n--Z--\r\n",
    ] {
        let m = analyze_checked(raw);
        let parts = children(&m.body);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].media_subtype, b"PLAIN");
        assert_eq!(parts[0].body_size(), 0);
    }
}

#[test]
fn analyze_boundary_needs_whole_line() {
    // "--XYZ" is not a delimiter for boundary "XY"; trailing whitespace is allowed.
    let raw = b"Content-Type: multipart/mixed; boundary=XY\r\n\r\n--XY \t\r\n\r\na\r\n--XYZ\r\nb\r\n--XY--garbage\r\n";
    let m = analyze_checked(raw);
    let parts = children(&m.body);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].text(raw), b"a\r\n--XYZ\r\nb");
}

#[test]
fn analyze_empty_parts_between_adjacent_delimiters() {
    let raw = b"Content-Type: multipart/mixed; boundary=E\r\n\r\n--E\r\n--E\r\n\r\nx\r\n--E--";
    let m = analyze_checked(raw);
    let parts = children(&m.body);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].header(raw), b"");
    assert_eq!(parts[0].body_size(), 0);
    assert_eq!(parts[1].text(raw), b"x");
}

#[test]
fn analyze_delimiter_after_empty_first_line() {
    let raw =
        b"Content-Type: multipart/mixed; boundary=E\r\n\r\n--E\r\n\r\n--E\r\n\r\n\r\n\r\n--E--\r\n";
    let m = analyze_checked(raw);
    let parts = children(&m.body);
    assert_eq!(parts.len(), 2);
    // The lone CRLF after the first delimiter line is the next delimiter's.
    assert_eq!(
        (parts[0].header(raw), parts[0].text(raw)),
        (&b""[..], &b""[..])
    );
    assert_eq!(
        (parts[1].header(raw), parts[1].text(raw)),
        (&b"\r\n"[..], &b"\r\n"[..])
    );
}

#[test]
fn analyze_missing_headers() {
    let raw = b"Subject: only\r\nTo:\r\nCc: ,,;\r\n\r\nbody\r\n";
    let env = analyze_checked(raw).envelope;
    assert_eq!(text(&env.subject), Some("only"));
    assert_eq!(env.to, Some(vec![]), "present but empty");
    assert_eq!(env.cc, Some(vec![]));
    assert_eq!(
        (env.date, env.from, env.sender, env.reply_to),
        (None, None, None, None)
    );
    assert_eq!(
        (env.bcc, env.in_reply_to, env.message_id),
        (None, None, None)
    );
}

#[test]
fn analyze_no_body_and_odd_framing() {
    // (raw, header_len, body text)
    let table: &[(&[u8], u64, &[u8])] = &[
        (b"", 0, b""),
        (b"Subject: x\r\n\r\n", 14, b""),
        (b"Subject: x\r\n", 12, b""),
        (b"Subject: x", 10, b""),
        (b"\r\nbody only", 2, b"body only"),
        (
            b"Subject: x\r\n\r\nno trailing crlf",
            14,
            b"no trailing crlf",
        ),
        (b"no header at all, no colon", 26, b""),
        (b"\x00\xff\r\n\r\n\xfe", 6, b"\xfe"),
    ];
    for &(raw, header_len, body) in table {
        let m = analyze_checked(raw);
        assert_eq!(m.header_len, header_len, "{raw:?}");
        assert_eq!(m.body.text(raw), body, "{raw:?}");
        assert_eq!(m.body.header(raw).len() + m.body.text(raw).len(), raw.len());
    }
    let m = analyze(b"Subject: x\r\n\r\n");
    assert_eq!(m.body.lines, Some(0));
    assert_eq!(m.preview.as_deref(), Some(""));
}

#[test]
fn analyze_8bit_header_bytes_kept() {
    let m = analyze_checked(EIGHT_BIT);
    assert_eq!(m.envelope.subject.as_deref(), Some(&b"Gr\xfc\xdfe"[..]));
    let from = m.envelope.from.unwrap();
    assert_eq!(from[0].name.as_deref(), Some(&b"J\xf6rg"[..]));
    assert_eq!(from[0].host.as_deref(), Some(&b"x.example"[..]));
    // No Content-Type: the US-ASCII default decodes 8-bit bytes leniently (cp1252).
    assert_eq!(m.preview.as_deref(), Some("körper"));
}

#[test]
fn analyze_mime_fields() {
    let raw = b"Content-Type: Text/Plain (comment) ; CharSet = \"iso-8859-1\" ; junk ; =x;\r\n\
\tformat=flowed; title*0*=us-ascii'en'This%20is; title*1=\" more \\\"x\\\"\"\r\n\
Content-Transfer-Encoding: Quoted-Printable (why)\r\n\
Content-ID: <part1@example>\r\n\
Content-Description: =?utf-8?q?caf=C3=A9?=\r\n\
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\
Content-Disposition: INLINE; filename=x.txt\r\n\
Content-Language: en-US, (comment) fr ,\r\n\
Content-Location: http://example.com/\r\n\
\x20a.txt\r\n\
\r\n\
caf=E9\r\n";
    let m = analyze_checked(raw);
    let p = &m.body;
    assert_eq!(
        (&p.media_type[..], &p.media_subtype[..]),
        (&b"Text"[..], &b"Plain"[..])
    );
    let names: Vec<&[u8]> = p.params.iter().map(|x| x.name.as_slice()).collect();
    assert_eq!(
        names,
        vec![&b"CharSet"[..], b"format", b"title*0*", b"title*1"]
    );
    assert_eq!(param(p, "charset"), Some(&b"iso-8859-1"[..]));
    assert_eq!(param(p, "title*0*"), Some(&b"us-ascii'en'This%20is"[..]));
    assert_eq!(param(p, "title*1"), Some(&b" more \"x\""[..]));
    assert_eq!(p.encoding, b"Quoted-Printable");
    assert_eq!(text(&p.id), Some("<part1@example>"));
    assert_eq!(text(&p.description), Some("=?utf-8?q?caf=C3=A9?="));
    assert_eq!(text(&p.md5), Some("Q2hlY2sgSW50ZWdyaXR5IQ=="));
    assert_eq!(p.disposition.as_ref().unwrap().kind, b"INLINE");
    assert_eq!(p.language, vec![b"en-US".to_vec(), b"fr".to_vec()]);
    assert_eq!(text(&p.location), Some("http://example.com/ a.txt"));
    assert_eq!(m.preview.as_deref(), Some("café"));
}

#[test]
fn analyze_invalid_content_type_defaults() {
    for ct in [&b"text"[..], b"/plain", b"text/", b"", b"(only a comment)"] {
        let mut raw = b"Content-Type: ".to_vec();
        raw.extend_from_slice(ct);
        raw.extend_from_slice(b"\r\n\r\nx");
        let m = analyze_checked(&raw);
        assert_eq!(m.body.media_type, b"TEXT", "{ct:?}");
        assert_eq!(param(&m.body, "charset"), Some(&b"US-ASCII"[..]));
    }
}

#[test]
fn analyze_preview_decodes_html_and_base64() {
    let raw = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
PGh0bWw+PGJvZHk+PHA+SGVsbG8sPC9wPgo8cD53b3JsZCAmYW1wOyBtb3JlPC9wPjwvYm9keT48L2h0bWw+\r\n--b--\r\n";
    let m = analyze_checked(raw);
    assert_eq!(m.preview.as_deref(), Some("Hello, world & more"));

    let long = [b"Subject: long\r\n\r\n".to_vec(), b"word ".repeat(100_000)].concat();
    let p = analyze_checked(&long).preview.unwrap();
    assert_eq!(
        p.chars().count(),
        PREVIEW_MAX_CHARS - 1,
        "no dangling space: {p:?}"
    );

    let attachment_only = b"Content-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nx";
    assert_eq!(analyze_checked(attachment_only).preview, None);
}

fn deep_multipart(levels: usize) -> Vec<u8> {
    let mut raw = Vec::new();
    for i in 0..levels {
        raw.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\nleaf\r\n");
    for i in (0..levels).rev() {
        raw.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
    }
    raw
}

fn depth_of(p: &BodyPart) -> usize {
    match &p.kind {
        PartKind::Single => 0,
        PartKind::Multipart { children, .. } => {
            1 + children.iter().map(depth_of).max().unwrap_or(0)
        }
        PartKind::Message { body, .. } => 1 + depth_of(body),
    }
}

#[test]
fn analyze_10000_deep_nesting_is_capped() {
    // A small stack proves the recursion is bounded, not just lucky.
    let handle = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            let raw = deep_multipart(10_000);
            let m = analyze_checked(&raw);
            assert_eq!(depth_of(&m.body), MAX_DEPTH);
            let mut p = &m.body;
            while let PartKind::Multipart { children, .. } = &p.kind {
                p = &children[0];
            }
            assert_eq!(
                p.media_type, b"APPLICATION",
                "the capped part is an opaque leaf"
            );
            assert!(
                p.header(&raw)
                    .starts_with(b"Content-Type: multipart/mixed; boundary=b64\r\n")
            );

            let messages = b"Content-Type: message/rfc822\r\n\r\n".repeat(10_000);
            let m = analyze_checked(&messages);
            assert_eq!(depth_of(&m.body), MAX_DEPTH);
            let bytes = postcard::to_stdvec(&m).unwrap();
            assert_eq!(postcard::from_bytes::<MessageMeta>(&bytes).unwrap(), m);
        })
        .unwrap();
    handle.join().unwrap();
}

#[test]
fn analyze_many_parts_hits_budget() {
    let mut raw = b"Content-Type: multipart/mixed; boundary=m\r\n\r\n".to_vec();
    raw.extend_from_slice(&b"--m\r\n\r\nx\r\n".repeat(ITEM_BUDGET + 10));
    let m = analyze_checked(&raw);
    let n = children(&m.body).len();
    assert!(n < ITEM_BUDGET && n > ITEM_BUDGET / 2, "{n}");
}

#[test]
fn meta_postcard_round_trip() {
    for raw in FIXTURES {
        let m = analyze(raw);
        let bytes = postcard::to_stdvec(&m).unwrap();
        let back: MessageMeta = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, m);
    }
}

/// xorshift64*: deterministic, no extra crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"--",
    b"--XX",
    b"--A--",
    b"\r\n--B\r\n",
    b":",
    b";",
    b"\"",
    b"(",
    b")",
    b"<",
    b">",
    b"@",
    b",",
    b"\\",
    b"=?",
    b"\r",
    b"\n",
    b"\x00",
    b"\xff",
    b"Content-Type: multipart/mixed; boundary=XX\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b" ",
    b"\t",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            2 => {
                let end = (at + rng.below(64)).min(v.len());
                v.drain(at..end);
            }
            3 => v.truncate(at),
            4 => {
                let end = (at + rng.below(200)).min(v.len());
                let chunk = v[at..end].to_vec();
                v.splice(at..at, chunk);
            }
            _ => {
                let other = FIXTURES[rng.below(FIXTURES.len())];
                let from = rng.below(other.len());
                v.splice(at..at, other[from..].iter().copied());
            }
        }
    }
    v
}

#[test]
fn analyze_never_panics_on_mutations() {
    // MIME_FUZZ_ROUNDS=1000000 cargo test --release never_panics  for a longer run.
    let rounds = std::env::var("MIME_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..rounds {
        let base = FIXTURES[round % FIXTURES.len()];
        let input = mutate(&mut rng, base);
        let m = analyze_checked(&input);
        let bytes = postcard::to_stdvec(&m).unwrap();
        assert_eq!(postcard::from_bytes::<MessageMeta>(&bytes).unwrap(), m);
    }
    for _ in 0..500 {
        let len = rng.below(300);
        let noise: Vec<u8> = (0..len)
            .map(|_| TOKENS[rng.below(TOKENS.len())][0])
            .collect();
        analyze_checked(&noise);
    }
}
