#!/usr/bin/env bash
# nestbox and Dovecot side by side on this machine, same corpus, same client.
#
#   benches/compare.sh [CORPUS_DIR]
#
# Installs Dovecot from Debian packages if it is missing (apt-get, needs root), builds the
# nestbox release binary and the load generator (benches/loadgen.rs), then RUNS times:
# start a fresh nestbox, run every workload, stop it; start a fresh Dovecot (maildir, fsync
# on save: its default `mail_fsync = optimized`), run the same workloads, stop it. Prints
# the medians of every figure and the nestbox/Dovecot ratio. Both servers listen on
# 127.0.0.1 only and keep everything in one temp dir that is deleted at the end. Only the
# processes started here are stopped.
#
# Knobs (environment): RUNS=3 CLIENTS=10 DURATION=15 (s, mix and login) LIMIT=3000 (corpus
# messages for the LMTP run and the disk figure) PREFILL=100 (messages per mix/POP3 user,
# delivered with one multi-recipient LMTP transaction each) APPENDS=50 (per APPEND client)
# IDLE_CONNS=1000 SERVERS="nestbox dovecot" SKIP_NESTBOX="" / SKIP_DOVECOT="" (workload
# names to skip on one server: lmtp disk multi pop3 mix mix_pipe append login pop3_del
# idle idle_tls) DC_SCHEME=SHA512-CRYPT (password hash for Dovecot) DC_HASH= (Dovecot's
# stored hash as its passwd-file takes it, instead of one of DC_SCHEME; e.g. an argon2id
# hash of nestbox's cost for a like-for-like login) DC_PORT=21400 (Dovecot
# uses DC_PORT..DC_PORT+3) RAW_OUT=file (keep the per-run figures) KEEP_TMP=1
# SETTLE_MAX=180 (s to wait for nestbox's packer before the disk figure) NB_BIN=path
# LOAD_BIN=path (use these
# nestbox and loadgen binaries instead of building them).
#
# Small-box profile (SMALL_BOX=1): each server and every process it starts runs on one
# CPU (`taskset -c 0`) inside a memory cgroup of its own limited to SMALL_BOX_MIB=128 MiB
# (cgroup v2 `memory.max`, else cgroup v1 `memory.limit_in_bytes`; needs root; without
# either only the CPU is limited, and the script says so). Per server and run it adds
# `box_peak_kib` (the cgroup's peak: process memory and the page cache of its files) and
# `box_oom` (times the limit was hit: v2 `oom_kill`, v1 `failcnt`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-10}
DURATION=${DURATION:-15}
LIMIT=${LIMIT:-3000}
PREFILL=${PREFILL:-100}
APPENDS=${APPENDS:-50}
IDLE_CONNS=${IDLE_CONNS:-1000}
SERVERS=${SERVERS:-nestbox dovecot}
SKIP_NESTBOX=${SKIP_NESTBOX:-}
SKIP_DOVECOT=${SKIP_DOVECOT:-}
DC_PORT=${DC_PORT:-21400}
# Dovecot's auth cache keeps the stored hash and verifies every login against it, so with
# ARGON2ID (libsodium: 64 MiB, 3 passes) it manages ~5 logins/s here. SHA512-CRYPT is the
# scheme most Dovecot set-ups use; nestbox keeps argon2id and its 60 s login cache.
DC_SCHEME=${DC_SCHEME:-SHA512-CRYPT}
SETTLE_MAX=${SETTLE_MAX:-180}
SMALL_BOX=${SMALL_BOX:-}
SMALL_BOX_MIB=${SMALL_BOX_MIB:-128}
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
CORPUS=$(cd "$CORPUS" && pwd)
USERS="u1..u$CLIENTS"

# --- Dovecot -----------------------------------------------------------------------------
if [[ " $SERVERS " == *" dovecot "* ]] && { ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/lmtp ] || [ ! -x /usr/lib/dovecot/pop3 ]; }; then
    echo "== installing Dovecot (Debian packages)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends dovecot-core dovecot-imapd \
        dovecot-pop3d dovecot-lmtpd >&2
fi

# --- build -------------------------------------------------------------------------------
cd "$ROOT"
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
nb_build "$ROOT" || exit 2

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-compare.XXXXXX")
chmod 755 "$TMP"   # Dovecot's unprivileged processes must reach their dirs
RAW=$TMP/results
: > "$RAW"
SERVER_PID=
BOX= BOX_V=
cleanup() {
    nb_stop
    [ -n "$BOX" ] && rmdir "$BOX" 2>/dev/null
    [ -n "${RAW_OUT:-}" ] && cp "$RAW" "$RAW_OUT"
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The small box: $BOX_EXEC runs a command on CPU 0 inside the memory cgroup $BOX.
BOX_EXEC=
if [ -n "$SMALL_BOX" ]; then
    if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
        BOX=/sys/fs/cgroup/nestbox-box-$$ BOX_V=2
        mkdir "$BOX" && echo $((SMALL_BOX_MIB << 20)) > "$BOX/memory.max"
    elif [ -w /sys/fs/cgroup/memory ]; then
        BOX=/sys/fs/cgroup/memory/nestbox-box-$$ BOX_V=1
        mkdir "$BOX" && echo $((SMALL_BOX_MIB << 20)) > "$BOX/memory.limit_in_bytes"
    else
        echo "no writable memory cgroup: the small box limits the CPU only" >&2
    fi
    BOX_EXEC=$TMP/box-exec
    {
        echo '#!/bin/sh'
        [ -n "$BOX" ] && echo "echo \$\$ > $BOX/cgroup.procs"
        echo 'exec taskset -c 0 "$@"'
    } > "$BOX_EXEC"
    chmod +x "$BOX_EXEC"
    # nb_serve starts "$NB": the wrapper keeps the server's PID (exec all the way).
    printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$BOX_EXEC" "$NB" > "$TMP/nb-box"
    chmod +x "$TMP/nb-box"
    NB=$TMP/nb-box
fi
# The cgroup's peak memory (KiB) and how often its limit was hit since box_reset.
box_stats() {
    case $BOX_V in
        2) echo "$(($(cat "$BOX/memory.peak" 2>/dev/null || echo 0) >> 10))" \
            "$(awk '$1 == "oom_kill" {print $2}' "$BOX/memory.events")" ;;
        1) echo "$(($(cat "$BOX/memory.max_usage_in_bytes") >> 10)) $(cat "$BOX/memory.failcnt")" ;;
        *) echo "- -" ;;
    esac
}
box_reset() {
    if [ "$BOX_V" = 1 ]; then
        echo 0 > "$BOX/memory.max_usage_in_bytes"
        echo 0 > "$BOX/memory.failcnt"
    fi
}

# 1,000 connections need more than 1,024 descriptors on both sides.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
CLK_TCK=$(getconf CLK_TCK)

# rss and pss (KiB) and cpu seconds of PID and all its descendants
tree_stats() {
    local pids p rss=0 pss=0 cpu=0 r s c
    pids=$(ps -eo pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2 } END {
            for (p in parent) { q = p; while (q != "" && q != 0 && q != 1) {
                if (q == root) { print p; break } q = parent[q] } } }')
    for p in $pids; do
        r=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        s=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        c=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        rss=$((rss + ${r:-0})) pss=$((pss + ${s:-0})) cpu=$((cpu + ${c:-0}))
    done
    echo "$rss $pss $(awk -v c="$cpu" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", c / t}')"
}

put() { echo "$SRV $1 $2" >> "$RAW"; }              # metric value
get() { sed -n "s/^$1: //p" <<< "$OUT" | head -1; }  # key from the last loadgen output
cmdf() {                                              # command field
    sed -n "s/^cmd $1 .*\b$2=\([0-9.]*\).*/\1/p" <<< "$OUT" | head -1
}
skip() {
    local list=$SKIP_NESTBOX
    [ "$SRV" = dovecot ] && list=$SKIP_DOVECOT
    [[ " $list " == *" $1 "* ]]
}
load() {
    echo "   [$SRV] loadgen $*" >&2
    OUT=$("$LOAD" "$@" --pid "$SERVER_PID") || { echo "$OUT" >&2; echo "loadgen failed" >&2; }
    grep -E '^(ops_per_s|errors|first_error|rss_per_conn|connections_held|cmd )' <<< "$OUT" |
        sed 's/^/      /' >&2 || true
}
wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

start_nestbox() {
    local dir=$TMP/$SRV-$RUN
    mkdir -p "$dir"
    CFG=$dir/config.ron
    cat > "$CFG" <<'EOF'
(data_dir: "data", hostname: "localhost",
 imap: (listen: ["127.0.0.1:0"], tls_listen: ["127.0.0.1:0"]),
 pop3: (listen: ["127.0.0.1:0"], tls_listen: []),
 managesieve: (listen: []),
 lmtp: (listen: ["127.0.0.1:0"], unix_socket: None),
 connections: (max_total: 100000, max_per_ip: 100000, max_per_user: 100000))
EOF
    # shellcheck disable=SC2046
    nb_serve "$CFG" "$dir" bench $(eval echo "u{1..$CLIENTS}") || exit 1
    DATA=$dir/data
}

# nestbox's disk figure: packing settled and compacted (benches/common.sh), du -sb
disk_nestbox() {
    nb_settle "$CFG" "$SETTLE_MAX"
    du -sb "$DATA" | cut -f1
}

DC_HASH=${DC_HASH:-}
start_dovecot() {
    local dir=$TMP/$SRV-$RUN
    mkdir -p "$dir/run" "$dir/mail" "$dir/state"
    chmod 755 "$dir"
    chown nobody:nogroup "$dir/mail"
    [ -n "$DC_HASH" ] || DC_HASH=$(doveadm pw -s "$DC_SCHEME" -p pw)
    for u in bench $(eval echo "u{1..$CLIENTS}"); do
        echo "$u:$DC_HASH::::::"
    done > "$dir/users"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
    cat > "$dir/dovecot.conf" <<EOF
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.info
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <$dir/cert.pem
ssl_key = <$dir/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
# nestbox remembers a successful login for 60 s (auth.cache_secs); the same here.
auth_cache_size = 10M
auth_cache_ttl = 60 s
mail_location = maildir:$dir/mail/%n/Maildir
mail_uid = nobody
mail_gid = nogroup
# mail_fsync = optimized (the default): fsync after saving mail, before the reply.
default_process_limit = 5000
default_client_limit = 20000
default_vsz_limit = 512M
passdb {
  driver = passwd-file
  args = $dir/users
}
userdb {
  driver = passwd-file
  args = $dir/users
  default_fields = home=$dir/mail/%n
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Archive {
    auto = create
  }
}
protocol imap {
  mail_max_userip_connections = 100000
}
protocol pop3 {
  mail_max_userip_connections = 100000
}
service imap-login {
  inet_listener imap {
    port = $DC_PORT
  }
  inet_listener imaps {
    port = $((DC_PORT + 1))
  }
}
service pop3-login {
  inet_listener pop3 {
    port = $((DC_PORT + 2))
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $((DC_PORT + 3))
  }
}
EOF
    $BOX_EXEC dovecot -c "$dir/dovecot.conf" -F > "$dir/serve.out" 2>&1 &
    SERVER_PID=$!
    A_IMAP=127.0.0.1:$DC_PORT A_IMAPS=127.0.0.1:$((DC_PORT + 1))
    A_POP3=127.0.0.1:$((DC_PORT + 2)) A_LMTP=127.0.0.1:$((DC_PORT + 3))
    for p in $DC_PORT $((DC_PORT + 1)) $((DC_PORT + 2)) $((DC_PORT + 3)); do
        wait_port "$p" || { cat "$dir/serve.out" "$dir/dovecot.log" >&2; exit 1; }
    done
    DATA=$dir/mail
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

run_server() {
    echo "== run $RUN: $SRV" >&2
    [ -n "$BOX" ] && box_reset
    "start_$SRV"
    sleep 1
    local m
    m=$(tree_stats "$SERVER_PID")
    put start_rss_kib "${m%% *}"
    m=${m#* }
    put start_pss_kib "${m%% *}"

    if ! skip lmtp; then
        load lmtp --addr "$A_LMTP" --conns 4 --messages $((LIMIT / 4)) --rcpts bench \
            --corpus "$CORPUS" --limit "$LIMIT"
        put lmtp4_msgs_s "$(cmdf deliver per_s)"
        put lmtp4_p50_ms "$(cmdf deliver p50_ms)"
        put lmtp4_p99_ms "$(cmdf deliver p99_ms)"
        put lmtp4_errors "$(get errors)"
        RAWB=$(get corpus_crlf_bytes)
        if ! skip disk; then
            local d
            if [ "$SRV" = nestbox ]; then d=$(disk_nestbox); else d=$(du -sb "$DATA/bench" | cut -f1); fi
            put disk_bytes "$d"
            put disk_per_raw "$(awk -v a="$d" -v b="$RAWB" 'BEGIN {printf "%.3f", a / b}')"
        fi
    fi
    if ! skip multi; then
        load lmtp --addr "$A_LMTP" --conns 2 --messages $((PREFILL / 2)) --rcpts "$USERS" \
            --corpus "$CORPUS" --limit "$LIMIT"
        put lmtp_multi_msgs_s "$(cmdf deliver per_s)"
        put lmtp_multi_errors "$(get errors)"
    fi
    if ! skip pop3; then
        load pop3 --addr "$A_POP3" --conns "$CLIENTS" --users "$USERS"
        put pop3_msgs_s "$(cmdf retr per_s)"
        put pop3_retr_p50_ms "$(cmdf retr p50_ms)"
        put pop3_errors "$(get errors)"
    fi
    if ! skip mix; then
        load mix --addr "$A_IMAP" --conns "$CLIENTS" --duration "$DURATION" --users "$USERS" \
            --pipelining off --corpus "$CORPUS" --limit "$LIMIT"
        put mix_ops_s "$(get ops_per_s)"
        put mix_errors "$(get errors)"
        for c in fetch_headers fetch_body store search move expunge idle; do
            put "mix_${c}_p50_ms" "$(cmdf "$c" p50_ms)"
        done
    fi
    if ! skip mix_pipe; then
        load mix --addr "$A_IMAP" --conns "$CLIENTS" --duration "$DURATION" --users "$USERS" \
            --pipelining on --corpus "$CORPUS" --limit "$LIMIT"
        put mix_pipe_ops_s "$(get ops_per_s)"
        put mix_pipe_errors "$(get errors)"
    fi
    if ! skip append; then
        load append --addr "$A_IMAP" --conns "$CLIENTS" --messages "$APPENDS" --users "$USERS" \
            --corpus "$CORPUS" --limit "$LIMIT"
        put append_msgs_s "$(cmdf append per_s)"
        put append_p50_ms "$(cmdf append p50_ms)"
        put append_p99_ms "$(cmdf append p99_ms)"
        put append_errors "$(get errors)"
    fi
    if ! skip login; then
        load login --addr "$A_IMAP" --conns "$CLIENTS" --duration "$DURATION" --users "$USERS"
        put login_per_s "$(cmdf login per_s)"
        put login_p50_ms "$(cmdf login p50_ms)"
        put login_errors "$(get errors)"
    fi
    if ! skip pop3_del; then
        load pop3 --addr "$A_POP3" --conns "$CLIENTS" --users "$USERS" --delete
        put pop3_del_msgs_s "$(cmdf retr per_s)"
        put pop3_del_errors "$(get errors)"
    fi
    m=$(tree_stats "$SERVER_PID")
    put end_rss_kib "${m%% *}"
    put cpu_total_s "${m##* }"
    if [ -n "$BOX" ]; then
        m=$(box_stats)
        put box_peak_kib "${m%% *}"
        put box_oom "${m##* }"
    fi
    # Memory per idle connection on a fresh server each time: memory freed by the
    # workloads above stays in the allocator and would hide what connections take.
    local kind
    for kind in idle idle_tls; do
        skip "$kind" && continue
        stop_server
        RUN=$RUN-$kind "start_$SRV"
        sleep 1
        local addr=$A_IMAP tls=()
        [ "$kind" = idle_tls ] && addr=$A_IMAPS tls=(--tls)
        load idle --addr "$addr" "${tls[@]}" --conns "$IDLE_CONNS" --users bench
        put "${kind}_held" "$(get connections_held)"
        put "${kind}_rss_per_conn_kib" "$(get rss_per_conn_kib)"
        put "${kind}_pss_per_conn_kib" "$(get pss_per_conn_kib)"
        put "${kind}_server_rss_kib" "$(get server_rss_kib)"
        put "${kind}_errors" "$(get errors)"
    done
    stop_server
}

for RUN in $(seq "$RUNS"); do
    for SRV in $SERVERS; do
        run_server
    done
done

# --- table of medians --------------------------------------------------------------------
echo
echo "corpus: $CORPUS (LIMIT=$LIMIT), runs: $RUNS, clients: $CLIENTS, duration: ${DURATION}s," \
    "idle connections: $IDLE_CONNS, $(nproc) CPUs${SMALL_BOX:+, small box: CPU 0, ${SMALL_BOX_MIB} MiB}"
awk '
    { v[$2, $1] = v[$2, $1] " " $3; if (!($2 in seen)) { seen[$2] = 1; order[n++] = $2 } }
    function median(s,   a, k, i, j, t) {
        k = split(s, a, " "); if (k == 0) return ""
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
            if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    END {
        printf "%-28s %14s %14s %10s\n", "metric (median)", "nestbox", "dovecot", "nb/dc"
        for (i = 0; i < n; i++) {
            m = order[i]; a = median(v[m, "nestbox"]); b = median(v[m, "dovecot"])
            r = (a != "" && b != "" && b + 0 != 0) ? sprintf("%.2f", a / b) : "-"
            printf "%-28s %14s %14s %10s\n", m, a == "" ? "-" : a, b == "" ? "-" : b, r
        }
    }' "$RAW"
