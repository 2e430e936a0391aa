#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The web console's files as the broker serves them: the exact security headers, caching by
content hash, precompressed .br/.gz negotiation, ETag revalidation, the snapshot taken at
start, JSON 404 for everything else and the JSON 503 when the console is not built."""
import gzip
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from cbtest import Broker, Checks, json_error  # noqa: E402

checks = Checks('console-serve')
CSP = ("default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none';"
       " base-uri 'self'; form-action 'self'")
tmp = tempfile.mkdtemp(prefix='cbconsole-')
con = os.path.join(tmp, 'console')
os.makedirs(os.path.join(con, 'assets'))
INDEX = b'<!doctype html><html lang="zh-CN"><script type="module" src="assets/app-3f2a9c1d.js">' \
        b'</script><div id="app"></div></html>\n'
APP = b'console.log("\xe4\xba\x91 broker");\n' * 200
BR = b'\x1b\x03\x00fake brotli bytes: served as they are'
with open(os.path.join(con, 'index.html'), 'wb') as f:
    f.write(INDEX)
with open(os.path.join(con, 'assets', 'app-3f2a9c1d.js'), 'wb') as f:
    f.write(APP)
with open(os.path.join(con, 'assets', 'app-3f2a9c1d.js.gz'), 'wb') as f:
    f.write(gzip.compress(APP))
with open(os.path.join(con, 'assets', 'app-3f2a9c1d.js.br'), 'wb') as f:
    f.write(BR)
with open(os.path.join(con, 'assets', 'style-77aa.css'), 'wb') as f:
    f.write(b'body{margin:0}\n')
with open(os.path.join(con, '.hidden'), 'wb') as f:
    f.write(b'secret')
os.symlink('/etc/passwd', os.path.join(con, 'assets', 'passwd.js'))


def common_headers(r, what):
    h = {k.lower(): v for k, v in r.headers.items()}
    checks.eq(h.get('content-security-policy'), CSP, f'{what}: CSP exact')
    checks.eq(h.get('x-frame-options'), 'DENY', f'{what}: X-Frame-Options')
    checks.eq(h.get('x-content-type-options'), 'nosniff', f'{what}: nosniff')
    checks.eq(h.get('referrer-policy'), 'same-origin', f'{what}: Referrer-Policy')
    checks.ok(h.get('x-request-id'), f'{what}: X-Request-Id as on the API')
    checks.eq(h.get('vary'), 'Accept-Encoding', f'{what}: Vary')
    return h


with Broker(extra_args=['--console-dir', con]) as b:
    r = b.get('/')
    checks.eq(r.status, 200, 'GET / serves the console')
    checks.eq(r.body, INDEX, 'index.html as it is')
    h = common_headers(r, 'index.html')
    checks.eq(h.get('content-type'), 'text/html; charset=utf-8', 'index.html type')
    checks.eq(h.get('cache-control'), 'no-cache', 'index.html is revalidated, never cached blind')
    etag = h.get('etag')
    r = b.get('/', headers={'If-None-Match': etag})
    checks.ok(r.status == 304 and r.body == b'', f'If-None-Match with the ETag: 304 {r}')
    checks.eq(b.get('/index.html').body, INDEX, '/index.html too')

    r = b.get('/assets/app-3f2a9c1d.js')
    h = common_headers(r, 'asset')
    checks.ok(r.status == 200 and r.body == APP and 'content-encoding' not in h,
              'a client that accepts no coding gets the plain file')
    checks.eq(h.get('cache-control'), 'public, max-age=31536000, immutable',
              'hashed assets are cached for a year')
    checks.eq(h.get('content-type'), 'text/javascript; charset=utf-8', 'asset type')
    r = b.get('/assets/app-3f2a9c1d.js', headers={'Accept-Encoding': 'gzip, deflate'})
    h = {k.lower(): v for k, v in r.headers.items()}
    checks.ok(r.status == 200 and h.get('content-encoding') == 'gzip' and
              gzip.decompress(r.body) == APP, 'gzip sibling served for Accept-Encoding: gzip')
    r = b.get('/assets/app-3f2a9c1d.js', headers={'Accept-Encoding': 'gzip, br'})
    h = {k.lower(): v for k, v in r.headers.items()}
    checks.ok(h.get('content-encoding') == 'br' and r.body == BR, 'br preferred when accepted')
    r = b.get('/assets/app-3f2a9c1d.js', headers={'Accept-Encoding': 'br;q=0, gzip'})
    checks.eq({k.lower(): v for k, v in r.headers.items()}.get('content-encoding'), 'gzip',
              'br;q=0 is a refusal')
    r = b.get('/assets/style-77aa.css', headers={'Accept-Encoding': 'br, gzip'})
    h = {k.lower(): v for k, v in r.headers.items()}
    checks.ok(r.status == 200 and 'content-encoding' not in h and h.get('content-type') ==
              'text/css; charset=utf-8', 'no sibling: the plain file')

    for path in ('/foo', '/.hidden', '/assets/passwd.js', '/assets/app-3f2a9c1d.js.gz',
                 '/assets/', '/assets/../index.html', '/v1/nothing', '/index.htm'):
        r = b.get(path)
        e = json_error(r)
        checks.ok(r.status == 404 and e and e['code'] == 'not_found' and
                  r.headers.get('Content-Type') == 'application/json',
                  f'{path}: JSON 404 {r}')
    r = b.request('POST', '/', body={})
    checks.ok(r.status in (404, 405) and json_error(r), f'POST / is no console call: {r}')
    r = b.get('/v1/health')
    checks.ok(r.json()['console']['available'] is True and
              r.json()['time_zone'] == 'Asia/Shanghai' and
              r.json()['console']['languages'] == ['zh-CN', 'en'],
              f'health: console, languages and time zone {r}')
    checks.eq(r.headers.get('Cache-Control'), 'no-store', 'the API stays no-store')

    # Read at start: a rebuild on disk changes nothing until the broker restarts.
    with open(os.path.join(con, 'index.html'), 'wb') as f:
        f.write(b'changed')
    checks.eq(b.get('/').body, INDEX, 'what is served is what was there at start')

missing = os.path.join(tmp, 'not-built')
cfg = os.path.join(tmp, 'c.json')
with open(cfg, 'w') as f:
    json.dump({'console_dir': missing, 'time_zone': 'Asia/Urumqi'}, f)
with Broker(extra_args=['--config', cfg]) as b:
    r = b.get('/')
    e = json_error(r)
    checks.ok(r.status == 503 and e and e['code'] == 'console_missing' and missing in e['message'],
              f'no console: / answers a JSON 503 naming the folder {r}')
    checks.eq(b.get('/assets/app.js').status, 404, 'and its files a 404')
    r = b.get('/v1/whoami', token=b.admin_token)
    checks.eq(r.status, 200, 'the API works without the console')
    r = b.get('/v1/health')
    checks.ok(r.json()['console']['available'] is False and r.json()['time_zone'] ==
              'Asia/Urumqi', 'health says so, and the configured time zone')

shutil.rmtree(tmp, ignore_errors=True)
checks.done()
