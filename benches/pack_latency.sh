#!/usr/bin/env bash
# IMAP latency of a FETCH/STORE mix while the store packs and compacts (issue #16).
#
#   benches/pack_latency.sh [CORPUS_DIR]
#
# Fills user bench's INBOX with a generated mbox of about SIZE_MB MiB (the corpus
# repeated, every copy unique: `nestbox import`, no server running), starts the release
# server and lets it settle (packed, compacted). Then one IMAP client (loadgen
# `fetchstore`) runs a FETCH/STORE mix on random messages for ROUNDS x 30 s, logging every
# command, in rounds of 30 s:
#   0-18 s   the FETCH/STORE mix;
#      2 s   `nestbox compact` through the control socket, while the mix goes on;
#     13 s   an LMTP burst of BURST new messages (2 connections): the packer packs them,
#            at level 9 while more than 2 MiB is loose (the rest waits: the STOREs keep
#            the writer busy, and packing waits for it to be quiet);
#   18-24 s  FETCHes only: the writer is quiet, so the packer packs the rest (after 2 s
#            of quiet, level 15) and then compacts (`pack::settle`, after 3 s of quiet
#            and, since the fix, once no read has run for 1 s);
#   24-30 s  nothing (a pause of the user's).
# The server logs each pack (`store: packed ...`, at debug level) and each compaction
# (`store: compacted ... in N ms`); the report gives p50/p99/max per command kind over the
# whole run and over the commands that overlapped a packing or a compaction, and lists
# each compaction with the slowest command during it.
#
# Knobs: SIZE_MB=36 ROUNDS=3 BURST=1000 FREE=0.05 (store.compact_when_free: the default
# 0.25 is rarely reached by one burst into a store of this size, and the run is to cover
# the automatic compaction), NB_BIN LOAD_BIN (use these binaries), KEEP=dir (keep the
# logs there).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
SIZE_MB=${SIZE_MB:-36}
ROUNDS=${ROUNDS:-3}
BURST=${BURST:-1000}
FREE=${FREE:-0.05}
PERIOD=30
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
nb_build "$ROOT" || exit 2

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-packlat.XXXXXX")
SERVER_PID= CLIENT=
cleanup() {
    [ -z "$CLIENT" ] || kill "$CLIENT" 2>/dev/null || true
    nb_stop
    if [ -n "${KEEP:-}" ]; then
        mkdir -p "$KEEP"
        cp "$TMP"/*.log "$TMP"/serve.err "$TMP"/*.out "$KEEP"/ 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
CFG=$TMP/config.ron
cat > "$CFG" <<EOF
(data_dir: "$TMP/data", hostname: "localhost",
 imap: (listen: ["127.0.0.1:0"], tls_listen: []),
 pop3: (listen: [], tls_listen: []),
 managesieve: (listen: []),
 lmtp: (listen: ["127.0.0.1:0"], unix_socket: None),
 store: (compact_when_free: $FREE))
EOF

echo "== filling: ~$SIZE_MB MiB mbox, import" >&2
printf 'pw\n' | "$NB" --config "$CFG" user add bench --password-stdin >/dev/null
nb_gen_mbox "$CORPUS" "$TMP/fill.mbox" "$SIZE_MB"
"$NB" --config "$CFG" import --user bench "$TMP/fill.mbox" > "$TMP/import.out"
rm -f "$TMP/fill.mbox"

# The bursts: BURST corpus messages per round, each round's copies unique (a header of
# their own), so content dedup stores every one.
python3 - "$CORPUS" "$TMP" "$ROUNDS" "$BURST" <<'PY'
import os, sys
corpus, tmp, rounds, burst = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
names = sorted(os.listdir(corpus))
for r in range(rounds):
    d = os.path.join(tmp, f"burst{r}")
    os.mkdir(d)
    for k in range(burst):
        name = names[k % len(names)]
        raw = open(os.path.join(corpus, name), 'rb').read()
        with open(os.path.join(d, f"{k:05d}"), 'wb') as f:
            f.write(b'X-Bench-Burst: %d.%d\n' % (r, k) + raw)
PY

RUST_LOG=nestbox::store::pack=debug nb_serve "$CFG" "$TMP" || exit 1
nb_settle "$CFG" 300
FILE0=$(stat -c %s "$TMP/data/nestbox.redb")
MSGS=$("$NB" --config "$CFG" stats | awk '$1 == "bench" { print $2; exit }')
echo "== store: $FILE0 bytes, ${MSGS:-?} messages; load: $(uptime | sed 's/.*load average: //')" >&2

DURATION=$((ROUNDS * PERIOD))
T0=$(date +%s.%N)
"$LOAD" fetchstore --addr "$A_IMAP" --duration "$DURATION" --period "$PERIOD" \
    --fetch-only-from 18 --pause-from 24 --log "$TMP/latency.log" > "$TMP/client.out" &
CLIENT=$!
# at T0 + OFFSET seconds
at() {
    local wait
    wait=$(awk -v t0="$T0" -v off="$1" -v now="$(date +%s.%N)" 'BEGIN { w = t0 + off - now; print (w > 0 ? w : 0) }')
    sleep "$wait"
}
: > "$TMP/bursts.out"
: > "$TMP/compact.out"
for r in $(seq 0 $((ROUNDS - 1))); do
    base=$((r * PERIOD))
    at $((base + 2))
    echo "== round $r: nestbox compact at $(date -u +%T)" >&2
    { "$NB" --config "$CFG" compact 2>&1 || true; } >> "$TMP/compact.out"
    at $((base + 13))
    echo "== round $r: burst of $BURST at $(date -u +%T)" >&2
    "$LOAD" lmtp --addr "$A_LMTP" --conns 2 --messages $((BURST / 2)) --rcpts bench \
        --corpus "$TMP/burst$r" >> "$TMP/bursts.out"
done
wait "$CLIENT"
CLIENT=
LOAD_AFTER=$(uptime | sed 's/.*load average: //')
FILE1=$(stat -c %s "$TMP/data/nestbox.redb")
DISK1=$("$NB" --config "$CFG" stats | grep '^disk: ')
grep -q '^errors: 0' "$TMP/client.out" || { echo "client errors:" >&2; cat "$TMP/client.out" >&2; exit 1; }
grep '^errors: ' "$TMP/bursts.out" | grep -qv '^errors: 0' && {
    echo "delivery errors:" >&2; cat "$TMP/bursts.out" >&2; exit 1; }

echo "store: $SIZE_MB MiB mbox imported (${MSGS:-?} messages), file $FILE0 bytes before the run, $FILE1 after"
echo "after the run: $DISK1"
echo "rounds: $ROUNDS x ${PERIOD}s, bursts of $BURST messages; nestbox compact said: $(sort "$TMP/compact.out" | uniq -c | tr -s ' \n' ' ')"
echo "load average after the run: $LOAD_AFTER"
grep '^deliver\|^cmd deliver' "$TMP/bursts.out" | sed 's/^/burst /'
python3 - "$TMP/latency.log" "$TMP/serve.err" "$T0" "$DURATION" <<'PY'
import re, sys
from datetime import datetime
lat_path, log_path, t0 = sys.argv[1], sys.argv[2], float(sys.argv[3]) * 1000
t_end = t0 + float(sys.argv[4]) * 1000

cmds = []  # (start_ms, end_ms, latency_ms, name)
for line in open(lat_path):
    s, us, name = line.split()
    s, ms = float(s), int(us) / 1000
    cmds.append((s, s + ms, ms, name))

windows = {'packing': [], 'compaction': []}  # (start_ms, end_ms, text)
pat = re.compile(r'^\[(\S+) +\w+ +\S+\] (store: (packed|compacted) .* in (\d+) ms)')
for line in open(log_path):
    m = pat.match(line)
    if not m:
        continue
    end = datetime.fromisoformat(m.group(1).replace('Z', '+00:00')).timestamp() * 1000
    kind = 'packing' if m.group(3) == 'packed' else 'compaction'
    windows[kind].append((end - int(m.group(4)), end, m.group(2)))
for k in windows:
    windows[k] = [w for w in windows[k] if w[1] > t0 and w[0] < t_end]

def pct(v, p):
    v = sorted(v)
    return v[round((len(v) - 1) * p)] if v else 0.0

def row(label, v):
    print(f"{label:<26} {len(v):>7} {pct(v, .5):>8.2f} {pct(v, .99):>8.2f} {max(v, default=0):>9.2f}")

def during(ws):
    return [c for c in cmds if any(c[0] < w[1] and c[1] > w[0] for w in ws)]

print(f"{'commands':<26} {'n':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>9}")
names = sorted({c[3] for c in cmds})
for n in names:
    row(n, [c[2] for c in cmds if c[3] == n])
row('all', [c[2] for c in cmds])
for k, ws in list(windows.items()) + [('packing or compaction', windows['packing'] + windows['compaction'])]:
    d = during(ws)
    total = sum(w[1] - w[0] for w in ws) / 1000
    print(f"-- during {k} ({len(ws)} windows, {total:.1f} s)")
    for n in names:
        v = [c[2] for c in d if c[3] == n]
        if v:
            row('  ' + n, v)
    row('  all', [c[2] for c in d])
print("compactions in the run (s from the start, what the log says, slowest command during it):")
for w in windows['compaction']:
    d = during([w])
    worst = max(d, key=lambda c: c[2], default=None)
    print(f"  {(w[0] - t0) / 1000:6.1f} {w[2]}; {len(d)} commands, slowest "
          + (f"{worst[3]} {worst[2]:.1f} ms" if worst else "none"))
PY
