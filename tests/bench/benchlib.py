# SPDX-License-Identifier: Apache-2.0
"""Helpers for tests/bench/http-bench.sh (standard library only).

Subcommands:
  free-port                      print a free TCP port on 127.0.0.1
  wait-http PORT PATH [SECONDS]  wait until GET http://127.0.0.1:PORT/PATH answers at all
  broker-port FILE PID [SECONDS] wait for cloudbrokerd's "(port N)" line in FILE; print N
  fixtures PORT STATE_DIR WWW ENV_FILE
                                 create the fixtures, save GET /v1/requests/{id}'s exact body
                                 under WWW/v1/requests/{id}, write shell variables to ENV_FILE
  same-body URL FILE             check that GET URL returns FILE's bytes as application/json
  db-counts DB TABLE [SECONDS]   rows in TABLE and in audit (one snapshot, read-only), once
                                 they stopped changing
  report RESULTS_DIR             parse the wrk outputs, print the table, ratios and goals
"""
import http.client
import json
import os
import re
import socket
import sqlite3
import sys
import time

HOST = '127.0.0.1'


def die(msg):
    print(f'benchlib: {msg}', file=sys.stderr, flush=True)
    sys.exit(1)


# ---------------------------------------------------------------- HTTP


def call(port, method, path, body=None, token=None, raw=None, ctype=None, timeout=30):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    headers = {}
    if token:
        headers['Authorization'] = f'Bearer {token}'
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        headers['Content-Type'] = 'application/json'
    if ctype:
        headers['Content-Type'] = ctype
    try:
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


def expect(port, method, path, status, **kw):
    st, _, data = call(port, method, path, **kw)
    if st != status:
        die(f'{method} {path}: got {st}, want {status}: {data[:400]!r}')
    return json.loads(data) if data else None


# ---------------------------------------------------------------- subcommands


def cmd_free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        print(s.getsockname()[1])


def cmd_wait_http(port, path, seconds='10'):
    deadline = time.time() + float(seconds)
    while time.time() < deadline:
        try:
            call(int(port), 'GET', path, timeout=2)
            return
        except OSError:
            time.sleep(0.05)
    die(f'nothing answers on {HOST}:{port}{path} after {seconds}s')


def cmd_broker_port(path, pid, seconds='15'):
    deadline = time.time() + float(seconds)
    while time.time() < deadline:
        try:
            with open(path, encoding='utf-8', errors='replace') as f:
                m = re.search(r'\(port (\d+)\)', f.read())
            if m:
                print(m.group(1))
                return
        except FileNotFoundError:
            pass
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            die('cloudbrokerd exited during start-up')
        time.sleep(0.05)
    die(f'cloudbrokerd did not print its port within {seconds}s')


# A small text document per material kind: text/plain is an accepted type, and the sniffer
# checks only that it is UTF-8 without control characters.
MATERIALS = {
    'construction_plan': 'Construction plan for the benchmark system.\n' * 40,
    'performance_self_test': 'Performance self-test: 1200 requests/s at p99 40 ms.\n' * 20,
    'security_self_test': 'Security self-test: graded protection level 2 checklist.\n' * 20,
}


def cmd_fixtures(port, state_dir, www, env_file):
    port = int(port)
    with open(os.path.join(state_dir, 'admin.token')) as f:
        admin = f.read().strip()

    dept = expect(port, 'POST', '/v1/departments',
                  201, body={'code': 'bench-dept', 'name': 'Benchmark Department'},
                  token=admin)['id']
    acc = expect(port, 'POST', '/v1/accounts', 201,
                 body={'name': 'bench-dept-user', 'role': 'department', 'department_id': dept},
                 token=admin)
    dept_token = acc['token']
    rev = expect(port, 'POST', '/v1/accounts', 201,
                 body={'name': 'bench-reviewer', 'role': 'reviewer'}, token=admin)
    reviewer_token = rev['token']
    system = expect(port, 'POST', '/v1/systems', 201,
                    body={'name': 'Benchmark portal', 'category': 'website',
                          'description': 'The system the benchmark request is for',
                          'protection_level': 2},
                    token=dept_token)['id']

    def new_request(justification):
        rid = expect(port, 'POST', '/v1/requests', 201, body={
            'system': system, 'kind': 'new', 'justification': justification,
            'resources': {'instances': [
                {'vcpus': 4, 'memory_mib': 8192, 'disk_gib': 100, 'image': 'debian-12'},
                {'vcpus': 2, 'memory_mib': 4096, 'disk_gib': 50, 'image': 'debian-12'},
            ]}}, token=dept_token)['id']
        for kind, text in MATERIALS.items():
            expect(port, 'PUT', f'/v1/requests/{rid}/materials/{kind}?filename={kind}.txt',
                   201, raw=text.encode(), ctype='text/plain; charset=utf-8', token=dept_token)
        return rid

    # The request GET is measured on: a 'new' request with all its materials, so the document
    # carries materials, history and a passing pre-review check.
    req = new_request('Host the benchmark portal on the government cloud.')
    # A second request, submitted, for the opinions write mode.
    op_req = new_request('A request that collects review opinions.')
    expect(port, 'POST', f'/v1/requests/{op_req}/submit', 200, body={}, token=dept_token)

    path = f'/v1/requests/{req}'
    st, headers, data = call(port, 'GET', path, token=dept_token)
    if st != 200:
        die(f'GET {path}: {st} {data[:300]!r}')
    doc = json.loads(data)
    if doc.get('state') != 'draft' or doc.get('kind') != 'new':
        die(f'unexpected request document: {doc!r}')
    for key in ('materials', 'history', 'check'):
        if not doc.get(key):
            die(f'GET {path} has no {key}: {doc!r}')
    if len(doc['materials']) != len(MATERIALS):
        die(f'GET {path} lists {len(doc["materials"])} materials, want {len(MATERIALS)}')

    target = os.path.join(www, path.lstrip('/'))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, 'wb') as f:
        f.write(data)  # the exact bytes, trailing newline included

    with open(env_file, 'w') as f:
        f.write(f'DEPT_ID={dept}\nSYSTEM_ID={system}\nREQ_ID={req}\nREQ_PATH={path}\n'
                f'OPINION_REQ_ID={op_req}\nDOC_BYTES={len(data)}\n'
                f'DEPT_TOKEN={dept_token}\nREVIEWER_TOKEN={reviewer_token}\n')


def cmd_same_body(url, path):
    m = re.match(r'http://127\.0\.0\.1:(\d+)(/.*)$', url)
    if not m:
        die(f'bad url {url}')
    st, headers, data = call(int(m.group(1)), 'GET', m.group(2))
    with open(path, 'rb') as f:
        want = f.read()
    if st != 200 or data != want:
        die(f'{url} does not serve the saved body ({st}, {len(data)} vs {len(want)} bytes)')
    if not headers.get('content-type', '').startswith('application/json'):
        die(f'{url} serves Content-Type {headers.get("content-type")!r}')


def db_counts(db, table):
    con = sqlite3.connect(f'file:{db}?mode=ro', uri=True, timeout=30)
    try:
        con.execute('BEGIN')  # one snapshot for both counts
        rows = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        audit = con.execute('SELECT count(*) FROM audit').fetchone()[0]
        con.execute('COMMIT')
        return rows, audit
    finally:
        con.close()


def cmd_db_counts(db, table, settle='10'):
    """Rows of TABLE and of audit, once they stopped changing (requests that were in flight
    when wrk stopped still commit afterwards)."""
    if not re.fullmatch(r'[a-z_]+', table):
        die('bad table name')
    deadline = time.time() + float(settle)
    last = db_counts(db, table)
    while time.time() < deadline:
        time.sleep(0.3)
        now = db_counts(db, table)
        if now == last:
            break
        last = now
    print(*last)


# ---------------------------------------------------------------- wrk output


UNITS = {'us': 1e-3, 'ms': 1.0, 's': 1000.0, 'm': 60000.0, 'h': 3600000.0}


def to_ms(text):
    m = re.fullmatch(r'([\d.]+)(us|ms|s|m|h)', text.strip())
    if not m:
        raise ValueError(f'bad latency {text!r}')
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(path):
    """The figures of one wrk --latency run; raises ValueError if the output is not wrk's."""
    with open(path, encoding='utf-8', errors='replace') as f:
        text = f.read()
    out = {}
    m = re.search(r'^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)', text, re.M)
    if not m:
        raise ValueError(f'{path}: no "N requests in T" line')
    out['requests'] = int(m.group(1))
    out['seconds'] = to_ms(m.group(2) + m.group(3)) / 1000.0
    m = re.search(r'^Requests/sec:\s+([\d.]+)', text, re.M)
    if not m:
        raise ValueError(f'{path}: no Requests/sec line')
    out['rps'] = float(m.group(1))
    m = re.search(r'^\s*99%\s+(\S+)', text, re.M)
    if not m:
        raise ValueError(f'{path}: no 99% latency line (was --latency given?)')
    out['p99_ms'] = to_ms(m.group(1))
    m = re.search(r'^\s*50%\s+(\S+)', text, re.M)
    out['p50_ms'] = to_ms(m.group(1)) if m else None
    m = re.search(r'^\s*Non-2xx or 3xx responses:\s+(\d+)', text, re.M)
    out['non2xx'] = int(m.group(1)) if m else 0
    m = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', text)
    out['socket_errors'] = sum(int(x) for x in m.groups()) if m else 0
    # wrk counts status >= 400 as "Non-2xx or 3xx"; the servers here answer no 1xx/3xx, so
    # the rest of the completed requests are the 2xx ones.
    out['ok'] = max(out['requests'] - out['non2xx'], 0)
    # wrk's Requests/sec divides by the exact run time; the printed seconds are rounded.
    out['ok_rps'] = out['rps'] * out['ok'] / out['requests'] if out['requests'] else 0.0
    return out


def cmd_report(results):
    def load(name):
        return parse_wrk(os.path.join(results, f'{name}.txt'))

    try:
        nginx, get, write = load('nginx-get'), load('broker-get'), load('broker-write')
    except (OSError, ValueError) as e:
        die(f'cannot parse wrk output: {e}')
    meta = {}
    meta_path = os.path.join(results, 'meta.env')
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            for line in f:
                if '=' in line:
                    k, v = line.rstrip('\n').split('=', 1)
                    meta[k] = v

    rows = [('nginx static GET', nginx, 'rps'), ('broker GET request', get, 'rps'),
            (f'broker {meta.get("WRITE_LABEL", "write")}', write, 'ok_rps')]
    print()
    print(f'{"target":<30} {"req/s":>10} {"2xx/s":>10} {"p50 ms":>8} {"p99 ms":>8} '
          f'{"requests":>9} {"non-2xx":>8} {"sock err":>8}')
    print('-' * 98)
    for label, r, _ in rows:
        p50 = f'{r["p50_ms"]:.2f}' if r['p50_ms'] is not None else '-'
        print(f'{label:<30} {r["rps"]:>10.0f} {r["ok_rps"]:>10.0f} {p50:>8} '
              f'{r["p99_ms"]:>8.2f} {r["requests"]:>9} {r["non2xx"]:>8} '
              f'{r["socket_errors"]:>8}')
    print()

    ratio = get['rps'] / nginx['rps'] if nginx['rps'] else 0.0
    goals = [
        ('broker GET rps / nginx rps', f'{ratio:.3f}', '>= 0.50', ratio >= 0.50),
        ('broker GET p99', f'{get["p99_ms"]:.2f} ms', f'< 10 ms at {meta.get("CONNS", "?")} conns',
         get['p99_ms'] < 10.0),
        ('durable writes/s (2xx only)', f'{write["ok_rps"]:.0f}', '>= 500',
         write['ok_rps'] >= 500),
    ]
    print(f'{"goal":<30} {"measured":>12}  {"target":<20} result')
    print('-' * 72)
    for name, got, want, ok in goals:
        print(f'{name:<30} {got:>12}  {want:<20} {"PASS" if ok else "MISS"}')

    notes = []
    if get['non2xx'] or get['socket_errors']:
        notes.append(f'broker GET had {get["non2xx"]} non-2xx responses and '
                     f'{get["socket_errors"]} socket errors')
    if nginx['non2xx'] or nginx['socket_errors']:
        notes.append(f'nginx had {nginx["non2xx"]} non-2xx responses and '
                     f'{nginx["socket_errors"]} socket errors')
    if write['non2xx']:
        notes.append(f'{write["non2xx"]} write responses were not 2xx (not counted as writes)')
    if 'ROWS_ADDED' in meta and meta.get('ROWS_ADDED') != meta.get('AUDIT_ADDED'):
        notes.append(f'{meta["ROWS_ADDED"]} {meta.get("WRITE_TABLE", "")} rows but '
                     f'{meta.get("AUDIT_ADDED")} audit records were committed: every write '
                     f'should have exactly one audit record')
    elif 'ROWS_ADDED' in meta:
        notes.append(f'{meta["ROWS_ADDED"]} {meta.get("WRITE_TABLE", "")} rows and '
                     f'{meta.get("AUDIT_ADDED", "?")} audit records committed during the timed '
                     f'write run (wrk counted {write["ok"]} 2xx; the difference is requests '
                     f'still in flight when wrk stopped)')
    if notes:
        print()
        for n in notes:
            print(f'note: {n}')

    summary = {
        'nginx_rps': nginx['rps'], 'nginx_p99_ms': nginx['p99_ms'],
        'broker_get_rps': get['rps'], 'broker_get_p99_ms': get['p99_ms'],
        'broker_get_non2xx': get['non2xx'],
        'write_ok_rps': write['ok_rps'], 'write_p99_ms': write['p99_ms'],
        'write_non2xx': write['non2xx'], 'get_ratio': ratio,
        'goals_met': sum(1 for g in goals if g[3]), 'goals': len(goals),
    }
    with open(os.path.join(results, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)


COMMANDS = {
    'free-port': cmd_free_port,
    'wait-http': cmd_wait_http,
    'broker-port': cmd_broker_port,
    'fixtures': cmd_fixtures,
    'same-body': cmd_same_body,
    'db-counts': cmd_db_counts,
    'report': cmd_report,
}

if __name__ == '__main__':
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        die(f'usage: benchlib.py {"|".join(COMMANDS)} ARGS...')
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except TypeError as e:
        die(f'{sys.argv[1]}: {e}')
