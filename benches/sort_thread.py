"""SORT and THREAD latency on one big mailbox: an independent client (Python stdlib only).

    python3 benches/sort_thread.py HOST PORT USER PASSWORD [ROUNDS]

With COMMAND_SET=fetch in the environment it times a whole-mailbox FETCH instead: the
header fields a list view asks for, and every message whole (a first sync).

Per session: LOGIN, SELECT INBOX, then each command of COMMANDS ROUNDS times (default 5),
one at a time; the time of one command is from its write to its tagged OK, the whole
answer read. Two sessions, one after the other, so the second shows what a client that
logs in again sees (a session keeps the header fields it read; the server keeps its
decompressed packs for a while). Prints one line per session and command:
`session S cmd NAME first_ms=.. median_rest_ms=.. max_rest_ms=.. answer_bytes=..`.
"""

import socket
import statistics
import sys
import time

import os
import re

COMMAND_SETS = {
    "sort": [
        ("sort_reverse_date", b"UID SORT (REVERSE DATE) UTF-8 ALL"),
        ("sort_subject", b"UID SORT (SUBJECT) UTF-8 ALL"),
        ("thread_references", b"UID THREAD REFERENCES UTF-8 ALL"),
        ("thread_orderedsubject", b"UID THREAD ORDEREDSUBJECT UTF-8 ALL"),
    ],
    "fetch": [
        ("fetch_header_fields", b"UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS "
         b"(From To Cc Subject Date Message-ID References In-Reply-To Content-Type)])"),
        ("fetch_whole", b"UID FETCH 1:* BODY.PEEK[]"),
        ("fetch_bodystructure", b"UID FETCH 1:* (BODYSTRUCTURE)"),
    ],
}
COMMANDS = COMMAND_SETS[os.environ.get("COMMAND_SET", "sort")]
LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


class Client:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=600)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")
        self.n = 0
        if not self.f.readline().startswith(b"* OK"):
            raise SystemExit("no greeting")

    def cmd(self, text):
        """Sends one command, reads to its tagged reply; returns (seconds, bytes read).
        The untagged lines are left in `self.untagged`."""
        self.n += 1
        tag = b"t%d" % self.n
        t0 = time.perf_counter()
        self.sock.sendall(tag + b" " + text + b"\r\n")
        got = 0
        self.untagged = []
        while True:
            line = self.f.readline()
            if not line:
                raise SystemExit("connection closed during %r" % text)
            got += len(line)
            m = LITERAL.search(line)
            if m:
                # A literal's octets are read whole: a line in them is not a reply.
                data = self.f.read(int(m.group(1)))
                got += len(data)
                continue
            if not line.startswith(tag + b" "):
                self.untagged.append(line)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise SystemExit("%r: %r" % (text, line))
                return time.perf_counter() - t0, got


def quote(s):
    return b'"' + s.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def main():
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    for session in (1, 2):
        c = Client(host, port)
        c.cmd(b"LOGIN " + quote(user) + b" " + quote(password))
        secs, _ = c.cmd(b"SELECT INBOX")
        print("session %d cmd select ms=%.1f" % (session, secs * 1000))
        for name, text in COMMANDS:
            times, size = [], 0
            for _ in range(rounds):
                secs, size = c.cmd(text)
                times.append(secs * 1000)
            rest = times[1:] or times
            print(
                "session %d cmd %s first_ms=%.1f median_rest_ms=%.1f max_rest_ms=%.1f "
                "answer_bytes=%d" % (session, name, times[0], statistics.median(rest),
                                     max(rest), size),
                flush=True,
            )
        c.cmd(b"LOGOUT")


if __name__ == "__main__":
    main()
