#!/usr/bin/env python3
"""Fills a Dovecot account over IMAP for scripts/dovecot-fixture.sh: folders (special-use
names, a hierarchy, a non-ASCII name), messages with flags and keywords, expunges that
leave UID gaps, a COPY, and subscriptions."""
import imaplib
import sys


def msg(n, subject, extra=""):
    return (
        f"From: sender{n}@example.org\r\nTo: alice@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <m{n}@example.org>\r\n{extra}\r\nBody of message {n}.\r\nSecond line.\r\n"
    ).encode()


def ok(resp):
    typ, data = resp
    if typ != "OK":
        sys.exit(f"populate: {typ} {data}")
    return data


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    imap = imaplib.IMAP4(host, int(port))
    ok(imap.login(sys.argv[2], sys.argv[3]))
    for name in ("Sent", "Drafts", "Trash", "Junk", "Archives", "Work", "Work/2024", "Caf&AOk-"):
        ok(imap.create(f'"{name}"'))
    n = 10
    # (mailbox, flags, date) in order; dates are INTERNALDATEs (the files' mtimes).
    plan = [
        ("INBOX", r"(\Seen)", "01-Mar-2024 09:00:00 +0000"),
        ("INBOX", r"(\Seen \Answered $Forwarded)", "02-Mar-2024 10:30:00 +0100"),
        ("INBOX", r"(\Flagged $Label1)", "03-Mar-2024 11:00:00 -0500"),
        ("INBOX", "()", "04-Mar-2024 12:00:00 +0000"),
        ("INBOX", r"(\Seen)", "05-Mar-2024 13:00:00 +0000"),
        ("INBOX", r"(\Draft Important $Label1)", "06-Mar-2024 14:00:00 +0000"),
        ("INBOX", r"(\Seen)", "07-Mar-2024 15:00:00 +0000"),
        ("Sent", r"(\Seen)", "08-Mar-2024 08:00:00 +0000"),
        ("Sent", r"(\Seen \Answered)", "09-Mar-2024 08:00:00 +0000"),
        ("Drafts", r"(\Draft)", "10-Mar-2024 08:00:00 +0000"),
        ("Trash", r"(\Seen \Deleted)", "11-Mar-2024 08:00:00 +0000"),
        ("Junk", r"($Junk)", "12-Mar-2024 08:00:00 +0000"),
        ("Work/2024", r"(\Seen)", "13-Mar-2024 08:00:00 +0000"),
        ("Work/2024", r"(\Seen $Project)", "14-Mar-2024 08:00:00 +0000"),
        ("Work/2024", "()", "15-Mar-2024 08:00:00 +0000"),
        ("Work/2024", r"(\Flagged)", "16-Mar-2024 08:00:00 +0000"),
        ("Work/2024", r"(\Seen)", "17-Mar-2024 08:00:00 +0000"),
        ("Caf&AOk-", r"(\Seen)", "18-Mar-2024 08:00:00 +0000"),
    ]
    for mailbox, flags, date in plan:
        n += 1
        ok(imap.append(f'"{mailbox}"', flags, f'"{date}"', msg(n, f"{mailbox} message {n}")))

    # INBOX: the two LDA messages are UIDs 1-2, the appended ones 3-9.
    ok(imap.select("INBOX"))
    ok(imap.uid("STORE", "1", "+FLAGS", r"(\Seen $Label1)"))
    ok(imap.uid("STORE", "4,6", "+FLAGS", r"(\Deleted)"))
    ok(imap.expunge())
    ok(imap.uid("STORE", "8", "+FLAGS", r"(\Deleted)"))  # CLOSE below expunges it
    ok(imap.uid("STORE", "5", "-FLAGS", r"(\Flagged)"))
    ok(imap.uid("STORE", "5", "+FLAGS", r"(\Answered Urgent)"))
    ok(imap.uid("COPY", "3", "Work"))
    ok(imap.close())
    # Work/2024: expunge the first, a middle and the last message (UIDNEXT stays past it).
    ok(imap.select('"Work/2024"'))
    ok(imap.uid("STORE", "1,3,5", "+FLAGS", r"(\Deleted)"))
    ok(imap.close())

    for name in ("INBOX", "Sent", "Drafts", "Trash", "Work/2024", "Caf&AOk-"):
        ok(imap.subscribe(f'"{name}"'))
    ok(imap.subscribe('"Work"'))
    ok(imap.unsubscribe('"Work"'))
    imap.logout()


if __name__ == "__main__":
    main()
