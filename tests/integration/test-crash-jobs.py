#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""kill -9 of the broker at every step of the hypervisor jobs, and of libvirtd in the middle of
one: every job resumes and ends done, with no orphan domain, no duplicate, and volumes that match
the instances' states.

The libvirtd is the test's own (cbvirt.PrivateLab: unprivileged, in a temporary folder), so the
test may freeze (SIGSTOP), kill and restart it by the process id it started.

Fixtures: six one-instance requests and one two-instance request, all through their trials.
  allocate:  for each step k of the production provision job (reserve, create_volume, define,
             start, finish) one request is allocated and the broker is SIGKILLed as soon as step
             k is seen running (or done), polling job_steps read-only; then restarted on the same
             state folder. One more allocation is killed with libvirtd frozen, so the broker dies
             with a libvirt call in flight that libvirtd completes afterwards.
  reclaim:   the same for each step of the termination's reclaim job (shutdown, undefine,
             finish), the other allocations terminated without a kill;
  purge:     the same for each step of the purge job (shutdown, undefine, wipe, delete_volume,
             finish);
  libvirtd:  the two-instance request is allocated, and later terminated, with libvirtd frozen;
             libvirtd is then SIGKILLed with the job's call in flight, the host shows
             disconnected, libvirtd is started again after a while: the job retries, the host
             reconnects, the job ends done.
After every job: the job is done with every step done; the request and allocation reached their
states; every domain on the daemon belongs to an instance (by UUID) that should have one, once;
every instance that should have a domain has it, in the right power state; the pool holds the
volumes of the instances that are not deleted and nothing else. At the end: no job in error, no
reconciler event, the audit trail verifies.
"""
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
import cbvirt  # noqa: E402

BASE_VOLUMES = {'halt.raw', 'spin.raw'}
HAS_DOMAIN = {'defined': None, 'running': 'running', 'shutoff': 'shut off'}
HAS_VOLUME = {'created', 'defined', 'running', 'shutoff', 'undefined'}


def steps_of(b, job_id):
    con = cbtest.db_connect(b.db_path)
    try:
        return con.execute('SELECT seq, action, state FROM job_steps WHERE job_id = ?'
                           ' ORDER BY seq', (job_id,)).fetchall()
    finally:
        con.close()


def kill_at(b, job_id, k, timeout=60):
    """SIGKILLs the broker as soon as step @k of job @job_id is seen running or done (polling
    the database read-only). Returns: where the job was: (steps done, the step running)."""
    con = cbtest.db_connect(b.db_path)
    try:
        deadline = time.time() + timeout
        while True:
            rows = con.execute('SELECT state FROM job_steps WHERE job_id = ? ORDER BY seq',
                               (job_id,)).fetchall()
            if len(rows) > k and rows[k][0] in ('running', 'done'):
                b.proc.kill()
                break
            if time.time() > deadline:
                raise RuntimeError(f'job {job_id} never reached step {k}: {rows}')
            time.sleep(0.0005)
    finally:
        con.close()
    b.kill9()
    rows = steps_of(b, job_id)
    done = 0
    while done < len(rows) and rows[done][2] == 'done':
        done += 1
    running = [a for _, a, s in rows if s == 'running']
    return done, (running[0] if running else None), [a for _, a, _ in rows]


def restart(b):
    b.start()


def consistent(c, w, lab, what):
    """The hypervisor and the database agree: no orphan, no duplicate, volumes as the states
    say."""
    insts = w.instances()
    by_uuid = {i['uuid']: (a, i) for a, i in insts}
    doms = lab.domains()
    uuids = lab.domain_uuids()
    vols = set(lab.volumes())
    bad = []
    for u, name in uuids.items():
        if u not in by_uuid:
            bad.append(f'orphan domain {name} ({u})')
            continue
        a, i = by_uuid[u]
        if i['state'] not in HAS_DOMAIN:
            bad.append(f'domain {name} for instance {i["id"]} in state {i["state"]}')
        if name != i['name']:
            bad.append(f'domain {name} carries instance {i["id"]}\'s UUID ({i["name"]})')
    c.ok(not bad, f'{what}: no orphan domain: {bad}')
    c.eq(len(uuids), len(doms), f'{what}: one UUID per domain')
    bad = []
    for a, i in insts:
        n = sum(1 for name in doms if name == i['name'])
        want = HAS_DOMAIN.get(i['state'], 'absent')
        if i['state'] in HAS_DOMAIN:
            if n != 1 or i['uuid'] not in uuids:
                bad.append(f'{i["name"]} ({i["state"]}): {n} domains')
            elif want and doms[i['name']] != want:
                bad.append(f'{i["name"]} is {i["state"]} but the domain is {doms[i["name"]]}')
        elif i['uuid'] in uuids:
            bad.append(f'{i["name"]} is {i["state"]} but its domain exists')
        if i['state'] in HAS_VOLUME and i['volume'] not in vols:
            bad.append(f'{i["name"]} is {i["state"]} but volume {i["volume"]} is missing')
        if i['state'] == 'deleted' and i['volume'] in vols:
            bad.append(f'{i["name"]} is deleted but volume {i["volume"]} is still there')
        if i['state'] in ('pending', 'placed'):
            bad.append(f'{i["name"]} still {i["state"]} after its job')
    c.ok(not bad, f'{what}: every instance has what its state says, once: {bad}')
    live = {i['volume'] for _, i in insts if i['state'] != 'deleted'}
    stray = vols - live - BASE_VOLUMES
    c.ok(not stray, f'{what}: no stray volume: {sorted(stray)}')


def check_job(c, w, jid, what, timeout=120):
    job = w.wait_job(jid, timeout)
    c.eq(job['state'], 'done', f'{what}: job {jid} ends done (error: {job["error"]})')
    c.ok(all(s['state'] == 'done' for s in job['steps']),
         f'{what}: every step done: {[(s["action"], s["state"]) for s in job["steps"]]}')
    return job


def through_trials(w, rids):
    """Approves every request, passes every trial, waits for the trials' reclaims."""
    for rid in rids:
        w.approve(rid)
    trials = []
    for rid in rids:
        doc = w.wait_request(rid, 'in_trial', 120)
        w.pass_trial(rid)
        trials.append(doc['trial']['allocation_id'])
    for taid in trials:
        w.wait_allocation(taid, 'purged', 120)


def main():
    c = cbtest.Checks('crash-jobs')
    lab = b = None
    t0 = time.time()
    coverage = []
    try:
        lab = cbvirt.PrivateLab()
        b = cbtest.Broker(policy_dir=lab.policy_dir).start()
        w = cbvirt.Workflow(b, lab)
        alloc_steps = ['reserve', 'create_volume', 'define', 'start', 'finish']
        reqs = [w.submit_new([w.spec()], f'crash at allocate step {k}')
                for k in range(len(alloc_steps) + 1)]
        rl = w.submit_new([w.spec(), w.spec()], 'libvirtd crash during allocate')
        rl2 = w.submit_new([w.spec()], 'libvirtd crash during reclaim')
        through_trials(w, reqs + [rl, rl2])
        w.allocate(rl2)
        aid2 = w.wait_request(rl2, 'allocated', 60)['allocation_id']
        print(f'fixtures: {time.time() - t0:.1f}s', flush=True)
        consistent(c, w, lab, 'after the trials')

        # ---- allocate: kill at every step ----
        aids = []
        for k, step in enumerate(alloc_steps):
            rid = reqs[k]
            doc = w.allocate(rid)
            jid = cbvirt.job_of(doc, 'provision')
            done, running, actions = kill_at(b, jid, k)
            c.eq(actions, alloc_steps, f'allocate job {jid} steps')
            coverage.append(('allocate', step, done, running))
            restart(b)
            what = f'allocate killed at {step} ({done} done, {running} running)'
            check_job(c, w, jid, what)
            doc = w.wait_request(rid, 'allocated', 30)
            a = w.allocation(doc['allocation_id'])
            c.eq(a['state'], 'active', f'{what}: allocation active')
            aids.append(a['id'])
            consistent(c, w, lab, what)

        # a libvirt call in flight when the broker dies, completed by libvirtd afterwards
        rid = reqs[len(alloc_steps)]
        lab.libvirt.freeze()
        try:
            doc = w.allocate(rid)
            jid = cbvirt.job_of(doc, 'provision')
            cbvirt.wait_for(lambda: steps_of(b, jid)[1][2] == 'running', 20,
                            'create_volume to start')
            time.sleep(0.3)
            b.kill9()
        finally:
            lab.libvirt.thaw()
        coverage.append(('allocate', 'create_volume (libvirt call in flight)', 1,
                         'create_volume'))
        time.sleep(0.5)
        restart(b)
        what = 'allocate killed with create_volume in flight'
        check_job(c, w, jid, what)
        doc = w.wait_request(rid, 'allocated', 30)
        aids.append(doc['allocation_id'])
        consistent(c, w, lab, what)
        print(f'allocate kills: {time.time() - t0:.1f}s', flush=True)

        # ---- reclaim: kill at every step ----
        reclaim_steps = ['shutdown', 'undefine', 'finish']
        for n, aid in enumerate(aids):
            trid = w.submit_termination(aid)
            doc = w.approve(trid)
            jid = cbvirt.job_of(doc, 'reclaim')
            if n < len(reclaim_steps):
                k = n
                done, running, actions = kill_at(b, jid, k)
                c.eq(actions, reclaim_steps, f'reclaim job {jid} steps')
                coverage.append(('reclaim', reclaim_steps[k], done, running))
                restart(b)
                what = f'reclaim killed at {reclaim_steps[k]} ({done} done, {running} running)'
            else:
                what = f'reclaim of allocation {aid} (no kill)'
            check_job(c, w, jid, what)
            w.wait_request(trid, 'reclaimed', 30)
            a = w.allocation(aid)
            c.eq(a['state'], 'retained', f'{what}: allocation retained')
            c.ok(all(i['state'] == 'undefined' for i in a['instances']),
                 f'{what}: instances undefined')
            consistent(c, w, lab, what)
        print(f'reclaim kills: {time.time() - t0:.1f}s', flush=True)

        # ---- purge: kill at every step ----
        purge_steps = ['shutdown', 'undefine', 'wipe', 'delete_volume', 'finish']
        for n, aid in enumerate(aids):
            r = b.post(f'/v1/allocations/{aid}/purge', token=w.reviewer)
            c.eq(r.status, 202, f'purge of allocation {aid} accepted')
            jid = r.json()['job_id']
            k = n % len(purge_steps)
            done, running, actions = kill_at(b, jid, k)
            c.eq(actions, purge_steps, f'purge job {jid} steps')
            coverage.append(('purge', purge_steps[k], done, running))
            restart(b)
            what = f'purge killed at {purge_steps[k]} ({done} done, {running} running)'
            check_job(c, w, jid, what)
            a = w.wait_allocation(aid, 'purged', 30)
            c.ok(all(i['state'] == 'deleted' for i in a['instances']),
                 f'{what}: instances deleted')
            consistent(c, w, lab, what)
        print(f'purge kills: {time.time() - t0:.1f}s', flush=True)

        # ---- libvirtd killed mid-job ----
        prod = w.hosts['production']

        def host():
            r = b.get(f'/v1/hosts/{prod}', token=w.vendor, timeout=5)
            return r.json()

        def libvirtd_crash(start_job, what):
            connects = host()['connection']['connects']
            lab.libvirt.freeze()
            try:
                t = time.time()
                jid = start_job()
                c.ok(time.time() - t < 3, f'{what}: the API answers with libvirtd frozen')
                # The first step that calls libvirt hangs: libvirtd does not answer.
                job = cbvirt.wait_for(
                    lambda: (lambda j: j if any(s['state'] == 'running' and s['action'] not in
                                                ('reserve', 'finish') for s in j['steps'])
                             else None)(w.job(jid)), 20, 'a libvirt step to run')
                time.sleep(0.5)
                job = w.job(jid)
                step = [s for s in job['steps'] if s['state'] == 'running'][0]
                t = time.time()
                h = host()
                c.ok(time.time() - t < 2, f'{what}: GET /v1/hosts/{{id}} does not block')
                job = w.job(jid)
                c.eq(job['state'], 'running', f'{what}: job running, stuck in {step["action"]}')
                lab.libvirt.kill9()
            finally:
                lab.libvirt.thaw()
            h = cbvirt.wait_for(lambda: (lambda h: h if h['connection']['state'] ==
                                         'disconnected' else None)(host()), 20,
                                'the host to show disconnected')
            c.ok(True, f'{what}: host shows disconnected ({h["connection"]["error"]})')
            time.sleep(2)
            job = w.job(jid)
            c.ok(job['state'] in ('queued', 'running'),
                 f'{what}: while libvirtd is down the job waits ({job["state"]}, '
                 f'{job["error"]})')
            lab.libvirt.start()
            h = cbvirt.wait_for(lambda: (lambda h: h if h['connection']['state'] ==
                                         'connected' else None)(host()), 60,
                                'the host to reconnect')
            c.ok(h['connection']['connects'] > connects,
                 f'{what}: host reconnected ({connects} -> {h["connection"]["connects"]})')
            job = check_job(c, w, jid, what, timeout=120)
            again = [s for s in job['steps'] if s['seq'] == step['seq']][0]
            c.ok(again['attempts'] >= 2, f'{what}: step {step["action"]} retried '
                 f'({again["attempts"]} attempts)')
            coverage.append(('libvirtd', step['action'], step['seq'], step['action']))
            return jid

        def alloc_rl():
            return cbvirt.job_of(w.allocate(rl), 'provision')
        jid = libvirtd_crash(alloc_rl, 'libvirtd killed during allocate')
        doc = w.request(rl)
        aid = doc['allocation_id']
        if w.job(jid)['state'] == 'done':
            doc = w.wait_request(rl, 'allocated', 30)
            a = w.allocation(aid)
            c.eq([i['state'] for i in a['instances']], ['running', 'running'],
                 'after the libvirtd crash both instances run')
            c.eq([lab.domains().get(i['name']) for i in a['instances']],
                 ['running', 'running'], 'and virsh agrees')
        else:
            print(f'NOTE: request {rl} is {doc["state"]}, allocation {aid} '
                  f'{w.allocation(aid)["state"]}: purging it to go on', flush=True)
            r = b.post(f'/v1/allocations/{aid}/purge', token=w.reviewer)
            if r.status == 202:
                w.wait_job(r.json()['job_id'], 60)
        consistent(c, w, lab, 'allocate through a libvirtd crash')

        trid = w.submit_termination(aid2)
        libvirtd_crash(lambda: cbvirt.job_of(w.approve(trid), 'reclaim'),
                       'libvirtd killed during reclaim')
        w.wait_request(trid, ('reclaimed', 'failed'), 30)
        c.eq(w.allocation(aid2)['state'], 'retained', 'reclaimed through a libvirtd crash')
        consistent(c, w, lab, 'reclaim through a libvirtd crash')

        # ---- at the end ----
        c.eq(w.jobs(state='error'), [], 'no job ended in error')
        c.eq(w.jobs(state='queued') + w.jobs(state='running'), [], 'no job left open')
        time.sleep(2.5)
        ev = b.get('/v1/events?limit=1000', token=w.auditor).json()['items']
        c.eq([(e['kind'], e['domain_name']) for e in ev], [],
             'the reconciler found nothing amiss')
        for e in ev:
            print(f'event: {e}')
            if e['kind'] == 'unowned_domain':
                con = cbtest.db_connect(b.db_path)
                try:
                    for row in con.execute(
                            "SELECT j.id, j.kind, s.seq, s.action, s.started_at, s.finished_at"
                            " FROM job_steps s JOIN jobs j ON j.id = s.job_id JOIN instances i"
                            " ON i.id = s.instance_id WHERE i.uuid = ? ORDER BY j.id, s.seq",
                            (e['domain_uuid'],)):
                        print(f'   step of its instance: {row}')
                finally:
                    con.close()
        v = b.get('/v1/audit/verify', token=w.auditor).json()
        c.eq(v.get('ok'), True, f'audit trail verifies after {len(coverage)} kills: {v}')
        c.eq(cbtest.db_integrity(b.db_path), [], 'database integrity')
    except Exception:
        traceback.print_exc()
        c.ok(False, 'the test ran to its end')
    finally:
        if b:
            alive = b.proc is not None and b.proc.poll() is None
            rc = b.stop()
            c.ok(alive and rc == 0, f'the broker ran to the end and stopped cleanly (exit {rc})')
            if c.failed:
                with open(b.log_path, errors='replace') as f:
                    print('---- broker log (tail) ----\n' + ''.join(f.readlines()[-100:]))
            b.cleanup()
        if lab:
            lab.cleanup()
    print('kill points (job, target step, steps done at the kill, step running at the kill):')
    for row in coverage:
        print('  ', row)
    print(f'crash-jobs: {time.time() - t0:.1f}s', flush=True)
    c.done()


if __name__ == '__main__':
    main()
