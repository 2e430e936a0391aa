#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The web console end to end, in Debian's Chromium (headless, driven by playwright-core from
console/node_modules), against a real cloudbrokerd and real QEMU guests on a libvirtd of the
test's own (cbvirt.PrivateLab). Every step of the workflow is done through the console's pages,
each person signed in with the password they chose on the console's set-password page, and
each step checks what the page shows and the state through the API:

  apply     passwords set from the admin's one-time links; the vendor registers the trial and
            production hosts (and reads the agent token the page shows once); a department
            registers its system, fills the new-request form (two instances: a spinning 4-vCPU
            guest and a halting 1-vCPU one), uploads its materials (one with throttled upload
            to see the progress bar), sees the pre-review check and submits; the reviewer
            assigns a consultant, who records an opinion; the reviewer approves; the vendor
            uploads the test report and records the three trial results on the QEMU trial
            environment; the reviewer allocates.
  security  (while the agent meters the guests) one department never sees another's objects;
            names such as <script>alert(1)</script> and "><img src=x onerror=alert(1)> in a
            department, a system, a justification and a file name render as text (no dialog,
            no injected element); a cookie write without the CSRF token is refused; a
            signed-out session and a disabled account's session are refused; on a second,
            small broker: the lockout after the failure limit, and the idle timeout.
  finding   the department sees its running instances and their usage charts with coverage;
            the assessment (run through the API, as its periodic run would) finds the 4-vCPU
            spinner over-provisioned; one click turns the finding into a change request, which
            is submitted, approved, and applied: the instance is resized on QEMU.
  tour      every page of every role at 1280x800 and 390x844, in Chinese and in English:
            screenshots saved and checked (not blank, nothing wider than the window), axe-core
            with no serious or critical violation, every control reachable by Tab.

Screenshots go to <build>/console-shots/. Exit 77 (skipped) without chromium, the built console
or console/node_modules."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))
import cbtest  # noqa: E402
import cbvirt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = shutil.which('chromium')
NODE = shutil.which('node')
CONSOLE_BUILT = os.path.join(cbtest.BUILD, 'console', 'index.html')
MODULES = os.path.join(cbtest.SOURCE, 'console', 'node_modules')
W = 60            # every assessment rule's window (seconds)
PASSWORD = 'Console-Test-2026'
XSS_SCRIPT = '<script>alert(1)</script>'
XSS_IMG = '"><img src=x onerror=alert(1)>'


def skip(why):
    print(f'SKIP: {why}')
    sys.exit(77)


def node_phase(cfg_path, phase, timeout=900):
    """Runs one phase of console-e2e.mjs. Returns: (exit status, its last line)."""
    t0 = time.time()
    p = subprocess.run([NODE, os.path.join(HERE, 'console-e2e.mjs'), cfg_path, phase],
                       env=dict(os.environ, CB_SOURCE_DIR=cbtest.SOURCE), timeout=timeout,
                       capture_output=True, text=True)
    sys.stdout.write(p.stdout)
    sys.stdout.write(p.stderr)
    lines = [x for x in p.stdout.splitlines() if x.strip()]
    print(f'== phase {phase}: exit {p.returncode} in {time.time() - t0:.0f} s', flush=True)
    return p.returncode, (lines[-1] if lines else '')


def main():
    ck = cbtest.Checks('test-console-e2e')
    if not CHROMIUM:
        skip('chromium is not installed (apt-get install chromium)')
    if not NODE:
        skip('node is not installed')
    if not os.path.exists(CONSOLE_BUILT):
        skip(f'the console is not built ({CONSOLE_BUILT}; npm ci in console/, then ninja)')
    for m in ('playwright-core', 'axe-core'):
        if not os.path.isdir(os.path.join(MODULES, m)):
            skip(f'console/node_modules/{m} is missing (npm ci in console/)')
    t_begin = time.time()
    lab = cbvirt.PrivateLab(extra_images=None)
    b = small = None
    work = tempfile.mkdtemp(prefix='cb-console-e2e-')
    try:
        a = lab._read('assessment.json')
        for k in ('idle', 'over_provisioned', 'under_provisioned'):
            a[k]['window_seconds'] = W
        a['evidence']['min_age_seconds'] = W
        a['recommendation']['min_memory_mib'] = 64
        a['recommendation']['memory_step_mib'] = 64
        lab._write('assessment.json', a)
        b = cbtest.Broker(policy_dir=lab.policy_dir).start()
        # A second broker for what must not disturb the first: the lockout and the idle timeout.
        small_cfg = os.path.join(work, 'small.json')
        with open(small_cfg, 'w') as f:
            json.dump({'sign_in': {'account_failures': 3, 'address_failures': 50,
                                   'window_seconds': 300, 'lockout_seconds': 120},
                       'session_idle_seconds': 5}, f)
        small = cbtest.Broker(extra_args=['--config', small_cfg]).start()
        run(ck, lab, b, small, work)
    except Exception:
        traceback.print_exc()
        ck.ok(False, 'the test ran to its end without an exception')
    finally:
        for x in (b, small):
            if x:
                x.cleanup()
        lab.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f'wall time {time.time() - t_begin:.0f} s')
    ck.done()


def accounts(b, d1, d2):
    """The people, made by the admin through the API, each with a one-time sign-in link.
    Returns: {key: {name, role, id, token, link}}."""
    want = {'d1': ('mz-clerk', 'department', d1), 'd2': ('xss-clerk', 'department', d2),
            'reviewer': ('bureau-reviewer', 'reviewer', None),
            'consultant': ('acme-consulting', 'consultant', None),
            'vendor': ('cloud-vendor', 'vendor', None), 'auditor': ('assessor', 'auditor', None)}
    out = {}
    for key, (name, role, dept) in want.items():
        aid, token = b.make_account(name, role, dept)
        out[key] = {'name': name, 'role': role, 'id': aid, 'token': token}
    out['admin'] = {'name': 'admin', 'role': 'admin', 'id': 1, 'token': b.admin_token}
    for key, acc in out.items():
        r = b.post(f"/v1/accounts/{acc['id']}/sign-in-link", {}, token=b.admin_token)
        assert r.status == 201, r
        acc['link'] = r.json()['path']
    return out


def run(ck, lab, b, small, work):
    adm = b.admin_token
    d1 = b.make_department('mz', '民政局 Civil Affairs')
    d2 = b.make_department('xss', f'{XSS_SCRIPT} {XSS_IMG} 测试局')
    accs = accounts(b, d1, d2)
    # The small broker: one department account with a password, for the lockout and the
    # idle timeout.
    sd = small.make_department('lim', 'Limits')
    for name in ('lim-clerk', 'lim-idle'):
        _, stok = small.make_account(name, 'department', sd)
        cbtest.set_password(small, stok, PASSWORD)
    shots = os.path.join(cbtest.BUILD, 'console-shots')
    shutil.rmtree(shots, ignore_errors=True)
    cfg = {'base': b.url, 'small_base': small.url, 'small_account': 'lim-clerk',
           'small_idle_account': 'lim-idle',
           'password': PASSWORD, 'accounts': accs, 'd1': d1, 'd2': d2,
           'lab': {'trial_uri': lab.libvirt.uri, 'prod_uri': lab.libvirt.uri_alt,
                   'pool': lab.pool, 'prefix': lab.prefix},
           'xss_script': XSS_SCRIPT, 'xss_img': XSS_IMG, 'shots': shots,
           'state': os.path.join(work, 'state.json'), 'W': W}
    cfg_path = os.path.join(work, 'config.json')
    with open(cfg_path, 'w') as f:
        json.dump(cfg, f)

    rc, last = node_phase(cfg_path, 'apply')
    ck.eq(rc, 0, f'phase apply ({last})')
    if not os.path.exists(cfg['state']):
        return
    with open(cfg['state']) as f:
        st = json.load(f)
    if not st.get('allocation_id'):
        return

    # The metering agent on the production host, with the token the console showed once.
    agent = cbvirt.start_agent(b, lab, st['agent_token'], interval=1, window=10)
    t_agent = time.time()
    try:
        rc, last = node_phase(cfg_path, 'security')
        ck.eq(rc, 0, f'phase security ({last})')

        # The assessment, as its periodic run does it, until the spinner is judged.
        rev = accs['reviewer']['token']
        spin = st['instances']['spin']

        def judged():
            r = b.post('/v1/assessment/run', {}, token=rev)
            if r.status != 200:
                return None
            f = b.get(f"/v1/findings?allocation={st['allocation_id']}&state=live&limit=100",
                      token=rev).json()['items']
            return [x for x in f if x['instance_id'] == spin and x['kind'] == 'over_provisioned']
        wait = max(0, W + 30 - (time.time() - t_agent))
        time.sleep(wait)
        found = cbvirt.wait_for(judged, 240, 'an over-provisioned finding on the spinner', 5)
        ck.ok(found, f'the assessment found the 4-vCPU spinner over-provisioned: {found}')
        st['finding_id'] = found[0]['id']
        with open(cfg['state'], 'w') as f:
            json.dump(st, f)

        rc, last = node_phase(cfg_path, 'finding')
        ck.eq(rc, 0, f'phase finding ({last})')
    finally:
        agent.stop()

    rc, last = node_phase(cfg_path, 'tour', timeout=1200)
    ck.eq(rc, 0, f'phase tour ({last})')

    # The audit trail holds the console's sign-ins and the workflow's moves.
    r = b.get('/v1/audit?action=session.create&limit=1000', token=accs['auditor']['token'])
    ck.ok(r.status == 200 and len(r.json()['items']) >= 6,
          f'the audit trail records the sign-ins ({r.status})')
    r = b.get('/v1/audit/verify', token=accs['auditor']['token'])
    ck.ok(r.status == 200 and r.json()['ok'], f'the audit chain verifies after the run: {r}')


if __name__ == '__main__':
    main()
