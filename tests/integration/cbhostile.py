# SPDX-License-Identifier: Apache-2.0
"""Helpers for the hostile-client tests: the broker's memory sampled from /proc, a normal client
whose success and latency are measured while an attack runs, swarms of slow or idle connections
from many loopback addresses, and large bodies held open.

Loopback only: 127.0.0.0/8 is all local, so each "address" of an attacker is a real source
address (socket.bind) and the broker's per-address accounting sees them apart.
Standard library only."""
import http.client
import json
import math
import os
import re
import resource
import select
import selectors
import socket
import threading
import time


def raise_nofile(want=16384):
    """Raises this process's (and so the broker's) RLIMIT_NOFILE soft limit up to @want."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(hard, want) if hard != resource.RLIM_INFINITY else want
    if soft < new:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mib(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The broker's resident memory, sampled every 50 ms in a thread."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0.0
        self.last = 0.0
        self.stop_ = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        while not self.stop_.is_set():
            try:
                self.last = rss_mib(self.pid)
            except OSError:
                return
            self.peak = max(self.peak, self.last)
            time.sleep(0.05)

    def reset(self):
        self.peak = self.last

    def stop(self):
        self.stop_.set()
        self.th.join(2)


def sanitized(pid):
    """Whether the process runs under AddressSanitizer, whose shadow memory and quarantine of
    freed blocks make its RSS say nothing of the program's own."""
    with open(f'/proc/{pid}/maps') as f:
        return 'libasan' in f.read()


def machine_busy():
    """Whether other work crowds this machine (the 1-minute load above twice its CPUs): then
    a latency says how long the broker waited for a CPU, not what it does, and the tests report
    it without holding the broker to it."""
    load = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    return load > 2 * cpus, f'load {load:.1f} on {cpus} CPUs'


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[max(1, math.ceil(q * len(v))) - 1]


class NormalClient:
    """A well-behaved client on its own address: GET /v1/whoami and a page of departments, one
    after another on a keep-alive connection (reopened when the broker closes it), each
    answer checked. Success is a 200 with the expected JSON within 5 s."""

    def __init__(self, port, token, source='127.0.0.1', pause=0.005):
        self.port, self.token, self.source, self.pause = port, token, source, pause
        self.lock = threading.Lock()
        self.results = []  # (ok, seconds)
        self.errors = {}
        self.stop_ = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def one(self, conn, path):
        conn.request('GET', path, headers={'Authorization': f'Bearer {self.token}'})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            return False, f'status {r.status}'
        doc = json.loads(body.decode())
        if path == '/v1/whoami' and doc.get('role') != 'auditor':
            return False, 'wrong whoami'
        return True, None

    def run(self):
        conn = None
        paths = ['/v1/whoami', '/v1/departments?limit=5']
        i = 0
        while not self.stop_.is_set():
            if conn is None:
                conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=5,
                                                  source_address=(self.source, 0))
            t0 = time.monotonic()
            try:
                ok, why = self.one(conn, paths[i % len(paths)])
            except (OSError, http.client.HTTPException, ValueError) as e:
                ok, why = False, type(e).__name__
                conn.close()
                conn = None
            dt = time.monotonic() - t0
            with self.lock:
                self.results.append((ok, dt))
                if not ok:
                    self.errors[why] = self.errors.get(why, 0) + 1
            i += 1
            time.sleep(self.pause)
        if conn:
            conn.close()

    def reset(self):
        with self.lock:
            self.results = []
            self.errors = {}

    def stats(self):
        with self.lock:
            res = list(self.results)
            errors = dict(self.errors)
        n = len(res)
        ok = sum(1 for r in res if r[0])
        lat = [r[1] for r in res if r[0]]
        return {'requests': n, 'success': ok / n if n else 0.0,
                'p50_ms': (percentile(lat, 0.5) or 0) * 1000,
                'p99_ms': (percentile(lat, 0.99) or 0) * 1000,
                'max_ms': (max(lat) if lat else 0) * 1000, 'errors': errors}

    def stop(self):
        self.stop_.set()
        self.th.join(10)


class Swarm:
    """@n connections kept open from @addrs (round robin), in one thread. 'idle' ones send
    nothing; 'slow' ones send a request head one byte every @interval seconds and never finish
    it. A connection the broker closes is counted (with the status of any answer it sent) and
    opened again, so that the swarm keeps pressing until stopped."""

    HEAD = b'GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ' + b'a' * 4000

    def __init__(self, port, n, addrs, mode, interval=1.0, opens_per_second=2000):
        self.port, self.n, self.addrs, self.mode, self.interval = port, n, addrs, mode, interval
        self.opens_per_second = opens_per_second
        self.sel = selectors.DefaultSelector()
        self.conns = {}  # socket -> [opened, bytes sent, received]
        self.opened = 0
        self.closed_by_server = 0
        self.connect_errors = 0
        self.statuses = {}
        self.lifetimes = []
        self.bodies = []  # error bodies the broker sent to swarm connections
        self.stop_ = threading.Event()
        self.th = None
        self.k = 0

    def open_one(self):
        addr = self.addrs[self.k % len(self.addrs)]
        self.k += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((addr, 0))
            s.connect_ex(('127.0.0.1', self.port))
        except OSError:
            self.connect_errors += 1
            s.close()
            return
        self.conns[s] = [time.monotonic(), 0, b'']
        self.sel.register(s, selectors.EVENT_READ)
        self.opened += 1

    def drop(self, s, by_server):
        rec = self.conns.pop(s)
        self.sel.unregister(s)
        s.close()
        if by_server:
            self.closed_by_server += 1
            self.lifetimes.append(time.monotonic() - rec[0])
            m = re.match(rb'HTTP/1\.1 (\d{3})', rec[2])
            st = int(m.group(1)) if m else None
            self.statuses[st] = self.statuses.get(st, 0) + 1
            if m and len(self.bodies) < 50:
                self.bodies.append(rec[2])

    def run(self):
        next_tick = time.monotonic()
        budget, last = 0.0, time.monotonic()
        while not self.stop_.is_set():
            # keep the count up, at most opens_per_second
            now = time.monotonic()
            budget = min(budget + (now - last) * self.opens_per_second, 200)
            last = now
            for _ in range(min(int(budget), self.n - len(self.conns))):
                self.open_one()
                budget -= 1
            for key, _ in self.sel.select(timeout=0.05):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b''
                if data:
                    self.conns[s][2] += data
                else:
                    self.drop(s, True)
            now = time.monotonic()
            if self.mode == 'slow' and now >= next_tick:
                next_tick = now + self.interval
                for s, rec in list(self.conns.items()):
                    if rec[1] >= len(self.HEAD):
                        continue
                    try:
                        s.send(self.HEAD[rec[1]:rec[1] + 1])
                        rec[1] += 1
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        self.drop(s, True)
        for s in list(self.conns):
            self.drop(s, False)

    def start(self):
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()
        return self

    def stop(self):
        self.stop_.set()
        self.th.join(10)

    def held(self):
        return len(self.conns)


def raw(port, data, source='127.0.0.1', timeout=5, read_until_close=False):
    """Sends @data and reads one answer. Returns (status, headers text, error object or None,
    seconds until the answer, raw bytes)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(('127.0.0.1', port))
    t0 = time.monotonic()
    got = b''
    try:
        try:
            s.sendall(data)
        except OSError:
            pass
        while True:
            try:
                c = s.recv(65536)
            except (socket.timeout, OSError):
                break
            if not c:
                break
            got += c
            head, sep, body = got.partition(b'\r\n\r\n')
            m = re.search(rb'content-length:\s*(\d+)', head, re.I)
            if sep and m and len(body) >= int(m.group(1)) and not read_until_close:
                break
    finally:
        s.close()
    dt = time.monotonic() - t0
    m = re.match(rb'HTTP/1\.1 (\d{3})', got)
    head, _, body = got.partition(b'\r\n\r\n')
    try:
        err = json.loads(body.decode()).get('error')
    except (ValueError, AttributeError, UnicodeDecodeError):
        err = None
    return (int(m.group(1)) if m else None), head.decode('latin-1'), err, dt, got


class BodyHolder:
    """@n connections from @source, each POSTing a @size-byte body to @path and holding it:
    all but its last byte is sent at once, then nothing until the broker answers (503 at
    once when its body budget is spent, 408 when the body deadline passes). Every answer is
    kept; each connection then starts again, until stopped."""

    def __init__(self, port, tokens, n, size, path='/v1/samples', source='127.0.0.3',
                 chunked=False, pause=0.0):
        self.port, self.tokens, self.n, self.size = port, tokens, n, size
        self.path, self.source, self.chunked, self.pause = path, source, chunked, pause
        self.lock = threading.Lock()
        self.answers = {}  # status -> count
        self.codes = {}
        self.retry_after = 0
        self.holding = 0
        self.stop_ = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(n)]

    def note(self, st, head, err):
        with self.lock:
            self.answers[st] = self.answers.get(st, 0) + 1
            code = err.get('code') if err else None
            self.codes[code] = self.codes.get(code, 0) + 1
            if st == 503 and re.search(r'(?im)^retry-after:\s*\d+', head):
                self.retry_after += 1

    def one(self, i):
        token = self.tokens[i % len(self.tokens)]
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.2)
        s.bind((self.source, 0))
        s.connect(('127.0.0.1', self.port))
        got = b''
        held = False
        try:
            head = (f'POST {self.path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n'
                    'Content-Type: application/json\r\n'
                    + ('Transfer-Encoding: chunked\r\n' if self.chunked
                       else f'Content-Length: {self.size}\r\n') + '\r\n').encode()
            s.sendall(head)
            try:
                got = s.recv(65536)  # an answer at once: refused before the body
            except socket.timeout:
                pass
            if not got:
                s.settimeout(30)
                block = b'{"instances":[' + b' ' * (1024 * 1024 - 14)
                sent = 0
                while sent < self.size - 1 and not self.stop_.is_set():
                    n = min(len(block), self.size - 1 - sent)
                    piece = block[:n]
                    if self.chunked:
                        piece = b'%x\r\n' % n + piece + b'\r\n'
                    s.sendall(piece)
                    sent += n
                    block = b' ' * (1024 * 1024)
                    # an answer in the middle of the body (the budget spent on the way)
                    if select.select([s], [], [], self.pause)[0]:
                        break
                with self.lock:
                    self.holding += 1
                held = True
                while not self.stop_.is_set():
                    try:
                        c = s.recv(65536)
                    except socket.timeout:
                        continue
                    if not c:
                        break
                    got += c
                    if b'\r\n\r\n' in got:
                        break
        except OSError:
            pass
        finally:
            if held:
                with self.lock:
                    self.holding -= 1
            s.close()
        if got:
            m = re.match(rb'HTTP/1\.1 (\d{3})', got)
            head, _, body = got.partition(b'\r\n\r\n')
            try:
                err = json.loads(body.decode()).get('error')
            except (ValueError, AttributeError, UnicodeDecodeError):
                err = None
            self.note(int(m.group(1)) if m else None, head.decode('latin-1'), err)

    def run(self, i):
        while not self.stop_.is_set():
            self.one(i)
            time.sleep(0.2)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_.set()
        for t in self.threads:
            t.join(35)


def metrics(broker, token):
    """/metrics as {name or name{labels}: value}."""
    text = broker.get('/metrics', token=token).body.decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            k, _, v = line.rpartition(' ')
            out[k] = float(v)
    return out


def strict_json(data):
    """Parses @data as JSON the way a strict parser does: NaN and Infinity are errors."""
    def no_constants(name):
        raise ValueError(f'{name} is not JSON')
    return json.loads(data, parse_constant=no_constants)
