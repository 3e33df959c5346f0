#!/usr/bin/env bash
# End-to-end check of ManageSieve with a real webmail: Roundcube's managesieve plugin,
# driven in headless Chromium, creates the filter "From contains X -> Move to folder Y",
# then mail delivered over LMTP must be filed by the Sieve plugin as that filter says.
# Not run in CI (it needs Roundcube, PHP and Chromium); docs/sieve.md ("Roundcube") has
# the last recorded run.
#
#   scripts/roundcube-sieve.sh               build, run, screenshots to docs/screenshots/
#   NB_BIN=path/to/nestbox SIEVE_WASM=path/to/sieve.wasm scripts/roundcube-sieve.sh
#                                            use existing builds
#   SHOTS=/some/dir scripts/roundcube-sieve.sh   screenshots elsewhere
#   RC_TLS=1 scripts/roundcube-sieve.sh     Roundcube uses STARTTLS (tls://) for IMAP and
#                                            ManageSieve instead of plain text on loopback
#   DEBUG_DIR=/some/dir scripts/roundcube-sieve.sh
#                                            keep the logs there (nestbox's, Roundcube's
#                                            ManageSieve and IMAP transcripts, php -S), and
#                                            a screenshot and the HTML of a failed step
#
# Steps:
# 1. As root, installs what is missing from Debian's packages: roundcube-core,
#    roundcube-plugins (managesieve), roundcube-sqlite3, php-cli (+ php-cgi so that
#    apt does not pull in Apache for `php`), chromium, nodejs/npm; then playwright-core
#    from the npm registry into ~/.cache/nestbox-roundcube (1.65.2, or 1.61.1 under
#    Node 18, Debian 12's; PLAYWRIGHT_CORE=VERSION for another). No browser download:
#    it drives Debian's /usr/bin/chromium. (Steps 1 and 3: scripts/roundcube-common.sh.)
# 2. Builds nestbox (release) and plugins/sieve for wasm32-wasip2, unless NB_BIN /
#    SIEVE_WASM are given; starts nestbox on a temp data dir with IMAP, LMTP and
#    ManageSieve on ephemeral loopback ports and the Sieve plugin (hooks: [Sieve]); adds
#    the user alice (password "pw") and creates her folder Y over IMAP.
# 3. Serves Debian's Roundcube tree with `php -S` on a free loopback port, with its own
#    config in the temp dir (ROUNDCUBE_CONFIG_DIR, which Debian's Roundcube reads): SQLite
#    database, logs and temp files in the temp dir, imap_host and managesieve_host on
#    nestbox's ports, plugins = managesieve. No system config file is touched.
# 4. scripts/roundcube_sieve_ui.cjs logs in, opens Settings > Filters, creates the filter
#    and saves it (screenshots roundcube-sieve-1-form.png, -2-saved.png), reloads the page
#    and reads the filter back; then saves a script with a syntax error in the raw editor
#    (Actions > Edit filter set), which must be refused with the line marked
#    (-3-error.png). The script Roundcube wrote must be active in nestbox.
# 5. Delivers one message from X and one from someone else over LMTP, checks over IMAP
#    that the first is in Y and the second in INBOX, and takes a last screenshot of
#    folder Y in Roundcube (roundcube-sieve-4-filed.png).
# Prints PASS or FAIL (exit 1); stops every process it started and removes its temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
shots=${SHOTS:-$repo/docs/screenshots}
sender_x=news@shop.example
folder_y=Newsletters

# shellcheck source=roundcube-common.sh
. "$repo/scripts/roundcube-common.sh"
rc_need
rc_install roundcube-sieve
rc_playwright

if [ -n "${NB_BIN:-}" ]; then
    NB=$NB_BIN
else
    echo "== building nestbox (release)"
    nice -n 10 cargo build --locked --release --quiet --bin nestbox
    NB=${CARGO_TARGET_DIR:-$repo/target}/release/nestbox
fi
if [ -n "${SIEVE_WASM:-}" ]; then
    wasm=$SIEVE_WASM
else
    echo "== building plugins/sieve (wasm32-wasip2)"
    rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
    # Where tests/sieve.rs builds it too, so either warms the other.
    wasm_target=${CARGO_TARGET_DIR:-$repo/target}/wasm-plugins
    env -u RUSTFLAGS -u CARGO_TARGET_DIR nice -n 10 cargo build --release --quiet \
        --target wasm32-wasip2 --manifest-path plugins/sieve/Cargo.toml --target-dir "$wasm_target"
    wasm=$wasm_target/wasm32-wasip2/release/sieve.wasm
fi
[ -x "$NB" ] || { echo "no nestbox binary at $NB" >&2; exit 2; }
[ -f "$wasm" ] || { echo "no Sieve plugin at $wasm" >&2; exit 2; }
NB=$(realpath "$NB") wasm=$(realpath "$wasm")

# shellcheck source=../benches/common.sh
. "$repo/benches/common.sh"

work=$(mktemp -d)
cleanup() {
    if [ -n "${DEBUG_DIR:-}" ]; then
        mkdir -p "$DEBUG_DIR"
        cp "$work"/*.log "$work"/serve.* "$work"/rc/logs/* "$DEBUG_DIR"/ 2>/dev/null || true
    fi
    rc_stop
    nb_stop
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in "$work/serve.err" "$work/rc/logs/errors.log" "$work/rc/logs/sieve.log"; do
        [ -s "$f" ] && { echo "--- tail of ${f#"$work"/}"; tail -20 "$f"; }
    done
    exit 1
}

cat > "$work/config.ron" <<RON
(
    hostname: "localhost",
    data_dir: "data",
    imap: (listen: ["127.0.0.1:0"], tls_listen: []),
    pop3: (listen: [], tls_listen: []),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: None),
    managesieve: (listen: ["127.0.0.1:0"]),
    plugins: [(name: "sieve", path: "$wasm", hooks: [Sieve])],
)
RON
echo "== starting nestbox"
nb_serve "$work/config.ron" "$work" alice || fail "nestbox did not start"
A_SIEVE=$(nb_port "$work" managesieve)
[ -n "$A_IMAP" ] && [ -n "$A_LMTP" ] && [ -n "$A_SIEVE" ] || fail "nestbox did not listen on IMAP, LMTP and ManageSieve"
echo "   imap $A_IMAP, lmtp $A_LMTP, managesieve $A_SIEVE"

python3 - "$A_IMAP" "$folder_y" <<'PY' || fail "could not create the folder over IMAP"
import imaplib, sys
host, port = sys.argv[1].rsplit(":", 1)
with imaplib.IMAP4(host, int(port)) as m:
    m.login("alice", "pw")
    typ, data = m.create(sys.argv[2])
    assert typ == "OK", data
PY

# tls:// is STARTTLS for both Roundcube's IMAP and ManageSieve connections.
scheme=
[ "${RC_TLS:-0}" = 1 ] && scheme=tls://
rc_start "$work/rc" "$scheme$A_IMAP" "$scheme$A_SIEVE" "['managesieve']" || fail "php -S exited"

mkdir -p "$shots"
ui() {
    NODE_PATH=$RC_NODE_PATH RC_URL=$RC_URL RC_USER=alice RC_PASS=pw \
        SENDER_X=$sender_x FOLDER_Y=$folder_y SHOTS=$shots CHROMIUM=$(command -v chromium) \
        node "$repo/scripts/roundcube_sieve_ui.cjs" "$@"
}
echo "== $(chromium --version 2>/dev/null | head -1): creating the filter in Roundcube"
ui create || fail "driving Roundcube"
"$NB" --config "$work/config.ron" sieve list alice | tee "$work/scripts.txt"
grep -q 'active' "$work/scripts.txt" || fail "Roundcube left no active Sieve script"
echo "--- the script Roundcube wrote:"
name=$(awk 'NR == 1 { print $1 }' "$work/scripts.txt")
"$NB" --config "$work/config.ron" sieve get alice "$name"
echo "---"

echo "== delivering over LMTP, checking over IMAP"
python3 - "$A_LMTP" "$A_IMAP" "$sender_x" "$folder_y" <<'PY' || fail "the mail was not filed as the filter says"
import imaplib, smtplib, sys, time

lmtp, imap, sender_x, folder_y = sys.argv[1:5]
def hp(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)

msgs = {
    "from-x": (sender_x, f"From: Shop News <{sender_x}>\r\nTo: alice@localhost\r\n"
               "Subject: This week's offers\r\nMessage-ID: <x@shop.example>\r\n\r\nOffers.\r\n"),
    "other": ("friend@example.org", "From: A Friend <friend@example.org>\r\nTo: alice@localhost\r\n"
              "Subject: Lunch?\r\nMessage-ID: <y@example.org>\r\n\r\nTomorrow?\r\n"),
}
with smtplib.LMTP(*hp(lmtp)) as s:
    for env_from, text in msgs.values():
        refused = s.sendmail(env_from, ["alice@localhost"], text.encode())
        assert not refused, refused

def subjects(m, box):
    typ, data = m.select(f'"{box}"', readonly=True)
    assert typ == "OK", (box, data)
    if int(data[0]) == 0:
        return []
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    return sorted(part[1].decode().strip() for part in data if isinstance(part, tuple))

with imaplib.IMAP4(*hp(imap)) as m:
    m.login("alice", "pw")
    in_y, in_inbox = subjects(m, folder_y), subjects(m, "INBOX")
print(f"{folder_y}: {in_y}")
print(f"INBOX: {in_inbox}")
ok = in_y == ["Subject: This week's offers"] and in_inbox == ["Subject: Lunch?"]
sys.exit(0 if ok else 1)
PY
ui show || fail "showing the filed mail in Roundcube"
ls -l "$shots"/roundcube-sieve-*.png
echo "PASS: Roundcube's filter moved the mail from $sender_x to $folder_y; other mail stayed in INBOX"
