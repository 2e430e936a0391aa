#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`cloudbrokerd migrate-store`: an SQLite state moved to PostgreSQL (issue 11).

A real broker on SQLite (its own file in the state folder, also on the PostgreSQL pass) gets
departments, accounts, systems, requests with materials (one submitted, one withdrawn), a
reviewer's opinion and so an audit trail; it is stopped. migrate-store copies its database to a
fresh database of CB_TEST_PG_URL's cluster (exit 77, skipped, without it) and prints every table
identical. A broker then starts on the PostgreSQL URL with the same state folder (materials and
audit.key stay there) and answers every list as the SQLite broker did, serves the materials'
bytes, verifies the audit chain, and takes new writes (the identity sequences were set past the
copied ids: the new rows get ids above the old ones). migrate-store refuses a target with
broker rows, a source newer than the program, a source that does not exist, a target that
cannot be reached, and a --from that is not SQLite; --json gives one object. About 10 s.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbpg  # noqa: E402
import cbtest  # noqa: E402

LISTS = ['/v1/departments', '/v1/accounts', '/v1/systems', '/v1/requests', '/v1/allocations',
         '/v1/jobs', '/v1/hosts', '/v1/findings', '/v1/notifications']

SABOTAGE = '''
CREATE FUNCTION mig_sabotage() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()
             WHERE object_identity = 'public.opinions') THEN
    EXECUTE 'CREATE RULE mig_drop AS ON INSERT TO opinions DO INSTEAD NOTHING';
  END IF;
END $$;
CREATE EVENT TRIGGER mig_sabotage ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION mig_sabotage()'''


def migrate(*args):
    return subprocess.run([cbtest.BROKERD, 'migrate-store'] + list(args), capture_output=True,
                          text=True, timeout=60)


def snapshot(b, tokens):
    """What the API answers: every list, every request in full, the audit trail."""
    out = {}
    who = {'admin': b.admin_token, 'reviewer': tokens['reviewer'],
           'auditor': tokens['auditor'], 'department': tokens['dept']}
    paths = LISTS + [f'/v1/requests/{rid}' for rid in tokens['requests']]
    for path in paths:
        # Each list as every role that may read it sees it.
        for role, token in who.items():
            r = b.get(path, token=token)
            if r.status in (403, 404):
                continue
            assert r.status == 200, (path, r)
            out[f'{role} {path}'] = r.json()
    r = b.get('/v1/audit?limit=1000', token=tokens['auditor'])
    assert r.status == 200, r
    out['/v1/audit'] = r.json()
    return out


def populate(b, c):
    admin = b.admin_token
    tokens = {'requests': []}
    d1 = b.make_department('mig-a', 'Migration A')
    d2 = b.make_department('mig-b', 'Migration B — Ämter, 市政, \U0001F5C3')
    _, dept = b.make_account('mig-dept-a', 'department', d1)
    _, dept_b = b.make_account('mig-dept-b', 'department', d2)
    _, tokens['reviewer'] = b.make_account('mig-reviewer', 'reviewer')
    _, tokens['auditor'] = b.make_account('mig-auditor', 'auditor')
    tokens['dept'] = dept
    s1 = cbtest.make_system(b, dept, 'mig-web')
    s2 = cbtest.make_system(b, dept, 'mig-db', category='data_service')
    s3 = cbtest.make_system(b, dept_b, 'mig-b-web')
    r1 = cbtest.make_complete_request(b, dept, s1, 'first, submitted')
    r = b.post(f'/v1/requests/{r1}/submit', token=dept)
    c.eq(r.status, 200, 'submit request 1')
    r2 = cbtest.make_complete_request(b, dept, s2, 'second, withdrawn')
    r = b.post(f'/v1/requests/{r2}/withdraw', {'comment': 'not needed'}, token=dept)
    c.ok(r.status in (200, 201), f'withdraw request 2 ({r.status})')
    r3 = cbtest.make_request(b, dept_b, s3, 'third, a draft')
    tokens['requests'] = [r1, r2, r3]
    r = b.post(f'/v1/requests/{r1}/opinions',
               {'recommendation': 'approve', 'comment': 'fine'}, token=tokens['reviewer'])
    c.ok(r.status in (200, 201), f'an opinion on request 1 ({r.status} {r.body[:200]})')
    r = b.get('/v1/audit/verify', token=tokens['auditor'])
    c.ok(r.status == 200 and r.json()['ok'], 'the chain verifies on SQLite')
    tokens['records'] = r.json()['records']
    c.ok(tokens['records'] >= 10, f'an audit trail of {tokens["records"]} records')
    return tokens


def main():
    if not cbpg.pg_url():
        print('migrate-store: skipped: CB_TEST_PG_URL names no PostgreSQL server')
        return 77
    c = cbtest.Checks('migrate-store')
    state = tempfile.mkdtemp(prefix='cbtest-migrate-')
    sqlite_db = os.path.join(state, 'cloudbroker.db')
    try:
        with cbpg.fresh_database('mig') as url, cbpg.fresh_database('mig2') as other, \
                cbpg.fresh_database('mig3') as sabotaged:
            b = cbtest.Broker(state_dir=state, pass_backend=False).start()
            try:
                tokens = populate(b, c)
                before = snapshot(b, tokens)
                pdf = b.get(f'/v1/requests/{tokens["requests"][0]}/materials/construction_plan',
                            token=tokens['dept'])
                c.ok(pdf.status == 200 and pdf.body == cbtest.PDF_BYTES,
                     f'a material is served on SQLite ({pdf})')
            finally:
                b.stop()
            # Metering rows as the agents leave them: floats that print long, NULLs, byte
            # histograms with zero bytes (no foreign keys: written straight into the file).
            with sqlite3.connect(sqlite_db) as con:
                con.execute(
                    "INSERT INTO samples(instance_id, start, host_id, duration, readings,"
                    " expected, cpu_avg, cpu_max, mem_source) VALUES (7, 1700000000, 1, 300, 30,"
                    " 30, ?, 1e-300, NULL), (7, 1700000300, 1, 300, 29, 30, NULL, 1.5, 'balloon')",
                    (0.1 + 0.2,))
                con.execute(
                    "INSERT INTO rollups(instance_id, day, windows, readings, expected, coverage,"
                    " cpu_avg, cpu_util_hist, computed_at) VALUES (7, '2026-01-01', 288, 8640,"
                    " 8640, ?, 12.345678901234567, ?, '2026-01-02T00:00:00.000Z')",
                    (2 / 3, bytes([0, 1, 2, 255, 0, 92, 120])))
            with sqlite3.connect(sqlite_db) as con:
                tables = [r[0] for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name NOT LIKE 'sqlite_%'")]
                counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                          for t in tables}
                max_request = con.execute('SELECT max(id) FROM requests').fetchone()[0]
                max_department = con.execute('SELECT max(id) FROM departments').fetchone()[0]
                version = con.execute('PRAGMA user_version').fetchone()[0]

            # The copy, every table named identical.
            p = migrate('--from', f'sqlite:{sqlite_db}', '--to', url)
            c.eq(p.returncode, 0, f'migrate-store succeeds ({p.stderr.strip()[-300:]})')
            lines = {ln.split(' ', 1)[0]: ln for ln in p.stdout.splitlines()
                     if ' rows copied, ' in ln}
            for t in tables:
                c.eq(lines.get(t), f'{t} {counts[t]} rows copied, identical',
                     f'table {t} reported copied and identical')
            for t in ('departments', 'accounts', 'systems', 'requests', 'materials', 'audit'):
                c.ok(counts[t] > 0, f'the source has rows in {t} ({counts[t]})')
                got = cbpg.psql(url, f'SELECT count(*) FROM {t}')[0][0]
                c.eq(int(got), counts[t], f'PostgreSQL holds the {t} rows')
            c.eq(cbpg.psql(url, "SELECT encode(cpu_util_hist, 'hex'), coverage = 2::float8 / 3,"
                                " cpu_avg = 12.345678901234567::float8 FROM rollups"),
                 [['000102ff005c78', 't', 't']], 'a blob and floats arrive exact')
            c.eq(cbpg.psql(url, "SELECT cpu_avg = 0.1::float8 + 0.2::float8, cpu_max::text,"
                                " mem_source IS NULL FROM samples ORDER BY start"),
                 [['t', '1e-300', 't'], ['', '1.5', 'f']], 'NULLs and floats in samples')
            c.eq(cbpg.psql(url, 'SELECT max(version) FROM schema_version')[0][0], str(version),
                 'the target is at the source schema version')

            # A second run into the same database: refused, nothing changed.
            p = migrate('--from', f'sqlite:{sqlite_db}', '--to', url)
            c.ok(p.returncode != 0 and 'not empty' in p.stderr,
                 f'a non-empty target is refused ({p.stderr.strip()})')
            c.eq(int(cbpg.psql(url, 'SELECT count(*) FROM requests')[0][0]), counts['requests'],
                 'the refused run changed nothing')

            # The broker on PostgreSQL, same state folder: the same answers.
            b = cbtest.Broker(state_dir=state, pass_backend=False,
                              extra_args=['--database', url]).start()
            try:
                after = snapshot(b, tokens)
                for k in before:
                    c.eq(after[k], before[k], f'GET {k} answers the same on PostgreSQL')
                r = b.get(f'/v1/requests/{tokens["requests"][0]}/materials/construction_plan',
                          token=tokens['dept'])
                c.ok(r.status == 200 and r.body == cbtest.PDF_BYTES,
                     'a material is served from the state folder')
                r = b.get('/v1/audit/verify', token=tokens['auditor'])
                c.ok(r.status == 200 and r.json()['ok'], f'the chain verifies on PostgreSQL ({r})')
                c.eq(r.json()['records'], tokens['records'], 'the chain has the copied records')
                # New writes: ids past the copied ones, the chain goes on.
                d = b.make_department('mig-c', 'Migration C')
                c.ok(d > max_department, f'a new department gets a fresh id ({d})')
                s = cbtest.make_system(b, tokens['dept'], 'mig-new')
                rid = cbtest.make_request(b, tokens['dept'], s, 'after the move')
                c.ok(rid > max_request, f'a new request gets an id past the copied ({rid})')
                r = b.get('/v1/audit/verify', token=tokens['auditor'])
                c.ok(r.status == 200 and r.json()['ok'] and
                     r.json()['records'] > tokens['records'],
                     f'the chain verifies after new writes ({r})')
            finally:
                b.stop()

            # Refusals, each naming the problem.
            newer = os.path.join(state, 'newer.db')
            shutil.copy(sqlite_db, newer)
            with sqlite3.connect(newer) as con:
                con.execute(f'PRAGMA user_version = {version + 1}')
            p = migrate('--from', f'sqlite:{newer}', '--to', other)
            c.ok(p.returncode == 1 and f'schema version {version + 1}' in p.stderr,
                 f'a newer source is refused naming its version ({p.stderr.strip()})')
            p = migrate('--from', f'sqlite:{state}/missing.db', '--to', other)
            c.ok(p.returncode == 1 and 'missing.db' in p.stderr and
                 not os.path.exists(f'{state}/missing.db'),
                 f'a missing source is refused and not created ({p.stderr.strip()})')
            p = migrate('--from', url, '--to', other)
            c.ok(p.returncode == 1 and 'SQLite' in p.stderr,
                 f'a PostgreSQL --from is refused ({p.stderr.strip()})')
            dead = 'postgresql://127.0.0.1:%d/x?connect_timeout=3' % cbtest.free_port()
            p = migrate('--from', f'sqlite:{sqlite_db}', '--to', dead)
            c.ok(p.returncode == 1 and 'cannot be reached' in p.stderr,
                 f'an unreachable target is refused ({p.stderr.strip()})')
            p = migrate('--from', f'sqlite:{sqlite_db}')
            c.eq(p.returncode, 2, 'a missing --to is a usage error')

            # A target that loses rows as they go in (a rule that an event trigger puts on
            # opinions when the migration creates it): the comparison names the table, and
            # nothing is committed.
            if cbpg.psql(sabotaged, 'SELECT rolsuper FROM pg_roles'
                                    ' WHERE rolname = current_user')[0][0] == 't':
                cbpg.psql(sabotaged, SABOTAGE)
                p = migrate('--from', f'sqlite:{sqlite_db}', '--to', sabotaged)
                c.ok(p.returncode == 1 and 'opinions (1 rows differ)' in p.stderr,
                     f'a table that differs fails the run, named ({p.stderr.strip()[-300:]})')
                c.ok(f'opinions {counts["opinions"]} rows copied, DIFFERENT' in p.stdout and
                     f'requests {counts["requests"]} rows copied, identical' in p.stdout,
                     'the report marks that table alone')
                c.eq(cbpg.psql(sabotaged, 'SELECT count(*) FROM departments')[0][0], '0',
                     'nothing of the failed copy was committed')
                # The failed run left the schema and no rows: the same command runs again.
                cbpg.psql(sabotaged, 'DROP EVENT TRIGGER mig_sabotage;'
                                     ' DROP RULE mig_drop ON opinions')
                p = migrate('--from', f'sqlite:{sqlite_db}', '--to', sabotaged)
                c.ok(p.returncode == 0 and 'every table identical' in p.stdout,
                     f'a run after a failed one succeeds ({p.stderr.strip()[-300:]})')
            else:
                print('migrate-store: not a superuser: the differing-table case is skipped')

            # --json, into a second empty database.
            p = migrate('--from', f'sqlite:{sqlite_db}', '--to', other, '--json')
            c.eq(p.returncode, 0, f'migrate-store --json succeeds ({p.stderr.strip()[-300:]})')
            doc = json.loads(p.stdout)
            c.ok(doc['ok'] is True and doc['schema_version'] == version, '--json: ok, version')
            c.eq({t['name']: (t['rows'], t['identical']) for t in doc['tables']},
                 {t: (counts[t], True) for t in tables}, '--json: every table, rows, identical')
            p = migrate('--from', f'sqlite:{sqlite_db}', '--to', other, '--json')
            doc = json.loads(p.stdout)
            c.ok(p.returncode == 1 and doc['ok'] is False and 'not empty' in doc['error'],
                 '--json: a refusal is ok false with the error')
    except Exception:
        traceback.print_exc()
        c.ok(False, 'no exception')
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
