# SPDX-License-Identifier: Apache-2.0
"""Fixtures for tests on a real libvirtd + QEMU (software emulation): daemons, a storage pool
in a temporary folder with 1 MiB boot-sector guest images, a policy folder whose catalog names
them, and helpers to register hosts and wait for jobs. Standard library only.

The guests: a raw 1 MiB disk whose boot sector either halts (f4 eb fd: idle) or spins
(eb fe: one busy vCPU). Every name this module makes starts with a per-run prefix, and
cleanup() removes every domain, volume and pool it made."""
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

from cbtest import POLICIES, free_port, wait_for, wait_job, wait_request_state  # noqa: E402

URI = 'qemu:///system'
HALT = b'\xf4\xeb\xfd'
SPIN = b'\xeb\xfe'


def virsh(*args, check=True, uri=URI, timeout=60):
    p = subprocess.run(['virsh', '-c', uri] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f'virsh {" ".join(args)}: {p.stderr.strip()}')
    return p


def ensure_daemons():
    """Starts virtlogd and libvirtd when they are not running (as root, as CI does)."""
    for daemon in ('virtlogd', 'libvirtd'):
        if subprocess.run(['pgrep', '-x', daemon], capture_output=True).returncode != 0:
            subprocess.run([daemon, '-d'], check=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        if virsh('version', check=False).returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError('libvirtd does not answer')


def boot_image(path, code):
    data = bytearray(1024 * 1024)
    data[0:len(code)] = code
    data[510] = 0x55
    data[511] = 0xAA
    with open(path, 'wb') as f:
        f.write(data)


class Lab:
    """A storage pool with guest images and a policy folder for one test run."""

    def __init__(self, lifecycle=None, placement=None, catalog_extra=None):
        # Brokers name domains cb-<allocation>-<n>: two tests on one libvirtd at once would
        # clash, so labs take turns (meson runs these tests one at a time anyway).
        self._lock = open('/tmp/cloudbroker-test-lab.lock', 'w')
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        ensure_daemons()
        self.prefix = 'cbt' + uuid.uuid4().hex[:8]
        self.dir = tempfile.mkdtemp(prefix=f'{self.prefix}-')
        os.chmod(self.dir, 0o755)
        self.pool_dir = os.path.join(self.dir, 'pool')
        os.makedirs(self.pool_dir)
        os.chmod(self.pool_dir, 0o755)
        self.pool = f'{self.prefix}-pool'
        boot_image(os.path.join(self.pool_dir, 'halt.raw'), HALT)
        boot_image(os.path.join(self.pool_dir, 'spin.raw'), SPIN)
        virsh('pool-define-as', self.pool, 'dir', '--target', self.pool_dir)
        virsh('pool-start', self.pool)
        self.policy_dir = os.path.join(self.dir, 'policies')
        shutil.copytree(POLICIES, self.policy_dir)
        catalog = {'images': [
            {'name': 'halt', 'pool': self.pool, 'volume': 'halt.raw', 'format': 'raw'},
            {'name': 'spin', 'pool': self.pool, 'volume': 'spin.raw', 'format': 'raw'},
        ] + list(catalog_extra or [])}
        self._write('catalog.json', catalog)
        life = self._read('lifecycle.json')
        life.update({'domain_type': 'qemu', 'shutdown_timeout_seconds': 1,
                     'reconcile_seconds': 2, 'job_retry_seconds': 60})
        life.update(lifecycle or {})
        self._write('lifecycle.json', life)
        place = self._read('placement.json')
        place.update({'anti_affinity': False})
        place.update(placement or {})
        self._write('placement.json', place)

    def _read(self, name):
        with open(os.path.join(self.policy_dir, name)) as f:
            return json.load(f)

    def _write(self, name, doc):
        with open(os.path.join(self.policy_dir, name), 'w') as f:
            json.dump(doc, f, indent=2)

    def volumes(self):
        """Names of the volumes in the pool, refreshed."""
        virsh('pool-refresh', self.pool, check=False)
        out = virsh('vol-list', self.pool).stdout.splitlines()[2:]
        return sorted(line.split()[0] for line in out if line.strip())

    def cleanup(self, domain_prefix='cb-'):
        """Removes domains whose disks live in this lab's pool, then the pool and folder."""
        for name in virsh('list', '--all', '--name', check=False).stdout.split():
            xml = virsh('dumpxml', name, check=False).stdout
            if self.pool in xml or self.pool_dir in xml or name.startswith(self.prefix):
                virsh('destroy', name, check=False)
                virsh('undefine', name, '--nvram', check=False)
        virsh('pool-destroy', self.pool, check=False)
        virsh('pool-undefine', self.pool, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._lock:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


def domains(prefix='cb-'):
    """{name: state} of every domain whose name starts with @prefix."""
    out = {}
    for line in virsh('list', '--all').stdout.splitlines()[2:]:
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1].startswith(prefix):
            out[parts[1]] = parts[2].strip()
    return out


def register_hosts(broker, vendor_token, lab, trial=True, production=True):
    """Registers the local libvirtd as a trial host (qemu+unix:///system) and a production host
    (qemu:///system): two URIs for one daemon, so one machine holds both pools.
    Returns: {'trial': id, 'production': id}."""
    ids = {}
    if trial:
        r = broker.post('/v1/hosts', {'name': f'{lab.prefix}-trial', 'uri': 'qemu+unix:///system',
                                      'pool': 'trial', 'storage_pool': lab.pool},
                        token=vendor_token)
        assert r.status == 201, r
        ids['trial'] = r.json()['id']
    if production:
        r = broker.post('/v1/hosts', {'name': f'{lab.prefix}-prod', 'uri': URI,
                                      'pool': 'production', 'storage_pool': lab.pool},
                        token=vendor_token)
        assert r.status == 201, r
        ids['production'] = r.json()['id']
    deadline = time.time() + 20
    while time.time() < deadline:
        hosts = broker.get('/v1/hosts', token=vendor_token).json()['items']
        if all(h['connection']['state'] == 'connected' for h in hosts):
            return ids
        time.sleep(0.2)
    raise RuntimeError('hosts did not connect')


# ---- a private libvirtd, and the workflow through the API (test-e2e-hypervisor,
# ---- test-crash-jobs, test-reconciler) ----

import grp  # noqa: E402
import pwd  # noqa: E402
import signal  # noqa: E402

import cbtest  # noqa: E402


def _pid_cmdline(pid):
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            return f.read().replace(b'\0', b' ').decode(errors='replace')
    except OSError:
        return ''


class PrivateLibvirt:
    """A libvirtd of the test's own: unprivileged (qemu:///session), run as 'nobody' when the
    test runs as root, with every folder (socket, configuration, domain state, logs) inside
    @base_dir. Nothing else talks to it, so the broker's domain names (cb-<allocation>-<n>)
    cannot clash with another run's, every domain on it is the test's, and the test may
    freeze, kill and restart it (by the process id it started)."""

    def __init__(self, base_dir, user='nobody', groups=()):
        """@groups: supplementary groups of the daemon (and so of its guests), e.g. ('kvm',)
        to let it open /dev/kvm as a libvirtd of a KVM host does."""
        self.dir = base_dir
        os.makedirs(self.dir, exist_ok=True)
        self.uid = self.gid = None
        self.groups = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam(user)
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            os.chown(self.dir, self.uid, self.gid)
            self.groups = [grp.getgrnam(g).gr_gid for g in groups]
        self.run_dir = os.path.join(self.dir, 'run')
        self.socket = os.path.join(self.run_dir, 'libvirt', 'libvirt-sock')
        self.log_path = os.path.join(self.dir, 'libvirtd.log')
        self.proc = None
        self.log = None

    @property
    def uri(self):
        return f'qemu+unix:///session?socket={self.socket}'

    @property
    def uri_alt(self):
        """A second spelling of the same daemon's URI (hosts need distinct URIs)."""
        return f'qemu:///session?socket={self.socket}'

    def own(self, path):
        """Gives @path to the daemon's user, so it may read and write it."""
        if self.uid is not None:
            os.chown(path, self.uid, self.gid)

    def _env(self):
        return {'HOME': self.dir, 'XDG_RUNTIME_DIR': self.run_dir,
                'XDG_CONFIG_HOME': os.path.join(self.dir, 'config'),
                'XDG_CACHE_HOME': os.path.join(self.dir, 'cache'),
                'XDG_DATA_HOME': os.path.join(self.dir, 'data'),
                'XDG_STATE_HOME': os.path.join(self.dir, 'state'),
                'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LC_ALL': 'C'}

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=30):
        if self.running():
            return self
        kw = {}
        if self.uid is not None:
            kw = {'user': self.uid, 'group': self.gid, 'extra_groups': list(self.groups)}
        if self.log is None:
            self.log = open(self.log_path, 'ab')
        exe = shutil.which('libvirtd') or '/usr/sbin/libvirtd'
        self.proc = subprocess.Popen([exe], env=self._env(), cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True, **kw)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'private libvirtd exited with {self.proc.returncode}; '
                                   f'log in {self.log_path}')
            if os.path.exists(self.socket) and \
                    self.virsh('version', check=False, timeout=10).returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError('the private libvirtd does not answer')

    def virsh(self, *args, check=True, timeout=60):
        return virsh(*args, check=check, uri=self.uri, timeout=timeout)

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def freeze(self):
        self.signal(signal.SIGSTOP)

    def thaw(self):
        self.signal(signal.SIGCONT)

    def kill9(self):
        """SIGKILL to the daemon (its guests go on running, as with a crashed libvirtd)."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout=20):
        if not self.running():
            return
        self.thaw()
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()

    def _leftover_pids(self):
        """Processes this daemon started that outlive it: virtlogd, and guests (QEMU) whose
        command line names this folder."""
        pids = set()
        pidfile = os.path.join(self.run_dir, 'libvirt', 'virtlogd.pid')
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip())
            if 'virtlogd' in _pid_cmdline(pid):
                pids.add(pid)
        except (OSError, ValueError):
            pass
        for name in os.listdir('/proc'):
            if name.isdigit() and int(name) != os.getpid():
                cmd = _pid_cmdline(int(name))
                if 'qemu' in cmd and self.dir in cmd:
                    pids.add(int(name))
        return pids

    def cleanup(self):
        """Removes every domain and pool of the daemon, stops it and what it started."""
        try:
            if not self.running():
                try:
                    self.start()
                except RuntimeError:
                    pass
            self.thaw()
            if self.running():
                for name in self.virsh('list', '--all', '--name', check=False,
                                       timeout=30).stdout.split():
                    self.virsh('destroy', name, check=False, timeout=30)
                    self.virsh('undefine', name, '--nvram', check=False, timeout=30)
                for name in self.virsh('pool-list', '--all', '--name', check=False,
                                       timeout=30).stdout.split():
                    self.virsh('pool-destroy', name, check=False, timeout=30)
                    self.virsh('pool-undefine', name, check=False, timeout=30)
        finally:
            self.stop()
            for pid in self._leftover_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if self.log:
                self.log.close()
                self.log = None


class PrivateLab(Lab):
    """Lab on a PrivateLibvirt: the same pool of boot-sector images and the same policy folder,
    on a daemon nobody else uses. self.uri is the daemon's URI; virsh() talks to it."""

    def __init__(self, lifecycle=None, placement=None, catalog_extra=None, user='nobody',
                 extra_images=None):
        """@extra_images: {name: boot code}: more images, <name>.raw in the pool and in the
        catalog."""
        self.prefix = 'cbt' + uuid.uuid4().hex[:8]
        self.dir = tempfile.mkdtemp(prefix=f'{self.prefix}-')
        os.chmod(self.dir, 0o755)
        self.libvirt = PrivateLibvirt(os.path.join(self.dir, 'libvirt'), user)
        self.uri = self.libvirt.uri
        self.pool = f'{self.prefix}-pool'
        self.pool_dir = os.path.join(self.dir, 'pool')
        try:
            self.libvirt.start()
            os.makedirs(self.pool_dir)
            os.chmod(self.pool_dir, 0o755)
            self.libvirt.own(self.pool_dir)
            extra = dict(extra_images or {})
            for name, code in [('halt.raw', HALT), ('spin.raw', SPIN)] + \
                    [(f'{n}.raw', code) for n, code in extra.items()]:
                boot_image(os.path.join(self.pool_dir, name), code)
                self.libvirt.own(os.path.join(self.pool_dir, name))
            self.virsh('pool-define-as', self.pool, 'dir', '--target', self.pool_dir)
            self.virsh('pool-start', self.pool)
            self.policy_dir = os.path.join(self.dir, 'policies')
            shutil.copytree(POLICIES, self.policy_dir)
            catalog = {'images': [
                {'name': 'halt', 'pool': self.pool, 'volume': 'halt.raw', 'format': 'raw'},
                {'name': 'spin', 'pool': self.pool, 'volume': 'spin.raw', 'format': 'raw'},
            ] + [{'name': n, 'pool': self.pool, 'volume': f'{n}.raw', 'format': 'raw'}
                 for n in extra] + list(catalog_extra or [])}
            self._write('catalog.json', catalog)
            life = self._read('lifecycle.json')
            life.update({'domain_type': 'qemu', 'shutdown_timeout_seconds': 1,
                         'reconcile_seconds': 2, 'job_retry_seconds': 60})
            life.update(lifecycle or {})
            self._write('lifecycle.json', life)
            place = self._read('placement.json')
            place.update({'anti_affinity': False})
            place.update(placement or {})
            self._write('placement.json', place)
        except BaseException:
            self.cleanup()
            raise

    def virsh(self, *args, check=True, timeout=60):
        return self.libvirt.virsh(*args, check=check, timeout=timeout)

    def volumes(self):
        self.virsh('pool-refresh', self.pool, check=False)
        out = self.virsh('vol-list', self.pool).stdout.splitlines()[2:]
        return sorted(line.split()[0] for line in out if line.strip())

    def domains(self):
        """{name: state} of every domain on the private daemon."""
        out = {}
        for line in self.virsh('list', '--all').stdout.splitlines()[2:]:
            parts = line.split(None, 2)
            if len(parts) == 3:
                out[parts[1]] = parts[2].strip()
        return out

    def domain_uuids(self):
        """{uuid: name} of every domain on the private daemon."""
        out = {}
        for name in self.virsh('list', '--all', '--name').stdout.split():
            p = self.virsh('domuuid', name, check=False)
            if p.returncode == 0:
                out[p.stdout.strip()] = name
        return out

    def cleanup(self, domain_prefix=None):
        try:
            self.libvirt.cleanup()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def register_lab_hosts(broker, vendor_token, lab, trial=True, production=True, timeout=30):
    """Registers @lab's daemon as a trial host and as a production host (two URIs for one
    daemon). Returns: {'trial': id, 'production': id}."""
    uris = {'trial': lab.libvirt.uri, 'production': lab.libvirt.uri_alt}
    names = {'trial': f'{lab.prefix}-trial', 'production': f'{lab.prefix}-prod'}
    ids = {}
    for pool, wanted in (('trial', trial), ('production', production)):
        if not wanted:
            continue
        r = broker.post('/v1/hosts', {'name': names[pool], 'uri': uris[pool],
                                      'pool': pool, 'storage_pool': lab.pool},
                        token=vendor_token)
        assert r.status == 201, r
        ids[pool] = r.json()['id']
    wait_for(lambda: all(h['connection']['state'] == 'connected' and h['capacity']['known']
                         for h in broker.get('/v1/hosts', token=vendor_token).json()['items']),
             timeout, 'the hosts to connect')
    return ids


class Workflow:
    """One department with a system, a reviewer, a vendor and an auditor on @broker, @lab's
    daemon registered as trial and production host, and the workflow's moves through the API.
    Each move asserts the status it expects and returns the answer's document."""

    def __init__(self, broker, lab, code='d1', name='民政局', quota=None):
        self.b = broker
        self.lab = lab
        self.dept_id = broker.make_department(code, name, quota)
        _, self.dept = broker.make_account(f'{code}-staff', 'department', self.dept_id)
        _, self.reviewer = broker.make_account('reviewer', 'reviewer')
        _, self.vendor = broker.make_account('vendor', 'vendor')
        _, self.auditor = broker.make_account('auditor', 'auditor')
        self.hosts = register_lab_hosts(broker, self.vendor, lab)
        self.system_id = cbtest.make_system(broker, self.dept, 'oa')

    @staticmethod
    def spec(vcpus=1, memory_mib=64, disk_gib=1, image='halt'):
        return {'vcpus': vcpus, 'memory_mib': memory_mib, 'disk_gib': disk_gib, 'image': image}

    def _ok(self, r, status, what):
        assert r.status == status, f'{what}: {r}'
        return r.json()

    def submit_new(self, instances, justification='cbvirt request'):
        """A 'new' request with its materials, submitted. Returns: its id."""
        r = self.b.post('/v1/requests', {'system': self.system_id, 'kind': 'new',
                                         'justification': justification,
                                         'resources': {'instances': instances}},
                        token=self.dept)
        rid = self._ok(r, 201, 'create request')['id']
        for kind in cbtest.NEW_REQUEST_MATERIALS:
            self._ok(cbtest.upload_material(self.b, self.dept, rid, kind), 201, kind)
        self._ok(self.b.post(f'/v1/requests/{rid}/submit', token=self.dept), 200, 'submit')
        return rid

    def approve(self, rid):
        return self._ok(self.b.post(f'/v1/requests/{rid}/decision', {'decision': 'approve'},
                                    token=self.reviewer), 200, f'approve {rid}')

    def request(self, rid, token=None):
        return self._ok(self.b.get(f'/v1/requests/{rid}', token=token or self.reviewer), 200,
                        f'GET request {rid}')

    def allocation(self, aid, token=None):
        return self._ok(self.b.get(f'/v1/allocations/{aid}', token=token or self.reviewer),
                        200, f'GET allocation {aid}')

    def job(self, jid):
        return self._ok(self.b.get(f'/v1/jobs/{jid}', token=self.vendor), 200, f'GET job {jid}')

    def jobs(self, **query):
        q = '&'.join(f'{k}={v}' for k, v in query.items())
        return self._ok(self.b.get(f'/v1/jobs?limit=1000&{q}', token=self.vendor), 200,
                        'GET jobs')['items']

    def wait_request(self, rid, states, timeout=120):
        return wait_request_state(self.b, self.reviewer, rid, states, timeout)

    def wait_job(self, jid, timeout=120):
        return wait_job(self.b, self.vendor, jid, timeout)

    def wait_allocation(self, aid, states, timeout=120):
        if isinstance(states, str):
            states = (states,)
        return wait_for(lambda: (lambda a: a if a['state'] in states else None)(
            self.allocation(aid)), timeout, f'allocation {aid} to become {states}')

    def upload_report(self, rid, text='trial test report\n'):
        return self._ok(cbtest.upload_material(self.b, self.vendor, rid, 'test_report',
                                               data=text.encode(), media_type='text/plain'),
                        201, 'upload test_report')['sha256']

    def trial_result(self, rid, test, result, sha):
        return self._ok(self.b.post(f'/v1/requests/{rid}/trial-results',
                                    {'test': test, 'result': result, 'report': sha},
                                    token=self.vendor), 201, f'trial result {test}')

    def pass_trial(self, rid):
        """Records three passes (the request must be in_trial). Returns: the last answer."""
        sha = self.upload_report(rid)
        doc = None
        for test in ('function', 'performance', 'security'):
            doc = self.trial_result(rid, test, 'pass', sha)
        return doc

    def to_trial_passed(self, rid, timeout=120):
        """From submitted through approval and the trial; waits for the trial's reclaim.
        Returns: the request's document."""
        self.approve(rid)
        self.wait_request(rid, 'in_trial', timeout)
        self.pass_trial(rid)
        doc = self.request(rid)
        self.wait_allocation(doc['trial']['allocation_id'], 'purged', timeout)
        return self.request(rid)

    def allocate(self, rid):
        return self._ok(self.b.post(f'/v1/requests/{rid}/allocate', token=self.reviewer), 202,
                        f'allocate {rid}')

    def submit_change(self, aid, instances, restart_allowed=False, expect=200):
        """A change request on allocation @aid, submitted. Returns: (id, submit answer)."""
        r = self.b.post('/v1/requests', {'system': self.system_id, 'kind': 'change',
                                         'allocation': aid, 'justification': 'cbvirt change',
                                         'restart_allowed': restart_allowed,
                                         'resources': {'instances': instances}},
                        token=self.dept)
        rid = self._ok(r, 201, 'create change')['id']
        r = self.b.post(f'/v1/requests/{rid}/submit', token=self.dept)
        assert r.status == expect, f'submit change: {r}'
        return rid, r

    def submit_termination(self, aid):
        """A termination request with its backup proof, submitted. Returns: its id."""
        r = self.b.post('/v1/requests', {'system': self.system_id, 'kind': 'termination',
                                         'allocation': aid,
                                         'justification': 'cbvirt termination'},
                        token=self.dept)
        rid = self._ok(r, 201, 'create termination')['id']
        self._ok(cbtest.upload_material(self.b, self.dept, rid, 'backup_proof',
                                        data=b'backup done\n', media_type='text/plain'),
                 201, 'backup_proof')
        self._ok(self.b.post(f'/v1/requests/{rid}/submit', token=self.dept), 200,
                 'submit termination')
        return rid

    def instances(self):
        """Every instance of every allocation: [(allocation document, instance document)]."""
        out = []
        after = 0
        while True:
            page = self._ok(self.b.get(f'/v1/allocations?limit=1000&after={after}',
                                       token=self.reviewer), 200, 'GET allocations')
            for a in page['items']:
                full = self.allocation(a['id'])
                out.extend((full, i) for i in full['instances'])
            if not page.get('next'):
                return out
            after = page['next']


def job_of(doc, kind=None):
    """The newest job (of @kind) a request's document lists, as its id."""
    jobs = [j for j in doc.get('jobs') or [] if kind is None or j.get('kind') == kind]
    assert jobs, f'no {kind or ""} job in {doc.get("jobs")}'
    return max(j['id'] for j in jobs)


# ---- the metering agent (test-metering-agent) ----

AGENT = os.path.join(cbtest.BUILD, 'agent', 'cloudbroker-agent')


def parse_metrics(text):
    """Prometheus text format → {(name, frozenset of (label, value)): float}."""
    import re
    out = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                      m.group(3) or ''))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


class Agent:
    """A cloudbroker-agent process metering @uri for @broker_url with a token file, a spool
    and /metrics on a port of its own, all in @workdir. start() may be called again after
    stop() or kill9(): the spool (and so the meters' state) carries over."""

    def __init__(self, broker_url, uri, token, workdir, interval=1, window=10, extra=()):
        self.broker_url = broker_url
        self.uri = uri
        self.dir = workdir
        os.makedirs(self.dir, exist_ok=True)
        self.token_file = os.path.join(self.dir, 'agent.token')
        with open(self.token_file, 'w') as f:
            f.write(token + '\n')
        os.chmod(self.token_file, 0o600)
        self.spool = os.path.join(self.dir, 'spool.db')
        self.log_path = os.path.join(self.dir, 'agent.log')
        self.interval = interval
        self.window = window
        self.extra = list(extra)
        self.port = free_port()
        self.proc = None

    def args(self, extra=()):
        return [AGENT, '--uri', self.uri, '--broker', self.broker_url, '--token-file',
                self.token_file, '--spool', self.spool, '--interval', str(self.interval),
                '--window', str(self.window), '--metrics-listen', f'127.0.0.1:{self.port}',
                '--verbose'] + self.extra + list(extra)

    def start(self, extra=(), timeout=20):
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen(self.args(extra), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        wait_for(lambda: self.proc.poll() is not None or self.metrics(), timeout,
                 'the agent to serve /metrics')
        if self.proc.poll() is not None:
            raise RuntimeError(f'cloudbroker-agent exited with {self.proc.returncode}; '
                               f'log in {self.log_path}')
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def metrics(self):
        """{(name, labels): value} from /metrics, or {} when it does not answer."""
        import http.client
        try:
            c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=5)
            c.request('GET', '/metrics')
            r = c.getresponse()
            body = r.read().decode()
            c.close()
            return parse_metrics(body) if r.status == 200 else {}
        except OSError:
            return {}

    def metric(self, metric_name, default=None, **labels):
        """The value of @metric_name whose labels include @labels (the first one), or
        @default."""
        want = set((k, str(v)) for k, v in labels.items())
        for (n, ls), v in self.metrics().items():
            if n == metric_name and want <= ls:
                return v
        return default

    def stop(self, timeout=20):
        """SIGTERM and wait. Returns: the exit status."""
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()

    def log(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''


def start_agent(broker, lab, token, interval=1, window=10, uri=None, extra=()):
    """Starts a cloudbroker-agent for @broker on @lab's libvirtd (its own daemon for a
    PrivateLab) with the host's agent @token, in a folder of the lab. Returns: the Agent."""
    uri = uri or getattr(lab, 'uri', URI)
    return Agent(broker.url, uri, token, os.path.join(lab.dir, 'agent'), interval, window,
                 extra).start()
