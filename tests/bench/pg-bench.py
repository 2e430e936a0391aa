#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL benchmark (issue 11): the same loads on three set-ups in one run, printed side by
side — SQLite (one broker), PostgreSQL with one broker, PostgreSQL with two brokers on one
database (the clients spread over both):

  (a) API: durable writes (POST /v1/systems, N keep-alive client threads for BENCH_SECONDS) and
      GET latency (GET /v1/requests?limit=50, N threads);
  (b) ingest: windows stored per second through POST /v1/samples (batches of INGEST_BATCH
      windows, one client thread per host), and on PostgreSQL a bare COPY of the very same rows
      into the same samples table through psql (the reference of the issue's goal).

It starts its own throw-away PostgreSQL 15 (tools/pg-cluster.sh, made durable: fsync and
synchronous_commit on, as SQLite's synchronous=FULL is), loopback and Unix sockets only, and
removes everything it made when it ends, fails or is interrupted. Python standard library only.
Prints PASS or MISS for the issue's goals and exits 0 either way (1 when something failed to
run). See README.md ("PostgreSQL: pg-bench.py")."""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import meterlib  # noqa: E402
from meterlib import log, die, env_int, median, percentile, table  # noqa: E402

SOURCE = meterlib.SOURCE
CLIENTS = env_int('BENCH_CLIENTS', 8)          # API client threads
SECONDS = env_int('BENCH_SECONDS', 10)         # timed write run; the GET run is half of it
HOSTS = env_int('INGEST_HOSTS', 4)             # one agent (client thread) per host
PER_HOST = env_int('INGEST_INSTANCES', 50)     # instances per host
WINDOWS = env_int('INGEST_WINDOWS', 1500)      # 5-minute windows per instance
BATCH = env_int('INGEST_BATCH', 1000)          # windows per POST: the agent's batch_max
SETUPS = os.environ.get('BENCH_SETUPS', 'sqlite,pg1,pg2').split(',')
JSON_OUT = '--json' in sys.argv[1:]
PG_CLUSTER = os.path.join(SOURCE, 'tools', 'pg-cluster.sh')
NAMES = {'sqlite': 'SQLite, 1 broker', 'pg1': 'PostgreSQL, 1 broker',
         'pg2': 'PostgreSQL, 2 brokers'}


def psql(url, sql, stdin=None):
    p = subprocess.run(['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url,
                        '-c', sql], capture_output=True, text=True, stdin=stdin)
    if p.returncode != 0:
        die(f'psql failed: {p.stderr.strip()[-800:]} (in: {sql[:200]})')
    return p.stdout.strip()


def db_url(cluster_url, name):
    return cluster_url.replace('postgresql:///postgres?', f'postgresql:///{name}?')


# ---------------------------------------------------------------- HTTP load


def call(conn, method, path, token, body=None):
    h = {'Authorization': f'Bearer {token}'}
    if body is not None:
        h['Content-Type'] = 'application/json'
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    return r.status, r.read()


def timed_load(ports, seconds, make_request):
    """CLIENTS threads, thread k on ports[k % len(ports)] over one keep-alive connection each,
    each calling make_request(k, n) -> (method, path, token, body, want_status) until the time
    is up. Returns: (ok count, other count, latencies of the ok calls in s, wall s)."""
    lock = threading.Lock()
    res = {'ok': 0, 'bad': 0, 'lat': [], 'errors': []}
    start = threading.Barrier(CLIENTS + 1)
    stop_at = [0.0]

    def worker(k):
        conn = http.client.HTTPConnection('127.0.0.1', ports[k % len(ports)], timeout=60)
        ok = bad = n = 0
        lat = []
        start.wait()
        try:
            while time.monotonic() < stop_at[0]:
                method, path, token, body, want = make_request(k, n)
                n += 1
                t0 = time.monotonic()
                status, data = call(conn, method, path, token, body)
                if status == want:
                    ok += 1
                    lat.append(time.monotonic() - t0)
                else:
                    bad += 1
                    if len(res['errors']) < 3:
                        res['errors'].append(f'{status} {data[:200]!r}')
        except (OSError, http.client.HTTPException) as e:
            res['errors'].append(f'thread {k}: {e}')
        finally:
            conn.close()
        with lock:
            res['ok'] += ok
            res['bad'] += bad
            res['lat'] += lat

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    stop_at[0] = t0 + seconds
    start.wait()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    if res['errors']:
        log(f'  errors: {res["errors"][:3]}')
    return res['ok'], res['bad'], res['lat'], wall


# ---------------------------------------------------------------- ingest bodies


def make_bodies(first_id, count, base):
    """The batches one agent sends for instances first_id.., by window then instance, in the
    agent's format (the same records as meter-load.c makes)."""
    bodies = []
    recs = []
    for w in range(WINDOWS):
        start = base + w * 300
        for i in range(first_id, first_id + count):
            h = (i * 0x9E3779B97F4A7C15 ^ w * 0xC2B2AE3D27D4EB4F) & 0xFFFFFFFFFFFFFFFF
            h ^= h >> 29
            cpu = (h % 1800) / 1000.0
            mem = 256.0 + (h >> 17) % 1500
            d0, d1 = (h >> 3) % 50000000, (h >> 5) % 20000000
            n0, n1 = (h >> 7) % 9000000, (h >> 9) % 3000000
            recs.append(
                f'{{"instance":{i},"uuid":"{meterlib.instance_uuid(i)}","start":{start},'
                f'"duration":300,"readings":30,"expected":30,"vcpus":2,"memory_mib":2048,'
                f'"cpu_cores_avg":{cpu:.6f},"cpu_cores_max":{cpu + ((h >> 11) % 200) / 1000:.6f},'
                f'"memory_used_mib_avg":{mem:.6f},"memory_used_mib_max":'
                f'{mem + (h >> 23) % 64:.6f},"net_rx_bytes":{n0},"net_tx_bytes":{n1},'
                f'"memory_source":"balloon","disk_read_bytes":{d0},"disk_write_bytes":{d1},'
                f'"disk_read_requests":{d0 // 4096},"disk_write_requests":{d1 // 4096},'
                f'"net_rx_packets":{n0 // 1200},"net_tx_packets":{n1 // 1200}}}')
            if len(recs) == BATCH:
                bodies.append(('{"instances":[' + ','.join(recs) + ']}').encode())
                recs = []
    if recs:
        bodies.append(('{"instances":[' + ','.join(recs) + ']}').encode())
    return bodies


def ingest(agents):
    """agents: [(port, token, bodies)], one thread each, all starting together. Returns:
    (stored, duplicates, failed batches, wall s)."""
    lock = threading.Lock()
    res = {'stored': 0, 'dup': 0, 'failed': 0, 'errors': []}
    start = threading.Barrier(len(agents) + 1)

    def worker(port, token, bodies):
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=300)
        stored = dup = failed = 0
        start.wait()
        for body in bodies:
            status, data = call(conn, 'POST', '/v1/samples', token, body)
            if status == 200:
                doc = json.loads(data)
                stored += doc.get('stored', 0)
                dup += doc.get('duplicates', 0)
            else:
                failed += 1
                if len(res['errors']) < 3:
                    res['errors'].append(f'{status} {data[:300]!r}')
        conn.close()
        with lock:
            res['stored'] += stored
            res['dup'] += dup
            res['failed'] += failed

    threads = [threading.Thread(target=worker, args=a) for a in agents]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    if res['errors']:
        log(f'  ingest errors: {res["errors"]}')
    return res['stored'], res['dup'], res['failed'], wall


# ---------------------------------------------------------------- set-ups


def pg_instances(url, host_ids):
    """The rows meterlib.add_instances() writes into SQLite, on PostgreSQL (ids 1..)."""
    now = time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime())
    parts = [f"""DO $$ DECLARE d bigint; s bigint; r bigint; a bigint; acct bigint; BEGIN
INSERT INTO departments(code, name, quota_vcpus, quota_memory_mib, quota_disk_gib,
  quota_instances, created_at, updated_at) VALUES ('bench', 'bench', 1000000, 1000000000,
  1000000, 1000000, '{now}', '{now}') RETURNING id INTO d;
INSERT INTO systems(department_id, name, category, protection_level, status, created_at,
  updated_at) VALUES (d, 'bench', 'website', 2, 'active', '{now}', '{now}') RETURNING id INTO s;
SELECT min(id) INTO acct FROM accounts;"""]
    first = 1
    out = {}
    for h in host_ids:
        last = first + PER_HOST - 1
        parts.append(f"""
INSERT INTO requests(department_id, system_id, kind, state, justification, created_by,
  created_at, updated_at, instances, vcpus, memory_mib, disk_gib) VALUES (d, s, 'new',
  'allocated', 'bench', acct, '{now}', '{now}', {PER_HOST}, {2 * PER_HOST}, {2048 * PER_HOST},
  {10 * PER_HOST}) RETURNING id INTO r;
INSERT INTO allocations(department_id, system_id, request_id, state, vcpus, memory_mib,
  disk_gib, instances, created_at, updated_at) VALUES (d, s, r, 'active', {2 * PER_HOST},
  {2048 * PER_HOST}, {10 * PER_HOST}, {PER_HOST}, '{now}', '{now}') RETURNING id INTO a;
INSERT INTO instances(id, allocation_id, idx, name, uuid, host_id, vcpus, memory_mib, disk_gib,
  max_vcpus, max_memory_mib, image, pool, volume, state, observed_state, observed_at,
  created_at, updated_at)
  SELECT g, a, g - {first}, 'bench-' || g, '00000000-0000-4000-8000-' || lpad(g::text, 12, '0'),
    {h}, 2, 2048, 10, 4, 4096, 'debian-12', 'default', 'bench-' || g || '.qcow2', 'running',
    'running', '{now}', '{now}', '{now}' FROM generate_series({first}, {last}) g;""")
        out[h] = (first, PER_HOST)
        first = last + 1
    parts.append('\nEND $$;')
    psql(url, ''.join(parts))
    return out


class Setup:
    def __init__(self, key, tmp, cluster_url):
        self.key = key
        self.dir = os.path.join(tmp, key)
        os.makedirs(self.dir)
        self.url = None
        self.brokers = []
        self.res = {'setup': NAMES[key]}
        if key != 'sqlite':
            name = f'cbbench_{key}'
            psql(cluster_url, f'CREATE DATABASE {name}')
            self.url = db_url(cluster_url, name)

    def start_brokers(self):
        n = 2 if self.key == 'pg2' else 1
        # The reconciler slowed to once a day: the instances have no domains, and their
        # 'missing' events are not what is measured.
        for k in range(n):
            b = meterlib.BenchBroker(os.path.join(self.dir, f'broker{k}'),
                                     {'lifecycle.json': {'reconcile_seconds': 86400}})
            extra = ['--database', self.url, '--node', f'bench{k}'] if self.url else []
            if k:
                key = os.path.join(b.state, 'audit.key')
                shutil.copy2(os.path.join(self.brokers[0].state, 'audit.key'), key)
                os.chmod(key, 0o600)
            b.extra = extra
            b.start(extra)
            self.brokers.append(b)
        self.ports = [b.port for b in self.brokers]

    def fixtures(self):
        b = self.brokers[0]
        admin = b.admin_token
        dept = meterlib.http_expect(b.port, 'POST', '/v1/departments', 201,
                                    body={'code': 'bench-dept', 'name': 'Bench'},
                                    token=admin)['id']
        self.dept_token = meterlib.http_expect(
            b.port, 'POST', '/v1/accounts', 201,
            body={'name': 'bench-dept-user', 'role': 'department', 'department_id': dept},
            token=admin)['token']
        system = meterlib.http_expect(b.port, 'POST', '/v1/systems', 201,
                                      body={'name': 'Bench portal', 'category': 'website',
                                            'protection_level': 2},
                                      token=self.dept_token)['id']
        for k in range(60):  # something for GET /v1/requests?limit=50 to list
            meterlib.http_expect(b.port, 'POST', '/v1/requests', 201, body={
                'system': system, 'kind': 'new', 'justification': f'bench request {k}',
                'resources': {'instances': [
                    {'vcpus': 2, 'memory_mib': 4096, 'disk_gib': 50, 'image': 'debian-12'}]}},
                token=self.dept_token)
        vendor = b.account('bench-vendor', 'vendor')
        self.hosts = []
        for k in range(HOSTS):
            uri = 'test:///default' + (f'?bench={k}' if k else '')
            self.hosts.append(b.add_host(vendor, f'bench-host-{k}', uri))

    def api(self):
        tag = self.key
        body = '{"name":"bench-%s-%d-%d","category":"other","protection_level":2}'
        ok, bad, lat, wall = timed_load(
            self.ports, SECONDS,
            lambda k, n: ('POST', '/v1/systems', self.dept_token,
                          (body % (tag, k, n)).encode(), 201))
        self.res.update(writes_per_s=ok / wall, writes=ok, write_errors=bad,
                        write_p50_ms=percentile(lat, 50) * 1e3,
                        write_p95_ms=percentile(lat, 95) * 1e3)
        ok, bad, lat, wall = timed_load(
            self.ports, max(1, SECONDS // 2),
            lambda k, n: ('GET', '/v1/requests?limit=50', self.dept_token, None, 200))
        self.res.update(gets_per_s=ok / wall, get_errors=bad,
                        get_p50_ms=percentile(lat, 50) * 1e3,
                        get_p95_ms=percentile(lat, 95) * 1e3)

    def ingest(self, base, pgdir):
        ids = [h for h, _ in self.hosts]
        if self.url:
            ranges = pg_instances(self.url, ids)
        else:
            b = self.brokers[0]
            b.stop()
            ranges = meterlib.add_instances(b.db, ids, PER_HOST)
            b.start()
        agents = []
        for k, (hid, token) in enumerate(self.hosts):
            agents.append((self.ports[k % len(self.ports)], token,
                           make_bodies(ranges[hid][0], PER_HOST, base)))
        brokers = [b.proc.pid for b in self.brokers]
        # Backends of this run's connections come and go little; those that exit during the
        # run are not counted (an underestimate of the server's share, if anything).
        servers = meterlib.pg_pids(pgdir) if self.url else []
        b0, s0 = meterlib.cpu_of(brokers), meterlib.cpu_of(servers)
        stored, dup, failed, wall = ingest(agents)
        self.res.update(ingest_windows=stored, ingest_failed=failed, ingest_s=wall,
                        ingest_per_s=stored / wall,
                        ingest_broker_cpu_us=(meterlib.cpu_of(brokers) - b0) / stored * 1e6,
                        ingest_pg_cpu_us=((meterlib.cpu_of(servers) - s0) / stored * 1e6
                                          if self.url else None))
        rows = HOSTS * PER_HOST * WINDOWS
        if stored != rows or failed:
            die(f'{self.key}: {stored} of {rows} windows stored, {failed} failed batches')

    def copy_reference(self):
        """A bare COPY of the same rows into the same table, the brokers stopped: the rows are
        copied out, the table emptied, and the timed COPY puts them back (one transaction)."""
        path = os.path.join(self.dir, 'samples.copy')
        # COPY ... TO takes no partitioned table (samples on PostgreSQL, migration 16): a query
        psql(self.url, f"\\copy (SELECT * FROM samples) TO '{path}'")
        rows = int(psql(self.url, 'SELECT count(*) FROM samples'))
        psql(self.url, 'TRUNCATE samples')
        psql(self.url, 'CHECKPOINT')
        t0 = time.monotonic()
        psql(self.url, f"\\copy samples FROM '{path}'")
        dt = time.monotonic() - t0
        back = int(psql(self.url, 'SELECT count(*) FROM samples'))
        if back != rows:
            die(f'COPY put back {back} of {rows} rows')
        self.res.update(copy_rows=rows, copy_s=dt, copy_per_s=rows / dt,
                        ingest_over_copy=self.res['ingest_per_s'] / (rows / dt))
        os.unlink(path)

    def stop(self):
        for b in self.brokers:
            b.stop()


def fmt(v, spec):
    return '' if v is None else format(v, spec)


def main():
    tmp, pgdir = meterlib.pg_bench_dirs('cbpgbench-', PG_CLUSTER)
    cluster = None
    setups = []

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    t_begin = time.time()
    load0 = os.getloadavg()
    rc = 0
    try:
        p = subprocess.run([PG_CLUSTER, 'start', pgdir], capture_output=True, text=True)
        if p.returncode:
            die(f'pg-cluster.sh start: {p.stderr.strip()}')
        cluster = p.stdout.strip().splitlines()[-1]
        # The test cluster runs with fsync off; a benchmark against SQLite's synchronous=FULL
        # must commit durably too.
        psql(cluster, 'ALTER SYSTEM SET fsync = on')
        psql(cluster, 'ALTER SYSTEM SET synchronous_commit = on')
        psql(cluster, "ALTER SYSTEM SET shared_buffers = '256MB'")
        psql(cluster, "ALTER SYSTEM SET max_wal_size = '2GB'")
        subprocess.run([PG_CLUSTER, 'restart', pgdir], check=True, capture_output=True)
        log(f'PostgreSQL {psql(cluster, "SHOW server_version")} in {pgdir}: fsync '
            f'{psql(cluster, "SHOW fsync")}, synchronous_commit '
            f'{psql(cluster, "SHOW synchronous_commit")}')
        now = int(time.time())
        base = now - now % 300 - (WINDOWS + 2) * 300
        for key in SETUPS:
            log(f'{NAMES[key]}: brokers, fixtures')
            s = Setup(key, tmp, cluster)
            setups.append(s)
            s.start_brokers()
            s.fixtures()
            log(f'{NAMES[key]}: API writes {SECONDS} s, GETs {max(1, SECONDS // 2)} s, '
                f'{CLIENTS} clients')
            s.api()
            log(f'{NAMES[key]}: ingest of {HOSTS * PER_HOST * WINDOWS} windows')
            s.ingest(base, pgdir)
            s.stop()
            if s.url:
                log(f'{NAMES[key]}: bare COPY of the same rows')
                s.copy_reference()
    except KeyboardInterrupt:
        log('interrupted')
        rc = 130
    finally:
        for s in setups:
            s.stop()
        if cluster:
            subprocess.run([PG_CLUSTER, 'stop', pgdir], capture_output=True)
        if os.environ.get('BENCH_KEEP') != '1':
            shutil.rmtree(tmp, ignore_errors=True)
    if rc:
        sys.exit(rc)

    res = [s.res for s in setups]
    ctx = {'cpus': os.cpu_count(), 'load_before': load0[0], 'load_after': os.getloadavg()[0],
           'seconds': time.time() - t_begin, 'clients': CLIENTS, 'write_seconds': SECONDS,
           'windows': HOSTS * PER_HOST * WINDOWS, 'batch': BATCH, 'agents': HOSTS}
    goals = []
    pg2 = next((r for r in res if r['setup'] == NAMES['pg2']), None)
    if pg2:
        goals = [
            {'goal': 'windows/s through the API, two brokers', 'measured': pg2['ingest_per_s'],
             'target': 100000, 'pass': pg2['ingest_per_s'] >= 100000},
            {'goal': 'API ingest / bare COPY, two brokers', 'measured': pg2['ingest_over_copy'],
             'target': 0.5, 'pass': pg2['ingest_over_copy'] >= 0.5},
        ]
    if JSON_OUT:
        print(json.dumps({'context': ctx, 'results': res, 'goals': goals}, indent=2))
        return
    print()
    print(f'cloudbroker on SQLite and PostgreSQL 15, the same run: {ctx["cpus"]} CPUs, load '
          f'average {ctx["load_before"]:.2f} before, {ctx["load_after"]:.2f} after; '
          f'{CLIENTS} API clients; ingest of {ctx["windows"]:,} windows by {HOSTS} agents, '
          f'{BATCH} per POST')
    print()
    rows = [
        ('durable writes/s (POST /v1/systems, 201)', 'writes_per_s', ',.0f'),
        ('  write latency p50 ms', 'write_p50_ms', '.1f'),
        ('  write latency p95 ms', 'write_p95_ms', '.1f'),
        ('  failed writes (not 201)', 'write_errors', 'd'),
        ('GET /v1/requests?limit=50 per s', 'gets_per_s', ',.0f'),
        ('  GET latency p50 ms', 'get_p50_ms', '.1f'),
        ('  GET latency p95 ms', 'get_p95_ms', '.1f'),
        ('  failed GETs (not 200)', 'get_errors', 'd'),
        ('ingest windows/s (POST /v1/samples)', 'ingest_per_s', ',.0f'),
        ('  brokers CPU us per window', 'ingest_broker_cpu_us', '.1f'),
        ('  PostgreSQL server CPU us per window', 'ingest_pg_cpu_us', '.1f'),
        ('bare COPY of the same rows, rows/s', 'copy_per_s', ',.0f'),
        ('  ingest / bare COPY', 'ingest_over_copy', '.2f'),
    ]
    table([[label] + [fmt(r.get(k), f) for r in res] for label, k, f in rows],
          [''] + [r['setup'] for r in res])
    if goals:
        print()
        table([[g['goal'], f'{g["measured"]:,.2f}', f'>= {g["target"]:,}',
                'PASS' if g['pass'] else 'MISS'] for g in goals],
              ['goal', 'measured', 'target', ''])
    print()
    print(f'(run took {ctx["seconds"]:.0f} s)')


if __name__ == '__main__':
    main()
