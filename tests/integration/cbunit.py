# SPDX-License-Identifier: Apache-2.0
"""Checks of a systemd unit file and of the notify protocol of the daemon it starts, offline
(the machines the tests run on have no systemd as PID 1): shared by test-systemd-unit.py
(cloudbrokerd.service) and test-agent-unit.py (cloudbroker-agent.service). Standard library
only."""
import json
import os
import re
import signal
import socket
import subprocess
import time

from cbtest import BUILD


def unit_settings(path):
    """(section, key) -> list of values, in file order."""
    settings = {}
    section = None
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in '#;':
                continue
            if line.startswith('['):
                section = line.strip('[]')
                continue
            key, _, value = line.partition('=')
            settings.setdefault((section, key.strip()), []).append(value.strip())
    return settings


def check_exposure(t, analyze, unit, limit):
    """`systemd-analyze security --offline=true` rates @unit's sandbox at most @limit (the
    level and what is not hardened are printed)."""
    p = subprocess.run([analyze, 'security', '--offline=true', '--no-pager', unit],
                       capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    m = re.search(r'Overall exposure level for \S+: (\d+(?:\.\d+)?)', out)
    if not t.ok(m is not None, f'systemd-analyze security printed an overall exposure level '
                               f'(rc {p.returncode}): {out[-2000:]}'):
        return
    level = float(m.group(1))
    print(f'measured: overall exposure level {level} (limit {limit})', flush=True)
    for line in out.splitlines():
        if line.startswith('✗'):
            print(f'  not hardened: {" ".join(line.split())}', flush=True)
    t.ok(level <= limit, f'exposure level {level} <= {limit}')


def verify(analyze, path):
    p = subprocess.run([analyze, 'verify', '--no-pager', path], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]


def check_verify(t, analyze, unit, installed, built, tmp):
    """`systemd-analyze verify` of @unit as shipped reports nothing but that @installed (its
    ExecStart=) is missing here, and of a copy in @tmp whose ExecStart= runs @built, nothing."""
    rc, lines = verify(analyze, unit)
    missing = f'Command {installed} is not executable'
    other = lines if os.access(installed, os.X_OK) else [x for x in lines if missing not in x]
    print(f'measured: systemd-analyze verify (as shipped) rc {rc}: {lines}', flush=True)
    t.eq(other, [], f'systemd-analyze verify reports nothing but the missing {installed}')

    copy = os.path.join(tmp, os.path.basename(unit))
    with open(unit, encoding='utf-8') as f:
        text = f.read()
    with open(copy, 'w', encoding='utf-8') as f:
        f.write(text.replace(f'ExecStart={installed} ', f'ExecStart={os.path.abspath(built)} '))
    rc, lines = verify(analyze, copy)
    print(f'measured: systemd-analyze verify (ExecStart={built}) rc {rc}: {lines}', flush=True)
    t.eq((rc, lines), (0, []), f'systemd-analyze verify of the unit with the built {built}')


def check_installed(t, name):
    """meson installs @name into sbindir, as ExecStart= expects. Returns: where meson installs
    each file ({source: destination}), or None when meson cannot say."""
    p = subprocess.run(['meson', 'introspect', '--installed', BUILD], capture_output=True,
                       text=True, timeout=60)
    if not t.ok(p.returncode == 0, f'meson introspect --installed: {p.stderr}'):
        return None
    installed = json.loads(p.stdout)
    dest = [v for k, v in installed.items() if os.path.basename(k) == name]
    t.ok(len(dest) == 1 and dest[0].endswith(f'/sbin/{name}'),
         f'meson installs {name} into sbindir, as ExecStart= expects: {dest}')
    return installed


class NotifySocket:
    """The socket systemd would pass as NOTIFY_SOCKET, in @tmp."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, 'notify.sock')
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def env(self, watchdog_usec):
        """The environment of a service with this socket and WatchdogSec= of @watchdog_usec."""
        env = dict(os.environ, NOTIFY_SOCKET=self.path, WATCHDOG_USEC=str(watchdog_usec))
        env.pop('WATCHDOG_PID', None)
        return env

    def recv_until(self, want, timeout):
        """Collects notification datagrams until one holds the line @want.
        Returns: (whether it came, every datagram seen)."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            seen.append(msg)
            if want in msg.split('\n'):
                return True, seen
        return False, seen

    def pings(self, seconds):
        """Returns: how many WATCHDOG=1 came in @seconds."""
        n = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            ok, _ = self.recv_until('WATCHDOG=1', seconds - (time.monotonic() - t0))
            n += ok
        return n

    def close(self):
        self.sock.close()


class NotifyService:
    """@args run as systemd runs a Type=notify service with WatchdogSec= of @watchdog_usec,
    its output in @tmp/@name.log, the checks counted in @t. As a context manager: on the way out
    the process is killed if it still runs, and its log printed when any check failed."""

    def __init__(self, t, name, args, tmp, watchdog_usec):
        self.t, self.name = t, name
        self.sock = NotifySocket(tmp)
        self.log_path = os.path.join(tmp, f'{name}.log')
        self.log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(args, env=self.sock.env(watchdog_usec), stdout=self.log,
                                     stderr=self.log)

    def expect(self, line, timeout, what):
        ok, seen = self.sock.recv_until(line, timeout)
        self.t.ok(ok, f'{line} {what}: {seen}')

    def check_pings(self, seconds, low, high, what):
        """Between @low and @high WATCHDOG=1 in @seconds (the count is printed)."""
        pings = self.sock.pings(seconds)
        print(f'measured: {pings} WATCHDOG=1 in {seconds} s ({what})', flush=True)
        self.t.ok(low <= pings <= high, f'WATCHDOG=1 {what}: {pings} in {seconds} s')

    def stop(self):
        """SIGTERM: STOPPING=1 and exit status 0."""
        self.proc.send_signal(signal.SIGTERM)
        self.expect('STOPPING=1', 10, 'on SIGTERM')
        self.t.eq(self.proc.wait(20), 0, f'{self.name} exit status after SIGTERM')

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.sock.close()
        if self.t.failed:
            with open(self.log_path, 'rb') as f:
                print(f'{self.name} log:\n' + f.read().decode(errors='replace')[-3000:],
                      flush=True)
