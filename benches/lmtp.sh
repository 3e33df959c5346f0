#!/usr/bin/env bash
# LMTP delivery throughput and disk footprint, end to end against the release binary.
#
#   benches/lmtp.sh [CORPUS_DIR] [LIMIT]
#
# For 1 and then 4 connections, each on a fresh store: build, create a temp data dir and
# config, add user `bench`, start `nestbox serve`, deliver LIMIT (default 3000) corpus
# messages with benches/lmtp_load.rs, wait until background dictionary training and
# packing settle and compact (`nb_settle` in benches/common.sh),
# then measure the data dir (du -sb, everything included), the redb file, the server's
# peak RSS (VmHWM) and CPU time (utime+stime). Only processes started here are stopped.
# FULL_TEXT_INDEX=Off|Headers|Full sets `store.full_text_index` (the server's default:
# Headers).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
LIMIT=${2:-3000}
SETTLE_MAX=${SETTLE_MAX:-180}   # seconds to wait for recompression at most
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
CORPUS=$(cd "$CORPUS" && pwd)

cd "$ROOT"
nb_build "$ROOT" lmtp_load || exit 2

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-bench.XXXXXX")
SERVER_PID=
cleanup() {
    nb_stop
    rm -rf "$TMP"
}
trap cleanup EXIT

CLK_TCK=$(getconf CLK_TCK)

# run_one CONNS -> sets R_* variables
run_one() {
    local conns=$1 dir="$TMP/c$1" cfg out
    mkdir -p "$dir"
    cfg=$dir/config.ron
    cat > "$cfg" <<EOF
(data_dir: "data", imap: (listen: [], tls_listen: []), pop3: (listen: [], tls_listen: []),
 managesieve: (listen: []), store: (full_text_index: ${FULL_TEXT_INDEX:-Headers}),
 lmtp: (listen: ["127.0.0.1:0"], unix_socket: None))
EOF
    nb_serve "$cfg" "$dir" bench || exit 1
    [ -n "$A_LMTP" ] || { echo "server did not report an LMTP port" >&2; exit 1; }

    echo "== $conns connection(s), $LIMIT messages" >&2
    out=$("$LOAD" "$A_LMTP" "$conns" "$CORPUS" bench "$LIMIT") || true
    echo "$out" | sed 's/^/   /' >&2
    R_RATE=$(echo "$out" | sed -n 's/^msgs_per_s: //p')
    R_P50=$(echo "$out" | sed -n 's/^latency_p50_ms: //p')
    R_P99=$(echo "$out" | sed -n 's/^latency_p99_ms: //p')
    R_ERR=$(echo "$out" | sed -n 's/^errors: //p')
    R_RAW=$(echo "$out" | sed -n 's/^raw_crlf_bytes: //p')

    # Let dictionary training and packing settle, then compact (benches/common.sh).
    nb_settle "$cfg" "$SETTLE_MAX"
    R_SETTLE=$NB_SETTLED
    R_STORE=$("$NB" --config "$cfg" stats | grep -E '^(store|full-text index): ' | paste -sd ' ')

    R_DU=$(du -sb "$dir/data" | cut -f1)
    R_REDB=$(stat -c %s "$dir"/data/*.redb | awk '{s+=$1} END {print s}')
    R_HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
    # utime and stime are fields 14 and 15; the comm field (2) has no spaces here.
    R_CPU=$(awk -v t="$CLK_TCK" '{printf "%.2f", ($14 + $15) / t}' "/proc/$SERVER_PID/stat")

    nb_stop
}

run_one 1
A_RATE=$R_RATE A_P50=$R_P50 A_P99=$R_P99 A_ERR=$R_ERR A_DU=$R_DU A_REDB=$R_REDB
A_HWM=$R_HWM A_CPU=$R_CPU A_SETTLE=$R_SETTLE A_STORE=$R_STORE RAW=$R_RAW
run_one 4

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
echo
echo "corpus: $CORPUS ($LIMIT messages, raw CRLF bytes $RAW)"
printf '%-28s %14s %14s\n' "" "1 connection" "4 connections"
printf '%-28s %14s %14s\n' "msgs/s" "$A_RATE" "$R_RATE"
printf '%-28s %14s %14s\n' "latency p50 ms" "$A_P50" "$R_P50"
printf '%-28s %14s %14s\n' "latency p99 ms" "$A_P99" "$R_P99"
printf '%-28s %14s %14s\n' "errors" "$A_ERR" "$R_ERR"
printf '%-28s %14s %14s\n' "settle wait s" "$A_SETTLE" "$R_SETTLE"
printf '%-28s %14s %14s\n' "data dir bytes (du -sb)" "$A_DU" "$R_DU"
printf '%-28s %14s %14s\n' "redb file bytes" "$A_REDB" "$R_REDB"
printf '%-28s %14s %14s\n' "raw CRLF bytes" "$RAW" "$R_RAW"
printf '%-28s %14s %14s\n' "data dir / raw" "$(ratio "$A_DU" "$RAW")" "$(ratio "$R_DU" "$R_RAW")"
printf '%-28s %14s %14s\n' "server peak RSS KiB (VmHWM)" "$A_HWM" "$R_HWM"
printf '%-28s %14s %14s\n' "server CPU s (utime+stime)" "$A_CPU" "$R_CPU"
echo "1 conn  $A_STORE"
echo "4 conns $R_STORE"
