#!/usr/bin/env bash
# What the HTTP listener and a Prometheus scraper cost the IMAP mix (issue #19: within 3%).
#
#   benches/http_overhead.sh [CORPUS_DIR]
#
# ROUNDS times, alternating (so the drift of a shared machine hits both alike): a fresh
# server without the HTTP listener, then one with `http.listen` and a client fetching
# /metrics and /healthz every second, each given the same prefill as compare.sh (PREFILL
# corpus messages to each of CLIENTS users over multi-recipient LMTP) and then the IMAP
# client mix of compare.sh (CLIENTS connections, DURATION s, no pipelining). Prints per
# round the mix's ops/s and the server's CPU ms per 1,000 operations, then the medians and
# the ratios on/off. Knobs: ROUNDS=5 CLIENTS=10 DURATION=10 PREFILL=100 LIMIT=3000
# NB_BIN LOAD_BIN.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
ROUNDS=${ROUNDS:-5}
CLIENTS=${CLIENTS:-10}
DURATION=${DURATION:-10}
PREFILL=${PREFILL:-100}
LIMIT=${LIMIT:-3000}
CLK_TCK=$(getconf CLK_TCK)
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is needed (apt-get install curl)" >&2; exit 2; }
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
nb_build "$ROOT" || exit 2

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-http.XXXXXX")
SERVER_PID= SCRAPER=
trap '[ -z "$SCRAPER" ] || kill "$SCRAPER" 2>/dev/null; nb_stop; rm -rf "$TMP"' EXIT
USERS=$(seq -f 'u%g' 1 "$CLIENTS" | paste -sd,)

cpu_s() {
    awk -v t="$CLK_TCK" '{ sub(/.*\) /, ""); printf "%.3f", ($12 + $13) / t }' "/proc/$1/stat"
}

# round MODE (off|on): appends "MODE ops_per_s cpu_ms_per_1k_ops" to $TMP/results.
round() {
    local dir=$TMP/$1 http=() out c0 c1 ops n port
    rm -rf "$dir" && mkdir -p "$dir"
    [ "$1" = on ] && http=(' http: (listen: ["127.0.0.1:0"]),')
    cat > "$dir/config.ron" <<EOF
(data_dir: "$dir/data", hostname: "localhost",
 imap: (listen: ["127.0.0.1:0"], tls_listen: []),
 pop3: (listen: [], tls_listen: []),
 managesieve: (listen: []),${http[*]:-}
 lmtp: (listen: ["127.0.0.1:0"], unix_socket: None),
 connections: (max_total: 100000, max_per_ip: 100000, max_per_user: 100000))
EOF
    # shellcheck disable=SC2046
    nb_serve "$dir/config.ron" "$dir" $(tr , ' ' <<< "$USERS") >/dev/null || exit 1
    out=$("$LOAD" lmtp --addr "$A_LMTP" --conns 2 --messages $((PREFILL / 2)) --rcpts "$USERS" \
        --corpus "$CORPUS" --limit "$LIMIT")
    grep -q '^errors: 0' <<< "$out" || { echo "prefill errors: $out" >&2; return 1; }
    if [ "$1" = on ]; then
        port=$(nb_port "$dir" http)
        [ -n "$port" ] || { echo "no http listener reported" >&2; return 1; }
        (while :; do
            curl -fsS "http://$port/metrics" >/dev/null || echo "scrape failed" >&2
            curl -fsS "http://$port/healthz" >/dev/null || echo "healthz failed" >&2
            sleep 1
        done) &
        SCRAPER=$!
    fi
    c0=$(cpu_s "$SERVER_PID")
    out=$("$LOAD" mix --addr "$A_IMAP" --conns "$CLIENTS" --duration "$DURATION" \
        --users "$USERS" --pipelining off --corpus "$CORPUS" --limit "$LIMIT")
    c1=$(cpu_s "$SERVER_PID")
    if [ -n "$SCRAPER" ]; then
        kill "$SCRAPER" 2>/dev/null || true
        wait "$SCRAPER" 2>/dev/null || true
        SCRAPER=
    fi
    nb_stop
    grep -q '^errors: 0' <<< "$out" || { echo "mix errors: $out" >&2; return 1; }
    ops=$(sed -n 's/^ops_per_s: //p' <<< "$out")
    n=$(awk -v r="$ops" -v d="$DURATION" 'BEGIN { print r * d }')
    awk -v m="$1" -v r="$ops" -v a="$c0" -v b="$c1" -v n="$n" \
        'BEGIN { printf "%s %s %.1f\n", m, r, (b - a) * 1e6 / n }' >> "$TMP/results"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for r in $(seq "$ROUNDS"); do
    for mode in off on; do
        round "$mode" || exit 1
        echo "round $r: $(tail -1 "$TMP/results") (http, ops/s, CPU ms per 1,000 ops)" >&2
    done
done
for mode in off on; do
    echo "$mode $(awk -v m="$mode" '$1 == m { print $2 }' "$TMP/results" | median) \
$(awk -v m="$mode" '$1 == m { print $3 }' "$TMP/results" | median)"
done > "$TMP/medians"
printf '%-10s %12s %22s\n' http "mix ops/s" "CPU ms per 1,000 ops"
while read -r mode ops cpu; do printf '%-10s %12s %22s\n' "$mode" "$ops" "$cpu"; done < "$TMP/medians"
awk '{ o[$1] = $2; c[$1] = $3 } END {
    printf "on/off: throughput %.3f, CPU per op %.3f\n", o["on"] / o["off"], c["on"] / c["off"] }' "$TMP/medians"
