#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A host's storage pool and domain type through the API, on libvirt's test driver.

- A host registered with a storage pool that does not exist shows `storage_error` naming the
  pool (GET /v1/hosts/{id}, `cloudbrokerctl host show`), its disk capacity counts as 0, and
  the broker's log says so once, however often the pool is read again.
- PATCH /v1/hosts/{id} {"storage_pool": ...} (vendor only; schema host-patch.json; audited
  as host.update) moves the host to an existing pool: the error goes, the capacity is the
  pool's, and the log says it was found, once. Bad names and other roles are refused with the
  state unchanged.
- An image of the default catalog names no pool: the instances' disks go to the storage pool
  of the host placement chose (here a fixture host whose pool 'cb-first' holds the base
  volume), so a trial runs on a host whose pool is not called 'default'.
- The host shows the domain type the broker defines there (`domain_type`: 'test' on the test
  driver) and what libvirt offers (`connection.hypervisor`).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cbtest import Broker, Checks, ctl, db_snapshot, json_error, wait_for  # noqa: E402
from cbworld import node_xml  # noqa: E402
import cbtest  # noqa: E402

c = Checks('host-pools')


def log_lines(b, needle):
    with open(b.log_path, errors='replace') as f:
        return [line for line in f if needle in line]


with Broker() as b:
    admin = b.admin_token
    _, vendor = b.make_account('vendor', 'vendor')
    dept_id = b.make_department('d1', 'Civil Affairs')
    _, dept = b.make_account('d1-staff', 'department', dept_id)
    _, reviewer = b.make_account('reviewer', 'reviewer')

    # ---- a pool that does not exist ----
    r = b.post('/v1/hosts', {'name': 'hv-1', 'uri': 'test:///default', 'pool': 'production',
                             'storage_pool': 'cbmissing'}, token=vendor)
    c.eq(r.status, 201, 'host registered with a missing storage pool')
    hid = r.json()['id']

    def host():
        return b.get(f'/v1/hosts/{hid}', token=vendor).json()

    h = wait_for(lambda: (lambda x: x if x['capacity']['known'] else None)(host()),
                 what='the host to connect')
    c.ok(h['storage_error'] and "'cbmissing'" in h['storage_error'] and
         'not found' in h['storage_error'], f'storage_error names the pool: {h["storage_error"]!r}')
    c.eq(h['capacity']['disk_gib'], 0, 'no disk capacity without the pool')
    c.eq(h['domain_type'], 'test', 'domain_type on the test driver')
    c.eq(h['connection']['hypervisor'], 'test', 'connection.hypervisor on the test driver')
    c.eq(h['domain_type_note'], None, 'no note on the test driver')
    p = ctl(b, 'host', 'show', str(hid), token=vendor)
    out = p.stdout.decode()
    c.ok("Storage error:" in out and "cbmissing" in out, 'host show prints the storage error')
    c.ok('Domain type:    test' in out, f'host show prints the domain type:\n{out}')

    # Read again three times (each PATCH of the pool wakes the host's thread at once): the
    # log says it once.
    for i in range(3):
        r = b.request('PATCH', f'/v1/hosts/{hid}', {'storage_pool': 'cbmissing'}, token=vendor)
        c.eq(r.status, 200, f'PATCH the same missing pool again ({i})')
        time.sleep(0.3)
    missing_lines = log_lines(b, "storage pool 'cbmissing' not found")
    c.eq(len(missing_lines), 1, f'the missing pool is logged once: {missing_lines}')
    c.ok(missing_lines and 'PATCH /v1/hosts/' in missing_lines[0],
         'the log line says how to fix it')

    # ---- refused changes leave everything as it was ----
    before = db_snapshot(b.db_path)
    for body, status, field, what in (
            ({'storage_pool': '../etc'}, 400, 'storage_pool', 'a name with a slash'),
            ({'storage_pool': ''}, 400, 'storage_pool', 'an empty name'),
            ({'storage_pool': 7}, 400, 'storage_pool', 'a number'),
            ({'storage_pool': 'x' * 65}, 400, 'storage_pool', 'a name of 65 characters')):
        r = b.request('PATCH', f'/v1/hosts/{hid}', body, token=vendor)
        e = json_error(r) or {}
        c.ok(r.status in (400, 422) and field in json.dumps(e),
             f'{what} is refused naming the field: {r}')
    for token, role in ((dept, 'department'), (reviewer, 'reviewer'), (admin, 'admin')):
        r = b.request('PATCH', f'/v1/hosts/{hid}', {'storage_pool': 'default-pool'}, token=token)
        c.eq(r.status, 403, f'a {role} may not change the storage pool')
    c.eq(db_snapshot(b.db_path), before, 'refused changes leave the database unchanged')

    # ---- an existing pool ----
    r = b.request('PATCH', f'/v1/hosts/{hid}', {'storage_pool': 'default-pool'}, token=vendor)
    c.eq(r.status, 200, 'PATCH storage_pool to default-pool')
    c.eq(r.json()['storage_pool'], 'default-pool', 'the answer shows the new pool')
    h = wait_for(lambda: (lambda x: x if x['storage_error'] is None else None)(host()),
                 what='the storage error to clear')
    c.ok(h['capacity']['disk_gib'] > 0, f'disk capacity from default-pool: {h["capacity"]}')
    c.eq(len(log_lines(b, "storage pool 'default-pool' found")), 1,
         'the log says once that the pool was found')
    audit = b.get('/v1/audit?action=host.update&limit=100', token=reviewer).json()['items']
    c.ok(any('default-pool' in json.dumps(a) and a['object_id'] == hid for a in audit),
         'the change is audited as host.update with the pool')
    p = ctl(b, 'host', 'update', str(hid), '--storage-pool', 'cbmissing', token=vendor)
    c.ok(p.returncode == 0 and 'Storage pool:   cbmissing' in p.stdout.decode(),
         'cloudbrokerctl host update --storage-pool')
    wait_for(lambda: host()['storage_error'], what='the error to come back')
    c.eq(len(log_lines(b, "storage pool 'cbmissing' not found")), 2,
         'a new change to a missing pool is logged again (once)')

    # ---- the default catalog's image on a host whose pool is not 'default' ----
    trial_uri = node_xml(os.path.join(b.state_dir, 'trial.xml'), 8192, 4, 'cb-first')
    r = b.post('/v1/hosts', {'name': 'trial-1', 'uri': trial_uri, 'pool': 'trial',
                             'storage_pool': 'cb-first'}, token=vendor)
    c.eq(r.status, 201, 'trial host with storage pool cb-first')
    tid = r.json()['id']
    wait_for(lambda: b.get(f'/v1/hosts/{tid}', token=vendor).json()['capacity']['known'],
             what='the trial host to connect')
    sid = cbtest.make_system(b, dept, 'oa')
    rid = cbtest.make_complete_request(b, dept, sid)
    c.eq(b.post(f'/v1/requests/{rid}/submit', token=dept).status, 200, 'submit')
    c.eq(b.post(f'/v1/requests/{rid}/decision', {'decision': 'approve'}, token=reviewer).status,
         200, 'approve')
    doc = wait_for(lambda: (lambda d: d if d['state'] in ('in_trial', 'approved') and
                            d.get('trial', {}).get('allocation_id') and d['state'] == 'in_trial'
                            else None)(b.get(f'/v1/requests/{rid}', token=reviewer).json()),
                   timeout=30, what='the trial to run')
    alloc = b.get(f'/v1/allocations/{doc["trial"]["allocation_id"]}', token=reviewer).json()
    inst = alloc['instances'][0]
    c.eq((inst['host']['id'], inst['pool'], inst['state']), (tid, 'cb-first', 'running'),
         "the trial's disk is in the host's storage pool")

c.done()
