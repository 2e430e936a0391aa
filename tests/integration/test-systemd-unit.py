# SPDX-License-Identifier: Apache-2.0
"""systemd/cloudbrokerd.service: the sandbox is rated at most 2.5 by `systemd-analyze security`,
the unit file passes `systemd-analyze verify`, ExecStart names where meson installs the daemon,
and the built cloudbrokerd speaks the Type=notify / WatchdogSec= / ExecReload= protocol the unit
relies on (READY=1, WATCHDOG=1 at half the interval, RELOADING=1 on SIGHUP, STOPPING=1)."""
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cbtest import BROKERD, BUILD, POLICIES, SOURCE, Checks  # noqa: E402

UNIT = os.path.join(SOURCE, 'systemd', 'cloudbrokerd.service')
MAX_EXPOSURE = 2.5
INSTALLED_BROKERD = '/usr/sbin/cloudbrokerd'


def unit_settings(path):
    """[Service] key -> list of values, in file order."""
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


def check_security(t, analyze):
    p = subprocess.run([analyze, 'security', '--offline=true', '--no-pager', UNIT],
                       capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    m = re.search(r'Overall exposure level for \S+: (\d+(?:\.\d+)?)', out)
    if not t.ok(m is not None, f'systemd-analyze security printed an overall exposure level '
                               f'(rc {p.returncode}): {out[-2000:]}'):
        return
    level = float(m.group(1))
    print(f'measured: overall exposure level {level} (limit {MAX_EXPOSURE})', flush=True)
    t.ok(level <= MAX_EXPOSURE, f'exposure level {level} <= {MAX_EXPOSURE}')
    # Settings the brief names; a missing one would still leave the score low, so check them too.
    s = unit_settings(UNIT)
    for key, want in [('Type', 'notify'), ('NotifyAccess', 'main'), ('WatchdogSec', '30'),
                      ('DynamicUser', 'yes'), ('StateDirectory', 'cloudbroker'),
                      ('StateDirectoryMode', '0700'), ('ProtectSystem', 'strict'),
                      ('CapabilityBoundingSet', ''), ('UMask', '0077')]:
        t.eq(s.get(('Service', key)), [want], f'[Service] {key}')
    t.eq(s.get(('Install', 'WantedBy')), ['multi-user.target'], '[Install] WantedBy')
    t.ok(('Service', 'PrivateNetwork') not in s and ('Service', 'IPAddressDeny') not in s,
         'the unit does not cut the broker off the network it serves and reaches libvirt on')
    families = ' '.join(s.get(('Service', 'RestrictAddressFamilies'), [])).split()
    t.ok({'AF_UNIX', 'AF_INET', 'AF_INET6'} <= set(families),
         f'AF_UNIX (local libvirtd) and AF_INET/AF_INET6 are allowed: {families}')


def verify(analyze, path):
    p = subprocess.run([analyze, 'verify', '--no-pager', path], capture_output=True, text=True,
                       timeout=60)
    lines = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]
    return p.returncode, lines


def check_verify(t, analyze, tmp):
    exec_start = unit_settings(UNIT).get(('Service', 'ExecStart'), [''])[0].split()
    t.ok(exec_start[:1] == [INSTALLED_BROKERD], f'ExecStart runs {INSTALLED_BROKERD}: {exec_start}')

    # The unit as shipped: the only complaint allowed is that the daemon is not installed here.
    rc, lines = verify(analyze, UNIT)
    missing = f'Command {INSTALLED_BROKERD} is not executable'
    if os.access(INSTALLED_BROKERD, os.X_OK):
        other = lines
    else:
        other = [l for l in lines if missing not in l]
    print(f'measured: systemd-analyze verify (as shipped) rc {rc}: {lines}', flush=True)
    t.eq(other, [], 'systemd-analyze verify reports nothing about the unit but the missing '
                    f'{INSTALLED_BROKERD}')

    # The same unit with ExecStart pointing at the daemon just built must verify cleanly.
    copy = os.path.join(tmp, 'cloudbrokerd.service')
    with open(UNIT, encoding='utf-8') as f:
        text = f.read()
    text = text.replace(f'ExecStart={INSTALLED_BROKERD} ', f'ExecStart={os.path.abspath(BROKERD)} ')
    with open(copy, 'w', encoding='utf-8') as f:
        f.write(text)
    rc, lines = verify(analyze, copy)
    print(f'measured: systemd-analyze verify (ExecStart={BROKERD}) rc {rc}: {lines}', flush=True)
    t.eq((rc, lines), (0, []), 'systemd-analyze verify of the unit with the built daemon')


def check_install_path(t):
    """ExecStart= is /usr/sbin: meson must install cloudbrokerd into sbindir (prefix /usr)."""
    p = subprocess.run(['meson', 'introspect', '--installed', BUILD], capture_output=True,
                       text=True, timeout=60)
    if not t.ok(p.returncode == 0, f'meson introspect --installed: {p.stderr}'):
        return
    installed = json.loads(p.stdout)
    dest = [v for k, v in installed.items() if os.path.basename(k) == 'cloudbrokerd']
    t.ok(len(dest) == 1 and dest[0].endswith('/sbin/cloudbrokerd'),
         f'meson installs cloudbrokerd into sbindir: {dest}')
    units = [v for k, v in installed.items() if os.path.basename(k) == 'cloudbrokerd.service']
    t.ok(len(units) == 1 and units[0].endswith('/lib/systemd/system/cloudbrokerd.service'),
         f'meson installs the unit into lib/systemd/system: {units}')


def recv_until(sock, want, timeout):
    """Collects notification datagrams until one equals or contains @want; returns all seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            break
        seen.append(msg)
        if want in msg.split('\n'):
            return True, seen
    return False, seen


def check_notify(t, tmp):
    """What Type=notify, WatchdogSec=30 and ExecReload=kill -HUP expect of the daemon."""
    sock_path = os.path.join(tmp, 'notify.sock')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    state = os.path.join(tmp, 'state')
    env = dict(os.environ)
    env['NOTIFY_SOCKET'] = sock_path
    env['WATCHDOG_USEC'] = '1000000'  # 1 s: the daemon must ping every 0.5 s
    env.pop('WATCHDOG_PID', None)
    log = open(os.path.join(tmp, 'broker.log'), 'wb')
    proc = subprocess.Popen([BROKERD, '--state-dir', state, '--policy-dir', POLICIES,
                             '--listen', '127.0.0.1:0'], env=env, stdout=log, stderr=log)
    try:
        ok, seen = recv_until(sock, 'READY=1', 20)
        t.ok(ok, f'READY=1 after start: {seen}')
        t0 = time.monotonic()
        pings = 0
        while time.monotonic() - t0 < 2.2:
            ok, more = recv_until(sock, 'WATCHDOG=1', 2.2 - (time.monotonic() - t0))
            if ok:
                pings += 1
        print(f'measured: {pings} WATCHDOG=1 in 2.2 s with WATCHDOG_USEC=1000000', flush=True)
        t.ok(3 <= pings <= 6, f'WATCHDOG=1 about every 0.5 s: {pings} in 2.2 s')

        proc.send_signal(signal.SIGHUP)
        ok, seen = recv_until(sock, 'RELOADING=1', 5)
        t.ok(ok, f'RELOADING=1 on SIGHUP: {seen}')
        ok, seen = recv_until(sock, 'READY=1', 5)
        t.ok(ok, f'READY=1 after the reload: {seen}')

        proc.send_signal(signal.SIGTERM)
        ok, seen = recv_until(sock, 'STOPPING=1', 10)
        t.ok(ok, f'STOPPING=1 on SIGTERM: {seen}')
        rc = proc.wait(20)
        t.eq(rc, 0, 'cloudbrokerd exit status after SIGTERM')
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        sock.close()
    if t.failed:
        with open(os.path.join(tmp, 'broker.log'), 'rb') as f:
            print('broker log:\n' + f.read().decode(errors='replace')[-3000:], flush=True)


def main():
    t = Checks('systemd-unit')
    analyze = shutil.which('systemd-analyze')
    if not analyze:
        print('SKIP: systemd-analyze is not installed (Debian package systemd)', flush=True)
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix='cbtest-unit-')
    try:
        check_security(t, analyze)
        check_verify(t, analyze, tmp)
        check_install_path(t)
        check_notify(t, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.done()


if __name__ == '__main__':
    main()
