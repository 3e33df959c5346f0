//! The read-side message commands against Python's imaplib as an independent client:
//! FETCH of bodies, sections and structure, STORE of flags, SEARCH and UID SEARCH,
//! CONDSTORE, ESEARCH and SEARCHRES (RFC 9051 §6.4.4-6.4.6, §6.4.9; RFC 7162; RFC 4731;
//! RFC 5182). The transcripts tests/imap/08-fetch.txt, 09-store.txt and 10-search.txt
//! cover each item and error branch byte for byte.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;

#[test]
fn imaplib_fetch_store_search() {
    let env = Env::with_config(IMAP_CONFIG);
    env.add_user("alice");
    let server = Server::start(&env);
    let addr = server.imap.unwrap();
    let script = format!(
        r#"
import imaplib, re, time
M = imaplib.IMAP4("{ip}", {port})
M.login("alice", "pw-alice")
caps = M.capability()[1][0].decode().split()
for c in ("CONDSTORE", "ESEARCH", "SEARCHRES", "BINARY", "WITHIN"):
    assert c in caps, caps
plain = b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hello\r\n\r\nplain body\r\n"
multi = (b"From: Bob <bob@example.net>\r\nSubject: with attachment\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\n"
         b"see attached\r\n--zz\r\nContent-Type: application/octet-stream\r\n"
         b"Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--zz--\r\n")
for m in (plain, multi):
    typ, _ = M.append("INBOX", None, imaplib.Time2Internaldate(time.time()), m)
    assert typ == "OK"
typ, data = M.select("INBOX")
assert typ == "OK" and data == [b"2"], data

# Bodies: BODY[] is the message as appended; RFC822.SIZE matches it exactly.
typ, data = M.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
assert typ == "OK", data
assert data[0][1] == plain, data
assert b"RFC822.SIZE %d" % len(plain) in data[0][0], data
typ, data = M.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[1] BINARY.PEEK[2])")
assert typ == "OK", data
assert data[0][1] == b"Subject: with attachment\r\n\r\n", data
assert data[1][1] == b"see attached", data
assert data[2][1] == b"\x00\x01\x02\x03", data
typ, data = M.fetch("2", "(BODYSTRUCTURE ENVELOPE)")
assert typ == "OK", data
bs = data[0].decode()
low = bs.lower()
assert '("text" "plain"' in low and '"mixed"' in low and '("boundary" "zz")' in low, bs
assert '("application" "octet-stream" nil nil nil "base64" 8 ' in low, bs
assert '"with attachment"' in bs and '(("Bob" NIL "bob" "example.net"))' in bs, bs

# BODY[] without PEEK sets \Seen and reports FLAGS.
typ, data = M.fetch("1", "(BODY[TEXT])")
assert typ == "OK" and data[0][1] == b"plain body\r\n", data
assert b"\\Seen" in b"".join(x if isinstance(x, bytes) else x[0] for x in data), data

# STORE, then SEARCH sees the flags.
typ, data = M.store("2", "+FLAGS", "(\\Flagged $Work)")
assert typ == "OK" and b"\\Flagged" in data[0] and b"$Work" in data[0], data
typ, data = M.search(None, "FLAGGED")
assert typ == "OK" and data == [b"2"], data
typ, data = M.search(None, "UNSEEN")
assert typ == "OK" and data == [b"2"], data
typ, data = M.uid("SEARCH", "SEEN")
assert typ == "OK" and data == [b"1"], data
typ, data = M.search("UTF-8", "BODY", "attached")
assert typ == "OK" and data == [b"2"], data
typ, data = M.search(None, "OR", "FROM", "alice", "KEYWORD", "$Work")
assert typ == "OK" and data == [b"1 2"], data
typ, data = M.search("KOI8-R", "ALL")
assert typ == "NO", data

# UID FETCH always carries UID; CONDSTORE STORE with UNCHANGEDSINCE.
typ, data = M.uid("FETCH", "1:*", "(FLAGS MODSEQ)")
assert typ == "OK" and all(b"UID " in d and b"MODSEQ (" in d for d in data), data
m = re.search(rb"MODSEQ \((\d+)\)", data[1])
tag = M._command("UID", "STORE", "2", "(UNCHANGEDSINCE 1) +FLAGS", "(\\Answered)")
typ, data = M._command_complete("UID", tag)
assert typ == "OK" and data[0].startswith(b"[MODIFIED 2]"), (typ, data)

# ESEARCH and SEARCHRES.
typ, data = M._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT SAVE)", "ALL")
assert typ == "OK", data
typ, data = M.response("ESEARCH")
assert b"MIN 1 MAX 2 COUNT 2" in data[0], data
typ, data = M.fetch("$", "(UID)")
assert typ == "OK" and len(data) == 2, data
M.logout()
print("ok")
"#,
        ip = addr.ip(),
        port = addr.port()
    );
    let r = python3(&["-c", &script]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");
}

/// A STORE in one session reaches another session that has the mailbox selected as an
/// unsolicited FETCH after its own solicited data and before its tagged OK (RFC 9051
/// §5.2, §7.5.1; PROTOCOL.md items 66, 67, quirk Q11); `.SILENT` still tells the other
/// session (item 95).
#[test]
fn store_in_one_session_is_fetch_in_the_other() {
    let env = Env::with_config(IMAP_CONFIG);
    env.add_user("alice");
    let server = Server::start(&env);
    let addr = server.imap.unwrap();
    let script = format!(
        r#"
import socket
def conn():
    s = socket.create_connection(("{ip}", {port})); s.settimeout(10)
    f = s.makefile("rb")
    f.readline()
    return s, f
def cmd(s, f, tag, text):
    s.sendall(f"{{tag}} {{text}}\r\n".encode())
    lines = []
    while True:
        l = f.readline().decode().rstrip("\r\n")
        lines.append(l)
        if l.startswith(tag + " "):
            return lines
a, fa = conn(); b, fb = conn()
for s, f in ((a, fa), (b, fb)):
    assert cmd(s, f, "l", "LOGIN alice pw-alice")[-1].startswith("l OK")
msg = "Subject: x\r\n\r\nbody\r\n"
a.sendall(f"p APPEND INBOX {{{{{{len(msg)}}+}}}}\r\n{{msg}}\r\n".encode())
while not fa.readline().startswith(b"p "): pass
assert cmd(a, fa, "s", "SELECT INBOX")[-1].startswith("s OK")
assert cmd(b, fb, "s", "SELECT INBOX")[-1].startswith("s OK")
r = cmd(b, fb, "t", "STORE 1 +FLAGS.SILENT (\\Flagged)")
assert r == ["t OK STORE completed"], r
r = cmd(a, fa, "f", "FETCH 1 (UID)")
assert r[0] == "* 1 FETCH (UID 1)", r
# \\Recent depends on whether the APPEND fell in the server's first second.
assert r[1] in ("* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))", "* 1 FETCH (UID 1 FLAGS (\\Flagged))"), r
assert r[2].startswith("f OK"), r
print("ok")
"#,
        ip = addr.ip(),
        port = addr.port()
    );
    let r = python3(&["-c", &script]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");
}

/// `FETCH 1:* BODY[]` over a mailbox far larger than the driver's flush threshold
/// (256 KiB) is sent message by message as the buffer fills (src/imap/server.rs
/// `FLUSH_AT`); every byte must still arrive in order and intact, with the tagged OK last,
/// and the server's peak memory (VmHWM, Linux) must grow far less than the reply.
///
/// The mailbox is packed before the FETCH, as most mail is: the packer would otherwise
/// run during it and count too. Reading packed mail fills the pack cache (src/store/pack.rs
/// `CACHE`: 4 packs of up to 1 MiB), memory bounded whatever the reply's size, so the
/// reply is large (27 MB) and the server's peak may grow by half of it at most.
#[test]
fn fetch_of_a_big_mailbox_streams_every_body_intact() {
    // No compaction after packing: it would run during the FETCH and count too.
    let env = Env::with_config(
        &IMAP_CONFIG.replace("limits:", "store: (compact_check_secs: 0),\n    limits:"),
    );
    env.add_user("alice");
    let server = Server::start(&env);
    let addr = server.imap.unwrap();
    const MESSAGES: usize = 300;
    // The messages, made alike by both scripts.
    let def = r#"
def message(i):
    line = (b"%02d" % i) * 40 + b"\r\n"
    return b"Subject: big %d\r\n\r\n" % i + line * (90000 // len(line))
"#;
    let append = format!(
        r#"
import imaplib
{def}
M = imaplib.IMAP4("{ip}", {port})
M.login("alice", "pw-alice")
for i in range({MESSAGES}):
    typ, _ = M.append("INBOX", None, None, message(i))
    assert typ == "OK"
M.logout()
print("ok")
"#,
        ip = addr.ip(),
        port = addr.port(),
    );
    let r = python3(&["-c", &append]);
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");
    // Wait for the packer to take every loose message (the tail goes 2 s after the last).
    let packed = || {
        let run = env.cli(&["stats"], b"");
        run.stdout
            .lines()
            .find(|l| l.starts_with("table loose_data "))
            .and_then(|l| l.split_whitespace().nth(2))
            .is_some_and(|n| n == "0")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !packed() {
        assert!(
            std::time::Instant::now() < deadline,
            "the packer left mail loose"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let script = format!(
        r#"
import imaplib
{def}
M = imaplib.IMAP4("{ip}", {port})
M.login("alice", "pw-alice")
typ, data = M.select("INBOX")
assert typ == "OK" and data == [b"{MESSAGES}"], data
def hwm():
    for l in open("/proc/{pid}/status"):
        if l.startswith("VmHWM:"):
            return int(l.split()[1])
# The peak so far (the APPENDs, the packer) would hide the FETCH's: reset it to the
# current RSS (proc(5), clear_refs "5").
with open("/proc/{pid}/clear_refs", "w") as f:
    f.write("5")
before = hwm()
typ, data = M.fetch("1:*", "(UID BODY.PEEK[])")
grew = hwm() - before
# Streamed, the server's peak grows by the pack cache (4 MiB at most) and its spare
# buffer (1 MiB), the batch read (256 KiB and one message), the 256 KiB flush threshold
# and the allocator's slack: 6.3-6.5 MiB measured; built whole, by the reply (26 MiB).
reply = sum(len(message(i)) for i in range({MESSAGES})) // 1024
assert grew < reply // 2, f"server peak RSS grew {{grew}} KiB during the FETCH of {{reply}} KiB: not streamed?"
assert typ == "OK", typ
got = [d for d in data if isinstance(d, tuple)]
assert len(got) == {MESSAGES}, len(got)
for i, (head, body) in enumerate(got):
    assert head.startswith(b"%d (UID %d BODY[] {{" % (i + 1, i + 1)), head
    assert body == message(i), (i, len(body))
# The connection is still in step: a later command gets its own answer.
typ, data = M.fetch("{MESSAGES}", "(RFC822.SIZE)")
assert typ == "OK" and b"RFC822.SIZE %d" % len(message({last})) in data[0], data
M.logout()
print("ok")
"#,
        ip = addr.ip(),
        port = addr.port(),
        pid = server.pid(),
        last = MESSAGES - 1,
    );
    let r = python3(&["-c", &script]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout.trim(), "ok", "{r:#?}");
}
