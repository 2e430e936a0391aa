#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Disaster recovery on PostgreSQL: a streaming standby promoted under a write load (issue 11).

The test makes its own clusters with tools/pg-cluster.sh (it needs no CB_TEST_PG_URL; exit 77,
skipped, without psql or PostgreSQL 15's initdb): a primary whose commits wait for the
synchronous standby "dr" (synchronous_standby_names, synchronous_commit = on) and that
standby, made with pg_basebackup -R. Two brokers (nodes a and b, b with a copy of a's audit
key) run on the database "cloudbroker" with a libpq URL that names both servers' sockets and
target_session_attrs=read-write, as the operator guide says.

A writer thread per broker creates departments one after another and records each one the
broker acknowledged (201, its id). Once each has WRITES_BEFORE acknowledgements the primary is
stopped (immediate, as a crash); the standby is promoted PAUSE seconds later. The brokers are
not restarted.

Checks: the standby was synchronous; while no server takes writes every answer is a 503 with
a JSON error (code "unavailable"), never a dropped connection, GET /v1/health answers, and the
brokers keep running; each serves writes again within 10 s of the promotion (the figures
printed are the failover times the operator guide quotes); every acknowledged department is
on the new primary with its id and code; writes after the failover work; the reconciler runs
again on exactly one broker; GET /v1/audit/verify is ok through both; both stop cleanly.
About 8 s.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbpg  # noqa: E402
import cbtest  # noqa: E402

PG_CLUSTER = os.path.join(cbtest.SOURCE, 'tools', 'pg-cluster.sh')
INITDB = os.path.join(os.environ.get('PGBIN', '/usr/lib/postgresql/15/bin'), 'initdb')
STANDBY_NAME = 'dr'
WRITES_BEFORE = 50
WRITES_AFTER = 20
PAUSE = 1.0  # seconds between the primary's loss and the promotion
SERVE_WITHIN = 10.0


def cluster(*args):
    """tools/pg-cluster.sh ARGS; Returns: what it printed (a URL for start and standby)."""
    p = subprocess.run([PG_CLUSTER, *args], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f'pg-cluster.sh {" ".join(args)}: {p.stderr.strip()}')
    return p.stdout.strip()


class Writer(threading.Thread):
    """Creates departments PREFIX0, PREFIX1, ... until stopped; keeps every answer with its
    time."""

    def __init__(self, broker, token, prefix):
        super().__init__(daemon=True)
        self.broker = broker
        self.prefix = prefix
        self.token = token
        self.acked = []   # (time, code, id) of every 201
        self.failed = []  # (time, code, status or exception text, body) of every other answer
        self.stopping = threading.Event()

    def run(self):
        n = 0
        while not self.stopping.is_set():
            code = f'{self.prefix}{n}'
            n += 1
            try:
                r = self.broker.post('/v1/departments', {'code': code, 'name': f'Failover {code}'},
                                     token=self.token, timeout=20)
            except Exception as e:  # a dropped connection is a failure of the test
                self.failed.append((time.time(), code, repr(e), b''))
                time.sleep(0.05)
                continue
            if r.status == 201:
                self.acked.append((time.time(), code, r.json()['id']))
            else:
                self.failed.append((time.time(), code, r.status, r.body))
                time.sleep(0.05)

    def acked_after(self, t):
        return [a for a in self.acked if a[0] > t]


def json_error(body):
    """The error code of a JSON error body, or None when the body is not one."""
    try:
        return json.loads(body)['error']['code']
    except (ValueError, KeyError, TypeError):
        return None


def main():
    c = cbtest.Checks('pg-failover')
    if not shutil.which('psql') or not os.access(INITDB, os.X_OK):
        print(f'pg-failover: skipped: needs psql and {INITDB} (postgresql-15)')
        sys.exit(77)
    t_start = time.time()
    # Short: a socket path must fit in 107 bytes. Readable by the postgres user (as root the
    # clusters run as postgres).
    work = tempfile.mkdtemp(prefix='cbfo-', dir='/tmp')
    os.chmod(work, 0o755)
    primary, standby = os.path.join(work, 'p'), os.path.join(work, 's')
    brokers = {}
    writers = {}
    try:
        admin_url = cluster('start', primary, '--sync-standby', STANDBY_NAME)
        cluster('standby', primary, standby, STANDBY_NAME)
        replication = lambda: cbpg.psql(  # noqa: E731
            admin_url, 'SELECT application_name, sync_state FROM pg_stat_replication')
        try:
            cbtest.wait_for(lambda: replication() == [[STANDBY_NAME, 'sync']], 10,
                            'the standby to stream')
        except RuntimeError:
            pass
        c.eq(replication(), [[STANDBY_NAME, 'sync']], 'the standby streams, synchronous')
        cbpg.psql(admin_url, "CREATE DATABASE cloudbroker TEMPLATE template0 ENCODING 'UTF8'"
                             " LC_COLLATE 'C' LC_CTYPE 'C'")
        url = (f'postgresql:///cloudbroker?host={primary},{standby}&port=5432,5432&user=postgres'
               '&target_session_attrs=read-write&connect_timeout=3')
        # Two brokers on the database, as the operator guide sets them up: the second one gets
        # a copy of the first one's audit key.
        for node in ('a', 'b'):
            state = os.path.join(work, f'broker-{node}')
            os.makedirs(state, mode=0o700)
            if node != 'a':
                shutil.copy2(os.path.join(work, 'broker-a', 'audit.key'), state)
            brokers[node] = cbtest.Broker(state_dir=state, pass_backend=False,
                                          extra_args=['--database', url, '--node', node]).start()
        admin = brokers['a'].admin_token
        _, auditor = brokers['a'].make_account('auditor', 'auditor')

        for node, b in brokers.items():
            writers[node] = Writer(b, admin, f'fo{node}')
            writers[node].start()
        cbtest.wait_for(lambda: all(len(w.acked) >= WRITES_BEFORE for w in writers.values()),
                        60, f'{WRITES_BEFORE} acknowledged writes through each broker')
        # ---- the primary is lost, the standby promoted a moment later ----
        t_halt = time.time()
        cluster('halt', primary)
        r = brokers['a'].get('/v1/health')
        c.ok(r.status == 200, f'without a primary, GET /v1/health still answers: {r}')
        time.sleep(max(0, PAUSE - (time.time() - t_halt)))
        t_promote = time.time()
        cluster('promote', standby)
        promoted = time.time()
        firsts = {}
        for node, w in writers.items():
            firsts[node] = cbtest.wait_for(lambda w=w: w.acked_after(t_promote), 30,
                                           f'a write through {node} after the promotion')[0][0]
            print(f'pg-failover: broker {node}: primary lost at 0.0 s, standby promoted at'
                  f' {t_promote - t_halt:.1f} s (pg_ctl promote took {promoted - t_promote:.2f}'
                  f' s), first write served at {firsts[node] - t_halt:.1f} s:'
                  f' {firsts[node] - t_promote:.2f} s after the promotion', flush=True)
            c.ok(firsts[node] - t_promote < SERVE_WITHIN,
                 f'broker {node} serves writes again {firsts[node] - t_promote:.2f} s after the'
                 f' promotion (< {SERVE_WITHIN:.0f} s), not restarted')
        cbtest.wait_for(lambda: all(len(w.acked_after(firsts[n])) >= WRITES_AFTER
                                    for n, w in writers.items()), 30, f'{WRITES_AFTER} more writes')
        for w in writers.values():
            w.stopping.set()
            w.join(30)
        c.ok(not any(w.is_alive() for w in writers.values()), 'the writers ended')

        for node, w in writers.items():
            print(f'pg-failover: broker {node}: {len(w.acked)} writes acknowledged'
                  f' ({len(w.acked_after(firsts[node])) + 1} after the failover),'
                  f' {len(w.failed)} answered 503 in between', flush=True)
            c.ok(brokers[node].proc.poll() is None,
                 f'broker {node} kept running through the failover')
            c.ok(len(w.failed) > 0,
                 f'writes through {node} failed while no server took them ({len(w.failed)})')
            bad = [f for f in w.failed if f[2] != 503 or json_error(f[3]) != 'unavailable']
            c.eq(bad, [], f'every failed write through {node} was answered 503 with a JSON'
                          ' error "unavailable"')
            c.ok(all(t_halt <= f[0] <= firsts[node] for f in w.failed),
                 f'writes through {node} failed only between the loss of the primary and its'
                 ' first served write')

        # ---- no acknowledged write lost: read on the new primary itself ----
        new_url = cbpg.url_with_db(cluster('url', standby), 'cloudbroker')
        c.eq(cbpg.psql(new_url, 'SELECT pg_is_in_recovery()'), [['f']],
             'the standby is a primary now')
        have = {(code, int(i))
                for i, code in cbpg.psql(new_url, 'SELECT id, code FROM departments')}
        acked = [a for w in writers.values() for a in w.acked]
        before = [a for a in acked if a[0] <= t_halt]
        lost = [(code, i) for _, code, i in acked if (code, i) not in have]
        c.ok(len(before) >= 2 * WRITES_BEFORE,
             f'{len(before)} writes acknowledged by the old primary')
        c.eq(lost, [], f'every one of the {len(acked)} acknowledged departments is on the new'
                       ' primary, with its id')

        for node, b in brokers.items():
            r = b.get('/v1/audit/verify', token=auditor)
            c.ok(r.status == 200 and r.json().get('ok') is True,
                 f'the audit chain verifies through {node} on the new primary: {r}')
        leader = lambda b: 'cloudbroker_loop_leader{loop="reconciler"} 1' in b.get(  # noqa: E731
            '/metrics', token=admin).body.decode()
        try:
            cbtest.wait_for(lambda: sum(leader(b) for b in brokers.values()) == 1, 10,
                            'one broker to run the reconciler')
        except RuntimeError:
            pass
        holders = [n for n, b in brokers.items() if leader(b)]
        c.eq(len(holders), 1, f'the reconciler runs again, on one broker ({holders})')
    except Exception:
        traceback.print_exc()
        c.ok(False, 'the test ran to its end')
    finally:
        for w in writers.values():
            w.stopping.set()
            w.join(30)
        for b in brokers.values():
            cbtest.stop_checked(c, b)
        for d in (standby, primary):
            try:
                cluster('stop', d)
            except RuntimeError as e:
                print(e)
        shutil.rmtree(work, ignore_errors=True)
    print(f'pg-failover: {time.time() - t_start:.1f} s', flush=True)
    c.done()


if __name__ == '__main__':
    main()
