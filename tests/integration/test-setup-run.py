#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`tools/setup.sh run` as a new operator starts it, on a machine where 8471 is taken.

tools/setup.sh run --prebuilt BUILD (the binaries of this build: nothing installed or built)
--listen 127.0.0.1:P on a free port P, with a fresh state folder, while other listeners hold
127.0.0.1:8471 (the old fixed metrics port) and 127.0.0.1:P+1 (the new default, next to the
broker):

1. The "running" banner comes; the agent's /metrics is announced on a free port (neither
   8471 nor P+1, saying why) and answers there with the agent's series; the local host is
   registered (qemu:///system) with the storage pool the banner names, which is an active pool
   of libvirt, and the host shows no storage error. SIGINT (Ctrl-C) stops the script with 130
   and both daemons are gone.
2. A rerun on the same state with --agent-metrics-listen on the taken port P+1: the agent cannot
   listen; the failure, with the end of the agent's log, is printed before the banner; the
   broker runs without it; SIGTERM stops the script with 143 and the broker is gone.

The storage pool 'cloudbroker' that setup.sh may create on the system libvirtd is removed
afterwards when it was not there before.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbtest  # noqa: E402

c = cbtest.Checks('setup-run')
SETUP = os.path.join(cbtest.SOURCE, 'tools', 'setup.sh')
BUILD = os.path.abspath(cbtest.BUILD)
BANNER = 'cloudbrokerd is running in the foreground'


def hold(port):
    """A listener on 127.0.0.1:@port, or None when something else already listens there."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(('127.0.0.1', port))
    except OSError:
        s.close()
        return None
    s.listen(8)
    return s


def two_free_ports():
    """P and P + 1, both free now."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            p = s.getsockname()[1]
        if p < 65535 and hold_probe(p + 1):
            return p
    raise RuntimeError('no two adjacent free ports')


def hold_probe(port):
    s = hold(port)
    if s:
        s.close()
    return s is not None


def children(pid):
    out = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
            if int(fields[1]) == pid:
                with open(f'/proc/{name}/cmdline', 'rb') as f:
                    out.append((int(name), f.read().replace(b'\0', b' ').decode()))
        except (OSError, IndexError, ValueError):
            pass
    return out


def alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


class Run:
    def __init__(self, state, *args):
        base = os.path.dirname(state)
        self.log_path = os.path.join(base, f'setup-{len(os.listdir(base))}.out')
        self.log = open(self.log_path, 'wb')
        self.t0 = time.time()
        self.proc = subprocess.Popen(['bash', SETUP, 'run', '--prebuilt', BUILD, '--state-dir',
                                      state] + list(args), stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def out(self):
        with open(self.log_path, errors='replace') as f:
            return f.read()

    def wait_banner(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.out()
            if BANNER in text and '\nMetering: ' in text[text.find(BANNER):]:
                time.sleep(0.3)  # the rest of the banner
                return time.time() - self.t0, self.out()
            if self.proc.poll() is not None:
                raise RuntimeError(f'setup.sh exited with {self.proc.returncode}:\n{text}')
            time.sleep(0.05)
        raise RuntimeError(f'no banner after {timeout} s:\n{self.out()}')

    def daemons(self):
        return {('agent' if 'cloudbroker-agent' in cmd else 'broker'): pid
                for pid, cmd in children(self.proc.pid)
                if 'cloudbrokerd' in cmd or 'cloudbroker-agent' in cmd}

    def stop(self, sig, timeout=30):
        os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def kill(self):
        if self.proc.poll() is None:
            for pid in self.daemons().values():
                os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()
        if not self.log.closed:
            self.log.close()


def pools():
    p = subprocess.run(['virsh', '-c', 'qemu:///system', 'pool-list', '--all', '--name'],
                       capture_output=True, text=True)
    return set(p.stdout.split()) if p.returncode == 0 else set()


def get(url, token=None, timeout=5):
    req = urllib.request.Request(url, headers={'Authorization': f'Bearer {token}'} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read().decode()


def main():
    if not shutil.which('curl'):
        print('SKIP: curl is not installed')
        sys.exit(77)
    pools_before = pools()
    held = [hold(8471)]  # None when another listener already has it: taken either way
    c.ok(not hold_probe(8471), '127.0.0.1:8471 is taken for the test')
    port = two_free_ports()
    held.append(hold(port + 1))
    base = tempfile.mkdtemp(prefix='cb-setup-run-')
    state = os.path.join(base, 'state')  # setup.sh makes it
    runs = []
    try:
        # ---- 1. the default metrics address is taken ----
        run = Run(state, '--listen', f'127.0.0.1:{port}')
        runs.append(run)
        took, out = run.wait_banner()
        print(f'setup.sh run: banner after {took:.2f} s', flush=True)
        m = re.search(r'^  Metrics:\s+(http://127\.0\.0\.1:(\d+)/metrics)', out, re.M)
        c.ok(m is not None, f'the banner announces the metrics address:\n{out}')
        if m:
            mport = int(m.group(2))
            c.ok(mport not in (8471, port + 1), f'a free port, not 8471 or {port + 1}: {mport}')
            c.ok(f'127.0.0.1:{port + 1} is taken' in out, 'the banner says why')
            st, body = get(m.group(1))
            c.ok(st == 200 and 'cloudbroker_agent' in body,
                 f'the agent answers on {m.group(1)}: {st} {body[:200]!r}')
        c.ok('cloudbroker-agent exited' not in out and 'does not answer' not in out,
             'no agent failure reported')
        d = run.daemons()
        c.eq(sorted(d), ['agent', 'broker'], f'both daemons run: {children(run.proc.pid)}')
        sp = re.search(r"^  Storage:\s+pool '([^']+)': (.*)$", out, re.M)
        c.ok(sp is not None, 'the banner names the storage pool')
        pool = sp.group(1) if sp else None
        with open(os.path.join(state, 'agent', 'vendor.token')) as f:
            vendor = f.read().strip()
        url = f'http://127.0.0.1:{port}'
        deadline = time.time() + 20
        host = None
        while time.time() < deadline:
            hosts = json.loads(get(f'{url}/v1/hosts', vendor)[1])['items']
            host = next((h for h in hosts if h['uri'] == 'qemu:///system'), None)
            if host and host['capacity']['known']:
                break
            time.sleep(0.2)
        c.ok(host is not None, 'the local host is registered')
        if host:
            c.eq(host['storage_pool'], pool, 'with the pool the banner names')
            if shutil.which('virsh') and host['connection']['state'] == 'connected':
                c.eq(host['storage_error'], None, 'which libvirt has (no storage error)')
                c.ok(host['domain_type'] in ('kvm', 'qemu'),
                     f'the host shows its domain type: {host["domain_type"]}')
        if shutil.which('virsh') and pool:
            info = subprocess.run(['virsh', '-c', 'qemu:///system', 'pool-info', pool],
                                  capture_output=True, text=True).stdout
            c.ok(re.search(r'^State:\s+running', info, re.M) is not None,
                 f"pool '{pool}' is active: {info}")
        rc = run.stop(signal.SIGINT)
        c.eq(rc, 130, 'SIGINT stops setup.sh run (130)')
        time.sleep(0.2)
        for name, pid in d.items():
            c.ok(not alive(pid), f'the {name} (pid {pid}) is gone after SIGINT')

        # ---- 2. an agent that cannot listen: reported before the banner ----
        run = Run(state, '--listen', f'127.0.0.1:{port}', '--agent-metrics-listen',
                  f'127.0.0.1:{port + 1}')
        runs.append(run)
        took, out = run.wait_banner()
        fail_at = out.find('cloudbroker-agent exited at once')
        c.ok(0 <= fail_at < out.find(BANNER), f'the failure comes before the banner:\n{out}')
        c.ok('cannot listen on 127.0.0.1:' in out[fail_at:out.find(BANNER)],
             "with the end of the agent's log")
        c.ok('Metering: cloudbroker-agent exited at once' in out[out.find(BANNER):],
             'the banner says the agent does not run')
        d = run.daemons()
        c.eq(sorted(d), ['broker'], 'the broker runs alone')
        c.eq(get(f'{url}/v1/health')[0], 200, 'and answers')
        rc = run.stop(signal.SIGTERM)
        c.eq(rc, 143, 'SIGTERM stops setup.sh run (143)')
        time.sleep(0.2)
        for name, pid in d.items():
            c.ok(not alive(pid), f'the {name} (pid {pid}) is gone after SIGTERM')
    finally:
        for run in runs:
            run.kill()
        for s in held:
            if s:
                s.close()
        if 'cloudbroker' not in pools_before and 'cloudbroker' in pools():
            for cmd in ('pool-destroy', 'pool-undefine'):
                subprocess.run(['virsh', '-c', 'qemu:///system', cmd, 'cloudbroker'],
                               capture_output=True)
            try:
                os.rmdir('/var/lib/libvirt/images/cloudbroker')
            except OSError:
                pass
        shutil.rmtree(base, ignore_errors=True)
    c.done()


if __name__ == '__main__':
    main()
