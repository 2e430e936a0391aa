// SPDX-License-Identifier: Apache-2.0
// Shared by the console's browser tests and its benchmark: Debian's Chromium driven by
// playwright-core (from console/node_modules, installed by `npm ci`), the console's own strings
// (console/src/i18n.js) to find what a page says, checks that count, the API with bearer
// tokens for the state behind a page, screenshots checked to have rendered, axe-core.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE = process.env.CB_SOURCE_DIR || path.resolve(here, '..', '..');
const require = createRequire(path.join(SOURCE, 'console', 'package.json'));
export const { chromium } = require('playwright-core');
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const { S } = await import(pathToFileURL(path.join(SOURCE, 'console', 'src', 'i18n.js')).href);

// L(key, vars, lang): the console's string, as the page shows it.
export function L(key, vars, lang = 'zh') {
    const pair = S[key];
    if (!pair) throw new Error(`no string '${key}'`);
    let s = pair[lang === 'en' ? 1 : 0];
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] === undefined ? '' : String(vars[k])));
    return s;
}
export const STRINGS = S;

// ---- checks

export class Checks {
    constructor(name) {
        this.name = name;
        this.passed = 0;
        this.failed = 0;
    }

    ok(cond, what) {
        if (cond) this.passed++;
        else {
            this.failed++;
            console.log(`FAIL: ${what}`);
        }
        return !!cond;
    }

    eq(got, want, what) {
        return this.ok(got === want, `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }

    done() {
        console.log(`${this.name}: ${this.passed} checks passed, ${this.failed} failed`);
        return this.failed === 0 && this.passed > 0 ? 0 : 1;
    }
}

// ---- the API, with a bearer token (the state behind what a page shows)

export function makeApi(base) {
    return async function api(token, method, p, body) {
        const headers = { Authorization: `Bearer ${token}` };
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        const r = await fetch(`${base}/v1/${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
        const text = await r.text();
        let doc = null;
        try {
            doc = JSON.parse(text);
        } catch (e) {
            doc = text;
        }
        return { status: r.status, doc, headers: r.headers };
    };
}

export async function waitFor(fn, what, timeout = 120000, interval = 500) {
    const end = Date.now() + timeout;
    let last;
    while (Date.now() < end) {
        last = await fn();
        if (last) return last;
        await new Promise((r) => setTimeout(r, interval));
    }
    throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

// ---- the browser

export const CHROMIUM = process.env.CB_CHROMIUM || '/usr/bin/chromium';

export async function launch(userDataDir) {
    // A fresh profile per run (launchPersistentContext would keep one; a plain launch makes a
    // temporary one), no network but loopback, no background traffic.
    return chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync',
            '--disable-extensions', '--mute-audio', '--no-default-browser-check', '--hide-scrollbars',
            '--lang=zh-CN'],
    });
}

// A new browser context (its own cookies and localStorage) with a page that records what
// must never happen: alert dialogs (XSS), uncaught page errors, failed requests to any other
// host. Confirm dialogs (the console's own "are you sure") are accepted.
export async function newPage(browser, base, opts = {}) {
    const ctx = await browser.newContext({
        viewport: opts.viewport || { width: 1280, height: 800 },
        locale: 'zh-CN',
        timezoneId: 'UTC',
        acceptDownloads: true,
    });
    const page = await ctx.newPage();
    page.events = { alerts: [], errors: [], foreign: [], console: [] };
    page.on('dialog', async (d) => {
        if (d.type() === 'confirm') return d.accept();
        page.events.alerts.push(`${d.type()}: ${d.message()}`);
        return d.dismiss();
    });
    page.on('pageerror', (e) => page.events.errors.push(String(e.message || e)));
    page.on('console', (m) => {
        if (m.type() === 'error') page.events.console.push(m.text());
    });
    page.on('request', (r) => {
        const u = r.url();
        if (!u.startsWith(base) && !u.startsWith('data:') && !u.startsWith('blob:') && !u.startsWith('chrome')) page.events.foreign.push(u);
    });
    page.base = base;
    return page;
}

// Waits until the current page has rendered: its heading is there and nothing is loading.
export async function ready(page, timeout = 20000) {
    await page.waitForSelector('#page-title', { timeout });
    await page.waitForFunction(() => !document.querySelector('main .loading'), null, { timeout });
}

export async function go(page, hash) {
    const url = `${page.base}/#${hash}`;
    // The same hash again is no navigation: load the page afresh instead.
    if (page.url() === url) await page.reload();
    else await page.goto(url);
    await ready(page);
}

export async function signIn(page, name, password) {
    await page.goto(`${page.base}/`);
    await page.waitForSelector('input[name=username]');
    await page.fill('input[name=username]', name);
    await page.fill('input[name=password]', password);
    await page.click('form button[type=submit]');
    await page.waitForSelector('main[data-role]', { timeout: 20000 });
    await ready(page);
}

export async function signOut(page) {
    await page.click('button.signout');
    await page.waitForSelector('input[name=username]');
}

export async function setPassword(page, link, password) {
    await page.goto(`${page.base}/${link}`);
    await page.waitForSelector('input[name=new-password]');
    await page.fill('input[name=new-password]', password);
    await page.fill('input[name=confirm-password]', password);
    await page.click('form button[type=submit]');
    await page.waitForSelector('.notice-ok');
}

export async function mainText(page) {
    return page.locator('main').innerText();
}

// ---- rendering checks

// Takes a full-page screenshot into @file and checks what the page shows: not blank (many
// distinct colours, text in main), nothing wider than the window (the document does not
// scroll sideways, and no element sticks out right of it). Returns the list of problems.
export async function shotChecked(page, file) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await page.screenshot({ path: file, fullPage: true });
    const m = await page.evaluate(() => {
        const w = document.documentElement.clientWidth;
        const over = [];
        for (const el of document.querySelectorAll('body *')) {
            const r = el.getBoundingClientRect();
            if (r.width === 0 || r.height === 0) continue;
            // Inside a horizontally scrolling region (a wide table) is fine: the region scrolls.
            let p = el.parentElement;
            let scrolled = false;
            while (p) {
                const st = getComputedStyle(p);
                if (st.overflowX === 'auto' || st.overflowX === 'scroll' || st.overflowX === 'hidden') {
                    scrolled = true;
                    break;
                }
                p = p.parentElement;
            }
            if (!scrolled && r.right > w + 1) over.push(`${el.tagName.toLowerCase()}.${el.className || ''} right ${Math.round(r.right)}`);
        }
        const main = document.querySelector('main');
        return {
            scroll: document.documentElement.scrollWidth,
            width: w,
            text: main ? main.innerText.trim().length : 0,
            over: over.slice(0, 5),
        };
    });
    const problems = [];
    if (m.scroll > m.width + 1) problems.push(`the page scrolls sideways (${m.scroll} > ${m.width})`);
    if (m.over.length) problems.push(`elements stick out: ${m.over.join(', ')}`);
    if (m.text < 4) problems.push(`main holds ${m.text} characters`);
    const colours = pngColours(fs.readFileSync(file));
    if (colours < 8) problems.push(`the screenshot has ${colours} colours (blank?)`);
    return problems;
}

// The number of distinct colours in a PNG's first rows, decoded with zlib (enough to tell a
// blank page from a rendered one).
import zlib from 'node:zlib';
function pngColours(buf) {
    let pos = 8;
    let w = 0, h = 0, bpp = 4;
    const idat = [];
    while (pos < buf.length) {
        const n = buf.readUInt32BE(pos);
        const type = buf.toString('ascii', pos + 4, pos + 8);
        const body = buf.subarray(pos + 8, pos + 8 + n);
        if (type === 'IHDR') {
            w = body.readUInt32BE(0);
            h = body.readUInt32BE(4);
            bpp = body[9] === 2 ? 3 : 4;
        } else if (type === 'IDAT') idat.push(body);
        else if (type === 'IEND') break;
        pos += 12 + n;
    }
    const raw = zlib.inflateSync(Buffer.concat(idat));
    const stride = w * bpp;
    const seen = new Set();
    let prev = Buffer.alloc(stride);
    for (let y = 0; y < Math.min(h, 600); y++) {
        const ft = raw[y * (stride + 1)];
        const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
        for (let i = 0; i < stride; i++) {
            const a = i >= bpp ? line[i - bpp] : 0;
            const up = prev[i];
            const c = i >= bpp ? prev[i - bpp] : 0;
            if (ft === 1) line[i] = (line[i] + a) & 255;
            else if (ft === 2) line[i] = (line[i] + up) & 255;
            else if (ft === 3) line[i] = (line[i] + ((a + up) >> 1)) & 255;
            else if (ft === 4) {
                const p = a + up - c;
                const pa = Math.abs(p - a), pb = Math.abs(p - up), pc = Math.abs(p - c);
                line[i] = (line[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? up : c)) & 255;
            }
        }
        for (let x = 0; x < w; x += 7) seen.add(line.readUIntBE(x * bpp, 3));
        prev = line;
    }
    return seen.size;
}

// axe-core on the page: the serious and critical violations, as "rule: target" lines.
export async function axe(page) {
    // The console's CSP forbids an inline <script>: evaluate axe through the DevTools protocol.
    if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE);
    const res = await page.evaluate(async () => {
        const r = await window.axe.run(document, { resultTypes: ['violations'] });
        return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
    });
    return res;
}

// Keyboard reachability: Tab from the top of the page and collect what takes the focus; every
// visible link, button and form control of main must be among them. Returns the ones missed.
export async function keyboardMisses(page, maxTabs = 250) {
    await page.evaluate(() => {
        document.activeElement && document.activeElement.blur();
        window.scrollTo(0, 0);
    });
    const wanted = await page.evaluate(() => {
        let n = 0;
        for (const el of document.querySelectorAll('main a[href], main button, main input, main select, main textarea, main [tabindex="0"], header a[href], header button')) {
            const r = el.getBoundingClientRect();
            const st = getComputedStyle(el);
            if (el.disabled || st.visibility === 'hidden' || st.display === 'none') continue;
            // Inside a closed <details>: hidden until its summary (which is reachable) opens it.
            if (el.closest('details:not([open])') && !el.matches('summary')) continue;
            if ((r.width === 0 || r.height === 0) && el.type !== 'file') continue;
            el.dataset.kbWant = String(++n);
        }
        return n;
    });
    const seen = new Set();
    await page.keyboard.press('Tab');
    for (let i = 0; i < maxTabs; i++) {
        const id = await page.evaluate(() => (document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.kbWant || '' : ''));
        if (id) seen.add(id);
        if (seen.size >= wanted) break;
        await page.keyboard.press('Tab');
    }
    const missed = await page.evaluate((ids) => {
        const out = [];
        for (const el of document.querySelectorAll('[data-kb-want]')) {
            if (!ids.includes(el.dataset.kbWant)) out.push(`${el.tagName.toLowerCase()} "${(el.innerText || el.getAttribute('aria-label') || el.name || '').slice(0, 30)}"`);
            delete el.dataset.kbWant;
        }
        return out;
    }, [...seen]);
    return { wanted, missed };
}
