#!/usr/bin/env python3
"""Compares what nestbox and Dovecot answer for the same mail (run by
scripts/dovecot-diff.sh, which starts both servers).

    dovecot_diff.py NESTBOX_PORT DOVECOT_PORT USER PASSWORD CORPUS_DIR [LIMIT]

APPENDs the first LIMIT files of CORPUS_DIR (line ends made CRLF) to INBOX on both
servers, in the same order, then for every message compares BODYSTRUCTURE, ENVELOPE,
RFC822.SIZE, a header subset, BODY[1.MIME] and BODY[TEXT]<0.200>, the answers to a
list of SEARCH keys, and SORT and THREAD orders (how many places differ). Differences that are choices both RFC readings allow are counted
apart and not listed (see docs/clients.md, "Compared with Dovecot"):
- case of atoms and defaults (`"7BIT"` / `"7bit"`, `"US-ASCII"` / `"us-ascii"`);
- Dovecot adds `("charset" "us-ascii")` to text parts that name no charset; nestbox
  reports the parameters as written;
- runs of white space inside strings (nestbox keeps the unfolded value as written,
  Dovecot folds runs to one space), and quoted string against literal;
- Dovecot's placeholders for unparseable addresses (`MISSING_MAILBOX`, `SYNTAX_ERROR`).
Everything else is listed. Exit status 0; the counts are the result.
"""
import imaplib
import os
import re
import sys


def connect(port, user, password):
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login(user, password)
    return c


def fetch_raw(c, uid, items):
    """The FETCH data of one message as bytes, literals inlined."""
    typ, data = c.uid("FETCH", str(uid), items)
    if typ != "OK":
        return b"NO " + b" ".join(d for d in data if isinstance(d, bytes))
    out = b""
    for d in data:
        if isinstance(d, tuple):
            out += re.sub(rb"\{\d+\}$", b"", d[0]) + quote(d[1])
        elif d is not None:
            out += d
    out = re.sub(rb"^\d+ \(", b"(", out)
    return re.sub(rb"UID \d+ ?", b"", out)


def quote(b):
    return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def parse(b):
    """An IMAP response's nested lists, strings unquoted, atoms as bytes."""
    stack, i = [[]], 0
    while i < len(b):
        c = b[i:i + 1]
        if c == b"(":
            stack.append([])
            i += 1
        elif c == b")":
            if len(stack) > 1:
                x = stack.pop()
                stack[-1].append(x)
            i += 1
        elif c in (b" ", b"\r", b"\n"):
            i += 1
        elif c == b'"':
            j, s = i + 1, b""
            while j < len(b) and b[j:j + 1] != b'"':
                if b[j:j + 1] == b"\\":
                    j += 1
                s += b[j:j + 1]
                j += 1
            stack[-1].append(s)
            i = j + 1
        else:
            m = re.match(rb"[^ ()]+", b[i:])
            stack[-1].append(None if m.group(0).upper() == b"NIL" else m.group(0))
            i += m.end()
    return stack[0]


PLACEHOLDERS = {b"missing_mailbox", b"missing_domain", b"syntax_error"}


def normal(x):
    """Folds what both readings allow (the module docstring's list)."""
    if isinstance(x, list):
        items = [normal(y) for y in x]
        # ("charset" "us-ascii") added by Dovecot: drop it from any parameter list.
        for k in range(len(items) - 1):
            if items[k] == b"charset" and items[k + 1] == b"us-ascii":
                items = items[:k] + items[k + 2:]
                break
        return items or None
    if x is None:
        return None
    x = re.sub(rb"[ \t]+", b" ", x.lower()).strip()
    return None if x in PLACEHOLDERS else x


SEARCHES = [
    'FROM "yahoo"', 'SUBJECT "re:"', 'TO "spamassassin"', 'CC "example"',
    'HEADER "X-Mailer" "Outlook"', 'HEADER "List-Id" ""', 'BODY "unsubscribe"',
    'TEXT "razor"', 'LARGER 10000', 'SMALLER 2000', 'SENTBEFORE 1-Sep-2002',
    'SENTSINCE 1-Oct-2002', 'SENTON 27-Aug-2002', 'OR FROM "yahoo" FROM "hotmail"',
    'BODY "dollars"', 'TEXT "click here"', 'SUBJECT "zzzz"',
]


def main():
    nb_port, dc_port, user, password, corpus = sys.argv[1:6]
    limit = int(sys.argv[6]) if len(sys.argv) > 6 else 3000
    files = sorted(os.listdir(corpus))[:limit]
    servers = {"nestbox": connect(int(nb_port), user, password),
               "dovecot": connect(int(dc_port), user, password)}
    for c in servers.values():
        c.select("INBOX")
        for f in files:
            raw = open(os.path.join(corpus, f), "rb").read()
            typ, d = c.append("INBOX", None, None, re.sub(rb"\r?\n", b"\r\n", raw))
            if typ != "OK":
                print("APPEND refused:", f, d)
        c.select("INBOX", readonly=True)
    nb, dc = servers["nestbox"], servers["dovecot"]
    items = {
        "BODYSTRUCTURE": "(BODYSTRUCTURE)",
        "ENVELOPE": "(ENVELOPE)",
        "sizes and headers": "(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])",
        "parts": "(BODY.PEEK[1.MIME] BODY.PEEK[TEXT]<0.200>)",
    }
    for name, spec in items.items():
        same = allowed = 0
        listed = []
        for uid, f in enumerate(files, 1):
            a, b = fetch_raw(nb, uid, spec), fetch_raw(dc, uid, spec)
            if a == b:
                same += 1
            elif normal(parse(a)) == normal(parse(b)):
                allowed += 1
            else:
                listed.append((uid, f, a, b))
        print(f"{name}: {same} the same, {allowed} differ only as allowed, "
              f"{len(listed)} differ")
        for uid, f, a, b in listed:
            print(f"  {uid} {f}\n    nestbox {a[:400]!r}\n    dovecot {b[:400]!r}")
    for key in SEARCHES:
        found = []
        for c in (nb, dc):
            typ, d = c.uid("SEARCH", key)
            found.append(set(d[0].split()) if typ == "OK" and d[0] is not None else None)
        a, b = found
        if a == b:
            print(f"SEARCH {key}: the same ({len(a or ())})")
        else:
            only_a = sorted(a - b, key=int) if a is not None and b is not None else a
            only_b = sorted(b - a, key=int) if a is not None and b is not None else b
            print(f"SEARCH {key}: nestbox only {only_a}, dovecot only {only_b}")
    compare_orders(nb, dc)


SORTS = ["(SUBJECT)", "(FROM)", "(TO)", "(CC)", "(DATE)", "(SIZE)", "(ARRIVAL)",
         "(DISPLAYFROM)", "(DISPLAYTO)"]


def compare_orders(nb, dc):
    """SORT per criterion and THREAD per algorithm: the same, or how much differs."""
    for crit in SORTS:
        got = []
        for c in (nb, dc):
            typ, d = c.uid("SORT", crit, "UTF-8", "ALL")
            got.append(d[0].split() if typ == "OK" and d[0] is not None else None)
        a, b = got
        if a == b:
            print(f"SORT {crit}: the same")
        elif a is None or b is None:
            print(f"SORT {crit}: nestbox {a is not None}, dovecot {b is not None}")
        else:
            moved = sum(1 for x, y in zip(a, b) if x != y)
            first = next(k for k in range(min(len(a), len(b))) if a[k] != b[k])
            print(f"SORT {crit}: {moved} places differ, the first at {first}: "
                  f"nestbox {a[first:first + 3]}, dovecot {b[first:first + 3]}")
    for alg in ("ORDEREDSUBJECT", "REFERENCES"):
        got = []
        for c in (nb, dc):
            typ, d = c.uid("THREAD", alg, "UTF-8", "ALL")
            got.append(d[0] if typ == "OK" else None)
        a, b = got
        if a == b:
            print(f"THREAD {alg}: the same")
        else:
            sa, sb = set(top_threads(a or b"")), set(top_threads(b or b""))
            print(f"THREAD {alg}: {len(sa - sb)} of {len(sa)} threads differ: "
                  f"nestbox {sorted(sa - sb)[:3]}, dovecot {sorted(sb - sa)[:3]}")


def top_threads(b):
    """The top-level parenthesised groups of a THREAD answer."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(b):
        if ch == ord("("):
            if depth == 0:
                start = i
            depth += 1
        elif ch == ord(")"):
            depth -= 1
            if depth == 0:
                out.append(b[start:i + 1])
    return out


if __name__ == "__main__":
    main()
