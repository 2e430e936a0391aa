#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The vendor's service-quality scorecard (issue 12, docs/service-quality.md) through the real
API: libvirt's test driver as the trial and the production host, everything made through the
API, every figure of the scorecard recomputed here from what the test did and what the broker
recorded (its database read read-only).

  民政局 mz  门户 portal: a new request (trial, then production, 1 instance), then a change
             that needs a restart (the department's own stop: not counted against availability)
  the vendor's fee: 100,000 yuan a month (pricing.json service_fee)
  a maintenance window of 2 s on the production host, proposed by the vendor, agreed by the
             reviewer: left out of the time the instance should have run
  the policy: allocation lead time 0.0001 h (0.36 s: the production job is "slow"), trial and
  change lead times 24 h; incident resolution critical 0.0005 h (1.8 s); vulnerability fix
  critical 0.00001 days (0.864 s)
  incidents: a critical one that occurred 2 h ago (or at the month's start), resolved with a
             time typed in a minute after it occurred: measured to when the broker was told,
             so late; a low one resolved at once: in time
  vulnerabilities: a high one fixed at once (in time), a critical one left open (late)

Then: the deductions and the fee after them to the fen; HTML in zh and en; who reads it; bad
input refused naming the field; the vendor's explanation of the late allocation (audited, shown
beside it, no figure changed); a policy the schema refuses is not loaded on SIGHUP, a good
one is (the allocation's limit raised: that indicator met).
"""
import calendar
import csv
import io
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import assessgen as ag  # noqa: E402
import cbtest  # noqa: E402

HOUR_MS = 3600000
FEE_FEN = 100000 * 100
PRICING = {
    'currency': 'CNY',
    'prices': [
        {'from': '2020-01-01', 'purpose': 'production', 'vcpu_hour': 0.12,
         'memory_gib_hour': 0.03, 'disk_gib_month': 0.35},
        {'from': '2020-01-01', 'purpose': 'trial', 'vcpu_hour': 0, 'memory_gib_hour': 0,
         'disk_gib_month': 0},
    ],
    'service_fee': [{'from': '2020-01-01', 'monthly': 100000}],
}
SLA = {
    'cap_percent': 20,
    'indicators': {
        'availability': {'target_percent': 99.9, 'deduction_percent': 1, 'cap_percent': 10},
        'trial_lead_time': {'limit_hours': 24, 'deduction_percent': 0.5, 'cap_percent': 3},
        'allocation_lead_time': {'limit_hours': 0.0001, 'deduction_percent': 0.5,
                                 'cap_percent': 3},
        'change_lead_time': {'limit_hours': 24, 'deduction_percent': 0.5, 'cap_percent': 3},
        'incident_response': {'limit_hours': {'critical': 24, 'high': 24, 'medium': 24,
                                              'low': 24},
                              'deduction_percent': 1, 'cap_percent': 5},
        'incident_resolution': {'limit_hours': {'critical': 0.0005, 'high': 24, 'medium': 72,
                                                'low': 168},
                                'deduction_percent': 1.5, 'cap_percent': 5},
        'vulnerability_fix': {'limit_days': {'critical': 0.00001, 'high': 30, 'medium': 90,
                                             'low': 180},
                              'deduction_percent': 1, 'cap_percent': 5},
    },
}
SEVERITIES = ('critical', 'high', 'medium', 'low')


def ms_of(iso):
    t = time.strptime(iso[:19], '%Y-%m-%dT%H:%M:%S')
    frac = iso[20:23] if len(iso) > 20 and iso[19] == '.' else '0'
    return calendar.timegm(t) * 1000 + int(frac.ljust(3, '0'))


def iso(ms):
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(ms // 1000)) + f'.{ms % 1000:03d}Z'


def bp(percent):
    return round(percent * 100)


def deduction(steps, rule):
    """br_sla_deduction_fen(): steps × per of the fee, capped, rounded half up."""
    share = min(steps * bp(rule['deduction_percent']), bp(rule['cap_percent']))
    return (FEE_FEN * share + 5000) // 10000 if share > 0 else 0


def want(r, status, what):
    if r.status != status:
        raise RuntimeError(f'{what}: {r}')
    return r.json() if r.body else None


def main():
    ck = cbtest.Checks('test-service-quality')
    work = tempfile.mkdtemp(prefix='cbsla-')
    pol = ag.policy_dir(os.path.join(work, 'policies'))
    with open(os.path.join(pol, 'pricing.json'), 'w') as f:
        json.dump(PRICING, f)
    with open(os.path.join(pol, 'service-quality.json'), 'w') as f:
        json.dump(SLA, f)
    b = cbtest.Broker(policy_dir=pol)
    t0 = time.monotonic()
    try:
        b.start()
        run(ck, b, pol)
    except Exception:
        traceback.print_exc()
        ck.ok(False, 'the test ran to its end without an exception')
    finally:
        b.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f'runtime: {time.monotonic() - t0:.1f} s', flush=True)
    ck.done()


def recorded(b, m0, to, windows):
    """What the broker recorded, read-only: each instance's should-run time in [m0, to) less the
    agreed maintenance @windows ([(host, from ms, to ms)]) of its host, the request history's
    clocks, the production provision jobs."""
    con = cbtest.db_connect(b.db_path)
    hist, hosts = {}, {}
    for iid, at, state, host in con.execute(
            'SELECT instance_id, at, state, coalesce(host_id, 0) FROM instance_history'
            ' ORDER BY instance_id, at, id'):
        hist.setdefault(iid, []).append((ms_of(at), state))
        hosts.setdefault(iid, []).append(host)
    should, maint = {}, {}
    for iid, h in hist.items():
        total = cut = 0
        for k, (at, state) in enumerate(h):
            end = h[k + 1][0] if k + 1 < len(h) else to
            a, z = max(at, m0), min(end, to)
            if state == 'running' and z > a:
                total += z - a
                for host, wa, wz in windows:
                    if host == hosts[iid][k]:
                        cut += max(0, min(z, wz) - max(a, wa))
        if total > 0:
            should[iid] = total - cut
            maint[iid] = cut
    rh = {}
    for rid, frm, to_state, at in con.execute(
            'SELECT request_id, from_state, to_state, at FROM request_history ORDER BY id'):
        rh.setdefault(rid, []).append((frm, to_state, ms_of(at)))
    jobs = {j: (ms_of(c), ms_of(f) if f else None) for j, c, f in con.execute(
        "SELECT j.id, j.created_at, j.finished_at FROM jobs j JOIN allocations a"
        " ON a.id = j.allocation_id WHERE j.kind = 'provision' AND a.purpose = 'production'"
        " AND j.state = 'done'")}
    states = hist
    con.close()
    return should, rh, jobs, states, maint


def clock(rh, start_state, end_state):
    """The first submitted → @start_state to the first → @end_state, ms."""
    a = [at for frm, to, at in rh if frm == 'submitted' and to == start_state]
    z = [at for frm, to, at in rh if to == end_state]
    return a[0], (z[0] if z else None)


def by_id(doc):
    return {x['id']: x for x in doc['indicators']}


def run(ck, b, pol):
    work = os.path.dirname(pol)
    fleet = ag.Fleet(b, work)
    rv, vendor, auditor = fleet.reviewer, fleet.vendor, fleet.auditor
    mz = fleet.department('mz', '民政局')
    sys_mz = fleet.system('mz', '门户')
    rid = fleet.submit_new('mz', sys_mz, [(2, 1024)])
    alloc = fleet.through_workflow([rid])[rid]
    after = fleet.change('mz', sys_mz, alloc['id'], [(8, 4096)], restart_allowed=True)
    ck.eq([(i['vcpus'], i['memory_mib']) for i in after['instances'] if i['state'] != 'deleted'],
          [(8, 4096)], 'the change resized mz\'s instance beyond its maximums (a restart)')
    change_rid = max(r['id'] for r in b.get('/v1/requests?limit=100', token=rv).json()['items'])

    # A maintenance window of the production host, proposed by the vendor ahead of time and
    # agreed by the reviewer: its 2 s are left out of the time the instance should have run.
    prod = fleet.hosts['production']
    t_w = int(time.time() * 1000) + 1500
    mw_body = {'host': prod, 'starts_at': iso(t_w), 'ends_at': iso(t_w + 2000),
               'reason': '更换电源 / power supply replaced'}
    mw = want(b.post('/v1/maintenance-windows', mw_body, token=vendor), 201, 'propose window')
    ck.eq((mw['state'], mw['host_id'], mw['starts_at'], mw['ends_at']),
          ('proposed', prod, iso(t_w), iso(t_w + 2000)), 'the window as proposed')
    for who, t in (('reviewer', rv), ('department', mz['token'])):
        ck.eq(b.post('/v1/maintenance-windows', mw_body, token=t).status, 403,
              f'{who} may not propose a window')
    ck.eq(b.post(f'/v1/maintenance-windows/{mw["id"]}/decision', {'decision': 'agree'},
                 token=vendor).status, 403, 'the vendor may not agree to its own window')
    mw = want(b.post(f'/v1/maintenance-windows/{mw["id"]}/decision', {'decision': 'agree'},
                     token=rv), 200, 'agree')
    ck.eq(mw['state'], 'agreed', 'the reviewer agreed')
    r = b.post(f'/v1/maintenance-windows/{mw["id"]}/decision', {'decision': 'reject'}, token=rv)
    ck.eq((r.status, cbtest.json_error(r).get('field')), (409, 'state'),
          'a decided window is not decided again')
    past = int(time.time() * 1000) - 1000
    for bad, field in (({**mw_body, 'starts_at': iso(past)}, '/starts_at'),
                       ({**mw_body, 'ends_at': iso(t_w - 1)}, '/ends_at'),
                       ({**mw_body, 'host': 9999}, '/host'),
                       ({**mw_body, 'reason': ''}, '/reason')):
        r = b.post('/v1/maintenance-windows', bad, token=vendor)
        ck.eq((r.status, cbtest.json_error(r).get('field')), (422, field),
              f'a window with a bad {field}: refused naming it')
    rejected = want(b.post('/v1/maintenance-windows', dict(mw_body, starts_at=iso(t_w + 500)),
                           token=vendor), 201, 'another window')
    want(b.post(f'/v1/maintenance-windows/{rejected["id"]}/decision', {'decision': 'reject'},
                token=rv), 200, 'reject')
    listed = want(b.get('/v1/maintenance-windows', token=auditor), 200, 'list')['items']
    ck.eq([(x['id'], x['state']) for x in listed],
          [(mw['id'], 'agreed'), (rejected['id'], 'rejected')], 'the auditor reads the windows')
    while time.time() * 1000 < t_w + 2100:
        time.sleep(0.2)
    windows = [(prod, t_w, t_w + 2000)]

    now = int(time.time() * 1000)
    month = time.strftime('%Y-%m', time.gmtime(now / 1000))
    m0 = ms_of(f'{month}-01T00:00:00Z')
    tok = mz['token']
    # Incidents and vulnerabilities, recorded by the vendor.
    occurred = max(m0, now - 2 * HOUR_MS)
    inc_crit = want(b.post(f'/v1/systems/{sys_mz}/incidents',
                           {'severity': 'critical', 'title': 'portal down',
                            'occurred_at': iso(occurred)}, token=vendor), 201, 'incident')['id']
    inc_low = want(b.post(f'/v1/systems/{sys_mz}/incidents',
                          {'severity': 'low', 'title': 'slow page', 'occurred_at': iso(now)},
                          token=tok), 201, 'incident low')['id']
    time.sleep(2.0)  # the critical incident's 1.8 s pass
    want(b.request('PATCH', f'/v1/incidents/{inc_crit}',
                   body={'resolved_at': iso(occurred + 60000)}, token=vendor), 200, 'resolve')
    want(b.request('PATCH', f'/v1/incidents/{inc_low}', body={'resolved_at': iso(now + 1000)},
                   token=vendor), 200, 'resolve low')
    found = max(m0, now - HOUR_MS)
    v_high = want(b.post(f'/v1/systems/{sys_mz}/vulnerabilities',
                         {'severity': 'high', 'title': 'openssl', 'found_at': iso(found)},
                         token=tok), 201, 'vulnerability')['id']
    v_crit = want(b.post(f'/v1/systems/{sys_mz}/vulnerabilities',
                         {'severity': 'critical', 'title': 'rce', 'found_at': iso(found)},
                         token=tok), 201, 'vulnerability critical')['id']
    want(b.request('PATCH', f'/v1/vulnerabilities/{v_high}', body={'status': 'fixed'},
                   token=vendor), 200, 'fix')

    doc = want(b.get(f'/v1/reports/service-quality?month={month}', token=rv), 200, 'scorecard')
    ck.eq((doc['report'], doc['month'], doc['complete'], doc['from']),
          ('service_quality', month, False, iso(m0)), 'the scorecard of the month under way')
    to = ms_of(doc['to'])
    should, rh, jobs, states, maint = recorded(b, m0, to, windows)
    ck.ok(sum(maint.values()) == 2000,
          f'the agreed window fell in the production instance\'s running time: {maint}')
    ind = by_id(doc)

    # Availability: every instance that should have run, its time from its history; no
    # outage recorded, so 100 %; the department's own stop (the restart) not counted.
    a = ind['availability']
    ev = {e['instance_id']: e for e in a['evidence']}
    ck.eq(sorted(ev), sorted(should), 'availability: the instances that should have run')
    ck.ok(all(ev[i]['should_run_ms'] == should[i] and ev[i]['down_ms'] == 0 for i in should),
          f'availability: each instance\'s time it should have run, from its history: {ev}')
    ck.ok(all(e['events'] == [] and e['host_outages'] == [] for e in ev.values()),
          'availability: no event, no host outage behind any instance')
    ck.eq(a['maintenance_windows'], [mw['id']], 'availability: the agreed window, not the '
          'rejected one')
    ck.eq((a['measured']['should_run_ms'], a['measured']['down_ms'], a['status'],
           a['deduction_fen']), (sum(should.values()), 0, 'met', 0),
          'availability: the total, nothing down, met, nothing deducted')
    # The change's restart: shutoff, then running again. That stop is the department's: the
    # time it should have run is from its first start to now less the stop.
    restarted = [i for i, h in states.items()
                 if any(a[1] == 'shutoff' and b_[1] == 'running' for a, b_ in zip(h, h[1:]))]
    if restarted:
        h = states[restarted[0]]
        first = [at for at, st in h if st == 'running'][0]
        stopped = sum(b_[0] - a[0] for a, b_ in zip(h, h[1:] + [(to, '')])
                      if a[0] >= first and a[1] != 'running')
        ck.ok(stopped > 0, f'the restart stopped the instance for {stopped} ms')
        ck.eq(ev[restarted[0]]['should_run_ms'],
              to - max(first, m0) - stopped - maint[restarted[0]],
              f'the department\'s stop is not time it should have run: {h}')
    else:
        print(f'note: the change applied without a stop: {states}', flush=True)

    # Trial lead time: approval to the trial running, from the request's history: met.
    tl = ind['trial_lead_time']
    start, end = clock(rh[rid], 'approved', 'in_trial')
    ck.eq([(e['id'], e['from'], e['to'], e['result']) for e in tl['evidence']],
          [(rid, iso(start), iso(end), 'met')], 'trial lead time: the request\'s clock')
    ck.eq((tl['status'], tl['deduction_fen']), ('met', 0), 'trial lead time: met')
    # Change lead time: approval to applied: met.
    cl = ind['change_lead_time']
    start, end = clock(rh[change_rid], 'approved', 'applied')
    ck.eq([(e['id'], e['from'], e['to'], e['result']) for e in cl['evidence']],
          [(change_rid, iso(start), iso(end), 'met')], 'change lead time: the change\'s clock')
    # Allocation lead time: the production provision job took longer than 0.36 s: late.
    al = ind['allocation_lead_time']
    late_jobs = [j for j, (c, f) in jobs.items() if f - c > 360]
    ck.eq(sorted(e['id'] for e in al['evidence']), sorted(jobs),
          'allocation lead time: the production provision jobs')
    ck.ok(all(e['from'] == iso(jobs[e['id']][0]) and e['to'] == iso(jobs[e['id']][1])
              for e in al['evidence']), 'allocation lead time: each job\'s made and done')
    ck.eq((al['status'], al['measured']['late'], al['deduction_fen']),
          ('missed' if late_jobs else 'met', len(late_jobs),
           deduction(len(late_jobs), SLA['indicators']['allocation_lead_time'])),
          f'allocation lead time: {len(late_jobs)} slow job(s), their deduction')

    # Incidents: response met (recorded at once); resolution measured to when the broker was
    # told, not the time typed in: the critical one late, the low one in time.
    ir = ind['incident_resolution']
    res = {e['id']: e for e in ir['evidence']}
    ck.eq(sorted(res), sorted([inc_crit, inc_low]), 'incident resolution: both incidents')
    ck.eq((res[inc_crit]['result'], res[inc_low]['result']), ('late', 'met'),
          'incident resolution: the critical one late despite the time typed in, the low one '
          'in time')
    ck.ok(ms_of(res[inc_crit]['to']) >= occurred + 2000,
          f'incident resolution: measured to when the broker was told: {res[inc_crit]}')
    ck.eq((ir['status'], ir['deduction_fen']),
          ('missed', deduction(1, SLA['indicators']['incident_resolution'])),
          'incident resolution: missed, 1.5 % of the fee')
    ck.eq((ind['incident_response']['status'], ind['incident_response']['measured']['cases']),
          ('met', 2), 'incident response: both recorded within 24 h')
    vf = ind['vulnerability_fix']
    vr = {e['id']: e['result'] for e in vf['evidence']}
    ck.eq(vr, {v_high: 'met', v_crit: 'late'},
          'vulnerabilities: the fixed one in time, the critical one left open late')
    ck.eq(vf['deduction_fen'], deduction(1, SLA['indicators']['vulnerability_fix']),
          'vulnerabilities: 1 % of the fee')
    for x in ('security_bulletin', 'emergency_drill', 'backup_restore_test',
              'operations_report'):
        ck.eq(ind[x], {'id': x, 'status': 'not_measured'}, f'{x}: not measured, not scored')

    # The fee and the deductions, to the fen.
    total = sum(x.get('deduction_fen', 0) for x in doc['indicators'])
    ck.eq(total, deduction(len(late_jobs), SLA['indicators']['allocation_lead_time']) +
          deduction(1, SLA['indicators']['incident_resolution']) +
          deduction(1, SLA['indicators']['vulnerability_fix']),
          'the indicators\' deductions are the late cases\' at the policy\'s rates')
    cap = FEE_FEN * bp(SLA['cap_percent']) // 10000
    ck.eq((doc['fee_fen'], doc['fee'], doc['deduction_fen'], doc['fee_after_fen']),
          (FEE_FEN, 100000.0, min(total, cap), FEE_FEN - min(total, cap)),
          'the month\'s fee from pricing.json, the deduction, the fee after it')

    # HTML in Chinese by default and in English.
    r = b.get(f'/v1/reports/service-quality?month={month}&format=html', token=auditor)
    body = r.body.decode()
    ck.ok(r.status == 200 and r.headers.get('Content-Type', '').startswith('text/html') and
          f'服务商服务质量月度考核 {month}' in body and '实例可用性' in body and
          f'{(FEE_FEN - min(total, cap)) / 100:.2f}' in body, 'HTML: in Chinese, the fee after')
    r = b.get(f'/v1/reports/service-quality?month={month}&format=html&lang=en', token=vendor)
    ck.ok(r.status == 200 and b'Vendor service-quality scorecard' in r.body and
          b'not measured' in r.body, 'HTML: in English, the vendor reads it')

    # Who reads it: admin, reviewer, auditor, vendor; not a department.
    for who, t, st in (('admin', b.admin_token, 200), ('auditor', auditor, 200),
                       ('vendor', vendor, 200), ('department', tok, 403)):
        ck.eq(b.get(f'/v1/reports/service-quality?month={month}', token=t).status, st,
              f'{who}: {st}')
    # Bad input: 400 naming the field.
    for q, field in (('month=2026-13', 'month'), ('', 'month'), ('month=1999-12', 'month'),
                     (f'month={month}&format=pdf', 'format'), (f'month={month}&lang=fr', 'lang')):
        r = b.get(f'/v1/reports/service-quality?{q}', token=rv)
        ck.eq((r.status, cbtest.json_error(r).get('field')), (400, field),
              f'?{q}: refused naming {field}')
    # CSV (zh and en): the JSON's numbers, one line per indicator and the fee's line.
    for lang in ('zh', 'en'):
        # The month is not over: its time to run grows between two answers; the CSV's lies
        # between the JSON's before and after it.
        j0 = want(b.get(f'/v1/reports/service-quality?month={month}', token=auditor), 200, 'json')
        r = b.get(f'/v1/reports/service-quality?month={month}&format=csv&lang={lang}',
                  token=auditor)
        jd = want(b.get(f'/v1/reports/service-quality?month={month}', token=auditor), 200, 'json')
        ck.ok(r.status == 200 and r.headers.get('Content-Type', '').startswith('text/csv'),
              f'CSV {lang}: 200 text/csv')
        rows = list(csv.reader(io.StringIO(r.body.decode('utf-8-sig'))))
        ind = {x[0]: x for x in rows[1:] if x and x[0] in {i['id'] for i in jd['indicators']}}
        ck.eq(sorted(ind), sorted(i['id'] for i in jd['indicators']),
              f'CSV {lang}: a line per indicator')
        ck.eq({k: (v[4], v[6]) for k, v in ind.items()},
              {i['id']: (i['status'], str(i['deduction_fen']) if 'deduction_fen' in i else '')
               for i in jd['indicators']}, f'CSV {lang}: each indicator\'s result and deduction')
        av = next(i for i in jd['indicators'] if i['id'] == 'availability')
        cell = dict(kv.split('=', 1) for kv in ind.get('availability', [''] * 4)[3].split('; ')
                    if '=' in kv)
        av0 = next(i for i in j0['indicators'] if i['id'] == 'availability')
        ck.ok(av0['measured']['should_run_ms'] <= int(cell.get('should_run_ms', -1)) <=
              av['measured']['should_run_ms'] and
              int(cell.get('down_ms', -1)) == av['measured']['down_ms'],
              f'CSV {lang}: availability\'s measured figures ({cell})')
        fee = rows[-1]
        ck.eq((fee[0], int(fee[1]), int(fee[4]), int(fee[5])),
              (month, jd['fee_fen'], jd['deduction_fen'], jd['fee_after_fen']),
              f'CSV {lang}: the fee, the deduction and the fee after it, fen')
        ck.ok(('指标' in rows[0][1]) == (lang == 'zh'), f'CSV {lang}: the header in {lang}')
    r = want(b.get('/v1/reports/service-quality?month=2001-01', token=rv), 200, 'a past month')
    ck.eq([x['status'] for x in r['indicators'][:7]], ['no_data'] * 7,
          'a month before anything: no data, never a score')
    ck.eq(r['deduction_fen'], 0, 'a month with no data deducts nothing')

    # The vendor explains the late allocation: kept beside it, audited, no figure changed.
    ep = '/v1/reports/service-quality/explanations'
    body = {'month': month, 'indicator': 'allocation_lead_time',
            'text': '生产主机镜像同步慢 / the image copy to the production host was slow'}
    ex = want(b.post(ep, body, token=vendor), 201, 'explanation')
    ck.eq((ex['month'], ex['indicator'], ex['text']), (month, body['indicator'], body['text']),
          'the explanation as recorded')
    ck.eq(ex.get('account_name'), want(b.get('/v1/whoami', token=vendor), 200, 'whoami')['name'],
          'the explanation names the account that wrote it')
    for who, t in (('reviewer', rv), ('auditor', auditor), ('department', tok)):
        ck.eq(b.post(ep, body, token=t).status, 403, f'{who} may not explain')
    for bad, field in (({**body, 'indicator': 'bulletin_of_sorts'}, '/indicator'),
                       ({**body, 'month': '2026-13'}, '/month'),
                       ({**body, 'month': '2199-01'}, '/month'),
                       ({**body, 'text': ''}, '/text')):
        r = b.post(ep, bad, token=vendor)
        ck.eq((r.status, cbtest.json_error(r).get('field')), (422, field),
              f'an explanation with a bad {field}: refused naming it')
    again = want(b.get(f'/v1/reports/service-quality?month={month}', token=rv), 200, 'again')
    ia = by_id(again)
    ck.eq([e['id'] for e in ia['allocation_lead_time']['explanations']], [ex['id']],
          'the scorecard shows the explanation beside its indicator, only there')
    ck.eq([e.get('account_name') for e in ia['allocation_lead_time']['explanations']],
          [ex['account_name']], 'the scorecard names who explained')
    ck.ok(all(x.get('explanations') == [] for k, x in ia.items()
              if k != 'allocation_lead_time' and x['status'] != 'not_measured'),
          'no other indicator has it')
    ck.eq((again['deduction_fen'], ia['allocation_lead_time']['deduction_fen']),
          (doc['deduction_fen'], by_id(doc)['allocation_lead_time']['deduction_fen']),
          'an explanation changes no figure')
    r = b.get(f'/v1/reports/service-quality?month={month}&format=html', token=rv)
    ck.ok('生产主机镜像同步慢' in r.body.decode(), 'HTML: the explanation is shown')
    # detail=totals: the same figures without the evidence (the console's trend by month).
    short = want(b.get(f'/v1/reports/service-quality?month={month}&detail=totals', token=rv),
                 200, 'detail=totals')
    ck.eq([(x['id'], x['status'], x.get('deduction_fen')) for x in short['indicators']],
          [(x['id'], x['status'], x.get('deduction_fen')) for x in again['indicators']],
          'detail=totals: the same indicators, results and deductions')
    ck.ok(all('evidence' not in x for x in short['indicators']) and
          short['fee_after_fen'] == again['fee_after_fen'], 'detail=totals: no evidence')
    for q in ('detail=all', 'detail=totals&format=html'):
        r = b.get(f'/v1/reports/service-quality?month={month}&{q}', token=rv)
        ck.eq((r.status, cbtest.json_error(r).get('field')), (400, 'detail'),
              f'?{q}: refused naming detail')
    audit = want(b.get('/v1/audit?limit=1000', token=auditor), 200, 'audit')['items']
    ck.ok(any(a['action'] == 'sla.explanation' and a['object_id'] == ex['id'] for a in audit),
          'the explanation is audited')

    # cloudbrokerctl report service-quality: the summary, the JSON, a bad month named.
    out = cbtest.ctl(b, 'report', 'service-quality', '--month', month,
                     token=auditor).stdout.decode()
    after_yuan = f'{(FEE_FEN - min(total, cap)) // 100}.{(FEE_FEN - min(total, cap)) % 100:02d}'
    ck.ok(out.startswith(f'服务商服务质量月度考核 {month}') and 'allocation_lead_time' in out and
          f'扣减后 {after_yuan} 元' in out, f'ctl: the summary with the fee after: {out!r}')
    d = cbtest.ctl_json(b, 'report', 'service-quality', '--month', month, token=vendor)
    ck.eq((d['report'], d['deduction_fen']), ('service_quality', min(total, cap)),
          'ctl --json: the scorecard document')
    out_csv = os.path.join(work, 'scorecard.csv')
    cbtest.ctl(b, 'report', 'service-quality', '--month', month, '--lang', 'en', '-o', out_csv,
               token=auditor)
    with open(out_csv, encoding='utf-8-sig') as f:
        last = list(csv.reader(f))[-1]
    ck.eq((last[0], int(last[4])), (month, min(total, cap)),
          'ctl -o scorecard.csv: the CSV, its deduction the JSON\'s')
    p = cbtest.ctl(b, 'report', 'service-quality', '--month', '2026-13', token=auditor,
                   check=False)
    ck.ok(p.returncode != 0 and b'month' in p.stderr, 'ctl: a bad month names the field')

    # SIGHUP: a policy the schema refuses is not loaded; a good one is.
    path = os.path.join(pol, 'service-quality.json')
    with open(path, 'w') as f:
        json.dump(dict(SLA, cap_percent=200), f)
    b.proc.send_signal(signal.SIGHUP)
    time.sleep(1)
    ck.eq(b.get('/v1/policies', token=rv).json()['service-quality']['cap_percent'], 20,
          'a service-quality policy the schema refuses is not loaded')
    with open(b.log_path) as f:
        log = f.read()
    ck.ok('service-quality.json' in log and '/cap_percent' in log,
          'the refused reload is logged naming the file and the field')
    sla2 = json.loads(json.dumps(SLA))
    sla2['indicators']['allocation_lead_time']['limit_hours'] = 1000
    with open(path, 'w') as f:
        json.dump(sla2, f)
    b.proc.send_signal(signal.SIGHUP)
    ag.wait_for(lambda: b.get('/v1/policies', token=rv).json()['service-quality']['indicators']
                ['allocation_lead_time']['limit_hours'] == 1000, 10, 'the reload')
    doc = want(b.get(f'/v1/reports/service-quality?month={month}', token=rv), 200, 'again')
    ck.eq((by_id(doc)['allocation_lead_time']['status'],
           by_id(doc)['allocation_lead_time']['deduction_fen']), ('met', 0),
          'after the reload the allocation\'s limit is 1000 h: met')
    ck.eq(b.stop(), 0, 'the broker stops cleanly (under the sanitizers: nothing leaked)')


if __name__ == '__main__':
    main()
