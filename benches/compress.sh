#!/usr/bin/env bash
# IMAP COMPRESS=DEFLATE (RFC 4978): bytes on the wire for a full sync of the corpus with
# and without compression, and the server memory per idle logged-in connection with and
# without it.
#
#   benches/compress.sh [CORPUS_DIR]
#
# Imports the corpus (one pass, about 12 MB) into user `bench` before the server starts,
# then with Python (socket + zlib, raw DEFLATE) as the client:
# * sync: LOGIN, [COMPRESS DEFLATE,] SELECT INBOX, UID FETCH 1:* (UID FLAGS INTERNALDATE
#   RFC822.SIZE BODY.PEEK[]), LOGOUT; bytes read and written on the socket, and seconds;
# * idle: CONNS connections each LOGIN + SELECT Drafts (empty; then COMPRESS DEFLATE and a NOOP
#   under it), the server's VmRSS before and 2 s and 14 s after, divided by CONNS (after
#   5 s without output a compressed connection drops its deflater); plain first, then
#   compressed, each on a fresh server.
#
# Knobs (environment): CONNS=200 NB_BIN=path (use this nestbox binary instead of building
# the release one).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
CONNS=${CONNS:-200}
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
CORPUS=$(cd "$CORPUS" && pwd)
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
if [ -n "${NB_BIN:-}" ]; then
    NB=$NB_BIN
else
    echo "== building (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet)
    NB=${CARGO_TARGET_DIR:-$ROOT/target}/release/nestbox
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-compress.XXXXXX")
SERVER_PID=
cleanup() { nb_stop; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

nb_config "$TMP/config.ron" "$TMP/data"
nb_gen_mbox "$CORPUS" "$TMP/in.mbox" 12
printf 'pw\n' | "$NB" --config "$TMP/config.ron" user add bench --password-stdin >/dev/null
"$NB" --config "$TMP/config.ron" import --user bench "$TMP/in.mbox" >/dev/null 2>&1

run() {
    nb_serve "$TMP/config.ron" "$TMP"
    python3 - "$A_IMAP" "$SERVER_PID" "$1" "$CONNS" <<'PY'
import socket, sys, time, zlib
host, port = sys.argv[1].rsplit(":", 1)
pid, what, conns = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

class Conn:
    def __init__(self):
        self.s = socket.create_connection((host, int(port)))
        self.buf, self.d, self.i = b"", None, None
        self.wire_in = self.wire_out = 0
        self.line()
    def send(self, b):
        if self.d:
            b = self.d.compress(b) + self.d.flush(zlib.Z_SYNC_FLUSH)
        self.wire_out += len(b)
        self.s.sendall(b)
    def fill(self):
        raw = self.s.recv(1 << 16)
        if not raw:
            raise EOFError
        self.wire_in += len(raw)
        self.buf += self.i.decompress(raw) if self.i else raw
    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l
    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        self.buf = self.buf[n:]
    def cmd(self, tag, text):
        self.send(b"%s %s\r\n" % (tag, text))
        while True:
            l = self.line()
            if l.endswith(b"}") and b"{" in l:
                self.take(int(l[l.rindex(b"{") + 1:-1]))
                continue
            if l.startswith(tag + b" "):
                assert l.split()[1] == b"OK", l
                return
    def compress(self):
        self.cmd(b"z", b"COMPRESS DEFLATE")
        self.d, self.i = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)

def rss():
    for l in open("/proc/%d/status" % pid):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])

if what.startswith("sync"):
    c = Conn()
    t0 = time.time()
    c.cmd(b"a", b"LOGIN bench pw")
    if what == "sync-deflate":
        c.compress()
    c.cmd(b"b", b"SELECT INBOX")
    c.cmd(b"c", b"UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    c.cmd(b"d", b"LOGOUT")
    print("%-12s in %10d out %6d  %.2f s" % (what, c.wire_in, c.wire_out, time.time() - t0))
else:
    time.sleep(1)
    before = rss()
    keep = []
    for n in range(conns):
        c = Conn()
        c.cmd(b"a", b"LOGIN bench pw")
        # An empty mailbox: a selected INBOX of 3,000 messages costs ~120 KiB itself.
        c.cmd(b"b", b"SELECT Drafts")
        if what == "idle-deflate":
            c.compress()
            c.cmd(b"c", b"NOOP")
        keep.append(c)
    # Right after the last command, then once the deflaters were dropped (5 s without
    # output, src/net/deflate.rs SHED_AFTER) and malloc_trim ran (every 5 s).
    for wait in (2, 12):
        time.sleep(wait)
        after = rss()
        print("%-12s %d connections, %2d s idle: RSS %d -> %d KiB, %.1f KiB each"
              % (what, conns, wait if wait == 2 else 14, before, after, (after - before) / conns))
PY
    nb_stop
}

echo "== corpus $CORPUS, $CONNS idle connections" >&2
for what in sync-plain sync-deflate idle-plain idle-deflate; do
    run "$what"
done
