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
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
from cbtest import ctl, ctl_json, db_diff, db_snapshot, json_error  # noqa: E402

SMALL = {'vcpus': 1, 'memory_mib': 256, 'disk_gib': 1, 'image': 'debian-12'}


def host_xml(path, base=True):
    """A node file for the test driver: 8 CPUs, 8 GiB, the storage pool 'default' holding the
    catalog's base volume debian-12.qcow2, or (without @base) an empty pool, where making an
    instance's disk fails."""
    vol = '''
    <volume type='file'><name>debian-12.qcow2</name><capacity unit='GiB'>2</capacity>
      <target><path>/var/lib/libvirt/images/debian-12.qcow2</path><format type='qcow2'/></target>
    </volume>''' if base else ''
    with open(path, 'w') as f:
        f.write(f'''<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><active>8</active><nodes>1</nodes><sockets>1</sockets>
    <cores>4</cores><threads>2</threads></cpu>
  <memory>{8192 * 1024}</memory>
  <pool type='dir'><name>default</name><source/>
    <target><path>/var/lib/libvirt/images</path></target>{vol}
  </pool>
</node>
''')
    return 'test://' + path


def wait_for(fn, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise RuntimeError(f'timed out waiting for {what} (last: {last!r})')


def text(p):
    return p.stdout.decode('utf-8', 'replace')


def err(p):
    return p.stderr.decode('utf-8', 'replace')


class World:
    def __init__(self, b):
        self.b = b
        self.dept = b.make_department('d1', 'Department 1',
                                      {'vcpus': 16, 'memory_mib': 16384, 'disk_gib': 100,
                                       'instances': 16})
        _, self.dt = b.make_account('d1-staff', 'department', self.dept)
        _, self.rv = b.make_account('reviewer', 'reviewer')
        _, self.vd = b.make_account('vendor', 'vendor')
        _, self.au = b.make_account('auditor', 'auditor')
        _, self.cs = b.make_account('consultant', 'consultant')
        self.system = cbtest.make_system(b, self.dt, 'oa')
        self.hosts = {}

    def add_host(self, name, pool, base=True):
        uri = host_xml(os.path.join(self.b.state_dir, f'{name}.xml'), base)
        r = self.b.post('/v1/hosts', {'name': name, 'uri': uri, 'pool': pool}, token=self.vd)
        assert r.status == 201, r
        hid = r.json()['id']
        self.hosts[name] = hid
        wait_for(lambda: self.b.get(f'/v1/hosts/{hid}', token=self.vd).json()['connection']
                 ['state'] == 'connected', 20, f'host {name} to connect')
        return hid

    def maintenance(self, name, on):
        r = self.b.request('PATCH', f'/v1/hosts/{self.hosts[name]}', {'maintenance': on},
                           token=self.vd)
        assert r.status == 200, r

    def submit(self, n=2):
        body = {'system': self.system, 'kind': 'new', 'justification': 'retry test',
                'resources': {'instances': [SMALL] * n}}
        r = self.b.post('/v1/requests', body, token=self.dt)
        assert r.status == 201, r
        rid = r.json()['id']
        for kind in cbtest.NEW_REQUEST_MATERIALS:
            r = cbtest.upload_material(self.b, self.dt, rid, kind)
            assert r.status == 201, r
        r = self.b.post(f'/v1/requests/{rid}/submit', token=self.dt)
        assert r.status == 200, r
        return rid

    def approve(self, rid):
        r = self.b.post(f'/v1/requests/{rid}/decision', {'decision': 'approve'}, token=self.rv)
        assert r.status == 200, r
        return r.json()

    def request(self, rid):
        return self.b.get(f'/v1/requests/{rid}', token=self.rv).json()

    def allocation(self, aid):
        return self.b.get(f'/v1/allocations/{aid}', token=self.rv).json()

    def job(self, jid):
        return self.b.get(f'/v1/jobs/{jid}', token=self.vd).json()

    def wait_job(self, jid, timeout=30):
        return wait_for(lambda: (lambda j: j if j['state'] in ('done', 'error') else None)(
            self.job(jid)), timeout, f'job {jid} to end')

    def wait_request(self, rid, state, timeout=30):
        return wait_for(lambda: (lambda d: d if d['state'] == state else None)(
            self.request(rid)), timeout, f'request {rid} to become {state}')

    def audit(self, action, object_id):
        r = self.b.get(f'/v1/audit?action={action}&limit=1000', token=self.au)
        return [a for a in r.json()['items'] if a['object_id'] == object_id]


def pass_trial(w, rid):
    r = cbtest.upload_material(w.b, w.vd, rid, 'test_report', data=b'passed\n',
                               media_type='text/plain')
    assert r.status == 201, r
    sha = r.json()['sha256']
    for test in ('function', 'performance', 'security'):
        r = w.b.post(f'/v1/requests/{rid}/trial-results',
                     {'test': test, 'result': 'pass', 'report': sha}, token=w.vd)
        assert r.status == 201, r


def failed_trial(c, w, what):
    """A request whose trial job fails on the trial host without base volume.
    Returns: (request id, job id, trial allocation id)."""
    rid = w.submit()
    doc = w.approve(rid)
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


def policy_dir():
    d = tempfile.mkdtemp(prefix='cbtest-retry-policy-')
    for name in os.listdir(cbtest.POLICIES):
        shutil.copy(os.path.join(cbtest.POLICIES, name), d)
    with open(os.path.join(d, 'placement.json')) as f:
        doc = json.load(f)
    doc['anti_affinity'] = False
    with open(os.path.join(d, 'placement.json'), 'w') as f:
        json.dump(doc, f)
    return d


def main():
    c = cbtest.Checks('job-retry')
    pdir = policy_dir()
    b = cbtest.Broker(policy_dir=pdir)
    try:
        b.start()
        w = World(b)
        w.add_host('trial-bad', 'trial', base=False)
        w.add_host('prod-bad', 'production', base=False)

        # ---- A. a trial fails; the refusals; the vendor mends and retries ----
        rid, jid, aid = failed_trial(c, w, 'A')
        c.ok('approved' in w.request(rid)['next_states'],
             f'a failed new request can go back to approved: {w.request(rid)["next_states"]}')
        before = db_snapshot(b.db_path)
        for role, token, status in (('department', w.dt, 403), ('auditor', w.au, 403),
                                    ('consultant', w.cs, 403)):
            r = b.post(f'/v1/jobs/{jid}/retry', {}, token=token)
            c.eq(r.status, status, f'a {role} cannot retry a job')
        r = b.post('/v1/jobs/999999/retry', {}, token=w.vd)
        c.eq(r.status, 404, 'retry of a job that does not exist: 404')
        r = b.post(f'/v1/jobs/{jid}/retry', {'comment': 'x', 'force': True}, token=w.vd)
        e = json_error(r) or {}
        c.eq((r.status, e.get('field')), (422, '/force'), 'an unknown member is refused')
        r = b.post(f'/v1/jobs/{jid}/retry', {'comment': 7}, token=w.vd)
        c.eq(r.status, 422, 'a comment that is no string is refused')
        # The quota taken meanwhile: the trial would hold the request's resources again.
        r = b.request('PATCH', f'/v1/departments/{w.dept}', {'quota': {'vcpus': 1}},
                      token=b.admin_token)
        assert r.status == 200, r
        before = db_snapshot(b.db_path)
        r = b.post(f'/v1/jobs/{jid}/retry', {}, token=w.vd)
        e = json_error(r) or {}
        c.eq((r.status, e.get('code'), e.get('field')), (422, 'review_rule_failed',
                                                         '/check/rules/2'),
             f'retry beyond the quota refused: {e.get("message")}')
        c.eq(db_diff(before, db_snapshot(b.db_path)), {}, 'the refusals change nothing')
        r = b.request('PATCH', f'/v1/departments/{w.dept}', {'quota': {'vcpus': 16}},
                      token=b.admin_token)
        assert r.status == 200, r
        # Retried as it is, the job fails again on the same host (nothing was mended).
        p = ctl(b, 'job', 'retry', str(jid), token=w.vd)
        c.ok(f'Job {jid} (provision) is queued again (retry 1).' in text(p) and
             f'job watch {jid}' in text(p), f'job retry says what it did: {text(p)!r}')
        job = w.wait_job(jid)
        c.eq((job['state'], job['retries']), ('error', 1),
             'retried without mending the cause, the job fails again')
        c.eq(w.request(rid)['state'], 'failed', 'and the request is failed again')
        # Mended through the API: a good trial host, the bad one in maintenance.
        w.add_host('trial-good', 'trial')
        w.maintenance('trial-bad', True)
        t0 = time.time()
        r = b.post(f'/v1/jobs/{jid}/retry',
                   {'comment': 'trial-bad lacks the base image; trial-good added'}, token=w.vd)
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
        audit = w.audit('job.retry', jid)
        c.eq(len(audit), 2, 'two job.retry audit records')
        c.ok(audit and audit[-1]['role'] == 'vendor' and
             'base volume' in (audit[-1]['detail'] or {}).get('previous_error', '') and
             (audit[-1]['detail'] or {}).get('replaced_instances') == 2,
             f'the audit keeps who, the previous error and the instances placed again: '
             f'{audit[-1] if audit else None}')
        c.eq(len(w.audit('request.retry', rid)), 2, 'request.retry audited')
        c.eq(len(w.audit('allocation.retry', aid)), 2, 'allocation.retry audited')
        r = b.post(f'/v1/jobs/{jid}/retry', {}, token=w.vd)
        e = json_error(r) or {}
        c.eq((r.status, e.get('code')), (409, 'invalid_state'), 'a done job is not retried')

        # ---- B. a production provisioning fails; the reviewer retries with the CLI ----
        pass_trial(w, rid)
        w.wait_request(rid, 'trial_passed')
        wait_for(lambda: w.allocation(aid)['state'] == 'purged', 30, 'the trial to be reclaimed')
        r = b.post(f'/v1/requests/{rid}/allocate', token=w.rv)
        c.eq(r.status, 202, f'allocate: {r!r}')
        prov = max(j['id'] for j in r.json()['jobs'] if j['kind'] == 'provision')
        pa = r.json()['allocation_id']
        job = w.wait_job(prov)
        c.eq((job['state'], w.request(rid)['state'], w.allocation(pa)['state']),
             ('error', 'failed', 'error'), 'B: the production job fails on prod-bad')
        p = ctl(b, 'request', 'retry', str(rid), token=w.rv, check=False)
        c.eq(p.returncode, 0, f'request retry before mending is accepted: {err(p)}')
        w.wait_job(prov)
        w.add_host('prod-good', 'production')
        w.maintenance('prod-bad', True)
        p = ctl(b, 'request', 'retry', str(rid), '--comment', 'prod-good replaces prod-bad',
                token=w.rv, check=False)
        c.ok(p.returncode == 0 and
             f'Request {rid}: failed \u2192 trial_passed; job {prov} (provision) is queued '
             'again.' in text(p), f'request retry says what it did: {text(p)!r} {err(p)!r}')
        c.eq(w.wait_job(prov)['state'], 'done', 'the production job ends done')
        doc = w.wait_request(rid, 'allocated')
        a = w.allocation(pa)
        c.eq((a['state'], sorted(i['host']['name'] for i in a['instances'])),
             ('active', ['prod-good', 'prod-good']), 'B: allocated on the good host, active')
        p = ctl(b, 'request', 'retry', str(rid), token=w.rv, check=False)
        c.ok(p.returncode == 1 and 'has no failed job' in err(p),
             f'request retry of a request without a failed job: {err(p)!r}')

        # ---- C. a production provisioning fails; the allocation in error is purged ----
        rid2 = w.submit(1)
        w.approve(rid2)
        doc = w.wait_request(rid2, 'in_trial')
        pass_trial(w, rid2)
        wait_for(lambda: w.allocation(doc['trial']['allocation_id'])['state'] == 'purged', 30,
                 'the second trial to be reclaimed')
        w.maintenance('prod-good', True)
        w.maintenance('prod-bad', False)
        r = b.post(f'/v1/requests/{rid2}/allocate', token=w.rv)
        c.eq(r.status, 202, 'allocate the second request')
        prov2 = max(j['id'] for j in r.json()['jobs'] if j['kind'] == 'provision')
        pa2 = r.json()['allocation_id']
        c.eq(w.wait_job(prov2)['state'], 'error', 'C: its job fails on prod-bad')
        p = ctl(b, 'allocation', 'purge', str(pa2), token=w.rv, check=False)
        m = re.search(r'by job (\d+)', text(p))
        c.ok(p.returncode == 0 and m, f'the reviewer purges the allocation in error: {text(p)!r}')
        if m:
            c.eq(w.wait_job(int(m.group(1)))['state'], 'done', 'the purge job ends done')
        a = w.allocation(pa2)
        c.eq((a['state'], [i['state'] for i in a['instances']]), ('purged', ['deleted']),
             'C: the allocation in error is purged')
        r = b.post(f'/v1/jobs/{prov2}/retry', {}, token=w.rv)
        e = json_error(r) or {}
        c.eq((r.status, e.get('code')), (409, 'superseded'),
             f'a job whose allocation a later job acted on is not retried: {e.get("message")}')
        c.eq(w.request(rid2)['state'], 'failed', 'the request stays failed')

        v = b.get('/v1/audit/verify', token=w.au).json()
        c.eq(v.get('ok'), True, f'audit trail verifies: {v}')
    except Exception:
        traceback.print_exc()
        c.ok(False, 'the test ran to its end')
    finally:
        alive = b.proc is not None and b.proc.poll() is None
        rc = b.stop()
        c.ok(alive and rc == 0, f'the broker ran to the end and stopped cleanly (exit {rc})')
        if c.failed:
            with open(b.log_path, errors='replace') as f:
                print('---- broker log (tail) ----\n' + ''.join(f.readlines()[-60:]))
        b.cleanup()
        shutil.rmtree(pdir, ignore_errors=True)
    c.done()


if __name__ == '__main__':
    main()
