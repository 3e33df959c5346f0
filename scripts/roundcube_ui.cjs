// Shared by the scripts that drive Roundcube in headless Chromium with playwright-core
// and Debian's chromium (no browser download): roundcube_sieve_ui.cjs and
// real_clients_ui.cjs.
//
// Environment: RC_URL, RC_USER, RC_PASS, SHOTS (screenshot dir), CHROMIUM (browser
// binary), NODE_PATH (where playwright-core is installed); DEBUG_DIR (optional) gets
// fail-<step>.png and the page's HTML when a step fails.
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
};

let step = 'start';
const log = (s) => {
    step = s;
    console.log(`   ui: ${s}`);
};

// shot(page, 'roundcube-sieve-1-form'): saves SHOTS/<name>.png.
async function shot(page, name) {
    const file = path.join(env('SHOTS'), `${name}.png`);
    await page.screenshot({ path: file });
    console.log(`   ui: screenshot ${path.basename(file)}`);
}

async function login(page) {
    log('login');
    await page.goto(env('RC_URL'));
    await page.fill('#rcmloginuser', env('RC_USER'));
    await page.fill('#rcmloginpwd', env('RC_PASS'));
    await Promise.all([page.waitForURL(/_task=mail/), page.click('#rcmloginsubmit')]);
    await page.waitForSelector('#mailboxlist li.inbox');
}

// run(modes): launches Chromium, logs in and runs modes[process.argv[2]](page). Exits
// non-zero naming the step that failed.
function run(modes) {
    const mode = process.argv[2];
    (async () => {
        const browser = await chromium.launch({
            executablePath: env('CHROMIUM'),
            headless: true,
            args: ['--no-sandbox', '--disable-dev-shm-usage'],
        });
        const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
        page.setDefaultTimeout(20000);
        try {
            if (!modes[mode]) throw new Error(`unknown mode ${mode}`);
            await login(page);
            await modes[mode](page);
        } catch (e) {
            console.error(`ui: failed at "${step}": ${e.message}`);
            const dir = process.env.DEBUG_DIR;
            if (dir) {
                const tag = step.replace(/[^a-z0-9]+/gi, '-');
                await page.screenshot({ path: path.join(dir, `fail-${tag}.png`) }).catch(() => {});
                const html = [await page.content().catch(() => '')];
                for (const f of page.frames()) html.push(`<!-- frame ${f.url()} -->\n${await f.content().catch(() => '')}`);
                fs.writeFileSync(path.join(dir, `fail-${tag}.html`), html.join('\n'));
            }
            await browser.close();
            process.exit(1);
        }
        await browser.close();
    })();
}

module.exports = { env, log, shot, login, run };
