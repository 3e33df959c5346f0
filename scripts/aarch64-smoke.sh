#!/usr/bin/env bash
# Cross-builds nestbox for aarch64-unknown-linux-gnu with Debian's gcc cross toolchain and
# runs a smoke test of the aarch64 binary under qemu-user: start the server, one LMTP
# delivery, IMAP FETCH, POP3 RETR, and a filter plugin call (spam-to-junk files a marked
# message into Junk). Prints the stripped binary sizes of both architectures.
#
#   scripts/aarch64-smoke.sh                 build (release) and smoke-test
#   SKIP_BUILD=1 scripts/aarch64-smoke.sh    smoke-test an existing build
#   SMOKE_NATIVE=1 scripts/aarch64-smoke.sh  the same smoke test on this machine's
#                                            target/debug/nestbox (checks the script)
#
# Build outputs go to $CARGO_TARGET_DIR (default target/cross, apart from the usual
# target/ so a long cross build does not hold the build lock of everyday work).
# Needs: rustup, python3; as root it installs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross
# and qemu-user when they are missing. Docs: docs/aarch64.md.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target/cross}"

missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
        echo "aarch64-smoke: install ${missing[*]} first (Debian packages)" >&2
        exit 1
    fi
fi
rustup target add "$target" >/dev/null 2>&1 || rustup target add "$target"
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar

bin="$CARGO_TARGET_DIR/$target/release/nestbox"
runner=(qemu-aarch64 -L "$sysroot")
if [ "${SMOKE_NATIVE:-0}" = 1 ]; then
    bin="${NESTBOX_BIN:-$repo/target/debug/nestbox}"
    runner=()
elif [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "== cargo build --release --target $target"
    start=$(date +%s)
    cargo build --locked --release --target "$target" --bin nestbox
    echo "build took $(( $(date +%s) - start )) s"
fi
[ -x "$bin" ] || { echo "aarch64-smoke: no binary at $bin" >&2; exit 1; }

echo "== plugin (wasm32-wasip2)"
cargo build --locked --release --target wasm32-wasip2 \
    --manifest-path plugins/spam-to-junk/Cargo.toml \
    --target-dir "$CARGO_TARGET_DIR/wasm-plugins" -q
plugin="$CARGO_TARGET_DIR/wasm-plugins/wasm32-wasip2/release/spam_to_junk.wasm"

work=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== binary"
file "$bin" | sed "s|$repo/||"
if [ ${#runner[@]} -gt 0 ]; then
    aarch64-linux-gnu-strip -o "$work/nestbox" "$bin"
    printf 'aarch64 stripped: %s bytes\n' "$(stat -c %s "$work/nestbox")"
    x86="${X86_BIN:-$repo/target/release/nestbox}"
    if [ -x "$x86" ]; then
        strip -o "$work/nestbox-x86_64" "$x86"
        printf 'x86_64 stripped:  %s bytes (%s)\n' "$(stat -c %s "$work/nestbox-x86_64")" "${x86#"$repo"/}"
    fi
    echo "== under qemu: $(qemu-aarch64 --version | head -1)"
else
    cp "$bin" "$work/nestbox"
    echo "== native (SMOKE_NATIVE=1)"
fi

run() { "${runner[@]}" "$work/nestbox" --config "$work/config.ron" "$@"; }
cp "$plugin" "$work/spam_to_junk.wasm"
cat > "$work/config.ron" <<RON
(
    hostname: "smoke.example",
    data_dir: "data",
    imap: (listen: ["127.0.0.1:0"], tls_listen: []),
    pop3: (listen: ["127.0.0.1:0"], tls_listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: None),
    auth: (argon2: (memory_kib: 1024, iterations: 1, parallelism: 1)),
    plugins: [
        (name: "junk", path: "spam_to_junk.wasm", hooks: [Filter],
         settings: {"folder": "Junk", "keyword": "\$Junk"}),
    ],
)
RON

run --version
echo "smoke-pw" | run user add smoke --password-stdin
(cd "$work" && exec "${runner[@]}" "$work/nestbox" --config "$work/config.ron" serve \
    >"$work/serve.out" 2>"$work/serve.log") &
server=$!
start=$(date +%s)
until grep -qx ready "$work/serve.out" 2>/dev/null; do
    if ! kill -0 "$server" 2>/dev/null || [ $(( $(date +%s) - start )) -gt 300 ]; then
        echo "aarch64-smoke: server did not start" >&2
        cat "$work/serve.out" "$work/serve.log" >&2
        exit 1
    fi
    sleep 1
done
echo "server ready after $(( $(date +%s) - start )) s"
addr() { sed -n "s/^listening $1 //p" "$work/serve.out" | head -1; }
python3 scripts/smoke_client.py --lmtp "$(addr lmtp)" --imap "$(addr imap)" --pop3 "$(addr pop3)" \
    --user smoke --password smoke-pw
run plugin list | sed 's/^/plugin list: /'
kill -TERM "$server"
start=$(date +%s)
wait "$server" && status=0 || status=$?
server=
echo "server stopped on SIGTERM in $(( $(date +%s) - start )) s, exit $status"
[ "$status" = 0 ]
echo "smoke test passed"
