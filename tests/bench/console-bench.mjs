// SPDX-License-Identifier: Apache-2.0
// The browser side of console-bench.py: node console-bench.mjs CONFIG.json
// Signs in through the console and times a full load of each page (until its heading is there
// and nothing is loading), and counts the JS and CSS bytes transferred with an empty cache.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const lib = await import(pathToFileURL(path.join(here, '..', 'console', 'lib.mjs')).href);
const { launch, newPage, ready, signIn } = lib;
const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

const PAGES = {
    reviewer: ['/dashboard', '/queue', '/requests', `/requests/${cfg.request}`, '/allocations',
        `/allocations/${cfg.allocation}`, '/findings', ...(cfg.finding ? [`/findings/${cfg.finding}`] : []),
        '/systems', '/hosts', '/jobs', '/security', '/audit', '/departments', '/accounts',
        '/notifications', `/reports/operations?month=${cfg.month}`, `/reports/assessment?year=${cfg.year}`],
    department: ['/requests', '/queue', '/requests/new', `/allocations/${cfg.allocation}`, '/allocations',
        '/findings', '/systems', '/security'],
};

function median(xs) {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// A full load of the page's URL from a blank page: the document, the assets (from the cache
// after the first load), the API calls and the rendering, until the heading is there, nothing
// is loading and every chart has drawn. Returns: {ms, api} (api: the slowest /v1 call, ms).
async function timeLoad(page, hash) {
    await page.goto('about:blank');
    const t0 = Date.now();
    await page.goto(`${cfg.base}/#${hash}`);
    await ready(page, 60000);
    await page.waitForFunction(() => [...document.querySelectorAll('.chart')].every((c) => c.dataset.rendered === 'true'),
        null, { timeout: 60000 }).catch(() => null);
    const ms = Date.now() - t0;
    const api = await page.evaluate(() => Math.max(0, ...performance.getEntriesByType('resource')
        .filter((e) => e.name.includes('/v1/') && !e.name.includes('/v1/session') && !e.name.includes('/v1/health'))
        .map((e) => e.duration)));
    return { ms, api: Math.round(api) };
}

const browser = await launch();
const rows = [];
let bytes = null;
try {
    for (const [role, account] of [['reviewer', cfg.reviewer], ['department', cfg.department]]) {
        const page = await newPage(browser, cfg.base);
        const assets = new Map();
        page.on('response', (resp) => {
            const u = resp.url();
            if (!/\/assets\/.*\.(js|css)$/.test(u) || resp.status() !== 200) return;
            const h = resp.headers();
            assets.set(u, { bytes: Number(h['content-length'] || 0), enc: h['content-encoding'] || 'identity' });
        });
        await signIn(page, account, cfg.password);
        for (const hash of PAGES[role]) {
            const runs = [];
            await timeLoad(page, hash); // warm-up: SQLite's pages, the broker's caches
            for (let i = 0; i < cfg.runs; i++) runs.push(await timeLoad(page, hash));
            const items = await page.evaluate(() => document.querySelectorAll('main tbody tr').length);
            const ms = median(runs.map((x) => x.ms));
            const api = median(runs.map((x) => x.api));
            rows.push({ role, page: hash.replace(/\?.*/, ''), ms, api, max: Math.max(...runs.map((x) => x.ms)), rows: items });
            console.log(`${role.padEnd(10)} ${hash.padEnd(34)} ${String(ms).padStart(6)} ms (slowest API call ${api} ms), ${items} rows`);
        }
        if (role === 'reviewer') {
            let total = 0;
            const parts = [];
            for (const [u, s] of assets) {
                total += s.bytes;
                parts.push(`${path.basename(u)} ${s.bytes} B (${s.enc})`);
            }
            bytes = { total, parts };
        }
        await page.context().close();
    }
} finally {
    await browser.close();
}
console.log('\n| role | page | first render (median ms) | of which the slowest API call (ms) | slowest run (ms) | table rows shown |');
console.log('|---|---|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.role} | \`${r.page}\` | ${r.ms} | ${r.api} | ${r.max} | ${r.rows} |`);
const over = rows.filter((r) => r.ms >= 500);
console.log(`\npages over 500 ms: ${over.length ? over.map((r) => `${r.role} ${r.page} (${r.ms} ms)`).join(', ') : 'none'}`);
if (bytes) {
    console.log(`JS+CSS transferred: ${bytes.total} B (${(bytes.total / 1024).toFixed(1)} KiB): ${bytes.parts.join('; ')}`);
}
