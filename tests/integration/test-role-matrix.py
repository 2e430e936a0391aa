#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Every role against every endpoint, then object-level scoping.

The expected outcome of each (endpoint, role) pair is written out by hand in TABLE below, from
the intended access of each role (DESIGN.md "Who uses it"), not computed from the routing table:
a table derived from broker/br-api.c could never disagree with it. The test also parses the
routes out of broker/br-api.c and fails when an endpoint has no row here (or a row names an
endpoint that no longer exists), so a new endpoint cannot ship without a decided access rule.

Then: department isolation (another department's objects answer 404, never 403 or 200, and lists
hold only one's own), the consultant's view (only requests assigned to it), the vendor's view
(requests from 'approved' on), and the token edge cases (unknown, malformed, disabled, rotated,
wrong scheme).
"""
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
from cbtest import db_diff, db_snapshot, json_error  # noqa: E402

ROLES = ('admin', 'reviewer', 'consultant', 'vendor', 'auditor', 'department')
NO_TOKENS = ('no-token', 'unknown-token', 'malformed-token')

# A = allowed (the call must succeed with the 2xx the fixture makes possible), - = 403.
# Callers without a valid token get 401 everywhere except rows marked 'public'.
TABLE = '''
# method path                                 admin rev cons vendor audit dept
GET    /v1/health                             A     A   A    A      A     A     public
GET    /metrics                               A     -   -    A      A     -
GET    /v1/whoami                             A     A   A    A      A     A
POST   /v1/whoami/token                       A     A   A    A      A     A
GET    /v1/policies                           A     A   A    A      A     A
POST   /v1/departments                        A     -   -    -      -     -
GET    /v1/departments                        A     A   A    A      A     A
GET    /v1/departments/{id}                   A     A   A    A      A     A
PATCH  /v1/departments/{id}                   A     A   -    -      -     -
POST   /v1/accounts                           A     -   -    -      -     -
GET    /v1/accounts                           A     A   -    -      A     -
GET    /v1/accounts/{id}                      A     A   -    -      A     -
PATCH  /v1/accounts/{id}                      A     -   -    -      -     -
POST   /v1/accounts/{id}/token                A     -   -    -      -     -
POST   /v1/systems                            -     A   -    -      -     A
GET    /v1/systems                            -     A   -    A      A     A
GET    /v1/systems/{id}                       -     A   -    A      A     A
PATCH  /v1/systems/{id}                       -     A   -    -      -     A
POST   /v1/requests                           -     -   -    -      -     A
GET    /v1/requests                           -     A   A    A      A     A
GET    /v1/requests/{id}                      -     A   A    A      A     A
PATCH  /v1/requests/{id}                      -     -   -    -      -     A
PUT    /v1/requests/{id}/materials/{name}     -     -   -    A      -     A
GET    /v1/requests/{id}/materials/{name}     -     A   A    A      A     A
POST   /v1/requests/{id}/submit               -     -   -    -      -     A
POST   /v1/requests/{id}/resubmit             -     -   -    -      -     A
POST   /v1/requests/{id}/withdraw             -     -   -    -      -     A
POST   /v1/requests/{id}/assign               -     A   -    -      -     -
POST   /v1/requests/{id}/opinions             -     A   A    -      -     -
POST   /v1/requests/{id}/decision             -     A   -    -      -     -
GET    /v1/audit                              -     A   -    -      A     -
GET    /v1/audit/verify                       -     A   -    -      A     -
'''


def parse_table():
    rows = {}
    for line in TABLE.strip().splitlines():
        if line.startswith('#'):
            continue
        parts = line.split()
        method, path, marks, extra = parts[0], parts[1], parts[2:8], parts[8:]
        assert len(marks) == len(ROLES) and all(m in 'A-' for m in marks), line
        assert (method, path) not in rows, f'duplicate row {method} {path}'
        rows[(method, path)] = {
            'roles': {role: m == 'A' for role, m in zip(ROLES, marks)},
            'public': 'public' in extra,
        }
    return rows


def parse_routes():
    """The (method, path) pairs of `static const BrRoute routes[]` in broker/br-api.c."""
    with open(os.path.join(cbtest.SOURCE, 'broker', 'br-api.c')) as f:
        text = f.read()
    m = re.search(r'static\s+const\s+BrRoute\s+routes\s*\[\s*\]\s*=\s*\{(.*?)\n\};', text, re.S)
    assert m, 'cannot find the routing table in broker/br-api.c'
    return [(a, b) for a, b in re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"([^"]+)"', m.group(1))]


class World:
    """The fixture: two departments and an account of every role."""

    def __init__(self, b):
        self.b = b
        self.n = 0
        adm = b.admin_token
        self.dept_a = b.make_department('dept-a', 'Department A')
        self.dept_b = b.make_department('dept-b', 'Department B')
        self.tokens = {'admin': adm}
        self.ids = {}
        for role in ('reviewer', 'consultant', 'vendor', 'auditor'):
            self.ids[role], self.tokens[role] = b.make_account(role + '-1', role)
        self.ids['department'], self.tokens['department'] = b.make_account(
            'dept-a-clerk', 'department', self.dept_a)
        self.ids['consultant2'], self.tokens['consultant2'] = b.make_account(
            'consultant-2', 'consultant')
        self.ids['dept_b'], self.tokens['dept_b'] = b.make_account(
            'dept-b-clerk', 'department', self.dept_b)
        self.tokens['unknown-token'] = 'cbt_' + 'A' * 43  # well-formed, matches no account
        self.tokens['malformed-token'] = 'not a token at all'
        self.tokens['no-token'] = None
        self.sys_a = cbtest.make_system(b, self.dep, 'system-a', description='A system')
        self.sys_b = cbtest.make_system(b, self.tokens['dept_b'], 'system-b')
        # Visible to every reading role: assigned to the consultant, approved.
        self.req_visible = self.submitted(assign=self.ids['consultant'])
        self.decide(self.req_visible, 'approve')
        # In trial: no endpoint moves a request there yet (the trial job does), so it is set
        # in the database while the broker is stopped.
        self.req_trial = self.submitted()
        self.decide(self.req_trial, 'approve')
        b.stop()
        con = sqlite3.connect(b.db_path)
        with con:
            con.execute("UPDATE requests SET state = 'in_trial' WHERE id = ?", (self.req_trial,))
        con.close()
        b.start()

    @property
    def dep(self):
        return self.tokens['department']

    def uniq(self, prefix):
        self.n += 1
        return f'{prefix}-{self.n}'

    def draft(self, complete=False):
        if complete:
            return cbtest.make_complete_request(self.b, self.dep, self.sys_a)
        return cbtest.make_request(self.b, self.dep, self.sys_a)

    def submitted(self, assign=None):
        rid = self.draft(complete=True)
        r = self.b.post(f'/v1/requests/{rid}/submit', None, token=self.dep)
        assert r.status == 200, r
        if assign:
            r = self.b.post(f'/v1/requests/{rid}/assign', {'consultant': assign},
                            token=self.tokens['reviewer'])
            assert r.status == 200, r
        return rid

    def decide(self, rid, decision):
        body = {'decision': decision}
        if decision != 'approve':
            body['comment'] = 'cbtest says ' + decision
        r = self.b.post(f'/v1/requests/{rid}/decision', body, token=self.tokens['reviewer'])
        assert r.status == 200, r

    def returned(self):
        rid = self.submitted()
        self.decide(rid, 'return')
        return rid

    def make_account(self, name, role):
        # Not Broker.make_account: the admin's token rotates during the matrix.
        r = self.b.post('/v1/accounts', {'name': name, 'role': role}, token=self.tokens['admin'])
        assert r.status == 201, r
        return r.json()['account']['id'], r.json()['token']

    def throwaway_account(self):
        return self.make_account(self.uniq('spare'), 'auditor')[0]


def call(path, body=None, raw=None, headers=None, ok=200):
    return {'path': path, 'body': body, 'raw': raw, 'headers': headers, 'ok': ok}


def prepare(w, method, path, role):
    """A valid call of (method, path) for @role: a fresh object where the call changes one, and
    the status an allowed call must answer."""
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
    if key == ('GET', '/v1/audit'):
        return call('/v1/audit')
    if key == ('GET', '/v1/audit/verify'):
        return call('/v1/audit/verify')
    return None


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
            c = prepare(w, method, path, role)
            if not ck.ok(c is not None, f'{method} {path}: the test knows no valid call for it'):
                break
            what = f'{role:15} {method} {path}'
            token = w.tokens[role]
            before = db_snapshot(b.db_path)
            r = send(b, method, c, token)
            if role in NO_TOKENS and not row['public']:
                counts['401'] += 1
                if ck.eq(r.status, 401, what):
                    check_error(ck, r, 401, 'unauthenticated', what)
                    ck.ok('Bearer' in r.headers.get('WWW-Authenticate', ''),
                          f'{what}: 401 carries WWW-Authenticate: Bearer')
                ck.eq(db_diff(before, db_snapshot(b.db_path)), {}, f'{what}: database unchanged')
            elif role in NO_TOKENS or row['roles'][role]:
                counts['public' if role in NO_TOKENS else 'allowed'] += 1
                ck.eq(r.status, c['ok'], f'{what} (allowed)')
                if r.status == 200 and method == 'POST' and path == '/v1/whoami/token' \
                        and role not in NO_TOKENS:
                    w.tokens[role] = r.json()['token']
            else:
                counts['403'] += 1
                if ck.eq(r.status, 403, what):
                    check_error(ck, r, 403, 'forbidden', what)
                ck.eq(db_diff(before, db_snapshot(b.db_path)), {}, f'{what}: database unchanged')
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
    before = db_snapshot(b.db_path)
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
    ]
    for method, path, body, headers in probes:
        if isinstance(body, bytes):
            r = b.request(method, path, raw=body, token=tb, headers=headers)
        else:
            r = b.request(method, path, body=body, token=tb)
        expect_404(ck, r, f'department B: {method} {path}')
    ck.eq(db_diff(before, db_snapshot(b.db_path)), {},
          'department B probing department A: database unchanged')

    # The same answer as for an object that does not exist: nothing to tell them apart.
    for path in (f'/v1/departments/{w.dept_a}', f'/v1/systems/{w.sys_a}',
                 f'/v1/requests/{draft_a}'):
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
    ck.eq(db_diff(before, db_snapshot(b.db_path)), {},
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
    before = db_snapshot(b.db_path)
    for rid, why in ((other, 'assigned to another consultant'), (unassigned, 'unassigned'),
                     (draft, 'a draft')):
        expect_404(ck, b.get(f'/v1/requests/{rid}', token=tc), f'consultant: GET request {why}')
        expect_404(ck, b.get(f'/v1/requests/{rid}/materials/construction_plan', token=tc),
                   f'consultant: GET material of a request {why}')
        expect_404(ck, b.post(f'/v1/requests/{rid}/opinions',
                              {'recommendation': 'reject', 'comment': 'no'}, token=tc),
                   f'consultant: opinion on a request {why}')
    ck.eq(db_diff(before, db_snapshot(b.db_path)), {},
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
    before = db_snapshot(b.db_path)
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
    ck.eq(db_diff(before, db_snapshot(b.db_path)), {}, 'vendor out of scope: database unchanged')
    items = b.get('/v1/requests?limit=1000', token=tv).json()['items']
    ck.ok(all(x['state'] not in ('draft', 'submitted', 'returned', 'withdrawn', 'rejected')
              for x in items), 'vendor: list holds only requests from approved on')
    r = b.request('PUT', f'/v1/requests/{w.req_trial}/materials/test_report',
                  raw=cbtest.PDF_BYTES, token=tv, headers=pdf)
    ck.eq(r.status, 201, 'vendor: PUT test_report during the trial')


def bureau_systems(ck, b, w):
    """The bureau registers systems for a department, naming it; the department then owns them."""
    tr = w.tokens['reviewer']
    before = db_snapshot(b.db_path)
    r = b.post('/v1/systems', {'name': 'no-department', 'category': 'website'}, token=tr)
    ck.eq(r.status, 422, 'reviewer: POST /v1/systems without department_id')
    ck.eq((json_error(r) or {}).get('field'), '/department_id',
          'reviewer: the missing department_id is named')
    r = b.post('/v1/systems', {'name': 'ghost-department', 'category': 'website',
                               'department_id': 999999}, token=tr)
    ck.eq(r.status, 422, 'reviewer: POST /v1/systems for a missing department')
    ck.eq(db_diff(before, db_snapshot(b.db_path)), {},
          'refused system creation: database unchanged')
    sid = cbtest.make_system(b, tr, 'registered-by-bureau', department_id=w.dept_b)
    r = b.get(f'/v1/systems/{sid}', token=w.tokens['dept_b'])
    ck.ok(r.status == 200 and r.json()['department_id'] == w.dept_b,
          'a system the bureau registered belongs to the department named')
    expect_404(ck, b.get(f'/v1/systems/{sid}', token=w.dep),
               'another department cannot see a system the bureau registered for B')


def token_edges(ck, b, w):
    adm = w.tokens['admin']
    acct, tok = w.make_account(w.uniq('edge'), 'auditor')
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
    print(f'routing table in broker/br-api.c: {len(routes)} routes; test table: {len(table)} rows',
          flush=True)
    ck.ok(len(routes) >= 30, f'parsed the routing table ({len(routes)} routes)')
    ck.eq(len(routes), len(set(routes)), 'no route is listed twice')
    for route in routes:
        ck.ok(route in table, f'route {route[0]} {route[1]} has a row in the test\'s table '
              '(decide who may call it)')
    for row in table:
        ck.ok(row in routes, f'table row {row[0]} {row[1]} is a route in broker/br-api.c')

    with cbtest.Broker() as b:
        w = World(b)
        print('checking every role against every endpoint', flush=True)
        matrix(ck, b, w, table)
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
        r = b.get('/v1/audit/verify', token=w.tokens['auditor'])
        ck.ok(r.status == 200 and r.json()['ok'], f'audit trail verifies at the end ({r!r})')
        with open(b.log_path, 'rb') as f:
            log = f.read().decode('utf-8', 'replace')
        ck.ok(not re.search(r'\berror\b|crit|alert|emerg', log),
              'broker log has no error lines' + ''.join('\n    ' + line for line in
                                                          log.splitlines()
                                                          if re.search(r'\berror\b', line))[:2000])
        ck.eq(b.get('/v1/health').status, 200, 'broker alive at the end')
    ck.done()


if __name__ == '__main__':
    main()
