#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Hostile clients against the real broker on loopback, one case after another, each while a
normal client (its own address, keep-alive, GET /v1/whoami and a page of departments) works and
the broker's resident memory is read from /proc. For every case the test prints the normal
client's requests, success rate and p99 latency and the broker's peak RSS, and asserts success
>= 99 % and p99 < 100 ms, and RSS under the body budget + 100 MiB. (The p99 is reported but not
held to the bound while other work crowds the machine, its load above twice its CPUs: it then
measures the wait for a CPU. Under AddressSanitizer the bound is three times wider and the RSS
is not checked.)

The cases (issue 9, "Hostile clients"):
- slowloris and idle connections from many addresses, above the connection limit: closed at the
  head deadline (408 with the JSON error) or as idle; the normal client keeps its fair share;
- the per-address limit, and a trusted proxy (exempt from it, its X-Forwarded-For believed;
  nobody else's);
- large bodies held open (Content-Length and chunked): refused at once with 503, Retry-After and
  the JSON error when the body budget is spent;
- 250+ query parameters: 414 at once; a long chunk extension and every other broken request:
  the JSON error body with code and field, never a library's HTML, checked on raw sockets;
- numbers past the schema's maxima (Infinity among them) refused; a day of windows at the
  maxima summed without overflow, and every usage answer strict JSON;
- windows of different durations overlapping a stored one refused one by one, counted;
- an agent flooding windows of unowned domains: capped per host and 5-minute slot, counted;
- every audit record deleted with sqlite_sequence: GET /v1/audit/verify fails on the anchor.
"""
import json
import math
import os
import re
import select
import socket
import sqlite3
import stat
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbhostile  # noqa: E402
import cbtest  # noqa: E402
import cbworld  # noqa: E402
from cbhostile import BodyHolder, NormalClient, RssSampler, Swarm  # noqa: E402

HEAD_TIMEOUT = 3
IDLE_TIMEOUT = 5
BODY_TIMEOUT = 5
BUDGET_MIB = 64             # limits.body_budget_bytes here (test-hostile-load.py: the default)
SAMPLES_MAX = 32 * 1024 * 1024
UNOWNED_CAP = 8
P99_MS = 100                # the normal client's p99 while an attack runs
PROXY = '127.0.0.7'
UNTRUSTED = '127.0.0.8'
MEM_MAX = 134217728         # schemas/samples.json: MiB
BYTES_MAX = 2 ** 49
COUNT_MAX = 2 ** 40


class World:
    """The broker, its accounts, eight hosts with their agents' tokens and two instances."""

    def __init__(self, ck):
        self.ck = ck
        self.b = cbtest.Broker(policy_edits={
            'metering.json': {'max_unowned_per_window': UNOWNED_CAP},
            'lifecycle.json': {'reconcile_seconds': 86400}})
        self.cfg = os.path.join(self.b.state_dir, 'broker.json')
        with open(self.cfg, 'w') as f:
            json.dump({'trusted_proxies': [PROXY],
                       'limits': {'connections': 1024,
                                  'body_budget_bytes': BUDGET_MIB * 2 ** 20,
                                  'head_timeout_seconds': HEAD_TIMEOUT,
                                  'timeout_seconds': IDLE_TIMEOUT,
                                  'body_timeout_seconds': BODY_TIMEOUT}}, f)
        self.b.extra_args += ['--config', self.cfg]
        b = self.b.start()
        self.admin = b.admin_token
        dept = b.make_department('hostile', 'Hostile clients')
        _, self.dept_token = b.make_account('staff', 'department', dept)
        _, self.auditor = b.make_account('auditor', 'auditor')
        _, self.vendor = b.make_account('vendor', 'vendor')
        system = cbtest.make_system(b, self.dept_token, 'oa')
        request_id = cbtest.make_request(b, self.dept_token, system)
        self.hosts, self.agents = [], []
        for i in range(8):
            uri = cbworld.node_xml(os.path.join(b.state_dir, f'h{i}.xml'), 16384,
                                   pool=f'h{i}-pool', base=False)
            r = b.post('/v1/hosts', {'name': f'h{i}', 'uri': uri, 'pool': 'production',
                                     'storage_pool': f'h{i}-pool'}, token=self.vendor)
            assert r.status == 201, r
            self.hosts.append(r.json()['id'])
            self.agents.append(r.json()['agent_token'])
        # Instance rows come only from provisioning on a real hypervisor: written here while
        # the broker is stopped (as test-metering-ingest does).
        b.stop()
        now = time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime())
        con = sqlite3.connect(b.db_path)
        with con:
            self.alloc = con.execute(
                "INSERT INTO allocations(department_id, system_id, request_id, state, purpose,"
                " vcpus, memory_mib, disk_gib, instances, created_at, updated_at)"
                " VALUES (?, ?, ?, 'active', 'production', 4, 2048, 2, 2, ?, ?)",
                (dept, system, request_id, now, now)).lastrowid
            self.inst = []
            for idx in range(2):
                u = str(uuid.uuid4())
                iid = con.execute(
                    "INSERT INTO instances(allocation_id, idx, name, uuid, host_id, vcpus,"
                    " memory_mib, disk_gib, max_vcpus, max_memory_mib, image, pool, volume,"
                    " state, created_at, updated_at)"
                    " VALUES (?,?,?,?,?,2,1024,1,2,1024,'halt','h0-pool',?,'running',?,?)",
                    (self.alloc, idx, f'cb-{self.alloc}-{idx}', u, self.hosts[0],
                     f'cb-{self.alloc}-{idx}.raw', now, now)).lastrowid
                self.inst.append({'id': iid, 'uuid': u})
        con.close()
        b.start()

    def metrics(self):
        return cbhostile.metrics(self.b, self.admin)


def window(inst, start, duration=300, **extra):
    w = {'instance': inst['id'], 'uuid': inst['uuid'], 'start': start, 'duration': duration,
         'readings': duration // 10, 'expected': duration // 10, 'vcpus': 2,
         'memory_mib': 1024, 'cpu_cores_avg': 0.5, 'cpu_cores_max': 1.0,
         'memory_used_mib_avg': 300.0, 'memory_used_mib_max': 400.0, 'memory_source': 'rss'}
    w.update(extra)
    return w


class Cases:
    def __init__(self, ck, w):
        # Under AddressSanitizer (build-asan) the RSS bound is not checked: ASan's shadow memory
        # and its quarantine of freed blocks (256 MiB) are not the broker's; and the broker is
        # about three times slower, so is the latency bound.
        self.ck, self.w, self.b = ck, w, w.b
        self.rss = RssSampler(self.b.proc.pid)
        self.asan = cbhostile.sanitized(self.b.proc.pid)
        self.client = NormalClient(self.b.port, w.auditor)
        self.figures = []

    def measured(self, name, fn, p99_ms=P99_MS):
        """Runs one case while the normal client works; checks and prints what it met. A case
        whose own work is costly on the test machine's CPUs (a day of windows ingested and
        rolled up, answers of 4.5 MiB built) is given a larger @p99_ms."""
        time.sleep(0.3)
        self.client.reset()
        self.rss.reset()
        busy, load = cbhostile.machine_busy()
        t0 = time.monotonic()
        fn()
        dt = time.monotonic() - t0
        if dt < 1.5:
            time.sleep(1.5 - dt)  # long enough for the normal client to say something
        s = self.client.stats()
        fig = (f'{name}: {dt:.1f} s; normal client {s["requests"]} requests, '
               f'{s["success"] * 100:.2f} % ok, p50 {s["p50_ms"]:.1f} ms, '
               f'p99 {s["p99_ms"]:.1f} ms, max {s["max_ms"]:.1f} ms; '
               f'broker RSS peak {self.rss.peak:.0f} MiB')
        print(fig, flush=True)
        self.figures.append(fig)
        ck = self.ck
        ck.ok(s['requests'] >= 20, f'{name}: the normal client was served ({s["requests"]})')
        ck.ok(s['success'] >= 0.99, f'{name}: normal client success {s["success"]:.4f} >= 0.99 '
              f'(errors {s["errors"]})')
        busy_after, load_after = cbhostile.machine_busy()
        if busy or busy_after:
            print(f'  {name}: p99 not held to {p99_ms} ms: the machine is busy with other work '
                  f'({load}, then {load_after})', flush=True)
        else:
            ck.ok(s['p99_ms'] < p99_ms * (3 if self.asan else 1),
                  f'{name}: normal client p99 {s["p99_ms"]:.1f} ms < {p99_ms} ms'
                  + (' (x 3 under AddressSanitizer)' if self.asan else ''))
        ck.ok(self.rss.peak < BUDGET_MIB + 100 or self.asan,
              f'{name}: broker RSS {self.rss.peak:.0f} MiB < body budget + 100 MiB')

    # ---- connections ----

    def slow_and_idle(self):
        ck, w = self.ck, self.w
        before = w.metrics()
        slow = Swarm(self.b.port, 600, [f'127.0.0.{i}' for i in range(10, 22)], 'slow').start()
        idle = Swarm(self.b.port, 600, [f'127.0.0.{i}' for i in range(30, 42)], 'idle').start()
        time.sleep(HEAD_TIMEOUT + IDLE_TIMEOUT + 1)
        slow.stop()
        idle.stop()
        after = w.metrics()
        ck.ok(slow.closed_by_server >= 300 and slow.lifetimes and
              max(slow.lifetimes) < HEAD_TIMEOUT + 2,
              f'slow heads are cut at the {HEAD_TIMEOUT} s head deadline, however slowly '
              f'their bytes come ({slow.closed_by_server} closed, longest '
              f'{max(slow.lifetimes or [0]):.1f} s)')
        ck.ok(slow.statuses.get(408, 0) > 0, f'a slow head is answered 408 ({slow.statuses})')
        for body in slow.bodies[:5]:
            e = json.loads(body.partition(b'\r\n\r\n')[2]).get('error', {}) \
                if body.startswith(b'HTTP/1.1 408') else None
            if e is not None:
                ck.ok(e.get('code') == 'timeout' and 'field' in e,
                      f'408 with the JSON error ({e})')
        ck.ok(idle.closed_by_server >= 300 and max(idle.lifetimes or [99]) < IDLE_TIMEOUT + 2,
              f'idle connections are closed ({idle.closed_by_server}, longest '
              f'{max(idle.lifetimes or [0]):.1f} s)')
        held = after['cloudbroker_http_connections_total{outcome="evicted"}'] - \
            before['cloudbroker_http_connections_total{outcome="evicted"}'] + \
            after['cloudbroker_http_connections_total{outcome="refused"}'] - \
            before['cloudbroker_http_connections_total{outcome="refused"}']
        ck.ok(held > 0, f'1,200 connections against a limit of 1,024: some refused or evicted '
              f'({held:.0f}), the normal client not among them')
        ck.ok(after['cloudbroker_http_connections_total{outcome="timed_out"}'] >
              before['cloudbroker_http_connections_total{outcome="timed_out"}'],
              'timeouts counted in /metrics')

    def per_address_and_proxy(self):
        ck, b = self.ck, self.b

        def hold(source, n):
            socks, refused = [], 0
            for _ in range(n):
                s = socket.socket()
                s.bind((source, 0))
                s.connect(('127.0.0.1', b.port))
                socks.append(s)
            time.sleep(0.5)
            for s in socks:
                s.setblocking(False)
                try:
                    data = s.recv(4096)
                    if data.startswith(b'HTTP/1.1 503') or not data:
                        refused += 1
                        if data:
                            e = json.loads(data.partition(b'\r\n\r\n')[2])['error']
                            ck.ok(e['code'] == 'too_many_connections' and 'field' in e,
                                  'a connection over the limit gets the JSON error')
                except BlockingIOError:
                    pass
                except OSError:
                    refused += 1
            return socks, refused

        socks, refused = hold(UNTRUSTED, 300)
        ck.ok(refused >= 300 - 256, f'an untrusted address: connections past 256 refused '
              f'({refused} of 300)')
        for s in socks:
            s.close()
        socks, refused = hold(PROXY, 300)
        ck.ok(refused == 0, f'a trusted proxy holds 300 connections: none refused ({refused})')
        for s in socks:
            s.close()
        # Whose address the audit trail records.
        cases = [(PROXY, '198.51.100.23', '198.51.100.23'),
                 (PROXY, '192.0.2.1, 198.51.100.24, ' + PROXY, '198.51.100.24'),
                 (PROXY, 'not-an-address', PROXY),
                 (UNTRUSTED, '198.51.100.25', UNTRUSTED)]
        for i, (source, xff, want) in enumerate(cases):
            body = json.dumps({'code': f'proxy-{i}', 'name': 'Proxy'}).encode()
            st, _, _, _, raw = cbhostile.raw(
                b.port, (f'POST /v1/departments HTTP/1.1\r\nHost: x\r\n'
                         f'Authorization: Bearer {self.w.admin}\r\n'
                         f'Content-Type: application/json\r\nX-Forwarded-For: {xff}\r\n'
                         f'Content-Length: {len(body)}\r\n\r\n').encode() + body,
                source=source)
            ck.eq(st, 201, f'department created through {source}')
            r = b.get('/v1/audit?action=department.create&limit=1000', token=self.w.auditor)
            rec = [x for x in r.json()['items'] if x['detail'].get('code') == f'proxy-{i}']
            ck.ok(rec and rec[0]['client'] == want,
                  f'from {source} with X-Forwarded-For "{xff}": the client is {want} '
                  f'({rec[0]["client"] if rec else None})')

    # ---- bodies ----

    def large_bodies(self):
        ck, w = self.ck, self.w
        holder = BodyHolder(self.b.port, w.agents, 50, SAMPLES_MAX).start()
        peak_held = 0
        t_end = time.monotonic() + 2 * BODY_TIMEOUT + 1
        while time.monotonic() < t_end:
            m = w.metrics()
            peak_held = max(peak_held, m['cloudbroker_http_body_bytes_held'])
            time.sleep(0.5)
        holder.stop()
        print(f'  large bodies: answers {holder.answers}, codes {holder.codes}, '
              f'body bytes held at most {peak_held / 2**20:.0f} MiB', flush=True)
        ck.ok(holder.answers.get(503, 0) > 0 and holder.codes.get('body_budget', 0) > 0,
              f'bodies past the budget: 503 body_budget ({holder.answers})')
        ck.eq(holder.retry_after, holder.answers.get(503, 0), 'every 503 carries Retry-After')
        ck.ok(holder.answers.get(408, 0) > 0, f'a body held past its deadline: 408 '
              f'({holder.answers})')
        ck.ok(0 < peak_held <= BUDGET_MIB * 2 ** 20, f'body bytes held '
              f'{peak_held / 2**20:.0f} MiB <= the budget')
        ck.ok(None not in holder.codes, f'every answer is the JSON error ({holder.codes})')

    def chunked_bodies(self):
        ck, w = self.ck, self.w
        # (a MiB every 5 ms each: a client, not a benchmark of the test machine's loopback)
        holder = BodyHolder(self.b.port, w.agents, 16, SAMPLES_MAX, chunked=True,
                            pause=0.005).start()
        time.sleep(BODY_TIMEOUT + 1)
        holder.stop()
        print(f'  chunked bodies: answers {holder.answers}, codes {holder.codes}', flush=True)
        ck.ok(holder.answers.get(503, 0) > 0, f'chunked bodies past the budget: 503 '
              f'({holder.answers})')
        ck.ok(None not in holder.codes, f'every answer is the JSON error ({holder.codes})')

    # ---- requests that libmicrohttpd answered in HTML or not at all ----

    def broken_requests(self):
        ck, b, tok = self.ck, self.b, self.w.admin
        auth = f'Authorization: Bearer {tok}\r\n'

        def q(n):
            return '/v1/departments?' + '&'.join(f'p{i}={i}' for i in range(n))

        cases = [
            ('250 query parameters', f'GET {q(250)} HTTP/1.1\r\nHost: x\r\n{auth}\r\n', 414,
             'too_many_parameters', 'query'),
            ('1,000 query parameters', f'GET {q(1000)} HTTP/1.1\r\nHost: x\r\n{auth}\r\n',
             414, 'too_many_parameters', 'query'),
            ('a long chunk extension',
             f'POST /v1/departments HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json'
             f'\r\nTransfer-Encoding: chunked\r\n\r\n2;{"e" * 5000}\r\n{{}}\r\n0\r\n\r\n', 400,
             'malformed_chunk', 'Transfer-Encoding'),
            ('a chunk size of 17 hex digits',
             f'POST /v1/departments HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked'
             f'\r\n\r\n{"f" * 17}\r\n', 400, 'malformed_chunk', 'Transfer-Encoding'),
            ('a chunk without its CRLF',
             f'POST /v1/departments HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked'
             f'\r\n\r\n2\r\n{{}}XX', 400, 'malformed_chunk', 'Transfer-Encoding'),
            ('a request line of 20 KB', f'GET /{"a" * 20000} HTTP/1.1\r\nHost: x\r\n\r\n', 414,
             'uri_too_long', 'request-target'),
            ('header fields of 20 KB', f'GET /v1/health HTTP/1.1\r\nHost: x\r\n'
             f'X-A: {"a" * 20000}\r\n\r\n', 431, 'headers_too_large', ''),
            ('101 header fields', 'GET /v1/health HTTP/1.1\r\nHost: x\r\n' +
             ''.join(f'X-{i}: v\r\n' for i in range(101)) + '\r\n', 431, 'headers_too_large',
             ''),
            ('HTTP/2.0', 'GET /v1/health HTTP/2.0\r\nHost: x\r\n\r\n', 505, 'http_version',
             'request-line'),
            ('HTTP/0.9', 'GET /v1/health HTTP/0.9\r\nHost: x\r\n\r\n', 505, 'http_version',
             'request-line'),
            ('no Host', 'GET /v1/health HTTP/1.1\r\n\r\n', 400, 'malformed_request', 'Host'),
            ('two Hosts', 'GET /v1/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400,
             'malformed_request', 'Host'),
            ('a bare LF', 'GET /v1/health HTTP/1.1\nHost: x\n\n', 400, 'malformed_request', ''),
            ('a space before the colon', 'GET /v1/health HTTP/1.1\r\nHost : x\r\n\r\n', 400,
             'malformed_request', ''),
            ('line folding', 'GET /v1/health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n', 400,
             'malformed_request', ''),
            ('Content-Length 1e3', f'POST /v1/departments HTTP/1.1\r\nHost: x\r\n{auth}'
             'Content-Length: 1e3\r\n\r\n', 400, 'invalid', 'Content-Length'),
            ('two Content-Lengths', f'POST /v1/departments HTTP/1.1\r\nHost: x\r\n{auth}'
             'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}', 400, 'malformed_request',
             'Content-Length'),
            ('Content-Length with chunked', f'POST /v1/departments HTTP/1.1\r\nHost: x\r\n'
             f'{auth}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400,
             'malformed_request', 'Transfer-Encoding'),
            ('Transfer-Encoding gzip', f'POST /v1/departments HTTP/1.1\r\nHost: x\r\n{auth}'
             'Transfer-Encoding: gzip\r\n\r\n', 501, 'not_implemented', 'Transfer-Encoding'),
            ('an absolute-form target', 'GET http://x/v1/health HTTP/1.1\r\nHost: x\r\n\r\n',
             400, 'malformed_request', 'request-target'),
            ('a raw byte 0xff in the target', 'GET /v1/health\xff HTTP/1.1\r\nHost: x\r\n\r\n',
             400, 'malformed_request', 'request-target'),
            ('a NUL in a header', 'GET /v1/health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n',
             400, 'malformed_request', ''),
            ('Expect: something else', 'GET /v1/health HTTP/1.1\r\nHost: x\r\n'
             'Expect: 200-ok\r\n\r\n', 400, 'malformed_request', 'Expect'),
            ('a garbage request line', 'GARBAGE\r\n\r\n', 400, 'malformed_request',
             'request-line'),
        ]
        for what, data, status, code, field in cases:
            st, head, e, dt, raw = cbhostile.raw(b.port, data.encode('latin-1'))
            ck.ok(st == status and e and e.get('code') == code and e.get('field') == field and
                  e.get('request_id') and 'application/json' in head,
                  f'{what}: {status} {code} (field "{field}") with the JSON error body '
                  f'(got {st} {raw[:240]!r})')
            ck.ok(dt < 1.5, f'{what}: answered at once ({dt:.2f} s)')
        # 64 parameters are served.
        st, _, _, _, _ = cbhostile.raw(b.port, f'GET {q(64)} HTTP/1.1\r\nHost: x\r\n{auth}\r\n'
                                       .encode())
        ck.eq(st, 200, '64 query parameters are served')
        # A head that never ends: 408 with the JSON error at the head deadline.
        st, head, e, dt, raw = cbhostile.raw(b.port, b'GET /v1/health HTTP/1.1\r\nHost: x\r\n',
                                             timeout=HEAD_TIMEOUT + 3)
        ck.ok(st == 408 and e and e.get('code') == 'timeout' and 'field' in e and
              dt < HEAD_TIMEOUT + 1.5, f'an unfinished head: 408 with the JSON error after '
              f'{dt:.1f} s (got {st} {raw[:200]!r})')
        # A body that stops coming: 408 once it is silent for limits.timeout_seconds.
        st, head, e, dt, raw = cbhostile.raw(
            b.port, (f'POST /v1/departments HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: '
                     'application/json\r\nContent-Length: 100\r\n\r\n{"code":').encode(),
            timeout=IDLE_TIMEOUT + 3)
        ck.ok(st == 408 and e and e.get('code') == 'timeout', f'a body that stops: 408 after '
              f'{dt:.1f} s (got {st})')

    # ---- metering ----

    def overflow(self):
        ck, w, b = self.ck, self.w, self.b
        inst = w.inst[0]
        day = int(time.time()) // 86400 * 86400 - 86400
        start = day + 3600
        # Past the maxima: refused at the member, with the schema's rule, nothing stored.
        for member, value in (('memory_used_mib_avg', 1e400), ('memory_used_mib_max', 1.7e308),
                              ('memory_mib', MEM_MAX + 1), ('disk_read_bytes', 2 ** 63 - 1),
                              ('net_rx_bytes', BYTES_MAX + 1), ('net_tx_packets', COUNT_MAX + 1),
                              ('cpu_cores_avg', -1e400)):
            doc = json.dumps({'instances': [window(inst, start, **{member: 0})]})
            doc = doc.replace(f'"{member}": 0', f'"{member}": {value!r}'.replace('inf', '1e400'))
            r = b.post('/v1/samples', raw=doc.encode(), token=w.agents[0],
                       headers={'Content-Type': 'application/json'})
            e = cbtest.json_error(r) or {}
            ck.ok(r.status == 422 and e.get('field') == f'/instances/0/{member}' and
                  e.get('code') == 'schema_violation',
                  f'{member} = {value!r}: 422 schema_violation at the member ({r!r})')
        # A day of 10-second windows, every figure at its maximum: the sums stay finite.
        wins = [window(inst, day + k * 10, duration=10, memory_mib=MEM_MAX,
                       memory_used_mib_avg=MEM_MAX, memory_used_mib_max=MEM_MAX,
                       cpu_cores_avg=2.75, cpu_cores_max=2.75,
                       disk_read_bytes=BYTES_MAX, disk_write_bytes=BYTES_MAX,
                       disk_read_requests=COUNT_MAX, disk_write_requests=COUNT_MAX,
                       net_rx_bytes=BYTES_MAX, net_tx_bytes=BYTES_MAX,
                       net_rx_packets=COUNT_MAX, net_tx_packets=COUNT_MAX)
                for k in range(8640)]
        r = b.post('/v1/samples', {'instances': wins}, token=w.agents[0])
        ck.ok(r.status == 200 and r.json()['stored'] == 8640,
              f'a day of 8,640 windows at the maxima stored ({r!r})')
        day_iso = time.strftime('%Y-%m-%d', time.gmtime(day))
        r = b.post('/v1/metering/rollup', {'day': day_iso}, token=w.vendor)
        ck.eq(r.status, 200, 'the day rolled up')
        paths = [f'/v1/instances/{inst["id"]}/usage?from={day}&to={day + 86400}&step=3600',
                 f'/v1/instances/{inst["id"]}/usage?from={day}&to={day + 86400}&step=86400',
                 f'/v1/instances/{inst["id"]}/usage?from={day - 86400}&to={day + 2 * 86400}'
                 f'&step=86400',
                 f'/v1/allocations/{w.alloc}/usage?from={day}&to={day + 86400}']
        for path in paths:
            r = b.get(path, token=w.auditor)
            try:
                doc = cbhostile.strict_json(r.body.decode())
                finite = all_finite(doc)
            except ValueError as e:
                doc, finite = None, str(e)
            ck.ok(r.status == 200 and finite is True,
                  f'{path}: strict JSON, every number finite ({finite}; {r.body[:200]!r})')
        r = b.get(paths[1], token=w.auditor)
        text = r.body.decode()
        want = 8640 * BYTES_MAX
        nums = [float(x) for x in re.findall(r'"disk_read_bytes":\s*([0-9.e+]+)', text)]
        ck.ok(nums and max(nums) >= want * 0.999 and max(nums) <= 2 ** 63,
              f'a day of disk_read_bytes at the maximum sums to {want} without overflow '
              f'({nums[:3]})')

    def slow_readers(self):
        """One token asks for large answers (a day of 10-second points, ~5 MB each) on 60
        connections and reads none of them: once its unread answers fill its share of the body
        budget, its next requests get 503 body_budget; other tokens go on."""
        ck, w, b = self.ck, self.w, self.b
        inst = w.inst[0]
        day = int(time.time()) // 86400 * 86400 - 86400
        path = f'/v1/instances/{inst["id"]}/usage?from={day}&to={day + 86400}&step=10'
        size = len(b.get(path, token=w.vendor).body)
        socks, statuses = [], {}
        for i in range(60):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.bind(('127.0.0.4', 0))
            s.connect(('127.0.0.1', b.port))
            s.sendall(f'GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {w.vendor}'
                      '\r\n\r\n'.encode())
            socks.append(s)
            time.sleep(0.05)
        # every call answered (the first bytes of each answer), or 30 s
        heads = {s: b'' for s in socks}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(len(v) < 12 for v in heads.values()):
            ready, _, _ = select.select([s for s, v in heads.items() if len(v) < 12], [], [],
                                        0.5)
            for s in ready:
                try:
                    heads[s] += s.recv(12 - len(heads[s]))
                except OSError:
                    heads[s] = b'closed......'
        for head in heads.values():
            m = re.match(rb'HTTP/1\.1 (\d{3})', head)
            st = int(m.group(1)) if m else None
            statuses[st] = statuses.get(st, 0) + 1
        held = w.metrics()['cloudbroker_http_body_bytes_held']
        r = b.get('/v1/whoami', token=w.auditor)
        for s in socks:
            s.close()
        print(f'  slow readers: answers of {size / 2**20:.1f} MiB: {statuses}; '
              f'{held / 2**20:.0f} MiB of answers held', flush=True)
        ck.ok(statuses.get(503, 0) > 0 and statuses.get(200, 0) > 0,
              f'a token that reads no answers gets 503 once its share is held ({statuses})')
        ck.ok(held <= BUDGET_MIB * 2 ** 20, f'answers held {held / 2**20:.0f} MiB <= budget')
        ck.eq(r.status, 200, 'another token is served meanwhile')

    def overlap(self):
        ck, w, b = self.ck, self.w, self.b
        inst = w.inst[1]
        t = (int(time.time()) // 86400 - 1) * 86400 + 7200
        before = w.metrics()['cloudbroker_samples_overlapping_total']
        r = b.post('/v1/samples', {'instances': [window(inst, t), window(inst, t + 300)]},
                   token=w.agents[0])
        ck.eq((r.status, r.json()['stored']), (200, 2), 'two 5-minute windows stored')
        batch = [window(inst, t, duration=600),           # covers both
                 window(inst, t + 290, duration=10),      # inside the first
                 window(inst, t),                         # the same again: a duplicate
                 window(inst, t + 600, duration=600),     # after them: stored
                 window(inst, t + 1200, duration=600),    # stored ...
                 window(inst, t + 1500, duration=300)]    # ... and this one inside it
        r = b.post('/v1/samples', {'instances': batch}, token=w.agents[0])
        doc = r.json()
        ck.ok(r.status == 200 and doc['stored'] == 2 and doc['duplicates'] == 1 and
              doc['overlapping'] == 3, f'overlapping windows refused one by one ({doc})')
        rej = {x['field']: x for x in doc.get('rejected', [])}
        ck.eq(sorted(rej), ['/instances/0/start', '/instances/1/start', '/instances/5/start'],
              'each refused window named by its field')
        ck.ok(all(x['code'] == 'overlapping_window' and 'overlaps' in x['message']
                  for x in rej.values()), 'code overlapping_window and the windows in words')
        con = sqlite3.connect(f'file:{b.db_path}?mode=ro', uri=True, timeout=10)
        secs = con.execute('SELECT sum(duration) FROM samples WHERE instance_id = ?',
                           (inst['id'],)).fetchone()[0]
        con.close()
        ck.eq(secs, 300 + 300 + 600 + 600, 'no second counted twice')
        ck.eq(w.metrics()['cloudbroker_samples_overlapping_total'] - before, 3,
              '/metrics counts the refused windows')

    def unowned_flood(self):
        ck, w, b = self.ck, self.w, self.b
        slot = (int(time.time()) // 300 - 24) * 300
        flood = [{'uuid': str(uuid.uuid4()), 'name': 'x' * 256, 'start': slot + (k % 30) * 10,
                  'duration': 10, 'readings': 1, 'expected': 1} for k in range(5000)]
        flood += [{'uuid': str(uuid.uuid4()), 'name': 'y', 'start': slot + 300, 'duration': 300,
                   'readings': 30, 'expected': 30} for _ in range(100)]
        r = b.post('/v1/samples', {'unowned': flood}, token=w.agents[1])
        doc = r.json()
        ck.ok(r.status == 200 and doc['unowned'] == 2 * UNOWNED_CAP and
              doc['unowned_dropped'] == 5100 - 2 * UNOWNED_CAP,
              f'unowned windows past {UNOWNED_CAP} per host and 5 minutes dropped and counted '
              f'({ {k: v for k, v in doc.items() if k != "rejected"} })')
        r = b.post('/v1/samples', {'unowned': flood[:2000]}, token=w.agents[1])
        ck.ok(r.json()['unowned'] == 0 and r.json()['unowned_dropped'] == 2000 - UNOWNED_CAP,
              f'a second flood adds nothing ({r.json()})')
        con = sqlite3.connect(f'file:{b.db_path}?mode=ro', uri=True, timeout=10)
        rows = con.execute('SELECT count(*) FROM unowned_samples WHERE host_id = ?',
                           (w.hosts[1],)).fetchone()[0]
        con.close()
        ck.eq(rows, 2 * UNOWNED_CAP, 'rows stored for the flooding host')
        ck.ok(w.metrics()['cloudbroker_samples_unowned_dropped_total'] >= 5100 + 2000 - 3 *
              UNOWNED_CAP, '/metrics counts the dropped windows')

    # ---- the audit trail ----

    def audit_truncation(self):
        ck, w, b = self.ck, self.w, self.b
        anchor = os.path.join(b.state_dir, 'audit.anchor')
        ck.ok(os.path.exists(anchor) and stat.S_IMODE(os.stat(anchor).st_mode) == 0o600,
              'STATE/audit.anchor exists, mode 0600')
        r = b.get('/v1/audit/verify', token=w.auditor).json()
        ck.ok(r['ok'] and r['anchor'] and 0 < r['anchor']['records'] <= r['records'],
              f'an intact trail verifies against its anchor ({r})')
        b.post('/v1/departments', {'code': 'before-cut', 'name': 'x'}, token=w.admin)
        time.sleep(0.2)
        con = sqlite3.connect(b.db_path, timeout=10)
        with con:
            con.execute('DELETE FROM audit')
            con.execute("DELETE FROM sqlite_sequence WHERE name = 'audit'")
        con.close()
        r = b.get('/v1/audit/verify', token=w.auditor).json()
        ck.ok(not r['ok'] and r['records'] == 0 and 'removed' in (r['reason'] or ''),
              f'every record and sqlite_sequence deleted: verify fails ({r})')
        for i in range(40):
            b.post('/v1/departments', {'code': f'after-cut-{i}', 'name': 'x'}, token=w.admin)
        r = b.get('/v1/audit/verify', token=w.auditor).json()
        ck.ok(not r['ok'], f'records appended after the cut do not hide it ({r["reason"]})')
        return r


def all_finite(doc):
    if isinstance(doc, float):
        return math.isfinite(doc)
    if isinstance(doc, dict):
        return all(all_finite(v) for v in doc.values())
    if isinstance(doc, list):
        return all(all_finite(v) for v in doc)
    return True


def main():
    ck = cbtest.Checks('hostile-clients')
    cbhostile.raise_nofile()
    w = None
    try:
        w = World(ck)
        c = Cases(ck, w)
        t0 = time.monotonic()
        c.measured('slowloris and idle connections above the limit', c.slow_and_idle)
        c.measured('per-address limit and a trusted proxy', c.per_address_and_proxy)
        c.measured('50 large bodies held open', c.large_bodies)
        c.measured('16 chunked bodies held open', c.chunked_bodies)
        c.measured('broken requests on raw sockets', c.broken_requests)
        c.measured('numbers past the maxima, sums at the maxima', c.overflow, p99_ms=250)
        c.measured('60 connections that read no answer', c.slow_readers, p99_ms=250)
        c.measured('overlapping windows', c.overlap)
        c.measured('an unowned-domain flood', c.unowned_flood)
        c.measured('every audit record deleted', c.audit_truncation)
        c.client.stop()
        c.rss.stop()
        # After a restart, the broker says so in its log, and verify still fails.
        w.b.stop()
        w.b.start()
        r = w.b.get('/v1/audit/verify', token=w.auditor).json()
        ck.ok(not r['ok'], f'after a restart the truncated trail still fails ({r["reason"]})')
        with open(w.b.log_path, 'rb') as f:
            log = f.read().decode('utf-8', 'replace')
        ck.ok('no longer holds record' in log, 'the broker logs the truncation at start')
        ck.ok(re.search(r'audit anchor: \d+ records, head [0-9a-f]{64}', log),
              'every anchor is in the log too')
        ck.ok(not re.search(r'sanitizer|runtime error|segfault|assert', log, re.I),
              'no crash or sanitizer report in the log')
        ck.eq(w.b.stop(), 0, 'the broker stops cleanly')
        with open(w.b.log_path, 'rb') as f:
            tail = f.read().decode('utf-8', 'replace')[len(log):]
        ck.ok(not re.search(r'sanitizer|runtime error|leak', tail, re.I),
              'no sanitizer report at the stop (leaks included)')
        print(f'{time.monotonic() - t0:.1f} s of cases', flush=True)
        for fig in c.figures:
            print('FIGURE ' + fig, flush=True)
    finally:
        if w:
            w.b.cleanup()
    ck.done()


if __name__ == '__main__':
    main()
