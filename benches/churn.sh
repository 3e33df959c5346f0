#!/usr/bin/env bash
# Steady churn (issue #16): a month of a household's mail, compressed in time, on a fresh
# server with the default store settings. Checks that the data dir stays bounded by the
# live mail's compressed size plus a constant.
#
#   benches/churn.sh [CORPUS_DIR]
#
# Three users. Every simulated day delivers PER_DAY messages per user by LMTP (corpus
# messages, each copy with a unique Message-ID and an `X-Churn-Day:` header; 5% of
# alice's mail goes to bob too), in three rounds with a pause of 0.5-3 s after each.
# After each round:
#   alice, bob (IMAP): read 80% of the new mail (FETCH BODY[], which sets \Seen), flag 3%
#     (\Flagged), MOVE 15% unread to Trash; bob also deletes 10% of what he read in
#     INBOX (\Deleted + EXPUNGE);
#   carol (POP3): downloads what is new (RETR), deletes 80% of it (DELE, QUIT) and
#     leaves the rest on the server.
# At the end of the day: alice and bob MOVE yesterday's INBOX to Archive, unflag 30% of
# the flagged mail older than KEEP days and MOVE the unflagged mail older than KEEP days
# from Archive to Trash; alice empties Trash (\Deleted + EXPUNGE); then `nestbox retention
# run` (the retention-standard plugin for bob and carol: Trash emptied and POP3-retrieved
# mail expunged at every run, `trash_days`/`pop3_days` 0, because a day here is seconds).
# Then the store is left alone QUIET seconds (a night) and sampled: `du` of the data dir
# (allocated and apparent), and from `nestbox stats` the live compressed size (the sum
# of the users' physical bytes: loose blobs plus each live packed message's share of its
# pack), the stored compressed total (packs counted whole, dead parts too), the file size
# and its free pages.
#
# At the end it waits (at most SETTLE s) until `du` has not changed for 10 s, then checks
# allocated <= 1.2 x live compressed + 8 MiB, prints PASS or FAIL (exit 1), and, for
# information, what a forced `nestbox compact` gives.
# Knobs: DAYS=30 PER_DAY=800 KEEP=8 QUIET=5 SETTLE=120 SEED=16 NB_BIN (use this nestbox)
# RETENTION_WASM (use this build of plugins/retention-standard) KEEP_TMP=1 (keep the
# temp dir, with the data dir and the server's log, for a look afterwards).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/spamassassin-dev}
DAYS=${DAYS:-30}
PER_DAY=${PER_DAY:-800}
KEEP=${KEEP:-8}
QUIET=${QUIET:-5}
SETTLE=${SETTLE:-120}
SEED=${SEED:-16}
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -n "${NB_BIN:-}" ]; then
    NB=$NB_BIN
else
    echo "== building (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet)
    NB=$TARGET_DIR/release/nestbox
fi
WASM=${RETENTION_WASM:-}
if [ -z "$WASM" ]; then
    echo "== building plugins/retention-standard (wasm32-wasip2)" >&2
    (cd "$ROOT" && env -u RUSTFLAGS -u CARGO_TARGET_DIR cargo build --release --quiet \
        --target wasm32-wasip2 --manifest-path plugins/retention-standard/Cargo.toml \
        --target-dir "$TARGET_DIR/wasm-plugins") ||
        { echo "cannot build the plugin (rustup target add wasm32-wasip2?)" >&2; exit 2; }
    WASM=$TARGET_DIR/wasm-plugins/wasm32-wasip2/release/retention_standard.wasm
fi
[ -x "$NB" ] || { echo "no nestbox binary at $NB" >&2; exit 2; }
[ -f "$WASM" ] || { echo "no retention plugin at $WASM" >&2; exit 2; }
NB=$(realpath "$NB") WASM=$(realpath "$WASM")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-churn.XXXXXX")
SERVER_PID=
trap 'nb_stop; if [ -n "${KEEP_TMP:-}" ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi' EXIT
cat > "$TMP/config.ron" <<EOF
(data_dir: "$TMP/data", hostname: "localhost",
 imap: (listen: ["127.0.0.1:0"], tls_listen: []),
 pop3: (listen: ["127.0.0.1:0"], tls_listen: []),
 managesieve: (listen: []),
 lmtp: (listen: ["127.0.0.1:0"], unix_socket: None),
 retention: (interval_secs: 0),
 plugins: [
    (name: "retention", path: "$WASM", hooks: [Retention], users: ["bob", "carol"],
     settings: {"trash_days": "0", "pop3_days": "0"}),
 ])
EOF
nb_serve "$TMP/config.ron" "$TMP" alice bob carol || exit 1
echo "== $DAYS days, $PER_DAY messages per user and day, Archive kept $KEEP days;" \
    "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

PYTHONPATH=$ROOT/benches python3 - "$NB" "$TMP/config.ron" "$TMP/data" "$CORPUS" "$A_LMTP" "$A_IMAP" "$A_POP3" \
    "$DAYS" "$PER_DAY" "$KEEP" "$QUIET" "$SETTLE" "$SEED" <<'PY'
import imaplib, poplib, random, re, socket, subprocess, sys, threading, time
from corpus import without_message_id

(nb, cfg, data, corpus, a_lmtp, a_imap, a_pop3,
 days, per_day, keep, quiet, settle, seed) = sys.argv[1:]
days, per_day, keep, quiet, settle = int(days), int(per_day), int(keep), float(quiet), int(settle)
rng = random.Random(int(seed))
poplib._MAXLINE = 1 << 20  # corpus messages have lines longer than poplib's 2048
MIB = 1 << 20

def addr(a):
    host, port = a.rsplit(':', 1)
    return host, int(port)

# The corpus with CRLF line ends and without its Message-ID (each copy gets a fresh one).
msgs = [text.replace(b'\n', b'\r\n') for _, text in without_message_id(corpus)]
next_msg = 0

class Lmtp:
    """LMTP (RFC 2033) with MAIL, RCPT and DATA pipelined (RFC 2920)."""
    def __init__(self):
        self.s = socket.create_connection(addr(a_lmtp))
        self.f = self.s.makefile('rb')
        self.reply(220)
        self.s.sendall(b'LHLO churn.test\r\n')
        self.reply(250)

    def reply(self, want):
        while True:
            line = self.f.readline()
            if not line:
                raise IOError('LMTP connection closed')
            if line[3:4] != b'-':
                break
        if int(line[:3]) != want:
            raise IOError(f'LMTP: wanted {want}, got {line!r}')

    def deliver(self, rcpts, msg):
        cmds = [b'MAIL FROM:<sender@example.org>']
        cmds += [b'RCPT TO:<%s@localhost>' % r.encode() for r in rcpts]
        cmds.append(b'DATA')
        self.s.sendall(b'\r\n'.join(cmds) + b'\r\n')
        for _ in cmds[:-1]:
            self.reply(250)
        self.reply(354)
        data = re.sub(rb'(?m)^\.', b'..', msg)
        if not data.endswith(b'\r\n'):
            data += b'\r\n'
        self.s.sendall(data + b'.\r\n')
        for _ in rcpts:
            self.reply(250)

    def close(self):
        self.s.sendall(b'QUIT\r\n')
        self.s.close()

lmtp_conns = [Lmtp() for _ in range(3)]

def deliver_round(day, rnd, count):
    global next_msg
    jobs = []
    for user in ('alice', 'bob', 'carol'):
        for _ in range(count):
            rcpts = [user]
            if user == 'alice' and rng.random() < 0.05:
                rcpts.append('bob')
            body = msgs[next_msg % len(msgs)]
            head = (b'Message-ID: <%d.%d.%d@churn.nestbox>\r\nX-Churn-Day: d%03d\r\n'
                    % (day, rnd, next_msg, day))
            next_msg += 1
            jobs.append((rcpts, head + body))
    rng.shuffle(jobs)
    errors = []
    def run(conn, part):
        try:
            for rcpts, m in part:
                conn.deliver(rcpts, m)
        except Exception as e:
            errors.append(e)
    threads = [threading.Thread(target=run, args=(c, jobs[i::3]))
               for i, c in enumerate(lmtp_conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return len(jobs)

def ok(res, what):
    typ, data = res
    if typ != 'OK':
        raise RuntimeError(f'IMAP {what}: {typ} {data}')
    return data

def chunks(uids, n):
    for i in range(0, len(uids), n):
        yield b','.join(uids[i:i + n]).decode()

class Imap:
    def __init__(self, user):
        self.user = user
        self.c = imaplib.IMAP4(*addr(a_imap))
        ok(self.c.login(user, 'pw'), 'LOGIN')

    def select(self, box):
        return int(ok(self.c.select(box), 'SELECT ' + box)[0])

    def search(self, *keys):
        data = ok(self.c.uid('SEARCH', *keys), 'SEARCH')
        return data[0].split() if data and data[0] else []

    def move(self, uids, to):
        for s in chunks(uids, 200):
            ok(self.c.uid('MOVE', s, to), 'MOVE')

    def store(self, uids, how, flags):
        for s in chunks(uids, 200):
            ok(self.c.uid('STORE', s, how, flags), 'STORE')

    def days(self):
        """(uid, flags, day) of every message in the selected mailbox."""
        out = []
        data = ok(self.c.uid('FETCH', '1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (X-Churn-Day)])'),
                  'FETCH')
        for item in data:
            if not isinstance(item, tuple):
                continue
            uid = re.search(rb'UID (\d+)', item[0])
            flags = re.search(rb'FLAGS \(([^)]*)\)', item[0])
            day = re.search(rb'd(\d+)', item[1])
            if uid and day:
                out.append((uid.group(1), flags.group(1) if flags else b'', int(day.group(1))))
        return out

    def round(self):
        self.select('INBOX')
        new = self.search('UNSEEN', 'UNDELETED')
        rng.shuffle(new)
        junk = new[:len(new) * 15 // 100]
        rest = new[len(junk):]
        read = rest[:len(rest) * 80 // 100]
        self.move(junk, 'Trash')
        for s in chunks(read, 50):
            ok(self.c.uid('FETCH', s, '(BODY[])'), 'FETCH BODY[]')
        self.store(rng.sample(read, len(read) * 3 // 100), '+FLAGS.SILENT', '(\\Flagged)')
        if self.user == 'bob':
            gone = [u for u in rng.sample(read, len(read) // 10)]
            if gone:
                self.store(gone, '+FLAGS.SILENT', '(\\Deleted)')
                ok(self.c.expunge(), 'EXPUNGE')

    def end_of_day(self, day):
        self.select('INBOX')
        old = [u for u, _, d in self.days() if d < day]
        self.move(old, 'Archive')
        self.select('Archive')
        items = self.days()
        flagged = [u for u, f, d in items if b'\\Flagged' in f and d <= day - keep]
        self.store(rng.sample(flagged, len(flagged) * 30 // 100), '-FLAGS.SILENT', '(\\Flagged)')
        self.move([u for u, f, d in items if b'\\Flagged' not in f and d <= day - keep], 'Trash')
        if self.user == 'alice' and self.select('Trash') > 0:
            ok(self.c.uid('STORE', '1:*', '+FLAGS.SILENT', '(\\Deleted)'), 'STORE')
            ok(self.c.expunge(), 'EXPUNGE')

    def close(self):
        self.c.logout()

pop3_seen = set()

def pop3_round():
    p = poplib.POP3(*addr(a_pop3))
    p.user('carol')
    p.pass_('pw')
    for line in p.uidl()[1]:
        n, uidl = line.split()
        if uidl in pop3_seen:
            continue
        p.retr(int(n))
        pop3_seen.add(uidl)
        if rng.random() < 0.8:
            p.dele(int(n))
    p.quit()

def du(flag):
    out = subprocess.run(['du', '-s', flag, data], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])

def stats():
    out = subprocess.run([nb, '--config', cfg, 'stats'], capture_output=True, text=True,
                         check=True).stdout
    s = {'messages': 0, 'live': 0, 'loose': 0}
    for line in out.splitlines():
        f = line.split()
        if line.startswith('store: '):
            m = re.search(r'(\d+) compressed, (\d+) in dictionaries, file (\d+)', line)
            s['compressed'], s['dict'], s['file'] = map(int, m.groups())
        elif line.startswith('disk: '):
            s['free'] = int(re.search(r'(\d+) free in the file', line).group(1))
        elif f[:2] == ['table', 'loose_data']:
            s['loose'] = int(f[2])
        elif len(f) == 4 and not line.startswith(' ') and f[0] in ('alice', 'bob', 'carol'):
            s['messages'] += int(f[1])
            s['live'] += int(f[3])
    return s

def retention():
    out = subprocess.run([nb, '--config', cfg, 'retention', 'run'], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError('retention run: ' + out.stderr)
    return out.stdout.strip().splitlines()[-1]

def mib(n):
    return f'{n / MIB:8.2f}'

print('day  messages   live MiB  stored MiB    file MiB  du MiB  apparent  free MiB'
      '  loose MiB  du/live', flush=True)
samples = []

def sample(day):
    s = stats()
    s['day'], s['du'], s['apparent'] = day, du('-B1'), du('-b')
    samples.append(s)
    print(f"{day:3} {s['messages']:9} {mib(s['live'])}   {mib(s['compressed'])}    "
          f"{mib(s['file'])} {mib(s['du'])}  {mib(s['apparent'])}  {mib(s['free'])}   "
          f"{mib(s['loose'])}  {s['du'] / max(s['live'], 1):6.2f}", flush=True)
    return s

clients = {u: Imap(u) for u in ('alice', 'bob')}
t0 = time.time()
delivered = 0
for day in range(1, days + 1):
    for rnd in range(3):
        delivered += deliver_round(day, rnd, per_day // 3 + (1 if rnd < per_day % 3 else 0))
        for c in clients.values():
            c.round()
        pop3_round()
        time.sleep(rng.uniform(0.5, 3.0))
    for c in clients.values():
        c.end_of_day(day)
    said = retention()
    time.sleep(quiet)
    sample(day)
    print(f'    retention: {said}', file=sys.stderr, flush=True)
for c in clients.values():
    c.close()
for c in lmtp_conns:
    c.close()
print(f'delivered {delivered} messages in {time.time() - t0:.0f} s', flush=True)

# Settle: no writes any more; wait until du has not changed for 10 s (at most `settle` s).
start, last, since = time.time(), None, time.time()
while time.time() - start < settle:
    now = du('-B1')
    if now != last:
        last, since = now, time.time()
    elif time.time() - since >= 10:
        break
    time.sleep(1)
print(f'settled after {time.time() - start:.0f} s', flush=True)
final = sample('end')
limit = 1.2 * final['live'] + 8 * MIB
verdict = final['du'] <= limit
print(f"final: allocated {final['du']} bytes, apparent {final['apparent']}, file "
      f"{final['file']} ({final['free']} free in it); live compressed {final['live']}, "
      f"stored compressed {final['compressed']}, {final['messages']} messages")
print(f"check: allocated {final['du']} <= 1.2 x live + 8 MiB = {limit:.0f}: "
      f"{'PASS' if verdict else 'FAIL'} (allocated = {final['du'] / max(final['live'], 1):.2f}"
      f" x live; {final['du'] / max(final['compressed'], 1):.2f} x stored compressed)")
print(subprocess.run([nb, '--config', cfg, 'stats'], capture_output=True, text=True)
      .stdout.split('store: ')[-1].strip())
peak = max(samples, key=lambda s: s['du'])
print(f"peak allocated at a day's end: {peak['du']} bytes (day {peak['day']}, "
      f"{peak['du'] / max(peak['live'], 1):.2f} x live)")
# For information: what a forced compaction would give back.
said = subprocess.run([nb, '--config', cfg, 'compact'], capture_output=True, text=True)
print(f"after a forced compact ({said.stdout.strip() or said.stderr.strip()}): allocated "
      f"{du('-B1')} bytes")
sys.exit(0 if verdict else 1)
PY
