#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""cloudbrokerctl's metering, assessment, security and report commands against a real broker.

The fleet is made through the API with assessgen.py (libvirt's test driver as the trial and the
production host, every request through the whole workflow), with an assessment policy whose
windows fit three days of hourly windows:
  民政局 mz  oa      2/2048  idle all the time                  → idle
             calc    1/4096  0.945 cores, 1000 MiB              → under- and over-provisioned
             archive         off the cloud
  交通局 jt  gis     4/8192  office hours 1.10 cores, else 0.30 → over-provisioned
  体育局 ty  (no systems)

Then each new command of the built cloudbrokerctl runs as the role that uses it, and the test
checks its text output, its --json output (against the API's own answer), its exit status for
bad input (usage errors: 2; the broker's refusals: 1 with the broker's message, field and
status), and the files it writes (-o: mode, content, atomic replacement):
  host agent-token, host add --agent-token-out; metering rollup; usage instance|allocation;
  assessment run; finding list|show|acknowledge|resolve|dismiss|change-request;
  vulnerability add|list|update; incident add|list; backup add|list;
  report assessment|operations (summary in zh and en, --json, --format json|csv|html, -o).
"""
import csv
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import assessgen as ag  # noqa: E402
import cbtest  # noqa: E402
from assessgen import DAY, HOUR  # noqa: E402

MIN_AGE = 2  # evidence.min_age_seconds of the test policy
WINDOW = 2 * DAY  # the rules' windows in the test policy
HISTORY_DAYS = 3

# The CSV columns of the annual assessment and where each comes from in a department of the
# JSON report (broker/br-report-format.c renders them; this is the contract it must keep).
ASSESS_CSV = [
    ('rank', 'rank'), ('department_code', 'code'), ('department', 'name'),
    ('systems', 'cloud_share.systems'), ('systems_on_cloud', 'cloud_share.on_cloud'),
    ('cloud_share', 'cloud_share.share'), ('cloud_share_score', 'cloud_share.score'),
    ('allocated_vcpus', 'efficiency.allocated_vcpus'),
    ('used_vcpus_avg', 'efficiency.used_vcpus_avg'),
    ('cpu_utilization_p95', 'efficiency.cpu_utilization_p95'),
    ('allocated_memory_gib', 'efficiency.allocated_memory_gib'),
    ('idle_allocations', 'efficiency.idle_allocations'),
    ('over_provisioned_allocations', 'efficiency.over_provisioned_allocations'),
    ('reclaimable_vcpus', 'efficiency.reclaimable_vcpus'),
    ('reclaimable_memory_gib', 'efficiency.reclaimable_memory_gib'),
    ('efficiency_score', 'efficiency.score'),
    ('security_test_passed', 'security.security_test_passed'),
    ('backup_attested', 'security.backup_attested'),
    ('open_vulns_critical', 'security.open_vulnerabilities.critical'),
    ('open_vulns_high', 'security.open_vulnerabilities.high'),
    ('incidents', 'security.incidents'), ('security_score', 'security.score'),
    ('overall_score', 'overall_score'),
    # issue 9: the year time-weighted, and "no data" with its coverage
    ('efficiency_coverage', 'efficiency.coverage'), ('efficiency_no_data', 'efficiency.no_data'),
    ('cpu_utilization_avg', 'efficiency.cpu_utilization_avg'),
    ('allocated_vcpu_hours', 'efficiency.allocated_vcpu_hours'),
    ('used_vcpu_hours', 'efficiency.used_vcpu_hours'),
    ('allocated_memory_gib_hours', 'efficiency.allocated_memory_gib_hours'),
    ('used_memory_gib_hours', 'efficiency.used_memory_gib_hours'),
    ('reclaimable_vcpu_hours', 'efficiency.reclaimable_vcpu_hours'),
    ('reclaimable_memory_gib_hours', 'efficiency.reclaimable_memory_gib_hours'),
    # issue 12: waste in money
    ('reclaimable_monthly_saving_yuan', 'efficiency.reclaimable_monthly_saving'),
]
OPS_CSV = ['department_code', 'department', 'instance', 'system', 'vcpus', 'memory_mib',
           'instance_hours', 'cpu_cores_avg', 'cpu_utilization_avg', 'cpu_cores_p95',
           'memory_used_mib_avg', 'availability', 'coverage']
OPS_CSV_PATHS = ['name', 'system', 'vcpus', 'memory_mib', 'instance_hours', 'cpu_cores_avg',
                 'cpu_utilization_avg', 'cpu_cores_p95_daily_max', 'memory_used_mib_avg',
                 'availability', 'coverage']


def iso(t):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t))


def day_iso(t):
    return time.strftime('%Y-%m-%d', time.gmtime(t))


def path_get(o, path):
    for k in path.split('.'):
        if not isinstance(o, dict):
            return None
        o = o.get(k)
    return o


def csv_text(v):
    """A JSON value as the broker writes it in a CSV cell."""
    if v is None:
        return ''
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, float):
        return f'{v:.2f}'
    return str(v)


def out(p):
    return p.stdout.decode('utf-8', 'replace')


def err(p):
    return p.stderr.decode('utf-8', 'replace')


def table_rows(text, first_title):
    """The rows (lists of cells split on 2+ blanks) of the table whose header starts with
    @first_title, until a blank line or a line in parentheses."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(first_title):
            rows = []
            for row in lines[i + 1:]:
                if not row.strip() or row.strip().startswith('('):
                    break
                rows.append(re.split(r'\s{2,}', row.strip()))
            return rows
    return None


def without(doc, *keys):
    """@doc less @keys, and less when it was made (generated_at, and the cut: now)."""
    return {k: v for k, v in doc.items() if k not in keys + ('period_cut',)}


def steady(doc):
    """The operations report without what grows while the test runs: the instance-hours up to
    now (and the availability, observed and metering shares computed from them), and when it
    was made."""
    if isinstance(doc, dict):
        return {k: steady(v) for k, v in doc.items()
                if k not in ('instance_hours', 'availability', 'generated_at', 'period_cut',
                             'observed_share', 'running_hours', 'unreachable_hours',
                             'coverage')}
    if isinstance(doc, list):
        return [steady(v) for v in doc]
    return doc


class Cli:
    """Runs the built cloudbrokerctl and checks its exit status."""

    def __init__(self, ck, broker, cwd):
        self.ck, self.b, self.cwd = ck, broker, cwd

    def run(self, *args, token=None, want=0, what=None):
        env = dict(os.environ)
        env['CLOUDBROKER_URL'] = self.b.url
        env.pop('CLOUDBROKER_TOKEN_FILE', None)
        env.pop('CLOUDBROKER_TOKEN', None)
        if token:
            env['CLOUDBROKER_TOKEN'] = token
        p = subprocess.run([cbtest.CTL] + list(args), env=env, capture_output=True,
                           cwd=self.cwd, timeout=120)
        label = what or ' '.join(args)
        if not self.ck.eq(p.returncode, want, f'cloudbrokerctl {label}: exit status'):
            print(f'  stdout: {out(p)[:2000]}\n  stderr: {err(p)[:2000]}', flush=True)
        return p

    def json(self, *args, token=None, what=None):
        p = self.run('--json', *args, token=token, what=what)
        try:
            return json.loads(out(p))
        except ValueError:
            self.ck.ok(False, f'cloudbrokerctl --json {" ".join(args)}: not JSON: {out(p)[:300]}')
            return None


def main():
    ck = cbtest.Checks('test-cli-assessment')
    work = tempfile.mkdtemp(prefix='cbcli-')
    pol = ag.policy_dir(os.path.join(work, 'policies'), assessment={
        'idle': {'window_seconds': WINDOW},
        'over_provisioned': {'window_seconds': WINDOW},
        'under_provisioned': {'window_seconds': WINDOW},
        'evidence': {'min_coverage': 0.80, 'min_age_seconds': MIN_AGE},
    })
    b = cbtest.Broker(policy_dir=pol)
    t0 = time.monotonic()
    try:
        b.start()
        run(ck, b, work)
    finally:
        b.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f'runtime: {time.monotonic() - t0:.1f} s', flush=True)
    ck.done()


def run(ck, b, work):
    cli = Cli(ck, b, work)
    fleet = ag.Fleet(b, work)
    adm, reviewer, vendor, auditor = b.admin_token, fleet.reviewer, fleet.vendor, fleet.auditor
    depts = {code: fleet.department(code, name)
             # ty first: unranked (no systems), it leads the report's order (by id) and ends
             # the summary's (by rank), whatever the time-weighted scores of mz and jt are
             for code, name in (('ty', '体育局'), ('mz', '民政局'), ('jt', '交通局'))}
    mz, jt = depts['mz']['token'], depts['jt']['token']

    plan = [('mz', 'oa', [(2, 2048)]), ('mz', 'calc', [(1, 4096)]), ('jt', 'gis', [(4, 8192)]),
            ('mz', 'archive', None)]
    systems, rids = {}, {}
    for code, name, specs in plan:
        systems[name] = fleet.system(code, name)
        if specs:
            rids[name] = fleet.submit_new(code, systems[name], specs)
    allocs = fleet.through_workflow(list(rids.values()))
    inst = {}
    for name, rid in rids.items():
        a = allocs[rid]
        i = a['instances'][0]
        inst[name] = {'id': i['id'], 'uuid': i['uuid'], 'vcpus': i['vcpus'],
                      'memory_mib': i['memory_mib'], 'name': i['name'], 'allocation': a['id']}
    ck.eq(sorted(inst), ['calc', 'gis', 'oa'], 'three allocations through the workflow')
    created_at = time.time()

    check_help(ck, cli)
    agent = check_agent_token(ck, cli, b, fleet, vendor, reviewer)

    # ---- three days of hourly windows, posted with the agent token the CLI issued ----
    end = int(time.time()) // HOUR * HOUR
    start = end - HISTORY_DAYS * DAY
    pattern = {
        'oa': ag.Idle(cores=0.005, burst_cores=0.005),
        'calc': ag.Constant(0.945, 1000, cores_max=1.0),
        'gis': ag.Diurnal(range(9, 18), 1.10, 0.30, 2200, 1800),
    }
    records = []
    for name in sorted(inst):
        records.extend(ag.windows(inst[name], pattern[name], start, end))
    res = ag.post_windows(b, agent, records)
    ck.eq(res['stored'], len(records), 'every window stored with the new agent token')

    check_rollup(ck, cli, adm, mz, start, end)
    check_usage(ck, cli, b, reviewer, jt, inst, start, end)
    check_security(ck, cli, b, vendor, mz, systems, work)

    while time.time() < created_at + MIN_AGE + 1:
        time.sleep(0.2)
    findings = check_assessment_and_findings(ck, cli, b, reviewer, vendor, auditor, mz, jt,
                                             inst)
    check_reports(ck, cli, b, reviewer, auditor, mz, depts, inst, work)
    check_host_add(ck, cli, b, vendor)
    print(f'findings: {findings}', flush=True)


def check_help(ck, cli):
    cmds = [('host', 'agent-token'), ('usage', 'instance'), ('usage', 'allocation'),
            ('metering', 'rollup'), ('assessment', 'run'), ('finding', 'list'),
            ('finding', 'show'), ('finding', 'acknowledge'), ('finding', 'resolve'),
            ('finding', 'dismiss'), ('finding', 'change-request'), ('vulnerability', 'add'),
            ('vulnerability', 'list'), ('vulnerability', 'update'), ('incident', 'add'),
            ('incident', 'list'), ('incident', 'resolve'), ('backup', 'add'),
            ('backup', 'list'), ('report', 'assessment'), ('report', 'operations')]
    top = out(cli.run('--help'))
    for group, verb in cmds:
        ck.ok(re.search(rf'^  {group} {verb}\s+\S', top, re.M),
              f'--help lists "{group} {verb}" with a description')
        p = cli.run(group, verb, '--help')
        text = out(p)
        ck.ok(text.startswith(f'Usage: cloudbrokerctl [GLOBAL OPTIONS] {group} {verb}'),
              f'{group} {verb} --help: usage line')
        ck.ok('Example:\n  cloudbrokerctl ' + group in text, f'{group} {verb} --help: example')
    text = out(cli.run('report', 'assessment', '--help'))
    for opt in ('--year YYYY', '--department ID', '--format FORMAT', '--lang LANG',
                '-o, --output FILE'):
        ck.ok(opt in text, f'report assessment --help names {opt}')
    text = out(cli.run('finding', 'dismiss', '--help'))
    ck.ok('--comment TEXT' in text and '(required)' in text,
          'finding dismiss --help: --comment is required')


def check_agent_token(ck, cli, b, fleet, vendor, reviewer):
    """host agent-token: -o FILE (0600), text, --json; 404, 403, bad id. Returns: the token
    that is valid at the end."""
    host = fleet.hosts['production']
    old = fleet.agent_token
    ck.eq(b.get('/v1/whoami', token=old).status, 200, 'the agent token of host add works')

    tok_file = os.path.join(cli.cwd, 'prod.agent.token')
    p = cli.run('host', 'agent-token', str(host), '-o', 'prod.agent.token', token=vendor)
    text = out(p)
    ck.ok(f'New agent token for host {host}' in text, 'agent-token: names the host')
    ck.ok('written to prod.agent.token (mode 0600)' in text, 'agent-token -o: says where')
    ck.ok('install -D -m 0600 prod.agent.token /etc/cloudbroker/agent.token' in text
          and 'systemctl restart cloudbroker-agent' in text, 'agent-token -o: how to install it')
    ck.ok('cba_' not in text, 'agent-token -o: the token itself is not printed')
    st = os.stat(tok_file)
    ck.eq(stat.S_IMODE(st.st_mode), 0o600, 'agent-token -o: the file is mode 0600')
    with open(tok_file) as f:
        from_file = f.read()
    ck.ok(re.fullmatch(r'cba_[A-Za-z0-9_-]{20,}\n', from_file) is not None,
          f'agent-token -o: the file holds one agent token line ({from_file[:8]!r}…)')
    from_file = from_file.strip()
    ck.eq(b.get('/v1/whoami', token=old).status, 401, 'the previous agent token is refused')
    r = b.get('/v1/whoami', token=from_file)
    ck.eq((r.status, r.json().get('role'), r.json().get('host_id')), (200, 'agent', host),
          'the token of the file is the host\'s agent token')

    # Text: the token once, with how to store it.
    p = cli.run('host', 'agent-token', str(host), token=vendor)
    m = re.search(r'^    (cba_\S+)$', out(p), re.M)
    ck.ok(m is not None, 'agent-token: prints the token, indented, once')
    ck.eq(len(re.findall(r'cba_', out(p))), 1, 'agent-token: the token appears once')
    ck.ok('/etc/cloudbroker/agent.token' in out(p) and 'shown only this once' in out(p),
          'agent-token: says it is shown once and where it goes')
    printed = m.group(1) if m else ''
    ck.eq(b.get('/v1/whoami', token=from_file).status, 401, 'the file\'s token is now refused')
    ck.eq(b.get('/v1/whoami', token=printed).status, 200, 'the printed token works')

    # --json: the broker's document; with -o the token goes to the file instead.
    doc = cli.json('host', 'agent-token', str(host), token=vendor)
    ck.eq(sorted(doc or {}), ['agent_token', 'id'], '--json agent-token: the broker\'s document')
    ck.eq((doc or {}).get('id'), host, '--json agent-token: host id')
    doc = cli.json('host', 'agent-token', str(host), '-o', tok_file, token=vendor)
    ck.eq(doc, {'id': host, 'agent_token_file': tok_file},
          '--json agent-token -o: the file instead of the token')
    with open(tok_file) as f:
        final = f.read().strip()
    ck.eq(b.get('/v1/whoami', token=final).status, 200, 'the last token (in the file) works')

    p = cli.run('host', 'agent-token', '9999', token=vendor, want=1)
    ck.ok('no host with id 9999' in err(p) and 'HTTP 404' in err(p),
          f'agent-token of an unknown host: the broker\'s 404 ({err(p).strip()})')
    p = cli.run('host', 'agent-token', str(host), token=reviewer, want=1)
    ck.ok('HTTP 403' in err(p), f'agent-token as a reviewer: 403 ({err(p).strip()})')
    ck.eq(b.get('/v1/whoami', token=final).status, 200, 'a refused call changed no token')
    p = cli.run('host', 'agent-token', 'kvm', token=vendor, want=2)
    ck.ok("'kvm' is not a host id" in err(p), 'agent-token with a bad id: usage error')
    return final


def check_rollup(ck, cli, adm, mz, start, end):
    day = start - start % DAY
    while day < end:
        d = day_iso(day)
        p = cli.run('metering', 'rollup', '--day', d, token=adm)
        full = day >= start and day + DAY <= end
        m = re.fullmatch(rf'Rolled up {d} \(UTC\): (\d+) instances? with samples that day\.\n',
                         out(p))
        ck.ok(m is not None, f'metering rollup --day {d}: one line ({out(p).strip()})')
        if m and full:
            ck.eq(int(m.group(1)), 3, f'metering rollup --day {d}: three instances')
        day += DAY
    doc = cli.json('metering', 'rollup', '--day', day_iso(start + DAY), token=adm)
    ck.eq(doc, {'day': day_iso(start + DAY), 'instances': 3}, '--json metering rollup')
    doc = cli.json('metering', 'rollup', '--day', 'yesterday', token=adm)
    ck.eq((doc or {}).get('day'), day_iso(time.time() - DAY), 'metering rollup --day yesterday')
    doc = cli.json('metering', 'rollup', token=adm)
    ck.eq((doc or {}).get('day'), day_iso(time.time()), 'metering rollup: today by default')
    for bad in ('2026-13-01', '2026-02-30', '27.11.2026', 'tomorrow'):
        p = cli.run('metering', 'rollup', '--day', bad, token=adm, want=2)
        ck.ok(f"--day must be a UTC day YYYY-MM-DD, 'today' or 'yesterday', not '{bad}'"
              in err(p), f'metering rollup --day {bad}: usage error')
    p = cli.run('metering', 'rollup', '--day', 'today', token=mz, want=1)
    ck.ok('HTTP 403' in err(p) and 'forbidden' in err(p),
          f'metering rollup as a department: 403 ({err(p).strip()})')


def check_usage(ck, cli, b, reviewer, jt, inst, start, end):
    oa = inst['oa']
    q = f'from={start}&to={end}&step=3600'
    api = b.get(f'/v1/instances/{oa["id"]}/usage?{q}', token=reviewer).json()
    doc = cli.json('usage', 'instance', str(oa['id']), '--from', iso(start), '--to', iso(end),
                   '--step', '1h', token=reviewer)
    ck.eq(doc, api, '--json usage instance: the API document (ISO times, 1h)')
    ck.eq(len((doc or {}).get('points', [])), HISTORY_DAYS * 24, 'usage instance: 72 points')
    p = cli.run('usage', 'instance', str(oa['id']), '--from', str(start), '--to', str(end),
                '--step', '3600', token=reviewer)
    text = out(p)
    ck.ok(text.startswith(f'Instance {oa["id"]}, from {api["from"]} to {api["to"]}, a point '
                          'every 3600 s from the 5-minute samples:'),
          f'usage instance: the header line ({text.splitlines()[0] if text else ""})')
    rows = table_rows(text, 'START') or []
    ck.eq(len(rows), HISTORY_DAYS * 24, 'usage instance: a row per point')
    if rows:
        pt = api['points'][0]
        ck.eq(rows[0][0], pt['start'], 'usage instance: first row START')
        ck.eq(rows[0][1], f'{pt["coverage"] * 100:.1f}%', 'usage instance: COVERAGE')
        ck.eq(rows[0][2], str(pt['vcpus']), 'usage instance: VCPUS')
        ck.eq(rows[0][3], f'{pt["cpu_cores_avg"]:.3f}', 'usage instance: CPU_AVG')
        ck.eq(rows[0][5], f'{pt["cpu_utilization_avg"] * 100:.1f}%', 'usage instance: CPU_UTIL')
    ck.ok('CPU_P95' not in text, 'usage instance: no p95 column for 5-minute samples')

    api = b.get(f'/v1/instances/{oa["id"]}/usage?from={start - start % DAY}&to={end}'
                '&step=86400', token=reviewer).json()
    p = cli.run('usage', 'instance', str(oa['id']), '--from', day_iso(start), '--to', str(end),
                '--step', '1d', token=reviewer)
    ck.ok('from the daily rollups' in out(p) and 'CPU_P95' in out(p),
          'usage instance --step 1d: daily rollups with the p95')
    ck.eq(len(table_rows(out(p), 'START') or []), len(api['points']),
          'usage instance --step 1d: a row per day')
    # Relative times: the last 6 hours by hour.
    doc = cli.json('usage', 'instance', str(oa['id']), '--from', '-6h', '--step', '1h',
                   token=reviewer)
    ck.ok(doc is not None and 5 <= len(doc['points']) <= 6,
          f'usage instance --from -6h: the last hours ({len((doc or {}).get("points", []))})')

    alloc = inst['calc']['allocation']
    api = b.get(f'/v1/allocations/{alloc}/usage?from={start}&to={end}', token=reviewer).json()
    doc = cli.json('usage', 'allocation', str(alloc), '--from', str(start), '--to', str(end),
                   token=reviewer)
    ck.eq(doc, api, '--json usage allocation: the API document')
    p = cli.run('usage', 'allocation', str(alloc), '--from', str(start), '--to', str(end),
                token=reviewer)
    rows = table_rows(out(p), 'INSTANCE') or []
    ck.eq([r[1] for r in rows], [inst['calc']['name']], 'usage allocation: one row, the instance')
    if rows and api['instances']:
        one = api['instances'][0]
        ck.eq(rows[0][2], str(one['windows']), 'usage allocation: WINDOWS')
        ck.eq(rows[0][7], f'{one["cpu_cores_p95"]:.3f}', 'usage allocation: CPU_P95')

    # Bad input: the CLI's own checks (2), and the broker's refusals (1).
    p = cli.run('usage', 'instance', str(oa['id']), '--step', '5s', token=reviewer, want=2)
    ck.ok('--step must be a duration from 10 to 31622400 seconds' in err(p),
          'usage instance --step 5s: usage error')
    p = cli.run('usage', 'instance', str(oa['id']), '--from', 'yesterday-ish', token=reviewer,
                want=2)
    ck.ok('--from must be an ISO 8601 date or time' in err(p), 'usage --from garbage: usage error')
    p = cli.run('usage', 'instance', str(oa['id']), '--from', str(end), '--to', str(start),
                token=reviewer, want=2)
    ck.ok('--from must be before --to' in err(p), 'usage --from after --to: usage error')
    p = cli.run('usage', 'instance', str(oa['id']), '--from', str(start), '--to', str(end),
                '--step', '10', token=reviewer, want=1)
    ck.ok('at most 20000 points' in err(p) and 'field step' in err(p) and 'HTTP 400' in err(p),
          f'usage with too many points: the broker\'s field error ({err(p).strip()})')
    p = cli.run('usage', 'instance', str(oa['id']), token=jt, want=1)
    ck.ok(f'no instance with id {oa["id"]}' in err(p) and 'HTTP 404' in err(p),
          f'usage of another department\'s instance: 404 ({err(p).strip()})')
    p = cli.run('usage', 'allocation', '999999', token=reviewer, want=1)
    ck.ok('no allocation with id 999999' in err(p), 'usage of an unknown allocation: 404')


def check_security(ck, cli, b, vendor, mz, systems, work):
    calc, gis, oa = systems['calc'], systems['gis'], systems['oa']
    # Vulnerabilities (vendor): a high one on calc, fixed later; a critical one on gis, open.
    p = cli.run('vulnerability', 'add', '--system', str(calc), '--severity', 'high',
                '--title', 'outdated TLS library', '--found-at', '-10d', token=vendor)
    m = re.fullmatch(rf'Vulnerability (\d+) recorded for system {calc}\.\n', out(p))
    ck.ok(m is not None, f'vulnerability add: one line ({out(p).strip()})')
    vid = int(m.group(1)) if m else 0
    doc = cli.json('vulnerability', 'add', '--system', str(gis), '--severity', 'critical',
                   '--title', 'RCE in the upload form', '--found-at', '2026-01-05',
                   token=vendor)
    ck.eq((doc or {}).get('system_id'), gis, '--json vulnerability add: system_id')
    ck.eq((doc or {}).get('found_at'), '2026-01-05T00:00:00.000Z',
          '--json vulnerability add: the day sent as an ISO time')
    api = b.get(f'/v1/systems/{calc}/vulnerabilities', token=vendor).json()
    ck.eq(cli.json('vulnerability', 'list', '--system', str(calc), token=mz), api,
          '--json vulnerability list (department): the API document')
    rows = table_rows(out(cli.run('vulnerability', 'list', '--system', str(calc), token=vendor)),
                      'ID') or []
    ck.eq([(r[0], r[1], r[2], r[-1]) for r in rows],
          [(str(vid), 'high', 'open', 'outdated TLS library')], 'vulnerability list: the row')
    p = cli.run('vulnerability', 'update', str(vid), '--status', 'fixed', token=vendor)
    ck.ok(re.fullmatch(rf'Vulnerability {vid} of system {calc} is now fixed \(fixed at '
                       r'\d{4}-\d\d-\d\dT[0-9:.]+Z\)\.\n', out(p)) is not None,
          f'vulnerability update --status fixed: fixed now ({out(p).strip()})')
    ck.eq(b.get(f'/v1/systems/{calc}/vulnerabilities', token=vendor).json()['items'][0]['status'],
          'fixed', 'vulnerability update: recorded')
    p = cli.run('vulnerability', 'add', '--system', str(calc), '--severity', 'severe',
                '--title', 'x', '--found-at', 'now', token=vendor, want=2)
    ck.ok('--severity must be one of critical, high, medium, low' in err(p),
          'vulnerability add --severity severe: usage error')
    p = cli.run('vulnerability', 'add', '--system', str(calc), '--severity', 'low',
                '--title', 'x', '--found-at', iso(time.time() + 3 * DAY), token=vendor, want=1)
    ck.ok('lies in the future' in err(p) and 'field /found_at' in err(p) and 'HTTP 422' in err(p),
          f'vulnerability found in the future: the broker\'s field error ({err(p).strip()})')
    p = cli.run('vulnerability', 'update', '999999', '--status', 'fixed', token=vendor, want=1)
    ck.ok('no vulnerability with id 999999' in err(p) and 'HTTP 404' in err(p),
          'vulnerability update of an unknown id: 404')
    p = cli.run('vulnerability', 'list', token=vendor, want=2)
    ck.ok("missing required option '--system'" in err(p), 'vulnerability list: --system needed')

    # An incident on gis.
    p = cli.run('incident', 'add', '--system', str(gis), '--severity', 'medium',
                '--title', 'port scan', '--description', 'from one address, blocked',
                '--occurred-at', '-2d', '--resolved-at', '-1d', token=vendor)
    ck.ok(re.fullmatch(rf'Incident \d+ recorded for system {gis}\.\n', out(p)) is not None,
          f'incident add ({out(p).strip()})')
    rows = table_rows(out(cli.run('incident', 'list', '--system', str(gis), token=vendor)),
                      'ID') or []
    ck.eq([(r[1], r[4], r[5]) for r in rows], [('medium', 'port scan', 'from one address, '
                                                'blocked')], 'incident list: the row')
    api = b.get(f'/v1/systems/{gis}/incidents', token=vendor).json()
    ck.eq(cli.json('incident', 'list', '--system', str(gis), token=vendor), api,
          '--json incident list: the API document')
    # Reopened, then resolved again at a given time (PATCH /v1/incidents/{id}).
    iid = api['items'][0]['id']
    p = cli.run('incident', 'resolve', str(iid), '--reopen', token=vendor)
    ck.eq(out(p), f'Incident {iid} of system {gis} is open again.\n', 'incident resolve --reopen')
    ck.eq(b.get(f'/v1/systems/{gis}/incidents', token=vendor).json()['items'][0]['resolved_at'],
          None, 'incident resolve --reopen: resolved_at is null')
    p = cli.run('incident', 'resolve', str(iid), '--at', '2026-11-01T10:00:00Z', token=vendor,
                want=1)
    ck.ok('resolved_at' in err(p), f'incident resolve --at before it occurred: refused '
                                   f'({err(p).strip()})')
    p = cli.run('incident', 'resolve', str(iid), '--at', '-12h', token=vendor)
    got = b.get(f'/v1/systems/{gis}/incidents', token=vendor).json()['items'][0]['resolved_at']
    ck.ok(got is not None and out(p) == f'Incident {iid} of system {gis} was resolved at {got}.\n',
          f'incident resolve --at -12h ({out(p).strip()})')

    # Backups (department mz): oa from a file, calc with size and hash; gis none.
    data = b'backup of oa\n' * 1000
    with open(os.path.join(work, 'oa.tar'), 'wb') as f:
        f.write(data)
    p = cli.run('backup', 'add', '--system', str(oa), '--location', 'dr-centre://store/oa',
                '--taken-at', '-1d', '--file', os.path.join(work, 'oa.tar'), token=mz)
    ck.ok(re.fullmatch(rf'Backup \d+ recorded for system {oa}\.\n', out(p)) is not None,
          f'backup add --file ({out(p).strip()})')
    items = b.get(f'/v1/systems/{oa}/backups', token=mz).json()['items']
    ck.eq([(i['size_bytes'], i['sha256'], i['location']) for i in items],
          [(len(data), hashlib.sha256(data).hexdigest(), 'dr-centre://store/oa')],
          'backup add --file: the size and SHA-256 of the file')
    sha = 'AB' * 32
    doc = cli.json('backup', 'add', '--system', str(calc), '--location', 'dr-centre://store/calc',
                   '--taken-at', '-2d', '--size', '1000000000', '--sha256', sha, token=mz)
    ck.eq(((doc or {}).get('size_bytes'), (doc or {}).get('sha256')), (10 ** 9, sha.lower()),
          '--json backup add --size --sha256')
    rows = table_rows(out(cli.run('backup', 'list', '--system', str(calc), token=mz)), 'ID') or []
    ck.eq([(r[2], r[3], r[5]) for r in rows],
          [('1000000000', sha.lower(), 'dr-centre://store/calc')], 'backup list: the row')
    p = cli.run('backup', 'add', '--system', str(calc), '--location', 'x', '--taken-at', 'now',
                '--size', '1', token=mz, want=2)
    ck.ok('give --size and --sha256' in err(p), 'backup add without --sha256: usage error')
    p = cli.run('backup', 'add', '--system', str(calc), '--location', 'x', '--taken-at', 'now',
                '--size', '1', '--sha256', 'abc', token=mz, want=2)
    ck.ok('is not a SHA-256 digest' in err(p), 'backup add --sha256 abc: usage error')
    p = cli.run('backup', 'add', '--system', str(gis), '--location', 'x', '--taken-at', 'now',
                '--size', '1', '--sha256', sha, token=mz, want=1)
    ck.ok(f'no system with id {gis}' in err(p) and 'HTTP 404' in err(p),
          'backup add for another department\'s system: 404')


def check_assessment_and_findings(ck, cli, b, reviewer, vendor, auditor, mz, jt, inst):
    p = cli.run('assessment', 'run', token=mz, want=1)
    ck.ok('HTTP 403' in err(p), f'assessment run as a department: 403 ({err(p).strip()})')
    p = cli.run('assessment', 'run', token=reviewer)
    text = out(p)
    ck.ok(re.match(r'Assessment run done in \d+\.\d\d s over 3 live production instances:\n',
                   text) is not None, f'assessment run: headline ({text[:80]!r})')
    counts = {label: int(v) for label, v in
              re.findall(r'^  ([a-z :]+):\s+(\d+)$', text, re.M)}
    ck.eq(counts, {'findings created': 4, 'findings updated': 0, 'findings resolved': 0,
                   'not judged: too little coverage': 0, 'not judged: too young': 0},
          'assessment run: the summary')
    ck.ok('finding list --state live' in text, 'assessment run: the next step')

    api = b.get('/v1/findings?limit=1000', token=auditor).json()
    by = {(f['instance'], f['kind']): f for f in api['items']}
    want = {(inst['oa']['name'], 'idle'), (inst['calc']['name'], 'under_provisioned'),
            (inst['calc']['name'], 'over_provisioned'), (inst['gis']['name'], 'over_provisioned')}
    ck.eq(set(by), want, 'the findings expected')
    ids = {k: f['id'] for k, f in by.items()}
    f_idle = ids.get((inst['oa']['name'], 'idle'), 0)
    f_under = ids.get((inst['calc']['name'], 'under_provisioned'), 0)
    f_over = ids.get((inst['calc']['name'], 'over_provisioned'), 0)
    f_gis = ids.get((inst['gis']['name'], 'over_provisioned'), 0)

    ck.eq(cli.json('finding', 'list', token=auditor), api, '--json finding list: the API document')
    rows = table_rows(out(cli.run('finding', 'list', token=auditor)), 'ID') or []
    ck.eq(sorted((r[1], r[2], r[6]) for r in rows),
          sorted((k, 'open', n) for n, k in want), 'finding list: a row per finding')
    ck.eq(sorted((r[0], r[3], r[4]) for r in rows),
          sorted((str(f['id']), f'{f["department_id"]} {f["department_name"]}',
                  f'{f["system_id"]} {f["system_name"]}') for f in api['items']),
          'finding list: the department and the system named beside their ids')
    idle_row = [r for r in rows if r[0] == str(f_idle)]
    ck.eq(idle_row[0][7:10] if idle_row else None, ['2/2048', 'terminate', '2/2048'],
          'finding list: CURRENT, RECOMMENDED, FREES of the idle instance')
    rows = table_rows(out(cli.run('finding', 'list', '--kind', 'idle', token=auditor)), 'ID')
    ck.eq([r[0] for r in rows or []], [str(f_idle)], 'finding list --kind idle')
    doc = cli.json('finding', 'list', '--allocation', str(inst['calc']['allocation']),
                   token=auditor)
    ck.eq(sorted(f['id'] for f in (doc or {}).get('items', [])), sorted([f_under, f_over]),
          'finding list --allocation')
    doc = cli.json('finding', 'list', '--limit', '2', token=auditor)
    ck.eq((len(doc['items']), doc['next']) if doc else None, (2, api['items'][1]['id']),
          'finding list --limit 2: one page and its cursor')
    doc = cli.json('finding', 'list', token=mz)
    ck.eq(sorted(f['id'] for f in (doc or {}).get('items', [])), sorted([f_idle, f_under, f_over]),
          'finding list as department mz: its own findings only')
    p = cli.run('finding', 'list', '--state', 'closed', token=auditor, want=2)
    ck.ok('--state must be one of open, acknowledged, resolved, dismissed, live' in err(p),
          'finding list --state closed: usage error')

    # show
    api_f = b.get(f'/v1/findings/{f_idle}', token=auditor).json()
    ck.eq(cli.json('finding', 'show', str(f_idle), token=auditor), api_f,
          '--json finding show: the API document')
    text = out(cli.run('finding', 'show', str(f_idle), token=auditor))
    ck.ok(text.startswith(f'Finding {f_idle} (idle): open\n'), 'finding show: headline')
    for want_text in (f'{inst["oa"]["name"]} (instance {inst["oa"]["id"]}, allocation '
                      f'{inst["oa"]["allocation"]})', 'Evidence:', 'Coverage:', 'Idle:',
                      f'{api_f["evidence"]["idle_windows"]} of '
                      f'{api_f["evidence"]["checked_windows"]} windows under the idle thresholds',
                      'Recommendation:', 'terminate (mode moderate, headroom 20%)',
                      '2/2048 now; terminating frees 2/2048',
                      f'finding change-request {f_idle}'):
        ck.ok(want_text in text, f'finding show: "{want_text}"')
    ck.ok(api_f['rule'] in text, 'finding show: the rule')
    p = cli.run('finding', 'show', '99999', token=auditor, want=1)
    ck.eq(err(p), 'error: no finding with id 99999 (HTTP 404, code not_found)\n',
          'finding show of an unknown id: the broker\'s message and status')
    p = cli.run('finding', 'show', str(f_idle), token=jt, want=1)
    ck.ok(f'no finding with id {f_idle}' in err(p), 'finding show of another department: 404')
    p = cli.run('finding', 'show', 'abc', token=auditor, want=2)
    ck.ok("'abc' is not a finding id" in err(p), 'finding show abc: usage error')

    # acknowledge, resolve, dismiss
    p = cli.run('finding', 'acknowledge', str(f_over), '--comment', 'resizing next week',
                token=mz)
    ck.eq(out(p), f'Finding {f_over} (over_provisioned of {inst["calc"]["name"]}) acknowledged.\n',
          'finding acknowledge: one line')
    f = b.get(f'/v1/findings/{f_over}', token=auditor).json()
    ck.eq((f['state'], f['reason']), ('acknowledged', 'resizing next week'),
          'finding acknowledge: state and reason recorded')
    p = cli.run('finding', 'acknowledge', str(f_over), token=mz, want=1)
    ck.ok(f"finding {f_over} is 'acknowledged' and cannot become 'acknowledged'" in err(p)
          and 'HTTP 409' in err(p) and 'code invalid_transition' in err(p),
          f'finding acknowledge twice: the broker\'s 409 ({err(p).strip()})')
    doc = cli.json('finding', 'resolve', str(f_under), token=reviewer)
    ck.eq(((doc or {}).get('id'), (doc or {}).get('state')), (f_under, 'resolved'),
          '--json finding resolve: the finding after the move')
    p = cli.run('finding', 'dismiss', str(f_gis), token=reviewer, want=2)
    ck.ok("missing required option '--comment'" in err(p), 'finding dismiss needs --comment')
    p = cli.run('finding', 'dismiss', str(f_gis), '--comment', 'x', token=vendor, want=1)
    ck.ok('HTTP 403' in err(p), 'finding dismiss as the vendor: 403')
    p = cli.run('finding', 'dismiss', str(f_gis), '--comment', 'GIS peak season in March',
                token=reviewer)
    ck.ok(out(p).startswith(f'Finding {f_gis} (over_provisioned of {inst["gis"]["name"]}) '
                            'dismissed'), f'finding dismiss ({out(p).strip()})')
    f = b.get(f'/v1/findings/{f_gis}', token=auditor).json()
    ck.eq((f['state'], f['reason']), ('dismissed', 'GIS peak season in March'),
          'finding dismiss: the comment is the reason')

    # change-request (department)
    p = cli.run('finding', 'change-request', str(f_idle), token=mz)
    m = re.match(rf'Draft request (\d+) made from finding {f_idle}\.\n', out(p))
    ck.ok(m is not None and f'request submit {m.group(1) if m else ""}' in out(p),
          f'finding change-request: the draft and how to submit it ({out(p).strip()})')
    if m:
        req = b.get(f'/v1/requests/{m.group(1)}', token=mz).json()
        ck.eq((req['state'], req['kind']), ('draft', 'termination'),
              'finding change-request: a draft termination request')
    p = cli.run('finding', 'change-request', str(f_idle), token=mz, want=1)
    ck.ok('already has request' in err(p) and 'HTTP 409' in err(p),
          'finding change-request twice: 409')
    doc = cli.json('finding', 'change-request', str(f_over), token=mz)
    ck.eq(sorted(doc or {}), ['finding_id', 'request_id'], '--json finding change-request')
    if doc:
        req = b.get(f'/v1/requests/{doc["request_id"]}', token=mz).json()
        ck.eq((req['kind'], [(i['vcpus'], i['memory_mib']) for i in
                             req['resources']['instances']]),
              ('change', [(f['recommendation']['recommended']['vcpus'],
                           f['recommendation']['recommended']['memory_mib'])
                          for f in [b.get(f'/v1/findings/{f_over}', token=auditor).json()]]),
              'finding change-request of an over-provisioned instance: a change to the size')

    # A second run: the resolved condition is found again (a new finding), the dismissed one
    # never; the live ones are updated.
    doc = cli.json('assessment', 'run', token=vendor)
    ck.eq({k: (doc or {}).get(k) for k in ('instances', 'created', 'updated', 'resolved')},
          {'instances': 3, 'created': 1, 'updated': 2, 'resolved': 0},
          '--json assessment run (again): the broker\'s summary')
    return ids


def check_reports(ck, cli, b, reviewer, auditor, mz, depts, inst, work):
    year = time.gmtime().tm_year
    month = time.strftime('%Y-%m', time.gmtime())
    api = b.get(f'/v1/reports/assessment?year={year}', token=auditor).json()
    names = [d['name'] for d in depts.values()]
    ck.eq([d['name'] for d in api['departments']], names, 'the report lists the departments')
    # The summary lists them by rank: the ranked first, best first, then the unranked by code.
    names = [d['name'] for d in sorted(api['departments'], key=lambda d: (
        d['rank'] is None, d['rank'] or 0, d['code']))]
    ck.ok([d['name'] for d in api['departments']] != names,
          'the report\'s order is not the ranking (so the summary\'s order shows the sort)')

    # The summary, in Chinese (the default) and in English.
    text = out(cli.run('report', 'assessment', '--year', str(year), token=reviewer))
    ck.ok(text.startswith(f'{year}年度政务云平台使用情况考核（第九条），{year}-01-01 至 '
                          f'{year + 1}-01-01'), f'report summary (zh): headline ({text[:60]!r})')
    for label in ('排名', '综合得分', '资源使用效率', '安全状况', '全市', '第五条'):
        ck.ok(label in text, f'report summary (zh): "{label}"')
    rows = table_rows(text, '排名') or []
    ck.eq([r[2] for r in rows], names + ['全市'], 'report summary (zh): a row per department')
    for d in api['departments']:
        row = [r for r in rows if len(r) > 2 and r[2] == d['name']]
        score = '-' if d['overall_score'] is None else f'{d["overall_score"]:.1f}'
        rank = '-' if d['rank'] is None else str(d['rank'])
        ck.eq((row[0][0], row[0][-1]) if row else None, (rank, score),
              f'report summary: rank and overall score of {d["name"]}')
    nb = table_rows(text, '系统编号') or []
    ck.eq(sorted((r[1], r[3]) for r in nb),
          sorted((x['system'], '、'.join({'not_on_cloud': '未上云', 'no_backup': '未备份'}[w]
                                         for w in x['reasons'])) for x in api['no_budget']),
          'report summary: Art. 5 systems and their reasons')
    ck.ok(any(x['system'] == 'gis' for x in api['no_budget']) and
          any(x['system'] == 'archive' for x in api['no_budget']),
          'Art. 5: gis (no backup) and archive (off the cloud) have no budget')
    text = out(cli.run('report', 'assessment', '--year', str(year), '--lang', 'en',
                       token=reviewer))
    for label in (f'Annual assessment {year} (Art. 9)', 'Scores (0-100', 'Resource use:',
                  'Security (systems on the cloud):', 'no backup', 'not on the cloud'):
        ck.ok(label in text, f'report summary (en): "{label}"')
    rows = table_rows(text, 'CODE') or []  # the resource-use table
    ck.eq([r[1] for r in rows], names + ['City'], 'report summary (en): resource-use rows')

    # --json and --format json: the broker's document.
    doc = cli.json('report', 'assessment', '--year', str(year), token=auditor)
    ck.eq(without(doc or {}, 'generated_at'), without(api, 'generated_at'),
          '--json report assessment: the API document')
    p = cli.run('report', 'assessment', '--year', str(year), '--format', 'json', token=auditor)
    ck.eq(without(json.loads(out(p) or '{}'), 'generated_at'), without(api, 'generated_at'),
          'report assessment --format json: the API document')
    doc = cli.json('report', 'assessment', '--year', str(year), token=mz)
    ck.eq([d['name'] for d in (doc or {}).get('departments', [])], ['民政局'],
          'report assessment as a department: its own only')
    doc = cli.json('report', 'assessment', '--year', str(year), '--department',
                   str(depts['jt']['id']), token=auditor)
    ck.eq([d['name'] for d in (doc or {}).get('departments', [])], ['交通局'],
          'report assessment --department')

    # HTML into a file, exactly as the operators' guide says.
    p = cli.run('report', 'assessment', '--year', str(year), '--format', 'html', '-o',
                'report.html', token=reviewer)
    html_path = os.path.join(work, 'report.html')
    html = open(html_path, encoding='utf-8').read() if os.path.exists(html_path) else ''
    ck.ok(html.lstrip().lower().startswith('<!doctype html'), 'report.html: an HTML page')
    for name in names:
        ck.ok(name in html, f'report.html names {name}')
    ck.ok('政务云平台使用情况年度考核' in html, 'report.html: in Chinese by default')
    ck.eq(out(p), f'Saved the annual assessment of {year} (html) to report.html: '
                  f'{len(html.encode())} bytes, sha256 '
                  f'{hashlib.sha256(html.encode()).hexdigest()}\n',
          'report -o: what was saved')
    ck.eq(stat.S_IMODE(os.stat(html_path).st_mode), 0o666 & ~current_umask(),
          'report.html: the mode of a plain create')
    cli.run('report', 'assessment', '--year', str(year), '--format', 'html', '--lang', 'en',
            '-o', 'report-en.html', token=reviewer)
    html_en = open(os.path.join(work, 'report-en.html'), encoding='utf-8').read()
    ck.ok('Annual assessment of government-cloud use' in html_en, 'report --lang en: HTML in '
          'English')

    # CSV: header and rows match the JSON report.
    p = cli.run('report', 'assessment', '--year', str(year), '--format', 'csv', token=auditor)
    raw = p.stdout
    ck.ok(raw.startswith(b'\xef\xbb\xbf'), 'CSV on stdout: UTF-8 with a BOM')
    rows = list(csv.reader(io.StringIO(raw.decode('utf-8-sig'))))
    ck.eq(rows[0] if rows else None, [c for c, _ in ASSESS_CSV], 'CSV header')
    for i, d in enumerate(api['departments']):
        got = rows[1 + i] if len(rows) > 1 + i else None
        ck.eq(got, [csv_text(path_get(d, path)) for _, path in ASSESS_CSV],
              f'CSV row of {d["name"]} = the JSON report')
    city = rows[1 + len(api['departments'])] if len(rows) > 1 + len(api['departments']) else []
    ck.eq(city, [('CITY' if path == 'name' else csv_text(path_get(api['city'], path)))
                 for _, path in ASSESS_CSV], 'CSV city row = the JSON report')
    nb_at = [i for i, r in enumerate(rows) if r[:1] == ['no_budget_system_id']]
    ck.eq(sorted(tuple(r) for r in rows[nb_at[0] + 1:]) if nb_at else None,
          sorted((str(x['system_id']), x['system'], x['department'], ';'.join(x['reasons']))
                 for x in api['no_budget']), 'CSV: Art. 5 list = the JSON report')
    p = cli.run('report', 'assessment', '--year', str(year), '-o', 'assessment.csv',
                token=auditor)
    with open(os.path.join(work, 'assessment.csv'), 'rb') as f:
        ck.eq(f.read(), raw, 'report -o assessment.csv: CSV from the name, as on stdout')
    p = cli.run('report', 'assessment', '--year', str(year), '-o', 'assessment.json',
                token=auditor)
    with open(os.path.join(work, 'assessment.json'), encoding='utf-8') as f:
        ck.eq(without(json.load(f), 'generated_at'), without(api, 'generated_at'),
              'report -o assessment.json: the JSON document')

    # Bad input: the broker's field error, no file left behind, an old file kept.
    for bad in ('1999', 'abc'):
        p = cli.run('report', 'assessment', '--year', bad, '--format', 'html', '-o', 'bad.html',
                    token=reviewer, want=1)
        ck.eq(err(p), "error: query parameter 'year' must be an integer from 2000 to 2200 "
                      "(field year, HTTP 400, code invalid)\n",
              f'report --year {bad}: the broker\'s field error')
        ck.ok(not os.path.exists(os.path.join(work, 'bad.html')), f'--year {bad}: no bad.html')
    ck.eq([n for n in os.listdir(work) if '.part-' in n], [], 'no temporary file left behind')
    with open(os.path.join(work, 'keep.html'), 'w') as f:
        f.write('the old report\n')
    cli.run('report', 'assessment', '--year', '1999', '-o', 'keep.html', token=reviewer, want=1)
    with open(os.path.join(work, 'keep.html')) as f:
        ck.eq(f.read(), 'the old report\n', 'a failed report leaves an existing file as it was')
    p = cli.run('report', 'assessment', '--year', str(year), '--format', 'pdf', token=reviewer,
                want=2)
    ck.ok('--format must be one of json, csv, html' in err(p), 'report --format pdf: usage error')
    p = cli.run('report', 'assessment', '--year', str(year), '--lang', 'fr', token=reviewer,
                want=2)
    ck.ok('--lang must be one of zh, en' in err(p), 'report --lang fr: usage error')
    p = cli.run('report', 'assessment', token=reviewer, want=2)
    ck.ok("missing required option '--year'" in err(p), 'report assessment needs --year')
    p = cli.run('report', 'assessment', '--year', str(year), '-o', os.path.join(
        work, 'no-such-dir', 'r.html'), token=reviewer, want=1)
    ck.ok('cannot create a file next to' in err(p), 'report -o into a missing folder: refused')

    # The operations report.
    api = b.get(f'/v1/reports/operations?month={month}', token=auditor).json()
    text = out(cli.run('report', 'operations', '--month', month, '--lang', 'en', token=auditor))
    ck.ok(text.startswith(f'Operations report {month} (Art. 8), '), 'operations summary: headline')
    rows = table_rows(text, 'CODE') or []
    ck.eq([(r[0], r[2]) for r in rows],
          [(d['code'], str(d['totals']['instances'])) for d in api['departments']],
          'operations summary: departments and their instances')
    for name in ('oa', 'calc', 'gis'):
        ck.ok(inst[name]['name'] in text, f'operations summary lists {inst[name]["name"]}')
    ck.ok('Right-sizing advice' in text and 'reclaim' in text,
          'operations summary: the findings with their right-sizing')
    text_zh = out(cli.run('report', 'operations', '--month', month, token=auditor))
    ck.ok(text_zh.startswith(f'政务云资源运行报告 {month}（第八条）') and '实例利用情况' in text_zh,
          'operations summary (zh)')
    doc = cli.json('report', 'operations', '--month', month, token=auditor)
    ck.eq(steady(doc), steady(api), '--json report operations: the API document')
    k = [d['code'] for d in api['departments']].index('mz')  # a department with instances
    ck.ok(doc is not None and doc['departments'][k]['totals']['instance_hours'] >=
          api['departments'][k]['totals']['instance_hours'] > 0,
          '--json report operations: instance-hours up to now')
    raw = cli.run('report', 'operations', '--month', month, '--format', 'csv', token=auditor).stdout
    api = b.get(f'/v1/reports/operations?month={month}', token=auditor).json()
    # The instances are its first section; the others follow, each after an empty line.
    rows = list(csv.reader(io.StringIO(raw.decode('utf-8-sig').split('\r\n\r\n')[0])))
    ck.eq(rows[0] if rows else None, OPS_CSV, 'operations CSV header')
    hours = OPS_CSV.index('instance_hours')
    want_rows = [[d['code'], d['name']] + [csv_text(path_get(x, p_)) for p_ in OPS_CSV_PATHS]
                 for d in api['departments'] for x in d['instances']]
    avail = OPS_CSV.index('availability')  # moves on with the clock too (observed time)
    ck.eq([r[:hours] + r[hours + 1:avail] + r[avail + 1:] for r in rows[1:]],
          [r[:hours] + r[hours + 1:avail] + r[avail + 1:] for r in want_rows],
          'operations CSV rows = the JSON report')
    ck.ok(len(rows) - 1 == len(want_rows) and all(
        abs(float(a[hours]) - float(w[hours])) <= 0.011 for a, w in zip(rows[1:], want_rows)),
        'operations CSV instance-hours = the JSON report (the clock moves on)')
    p = cli.run('report', 'operations', '--month', month, '--format', 'html', '-o', 'ops.html',
                token=auditor)
    ops_html = open(os.path.join(work, 'ops.html'), encoding='utf-8').read()
    ck.ok('政务云资源运行报告' in ops_html and inst['gis']['name'] in ops_html,
          'report operations -o ops.html')
    for bad in ('2026-13', '2026/11', 'november'):
        p = cli.run('report', 'operations', '--month', bad, token=auditor, want=1)
        ck.eq(err(p), 'error: month=YYYY-MM is required (field month, HTTP 400, code invalid)\n',
              f'report operations --month {bad}: the broker\'s field error')


def current_umask():
    m = os.umask(0)
    os.umask(m)
    return m


def check_host_add(ck, cli, b, vendor):
    """host add shows the new host's agent token once (or writes it with --agent-token-out)."""
    uris = [ag.host_fixture(os.path.join(cli.cwd, f'spare-{k}.xml'), 8, 16384) for k in (1, 2)]
    p = cli.run('host', 'add', '--name', 'spare-1', '--uri', uris[0], '--pool', 'trial',
                token=vendor)
    m = re.search(r'^    (cba_\S+)$', out(p), re.M)
    ck.ok(out(p).startswith('Host ') and m is not None,
          'host add: the host, then its agent token')
    if m:
        r = b.get('/v1/whoami', token=m.group(1))
        ck.eq((r.status, r.json().get('role')), (200, 'agent'), 'host add: the token printed works')
    path = os.path.join(cli.cwd, 'spare-2.token')
    p = cli.run('host', 'add', '--name', 'spare-2', '--uri', uris[1], '--pool', 'trial',
                '--agent-token-out', path, token=vendor)
    ck.ok('cba_' not in out(p) and f'written to {path}' in out(p),
          'host add --agent-token-out: the token goes to the file only')
    ck.eq(stat.S_IMODE(os.stat(path).st_mode), 0o600, 'host add --agent-token-out: mode 0600')
    with open(path) as f:
        tok = f.read().strip()
    ck.eq(b.get('/v1/whoami', token=tok).status, 200, 'host add --agent-token-out: it works')


if __name__ == '__main__':
    main()
