//! Independent clients against the real binary (issue 3, acceptance 2): one full
//! Python imaplib session (create, list, select, fetch bodies and BODYSTRUCTURE,
//! search, store, copy, move, expunge, rename, IDLE) and curl's imap:// URLs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::Command;

use common::*;

#[test]
fn imaplib_full_session() {
    let env = Env::with_config(IMAP_CONFIG);
    env.add_user("alice");
    let server = Server::start(&env);
    let addr = server.imap.unwrap();
    let script = format!(
        r#"
import imaplib, socket
M = imaplib.IMAP4("{ip}", {port})
assert M.login("alice", "pw-alice")[0] == "OK"
assert M.create("Work")[0] == "OK"
assert M.create("Work/2026")[0] == "OK"
typ, data = M.list('""', "*")
assert typ == "OK", data
names = {{d.decode().rsplit('"/" ', 1)[1].strip('"'): d.decode() for d in data}}
assert "INBOX" in names and "Work/2026" in names, names
assert "\\HasChildren" in names["Work"], names
plain = b"From: Alice <alice@example.org>\r\nSubject: plain\r\n\r\nhello world\r\n"
multi = (b"From: Bob <bob@example.net>\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/alternative; boundary=b1\r\n\r\n--b1\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n\r\nplain part\r\n--b1\r\n"
         b"Content-Type: text/html\r\n\r\n<p>html part</p>\r\n--b1--\r\n")
for m in (plain, multi):
    assert M.append("INBOX", None, None, m)[0] == "OK"
typ, data = M.select("INBOX")
assert typ == "OK" and data == [b"2"], data
typ, data = M.fetch("1:2", "(BODY.PEEK[])")
bodies = [d[1] for d in data if isinstance(d, tuple)]
assert typ == "OK" and bodies == [plain, multi], data
typ, data = M.fetch("2", "(BODYSTRUCTURE BODY.PEEK[2])")
assert typ == "OK", data
head = data[0][0].decode().lower()
assert '("text" "plain" ("charset" "utf-8")' in head and '"alternative"' in head, head
assert data[0][1] == b"<p>html part</p>", data
typ, data = M.search(None, "SUBJECT", "parts")
assert typ == "OK" and data == [b"2"], data
typ, data = M.store("1", "+FLAGS", "(\\Flagged)")
assert typ == "OK" and b"\\Flagged" in data[0], data
typ, data = M.search(None, "FLAGGED")
assert data == [b"1"], data
typ, data = M.copy("1", "Work")
assert typ == "OK" and b"COPYUID" in data[0], data
typ, data = M.uid("MOVE", "2", "Work/2026")
assert typ == "OK", data
typ, data = M.store("1", "+FLAGS", "(\\Deleted)")
typ, data = M.expunge()
assert typ == "OK" and data == [b"2", b"1"], data  # the MOVE's EXPUNGE, then ours
typ, data = M.status("Work", "(MESSAGES)")
assert b"MESSAGES 1" in data[0], data
assert M.rename("Work", "Done")[0] == "OK"
typ, data = M.status("Done/2026", "(MESSAGES)")
assert typ == "OK" and b"MESSAGES 1" in data[0], data

# IDLE by hand (imaplib's idle() needs Python 3.14): a second client appends.
typ, data = M.select("Done")
assert typ == "OK" and data == [b"1"], data
tag = M._new_tag().decode()
M.send(f"{{tag}} IDLE\r\n".encode())
assert M.readline().startswith(b"+ "), "no continuation"
other = imaplib.IMAP4("{ip}", {port})
other.login("alice", "pw-alice")
assert other.append("Done", None, None, plain)[0] == "OK"
M.sock.settimeout(5)
line = M.readline()
assert line == b"* 2 EXISTS\r\n", line
M.send(b"DONE\r\n")
line = M.readline()
while line.startswith(b"* "):
    line = M.readline()
assert line.startswith(tag.encode() + b" OK"), line
typ, data = M.fetch("2", "(BODY.PEEK[TEXT])")
assert typ == "OK" and data[0][1] == b"hello world\r\n", data
other.logout()
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

/// Runs curl with `args`; panics with install advice when it is missing.
fn curl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("curl is needed as an independent IMAP client ({e}); install curl")
        });
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_lists_fetches_and_searches() {
    let env = Env::with_config(IMAP_CONFIG);
    env.add_user("alice");
    let server = Server::start(&env);
    let addr = server.imap.unwrap();
    let base = format!("imap://{}:{}", addr.ip(), addr.port());
    let msgs = [
        "From: a@example.org\r\nSubject: first\r\n\r\nfirst body\r\n",
        "From: b@example.org\r\nSubject: second\r\n\r\nsecond body\r\n",
    ];
    for m in msgs {
        env.cli(
            &["deliver", "--user", "alice", "--mailbox", "INBOX"],
            m.as_bytes(),
        )
        .expect_code(0);
    }
    let user = ["--user", "alice:pw-alice"];

    let (code, out, err) = curl(&[&user[..], &[&format!("{base}/")]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("* LIST (") && out.contains("INBOX"), "{out}");

    let (code, out, err) = curl(&[&user[..], &[&format!("{base}/INBOX;UID=2")]].concat());
    assert_eq!(code, 0, "{err}");
    // What arrives is the delivered message after the server's trace headers.
    assert!(out.ends_with(msgs[1]), "{out:?}");
    assert!(out.contains("Subject: second\r\n"), "{out:?}");

    let (code, out, err) = curl(
        &[
            &user[..],
            &["-X", "UID SEARCH ALL", &format!("{base}/INBOX")],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim_end(), "* SEARCH 1 2", "{out:?}");

    let (code, _, err) = curl(&["--user", "alice:wrong", &format!("{base}/")]);
    assert_ne!(code, 0, "a wrong password must fail: {err}");
}
