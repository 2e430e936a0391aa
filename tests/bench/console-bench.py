#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Console benchmark (issue 8): each page's first render in headless Chromium on loopback, with
1,000 requests, 200 departments and 5,000 instances with a month of usage in the database, and
the bytes of JS and CSS the browser transferred. Root and libvirt are not needed. See README.md
("Console").

The fleet is written straight into the stopped broker's SQLite by assess-bench.py's
write_fleet() (200 departments, 5,000 instances in 600 allocations, each from an allocated
request; a year of daily rollups and 30 days of 5-minute samples), plus 400 requests waiting
for review (submitted, with their history), so 1,000 requests in all. The broker rolls
up the 30 days and runs the assessment (findings), then console-bench.mjs signs in as a
reviewer and as a department, through the console, and for each page times a full load of
its URL (the document, the cached assets, the API calls, until the page's heading is there and
nothing is loading): the median of BENCH_RUNS (3) after one warm-up. The first load of all,
with an empty cache, counts the JS and CSS transferred (encoded bytes, as the broker sent
them: gzip, since Chromium asks for brotli over HTTPS only), the charts' chunk included.

  tests/bench/console-bench.py        (about 10 minutes, 7 GB of temporary disk; figures on
                                       stdout)
  CONSOLE_BENCH_DIR=/var/tmp/cb tests/bench/console-bench.py
                                      keeps the broker's state there, and a second run with the
                                      same folder reuses it (only the pages are timed again)
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

os.environ.setdefault('ASSESS_INSTANCES', '5000')
os.environ.setdefault('ASSESS_DEPARTMENTS', '200')
os.environ.setdefault('ASSESS_SAMPLE_DAYS', '30')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import meterlib  # noqa: E402
from meterlib import log, die  # noqa: E402

spec = importlib.util.spec_from_file_location('assess_bench', os.path.join(HERE, 'assess-bench.py'))
assess = importlib.util.module_from_spec(spec)
spec.loader.exec_module(assess)

SOURCE = meterlib.SOURCE
BUILD = os.environ.get('CB_BUILD_DIR', os.path.join(SOURCE, 'build'))
CONSOLE = os.path.join(BUILD, 'console')
PASSWORD = 'Bench-Console-2026'
REQUESTS = 1000


def add_waiting(db, now):
    """Requests waiting for review (submitted, spread over the last 30 days, one per system in
    turn, with their history) up to REQUESTS in all. Returns: the number of requests."""
    import sqlite3
    con = sqlite3.connect(db)
    cur = con.cursor()
    have = cur.execute('SELECT count(*) FROM requests').fetchone()[0]
    acct = cur.execute('SELECT min(id) FROM accounts').fetchone()[0]
    systems = cur.execute('SELECT id, department_id FROM systems ORDER BY id').fetchall()
    for k in range(max(0, REQUESTS - have)):
        sysid, dept = systems[k % len(systems)]
        at = time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(now - (k * 5183) % (30 * 86400)))
        res = json.dumps({'instances': [{'vcpus': 2, 'memory_mib': 4096, 'disk_gib': 40,
                                         'image': 'debian-12'}]})
        cur.execute("INSERT INTO requests(department_id, system_id, kind, state, justification,"
                    " created_by, created_at, updated_at, instances, vcpus, memory_mib, disk_gib,"
                    " resources) VALUES (?, ?, 'new', 'submitted', '业务扩容 bench', ?, ?, ?, 1, 2,"
                    " 4096, 40, ?)", (dept, sysid, acct, at, at, res))
        rid = cur.lastrowid
        cur.executemany("INSERT INTO request_history(request_id, from_state, to_state, account_id,"
                        " role, comment, at) VALUES (?, ?, ?, ?, 'department', '', ?)",
                        [(rid, None, 'draft', acct, at), (rid, 'draft', 'submitted', acct, at)])
    con.commit()
    n = cur.execute('SELECT count(*) FROM requests').fetchone()[0]
    con.close()
    return n


def set_password(port, admin, account_id):
    link = meterlib.http_expect(port, 'POST', f'/v1/accounts/{account_id}/sign-in-link', 201,
                                body={}, token=admin)
    meterlib.http_expect(port, 'POST', '/v1/password/setup', 204,
                         body={'token': link['token'], 'password': PASSWORD})


def fill(holder, tmp, now, year, today):
    """The fleet written into a new broker's database, rolled up and assessed, the people
    with passwords. Returns: (the page config, the table counts)."""
    broker = meterlib.BenchBroker(tmp, {
        'lifecycle.json': {'reconcile_seconds': 86400},
        'metering.json': {'rollup_interval_seconds': 86400}})
    broker.start(['--console-dir', CONSOLE])
    holder.append(broker)
    vendor = broker.account('bench-vendor', 'vendor')
    reviewer = broker.account('bench-reviewer', 'reviewer')
    hid, _ = broker.add_host(vendor, 'bench-host', 'test:///default')
    broker.stop()
    log(f'writing {assess.INSTANCES} instances in {assess.DEPARTMENTS} departments, a year of '
        f'rollups and {assess.SAMPLE_DAYS} days of samples (directly into SQLite)')
    t0 = time.time()
    first, counts = assess.write_fleet(broker.db, hid, now, year)
    counts['requests'] = add_waiting(broker.db, now)
    log(f'written in {time.time() - t0:.0f} s: {counts}')
    broker.start(['--console-dir', CONSOLE])
    port = broker.port
    admin = broker.admin_token
    log('rolling up the month and running the assessment (findings)')
    for dd in range(assess.SAMPLE_DAYS, 0, -1):
        day = time.strftime('%Y-%m-%d', time.gmtime(today - dd * 86400))
        meterlib.http_expect(port, 'POST', '/v1/metering/rollup', 200, body={'day': day},
                             token=vendor, timeout=600)
    run = meterlib.http_expect(port, 'POST', '/v1/assessment/run', 200, body={},
                               token=reviewer, timeout=600)
    log(f'assessment: {run}')
    # The people: the reviewer and a department account, with passwords.
    acc = meterlib.http_expect(port, 'GET', '/v1/accounts?role=reviewer', 200, token=admin)
    set_password(port, admin, acc['items'][0]['id'])
    dept = meterlib.http_expect(port, 'POST', '/v1/accounts', 201,
                                body={'name': 'bench-dept', 'role': 'department',
                                      'department_id': 1}, token=admin)
    set_password(port, admin, dept['account']['id'])
    alloc = meterlib.http_expect(port, 'GET', '/v1/allocations?department=1&limit=1', 200,
                                 token=reviewer)['items'][0]['id']
    finding = meterlib.http_expect(port, 'GET', '/v1/findings?limit=1', 200,
                                   token=reviewer)['items']
    cfg = {'base': f'http://127.0.0.1:{port}', 'password': PASSWORD,
           'reviewer': 'bench-reviewer', 'department': 'bench-dept', 'allocation': alloc,
           'finding': finding[0]['id'] if finding else None,
           'request': counts['requests'], 'year': year,
           'month': time.strftime('%Y-%m', time.gmtime(now))}
    return cfg, counts


def main():
    if not os.path.exists(os.path.join(CONSOLE, 'index.html')):
        die(f'the console is not built in {CONSOLE}')
    chromium = shutil.which('chromium')
    if not chromium:
        die('chromium is not installed')
    keep = os.environ.get('CONSOLE_BENCH_DIR')
    tmp = keep or meterlib.tmpdir('cbconsole-bench-')
    ready_state = bool(keep) and os.path.exists(os.path.join(tmp, 'bench-ready.json'))
    broker = None
    holder = []
    now = int(time.time())
    year = time.gmtime(now).tm_year - 1
    today = now - now % 86400
    try:
        if ready_state:
            broker = meterlib.BenchBroker.__new__(meterlib.BenchBroker)
            broker.dir, broker.state = tmp, os.path.join(tmp, 'state')
            broker.policies = os.path.join(tmp, 'policies')
            broker.proc, broker.port = None, None
            broker.log_path = os.path.join(tmp, 'broker.log')
            broker.exe = os.path.join(tmp, 'cloudbrokerd')
            shutil.copy2(meterlib.BROKERD, broker.exe)
            broker.start(['--console-dir', CONSOLE])
            with open(os.path.join(tmp, 'bench-ready.json')) as f:
                cfg = json.load(f)
            cfg['base'] = f'http://127.0.0.1:{broker.port}'
            counts = cfg.pop('counts')
        else:
            cfg, counts = fill(holder, tmp, now, year, today)
            if keep:
                with open(os.path.join(tmp, 'bench-ready.json'), 'w') as f:
                    json.dump(dict(cfg, counts=counts), f)
        cfg['runs'] = int(os.environ.get('BENCH_RUNS', '3'))
        cfg_path = os.path.join(tmp, 'bench.json')
        with open(cfg_path, 'w') as f:
            json.dump(cfg, f)
        log('timing the pages in headless Chromium')
        p = subprocess.run(['node', os.path.join(HERE, 'console-bench.mjs'), cfg_path],
                           env=dict(os.environ, CB_SOURCE_DIR=SOURCE), timeout=1800)
        if p.returncode != 0:
            die(f'console-bench.mjs exited with {p.returncode}')
        print(f'\nfleet: {counts}')
    finally:
        for b in [broker] + holder:
            if b:
                b.stop()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
