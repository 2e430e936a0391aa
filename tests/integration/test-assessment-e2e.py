#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Findings end to end on real QEMU guests (software emulation), with a test policy of minutes.

One allocation on a libvirtd of the test's own (cbvirt.PrivateLab) holds three 1 MiB
boot-sector guests, metered by the real cloudbroker-agent (a reading every second, 10 s
windows) and judged by the real broker over windows of W seconds (policies/assessment.json
with every window set to W, evidence age 60 s):

  halt   1 vCPU, 64 MiB  halts (f4 eb fd)                 -> idle
  spin4  4 vCPUs, 64 MiB spins its first vCPU (eb fe)     -> over-provisioned, 2 vCPUs
  spin1  1 vCPU, 64 MiB  spins its only vCPU              -> no idle, no over-provisioned

Clean measurements. The host has 2 CPUs (and is shared), and two spinners on it would each
get less than a core, so the spinners run one after the other: phase 1 runs spin4 while spin1
is paused, phase 2 runs spin1 while spin4 is paused. A paused domain has no readings, so the
agent sends no windows for it: its coverage in the next run is 0 and the run leaves it (and
its findings) alone ("insufficient evidence"). Each phase lasts W + 25 s, so a run's window
holds the running guest only and no boot. The QEMU processes of this test's own libvirtd get
nice -20 (as test-metering-agent does) so that a spinning vCPU gets its core on a busy host.
The test still measures what each spinner got (the kernel's accounting of the QEMU process,
/proc/PID/stat) and computes every expectation from the measured figures:

  - the p95 a finding states is recomputed here from the windows GET /v1/instances/{id}/usage
    returns for the finding's window, by the broker's histogram rule (1 % bins, the bin's
    upper edge, nearest rank);
  - the recommendation is max(1, ceil(p95 cores x 1.2)) (moderate mode, 20 % headroom), which
    is 2 vCPUs whenever the 4-vCPU spinner got more than 0.834 of a core at p95; the issue's
    "2 vCPUs" is asserted when the kernel says it got at least 0.85 of a core, and reported
    as contention otherwise.

The 1-vCPU spinner and the under-provisioned rule. The issue says both "under-provisioned:
p95 CPU > 90 %" and "a 1-vCPU spinning guest gets no finding". A saturated 1-vCPU guest has a
p95 of ~100 %, so the first rule fires on it: the broker records an under_provisioned finding
(recommended 2 vCPUs). This test asserts what the rules imply: no idle and no
over-provisioned finding for spin1, and an under_provisioned finding exactly when its
measured p95 utilization is above 90 %.

Then the findings' life: the evidence (window, coverage >= 0.8, avg/p95/max, the rule); the
pre-review check of a new request lists the open idle and over-provisioned findings (rule
open_findings); the operations report lists them with their right-sizing; acknowledge ->
change-request (a draft change request pre-filled with the recommended size, fetched with GET;
its own check shows the findings too); dismiss with a reason (and not without one); a
dismissed finding is not raised again by the next run; another department sees none of it.
"""
import calendar
import math
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402
import cbvirt  # noqa: E402

W = 120          # every rule's window (seconds)
PHASE = W + 25   # how long each spinner runs alone before a run
WINDOW = 10      # the agent's window
INTERVAL = 1     # the agent's reading interval
HEADROOM = 0.20


def qemu_pid(lab, name):
    """The QEMU process of domain @name on @lab's private libvirtd."""
    def find():
        for d in os.listdir('/proc'):
            if d.isdigit():
                cmd = cbvirt._pid_cmdline(int(d))
                if 'qemu' in cmd and f'guest={name},' in cmd and lab.dir in cmd:
                    return int(d)
        return None
    return cbvirt.wait_for(find, 20, f'the QEMU process of {name}')


def boost(pid):
    """Nice -20 for every thread of QEMU process @pid (a process of this test's own libvirtd)."""
    try:
        tids = os.listdir(f'/proc/{pid}/task')
    except OSError:
        return
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, int(tid), -20)
        except OSError:
            pass


def proc_cpu(pid):
    """CPU seconds process @pid used (all its threads), from the kernel's accounting."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def hist_bin(u):
    """The broker's histogram bin (br-histogram.c) of utilization share @u: (k-1 %, k %]."""
    u = min(1.0, max(0.0, u))
    return min(100, max(0, math.ceil(u * 100.0 - 1e-9)))


def hist_p95(utils):
    """p95 by the broker's rule: nearest rank over 1 % bins, the bin's upper edge."""
    if not utils:
        return None
    bins = sorted(hist_bin(u) for u in utils)
    rank = max(1, math.ceil(0.95 * len(bins)))
    return bins[rank - 1] / 100.0


def parse_iso(s):
    return calendar.timegm(time.strptime(s[:19], '%Y-%m-%dT%H:%M:%S'))


def window_utils(b, token, iid, frm, to):
    """Per-window CPU utilization (cores / vCPUs) of instance @iid for windows starting in
    [@frm, @to), through GET /v1/instances/{id}/usage with a 10 s step."""
    r = b.get(f'/v1/instances/{iid}/usage?from={frm}&to={to}&step={WINDOW}', token=token)
    assert r.status == 200, r
    out = []
    for p in r.json()['points']:
        if p.get('cpu_cores_avg') is not None and p.get('vcpus'):
            out.append(p['cpu_cores_avg'] / p['vcpus'])
    return out


def want_vcpus(p95_cores, min_vcpus=1):
    return max(min_vcpus, math.ceil(p95_cores * (1 + HEADROOM) - 1e-9))


def findings(b, token, **query):
    q = '&'.join(f'{k}={v}' for k, v in query.items())
    r = b.get(f'/v1/findings?limit=1000&{q}', token=token)
    assert r.status == 200, r
    return r.json()['items']


def of(items, inst, kind, states=('open', 'acknowledged')):
    return [f for f in items if f['instance_id'] == inst['id'] and f['kind'] == kind and
            f['state'] in states]


def run_assessment(ck, b, token, what):
    r = b.post('/v1/assessment/run', {}, token=token)
    ck.eq(r.status, 200, f'POST /v1/assessment/run ({what})')
    doc = r.json()
    print(f'{what}: {doc}', flush=True)
    return doc


def check_evidence(ck, f, what, vcpus):
    ev = f.get('evidence') or {}
    win = ev.get('window') or {}
    ck.eq(win.get('seconds'), W, f'{what}: evidence window of {W} s')
    ck.ok(win.get('from') and win.get('to') and
          parse_iso(win['to']) - parse_iso(win['from']) == W,
          f'{what}: window from/to span {W} s ({win})')
    cov = ev.get('coverage')
    ck.ok(cov is not None and 0.8 <= cov <= 1.0, f'{what}: coverage >= 0.8 ({cov})')
    cpu = ev.get('cpu') or {}
    ck.ok(all(isinstance(cpu.get(k), (int, float)) for k in ('avg_cores', 'p95_cores',
                                                              'max_cores', 'p95_utilization')),
          f'{what}: evidence has CPU avg/p95/max ({cpu})')
    if all(isinstance(cpu.get(k), (int, float)) for k in ('avg_cores', 'p95_cores', 'max_cores')):
        ck.ok(cpu['avg_cores'] <= cpu['p95_cores'] + 0.01 * vcpus + 1e-9 and
              cpu['p95_cores'] <= cpu['max_cores'] + 0.01 * vcpus + 1e-9,
              f'{what}: avg <= p95 <= max (within a bin) ({cpu})')
        ck.ok(abs(cpu['p95_cores'] - cpu['p95_utilization'] * vcpus) < 1e-9,
              f'{what}: p95 cores = p95 utilization x {vcpus} vCPUs')
    ck.ok('memory' in ev, f'{what}: evidence has a memory section')
    ck.eq(ev.get('kind'), f['kind'], f'{what}: evidence names its kind')
    ck.ok(ev.get('rule') and ev.get('rule') == f.get('rule'),
          f'{what}: the rule that fired is stated ({f.get("rule")!r})')
    ck.ok(ev.get('sample_windows', 0) >= 1 and ev.get('rollup_days') == 0,
          f'{what}: a window of minutes is read from samples only '
          f'({ev.get("sample_windows")} windows, {ev.get("rollup_days")} rollup days)')
    return ev


def main():
    ck = cbtest.Checks('test-assessment-e2e')
    t_begin = time.time()
    lab = cbvirt.PrivateLab()
    b = None
    ctx = {}
    try:
        a = lab._read('assessment.json')
        for k in ('idle', 'over_provisioned', 'under_provisioned'):
            a[k]['window_seconds'] = W
        a['evidence']['min_age_seconds'] = 60
        # The guests have 64 MiB: never advise less (the memory figure of a boot-sector guest
        # is QEMU's own RSS); the memory rules themselves stay as they ship.
        a['recommendation']['min_memory_mib'] = 64
        a['recommendation']['memory_step_mib'] = 64
        lab._write('assessment.json', a)
        b = cbtest.Broker(policy_dir=lab.policy_dir).start()
        run(ck, lab, b, ctx)
    except Exception:
        traceback.print_exc()
        ck.ok(False, 'the test ran to its end without an exception')
    finally:
        agent = ctx.get('agent')
        if agent:
            agent.stop()
            if ck.failed:
                print('--- agent log (tail) ---\n' + agent.log()[-3000:])
        if b:
            if ck.failed:
                try:
                    with open(b.log_path, errors='replace') as f:
                        print('--- broker log (tail) ---\n' + f.read()[-3000:])
                except OSError:
                    pass
            b.cleanup()
        lab.cleanup()
    ck.ok(not os.path.exists(lab.dir), 'the lab folder is gone')
    print(f'runtime: {time.time() - t_begin:.0f} s')
    ck.done()


def run(ck, lab, b, ctx):
    t0 = time.time()
    wf = cbvirt.Workflow(b, lab, code='mz', name='民政局')
    S = cbvirt.Workflow.spec
    rid = wf.submit_new([S(1, 64, 1, 'halt'), S(4, 64, 1, 'spin'), S(1, 64, 1, 'spin')])
    wf.to_trial_passed(rid)
    wf.allocate(rid)
    aid = wf.wait_request(rid, 'allocated')['allocation_id']
    insts = sorted(wf.wait_allocation(aid, 'active')['instances'], key=lambda i: i['index'])
    halt, spin4, spin1 = insts
    ck.eq([i['vcpus'] for i in insts], [1, 4, 1], 'the instances have 1, 4 and 1 vCPUs')
    # Phase 1: spin4 alone.
    lab.virsh('suspend', spin1['name'])
    pids = {i['name']: qemu_pid(lab, i['name']) for i in insts}
    for pid in pids.values():
        boost(pid)
    print(f'setup: {time.time() - t0:.0f} s', flush=True)

    # Another department, to check the findings' scope.
    other = b.make_department('other', '其他局')
    _, other_tok = b.make_account('other-staff', 'department', other)

    r = b.post(f"/v1/hosts/{wf.hosts['production']}/agent-token", {}, token=wf.vendor)
    ck.eq(r.status, 200, 'an agent token for the production host')
    agent = ctx['agent'] = cbvirt.start_agent(b, lab, r.json()['agent_token'], INTERVAL,
                                              WINDOW)
    t_agent = time.time()

    # ---- run 1: spin4 has run alone for W + 25 s ----
    pid4 = pids[spin4['name']]
    c1, k1 = proc_cpu(pid4), time.time()
    time.sleep(max(0.0, t_agent + PHASE - time.time()))
    boost(pid4)
    ref4 = (proc_cpu(pid4) - c1) / (time.time() - k1)
    cbvirt.wait_for(lambda: agent.metric('cloudbroker_agent_spool_rows', -1) == 0, 30,
                    'the agent to deliver its windows')
    s1 = run_assessment(ck, b, wf.reviewer, 'run 1 (spin4 alone)')
    ck.eq(s1.get('instances'), 3, 'run 1 looked at the three instances')
    ck.ok(s1.get('insufficient_evidence', 0) >= 1,
          'run 1: the paused spin1 has no evidence and is not judged')
    items = findings(b, wf.reviewer)
    ck.eq(of(items, spin1, 'idle') + of(items, spin1, 'over_provisioned') +
          of(items, spin1, 'under_provisioned'), [], 'run 1: nothing about the paused spin1')

    # The halted guest: idle.
    idle = of(items, halt, 'idle')
    ck.eq(len(idle), 1, 'the halted guest is found idle')
    idle = idle[0] if idle else {}
    ck.eq(idle.get('state'), 'open', 'the idle finding is open')
    ev = check_evidence(ck, idle, 'idle', 1) if idle else {}
    ck.ok(ev.get('idle_share', 0) >= 0.95 and ev.get('checked_windows', 0) >= 8,
          f'idle: idle in >= 95 % of the windows ({ev.get("idle_windows")} of '
          f'{ev.get("checked_windows")})')
    ck.ok((ev.get('cpu') or {}).get('avg_cores', 1) < 0.03,
          f'idle: average CPU below 0.03 cores ({(ev.get("cpu") or {}).get("avg_cores")})')
    rec = idle.get('recommendation') or {}
    # Its allocation also holds the two spinners: the advice removes this instance (scale-in),
    # not the allocation (docs/assessment.md, "idle").
    ck.eq(rec.get('action'), 'scale_in', 'idle: the advice is to remove this instance (scale_in)')
    ck.eq((rec.get('remove_instance') or {}).get('instance_id'), halt['id'],
          'idle: the instance to remove is the halted guest')
    ck.eq(rec.get('recommended'), {'vcpus': 0, 'memory_mib': 0}, 'idle: recommended size 0')
    ck.eq(idle.get('frees'), {'vcpus': 1, 'memory_mib': 64}, 'idle: frees its 1 vCPU and 64 MiB')
    ck.eq(of(items, halt, 'over_provisioned') + of(items, halt, 'under_provisioned'), [],
          'the idle guest has no sizing finding besides')

    # The 4-vCPU spinner: over-provisioned, 2 vCPUs.
    over = of(items, spin4, 'over_provisioned')
    ck.eq(len(over), 1, 'the 4-vCPU spinner is found over-provisioned')
    over = over[0] if over else {}
    ev = check_evidence(ck, over, 'over-provisioned', 4) if over else {}
    cpu = ev.get('cpu') or {}
    p95u, p95c = cpu.get('p95_utilization'), cpu.get('p95_cores')
    win = ev.get('window') or {}
    mine = hist_p95(window_utils(b, wf.reviewer, spin4['id'], parse_iso(win['from']),
                                 parse_iso(win['to']))) if win else None
    print(f'spin4: kernel {ref4:.3f} cores over phase 1; evidence avg {cpu.get("avg_cores")}, '
          f'p95 {p95c} cores ({p95u}), max {cpu.get("max_cores")}; p95 recomputed from the '
          f'usage API {mine}', flush=True)
    ck.ok(p95u is not None and mine is not None and abs(p95u - mine) < 1e-9,
          f'over: the stated p95 ({p95u}) is the p95 of the windows the usage API returns for '
          f'the finding\'s window ({mine})')
    ck.ok(p95u is not None and p95u < 0.40, f'over: p95 CPU below 40 % of 4 vCPUs ({p95u})')
    ck.ok(cpu.get('avg_cores') is not None and abs(cpu['avg_cores'] - ref4) <= 0.1,
          f'over: the average the broker states ({cpu.get("avg_cores")}) is what the kernel '
          f'accounted ({ref4:.3f})')
    ck.ok('p95 CPU' in (over.get('rule') or '') and 'below 40 %' in (over.get('rule') or ''),
          f'over: the rule names p95 CPU below 40 % ({over.get("rule")!r})')
    rec = over.get('recommendation') or {}
    expect = want_vcpus(p95c) if p95c is not None else None
    ck.eq((rec.get('recommended') or {}).get('vcpus'), expect,
          f'over: recommended vCPUs = max(1, ceil(p95 {p95c} cores x 1.2))')
    ck.eq((rec.get('mode'), rec.get('headroom'), rec.get('action')),
          ('moderate', 0.2, 'resize'), 'over: moderate mode, 20 % headroom, resize')
    ck.ok(abs((rec.get('cpu_statistic_cores') or -1) - (p95c or -2)) < 1e-9,
          'over: sized on the p95 (the moderate statistic)')
    ck.eq((rec.get('recommended') or {}).get('memory_mib'), 64, 'over: memory kept at 64 MiB')
    if ref4 >= 0.85:
        ck.eq((rec.get('recommended') or {}).get('vcpus'), 2,
              f'over: the issue\'s recommendation of 2 vCPUs (the spinner got {ref4:.2f} cores)')
    else:
        print(f'NOTE: contention: the 4-vCPU spinner got only {ref4:.2f} cores; the issue\'s '
              f'"2 vCPUs" needs > 0.834 cores at p95; checked the computed {expect} instead',
              flush=True)
    ck.eq(over.get('frees'), {'vcpus': 4 - (expect or 0), 'memory_mib': 0},
          'over: frees the vCPUs above the recommendation')
    ck.eq(of(items, spin4, 'idle'), [], 'the 4-vCPU spinner is not idle')

    # ---- run 2: spin1 alone; spin4 paused ----
    lab.virsh('resume', spin1['name'])
    lab.virsh('suspend', spin4['name'])
    t_p2 = time.time()
    pid1 = pids[spin1['name']]
    boost(pid1)
    c1, k1 = proc_cpu(pid1), time.time()
    time.sleep(max(0.0, t_p2 + PHASE - time.time()))
    ref1 = (proc_cpu(pid1) - c1) / (time.time() - k1)
    cbvirt.wait_for(lambda: agent.metric('cloudbroker_agent_spool_rows', -1) == 0, 30,
                    'the agent to deliver its windows')
    t_run2 = int(time.time())
    s2 = run_assessment(ck, b, wf.reviewer, 'run 2 (spin1 alone)')
    ck.ok(s2.get('insufficient_evidence', 0) >= 1,
          'run 2: the paused spin4 has no evidence and is not judged')
    items = findings(b, wf.reviewer)
    ck.eq(of(items, spin1, 'idle'), [], 'the 1-vCPU spinner is not idle')
    ck.eq(of(items, spin1, 'over_provisioned'), [], 'the 1-vCPU spinner is not over-provisioned')
    under = of(items, spin1, 'under_provisioned')
    if under:
        ev = check_evidence(ck, under[0], 'under-provisioned', 1)
        win = ev.get('window') or {}
        frm, to = parse_iso(win['from']), parse_iso(win['to'])
    else:
        frm, to = t_run2 - W, t_run2
    mine1 = hist_p95(window_utils(b, wf.reviewer, spin1['id'], frm, to))
    print(f'spin1: kernel {ref1:.3f} cores over phase 2; p95 utilization over its window '
          f'{mine1}; under-provisioned finding: {bool(under)}', flush=True)
    if mine1 is not None and abs(mine1 - 0.90) > 0.015:
        ck.eq(bool(under), mine1 > 0.90,
              f'spin1: an under_provisioned finding exactly when p95 > 90 % (p95 {mine1})')
    if under:
        u = under[0]
        cpu = u['evidence']['cpu']
        ck.eq(cpu['p95_utilization'], mine1, 'under: the stated p95 is the usage API\'s')
        ck.eq(u['recommendation']['recommended']['vcpus'], want_vcpus(cpu['p95_cores']),
              f'under: recommended vCPUs = ceil(p95 {cpu["p95_cores"]} x 1.2)')
        ck.eq(u['recommendation']['recommended']['vcpus'], 2, 'under: 2 vCPUs advised')
        ck.ok('above 90 %' in u['rule'], f'under: the rule says above 90 % ({u["rule"]!r})')
        print(f'NOTE: the 1-vCPU spinner has an under_provisioned finding ({u["rule"]}): the '
              f'issue\'s "a 1-vCPU spinning guest gets no finding" conflicts with its own rule '
              f'"under-provisioned: p95 CPU > 90 %"', flush=True)
    if ref1 >= 0.85:
        ck.ok(bool(under), f'spin1 got {ref1:.2f} cores: saturated, so under-provisioned')

    # spin4's over-provisioned finding outlived a run in which spin4 had no evidence.
    over2 = [f for f in items if f['id'] == over.get('id')]
    ck.ok(over2 and over2[0]['state'] == 'open' and over2[0]['last_found'] == over['last_found'],
          'the paused spin4\'s finding stays open, untouched by run 2')
    idle2 = [f for f in items if f['id'] == idle.get('id')]
    ck.ok(idle2 and idle2[0]['state'] == 'open' and idle2[0]['last_found'] > idle['last_found'],
          'the halted guest\'s idle finding is the same one, found again (last_found moved)')
    ck.eq(s2.get('created'), 1 if under else 0, 'run 2 created only spin1\'s finding (if any)')

    # ---- scope ----
    ck.eq(findings(b, other_tok), [], 'another department sees none of these findings')
    ck.eq(b.get(f"/v1/findings/{over.get('id')}", token=other_tok).status, 404,
          'another department: GET a finding of theirs -> 404')
    mine_dept = findings(b, wf.dept)
    ck.eq(sorted(f['id'] for f in mine_dept), sorted(f['id'] for f in items),
          'the department sees its own findings')
    ck.eq([f['kind'] for f in findings(b, wf.reviewer, kind='idle')], ['idle'],
          'GET /v1/findings?kind=idle')

    # ---- the pre-review check of a new request shows the open findings ----
    r = b.post('/v1/requests', {'system': wf.system_id, 'kind': 'new', 'justification': 'more',
                                'resources': {'instances': [S(1, 64, 1, 'halt')]}},
               token=wf.dept)
    ck.eq(r.status, 201, 'a new request (draft)')
    new_rid = r.json()['id']
    check = b.get(f'/v1/requests/{new_rid}', token=wf.reviewer).json().get('check') or {}
    rule = [x for x in check.get('rules', []) if x.get('rule') == 'open_findings']
    ck.eq(len(rule), 1, 'the check has the rule open_findings')
    rule = rule[0] if rule else {}
    listed = sorted(f['id'] for f in rule.get('findings', []))
    ck.eq(listed, sorted([idle.get('id'), over.get('id')]),
          'open_findings lists the idle and the over-provisioned finding (not under)')
    ck.eq((rule.get('ok'), rule.get('enforce'), rule.get('idle'), rule.get('over_provisioned')),
          (False, False, 1, 1), 'open_findings: not ok, not enforced, 1 idle, 1 over')
    ck.eq(rule.get('reclaimable_vcpus'), 1 + (4 - (expect or 0)),
          'open_findings: reclaimable vCPUs = the findings\' frees')
    ck.eq(rule.get('reclaimable_memory_mib'), 64, 'open_findings: reclaimable memory')
    ck.eq(check.get('ok'), False, 'the whole check is not ok while findings are open')

    # ---- the operations report lists them ----
    month = time.strftime('%Y-%m', time.gmtime())
    r = b.get(f'/v1/reports/operations?month={month}', token=wf.auditor)
    ck.eq(r.status, 200, 'GET /v1/reports/operations (JSON)')
    deps = [d for d in r.json().get('departments', []) if d['id'] == wf.dept_id]
    ck.eq(len(deps), 1, 'the operations report has the department')
    dep = deps[0] if deps else {}
    rep_f = {f['id']: f for f in dep.get('findings', [])}
    want_ids = {idle.get('id'), over.get('id')} | ({under[0]['id']} if under else set())
    ck.eq(set(rep_f), want_ids, 'the operations report lists the open findings')
    if over.get('id') in rep_f:
        x = rep_f[over['id']]
        ck.eq((x['kind'], x['instance'], x['recommended_vcpus'], x['recommended_memory_mib'],
               x['frees_vcpus']), ('over_provisioned', spin4['name'], expect, 64, 4 - expect),
              'the report shows the over-provisioned finding with its right-sizing')
    ck.eq(dep.get('totals', {}).get('instances'), 3, 'the report counts three instances')
    paused_events = [e for e in dep.get('events', []) if 'paused' in (e.get('message') or '')]
    ck.ok(len(paused_events) >= 1, f'the reconciler\'s events (the paused guests) are listed '
          f'({len(paused_events)})')
    r = b.get(f'/v1/reports/operations?month={month}&format=html&lang=en', token=wf.auditor)
    html = r.body.decode()
    ck.ok(r.status == 200 and spin4['name'] in html and 'over-provisioned' in html and
          f'{expect} vCPU / 64 MiB' in html,
          'the HTML operations report shows the finding and its recommended size')
    r = b.get(f'/v1/reports/operations?month={month}&format=html', token=wf.auditor)
    ck.ok(r.status == 200 and '配置过度' in r.body.decode() and '闲置' in r.body.decode(),
          'the Chinese operations report names the findings (配置过度, 闲置)')

    # ---- acknowledge -> change request ----
    oid = over.get('id')
    r = b.post(f'/v1/findings/{oid}/acknowledge', {}, token=wf.dept)
    ck.ok(r.status == 200 and r.json().get('state') == 'acknowledged',
          f'the department acknowledges the over-provisioned finding ({r})')
    r = b.post(f'/v1/findings/{oid}/acknowledge', {}, token=wf.dept)
    ck.eq(r.status, 409, 'acknowledging twice -> 409')
    r = b.post(f'/v1/findings/{oid}/change-request', {}, token=wf.dept)
    ck.eq(r.status, 201, 'POST /v1/findings/{id}/change-request')
    crid = r.json().get('request_id') if r.status == 201 else None
    req = b.get(f'/v1/requests/{crid}', token=wf.dept).json() if crid else {}
    ck.eq((req.get('kind'), req.get('state'), req.get('allocation_id')), ('change', 'draft', aid),
          'GET the change request: a draft change of the allocation')
    want_instances = [S(1, 64, 1, 'halt'), S(expect, 64, 1, 'spin'), S(1, 64, 1, 'spin')]
    ck.eq((req.get('resources') or {}).get('instances'), want_instances,
          'the change request is pre-filled with the recommended size for spin4, the others as '
          'they are')
    ck.eq(req.get('restart_allowed'), (expect or 4) < 4,
          'fewer vCPUs need a restart: restart_allowed set')
    ck.ok(f'finding {oid}' in (req.get('justification') or ''),
          f'the justification names the finding ({req.get("justification")!r})')
    crule = [x for x in (req.get('check') or {}).get('rules', []) if x['rule'] == 'open_findings']
    ck.ok(crule and len(crule[0].get('findings', [])) == 2,
          'the change request\'s check shows the open findings too')
    f = b.get(f'/v1/findings/{oid}', token=wf.dept).json()
    ck.eq((f.get('state'), f.get('change_request_id')), ('acknowledged', crid),
          'the finding links its change request')
    r = b.post(f'/v1/findings/{oid}/change-request', {}, token=wf.dept)
    ck.eq(r.status, 409, 'a second change request from the same finding -> 409')

    # ---- dismiss with a reason ----
    iid_f = idle.get('id')
    r = b.post(f'/v1/findings/{iid_f}/dismiss', {}, token=wf.reviewer)
    ck.eq(r.status, 422, 'dismiss without a reason -> 422')
    r = b.post(f'/v1/findings/{iid_f}/dismiss', {'reason': 'cold standby'}, token=wf.dept)
    ck.eq(r.status, 403, 'a department cannot dismiss -> 403')
    r = b.post(f'/v1/findings/{iid_f}/dismiss', {'reason': '灾备冷备机，按规定保留'},
               token=wf.reviewer)
    ck.ok(r.status == 200 and r.json().get('state') == 'dismissed' and
          r.json().get('reason') == '灾备冷备机，按规定保留',
          f'the reviewer dismisses the idle finding with a reason ({r})')
    s3 = run_assessment(ck, b, wf.reviewer, 'run 3 (after the dismissal)')
    items = findings(b, wf.reviewer)
    ck.eq([f['state'] for f in items if f['instance_id'] == halt['id'] and f['kind'] == 'idle'],
          ['dismissed'], 'the still idle guest is not raised again after the dismissal')
    ck.eq(s3.get('created'), 0, 'run 3 created nothing')
    check = b.get(f'/v1/requests/{new_rid}', token=wf.reviewer).json().get('check') or {}
    rule = [x for x in check.get('rules', []) if x.get('rule') == 'open_findings']
    ck.ok(rule and [f['id'] for f in rule[0]['findings']] == [oid],
          'the pre-review check now shows only the acknowledged over-provisioned finding')
    for act in ('assessment.run', 'finding.acknowledged', 'finding.change_request',
                'finding.dismissed'):
        r = b.get(f'/v1/audit?limit=100&action={act}', token=wf.auditor)
        ck.ok(r.status == 200 and len(r.json().get('items', [])) >= 1, f'{act} is audited')
    print(f'measured: spin4 {ref4:.3f} cores (phase 1), spin1 {ref1:.3f} cores (phase 2)',
          flush=True)


if __name__ == '__main__':
    main()
