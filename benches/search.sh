#!/usr/bin/env bash
# SEARCH on a 50,000-message INBOX with the full-text index (issue #17): the corpus
# cycled with a unique header per copy (benches/common.sh nb_gen_mbox), imported into
# user `bench` before the server starts; the server then indexes it in the background.
# Reported: the time until `nestbox stats` shows nothing left to index, the index's size
# against the compressed mail, VmRSS at start, while indexing (peak) and once idle, and
# benches/search.py's latencies (p50 over 20 words per key).
#
#   benches/search.sh [CORPUS_DIR]
#
# Knobs: MESSAGES=50000 INDEX=Full (`store.full_text_index`; Off: the same run without
# the index, for the scan's latency and the idle RSS to compare with; Headers: the
# default, fields only) IDLE_SECS=60 NB_BIN=path.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
MESSAGES=${MESSAGES:-50000}
INDEX=${INDEX:-Full}
IDLE_SECS=${IDLE_SECS:-60}
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
CORPUS=$(cd "$CORPUS" && pwd)
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
if [ -n "${NB_BIN:-}" ]; then NB=$NB_BIN; else LOAD_BIN=${LOAD_BIN:-true} nb_build "$ROOT" || exit 2; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-search.XXXXXX")
SERVER_PID=
cleanup() { nb_stop; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== generating $MESSAGES messages" >&2
nb_gen_mbox "$CORPUS" "$TMP/big.mbox" 0 "$MESSAGES"
FULL_TEXT_INDEX=$INDEX nb_config "$TMP/config.ron" "$TMP/data"
printf 'pw\n' | "$NB" --config "$TMP/config.ron" user add bench --password-stdin >/dev/null
echo "== importing" >&2
"$NB" --config "$TMP/config.ron" import --user bench "$TMP/big.mbox" >&2
rm -f "$TMP/big.mbox"

nb_serve "$TMP/config.ron" "$TMP"
t0=$(date +%s.%N)
echo "server_rss_start_kib: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
if [ "$INDEX" != Off ]; then
    while :; do
        line=$("$NB" --config "$TMP/config.ron" stats | grep '^full-text index:')
        case "$line" in *", 0 messages waiting"*) break ;; esac
        sleep 1
    done
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "index_s: %.1f\n", b - a }'
    echo "index: $line"
    echo "server_hwm_while_indexing_kib: $(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")"
fi
"$NB" --config "$TMP/config.ron" stats | grep -E '^store:|^full-text|^table (fts|blobs|packs|pack_chunks|loose)'
echo "data_dir_bytes: $(du -sb "$TMP/data" | cut -f1)"
python3 "$ROOT/benches/search.py" "${A_IMAP%:*}" "${A_IMAP##*:}" bench pw
python3 "$ROOT/benches/search.py" "${A_IMAP%:*}" "${A_IMAP##*:}" bench pw | sed 's/^/second_session /'
echo "server_rss_after_kib: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
sleep "$IDLE_SECS"
echo "server_rss_idle_${IDLE_SECS}s_kib: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
