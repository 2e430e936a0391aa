# SPDX-License-Identifier: Apache-2.0
"""A generator of utilization history for a fleet, through the real API only.

It builds the fleet the way the bureau would: departments, systems and 'new' requests that go
through the whole workflow (materials, submit, approve, a trial on the trial host of libvirt's
test driver, the vendor's three test results with the test report's SHA-256, allocate), so every
instance is a real instance row with a real domain on the production host. Then it makes the
windows an agent would have sent for a span of time (a year, say) from usage patterns, and posts
them with the production host's agent token to POST /v1/samples, rolls every day up with
POST /v1/metering/rollup, and leaves the assessment to the caller.

Nothing is written to the database directly. Standard library only.

Patterns are deterministic functions of a window's start, chosen so that every utilization lies
inside a 1 % histogram bin (never on an edge): a test can then work out each p95 by hand.
"""
import json
import os
import re
import shutil
import time

import cbtest
from cbtest import wait_for

HOUR = 3600
DAY = 86400
READINGS = 360  # readings per 1-hour window: one every 10 s

FIXTURE = os.path.join(cbtest.SOURCE, 'tests', 'data', 'hosts', 'host-8cpu-16g.xml')


# ---- fixtures: hosts and policies ----

def host_fixture(path, cpus, memory_mib):
    """A copy of tests/data/hosts/host-8cpu-16g.xml with @cpus CPUs (1 node, 1 socket, @cpus
    cores, 1 thread) and @memory_mib of memory; the pool cb-images with base.raw is kept.
    Returns: the test driver's URI for it."""
    with open(FIXTURE) as f:
        xml = f.read()
    xml = re.sub(r'<cores>\d+</cores>', f'<cores>{cpus}</cores>', xml)
    xml = re.sub(r'<threads>\d+</threads>', '<threads>1</threads>', xml)
    xml = re.sub(r'<active>\d+</active>', f'<active>{cpus}</active>', xml)
    xml = re.sub(r'<memory>\d+</memory>', f'<memory>{memory_mib * 1024}</memory>', xml, count=1)
    with open(path, 'w') as f:
        f.write(xml)
    return 'test://' + os.path.abspath(path)


def policy_dir(dest, assessment=None, metering=None, lifecycle=None):
    """A copy of policies/ in @dest with the catalog image 'base' (cb-images/base.raw), a quick
    shutdown, a sample retention long enough for a year of windows, and the given overrides
    (dicts merged one level deep). Returns: @dest."""
    shutil.copytree(cbtest.POLICIES, dest)

    def edit(name, change):
        path = os.path.join(dest, name)
        with open(path) as f:
            doc = json.load(f)
        for k, v in (change or {}).items():
            if isinstance(v, dict) and isinstance(doc.get(k), dict):
                doc[k].update(v)
            else:
                doc[k] = v
        with open(path, 'w') as f:
            json.dump(doc, f, indent=2)

    edit('catalog.json', {'images': [{'name': 'base', 'pool': 'cb-images', 'volume': 'base.raw',
                                      'format': 'raw'}]})
    edit('lifecycle.json', dict({'shutdown_timeout_seconds': 1, 'job_retry_seconds': 60},
                                **(lifecycle or {})))
    edit('metering.json', dict({'sample_retention_days': 400}, **(metering or {})))
    edit('placement.json', {'anti_affinity': False})
    edit('assessment.json', assessment)
    return dest


# ---- usage patterns: f(window start) -> figures of the window, or None (no window) ----

def hour_of_day(start):
    return (start % DAY) // HOUR


class Pattern:
    """Figures of one window: CPU cores (avg, max), memory used MiB (avg, max), network bytes
    per second in and out. Subclasses set them per window."""
    rx_bps = 50000
    tx_bps = 20000

    def at(self, start):
        raise NotImplementedError

    def __call__(self, start):
        return self.at(start)


class Idle(Pattern):
    """Near-zero CPU and a trickle of network, except one hour a day (a nightly job) at
    @burst_cores: the idle share is then 23/24 = 95.8 %, just over the 95 % the rule needs."""

    def __init__(self, cores=0.005, burst_hour=2, burst_cores=0.5, memory_mib=300,
                 rx_bps=100, tx_bps=40):
        self.cores, self.burst_hour, self.burst_cores = cores, burst_hour, burst_cores
        self.memory_mib, self.rx_bps, self.tx_bps = memory_mib, rx_bps, tx_bps

    def at(self, start):
        c = self.burst_cores if hour_of_day(start) == self.burst_hour else self.cores
        return {'cpu': c, 'cpu_max': c * 2 + 0.01, 'mem': self.memory_mib,
                'mem_max': self.memory_mib + 20, 'rx': self.rx_bps, 'tx': self.tx_bps}


class Steady(Pattern):
    """Steadily busy: @low..@high cores in eleven steps (for 2 vCPUs, 1.21..1.39: 60.5-69.5 %),
    memory @memory_mib."""

    def __init__(self, low=1.21, high=1.39, memory_mib=1500):
        self.low, self.high, self.memory_mib = low, high, memory_mib

    def at(self, start):
        k = (start // HOUR * 7) % 11
        c = round(self.low + (self.high - self.low) * k / 10, 6)
        return {'cpu': c, 'cpu_max': c + 0.3, 'mem': self.memory_mib,
                'mem_max': self.memory_mib + 100, 'rx': self.rx_bps, 'tx': self.tx_bps}


class Constant(Pattern):
    """The same figures every window."""

    def __init__(self, cores, memory_mib, cores_max=None):
        self.cores, self.memory_mib = cores, memory_mib
        self.cores_max = cores if cores_max is None else cores_max

    def at(self, start):
        return {'cpu': self.cores, 'cpu_max': self.cores_max, 'mem': self.memory_mib,
                'mem_max': self.memory_mib + 50, 'rx': self.rx_bps, 'tx': self.tx_bps}


class Diurnal(Pattern):
    """Office hours (@busy_hours of each UTC day) at @busy_cores and @busy_mem, the rest at
    @quiet_cores and @quiet_mem."""

    def __init__(self, busy_hours, busy_cores, quiet_cores, busy_mem, quiet_mem):
        self.busy_hours = set(busy_hours)
        self.busy_cores, self.quiet_cores = busy_cores, quiet_cores
        self.busy_mem, self.quiet_mem = busy_mem, quiet_mem

    def at(self, start):
        busy = hour_of_day(start) in self.busy_hours
        c = self.busy_cores if busy else self.quiet_cores
        m = self.busy_mem if busy else self.quiet_mem
        return {'cpu': c, 'cpu_max': c + 0.4, 'mem': m, 'mem_max': m + 100,
                'rx': self.rx_bps, 'tx': self.tx_bps}


class Bursty(Pattern):
    """Low most of the time (@base_cores), @burst_cores in @burst_hours of each day: a low
    average with a high p95."""

    def __init__(self, burst_hours, burst_cores, base_cores, memory_mib):
        self.burst_hours = set(burst_hours)
        self.burst_cores, self.base_cores, self.memory_mib = burst_cores, base_cores, memory_mib

    def at(self, start):
        c = self.burst_cores if hour_of_day(start) in self.burst_hours else self.base_cores
        return {'cpu': c, 'cpu_max': min(c * 1.5, 4.0), 'mem': self.memory_mib,
                'mem_max': self.memory_mib + 100, 'rx': self.rx_bps, 'tx': self.tx_bps}


class Sparse(Pattern):
    """@inner's windows, but only one hour in @every (the others never arrived)."""

    def __init__(self, inner, every=3):
        self.inner, self.every = inner, every

    def at(self, start):
        return self.inner(start) if (start // HOUR) % self.every == 0 else None


class Since(Pattern):
    """@inner's windows from @t0 on (an instance that began reporting then)."""

    def __init__(self, inner, t0):
        self.inner, self.t0 = inner, t0

    def at(self, start):
        return self.inner(start) if start >= self.t0 else None


class Between(Pattern):
    """@inner's windows with start in [@t0, @t1) only (an agent that reported for a while,
    then stopped)."""

    def __init__(self, inner, t0, t1):
        self.inner, self.t0, self.t1 = inner, t0, t1

    def at(self, start):
        return self.inner(start) if self.t0 <= start < self.t1 else None


class Gaps(Pattern):
    """@inner's windows, less whole days and stray hours: the days @missing_days (counted from
    the day of @origin: 0 is its UTC day) never arrived, nor every window whose hour of the
    day is in @missing_hours (a nightly backup that starves the agent, say)."""

    def __init__(self, inner, origin, missing_days=(), missing_hours=()):
        self.inner, self.origin = inner, origin - origin % DAY
        self.missing_days, self.missing_hours = set(missing_days), set(missing_hours)

    def at(self, start):
        if (start - self.origin) // DAY in self.missing_days or \
                hour_of_day(start) in self.missing_hours:
            return None
        return self.inner(start)


class Hot(Pattern):
    """A guest that measures above 100 % of its vCPUs (timer granularity, steal accounting):
    @cores_avg and @cores_max, both above the vCPU count, as the agent reports them."""

    def __init__(self, cores_avg, cores_max, memory_mib):
        self.cores_avg, self.cores_max, self.memory_mib = cores_avg, cores_max, memory_mib

    def at(self, start):
        return {'cpu': self.cores_avg, 'cpu_max': self.cores_max, 'mem': self.memory_mib,
                'mem_max': self.memory_mib + 50, 'rx': self.rx_bps, 'tx': self.tx_bps}


class Phases(Pattern):
    """Years of history that change: [(t, pattern), ...] sorted by t, each pattern in force from
    its t on (the first also before it)."""

    def __init__(self, phases):
        self.phases = list(phases)

    def at(self, start):
        pat = self.phases[0][1]
        for t, p in self.phases:
            if start >= t:
                pat = p
        return pat(start)


# ---- windows and their delivery ----

def window_record(inst, start, fig, duration=HOUR):
    """The agent's record of one window of instance @inst ({'id','uuid','vcpus',
    'memory_mib'}) with figures @fig (from a Pattern)."""
    return {
        'instance': inst['id'], 'uuid': inst['uuid'], 'start': start, 'duration': duration,
        'readings': READINGS, 'expected': READINGS, 'vcpus': inst['vcpus'],
        'memory_mib': inst['memory_mib'],
        'cpu_cores_avg': fig['cpu'], 'cpu_cores_max': fig['cpu_max'],
        'memory_used_mib_avg': float(fig['mem']), 'memory_used_mib_max': float(fig['mem_max']),
        'memory_source': 'balloon',
        'disk_read_bytes': 4096 * 10, 'disk_write_bytes': 4096 * 20,
        'disk_read_requests': 10, 'disk_write_requests': 20,
        'net_rx_bytes': int(fig['rx'] * duration), 'net_tx_bytes': int(fig['tx'] * duration),
        'net_rx_packets': int(fig['rx'] * duration) // 500 + 1,
        'net_tx_packets': int(fig['tx'] * duration) // 500 + 1,
    }


def windows(inst, pattern, t0, t1, duration=HOUR):
    """Every window of @inst that @pattern produces with start in [@t0, @t1) (aligned to
    @duration). Returns: the list of records, in time order."""
    out = []
    start = -(-t0 // duration) * duration
    while start + duration <= t1:
        fig = pattern(start)
        if fig is not None:
            out.append(window_record(inst, start, fig, duration))
        start += duration
    return out


def post_windows(broker, agent_token, records, batch=5000):
    """POSTs @records to /v1/samples in batches, grouped by instance as an agent does.
    Returns: {'stored', 'duplicates', 'batches', 'seconds'}."""
    out = {'stored': 0, 'duplicates': 0, 'batches': 0}
    t = time.monotonic()
    for i in range(0, len(records), batch):
        chunk = records[i:i + batch]
        r = broker.post('/v1/samples', {'instances': chunk}, token=agent_token, timeout=120)
        if r.status != 200:
            raise RuntimeError(f'POST /v1/samples (records {i}..{i + len(chunk) - 1}): {r}')
        doc = r.json()
        out['stored'] += doc['stored']
        out['duplicates'] += doc['duplicates']
        out['batches'] += 1
    out['seconds'] = time.monotonic() - t
    return out


def day_iso(t):
    return time.strftime('%Y-%m-%d', time.gmtime(t))


def rollup_days(broker, token, t0, t1):
    """POST /v1/metering/rollup for every UTC day that holds a moment of [@t0, @t1).
    Returns: (number of days, seconds)."""
    t = time.monotonic()
    n = 0
    day = t0 - t0 % DAY
    while day < t1:
        r = broker.post('/v1/metering/rollup', {'day': day_iso(day)}, token=token, timeout=120)
        if r.status != 200:
            raise RuntimeError(f'POST /v1/metering/rollup {day_iso(day)}: {r}')
        n += 1
        day += DAY
    return n, time.monotonic() - t


# ---- the fleet, through the workflow ----

class Fleet:
    """Departments, systems and allocations made through the API of @broker, with a trial host
    and a production host on libvirt's test driver (fixture copies in @work_dir)."""

    def __init__(self, broker, work_dir, host_cpus=64, host_memory_mib=262144):
        self.b = broker
        _, self.reviewer = broker.make_account('reviewer', 'reviewer')
        _, self.vendor = broker.make_account('vendor', 'vendor')
        _, self.auditor = broker.make_account('auditor', 'auditor')
        self.hosts, self.agent_token = {}, None
        for pool in ('trial', 'production'):
            uri = host_fixture(os.path.join(work_dir, f'{pool}.xml'), host_cpus, host_memory_mib)
            r = broker.post('/v1/hosts', {'name': f'{pool}-1', 'uri': uri, 'pool': pool,
                                          'storage_pool': 'cb-images'}, token=self.vendor)
            self._want(r, 201, f'POST /v1/hosts {pool}')
            self.hosts[pool] = r.json()['id']
            if pool == 'production':
                self.agent_token = r.json()['agent_token']
        wait_for(lambda: all(h['connection']['state'] == 'connected'
                             for h in self.b.get('/v1/hosts', token=self.vendor).json()['items']),
                 30, 'the hosts to connect')
        self.departments = {}  # code -> {'id', 'token', 'name'}

    @staticmethod
    def _want(r, status, what):
        if r.status != status:
            raise RuntimeError(f'{what}: {r}')
        return r.json() if r.body else None

    def department(self, code, name):
        did = self.b.make_department(code, name)
        _, tok = self.b.make_account(f'{code}-staff', 'department', did)
        self.departments[code] = {'id': did, 'token': tok, 'name': name}
        return self.departments[code]

    def system(self, code, name):
        return cbtest.make_system(self.b, self.departments[code]['token'], name)

    def submit_new(self, code, system_id, specs):
        """A 'new' request for @specs ([(vcpus, memory_mib)]) with its materials, submitted.
        Returns: its id."""
        tok = self.departments[code]['token']
        body = {'system': system_id, 'kind': 'new', 'justification': 'assessgen fleet',
                'resources': {'instances': [{'vcpus': v, 'memory_mib': m, 'disk_gib': 1,
                                             'image': 'base'} for v, m in specs]}}
        rid = self._want(self.b.post('/v1/requests', body, token=tok), 201, 'create request')['id']
        for kind in cbtest.NEW_REQUEST_MATERIALS:
            self._want(cbtest.upload_material(self.b, tok, rid, kind), 201, f'material {kind}')
        self._want(self.b.post(f'/v1/requests/{rid}/submit', token=tok), 200, 'submit')
        return rid

    def request(self, rid):
        return self._want(self.b.get(f'/v1/requests/{rid}', token=self.reviewer), 200,
                          f'GET request {rid}')

    def wait_state(self, rid, states, timeout=60):
        return wait_for(lambda: (lambda d: d if d['state'] in states else None)(self.request(rid)),
                        timeout, f'request {rid} to become {states}')

    def through_workflow(self, rids, security='pass'):
        """Approves @rids, runs their trials (function and performance pass; security as
        @security), and for those that passed allocates and waits for the allocation.
        Returns: {request id: allocation document or None}."""
        for rid in rids:
            self._want(self.b.post(f'/v1/requests/{rid}/decision', {'decision': 'approve'},
                                   token=self.reviewer), 200, f'approve {rid}')
        for rid in rids:
            doc = self.wait_state(rid, ('in_trial', 'failed'))
            if doc['state'] != 'in_trial':
                raise RuntimeError(f'request {rid}: the trial did not start: {doc}')
            sha = self._want(cbtest.upload_material(self.b, self.vendor, rid, 'test_report',
                                                    data=f'trial report {rid}\n'.encode(),
                                                    media_type='text/plain'),
                             201, 'test_report')['sha256']
            for test in ('function', 'performance', 'security'):
                result = security if test == 'security' else 'pass'
                self._want(self.b.post(f'/v1/requests/{rid}/trial-results',
                                       {'test': test, 'result': result, 'report': sha},
                                       token=self.vendor), 201, f'trial result {test}')
        out = {}
        for rid in rids:
            doc = self.request(rid)
            if doc['state'] != 'trial_passed':
                out[rid] = None
                continue
            self._want(self.b.post(f'/v1/requests/{rid}/allocate', token=self.reviewer), 202,
                       f'allocate {rid}')
        for rid in rids:
            if rid in out:
                continue
            doc = self.wait_state(rid, ('allocated', 'failed'))
            if doc['state'] != 'allocated':
                raise RuntimeError(f'request {rid} failed: {doc}')
            aid = doc['allocation_id']
            alloc = wait_for(lambda: (lambda a: a if a['state'] == 'active' else None)(
                self._want(self.b.get(f'/v1/allocations/{aid}', token=self.reviewer), 200,
                           'GET allocation')), 60, f'allocation {aid} to be active')
            out[rid] = alloc
        return out

    def change(self, code, system_id, allocation_id, specs, restart_allowed=False):
        """A 'change' request of allocation @allocation_id to @specs ([(vcpus, memory_mib)]),
        submitted, approved and applied. Returns: the allocation afterwards."""
        tok = self.departments[code]['token']
        body = {'system': system_id, 'kind': 'change', 'allocation': allocation_id,
                'justification': 'assessgen resize', 'restart_allowed': restart_allowed,
                'resources': {'instances': [{'vcpus': v, 'memory_mib': m, 'disk_gib': 1,
                                             'image': 'base'} for v, m in specs]}}
        rid = self._want(self.b.post('/v1/requests', body, token=tok), 201, 'create change')['id']
        self._want(self.b.post(f'/v1/requests/{rid}/submit', token=tok), 200, 'submit change')
        self._want(self.b.post(f'/v1/requests/{rid}/decision', {'decision': 'approve'},
                               token=self.reviewer), 200, f'approve change {rid}')
        doc = self.wait_state(rid, ('applied', 'failed'))
        if doc['state'] != 'applied':
            raise RuntimeError(f'change {rid} failed: {doc}')
        return self._want(self.b.get(f'/v1/allocations/{allocation_id}', token=self.reviewer),
                          200, 'GET allocation')
