#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The ways out of a failed job: retry it once its cause is mended, or purge its allocation.

A. A trial fails: the only trial host lacks the catalog's base volume, so the trial job's
   create_volume fails; the request is failed, its trial allocation in error. The refusals of
   POST /v1/jobs/{id}/retry (roles, unknown job, bad body, the quota taken meanwhile) change
   nothing; retried as it is, the job fails again on the same host. The vendor mends the cause through the API (a good trial host registered, the bad
   one put in maintenance) and retries with `cloudbrokerctl job retry`: the instance placed on
   the bad host is placed again, on the good one, the job resumes, the request reaches in_trial
   and keeps its materials; history and audit say who retried, why, and what had failed.
B. A production provisioning fails the same way; the reviewer retries it with
   `cloudbrokerctl request retry` after the vendor mended the hosts: the request is allocated.
C. Another production provisioning fails; the reviewer purges the allocation in error instead:
   the purge job ends and the allocation is purged; the failed job can no longer be retried
   (a later job acted on its allocation).

The hosts are libvirt's test driver (test:///FILE.xml, node files written here), one good and
one bad per pool, so the placement policy's anti-affinity is off here (two instances of an
allocation share a host)."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
import cbworld  # noqa: E402
from cbtest import ctl, db_diff, db_snapshot, json_error  # noqa: E402

SMALL = {'vcpus': 1, 'memory_mib': 256, 'disk_gib': 1, 'image': 'debian-12'}
QUOTA = {'vcpus': 16, 'memory_mib': 16384, 'disk_gib': 100, 'instances': 16}


def text(p):
    return p.stdout.decode('utf-8', 'replace')


def err(p):
    return p.stderr.decode('utf-8', 'replace')


def audits_of(w, action, object_id):
    r = w.b.get(f'/v1/audit?action={action}&limit=1000', token=w.tokens['auditor'])
    return [a for a in r.json()['items'] if a['object_id'] == object_id]


def failed_trial(c, w, what):
    """A request whose trial job fails on the trial host without base volume.
    Returns: (request id, job id, trial allocation id)."""
    rid = w.submitted([SMALL] * 2)
    doc = w.decide(rid, 'approve')
    jid = doc['jobs'][0]['id']
    job = w.wait_job(jid)
    c.eq((job['state'], [s['action'] for s in job['steps'] if s['state'] == 'error']),
         ('error', ['create_volume']), f'{what}: the trial job fails at create_volume')
    c.ok('base volume' in (job['error'] or ''), f'{what}: and says why: {job["error"]}')
    doc = w.request(rid)
    aid = doc['trial']['allocation_id']
    c.eq((doc['state'], w.allocation(aid)['state']), ('failed', 'error'),
         f'{what}: request failed, trial allocation in error')
    return rid, jid, aid


def main():
    c = cbtest.Checks('job-retry')
    b = cbtest.Broker(policy_edits={'placement.json': {'anti_affinity': False}})
    with cbtest.ran_to_end(c, b):
        b.start()
        w = cbworld.World(b, QUOTA)
        dt, rv, vd, au, cs = (w.tokens[role] for role in ('department', 'reviewer', 'vendor',
                                                          'auditor', 'consultant'))
        w.add_host('trial-bad', 'trial', base=False)
        w.add_host('prod-bad', 'production', base=False)
        w.wait_hosts()

        # ---- A. a trial fails; the refusals; the vendor mends and retries ----
        rid, jid, aid = failed_trial(c, w, 'A')
        c.ok('approved' in w.request(rid)['next_states'],
             f'a failed new request can go back to approved: {w.request(rid)["next_states"]}')
        before = db_snapshot(b.db_path)
        for role, token, status in (('department', dt, 403), ('auditor', au, 403),
                                    ('consultant', cs, 403)):
            r = b.post(f'/v1/jobs/{jid}/retry', {}, token=token)
            c.eq(r.status, status, f'a {role} cannot retry a job')
        r = b.post('/v1/jobs/999999/retry', {}, token=vd)
        c.eq(r.status, 404, 'retry of a job that does not exist: 404')
        r = b.post(f'/v1/jobs/{jid}/retry', {'comment': 'x', 'force': True}, token=vd)
        e = json_error(r) or {}
        c.eq((r.status, e.get('field')), (422, '/force'), 'an unknown member is refused')
        r = b.post(f'/v1/jobs/{jid}/retry', {'comment': 7}, token=vd)
        c.eq(r.status, 422, 'a comment that is no string is refused')
        # The quota taken meanwhile: the trial would hold the request's resources again.
        r = b.request('PATCH', f'/v1/departments/{w.dept_a}', {'quota': {'vcpus': 1}},
                      token=b.admin_token)
        assert r.status == 200, r
        before = db_snapshot(b.db_path)
        r = b.post(f'/v1/jobs/{jid}/retry', {}, token=vd)
        e = json_error(r) or {}
        c.eq((r.status, e.get('code'), e.get('field')), (422, 'review_rule_failed',
                                                         '/check/rules/2'),
             f'retry beyond the quota refused: {e.get("message")}')
        c.eq(db_diff(before, db_snapshot(b.db_path)), {}, 'the refusals change nothing')
        r = b.request('PATCH', f'/v1/departments/{w.dept_a}', {'quota': {'vcpus': 16}},
                      token=b.admin_token)
        assert r.status == 200, r
        # Retried as it is, the job fails again on the same host (nothing was mended).
        p = ctl(b, 'job', 'retry', str(jid), token=vd)
        c.ok(f'Job {jid} (provision) is queued again (retry 1).' in text(p) and
             f'job watch {jid}' in text(p), f'job retry says what it did: {text(p)!r}')
        job = w.wait_job(jid)
        c.eq((job['state'], job['retries']), ('error', 1),
             'retried without mending the cause, the job fails again')
        c.eq(w.request(rid)['state'], 'failed', 'and the request is failed again')
        # Mended through the API: a good trial host, the bad one in maintenance.
        w.add_host('trial-good', 'trial')
        w.wait_hosts()
        w.maintenance('trial-bad', True)
        t0 = time.time()
        r = b.post(f'/v1/jobs/{jid}/retry',
                   {'comment': 'trial-bad lacks the base image; trial-good added'}, token=vd)
        c.eq(r.status, 202, f'the vendor retries the failed trial job: {r!r}')
        doc = r.json() if r.status == 202 else {}
        c.eq((doc.get('id'), doc.get('state'), doc.get('retries'), doc.get('error')),
             (jid, 'queued', 2, None), 'the answer is the job, queued again')
        job = w.wait_job(jid)
        c.eq(job['state'], 'done', f'the retried job ends done ({job["error"]})')
        print(f'A: retried trial job done in {time.time() - t0:.2f}s', flush=True)
        reserve = [s for s in job['steps'] if s['action'] == 'reserve'][0]
        c.eq(reserve['attempts'], 3, 'the reserve step ran again at each retry (placed again)')
        doc = w.request(rid)
        c.eq(doc['state'], 'in_trial', 'the request reaches in_trial')
        c.ok(doc['trial']['deadline'], 'with a trial deadline')
        c.eq(sorted(m['kind'] for m in doc['materials']), sorted(cbtest.NEW_REQUEST_MATERIALS),
             'the department applied once: its materials are all there')
        a = w.allocation(aid)
        c.eq((a['state'], a['error'], [(i['host']['name'], i['state']) for i in a['instances']]),
             ('active', None, [('trial-good', 'running')] * 2),
             'the trial allocation is active, its instances run on the good host')
        moves = [(h['from'], h['to'], h['role']) for h in doc['history']][-6:]
        c.eq(moves, [('submitted', 'approved', 'reviewer'), ('approved', 'failed', 'system'),
                     ('failed', 'approved', 'vendor'), ('approved', 'failed', 'system'),
                     ('failed', 'approved', 'vendor'), ('approved', 'in_trial', 'system')],
             'the history shows both failures and both retries')
        c.eq(doc['history'][-2]['comment'], 'trial-bad lacks the base image; trial-good added',
             'the retry keeps the vendor\'s comment')
        audit = audits_of(w, 'job.retry', jid)
        c.eq(len(audit), 2, 'two job.retry audit records')
        c.ok(audit and audit[-1]['role'] == 'vendor' and
             'base volume' in (audit[-1]['detail'] or {}).get('previous_error', '') and
             (audit[-1]['detail'] or {}).get('replaced_instances') == 2,
             f'the audit keeps who, the previous error and the instances placed again: '
             f'{audit[-1] if audit else None}')
        c.eq(len(audits_of(w, 'request.retry', rid)), 2, 'request.retry audited')
        c.eq(len(audits_of(w, 'allocation.retry', aid)), 2, 'allocation.retry audited')
        r = b.post(f'/v1/jobs/{jid}/retry', {}, token=vd)
        e = json_error(r) or {}
        c.eq((r.status, e.get('code')), (409, 'invalid_state'), 'a done job is not retried')

        # ---- B. a production provisioning fails; the reviewer retries with the CLI ----
        w.pass_trial(rid)
        w.wait_request(rid, 'trial_passed')
        w.wait_allocation(aid, 'purged')
        r = b.post(f'/v1/requests/{rid}/allocate', token=rv)
        c.eq(r.status, 202, f'allocate: {r!r}')
        prov = max(j['id'] for j in r.json()['jobs'] if j['kind'] == 'provision')
        pa = r.json()['allocation_id']
        job = w.wait_job(prov)
        c.eq((job['state'], w.request(rid)['state'], w.allocation(pa)['state']),
             ('error', 'failed', 'error'), 'B: the production job fails on prod-bad')
        p = ctl(b, 'request', 'retry', str(rid), token=rv, check=False)
        c.eq(p.returncode, 0, f'request retry before mending is accepted: {err(p)}')
        w.wait_job(prov)
        w.add_host('prod-good', 'production')
        w.wait_hosts()
        w.maintenance('prod-bad', True)
        p = ctl(b, 'request', 'retry', str(rid), '--comment', 'prod-good replaces prod-bad',
                token=rv, check=False)
        c.ok(p.returncode == 0 and
             f'Request {rid}: failed \u2192 trial_passed; job {prov} (provision) is queued '
             'again.' in text(p), f'request retry says what it did: {text(p)!r} {err(p)!r}')
        c.eq(w.wait_job(prov)['state'], 'done', 'the production job ends done')
        doc = w.wait_request(rid, 'allocated')
        a = w.allocation(pa)
        c.eq((a['state'], sorted(i['host']['name'] for i in a['instances'])),
             ('active', ['prod-good', 'prod-good']), 'B: allocated on the good host, active')
        p = ctl(b, 'request', 'retry', str(rid), token=rv, check=False)
        c.ok(p.returncode == 1 and 'has no failed job' in err(p),
             f'request retry of a request without a failed job: {err(p)!r}')

        # ---- C. a production provisioning fails; the allocation in error is purged ----
        doc = w.request(w.in_trial([SMALL]))
        rid2 = doc['id']
        w.pass_trial(rid2)
        w.wait_allocation(doc['trial']['allocation_id'], 'purged')
        w.maintenance('prod-good', True)
        w.maintenance('prod-bad', False)
        r = b.post(f'/v1/requests/{rid2}/allocate', token=rv)
        c.eq(r.status, 202, 'allocate the second request')
        prov2 = max(j['id'] for j in r.json()['jobs'] if j['kind'] == 'provision')
        pa2 = r.json()['allocation_id']
        c.eq(w.wait_job(prov2)['state'], 'error', 'C: its job fails on prod-bad')
        p = ctl(b, 'allocation', 'purge', str(pa2), token=rv, check=False)
        m = re.search(r'by job (\d+)', text(p))
        c.ok(p.returncode == 0 and m, f'the reviewer purges the allocation in error: {text(p)!r}')
        if m:
            c.eq(w.wait_job(int(m.group(1)))['state'], 'done', 'the purge job ends done')
        a = w.allocation(pa2)
        c.eq((a['state'], [i['state'] for i in a['instances']]), ('purged', ['deleted']),
             'C: the allocation in error is purged')
        r = b.post(f'/v1/jobs/{prov2}/retry', {}, token=rv)
        e = json_error(r) or {}
        c.eq((r.status, e.get('code')), (409, 'superseded'),
             f'a job whose allocation a later job acted on is not retried: {e.get("message")}')
        c.eq(w.request(rid2)['state'], 'failed', 'the request stays failed')

        v = b.get('/v1/audit/verify', token=au).json()
        c.eq(v.get('ok'), True, f'audit trail verifies: {v}')
    c.done()


if __name__ == '__main__':
    main()
