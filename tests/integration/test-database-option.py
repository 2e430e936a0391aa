# SPDX-License-Identifier: Apache-2.0
"""cloudbrokerd --database and the config's database: an SQLite file anywhere, the default
in the state folder, and PostgreSQL: a fresh database is migrated and served, an unreachable
server stops the start with a message that names it and never its password."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from cbpg import fresh_database, pg_url, psql  # noqa: E402
from cbtest import BROKERD, POLICIES, Broker, Checks  # noqa: E402

checks = Checks('database-option')
tmp = tempfile.mkdtemp(prefix='cbtest-database-')


def run(args, timeout=30):
    return subprocess.run([BROKERD, '--policy-dir', POLICIES, '--listen', '127.0.0.1:0'] + args,
                          capture_output=True, text=True, timeout=timeout)


def departments(path):
    with sqlite3.connect(path) as c:
        return [r[0] for r in c.execute('SELECT code FROM departments ORDER BY id')]


# --- sqlite:PATH outside the state folder ---
elsewhere = os.path.join(tmp, 'elsewhere', 'broker.db')
os.makedirs(os.path.dirname(elsewhere))
with Broker(extra_args=['--database', f'sqlite:{elsewhere}']) as b:
    r = b.post('/v1/departments', {'code': 'db-a', 'name': 'A'}, token=b.admin_token)
    checks.eq(r.status, 201, f'department created: {r}')
    state = b.state_dir
checks.ok(os.path.exists(elsewhere), '--database sqlite:PATH makes the file there')
checks.eq(departments(elsewhere), ['db-a'], 'the department is in that file')
checks.ok(not os.path.exists(os.path.join(state, 'cloudbroker.db')),
          'no database in the state folder')

# --- the config's database, and the default ---
cfg = os.path.join(tmp, 'config.json')
other = os.path.join(tmp, 'from-config.db')
with open(cfg, 'w') as f:
    json.dump({'database': f'sqlite:{other}'}, f)
with Broker(extra_args=['--config', cfg]) as b:
    checks.eq(b.get('/v1/whoami', token=b.admin_token).status, 200, 'serves with the config')
checks.ok(os.path.exists(other), 'the config\'s database is used')
with Broker() as b:
    checks.eq(b.get('/v1/whoami', token=b.admin_token).status, 200, 'serves by default')
    checks.ok(os.path.exists(os.path.join(b.state_dir, 'cloudbroker.db')),
              'default: STATE/cloudbroker.db')

# --- refused: an unknown scheme, on the command line and in the config ---
p = run(['--state-dir', os.path.join(tmp, 's1'), '--database', 'mysql://db/cb'])
checks.eq(p.returncode, 1, 'unknown scheme refused')
checks.ok('sqlite:PATH or postgresql://' in p.stderr, f'the message says what is taken: {p.stderr}')
with open(cfg, 'w') as f:
    json.dump({'database': 'mysql://db/cb'}, f)
p = run(['--state-dir', os.path.join(tmp, 's1'), '--config', cfg])
checks.eq(p.returncode, 1, 'unknown scheme in the config refused')
checks.ok('/database' in p.stderr, f'the config error names the field: {p.stderr}')

# --- PostgreSQL: a fresh database is migrated and served; an unreachable server is named ---
if pg_url():
    with fresh_database('dbopt') as url:
        b = Broker(extra_args=['--database', url])
        try:
            b.start()
            r = b.get('/v1/health')
            checks.eq(r.status, 200, 'a fresh PostgreSQL database: the broker serves')
            r = b.get('/v1/whoami', token=b.admin_token)
            checks.eq((r.status, r.json().get('role')), (200, 'admin'),
                      'a fresh PostgreSQL database: the first admin was made in it')
        finally:
            b.stop()
            b.cleanup()
        checks.ok(int(psql(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                      [0][0]) > 10, 'the schema was made in it')
else:
    print('CB_TEST_PG_URL is not set: only an unreachable PostgreSQL server is checked')
p = run(['--state-dir', os.path.join(tmp, 'pg-state'), '--database',
         'postgresql://broker:s3cret@127.0.0.1:9/cb'])
checks.eq(p.returncode, 1, 'an unreachable server: the start fails')
checks.ok('127.0.0.1' in p.stderr and 'cannot connect' in p.stderr,
          f'an unreachable server: the message names it: {p.stderr}')
checks.ok('s3cret' not in p.stderr, 'an unreachable server: no password in the message')

shutil.rmtree(tmp, ignore_errors=True)
checks.done()
