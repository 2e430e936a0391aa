#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Two brokers on one PostgreSQL database and real QEMU guests (issue 11, "Must show").

Two real cloudbrokerd processes (node-a, node-b) on a fresh database of CB_TEST_PG_URL's cluster
(exit 77, skipped, without it), with a job lease of 3 s, and one libvirtd of the test's own
(cbvirt.PrivateLab: unprivileged, software emulation, 1 MiB boot-sector guests of 64 MiB) that
both brokers connect to. node-b starts first and so holds the elected loops.

Two rounds. In each, a department applies through node-a (four instances) and the reviewer
approves through node-b. The trial allocation's provision job (reserve, then create_volume,
define and start per instance, then finish) is claimed by one broker: the one named in the
job's lease_owner. That broker is killed with kill -9 in the middle of the job, between two
steps: the test locks the row of the second instance's first step in job_steps (SELECT ... FOR
UPDATE) while it is still pending, so the broker, done with the first instance, waits in the
transaction that would mark it running; when pg_stat_activity shows it waiting, the test reads
the job's lease_owner, kills that broker and lets the row go. PostgreSQL rolls the dead
broker's transaction back: the job stands with the first instance's steps done and no step
running. The other broker takes the job over once the lease ended and finishes it; the victim
is then started again under its name. Mostly node-b claims the job it approved: in round 1
it holds the loops, so job and loops move together; in round 2 it does not, and the loops'
holder watches (its reconciler) a job of the other broker, then takes it over. The checks hold
whichever way the claims fall (in one run of six node-a claimed round 1's job).

Checks of each round: the job ends done through the survivor, after the lease; in job_steps
every step is done and ran once (attempts 1), those done at the kill on the victim, the others
on the survivor; the audit trail has the job's create, one takeover (victim to survivor) and
one done, no allocation or request transition twice, and still verifies; instance_history
records no state of an instance twice; on the libvirtd exactly the allocations' domains exist,
one per instance, with its UUID, running, and the pool holds exactly their volumes. The
elected loops (reconciler, rollup, assessment, sweeper): before the kill exactly one broker
holds each, by its /metrics and by the advisory locks in pg_locks, and only it runs their
passes; after the kill the survivor holds each (within 4 s when the victim held them) and runs
their passes; the victim restarted under its name runs none of them while the survivor lives.
At the end: the reconciler recorded no event. About 60 s (also with the sanitizers).
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


def domains_match(c, lab, allocs, what):
    """Exactly the instances of @allocs have a domain on the libvirtd, once, with their UUID,
    running; the pool holds exactly their volumes."""
    insts = [i for a in allocs for i in a['instances']]
    doms = lab.domains()
    uuids = lab.domain_uuids()
    c.eq(sorted(doms), sorted(i['name'] for i in insts),
         f'{what}: the domains on the libvirtd are the instances\', none missing, none more')
    c.eq(len(uuids), len(doms), f'{what}: one UUID per domain (no duplicate)')
    c.eq(uuids, {i['uuid']: i['name'] for i in insts},
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

            time.sleep(2.5)  # a reconciler pass or two, an election or two of node-a
            allocs = []  # the allocations made so far, by id

            def kill_round(n):
                """A request applied through node-a and approved on node-b; its job's broker
                killed between two steps and the job finished by the other; the checks."""
                what = f'round {n}'
                holder = cbpg.leaders(brokers, admin, ELECTED)['reconciler']
                holder = holder[0] if len(holder) == 1 else None
                other = 'node-a' if holder == 'node-b' else 'node-b'
                # ---- before: one holder of each loop, and only it runs their passes ----
                c.eq(cbpg.leaders(brokers, admin, ELECTED), {lp: [holder] for lp in ELECTED},
                     f'{what}: before the kill {holder} alone holds every loop (/metrics)')
                c.eq(lock_holders(db), {lp: [holder] for lp in ELECTED},
                     f'{what}: before the kill {holder} alone holds every loop\'s advisory'
                     f' lock (pg_locks)')
                c.eq([passes(brokers[other], admin, lp) for lp in ELECTED], [0] * len(ELECTED),
                     f'{what}: {other} ran no pass of an elected loop')
                c.ok(passes(brokers[holder], admin, 'reconciler') >= 1 and
                     passes(brokers[holder], admin, 'rollup') >= 1,
                     f'{what}: {holder} runs the reconciler and the rollup')

                # ---- a department applies through node-a, the reviewer approves on node-b ----
                w.b = brokers['node-a']
                rid = w.submit_new([w.spec()] * INSTANCES, f'two brokers on QEMU, {what}')
                r = brokers['node-b'].post(f'/v1/requests/{rid}/decision',
                                           {'decision': 'approve'}, token=w.reviewer)
                if not c.ok(r.status == 200, f'{what}: the approval through node-b: {r}'):
                    raise RuntimeError('no approval')
                job = cbvirt.job_of(r.json(), 'provision')

                # ---- the job's broker is killed between two of its steps ----
                taken = {node: cbpg.metrics(br, admin)['cloudbroker_jobs_taken_over_total']
                         for node, br in brokers.items()}
                victim, at_kill, held, killed_at = kill_between_steps(url, db, brokers, job)
                survivor = 'node-b' if victim == 'node-a' else 'node-a'
                sv = brokers[survivor]
                del brokers[victim]
                done_at_kill = {s[0] for s in at_kill if s[2] == 'done'}
                print(f'two-brokers-qemu: {what}: {victim} (the job\'s lease_owner) killed'
                      f' after {len(done_at_kill)} of {len(at_kill)} steps, waiting to begin'
                      f' step {held}; the loops were {holder}\'s', flush=True)
                c.eq([(s[1], s[2], s[3]) for s in at_kill],
                     [(s[1], 'done', '1') if int(s[0]) < held else (s[1], 'pending', '0')
                      for s in at_kill],
                     f'{what}: at the kill the steps before {held} are done (once), the others'
                     f' not begun')

                # The loops: the survivor holds each within a second or so when the victim
                # held them (PostgreSQL ends the victim's session and its locks), else it kept
                # them.
                cbtest.wait_for(lambda: all(v == [survivor] for v in
                                            cbpg.leaders(brokers, admin, ELECTED).values()),
                                10, f'{survivor} to hold every loop')
                moved = time.time() - killed_at
                if victim == holder:
                    c.ok(moved < 4, f'{what}: the loops moved to {survivor} within {moved:.1f} s'
                         f' of the kill')

                end = cbtest.wait_job(sv, w.vendor, job, timeout=60)
                took = time.time() - killed_at
                c.eq((end['state'], end.get('error')), ('done', None),
                     f'{what}: the job ended done on {survivor}')
                c.ok(LEASE - 1 <= took < LEASE + 30, f'{what}: it was taken over after the'
                     f' lease ({LEASE} s): ended {took:.1f} s after the kill')

                # ---- no step ran twice: the job's step records ----
                steps = db.rows(STEPS_SQL.format(job))
                c.eq(len(steps), 2 + 3 * INSTANCES,
                     f'{what}: reserve, three steps per instance, finish')
                c.eq({s[2] for s in steps}, {'done'}, f'{what}: every step done')
                c.eq([s for s in steps if s[3] != '1'], [],
                     f'{what}: every step ran once (attempts 1)')
                c.eq({s[4] for s in steps if s[0] in done_at_kill}, {victim},
                     f'{what}: the steps done before the kill ran on {victim}')
                c.eq({s[4] for s in steps if s[0] not in done_at_kill}, {survivor},
                     f'{what}: the steps after the kill ran on {survivor}')

                # ---- ... and the audit trail ----
                trail = db.rows(f"SELECT action, coalesce(detail, ''), at FROM audit WHERE"
                                f" object_type = 'job' AND object_id = {job} ORDER BY seq")
                c.eq([t[0] for t in trail], ['job.create', 'job.takeover', 'job.done'],
                     f'{what}: the job\'s audit trail: created, taken over once, done once')
                takeovers = [json.loads(t[1]) for t in trail if t[0] == 'job.takeover']
                c.eq(takeovers, [{'from': victim, 'to': survivor}],
                     f'{what}: the takeover is from the victim to the survivor')
                for t in trail:
                    if t[0] == 'job.takeover':
                        at = datetime.datetime.fromisoformat(t[2]).timestamp() - killed_at
                        c.ok(LEASE - 1 <= at < LEASE + 5, f'{what}: the job was taken over'
                             f' {at:.1f} s after the kill (lease {LEASE} s)')
                        print(f'two-brokers-qemu: {what}: the loops '
                              f'{"moved" if victim == holder else "stayed"} ({moved:.1f} s),'
                              f' the job was taken over {at:.1f} s and ended {took:.1f} s'
                              f' after the kill', flush=True)
                c.eq(cbpg.metrics(sv, admin)['cloudbroker_jobs_taken_over_total'],
                     taken[survivor] + 1, f'{what}: {survivor} counts one takeover more')
                c.eq(db.rows(f"SELECT count(*) FROM host_claims WHERE job_id = {job}"), [['0']],
                     f'{what}: the job holds no host any more')
                req = sv.get(f'/v1/requests/{rid}', token=w.reviewer).json()
                c.eq(req['state'], 'in_trial', f'{what}: the request is in trial')
                aid = req['trial']['allocation_id']
                for kind, oid in (('allocation', aid), ('request', rid)):
                    rows = db.rows(f"SELECT action, outcome FROM audit WHERE object_type ="
                                   f" '{kind}' AND object_id = {oid} AND action NOT LIKE"
                                   f" 'material.%' ORDER BY seq")
                    c.eq(len(rows), len({tuple(x) for x in rows}),
                         f'{what}: no {kind} transition recorded twice: {rows}')
                hist = db.rows(f"SELECT instance_id, string_agg(state, ',' ORDER BY id) FROM"
                               f" instance_history WHERE instance_id IN (SELECT id FROM"
                               f" instances WHERE allocation_id = {aid}) GROUP BY instance_id")
                c.eq(len(hist), INSTANCES, f'{what}: every instance has its history')
                c.eq([h for h in hist if len(set(h[1].split(','))) != len(h[1].split(','))
                      or not h[1].endswith('running')], [],
                     f'{what}: no instance state recorded twice, each ends running:'
                     f' {[h[1] for h in hist]}')
                r = sv.get('/v1/audit/verify', token=w.auditor)
                c.ok(r.status == 200 and r.json().get('ok') is True,
                     f'{what}: the audit chain verifies after the takeover: {r}')

                # ---- the hypervisor: exactly the right domains ----
                alloc = sv.get(f'/v1/allocations/{aid}', token=w.reviewer).json()
                c.eq((alloc['state'], [i['state'] for i in alloc['instances']]),
                     ('active', ['running'] * INSTANCES),
                     f'{what}: the trial allocation active, all running')
                allocs.append(aid)
                domains_match(c, lab, [sv.get(f'/v1/allocations/{x}', token=w.reviewer).json()
                                       for x in allocs], f'{what}: after the takeover')

                # ---- after: the survivor holds the loops and runs them ----
                c.eq(cbpg.leaders(brokers, admin, ELECTED), {lp: [survivor] for lp in ELECTED},
                     f'{what}: after the kill {survivor} alone holds every loop (/metrics)')
                c.eq(lock_holders(db), {lp: [survivor] for lp in ELECTED},
                     f'{what}: after the kill {survivor} alone holds every advisory lock')
                before = passes(sv, admin, 'reconciler')
                cbtest.wait_for(lambda: passes(sv, admin, 'reconciler') > before, 10,
                                f'{survivor} to run reconciler passes')
                rollups = passes(sv, admin, 'rollup')
                c.ok(rollups >= 1, f'{what}: {survivor} ran {rollups:.0f} rollup passes')

                # ---- the victim back under its name: the loops stay where they are ----
                back = brokers[victim] = broker(victim).start()
                time.sleep(3)  # three elections of the restarted broker, a reconciler pass
                c.eq(cbpg.leaders(brokers, admin, ELECTED), {lp: [survivor] for lp in ELECTED},
                     f'{what}: with {victim} back, {survivor} alone holds every loop')
                c.eq(lock_holders(db), {lp: [survivor] for lp in ELECTED},
                     f'{what}: with {victim} back, {survivor} alone holds every advisory lock')
                c.eq([passes(back, admin, lp) for lp in ELECTED], [0] * len(ELECTED),
                     f'{what}: {victim}, restarted, runs no pass of an elected loop')
                cbtest.wait_for(lambda: all(
                    h['connection']['state'] == 'connected' and h['capacity']['known']
                    for h in back.get('/v1/hosts', token=w.vendor).json()['items']), 30,
                    f'{victim} to connect to the hosts again')
                return victim, holder

            # Round 1: node-b, which holds the loops, approves; round 2: node-b approves again,
            # now without the loops. The job's broker is whichever claims it (its lease_owner).
            cases = [kill_round(1), kill_round(2)]
            print(f'two-brokers-qemu: (victim, loops\' holder) by round: {cases}', flush=True)
            sv = brokers['node-a']
            ev = sv.get('/v1/events?limit=1000', token=w.auditor).json()['items']
            c.eq([(e['kind'], e['domain_name']) for e in ev], [],
                 'the reconciler found nothing amiss')
            domains_match(c, lab, [sv.get(f'/v1/allocations/{x}', token=w.reviewer).json()
                                   for x in allocs], 'at the end')
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
