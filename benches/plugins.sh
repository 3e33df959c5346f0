#!/usr/bin/env bash
# Plugin cost: per-message filter overhead (median, p99) and LMTP throughput with 0, 1
# and 3 filter plugins, and with the Sieve plugin running a 20-rule script
# (benches/sieve-20-rules.sieve), against the release binary.
#
#   benches/plugins.sh [CORPUS_DIR] [LIMIT] [CONNS]
#
# Builds the release binary, benches/plugin_overhead.rs and the example Rust plugins
# (wasm32-wasip2), then:
#  1. plugin_overhead: Hooks::filter as a delivery calls it, 0 / 1 / 3 filters, warm
#     instances and fresh ones, on one corpus message (20,000 calls each);
#     and the Sieve plugin with the 20-rule script active for the recipient (read from a
#     store, as a delivery does);
#  2. for 0, 1 and 3 filters and for Sieve: a fresh store, `nestbox serve`, LIMIT (default
#     2000) corpus messages over CONNS (default 4) LMTP connections with
#     benches/lmtp_load.rs (for Sieve, the script installed with `nestbox sieve put`).
# The filters: spam-to-junk, rules (5 header rules), and spam-to-junk again.
# Only processes started here are stopped.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
LIMIT=${2:-2000}
CONNS=${3:-4}
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
CORPUS=$(cd "$CORPUS" && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

nb_build "$ROOT" lmtp_load || exit 2
OVER=$(nb_bench_exe "$ROOT" plugin_overhead)
[ -x "$OVER" ] || { echo "could not build benches/plugin_overhead.rs" >&2; exit 2; }
for p in spam-to-junk rules sieve; do
    (cd "plugins/$p" && CARGO_TARGET_DIR="$TARGET/wasm-plugins" \
        cargo build --release --quiet --target wasm32-wasip2)
done
WASM=$TARGET/wasm-plugins/wasm32-wasip2/release

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-pbench.XXXXXX")
SERVER_PID=
cleanup() {
    nb_stop
    rm -rf "$TMP"
}
trap cleanup EXIT

MSG=$(ls "$CORPUS" | sort | sed -n 1p)  # sed reads all: no SIGPIPE under pipefail
echo "== filter overhead on $MSG ($(stat -c %s "$CORPUS/$MSG") bytes)" >&2
SCRIPT=$ROOT/benches/sieve-20-rules.sieve
"$OVER" "$CORPUS/$MSG" 20000 --sieve "$WASM/sieve.wasm" "$SCRIPT" "$WASM/spam_to_junk.wasm" "$WASM/rules.wasm" "$WASM/spam_to_junk.wasm" |
    tee "$TMP/overhead.txt"

RULES='"rule.1": "header:Subject contains [reject-me] => reject no",
       "rule.2": "header:List-Id contains rust => fileinto Lists/rust",
       "rule.3": "from matches *@spam.example => discard",
       "rule.4": "header:X-Priority is 1 => flag \\\\Flagged",
       "rule.5": "size > 5000000 => reject too big"'
plugin_list() {
    case $1 in
        0) echo "" ;;
        1) echo "(name: \"junk\", path: \"$WASM/spam_to_junk.wasm\")" ;;
        3) echo "(name: \"junk\", path: \"$WASM/spam_to_junk.wasm\"),
                 (name: \"rules\", path: \"$WASM/rules.wasm\", settings: {$RULES}),
                 (name: \"junk2\", path: \"$WASM/spam_to_junk.wasm\")" ;;
        sieve) echo "(name: \"sieve\", path: \"$WASM/sieve.wasm\", hooks: [Sieve])" ;;
    esac
}

run_one() {
    local n=$1 dir="$TMP/f$1"
    mkdir -p "$dir"
    cat > "$dir/config.ron" <<EOF2
(data_dir: "data", imap: (listen: [], tls_listen: []), pop3: (listen: [], tls_listen: []),
 managesieve: (listen: []),
 lmtp: (listen: ["127.0.0.1:0"], unix_socket: None),
 plugins: [$(plugin_list "$n")])
EOF2
    nb_serve "$dir/config.ron" "$dir" bench || exit 1
    [ -n "$A_LMTP" ] || { echo "server did not report an LMTP port" >&2; exit 1; }
    if [ "$n" = sieve ]; then
        "$NB" --config "$dir/config.ron" sieve put bench rules "$SCRIPT" >/dev/null
        "$NB" --config "$dir/config.ron" sieve activate bench rules >/dev/null
    fi
    echo "== $n filter(s): $LIMIT messages, $CONNS connections" >&2
    "$LOAD" "$A_LMTP" "$CONNS" "$CORPUS" bench "$LIMIT" | tee "$dir/load.txt" | sed 's/^/   /' >&2
    nb_stop
    echo "$n $(sed -n 's/^msgs_per_s: //p' "$dir/load.txt") $(sed -n 's/^latency_p50_ms: //p' "$dir/load.txt") $(sed -n 's/^latency_p99_ms: //p' "$dir/load.txt") $(sed -n 's/^errors: //p' "$dir/load.txt")" >> "$TMP/lmtp.txt"
}

for n in 0 1 3 sieve; do run_one "$n"; done
echo
echo "LMTP, $LIMIT messages, $CONNS connections"
printf '%-10s %10s %12s %12s %8s\n' filters msgs/s "p50 ms" "p99 ms" errors
while read -r n rate p50 p99 err; do
    printf '%-10s %10s %12s %12s %8s\n' "$n" "$rate" "$p50" "$p99" "$err"
done < "$TMP/lmtp.txt"
