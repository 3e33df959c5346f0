#!/usr/bin/env bash
# Compares what nestbox and Dovecot serve for the same mail: the corpus APPENDed to both,
# then BODYSTRUCTURE, ENVELOPE, sizes, header fields, MIME part headers, text and SEARCH
# answers side by side (scripts/dovecot_diff.py; the differences both RFC readings allow
# are counted apart). Results: docs/clients.md, "Compared with Dovecot".
#
#   scripts/dovecot-diff.sh [CORPUS_DIR] [LIMIT]      # default: ../shared/corpus/spamassassin-dev, 3000
#
# Starts Debian's Dovecot (dovecot-imapd; installed when missing, as root) as an
# unprivileged process with its own config in a temp dir, and nestbox (NB_BIN, or a
# release build) on free loopback ports; both are stopped and the temp dir removed at
# the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
corpus=${1:-$repo/../shared/corpus/spamassassin-dev}
limit=${2:-3000}

if ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/imap ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd
    else
        echo "dovecot-diff: install dovecot-imapd first" >&2
        exit 1
    fi
fi
if [ -z "${NB_BIN:-}" ]; then
    cargo build --release --quiet --bin nestbox
    NB_BIN=${CARGO_TARGET_DIR:-$repo/target}/release/nestbox
fi

work=$(mktemp -d)
chmod 755 "$work"
dc_pid= nb_pid=
cleanup() {
    for p in $dc_pid $nb_pid; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=scripts/dovecot-common.sh
. "$repo/scripts/dovecot-common.sh"
dc_port=$(free_port)
nb_port=$(free_port)

mkdir -p "$work/dc/run" "$work/dc/state" "$work/dc/mail"
echo 'alice:{PLAIN}diff-pw' > "$work/dc/passwd"
cat > "$work/dc/dovecot.conf" <<CONF
base_dir = $work/dc/run
state_dir = $work/dc/state
instance_name = nestbox-diff-$$
log_path = $work/dc/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
default_internal_user = $user
default_internal_group = $group
default_login_user = $user
mail_location = maildir:$work/dc/mail/%u/Maildir
first_valid_uid = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN $work/dc/passwd
}
userdb {
  driver = static
  args = uid=$(id -u "$user") gid=$(id -g "$user") home=$work/dc/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $dc_port
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
}
service anvil {
  chroot =
}
CONF
chown -R "$user:$group" "$work/dc"
"${runas[@]}" dovecot -F -c "$work/dc/dovecot.conf" &
dc_pid=$!

start_nestbox_imap "$work/nb" "$nb_port" diff-pw

wait_port "$dc_port" || { cat "$work/dc/dovecot.log" >&2; exit 1; }
wait_port "$nb_port" || { cat "$work/nb/serve.log" >&2; exit 1; }
echo "dovecot $(dovecot --version | cut -d' ' -f1), nestbox $("$NB_BIN" --version | cut -d' ' -f2); corpus $corpus, $limit messages"
python3 "$repo/scripts/dovecot_diff.py" "$nb_port" "$dc_port" alice diff-pw "$corpus" "$limit"
