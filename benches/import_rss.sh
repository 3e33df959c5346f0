#!/usr/bin/env bash
# Peak memory and throughput of `nestbox import` on a large mbox, in direct store mode
# (no server running).
#
#   benches/import_rss.sh [SIZE_MB] [CORPUS_DIR]
#
# Generates an mboxrd file of about SIZE_MB (default 1024) MiB in a temp dir by repeating
# the corpus messages with From_ lines. Every copy gets a unique Message-ID and an
# `X-Bench-Copy:` header, so no copy is byte-identical to another and content dedup cannot
# hide the cost. Then runs `nestbox import --user bench` under `/usr/bin/time -v` and
# reports max RSS, wall time, throughput and the data dir size.
# Set KEEP_MBOX=/path to keep (and reuse) the generated mbox, NB_BIN to use a built binary.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MB=${1:-1024}
CORPUS=${2:-$ROOT/../shared/corpus/spamassassin-dev}
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time missing: apt-get install -y time" >&2; exit 2; }

# shellcheck source=common.sh
. "$ROOT/benches/common.sh"

cd "$ROOT"
if [ -n "${NB_BIN:-}" ]; then
    NB=$NB_BIN
else
    echo "== building (release)" >&2
    cargo build --release --quiet
    NB=$ROOT/target/release/nestbox
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-import.XXXXXX")
SAMPLER=
trap 'rm -rf "$TMP"' EXIT
MBOX=${KEEP_MBOX:-$TMP/bench.mbox}

if [ ! -s "$MBOX" ]; then
    echo "== generating ~$SIZE_MB MiB mbox at $MBOX" >&2
    nb_gen_mbox "$CORPUS" "$MBOX" "$SIZE_MB"
fi
MBOX_BYTES=$(stat -c %s "$MBOX")
MSGS=$(grep -c '^From ' "$MBOX")

CFG=$TMP/config.ron
cat > "$CFG" <<'EOF'
(data_dir: "data", imap: (listen: [], tls_listen: []), pop3: (listen: [], tls_listen: []),
 managesieve: (listen: []),
 lmtp: (listen: [], unix_socket: None))
EOF
printf 'pw\n' | "$NB" --config "$CFG" user add bench --password-stdin >/dev/null

echo "== importing $MSGS messages ($MBOX_BYTES bytes)" >&2
# The data dir's allocated size every 0.5 s while the import runs: its peak.
( while :; do du -sB1 "$TMP/data" | cut -f1; sleep 0.5; done ) > "$TMP/du.samples" &
SAMPLER=$!
trap 'kill "$SAMPLER" 2>/dev/null; rm -rf "$TMP"' EXIT
/usr/bin/time -v -o "$TMP/time.txt" "$NB" --config "$CFG" import --user bench "$MBOX" \
    > "$TMP/import.out" 2> "$TMP/import.err" || {
    echo "import failed:" >&2; tail -20 "$TMP/import.err" >&2; cat "$TMP/time.txt" >&2; exit 1; }
kill "$SAMPLER" 2>/dev/null || true
PEAK_ALLOC=$(sort -n "$TMP/du.samples" | tail -1)
cat "$TMP/import.out"

RSS_KB=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TMP/time.txt")
WALL=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$TMP/time.txt")
USER_S=$(sed -n 's/.*User time (seconds): //p' "$TMP/time.txt")
SYS_S=$(sed -n 's/.*System time (seconds): //p' "$TMP/time.txt")
WALL_S=$(echo "$WALL" | awk -F: '{s=0; for (i=1;i<=NF;i++) s=s*60+$i; print s}')
DU=$(du -sb "$TMP/data" | cut -f1)
DU_ALLOC=$(du -sB1 "$TMP/data" | cut -f1)
STORE=$("$NB" --config "$CFG" stats | grep '^store: ')
echo "== compacting" >&2
T0=$(date +%s.%N)
"$NB" --config "$CFG" compact >/dev/null
COMPACT_S=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
DU2=$(du -sb "$TMP/data" | cut -f1)
STORE2=$("$NB" --config "$CFG" stats | grep '^store: ')

echo
printf '%-30s %s\n' "mbox bytes" "$MBOX_BYTES"
printf '%-30s %s\n' "messages" "$MSGS"
printf '%-30s %s\n' "wall time" "$WALL ($WALL_S s)"
printf '%-30s %s\n' "cpu user / sys s" "$USER_S / $SYS_S"
printf '%-30s %s\n' "throughput MB/s" "$(awk -v b="$MBOX_BYTES" -v s="$WALL_S" 'BEGIN {printf "%.1f", b / 1e6 / s}')"
printf '%-30s %s\n' "throughput msgs/s" "$(awk -v n="$MSGS" -v s="$WALL_S" 'BEGIN {printf "%.0f", n / s}')"
printf '%-30s %s KiB (%.1f MiB)\n' "max RSS" "$RSS_KB" "$(awk -v k="$RSS_KB" 'BEGIN {print k / 1024}')"
printf '%-30s %s\n' "peak allocated during import" "$PEAK_ALLOC ($(awk -v a="$PEAK_ALLOC" -v b="$MBOX_BYTES" 'BEGIN {printf "%.3f", a / b}') of the mbox, sampled every 0.5 s)"
printf '%-30s %s\n' "data dir bytes (du -sb)" "$DU (allocated on disk: $DU_ALLOC)"
printf '%-30s %s\n' "data dir / mbox" "$(awk -v a="$DU" -v b="$MBOX_BYTES" 'BEGIN {printf "%.3f", a / b}') (allocated: $(awk -v a="$DU_ALLOC" -v b="$MBOX_BYTES" 'BEGIN {printf "%.3f", a / b}'); no manual command)"
printf '%-30s %s\n' "compact time s" "$COMPACT_S"
printf '%-30s %s\n' "after compact (du -sb)" "$DU2"
printf '%-30s %s\n' "after compact / mbox" "$(awk -v a="$DU2" -v b="$MBOX_BYTES" 'BEGIN {printf "%.3f", a / b}')"
echo "before compact $STORE"
echo "after compact  $STORE2"
