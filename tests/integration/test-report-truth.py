#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reports an official can sign (issue 9): the findings and both reports tell the truth about
resources that ended, about gaps in the metering and about what was observed.

A small fleet through the real API (assessgen.Fleet: libvirt's test driver as the trial and the
production host, every request through the whole workflow), hourly windows posted with the
production host's agent token, a policy whose minimum age is seconds and whose reconciler looks
every second:

  民政局 mz  门户 portal   2 instances: #0 idle, #1 busy       → #0 idle, advice: scale in
  交通局 jt  旧系统 legacy 1 instance idle for 60 days          → idle, then terminated
  教育局 jy  考试 exam     1 instance, 510 of 30 days' 720 windows → not judged (coverage 0.71)
  卫生局 hd  病历 ehr      1 instance, one window in three       → "no data" (coverage 1/3)
  体育局 ty  场馆 venue    1 instance, windows of one day only   → a one-day chart
  and requests handled this month: approved, one returned then approved, one rejected.

Which check covers which item of "Reports an official can sign":
  [follow]     findings are resolved with their instance (reclaim), audited, and no report
               lists them afterwards (scale-in and purge, which wipe disks, which the test driver
               cannot: test-report-lifecycle.py on QEMU);
  [year]       the year's efficiency is time-weighted (vCPU-hours, GiB-hours): ending an idle
               allocation does not rewrite it, and nothing is "used of 0 allocated";
  [no-data]    an efficiency without enough measured hours is null with its coverage, never
               100; the report brings the rollups up to date and says when they ran;
  [available]  availability is what the reconciler saw running, coverage its own column;
  [zh]         every text of a Chinese report is Chinese, a one-day chart draws its point,
               empty tables say 无 / none, the operations CSV carries every section, the city
               totals and the month's requests handled;
  [scale-in]   an idle instance beside a busy one: the advice and the draft request remove it,
               not the allocation; a change naming no instance is refused;
  [gaps]       coverage counts the days that are missing: 71 % of the windows → coverage 0.71,
               not judged.
Every expectation is worked out here from the windows the test sent and the times it saw.
"""
import calendar
import csv
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import assessgen as ag  # noqa: E402
import cbtest  # noqa: E402
from assessgen import DAY, HOUR, READINGS  # noqa: E402

MIN_AGE = 2


def parse_iso(s):
    return calendar.timegm(time.strptime(s[:19], '%Y-%m-%dT%H:%M:%S'))


def day_floor(t):
    return t - t % DAY


class Text(HTMLParser):
    """The text nodes of an HTML page, outside <style> and <title>."""

    def __init__(self):
        super().__init__()
        self.texts, self._skip = [], 0
        self.circles = 0
        self.none_rows = 0
        self._none = False

    def handle_starttag(self, tag, attrs):
        if tag in ('style', 'title'):
            self._skip += 1
        if tag == 'circle':
            self.circles += 1
        if tag == 'tr' and ('class', 'none') in attrs:
            self._none = True

    def handle_endtag(self, tag):
        if tag in ('style', 'title'):
            self._skip -= 1
        if tag == 'tr':
            self._none = False

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.texts.append(data.strip())
            if self._none:
                self.none_rows += 1


def latin_words(html, allowed_names):
    """The words in Latin letters of @html's text that are not identifiers (@allowed_names:
    instance, department code), times, or the units the Chinese labels keep."""
    p = Text()
    p.feed(html)
    bad = []
    for t in p.texts:
        t = re.sub(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z', '', t)
        for name in allowed_names:
            t = t.replace(name, '')
        for w in re.findall(r'[A-Za-z][A-Za-z0-9]*', t):
            if w not in ('vCPU', 'MiB', 'GiB', 'CPU', 'P95'):
                bad.append((w, t[:80]))
    return bad


def main():
    ck = cbtest.Checks('test-report-truth')
    work = tempfile.mkdtemp(prefix='cbtruth-')
    pol = ag.policy_dir(os.path.join(work, 'policies'),
                        assessment={'evidence': {'min_coverage': 0.80,
                                                 'min_age_seconds': MIN_AGE}},
                        lifecycle={'reconcile_seconds': 1, 'retention_seconds': 3600})
    b = cbtest.Broker(policy_dir=pol)
    t0 = time.monotonic()
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


def want(r, status, what):
    if r.status != status:
        raise RuntimeError(f'{what}: {r}')
    return r.json() if r.body else None


def run(ck, b, work):
    fleet = ag.Fleet(b, work)
    rv, vendor, auditor, adm = fleet.reviewer, fleet.vendor, fleet.auditor, b.admin_token
    depts = {}
    for code, name in (('mz', '民政局'), ('jt', '交通局'), ('jy', '教育局'), ('hd', '卫生局'),
                       ('ty', '体育局')):
        depts[code] = fleet.department(code, name)
    plan = [('mz', '门户', [(2, 2048), (2, 2048)]), ('jt', '旧系统', [(2, 2048)]),
            ('jy', '考试', [(4, 4096)]), ('hd', '病历', [(1, 1024)]), ('ty', '场馆', [(1, 1024)])]
    systems, rids = {}, {}
    requests_made = []  # (code, request id): every request submitted this month
    for code, sname, specs in plan:
        systems[code] = fleet.system(code, sname)
        rids[code] = fleet.submit_new(code, systems[code], specs)
        requests_made.append((code, rids[code]))

    # Requests handled: one returned (then submitted again and approved), one rejected.
    sys_extra = fleet.system('ty', '票务')
    rid_ret = fleet.submit_new('ty', sys_extra, [(1, 512)])
    want(b.post(f'/v1/requests/{rid_ret}/decision', {'decision': 'return',
                                                     'comment': '请补充说明'}, token=rv),
         200, 'return')
    want(b.post(f'/v1/requests/{rid_ret}/resubmit', {}, token=depts['ty']['token']), 200,
         'resubmit')
    want(b.post(f'/v1/requests/{rid_ret}/decision', {'decision': 'reject',
                                                     'comment': '不符合规划'}, token=rv),
         200, 'reject')
    requests_made.append(('ty', rid_ret))

    allocs = fleet.through_workflow([rids[c] for c, _, _ in plan])
    inst = {}
    for code, _, _ in plan:
        a = allocs[rids[code]]
        for i in sorted(a['instances'], key=lambda x: x['index']):
            inst[f'{code}#{i["index"]}'] = dict(i, allocation=a['id'],
                                               created=parse_iso(a['created_at']))
    ck.eq(len(inst), 6, 'six instances allocated through the workflow')
    names = {v['name'] for v in inst.values()}

    # ---- the history, an hourly window at a time ----
    end = int(time.time()) // HOUR * HOUR
    idle = ag.Idle(cores=0.005, burst_hour=2, burst_cores=0.51)
    busy = ag.Steady(1.21, 1.39, 1500)  # 2 vCPUs
    busy1 = ag.Steady(0.61, 0.69, 700)   # 1 vCPU
    # jy: 30 days from its first window (an hour after the 30-day window begins): days 2, 5,
    # ..., 23 missing (8 whole days), day 26 with its first 7 windows only: 719 − 192 − 17 =
    # 510 windows of the 720 of 30 days, 70.8 %. 0.6 cores of 4 vCPUs (15 %): over-provisioned
    # if it were judged.
    g0 = end - 30 * DAY + HOUR
    fig = {'cpu': 0.6, 'cpu_max': 0.7, 'mem': 1000, 'mem_max': 1050, 'rx': 50000, 'tx': 20000}

    class Gappy(ag.Pattern):
        def at(self, start):
            d = (start - g0) // DAY
            if d % 3 == 2 and d <= 23:
                return None
            if d == 26 and (start - g0) % DAY >= 7 * HOUR:
                return None
            return fig
    today = day_floor(end)
    chart_day = today if end - today >= 2 * HOUR else today - DAY
    chart_month = time.strftime('%Y-%m', time.gmtime(chart_day))
    month = time.strftime('%Y-%m', time.gmtime())
    sent = {
        'mz#0': ag.windows(inst['mz#0'], idle, end - 20 * DAY, end),
        'mz#1': ag.windows(inst['mz#1'], busy, end - 20 * DAY, end),
        'jt#0': ag.windows(inst['jt#0'], idle, end - 60 * DAY, end),
        'jy#0': ag.windows(inst['jy#0'], Gappy(), g0, end),
        'hd#0': ag.windows(inst['hd#0'], ag.Sparse(busy1, 3), end - 60 * DAY, end),
        'ty#0': ag.windows(inst['ty#0'], busy1, chart_day,
                           min(end, chart_day + DAY)),
    }
    ck.eq(len(sent['jy#0']), 510, 'jy: 510 of the 720 windows of 30 days sent')
    records = [w for k in sorted(sent) for w in sent[k]]
    res = ag.post_windows(b, fleet.agent_token, records)
    ck.eq(res['stored'], len(records), 'every window stored')
    # Roll up every day but today's: the report must bring today's up to date itself.
    ag.rollup_days(b, adm, end - 61 * DAY, today)
    while time.time() < max(v['created'] for v in inst.values()) + MIN_AGE + 1:
        time.sleep(0.2)

    # ---- the assessment ----
    run1 = want(b.post('/v1/assessment/run', {}, token=rv), 200, 'assessment run')
    print(f'assessment run: {run1}', flush=True)
    findings = want(b.get('/v1/findings?limit=1000', token=auditor), 200, 'findings')['items']
    label = {v['id']: k for k, v in inst.items()}
    by = {(label.get(f['instance_id']), f['kind']): f for f in findings}
    ck.eq(sorted(by), [('jt#0', 'idle'), ('mz#0', 'idle')],
          'findings: the idle mz#0 and jt#0, nothing else')

    # [gaps] jy: 510 windows' readings over those expected from its first window to the run
    # (30 days less an hour, and the hour in progress): 510 x 360 / (span x 0.1 a second).
    nj = {x['instance_id']: x for x in run1.get('not_judged', [])}
    x = nj.get(inst['jy#0']['id'])
    if ck.ok(x is not None, '[gaps] jy is not judged, and the run says so'):
        span = 30 * DAY - HOUR  # from its first window (g0) to the end of the last one
        ck.eq(x['reason'], 'insufficient_evidence', '[gaps] jy: insufficient evidence')
        # The run happened after `end`: up to an hour (and the test's own time) more expected.
        lo = 510 * READINGS / ((span + 2 * HOUR) * 0.1)
        hi = 510 * READINGS / (span * 0.1)
        ck.ok(lo - 1e-6 <= x['coverage']['sizing'] <= hi + 1e-6 and
              abs(x['coverage']['sizing'] - 0.71) < 0.005,
              f'[gaps] jy: sizing coverage {x["coverage"]["sizing"]} ≈ 0.71 '
              f'({lo:.4f}..{hi:.4f})')
        # The 14-day idle window holds days 16..29: days 17, 20, 23, 26, 29 missing.
        w14 = sum(1 for w in sent['jy#0'] if w['start'] >= end - 14 * DAY + HOUR)
        ck.ok(abs(x['coverage']['idle'] - w14 / (14 * 24)) < 0.01,
              f'[gaps] jy: idle coverage {x["coverage"]["idle"]} ≈ {w14}/{14 * 24}')
    ck.ok(('jy#0', 'over_provisioned') not in by, '[gaps] jy: no finding on 71 % of the windows')

    # [scale-in] mz#0 is idle, mz#1 is busy: remove #0, not the allocation.
    f_mz = by.get(('mz#0', 'idle'))
    f_jt = by.get(('jt#0', 'idle'))
    if ck.ok(f_mz is not None and f_jt is not None, 'idle findings on mz#0 and jt#0'):
        rec = f_mz['recommendation']
        ck.eq((rec['action'], rec.get('remove_instance', {}).get('index')), ('scale_in', 0),
              '[scale-in] mz#0: the advice is to remove that instance')
        ck.eq(f_jt['recommendation']['action'], 'terminate',
              '[scale-in] jt#0, alone in its allocation: terminate')
        ck.ok('的时间窗口闲置' in f_mz['evidence'].get('rule_zh', ''),
              f'[zh] the evidence keeps the rule in Chinese: {f_mz["evidence"].get("rule_zh")}')

    # The reconciler has watched the instances for most of their life (availability needs
    # 80 % of it observed: it looks every second, from the first pass after the domain runs).
    while time.time() < max(v['created'] for v in inst.values()) + 30:
        time.sleep(0.5)

    # ---- the reports before anything ends ----
    year = time.gmtime().tm_year
    y0 = calendar.timegm((year, 1, 1, 0, 0, 0))
    rep1 = want(b.get(f'/v1/reports/assessment?year={year}', token=auditor), 200, 'assessment')
    d1 = {d['code']: d for d in rep1['departments']}

    # [money] every idle finding carries what its instance costs a month at the shipped
    # production prices and what acting on it saves (idle: all of it); the assessment sums the
    # savings of the findings live at its cut per department and for the city (docs/costs.md).
    with open(os.path.join(cbtest.POLICIES, 'pricing.json')) as fp:
        prod = [e for e in json.load(fp)['prices'] if e['purpose'] == 'production'][-1]
    saving = {}
    for (k, kind), f in by.items():
        v = inst[k]
        # micro-yuan × quantity × 730 hours, to the fen (÷ 10^4), half up; memory per GiB
        cost = sum((round(prod[key] * 10**6) * qty * 730 + per * 10**4 // 2) // (per * 10**4)
                   for key, qty, per in (('vcpu_hour', v['vcpus'], 1),
                                         ('memory_gib_hour', v['memory_mib'], 1024)))
        m = f.get('money', {})
        ck.eq((m.get('currency'), m.get('monthly_cost_fen'), m.get('monthly_saving_fen'),
               m.get('monthly_saving')), ('CNY', cost, cost, round(cost / 100, 2)),
              f'[money] {k} {kind}: its monthly cost and saving')
        saving[k.split('#')[0]] = saving.get(k.split('#')[0], 0) + m.get('monthly_saving_fen', 0)
    ck.eq({c: d1[c]['efficiency']['reclaimable_monthly_saving_fen'] for c in d1},
          {c: saving.get(c, 0) for c in d1}, '[money] the assessment\'s savings per department')
    ck.eq(rep1['city']['efficiency']['reclaimable_monthly_saving_fen'], sum(saving.values()),
          '[money] and the city\'s')
    cut1 = parse_iso(rep1['hours_to'])  # the year's hours are counted to the last full hour

    # [no-data] the report rolled today up itself, and says when.
    ops = want(b.get(f'/v1/reports/operations?month={month}', token=auditor), 200,
               'operations')
    ck.ok(ops.get('rollups_computed_at') and parse_iso(ops['rollups_computed_at']) >= end - 60,
          f'[no-data] the operations report states its rollups: {ops.get("rollups_computed_at")}')
    mz_ops = {x['name']: x for d in ops['departments'] for x in d['instances']}
    x = mz_ops.get(inst['mz#1']['name'], {})
    today_windows = [w for w in sent['mz#1'] if w['start'] >= today]
    if today_windows and month == time.strftime('%Y-%m', time.gmtime(today)):
        ms = [w for w in sent['mz#1'] if w['start'] >= calendar.timegm(
            time.strptime(month + '-01', '%Y-%m-%d'))]
        ck.eq(x.get('readings'), len(ms) * READINGS,
              '[no-data] operations: today\'s windows counted without a rollup asked for')

    def held_start(k):
        """From its creation, or its first day of metering in the year when that is older."""
        starts = [w['start'] for w in sent[k] if w['start'] >= y0]
        h0 = inst[k]['created']
        if starts:
            h0 = min(h0, day_floor(min(starts)))
        return max(h0, y0)

    # [no-data] hd: one window in three: 1/3 of its vCPU-hours measured → no data, never 100.
    e = d1['hd']['efficiency']
    hd_meas = sum(1 for w in sent['hd#0'] if w['start'] >= y0) * 1.0  # vCPU-hours (1 vCPU)
    hd_held = (cut1 - held_start('hd#0')) / 3600
    ck.eq((e['score'], e['no_data']), (None, True), '[no-data] hd: efficiency is no data')
    ck.ok(abs(e['coverage'] - min(1, hd_meas / hd_held)) < 2e-4,
          f'[no-data] hd: coverage {e["coverage"]} = {hd_meas} / {hd_held:.2f} vCPU-hours')
    ck.ok(d1['hd']['overall_score'] is None or d1['hd']['overall_score'] < 100,
          '[no-data] hd: the overall is not lifted by a perfect efficiency')

    # [year] jt before: allocated vCPU-hours = 2 × hours held; reclaimable = 2 × hours since the
    # start of the evidence that raised the finding (first found − 14 days).
    e = d1['jt']['efficiency']
    h0 = held_start('jt#0')
    f0 = max(y0, parse_iso(f_jt['first_found']) - 14 * DAY, h0)
    A1 = 2 * (cut1 - h0) / 3600
    R1 = 2 * (cut1 - f0) / 3600
    ck.ok(abs(e['allocated_vcpu_hours'] - A1) <= 0.011,
          f'[year] jt: allocated vCPU-hours {e["allocated_vcpu_hours"]} = {A1:.2f}')
    ck.ok(abs(e['reclaimable_vcpu_hours'] - R1) <= 0.011,
          f'[year] jt: reclaimable vCPU-hours {e["reclaimable_vcpu_hours"]} = {R1:.2f}')
    s1 = 100 * (1 - R1 / A1)  # memory: 2048 of 2048 MiB, the same share
    ck.ok(e['score'] is not None and abs(e['score'] - s1) <= 0.051,
          f'[year] jt: efficiency {e["score"]} = 100 × (1 − {R1:.1f}/{A1:.1f}) = {s1:.2f}')

    # [available] hd runs all the time (test driver) with a third of its windows: availability
    # from the reconciler ~1, coverage ~1/3, each in its own column.
    x = mz_ops.get(inst['hd#0']['name'], {})
    ck.ok(x.get('availability') is not None and x['availability'] >= 0.9,
          f'[available] hd: availability {x.get("availability")} (observed running)')
    ck.ok(x.get('coverage') is not None and abs(x['coverage'] - 1 / 3) < 0.05,
          f'[available] hd: metering coverage {x.get("coverage")} ≈ 1/3, its own column')
    hd_t = next(d for d in ops['departments'] if d['code'] == 'hd')['totals']
    ck.ok(hd_t['availability'] is not None and hd_t['availability'] >= 0.9 and
          abs(hd_t['coverage'] - x.get('coverage', -1)) < 1e-4,
          f'[available] hd totals: availability {hd_t["availability"]}, coverage '
          f'{hd_t["coverage"]}')

    # ---- [scale-in] the department asks for the change the finding advises ----
    tok = depts['mz']['token']
    # The change is checked like any change: an index that names no instance is refused at
    # submission, with the field (the scale-in itself runs on real QEMU: the test driver
    # cannot wipe a disk; test-report-lifecycle.py).
    bad = want(b.post('/v1/requests', {'system': systems['mz'], 'kind': 'change',
                                       'allocation': inst['mz#0']['allocation'],
                                       'justification': '缩容', 'resources': {
                                           'instances': [{'vcpus': 2, 'memory_mib': 2048,
                                                          'disk_gib': 1, 'image': 'base'}],
                                           'remove': [7]}}, token=tok), 201, 'bad change')
    r = b.post(f'/v1/requests/{bad["id"]}/submit', {}, token=tok)
    ck.eq((r.status, (cbtest.json_error(r) or {}).get('field')), (422, '/resources/remove/0'),
          '[scale-in] removing an instance that does not exist: 422 naming the index')
    r = b.post('/v1/requests', {'system': systems['mz'], 'kind': 'new', 'justification': 'x',
                                'resources': {'instances': [{'vcpus': 1, 'memory_mib': 512,
                                                             'disk_gib': 1, 'image': 'base'}],
                                              'remove': [0]}}, token=tok)
    ck.eq(r.status, 422, '[scale-in] a new request removes nothing (422)')
    want(b.post(f'/v1/requests/{bad["id"]}/withdraw', {}, token=tok), 200, 'withdraw')

    cr = want(b.post(f'/v1/findings/{f_mz["id"]}/change-request', {}, token=tok), 201,
              'change request from mz#0')
    req = want(b.get(f'/v1/requests/{cr["request_id"]}', token=tok), 200, 'GET request')
    ck.eq((req['kind'], req['resources'].get('remove'),
           [(i['vcpus'], i['memory_mib']) for i in req['resources']['instances']]),
          ('change', [0], [(2, 2048)]),
          '[scale-in] the draft is a change that removes instance 0 and keeps instance 1')
    # [money] the pre-review check shows what mz's live findings would save a month.
    rule = [x for x in req['check']['rules'] if x['rule'] == 'open_findings'][0]
    ck.eq((rule['reclaimable_monthly_saving_fen'],
           [x['monthly_saving_fen'] for x in rule['findings']]),
          (saving['mz'], [f_mz['money']['monthly_saving_fen']]),
          '[money] the pre-review check: mz\'s saving a month, per finding and in all')

    # ---- [follow] [year] jt terminates its idle allocation ----
    tok = depts['jt']['token']
    r = want(b.post('/v1/requests', {'system': systems['jt'], 'kind': 'termination',
                                     'allocation': inst['jt#0']['allocation'],
                                     'justification': '系统下线'}, token=tok), 201, 'termination')
    want(cbtest.upload_material(b, tok, r['id'], 'backup_proof', data=b'backup\n',
                                media_type='text/plain'), 201, 'backup proof')
    want(b.post(f'/v1/requests/{r["id"]}/submit', {}, token=tok), 200, 'submit termination')
    want(b.post(f'/v1/requests/{r["id"]}/decision', {'decision': 'approve'}, token=rv), 200,
         'approve termination')
    requests_made.append(('jt', r['id']))
    fleet.wait_state(r['id'], ('reclaimed', 'failed'))
    f = want(b.get(f'/v1/findings/{f_jt["id"]}', token=auditor), 200, 'finding')
    ck.eq((f['state'], f['reason']), ('resolved', 'the allocation was reclaimed'),
          '[follow] the reclaimed allocation\'s finding is resolved with the reason')
    audit = want(b.get('/v1/audit?limit=1000', token=auditor), 200, 'audit')['items']
    ck.ok(any(x.get('action') == 'finding.resolved' and x.get('object_id') == f_jt['id']
              for x in audit), '[follow] the resolution is audited')
    # The end of the vCPU-hours: when its undefine step ended (read from the database).
    con = cbtest.db_connect(b.db_path)
    t_undef = con.execute("SELECT unixepoch(max(finished_at)) FROM job_steps WHERE instance_id ="
                          " ? AND action = 'undefine' AND state = 'done'",
                          (inst['jt#0']['id'],)).fetchone()[0]
    con.close()
    t_res = parse_iso(f['state_changed_at'])

    rep2 = want(b.get(f'/v1/reports/assessment?year={year}', token=auditor), 200, 'assessment')
    d2 = {d['code']: d for d in rep2['departments']}
    e = d2['jt']['efficiency']
    cut2 = parse_iso(rep2['hours_to'])
    A2 = 2 * (min(t_undef, cut2) - h0) / 3600
    R2 = 2 * (min(t_res, cut2) - f0) / 3600
    ck.ok(abs(e['allocated_vcpu_hours'] - A2) <= 0.011 and
          abs(e['reclaimable_vcpu_hours'] - R2) <= 0.011,
          f'[year] jt after the reclaim: {e["allocated_vcpu_hours"]} vCPU-hours held ({A2:.2f}), '
          f'{e["reclaimable_vcpu_hours"]} reclaimable ({R2:.2f})')
    ck.ok(e['score'] is not None and abs(e['score'] - 100 * (1 - R2 / A2)) <= 0.051 and
          abs(e['score'] - d1['jt']['efficiency']['score']) <= 0.2,
          f'[year] jt: ending the idle allocation does not rewrite the year '
          f'({d1["jt"]["efficiency"]["score"]} → {e["score"]})')
    ck.eq((e['allocated_vcpus'], e['reclaimable_vcpus']), (2, 0),
          '[year] jt: its 2 vCPUs still count for the year; nothing is reclaimable now')
    bad = [(code, d['efficiency']['used_vcpus_avg'], d['efficiency']['allocated_vcpus'])
           for code, d in list(d2.items()) + [('CITY', rep2['city'])]
           if d['efficiency']['used_vcpus_avg'] > 0 and
           (d['efficiency']['allocated_vcpus'] <= 0 or
            d['efficiency']['allocated_vcpu_hours'] <= 0)]
    ck.eq(bad, [], '[year] nothing is "used of 0 allocated"')

    # ---- the operations report after: nothing advises reclaiming what is gone ----
    ops = want(b.get(f'/v1/reports/operations?month={month}', token=auditor), 200, 'ops')
    listed = sorted(f['instance'] for d in ops['departments'] for f in d['findings'])
    ck.eq(listed, [inst['mz#0']['name']],
          '[follow] no finding listed for the reclaimed instance (mz#0 is still there)')
    html = want_raw(b, f'/v1/reports/operations?month={month}&format=html', auditor).decode()
    ck.ok('建议回收' not in html and '建议缩容：移除此实例' in html,
          '[follow] the Chinese operations report: no reclaim advice for jt#0; mz#0: scale in')

    # ---- [zh] the city totals and the month's requests handled ----
    c = ops.get('city', {})
    t = c.get('totals', {})
    ck.eq(t.get('instances'), sum(d['totals']['instances'] for d in ops['departments']),
          '[zh] city totals: the instances of every department')
    ck.ok(abs(t.get('instance_hours', -1) - sum(d['totals']['instance_hours']
                                               for d in ops['departments'])) < 0.01,
          '[zh] city totals: the instance-hours of every department')
    q = c.get('requests', {})
    n_dec = len(requests_made) + 1  # every request decided once, the returned one twice
    ck.eq((q.get('received'), q.get('approved'), q.get('returned'), q.get('rejected'),
           q.get('decided')), (len(requests_made), len(requests_made) - 1, 1, 1, n_dec),
          '[zh] city: requests received, approved, returned, rejected this month')
    ck.ok(q.get('median_days_to_decide') is not None and q['median_days_to_decide'] < 0.01,
          f'[zh] city: median days to decide {q.get("median_days_to_decide")} (minutes here)')
    ty_q = next(d for d in ops['departments'] if d['code'] == 'ty')['requests']
    ck.eq((ty_q['received'], ty_q['approved'], ty_q['returned'], ty_q['rejected']),
          (2, 1, 1, 1), '[zh] ty: 2 received, 1 approved, 1 returned (then rejected)')

    # ---- [zh] the CSV carries every section ----
    raw = want_raw(b, f'/v1/reports/operations?month={month}&format=csv', auditor)
    sections = [s_ for s_ in raw.decode('utf-8-sig').split('\r\n\r\n') if s_.strip()]
    heads = [next(csv.reader(io.StringIO(s_))) for s_ in sections]
    ck.eq([h[2] if len(h) > 2 else None for h in heads],
          ['instance', 'instances', 'received', 'day', 'instance', 'first_seen'],
          '[zh] operations CSV: instances, totals, requests, daily, findings, events')
    tot_rows = list(csv.DictReader(io.StringIO(sections[1])))
    ck.ok(any(r_['department'] == 'CITY' for r_ in tot_rows) and
          'availability' in heads[1] and 'coverage' in heads[1],
          '[zh] operations CSV: the totals with availability and coverage, and the city')

    # ---- [zh] every text of a Chinese report is Chinese; empty tables say so ----
    allowed = sorted(names | set(depts), key=len, reverse=True)
    for url in (f'/v1/reports/operations?month={month}&format=html',
                f'/v1/reports/assessment?year={year}&format=html',
                f'/v1/reports/operations?month={chart_month}&format=html'):
        html = want_raw(b, url, auditor).decode()
        ck.eq(latin_words(html, allowed)[:8], [], f'[zh] {url}: no text in Latin letters')
    # A department with nothing found: its findings table says 无 (none in English).
    html = want_raw(b, f'/v1/reports/operations?month={month}&format=html&department='
                       f'{depts["hd"]["id"]}', auditor).decode()
    p = Text()
    p.feed(html)
    ck.ok(p.none_rows >= 2 and '无' in p.texts,
          f'[zh] empty findings and events tables say 无 ({p.none_rows} rows)')
    html = want_raw(b, f'/v1/reports/operations?month={month}&format=html&lang=en&department='
                       f'{depts["hd"]["id"]}', auditor).decode()
    p = Text()
    p.feed(html)
    ck.ok(p.none_rows >= 2 and 'none' in p.texts, '[zh] in English they say none')

    # ---- [zh] a one-day chart draws its point ----
    ops_c = want(b.get(f'/v1/reports/operations?month={chart_month}&department='
                       f'{depts["ty"]["id"]}', token=auditor), 200, 'ops ty')
    days = ops_c['departments'][0]['daily']
    html = want_raw(b, f'/v1/reports/operations?month={chart_month}&format=html&department='
                       f'{depts["ty"]["id"]}', auditor).decode()
    p = Text()
    p.feed(html)
    ck.ok(len(days) == 1 and p.circles == 2,
          f'[zh] ty: one day of data, and its chart draws it ({len(days)} day, '
          f'{p.circles} dots)')


def want_raw(b, path, token):
    r = b.get(path, token=token)
    if r.status != 200:
        raise RuntimeError(f'GET {path}: {r}')
    return r.body


if __name__ == '__main__':
    main()
