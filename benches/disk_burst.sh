#!/usr/bin/env bash
# The disk a user sees during and after a burst of deliveries, with no manual command:
# the corpus delivered over 4 LMTP connections to a fresh server on its default store
# settings, the data dir sampled every 0.25 s from the first delivery until AFTER seconds
# after the last one.
#
#   benches/disk_burst.sh [CORPUS_DIR]
#
# Prints the raw size (the corpus as delivered, CRLF), then per second the allocated
# (`du`) and apparent (`du -b`) size of the data dir as a share of it, and a summary:
# the peak allocated share at any sample, the share at the end, the first sample after
# the burst from which it stays at or under TARGET, and apparent/allocated at the end.
# Knobs: LIMIT=3000 AFTER=150 TARGET=0.30 NB_BIN LOAD_BIN (use these binaries).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
LIMIT=${LIMIT:-3000}
AFTER=${AFTER:-150}
TARGET=${TARGET:-0.30}
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
nb_build "$ROOT" || exit 2

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-disk.XXXXXX")
SERVER_PID= SAMPLER=
trap '[ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null; nb_stop; rm -rf "$TMP"' EXIT
cat > "$TMP/config.ron" <<EOF
(data_dir: "$TMP/data", hostname: "localhost",
 imap: (listen: [], tls_listen: []),
 pop3: (listen: [], tls_listen: []),
 managesieve: (listen: []),
 lmtp: (listen: ["127.0.0.1:0"], unix_socket: None))
EOF
nb_serve "$TMP/config.ron" "$TMP" bench || exit 1

# sample: "seconds allocated_bytes apparent_bytes" every 0.25 s.
sample() {
    local t0 now
    t0=$(date +%s.%N)
    while :; do
        now=$(date +%s.%N)
        echo "$(awk -v a="$now" -v b="$t0" 'BEGIN { printf "%.2f", a - b }') \
$(du -s --block-size=1 "$TMP/data" | cut -f1) $(du -sb "$TMP/data" | cut -f1)"
        sleep 0.25
    done
}
sample > "$TMP/samples" &
SAMPLER=$!
OUT=$("$LOAD" lmtp --addr "$A_LMTP" --conns 4 --messages $((LIMIT / 4)) --rcpts bench \
    --corpus "$CORPUS" --limit "$LIMIT" --pid "$SERVER_PID")
BURST_END=$(tail -1 "$TMP/samples" | cut -d' ' -f1)
grep -q '^errors: 0' <<< "$OUT" || { echo "delivery errors: $OUT" >&2; exit 1; }
RAW=$(sed -n 's/^corpus_crlf_bytes: //p' <<< "$OUT")
[ -n "$RAW" ] || { echo "the load generator did not report the raw bytes" >&2; exit 1; }
sleep "$AFTER"
kill "$SAMPLER" 2>/dev/null || true
SAMPLER=

echo "raw (CRLF, as delivered): $RAW bytes; burst ended at ${BURST_END}s"
echo "second allocated/raw apparent/raw"
awk -v raw="$RAW" '{ s = int($1); if (!(s in seen)) { seen[s] = 1;
    printf "%6d %8.3f %8.3f\n", s, $2 / raw, $3 / raw } }' "$TMP/samples"
awk -v raw="$RAW" -v end="$BURST_END" -v target="$TARGET" '
    { a = $2 / raw; if (a > peak) peak = a; last_a = a; last_p = $3 / raw
      if ($1 > end) { if (a > target) settled = ""; else if (settled == "") settled = $1 - end } }
    END {
        printf "peak allocated: %.3f x raw\n", peak
        printf "at the end (%ss after the burst): allocated %.3f x, apparent %.3f x (apparent/allocated %.2f)\n", '"$AFTER"', last_a, last_p, last_p / last_a
        if (settled == "") print "never settled at or under " target " x"
        else printf "at or under %s x from %.1f s after the burst on\n", target, settled
    }' "$TMP/samples"
