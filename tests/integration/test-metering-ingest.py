#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The broker's side of metering, without a hypervisor: POST /v1/samples (idempotent storage,
hostile and malformed batches refused whole with the record's index and field, nothing stored
from them), the daily rollup checked against figures worked out here by hand from the windows
sent, and the usage reads (5-minute points, hourly groups, daily rollups, an allocation's
summary) that must agree with both.

Fixture: the hosts are libvirt's test driver (test:///FILE.xml written here, no libvirtd). An
instance row only comes into being through the workflow's provisioning on a real hypervisor
(the test driver cannot finish a trial), so this test inserts one allocation and three
instance rows straight into SQLite while the broker is stopped, as test-role-matrix does for
the states the test driver cannot reach. Every metering figure then goes through the API.
"""
import calendar
import json
import math
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
import cbworld  # noqa: E402
from cbtest import db_connect, Broker, json_error  # noqa: E402

WIN = 300
EXPECTED = 30  # readings per window: a 10 s interval


def counts(b):
    """Rows in the three sample tables."""
    con = db_connect(b.db_path)
    try:
        return tuple(con.execute(f'SELECT count(*) FROM {t}').fetchone()[0]
                     for t in ('samples', 'unowned_samples', 'host_samples'))
    finally:
        con.close()


def metric(b, name):
    text = b.get('/metrics', token=b.admin_token).body.decode()
    for line in text.splitlines():
        if line.startswith(name + ' '):
            return float(line.split()[1])
    return None


def big_post(port, token, total, chunked, wait=20.0):
    """POSTs a @total-byte JSON body to /v1/samples, by Content-Length or chunked, reading the
    answer while sending (the broker may answer and close before the body is all sent).
    Returns: (status, error object)."""
    head = (f'POST /v1/samples HTTP/1.1\r\nHost: 127.0.0.1\r\n'
            f'Authorization: Bearer {token}\r\nContent-Type: application/json\r\n'
            + ('Transfer-Encoding: chunked\r\n' if chunked else f'Content-Length: {total}\r\n')
            + 'Connection: close\r\n\r\n').encode()
    data, _ = cbtest.stream_body(port, head, total, b'{"instances": [' + b' ' * (65536 - 15),
                                 chunked, wait, rest=b' ' * 65536)
    m = re.match(rb'HTTP/1\.[01] (\d{3})', data)
    body = data.partition(b'\r\n\r\n')[2]
    if b'\r\nTransfer-Encoding: chunked' in data.partition(b'\r\n\r\n')[0]:
        body = body.partition(b'\r\n')[2]
    try:
        err = json.JSONDecoder().raw_decode(body.decode())[0].get('error')
    except (ValueError, AttributeError):
        err = None
    return (int(m.group(1)) if m else None), err


def nearest_rank(values, q):
    v = sorted(values)
    return v[max(1, math.ceil(q * len(v))) - 1]


def close(a, b, eps=1e-6):
    return a is not None and b is not None and abs(a - b) <= eps


def main():
    ck = cbtest.Checks('test-metering-ingest')
    b = Broker().start()
    try:
        run(ck, b)
    finally:
        b.cleanup()
    ck.done()


def run(ck, b):
    adm = b.admin_token
    dept_a = b.make_department('ma', 'Metering A')
    dept_b = b.make_department('mb', 'Metering B')
    _, tok_dept_a = b.make_account('staff-a', 'department', dept_a)
    _, tok_dept_b = b.make_account('staff-b', 'department', dept_b)
    _, tok_vendor = b.make_account('vendor', 'vendor')
    _, tok_reviewer = b.make_account('reviewer', 'reviewer')
    system = cbtest.make_system(b, tok_dept_a, 'oa')
    request_id = cbtest.make_request(b, tok_dept_a, system)

    hosts, agent = {}, {}
    for h in ('h1', 'h2'):
        uri = cbworld.node_xml(os.path.join(b.state_dir, f'{h}.xml'), 16384,
                               pool=f'{h}-pool', base=False)
        r = b.post('/v1/hosts', {'name': h, 'uri': uri, 'pool': 'production',
                                 'storage_pool': f'{h}-pool'}, token=tok_vendor)
        ck.eq(r.status, 201, f'POST /v1/hosts {h}')
        hosts[h] = r.json()['id']
        agent[h] = r.json().get('agent_token', '')
        ck.ok(agent[h].startswith('cba_'), f'host {h} got an agent token (cba_...)')
    ck.ok('agent_token' not in b.get(f"/v1/hosts/{hosts['h1']}", token=tok_vendor).json(),
          'the agent token is shown once, not on GET')

    # The instance rows (see the docstring), written while the broker is stopped.
    b.stop()
    now_iso = time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime())
    inst = {}
    con = db_connect(b.db_path, write=True)
    with con:
        alloc = con.execute(
            "INSERT INTO allocations(department_id, system_id, request_id, state, purpose, vcpus,"
            " memory_mib, disk_gib, instances, created_at, updated_at)"
            " VALUES (?, ?, ?, 'active', 'production', 4, 1600, 3, 3, ?, ?)",
            (dept_a, system, request_id, now_iso, now_iso)).lastrowid
        for idx, (key, host, vcpus, mem) in enumerate((('i1', 'h1', 2, 1024), ('i2', 'h1', 1, 512),
                                                       ('i3', 'h2', 1, 64))):
            u = str(uuid.uuid4())
            iid = con.execute(
                "INSERT INTO instances(allocation_id, idx, name, uuid, host_id, vcpus, memory_mib,"
                " disk_gib, max_vcpus, max_memory_mib, image, pool, volume, state, created_at,"
                " updated_at) VALUES (?,?,?,?,?,?,?,1,?,?,'halt',?,?,'running',?,?)",
                (alloc, idx, f'cb-{alloc}-{idx}', u, hosts[host], vcpus, mem, vcpus, mem,
                 f'{host}-pool', f'cb-{alloc}-{idx}.raw', now_iso, now_iso)).lastrowid
            inst[key] = {'id': iid, 'uuid': u, 'vcpus': vcpus, 'memory_mib': mem}
    con.close()
    b.start()

    today = int(time.time()) // 86400 * 86400
    day = today - 86400  # yesterday (UTC): every window of it is over
    day_iso = time.strftime('%Y-%m-%d', time.gmtime(day))
    base = day + 10 * 3600  # 10:00 UTC

    # ---- valid batches ----
    i1, i2, i3 = inst['i1'], inst['i2'], inst['i3']

    def w1(k):
        """Instance i1's window k (vCPUs 2, 1024 MiB): full coverage but for two windows."""
        readings = {3: 15, 7: 20}.get(k, EXPECTED)
        avg = round(0.05 * (k + 1), 6)
        return {'instance': i1['id'], 'uuid': i1['uuid'], 'start': base + k * WIN,
                'duration': WIN, 'readings': readings, 'expected': EXPECTED, 'vcpus': 2,
                'memory_mib': 1024, 'cpu_cores_avg': avg, 'cpu_cores_max': round(avg + 0.2, 6),
                'memory_used_mib_avg': 200.0 + 10 * k, 'memory_used_mib_max': 250.0 + 10 * k,
                'memory_source': 'balloon', 'disk_read_bytes': 1000 * k,
                'disk_write_bytes': 2000 * k, 'disk_read_requests': k, 'disk_write_requests': 2 * k,
                'net_rx_bytes': 100 * k, 'net_tx_bytes': 50 * k, 'net_rx_packets': k,
                'net_tx_packets': k}

    def w2(k):
        """Instance i2's window k: CPU missing in the even windows, no disk figures at all."""
        return {'instance': i2['id'], 'uuid': i2['uuid'], 'start': base + k * WIN,
                'duration': WIN, 'readings': EXPECTED, 'expected': EXPECTED, 'vcpus': 1,
                'memory_mib': 512,
                'cpu_cores_avg': None if k % 2 == 0 else round(0.1 * k, 6),
                'cpu_cores_max': None if k % 2 == 0 else round(0.1 * k + 0.05, 6),
                'memory_used_mib_avg': 100.0, 'memory_used_mib_max': 120.0,
                'memory_source': 'rss', 'net_rx_bytes': None, 'net_tx_bytes': None}

    host_window = {'start': base, 'duration': WIN, 'readings': EXPECTED, 'expected': EXPECTED,
                   'cpus': 8, 'memory_mib': 16384, 'cpu_used_cores_avg': 1.5,
                   'cpu_used_cores_max': 2.0, 'memory_used_mib_avg': 3000.0, 'domains_max': 3,
                   'cycle_seconds_avg': 0.01, 'cycle_seconds_max': 0.02}
    unowned_window = {'uuid': str(uuid.uuid4()), 'name': 'not-ours', 'start': base,
                      'duration': WIN, 'readings': EXPECTED, 'expected': EXPECTED, 'vcpus': 1,
                      'cpu_cores_avg': 0.5, 'cpu_cores_max': 0.9}
    W1 = [w1(k) for k in range(20)]
    W2 = [w2(k) for k in range(10)]
    batch = {'instances': W1 + W2, 'unowned': [unowned_window], 'host': [host_window]}

    r = b.post('/v1/samples', batch, token=agent['h1'])
    ck.eq(r.status, 200, 'POST /v1/samples: a valid batch')
    ck.eq(r.json(), {'stored': 30, 'duplicates': 0, 'unowned': 1, 'host': 1,
                    'overlapping': 0, 'unowned_dropped': 0, 'rejected': []},
          'every window stored')
    ck.eq(counts(b), (30, 1, 1), 'rows in samples, unowned_samples, host_samples')
    ck.eq(metric(b, 'cloudbroker_samples_stored_total'), 30, '/metrics samples stored')

    # The same batch again (at-least-once delivery): all duplicates, still 2xx, no new row.
    r = b.post('/v1/samples', batch, token=agent['h1'])
    ck.eq(r.status, 200, 'the same batch again answers 2xx')
    ck.eq(r.json(), {'stored': 0, 'duplicates': 30, 'unowned': 0, 'host': 0,
                    'overlapping': 0, 'unowned_dropped': 0, 'rejected': []},
          'the same batch again: all duplicates')
    ck.eq(counts(b), (30, 1, 1), 'no row added by the duplicate batch')
    ck.eq(metric(b, 'cloudbroker_samples_duplicate_total'), 30, '/metrics duplicates counted')
    # A window sent again with other figures does not overwrite the first arrival.
    changed = dict(W1[0], cpu_cores_avg=0.9, cpu_cores_max=1.0)
    r = b.post('/v1/samples', {'instances': [changed]}, token=agent['h1'])
    ck.eq((r.status, r.json().get('duplicates')), (200, 1), 'a changed resend is a duplicate')

    # The other host's own instance, through its own token.
    w3 = {'instance': i3['id'], 'uuid': i3['uuid'], 'start': base, 'duration': WIN,
          'readings': EXPECTED, 'expected': EXPECTED, 'vcpus': 1, 'cpu_cores_avg': 0.01,
          'cpu_cores_max': 0.02}
    r = b.post('/v1/samples', {'instances': [w3]}, token=agent['h2'])
    ck.eq((r.status, r.json().get('stored')), (200, 1), "host h2 posts its own instance's window")
    # An empty batch is valid and stores nothing.
    r = b.post('/v1/samples', {}, token=agent['h1'])
    ck.eq(r.status, 200, 'an empty batch')
    ck.eq(counts(b), (31, 1, 1), 'rows after the valid batches')

    # ---- bad input: refused whole, with the index and the field; nothing stored ----
    # On the day before (so that a batch wrongly accepted cannot change yesterday's rollup).
    def wbad(k):
        return dict(w1(k), start=base - 86400 + k * WIN, cpu_cores_avg=0.5, cpu_cores_max=0.7)

    good = wbad(0)  # a fresh window: it would be stored if the batch were accepted

    def refused(what, status, body=None, raw=None, token=agent['h1'], field=None, code=None,
                headers=None):
        before = counts(b)
        if raw is not None:
            r = b.request('POST', '/v1/samples', raw=raw, token=token,
                          headers=dict({'Content-Type': 'application/json'}, **(headers or {})))
        else:
            r = b.post('/v1/samples', body, token=token)
        ck.eq(r.status, status, f'{what}: status')
        e = json_error(r)
        ck.ok(e is not None and e.get('message'), f'{what}: a JSON error with a message ({r})')
        if field is not None and e is not None:
            ck.eq(e.get('field'), field, f'{what}: the field')
        if code is not None and e is not None:
            ck.eq(e.get('code'), code, f'{what}: the code')
        ck.eq(counts(b), before, f'{what}: nothing stored')
        return e

    def bad(k, **change):
        rec = wbad(1 + k)
        for key, v in change.items():
            if v is KeyError:
                rec.pop(key, None)
            else:
                rec[key] = v
        return rec

    now = int(time.time())
    refused('malformed JSON', 400, raw=b'{"instances": [{"instance": 1,')
    refused('trailing garbage', 400, raw=json.dumps({'instances': [good]}).encode() + b'}')
    # Numbers JSON has no words for: a marker value in record 1 replaced in the text.
    marked = json.dumps({'instances': [good, bad(0, cpu_cores_avg=0.123, cpu_cores_max=0.456)]})
    refused('NaN (not JSON)', 400, raw=marked.replace('0.123', 'NaN').encode())
    refused('Infinity (not JSON)', 400, raw=marked.replace('0.456', 'Infinity').encode())
    refused('-Infinity (not JSON)', 400, raw=marked.replace('0.123', '-Infinity').encode())
    refused('1e999 (a number beyond a double)', 422, raw=marked.replace('0.456', '1e999').encode())
    refused('unknown field in a record', 422, {'instances': [good, bad(1, cpu_cores_p99=1.0)]},
            field='/instances/1/cpu_cores_p99')
    refused('unknown top-level field', 422, {'instances': [good], 'vms': []}, field='/vms')
    refused('negative bytes', 422, {'instances': [good, bad(2, net_rx_bytes=-5)]},
            field='/instances/1/net_rx_bytes')
    refused('negative cores', 422,
            {'instances': [good, bad(3, cpu_cores_avg=-0.5, cpu_cores_max=0.1)]},
            field='/instances/1/cpu_cores_avg')
    refused('negative readings', 422, {'instances': [good, bad(4, readings=-1)]},
            field='/instances/1/readings')
    refused('a string for a number', 422, {'instances': [good, bad(5, cpu_cores_avg='0.5')]},
            field='/instances/1/cpu_cores_avg')
    refused('a float for an integer', 422, {'instances': [good, bad(6, disk_read_bytes=1.5)]},
            field='/instances/1/disk_read_bytes')
    refused('a required field missing', 422, {'instances': [good, bad(7, start=KeyError)]})
    future = (now + 3 * 3600) // WIN * WIN
    refused('a window far in the future', 422, {'instances': [good, bad(8, start=future)]},
            field='/instances/1/start', code='future_window')
    old = (now - 40 * 86400) // WIN * WIN
    refused('a window older than the retention', 422, {'instances': [good, bad(9, start=old)]},
            field='/instances/1/start', code='stale_window')
    refused('start not a multiple of duration', 422,
            {'instances': [good, bad(10, start=base - 86400 + 45 * WIN + 7)]},
            field='/instances/1/start')
    refused('avg above max', 422,
            {'instances': [good, bad(11, cpu_cores_avg=0.9, cpu_cores_max=0.5)]},
            field='/instances/1/cpu_cores_avg')
    refused('memory avg above max', 422,
            {'instances': [good, bad(12, memory_used_mib_avg=900.0,
                                     memory_used_mib_max=300.0)]},
            field='/instances/1/memory_used_mib_avg')
    refused('readings above expected', 422, {'instances': [good, bad(13, readings=31)]},
            field='/instances/1/readings')
    refused('cores far above the vCPUs', 422,
            {'instances': [good, bad(14, cpu_cores_avg=1.0, cpu_cores_max=40.0)]},
            field='/instances/1/cpu_cores_max')
    # The broker knows the instance's vCPUs: a record that leaves them out, or claims more
    # than the instance has, cannot make 40 cores plausible for a 2-vCPU instance.
    refused('cores far above the vCPUs, vcpus left out', 422,
            {'instances': [good, bad(15, vcpus=None, cpu_cores_avg=1.0, cpu_cores_max=40.0)]},
            field='/instances/1/cpu_cores_max')
    refused('cores far above the vCPUs, vcpus overstated', 422,
            {'instances': [good, bad(16, vcpus=64, cpu_cores_avg=30.0, cpu_cores_max=40.0)]})
    refused('another host\'s instance', 403,
            {'instances': [good, dict(w3, start=base + 50 * WIN)]},
            field='/instances/1/instance')
    refused('an instance id with another instance\'s uuid', 403,
            {'instances': [good, bad(17, uuid=i2['uuid'])]}, field='/instances/1/instance')
    refused('an instance that does not exist', 403,
            {'instances': [good, bad(18, instance=987654)]}, field='/instances/1/instance')
    refused('a bad host window', 422,
            {'instances': [good], 'host': [dict(host_window, start=base + 7)]},
            field='/host/0/start')
    refused('a bad unowned window', 422,
            {'instances': [good], 'unowned': [dict(unowned_window, readings=99)]},
            field='/unowned/0/readings')
    refused('an account token instead of an agent token', 403, {'instances': [good]},
            token=adm)
    refused('a vendor token instead of an agent token', 403, {'instances': [good]},
            token=tok_vendor)
    refused('no token', 401, {'instances': [good]}, token=None)
    refused('an unknown agent token', 401, {'instances': [good]},
            token='cba_' + 'A' * (len(agent['h1']) - 4))
    refused('not JSON content', 415, raw=json.dumps({'instances': [good]}).encode(),
            headers={'Content-Type': 'text/plain'})
    for chunked in (False, True):
        what = f"a 33 MB body ({'chunked' if chunked else 'by Content-Length'})"
        before = counts(b)
        st, err = big_post(b.port, agent['h1'], 33 * 1024 * 1024, chunked)
        ck.eq(st, 413, f'{what}: status')
        ck.ok(err is not None and err.get('message'), f'{what}: a JSON error ({err})')
        ck.eq(counts(b), before, f'{what}: nothing stored')

    # A rotated token: the old one stops working, the new one works.
    r = b.post(f"/v1/hosts/{hosts['h1']}/agent-token", {}, token=tok_vendor)
    ck.eq(r.status, 200, 'rotate the agent token')
    new_token = r.json().get('agent_token', '')
    refused('the agent token before rotation', 401, {'instances': [good]}, token=agent['h1'])
    agent['h1'] = new_token
    r = b.post('/v1/samples', {'instances': [w1(20)]}, token=agent['h1'])
    ck.eq((r.status, r.json().get('stored')), (200, 1), 'the rotated token posts')
    W1.append(w1(20))

    # Absurd but schema-valid counters must not break the reads afterwards.
    huge = [dict(w2(k), start=base - 3 * 86400 + k * WIN, disk_read_bytes=2 ** 63 - 1)
            for k in range(2)]
    r = b.post('/v1/samples', {'instances': huge}, token=agent['h1'])
    if r.status == 200:
        q = f"from={base - 3 * 86400}&to={base - 3 * 86400 + 3600}&step=3600"
        r2 = b.get(f"/v1/instances/{i2['id']}/usage?{q}", token=tok_reviewer)
        ck.eq(r2.status, 200, f'usage over two windows of 2^63-1 disk bytes each ({r2})')
    else:
        ck.eq(r.status, 422, 'absurd disk counters refused')

    # ---- the daily rollup against hand-worked figures ----
    ck.eq(b.post('/v1/metering/rollup', {'day': '2024-02-30'}, token=tok_vendor).status, 422,
          'rollup of a day that does not exist')
    ck.eq(b.post('/v1/metering/rollup', {'day': day_iso}, token=tok_dept_a).status, 403,
          'a department cannot run the rollup')
    r = b.post('/v1/metering/rollup', {'day': day_iso}, token=tok_vendor)
    ck.eq(r.status, 200, f'POST /v1/metering/rollup {day_iso}')
    ck.eq(r.json().get('instances'), 3, 'three instances rolled up')

    def expect(ws, vcpus):
        """The day's figures from the windows sent, by the definitions in the design: averages
        weighted by readings (each reading is one interval of time), p95 by nearest rank over
        the windows' averages, max of the maxima, coverage = readings / readings a full day
        should have (288 windows of EXPECTED)."""
        cpu = [(w['cpu_cores_avg'], w['readings']) for w in ws if w['cpu_cores_avg'] is not None]
        mem = [(w['memory_used_mib_avg'], w['readings']) for w in ws]
        out = {
            'windows': len(ws),
            'readings': sum(w['readings'] for w in ws),
            'expected': 86400 // WIN * EXPECTED,
            'cpu_avg': sum(v * n for v, n in cpu) / sum(n for _, n in cpu),
            'cpu_p95': nearest_rank([v for v, _ in cpu], 0.95),
            'cpu_max': max(w['cpu_cores_max'] for w in ws if w['cpu_cores_max'] is not None),
            'mem_avg': sum(v * n for v, n in mem) / sum(n for _, n in mem),
            'mem_p95': nearest_rank([v for v, _ in mem], 0.95),
            'mem_max': max(w['memory_used_mib_max'] for w in ws),
        }
        out['coverage'] = out['readings'] / out['expected']
        for k, col in (('disk_rd_bytes', 'disk_read_bytes'), ('disk_wr_bytes', 'disk_write_bytes'),
                       ('net_rx_bytes', 'net_rx_bytes'), ('net_tx_bytes', 'net_tx_bytes')):
            vals = [w.get(col) for w in ws if w.get(col) is not None]
            out[k] = sum(vals) if vals else None
        return out

    want = {'i1': expect(W1, 2), 'i2': expect(W2, 1)}
    # The same figures by hand, so that expect() itself is checked.
    # i1: 21 windows k = 0..20 at 0.05 (k + 1) cores, 30 readings each but 15 (k = 3, 0.20
    # cores) and 20 (k = 7, 0.40 cores): readings 21 x 30 - 15 - 10 = 605; the weighted sum
    # 30 x 0.05 x (1 + ... + 21) - 15 x 0.20 - 10 x 0.40 = 346.5 - 3 - 4 = 339.5; avg
    # 339.5 / 605; p95 by nearest rank: rank ceil(0.95 x 21) = 20 of 0.05..1.05, so 1.00;
    # max 1.05 + 0.2 = 1.25; coverage 605 / (288 x 30) = 605 / 8640.
    hand = {'i1': {'readings': 605, 'cpu_avg': 339.5 / 605, 'cpu_p95': 1.00, 'cpu_max': 1.25,
                   'coverage': 605 / 8640, 'mem_max': 250.0 + 200, 'disk_rd_bytes': 210000},
            # i2: CPU only in k = 1, 3, 5, 7, 9: 0.1 .. 0.9, 30 readings each: avg 0.5; p95
            # rank ceil(4.75) = 5, so 0.9; max 0.95; memory 100 throughout, max 120; 300
            # readings; no disk figure at all.
            'i2': {'readings': 300, 'cpu_avg': 0.5, 'cpu_p95': 0.9, 'cpu_max': 0.95,
                   'coverage': 300 / 8640, 'mem_avg': 100.0, 'mem_p95': 100.0,
                   'mem_max': 120.0, 'disk_rd_bytes': None}}
    for key, figures in hand.items():
        for f, v in figures.items():
            ck.ok(want[key][f] == v if v is None or isinstance(v, int) and f != 'cpu_p95'
                  else close(want[key][f], v), f'{key} by hand: {f} {want[key][f]} = {v}')

    con = db_connect(b.db_path)
    con.row_factory = sqlite3.Row
    rows = {r['instance_id']: dict(r) for r in con.execute(
        'SELECT * FROM rollups WHERE day = ?', (day_iso,))}
    con.close()
    for key in ('i1', 'i2'):
        got = rows.get(inst[key]['id'])
        ck.ok(got is not None, f'rollup row for {key}')
        if not got:
            continue
        w = want[key]
        for f in ('windows', 'readings', 'expected'):
            ck.eq(got[f], w[f], f'rollup {key} {f}')
        for f in ('coverage', 'cpu_avg', 'cpu_p95', 'cpu_max', 'mem_avg', 'mem_p95', 'mem_max'):
            ck.ok(close(got[f], w[f]), f'rollup {key} {f}: got {got[f]}, want {w[f]}')
        for f in ('disk_rd_bytes', 'disk_wr_bytes', 'net_rx_bytes', 'net_tx_bytes'):
            ck.eq(got[f], w[f], f'rollup {key} {f} (missing stays null)')
        ck.eq(got['vcpus'], inst[key]['vcpus'], f'rollup {key} vcpus')
        ck.ok(got['cpu_util_hist'] is not None and len(got['cpu_util_hist']) > 0,
              f'rollup {key} carries a CPU utilization histogram')

    # The day's size: the windows' own, or the instance's for a window without one (i3's).
    for key, mib in (('i1', 1024), ('i2', 512), ('i3', 64)):
        got = rows.get(inst[key]['id']) or {}
        ck.eq(got.get('memory_mib'), mib, f'rollup {key} memory_mib')

    # Rerunnable: a late window for the day, the rollup again, the figures follow.
    late = w1(30)
    ck.eq(b.post('/v1/samples', {'instances': [late]}, token=agent['h1']).status, 200,
          'a late window for the day')
    W1.append(late)
    want['i1'] = expect(W1, 2)
    ck.eq(b.post('/v1/metering/rollup', {'day': day_iso}, token=adm).status, 200,
          'the rollup rerun for the same day')
    con = db_connect(b.db_path)
    n_rows, windows, cpu_avg = con.execute(
        'SELECT count(*), max(windows), max(cpu_avg) FROM rollups WHERE day = ? AND'
        ' instance_id = ?', (day_iso, i1['id'])).fetchone()
    con.close()
    ck.eq((n_rows, windows), (1, 22), 'the rerun replaced the row (22 windows)')
    ck.ok(close(cpu_avg, want['i1']['cpu_avg']), 'the rerun has the new average')

    # ---- usage reads ----
    span = f'from={day}&to={day + 86400}'
    r = b.get(f"/v1/instances/{i1['id']}/usage?{span}&step=300", token=tok_dept_a)
    ck.eq(r.status, 200, 'GET usage step=300')
    pts = r.json().get('points', [])
    ck.eq(len(pts), len(W1), 'one point per 5-minute window')
    by_start = {w['start']: w for w in W1}
    for p in pts:
        t = calendar.timegm(time.strptime(p['start'][:19], '%Y-%m-%dT%H:%M:%S'))
        w = by_start.get(t)
        if not ck.ok(w is not None, f'point {p["start"]} is a window sent'):
            continue
        ck.ok(close(p['cpu_cores_avg'], w['cpu_cores_avg']) and
              close(p['cpu_cores_max'], w['cpu_cores_max']) and
              close(p['coverage'], w['readings'] / EXPECTED) and
              close(p['cpu_utilization_avg'], w['cpu_cores_avg'] / 2) and
              close(p['memory_used_mib_avg'], w['memory_used_mib_avg']) and
              p['readings'] == w['readings'] and p['windows'] == 1 and
              p['disk_read_bytes'] == w['disk_read_bytes'],
              f'point {p["start"]} matches the window sent: {p}')

    r = b.get(f"/v1/instances/{i2['id']}/usage?{span}&step=300", token=tok_vendor)
    pts = r.json().get('points', [])
    ck.eq(len(pts), 10, 'i2: ten points')
    ck.ok(all(p['disk_read_bytes'] is None for p in pts), 'i2: missing disk figures stay null')
    ck.eq(sum(1 for p in pts if p['cpu_cores_avg'] is None), 5, 'i2: missing CPU stays null')

    # Hourly: readings-weighted within the hour, coverage of the hour's 12 windows.
    r = b.get(f"/v1/instances/{i1['id']}/usage?{span}&step=3600", token=tok_dept_a)
    hours = {}
    for w in W1:
        hours.setdefault((w['start'] // 3600) * 3600, []).append(w)
    pts = r.json().get('points', [])
    ck.eq(len(pts), len(hours), 'one point per hour with windows')
    for p, (h, ws) in zip(pts, sorted(hours.items())):
        n = sum(w['readings'] for w in ws)
        avg = sum(w['cpu_cores_avg'] * w['readings'] for w in ws) / n
        ck.ok(close(p['cpu_cores_avg'], avg) and close(p['coverage'], n / (12 * EXPECTED)) and
              p['windows'] == len(ws) and
              close(p['cpu_cores_max'], max(w['cpu_cores_max'] for w in ws)),
              f'hour {p["start"]}: avg {p["cpu_cores_avg"]} want {avg}, coverage '
              f'{p["coverage"]} want {n / (12 * EXPECTED)}')

    # Daily: from the rollups.
    r = b.get(f"/v1/instances/{i1['id']}/usage?{span}&step=86400", token=tok_reviewer)
    ck.eq(r.status, 200, 'GET usage step=86400')
    doc = r.json()
    ck.eq(doc.get('source'), 'daily rollups', 'a day per point comes from the rollups')
    pts = doc.get('points', [])
    w = want['i1']
    if ck.eq(len(pts), 1, 'one daily point'):
        p = pts[0]
        ck.eq(p['start'][:10], day_iso, 'the daily point is the day')
        ck.ok(close(p['cpu_cores_avg'], w['cpu_avg']), f"daily avg {p['cpu_cores_avg']} "
              f"want {w['cpu_avg']}")
        ck.ok(close(p['cpu_cores_p95'], w['cpu_p95']), f"daily p95 {p['cpu_cores_p95']} "
              f"want {w['cpu_p95']}")
        ck.ok(close(p['cpu_cores_max'], w['cpu_max']), f"daily max {p['cpu_cores_max']} "
              f"want {w['cpu_max']}")
        ck.eq(p['windows'], w['windows'], 'a daily point counts the 5-minute windows it holds')
        ck.ok(close(p['coverage'], w['coverage']), f"daily coverage {p['coverage']} "
              f"want {w['coverage']}")
        ck.ok(close(p['memory_used_mib_avg'], w['mem_avg']), 'daily memory avg')
        ck.ok(close(p['cpu_utilization_avg'], w['cpu_avg'] / 2), 'daily utilization = avg/vCPUs')

    # The allocation's summary over the day.
    r = b.get(f'/v1/allocations/{alloc}/usage?{span}', token=tok_dept_a)
    ck.eq(r.status, 200, 'GET allocation usage')
    summ = {s['instance_id']: s for s in r.json().get('instances', [])}
    s1 = summ.get(i1['id'], {})
    ck.eq(s1.get('windows'), len(W1), 'allocation usage: i1 windows')
    ck.ok(close(s1.get('cpu_cores_avg'), w['cpu_avg']), 'allocation usage: i1 avg')
    ck.ok(close(s1.get('cpu_cores_p95'), w['cpu_p95']), 'allocation usage: i1 p95')
    ck.ok(close(s1.get('cpu_cores_max'), w['cpu_max']), 'allocation usage: i1 max')
    ck.ok(close(s1.get('coverage'), w['coverage']), 'allocation usage: i1 coverage')
    ck.eq(summ.get(i3['id'], {}).get('windows'), 1, 'allocation usage: i3 (other host)')

    # Scoping: another department sees nothing (404, not 403).
    ck.eq(b.get(f"/v1/instances/{i1['id']}/usage?{span}", token=tok_dept_b).status, 404,
          "another department's instance usage is 404")
    ck.eq(b.get(f'/v1/allocations/{alloc}/usage?{span}', token=tok_dept_b).status, 404,
          "another department's allocation usage is 404")
    ck.eq(b.get(f"/v1/instances/{i1['id']}/usage?{span}", token=agent['h1']).status, 403,
          'an agent token cannot read usage')
    ck.eq(b.get(f"/v1/instances/{i1['id']}/usage?from={day + 86400}&to={day}",
                token=tok_reviewer).status, 400, 'from after to is refused')

    model_rows = model_batches(ck, b, agent['h1'], inst, day - 86400)
    if cbtest.BACKEND == 'postgresql':
        day_partitions(ck, b, day - 86400, model_rows)
    concurrent_batches(ck, b, agent, inst, tok_dept_a, today - 10 * 86400)
    if cbtest.BACKEND == 'postgresql':
        key_taken_beside(ck, b, agent['h1'], inst['i2'], today - 20 * 86400)


def model_batches(ck, b, token, inst, day):
    """Random batches of windows of many durations, with repeats and overlaps among each other
    and with stored windows, answered as worked out here window by window (the rule of
    br_metering_ingest(): a window is a duplicate of a stored one with its start and duration,
    refused when it overlaps one otherwise, the first-starting one named; earlier windows of the
    same batch count as stored). The answers, the /metrics counters and the rows must be
    exactly the same (on SQLite the stored windows are read in one range per instance and run
    of its windows, on PostgreSQL in one statement). On @day, which nothing else in this test
    reads."""
    rng = random.Random(11)
    i1, i2 = inst['i1'], inst['i2']
    kept = {i1['id']: [], i2['id']: []}
    rows = {}
    durations = (10, 60, 300, 300, 300, 600, 900, 3600)

    def window(who, start, dur):
        avg = rng.randrange(0, 10 ** 6) / 7 ** 7
        rec = {'instance': who['id'], 'uuid': who['uuid'], 'start': start, 'duration': dur,
               'readings': rng.randrange(0, 31), 'expected': 30, 'vcpus': who['vcpus'],
               'memory_mib': rng.choice((who['memory_mib'], 4 * who['memory_mib'], None)),
               'cpu_cores_avg': avg / who['vcpus'] / 10, 'cpu_cores_max': avg / who['vcpus'] / 5,
               'memory_source': rng.choice(('balloon', 'rss', None)),
               'disk_read_bytes': rng.choice((None, rng.randrange(0, 2 ** 48))),
               'net_tx_packets': rng.randrange(0, 2 ** 40)}
        return rec

    before = (metric(b, 'cloudbroker_samples_stored_total'),
              metric(b, 'cloudbroker_samples_duplicate_total'),
              metric(b, 'cloudbroker_samples_overlapping_total'))
    totals = [0, 0, 0]
    sent = []
    # The first six batches within 6 hours of the day (dense: many overlaps), the next three
    # over all of it (an instance's windows hours apart: SQLite reads them in separate ranges),
    # the last one of 2,000 windows (hundreds kept per instance, found by their start order).
    for n in range(10):
        hours = 6 if n < 6 else 24
        batch = []
        for _ in range(2000 if n == 9 else rng.choice((1, 7, 40, 250))):
            if sent and rng.random() < 0.2:
                rec = dict(rng.choice(sent))  # a repeat, perhaps with other figures
                rec['net_tx_packets'] = rng.randrange(0, 2 ** 40)
            else:
                dur = rng.choice(durations)
                start = day + rng.randrange(0, hours * 3600 // dur) * dur
                rec = window(rng.choice((i1, i2)), start, dur)
            batch.append(rec)
        sent += batch
        want = {'stored': 0, 'duplicates': 0, 'unowned': 0, 'host': 0, 'overlapping': 0,
                'unowned_dropped': 0, 'rejected': []}
        for k, w in enumerate(batch):
            st, du, have = w['start'], w['duration'], kept[w['instance']]
            hits = sorted((s, d) for s, d in have if st - 3600 < s < st + du and s + d > st)
            if not hits:
                have.append((st, du))
                rows[(w['instance'], st)] = w
                want['stored'] += 1
            elif hits[0] == (st, du):
                want['duplicates'] += 1
            else:
                want['overlapping'] += 1
                os_, od = hits[0]
                if len(want['rejected']) < 100:
                    want['rejected'].append({
                        'code': 'overlapping_window', 'field': f'/instances/{k}/start',
                        'message': f'record {k}: the window [{st}, {st + du}) of instance '
                                   f'{w["instance"]} overlaps the stored window [{os_}, '
                                   f'{os_ + od}): not stored, its seconds would count twice'})
        r = b.post('/v1/samples', {'instances': batch}, token=token)
        ck.eq((r.status, r.json()), (200, want), f'random batch {n} of {len(batch)} windows: '
              f'the answer worked out window by window')
        for j, key in enumerate(('stored', 'duplicates', 'overlapping')):
            totals[j] += want[key]
    after = (metric(b, 'cloudbroker_samples_stored_total'),
             metric(b, 'cloudbroker_samples_duplicate_total'),
             metric(b, 'cloudbroker_samples_overlapping_total'))
    ck.eq([a - c for a, c in zip(after, before)], totals, '/metrics counted the same')
    con = db_connect(b.db_path)
    got = con.execute('SELECT instance_id, start, host_id, duration, readings, expected, vcpus,'
                      ' memory_mib, cpu_avg, cpu_max, mem_source, disk_rd_bytes, disk_wr_bytes,'
                      ' net_tx_pkts FROM samples WHERE start >= ? AND start < ?'
                      ' ORDER BY instance_id, start', (day, day + 86400)).fetchall()
    host = con.execute('SELECT host_id FROM instances WHERE id = ?', (i1['id'],)).fetchone()[0]
    con.close()
    want_rows = []
    for (iid, st), w in sorted(rows.items()):
        who = i1 if iid == i1['id'] else i2
        mem = w['memory_mib']
        want_rows.append((iid, st, host, w['duration'], w['readings'], w['expected'],
                          w['vcpus'], None if mem is None else min(mem, who['memory_mib']),
                          w['cpu_cores_avg'], w['cpu_cores_max'], w['memory_source'],
                          w['disk_read_bytes'], None, w['net_tx_packets']))
    ck.eq([tuple(x) for x in got], want_rows,
          f'the {len(want_rows)} windows stored, each value as sent (memory capped at the '
          f'allocation), the first arrival kept')
    ck.ok(totals[0] > 50 and totals[1] > 10 and totals[2] > 10,
          f'the batches had stored windows, duplicates and overlaps ({totals})')
    return got


def concurrent_batches(ck, b, agent, inst, tok_dept, day):
    """Batches of one host at once, on the broker's threads and, on PostgreSQL, on two brokers
    of one database (there each batch runs beside the other hosts' batches, under a lock of its
    host, and only its audit record and commit are serialized): of windows of one instance that
    overlap each other, exactly one is stored, whichever batch and broker wins; the other host's
    batches and other writes go on meanwhile; the audit chain verifies, one record per batch.
    Days from @day back, which nothing else in this test reads."""
    targets, second = [b], None
    if cbtest.BACKEND == 'postgresql':
        state = tempfile.mkdtemp(prefix='cbtest-ingest-b2-')
        shutil.copy2(os.path.join(b.state_dir, 'audit.key'), os.path.join(state, 'audit.key'))
        second = Broker(state_dir=state, extra_args=['--database', b.db_path, '--node', 'ingest-b2'],
                        pass_backend=False)
        targets.append(second.start())
    _, tok_auditor = b.make_account('auditor-ingest', 'auditor')
    i1, i3 = inst['i1'], inst['i3']
    # (offset, duration) in the hour: six windows of different starts that all hold :29:55
    shapes = ((0, 3600), (900, 900), (1200, 600), (1500, 300), (1740, 60), (1790, 10))
    spacing, n_win, rounds, per = 3600, 20, 4, len(shapes)
    answers, lock = [], threading.Lock()

    def window(who, start, dur):
        return {'instance': who['id'], 'uuid': who['uuid'], 'start': start, 'duration': dur,
                'readings': EXPECTED, 'expected': EXPECTED}

    def post(target, token, path, body, what):
        r = target.post(path, body, token=token)
        with lock:
            answers.append((what, r.status, r.json() if r.status in (200, 201) else r.body))

    con = db_connect(b.db_path)
    audit_before = con.execute("SELECT count(*) FROM audit WHERE action = 'samples.ingest'"
                               ).fetchone()[0]
    con.close()
    try:
        for k in range(rounds):
            base = day - k * 86400
            threads = []
            # Batch j: i1's windows in hour m of shape j: window m of each batch overlaps window m
            # of every other batch (no key in common), and no other window.
            for j in range(per):
                off, dur = shapes[j]
                batch = [window(i1, base + m * spacing + off, dur) for m in range(n_win)]
                threads.append(threading.Thread(target=post, args=(
                    targets[j % len(targets)], agent['h1'], '/v1/samples', {'instances': batch},
                    ('h1', k))))
            batch = [window(i3, base + m * WIN, WIN) for m in range(n_win)]
            threads.append(threading.Thread(target=post, args=(
                targets[-1], agent['h2'], '/v1/samples', {'instances': batch}, ('h2', k))))
            threads.append(threading.Thread(target=post, args=(
                targets[0], tok_dept, '/v1/systems', {'name': f'conc-{k}', 'category': 'website'},
                ('system', k))))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        if second:
            second.stop()
            shutil.rmtree(second.state_dir, ignore_errors=True)

    ck.eq(sorted(set(status for _, status, _ in answers)), [200, 201],
          f'{len(answers)} concurrent calls answered 200 (batches) and 201 (systems): '
          f'{[a for a in answers if a[1] not in (200, 201)][:1]}')
    answers = [a if a[1] in (200, 201) else (a[0], a[1], {}) for a in answers]
    for k in range(rounds):
        mine = [a for what, _, a in answers if what == ('h1', k)]
        total = {key: sum(a.get(key, 0) for a in mine) for key in ('stored', 'duplicates', 'overlapping')}
        ck.eq(total, {'stored': n_win, 'duplicates': 0, 'overlapping': (per - 1) * n_win},
              f'round {k}: {per} batches of one host at once on {len(targets)} broker(s): each '
              f'window stored once, the others refused as overlapping')
        other = [a for what, _, a in answers if what == ('h2', k)]
        ck.eq([a.get('stored') for a in other], [n_win], f"round {k}: the other host's batch stored")
    con = db_connect(b.db_path)
    rows = con.execute('SELECT start FROM samples WHERE instance_id = ? AND start >= ?'
                       ' AND start < ? ORDER BY start',
                       (i1['id'], day - rounds * 86400, day + 86400)).fetchall()
    audit_after = con.execute("SELECT count(*) FROM audit WHERE action = 'samples.ingest'"
                              ).fetchone()[0]
    con.close()
    slots = sorted((r[0] - (day - k * 86400)) // spacing
                   for r in rows for k in range(rounds)
                   if 0 <= r[0] - (day - k * 86400) < n_win * spacing)
    ck.eq((len(rows), slots), (rounds * n_win, sorted(list(range(n_win)) * rounds)),
          'one stored window of i1 per overlapping group, none more')
    ck.eq(audit_after - audit_before, rounds * (per + 1), 'one samples.ingest audit record per batch')
    r = b.get('/v1/audit/verify', token=tok_auditor)
    ck.ok(r.status == 200 and r.json().get('ok') is True, f'GET /v1/audit/verify is ok ({r!r})')


def key_taken_beside(ck, b, token, who, day):
    """PostgreSQL: the batch's windows go into samples by one COPY without ON CONFLICT (the
    overlap check and the host's lock leave their keys free). A key taken all the same, by a
    transaction of its own that commits while the COPY waits for it, makes the batch go
    through INSERT ... ON CONFLICT instead: that window is a duplicate, the other stored."""
    start = day + 7200
    holder = subprocess.Popen(['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d',
                               b.db_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    holder.stdin.write('BEGIN; INSERT INTO samples(instance_id, start, host_id, duration,'
                       f' readings, expected) SELECT id, {start}, host_id, 300, 30, 30'
                       f" FROM instances WHERE id = {who['id']}; SELECT 'held';\n")
    holder.stdin.flush()
    ck.eq(holder.stdout.readline().strip(), 'held', "another transaction holds the window's key")
    answer = []
    batch = [{'instance': who['id'], 'uuid': who['uuid'], 'start': t, 'duration': 300,
              'readings': EXPECTED, 'expected': EXPECTED} for t in (start, start + 300)]
    t = threading.Thread(target=lambda: answer.append(
        b.post('/v1/samples', {'instances': batch}, token=token)))
    t.start()
    deadline, waiting = time.monotonic() + 15, '0'
    while waiting == '0' and time.monotonic() < deadline:
        time.sleep(0.05)
        waiting = cbtest.psql(b.db_path, "SELECT count(*) FROM pg_stat_activity WHERE"
                                         " wait_event_type = 'Lock' AND query LIKE 'COPY samples%'")
    ck.eq(waiting, '1', "the batch's COPY waits for the key")
    holder.stdin.write('COMMIT;\n')
    holder.stdin.close()
    holder.wait(10)
    t.join(20)
    r = answer[0] if answer else None
    got = r and (r.status, [r.json().get(k) for k in ('stored', 'duplicates', 'overlapping')])
    ck.eq(got, (200, [1, 1, 0]),
          'the window whose key was taken is a duplicate, the other stored')
    ck.eq(cbtest.psql(b.db_path, f"SELECT count(*) FROM samples WHERE instance_id = {who['id']}"
                                 f' AND start >= {start} AND start < {start + 600}'), '2',
          'both windows are in samples, once each')


def day_partitions(ck, b, day, rows):
    """PostgreSQL (migration 16): the samples are partitioned by UTC day. The metering loop
    makes the partitions and moves the windows that waited in samples_default into theirs; the
    retention drops the partitions of days wholly past it, and deletes the rest."""
    def partition(t):
        return 'samples_' + time.strftime('%Y%m%d', time.gmtime(t))

    def select(sql, params=()):
        con = db_connect(b.db_path)
        try:
            return [tuple(r) for r in con.execute(sql, params).fetchall()]
        finally:
            con.close()

    def wait(what, sql, want, params=()):
        deadline = time.monotonic() + 30
        while select(sql, params) != want and time.monotonic() < deadline:
            time.sleep(0.2)
        return ck.eq(select(sql, params), want, what)

    b.stop()
    b.start()  # the loop's first pass runs at once
    wait('the windows that waited in samples_default moved to their day partitions',
         'SELECT count(*) FROM samples_default', [(0,)])
    today = int(time.time()) // 86400 * 86400
    for t in (day, today - 86400, today, today + 86400):
        ck.eq(select('SELECT to_regclass(?)::text', (partition(t),)), [(partition(t),)],
              f'the partition {partition(t)} exists')
    ck.eq(select('SELECT DISTINCT tableoid::regclass::text FROM samples WHERE start >= ?'
                 ' AND start < ?', (day, day + 86400)), [(partition(day),)],
          "the random batches' windows are in their day's partition")
    ck.eq(select('SELECT instance_id, start, host_id, duration, readings, expected, vcpus,'
                 ' memory_mib, cpu_avg, cpu_max, mem_source, disk_rd_bytes, disk_wr_bytes,'
                 ' net_tx_pkts FROM samples WHERE start >= ? AND start < ?'
                 ' ORDER BY instance_id, start', (day, day + 86400)), [tuple(r) for r in rows],
          'the same rows after the move')

    # Retention (35 days): a day 40 days back with its own partition goes whole; a window of
    # a day without one (in samples_default) is deleted; the kept days stay.
    b.stop()
    old = today - 40 * 86400
    iid, host = rows[0][0], rows[0][2]
    con = db_connect(b.db_path, write=True)
    con.execute('SELECT samples_partition(?)', (old,))
    for t in (old, old + 300, old - 86400):
        con.execute('INSERT INTO samples(instance_id, start, host_id, duration, readings,'
                    ' expected) VALUES (?, ?, ?, 300, 30, 30)', (iid, t, host))
    con.close()
    ck.eq(select('SELECT tableoid::regclass::text, count(*) FROM samples WHERE start < ?'
                 ' GROUP BY 1 ORDER BY 1', (old + 86400,)),
          [(partition(old), 2), ('samples_default', 1)], 'old windows written in the database')
    b.start()
    wait('the retention dropped the old day partition',
         'SELECT to_regclass(?)::text', [(None,)], (partition(old),))
    wait('and deleted the old window of samples_default',
         'SELECT count(*) FROM samples WHERE start < ?', [(0,)], (today - 35 * 86400,))
    ck.eq(select('SELECT count(*) FROM samples WHERE start >= ? AND start < ?',
                 (day, day + 86400)), [(len(rows),)], 'the days kept are kept')


if __name__ == '__main__':
    main()
