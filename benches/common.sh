# Shared by the benchmark scripts (sourced, not run): building the binaries and starting
# nestbox on a config.

# nb_bench_exe ROOT NAME: builds the bench target benches/NAME.rs (release) and prints
# the path of its executable.
nb_bench_exe() {
    (cd "$1" && cargo bench --bench "$2" --no-run --message-format=json 2>/dev/null) |
        sed -n "s/.*\"executable\":\"\([^\"]*$2[^\"]*\)\".*/\1/p" | tail -1
}

# nb_build ROOT [BENCH]: builds the release binary and the load generator BENCH (default
# loadgen, benches/loadgen.rs), unless NB_BIN and LOAD_BIN name binaries to use (an older
# build to compare with, say). Sets NB and LOAD.
nb_build() {
    local bench=${2:-loadgen}
    if [ -n "${NB_BIN:-}" ] && [ -n "${LOAD_BIN:-}" ]; then
        NB=$NB_BIN LOAD=$LOAD_BIN
    else
        echo "== building (release)" >&2
        (cd "$1" && cargo build --release --quiet)
        LOAD=$(nb_bench_exe "$1" "$bench")
        NB=${CARGO_TARGET_DIR:-$1/target}/release/nestbox
    fi
    [ -x "$LOAD" ] || { echo "could not build benches/$bench.rs" >&2; return 2; }
    [ -x "$NB" ] || { echo "no nestbox binary at $NB" >&2; return 2; }
}

# nb_config FILE DATA_DIR: writes the config the load scripts share (FULL_TEXT_INDEX=Off,
# Headers or Full: `store.full_text_index`, Headers by default as in the server): IMAP, POP3 and LMTP
# on 127.0.0.1 ephemeral ports, no TLS listeners, no ManageSieve, and connection limits
# out of the load generator's way. STORE_OPTS adds keys to `store`, e.g. "cache_mib: 16".
nb_config() {
    cat > "$1" <<EOF
(data_dir: "$2", hostname: "localhost",
 imap: (listen: ["127.0.0.1:0"], tls_listen: []),
 pop3: (listen: ["127.0.0.1:0"], tls_listen: []),
 managesieve: (listen: []),
 store: (full_text_index: ${FULL_TEXT_INDEX:-Headers}${STORE_OPTS:+, $STORE_OPTS}),
 lmtp: (listen: ["127.0.0.1:0"], unix_socket: None),
 connections: (max_total: 100000, max_per_ip: 100000, max_per_user: 100000))
EOF
}

# nb_serve CONFIG DIR USER...: adds the users (password "pw"), starts `$NB serve` on
# CONFIG with its output in DIR/serve.out and DIR/serve.err, and waits until it is ready
# (at most 30 s: the first start compiles the config's plugins). Sets SERVER_PID and the
# addresses it listens on: A_IMAP A_IMAPS A_POP3 A_LMTP (HOST:PORT, empty for a protocol
# it does not serve).
nb_serve() {
    local cfg=$1 dir=$2 u
    shift 2
    for u in "$@"; do
        printf 'pw\n' | "$NB" --config "$cfg" user add "$u" --password-stdin >/dev/null
    done
    "$NB" --config "$cfg" serve > "$dir/serve.out" 2> "$dir/serve.err" &
    SERVER_PID=$!
    for _ in $(seq 300); do
        grep -q '^ready' "$dir/serve.out" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/serve.err" >&2; return 1; }
        sleep 0.1
    done
    grep -q '^ready' "$dir/serve.out" || { echo "nestbox did not get ready in 30 s" >&2; return 1; }
    A_IMAP=$(nb_port "$dir" imap) A_IMAPS=$(nb_port "$dir" imaps)
    A_POP3=$(nb_port "$dir" pop3) A_LMTP=$(nb_port "$dir" lmtp)
}

nb_port() {
    sed -n "s/^listening $2 \(127\.0\.0\.1:[0-9]*\).*/\1/p" "$1/serve.out" | head -1
}

# nb_stop: stops the server nb_serve started (SERVER_PID), if it still runs, and waits.
nb_stop() {
    if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}

# nb_settle CONFIG MAX_SECONDS: waits until nestbox's packer has packed what is loose
# (it packs the tail after 2 s without deliveries; under 32 KiB of the loose table,
# loose_data, may stay) and the compressed total has not changed for 3 polls, at most
# MAX_SECONDS; then compacts, trying again while a transaction makes compaction give
# up. Reports on stderr; sets NB_SETTLED (seconds waited).
nb_settle() {
    local cfg=$1 max=$2 t0=$SECONDS prev=-1 cur loose same=0 said tries
    while [ $((SECONDS - t0)) -lt "$max" ]; do
        read -r cur loose <<< "$("$NB" --config "$cfg" stats | awk '
            /^store: / { sub(/.* raw bytes, /, ""); c = $1 }
            $1 == "table" && $2 == "loose_data" { l = $3 }
            END { print c + 0, l + 0 }')"
        if [ "$cur" = "$prev" ] && [ "$loose" -lt 32768 ]; then
            same=$((same + 1))
        else
            same=0
        fi
        [ "$same" -ge 3 ] && break
        prev=$cur
        sleep 1
    done
    NB_SETTLED=$((SECONDS - t0))
    echo "   settled after $NB_SETTLED s: compressed $cur, loose $loose" >&2
    for tries in 1 2 3 4 5; do
        said=$("$NB" --config "$cfg" compact 2>&1) || said="failed: $said"
        [ "$said" = compacted ] && break
        sleep 1
    done
    echo "   compact: $said (attempt $tries)" >&2
}

# nb_gen_mbox CORPUS OUT SIZE_MB [COUNT]: writes an mboxrd file of about SIZE_MB MiB to
# OUT (or of exactly COUNT messages, when given) by repeating the corpus messages with
# From_ lines. Every copy gets a unique Message-ID and an `X-Bench-Copy:` header, so no
# copy is byte-identical to another and content dedup cannot hide the cost.
nb_gen_mbox() {
    PYTHONPATH=$(dirname "${BASH_SOURCE[0]}") python3 - "$1" "$2" "$3" "${4:-0}" <<'PY'
import re, sys
from corpus import without_message_id
corpus, out, size_mb, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
target = size_mb << 20
msgs = []
for name, text in without_message_id(corpus):
    # mboxrd quoting: ^>*From  gets one more '>'.
    text = re.sub(rb'(?m)^(>*From )', rb'>\1', text)
    msgs.append((name.split('.')[0].encode(), text))
written, copy, n = 0, 0, 0
done = lambda: n >= count if count else written >= target
with open(out, 'wb', buffering=1 << 20) as f:
    while not done():
        for tag, text in msgs:
            chunk = (b'From bench@example.org Sat Jan  5 12:00:00 2002\n'
                     b'Message-ID: <%d.%s@bench.nestbox>\n'
                     b'X-Bench-Copy: %d\n' % (copy, tag, copy)) + text + b'\n'
            f.write(chunk)
            written += len(chunk)
            n += 1
            if done():
                break
        copy += 1
print(f"mbox: {written} bytes, {n} messages, {copy} passes over {len(msgs)}", file=sys.stderr)
PY
}
