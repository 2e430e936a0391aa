# SPDX-License-Identifier: Apache-2.0
"""Helpers for tests/bench/alloc-bench.sh (standard library only).

Subcommands:
  boot-image PATH                 write a 1 MiB raw disk whose boot sector halts (f4 eb fd)
  setup PORT STATE_DIR POOL ENV   department, accounts, system, and the two hosts (the local
                                  libvirtd as trial host qemu+unix:///system and production
                                  host qemu:///system, both with their disks in POOL); waits
                                  until both are connected; writes tokens to ENV
  bump-ids DB OFFSET              start allocation ids at OFFSET (see below)
  trial-passed PORT ENV N IMAGE   a `new` request for N instances of IMAGE driven to
                                  trial_passed (materials, submit, approve, trial provisioned,
                                  three passing results, trial reclaimed); prints its id
  allocate PORT ENV REQ           POST /v1/requests/REQ/allocate and poll the allocation until
                                  it is active; prints "SECONDS ALLOCATION_ID NAME..."

Domain names are cb-<allocation>-<n>. Another broker on the same libvirtd (a test or a smoke
run) makes the same names from a fresh database, so bump-ids makes this run's allocation ids
start at a random offset: one allocation row in state 'purged', written straight into the
benchmark's own temporary database before any allocation exists.
"""
import hashlib
import http.client
import json
import os
import sqlite3
import sys
import time

HOST = '127.0.0.1'
HALT = b'\xf4\xeb\xfd'


def die(msg):
    print(f'alloclib: {msg}', file=sys.stderr, flush=True)
    sys.exit(1)


def log(msg):
    print(f'== {msg}', file=sys.stderr, flush=True)


def call(port, method, path, body=None, token=None, raw=None, ctype=None, timeout=60):
    conn = http.client.HTTPConnection(HOST, int(port), timeout=timeout)
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
        return r.status, r.read()
    finally:
        conn.close()


def expect(port, method, path, status, **kw):
    st, data = call(port, method, path, **kw)
    if st not in (status if isinstance(status, tuple) else (status,)):
        die(f'{method} {path}: got {st}, want {status}: {data[:600]!r}')
    return json.loads(data) if data else None


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition('=')
            env[k] = v
    return env


def wait_for(what, fn, timeout=300, interval=0.1):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        ok, last = fn()
        if ok:
            return last
        time.sleep(interval)
    die(f'timed out waiting for {what}: {last!r}')


# ---------------------------------------------------------------- subcommands


def cmd_boot_image(path):
    data = bytearray(1024 * 1024)
    data[0:len(HALT)] = HALT
    data[510] = 0x55
    data[511] = 0xAA
    with open(path, 'wb') as f:
        f.write(data)


def cmd_setup(port, state_dir, pool, env_path):
    with open(os.path.join(state_dir, 'admin.token')) as f:
        admin = f.read().strip()
    dept = expect(port, 'POST', '/v1/departments', 201,
                  body={'code': 'alloc-bench', 'name': '基准测试局'}, token=admin)['id']
    tokens = {}
    for name, role, extra in (('bench-dept', 'department', {'department_id': dept}),
                              ('bench-reviewer', 'reviewer', {}),
                              ('bench-vendor', 'vendor', {})):
        tokens[role] = expect(port, 'POST', '/v1/accounts', 201,
                              body=dict(name=name, role=role, **extra), token=admin)['token']
    system = expect(port, 'POST', '/v1/systems', 201,
                    body={'name': 'alloc-bench', 'category': 'website',
                          'protection_level': 2}, token=tokens['department'])['id']
    # One machine holds both pools: two URIs for one daemon, as tests/integration/cbvirt.py
    # does. Ratios high enough that 10 small instances fit a small CI machine.
    for name, uri, kind in (('bench-trial', 'qemu+unix:///system', 'trial'),
                            ('bench-prod', 'qemu:///system', 'production')):
        expect(port, 'POST', '/v1/hosts', 201,
               body={'name': name, 'uri': uri, 'pool': kind, 'storage_pool': pool,
                     'cpu_ratio': 32, 'ram_ratio': 4, 'disk_ratio': 8},
               token=tokens['vendor'])

    def connected():
        hosts = expect(port, 'GET', '/v1/hosts', 200, token=tokens['vendor'])['items']
        return all(h['connection']['state'] == 'connected' for h in hosts), hosts
    wait_for('hosts to connect', connected, timeout=30)
    with open(env_path, 'w') as f:
        f.write(f'DEPT_ID={dept}\nSYSTEM_ID={system}\nDEPT_TOKEN={tokens["department"]}\n'
                f'REVIEWER_TOKEN={tokens["reviewer"]}\nVENDOR_TOKEN={tokens["vendor"]}\n')


def cmd_bump_ids(db_path, offset):
    db = sqlite3.connect(db_path, timeout=30)
    row = db.execute('SELECT department_id, id FROM systems LIMIT 1').fetchone()
    if not row:
        die('bump-ids: run setup first')
    if db.execute('SELECT count(*) FROM allocations').fetchone()[0]:
        die('bump-ids: allocations exist already')
    at = time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime())
    with db:
        db.execute("INSERT INTO allocations(id, department_id, system_id, request_id, state,"
                   " created_at, updated_at) VALUES (?, ?, ?, 0, 'purged', ?, ?)",
                   (int(offset), row[0], row[1], at, at))
    db.close()


MATERIALS = {
    'construction_plan': 'Construction plan of the allocation benchmark.\n' * 20,
    'performance_self_test': 'Performance self-test: idle guests.\n' * 20,
    'security_self_test': 'Security self-test: no network.\n' * 20,
}


def cmd_trial_passed(port, env_path, n, image):
    env = read_env(env_path)
    dept, rev, ven = env['DEPT_TOKEN'], env['REVIEWER_TOKEN'], env['VENDOR_TOKEN']
    n = int(n)
    rid = expect(port, 'POST', '/v1/requests', 201, body={
        'system': int(env['SYSTEM_ID']), 'kind': 'new', 'justification': 'alloc-bench',
        'resources': {'instances': [{'vcpus': 1, 'memory_mib': 64, 'disk_gib': 1,
                                     'image': image}] * n}}, token=dept)['id']
    for kind, text in MATERIALS.items():
        expect(port, 'PUT', f'/v1/requests/{rid}/materials/{kind}?filename={kind}.txt', 201,
               raw=text.encode(), ctype='text/plain; charset=utf-8', token=dept)
    expect(port, 'POST', f'/v1/requests/{rid}/submit', 200, body={}, token=dept)
    expect(port, 'POST', f'/v1/requests/{rid}/decision', 200, body={'decision': 'approve'},
           token=rev)

    def state_is(*states):
        def check():
            doc = expect(port, 'GET', f'/v1/requests/{rid}', 200, token=rev)
            bad = [j for j in doc.get('jobs', []) if j.get('state') == 'error']
            if bad or doc['state'] in ('failed', 'trial_failed'):
                die(f'request {rid}: {doc["state"]}, jobs {bad}')
            return doc['state'] in states, doc
        return check
    wait_for(f'request {rid} in_trial', state_is('in_trial'))
    report = b'trial report: function, performance and security tests passed\n'
    sha = hashlib.sha256(report).hexdigest()
    expect(port, 'PUT', f'/v1/requests/{rid}/materials/test_report?filename=report.txt', 201,
           raw=report, ctype='text/plain; charset=utf-8', token=ven)
    for test in ('function', 'performance', 'security'):
        expect(port, 'POST', f'/v1/requests/{rid}/trial-results', 201,
               body={'test': test, 'result': 'pass', 'report': sha}, token=ven)

    def trial_reclaimed():
        doc = expect(port, 'GET', f'/v1/requests/{rid}', 200, token=rev)
        jobs = doc.get('jobs', [])
        if any(j.get('state') == 'error' for j in jobs):
            die(f'request {rid}: a job failed: {jobs}')
        return (doc['state'] == 'trial_passed' and jobs and
                all(j.get('state') == 'done' for j in jobs)), doc
    wait_for(f'request {rid} trial_passed with its trial reclaimed', trial_reclaimed)
    print(rid)


def cmd_allocate(port, env_path, rid):
    env = read_env(env_path)
    rev = env['REVIEWER_TOKEN']
    t0 = time.monotonic()
    doc = expect(port, 'POST', f'/v1/requests/{rid}/allocate', 202, body={}, token=rev)
    alloc = doc.get('allocation_id')
    if not alloc:
        doc = expect(port, 'GET', f'/v1/requests/{rid}', 200, token=rev)
        alloc = doc.get('allocation_id')
    if not alloc:
        die(f'no allocation id after allocate: {doc!r}')
    while True:
        st, data = call(port, 'GET', f'/v1/allocations/{alloc}', token=rev)
        if st != 200:
            die(f'GET /v1/allocations/{alloc}: {st} {data[:300]!r}')
        a = json.loads(data)
        if a['state'] == 'active':
            break
        if a['state'] == 'error':
            die(f'allocation {alloc} failed: {a!r}')
        if time.monotonic() - t0 > 600:
            die(f'allocation {alloc} still {a["state"]} after 600 s')
        time.sleep(0.02)
    elapsed = time.monotonic() - t0
    names = [i['name'] for i in a.get('instances', [])]
    print(f'{elapsed:.3f} {alloc} ' + ' '.join(names))


def main():
    if len(sys.argv) < 2:
        die(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {'boot-image': cmd_boot_image, 'setup': cmd_setup, 'bump-ids': cmd_bump_ids,
          'trial-passed': cmd_trial_passed, 'allocate': cmd_allocate}.get(cmd)
    if not fn:
        die(f'unknown subcommand {cmd}')
    fn(*args)


if __name__ == '__main__':
    main()
