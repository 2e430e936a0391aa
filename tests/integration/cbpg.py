# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL for the integration tests: the throw-away cluster that `tools/setup.sh test`
starts (tools/pg-cluster.sh) is named by CB_TEST_PG_URL; each test makes its own fresh
database there with fresh_database(), dropped when the test is done. psql does the work, so
the helpers need only the standard library."""
import contextlib
import os
import re
import subprocess

_counter = 0


def pg_url():
    """CB_TEST_PG_URL, or None when the PostgreSQL cases are to be skipped."""
    return os.environ.get('CB_TEST_PG_URL') or None


def url_with_db(url, db):
    """url (postgresql://[auth][/DB][?params]) naming the database db instead."""
    scheme, rest = url.split('://', 1)
    m = re.match(r'([^/?]*)(/[^?]*)?(\?.*)?$', rest)
    return f'{scheme}://{m.group(1)}/{db}{m.group(3) or ""}'


def psql(url, sql):
    """Runs sql on the database url; returns the rows as lists of text (tab-separated)."""
    p = subprocess.run(['psql', '-X', '-q', '-At', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-d', url,
                        '-c', sql], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f'psql: {sql}: {p.stderr.strip()}')
    return [line.split('\t') for line in p.stdout.splitlines()]


@contextlib.contextmanager
def fresh_database(hint='t'):
    """A new empty database (UTF-8, C collation as the operator guide says); yields its URL."""
    global _counter
    admin = pg_url()
    if not admin:
        raise RuntimeError('CB_TEST_PG_URL is not set')
    _counter += 1
    db = f'cbt_{hint}_{os.getpid()}_{_counter}'
    psql(admin, f"CREATE DATABASE {db} TEMPLATE template0 ENCODING 'UTF8'"
                f" LC_COLLATE 'C' LC_CTYPE 'C'")
    try:
        yield url_with_db(admin, db)
    finally:
        psql(admin, f'DROP DATABASE IF EXISTS {db} WITH (FORCE)')


class Psql:
    """One psql process kept open, so that a job can be watched every few milliseconds."""

    def __init__(self, url):
        self.p = subprocess.Popen(['psql', '-X', '-q', '-At', '-F', '\t', '-d', url],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  bufsize=1)

    def rows(self, sql):
        self.p.stdin.write(sql.rstrip(';') + ';\n\\echo @@end\n')
        self.p.stdin.flush()
        out = []
        for line in self.p.stdout:
            line = line.rstrip('\n')
            if line == '@@end':
                return out
            out.append(line.split('\t'))
        raise RuntimeError('psql ended')

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


def metrics(b, token):
    """The broker @b's /metrics as {series{labels}: value}."""
    r = b.get('/metrics', token=token)
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith('#'):
            k, v = line.rsplit(' ', 1)
            out[k] = float(v)
    return out


def leaders(brokers, token, loops):
    """{loop: [nodes whose /metrics say they hold it]} over @brokers ({node: Broker})."""
    out = {loop: [] for loop in loops}
    for node, b in brokers.items():
        m = metrics(b, token)
        for loop in loops:
            if m.get(f'cloudbroker_loop_leader{{loop="{loop}"}}') == 1:
                out[loop].append(node)
    return out
