#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The load issue 9 asks the broker to stand, on loopback with its default limits: 2,000 slow or
idle connections (1,000 sending a request head a byte a second, 1,000 sending nothing, from 40
addresses, each reopened as soon as the broker closes it) and 50 connections holding 32 MiB
bodies (eight agents' tokens, each body sent but its last byte, then held; reopened when
answered) for LOAD_SECONDS, while a normal client on its own address works.

Goal, asserted: the normal client keeps >= 99 % success and p99 < 100 ms, and the broker's RSS
stays under its body budget (limits.body_budget_bytes, 256 MiB) + 100 MiB. The figures are
printed. Bounded in time (about 40 s), it stops by itself. (As in test-hostile-clients.py: the
p99 is not held to the bound while other work crowds the machine, nor the RSS under ASan.)
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbhostile  # noqa: E402
import cbtest  # noqa: E402
import cbworld  # noqa: E402
from cbhostile import BodyHolder, NormalClient, RssSampler, Swarm  # noqa: E402

LOAD_SECONDS = 25
BUDGET_MIB = 256
SAMPLES_MAX = 32 * 1024 * 1024


def main():
    ck = cbtest.Checks('hostile-load')
    nofile = cbhostile.raise_nofile()
    ck.ok(nofile >= 4096, f'RLIMIT_NOFILE raised ({nofile})')
    with cbtest.Broker() as b:
        _, auditor = b.make_account('auditor', 'auditor')
        _, vendor = b.make_account('vendor', 'vendor')
        agents = []
        for i in range(8):
            uri = cbworld.node_xml(os.path.join(b.state_dir, f'h{i}.xml'), 16384,
                                   pool=f'h{i}-pool', base=False)
            r = b.post('/v1/hosts', {'name': f'h{i}', 'uri': uri, 'pool': 'production',
                                     'storage_pool': f'h{i}-pool'}, token=vendor)
            assert r.status == 201, r
            agents.append(r.json()['agent_token'])
        rss = RssSampler(b.proc.pid)
        base = rss_now = cbhostile.rss_mib(b.proc.pid)
        busy, load = cbhostile.machine_busy()
        client = NormalClient(b.port, auditor)
        time.sleep(1)
        calm = client.stats()
        client.reset()
        slow = Swarm(b.port, 1000, [f'127.0.1.{i}' for i in range(1, 21)], 'slow',
                     opens_per_second=400).start()
        idle = Swarm(b.port, 1000, [f'127.0.2.{i}' for i in range(1, 21)], 'idle',
                     opens_per_second=400).start()
        bodies = BodyHolder(b.port, agents, 50, SAMPLES_MAX).start()
        t_end = time.monotonic() + LOAD_SECONDS
        held = []
        while time.monotonic() < t_end:
            time.sleep(1)
            m = cbhostile.metrics(b, b.admin_token)
            held.append((slow.held() + idle.held(), bodies.holding,
                         m['cloudbroker_http_connections_open'],
                         m['cloudbroker_http_body_bytes_held'] / 2 ** 20))
        s = client.stats()
        m = cbhostile.metrics(b, b.admin_token)
        slow.stop()
        idle.stop()
        bodies.stop()
        client.stop()
        rss.stop()
        rss_now = cbhostile.rss_mib(b.proc.pid)
        print(f'before the attack: normal client {calm["requests"]} requests, '
              f'p99 {calm["p99_ms"]:.1f} ms; broker RSS {base:.0f} MiB', flush=True)
        print(f'attack: {LOAD_SECONDS} s; the attackers held at most '
              f'{max(h[0] for h in held)} slow or idle connections and '
              f'{max(h[1] for h in held)} large bodies at a time; they opened '
              f'{slow.opened + idle.opened} connections, the broker closed '
              f'{slow.closed_by_server + idle.closed_by_server} '
              f'(slow heads answered {slow.statuses})', flush=True)
        conns = {k: m['cloudbroker_http_connections_total{outcome="%s"}' % k]
                 for k in ('refused', 'evicted', 'timed_out')}
        print(f'broker: at most {max(h[2] for h in held):.0f} connections open, '
              f'{max(h[3] for h in held):.0f} MiB of bodies held; connections refused '
              f'{conns["refused"]:.0f}, evicted {conns["evicted"]:.0f}, timed out '
              f'{conns["timed_out"]:.0f}; {m["cloudbroker_http_body_budget_refused_total"]:.0f} '
              f'bodies refused 503 (answers to the body holders: {bodies.answers})', flush=True)
        print(f'FIGURE normal client under attack: {s["requests"]} requests, '
              f'{s["success"] * 100:.2f} % ok, p50 {s["p50_ms"]:.1f} ms, '
              f'p99 {s["p99_ms"]:.1f} ms, max {s["max_ms"]:.1f} ms (errors {s["errors"]}); '
              f'broker RSS peak {rss.peak:.0f} MiB (limit {BUDGET_MIB + 100} MiB), '
              f'{rss_now:.0f} MiB after', flush=True)
        ck.ok(max(h[0] for h in held) >= 1900,
              f'the attackers held (about) 2,000 connections open ({max(h[0] for h in held)})')
        ck.ok(bodies.answers.get(503, 0) > 0, f'bodies past the budget refused with 503 '
              f'({bodies.answers})')
        ck.ok(s['requests'] >= 500, f'the normal client was served ({s["requests"]} requests)')
        ck.ok(s['success'] >= 0.99, f'normal client success {s["success"] * 100:.2f} % >= 99 %')
        # (under AddressSanitizer the broker is about three times slower: so is the bound; on a
        # machine crowded by other work the latency is reported, not held to the bound)
        asan = cbhostile.sanitized(b.proc.pid)
        busy_after, load_after = cbhostile.machine_busy()
        if busy or busy_after:
            print(f'p99 not held to 100 ms: the machine is busy with other work ({load}, then '
                  f'{load_after})', flush=True)
        else:
            ck.ok(s['p99_ms'] < 100 * (3 if asan else 1),
                  f'normal client p99 {s["p99_ms"]:.1f} ms < 100 ms' +
                  (' (x 3 under AddressSanitizer)' if asan else ''))
        # (not under AddressSanitizer: its shadow memory and quarantine are not the broker's)
        ck.ok(rss.peak < BUDGET_MIB + 100 or cbhostile.sanitized(b.proc.pid),
              f'broker RSS {rss.peak:.0f} MiB < body budget {BUDGET_MIB} MiB + 100 MiB')
        ck.ok(b.proc.poll() is None, 'the broker is still running')
        ck.eq(b.get('/v1/health').status, 200, 'GET /v1/health after the attack')
        ck.eq(b.stop(), 0, 'the broker stops cleanly')
        with open(b.log_path, 'rb') as f:
            log = f.read().decode('utf-8', 'replace')
        ck.ok(not re.search(r'sanitizer|runtime error|segfault|\berror:', log, re.I),
              'no error or sanitizer report in the log' +
              ''.join('\n    ' + line for line in log.splitlines()
                      if re.search(r'sanitizer|runtime error|error:', line, re.I))[:2000])
    ck.done()


if __name__ == '__main__':
    main()
