#!/usr/bin/env python3
"""Mail and checks for scripts/real-clients.sh (standard library only).

  real_clients.py lmtp HOST:PORT USER...        delivers the generated messages (threads,
                                                non-ASCII subjects and bodies) to every USER
                                                in one LMTP transaction per message
  real_clients.py create HOST:PORT USER NAME...  creates mailboxes (IMAP)
  real_clients.py generated-count                how many messages `lmtp` delivers
  real_clients.py same-bodies MAILDIR CORPUS_LIST [blank-lines]
                                                every message a client wrote to MAILDIR
                                                has the body that was delivered, byte for
                                                byte (line endings, or empty lines, aside)
  real_clients.py counts HOST:PORT USER         prints "MAILBOX COUNT" per mailbox (IMAP)
  real_clients.py store HOST:PORT USER UID|<MSGID> FLAGS
                                                UID STORE +FLAGS in INBOX (-FLAGS if
                                                FLAGS starts with "-")
  real_clients.py flags HOST:PORT USER UID|<MSGID>  prints the flags of a message in INBOX
  real_clients.py append HOST:PORT USER SUBJECT [MAILBOX [INTERNALDATE]]
                                                appends a small message to INBOX (or
                                                MAILBOX, with INTERNALDATE "DD-Mon-YYYY")
  real_clients.py same-mail HOST:PORT USER1 USER2
                                                both users have the same mailboxes holding
                                                the same messages (by Message-ID): bytes,
                                                flags (\Recent aside) and INTERNALDATE
  real_clients.py save HOST:PORT USER MAILBOX DIR   writes MAILBOX's messages to the
                                                maildir DIR (for same-bodies)
  real_clients.py expunge HOST:PORT USER <MSGID> \Deleted and EXPUNGE in INBOX
  real_clients.py msgids HOST:PORT USER MAILBOX prints the Message-IDs in MAILBOX
  real_clients.py search HOST:PORT USER CRITERION...  prints the UIDs UID SEARCH finds in
                                                INBOX
  real_clients.py pop3-stat HOST:PORT USER      prints the message count of a POP3 STAT
  real_clients.py roundcube HOST:PORT USER UI_JSONL STEP...
                                                checks what real_clients_ui.cjs saw against
                                                the server's own data (RFC 5256 SORT order,
                                                THREAD=REFERENCES parents, SEARCH, MOVE,
                                                delete); prints "STEP<TAB>PASS|FAIL<TAB>note"

The IMAP/POP3 checks use the plain-text loopback listeners, user password "pw".
"""
import email
import email.header
import email.utils
import imaplib
import json
import poplib
import re
import smtplib
import sys
from email.message import EmailMessage

PASSWORD = "pw"
TIMEOUT = 30  # seconds, per socket operation: a hung server fails the check
DOMAIN = "clients.nestbox.test"
SEARCH_WORD = "Grüße"


def hostport(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def generated():
    """The generated messages: (key, parent key or None, EmailMessage)."""
    # (key, parent, subject, date, from, body, charset/transfer encoding)
    spec = [
        ("koeln-1", None, "Grüße aus Köln", "Mon, 02 Mar 2026 09:00:00 +0100",
         "Jürgen Müller <juergen@example.de>", "Schöne Grüße aus Köln!\nDer Dom steht noch.\n", "8bit"),
        ("koeln-2", "koeln-1", "Re: Grüße aus Köln", "Mon, 02 Mar 2026 11:30:00 +0100",
         "Zoë Faßbender <zoe@example.de>", "Danke für die Grüße, Jürgen.\n", "quoted-printable"),
        ("koeln-3", "koeln-2", "Re: Re: Grüße aus Köln", "Tue, 03 Mar 2026 08:15:00 +0100",
         "Jürgen Müller <juergen@example.de>", "Gern geschehen. Bis bald in Düsseldorf.\n", "base64"),
        ("nihongo-1", None, "日本語のテスト", "Wed, 04 Mar 2026 10:00:00 +0900",
         "山田太郎 <taro@example.jp>", "これは日本語のテストです。\n", "base64"),
        ("nihongo-2", "nihongo-1", "Re: 日本語のテスト", "Wed, 04 Mar 2026 12:00:00 +0900",
         "Alice <alice@example.org>", "返信です。ありがとう。\n", "8bit"),
        ("report-1", None, "Quarterly report", "Thu, 05 Mar 2026 14:00:00 -0500",
         "Carol <carol@example.com>", "The quarterly figures are attached in spirit.\n", "7bit"),
        ("report-2", "report-1", "Re: Quarterly report", "Thu, 05 Mar 2026 15:00:00 -0500",
         "Dave <dave@example.com>", "Looks good to me.\n", "7bit"),
        ("report-3", "report-1", "RE: Quarterly report", "Thu, 05 Mar 2026 16:00:00 -0500",
         "Erin <erin@example.com>", "One question about page 3.\n", "7bit"),
        ("report-4", "report-2", "Re: Re: Quarterly report", "Fri, 06 Mar 2026 09:00:00 -0500",
         "Carol <carol@example.com>", "Thanks, Dave.\n", "7bit"),
        ("greek", None, "Ελληνικά νέα", "Sat, 07 Mar 2026 07:00:00 +0200",
         "Νίκος <nikos@example.gr>", "Καλημέρα κόσμε.\n", "quoted-printable"),
        ("cafe", None, "Café menu", "Sun, 08 Mar 2026 12:00:00 +0000",
         "Chloé <chloe@example.fr>", "Crème brûlée au menu.\n", "latin-1"),
        ("zebra", None, "zebra facts", "Sun, 08 Mar 2026 23:30:00 -0800",
         "Zed <zed@example.com>", "Stripes.\n", "7bit"),
        ("apple", None, "[list] Apple pie recipe", "Mon, 09 Mar 2026 06:00:00 +0000",
         "Baker <baker@example.com>", "Flour, butter, apples.\n", "7bit"),
        ("fwd", None, "Fwd: Meeting notes", "Mon, 09 Mar 2026 05:00:00 +0100",
         "Frank <frank@example.com>", "Forwarding the notes.\n", "7bit"),
        # Lines POP3 must byte-stuff (RFC 1939 section 3) and an mbox From_ look-alike.
        ("dots", None, "Dots and dashes", "Tue, 10 Mar 2026 10:00:00 +0000",
         "Dot <dot@example.com>", ".hidden line\n..two dots\n.\nFrom the start\n-- \nDot\n", "7bit"),
    ]
    out = []
    ids = {}
    for key, parent, subject, date, frm, body, enc in spec:
        m = EmailMessage()
        m["From"] = frm
        m["To"] = "Clients <clients@" + DOMAIN + ">"
        m["Subject"] = subject
        m["Date"] = date
        ids[key] = f"<{key}@{DOMAIN}>"
        m["Message-ID"] = ids[key]
        if parent:
            m["In-Reply-To"] = ids[parent]
            refs, p = [], parent
            while p:
                refs.insert(0, ids[p])
                p = next((q for k, q, *_ in spec if k == p), None)
            m["References"] = " ".join(refs)
        if enc == "latin-1":
            m.set_content(body, charset="iso-8859-1", cte="quoted-printable")
        elif enc in ("8bit", "7bit"):
            m.set_content(body, charset="utf-8", cte=enc)
        else:
            m.set_content(body, charset="utf-8", cte=enc)
        out.append((key, parent, m))
    return out


def cmd_generated_count():
    print(len(generated()))


def body(raw):
    """The body of a message, line endings as LF."""
    raw = raw.replace(b"\r\n", b"\n")
    return raw.split(b"\n\n", 1)[1] if b"\n\n" in raw else b""


def cmd_same_bodies(maildir, corpus_list, mode="strict"):
    """Every message in MAILDIR (cur, new) has the body of the message delivered with its
    Message-ID (generated, or a corpus file named in CORPUS_LIST), byte for byte; with
    mode "blank-lines", empty lines aside (getmail6 and offlineimap write a message
    through Python's email package, which puts an empty line before a closing multipart
    boundary that has none)."""
    import os
    originals = {f"<{k}@{DOMAIN}>": m.as_bytes() for k, _p, m in generated()}
    with open(corpus_list) as f:
        for path in f.read().split():
            with open(path, "rb") as g:
                raw = g.read()
            mid = (email.message_from_bytes(raw).get("Message-ID") or "").strip()
            originals[mid] = raw
    bad, n = [], 0
    for sub in ("cur", "new"):
        for name in sorted(os.listdir(os.path.join(maildir, sub))):
            with open(os.path.join(maildir, sub, name), "rb") as g:
                raw = g.read()
            mid = (email.message_from_bytes(raw).get("Message-ID") or "").strip()
            if mid not in originals:
                continue  # written by the client or appended on the server
            n += 1
            a, b = body(raw), body(originals[mid])
            if mode == "blank-lines":
                a, b = re.sub(b"\n+", b"\n", a), re.sub(b"\n+", b"\n", b)
            if a != b:
                bad.append(mid)
    print(f"{n} compared, {len(bad)} differ" + (f": {' '.join(bad)}" if bad else ""))
    sys.exit(1 if bad or n == 0 else 0)


def cmd_lmtp(addr, *users):
    with smtplib.LMTP(*hostport(addr), timeout=TIMEOUT) as s:
        for _key, _parent, m in generated():
            # CRLF line ends: smtplib sends bytes as they are (RFC 5321 section 2.3.8).
            data = m.as_bytes(policy=m.policy.clone(linesep="\r\n"))
            refused = s.sendmail("sender@" + DOMAIN, [f"{u}@localhost" for u in users], data)
            if refused:
                sys.exit(f"LMTP refused: {refused}")
            # LMTP answers DATA once per recipient (RFC 2033 section 4.2); smtplib reads
            # the first answer only.
            for u in users[1:]:
                code, text = s.getreply()
                if code != 250:
                    sys.exit(f"LMTP: {u}: {code} {text}")


def imap(addr, user):
    m = imaplib.IMAP4(*hostport(addr), timeout=TIMEOUT)
    m.login(user, PASSWORD)
    return m


def mailboxes(m):
    typ, data = m.list()
    assert typ == "OK", data
    names = []
    for line in data:
        # (\Flags) "/" "Name" or Name
        mm = re.match(rb'\((.*?)\) (?:"[^"]*"|NIL) (.*)$', line)
        if not mm or b"\\Noselect" in mm.group(1):
            continue
        name = mm.group(2).decode()
        names.append(name[1:-1] if name.startswith('"') else name)
    return names


def cmd_create(addr, user, *names):
    m = imap(addr, user)
    for name in names:
        typ, data = m.create(f'"{name}"')
        assert typ == "OK" or b"ALREADYEXISTS" in data[0], data
    m.logout()


def cmd_counts(addr, user):
    m = imap(addr, user)
    for name in sorted(mailboxes(m)):
        typ, data = m.status(f'"{name}"', "(MESSAGES)")
        assert typ == "OK", data
        n = re.search(rb"MESSAGES (\d+)", data[0]).group(1).decode()
        print(name, n)
    m.logout()


def uid_of(m, uid):
    """UID, or the UID of the message with that Message-ID in the selected mailbox."""
    if uid.startswith("<"):
        typ, data = m.uid("SEARCH", "HEADER", "Message-ID", uid)
        assert typ == "OK" and data[0], (uid, data)
        uid = data[0].split()[0].decode()
    return uid


def cmd_store(addr, user, uid, flags):
    m = imap(addr, user)
    m.select("INBOX")
    how = "+FLAGS"
    if flags.startswith("-"):
        how, flags = "-FLAGS", flags[1:]
    typ, data = m.uid("STORE", uid_of(m, uid), how, f"({flags})")
    assert typ == "OK", data
    m.logout()


def cmd_flags(addr, user, uid):
    m = imap(addr, user)
    m.select("INBOX", readonly=True)
    typ, data = m.uid("FETCH", uid_of(m, uid), "(FLAGS)")
    assert typ == "OK", data
    print(" ".join(f.decode() for f in re.findall(rb"\\\w+|\$?\w+", re.search(rb"FLAGS \((.*?)\)", data[0]).group(1))))
    m.logout()


def cmd_expunge(addr, user, msgid):
    m = imap(addr, user)
    m.select("INBOX")
    typ, data = m.uid("SEARCH", "HEADER", "Message-ID", msgid)
    assert typ == "OK" and data[0], (msgid, data)
    typ, data = m.uid("STORE", data[0].split()[0], "+FLAGS.SILENT", r"(\Deleted)")
    assert typ == "OK", data
    typ, data = m.expunge()
    assert typ == "OK", data
    m.logout()


def cmd_append(addr, user, subject, box="INBOX", idate=None):
    m = imap(addr, user)
    msg = EmailMessage()
    msg["From"] = "Server Side <server@" + DOMAIN + ">"
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate()
    msg["Message-ID"] = f"<appended-{subject.replace(' ', '-')}@{DOMAIN}>"
    msg.set_content("Appended on the server.\n")
    date = f'"{idate} 12:00:00 +0000"' if idate else None
    typ, data = m.append(f'"{box}"', None, date, msg.as_bytes().replace(b"\n", b"\r\n"))
    assert typ == "OK", data
    m.logout()


def mailbox_messages(m, box):
    """Message-ID (or the message's SHA-1 when it has none) -> [(raw, flags,
    INTERNALDATE)] for the messages in BOX (two if it is there twice)."""
    import hashlib
    typ, data = m.select(f'"{box}"', readonly=True)
    assert typ == "OK", (box, data)
    out = {}
    if int(data[0]) == 0:
        return out
    typ, data = m.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK", data
    for i, part in enumerate(data):
        if not isinstance(part, tuple):
            continue
        head, raw = part
        # FLAGS and INTERNALDATE may come after the literal too.
        if i + 1 < len(data) and isinstance(data[i + 1], bytes):
            head += data[i + 1]
        flags = re.search(rb"FLAGS \((.*?)\)", head).group(1).split()
        flags = sorted(f.decode() for f in flags if f.lower() != b"\\recent")
        idate = re.search(rb'INTERNALDATE "([^"]*)"', head).group(1).decode()
        mid = (email.message_from_bytes(raw).get("Message-ID") or "").strip()
        key = mid or "sha1:" + hashlib.sha1(raw).hexdigest()
        out.setdefault(key, []).append((raw, flags, idate))
    return out


def cmd_same_mail(addr, user1, user2):
    m1, m2 = imap(addr, user1), imap(addr, user2)
    boxes1, boxes2 = sorted(mailboxes(m1)), sorted(mailboxes(m2))
    bad = []
    if boxes1 != boxes2:
        bad.append(f"mailboxes {boxes1} and {boxes2}")
    n = 0
    for box in sorted(set(boxes1) & set(boxes2)):
        a, b = mailbox_messages(m1, box), mailbox_messages(m2, box)
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                bad.append(f"{box}: {key} only at {user1 if key in a else user2}")
                continue
            if len(a[key]) != 1 or len(b[key]) != 1:
                bad.append(f"{box}: {key} {len(a[key])} times at {user1}, {len(b[key])} at {user2}")
                continue
            n += 1
            for i, what in enumerate(("bytes", "flags", "INTERNALDATE")):
                if a[key][0][i] != b[key][0][i]:
                    detail = "" if i == 0 else f" {a[key][0][i]} and {b[key][0][i]}"
                    bad.append(f"{box}: {key}: {what} differ{detail}")
    m1.logout()
    m2.logout()
    print(f"{len(boxes1)} mailboxes, {n} messages compared" +
          (f"; {len(bad)} differences: " + "; ".join(bad) if bad else ", identical"))
    sys.exit(1 if bad or n == 0 else 0)


def cmd_save(addr, user, box, maildir):
    import os
    m = imap(addr, user)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    msgs = [raw for copies in mailbox_messages(m, box).values() for raw, _f, _d in copies]
    for i, raw in enumerate(msgs):
        with open(os.path.join(maildir, "cur", f"{i + 1}.saved:2,"), "wb") as f:
            f.write(raw)
    m.logout()


def cmd_msgids(addr, user, box):
    m = imap(addr, user)
    m.select(f'"{box}"', readonly=True)
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    for part in data:
        if isinstance(part, tuple):
            mid = email.message_from_bytes(part[1]).get("Message-ID", "")
            print(mid.strip())
    m.logout()


def cmd_search(addr, user, *criteria):
    m = imap(addr, user)
    m.select("INBOX", readonly=True)
    typ, data = m.uid("SEARCH", *criteria)
    assert typ == "OK", data
    print(data[0].decode())
    m.logout()


def cmd_pop3_stat(addr, user):
    p = poplib.POP3(*hostport(addr), timeout=TIMEOUT)
    p.user(user)
    p.pass_(PASSWORD)
    print(p.stat()[0])
    p.quit()


# RFC 5256 section 2.1: the base subject.
BLOB = r"\[[^\[\]]*\] *"
LEADER = re.compile(rf"(?:(?:{BLOB})*(?:re|fwd?) *(?:{BLOB})?:| )", re.I)


def base_subject(raw):
    s = str(email.header.make_header(email.header.decode_header(raw or "")))
    s = re.sub(r"[ \t\r\n]+", " ", s)
    while True:
        while True:  # (2) trailers
            t = re.sub(r"(?i)\(fwd\)$", "", s.rstrip(" ")).rstrip(" ")
            if t == s:
                break
            s = t
        while True:  # (3)-(5) leaders and blobs
            m = LEADER.match(s)
            if m:
                s = s[m.end():]
                continue
            b = re.match(BLOB, s)
            if b and s[b.end():]:
                s = s[b.end():]
                continue
            break
        f = re.match(r"(?i)^\[fwd:(.*)\]$", s)  # (6)
        if f:
            s = f.group(1)
            continue
        return s


def casemap(s):
    return bytes(c - 32 if 97 <= c <= 122 else c for c in s.encode())


def server_view(addr, user):
    """UID -> (seq, Date, Subject, Message-ID, INTERNALDATE) in INBOX."""
    m = imap(addr, user)
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1:*", "(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (DATE SUBJECT MESSAGE-ID)])")
    view = {}
    for part in data:
        if not isinstance(part, tuple):
            continue
        head = part[0]
        seq = int(head.split()[0])
        uid = int(re.search(rb"UID (\d+)", head).group(1))
        idate = imaplib.Internaldate2tuple(head)
        h = email.message_from_bytes(part[1])
        view[uid] = (seq, h.get("Date"), h.get("Subject"), (h.get("Message-ID") or "").strip(), idate)
    m.logout()
    return view


def sent_date(date, idate):
    try:
        return email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        import time
        return time.mktime(idate)


def cmd_roundcube(addr, user, jsonl, *steps):
    seen = {}
    with open(jsonl, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            seen[rec["step"]] = rec
    results = []

    def record(step, ok, note):
        results.append((step, "PASS" if ok else "FAIL", note))

    def need(step):
        if step not in seen:
            record(step, False, "the UI did not get there")
            return None
        return seen[step]

    view = server_view(addr, user)
    by_mid = {v[3]: uid for uid, v in view.items()}
    gen = {f"<{k}@{DOMAIN}>": (k, p) for k, p, _ in generated()}

    rec = "threads" in steps and need("threads")
    if rec:
        rows = {int(r["uid"]): r for r in rec["rows"]}
        key_uid = {gen[v[3]][0]: uid for uid, v in view.items() if v[3] in gen}
        bad = []
        for key, parent, _m in generated():
            uid = key_uid.get(key)
            if uid is None or uid not in rows:
                bad.append(f"{key} not listed")
                continue
            want = key_uid.get(parent) if parent else None
            got = rows[uid].get("parent")
            got = int(got) if got else None
            if got != want:
                bad.append(f"{key}: parent {got}, expected {want}")
        record("threads", not bad, "; ".join(bad) or
               f"{len(rows)} rows; the 3 generated threads (3, 2 and 4 messages, one branching) nest as their References say")

    for col in ("date", "subject"):
        step = f"sort-{col}"
        rec = step in steps and need(step)
        if not rec:
            continue
        got = [int(u) for u in rec["uids"]]
        if col == "date":
            keyf = lambda u: (sent_date(view[u][1], view[u][4]), view[u][0])
        else:
            keyf = lambda u: (casemap(base_subject(view[u][2])), view[u][0])
        want = sorted(view, key=keyf)
        ok = got == want
        note = f"{len(got)} rows in RFC 5256 {col.upper()} order (ascending)"
        if not ok:
            first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            note = (f"row {first + 1}: got UID {got[first] if first < len(got) else None}, "
                    f"expected UID {want[first] if first < len(want) else None}; "
                    f"got {got}, expected {want}")
        record(step, ok, note)

    rec = "search" in steps and need("search")
    if rec:
        got = sorted(int(u) for u in rec["uids"])
        want = sorted(u for u, v in view.items() if SEARCH_WORD.lower() in
                      str(email.header.make_header(email.header.decode_header(v[2] or ""))).lower())
        record("search", got == want and len(want) == 3,
               f"'{SEARCH_WORD}' in subject: UIDs {got}" + ("" if got == want else f", expected {want}"))

    for step, box in (("move", "Archive"), ("delete", "Trash")):
        rec = step in steps and need(step)
        if not rec:
            continue
        mid = rec["messageId"]
        m = imap(addr, user)
        in_inbox = mid in by_mid
        typ, data = m.select(f'"{box}"', readonly=True)
        typ, data = m.uid("SEARCH", "HEADER", "Message-ID", mid)
        there = typ == "OK" and bool(data[0].split())
        m.logout()
        record(step, there and not in_inbox,
               f"{mid}: {'gone from' if not in_inbox else 'still in'} INBOX, "
               f"{'in' if there else 'not in'} {box}")

    for step, status, note in results:
        print(f"{step}\t{status}\t{note}")


if __name__ == "__main__":
    cmds = {"generated-count": cmd_generated_count, "same-bodies": cmd_same_bodies, "lmtp": cmd_lmtp, "counts": cmd_counts, "create": cmd_create, "store": cmd_store, "flags": cmd_flags,
            "append": cmd_append, "expunge": cmd_expunge, "msgids": cmd_msgids, "pop3-stat": cmd_pop3_stat,
            "same-mail": cmd_same_mail, "save": cmd_save, "search": cmd_search,
            "roundcube": cmd_roundcube}
    cmds[sys.argv[1]](*sys.argv[2:])
