#!/usr/bin/env bash
# SORT (RFC 5256) and THREAD on a 50,000-message INBOX (issue #15): the corpus cycled, each
# copy with a unique Message-ID and an `X-Bench-Copy:` header (benches/common.sh
# nb_gen_mbox), imported into user `bench` before the server starts; then
# benches/sort_thread.py times UID SORT (REVERSE DATE), UID SORT (SUBJECT), UID THREAD
# REFERENCES and UID THREAD ORDEREDSUBJECT, ROUNDS times each, in two sessions one after
# the other (first run and the median of the rest). Also reports the import time, the
# data dir size, and the server's VmRSS at start, after the runs and IDLE_SECS later.
#
#   benches/sort_thread.sh [CORPUS_DIR]
#
# Knobs (environment): MESSAGES=50000 ROUNDS=5 IDLE_SECS=60 (the wait before the last
# RSS sample) NB_BIN=path (use this nestbox binary instead of building the release one).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
MESSAGES=${MESSAGES:-50000}
ROUNDS=${ROUNDS:-5}
IDLE_SECS=${IDLE_SECS:-60}
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
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-sort.XXXXXX")
SERVER_PID=
cleanup() { nb_stop; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== generating $MESSAGES messages" >&2
nb_gen_mbox "$CORPUS" "$TMP/big.mbox" 0 "$MESSAGES"
nb_config "$TMP/config.ron" "$TMP/data"
printf 'pw\n' | "$NB" --config "$TMP/config.ron" user add bench --password-stdin >/dev/null
echo "== importing" >&2
t0=$(date +%s.%N)
"$NB" --config "$TMP/config.ron" import --user bench "$TMP/big.mbox" >&2
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "import_s: %.1f\n", b - a }'
rm -f "$TMP/big.mbox"
echo "data_dir_bytes: $(du -sb "$TMP/data" | cut -f1)"

nb_serve "$TMP/config.ron" "$TMP"
echo "server_rss_start_kib: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
python3 "$ROOT/benches/sort_thread.py" "${A_IMAP%:*}" "${A_IMAP##*:}" bench pw "$ROUNDS"
echo "server_rss_end_kib: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
echo "server_hwm_kib: $(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")"
# What the server keeps once the sessions are gone (it trims its caches when idle).
sleep "$IDLE_SECS"
echo "server_rss_idle_${IDLE_SECS}s_kib: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
