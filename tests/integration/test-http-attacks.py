#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Black-box attacks on the broker's own HTTP/1.1 server (broker/br-http.c), raw bytes on
loopback: request smuggling forms (Content-Length and Transfer-Encoding together, duplicate or
conflicting lengths, "chunked, identity", obs-fold, bare LF, NUL bytes, chunk sizes that are
too long or overflow, lying chunk sizes, trailers), pipelining with a body left unread,
HTTP/1.0 keep-alive, absolute-form targets, %00 and .. in paths (console files never escape
their folder), very long paths, unicode in headers, Expect: 100-continue, HEAD and OPTIONS, a
TLS handshake sent to the plain port, and connections a client closed just before opening
another (the flake of test-daemon.py's idle connection test).

Every answer is checked as it is parsed off the wire: an error is a JSON error body; the
number of answers is what the requests allow (a smuggled request must never be answered);
after an error that leaves bytes unread the connection ends; and after each attack a fresh
connection is served. The broker must be running at the end, without an error logged.
"""
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402

checks = cbtest.Checks('http-attacks')
tmp = tempfile.mkdtemp(prefix='cb-http-attacks-')


class Wire:
    """One connection: what was sent, the answers parsed off it, and whether it ended."""

    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port), timeout=5)
        self.buf = b''
        self.eof = False

    def send(self, data):
        self.s.sendall(data)

    def _fill(self, deadline):
        if self.eof:
            return False
        self.s.settimeout(max(0.01, deadline - time.time()))
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            d = b''
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def answer(self, head_request=False, timeout=3.0):
        """The next answer (status, headers with lower-case names, body), or None."""
        deadline = time.time() + timeout
        while b'\r\n\r\n' not in self.buf:
            if not self._fill(deadline):
                return None
        head, self.buf = self.buf.split(b'\r\n\r\n', 1)
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split(' ')[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(':', 1)
            headers[k.strip().lower()] = v.strip()
        n = 0 if head_request or status in (100, 204, 304) else int(headers.get('content-length', '0'))
        while len(self.buf) < n:
            if not self._fill(deadline):
                return (status, headers, None)  # cut short
        body, self.buf = self.buf[:n], self.buf[n:]
        return (status, headers, body)

    def ended(self, timeout=2.5):
        """Whether the server ends the connection (with nothing more said) within @timeout."""
        deadline = time.time() + timeout
        while not self.eof and time.time() < deadline:
            self._fill(deadline)
        return self.eof and not self.buf

    def quiet(self, timeout=0.4):
        """Whether nothing more arrives for @timeout (the connection may stay open)."""
        deadline = time.time() + timeout
        while time.time() < deadline and not self.eof:
            self._fill(deadline)
        return not self.buf

    def close(self):
        self.s.close()


def is_json_error(ans, code=None):
    status, headers, body = ans
    if body is None or 'application/json' not in headers.get('content-type', ''):
        return False
    try:
        e = json.loads(body)['error']
    except (ValueError, KeyError, TypeError):
        return False
    return all(k in e for k in ('code', 'message', 'field', 'request_id')) and \
        (code is None or e['code'] == code)


def healthy(b, what):
    """A fresh connection is served after @what."""
    try:
        r = b.get('/v1/health', timeout=5)
        ok = r.status == 200
    except OSError as e:
        ok = False
        r = e
    checks.ok(ok and b.proc.poll() is None, f'{what}: a fresh connection is served ({r})')


def refused(b, name, data, status, code=None, ends=True):
    """@data gets one JSON error of @status (and @code), nothing more, and (when @ends) the
    connection ends: no request hidden in it is answered."""
    w = Wire(b.port)
    w.send(data)
    a = w.answer()
    checks.ok(a is not None and a[0] == status and is_json_error(a, code),
              f'{name}: {status} {code or ""} with a JSON error body: '
              f'{a[0] if a else None} {a[2][:160] if a and a[2] else a}')
    if ends:
        checks.ok(w.ended(), f'{name}: the connection ends after the refusal, nothing else said '
                             f'({w.buf[:80]!r})')
    else:
        checks.ok(w.quiet(), f'{name}: nothing more is said ({w.buf[:80]!r})')
    w.close()
    healthy(b, name)


def host(b):
    return f'Host: 127.0.0.1:{b.port}\r\n'.encode()


SMUGGLED = b'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n'

# ---- a console folder with a secret beside it ----
con = os.path.join(tmp, 'console')
os.makedirs(os.path.join(con, 'assets'))
with open(os.path.join(con, 'index.html'), 'w') as f:
    f.write('<!doctype html><title>console</title>')
with open(os.path.join(con, 'assets', 'app-0123abcd.js'), 'w') as f:
    f.write('console.log(1)')
SECRET = 'SECRET-OUTSIDE-THE-CONSOLE'
with open(os.path.join(tmp, 'secret.txt'), 'w') as f:
    f.write(SECRET)
os.symlink(os.path.join(tmp, 'secret.txt'), os.path.join(con, 'link.txt'))
os.symlink(tmp, os.path.join(con, 'up'))

cfg = os.path.join(tmp, 'config.json')
with open(cfg, 'w') as f:
    json.dump({'limits': {'header_bytes': 8192, 'connections_per_ip': 64}}, f)

t_start = time.time()
with cbtest.Broker(extra_args=['--config', cfg, '--console-dir', con]) as b:
    tok = b.admin_token
    auth = f'Authorization: Bearer {tok}\r\n'.encode()
    H = host(b)

    # --- Content-Length and Transfer-Encoding ---
    body = b'0\r\n\r\n' + SMUGGLED
    refused(b, 'Content-Length beside Transfer-Encoding',
            b'POST /v1/departments HTTP/1.1\r\n' + H + auth +
            b'Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n' % len(body) + body,
            400, 'malformed_request')
    refused(b, 'Transfer-Encoding before Content-Length',
            b'POST /v1/departments HTTP/1.1\r\n' + H + auth +
            b'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n' + body, 400,
            'malformed_request')
    refused(b, 'Content-Length twice, the same',
            b'POST /v1/departments HTTP/1.1\r\n' + H + auth +
            b'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}' + SMUGGLED, 400,
            'malformed_request')
    refused(b, 'Content-Length twice, different',
            b'POST /v1/departments HTTP/1.1\r\n' + H + auth +
            b'Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}' + SMUGGLED, 400,
            'malformed_request')
    for v in (b'2, 2', b'+2', b'0x2', b'2 2', b'-1', b'99999999999999999999999'):
        refused(b, f'Content-Length: {v.decode()}',
                b'POST /v1/departments HTTP/1.1\r\n' + H + auth + b'Content-Length: ' + v +
                b'\r\n\r\n{}' + SMUGGLED, 400)
    refused(b, 'Transfer-Encoding: chunked, identity',
            b'POST /v1/departments HTTP/1.1\r\n' + H + auth +
            b'Transfer-Encoding: chunked, identity\r\n\r\n' + body, 501)
    refused(b, 'Transfer-Encoding: identity',
            b'POST /v1/departments HTTP/1.1\r\n' + H + auth +
            b'Transfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}', 400)
    refused(b, 'Transfer-Encoding twice',
            b'POST /v1/departments HTTP/1.1\r\n' + H + auth +
            b'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n' + body, 400)
    refused(b, 'a space before the colon',
            b'POST /v1/departments HTTP/1.1\r\n' + H + auth +
            b'Transfer-Encoding : chunked\r\n\r\n' + body, 400, 'malformed_request')
    refused(b, 'obs-fold of Transfer-Encoding',
            b'POST /v1/departments HTTP/1.1\r\n' + H + auth +
            b'Transfer-Encoding:\r\n chunked\r\n\r\n' + body, 400, 'malformed_request')
    refused(b, 'obs-fold', b'GET /v1/health HTTP/1.1\r\n' + H + b'X-A: 1\r\n\tfolded\r\n\r\n',
            400, 'malformed_request')
    refused(b, 'bare LF line ends', b'GET /v1/health HTTP/1.1\n' + H.rstrip(b'\r\n') +
            b'\n\n' + SMUGGLED, 400, 'malformed_request')
    refused(b, 'a bare CR', b'GET /v1/health HTTP/1.1\r\nX: a\rb\r\n' + H + b'\r\n', 400)
    refused(b, 'a NUL byte in a header', b'GET /v1/health HTTP/1.1\r\n' + H +
            b'X-A: a\x00b\r\n\r\n', 400, 'malformed_request')
    refused(b, 'a NUL byte in the path', b'GET /v1/health\x00x HTTP/1.1\r\n' + H + b'\r\n', 400)
    refused(b, 'Host twice', b'GET /v1/health HTTP/1.1\r\n' + H + H + b'\r\n', 400)
    refused(b, 'no Host', b'GET /v1/health HTTP/1.1\r\n\r\n', 400)
    refused(b, 'HTTP/2 preface', b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505)
    refused(b, 'a request line with a fourth part', b'GET /v1/health HTTP/1.1 x\r\n' + H +
            b'\r\n', 400)

    # --- chunked bodies ---
    def chunked(name, chunks, status, code=None):
        refused(b, name, b'POST /v1/departments HTTP/1.1\r\n' + H + auth +
                b'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' + chunks +
                SMUGGLED, status, code)

    chunked('a chunk size of 19 digits', b'0000000000000000002\r\n{}\r\n0\r\n\r\n', 400,
            'malformed_chunk')
    chunked('a chunk size past 2^64', b'1ffffffffffffffff\r\n{}\r\n0\r\n\r\n', 400,
            'malformed_chunk')
    chunked('a chunk size of 2^60 (past the limit)', b'fffffffffffffff\r\n{}\r\n0\r\n\r\n', 413)
    chunked('a chunk longer than its size', b'1\r\n{}\r\n0\r\n\r\n', 400, 'malformed_chunk')
    chunked('a negative chunk size', b'-2\r\n{}\r\n0\r\n\r\n', 400, 'malformed_chunk')
    chunked('a chunk size with 0x', b'0x2\r\n{}\r\n0\r\n\r\n', 400, 'malformed_chunk')
    chunked('a bare LF after a chunk size', b'2\n{}\r\n0\r\n\r\n', 400, 'malformed_chunk')
    chunked('a chunk extension of 300 bytes', b'2;' + b'x' * 300 + b'\r\n{}\r\n0\r\n\r\n', 400,
            'malformed_chunk')
    chunked('a control byte in a chunk extension', b'2;a=\x01\r\n{}\r\n0\r\n\r\n', 400,
            'malformed_chunk')
    chunked('a trailer section of 5000 bytes', b'2\r\n{}\r\n0\r\nX: ' + b'a' * 5000 +
            b'\r\n\r\n', 400, 'malformed_chunk')

    # A chunked body with extensions and trailers is read whole; the next request on the
    # connection is answered after it, and only once.
    doc = json.dumps({'code': 'chunked', 'name': 'Chunked Body'}).encode()
    w = Wire(b.port)
    w.send(b'POST /v1/departments HTTP/1.1\r\n' + H + auth +
           b'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' +
           b'5;ext=1\r\n' + doc[:5] + b'\r\n' + b'%x\r\n' % (len(doc) - 5) + doc[5:] +
           b'\r\n0\r\nX-Trailer: t\r\nContent-Length: 99\r\n\r\n' + SMUGGLED)
    a1, a2 = w.answer(), w.answer()
    checks.ok(a1 and a1[0] == 201 and json.loads(a1[2])['code'] == 'chunked',
              f'chunked body with an extension and trailers read: {a1}')
    checks.ok(a2 and a2[0] == 200 and json.loads(a2[2])['status'] == 'ok',
              f'the request after it answered (a trailer is no header): {a2}')
    checks.ok(w.quiet(), 'and nothing more')
    w.close()

    # --- pipelining ---
    # A body the broker refuses to read (no token): one answer, then the connection ends;
    # the request inside the unread body is never answered.
    inner = b'POST /v1/departments HTTP/1.1\r\n' + H + auth + \
        b'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(doc) + doc
    refused(b, 'a body left unread holding a request',
            b'POST /v1/departments HTTP/1.1\r\n' + H +
            b'Content-Length: %d\r\n\r\n' % len(inner) + inner, 401, 'unauthenticated')
    r = b.get('/v1/departments', token=tok)
    checks.ok(sum(d['code'] == 'chunked' for d in r.json()['items']) == 1,
              'the request hidden in the unread body made nothing')
    # A body read whole and refused by the handler: the connection goes on.
    w = Wire(b.port)
    w.send(b'POST /v1/departments HTTP/1.1\r\n' + H + auth +
           b'Content-Type: application/json\r\nContent-Length: 5\r\n\r\n{"a":' +
           b'GET /v1/health HTTP/1.1\r\n' + H + b'\r\n' +
           b'HEAD /v1/health HTTP/1.1\r\n' + H + b'\r\n' +
           b'GET /v1/health HTTP/1.1\r\n' + H + b'\r\n')
    a1 = w.answer()
    a2 = w.answer()
    a3 = w.answer(head_request=True)
    a4 = w.answer()
    checks.ok(a1 and a1[0] == 400 and is_json_error(a1, 'malformed_json'),
              f'pipelined: the malformed body refused: {a1}')
    checks.ok(a2 and a2[0] == 200 and a4 and a4[0] == 200,
              f'pipelined: the requests after it answered in order: {a2} {a4}')
    checks.ok(a3 and a3[0] == 200 and a3[1].get('content-length') == a2[1].get('content-length'),
              f'HEAD: the length of GET and no body (the next answer parsed whole): {a3}')
    checks.ok(w.quiet(), 'pipelined: nothing more')
    w.close()

    # --- HTTP/1.0 ---
    w = Wire(b.port)
    w.send(b'GET /v1/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /v1/health HTTP/1.0\r\n\r\n')
    a = w.answer()
    checks.ok(a and a[0] == 200 and a[1].get('connection') == 'close',
              f'HTTP/1.0 keep-alive: answered with Connection: close: {a}')
    checks.ok(w.ended(), 'HTTP/1.0: the connection ends after the answer, as it says')
    w.close()
    w = Wire(b.port)
    w.send(b'GET /v1/health HTTP/1.1\r\n' + H + b'Connection: close\r\n\r\n' + SMUGGLED)
    a = w.answer()
    checks.ok(a and a[0] == 200 and w.ended(), 'Connection: close is kept, the rest unread')
    w.close()

    # --- targets and paths ---
    w = Wire(b.port)
    w.send(b'GET http://127.0.0.1:%d/v1/health HTTP/1.1\r\n' % b.port + H + b'\r\n')
    a = w.answer()
    checks.ok(a and a[0] == 200, f'absolute-form target naming the Host: {a}')
    w.close()
    refused(b, 'absolute-form naming another host',
            b'GET http://evil.example/v1/health HTTP/1.1\r\n' + H + b'\r\n', 400,
            'malformed_request')
    refused(b, 'authority-form', b'CONNECT 127.0.0.1:22 HTTP/1.1\r\n' + H + b'\r\n', 400)

    def not_served(name, path):
        w = Wire(b.port)
        w.send(b'GET ' + path + b' HTTP/1.1\r\n' + H + b'\r\n')
        a = w.answer()
        ok = a and a[0] in (400, 404) and is_json_error(a) and SECRET.encode() not in (a[2] or b'')
        checks.ok(ok, f'{name} ({path.decode()}): a JSON 404/400, not the file: {a}')
        w.close()

    for p in (b'/../secret.txt', b'/%2e%2e/secret.txt', b'/assets/../../secret.txt',
              b'/assets/%2e%2e%2f%2e%2e%2fsecret.txt', b'/assets/..%2f..%2fsecret.txt',
              b'/%2e%2e%5csecret.txt', b'/link.txt', b'/up/secret.txt', b'/index.html%00.js',
              b'/index.html%00', b'/v1/departments/1%00', b'/v1/health%00', b'/./index.html',
              b'//index.html', b'/assets/./app-0123abcd.js'):
        not_served('outside the console folder or not a name', p)
    r = b.get('/assets/app-0123abcd.js')
    checks.ok(r.status == 200 and r.body == b'console.log(1)', f'a console file is served: {r}')
    r = b.request('HEAD', '/')
    checks.ok(r.status == 200 and r.body == b'' and 'text/html' in r.headers.get('Content-Type', ''),
              f'HEAD / answers as GET / without the body: {r}')
    refused(b, 'a path of 20,000 bytes', b'GET /' + b'a' * 20000 + b' HTTP/1.1\r\n' + H + b'\r\n',
            414)
    refused(b, 'headers of 9,000 bytes', b'GET /v1/health HTTP/1.1\r\n' + H + b'X: ' +
            b'a' * 9000 + b'\r\n\r\n', 431)
    refused(b, '101 header fields', b'GET /v1/health HTTP/1.1\r\n' + H +
            b''.join(b'X-%d: 1\r\n' % i for i in range(101)) + b'\r\n', 431)
    refused(b, '300 query parameters', b'GET /v1/departments?' +
            b'&'.join(b'a%d=1' % i for i in range(300)) + b' HTTP/1.1\r\n' + H + b'\r\n', 414,
            'too_many_parameters', ends=True)
    w = Wire(b.port)
    w.send(b'GET /' + b'a' * 4000 + b' HTTP/1.1\r\n' + H + b'\r\n')
    a = w.answer()
    checks.ok(a and a[0] == 404 and is_json_error(a, 'not_found'), f'a long path is a 404: {a}')
    w.close()

    # --- unicode in headers ---
    w = Wire(b.port)
    w.send(b'GET /v1/whoami HTTP/1.1\r\n' + H + auth + 'X-Name: 民政局 ü\r\n'.encode() +
           b'X-Request-Id: \xe6\xb0\x91\r\n\r\n')
    a = w.answer()
    checks.ok(a and a[0] == 200 and a[1].get('x-request-id', '').isascii(),
              f'UTF-8 in header values is carried, not echoed raw: {a}')
    w.close()
    refused(b, 'UTF-8 in a header name', b'GET /v1/health HTTP/1.1\r\n' + H +
            'Näme: x\r\n'.encode() + b'\r\n', 400, 'malformed_request')
    w = Wire(b.port)
    w.send(b'GET /v1/departments/%E6%B0%91 HTTP/1.1\r\n' + H + auth + b'\r\n')
    a = w.answer()
    checks.ok(a and a[0] == 404 and is_json_error(a), f'UTF-8 in the path: a JSON 404: {a}')
    w.close()

    # --- Expect: 100-continue ---
    doc = json.dumps({'code': 'expect', 'name': 'Expect'}).encode()
    w = Wire(b.port)
    w.send(b'POST /v1/departments HTTP/1.1\r\n' + H + auth + b'Content-Type: application/json\r\n'
           b'Expect: 100-continue\r\nContent-Length: %d\r\n\r\n' % len(doc))
    a = w.answer()
    checks.ok(a and a[0] == 100, f'Expect: 100-continue gets 100 Continue: {a}')
    w.send(doc + SMUGGLED)
    a, a2 = w.answer(), w.answer()
    checks.ok(a and a[0] == 201 and a2 and a2[0] == 200, f'then the answer and the next: {a} {a2}')
    w.close()
    w = Wire(b.port)
    w.send(b'POST /v1/departments HTTP/1.1\r\n' + H + b'Content-Type: application/json\r\n'
           b'Expect: 100-continue\r\nContent-Length: %d\r\n\r\n' % len(doc))
    a = w.answer()
    checks.ok(a and a[0] == 401 and is_json_error(a), f'without a token: 401 at once, no 100: {a}')
    checks.ok(w.ended(), 'and the connection ends (the body is not wanted)')
    w.close()
    refused(b, 'Expect: something else', b'GET /v1/health HTTP/1.1\r\n' + H +
            b'Expect: 200-ok\r\n\r\n', 400)

    # --- HEAD and OPTIONS ---
    w = Wire(b.port)
    w.send(b'HEAD /v1/health HTTP/1.1\r\n' + H + b'\r\n' + b'HEAD /nothing HTTP/1.1\r\n' + H +
           b'\r\n' + b'OPTIONS /v1/departments HTTP/1.1\r\n' + H + b'\r\n' +
           b'OPTIONS * HTTP/1.1\r\n' + H + b'\r\n' + b'DELETE /v1/health HTTP/1.1\r\n' + H +
           b'\r\n' + SMUGGLED)
    a1 = w.answer(head_request=True)
    a2 = w.answer(head_request=True)
    a3, a4, a5, a6 = w.answer(), w.answer(), w.answer(), w.answer()
    checks.ok(a1 and a1[0] == 200 and int(a1[1]['content-length']) > 0, f'HEAD /v1/health: {a1}')
    checks.ok(a2 and a2[0] == 404, f'HEAD of nothing: 404 without a body: {a2}')
    allow = set(x.strip() for x in (a3[1].get('allow', '') if a3 else '').split(','))
    checks.ok(a3 and a3[0] == 204 and {'GET', 'HEAD', 'POST', 'OPTIONS'} <= allow and
              'content-length' not in a3[1], f'OPTIONS /v1/departments: 204 with Allow: {a3}')
    checks.ok(a4 and a4[0] == 204 and 'DELETE' in a4[1].get('allow', ''), f'OPTIONS *: {a4}')
    checks.ok(a5 and a5[0] == 405 and is_json_error(a5) and 'HEAD' in a5[1].get('allow', ''),
              f'DELETE /v1/health: 405 with Allow: {a5}')
    checks.ok(a6 and a6[0] == 200, f'and the request after them all: {a6}')
    checks.ok(w.quiet(), 'HEAD and OPTIONS: nothing more (no body after a HEAD answer)')
    w.close()

    # --- TLS to the plain port ---
    hello = bytes.fromhex('160301') + b'\x00\xa5\x01\x00\x00\xa1\x03\x03' + os.urandom(32)
    t0 = time.time()
    refused(b, 'a TLS ClientHello to the plain port', hello, 400, 'malformed_request')
    checks.ok(time.time() - t0 < 2, f'answered at once ({time.time() - t0:.2f} s)')
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t0 = time.time()
    try:
        with socket.create_connection(('127.0.0.1', b.port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as s:
                s.sendall(b'GET / HTTP/1.1\r\n\r\n')
        tls = 'handshake succeeded'
    except (ssl.SSLError, OSError) as e:
        tls = type(e).__name__
    checks.ok(tls != 'handshake succeeded' and time.time() - t0 < 3,
              f'an HTTPS client fails at once on the plain port: {tls} in {time.time() - t0:.2f} s')
    healthy(b, 'the TLS probes')

    # --- a slow head is answered, then the connection ends ---
    checks.eq(b.proc.poll(), None, 'the broker runs after every attack')
    with open(b.log_path) as f:
        errors = [l for l in f if ' error: ' in l]
    checks.ok(not errors, f'no error logged: {errors[:3]}')

# --- connections closed just before another is opened (test-daemon.py's flake) ---
# The broker is stopped while the client opens a fifth connection and closes the four it had:
# when it runs again, the listening socket's event comes before the four ends. The newcomer
# must not be refused for connections that are gone.
with open(cfg, 'w') as f:
    json.dump({'limits': {'connections_per_ip': 4, 'timeout_seconds': 3}}, f)
with cbtest.Broker(extra_args=['--config', cfg]) as b:
    for attempt in range(3):
        socks = [socket.create_connection(('127.0.0.1', b.port), timeout=5) for _ in range(4)]
        time.sleep(0.3)  # accepted
        b.proc.send_signal(signal.SIGSTOP)
        try:
            fifth = socket.create_connection(('127.0.0.1', b.port), timeout=5)
            for s in socks:
                s.close()
        finally:
            b.proc.send_signal(signal.SIGCONT)
        fifth.sendall(b'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n')
        w = Wire.__new__(Wire)
        w.s, w.buf, w.eof = fifth, b'', False
        a = w.answer()
        checks.ok(a and a[0] == 200, f'attempt {attempt + 1}: a connection opened as the four '
                                     f'others closed is served, not refused: {a}')
        # and an idle connection is then closed after timeout_seconds
        idle = socket.create_connection(('127.0.0.1', b.port), timeout=10)
        t0 = time.time()
        try:
            gone = idle.recv(10)
        except (ConnectionResetError, socket.timeout):
            gone = b'<timeout>'
        checks.ok(gone == b'' and time.time() - t0 < 5,
                  f'attempt {attempt + 1}: idle connection closed after 3 s: {gone!r} '
                  f'in {time.time() - t0:.1f} s')
        idle.close()
        fifth.close()
        time.sleep(0.3)

print(f'http-attacks: {time.time() - t_start:.1f} s')
shutil.rmtree(tmp, ignore_errors=True)
checks.done()
