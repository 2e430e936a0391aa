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

async function timeLoad(page, hash) {
    const t0 = Date.now();
    await page.goto(`${cfg.base}/#${hash}`);
    await page.reload();
    // The charts of a page are part of its render.
    await ready(page, 60000);
    await page.waitForFunction(() => [...document.querySelectorAll('.chart')].every((c) => c.dataset.rendered === 'true'),
        null, { timeout: 60000 }).catch(() => null);
    return Date.now() - t0;
}

const browser = await launch();
const rows = [];
let bytes = null;
try {
    for (const [role, account] of [['reviewer', cfg.reviewer], ['department', cfg.department]]) {
        const page = await newPage(browser, cfg.base);
        const assets = new Map();
        page.on('requestfinished', async (req) => {
            const u = req.url();
            if (!/\/assets\/.*\.(js|css)$/.test(u)) return;
            const s = await req.sizes().catch(() => null);
            const resp = await req.response();
            if (s && resp && resp.status() === 200) assets.set(u, { bytes: s.responseBodySize, enc: resp.headers()['content-encoding'] || 'identity' });
        });
        await signIn(page, account, cfg.password);
        for (const hash of PAGES[role]) {
            const times = [];
            await timeLoad(page, hash); // warm-up: the API's caches and SQLite's pages
            for (let i = 0; i < cfg.runs; i++) times.push(await timeLoad(page, hash));
            const items = await page.evaluate(() => document.querySelectorAll('main tbody tr').length);
            rows.push({ role, page: hash.replace(/\?.*/, ''), ms: median(times), max: Math.max(...times), rows: items });
            console.log(`${role.padEnd(10)} ${hash.padEnd(34)} ${String(median(times)).padStart(6)} ms (max ${Math.max(...times)}), ${items} rows`);
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
console.log('\n| role | page | first render (median ms) | slowest run (ms) | table rows shown |');
console.log('|---|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.role} | \`${r.page}\` | ${r.ms} | ${r.max} | ${r.rows} |`);
const over = rows.filter((r) => r.ms >= 500);
console.log(`\npages over 500 ms: ${over.length ? over.map((r) => `${r.role} ${r.page} (${r.ms} ms)`).join(', ') : 'none'}`);
if (bytes) {
    console.log(`JS+CSS transferred: ${bytes.total} B (${(bytes.total / 1024).toFixed(1)} KiB): ${bytes.parts.join('; ')}`);
}
