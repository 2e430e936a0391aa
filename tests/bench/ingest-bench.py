#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Ingest benchmark (issue 4, benchmark 2): samples per second cloudbrokerd stores through
POST /v1/samples (batches, concurrent clients, real HTTP on loopback), side by side with the
same rows inserted straight into SQLite by a bare program with the broker's schema (the storage
limit of this machine). Root and libvirt are not needed. See README.md ("Metering: ingest")."""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meterlib  # noqa: E402
from meterlib import log, die, env_int, median, table  # noqa: E402

HOSTS = env_int('INGEST_CLIENTS', 2)          # one agent (host) per client
PER_HOST = env_int('INGEST_INSTANCES', 50)     # instances per host
WINDOWS = env_int('INGEST_WINDOWS', 3000)      # 5-minute windows per instance (3000: 10.4 days)
BATCH = env_int('INGEST_BATCH', 1000)          # windows per POST, and rows per bare transaction
ROUNDS = env_int('INGEST_ROUNDS', 3)
PERF = os.environ.get('BENCH_PERF') == '1'
# For experiments with the schema only: SQL run on both databases after their tables are made
# (the broker's while it is stopped), e.g. INGEST_SCHEMA_SQL='DROP INDEX samples_start'.
SCHEMA_SQL = os.environ.get('INGEST_SCHEMA_SQL')


def parse(line):
    """'key=value ...' of meter-load's report line."""
    out = {}
    for part in line.split():
        k, _, v = part.partition('=')
        if v:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def run(cmd, tag):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        die(f'{tag} failed ({p.returncode}): {p.stderr.strip()[-1500:]} {p.stdout.strip()}')
    lines = [l for l in p.stdout.splitlines() if l.startswith(tag)]
    if not lines:
        die(f'{tag}: no report line: {p.stdout}')
    return parse(lines[-1])


class Round:
    def __init__(self, tmp, k):
        self.dir = os.path.join(tmp, f'round-{k}')
        os.makedirs(self.dir)
        self.k = k
        self.broker = None
        self.perf = None
        self.res = {}

    def bare(self):
        db = os.path.join(self.dir, 'bare.db')
        if SCHEMA_SQL:
            os.environ['METER_SCHEMA_SQL'] = SCHEMA_SQL
        self.res['bare'] = run([meterlib.METER_LOAD, 'bare', db, str(HOSTS * PER_HOST),
                                str(WINDOWS), str(BATCH)], 'bare')
        for suffix in ('', '-wal', '-shm'):
            try:
                os.unlink(db + suffix)
            except FileNotFoundError:
                pass

    def setup_broker(self):
        # The reconciler is slowed to once a day: the instances have no domains (the hosts are
        # libvirt's test driver), and their 'missing' events are not what is measured.
        b = self.broker = meterlib.BenchBroker(self.dir,
                                               {'lifecycle.json': {'reconcile_seconds': 86400}})
        b.start()
        vendor = b.account('bench-vendor', 'vendor')
        hosts = []
        for k in range(HOSTS):
            uri = 'test:///default' + (f'?bench={k}' if k else '')
            hid, token = b.add_host(vendor, f'bench-host-{k}', uri)
            path = os.path.join(self.dir, f'agent-{k}.token')
            with open(path, 'w') as f:
                f.write(token + '\n')
            os.chmod(path, 0o600)
            hosts.append((hid, path))
        b.stop()
        ranges = meterlib.add_instances(b.db, [h for h, _ in hosts], PER_HOST)
        if SCHEMA_SQL:
            con = sqlite3.connect(b.db)
            con.executescript(SCHEMA_SQL)
            con.close()
        b.start()
        self.specs = [f'{path}:{ranges[hid][0]}' for hid, path in hosts]

    def post(self, key):
        b = self.broker
        if PERF and key == 'api':
            # DWARF call graphs, so the report can say which step of a request the time is in.
            self.perf = subprocess.Popen(['perf', 'record', '-q', '--call-graph', 'dwarf,32768',
                                          '-F', '199', '-o',
                                          os.path.join(self.dir, 'perf-ingest.data'), '-p',
                                          str(b.proc.pid)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            time.sleep(1)
        c0 = meterlib.proc_cpu_seconds(b.proc.pid)
        self.res[key] = run([meterlib.METER_LOAD, 'post', f'http://127.0.0.1:{b.port}',
                             str(PER_HOST), str(WINDOWS), str(BATCH)] + self.specs, 'post')
        self.res[key + '_cpu'] = meterlib.proc_cpu_seconds(b.proc.pid) - c0
        if self.perf:
            self.perf.send_signal(signal.SIGINT)
            self.perf.wait(60)
            self.perf = None
            with open(os.path.join(self.dir, 'perf-ingest.txt'), 'w') as f:
                subprocess.run(['perf', 'report', '-i', os.path.join(self.dir, 'perf-ingest.data'),
                                '--children', '--sort', 'sym', '--stdio', '-g', 'none',
                                '--percent-limit', '0.5'], stdout=f, stderr=subprocess.DEVNULL)

    def finish(self):
        b = self.broker
        self.res['broker_rss_kib'] = meterlib.proc_status_kib(b.proc.pid, 'VmRSS')
        b.stop()
        con = sqlite3.connect(f'file:{b.db}?mode=ro', uri=True)
        self.res['stored_rows'] = con.execute('SELECT count(*) FROM samples').fetchone()[0]
        self.res['audit_rows'] = con.execute(
            "SELECT count(*) FROM audit WHERE action = 'samples.ingest'").fetchone()[0]
        con.close()

    def stop(self):
        if self.perf:
            self.perf.kill()
            self.perf.wait()
        if self.broker:
            self.broker.stop()


def main():
    if not os.access(meterlib.METER_LOAD, os.X_OK):
        die(f'{meterlib.METER_LOAD} is not built: ninja -C build')
    tmp = meterlib.tmpdir('cbingest-')
    rounds = []
    t_begin = time.time()
    rows = HOSTS * PER_HOST * WINDOWS
    # Every run sends the same windows (the last ends two windows before now), so a rerun of
    # the same batches is all duplicates.
    now = int(time.time())
    os.environ['METER_BASE'] = str(now - now % 300 - (WINDOWS + 2) * 300)

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    log(f'{rows} windows per run: {HOSTS} hosts x {PER_HOST} instances x {WINDOWS} windows, '
        f'{BATCH} per batch; {ROUNDS} rounds')
    current = None
    try:
        for k in range(ROUNDS):
            current = Round(tmp, k)
            # Alternate which side goes first, so that neither always gets the quieter disk.
            log(f'round {k + 1}: bare insert, broker set-up, POST, POST again (duplicates)')
            if k % 2:
                current.setup_broker()
                current.post('api')
                current.post('dup')
                current.finish()
                current.bare()
            else:
                current.bare()
                current.setup_broker()
                current.post('api')
                current.post('dup')
                current.finish()
            rounds.append(current)
            current = None
    except KeyboardInterrupt:
        log('interrupted')
        if current:
            current.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        sys.exit(130)
    except BaseException:
        if current:
            current.stop()
        raise

    print()
    print(f'Ingest: {rows} windows per run ({HOSTS} hosts x {PER_HOST} instances x {WINDOWS} '
          f'five-minute windows), {BATCH} per POST / per bare transaction, ordered as an agent '
          f'sends them (by window, then instance); {ROUNDS} rounds')
    print()
    trows = []
    ok = True
    for r in rounds:
        res = r.res
        api, bare, dup = res['api'], res['bare'], res['dup']
        trows.append([f'round {r.k + 1}', f'{bare["rows_per_s"]:,.0f}',
                      f'{api["rows_per_s"]:,.0f}', f'{api["rows_per_s"] / bare["rows_per_s"]:.2f}',
                      f'{dup["rows"] / dup["seconds"]:,.0f}',
                      f'{res["api_cpu"] / api["stored"] * 1e6:.1f}',
                      f'{res["broker_rss_kib"] / 1024:.0f}'])
        ok = ok and res['stored_rows'] == rows and api['stored'] == rows and \
            dup['stored'] == 0 and dup['duplicates'] == rows and \
            res['audit_rows'] == 2 * api['batches'] and api['failed_batches'] == 0
    bare_m = median([r.res['bare']['rows_per_s'] for r in rounds])
    api_m = median([r.res['api']['rows_per_s'] for r in rounds])
    trows.append(['median', f'{bare_m:,.0f}', f'{api_m:,.0f}', f'{api_m / bare_m:.2f}',
                  f'{median([r.res["dup"]["rows"] / r.res["dup"]["seconds"] for r in rounds]):,.0f}',
                  f'{median([r.res["api_cpu"] / r.res["api"]["stored"] * 1e6 for r in rounds]):.1f}',
                  ''])
    table(trows, ['', 'bare rows/s', 'API rows/s', 'API/bare', 'API dup rows/s',
                  'broker CPU us/row', 'broker RSS MiB'])
    a = rounds[0].res['api']
    print()
    print(f'per run: {a["batches"]:.0f} POSTs of {BATCH} windows, {a["body_bytes"] / 1e6:.0f} MB '
          f'of JSON; bare: one transaction of {BATCH} rows each (WAL, synchronous=FULL)')
    print(f'every run: {rows} samples in the database, 0 stored by the rerun, one samples.ingest '
          f'audit record per POST: {"yes" if ok else "NO (see the rounds above)"}')
    print()
    goals = [
        ['samples/s through the API (median)', f'{api_m:,.0f}', '>= 50,000',
         'PASS' if api_m >= 50000 else 'MISS'],
        ['API / bare insert (medians)', f'{api_m / bare_m:.2f}', '>= 0.50',
         'PASS' if api_m / bare_m >= 0.5 else 'MISS'],
        ['every window stored exactly once', 'yes' if ok else 'no', 'yes',
         'PASS' if ok else 'FAIL'],
    ]
    table(goals, ['goal', 'measured', 'target', ''])
    print()
    print(f'(run took {time.time() - t_begin:.0f} s; load average now {os.getloadavg()[0]:.2f})')
    if os.environ.get('BENCH_KEEP') == '1' or PERF:
        log(f'kept {tmp}' + (' (perf-ingest.txt in each round)' if PERF else ''))
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if not ok:
        sys.exit(1)


if __name__ == '__main__':
    main()
