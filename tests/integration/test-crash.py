#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""kill -9 during a burst of concurrent writes, three times over.

Eight client threads register systems, create requests, edit them, upload materials and submit,
each write carrying its own X-Request-Id. Every write answered 2xx is recorded with what it wrote.
After ~1.5 s the broker is killed with SIGKILL mid-burst and restarted on the same state folder.
Then: the database passes its integrity check (cbtest.db_integrity), GET /v1/audit/verify is ok, every acknowledged
write is there with exactly its content (a write in flight at the kill may or may not be), and the
audit trail holds exactly one record per acknowledged write and none for a write never made.
"""
import hashlib
import http.client
import os
import random
import signal
import socket
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402

THREADS = 8
CYCLES = 3
BURST_SECONDS = 1.5


class Ledger:
    """What the clients were told: acknowledged writes, and each thread's write in flight."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = []          # dicts: rid, action, kind, object_id, and what was written
        self.inflight = {}       # thread key -> the write sent but not answered
        self.systems = {}        # id -> expected row
        self.requests = {}       # id -> expected fields
        self.materials = {}      # (request id, kind) -> sha256
        self.errors = []         # non-2xx answers that are not the kill's doing
        self.landed = []         # writes in flight at a kill that the database shows were made

    def ack(self, entry):
        with self.lock:
            self.acked.append(entry)


def pdf(seed):
    return (cbtest.PDF_BYTES + f'% {seed} {random.random()}\n'.encode() +
            os.urandom(64).hex().encode())


def worker(b, token, cycle, t, ledger, stop):
    """Writes until the broker dies (or @stop is set)."""
    rng = random.Random(cycle * 100 + t)
    key = (cycle, t)
    k = 0

    def write(action, kind, method, path, body=None, raw=None, headers=None, **extra):
        nonlocal k
        k += 1
        rid = f'crash-{cycle}-{t}-{k}'
        h = dict(headers or {})
        h['X-Request-Id'] = rid
        with ledger.lock:
            ledger.inflight[key] = dict(extra, rid=rid, action=action, kind=kind, path=path,
                                        body=body)
        r = b.request(method, path, body=body, raw=raw, token=token, headers=h, timeout=10)
        if r.status // 100 != 2:
            with ledger.lock:
                ledger.errors.append((rid, method, path, r.status, r.body[:200]))
                del ledger.inflight[key]
            return None
        return rid, r

    try:
        while not stop.is_set():
            name = f'c{cycle}-t{t}-sys{k}'
            desc = f'description {rng.random()} <x> \'"'
            level = rng.randint(1, 5)
            got = write('system.create', 'system', 'POST', '/v1/systems',
                        {'name': name, 'description': desc, 'category': 'integration',
                         'protection_level': level})
            if not got:
                continue
            rid, r = got
            sid = r.json()['id']
            with ledger.lock:
                ledger.systems[sid] = {'name': name, 'description': desc, 'category': 'integration',
                                       'protection_level': level}
                ledger.acked.append({'rid': rid, 'action': 'system.create', 'object_id': sid})
                del ledger.inflight[key]

            just = f'c{cycle}-t{t}-req{k} justification {rng.random()}'
            got = write('request.create', 'request', 'POST', '/v1/requests',
                        cbtest.new_request_body(sid, just))
            if not got:
                continue
            rid, r = got
            qid = r.json()['id']
            with ledger.lock:
                ledger.requests[qid] = {'system_id': sid, 'justification': just, 'state': 'draft'}
                ledger.acked.append({'rid': rid, 'action': 'request.create', 'object_id': qid})
                del ledger.inflight[key]

            just2 = just + ' (edited)'
            got = write('request.update', 'request', 'PATCH', f'/v1/requests/{qid}',
                        {'justification': just2}, request=qid)
            if not got:
                continue
            rid, r = got
            with ledger.lock:
                ledger.requests[qid]['justification'] = just2
                ledger.acked.append({'rid': rid, 'action': 'request.update', 'object_id': qid})
                del ledger.inflight[key]

            ok = True
            for mkind in cbtest.NEW_REQUEST_MATERIALS:
                data = pdf(f'{cycle}-{t}-{k}-{mkind}')
                sha = hashlib.sha256(data).hexdigest()
                got = write('material.upload', 'material', 'PUT',
                            f'/v1/requests/{qid}/materials/{mkind}', raw=data,
                            headers={'Content-Type': 'application/pdf'}, sha256=sha,
                            request=qid, material=mkind)
                if not got:
                    ok = False
                    break
                rid, r = got
                with ledger.lock:
                    ledger.materials[(qid, mkind)] = sha
                    ledger.acked.append({'rid': rid, 'action': 'material.upload',
                                         'object_id': qid, 'sha256': sha})
                    if key in ledger.inflight:
                        del ledger.inflight[key]
            if not ok:
                continue

            got = write('request.submit', 'request', 'POST', f'/v1/requests/{qid}/submit', {},
                        request=qid)
            if not got:
                continue
            rid, r = got
            with ledger.lock:
                ledger.requests[qid]['state'] = 'submitted'
                ledger.acked.append({'rid': rid, 'action': 'request.submit', 'object_id': qid})
                del ledger.inflight[key]
    except (ConnectionError, OSError, http.client.HTTPException):
        return  # the broker died under us; the write in flight stays in ledger.inflight


def read_db(path):
    con = cbtest.db_connect(path)
    con.row_factory = sqlite3.Row
    try:
        out = {
            'systems': {r['id']: dict(r) for r in con.execute('SELECT * FROM systems')},
            'requests': {r['id']: dict(r) for r in con.execute('SELECT * FROM requests')},
            'materials': {(r['request_id'], r['kind']): dict(r) for r in con.execute(
                'SELECT * FROM materials WHERE current = 1')},
            'audit': [dict(r) for r in con.execute('SELECT * FROM audit ORDER BY seq')],
        }
    finally:
        con.close()
    return out


def verify(ck, b, ledger, tokens, cycle, inflight):
    ck.eq(cbtest.db_integrity(b.db_path), [], f'cycle {cycle}: integrity and foreign keys')
    db = read_db(b.db_path)
    r = b.get('/v1/audit/verify', token=tokens['auditor'])
    ck.ok(r.status == 200 and r.json().get('ok') is True,
          f'cycle {cycle}: GET /v1/audit/verify is ok ({r!r})')
    if r.status == 200:
        ck.eq(r.json().get('records'), len(db['audit']),
              f'cycle {cycle}: audit/verify checked every record')

    # A write in flight at the kill may or may not have been made: the audit trail says which
    # (checked below to be one-to-one with the data). Those made become expected state.
    audit_by_rid = {}
    for a in db['audit']:
        audit_by_rid.setdefault(a['request_id'], []).append(a)
    for w in inflight:
        recs = audit_by_rid.get(w['rid'], [])
        if not recs:
            continue
        ledger.landed.append({'rid': w['rid'], 'action': w['action'],
                              'object_id': recs[0]['object_id']})
        body, oid = w['body'], recs[0]['object_id']
        if w['action'] == 'system.create':
            ledger.systems[oid] = {k: body[k] for k in ('name', 'description', 'category',
                                                          'protection_level')}
        elif w['action'] == 'request.create':
            ledger.requests[oid] = {'system_id': body['system'],
                                    'justification': body['justification'], 'state': 'draft'}
        elif w['action'] == 'request.update':
            ledger.requests[w['request']]['justification'] = body['justification']
        elif w['action'] == 'material.upload':
            ledger.materials[(w['request'], w['material'])] = w['sha256']
            ledger.landed[-1]['sha256'] = w['sha256']
        elif w['action'] == 'request.submit':
            ledger.requests[w['request']]['state'] = 'submitted'
    print(f'  cycle {cycle}: {sum(1 for w in inflight if w["rid"] in audit_by_rid)} of '
          f'{len(inflight)} writes in flight were made', flush=True)

    bad = []
    for sid, want in ledger.systems.items():
        row = db['systems'].get(sid)
        got = {k: row[k] for k in want} if row else None
        if got != want:
            bad.append((sid, got, want))
    ck.eq(bad, [], f'cycle {cycle}: all {len(ledger.systems)} acknowledged systems present with '
          'exactly their content')

    bad = []
    for qid, want in ledger.requests.items():
        row = db['requests'].get(qid)
        got = {k: row[k] for k in want} if row else None
        if got != want:
            bad.append((qid, got, want))
    ck.eq(bad, [], f'cycle {cycle}: all {len(ledger.requests)} acknowledged requests present with '
          'exactly their content')

    bad = []
    for (qid, kind), sha in ledger.materials.items():
        row = db['materials'].get((qid, kind))
        if not row or row['sha256'] != sha:
            bad.append((qid, kind, row and row['sha256'], sha))
            continue
        path = os.path.join(b.state_dir, 'materials', sha[:2], sha)
        try:
            with open(path, 'rb') as f:
                if hashlib.sha256(f.read()).hexdigest() != sha:
                    bad.append((qid, kind, 'content differs', sha))
        except OSError as e:
            bad.append((qid, kind, str(e), sha))
    ck.eq(bad, [], f'cycle {cycle}: all {len(ledger.materials)} acknowledged materials present, '
          'their files intact')

    # One audit record per acknowledged write; none for a write never made.
    by_rid = audit_by_rid
    bad = []
    for w in ledger.acked + ledger.landed:
        recs = by_rid.get(w['rid'], [])
        if len(recs) != 1 or recs[0]['action'] != w['action'] or \
                recs[0]['object_id'] != w['object_id']:
            bad.append((w['rid'], w['action'], w['object_id'],
                        [(x['action'], x['object_id']) for x in recs]))
        elif 'sha256' in w and w['sha256'] not in (recs[0]['detail'] or ''):
            bad.append((w['rid'], 'detail lacks the sha256'))
    ck.eq(bad, [], f'cycle {cycle}: exactly one matching audit record for each of the '
          f'{len(ledger.acked)} acknowledged writes')
    made = {w['rid'] for w in ledger.acked + ledger.landed}
    strays = [(a['seq'], a['request_id'], a['action']) for a in db['audit']
              if a['request_id'].startswith('crash-') and a['request_id'] not in made]
    ck.eq(strays, [], f'cycle {cycle}: no audit record for a write that was never acknowledged '
          'or in flight')

    # Every object made in a burst has its audit record: nothing was written without one.
    created = {('system.create', a['object_id']) for a in db['audit']
               if a['action'] == 'system.create'}
    missing = [sid for sid, row in db['systems'].items()
               if row['name'].startswith('c') and ('system.create', sid) not in created]
    ck.eq(missing, [], f'cycle {cycle}: every system in the database has its system.create '
          'audit record')
    created = {a['object_id'] for a in db['audit'] if a['action'] == 'request.create'}
    missing = [qid for qid in db['requests'] if qid not in created]
    ck.eq(missing, [], f'cycle {cycle}: every request in the database has its request.create '
          'audit record')
    # And nothing appeared that no client asked for: at most one per thread in flight.
    extra = [sid for sid, row in db['systems'].items()
             if row['name'].startswith('c') and sid not in ledger.systems]
    ck.eq(extra, [], f'cycle {cycle}: no system that no acknowledged or in-flight write made')

    # Through the API too, as the department sees them.
    sample = sorted(ledger.requests)[-20:]
    bad = []
    for qid in sample:
        dep = tokens['dep'][0] if db['requests'][qid]['department_id'] == tokens['dept'][0] \
            else tokens['dep'][1]
        r = b.get(f'/v1/requests/{qid}', token=dep)
        if r.status != 200:
            bad.append((qid, r.status))
            continue
        j = r.json()
        if j['justification'] != db['requests'][qid]['justification']:
            bad.append((qid, 'justification'))
        mats = {m['kind']: m['sha256'] for m in j['materials']}
        for kind in cbtest.NEW_REQUEST_MATERIALS:
            if (qid, kind) in ledger.materials and mats.get(kind) != ledger.materials[(qid, kind)]:
                bad.append((qid, kind))
    ck.eq(bad, [], f'cycle {cycle}: the API shows the last {len(sample)} requests as stored')


def burst(ck, b, tokens, cycle, ledger):
    stop = threading.Event()
    threads = []
    for t in range(THREADS):
        token = tokens['dep'][t % 2]
        th = threading.Thread(target=worker, args=(b, token, cycle, t, ledger, stop), daemon=True)
        threads.append(th)
    n0 = len(ledger.acked)
    for th in threads:
        th.start()
    time.sleep(BURST_SECONDS)
    pid = b.proc.pid
    os.kill(pid, signal.SIGKILL)
    b.proc.wait()
    stop.set()
    for th in threads:
        th.join(15)
    ck.ok(all(not th.is_alive() for th in threads), f'cycle {cycle}: every client thread ended')
    b.stop()
    n = len(ledger.acked) - n0
    inflight = list(ledger.inflight.values())
    ledger.inflight.clear()
    print(f'cycle {cycle}: {n} writes acknowledged before kill -9, {len(inflight)} in flight',
          flush=True)
    ck.ok(n >= 20, f'cycle {cycle}: the burst made progress ({n} acknowledged writes)')
    ck.eq(ledger.errors, [], f'cycle {cycle}: no write refused during the burst')
    ledger.errors.clear()
    return inflight


def interrupted_upload(ck, b, tokens, sid):
    """kill -9 while an upload streams into materials/tmp: the next start leaves no debris."""
    qid = cbtest.make_request(b, tokens['dep'][0], sid, 'interrupted upload')
    tmp = os.path.join(b.state_dir, 'materials', 'tmp')
    s = socket.create_connection(('127.0.0.1', b.port), timeout=5)
    s.sendall((f'PUT /v1/requests/{qid}/materials/construction_plan HTTP/1.1\r\n'
               f'Host: x\r\nAuthorization: Bearer {tokens["dep"][0]}\r\n'
               'Content-Type: application/pdf\r\nContent-Length: 200000\r\n\r\n').encode() +
              cbtest.PDF_BYTES + b'0' * 100000)
    deadline = time.time() + 5
    while time.time() < deadline and not os.listdir(tmp):
        time.sleep(0.05)
    ck.ok(os.listdir(tmp) != [], 'an upload in progress streams into materials/tmp')
    b.kill9()
    s.close()
    b.start()
    ck.eq(os.listdir(tmp), [], 'after kill -9 mid-upload and a restart, materials/tmp is empty')
    r = b.get(f'/v1/requests/{qid}', token=tokens['dep'][0])
    ck.eq(r.json().get('materials'), [], 'the interrupted upload left no material')


def main():
    ck = cbtest.Checks('crash')
    ledger = Ledger()
    b = cbtest.Broker()
    try:
        b.start()
        tokens = {'dep': [], 'dept': []}
        for code in ('crash-a', 'crash-b'):
            d = b.make_department(code, quota={'vcpus': 100000, 'memory_mib': 100000000,
                                               'disk_gib': 100000000, 'instances': 100000})
            tokens['dept'].append(d)
            tokens['dep'].append(b.make_account(code + '-clerk', 'department', d)[1])
        tokens['auditor'] = b.make_account('auditor-1', 'auditor')[1]
        for cycle in range(1, CYCLES + 1):
            inflight = burst(ck, b, tokens, cycle, ledger)
            # Read-only, before the broker touches the files again.
            try:
                ck.eq(cbtest.db_integrity(b.db_path), [], f'cycle {cycle}: integrity check right '
                      'after the kill, before any restart')
            except sqlite3.Error as e:
                ck.ok(False, f'cycle {cycle}: cannot open the killed database read-only: {e}')
            b.start()
            verify(ck, b, ledger, tokens, cycle, inflight)
            # The restarted broker takes writes again, and the chain goes on.
            sid = cbtest.make_system(b, tokens['dep'][0], f'after-restart-{cycle}')
            r = b.get('/v1/audit/verify', token=tokens['auditor'])
            ck.ok(r.status == 200 and r.json()['ok'], f'cycle {cycle}: audit chain continues '
                  'after the restart')
        print(f'{len(ledger.acked)} acknowledged writes over {CYCLES} crashes: '
              f'{len(ledger.systems)} systems, {len(ledger.requests)} requests, '
              f'{len(ledger.materials)} materials', flush=True)
        interrupted_upload(ck, b, tokens, sid)
        with open(b.log_path, 'rb') as f:
            log = f.read().decode('utf-8', 'replace')
        bad = [line for line in log.splitlines() if ' error: ' in line or 'crit' in line]
        ck.ok(not bad, 'broker log shows no error after the restarts' +
              ''.join('\n    ' + line for line in bad[:20]))
        ck.eq(b.get('/v1/health').status, 200, 'broker alive at the end')
    finally:
        b.cleanup()
    ck.done()


if __name__ == '__main__':
    main()
