#!/usr/bin/env bash
# IMAP LOGIN+LOGOUT pairs per second against the release binary, with the default argon2id
# parameters (19 MiB, 2 passes, 1 lane), with and without the login cache.
#
#   benches/login.sh [SECONDS] [CONNS]
#
# For cache_secs 60 (default) and 0: a fresh temp data dir and config, user `bench`,
# `nestbox serve`, then benches/login_client.py for SECONDS (default 10) with CONNS
# (default 4) parallel clients from 127.0.0.1. The throttle never triggers (every login
# is right); connections.max_per_ip is raised so that the clients' TIME_WAIT churn is not
# what is measured. Only the server started here is stopped; the temp dir is removed.
# NESTBOX=path uses that binary instead of building.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
SECONDS_RUN=${1:-10}
CONNS=${2:-4}
cd "$ROOT"
if [ -n "${NESTBOX:-}" ]; then
    NB=$NESTBOX
else
    echo "== building (release)" >&2
    cargo build --release --quiet
    NB=${CARGO_TARGET_DIR:-$ROOT/target}/release/nestbox
fi
command -v python3 >/dev/null || { echo "python3 is needed for benches/login_client.py" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-login.XXXXXX")
SERVER_PID=
cleanup() {
    nb_stop
    rm -rf "$TMP"
}
trap cleanup EXIT

run_one() {
    local cache=$1 dir="$TMP/cache$1"
    mkdir -p "$dir"
    cat > "$dir/config.ron" <<CFG
(data_dir: "data", imap: (listen: ["127.0.0.1:0"], tls_listen: []),
 pop3: (listen: [], tls_listen: []), managesieve: (listen: []), lmtp: (listen: [], unix_socket: None),
 auth: (cache_secs: $cache), connections: (max_per_ip: 1000))
CFG
    nb_serve "$dir/config.ron" "$dir" bench || exit 1
    [ -n "$A_IMAP" ] || { echo "server did not report an IMAP port" >&2; exit 1; }
    echo "== cache_secs $cache, $CONNS clients, ${SECONDS_RUN}s" >&2
    python3 "$ROOT/benches/login_client.py" "${A_IMAP%:*}" "${A_IMAP##*:}" bench pw \
        "$SECONDS_RUN" "$CONNS" | sed "s/^/cache_secs=$cache /"
    nb_stop
}

run_one 60
run_one 0
