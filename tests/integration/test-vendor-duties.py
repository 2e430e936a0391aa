#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The vendor's duties on the service-quality scorecard (issue 12, docs/service-quality.md):
the monthly security bulletin, the yearly emergency drill, the backup restore tests and the
monthly operations report, recorded through the real API with their documents (uploaded,
SHA-256 checked by the broker), and judged month by month: met, missed and pending.

Every record is made now, so the months are counted back from the month under way (M):

  policy: bulletin and report due by day 31 of the next month (that is its last day),
          deductions 1 % and 1.5 %; drill due by the end of December, 2 %; restore tests
          every month (period_months 1), 0.5 % per system without one; fee 100,000 yuan
  bulletins: M-3 none (missed), M-2 recorded now (after the end of M-1: late, missed),
             M-1 recorded now (in time: met), M none yet (pending), then recorded (met)
  reports:   M-2 none (missed: due by the end of M-1; 1.5 % = 150,000 fen), M-1 none (pending:
             due by the end of M), M none (pending)
  drills:    last year none in time (December's scorecard: missed, 2 % = 200,000 fen; one held
             last year but recorded now does not mend it), this year none yet (pending), then
             one (met)
  restore:   systems A (department mz) and B (department ga), backed up 100 days ago, and C
             without a backup (nothing due). M-2 and M-1: neither tested in time (a test of A
             dated in M-1 recorded now is late): 2 × 0.5 % = 100,000 fen each. M: pending; A ok
             and B failed: still pending for B; B ok: met
  the totals: M-2 350,000 fen, M-1 100,000 fen (and the drill's 200,000 in a December)

And: a document whose SHA-256 is not the one stated is refused (422 naming sha256) and not
kept; a record naming a document never uploaded, a month to come, a time before its month, a
backup of another system: refused naming the field, nothing recorded; who records and who reads;
a department sees its own systems' restore tests and their documents only (404 for others); the
records are audited; the HTML in zh and en shows the duties.
"""
import calendar
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import assessgen as ag  # noqa: E402
import cbtest  # noqa: E402

FEE_FEN = 100000 * 100
DAY_MS = 86400000
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
LIMIT = {'critical': 4, 'high': 24, 'medium': 72, 'low': 168}
SLA = {
    'cap_percent': 20,
    'indicators': {
        'availability': {'target_percent': 99.9, 'deduction_percent': 1, 'cap_percent': 10},
        'trial_lead_time': {'limit_hours': 24, 'deduction_percent': 0.5, 'cap_percent': 3},
        'allocation_lead_time': {'limit_hours': 24, 'deduction_percent': 0.5, 'cap_percent': 3},
        'change_lead_time': {'limit_hours': 24, 'deduction_percent': 0.5, 'cap_percent': 3},
        'incident_response': {'limit_hours': LIMIT, 'deduction_percent': 1, 'cap_percent': 5},
        'incident_resolution': {'limit_hours': LIMIT, 'deduction_percent': 1, 'cap_percent': 5},
        'vulnerability_fix': {'limit_days': {'critical': 7, 'high': 30, 'medium': 90,
                                             'low': 180},
                              'deduction_percent': 1, 'cap_percent': 5},
        'security_bulletin': {'due_day': 31, 'deduction_percent': 1, 'cap_percent': 1},
        'emergency_drill': {'due_month': 12, 'deduction_percent': 2, 'cap_percent': 2},
        'backup_restore_test': {'period_months': 1, 'deduction_percent': 0.5,
                                'cap_percent': 3},
        'operations_report': {'due_day': 31, 'deduction_percent': 1.5, 'cap_percent': 2},
    },
}


def iso(ms):
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(ms // 1000)) + f'.{ms % 1000:03d}Z'


def month_add(month, n):
    y, m = int(month[:4]), int(month[5:7]) - 1 + n
    return f'{y + m // 12:04d}-{m % 12 + 1:02d}'


def month_ms(month):
    return calendar.timegm(time.strptime(f'{month}-01', '%Y-%m-%d')) * 1000


def want(r, status, what):
    if r.status != status:
        raise RuntimeError(f'{what}: {r}')
    return r.json() if r.body else None


def main():
    ck = cbtest.Checks('test-vendor-duties')
    work = tempfile.mkdtemp(prefix='cbduty-')
    pol = ag.policy_dir(os.path.join(work, 'policies'))
    with open(os.path.join(pol, 'pricing.json'), 'w') as f:
        json.dump(PRICING, f)
    with open(os.path.join(pol, 'service-quality.json'), 'w') as f:
        json.dump(SLA, f)
    b = cbtest.Broker(policy_dir=pol)
    t0 = time.monotonic()
    try:
        b.start()
        run(ck, b)
        ck.eq(b.stop(), 0, 'the broker stops cleanly (under the sanitizers: nothing leaked)')
    except Exception:
        traceback.print_exc()
        ck.ok(False, 'the test ran to its end without an exception')
    finally:
        b.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f'runtime: {time.monotonic() - t0:.1f} s', flush=True)
    ck.done()


def by_id(doc):
    return {x['id']: x for x in doc['indicators']}


def run(ck, b):
    _, rv = b.make_account('reviewer', 'reviewer')
    _, vendor = b.make_account('vendor', 'vendor')
    _, auditor = b.make_account('auditor', 'auditor')
    mz = b.make_department('mz', '民政局')
    _, mz_tok = b.make_account('mz-staff', 'department', mz)
    ga = b.make_department('ga', '公安局')
    _, ga_tok = b.make_account('ga-staff', 'department', ga)
    sys_a = cbtest.make_system(b, mz_tok, '门户')
    sys_b = cbtest.make_system(b, ga_tok, '户籍')
    sys_c = cbtest.make_system(b, mz_tok, '档案')

    now = int(time.time() * 1000)
    cur = time.strftime('%Y-%m', time.gmtime(now / 1000))
    prev, prev2, prev3 = month_add(cur, -1), month_add(cur, -2), month_add(cur, -3)
    last_dec = f'{int(cur[:4]) - 1}-12'
    backed = iso(now - 100 * DAY_MS)
    bk = {}
    for s, tok in ((sys_a, mz_tok), (sys_b, ga_tok)):
        bk[s] = want(b.post(f'/v1/systems/{s}/backups',
                            {'location': 'dr://store', 'taken_at': backed, 'size_bytes': 1 << 30,
                             'sha256': 'ab' * 32}, token=tok), 201, 'backup')['id']

    def card(month, token=rv):
        return want(b.get(f'/v1/reports/service-quality?month={month}', token=token), 200,
                    f'scorecard {month}')

    # Before anything is recorded: the month under way is pending for every duty (none of
    # them is over), never missed.
    ind = by_id(card(cur))
    for d in ('security_bulletin', 'operations_report', 'emergency_drill',
              'backup_restore_test'):
        ck.eq((ind[d]['status'], ind[d]['deduction_fen']), ('pending', 0),
              f'{cur}: {d} pending, nothing deducted, before anything is recorded')
    ck.eq(ind['backup_restore_test']['measured']['systems'], 2,
          'restore tests are due for the two systems with backups, not for C')

    # ---- documents: uploaded, the broker's SHA-256 against the one stated ----
    def upload(text, token=vendor, sha=None, ctype='text/plain', name='doc.txt'):
        data = text.encode()
        real = hashlib.sha256(data).hexdigest()
        r = b.request('PUT', f'/v1/vendor-documents/{sha or real}?filename={name}',
                      token=token, raw=data, headers={'Content-Type': ctype})
        return r, real

    def count(table):
        con = cbtest.db_connect(b.db_path)
        try:
            return con.execute(f'SELECT count(*) FROM {table}').fetchone()[0]
        finally:
            con.close()

    r, real = upload('security bulletin, tampered', sha='0' * 64)
    ck.eq((r.status, cbtest.json_error(r).get('field'), cbtest.json_error(r).get('code')),
          (422, 'sha256', 'sha256_mismatch'), 'a document whose SHA-256 is not the stated one')
    ck.eq(b.get(f'/v1/vendor-documents/{real}', token=vendor).status, 404,
          'the refused document was not kept')
    ck.eq(count('vendor_documents'), 0, 'nothing recorded of it')
    r, _ = upload('x', sha='ab' * 31)
    ck.eq((r.status, cbtest.json_error(r).get('field')), (400, 'sha256'),
          'a path that is no SHA-256')
    r, _ = upload('x', token=mz_tok)
    ck.eq(r.status, 403, 'a department uploads no vendor document')
    r, _ = upload('%PDF-1.4 not really', ctype='image/png')
    ck.eq(r.status, 415, 'content not of the declared type is refused')

    docs = {}
    for key in ('b_prev2', 'b_prev', 'b_cur', 'drill_ly', 'drill', 'rt_a_prev', 'rt_a',
                'rt_b_fail', 'rt_b'):
        r, sha = upload(f'文档 {key}: the vendor\'s record\n', name=f'{key}.txt')
        ck.eq((r.status, r.json()['sha256']), (201, sha), f'document {key} uploaded')
        docs[key] = sha
    r, sha = upload('文档 b_prev2: the vendor\'s record\n')
    ck.eq((r.status, r.json()['sha256'], r.json()['filename']), (201, sha, 'b_prev2.txt'),
          'the same document again: the first upload stands')
    got = b.get(f'/v1/vendor-documents/{docs["drill"]}', token=auditor)
    ck.eq((got.status, got.body, got.headers.get('X-Content-SHA256')),
          (200, '文档 drill: the vendor\'s record\n'.encode(), docs['drill']),
          'the auditor downloads a document, byte for byte, with its SHA-256')

    # ---- bad records: refused naming the field, nothing recorded ----
    bad = [
        ('/v1/security-bulletins', {'month': prev, 'published_at': iso(now), 'title': 't',
                                    'document': 'f' * 64}, 422, '/document'),
        ('/v1/security-bulletins', {'month': month_add(cur, 1), 'published_at': iso(now),
                                    'title': 't', 'document': docs['b_prev']}, 422, '/month'),
        ('/v1/security-bulletins', {'month': cur, 'published_at': iso(month_ms(prev)),
                                    'title': 't', 'document': docs['b_cur']}, 422,
         '/published_at'),
        ('/v1/security-bulletins', {'month': cur, 'published_at': iso(now), 'title': '',
                                    'document': docs['b_cur']}, 422, '/title'),
        ('/v1/emergency-drills', {'held_at': iso(now + 3 * DAY_MS), 'scenario': 's',
                                  'result': 'r', 'document': docs['drill']}, 422, '/held_at'),
        (f'/v1/systems/{sys_a}/restore-tests', {'tested_at': iso(now), 'result': 'ok',
                                                'duration_s': 60, 'backup': bk[sys_b],
                                                'document': docs['rt_a']}, 422, '/backup'),
        (f'/v1/systems/{sys_a}/restore-tests', {'tested_at': iso(now), 'result': 'fine',
                                                'duration_s': 60, 'document': docs['rt_a']},
         422, '/result'),
        ('/v1/operations-reports', {'month': cur, 'delivered_at': 'yesterday',
                                    'document': docs['b_cur']}, 422, '/delivered_at'),
    ]
    tables = ('security_bulletins', 'emergency_drills', 'restore_tests', 'operations_reports')
    before = [count(t) for t in tables]
    for path, body, status, field in bad:
        r = b.post(path, body, token=vendor)
        ck.eq((r.status, cbtest.json_error(r).get('field')), (status, field),
              f'POST {path} with a bad {field}: refused naming it')
    ck.eq([count(t) for t in tables], before, 'nothing was recorded by the refused bodies')
    ck.eq(b.post(f'/v1/systems/999/restore-tests', {'tested_at': iso(now), 'result': 'ok',
                                                    'duration_s': 1, 'document': docs['rt_a']},
                 token=vendor).status, 404, 'a restore test of no system: 404')
    for who, tok in (('reviewer', rv), ('auditor', auditor), ('department', mz_tok)):
        ck.eq(b.post('/v1/security-bulletins', {'month': prev, 'published_at': iso(now),
                                                'title': 't', 'document': docs['b_prev']},
                     token=tok).status, 403, f'the {who} records no bulletin')

    # ---- the records ----
    def record(path, body):
        return want(b.post(path, body, token=vendor), 201, f'POST {path}')

    bul_prev2 = record('/v1/security-bulletins', {
        'month': prev2, 'published_at': iso(month_ms(prev2) + DAY_MS),
        'title': f'{prev2} 安全通报', 'document': docs['b_prev2']})
    bul_prev = record('/v1/security-bulletins', {
        'month': prev, 'published_at': iso(now), 'title': f'{prev} 安全通报',
        'document': docs['b_prev']})
    ck.eq((bul_prev['month'], bul_prev['document_sha256'], bul_prev['document_filename']),
          (prev, docs['b_prev'], 'b_prev.txt'), 'the bulletin as recorded, with its document')
    drill_ly = record('/v1/emergency-drills', {
        'held_at': f'{last_dec}-15T02:00:00Z', 'scenario': '生产主机断电 / a host loses power',
        'result': 'failover in 12 min', 'document': docs['drill_ly']})
    rt_a_prev = record(f'/v1/systems/{sys_a}/restore-tests', {
        'tested_at': iso(month_ms(prev) + 14 * DAY_MS), 'result': 'ok', 'duration_s': 1800,
        'backup': bk[sys_a], 'document': docs['rt_a_prev']})
    ck.eq((rt_a_prev['system_id'], rt_a_prev['backup_id'], rt_a_prev['department_id']),
          (sys_a, bk[sys_a], mz), 'the restore test names its system, backup and department')

    # ---- M-3: no bulletin at all (missed); M-2: recorded after its deadline (missed) ----
    for month, rec in ((prev3, None), (prev2, bul_prev2)):
        x = by_id(card(month))['security_bulletin']
        ck.eq((x['status'], x['steps_missed'], x['deduction_fen']), ('missed', 1, 100000),
              f'{month}: the bulletin missed, 1 % of the fee deducted')
        ck.eq(x['target']['due'], iso(month_ms(month_add(month, 2))),
              f'{month}: due by the end of the next month (due_day 31)')
        ck.eq([(e['id'], e['result']) for e in x['evidence']],
              [(rec['id'], 'late')] if rec else [],
              f'{month}: the evidence ({"the late record" if rec else "none"})')

    # ---- M-2: the report missed too; the month's total ----
    doc = card(prev2)
    ind = by_id(doc)
    x = ind['operations_report']
    ck.eq((x['status'], x['steps_missed'], x['deduction_fen'], x['evidence']),
          ('missed', 1, 150000, []),
          f'{prev2}: no operations report by the end of {prev}: missed, 1.5 % = 150,000 fen')
    ck.eq((ind['backup_restore_test']['status'], ind['backup_restore_test']['deduction_fen']),
          ('missed', 100000), f'{prev2}: no restore test: 2 × 0.5 % = 100,000 fen')
    drill_prev2 = 200000 if prev2 == last_dec else 0
    want_total = 100000 + 150000 + 100000 + drill_prev2
    ck.eq((doc['deductions_fen'], doc['deduction_fen'], doc['fee_after_fen']),
          (want_total, want_total, FEE_FEN - want_total),
          f'{prev2}: the month\'s deductions ({want_total} fen) and the fee after them')

    # ---- M-1: bulletin in time, report not yet due, restore tests missing ----
    doc = card(prev)
    ind = by_id(doc)
    x = ind['security_bulletin']
    ck.eq((x['status'], x['deduction_fen'], [e['href'] for e in x['evidence']]),
          ('met', 0, [f'/v1/security-bulletins/{bul_prev["id"]}']),
          f'{prev}: the bulletin recorded in time: met, its record the evidence')
    x = ind['operations_report']
    ck.eq((x['status'], x['steps_missed'], x['deduction_fen'], x['target']['due']),
          ('pending', 0, 0, iso(month_ms(month_add(cur, 1)))),
          f'{prev}: no operations report yet, due by the end of {cur}: pending, not missed')
    x = ind['backup_restore_test']
    ck.eq((x['status'], x['steps_missed'], x['deduction_fen']), ('missed', 2, 100000),
          f'{prev}: neither system tested in time: 2 × 0.5 % = 100,000 fen')
    ck.eq(sorted((e['kind'], e['id'], e['result']) for e in x['evidence']),
          sorted([('restore_test', rt_a_prev['id'], 'late'), ('system', sys_a, 'missing'),
                  ('system', sys_b, 'missing')]),
          f'{prev}: A\'s test dated in the month but recorded after it is late; both missing')
    drill_prev = 200000 if prev == last_dec else 0
    ck.eq(ind['emergency_drill']['deduction_fen'], drill_prev,
          f'{prev}: the drill deducted only in December ({drill_prev} fen)')
    want_total = 100000 + drill_prev
    ck.eq((doc['deductions_fen'], doc['deduction_fen'], doc['fee_after_fen']),
          (want_total, want_total, FEE_FEN - want_total),
          f'{prev}: the month\'s deductions and the fee after them')
    ck.eq(sum(i.get('deduction_fen', 0) for i in doc['indicators']), doc['deductions_fen'],
          f'{prev}: the indicators\' deductions sum to the month\'s')

    # ---- last December: the year's drill ----
    x = by_id(card(last_dec))['emergency_drill']
    ck.eq((x['status'], x['deduction_fen'], x['judged_in']), ('missed', 200000, last_dec),
          f'{last_dec}: no drill recorded by the year\'s end: missed, 2 % = 200,000 fen')
    ck.eq([(e['id'], e['result']) for e in x['evidence']], [(drill_ly['id'], 'late')],
          f'{last_dec}: the drill held then but recorded now is late')

    # ---- M: pending until done ----
    ind = by_id(card(cur))
    ck.eq([ind[d]['status'] for d in ('security_bulletin', 'operations_report',
                                      'emergency_drill')],
          ['pending'] * 3, f'{cur}: bulletin, report and drill pending')
    record('/v1/security-bulletins', {'month': cur, 'published_at': iso(now), 'title': 'b',
                                      'document': docs['b_cur']})
    drill = record('/v1/emergency-drills', {'held_at': iso(now), 'scenario': '数据库故障',
                                            'result': 'ok', 'document': docs['drill']})
    rt_a = record(f'/v1/systems/{sys_a}/restore-tests', {
        'tested_at': iso(now), 'result': 'ok', 'duration_s': 600, 'document': docs['rt_a']})
    rt_b_fail = record(f'/v1/systems/{sys_b}/restore-tests', {
        'tested_at': iso(now), 'result': 'failed', 'duration_s': 900,
        'document': docs['rt_b_fail']})
    ind = by_id(card(cur))
    ck.eq((ind['security_bulletin']['status'], ind['emergency_drill']['status'],
           ind['operations_report']['status']), ('met', 'met', 'pending'),
          f'{cur}: bulletin and drill recorded: met; the report still pending')
    x = ind['backup_restore_test']
    ck.eq((x['status'], x['measured']['systems_met'], x['deduction_fen']), ('pending', 1, 0),
          f'{cur}: A tested, B\'s restore failed: still pending for B')
    ck.eq(sorted((e['kind'], e['id'], e['result']) for e in x['evidence']),
          sorted([('restore_test', rt_a['id'], 'met'),
                  ('restore_test', rt_b_fail['id'], 'failed'), ('system', sys_b, 'pending')]),
          f'{cur}: the evidence: A in time, B failed and pending')
    rt_b = record(f'/v1/systems/{sys_b}/restore-tests', {
        'tested_at': iso(now), 'result': 'ok', 'duration_s': 700, 'document': docs['rt_b']})
    x = by_id(card(cur))['backup_restore_test']
    ck.eq((x['status'], x['measured']['systems_met']), ('met', 2), f'{cur}: both tested: met')
    ck.eq(by_id(card(cur, vendor))['emergency_drill']['evidence'][0]['id'], drill['id'],
          'the vendor reads the scorecard with its drill')

    # ---- who reads what ----
    for who, tok in (('reviewer', rv), ('auditor', auditor), ('vendor', vendor)):
        items = want(b.get('/v1/security-bulletins', token=tok), 200, 'list')['items']
        ck.eq(len(items), 3, f'the {who} lists the bulletins')
    items = want(b.get(f'/v1/security-bulletins?month={prev}', token=auditor), 200,
                 'list')['items']
    ck.eq([x['id'] for x in items], [bul_prev['id']], 'bulletins filtered by month')
    ck.eq(b.get('/v1/security-bulletins', token=mz_tok).status, 403,
          'a department reads no bulletins')
    ck.eq(want(b.get(f'/v1/emergency-drills/{drill_ly["id"]}', token=rv), 200,
               'drill')['scenario'], '生产主机断电 / a host loses power', 'a drill by id')
    mine = want(b.get('/v1/restore-tests', token=mz_tok), 200, 'restore tests')['items']
    ck.eq(sorted(x['id'] for x in mine), sorted([rt_a_prev['id'], rt_a['id']]),
          'a department lists the restore tests of its own systems only')
    ck.eq([x['id'] for x in want(b.get(f'/v1/restore-tests?system={sys_b}', token=rv), 200,
                                 'by system')['items']], [rt_b_fail['id'], rt_b['id']],
          'restore tests filtered by system')
    ck.eq(b.get(f'/v1/restore-tests/{rt_b["id"]}', token=mz_tok).status, 404,
          'another department\'s restore test: 404')
    ck.eq(b.get(f'/v1/restore-tests/{rt_a["id"]}', token=mz_tok).status, 200,
          'its own restore test')
    ck.eq(b.get(f'/v1/vendor-documents/{docs["rt_a"]}', token=mz_tok).status, 200,
          'the document of its own system\'s restore test')
    for key in ('rt_b', 'b_prev'):
        ck.eq(b.get(f'/v1/vendor-documents/{docs[key]}', token=mz_tok).status, 404,
              f'a department does not read document {key}: 404')
    ck.eq(b.get('/v1/reports/service-quality?month=' + cur, token=mz_tok).status, 403,
          'a department reads no scorecard')
    ck.eq(b.get('/v1/restore-tests?month=2026-1', token=rv).status, 400, 'a malformed month')

    # ---- audited ----
    audit = want(b.get('/v1/audit?limit=1000', token=auditor), 200, 'audit')['items']
    acts = [a['action'] for a in audit]
    for action, n in (('vendor_document.upload', 10), ('security_bulletin.record', 3),
                      ('emergency_drill.record', 2), ('restore_test.record', 4)):
        ck.eq(acts.count(action), n, f'{n} × {action} in the audit trail')

    # ---- cloudbrokerctl: the document uploaded and hashed, the record made, listed ----
    path = os.path.join(b.state_dir, 'ops-report.txt')
    with open(path, 'w') as f:
        f.write(f'{cur} 运维报告 / operations report\n')
    with open(path, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    p = cbtest.ctl(b, 'ops-report', 'add', '--month', cur, '--delivered-at', 'now',
                   '--document', path, token=vendor)
    ck.ok(f'document sha256 {sha}' in p.stdout.decode(),
          f'ctl ops-report add: recorded with the document\'s SHA-256: {p.stdout.decode()!r}')
    listed = cbtest.ctl_json(b, 'ops-report', 'list', '--month', cur, token=auditor)
    ck.eq([(x['month'], x['document_sha256']) for x in listed['items']], [(cur, sha)],
          'ctl ops-report list --month --json: the auditor reads it')
    ck.eq(by_id(card(cur))['operations_report']['status'], 'met',
          f'{cur}: the report recorded with the CLI: met')
    p = cbtest.ctl(b, 'restore-test', 'add', '--system', str(sys_a), '--tested-at', 'now',
                   '--result', 'maybe', '--duration', '5', '--document', path, token=vendor,
                   check=False)
    ck.eq(p.returncode, 2, 'ctl restore-test add --result maybe: a usage error')
    rows = cbtest.ctl(b, 'restore-test', 'list', token=mz_tok).stdout.decode()
    ck.ok(str(rt_a['id']) in rows and 'SYSTEM' in rows, 'ctl restore-test list: a table')

    # ---- the vendor's explanation of a duty; the HTML ----
    want(b.post('/v1/reports/service-quality/explanations',
                {'month': prev2, 'indicator': 'operations_report',
                 'text': '报告已于次月提交 / delivered on paper'}, token=vendor), 201, 'explain')
    x = by_id(card(prev2))['operations_report']
    ck.eq(([e['text'] for e in x['explanations']], x['deduction_fen']),
          (['报告已于次月提交 / delivered on paper'], 150000),
          'the explanation shown beside the duty; the deduction stands')
    for lang, words in (('zh', ('月度安全通报', '年度应急演练', '备份恢复测试', '月度运维报告',
                                '待定', '缺失')),
                        ('en', ('Monthly security bulletin', 'Yearly emergency drill',
                                'Backup restore test', 'Monthly operations report')),):
        for month in (prev, cur):
            r = b.get(f'/v1/reports/service-quality?month={month}&format=html&lang={lang}',
                      token=rv)
            text = r.body.decode()
            # M-1 has a report pending and restore tests missing; M is all met by now.
            words_here = words if month == prev else words[:4]
            ck.ok(r.status == 200 and all(w in text for w in words_here),
                  f'HTML {lang} {month}: the duties named ({", ".join(words_here)})')
    del sys_c


if __name__ == '__main__':
    main()
