#!/usr/bin/env bash
# New mail reaching many clients in IDLE on one big INBOX: the corpus cycled to MESSAGES
# messages (benches/common.sh nb_gen_mbox), imported into user `bench`; SESSIONS
# connections select INBOX and IDLE (benches/idle_wake.py), then ROUNDS messages arrive
# by LMTP one at a time. Reported: the p50 and max time until every session has its
# EXISTS, the server's CPU seconds over the run (its logins and SELECTs included) and
# its VmRSS at the end and 15 s later (the clients gone).
#
#   benches/idle_wake.sh [CORPUS_DIR]
#
# Knobs: MESSAGES=20000 SESSIONS=50 ROUNDS=10 NB_BIN=path.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-50}
ROUNDS=${ROUNDS:-10}
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
CORPUS=$(cd "$CORPUS" && pwd)
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
if [ -n "${NB_BIN:-}" ]; then NB=$NB_BIN; else LOAD_BIN=${LOAD_BIN:-true} nb_build "$ROOT" || exit 2; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-idle-wake.XXXXXX")
SERVER_PID=
cleanup() { nb_stop; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

nb_gen_mbox "$CORPUS" "$TMP/big.mbox" 0 "$MESSAGES"
nb_config "$TMP/config.ron" "$TMP/data"
printf 'pw\n' | "$NB" --config "$TMP/config.ron" user add bench --password-stdin >/dev/null
"$NB" --config "$TMP/config.ron" import --user bench "$TMP/big.mbox" >/dev/null 2>&1
rm -f "$TMP/big.mbox"
nb_serve "$TMP/config.ron" "$TMP"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
hz=$(getconf CLK_TCK)
c0=$(cpu_ticks)
python3 "$ROOT/benches/idle_wake.py" "${A_IMAP%:*}" "${A_IMAP##*:}" "${A_LMTP##*:}" \
    bench pw "$SESSIONS" "$ROUNDS"
c1=$(cpu_ticks)
awk -v t="$((c1 - c0))" -v hz="$hz" 'BEGIN { printf "server_cpu_s: %.2f\n", t / hz }'
echo "server_rss_kib_end: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
sleep 15
echo "server_rss_kib_15s_after: $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
