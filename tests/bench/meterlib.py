# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the metering benchmarks (collect-bench.py, ingest-bench.py,
rollup-bench.py). Standard library only.

- a loopback HTTP sink that answers every POST with 200 (stands in for the broker),
- a process's CPU time and memory from /proc,
- percentiles and the side-by-side table,
- a cloudbrokerd in a temporary state folder with a vendor, hosts and their agent tokens, and
  instance rows written straight into its SQLite while it is stopped."""
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('CB_SOURCE_DIR', os.path.abspath(os.path.join(HERE, '..', '..')))
BUILD = os.environ.get('CB_BUILD_DIR', os.path.join(SOURCE, 'build'))
BROKERD = os.path.join(BUILD, 'broker', 'cloudbrokerd')
AGENT = os.path.join(BUILD, 'agent', 'cloudbroker-agent')
METER_LOAD = os.path.join(BUILD, 'tests', 'bench', 'meter-load')
TICKS = os.sysconf('SC_CLK_TCK')


def log(msg):
    print(f'--- {msg}', file=sys.stderr, flush=True)


def die(msg):
    print(f'bench: {msg}', file=sys.stderr, flush=True)
    sys.exit(1)


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def tmpdir(prefix):
    base = os.environ.get('BENCH_TMPDIR') or None
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(d, 0o755)
    return d


# ---------------------------------------------------------------- statistics


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of @values."""
    v = sorted(values)
    if not v:
        return float('nan')
    k = max(1, -(-len(v) * q // 100))
    return v[int(k) - 1]


def median(values):
    v = sorted(values)
    if not v:
        return float('nan')
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def table(rows, header):
    """Prints @rows (lists of cells) under @header, columns padded."""
    cells = [header] + [[str(c) for c in r] for r in rows]
    width = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, r in enumerate(cells):
        print('  ' + '  '.join(c.rjust(width[i]) if i else c.ljust(width[i])
                               for i, c in enumerate(r)))
        if k == 0:
            print('  ' + '  '.join('-' * w for w in width))


# ---------------------------------------------------------------- /proc


def proc_cpu_seconds(pid):
    """utime + stime of @pid (all its threads), in seconds."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_status_kib(pid, key):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return None


def pg_pids(pgdir):
    """The PostgreSQL server's processes: the postmaster and its children."""
    with open(os.path.join(pgdir, 'data', 'postmaster.pid')) as f:
        main_pid = int(f.readline())
    pids = [main_pid]
    for d in os.listdir('/proc'):
        if d.isdigit():
            try:
                with open(f'/proc/{d}/stat') as f:
                    if int(f.read().rsplit(')', 1)[1].split()[1]) == main_pid:
                        pids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def cpu_of(pids):
    """The CPU seconds of @pids together (those gone are left out)."""
    total = 0.0
    for pid in pids:
        try:
            total += proc_cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            pass
    return total


def pg_bench_dirs(prefix, pg_cluster):
    """Checks that psql, @pg_cluster (tools/pg-cluster.sh) and cloudbrokerd are there.
    Returns: (a new temporary folder, a path in /tmp for the cluster that does not exist yet)."""
    for tool in ('psql', pg_cluster, BROKERD):
        if not shutil.which(tool) and not os.access(tool, os.X_OK):
            die(f'{tool} not found (ninja -C build; apt-get install postgresql-15)')
    tmp = tmpdir(prefix)
    pgdir = tempfile.mkdtemp(prefix='cbpg.', dir='/tmp')
    os.rmdir(pgdir)
    return tmp, pgdir

def reset_peak_rss(pid):
    """Resets the process's VmHWM to its current RSS (Linux: clear_refs 5), so that a later
    VmHWM is the peak of what came after. Returns: the VmHWM before the reset, KiB."""
    before = proc_status_kib(pid, 'VmHWM')
    with open(f'/proc/{pid}/clear_refs', 'w') as f:
        f.write('5')
    return before


# ---------------------------------------------------------------- the sink


class _SinkHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def do_POST(self):
        n = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(n)
        self.server.posts += 1
        self.server.bytes += len(body)
        out = b'{"stored":0,"duplicates":0,"unowned":0,"host":0}'
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


class Sink:
    """A loopback HTTP server answering 200 to every POST, in a thread of this process."""

    def __init__(self):
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _SinkHandler)
        self.server.daemon_threads = True
        self.server.posts = 0
        self.server.bytes = 0
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}'

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- HTTP


def http_call(port, method, path, body=None, token=None, timeout=120):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    headers = {}
    data = None
    if token:
        headers['Authorization'] = f'Bearer {token}'
    if body is not None:
        data = json.dumps(body).encode()
        headers['Content-Type'] = 'application/json'
    try:
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def http_expect(port, method, path, status, **kw):
    st, data = http_call(port, method, path, **kw)
    if st != status:
        die(f'{method} {path}: got {st}, want {status}: {data[:400]!r}')
    return json.loads(data) if data else None


def wait_http(port, path, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            http_call(port, 'GET', path, timeout=5)
            return
        except OSError:
            time.sleep(0.05)
    die(f'nothing answers on 127.0.0.1:{port}{path} after {seconds}s')


def prom_values(text):
    """{metric name with labels: value} of a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == '#':
            continue
        m = re.match(r'^(\S+?(?:\{.*\})?)\s+(\S+)$', line)
        if m:
            try:
                out[m.group(1)] = float(m.group(2))
            except ValueError:
                pass
    return out


# ---------------------------------------------------------------- a broker


class BenchBroker:
    """cloudbrokerd on a free loopback port with its own state folder and a copy of policies/
    (@policy_changes: {file: {key: value}} applied to the copy)."""

    def __init__(self, base_dir, policy_changes=None):
        self.dir = base_dir
        self.state = os.path.join(base_dir, 'state')
        self.policies = os.path.join(base_dir, 'policies')
        os.makedirs(self.state, exist_ok=True)
        shutil.copytree(os.path.join(SOURCE, 'policies'), self.policies)
        for name, changes in (policy_changes or {}).items():
            path = os.path.join(self.policies, name)
            with open(path) as f:
                doc = json.load(f)
            doc.update(changes)
            with open(path, 'w') as f:
                json.dump(doc, f, indent=2)
        self.proc = None
        self.port = None
        self.log_path = os.path.join(base_dir, 'broker.log')
        # A copy of the daemon: the build tree may be relinked by someone else during the run.
        self.exe = os.path.join(base_dir, 'cloudbrokerd')
        shutil.copy2(BROKERD, self.exe)

    @property
    def db(self):
        return os.path.join(self.state, 'cloudbroker.db')

    @property
    def admin_token(self):
        with open(os.path.join(self.state, 'admin.token')) as f:
            return f.read().strip()

    def start(self, extra=()):
        port = self.port or free_port()
        log_f = open(self.log_path, 'ab')
        self.proc = subprocess.Popen([self.exe, '--state-dir', self.state, '--policy-dir',
                                      self.policies, '--listen', f'127.0.0.1:{port}'] + list(extra),
                                     stdout=subprocess.DEVNULL, stderr=log_f)
        log_f.close()
        self.port = port
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                die(f'cloudbrokerd exited with {self.proc.returncode}; see {self.log_path}')
            try:
                if http_call(port, 'GET', '/v1/health', timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        die('cloudbrokerd did not answer /v1/health')

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def account(self, name, role):
        doc = http_expect(self.port, 'POST', '/v1/accounts', 201,
                          body={'name': name, 'role': role}, token=self.admin_token)
        return doc['token']

    def add_host(self, vendor_token, name, uri):
        """POST /v1/hosts; Returns: (host id, agent token)."""
        doc = http_expect(self.port, 'POST', '/v1/hosts', 201,
                          body={'name': name, 'uri': uri, 'pool': 'production',
                                'storage_pool': 'default'}, token=vendor_token)
        return doc['id'], doc['agent_token']


def instance_uuid(instance_id):
    """The UUID meter-load and the fixtures give instance @instance_id."""
    return f'00000000-0000-4000-8000-{instance_id:012d}'


def add_instances(db_path, host_ids, per_host):
    """Writes, into a STOPPED broker's database, one department, system, request and allocation
    per host and @per_host running instances on each host (ids from 1, UUIDs from
    instance_uuid()). The workflow would take minutes per thousand instances; the rows are the
    same the workflow leaves (instances of an active allocation). Returns: {host id: (first id,
    count)}."""
    now = time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime())
    con = sqlite3.connect(db_path)
    try:
        con.execute('PRAGMA foreign_keys=ON')
        cur = con.cursor()
        cur.execute("INSERT INTO departments(code, name, quota_vcpus, quota_memory_mib,"
                    " quota_disk_gib, quota_instances, created_at, updated_at)"
                    " VALUES ('bench', 'bench', 1000000, 1000000000, 1000000, 1000000, ?, ?)",
                    (now, now))
        dept = cur.lastrowid
        cur.execute("INSERT INTO systems(department_id, name, category, protection_level, status,"
                    " created_at, updated_at) VALUES (?, 'bench', 'website', 2, 'active', ?, ?)",
                    (dept, now, now))
        system = cur.lastrowid
        acct = cur.execute('SELECT min(id) FROM accounts').fetchone()[0]
        out = {}
        next_id = (cur.execute('SELECT coalesce(max(id), 0) FROM instances').fetchone()[0]) + 1
        for h in host_ids:
            cur.execute("INSERT INTO requests(department_id, system_id, kind, state, justification,"
                        " created_by, created_at, updated_at, instances, vcpus, memory_mib,"
                        " disk_gib) VALUES (?, ?, 'new', 'allocated', 'bench', ?, ?, ?, ?, ?, ?, ?)",
                        (dept, system, acct, now, now, per_host, 2 * per_host,
                         2048 * per_host, 10 * per_host))
            req = cur.lastrowid
            cur.execute("INSERT INTO allocations(department_id, system_id, request_id, state,"
                        " vcpus, memory_mib, disk_gib, instances, created_at, updated_at)"
                        " VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?, ?)",
                        (dept, system, req, 2 * per_host, 2048 * per_host, 10 * per_host,
                         per_host, now, now))
            alloc = cur.lastrowid
            rows = []
            for k in range(per_host):
                iid = next_id + k
                rows.append((iid, alloc, k, f'bench-{iid}', instance_uuid(iid), h, 2, 2048, 10, 4,
                             4096, 'debian-12', 'default', f'bench-{iid}.qcow2', 'running',
                             'running', now, now, now))
            cur.executemany('INSERT INTO instances(id, allocation_id, idx, name, uuid, host_id,'
                            ' vcpus, memory_mib, disk_gib, max_vcpus, max_memory_mib, image, pool,'
                            ' volume, state, observed_state, observed_at, created_at, updated_at)'
                            ' VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)', rows)
            out[h] = (next_id, per_host)
            next_id += per_host
        con.commit()
        return out
    finally:
        con.close()
