# SPDX-License-Identifier: Apache-2.0
"""cloudbrokerd as a process: first start, config checking, HTTPS, SIGHUP policy reload,
SIGTERM, and the HTTP limits (connections per IP, header size, body size)."""
import json
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from cbtest import (BROKERD, POLICIES, Broker, Checks, make_request, make_system,  # noqa: E402
                    self_signed_cert)

checks = Checks('daemon')
tmp = tempfile.mkdtemp(prefix='cbtest-daemon-')


def run(args, timeout=20):
    return subprocess.run([BROKERD] + args, capture_output=True, timeout=timeout)


# --- first start: database, admin token 0600, path printed ---
with Broker() as b:
    token_path = os.path.join(b.state_dir, 'admin.token')
    mode = stat.S_IMODE(os.stat(token_path).st_mode)
    checks.eq(mode, 0o600, 'admin.token mode')
    checks.ok(b.admin_token.startswith('cbt_') and len(b.admin_token) == 47,
              'admin token is cbt_ + 43 base64url characters')
    checks.eq(b.get('/v1/whoami', token=b.admin_token).json()['role'], 'admin', 'admin whoami')
    checks.eq(stat.S_IMODE(os.stat(os.path.join(b.state_dir, 'audit.key')).st_mode), 0o600,
              'audit.key mode')
    first = b.admin_token
    rc = b.stop()
    checks.eq(rc, 0, 'SIGTERM stops cleanly with status 0')
    # A second start keeps the same token and does not write a new one.
    b.start()
    checks.eq(b.admin_token, first, 'token survives restart')
    checks.eq(b.get('/v1/whoami', token=first).status, 200, 'old token still valid')

# --- bad config and bad policies are refused at start, naming the problem ---
bad_cfg = os.path.join(tmp, 'bad.json')
with open(bad_cfg, 'w') as f:
    json.dump({'listen': '127.0.0.1:0', 'threads': 0}, f)
p = run(['--state-dir', os.path.join(tmp, 's1'), '--config', bad_cfg, '--policy-dir', POLICIES])
checks.eq(p.returncode, 1, 'invalid config refused')
checks.ok(b'/threads' in p.stderr, f'config error names the field: {p.stderr!r}')
with open(bad_cfg, 'w') as f:
    json.dump({'listen': '127.0.0.1:0', 'tls_key': 'x'}, f)
p = run(['--state-dir', os.path.join(tmp, 's1'), '--config', bad_cfg, '--policy-dir', POLICIES])
checks.eq(p.returncode, 1, 'unknown config key refused')
checks.ok(b'/tls_key' in p.stderr, 'unknown key named')

bad_policies = os.path.join(tmp, 'bad-policies')
shutil.copytree(POLICIES, bad_policies)
with open(os.path.join(bad_policies, 'review.json')) as f:
    review = json.load(f)
review['rules']['instance_limits']['max_vcpus'] = 'many'
with open(os.path.join(bad_policies, 'review.json'), 'w') as f:
    json.dump(review, f)
p = run(['--state-dir', os.path.join(tmp, 's2'), '--policy-dir', bad_policies,
         '--check-config'])
checks.eq(p.returncode, 1, '--check-config refuses a bad policy')
checks.ok(b'max_vcpus' in p.stderr and b'review.json' in p.stderr,
          f'policy error names file and field: {p.stderr!r}')
p = run(['--state-dir', os.path.join(tmp, 's2'), '--policy-dir', POLICIES, '--check-config'])
checks.eq(p.returncode, 0, '--check-config accepts the shipped policies')
p = run(['--help'])
checks.ok(p.returncode == 0 and b'--state-dir' in p.stdout, '--help')

# --- SIGHUP reloads policies; a broken file keeps the old ones ---
pol = os.path.join(tmp, 'policies')
shutil.copytree(POLICIES, pol)
def check_limit(b, rid, token):
    """The max_vcpus a request's pre-review check shows (GET is served from a cache)."""
    doc = b.get(f'/v1/requests/{rid}', token=token).json()
    rule = [x for x in doc['check']['rules'] if x['rule'] == 'instance_limits'][0]
    return rule['limits']['max_vcpus']


with Broker(policy_dir=pol) as b:
    tok = b.admin_token
    limit = b.get('/v1/policies', token=tok).json()['review']['rules']['instance_limits']
    checks.eq(limit['max_vcpus'], 32, 'default max_vcpus')
    dept = b.make_department('reload')
    _, dtok = b.make_account('reload-dept', 'department', dept)
    rid = make_request(b, dtok, make_system(b, dtok, 'reload-system'))
    checks.eq(check_limit(b, rid, dtok), 32, 'request check shows the loaded limit')
    checks.eq(check_limit(b, rid, dtok), 32, 'and again (cached)')
    with open(os.path.join(pol, 'review.json')) as f:
        review = json.load(f)
    review['rules']['instance_limits']['max_vcpus'] = 48
    with open(os.path.join(pol, 'review.json'), 'w') as f:
        json.dump(review, f)
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    got = None
    while time.time() < deadline:
        got = b.get('/v1/policies', token=tok).json()['review']['rules']['instance_limits']
        if got['max_vcpus'] == 48:
            break
        time.sleep(0.1)
    checks.eq(got['max_vcpus'], 48, 'SIGHUP picked up the new policy')
    checks.eq(check_limit(b, rid, dtok), 48, 'a cached request document follows the reload')
    r = b.request('PATCH', f'/v1/requests/{rid}', {'justification': 'changed'}, token=dtok)
    checks.eq(b.get(f'/v1/requests/{rid}', token=dtok).json()['justification'], 'changed',
              'a cached request document follows a write')
    with open(os.path.join(pol, 'review.json'), 'w') as f:
        f.write('{ broken')
    b.proc.send_signal(signal.SIGHUP)
    time.sleep(1)
    got = b.get('/v1/policies', token=tok).json()['review']['rules']['instance_limits']
    checks.eq(got['max_vcpus'], 48, 'a broken policy file keeps the old policy')
    checks.eq(b.proc.poll(), None, 'still running after a failed reload')
    with open(b.log_path) as f:
        checks.ok('policy reload failed' in f.read(), 'failed reload is logged')

# --- HTTPS with a certificate from the config file ---
cert, key = self_signed_cert(tmp)
cfg = os.path.join(tmp, 'tls.json')
with open(cfg, 'w') as f:
    json.dump({'tls': {'certificate': cert, 'key': key}}, f)
with Broker(extra_args=['--config', cfg]) as b:
    ctx = ssl.create_default_context(cafile=cert)
    import http.client
    conn = http.client.HTTPSConnection('127.0.0.1', b.port, context=ctx, timeout=10)
    conn.request('GET', '/v1/whoami', headers={'Authorization': f'Bearer {b.admin_token}'})
    r = conn.getresponse()
    checks.eq(r.status, 200, 'whoami over HTTPS')
    checks.ok(conn.sock.version() in ('TLSv1.2', 'TLSv1.3'), f'TLS version {conn.sock.version()}')
    conn.close()
    # Plain HTTP to the HTTPS port gets no answer in the clear.
    s = socket.create_connection(('127.0.0.1', b.port), timeout=5)
    s.sendall(b'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n')
    try:
        data = s.recv(100)
    except (ConnectionResetError, socket.timeout):
        data = b''
    s.close()
    checks.ok(not data.startswith(b'HTTP/1.1 200'), 'no cleartext answer on the HTTPS port')

# --- limits: headers, body, connections per IP ---
cfg = os.path.join(tmp, 'limits.json')
with open(cfg, 'w') as f:
    json.dump({'limits': {'connections_per_ip': 4, 'header_bytes': 8192,
                          'body_bytes': 4096, 'timeout_seconds': 3}}, f)
with Broker(extra_args=['--config', cfg]) as b:
    tok = b.admin_token
    r = b.get('/v1/whoami', token=tok, headers={'X-Padding': 'a' * 20000})
    checks.ok(r.status in (400, 413, 431), f'oversized headers refused: {r.status}')
    r = b.post('/v1/departments', {'code': 'x', 'name': 'n' * 8000}, token=tok)
    checks.eq(r.status, 413, 'body over limits.body_bytes is 413')
    checks.eq(r.json()['error']['code'], 'too_large', 'too_large code')
    socks = []
    for _ in range(4):
        socks.append(socket.create_connection(('127.0.0.1', b.port), timeout=5))
    extra = socket.create_connection(('127.0.0.1', b.port), timeout=5)
    extra.sendall(b'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n')
    try:
        data = extra.recv(100)
    except (ConnectionResetError, socket.timeout):
        data = b''
    checks.ok(not data.startswith(b'HTTP/1.1 200'), 'fifth connection from one IP refused')
    for s in socks + [extra]:
        s.close()
    # Idle connections are closed after the timeout.
    idle = socket.create_connection(('127.0.0.1', b.port), timeout=10)
    t0 = time.time()
    try:
        gone = idle.recv(10) == b''
    except (ConnectionResetError, socket.timeout):
        gone = True
    checks.ok(gone and time.time() - t0 < 8, 'idle connection closed after timeout_seconds')
    idle.close()
    time.sleep(0.5)
    checks.eq(b.get('/v1/health').status, 200, 'serving after the limit tests')

shutil.rmtree(tmp, ignore_errors=True)
checks.done()
