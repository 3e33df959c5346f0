// Drives Roundcube in headless Chromium for scripts/roundcube-sieve.sh (playwright-core,
// Debian's chromium; no browser download).
//
//   node roundcube_sieve_ui.cjs create   log in, Settings > Filters, create and save the
//                                        filter "From contains SENDER_X -> Move to FOLDER_Y",
//                                        read it back; then a syntax error in the raw
//                                        editor must be refused and its line marked
//   node roundcube_sieve_ui.cjs show     log in, open FOLDER_Y (after the delivery)
//
// Environment: SENDER_X, FOLDER_Y, and those of roundcube_ui.cjs (login, screenshots,
// what a failure leaves in DEBUG_DIR).
'use strict';
const { env, log, shot: shotAs, run } = require('./roundcube_ui.cjs');

const senderX = env('SENDER_X');
const folderY = env('FOLDER_Y');
const shot = (page, name) => shotAs(page, `roundcube-sieve-${name}`);

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

run({ create, show });
