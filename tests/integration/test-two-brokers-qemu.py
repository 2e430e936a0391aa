#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Two brokers on one PostgreSQL database and real QEMU guests (issue 11, "Must show").

Two real cloudbrokerd processes (node-a, node-b) on a fresh database of CB_TEST_PG_URL's cluster
(exit 77, skipped, without it), with a job lease of 3 s, and one libvirtd of the test's own
(cbvirt.PrivateLab: unprivileged, software emulation, 1 MiB boot-sector guests of 64 MiB) that
both brokers connect to. node-b starts first and so holds the elected loops.

A department applies through node-a (four instances); the reviewer approves through node-b. The
trial allocation's provision job (reserve, then create_volume, define and start per instance,
then finish) is claimed by one broker: the one named in the job's lease_owner. That broker is
killed with kill -9 in the middle of the job, between two steps: the test locks the row of the
second instance's first step in job_steps (SELECT ... FOR UPDATE) while it is still pending, so
the broker, done with the first instance, waits in the transaction that would mark it running;
when pg_stat_activity shows it waiting, the test reads the job's lease_owner, kills that
broker and lets the row go. PostgreSQL rolls the dead broker's transaction back: the job stands
with the first instance's steps done and no step running. The other broker takes the job over
once the lease ended and finishes it.

Checks: the job ends done through the survivor, after the lease; in job_steps every step is
done and ran once (attempts 1), those done at the kill on the victim, the others on the
survivor; the audit trail has the job's create, one takeover (victim to survivor) and one done,
no allocation or request transition twice, and still verifies; instance_history records no
state of an instance twice; on the libvirtd exactly the allocation's domains exist, one per
instance, with its UUID, running, and the pool holds exactly their volumes; the reconciler
recorded no event. The elected loops (reconciler, rollup, assessment, sweeper): before the kill
exactly one broker holds each, by its /metrics and by the advisory locks in pg_locks, and only
it runs their passes; after the kill the survivor holds each (within a few seconds when the
victim held them) and runs their passes; the victim restarted under its name runs none of them
while the survivor lives. About 35 s (also with the sanitizers).
"""
import datetime
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
import cbvirt  # noqa: E402

LEASE = 3
INSTANCES = 4
ELECTED = ('reconciler', 'rollup', 'assessment', 'sweeper')
# The BrLoop numbers of ELECTED, the objid of their advisory locks (broker/br-cluster.h).
LOOP_IDS = {'0': 'reconciler', '1': 'rollup', '2': 'assessment', '3': 'sweeper'}
BASE_VOLUMES = {'halt.raw', 'spin.raw'}

STEPS_SQL = ("SELECT seq, action, state, attempts, coalesce(node, ''), coalesce(instance_id, 0)"
             " FROM job_steps WHERE job_id = {} ORDER BY seq")
# Who holds the elected loops' advisory locks in this database: the election connections'
# application_name is cloudbroker:NODE (broker/br-cluster.c).
LOCKS_SQL = ("SELECT a.application_name, l.objid FROM pg_locks l JOIN pg_stat_activity a"
             " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.classid = 1667392876"
             " AND l.objsubid = 1 AND l.granted AND l.database = (SELECT oid FROM pg_database"
             " WHERE datname = current_database()) ORDER BY l.objid")


def lock_holders(db):
    """{loop: [nodes holding its advisory lock]} from pg_locks."""
    out = {loop: [] for loop in ELECTED}
    for app, objid in db.rows(LOCKS_SQL):
        if objid in LOOP_IDS:
            out[LOOP_IDS[objid]].append(app.removeprefix('cloudbroker:'))
    return out


def passes(b, token, loop):
    return cbpg.metrics(b, token).get(f'cloudbroker_loop_passes_total{{loop="{loop}"}}', 0)


def kill_between_steps(url, db, procs, job, timeout=60):
    """Kills the broker that runs @job with kill -9 between two of its steps: after the steps
    of at least one instance, before the first step of another. That step's row in job_steps
    is locked (SELECT ... FOR UPDATE, on a session of the test's own) while it is still pending
    and never tried, so the broker, done with the step before it, waits in the transaction
    that would mark it running; the test sees it wait (pg_stat_activity), reads the job's
    lease_owner, kills that broker, and lets the row go. PostgreSQL rolls the dead broker's
    open transaction back: the job stands with its steps done up to there, none running.
    Returns: (victim node, the job's steps after the kill, the seq of the step held, the time
    of the kill)."""
    hold = cbpg.Psql(url)
    try:
        firsts = db.rows(f"SELECT seq FROM job_steps WHERE job_id = {job} AND action ="
                         f" 'create_volume' ORDER BY seq")
        for (seq,) in firsts[1:]:
            hold.rows('BEGIN')
            got = hold.rows(f"SELECT state, attempts FROM job_steps WHERE job_id = {job}"
                            f" AND seq = {seq} FOR UPDATE")
            if got == [['pending', '0']]:
                break
            # The broker got there first: the next instance's first step, then.
            hold.rows('ROLLBACK')
        else:
            raise RuntimeError(f'job {job}: every instance begun before a step could be held')
        waiting = cbtest.wait_for(lambda: db.rows(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND"
            " wait_event_type = 'Lock' AND query LIKE 'UPDATE job_steps%'"), timeout,
            f'the broker of job {job} to wait for step {seq}')
        if len(waiting) != 1:
            raise RuntimeError(f'job {job}: {len(waiting)} sessions wait for step {seq}')
        node = db.rows(f"SELECT coalesce(lease_owner, '') FROM jobs WHERE id = {job}")[0][0]
        if node not in procs:
            raise RuntimeError(f'job {job}: lease_owner {node!r} is none of {sorted(procs)}')
        procs[node].kill9()
        killed_at = time.time()
        hold.rows('ROLLBACK')
        # The dead broker's session takes the row, finds its client gone, and rolls back.
        cbtest.wait_for(lambda: db.rows(f"SELECT count(*) FROM pg_stat_activity WHERE"
                                        f" pid = {waiting[0][0]}") == [['0']], 10,
                        'the dead broker\'s session to end')
        return node, db.rows(STEPS_SQL.format(job)), int(seq), killed_at
    finally:
        hold.close()


def domains_match(c, lab, alloc, what):
    """Exactly @alloc's instances have a domain on the libvirtd, once, with their UUID,
    running; the pool holds exactly their volumes."""
    insts = alloc['instances']
    doms = lab.domains()
    uuids = lab.domain_uuids()
    c.eq(sorted(doms), sorted(i['name'] for i in insts),
         f'{what}: the domains on the libvirtd are the instances\', none missing, none more')
    c.eq(len(uuids), len(doms), f'{what}: one UUID per domain (no duplicate)')
    c.eq({u: n for u, n in uuids.items()}, {i['uuid']: i['name'] for i in insts},
         f'{what}: each domain carries its instance\'s UUID')
    c.eq(set(doms.values()), {'running'}, f'{what}: every domain runs')
    c.eq(set(lab.volumes()) - BASE_VOLUMES, {i['volume'] for i in insts},
         f'{what}: the pool holds exactly the instances\' volumes')


def main():
    c = cbtest.Checks('two-brokers-qemu')
    if not cbpg.pg_url():
        print('two-brokers-qemu: skipped: CB_TEST_PG_URL names no PostgreSQL server (see'
              ' tools/pg-cluster.sh; tools/setup.sh test starts one)')
        sys.exit(77)
    t_start = time.time()
    work = tempfile.mkdtemp(prefix='cbtest-two-qemu-')
    cfg = os.path.join(work, 'config.json')
    with open(cfg, 'w') as f:
        json.dump({'job_lease_seconds': LEASE}, f)
    brokers = {}
    every = []  # every Broker made, for the cleanup
    lab = db = None
    first = 'node-b'
    try:
        # The reconciler looks every 2 s (cbvirt's lab), the rollup every 10 s (its least).
        lab = cbvirt.PrivateLab()
        with open(os.path.join(lab.policy_dir, 'metering.json')) as f:
            metering = json.load(f)
        metering['rollup_interval_seconds'] = 10
        with open(os.path.join(lab.policy_dir, 'metering.json'), 'w') as f:
            json.dump(metering, f, indent=2)
        with cbpg.fresh_database('twoqemu') as url:
            def broker(node):
                """A broker with its state folder under work/; every broker but the first gets
                the first one's audit key (the operator guide's step), and its admin token
                (for cbtest's helpers: one admin account serves on every broker)."""
                state = os.path.join(work, node)
                os.makedirs(state, mode=0o700, exist_ok=True)
                for name in ('audit.key', 'admin.token'):
                    if node != first and not os.path.exists(os.path.join(state, name)):
                        shutil.copy2(os.path.join(work, first, name), os.path.join(state, name))
                every.append(cbtest.Broker(state_dir=state, policy_dir=lab.policy_dir,
                                           pass_backend=False,
                                           extra_args=['--database', url, '--node', node,
                                                       '--config', cfg]))
                return every[-1]

            b = brokers['node-b'] = broker('node-b').start()
            admin = b.admin_token
            cbtest.wait_for(lambda: all(v == ['node-b'] for v in
                                        cbpg.leaders(brokers, admin, ELECTED).values()),
                            10, 'node-b to hold every loop')
            a = brokers['node-a'] = broker('node-a').start()
            db = cbpg.Psql(url)

            # ---- the world: accounts and the lab's libvirtd as trial and production host ----
            w = cbvirt.Workflow(a, lab)
            cbtest.wait_for(lambda: all(
                h['connection']['state'] == 'connected' and h['capacity']['known']
                for h in b.get('/v1/hosts', token=w.vendor).json()['items']), 30,
                'node-b to connect to the hosts too')

            # ---- before: one holder of each loop, and only it runs their passes ----
            time.sleep(2.5)  # a reconciler pass or two, an election or two of node-a
            c.eq(cbpg.leaders(brokers, admin, ELECTED), {lp: ['node-b'] for lp in ELECTED},
                 'before the kill node-b alone holds every loop (/metrics)')
            c.eq(lock_holders(db), {lp: ['node-b'] for lp in ELECTED},
                 'before the kill node-b alone holds every loop\'s advisory lock (pg_locks)')
            c.eq([passes(a, admin, lp) for lp in ELECTED], [0] * len(ELECTED),
                 'node-a ran no pass of an elected loop')
            c.ok(passes(b, admin, 'reconciler') >= 1 and passes(b, admin, 'rollup') >= 1,
                 'node-b runs the reconciler and the rollup')

            # ---- a department applies through node-a, the reviewer approves on node-b ----
            rid = w.submit_new([w.spec()] * INSTANCES, 'two brokers on QEMU')
            r = b.post(f'/v1/requests/{rid}/decision', {'decision': 'approve'},
                       token=w.reviewer)
            if not c.ok(r.status == 200, f'the approval through node-b: {r}'):
                raise RuntimeError('no approval')
            job = cbvirt.job_of(r.json(), 'provision')

            # ---- the job's broker is killed between two of its steps ----
            victim, at_kill, held, killed_at = kill_between_steps(url, db, brokers, job)
            survivor = 'node-b' if victim == 'node-a' else 'node-a'
            sv = brokers[survivor]
            held_loops = victim == first
            del brokers[victim]
            done_at_kill = {s[0] for s in at_kill if s[2] == 'done'}
            print(f'two-brokers-qemu: {victim} (the job\'s lease_owner) killed after'
                  f' {len(done_at_kill)} of {len(at_kill)} steps, waiting to begin step {held};'
                  f' it {"held" if held_loops else "did not hold"} the loops', flush=True)
            c.eq([(s[1], s[2], s[3]) for s in at_kill],
                 [(s[1], 'done', '1') if int(s[0]) < held else (s[1], 'pending', '0')
                  for s in at_kill],
                 f'at the kill the steps before {held} are done (once), the others not begun')

            # The loops: the survivor holds each within a few seconds when the victim held them
            # (PostgreSQL ends the victim's session and its locks with it), else it kept them.
            cbtest.wait_for(lambda: all(v == [survivor] for v in
                                        cbpg.leaders(brokers, admin, ELECTED).values()),
                            10, f'{survivor} to hold every loop')
            moved = time.time() - killed_at
            if held_loops:
                c.ok(moved < 4, f'the loops moved to {survivor} within {moved:.1f} s of the kill')

            end = cbtest.wait_job(sv, w.vendor, job, timeout=60)
            took = time.time() - killed_at
            c.eq((end['state'], end.get('error')), ('done', None), f'the job ended done on'
                 f' {survivor}')
            c.ok(LEASE - 1 <= took < LEASE + 30, f'it was taken over after the lease'
                 f' ({LEASE} s): ended {took:.1f} s after the kill')

            # ---- no step ran twice: the job's step records ----
            steps = db.rows(STEPS_SQL.format(job))
            c.eq(len(steps), 2 + 3 * INSTANCES, 'reserve, three steps per instance, finish')
            c.eq({s[2] for s in steps}, {'done'}, 'every step done')
            c.eq([s for s in steps if s[3] != '1'], [], 'every step ran once (attempts 1)')
            c.eq({s[4] for s in steps if s[0] in done_at_kill}, {victim},
                 f'the steps done before the kill ran on {victim}')
            c.eq({s[4] for s in steps if s[0] not in done_at_kill}, {survivor},
                 f'the steps after the kill ran on {survivor}')

            # ---- ... and the audit trail ----
            trail = db.rows(f"SELECT action, coalesce(detail, ''), at FROM audit WHERE"
                            f" object_type = 'job' AND object_id = {job} ORDER BY seq")
            c.eq([t[0] for t in trail], ['job.create', 'job.takeover', 'job.done'],
                 'the job\'s audit trail: created, taken over once, done once')
            takeovers = [json.loads(t[1]) for t in trail if t[0] == 'job.takeover']
            c.eq(takeovers, [{'from': victim, 'to': survivor}],
                 'the takeover is from the victim to the survivor')
            for t in trail:
                if t[0] == 'job.takeover':
                    at = datetime.datetime.fromisoformat(t[2]).timestamp() - killed_at
                    c.ok(LEASE - 1 <= at < LEASE + 5, f'the job was taken over {at:.1f} s'
                         f' after the kill (lease {LEASE} s)')
                    print(f'two-brokers-qemu: the loops moved {moved:.1f} s, the job was taken'
                          f' over {at:.1f} s and ended {took:.1f} s after the kill', flush=True)
            req = sv.get(f'/v1/requests/{rid}', token=w.reviewer).json()
            c.eq(req['state'], 'in_trial', 'the request is in trial')
            aid = req['trial']['allocation_id']
            for kind, oid in (('allocation', aid), ('request', rid)):
                rows = db.rows(f"SELECT action, outcome FROM audit WHERE object_type = '{kind}'"
                               f" AND object_id = {oid} AND action NOT LIKE 'material.%'"
                               f" ORDER BY seq")
                c.eq(len(rows), len({tuple(x) for x in rows}),
                     f'no {kind} transition recorded twice: {rows}')
            hist = db.rows(f"SELECT instance_id, string_agg(state, ',' ORDER BY id) FROM"
                           f" instance_history WHERE instance_id IN (SELECT id FROM instances"
                           f" WHERE allocation_id = {aid}) GROUP BY instance_id")
            c.eq(len(hist), INSTANCES, 'every instance has its history')
            c.eq([h for h in hist if len(set(h[1].split(','))) != len(h[1].split(','))
                  or not h[1].endswith('running')], [],
                 f'no instance state recorded twice, each ends running: {[h[1] for h in hist]}')
            r = sv.get('/v1/audit/verify', token=w.auditor)
            c.ok(r.status == 200 and r.json().get('ok') is True,
                 f'the audit chain verifies after the takeover: {r}')

            # ---- the hypervisor: exactly the right domains ----
            alloc = sv.get(f'/v1/allocations/{aid}', token=w.reviewer).json()
            c.eq((alloc['state'], [i['state'] for i in alloc['instances']]),
                 ('active', ['running'] * INSTANCES), 'the trial allocation active, all running')
            domains_match(c, lab, alloc, 'after the takeover')

            # ---- after: the survivor holds the loops and runs them ----
            c.eq(cbpg.leaders(brokers, admin, ELECTED), {lp: [survivor] for lp in ELECTED},
                 f'after the kill {survivor} alone holds every loop (/metrics)')
            c.eq(lock_holders(db), {lp: [survivor] for lp in ELECTED},
                 f'after the kill {survivor} alone holds every advisory lock (pg_locks)')
            before = {lp: passes(sv, admin, lp) for lp in ('reconciler', 'rollup')}
            cbtest.wait_for(lambda: passes(sv, admin, 'reconciler') > before['reconciler'], 10,
                            f'{survivor} to run reconciler passes')
            rollups = passes(sv, admin, 'rollup')
            c.ok(rollups >= 1, f'{survivor} ran {rollups:.0f} rollup passes')

            # ---- the victim back under its name: the loops stay where they are ----
            back = brokers[victim] = broker(victim).start()
            time.sleep(3)  # three elections of the restarted broker, a reconciler pass
            c.eq(cbpg.leaders(brokers, admin, ELECTED), {lp: [survivor] for lp in ELECTED},
                 f'with {victim} back, {survivor} alone holds every loop (/metrics)')
            c.eq(lock_holders(db), {lp: [survivor] for lp in ELECTED},
                 f'with {victim} back, {survivor} alone holds every advisory lock')
            c.eq([passes(back, admin, lp) for lp in ELECTED], [0] * len(ELECTED),
                 f'{victim}, restarted, runs no pass of an elected loop')

            ev = sv.get('/v1/events?limit=1000', token=w.auditor).json()['items']
            c.eq([(e['kind'], e['domain_name']) for e in ev], [],
                 'the reconciler found nothing amiss')
            domains_match(c, lab, alloc, 'at the end')
            db.close()
            db = None
            for node, br in brokers.items():
                c.eq(br.stop(), 0, f'{node} stops cleanly on SIGTERM')
    except Exception:
        traceback.print_exc()
        c.ok(False, 'the test ran to its end')
        for br in every:
            try:
                with open(br.log_path, errors='replace') as f:
                    print(f'--- {br.extra_args[3]} log (tail) ---\n' +
                          ''.join(f.readlines()[-40:]))
            except OSError:
                pass
    finally:
        if db:
            db.close()
        for br in every:
            if br.proc and br.proc.poll() is None:
                os.kill(br.proc.pid, signal.SIGCONT)  # in case it was left stopped
            br.cleanup()
        if lab:
            lab.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f'two-brokers-qemu: {time.time() - t_start:.1f} s', flush=True)
    c.done()


if __name__ == '__main__':
    main()
