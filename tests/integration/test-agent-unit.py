# SPDX-License-Identifier: Apache-2.0
"""systemd/cloudbroker-agent.service: `systemd-analyze security --offline=true` rates its sandbox
(printed; at most 1.5), `systemd-analyze verify` passes, the settings the design relies on are
there (Type=notify, WatchdogSec=, DynamicUser= without the libvirt group, the spool in
StateDirectory=, the token as a credential, no PrivateNetwork=), the config file the unit
expects is accepted by the built agent, and the built agent speaks the notify protocol the unit
relies on (READY=1, WATCHDOG=1 after every cycle, STOPPING=1 on SIGTERM, exit 0).

Like test-systemd-unit.py it runs offline: the machines the tests run on have no systemd as
PID 1, so the unit itself is not started. The agent meters libvirt's test driver
(test:///default) and delivers to a loopback sink here; no libvirtd is needed."""
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cbtest import BUILD, SOURCE, Checks, free_port  # noqa: E402
from cbunit import (NotifyService, check_exposure, check_installed, check_verify,  # noqa: E402
                    unit_settings)

UNIT = os.path.join(SOURCE, 'systemd', 'cloudbroker-agent.service')
AGENT = os.path.join(BUILD, 'agent', 'cloudbroker-agent')
INSTALLED_AGENT = '/usr/sbin/cloudbroker-agent'
MAX_EXPOSURE = 1.5
CREDENTIAL_TOKEN = '/run/credentials/cloudbroker-agent.service/agent.token'


def check_settings(t):
    s = unit_settings(UNIT)
    for key, want in [('Type', 'notify'), ('NotifyAccess', 'main'),
                      ('ExecStart', f'{INSTALLED_AGENT} --config /etc/cloudbroker/agent.json'),
                      ('DynamicUser', 'yes'), ('StateDirectory', 'cloudbroker-agent'),
                      ('StateDirectoryMode', '0700'), ('ProtectSystem', 'strict'),
                      ('CapabilityBoundingSet', ''), ('NoNewPrivileges', 'yes'),
                      ('UMask', '0077'),
                      ('LoadCredential', 'agent.token:/etc/cloudbroker/agent.token')]:
        t.eq(s.get(('Service', key)), [want], f'[Service] {key}')
    t.eq(s.get(('Install', 'WantedBy')), ['multi-user.target'], '[Install] WantedBy')
    wd = s.get(('Service', 'WatchdogSec'), ['0'])[0]
    t.ok(wd.isdigit() and int(wd) > 10 + 20,
         f'WatchdogSec={wd} exceeds the default interval (10 s) plus a hung cycle (~20 s): the '
         'agent pings once per cycle')
    t.ok(('Service', 'PrivateNetwork') not in s,
         'no PrivateNetwork=: the agent reaches the broker and serves /metrics')
    families = ' '.join(s.get(('Service', 'RestrictAddressFamilies'), [])).split()
    t.eq(sorted(families), ['AF_INET', 'AF_INET6', 'AF_UNIX'], 'RestrictAddressFamilies')
    groups = ' '.join(s.get(('Service', 'SupplementaryGroups'), [])).split()
    t.ok('libvirt' not in groups and s.get(('Service', 'Group')) != ['libvirt'],
         'the agent is not in group libvirt (read-write libvirt socket = full control of VMs)')
    t.ok(('Service', 'User') not in s, 'no fixed User= next to DynamicUser=')
    t.ok(not any(k[1] in ('ReadWritePaths', 'ReadWriteDirectories') for k in s),
         'nothing writable but the StateDirectory')


def check_install_path(t):
    installed = check_installed(t, 'cloudbroker-agent')
    if installed is None:
        return
    units = [v for k, v in installed.items() if os.path.basename(k) == 'cloudbroker-agent.service']
    print(f'measured: meson installs the agent unit to: {units or "nowhere (not in meson.build)"}',
          flush=True)


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    posts = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        Sink.posts += 1
        out = b'{"stored":0,"duplicates":0,"unowned":0,"host":0}'
        self.send_response(200)
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def check_config_and_notify(t, tmp):
    """The config the unit's comments describe, with the paths moved into @tmp, and the notify
    protocol: READY=1, WATCHDOG=1 after every cycle (interval 1 s), STOPPING=1, exit 0."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = os.path.join(tmp, 'agent.token')
    with open(token, 'w') as f:
        f.write('cbh_test_token\n')
    os.chmod(token, 0o600)
    config = os.path.join(tmp, 'agent.json')
    with open(config, 'w') as f:
        json.dump({'uri': 'test:///default', 'broker': f'http://127.0.0.1:{server.server_port}',
                   'token_file': token, 'spool': os.path.join(tmp, 'spool.db'), 'interval': 1,
                   'window': 10, 'metrics_listen': f'127.0.0.1:{free_port()}',
                   'spool_max_bytes': 67108864}, f)
    try:
        with NotifyService(t, 'cloudbroker-agent', [AGENT, '--config', config], tmp,
                           120000000) as service:
            service.expect('READY=1', 20, 'after start')
            service.check_pings(4.5, 3, 7, 'once per cycle (interval 1 s)')
            service.stop()
    finally:
        server.shutdown()
        server.server_close()

    # The unit's path for the token (a systemd credential) is a valid token_file value, and a
    # config naming a file the service cannot read is refused before start, naming the field.
    bad = os.path.join(tmp, 'bad.json')
    with open(bad, 'w') as f:
        json.dump({'broker': 'https://broker.example:8470', 'token_file': CREDENTIAL_TOKEN,
                   'spool': '/var/lib/cloudbroker-agent/spool.db'}, f)
    p = subprocess.run([AGENT, '--config', bad, '--once'], capture_output=True, text=True,
                       timeout=30)
    if os.path.exists(CREDENTIAL_TOKEN):
        t.ok(True, 'credential exists on this machine: not checking the refusal')
    else:
        t.ok(p.returncode == 2 and 'token_file' in p.stderr,
             f'a config whose token file is missing is refused with the field named: '
             f'rc {p.returncode} {p.stderr.strip()}')


def main():
    t = Checks('agent-unit')
    analyze = shutil.which('systemd-analyze')
    if not analyze:
        print('SKIP: systemd-analyze is not installed (Debian package systemd)', flush=True)
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix='cbtest-agent-unit-')
    try:
        check_exposure(t, analyze, UNIT, MAX_EXPOSURE)
        check_settings(t)
        check_verify(t, analyze, UNIT, INSTALLED_AGENT, AGENT, tmp)
        check_install_path(t)
        check_config_and_notify(t, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.done()


if __name__ == '__main__':
    main()
