# SPDX-License-Identifier: Apache-2.0
"""A world of departments and roles for the integration tests that drive the workflow through the
API on libvirt's test driver (test:///FILE.xml, built into libvirt, no libvirtd).

World: department A with its clerk and its system, an account of every other role, hosts whose
node files are written here, and the workflow's moves (draft, submit, assign, decide, trial,
trial results, allocate, production), each asserting the status it expects; the waits for
requests, allocations and jobs; and for metering, idle windows posted by a host's agent and the
findings the assessment makes of them. A test subclasses World, or composes its moves, for what
only it needs.

Standard library only; built on cbtest."""
import hashlib
import os
import time

import cbtest

# One small instance: a trial host of a few hundred MiB takes it.
SMALL = {'vcpus': 1, 'memory_mib': 64, 'disk_gib': 1, 'image': 'debian-12'}
WIN = 300          # seconds per metering window
SPAN = 6 * 3600    # the idle and right-sizing windows of METERING_POLICY's assessment
TRIAL_TESTS = ('function', 'performance', 'security')


def node_xml(path, memory_mib=8192, cpus=8, pool='default', base=True):
    """Writes a node file for libvirt's test driver to @path: @cpus CPUs, @memory_mib of memory
    and the dir storage pool @pool (none at all when None: the host then has no disk capacity
    and placement never picks it) holding, with @base, the default catalog's base volume
    debian-12.qcow2 (without it, making an instance's disk fails). The test driver gives every
    pool 100 GiB. Returns: the host's URI."""
    uid = hashlib.sha256(path.encode()).hexdigest()
    target = f'/var/lib/libvirt/images/{pool}'
    volume = f'''
    <volume type='file'><name>debian-12.qcow2</name><capacity unit='GiB'>2</capacity>
      <target><path>{target}/debian-12.qcow2</path><format type='qcow2'/></target>
    </volume>''' if base else ''
    pool_xml = f'''
  <pool type='dir'><name>{pool}</name>
    <uuid>{uid[0:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:32]}</uuid>
    <source/><target><path>{target}</path></target>{volume}
  </pool>''' if pool else ''
    with open(path, 'w') as f:
        f.write(f'''<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><active>{cpus}</active><nodes>1</nodes>
    <sockets>1</sockets><cores>{cpus}</cores><threads>1</threads></cpu>
  <memory>{memory_mib * 1024}</memory>{pool_xml}
</node>
''')
    return 'test://' + path


def _assess_span(doc):
    for k in ('idle', 'over_provisioned', 'under_provisioned'):
        doc[k]['window_seconds'] = SPAN
    doc['evidence']['min_age_seconds'] = 0


# cbtest.copy_policies() edits for a world with metering: the assessment judges SPAN of windows
# with no minimum age (so that an instance made a minute ago with SPAN of windows posted for it
# gets its idle finding), and the reconciler waits a day between passes (its first pass would
# write hosts and instances in the middle of a test's "database unchanged" checks).
METERING_POLICY = {'assessment.json': _assess_span,
                   'lifecycle.json': {'reconcile_seconds': 86400}}


def record_body(kind, title, day):
    """A valid body of POST /v1/systems/{id}/@kind (vulnerabilities, incidents, backups)."""
    if kind == 'vulnerabilities':
        return {'severity': 'critical', 'title': title, 'found_at': day}
    if kind == 'incidents':
        return {'severity': 'high', 'title': title, 'occurred_at': day}
    return {'location': 'dr-centre://' + title, 'taken_at': day, 'size_bytes': 4096,
            'sha256': 'cd' * 32}


class World:
    """Department A ('dept-a', its clerk 'dept-a-clerk', its system 'system-a') and an account
    of every other role (reviewer-1, consultant-1, vendor-1, auditor-1) on broker @b. tokens and
    ids are keyed by role, 'department' being department A's clerk; tokens['admin'] is the
    admin's token of the moment (a test that rotates it puts the new one there)."""

    def __init__(self, b, quota=None):
        self.b = b
        self.n = 0
        self.tokens = {'admin': b.admin_token}
        self.ids = {}
        self.hosts = {}          # host name -> id
        self.agent_tokens = {}   # host id -> the token of its metering agent
        self.dept_a = b.make_department('dept-a', 'Department A', quota)
        for role in ('reviewer', 'consultant', 'vendor', 'auditor'):
            self.account(f'{role}-1', role, key=role)
        self.account('dept-a-clerk', 'department', self.dept_a, key='department')
        self.sys_a = cbtest.make_system(b, self.dep, 'system-a')

    @property
    def dep(self):
        """Department A's clerk's token."""
        return self.tokens['department']

    def uniq(self, prefix):
        self.n += 1
        return f'{prefix}-{self.n}'

    def account(self, name, role, department_id=None, key=None):
        """Makes an account with the admin's token of the moment; keeps its id and token under
        @key when given. Returns: (id, token)."""
        body = {'name': name, 'role': role}
        if department_id:
            body['department_id'] = department_id
        r = self.b.post('/v1/accounts', body, token=self.tokens['admin'])
        assert r.status == 201, r
        aid, tok = r.json()['account']['id'], r.json()['token']
        if key:
            self.ids[key], self.tokens[key] = aid, tok
        return aid, tok

    # ---- hosts ----

    def add_host(self, name, pool, memory_mib=8192, cpus=8, storage='default', base=True):
        """Registers a host of the test driver (node_xml() in the broker's state folder) in
        @pool ('trial' or 'production') as the vendor. Returns: its id."""
        uri = node_xml(os.path.join(self.b.state_dir, f'{name}.xml'), memory_mib, cpus,
                       storage, base)
        r = self.b.post('/v1/hosts', {'name': name, 'uri': uri, 'pool': pool},
                        token=self.tokens['vendor'])
        assert r.status == 201 and r.json()['agent_token'].startswith('cba_'), r
        hid = r.json()['id']
        self.hosts[name] = hid
        self.agent_tokens[hid] = r.json()['agent_token']
        return hid

    def wait_hosts(self, capacity=False, timeout=30):
        """Waits until every host added is connected (with @capacity: and its capacity known)."""
        def ready():
            items = self.b.get('/v1/hosts?limit=1000', token=self.tokens['vendor']).json()['items']
            mine = [h for h in items if h['id'] in self.hosts.values()]
            return len(mine) == len(self.hosts) and all(
                h['connection']['state'] == 'connected' and (h['capacity']['known'] or
                                                             not capacity) for h in mine)
        self.wait(ready, 'every host to connect', timeout)

    def maintenance(self, name, on):
        r = self.b.request('PATCH', f'/v1/hosts/{self.hosts[name]}', {'maintenance': on},
                           token=self.tokens['vendor'])
        assert r.status == 200, r

    # ---- the workflow's moves ----

    def draft(self, complete=False, instances=None, token=None, system=None):
        """A draft 'new' request of @token's department (department A's by default) on @system
        (system-a) for @instances (cbtest.INSTANCE by default), with every material the review
        policy requires when @complete. Returns: its id."""
        make = cbtest.make_complete_request if complete else cbtest.make_request
        return make(self.b, token or self.dep, system or self.sys_a, instances=instances)

    def submit(self, rid, token=None):
        r = self.b.post(f'/v1/requests/{rid}/submit', None, token=token or self.dep)
        assert r.status == 200, r
        return r.json()

    def submitted(self, instances=None, token=None, system=None, assign=None):
        """A complete draft (see draft()) submitted, and assigned to consultant @assign (an
        account id) when given. Returns: its id."""
        rid = self.draft(True, instances, token, system)
        self.submit(rid, token)
        if assign:
            r = self.b.post(f'/v1/requests/{rid}/assign', {'consultant': assign},
                            token=self.tokens['reviewer'])
            assert r.status == 200, r
        return rid

    def decide(self, rid, decision):
        """The reviewer's @decision (approve, return, reject). Returns: the request's document."""
        body = {'decision': decision}
        if decision != 'approve':
            body['comment'] = 'cbtest says ' + decision
        r = self.b.post(f'/v1/requests/{rid}/decision', body, token=self.tokens['reviewer'])
        assert r.status == 200, r
        return r.json()

    def returned(self):
        rid = self.submitted()
        self.decide(rid, 'return')
        return rid

    def in_trial(self, instances=(SMALL,), token=None, system=None):
        """A request (see draft()) submitted and approved, its trial running. Returns: its id."""
        rid = self.submitted(instances, token, system)
        self.decide(rid, 'approve')
        self.wait_request(rid, 'in_trial')
        return rid

    def pass_trial(self, rid, report=b'all passed\n'):
        """The vendor uploads the test report and records the three tests passed."""
        tv = self.tokens['vendor']
        r = cbtest.upload_material(self.b, tv, rid, 'test_report', data=report,
                                   media_type='text/plain')
        assert r.status == 201, r
        sha = r.json()['sha256']
        for test in TRIAL_TESTS:
            r = self.b.post(f'/v1/requests/{rid}/trial-results',
                            {'test': test, 'result': 'pass', 'report': sha}, token=tv)
            assert r.status == 201, r

    def trial_passed(self, instances=(SMALL,), token=None, system=None):
        """A request (see draft()) whose trial passed and was reclaimed. Returns: its id."""
        rid = self.in_trial(instances, token, system)
        self.pass_trial(rid)
        self.wait(lambda: self.jobs(request=rid)[-1]['state'] == 'done',
                  f'the trial of request {rid} is reclaimed')
        return rid

    def allocate(self, rid):
        """The reviewer allocates @rid. Returns: the answer (allocation_id, jobs)."""
        r = self.b.post(f'/v1/requests/{rid}/allocate', None, token=self.tokens['reviewer'])
        assert r.status == 202, r
        return r.json()

    def production(self, instances=(SMALL,), token=None, system=None):
        """A production allocation (see draft()) through the whole workflow, active and its
        jobs done. Returns: (allocation id, [{'id', 'uuid', 'host', 'name'}] of its
        instances, 'host' the host's id)."""
        rid = self.trial_passed(instances, token, system)
        alloc = self.allocate(rid)['allocation_id']
        self.wait_allocation(alloc, 'active')
        self.wait(lambda: all(j['state'] == 'done' for j in self.jobs(request=rid)),
                  f'the jobs of request {rid} are done')
        return alloc, [{'id': i['id'], 'uuid': i['uuid'], 'host': i['host']['id'],
                        'name': i['name']} for i in self.allocation(alloc)['instances']]

    # ---- reading, waiting ----

    def _get(self, path, token=None):
        r = self.b.get(path, token=token or self.tokens['reviewer'], timeout=10)
        assert r.status == 200, r
        return r.json()

    def request(self, rid, token=None):
        return self._get(f'/v1/requests/{rid}', token)

    def allocation(self, aid, token=None):
        return self._get(f'/v1/allocations/{aid}', token)

    def job(self, jid):
        return self._get(f'/v1/jobs/{jid}', self.tokens['vendor'])

    def jobs(self, **query):
        """The jobs GET /v1/jobs lists for @query (request=, allocation=, state=), oldest first."""
        q = ''.join(f'&{k}={v}' for k, v in query.items())
        return self._get(f'/v1/jobs?limit=1000{q}', self.tokens['vendor'])['items']

    def wait(self, cond, what, timeout=30):
        """Waits until @cond() is true. Returns: its value."""
        return cbtest.wait_for(cond, timeout, what)

    def wait_request(self, rid, state, timeout=30):
        """Returns: the request's document once it is @state."""
        return self.wait(lambda: (lambda d: d if d['state'] == state else None)(
            self.request(rid)), f'request {rid} to become {state}', timeout)

    def wait_allocation(self, aid, state, timeout=30):
        return self.wait(lambda: (lambda a: a if a['state'] == state else None)(
            self.allocation(aid)), f'allocation {aid} to become {state}', timeout)

    def wait_job(self, jid, timeout=30):
        """Returns: the job's document once it has ended (done or error)."""
        return self.wait(lambda: (lambda j: j if j['state'] in ('done', 'error') else None)(
            self.job(jid)), f'job {jid} to end', timeout)

    # ---- metering and assessment (policies from METERING_POLICY) ----

    def start_clock(self):
        """Sets the windows' clock: t_last is the window under way (it ends less than 600 s
        ahead), t_first SPAN before it, and fresh windows go back from next_start; today, day
        (yesterday), year and month for the reports and records."""
        now = int(time.time())
        self.t_last = now // WIN * WIN
        self.t_first = self.t_last - SPAN
        self.next_start = self.t_first - WIN
        self.today = time.strftime('%Y-%m-%d', time.gmtime(now))
        self.day = time.strftime('%Y-%m-%d', time.gmtime(now - 86400))
        self.year = time.gmtime(now).tm_year
        self.month = time.strftime('%Y-%m', time.gmtime(now))

    def window(self, inst, start):
        """One idle 5-minute window of @inst (1 vCPU, 64 MiB): under the idle thresholds."""
        return {'instance': inst['id'], 'uuid': inst['uuid'], 'start': start, 'duration': WIN,
                'readings': 30, 'expected': 30, 'vcpus': 1, 'memory_mib': 64,
                'cpu_cores_avg': 0.005, 'cpu_cores_max': 0.01, 'memory_used_mib_avg': 20.0,
                'memory_used_mib_max': 30.0, 'memory_source': 'rss', 'disk_read_bytes': 0,
                'disk_write_bytes': 0, 'disk_read_requests': 0, 'disk_write_requests': 0,
                'net_rx_bytes': 100 * WIN, 'net_tx_bytes': 40 * WIN, 'net_rx_packets': 10,
                'net_tx_packets': 10}

    def fresh_start(self):
        """The start of a window never posted (before the assessment's span)."""
        t = self.next_start
        self.next_start -= WIN
        return t

    def fresh_window(self, inst):
        return self.window(inst, self.fresh_start())

    def post_idle_windows(self, insts):
        """Every window from t_first to t_last of @insts, posted by their host's agent (all
        stored asserted). Returns: how many."""
        recs = [self.window(i, t) for i in insts
                for t in range(self.t_first, self.t_last + WIN, WIN)]
        r = self.b.post('/v1/samples', {'instances': recs},
                        token=self.agent_tokens[insts[0]['host']])
        assert r.status == 200 and r.json()['stored'] == len(recs), r
        return len(recs)

    def assess(self):
        """Runs the assessment as the reviewer. Returns: its answer."""
        r = self.b.post('/v1/assessment/run', {}, token=self.tokens['reviewer'])
        assert r.status == 200, r
        return r.json()

    def findings_of(self, inst, token=None):
        items = self._get('/v1/findings?limit=1000', token)['items']
        return [f for f in items if f['instance_id'] == inst['id']]

    def live_finding(self, inst):
        live = [f['id'] for f in self.findings_of(inst) if f['state'] in ('open', 'acknowledged')]
        assert len(live) == 1, (inst, self.findings_of(inst))
        return live[0]

    def fresh_finding(self, inst):
        """An open idle finding of @inst that nobody acted on: the live one is resolved and
        the assessment run again, which finds the instance still idle."""
        for f in self.findings_of(inst):
            if f['state'] in ('open', 'acknowledged'):
                r = self.b.post(f'/v1/findings/{f["id"]}/resolve', {},
                                token=self.tokens['reviewer'])
                assert r.status == 200, r
        self.assess()
        fresh = [f for f in self.findings_of(inst) if f['state'] == 'open']
        assert len(fresh) == 1 and fresh[0]['change_request_id'] is None, fresh
        return fresh[0]['id']

    def record(self, kind, title, system=None, token=None):
        """A security or backup record (see record_body()) of @system (system-a), dated
        yesterday. Returns: its id."""
        r = self.b.post(f'/v1/systems/{system or self.sys_a}/{kind}',
                        record_body(kind, title, self.day), token=token or self.dep)
        assert r.status == 201, r
        return r.json()['id']
