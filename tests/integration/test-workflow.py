#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The review workflow end to end, driven only through cloudbrokerctl against a real cloudbrokerd:
the admin sets up a department and its people, the department registers a system and applies,
the bureau returns, assigns a consultant and approves; a second request is rejected; the vendor
registers hosts (libvirt's test driver: node files written here, no libvirtd), a third request's
trial runs, the vendor records its three tests, the bureau allocates, and a fourth request's job
fails, each followed with `job watch`; the audit trail verifies (and a tampered one does not);
--json and --help work along the way."""
import hashlib
import json
import os
import re
import sqlite3
import stat
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cbtest import Broker, Checks, ctl, ctl_json  # noqa: E402
from cbworld import node_xml  # noqa: E402

c = Checks('workflow')


def text(p):
    return p.stdout.decode('utf-8', 'replace')


def err(p):
    return p.stderr.decode('utf-8', 'replace')


def png_1x1():
    """A real 1x1 grey PNG, so the broker's content check sees what the name claims."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 1, 1, 8, 0, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(b'\x00\x80')) + chunk(b'IEND', b''))


def write(path, data):
    with open(path, 'wb') as f:
        f.write(data)
    return path


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def states_of(history):
    return [(h['from'], h['to']) for h in history]


with Broker() as b:
    work = os.path.join(b.state_dir, 'work')
    os.makedirs(work)
    admin = b.admin_token
    admin_file = os.path.join(b.state_dir, 'admin.token')

    # ---- help and usage errors ----
    p = ctl(b, '--help')
    c.eq(p.returncode, 0, '--help exits 0')
    c.ok('request create' in text(p) and '--token-file' in text(p),
         '--help lists commands and global options')
    for cmd in (['request', 'create'], ['request', 'decide'], ['department', 'update'],
                ['account', 'create'], ['audit', 'verify'], ['health']):
        p = ctl(b, *cmd, '--help')
        c.eq(p.returncode, 0, f'{" ".join(cmd)} --help exits 0')
        c.ok(text(p).startswith('Usage: cloudbrokerctl') and 'Example:' in text(p)
             and '--help' in text(p), f'{" ".join(cmd)} --help has usage, options and an example')
    p = ctl(b, 'request', 'create', '--help')
    c.ok('--instance SPEC' in text(p) and '--justification' in text(p),
         'request create --help names its options')
    p = ctl(b, 'request', '--help')
    c.eq(p.returncode, 0, 'request --help exits 0')
    c.ok('request opinion' in text(p) and 'request decide' in text(p), 'group help lists verbs')
    p = ctl(b, 'help', 'audit', 'list')
    c.ok(p.returncode == 0 and '--object-type' in text(p), 'help audit list')
    p = ctl(b, 'frobnicate', check=False)
    c.eq(p.returncode, 2, 'unknown command exits 2')
    c.ok("unknown command 'frobnicate'" in err(p), 'unknown command is named')
    p = ctl(b, 'request', 'frobnicate', check=False)
    c.eq(p.returncode, 2, 'unknown verb exits 2')
    p = ctl(b, 'department', 'list', '--bogus', token=admin, check=False)
    c.eq(p.returncode, 2, 'unknown option exits 2')
    c.ok("unknown option '--bogus'" in err(p), 'unknown option is named')
    p = ctl(b, 'request', 'list', '--json', token=admin, check=False)
    c.eq(p.returncode, 2, 'a global option after the command exits 2')
    c.ok('global option' in err(p), 'and says where global options go')
    p = ctl(b, 'request', 'show', check=False, token=admin)
    c.eq(p.returncode, 2, 'missing argument exits 2')

    # ---- the broker ----
    p = ctl(b, 'health')
    c.ok(p.returncode == 0 and text(p).startswith('ok'), 'health needs no token')
    c.eq(ctl_json(b, 'health')['status'], 'ok', 'health --json')
    p = ctl(b, '--token-file', admin_file, 'whoami')
    c.ok('admin' in text(p), 'whoami with --token-file')

    # ---- admin: department and accounts ----
    d = ctl_json(b, 'department', 'create', '--code', 'civil-affairs', '--name', '民政局',
                 '--quota-vcpus', '32', '--quota-instances', '10', token=admin)
    dept = d['id']
    c.eq((d['code'], d['name'], d['quota']['vcpus'], d['quota']['instances']),
         ('civil-affairs', '民政局', 32, 10), 'department created with its quota')
    p = ctl(b, 'department', 'create', '--code', 'civil-affairs', '--name', 'again', token=admin,
            check=False)
    c.eq(p.returncode, 1, 'duplicate department exits 1')
    c.ok(re.search(r'^error: .+ \(field /code, HTTP 409, code duplicate\)$', err(p), re.M),
         f'API error format: {err(p)!r}')
    p = ctl(b, 'department', 'list', token=admin)
    c.ok('民政局' in text(p) and 'civil-affairs' in text(p), 'department list shows the department')
    d2 = ctl_json(b, 'department', 'update', str(dept), '--quota-vcpus', '64', token=admin)
    c.eq(d2['quota']['vcpus'], 64, 'department update changes the quota')

    dept_token_file = os.path.join(work, 'dept.token')
    p = ctl(b, 'account', 'create', '--name', 'civil-ops', '--role', 'department',
            '--department', str(dept), '--token-out', dept_token_file, token=admin)
    c.ok('written to' in text(p) and 'cbt_' not in text(p), 'token-out keeps the token off stdout')
    c.eq(stat.S_IMODE(os.stat(dept_token_file).st_mode), 0o600, 'token file mode 0600')
    with open(dept_token_file) as f:
        dept_token = f.read().strip()
    c.ok(dept_token.startswith('cbt_'), 'token file holds a token')

    r = ctl_json(b, 'account', 'create', '--name', 'bureau-rev', '--role', 'reviewer', token=admin)
    reviewer, reviewer_id = r['token'], r['account']['id']
    c.eq(r['account']['role'], 'reviewer', 'reviewer account created (--json has the token)')

    p = ctl(b, 'account', 'create', '--name', 'consult-co', '--role', 'consultant', token=admin)
    m = re.search(r'shown only this once.*\n\s+(cbt_\S+)', text(p))
    c.ok(m is not None, 'account create prints the token once, clearly')
    consultant = m.group(1) if m else ''
    consultants = ctl_json(b, 'account', 'list', '--role', 'consultant', token=admin)['items']
    c.eq([a['name'] for a in consultants], ['consult-co'], 'account list --role')
    consultant_id = consultants[0]['id'] if consultants else 0
    p = ctl(b, 'account', 'create', '--name', 'x', '--role', 'department', token=admin, check=False)
    c.eq(p.returncode, 2, 'department role without --department is a usage error')

    who = ctl_json(b, '--token-file', dept_token_file, 'whoami')
    c.eq((who['role'], who['department_id']), ('department', dept), 'whoami as the department')
    who = ctl_json(b, 'whoami', token=consultant)
    c.eq(who['role'], 'consultant', 'the printed consultant token works')

    # ---- department: system and request ----
    s = ctl_json(b, '--token-file', dept_token_file, 'system', 'create', '--name', '网上办事大厅',
                 '--category', 'website', '--protection-level', '3', '--description', 'online hall')
    system = s['id']
    c.eq((s['department_id'], s['category'], s['protection_level'], s['on_cloud']),
         (dept, 'website', 3, False), 'system registered for the department')
    p = ctl(b, 'system', 'list', token=dept_token)
    c.ok('网上办事大厅' in text(p), 'system list shows the system')
    c.ok(re.search(rf'^\s*{system}\s+{dept} 民政局\s+网上办事大厅\s', text(p), re.M),
         f'system list names the department beside its id: {text(p)!r}')
    p = ctl(b, 'account', 'list', '--role', 'department', token=admin)
    c.ok(re.search(rf'\sdepartment\s+{dept} 民政局\s', text(p)),
         f'account list names the department beside its id: {text(p)!r}')

    req = ctl_json(b, 'request', 'create', '--system', str(system),
                   '--instance', 'vcpus=2,memory=4096,disk=40,image=debian-12',
                   '--instance', 'vcpus=4,memory=8192,disk=100,image=debian-12',
                   '--justification', '政务服务扩容', token=dept_token)
    rid = req['id']
    c.eq((req['state'], req['kind'], len(req['history'])), ('draft', 'new', 1), 'draft created')
    c.eq(req['totals'], {'vcpus': 6, 'memory_mib': 12288, 'disk_gib': 140, 'instances': 2},
         'request totals')
    c.eq(len(req['resources']['instances']), 2, 'two instances')

    p = ctl(b, 'request', 'submit', str(rid), token=dept_token, check=False)
    c.eq(p.returncode, 1, 'submit without materials exits 1')
    for kind in ('construction_plan', 'performance_self_test', 'security_self_test'):
        c.ok(kind in err(p), f'the refusal names {kind}')
    c.ok('HTTP 422' in err(p) and 'materials_missing' in err(p), 'refusal has status and code')
    c.eq(ctl_json(b, 'request', 'show', str(rid), token=dept_token)['state'], 'draft',
         'still draft after the refusal')

    files = {
        'construction_plan': write(os.path.join(work, 'plan.pdf'),
                                   b'%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n'
                                   b'trailer\n%%EOF\n'),
        'performance_self_test': write(os.path.join(work, 'self-test.txt'),
                                       '性能自测: 200 req/s at p95 80 ms\n'.encode()),
        'security_self_test': write(os.path.join(work, 'security.png'), png_1x1()),
    }
    types = {'construction_plan': 'application/pdf', 'performance_self_test': 'text/plain',
             'security_self_test': 'image/png'}
    for kind, path in files.items():
        with open(path, 'rb') as f:
            data = f.read()
        m = ctl_json(b, 'request', 'upload', str(rid), kind, path, token=dept_token)
        c.eq((m['kind'], m['sha256'], m['size'], m['media_type'], m['filename']),
             (kind, sha256(data), len(data), types[kind], os.path.basename(path)),
             f'upload {kind}')
    p = ctl(b, 'request', 'upload', str(rid), 'other', os.path.join(work, 'plan.pdf'),
            '--type', 'image/png', token=dept_token, check=False)
    c.eq(p.returncode, 1, 'a PDF declared as PNG is refused')

    full = ctl_json(b, 'request', 'show', str(rid), token=dept_token)
    c.eq(sorted(m['kind'] for m in full['materials']), sorted(files), 'three materials attached')
    c.eq(full['check']['ok'], True, 'pre-review check passes')
    p = ctl(b, 'request', 'show', str(rid), token=dept_token)
    c.ok(re.search(r'materials_complete\s+ok', text(p)) and 'Materials:' in text(p)
         and 'History:' in text(p) and 'Opinions:' in text(p), 'request show is readable')

    r = ctl_json(b, 'request', 'submit', str(rid), '--comment', 'please review', token=dept_token)
    c.eq((r['state'], len(r['history']), r['history'][-1]['comment']),
         ('submitted', 2, 'please review'), 'submitted')

    # ---- bureau: return ----
    p = ctl(b, 'request', 'decide', str(rid), 'return', token=reviewer, check=False)
    c.eq(p.returncode, 2, 'return without --comment is a usage error')
    p = ctl(b, 'request', 'decide', str(rid), 'approve', token=dept_token, check=False)
    c.ok(p.returncode == 1 and 'HTTP 403' in err(p), 'a department cannot decide')
    r = ctl_json(b, 'request', 'decide', str(rid), 'return', '--comment',
                 'explain the 4 vCPU instance', token=reviewer)
    c.eq((r['state'], len(r['history']), r['history'][-1]['comment'], r['history'][-1]['role']),
         ('returned', 3, 'explain the 4 vCPU instance', 'reviewer'), 'returned with a comment')

    # ---- department: update and resubmit ----
    p = ctl(b, 'request', 'submit', str(rid), token=dept_token, check=False)
    c.ok(p.returncode == 1 and 'resubmit' in err(p),
         'submit of a returned request points to resubmit')
    version = r['version']
    r = ctl_json(b, 'request', 'update', str(rid),
                 '--instance', 'vcpus=2,memory=4096,disk=40,image=debian-12,count=2',
                 '--justification', '两台 2 vCPU 即可', '--restart-allowed', 'yes',
                 token=dept_token)
    c.eq((r['state'], r['totals']['vcpus'], r['totals']['instances'], r['restart_allowed'],
          r['justification']), ('returned', 4, 2, True, '两台 2 vCPU 即可'), 'request updated')
    c.ok(r['version'] > version, 'version increased')
    p = ctl(b, 'request', 'resubmit', str(rid), '--comment', 'smaller now', token=dept_token)
    c.ok('returned → submitted' in text(p), 'resubmit prints the transition')
    r = ctl_json(b, 'request', 'show', str(rid), token=reviewer)
    c.eq((r['state'], len(r['history'])), ('submitted', 4), 'resubmitted')

    # ---- bureau: consultant, opinion, approval ----
    r = ctl_json(b, 'request', 'assign', str(rid), '--consultant', str(consultant_id),
                 token=reviewer)
    c.eq(r['consultant_id'], consultant_id, 'consultant assigned')
    p = ctl(b, 'request', 'assign', str(rid), '--consultant', str(reviewer_id), token=reviewer,
            check=False)
    c.ok(p.returncode == 1 and 'HTTP 422' in err(p), 'only a consultant can be assigned')
    listed = ctl_json(b, 'request', 'list', token=consultant)['items']
    c.eq([x['id'] for x in listed], [rid], 'the consultant sees the assigned request')
    r = ctl_json(b, 'request', 'opinion', str(rid), '--recommend', 'approve', '--comment',
                 '规模合理', token=consultant)
    c.eq(len(r['opinions']), 1, 'one opinion')
    op = r['opinions'][0] if r['opinions'] else {}
    c.eq((op.get('recommendation'), op.get('comment'), op.get('role'), op.get('account_id')),
         ('approve', '规模合理', 'consultant', consultant_id), 'the opinion as recorded')
    p = ctl(b, 'request', 'decide', str(rid), 'approve', token=consultant, check=False)
    c.ok(p.returncode == 1 and 'HTTP 403' in err(p), 'a consultant decides nothing')
    p = ctl(b, 'request', 'decide', str(rid), 'approve', token=reviewer)
    c.ok('submitted → approved' in text(p), 'approve prints the transition')
    r = ctl_json(b, 'request', 'show', str(rid), token=reviewer)
    c.eq(r['state'], 'approved', 'request approved')
    c.eq(states_of(r['history']), [(None, 'draft'), ('draft', 'submitted'),
                                   ('submitted', 'returned'), ('returned', 'submitted'),
                                   ('submitted', 'approved')], 'the whole history')
    c.eq(len(r['opinions']), 1, 'opinions kept after the decision')
    p = ctl(b, 'request', 'upload', str(rid), 'other', files['construction_plan'], token=dept_token,
            check=False)
    c.ok(p.returncode == 1 and 'HTTP 409' in err(p), 'no uploads after approval')

    # ---- materials come back byte for byte ----
    for kind, path in files.items():
        with open(path, 'rb') as f:
            want = f.read()
        out = os.path.join(work, f'download-{kind}')
        ctl(b, 'request', 'download', str(rid), kind, '-o', out, token=reviewer)
        with open(out, 'rb') as f:
            c.ok(f.read() == want, f'{kind} downloads byte-identical to a file')
        p = ctl(b, 'request', 'download', str(rid), kind, token=consultant)
        c.ok(p.stdout == want, f'{kind} downloads byte-identical to stdout')
    p = ctl(b, 'request', 'download', str(rid), 'backup_proof', '-o',
            os.path.join(work, 'none'), token=reviewer, check=False)
    c.ok(p.returncode == 1 and not os.path.exists(os.path.join(work, 'none')),
         'a missing material leaves no file behind')

    # ---- a second request, rejected ----
    r2 = ctl_json(b, 'request', 'create', '--system', str(system), '--instance',
                  'vcpus=8,memory=16384,disk=200,image=debian-12', '--justification',
                  'second site', token=dept_token)
    rid2 = r2['id']
    for kind, path in files.items():
        ctl(b, 'request', 'upload', str(rid2), kind, path, token=dept_token)
    ctl(b, 'request', 'submit', str(rid2), token=dept_token)
    r2 = ctl_json(b, 'request', 'decide', str(rid2), 'reject', '--comment', 'no second site',
                  token=reviewer)
    c.eq((r2['state'], len(r2['history']), r2['history'][-1]['comment'], r2['next_states']),
         ('rejected', 3, 'no second site', []), 'second request rejected and final')
    p = ctl(b, 'request', 'decide', str(rid2), 'approve', token=reviewer, check=False)
    c.ok(p.returncode == 1 and 'HTTP 409' in err(p) and 'invalid_transition' in err(p),
         'a rejected request cannot be approved')
    listed = ctl_json(b, 'request', 'list', '--state', 'rejected', token=reviewer)['items']
    c.eq([x['id'] for x in listed], [rid2], 'request list --state rejected')
    p = ctl(b, 'request', 'list', token=reviewer)
    c.ok(re.search(rf'^\s*{rid}\s+new\s+approved\s+{dept} 民政局\s+{system} 网上办事大厅\s',
                   text(p), re.M) and
         re.search(rf'^\s*{rid2}\s+new\s+rejected', text(p), re.M),
         f'request list table, with the department and system named: {text(p)!r}')
    p = ctl(b, 'request', 'show', str(rid2), token=reviewer)
    c.ok(re.search(r'^History:\n(.*\n)*?.*\brejected\s+reviewer\s+\d+ \S+', text(p), re.M),
         f'request show: the history names the account beside its id: {text(p)!r}')

    # ---- hypervisors: hosts, trial, allocation, jobs (libvirt's test driver) ----
    # The trial hosts have 2 GiB of memory: the approved request above (4 GiB instances) never
    # fits and stays approved; the one-instance request below (1 GiB) does.
    r = ctl_json(b, 'account', 'create', '--name', 'cloud-vendor', '--role', 'vendor',
                 token=admin)
    vendor = r['token']
    for cmd in (['host', 'add'], ['host', 'update'], ['allocation', 'show'], ['job', 'watch'],
                ['request', 'trial-result'], ['request', 'allocate'], ['event', 'list']):
        p = ctl(b, *cmd, '--help')
        c.ok(p.returncode == 0 and text(p).startswith('Usage: cloudbrokerctl') and
             'Example:' in text(p), f'{" ".join(cmd)} --help')
    p = ctl(b, '--help')
    c.ok(all(f'{g} ' in text(p) for g in ('host add', 'allocation restore', 'job watch',
                                          'event list', 'request trial-result')),
         '--help lists the hypervisor commands')
    p = ctl(b, 'host', 'add', '--name', 'x', '--uri', 'test:///default', '--pool', 'staging',
            token=vendor, check=False)
    c.ok(p.returncode == 2 and 'trial, production' in err(p), 'host add --pool is checked')
    p = ctl(b, 'host', 'add', '--name', 'x', '--uri', 'test:///default', '--pool', 'trial',
            '--cpu-ratio', '0', token=vendor, check=False)
    c.eq(p.returncode, 2, 'host add --cpu-ratio 0 is a usage error')
    p = ctl(b, 'host', 'add', '--name', 'trial-1', '--pool', 'trial',
            '--uri', node_xml(os.path.join(work, 'trial-1.xml'), 2048), token=vendor)
    c.ok("Host 1 'trial-1' registered" in text(p) and re.search(r'^Pool:\s+trial$', text(p), re.M),
         f'host add prints the host: {text(p)[:300]!r}')
    h = ctl_json(b, 'host', 'add', '--name', 'prod-1', '--pool', 'production', '--cpu-ratio',
                 '2', '--uri', node_xml(os.path.join(work, 'prod-1.xml'), 16384), token=vendor)
    prod1 = h['id']
    c.eq((h['name'], h['pool'], h['overcommit']['cpu'], h['overcommit']['from_policy']),
         ('prod-1', 'production', 2.0, False), 'host add --json, with its own cpu ratio')
    p = ctl(b, 'host', 'add', '--name', 'trial-1', '--pool', 'trial', '--uri', 'test:///default',
            token=vendor, check=False)
    c.ok(p.returncode == 1 and 'HTTP 409' in err(p), 'a second host of that name is refused')
    p = ctl(b, 'host', 'add', '--name', 'y', '--pool', 'trial', '--uri', 'test:///default',
            token=dept_token, check=False)
    c.ok(p.returncode == 1 and 'HTTP 403' in err(p), 'a department registers no host')
    for _ in range(100):
        hosts = ctl_json(b, 'host', 'list', token=reviewer)['items']
        if all(x['connection']['state'] == 'connected' for x in hosts):
            break
        time.sleep(0.1)
    c.eq([(x['name'], x['connection']['state'], x['capacity']['cpus'],
           x['capacity']['memory_mib']) for x in hosts],
         [('trial-1', 'connected', 8, 2048), ('prod-1', 'connected', 8, 16384)],
         'host list: both hosts connected, capacity from the test driver')
    p = ctl(b, 'host', 'list', token=reviewer)
    c.ok(re.search(r'^\s*1\s+trial-1\s+trial\s+connected\s+8/2048/\d+\s+0/0/0\s+32/2048/\d+\s+0'
                   r'\s+yes\s+no$', text(p), re.M), f'host list table: {text(p)!r}')
    c.eq([x['name'] for x in ctl_json(b, 'host', 'list', '--pool', 'production',
                                      token=vendor)['items']], ['prod-1'], 'host list --pool')
    p = ctl(b, 'host', 'show', str(prod1), token=reviewer)
    c.ok(re.search(r'^Connection:\s+connected since ', text(p), re.M) and
         re.search(r'^\s+free\s+16\s+16384\s', text(p), re.M), f'host show: {text(p)!r}')
    h = ctl_json(b, 'host', 'update', str(prod1), '--cpu-ratio', 'default', '--maintenance', 'on',
                 token=vendor)
    c.eq((h['overcommit']['cpu'], h['overcommit']['from_policy'], h['maintenance']),
         (4.0, True, True), 'host update: ratio back to the policy, maintenance on')
    h = ctl_json(b, 'host', 'update', str(prod1), '--maintenance', 'off', token=vendor)
    c.eq(h['maintenance'], False, 'host update: maintenance off')
    p = ctl(b, 'host', 'update', str(prod1), token=vendor, check=False)
    c.eq(p.returncode, 2, 'host update with nothing to change is a usage error')
    p = ctl(b, 'host', 'update', str(prod1), '--enabled', 'maybe', token=vendor, check=False)
    c.eq(p.returncode, 2, 'host update --enabled maybe is a usage error')

    # The trial waits while its only host is in maintenance, and runs once it is back.
    ctl(b, 'host', 'update', '1', '--maintenance', 'on', token=vendor)
    r3 = ctl_json(b, 'request', 'create', '--system', str(system), '--instance',
                  'vcpus=1,memory=1024,disk=10,image=debian-12', '--justification', 'notices',
                  token=dept_token)
    rid3 = r3['id']
    for kind, path in files.items():
        ctl(b, 'request', 'upload', str(rid3), kind, path, token=dept_token)
    ctl(b, 'request', 'submit', str(rid3), token=dept_token)
    r3 = ctl_json(b, 'request', 'decide', str(rid3), 'approve', token=reviewer)
    c.eq([(j['kind'], j['error']) for j in r3['jobs']], [('provision', None)],
         'approval starts the trial job')
    job3 = r3['jobs'][0]['id'] if r3['jobs'] else 0
    p = ctl(b, 'job', 'watch', str(job3), '--timeout', '1.5', '--interval', '0.2',
            token=dept_token, check=False)
    c.ok(p.returncode == 1 and 'still running after 1.5 s' in err(p) and
         re.search(r'^step 1/5 reserve: waiting to retry \(\d attempts? so far\): no host can '
                   r'take instance #0 of the request: trial-1 refused by maintenance', text(p), re.M),
         f'job watch shows why the job waits, and gives up at --timeout: {text(p)!r} {err(p)!r}')
    p = ctl(b, 'request', 'show', str(rid3), token=dept_token)
    c.ok(re.search(r'^Trial:\n  Environment:\s+allocation \d+', text(p), re.M) and
         'set when the environment is running' in text(p) and
         re.search(r'^Jobs:\n.*\n\s+\d+\s+provision\s+running', text(p), re.M),
         f'request show: the trial not yet running, its job: {text(p)!r}')
    ctl(b, 'host', 'update', '1', '--maintenance', 'off', token=vendor)
    p = ctl(b, 'job', 'watch', str(job3), '--interval', '0.2', '--timeout', '60',
            token=dept_token, check=False)
    lines = text(p).splitlines()
    c.ok(p.returncode == 0 and any(re.fullmatch(r'step 4/5 start \(instance 3 cb-\d+-0\): done', x)
                                   for x in lines) and
         lines[-1] == f'job {job3} (provision) done: 5 of 5 steps done (100%)',
         f'job watch follows the job to its end: {text(p)!r} {err(p)!r}')
    r3 = ctl_json(b, 'request', 'show', str(rid3), token=vendor)
    c.ok(r3['state'] == 'in_trial' and r3['trial']['deadline'], 'the trial runs, with a deadline')
    trial_alloc = r3['trial']['allocation_id']
    a = ctl_json(b, 'allocation', 'show', str(trial_alloc), token=dept_token)
    c.eq((a['purpose'], a['state'], [(i['host']['name'], i['state']) for i in a['instances']]),
         ('trial', 'active', [('trial-1', 'running')]), 'the trial environment, as allocation')

    # The vendor's three tests.
    report = write(os.path.join(work, 'function-test.txt'), b'function test: all cases pass\n')
    p = ctl(b, 'request', 'trial-result', str(rid3), '--test', 'function', '--result', 'pass',
            '--report-file', report, token=vendor)
    c.ok(f'sha256 {sha256(open(report, "rb").read())}' in text(p) and
         '1 of 3 tests recorded' in text(p), f'trial-result uploads the report: {text(p)!r}')
    for args, why in ((['--report-file', report, '--report', '0' * 64], 'both reports'),
                      ([], 'no report'), (['--report', 'abc'], 'a report that is no SHA-256')):
        p = ctl(b, 'request', 'trial-result', str(rid3), '--test', 'security', '--result', 'pass',
                *args, token=vendor, check=False)
        c.eq(p.returncode, 2, f'trial-result with {why} is a usage error')
    p = ctl(b, 'request', 'trial-result', str(rid3), '--test', 'speed', '--result', 'pass',
            '--report', '0' * 64, token=vendor, check=False)
    c.eq(p.returncode, 2, 'trial-result --test speed is a usage error')
    p = ctl(b, 'request', 'trial-result', str(rid3), '--test', 'performance', '--result', 'pass',
            '--report', 'f' * 64, token=vendor, check=False)
    c.ok(p.returncode == 1 and 'HTTP 422' in err(p) and 'unknown_reference' in err(p),
         'a report that was never uploaded is refused')
    r = ctl_json(b, 'request', 'trial-result', str(rid3), '--test', 'performance', '--result',
                 'pass', '--report', sha256(open(report, 'rb').read()).upper(), '--comment',
                 'p95 under 100 ms', token=vendor)
    c.eq([(t['test'], t['result'], t['comment']) for t in r['trial']['results']],
         [('function', 'pass', ''), ('performance', 'pass', 'p95 under 100 ms')],
         'trial-result --report names an uploaded report (either case)')
    p = ctl(b, 'request', 'trial-result', str(rid3), '--test', 'security', '--result', 'pass',
            '--report-file', write(os.path.join(work, 'security-test.txt'), b'no findings\n'),
            token=vendor)
    c.ok('3 of 3 tests recorded' in text(p) and 'in_trial → trial_passed' in text(p),
         f'the third pass ends the trial: {text(p)!r}')
    p = ctl(b, 'request', 'show', str(rid3), token=reviewer)
    c.ok(re.search(r'^  Results:\n\s+TEST\s+RESULT.*\n\s+function\s+pass', text(p), re.M),
         f'request show lists the trial results: {text(p)!r}')

    # Allocation.
    p = ctl(b, 'request', 'allocate', str(rid3), token=dept_token, check=False)
    c.ok(p.returncode == 1 and 'HTTP 403' in err(p), 'a department allocates nothing')
    p = ctl(b, 'request', 'allocate', str(rid3), token=reviewer)
    m = re.search(r'allocation (\d+) is being provisioned by job (\d+)', text(p))
    c.ok(m is not None, f'request allocate names the allocation and the job: {text(p)!r}')
    alloc, job = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    final = ctl_json(b, 'job', 'watch', str(job), '--interval', '0.2', '--timeout', '60',
                     token=reviewer)
    c.eq((final['kind'], final['state'], final['progress']['percent'],
          [s['state'] for s in final['steps']]),
         ('provision', 'done', 100, ['done'] * 5), 'job watch --json prints the final job')
    p = ctl(b, 'allocation', 'show', str(alloc), token=dept_token)
    c.ok(re.search(rf'^Allocation {alloc} \(production\): active$', text(p), re.M) and
         re.search(r'^\s+cb-\d+-0\s+prod-1\s+[0-9a-f-]{36}\s+1/2\s+1024/2048\s+10\s+debian-12'
                   r'\s+running\s', text(p), re.M), f'allocation show: {text(p)!r}')
    c.ok(re.search(rf'^\s+Department:\s+{dept} 民政局$', text(p), re.M) and
         re.search(rf'^\s+System:\s+{system} 网上办事大厅$', text(p), re.M),
         'allocation show names the department and the system')
    listed = ctl_json(b, 'allocation', 'list', '--purpose', 'production', token=dept_token)
    c.eq([(x['id'], x['state']) for x in listed['items']], [(alloc, 'active')],
         'allocation list --purpose production')
    c.eq([(x['department_name'], x['system_name']) for x in listed['items']],
         [('民政局', '网上办事大厅')], 'allocation list: department_name and system_name')
    p = ctl(b, 'allocation', 'list', '--purpose', 'production', token=dept_token)
    c.ok(re.search(rf'^\s*{alloc}\s+{dept} 民政局\s+{system} 网上办事大厅\s', text(p), re.M),
         f'allocation list names the department and the system: {text(p)!r}')
    p = ctl(b, 'allocation', 'list', '--state', 'bogus', token=reviewer, check=False)
    c.eq(p.returncode, 2, 'allocation list --state is checked')
    c.eq(ctl_json(b, 'request', 'show', str(rid3), token=dept_token)['state'], 'allocated',
         'the request is allocated')
    for verb in ('restore', 'purge'):
        p = ctl(b, 'allocation', verb, str(alloc), token=reviewer, check=False)
        c.ok(p.returncode == 1 and 'HTTP 409' in err(p) and 'invalid_state' in err(p),
             f'allocation {verb} of an active allocation is refused')

    # A job that fails: the only trial host with room has no base image.
    ctl(b, 'host', 'add', '--name', 'trial-2', '--pool', 'trial', '--uri',
        node_xml(os.path.join(work, 'trial-2.xml'), 2048, base=False), token=vendor)
    ctl(b, 'host', 'update', '1', '--maintenance', 'on', token=vendor)
    for _ in range(100):
        if ctl_json(b, 'host', 'show', '3', token=vendor)['connection']['state'] == 'connected':
            break
        time.sleep(0.1)
    r4 = ctl_json(b, 'request', 'create', '--system', str(system), '--instance',
                  'vcpus=1,memory=1024,disk=10,image=debian-12', '--justification', 'mail',
                  token=dept_token)
    for kind, path in files.items():
        ctl(b, 'request', 'upload', str(r4['id']), kind, path, token=dept_token)
    ctl(b, 'request', 'submit', str(r4['id']), token=dept_token)
    r4 = ctl_json(b, 'request', 'decide', str(r4['id']), 'approve', token=reviewer)
    job4 = r4['jobs'][0]['id'] if r4['jobs'] else 0
    p = ctl(b, 'job', 'watch', str(job4), '--interval', '0.2', '--timeout', '60',
            token=reviewer, check=False)
    c.ok(p.returncode == 1 and re.search(rf'^error: job {job4} \(provision\) failed: .*base '
                                         r"volume 'debian-12.qcow2' not found", err(p), re.M)
         and re.search(r'^step 2/5 create_volume \(instance \d+ cb-\d+-0\): error: ', text(p),
                       re.M),
         f'job watch of a failing job: exit 1, the error printed: {text(p)!r} {err(p)!r}')
    p = ctl(b, '--json', 'job', 'watch', str(job4), token=reviewer, check=False)
    c.ok(p.returncode == 1 and json.loads(text(p))['state'] == 'error',
         'job watch --json of a failed job: exit 1, the final document')
    c.eq(ctl_json(b, 'request', 'show', str(r4['id']), token=reviewer)['state'], 'failed',
         'the request of the failed job is failed')
    p = ctl(b, 'job', 'show', str(job4), token=reviewer)
    c.ok(re.search(rf'^Job {job4} \(provision\): error$', text(p), re.M) and
         re.search(r'^\s+2\s+create_volume\s+\d+ cb-\d+-0\s+\d+ trial-2\s+-\s+error\s+1\s',
                   text(p), re.M),
         f'job show: {text(p)!r}')
    jobs = ctl_json(b, 'job', 'list', '--request', str(rid3), token=reviewer)['items']
    c.eq([j['kind'] for j in jobs][:1] + [j['kind'] for j in jobs][2:],
         ['provision', 'provision'], 'job list --request: the trial and the allocation')
    p = ctl(b, 'job', 'list', '--request', str(rid3), token=reviewer)
    c.ok(re.search(rf'^\s*{jobs[0]["id"]}\s+provision\s+done\s+{rid3}\s+\d+\s+{system} 网上办事大厅\s',
                   text(p), re.M), f'job list names the system: {text(p)!r}')
    c.eq([j['id'] for j in ctl_json(b, 'job', 'list', '--state', 'error', '--allocation',
                                    str(r4['trial']['allocation_id']), token=reviewer)['items']],
         [job4], 'job list --state --allocation')
    p = ctl(b, 'job', 'list', '--state', 'bogus', token=reviewer, check=False)
    c.eq(p.returncode, 2, 'job list --state is checked')
    p = ctl(b, 'job', 'watch', '999', token=reviewer, check=False)
    c.ok(p.returncode == 1 and 'HTTP 404' in err(p), 'job watch of a missing job')
    p = ctl(b, 'event', 'list', '--open', token=vendor)
    c.eq(p.returncode, 0, 'event list --open')
    p = ctl(b, 'event', 'list', '--kind', 'bogus', token=vendor, check=False)
    c.eq(p.returncode, 2, 'event list --kind is checked')
    p = ctl(b, 'event', 'list', token=dept_token, check=False)
    c.ok(p.returncode == 1 and 'HTTP 403' in err(p), 'a department reads no events')

    # ---- the audit trail ----
    p = ctl(b, 'audit', 'verify', token=reviewer)
    c.ok(p.returncode == 0 and 'intact' in text(p), 'audit verify passes')
    v = ctl_json(b, 'audit', 'verify', token=reviewer)
    c.ok(v['ok'] is True and v['records'] > 20, 'audit verify --json')
    audit = ctl_json(b, 'audit', 'list', token=reviewer)
    actions = [a['action'] for a in audit['items']]
    c.eq(len(audit['items']), v['records'], 'audit list fetches every record')
    c.eq(audit['next'], None, 'no more pages')
    for action in ('department.create', 'department.update', 'account.create', 'system.create',
                   'request.create', 'material.upload', 'request.submit', 'request.decision',
                   'request.update', 'request.resubmit', 'request.assign', 'request.opinion'):
        c.ok(action in actions, f'audit shows {action}')
    mine = ctl_json(b, 'audit', 'list', '--object-type', 'request', '--object-id', str(rid),
                    token=reviewer)['items']
    c.ok(mine and all(a['object_type'] == 'request' and a['object_id'] == rid for a in mine),
         'audit list filters by object')
    c.eq([a['action'] for a in mine if a['action'] == 'request.decision'],
         ['request.decision'] * 2, 'two decisions on the first request')
    paged, after = [], None
    while True:
        args = ['audit', 'list', '--limit', '7'] + (['--after', str(after)] if after else [])
        page = ctl_json(b, *args, token=reviewer)
        paged += page['items']
        c.ok(len(page['items']) <= 7, 'a page holds at most --limit records')
        after = page['next']
        if after is None:
            break
    c.eq([a['seq'] for a in paged], [a['seq'] for a in audit['items']], 'paging with --after')
    p = ctl(b, 'audit', 'list', '--action', 'request.opinion', token=reviewer)
    c.ok('request.opinion' in text(p) and 'consult-co' in text(p), 'audit list table')

    # A record changed behind the broker's back breaks the chain: exit 1, record shown.
    con = sqlite3.connect(b.db_path, timeout=10)
    with con:
        con.execute("UPDATE audit SET detail = '{\"tampered\":true}' WHERE seq = 3")
    con.close()
    p = ctl(b, 'audit', 'verify', token=reviewer, check=False)
    c.eq(p.returncode, 1, 'audit verify exits 1 on a broken chain')
    c.ok('BROKEN at record 3' in text(p) and 'tampered' in text(p),
         f'the first bad record is shown: {text(p)[:200]!r}')

c.done()
