// Drives Roundcube in headless Chromium for scripts/roundcube-sieve.sh (playwright-core,
// Debian's chromium; no browser download).
//
//   node roundcube_sieve_ui.cjs create   log in, Settings > Filters, create and save the
//                                        filter "From contains SENDER_X -> Move to FOLDER_Y",
//                                        read it back; then a syntax error in the raw
//                                        editor must be refused and its line marked
//   node roundcube_sieve_ui.cjs show     log in, open FOLDER_Y (after the delivery)
//
// Environment: RC_URL, RC_USER, RC_PASS, SENDER_X, FOLDER_Y, SHOTS (screenshot dir),
// CHROMIUM (browser binary), NODE_PATH (where playwright-core is installed).
// Exits non-zero with the step that failed; on failure it saves fail-<step>.png and the
// page's HTML in $DEBUG_DIR when that is set.
'use strict';
const path = require('path');
const { chromium } = require('playwright-core');

const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
};
const url = env('RC_URL');
const shots = env('SHOTS');
const senderX = env('SENDER_X');
const folderY = env('FOLDER_Y');
const mode = process.argv[2];

let step = 'start';
const log = (s) => {
    step = s;
    console.log(`   ui: ${s}`);
};

async function shot(page, name) {
    const file = path.join(shots, `roundcube-sieve-${name}.png`);
    await page.screenshot({ path: file });
    console.log(`   ui: screenshot ${path.basename(file)}`);
}

async function login(page) {
    log('login');
    await page.goto(url);
    await page.fill('#rcmloginuser', env('RC_USER'));
    await page.fill('#rcmloginpwd', env('RC_PASS'));
    await Promise.all([page.waitForURL(/_task=mail/), page.click('#rcmloginsubmit')]);
    await page.waitForSelector('#mailboxlist li.inbox');
}

async function create(page) {
    log('open Settings > Filters');
    await page.click('a.settings');
    await page.click('#settingstabpluginmanagesieve a');
    await page.waitForURL(/_action=plugin\.managesieve/);
    // The Create button is enabled once the plugin has read the filter sets.
    log('click Create');
    await page.click('#layout-content .header a.create:not(.disabled)');
    const frame = page.frameLocator('#filter-box');
    log('fill the filter form');
    await frame.locator('#_name').fill(`Move ${senderX} to ${folderY}`);
    await frame.locator('#header0').selectOption('from');
    await frame.locator('#rule_op0').selectOption('contains');
    await frame.locator('#rule_target0_list input').first().fill(senderX);
    await frame.locator('#action_type0').selectOption('fileinto');
    await frame.locator('#action_mailbox0').selectOption(folderY);
    await shot(page, '1-form');
    log('save');
    await frame.locator('.formbuttons button.submit').click();
    // Roundcube confirms with a message and lists the new filter.
    await page.waitForSelector('#messagestack .confirmation');
    await page.waitForSelector(`#filterslist tr:has-text("${senderX}")`);
    await shot(page, '2-saved');
    // Read back from the server: a fresh page lists the filter set Roundcube created
    // (LISTSCRIPTS) and the filter parsed from the script (GETSCRIPT).
    log('reload the filters');
    await page.reload();
    await page.waitForSelector(`#filterslist tr:has-text("${senderX}")`);
    await page.click(`#filterslist tr:has-text("${senderX}")`);
    const target = page.frameLocator('#filter-box').locator('#rule_target0_list input').first();
    await target.waitFor();
    if ((await target.inputValue()) !== senderX) throw new Error('the filter read back differs');
    const mailbox = await page.frameLocator('#filter-box').locator('#action_mailbox0').inputValue();
    if (mailbox !== folderY) throw new Error(`the filter read back moves to ${mailbox}`);

    // A syntax error typed in the raw editor (Actions > Edit filter set): the server's
    // NO names the line, which Roundcube marks. The stored script stays as it was.
    log('raw editor: save a script with an error');
    await page.click('#layout-list .header a.actions');
    await page.click('#filtersetmenu-menu a.edit.active');
    const raw = page.frameLocator('#filter-box');
    await raw.locator('.CodeMirror').waitFor();
    const badLine = await raw.locator('.CodeMirror').evaluate((el) => {
        const cm = el.CodeMirror;
        const text = cm.getValue().replace(/\n*$/, '\n') + 'frobnicate "me";\n';
        cm.setValue(text);
        return text.split('\n').length - 1;
    });
    await raw.locator('.formbuttons button.submit').click();
    await page.waitForSelector('#messagestack .error');
    log(`raw editor: line ${badLine} must be marked`);
    await raw.locator('.CodeMirror .line-error').waitFor();
    // The lines Roundcube marked, from the editor (CodeMirror 5's API).
    const marked = await raw.locator('.CodeMirror').evaluate((el) => {
        const cm = el.CodeMirror;
        const out = [];
        cm.eachLine((h) => {
            const info = cm.lineInfo(h);
            if ((info.bgClass || '').includes('line-error')) {
                const why = info.gutterMarkers && info.gutterMarkers.errorGutter;
                out.push({ line: info.line + 1, why: why ? why.title : '' });
            }
        });
        return out;
    });
    if (marked.length !== 1 || marked[0].line !== badLine) {
        throw new Error(`marked lines ${JSON.stringify(marked)}, expected ${badLine}`);
    }
    console.log(`   ui: the raw editor marks line ${badLine}:${marked[0].why}`);
    await shot(page, '3-error');
}

async function show(page) {
    log(`open folder ${folderY}`);
    await page.click(`#mailboxlist a[rel="${folderY}"]`);
    await page.waitForSelector('#messagelist tbody tr');
    await page.click('#messagelist tbody tr >> nth=0');
    await page.waitForSelector('#messagecontframe');
    await page.frameLocator('#messagecontframe').locator('#messagebody').waitFor();
    await shot(page, '4-filed');
}

(async () => {
    const browser = await chromium.launch({
        executablePath: env('CHROMIUM'),
        headless: true,
        args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.setDefaultTimeout(20000);
    try {
        await login(page);
        if (mode === 'create') await create(page);
        else if (mode === 'show') await show(page);
        else throw new Error(`unknown mode ${mode}`);
    } catch (e) {
        console.error(`ui: failed at "${step}": ${e.message}`);
        const dir = process.env.DEBUG_DIR;
        if (dir) {
            const tag = step.replace(/[^a-z0-9]+/gi, '-');
            await page.screenshot({ path: path.join(dir, `fail-${tag}.png`) }).catch(() => {});
            const html = [await page.content().catch(() => '')];
            for (const f of page.frames()) html.push(`<!-- frame ${f.url()} -->\n${await f.content().catch(() => '')}`);
            require('fs').writeFileSync(path.join(dir, `fail-${tag}.html`), html.join('\n'));
        }
        await browser.close();
        process.exit(1);
    }
    await browser.close();
})();
