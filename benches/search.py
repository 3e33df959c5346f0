"""SEARCH latency on one big mailbox: an independent client (Python stdlib only).

    python3 benches/search.py HOST PORT USER PASSWORD

LOGIN, SELECT INBOX, then UID SEARCH with each key (BODY, TEXT, SUBJECT, FROM) and each
word of WORDS, one at a time; the time of one command is from its write to its tagged
OK. Prints per key the p50 and max over the words, and the hits per word.
"""

import statistics
import sys

from sort_thread import Client

WORDS = ["money", "linux", "release", "unsubscribe", "python", "ximian", "gnome",
         "perl", "razor", "spamassassin", "debian", "kernel", "zzqxnothing", "mailing",
         "bug", "exmh", "sequence", "update", "free", "offer"]
KEYS = ["BODY", "TEXT", "SUBJECT", "FROM"]


def main():
    host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    c = Client(host, port)
    c.cmd(b"LOGIN %s %s" % (user.encode(), pw.encode()))
    c.cmd(b"SELECT INBOX")
    for key in KEYS:
        times, hits = [], []
        for w in WORDS:
            t, _ = c.cmd(b"UID SEARCH %s %s" % (key.encode(), w.encode()))
            times.append(t * 1000)
            found = [l for l in c.untagged if l.startswith(b"* SEARCH")]
            hits.append(len(found[0].split()) - 2 if found else 0)
        print("search %s p50_ms=%.1f max_ms=%.1f hits=%s" % (
            key, statistics.median(times), max(times), ",".join(map(str, hits))))


main()
