#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Metering and assessment at scale on SQLite and PostgreSQL (issue 11), side by side:

  day:  DAY_INSTANCES (100,000) running instances with one UTC day of 5-minute samples (288
        each, 28.8 million rows): POST /v1/metering/rollup for that day, then the findings
        run, POST /v1/assessment/run (goal < 60 s each);
  year: YEAR_INSTANCES (20,000) instances with a year of daily rollups (7.3 million rows):
        GET /v1/reports/assessment?year=LAST_YEAR (json; goal < 10 s).

The same rows go into both backends, written by the same SQL (doubles computed as doubles on
both, so the stored figures are bit for bit the same): SQLite's with the broker stopped, through
Python's sqlite3; PostgreSQL's by psql, on the server (recursive CTEs, no rows through the
client), the foreign-key triggers off while loading (session_replication_role = replica). Each
call is timed through the real broker's API: wall time, the broker's CPU, the PostgreSQL
server's CPU (the postmaster and its children), the broker's peak RSS (VmHWM, reset before each
call). The answers are compared between the backends: the day's rollups row for row, the
findings, the annual report's JSON.

Starts its own PostgreSQL 15 (tools/pg-cluster.sh, made durable as pg-bench.py does) and removes
it, the brokers and the temporary folders when it ends, fails or is interrupted. Python standard
library only. See README.md ("PostgreSQL at scale: pg-scale-bench.py")."""
import calendar
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import meterlib  # noqa: E402
from meterlib import log, die, env_int, table  # noqa: E402

DAY_INSTANCES = env_int('DAY_INSTANCES', 100000)
YEAR_INSTANCES = env_int('YEAR_INSTANCES', 20000)
PER_ALLOC = 100                     # instances per allocation (and per system)
DEPARTMENTS = 20
BACKENDS = os.environ.get('BENCH_BACKENDS', 'sqlite,pg').split(',')
PARTS = os.environ.get('BENCH_PARTS', 'day,year').split(',')
PG_CLUSTER = os.path.join(meterlib.SOURCE, 'tools', 'pg-cluster.sh')
NAMES = {'sqlite': 'SQLite', 'pg': 'PostgreSQL'}
# BENCH_PG_STATEMENTS=1: pg_stat_statements on, and after each call on PostgreSQL the statements
# that took the most of the server's time during it.
PG_STATEMENTS = os.environ.get('BENCH_PG_STATEMENTS') == '1'
ID0 = 1000                          # first id of the departments, systems, requests, allocations


def F(x):
    """@x as a double on both backends (PostgreSQL would compute 1/1000.0 in numeric)."""
    return f'CAST({x} AS DOUBLE PRECISION)'


def psql(url, sql=None, path=None):
    args = ['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url]
    args += ['-f', path] if path else ['-c', sql]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        die(f'psql failed: {p.stderr.strip()[-800:]} (in: {(sql or path)[:200]})')
    return p.stdout.strip()


# ---------------------------------------------------------------- the rows, as SQL


def iso(t):
    return time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(t))


def fleet_sql(n, host_id, created, acct):
    """Departments, systems, requests, allocations (PER_ALLOC instances each, production) and
    @n running instances (ids 1..n, 4 vCPUs, 8 GiB) as the workflow leaves them."""
    c = f"'{created}'"
    n_alloc = (n + PER_ALLOC - 1) // PER_ALLOC
    depts = ', '.join(f"({ID0 + d}, 'd{d:03d}', '第{d + 1}局 department {d + 1}', 1000000,"
                      f" 1000000000, 1000000, 1000000, {c}, {c})" for d in range(DEPARTMENTS))
    systems = ', '.join(f"({ID0 + a}, {ID0 + a % DEPARTMENTS}, '系统 system {a}', 'website', 2,"
                        f" 'active', {c}, {c})" for a in range(n_alloc))
    reqs = ', '.join(f"({ID0 + a}, {ID0 + a % DEPARTMENTS}, {ID0 + a}, 'new', 'allocated',"
                     f" 'bench', {acct}, {c}, {c}, {PER_ALLOC}, {4 * PER_ALLOC},"
                     f" {8192 * PER_ALLOC}, {20 * PER_ALLOC})" for a in range(n_alloc))
    allocs = ', '.join(f"({ID0 + a}, {ID0 + a % DEPARTMENTS}, {ID0 + a}, {ID0 + a}, 'active',"
                       f" 'production', {4 * PER_ALLOC}, {8192 * PER_ALLOC}, {20 * PER_ALLOC},"
                       f" {PER_ALLOC}, {c}, {c})" for a in range(n_alloc))
    return f"""
INSERT INTO departments(id, code, name, quota_vcpus, quota_memory_mib, quota_disk_gib,
  quota_instances, created_at, updated_at) VALUES {depts};
INSERT INTO systems(id, department_id, name, category, protection_level, status, created_at,
  updated_at) VALUES {systems};
INSERT INTO requests(id, department_id, system_id, kind, state, justification, created_by,
  created_at, updated_at, instances, vcpus, memory_mib, disk_gib) VALUES {reqs};
INSERT INTO allocations(id, department_id, system_id, request_id, state, purpose, vcpus,
  memory_mib, disk_gib, instances, created_at, updated_at) VALUES {allocs};
UPDATE requests SET allocation_id = id WHERE id >= {ID0};
INSERT INTO instances(id, allocation_id, idx, name, uuid, host_id, vcpus, memory_mib, disk_gib,
  max_vcpus, max_memory_mib, image, pool, volume, state, observed_state, observed_at, created_at,
  updated_at)
  WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n})
  SELECT n, {ID0} + (n - 1) / {PER_ALLOC}, (n - 1) % {PER_ALLOC}, 'cb-' || n,
    '00000000-0000-4000-8000-' || substr(CAST(1000000000000 + n AS TEXT), 2), {host_id}, 4, 8192, 20,
    8, 16384, 'debian-12', 'default', 'cb-' || n || '.qcow2', 'running', 'running', {c}, {c},
    {c} FROM g;
"""


def pg_fix_sequences():
    return ''.join(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}));"
                   for t in ('departments', 'systems', 'requests', 'allocations', 'instances'))


# One window's figures from the instance id (i.id) and the window's number k in the day, by
# class (id % 10): 0-1 idle, 2-4 over-provisioned, 5 under-provisioned, the rest steady.
CLS = 'i.id % 10'
CPU = (f"CASE WHEN {CLS} < 2 THEN {F(0.002)} + {F('(i.id * 7 + k) % 10')} / {F(1000)}"
       f" WHEN {CLS} < 5 THEN {F(0.30)} + {F('(i.id * 13 + k * 7) % 50')} / {F(100)}"
       f" WHEN {CLS} = 5 THEN {F(3.72)} + {F('(i.id + k * 3) % 7')} / {F(100)}"
       f" ELSE {F(4)} * ({F(0.40)} + {F('(i.id * 11 + k * 5) % 30')} / {F(100)}) END")
MEM = (f"{F(8192)} * (CASE WHEN {CLS} BETWEEN 2 AND 4 THEN {F(0.30)}"
       f" WHEN {CLS} = 5 THEN {F(0.93)} ELSE {F(0.70)} END"
       f" + {F('(i.id + k) % 5')} / {F(100)})")
NET = f"CASE WHEN {CLS} < 2 THEN 30000 ELSE 3000000 + ((i.id * 3 + k) % 1000) * 1000 END"


def samples_sql(n, day_start, host_id, lo, hi):
    """The day's 288 windows of instances [lo, hi), in primary-key order."""
    return f"""
INSERT INTO samples(instance_id, start, host_id, duration, readings, expected, vcpus, memory_mib,
  cpu_avg, cpu_max, mem_avg, mem_max, mem_source, disk_rd_bytes, disk_wr_bytes, disk_rd_reqs,
  disk_wr_reqs, net_rx_bytes, net_tx_bytes, net_rx_pkts, net_tx_pkts)
  WITH RECURSIVE w(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM w WHERE k < 287),
  v AS (SELECT i.id AS id, k, {CPU} AS cpu, {MEM} AS mem, {NET} AS net
    FROM instances i CROSS JOIN w WHERE i.id >= {lo} AND i.id < {hi})
  SELECT id, {day_start} + k * 300, {host_id}, 300, 30, 30, 4, 8192, cpu,
    CASE WHEN cpu * {F(1.1)} + {F(0.005)} > {F(4)} THEN {F(4)}
    ELSE cpu * {F(1.1)} + {F(0.005)} END, mem, mem * {F(1.02)}, 'balloon', 4096, 8192, 1, 2,
    net, net / 2, 3000, 1500 FROM v ORDER BY id, k;
"""


def day_profiles():
    """(class, variant) -> one day's rollup figures, from assess-bench.py's profiles."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('assess_bench',
                                                  os.path.join(HERE, 'assess-bench.py'))
    ab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ab)
    out = []
    for name, (v, m) in ab.SIZE.items():
        for variant in range(7):
            out.append((name, variant) + ab.day_profile(name, v, m, variant))
    return out


def rollups_sql(kind, n, year, computed):
    """Last year's daily rollups of instances 1..n, from precomputed day profiles (class by id
    % 20 as in assess-bench.py), day after day as a city's broker writes them (PostgreSQL's
    heap keeps that order; SQLite's rollups are stored by their key whatever the order)."""
    def blob(b):
        return f"X'{b.hex()}'" if kind == 'sqlite' else f"'\\x{b.hex()}'::bytea"

    profs = ', '.join(f"('{p[0]}', {p[1]}, {p[2]!r}, {p[3]!r}, {p[4]!r}, {blob(p[5])}, {p[6]!r},"
                      f" {p[7]!r}, {p[8]!r}, {blob(p[9])}, {p[10]})" for p in day_profiles())
    y0 = calendar.timegm((year, 1, 1, 0, 0, 0, 0, 0, 0))
    ndays = 366 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 365
    days = ', '.join(f"({d}, '{time.strftime('%Y-%m-%d', time.gmtime(y0 + d * 86400))}')"
                     for d in range(ndays))
    classes = ("CASE i.id % 20 WHEN 0 THEN 'idle' WHEN 1 THEN 'idle' WHEN 7 THEN 'under'"
               " WHEN 8 THEN 'bursty' WHEN 9 THEN 'bursty' WHEN 10 THEN 'lowcov'"
               " ELSE CASE WHEN i.id % 20 BETWEEN 2 AND 6 THEN 'over' ELSE 'steady' END END")
    blob_t = 'BLOB' if kind == 'sqlite' else 'BYTEA'
    real = 'REAL' if kind == 'sqlite' else 'DOUBLE PRECISION'
    return f"""
CREATE TEMP TABLE prof(class TEXT, variant INTEGER, cpu_avg {real}, cpu_p95 {real},
  cpu_max {real}, cpu_hist {blob_t}, mem_avg {real}, mem_p95 {real}, mem_max {real},
  mem_hist {blob_t}, idle INTEGER);
INSERT INTO prof VALUES {profs};
CREATE TEMP TABLE days(n INTEGER PRIMARY KEY, day TEXT);
INSERT INTO days VALUES {days};
INSERT INTO rollups(instance_id, day, windows, readings, expected, coverage, vcpus, memory_mib,
  cpu_avg, cpu_p95, cpu_max, cpu_util_hist, mem_avg, mem_p95, mem_max, mem_util_hist,
  disk_rd_bytes, disk_wr_bytes, disk_rd_reqs, disk_wr_reqs, net_rx_bytes, net_tx_bytes,
  net_rx_pkts, net_tx_pkts, net_rx_bps_p95, net_tx_bps_p95, computed_at, idle_windows,
  idle_checked_windows, duration)
  SELECT i.id, d.day, 288, CASE p.class WHEN 'lowcov' THEN 5760 ELSE 8640 END, 8640,
    CASE p.class WHEN 'lowcov' THEN 0.6667 ELSE 1.0 END, i.vcpus, i.memory_mib, p.cpu_avg,
    p.cpu_p95, p.cpu_max, p.cpu_hist, p.mem_avg, p.mem_p95, p.mem_max, p.mem_hist, 1000000,
    2000000, 300, 600, 90000000, 40000000, 90000, 40000, 2000.0, 1000.0, '{computed}', p.idle,
    288, 300
  FROM instances i CROSS JOIN days d JOIN prof p ON p.class = {classes}
    AND p.variant = (i.id + d.n) % 7
  WHERE i.id <= {n} ORDER BY d.n, i.id;
"""


# ---------------------------------------------------------------- one backend


class Backend:
    """A broker on SQLite (its state folder) or on a database of its own in the cluster."""

    def __init__(self, kind, part, tmp, cluster_url, pgdir, policy):
        self.kind = kind
        self.pgdir = pgdir
        self.url = None
        if kind == 'pg':
            name = f'cbscale_{part}'
            psql(cluster_url, f'CREATE DATABASE {name}')
            self.url = cluster_url.replace('postgresql:///postgres?', f'postgresql:///{name}?')
        if self.url and PG_STATEMENTS:
            psql(self.url, 'CREATE EXTENSION pg_stat_statements')
        self.broker = meterlib.BenchBroker(os.path.join(tmp, f'{kind}-{part}'), policy)
        self.extra = ['--database', self.url] if self.url else []
        self.broker.start(self.extra)

    def load(self, scripts, label, vacuum=False):
        """Runs the SQL @scripts in turn, one transaction each, on the broker's database:
        SQLite's with the broker stopped; PostgreSQL's with psql (the foreign-key triggers
        off), then ANALYZE, or with @vacuum VACUUM ANALYZE (what autovacuum does to a table
        that only grew, in its own time: the visibility map that index-only scans use)."""
        t0 = time.time()
        if self.kind == 'sqlite':
            self.broker.stop()
            con = sqlite3.connect(self.broker.db)
            con.execute('PRAGMA synchronous=OFF')
            con.execute('PRAGMA cache_size=-524288')
            for k, script in enumerate(scripts):
                con.executescript('BEGIN;' + script + 'COMMIT;')
                if len(scripts) > 1:
                    log(f'  {k + 1}/{len(scripts)} in {time.time() - t0:.0f} s')
            con.close()
            self.broker.start(self.extra)
        else:
            path = os.path.join(self.broker.dir, 'load.sql')
            for k, script in enumerate(scripts):
                with open(path, 'w') as f:
                    f.write('SET session_replication_role = replica;\nBEGIN;\n' + script +
                            'COMMIT;\n')
                psql(self.url, path=path)
                if len(scripts) > 1:
                    log(f'  {k + 1}/{len(scripts)} in {time.time() - t0:.0f} s')
            os.unlink(path)
            psql(self.url, 'VACUUM ANALYZE' if vacuum else 'ANALYZE')
        log(f'{NAMES[self.kind]}: {label} in {time.time() - t0:.0f} s')

    def query(self, sql):
        """Rows of @sql as lists of text (SQLite: floats as repr, blobs as hex)."""
        if self.kind == 'sqlite':
            con = sqlite3.connect(f'file:{self.broker.db}?mode=ro', uri=True)
            try:
                return [[v.hex() if isinstance(v, bytes) else
                         '' if v is None else repr(v) if isinstance(v, float) else str(v)
                         for v in row] for row in con.execute(sql)]
            finally:
                con.close()
        out = psql(self.url, sql)
        return [line.split('|') for line in out.splitlines()] if out else []

    def timed(self, method, path, token, body=None):
        """One call; Returns: (figures, answer bytes)."""
        pid = self.broker.proc.pid
        with open(f'/proc/{pid}/clear_refs', 'w') as f:
            f.write('5')  # VmHWM := VmRSS
        servers = meterlib.pg_pids(self.pgdir) if self.url else []
        load = os.getloadavg()[0]
        c0, s0 = meterlib.proc_cpu_seconds(pid), meterlib.cpu_of(servers)
        log_at = os.path.getsize(self.broker.log_path)
        if self.url and PG_STATEMENTS:
            psql(self.url, 'SELECT pg_stat_statements_reset()')
        t0 = time.perf_counter()
        st, data = meterlib.http_call(self.broker.port, method, path, body=body, token=token,
                                      timeout=1800)
        wall = time.perf_counter() - t0
        if st != 200:
            die(f'{NAMES[self.kind]}: {method} {path}: {st} {data[:300]!r}')
        res = {'wall': wall, 'broker_cpu': meterlib.proc_cpu_seconds(pid) - c0,
               'server_cpu': meterlib.cpu_of(servers) - s0 if self.url else None,
               'rss_mib': meterlib.proc_status_kib(pid, 'VmHWM') / 1024, 'load': load}
        # The broker's own split (its log: "... (read 1.23 s, written 4.56 s)").
        with open(self.broker.log_path, 'rb') as f:
            f.seek(log_at)
            m = re.findall(rb'\(read ([0-9.]+) s, written ([0-9.]+) s\)', f.read())
        if m:
            res['read_s'], res['write_s'] = float(m[-1][0]), float(m[-1][1])
        if self.url and PG_STATEMENTS:
            top = psql(self.url, "SELECT round(total_exec_time::numeric / 1000, 2) || ' s, '"
                       " || calls || ' calls, ' || round(mean_exec_time::numeric, 3) || ' ms: '"
                       " || left(regexp_replace(query, '\\s+', ' ', 'g'), 110)"
                       " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
                       " WHERE datname = current_database())"
                       " ORDER BY total_exec_time DESC LIMIT 6")
            log(f'server time by statement during {method} {path}:\n    ' +
                top.replace('\n', '\n    '))
        log(f'{NAMES[self.kind]}: {method} {path}: {wall:.2f} s, broker CPU '
            f'{res["broker_cpu"]:.2f} s, peak RSS {res["rss_mib"]:.0f} MiB (load {load:.2f})')
        return res, data

    def close(self):
        self.broker.stop()
        shutil.rmtree(self.broker.dir, ignore_errors=True)


def tokens(b):
    br = b.broker
    vendor = br.account('bench-vendor', 'vendor')
    hid, _ = br.add_host(vendor, 'bench-host', 'test:///default')
    return {'vendor': vendor, 'reviewer': br.account('bench-reviewer', 'reviewer'),
            'auditor': br.account('bench-auditor', 'auditor'), 'host': hid}


def first_account(b):
    return int(b.query('SELECT min(id) FROM accounts')[0][0])


ROLLUP_COLS = ('instance_id, windows, readings, expected, coverage, vcpus, memory_mib, cpu_avg,'
               ' cpu_p95, cpu_max, mem_avg, mem_p95, mem_max, disk_rd_bytes, disk_wr_bytes,'
               ' net_rx_bytes, net_tx_bytes, net_rx_bps_p95, net_tx_bps_p95, idle_windows,'
               ' idle_checked_windows, duration')


def run_day(kind, tmp, cluster, pgdir, day_start, res, answers):
    n = DAY_INSTANCES
    day = time.strftime('%Y-%m-%d', time.gmtime(day_start))
    # Judged on one day of evidence: the coverage and age rules relaxed, so the run raises,
    # updates and resolves findings for every instance (the time of a real run's writes).
    policy = {'lifecycle.json': {'reconcile_seconds': 86400},
              'metering.json': {'rollup_interval_seconds': 86400},
              'assessment.json': {'evidence': {'min_coverage': 0.0, 'min_age_seconds': 86400}}}
    b = Backend(kind, 'day', tmp, cluster, pgdir, policy)
    try:
        tok = tokens(b)
        created = iso(day_start - 30 * 86400)
        if kind == 'pg':
            psql(b.url, f'SELECT samples_partition({day_start})')
        b.load([fleet_sql(n, tok['host'], created, first_account(b)) +
                (pg_fix_sequences() if kind == 'pg' else '')], f'{n:,} instances written')
        step = 10000
        b.load([samples_sql(n, day_start, tok['host'], lo, min(lo + step, n + 1))
                for lo in range(1, n + 1, step)], f'{n * 288:,} samples of {day} written')
        r, data = b.timed('POST', '/v1/metering/rollup', tok['vendor'], {'day': day})
        if json.loads(data).get('instances') != n:
            die(f'{NAMES[kind]}: rollup answered {data[:300]!r}')
        res['rollup'] = r
        r, data = b.timed('POST', '/v1/assessment/run', tok['reviewer'], {})
        res['run'] = r
        doc = json.loads(data)
        log(f'{NAMES[kind]}: findings run: {doc}')
        r, data = b.timed('POST', '/v1/assessment/run', tok['reviewer'], {})
        res['run2'] = r
        doc2 = json.loads(data)
        answers['rollups'] = b.query(f"SELECT {ROLLUP_COLS}, cpu_util_hist, mem_util_hist"
                                     f" FROM rollups WHERE day = '{day}' ORDER BY instance_id")
        answers['findings'] = b.query(
            'SELECT instance_id, kind, state, rule, frees_vcpus, frees_memory_mib, evidence,'
            ' recommendation FROM findings ORDER BY instance_id, kind')
        for row in answers['findings']:
            # what depends on the time of the run: the window's ends and the coverage to now
            ev = json.loads(row[6])
            for key in ('window', 'expected_from', 'coverage', 'expected_readings'):
                ev.pop(key, None)
            row[6] = json.dumps(ev, sort_keys=True)
            row[7] = json.dumps(json.loads(row[7]), sort_keys=True)
        for d in (doc, doc2):
            d.pop('seconds', None)
        answers['runs'] = [doc, doc2]
    finally:
        b.close()
        if b.url:
            psql(cluster, 'DROP DATABASE cbscale_day')


def run_year(kind, tmp, cluster, pgdir, year, res, answers):
    n = YEAR_INSTANCES
    policy = {'lifecycle.json': {'reconcile_seconds': 86400},
              'metering.json': {'rollup_interval_seconds': 86400}}
    b = Backend(kind, 'year', tmp, cluster, pgdir, policy)
    try:
        tok = tokens(b)
        now = int(time.time())
        created = iso(now - 2 * 366 * 86400)
        b.load([fleet_sql(n, tok['host'], created, first_account(b)) +
                (pg_fix_sequences() if kind == 'pg' else '')], f'{n:,} instances written')
        b.load([rollups_sql(kind, n, year, iso(now))],
               f'{n:,} instances x a year of rollups written', vacuum=True)
        rows = int(b.query('SELECT count(*) FROM rollups')[0][0])
        res['rollup_rows'] = rows
        path = f'/v1/reports/assessment?year={year}&format=json'
        for k in range(2):
            r, data = b.timed('GET', path, tok['auditor'])
            res[f'report{k + 1}'] = r
        doc = json.loads(data)
        answers['report'] = doc
    finally:
        b.close()
        if b.url:
            psql(cluster, 'DROP DATABASE cbscale_year')


def strip_times(doc):
    """The report without the fields that name when it was made."""
    if isinstance(doc, dict):
        return {k: strip_times(v) for k, v in doc.items()
                if k not in ('generated_at', 'rollups_computed_at')}
    if isinstance(doc, list):
        return [strip_times(v) for v in doc]
    return doc


def same_json(a, b, path='$'):
    """None when @a and @b are equal, numbers to 1e-9 relative (sums in another order);
    else where they differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f'{path}: keys {sorted(a.keys() ^ b.keys())}'
        for k in a:
            d = same_json(a[k], b[k], f'{path}.{k}')
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f'{path}: {len(a)} items against {len(b)}'
        for k, (x, y) in enumerate(zip(a, b)):
            d = same_json(x, y, f'{path}[{k}]')
            if d:
                return d
        return None
    if (isinstance(a, (int, float)) and isinstance(b, (int, float)) and
            not isinstance(a, bool) and not isinstance(b, bool)):
        return None if abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b)) else f'{path}: {a} != {b}'
    return None if a == b else f'{path}: {a!r} != {b!r}'


def same_rows(a, b):
    """Row lists equal, numbers compared as numbers (text forms differ between backends)."""
    if len(a) != len(b):
        return f'{len(a)} rows against {len(b)}'
    for ra, rb in zip(a, b):
        for va, vb in zip(ra, rb):
            if va == vb:
                continue
            try:
                if float(va) == float(vb):
                    continue
            except ValueError:
                pass
            if va.startswith('\\x') and va[2:] == vb or vb.startswith('\\x') and vb[2:] == va:
                continue
            return f'first difference: {ra} against {rb}'
    return None


def main():
    tmp, pgdir = meterlib.pg_bench_dirs('cbscale-', PG_CLUSTER)
    cluster = None

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    t_begin = time.time()
    load0 = os.getloadavg()
    now = int(time.time())
    # Three days ago: neither yesterday nor today, which the broker rolls up by itself.
    day_start = now - now % 86400 - 3 * 86400
    year = time.gmtime(now).tm_year - 1
    res = {k: {} for k in BACKENDS}
    answers = {k: {} for k in BACKENDS}
    rc = 0
    try:
        if 'pg' in BACKENDS:
            p = subprocess.run([PG_CLUSTER, 'start', pgdir], capture_output=True, text=True)
            if p.returncode:
                die(f'pg-cluster.sh start: {p.stderr.strip()}')
            cluster = p.stdout.strip().splitlines()[-1]
            # Durable, as SQLite's synchronous=FULL (pg-bench.py), with room for big loads.
            for sql in ('ALTER SYSTEM SET fsync = on', 'ALTER SYSTEM SET synchronous_commit = on',
                        "ALTER SYSTEM SET shared_buffers = '512MB'",
                        "ALTER SYSTEM SET max_wal_size = '8GB'",
                        "ALTER SYSTEM SET work_mem = '64MB'") + (
                            ("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'",)
                            if PG_STATEMENTS else ()):
                psql(cluster, sql)
            subprocess.run([PG_CLUSTER, 'restart', pgdir], check=True, capture_output=True)
            log(f'PostgreSQL {psql(cluster, "SHOW server_version")} in {pgdir}')
        for part in PARTS:
            for kind in BACKENDS:
                log(f'{NAMES[kind]}: {part}')
                if part == 'day':
                    run_day(kind, tmp, cluster, pgdir, day_start, res[kind], answers[kind])
                else:
                    run_year(kind, tmp, cluster, pgdir, year, res[kind], answers[kind])
    except KeyboardInterrupt:
        log('interrupted')
        rc = 130
    finally:
        if cluster:
            subprocess.run([PG_CLUSTER, 'stop', pgdir], capture_output=True)
        shutil.rmtree(pgdir, ignore_errors=True)
        if os.environ.get('BENCH_KEEP') != '1':
            shutil.rmtree(tmp, ignore_errors=True)
    if rc:
        sys.exit(rc)

    checks = []
    if len(BACKENDS) == 2:
        a, b = answers['sqlite'], answers['pg']
        if 'day' in PARTS:
            d = same_rows(a['rollups'], b['rollups'])
            checks.append(('the day\'s rollups, row for row', d))
            d = same_rows(a['findings'], b['findings'])
            checks.append((f'the findings ({len(a["findings"]):,})', d))
            checks.append(('the findings runs\' answers',
                           None if a['runs'] == b['runs'] else f'{a["runs"]} against {b["runs"]}'))
        if 'year' in PARTS:
            checks.append(('the annual report (json, but its times; numbers to 1e-9)',
                           same_json(strip_times(a['report']), strip_times(b['report']))))

    print()
    print(f'Metering and assessment at scale, SQLite and PostgreSQL 15 in the same run: '
          f'{os.cpu_count()} CPUs, load average {load0[0]:.2f} at the start')
    print(f'  day:  {DAY_INSTANCES:,} running instances x 288 five-minute windows = '
          f'{DAY_INSTANCES * 288:,} samples of {time.strftime("%Y-%m-%d", time.gmtime(day_start))}')
    print(f'  year: {YEAR_INSTANCES:,} instances x a year ({year}) of daily rollups')
    print()
    calls = [('rollup', 'POST /v1/metering/rollup (the day)'),
             ('run', 'POST /v1/assessment/run (first: creates)'),
             ('run2', 'POST /v1/assessment/run (again: updates)'),
             ('report1', f'GET /v1/reports/assessment?year={year} (json)'),
             ('report2', '  the same again')]
    rows = []
    for key, label in calls:
        if not any(key in res[k] for k in BACKENDS):
            continue
        for fig, name, spec in (('wall', 'wall s', '.2f'), ('broker_cpu', 'broker CPU s', '.2f'),
                                ('server_cpu', 'PostgreSQL CPU s', '.2f'),
                                ('read_s', '  of which reading s', '.2f'),
                                ('write_s', '  of which writing s', '.2f'),
                                ('rss_mib', 'broker peak RSS MiB', '.0f'),
                                ('load', 'load average before', '.2f')):
            row = [label if fig == 'wall' else '', name]
            for k in BACKENDS:
                v = res[k].get(key, {}).get(fig)
                row.append('' if v is None else format(v, spec))
            if any(row[2:]):
                rows.append(row)
    table(rows, ['call', ''] + [NAMES[k] for k in BACKENDS])
    print()
    goals = []
    for k in BACKENDS:
        r = res[k]
        if 'rollup' in r:
            goals.append([f'{NAMES[k]}: daily rollup, {DAY_INSTANCES:,} instances',
                          f'{r["rollup"]["wall"]:.2f} s', '< 60 s',
                          'PASS' if r['rollup']['wall'] < 60 else 'MISS'])
            goals.append([f'{NAMES[k]}: findings run, {DAY_INSTANCES:,} instances',
                          f'{r["run"]["wall"]:.2f} s', '< 60 s',
                          'PASS' if r['run']['wall'] < 60 else 'MISS'])
        if 'report1' in r:
            goals.append([f'{NAMES[k]}: annual assessment, {YEAR_INSTANCES:,} instances',
                          f'{r["report1"]["wall"]:.2f} s', '< 10 s',
                          'PASS' if r['report1']['wall'] < 10 else 'MISS'])
    table(goals, ['goal', 'measured', 'target', ''])
    if checks:
        print()
        table([[what, 'same' if d is None else f'DIFFERENT: {d[:200]}'] for what, d in checks],
              ['answers on SQLite and PostgreSQL', ''])
    print()
    print(f'(run took {time.time() - t_begin:.0f} s; load average now {os.getloadavg()[0]:.2f})')
    if os.environ.get('BENCH_ANSWERS'):
        with open(os.environ['BENCH_ANSWERS'], 'w') as f:
            json.dump(answers, f)
    if os.environ.get('BENCH_JSON'):
        with open(os.environ['BENCH_JSON'], 'w') as f:
            json.dump(res, f, indent=2)
    if any(d is not None for _, d in checks):
        sys.exit(1)


if __name__ == '__main__':
    main()
