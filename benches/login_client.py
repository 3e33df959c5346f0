"""IMAP LOGIN+LOGOUT pairs per second: an independent client (Python stdlib only).

    python3 benches/login_client.py HOST PORT USER PASSWORD [SECONDS] [CONNS]

CONNS threads (default 4) each loop for SECONDS (default 10): connect, read the greeting,
`a LOGIN user pass`, `b LOGOUT`, read to the tagged OK, close. A pair counts only if LOGIN
and LOGOUT both answered OK. Prints `pairs_per_s`, `pairs`, `errors`, and the p50/p99
latency of one whole pair in ms.
"""

import socket
import sys
import threading
import time


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pair(host, port, user, password):
    with socket.create_connection((host, port), timeout=20) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        if not f.readline().startswith(b"* OK"):
            return False
        s.sendall(("a LOGIN %s %s\r\n" % (quote(user), quote(password))).encode())
        while True:
            line = f.readline()
            if not line:
                return False
            if line.startswith(b"a "):
                if not line.startswith(b"a OK"):
                    return False
                break
        s.sendall(b"b LOGOUT\r\n")
        while True:
            line = f.readline()
            if not line:
                return False
            if line.startswith(b"b "):
                return line.startswith(b"b OK")


def main():
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 10.0
    conns = int(sys.argv[6]) if len(sys.argv) > 6 else 4
    lat, errors = [], [0]
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker():
        mine, bad = [], 0
        while time.monotonic() < end:
            t = time.monotonic()
            try:
                ok = pair(host, port, user, password)
            except OSError:
                ok = False
            if ok:
                mine.append(time.monotonic() - t)
            else:
                bad += 1
        with lock:
            lat.extend(mine)
            errors[0] += bad

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - start
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else 0.0

    print("pairs_per_s: %.1f" % (len(lat) / took))
    print("pairs: %d" % len(lat))
    print("errors: %d" % errors[0])
    print("latency_p50_ms: %.2f" % pct(0.50))
    print("latency_p99_ms: %.2f" % pct(0.99))


main()
