#!/usr/bin/env bash
# Time and peak memory of `nestbox backup`, `verify` (live store and backup file) and
# `restore` on a store made from the corpus.
#
#   benches/backup.sh [SIZE_MB] [CORPUS_DIR]
#   SIZE_MIB=1024 benches/backup.sh          the 1 GiB store (same as the argument 1024)
#
# Builds the release binary, generates an mbox of about SIZE_MB MiB from the corpus
# (default: about one pass over it; bigger sizes cycle through the corpus, each copy with
# its own Message-ID and an X-Bench-Copy header: nb_gen_mbox in common.sh), imports it
# with no server running (`nestbox import`, the fast path for a big store), then
# measures each command with `/usr/bin/time -v`: backup and verify with no server (the
# CLI does the work), and backup and verify again through a running server (the server
# reads, the CLI writes the file; the server's peak RSS is read from /proc/PID/status).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${2:-$ROOT/../shared/corpus/spamassassin-dev}
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
SIZE_MB=${1:-${SIZE_MIB:-$(du -sm "$CORPUS" | cut -f1)}}
[ -x /usr/bin/time ] || { echo "/usr/bin/time missing: apt-get install -y time" >&2; exit 2; }

# shellcheck source=common.sh
. "$ROOT/benches/common.sh"
cd "$ROOT"
if [ -z "${NB_BIN:-}" ]; then
    echo "== building (release)" >&2
    cargo build --locked --release --quiet
fi
NB=${NB_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/nestbox}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-backup.XXXXXX")
trap 'nb_stop; rm -rf "$TMP"' EXIT
echo "== generating ~$SIZE_MB MiB mbox" >&2
nb_gen_mbox "$CORPUS" "$TMP/in.mbox" "$SIZE_MB"
CFG=$TMP/config.ron
cat > "$CFG" <<'CONF'
(data_dir: "data", imap: (listen: [], tls_listen: []), pop3: (listen: [], tls_listen: []),
 lmtp: (listen: ["127.0.0.1:0"], unix_socket: None), managesieve: (listen: []))
CONF
printf 'pw\n' | "$NB" --config "$CFG" user add bench --password-stdin >/dev/null
echo "== importing" >&2
IMPORT_START=$(date +%s)
"$NB" --config "$CFG" import --user bench "$TMP/in.mbox" >/dev/null 2>&1
"$NB" --config "$CFG" compact >/dev/null
IMPORT_SECS=$(( $(date +%s) - IMPORT_START ))
MSGS=$(grep -c '^From ' "$TMP/in.mbox")
MBOX_BYTES=$(stat -c %s "$TMP/in.mbox")
DB_BYTES=$(stat -c %s "$TMP/data/nestbox.redb")
rm -f "$TMP/in.mbox"

# measure NAME CMD...: runs CMD under /usr/bin/time -v; prints wall s, max RSS MiB.
measure() {
    local name=$1
    shift
    /usr/bin/time -v -o "$TMP/$name.time" "$@" > "$TMP/$name.out" 2> "$TMP/$name.err" || {
        echo "$name failed:" >&2; tail -5 "$TMP/$name.err" "$TMP/$name.out" >&2; exit 1; }
    local wall rss
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$TMP/$name.time" |
        awk -F: '{s=0; for (i=1;i<=NF;i++) s=s*60+$i; print s}')
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TMP/$name.time")
    printf '%-34s %8.2f s %8.1f MiB\n' "$name" "$wall" "$(awk -v k="$rss" 'BEGIN {print k / 1024}')"
}

echo
printf '%-34s %s\n' "load average at the start" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %s\n' "import + compact (not measured)" "$IMPORT_SECS s"
printf '%-34s %s\n' "messages" "$MSGS"
printf '%-34s %s\n' "mbox bytes" "$MBOX_BYTES"
printf '%-34s %s\n' "database file bytes" "$DB_BYTES"
measure "backup (no server)" "$NB" --config "$CFG" backup "$TMP/a.nbk"
printf '%-34s %s\n' "backup file bytes" "$(stat -c %s "$TMP/a.nbk")"
measure "verify store (no server)" "$NB" --config "$CFG" verify
measure "verify backup file" "$NB" --config "$CFG" verify "$TMP/a.nbk"
measure "restore" "$NB" --config "$CFG" restore --data-dir "$TMP/restored" "$TMP/a.nbk"

nb_serve "$CFG" "$TMP"
hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVER_PID/status"; }
BEFORE=$(hwm)
measure "backup (through the server), CLI" "$NB" --config "$CFG" backup "$TMP/b.nbk"
AFTER=$(hwm)
printf '%-34s %8s   %8.1f MiB (before: %.1f MiB)\n' "  server peak RSS after" "" \
    "$(awk -v k="$AFTER" 'BEGIN {print k / 1024}')" "$(awk -v k="$BEFORE" 'BEGIN {print k / 1024}')"
measure "verify store (through the server)" "$NB" --config "$CFG" verify
printf '%-34s %8s   %8.1f MiB\n' "  server peak RSS after" "" "$(awk -v k="$(hwm)" 'BEGIN {print k / 1024}')"
grep -h 'verified' "$TMP"/verify*.out | head -1
printf '%-34s %s\n' "load average at the end" "$(cut -d' ' -f1-3 /proc/loadavg)"
