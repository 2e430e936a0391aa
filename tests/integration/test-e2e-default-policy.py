#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The default policy files, unchanged, run a trial on real QEMU.

The policies are the repository's own (policies/): `domain_type: auto`, the default catalog
(image debian-12, no pool: the host's storage pool), the default placement and review rules.
The hypervisor is a libvirtd of the test's own (cbvirt.PrivateLibvirt) that may open /dev/kvm
(it runs in the 'kvm' group when there is one), so libvirt offers KVM wherever /dev/kvm exists,
as the system libvirtd of a real host does. Its storage pool holds debian-12.qcow2: a 1 MiB
boot sector that halts, as qcow2.

Checks: the host shows what libvirt offers (`connection.hypervisor`) and the domain type the
broker chose (`domain_type`): kvm only when the CPU has virtualization extensions (vmx or svm
in /proc/cpuinfo, read here independently of the broker), else qemu with a note saying why and
one warning in the broker's log; `cloudbrokerctl host show` prints it. Then one request through
approval: the trial's domain is defined with that type, runs, and still runs a few seconds later
(a KVM guest on a CPU without VT-x dies at once: QEMU aborts on an MSR it cannot set).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
import cbvirt  # noqa: E402

c = cbtest.Checks('e2e-default-policy')


def cpu_has_vt():
    with open('/proc/cpuinfo') as f:
        return any(re.search(r'^flags\s*:.*\b(vmx|svm)\b', line) for line in f)


def kvm_group():
    import grp
    try:
        grp.getgrnam('kvm')
        return ('kvm',)
    except KeyError:
        return ()


def main():
    for tool in ('libvirtd', 'virsh', 'qemu-img', 'qemu-system-x86_64'):
        if not shutil.which(tool):
            print(f'SKIP: {tool} is not installed')
            sys.exit(77)
    with open(os.path.join(cbtest.POLICIES, 'lifecycle.json')) as f:
        c.eq(json.load(f).get('domain_type'), 'auto', 'the default lifecycle policy says auto')
    with open(os.path.join(cbtest.POLICIES, 'catalog.json')) as f:
        image = json.load(f)['images'][0]
    c.ok('pool' not in image, "the default catalog's image takes the host's storage pool")

    base = tempfile.mkdtemp(prefix='cb-e2e-default-')
    os.chmod(base, 0o755)
    lv = cbvirt.PrivateLibvirt(os.path.join(base, 'libvirt'), groups=kvm_group())
    broker = None
    try:
        lv.start()
        pool = 'cb-default'
        pool_dir = os.path.join(base, 'pool')
        os.makedirs(pool_dir)
        os.chmod(pool_dir, 0o755)
        lv.own(pool_dir)
        raw = os.path.join(base, 'halt.raw')
        cbvirt.boot_image(raw, cbvirt.HALT)
        vol = os.path.join(pool_dir, image['volume'])
        subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', image['format'], raw, vol],
                       check=True)
        lv.own(vol)
        lv.virsh('pool-define-as', pool, 'dir', '--target', pool_dir)
        lv.virsh('pool-start', pool)
        offered = 'kvm' if lv.virsh('domcapabilities', '--virttype', 'kvm',
                                    check=False).returncode == 0 else 'qemu'
        expected = 'kvm' if offered == 'kvm' and cpu_has_vt() else 'qemu'
        print(f'libvirt offers {offered}; the CPU has VT-x/AMD-V: {cpu_has_vt()}; '
              f'expecting domain_type {expected}', flush=True)

        broker = cbtest.Broker().start()  # the repository's policies/
        b = broker
        dept_id = b.make_department('d1', '民政局')
        _, dept = b.make_account('d1-staff', 'department', dept_id)
        _, reviewer = b.make_account('reviewer', 'reviewer')
        _, vendor = b.make_account('vendor', 'vendor')
        r = b.post('/v1/hosts', {'name': 'trial-01', 'uri': lv.uri, 'pool': 'trial',
                                 'storage_pool': pool}, token=vendor)
        c.eq(r.status, 201, 'trial host registered')
        hid = r.json()['id']
        h = cbvirt.wait_for(lambda: (lambda x: x if x['capacity']['known'] else None)(
            b.get(f'/v1/hosts/{hid}', token=vendor).json()), 30, 'the host to connect')
        c.eq(h['connection']['hypervisor'], offered, 'connection.hypervisor: what libvirt offers')
        c.eq(h['domain_type'], expected, 'domain_type: what really works')
        c.eq(h['storage_error'], None, 'the storage pool is found')
        if offered == 'kvm' and expected == 'qemu':
            c.ok(h['domain_type_note'] and 'vmx' in h['domain_type_note'],
                 f'the note says why KVM is not used: {h["domain_type_note"]!r}')
            with open(b.log_path, errors='replace') as f:
                warnings = [x for x in f if 'offers KVM but it does not work' in x]
            c.eq(len(warnings), 1, f'one warning in the log: {warnings}')
        out = cbtest.ctl(b, 'host', 'show', str(hid), token=vendor).stdout.decode()
        c.ok(re.search(rf'^Domain type:\s+{expected}$', out, re.M) is not None,
             f'host show prints the domain type:\n{out}')

        sid = cbtest.make_system(b, dept, 'oa')
        r = b.post('/v1/requests', {'system': sid, 'kind': 'new', 'justification': 'first hour',
                                    'resources': {'instances': [{
                                        'vcpus': 1, 'memory_mib': 64, 'disk_gib': 1,
                                        'image': image['name']}]}}, token=dept)
        c.eq(r.status, 201, 'request created')
        rid = r.json()['id']
        for kind in cbtest.NEW_REQUEST_MATERIALS:
            c.eq(cbtest.upload_material(b, dept, rid, kind).status, 201, f'upload {kind}')
        c.eq(b.post(f'/v1/requests/{rid}/submit', token=dept).status, 200, 'submit')
        t0 = time.time()
        c.eq(b.post(f'/v1/requests/{rid}/decision', {'decision': 'approve'},
                    token=reviewer).status, 200, 'approve')

        def settled():
            doc = b.get(f'/v1/requests/{rid}', token=reviewer).json()
            jobs = [b.get(f'/v1/jobs/{j["id"]}', token=vendor).json()
                    for j in doc.get('jobs') or []]
            if doc['state'] != 'approved' or any(j['state'] == 'error' for j in jobs):
                return doc, jobs
            for j in jobs:
                for s in j.get('steps') or []:
                    if s.get('error'):
                        return doc, jobs  # a step failed once: KVM that does not work
            return None
        doc, jobs = cbvirt.wait_for(settled, 180, 'the trial to start')
        c.eq(doc['state'], 'in_trial',
             f'the trial runs ({time.time() - t0:.1f} s): jobs {json.dumps(jobs)[:1500]}')
        alloc = b.get(f'/v1/allocations/{doc["trial"]["allocation_id"]}', token=reviewer).json()
        inst = alloc['instances'][0]
        c.eq(inst['pool'], pool, "the disk is in the host's storage pool")
        name = inst['name']
        xml = ET.fromstring(lv.virsh('dumpxml', name).stdout)
        c.eq(xml.get('type'), expected, f'{name} is defined as {expected}')
        c.eq(lv.virsh('domstate', name).stdout.strip(), 'running', f'{name} runs')
        time.sleep(3)
        c.eq(lv.virsh('domstate', name).stdout.strip(), 'running', f'{name} still runs 3 s on')
    except Exception:
        traceback.print_exc()
        c.ok(False, 'no exception')
    finally:
        if broker:
            broker.cleanup()
        lv.cleanup()
        shutil.rmtree(base, ignore_errors=True)
    c.done()


if __name__ == '__main__':
    main()
