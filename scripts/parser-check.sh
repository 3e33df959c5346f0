#!/usr/bin/env bash
# Reads nestbox's IMAP answers for the whole corpus with two independent, strict client
# parsers and checks what they read against the messages themselves:
#   imapflow (npm; scripts/parser_check.cjs) and go-imap v1 (Debian; scripts/parser_check.go).
# Each fetches every message (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE
# BODY.PEEK[], then BODY.PEEK[1], BODY.PEEK[HEADER.FIELDS (From Subject)], BINARY.PEEK[1],
# and every part of 300 messages) and runs a short mailbox session (LIST, STATUS, SELECT
# with CONDSTORE, SEARCH, SORT, STORE, COPY, MOVE, EXPUNGE, IDLE while another connection
# APPENDs); scripts/parser_check.py APPENDs the corpus, says what Python's `email` reads
# from each file and prints the summary (messages checked, failures by kind).
#
#   scripts/parser-check.sh [CORPUS_DIR]      # default: ../shared/corpus/spamassassin-dev
#
# Installs what is missing (as root): Node's imapflow into $PC_NODE (default
# /tmp/parsers), golang-go and golang-github-emersion-go-imap-dev (built offline, GOPATH
# style). Starts nestbox (NB_BIN, or a release build) on a free loopback port with a temp
# data dir; stops it and removes the dir at the end. Failures, one a line, are kept in
# $PC_OUT/failures.txt when PC_OUT is set. Exit status 1 when anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
corpus=${1:-$repo/../shared/corpus/spamassassin-dev}
node_dir=${PC_NODE:-/tmp/parsers}

# --- what the parsers need
root() { [ "$(id -u)" = 0 ] || { echo "parser-check: install $* first" >&2; exit 1; }; }
if ! command -v node >/dev/null; then
    root nodejs npm
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
if [ ! -d "$node_dir/node_modules/imapflow" ]; then
    mkdir -p "$node_dir"
    (cd "$node_dir" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --no-audit --no-fund imapflow >/dev/null)
fi
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/emersion/go-imap ]; then
    root golang-go golang-github-emersion-go-imap-dev
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-github-emersion-go-imap-dev
fi
if [ -z "${NB_BIN:-}" ]; then
    cargo build --release --quiet --bin nestbox
    NB_BIN=${CARGO_TARGET_DIR:-$repo/target}/release/nestbox
fi

work=$(mktemp -d)
out=${PC_OUT:-$work/out}
mkdir -p "$out"
nb_pid=
cleanup() {
    if [ -n "$nb_pid" ]; then kill -TERM "$nb_pid" 2>/dev/null || true; wait "$nb_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# go-imap v1 from Debian's source packages, offline
mkdir -p "$work/gopath"
cp "$repo/scripts/parser_check.go" "$work/"
(cd "$work" && GO111MODULE=off GOPATH="$work/gopath:/usr/share/gocode" GOCACHE="$work/gocache" \
    go build -o parser_check parser_check.go)

# --- nestbox (IMAP only, user alice)
# shellcheck source=scripts/loopback-common.sh
. "$repo/scripts/loopback-common.sh"
port=$(free_port)
start_nestbox_imap "$work/nb" "$port" check-pw
wait_port "$port" || { cat "$work/nb/serve.log" >&2; exit 1; }
echo "nestbox $("$NB_BIN" --version | cut -d' ' -f2), imapflow $(node -p "require('$node_dir/node_modules/imapflow/package.json').version"), go-imap $(dpkg-query -W -f='${Version}' golang-github-emersion-go-imap-dev); corpus $corpus"

# --- the corpus, the two parsers, the summary
python3 "$repo/scripts/parser_check.py" prepare "$port" alice check-pw "$corpus" "$out"
NODE_PATH="$node_dir/node_modules" node "$repo/scripts/parser_check.cjs" "$port" alice check-pw "$out"
"$work/parser_check" "$port" alice check-pw "$out"
python3 "$repo/scripts/parser_check.py" compare "$out" imapflow go-imap
