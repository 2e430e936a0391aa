#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reports an official can sign, on real QEMU (issue 9): what the test driver cannot do (wipe
a disk, stop a domain behind the broker's back, lose a host).

A private libvirtd with tiny halting guests (cbvirt.PrivateLab, reconciler every second), one
department with two systems:
  门户 portal  2 instances: #0 idle, #1 busy (20 days of hourly windows)
  旧系统 legacy 1 instance, idle (20 days)
Then:
  [scale-in]  the finding on portal#0 advises removing it; the department's change request
              (from the finding) removes instance 0 for real: its domain and disk are gone,
              instance 1 runs on untouched; [follow] the finding is resolved, "scale-in";
  [follow]    legacy is terminated (reclaim) and purged: its finding is resolved at the
              reclaim, and no report lists it;
  [year]      after the purge, legacy's vCPUs still count for the year (time-weighted), its
              department's efficiency is what it was, nothing is "used of 0 allocated";
  [available] portal#1's domain is destroyed by hand for a while, then the private libvirtd is
              stopped for a while (the host unreachable): the operations report's availability
              is the share of the observed time it was seen running, worked out here from the
              times the test saw, and its metering coverage is its own column;
  [zh]        the reconciler's events read in Chinese in the Chinese report.
"""
import calendar
import os
import re
import sys
import time
import traceback
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import assessgen as ag  # noqa: E402
import cbtest  # noqa: E402
import cbvirt  # noqa: E402
from assessgen import DAY, HOUR  # noqa: E402

MIN_AGE = 2


def parse_iso(s):
    return calendar.timegm(time.strptime(s[:19], '%Y-%m-%dT%H:%M:%S'))


def parse_iso_ms(s):
    return parse_iso(s) + (float('0' + s[19:23]) if s[19:20] == '.' else 0)


class Texts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.texts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ('style', 'title')

    def handle_endtag(self, tag):
        self._skip -= tag in ('style', 'title')

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.texts.append(data.strip())


def want(r, status, what):
    assert r.status == status, f'{what}: {r}'
    return r.json() if r.body else None


def main():
    ck = cbtest.Checks('report-lifecycle')
    lab = b = None
    t0 = time.time()
    try:
        lab = cbvirt.PrivateLab(lifecycle={'reconcile_seconds': 1, 'retention_seconds': 3600})
        a = lab._read('assessment.json')
        a['evidence']['min_age_seconds'] = MIN_AGE
        lab._write('assessment.json', a)
        b = cbtest.Broker(policy_dir=lab.policy_dir).start()
        run(ck, b, lab)
    except Exception:
        traceback.print_exc()
        ck.ok(False, 'the test ran to its end without an exception')
    finally:
        if b:
            b.cleanup()
        if lab:
            lab.cleanup()
    print(f'runtime: {time.time() - t0:.0f} s', flush=True)
    ck.done()


def run(ck, b, lab):
    w = cbvirt.Workflow(b, lab, code='mz', name='民政局')
    rv, au, dept = w.reviewer, w.auditor, w.dept
    prod = w.hosts['production']
    agent = want(b.post(f'/v1/hosts/{prod}/agent-token', {}, token=w.vendor), 200,
                 'agent token')['agent_token']
    systems = {'portal': w.system_id, 'legacy': cbtest.make_system(b, dept, 'legacy')}
    allocs = {}
    for name, specs in (('portal', [w.spec(), w.spec()]), ('legacy', [w.spec()])):
        w.system_id = systems[name]
        rid = w.submit_new(specs, f'{name} for the reports')
        w.to_trial_passed(rid)
        w.allocate(rid)
        aid = w.wait_request(rid, 'allocated', 120)['allocation_id']
        allocs[name] = cbvirt.wait_for(lambda: (lambda x: x if all(
            i['live_state'] == 'running' for i in x['instances']) else None)(w.allocation(aid)),
            60, f'{name} running')
    inst = {f'{n}#{i["index"]}': i for n, a in allocs.items() for i in a['instances']}
    created = {n: parse_iso_ms(a['created_at']) for n, a in allocs.items()}

    # Twenty days of hourly windows, as the host's agent would have sent them.
    end = int(time.time()) // HOUR * HOUR
    idle = ag.Idle(cores=0.002, burst_hour=2, burst_cores=0.3, memory_mib=30)
    busy = ag.Steady(0.61, 0.69, 40)
    sent = {'portal#0': idle, 'portal#1': busy, 'legacy#0': idle}
    records = []
    for k, pat in sent.items():
        sent[k] = ag.windows(dict(inst[k], vcpus=1, memory_mib=64), pat, end - 20 * DAY, end)
        records += sent[k]
    res = ag.post_windows(b, agent, records)
    ck.eq(res['stored'], len(records), 'every window stored')
    ag.rollup_days(b, b.admin_token, end - 21 * DAY, end)
    time.sleep(MIN_AGE + 1)
    run1 = want(b.post('/v1/assessment/run', {}, token=rv), 200, 'assessment run')
    label = {i['id']: k for k, i in inst.items()}
    f = {label.get(x['instance_id']): x for x in want(
        b.get('/v1/findings?limit=100', token=au), 200, 'findings')['items']}
    ck.eq(sorted((k, x['kind'], x['recommendation']['action']) for k, x in f.items()),
          [('legacy#0', 'idle', 'terminate'), ('portal#0', 'idle', 'scale_in')],
          f'findings: portal#0 idle (scale in), legacy#0 idle (terminate) ({run1})')

    year = time.gmtime().tm_year
    y0 = calendar.timegm((year, 1, 1, 0, 0, 0))
    rep1 = want(b.get(f'/v1/reports/assessment?year={year}', token=au), 200, 'assessment')
    e1 = rep1['departments'][0]['efficiency']

    # ---- [scale-in] the department applies the advice; the bureau approves ----
    cr = want(b.post(f'/v1/findings/{f["portal#0"]["id"]}/change-request', {}, token=dept),
              201, 'change request')
    want(b.post(f'/v1/requests/{cr["request_id"]}/submit', {}, token=dept), 200, 'submit')
    w.approve(cr['request_id'])
    doc = w.wait_request(cr['request_id'], ('applied', 'failed'), 120)
    ck.eq(doc['state'], 'applied', '[scale-in] the change is applied')
    a = w.allocation(allocs['portal']['id'])
    live = [(i['index'], i['uuid'], i['state']) for i in a['instances'] if i['state'] != 'deleted']
    ck.eq((a['state'], live), ('active', [(1, inst['portal#1']['uuid'], 'running')]),
          '[scale-in] instance 1 runs on with its own UUID; instance 0 is deleted')
    doms = lab.domains()
    ck.ok(inst['portal#0']['name'] not in doms and doms.get(inst['portal#1']['name']) == 'running',
          f'[scale-in] on the host: instance 0\'s domain gone, instance 1 running ({doms})')
    ck.ok(not any(inst['portal#0']['name'] in v for v in lab.volumes()),
          '[scale-in] instance 0\'s disk is deleted')
    x = want(b.get(f'/v1/findings/{f["portal#0"]["id"]}', token=au), 200, 'finding')
    ck.eq((x['state'], x['reason']), ('resolved', 'the instance was removed (scale-in)'),
          '[follow] the scaled-in instance\'s finding is resolved')

    # ---- [follow] [year] legacy terminated and purged ----
    w.system_id = systems['legacy']
    rid = w.submit_termination(allocs['legacy']['id'])
    w.approve(rid)
    w.wait_request(rid, ('reclaimed', 'failed'), 120)
    x = want(b.get(f'/v1/findings/{f["legacy#0"]["id"]}', token=au), 200, 'finding')
    ck.eq((x['state'], x['reason']), ('resolved', 'the allocation was reclaimed'),
          '[follow] the reclaimed allocation\'s finding is resolved')
    t_res = parse_iso(x['state_changed_at'])
    want(b.post(f'/v1/allocations/{allocs["legacy"]["id"]}/purge', {}, token=rv), 202, 'purge')
    w.wait_allocation(allocs['legacy']['id'], 'purged', 120)
    rep2 = want(b.get(f'/v1/reports/assessment?year={year}', token=au), 200, 'assessment')
    d2 = rep2['departments'][0]
    e2 = d2['efficiency']
    # By hand: portal#0 held from its first day of metering in the year to its undefine
    # (scale-in), portal#1 to the cut, legacy#0 to its undefine at the reclaim (not the purge's,
    # which undefines it again); 1 vCPU each. Reclaimable: portal#0 and legacy#0 from (first
    # found − 14 days) to their resolution. The undefine steps, from the job records.
    con = cbtest.db_connect(b.db_path)
    ends = {}
    for iid, at in con.execute("SELECT s.instance_id, s.finished_at FROM job_steps s JOIN jobs j"
                               " ON j.id = s.job_id WHERE s.action = 'undefine' AND s.state ="
                               " 'done' AND j.kind IN ('resize','reclaim') ORDER BY s.finished_at"):
        ends.setdefault(iid, parse_iso(at))
    con.close()
    cut2 = parse_iso(rep2['hours_to'])  # the year's hours: to the last full hour

    def held(k):
        starts = [x_['start'] for x_ in sent[k] if x_['start'] >= y0]
        h0 = max(y0, min([int(created[k.split('#')[0]])] +
                         [s - s % DAY for s in starts[:1]]))
        return max(0, min(ends.get(inst[k]['id'], cut2), cut2) - h0), h0
    A = sum(held(k)[0] for k in sent) / 3600
    R = 0
    for k in ('portal#0', 'legacy#0'):
        fx = want(b.get(f'/v1/findings/{f[k]["id"]}', token=au), 200, 'finding')
        f0 = max(y0, parse_iso(fx['first_found']) - 14 * DAY, held(k)[1])
        R += max(0, min(cut2, parse_iso(fx['state_changed_at'])) - f0) / 3600
    ck.ok(ends.get(inst['legacy#0']['id']) and abs(e2['allocated_vcpu_hours'] - A) <= 0.02,
          f'[year] vCPU-hours held, ended instances included: {e2["allocated_vcpu_hours"]} = '
          f'{A:.2f}')
    ck.ok(abs(e2['reclaimable_vcpu_hours'] - R) <= 0.02,
          f'[year] reclaimable vCPU-hours: {e2["reclaimable_vcpu_hours"]} = {R:.2f}')
    ck.eq((e2['allocated_vcpus'], e2['allocations']), (3, 2),
          '[year] after the purge: the 3 vCPUs held in the year still count')
    ck.ok(e2['used_vcpus_avg'] <= e2['allocated_vcpus'] and e2['allocated_vcpu_hours'] > 0,
          f'[year] never "used {e2["used_vcpus_avg"]} of {e2["allocated_vcpus"]} allocated"')
    ck.ok(e1['score'] is not None and e2['score'] is not None and
          abs(e2['score'] - e1['score']) <= 0.5,
          f'[year] ending idle resources does not rewrite the year: {e1["score"]} → '
          f'{e2["score"]}')
    ck.eq((e2['reclaimable_vcpus'], t_res > 0), (0, True), '[follow] nothing reclaimable now')

    # ---- [available] portal#1: stopped out of band, then its host unreachable ----
    name1 = inst['portal#1']['name']
    t_d0 = time.time()
    lab.virsh('destroy', name1)
    time.sleep(6)
    lab.virsh('start', name1)
    t_d1 = time.time()
    cbvirt.wait_for(lambda: w.allocation(allocs['portal']['id'])['instances'][1]['live_state']
                    == 'running', 20, 'running again')
    time.sleep(3)
    t_u0 = time.time()
    lab.libvirt.stop()
    time.sleep(8)
    lab.libvirt.start()
    t_u1 = time.time()
    cbvirt.wait_for(lambda: all(h['connection']['state'] == 'connected' for h in
                                b.get('/v1/hosts', token=w.vendor).json()['items']), 60,
                    'the host back')
    time.sleep(4)
    month = time.strftime('%Y-%m', time.gmtime())
    ops = want(b.get(f'/v1/reports/operations?month={month}', token=au), 200, 'operations')
    t_rep = parse_iso_ms(ops['generated_at'])
    row = next(i for d in ops['departments'] for i in d['instances'] if i['name'] == name1)
    # Existence from its creation; observed from the first pass after its domain ran (a few
    # seconds); not running while destroyed and while its host was unreachable.
    exist = t_rep - created['portal']
    down, unreach = t_d1 - t_d0, t_u1 - t_u0
    tol = 4.0  # reconciler passes every second; the host's loss and return take a moment
    lo = max(0.0, (exist - down - unreach - 2 * tol) / exist)
    hi = (exist - down - unreach + 2 * tol) / (exist - unreach - 3 * tol)
    ck.ok(row['availability'] is not None and lo <= row['availability'] <= min(1, hi) and
          row['availability'] < 0.98,
          f'[available] portal#1: availability {row["availability"]} (seen running; '
          f'{down:.0f} s destroyed, {unreach:.0f} s unreachable of {exist:.0f} s: '
          f'{lo:.3f}..{hi:.3f})')
    ck.ok(row['running_hours'] * 3600 <= exist - down - unreach + 2 * tol,
          f'[available] portal#1 ran {row["running_hours"] * 3600:.0f} s of {exist:.0f} s')
    ck.ok(row['coverage'] is not None and row['coverage'] != row['availability'],
          f'[available] metering coverage is its own column ({row["coverage"]})')
    tot = next(d for d in ops['departments'])['totals']
    ck.ok(abs(tot['unreachable_hours'] * 3600 - unreach) <= 2 * tol + 2,
          f'[available] the host was unreachable {tot["unreachable_hours"] * 3600:.0f} s '
          f'(the test stopped it {unreach:.0f} s)')
    print(f'portal#1: availability {row["availability"]}, observed {row["observed_share"]}, '
          f'running {row["running_hours"] * 3600:.0f} s, coverage {row["coverage"]}; '
          f'destroyed {down:.1f} s, unreachable {unreach:.1f} s (reported '
          f'{tot["unreachable_hours"] * 3600:.0f} s), existed {exist:.0f} s; efficiency '
          f'{e1["score"]} → {e2["score"]}', flush=True)
    listed = [x_['instance'] for d in ops['departments'] for x_ in d['findings']]
    ck.eq(listed, [], '[follow] the operations report advises nothing on removed instances')
    ck.ok(any(e['kind'] == 'instance_state' and e['instance'] == name1
              for d in ops['departments'] for e in d['events']),
          '[available] the destroyed domain is an event of the month')

    # ---- [zh] the events in Chinese ----
    html = b.get(f'/v1/reports/operations?month={month}&format=html', token=au).body.decode()
    p = Texts()
    p.feed(html)
    names = {i['name'] for i in inst.values()} | {'mz', 'oa', 'legacy'}  # identifiers
    bad = []
    for t in p.texts:
        t = re.sub(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z', '', t)
        for n in names:
            t = t.replace(n, '')
        bad += [x_ for x_ in re.findall(r'[A-Za-z][A-Za-z0-9]*', t)
                if x_ not in ('vCPU', 'MiB', 'GiB', 'CPU', 'P95')]
    ck.eq(bad, [], '[zh] the Chinese operations report, events included, has no Latin words')
    ck.ok(f'实例 {name1} 应处于运行状态' in html, '[zh] the event reads in Chinese')


if __name__ == '__main__':
    main()
