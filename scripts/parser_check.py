#!/usr/bin/env python3
"""The Python side of scripts/parser-check.sh: fills the mailbox and judges what the
independent client parsers (scripts/parser_check.cjs: imapflow; scripts/parser_check.go:
go-imap v1) read from nestbox's answers.

    parser_check.py prepare PORT USER PASSWORD CORPUS_DIR OUT_DIR
        APPENDs every CORPUS_DIR/*.eml (sorted; LF made CRLF) to INBOX, so UID n is the
        n-th file, and writes OUT_DIR/expected.jsonl (what Python's `email` reads from each
        file) and OUT_DIR/sample.json (the part sections of 300 messages to fetch).
    parser_check.py compare OUT_DIR NAME...
        Reads OUT_DIR/NAME.jsonl (one line per message) and OUT_DIR/NAME-session.jsonl
        from each parser, prints the summary (messages checked, failures by kind) and
        writes the failures one per line to OUT_DIR/failures.txt.
"""
import base64
import email
import email.header
import email.policy
import email.utils
import hashlib
import imaplib
import json
import os
import re
import sys


def crlf(raw):
    return re.sub(rb"\r?\n", b"\r\n", raw)


def tree(part):
    """Python's view of the MIME tree, in the shape the parser scripts print:
    {"t": "type/subtype", "kids": [...]}; message/rfc822 has its message as one kid."""
    node = {"t": part.get_content_type().lower()}
    # Python also splits message/delivery-status into header blocks; in IMAP only
    # multipart/* and message/rfc822 (and message/global) have parts (RFC 9051 7.5.2)
    if part.is_multipart() and (node["t"].startswith("multipart/")
                                or node["t"] in ("message/rfc822", "message/global")):
        kids = part.get_payload()
        node["kids"] = [tree(k) for k in kids if isinstance(k, email.message.Message)]
    return node


def paths(node, path=None, out=None):
    """(IMAP section, node) for every leaf and message/rfc822 part (RFC 9051 6.4.5):
    a non-multipart message is part 1; a message/rfc822's body is n.1 unless it is
    multipart, whose children are then n.1, n.2, ..."""
    out = [] if out is None else out
    if path is None:  # the message itself
        if node["t"].startswith("multipart/"):
            for i, k in enumerate(node.get("kids") or [], 1):
                paths(k, [i], out)
        else:
            paths(node, [1], out)
        return out
    if node["t"].startswith("multipart/"):
        for i, k in enumerate(node.get("kids") or [], 1):
            paths(k, path + [i], out)
        return out
    out.append((".".join(map(str, path)), node))
    if node["t"] == "message/rfc822" and node.get("kids"):
        inner = node["kids"][0]
        if inner["t"].startswith("multipart/"):
            for i, k in enumerate(inner.get("kids") or [], 1):
                paths(k, path + [i], out)
        else:
            paths(inner, path + [1], out)
    return out


def addr_key(a):
    """An address compared loosely: quoting of the local part aside (the ENVELOPE's
    addr-mailbox is the local part without its quotes, RFC 3501 7.4.2), and bytes that
    are not ASCII aside (the parsers and Python show undecodable 8-bit apart)."""
    return re.sub(r"[^\x21-\x7e]", "", a.replace('"', "")).lower()


def flat(node):
    """The pre-order (type/subtype) list of a tree."""
    out = [node["t"]]
    for k in node.get("kids") or []:
        out += flat(k)
    return out


def decode(s):
    """RFC 2047 decoding, as loose as Python's; None stays None."""
    if s is None:
        return None
    try:
        return str(email.header.make_header(email.header.decode_header(str(s))))
    except Exception:
        return str(s)


def header_fields(crlf_bytes, names):
    """The header lines (with their continuation lines) whose field name is in names, as
    BODY[HEADER.FIELDS (...)] returns them, with the closing empty line."""
    head = crlf_bytes.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    out, keep = b"", False
    for line in re.findall(rb"[^\n]*\n", head):
        if line[:1] in (b" ", b"\t"):
            if keep:
                out += line
            continue
        keep = line.split(b":", 1)[0].strip().lower() in names
        if keep:
            out += line
    return out + b"\r\n"


def expected(name, raw):
    data = crlf(raw)
    msg = email.message_from_bytes(data)
    froms = [a.lower() for _, a in email.utils.getaddresses(msg.get_all("From") or []) if a]
    t = tree(msg)
    body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
    first = None  # BINARY[1]: part 1 decoded (Python's reading), when part 1 is a leaf
    for path, node in paths(t):
        if path == "1" and not node["t"].startswith("message/"):
            p = msg if not msg.is_multipart() else msg.get_payload(0)
            cte = (p.get("Content-Transfer-Encoding") or "7bit").strip().lower()
            try:
                first = p.get_payload(decode=True)
                if cte == "base64":
                    first = base64_lines(p.get_payload(decode=False))
            except Exception:
                first = None
            first = (hashlib.sha256(norm_text(first)).hexdigest(), cte) if first is not None else None
    return {
        "file": name, "size": len(data), "sha": hashlib.sha256(data).hexdigest(),
        "subject": decode(msg.get("Subject")), "from": froms,
        "message_id": msg.get("Message-ID"), "tree": t, "types": flat(t),
        "text_sha": hashlib.sha256(body).hexdigest() if not msg.is_multipart() else None,
        "hdr_sha": hashlib.sha256(header_fields(data, {b"from", b"subject"})).hexdigest(),
        "bin1": first,
    }


def base64_lines(text):
    """A base64 body as RFC 2045 section 6.8 reads it: up to the padding; and text
    appended to the data (a list footer after an empty line, or lines with characters
    outside the alphabet) is not base64. Python's email package decodes such text too."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    keep, started = [], False
    for line in text.splitlines():
        if started and (not line.strip() or re.search(r"[^A-Za-z0-9+/=\s]", line)):
            break
        started = started or bool(re.search(r"[A-Za-z0-9+/]", line))
        keep.append(re.sub(r"[^A-Za-z0-9+/=]", "", line))
    data = "".join(keep).split("=", 1)[0]
    rest = len(data) % 4  # a lone digit holds no byte; 2 or 3 want padding
    data = data[:-1] if rest == 1 else data + "=" * ((4 - rest) % 4)
    return base64.b64decode(data)


def norm_text(b):
    """Decoded content compared loosely: line ends and trailing white space aside."""
    return b"\n".join(line.rstrip() for line in b.replace(b"\r\n", b"\n").split(b"\n")).rstrip()


def prepare(port, user, password, corpus, out):
    files = sorted(f for f in os.listdir(corpus) if f.endswith(".eml"))
    c = imaplib.IMAP4("127.0.0.1", int(port))
    c.login(user, password)
    exp, refused = [], 0
    for f in files:
        raw = open(os.path.join(corpus, f), "rb").read()
        typ, d = c.append("INBOX", None, None, crlf(raw))
        if typ != "OK":
            refused += 1
            print("APPEND refused:", f, d)
        exp.append(expected(f, raw))
    c.logout()
    with open(os.path.join(out, "expected.jsonl"), "w") as fh:
        for uid, e in enumerate(exp, 1):
            fh.write(json.dumps(dict(e, uid=uid)) + "\n")
    # The part-size sample: the multipart messages (and those with a message/rfc822)
    # first, then every n-th of the others, 300 in all.
    multi = [u for u, e in enumerate(exp, 1) if len(e["types"]) > 1]
    single = [u for u, e in enumerate(exp, 1) if len(e["types"]) == 1]
    pick = multi[:200]
    pick += single[::max(1, len(single) // (300 - len(pick)))][:300 - len(pick)]
    sample = {str(u): [p for p, _ in paths(exp[u - 1]["tree"])] for u in sorted(pick)}
    json.dump(sample, open(os.path.join(out, "sample.json"), "w"))
    print(f"APPENDed {len(files) - refused} of {len(files)} messages; part sample {len(sample)}")


def loose(s):
    return re.sub(r"\s+", " ", decode(s) or "").strip().casefold()


def alnum(s):
    return re.sub(r"[^0-9a-z]", "", loose(s))


def compare(out, names):
    exp = {}
    for line in open(os.path.join(out, "expected.jsonl")):
        e = json.loads(line)
        exp[e["uid"]] = e
    fails = []  # (parser, kind, uid, detail)
    checked = {}
    notes = {}
    for name in names:
        got = {}
        path = os.path.join(out, name + ".jsonl")
        for line in open(path) if os.path.exists(path) else []:
            r = json.loads(line)
            if r.get("uid") is None:  # a connection-level error or log line
                fails.append((name, r.get("kind", "error"), None, r.get("err")))
                continue
            got.setdefault(r["uid"], {}).update(r)
        checked[name] = len(got)

        def fail(kind, uid, detail):
            fails.append((name, kind, uid, f"{exp[uid]['file'] if uid in exp else '?'}: {detail}"))

        def note(kind):
            notes[(name, kind)] = notes.get((name, kind), 0) + 1
        for uid, e in exp.items():
            r = got.get(uid)
            if r is None:
                fail("missing-message", uid, "no FETCH data")
                continue
            for err in r.get("errs", []):
                fail(err.split(":")[0] if err.startswith("compress-stall") else "parser-error", uid, err)
            if r.get("size") != len_of(r, "body"):
                fail("size-vs-body", uid, f"RFC822.SIZE {r.get('size')} len(BODY[]) {len_of(r, 'body')}")
            if r.get("body_sha") != e["sha"]:
                fail("body-differs", uid, f"len(BODY[]) {r.get('body_len')}, appended {e['size']}")
            if not r.get("internaldate"):
                fail("internaldate", uid, repr(r.get("internaldate")))
            if loose(r.get("subject")) != loose(e["subject"]):
                if alnum(r.get("subject")) == alnum(e["subject"]):
                    note("subject equal only in ASCII letters and digits")
                elif "=?" in (e["subject"] or "") and "=?" not in (r.get("subject") or ""):
                    note("subject: an encoded word Python cannot decode, the parser can")
                else:
                    fail("envelope-subject", uid, f"{r.get('subject')!r} / python {e['subject']!r}")
            rf = [a.lower() for a in r.get("from") or [] if a and a != "@"]
            if rf != e["from"]:
                if set(rf) == set(e["from"]):
                    note("from addresses equal as sets")
                elif [addr_key(a) for a in rf] == [addr_key(a) for a in e["from"]]:
                    note("from equal but for local-part quotes or 8-bit bytes")
                else:
                    fail("envelope-from", uid, f"{rf} / python {e['from']}")
            rid = re.sub(r"\s+", "", r.get("message_id") or "")
            eid = re.sub(r"\s+", "", e["message_id"] or "")
            if rid != eid:
                fail("envelope-message-id", uid, f"{r.get('message_id')!r} / python {e['message_id']!r}")
            if r.get("tree") is None:
                fail("bodystructure-missing", uid, "no BODYSTRUCTURE")
                continue
            got_types = flat(r["tree"])
            if e["types"][0].startswith("multipart/") and not e["tree"].get("kids") \
                    and got_types[:1] == e["types"] and len(got_types) == 2 \
                    and r["tree"]["kids"][0].get("size") == 0:
                # no boundary line found: body-type-mpart needs 1*body, so the server
                # reports one empty part (as Dovecot does); Python reports none
                note("multipart without any part: one empty part reported")
                continue
            if len(got_types) != len(e["types"]):
                fail("bodystructure-part-count", uid, f"{got_types} / python {e['types']}")
            elif got_types != e["types"]:
                fail("bodystructure-types", uid, f"{got_types} / python {e['types']}")
            gp = dict(paths(r["tree"]))
            if "1" in gp and "body1_len" in r and gp["1"].get("size") is not None \
                    and not gp["1"]["t"].startswith("multipart/"):
                if gp["1"]["size"] != r["body1_len"]:
                    fail("part-size", uid, f"part 1 size {gp['1']['size']} len(BODY[1]) {r['body1_len']}")
            if e["text_sha"] and r.get("body1_sha") and r["body1_sha"] != e["text_sha"]:
                fail("body1-differs", uid, f"BODY[1] of a single-part message is not its text ({r.get('body1_len')})")
            if r.get("hdr_sha") != e["hdr_sha"]:
                fail("header-fields-differ", uid, f"BODY[HEADER.FIELDS (From Subject)] {r.get('hdr')!r}")
            if "bin1_sha" in r and e["bin1"]:
                sha, cte = e["bin1"]
                if r["bin1_sha"] is None:
                    note(f"BINARY[1] refused ({r.get('bin1_err')}) cte {cte}")
                elif r["bin1_sha"] != sha:
                    fail("binary1-differs", uid, f"cte {cte}: BINARY[1] {r.get('bin1_len')} bytes differs from Python's decoding")
            for sec, n in (r.get("parts") or {}).items():
                node = gp.get(sec)
                if node is None:
                    continue
                if node.get("size") is not None and node["size"] != n:
                    fail("part-size", uid, f"part {sec} ({node['t']}) size {node['size']} len(BODY[{sec}]) {n}")
                else:
                    note("sampled part sizes equal")
    # The mailbox sessions.
    for name in names:
        path = os.path.join(out, name + "-session.jsonl")
        steps = [json.loads(line) for line in open(path)] if os.path.exists(path) else []
        if not steps:
            fails.append((name, "session-missing", None, "no session output"))
        for s in steps:
            if not s.get("ok"):
                fails.append((name, "session-" + s["step"], None, s.get("err")))
        print(f"{name} session: " + ", ".join(f"{s['step']} {'ok' if s.get('ok') else 'FAILED'}"
                                               + (f" ({s['info']})" if s.get("info") else "")
                                               for s in steps))
    with open(os.path.join(out, "failures.txt"), "w") as fh:
        for f in fails:
            fh.write(" | ".join(str(x) for x in f) + "\n")
    for name in names:
        kinds = {}
        for f in fails:
            if f[0] == name:
                kinds.setdefault(f[1], set()).add(f[2])
        print(f"{name}: {checked[name]} of {len(exp)} messages read; "
              f"{sum(1 for f in fails if f[0] == name)} failures"
              + "".join(f"\n  {k}: {len(v)} messages" if v != {None} else f"\n  {k}"
                        for k, v in sorted(kinds.items())))
        for (n, k), c in sorted(notes.items()):
            if n == name:
                print(f"  (allowed) {k}: {c}")
    return 1 if fails else 0


def len_of(r, key):
    return r.get(key + "_len")


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(*sys.argv[2:7])
    else:
        sys.exit(compare(sys.argv[2], sys.argv[3:]))
