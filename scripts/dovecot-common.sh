# shellcheck shell=bash disable=SC2034
# (SC2034: the variables set here are read by the scripts that source this file.)
# Shared by the scripts that run Debian's Dovecot beside nestbox (sourced, not run):
# scripts/dovecot-fixture.sh and scripts/dovecot-diff.sh.

# Dovecot refuses to run its login processes as root: as root, run it all as nobody.
# Sets `runas` (the command prefix), `user` and `group` (Dovecot's internal user).
if [ "$(id -u)" = 0 ]; then
    runas=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
    user=nobody
else
    runas=()
    user=$(id -un)
fi
group=$(id -gn "$user")

# free_port, wait_port, start_nestbox_imap.
# shellcheck source=scripts/loopback-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/loopback-common.sh"
