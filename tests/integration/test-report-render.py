#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The HTML reports rendered by a real browser: headless Chromium (Debian's 'chromium') opens
the annual assessment (Chinese and English), the operations report (Chinese and English), the
monthly cost statement (Chinese and English, docs/costs.md) and the vendor's service-quality
scorecard (Chinese and English, docs/service-quality.md), prints each to PDF and takes a
screenshot, and the test checks what it rendered.

Fixture, all through the API (no database writes): libvirt's test driver as the trial and the
production host (tests/data/hosts/host-8cpu-16g.xml, image base.raw of its pool cb-images), so
the workflow runs for real (request, review, trial, allocation) without a hypervisor. Three
departments, four systems (one never on the cloud, one without a backup), six instances; four
days of 5-minute windows posted to POST /v1/samples with the production host's agent token
(idle, busy, over-provisioned, steady, bursty and small instances), POST /v1/metering/rollup
for each day, security records (backups, vulnerabilities, an incident), and POST
/v1/assessment/run with a policy whose windows fit four days.

Checks, for each of the documents:
  - the HTML itself: no <script>, no external reference (no "http" but the SVG namespace, no
    src=, href=, url(), @import), the labels of its language;
  - --dump-dom: Chromium parsed it into the tables and <svg> charts expected, with the rows
    expected (one per department, instance, finding, Art. 5 system);
  - --print-to-pdf: a PDF ('%PDF-' header, pages counted by pdfinfo when poppler-utils is
    there, else from the page objects) whose text layer holds the labels; with pdftoppm, every
    page rendered at 72 dpi has nothing right of the headings' underline (which spans the
    content box: anything further is cut at the paper's edge), and no page but the last is
    nearly empty;
  - Chinese glyphs, not fallback boxes (the assessment's and the scorecard's zh pages): a probe
    page with the zh report's own style and 12 of its Chinese characters, photographed and printed (the PDF rendered back by pdftoppm),
    draws 12 different glyphs, none of them the box that private-use characters draw (the
    fonts: Debian's fonts-noto-cjk, which tools/setup.sh installs);
  - --screenshot (1280 x 2000): a PNG decoded here (zlib, stdlib only) that is not blank
    (many colours, enough ink), shows the charts' colours (the bars' #3d7ab8, the memory
    line's #d9822b), has nothing right of the headings' underline and a right margin column
    of background colour (nothing wider than the window).
The screenshots and PDFs stay in a temporary folder outside the tree; their paths are printed.

Exit 77 (skipped) when chromium is not installed.
"""
import calendar
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402

HOST_XML = os.path.join(cbtest.SOURCE, 'tests', 'data', 'hosts', 'host-8cpu-16g.xml')
WIN = 300
EXPECTED = 30
DAYS = 4  # days of windows: today and the three before
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser') or \
    shutil.which('google-chrome')
CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                '--no-first-run', '--disable-background-networking',
                '--disable-component-update', '--disable-sync', '--hide-scrollbars',
                '--disable-extensions', '--mute-audio', '--no-default-browser-check']
BAR = (0x3d, 0x7a, 0xb8)   # the bars and the CPU line
LINE2 = (0xd9, 0x82, 0x2b)  # the memory line


# ---------------------------------------------------------------- the fleet, via the API

def ok(r, status, what):
    assert r.status == status, f'{what}: {r}'
    return r.json() if r.body else None


def wait_state(b, token, rid, states, timeout=60):
    deadline = time.time() + timeout
    doc = None
    while time.time() < deadline:
        doc = ok(b.get(f'/v1/requests/{rid}', token=token), 200, f'GET request {rid}')
        if doc['state'] in states:
            return doc
        time.sleep(0.1)
    raise RuntimeError(f'request {rid} stayed {doc and doc["state"]}, wanted {states}')


def allocate(b, tok, system_id, instances):
    """A 'new' request through review, trial and allocation. Returns: the allocation."""
    rid = ok(b.post('/v1/requests', {'system': system_id, 'kind': 'new',
                                     'justification': 'report fixture',
                                     'resources': {'instances': instances}},
                    token=tok['dept']), 201, 'create request')['id']
    for kind in cbtest.NEW_REQUEST_MATERIALS:
        ok(cbtest.upload_material(b, tok['dept'], rid, kind), 201, kind)
    ok(b.post(f'/v1/requests/{rid}/submit', token=tok['dept']), 200, 'submit')
    ok(b.post(f'/v1/requests/{rid}/decision', {'decision': 'approve'}, token=tok['reviewer']),
       200, 'approve')
    wait_state(b, tok['reviewer'], rid, ('in_trial',))
    sha = ok(cbtest.upload_material(b, tok['vendor'], rid, 'test_report', data=b'trial ok\n',
                                    media_type='text/plain'), 201, 'test report')['sha256']
    for test in ('function', 'performance', 'security'):
        ok(b.post(f'/v1/requests/{rid}/trial-results',
                  {'test': test, 'result': 'pass', 'report': sha}, token=tok['vendor']),
           201, f'trial {test}')
    ok(b.post(f'/v1/requests/{rid}/allocate', token=tok['reviewer']), 202, 'allocate')
    doc = wait_state(b, tok['reviewer'], rid, ('allocated',))
    return ok(b.get(f"/v1/allocations/{doc['allocation_id']}", token=tok['reviewer']), 200,
              'GET allocation')


def spec(vcpus, mem):
    return {'vcpus': vcpus, 'memory_mib': mem, 'disk_gib': 2, 'image': 'base'}


def profile(kind, vcpus, mem, t):
    """The made-up use of an instance of @kind in the window starting at @t:
    (cpu_avg, cpu_max, mem_avg, mem_max, rx bytes, tx bytes)."""
    h = (t % 86400) / 3600.0
    wave = math.sin(2 * math.pi * h / 24.0)
    k = t // WIN
    if kind == 'idle':
        c, m, rx, tx = 0.004, 0.18 * mem, 20 * WIN, 10 * WIN
    elif kind == 'busy':
        c, m, rx, tx = vcpus * (0.6 + 0.2 * wave), 0.75 * mem, 40000 * WIN, 30000 * WIN
    elif kind == 'over':
        c, m, rx, tx = 0.4 + 0.2 * wave, 0.24 * mem, 5000 * WIN, 4000 * WIN
    elif kind == 'steady':
        c, m, rx, tx = vcpus * (0.5 + 0.05 * wave), 0.62 * mem, 20000 * WIN, 20000 * WIN
    elif kind == 'bursty':
        c = vcpus * 0.95 if k % 10 == 0 else 0.1
        m, rx, tx = 0.4 * mem, 9000 * WIN, 9000 * WIN
    else:  # small
        c, m, rx, tx = 0.5 + 0.2 * wave, 0.5 * mem, 3000 * WIN, 3000 * WIN
    c = min(c, vcpus)
    return (round(c, 4), round(min(vcpus, c * 1.2 + 0.01), 4), round(m, 1), round(m * 1.05, 1),
            int(rx), int(tx))


def build(b, tmp):
    """The fleet, its history and its findings. Returns: what the checks need."""
    adm = b.admin_token
    _, reviewer = b.make_account('reviewer', 'reviewer')
    _, vendor = b.make_account('vendor', 'vendor')
    _, auditor = b.make_account('auditor', 'auditor')
    hosts = {}
    for pool, uri in (('trial', f'test://{HOST_XML}'),
                      ('production', f'test://{HOST_XML}?production')):
        hosts[pool] = ok(b.post('/v1/hosts', {'name': pool, 'uri': uri, 'pool': pool,
                                              'storage_pool': 'cb-images'}, token=vendor),
                         201, f'host {pool}')
    deadline = time.time() + 20
    while not all(h['connection']['state'] == 'connected'
                  for h in b.get('/v1/hosts', token=vendor).json()['items']):
        assert time.time() < deadline, 'the test-driver hosts did not connect'
        time.sleep(0.1)
    agent_token = hosts['production']['agent_token']

    depts = [
        ('mz', '民政局', [('婚姻登记管理系统', True, True,
                          [('idle', 2, 2048), ('busy', 2, 2048), ('over', 8, 4096)])]),
        ('rs', '人力资源和社会保障局', [('社会保障卡管理与服务一体化平台', True, False,
                                       [('steady', 4, 4096)]),
                                      ('档案数字化系统', False, False, [])]),
        ('jy', '教育局', [('招生考试信息平台', True, True, [('bursty', 2, 2048),
                                                          ('small', 1, 1024)])]),
    ]
    out = {'reviewer': reviewer, 'vendor': vendor, 'auditor': auditor, 'depts': [],
           'instances': [], 'systems': []}
    now = int(time.time())
    for code, name, systems in depts:
        did = b.make_department(code, name)
        _, dtok = b.make_account(f'{code}-staff', 'department', did)
        tok = {'dept': dtok, 'reviewer': reviewer, 'vendor': vendor}
        out['depts'].append({'id': did, 'code': code, 'name': name})
        for sname, on_cloud, backed_up, insts in systems:
            sid = cbtest.make_system(b, dtok, sname)
            out['systems'].append({'id': sid, 'name': sname, 'dept': name,
                                   'on_cloud': on_cloud, 'backup': backed_up})
            if not on_cloud:
                continue
            alloc = allocate(b, tok, sid, [spec(v, m) for _, v, m in insts])
            for (kind, v, m), inst in zip(insts, sorted(alloc['instances'],
                                                        key=lambda i: i['index'])):
                out['instances'].append(dict(inst, kind=kind, dept=name))
            if backed_up:
                ok(b.post(f'/v1/systems/{sid}/backups',
                          {'location': '市灾备中心 / city DR centre',
                           'taken_at': time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                                     time.gmtime(now - 86400)),
                           'size_bytes': 12345678, 'sha256': 'ab' * 32}, token=dtok),
                   201, 'backup')
    # Security records: a high vulnerability at 民政局, an incident at 教育局.
    sys_by = {s['name']: s['id'] for s in out['systems']}
    day = time.strftime('%Y-%m-%d', time.gmtime(now - 2 * 86400))
    ok(b.post(f"/v1/systems/{sys_by['婚姻登记管理系统']}/vulnerabilities",
              {'severity': 'high', 'title': 'TLS 1.0 enabled', 'found_at': day},
              token=vendor), 201, 'vulnerability')
    ok(b.post(f"/v1/systems/{sys_by['招生考试信息平台']}/vulnerabilities",
              {'severity': 'low', 'title': 'verbose error pages', 'found_at': day},
              token=vendor), 201, 'vulnerability')
    ok(b.post(f"/v1/systems/{sys_by['招生考试信息平台']}/incidents",
              {'severity': 'medium', 'title': '页面篡改 defacement attempt', 'occurred_at': day},
              token=vendor), 201, 'incident')

    # Four days of 5-minute windows, through the agents' API.
    today = now - now % 86400
    first = today - (DAYS - 1) * 86400
    last = now - now % WIN - WIN  # the last finished window
    batch = []
    sent = 0
    for inst in out['instances']:
        for t in range(first, last + 1, WIN):
            c, cm, m, mm, rx, tx = profile(inst['kind'], inst['vcpus'], inst['memory_mib'], t)
            batch.append({'instance': inst['id'], 'uuid': inst['uuid'], 'start': t,
                          'duration': WIN, 'readings': EXPECTED, 'expected': EXPECTED,
                          'vcpus': inst['vcpus'], 'memory_mib': inst['memory_mib'],
                          'cpu_cores_avg': c, 'cpu_cores_max': cm,
                          'memory_used_mib_avg': m, 'memory_used_mib_max': mm,
                          'memory_source': 'balloon', 'net_rx_bytes': rx, 'net_tx_bytes': tx,
                          'disk_read_bytes': 4096, 'disk_write_bytes': 8192,
                          'disk_read_requests': 1, 'disk_write_requests': 2,
                          'net_rx_packets': rx // 1000, 'net_tx_packets': tx // 1000})
            if len(batch) == 5000:
                sent += ok(b.post('/v1/samples', {'instances': batch}, token=agent_token), 200,
                           'POST /v1/samples')['stored']
                batch = []
    if batch:
        sent += ok(b.post('/v1/samples', {'instances': batch}, token=agent_token), 200,
                   'POST /v1/samples')['stored']
    for d in range(DAYS):
        dname = time.strftime('%Y-%m-%d', time.gmtime(first + d * 86400))
        ok(b.post('/v1/metering/rollup', {'day': dname}, token=vendor), 200, f'rollup {dname}')
    run = ok(b.post('/v1/assessment/run', {}, token=reviewer), 200, 'assessment run')
    out['windows'] = sent
    out['run'] = run
    out['findings'] = ok(b.get('/v1/findings?limit=1000', token=reviewer), 200,
                         'findings')['items']
    return out


# ---------------------------------------------------------------- reading what Chromium made

class Dom(HTMLParser):
    """Counts what the dumped DOM holds: tables with their header cells and body rows, SVG
    charts with their shapes, and the text."""

    def __init__(self):
        super().__init__()
        self.tables = []   # [{'th': [...], 'rows': n}]
        self.svgs = []     # [{'rect': n, 'polyline': n, 'text': n}]
        self.scripts = 0
        self.text = []
        self._tbody = False
        self._th = None
        self._svg = None

    def handle_starttag(self, tag, attrs):
        if tag == 'table':
            self.tables.append({'th': [], 'rows': 0})
        elif tag == 'tbody':
            self._tbody = True
        elif tag == 'tr' and self._tbody and self.tables and ('class', 'none') not in attrs:
            # (a table with nothing to list has one row saying so: 无 / none; not counted)
            self.tables[-1]['rows'] += 1
        elif tag == 'th':
            self._th = ''
        elif tag == 'svg':
            self._svg = {'rect': 0, 'polyline': 0, 'text': 0, 'line': 0}
            self.svgs.append(self._svg)
        elif tag in ('rect', 'polyline', 'text', 'line') and self._svg is not None:
            self._svg[tag] += 1
        elif tag == 'script':
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag == 'tbody':
            self._tbody = False
        elif tag == 'th' and self._th is not None:
            if self.tables:
                self.tables[-1]['th'].append(self._th.strip())
            self._th = None
        elif tag == 'svg':
            self._svg = None

    def handle_data(self, data):
        if self._th is not None:
            self._th += data
        self.text.append(data)


def png_decode(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA PNG, by zlib."""
    with open(path, 'rb') as f:
        data = f.read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat, w = 8, [], None
    while pos < len(data):
        n, typ = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b'IHDR':
            w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, \
                f'PNG depth {depth} colour type {ctype} interlace {interlace}'
            bpp = 3 if ctype == 2 else 4
        elif typ == b'IDAT':
            idat.append(body)
        elif typ == b'IEND':
            break
        pos += 12 + n
    raw = zlib.decompress(b''.join(idat))
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            up = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 0xff
            elif ft == 2:
                line[i] = (line[i] + up) & 0xff
            elif ft == 3:
                line[i] = (line[i] + ((a + up) >> 1)) & 0xff
            elif ft == 4:
                p = a + up - c
                pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (up if pb <= pc else c)
                line[i] = (line[i] + pr) & 0xff
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


def near(px, color, tol=12):
    return all(abs(a - b) <= tol for a, b in zip(px, color))


def chrome(args, timeout=120):
    """Runs headless Chromium with a fresh profile. Returns: the CompletedProcess."""
    prof = tempfile.mkdtemp(prefix='cb-chromium-profile-')
    try:
        return subprocess.run([CHROMIUM] + CHROME_FLAGS + [f'--user-data-dir={prof}'] + args,
                              capture_output=True, timeout=timeout)
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def pdf_pages(path):
    if shutil.which('pdfinfo'):
        p = subprocess.run(['pdfinfo', path], capture_output=True, text=True)
        m = re.search(r'^Pages:\s+(\d+)', p.stdout, re.M)
        if m:
            return int(m.group(1))
    with open(path, 'rb') as f:
        return len(re.findall(rb'/Type\s*/Page[^s]', f.read()))


def render(ck, name, path, outdir):
    """Dumps, prints and photographs @path. Returns: (Dom, pdf path, png path)."""
    url = 'file://' + path
    p = chrome(['--dump-dom', url])
    ck.eq(p.returncode, 0, f'{name}: chromium --dump-dom exits 0')
    dom = Dom()
    dom.feed(p.stdout.decode('utf-8', 'replace'))
    pdf = os.path.join(outdir, f'{name}.pdf')
    p = chrome([f'--print-to-pdf={pdf}', '--no-pdf-header-footer', url])
    ck.ok(p.returncode == 0 and os.path.exists(pdf),
          f'{name}: chromium --print-to-pdf made {pdf} ({p.returncode}, '
          f'{p.stderr.decode()[-300:]!r})')
    png = os.path.join(outdir, f'{name}.png')
    p = chrome([f'--screenshot={png}', '--window-size=1280,2000', url])
    ck.ok(p.returncode == 0 and os.path.exists(png),
          f'{name}: chromium --screenshot made {png} ({p.returncode})')
    return dom, pdf, png


def check_html(ck, name, html, labels):
    ck.ok('<script' not in html.lower(), f'{name}: no <script>')
    rest = html.replace('xmlns="http://www.w3.org/2000/svg"', '').replace('http-equiv=', '')
    ck.ok('http' not in rest, f'{name}: no "http" but the SVG namespace (and http-equiv) '
          f'({re.findall(r".{20}http.{20}", rest)[:3]})')
    for bad in ('src=', 'href=', 'url(', '@import', '<link', '<iframe', '<object', '<img'):
        ck.ok(bad not in rest.lower(), f'{name}: no {bad}')
    for label in labels:
        ck.ok(label in html, f'{name}: has the label {label!r}')


RULE = (0x24, 0x52, 0x7a)  # the h2 underline: it spans the content box


def content_right(w, h, rows):
    """The right end of the widest h2 underline on a page (the content box's right edge), or
    None when the page has none."""
    best = None
    for y in range(h):
        x = 0
        while x < w:
            if near(rows[y][x], RULE, 40):
                x0 = x
                while x < w and near(rows[y][x], RULE, 40):
                    x += 1
                if x - x0 > w * 0.5:
                    best = max(best or 0, x)
            x += 1
    return best


def overflow(w, h, rows, right, bg=(255, 255, 255)):
    """Columns with ink right of @right (+2 px): what sticks out of the content box."""
    return sorted({x for y in range(h) for x in range(min(w, right + 2), w)
                   if not near(rows[y][x], bg, 10)})


def check_pdf(ck, name, pdf, labels, png_dir):
    with open(pdf, 'rb') as f:
        data = f.read()
    ck.ok(data.startswith(b'%PDF-') and len(data) > 5000,
          f'{name}: the PDF has a %PDF- header and {len(data)} bytes')
    pages = pdf_pages(pdf)
    ck.ok(1 <= pages <= 20, f'{name}: the PDF has {pages} page(s)')
    if shutil.which('pdftotext'):
        text = subprocess.run(['pdftotext', '-enc', 'UTF-8', pdf, '-'], capture_output=True,
                              text=True).stdout
        squeezed = re.sub(r'\s+', '', text)
        for label in labels:
            ck.ok(re.sub(r'\s+', '', label) in squeezed,
                  f'{name}: the PDF\'s text has {label!r}')
    if shutil.which('pdftoppm'):
        # Every page at 72 dpi: nothing wider than the content box (what sticks out of it is
        # cut at the paper's edge), and no page but the last nearly empty.
        base = os.path.join(png_dir, f'{name}-pdf-page')
        subprocess.run(['pdftoppm', '-png', '-r', '72', pdf, base], check=True)
        files = sorted(f for f in os.listdir(png_dir) if f.startswith(f'{name}-pdf-page'))
        imgs = [png_decode(os.path.join(png_dir, f)) for f in files]
        rights = [r for r in (content_right(*img) for img in imgs) if r]
        ck.ok(rights, f'{name}: the PDF pages show the headings\' underline')
        right = max(rights) if rights else None
        for k, (w, h, rows) in enumerate(imgs, 1):
            if right:
                out = overflow(w, h, rows, right)
                ck.eq(out[-1:] and (out[0], out[-1]), [], f'{name}: PDF page {k}: nothing '
                      f'wider than the content box (right edge x={right} of {w} at 72 dpi)')
            ink = sum(1 for y in range(0, h, 2) for x in range(0, w, 2)
                      if not near(rows[y][x], (255, 255, 255), 10)) / ((h // 2) * (w // 2))
            if k < len(imgs):
                ck.ok(ink >= 0.01, f'{name}: PDF page {k} of {len(imgs)} is not nearly empty '
                      f'({ink:.2%} ink)')
    return pages


def check_cjk_glyphs(ck, html, out_dir):
    """Chromium draws the report's Chinese with real glyphs, not fallback boxes, on screen and
    in print. A probe page with the zh report's own <style> shows 12 distinct Chinese
    characters of the report, then 12 private-use characters that no font has (the boxes),
    each alone in an 80 x 80 px cell at 64 px. In its screenshot, and in its PDF rendered back
    at 96 dpi (1 px a CSS pixel), the private-use cells are one picture repeated (so a box is
    recognised), and the Chinese cells are 12 different pictures, none of them the box.
    (pdffonts cannot say which font a Chromium PDF embeds: Skia writes CJK OpenType fonts as
    unnamed Type 3 fonts.)"""
    style = re.search(r'<style>(.*?)</style>', html, re.S)
    chars = []
    for ch in re.sub(r'<[^>]*>', '', html):
        if '\u4e00' <= ch <= '\u9fff' and ch not in chars:
            chars.append(ch)
    chars = chars[:12]
    ck.ok(len(chars) == 12, f'the zh report has 12 distinct Chinese characters: {chars}')
    boxes = [chr(0xE000 + 7 * i) for i in range(12)]
    cells = []
    for row, text in enumerate((chars, boxes)):
        for col, ch in enumerate(text):
            cells.append(f'<div style="position:absolute;left:{20 + 90 * col}px;'
                         f'top:{20 + 100 * row}px;width:80px;height:80px;font-size:64px;'
                         f'line-height:80px;text-align:center;overflow:hidden">&#{ord(ch)};</div>')
    probe = os.path.join(out_dir, 'cjk-probe.html')
    with open(probe, 'w', encoding='utf-8') as f:
        f.write('<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><style>'
                f'{style.group(1) if style else ""}'
                '@page{size:1120px 240px;margin:0}@media print{body{margin:0}}'
                '</style></head><body style="margin:0">' + ''.join(cells) + '</body></html>')
    png = os.path.join(out_dir, 'cjk-probe.png')
    pdf = os.path.join(out_dir, 'cjk-probe.pdf')
    p = chrome([f'--screenshot={png}', '--window-size=1120,240', 'file://' + probe])
    ck.ok(p.returncode == 0 and os.path.exists(png), 'the CJK probe is photographed')
    p = chrome([f'--print-to-pdf={pdf}', '--no-pdf-header-footer', 'file://' + probe])
    ck.ok(p.returncode == 0 and os.path.exists(pdf), 'the CJK probe is printed')
    images = [('screen', png)]
    if shutil.which('pdftoppm') and os.path.exists(pdf):
        subprocess.run(['pdftoppm', '-png', '-r', '96', '-f', '1', '-l', '1', '-singlefile', pdf,
                        os.path.join(out_dir, 'cjk-probe-pdf')], check=True)
        images.append(('PDF', os.path.join(out_dir, 'cjk-probe-pdf.png')))
    else:
        ck.ok(False, 'pdftoppm (poppler-utils) is installed')
    for what, path in images:
        if not os.path.exists(path):
            continue
        w, h, rows = png_decode(path)

        def cell(row, col):
            x0, y0 = 20 + 90 * col, 20 + 100 * row
            return tuple(tuple(1 if sum(rows[y][x]) < 384 else 0
                               for x in range(x0, min(x0 + 80, w)))
                         for y in range(y0, min(y0 + 80, h)))
        han = [cell(0, i) for i in range(len(chars))]
        box = [cell(1, i) for i in range(len(boxes))]
        ink = [sum(map(sum, c)) for c in han]
        ck.ok(all(n > 100 for n in ink), f'{what}: every Chinese cell has ink: {ink}')
        ck.ok(sum(map(sum, box[0])) > 0 and len(set(box)) == 1,
              f'{what}: the private-use characters all draw the same box')
        ck.eq(len(set(han)), len(han), f'{what}: the Chinese characters draw as many glyphs')
        ck.ok(box[0] not in han, f'{what}: no Chinese character draws the box')
        print(f'CJK probe ({what}): {"".join(chars)} drawn as {len(set(han))} distinct glyphs '
              f'(ink {min(ink)}..{max(ink)} px); {path}', flush=True)


def check_png(ck, name, png, want_colors):
    w, h, rows = png_decode(png)
    ck.eq((w, h), (1280, 2000), f'{name}: screenshot size')
    bg = rows[h - 1][w - 1]
    colors = {}
    ink = 0
    for y in range(0, h, 2):
        for x in range(0, w, 2):
            px = rows[y][x]
            colors[px] = colors.get(px, 0) + 1
            if not near(px, bg, 24):
                ink += 1
    share = ink / ((h // 2) * (w // 2))
    ck.ok(len(colors) >= 50 and share > 0.01,
          f'{name}: the screenshot is not blank ({len(colors)} colours, {share:.1%} ink)')
    for cname, color in want_colors:
        n = sum(1 for y in range(0, h, 2) for x in range(0, w, 2) if near(rows[y][x], color, 6))
        ck.ok(n >= 50, f'{name}: the screenshot shows {cname} ({n} pixels)')
    # The body's margin is 24 px and the headings' underline spans the content box: nothing
    # right of it, and the last column of the window is background.
    right = content_right(w, h, rows)
    ck.ok(right is not None and w - 30 <= right <= w - 20,
          f'{name}: the headings\' underline ends at the 24 px margin (x={right})')
    if right:
        out = overflow(w, h, rows, right, bg)
        ck.eq(out[-1:] and (out[0], out[-1]), [], f'{name}: nothing wider than the content '
              f'box in the 1280 px window (columns with ink right of x={right})')
    edge = [y for y in range(h) if not near(rows[y][w - 1], bg, 8)]
    ck.eq(edge[:3], [], f'{name}: the right margin column is background')
    return share


# ---------------------------------------------------------------- the test

def main():
    ck = cbtest.Checks('test-report-render')
    if not CHROMIUM:
        print('SKIP: chromium is not installed (apt-get install chromium)')
        sys.exit(77)
    out_dir = tempfile.mkdtemp(prefix='cb-report-render-')
    pol = os.path.join(out_dir, 'policies')
    shutil.copytree(cbtest.POLICIES, pol)
    catalog = {'images': [{'name': 'base', 'pool': 'cb-images', 'volume': 'base.raw',
                           'format': 'raw'}]}
    with open(os.path.join(pol, 'catalog.json'), 'w') as f:
        json.dump(catalog, f)
    with open(os.path.join(pol, 'placement.json')) as f:
        place = json.load(f)
    place['anti_affinity'] = False
    with open(os.path.join(pol, 'placement.json'), 'w') as f:
        json.dump(place, f)
    with open(os.path.join(pol, 'assessment.json')) as f:
        a = json.load(f)
    # Windows that four days of history cover; evidence from instances made minutes ago.
    for k in ('idle', 'over_provisioned', 'under_provisioned'):
        a[k]['window_seconds'] = 3 * 86400
    a['evidence']['min_age_seconds'] = 0
    with open(os.path.join(pol, 'assessment.json'), 'w') as f:
        json.dump(a, f)

    b = cbtest.Broker(policy_dir=pol)
    try:
        b.start()
        run(ck, b, out_dir)
    except Exception:
        traceback.print_exc()
        ck.ok(False, 'the test ran to its end without an exception')
    finally:
        b.cleanup()
        shutil.rmtree(pol, ignore_errors=True)
    if ck.failed or os.environ.get('KEEP'):
        print(f'screenshots and PDFs: {out_dir}')
    else:
        shutil.rmtree(out_dir, ignore_errors=True)
    ck.done()


def run(ck, b, out_dir):
    t0 = time.time()
    if shutil.which('fc-list') and not subprocess.run(['fc-list', ':lang=zh'], capture_output=True,
                                                      text=True).stdout.strip():
        print('NOTE: no font for Chinese is installed (Debian: fonts-noto-cjk); the Chinese '
              'reports will show boxes in the screenshots', flush=True)
    fx = build(b, out_dir)
    print(f'fixture: {len(fx["instances"])} instances, {fx["windows"]} windows, run '
          f'{fx["run"]}, {time.time() - t0:.1f} s', flush=True)
    kinds = {(f['instance'], f['kind']) for f in fx['findings'] if f['state'] == 'open'}
    by_kind = {i['kind']: i for i in fx['instances']}
    ck.ok((by_kind['idle']['name'], 'idle') in kinds, 'the fixture has an idle finding')
    ck.ok((by_kind['over']['name'], 'over_provisioned') in kinds,
          'the fixture has an over-provisioned finding')
    year = time.gmtime().tm_year
    month = time.strftime('%Y-%m', time.gmtime())
    au = fx['auditor']
    n_dept = len(fx['depts'])
    no_budget = [s for s in fx['systems'] if not s['on_cloud'] or not s['backup']]
    open_f = [f for f in fx['findings'] if f['state'] in ('open', 'acknowledged')]

    docs = {
        'assessment-zh': (f'/v1/reports/assessment?year={year}&format=html&lang=zh',
                          ['年度考核', '全市概况', '综合得分', '上云率', '可回收vCPU',
                           '不予安排经费', '未上云', '未备份', '人力资源和社会保障局']),
        'assessment-en': (f'/v1/reports/assessment?year={year}&format=html&lang=en',
                          ['Annual assessment', 'City overview', 'Overall score', 'Cloud share',
                           'Reclaimable vCPUs', 'no budget', 'not on the cloud', 'no backup']),
        'operations-zh': (f'/v1/reports/operations?month={month}&format=html',
                          ['运行报告', '每日利用率', '实例利用情况', '优化建议', '运行事件',
                           '可用率', '闲置', '配置过度']),
        'operations-en': (f'/v1/reports/operations?month={month}&format=html&lang=en',
                          ['Operations report', 'Daily utilization', 'Instances',
                           'Right-sizing advice', 'Events', 'Availability', 'idle',
                           'over-provisioned']),
        'costs-zh': (f'/v1/reports/costs?month={month}&format=html',
                     ['费用月度账单', '各部门费用', '合计 (元)', '计算 (元)', '月初至今']),
        'costs-en': (f'/v1/reports/costs?month={month}&format=html&lang=en',
                     ['Monthly cost statement', 'Cost by department', 'Total (yuan)',
                      'month to date']),
        'service-quality-zh': (f'/v1/reports/service-quality?month={month}&format=html',
                               ['服务商服务质量月度考核', '考核指标', '扣减后服务费', '实例可用性',
                                '待定（期限未到）', '月初至今']),
        'service-quality-en': (f'/v1/reports/service-quality?month={month}&format=html&lang=en',
                               ['Vendor service-quality scorecard', 'Indicators',
                                'Fee after deductions', 'Instance availability',
                                'pending (not yet due)', 'month to date']),
    }
    # The scorecard's indicators and evidence, as the JSON has them (the same month's).
    sq = b.get(f'/v1/reports/service-quality?month={month}', token=au).json()
    sq_inds = sq['indicators']
    sq_avail = [x for x in sq_inds if x['id'] == 'availability'][0]
    for name, (url, labels) in docs.items():
        t_doc = time.time()
        r = b.get(url, token=au)
        ck.eq(r.status, 200, f'GET {url}')
        ck.ok(r.headers.get('Content-Type', '').startswith('text/html'),
              f'{name}: served as text/html')
        html = r.body.decode('utf-8')
        path = os.path.join(out_dir, f'{name}.html')
        with open(path, 'w') as f:
            f.write(html)
        check_html(ck, name, html, labels)
        dom, pdf, png = render(ck, name, path, out_dir)
        ck.eq(dom.scripts, 0, f'{name}: the DOM has no script')
        text = ''.join(dom.text)
        if name.startswith('assessment'):
            # Cards, the score bars (one per department), the indicators in four tables that
            # fit the page (scores 10 columns, efficiency 12 (with the saving a month, issue
            # 12), the year time-weighted 10 (issue 9), security 8; one row per department in
            # each), the Art. 5 table.
            ck.eq(len(dom.svgs), 1, f'{name}: one chart (the overall score bars)')
            if dom.svgs:
                ck.eq(dom.svgs[0]['rect'], n_dept, f'{name}: one bar per department')
            ck.eq(len(dom.tables), 5, f'{name}: five tables (scores, efficiency, the year '
                                      'time-weighted, security, Art. 5)')
            if len(dom.tables) == 5:
                for t, cols, what in zip(dom.tables, (10, 12, 10, 8),
                                         ('scores', 'efficiency', 'time-weighted',
                                          'security')):
                    ck.eq(t['rows'], n_dept, f'{name}: one {what} row per department')
                    ck.eq(len(t['th']), cols, f'{name}: {cols} {what} columns')
                ck.eq(dom.tables[4]['rows'], len(no_budget),
                      f'{name}: the Art. 5 list has the systems off the cloud or without backup')
            for s in no_budget:
                ck.ok(s['name'] in text, f'{name}: Art. 5 lists {s["name"]}')
            colors = [('the bars (#3d7ab8)', BAR)]
        elif name.startswith('service-quality'):
            # The indicators' table (a row each), then a table of evidence per indicator that
            # has any: availability a row per instance that should have run.
            ck.eq(len(dom.svgs), 0, f'{name}: no chart')
            with_ev = [x for x in sq_inds if x.get('evidence')]
            ck.eq(len(dom.tables), 1 + len(with_ev),
                  f'{name}: the indicators, then one evidence table each ({len(with_ev)})')
            if dom.tables:
                ck.eq(dom.tables[0]['rows'], len(sq_inds), f'{name}: a row per indicator')
                ck.eq(len(dom.tables[0]['th']), 6, f'{name}: six columns of indicators')
            if len(dom.tables) > 1:
                ck.eq(dom.tables[1]['rows'], len(sq_avail['evidence']),
                      f'{name}: a row per instance that should have run')
            ev_names = {e['name'] for e in sq_avail['evidence']}
            ck.ok(all(i['name'] in ev_names for i in fx['instances']),
                  f'{name}: every production instance should have run (and the trials\' too: '
                  f'{len(ev_names)} instances for {len(fx["instances"])} in production)')
            for e in sq_avail['evidence']:
                ck.ok(e['name'] in text, f'{name}: instance {e["name"]} is in the evidence')
            colors = []
        elif name.startswith('costs'):
            # The departments' table (a row per department and the total), then a table of
            # lines per department: every instance is billed (all held something this month).
            ck.eq(len(dom.svgs), 0, f'{name}: no chart')
            ck.eq(len(dom.tables), 1 + n_dept, f'{name}: the departments, then one table each')
            if dom.tables:
                ck.eq(dom.tables[0]['rows'], n_dept + 1,
                      f'{name}: a row per department and the total')
            for i in fx['instances']:
                ck.ok(i['name'] in text, f'{name}: instance {i["name"]} is billed')
            colors = []
        else:
            # Per department: a daily chart, the instance table, the findings, the events.
            ck.eq(len(dom.svgs), n_dept, f'{name}: one daily chart per department')
            ck.ok(all(s['polyline'] == 2 for s in dom.svgs),
                  f'{name}: each chart has the CPU and the memory line')
            ck.eq(len(dom.tables), 3 * n_dept, f'{name}: three tables per department')
            inst_rows = sum(t['rows'] for t in dom.tables[0::3])
            ck.eq(inst_rows, len(fx['instances']), f'{name}: one row per instance')
            find_rows = sum(t['rows'] for t in dom.tables[1::3])
            ck.eq(find_rows, len(open_f), f'{name}: one row per open finding')
            for i in fx['instances']:
                ck.ok(i['name'] in text, f'{name}: instance {i["name"]} is shown')
            colors = [('the CPU line (#3d7ab8)', BAR), ('the memory line (#d9822b)', LINE2)]
        for d in fx['depts'] if not name.startswith('service-quality') else ():
            ck.ok(d['name'] in text, f'{name}: department {d["name"]} is shown')
        pages = check_pdf(ck, name, pdf, labels[:3], out_dir)
        if name in ('assessment-zh', 'service-quality-zh'):
            check_cjk_glyphs(ck, html, out_dir)
        share = check_png(ck, name, png, colors)
        print(f'{name}: {os.path.getsize(path)} bytes of HTML; PDF {pdf} ({pages} pages); '
              f'screenshot {png} ({share:.1%} ink); {time.time() - t_doc:.1f} s', flush=True)
    print(f'runtime: {time.time() - t0:.0f} s')


if __name__ == '__main__':
    main()
