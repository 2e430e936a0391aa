// SPDX-License-Identifier: Apache-2.0
// The browser half of tests/console/test-console-money.py, which starts the broker and makes
// the fixture through the API:   node console-money.mjs CONFIG.json
// Drives the cost statement and the service-quality scorecard pages in Chromium for the
// department, the reviewer, the vendor and the auditor, in Chinese and in English, and checks
// what they show against the same reports read through the API. Prints its checks and exits
// non-zero when one failed.
import fs from 'node:fs';
import path from 'node:path';
import { Checks, L, axe, go, keyboardMisses, launch, mainText, makeApi, newPage, ready, shotChecked, signIn } from './lib.mjs';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const A = cfg.accounts;
const M = cfg.month;
const api = makeApi(cfg.base);
const ck = new Checks('console-money');
const step = (s) => console.log(`-- ${s}`);
const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const TREND_MONTHS = 12;
const EXPLANATION = '试运行环境镜像同步慢 <b>not bold</b>';

// The console's own spelling of fen as yuan.
function yuan(fen) {
    const a = Math.abs(fen);
    return `${fen < 0 ? '-' : ''}${Math.floor(a / 100)}.${String(a % 100).padStart(2, '0')}`;
}

function fen_of(text) {
    const m = /(-?\d+)\.(\d\d)/.exec(text || '');
    return m ? Number(m[1]) * 100 + (m[1].startsWith('-') ? -1 : 1) * Number(m[2]) : NaN;
}

async function setLang(p, lang) {
    const cur = await p.evaluate(() => document.documentElement.lang);
    if ((cur === 'en') === (lang === 'en')) return;
    await p.click('button.lang');
    await p.waitForFunction((l) => (document.documentElement.lang === 'en') === (l === 'en'), lang);
}

// Opens @hash and waits for the report, the trend and its chart.
async function open(p, hash) {
    await go(p, hash);
    await p.waitForFunction(() => [...document.querySelectorAll('.chart')].every((c) => c.dataset.rendered === 'true'), null, { timeout: 20000 }).catch(() => null);
}

// Text in main that shows a number as "#N" outside a link: an id where a name belongs.
async function bareIds(p) {
    return p.evaluate(() => {
        const out = [];
        const w = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
        for (let n = w.nextNode(); n; n = w.nextNode()) {
            if (/#\d+/.test(n.nodeValue) && !n.parentElement.closest('a')) out.push(n.nodeValue.trim().slice(0, 40));
        }
        return out;
    });
}

async function stat(p, name) {
    return p.locator(`[data-stat="${name}"] .stat-value`).innerText();
}

// What every page must pass: names not ids, times with their UTC spelling, the trend drawn
// with a row per month, no script error; axe, keyboard and screenshots where asked.
async function common(p, who, what, lang, trend, full) {
    const bare = await bareIds(p);
    ck.ok(bare.length === 0, `${who} ${what} ${lang}: no id outside a link (${bare.slice(0, 3).join(' | ')})`);
    const times = await p.$$eval('main time', (ts) => ts.map((x) => x.getAttribute('title') || ''));
    ck.ok(times.length > 0 && times.every((x) => x.includes('UTC')), `${who} ${what} ${lang}: times in the city's zone with UTC on hover (${times.length})`);
    ck.eq(await p.locator(`[data-trend="${trend}"] tbody tr`).count(), TREND_MONTHS, `${who} ${what} ${lang}: the trend has a row per month`);
    ck.eq(await p.locator(`[data-trend="${trend}"] .chart[data-rendered="true"]`).count(), 1, `${who} ${what} ${lang}: the trend chart is drawn`);
    ck.ok(p.events.errors.length === 0 && p.events.foreign.length === 0 && p.events.alerts.length === 0,
        `${who} ${what} ${lang}: no script error, dialog or other host (${[...p.events.errors, ...p.events.foreign, ...p.events.alerts].slice(0, 3).join('; ')})`);
    if (!full) return;
    const v = await axe(p);
    ck.ok(v.length === 0, `${who} ${what} ${lang}: axe serious/critical: ${v.join(' / ')}`);
    const kb = await keyboardMisses(p);
    ck.ok(kb.missed.length === 0, `${who} ${what} ${lang}: all ${kb.wanted} controls reachable by Tab (missed: ${kb.missed.slice(0, 5).join(', ')})`);
    for (const [vp, size] of Object.entries(VIEWPORTS)) {
        await p.setViewportSize(size);
        await p.waitForTimeout(200);
        const prob = await shotChecked(p, path.join(cfg.shots, `money-${who}-${what}-${lang}-${vp}.png`));
        ck.ok(prob.length === 0, `${who} ${what} ${lang} ${vp} screenshot: ${prob.join('; ')}`);
    }
    await p.setViewportSize(VIEWPORTS.desktop);
}

// The download links answer with the type they name (the session cookie, as a click would).
async function downloads(p, who, want) {
    const links = await p.$$eval('.downloads a', (as) => as.map((a) => a.href));
    ck.eq(links.length, want.length, `${who}: ${want.length} download links`);
    for (const [i, type] of want.entries()) {
        if (!links[i]) continue;
        const r = await p.context().request.get(links[i]);
        ck.ok(r.status() === 200 && (r.headers()['content-type'] || '').startsWith(type), `${who}: ${links[i]} answers ${type} (${r.status()} ${r.headers()['content-type']})`);
    }
}

async function costs_total(token, dept) {
    const r = await api(token, 'GET', `reports/costs?month=${M}${dept ? `&department=${dept}` : ''}`);
    return r.doc.total.total_fen;
}

async function department(browser) {
    step('the department: its own statement');
    const acc = A.mz;
    const p = await newPage(browser, cfg.base);
    await signIn(p, acc.name, cfg.password);
    const nav = await p.locator('nav').innerText();
    ck.ok(nav.includes(L('nav_costs')) && !nav.includes(L('nav_service_quality')), 'department: the navigation has the statement, not the scorecard');
    for (const lang of ['zh', 'en']) {
        await setLang(p, lang);
        const before = await costs_total(acc.token);
        await open(p, `/reports/costs?month=${M}`);
        const after = await costs_total(acc.token);
        ck.ok((await p.locator('#page-title').innerText()).includes(L('cost_statement', null, lang)), `department ${lang}: the statement's title`);
        const total = fen_of(await stat(p, 'total'));
        ck.ok(total >= before && total <= after && total > 0, `department ${lang}: the total ${total} fen is the API's (${before}..${after})`);
        const rows = await p.$$eval('[data-report="costs"] tbody tr', (trs) => trs.map((tr) => tr.innerText));
        const text = await mainText(p);
        for (const n of [cfg.departments.mz.name, cfg.systems.mz, ...cfg.instances.mz]) ck.ok(text.includes(n), `department ${lang}: shows ${n}`);
        for (const n of [cfg.departments.jt.name, cfg.systems.jt, ...cfg.instances.jt]) ck.ok(!text.includes(n), `department ${lang}: never shows another department's ${n}`);
        ck.ok(rows.length >= 2, `department ${lang}: its row, the total and its allocation lines`);
        ck.eq(await p.locator(`a[href="#/allocations/${cfg.allocations.mz}"]`).count() > 0, true, `department ${lang}: its allocation is a link`);
        ck.ok(text.includes(L('cost_production', null, lang)) && text.includes(L('cost_trial', null, lang)), `department ${lang}: trial and production shown apart`);
        ck.ok(fen_of(await stat(p, 'trial')) > 0 && fen_of(await stat(p, 'production')) > 0, `department ${lang}: the trial and the production cost something`);
        await downloads(p, `department ${lang}`, ['text/html', 'text/csv', 'application/json']);
        await common(p, 'department', 'costs', lang, 'costs', lang === 'zh');
    }
    await go(p, `/reports/service-quality?month=${M}`);
    ck.ok((await mainText(p)).includes(L('forbidden', null, 'en')), 'department: the scorecard is not its to see');
    await p.context().close();
}

async function reviewer(browser) {
    step('the reviewer: the city\'s statement, a department\'s lines, the scorecard');
    const acc = A.reviewer;
    const p = await newPage(browser, cfg.base);
    await signIn(p, acc.name, cfg.password);
    const nav = await p.locator('nav').innerText();
    ck.ok(nav.includes(L('nav_costs')) && nav.includes(L('nav_service_quality')), 'reviewer: the navigation has both pages');
    for (const lang of ['en', 'zh']) {
        await setLang(p, lang);
        await open(p, `/reports/costs?month=${M}`);
        const text = await mainText(p);
        for (const d of Object.values(cfg.departments)) ck.ok(text.includes(d.name), `reviewer ${lang}: the city's statement lists ${d.name}`);
        // The department rows add up to the total (the page's own figures).
        const cells = await p.$$eval('[data-report="costs"] tbody tr', (trs) => trs.map((tr) => tr.lastElementChild.innerText));
        const sum = cells.slice(0, -1).reduce((s, x) => s + fen_of(x), 0);
        ck.eq(sum, fen_of(cells[cells.length - 1]), `reviewer ${lang}: the departments add up to the total`);
        const last = await p.$$eval('[data-trend="costs"] tbody tr:last-child td', (tds) => tds.map((x) => x.innerText));
        ck.ok(last[0] === M && fen_of(last[1]) + fen_of(last[2]) === fen_of(last[3]) && fen_of(last[3]) >= fen_of(cells[cells.length - 1]),
            `reviewer ${lang}: the trend's last row is this month, production and trial adding up (${last.join(' ')})`);
        await common(p, 'reviewer', 'costs', lang, 'costs', lang === 'en');
        // One department: its lines.
        await p.click(`a[href="#/reports/costs?month=${M}&department=${cfg.departments.jt.id}"]`);
        await p.waitForFunction((n) => [...document.querySelectorAll('main h2')].some((h) => h.textContent.startsWith(n)), cfg.departments.jt.name, { timeout: 15000 });
        await ready(p);
        const jt = await p.locator('[data-report="costs"]').innerText();
        ck.ok(jt.includes(cfg.systems.jt) && cfg.instances.jt.every((n) => jt.includes(n)) && !jt.includes(cfg.departments.mz.name),
            `reviewer ${lang}: a department's statement has its system and instances, no other department`);

        const before = (await api(acc.token, 'GET', `reports/service-quality?month=${M}`)).doc;
        await open(p, `/reports/service-quality?month=${M}`);
        const sq = await mainText(p);
        ck.ok((await p.locator('#page-title').innerText()).includes(L('sq_report', null, lang)), `reviewer ${lang}: the scorecard's title`);
        for (const x of before.indicators) ck.ok(sq.includes(L(`sqi_${x.id}`, null, lang)), `reviewer ${lang}: indicator ${x.id} shown by its name`);
        ck.eq(await stat(p, 'fee'), yuan(before.fee_fen), `reviewer ${lang}: the month's fee`);
        ck.eq(await stat(p, 'fee_after'), yuan(before.fee_after_fen), `reviewer ${lang}: the fee after deductions`);
        ck.eq(await stat(p, 'deduction'), yuan(before.deduction_fen), `reviewer ${lang}: the deduction`);
        ck.ok(before.deduction_fen > 0, 'the fixture deducts something (the late trials)');
        // The trend's last month is this month: the same fee after deductions and count.
        const sqLast = await p.$$eval('[data-trend="service-quality"] tbody tr:last-child td', (tds) => tds.map((x) => x.innerText));
        const met = before.indicators.filter((x) => x.status === 'met').length;
        const scored = before.indicators.filter((x) => x.status === 'met' || x.status === 'missed').length;
        ck.eq(JSON.stringify(sqLast), JSON.stringify([M, yuan(before.fee_fen), yuan(before.fee_after_fen), `${met} / ${scored}`]), `reviewer ${lang}: the trend's last row is this month's scorecard`);
        const row = p.locator('tr[data-indicator="trial_lead_time"]');
        ck.ok((await row.innerText()).includes(L('sq_missed', null, lang)), `reviewer ${lang}: the trial lead time is missed`);
        // The month's security bulletin is a duty not recorded yet: pending until its deadline in the next month.
        const bulletin = before.indicators.find((x) => x.id === 'security_bulletin');
        ck.eq(bulletin && bulletin.status, 'pending', 'the fixture records no bulletin: this month\'s is pending');
        ck.ok((await p.locator('tr[data-indicator="security_bulletin"]').innerText()).includes(L('sq_pending', null, lang)), `reviewer ${lang}: a duty not due yet shows as pending`);
        for (const rid of Object.values(cfg.requests)) {
            ck.ok(await p.locator(`#sq-trial_lead_time a[href="#/requests/${rid}"]`).count() > 0, `reviewer ${lang}: the trial of request ${rid} is linked as evidence`);
        }
        ck.eq(await p.locator('form.sq-explain').count(), 0, `reviewer ${lang}: no explanation form (the vendor's)`);
        await downloads(p, `reviewer ${lang} scorecard`, ['text/html', 'text/csv', 'application/json']);
        await common(p, 'reviewer', 'service-quality', lang, 'service-quality', lang === 'zh');
    }
    await p.context().close();
}

async function vendor(browser) {
    step('the vendor: explains the missed indicator on the page');
    const acc = A.vendor;
    const p = await newPage(browser, cfg.base);
    await signIn(p, acc.name, cfg.password);
    const nav = await p.locator('nav').innerText();
    ck.ok(nav.includes(L('nav_service_quality')) && !nav.includes(L('nav_costs')), 'vendor: the navigation has the scorecard, not the statement');
    await open(p, `/reports/service-quality?month=${M}`);
    const doc = (await api(acc.token, 'GET', `reports/service-quality?month=${M}`)).doc;
    const missed = doc.indicators.filter((x) => x.status === 'missed').length;
    ck.eq(await p.locator('form.sq-explain').count(), missed, 'vendor: an explanation form for each missed indicator');
    const f = p.locator('#sq-trial_lead_time form.sq-explain');
    await f.locator('textarea').fill(EXPLANATION);
    await f.locator('button[type=submit]').click();
    await p.waitForSelector('#sq-trial_lead_time [data-explanation]', { timeout: 15000 });
    const ex = await p.locator('#sq-trial_lead_time [data-explanation]').innerText();
    ck.ok(ex.includes(EXPLANATION) && ex.includes(acc.name), `vendor: the explanation shows, as text, with the vendor's name (${ex})`);
    ck.eq(await p.locator('#sq-trial_lead_time .explanation-text b').count(), 0, 'vendor: markup in the explanation is text');
    await common(p, 'vendor', 'service-quality', 'zh', 'service-quality', true);
    for (const lang of ['en']) {
        await setLang(p, lang);
        await open(p, `/reports/service-quality?month=${M}`);
        ck.ok((await mainText(p)).includes(L('sq_explanations', null, lang)), `vendor ${lang}: the explanations' heading`);
        await common(p, 'vendor', 'service-quality', lang, 'service-quality', false);
    }
    await go(p, `/reports/costs?month=${M}`);
    ck.ok((await mainText(p)).includes(L('forbidden', null, 'en')), 'vendor: the statement is not its to see');
    await p.context().close();
}

async function auditor(browser) {
    step('the auditor: both pages, read only');
    const acc = A.auditor;
    const p = await newPage(browser, cfg.base);
    await signIn(p, acc.name, cfg.password);
    for (const lang of ['zh', 'en']) {
        await setLang(p, lang);
        await open(p, `/reports/costs?month=${M}`);
        ck.ok((await mainText(p)).includes(cfg.departments.mz.name), `auditor ${lang}: the statement`);
        await common(p, 'auditor', 'costs', lang, 'costs', false);
        await open(p, `/reports/service-quality?month=${M}`);
        ck.ok((await mainText(p)).includes(EXPLANATION), `auditor ${lang}: the scorecard with the vendor's explanation`);
        ck.eq(await p.locator('form.sq-explain').count(), 0, `auditor ${lang}: no explanation form`);
        await common(p, 'auditor', 'service-quality', lang, 'service-quality', false);
    }
    await p.context().close();
}

const browser = await launch();
let rc = 1;
try {
    await department(browser);
    await reviewer(browser);
    await vendor(browser);
    await auditor(browser);
} catch (e) {
    console.log(e.stack || String(e));
    ck.ok(false, `the checks ran to their end (${String(e.message || e).split('\n')[0]})`);
} finally {
    rc = ck.done();
    await browser.close();
}
process.exit(rc);
