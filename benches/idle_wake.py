"""New mail reaching clients in IDLE: an independent client (Python stdlib only).

    python3 benches/idle_wake.py HOST IMAP_PORT LMTP_PORT USER PASSWORD SESSIONS MESSAGES

Opens SESSIONS connections, each LOGIN, SELECT INBOX, IDLE; then delivers MESSAGES
messages by LMTP one at a time, and for each waits until every session has had its
`* n EXISTS`. Prints the p50 and max of that time, from the LMTP DATA to the last
session's EXISTS.
"""

import select
import socket
import statistics
import sys
import time


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise SystemExit("server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line


def idle_session(host, port, user, pw):
    c = Conn(host, port)
    c.line()
    c.sock.sendall(b"a LOGIN %s %s\r\nb SELECT INBOX\r\nc IDLE\r\n" % (user, pw))
    while True:
        line = c.line()
        if line.startswith((b"a NO", b"a BAD", b"b NO", b"b BAD", b"c BAD")):
            raise SystemExit("refused: %r" % line)
        if line.startswith(b"+"):
            return c


def deliver(host, port, rcpt, i):
    c = Conn(host, port)
    c.line()

    def cmd(text):
        c.sock.sendall(text + b"\r\n")
        while True:
            line = c.line()
            if line[3:4] != b"-":
                if not line.startswith((b"2", b"3")):
                    raise SystemExit("LMTP refused: %r" % line)
                return

    for text in (b"LHLO bench", b"MAIL FROM:<bench@example.org>", b"RCPT TO:<%s>" % rcpt,
                 b"DATA"):
        cmd(text)
    cmd(b"Subject: wake %d\r\n\r\nNew mail %d.\r\n." % (i, i))
    c.sock.sendall(b"QUIT\r\n")
    c.sock.close()


def main():
    host, iport, lport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    user, pw = sys.argv[4].encode(), sys.argv[5].encode()
    sessions, messages = int(sys.argv[6]), int(sys.argv[7])
    conns = [idle_session(host, iport, user, pw) for _ in range(sessions)]
    times = []
    for i in range(messages):
        t0 = time.monotonic()
        deliver(host, lport, user, i)
        waiting = list(conns)
        while waiting:
            still = []
            for c in waiting:
                if b"EXISTS\r\n" in c.buf:
                    c.buf = b""
                else:
                    still.append(c)
            waiting = still
            if not waiting:
                break
            ready, _, _ = select.select([c.sock for c in waiting], [], [], 30)
            if not ready:
                raise SystemExit("no EXISTS within 30 s")
            for c in waiting:
                if c.sock in ready:
                    c.buf += c.sock.recv(65536)
        times.append((time.monotonic() - t0) * 1000)
    print("idle_wake sessions=%d p50_ms=%.1f max_ms=%.1f" % (
        sessions, statistics.median(times), max(times)))


main()
