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
# Then, with IDLE_CONNS > 0 (default 100; issue #21): `loadgen idle` holds IDLE_CONNS
# connections (plus its 10 warm-up ones) logged in as `bench` with INBOX selected and in
# IDLE, and while they idle the client above runs again (the active user's latency);
# reported: loadgen's server memory per connection, and VmRSS with them all open.
#
# COMMAND_SET=fetch times whole-mailbox FETCHes instead (benches/sort_thread.py), e.g.
# `MESSAGES=3000 IDLE_CONNS=0 IDLE_SECS=0 COMMAND_SET=fetch benches/sort_thread.sh`.
#
# Knobs (environment): MESSAGES=50000 ROUNDS=5 IDLE_SECS=60 (the wait before the last
# RSS sample) IDLE_CONNS=100 WAIT_INDEX=1 (0: start timing before the server has indexed
# the imported mail, so the first SORT reads the headers) NB_BIN=path LOAD_BIN=path (use these binaries instead of
# building the release ones).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
MESSAGES=${MESSAGES:-50000}
ROUNDS=${ROUNDS:-5}
IDLE_SECS=${IDLE_SECS:-60}
WAIT_INDEX=${WAIT_INDEX:-1}
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
CORPUS=$(cd "$CORPUS" && pwd)
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
IDLE_CONNS=${IDLE_CONNS:-100}
nb_build "$ROOT" || exit 2
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
if [ "$WAIT_INDEX" = 1 ]; then
    # The server indexes the imported mail in the background, and keeps with the index
    # the header records SORT and THREAD read: wait for it (`nestbox stats`).
    t0=$(date +%s.%N)
    for _ in $(seq 1200); do
        "$NB" --config "$TMP/config.ron" stats 2>/dev/null | grep -q ', 0 messages waiting' && break
        sleep 0.2
    done
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "index_wait_s: %.1f\n", b - a }'
    "$NB" --config "$TMP/config.ron" stats | grep -i 'index' || true
    echo "server_rss_indexed_kib: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
fi
python3 "$ROOT/benches/sort_thread.py" "${A_IMAP%:*}" "${A_IMAP##*:}" bench pw "$ROUNDS"
echo "server_rss_end_kib: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
echo "server_hwm_kib: $(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")"
# What the server keeps once the sessions are gone (it trims its caches when idle).
sleep "$IDLE_SECS"
echo "server_rss_idle_${IDLE_SECS}s_kib: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
[ "$IDLE_CONNS" -gt 0 ] || exit 0

echo "== $IDLE_CONNS connections in IDLE on the same INBOX, one active user" >&2
ulimit -n 65536 2>/dev/null || true
"$LOAD" idle --addr "$A_IMAP" --conns "$IDLE_CONNS" --users bench --password pw \
    --idle-cmd --hold 120 --pid "$SERVER_PID" > "$TMP/idle.out" 2>&1 &
IDLE_PID=$!
# Wait until every connection is logged in and idling (the server's thread-free
# connections: count the established sockets to its IMAP port).
port=${A_IMAP##*:}
for _ in $(seq 600); do
    n=$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)
    [ "$n" -ge $((IDLE_CONNS + 10)) ] && break
    sleep 0.5
done
sleep 5
echo "idle_connections_open: $n"
echo "server_rss_with_idle_kib: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
python3 "$ROOT/benches/sort_thread.py" "${A_IMAP%:*}" "${A_IMAP##*:}" bench pw "$ROUNDS" |
    sed 's/^/with_idle: /'
echo "server_rss_with_idle_after_active_kib: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
wait "$IDLE_PID" || true
grep -E '^(connections_held|rss_per_conn_kib|pss_per_conn_kib|errors|base_server_rss_kib)' "$TMP/idle.out" |
    sed 's/^/idle: /'

