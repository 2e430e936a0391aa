#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Hostile input against every endpoint that takes a body, a path or a query parameter.

Every hostile request must be refused with a 4xx carrying {"error": {code, message, field,
request_id}} (field empty only for whole-body syntax errors and size refusals), with the right
status (400 malformed, 413 too large, 415 wrong media type, 422 schema violation, 404 unknown
object), and must leave the database exactly as it was (every table snapshotted before and after).

SQL and XML metacharacters are legal text: a valid request carrying them must succeed, store the
text byte for byte, and change nothing else. The broker must stay up throughout and log no error.
"""
import copy
import json
import os
import re
import shutil
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
from cbtest import db_diff, db_snapshot, json_error  # noqa: E402

MAX_MATERIAL = 1024 * 1024   # materials.max_bytes of the policy this test runs with
MAX_JSON = 1024 * 1024       # the broker's default limits.body_bytes
TEN_MB = 10 * 1024 * 1024

INSTANCE = {'vcpus': 1, 'memory_mib': 512, 'disk_gib': 10, 'image': 'debian-12'}
MARK = '@@HOSTILE@@'

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
}


class Ep:
    """One endpoint that takes a JSON body: where to send it, a valid body, and its fields."""

    def __init__(self, method, path, role, body, fields, required=(), objects=('',),
                 optional=False, ok=200):
        self.method, self.path, self.role = method, path, role
        self.body = body          # callable: a valid body (fresh unique values)
        self.fields = fields      # JSON pointer -> type name (keys of WRONG)
        self.required = required  # pointers the schema requires
        self.objects = objects    # pointers of objects that refuse unknown members
        self.optional = optional  # an empty body stands for {}
        self.ok = ok
        self.target = None        # the path in use

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
        self.sent = 0
        self.changed = False

    def alive(self):
        return self.b.proc is not None and self.b.proc.poll() is None

    def send(self, method, path, role, body=None, raw=None, headers=None, timeout=30):
        self.sent += 1
        return self.b.request(method, path, body=body, raw=raw, token=self.tokens.get(role),
                              headers=headers, timeout=timeout)

    def refused(self, what, method, path, role, status, field=None, raw=None, body=None,
                headers=None, whole_body=False):
        """Sends one hostile request; checks the status, the error body and an unchanged
        database. @field: the error's field must equal it (None: anything non-empty, or empty
        when @whole_body)."""
        ck, b = self.ck, self.b
        before = db_snapshot(b.db_path)
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
        if r.status == 200 and isinstance(e, type(None)):
            try:  # a wrongly accepted token rotation must not lock the test out
                if 'token' in r.json() and role:
                    self.tokens[role] = r.json()['token']
            except ValueError:
                pass
        after = db_snapshot(b.db_path)
        diff = db_diff(before, after)
        self.changed = diff != {}
        ck.ok(diff == {}, f'{what}: database unchanged (changed: '
              f'{ {t: (len(a), len(d)) for t, (a, d) in diff.items()} })')
        return r


# ---------------------------------------------------------------- fixtures

class World:
    def __init__(self, b):
        self.b = b
        self.n = 0
        self.tokens = {'admin': b.admin_token}
        self.dept = b.make_department('dept-a', 'Department A')
        self.ids = {}
        for role in ('reviewer', 'consultant', 'auditor'):
            self.ids[role], self.tokens[role] = b.make_account(role + '-1', role)
        self.ids['spare'], self.tokens['spare'] = b.make_account('spare-1', 'auditor')
        self.ids['target'], self.tokens['target'] = b.make_account('target-1', 'auditor')
        self.ids['department'], self.tokens['department'] = b.make_account(
            'dept-a-clerk', 'department', self.dept)
        self.system = cbtest.make_system(b, self.dep, 'system-a')

    @property
    def dep(self):
        return self.tokens['department']

    def uniq(self, prefix):
        self.n += 1
        return f'{prefix}-{self.n}'

    def draft(self, complete=False):
        if complete:
            return cbtest.make_complete_request(self.b, self.dep, self.system)
        return cbtest.make_request(self.b, self.dep, self.system)

    def submitted(self):
        rid = self.draft(complete=True)
        r = self.b.post(f'/v1/requests/{rid}/submit', {}, token=self.dep)
        assert r.status == 200, r
        return rid

    def returned(self):
        rid = self.submitted()
        r = self.b.post(f'/v1/requests/{rid}/decision', {'decision': 'return', 'comment': 'redo'},
                        token=self.tokens['reviewer'])
        assert r.status == 200, r
        return rid


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
        Ep('PATCH', lambda: f'/v1/departments/{w.dept}', 'admin',
           lambda: {'name': 'Department A', 'quota': {'vcpus': 64}},
           {'/name': 'string', '/quota': 'object', '/quota/vcpus': 'integer'},
           (), ('', '/quota')),
        Ep('POST', lambda: '/v1/accounts', 'admin',
           lambda: {'name': w.uniq('acct'), 'role': 'department', 'department_id': w.dept},
           {'/name': 'pattern', '/role': 'enum', '/department_id': 'integer'},
           ('/name', '/role'), ok=201),
        Ep('PATCH', lambda: f'/v1/accounts/{w.ids["target"]}', 'admin',
           lambda: {'disabled': False}, {'/disabled': 'boolean'}, ('/disabled',)),
        Ep('POST', lambda: f'/v1/accounts/{w.ids["target"]}/token', 'admin', lambda: {}, {},
           optional=True),
        Ep('POST', lambda: '/v1/whoami/token', 'spare', lambda: {}, {}, optional=True),
        Ep('POST', lambda: '/v1/systems', 'department',
           lambda: {'name': w.uniq('system'), 'description': 'd', 'category': 'website',
                    'protection_level': 3, 'status': 'planned', 'department_id': w.dept},
           {'/name': 'string', '/description': 'string', '/category': 'enum',
            '/protection_level': 'integer', '/status': 'enum', '/department_id': 'integer'},
           ('/name', '/category'), ok=201),
        Ep('PATCH', lambda: f'/v1/systems/{w.system}', 'department',
           lambda: {'name': 'system-a', 'description': 'd', 'category': 'website',
                    'protection_level': 2, 'status': 'in_service'},
           {'/name': 'string', '/description': 'string', '/category': 'enum',
            '/protection_level': 'integer', '/status': 'enum'}),
        Ep('POST', lambda: '/v1/requests', 'department',
           lambda: {'system': w.system, 'kind': 'new', 'justification': 'j',
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
    ]


# ---------------------------------------------------------------- raw HTTP

def head(method, path, token, extra=()):
    lines = [f'{method} {path} HTTP/1.1', 'Host: 127.0.0.1']
    if token:
        lines.append(f'Authorization: Bearer {token}')
    lines += list(extra)
    return ('\r\n'.join(lines) + '\r\n\r\n').encode()


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
    s = socket.create_connection(('127.0.0.1', port), timeout=wait)
    got = []
    sent = [0]

    def reader():
        while True:
            try:
                c = s.recv(65536)
            except OSError:
                return
            if not c:
                return
            got.append(c)
            if parse_response(b''.join(got))[1] is not None:
                return

    th = threading.Thread(target=reader, daemon=True)
    try:
        s.sendall(head(method, path, token, (f'Content-Type: {content_type}',
                                             'Transfer-Encoding: chunked')))
        th.start()
        chunk = b'%PDF-' + b'a' * (65536 - 5)
        try:
            while sent[0] < total and not got:
                n = min(len(chunk), total - sent[0])
                s.sendall(b'%x\r\n' % n + chunk[:n] + b'\r\n')
                sent[0] += n
            if not got:
                s.sendall(b'0\r\n\r\n')
        except OSError:
            pass
        th.join(wait)
    finally:
        s.close()
    st, body = parse_response(b''.join(got))
    return st, (body or {}).get('error') if isinstance(body, dict) else None, sent[0]


# ---------------------------------------------------------------- checks

def json_battery(se, w, ep):
    """Everything hostile about one JSON endpoint's body. Each case is built from a fresh valid
    body, and a case the broker wrongly accepts gets a fresh target for the next one, so that one
    bug shows once instead of spoiling every later case."""
    ep.target = ep.path()
    name = ep.name
    sample = ep.body()
    cases = []  # (what, status, field, whole_body, make(valid) -> ('raw', bytes) | ('body', obj))

    def case(what, status, field=None, whole_body=False, raw=None, body=None):
        cases.append((what, status, field, whole_body, raw, body))

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
    for what, make in malformed:
        case(what, 400, whole_body=True, raw=make)

    # A document that is not an object.
    for top in (b'null', b'[]', b'"x"', b'1', b'true'):
        case(f'top-level {top.decode()}', 422, field='', raw=lambda v, top=top: top)
    case('top-level array holding the body', 422, field='', raw=lambda v: b'[' + encode(v) + b']')

    # Strings: bad UTF-8, raw control characters, NUL, length.
    for ptr, kind in ep.fields.items():
        if kind not in ('string', 'pattern', 'enum'):
            continue
        for what, seq in BAD_UTF8:
            case(f'{ptr} {what}', 400, whole_body=True,
                 raw=lambda v, ptr=ptr, seq=seq: with_raw_string(v, ptr, b'ok' + seq + b'ok'))
        for what, seq in RAW_CONTROL:
            case(f'{ptr} {what}', 400, whole_body=True,
                 raw=lambda v, ptr=ptr, seq=seq: with_raw_string(v, ptr, seq))
        case(f'{ptr} \\u0000 escape', (400, 422), field=ptr,
             raw=lambda v, ptr=ptr: with_raw_string(v, ptr, b'a\\u0000b'))
        case(f'{ptr} nearly 1 MiB long', 422, field=ptr,
             body=lambda v, ptr=ptr: set_ptr(v, ptr, 'x' * (MAX_JSON - 48 * 1024)))

    # Wrong types, one field at a time; integers out of any range.
    for ptr, kind in ep.fields.items():
        for x in WRONG[kind]:
            if kind == 'object' and ptr == '/quota' and x == {}:
                continue
            case(f'{ptr} = {json.dumps(x)[:24]}', 422, field=ptr,
                 body=lambda v, ptr=ptr, x=x: set_ptr(v, ptr, x))
        if kind == 'integer':
            for x in (10 ** 30, -10 ** 30, 2 ** 63, -2 ** 63 - 1, 2 ** 64):
                # A reference to another object may also be refused as not found/forbidden.
                ref = ptr in ('/department_id', '/system', '/consultant')
                case(f'{ptr} = {x}', (403, 404, 422) if ref else 422,
                     field=None if ref else ptr, body=lambda v, ptr=ptr, x=x: set_ptr(v, ptr, x))
    # Members nobody asked for, at every level.
    for obj in ep.objects:
        for k, x in (('bogus', 1), ('__proto__', {}), ('', 'x'), ('id', 1),
                     ('state', 'approved'), ('department_id', 999)):
            target = obj + '/' + k
            if target in ep.fields or get_ptr(sample, obj) is None:
                continue
            case(f'unknown member {target!r}', 422, field=target,
                 body=lambda v, target=target, x=x: set_ptr(v, target, x))
    for ptr in ep.required:
        case(f'without required {ptr}', 422, field=ptr, body=lambda v, ptr=ptr: del_ptr(v, ptr))

    for what, status, field, whole_body, raw, body in cases:
        valid = ep.body()
        se.refused(f'{name}: {what}', ep.method, ep.target, ep.role, status, field,
                   raw=raw(valid) if raw else None, body=body(valid) if body else None,
                   headers={'Content-Type': 'application/json'}, whole_body=whole_body)
        if se.changed:
            ep.target = ep.path()

    # Too large: refused by Content-Length before the body is read.
    st, err, secs = early_refusal(se.b.port, ep.method, ep.target, se.tokens[ep.role], TEN_MB,
                                  'application/json')
    se.ck.ok(st == 413 and err is not None and secs < 3.0,
             f'{name}: 10 MB by Content-Length refused with 413 at once '
             f'(got {st} after {secs:.2f}s, error {err})')
    before = db_snapshot(se.b.db_path)
    st, err, sent = chunked_upload(se.b.port, ep.method, ep.target, se.tokens[ep.role], TEN_MB,
                                   'application/json')
    se.ck.ok(st == 413 and err is not None,
             f'{name}: 10 MB chunked (no Content-Length) answered 413 with a JSON error (got '
             f'{st}, error {err}, {sent} bytes sent)')
    se.ck.eq(db_diff(before, db_snapshot(se.b.db_path)), {}, f'{name}: 10 MB chunked: database '
             'unchanged')

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
           % w.system)
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
        ('/v1/audit', 'auditor', ['limit', 'after', 'object_id'], [], ['object_type', 'action']),
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
         lambda s: {'system': w.system, 'kind': s, 'justification': 'j'}, '/kind'),
        ('POST', '/v1/requests', 'department',
         lambda s: {'system': w.system, 'kind': 'new', 'justification': 'j',
                    'resources': {'instances': [dict(INSTANCE, image=s)]}},
         '/resources/instances/0/image'),
    ]
    for s in LEGAL_TEXT:
        for method, path, role, body, field in pattern_fields:
            se.refused(f'{method} {path} {field} = {s[:30]!r} (not in its pattern or enum)',
                       method, path, role, 422, field=field, body=body(s))

    def stored(table, col, row_id, want, what):
        con = sqlite3.connect(f'file:{b.db_path}?mode=ro', uri=True)
        try:
            got = con.execute(f'SELECT "{col}" FROM "{table}" WHERE id = ?', (row_id,)).fetchone()
        finally:
            con.close()
        ck.eq(got[0] if got else None, want, f'{what}: {table}.{col} stored byte for byte')

    def step(what, method, path, role, body, ok, changes, raw=None, headers=None):
        """A valid call: @ok status, and only the tables in @changes changed (count: rows
        added, or 'mod' for a row modified in place)."""
        if 'audit' in changes:
            changes = dict(changes, sqlite_sequence='mod')
        before = db_snapshot(b.db_path)
        r = se.send(method, path, role, body=body, raw=raw, headers=headers)
        ck.eq(r.status, ok, f'{what} ({r!r})')
        diff = db_diff(before, db_snapshot(b.db_path))
        shape = {t: ('mod' if d else len(a)) for t, (a, d) in diff.items()}
        ck.eq(shape, changes, f'{what}: exactly the expected tables changed')
        ck.eq(set(db_snapshot(b.db_path)), se.tables, f'{what}: every table still exists')
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
        body = cbtest.new_request_body(w.system, s)
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
        step(f'{tag}: submit with the text as comment', 'POST', f'/v1/requests/{rid}/submit',
             'department', {'comment': s}, 200,
             {'requests': 'mod', 'request_history': 1, 'audit': 1})
        r = step(f'{tag}: an opinion saying so', 'POST', f'/v1/requests/{rid}/opinions', rev,
                 {'recommendation': 'return', 'comment': s}, 201, {'opinions': 1, 'audit': 1})
        if r.status == 201:
            ck.eq(r.json()['opinions'][-1]['comment'], s, f'{tag}: opinion comment echoed')
        step(f'{tag}: returned with the text as reason', 'POST', f'/v1/requests/{rid}/decision',
             rev, {'decision': 'return', 'comment': s}, 200,
             {'requests': 'mod', 'request_history': 1, 'audit': 1})
        step(f'{tag}: resubmitted with it', 'POST', f'/v1/requests/{rid}/resubmit', 'department',
             {'comment': s}, 200, {'requests': 'mod', 'request_history': 1, 'audit': 1})
        step(f'{tag}: withdrawn with it', 'POST', f'/v1/requests/{rid}/withdraw', 'department',
             {'comment': s}, 200, {'requests': 'mod', 'request_history': 1, 'audit': 1})
        r = b.get(f'/v1/requests/{rid}', token=w.dep)
        hist = [h['comment'] for h in r.json()['history']]
        ck.eq(hist[-4:], [s, s, s, s], f'{tag}: every history comment kept exactly')
        con = sqlite3.connect(f'file:{b.db_path}?mode=ro', uri=True)
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
    try:
        r = se.send('GET', '/v1/whoami', 'admin', headers={'X-Big': 'a' * 100 * 1024})
        ck.ok(400 <= r.status < 500, f'100 KB header refused with a 4xx (got {r.status})')
    except (ConnectionError, OSError) as e:
        ck.ok(True, f'100 KB header: connection closed ({e})')
    try:
        many = {f'X-H{i}': 'v' * 100 for i in range(2000)}
        r = se.send('GET', '/v1/whoami', 'admin', headers=many)
        ck.ok(400 <= r.status < 500, f'2,000 headers refused with a 4xx (got {r.status})')
    except (ConnectionError, OSError) as e:
        ck.ok(True, f'2,000 headers: connection closed ({e})')
    try:
        r = se.send('GET', '/v1/departments/' + '1' * 200 * 1024, 'admin')
        ck.ok(400 <= r.status < 500, f'200 KB URL refused with a 4xx (got {r.status})')
    except (ConnectionError, OSError) as e:
        ck.ok(True, f'200 KB URL: connection closed ({e})')
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
    st, resp, first = cbtest.raw_http(b.port, b'GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n',
                                      timeout=3)
    ck.ok(st in (None, 400, 505), f'HTTP/9.9: refused (got {st})')
    # libmicrohttpd reads header values as C strings; whatever it makes of a NUL, no 5xx.
    st, resp, first = cbtest.raw_http(
        b.port, b'GET /v1/health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n', timeout=3)
    ck.ok(st is None or st < 500, f'NUL in a header: no 5xx (got {st})')
    ck.eq(db_diff(before, db_snapshot(b.db_path)), {}, 'broken HTTP: database unchanged')
    ck.ok(se.alive(), 'broker alive after broken HTTP')


def make_policy_dir():
    d = tempfile.mkdtemp(prefix='cbtest-policy-')
    for name in os.listdir(cbtest.POLICIES):
        shutil.copy(os.path.join(cbtest.POLICIES, name), d)
    path = os.path.join(d, 'review.json')
    with open(path) as f:
        doc = json.load(f)
    doc['materials']['max_bytes'] = MAX_MATERIAL
    with open(path, 'w') as f:
        json.dump(doc, f, indent=2)
    return d


def main():
    ck = cbtest.Checks('hostile-input')
    policy_dir = make_policy_dir()
    try:
        with cbtest.Broker(policy_dir=policy_dir) as b:
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
            legal_text(se, w)
            print(f'SQL/XML metacharacters as legal text: {se.sent - n} requests', flush=True)
            http_level(se, w)
            print('checked oversize headers and broken HTTP', flush=True)

            ck.ok(se.alive(), 'broker process still running')
            ck.eq(b.get('/v1/health').status, 200, 'GET /v1/health at the end')
            r = b.get('/v1/audit/verify', token=w.tokens['auditor'])
            ck.ok(r.status == 200 and r.json()['ok'], f'audit trail verifies ({r!r})')
            m = b.get('/metrics', token=w.tokens['auditor']).body.decode()
            fives = re.search(r'class="5xx"\} (\d+)', m)
            ck.ok(fives and fives.group(1) == '0', 'no 5xx answered to anything '
                  f'({fives.group(0) if fives else m[:200]})')
            con = sqlite3.connect(f'file:{b.db_path}?mode=ro', uri=True)
            ck.eq(con.execute('PRAGMA integrity_check').fetchone()[0], 'ok', 'integrity_check')
            con.close()
            with open(b.log_path, 'rb') as f:
                log = f.read().decode('utf-8', 'replace')
            bad = [line for line in log.splitlines()
                   if re.search(r'\b(error|crit|alert|emerg)\b|assert|sanitizer|segfault', line,
                                re.I)]
            ck.ok(not bad, 'broker log shows no error or crash' +
                  ''.join('\n    ' + line for line in bad[:20]))
            print(f'{se.sent} requests in all', flush=True)
    finally:
        shutil.rmtree(policy_dir, ignore_errors=True)
    ck.done()


if __name__ == '__main__':
    main()
