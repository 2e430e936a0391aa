#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Host-cost benchmark (issue 13): what metering costs the whole host, not the agent alone.

On a libvirtd of its own (cbvirt.PrivateLibvirt, so its CPU is only this benchmark's), with
50, 100 and 150 tiny real QEMU guests (as many as fit), it measures per domain and per 10 s
cycle the CPU time of the collector, of libvirtd and of all the QEMU processes (utime + stime
from /proc/PID/stat, over the idle baseline), for, side by side in one run:
  - the tiered cloudbroker-agent (the default: balloon and block every 60 s, staggered),
  - the all-groups agent (--slow-interval equal to the interval: the six groups every cycle
    in one bulk call, as before the tiers),
  - `virsh domstats` with the same six groups, one process per cycle,
  - prometheus-libvirt-exporter, one scrape per cycle,
and extrapolates the tiered agent's host cost to 1,000 domains at 10 s.

Needs root, virsh, qemu-system-x86_64, ip (iproute2); prometheus-libvirt-exporter when
installed. See README.md ("Metering: host cost")."""
import concurrent.futures
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meterlib  # noqa: E402
from meterlib import log, die, env_int, median, table  # noqa: E402

sys.path.insert(0, os.path.join(meterlib.SOURCE, 'tests', 'integration'))
import cbvirt  # noqa: E402

SCALES = [int(x) for x in os.environ.get('BENCH_SCALES', '50,100,150').split(',') if x]
PHASE = env_int('BENCH_PHASE', 60)        # seconds per collector and scale
INTERVAL = env_int('BENCH_INTERVAL', 10)  # the cycle
SLOW = env_int('BENCH_SLOW', 60)          # the tiered agent's slow interval
GUEST_MIB = env_int('BENCH_GUEST_MIB', 64)
COLLECTORS = [c for c in os.environ.get('BENCH_COLLECTORS',
                                        'tiered,all-groups,virsh,exporter').split(',') if c]
EXPORTER = shutil.which('prometheus-libvirt-exporter')
# 'private': a libvirtd of the benchmark's own (qemu:///session as nobody: no cgroups, so
# cpu-total reads /proc); 'system': the host's qemu:///system (cgroups, as in production),
# whose libvirtd may also serve others meanwhile.
LIBVIRT = os.environ.get('BENCH_LIBVIRT', 'private')
GROUPS = ['--state', '--cpu-total', '--balloon', '--vcpu', '--interface', '--block']
# cli; hlt; jmp back: the vCPU sleeps for good (no timer interrupt wakes it); and the machine
# without its PIT and HPET (whose 18.2 Hz ticks QEMU's main loop would emulate for nothing):
# an idle guest then costs its QEMU next to no CPU, so the baseline the figures are measured
# over stays flat. Neither changes how libvirt and QEMU answer statistics.
IDLE = b'\xfa\xf4\xeb\xfd'

DOMAIN_XML = """<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <metadata>
    <cloudbroker:instance xmlns:cloudbroker="urn:x-cloudbroker:instance:1">
      <cloudbroker:instance id="{iid}" index="0"/>
    </cloudbroker:instance>
  </metadata>
  <memory unit='MiB'>{mib}</memory>
  <currentMemory unit='MiB'>{mib}</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='ethernet'>{target}
      <model type='virtio'/>
    </interface>
    <memballoon model='virtio'><stats period='10'/></memballoon>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-machine'/>
    <qemu:arg value='pit=off,hpet=off'/>
  </qemu:commandline>
</domain>
"""


def cpu_of(pids):
    """utime + stime of @pids (all threads), seconds; a process gone meanwhile counts 0."""
    total = 0.0
    for p in pids:
        try:
            total += meterlib.proc_cpu_seconds(p)
        except OSError:
            pass
    return total


class Host:
    """The libvirtd (private or the system's), the guests and their taps."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.prefix = 'cbh' + uuid.uuid4().hex[:5]
        self.lv = None
        self.lock = None
        self.disks = os.path.join(tmp, 'disks')
        os.makedirs(self.disks)
        os.chmod(self.disks, 0o755)
        if LIBVIRT == 'system':
            # Like the tests on the system libvirtd: one at a time (cbvirt.Lab's lock).
            import fcntl
            self.lock = open('/tmp/cloudbroker-test-lab.lock', 'w')
            fcntl.flock(self.lock, fcntl.LOCK_EX)
            cbvirt.ensure_daemons()
            self.uri = cbvirt.URI
            self.lv_dir = self.prefix  # QEMU command lines name the guest: guest=<prefix>-dNNN
        else:
            self.lv = cbvirt.PrivateLibvirt(os.path.join(tmp, 'libvirt'))
            self.lv.start()
            self.uri = self.lv.uri
            self.lv_dir = self.lv.dir
            self.lv.own(self.disks)
        self.names = []
        self.taps = []

    def virsh(self, *args, timeout=60):
        return cbvirt.virsh(*args, uri=self.uri, timeout=timeout)

    def own(self, path):
        if self.lv:
            self.lv.own(path)

    def libvirtd_pid(self):
        if self.lv:
            return self.lv.proc.pid
        return int(subprocess.run(['pgrep', '-o', '-x', 'libvirtd'], capture_output=True,
                                  text=True, check=True).stdout.split()[0])

    def _one(self, i):
        name = f'{self.prefix}-d{i:03d}'
        tap = f'{self.prefix}t{i:03d}'  # at most 15 characters
        disk = os.path.join(self.disks, f'{name}.raw')
        cbvirt.boot_image(disk, IDLE)
        self.own(disk)
        if self.lv:
            # An unprivileged libvirtd cannot make taps: one made beforehand, owned by its user.
            subprocess.run(['ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap', 'user',
                            str(self.lv.uid if self.lv.uid is not None else os.getuid())],
                           check=True, capture_output=True)
            self.taps.append(tap)
            subprocess.run(['ip', 'link', 'set', tap, 'up'], check=True, capture_output=True)
            target = f"\n      <target dev='{tap}' managed='no'/>"
        else:
            target = ''  # libvirtd makes the tap
        xml = os.path.join(self.tmp, f'{name}.xml')
        with open(xml, 'w') as f:
            f.write(DOMAIN_XML.format(name=name, uuid=str(uuid.uuid4()), iid=900000 + i,
                                      disk=disk, target=target, mib=GUEST_MIB))
        self.own(xml)
        self.virsh('create', xml, timeout=180)
        return name

    def grow(self, n):
        """Starts guests until @n run. Returns: how many run (fewer when no more fit)."""
        have = len(self.names)
        if n <= have:
            return have
        log(f'starting guests {have}..{n - 1}')
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(self._one, i) for i in range(have, n)]
            for f in futs:
                try:
                    self.names.append(f.result())
                except (RuntimeError, subprocess.CalledProcessError) as e:
                    log(f'a guest did not start ({str(e)[:200]}): stopping at what fits')
        return sum(1 for line in self.virsh('list', '--name').stdout.split()
                   if line.startswith(self.prefix))

    def qemu_pids(self):
        pids = []
        for d in os.listdir('/proc'):
            if d.isdigit():
                cmd = cbvirt._pid_cmdline(int(d))
                if 'qemu-system' in cmd and self.lv_dir in cmd:
                    pids.append(int(d))
        return pids

    def cleanup(self):
        try:
            if self.lv:
                self.lv.cleanup()
            else:
                for name in self.names:
                    cbvirt.virsh('destroy', name, check=False, timeout=60)
                left = [n for n in cbvirt.virsh('list', '--all', '--name',
                                                check=False).stdout.split()
                        if n.startswith(self.prefix)]
                if left:
                    log(f'WARNING: domains left over: {left}')
        finally:
            for tap in self.taps:
                subprocess.run(['ip', 'link', 'del', tap], capture_output=True)
            if self.lock:
                self.lock.close()


def sleep_to_boundary(offset):
    """Until @offset seconds past the next multiple of INTERVAL on the wall clock."""
    now = time.time()
    nxt = (int(now) // INTERVAL + 1) * INTERVAL + offset
    time.sleep(max(0.0, nxt - now))


class Bench:
    def __init__(self):
        self.tmp = meterlib.tmpdir('cbhostcost-')
        self.host = None
        self.procs = []
        self.rows = {}  # (scale, collector) -> figures

    # ---- one measured phase: CPU of the collector, libvirtd and QEMU over PHASE seconds
    def measure(self, n, name, own_cpu, work):
        """Runs @work(deadline) from a cycle boundary (+3 s) for PHASE seconds; @own_cpu()
        gives the collector's CPU seconds so far. Returns: the figures."""
        qemu = self.host.qemu_pids()
        lv_pid = self.host.libvirtd_pid()
        sleep_to_boundary(3)
        q0, l0, o0, t0 = cpu_of(qemu), cpu_of([lv_pid]), own_cpu(), time.time()
        extra = work(t0 + PHASE) or {}
        now = time.time()
        if now < t0 + PHASE:
            time.sleep(t0 + PHASE - now)
        q1, l1, o1, t1 = cpu_of(qemu), cpu_of([lv_pid]), own_cpu(), time.time()
        r = {'qemu': q1 - q0, 'libvirtd': l1 - l0, 'own': o1 - o0, 'wall': t1 - t0,
             'cycles': PHASE / INTERVAL, 'domains': n}
        r.update(extra)
        log(f'{n} domains, {name}: own {r["own"]:.3f} s, libvirtd {r["libvirtd"]:.3f} s, '
            f'QEMU {r["qemu"]:.3f} s over {r["wall"]:.1f} s')
        return r

    def baseline(self, n):
        return self.measure(n, 'idle', lambda: 0.0, lambda deadline: None)

    # ---- the agent, tiered or all groups
    def agent_phase(self, n, slow):
        sink = meterlib.Sink()
        token = os.path.join(self.tmp, 'agent.token')
        with open(token, 'w') as f:
            f.write('cbh_bench\n')
        os.chmod(token, 0o600)
        spool = os.path.join(self.tmp, f'spool-{n}-{slow}.db')
        port = meterlib.free_port()
        log_f = open(os.path.join(self.tmp, f'agent-{n}-{slow}.log'), 'wb')
        agent_bin = os.path.join(self.tmp, 'cloudbroker-agent')
        if not os.path.exists(agent_bin):
            shutil.copy2(meterlib.AGENT, agent_bin)
        proc = subprocess.Popen(
            [agent_bin, '--uri', self.host.uri, '--broker', sink.url, '--token-file', token,
             '--spool', spool, '--interval', str(INTERVAL), '--window', '300',
             '--slow-interval', str(slow), '--metrics-listen', f'127.0.0.1:{port}'],
            stdout=log_f, stderr=log_f)
        self.procs.append(proc)

        def metrics():
            st, body = meterlib.http_call(port, 'GET', '/metrics', timeout=30)
            return meterlib.prom_values(body.decode())
        try:
            meterlib.wait_http(port, '/metrics')
            # Warm-up: the first cycle reads every domain's metadata (and vCPU count).
            deadline = time.time() + 20 * INTERVAL
            while time.time() < deadline:
                m = metrics()
                if m.get('cloudbroker_agent_domains', 0) >= n and \
                        m.get('cloudbroker_agent_cycles_total', 0) >= 2:
                    break
                time.sleep(1)
            else:
                die(f'the agent does not see {n} domains: {metrics()}')
            m0 = {}
            cycle_times = []

            def work(deadline):
                nonlocal m0
                m0 = metrics()
                last = m0.get('cloudbroker_agent_cycles_total', 0)
                while time.time() < deadline - 1:
                    time.sleep(1)
                    m = metrics()
                    if m.get('cloudbroker_agent_cycles_total', 0) == last + 1:
                        cycle_times.append(m['cloudbroker_agent_cycle_seconds'])
                    last = m.get('cloudbroker_agent_cycles_total', 0)
                return None
            r = self.measure(n, f'agent --slow-interval {slow}',
                             lambda: meterlib.proc_cpu_seconds(proc.pid), work)
            m1 = metrics()
            r['agent_cycles'] = m1['cloudbroker_agent_cycles_total'] - \
                m0['cloudbroker_agent_cycles_total']
            r['slow_reads'] = m1.get('cloudbroker_agent_slow_reads_total', 0) - \
                m0.get('cloudbroker_agent_slow_reads_total', 0)
            r['shed'] = m1.get('cloudbroker_agent_slow_shed_total', 0) - \
                m0.get('cloudbroker_agent_slow_shed_total', 0)
            r['cycle_s'] = median(cycle_times) if cycle_times else float('nan')
            return r
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log_f.close()
            sink.stop()

    # ---- virsh domstats, one process per cycle
    def virsh_phase(self, n):
        used = [0.0]
        times = []

        def work(deadline):
            while True:
                t = time.time()
                if t + INTERVAL > deadline + 0.5:
                    break
                p = subprocess.Popen(['virsh', '-c', self.host.uri, 'domstats'] + GROUPS,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                _, status, ru = os.wait4(p.pid, 0)
                p.returncode = 0
                times.append(time.time() - t)
                used[0] += ru.ru_utime + ru.ru_stime
                if status != 0:
                    die(f'virsh domstats failed ({status})')
                sleep_to_boundary(3)
            return {'cycle_s': median(times) if times else float('nan')}
        r = self.measure(n, 'virsh domstats', lambda: used[0], work)
        r['cycles'] = len(times)
        return r

    # ---- prometheus-libvirt-exporter, one scrape per cycle
    def exporter_phase(self, n):
        if not EXPORTER:
            return None
        port = meterlib.free_port()
        log_f = open(os.path.join(self.tmp, f'exporter-{n}.log'), 'wb')
        proc = subprocess.Popen([EXPORTER, f'--web.listen-address=127.0.0.1:{port}',
                                 f'--libvirt.uri={self.host.uri}'], stdout=log_f, stderr=log_f)
        self.procs.append(proc)
        times = []
        try:
            meterlib.wait_http(port, '/')
            for _ in range(2):
                st, body = meterlib.http_call(port, 'GET', '/metrics', timeout=120)
            seen = sum(1 for line in body.decode().splitlines()
                       if line.startswith('libvirt_domain_info_virtual_cpus{'))
            if st != 200 or seen < n:
                die(f'the exporter answers {st} and sees {seen} of {n} domains')

            def work(deadline):
                while True:
                    t = time.time()
                    if t + INTERVAL > deadline + 0.5:
                        break
                    st, _ = meterlib.http_call(port, 'GET', '/metrics', timeout=120)
                    times.append(time.time() - t)
                    if st != 200:
                        die(f'exporter answered {st}')
                    sleep_to_boundary(3)
                return {'cycle_s': median(times) if times else float('nan')}
            r = self.measure(n, 'exporter', lambda: meterlib.proc_cpu_seconds(proc.pid), work)
            r['cycles'] = len(times)
            return r
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log_f.close()

    def run(self):
        self.host = Host(self.tmp)
        for want in SCALES:
            n = self.host.grow(want)
            if n < want:
                log(f'only {n} guests run: measuring at {n} and stopping there')
            time.sleep(5)  # let the new guests settle before the baseline
            # An idle phase before and after each collector: its cost is over the mean of the
            # two, so a drift of the guests' own CPU (other load on the host) cancels out.
            idle = [self.baseline(n)]
            self.rows[(n, 'idle')] = idle
            for c in COLLECTORS:
                if c == 'tiered':
                    r = self.agent_phase(n, SLOW)
                elif c == 'all-groups':
                    r = self.agent_phase(n, INTERVAL)
                elif c == 'virsh':
                    r = self.virsh_phase(n)
                elif c == 'exporter':
                    r = self.exporter_phase(n)
                else:
                    die(f'unknown collector {c}')
                if r:
                    r['idle'] = (idle[-1], self.baseline(n))
                    idle.append(r['idle'][1])
                    self.rows[(n, c)] = r
            if n < want:
                break

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.host:
            self.host.cleanup()
        if os.environ.get('BENCH_KEEP') == '1':
            log(f'kept {self.tmp}')
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- the report
    def per_domain_cycle(self, n, c):
        """{own, libvirtd, qemu, host} CPU ms per domain per cycle over the idle baseline."""
        r = self.rows.get((n, c))
        if not r:
            return None
        idle = r['idle']
        rate = {k: sum(i[k] for i in idle) / sum(i['wall'] for i in idle)
                for k in ('qemu', 'libvirtd')}
        cycles = r['cycles'] or 1
        out = {'own': r['own']}
        for k in ('qemu', 'libvirtd'):
            out[k] = r[k] - rate[k] * r['wall']
        out = {k: v * 1000 / (cycles * n) for k, v in out.items()}
        out['host'] = out['own'] + out['libvirtd'] + out['qemu']
        return out

    def report(self):
        scales = sorted({n for n, c in self.rows if c == 'idle'})
        print()
        print(f'Host cost of metering: CPU ms per domain per {INTERVAL} s cycle (utime+stime '
              f'from /proc, over the idle baseline); TCG guests, 1 vCPU, {GUEST_MIB} MiB, '
              f'1 disk, 1 NIC; phases of {PHASE} s; tiered: balloon and block every {SLOW} s; '
              f'libvirtd: {"qemu:///system" if LIBVIRT == "system" else "a private one"}')
        rows = []
        for n in scales:
            idle = self.rows[(n, 'idle')]
            w = sum(i['wall'] for i in idle)
            rows.append([n, 'idle (per domain per cycle)', '-',
                         f'{sum(i["libvirtd"] for i in idle) / w * INTERVAL * 1000 / n:.2f}',
                         f'{sum(i["qemu"] for i in idle) / w * INTERVAL * 1000 / n:.2f}',
                         '-', '-', ''])
            for c in COLLECTORS:
                f = self.per_domain_cycle(n, c)
                if not f:
                    continue
                r = self.rows[(n, c)]
                note = ''
                if 'slow_reads' in r:
                    note = f'{r["agent_cycles"]:.0f} cycles, slow reads {r["slow_reads"]:.0f}, ' \
                           f'shed {r["shed"]:.0f}'
                else:
                    note = f'{r["cycles"]} runs'
                rows.append([n, c, f'{f["own"]:.2f}', f'{f["libvirtd"]:.2f}', f'{f["qemu"]:.2f}',
                             f'{f["host"]:.2f}', f'{r.get("cycle_s", float("nan")) * 1000:.0f}',
                             note])
        table(rows, ['domains', 'collector', 'collector', 'libvirtd', 'QEMU', 'host',
                     'cycle ms', ''])
        print()
        goals = []
        big, small = scales[-1], scales[0]
        tier_big = self.per_domain_cycle(big, 'tiered')
        all_big = self.per_domain_cycle(big, 'all-groups')
        tier_small = self.per_domain_cycle(small, 'tiered')
        if tier_big and all_big:
            ratio = all_big['host'] / tier_big['host'] if tier_big['host'] > 0 else float('inf')
            goals.append([f'all-groups / tiered host cost at {big} domains', f'{ratio:.1f}x',
                          '>= 5x', 'PASS' if ratio >= 5 else 'MISS'])
        if tier_big and tier_small and big != small:
            g = tier_big['host'] / tier_small['host'] if tier_small['host'] > 0 else float('inf')
            goals.append([f'tiered per-domain cost, {big} / {small} domains', f'{g:.2f}',
                          '<= 1.30', 'PASS' if g <= 1.3 else 'MISS'])
        if tier_big:
            # Per domain per cycle at the largest scale, times 1,000 domains, per 10 s.
            core = tier_big['host'] / 1000 * 1000 / INTERVAL
            goals.append(['tiered, 1,000 domains / 10 s, from the per-domain cost at '
                          f'{big}', f'{core * 100:.1f} % of a core', '< 10 %',
                          'PASS' if core < 0.10 else 'MISS'])
            pts = [(n, self.per_domain_cycle(n, 'tiered')['host'] * n) for n in scales
                   if self.per_domain_cycle(n, 'tiered')]
            if len(pts) >= 2:
                # Least squares of the cost per cycle against the domains: a + b n.
                mx = sum(p[0] for p in pts) / len(pts)
                my = sum(p[1] for p in pts) / len(pts)
                sxx = sum((p[0] - mx) ** 2 for p in pts)
                b = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else 0
                a = my - b * mx
                core_fit = (a + b * 1000) / 1000 / INTERVAL
                goals.append(['  same, from the linear fit over the scales '
                              f'({a:.0f} ms + {b:.2f} ms x domains per cycle)',
                              f'{core_fit * 100:.1f} % of a core', '< 10 %',
                              'PASS' if core_fit < 0.10 else 'MISS'])
            if all_big:
                core_all = all_big['host'] / 1000 * 1000 / INTERVAL
                goals.append(['(info) all-groups, 1,000 domains / 10 s',
                              f'{core_all * 100:.0f} % of a core', '', ''])
        table(goals, ['goal', 'measured', 'target', ''])
        print()


def main():
    if os.geteuid() != 0:
        die('needs root: the guests get taps made by ip tuntap')
    for tool in ('virsh', 'qemu-system-x86_64', 'libvirtd', 'ip'):
        if not shutil.which(tool):
            die(f'{tool} is not installed')
    if not os.access(meterlib.AGENT, os.X_OK):
        die(f'{meterlib.AGENT} is not built: ninja -C build')
    if PHASE % SLOW or SLOW % INTERVAL:
        die('BENCH_PHASE must be a multiple of BENCH_SLOW, and that of BENCH_INTERVAL: a phase '
            'then holds every slot of the tiered agent the same number of times')
    if not EXPORTER and 'exporter' in COLLECTORS:
        log('prometheus-libvirt-exporter is not installed: no exporter figures')
    b = Bench()

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.time()
    load0 = os.getloadavg()[0]
    try:
        b.run()
    except KeyboardInterrupt:
        log('interrupted: cleaning up')
        b.cleanup()
        sys.exit(130)
    except BaseException:
        b.cleanup()
        raise
    b.cleanup()
    b.report()
    print(f'(run took {time.time() - t0:.0f} s; load average {load0:.2f} at the start, '
          f'{os.getloadavg()[0]:.2f} at the end; other work on this host disturbs the figures)')


if __name__ == '__main__':
    main()
