#!/usr/bin/env bash
# Real mail clients against a fresh nestbox: Roundcube (in headless Chromium),
# offlineimap, mbsync, getmail6, neomutt, interimap and pullimap, each doing what its
# users do, each step recorded PASS or FAIL. Not run in CI (it installs the clients);
# docs/clients.md has the last recorded run.
#
#   scripts/real-clients.sh                      build nestbox (release), run everything
#   NB_BIN=path/to/nestbox scripts/real-clients.sh   use an existing build
#   CORPUS=DIR scripts/real-clients.sh           also deliver 22 messages of the
#                                                SpamAssassin public corpus from DIR
#                                                (files easy-ham-1-NNNNN.*.eml, spam-1-...)
#   CLIENTS="mbsync neomutt"                     only these (of roundcube offlineimap mbsync
#                                                getmail neomutt interimap pullimap)
#   STEP_TIMEOUT=SECONDS (default 120)           a client step that takes longer FAILs
#   SHOTS=/some/dir                              Roundcube screenshots there instead of
#                                                docs/screenshots/real-clients-*.png
#   DEBUG_DIR=/some/dir                          keep the logs there: nestbox's, Roundcube's
#                                                IMAP transcript, each client's output (with
#                                                the IMAP exchange of interimap --debug in
#                                                interimap-protocol.log and pullimap --debug's
#                                                IMAP and LMTP in pullimap.log)
#
# As root it installs what the chosen clients need and is missing from Debian's packages
# (Roundcube, PHP, Chromium, Node; offlineimap3, isync, getmail6, neomutt, tmux,
# interimap, pullimap) and, for Roundcube, playwright-core from the npm registry
# (scripts/roundcube-common.sh). Everything else stays on 127.0.0.1: nestbox
# runs on a temp data dir with IMAP, IMAPS, POP3, POP3S and LMTP on ephemeral loopback
# ports and its self-signed certificate, which the clients are told to trust. Every
# client has a user of its own (password "pw") holding the same mail: the generated
# messages of scripts/real_clients.py (three threads, non-ASCII subjects and bodies in
# UTF-8 and ISO-8859-1, 8bit/quoted-printable/base64) over LMTP to all users in one
# transaction each, and the corpus messages through `nestbox deliver --user`. interimap
# and pullimap also have a second, empty user each: the other side of the sync, the
# LMTP recipient.
#
# Prints a table (client, step, PASS/FAIL, note) and exits 1 if a step failed. Stops
# every process it started and removes its temp dir.
# shellcheck disable=SC2317 # (the step functions are called through `check`)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
shots=${SHOTS:-$repo/docs/screenshots}
step_timeout=${STEP_TIMEOUT:-120}
search_word=Grüße
users=(rc oi mbs gm mutt im pull)
# Users that get no mail: interimap's other side, pullimap's LMTP recipient.
empty_users=(im2 pull2)
clients=${CLIENTS:-roundcube offlineimap mbsync getmail neomutt interimap pullimap}
wants() { [[ " $clients " == *" $1 "* ]]; }

# shellcheck source=roundcube-common.sh
. "$repo/scripts/roundcube-common.sh"
! wants roundcube || rc_need
# need CLIENT COMMAND PACKAGE: PACKAGE is to be installed if CLIENT runs and COMMAND is
# missing.
need() { ! wants "$1" || command -v "$2" >/dev/null || NB_MISSING+=("$3"); }
need offlineimap offlineimap offlineimap3
need mbsync mbsync isync
need getmail getmail getmail6
need neomutt neomutt neomutt
need neomutt tmux tmux
need interimap interimap interimap
need pullimap pullimap pullimap
if wants roundcube; then
    rc_install real-clients
    rc_playwright
elif [ ${#NB_MISSING[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "real-clients: install ${NB_MISSING[*]} first (Debian packages)" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${NB_MISSING[@]}"
fi

if [ -n "${NB_BIN:-}" ]; then
    NB=$NB_BIN
else
    echo "== building nestbox (release)"
    nice -n 10 cargo build --locked --release --quiet --bin nestbox
    NB=${CARGO_TARGET_DIR:-$repo/target}/release/nestbox
fi
[ -x "$NB" ] || { echo "no nestbox binary at $NB" >&2; exit 2; }
NB=$(realpath "$NB")

# shellcheck source=../benches/common.sh
. "$repo/benches/common.sh"

work=$(mktemp -d)
tmux_socket=nestbox-clients-$$
results=$work/results.tsv
: > "$results"
cleanup() {
    tmux -L "$tmux_socket" kill-server 2>/dev/null || true
    if [ -n "${DEBUG_DIR:-}" ]; then
        mkdir -p "$DEBUG_DIR"
        cp "$work"/*.log "$work"/serve.* "$work"/*.jsonl "$work"/rc/logs/* "$DEBUG_DIR"/ 2>/dev/null || true
    fi
    rc_stop
    nb_stop
    rm -rf "$work"
}
trap cleanup EXIT

# record CLIENT STEP PASS|FAIL NOTE
record() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$results"
    printf '   %-10s %-18s %s  %s\n' "$1" "$2" "$3" "$4"
}
# check CLIENT STEP NOTE COMMAND...: PASS if COMMAND succeeds. Every client runs under
# `timeout "$step_timeout"` (exit 124: noted as a timeout), every wait is bounded, and
# real_clients.py sets socket timeouts, so a hang FAILs a step and nothing blocks.
check() {
    local client=$1 step=$2 note=$3
    shift 3
    if "$@"; then
        record "$client" "$step" PASS "$note"
    else
        local rc=$?
        [ "$rc" = 124 ] && note="timed out after $step_timeout s; $note"
        record "$client" "$step" FAIL "$note"
        return 1
    fi
}
py() { python3 "$repo/scripts/real_clients.py" "$@"; }
# bodies CLIENT STEP MAILDIR [blank-lines]: the messages the client wrote have the
# delivered bodies (see real_clients.py same-bodies).
bodies() {
    local out how="byte for byte"
    [ "${4:-}" = blank-lines ] && how="empty lines aside (Python's email package adds some)"
    if out=$(py same-bodies "$3" "$work/corpus.list" "${4:-strict}" 2>&1); then
        record "$1" "$2" PASS "bodies as delivered, $how: $out"
    else
        record "$1" "$2" FAIL "$out"
        [ -z "${DEBUG_DIR:-}" ] || { mkdir -p "$DEBUG_DIR" && cp -r "$3" "$DEBUG_DIR/$1-$2-maildir"; }
    fi
}
# run_logged LOG CMD...: run N (the caller's counter `n`, its dir `d`) of CMD: its output
# in $d/run-N.out and appended to $work/LOG.
run_logged() {
    local log=$1 rc
    shift
    n=$((n + 1))
    echo "== run $n: $*" >> "$work/$log"
    timeout "$step_timeout" "$@" > "$d/run-$n.out" 2>&1
    rc=$?
    cat "$d/run-$n.out" >> "$work/$log"
    return $rc
}

version() { dpkg-query dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"; }

# maildir_counts DIR: "NAME COUNT" for every maildir under DIR (INBOX, and the other
# folders as DIR/NAME), sorted like `real_clients.py counts`.
maildir_counts() {
    local d
    for d in "$1"/*/; do
        [ -d "$d/cur" ] || continue
        d=${d%/}
        echo "${d##*/} $(find "$d/cur" "$d/new" -type f | wc -l)"
    done | sort
}
# same_counts USER DIR: the server's mailboxes and message counts equal the maildir's.
same_counts() {
    diff <(py counts "$A_IMAP" "$1" | awk '$2 > 0' | sort) <(maildir_counts "$2" | awk '$2 > 0')
}

cat > "$work/config.ron" <<RON
(
    hostname: "localhost",
    data_dir: "data",
    imap: (listen: ["127.0.0.1:0"], tls_listen: ["127.0.0.1:0"]),
    pop3: (listen: ["127.0.0.1:0"], tls_listen: ["127.0.0.1:0"]),
    lmtp: (listen: ["127.0.0.1:0"], unix_socket: None),
    managesieve: (listen: []),
)
RON
echo "== starting nestbox ($("$NB" --version 2>/dev/null || echo nestbox))"
nb_serve "$work/config.ron" "$work" "${users[@]}" "${empty_users[@]}" || { echo "nestbox did not start" >&2; exit 1; }
A_POP3S=$(nb_port "$work" pop3s)
for a in A_IMAP A_IMAPS A_POP3 A_POP3S A_LMTP; do
    [ -n "${!a}" ] || { echo "nestbox does not listen for $a" >&2; exit 1; }
done
cert=$work/data/tls/cert.pem
[ -f "$cert" ] || { echo "no certificate at data/tls/cert.pem" >&2; exit 1; }
echo "   imap $A_IMAP, imaps $A_IMAPS, pop3 $A_POP3, pop3s $A_POP3S, lmtp $A_LMTP"

echo "== delivering"
py lmtp "$A_LMTP" "${users[@]}"
n_corpus=0
: > "$work/corpus.list"
if [ -n "${CORPUS:-}" ]; then
    for f in "$CORPUS"/easy-ham-1-000{01..20}.*.eml "$CORPUS"/easy-ham-1-02434.*.eml "$CORPUS"/spam-1-00252.*.eml; do
        [ -f "$f" ] || { echo "no corpus message $f" >&2; exit 1; }
        for u in "${users[@]}"; do
            "$NB" --config "$work/config.ron" deliver --user "$u" < "$f"
        done
        echo "$f" >> "$work/corpus.list"
        n_corpus=$((n_corpus + 1))
    done
fi
for u in "${users[@]}"; do py create "$A_IMAP" "$u" Archive Trash; done
n_inbox=$(py counts "$A_IMAP" rc | awk '$1 == "INBOX" { print $2 }')
echo "   INBOX of each user: $n_inbox messages ($n_corpus from the corpus)"
n_generated=$(py generated-count)
[ "$n_inbox" = $((n_generated + n_corpus)) ] || { echo "expected $((n_generated + n_corpus)) messages" >&2; exit 1; }

# 1. Roundcube over IMAPS, in headless Chromium.
roundcube() {
    echo "== Roundcube $(rc_version) (roundcube-core $(version roundcube-core)), $(chromium --version 2>/dev/null | head -1)"
    rc_start "$work/rc" "ssl://$A_IMAPS" "" "[]" || { record roundcube start FAIL "php -S exited"; return; }
    mkdir -p "$shots"
    local phase steps
    for phase in list modify; do
        case $phase in
            list) steps="threads sort-date sort-subject search" ;;
            modify) steps="move delete" ;;
        esac
        if NODE_PATH=$RC_NODE_PATH RC_URL=$RC_URL RC_USER=rc RC_PASS=pw SHOTS=$shots \
            CHROMIUM=$(command -v chromium) RESULTS=$work/rc-$phase.jsonl SEARCH_WORD=$search_word \
            timeout "$step_timeout" node "$repo/scripts/real_clients_ui.cjs" "$phase" > "$work/rc-$phase.log" 2>&1; then
            [ "$phase" = list ] && record roundcube login PASS "over IMAPS (ssl://), the INBOX list loads"
        else
            [ "$phase" = list ] && [ ! -s "$work/rc-$phase.jsonl" ] && record roundcube login FAIL "$(tail -1 "$work/rc-$phase.log")"
            echo "   ui $phase: $(tail -1 "$work/rc-$phase.log")"
        fi
        touch "$work/rc-$phase.jsonl"
        # shellcheck disable=SC2086 # steps is a word list
        py roundcube "$A_IMAP" rc "$work/rc-$phase.jsonl" $steps |
            while IFS=$'\t' read -r step status note; do record roundcube "$step" "$status" "$note"; done
    done
    rc_stop
}

# 2. offlineimap over IMAPS: full sync, a flag changed on each side, second sync.
offlineimap_run() {
    local d=$work/offlineimap f base flags
    echo "== offlineimap (offlineimap3 $(version offlineimap3))"
    mkdir -p "$d/mail" "$d/meta"
    cat > "$d/rc" <<EOF
[general]
accounts = nb
metadata = $d/meta
[Account nb]
localrepository = local
remoterepository = remote
[Repository local]
type = Maildir
localfolders = $d/mail
[Repository remote]
type = IMAP
# A name, not 127.0.0.1: offlineimap matches DNS names in the certificate only.
remotehost = localhost
remoteport = ${A_IMAPS##*:}
ssl = yes
sslcacertfile = $cert
remoteuser = oi
remotepass = pw
EOF
    sync_oi() { timeout "$step_timeout" offlineimap -c "$d/rc" -o -u basic >> "$work/offlineimap.log" 2>&1; }
    check offlineimap sync-1 "full sync to a maildir" sync_oi || return 0
    check offlineimap counts-1 "every folder's count equals the server's" same_counts oi "$d/mail" || true
    bodies offlineimap bodies "$d/mail/INBOX" blank-lines
    # Local: flag UID 1 (maildir flag F); server: \Flagged \Seen on UID 2.
    f=$(find "$d/mail/INBOX" -type f -name '*,U=1,*' | head -1)
    base=${f##*/}
    flags=
    [[ $base == *:2,* ]] && flags=${base##*:2,}
    mv "$f" "$d/mail/INBOX/cur/${base%%:2,*}:2,$(printf 'F%s' "$flags" | fold -w1 | sort | tr -d '\n')"
    py store "$A_IMAP" oi 2 '\Flagged \Seen'
    check offlineimap sync-2 "second sync after the flag changes" sync_oi || return 0
    check offlineimap flag-up "maildir F on UID 1 became \\Flagged on the server" \
        bash -c "python3 '$repo/scripts/real_clients.py' flags '$A_IMAP' oi 1 | grep -q Flagged" || true
    check offlineimap flag-down "\\Flagged \\Seen on UID 2 became maildir FS" \
        bash -c "find '$d/mail/INBOX' -type f -name '*,U=2,*:2,*F*S*' | grep -q ." || true
    check offlineimap counts-2 "counts still equal" same_counts oi "$d/mail" || true
}

# 3. mbsync over IMAPS: sync, a new message on each side, sync, counts.
mbsync_run() {
    local d=$work/mbsync
    echo "== mbsync (isync $(version isync))"
    mkdir -p "$d/mail"
    cat > "$d/rc" <<EOF
IMAPAccount nb
Host 127.0.0.1
Port ${A_IMAPS##*:}
User mbs
Pass pw
SSLType IMAPS
CertificateFile $cert

IMAPStore remote
Account nb

MaildirStore local
Path $d/mail/
Inbox $d/mail/INBOX
SubFolders Verbatim

Channel nb
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
EOF
    sync_mb() { timeout "$step_timeout" mbsync -V -c "$d/rc" -a >> "$work/mbsync.log" 2>&1; }
    check mbsync sync-1 "full sync, all folders (Create Both)" sync_mb || return 0
    check mbsync counts-1 "every folder's count equals the server's" same_counts mbs "$d/mail" || true
    bodies mbsync bodies "$d/mail/INBOX"
    printf 'From: Near Side <near@clients.nestbox.test>\nSubject: written locally\nMessage-ID: <mbsync-local@clients.nestbox.test>\nDate: %s\n\nNew on the local side.\n' \
        "$(date -R)" > "$d/mail/INBOX/new/$(date +%s).local1.nestbox"
    py append "$A_IMAP" mbs "server side"
    check mbsync sync-2 "a new message on each side" sync_mb || return 0
    check mbsync counts-2 "INBOX $((n_inbox + 2)) on both sides" \
        bash -c "[ \"\$(python3 '$repo/scripts/real_clients.py' counts '$A_IMAP' mbs | awk '\$1 == \"INBOX\" { print \$2 }')\" = $((n_inbox + 2)) ] && [ \"\$(find '$d/mail/INBOX/cur' '$d/mail/INBOX/new' -type f | wc -l)\" = $((n_inbox + 2)) ]" || true
    check mbsync up "the local message reached the server" \
        bash -c "python3 '$repo/scripts/real_clients.py' msgids '$A_IMAP' mbs INBOX | grep -qF '<mbsync-local@'" || true
    check mbsync down "the server's message reached the maildir" \
        grep -rqF '<appended-server-side@' "$d/mail/INBOX" || true
    # A deletion on each side: a maildir file removed, a message expunged on the server.
    grep -rlF '<greek@clients.nestbox.test>' "$d/mail/INBOX" | xargs rm -f
    py expunge "$A_IMAP" mbs '<report-4@clients.nestbox.test>'
    check mbsync sync-3 "a deletion on each side (Expunge Both)" sync_mb || return 0
    check mbsync counts-3 "INBOX $n_inbox on both sides, neither deleted message anywhere" \
        bash -c "[ \"\$(python3 '$repo/scripts/real_clients.py' counts '$A_IMAP' mbs | awk '\$1 == \"INBOX\" { print \$2 }')\" = $n_inbox ] && [ \"\$(find '$d/mail/INBOX/cur' '$d/mail/INBOX/new' -type f | wc -l)\" = $n_inbox ] && ! python3 '$repo/scripts/real_clients.py' msgids '$A_IMAP' mbs INBOX | grep -qE '<(greek|report-4)@' && ! grep -rqE '<(greek|report-4)@clients' '$d/mail/INBOX'" || true
}

# 4. getmail6: IMAPS, then POP3S (all, new only, all with delete).
getmail_run() {
    local d=$work/getmail kind deliver_as=
    echo "== getmail6 $(version getmail6)"
    mkdir -p "$d"
    # getmail_rc NAME TYPE PORT MAILDIR READ_ALL DELETE
    getmail_rc() {
        mkdir -p "$d/$4/cur" "$d/$4/new" "$d/$4/tmp"
        [ -z "$deliver_as" ] || chown -R nobody "$d/$4"
        {
            printf '[retriever]\ntype = %s\nserver = 127.0.0.1\nport = %s\n' "$2" "$3"
            printf 'username = gm\npassword = pw\nca_certs = %s\n' "$cert"
            [[ $2 == *IMAP* ]] && printf 'mailboxes = ("INBOX",)\n'
            printf '[destination]\ntype = Maildir\npath = %s/\n'"$deliver_as" "$d/$4"
            printf '[options]\nread_all = %s\ndelete = %s\nverbose = 1\n' "$5" "$6"
        } > "$d/$1.rc"
    }
    # getmail refuses to deliver as root: as root, its Maildir destination switches to
    # nobody, who then needs to reach and write the maildirs.
    if [ "$(id -u)" = 0 ]; then
        chmod 711 "$work"
        deliver_as='user = nobody\n'
    fi
    getmail_rc imap SimpleIMAPSSLRetriever "${A_IMAPS##*:}" imap-mail true false
    getmail_rc pop SimplePOP3SSLRetriever "${A_POP3S##*:}" pop-mail true false
    getmail_rc pop-new SimplePOP3SSLRetriever "${A_POP3S##*:}" pop-mail false false
    getmail_rc pop-delete SimplePOP3SSLRetriever "${A_POP3S##*:}" pop-deleted true true
    fetch() { timeout "$step_timeout" getmail --getmaildir "$d" --rcfile "$d/$1.rc" >> "$work/getmail.log" 2>&1; }
    count() { [ "$(find "$d/$1" -type f | wc -l)" = "$2" ]; }
    for kind in imap pop; do
        if check getmail "$kind-fetch" "retrieve all over $([ $kind = imap ] && echo IMAPS || echo POP3S)" fetch "$kind"; then
            check getmail "$kind-count" "$n_inbox messages in the maildir" count "$kind-mail" "$n_inbox" || true
            bodies getmail "$kind-bodies" "$d/$kind-mail" blank-lines
        fi
    done
    if check getmail pop-new-only "read_all = false: nothing new (UIDL)" fetch pop-new; then
        check getmail pop-new-count "still $n_inbox messages" count pop-mail "$n_inbox" || true
    fi
    if check getmail pop-delete "retrieve all and delete over POP3S" fetch pop-delete; then
        check getmail pop-deleted "$n_inbox retrieved, STAT then says 0" \
            bash -c "[ \"\$(find '$d/pop-deleted' -type f | wc -l)\" = $n_inbox ] && [ \"\$(python3 '$repo/scripts/real_clients.py' pop3-stat '$A_POP3' gm)\" = 0 ]" || true
    fi
}

# 5. neomutt over IMAPS in tmux: index, read a message, quit.
neomutt_run() {
    local d=$work/neomutt
    echo "== neomutt $(version neomutt)"
    mkdir -p "$d"
    cp "$cert" "$d/certs"
    cat > "$d/muttrc" <<EOF
set folder = "imaps://mutt@127.0.0.1:${A_IMAPS##*:}/"
set spoolfile = "+INBOX"
set imap_pass = "pw"
set certificate_file = "$d/certs"
set ssl_force_tls = yes
set header_cache = ""
set message_cachedir = ""
set sort = date
set quit = yes
set wait_key = no
set help = no
set ts_enabled = no
set mail_check_stats = no
EOF
    screen() { tmux -L "$tmux_socket" capture-pane -p -t mutt > "$d/screen.txt" 2>/dev/null; }
    # wait_for TEXT...: until the screen shows every TEXT (at most the step timeout).
    wait_for() {
        local t
        for _ in $(seq $((step_timeout * 4))); do
            screen || return 1
            for t in "$@"; do grep -qF "$t" "$d/screen.txt" || continue 2; done
            return 0
        done
        return 1
    }
    tmux -L "$tmux_socket" -f /dev/null new-session -d -s mutt -x 160 -y 45 \
        "env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=xterm-256color HOME=$d neomutt -n -F $d/muttrc 2> $d/stderr"
    if check neomutt index "INBOX index renders, [Msgs:$n_inbox], non-ASCII subjects readable" \
        wait_for "Msgs:$n_inbox" "Grüße aus Köln" "日本語のテスト" "Quarterly report"; then
        cp "$d/screen.txt" "$work/neomutt-index.log"
    else
        cp "$d/screen.txt" "$work/neomutt-index.log"
        return 0
    fi
    # Jump to the message by Message-ID (~i), open it.
    tmux -L "$tmux_socket" send-keys -t mutt '/' '~i koeln-1@' Enter
    sleep 1
    tmux -L "$tmux_socket" send-keys -t mutt Enter
    check neomutt read "opens a message: UTF-8 8bit body shown" \
        wait_for "Schöne Grüße aus Köln!" "Der Dom steht noch." || true
    cp "$d/screen.txt" "$work/neomutt-pager.log"
    tmux -L "$tmux_socket" send-keys -t mutt q
    sleep 1
    tmux -L "$tmux_socket" send-keys -t mutt q
    gone() {
        for _ in $(seq $((step_timeout * 4))); do
            tmux -L "$tmux_socket" has-session -t mutt 2>/dev/null || return 0
            sleep 0.25
        done
        return 1
    }
    check neomutt quit "q, q: neomutt exits" gone || true
    check neomutt seen "the message read is \\Seen on the server" \
        bash -c "python3 '$repo/scripts/real_clients.py' flags '$A_IMAP' mutt '<koeln-1@clients.nestbox.test>' | grep -q Seen" || true
}

# 6. interimap over IMAPS: user im (local) synchronized with user im2 (remote, empty at
# first) on the same nestbox. A full sync, then a flag changed, a message expunged, a
# message appended and a folder created on each side, each followed by a sync (QRESYNC:
# VANISHED (EARLIER) and CHANGEDSINCE); runs with nothing to do (after the expunges, at
# the end) log nothing and select nothing; --repair finds nothing. The IMAP exchange:
# interimap-protocol.log in DEBUG_DIR.
interimap_run() {
    local d=$work/interimap n=0 side
    echo "== interimap $(version interimap)"
    mkdir -p "$d"
    # Both sides on nestbox. --debug writes the IMAP exchange to the logfile
    # (interimap-protocol.log); what interimap did ("Added", "Updated flags", ...) goes
    # to stderr too, kept per run in $d/run-N.out.
    {
        printf 'database = %s/interimap.db\nlogfile = %s/interimap-protocol.log\n' "$d" "$work"
        for side in local:im remote:im2; do
            # A name, not 127.0.0.1: interimap matches it against the certificate's names.
            printf '\n[%s]\ntype = imaps\nhost = localhost\nport = %s\nusername = %s\npassword = pw\nSSL_CAfile = %s\n' \
                "${side%%:*}" "${A_IMAPS##*:}" "${side##*:}" "$cert"
        done
    } > "$d/config"
    # sync_im [ARGS...]: one interimap run (run_logged).
    sync_im() { run_logged interimap.log interimap --config="$d/config" --debug "$@"; }
    # same STEP: im and im2 hold the same mail (real_clients.py same-mail).
    same() {
        local out
        if out=$(py same-mail "$A_IMAP" im im2 2>&1); then
            record interimap "$1" PASS "$out"
        else
            record interimap "$1" FAIL "$out"
        fi
    }
    has_flags() { py flags "$A_IMAP" "$1" "$2" | grep -qF -- "$3"; }
    lacks_flags() { ! py flags "$A_IMAP" "$1" "$2" | grep -qF -- "$3"; }
    # did RUN: the actions interimap logged in run RUN (SSL and debug lines aside).
    did() { grep -E 'Added|Removed|Updated|Created|Deleted|Renamed|WARNING|ERROR|Repair|[Mm]issing' "$d/run-$1.out" || true; }
    # selects RUN: the SELECT commands of run RUN (interimap selects only the mailboxes
    # whose STATUS UIDNEXT or HIGHESTMODSEQ differ from its database's).
    selects() {
        awk -v n="$1" '/>>> interimap/ { run++ } run == n && / C: [0-9]+ SELECT / { sub(/.* C: [0-9]+ /, ""); print }' \
            "$work/interimap-protocol.log"
    }
    # no_action STEP NOTE: the last run logged no action.
    no_action() {
        local out
        out=$(did "$n")
        if [ -z "$out" ]; then
            record interimap "$1" PASS "$2"
        else
            record interimap "$1" FAIL "$2; it logged: $(echo "$out" | head -3 | tr '\n' ' ')"
        fi
    }

    # A message already \Seen before the first sync: its \Seen is removed after it. (The
    # first sync APPENDs to im2; unless the server reports im2's HIGHESTMODSEQ after
    # them, interimap keeps the one from before and next time takes every message of im2
    # as changed there: a flag conflict, settled as the union, \Seen back.)
    py store "$A_IMAP" im '<nihongo-1@clients.nestbox.test>' '\Seen'
    check interimap sync-1 "first sync: im (local) to im2 (remote, empty)" sync_im || return 0
    same same-1
    # A flag added on each side, one removed on the remote side, a keyword.
    py store "$A_IMAP" im '<koeln-1@clients.nestbox.test>' '\Flagged'
    py store "$A_IMAP" im '<nihongo-1@clients.nestbox.test>' '-\Seen'
    py store "$A_IMAP" im2 '<cafe@clients.nestbox.test>' '\Seen $Label1'
    py store "$A_IMAP" im2 '<zebra@clients.nestbox.test>' '\Answered'
    check interimap sync-2 "after flag changes on both sides" sync_im || return 0
    check interimap flags-up "\\Flagged set on im reached im2" has_flags im2 '<koeln-1@clients.nestbox.test>' '\Flagged' || true
    check interimap unseen-up "\\Seen removed on im after sync-1 is gone on both" \
        bash -c "! python3 '$repo/scripts/real_clients.py' flags '$A_IMAP' im '<nihongo-1@clients.nestbox.test>' | grep -q Seen && ! python3 '$repo/scripts/real_clients.py' flags '$A_IMAP' im2 '<nihongo-1@clients.nestbox.test>' | grep -q Seen" || true
    check interimap flags-down "\\Seen \$Label1 set on im2 reached im" \
        bash -c "python3 '$repo/scripts/real_clients.py' flags '$A_IMAP' im '<cafe@clients.nestbox.test>' | grep -q 'Seen' && python3 '$repo/scripts/real_clients.py' flags '$A_IMAP' im '<cafe@clients.nestbox.test>' | grep -qF 'Label1'" || true
    py store "$A_IMAP" im2 '<zebra@clients.nestbox.test>' '-\Answered'
    check interimap sync-3 "after a flag removed on im2 (it was set there and synced by sync-2)" sync_im || return 0
    check interimap flag-removed "\\Answered removed on im2 is gone on im" lacks_flags im '<zebra@clients.nestbox.test>' '\Answered' || true
    # An expunge on each side: VANISHED from the QRESYNC SELECT.
    py expunge "$A_IMAP" im '<report-4@clients.nestbox.test>'
    py expunge "$A_IMAP" im2 '<greek@clients.nestbox.test>'
    check interimap sync-4 "after an expunge on each side" sync_im || return 0
    check interimap expunged "report-4 (expunged on im) and greek (on im2) gone from both" \
        bash -c "! python3 '$repo/scripts/real_clients.py' msgids '$A_IMAP' im INBOX | grep -qE '<(greek|report-4)@' && ! python3 '$repo/scripts/real_clients.py' msgids '$A_IMAP' im2 INBOX | grep -qE '<(greek|report-4)@'" || true
    # sync-4 expunged with UID EXPUNGE and stored the HIGHESTMODSEQ it then knew: a run
    # now has nothing to do (no VANISHED (EARLIER) for what it expunged itself).
    if check interimap sync-4b "nothing changed since sync-4" sync_im; then
        no_action after-expunge "the run after the expunges logged no action"
    fi
    # A new message on each side, a new folder (with a message) on each side: one with a
    # hierarchy, one with a non-ASCII name (modified UTF-7, RFC 3501 section 5.1.3).
    py append "$A_IMAP" im "interimap local"
    py append "$A_IMAP" im2 "interimap remote"
    py create "$A_IMAP" im "Projects" "Projects/2026"
    py append "$A_IMAP" im "in a local folder" "Projects/2026"
    py create "$A_IMAP" im2 "Entw&APw-rfe"
    py append "$A_IMAP" im2 "in a remote folder" "Entw&APw-rfe"
    check interimap sync-5 "after a new message and a new folder on each side" sync_im || return 0
    check interimap appended "each side's new INBOX message on the other" \
        bash -c "python3 '$repo/scripts/real_clients.py' msgids '$A_IMAP' im INBOX | grep -qF '<appended-interimap-remote@' && python3 '$repo/scripts/real_clients.py' msgids '$A_IMAP' im2 INBOX | grep -qF '<appended-interimap-local@'" || true
    check interimap folders "Projects/2026 (made on im) and Entw&APw-rfe (on im2) on both, with their message" \
        bash -c "python3 '$repo/scripts/real_clients.py' msgids '$A_IMAP' im2 Projects/2026 | grep -qF '<appended-in-a-local-folder@' && python3 '$repo/scripts/real_clients.py' msgids '$A_IMAP' im 'Entw&APw-rfe' | grep -qF '<appended-in-a-remote-folder@'" || true
    same same-5
    # Nothing changed: interimap finds nothing to do (it logs every copy, flag update,
    # expunge and mailbox creation).
    # A run with nothing to do; it SELECTs a mailbox only if its STATUS differs from
    # the database, which holds the HIGHESTMODSEQ interimap last heard of (after its own
    # APPENDs, a [HIGHESTMODSEQ] response code, if the server sends one).
    if check interimap sync-6 "nothing changed since sync-5" sync_im; then
        no_action idle "the run logged no action"
        check interimap idle-select "and SELECTed no mailbox (STATUS HIGHESTMODSEQ equal to the database's)$(
            [ -z "$(selects "$n")" ] || echo "; it selected: $(selects "$n" | tr '\n' ' ')")" \
            test -z "$(selects "$n")" || true
    fi
    # --repair: a full sync (all UIDs and flags of both sides) against the database.
    if check interimap repair "interimap --repair" sync_im --repair; then
        no_action repair-clean "--repair found nothing to repair"
    fi
    same same-6
}

# 7. pullimap over IMAPS: pulls user pull's INBOX and delivers it over LMTP to pull2;
# a second run pulls nothing; a new message is pulled alone; purge-after removes old
# messages (ESEARCH ... BEFORE), purge-after = 0 all pulled ones.
pullimap_run() {
    local d=$work/pullimap n=0
    echo "== pullimap $(version pullimap)"
    mkdir -p "$d"
    # pull_rc SECTION [PURGE_AFTER]: one section of the config, all on the same statefile.
    pull_rc() {
        printf '\n[%s]\ntype = imaps\nhost = localhost\nport = %s\nusername = pull\npassword = pw\nSSL_CAfile = %s\n' \
            "$1" "${A_IMAPS##*:}" "$cert"
        printf 'mailbox = INBOX\nstatefile = %s/state\ndeliver-method = lmtp:[127.0.0.1]:%s\ndeliver-rcpt = pull2@localhost\n' \
            "$d" "${A_LMTP##*:}"
        [ -z "${2:-}" ] || printf 'purge-after = %s\n' "$2"
    }
    { pull_rc nb; pull_rc purge-old 30; pull_rc purge-all 0; } > "$d/config"
    # pull SECTION: one run with --debug (IMAP and LMTP exchange) (run_logged).
    pull() { run_logged pullimap.log pullimap --config="$d/config" --debug "$1"; }
    # pulled RUN: how many messages run RUN delivered ("UID n from <sender> (date)").
    pulled() { grep -cE '^(.*: )?UID [0-9]+ from <' "$d/run-$1.out" || true; }
    inbox() { py counts "$A_IMAP" "$1" | awk '$1 == "INBOX" { print $2 }'; }

    check pullimap pull-1 "pull INBOX of pull, deliver over LMTP to pull2" pull nb || return 0
    check pullimap count-1 "$(pulled "$n") pulled; pull2's INBOX holds $n_inbox" test "$(inbox pull2)" = "$n_inbox" || true
    rm -rf "$d/saved"
    py save "$A_IMAP" pull2 INBOX "$d/saved"
    bodies pullimap bodies "$d/saved"
    check pullimap seen "every pulled message is \\Seen in pull's INBOX (UID STORE +FLAGS.SILENT)" \
        bash -c "[ \"\$(python3 '$repo/scripts/real_clients.py' search '$A_IMAP' pull UNSEEN)\" = '' ]" || true
    check pullimap pull-2 "second run" pull nb || return 0
    check pullimap nothing-new "pulled $(pulled "$n"), pull2 still $n_inbox" \
        test "$(pulled "$n")" = 0 -a "$(inbox pull2)" = "$n_inbox" || true
    py append "$A_IMAP" pull "pullimap new"
    check pullimap pull-3 "after one new message" pull nb || return 0
    check pullimap new-one "pulled $(pulled "$n"): the new message, pull2 $((n_inbox + 1))" \
        bash -c "[ $(pulled "$n") = 1 ] && [ \"\$(python3 '$repo/scripts/real_clients.py' counts '$A_IMAP' pull2 | awk '\$1 == \"INBOX\" { print \$2 }')\" = $((n_inbox + 1)) ] && python3 '$repo/scripts/real_clients.py' msgids '$A_IMAP' pull2 INBOX | grep -qF '<appended-pullimap-new@'" || true
    # A message with an INTERNALDATE of 2020: purge-after = 30 pulls it, then removes it
    # (UID SEARCH RETURN (COUNT ALL) UID 1:N BEFORE <30 days ago>) and nothing else.
    py append "$A_IMAP" pull "pullimap old" INBOX 01-Jan-2020
    check pullimap purge-old "purge-after = 30, a new message dated 2020" pull purge-old || return 0
    check pullimap purged-old "the 2020 message pulled then removed; pull keeps $((n_inbox + 1))" \
        bash -c "[ \"\$(python3 '$repo/scripts/real_clients.py' counts '$A_IMAP' pull | awk '\$1 == \"INBOX\" { print \$2 }')\" = $((n_inbox + 1)) ] && python3 '$repo/scripts/real_clients.py' msgids '$A_IMAP' pull2 INBOX | grep -qF '<appended-pullimap-old@' && ! python3 '$repo/scripts/real_clients.py' msgids '$A_IMAP' pull INBOX | grep -qF '<appended-pullimap-old@'" || true
    check pullimap purge-all "purge-after = 0" pull purge-all || return 0
    check pullimap purged-all "pull's INBOX empty, pull2 keeps $((n_inbox + 2))" \
        test "$(inbox pull)" = 0 -a "$(inbox pull2)" = $((n_inbox + 2)) || true
}

for client in $clients; do
    case $client in
        roundcube) roundcube ;;
        offlineimap | mbsync | getmail | neomutt | interimap | pullimap) "${client}_run" ;;
        *) echo "unknown client $client" >&2; exit 2 ;;
    esac
done

echo
echo "== summary"
column -t -s $'\t' < "$results"
fails=$(awk -F'\t' '$3 != "PASS"' "$results" | wc -l)
echo "$(wc -l < "$results") steps, $fails failed"
[ "$fails" = 0 ]
