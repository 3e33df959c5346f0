#!/usr/bin/env bash
# Profiles nestbox under one workload of the load generator with `perf record`.
#
#   benches/profile.sh WORKLOAD [CORPUS_DIR]
#
# WORKLOAD is one of: lmtp (3,000 corpus messages over 4 connections), mix, mix_pipe
# (the IMAP client mix of benches/compare.sh, 10 clients), append, pop3. Before mix,
# append and pop3 the store gets what compare.sh gives it: the corpus for user bench,
# then PREFILL messages to every user with multi-recipient LMTP. Only the workload runs
# under perf. Prints `perf report` (self time, top symbols) and keeps perf.data in
# OUT (default ./target/profile-WORKLOAD).
#
# perf comes from Debian's linux-perf; `-e cpu-clock` is a software event, so it works in
# VMs without hardware counters. Knobs: CLIENTS=10 DURATION=15 LIMIT=3000 PREFILL=100
# FREQ=2000 CALLGRAPH=dwarf|none PERF=0 (run the workload without perf, for its figures)
# NB_BIN LOAD_BIN OUT.
set -euo pipefail

WORKLOAD=${1:?usage: benches/profile.sh WORKLOAD [CORPUS_DIR]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${2:-$ROOT/../shared/corpus/spamassassin-dev}
CLIENTS=${CLIENTS:-10}
DURATION=${DURATION:-15}
LIMIT=${LIMIT:-3000}
PREFILL=${PREFILL:-100}
FREQ=${FREQ:-2000}
CALLGRAPH=${CALLGRAPH:-dwarf}
OUT=${OUT:-$ROOT/target/profile-$WORKLOAD}
PERF=${PERF:-1}
[ "$PERF" = 0 ] || command -v perf >/dev/null ||
    { echo "perf is missing: apt-get install linux-perf" >&2; exit 2; }
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }

cd "$ROOT"
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
nb_build "$ROOT" || exit 2

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-profile.XXXXXX")
SERVER_PID=
cleanup() {
    nb_stop
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"

CFG=$TMP/config.ron
nb_config "$CFG" data
# shellcheck disable=SC2046
nb_serve "$CFG" "$TMP" bench $(eval echo "u{1..$CLIENTS}") || exit 1
PID=$SERVER_PID
USERS="u1..u$CLIENTS"

lmtp_all() {
    "$LOAD" lmtp --addr "$A_LMTP" --conns 4 --messages $((LIMIT / 4)) --rcpts bench \
        --corpus "$CORPUS" --limit "$LIMIT" --pid "$PID"
}
case $WORKLOAD in
    lmtp) RUN=(lmtp_all) ;;
    mix | mix_pipe)
        pipe=off
        [ "$WORKLOAD" = mix_pipe ] && pipe=on
        RUN=("$LOAD" mix --addr "$A_IMAP" --conns "$CLIENTS" --duration "$DURATION"
            --users "$USERS" --pipelining "$pipe" --corpus "$CORPUS" --limit "$LIMIT" --pid "$PID") ;;
    append) RUN=("$LOAD" append --addr "$A_IMAP" --conns "$CLIENTS" --messages 200
            --users "$USERS" --corpus "$CORPUS" --limit "$LIMIT" --pid "$PID") ;;
    pop3) RUN=("$LOAD" pop3 --addr "$A_POP3" --conns "$CLIENTS" --users "$USERS" --pid "$PID") ;;
    *) echo "unknown workload $WORKLOAD" >&2; exit 2 ;;
esac
if [ "$WORKLOAD" != lmtp ]; then
    echo "== prefill" >&2
    lmtp_all > /dev/null
    "$LOAD" lmtp --addr "$A_LMTP" --conns 2 --messages $((PREFILL / 2)) --rcpts "$USERS" \
        --corpus "$CORPUS" --limit "$LIMIT" > /dev/null
    sleep 5   # let the packer run, as the settle wait of compare.sh does
fi

if [ "$PERF" = 0 ]; then
    "${RUN[@]}" | tee "$OUT/loadgen.txt"
    exit 0
fi
CG=()
[ "$CALLGRAPH" = dwarf ] && CG=(--call-graph dwarf,16384)
echo "== perf record ($WORKLOAD)" >&2
perf record -q -e cpu-clock -F "$FREQ" "${CG[@]}" -p "$PID" -o "$OUT/perf.data" &
PERF=$!
sleep 0.5
"${RUN[@]}" | tee "$OUT/loadgen.txt"
kill -INT "$PERF"
wait "$PERF" 2>/dev/null || true
perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
    grep -v '^#' | grep -v '^$' | sed 's/ *- *- *$//; s/  *$//' | head -60 | tee "$OUT/report.txt"
