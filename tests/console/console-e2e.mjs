// SPDX-License-Identifier: Apache-2.0
// The phases of tests/console/test-console-e2e.py, which starts the broker and the QEMU lab:
//   node console-e2e.mjs CONFIG.json apply|security|finding|tour
// Each phase drives the console in Chromium and checks what the pages show and, through the
// API with the accounts' bearer tokens, the state behind them. It prints its checks and exits
// non-zero when one failed.
import fs from 'node:fs';
import path from 'node:path';
import {
    Checks, L, axe, go, keyboardMisses, launch, mainText, makeApi, newPage, ready, setPassword, shotChecked,
    signIn, signOut, waitFor,
} from './lib.mjs';

const [, , cfgPath, phase] = process.argv;
const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
const A = cfg.accounts;
const api = makeApi(cfg.base);
const ck = new Checks(`console-e2e ${phase}`);
const state = fs.existsSync(cfg.state) ? JSON.parse(fs.readFileSync(cfg.state, 'utf8')) : {};
const save = () => fs.writeFileSync(cfg.state, JSON.stringify(state, null, 2));
const step = (s) => console.log(`-- ${s}`);

// A minimal PDF with one line of text, which Chromium's viewer renders.
function pdf(text) {
    const objs = [
        '<< /Type /Catalog /Pages 2 0 R >>',
        '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
        '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
        null,
        '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    ];
    const stream = `BT /F1 18 Tf 72 760 Td (${text}) Tj ET`;
    objs[3] = `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`;
    let out = '%PDF-1.4\n';
    const offs = [];
    objs.forEach((o, i) => {
        offs.push(out.length);
        out += `${i + 1} 0 obj\n${o}\nendobj\n`;
    });
    const xref = out.length;
    out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n`;
    for (const o of offs) out += `${String(o).padStart(10, '0')} 00000 n \n`;
    out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
    return Buffer.from(out, 'latin1');
}

// Nothing injected: no alert dialog, no <img src=x>, no script element inside main.
async function noInjection(page, what) {
    const injected = await page.evaluate(() => document.querySelectorAll('img[src="x"], main script, [onerror]').length);
    ck.ok(page.events.alerts.length === 0, `${what}: no dialog opened (${page.events.alerts.join('; ')})`);
    ck.eq(injected, 0, `${what}: no element injected`);
}

function pageClean(page, what) {
    ck.ok(page.events.errors.length === 0, `${what}: no script error (${page.events.errors.slice(0, 3).join('; ')})`);
    ck.ok(page.events.foreign.length === 0, `${what}: no request to another host (${page.events.foreign.slice(0, 3).join('; ')})`);
}

async function form(page, name) {
    const f = page.getByRole('form', { name });
    await f.waitFor();
    return f;
}

async function badge(page) {
    return page.locator('.request').getAttribute('data-state');
}

async function reqState(id, token = A.reviewer.token) {
    return (await api(token, 'GET', `requests/${id}`)).doc;
}

// ------------------------------------------------------------------ apply

async function phaseApply(browser) {
    step('every account sets its password from its one-time link');
    for (const [key, acc] of Object.entries(A)) {
        const p = await newPage(browser, cfg.base);
        await setPassword(p, acc.link, cfg.password);
        ck.ok((await mainText(p)).includes(L('password_set')), `${key}: the page says the password is set`);
        const r = await api(A.admin.token, 'GET', `accounts/${acc.id}`);
        ck.ok(r.doc.has_password === true, `${key}: the API says it has a password`);
        pageClean(p, `set-password ${key}`);
        await p.context().close();
    }
    // A used link is refused.
    {
        const p = await newPage(browser, cfg.base);
        await p.goto(`${cfg.base}/${A.d1.link}`);
        await p.fill('input[name=new-password]', 'Another-Pass-99');
        await p.fill('input[name=confirm-password]', 'Another-Pass-99');
        await p.click('form button[type=submit]');
        await p.waitForSelector('.error');
        ck.ok((await mainText(p)).includes(L('invalid_token')), 'a used sign-in link is refused on the page');
        await p.context().close();
    }

    step('the admin creates an account in the console; its sign-in link works');
    {
        const ap = await newPage(browser, cfg.base);
        await signIn(ap, A.admin.name, cfg.password);
        await go(ap, '/accounts');
        const f = await form(ap, L('new_account'));
        await f.getByLabel(L('username')).fill('late-auditor');
        await f.getByLabel(L('role'), { exact: true }).selectOption('auditor');
        await f.locator('button[type=submit]').click();
        await ap.waitForSelector('.secret:has-text("late-auditor")');
        const link = (await ap.locator('.secret-value').innerText()).trim();
        ck.ok(link.startsWith(`${cfg.base}/#/set-password?token=`), 'the page shows the new account\'s one-time link');
        const np = await newPage(browser, cfg.base);
        await setPassword(np, link.slice(cfg.base.length + 1), cfg.password);
        await signIn(np, 'late-auditor', cfg.password);
        ck.eq(await np.locator('main').getAttribute('data-role'), 'auditor', 'the new account signs in with the password it chose');
        pageClean(ap, 'admin accounts');
        await np.context().close();
        await ap.context().close();
    }

    step('the vendor registers the trial and production hosts');
    const vp = await newPage(browser, cfg.base);
    await signIn(vp, A.vendor.name, cfg.password);
    await go(vp, '/hosts');
    const hostNames = { trial: `${cfg.lab.prefix}-trial`, production: `${cfg.lab.prefix}-prod` };
    for (const pool of ['trial', 'production']) {
        const f = await form(vp, L('register_host'));
        await f.getByLabel(L('name'), { exact: true }).fill(hostNames[pool]);
        await f.getByLabel(L('uri')).fill(pool === 'trial' ? cfg.lab.trial_uri : cfg.lab.prod_uri);
        await f.getByLabel(L('pool'), { exact: true }).selectOption(pool);
        await f.getByLabel(L('storage_pool')).fill(cfg.lab.pool);
        await f.locator('button[type=submit]').click();
        await vp.waitForSelector(`.secret:has-text("${hostNames[pool]}")`);
        const tok = (await vp.locator('.secret-value').innerText()).trim();
        ck.ok(/^cba_[A-Za-z0-9_-]{43}$/.test(tok), `${pool} host: the page shows its agent token once`);
        if (pool === 'production') state.agent_token = tok;
    }
    const hosts = await waitFor(async () => {
        const r = await api(A.vendor.token, 'GET', 'hosts');
        const hs = r.doc.items.filter((h) => Object.values(hostNames).includes(h.name));
        return hs.length === 2 && hs.every((h) => h.connection.state === 'connected' && h.capacity.known) ? hs : null;
    }, 'the hosts to connect', 60000);
    ck.eq(hosts.length, 2, 'the API lists both hosts, connected');
    state.hosts = Object.fromEntries(hosts.map((h) => [h.pool, h.id]));
    await go(vp, '/hosts');
    for (const n of Object.values(hostNames)) {
        const row = await vp.locator(`tr[data-host="${n}"]`).innerText();
        ck.ok(row.includes(L('connected')) && !row.includes(L('disconnected')), `the hosts page shows ${n} connected (${row.replace(/\s+/g, ' ')})`);
    }
    // The maintenance switch, on and off again.
    const sw = vp.getByRole('switch', { name: `${L('maintenance')}: ${hostNames.production}` });
    await sw.click();
    await waitFor(async () => (await api(A.vendor.token, 'GET', `hosts/${state.hosts.production}`)).doc.maintenance === true, 'maintenance on', 10000);
    ck.ok(true, 'the maintenance switch puts the host in maintenance (API)');
    await vp.waitForFunction(() => true);
    await sw.click();
    await waitFor(async () => (await api(A.vendor.token, 'GET', `hosts/${state.hosts.production}`)).doc.maintenance === false, 'maintenance off', 10000);
    ck.ok(true, 'and takes it out again (API)');
    pageClean(vp, 'vendor hosts');

    step('the department registers its system and applies');
    const dp = await newPage(browser, cfg.base);
    await signIn(dp, A.d1.name, cfg.password);
    await go(dp, '/systems/new');
    const sysName = `婚姻登记 ${cfg.xss_img}`;
    {
        const f = await form(dp, L('new_system'));
        await f.getByLabel(L('name'), { exact: true }).fill(sysName);
        await f.getByLabel(L('category')).selectOption('management_information');
        await f.getByLabel(L('protection_level')).selectOption('3');
        await f.getByLabel(L('description')).fill('网上婚姻登记 online registration');
        await f.locator('button[type=submit]').click();
        await dp.waitForURL(/#\/systems\/\d+$/);
    }
    state.system_id = Number(dp.url().match(/systems\/(\d+)/)[1]);
    const sys = (await api(A.d1.token, 'GET', `systems/${state.system_id}`)).doc;
    ck.eq(sys.name, sysName, 'the system is registered with its name (API)');
    ck.eq(sys.protection_level, 3, 'with its protection level (API)');

    await go(dp, '/requests/new');
    const just = `婚姻登记系统上云 ${cfg.xss_script} ${cfg.xss_img}`;
    {
        const f = await form(dp, L('new_request'));
        await f.getByLabel(L('system'), { exact: true }).selectOption(String(state.system_id));
        const inst = f.locator('fieldset.instance');
        await inst.nth(0).getByLabel(L('size')).selectOption('custom');
        await inst.nth(0).getByLabel(L('vcpus')).fill('4');
        await inst.nth(0).getByLabel(L('memory_mib')).fill('64');
        await inst.nth(0).getByLabel(L('disk_gib')).fill('1');
        await inst.nth(0).getByLabel(L('image')).selectOption('spin');
        await f.getByRole('button', { name: L('add_instance') }).click();
        await inst.nth(1).getByLabel(L('vcpus')).fill('1');
        await inst.nth(1).getByLabel(L('memory_mib')).fill('64');
        await inst.nth(1).getByLabel(L('disk_gib')).fill('1');
        await inst.nth(1).getByLabel(L('image')).selectOption('halt');
        await f.getByLabel(L('justification')).fill(just);
        await f.locator('button[type=submit]').click();
        await dp.waitForURL(/#\/requests\/\d+$/);
        await ready(dp);
    }
    const rid = Number(dp.url().match(/requests\/(\d+)/)[1]);
    state.request_id = rid;
    let doc = await reqState(rid, A.d1.token);
    ck.eq(doc.state, 'draft', 'the form made a draft (API)');
    ck.eq(JSON.stringify(doc.resources.instances.map((i) => [i.vcpus, i.memory_mib, i.disk_gib, i.image])),
        JSON.stringify([[4, 64, 1, 'spin'], [1, 64, 1, 'halt']]), 'with the two instances as filled in (API)');
    ck.eq(doc.justification, just, 'and the justification as typed (API)');
    ck.ok(await dp.locator('.check-rules[data-ok=false] [data-rule=materials_complete].rule-fail').count() === 1,
        'before the materials, the page shows the pre-review check failing on materials_complete');

    step('the materials, one upload slowed down to see its progress');
    const cdp = await dp.context().newCDPSession(dp);
    const files = {
        construction_plan: { name: `${cfg.xss_img}.pdf`, mimeType: 'application/pdf', buffer: Buffer.concat([pdf('Construction plan'), Buffer.alloc(600000, 0x20)]) },
        performance_self_test: { name: 'performance.txt', mimeType: 'text/plain', buffer: Buffer.from('Load test: 300 users, p95 120 ms\n') },
        security_self_test: { name: '安全自测报告.pdf', mimeType: 'application/pdf', buffer: pdf('Security self test') },
    };
    for (const [kind, file] of Object.entries(files)) {
        const slow = kind === 'construction_plan';
        if (slow) {
            await cdp.send('Network.enable');
            await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 200000 });
        }
        await dp.setInputFiles(`input[type=file][data-kind=${kind}]`, file);
        if (slow) {
            const bar = dp.locator(`tr[data-kind=${kind}] [role=progressbar]`);
            await bar.waitFor({ timeout: 10000 });
            ck.ok(Number(await bar.getAttribute('aria-valuenow')) < 100, 'the upload shows its progress while it runs');
        }
        await dp.waitForSelector(`tr[data-kind=${kind}]:has-text("${file.name.replace(/"/g, '\\"')}")`, { timeout: 30000 });
        if (slow) await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    }
    doc = await reqState(rid, A.d1.token);
    ck.eq(doc.materials.length, 3, 'three materials attached (API)');
    ck.ok(doc.materials.some((m) => m.filename === files.construction_plan.name), 'the file name kept as given (API)');
    await dp.waitForSelector('.check-rules[data-ok=true]');
    ck.ok(await dp.locator('[data-rule=materials_complete].rule-ok').count() === 1, 'the pre-review check now passes on the page, before submitting');
    await dp.getByRole('button', { name: L('submit') }).click();
    await dp.waitForSelector('.request[data-state=submitted]');
    ck.eq((await reqState(rid, A.d1.token)).state, 'submitted', 'submitted (API)');
    await noInjection(dp, 'the department\'s request page');
    ck.ok((await mainText(dp)).includes(just), 'the justification renders as text');
    pageClean(dp, 'department apply');

    step('the reviewer returns it once; the department edits and resubmits');
    const rp = await newPage(browser, cfg.base);
    await signIn(rp, A.reviewer.name, cfg.password);
    const unread = Number(await rp.locator('[data-testid=unread]').innerText());
    ck.ok(unread >= 1, `the header shows unread notifications (${unread})`);
    await go(rp, `/requests/${rid}`);
    {
        const f = await form(rp, L('decision'));
        await f.getByLabel(L('decision')).selectOption('return');
        await f.locator('button[type=submit]').click();
        await rp.waitForTimeout(300);
        const missing = await f.getByLabel(L('comment')).evaluate((el) => el.validity.valueMissing);
        ck.ok(missing && (await reqState(rid)).state === 'submitted', 'a return without a reason is not sent: the form asks for it');
        await f.getByLabel(L('comment')).fill('请补充业务高峰期的说明。');
        await f.locator('button[type=submit]').click();
        await rp.waitForSelector('.request[data-state=returned]');
    }
    ck.eq((await reqState(rid)).state, 'returned', 'returned (API)');
    await go(dp, '/notifications');
    ck.ok(await dp.locator('li.note[data-kind=request_returned]').count() === 1, 'the department is told it was returned');
    await go(dp, '/queue');
    ck.ok(await dp.locator(`tr[data-request="${rid}"]`).count() === 1, 'its to-do list holds the returned request');
    await go(dp, `/requests/${rid}`);
    ck.ok((await mainText(dp)).includes('请补充业务高峰期的说明。'), 'the reason shows in the timeline');
    await dp.getByRole('link', { name: L('edit_request') }).click();
    await dp.waitForURL(/\/edit$/);
    await ready(dp);
    const just2 = `${just} 高峰期每日约 3000 件。`;
    {
        const f = await form(dp, L('new_request'));
        await f.getByLabel(L('justification')).fill(just2);
        await f.locator('button[type=submit]').click();
        await dp.waitForURL(/#\/requests\/\d+$/);
        await ready(dp);
    }
    await dp.getByRole('button', { name: L('resubmit') }).click();
    await dp.waitForSelector('.request[data-state=submitted]');
    doc = await reqState(rid, A.d1.token);
    ck.ok(doc.state === 'submitted' && doc.justification === just2, 'edited and resubmitted (API)');

    step('the reviewer assigns a consultant');
    await go(rp, '/notifications');
    ck.ok(await rp.locator('li.note[data-kind=request_submitted]').count() >= 1, 'the notification of the submitted request is listed');
    ck.ok((await mainText(rp)).includes(sysName), 'naming the system by its name');
    await go(rp, '/queue');
    ck.ok(await rp.locator(`tr[data-request="${rid}"]`).count() === 1, 'the approval queue lists the request');
    ck.ok((await rp.locator(`tr[data-request="${rid}"]`).innerText()).includes('民政局'), 'with the department\'s name');
    await go(rp, `/requests/${rid}`);
    const matResp = rp.waitForResponse((r) => r.url().includes(`/materials/construction_plan`) && r.url().includes('disposition=inline'));
    await rp.locator('tr[data-kind=construction_plan] button').first().click();
    const mr = await matResp;
    const frame = await rp.locator('.preview iframe').count();
    ck.ok(frame === 1 && mr.status() === 200, 'the PDF opens in the page (an iframe of the material)');
    ck.ok(/pdf/.test(mr.headers()['content-type'] || ''), `served as a PDF (${mr.headers()['content-type']})`);
    ck.ok(!/attachment/.test(mr.headers()['content-disposition'] || ''), `inline, not as a download (${mr.headers()['content-disposition']})`);
    {
        const f = await form(rp, L('assign_consultant'));
        await f.getByLabel(L('consultant')).selectOption(String(A.consultant.id));
        await f.locator('button[type=submit]').click();
        await waitFor(async () => (await reqState(rid)).consultant_id === A.consultant.id, 'the assignment', 10000);
        ck.ok(true, 'the consultant is assigned (API)');
    }

    step('the consultant records its opinion');
    const cp = await newPage(browser, cfg.base);
    await signIn(cp, A.consultant.name, cfg.password);
    ck.ok(Number(await cp.locator('[data-testid=unread]').innerText()) >= 1, 'the consultant is notified');
    await go(cp, '/queue');
    ck.ok(await cp.locator(`tr[data-request="${rid}"]`).count() === 1, 'its to-do list holds the request');
    await go(cp, `/requests/${rid}`);
    {
        const f = await form(cp, L('add_opinion'));
        await f.getByLabel(L('recommendation')).selectOption('approve');
        await f.getByLabel(L('comment')).fill('材料齐全，4 vCPU 与压测结果相符。');
        await f.locator('button[type=submit]').click();
        await cp.waitForSelector('.tl-opinion');
    }
    doc = await reqState(rid);
    ck.ok(doc.opinions.length === 1 && doc.opinions[0].account === A.consultant.name && doc.opinions[0].recommendation === 'approve',
        'the opinion is recorded, by the consultant (API)');

    step('the reviewer approves');
    await go(rp, `/requests/${rid}`);
    ck.ok((await mainText(rp)).includes('材料齐全'), 'the reviewer sees the consultant\'s opinion');
    {
        const f = await form(rp, L('decision'));
        await f.getByLabel(L('decision')).selectOption('approve');
        await f.getByLabel(L('comment')).fill('同意，进入试运行。');
        await f.locator('button[type=submit]').click();
    }
    doc = await waitFor(async () => {
        const d = await reqState(rid);
        return ['approved', 'in_trial'].includes(d.state) ? d : null;
    }, 'approval', 15000);
    ck.ok(doc.history.some((h) => h.to === 'approved'), 'approved (API)');

    step('the vendor records the trial results on the QEMU trial environment');
    doc = await waitFor(async () => {
        const d = await reqState(rid);
        return d.state === 'in_trial' ? d : (d.state === 'failed' ? d : null);
    }, 'the trial environment', 180000);
    ck.eq(doc.state, 'in_trial', 'the trial environment runs (API)');
    await go(vp, '/trials');
    ck.ok(await vp.locator(`tr[data-request="${rid}"]`).count() === 1, 'the vendor\'s trials page lists the request');
    await go(vp, `/requests/${rid}`);
    await vp.setInputFiles('input[type=file][data-kind=test_report]', { name: '试运行测试报告.pdf', mimeType: 'application/pdf', buffer: pdf('Trial test report: all pass') });
    await vp.waitForSelector('tr[data-kind=test_report]');
    for (const test of ['function', 'performance', 'security']) {
        const f = await form(vp, L('record_trial_result'));
        await f.getByLabel(L('test')).selectOption(test);
        await f.getByLabel(L('result')).selectOption('pass');
        await f.getByLabel(L('comment')).fill(`${test} ok`);
        await f.locator('button[type=submit]').click();
        await vp.waitForSelector(`tr[data-test=${test}]`);
    }
    doc = await reqState(rid);
    ck.eq(doc.state, 'trial_passed', 'three passes: trial_passed (API)');
    ck.eq(doc.trial.results.length, 3, 'three results recorded (API)');

    step('the reviewer allocates');
    await go(rp, `/requests/${rid}`);
    await rp.getByRole('button', { name: L('allocate') }).click();
    await rp.waitForSelector('.request[data-state=allocated]', { timeout: 180000 });
    doc = await reqState(rid);
    ck.eq(doc.state, 'allocated', 'allocated (API)');
    state.allocation_id = doc.allocation_id;
    const alloc = (await api(A.reviewer.token, 'GET', `allocations/${doc.allocation_id}`)).doc;
    ck.eq(alloc.state, 'active', 'the allocation is active (API)');
    state.instances = Object.fromEntries(alloc.instances.map((i) => [i.image, i.id]));
    state.instance_names = Object.fromEntries(alloc.instances.map((i) => [i.image, i.name]));
    pageClean(rp, 'reviewer apply');
    save();
}

// ------------------------------------------------------------------ security

async function phaseSecurity(browser) {
    const rid = state.request_id;
    step('one department never sees another\'s objects');
    const p2 = await newPage(browser, cfg.base);
    await signIn(p2, A.d2.name, cfg.password);
    await go(p2, '/requests');
    ck.ok(await p2.locator(`a[href="#/requests/${rid}"]`).count() === 0, 'the other department\'s list does not show the request');
    for (const [hash, apiPath] of [[`/requests/${rid}`, `requests/${rid}`], [`/allocations/${state.allocation_id}`, `allocations/${state.allocation_id}`],
        [`/systems/${state.system_id}`, `systems/${state.system_id}`], [`/jobs/1`, 'jobs/1']]) {
        await go(p2, hash);
        ck.ok((await mainText(p2)).includes(L('not_found')), `${hash}: the page says not found`);
        ck.eq((await api(A.d2.token, 'GET', apiPath)).status, 404, `${apiPath}: 404 for the other department (API)`);
    }
    await go(p2, '/allocations');
    ck.ok(!(await mainText(p2)).includes('婚姻登记'), 'its allocations page shows none of the other\'s');
    await go(p2, '/account');
    ck.ok((await mainText(p2)).includes(cfg.xss_script), 'a department named <script>… renders as text');
    await noInjection(p2, 'the XSS-named department\'s pages');

    step('names with markup render as text for the bureau');
    const rp = await newPage(browser, cfg.base);
    await signIn(rp, A.reviewer.name, cfg.password);
    for (const hash of ['/departments', `/requests/${rid}`, '/systems', '/requests', `/departments/${cfg.d2}`, '/notifications']) {
        await go(rp, hash);
        await rp.waitForTimeout(300);
    }
    await go(rp, `/requests/${rid}`);
    const txt = await mainText(rp);
    ck.ok(txt.includes(cfg.xss_img) && txt.includes(cfg.xss_script), 'the system name, justification and file name show their markup as text');
    await go(rp, '/departments');
    ck.ok((await mainText(rp)).includes(cfg.xss_script), 'the departments list shows the name as text');
    await noInjection(rp, 'the reviewer\'s pages');

    step('a cookie write without the CSRF token is refused');
    const before = (await api(A.d1.token, 'GET', 'systems')).doc.items.length;
    const dp = await newPage(browser, cfg.base);
    await signIn(dp, A.d1.name, cfg.password);
    const res = await dp.evaluate(async () => {
        const body = JSON.stringify({ name: 'csrf-probe', category: 'other' });
        const a = await fetch('v1/systems', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
        const s = await (await fetch('v1/session')).json();
        const b = await fetch('v1/systems', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': 'not-the-token' }, body });
        return { a: a.status, acode: (await a.json()).error.code, b: b.status, has: !!s.csrf_token };
    });
    ck.ok(res.a === 403 && res.acode === 'csrf_failed', `without X-CSRF-Token: 403 csrf_failed (${res.a} ${res.acode})`);
    ck.eq(res.b, 403, 'with a wrong token: 403');
    ck.eq((await api(A.d1.token, 'GET', 'systems')).doc.items.length, before, 'nothing was created (API)');

    step('a signed-out session is refused');
    const cookies = await dp.context().cookies();
    const sess = cookies.find((c) => c.name === 'cb_session');
    ck.ok(sess && sess.httpOnly && sess.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');
    ck.ok(await dp.evaluate(() => !document.cookie.includes('cb_session')), 'page scripts cannot read the session cookie');
    await signOut(dp);
    const after = await fetch(`${cfg.base}/v1/whoami`, { headers: { Cookie: `cb_session=${sess.value}` } });
    ck.eq(after.status, 401, 'the old cookie is refused after signing out');
    await dp.goto(`${cfg.base}/#/requests`);
    await dp.waitForSelector('input[name=username]');
    ck.ok(true, 'the console shows the sign-in page after signing out');

    step('a disabled account\'s open session ends');
    const p3 = await newPage(browser, cfg.base);
    await signIn(p3, A.auditor.name, cfg.password);
    ck.eq((await api(A.admin.token, 'PATCH', `accounts/${A.auditor.id}`, { disabled: true })).status, 200, 'the admin disables the auditor (API)');
    await p3.locator('nav a', { hasText: L('nav_requests') }).click();
    await p3.waitForSelector('input[name=username]');
    ck.ok((await mainText(p3)).includes(L('session_expired')), 'the console says the session ended');
    ck.eq((await api(A.admin.token, 'PATCH', `accounts/${A.auditor.id}`, { disabled: false })).status, 200, 'enabled again');
    for (const p of [p2, rp, p3]) pageClean(p, 'security');

    step('the auditor searches the audit trail by account and verifies the chain');
    const ap = await newPage(browser, cfg.base);
    await signIn(ap, A.auditor.name, cfg.password);
    await go(ap, '/audit');
    {
        const f = ap.getByRole('form', { name: L('search') });
        await f.getByLabel(L('account'), { exact: true }).fill(A.d1.name);
        await f.getByLabel(L('action')).fill('material.upload');
        await f.locator('button[type=submit]').click();
        await ap.waitForFunction(() => !document.querySelector('main .loading'));
        await ap.waitForTimeout(300);
        const rows = await ap.locator('main tbody tr').allInnerTexts();
        ck.ok(rows.length === 3 && rows.every((r) => r.includes(A.d1.name) && r.includes('material.upload')),
            `the search by account and action shows the department's three uploads (${rows.length} rows)`);
        const r = await api(A.auditor.token, 'GET', `audit?account=${A.d1.name}&action=material.upload`);
        ck.eq(r.doc.items.length, 3, 'the API agrees');
    }
    await ap.getByRole('button', { name: L('verify_chain') }).click();
    await ap.waitForSelector('[data-testid=verify]');
    ck.ok((await ap.locator('[data-testid=verify]').innerText()).includes(L('chain_ok', { n: '' }).split('：')[0]), 'the chain verifies on the page');
    pageClean(ap, 'auditor');

    step('the second broker: idle timeout, then the lockout');
    const ip = await newPage(browser, cfg.small_base);
    await signIn(ip, cfg.small_idle_account, cfg.password);
    await ip.waitForTimeout(6500);
    await ip.locator('nav a', { hasText: L('nav_systems') }).click();
    const back = await ip.waitForSelector('input[name=username]', { timeout: 10000 }).then(() => true, () => false);
    ck.ok(back && (await mainText(ip)).includes(L('session_expired')),
        `an idle session expires: back to sign-in, saying why (${(await mainText(ip)).slice(0, 120)})`);
    await ip.context().close();
    const sp = await newPage(browser, cfg.small_base);
    await sp.goto(`${cfg.small_base}/`);
    for (let i = 1; i <= 4; i++) {
        await sp.fill('input[name=username]', cfg.small_account);
        await sp.fill('input[name=password]', `wrong-${i}`);
        await sp.click('form button[type=submit]');
        await sp.waitForSelector(`.error[data-code=${i <= 3 ? 'invalid_credentials' : 'too_many_attempts'}]`, { timeout: 10000 }).catch(() => null);
        const code = await sp.locator('.error').getAttribute('data-code');
        if (i <= 3) ck.eq(code, 'invalid_credentials', `wrong password ${i}: refused, no hint which part was wrong`);
        else ck.eq(code, 'too_many_attempts', 'after the limit: locked out');
    }
    await sp.fill('input[name=username]', cfg.small_account);
    await sp.fill('input[name=password]', cfg.password);
    await sp.click('form button[type=submit]');
    await sp.waitForTimeout(500);
    await sp.waitForSelector('.error[data-code=too_many_attempts]');
    ck.ok((await mainText(sp)).includes(L('too_many_attempts')), 'even the right password is refused while locked out');
    ck.eq(await sp.locator('main[data-role]').count(), 0, 'and no session is opened');
    await sp.context().close();
    save();
}

// ------------------------------------------------------------------ finding

async function phaseFinding(browser) {
    const aid = state.allocation_id;
    step('the department sees its running instances and their usage');
    const dp = await newPage(browser, cfg.base);
    await signIn(dp, A.d1.name, cfg.password);
    await go(dp, `/allocations/${aid}`);
    for (const [img, name] of Object.entries(state.instance_names)) {
        const row = dp.locator(`tr[data-instance="${name}"]`);
        ck.ok((await row.innerText()).includes(L('is_running')), `instance ${name} (${img}) shows running`);
    }
    await dp.locator('select').first().selectOption(String(state.instances.spin));
    await dp.waitForSelector(`.usage[data-instance-id="${state.instances.spin}"] .usage-charts`, { timeout: 20000 });
    const pts = Number(await dp.locator('.usage-charts').getAttribute('data-points'));
    ck.ok(pts > 0, `the usage charts have points (${pts})`);
    await dp.waitForFunction(() => document.querySelectorAll('.chart[data-rendered=true]').length >= 4, null, { timeout: 20000 });
    ck.ok(true, 'four charts rendered (CPU, memory, disk, network)');
    const cov = await dp.locator('[data-testid=coverage]').innerText();
    ck.ok(/\d+\.\d%/.test(cov), `coverage is shown (${cov})`);
    const u = (await api(A.d1.token, 'GET', `instances/${state.instances.spin}/usage?step=10&from=${Math.floor(Date.now() / 1000) - 600}`)).doc;
    ck.ok(u.points && u.points.some((p) => p.cpu_cores_avg > 0.3), 'the API has the spinner\'s CPU windows');
    for (const r of ['week', 'month', 'year']) {
        await dp.getByRole('button', { name: L(`range_${r}`) }).click();
        await dp.waitForFunction(() => !document.querySelector('main .loading'));
    }
    ck.ok(true, 'the day, week, month and year ranges load');

    step('the finding, its evidence, and one click to a change request');
    const fid = state.finding_id;
    await go(dp, '/findings');
    ck.ok(await dp.locator(`a[href="#/findings/${fid}"]`).count() === 1, 'the findings page lists the finding');
    await go(dp, `/findings/${fid}`);
    const ftxt = await mainText(dp);
    ck.ok(ftxt.includes(L('fk_over_provisioned')) && ftxt.includes(L('coverage')), 'the finding page shows its kind and evidence');
    const f = (await api(A.d1.token, 'GET', `findings/${fid}`)).doc;
    const want = f.recommendation.recommended;
    await dp.getByRole('button', { name: L('make_change_request') }).click();
    await dp.waitForURL(/#\/requests\/\d+$/);
    await ready(dp);
    const cr = Number(dp.url().match(/requests\/(\d+)/)[1]);
    let doc = await reqState(cr, A.d1.token);
    ck.ok(doc.kind === 'change' && doc.state === 'draft', 'a draft change request was made (API)');
    ck.eq((await api(A.d1.token, 'GET', `findings/${fid}`)).doc.change_request_id, cr, 'the finding names it (API)');
    const spinIdx = doc.resources.instances.findIndex((x) => x.image === 'spin');
    ck.eq(doc.resources.instances[spinIdx].vcpus, want.vcpus, `at the recommended ${want.vcpus} vCPUs`);
    await dp.getByRole('button', { name: L('submit') }).click();
    await dp.waitForSelector('.request[data-state=submitted]');
    ck.eq((await reqState(cr, A.d1.token)).state, 'submitted', 'the change is submitted (API)');

    step('approved, and resized on QEMU');
    const rp = await newPage(browser, cfg.base);
    await signIn(rp, A.reviewer.name, cfg.password);
    await go(rp, `/requests/${cr}`);
    {
        const fm = await form(rp, L('decision'));
        await fm.getByLabel(L('decision')).selectOption('approve');
        await fm.getByLabel(L('comment')).fill('按评估建议调整。');
        await fm.locator('button[type=submit]').click();
    }
    await rp.waitForSelector('.request[data-state=applied]', { timeout: 180000 });
    doc = await reqState(cr);
    ck.eq(doc.state, 'applied', 'the change is applied (API)');
    const alloc = (await api(A.d1.token, 'GET', `allocations/${state.allocation_id}`)).doc;
    const spin = alloc.instances.find((i) => i.id === state.instances.spin);
    ck.eq(spin.vcpus, want.vcpus, `the spinner now has ${want.vcpus} vCPUs (API)`);
    await go(dp, `/allocations/${state.allocation_id}`);
    ck.ok((await dp.locator(`tr[data-instance="${spin.name}"]`).innerText()).includes(`${want.vcpus} vCPU`), 'the department\'s page shows the new size');
    pageClean(dp, 'finding department');
    pageClean(rp, 'finding reviewer');
    save();
}

// ------------------------------------------------------------------ tour

function pagesOf(role) {
    const rid = state.request_id;
    const aid = state.allocation_id;
    const common = ['/notifications', '/account'];
    const month = new Date().toISOString().slice(0, 7);
    const year = new Date().getUTCFullYear();
    const reports = ['/reports', `/reports/assessment?year=${year}`, `/reports/operations?month=${month}`];
    switch (role) {
    case 'd1': return ['/requests', '/queue', '/requests/new', `/requests/${rid}`, `/requests/${rid}/edit`, '/systems', '/systems/new', `/systems/${state.system_id}`,
        '/allocations', `/allocations/${aid}`, '/findings', `/findings/${state.finding_id}`, '/security', ...reports, `/print/assessment?year=${year}`,
        `/reports/costs?month=${month}`, ...common];
    case 'reviewer': return ['/dashboard', '/queue', '/requests', `/requests/${rid}`, '/allocations', `/allocations/${aid}`, '/findings',
        `/findings/${state.finding_id}`, '/hosts', '/jobs', '/jobs/1', '/security', ...reports, `/print/operations?month=${month}`, '/audit', '/departments',
        `/reports/costs?month=${month}`, `/reports/service-quality?month=${month}`, ...common];
    case 'consultant': return ['/queue', '/requests', `/requests/${rid}`, ...common];
    case 'vendor': return ['/hosts', '/jobs', '/jobs/1', '/events', '/trials', '/requests', `/requests/${rid}`, '/allocations', '/security', '/reports/operations',
        `/reports/service-quality?month=${month}`, ...common];
    case 'auditor': return ['/audit', '/requests', '/allocations', '/findings', '/hosts', '/events', '/security', `/reports/assessment?year=${year}`, '/departments', '/accounts', ...common];
    case 'admin': return ['/departments', `/departments/${cfg.d1}`, '/accounts', '/policies', '/health', ...common];
    default: return [];
    }
}

const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

async function phaseTour(browser) {
    let shots = 0;
    // The pages before signing in.
    for (const [vp, size] of Object.entries(VIEWPORTS)) {
        const p = await newPage(browser, cfg.base, { viewport: size });
        for (const lang of ['zh', 'en']) {
            await p.goto(`${cfg.base}/#/set-password?token=shown-only`);
            await p.waitForSelector('input[name=new-password]');
            if (lang === 'en' && (await p.evaluate(() => document.documentElement.lang)) !== 'en') {
                await p.click('button.lang');
                await p.waitForFunction(() => document.documentElement.lang === 'en');
            }
            const sp = await shotChecked(p, path.join(cfg.shots, `set-password-${lang}-${vp}.png`));
            shots++;
            ck.ok(sp.length === 0, `set-password ${lang} ${vp}: ${sp.join('; ')}`);
            await p.goto(`${cfg.base}/`);
            await p.waitForSelector('input[name=username]');
            if (lang === 'en' && (await p.evaluate(() => document.documentElement.lang)) !== 'en') {
                await p.click('button.lang');
                await p.waitForFunction(() => document.documentElement.lang === 'en');
            }
            const prob = await shotChecked(p, path.join(cfg.shots, `signin-${lang}-${vp}.png`));
            shots++;
            ck.ok(prob.length === 0, `sign-in ${lang} ${vp}: ${prob.join('; ')}`);
            if (vp === 'desktop' && lang === 'zh') {
                const v = await axe(p);
                ck.ok(v.length === 0, `sign-in: axe serious/critical: ${v.join(' / ')}`);
            }
        }
        await p.context().close();
    }
    for (const key of ['d1', 'reviewer', 'consultant', 'vendor', 'auditor', 'admin']) {
        const acc = A[key];
        const p = await newPage(browser, cfg.base);
        await signIn(p, acc.name, cfg.password);
        const pages = pagesOf(key);
        for (const lang of ['zh', 'en']) {
            if (lang === 'en') {
                await p.click('button.lang');
                await p.waitForFunction(() => document.documentElement.lang === 'en');
                await p.reload();
                await ready(p);
                ck.eq(await p.evaluate(() => document.documentElement.lang), 'en', `${key}: English is remembered after a reload`);
                ck.ok((await p.locator('nav').innerText()).includes(L('nav_reports', null, 'en')) || key === 'consultant' || key === 'admin',
                    `${key}: the navigation speaks English`);
            }
            for (const [vp, size] of Object.entries(VIEWPORTS)) {
                await p.setViewportSize(size);
                for (const hash of pages) {
                    await go(p, hash);
                    await p.waitForFunction(() => [...document.querySelectorAll('.chart')].every((c) => c.dataset.rendered === 'true'), null, { timeout: 15000 }).catch(() => null);
                    const name = `${key}${hash.replace(/[?=&]/g, '-').replace(/\//g, '_')}-${lang}-${vp}.png`;
                    const prob = await shotChecked(p, path.join(cfg.shots, name));
                    shots++;
                    ck.ok(prob.length === 0, `${name}: ${prob.join('; ')}`);
                    if (lang === 'zh' && vp === 'desktop') {
                        const v = await axe(p);
                        ck.ok(v.length === 0, `${key} ${hash}: axe serious/critical: ${v.join(' / ')}`);
                        const kb = await keyboardMisses(p);
                        ck.ok(kb.missed.length === 0, `${key} ${hash}: all ${kb.wanted} controls reachable by Tab (missed: ${kb.missed.slice(0, 5).join(', ')})`);
                    }
                }
            }
        }
        await noInjection(p, `${key}'s tour`);
        pageClean(p, `${key}'s tour`);
        await p.context().close();
    }
    console.log(`${shots} screenshots in ${cfg.shots}`);
}

const browser = await launch();
let rc = 1;
try {
    if (phase === 'apply') await phaseApply(browser);
    else if (phase === 'security') await phaseSecurity(browser);
    else if (phase === 'finding') await phaseFinding(browser);
    else if (phase === 'tour') await phaseTour(browser);
    else throw new Error(`unknown phase ${phase}`);
} catch (e) {
    console.log(e.stack || String(e));
    ck.ok(false, `phase ${phase} ran to its end (${String(e.message || e).split('\n')[0]})`);
} finally {
    rc = ck.done();
    await browser.close();
}
process.exit(rc);
