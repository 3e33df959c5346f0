#!/usr/bin/env bash
# Regenerates tests/fixtures/dovecot/: a maildir written by Dovecot itself and what
# Dovecot served from it, for tests/dovecot_import.rs (CI then needs no Dovecot).
#
# Starts Debian's Dovecot (dovecot-imapd, dovecot-pop3d; installed when missing and run
# as root) as an unprivileged process with its own config in a temp dir, on free loopback
# ports. Delivers mail with dovecot-lda and IMAP APPEND, sets flags and keywords, expunges
# some messages (UID gaps), creates Sent/Drafts/Trash/Junk/Archives and a hierarchy,
# subscribes to some, then records with tests/fixtures/mail_probe.py what Dovecot serves
# (IMAP LIST/LSUB/STATUS/UID FETCH, POP3 UIDL) into served.txt. The maildir is copied
# without Dovecot's index files (nestbox reads only the maildir, dovecot-uidlist,
# dovecot-keywords and subscriptions); git does not keep mtimes, which are Dovecot's
# INTERNALDATE, so they are listed in mtimes.txt for the test to put back.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=$repo/tests/fixtures/dovecot

if ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/pop3 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd dovecot-pop3d
    else
        echo "dovecot-fixture: install dovecot-imapd and dovecot-pop3d first" >&2
        exit 1
    fi
fi

work=$(mktemp -d)
chmod 755 "$work"
pid=
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=scripts/dovecot-common.sh
. "$repo/scripts/dovecot-common.sh"
imap_port=$(free_port)
pop3_port=$(free_port)

mkdir -p "$work/run" "$work/state" "$work/mail"
echo 'alice:{PLAIN}dovecot-pw' > "$work/passwd"
cat > "$work/dovecot.conf" <<CONF
# Everything in this temp dir; loopback only; plain text logins (no TLS).
base_dir = $work/run
state_dir = $work/state
instance_name = nestbox-fixture-$$
log_path = $work/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = $user
default_internal_group = $group
default_login_user = $user
mail_location = maildir:$work/mail/%u/Maildir
first_valid_uid = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN $work/passwd
}
userdb {
  driver = static
  args = uid=$(id -u "$user") gid=$(id -g "$user") home=$work/mail/%u
}
# Debian's defaults otherwise: pop3_uidl_format = %08Xu%08Xv.
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \Drafts
  }
  mailbox Junk {
    special_use = \Junk
  }
  mailbox Trash {
    special_use = \Trash
  }
  mailbox Sent {
    special_use = \Sent
  }
  mailbox Archives {
    special_use = \Archive
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3_port
  }
  inet_listener pop3s {
    port = 0
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
service pop3-login {
  chroot =
}
CONF
chown -R "$user:$group" "$work"

"${runas[@]}" dovecot -F -c "$work/dovecot.conf" &
pid=$!
for _ in $(seq 100); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $imap_port), 1)" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
echo "dovecot $(dovecot --version) on imap $imap_port, pop3 $pop3_port"

# Two deliveries through Dovecot's LDA (they land in new/), the rest over IMAP.
for n in 1 2; do
    printf 'From: lda%s@example.org\nTo: alice@example.org\nSubject: delivered by dovecot-lda %s\nMessage-ID: <lda%s@example.org>\n\nLDA body %s\n' \
        "$n" "$n" "$n" "$n" | "${runas[@]}" /usr/lib/dovecot/dovecot-lda -c "$work/dovecot.conf" -d alice -f "lda$n@example.org"
done
python3 "$repo/scripts/dovecot_populate.py" "127.0.0.1:$imap_port" alice dovecot-pw
# One more LDA delivery after the IMAP session: a message no client has seen (new/).
printf 'From: late@example.org\nTo: alice@example.org\nSubject: late\n\nlate body\n' \
    | "${runas[@]}" /usr/lib/dovecot/dovecot-lda -c "$work/dovecot.conf" -d alice -f late@example.org

rm -rf "$out"
mkdir -p "$out"
python3 "$repo/tests/fixtures/mail_probe.py" --imap "127.0.0.1:$imap_port" --pop3 "127.0.0.1:$pop3_port" \
    --user alice --password dovecot-pw > "$out/served.txt"
kill -TERM "$pid"
wait "$pid" || true
pid=

src=$work/mail/alice/Maildir
(cd "$src" && find . \( -name 'dovecot.index*' -o -name 'dovecot.list.index*' -o -name 'dovecot-uidvalidity*' \
        -o -name 'dovecot.mailbox.log*' \) -prune -o -print | sort) | while read -r rel; do
    rel=${rel#./}
    [ "$rel" = . ] && continue
    if [ -d "$src/$rel" ]; then
        mkdir -p "$out/Maildir/$rel"
    else
        cp -p "$src/$rel" "$out/Maildir/$rel"
    fi
done
# Empty cur/new/tmp directories: git keeps no empty directories.
find "$out/Maildir" -type d -empty -exec touch {}/.keep \;
(cd "$out/Maildir" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) ! -name '.keep' -printf '%P\t%T@\n' \
    | sed 's/\.[0-9]*$//' | sort) > "$out/mtimes.txt"
chown -R "$(stat -c %u:%g "$repo")" "$out"
echo "wrote $out ($(wc -l < "$out/mtimes.txt") messages, $(wc -l < "$out/served.txt") served lines)"
