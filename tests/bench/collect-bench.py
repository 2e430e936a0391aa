#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Collection benchmark (issue 4, benchmark 1): how long one cloudbroker-agent cycle takes on a
host with 50 running domains, side by side with `virsh domstats` over the same stats groups and
with a scrape of prometheus-libvirt-exporter; and the agent's CPU time per cycle and its RSS.

Needs root (qemu:///system), virsh and qemu-system-x86_64; prometheus-libvirt-exporter,
hyperfine and perf are used when installed. See README.md ("Metering: collection")."""
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meterlib  # noqa: E402
from meterlib import log, die, env_int, median, percentile, table  # noqa: E402

sys.path.insert(0, os.path.join(meterlib.SOURCE, 'tests', 'integration'))
import cbvirt  # noqa: E402

URI = 'qemu:///system'
GROUPS = ['--state', '--cpu-total', '--balloon', '--vcpu', '--interface', '--block']
N_DOMAINS = env_int('BENCH_DOMAINS', 50)
CYCLES = env_int('BENCH_CYCLES', 60)      # agent cycles per phase (--interval 1: seconds)
RUNS = env_int('BENCH_RUNS', 30)          # virsh runs and exporter scrapes
EXPORTER = shutil.which('prometheus-libvirt-exporter')
HYPERFINE = shutil.which('hyperfine')
PERF = shutil.which('perf') if os.environ.get('BENCH_PERF_PROBE', '1') != '0' else None

DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <metadata>
    <cloudbroker:instance xmlns:cloudbroker="urn:x-cloudbroker:instance:1">
      <cloudbroker:instance id="{iid}" index="0"/>
    </cloudbroker:instance>
  </metadata>
  <memory unit='MiB'>64</memory>
  <currentMemory unit='MiB'>64</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='ethernet'><model type='virtio'/></interface>
    <memballoon model='virtio'><stats period='10'/></memballoon>
  </devices>
</domain>
"""


def fmt_ms(s):
    return f'{s * 1000:.2f}'


class Bench:
    def __init__(self):
        self.lab = None
        self.tmp = meterlib.tmpdir('cbcollect-')
        self.names = []
        self.agent = None
        self.exporter = None
        self.sink = None
        self.probes = False
        self.results = {}

    # ---- domains
    def make_domains(self):
        self.lab = cbvirt.Lab()   # takes the shared libvirtd's test lock, like the tests
        prefix = self.lab.prefix
        log(f'defining and starting {N_DOMAINS} domains {prefix}-dNN (transient, halting guests)')

        def one(i):
            name = f'{prefix}-d{i:02d}'
            disk = os.path.join(self.lab.pool_dir, f'{name}.raw')
            cbvirt.boot_image(disk, cbvirt.HALT)
            xml = os.path.join(self.tmp, f'{name}.xml')
            with open(xml, 'w') as f:
                f.write(DOMAIN_XML.format(name=name, uuid=str(uuid.uuid4()), iid=900000 + i,
                                          disk=disk))
            cbvirt.virsh('create', xml, timeout=120)
            return name

        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            self.names = list(ex.map(one, range(N_DOMAINS)))
        running = cbvirt.domains(prefix)
        if sum(1 for s in running.values() if s == 'running') != N_DOMAINS:
            die(f'not all domains run: {running}')
        others = [n for n in cbvirt.virsh('list', '--name').stdout.split()
                  if n and not n.startswith(prefix)]
        self.results['other_domains'] = others
        if others:
            log(f'note: {len(others)} other running domain(s) on the host are measured too: '
                f'{others}')

    # ---- the agent
    def start_agent(self):
        self.sink = meterlib.Sink()
        # A copy of the binary: uprobes attach to this file only, not to the build tree's.
        self.agent_bin = os.path.join(self.tmp, 'cloudbroker-agent')
        shutil.copy2(meterlib.AGENT, self.agent_bin)
        token = os.path.join(self.tmp, 'agent.token')
        with open(token, 'w') as f:
            f.write('cbh_bench\n')
        os.chmod(token, 0o600)
        self.metrics_port = meterlib.free_port()
        self.agent_log = open(os.path.join(self.tmp, 'agent.log'), 'wb')
        self.agent = subprocess.Popen(
            [self.agent_bin, '--uri', URI, '--broker', self.sink.url, '--token-file', token,
             '--spool', os.path.join(self.tmp, 'spool.db'), '--interval', '1', '--window', '10',
             # The tiers off: every group in one call, as virsh is timed with (the tiered
             # agent's host cost: host-cost-bench.py).
             '--slow-interval', '1',
             '--metrics-listen', f'127.0.0.1:{self.metrics_port}'],
            stdout=self.agent_log, stderr=self.agent_log)
        meterlib.wait_http(self.metrics_port, '/metrics')
        # Warm-up: the first cycles read every domain's metadata once.
        deadline = time.time() + 60
        while time.time() < deadline:
            m = self.metrics()
            if m.get('cloudbroker_agent_domains', 0) >= N_DOMAINS and \
                    m.get('cloudbroker_agent_cycles_total', 0) >= 5:
                break
            time.sleep(0.5)
        else:
            die(f'the agent does not see {N_DOMAINS} domains: {self.metrics()}')

    def metrics(self):
        st, body = meterlib.http_call(self.metrics_port, 'GET', '/metrics', timeout=10)
        return meterlib.prom_values(body.decode())

    def agent_cpu_rss(self):
        """Phase A: CPU time and memory over CYCLES cycles, /metrics read only at both ends."""
        pid = self.agent.pid
        m0 = self.metrics()
        c0 = meterlib.proc_cpu_seconds(pid)
        time.sleep(CYCLES)
        c1 = meterlib.proc_cpu_seconds(pid)
        m1 = self.metrics()
        cycles = m1['cloudbroker_agent_cycles_total'] - m0['cloudbroker_agent_cycles_total']
        self.results['agent_cpu_per_cycle'] = (c1 - c0) / cycles
        self.results['agent_cycles_a'] = cycles
        self.results['agent_rss_kib'] = meterlib.proc_status_kib(pid, 'VmRSS')
        self.results['agent_hwm_kib'] = meterlib.proc_status_kib(pid, 'VmHWM')
        self.results['agent_threads'] = meterlib.proc_status_kib(pid, 'Threads')
        self.results['agent_domains'] = m1.get('cloudbroker_agent_domains')
        self.results['agent_pushed'] = m1.get('cloudbroker_agent_pushed_total')

    def agent_cycle_times(self):
        """Phase B: cloudbroker_agent_cycle_seconds after every cycle; with perf, the whole
        ag_agent_cycle() (entry to return, spool commit included) from uprobes."""
        perf = None
        if PERF:
            perf = self.start_probe()
        seen = {}
        m = self.metrics()
        last = m['cloudbroker_agent_cycles_total']
        deadline = time.time() + CYCLES * 3
        while len(seen) < CYCLES and time.time() < deadline:
            time.sleep(0.2)
            m = self.metrics()
            c = m['cloudbroker_agent_cycles_total']
            if c != last:
                if c == last + 1:   # the gauge belongs to cycle c; skip if one was missed
                    seen[c] = m['cloudbroker_agent_cycle_seconds']
                last = c
        self.results['agent_cycle'] = list(seen.values())
        if perf:
            self.results['agent_full_cycle'] = self.stop_probe(perf)

    def start_probe(self):
        group = 'cbbench' + uuid.uuid4().hex[:6]
        for spec in (f'{group}:cyc=ag_agent_cycle', f'{group}:cycret=ag_agent_cycle%return'):
            p = subprocess.run([PERF, 'probe', '-q', '-x', self.agent_bin, '-a', spec],
                               capture_output=True, text=True)
            if p.returncode != 0:
                log(f'perf probe failed, no full-cycle figure: {p.stderr.strip()[:300]}')
                self.remove_probes(group)
                return None
        self.probes = group
        data = os.path.join(self.tmp, 'perf.data')
        proc = subprocess.Popen([PERF, 'record', '-q', '-o', data, '-e', f'{group}:cyc',
                                 '-e', f'{group}:cycret__return', '-p', str(self.agent.pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        return proc, data

    def stop_probe(self, perf):
        proc, data = perf
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        out = subprocess.run([PERF, 'script', '-i', data, '-F', 'time,event'],
                             capture_output=True, text=True).stdout
        durations, start = [], None
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            t = float(parts[0].rstrip(':'))
            if 'cycret' in line:
                if start is not None:
                    durations.append(t - start)
                start = None
            elif ':cyc' in line:
                start = t
        self.remove_probes(self.probes)
        return durations

    def remove_probes(self, group):
        if group and PERF:
            subprocess.run([PERF, 'probe', '-q', '-d', f'{group}:*'], capture_output=True)
        self.probes = False

    def stop_agent(self):
        if self.agent and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(30)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
        self.agent = None
        if self.sink:
            self.results['sink_posts'] = self.sink.server.posts
            self.sink.stop()
            self.sink = None

    # ---- virsh
    def virsh_domstats(self):
        cmd = ['virsh', '-c', URI, 'domstats'] + GROUPS
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        self.results['virsh_domains'] = out.count('Domain: ')
        times = []
        if HYPERFINE:
            jf = os.path.join(self.tmp, 'hyperfine.json')
            subprocess.run([HYPERFINE, '-N', '--warmup', '3', '--runs', str(RUNS), '--style',
                            'none', '--export-json', jf, ' '.join(cmd)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(jf) as f:
                times = json.load(f)['results'][0]['times']
            self.results['virsh_tool'] = 'hyperfine -N'
        else:
            for i in range(RUNS + 3):
                t0 = time.perf_counter()
                subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
                if i >= 3:
                    times.append(time.perf_counter() - t0)
            self.results['virsh_tool'] = 'a loop of subprocess runs'
        self.results['virsh'] = times
        # Extra figure: the call alone inside one virsh session (no process start, no connect):
        # K calls in one process minus one call in one process, over K - 1.
        k = 11
        one = ' '.join(['domstats'] + GROUPS)
        many = ' ; '.join([one] * k)
        t1, tk = [], []
        for _ in range(5):
            for cmdline, acc in ((one, t1), (many, tk)):
                t0 = time.perf_counter()
                subprocess.run(['virsh', '-c', URI, cmdline], stdout=subprocess.DEVNULL,
                               check=True)
                acc.append(time.perf_counter() - t0)
        self.results['virsh_in_session'] = (median(tk) - median(t1)) / (k - 1)
        # Where a bulk call's time goes: each group alone, in one session the same way. The
        # groups that ask QEMU (balloon, block, vcpu: QMP commands per domain) cost the most.
        groups = {}
        k = 5
        for g in GROUPS:
            one = f'domstats {g}'
            many = ' ; '.join([one] * k)
            t1, tk = [], []
            for _ in range(3):
                for cmdline, acc in ((one, t1), (many, tk)):
                    t0 = time.perf_counter()
                    subprocess.run(['virsh', '-c', URI, cmdline], stdout=subprocess.DEVNULL,
                                   check=True)
                    acc.append(time.perf_counter() - t0)
            groups[g] = max(0.0, (median(tk) - median(t1)) / (k - 1))
        self.results['virsh_groups'] = groups

    # ---- prometheus-libvirt-exporter
    def exporter_scrapes(self):
        if not EXPORTER:
            log('prometheus-libvirt-exporter is not installed: no exporter figure')
            return
        port = meterlib.free_port()
        self.exporter_log = open(os.path.join(self.tmp, 'exporter.log'), 'wb')
        self.exporter = subprocess.Popen([EXPORTER, f'--web.listen-address=127.0.0.1:{port}',
                                          f'--libvirt.uri={URI}'],
                                         stdout=self.exporter_log, stderr=self.exporter_log)
        meterlib.wait_http(port, '/')
        for _ in range(3):
            st, body = meterlib.http_call(port, 'GET', '/metrics', timeout=60)
        text = body.decode()
        self.results['exporter_domains'] = sum(1 for line in text.splitlines()
                                               if line.startswith('libvirt_domain_info_virtual_cpus{'))
        self.results['exporter_up'] = 'libvirt_up 1' in text
        times = []
        c0 = meterlib.proc_cpu_seconds(self.exporter.pid)
        for _ in range(RUNS):
            t0 = time.perf_counter()
            st, body = meterlib.http_call(port, 'GET', '/metrics', timeout=60)
            times.append(time.perf_counter() - t0)
            if st != 200:
                die(f'exporter answered {st}')
        c1 = meterlib.proc_cpu_seconds(self.exporter.pid)
        self.results['exporter'] = times
        self.results['exporter_cpu_per_scrape'] = (c1 - c0) / RUNS
        self.results['exporter_rss_kib'] = meterlib.proc_status_kib(self.exporter.pid, 'VmRSS')
        self.stop_exporter()

    def stop_exporter(self):
        if self.exporter and self.exporter.poll() is None:
            self.exporter.terminate()
            try:
                self.exporter.wait(20)
            except subprocess.TimeoutExpired:
                self.exporter.kill()
                self.exporter.wait()
        self.exporter = None

    # ---- teardown
    def cleanup(self):
        self.stop_agent()
        self.stop_exporter()
        if self.probes:
            self.remove_probes(self.probes)
        if self.lab:
            for name in self.names:
                cbvirt.virsh('destroy', name, check=False)
            self.lab.cleanup()
            left = cbvirt.domains(self.lab.prefix)
            if left:
                log(f'WARNING: domains left over: {left}')
        if os.environ.get('BENCH_KEEP') == '1':
            log(f'kept {self.tmp}')
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- the report
    def report(self):
        r = self.results
        rows = []

        def row(label, values, note=''):
            if not values:
                return
            rows.append([label, len(values), fmt_ms(median(values)), fmt_ms(percentile(values, 95)),
                         fmt_ms(min(values)), fmt_ms(max(values)), note])

        row('agent cycle (cloudbroker_agent_cycle_seconds)', r.get('agent_cycle'),
            'bulk stats call + node stats + windows')
        row('agent whole ag_agent_cycle() (uprobes)', r.get('agent_full_cycle'),
            '+ spool transaction')
        row('virsh domstats (process: start, connect, call)', r.get('virsh'), r.get('virsh_tool'))
        if 'virsh_in_session' in r:
            rows.append(['virsh domstats, one call in a session', '5x', 
                         fmt_ms(r['virsh_in_session']), '', '', '', '(11 calls - 1 call) / 10'])
        row('prometheus-libvirt-exporter scrape', r.get('exporter'), 'GET /metrics')
        for g, t in (r.get('virsh_groups') or {}).items():
            rows.append([f'  virsh domstats {g} alone, in a session', '3x', fmt_ms(t), '', '', '',
                         '(5 calls - 1 call) / 4'])
        print()
        print(f'Collection: {N_DOMAINS} running domains (TCG, 1 vCPU, 64 MiB, 1 disk, 1 NIC); '
              f'groups {" ".join(GROUPS)}')
        print(f'domains seen: agent {r.get("agent_domains")}, virsh {r.get("virsh_domains")}, '
              f'exporter {r.get("exporter_domains", "-")}'
              + (f'  (other domains on the host: {len(r["other_domains"])})'
                 if r.get('other_domains') else ''))
        print()
        table(rows, ['', 'n', 'median ms', 'p95 ms', 'min ms', 'max ms', ''])
        print()
        cpu = r.get('agent_cpu_per_cycle')
        rss = r.get('agent_rss_kib')
        print(f'agent CPU time per cycle: {cpu * 1000:.2f} ms (utime+stime over '
              f'{r.get("agent_cycles_a"):.0f} cycles, /metrics read twice)')
        print(f'agent memory: VmRSS {rss / 1024:.2f} MiB, VmHWM {r["agent_hwm_kib"] / 1024:.2f} MiB, '
              f'{r["agent_threads"]} threads; windows acknowledged by the sink: '
              f'{r.get("agent_pushed"):.0f} in {r.get("sink_posts")} POSTs')
        if 'exporter_cpu_per_scrape' in r:
            print(f'exporter CPU time per scrape: {r["exporter_cpu_per_scrape"] * 1000:.2f} ms; '
                  f'VmRSS {r["exporter_rss_kib"] / 1024:.1f} MiB')
        print()
        goals = []
        agent = median(r['agent_cycle'])
        virsh = median(r['virsh'])
        ratio = agent / virsh
        goals.append(['agent cycle / virsh domstats (medians)', f'{ratio:.2f}', '<= 1.10',
                      'PASS' if ratio <= 1.10 else 'MISS'])
        if r.get('agent_full_cycle'):
            full = median(r['agent_full_cycle']) / virsh
            goals.append(['  same, whole ag_agent_cycle() (uprobes)', f'{full:.2f}', '<= 1.10',
                          'PASS' if full <= 1.10 else 'MISS'])
        if 'virsh_in_session' in r:
            goals.append(['  (info) agent cycle / one in-session virsh call',
                          f'{agent / r["virsh_in_session"]:.2f}', '', ''])
        if r.get('exporter'):
            goals.append(['(info) exporter scrape / agent cycle',
                          f'{median(r["exporter"]) / agent:.1f}', '', ''])
        goals.append(['agent RSS (VmRSS, MiB)', f'{rss / 1024:.2f}', '< 10',
                      'PASS' if rss < 10 * 1024 else 'MISS'])
        table(goals, ['goal', 'measured', 'target', ''])
        print()


def main():
    if os.geteuid() != 0:
        die('needs root: the domains run on qemu:///system')
    for tool in ('virsh', 'qemu-system-x86_64'):
        if not shutil.which(tool):
            die(f'{tool} is not installed')
    if not os.access(meterlib.AGENT, os.X_OK):
        die(f'{meterlib.AGENT} is not built: ninja -C build')
    b = Bench()

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.time()
    try:
        b.make_domains()
        log('agent: warm-up')
        b.start_agent()
        log(f'agent: CPU and RSS over {CYCLES} cycles')
        b.agent_cpu_rss()
        log(f'agent: cycle time over {CYCLES} cycles' + (' (+ uprobes)' if PERF else ''))
        b.agent_cycle_times()
        b.stop_agent()
        log(f'virsh domstats: {RUNS} runs')
        b.virsh_domstats()
        log(f'prometheus-libvirt-exporter: {RUNS} scrapes')
        b.exporter_scrapes()
    except KeyboardInterrupt:
        log('interrupted: cleaning up')
        b.cleanup()
        sys.exit(130)
    except BaseException:
        b.cleanup()
        raise
    b.cleanup()
    b.report()
    print(f'(run took {time.time() - t0:.0f} s; load average now {os.getloadavg()[0]:.2f})')


if __name__ == '__main__':
    main()
