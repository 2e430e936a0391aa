// SPDX-License-Identifier: Apache-2.0
// Builds the console: src/main.jsx and src/style.css bundled by esbuild into OUT/assets with
// content-hashed names (the charts split into a chunk of their own, loaded by the pages that
// draw one), OUT/index.html naming them, and a .gz and .br sibling of every text asset for
// the broker to serve precompressed. No inline script or style anywhere: the broker's
// Content-Security-Policy is default-src 'self'.
//
//   node build.mjs --out DIR [--sizes]
//
// --sizes prints the compressed size of every asset and the JS+CSS total.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));

function args() {
    const a = process.argv.slice(2);
    const out = { out: path.join(here, 'dist'), sizes: false };
    for (let i = 0; i < a.length; i++) {
        if (a[i] === '--out' && i + 1 < a.length) out.out = path.resolve(a[++i]);
        else if (a[i] === '--sizes') out.sizes = true;
        else {
            console.error(`build.mjs: unknown argument '${a[i]}'`);
            process.exit(2);
        }
    }
    return out;
}

function need_modules() {
    for (const m of ['preact', 'echarts', 'esbuild']) {
        if (!fs.existsSync(path.join(here, 'node_modules', m))) {
            console.error(`build.mjs: console/node_modules/${m} is missing: run 'npm ci' in ` +
                'console/ (tools/setup.sh does)');
            process.exit(1);
        }
    }
}

function hash8(buf) {
    return createHash('sha256').update(buf).digest('hex').slice(0, 10);
}

// Writes @buf to @file with its .gz and .br siblings (only when compression pays).
function write_compressed(file, buf) {
    fs.writeFileSync(file, buf);
    const gz = zlib.gzipSync(buf, { level: 9 });
    const br = zlib.brotliCompressSync(buf, {
        params: {
            [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
            [zlib.constants.BROTLI_PARAM_SIZE_HINT]: buf.length,
        },
    });
    if (gz.length < buf.length) fs.writeFileSync(file + '.gz', gz);
    if (br.length < buf.length) fs.writeFileSync(file + '.br', br);
    return { raw: buf.length, gz: gz.length, br: br.length };
}

// Every t('key') of the sources must have its pair of strings in src/i18n.js (a key without
// one would show as itself).
async function check_strings() {
    const { S } = await import(new URL('./src/i18n.js', import.meta.url).href);
    const missing = [];
    const walk = (dir) => {
        for (const f of fs.readdirSync(dir, { withFileTypes: true })) {
            const p = path.join(dir, f.name);
            if (f.isDirectory()) walk(p);
            else if (/\.(js|jsx)$/.test(f.name)) {
                const text = fs.readFileSync(p, 'utf8');
                for (const m of text.matchAll(/\bt\('([a-z0-9_]+)'/g)) {
                    if (!S[m[1]]) missing.push(`${path.relative(here, p)}: ${m[1]}`);
                }
            }
        }
    };
    walk(path.join(here, 'src'));
    for (const [k, v] of Object.entries(S)) {
        if (!Array.isArray(v) || v.length !== 2 || !v[0] || !v[1]) missing.push(`i18n.js: ${k} is not a [zh, en] pair`);
    }
    if (missing.length) throw new Error(`strings without a translation:\n  ${missing.join('\n  ')}`);
}

async function main() {
    const opt = args();
    need_modules();
    await check_strings();
    const assets = path.join(opt.out, 'assets');
    fs.rmSync(assets, { recursive: true, force: true });
    fs.mkdirSync(assets, { recursive: true });

    const result = await build({
        absWorkingDir: here,
        entryPoints: { app: 'src/main.jsx', style: 'src/style.css' },
        bundle: true,
        splitting: true,
        format: 'esm',
        target: ['chrome100', 'firefox100', 'safari15'],
        minify: true,
        sourcemap: false,
        legalComments: 'none',
        charset: 'utf8',
        jsx: 'automatic',
        jsxImportSource: 'preact',
        outdir: assets,
        entryNames: '[name]-[hash]',
        chunkNames: 'chunk-[hash]',
        assetNames: '[name]-[hash]',
        metafile: true,
        write: true,
        logLevel: 'warning',
        define: { 'process.env.NODE_ENV': '"production"' },
    });

    const outputs = Object.keys(result.metafile.outputs).map((p) => path.resolve(here, p));
    const name_of = (entry) => {
        const o = Object.entries(result.metafile.outputs)
            .find(([, v]) => v.entryPoint === entry);
        if (!o) throw new Error(`no output for ${entry}`);
        return path.basename(o[0]);
    };
    const js = name_of('src/main.jsx');
    const css = name_of('src/style.css');
    // The CSS entry also makes an empty JS stub under esbuild: drop it.
    for (const p of outputs) {
        if (p.endsWith('.js') && path.basename(p).startsWith('style-')) fs.rmSync(p);
    }

    const icon = fs.readFileSync(path.join(here, 'src', 'icon.svg'));
    const icon_name = `icon-${hash8(icon)}.svg`;
    fs.writeFileSync(path.join(assets, icon_name), icon);

    const template = fs.readFileSync(path.join(here, 'src', 'index.html'), 'utf8');
    const html = template.replaceAll('%APP_JS%', `assets/${js}`)
        .replaceAll('%APP_CSS%', `assets/${css}`)
        .replaceAll('%ICON%', `assets/${icon_name}`);
    if (/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i.test(html)) {
        throw new Error('index.html holds inline script or style: the CSP forbids it');
    }

    const sizes = [];
    for (const f of fs.readdirSync(assets)) {
        if (!/\.(js|css|svg)$/.test(f)) continue;
        const p = path.join(assets, f);
        sizes.push([f, write_compressed(p, fs.readFileSync(p))]);
    }
    write_compressed(path.join(opt.out, 'index.html'), Buffer.from(html));

    if (opt.sizes) {
        let raw = 0, gz = 0, br = 0;
        for (const [f, s] of sizes.sort()) {
            console.log(`${f.padEnd(28)} ${String(s.raw).padStart(8)} B  gzip ` +
                `${String(s.gz).padStart(7)} B  brotli ${String(s.br).padStart(7)} B`);
            if (/\.(js|css)$/.test(f)) {
                raw += s.raw;
                gz += s.gz;
                br += s.br;
            }
        }
        console.log(`JS+CSS total: ${raw} B, gzip ${gz} B (${(gz / 1024).toFixed(1)} KiB), ` +
            `brotli ${br} B (${(br / 1024).toFixed(1)} KiB)`);
    }
}

main().catch((e) => {
    console.error(`build.mjs: ${e.message}`);
    process.exit(1);
});
