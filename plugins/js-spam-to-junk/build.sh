#!/usr/bin/env bash
# Builds the JavaScript spam-to-junk filter into a WebAssembly component.
#
#   plugins/js-spam-to-junk/build.sh OUT.wasm
#
# Installs componentize-js (pinned in package.json / package-lock.json) with `npm ci`
# into the tool cache: $NESTBOX_TOOL_CACHE, default plugins/js-spam-to-junk/.tools
# (gitignored). Needs node and npm.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT.wasm" >&2
    exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
wit="$here/../../wit"
out="$1"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cache="${NESTBOX_TOOL_CACHE:-$here/.tools}"
tools="$cache/js-spam-to-junk"

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool not found; install Node.js 18 or newer with npm" \
            "(Debian/Ubuntu: apt-get install nodejs npm)" >&2
        exit 3
    fi
done
# Reinstall when the lock file changed since the last install.
if [ ! -x "$tools/node_modules/.bin/componentize-js" ] \
    || ! cmp -s "$here/package-lock.json" "$tools/package-lock.json"; then
    rm -rf "$tools"
    mkdir -p "$tools"
    cp "$here/package.json" "$here/package-lock.json" "$tools/"
    (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
fi

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# -d http fetch-event: the host links WASI preview 2 without wasi:http.
"$tools/node_modules/.bin/componentize-js" "$here/app.js" --wit "$wit" \
    --world-name filter-plugin -d http fetch-event -o "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "built $out ($(wc -c <"$out") bytes)"
