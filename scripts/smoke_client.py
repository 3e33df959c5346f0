#!/usr/bin/env python3
"""Smoke client for a running nestbox (scripts/aarch64-smoke.sh): one LMTP transaction
with two messages, IMAP FETCH of both (the one marked as spam must have been filed into
Junk with $Junk by the spam-to-junk filter plugin), POP3 RETR of the plain one.
Exits non-zero with a message on the first mismatch."""
import argparse
import imaplib
import poplib
import smtplib
import sys


def hostport(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def check(cond, what):
    if not cond:
        sys.exit(f"smoke: FAILED: {what}")
    print(f"ok: {what}")


def main():
    p = argparse.ArgumentParser()
    for name in ("lmtp", "imap", "pop3", "user", "password"):
        p.add_argument(f"--{name}", required=True)
    a = p.parse_args()
    plain = b"From: a@example.org\r\nTo: smoke@smoke.example\r\nSubject: hello arm\r\n\r\nbody on aarch64\r\n"
    spam = b"From: s@example.org\r\nTo: smoke@smoke.example\r\nSubject: buy\r\nX-Spam-Flag: YES\r\n\r\nspam body\r\n"

    host, port = hostport(a.lmtp)
    with smtplib.LMTP(host, port, timeout=120) as lmtp:
        for msg in (plain, spam):
            refused = lmtp.sendmail("a@example.org", [f"{a.user}@smoke.example"], msg)
            check(refused == {}, "LMTP delivery accepted")

    host, port = hostport(a.imap)
    imap = imaplib.IMAP4(host, port, timeout=120)
    imap.login(a.user, a.password)
    typ, data = imap.select("INBOX")
    check(typ == "OK" and data == [b"1"], f"IMAP SELECT INBOX: 1 message ({data})")
    typ, data = imap.uid("FETCH", "1", "(FLAGS BODY.PEEK[])")
    body = data[0][1] if typ == "OK" and data and isinstance(data[0], tuple) else b""
    check(b"body on aarch64" in body and b"Subject: hello arm" in body, "IMAP UID FETCH BODY[] of the plain message")
    typ, data = imap.select("Junk")
    check(typ == "OK" and data == [b"1"], f"IMAP SELECT Junk: 1 message, filed by the plugin ({data})")
    typ, data = imap.fetch("1", "(FLAGS BODY.PEEK[TEXT])")
    flags = data[0][0] if typ == "OK" and data and isinstance(data[0], tuple) else b""
    text = data[0][1] if typ == "OK" and data and isinstance(data[0], tuple) else b""
    check(b"$Junk" in flags and text == b"spam body\r\n", "plugin keyword $Junk and body in Junk")
    imap.logout()

    host, port = hostport(a.pop3)
    pop = poplib.POP3(host, port, timeout=120)
    pop.user(a.user)
    pop.pass_(a.password)
    count, _ = pop.stat()
    check(count == 1, f"POP3 STAT: 1 message ({count})")
    _, lines, _ = pop.retr(1)
    check(b"body on aarch64" in lines and b"Subject: hello arm" in lines, "POP3 RETR 1")
    _, uidl, _ = pop.uidl()
    check(len(uidl) == 1, f"POP3 UIDL ({uidl[0].decode()})")
    pop.quit()
    print("smoke client: all checks passed")


if __name__ == "__main__":
    main()
