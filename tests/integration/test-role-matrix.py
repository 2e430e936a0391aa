#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Every role against every endpoint, then object-level scoping.

The expected outcome of each (endpoint, role) pair is written out by hand in TABLE below, from
the intended access of each role (DESIGN.md "Who uses it"), not computed from the routing table:
a table derived from the routing tables could never disagree with it. The test also parses the
routes out of broker/br-api*.c and fails when an endpoint has no row here (or a row names an
endpoint that no longer exists), so a new endpoint cannot ship without a decided access rule.

Then: department isolation (another department's objects answer 404, never 403 or 200, and lists
hold only one's own: requests, systems, allocations, jobs), the consultant's view (only requests
assigned to it), the vendor's view (requests from 'approved' on), and the token edge cases
(unknown, malformed, disabled, rotated, wrong scheme).

Hypervisors: the fixture's hosts are libvirt's test driver (test:///FILE.xml, built into libvirt,
no libvirtd), each a node file written by this test with known capacity and the catalog's base
volume. The trial host is small: the fixture's own one-instance requests (64 MiB) get a real
trial environment (and, for some, a passed trial, an allocation, a termination), while the
512 MiB requests of cbtest never fit and their trial jobs wait (a waiting job retries in the
background, so the "database unchanged" checks ignore the columns jobs, steps, the reconciler and
retries keep changing: see VOLATILE).
"""
import glob
import hashlib
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
import cbworld  # noqa: E402
from cbtest import db_connect, db_fingerprint_diff, json_error  # noqa: E402

CONSOLE_PASSWORD = 'Correct-Horse-9'
ROLES = ('admin', 'reviewer', 'consultant', 'vendor', 'auditor', 'department', 'agent')
NO_TOKENS = ('no-token', 'unknown-token', 'unknown-agent-token', 'malformed-token')

# A = allowed (the call must succeed with the 2xx the fixture makes possible), - = 403.
# Callers without a valid token get 401 everywhere except rows marked 'public'.
# 'agent' is a host's metering agent, with the token of POST /v1/hosts or
# POST /v1/hosts/{id}/agent-token (cba_...): it posts samples for its host and may ask who it is,
# nothing else (docs/agent-guide.md: "any other endpoint but GET /v1/whoami answers 403"); no
# account token may post samples. The metering and assessment rows follow docs/metering.md
# (usage: department own, reviewer, auditor, vendor; rollup: vendor and admin),
# docs/assessment.md (assessment run: reviewer or vendor; acknowledge and resolve: department
# own and reviewer; dismiss: reviewer; change-request: department own; findings scoped to a
# department's own), docs/reports.md (annual assessment: reviewer, auditor, a department its
# own; operations: also the vendor), docs/costs.md (cost statement: admin, reviewer, auditor,
# a department its own), docs/service-quality.md (the vendor's scorecard: admin, reviewer,
# auditor, vendor; explanations: the vendor; maintenance windows: proposed by the vendor,
# decided by the reviewer, read by every reading role but departments; the vendor's duties:
# recorded by the vendor with its documents, read by admin, reviewer, auditor and vendor, a
# department reading its own systems' restore tests and their documents) and, where no page speaks (the security and backup records:
# docs/api.md has no row for any of these routes), DESIGN.md's roles: departments and the
# vendor record security status and backups, every reading role reads them, the auditor changes
# nothing.
# The console's routes (docs/api.md "Sign-in and sessions", "Notifications", "Dashboard"):
# every account reads and marks its own notifications, sets its own address and password; a
# bearer token is no console session, so GET and DELETE /v1/session let every account through
# and answer 401 invalid_session to a token (the session itself is tested in
# test-console-auth.py); sign-in and the password setup by link need no token; the dashboard is
# the bureau's (reviewer, auditor); the queue is what waits for one who acts.
# Every allowed call below answers its real 2xx, on fixtures the API made (World.__init__: a
# trial run and passed, an allocation made, terminated and retained), except one: libvirt's
# test driver cannot wipe a volume (virStorageVolWipe), so the allocation purged is one set
# 'retained' in the database, without instances, while the broker was stopped; and the failed
# jobs retried (docs/workflow.md "Failures": the vendor or the bureau retries) are purges of
# allocations set in 'error' the same way (a job that really fails logs an error).
TABLE = '''
# method path                                 admin rev cons vendor audit dept agent
GET    /v1/health                             A     A   A    A      A     A    A     public
GET    /metrics                               A     -   -    A      A     -    -
GET    /v1/whoami                             A     A   A    A      A     A    A
POST   /v1/whoami/token                       A     A   A    A      A     A    -
GET    /v1/policies                           A     A   A    A      A     A    -
POST   /v1/departments                        A     -   -    -      -     -    -
GET    /v1/departments                        A     A   A    A      A     A    -
GET    /v1/departments/{id}                   A     A   A    A      A     A    -
PATCH  /v1/departments/{id}                   A     A   -    -      -     -    -
POST   /v1/accounts                           A     -   -    -      -     -    -
GET    /v1/accounts                           A     A   -    -      A     -    -
GET    /v1/accounts/{id}                      A     A   -    -      A     -    -
PATCH  /v1/accounts/{id}                      A     -   -    -      -     -    -
POST   /v1/accounts/{id}/token                A     -   -    -      -     -    -
POST   /v1/systems                            -     A   -    -      -     A    -
GET    /v1/systems                            -     A   -    A      A     A    -
GET    /v1/systems/{id}                       -     A   -    A      A     A    -
PATCH  /v1/systems/{id}                       -     A   -    -      -     A    -
POST   /v1/requests                           -     -   -    -      -     A    -
GET    /v1/requests                           -     A   A    A      A     A    -
GET    /v1/requests/{id}                      -     A   A    A      A     A    -
PATCH  /v1/requests/{id}                      -     -   -    -      -     A    -
PUT    /v1/requests/{id}/materials/{name}     -     -   -    A      -     A    -
GET    /v1/requests/{id}/materials/{name}     -     A   A    A      A     A    -
POST   /v1/requests/{id}/submit               -     -   -    -      -     A    -
POST   /v1/requests/{id}/resubmit             -     -   -    -      -     A    -
POST   /v1/requests/{id}/withdraw             -     -   -    -      -     A    -
POST   /v1/requests/{id}/assign               -     A   -    -      -     -    -
POST   /v1/requests/{id}/opinions             -     A   A    -      -     -    -
POST   /v1/requests/{id}/decision             -     A   -    -      -     -    -
POST   /v1/requests/{id}/trial-results        -     -   -    A      -     -    -
POST   /v1/requests/{id}/allocate             -     A   -    -      -     -    -
POST   /v1/hosts                              -     -   -    A      -     -    -
GET    /v1/hosts                              -     A   -    A      A     -    -
GET    /v1/hosts/{id}                         -     A   -    A      A     -    -
PATCH  /v1/hosts/{id}                         -     -   -    A      -     -    -
GET    /v1/allocations                        -     A   -    A      A     A    -
GET    /v1/allocations/{id}                   -     A   -    A      A     A    -
POST   /v1/allocations/{id}/restore           -     A   -    -      -     -    -
POST   /v1/allocations/{id}/purge             -     A   -    -      -     -    -
GET    /v1/jobs                               -     A   -    A      A     A    -
GET    /v1/jobs/{id}                          -     A   -    A      A     A    -
POST   /v1/jobs/{id}/retry                    -     A   -    A      -     -    -
GET    /v1/events                             -     A   -    A      A     -    -
POST   /v1/hosts/{id}/agent-token             -     -   -    A      -     -    -
POST   /v1/samples                            -     -   -    -      -     -    A
GET    /v1/instances/{id}/usage               -     A   -    A      A     A    -
GET    /v1/allocations/{id}/usage             -     A   -    A      A     A    -
POST   /v1/metering/rollup                    A     -   -    A      -     -    -
GET    /v1/findings                           -     A   -    A      A     A    -
GET    /v1/findings/{id}                      -     A   -    A      A     A    -
POST   /v1/findings/{id}/acknowledge          -     A   -    -      -     A    -
POST   /v1/findings/{id}/resolve              -     A   -    -      -     A    -
POST   /v1/findings/{id}/dismiss              -     A   -    -      -     -    -
POST   /v1/findings/{id}/change-request       -     -   -    -      -     A    -
POST   /v1/assessment/run                     -     A   -    A      -     -    -
POST   /v1/systems/{id}/vulnerabilities       -     -   -    A      -     A    -
GET    /v1/systems/{id}/vulnerabilities       -     A   -    A      A     A    -
PATCH  /v1/vulnerabilities/{id}               -     -   -    A      -     A    -
POST   /v1/systems/{id}/incidents             -     -   -    A      -     A    -
GET    /v1/systems/{id}/incidents             -     A   -    A      A     A    -
PATCH  /v1/incidents/{id}                   -     -   -    A      -     A    -
POST   /v1/systems/{id}/backups               -     -   -    A      -     A    -
GET    /v1/systems/{id}/backups               -     A   -    A      A     A    -
GET    /v1/reports/assessment                 -     A   -    -      A     A    -
GET    /v1/reports/operations                 -     A   -    A      A     A    -
GET    /v1/reports/costs                      A     A   -    -      A     A    -
GET    /v1/reports/service-quality            A     A   -    A      A     -    -
POST   /v1/reports/service-quality/explanations -   -   -    A      -     -    -
GET    /v1/maintenance-windows                A     A   -    A      A     -    -
POST   /v1/maintenance-windows                -     -   -    A      -     -    -
POST   /v1/maintenance-windows/{id}/decision  -     A   -    -      -     -    -
PUT    /v1/vendor-documents/{name}            -     -   -    A      -     -    -
GET    /v1/vendor-documents/{name}            A     A   -    A      A     A    -
POST   /v1/security-bulletins                 -     -   -    A      -     -    -
GET    /v1/security-bulletins                 A     A   -    A      A     -    -
GET    /v1/security-bulletins/{id}            A     A   -    A      A     -    -
POST   /v1/emergency-drills                   -     -   -    A      -     -    -
GET    /v1/emergency-drills                   A     A   -    A      A     -    -
GET    /v1/emergency-drills/{id}              A     A   -    A      A     -    -
POST   /v1/systems/{id}/restore-tests         -     -   -    A      -     -    -
GET    /v1/restore-tests                      A     A   -    A      A     A    -
GET    /v1/restore-tests/{id}                 A     A   -    A      A     A    -
POST   /v1/operations-reports                 -     -   -    A      -     -    -
GET    /v1/operations-reports                 A     A   -    A      A     -    -
GET    /v1/operations-reports/{id}            A     A   -    A      A     -    -
GET    /v1/audit                              -     A   -    -      A     -    -
GET    /v1/audit/verify                       -     A   -    -      A     -    -
PATCH  /v1/whoami                             A     A   A    A      A     A    -
POST   /v1/session                            A     A   A    A      A     A    A     public
GET    /v1/session                            A     A   A    A      A     A    -
DELETE /v1/session                            A     A   A    A      A     A    -
POST   /v1/session/password                   A     A   A    A      A     A    -
POST   /v1/password/setup                     A     A   A    A      A     A    A     public
POST   /v1/accounts/{id}/sign-in-link         A     -   -    -      -     -    -
GET    /v1/notifications                      A     A   A    A      A     A    -
POST   /v1/notifications/{id}/read            A     A   A    A      A     A    -
POST   /v1/notifications/read-all             A     A   A    A      A     A    -
GET    /v1/dashboard                          -     A   -    -      A     -    -
GET    /v1/queue                              -     A   A    A      -     A    -
'''


def parse_table():
    rows = {}
    for line in TABLE.strip().splitlines():
        if line.startswith('#'):
            continue
        parts = line.split()
        n = len(ROLES)
        method, path, marks, extra = parts[0], parts[1], parts[2:2 + n], parts[2 + n:]
        assert len(marks) == len(ROLES) and all(m in 'A-' for m in marks), line
        assert (method, path) not in rows, f'duplicate row {method} {path}'
        rows[(method, path)] = {
            'roles': {role: m == 'A' for role, m in zip(ROLES, marks)},
            'public': 'public' in extra,
        }
    return rows


def parse_routes():
    """The (method, path) pairs of every `static const BrRoute routes[]` in broker/br-api*.c
    (each resource file holds its own table)."""
    pairs = []
    for path in sorted(glob.glob(os.path.join(cbtest.SOURCE, 'broker', 'br-api*.c'))):
        with open(path) as f:
            text = f.read()
        m = re.search(r'static\s+const\s+BrRoute\s+routes\s*\[\s*\]\s*=\s*\{(.*?)\n\};', text,
                      re.S)
        if m:
            pairs += re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"([^"]+)"', m.group(1))
    assert pairs, 'cannot find the routing tables in broker/br-api*.c'
    return pairs


# Columns that change in the background, without any call: a waiting job's retries (state,
# attempts, error, next try), the reconciler's view of instances and its events' last sighting.
# "Database unchanged" ignores them; every other column and every row must stay as it was.
VOLATILE = {
    'jobs': {'state', 'error', 'attempts', 'not_before', 'started_at', 'finished_at',
             'lease_owner', 'lease_until'},
    'job_steps': {'state', 'attempts', 'error', 'started_at', 'finished_at', 'node'},
    'events': {'message', 'last_seen', 'resolved_at'},
    'instances': {'observed_state', 'observed_at'},
}


def db_state(path):
    """Every table's row count and digest, the VOLATILE columns left out, for 'database
    unchanged' (compare two with db_fingerprint_diff)."""
    return cbtest.db_fingerprint(path, skip=VOLATILE)


def settle(b, timeout=20):
    """Waits until the jobs an allowed call started have ended: the database (VOLATILE left
    out) is the same twice in a row."""
    deadline = time.time() + timeout
    prev = db_state(b.db_path)
    while time.time() < deadline:
        time.sleep(0.25)
        cur = db_state(b.db_path)
        if cur == prev:
            return
        prev = cur
    raise RuntimeError('the database does not settle: a job keeps running')


SPAN, WIN = cbworld.SPAN, cbworld.WIN


class World(cbworld.World):
    """The fixture: department A and a department B, an account of every role (and a second
    consultant), the callers without a valid token, hosts on libvirt's test driver, trial
    environments, and the states the API cannot reach on the test driver (see TABLE)."""

    def __init__(self, b):
        super().__init__(b)
        self.console_account = None
        self.console_passwords = set()
        self.dept_b = b.make_department('dept-b', 'Department B')
        self.account('consultant-2', 'consultant', key='consultant2')
        self.account('dept-b-clerk', 'department', self.dept_b, key='dept_b')
        self.tokens['unknown-token'] = 'cbt_' + 'A' * 43  # well-formed, matches no account
        self.tokens['unknown-agent-token'] = 'cba_' + 'A' * 43  # well-formed, matches no host
        self.tokens['malformed-token'] = 'not a token at all'
        self.tokens['no-token'] = None
        self.sys_b = cbtest.make_system(b, self.tokens['dept_b'], 'system-b')
        # Visible to every reading role: assigned to the consultant, approved (its trial job
        # waits: no trial host ever has room for it).
        self.req_visible = self.submitted(assign=self.ids['consultant'])
        self.decide(self.req_visible, 'approve')
        # What the API cannot make on the test driver (see TABLE), set while the broker is
        # stopped and before any host exists (a restart empties the test driver's hosts): a
        # production allocation retained without instances, for the purge.
        b.stop()
        con = db_connect(b.db_path, write=True)
        now = time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime())
        with con:
            self.alloc_purge = con.execute(
                "INSERT INTO allocations(department_id, system_id, request_id, state, purpose,"
                " retained_until, created_at, updated_at) VALUES (?, ?, ?, 'retained',"
                " 'production', '2099-01-01T00:00:00.000Z', ?, ?)",
                (self.dept_a, self.sys_a, self.req_visible, now, now)).lastrowid
            # Failed purges of allocations in error, one for each role that may retry a job.
            self.failed_jobs = []
            for _ in range(2):
                alloc = con.execute(
                    "INSERT INTO allocations(department_id, system_id, request_id, state,"
                    " purpose, error, created_at, updated_at) VALUES (?, ?, ?, 'error',"
                    " 'production', 'cbtest: the purge failed', ?, ?)",
                    (self.dept_a, self.sys_a, self.req_visible, now, now)).lastrowid
                job = con.execute(
                    "INSERT INTO jobs(kind, state, allocation_id, error, created_at, started_at,"
                    " finished_at) VALUES ('purge', 'error', ?, 'cbtest: the purge failed',"
                    " ?, ?, ?)", (alloc, now, now, now)).lastrowid
                con.execute("INSERT INTO job_steps(job_id, seq, action, state, attempts, error)"
                            " VALUES (?, 0, 'finish', 'error', 1, 'cbtest: the purge failed')",
                            (job,))
                self.failed_jobs.append((job, alloc))
        self.retry_jobs = list(self.failed_jobs)
        con.close()
        b.start()
        # The hosts: a small trial host and a production host; a spare one with no storage at
        # all (it never takes an instance) for PATCH.
        self.host_trial = self.add_host('trial-small', 'trial', 384)
        self.host_prod = self.add_host('prod-1', 'production', 16384)
        self.host_spare = self.add_host('spare', 'production', 1024, storage=None)
        self.wait_hosts()
        # In trial, for real: the trial job places, creates, defines and starts the instance.
        self.req_trial = self.in_trial()
        r = self.request(self.req_trial)
        self.alloc_trial = r['trial']['allocation_id']
        self.job_trial = r['jobs'][0]['id']
        r = self.request(self.in_trial(token=self.tokens['dept_b'], system=self.sys_b))
        self.alloc_trial_b = r['trial']['allocation_id']
        self.job_trial_b = r['jobs'][0]['id']
        # Through the whole workflow: a request whose trial passed (for allocate), and a
        # production allocation retained after its termination (for restore).
        self.req_passed = self.trial_passed()
        self.alloc_restore, _ = self.production()
        r = b.post('/v1/requests', {'system': self.sys_a, 'kind': 'termination',
                                    'allocation': self.alloc_restore,
                                    'justification': 'cbtest termination'}, token=self.dep)
        assert r.status == 201, r
        tid = r.json()['id']
        r = cbtest.upload_material(b, self.dep, tid, 'backup_proof', b'backed up\n', 'text/plain')
        assert r.status == 201, r
        self.submit(tid)
        self.decide(tid, 'approve')
        self.wait_allocation(self.alloc_restore, 'retained')
        settle(b)
        self.metering_fixture()
        settle(b)

    def metering_fixture(self):
        """Department A's two production allocations of one idle instance each, six hours of
        their windows posted by the production host's agent, the assessment run (an idle
        finding on each), and department A's security records. The agent's token is the
        'agent' caller of the matrix."""
        self.tokens['agent'] = self.agent_tokens[self.host_prod]
        self.spare_agent_token = self.agent_tokens[self.host_spare]
        self.start_clock()
        self.alloc_a1, self.inst_a1 = self.one_instance()
        self.alloc_a2, self.inst_a2 = self.one_instance()
        self.post_idle_windows([self.inst_a1, self.inst_a2])
        assert self.assess()['created'] == 2
        self.finding_a1 = self.live_finding(self.inst_a1)
        self.finding_a2 = self.live_finding(self.inst_a2)
        self.vuln_a = self.record('vulnerabilities', 'cbtest: OpenSSL out of date')
        self.incident_a = self.record('incidents', 'cbtest: login flood')

    def one_instance(self, token=None, system=None):
        """A one-instance production allocation of @token's department (department A's by
        default), active, on the production host. Returns: (allocation id, its instance)."""
        alloc, (inst,) = self.production(token=token, system=system)
        assert inst['host'] == self.host_prod, inst
        return alloc, inst

    def throwaway_account(self):
        return self.account(self.uniq('spare'), 'auditor')[0]


def call(path, body=None, raw=None, headers=None, ok=200):
    return {'path': path, 'body': body, 'raw': raw, 'headers': headers, 'ok': ok}


def prepare(w, method, path, role, allowed):
    """A valid call of (method, path) for @role (@allowed: whether the table lets it through): a
    fresh object where the call changes one, and the status an allowed call must answer."""
    pdf = {'Content-Type': 'application/pdf'}
    key = (method, path)
    if key == ('GET', '/v1/health'):
        return call('/v1/health')
    if key == ('GET', '/metrics'):
        return call('/metrics')
    if key == ('GET', '/v1/whoami'):
        return call('/v1/whoami')
    if key == ('POST', '/v1/whoami/token'):
        return call('/v1/whoami/token', body={})
    if key == ('GET', '/v1/policies'):
        return call('/v1/policies')
    if key == ('PATCH', '/v1/whoami'):
        return call('/v1/whoami', body={'email_notifications': False})
    if key == ('POST', '/v1/session'):
        if not w.console_account:
            aid, tok = w.account(w.uniq('console'), 'auditor')
            cbtest.set_password(w.b, tok, CONSOLE_PASSWORD)
            w.console_account = w.b.get(f'/v1/accounts/{aid}', token=w.tokens['admin']).json()
        return call('/v1/session', body={'name': w.console_account['name'],
                                         'password': CONSOLE_PASSWORD})
    if key in (('GET', '/v1/session'), ('DELETE', '/v1/session')):
        return call('/v1/session', ok=401)
    if key == ('POST', '/v1/session/password'):
        body = {'new_password': CONSOLE_PASSWORD}
        if role in w.console_passwords:
            body['current_password'] = CONSOLE_PASSWORD
        if allowed:
            w.console_passwords.add(role)
        return call('/v1/session/password', body=body, ok=204)
    if key == ('POST', '/v1/password/setup'):
        aid = w.throwaway_account()
        r = w.b.post(f'/v1/accounts/{aid}/sign-in-link', {}, token=w.tokens['admin'])
        assert r.status == 201, r
        return call('/v1/password/setup', body={'token': r.json()['token'],
                                                'password': CONSOLE_PASSWORD}, ok=204)
    if key == ('POST', '/v1/accounts/{id}/sign-in-link'):
        return call(f'/v1/accounts/{w.throwaway_account()}/sign-in-link', body={}, ok=201)
    if key == ('GET', '/v1/notifications'):
        return call('/v1/notifications')
    if key == ('POST', '/v1/notifications/{id}/read'):
        # No account has notification 999999: the access rule lets it through to a 404 (the
        # read itself is tested in test-notifications.py).
        return call('/v1/notifications/999999/read', body={}, ok=404)
    if key == ('POST', '/v1/notifications/read-all'):
        return call('/v1/notifications/read-all', body={}, ok=204)
    if key == ('GET', '/v1/dashboard'):
        return call('/v1/dashboard')
    if key == ('GET', '/v1/queue'):
        return call('/v1/queue')
    if key == ('POST', '/v1/departments'):
        return call('/v1/departments', body={'code': w.uniq('dept-x'), 'name': 'X'}, ok=201)
    if key == ('GET', '/v1/departments'):
        return call('/v1/departments')
    if key == ('GET', '/v1/departments/{id}'):
        return call(f'/v1/departments/{w.dept_a}')
    if key == ('PATCH', '/v1/departments/{id}'):
        return call(f'/v1/departments/{w.dept_a}', body={'quota': {'vcpus': 64}})
    if key == ('POST', '/v1/accounts'):
        return call('/v1/accounts', body={'name': w.uniq('acct'), 'role': 'auditor'}, ok=201)
    if key == ('GET', '/v1/accounts'):
        return call('/v1/accounts')
    if key == ('GET', '/v1/accounts/{id}'):
        return call(f'/v1/accounts/{w.ids["department"]}')
    if key == ('PATCH', '/v1/accounts/{id}'):
        return call(f'/v1/accounts/{w.throwaway_account()}', body={'disabled': False})
    if key == ('POST', '/v1/accounts/{id}/token'):
        return call(f'/v1/accounts/{w.throwaway_account()}/token', body={})
    if key == ('POST', '/v1/systems'):
        body = {'name': w.uniq('sys'), 'category': 'website'}
        if role != 'department':
            body['department_id'] = w.dept_a
        return call('/v1/systems', body=body, ok=201)
    if key == ('GET', '/v1/systems'):
        return call('/v1/systems')
    if key == ('GET', '/v1/systems/{id}'):
        return call(f'/v1/systems/{w.sys_a}')
    if key == ('PATCH', '/v1/systems/{id}'):
        return call(f'/v1/systems/{w.sys_a}', body={'description': w.uniq('edited')})
    if key == ('POST', '/v1/requests'):
        return call('/v1/requests', body=cbtest.new_request_body(w.sys_a), ok=201)
    if key == ('GET', '/v1/requests'):
        return call('/v1/requests')
    if key == ('GET', '/v1/requests/{id}'):
        return call(f'/v1/requests/{w.req_visible}')
    if key == ('PATCH', '/v1/requests/{id}'):
        return call(f'/v1/requests/{w.draft()}', body={'justification': 'edited'})
    if key == ('PUT', '/v1/requests/{id}/materials/{name}'):
        if role == 'vendor':
            return call(f'/v1/requests/{w.req_trial}/materials/test_report',
                        raw=cbtest.PDF_BYTES, headers=pdf, ok=201)
        return call(f'/v1/requests/{w.draft()}/materials/construction_plan',
                    raw=cbtest.PDF_BYTES, headers=pdf, ok=201)
    if key == ('GET', '/v1/requests/{id}/materials/{name}'):
        return call(f'/v1/requests/{w.req_visible}/materials/construction_plan')
    if key == ('POST', '/v1/requests/{id}/submit'):
        return call(f'/v1/requests/{w.draft(complete=True)}/submit', body={})
    if key == ('POST', '/v1/requests/{id}/resubmit'):
        return call(f'/v1/requests/{w.returned()}/resubmit', body={'comment': 'fixed'})
    if key == ('POST', '/v1/requests/{id}/withdraw'):
        return call(f'/v1/requests/{w.draft()}/withdraw', body={})
    if key == ('POST', '/v1/requests/{id}/assign'):
        return call(f'/v1/requests/{w.submitted()}/assign',
                    body={'consultant': w.ids['consultant']})
    if key == ('POST', '/v1/requests/{id}/opinions'):
        rid = w.submitted(assign=w.ids['consultant'])
        return call(f'/v1/requests/{rid}/opinions',
                    body={'recommendation': 'approve', 'comment': 'looks fine'}, ok=201)
    if key == ('POST', '/v1/requests/{id}/decision'):
        return call(f'/v1/requests/{w.submitted()}/decision', body={'decision': 'approve'})
    if key == ('POST', '/v1/requests/{id}/trial-results'):
        if not allowed:
            return call(f'/v1/requests/{w.req_trial}/trial-results',
                        body={'test': 'function', 'result': 'pass', 'report': '0' * 64})
        # A trial of its own, its report uploaded by the vendor: one of three results.
        rid = w.in_trial()
        r = w.b.request('PUT', f'/v1/requests/{rid}/materials/test_report',
                        raw=b'function test: passed\n', token=w.tokens['vendor'],
                        headers={'Content-Type': 'text/plain'})
        assert r.status == 201, r
        return call(f'/v1/requests/{rid}/trial-results',
                    body={'test': 'function', 'result': 'pass', 'report': r.json()['sha256']},
                    ok=201)
    if key == ('POST', '/v1/requests/{id}/allocate'):
        # Only one role may: the one request whose trial passed is allocated once.
        return call(f'/v1/requests/{w.req_passed}/allocate', body={}, ok=202)
    if key == ('POST', '/v1/hosts'):
        name = w.uniq('host')
        uri = cbworld.node_xml(os.path.join(w.b.state_dir, f'{name}.xml'), 1024, pool=None)
        return call('/v1/hosts', body={'name': name, 'uri': uri, 'pool': 'trial'}, ok=201)
    if key == ('GET', '/v1/hosts'):
        return call('/v1/hosts?pool=trial')
    if key == ('GET', '/v1/hosts/{id}'):
        return call(f'/v1/hosts/{w.host_trial}')
    if key == ('PATCH', '/v1/hosts/{id}'):
        return call(f'/v1/hosts/{w.host_spare}', body={'maintenance': True, 'cpu_ratio': None})
    if key == ('GET', '/v1/allocations'):
        return call('/v1/allocations')
    if key == ('GET', '/v1/allocations/{id}'):
        return call(f'/v1/allocations/{w.alloc_trial}')
    if key == ('POST', '/v1/allocations/{id}/restore'):
        return call(f'/v1/allocations/{w.alloc_restore}/restore', body={}, ok=202)
    if key == ('POST', '/v1/allocations/{id}/purge'):
        return call(f'/v1/allocations/{w.alloc_purge}/purge', body={}, ok=202)
    if key == ('GET', '/v1/jobs'):
        return call(f'/v1/jobs?request={w.req_trial}')
    if key == ('GET', '/v1/jobs/{id}'):
        return call(f'/v1/jobs/{w.job_trial}')
    if key == ('POST', '/v1/jobs/{id}/retry'):
        # Each allowed role retries a failed job of its own; refused roles name the first.
        job = w.retry_jobs.pop()[0] if allowed else w.failed_jobs[0][0]
        return call(f'/v1/jobs/{job}/retry', body={'comment': 'cbtest: mended'}, ok=202)
    if key == ('GET', '/v1/events'):
        return call('/v1/events?open=true')
    if key == ('GET', '/v1/audit'):
        return call('/v1/audit')
    if key == ('GET', '/v1/audit/verify'):
        return call('/v1/audit/verify')
    # Metering. The vendor rotates the spare host's agent token (the production host's is the
    # matrix's 'agent' caller); the agent posts a window never sent before.
    span = f'from={w.t_first}&to={w.t_last + WIN}'
    if key == ('POST', '/v1/hosts/{id}/agent-token'):
        return call(f'/v1/hosts/{w.host_spare}/agent-token', body={})
    if key == ('POST', '/v1/samples'):
        return call('/v1/samples', body={'instances': [w.fresh_window(w.inst_a1)]})
    if key == ('GET', '/v1/instances/{id}/usage'):
        return call(f'/v1/instances/{w.inst_a1["id"]}/usage?{span}')
    if key == ('GET', '/v1/allocations/{id}/usage'):
        return call(f'/v1/allocations/{w.alloc_a1}/usage?{span}')
    if key == ('POST', '/v1/metering/rollup'):
        return call('/v1/metering/rollup', body={'day': w.today})
    # Findings: each allowed action gets an open finding nobody acted on yet.
    if key == ('GET', '/v1/findings'):
        return call('/v1/findings')
    if key == ('GET', '/v1/findings/{id}'):
        return call(f'/v1/findings/{w.finding_a1}')
    if key == ('POST', '/v1/findings/{id}/acknowledge'):
        fid = w.fresh_finding(w.inst_a1) if allowed else w.finding_a1
        return call(f'/v1/findings/{fid}/acknowledge', body={'reason': 'seen, will check'})
    if key == ('POST', '/v1/findings/{id}/resolve'):
        fid = w.fresh_finding(w.inst_a1) if allowed else w.finding_a1
        return call(f'/v1/findings/{fid}/resolve', body={})
    if key == ('POST', '/v1/findings/{id}/dismiss'):
        # Only one role may: a dismissed finding is never raised again for its instance.
        return call(f'/v1/findings/{w.finding_a2}/dismiss',
                    body={'reason': 'cbtest: a cold standby, idle by design'})
    if key == ('POST', '/v1/findings/{id}/change-request'):
        fid = w.fresh_finding(w.inst_a1) if allowed else w.finding_a1
        return call(f'/v1/findings/{fid}/change-request', body={}, ok=201)
    if key == ('POST', '/v1/assessment/run'):
        return call('/v1/assessment/run', body={})
    # Security and backup records of department A's system.
    day = time.strftime('%Y-%m-%d', time.gmtime(time.time() - 86400))
    if key == ('POST', '/v1/systems/{id}/vulnerabilities'):
        return call(f'/v1/systems/{w.sys_a}/vulnerabilities',
                    body={'severity': 'medium', 'title': w.uniq('vuln'), 'found_at': day},
                    ok=201)
    if key == ('GET', '/v1/systems/{id}/vulnerabilities'):
        return call(f'/v1/systems/{w.sys_a}/vulnerabilities')
    if key == ('PATCH', '/v1/vulnerabilities/{id}'):
        return call(f'/v1/vulnerabilities/{w.vuln_a}', body={'status': 'fixed'})
    if key == ('PATCH', '/v1/incidents/{id}'):
        return call(f'/v1/incidents/{w.incident_a}', body={'resolved_at': day})
    if key == ('POST', '/v1/systems/{id}/incidents'):
        return call(f'/v1/systems/{w.sys_a}/incidents',
                    body={'severity': 'low', 'title': w.uniq('incident'), 'occurred_at': day},
                    ok=201)
    if key == ('GET', '/v1/systems/{id}/incidents'):
        return call(f'/v1/systems/{w.sys_a}/incidents')
    if key == ('POST', '/v1/systems/{id}/backups'):
        return call(f'/v1/systems/{w.sys_a}/backups',
                    body={'location': 'dr-centre://' + w.uniq('backup'), 'taken_at': day,
                          'size_bytes': 1 << 30, 'sha256': 'ab' * 32}, ok=201)
    if key == ('GET', '/v1/systems/{id}/backups'):
        return call(f'/v1/systems/{w.sys_a}/backups')
    if key == ('GET', '/v1/reports/assessment'):
        return call(f'/v1/reports/assessment?year={w.year}')
    if key == ('GET', '/v1/reports/operations'):
        return call(f'/v1/reports/operations?month={w.month}')
    if key == ('GET', '/v1/reports/costs'):
        return call(f'/v1/reports/costs?month={w.month}')
    if key == ('GET', '/v1/reports/service-quality'):
        return call(f'/v1/reports/service-quality?month={w.month}')
    if key == ('GET', '/v1/maintenance-windows'):
        return call('/v1/maintenance-windows')
    if key in (('POST', '/v1/maintenance-windows'),
               ('POST', '/v1/maintenance-windows/{id}/decision')):
        start = time.time() + 3600
        body = {'host': w.host_prod, 'starts_at': time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                                                time.gmtime(start)),
                'ends_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start + 3600)),
                'reason': w.uniq('maintenance')}
        if key[1] == '/v1/maintenance-windows':
            return call('/v1/maintenance-windows', body=body, ok=201)
        r = w.b.post('/v1/maintenance-windows', body, token=w.tokens['vendor'])
        assert r.status == 201, r
        return call(f'/v1/maintenance-windows/{r.json()["id"]}/decision',
                    body={'decision': 'agree'})
    if key == ('PUT', '/v1/vendor-documents/{name}'):
        doc = f'{w.uniq("document")}: the vendor\'s document\n'.encode()
        return call(f'/v1/vendor-documents/{hashlib.sha256(doc).hexdigest()}', raw=doc,
                    headers={'Content-Type': 'text/plain'}, ok=201)
    duty = duty_fixture(w)
    if key == ('GET', '/v1/vendor-documents/{name}'):
        return call(f'/v1/vendor-documents/{duty["document"]}')
    duty_posts = {
        '/v1/security-bulletins': {'month': w.month, 'published_at': duty['now'],
                                   'title': 'bulletin', 'document': duty['document']},
        '/v1/emergency-drills': {'held_at': duty['now'], 'scenario': 's', 'result': 'r',
                                 'document': duty['document']},
        '/v1/systems/{id}/restore-tests': {'tested_at': duty['now'], 'result': 'ok',
                                           'duration_s': 60, 'document': duty['document']},
        '/v1/operations-reports': {'month': w.month, 'delivered_at': duty['now'],
                                   'document': duty['document']},
    }
    if method == 'POST' and path in duty_posts:
        return call(path.replace('{id}', str(w.sys_a)), body=duty_posts[path], ok=201)
    for coll in ('security-bulletins', 'emergency-drills', 'restore-tests',
                 'operations-reports'):
        if key == ('GET', f'/v1/{coll}'):
            return call(f'/v1/{coll}')
        if key == ('GET', f'/v1/{coll}/{{id}}'):
            return call(f'/v1/{coll}/{duty[coll]}')
    if key == ('POST', '/v1/reports/service-quality/explanations'):
        return call('/v1/reports/service-quality/explanations',
                    body={'month': w.month, 'indicator': 'availability',
                          'text': w.uniq('explanation')}, ok=201)
    return None


def duty_fixture(w):
    """One record of each of the vendor's duties, department A's system restore-tested, and
    their document (made once, by the vendor)."""
    if getattr(w, 'duty', None):
        return w.duty
    vendor = w.tokens['vendor']
    doc = b'role matrix: the vendor\'s document\n'
    sha = hashlib.sha256(doc).hexdigest()
    r = w.b.request('PUT', f'/v1/vendor-documents/{sha}', raw=doc, token=vendor,
                    headers={'Content-Type': 'text/plain'})
    assert r.status == 201, r
    now = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    duty = {'document': sha, 'now': now}
    for coll, path, body in (
            ('security-bulletins', '/v1/security-bulletins',
             {'month': w.month, 'published_at': now, 'title': 't', 'document': sha}),
            ('emergency-drills', '/v1/emergency-drills',
             {'held_at': now, 'scenario': 's', 'result': 'r', 'document': sha}),
            ('restore-tests', f'/v1/systems/{w.sys_a}/restore-tests',
             {'tested_at': now, 'result': 'ok', 'duration_s': 1, 'document': sha}),
            ('operations-reports', '/v1/operations-reports',
             {'month': w.month, 'delivered_at': now, 'document': sha})):
        r = w.b.post(path, body, token=vendor)
        assert r.status == 201, r
        duty[coll] = r.json()['id']
    w.duty = duty
    return duty


def send(b, method, c, token):
    return b.request(method, c['path'], body=c['body'], raw=c['raw'], token=token,
                     headers=c['headers'])


def check_error(ck, r, status, code, what):
    e = json_error(r)
    ck.ok(e is not None and all(k in e for k in ('code', 'message', 'field', 'request_id')),
          f'{what}: a JSON error body with code, message, field and request_id ({r!r})')
    if e is not None and code:
        ck.eq(e.get('code'), code, f'{what}: error code')


def matrix(ck, b, w, table):
    counts = {'allowed': 0, '403': 0, '401': 0, 'public': 0}
    for (method, path), row in table.items():
        for role in ROLES + NO_TOKENS:
            allowed = role not in NO_TOKENS and row['roles'][role]
            c = prepare(w, method, path, role, allowed)
            if not ck.ok(c is not None, f'{method} {path}: the test knows no valid call for it'):
                break
            what = f'{role:15} {method} {path}'
            token = w.tokens[role]
            before = db_state(b.db_path)
            r = send(b, method, c, token)
            if role in NO_TOKENS and not row['public']:
                counts['401'] += 1
                if ck.eq(r.status, 401, what):
                    check_error(ck, r, 401, 'unauthenticated', what)
                    ck.ok('Bearer' in r.headers.get('WWW-Authenticate', ''),
                          f'{what}: 401 carries WWW-Authenticate: Bearer')
                ck.eq(db_fingerprint_diff(before, db_state(b.db_path)), {}, f'{what}: database unchanged')
            elif role in NO_TOKENS or row['roles'][role]:
                counts['public' if role in NO_TOKENS else 'allowed'] += 1
                ck.eq(r.status, c['ok'], f'{what} (allowed)')
                if r.status == 200 and method == 'POST' and path == '/v1/whoami/token' \
                        and role not in NO_TOKENS:
                    w.tokens[role] = r.json()['token']
                if method != 'GET':
                    # A job it started must end before the next caller's "database unchanged".
                    settle(b)
            else:
                counts['403'] += 1
                if ck.eq(r.status, 403, what):
                    check_error(ck, r, 403, 'forbidden', what)
                ck.eq(db_fingerprint_diff(before, db_state(b.db_path)), {}, f'{what}: database unchanged')
    print(f'  matrix: {len(table)} endpoints x {len(ROLES + NO_TOKENS)} callers: '
          f'{counts["allowed"]} allowed, {counts["403"]} forbidden, {counts["401"]} '
          f'unauthenticated, {counts["public"]} public', flush=True)
    # The tokens rotated above must all still work, and whoami must say who is calling.
    for role in ROLES:
        r = b.get('/v1/whoami', token=w.tokens[role])
        if ck.eq(r.status, 200, f'whoami as {role} after rotation'):
            ck.eq(r.json()['role'], role, f'whoami as {role}: role')
    r = b.get('/v1/whoami', token=w.tokens['department'])
    ck.eq(r.json().get('department_id'), w.dept_a, 'whoami of a department account: its department')


def ids_of(r):
    return [o['id'] for o in r.json()['items']]


def expect_404(ck, r, what):
    if ck.eq(r.status, 404, what):
        check_error(ck, r, 404, None, what)


def isolation(ck, b, w):
    """Department B's clerk against department A's objects: 404 every time, nothing leaks."""
    tb = w.tokens['dept_b']
    ta = w.dep
    pdf = {'Content-Type': 'application/pdf'}
    draft_a = w.draft(complete=True)
    returned_a = w.returned()
    submitted_a = w.submitted()
    before = db_state(b.db_path)
    probes = [
        ('GET', f'/v1/departments/{w.dept_a}', None, None),
        ('GET', f'/v1/systems/{w.sys_a}', None, None),
        ('PATCH', f'/v1/systems/{w.sys_a}', {'description': 'taken over'}, None),
        ('GET', f'/v1/requests/{draft_a}', None, None),
        ('GET', f'/v1/requests/{w.req_visible}', None, None),
        ('PATCH', f'/v1/requests/{draft_a}', {'justification': 'taken over'}, None),
        ('GET', f'/v1/requests/{draft_a}/materials/construction_plan', None, None),
        ('GET', f'/v1/requests/{w.req_visible}/materials/construction_plan', None, None),
        ('PUT', f'/v1/requests/{draft_a}/materials/other', cbtest.PDF_BYTES, pdf),
        ('POST', f'/v1/requests/{draft_a}/submit', {}, None),
        ('POST', f'/v1/requests/{returned_a}/resubmit', {}, None),
        ('POST', f'/v1/requests/{draft_a}/withdraw', {}, None),
        ('POST', f'/v1/requests/{submitted_a}/withdraw', {}, None),
        ('GET', f'/v1/allocations/{w.alloc_trial}', None, None),
        ('GET', f'/v1/allocations/{w.alloc_restore}', None, None),
        ('GET', f'/v1/jobs/{w.job_trial}', None, None),
    ]
    for method, path, body, headers in probes:
        if isinstance(body, bytes):
            r = b.request(method, path, raw=body, token=tb, headers=headers)
        else:
            r = b.request(method, path, body=body, token=tb)
        expect_404(ck, r, f'department B: {method} {path}')
    ck.eq(db_fingerprint_diff(before, db_state(b.db_path)), {},
          'department B probing department A: database unchanged')

    # The same answer as for an object that does not exist: nothing to tell them apart.
    for path in (f'/v1/departments/{w.dept_a}', f'/v1/systems/{w.sys_a}',
                 f'/v1/requests/{draft_a}', f'/v1/allocations/{w.alloc_trial}',
                 f'/v1/jobs/{w.job_trial}'):
        ghost = re.sub(r'/\d+$', '/999999', path)
        ra, rg = b.get(path, token=tb), b.get(ghost, token=tb)
        ea, eg = json_error(ra) or {}, json_error(rg) or {}
        ck.eq((ra.status, ea.get('code'), ea.get('field')), (rg.status, eg.get('code'),
                                                             eg.get('field')),
              f'department B: {path} answers like a missing object')

    # Creating against another department's objects.
    r1 = b.post('/v1/requests', cbtest.new_request_body(w.sys_a), token=tb)
    r2 = b.post('/v1/requests', cbtest.new_request_body(999999), token=tb)
    ck.ok(r1.status in (404, 422), f'department B: request for department A\'s system refused '
          f'({r1.status})')
    ck.eq((r1.status, (json_error(r1) or {}).get('code')),
          (r2.status, (json_error(r2) or {}).get('code')),
          'department B: a request on A\'s system answers like one on a missing system')
    r1 = b.post('/v1/systems', {'name': 'intruder', 'category': 'website',
                                'department_id': w.dept_a}, token=tb)
    r2 = b.post('/v1/systems', {'name': 'intruder', 'category': 'website',
                                'department_id': 999999}, token=tb)
    ck.ok(r1.status in (403, 404, 422), f'department B: system for department A refused '
          f'({r1.status})')
    ck.eq(r1.status, r2.status, 'department B: a system for A answers like one for a missing '
          'department')
    ck.eq(db_fingerprint_diff(before, db_state(b.db_path)), {},
          'department B creating in department A: database unchanged')

    # Lists hold only one's own objects, whatever the filter asks for.
    cbtest.make_request(b, tb, w.sys_b)
    for q in ('', f'?department={w.dept_a}'):
        r = b.get('/v1/departments' + q, token=tb)
        ck.eq(ids_of(r), [w.dept_b], f'department B: GET /v1/departments{q} lists only B')
        r = b.get('/v1/systems' + q, token=tb)
        items = r.json()['items']
        ck.ok(items and all(s['department_id'] == w.dept_b for s in items),
              f'department B: GET /v1/systems{q} lists only B\'s systems')
        r = b.get('/v1/requests' + q, token=tb)
        items = r.json()['items']
        ck.ok(items and all(x['department_id'] == w.dept_b for x in items),
              f'department B: GET /v1/requests{q} lists only B\'s requests')
    r = b.get(f'/v1/requests?system={w.sys_a}', token=tb)
    ck.eq(r.json()['items'], [], 'department B: GET /v1/requests?system=<A\'s> is empty')
    # Allocations and jobs: B's own only, whatever the filter names.
    for q in ('', f'?department={w.dept_a}', '?purpose=trial'):
        r = b.get('/v1/allocations' + q, token=tb)
        ck.eq(ids_of(r), [w.alloc_trial_b], f'department B: GET /v1/allocations{q} lists only B\'s')
    for q in (f'?system={w.sys_a}', f'?state=retained'):
        r = b.get('/v1/allocations' + q, token=tb)
        ck.eq(r.json()['items'], [], f'department B: GET /v1/allocations{q} is empty')
    r = b.get('/v1/jobs?limit=1000', token=tb)
    ck.eq(ids_of(r), [w.job_trial_b], 'department B: GET /v1/jobs lists only its allocation\'s job')
    for q in (f'?allocation={w.alloc_trial}', f'?request={w.req_trial}'):
        r = b.get('/v1/jobs' + q, token=tb)
        ck.eq(r.json()['items'], [], f'department B: GET /v1/jobs{q} (department A\'s) is empty')
    r = b.get(f'/v1/jobs?allocation={w.alloc_trial_b}', token=tb)
    ck.eq(ids_of(r), [w.job_trial_b], 'department B: GET /v1/jobs?allocation=<its own>')
    # ...and department A sees its own, and the bureau and the vendor see both.
    r = b.get('/v1/allocations?limit=1000', token=ta)
    ck.ok(w.alloc_trial in ids_of(r) and w.alloc_restore in ids_of(r) and
          all(x['department_id'] == w.dept_a for x in r.json()['items']),
          'department A: GET /v1/allocations lists its own only')
    mine = set(ids_of(r))
    r = b.get('/v1/jobs?limit=1000', token=ta)
    ck.ok(w.job_trial in ids_of(r) and all(x['allocation_id'] in mine for x in r.json()['items']),
          'department A: GET /v1/jobs lists the jobs of its own allocations only')
    ck.eq(b.get(f'/v1/allocations/{w.alloc_trial}', token=ta).status, 200,
          'department A: GET its own allocation')
    ck.eq(b.get(f'/v1/jobs/{w.job_trial}', token=ta).status, 200, 'department A: GET its own job')
    for role in ('reviewer', 'auditor', 'vendor'):
        r = b.get('/v1/allocations?limit=1000', token=w.tokens[role])
        ck.ok({w.alloc_trial, w.alloc_trial_b} <= set(ids_of(r)),
              f'{role}: GET /v1/allocations lists every department\'s')
        r = b.get('/v1/jobs?limit=1000', token=w.tokens[role])
        ck.ok({w.job_trial, w.job_trial_b} <= set(ids_of(r)),
              f'{role}: GET /v1/jobs lists every department\'s')
    # ...and department A still sees its own.
    r = b.get('/v1/requests?limit=1000', token=ta)
    ck.ok(draft_a in ids_of(r) and all(x['department_id'] == w.dept_a for x in r.json()['items']),
          'department A: GET /v1/requests lists its own requests only')
    r = b.get('/v1/departments', token=ta)
    ck.eq(ids_of(r), [w.dept_a], 'department A: GET /v1/departments lists only A')


def consultant_scope(ck, b, w):
    tc = w.tokens['consultant']
    mine = w.submitted(assign=w.ids['consultant'])
    other = w.submitted(assign=w.ids['consultant2'])
    unassigned = w.submitted()
    draft = w.draft(complete=True)
    r = b.get(f'/v1/requests/{mine}', token=tc)
    ck.eq(r.status, 200, 'consultant: GET its assigned request')
    r = b.get(f'/v1/requests/{mine}/materials/construction_plan', token=tc)
    ck.eq(r.status, 200, 'consultant: GET a material of its assigned request')
    before = db_state(b.db_path)
    for rid, why in ((other, 'assigned to another consultant'), (unassigned, 'unassigned'),
                     (draft, 'a draft')):
        expect_404(ck, b.get(f'/v1/requests/{rid}', token=tc), f'consultant: GET request {why}')
        expect_404(ck, b.get(f'/v1/requests/{rid}/materials/construction_plan', token=tc),
                   f'consultant: GET material of a request {why}')
        expect_404(ck, b.post(f'/v1/requests/{rid}/opinions',
                              {'recommendation': 'reject', 'comment': 'no'}, token=tc),
                   f'consultant: opinion on a request {why}')
    ck.eq(db_fingerprint_diff(before, db_state(b.db_path)), {},
          'consultant out of scope: database unchanged')
    r = b.get('/v1/requests?limit=1000', token=tc)
    listed = ids_of(r)
    ck.ok(mine in listed and w.req_visible in listed,
          'consultant: list holds its assigned requests')
    ck.ok(all(x['consultant_id'] == w.ids['consultant'] for x in r.json()['items']),
          'consultant: list holds only requests assigned to it')
    ck.ok(other not in listed and unassigned not in listed and draft not in listed,
          'consultant: list leaves out the others')
    r = b.post(f'/v1/requests/{mine}/opinions', {'recommendation': 'approve', 'comment': 'ok'},
               token=tc)
    ck.eq(r.status, 201, 'consultant: opinion on its assigned request')
    # It decides nothing.
    r = b.post(f'/v1/requests/{mine}/decision', {'decision': 'approve'}, token=tc)
    ck.eq(r.status, 403, 'consultant: decision on its assigned request is forbidden')


def vendor_scope(ck, b, w):
    tv = w.tokens['vendor']
    pdf = {'Content-Type': 'application/pdf'}
    states = {
        'draft': w.draft(complete=True),
        'submitted': w.submitted(),
        'returned': w.returned(),
    }
    rid = w.submitted()
    w.decide(rid, 'reject')
    states['rejected'] = rid
    rid = w.submitted()
    r = b.post(f'/v1/requests/{rid}/withdraw', {}, token=w.dep)
    assert r.status == 200, r
    states['withdrawn'] = rid
    rid = w.submitted()
    w.decide(rid, 'approve')
    states['approved'] = rid
    states['in_trial'] = w.req_trial

    listed = ids_of(b.get('/v1/requests?limit=1000', token=tv))
    before = db_state(b.db_path)
    for state, rid in states.items():
        visible = state in ('approved', 'in_trial')
        r = b.get(f'/v1/requests/{rid}', token=tv)
        rm = b.get(f'/v1/requests/{rid}/materials/construction_plan', token=tv)
        if visible:
            ck.eq(r.status, 200, f'vendor: GET a request that is {state}')
            ck.eq(rm.status, 200, f'vendor: GET a material of a request that is {state}')
            ck.ok(rid in listed, f'vendor: list holds the request that is {state}')
        else:
            expect_404(ck, r, f'vendor: GET a request that is {state}')
            expect_404(ck, rm, f'vendor: GET a material of a request that is {state}')
            ck.ok(rid not in listed, f'vendor: list leaves out the request that is {state}')
            r = b.request('PUT', f'/v1/requests/{rid}/materials/test_report',
                          raw=cbtest.PDF_BYTES, token=tv, headers=pdf)
            expect_404(ck, r, f'vendor: PUT test_report on a request that is {state}')
    r = b.request('PUT', f'/v1/requests/{states["approved"]}/materials/test_report',
                  raw=cbtest.PDF_BYTES, token=tv, headers=pdf)
    ck.eq(r.status, 409, 'vendor: PUT test_report before the trial')
    r = b.request('PUT', f'/v1/requests/{w.req_trial}/materials/construction_plan',
                  raw=cbtest.PDF_BYTES, token=tv, headers=pdf)
    ck.eq(r.status, 403, 'vendor: PUT a material other than test_report')
    r = b.request('PUT', f'/v1/requests/{w.req_trial}/materials/test_report',
                  raw=cbtest.PDF_BYTES, token=w.dep, headers=pdf)
    ck.eq(r.status, 403, 'department: PUT a test_report (the vendor\'s)')
    ck.eq(db_fingerprint_diff(before, db_state(b.db_path)), {}, 'vendor out of scope: database unchanged')
    items = b.get('/v1/requests?limit=1000', token=tv).json()['items']
    ck.ok(all(x['state'] not in ('draft', 'submitted', 'returned', 'withdrawn', 'rejected')
              for x in items), 'vendor: list holds only requests from approved on')
    r = b.request('PUT', f'/v1/requests/{w.req_trial}/materials/test_report',
                  raw=cbtest.PDF_BYTES, token=tv, headers=pdf)
    ck.eq(r.status, 201, 'vendor: PUT test_report during the trial')


def bureau_systems(ck, b, w):
    """The bureau registers systems for a department, naming it; the department then owns them."""
    tr = w.tokens['reviewer']
    before = db_state(b.db_path)
    r = b.post('/v1/systems', {'name': 'no-department', 'category': 'website'}, token=tr)
    ck.eq(r.status, 422, 'reviewer: POST /v1/systems without department_id')
    ck.eq((json_error(r) or {}).get('field'), '/department_id',
          'reviewer: the missing department_id is named')
    r = b.post('/v1/systems', {'name': 'ghost-department', 'category': 'website',
                               'department_id': 999999}, token=tr)
    ck.eq(r.status, 422, 'reviewer: POST /v1/systems for a missing department')
    ck.eq(db_fingerprint_diff(before, db_state(b.db_path)), {},
          'refused system creation: database unchanged')
    sid = cbtest.make_system(b, tr, 'registered-by-bureau', department_id=w.dept_b)
    r = b.get(f'/v1/systems/{sid}', token=w.tokens['dept_b'])
    ck.ok(r.status == 200 and r.json()['department_id'] == w.dept_b,
          'a system the bureau registered belongs to the department named')
    expect_404(ck, b.get(f'/v1/systems/{sid}', token=w.dep),
               'another department cannot see a system the bureau registered for B')


def jobs_of_allowed_calls(ck, b, w):
    """The allowed calls of the matrix that start hypervisor work did it: the jobs ended done."""
    tr = w.tokens['reviewer']
    r = b.get(f'/v1/requests/{w.req_passed}', token=tr).json()
    ck.eq(r['state'], 'allocated', 'allocate: the request is allocated once its job is done')
    a = b.get(f'/v1/allocations/{r["allocation_id"]}', token=tr).json()
    ck.eq((a['purpose'], a['state'], [i['host']['id'] for i in a['instances']],
           [i['state'] for i in a['instances']]),
          ('production', 'active', [w.host_prod], ['running']),
          'allocate: the production instance runs on the production host')
    a = b.get(f'/v1/allocations/{w.alloc_restore}', token=tr).json()
    ck.eq((a['state'], a['retained_until']), ('active', None), 'restore: the allocation is active')
    a = b.get(f'/v1/allocations/{w.alloc_purge}', token=tr).json()
    ck.eq(a['state'], 'purged', 'purge: the allocation is purged')
    jobs = b.get(f'/v1/jobs?allocation={w.alloc_restore}', token=tr).json()['items']
    ck.eq([(j['kind'], j['state']) for j in jobs],
          [('provision', 'done'), ('reclaim', 'done'), ('restore', 'done')],
          f'allocation {w.alloc_restore}: allocated, terminated, restored')
    a = b.get(f'/v1/allocations/{w.alloc_restore}', token=tr).json()
    ck.eq([i['state'] for i in a['instances']], ['running'],
          'restore: the instance runs again on its kept volume')
    jobs = b.get(f'/v1/jobs?allocation={w.alloc_purge}', token=tr).json()['items']
    ck.eq([(j['kind'], j['state']) for j in jobs], [('purge', 'done')],
          f'allocation {w.alloc_purge}: purged by its job')
    for job, alloc in w.failed_jobs:
        j = b.get(f'/v1/jobs/{job}', token=tr).json()
        ck.eq((j['state'], j['retries'], b.get(f'/v1/allocations/{alloc}', token=tr).json()
               ['state']), ('done', 1, 'purged'),
              f'retry: the failed purge {job} ran again and purged allocation {alloc}')


def ghost_of(path):
    """@path with its (first) object id replaced by one that does not exist."""
    return re.sub(r'/\d+(?=/|$|\?)', '/999999', path, count=1)


def metering_isolation(ck, b, w):
    """Department A and department B against each other's usage, findings, security and backup
    records and report rows: every object answers 404 exactly like a missing one, every list
    and report leaves the other's rows out whatever its filters ask for, and the database is
    unchanged. The bureau, the auditor and the vendor see both (so that an absent row means
    something)."""
    ta, tb, tr = w.dep, w.tokens['dept_b'], w.tokens['reviewer']
    # Department B's side: a production allocation whose instance idles (a finding), a system
    # that is not on the cloud (a no-budget row of the annual assessment), and records.
    w.alloc_b, w.inst_b = w.one_instance(tb, w.sys_b)
    w.post_idle_windows([w.inst_b])
    r = b.post('/v1/assessment/run', {}, token=tr)
    assert r.status == 200, r
    sys_b2 = cbtest.make_system(b, tb, 'system-b-offcloud')
    sys_a2 = cbtest.make_system(b, ta, 'system-a-offcloud')
    r = b.post('/v1/metering/rollup', {'day': w.today}, token=w.tokens['vendor'])
    assert r.status == 200, r
    side = {}
    for who, tok, dept, sysid, syses, inst, alloc, code, name in (
            ('A', ta, w.dept_a, w.sys_a, {w.sys_a, sys_a2}, w.inst_a1, w.alloc_a1, 'dept-a',
             'Department A'),
            ('B', tb, w.dept_b, w.sys_b, {w.sys_b, sys_b2}, w.inst_b, w.alloc_b, 'dept-b',
             'Department B')):
        recs = {kind: w.record(kind, f'{kind}-of-{who}', sysid, tok)
                for kind in ('vulnerabilities', 'incidents', 'backups')}
        side[who] = {'who': who, 'token': tok, 'dept': dept, 'sys': sysid, 'systems': syses,
                     'inst': inst, 'alloc': alloc, 'finding': w.live_finding(inst),
                     'records': recs, 'code': code, 'name': name,
                     'words': (code, name, inst['name']) + tuple(
                         f'{k}-of-{who}' for k in ('vulnerabilities', 'incidents', 'backups'))}
    span = f'from={w.t_first}&to={w.t_last + WIN}'

    for me, other in ((side['A'], side['B']), (side['B'], side['A'])):
        tok, tag = me['token'], f'department {me["who"]}'
        before = db_state(b.db_path)
        f, o = other['finding'], other['sys']
        probes = [('GET', f'/v1/findings/{f}', None),
                  ('POST', f'/v1/findings/{f}/acknowledge', {'reason': 'mine now'}),
                  ('POST', f'/v1/findings/{f}/resolve', {}),
                  ('POST', f'/v1/findings/{f}/change-request', {}),
                  ('GET', f'/v1/instances/{other["inst"]["id"]}/usage?{span}', None),
                  ('GET', f'/v1/allocations/{other["alloc"]}/usage?{span}', None),
                  ('PATCH', f'/v1/vulnerabilities/{other["records"]["vulnerabilities"]}',
                   {'status': 'accepted'}),
                  ('PATCH', f'/v1/incidents/{other["records"]["incidents"]}',
                   {'resolved_at': None})]
        for kind in ('vulnerabilities', 'incidents', 'backups'):
            probes += [('GET', f'/v1/systems/{o}/{kind}', None),
                       ('POST', f'/v1/systems/{o}/{kind}',
                        cbworld.record_body(kind, 'planted', w.day))]
        for method, path, body in probes:
            r = b.request(method, path, body=body, token=tok)
            expect_404(ck, r, f'{tag}: {method} {path} (the other department\'s)')
            rg = b.request(method, ghost_of(path), body=body, token=tok)
            e, eg = json_error(r) or {}, json_error(rg) or {}
            ck.eq((r.status, e.get('code'), e.get('field')),
                  (rg.status, eg.get('code'), eg.get('field')),
                  f'{tag}: {method} {path} answers like a missing object')
        ck.eq(db_fingerprint_diff(before, db_state(b.db_path)), {},
              f'{tag} probing the other department\'s metering and records: database unchanged')

        # Findings: only one's own, whatever the filter names.
        for q in ('?limit=1000', f'?department={other["dept"]}',
                  f'?allocation={other["alloc"]}', '?state=open&limit=1000',
                  '?state=live&limit=1000', '?kind=idle&limit=1000',
                  f'?after={f - 1}&limit=1'):
            r = b.get('/v1/findings' + q, token=tok)
            if not ck.eq(r.status, 200, f'{tag}: GET /v1/findings{q}'):
                continue
            items = r.json()['items']
            ck.ok(f not in [x['id'] for x in items] and
                  all(x['department_id'] == me['dept'] for x in items),
                  f'{tag}: GET /v1/findings{q} holds none of the other department\'s findings '
                  f'({[(x["id"], x["department_id"]) for x in items]})')
        ck.ok(me['finding'] in ids_of(b.get('/v1/findings?limit=1000', token=tok)),
              f'{tag}: GET /v1/findings lists its own finding')
        ck.eq(b.get(f'/v1/findings?allocation={other["alloc"]}', token=tok).json()['items'], [],
              f'{tag}: GET /v1/findings?allocation=<the other\'s> is empty')
        r = b.get(f'/v1/findings/{me["finding"]}', token=tok)
        ck.ok(r.status == 200 and r.json()['department_id'] == me['dept'],
              f'{tag}: GET its own finding')
        for kind, rid in me['records'].items():
            r = b.get(f'/v1/systems/{me["sys"]}/{kind}', token=tok)
            ck.ok(r.status == 200 and rid in ids_of(r),
                  f'{tag}: GET /v1/systems/<own>/{kind} lists its own record')

        # The annual assessment: its own department only, the city figures its own.
        for q in (f'?year={w.year}', f'?year={w.year}&department={other["dept"]}'):
            r = b.get('/v1/reports/assessment' + q, token=tok)
            if not ck.eq(r.status, 200, f'{tag}: GET /v1/reports/assessment{q}'):
                continue
            doc = r.json()
            ck.eq([d['id'] for d in doc['departments']], [me['dept']],
                  f'{tag}: assessment{q}: only its own department\'s row')
            nob = doc['no_budget']
            ck.ok(all(x['department_id'] == me['dept'] for x in nob) and
                  not (other['systems'] & {x['system_id'] for x in nob}),
                  f'{tag}: assessment{q}: no no-budget row of the other department ({nob})')
            ck.ok(me['systems'] - {me['sys']} <= {x['system_id'] for x in nob},
                  f'{tag}: assessment{q}: its own off-cloud system is a no-budget row')
            if doc['departments']:
                mine = doc['departments'][0]
                ck.eq((doc['city']['cloud_share']['systems'],
                       doc['city']['efficiency']['allocations'],
                       doc['city']['security']['incidents']),
                      (mine['cloud_share']['systems'], mine['efficiency']['allocations'],
                       mine['security']['incidents']),
                      f'{tag}: assessment{q}: the "city" totals are its own department\'s')
        # The operations report: its own department, instances and findings only.
        for q in (f'?month={w.month}', f'?month={w.month}&department={other["dept"]}'):
            r = b.get('/v1/reports/operations' + q, token=tok)
            if not ck.eq(r.status, 200, f'{tag}: GET /v1/reports/operations{q}'):
                continue
            deps = r.json()['departments']
            ck.eq([d['id'] for d in deps], [me['dept']],
                  f'{tag}: operations{q}: only its own department\'s section')
            insts = [i['id'] for d in deps for i in d['instances']]
            fids = [x['id'] for d in deps for x in d['findings']]
            ck.ok(other['inst']['id'] not in insts and f not in fids,
                  f'{tag}: operations{q}: none of the other\'s instances or findings '
                  f'(instances {insts}, findings {fids})')
            ck.ok(me['inst']['id'] in insts and me['finding'] in fids,
                  f'{tag}: operations{q}: its own instance and finding')
        # The same in CSV and HTML: not a word of the other department.
        for path in (f'/v1/reports/assessment?year={w.year}', f'/v1/reports/operations?month='
                     f'{w.month}'):
            for fmt in ('csv', 'html'):
                q = f'{path}&format={fmt}&lang=en&department={other["dept"]}'
                r = b.get(q, token=tok)
                text = r.body.decode('utf-8', 'replace')
                ck.ok(r.status == 200 and me['name'] in text,
                      f'{tag}: {q}: 200 naming its own department ({r!r})')
                leaked = [x for x in other['words'] if x in text]
                ck.eq(leaked, [], f'{tag}: {q}: nothing of the other department in it')

    # The bureau, the auditor (and for what it may read, the vendor) see both departments.
    A, B = side['A'], side['B']
    for role in ('reviewer', 'auditor', 'vendor'):
        tok = w.tokens[role]
        ck.ok({A['finding'], B['finding']} <= set(ids_of(b.get('/v1/findings?limit=1000',
                                                               token=tok))),
              f'{role}: GET /v1/findings lists both departments\' findings')
        for s in (A, B):
            r = b.get(f'/v1/instances/{s["inst"]["id"]}/usage?{span}', token=tok)
            ck.ok(r.status == 200 and len(r.json()['points']) == SPAN // WIN + 1,
                  f'{role}: usage of department {s["who"]}\'s instance: every window posted')
        r = b.get(f'/v1/reports/operations?month={w.month}', token=tok)
        deps = {d['id']: d for d in r.json()['departments']}
        ck.ok(all(s['dept'] in deps and s['inst']['id'] in
                  [i['id'] for i in deps[s['dept']]['instances']] and s['finding'] in
                  [x['id'] for x in deps[s['dept']]['findings']] for s in (A, B)),
              f'{role}: the operations report holds both departments\' instances and findings')
        r = b.get(f'/v1/reports/operations?month={w.month}&format=csv&lang=en', token=tok)
        text = r.body.decode('utf-8', 'replace')
        ck.ok(A['name'] in text and B['name'] in text,
              f'{role}: the operations report in CSV names both departments')
    for role in ('reviewer', 'auditor'):
        r = b.get(f'/v1/reports/assessment?year={w.year}', token=w.tokens[role])
        doc = r.json()
        ck.ok({A['dept'], B['dept']} <= {d['id'] for d in doc['departments']} and
              {sys_a2, sys_b2} <= {x['system_id'] for x in doc['no_budget']},
              f'{role}: the annual assessment holds both departments and their no-budget rows')
        r = b.get(f'/v1/reports/assessment?year={w.year}&department={B["dept"]}',
                  token=w.tokens[role])
        ck.eq([d['id'] for d in r.json()['departments']], [B['dept']],
              f'{role}: ?department= narrows the annual assessment to that department')
        for s in (A, B):
            for kind, rid in s['records'].items():
                r = b.get(f'/v1/systems/{s["sys"]}/{kind}', token=w.tokens[role])
                ck.ok(r.status == 200 and rid in ids_of(r),
                      f'{role}: department {s["who"]}\'s {kind} are listed')


def agent_role(ck, b, w):
    """The agent token: who it is, what a rotation does to the old one, and that it posts for
    its own host's instances only. (The matrix has checked it against every endpoint.)"""
    tok = w.tokens['agent']
    r = b.get('/v1/whoami', token=tok)
    if ck.eq(r.status, 200, 'agent: GET /v1/whoami'):
        me = r.json()
        ck.eq((me.get('role'), me.get('host_id'), me.get('department_id')),
              ('agent', w.host_prod, None), 'agent: whoami names the role and the host')
    r = b.get('/v1/whoami', token=w.spare_agent_token)
    ck.eq(r.status, 401, 'agent: the token the vendor rotated in the matrix no longer works')
    before = db_state(b.db_path)
    r = b.post('/v1/samples', {'instances': [w.fresh_window(w.inst_a1)]},
               token=w.agent_tokens[w.host_trial])
    if ck.eq(r.status, 403, 'agent of the trial host: a window of a production host\'s instance'):
        e = json_error(r) or {}
        ck.eq((e.get('code'), e.get('field')), ('not_your_instance', '/instances/0/instance'),
              'agent of another host: the refusal names the instance')
    ck.eq(db_fingerprint_diff(before, db_state(b.db_path)), {}, 'agent of another host: nothing stored')
    # Of the fresh windows the matrix made (one per caller of POST /v1/samples), only the
    # agent's was stored.
    r = b.get(f'/v1/instances/{w.inst_a1["id"]}/usage?from={w.next_start + WIN}'
              f'&to={w.t_first}', token=w.tokens['reviewer'])
    ck.eq(len(r.json().get('points', [])), 1,
          'of the windows every caller posted in the matrix, exactly the agent\'s was stored')


def token_edges(ck, b, w):
    adm = w.tokens['admin']
    acct, tok = w.account(w.uniq('edge'), 'auditor')
    ck.eq(b.get('/v1/whoami', token=tok).status, 200, 'fresh account: whoami')
    # Rotation: the old token stops working at once.
    r = b.post('/v1/whoami/token', None, token=tok)
    ck.eq(r.status, 200, 'rotate own token')
    new = r.json()['token']
    ck.eq(b.get('/v1/whoami', token=tok).status, 401, 'old token after rotation: 401')
    ck.eq(b.get('/v1/whoami', token=new).status, 200, 'new token after rotation: 200')
    r = b.post(f'/v1/accounts/{acct}/token', {}, token=adm)
    ck.eq(b.get('/v1/whoami', token=new).status, 401, 'token after the admin rotated it: 401')
    new = r.json()['token']
    # Disabled accounts are shut out everywhere.
    r = b.request('PATCH', f'/v1/accounts/{acct}', body={'disabled': True}, token=adm)
    ck.eq(r.status, 200, 'admin disables an account')
    for path in ('/v1/whoami', '/v1/audit', '/v1/departments'):
        ck.eq(b.get(path, token=new).status, 401, f'disabled account: GET {path}')
    ck.eq(b.post('/v1/whoami/token', None, token=new).status, 401,
          'disabled account: cannot rotate itself back in')
    b.request('PATCH', f'/v1/accounts/{acct}', body={'disabled': False}, token=adm)
    ck.eq(b.get('/v1/whoami', token=new).status, 200, 're-enabled account: whoami')
    # Other shapes of a bad Authorization header.
    good = w.tokens['auditor']
    for hdr, why in ((f'Basic {good}', 'Basic scheme'), (good, 'no scheme'),
                     ('Bearer', 'scheme only'), ('Bearer ' + good + 'x', 'token too long'),
                     ('Bearer ' + good[:-1], 'token too short'),
                     ('Bearer ' + good.upper(), 'token in the wrong case'),
                     ('Bearer ' + 'cbt_' + '\u00e9' * 43, 'non-ASCII token')):
        try:
            r = b.get('/v1/whoami', headers={'Authorization': hdr.encode('utf-8')})
            ck.eq(r.status, 401, f'Authorization: {why}')
        except Exception as e:  # a client-side refusal to send it is fine too
            ck.ok(False, f'Authorization: {why}: {e}')
    ck.eq(b.get('/v1/whoami', headers={'Authorization': 'bearer ' + good}).status, 200,
          'the scheme name is case-insensitive (RFC 7235)')
    # Wrong method on a known path: 405 with Allow, before any authentication.
    r = b.request('DELETE', f'/v1/departments/{w.dept_a}', token=adm)
    ck.eq(r.status, 405, 'DELETE on a department: 405')
    ck.ok('GET' in r.headers.get('Allow', '') and 'PATCH' in r.headers.get('Allow', ''),
          f'405 names the allowed methods (Allow: {r.headers.get("Allow")!r})')
    r = b.get('/v1/nope', token=adm)
    ck.eq(r.status, 404, 'unknown path: 404')


def main():
    ck = cbtest.Checks('role-matrix')
    table = parse_table()
    routes = parse_routes()
    print(f'routing tables in broker/br-api*.c: {len(routes)} routes; test table: {len(table)} rows',
          flush=True)
    ck.ok(len(routes) >= 30, f'parsed the routing table ({len(routes)} routes)')
    ck.eq(len(routes), len(set(routes)), 'no route is listed twice')
    for route in routes:
        ck.ok(route in table, f'route {route[0]} {route[1]} has a row in the test\'s table '
              '(decide who may call it)')
    for row in table:
        ck.ok(row in routes, f'table row {row[0]} {row[1]} is a route in broker/br-api*.c')

    with cbtest.Broker(policy_edits=cbworld.METERING_POLICY) as b:
        run(ck, b, table)
    ck.done()


def run(ck, b, table):
    w = World(b)
    print('checking every role against every endpoint', flush=True)
    matrix(ck, b, w, table)
    print('checking the jobs the allowed calls started', flush=True)
    jobs_of_allowed_calls(ck, b, w)
    print('checking department isolation', flush=True)
    isolation(ck, b, w)
    print('checking the consultant\'s view', flush=True)
    consultant_scope(ck, b, w)
    print('checking the vendor\'s view', flush=True)
    vendor_scope(ck, b, w)
    print('checking systems registered by the bureau', flush=True)
    bureau_systems(ck, b, w)
    print('checking token edge cases', flush=True)
    token_edges(ck, b, w)
    print('checking the agent role', flush=True)
    agent_role(ck, b, w)
    print('checking department isolation of metering, findings, records and reports',
          flush=True)
    metering_isolation(ck, b, w)
    r = b.get('/v1/audit/verify', token=w.tokens['auditor'])
    ck.ok(r.status == 200 and r.json()['ok'], f'audit trail verifies at the end ({r!r})')
    with open(b.log_path, 'rb') as f:
        log = f.read().decode('utf-8', 'replace')
    # The level of each line, not its words: "allocation 3: error → purged" is an info line.
    level = r'\] (error|crit|alert|emerg): '
    ck.ok(not re.search(level, log),
          'broker log has no error lines' + ''.join('\n    ' + line for line in
                                                      log.splitlines()
                                                      if re.search(level, line))[:2000])
    ck.eq(b.get('/v1/health').status, 200, 'broker alive at the end')


if __name__ == '__main__':
    main()
