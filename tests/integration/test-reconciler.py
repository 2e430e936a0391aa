#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The reconciler against a real libvirtd with QEMU: what happens out of band is reported, and
the database is never rewritten to match it.

An allocation of two running instances on the production host (the test's own libvirtd,
cbvirt.PrivateLab, registered as trial and production host; reconcile every 2 s). Then, with
virsh, behind the broker's back:
  - instance 0's domain is destroyed            -> instance_state (warning)
  - instance 1's domain is undefined and stopped -> instance_missing (warning)
  - a foreign domain is defined and started      -> unowned_domain (security), once per host
    (both hosts are the same daemon)
GET /v1/events shows each with host, instance, allocation, UUID and name; /metrics (auditor and
vendor tokens) counts them in cloudbroker_reconciler_events_total{kind=...}; a condition that
lasts is one event whose last_seen moves, not a new event per pass. The allocation's instances
keep state 'running' while live_state shows what the reconciler saw. After the fix (start
instance 0, define and start instance 1 again, remove the foreign domain) every event gets
resolved_at. Then: a paused instance (instance_state, 'paused'); a domain cloned from one of
ours, carrying our metadata under a UUID we never made (unowned_domain that says so); and with
150 foreign domains slowing every pass, a change that removes one of our instances: its domain,
undefined by its own job, must not be reported as unowned.
"""
import os
import re
import shutil
import sys
import time
import traceback
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
import cbvirt  # noqa: E402

KINDS = ('instance_missing', 'instance_state', 'unowned_domain')
NS = 'urn:x-cloudbroker:instance:1'
BULK = 150


def metrics(b, token):
    r = b.get('/metrics', token=token)
    assert r.status == 200, r
    out = {}
    for m in re.finditer(r'^cloudbroker_reconciler_events_total\{kind="(\w+)"\} (\d+)$',
                         r.body.decode(), re.M):
        out[m.group(1)] = int(m.group(2))
    return out


def events(w, query=''):
    r = w.b.get(f'/v1/events?limit=1000{query}', token=w.auditor)
    assert r.status == 200, r
    return r.json()['items']


def wait_events(w, pred, what, timeout=20):
    return cbvirt.wait_for(lambda: (lambda e: e if pred(e) else None)(events(w)), timeout, what)


def foreign_domain_xml(lab, name, dom_uuid, disk):
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <uuid>{dom_uuid}</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
"""


def main():
    c = cbtest.Checks('reconciler')
    lab = b = None
    t0 = time.time()
    try:
        lab = cbvirt.PrivateLab()
        b = cbtest.Broker(policy_dir=lab.policy_dir).start()
        w = cbvirt.Workflow(b, lab)
        prod, trial_host = w.hosts['production'], w.hosts['trial']
        rid = w.submit_new([w.spec(), w.spec()], 'watched by the reconciler')
        w.to_trial_passed(rid)
        w.allocate(rid)
        aid = w.wait_request(rid, 'allocated', 60)['allocation_id']
        a = cbvirt.wait_for(lambda: (lambda a: a if all(i['live_state'] == 'running'
                                                        for i in a['instances']) else None)(
            w.allocation(aid)), 20, 'live_state running')
        i0, i1 = a['instances']
        n0, n1 = i0['name'], i1['name']
        time.sleep(2.5)  # one more pass over the settled allocation

        c.eq(events(w), [], 'no event while everything is as approved')
        r = b.get('/metrics', token=w.dept)
        c.eq(r.status, 403, 'a department cannot read /metrics')
        r = b.get('/metrics', token=w.reviewer)
        c.eq(r.status, 403, 'a reviewer cannot read /metrics')
        m0 = metrics(b, w.auditor)
        c.eq(sorted(m0), sorted(KINDS), '/metrics (auditor) has a counter per event kind')
        c.eq(metrics(b, w.vendor), m0, '/metrics (vendor) shows the same counters')

        # ---- out of band ----
        xml1 = lab.virsh('dumpxml', '--inactive', n1).stdout
        lab.virsh('destroy', n0)
        lab.virsh('undefine', n1)      # running, now transient ...
        lab.virsh('destroy', n1)       # ... and gone
        fname = f'{lab.prefix}-foreign'
        fuuid = str(uuid.uuid4())
        fdisk = os.path.join(lab.pool_dir, f'{fname}.raw')
        shutil.copyfile(os.path.join(lab.pool_dir, 'halt.raw'), fdisk)
        lab.libvirt.own(fdisk)
        fxml = os.path.join(lab.dir, f'{fname}.xml')
        with open(fxml, 'w') as f:
            f.write(foreign_domain_xml(lab, fname, fuuid, fdisk))
        lab.virsh('define', fxml)
        lab.virsh('start', fname)
        t_oob = time.time()

        def opened(e):
            kinds = sorted(x['kind'] for x in e if x['resolved_at'] is None)
            return kinds == ['instance_missing', 'instance_state', 'unowned_domain',
                             'unowned_domain']
        ev = wait_events(w, opened, 'the three kinds of event')
        c.ok(time.time() - t_oob < 10, f'reported within a few passes '
             f'({time.time() - t_oob:.1f}s)')
        by = {(x['kind'], x['host_id']): x for x in ev}
        st = by.get(('instance_state', prod))
        c.ok(st is not None, 'instance_state event on the production host')
        if st:
            c.eq((st['severity'], st['instance_id'], st['allocation_id'], st['domain_uuid'],
                  st['domain_name']), ('warning', i0['id'], aid, i0['uuid'], n0),
                 'instance_state names host, instance, allocation, UUID and name')
            c.ok('shutoff' in st['message'], f'instance_state says shut off: {st["message"]!r}')
            c.eq(st['resolved_at'], None, 'instance_state open')
            c.ok(st['first_seen'] is not None and st['last_seen'] is not None, 'seen times')
        mi = by.get(('instance_missing', prod))
        c.ok(mi is not None, 'instance_missing event on the production host')
        if mi:
            c.eq((mi['severity'], mi['instance_id'], mi['allocation_id'], mi['domain_uuid'],
                  mi['domain_name']), ('warning', i1['id'], aid, i1['uuid'], n1),
                 'instance_missing names host, instance, allocation, UUID and name')
            c.ok('missing' in mi['message'], f'instance_missing message: {mi["message"]!r}')
        for host in (prod, trial_host):
            un = by.get(('unowned_domain', host))
            c.ok(un is not None, f'unowned_domain event on host {host}')
            if un:
                c.eq((un['severity'], un['instance_id'], un['allocation_id'], un['domain_uuid'],
                      un['domain_name']), ('security', None, None, fuuid, fname),
                     f'unowned_domain on host {host}: severity security, its UUID and name')
                c.ok(fname in un['message'] and 'not owned' in un['message'],
                     f'unowned_domain message: {un["message"]!r}')
        c.eq(len(events(w, '&kind=unowned_domain')), 2, 'GET /v1/events?kind=unowned_domain')
        c.eq(sorted(x['kind'] for x in events(w, f'&host={prod}')),
             ['instance_missing', 'instance_state', 'unowned_domain'],
             'GET /v1/events?host=<production>')
        c.eq(len(events(w, '&open=true')), 4, 'GET /v1/events?open=true')
        c.eq(events(w, '&open=false'), [], 'GET /v1/events?open=false: none resolved yet')
        r = b.get('/v1/events', token=w.dept)
        c.eq(r.status, 403, 'a department cannot read events')
        r = b.get('/v1/events', token=w.vendor)
        c.eq(r.status, 200, 'a vendor reads events')

        m1 = metrics(b, w.auditor)
        c.eq(m1['instance_state'] - m0['instance_state'], 1, 'metric instance_state +1')
        c.eq(m1['instance_missing'] - m0['instance_missing'], 1, 'metric instance_missing +1')
        c.eq(m1['unowned_domain'] - m0['unowned_domain'], 2,
             'metric unowned_domain +2 (one per host)')
        c.eq(metrics(b, w.vendor), m1, '/metrics (vendor) agrees')

        a = w.allocation(aid)
        c.eq(a['state'], 'active', 'allocation still active')
        c.eq([i['state'] for i in a['instances']], ['running', 'running'],
             'instance states not rewritten: still running')
        c.eq([i['live_state'] for i in a['instances']], ['shutoff', 'absent'],
             'live_state shows what the reconciler saw')
        con = cbtest.db_connect(b.db_path)
        try:
            rows = con.execute('SELECT state FROM instances WHERE allocation_id = ?'
                               ' ORDER BY idx', (aid,)).fetchall()
        finally:
            con.close()
        c.eq([r[0] for r in rows], ['running', 'running'],
             'the database row (read-only) still says running')

        # a lasting condition is one event, seen again
        before = {x['id']: x['last_seen'] for x in events(w)}
        time.sleep(4.5)
        after = {x['id']: x['last_seen'] for x in events(w)}
        c.eq(sorted(after), sorted(before), 'two more passes open no new event')
        c.ok(all(after[k] > before[k] for k in before), 'last_seen moves on every pass')
        c.eq(metrics(b, w.auditor), m1, 'counters count events opened, not passes')

        # ---- fixed ----
        lab.virsh('start', n0)
        xml1_path = os.path.join(lab.dir, f'{n1}.xml')
        with open(xml1_path, 'w') as f:
            f.write(xml1)
        lab.virsh('define', xml1_path)
        lab.virsh('start', n1)
        lab.virsh('destroy', fname)
        lab.virsh('undefine', fname)
        ev = wait_events(w, lambda e: all(x['resolved_at'] for x in e), 'every event resolved')
        first = {x['id'] for x in by.values()}
        c.ok(all(x['resolved_at'] for x in ev if x['id'] in first), 'the four events resolved')
        c.ok(all(x['resolved_at'] >= x['last_seen'] for x in ev), 'resolved after last seen')
        # A pass may land while `virsh start` runs: libvirt shows the domain paused (starting
        # up) for a moment, which the broker counts as running, so nothing opens.
        transient = [x for x in ev if x['id'] not in first]
        for x in transient:
            print(f'event opened during the fix: {x}')
        c.ok(not transient, 'nothing else opened during the fix')
        c.eq(events(w, '&open=true'), [], 'no open event after the fix')
        c.eq(len(events(w, '&open=false')), len(ev), 'every event resolved')
        a = cbvirt.wait_for(lambda: (lambda a: a if all(i['live_state'] == 'running'
                                                        for i in a['instances']) else None)(
            w.allocation(aid)), 20, 'live_state running again')
        c.eq([i['state'] for i in a['instances']], ['running', 'running'], 'states unchanged')
        m = metrics(b, w.auditor)
        c.eq(m['instance_state'] - m1['instance_state'], len(transient), 'resolving opens nothing')
        c.eq((m['instance_missing'], m['unowned_domain']),
             (m1['instance_missing'], m1['unowned_domain']), 'resolving opens nothing (others)')
        m1 = m

        # ---- paused ----
        lab.virsh('suspend', n0)
        ev = wait_events(w, lambda e: any(x['resolved_at'] is None for x in e),
                         'an event for the paused instance')
        new = [x for x in ev if x['resolved_at'] is None]
        c.eq(len(new), 1, 'one new event')
        c.eq((new[0]['kind'], new[0]['instance_id'], new[0]['host_id']),
             ('instance_state', i0['id'], prod), 'paused: a new instance_state event')
        c.ok('paused' in new[0]['message'], f'message says paused: {new[0]["message"]!r}')
        c.eq(w.allocation(aid)['instances'][0]['live_state'], 'paused', 'live_state paused')
        lab.virsh('resume', n0)
        wait_events(w, lambda e: all(x['resolved_at'] for x in e), 'the pause resolved')
        c.ok(True, 'resumed: resolved')

        # ---- a clone carrying our metadata ----
        cxml = lab.virsh('dumpxml', '--inactive', n0).stdout
        cuuid = str(uuid.uuid4())
        cxml = re.sub(r'<name>[^<]*</name>', f'<name>{lab.prefix}-clone</name>', cxml, count=1)
        cxml = re.sub(r'<uuid>[^<]*</uuid>', f'<uuid>{cuuid}</uuid>', cxml, count=1)
        c.ok(NS in cxml, 'the clone carries our metadata element')
        cpath = os.path.join(lab.dir, 'clone.xml')
        with open(cpath, 'w') as f:
            f.write(cxml)
        lab.virsh('define', cpath)
        ev = wait_events(w, lambda e: sum(x['resolved_at'] is None for x in e) == 2,
                         'the clone reported on both hosts')
        cl = [x for x in ev if x['resolved_at'] is None]
        c.ok(all(x['kind'] == 'unowned_domain' and x['domain_uuid'] == cuuid and
                 x['severity'] == 'security' for x in cl), 'the clone is an unowned_domain')
        c.ok(all('carries our metadata' in x['message'] for x in cl),
             f'and the event says it carries our metadata: {cl[0]["message"]!r}')
        lab.virsh('undefine', f'{lab.prefix}-clone')
        wait_events(w, lambda e: all(x['resolved_at'] for x in e), 'the clone resolved')
        c.ok(True, 'clone removed: resolved')
        m2 = metrics(b, w.auditor)
        c.eq((m2['instance_state'] - m1['instance_state'],
              m2['unowned_domain'] - m1['unowned_domain'],
              m2['instance_missing'] - m1['instance_missing']), (1, 2, 0),
             'metrics count the pause and the clone')
        allev = events(w)
        c.eq(m2, {k: sum(x['kind'] == k for x in allev) for k in KINDS},
             'each counter equals the events of its kind')

        a = w.allocation(aid)
        c.eq((a['state'], [i['state'] for i in a['instances']]),
             ('active', ['running', 'running']), 'allocation as approved throughout')

        # ---- a domain its own job removes while a pass lists the host ----
        # Many (inactive) foreign domains make each pass's listing take a while; then a change
        # removes instance 1 (shutdown, undefine, wipe, delete_volume). A pass that listed the
        # domain before the undefine and reads the instance after the delete must not call
        # the broker's own domain unowned.
        bulk = []
        for n in range(BULK):
            path = os.path.join(lab.dir, f'bulk{n}.xml')
            with open(path, 'w') as f:
                f.write(foreign_domain_xml(lab, f'{lab.prefix}-bulk{n}', str(uuid.uuid4()),
                                           fdisk))
            bulk.append(f'define {path}')
        lab.virsh(' ; '.join(bulk), timeout=120)
        wait_events(w, lambda e: sum(x['kind'] == 'unowned_domain' and x['resolved_at'] is None
                                     for x in e) == 2 * BULK, 'the bulk domains reported', 30)
        crid, _ = w.submit_change(aid, [w.spec()])
        w.approve(crid)
        doc = w.wait_request(crid, 'applied', 60)
        job = w.job(cbvirt.job_of(doc, 'resize'))
        c.eq([s['action'] for s in job['steps']],
             ['shutdown', 'undefine', 'wipe', 'delete_volume', 'finish'],
             'the change removes instance 1')
        a = w.allocation(aid)
        c.eq([i['state'] for i in a['instances']], ['running', 'deleted'],
             'instance 1 deleted by the change')
        c.ok(i1['uuid'] not in lab.domain_uuids(), 'its domain is gone')
        time.sleep(5)
        mine = [x for x in events(w) if x['domain_uuid'] == i1['uuid'] and
                x['kind'] == 'unowned_domain']
        c.eq(mine, [], 'no unowned_domain event for a domain its own job removed')
        lab.virsh(' ; '.join(f'undefine {lab.prefix}-bulk{n}' for n in range(BULK)),
                  timeout=120)
        c.eq(w.jobs(state='error'), [], 'no job ended in error')
        c.eq(w.jobs(state='queued') + w.jobs(state='running'), [],
             'the reconciler started no job')
        v = b.get('/v1/audit/verify', token=w.auditor)
        c.eq(v.json().get('ok'), True, f'audit trail verifies: {v.json()}')
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
                    print('---- broker log (tail) ----\n' + ''.join(f.readlines()[-60:]))
            b.cleanup()
        if lab:
            lab.cleanup()
    print(f'reconciler: {time.time() - t0:.1f}s', flush=True)
    c.done()


if __name__ == '__main__':
    main()
