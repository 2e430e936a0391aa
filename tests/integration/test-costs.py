#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The monthly cost statement (issue 12, docs/costs.md) through the real API: libvirt's test
driver as the trial and the production host, every request through the whole workflow.

  民政局 mz  门户 portal  1 instance of 2 vCPUs, 1 GiB, resized to 4 vCPUs and 2 GiB
  交通局 jt  旧系统 legacy 1 instance of 1 vCPU, 512 MiB
  both after a trial (trial prices), then in production (production prices).

Prices are set high (a vCPU-second costs a yuan) so that the seconds the test lasts are money.
The statement of this month is checked against the instances' recorded history (read from the
database, read-only) part by part with the same integer arithmetic worked out here: the resize
splits mz's production instance into two parts at the moment the history recorded it; every
instance, allocation, system and department is the exact sum of the fen below it, and the
departments sum to the total. CSV and HTML carry the same numbers; a department sees its own
statement only; a bad month, format or department is refused naming the field.
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
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import assessgen as ag  # noqa: E402
import cbtest  # noqa: E402

HOUR_MS = 3600000
# Yuan: production a vCPU-second 1 yuan, a GiB-second of memory 0.5, a GiB of disk 10^6 a month
# (0.37 a second in a month of 31 days); trial a tenth of each.
PRICING = {
    'currency': 'CNY',
    'prices': [
        {'from': '2020-01-01', 'purpose': 'production', 'vcpu_hour': 3600,
         'memory_gib_hour': 1800, 'disk_gib_month': 1000000},
        {'from': '2020-01-01', 'purpose': 'trial', 'vcpu_hour': 360, 'memory_gib_hour': 180,
         'disk_gib_month': 100000},
    ],
    'service_fee': [{'from': '2020-01-01', 'monthly': 100000}],
}


def ms_of(iso):
    # "YYYY-MM-DDTHH:MM:SS.mmmZ"
    t = time.strptime(iso[:19], '%Y-%m-%dT%H:%M:%S')
    frac = iso[20:23] if len(iso) > 20 and iso[19] == '.' else '0'
    return calendar.timegm(t) * 1000 + int(frac.ljust(3, '0'))


def fen(price, qty, ms, per):
    """br_money_fen(): micro-yuan × qty × ms / per, in fen, rounded half up."""
    num, den = price * qty * ms, per * 10000
    return (num + den // 2) // den if num > 0 else 0


HOLDS = {'defined': (True, True), 'running': (True, True), 'shutoff': (True, True),
         'created': (False, True), 'undefined': (False, True)}


def held_at(history, t):
    """What an instance held at @t from its history rows [(at_ms, state, vcpus, mib, gib)]."""
    cur = None
    for row in history:
        if row[0] <= t:
            cur = row
    if cur is None:
        return (0, 0, 0)
    compute, disk = HOLDS.get(cur[1], (False, False))
    return (cur[2] if compute else 0, cur[3] if compute else 0, cur[4] if disk else 0)


def held_state(history, t):
    """The state an instance was in at @t."""
    cur = None
    for row in history:
        if row[0] <= t:
            cur = row[1]
    return cur


class Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.texts = []

    def handle_data(self, data):
        if data.strip():
            self.texts.append(data.strip())


def want(r, status, what):
    if r.status != status:
        raise RuntimeError(f'{what}: {r}')
    return r


def main():
    ck = cbtest.Checks('test-costs')
    work = tempfile.mkdtemp(prefix='cbcosts-')
    pol = ag.policy_dir(os.path.join(work, 'policies'))
    with open(os.path.join(pol, 'pricing.json'), 'w') as f:
        json.dump(PRICING, f)
    b = cbtest.Broker(policy_dir=pol)
    t0 = time.monotonic()
    try:
        b.start()
        run(ck, b, work, pol)
    except Exception:
        traceback.print_exc()
        ck.ok(False, 'the test ran to its end without an exception')
    finally:
        b.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f'runtime: {time.monotonic() - t0:.1f} s', flush=True)
    ck.done()


def read_history(b):
    """The recorded history, read-only: {instance id: [(at ms, state, vcpus, mib, gib)]} and
    {instance id: purpose}."""
    con = cbtest.db_connect(b.db_path)
    hist = {}
    for iid, at, state, vcpus, mib, gib in con.execute(
            'SELECT instance_id, at, state, vcpus, memory_mib, disk_gib FROM instance_history'
            ' ORDER BY instance_id, at, id'):
        hist.setdefault(iid, []).append((ms_of(at), state, vcpus, mib, gib))
    purpose = dict(con.execute('SELECT i.id, a.purpose FROM instances i'
                               ' JOIN allocations a ON a.id = i.allocation_id'))
    con.close()
    return hist, purpose


def entry_at(pricing, purpose, t):
    """The pricing entry of @purpose in effect at @t (ms), as br_pricing_rate() picks it."""
    best = None
    for e in pricing['prices']:
        if e['purpose'] == purpose and from_ms(e['from']) <= t and \
                (best is None or from_ms(e['from']) > from_ms(best['from'])):
            best = e
    return best


def from_ms(s):
    return ms_of(s + 'T00:00:00Z' if len(s) == 10 else s)


def check_statement(ck, doc, hist, purpose, pricing, tag):
    """Every part of @doc against the history and @pricing with the same integer arithmetic;
    every level the sum of the one below. Returns: the ids of the instances billed."""
    m0, to_ms = ms_of(doc['from']), ms_of(doc['to'])
    y, m = int(doc['month'][:4]), int(doc['month'][5:])
    m1 = ms_of(f'{y + m // 12:04d}-{m % 12 + 1:02d}-01T00:00:00Z')
    changes = {p_: sorted(from_ms(e['from']) for e in pricing['prices'] if e['purpose'] == p_)
               for p_ in ('trial', 'production')}
    sums_ok = True
    seen = set()
    for d in doc['departments']:
        d_sum = [0, 0, 0]
        for s in d['systems']:
            s_sum = [0, 0, 0]
            for a in s['allocations']:
                a_sum = [0, 0, 0]
                for i in a['instances']:
                    seen.add(i['id'])
                    h = hist[i['id']]
                    p_ = purpose[i['id']]
                    ck.eq(a['purpose'], p_, f'{tag} instance {i["id"]}: its purpose')
                    i_sum = [0, 0, 0]
                    prev = None
                    for part in i['parts']:
                        f, t = ms_of(part['from']), ms_of(part['to'])
                        what = f'{tag} instance {i["id"]} part from {part["from"]}'
                        held = held_at(h, f)
                        e = entry_at(pricing, p_, f)
                        ck.eq((part['vcpus'], part['memory_mib'], part['disk_gib']), held,
                              f'{what}: what it held')
                        ck.eq(part['price_from'], e['from'], f'{what}: the price in effect')
                        # Nothing held changes and no price takes effect inside a part.
                        ck.ok(all(held_at(h, r_[0]) == held for r_ in h if f < r_[0] < t) and
                              not any(f < c < t for c in changes[p_]),
                              f'{what}: no change inside it')
                        if prev is not None and prev[0] == f:
                            ck.ok((prev[1], prev[2]) != (held, e['from']),
                                  f'{what}: it differs from the part before')
                        prev = (t, held, e['from'])
                        ms = t - f
                        got = (part['compute_fen'], part['memory_fen'], part['disk_fen'])
                        exp = (fen(micro(e['vcpu_hour']), part['vcpus'], ms, HOUR_MS),
                               fen(micro(e['memory_gib_hour']), part['memory_mib'], ms,
                                   HOUR_MS * 1024),
                               fen(micro(e['disk_gib_month']), part['disk_gib'], ms, m1 - m0))
                        ck.eq(got, exp, f'{what}: its fen')
                        ck.eq((part['total_fen'], part['total']), (sum(got), round(sum(got) / 100, 2)),
                              f'{what}: its total in fen and yuan')
                        i_sum = [x + y for x, y in zip(i_sum, got)]
                    # The parts cover every moment of [m0, to) it held anything.
                    held_ms = 0
                    cuts = sorted({m0, to_ms} | {r_[0] for r_ in h if m0 < r_[0] < to_ms})
                    for u, v in zip(cuts, cuts[1:]):
                        if any(held_at(h, u)):
                            held_ms += v - u
                    ck.eq(sum(ms_of(p['to']) - ms_of(p['from']) for p in i['parts']), held_ms,
                          f'{tag} instance {i["id"]}: the parts cover every moment it held anything')
                    sums_ok &= [i['compute_fen'], i['memory_fen'], i['disk_fen']] == i_sum
                    a_sum = [x + y for x, y in zip(a_sum, i_sum)]
                sums_ok &= [a['compute_fen'], a['memory_fen'], a['disk_fen']] == a_sum
                s_sum = [x + y for x, y in zip(s_sum, a_sum)]
            sums_ok &= [s['compute_fen'], s['memory_fen'], s['disk_fen']] == s_sum
            d_sum = [x + y for x, y in zip(d_sum, s_sum)]
        sums_ok &= [d['compute_fen'], d['memory_fen'], d['disk_fen']] == d_sum
        sums_ok &= d['total_fen'] == sum(d_sum)
    ck.ok(sums_ok, f'{tag}: every instance, allocation, system and department is the sum of '
                   'its parts')
    tot = doc['total']
    ck.eq(tot['total_fen'], sum(d['total_fen'] for d in doc['departments']),
          f'{tag}: the departments sum to the total')
    ck.eq(tot['total'], round(tot['total_fen'] / 100, 2), f'{tag}: the total in yuan')
    # Every instance that held anything this month is on the statement, and only those.
    billed = {iid for iid, h in hist.items()
              if any(any(held_at(h, t)) for t in [m0] + [r_[0] for r_ in h if m0 < r_[0] < to_ms])}
    ck.eq(seen, billed, f'{tag}: every instance that held anything is billed, and only those')


def micro(yuan):
    return round(yuan * 10**6)


def run(ck, b, work, pol):
    fleet = ag.Fleet(b, work)
    rv, vendor, auditor = fleet.reviewer, fleet.vendor, fleet.auditor
    mz = fleet.department('mz', '民政局')
    jt = fleet.department('jt', '交通局')
    sys_mz, sys_jt = fleet.system('mz', '门户'), fleet.system('jt', '旧系统')
    rid_mz = fleet.submit_new('mz', sys_mz, [(2, 1024)])
    rid_jt = fleet.submit_new('jt', sys_jt, [(1, 512)])
    allocs = fleet.through_workflow([rid_mz, rid_jt])
    time.sleep(1.0)
    after = fleet.change('mz', sys_mz, allocs[rid_mz]['id'], [(4, 2048)], restart_allowed=True)
    ck.eq([(i['vcpus'], i['memory_mib']) for i in after['instances'] if i['state'] != 'deleted'],
          [(4, 2048)], 'the change resized mz\'s instance')
    time.sleep(1.0)

    month = time.strftime('%Y-%m', time.gmtime())
    r = want(b.get(f'/v1/reports/costs?month={month}', token=rv), 200, 'GET costs')
    doc = r.json()
    ck.eq((doc['report'], doc['month'], doc['currency'], doc['complete']),
          ('cost_statement', month, 'CNY', False), 'the statement of the month under way')
    to_ms = ms_of(doc['to'])
    m0 = ms_of(doc['from'])
    ck.eq(doc['from'], f'{month}-01T00:00:00.000Z', 'it starts at the month\'s first moment')
    y, m = int(month[:4]), int(month[5:])
    m1 = ms_of(f'{y + m // 12:04d}-{m % 12 + 1:02d}-01T00:00:00.000Z')

    hist, purpose = read_history(b)
    deps = {d['code']: d for d in doc['departments']}
    ck.eq(sorted(deps), ['jt', 'mz'], 'both departments are billed')
    check_statement(ck, doc, hist, purpose, PRICING, '[first]')
    tot = doc['total']
    ck.ok(tot['total_fen'] > 0, 'the seconds the test lasted cost money')
    # The total by purpose: each the sum of its allocations, the two the total.
    pur = doc['purposes']
    ck.eq(pur['production']['total_fen'] + pur['trial']['total_fen'], tot['total_fen'],
          'production and trial add up to the total')
    for k in ('production', 'trial'):
        for f in ('compute_fen', 'memory_fen', 'disk_fen', 'total_fen'):
            ck.eq(pur[k][f], sum(a[f] for d in doc['departments'] for s in d['systems']
                                 for a in s['allocations'] if a['purpose'] == k),
                  f'purposes.{k}.{f}: the sum of its allocations')
    # detail=totals: the departments' sums and the purposes, without the lines.
    r = want(b.get(f'/v1/reports/costs?month={month}&detail=totals', token=rv), 200, 'totals')
    short = r.json()
    ck.ok([d['code'] for d in short['departments']] == [d['code'] for d in doc['departments']]
          and all('systems' not in d and d['total_fen'] > 0 for d in short['departments'])
          and short['purposes']['trial']['total_fen'] == pur['trial']['total_fen'],
          'detail=totals: the departments\' sums and the purposes, no lines')
    ck.ok(len(r.body) * 3 < len(json.dumps(doc)),
          f'detail=totals is much shorter ({len(r.body)} bytes, {len(json.dumps(doc))} in full)')

    # mz's production instance: two parts, 2 then 4 vCPUs, cut where the history put the resize.
    mz_prod = [a for s in deps['mz']['systems'] for a in s['allocations']
               if a['purpose'] == 'production']
    ck.eq(len(mz_prod), 1, 'mz has one production allocation')
    inst = mz_prod[0]['instances'][0]
    vcpus = [p['vcpus'] for p in inst['parts'] if p['vcpus']]
    vcpus = [v for k, v in enumerate(vcpus) if k == 0 or vcpus[k - 1] != v]
    ck.eq(vcpus, [2, 4], 'the resize splits the instance\'s month into 2 and 4 vCPUs')
    resize_at = [r_[0] for r_ in hist[inst['id']] if r_[2] == 4][0]
    cut = [ms_of(p['from']) for p in inst['parts'] if p['vcpus'] == 4][0]
    ck.eq(cut, resize_at, 'the second part starts when the history recorded the resize')
    # The trial ended: its domain undefined, its volume kept a moment, then deleted. The
    # moment between is priced as disk only (a retained volume).
    trial = [i for s in deps['mz']['systems'] for a in s['allocations'] if a['purpose'] == 'trial'
             for i in a['instances']]
    ck.eq(len(trial), 1, 'mz\'s trial instance is billed')
    retained = [p for p in trial[0]['parts'] if p['vcpus'] == 0 and p['disk_gib'] > 0 and
                held_state(hist[trial[0]['id']], ms_of(p['from'])) == 'undefined']
    h = hist[trial[0]['id']]
    undef = [r_[0] for r_ in h if r_[1] == 'undefined']
    gone = [r_[0] for r_ in h if r_[1] == 'deleted']
    if undef and (not gone or gone[-1] > undef[-1]):
        ck.ok(retained and all(p['compute_fen'] == p['memory_fen'] == 0 for p in retained),
              f'the trial\'s retained volume is priced as disk only: {retained}')
    else:
        print('note: the trial\'s volume went in the millisecond its domain did', flush=True)
    # CSV: a line per part, the same fen; Chinese headers by default, English with lang=en.
    r = want(b.get(f'/v1/reports/costs?month={month}&format=csv', token=rv), 200, 'CSV')
    ck.ok(r.headers.get('Content-Type', '').startswith('text/csv'), 'CSV: its media type')
    text = r.body.decode('utf-8-sig')
    lines, totals = text.split('\r\n\r\n')
    rows = list(csv.reader(io.StringIO(lines)))
    ck.eq(rows[0][:3], ['部门代码', '部门', '系统'], 'CSV: Chinese headers by default')
    nparts = sum(len(i['parts']) for d in doc['departments'] for s in d['systems']
                 for a in s['allocations'] for i in a['instances'])
    ck.eq(len(rows) - 1, nparts, 'CSV: a line per part')
    # The month is under way: the CSV, asked later, priced more time. Its lines sum to its
    # total row, and every part that had ended when the JSON was made has the JSON's fen.
    col = rows[0].index('合计 (元)')
    trows = list(csv.reader(io.StringIO(totals)))
    ck.eq(sum(round(float(x[col]) * 100) for x in rows[1:]), round(float(trows[-1][-1]) * 100),
          'CSV: the lines sum to the total row')
    ck.eq(sum(round(float(x[-1]) * 100) for x in trows[1:-1]), round(float(trows[-1][-1]) * 100),
          'CSV: the departments sum to the total row')
    ck.eq(trows[-1][1], '合计', 'CSV: the total row says so')
    closed = {(i['name'], p['from']): p for d in doc['departments'] for s in d['systems']
              for a in s['allocations'] for i in a['instances'] for p in i['parts']
              if ms_of(p['to']) < to_ms}
    ci, cf = rows[0].index('实例'), rows[0].index('起')
    by_csv = {(x[ci], x[cf]): x for x in rows[1:]}
    ck.ok(closed, 'some parts had ended when the JSON was made')
    for key, p in closed.items():
        x = by_csv.get(key)
        ck.ok(x is not None and [round(float(v) * 100) for v in x[col - 3:col + 1]] ==
              [p['compute_fen'], p['memory_fen'], p['disk_fen'], p['total_fen']],
              f'CSV: the part {key} has the JSON\'s fen')
    r = want(b.get(f'/v1/reports/costs?month={month}&format=csv&lang=en', token=rv), 200,
             'CSV en')
    ck.eq(r.body.decode('utf-8-sig').split('\r\n')[0].split(',')[:3],
          ['department_code', 'department', 'system'], 'CSV: English headers with lang=en')

    # HTML: parses, in Chinese by default, shows the total.
    r = want(b.get(f'/v1/reports/costs?month={month}&format=html', token=rv), 200, 'HTML')
    p = Text()
    p.feed(r.body.decode('utf-8'))
    ck.ok('政务云资源费用月度账单 ' + month in p.texts, 'HTML: the Chinese title')
    for key, part in closed.items():
        ck.ok(f'{part["total_fen"] / 100:.2f}' in p.texts, f'HTML: the part {key}\'s total')
    r = want(b.get(f'/v1/reports/costs?month={month}&format=html&lang=en', token=rv), 200,
             'HTML en')
    ck.ok(b'Monthly cost statement' in r.body, 'HTML: English with lang=en')

    # Scope: a department sees its own, whatever it asks; the auditor all; a vendor nothing.
    r = want(b.get(f'/v1/reports/costs?month={month}&department={jt["id"]}', token=mz['token']),
             200, 'mz asks for jt')
    d = r.json()
    ck.eq([x['code'] for x in d['departments']], ['mz'], 'a department sees its own statement')
    ck.eq(d['total']['total_fen'], deps['mz']['total_fen'],
          'its total is its own (priced at the same moment or later: not less)') \
        if d['to'] == doc['to'] else \
        ck.ok(d['total']['total_fen'] >= deps['mz']['total_fen'], 'its total grows with time')
    r = want(b.get(f'/v1/reports/costs?month={month}&department={jt["id"]}', token=auditor),
             200, 'auditor asks for jt')
    ck.eq([x['code'] for x in r.json()['departments']], ['jt'], 'the auditor picks a department')
    ck.eq(b.get(f'/v1/reports/costs?month={month}', token=vendor).status, 403,
          'the vendor does not read departments\' costs')
    r = want(b.get('/v1/reports/costs?month=2001-01', token=b.admin_token), 200, 'a past month')
    ck.eq((r.json()['departments'], r.json()['total']['total_fen'], r.json()['complete']),
          ([], 0, True), 'a month before anything existed costs nothing')

    # Bad input: 400 naming the field; an unknown department 404.
    for q, field in (('month=2026-13', 'month'), ('month=26-01', 'month'), ('', 'month'),
                     (f'month={month}&format=xml', 'format'), (f'month={month}&lang=fr', 'lang'),
                     (f'month={month}&department=x', 'department'),
                     (f'month={month}&detail=x', 'detail'),
                     (f'month={month}&detail=totals&format=csv', 'detail')):
        r = b.get(f'/v1/reports/costs?{q}', token=rv)
        ck.eq((r.status, cbtest.json_error(r).get('field')), (400, field),
              f'?{q}: refused naming {field}')
    r = b.get(f'/v1/reports/costs?month={month}&department=999', token=rv)
    ck.eq(r.status, 404, 'an unknown department: 404')

    # cloudbrokerctl report costs: the summary's rows, the JSON document, the CSV in English.
    out = cbtest.ctl(b, 'report', 'costs', '--month', month, token=auditor).stdout.decode()
    ck.ok(out.startswith(f'政务云资源费用月度账单 {month}') and
          all(f' {c} ' in out or out.count(c) for c in ('mz', 'jt', '合计')),
          f'ctl report costs: a summary with both departments and the total: {out[:200]!r}')
    d = cbtest.ctl_json(b, 'report', 'costs', '--month', month, token=mz['token'])
    ck.eq([x['code'] for x in d['departments']], ['mz'], 'ctl report costs --json: its own only')
    out = cbtest.ctl(b, 'report', 'costs', '--month', month, '--format', 'csv', '--lang', 'en',
                     token=auditor).stdout.decode('utf-8-sig')
    ck.ok(out.startswith('department_code,department,system'), 'ctl: the CSV in English')
    p = cbtest.ctl(b, 'report', 'costs', '--month', '2026-13', token=auditor, check=False)
    ck.ok(p.returncode != 0 and b'month' in p.stderr, 'ctl: a bad month names the field')

    # A price change mid-month, by SIGHUP: a policy the schema refuses keeps the old prices;
    # then production doubles from a moment two seconds ahead, and the running instances'
    # month splits there.
    path = os.path.join(pol, 'pricing.json')
    with open(path, 'w') as f:
        json.dump(dict(PRICING, currency='USD'), f)
    b.proc.send_signal(signal.SIGHUP)
    time.sleep(1)
    ck.eq(b.get('/v1/policies', token=rv).json()['pricing']['currency'], 'CNY',
          'a pricing policy the schema refuses is not loaded')
    with open(b.log_path) as f:
        log = f.read()
    ck.ok('pricing.json' in log and '/currency' in log,
          'the refused reload is logged naming the file and the field')
    at = int(time.time()) + 2
    change = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(at))
    pricing2 = json.loads(json.dumps(PRICING))
    pricing2['prices'].append({'from': change, 'purpose': 'production', 'vcpu_hour': 7200,
                               'memory_gib_hour': 1800, 'disk_gib_month': 1000000})
    with open(path, 'w') as f:
        json.dump(pricing2, f)
    b.proc.send_signal(signal.SIGHUP)
    ag.wait_for(lambda: len(b.get('/v1/policies', token=rv).json()['pricing']['prices']) == 3,
                5, 'the new pricing policy')
    while time.time() < at + 1.5:
        time.sleep(0.1)
    doc2 = want(b.get(f'/v1/reports/costs?month={month}', token=rv), 200, 'GET costs').json()
    hist, purpose = read_history(b)
    check_statement(ck, doc2, hist, purpose, pricing2, '[price change]')
    prod = [p for d in doc2['departments'] for s in d['systems'] for a in s['allocations']
            if a['purpose'] == 'production' for i in a['instances'] for p in i['parts']
            if p['vcpus']]
    ck.ok(any(p['from'] == change.replace('Z', '.000Z') and p['price_from'] == change
              and p['rates']['vcpu_hour'] == 7200 for p in prod),
          'the running production instances have a part from the change at the new price')
    ck.ok(any(p['to'] == change.replace('Z', '.000Z') and p['price_from'] == '2020-01-01'
              for p in prod), 'and a part up to it at the old price')

    # [backfill] A database from before the migration (as test-role-matrix does, the broker
    # stopped: the table dropped, the schema version one back): the migration gives every
    # instance what the other tables know: pending from its creation, running from its first
    # start step, a deleted one's volume retained from its last undefine step, at its present
    # sizes. The times are those steps' ends, a few ms from the live history's.
    live, _ = read_history(b)
    ck.eq(b.stop(), 0, 'the broker stops cleanly (under the sanitizers: nothing leaked)')
    con = cbtest.db_connect(b.db_path, write=True)
    # Back to version 12: migration 14's tables and columns go too (it runs again after 13).
    con.execute('DROP TABLE instance_history')
    con.execute('ALTER TABLE incidents DROP COLUMN resolution_recorded_at')
    con.execute('ALTER TABLE vulnerabilities DROP COLUMN fix_recorded_at')
    for table in ('sla_explanations', 'host_outages', 'maintenance_windows',
                  # migration 15's, which runs again too
                  'security_bulletins', 'emergency_drills', 'restore_tests',
                  'operations_reports', 'vendor_documents'):
        con.execute(f'DROP TABLE {table}')
    if cbtest.BACKEND == 'postgresql':
        # And migrations 16's and 17's (PostgreSQL only): the samples one table again, as before
        # them, and no covering index of the rollups.
        con.executescript(
            'CREATE TABLE samples_plain (LIKE samples INCLUDING DEFAULTS INCLUDING CONSTRAINTS,'
            ' PRIMARY KEY (instance_id, start));'
            'INSERT INTO samples_plain SELECT * FROM samples;'
            'DROP TABLE samples;'
            'DROP FUNCTION samples_partition(bigint);'
            'DROP FUNCTION samples_drop_before(bigint);'
            'ALTER TABLE samples_plain RENAME TO samples;'
            'ALTER TABLE samples RENAME CONSTRAINT samples_plain_pkey TO samples_pkey;'
            'CREATE INDEX samples_start ON samples(start);'
            # and migration 17's: the rollups' covering index
            'DROP INDEX rollups_use;')
        con.execute('UPDATE schema_version SET version = 12')
    else:
        con.execute('PRAGMA user_version = 12')
    con.commit()
    con.close()
    b.start()
    back, _ = read_history(b)
    ck.eq(sorted(back), sorted(live), '[backfill] every instance has a history')
    for iid, h in live.items():
        states = [r_[1] for r_ in back.get(iid, [])]
        want_states = ['pending', 'running'] + (['undefined', 'deleted']
                                                if h[-1][1] == 'deleted' else [])
        ck.eq(states, want_states, f'[backfill] instance {iid}: its states')
        for st in ('pending', 'running', 'undefined', 'deleted'):
            lt = [r_[0] for r_ in h if r_[1] == st]
            bt = [r_[0] for r_ in back.get(iid, []) if r_[1] == st]
            if bt and lt:
                first = st in ('pending', 'running')
                ck.ok(abs(bt[0] - (lt[0] if first else lt[-1])) <= 50,
                      f'[backfill] instance {iid}: {st} at {bt[0]}, live {lt}')
        ck.eq(back[iid][-1][2:], h[-1][2:], f'[backfill] instance {iid}: its present sizes')
    r = want(b.get(f'/v1/reports/costs?month={month}', token=rv), 200, 'GET costs after backfill')
    ck.eq(sorted(d['code'] for d in r.json()['departments']), ['jt', 'mz'],
          '[backfill] the statement after the migration bills both departments')
    ck.eq(b.stop(), 0, 'the migrated broker stops cleanly')


if __name__ == '__main__':
    main()
