#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The workflow on real domains: a libvirtd with QEMU (software emulation), 1 MiB boot-sector
guests, and the real cloudbrokerd.

The libvirtd is the test's own (cbvirt.PrivateLab: unprivileged, qemu:///session, in a temporary
folder), registered twice: as the trial host and as the production host.

1. One request, two instances: trial (instances on the trial host, three passes, the trial
   reclaimed: domains and volumes gone) -> allocate (two domains running on the production host,
   checked with virsh: state, UUID, the <metadata> element's ids, vCPU maximum; the API shows
   host, UUID and the reconciler's live_state) -> change within the maximums (vCPUs, memory,
   disk; live: the domain id stays) -> a change beyond the maximum: refused at submit (422
   naming the field) without restart_allowed, applied with it by shutdown, redefine and start
   (domain id changes, maximum raised) -> terminate (domains gone, volumes kept, allocation
   retained) -> restore (domains back, running, same UUIDs) -> terminate -> purge (volumes gone).
2. A trial with a failed test: trial_failed, trial instances reclaimed, volumes deleted.
3. Allocation when nothing fits: the production host in maintenance, disabled, or too small after
   overcommit: 409 naming per host the filter that refused; nothing is created; then it fits.
4. An allocation whose job fails (its base image removed after the trial): job error, request
   failed, allocation error; the reviewer purges it (purged, nothing left).
5. A trial whose time runs out (lifecycle trial_seconds 5, reloaded with SIGHUP): the sweeper
   ends it (trial_failed) and reclaims it.
At the end: no job in error but the one of 4, no reconciler event (nothing happened out of band), and the audit
trail verifies.
"""
import os
import re
import signal
import sys
import time
import traceback
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
import cbvirt  # noqa: E402

NS = 'urn:x-cloudbroker:instance:1'
GIB = 1 << 30


def history_to(doc):
    return [h['to'] for h in doc['history']]


def virsh_out(lab, *args):
    return lab.virsh(*args).stdout.strip()


def domid(lab, name):
    return virsh_out(lab, 'domid', name)


def vcpucount(lab, name, *flags):
    return int(virsh_out(lab, 'vcpucount', name, *flags))


def config_xml(lab, name):
    return ET.fromstring(lab.virsh('dumpxml', '--inactive', name).stdout)


def disk_capacity(lab, name):
    for line in lab.virsh('domblkinfo', name, 'vda').stdout.splitlines():
        if line.startswith('Capacity:'):
            return int(line.split()[1])
    return None


def vol_capacity(lab, volume):
    for line in lab.virsh('vol-info', '--pool', lab.pool, volume, '--bytes').stdout.splitlines():
        if line.startswith('Capacity:'):
            return int(line.split()[1])
    return None


def error_of(r):
    return cbtest.json_error(r) or {}


def wait_live(w, aid, want, timeout=30):
    """Waits until the reconciler's live_state of every instance of @aid is @want."""
    return cbvirt.wait_for(
        lambda: (lambda a: a if all(i['live_state'] == want for i in a['instances']) else None)(
            w.allocation(aid)), timeout, f'live_state {want} on allocation {aid}')


def check_gone(c, w, lab, insts, what):
    """The domains of @insts are gone and their volumes deleted; the rows say 'deleted'."""
    uuids = lab.domain_uuids()
    vols = lab.volumes()
    for i in insts:
        c.ok(i['uuid'] not in uuids, f'{what}: domain {i["name"]} ({i["uuid"]}) is gone')
        c.ok(i['volume'] not in vols, f'{what}: volume {i["volume"]} deleted (pool: {vols})')
        c.eq(i['state'], 'deleted', f'{what}: instance {i["id"]} state')


def check_hosts(c, w, lab):
    hosts = {h['id']: h for h in w.b.get('/v1/hosts', token=w.vendor).json()['items']}
    node = {k.strip(): v.strip() for k, v in
            (line.split(':', 1) for line in lab.virsh('nodeinfo').stdout.splitlines()
             if ':' in line)}
    c.eq(len(hosts), 2, 'two hosts registered')
    for pool in ('trial', 'production'):
        h = hosts[w.hosts[pool]]
        c.eq(h['pool'], pool, f'{pool} host pool')
        c.eq(h['connection']['state'], 'connected', f'{pool} host connected')
        c.eq(h['connection']['hypervisor'], 'qemu', f'{pool} host offers software emulation')
        c.eq(h['capacity']['cpus'], int(node['CPU(s)']), f'{pool} host CPUs from virNodeGetInfo')
        c.eq(h['capacity']['memory_mib'], int(node['Memory size'].split()[0]) // 1024,
             f'{pool} host memory from virNodeGetInfo')
        c.eq(h['free_after_overcommit']['vcpus'], int(node['CPU(s)']) * 4,
             f'{pool} host free vCPUs after the 4.0 overcommit')
        c.eq(h['allocated']['instances'], 0, f'{pool} host empty')


def main_flow(c, w, lab):
    """Request 1 from trial to purge. Returns: nothing; checks as it goes."""
    b = w.b
    prod, trial_host = w.hosts['production'], w.hosts['trial']
    rid = w.submit_new([w.spec(), w.spec()], 'two instances, the whole way')

    # ---- trial ----
    doc = w.approve(rid)
    c.eq(doc['state'], 'approved', 'approve answers approved')
    c.eq([j['kind'] for j in doc['jobs']], ['provision'], 'approval starts a provision job')
    trial_aid = doc['trial']['allocation_id']
    c.ok(trial_aid is not None, 'approval creates the trial allocation')
    doc = w.wait_request(rid, 'in_trial', 60)
    c.ok(doc['trial']['deadline'] is not None, 'in_trial: the trial has a deadline')
    job = w.job(cbvirt.job_of(doc, 'provision'))
    c.eq(job['state'], 'done', 'trial provision job done')
    c.eq([s['action'] for s in job['steps']],
         ['reserve'] + ['create_volume', 'define', 'start'] * 2 + ['finish'],
         'trial provision steps')
    c.eq(job['progress']['percent'], 100, 'trial provision progress 100%')
    ta = w.allocation(trial_aid)
    c.eq((ta['purpose'], ta['state']), ('trial', 'active'), 'trial allocation active')
    c.eq(len(ta['instances']), 2, 'two trial instances')
    doms = lab.domains()
    for i in ta['instances']:
        c.eq(i['host']['id'] if i['host'] else None, trial_host, f'{i["name"]} on the trial host')
        c.eq(doms.get(i['name']), 'running', f'trial domain {i["name"]} running (virsh)')
        c.eq(virsh_out(lab, 'domuuid', i['name']), i['uuid'], f'trial {i["name"]} UUID')

    sha = w.upload_report(rid)
    d1 = w.trial_result(rid, 'function', 'pass', sha)
    d2 = w.trial_result(rid, 'performance', 'pass', sha)
    c.eq((d1['state'], d2['state']), ('in_trial', 'in_trial'), 'two passes: still in_trial')
    r = b.post(f'/v1/requests/{rid}/trial-results',
               {'test': 'function', 'result': 'pass', 'report': sha}, token=w.vendor)
    c.eq(r.status, 409, 'a test recorded twice is refused')
    r = b.post(f'/v1/requests/{rid}/allocate', token=w.reviewer)
    c.eq(r.status, 409, 'allocate before the trial passed: 409')
    d3 = w.trial_result(rid, 'security', 'pass', sha)
    c.eq(d3['state'], 'trial_passed', 'three passes: trial_passed')
    c.eq(len(d3['trial']['results']), 3, 'three results listed')
    c.ok(all(x['report'] == sha for x in d3['trial']['results']), 'results name the report')
    rj = w.wait_job(cbvirt.job_of(d3, 'trial_reclaim'), 60)
    c.eq(rj['state'], 'done', 'trial reclaim job done')
    ta = w.wait_allocation(trial_aid, 'purged', 30)
    check_gone(c, w, lab, ta['instances'], 'trial reclaimed')

    # ---- allocate ----
    r = b.post(f'/v1/requests/{rid}/allocate', token=w.vendor)
    c.eq(r.status, 403, 'a vendor cannot allocate')
    doc = w.allocate(rid)
    aid = doc['allocation_id']
    c.ok(aid is not None and aid != trial_aid, 'allocate names the production allocation')
    doc = w.wait_request(rid, 'allocated', 60)
    c.eq(history_to(doc), ['draft', 'submitted', 'approved', 'in_trial', 'trial_passed',
                           'allocated'], 'request history')
    c.eq(doc['history'][3]['role'], 'system', 'in_trial is the job\'s doing')
    c.eq(doc['history'][4]['role'], 'vendor', 'trial_passed is the vendor\'s result')
    pj = w.job(cbvirt.job_of(doc, 'provision'))
    c.eq((pj['state'], pj['allocation_id']), ('done', aid), 'allocation job done')
    r = b.post(f'/v1/requests/{rid}/allocate', token=w.reviewer)
    c.eq(r.status, 409, 'allocating twice: 409')
    a = wait_live(w, aid, 'running')
    c.eq((a['purpose'], a['state']), ('production', 'active'), 'allocation active')
    c.eq(a['totals'], {'vcpus': 2, 'memory_mib': 128, 'disk_gib': 2, 'instances': 2},
         'allocation totals')
    c.eq(len(a['instances']), 2, 'two production instances')
    doms = lab.domains()
    ids = {}
    for i in a['instances']:
        name = i['name']
        c.eq(name, f'cb-{aid}-{i["index"]}', 'domain name cb-<allocation>-<n>')
        c.eq(i['host'], {'id': prod, 'name': f'{lab.prefix}-prod'}, f'{name} host')
        c.ok(re.fullmatch(r'[0-9a-f-]{36}', i['uuid'] or '') is not None, f'{name} has a UUID')
        c.eq(i['state'], 'running', f'{name} state running')
        c.eq(i['live_state'], 'running', f'{name} live_state (reconciler) running')
        c.ok(i['live_state_at'] is not None, f'{name} live_state_at set')
        c.eq(doms.get(name), 'running', f'{name} running (virsh list)')
        c.eq(virsh_out(lab, 'domstate', name), 'running', f'{name} domstate running')
        c.eq(virsh_out(lab, 'domuuid', name), i['uuid'], f'{name} UUID as the API shows')
        md = ET.fromstring(virsh_out(lab, 'metadata', name, NS))
        got = {e.tag.split('}')[-1]: e.attrib for e in md}
        c.eq(got.get('department', {}).get('id'), str(w.dept_id), f'{name} metadata department')
        c.eq(got.get('system', {}).get('id'), str(w.system_id), f'{name} metadata system')
        c.eq(got.get('allocation'), {'id': str(aid), 'purpose': 'production'},
             f'{name} metadata allocation')
        c.eq(got.get('instance'), {'id': str(i['id']), 'index': str(i['index'])},
             f'{name} metadata instance')
        c.eq(got.get('request', {}).get('id'), str(rid), f'{name} metadata request')
        x = config_xml(lab, name)
        c.eq(x.get('type'), 'qemu', f'{name} domain type qemu (lifecycle policy)')
        c.eq(vcpucount(lab, name, '--maximum', '--config'), i['max_vcpus'],
             f'{name} vCPU maximum set at define time')
        c.eq(i['max_vcpus'], 2, f'{name} max_vcpus from the growth factor')
        c.eq(int(x.find('memory').text), i['max_memory_mib'] * 1024,
             f'{name} memory maximum set at define time')
        c.eq(vcpucount(lab, name, '--active', '--live'), 1, f'{name} one vCPU live')
        ids[name] = domid(lab, name)
    hosts = {h['id']: h for h in b.get('/v1/hosts', token=w.vendor).json()['items']}
    c.eq(hosts[prod]['allocated'], {'vcpus': 2, 'memory_mib': 128, 'disk_gib': 2,
                                    'instances': 2}, 'production host allocated')
    c.eq(hosts[trial_host]['allocated']['instances'], 0, 'trial host empty again')
    i0, i1 = a['instances']
    n0, n1 = i0['name'], i1['name']

    # ---- change within the maximums: live ----
    r = b.post(f'/v1/allocations/{aid}/restore', token=w.reviewer)
    c.eq(r.status, 409, 'restoring an active allocation: 409')
    crid, _ = w.submit_change(aid, [w.spec(2, 96, 2), w.spec()])
    doc = w.approve(crid)
    c.eq(doc['state'], 'applying', 'approved change is applying')
    a = w.allocation(aid)
    c.ok(a['state'] in ('resizing', 'active'), f'allocation resizing ({a["state"]})')
    doc = w.wait_request(crid, 'applied', 60)
    job = w.job(cbvirt.job_of(doc, 'resize'))
    c.eq(job['state'], 'done', 'resize job done')
    c.eq([s['action'] for s in job['steps']], ['set_vcpus', 'set_memory', 'grow_volume',
                                               'finish'], 'live resize steps')
    c.eq(history_to(doc), ['draft', 'submitted', 'approved', 'applying', 'applied'],
         'change history')
    a = w.allocation(aid)
    c.eq(a['state'], 'active', 'allocation active after the change')
    c.eq({k: a['instances'][0][k] for k in ('vcpus', 'memory_mib', 'disk_gib', 'max_vcpus',
                                             'max_memory_mib')},
         {'vcpus': 2, 'memory_mib': 96, 'disk_gib': 2, 'max_vcpus': 2, 'max_memory_mib': 128},
         'instance 0 after the live change')
    c.eq(a['totals'], {'vcpus': 3, 'memory_mib': 160, 'disk_gib': 3, 'instances': 2},
         'allocation totals after the live change')
    c.eq(domid(lab, n0), ids[n0], f'{n0} not restarted (same domain id)')
    c.eq(domid(lab, n1), ids[n1], f'{n1} not restarted (same domain id)')
    c.eq(vcpucount(lab, n0, '--active', '--live'), 2, f'{n0} two vCPUs live')
    c.eq(vcpucount(lab, n0, '--active', '--config'), 2, f'{n0} two vCPUs in its definition')
    c.eq(int(config_xml(lab, n0).find('currentMemory').text), 96 * 1024,
         f'{n0} memory 96 MiB in its definition')
    c.eq(disk_capacity(lab, n0), 2 * GIB, f'{n0} disk 2 GiB as the guest sees it')
    c.eq(vol_capacity(lab, i0['volume']), 2 * GIB, f'{i0["volume"]} grown to 2 GiB')
    c.eq(vcpucount(lab, n1, '--active', '--live'), 1, f'{n1} unchanged')

    # ---- beyond the maximum ----
    big = [w.spec(3, 96, 2), w.spec()]
    crid2, r = w.submit_change(aid, big, restart_allowed=False, expect=422)
    e = error_of(r)
    c.eq(r.status, 422, 'vCPUs beyond the maximum without restart_allowed: 422 at submit')
    c.eq(e.get('field'), '/resources/instances/0/vcpus', '422 names the field')
    c.eq(e.get('code'), 'restart_required', '422 code restart_required')
    c.eq(w.request(crid2)['state'], 'draft', 'the refused change stays a draft')
    r = b.request('PATCH', f'/v1/requests/{crid2}', {'restart_allowed': True}, token=w.dept)
    c.eq(r.status, 200, 'PATCH restart_allowed true')
    r = b.post(f'/v1/requests/{crid2}/submit', token=w.dept)
    c.eq(r.status, 200, 'with restart_allowed the change is submitted')
    uuid0 = i0['uuid']
    doc = w.approve(crid2)
    doc = w.wait_request(crid2, 'applied', 60)
    job = w.job(cbvirt.job_of(doc, 'resize'))
    c.eq([s['action'] for s in job['steps']], ['shutdown', 'redefine', 'start', 'finish'],
         'restart resize steps')
    a = wait_live(w, aid, 'running')
    x0 = a['instances'][0]
    c.eq((x0['vcpus'], x0['max_vcpus']), (3, 6), 'instance 0 three vCPUs, maximum 6')
    c.eq(x0['uuid'], uuid0, 'instance 0 keeps its UUID')
    c.eq(virsh_out(lab, 'domuuid', n0), uuid0, f'{n0} redefined with the same UUID')
    c.eq(virsh_out(lab, 'domstate', n0), 'running', f'{n0} running again')
    new_id = domid(lab, n0)
    c.ok(new_id != ids[n0], f'{n0} restarted (domain id {ids[n0]} -> {new_id})')
    c.eq(domid(lab, n1), ids[n1], f'{n1} untouched by the restart change')
    c.eq(vcpucount(lab, n0, '--maximum', '--config'), 6, f'{n0} vCPU maximum raised to 6')
    c.eq(vcpucount(lab, n0, '--active', '--live'), 3, f'{n0} three vCPUs live')
    c.eq(int(config_xml(lab, n0).find('memory').text), x0['max_memory_mib'] * 1024,
         f'{n0} memory maximum as the API shows')
    c.eq(disk_capacity(lab, n0), 2 * GIB, f'{n0} keeps its 2 GiB disk')
    ids[n0] = new_id

    # ---- terminate: volumes kept ----
    trid = w.submit_termination(aid)
    doc = w.approve(trid)
    c.eq(doc['state'], 'reclaiming', 'approved termination is reclaiming')
    doc = w.wait_request(trid, 'reclaimed', 60)
    job = w.job(cbvirt.job_of(doc, 'reclaim'))
    c.eq([s['action'] for s in job['steps']], ['shutdown', 'undefine'] * 2 + ['finish'],
         'reclaim steps: no wipe, no delete')
    a = w.allocation(aid)
    c.eq(a['state'], 'retained', 'terminated allocation retained')
    c.ok(a['retained_until'] is not None and a['retained_until'] > time.strftime('%Y-%m-%d'),
         f'retained_until in the future ({a["retained_until"]})')
    uuids = lab.domain_uuids()
    vols = lab.volumes()
    for i in a['instances']:
        c.eq(i['state'], 'undefined', f'{i["name"]} undefined')
        c.ok(i['uuid'] not in uuids, f'{i["name"]} domain gone')
        c.ok(i['volume'] in vols, f'{i["volume"]} kept')
    hosts = {h['id']: h for h in b.get('/v1/hosts', token=w.vendor).json()['items']}
    c.eq((hosts[prod]['allocated']['instances'], hosts[prod]['allocated']['vcpus'],
          hosts[prod]['allocated']['disk_gib']), (0, 0, 3),
         'retained: no vCPUs counted on the host, the disks still are')

    # ---- restore ----
    r = b.post(f'/v1/allocations/{aid}/restore', token=w.vendor)
    c.eq(r.status, 403, 'a vendor cannot restore')
    r = b.post(f'/v1/allocations/{aid}/restore', token=w.reviewer)
    c.eq(r.status, 202, 'restore accepted')
    job = w.wait_job(r.json()['job_id'], 60)
    c.eq(job['state'], 'done', 'restore job done')
    c.eq(job['kind'], 'restore', 'restore job kind')
    a = wait_live(w, aid, 'running')
    c.eq(a['state'], 'active', 'restored allocation active')
    c.eq(a['retained_until'], None, 'restored: retained_until cleared')
    for i in a['instances']:
        c.eq(i['state'], 'running', f'{i["name"]} running after restore')
        c.eq(virsh_out(lab, 'domstate', i['name']), 'running', f'{i["name"]} domstate')
        c.eq(virsh_out(lab, 'domuuid', i['name']), i['uuid'], f'{i["name"]} same UUID')
    c.eq(a['instances'][0]['uuid'], uuid0, 'restore keeps the UUIDs')
    c.eq(vcpucount(lab, n0, '--maximum', '--config'), 6, f'{n0} restored with its maximum')
    c.eq(disk_capacity(lab, n0), 2 * GIB, f'{n0} restored with its grown disk')

    # ---- terminate again, then purge ----
    trid = w.submit_termination(aid)
    w.approve(trid)
    w.wait_request(trid, 'reclaimed', 60)
    w.wait_allocation(aid, 'retained', 30)
    c.ok(all(i['volume'] in lab.volumes() for i in a['instances']),
         'volumes kept by the second termination')
    r = b.post(f'/v1/allocations/{aid}/purge', token=w.dept)
    c.ok(r.status in (403, 404), f'a department cannot purge ({r.status})')
    r = b.post(f'/v1/allocations/{aid}/purge', token=w.reviewer)
    c.eq(r.status, 202, 'purge accepted')
    job = w.wait_job(r.json()['job_id'], 60)
    c.eq((job['kind'], job['state']), ('purge', 'done'), 'purge job done')
    c.eq([s['action'] for s in job['steps']],
         ['shutdown', 'undefine', 'wipe', 'delete_volume'] * 2 + ['finish'], 'purge steps')
    a = w.allocation(aid)
    c.eq(a['state'], 'purged', 'allocation purged')
    check_gone(c, w, lab, a['instances'], 'purged')
    r = b.post(f'/v1/allocations/{aid}/purge', token=w.reviewer)
    c.eq(r.status, 409, 'purging twice: 409')
    r = b.post(f'/v1/allocations/{aid}/restore', token=w.reviewer)
    c.eq(r.status, 409, 'restoring a purged allocation: 409')
    hosts = {h['id']: h for h in b.get('/v1/hosts', token=w.vendor).json()['items']}
    c.eq(hosts[prod]['allocated'], {'vcpus': 0, 'memory_mib': 0, 'disk_gib': 0,
                                    'instances': 0}, 'production host empty after the purge')


def trial_failure(c, w, lab):
    rid = w.submit_new([w.spec()], 'a trial that fails')
    w.approve(rid)
    doc = w.wait_request(rid, 'in_trial', 60)
    taid = doc['trial']['allocation_id']
    ta = w.allocation(taid)
    c.eq(lab.domains().get(ta['instances'][0]['name']), 'running', 'failing trial: domain up')
    sha = w.upload_report(rid, 'the function test failed\n')
    doc = w.trial_result(rid, 'function', 'fail', sha)
    c.eq(doc['state'], 'trial_failed', 'one failed test: trial_failed')
    c.eq(history_to(doc)[-1], 'trial_failed', 'history ends with trial_failed')
    c.eq(doc['history'][-1]['comment'], 'a trial test failed', 'trial_failed history comment')
    job = w.wait_job(cbvirt.job_of(doc, 'trial_reclaim'), 60)
    c.eq(job['state'], 'done', 'failed trial reclaimed')
    c.eq([s['action'] for s in job['steps']],
         ['shutdown', 'undefine', 'delete_volume', 'finish'], 'trial reclaim steps')
    ta = w.wait_allocation(taid, 'purged', 30)
    check_gone(c, w, lab, ta['instances'], 'failed trial')
    r = w.b.post(f'/v1/requests/{rid}/trial-results',
                 {'test': 'security', 'result': 'pass', 'report': sha}, token=w.vendor)
    c.eq(r.status, 409, 'no result after the trial ended')
    r = w.b.post(f'/v1/requests/{rid}/allocate', token=w.reviewer)
    c.eq(r.status, 409, 'a failed trial is not allocated')
    c.eq(w.request(rid)['state'], 'trial_failed', 'trial_failed is final')


def nothing_fits(c, w, lab):
    b = w.b
    prod, trial_host = w.hosts['production'], w.hosts['trial']
    pname, tname = f'{lab.prefix}-prod', f'{lab.prefix}-trial'
    rid = w.submit_new([w.spec()], 'nothing fits, then it does')
    w.to_trial_passed(rid)
    allocs_before = len(b.get('/v1/allocations?limit=1000', token=w.reviewer).json()['items'])
    jobs_before = len(w.jobs())

    def refused(patch, filter_name, what):
        r = b.request('PATCH', f'/v1/hosts/{prod}', patch, token=w.vendor)
        c.eq(r.status, 200, f'PATCH production host {patch}')
        r = b.post(f'/v1/requests/{rid}/allocate', token=w.reviewer)
        e = error_of(r)
        msg = e.get('message', '')
        c.eq(r.status, 409, f'{what}: allocate answers 409')
        c.eq(e.get('code'), 'no_capacity', f'{what}: code no_capacity')
        c.ok(f'{pname} refused by {filter_name}' in msg,
             f'{what}: message names the production host and the {filter_name} filter: {msg!r}')
        c.ok(f'{tname} refused by pool' in msg,
             f'{what}: message names the trial host and the pool filter: {msg!r}')
        return msg

    r = b.request('PATCH', f'/v1/hosts/{prod}', {'maintenance': True}, token=w.reviewer)
    c.eq(r.status, 403, 'a reviewer cannot put a host in maintenance')
    refused({'maintenance': True}, 'maintenance', 'production host in maintenance')
    h = b.get(f'/v1/hosts/{prod}', token=w.vendor).json()
    c.eq(h['maintenance'], True, 'GET host shows maintenance')
    refused({'maintenance': False, 'enabled': False}, 'disabled', 'production host disabled')
    msg = refused({'enabled': True, 'ram_ratio': 0.001}, 'ram',
                  'request bigger than the host after overcommit')
    limit = int(h['capacity']['memory_mib'] * 0.001)
    m = re.search(rf'{re.escape(pname)} refused by ram \(0 used of (\d+)', msg)
    c.ok(m is not None and int(m.group(1)) == limit,
         f'the ram refusal shows used and limit ({limit}): {msg!r}')
    h = b.get(f'/v1/hosts/{prod}', token=w.vendor).json()
    c.eq(h['overcommit']['ram'], 0.001, 'GET host shows its own ram ratio')
    c.eq(h['overcommit']['from_policy'], False, 'ratio no longer from the policy')
    c.eq(w.request(rid)['state'], 'trial_passed', 'refused allocation leaves trial_passed')
    c.eq(len(b.get('/v1/allocations?limit=1000', token=w.reviewer).json()['items']),
         allocs_before, 'refused allocation creates no allocation')
    c.eq(len(w.jobs()), jobs_before, 'refused allocation creates no job')

    r = b.request('PATCH', f'/v1/hosts/{prod}', {'ram_ratio': None}, token=w.vendor)
    c.eq(r.status, 200, 'ram ratio back to the policy')
    c.eq(r.json()['overcommit']['from_policy'], True, 'ratio from the policy again')
    w.allocate(rid)
    doc = w.wait_request(rid, 'allocated', 60)
    a = w.allocation(doc['allocation_id'])
    c.eq(a['state'], 'active', 'once it fits the allocation is made')
    c.eq(lab.domains().get(a['instances'][0]['name']), 'running', 'and its domain runs')


def failed_allocation(c, w, lab):
    """An allocation whose job fails (its base image vanished after the trial) ends in error,
    its request failed; the reviewer purges it."""
    b = w.b
    rid = w.submit_new([w.spec(image='fragile')], 'its base image goes away')
    w.to_trial_passed(rid)
    lab.virsh('vol-delete', '--pool', lab.pool, 'fragile.raw')
    c.ok('fragile.raw' not in lab.volumes(), 'the base image is gone')
    doc = w.allocate(rid)
    aid = doc['allocation_id']
    job = w.wait_job(cbvirt.job_of(doc, 'provision'), 60)
    c.eq(job['state'], 'error', 'allocation job without its base image ends in error')
    c.ok('fragile.raw' in (job['error'] or ''), f'the job says why: {job["error"]!r}')
    doc = w.wait_request(rid, 'failed', 30)
    c.eq(doc['history'][-1]['from'], 'trial_passed', 'trial_passed -> failed')
    a = w.allocation(aid)
    c.eq(a['state'], 'error', 'the allocation is in error')
    c.ok(a['error'] is not None, f'the allocation says why: {a["error"]!r}')
    r = b.post(f'/v1/allocations/{aid}/purge', token=w.reviewer)
    c.eq(r.status, 202, 'a failed allocation can be purged')
    job = w.wait_job(r.json()['job_id'], 60)
    c.eq(job['state'], 'done', f'its purge job ends done (error: {job["error"]!r})')
    a = w.allocation(aid)
    c.eq(a['state'], 'purged', 'the failed allocation is purged')
    c.ok(all(i['state'] == 'deleted' for i in a['instances']), 'its instances deleted')
    c.ok(all(i['volume'] not in lab.volumes() for i in a['instances']), 'no volume left')
    c.ok(all(i['uuid'] not in lab.domain_uuids() for i in a['instances']), 'no domain left')


def trial_timeout(c, w, lab):
    b = w.b
    life = lab._read('lifecycle.json')
    saved = dict(life)
    life['trial_seconds'] = 5
    lab._write('lifecycle.json', life)
    try:
        b.proc.send_signal(signal.SIGHUP)
        cbvirt.wait_for(lambda: b.get('/v1/policies', token=w.vendor).json()
                        ['lifecycle']['trial_seconds'] == 5, 10, 'the policy reload')
        c.ok(True, 'SIGHUP reloads trial_seconds 5')
        rid = w.submit_new([w.spec()], 'a trial that runs out of time')
        w.approve(rid)
        doc = w.wait_request(rid, 'in_trial', 60)
        t0 = time.time()
        taid = doc['trial']['allocation_id']
        c.ok(doc['trial']['deadline'] is not None, 'the short trial has a deadline')
        c.eq(w.allocation(taid)['state'], 'active', 'short trial running')
        doc = w.wait_request(rid, 'trial_failed', 30)
        took = time.time() - t0
        c.ok(3 <= took <= 15, f'trial_failed when its time ran out ({took:.1f}s after in_trial)')
        last = doc['history'][-1]
        c.eq((last['from'], last['to'], last['role']), ('in_trial', 'trial_failed', 'system'),
             'the sweeper ended the trial')
        c.ok('time ran out' in (last['comment'] or ''), f'history says why: {last["comment"]!r}')
        job = w.wait_job(cbvirt.job_of(doc, 'trial_reclaim'), 60)
        c.eq(job['state'], 'done', 'overdue trial reclaimed')
        ta = w.wait_allocation(taid, 'purged', 30)
        check_gone(c, w, lab, ta['instances'], 'overdue trial')
    finally:
        lab._write('lifecycle.json', saved)
        if b.proc:
            b.proc.send_signal(signal.SIGHUP)
    cbvirt.wait_for(lambda: b.get('/v1/policies', token=w.vendor).json()
                    ['lifecycle']['trial_seconds'] == saved['trial_seconds'], 10,
                    'the policy reload back')


def main():
    c = cbtest.Checks('e2e-hypervisor')
    lab = b = None
    t0 = time.time()
    try:
        lab = cbvirt.PrivateLab(extra_images={'fragile': cbvirt.HALT})
        b = cbtest.Broker(policy_dir=lab.policy_dir).start()
        w = cbvirt.Workflow(b, lab)
        check_hosts(c, w, lab)
        for part in (main_flow, trial_failure, nothing_fits, failed_allocation, trial_timeout):
            t = time.time()
            part(c, w, lab)
            print(f'{part.__name__}: {time.time() - t:.1f}s', flush=True)

        c.eq([j['kind'] for j in w.jobs(state='error')], ['provision'],
             'no job ended in error but the one without its base image')
        c.eq(w.jobs(state='queued') + w.jobs(state='running'), [], 'no job left open')
        ev = b.get('/v1/events?limit=1000', token=w.auditor)
        c.eq(ev.status, 200, 'GET /v1/events (auditor)')
        c.eq(ev.json()['items'], [], 'the reconciler saw nothing out of band')
        v = b.get('/v1/audit/verify', token=w.auditor)
        c.eq(v.status, 200, 'GET /v1/audit/verify')
        c.eq(v.json().get('ok'), True, f'audit trail verifies: {v.json()}')
        c.ok(v.json().get('records', 0) > 50, 'audit trail recorded the workflow')
        names = set(lab.domains())
        c.eq(len(names), 1, f'one domain left: the last allocation\'s ({sorted(names)})')
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
                    print('---- broker log (tail) ----\n' + ''.join(f.readlines()[-80:]))
            b.cleanup()
        if lab:
            lab.cleanup()
    print(f'e2e-hypervisor: {time.time() - t0:.1f}s', flush=True)
    c.done()


if __name__ == '__main__':
    main()
