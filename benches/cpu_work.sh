#!/usr/bin/env bash
# Server CPU seconds for a fixed amount of work, to compare two builds on a machine whose
# throughput figures are noisy (a shared host: identical runs of compare.sh differ by 20-30%
# in msgs/s, while the CPU a fixed job costs moves by a few percent).
#
#   benches/cpu_work.sh NESTBOX_BIN [NESTBOX_BIN ...]
#
# For each binary in turn, ROUNDS times (alternating, so drift hits all alike): a fresh
# temp data dir and server, LIMIT corpus messages delivered over 4 LMTP connections, then
# all of them downloaded by one POP3 client, then IMAP login/logout pairs over 4
# connections for LOGIN_SECS, then the IMAP mix of benches/loadgen.rs with 4 clients for
# MIX_SECS (0: skipped). After each step the server's user+system CPU time (from /proc) is
# read. Prints the medians per binary: CPU seconds of the LMTP and of the POP3 job, CPU ms
# per 1,000 logins and per 1,000 IMAP mix commands, and the mix's commands per second
# (noisy, but paired: allocator lock contention costs time, not CPU). Knobs: ROUNDS=5 LIMIT=3000
# LOGIN_SECS=5 MIX_SECS=10 SETTLE=0
# SETTLE=1: after the LMTP job, wait until the server's CPU time stops growing (under 20 ms
# a second for 5 s), so that the dictionary training and packing the deliveries started are
# counted in the LMTP figure instead of in whichever job runs beside them.
# CORPUS_DIR LOAD_BIN (the load generator; built from benches/loadgen.rs when unset).
# An older build's config may not know `managesieve` or `store.full_text_index`: those
# keys are dropped when the binary rejects the config.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: benches/cpu_work.sh NESTBOX_BIN [NESTBOX_BIN ...]" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${CORPUS_DIR:-$ROOT/../shared/corpus/spamassassin-dev}
ROUNDS=${ROUNDS:-5}
LIMIT=${LIMIT:-3000}
LOGIN_SECS=${LOGIN_SECS:-5}
MIX_SECS=${MIX_SECS:-10}
SETTLE=${SETTLE:-0}
CLK_TCK=$(getconf CLK_TCK)
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
LOAD=${LOAD_BIN:-$(nb_bench_exe "$ROOT" loadgen)}
[ -x "$LOAD" ] || { echo "no load generator" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-cpu.XXXXXX")
SERVER_PID=
trap 'nb_stop; rm -rf "$TMP"' EXIT

cpu_s() {
    awk -v t="$CLK_TCK" '{ sub(/.*\) /, ""); printf "%.3f", ($12 + $13) / t }' "/proc/$1/stat"
}

# settle PID: returns once the process used under 20 ms of CPU in each of 5 seconds in a
# row (the packer packs the tail after 2 s without deliveries, then compacts after 3 s
# more), or after 120 s.
settle() {
    local last now quiet=0 i
    last=$(cpu_s "$1")
    for i in $(seq 120); do
        sleep 1
        now=$(cpu_s "$1")
        if awk -v a="$last" -v b="$now" 'BEGIN { exit !(b - a < 0.02) }'; then
            quiet=$((quiet + 1))
            [ "$quiet" -ge 5 ] && return 0
        else
            quiet=0
        fi
        last=$now
    done
}

# run BIN: one round; prints "lmtp pop3 login mix" CPU figures.
run() {
    local dir=$TMP/run c0 c1 c2 c3 c4 out n m=0 r=0
    rm -rf "$dir" && mkdir -p "$dir"
    nb_config "$dir/config.ron" "$dir/data"
    "$NB" --config "$dir/config.ron" check-config >/dev/null 2>&1 ||
        sed -i '/managesieve/d; /full_text_index/d' "$dir/config.ron"
    nb_serve "$dir/config.ron" "$dir" bench >/dev/null || exit 1
    c0=$(cpu_s "$SERVER_PID")
    out=$("$LOAD" lmtp --addr "$A_LMTP" --conns 4 --messages $((LIMIT / 4)) --rcpts bench \
        --corpus "$CORPUS" --limit "$LIMIT" --pid "$SERVER_PID")
    grep -q '^errors: 0' <<< "$out" || { echo "lmtp errors: $out" >&2; return 1; }
    [ "$SETTLE" = 1 ] && settle "$SERVER_PID"
    c1=$(cpu_s "$SERVER_PID")
    out=$("$LOAD" pop3 --addr "$A_POP3" --conns 1 --users bench --pid "$SERVER_PID")
    grep -q '^errors: 0' <<< "$out" || { echo "pop3 errors: $out" >&2; return 1; }
    c2=$(cpu_s "$SERVER_PID")
    out=$("$LOAD" login --addr "$A_IMAP" --conns 4 --duration "$LOGIN_SECS" --users bench \
        --pid "$SERVER_PID")
    grep -q '^errors: 0' <<< "$out" || { echo "login errors: $out" >&2; return 1; }
    n=$(sed -n 's/^cmd login n=\([0-9]*\).*/\1/p' <<< "$out")
    c3=$(cpu_s "$SERVER_PID")
    c4=$c3
    if [ "$MIX_SECS" -gt 0 ]; then
        out=$("$LOAD" mix --addr "$A_IMAP" --conns 4 --duration "$MIX_SECS" --users bench \
            --pipelining off --corpus "$CORPUS" --limit "$LIMIT" --pid "$SERVER_PID")
        grep -q '^errors: 0' <<< "$out" || { echo "mix errors: $out" >&2; return 1; }
        m=$(sed -n 's/^ops: //p' <<< "$out")
        r=$(sed -n 's/^ops_per_s: //p' <<< "$out")
        c4=$(cpu_s "$SERVER_PID")
    fi
    nb_stop
    # LMTP and POP3: CPU s for the whole job; logins and the mix: CPU ms per 1,000.
    awk -v a="$c0" -v b="$c1" -v c="$c2" -v d="$c3" -v e="$c4" -v n="$n" -v m="$m" -v r="$r" \
        'BEGIN { printf "%.3f %.3f %.3f %.3f %s\n", b - a, c - b, (d - c) * 1e6 / n,
                 (m > 0 ? (e - d) * 1e6 / m : 0), r }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for r in $(seq "$ROUNDS"); do
    for bin in "$@"; do
        NB=$bin
        line=$(run) || exit 1
        echo "$bin $line" >> "$TMP/results"
        echo "round $r: $(tail -1 "$TMP/results")" >&2
    done
done
printf '%-40s %10s %10s %14s %12s %10s\n' binary lmtp_cpu_s pop3_cpu_s login_cpu_ms_1k \
    mix_cpu_ms_1k mix_ops_s
for bin in "$@"; do
    l=$(awk -v b="$bin" '$1 == b { print $2 }' "$TMP/results" | median)
    p=$(awk -v b="$bin" '$1 == b { print $3 }' "$TMP/results" | median)
    g=$(awk -v b="$bin" '$1 == b { print $4 }' "$TMP/results" | median)
    x=$(awk -v b="$bin" '$1 == b { print $5 }' "$TMP/results" | median)
    o=$(awk -v b="$bin" '$1 == b { print $6 }' "$TMP/results" | median)
    printf '%-40s %10s %10s %14s %12s %10s\n' "$bin" "$l" "$p" "$g" "$x" "$o"
done
