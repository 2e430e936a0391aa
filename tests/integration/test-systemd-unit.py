# SPDX-License-Identifier: Apache-2.0
"""systemd/cloudbrokerd.service: the sandbox is rated at most 2.5 by `systemd-analyze security`,
the unit file passes `systemd-analyze verify`, ExecStart names where meson installs the daemon,
and the built cloudbrokerd speaks the Type=notify / WatchdogSec= / ExecReload= protocol the unit
relies on (READY=1, WATCHDOG=1 at half the interval, RELOADING=1 on SIGHUP, STOPPING=1)."""
import os
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cbtest import BROKERD, POLICIES, SOURCE, Checks  # noqa: E402
from cbunit import (NotifyService, check_exposure, check_installed, check_verify,  # noqa: E402
                    unit_settings)

UNIT = os.path.join(SOURCE, 'systemd', 'cloudbrokerd.service')
MAX_EXPOSURE = 2.5
INSTALLED_BROKERD = '/usr/sbin/cloudbrokerd'


def check_security(t, analyze):
    check_exposure(t, analyze, UNIT, MAX_EXPOSURE)
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


def check_unit_verifies(t, analyze, tmp):
    exec_start = unit_settings(UNIT).get(('Service', 'ExecStart'), [''])[0].split()
    t.ok(exec_start[:1] == [INSTALLED_BROKERD], f'ExecStart runs {INSTALLED_BROKERD}: {exec_start}')

    check_verify(t, analyze, UNIT, INSTALLED_BROKERD, BROKERD, tmp)


def check_install_path(t):
    """ExecStart= is /usr/sbin: meson must install cloudbrokerd into sbindir (prefix /usr)."""
    installed = check_installed(t, 'cloudbrokerd')
    if installed is None:
        return
    units = [v for k, v in installed.items() if os.path.basename(k) == 'cloudbrokerd.service']
    t.ok(len(units) == 1 and units[0].endswith('/lib/systemd/system/cloudbrokerd.service'),
         f'meson installs the unit into lib/systemd/system: {units}')


def check_notify(t, tmp):
    """What Type=notify, WatchdogSec=30 and ExecReload=kill -HUP expect of the daemon."""
    state = os.path.join(tmp, 'state')
    # WatchdogSec=1: the daemon must ping every 0.5 s.
    with NotifyService(t, 'cloudbrokerd', [BROKERD, '--state-dir', state, '--policy-dir',
                                           POLICIES, '--listen', '127.0.0.1:0'], tmp,
                       1000000) as service:
        service.expect('READY=1', 20, 'after start')
        service.check_pings(2.2, 3, 6, 'about every 0.5 s (WATCHDOG_USEC=1000000)')
        service.proc.send_signal(signal.SIGHUP)
        service.expect('RELOADING=1', 5, 'on SIGHUP')
        service.expect('READY=1', 5, 'after the reload')
        service.stop()


def main():
    t = Checks('systemd-unit')
    analyze = shutil.which('systemd-analyze')
    if not analyze:
        print('SKIP: systemd-analyze is not installed (Debian package systemd)', flush=True)
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix='cbtest-unit-')
    try:
        check_security(t, analyze)
        check_unit_verifies(t, analyze, tmp)
        check_install_path(t)
        check_notify(t, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.done()


if __name__ == '__main__':
    main()
