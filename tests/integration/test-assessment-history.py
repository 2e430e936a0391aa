#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A year of history for a fleet, through the real API, and the assessment of it.

assessgen.py builds five departments' systems through the whole workflow (trial and production
hosts on libvirt's test driver), posts a year of hourly windows with the production host's agent
token, rolls every day up, and this test runs the assessment and checks, against figures worked
out here by hand:
  - each instance's finding (idle / over_provisioned / under_provisioned / none), its evidence
    and its recommended size and what it frees;
  - each department's indicators in the annual assessment (JSON), the same numbers in CSV and
    HTML, the ranking and Art. 5's no-budget list;
  - the operations report of the current month listing the findings.

The fleet (vCPUs / MiB; the usage pattern; what is expected):
  民政局 mz  oa      2/2048  idle (0.005 cores, 0.51 one hour a day) → idle, frees 2/2048
             portal  2/2048  steady 1.21-1.39 cores, 1500 MiB        → none; backup too old,
                                                                         an open high vuln
             calc    1/4096  0.945 cores, 1000 MiB                   → under (CPU) and over
                                                                         (memory): 2/1280
             archive         off the cloud
  交通局 jt  gis     4/8192  office hours 1.10 cores, else 0.30      → over: 2/2816, no backup
             ticket  4/4096  bursty: 2.42 cores 3 h a day, else 0.22 → none (p95 61 %)
             sensor  2/2048  idle, but only one window in three      → none (coverage 33 %)
  教育局 jy  web     2/2048 steady + 1/1024 idle (one allocation)     → idle on the second
             exam    2/2048  idle, only the last 3 days reported     → none (coverage)
             enroll  2/2048  idle 30 days, allocated just before the run → none (too young),
                                                                       idle once old enough
             legacy          off the cloud
  卫生局 hd  his             trial failed its security test: off the cloud
  体育局 ty  (no systems)
"""
import csv
import io
import math
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import assessgen as ag  # noqa: E402
import cbtest  # noqa: E402
from assessgen import DAY, HOUR, READINGS  # noqa: E402

MIN_AGE = 30  # evidence.min_age_seconds of the test policy
YEAR_DAYS = 365


def iso(t):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t))


def parse_iso(s):
    import calendar
    return calendar.timegm(time.strptime(s[:19], '%Y-%m-%dT%H:%M:%S'))


class Table:
    """Checks that also keep an expected-vs-actual table for the report."""

    def __init__(self, ck):
        self.ck = ck
        self.rows = []

    def eq(self, what, got, want):
        ok = got == want
        self.rows.append((what, want, got, ok))
        return self.ck.ok(ok, f'{what}: got {got!r}, want {want!r}')

    def near(self, what, got, want, tol):
        ok = got is not None and want is not None and abs(got - want) <= tol
        self.rows.append((what, want if not isinstance(want, float) else round(want, 4),
                          got, ok))
        return self.ck.ok(ok, f'{what}: got {got!r}, want {want!r} (± {tol})')

    def dump(self):
        w = max(len(r[0]) for r in self.rows)
        print(f'{"check":<{w}}  {"expected":>14}  {"actual":>14}')
        for what, want, got, ok in self.rows:
            print(f'{what:<{w}}  {str(want):>14}  {str(got):>14}  {"" if ok else "  <-- FAIL"}')


def nearest_rank(values, q):
    v = sorted(values)
    return v[max(1, math.ceil(q * len(v))) - 1] if v else None


def bin_upper(u):
    """The upper edge of the 1 % bin holding utilization @u. Every pattern keeps its
    utilizations inside a bin (60.5 %, 27.5 %, ...), never on an edge, so this is plain
    rounding up."""
    return math.ceil(u * 100) / 100


def main():
    ck = cbtest.Checks('test-assessment-history')
    work = tempfile.mkdtemp(prefix='cbassess-')
    pol = ag.policy_dir(os.path.join(work, 'policies'),
                        assessment={'evidence': {'min_coverage': 0.80,
                                                 'min_age_seconds': MIN_AGE}})
    b = cbtest.Broker(policy_dir=pol)
    t_start = time.monotonic()
    try:
        b.start()
        run(ck, b, work)
    finally:
        b.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f'runtime: {time.monotonic() - t_start:.1f} s', flush=True)
    ck.done()


def run(ck, b, work):
    T = Table(ck)
    timing = {}
    t = time.monotonic()
    fleet = ag.Fleet(b, work)
    depts = {}
    for code, name in (('mz', '民政局'), ('jt', '交通局'), ('jy', '教育局'), ('hd', '卫生局'),
                       ('ty', '体育局')):
        depts[code] = fleet.department(code, name)

    # ---- systems and allocations, through the workflow ----
    # (code, system, [(vcpus, memory_mib)] or None when the system stays off the cloud)
    plan = [
        ('mz', 'oa', [(2, 2048)]), ('mz', 'portal', [(2, 2048)]), ('mz', 'calc', [(1, 4096)]),
        ('mz', 'archive', None),
        ('jt', 'gis', [(4, 8192)]), ('jt', 'ticket', [(4, 4096)]), ('jt', 'sensor', [(2, 2048)]),
        ('jy', 'web', [(2, 2048), (1, 1024)]), ('jy', 'exam', [(2, 2048)]),
        ('jy', 'enroll', [(2, 2048)]),  # allocated later, just before the run
        ('jy', 'legacy', None),
        ('hd', 'his', [(2, 2048)]),  # its trial fails the security test
    ]
    systems, rids = {}, {}
    for code, name, specs in plan:
        systems[(code, name)] = fleet.system(code, name)
        if specs and name not in ('enroll', 'his'):
            rids[(code, name)] = fleet.submit_new(code, systems[(code, name)], specs)
    allocs = fleet.through_workflow(list(rids.values()))
    rid_his = fleet.submit_new('hd', systems[('hd', 'his')], [(2, 2048)])
    failed = fleet.through_workflow([rid_his], security='fail')
    ck.eq(failed[rid_his], None, 'his: no allocation after a failed security test')
    ck.eq(fleet.request(rid_his)['state'], 'trial_failed', 'his: trial_failed')

    inst = {}  # label 'mz/oa#0' -> {'id','uuid','vcpus','memory_mib','name','created'}

    def take(key, alloc):
        for i in alloc['instances']:
            inst[f'{key[0]}/{key[1]}#{i["index"]}'] = {
                'id': i['id'], 'uuid': i['uuid'], 'vcpus': i['vcpus'],
                'memory_mib': i['memory_mib'], 'name': i['name'], 'allocation': alloc['id'],
                'created': parse_iso(alloc['created_at'])}
    for key, rid in rids.items():
        take(key, allocs[rid])
    timing['workflow'] = time.monotonic() - t
    ck.eq(len(inst), 9, 'nine instances allocated through the workflow')

    # ---- security and backup records (vendor records findings, departments attest) ----
    now0 = int(time.time())
    vendor = fleet.vendor

    def post(path, body, token, what):
        r = b.post(path, body, token=token)
        ck.eq(r.status, 201, what)
        return r.json().get('id') if r.status == 201 else None

    def backup(code, name, age_days):
        post(f'/v1/systems/{systems[(code, name)]}/backups',
             {'location': 'dr-centre://store/' + name, 'taken_at': iso(now0 - age_days * DAY),
              'size_bytes': 10 ** 9, 'sha256': 'ab' * 32}, depts[code]['token'],
             f'backup {code}/{name}')
    for code, name in (('mz', 'oa'), ('mz', 'calc'), ('jt', 'ticket'), ('jt', 'sensor'),
                       ('jy', 'web'), ('jy', 'exam'), ('jy', 'enroll')):
        backup(code, name, 2)
    backup('mz', 'portal', 60)  # older than backup_max_age_days (31): not attested
    # jt/gis: no backup at all.
    post(f'/v1/systems/{systems[("mz", "portal")]}/vulnerabilities',
         {'severity': 'high', 'title': 'outdated TLS library', 'found_at': iso(now0 - 40 * DAY)},
         vendor, 'vulnerability portal (high, open)')
    crit = post(f'/v1/systems/{systems[("jy", "web")]}/vulnerabilities',
                {'severity': 'critical', 'title': 'RCE in upload form',
                 'found_at': iso(now0 - 100 * DAY)}, vendor, 'vulnerability web (critical)')
    r = b.request('PATCH', f'/v1/vulnerabilities/{crit}',
                  body={'status': 'fixed', 'fixed_at': iso(now0 - 90 * DAY)}, token=vendor)
    ck.eq(r.status, 200, 'PATCH the critical vulnerability to fixed 90 days ago')
    fixed_at = r.json().get('fixed_at')
    r = b.request('PATCH', f'/v1/vulnerabilities/{crit}', body={'status': 'fixed'}, token=vendor)
    ck.eq((r.status, r.json().get('fixed_at')), (200, fixed_at),
          'PATCH status fixed again without fixed_at keeps the time it was fixed')
    post(f'/v1/systems/{systems[("jy", "web")]}/vulnerabilities',
         {'severity': 'medium', 'title': 'verbose errors', 'found_at': iso(now0 - 20 * DAY)},
         vendor, 'vulnerability web (medium, open)')
    # Incidents of this (UTC) year, even early in January; and one of last year.
    y_start = parse_iso(time.strftime('%Y-01-01T00:00:00', time.gmtime(now0)))

    def this_year(t):
        return min(now0 - 60, max(y_start + 60, t))
    t_calc = this_year(now0 - 10 * DAY)
    inc = post(f'/v1/systems/{systems[("mz", "calc")]}/incidents',
               {'severity': 'medium', 'title': 'brute-force logins', 'occurred_at': iso(t_calc)},
               vendor, 'incident calc (this year)')
    # Resolved later (PATCH /v1/incidents/{id}); never before it occurred; null reopens; the
    # department of the system may record it too, another department may not see it (404).
    r = b.request('PATCH', f'/v1/incidents/{inc}', body={'resolved_at': iso(t_calc - DAY)},
                  token=vendor)
    ck.eq((r.status, (r.json().get('error') or {}).get('field')), (422, '/resolved_at'),
          'an incident is not resolved before it occurred')
    r = b.request('PATCH', f'/v1/incidents/{inc}', body={'resolved_at': iso(t_calc + 3600)},
                  token=vendor)
    ck.eq((r.status, (r.json().get('resolved_at') or '')[:19]), (200, iso(t_calc + 3600)[:19]),
          'PATCH /v1/incidents/{id} records when it was resolved')
    r = b.request('PATCH', f'/v1/incidents/{inc}', body={'resolved_at': None},
                  token=depts['mz']['token'])
    ck.eq((r.status, r.json().get('resolved_at')), (200, None),
          'the department reopens its incident (resolved_at null)')
    r = b.request('PATCH', f'/v1/incidents/{inc}', body={'resolved_at': iso(t_calc + 3600)},
                  token=depts['jt']['token'])
    ck.eq(r.status, 404, "another department's incident is not found")
    post(f'/v1/systems/{systems[("jt", "ticket")]}/incidents',
         {'severity': 'high', 'title': 'defacement',
          'occurred_at': iso(this_year(now0 - 50 * DAY)),
          'resolved_at': iso(this_year(now0 - 49 * DAY))}, vendor, 'incident ticket (this year)')
    post(f'/v1/systems/{systems[("jy", "web")]}/incidents',
         {'severity': 'low', 'title': 'port scan', 'occurred_at': iso(y_start - 30 * DAY)},
         vendor, 'incident web (last year: not counted this year)')

    # ---- a year of hourly windows ----
    end = int(time.time()) // HOUR * HOUR  # the end of the last finished window
    t0 = end - YEAR_DAYS * DAY
    idle = ag.Idle(cores=0.005, burst_hour=2, burst_cores=0.51)
    pattern = {
        'mz/oa#0': idle,
        'mz/portal#0': ag.Steady(1.21, 1.39, 1500),
        'mz/calc#0': ag.Constant(0.945, 1000, cores_max=1.0),
        'jt/gis#0': ag.Diurnal(range(9, 18), 1.10, 0.30, 2200, 1800),
        'jt/ticket#0': ag.Bursty((10, 14, 20), 2.42, 0.22, 2900),
        'jt/sensor#0': ag.Sparse(idle, 3),
        'jy/web#0': ag.Steady(1.21, 1.39, 1500),
        'jy/web#1': idle,
        'jy/exam#0': ag.Since(idle, end - 3 * DAY),
        'jy/enroll#0': ag.Since(idle, end - 30 * DAY),
    }
    t = time.monotonic()
    sent = {}
    records = []
    for label in sorted(inst):
        sent[label] = ag.windows(inst[label], pattern[label], t0, end)
        records.extend(sent[label])
    timing['generate'] = time.monotonic() - t
    res = ag.post_windows(b, fleet.agent_token, records)
    timing['ingest'] = res['seconds']
    ck.eq((res['stored'], res['duplicates']), (len(records), 0), 'every window stored once')
    print(f'generated {len(records)} windows for {len(sent)} instances '
          f'({", ".join(f"{k}: {len(v)}" for k, v in sorted(sent.items()))}); '
          f'posted in {res["batches"]} batches, {res["seconds"]:.1f} s '
          f'({len(records) / max(res["seconds"], 1e-9):.0f} windows/s)', flush=True)
    # At-least-once delivery: the first batch again is all duplicates.
    again = ag.post_windows(b, fleet.agent_token, records[:5000])
    ck.eq((again['stored'], again['duplicates']), (0, 5000), 'a batch sent twice: duplicates')

    adm = b.admin_token
    n_days, secs = ag.rollup_days(b, adm, t0, end)
    timing['rollup'] = secs
    print(f'rolled up {n_days} days in {secs:.1f} s ({secs / n_days * 1000:.0f} ms a day)',
          flush=True)

    # ---- the young instance: allocated now, with 30 days of windows from a migration ----
    rid_enroll = fleet.submit_new('jy', systems[('jy', 'enroll')], [(2, 2048)])
    take(('jy', 'enroll'), fleet.through_workflow([rid_enroll])[rid_enroll])
    sent['jy/enroll#0'] = ag.windows(inst['jy/enroll#0'], pattern['jy/enroll#0'], t0, end)
    res2 = ag.post_windows(b, fleet.agent_token, sent['jy/enroll#0'])
    ck.eq(res2['stored'], 30 * 24, 'enroll: 30 days of hourly windows stored')
    ag.rollup_days(b, adm, end - 31 * DAY, end)
    total_windows = len(records) + len(sent['jy/enroll#0'])
    metrics = b.get('/metrics', token=adm).body.decode()
    m = re.search(r'^cloudbroker_samples_stored_total (\S+)$', metrics, re.M)
    ck.eq(float(m.group(1)) if m else None, float(total_windows),
          '/metrics: samples stored = windows sent')

    # Everything else is older than the minimum age; enroll is not.
    oldest = max(v['created'] for k, v in inst.items() if k != 'jy/enroll#0')
    while time.time() < oldest + MIN_AGE + 1:
        time.sleep(0.5)
    if not ck.ok(time.time() < inst['jy/enroll#0']['created'] + MIN_AGE - 5,
                 'enroll is still younger than the minimum age at the run'):
        print('(the rollups took too long for the young instance; its checks will fail)')

    # ---- the assessment ----
    t = time.monotonic()
    r = b.post('/v1/assessment/run', {}, token=fleet.reviewer)
    timing['assessment'] = time.monotonic() - t
    ck.eq(r.status, 200, 'POST /v1/assessment/run')
    summary = r.json()
    print(f'assessment run: {summary}', flush=True)
    T.eq('run: instances', summary.get('instances'), 10)
    T.eq('run: too_young (enroll)', summary.get('too_young'), 1)
    T.eq('run: insufficient_evidence (sensor, exam)', summary.get('insufficient_evidence'), 2)
    T.eq('run: findings created', summary.get('created'), 5)

    r = b.get('/v1/findings?limit=1000', token=fleet.auditor)
    ck.eq(r.status, 200, 'GET /v1/findings')
    findings = r.json()['items']
    by_inst = {}
    label_of = {v['id']: k for k, v in inst.items()}
    for f in findings:
        by_inst.setdefault(label_of.get(f['instance_id'], '?'), {})[f['kind']] = f

    # The expected findings, by hand.
    #   oa (2 vCPUs, 2048 MiB): 23 of 24 windows a day under 0.03 cores with 100 / 40 B/s of
    #     network → idle share 95.8 % ≥ 95 % → idle: terminate, frees 2 vCPUs and 2048 MiB.
    #   calc (1 vCPU, 4096 MiB): 0.945 cores = 94.5 % → bin (94 %, 95 %] → p95 0.95 > 0.90:
    #     under-provisioned; 0.95 × 1 × 1.2 = 1.14 → 2 vCPUs. Memory 1000 / 4096 = 24.4 % →
    #     p95 0.25 < 0.60: over-provisioned; 0.25 × 4096 = 1024 MiB × 1.2 = 1228.8 → up to
    #     the 256 MiB step: 5 × 256 = 1280 MiB. Recommended 2 vCPUs / 1280 MiB.
    #   gis (4 vCPUs, 8192 MiB): 9 office hours of 24 (37.5 % of windows, > 5 %) at 1.10
    #     cores = 27.5 % → p95 bin edge 0.28 < 0.40 → 0.28 × 4 = 1.12 cores × 1.2 = 1.344 →
    #     2 vCPUs. Memory 2200 / 8192 = 26.9 % → p95 0.27 → 0.27 × 8192 = 2211.84 MiB × 1.2 =
    #     2654.2 → 11 × 256 = 2816 MiB. Frees 2 vCPUs and 5376 MiB.
    #   web#1 (1 vCPU, 1024 MiB): idle as oa → frees 1 / 1024.
    #   ticket (4 vCPUs): 3 hours a day (12.5 % > 5 %) at 2.42 cores = 60.5 % → p95 0.61:
    #     neither < 0.40 nor > 0.90; memory 2900 / 4096 = 70.8 % → 0.71: neither. No finding,
    #     although its average (21 × 0.22 + 3 × 2.42) / 24 = 0.495 cores is 12.4 %.
    #   portal, web#0: 60.5-69.5 % CPU, 73 % memory: no finding.
    assert math.ceil(0.95 * 1 * 1.2) == 2 and math.ceil(1024 * 1.2 / 256) * 256 == 1280
    assert math.ceil(0.28 * 4 * 1.2) == 2 and math.ceil(0.27 * 8192 * 1.2 / 256) * 256 == 2816
    expect = {
        'mz/oa#0': {'idle': ((0, 0), (2, 2048))},
        'mz/portal#0': {},
        'mz/calc#0': {'under_provisioned': ((2, 1280), (-1, 2816)),
                      'over_provisioned': ((2, 1280), (-1, 2816))},
        'jt/gis#0': {'over_provisioned': ((2, 2816), (2, 5376))},
        'jt/ticket#0': {},
        'jt/sensor#0': {},
        'jy/web#0': {},
        'jy/web#1': {'idle': ((0, 0), (1, 1024))},
        'jy/exam#0': {},
        'jy/enroll#0': {},
    }
    for label, kinds in expect.items():
        got = by_inst.get(label, {})
        T.eq(f'{label} finding kinds', sorted(got), sorted(kinds))
        for kind, (rec, frees) in kinds.items():
            f = got.get(kind)
            if not f:
                continue
            rr = f['recommendation']['recommended']
            T.eq(f'{label} {kind} recommended', (rr['vcpus'], rr['memory_mib']), rec)
            T.eq(f'{label} {kind} frees', (f['frees']['vcpus'], f['frees']['memory_mib']),
                 frees)
            T.eq(f'{label} {kind} state', f['state'], 'open')
    ck.eq(by_inst.get('?'), None, 'no finding on an instance the test does not know')

    def in_window(label, f):
        """The windows sent for @label inside the finding @f's evidence window."""
        w0 = parse_iso(f['evidence']['window']['from'])
        w1 = parse_iso(f['evidence']['window']['to'])
        return [w for w in sent[label] if w0 <= w['start'] < w1]

    # Evidence of the idle finding of oa: the windows of the 14 days, by hand.
    f = by_inst.get('mz/oa#0', {}).get('idle')
    if f:
        ev = f['evidence']
        ws = in_window('mz/oa#0', f)
        n_idle = sum(1 for w in ws if ag.hour_of_day(w['start']) != 2)  # all but 02:00
        T.eq('oa idle: evidence window seconds', ev['window']['seconds'], 14 * DAY)
        T.eq('oa idle: checked windows', ev.get('checked_windows'), len(ws))
        T.eq('oa idle: idle windows', ev.get('idle_windows'), n_idle)
        T.near('oa idle: idle share', ev.get('idle_share'), n_idle / len(ws), 1e-9)
        # Coverage: readings over the readings 14 days of hourly windows should have.
        T.near('oa idle: coverage', ev.get('coverage'), len(ws) * READINGS /
               (14 * 24 * READINGS), 1e-6)
        ck.ok(0.95 <= n_idle / len(ws) < 0.97, f'oa: the idle share is just over 95 % '
              f'({n_idle}/{len(ws)})')
    # Evidence of gis: the 30-day window.
    f = by_inst.get('jt/gis#0', {}).get('over_provisioned')
    if f:
        ev, rec = f['evidence'], f['recommendation']
        ws = in_window('jt/gis#0', f)
        T.eq('gis: evidence window seconds', ev['window']['seconds'], 30 * DAY)
        T.near('gis: coverage', ev['coverage'], len(ws) / (30 * 24), 1e-6)
        T.near('gis: cpu p95 utilization', ev['cpu']['p95_utilization'], 0.28, 1e-9)
        T.near('gis: cpu p95 cores', ev['cpu']['p95_cores'], 1.12, 1e-9)
        T.near('gis: cpu avg cores', ev['cpu']['avg_cores'],
               sum(w['cpu_cores_avg'] for w in ws) / len(ws), 1e-6)
        T.near('gis: cpu max cores', ev['cpu']['max_cores'], 1.5, 1e-9)
        T.near('gis: memory p95 utilization', ev['memory']['p95_utilization'], 0.27, 1e-9)
        T.near('gis: memory statistic MiB', rec.get('memory_statistic_mib'), 0.27 * 8192, 1e-6)
        T.near('gis: cpu statistic cores', rec.get('cpu_statistic_cores'), 1.12, 1e-9)
        T.eq('gis: recommendation mode/headroom', (rec['mode'], rec['headroom']),
             ('moderate', 0.2))
        ck.ok('p95 CPU 28 %' in f['rule'] and 'p95 memory 27 %' in f['rule'],
              f'gis: the rule names both p95s: {f["rule"]!r}')
    f = by_inst.get('mz/calc#0', {}).get('under_provisioned')
    if f:
        T.near('calc: cpu p95 utilization', f['evidence']['cpu']['p95_utilization'], 0.95, 1e-9)
        T.near('calc: memory p95 utilization', f['evidence']['memory']['p95_utilization'], 0.25,
               1e-9)

    # Bursty: its daily rollup shows the low average and the high p95 that kept it clean.
    day = end - end % DAY - DAY  # yesterday, a whole day
    r = b.get(f"/v1/instances/{inst['jt/ticket#0']['id']}/usage?from={day}&to={day + DAY}"
              f"&step=86400", token=fleet.auditor)
    pts = r.json().get('points', []) if r.status == 200 else []
    if ck.eq(len(pts), 1, 'ticket: one daily rollup point for yesterday'):
        T.near('ticket: daily avg cores', pts[0]['cpu_cores_avg'], (21 * 0.22 + 3 * 2.42) / 24,
               1e-9)
        # 24 windows, nearest rank ceil(0.95 × 24) = 23rd of the sorted values: a burst (2.42).
        T.near('ticket: daily p95 cores', pts[0]['cpu_cores_p95'], 2.42, 1e-9)

    # The department sees its own findings only.
    r = b.get('/v1/findings?limit=1000', token=depts['jt']['token'])
    ck.eq(sorted(label_of.get(f['instance_id']) for f in r.json().get('items', [])),
          ['jt/gis#0'], 'jt sees its own finding only')

    # Lifecycle: jt acknowledges gis's finding (it stays live and counted) and turns it into
    # a change request pre-filled with the recommended size.
    gis_f = by_inst.get('jt/gis#0', {}).get('over_provisioned')
    if gis_f:
        r = b.post(f'/v1/findings/{gis_f["id"]}/acknowledge', {}, token=depts['jt']['token'])
        ck.eq((r.status, r.json().get('state')), (200, 'acknowledged'), 'acknowledge gis')
        r = b.post(f'/v1/findings/{gis_f["id"]}/change-request', {}, token=depts['jt']['token'])
        ck.eq(r.status, 201, 'change request from the gis finding')
        if r.status == 201:
            req = fleet.request(r.json()['request_id'])
            ck.eq((req['kind'], req['state'],
                   [(i['vcpus'], i['memory_mib']) for i in req['resources']['instances']]),
                  ('change', 'draft', [(2, 2816)]), 'the change request carries 2 vCPUs / 2816 MiB')

    # A finding's change request follows POST /v1/requests: one open request per allocation.
    # mz drafts a termination of calc's allocation; the change request from calc's finding is
    # then refused (409 open_request) and changes nothing; the draft is withdrawn.
    calc_f = by_inst.get('mz/calc#0', {}).get('under_provisioned')
    if ck.ok(calc_f is not None, 'calc has an under-provisioned finding'):
        tok = depts['mz']['token']
        r = b.post('/v1/requests', {'system': calc_f['system_id'], 'kind': 'termination',
                                    'allocation': calc_f['allocation_id'],
                                    'justification': 'moving off the cloud'}, token=tok)
        ck.eq(r.status, 201, 'mz drafts a termination of calc')
        draft = r.json().get('id') if r.status == 201 else None
        n_req = len(b.get('/v1/requests?limit=1000', token=tok).json()['items'])
        r = b.post(f'/v1/findings/{calc_f["id"]}/change-request', {}, token=tok)
        ck.eq((r.status, (r.json().get('error') or {}).get('code')), (409, 'open_request'),
              'a change request from a finding while the allocation has an open request')
        ck.eq(len(b.get('/v1/requests?limit=1000', token=tok).json()['items']), n_req,
              'the refused change request created no request')
        r = b.get(f'/v1/findings/{calc_f["id"]}', token=tok)
        ck.eq((r.json().get('state'), r.json().get('change_request_id')),
              (calc_f['state'], None), 'the refused change request left the finding as it was')
        if draft:
            r = b.post(f'/v1/requests/{draft}/withdraw', {}, token=tok)
            ck.eq(r.status, 200, 'mz withdraws the termination draft')

    # ---- the annual assessment ----
    year = int(time.strftime('%Y', time.gmtime()))
    y0 = parse_iso(f'{year}-01-01T00:00:00')
    r = b.get(f'/v1/reports/assessment?year={year}', token=fleet.auditor)
    ck.eq(r.status, 200, f'GET /v1/reports/assessment?year={year}')
    rep = r.json()
    got_d = {d['code']: d for d in rep.get('departments', [])}

    # By hand (weights 0.30 / 0.40 / 0.30; security 0.40 test, 0.30 backup, 0.20 no open
    # critical/high, 0.10 no incident; efficiency = 100 × mean(1 − reclaimable / allocated) over
    # vCPUs and memory; overall = weighted mean of the indicators a department has):
    #  mz: systems 4 (archive off) → 3/4 = 75.0.
    #      allocations oa 2/2048, portal 2/2048, calc 1/4096 → 5 vCPUs, 8192 MiB (8 GiB);
    #      idle 1 (oa), over 1 (calc); reclaimable: oa 2 vCPUs + 2048 MiB, calc's memory
    #      4096 − 1280 = 2816 MiB (its vCPUs grow, nothing to reclaim) → 2 vCPUs, 4864 MiB
    #      = 4.75 GiB. Efficiency 100 × ((1 − 2/5) + (1 − 4864/8192)) / 2 = 50.3125.
    #      Security over 3 systems: tests 3, backups 2 (portal's is 60 days old), no severe 2
    #      (portal: high), no incident 2 (calc) → 100 × (0.4 + 0.3·2/3 + 0.2·2/3 + 0.1·2/3) =
    #      80.0. Overall 0.3·75 + 0.4·50.3125 + 0.3·80 = 66.625.
    #  jt: 3/3 = 100. 4/8192 + 4/4096 + 2/2048 → 10 vCPUs, 14336 MiB (14 GiB); over 1 (gis:
    #      2 vCPUs, 5376 MiB = 5.25 GiB). Efficiency 100 × (0.8 + 0.625) / 2 = 71.25.
    #      Security: tests 3, backups 2 (gis none), no severe 3, no incident 2 (ticket) →
    #      100 × (0.4 + 0.2 + 0.2 + 0.1·2/3) = 86.667. Overall 30 + 28.5 + 26 = 84.5.
    #  jy: systems 4 (legacy off) → 75. web 3/3072 + exam 2/2048 + enroll 2/2048 → 7 vCPUs,
    #      7168 MiB (7 GiB); idle 1 (web#1: 1 vCPU, 1024 MiB). Efficiency 100 × (6/7 + 6/7) /
    #      2 = 85.714. Security: 3 tests, 3 backups, no open critical/high (the critical one
    #      was fixed 90 days ago; the medium one does not count), no incident this year (the
    #      port scan was last year) → 100. Overall 22.5 + 34.286 + 30 = 86.786.
    #  hd: 1 system, off the cloud → 0; no efficiency, no security → overall 0.
    #  ty: no systems → no indicator, no overall, no rank.
    #  Ranking: jy 86.8, jt 84.5, mz 66.6, hd 0.
    E = {
        'mz': dict(systems=4, on_cloud=3, allocations=3, vcpus=5, mem=8192, idle=1, over=1,
                   rv=2, rm=4864, sec_n=3, test=3, backup=2, vul={'critical': 0, 'high': 1,
                   'medium': 0, 'low': 0}, incidents=1, s_cloud=75.0,
                   s_eff=100 * ((1 - 2 / 5) + (1 - 4864 / 8192)) / 2,
                   s_sec=100 * (0.4 * 3 / 3 + 0.3 * 2 / 3 + 0.2 * 2 / 3 + 0.1 * 2 / 3), rank=3),
        'jt': dict(systems=3, on_cloud=3, allocations=3, vcpus=10, mem=14336, idle=0, over=1,
                   rv=2, rm=5376, sec_n=3, test=3, backup=2, vul={'critical': 0, 'high': 0,
                   'medium': 0, 'low': 0}, incidents=1, s_cloud=100.0,
                   s_eff=100 * ((1 - 2 / 10) + (1 - 5376 / 14336)) / 2,
                   s_sec=100 * (0.4 + 0.3 * 2 / 3 + 0.2 + 0.1 * 2 / 3), rank=2),
        'jy': dict(systems=4, on_cloud=3, allocations=3, vcpus=7, mem=7168, idle=1, over=0,
                   rv=1, rm=1024, sec_n=3, test=3, backup=3, vul={'critical': 0, 'high': 0,
                   'medium': 1, 'low': 0}, incidents=0, s_cloud=75.0,
                   s_eff=100 * ((1 - 1 / 7) + (1 - 1024 / 7168)) / 2, s_sec=100.0, rank=1),
        'hd': dict(systems=1, on_cloud=0, allocations=0, vcpus=0, mem=0, idle=0, over=0,
                   rv=0, rm=0, sec_n=0, test=0, backup=0, vul={'critical': 0, 'high': 0,
                   'medium': 0, 'low': 0}, incidents=0, s_cloud=0.0, s_eff=None, s_sec=None,
                   rank=4),
        'ty': dict(systems=0, on_cloud=0, allocations=0, vcpus=0, mem=0, idle=0, over=0,
                   rv=0, rm=0, sec_n=0, test=0, backup=0, vul={'critical': 0, 'high': 0,
                   'medium': 0, 'low': 0}, incidents=0, s_cloud=None, s_eff=None, s_sec=None,
                   rank=None),
    }
    W = {'cloud': 0.30, 'eff': 0.40, 'sec': 0.30}

    def overall(e):
        parts = [(W['cloud'], e['s_cloud']), (W['eff'], e['s_eff']), (W['sec'], e['s_sec'])]
        parts = [(w, v) for w, v in parts if v is not None]
        return sum(w * v for w, v in parts) / sum(w for w, _ in parts) if parts else None
    for e in E.values():
        e['overall'] = overall(e)
    assert abs(E['mz']['overall'] - 66.625) < 1e-9 and abs(E['jt']['overall'] - 84.5) < 1e-9

    # Use from the daily rollups of this year: each instance's mean over its windows since
    # 1 January (every window has the same readings), summed per department; the p95 of the
    # utilizations of all its windows of the year, as 1 % bin upper edges, nearest rank.
    for code, e in E.items():
        labels = [k for k in sent if k.startswith(code + '/')]
        used = mem_used = 0.0
        utils = []
        for k in labels:
            ws = [w for w in sent[k] if w['start'] >= y0]
            if not ws:
                continue
            used += sum(w['cpu_cores_avg'] for w in ws) / len(ws)
            mem_used += sum(w['memory_used_mib_avg'] for w in ws) / len(ws)
            utils += [bin_upper(w['cpu_cores_avg'] / w['vcpus']) for w in ws]
        e['used'] = used
        e['mem_used_gib'] = mem_used / 1024
        e['p95'] = nearest_rank(utils, 0.95)

    def score_check(what, got, want):
        if want is None:
            return T.eq(what, got, None)
        # The report rounds scores to 0.1.
        return T.near(what, got, want, 0.05 + 1e-9)

    for code, e in E.items():
        d = got_d.get(code)
        if not ck.ok(d is not None, f'department {code} in the report'):
            continue
        cs, ef, se = d['cloud_share'], d['efficiency'], d['security']
        T.eq(f'{code} systems', cs['systems'], e['systems'])
        T.eq(f'{code} on_cloud', cs['on_cloud'], e['on_cloud'])
        T.eq(f'{code} share', cs['share'],
             round(e['on_cloud'] / e['systems'], 4) if e['systems'] else None)
        score_check(f'{code} cloud score', cs['score'], e['s_cloud'])
        T.eq(f'{code} allocations', ef['allocations'], e['allocations'])
        T.eq(f'{code} allocated_vcpus', ef['allocated_vcpus'], e['vcpus'])
        T.near(f'{code} allocated_memory_gib', ef['allocated_memory_gib'], e['mem'] / 1024, 1e-4)
        T.near(f'{code} used_vcpus_avg', ef['used_vcpus_avg'], e['used'], 1.5e-4)
        T.near(f'{code} used_memory_gib_avg', ef['used_memory_gib_avg'], e['mem_used_gib'],
               1.5e-4)
        if e['vcpus']:
            T.near(f'{code} cpu_utilization_avg', ef['cpu_utilization_avg'],
                   e['used'] / e['vcpus'], 1.5e-4)
            T.near(f'{code} cpu_utilization_p95', ef['cpu_utilization_p95'], e['p95'], 1e-4)
        else:
            T.eq(f'{code} cpu_utilization_avg', ef['cpu_utilization_avg'], None)
        T.eq(f'{code} idle_allocations', ef['idle_allocations'], e['idle'])
        T.eq(f'{code} over_provisioned_allocations', ef['over_provisioned_allocations'],
             e['over'])
        T.eq(f'{code} reclaimable_vcpus', ef['reclaimable_vcpus'], e['rv'])
        T.near(f'{code} reclaimable_memory_gib', ef['reclaimable_memory_gib'], e['rm'] / 1024,
               1e-4)
        score_check(f'{code} efficiency score', ef['score'], e['s_eff'])
        T.eq(f'{code} security systems', se['systems_on_cloud'], e['sec_n'])
        T.eq(f'{code} security_test_passed', se['security_test_passed'], e['test'])
        T.eq(f'{code} backup_attested', se['backup_attested'], e['backup'])
        T.eq(f'{code} open vulnerabilities', se['open_vulnerabilities'], e['vul'])
        T.eq(f'{code} incidents', se['incidents'], e['incidents'])
        score_check(f'{code} security score', se['score'], e['s_sec'])
        score_check(f'{code} overall', d['overall_score'], e['overall'])
        T.eq(f'{code} rank', d['rank'], e['rank'])

    # The city: every department together.
    city = rep.get('city', {})
    C = {k: sum(e[k] for e in E.values()) for k in ('systems', 'on_cloud', 'vcpus', 'mem', 'idle',
                                                    'over', 'rv', 'rm', 'sec_n', 'test', 'backup',
                                                    'incidents', 'allocations')}
    no_severe = 2 + 3 + 3  # mz: portal has a high one
    no_incident = 2 + 2 + 3
    C['s_cloud'] = 100 * C['on_cloud'] / C['systems']  # 9 / 12
    C['s_eff'] = 100 * ((1 - C['rv'] / C['vcpus']) + (1 - C['rm'] / C['mem'])) / 2
    C['s_sec'] = 100 * (0.4 * C['test'] + 0.3 * C['backup'] + 0.2 * no_severe +
                        0.1 * no_incident) / C['sec_n']
    C['overall'] = 0.3 * C['s_cloud'] + 0.4 * C['s_eff'] + 0.3 * C['s_sec']
    if city:
        T.eq('city systems / on_cloud', (city['cloud_share']['systems'],
                                         city['cloud_share']['on_cloud']), (12, 9))
        T.eq('city allocations / vcpus', (city['efficiency']['allocations'],
                                          city['efficiency']['allocated_vcpus']),
             (C['allocations'], C['vcpus']))
        T.eq('city idle / over', (city['efficiency']['idle_allocations'],
                                  city['efficiency']['over_provisioned_allocations']),
             (C['idle'], C['over']))
        T.eq('city reclaimable_vcpus', city['efficiency']['reclaimable_vcpus'], C['rv'])
        T.near('city reclaimable_memory_gib', city['efficiency']['reclaimable_memory_gib'],
               C['rm'] / 1024, 1e-4)
        T.near('city used_vcpus_avg', city['efficiency']['used_vcpus_avg'],
               sum(e['used'] for e in E.values()), 3e-4)
        score_check('city cloud score', city['cloud_share']['score'], C['s_cloud'])
        score_check('city efficiency score', city['efficiency']['score'], C['s_eff'])
        score_check('city security score', city['security']['score'], C['s_sec'])
        score_check('city overall', city['overall_score'], C['overall'])

    # Art. 5: systems off the cloud or without a backup get no budget.
    want_nb = sorted([
        ('mz', 'archive', ('not_on_cloud', 'no_backup')),
        ('mz', 'portal', ('no_backup',)),
        ('jt', 'gis', ('no_backup',)),
        ('jy', 'legacy', ('not_on_cloud', 'no_backup')),
        ('hd', 'his', ('not_on_cloud', 'no_backup')),
    ])
    code_of = {v['id']: k for k, v in depts.items()}
    got_nb = sorted((code_of.get(x['department_id']), x['system'], tuple(x['reasons']))
                    for x in rep.get('no_budget', []))
    T.eq('no-budget list', got_nb, want_nb)

    # ---- the same report in CSV and HTML ----
    r = b.get(f'/v1/reports/assessment?year={year}&format=csv', token=fleet.auditor)
    ck.eq((r.status, r.headers.get('Content-Type', '').split(';')[0]), (200, 'text/csv'),
          'assessment CSV')
    text = r.body.decode('utf-8-sig')
    head, _, tail = text.partition('\r\n\r\n')
    rows = list(csv.DictReader(io.StringIO(head)))
    by_code = {row['department_code']: row for row in rows if row.get('department') != 'CITY'}

    def fmt(v):
        if v is None:
            return ''
        return f'{v:.2f}' if isinstance(v, float) else str(v)
    fields = {'rank': 'rank', 'systems': 'cloud_share.systems',
              'systems_on_cloud': 'cloud_share.on_cloud', 'cloud_share': 'cloud_share.share',
              'cloud_share_score': 'cloud_share.score',
              'allocated_vcpus': 'efficiency.allocated_vcpus',
              'used_vcpus_avg': 'efficiency.used_vcpus_avg',
              'idle_allocations': 'efficiency.idle_allocations',
              'over_provisioned_allocations': 'efficiency.over_provisioned_allocations',
              'reclaimable_vcpus': 'efficiency.reclaimable_vcpus',
              'reclaimable_memory_gib': 'efficiency.reclaimable_memory_gib',
              'efficiency_score': 'efficiency.score',
              'security_test_passed': 'security.security_test_passed',
              'backup_attested': 'security.backup_attested',
              'open_vulns_high': 'security.open_vulnerabilities.high',
              'incidents': 'security.incidents', 'security_score': 'security.score',
              'overall_score': 'overall_score'}

    def path(d, p):
        for k in p.split('.'):
            d = d.get(k) if isinstance(d, dict) else None
        return d
    csv_bad = []
    for code, d in got_d.items():
        row = by_code.get(code)
        if not row:
            csv_bad.append((code, 'missing'))
            continue
        for col, p in fields.items():
            if row.get(col) != fmt(path(d, p)):
                csv_bad.append((code, col, row.get(col), fmt(path(d, p))))
    T.eq('CSV rows = JSON departments', sorted(by_code), sorted(got_d))
    T.eq('CSV cells differing from the JSON', csv_bad, [])
    city_rows = [row for row in rows if row.get('department') == 'CITY']
    ck.ok(len(city_rows) == 1 and city_rows[0]['overall_score'] == fmt(city.get('overall_score')),
          'CSV city row carries the city overall score')
    T.eq('CSV city row: rank and department_code (no value: empty cells)',
         [(c['rank'], c['department_code']) for c in city_rows], [('', '')])
    nb_rows = list(csv.DictReader(io.StringIO(tail)))
    T.eq('CSV no-budget rows', sorted((r_['system'], r_['reasons']) for r_ in nb_rows),
         sorted((s, ';'.join(why)) for _, s, why in want_nb))

    for lang, title in (('zh', '政务云平台使用情况年度考核'),
                        ('en', 'Annual assessment of government-cloud use')):
        r = b.get(f'/v1/reports/assessment?year={year}&format=html&lang={lang}',
                  token=fleet.auditor)
        html = r.body.decode()
        ck.eq(r.status, 200, f'assessment HTML ({lang})')
        ck.ok(title in html, f'HTML ({lang}) has its title')
        missing = []
        for code, d in got_d.items():
            if d['name'] not in html:
                missing.append(d['name'])
            if d['overall_score'] is not None:
                # In the table (%.2f) and on the chart's bar (%.1f).
                for s in (f'<td>{d["overall_score"]:.2f}</td>', f'>{d["overall_score"]:.1f}<'):
                    if s not in html:
                        missing.append(s)
            for key in ('cloud_share', 'efficiency', 'security'):
                sc = d[key]['score']
                if sc is not None and f'<td>{sc:.2f}</td>' not in html:
                    missing.append(f'{code} {key} {sc:.2f}')
        T.eq(f'HTML ({lang}): names and scores not found', missing, [])
        ck.ok(all(s in html for _, s, _ in want_nb), f'HTML ({lang}) lists the no-budget systems')

    # Last year: nothing was registered or allocated yet.
    r = b.get(f'/v1/reports/assessment?year={year - 1}', token=fleet.auditor)
    ck.eq([(d['code'], d['cloud_share']['systems'], d['efficiency']['allocations'])
           for d in r.json()['departments']],
          [(c, 0, 0) for c in ('mz', 'jt', 'jy', 'hd', 'ty')], f'{year - 1}: an empty year')

    # ---- the operations report of this month ----
    month = time.strftime('%Y-%m', time.gmtime())
    m0 = parse_iso(f'{month}-01T00:00:00')
    r = b.get(f'/v1/reports/operations?month={month}', token=fleet.auditor)
    ck.eq(r.status, 200, f'GET /v1/reports/operations?month={month}')
    ops = {d['code']: d for d in r.json().get('departments', [])}
    want_f = {
        'mz': sorted([('mz/oa#0', 'idle', 0, 0, 2, 2048, 'open'),
                      ('mz/calc#0', 'over_provisioned', 2, 1280, -1, 2816, 'open'),
                      ('mz/calc#0', 'under_provisioned', 2, 1280, -1, 2816, 'open')]),
        'jt': [('jt/gis#0', 'over_provisioned', 2, 2816, 2, 5376, 'acknowledged')],
        'jy': [('jy/web#1', 'idle', 0, 0, 1, 1024, 'open')],
        'hd': [], 'ty': [],
    }
    name_to_label = {v['name']: k for k, v in inst.items()}
    for code, want in want_f.items():
        d = ops.get(code, {})
        got = sorted((name_to_label.get(x['instance']), x['kind'], x['recommended_vcpus'],
                      x['recommended_memory_mib'], x['frees_vcpus'], x['frees_memory_mib'],
                      x['state']) for x in d.get('findings', []))
        T.eq(f'operations {code}: findings', got, want)
        labels = sorted(k for k in inst if k.startswith(code + '/'))
        T.eq(f'operations {code}: instances',
             sorted(name_to_label.get(x['name']) for x in d.get('instances', [])), labels)
        bad = []
        for x in d.get('instances', []):
            k = name_to_label.get(x['name'])
            ws = [w for w in sent.get(k, []) if w['start'] >= m0]
            want_avg = sum(w['cpu_cores_avg'] for w in ws) / len(ws) if ws else None
            if (want_avg is None) != (x['cpu_cores_avg'] is None) or \
                    (want_avg is not None and abs(x['cpu_cores_avg'] - want_avg) > 1e-4):
                bad.append((k, x['cpu_cores_avg'], want_avg))
        T.eq(f'operations {code}: instance CPU averages off', bad, [])
    r = b.get(f'/v1/reports/operations?month={month}&format=html&lang=en', token=fleet.auditor)
    html = r.body.decode()
    ck.ok(r.status == 200 and '2 vCPU / 2816 MiB' in html and '2 vCPU / 5376 MiB' in html and
          inst['jt/gis#0']['name'] in html and 'over-provisioned' in html,
          'operations HTML lists gis with its recommended size and what it frees')

    # ---- the young instance, once old enough, is found idle ----
    while time.time() < inst['jy/enroll#0']['created'] + MIN_AGE + 1:
        time.sleep(0.5)
    r = b.post('/v1/assessment/run', {}, token=fleet.vendor)
    s2 = r.json()
    T.eq('second run: too_young', s2.get('too_young'), 0)
    T.eq('second run: created (enroll idle)', s2.get('created'), 1)
    r = b.get(f'/v1/findings?limit=1000&kind=idle', token=fleet.auditor)
    f = [x for x in r.json()['items'] if x['instance_id'] == inst['jy/enroll#0']['id']]
    T.eq('enroll idle finding frees', [(x['frees']['vcpus'], x['frees']['memory_mib'])
                                       for x in f], [(2, 2048)])
    r = b.get(f'/v1/reports/assessment?year={year}&department={depts["jy"]["id"]}',
              token=fleet.auditor)
    d = r.json()['departments'][0]
    T.eq('jy after: idle allocations / reclaimable vCPUs',
         (d['efficiency']['idle_allocations'], d['efficiency']['reclaimable_vcpus']), (2, 3))
    # 100 × ((1 − 3/7) + (1 − 3072/7168)) / 2 = 57.14
    score_check('jy after: efficiency score', d['efficiency']['score'],
                100 * ((1 - 3 / 7) + (1 - 3072 / 7168)) / 2)

    print()
    T.dump()
    print()
    print('timing: ' + ', '.join(f'{k} {v:.1f} s' for k, v in timing.items()))
    print(f'windows: {total_windows} hourly windows posted ({len(records)} for the year of nine '
          f'instances, {len(sent["jy/enroll#0"])} for enroll); {n_days} days rolled up')


if __name__ == '__main__':
    main()
