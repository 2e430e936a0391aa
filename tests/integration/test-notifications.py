#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Notifications and their e-mail against the real broker and a real SMTP server on loopback
(aiosmtpd): who is told of each step of a request (and who is not: one department never sees
another's), read marks and unread counts, mail to the accounts that gave an address and did
not opt out, and an outbox that survives a broker restart while the relay is down and is
delivered once it is back."""
import email
import email.policy
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from cbtest import (db_connect, Broker, Checks, Session, free_port, json_error,  # noqa: E402
                    make_complete_request, make_system, set_password)

checks = Checks('notifications')
tmp = tempfile.mkdtemp(prefix='cbnotify-')
maildir = os.path.join(tmp, 'maildir')
GOOD = 'Correct-Horse-9'


def smtp_python():
    """An interpreter with aiosmtpd (Debian's python3-aiosmtpd lives in /usr/bin/python3)."""
    for py in (sys.executable, '/usr/bin/python3'):
        if os.path.exists(py) and subprocess.run([py, '-c', 'import aiosmtpd'],
                                                 capture_output=True).returncode == 0:
            return py
    return None


class Relay:
    """aiosmtpd's Mailbox handler: every message into a maildir."""

    def __init__(self, py, port):
        self.py, self.port, self.proc = py, port, None

    def start(self):
        self.proc = subprocess.Popen(
            [self.py, '-m', 'aiosmtpd', '-n', '-l', f'127.0.0.1:{self.port}',
             '-c', 'aiosmtpd.handlers.Mailbox', maildir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError('aiosmtpd did not start')

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def mails():
    out = []
    for path in sorted(glob.glob(os.path.join(maildir, 'new', '*'))):
        with open(path, 'rb') as f:
            out.append(email.message_from_binary_file(f, policy=email.policy.default))
    return out


def wait_mails(n, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = mails()
        if len(got) >= n:
            return got
        time.sleep(0.2)
    return mails()


def kinds(b, token):
    r = b.get('/v1/notifications', token=token)
    assert r.status == 200, r
    return [n['kind'] for n in r.json()['items']]


py = smtp_python()
if not py:
    print('aiosmtpd is not installed (python3-aiosmtpd): skipped')
    sys.exit(77)
relay = Relay(py, free_port())
relay.start()
cfg = os.path.join(tmp, 'config.json')
with open(cfg, 'w') as f:
    json.dump({'smtp': {'url': f'smtp://127.0.0.1:{relay.port}', 'from': 'cloud@bureau.example.gov',
                        'retry_seconds': 1, 'timeout_seconds': 5},
               'public_url': 'https://cloud.bureau.example.gov/console/'}, f)
state = tempfile.mkdtemp(prefix='cbnotify-state-')
b = Broker(state_dir=state, extra_args=['--config', cfg])
b.start()
try:
    admin = b.admin_token
    dept_a = b.make_department('civil', 'Civil Affairs')
    dept_b = b.make_department('water', 'Water Authority')
    clerk_a_id, clerk_a = b.make_account('clerk-a', 'department', dept_a)
    clerk_a2_id, clerk_a2 = b.make_account('clerk-a2', 'department', dept_a)
    clerk_b_id, clerk_b = b.make_account('clerk-b', 'department', dept_b)
    r1_id, r1 = b.make_account('reviewer-1', 'reviewer')
    r2_id, r2 = b.make_account('reviewer-2', 'reviewer')
    c1_id, c1 = b.make_account('consultant-1', 'consultant')
    c2_id, c2 = b.make_account('consultant-2', 'consultant')
    v1_id, v1 = b.make_account('vendor-1', 'vendor')
    b.request('PATCH', f'/v1/accounts/{r1_id}', {'email': 'r1@bureau.example.gov'}, token=admin)
    b.request('PATCH', '/v1/whoami', {'email': 'r2@bureau.example.gov',
                                      'email_notifications': False}, token=r2)
    b.request('PATCH', '/v1/whoami', {'email': 'clerk@civil.example.gov'}, token=clerk_a)

    sys_a = make_system(b, clerk_a, '婚姻登记 <script>')
    sys_b = make_system(b, clerk_b, 'Flood Warning')
    req_a = make_complete_request(b, clerk_a, sys_a)
    req_b = make_complete_request(b, clerk_b, sys_b)
    for tok, rid in ((clerk_a, req_a), (clerk_b, req_b)):
        r = b.post(f'/v1/requests/{rid}/submit', token=tok)
        assert r.status == 200, r

    # --- who is told of a submitted request ---
    checks.eq(kinds(b, r1), ['request_submitted'] * 2, 'reviewer 1 told of both submissions')
    checks.eq(kinds(b, r2), ['request_submitted'] * 2, 'reviewer 2 too')
    for name, tok in (('clerk-a', clerk_a), ('clerk-b', clerk_b), ('consultant-1', c1),
                      ('vendor-1', v1)):
        checks.eq(kinds(b, tok), [], f'{name} is not told of a submission')
    item = b.get('/v1/notifications', token=r1).json()['items'][-1]
    checks.ok(item['object_type'] == 'request' and item['object_id'] == req_a and
              item['object_name'] == '婚姻登记 <script>' and item['actor_name'] == 'clerk-a' and
              item['read'] is False and item['detail']['department_name'] == 'Civil Affairs' and
              item['detail']['request_kind'] == 'new', f'the notification names things {item}')
    checks.eq(b.get('/v1/whoami', token=r1).json()['unread_notifications'], 2, 'unread count')

    # --- assignment, opinion, decision: each told to its own ---
    r = b.post(f'/v1/requests/{req_a}/assign', {'consultant': c1_id}, token=r1)
    assert r.status == 200, r
    checks.eq(kinds(b, c1), ['consultant_assigned'], 'the assigned consultant is told')
    checks.eq(kinds(b, c2), [], 'another consultant is not')

    # --- the queue: what waits for each, scoped like every read ---
    def queue(tok):
        r = b.get('/v1/queue', token=tok)
        assert r.status == 200, r
        return [(i['id'], i['action']) for i in r.json()['items']]
    q = b.get('/v1/queue', token=r1).json()['items']
    checks.eq([(i['id'], i['action']) for i in q], [(req_a, 'review'), (req_b, 'review')],
              'reviewer: both submitted requests to review, oldest first')
    checks.ok(q[0]['department_name'] == 'Civil Affairs' and
              q[0]['system_name'] == '婚姻登记 <script>' and q[0]['vcpus'] == 1 and
              q[0]['precheck'] == {'ok': True, 'failed': [], 'advisory': []},
              f'queue items name department and system, resources, pre-review {q[0]}')
    checks.eq(queue(c1), [(req_a, 'opinion')], 'consultant 1: the request assigned to it')
    checks.eq(queue(c2), [], 'consultant 2: nothing')
    checks.eq(queue(v1), [], 'vendor: no trial waits')
    checks.eq(queue(clerk_b), [], 'department B: nothing of A\'s')
    checks.eq(b.get('/v1/queue', token=admin).status, 403, 'the admin acts on no request')
    d = b.get('/v1/dashboard', token=r1).json()
    checks.ok(d['requests']['waiting'] == 2 and d['requests']['to_review'] == 2 and
              d['requests']['under_1d'] == 2 and d['systems']['total'] == 2 and
              len(d['trends']) == 12 and d['trends'][-1]['requests_submitted'] == 2,
              f'dashboard: the waiting requests, systems and this month\'s trend {d["requests"]}')
    checks.eq(b.get('/v1/dashboard', token=clerk_a).status, 403, 'no dashboard for a department')
    r = b.post(f'/v1/requests/{req_a}/opinions',
               {'recommendation': 'approve', 'comment': 'sizes fit'}, token=c1)
    assert r.status == 201, r
    checks.eq(kinds(b, clerk_a), ['opinion_recorded'], 'department A told of the opinion')
    checks.eq(kinds(b, clerk_a2), ['opinion_recorded'], 'every account of department A')
    checks.eq(kinds(b, clerk_b), [], 'department B never sees A\'s request')
    checks.eq(kinds(b, c1), ['consultant_assigned'], 'the consultant is not told of its own act')
    checks.eq(kinds(b, r2)[0], 'opinion_recorded', 'reviewers told of the opinion')
    r = b.post(f'/v1/requests/{req_a}/decision', {'decision': 'return',
                                                  'comment': 'add the backup plan'}, token=r1)
    assert r.status == 200, r
    got = b.get('/v1/notifications', token=clerk_a).json()['items'][0]
    checks.ok(got['kind'] == 'request_returned' and got['detail'].get('comment') ==
              'add the backup plan' and got['detail'].get('state') == 'returned',
              f'department told of the return with the reason {got}')
    checks.eq(kinds(b, r1)[0], 'opinion_recorded', 'the deciding reviewer is not told of its act')
    r = b.post(f'/v1/requests/{req_b}/decision', {'decision': 'reject', 'comment': 'no'},
               token=r2)
    assert r.status == 200, r
    checks.eq(kinds(b, clerk_b), ['request_rejected'], 'department B told of its rejection')
    checks.eq(queue(clerk_a)[0], (req_a, 'resubmit'), 'department A: the returned request waits')
    checks.eq(queue(c1), [], 'consultant 1: its opinion is given')
    checks.ok('request_rejected' not in kinds(b, clerk_a), 'department A not told of B\'s')

    # --- read marks; scoping of ids ---
    items = b.get('/v1/notifications?unread=true', token=clerk_a).json()['items']
    checks.eq(len(items), 2, 'two unread for clerk A')
    r = b.post(f'/v1/notifications/{items[0]["id"]}/read', token=clerk_b)
    checks.eq(r.status, 404, 'another account\'s notification is not found')
    r = b.post(f'/v1/notifications/{items[0]["id"]}/read', token=clerk_a)
    checks.eq(r.status, 204, 'marked read')
    unread = b.get('/v1/notifications?unread=true', token=clerk_a).json()['items']
    checks.eq([n['id'] for n in unread], [items[1]['id']], 'one left unread')
    checks.eq(b.get('/v1/whoami', token=clerk_a).json()['unread_notifications'], 1, 'count 1')
    set_password(b, clerk_a, GOOD)
    # The origin of public_url is the one writes must come from.
    s = Session(b, 'clerk-a', GOOD, origin='http://127.0.0.1:%d' % b.port)
    r = s.post('/v1/notifications/read-all')
    checks.ok(r.status == 403 and json_error(r)['code'] == 'origin_mismatch',
              'behind public_url, the broker\'s own address is another origin')
    s.origin = 'https://cloud.bureau.example.gov'
    checks.eq(s.response.json()['unread_notifications'], 1, 'unread in the session document')
    r = s.post('/v1/notifications/read-all', csrf=False)
    checks.eq(r.status, 403, 'read-all with the cookie needs the CSRF token')
    r = s.post('/v1/notifications/read-all')
    checks.eq(r.status, 204, 'read-all')
    checks.eq(s.get('/v1/session').json()['unread_notifications'], 0, 'none unread')
    page = b.get('/v1/notifications?limit=2', token=r1).json()
    nxt = b.get(f'/v1/notifications?limit=2&after={page["next"]}', token=r1).json()
    all_ids = [n['id'] for n in b.get('/v1/notifications', token=r1).json()['items']]
    checks.eq([n['id'] for n in page['items'] + nxt['items']], all_ids[:4],
              'newest first, paged with ?after=')
    checks.eq(b.get('/v1/notifications?unread=maybe', token=r1).status, 400, 'unread=maybe refused')
    checks.eq(b.get('/v1/notifications', token=v1).json()['items'], [], 'the vendor saw nothing')

    # --- e-mail: reviewer 1 has an address; reviewer 2 opted out ---
    # reviewer 1: two submissions and the opinion; clerk A: the opinion and the return.
    got = wait_mails(5)
    checks.eq(len(got), 5, 'five mails')
    to_r1 = [m for m in got if 'r1@bureau.example.gov' in str(m['To'])]
    to_r2 = [m for m in got if 'r2@' in m['To']]
    checks.eq(len(to_r1), 3, 'reviewer 1 got its three')
    checks.eq(to_r2, [], 'reviewer 2 opted out: no mail')
    subj = [str(m['Subject']) for m in to_r1]
    checks.ok(any('婚姻登记' in x and 'Request is waiting' not in x and
                  'A request is waiting for review' in x for x in subj),
              f'the subject names the kind and the system: {subj}')
    body = to_r1[0].get_content()
    checks.ok('https://cloud.bureau.example.gov/console/#/requests/' in body and
              '新的申请待审核' in body, f'the body links into the console, in Chinese and English')
    checks.ok('cloud@bureau.example.gov' in str(to_r1[0]['From']), 'from the configured sender')
    checks.ok(all('\n' not in str(m['Subject']) for m in got), 'one-line subjects')
    to_clerk = [m for m in got if 'clerk@civil' in str(m['To'])]
    checks.ok(any('退回' in str(m['Subject']) for m in to_clerk), 'the clerk is mailed the return')

    # --- the relay down, a restart, nothing lost ---
    before = len(mails())
    relay.stop()
    r = b.post(f'/v1/requests/{req_a}/resubmit', token=clerk_a)
    checks.eq(r.status, 200, 'a request is submitted while the relay is down (never blocked)')
    con = db_connect(b.db_path)
    deadline = time.time() + 10
    while time.time() < deadline:
        pending = con.execute("SELECT recipient, attempts, last_error FROM mail_outbox"
                              " WHERE sent_at IS NULL").fetchall()
        if pending and pending[0][1] >= 1:
            break
        time.sleep(0.2)
    con.close()
    checks.ok(len(pending) == 1 and pending[0][0] == 'r1@bureau.example.gov' and
              pending[0][1] >= 1 and pending[0][2], f'the mail waits with its failure {pending}')
    b.stop()
    b.start()
    time.sleep(1.5)
    checks.eq(len(mails()), before, 'nothing delivered while the relay is down')
    relay.start()
    got = wait_mails(before + 1, timeout=30)
    checks.eq(len(got), before + 1, 'delivered once the relay is back, after the restart')
    checks.ok('r1@bureau.example.gov' in str(got[-1]['To']), 'to reviewer 1')
    con = db_connect(b.db_path)
    left = con.execute('SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL').fetchone()[0]
    con.close()
    checks.eq(left, 0, 'the outbox is empty')
finally:
    if os.environ.get('KEEP'):
        print(open(b.log_path).read()[-3000:])
    b.cleanup()
    relay.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
checks.done()
