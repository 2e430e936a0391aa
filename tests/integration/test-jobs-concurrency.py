#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Many multi-host jobs at once: every job ends, nothing is over-committed, and a kill -9 in
the middle changes nothing of that.

Jobs take the hosts of their instances; two jobs whose instances span the same hosts once
waited for each other for ever (each kept the hosts it had and waited for the other's). Here
ten `new` requests of 4-6 instances each are approved at once: ten trial `provision` jobs, each
spread by placement over three trial hosts. Their trials pass together (ten `trial_reclaim` jobs
at once), and the ten are allocated at once on six production hosts with anti-affinity on, so
every production allocation has one instance on each of 4-6 hosts; the broker is SIGKILLed
while those jobs run, and restarted.

Checks: every job ends `done` within BOUND seconds of its batch's start; every request reaches
its state (in_trial, trial_passed, allocated) and every allocation its own (active, purged,
active); no host holds more than its capacity after overcommit (summed here from the
instances, independently of the broker's own counters); anti-affinity held in production;
the audit trail verifies.

The hosts are libvirt's test driver (test:///FILE.xml, no libvirtd): each host a node file
written here, each connection an in-memory host of its own. A restart of the broker empties
them (a new connection reads the file again), so after the kill the steps that remain run on
fresh hosts: undefine and delete find nothing and succeed, define and start make what they
must. That is enough for what the crash checks here: the host locks live in memory only, and
after a restart every job takes its hosts again and ends. One thing a real host keeps and these
lose: a domain defined before the kill. A job with an instance defined but not yet started at
the kill meets "domain ... is not defined" at its start step and ends in error, as it would on a
real host whose domain vanished; the test reads those jobs off the database at the kill and
expects exactly them to fail so, and every other job to end done. (test-crash-jobs.py kills the
broker mid-job on a real libvirtd, whose domains survive.)
"""
import os
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
import cbworld  # noqa: E402

BOUND = 90          # seconds for a batch of ten jobs to end (they take 1-5 s when all is well)
N_REQUESTS = 10
SIZES = [4, 5, 6, 4, 6, 5, 4, 6, 5, 4]   # instances per request: 49 in all
INSTANCE = {'vcpus': 1, 'memory_mib': 128, 'disk_gib': 1, 'image': 'debian-12'}
QUOTA = {'vcpus': 1000, 'memory_mib': 1 << 20, 'disk_gib': 10000, 'instances': 1000}
# policies/ with anti-affinity and spread on (the defaults, stated), a reconciler that stays
# out of the way, and room to wait for a host.
POLICY = {'placement.json': {'anti_affinity': True, 'weigher': 'spread'},
          'lifecycle.json': {'reconcile_seconds': 3600, 'job_retry_seconds': 600,
                             'shutdown_timeout_seconds': 1}}


def db_rows(b, sql, args=()):
    con = sqlite3.connect(f'file:{b.db_path}?mode=ro', uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def fire(calls):
    """Runs every callable of @calls at once, one thread each. Returns: their results."""
    out = [None] * len(calls)

    def run(i):
        out[i] = calls[i]()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def wait_jobs(c, w, jids, t0, what, lost=()):
    """Waits until every job of @jids has ended, at most BOUND seconds after @t0; every job
    ends done but those of @lost, which end in error on a domain the test driver forgot.
    Returns: the seconds it took (or None when some job never ended)."""
    pending = set(jids)
    ends = {}
    while pending and time.time() - t0 < BOUND:
        for jid in sorted(pending):
            j = w.job(jid)
            if j['state'] in ('done', 'error'):
                ends[jid] = j
                pending.discard(jid)
        time.sleep(0.2)
    took = time.time() - t0
    if pending:
        stuck = [(jid, w.job(jid)) for jid in sorted(pending)]
        c.ok(False, f'{what}: {len(pending)} of {len(jids)} jobs still open after {BOUND}s: ' +
             '; '.join(f'job {jid} {j["state"]} {j["progress"]["done"]}/'
                       f'{j["progress"]["total"]}' for jid, j in stuck))
        return None
    c.eq(sorted((jid, j['state'], j['error'] if jid not in lost else
                 'not defined' in (j['error'] or '')) for jid, j in ends.items()),
         sorted((jid, 'error', True) if jid in lost else (jid, 'done', None) for jid in jids),
         f'{what}: every job ends done' + (f' but {sorted(lost)} (forgotten domains)'
                                          if lost else ''))
    print(f'{what}: {len(jids)} jobs ended in {took:.2f}s', flush=True)
    return took


def overlapping(w, jids):
    """Returns: how many pairs of the jobs @jids were under way at the same time."""
    spans = [(j['started_at'], j['finished_at']) for j in (w.job(jid) for jid in jids)]
    return sum(1 for a in range(len(spans)) for b in range(a + 1, len(spans))
               if spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1])


def check_capacity(c, w, what):
    """No host holds more than its capacity after overcommit; no production allocation has two
    instances on one host."""
    hosts = {h['id']: h for h in w.b.get('/v1/hosts?limit=1000',
                                         token=w.tokens['vendor']).json()['items']}
    used = {hid: [0, 0, 0] for hid in hosts}
    allocs = w.b.get('/v1/allocations?limit=1000', token=w.tokens['reviewer']).json()['items']
    spread_bad = []
    for a in allocs:
        a = w.allocation(a['id'])
        on = []
        for i in a['instances']:
            if i['state'] == 'deleted' or not i['host']:
                continue
            u = used[i['host']['id']]
            u[0] += i['vcpus']
            u[1] += i['memory_mib']
            u[2] += i['disk_gib']
            on.append(i['host']['id'])
        if a['purpose'] == 'production' and len(on) != len(set(on)):
            spread_bad.append((a['id'], on))
    over = []
    for hid, h in hosts.items():
        cap, oc = h['capacity'], h['overcommit']
        limits = (int(cap['cpus'] * oc['cpu'] + 1e-9), int(cap['memory_mib'] * oc['ram'] + 1e-9),
                  int(cap['disk_gib'] * oc['disk'] + 1e-9))
        if any(u > lim for u, lim in zip(used[hid], limits)):
            over.append((h['name'], used[hid], limits))
    c.ok(not over, f'{what}: no host over-committed: {over}')
    c.ok(not spread_bad, f'{what}: anti-affinity held: {spread_bad}')
    return used


def kill_mid_way(b, jids, fraction, timeout=60):
    """SIGKILLs the broker once @fraction of the steps of @jids are done (polling the database
    read-only). Returns: (steps done, steps in all) at the kill."""
    marks = ','.join('?' * len(jids))
    con = sqlite3.connect(f'file:{b.db_path}?mode=ro', uri=True, timeout=10)
    try:
        deadline = time.time() + timeout
        while True:
            done, total = con.execute(
                f"SELECT total(state = 'done'), count(*) FROM job_steps WHERE job_id IN ({marks})",
                jids).fetchone()
            if done >= fraction * total:
                b.proc.kill()
                break
            if time.time() > deadline:
                raise RuntimeError(f'the jobs never reached {fraction:.0%}: {done}/{total}')
            time.sleep(0.001)
    finally:
        con.close()
    b.kill9()
    done, total = db_rows(b, f"SELECT total(state = 'done'), count(*) FROM job_steps"
                             f" WHERE job_id IN ({marks})", jids)[0]
    # The jobs with an instance defined but not started: the fresh host will not know it.
    lost = {r[0] for r in db_rows(
        b, f"SELECT d.job_id FROM job_steps d JOIN job_steps s ON s.job_id = d.job_id"
           f" AND s.instance_id = d.instance_id AND s.action = 'start'"
           f" WHERE d.action = 'define' AND d.state = 'done' AND s.state != 'done'"
           f" AND d.job_id IN ({marks})", jids)}
    return int(done), total, lost


def main():
    c = cbtest.Checks('jobs-concurrency')
    b = cbtest.Broker(policy_edits=POLICY)
    timings = {}
    with cbtest.ran_to_end(c, b):
        b.start()
        w = cbworld.World(b, QUOTA)
        rv, au = w.tokens['reviewer'], w.tokens['auditor']
        for k in range(3):
            w.add_host(f'trial-{k + 1}', 'trial', 4096, cpus=6)
        for k in range(6):
            w.add_host(f'prod-{k + 1}', 'production', 4096, cpus=3)
        w.wait_hosts(capacity=True)
        rids = [w.submitted([INSTANCE] * n) for n in SIZES]

        # ---- ten trials approved at once ----
        t0 = time.time()
        docs = fire([lambda rid=rid: b.post(f'/v1/requests/{rid}/decision',
                                            {'decision': 'approve'}, token=rv)
                     for rid in rids])
        c.eq([r.status for r in docs], [200] * N_REQUESTS, 'ten approvals answered 200')
        trial_jobs = [r.json()['jobs'][0]['id'] for r in docs if r.status == 200]
        timings['trial provision'] = wait_jobs(c, w, trial_jobs, t0, 'trial provision')
        if timings['trial provision'] is None:
            raise RuntimeError('the trial jobs did not end')
        c.ok(overlapping(w, trial_jobs) > 0, 'the trial jobs ran side by side (their '
             'started-finished intervals overlap), so they contended for the hosts')
        reqs = [w.request(rid) for rid in rids]
        c.eq([r['state'] for r in reqs], ['in_trial'] * N_REQUESTS, 'every request in_trial')
        trials = [r['trial']['allocation_id'] for r in reqs]
        spans = []
        for aid, n in zip(trials, SIZES):
            a = w.allocation(aid)
            c.eq((a['state'], [i['state'] for i in a['instances']]),
                 ('active', ['running'] * n), f'trial allocation {aid} active, all running')
            spans.append(len({i['host']['id'] for i in a['instances']}))
        c.eq(spans, [3] * N_REQUESTS, 'every trial environment spans the three trial hosts')
        check_capacity(c, w, 'after the trials')

        # ---- ten trials end at once: ten trial_reclaim jobs ----
        t0 = time.time()
        fire([lambda rid=rid: w.pass_trial(rid) for rid in rids])
        reqs = [w.request(rid) for rid in rids]
        c.eq([r['state'] for r in reqs], ['trial_passed'] * N_REQUESTS,
             'every trial passed')
        reclaim_jobs = [max(j['id'] for j in r['jobs'] if j['kind'] == 'trial_reclaim')
                        for r in reqs]
        timings['trial reclaim'] = wait_jobs(c, w, reclaim_jobs, t0, 'trial reclaim')
        c.eq([w.allocation(aid)['state'] for aid in trials], ['purged'] * N_REQUESTS,
             'every trial environment purged')

        # ---- ten allocations at once, anti-affinity on, a kill -9 in the middle ----
        t0 = time.time()
        docs = fire([lambda rid=rid: b.post(f'/v1/requests/{rid}/allocate', token=rv)
                     for rid in rids])
        c.eq([r.status for r in docs], [202] * N_REQUESTS, 'ten allocations answered 202')
        prod_jobs = [max(j['id'] for j in r.json()['jobs'] if j['kind'] == 'provision')
                     for r in docs if r.status == 202]
        done, total, lost = kill_mid_way(b, prod_jobs, 0.3)
        print(f'broker killed with {done} of {total} steps done; jobs with a domain defined '
              f'and not started: {sorted(lost)}', flush=True)
        c.ok(0 < done < total, f'the kill came mid-way ({done} of {total} steps done)')
        b.start()
        w.wait_hosts(capacity=True)
        timings['production provision (killed and restarted)'] = wait_jobs(
            c, w, prod_jobs, t0, 'production provision across a kill -9', lost)
        reqs = [w.request(rid) for rid in rids]
        lost_req = {rid for rid, jid in zip(rids, prod_jobs) if jid in lost}
        c.eq([r['state'] for r in reqs],
             ['failed' if rid in lost_req else 'allocated' for rid in rids],
             'every request allocated (failed: those whose domain the test driver forgot)')
        for rid, r, n in zip(rids, reqs, SIZES):
            if rid in lost_req:
                continue
            a = w.allocation(r['allocation_id'])
            c.eq((a['state'], [i['state'] for i in a['instances']]),
                 ('active', ['running'] * n), f'allocation {a["id"]} active, all running')
            c.eq(len({i['host']['id'] for i in a['instances']}), n,
                 f'allocation {a["id"]}: its {n} instances on {n} hosts')
        check_capacity(c, w, 'after the allocations')
        # No step ran twice to completion, none is left open.
        marks = ','.join('?' * len(lost))
        rows = db_rows(b, "SELECT count(*) FROM job_steps WHERE state != 'done'"
                          f" AND job_id NOT IN ({marks})", sorted(lost))
        c.eq(rows[0][0], 0, 'every step of every job is done (but the forgotten domains\' jobs)')
        v = b.get('/v1/audit/verify', token=au).json()
        c.eq(v.get('ok'), True, f'audit trail verifies: {v}')
    for k, v in timings.items():
        print(f'timing: {k}: {"never ended" if v is None else f"{v:.2f}s"}')
    c.done()


if __name__ == '__main__':
    main()
