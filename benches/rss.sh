#!/usr/bin/env bash
# nestbox's resident memory during and after load (issue #21), without Dovecot.
#
#   benches/rss.sh [CORPUS_DIR]
#
# Builds the release binary and the load generator (benches/loadgen.rs), then runs each
# phase of PHASES on a fresh server and temp data dir, sampling the server's VmRSS
# (/proc/PID/status) every INTERVAL seconds:
#
# * `compare`: the nestbox workloads of benches/compare.sh in its order (LMTP with 4
#   connections, packing settled and compacted, multi-recipient LMTP, POP3, IMAP mix,
#   pipelined mix, APPEND, login, POP3 with DELE), CLIENTS clients, DURATION s each.
# * `idleconn`: the LMTP delivery, then one IMAP client that reads 500 messages and stays
#   in IDLE all through IDLE_SECS (with it open, the server still gives back its caches).
# * `stress`: `loadgen stress`, STRESS_CLIENTS IMAP clients for STRESS_SECS s over
#   STRESS_USERS mailboxes (several clients per mailbox), APPENDs of STRESS_SIZE-byte
#   messages, FETCH, STORE and concurrent EXPUNGEs; prints the 30 s samples.
#
# After the last client has gone, it keeps sampling for IDLE_SECS s. Per phase it prints
# RSS at start, the peak, at the end of the load, and IDLE_SECS after the last connection
# closed, plus the glibc malloc arenas at the end of the load (anonymous 64 MiB heap
# reservations in /proc/PID/maps) and the thread count; then the time of the first IMAP
# session after the quiet period (what the server gave back has to come back) and of a
# second one, and VmRSS after them.
#
# Knobs (environment): PHASES="compare stress" (or idleconn) CLIENTS=10 DURATION=15 LIMIT=3000
# PREFILL=100 APPENDS=50 STRESS_CLIENTS=50 STRESS_SECS=600 STRESS_USERS=10
# STRESS_SIZE=32768 INTERVAL=2 IDLE_SECS=60 SETTLE_MAX=180 NB_BIN=path LOAD_BIN=path (use
# these binaries instead of building) SAMPLES_OUT=file (keep every sample: phase, second,
# VmRSS KiB, step) KEEP_TMP=1 NB_ENV="VAR=value ..." (environment for the server, e.g.
# MALLOC_ARENA_MAX=2 to try an allocator setting) DROP_CACHES=1 (as root, empty the page
# cache before each server starts: see start_server; 0 leaves it) SMAPS_OUT=prefix (keep
# /proc/PID/smaps at the end of each phase's load as prefix.PHASE).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
PHASES=${PHASES:-compare stress}
DROP_CACHES=${DROP_CACHES:-1}
CLIENTS=${CLIENTS:-10}
DURATION=${DURATION:-15}
LIMIT=${LIMIT:-3000}
PREFILL=${PREFILL:-100}
APPENDS=${APPENDS:-50}
STRESS_CLIENTS=${STRESS_CLIENTS:-50}
STRESS_SECS=${STRESS_SECS:-600}
STRESS_USERS=${STRESS_USERS:-10}
STRESS_SIZE=${STRESS_SIZE:-32768}
INTERVAL=${INTERVAL:-2}
IDLE_SECS=${IDLE_SECS:-60}
SETTLE_MAX=${SETTLE_MAX:-180}
NB_ENV=${NB_ENV:-}
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
CORPUS=$(cd "$CORPUS" && pwd)

cd "$ROOT"
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
nb_build "$ROOT" || exit 2
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-rss.XXXXXX")
SERVER_PID= SAMPLER_PID=
cleanup() {
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
    [ -n "${IDLE_CLIENT_PID:-}" ] && kill "$IDLE_CLIENT_PID" 2>/dev/null
    nb_stop
    [ -n "${SAMPLES_OUT:-}" ] && [ -f "$TMP/samples" ] && cp "$TMP/samples" "$SAMPLES_OUT"
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
: > "$TMP/samples"
if [ -n "$NB_ENV" ]; then
    # A wrapper that execs, so the server keeps the PID nb_serve records.
    printf '#!/bin/sh\nexec env %s "%s" "$@"\n' "$NB_ENV" "$NB" > "$TMP/nb-env"
    chmod +x "$TMP/nb-env"
    NB=$TMP/nb-env
fi

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# The step the sampler writes next to each sample.
step() { echo "$1" > "$TMP/step"; echo "   [$PHASE] $1" >&2; }

# sampler PID PHASE: appends "PHASE SECOND RSS_KIB STEP" every INTERVAL s until killed.
sampler() {
    local t0=$SECONDS
    while kill -0 "$1" 2>/dev/null; do
        echo "$2 $((SECONDS - t0)) $(rss_kib "$1") $(cat "$TMP/step")" >> "$TMP/samples"
        sleep "$INTERVAL"
    done
}

# glibc arenas: an anonymous heap of a non-main arena is a 64 MiB aligned reservation,
# seen in maps as an rw-p part followed by a ---p part. Prints "COUNT RSS_KIB" of them.
arenas() {
    python3 - "$1" <<'PY' 2>/dev/null || echo "0 0"
import sys
n = rss = 0
prev = None  # (start, size KiB, rss KiB) of an aligned anonymous rw-p mapping
cur = None
def close():
    global n, rss, prev
    if prev and prev[1] == 65536:
        n += 1
        rss += prev[2]
    prev = None
for line in open(f"/proc/{sys.argv[1]}/smaps"):
    f = line.split()
    if "-" in f[0] and len(f) >= 5 and ":" in f[3]:
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        kib, anon = (hi - lo) // 1024, len(f) == 5
        if anon and f[1] == "---p" and prev:
            prev = (prev[0], prev[1] + kib, prev[2])
            close()
            continue
        close()
        if anon and f[1] == "rw-p" and lo % (64 << 20) == 0:
            prev = (lo, kib, 0)
    elif f[0] == "Rss:" and prev and prev[2] == 0:
        prev = (prev[0], prev[1], int(f[1]))
close()
print(n, rss)
PY
}

load() {
    step "loadgen $1"
    local out
    out=$("$LOAD" "$@" --pid "$SERVER_PID") || { echo "$out" >&2; echo "loadgen failed" >&2; exit 1; }
    grep -E '^(ops_per_s|errors|first_error)' <<< "$out" | sed 's/^/      /' >&2 || true
    LAST_OUT=$out
}

start_server() {
    local dir=$TMP/$PHASE users
    mkdir -p "$dir"
    CFG=$dir/config.ron
    nb_config "$CFG" "$dir/data"
    users=$(( CLIENTS > STRESS_USERS ? CLIENTS : STRESS_USERS ))
    # VmRSS counts the binary's pages the server touched, and how many of them a fault
    # maps depends on what the page cache holds of the file: a binary copied a moment
    # ago starts 3 MiB higher than the same binary cold. Start from a cold cache where
    # we may (root), so that runs of two builds compare.
    if [ "$DROP_CACHES" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then
        sync
        echo 3 > /proc/sys/vm/drop_caches
    fi
    # shellcheck disable=SC2046
    nb_serve "$CFG" "$dir" bench $(eval echo "u{1..$users}") || exit 1
    echo start > "$TMP/step"
    sampler "$SERVER_PID" "$PHASE" &
    SAMPLER_PID=$!
    sleep 1
}

phase_compare() {
    local users="u1..u$CLIENTS"
    load lmtp --addr "$A_LMTP" --conns 4 --messages $((LIMIT / 4)) --rcpts bench \
        --corpus "$CORPUS" --limit "$LIMIT"
    step settle
    nb_settle "$CFG" "$SETTLE_MAX"
    load lmtp --addr "$A_LMTP" --conns 2 --messages $((PREFILL / 2)) --rcpts "$users" \
        --corpus "$CORPUS" --limit "$LIMIT"
    load pop3 --addr "$A_POP3" --conns "$CLIENTS" --users "$users"
    load mix --addr "$A_IMAP" --conns "$CLIENTS" --duration "$DURATION" --users "$users" \
        --pipelining off --corpus "$CORPUS" --limit "$LIMIT"
    load mix --addr "$A_IMAP" --conns "$CLIENTS" --duration "$DURATION" --users "$users" \
        --pipelining on --corpus "$CORPUS" --limit "$LIMIT"
    load append --addr "$A_IMAP" --conns "$CLIENTS" --messages "$APPENDS" --users "$users" \
        --corpus "$CORPUS" --limit "$LIMIT"
    load login --addr "$A_IMAP" --conns "$CLIENTS" --duration "$DURATION" --users "$users"
    load pop3 --addr "$A_POP3" --conns "$CLIENTS" --users "$users" --delete
}

# idleconn: the 3,000 LMTP messages, then one IMAP client reads 500 of them and stays
# in IDLE through the idle period (a mail client left open): the server gives its caches
# back while the connection lasts.
phase_idleconn() {
    load lmtp --addr "$A_LMTP" --conns 4 --messages $((LIMIT / 4)) --rcpts bench \
        --corpus "$CORPUS" --limit "$LIMIT"
    step "IMAP client, then IDLE"
    python3 - "$A_IMAP" <<'PY' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
f = s.makefile("rb")
f.readline()
for n, c in enumerate(["LOGIN bench pw", "SELECT INBOX", "FETCH 1:500 BODY.PEEK[]"]):
    tag = b"p%d" % n
    s.sendall(tag + b" " + c.encode() + b"\r\n")
    while True:
        line = f.readline()
        if not line or line.startswith(tag + b" "):
            break
        if line.rstrip().endswith(b"}"):
            f.read(int(line.rstrip()[:-1].rsplit(b"{", 1)[1]))
s.sendall(b"i IDLE\r\n")
f.readline()
time.sleep(3600)
PY
    IDLE_CLIENT_PID=$!
    sleep 5
}

phase_stress() {
    load stress --addr "$A_IMAP" --conns "$STRESS_CLIENTS" --duration "$STRESS_SECS" \
        --users "u1..u$STRESS_USERS" --size "$STRESS_SIZE" --corpus "$CORPUS" --limit "$LIMIT"
    grep -E '^cmd (append|fetch_body|expunge) ' <<< "$LAST_OUT" | sed 's/^/      /' >&2 || true
}

# wake_session ADDR USER: times one IMAP session of USER (LOGIN, SELECT INBOX, UID FETCH
# 1:* (FLAGS), UID FETCH 1:20 BODY.PEEK[], UID SEARCH SUBJECT, LOGOUT) twice in a row;
# prints both in ms.
wake_session() {
    python3 - "$1" "$2" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
user = sys.argv[2]
def session():
    t0 = time.monotonic()
    s = socket.create_connection((host, int(port)))
    f = s.makefile("rb")
    f.readline()
    for n, c in enumerate(["LOGIN %s pw" % user, "SELECT INBOX", "UID FETCH 1:* (FLAGS)",
                           "UID FETCH 1:20 BODY.PEEK[]", "UID SEARCH SUBJECT the", "LOGOUT"]):
        tag = b"w%d" % n
        s.sendall(tag + b" " + c.encode() + b"\r\n")
        while True:
            line = f.readline()
            if not line:
                raise SystemExit("connection closed")
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise SystemExit(line.decode(errors="replace").strip())
                break
            if line.rstrip().endswith(b"}"):
                f.read(int(line.rstrip()[:-1].rsplit(b"{", 1)[1]))
    s.close()
    return (time.monotonic() - t0) * 1000
print("%.1f ms, again %.1f ms" % (session(), session()))
PY
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

declare -A SUMMARY
for PHASE in $PHASES; do
    echo "== phase $PHASE" >&2
    start_server
    start=$(rss_kib "$SERVER_PID")
    t_load=$SECONDS
    "phase_$PHASE"
    load_s=$((SECONDS - t_load))
    end=$(rss_kib "$SERVER_PID")
    [ -n "${SMAPS_OUT:-}" ] && cp "/proc/$SERVER_PID/smaps" "$SMAPS_OUT.$PHASE"
    read -r n_arenas arena_rss <<< "$(arenas "$SERVER_PID")"
    threads=$(awk '/^Threads/ { print $2 }' "/proc/$SERVER_PID/status")
    rollup=$(awk '/^(Anonymous|Rss):/ { printf "%s %s  ", $1, $2 }' "/proc/$SERVER_PID/smaps_rollup")
    step idle
    sleep "$IDLE_SECS"
    after=$(rss_kib "$SERVER_PID")
    if [ -n "${IDLE_CLIENT_PID:-}" ]; then
        kill "$IDLE_CLIENT_PID" 2>/dev/null || true
        IDLE_CLIENT_PID=
    fi
    # What the quiet server's first client pays for what it gave back (caches, code
    # pages): one session of a user with mail (bench: the 3,000 LMTP messages), twice.
    step wake
    wake_user=bench
    [ "$PHASE" = stress ] && wake_user=u1
    wake=$(wake_session "$A_IMAP" "$wake_user") || wake=failed
    echo "   first session after idle: $wake; VmRSS after it $(mib "$(rss_kib "$SERVER_PID")") MiB" >&2
    kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
    nb_stop
    peak=$(awk -v p="$PHASE" '$1 == p && $3 > m { m = $3 } END { print m + 0 }' "$TMP/samples")
    [ "$end" -gt "$peak" ] && peak=$end
    SUMMARY[$PHASE]="$(mib "$start") $(mib "$peak") $(mib "$end") $(mib "$after") $load_s"
    echo "   end of load: threads $threads, glibc arenas $n_arenas ($(mib "$arena_rss") MiB resident), $rollup" >&2
    if [ "$PHASE" = stress ]; then
        echo "   stress: VmRSS MiB every 30 s of load"
        awk -v p=stress '$1 == p && $4 == "loadgen" && $2 - last >= 30 {
                last = $2; printf "      %4d s %7.1f\n", $2, $3 / 1024 }' "$TMP/samples"
        # Flatness: the second half of the load, least squares slope and range.
        awk -v p=stress -v d="$STRESS_SECS" '$1 == p && $4 == "loadgen" && $2 >= d / 2 {
                n++; x += $2; y += $3; xx += $2 * $2; xy += $2 * $3
                if (min == "" || $3 < min) min = $3; if ($3 > max) max = $3 }
            END { if (n > 2) printf "   second half: %d samples, %.1f..%.1f MiB, slope %.2f MiB/min\n",
                n, min / 1024, max / 1024, (n * xy - x * y) / (n * xx - x * x) * 60 / 1024 }' \
            "$TMP/samples"
    fi
done

echo
echo "VmRSS MiB; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %8s %8s %8s %12s %8s\n' phase start peak end "end+${IDLE_SECS}s" load_s
for PHASE in $PHASES; do
    # shellcheck disable=SC2086
    printf '%-10s %8s %8s %8s %12s %8s\n' "$PHASE" ${SUMMARY[$PHASE]}
done
