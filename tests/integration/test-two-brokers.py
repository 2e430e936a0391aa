#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Two brokers on one PostgreSQL database, both serving (issue 11, "Several brokers").

Two real cloudbrokerd processes (node-a, node-b) on a fresh database of CB_TEST_PG_URL's cluster
(exit 77, skipped, without it), with a job lease of 3 s. A department applies through broker A;
the reviewer signs in to the console on A and approves through B with that session's cookie.
The approval's job (the trial allocation's provision job, 20 instances) is claimed by one
broker; that broker is killed with kill -9 in the middle of the job, at a point where no
instance is defined but not started: both brokers are stopped (SIGSTOP) for a moment, again
and again, the job's progress read while they are, until the holder is stopped at such a
point; then it is killed. The other broker takes the job over once the lease ended and
finishes it.

Checks: the session cookie made on A works on B; the job ends done through the survivor; in
job_steps every step is done and ran once, except at most the one step that was running at the
kill (run again: steps are idempotent); the steps before the kill ran on the victim, those after
on the survivor; the audit trail has one job.takeover from the victim to the survivor and still
verifies; the elected loops (reconciler, rollup, assessment, sweeper) are held by exactly one
broker before and after, their passes run only there, and they move to the other broker within
a few seconds when their holder is killed (if the job's holder was not the loops' holder, the
victim is restarted under its name and the loops' holder is killed next).

The hosts are libvirt's test driver (test:///FILE.xml, node files written here): quick and
without libvirtd, but each broker's connection is an in-memory host of its own, so the domains
the victim made are not on the survivor's host. That is why the kill is placed where no instance
is defined and not started (the survivor's start step would not find such a domain), and why
this test checks the job's records and the instances' states, not the domains on the hosts;
the two-broker run on real QEMU that the issue asks for is not this test. About 30 s.
"""
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbpg  # noqa: E402
import cbtest  # noqa: E402
import cbworld  # noqa: E402

LEASE = 3
INSTANCES = 20
ELECTED = ('reconciler', 'rollup', 'assessment', 'sweeper')
PASSWORD = 'two brokers, one database'


STEPS_SQL = ("SELECT seq, action, state, attempts, coalesce(node, ''), coalesce(instance_id, 0)"
             " FROM job_steps WHERE job_id = {} ORDER BY seq")


def kill_point_ok(steps):
    """At least one instance started, not all, and none defined but not started."""
    started = {s[5] for s in steps if s[1] == 'start' and s[2] == 'done'}
    defined = {s[5] for s in steps if s[1] == 'define' and s[2] == 'done'}
    total = {s[5] for s in steps if s[1] == 'start'}
    return started and started != total and defined <= started


def kill_mid_job(db, procs, job, timeout=30):
    """Stops both brokers (SIGSTOP), reads the job, and lets them go on for a millisecond or
    two, again and again, until the broker that holds @job is stopped at a good point
    (kill_point_ok); kills it there (kill -9) and lets the other go on. Returns: (victim node,
    the job's steps at the kill)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for b in procs.values():
            os.kill(b.proc.pid, signal.SIGSTOP)
        # Stopped: once the statements they had sent are done, what they did is all they
        # will have done (a transaction left open is rolled back when the kill closes it).
        time.sleep(0.03)
        owner = db.rows(f"SELECT coalesce(lease_owner, ''), state FROM jobs WHERE id = {job}")
        if owner and owner[0][1] in ('done', 'error'):
            raise RuntimeError(f'job {job} ended before the kill: too quick for this test')
        node = owner[0][0] if owner else ''
        if node in procs and kill_point_ok(db.rows(STEPS_SQL.format(job))):
            steps = db.rows(STEPS_SQL.format(job))
            procs[node].kill9()
            for other, b in procs.items():
                if other != node:
                    os.kill(b.proc.pid, signal.SIGCONT)
            return node, steps
        for b in procs.values():
            os.kill(b.proc.pid, signal.SIGCONT)
        time.sleep(0.001)
    raise RuntimeError(f'job {job}: no point to kill its broker at within {timeout}s')


def main():
    c = cbtest.Checks('two-brokers')
    if not cbpg.pg_url():
        print('two-brokers: skipped: CB_TEST_PG_URL names no PostgreSQL server')
        sys.exit(77)
    work = tempfile.mkdtemp(prefix='cbtest-two-')
    pdir = os.path.join(work, 'policies')
    shutil.copytree(cbtest.POLICIES, pdir)
    with open(os.path.join(pdir, 'lifecycle.json')) as f:
        life = json.load(f)
    # The reconciler of the loops' holder must not judge the domains on its own in-memory
    # hosts (see above): its passes are counted, it looks at no domain within the test.
    life.update(reconcile_seconds=3600)
    with open(os.path.join(pdir, 'lifecycle.json'), 'w') as f:
        json.dump(life, f, indent=2)
    cfg = os.path.join(work, 'config.json')
    with open(cfg, 'w') as f:
        json.dump({'job_lease_seconds': LEASE}, f)
    brokers = {}
    every = []  # every Broker made, for the cleanup
    db = None
    t_start = time.time()
    try:
        with cbpg.fresh_database('two') as url:
            def broker(node):
                """A broker with its state folder under work/; every broker but the first
                gets the first one's audit key (the operator guide's step)."""
                state = os.path.join(work, node)
                os.makedirs(state, mode=0o700, exist_ok=True)
                key = os.path.join(work, 'node-a', 'audit.key')
                if node != 'node-a' and not os.path.exists(os.path.join(state, 'audit.key')):
                    shutil.copy2(key, os.path.join(state, 'audit.key'))
                every.append(cbtest.Broker(state_dir=state, policy_dir=pdir,
                                           extra_args=['--database', url, '--node', node,
                                                       '--config', cfg]))
                return every[-1]
            a = brokers['node-a'] = broker('node-a').start()
            admin = a.admin_token
            # A started first and stands alone: it takes every loop.
            cbtest.wait_for(lambda: all(v == ['node-a']
                                        for v in cbpg.leaders(brokers, admin, ELECTED).values()),
                            10, 'node-a to hold every loop')
            b = brokers['node-b'] = broker('node-b').start()
            c.ok(not os.path.exists(os.path.join(b.state_dir, 'admin.token')),
                 'the second broker finds the admin account: no second admin token')

            # A third broker under a name in use is refused.
            dup = broker('node-b-dup')
            dup.extra_args[3] = 'node-b'
            try:
                dup.start(timeout=15)
                c.ok(False, 'a second broker named node-b is refused')
            except RuntimeError:
                with open(dup.log_path) as f:
                    c.ok('already connected' in f.read(), 'a second broker named node-b is refused'
                         ' with a message naming the clash')
            dup.stop()

            dept = a.make_department('d1', 'Department 1',
                                     {'vcpus': 100, 'memory_mib': 1 << 20, 'disk_gib': 1000,
                                      'instances': 100})
            _, dt = a.make_account('d1-staff', 'department', dept)
            _, rv = a.make_account('reviewer', 'reviewer')
            _, vd = a.make_account('vendor', 'vendor')
            _, au = a.make_account('auditor', 'auditor')
            for k in (1, 2):
                uri = cbworld.node_xml(os.path.join(work, f'trial-{k}.xml'), memory_mib=65536,
                                       cpus=32)
                r = a.post('/v1/hosts', {'name': f'trial-{k}', 'uri': uri, 'pool': 'trial'},
                           token=vd)
                assert r.status == 201, r
            for node, br in brokers.items():
                cbtest.wait_for(lambda br=br: all(
                    h['connection']['state'] == 'connected'
                    for h in br.get('/v1/hosts', token=vd).json()['items']), 20,
                    f'{node} to connect to both hosts')

            # ---- a department applies through A ----
            system = cbtest.make_system(a, dt, 'oa')
            rid = cbtest.make_complete_request(a, dt, system, 'two brokers',
                                               [cbworld.SMALL] * INSTANCES)
            r = a.post(f'/v1/requests/{rid}/submit', token=dt)
            c.ok(r.status == 200, f'the request submitted through A: {r}')

            # ---- the reviewer signs in on A and approves on B with that cookie ----
            cbtest.set_password(a, rv, PASSWORD)
            s = cbtest.Session(a, 'reviewer', PASSWORD)
            r = b.get('/v1/whoami', headers={'Cookie': s.cookie})
            c.ok(r.status == 200 and r.json().get('name') == 'reviewer',
                 f'the session cookie made on A works on B: {r}')
            before = cbpg.leaders(brokers, admin, ELECTED)
            c.eq(before, {loop: ['node-a'] for loop in ELECTED},
                 'before the kill every loop is held by node-a alone')
            mb = cbpg.metrics(b, admin)
            c.eq([mb[f'cloudbroker_loop_passes_total{{loop="{loop}"}}'] for loop in ELECTED],
                 [0] * len(ELECTED), 'node-b ran no pass of an elected loop')
            db = cbpg.Psql(url)
            r = b.post(f'/v1/requests/{rid}/decision', {'decision': 'approve'},
                       headers={'Cookie': s.cookie, 'X-CSRF-Token': s.csrf, 'Origin': b.url})
            if not c.ok(r.status == 200, f'the approval through B with the session made on A: {r}'):
                raise RuntimeError('no approval')
            job = r.json()['jobs'][0]['id']

            # ---- the job's broker is killed in the middle of it ----
            victim, at_kill = kill_mid_job(db, brokers, job)
            killed_at = time.time()
            survivor = 'node-b' if victim == 'node-a' else 'node-a'
            sv = brokers[survivor]
            del brokers[victim]
            done_at_kill = [s for s in at_kill if s[2] == 'done']
            running_at_kill = [s for s in at_kill if s[2] == 'running']
            print(f'two-brokers: {victim} killed with {len(done_at_kill)} of {len(at_kill)}'
                  f' steps done ({len(running_at_kill)} running)', flush=True)

            end = cbtest.wait_job(sv, vd, job, timeout=30)
            took = time.time() - killed_at
            c.eq((end['state'], end.get('error')), ('done', None),
                 f'the job finished on {survivor}')
            c.ok(LEASE - 0.5 <= took < LEASE + 15,
                 f'it was taken over after the lease ({LEASE} s): ended {took:.1f} s after'
                 ' the kill')

            steps = db.rows(STEPS_SQL.format(job))
            c.eq([s[2] for s in steps], ['done'] * len(steps), 'every step done')
            again = [s for s in steps if s[3] != '1']
            c.eq([s[0] for s in again], [s[0] for s in running_at_kill],
                 'every step ran once, but the one running at the kill')
            c.ok(all(s[3] == '2' for s in again), f'... which ran twice: {again}')
            done_seqs = {s[0] for s in done_at_kill}
            c.eq({s[4] for s in steps if s[0] in done_seqs}, {victim},
                 f'the steps done before the kill ran on {victim}')
            c.eq({s[4] for s in steps if s[0] not in done_seqs}, {survivor},
                 f'the steps after ran on {survivor}')
            takeovers = db.rows(f"SELECT detail FROM audit WHERE action = 'job.takeover'"
                                f" AND object_id = {job}")
            c.eq([json.loads(t[0]) for t in takeovers], [{'from': victim, 'to': survivor}],
                 'one job.takeover in the audit trail, from the victim to the survivor')
            c.eq(cbpg.metrics(sv, admin).get('cloudbroker_jobs_taken_over_total'), 1,
                 f'{survivor} counts the takeover')
            c.eq(db.rows(f"SELECT count(*) FROM host_claims WHERE job_id = {job}"), [['0']],
                 'the job holds no host any more')
            req = sv.get(f'/v1/requests/{rid}', token=rv).json()
            c.eq(req['state'], 'in_trial', 'the request is in trial')
            alloc = sv.get(f'/v1/allocations/{req["trial"]["allocation_id"]}', token=rv).json()
            c.eq((alloc['state'], [i['state'] for i in alloc['instances']]),
                 ('active', ['running'] * INSTANCES), 'the trial allocation is active, all running')
            r = sv.get('/v1/audit/verify', token=au)
            c.ok(r.status == 200 and r.json().get('ok') is True,
                 f'the audit chain verifies after the takeover: {r}')

            # ---- the elected loops: one holder, moving when it dies ----
            if victim == 'node-a':
                t0 = killed_at
            else:
                c.eq(cbpg.leaders(brokers, admin, ELECTED),
                     {loop: ['node-a'] for loop in ELECTED},
                     'the loops stayed on node-a')
                brokers['node-b'] = broker('node-b').start()
                t0 = time.time()
                brokers.pop('node-a').kill9()
            new = cbtest.wait_for(
                lambda: (lambda l: l if all(v == ['node-b'] for v in l.values()) else None)(
                    cbpg.leaders(brokers, admin, ELECTED)), 10, 'node-b to hold every loop')
            moved = time.time() - t0
            c.ok(moved < 6, f'the loops moved to node-b within {moved:.1f} s of the kill')
            sweeps = lambda: cbpg.metrics(brokers['node-b'], admin)[  # noqa: E731
                'cloudbroker_loop_passes_total{loop="sweeper"}']
            first = sweeps()
            cbtest.wait_for(lambda: sweeps() > first, 10, 'node-b to run sweeper passes')
            c.ok(True, f'node-b runs the sweeper now ({new})')
            db.close()
            db = None
            for node, br in brokers.items():
                c.eq(br.stop(), 0, f'{node} stops cleanly on SIGTERM')
    except Exception:
        traceback.print_exc()
        c.ok(False, 'the test ran to its end')
        for br in every:
            try:
                with open(br.log_path) as f:
                    print(f'--- {br.extra_args[3]} log (tail) ---\n' +
                          ''.join(f.readlines()[-25:]))
            except OSError:
                pass
    finally:
        if db:
            db.close()
        for br in every:
            br.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f'two-brokers: {time.time() - t_start:.1f} s', flush=True)
    c.done()


if __name__ == '__main__':
    main()
