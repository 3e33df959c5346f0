// The imapflow side of scripts/parser-check.sh: reads every message of INBOX from nestbox
// through imapflow (the Nodemailer/EmailEngine IMAP client, whose response parser is
// strict) and prints what it read, one JSON line per message, for parser_check.py to judge.
//
//   NODE_PATH=/tmp/parsers/node_modules node parser_check.cjs PORT USER PASSWORD OUT_DIR
//
// Writes OUT_DIR/imapflow.jsonl and OUT_DIR/imapflow-session.jsonl (the mailbox session:
// LIST, STATUS, SELECT with CONDSTORE, SEARCH, STORE, COPY, MOVE, EXPUNGE, IDLE). Every
// warning or error imapflow logs (an unparseable line among them) is kept with the UID
// of the message being read, or as a line without UID.
'use strict';
const { ImapFlow } = require('imapflow');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const [port, user, pass, out] = process.argv.slice(2);
const sha = b => (b ? crypto.createHash('sha256').update(b).digest('hex') : null);
const results = new Map(); // uid -> the JSON line
const rec = uid => {
    if (!results.has(uid)) results.set(uid, { uid, errs: [] });
    return results.get(uid);
};
const loose = []; // logged problems not tied to a message
let current = null; // the UID range being read, for the logger

// imapflow's logger receives the parser's complaints: keep warn and error.
const logger = {
    debug() {}, info() {}, trace() {},
    warn: o => complain('warn', o),
    error: o => complain('error', o)
};
function complain(level, o) {
    // expected: NO to BINARY of a part the server cannot decode (kept as bin1_err), and
    // the closed connections of the COMPRESS probe (kept as compress-stall)
    const what = o.msg || (o.err && o.err.message) || '';
    if (/BINARY\.PEEK/.test(current) && what === 'Command failed') return;
    if (/^COMPRESS/.test(current) && what === 'Connection not available') return;
    const text = `${level}: ${o.msg || ''} ${o.err ? o.err.message || o.err : ''} ${o.src === 's' ? '' : ''}`.trim();
    loose.push({ kind: 'imapflow-log', err: `${text} [while ${current}] ${(o.msg || '').slice(0, 300)}` });
}

// Compression off for the checks: nestbox's COMPRESS=DEFLATE stream can stop short of the
// end of a large response (see compressProbe), which stalls imapflow until its timeout.
function connect(compress) {
    return new ImapFlow({ host: '127.0.0.1', port: Number(port), secure: false, auth: { user, pass }, logger, disableAutoIdle: true, doSTARTTLS: false, disableCompression: !compress });
}

// With COMPRESS=DEFLATE on (imapflow's default), fetches the sampled parts again, each
// message with a 5 s limit; a response that does not complete in time is a failure (at
// most 5 are looked for, each costs a new connection).
async function compressProbe() {
    const sample = JSON.parse(fs.readFileSync(path.join(out, 'sample.json')));
    let client = null, stalls = 0, done = 0;
    for (const [uid, secs] of Object.entries(sample)) {
        if (!client) {
            client = connect(true);
            client.on('error', () => {});
            await client.connect();
            if (!client.capabilities.has('COMPRESS=DEFLATE')) return;
            await client.mailboxOpen('INBOX', { readOnly: true });
        }
        current = `COMPRESS=DEFLATE, UID FETCH ${uid} BODY.PEEK[${secs.join('],[')}]`;
        let timer;
        const timeout = new Promise(resolve => { timer = setTimeout(() => resolve('timeout'), 5000); });
        const r = await Promise.race([client.fetchOne(uid, { bodyParts: secs }, { uid: true }).catch(e => e), timeout]);
        clearTimeout(timer);
        if (r === 'timeout') {
            stalls++;
            rec(Number(uid)).errs.push(`compress-stall: ${current}: no tagged answer within 5 s with COMPRESS=DEFLATE (it comes without compression)`);
            client.close();
            client = null;
            if (stalls >= 5) break;
        } else done++;
    }
    if (client) await client.logout();
    console.error(`COMPRESS=DEFLATE probe: ${done} answers complete, ${stalls} stalled`);
}

// The BODYSTRUCTURE tree in parser_check.py's shape: {t, size, lines, kids}.
function tree(n) {
    const o = { t: n.type, size: n.size === undefined ? null : n.size, lines: n.lineCount === undefined ? null : n.lineCount };
    if (n.childNodes) o.kids = n.childNodes.map(tree);
    return o;
}
const addr = a => (a && a.address) || '';

async function fetchBatches(client, total, query, options, onMsg) {
    for (let lo = 1; lo <= total; lo += 200) {
        const range = `${lo}:${Math.min(lo + 199, total)}`;
        current = `UID FETCH ${range} ${Object.keys(query).join(',')}`;
        if (process.env.PC_VERBOSE) console.error(current);
        try {
            for await (const m of client.fetch(range, query, Object.assign({ uid: true }, options))) onMsg(m);
        } catch (err) {
            loose.push({ kind: 'fetch-failed', err: `${current}: ${err.message} ${err.responseText || ''}` });
        }
    }
}

async function messages() {
    const client = connect();
    client.on('error', err => loose.push({ kind: 'connection-error', err: `${err.message} [while ${current}]` }));
    await client.connect();
    const box = await client.mailboxOpen('INBOX', { readOnly: true });
    const total = box.uidNext - 1;
    // 1. the whole message and its metadata
    await fetchBatches(client, total, { uid: true, flags: true, internalDate: true, size: true, envelope: true, bodyStructure: true, source: true }, {}, m => {
        const r = rec(m.uid), e = m.envelope || {};
        Object.assign(r, {
            size: m.size, body_len: m.source ? m.source.length : null, body_sha: sha(m.source),
            flags: m.flags ? [...m.flags] : null,
            internaldate: m.internalDate instanceof Date && !isNaN(m.internalDate) ? m.internalDate.toISOString() : null,
            subject: e.subject === undefined ? null : e.subject, from: (e.from || []).map(addr),
            message_id: e.messageId || null, tree: m.bodyStructure ? tree(m.bodyStructure) : null
        });
    });
    // 2. BODY[1] and the From and Subject header fields
    await fetchBatches(client, total, { uid: true, bodyParts: ['1'], headers: ['From', 'Subject'] }, {}, m => {
        const r = rec(m.uid), b1 = m.bodyParts && m.bodyParts.get('1');
        Object.assign(r, { body1_len: b1 ? b1.length : null, body1_sha: sha(b1), hdr_sha: sha(m.headers), hdr: m.headers ? m.headers.toString('latin1') : null });
    });
    // 3. BINARY[1] (where offered), one message at a time: a part the server cannot
    // decode is answered NO, which must not sink the other messages of a batch
    if (client.capabilities.has('BINARY') || client.capabilities.has('IMAP4rev2')) {
        for (let uid = 1; uid <= total; uid++) {
            current = `UID FETCH ${uid} BINARY.PEEK[1]`;
            if (process.env.PC_VERBOSE && uid % 250 === 0) console.error(current);
            const r = rec(uid);
            try {
                const m = await client.fetchOne(String(uid), { bodyParts: ['1'] }, { uid: true, binary: true });
                const b = m && m.bodyParts && m.bodyParts.get('1');
                Object.assign(r, { bin1_sha: b ? sha(normText(b)) : null, bin1_len: b ? b.length : null, bin1_err: b ? null : 'no data' });
            } catch (err) {
                Object.assign(r, { bin1_sha: null, bin1_err: `${err.message} ${err.responseText || ''}`.trim() });
            }
        }
    }
    // 4. the sampled parts: every leaf and message/rfc822 section of 300 messages
    const sample = JSON.parse(fs.readFileSync(path.join(out, 'sample.json')));
    for (const [uid, secs] of Object.entries(sample)) {
        current = `UID FETCH ${uid} BODY.PEEK[${secs.join('],[')}]`;
        if (process.env.PC_VERBOSE) console.error(current);
        try {
            const m = await client.fetchOne(uid, { bodyParts: secs }, { uid: true });
            const r = rec(Number(uid));
            r.parts = {};
            for (const s of secs) {
                const b = m && m.bodyParts && m.bodyParts.get(s);
                if (b) r.parts[s] = b.length;
                else r.errs.push(`BODY[${s}] missing from the answer`);
            }
        } catch (err) {
            rec(Number(uid)).errs.push(`${current}: ${err.message}`);
        }
    }
    await client.logout();
}

// Decoded text compared loosely (parser_check.py norm_text does the same).
function normText(b) {
    return Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n').split('\n').map(l => l.replace(/[ \t\r\f\v]+$/, '')).join('\n').replace(/[ \t\n\r\f\v]+$/, ''), 'latin1');
}

// The mailbox session; each step is one line {step, ok, info, err}.
async function session() {
    const steps = [];
    const step = async (name, fn) => {
        current = `session ${name}`;
        if (process.env.PC_VERBOSE) console.error(current);
        try {
            const info = await fn();
            steps.push({ step: name, ok: true, info: info === undefined ? '' : String(info) });
        } catch (err) {
            steps.push({ step: name, ok: false, err: `${err.message} ${err.responseText || ''}`.trim() });
        }
    };
    const c = connect(), other = connect();
    for (const x of [c, other]) x.on('error', err => loose.push({ kind: 'connection-error', err: `${err.message} [while ${current}]` }));
    await c.connect();
    await other.connect();
    const work = 'PC-imapflow', moved = 'PC-imapflow-moved';
    await step('LIST', async () => (await c.list()).length + ' mailboxes');
    await step('CREATE', async () => { await c.mailboxCreate(work); await c.mailboxCreate(moved); });
    await step('STATUS', async () => { const s = await c.status('INBOX', { messages: true, uidNext: true, unseen: true, highestModseq: true }); return `${s.messages} messages, modseq ${s.highestModseq}`; });
    await step('SELECT-CONDSTORE', async () => {
        const b = await c.mailboxOpen('INBOX');
        if (!c.enabled.has('CONDSTORE') || !b.highestModseq) throw new Error('no HIGHESTMODSEQ');
        return `exists ${b.exists}, highestmodseq ${b.highestModseq}`;
    });
    await step('SEARCH-UNSEEN', async () => (await c.search({ seen: false })).length);
    await step('SEARCH-TEXT', async () => (await c.search({ body: 'money' })).length + ' BODY, ' + (await c.search({ text: 'money' })).length + ' TEXT');
    await step('UID-SEARCH-SINCE', async () => (await c.search({ since: new Date('2002-01-01') }, { uid: true })).length);
    await step('SEARCH-OR-FROM', async () => (await c.search({ or: [{ from: 'yahoo' }, { subject: 're:' }] })).length);
    await step('STORE-FLAGS', async () => { if (!(await c.messageFlagsAdd('1:5', ['\\Flagged']))) throw new Error('refused'); });
    await step('COPY', async () => { const r = await c.messageCopy('1:10', work); return r && r.uidMap ? r.uidMap.size + ' copied' : ''; });
    await step('SELECT-WORK', async () => (await c.mailboxOpen(work)).exists);
    await step('MOVE', async () => { const r = await c.messageMove('1:3', moved); return r && r.uidMap ? r.uidMap.size + ' moved' : ''; });
    await step('EXPUNGE', async () => { if (!(await c.messageDelete('1:2'))) throw new Error('refused'); return c.mailbox.exists + ' left'; });
    await step('IDLE', async () => {
        await other.connect().catch(() => {});
        let seen = null;
        c.on('exists', d => { seen = d; });
        const idling = c.idle();
        await new Promise(r => setTimeout(r, 500));
        await other.append(work, 'From: a@example.com\r\nSubject: idle\r\n\r\nbody\r\n');
        await new Promise(r => setTimeout(r, 2000));
        await c.noop(); // ends the IDLE
        await idling;
        if (!seen) throw new Error('no EXISTS during IDLE');
        return `EXISTS ${seen.count} (was ${seen.prevCount})`;
    });
    await c.logout();
    await other.logout();
    fs.writeFileSync(path.join(out, 'imapflow-session.jsonl'), steps.map(s => JSON.stringify(s)).join('\n') + '\n');
}

(async () => {
    await messages();
    await compressProbe();
    await session();
    const lines = [...results.values()].map(r => JSON.stringify(r)).concat(loose.map(l => JSON.stringify(l)));
    fs.writeFileSync(path.join(out, 'imapflow.jsonl'), lines.join('\n') + '\n');
    console.log(`imapflow: ${results.size} messages read, ${loose.length} log lines or failed commands`);
})().catch(err => { console.error('imapflow run failed:', err); process.exit(1); });
