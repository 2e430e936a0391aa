#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""People's sign-in to the console against the real broker: passwords, the session cookie and
its flags, CSRF and Origin checks, the failed sign-in limits (kept across a restart), idle
timeout, revocation on sign-out, password change and disable, one-time sign-in links, and the
audit records of all of it."""
import json
import os
import shutil
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from cbtest import (db_connect, Broker, Checks, Session, ctl, json_error, set_password,  # noqa: E402
                    self_signed_cert)

checks = Checks('console-auth')
tmp = tempfile.mkdtemp(prefix='cbauth-')
GOOD = 'Correct-Horse-9'


def config(**kw):
    path = os.path.join(tmp, f'config-{len(os.listdir(tmp))}.json')
    with open(path, 'w') as f:
        json.dump(kw, f)
    return ['--config', path]


def code(r):
    e = json_error(r)
    return e and e.get('code')


def audit_actions(b):
    con = db_connect(b.db_path)
    try:
        return [(a, o, d) for a, o, d in con.execute(
            'SELECT action, outcome, detail FROM audit ORDER BY seq')]
    finally:
        con.close()


LIMITS = {'sign_in': {'account_failures': 3, 'address_failures': 12, 'window_seconds': 60,
                      'lockout_seconds': 3},
          'session_idle_seconds': 5}

with Broker(extra_args=config(**LIMITS)) as b:
    admin = b.admin_token
    dept = b.make_department('civil', 'Civil Affairs')
    dept_id, dept_token = b.make_account('clerk', 'department', dept)
    rev_id, rev_token = b.make_account('reviewer1', 'reviewer')
    nopw_id, _ = b.make_account('nopassword', 'auditor')

    # --- passwords: strength, first password with the token ---
    for weak, why in (('short1A!', 'too short'), ('clerk', 'too short and the name'),
                      ('alllowercaseon', 'one class, 14 characters'),
                      ('lowercase12', 'two classes')):
        r = b.post('/v1/session/password', {'new_password': weak}, token=dept_token)
        checks.ok(r.status == 422 and code(r) == 'weak_password' and
                  json_error(r)['field'] == '/new_password', f'weak password refused ({why}): {r}')
    r = b.post('/v1/session/password', {'new_password': 'a long passphrase of words'},
               token=dept_token)
    checks.eq(r.status, 204, 'sixteen characters of one class are strong enough')
    r = b.post('/v1/session/password', {'new_password': GOOD}, token=dept_token)
    checks.ok(r.status == 403 and code(r) == 'invalid_credentials',
              'once it has a password, a change needs the current one')
    r = b.post('/v1/session/password', {'current_password': 'a long passphrase of words',
                                        'new_password': GOOD}, token=dept_token)
    checks.eq(r.status, 204, 'changed with the current password')
    r = b.get('/v1/whoami', token=dept_token)
    checks.ok(r.json()['has_password'] is True and r.json()['department_name'] == 'Civil Affairs',
              f'whoami: has_password and department_name {r}')
    set_password(b, rev_token, GOOD)

    # --- sign-in: success, the cookie's flags, the session document ---
    r = b.post('/v1/session', {'name': 'clerk', 'password': GOOD})
    checks.eq(r.status, 200, 'sign-in with the right password')
    cookie = r.headers.get('Set-Cookie', '')
    parts = [p.strip() for p in cookie.split(';')]
    checks.ok(parts[0].startswith('cb_session=cbs_'), f'cookie name and value: {cookie}')
    checks.ok('HttpOnly' in parts and 'SameSite=Strict' in parts and 'Path=/' in parts,
              f'cookie flags HttpOnly, SameSite=Strict, Path=/: {cookie}')
    checks.ok('Secure' not in parts, 'no Secure flag on plain HTTP')
    doc = r.json()
    checks.eq(doc['account']['name'], 'clerk', 'session document names the account')
    checks.eq(doc['account']['department_name'], 'Civil Affairs', 'and its department')
    checks.ok(doc['csrf_token'] and doc['idle_timeout_seconds'] == 5 and doc['expires_at'],
              f'csrf token, idle timeout and expiry given: {doc}')
    checks.eq(doc['account']['must_change_password'], False, 'a strong password need not change')
    checks.ok('unread_notifications' in doc, 'unread count in the session document')
    checks.ok(GOOD not in json.dumps(audit_actions(b)), 'no password text in the audit trail')

    s = Session(b, 'clerk', GOOD)
    r = s.get('/v1/session')
    checks.ok(r.status == 200 and r.json()['csrf_token'] == s.csrf,
              'GET /v1/session reads the csrf token again')
    r = s.get('/v1/whoami')
    checks.ok(r.status == 200 and r.json()['session'] is True, 'cookie authenticates GET')
    r = s.get('/v1/requests')
    checks.eq(r.status, 200, 'cookie works on other /v1 routes')
    r = s.get('/v1/accounts')
    checks.eq(r.status, 403, 'with the same role checks as a token (department may not list '
              'accounts)')
    r = b.get('/v1/session', token=dept_token)
    checks.ok(r.status == 401 and code(r) == 'invalid_session', 'GET /v1/session with a token: 401')

    # --- CSRF and Origin on cookie-authenticated writes ---
    body = {'name': 'portal', 'category': 'website'}
    r = s.post('/v1/systems', body, csrf=False)
    checks.ok(r.status == 403 and code(r) == 'csrf_failed', f'write without X-CSRF-Token: {r}')
    r = s.post('/v1/systems', body, csrf=False, headers={'X-CSRF-Token': 'csrf' + 'x' * 43})
    checks.ok(r.status == 403 and code(r) == 'csrf_failed', 'write with a wrong token refused')
    r = s.post('/v1/systems', body, headers={'Origin': 'http://evil.example'})
    checks.ok(r.status == 403 and code(r) == 'origin_mismatch', f'foreign Origin refused: {r}')
    r = s.post('/v1/systems', body, headers={'Origin': 'null'})
    checks.ok(r.status == 403 and code(r) == 'origin_mismatch', 'Origin null refused')
    r = b.get('/v1/systems', token=dept_token)
    checks.eq(r.json()['items'], [], 'refused writes changed nothing')
    r = s.post('/v1/systems', body)
    checks.eq(r.status, 201, 'write with the CSRF token and our Origin')
    r = b.request('POST', '/v1/systems', {'name': 'x2', 'category': 'website'},
                  headers={'Cookie': s.cookie, 'X-CSRF-Token': s.csrf})
    checks.eq(r.status, 201, 'write with the CSRF token and no Origin header')
    r = b.post('/v1/systems', {'name': 'x3', 'category': 'website'}, token=dept_token,
               headers={'Origin': 'http://evil.example'})
    checks.eq(r.status, 201, 'bearer-token writes are unchanged (no CSRF, no Origin check)')
    r = b.post('/v1/session', {'name': 'clerk', 'password': GOOD},
               headers={'Origin': 'http://evil.example'})
    checks.ok(r.status == 403 and code(r) == 'origin_mismatch', 'sign-in from another site refused')

    # --- no account enumeration ---
    answers = []
    for name, pw in (('clerk', 'Wrong-Password-1'), ('no-such-person', 'Wrong-Password-1'),
                     ('nopassword', 'Wrong-Password-1')):
        t0 = time.monotonic()
        r = b.post('/v1/session', {'name': name, 'password': pw})
        answers.append((r.status, code(r), json_error(r)['message'], time.monotonic() - t0))
    checks.ok(all(a[:3] == answers[0][:3] for a in answers) and answers[0][:2] ==
              (401, 'invalid_credentials'),
              f'wrong password, unknown name, no password: one answer {answers}')
    # A path that skipped the argon2id work would answer in milliseconds, against a tenth of a
    # second and more for a hash; a loaded machine only makes some of them slower.
    times = sorted(a[3] for a in answers)
    checks.ok(times[0] >= 0.25 * times[1],
              f'none answers much faster (the unknown name is hashed too): {times}')
    b.request('PATCH', f'/v1/accounts/{rev_id}', {'disabled': True}, token=admin)
    r = b.post('/v1/session', {'name': 'reviewer1', 'password': GOOD})
    checks.ok(r.status == 401 and code(r) == 'invalid_credentials',
              'a disabled account with the right password gets the same answer')
    b.request('PATCH', f'/v1/accounts/{rev_id}', {'disabled': False}, token=admin)
    r = b.post('/v1/session', {'name': 'reviewer1', 'password': GOOD})
    checks.eq(r.status, 200, 'enabled again, it signs in (the failure cleared its count)')

    # --- lockout after the limit, its expiry ---
    r = b.post('/v1/session', {'name': 'clerk', 'password': GOOD})
    checks.eq(r.status, 200, 'a sign-in clears the earlier failures of the name')
    for i in range(3):
        r = b.post('/v1/session', {'name': 'clerk', 'password': f'Wrong-Password-{i}'})
        checks.eq(r.status, 401, f'failure {i + 1} of 3')
    r = b.post('/v1/session', {'name': 'clerk', 'password': GOOD})
    checks.ok(r.status == 429 and code(r) == 'too_many_attempts', f'locked: even the right '
              f'password gets 429 {r}')
    retry = int(r.headers.get('Retry-After', '0'))
    checks.ok(1 <= retry <= 3, f'Retry-After within the lockout: {retry}')
    r = b.post('/v1/session', {'name': 'reviewer1', 'password': GOOD})
    checks.eq(r.status, 200, 'another account is not locked')
    time.sleep(3.2)
    r = b.post('/v1/session', {'name': 'clerk', 'password': GOOD})
    checks.eq(r.status, 200, 'the lockout expires')
    actions = audit_actions(b)
    fails = [json.loads(d) for a, o, d in actions if a == 'session.fail']
    checks.ok(any(f['reason'] == 'locked' for f in fails) and
              any(f['reason'] == 'invalid_credentials' and f['name'] == 'no-such-person'
                  for f in fails), f'session.fail audited with the reason: {fails[-3:]}')
    checks.ok(any(a == 'session.create' for a, o, d in actions), 'session.create audited')

    # --- the trail is searchable by account, action and time ---
    r = b.get('/v1/audit?account=anonymous&action=session.fail&limit=1000', token=rev_token)
    got = r.json()['items']
    checks.ok(r.status == 200 and got and all(a['account'] == 'anonymous' and
                                             a['action'] == 'session.fail' for a in got),
              f'audit filtered by account and action ({len(got)} records)')
    r = b.get('/v1/audit?account=clerk&from=2000-01-01&to=2000-01-02', token=rev_token)
    checks.ok(r.status == 200 and r.json()['items'] == [], 'a time window with nothing in it')
    r = b.get('/v1/audit?account=clerk&from=2000-01-01', token=rev_token)
    checks.ok(r.status == 200 and r.json()['items'] and
              all(a['account'] == 'clerk' for a in r.json()['items']), 'from a day on')
    r = b.get('/v1/audit?from=yesterday', token=rev_token)
    checks.ok(r.status == 400 and json_error(r)['field'] == 'from', 'a from that is no time: 400')

    # --- idle timeout ---
    idle = Session(b, 'reviewer1', GOOD)
    checks.eq(idle.get('/v1/whoami').status, 200, 'fresh session works')
    time.sleep(6)
    r = idle.get('/v1/whoami')
    checks.ok(r.status == 401 and code(r) == 'invalid_session', f'idle session refused: {r}')
    checks.ok('Max-Age=0' in r.headers.get('Set-Cookie', ''), 'and its cookie cleared')

    # --- sign-out revokes ---
    out = Session(b, 'reviewer1', GOOD)
    r = out.request('DELETE', '/v1/session', csrf=False)
    checks.ok(r.status == 403 and code(r) == 'csrf_failed', 'sign-out needs the CSRF token too')
    r = out.request('DELETE', '/v1/session')
    checks.eq(r.status, 204, 'sign-out')
    checks.ok('Max-Age=0' in r.headers.get('Set-Cookie', ''), 'sign-out clears the cookie')
    r = out.get('/v1/whoami')
    checks.eq(r.status, 401, 'the signed-out cookie is refused')
    checks.ok(any(a == 'session.delete' for a, o, d in audit_actions(b)), 'session.delete audited')

    # --- password change revokes the other sessions, keeps this one under a new cookie ---
    a = Session(b, 'clerk', GOOD)
    other = Session(b, 'clerk', GOOD)
    r = a.post('/v1/session/password', {'current_password': 'Wrong-Password-9',
                                        'new_password': 'Another-Good-7'})
    checks.ok(r.status == 403 and code(r) == 'invalid_credentials' and
              json_error(r)['field'] == '/current_password', f'wrong current password: {r}')
    r = a.post('/v1/session/password', {'current_password': GOOD,
                                        'new_password': 'Another-Good-7'})
    checks.eq(r.status, 204, 'password changed')
    new_cookie = r.headers.get('Set-Cookie', '').split(';')[0]
    checks.ok(new_cookie.startswith('cb_session=') and new_cookie != a.cookie,
              'a new cookie for this browser')
    checks.eq(other.get('/v1/whoami').status, 401, 'the other session is revoked')
    checks.eq(a.get('/v1/whoami').status, 401, 'the old cookie of this browser too')
    a.cookie = new_cookie
    checks.eq(a.get('/v1/whoami').status, 200, 'the new cookie works')
    checks.eq(a.post('/v1/systems', {'name': 'after-change', 'category': 'website'}).status, 201,
              'with the same CSRF token')
    r = b.post('/v1/session', {'name': 'clerk', 'password': GOOD})
    checks.eq(r.status, 401, 'the old password is gone')
    checks.ok(any(a_ == 'account.password' for a_, o, d in audit_actions(b)),
              'account.password audited')

    # --- disabling revokes ---
    d = Session(b, 'clerk', 'Another-Good-7')
    r = b.request('PATCH', f'/v1/accounts/{dept_id}', {'disabled': True}, token=admin)
    checks.eq(r.status, 200, 'admin disables the account')
    checks.eq(d.get('/v1/whoami').status, 401, 'its session is refused at once')
    b.request('PATCH', f'/v1/accounts/{dept_id}', {'disabled': False}, token=admin)
    checks.eq(d.get('/v1/whoami').status, 401, 'and stays revoked when enabled again')

    # --- one-time sign-in links ---
    r = b.post(f'/v1/accounts/{nopw_id}/sign-in-link', token=dept_token)
    checks.eq(r.status, 403, 'only the admin issues sign-in links')
    first = b.post(f'/v1/accounts/{nopw_id}/sign-in-link', token=admin).json()
    r = b.post(f'/v1/accounts/{nopw_id}/sign-in-link', token=admin)
    checks.eq(r.status, 201, 'sign-in link issued')
    link = r.json()
    checks.ok(link['path'] == '#/set-password?token=' + link['token'] and link['expires_at'],
              f'link path and expiry: {link}')
    checks.ok(link['token'] not in json.dumps(audit_actions(b)), 'the token is not audited')
    r = b.post('/v1/password/setup', {'token': first['token'], 'password': 'Linked-Pass-5'})
    checks.ok(r.status == 400 and code(r) == 'invalid_token', 'a replaced link is refused')
    r = b.post('/v1/password/setup', {'token': link['token'], 'password': 'weak'})
    checks.ok(r.status == 422 and json_error(r)['field'] == '/password', 'weak password via link')
    r = b.post('/v1/password/setup', {'token': link['token'], 'password': 'Linked-Pass-5'})
    checks.eq(r.status, 204, 'password set with the link')
    r = b.post('/v1/password/setup', {'token': link['token'], 'password': 'Linked-Pass-6'})
    checks.ok(r.status == 400 and code(r) == 'invalid_token', 'the link used twice is refused')
    r = b.post('/v1/session', {'name': 'nopassword', 'password': 'Linked-Pass-5'})
    checks.eq(r.status, 200, 'the account signs in with the password it set')
    r = b.get(f'/v1/accounts/{nopw_id}', token=admin)
    checks.ok(r.json()['has_password'] is True, 'accounts document: has_password')
    out = ctl(b, 'account', 'sign-in-link', str(rev_id), token=admin).stdout.decode()
    url = [line for line in out.splitlines() if '#/set-password?token=' in line]
    checks.ok(len(url) == 1 and url[0].startswith(b.url + '/#/set-password?token=cbl_'),
              f'cloudbrokerctl account sign-in-link prints the whole link: {out}')
    r = b.post('/v1/password/setup', {'token': url[0].split('token=')[1],
                                      'password': 'From-The-Cli-8'})
    checks.eq(r.status, 204, 'the CLI\'s link sets a password')
    r = b.post('/v1/password/setup', {'token': 'cbl_' + 'A' * 43, 'password': 'Linked-Pass-5'})
    checks.ok(r.status == 400 and code(r) == 'invalid_token', 'an unknown token is refused')

    # --- a password changed any other way makes an outstanding link useless ---
    reset = b.post(f'/v1/accounts/{rev_id}/sign-in-link', token=admin).json()
    r = b.post('/v1/session/password', {'current_password': 'From-The-Cli-8',
                                        'new_password': GOOD}, token=rev_token)
    checks.eq(r.status, 204, 'the reviewer changes the password itself')
    r = b.post('/v1/password/setup', {'token': reset['token'], 'password': 'Behind-Its-Back-4'})
    checks.ok(r.status == 400 and code(r) == 'invalid_token',
              f'the link issued before the change is refused: {r}')
    checks.eq(b.post('/v1/session', {'name': 'reviewer1', 'password': GOOD}).status, 200,
              'and the password the owner chose still signs in')

    # --- a sign-in ends the session the browser came with, whoever's it was ---
    for who, password, why in (('reviewer1', GOOD, 'its own earlier session'),
                               ('nopassword', 'Linked-Pass-5', 'a colleague\'s session')):
        before = Session(b, who, password)
        r = b.post('/v1/session', {'name': 'reviewer1', 'password': GOOD},
                   headers={'Cookie': before.cookie})
        checks.eq(r.status, 200, f'sign-in over {why}')
        checks.eq(before.get('/v1/whoami').status, 401, f'{why} ends at the sign-in')
        after = r.headers.get('Set-Cookie', '').split(';')[0]
        r = b.get('/v1/whoami', headers={'Cookie': after})
        checks.ok(r.status == 200 and r.json()['name'] == 'reviewer1', 'the new session works')
    con = db_connect(b.db_path)
    replaced = con.execute("SELECT count(*) FROM sessions WHERE revoked_reason = 'replaced'")
    checks.eq(replaced.fetchone()[0], 2, 'both recorded as replaced')
    con.close()
    kept = Session(b, 'reviewer1', GOOD)
    r = b.post('/v1/session', {'name': 'reviewer1', 'password': 'Wrong-Password-9'},
               headers={'Cookie': kept.cookie})
    checks.eq(r.status, 401, 'a failed sign-in')
    checks.eq(kept.get('/v1/whoami').status, 200, 'leaves the browser\'s session alone')

    # --- e-mail address and opt-out ---
    r = b.request('PATCH', '/v1/whoami', {'email': 'bad address'}, token=rev_token)
    checks.eq(r.status, 422, 'an address that is not one is refused')
    r = b.request('PATCH', '/v1/whoami', {'email': 'rev@example.gov', 'email_notifications': False},
                  token=rev_token)
    checks.ok(r.status == 200 and r.json()['email'] == 'rev@example.gov' and
              r.json()['email_notifications'] is False, f'own address and opt-out set: {r}')
    r = b.request('PATCH', f'/v1/accounts/{rev_id}', {'email': None}, token=admin)
    checks.ok(r.status == 200 and r.json()['email'] is None, 'admin clears an address')

# --- the limits survive a restart; per-address limit ---
state = tempfile.mkdtemp(prefix='cbauth-state-')
cfg = config(sign_in={'account_failures': 2, 'address_failures': 5, 'window_seconds': 60,
                      'lockout_seconds': 30})
b = Broker(state_dir=state, extra_args=cfg)
b.start()
try:
    _, tok = b.make_account('victim', 'reviewer')
    set_password(b, tok, GOOD)
    for i in range(2):
        b.post('/v1/session', {'name': 'victim', 'password': 'Wrong-Password-1'})
    checks.eq(b.post('/v1/session', {'name': 'victim', 'password': GOOD}).status, 429, 'locked')
    b.stop()
    b.start()
    r = b.post('/v1/session', {'name': 'victim', 'password': GOOD})
    checks.eq(r.status, 429, 'still locked after a restart')
    # From this address: 3 failures so far (2 wrong, 1 locked); 2 more reach 5.
    for name in ('ghost-a', 'ghost-b'):
        b.post('/v1/session', {'name': name, 'password': 'Wrong-Password-1'})
    r = b.post('/v1/session', {'name': 'ghost-c', 'password': 'Wrong-Password-1'})
    checks.ok(r.status == 429 and 'Retry-After' in r.headers,
              f'the address is locked after its limit, whatever the name: {r}')
finally:
    b.cleanup()
    shutil.rmtree(state, ignore_errors=True)

# --- Secure cookie under TLS ---
cert, key = self_signed_cert(tmp)
with Broker(extra_args=config(tls={'certificate': cert, 'key': key})) as b:
    import http.client
    ctx = ssl.create_default_context(cafile=cert)

    def https(method, path, body=None, headers=None):
        conn = http.client.HTTPSConnection('127.0.0.1', b.port, context=ctx, timeout=10)
        h = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h['Content-Type'] = 'application/json'
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        out = (r.status, dict(r.getheaders()), r.read())
        conn.close()
        return out

    st, _, _ = https('POST', '/v1/session/password', {'new_password': GOOD},
                     {'Authorization': f'Bearer {b.admin_token}'})
    checks.eq(st, 204, 'password over HTTPS')
    st, h, body = https('POST', '/v1/session', {'name': 'admin', 'password': GOOD})
    parts = [p.strip() for p in h.get('Set-Cookie', '').split(';')]
    checks.ok(st == 200 and 'Secure' in parts and 'HttpOnly' in parts,
              f'the cookie is Secure under TLS: {parts}')
    cookie = parts[0]
    csrf = json.loads(body)['csrf_token']
    st, _, _ = https('POST', '/v1/departments', {'code': 'tls', 'name': 'TLS'},
                     {'Cookie': cookie, 'X-CSRF-Token': csrf,
                      'Origin': f'https://127.0.0.1:{b.port}'})
    checks.eq(st, 201, 'a write from our https origin')
    st, _, _ = https('POST', '/v1/departments', {'code': 'tls2', 'name': 'TLS'},
                     {'Cookie': cookie, 'X-CSRF-Token': csrf,
                      'Origin': f'http://127.0.0.1:{b.port}'})
    checks.eq(st, 403, 'the http:// origin is another origin under TLS')

# --- Secure cookie behind a TLS proxy: public_url says https ---
with Broker(extra_args=config(public_url='https://gov.example/cloud/')) as b:
    set_password(b, b.admin_token, GOOD)
    r = b.post('/v1/session', {'name': 'admin', 'password': GOOD})
    parts = [p.strip() for p in r.headers.get('Set-Cookie', '').split(';')]
    checks.ok(r.status == 200 and 'Secure' in parts and 'Path=/cloud/' in parts,
              f'the cookie is Secure when public_url is https: {parts}')

shutil.rmtree(tmp, ignore_errors=True)
checks.done()
