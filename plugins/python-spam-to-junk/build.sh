#!/usr/bin/env bash
# Builds the Python spam-to-junk filter into a WebAssembly component.
#
#   plugins/python-spam-to-junk/build.sh OUT.wasm
#
# Installs componentize-py (pinned below) into a virtualenv in the tool cache:
# $NESTBOX_TOOL_CACHE, default plugins/python-spam-to-junk/.tools (gitignored).
# Needs python3 with the venv module and pip.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT.wasm" >&2
    exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
wit="$here/../../wit"
out="$1"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cache="${NESTBOX_TOOL_CACHE:-$here/.tools}"
venv="$cache/componentize-py-$COMPONENTIZE_PY_VERSION"

if ! command -v python3 >/dev/null 2>&1; then
    echo "error: python3 not found; install Python 3 with venv and pip" \
        "(Debian/Ubuntu: apt-get install python3 python3-venv python3-pip)" >&2
    exit 3
fi
if [ ! -x "$venv/bin/componentize-py" ]; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        echo "error: python3 cannot create a virtualenv with pip; install the venv module" \
            "(Debian/Ubuntu: apt-get install python3-venv python3-pip)" >&2
        exit 3
    fi
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# componentize-py generates the bindings (package wit_world) on the fly.
"$venv/bin/componentize-py" -d "$wit" -w filter-plugin componentize \
    -p "$here" app -o "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "built $out ($(wc -c <"$out") bytes)"
