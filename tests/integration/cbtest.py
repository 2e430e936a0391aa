# SPDX-License-Identifier: Apache-2.0
"""Helpers for cloudbroker's integration tests: start the real cloudbrokerd on a free port in a
temporary state folder, talk HTTP to it, run cloudbrokerctl, and count checks.

Standard library only, so the tests run wherever meson runs."""
import contextlib
import hashlib
import http.client
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
import traceback

BUILD = os.environ.get('CB_BUILD_DIR', os.path.join(os.path.dirname(__file__), '..', '..', 'build'))
SOURCE = os.environ.get('CB_SOURCE_DIR', os.path.join(os.path.dirname(__file__), '..', '..'))
BROKERD = os.path.join(BUILD, 'broker', 'cloudbrokerd')
CTL = os.path.join(BUILD, 'cli', 'cloudbrokerctl')
POLICIES = os.path.join(SOURCE, 'policies')

# The integration suite's PostgreSQL pass (tools/setup.sh test, plain build): with
# CB_TEST_BACKEND=postgresql every Broker runs on a database of its own in the cluster that
# CB_TEST_PG_URL names, and the tests' own looks into the database (db_connect(), db_snapshot())
# go there through psql. Otherwise every broker has its SQLite file in its state folder.
BACKEND = os.environ.get('CB_TEST_BACKEND', 'sqlite')
PG_URL = os.environ.get('CB_TEST_PG_URL') if BACKEND == 'postgresql' else None
if BACKEND == 'postgresql' and not PG_URL:
    print('CB_TEST_BACKEND=postgresql needs CB_TEST_PG_URL', flush=True)
    sys.exit(77)


class Checks:
    """Counts assertions; a failed check is reported and makes the program exit non-zero."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def ok(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f'FAIL: {what}', flush=True)
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, f'{what}: got {got!r}, want {want!r}')

    def done(self):
        print(f'{self.name}: {self.passed} checks passed, {self.failed} failed', flush=True)
        sys.exit(1 if self.failed or self.passed == 0 else 0)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode('utf-8'))

    def __repr__(self):
        return f'<{self.status} {self.body[:300]!r}>'


class Broker:
    """A cloudbrokerd process with its own state folder."""

    def __init__(self, state_dir=None, policy_dir=POLICIES, extra_args=(), keep=False,
                 policy_edits=None, pass_backend=True):
        """@policy_edits: run on a copy of policies/ in the state folder, changed as
        copy_policies() says. @pass_backend False: the broker's database is what its own
        arguments and config say, also on the PostgreSQL pass."""
        self.own_state = state_dir is None
        self.state_dir = state_dir or tempfile.mkdtemp(prefix='cbtest-')
        self.policy_dir = policy_dir
        if policy_edits is not None:
            self.policy_dir = copy_policies(os.path.join(self.state_dir, 'policies'),
                                            policy_edits)
        self.extra_args = list(extra_args)
        self.pass_backend = pass_backend
        self.keep = keep
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.state_dir, 'broker.log')

    def start(self, port=0, timeout=15):
        args = [BROKERD, '--state-dir', self.state_dir, '--policy-dir', self.policy_dir,
                '--listen', f'127.0.0.1:{port}'] + self.extra_args
        if PG_URL and self.pass_backend and not any(a.startswith('--database')
                                                    for a in self.extra_args):
            pg_create_database(self.db_path)
            args += ['--database', self.db_path]
        self.log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                if self.proc.poll() is not None:
                    raise RuntimeError(f'cloudbrokerd exited with {self.proc.returncode}; '
                                       f'log in {self.log_path}')
                continue
            m = re.search(r'\(port (\d+)\)', line)
            if m:
                self.port = int(m.group(1))
                break
        if not self.port:
            raise RuntimeError('cloudbrokerd did not report its port')
        return self

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}'

    @property
    def admin_token(self):
        with open(os.path.join(self.state_dir, 'admin.token')) as f:
            return f.read().strip()

    @property
    def db_path(self):
        """The broker's database: its SQLite file, or on the PostgreSQL pass the URL of the
        database named after the state folder (the same folder, the same database, across
        restarts). db_connect() and db_snapshot() take either."""
        if PG_URL and self.pass_backend:
            return pg_url(self.state_dir)
        return os.path.join(self.state_dir, 'cloudbroker.db')

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
            self.log.close()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def cleanup(self):
        self.stop()
        if self.own_state and not self.keep:
            if PG_URL and self.pass_backend:
                pg_drop_database(self.db_path)
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- HTTP --
    def request(self, method, path, body=None, token=None, headers=None, raw=None, timeout=30):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        h = dict(headers or {})
        if token:
            h['Authorization'] = f'Bearer {token}'
        data = raw
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            h.setdefault('Content-Type', 'application/json')
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return Response(r.status, dict(r.getheaders()), r.read())
        finally:
            conn.close()

    def get(self, path, token=None, **kw):
        return self.request('GET', path, token=token, **kw)

    def post(self, path, body=None, token=None, **kw):
        return self.request('POST', path, body=body, token=token, **kw)

    # -- fixtures --
    def make_department(self, code, name=None, quota=None):
        body = {'code': code, 'name': name or code}
        if quota:
            body['quota'] = quota
        r = self.post('/v1/departments', body, token=self.admin_token)
        assert r.status == 201, r
        return r.json()['id']

    def make_account(self, name, role, department_id=None):
        body = {'name': name, 'role': role}
        if department_id:
            body['department_id'] = department_id
        r = self.post('/v1/accounts', body, token=self.admin_token)
        assert r.status == 201, r
        return r.json()['account']['id'], r.json()['token']


class Session:
    """A person signed in to the console: the session cookie and its CSRF token."""

    def __init__(self, broker, name, password, origin=True):
        self.broker = broker
        r = broker.post('/v1/session', {'name': name, 'password': password})
        assert r.status == 200, r
        self.response = r
        self.cookie = r.headers['Set-Cookie'].split(';')[0]
        self.csrf = r.json()['csrf_token']
        self.origin = origin

    def request(self, method, path, body=None, csrf=True, headers=None, **kw):
        h = {'Cookie': self.cookie}
        if csrf and method not in ('GET', 'HEAD'):
            h['X-CSRF-Token'] = self.csrf
        if self.origin and method not in ('GET', 'HEAD'):
            h['Origin'] = self.origin if isinstance(self.origin, str) else self.broker.url
        h.update(headers or {})
        return self.broker.request(method, path, body=body, headers=h, **kw)

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def post(self, path, body=None, **kw):
        return self.request('POST', path, body=body, **kw)


def set_password(broker, token, password):
    """Gives the account of @token its first password (204 asserted)."""
    r = broker.post('/v1/session/password', {'new_password': password}, token=token)
    assert r.status == 204, r


def pg_url(state_dir):
    """The PostgreSQL URL of the database of the broker with @state_dir."""
    name = 'cbt_' + hashlib.sha1(os.path.realpath(state_dir).encode()).hexdigest()[:16]
    return re.sub(r'^(postgres(?:ql)?://[^/?]*)/[^?]*', lambda m: f'{m.group(1)}/{name}', PG_URL)


class _PsqlSession:
    """One psql process kept open on a database: statements go in on its standard input, each
    followed by a marker line, so that a test's thousands of looks cost no process each."""

    def __init__(self, url):
        self.proc = subprocess.Popen(['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=0',
                                      '-d', url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.n = 0

    def run(self, sql):
        self.n += 1
        marker = f'-- cbtest end {self.n} --'
        self.proc.stdin.write(f'{sql};\n\\echo {marker}\n'.encode())
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise DbError(f'psql exited: {" ".join(lines)} (in: {sql[:200]})')
            line = line.decode().rstrip('\n')
            if line == marker:
                break
            lines.append(line)
        if any(re.match(r'^(psql:[^ ]* )?(ERROR|FATAL):', x) for x in lines):
            raise DbError(f'psql: {" ".join(lines)} (in: {sql[:200]})')
        return '\n'.join(lines)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(10)


_sessions = {}


def psql(url, sql, check=True):
    """Runs @sql on @url's database; returns what psql printed (unaligned, tuples only)."""
    s = _sessions.get(url)
    if s is None or s.proc.poll() is not None:
        s = _sessions[url] = _PsqlSession(url)
    try:
        return s.run(sql)
    except DbError:
        if check:
            raise
        return ''


def _psql_close(url):
    s = _sessions.pop(url, None)
    if s:
        s.close()


def pg_database_name(url):
    return re.match(r'^postgres(?:ql)?://[^/?]*/([^?]*)', url).group(1)


def pg_create_database(url):
    """Creates @url's database in the test cluster unless it exists."""
    name = pg_database_name(url)
    if psql(PG_URL, f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip() != '1':
        psql(PG_URL, f'CREATE DATABASE "{name}"')


def pg_drop_database(url):
    _psql_close(url)
    psql(PG_URL, f'DROP DATABASE IF EXISTS "{pg_database_name(url)}" WITH (FORCE)', check=False)


class DbError(sqlite3.Error):
    """A statement the test ran on PostgreSQL failed (an sqlite3.Error, so that the tests'
    handlers catch it on both backends)."""


def _sql_literal(v):
    if v is None:
        return 'NULL'
    if isinstance(v, bool):
        return 'TRUE' if v else 'FALSE'
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, bytes):
        return "'\\x" + v.hex() + "'::bytea"
    return "'" + str(v).replace("'", "''") + "'"


def _bind(sql, params):
    """SQLite's ? placeholders replaced by literals (outside quoted text)."""
    out, it, quote = [], iter(params), None
    for ch in sql:
        if quote:
            quote = None if ch == quote else quote
        elif ch in ("'", '"'):
            quote = ch
        elif ch == '?':
            out.append(_sql_literal(next(it)))
            continue
        out.append(ch)
    return ''.join(out)


class _PgRow(tuple):
    """A row read by index, or by column name as sqlite3.Row is."""

    def __new__(cls, names, values):
        r = super().__new__(cls, values)
        r._names = names
        return r

    def __getitem__(self, k):
        if isinstance(k, str):
            return tuple.__getitem__(self, self._names.index(k))
        return tuple.__getitem__(self, k)

    def keys(self):
        return list(self._names)


class _PgCursor:
    def __init__(self, rows, rowcount):
        self._rows = rows
        self.rowcount = rowcount
        self.lastrowid = None

    def fetchall(self):
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self):
        return self._rows.pop(0) if self._rows else None

    def __iter__(self):
        return iter(self.fetchall())


class PgConnection:
    """What the tests use of an sqlite3 connection, on a PostgreSQL database through psql:
    execute() with ? parameters, fetchone/fetchall, commit, close, row_factory = sqlite3.Row.
    A query's rows come back as JSON, so numbers are numbers and NULL is None; each statement
    commits by itself."""

    def __init__(self, url):
        self.url = url
        self.row_factory = None

    def execute(self, sql, params=()):
        sql = _bind(sql.strip().rstrip(';'), params)
        if re.match(r'(?is)^\s*PRAGMA\b', sql):
            return _PgCursor([], 0)
        if re.match(r'(?is)^\s*(SELECT|WITH|VALUES)\b', sql):
            out = psql(self.url, "SELECT coalesce(json_agg(row_to_json(q)::text), '[]')"
                       f' FROM ({sql}) AS q').strip()
            rows = []
            for text in json.loads(out):
                obj = json.loads(text, object_pairs_hook=list)
                names, values = [k for k, _ in obj], [v for _, v in obj]
                rows.append(_PgRow(names, values) if self.row_factory else tuple(values))
            return _PgCursor(rows, len(rows))
        if re.match(r'(?is)^\s*(INSERT|UPDATE|DELETE)\b', sql) and \
                not re.search(r'(?i)\bRETURNING\b', sql):
            out = psql(self.url, f'WITH w AS ({sql} RETURNING *) SELECT coalesce(json_agg('
                       "row_to_json(w)::text), '[]') FROM w").strip()
            rows = [json.loads(t, object_pairs_hook=list) for t in json.loads(out)]
            cur = _PgCursor([], len(rows))
            cur.lastrowid = rows[-1][0][1] if rows else None
            return cur
        psql(self.url, sql)
        return _PgCursor([], -1)

    def executescript(self, sql):
        psql(self.url, sql)

    def commit(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def db_connect(path, write=False, timeout=10):
    """A connection to a broker's database (Broker.db_path): the SQLite file (read-only
    unless @write) or, on the PostgreSQL pass, its database."""
    if path.startswith(('postgresql:', 'postgres:')):
        return PgConnection(path)
    if write:
        return sqlite3.connect(path, timeout=timeout)
    return sqlite3.connect(f'file:{path}?mode=ro', uri=True, timeout=timeout)


def db_tables(con):
    """The names of the broker's tables (not views), sorted."""
    if isinstance(con, PgConnection):
        sql = ("SELECT relname::text FROM pg_class WHERE relkind IN ('r', 'p') AND"
               " relnamespace = current_schema()::regnamespace AND NOT relispartition"
               " ORDER BY 1")
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    return [r[0] for r in con.execute(sql)]


def db_columns(con, table):
    """The column names of @table, in their order."""
    if isinstance(con, PgConnection):
        return [r[0] for r in con.execute(
            'SELECT attname::text FROM pg_attribute WHERE attrelid = ?::regclass AND attnum > 0'
            ' AND NOT attisdropped ORDER BY attnum', (f'"{table}"',))]
    return [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]


def db_integrity(path):
    """The database's own consistency check: SQLite's PRAGMA integrity_check and
    foreign_key_check; on PostgreSQL amcheck's bt_index_check of every B-tree index and a
    count of the rows whose foreign key finds no parent. Returns the problems ([] when none)."""
    con = db_connect(path)
    try:
        if not isinstance(con, PgConnection):
            bad = [r[0] for r in con.execute('PRAGMA integrity_check') if r[0] != 'ok']
            return bad + [repr(r) for r in con.execute('PRAGMA foreign_key_check')]
        con.execute('CREATE EXTENSION IF NOT EXISTS amcheck')
        # relkind 'i': a partitioned table's index ('I', samples on PostgreSQL) holds nothing to
        # check; its partitions' indexes are checked each.
        con.execute("SELECT bt_index_check(c.oid) FROM pg_index i JOIN pg_class c"
                    " ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam"
                    " WHERE am.amname = 'btree' AND c.relkind = 'i'"
                    " AND c.relnamespace = current_schema()::regnamespace")
        bad = []
        for child, col, parent, pcol in con.execute(
                "SELECT cl.relname::text, a.attname::text, pl.relname::text, pa.attname::text"
                " FROM pg_constraint k JOIN pg_class cl ON cl.oid = k.conrelid"
                " JOIN pg_class pl ON pl.oid = k.confrelid"
                " JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]"
                " JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = k.confkey[1]"
                " WHERE k.contype = 'f' AND cl.relnamespace = current_schema()::regnamespace"):
            n = con.execute(f'SELECT count(*) FROM "{child}" c WHERE c."{col}" IS NOT NULL AND'
                            f' NOT EXISTS (SELECT 1 FROM "{parent}" p WHERE p."{pcol}" ='
                            f' c."{col}")').fetchone()[0]
            if n:
                bad.append(f'{child}.{col}: {n} rows without their {parent}')
        return bad
    finally:
        con.close()


def _pg_object(con, exprs):
    """Evaluates {key: SQL expression} in one query on PostgreSQL; Returns: {key: value}. The
    keys go in groups of 40, as a function takes at most 100 arguments."""
    keys = list(exprs)
    groups = [', '.join(f"'{k}', {exprs[k]}" for k in keys[i:i + 40])
              for i in range(0, len(keys), 40)]
    sql = ' || '.join(f'jsonb_build_object({g})' for g in groups)
    return json.loads(con.execute(f'SELECT ({sql})::text').fetchone()[0])


def db_snapshot(path, named=False, tables=None):
    """Every row of every table (or of those of @tables that exist), for 'the database is
    unchanged' checks (on PostgreSQL, whose tables have no row order, each table's rows sorted).
    @named: {table: (columns, rows)}."""
    con = db_connect(path)
    try:
        tables = [t for t in db_tables(con) if tables is None or t in tables]
        if not isinstance(con, PgConnection):
            rows = {t: con.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables}
            if named:
                return {t: (db_columns(con, t), r) for t, r in rows.items()}
            return rows
        if not tables:
            return {}
        # One query for the whole database: a psql process per table would be slow.
        doc = _pg_object(con, {t: f"json_build_array((SELECT coalesce(json_agg(attname::text"
                                  f" ORDER BY attnum), '[]') FROM pg_attribute WHERE attrelid ="
                                  f" '\"{t}\"'::regclass AND attnum > 0 AND NOT attisdropped),"
                                  f" (SELECT coalesce(json_agg(row_to_json(x)::text), '[]')"
                                  f" FROM \"{t}\" x))" for t in tables})
        out = {}
        for t, (cols, rows) in doc.items():
            rows = sorted((tuple(v for _, v in json.loads(r, object_pairs_hook=list))
                           for r in rows), key=repr)
            out[t] = (cols, rows) if named else rows
        return out
    finally:
        con.close()


def ctl(broker, *args, token=None, check=True, input=None):
    """Runs cloudbrokerctl against @broker; returns the CompletedProcess."""
    env = dict(os.environ)
    env['CLOUDBROKER_URL'] = broker.url
    if token:
        env['CLOUDBROKER_TOKEN'] = token
    p = subprocess.run([CTL] + list(args), env=env, capture_output=True, input=input, timeout=60)
    if check and p.returncode != 0:
        raise RuntimeError(f'cloudbrokerctl {" ".join(args)} failed ({p.returncode}): '
                           f'{p.stderr.decode()} {p.stdout.decode()}')
    return p


def ctl_json(broker, *args, token=None):
    p = ctl(broker, '--json', *args, token=token)
    return json.loads(p.stdout.decode())


# ---- shared by test-role-matrix, test-hostile-input and test-crash ----

# The smallest document each sniffed family accepts.
PDF_BYTES = b'%PDF-1.4\n% cbtest material\n%%EOF\n'
PNG_BYTES = b'\x89PNG\r\n\x1a\n' + b'\x00\x00\x00\rIHDR' + b'\x00' * 17
NEW_REQUEST_MATERIALS = ('construction_plan', 'performance_self_test', 'security_self_test')


def json_error(resp):
    """The error object of a JSON error response ({"error": {...}}), or None when the body is
    not one."""
    try:
        e = resp.json().get('error')
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    return e if isinstance(e, dict) else None


def db_fingerprint(path, tables=None, skip=None):
    """{table: (row count, digest of its rows)} of every table (or of @tables, known to exist;
    the columns in @skip {table: set of columns} left out of the digests):
    the cheap form of db_snapshot() for "the database is unchanged" checks made around every
    request. On PostgreSQL the server computes the digests (the sum of the rows' 64-bit hashes:
    no sort, no rows shipped) in one query; shipping every row through psql around each request
    made the hostile-input test eight times slower there than on SQLite."""
    con = db_connect(path)
    try:
        if tables is None:
            tables = db_tables(con)
        if not tables:
            return {}
        if not isinstance(con, PgConnection):
            out = {}
            for t in tables:
                cut = skip.get(t) if skip else None
                keep = [i for i, c in enumerate(db_columns(con, t)) if c not in cut] if cut \
                    else None
                rows = sorted(repr(r if keep is None else tuple(r[i] for i in keep))
                              for r in con.execute(f'SELECT * FROM "{t}"'))
                out[t] = (len(rows), hashlib.sha256('\n'.join(rows).encode()).hexdigest())
            return out

        def row(t):
            cut = sorted(skip.get(t, ())) if skip else []
            if not cut:
                return 'x::text'
            return "(to_jsonb(x) - ARRAY[%s]::text[])::text" % ', '.join(f"'{c}'" for c in cut)
        doc = _pg_object(con, {t: f"(SELECT json_build_array(count(*), coalesce(sum("
                                  f"hashtextextended({row(t)}, 0)::numeric), 0)::text) FROM"
                                  f" \"{t}\" x)" for t in tables})
        return {t: (n, d) for t, (n, d) in doc.items()}
    finally:
        con.close()


def db_fingerprint_diff(before, after):
    """The tables whose rows differ between two db_fingerprint()s: {table: (rows before, rows
    after)}."""
    return {t: (before.get(t, (0, ''))[0], after.get(t, (0, ''))[0])
            for t in sorted(set(before) | set(after)) if before.get(t) != after.get(t)}


def db_watch(path, tables):
    """A look at the database before a change: every table's fingerprint and @tables' rows."""
    return db_fingerprint(path), db_snapshot(path, tables=tables)


def db_watch_diff(path, before):
    """What changed since db_watch() gave @before: {table: (added_rows, removed_rows)} for the
    watched tables that changed, {table: 'changed'} for any other table whose rows differ."""
    fp, rows = before
    out = db_diff(rows, db_snapshot(path, tables=list(rows)))
    for t in db_fingerprint_diff(fp, db_fingerprint(path)):
        out.setdefault(t, 'changed')
    return out


def db_diff(before, after):
    """What changed between two db_snapshot()s: {table: (added_rows, removed_rows)} for every
    table whose rows differ (a modified row shows as one removed and one added)."""
    out = {}
    for t in sorted(set(before) | set(after)):
        b = list(before.get(t, []))
        a = list(after.get(t, []))
        if a == b:
            continue
        remaining = list(b)
        added = []
        for row in a:
            if row in remaining:
                remaining.remove(row)
            else:
                added.append(row)
        out[t] = (added, remaining)
    return out


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def answer_whole(data):
    """Whether the raw bytes @data hold an HTTP answer's head and all of its body."""
    head, sep, body = data.partition(b'\r\n\r\n')
    if not sep:
        return False
    m = re.search(rb'(?im)^content-length:\s*(\d+)', head)
    if m:
        return len(body) >= int(m.group(1))
    return bool(re.search(rb'(?im)^transfer-encoding:\s*chunked', head)) and \
        body.endswith(b'0\r\n\r\n')


def stream_body(port, head, total, first, chunked, wait=10.0, rest=None):
    """Sends the request head @head to 127.0.0.1:@port and then @total body bytes, @first and
    then @rest (@first again when None) as often as needed, each a chunk of the chunked coding
    when @chunked, while a thread reads the answer: the sending stops once an answer comes (a
    server may answer and close before the body is all sent), the reading once the answer is
    whole, the connection closed or @wait passed. Returns: (the answer's bytes, how many body
    bytes were sent)."""
    s = socket.create_connection(('127.0.0.1', port), timeout=wait)
    got = []

    def reader():
        while not answer_whole(b''.join(got)):
            try:
                c = s.recv(65536)
            except OSError:
                return
            if not c:
                return
            got.append(c)

    th = threading.Thread(target=reader, daemon=True)
    sent = 0
    try:
        s.sendall(head)
        th.start()
        chunk = first
        try:
            while sent < total and not got:
                n = min(len(chunk), total - sent)
                s.sendall((b'%x\r\n' % n + chunk[:n] + b'\r\n') if chunked else chunk[:n])
                sent += n
                chunk = rest or first
            if chunked and not got:
                s.sendall(b'0\r\n\r\n')
        except OSError:
            pass
        th.join(wait)
    finally:
        s.close()
    return b''.join(got), sent


def raw_http(port, data, timeout=10):
    """Sends @data as raw bytes to 127.0.0.1:@port, reads until the server closes or @timeout.
    Returns (status or None, raw response bytes, seconds until the first byte or None)."""
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    t0 = time.time()
    first = None
    chunks = []
    try:
        try:
            s.sendall(data)
        except OSError:
            pass
        while True:
            try:
                c = s.recv(65536)
            except (socket.timeout, OSError):
                break
            if not c:
                break
            if first is None:
                first = time.time() - t0
            chunks.append(c)
            if answer_whole(b''.join(chunks)):
                break
    finally:
        s.close()
    resp = b''.join(chunks)
    m = re.match(rb'HTTP/1\.[01] (\d{3})', resp)
    return (int(m.group(1)) if m else None), resp, first


def make_system(broker, token, name, department_id=None, **extra):
    """Registers a system (201 asserted); Returns: its id."""
    body = {'name': name, 'category': extra.pop('category', 'website')}
    if department_id:
        body['department_id'] = department_id
    body.update(extra)
    r = broker.post('/v1/systems', body, token=token)
    assert r.status == 201, r
    return r.json()['id']


INSTANCE = {'vcpus': 1, 'memory_mib': 512, 'disk_gib': 10, 'image': 'debian-12'}


def new_request_body(system_id, justification='cbtest request', instances=None):
    """The body of a 'new' request for @instances (a list of instance specs; one INSTANCE when
    None)."""
    return {'system': system_id, 'kind': 'new', 'justification': justification,
            'resources': {'instances': [dict(i) for i in instances or [INSTANCE]]}}


def make_request(broker, token, system_id, justification='cbtest request', instances=None):
    """Creates a draft 'new' request (201 asserted); Returns: its id."""
    r = broker.post('/v1/requests', new_request_body(system_id, justification, instances),
                    token=token)
    assert r.status == 201, r
    return r.json()['id']


def upload_material(broker, token, request_id, kind, data=PDF_BYTES, media_type='application/pdf',
                    query=''):
    return broker.request('PUT', f'/v1/requests/{request_id}/materials/{kind}{query}', raw=data,
                          token=token, headers={'Content-Type': media_type})


def upload_materials(broker, token, request_id, kinds=NEW_REQUEST_MATERIALS):
    """Uploads a PDF as each material of @kinds (201 asserted for each)."""
    for kind in kinds:
        r = upload_material(broker, token, request_id, kind)
        assert r.status == 201, r


def make_complete_request(broker, token, system_id, justification='cbtest request',
                          instances=None):
    """A draft 'new' request with every material the default review policy requires.
    Returns: its id."""
    rid = make_request(broker, token, system_id, justification, instances)
    upload_materials(broker, token, rid)
    return rid


def wait_for(fn, timeout=60, what='condition', interval=0.1):
    """Calls @fn until it returns something true; Returns: that value. Raises on timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise RuntimeError(f'timed out after {timeout}s waiting for {what} (last: {last!r})')


def wait_job(broker, token, job_id, timeout=120, interval=0.1):
    """Waits until job @job_id is done or error; Returns: its document."""
    return wait_for(lambda: (lambda j: j if j['state'] in ('done', 'error') else None)(
        broker.get(f'/v1/jobs/{job_id}', token=token).json()), timeout, f'job {job_id} to end',
        interval)


def wait_request_state(broker, token, request_id, states, timeout=120, interval=0.1):
    """Waits until request @request_id reaches one of @states; Returns: its document."""
    if isinstance(states, str):
        states = (states,)
    return wait_for(lambda: (lambda d: d if d['state'] in states else None)(
        broker.get(f'/v1/requests/{request_id}', token=token).json()), timeout,
        f'request {request_id} to become one of {states}', interval)


def copy_policies(d, edits=None):
    """A copy of policies/ in the new folder @d, each file named in @edits changed: a dict is
    merged into the document at its top level, a callable changes the document in place.
    Returns: @d."""
    shutil.copytree(POLICIES, d)
    for name, change in (edits or {}).items():
        path = os.path.join(d, name)
        with open(path) as f:
            doc = json.load(f)
        if callable(change):
            change(doc)
        else:
            doc.update(change)
        with open(path, 'w') as f:
            json.dump(doc, f, indent=2)
    return d


@contextlib.contextmanager
def ran_to_end(checks, broker, tail=60):
    """The body of a test that keeps @broker running throughout: an exception in it is printed
    and counted as a failed check; then stop_checked()."""
    try:
        yield
    except Exception:
        traceback.print_exc()
        checks.ok(False, 'the test ran to its end')
    finally:
        stop_checked(checks, broker, tail)


def stop_checked(checks, broker, tail=60):
    """The end of a test that keeps its broker running throughout: checks that the broker is
    still running and stops cleanly, prints the tail of its log when any check failed, and
    removes its state."""
    alive = broker.proc is not None and broker.proc.poll() is None
    rc = broker.stop()
    checks.ok(alive and rc == 0, f'the broker ran to the end and stopped cleanly (exit {rc})')
    if checks.failed:
        with open(broker.log_path, errors='replace') as f:
            print('---- broker log (tail) ----\n' + ''.join(f.readlines()[-tail:]))
    broker.cleanup()


def self_signed_cert(folder):
    """A self-signed ECDSA certificate for 127.0.0.1 (GnuTLS certtool) in @folder.
    Returns: (certificate path, key path)."""
    key = os.path.join(folder, 'key.pem')
    cert = os.path.join(folder, 'cert.pem')
    tmpl = os.path.join(folder, 'cert.cfg')
    with open(tmpl, 'w') as f:
        f.write('cn = "127.0.0.1"\nip_address = "127.0.0.1"\nexpiration_days = 2\n'
                'tls_www_server\nencryption_key\nsigning_key\n')
    subprocess.run(['certtool', '--generate-privkey', '--key-type=ecdsa', '--outfile', key],
                   check=True, capture_output=True)
    subprocess.run(['certtool', '--generate-self-signed', '--load-privkey', key, '--template',
                    tmpl, '--outfile', cert], check=True, capture_output=True)
    return cert, key
