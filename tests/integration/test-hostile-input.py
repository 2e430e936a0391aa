#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Hostile input against every endpoint that takes a body, a path or a query parameter.

Every hostile request must be refused with a 4xx carrying {"error": {code, message, field,
request_id}} (field empty only for whole-body syntax errors and size refusals), with the right
status (400 malformed, 413 too large, 415 wrong media type, 422 schema violation, 404 unknown
object), and must leave the database exactly as it was (every table snapshotted before and after).

SQL and XML metacharacters are legal text: a valid request carrying them must succeed, store the
text byte for byte, and change nothing else. The broker must stay up throughout and log no error.

The metering and assessment endpoints (POST /v1/samples with the agent's token, the rollup, the
finding actions, the assessment run, security and backup records) are checked more closely: the
error code of every refusal as well as its field, out-of-range figures and the rules of
docs/metering.md (window alignment, clock skew, retention, average <= maximum, plausible cores,
the agent's own instances), dates that are no dates, other Content-Types, one byte over the body
limit (32 MiB for samples), and, besides the database, what the API shows (the samples counters
of /metrics, usage, findings, requests, records) before and after. Their fixture is made through
the API on libvirt's test driver: a production allocation of four instances with six hours of
idle windows and an idle finding each. Their GET parameters (from, to, step, limit, after,
department, allocation, state, kind, year, month, format, lang) get bad values too.
"""
import copy
import hashlib
import json
import os
import re
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
import cbworld  # noqa: E402
from cbtest import db_connect, INSTANCE, db_diff, db_fingerprint, db_fingerprint_diff, \
    db_snapshot, db_tables, db_watch, db_watch_diff, json_error  # noqa: E402
from cbworld import SMALL, WIN  # noqa: E402

# SQLite's table of AUTOINCREMENT high-water marks moves with each audit record (a table only
# there; PostgreSQL's sequences are not rows).
AUTOINCREMENT = {'sqlite_sequence': (1, 1)} if cbtest.BACKEND == 'sqlite' else {}

MAX_MATERIAL = 1024 * 1024   # materials.max_bytes of the policy this test runs with
MAX_JSON = 1024 * 1024       # the broker's default limits.body_bytes
TEN_MB = 10 * 1024 * 1024

MARK = '@@HOSTILE@@'
SAMPLES_MAX = 32 * 1024 * 1024     # POST /v1/samples's own body limit (its route in broker/br-api-metering.c)

# Raw bytes that make a JSON string invalid UTF-8 (or an escape that is no character).
BAD_UTF8 = [
    ('byte 0xff', b'\xff'),
    ('byte 0xfe', b'\xfe'),
    ('lone continuation byte', b'\x80'),
    ('truncated 2-byte sequence', b'\xc3x'),
    ('overlong "/" (2 bytes)', b'\xc0\xaf'),
    ('overlong "/" (3 bytes)', b'\xe0\x80\xaf'),
    ('overlong NUL', b'\xc0\x80'),
    ('encoded surrogate U+D800', b'\xed\xa0\x80'),
    ('code point above U+10FFFF', b'\xf4\x90\x80\x80'),
    ('5-byte sequence', b'\xf8\x88\x80\x80\x80'),
    ('lone high surrogate escape', b'\\ud800'),
    ('lone low surrogate escape', b'\\udc00'),
    ('high surrogate escape then a letter', b'\\ud800\\u0041'),
]
RAW_CONTROL = [
    ('raw NUL byte', b'a\x00b'),
    ('raw U+0001', b'a\x01b'),
    ('raw U+001F', b'a\x1fb'),
    ('raw newline', b'a\nb'),
    ('raw tab', b'a\tb'),
]
SQL = ["'; DROP TABLE requests; --", '" OR 1=1', "' OR '1'='1", "Robert'); DROP TABLE systems;--",
       '1; DELETE FROM audit; SELECT *', '\\"; --']
XML = ['<', ']]>', '<disk>', '&', '<![CDATA[x]]>', '&amp;&lt;&#0;&#x0;',
       '<domain type="kvm"><name>evil</name><devices><disk/></devices></domain>',
       '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>']
OTHER = ['%s%s%s%n%n', '${jndi:ldap://x/a}', 'ünïcødé 中文 ✓ 🚀', 'x' * 190]
LEGAL_TEXT = SQL + XML + OTHER

WRONG = {
    'string': [1, 1.5, True, None, [], {}, ['x'], {'a': 'x'}],
    'pattern': [1, True, None, [], {}],
    'enum': [1, True, None, [], {}, 'no-such-value', ''],
    'integer': ['1', 1.5, -0.5, True, None, [], {}, '', 'NaN'],
    'boolean': ['true', 1, 0, None, [], {}],
    'object': ['x', 1, [], None, True],
    'array': ['x', 1, {}, None],
    # The metering and assessment documents (schemas/samples.json: a missing figure is null).
    'nint': ['1', 1.5, -0.5, True, [], {}, '', 'NaN'],          # integer or null
    'nnum': ['0.5', True, [], {}, '', 'NaN', 'Infinity'],       # number or null
    'nenum': [1, True, [], {}, 'no-such-value', '', 'RSS'],     # enum with null
    'date': [1, True, None, [], {}, 20260101],                  # an ISO 8601 date (string)
    'ndate': [1, True, [], {}, 20260101],                       # a date or null
}
# The rule a wrong value breaks, by the kind of its member (docs/api.md, Errors).
WRONG_CODE = {'enum': 'schema_violation', 'nenum': 'schema_violation'}
STRING_KINDS = ('string', 'pattern', 'enum', 'nenum', 'date', 'ndate')

# Dates that are no dates (all of them refused 422 at the member): impossible days, bad
# forms, times without a zone, and days that have not come yet.
BAD_DATES = ['2026-02-30', '2025-02-29', '2026-13-01', '2026-00-10', '2026-01-32', '2026-01-00',
             '2026-1-01', '26-01-01', '2026/01/01', '01.02.2026', '20260101', 'yesterday', '',
             ' 2026-01-01', '2026-01-01 ', '2026-01-01T24:00:00Z', '2026-01-01T12:60:00Z',
             '2026-01-01T12:00:61Z', '2026-01-01T12:00:00', '2026-01-01T12:00:00+25:00',
             '2026-01-01T12:00:00+05:60', '2026-01-01T1:2:3Z', '2026-01-01T::Z',
             '2026-01-01T12:00:00.Z', '2026-01-01T12:00:00ZZ', '２０２６-01-01',
             '9999-12-31', '2999-01-01T00:00:00Z']
# Content-Types that are not JSON (docs/api.md: "a JSON body sent with any other Content-Type
# is refused with 415"). application/json-seq (RFC 7464, a sequence of JSON texts) is another
# media type that merely begins with the same letters.
NOT_JSON_TYPES = ['text/plain', 'application/x-www-form-urlencoded',
                  'multipart/form-data; boundary=x', 'application/xml', 'text/json',
                  'application/octet-stream', 'json', 'application/json-seq']


class Ep:
    """One endpoint that takes a JSON body: where to send it, a valid body, and its fields."""

    def __init__(self, method, path, role, body, fields, required=(), objects=('',),
                 optional=False, ok=200, strict=False, extra=(), limit=MAX_JSON, refs=(),
                 observe=None, clamps=None):
        self.method, self.path, self.role = method, path, role
        self.body = body          # callable: a valid body (fresh unique values)
        self.fields = fields      # JSON pointer -> type name (keys of WRONG)
        self.required = required  # pointers the schema requires
        self.objects = objects    # pointers of objects that refuse unknown members
        self.optional = optional  # an empty body stands for {}
        self.ok = ok
        self.target = None        # the path in use
        # The metering and assessment endpoints are checked more closely: the error code (the
        # rule broken) of every refusal, other Content-Types, the body limit's boundary, and
        # what the API shows (@observe) before and after the refusals.
        self.strict = strict
        self.extra = extra        # more cases: (what, status, field, code, make(valid))
        self.limit = limit        # the body limit of the route
        self.refs = refs          # integer members naming other objects (may answer 403/404)
        self.observe = observe    # callable: what the API shows of the state concerned
        self.clamps = clamps or {}  # pointer -> the value a documented rule clamps it to

    @property
    def name(self):
        return f'{self.method} {re.sub(r"/[0-9]+", "/N", self.target or self.path())}'


def ptr_parts(ptr):
    return [int(p) if p.isdigit() else p for p in ptr.split('/')[1:]]


def set_ptr(doc, ptr, value):
    doc = copy.deepcopy(doc)
    parts = ptr_parts(ptr)
    o = doc
    for p in parts[:-1]:
        o = o[p]
    o[parts[-1]] = value
    return doc


def del_ptr(doc, ptr):
    doc = copy.deepcopy(doc)
    parts = ptr_parts(ptr)
    o = doc
    for p in parts[:-1]:
        o = o[p]
    del o[parts[-1]]
    return doc


def get_ptr(doc, ptr):
    o = doc
    for p in ptr_parts(ptr):
        o = o[p]
    return o


def encode(doc):
    return json.dumps(doc, ensure_ascii=False).encode('utf-8')


def with_raw_string(doc, ptr, raw):
    """@doc as bytes with the string at @ptr replaced by the raw bytes @raw (no escaping)."""
    text = encode(set_ptr(doc, ptr, MARK))
    assert text.count(MARK.encode()) == 1
    return text.replace(b'"' + MARK.encode() + b'"', b'"' + raw + b'"')


class Session:
    def __init__(self, ck, b, tokens):
        self.ck, self.b, self.tokens = ck, b, tokens
        self.tables = set(db_snapshot(b.db_path))
        self.table_list = sorted(self.tables)  # what each request's fingerprints look at
        self.sent = 0
        self.changed = False
        self.expected_5xx = 0     # answers this test provokes on purpose (HTTP/9.9: 505)

    def alive(self):
        return self.b.proc is not None and self.b.proc.poll() is None

    def send(self, method, path, role, body=None, raw=None, headers=None, timeout=30):
        self.sent += 1
        return self.b.request(method, path, body=body, raw=raw, token=self.tokens.get(role),
                              headers=headers, timeout=timeout)

    def refused(self, what, method, path, role, status, field=None, raw=None, body=None,
                headers=None, whole_body=False, code=None):
        """Sends one hostile request; checks the status, the error body and an unchanged
        database. @field: the error's field must equal it (None: anything non-empty, or empty
        when @whole_body). @code: the error's code (the rule broken) must be it, or one of
        them (None: any)."""
        ck, b = self.ck, self.b
        before = db_fingerprint(b.db_path, self.table_list)
        try:
            r = self.send(method, path, role, body=body, raw=raw, headers=headers)
        except Exception as e:  # the connection died: the broker may have crashed
            ck.ok(False, f'{what}: no answer ({e!r}); broker alive: {self.alive()}')
            return None
        statuses = status if isinstance(status, (set, tuple)) else {status}
        ok = ck.ok(r.status in statuses, f'{what}: status {r.status}, want '
                   f'{"/".join(map(str, sorted(statuses)))} ({r!r})')
        e = json_error(r)
        if ck.ok(e is not None and all(isinstance(e.get(k), str)
                                       for k in ('code', 'message', 'field', 'request_id')),
                 f'{what}: JSON error body with code, message, field ({r!r})') and ok:
            ck.ok(bool(e['code']) and bool(e['message']), f'{what}: code and message not empty')
            if field is not None:
                ck.eq(e['field'], field, f'{what}: error field')
            elif not whole_body:
                ck.ok(e['field'] != '', f'{what}: error names the field ({r!r})')
            if code is not None:
                codes = code if isinstance(code, (set, tuple)) else {code}
                ck.ok(e['code'] in codes, f'{what}: error code {e["code"]!r}, want '
                      f'{"/".join(sorted(codes))} ({e["message"]!r})')
        if r.status == 200 and isinstance(e, type(None)):
            try:  # a wrongly accepted token rotation must not lock the test out
                if 'token' in r.json() and role:
                    self.tokens[role] = r.json()['token']
            except ValueError:
                pass
        diff = db_fingerprint_diff(before, db_fingerprint(b.db_path, self.table_list))
        self.changed = diff != {}
        ck.ok(diff == {}, f'{what}: database unchanged (changed, rows before and after: {diff})')
        return r


# ---------------------------------------------------------------- fixtures

class World(cbworld.World):
    """Department A and an account of every role, two more auditors ('spare' rotates its own
    token and is sent sign-in links, 'target' is the object of the admin's changes), and the
    metering fixture, all made through the API."""

    def __init__(self, b):
        super().__init__(b)
        self.account('spare-1', 'auditor', key='spare')
        self.account('target-1', 'auditor', key='target')
        self.metering()

    def done_job(self):
        """A job that ended well (one of the production allocation's)."""
        r = self.b.get('/v1/jobs?state=done&limit=1', token=self.tokens['vendor'])
        assert r.status == 200 and r.json()['items'], r
        return r.json()['items'][0]['id']

    def metering(self):
        """Hosts on libvirt's test driver, a production allocation of four small instances
        of department A (through the whole workflow), six hours of idle windows for each
        posted by the production host's agent (the 'agent' caller), the assessment run (an
        open idle finding on each), and department A's security and backup records."""
        self.host_trial = self.add_host('trial-1', 'trial', 1024)
        self.host_prod = self.add_host('prod-1', 'production', 16384)
        self.wait_hosts()
        self.tokens['agent'] = self.agent_tokens[self.host_prod]
        self.alloc, self.inst = self.production([SMALL] * 4)
        self.start_clock()
        self.unowned_uuid = '6f1c3a52-0d7e-4b8e-9a51-0c1f2e3d4b5a'
        self.post_idle_windows(self.inst)
        assert self.assess()['created'] == len(self.inst)
        # Instance 0's findings are acknowledged, resolved and turned into change requests;
        # the others' are dismissed (a dismissed finding never comes back for its instance).
        self.dismissable = [self.live_finding(i) for i in self.inst[1:]]
        self.records = {kind: self.record(kind, f'cbtest-{kind}')
                        for kind in ('vulnerabilities', 'incidents', 'backups')}
        self.vuln = self.records['vulnerabilities']
        # A document of the vendor's, for the records of its duties to name.
        doc = b'hostile-input: the vendor\'s document\n'
        self.vendor_doc = hashlib.sha256(doc).hexdigest()
        r = self.b.request('PUT', f'/v1/vendor-documents/{self.vendor_doc}', raw=doc,
                           token=self.tokens['vendor'], headers={'Content-Type': 'text/plain'})
        assert r.status == 201, r

    def batch(self):
        """A valid batch of never-posted windows: one of instance 0, one of a domain that is
        not the broker's, one of the host."""
        t = self.fresh_start()
        return {'instances': [self.window(self.inst[0], t)],
                'unowned': [{'uuid': self.unowned_uuid, 'name': 'foreign-vm', 'start': t,
                             'duration': WIN, 'readings': 30, 'expected': 30, 'vcpus': 1,
                             'memory_mib': 512, 'cpu_cores_avg': 0.5, 'cpu_cores_max': 0.9,
                             'memory_used_mib_avg': 100.0, 'memory_used_mib_max': 120.0,
                             'net_rx_bytes': 10, 'net_tx_bytes': 10}],
                'host': [{'start': t, 'duration': WIN, 'readings': 30, 'expected': 30,
                          'cpus': 8, 'memory_mib': 16384, 'cpu_used_cores_avg': 0.5,
                          'cpu_used_cores_max': 1.0, 'memory_used_mib_avg': 1000.0,
                          'domains_max': 3, 'cycle_seconds_avg': 0.01,
                          'cycle_seconds_max': 0.02}]}

    def dismissable_finding(self):
        """An open finding of another instance, for a dismissal (one each)."""
        if len(self.dismissable) > 1:
            return self.dismissable.pop(0)
        return self.dismissable[0]  # the last one: a second dismissal of it is a 409


CONSOLE_PASSWORD = 'Correct-Horse-9'


def console_body(w, what):
    """A valid body of the console's sign-in routes; gives the accounts their passwords and
    issues the sign-in link the first time it is asked."""
    w.tokens.setdefault('anonymous', None)
    if what == 'session':
        if not w.ids.get('target-password'):
            cbtest.set_password(w.b, w.tokens['auditor'], CONSOLE_PASSWORD)
            w.ids['target-password'] = True
        return {'name': 'auditor-1', 'password': CONSOLE_PASSWORD}
    if what == 'password':
        if not w.ids.get('consultant-password'):
            cbtest.set_password(w.b, w.tokens['consultant'], CONSOLE_PASSWORD)
            w.ids['consultant-password'] = True
        return {'current_password': CONSOLE_PASSWORD, 'new_password': CONSOLE_PASSWORD}
    r = w.b.post(f'/v1/accounts/{w.ids["spare"]}/sign-in-link', {}, token=w.tokens['admin'])
    assert r.status == 201, r
    return {'token': r.json()['token'], 'password': CONSOLE_PASSWORD}


def endpoints(w):
    quota = {'vcpus': 8, 'memory_mib': 8192, 'disk_gib': 100, 'instances': 4}
    qfields = {'/quota': 'object', '/quota/vcpus': 'integer', '/quota/memory_mib': 'integer',
               '/quota/disk_gib': 'integer', '/quota/instances': 'integer'}
    resources = {'instances': [dict(INSTANCE)]}
    rfields = {'/resources': 'object', '/resources/instances': 'array',
               '/resources/instances/0': 'object', '/resources/instances/0/vcpus': 'integer',
               '/resources/instances/0/memory_mib': 'integer',
               '/resources/instances/0/disk_gib': 'integer',
               '/resources/instances/0/image': 'pattern'}
    robjects = ('', '/resources', '/resources/instances/0')
    return [
        Ep('POST', lambda: '/v1/departments', 'admin',
           lambda: {'code': w.uniq('dept'), 'name': 'Department', 'quota': dict(quota)},
           dict({'/code': 'pattern', '/name': 'string'}, **qfields), ('/code', '/name'),
           ('', '/quota'), ok=201),
        Ep('PATCH', lambda: f'/v1/departments/{w.dept_a}', 'admin',
           lambda: {'name': 'Department A', 'quota': {'vcpus': 64}},
           {'/name': 'string', '/quota': 'object', '/quota/vcpus': 'integer'},
           (), ('', '/quota')),
        Ep('POST', lambda: '/v1/accounts', 'admin',
           lambda: {'name': w.uniq('acct'), 'role': 'department', 'department_id': w.dept_a},
           {'/name': 'pattern', '/role': 'enum', '/department_id': 'integer'},
           ('/name', '/role'), ok=201),
        Ep('PATCH', lambda: f'/v1/accounts/{w.ids["target"]}', 'admin',
           lambda: {'disabled': False, 'email_notifications': True},
           {'/disabled': 'boolean', '/email_notifications': 'boolean'}),
        Ep('POST', lambda: f'/v1/accounts/{w.ids["target"]}/token', 'admin', lambda: {}, {},
           optional=True),
        Ep('POST', lambda: '/v1/whoami/token', 'spare', lambda: {}, {}, optional=True),
        # The console's sign-in, passwords and notifications (issue 8).
        Ep('POST', lambda: '/v1/session', 'anonymous', lambda: console_body(w, 'session'),
           {'/name': 'string', '/password': 'string'}, ('/name', '/password')),
        Ep('POST', lambda: '/v1/session/password', 'consultant',
           lambda: console_body(w, 'password'),
           {'/current_password': 'string', '/new_password': 'string'}, ('/new_password',),
           ok=204),
        Ep('POST', lambda: f'/v1/accounts/{w.ids["spare"]}/sign-in-link', 'admin', lambda: {},
           {}, optional=True, ok=201),
        Ep('POST', lambda: '/v1/password/setup', 'anonymous', lambda: console_body(w, 'link'),
           {'/token': 'string', '/password': 'string'}, ('/token', '/password'), ok=204),
        Ep('PATCH', lambda: '/v1/whoami', 'auditor',
           lambda: {'email': 'target@bureau.example.gov', 'email_notifications': True},
           {'/email_notifications': 'boolean'}),
        Ep('POST', lambda: '/v1/notifications/read-all', 'reviewer', lambda: {}, {},
           optional=True, ok=204),
        Ep('POST', lambda: '/v1/systems', 'department',
           lambda: {'name': w.uniq('system'), 'description': 'd', 'category': 'website',
                    'protection_level': 3, 'status': 'planned', 'department_id': w.dept_a},
           {'/name': 'string', '/description': 'string', '/category': 'enum',
            '/protection_level': 'integer', '/status': 'enum', '/department_id': 'integer'},
           ('/name', '/category'), ok=201),
        Ep('PATCH', lambda: f'/v1/systems/{w.sys_a}', 'department',
           lambda: {'name': 'system-a', 'description': 'd', 'category': 'website',
                    'protection_level': 2, 'status': 'in_service'},
           {'/name': 'string', '/description': 'string', '/category': 'enum',
            '/protection_level': 'integer', '/status': 'enum'}),
        Ep('POST', lambda: '/v1/requests', 'department',
           lambda: {'system': w.sys_a, 'kind': 'new', 'justification': 'j',
                    'resources': copy.deepcopy(resources), 'restart_allowed': False},
           dict({'/system': 'integer', '/kind': 'enum', '/justification': 'string',
                 '/restart_allowed': 'boolean'}, **rfields),
           ('/system', '/kind', '/justification'), robjects, ok=201),
        Ep('PATCH', lambda: f'/v1/requests/{w.draft()}', 'department',
           lambda: {'justification': 'j2', 'restart_allowed': True,
                    'resources': copy.deepcopy(resources)},
           dict({'/justification': 'string', '/restart_allowed': 'boolean'}, **rfields),
           (), robjects),
        Ep('POST', lambda: f'/v1/requests/{w.draft(complete=True)}/submit', 'department',
           lambda: {'comment': 'c'}, {'/comment': 'string'}, optional=True),
        Ep('POST', lambda: f'/v1/requests/{w.returned()}/resubmit', 'department',
           lambda: {'comment': 'c'}, {'/comment': 'string'}, optional=True),
        Ep('POST', lambda: f'/v1/requests/{w.draft()}/withdraw', 'department',
           lambda: {'comment': 'c'}, {'/comment': 'string'}, optional=True),
        Ep('POST', lambda: f'/v1/requests/{w.submitted()}/assign', 'reviewer',
           lambda: {'consultant': w.ids['consultant']}, {'/consultant': 'integer'},
           ('/consultant',)),
        Ep('POST', lambda: f'/v1/requests/{w.submitted()}/opinions', 'reviewer',
           lambda: {'recommendation': 'approve', 'comment': 'c'},
           {'/recommendation': 'enum', '/comment': 'string'}, ('/recommendation', '/comment'),
           ok=201),
        Ep('POST', lambda: f'/v1/requests/{w.submitted()}/decision', 'reviewer',
           lambda: {'decision': 'return', 'comment': 'c'},
           {'/decision': 'enum', '/comment': 'string'}, ('/decision',)),
        # A retry: hostile bodies are refused before the handler; the valid body reaches it,
        # which refuses a job that has not failed (409). (A job that really fails would log an
        # error, which this test forbids; test-job-retry.py retries failed jobs.)
        Ep('POST', lambda: f'/v1/jobs/{w.done_job()}/retry', 'vendor',
           lambda: {'comment': 'c'}, {'/comment': 'string'}, optional=True, ok=409),
    ] + metering_endpoints(w)


def metrics(b, tokens):
    text = b.get('/metrics', token=tokens['auditor']).body.decode()
    return {m.group(1): m.group(2) for m in re.finditer(
        r'^(cloudbroker_samples_\w+) (\S+)$', text, re.M)}


def metering_view(w):
    """What the API shows of metering and assessment state: the samples counters of /metrics,
    instance 0's usage (every window, and by day from the rollups), every finding's state,
    reason and change request, department A's requests, and its system's security and backup
    records."""
    b, tr = w.b, w.tokens['reviewer']
    span = f'from={w.t_last - 34 * 86400}&to={w.t_last + WIN}'
    usage = b.get(f'/v1/instances/{w.inst[0]["id"]}/usage?{span}&step=300', token=tr).json()
    daily = b.get(f'/v1/instances/{w.inst[0]["id"]}/usage?{span}&step=86400', token=tr).json()
    findings = b.get('/v1/findings?limit=1000', token=tr).json()['items']
    view = {
        'metrics': metrics(b, w.tokens),
        'windows': [(p['start'], p['readings'], p['cpu_cores_avg']) for p in usage['points']],
        'daily': daily['points'],
        'findings': [(f['id'], f['state'], f['reason'], f['change_request_id'], f['last_found'])
                     for f in findings],
        'requests': [x['id'] for x in b.get('/v1/requests?limit=1000',
                                            token=w.dep).json()['items']],
        'allocation': b.get(f'/v1/allocations/{w.alloc}/usage?{span}', token=tr).json(),
    }
    for kind in ('vulnerabilities', 'incidents', 'backups'):
        view[kind] = b.get(f'/v1/systems/{w.sys_a}/{kind}', token=tr).json()
    return view


def metering_endpoints(w):
    """The JSON bodies of metering and assessment (schemas/samples.json, rollup.json,
    finding-action.json, empty.json, vulnerability-*.json, incident-create.json,
    backup-create.json), each with its rules beyond the JSON types."""
    observe = lambda: metering_view(w)  # noqa: E731

    def body(make):
        return lambda v: ('body', make(v))

    def at(ptr, x):
        return body(lambda v: set_ptr(v, ptr, x))

    # POST /v1/samples: every member of the three kinds of record.
    fields = {'/instances': 'array', '/unowned': 'array', '/host': 'array'}
    required = []
    for rec, members in (
            ('/instances/0', {'instance': 'integer', 'uuid': 'pattern', 'start': 'integer',
                              'duration': 'integer', 'readings': 'integer',
                              'expected': 'integer', 'vcpus': 'nint', 'memory_mib': 'nint',
                              'cpu_cores_avg': 'nnum', 'cpu_cores_max': 'nnum',
                              'memory_used_mib_avg': 'nnum', 'memory_used_mib_max': 'nnum',
                              'memory_source': 'nenum', 'disk_read_bytes': 'nint',
                              'disk_write_bytes': 'nint', 'disk_read_requests': 'nint',
                              'disk_write_requests': 'nint', 'net_rx_bytes': 'nint',
                              'net_tx_bytes': 'nint', 'net_rx_packets': 'nint',
                              'net_tx_packets': 'nint'}),
            ('/unowned/0', {'uuid': 'pattern', 'name': 'string', 'start': 'integer',
                            'duration': 'integer', 'readings': 'integer', 'expected': 'integer',
                            'vcpus': 'nint', 'memory_mib': 'nint', 'cpu_cores_avg': 'nnum',
                            'cpu_cores_max': 'nnum', 'memory_used_mib_avg': 'nnum',
                            'memory_used_mib_max': 'nnum', 'net_rx_bytes': 'nint',
                            'net_tx_bytes': 'nint'}),
            ('/host/0', {'start': 'integer', 'duration': 'integer', 'readings': 'integer',
                         'expected': 'integer', 'cpus': 'nint', 'memory_mib': 'nint',
                         'cpu_used_cores_avg': 'nnum', 'cpu_used_cores_max': 'nnum',
                         'memory_used_mib_avg': 'nnum', 'domains_max': 'nint',
                         'cycle_seconds_avg': 'nnum', 'cycle_seconds_max': 'nnum'})):
        fields[rec] = 'object'
        for k, kind in members.items():
            fields[f'{rec}/{k}'] = kind
        for k in ('instance', 'uuid', 'name', 'start', 'duration', 'readings', 'expected'):
            if k in members:
                required.append(f'{rec}/{k}')
    now = int(time.time())
    i0 = '/instances/0'
    sv = 'schema_violation'
    samples_extra = [
        # Out of range (schemas/samples.json).
        (f'{i0}/instance = 0', 422, f'{i0}/instance', sv, at(f'{i0}/instance', 0)),
        (f'{i0}/start = -300', 422, f'{i0}/start', sv, at(f'{i0}/start', -300)),
        (f'{i0}/duration = 0', 422, f'{i0}/duration', sv, at(f'{i0}/duration', 0)),
        (f'{i0}/duration = 9', 422, f'{i0}/duration', sv, at(f'{i0}/duration', 9)),
        (f'{i0}/duration = 3601', 422, f'{i0}/duration', sv, at(f'{i0}/duration', 3601)),
        (f'{i0}/readings = -1', 422, f'{i0}/readings', sv, at(f'{i0}/readings', -1)),
        (f'{i0}/readings = 3601', 422, f'{i0}/readings', sv, at(f'{i0}/readings', 3601)),
        (f'{i0}/expected = 0', 422, f'{i0}/expected', sv, at(f'{i0}/expected', 0)),
        (f'{i0}/expected = 3601', 422, f'{i0}/expected', sv, at(f'{i0}/expected', 3601)),
        (f'{i0}/vcpus = -1', 422, f'{i0}/vcpus', sv, at(f'{i0}/vcpus', -1)),
        (f'{i0}/vcpus = 4097', 422, f'{i0}/vcpus', sv, at(f'{i0}/vcpus', 4097)),
        (f'{i0}/memory_mib = -1', 422, f'{i0}/memory_mib', sv, at(f'{i0}/memory_mib', -1)),
        (f'{i0}/cpu_cores_avg = -0.001', 422, f'{i0}/cpu_cores_avg', sv,
         at(f'{i0}/cpu_cores_avg', -0.001)),
        (f'{i0}/cpu_cores_max = 4096.5', 422, f'{i0}/cpu_cores_max', sv,
         at(f'{i0}/cpu_cores_max', 4096.5)),
        (f'{i0}/memory_used_mib_max = -1.5', 422, f'{i0}/memory_used_mib_max', sv,
         at(f'{i0}/memory_used_mib_max', -1.5)),
        (f'{i0}/net_rx_bytes = -1', 422, f'{i0}/net_rx_bytes', sv, at(f'{i0}/net_rx_bytes', -1)),
        (f'{i0}/disk_write_requests = -1', 422, f'{i0}/disk_write_requests', sv,
         at(f'{i0}/disk_write_requests', -1)),
        (f'{i0}/uuid in capitals', 422, f'{i0}/uuid', sv,
         body(lambda v: set_ptr(v, f'{i0}/uuid', get_ptr(v, f'{i0}/uuid').upper()))),
        ('/unowned/0/name of 257 characters', 422, '/unowned/0/name', sv,
         at('/unowned/0/name', 'n' * 257)),
        ('/unowned/0/readings = 3601', 422, '/unowned/0/readings', sv,
         at('/unowned/0/readings', 3601)),
        ('/host/0/cpus = -1', 422, '/host/0/cpus', sv, at('/host/0/cpus', -1)),
        ('/host/0/cycle_seconds_max = -0.5', 422, '/host/0/cycle_seconds_max', sv,
         at('/host/0/cycle_seconds_max', -0.5)),
        ('/host/0/duration = 3601', 422, '/host/0/duration', sv, at('/host/0/duration', 3601)),
        ('20,001 instance windows (maxItems 20000)', 422, '/instances', sv,
         body(lambda v: {'instances': [dict(get_ptr(v, i0), start=get_ptr(v, f'{i0}/start') -
                                            WIN * k) for k in range(20001)]})),
        ('1,001 host windows (maxItems 1000)', 422, '/host', sv,
         body(lambda v: {'host': [dict(get_ptr(v, '/host/0'),
                                       start=get_ptr(v, '/host/0/start') - WIN * k)
                                  for k in range(1001)]})),
        # The rules the schema cannot say (docs/metering.md, "In the broker").
        ('start not a multiple of duration', 422, f'{i0}/start', 'invalid_window',
         body(lambda v: set_ptr(v, f'{i0}/start', get_ptr(v, f'{i0}/start') + 7))),
        ('a window ending an hour ahead', 422, f'{i0}/start', 'future_window',
         at(f'{i0}/start', (now + 3600) // WIN * WIN)),
        ('a window older than the sample retention', 422, f'{i0}/start', 'stale_window',
         at(f'{i0}/start', (now - 40 * 86400) // WIN * WIN)),
        ('an unowned window ending an hour ahead', 422, '/unowned/0/start', 'future_window',
         at('/unowned/0/start', (now + 3600) // WIN * WIN)),
        ('a host window older than the retention', 422, '/host/0/start', 'stale_window',
         at('/host/0/start', (now - 40 * 86400) // WIN * WIN)),
        ('more readings than expected', 422, f'{i0}/readings', sv, at(f'{i0}/readings', 31)),
        ('unowned: more readings than expected', 422, '/unowned/0/readings', sv,
         at('/unowned/0/readings', 31)),
        ('CPU average above its maximum', 422, f'{i0}/cpu_cores_avg', sv,
         at(f'{i0}/cpu_cores_avg', 0.5)),
        ('memory average above its maximum', 422, f'{i0}/memory_used_mib_avg', sv,
         at(f'{i0}/memory_used_mib_avg', 31.0)),
        ('host CPU average above its maximum', 422, '/host/0/cpu_used_cores_avg', sv,
         at('/host/0/cpu_used_cores_avg', 2.0)),
        ('host cycle average above its maximum', 422, '/host/0/cycle_seconds_avg', sv,
         at('/host/0/cycle_seconds_avg', 0.5)),
        ('2 cores used by 1 vCPU', 422, f'{i0}/cpu_cores_max', 'implausible',
         at(f'{i0}/cpu_cores_max', 2.0)),
        ('an instance that does not exist', 403, f'{i0}/instance', 'not_your_instance',
         at(f'{i0}/instance', 999999)),
        ('instance 0 with instance 1\'s UUID', 403, f'{i0}/instance', 'not_your_instance',
         at(f'{i0}/uuid', w.inst[1]['uuid'])),
        ('a second, bad record (the whole batch is refused)', 422, '/instances/1/readings', sv,
         body(lambda v: dict(v, instances=v['instances'] + [
             dict(get_ptr(v, i0), readings=31, start=get_ptr(v, f'{i0}/start') - WIN)]))),
    ]

    def fresh_finding(action):
        return lambda: f'/v1/findings/{w.fresh_finding(w.inst[0])}/{action}'

    def finding_extra():
        return [('/reason empty', 422, '/reason', 'schema_violation', at('/reason', '')),
                ('/reason of 4,001 characters', 422, '/reason', 'schema_violation',
                 at('/reason', 'r' * 4001))]

    date_of = lambda days: time.strftime('%Y-%m-%d', time.gmtime(time.time() - days * 86400))  # noqa: E731,E501
    vfields = {'/severity': 'enum', '/title': 'string', '/status': 'enum', '/found_at': 'date',
               '/fixed_at': 'date'}
    ifields = {'/severity': 'enum', '/title': 'string', '/description': 'string',
               '/occurred_at': 'date', '/resolved_at': 'date'}
    bfields = {'/location': 'string', '/taken_at': 'date', '/size_bytes': 'integer',
               '/sha256': 'pattern'}
    text_limits = lambda ptr, lo, hi: (  # noqa: E731
        ([(f'{ptr} empty', 422, ptr, 'schema_violation', at(ptr, ''))] if lo else []) +
        [(f'{ptr} of {hi + 1} characters', 422, ptr, 'schema_violation', at(ptr, 't' * (hi + 1))),
         (f'{ptr} of {hi} multi-byte characters and one more', 422, ptr, 'schema_violation',
          at(ptr, '中' * (hi + 1)))])
    sys_path = lambda kind: lambda: f'/v1/systems/{w.sys_a}/{kind}'  # noqa: E731
    this_month = lambda: time.strftime('%Y-%m', time.gmtime())  # noqa: E731
    now_iso = lambda: time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())  # noqa: E731
    dfields = lambda **kw: dict({f'/{k}': v for k, v in kw.items()}, **{'/document': 'pattern'})  # noqa: E731,E501
    doc_extra = lambda: [  # noqa: E731
        ('/document never uploaded', 422, '/document', 'unknown_reference',
         at('/document', 'f' * 64)),
        ('/document in capitals', 422, '/document', 'schema_violation',
         at('/document', 'A' * 64))]
    return [
        Ep('POST', lambda: '/v1/samples', 'agent', w.batch, fields, tuple(required),
           ('', '/instances/0', '/unowned/0', '/host/0'), strict=True, extra=samples_extra,
           limit=SAMPLES_MAX, refs=('/instances/0/instance',), observe=observe,
           clamps={'/instances/0/memory_mib': SMALL['memory_mib']}),
        Ep('POST', lambda: '/v1/metering/rollup', 'vendor', lambda: {'day': w.day},
           {'/day': 'pattern'}, ('/day',), strict=True, observe=observe,
           extra=[(f'/day = {d!r}', 422, '/day', 'schema_violation', at('/day', d))
                  for d in ('2024-02-30', '2025-02-29', '2026-13-01', '2026-00-10', '2026-01-32',
                            '2026-01-00', '2026-1-01', '26-01-01', '2026/01/01',
                            '2026-01-01T00:00:00Z', ' 2026-01-01', '2026-01-01 ', 'yesterday',
                            '', '２０２６-01-01')]),
        Ep('POST', fresh_finding('acknowledge'), 'department',
           lambda: {'reason': 'seen'}, {'/reason': 'string'}, optional=True, strict=True,
           extra=finding_extra(), observe=observe),
        Ep('POST', fresh_finding('resolve'), 'department',
           lambda: {'reason': 'resized by hand'}, {'/reason': 'string'}, optional=True,
           strict=True, extra=finding_extra(), observe=observe),
        Ep('POST', lambda: f'/v1/findings/{w.dismissable_finding()}/dismiss', 'reviewer',
           lambda: {'reason': 'a cold standby'}, {'/reason': 'string'}, ('/reason',),
           strict=True, extra=finding_extra(), observe=observe),
        Ep('POST', fresh_finding('change-request'), 'department',
           lambda: {}, {}, optional=True, strict=True, ok=201, observe=observe),
        Ep('POST', lambda: '/v1/assessment/run', 'reviewer', lambda: {}, {}, optional=True,
           strict=True, observe=observe),
        Ep('POST', sys_path('vulnerabilities'), 'department',
           lambda: {'severity': 'high', 'title': w.uniq('vuln'), 'status': 'fixed',
                    'found_at': date_of(10), 'fixed_at': date_of(2) + 'T10:00:00Z'},
           vfields, ('/severity', '/title', '/found_at'), strict=True, ok=201, observe=observe,
           extra=text_limits('/title', 1, 500)),
        Ep('PATCH', lambda: f'/v1/vulnerabilities/{w.vuln}', 'vendor',
           lambda: {'status': 'fixed', 'fixed_at': date_of(1) + 'T08:30:00+08:00'},
           {'/status': 'enum', '/fixed_at': 'date'}, ('/status',), strict=True,
           observe=observe),
        Ep('POST', sys_path('incidents'), 'vendor',
           lambda: {'severity': 'medium', 'title': w.uniq('incident'), 'description': 'd',
                    'occurred_at': date_of(3) + 'T01:02:03.456Z', 'resolved_at': date_of(2)},
           ifields, ('/severity', '/title', '/occurred_at'), strict=True, ok=201,
           observe=observe,
           extra=text_limits('/title', 1, 500) + text_limits('/description', 0, 10000)),
        Ep('PATCH', lambda: f'/v1/incidents/{w.records["incidents"]}', 'vendor',
           lambda: {'resolved_at': date_of(0) + 'T00:00:01Z'},
           {'/resolved_at': 'ndate'}, ('/resolved_at',), strict=True, observe=observe),
        Ep('POST', sys_path('backups'), 'department',
           lambda: {'location': 'dr://' + w.uniq('backup'), 'taken_at': date_of(1),
                    'size_bytes': 123456789, 'sha256': 'a' * 64},
           bfields, ('/location', '/taken_at', '/size_bytes', '/sha256'), strict=True, ok=201,
           observe=observe,
           extra=text_limits('/location', 1, 1000) + [
               ('/size_bytes = -1', 422, '/size_bytes', 'schema_violation',
                at('/size_bytes', -1)),
               ('/sha256 in capitals', 422, '/sha256', 'schema_violation',
                at('/sha256', 'A' * 64)),
               ('/sha256 of 63 digits', 422, '/sha256', 'schema_violation',
                at('/sha256', 'a' * 63)),
               ('/sha256 of 65 digits', 422, '/sha256', 'schema_violation',
                at('/sha256', 'a' * 65)),
               ('/sha256 not hex', 422, '/sha256', 'schema_violation',
                at('/sha256', 'g' * 64))]),
        # The vendor's duties (docs/service-quality.md): each names a document uploaded first.
        Ep('POST', lambda: '/v1/security-bulletins', 'vendor',
           lambda: {'month': this_month(), 'published_at': now_iso(), 'title': w.uniq('bulletin'),
                    'document': w.vendor_doc},
           dfields(month='pattern', published_at='date', title='string'),
           ('/month', '/published_at', '/title', '/document'), strict=True, ok=201,
           extra=text_limits('/title', 1, 500) + doc_extra()),
        Ep('POST', lambda: '/v1/emergency-drills', 'vendor',
           lambda: {'held_at': date_of(1), 'scenario': w.uniq('drill'), 'result': 'ok',
                    'document': w.vendor_doc},
           dfields(held_at='date', scenario='string', result='string'),
           ('/held_at', '/scenario', '/result', '/document'), strict=True, ok=201,
           extra=text_limits('/scenario', 1, 2000) + text_limits('/result', 1, 4000) +
           doc_extra()),
        Ep('POST', sys_path('restore-tests'), 'vendor',
           lambda: {'tested_at': date_of(1) + 'T10:00:00Z', 'result': 'ok', 'duration_s': 600,
                    'backup': w.records['backups'], 'document': w.vendor_doc},
           dfields(tested_at='date', result='enum', duration_s='integer', backup='integer'),
           ('/tested_at', '/result', '/duration_s', '/document'), strict=True, ok=201,
           refs=('/backup',), extra=doc_extra() + [
               ('/duration_s = -1', 422, '/duration_s', 'schema_violation',
                at('/duration_s', -1)),
               ('/backup not of this system', 422, '/backup', 'unknown_reference',
                at('/backup', 999999))]),
        Ep('POST', lambda: '/v1/operations-reports', 'vendor',
           lambda: {'month': this_month(), 'delivered_at': now_iso(), 'document': w.vendor_doc},
           dfields(month='pattern', delivered_at='date'),
           ('/month', '/delivered_at', '/document'), strict=True, ok=201, extra=doc_extra()),
        # Maintenance windows (proposed ahead of time) and the vendor's explanations of the
        # scorecard (docs/service-quality.md).
        Ep('POST', lambda: '/v1/maintenance-windows', 'vendor',
           lambda: {'host': w.host_prod, 'starts_at': date_of(-2) + 'T02:00:00Z',
                    'ends_at': date_of(-2) + 'T12:00:00+08:00', 'reason': w.uniq('maintenance')},
           {'/host': 'integer', '/starts_at': 'pattern', '/ends_at': 'pattern',
            '/reason': 'string'}, ('/host', '/starts_at', '/ends_at', '/reason'), strict=True,
           ok=201, refs=('/host',), extra=text_limits('/reason', 1, 2000) + [
               ('/starts_at gone by', 422, '/starts_at', 'schema_violation',
                at('/starts_at', date_of(1) + 'T02:00:00Z')),
               ('/starts_at not a time', 422, '/starts_at', 'schema_violation',
                at('/starts_at', date_of(-2) + 'T99:00:00Z')),
               ('/ends_at before /starts_at', 422, '/ends_at', 'schema_violation',
                at('/ends_at', date_of(-2) + 'T01:00:00Z')),
               ('/host unknown', 422, '/host', 'schema_violation', at('/host', 999999))]),
        Ep('POST', lambda: '/v1/reports/service-quality/explanations', 'vendor',
           lambda: {'month': this_month(), 'indicator': 'availability',
                    'text': w.uniq('the host was replaced')},
           {'/month': 'pattern', '/indicator': 'enum', '/text': 'string'},
           ('/month', '/indicator', '/text'), strict=True, ok=201,
           extra=text_limits('/text', 1, 4000) + [
               ('/month 2026-13', 422, '/month', 'schema_violation', at('/month', '2026-13'))]),
    ]


# ---------------------------------------------------------------- raw HTTP

def head(method, path, token, extra=()):
    lines = [f'{method} {path} HTTP/1.1', 'Host: 127.0.0.1']
    if token:
        lines.append(f'Authorization: Bearer {token}')
    lines += list(extra)
    return ('\r\n'.join(lines) + '\r\n\r\n').encode()


def raw_error(data):
    """The error object of a raw HTTP response's JSON error body, or None. Only the first
    response counts (a pipelined second one may follow in the same bytes)."""
    head, _, body = (data or b'').partition(b'\r\n\r\n')
    m = re.search(rb'(?im)^content-length:\s*(\d+)', head)
    if m:
        body = body[:int(m.group(1))]
    try:
        e = json.loads(body.decode()).get('error')
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    return e if isinstance(e, dict) else None


def parse_response(data):
    m = re.match(rb'HTTP/1\.[01] (\d{3})', data)
    if not m:
        return None, None
    _, _, body = data.partition(b'\r\n\r\n')
    try:
        return int(m.group(1)), json.loads(body.decode())
    except ValueError:
        return int(m.group(1)), None


def early_refusal(port, method, path, token, length, content_type, wait=3.0):
    """Announces @length body bytes, sends only a few, and waits for the answer: a server that
    refuses by Content-Length answers at once. Returns (status, error object, seconds)."""
    s = socket.create_connection(('127.0.0.1', port), timeout=wait)
    t0 = time.time()
    data = b''
    try:
        s.sendall(head(method, path, token, (f'Content-Type: {content_type}',
                                             f'Content-Length: {length}')) + b'%PDF-{"a":')
        while True:
            try:
                c = s.recv(65536)
            except OSError:
                break
            if not c:
                break
            data += c
            st, body = parse_response(data)
            if body is not None:
                break
    finally:
        s.close()
    st, body = parse_response(data)
    return st, (body or {}).get('error') if isinstance(body, dict) else None, time.time() - t0


def chunked_upload(port, method, path, token, total, content_type, wait=10.0):
    """Streams @total body bytes chunked (no Content-Length) while reading the answer.
    Returns (status, error object, bytes sent before the answer or the end)."""
    data, sent = cbtest.stream_body(port, head(method, path, token, (
        f'Content-Type: {content_type}', 'Transfer-Encoding: chunked')), total,
        b'%PDF-' + b'a' * (65536 - 5), True, wait)
    st, body = parse_response(data)
    return st, (body or {}).get('error') if isinstance(body, dict) else None, sent


# ---------------------------------------------------------------- checks

def scalar_fields(ep):
    """(pointer, kind) of the body's scalar members, outermost first."""
    kinds = ('string', 'pattern', 'enum', 'integer', 'boolean', 'nint', 'nnum', 'nenum', 'date',
             'ndate')
    return sorted(((p, k) for p, k in ep.fields.items() if k in kinds),
                  key=lambda pk: len(ptr_parts(pk[0])))


def with_duplicate(doc, ptr):
    """@doc as bytes with the member at @ptr present twice in its object (the first copy
    holds the same valid value: which one would count?)."""
    parts = ptr_parts(ptr)
    parent = '/'.join([''] + [str(x) for x in parts[:-1]])
    marker = '__cbtest_dup__'
    d = set_ptr(doc, (parent + '/' if parent else '/') + marker, get_ptr(doc, ptr))
    text = encode(d)
    assert text.count(b'"%s":' % marker.encode()) == 1
    return text.replace(b'"%s":' % marker.encode(), b'"%s":' % str(parts[-1]).encode())


def big_integer(se, ep, what, body, ptr, x):
    """An integer beyond 64 bits in a member whose schema sets no maximum. JSON Schema calls it
    valid, SQLite cannot hold it: the broker may refuse it (422 at the member) or keep it exactly
    (in the database and in its answer), but never store or answer another number. A member
    whose documented rule is to clamp (ep.clamps: docs/metering.md, the window's memory_mib is
    stored as at most the instance's allocated memory) may store the clamp instead.
    Returns: whether the database changed."""
    ck, b = se.ck, se.b
    before = db_snapshot(b.db_path)
    r = se.send(ep.method, ep.target, ep.role, body=body)
    after = db_snapshot(b.db_path)
    diff = db_diff(before, after)
    e = json_error(r)
    if r.status == 422:
        ck.eq((e or {}).get('field'), ptr, f'{what}: refused 422 at the member')
        ck.eq(diff, {}, f'{what}: refused, so the database is unchanged')
        return diff != {}
    if not ck.ok(200 <= r.status < 300, f'{what}: refused with 422 or accepted, got {r!r}'):
        return diff != {}
    stored = [v for t, (added, _) in diff.items()
              if t not in ('audit', 'audit_head', 'sqlite_sequence') for row in added for v in row]
    clamp = ep.clamps.get(ptr)
    ck.ok(x in stored or (clamp is not None and clamp in stored),
          f'{what}: accepted ({r.status}), so stored exactly as sent'
          + (f' or as the documented clamp {clamp}' if clamp is not None else '')
          + f'; stored instead: {sorted({v for v in stored if isinstance(v, int) and v > 10 ** 12})}')
    try:
        echoed = get_ptr(r.json(), ptr)
    except (ValueError, KeyError, IndexError, TypeError):
        echoed = None
    if echoed is not None:
        ck.eq(echoed, x, f'{what}: accepted, so answered as sent')
    return True


def json_battery(se, w, ep):
    """Everything hostile about one JSON endpoint's body. Each case is built from a fresh valid
    body, and a case the broker wrongly accepts gets a fresh target for the next one, so that one
    bug shows once instead of spoiling every later case."""
    ep.target = ep.path()
    name = ep.name
    sample = ep.body()
    strict = ep.strict
    seen = ep.observe() if ep.observe else None
    cases = []  # (what, status, field, whole_body, raw, body, headers, code)
    bigints = []  # (pointer, integer beyond int64) of members without a maximum

    def case(what, status, field=None, whole_body=False, raw=None, body=None, headers=None,
             code=None):
        cases.append((what, status, field, whole_body, raw, body, headers,
                      code if strict else None))

    # Whole-body syntax errors.
    def inner(v):
        return encode(v)[1:-1]

    def plus(v):
        return (b',' + inner(v)) if v else b''

    malformed = [
        ('truncated document', lambda v: encode(v)[:len(encode(v)) // 2]),
        ('only an opening brace', lambda v: b'{'),
        ('trailing garbage', lambda v: encode(v) + b' x'),
        ('a second document', lambda v: encode(v) + b'{}'),
        ('trailing comma', lambda v: b'{"x":1' + plus(v) + b',}'),
        ('single-quoted strings', lambda v: b"{'x':'y'" + plus(v).replace(b'"', b"'") + b'}'),
        ('unquoted member names',
         lambda v: b'{x:1' + re.sub(rb'"(\w+)":', rb'\1:', plus(v)) + b'}'),
        ('block comment', lambda v: b'/* c */' + encode(v)),
        ('line comment', lambda v: encode(v) + b' // c'),
        ('comment inside', lambda v: b'{/* c */' + inner(v) + b'}'),
        ('NaN', lambda v: b'{"x":NaN' + plus(v) + b'}'),
        ('Infinity', lambda v: b'{"x":Infinity' + plus(v) + b'}'),
        ('-Infinity', lambda v: b'{"x":-Infinity' + plus(v) + b'}'),
        ('hexadecimal number', lambda v: b'{"x":0x10' + plus(v) + b'}'),
        ('leading zero', lambda v: b'{"x":010' + plus(v) + b'}'),
        ('leading plus', lambda v: b'{"x":+1' + plus(v) + b'}'),
        ('bare decimal point', lambda v: b'{"x":.5' + plus(v) + b'}'),
        ('raw NUL after the document', lambda v: encode(v) + b'\x00'),
        ('raw NUL before the document', lambda v: b'\x00' + encode(v)),
        ('invalid UTF-8 in a member name', lambda v: b'{"\xff":1' + plus(v) + b'}'),
        ('bad escape', lambda v: b'{"x":"\\q"' + plus(v) + b'}'),
        ('truncated \\u escape', lambda v: b'{"x":"\\u12"' + plus(v) + b'}'),
        ('whitespace only', lambda v: b'   \r\n '),
        ('10,000-deep array nesting', lambda v: b'[' * 10000 + b']' * 10000),
        ('10,000-deep object nesting', lambda v: b'{"a":' * 10000 + b'1' + b'}' * 10000),
        ('10,000 unclosed arrays', lambda v: b'[' * 10000),
    ]
    if not ep.optional:
        malformed.append(('empty body', lambda v: b''))
    # Duplicate member names: refused as malformed (common/cm-json.c refuses them on purpose,
    # json-c would keep only the last; docs/api.md "Request bodies" says otherwise: see the
    # report of this test's author).
    for ptr, kind in ep.fields.items():
        if kind in ('string', 'pattern', 'enum', 'integer', 'boolean') and \
                len(ptr_parts(ptr)) == 1:
            k = ptr_parts(ptr)[-1].encode()
            # The first copy holds another valid value: which one would count?
            other = encode(get_ptr(ep.body(), ptr))
            malformed.append((f'duplicate member "{k.decode()}"',
                              lambda v, k=k, other=other: b'{"%s":%s,' % (k, other) + inner(v) +
                              b'}'))
            break
    else:
        if strict and scalar_fields(ep):
            ptr = scalar_fields(ep)[0][0]
            malformed.append((f'duplicate member {ptr}',
                              lambda v, ptr=ptr: with_duplicate(v, ptr)))
    if strict:
        malformed.append(('duplicate member at the top level',
                          lambda v: b'{"x":1,"x":2' + plus(v) + b'}'))
    for what, make in malformed:
        case(what, 400, whole_body=True, raw=make, code='malformed_json')

    # A document that is not an object.
    for top in (b'null', b'[]', b'"x"', b'1', b'true'):
        case(f'top-level {top.decode()}', 422, field='', raw=lambda v, top=top: top,
             code='wrong_type')
    case('top-level array holding the body', 422, field='', raw=lambda v: b'[' + encode(v) + b']',
         code='wrong_type')

    # Strings: bad UTF-8, raw control characters, NUL, length.
    kinds = STRING_KINDS if strict else ('string', 'pattern', 'enum')
    for ptr, kind in ep.fields.items():
        if kind not in kinds:
            continue
        for what, seq in BAD_UTF8:
            case(f'{ptr} {what}', 400, whole_body=True, code='malformed_json',
                 raw=lambda v, ptr=ptr, seq=seq: with_raw_string(v, ptr, b'ok' + seq + b'ok'))
        for what, seq in RAW_CONTROL:
            case(f'{ptr} {what}', 400, whole_body=True, code='malformed_json',
                 raw=lambda v, ptr=ptr, seq=seq: with_raw_string(v, ptr, seq))
        # docs/api.md: 400 nul_byte "a string in the body contains \u0000".
        case(f'{ptr} \\u0000 escape', 400 if strict else (400, 422), field=ptr, code='nul_byte',
             raw=lambda v, ptr=ptr: with_raw_string(v, ptr, b'a\\u0000b'))
        case(f'{ptr} nearly 1 MiB long', 422, field=ptr, code='schema_violation',
             body=lambda v, ptr=ptr: set_ptr(v, ptr, 'x' * (MAX_JSON - 48 * 1024)))

    # Wrong types, one field at a time; integers out of any range.
    for ptr, kind in ep.fields.items():
        for x in WRONG[kind]:
            if kind == 'object' and ptr == '/quota' and x == {}:
                continue
            case(f'{ptr} = {json.dumps(x)[:24]}', 422, field=ptr,
                 code=WRONG_CODE.get(kind, 'wrong_type'),
                 body=lambda v, ptr=ptr, x=x: set_ptr(v, ptr, x))
        if kind in ('integer', 'nint'):
            for x in (10 ** 30, -10 ** 30, 2 ** 63, -2 ** 63 - 1, 2 ** 64):
                # A reference to another object may also be refused as not found/forbidden.
                ref = ptr in ('/department_id', '/system', '/consultant') + tuple(ep.refs)
                if strict and not ref and x > 0:
                    # No maximum in the schema: refused, or kept exactly (never changed).
                    bigints.append((ptr, x))
                    continue
                case(f'{ptr} = {x}', (403, 404, 422) if ref else 422,
                     field=ptr if strict else None if ref else ptr,
                     body=lambda v, ptr=ptr, x=x: set_ptr(v, ptr, x))
    # Members nobody asked for, at every level.
    for obj in ep.objects:
        for k, x in (('bogus', 1), ('__proto__', {}), ('', 'x'), ('id', 1),
                     ('state', 'approved'), ('department_id', 999)):
            target = obj + '/' + k
            if target in ep.fields or get_ptr(sample, obj) is None:
                continue
            case(f'unknown member {target!r}', 422, field=target, code='unknown_field',
                 body=lambda v, target=target, x=x: set_ptr(v, target, x))
    for ptr in ep.required:
        case(f'without required {ptr}', 422, field=ptr, code='missing_field',
             body=lambda v, ptr=ptr: del_ptr(v, ptr))
    if strict:
        # Dates that are no dates.
        for ptr, kind in ep.fields.items():
            if kind in ('date', 'ndate'):
                for d in BAD_DATES:
                    case(f'{ptr} = {d!r}', 422, field=ptr, code='schema_violation',
                         body=lambda v, ptr=ptr, d=d: set_ptr(v, ptr, d))
        # A valid body under another Content-Type.
        for ctype in NOT_JSON_TYPES:
            case(f'Content-Type {ctype}', 415, field='Content-Type',
                 code='unsupported_media_type', raw=lambda v: encode(v),
                 headers={'Content-Type': ctype})
    for what, status, field, code, make in ep.extra:
        kind, _ = make(ep.body())
        if kind == 'raw':
            case(what, status, field, raw=lambda v, make=make: make(v)[1], code=code)
        else:
            case(what, status, field, body=lambda v, make=make: make(v)[1], code=code)

    for what, status, field, whole_body, raw, body, headers, code in cases:
        valid = ep.body()
        se.refused(f'{name}: {what}', ep.method, ep.target, ep.role, status, field,
                   raw=raw(valid) if raw else None, body=body(valid) if body else None,
                   headers=headers or {'Content-Type': 'application/json'},
                   whole_body=whole_body, code=code)
        if se.changed:
            ep.target = ep.path()
    # Too large: refused by Content-Length before the body is read; for the stricter
    # endpoints also one byte over the route's limit.
    over = max(TEN_MB, ep.limit + 1024 * 1024)
    for length in ((ep.limit + 1, over) if strict else (over,)):
        st, err, secs = early_refusal(se.b.port, ep.method, ep.target, se.tokens[ep.role],
                                      length, 'application/json')
        se.ck.ok(st == 413 and err is not None and secs < 3.0 and
                 (not strict or (err.get('code'), err.get('field')) == ('too_large', '')),
                 f'{name}: {length} bytes by Content-Length refused with 413 at once '
                 f'(got {st} after {secs:.2f}s, error {err})')
    before = db_snapshot(se.b.db_path)
    st, err, sent = chunked_upload(se.b.port, ep.method, ep.target, se.tokens[ep.role], over,
                                   'application/json')
    se.ck.ok(st == 413 and err is not None and
             (not strict or err.get('code') == 'too_large'),
             f'{name}: {over} bytes chunked (no Content-Length) answered 413 with a JSON error '
             f'(got {st}, error {err}, {sent} bytes sent)')
    se.ck.eq(db_diff(before, db_snapshot(se.b.db_path)), {}, f'{name}: {over} bytes chunked: '
             'database unchanged')
    if seen is not None:
        now = ep.observe()
        se.ck.eq(sorted(k for k in seen if now.get(k) != seen[k]), [],
                 f'{name}: after {len(cases) + 3} hostile requests the API shows the same state '
                 'as before (the parts of metering_view() that changed)')
    # Integers beyond 64 bits where the schema has no maximum (after the comparison above: a
    # documented clamp is a change).
    for ptr, x in bigints:
        if big_integer(se, ep, f'{name}: {ptr} = {x}', set_ptr(ep.body(), ptr, x), ptr, x):
            ep.target = ep.path()

    # The valid body still works (so every refusal above was about the hostile part).
    ep.target = ep.path()
    r = se.send(ep.method, ep.target, ep.role, body=ep.body())
    se.ck.eq(r.status, ep.ok, f'{name}: the valid body is accepted ({r!r})')
    if r.status == 200 and ep.role == 'spare':
        se.tokens['spare'] = r.json()['token']


def integral_floats(se, w):
    """JSON Schema says 2.0 is an integer; whatever the broker does with one, it must not read
    it as something else. Accept it as the same integer, or refuse it (422)."""
    ck, b = se.ck, se.b
    r = se.send('POST', '/v1/departments', 'admin',
                raw=b'{"code":"float-quota","name":"F","quota":{"vcpus":3.0,"memory_mib":4096,'
                    b'"disk_gib":10,"instances":2}}')
    if r.status == 201:
        ck.eq(r.json()['quota']['vcpus'], 3, 'department quota vcpus 3.0 is stored as 3')
    else:
        ck.eq(r.status, 422, 'department quota vcpus 3.0: stored as 3 or refused')
    r = se.send('POST', '/v1/systems', 'department',
                raw=b'{"name":"float-level","category":"website","protection_level":5.0}')
    if r.status == 201:
        ck.eq(r.json()['protection_level'], 5, 'system protection_level 5.0 is stored as 5')
    else:
        ck.eq(r.status, 422, 'system protection_level 5.0: stored as 5 or refused')
    raw = (b'{"system":%d,"kind":"new","justification":"floats","resources":{"instances":'
           b'[{"vcpus":1024.0,"memory_mib":16777216.0,"disk_gib":1048576.0,"image":"x"}]}}'
           % w.sys_a)
    r = se.send('POST', '/v1/requests', 'department', raw=raw)
    if r.status == 201:
        body = r.json()
        ck.eq(body['totals'], {'vcpus': 1024, 'memory_mib': 16777216, 'disk_gib': 1048576,
                               'instances': 1},
              'request with vcpus 1024.0: totals count the resources asked for')
        limits = [x for x in body['check']['rules'] if x['rule'] == 'instance_limits'][0]
        ck.eq(limits['ok'], False, 'request with vcpus 1024.0: the instance limit (32) fails')
    else:
        ck.eq(r.status, 422, 'request with vcpus 1024.0: counted as 1024 or refused')


def upload_battery(se, w):
    """PUT /v1/requests/{id}/materials/{name}: media types, sizes, names, path and query."""
    ck, b = se.ck, se.b
    rid = w.draft()
    store = os.path.join(b.state_dir, 'materials')

    def files():
        out = set()
        for root, _, names in os.walk(store):
            out |= {os.path.relpath(os.path.join(root, n), store) for n in names}
        return out

    baseline = [files()]

    def no_new_files(what):
        now = files()
        ck.eq(sorted(now - baseline[0]), [], f'{what}: no file left behind (store and tmp/)')
        baseline[0] = now

    def bad(what, status, data=cbtest.PDF_BYTES, ctype='application/pdf', kind='construction_plan',
            query='', field=None, whole_body=False, req=rid, role='department'):
        headers = {'Content-Type': ctype} if ctype is not None else {}
        return se.refused(f'PUT materials: {what}', 'PUT',
                          f'/v1/requests/{req}/materials/{kind}{query}', role, status, field,
                          raw=data, headers=headers, whole_body=whole_body)

    text_bytes = b'plain text\n'
    bad('PNG bytes declared as application/pdf', 415, cbtest.PNG_BYTES, field='Content-Type')
    bad('PDF bytes declared as image/png', 415, ctype='image/png', field='Content-Type')
    bad('text declared as application/pdf', 415, text_bytes, field='Content-Type')
    bad('PDF declared as a .docx (zip)', 415,
        ctype='application/vnd.openxmlformats-officedocument.wordprocessingml.document',
        field='Content-Type')
    bad('PDF declared as application/msword', 415, ctype='application/msword',
        field='Content-Type')
    bad('binary declared as text/plain', 415, b'\x00\x01\x02binary', ctype='text/plain',
        field='Content-Type')
    bad('invalid UTF-8 declared as text/plain', 415, b'abc \xc0\xaf def', ctype='text/plain',
        field='Content-Type')
    for ctype in ('application/x-msdownload', 'application/x-sh', 'text/html',
                  'image/svg+xml', 'application/octet-stream', 'application/json',
                  'garbage', 'application/', '/pdf', 'application/pdf/x', '', '   ',
                  'application/pdf, text/plain', 'text/plain\\x'):
        bad(f'Content-Type {ctype!r}', 415, ctype=ctype, field='Content-Type')
    bad('no Content-Type', 415, ctype=None, field='Content-Type')
    bad('empty body', 422, b'', field='body')
    for what, q in (('../../etc', '../../etc'),
                    ('..%2F..%2Fetc%2Fpasswd', '..%2F..%2Fetc%2Fpasswd'),
                    ('/etc/passwd', '%2Fetc%2Fpasswd'), ('..\\..\\etc', '..%5C..%5Cetc'),
                    ('C:\\x', 'C%3A%5Cx'), ('NUL inside', 'a%00b'), ('NUL at the end', 'ab%00'),
                    ('U+0001', 'a%01b'), ('newline', 'a%0Ab'), ('DEL', 'a%7Fb'),
                    ('invalid UTF-8', 'a%FFb'), ('overlong "/"', 'a%C0%AFb'),
                    ('256 bytes', 'x' * 256)):
        bad(f'filename {what}', 400, query='?filename=' + q, field='filename')
    for kind in ('Construction_plan', 'bogus', '..', '.', 'construction_plan%2F..',
                 'construction-plan', 'x' * 70, '%00', 'test%20report'):
        bad(f'material kind {kind!r}', 404, kind=kind, whole_body=True)
    for req in ('0', 'abc', '-1', '999999', '1.0', '%2e%2e'):
        bad(f'request id {req!r}', 404, req=req, whole_body=True)
    no_new_files('refused media types, names and ids')

    # Sizes against the policy's max_bytes (1 MiB in this test's policy).
    padded = cbtest.PDF_BYTES + b'0' * (MAX_MATERIAL - len(cbtest.PDF_BYTES))
    for length in (MAX_MATERIAL + 1, TEN_MB):
        st, err, secs = early_refusal(b.port, 'PUT', f'/v1/requests/{rid}/materials/other',
                                      w.dep, length, 'application/pdf')
        ck.ok(st == 413 and err is not None and secs < 3.0,
              f'PUT materials: {length} bytes by Content-Length refused with 413 at once '
              f'(got {st} after {secs:.2f}s, error {err})')
    before = db_snapshot(b.db_path)
    st, err, sent = chunked_upload(b.port, 'PUT', f'/v1/requests/{rid}/materials/other', w.dep,
                                   MAX_MATERIAL + 1, 'application/pdf')
    ck.ok(st == 413 and err is not None, f'PUT materials: max_bytes + 1 chunked answered 413 '
          f'with a JSON error (got {st}, error {err})')
    st, err, sent = chunked_upload(b.port, 'PUT', f'/v1/requests/{rid}/materials/other', w.dep,
                                   TEN_MB, 'application/pdf')
    ck.ok(st == 413 and err is not None, f'PUT materials: 10 MB chunked answered 413 with a JSON '
          f'error (got {st}, error {err}, {sent} bytes sent)')
    ck.eq(db_diff(before, db_snapshot(b.db_path)), {}, 'PUT materials chunked: database unchanged')
    time.sleep(0.2)
    no_new_files('refused oversize uploads')

    # Role and state refusals.
    bad('test_report by the department', 403, kind='test_report', field=None)
    bad('by the auditor', 403, role='auditor', whole_body=True)
    sub = w.submitted()
    bad('while submitted', 409, req=sub, field='state')
    no_new_files('uploads refused for role or state')

    # The boundary itself is allowed: exactly max_bytes, chunked or not.
    r = se.send('PUT', f'/v1/requests/{rid}/materials/other', 'department', raw=padded,
                headers={'Content-Type': 'application/pdf'})
    ck.eq(r.status, 201, f'PUT materials: exactly max_bytes is accepted ({r!r})')
    st, err, sent = chunked_upload(b.port, 'PUT',
                                   f'/v1/requests/{rid}/materials/performance_self_test', w.dep,
                                   4000, 'application/pdf')
    ck.eq(st, 201, f'PUT materials: a small chunked upload is accepted ({err})')
    r = se.send('PUT', f'/v1/requests/{rid}/materials/security_self_test?filename=..', 'department',
                raw=cbtest.PDF_BYTES, headers={'Content-Type': 'application/pdf; charset=binary'})
    ck.eq(r.status, 201, 'PUT materials: filename ".." (no slash) is only a name')
    ck.eq(os.listdir(os.path.join(store, 'tmp')), [], 'no temporary upload left in materials/tmp')


def path_and_query(se, w):
    """Hostile {id}s in every path, and hostile query parameters of every list."""
    rid = w.draft(complete=True)
    routes = [
        ('GET', '/v1/departments/{id}', 'admin', None),
        ('PATCH', '/v1/departments/{id}', 'admin', {'name': 'x'}),
        ('GET', '/v1/accounts/{id}', 'admin', None),
        ('PATCH', '/v1/accounts/{id}', 'admin', {'disabled': True}),
        ('POST', '/v1/accounts/{id}/token', 'admin', {}),
        ('POST', '/v1/accounts/{id}/sign-in-link', 'admin', {}),
        ('POST', '/v1/notifications/{id}/read', 'reviewer', {}),
        ('GET', '/v1/systems/{id}', 'department', None),
        ('PATCH', '/v1/systems/{id}', 'department', {'description': 'x'}),
        ('GET', '/v1/requests/{id}', 'department', None),
        ('PATCH', '/v1/requests/{id}', 'department', {'justification': 'x'}),
        ('GET', '/v1/requests/{id}/materials/construction_plan', 'department', None),
        ('POST', '/v1/requests/{id}/submit', 'department', {}),
        ('POST', '/v1/requests/{id}/resubmit', 'department', {}),
        ('POST', '/v1/requests/{id}/withdraw', 'department', {}),
        ('POST', '/v1/requests/{id}/assign', 'reviewer', {'consultant': w.ids['consultant']}),
        ('POST', '/v1/requests/{id}/opinions', 'reviewer',
         {'recommendation': 'approve', 'comment': 'c'}),
        ('POST', '/v1/requests/{id}/decision', 'reviewer', {'decision': 'approve'}),
        ('POST', '/v1/jobs/{id}/retry', 'vendor', {}),
        # Metering and assessment.
        ('POST', '/v1/hosts/{id}/agent-token', 'vendor', {}),
        ('GET', '/v1/instances/{id}/usage', 'reviewer', None),
        ('GET', '/v1/allocations/{id}/usage', 'reviewer', None),
        ('GET', '/v1/findings/{id}', 'reviewer', None),
        ('POST', '/v1/findings/{id}/acknowledge', 'department', {}),
        ('POST', '/v1/findings/{id}/resolve', 'reviewer', {}),
        ('POST', '/v1/findings/{id}/dismiss', 'reviewer', {'reason': 'x'}),
        ('POST', '/v1/findings/{id}/change-request', 'department', {}),
        ('GET', '/v1/systems/{id}/vulnerabilities', 'department', None),
        ('POST', '/v1/systems/{id}/vulnerabilities', 'department',
         {'severity': 'low', 'title': 't', 'found_at': '2026-01-01'}),
        ('PATCH', '/v1/vulnerabilities/{id}', 'vendor', {'status': 'fixed'}),
        ('GET', '/v1/systems/{id}/incidents', 'auditor', None),
        ('POST', '/v1/systems/{id}/incidents', 'vendor',
         {'severity': 'low', 'title': 't', 'occurred_at': '2026-01-01'}),
        ('PATCH', '/v1/incidents/{id}', 'vendor', {'resolved_at': '2026-01-02'}),
        ('GET', '/v1/systems/{id}/backups', 'reviewer', None),
        ('POST', '/v1/systems/{id}/backups', 'department',
         {'location': 'x', 'taken_at': '2026-01-01', 'size_bytes': 1, 'sha256': '0' * 64}),
    ]
    ids = ['0', '-1', '01', '1.0', '1e3', '0x1', 'abc', '9007199254740993',
           '99999999999999999999999', '999999', '%27%3B%20DROP%20TABLE%20requests', '%3Cdisk%3E',
           '1%00', '%00', '1%20', '+1', '..', '%2e%2e', '1;2', "1'"]
    for method, path, role, body in routes:
        for bad_id in ids:
            p = path.replace('{id}', bad_id)
            se.refused(f'{method} {p}', method, p, role, 404, body=body, whole_body=True)
    # Another object kind's id is simply not found either (the account id of a request...).
    se.refused('GET /v1/requests/<a department id far away>', 'GET',
               f'/v1/requests/{rid + 100000}', 'department', 404, whole_body=True)

    lists = [
        ('/v1/departments', 'admin', ['limit', 'after'], [], []),
        ('/v1/accounts', 'admin', ['limit', 'after', 'department'], ['role'], []),
        ('/v1/systems', 'reviewer', ['limit', 'after', 'department'], [], []),
        ('/v1/requests', 'reviewer', ['limit', 'after', 'department', 'system'],
         ['state', 'kind'], []),
        ('/v1/audit', 'auditor', ['limit', 'after', 'object_id'], [],
         ['object_type', 'action', 'account']),
    ]
    bad_ints = ['abc', '-1', '1.5', '1e3', '0x10', '99999999999999999999', '', '%20',
                "'%3B%20DROP%20TABLE%20requests%3B--", '%3Cdisk%3E', '%00', '%FF', '1%2C2', '+']
    for path, role, ints, enums, free in lists:
        for q in ints:
            for v in bad_ints + (['0', '1001'] if q == 'limit' else []) + \
                    (['0'] if q in ('department', 'system', 'object_id') else []):
                if q == 'after' and v in ('+',):
                    continue
                se.refused(f'GET {path}?{q}={v}', 'GET', f'{path}?{q}={v}', role, 400, field=q)
        for q in enums:
            for v in ["'%3B%20DROP%20TABLE%20requests%3B--", '%22%20OR%201%3D1', '%3Cdisk%3E',
                      'bogus', 'DRAFT', '%00', '%FF']:
                se.refused(f'GET {path}?{q}={v}', 'GET', f'{path}?{q}={v}', role, 400, field=q)
        for q in free:
            for v in LEGAL_TEXT[:10]:
                before = db_snapshot(se.b.db_path)
                r = se.send('GET', f'{path}?{q}={urllib.parse.quote(v, safe="")}', role)
                se.ck.ok(r.status == 200 and r.json()['items'] == [],
                         f'GET {path}?{q}={v!r}: a plain filter that matches nothing ({r!r})')
                se.ck.eq(db_diff(before, db_snapshot(se.b.db_path)), {},
                         f'GET {path}?{q}=...: database unchanged')


def metering_queries(se, w):
    """Bad values of the query parameters of the metering, findings and report reads: each is
    400 naming the parameter (docs/api.md, Errors: 400 `invalid` for a bad query parameter),
    and nothing changes."""
    ck, b = se.ck, se.b
    seen = metering_view(w)
    inst, alloc = w.inst[0]['id'], w.alloc
    usage_i = f'/v1/instances/{inst}/usage'
    usage_a = f'/v1/allocations/{alloc}/usage'
    now = int(time.time())
    span = f'from={now - 86400}&to={now}'
    bad_times = ['abc', '-1', '1.5', '1e9', '0x10', '', '%20', 'now', '2026-13-01T00:00:00Z',
                 '2026-02-30T00:00:00Z', '2026-01-01T25:00:00Z', '2026-01-01T00:00:00',
                 '2026-01-01T00:00:00%2B25:00', '01/02/2026', '%00', '%FF',
                 "'%3B%20DROP%20TABLE%20samples%3B--", '99999999999999999999', str(2 ** 40 + 1)]
    for path, role in ((usage_i, 'reviewer'), (usage_a, 'department')):
        for q in ('from', 'to'):
            other = 'to' if q == 'from' else 'from'
            for v in bad_times:
                val = {'from': now - 86400, 'to': now}[other]
                se.refused(f'GET {path}?{q}={v}', 'GET', f'{path}?{q}={v}&{other}={val}', role,
                           400, field=q, code='invalid')
        se.refused(f'GET {path}: from after to', 'GET', f'{path}?from={now}&to={now - 3600}',
                   role, 400, field='from', code='invalid')
        se.refused(f'GET {path}: from equal to to', 'GET', f'{path}?from={now}&to={now}', role,
                   400, field='from', code='invalid')
    # step (docs/metering.md: 10 s ... 366 days, at most 20,000 points).
    for v in ('abc', '9', '0', '-300', '1.5', '', str(366 * 86400 + 1), '1e3', '%00',
              '99999999999999999999'):
        se.refused(f'GET {usage_i}?step={v}', 'GET', f'{usage_i}?{span}&step={v}', 'reviewer',
                   400, field='step', code='invalid')
    se.refused(f'GET {usage_i}: 30 days in 10 s steps (259,200 points)', 'GET',
               f'{usage_i}?from={now - 30 * 86400}&to={now}&step=10', 'reviewer', 400,
               field='step', code='invalid')
    # An allocation's usage is a summary over from..to: docs/metering.md gives it no step, and
    # docs/api.md says unknown query parameters are ignored.
    for q in ('step=abc', 'step=1'):
        r = se.send('GET', f'{usage_a}?{span}&{q}', 'reviewer')
        ck.eq(r.status, 200, f'GET {usage_a}?{q}: an unknown parameter is ignored ({r!r})')
    r = se.send('GET', f'{usage_a}?from={now - 90 * 86400}&to={now}', 'reviewer')
    ck.eq(r.status, 200, f'GET {usage_a} over 90 days: a summary of the samples kept ({r!r})')

    # GET /v1/findings: paging and filters.
    ints = {'limit': ['abc', '0', '1001', '-1', '1.5', '', '%00', '99999999999999999999'],
            'after': ['abc', '-1', '1.5', '', '0x10', '%FF'],
            'department': ['abc', '0', '-1', '1.5', '', "'%3B--"],
            'allocation': ['abc', '0', '-1', '1.5', '', '%3Cdisk%3E']}
    for q, values in ints.items():
        for v in values:
            se.refused(f'GET /v1/findings?{q}={v}', 'GET', f'/v1/findings?{q}={v}', 'reviewer',
                       400, field=q, code='invalid')
    for q, values in (('state', ['bogus', 'OPEN', '', 'open%00', 'open,resolved',
                                 "open'%20OR%20'1'='1"]),
                      ('kind', ['bogus', 'IDLE', '', 'idle%00', 'over-provisioned'])):
        for v in values:
            se.refused(f'GET /v1/findings?{q}={v}', 'GET', f'/v1/findings?{q}={v}', 'department',
                       400, field=q, code='invalid')

    # Reports: year, month, department, format, lang.
    year, month = time.gmtime().tm_year, time.strftime('%Y-%m')
    for role in ('auditor', 'department'):
        ra = '/v1/reports/assessment'
        se.refused(f'GET {ra} without year ({role})', 'GET', ra, role, 400, field='year',
                   code='invalid')
        for v in ('abc', '1999', '2201', '', '2026.0', '-2026', '20x6', '0x7EA', '1e3', '%00',
                  '%FF', "'%3B--", '99999999999999999999'):
            se.refused(f'GET {ra}?year={v} ({role})', 'GET', f'{ra}?year={v}', role, 400,
                       field='year', code='invalid')
        ro = '/v1/reports/operations'
        se.refused(f'GET {ro} without month ({role})', 'GET', ro, role, 400, field='month',
                   code='invalid')
        for v in ('2026-13', '2026-00', '2026-1', '2026-001', '26-01', '2026/01', '2026-01-01',
                  '', 'abcdefg', '%00', '2026-0a', '0000-00', '2026-1%20', 'x' * 7, '%FF',
                  urllib.parse.quote('２０２６-01')):
            se.refused(f'GET {ro}?month={v} ({role})', 'GET', f'{ro}?month={v}', role, 400,
                       field='month', code='invalid')
        for path in (f'{ra}?year={year}', f'{ro}?month={month}'):
            for v in ('abc', '0', '-1', '1.5', '', '%00'):
                se.refused(f'GET {path}&department={v} ({role})', 'GET',
                           f'{path}&department={v}', role, 400, field='department',
                           code='invalid')
            for v in ('xml', 'JSON', 'pdf', '', 'csv%00', 'html%20', '%FF'):
                se.refused(f'GET {path}&format={v} ({role})', 'GET', f'{path}&format={v}', role,
                           400, field='format', code='invalid')
            for v in ('fr', 'ZH', 'EN', '', 'zh-CN', 'en%00'):
                se.refused(f'GET {path}&lang={v} ({role})', 'GET', f'{path}&lang={v}', role, 400,
                           field='lang', code='invalid')

    # The security and backup records are lists: docs/api.md "Pagination and filters" (list
    # endpoints take ?limit= 1-1000 and ?after=, and answer {"items", "next"}).
    for kind in ('vulnerabilities', 'incidents', 'backups'):
        path = f'/v1/systems/{w.sys_a}/{kind}'
        for v in ('abc', '0', '1001'):
            se.refused(f'GET {path}?limit={v}', 'GET', f'{path}?limit={v}', 'auditor', 400,
                       field='limit', code='invalid')
        r = se.send('GET', f'{path}?limit=1', 'auditor')
        items = r.json().get('items', []) if r.status == 200 else None
        ck.ok(items is not None and len(items) == 1 and r.json().get('next') == items[0]['id'],
              f'GET {path}?limit=1: one record and the cursor to the next ({r!r})')
    now = metering_view(w)
    ck.eq(sorted(k for k in seen if now.get(k) != seen[k]), [],
          'metering query parameters: the API shows the same state (the parts that changed)')


def legal_text_records(se, w):
    """SQL and XML metacharacters in the text of security and backup records: stored and
    listed byte for byte, one row each, nothing else changed but the audit trail."""
    ck, b = se.ck, se.b
    for i, s in enumerate(LEGAL_TEXT):
        tag = f'record text #{i} {s[:24]!r}'
        for kind, role, body, key in (
                ('vulnerabilities', 'department', {'severity': 'low', 'title': s,
                                                   'found_at': w.day}, 'title'),
                ('incidents', 'vendor', {'severity': 'low', 'title': 'x', 'description': s,
                                         'occurred_at': w.day}, 'description'),
                ('backups', 'department', {'location': s, 'taken_at': w.day, 'size_bytes': 0,
                                           'sha256': 'f' * 64}, 'location')):
            want = dict({kind: (1, 0), 'audit': (1, 0), 'audit_head': (1, 1)}, **AUTOINCREMENT)
            before = db_watch(b.db_path, want)
            r = se.send('POST', f'/v1/systems/{w.sys_a}/{kind}', role, body=body)
            if not ck.eq(r.status, 201, f'{tag}: POST {kind} ({r!r})'):
                continue
            rid = r.json()['id']
            diff = db_watch_diff(b.db_path, before)
            ck.eq({t: d if d == 'changed' else (len(d[0]), len(d[1])) for t, d in diff.items()},
                  dict({kind: (1, 0), 'audit': (1, 0), 'audit_head': (1, 1)}, **AUTOINCREMENT),
                  f'{tag}: one {kind} row and its audit record, nothing else')
            items = b.get(f'/v1/systems/{w.sys_a}/{kind}', token=w.tokens['auditor'])
            got = [x.get(key) for x in items.json()['items'] if x['id'] == rid]
            ck.eq(got, [s], f'{tag}: {kind}.{key} listed back exactly')
            con = db_connect(b.db_path)
            try:
                row = con.execute(f'SELECT "{key}" FROM "{kind}" WHERE id = ?', (rid,)).fetchone()
            finally:
                con.close()
            ck.eq(row[0] if row else None, s, f'{tag}: {kind}.{key} stored byte for byte')


def legal_text(se, w):
    """SQL and XML metacharacters are text like any other: stored byte for byte."""
    ck, b = se.ck, se.b
    rev = 'reviewer'
    pattern_fields = [
        ('POST', '/v1/departments', 'admin', lambda s: {'code': s, 'name': 'x'}, '/code'),
        ('POST', '/v1/accounts', 'admin', lambda s: {'name': s, 'role': 'auditor'}, '/name'),
        ('POST', '/v1/accounts', 'admin', lambda s: {'name': w.uniq('a'), 'role': s}, '/role'),
        ('POST', '/v1/systems', 'department', lambda s: {'name': w.uniq('s'), 'category': s},
         '/category'),
        ('POST', '/v1/systems', 'department',
         lambda s: {'name': w.uniq('s'), 'category': 'website', 'status': s}, '/status'),
        ('POST', '/v1/requests', 'department',
         lambda s: {'system': w.sys_a, 'kind': s, 'justification': 'j'}, '/kind'),
        ('POST', '/v1/requests', 'department',
         lambda s: {'system': w.sys_a, 'kind': 'new', 'justification': 'j',
                    'resources': {'instances': [dict(INSTANCE, image=s)]}},
         '/resources/instances/0/image'),
    ]
    for s in LEGAL_TEXT:
        for method, path, role, body, field in pattern_fields:
            se.refused(f'{method} {path} {field} = {s[:30]!r} (not in its pattern or enum)',
                       method, path, role, 422, field=field, body=body(s))

    def stored(table, col, row_id, want, what):
        con = db_connect(b.db_path)
        try:
            got = con.execute(f'SELECT "{col}" FROM "{table}" WHERE id = ?', (row_id,)).fetchone()
        finally:
            con.close()
        ck.eq(got[0] if got else None, want, f'{what}: {table}.{col} stored byte for byte')

    def step(what, method, path, role, body, ok, changes, raw=None, headers=None):
        """A valid call: @ok status, and only the tables in @changes changed (count: rows
        added, or 'mod' for a row modified in place)."""
        if 'audit' in changes:
            changes = dict(changes, audit_head='mod',
                           **{t: 'mod' for t in AUTOINCREMENT})
        before = db_watch(b.db_path, changes)
        r = se.send(method, path, role, body=body, raw=raw, headers=headers)
        ck.eq(r.status, ok, f'{what} ({r!r})')
        diff = db_watch_diff(b.db_path, before)
        shape = {t: d if d == 'changed' else ('mod' if d[1] else len(d[0]))
                 for t, d in diff.items()}
        ck.eq(shape, changes, f'{what}: exactly the expected tables changed')
        con = db_connect(b.db_path)
        try:
            ck.eq(set(db_tables(con)), se.tables, f'{what}: every table still exists')
        finally:
            con.close()
        return r

    for i, s in enumerate(LEGAL_TEXT):
        tag = f'text #{i} {s[:24]!r}'
        r = step(f'{tag}: create a department named so', 'POST', '/v1/departments', 'admin',
                 {'code': f'legal-{i}', 'name': s}, 201, {'departments': 1, 'audit': 1})
        if r.status == 201:
            did = r.json()['id']
            ck.eq(r.json()['name'], s, f'{tag}: department name echoed exactly')
            stored('departments', 'name', did, s, tag)
            r = step(f'{tag}: rename the department', 'PATCH', f'/v1/departments/{did}', 'admin',
                     {'name': s + '!'}, 200, {'departments': 'mod', 'audit': 1})
            stored('departments', 'name', did, s + '!', tag)
        r = step(f'{tag}: register a system named so', 'POST', '/v1/systems', 'department',
                 {'name': s, 'description': s, 'category': 'website'}, 201,
                 {'systems': 1, 'audit': 1})
        if r.status == 201:
            sid = r.json()['id']
            ck.eq((r.json()['name'], r.json()['description']), (s, s),
                  f'{tag}: system name and description echoed exactly')
            stored('systems', 'name', sid, s, tag)
            stored('systems', 'description', sid, s, tag)
            step(f'{tag}: edit the system', 'PATCH', f'/v1/systems/{sid}', 'department',
                 {'description': s + '?'}, 200, {'systems': 'mod', 'audit': 1})
            stored('systems', 'description', sid, s + '?', tag)
            r = b.get(f'/v1/systems/{sid}', token=w.dep)
            ck.eq(r.json().get('description'), s + '?', f'{tag}: GET returns it exactly')
        body = cbtest.new_request_body(w.sys_a, s)
        r = step(f'{tag}: a request justified so', 'POST', '/v1/requests', 'department', body, 201,
                 {'requests': 1, 'request_history': 1, 'audit': 1})
        if r.status != 201:
            continue
        rid = r.json()['id']
        stored('requests', 'justification', rid, s, tag)
        step(f'{tag}: edit the justification', 'PATCH', f'/v1/requests/{rid}', 'department',
             {'justification': s + '.'}, 200, {'requests': 'mod', 'audit': 1})
        stored('requests', 'justification', rid, s + '.', tag)
        fname = s[:200]
        want = 400 if ('/' in fname or '\\' in fname) else 201
        r = step(f'{tag}: a material whose filename is the text', 'PUT',
                 f'/v1/requests/{rid}/materials/construction_plan?filename='
                 f'{urllib.parse.quote(fname, safe="")}', 'department', None, want,
                 {'materials': 1, 'audit': 1} if want == 201 else {},
                 raw=cbtest.PDF_BYTES, headers={'Content-Type': 'application/pdf'})
        if want == 201:
            ck.eq(r.json().get('filename'), fname, f'{tag}: filename echoed exactly')
        for kind in cbtest.NEW_REQUEST_MATERIALS:
            cbtest.upload_material(b, w.dep, rid, kind)
        # Each step also tells those concerned (one row per account told): the submission the
        # reviewer, the opinion and the return the department's two accounts.
        step(f'{tag}: submit with the text as comment', 'POST', f'/v1/requests/{rid}/submit',
             'department', {'comment': s}, 200,
             {'requests': 'mod', 'request_history': 1, 'audit': 1, 'notifications': 1})
        r = step(f'{tag}: an opinion saying so', 'POST', f'/v1/requests/{rid}/opinions', rev,
                 {'recommendation': 'return', 'comment': s}, 201,
                 {'opinions': 1, 'audit': 1, 'notifications': 2})
        if r.status == 201:
            ck.eq(r.json()['opinions'][-1]['comment'], s, f'{tag}: opinion comment echoed')
        step(f'{tag}: returned with the text as reason', 'POST', f'/v1/requests/{rid}/decision',
             rev, {'decision': 'return', 'comment': s}, 200,
             {'requests': 'mod', 'request_history': 1, 'audit': 1, 'notifications': 2})
        step(f'{tag}: resubmitted with it', 'POST', f'/v1/requests/{rid}/resubmit', 'department',
             {'comment': s}, 200,
             {'requests': 'mod', 'request_history': 1, 'audit': 1, 'notifications': 1})
        step(f'{tag}: withdrawn with it', 'POST', f'/v1/requests/{rid}/withdraw', 'department',
             {'comment': s}, 200, {'requests': 'mod', 'request_history': 1, 'audit': 1})
        r = b.get(f'/v1/requests/{rid}', token=w.dep)
        hist = [h['comment'] for h in r.json()['history']]
        ck.eq(hist[-4:], [s, s, s, s], f'{tag}: every history comment kept exactly')
        con = db_connect(b.db_path)
        try:
            n = con.execute('SELECT count(*) FROM opinions WHERE request_id = ? AND comment = ?',
                            (rid, s)).fetchone()[0]
        finally:
            con.close()
        ck.eq(n, 1, f'{tag}: the opinion comment stored byte for byte')


def http_level(se, w):
    """Oversize and broken HTTP: refused without a crash, the database untouched."""
    ck, b = se.ck, se.b
    before = db_snapshot(b.db_path)
    tok = w.tokens['admin']
    # Past limits.header_bytes: the broker's own JSON error at once, never a library's page.
    big = [('100 KB header', {'X-Big': 'a' * 100 * 1024}, '/v1/whoami', 431),
           ('2,000 headers', {f'X-H{i}': 'v' * 100 for i in range(2000)}, '/v1/whoami', 431),
           ('200 KB URL', {}, '/v1/departments/' + '1' * 200 * 1024, 414)]
    for what, headers, path, status in big:
        r = se.send('GET', path, 'admin', headers=headers)
        e = json_error(r)
        ck.ok(r.status == status and e and e.get('code') and 'field' in e,
              f'{what}: {status} with the JSON error body (got {r!r})')
    # A long X-Request-Id, or one with metacharacters, is replaced rather than trusted.
    for rid in ("'; DROP TABLE audit; --", '<disk>', 'x' * 500, 'a b'):
        r = se.send('GET', '/v1/whoami', 'admin', headers={'X-Request-Id': rid})
        ck.ok(r.status == 200 and r.headers.get('X-Request-Id') not in (None, rid),
              f'X-Request-Id {rid[:20]!r} is replaced by the broker\'s own')
    raws = [
        ('garbage request line', b'GARBAGE\r\n\r\n'),
        ('HTTP/1.1 without Host', b'GET /v1/health HTTP/1.1\r\n\r\n'),
        ('header without colon', b'GET /v1/health HTTP/1.1\r\nHost: x\r\nbroken\r\n\r\n'),
        ('Content-Length abc', head('POST', '/v1/departments', tok,
                                    ('Content-Length: abc',)) + b'{}'),
        ('Content-Length -1', head('POST', '/v1/departments', tok, ('Content-Length: -1',))),
        ('two Content-Lengths', head('POST', '/v1/departments', tok,
                                     ('Content-Length: 2', 'Content-Length: 40')) + b'{}'),
        ('Content-Length with chunked', head('POST', '/v1/departments', tok,
                                             ('Content-Length: 2',
                                              'Transfer-Encoding: chunked')) + b'0\r\n\r\n'),
        ('bad chunk size', head('POST', '/v1/departments', tok,
                                ('Transfer-Encoding: chunked',)) + b'zz\r\n{}\r\n0\r\n\r\n'),
        ('huge chunk size', head('POST', '/v1/departments', tok,
                                 ('Transfer-Encoding: chunked',)) + b'ffffffffffffffff\r\n{}'),
        ('body shorter than Content-Length', head('POST', '/v1/departments', tok,
                                                  ('Content-Length: 100',)) + b'{"code":'),
        ('request smuggling attempt', head('POST', '/v1/departments', tok,
                                           ('Content-Length: 4',)) +
         b'{}\r\nPOST /v1/departments HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'),
    ]
    for what, data in raws:
        st, resp, first = cbtest.raw_http(b.port, data, timeout=3)
        ck.ok(st is None or 400 <= st < 500, f'broken HTTP ({what}): refused or closed, '
              f'never 2xx/5xx (got {st})')
        # Whatever the broker answers is its JSON error body, never a library's HTML page.
        e = raw_error(resp)
        ck.ok(st is None or (e and 'code' in e and 'field' in e),
              f'broken HTTP ({what}): the JSON error body with code and field ({resp[:300]!r})')
    st, resp, first = cbtest.raw_http(b.port, b'GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n',
                                      timeout=3)
    ck.ok(st == 505 and raw_error(resp), f'HTTP/9.9: refused with 505 and the JSON error '
          f'(got {st} {resp!r})')
    se.expected_5xx += 1
    # libmicrohttpd reads header values as C strings; whatever it makes of a NUL, no 5xx.
    st, resp, first = cbtest.raw_http(
        b.port, b'GET /v1/health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n', timeout=3)
    ck.ok(st is None or st < 500, f'NUL in a header: no 5xx (got {st})')
    ck.eq(db_diff(before, db_snapshot(b.db_path)), {}, 'broken HTTP: database unchanged')
    ck.ok(se.alive(), 'broker alive after broken HTTP')


def main():
    ck = cbtest.Checks('hostile-input')
    # The default policies but: materials of at most MAX_MATERIAL; no anti-affinity (the
    # fixture's allocation has four instances and one production host); and METERING_POLICY.
    policies = dict(cbworld.METERING_POLICY, **{
        'review.json': lambda doc: doc['materials'].update(max_bytes=MAX_MATERIAL),
        'placement.json': {'anti_affinity': False}})
    with cbtest.Broker(policy_edits=policies) as b:
        w = World(b)
        se = Session(ck, b, w.tokens)
        t0 = time.time()
        for ep in endpoints(w):
            n = se.sent
            json_battery(se, w, ep)
            print(f'  {ep.name}: {se.sent - n} hostile requests', flush=True)
        print(f'JSON bodies: {se.sent} requests in {time.time() - t0:.1f}s', flush=True)
        integral_floats(se, w)
        print('checked integral floats in integer fields', flush=True)
        n = se.sent
        upload_battery(se, w)
        print(f'material uploads: {se.sent - n} hostile requests', flush=True)
        n = se.sent
        path_and_query(se, w)
        print(f'path and query parameters: {se.sent - n} requests', flush=True)
        n = se.sent
        metering_queries(se, w)
        print(f'metering, findings and report query parameters: {se.sent - n} requests',
              flush=True)
        n = se.sent
        legal_text(se, w)
        legal_text_records(se, w)
        print(f'SQL/XML metacharacters as legal text: {se.sent - n} requests', flush=True)
        http_level(se, w)
        print('checked oversize headers and broken HTTP', flush=True)

        ck.ok(se.alive(), 'broker process still running')
        ck.eq(b.get('/v1/health').status, 200, 'GET /v1/health at the end')
        r = b.get('/v1/audit/verify', token=w.tokens['auditor'])
        ck.ok(r.status == 200 and r.json()['ok'], f'audit trail verifies ({r!r})')
        m = b.get('/metrics', token=w.tokens['auditor']).body.decode()
        fives = re.search(r'class="5xx"\} (\d+)', m)
        ck.ok(fives and int(fives.group(1)) == se.expected_5xx,
              f'no 5xx answered to anything but the {se.expected_5xx} provoked '
              f'({fives.group(0) if fives else m[:200]})')
        ck.eq(cbtest.db_integrity(b.db_path), [], 'the database\'s own integrity check')
        with open(b.log_path, 'rb') as f:
            log = f.read().decode('utf-8', 'replace')
        bad = [line for line in log.splitlines()
               if re.search(r'\b(error|crit|alert|emerg)\b|assert|sanitizer|segfault', line,
                            re.I)]
        ck.ok(not bad, 'broker log shows no error or crash' +
              ''.join('\n    ' + line for line in bad[:20]))
        print(f'{se.sent} requests in all', flush=True)
    ck.done()


if __name__ == '__main__':
    main()
