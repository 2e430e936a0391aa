#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The console's money pages (issue 12) in Debian's Chromium against a real cloudbrokerd: the
monthly cost statement (#/reports/costs) and the vendor's service-quality scorecard
(#/reports/service-quality), each with its trend by month.

Fixture, all through the API: libvirt's test driver as the trial and the production host
(assessgen.Fleet), two departments (民政局 with two instances, 交通局 with one) taken through the
whole workflow to an active allocation, so this month's statement is not empty; prices high
enough that the seconds the test lasts are money; a service fee of 100,000 yuan; the trial
lead-time limit set to 0 h, so that indicator is missed and the vendor can explain it.

console-money.mjs then checks, in Chinese and in English: each page renders the figures of the
same report read through the API (totals, fee, deduction, fee after), names (departments,
systems, instances) and no bare ids (every '#N' is inside a link), the evidence linked to its
request, the download links answer, the trend chart is drawn with a row per month, axe-core finds
no serious or critical violation, every control is reachable by Tab, and the screenshots at
1280x800 and 390x844 rendered with nothing wider than the window (saved in
<build>/console-shots/money-*.png). The department sees only its own statement; the vendor
explains the missed indicator on the page and the explanation shows with its name.

Exit 77 (skipped) without chromium, node, the built console or console/node_modules."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))
import assessgen as ag  # noqa: E402
import cbtest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = shutil.which('chromium')
NODE = shutil.which('node')
CONSOLE_BUILT = os.path.join(cbtest.BUILD, 'console', 'index.html')
MODULES = os.path.join(cbtest.SOURCE, 'console', 'node_modules')
PASSWORD = 'Console-Money-2026'
# Yuan: production a vCPU-second 1 yuan, trial a tenth: the seconds the test lasts are money.
PRICING = {
    'currency': 'CNY',
    'hours_per_month': 730,
    'prices': [
        {'from': '2020-01-01', 'purpose': 'production', 'vcpu_hour': 3600,
         'memory_gib_hour': 1800, 'disk_gib_month': 1000000},
        {'from': '2020-01-01', 'purpose': 'trial', 'vcpu_hour': 360, 'memory_gib_hour': 180,
         'disk_gib_month': 100000},
    ],
    'service_fee': [{'from': '2020-01-01', 'monthly': 100000}],
}


def skip(why):
    print(f'SKIP: {why}')
    sys.exit(77)


def main():
    ck = cbtest.Checks('test-console-money')
    if not CHROMIUM:
        skip('chromium is not installed (apt-get install chromium)')
    if not NODE:
        skip('node is not installed')
    if not os.path.exists(CONSOLE_BUILT):
        skip(f'the console is not built ({CONSOLE_BUILT}; npm ci in console/, then ninja)')
    for m in ('playwright-core', 'axe-core'):
        if not os.path.isdir(os.path.join(MODULES, m)):
            skip(f'console/node_modules/{m} is missing (npm ci in console/)')
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix='cb-console-money-')
    pol = ag.policy_dir(os.path.join(work, 'policies'))
    with open(os.path.join(pol, 'pricing.json'), 'w') as f:
        json.dump(PRICING, f)
    with open(os.path.join(pol, 'service-quality.json')) as f:
        sla = json.load(f)
    sla['indicators']['trial_lead_time']['limit_hours'] = 0
    with open(os.path.join(pol, 'service-quality.json'), 'w') as f:
        json.dump(sla, f)
    b = cbtest.Broker(policy_dir=pol)
    try:
        b.start()
        run(ck, b, work)
    except Exception:
        traceback.print_exc()
        ck.ok(False, 'the test ran to its end without an exception')
    finally:
        b.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f'runtime: {time.monotonic() - t0:.1f} s', flush=True)
    ck.done()


def run(ck, b, work):
    fleet = ag.Fleet(b, work)
    mz = fleet.department('mz', '民政局')
    jt = fleet.department('jt', '交通局')
    sys_mz = fleet.system('mz', '婚姻登记管理系统')
    sys_jt = fleet.system('jt', '公交调度平台')
    r_mz = fleet.submit_new('mz', sys_mz, [(2, 1024), (1, 512)])
    r_jt = fleet.submit_new('jt', sys_jt, [(1, 512)])
    allocs = fleet.through_workflow([r_mz, r_jt])
    ck.ok(all(allocs.values()), 'both allocations are active')
    tokens = {'mz': mz['token'], 'reviewer': fleet.reviewer, 'vendor': fleet.vendor,
              'auditor': fleet.auditor}
    accounts = {}
    for key, tok in tokens.items():
        cbtest.set_password(b, tok, PASSWORD)
        who = b.get('/v1/whoami', token=tok).json()
        accounts[key] = {'name': who['name'], 'token': tok}
    month = time.strftime('%Y-%m', time.gmtime())
    sq = b.get(f'/v1/reports/service-quality?month={month}', token=fleet.reviewer).json()
    trial = [x for x in sq['indicators'] if x['id'] == 'trial_lead_time'][0]
    ck.eq(trial['status'], 'missed', 'the fixture: the trial lead time is missed (limit 0 h)')
    cfg = {
        'base': b.url, 'password': PASSWORD, 'accounts': accounts, 'month': month,
        'departments': {'mz': {'id': mz['id'], 'name': mz['name']},
                        'jt': {'id': jt['id'], 'name': jt['name']}},
        'systems': {'mz': '婚姻登记管理系统', 'jt': '公交调度平台'},
        'instances': {code: [i['name'] for i in allocs[rid]['instances']]
                      for code, rid in (('mz', r_mz), ('jt', r_jt))},
        'allocations': {'mz': allocs[r_mz]['id'], 'jt': allocs[r_jt]['id']},
        'requests': {'mz': r_mz, 'jt': r_jt},
        'shots': os.path.join(cbtest.BUILD, 'console-shots'),
    }
    cfg_path = os.path.join(work, 'config.json')
    with open(cfg_path, 'w') as f:
        json.dump(cfg, f)
    t = time.monotonic()
    p = subprocess.run([NODE, os.path.join(HERE, 'console-money.mjs'), cfg_path],
                       env=dict(os.environ, CB_SOURCE_DIR=cbtest.SOURCE), timeout=300,
                       capture_output=True, text=True)
    sys.stdout.write(p.stdout)
    sys.stdout.write(p.stderr)
    lines = [x for x in p.stdout.splitlines() if x.strip()]
    print(f'== the browser checks: exit {p.returncode} in {time.monotonic() - t:.0f} s', flush=True)
    ck.eq(p.returncode, 0, f'the browser checks pass ({lines[-1] if lines else ""})')

    # What the vendor typed on the page is in the scorecard, audited, with its name.
    sq = b.get(f'/v1/reports/service-quality?month={month}', token=fleet.auditor).json()
    trial = [x for x in sq['indicators'] if x['id'] == 'trial_lead_time'][0]
    ck.eq([(e['text'], e['account_name']) for e in trial['explanations']],
          [('试运行环境镜像同步慢 <b>not bold</b>', accounts['vendor']['name'])],
          'the explanation made on the page is in the scorecard with the vendor\'s name')
    r = b.get('/v1/audit?action=sla.explanation&limit=10', token=fleet.auditor)
    ck.ok(r.status == 200 and len(r.json()['items']) == 1,
          f'the explanation is audited ({r.status})')


if __name__ == '__main__':
    main()
