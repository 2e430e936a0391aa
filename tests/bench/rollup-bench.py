#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Rollup benchmark (issue 4, benchmark 3): one UTC day of 5-minute samples for 5,000 instances
(1.44 million rows) rolled up through POST /v1/metering/rollup. Root and libvirt are not
needed. See README.md ("Metering: rollup")."""
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

INSTANCES = env_int('ROLLUP_INSTANCES', 5000)
RUNS = env_int('ROLLUP_RUNS', 3)
PERF = os.environ.get('BENCH_PERF') == '1'

# The read of br_metering_rollup_day() (broker/br-metering.c), copied: keep the two in step;
# and, for comparison, the first version's read (index on start, then a sort).
COLUMNS = ('instance_id, duration, readings, expected, vcpus, memory_mib, cpu_avg, cpu_max,'
           ' mem_avg, mem_max, disk_rd_bytes, disk_wr_bytes, disk_rd_reqs, disk_wr_reqs,'
           ' net_rx_bytes, net_tx_bytes, net_rx_pkts, net_tx_pkts')
S_COLUMNS = ('s.instance_id, s.duration, s.readings, s.expected, s.vcpus,'
             ' CASE WHEN i.memory_mib > 0 AND (s.memory_mib IS NULL OR'
             '  s.memory_mib > i.memory_mib) THEN i.memory_mib ELSE s.memory_mib END,'
             ' s.cpu_avg, s.cpu_max, s.mem_avg, s.mem_max, s.disk_rd_bytes, s.disk_wr_bytes,'
             ' s.disk_rd_reqs, s.disk_wr_reqs, s.net_rx_bytes, s.net_tx_bytes, s.net_rx_pkts,'
             ' s.net_tx_pkts')
READS = [
    ('the broker\'s query (primary-key range per instance)',
     f'SELECT {S_COLUMNS} FROM instances i CROSS JOIN samples s ON s.instance_id = i.id'
     ' AND s.start >= ?1 AND s.start < ?2 ORDER BY i.id, s.start'),
    ('the first version (index on start, sort)',
     f'SELECT {COLUMNS} FROM samples WHERE start >= ?1 AND start < ?2 ORDER BY instance_id, start'),
]


def main():
    if not os.access(meterlib.METER_LOAD, os.X_OK):
        die(f'{meterlib.METER_LOAD} is not built: ninja -C build')
    tmp = meterlib.tmpdir('cbrollup-')
    broker = None
    perf = None
    t_begin = time.time()
    # Three days ago: inside the sample retention, and neither yesterday nor today, which the
    # broker's own periodic rollup recomputes when it starts.
    now = int(time.time())
    day_start = now - now % 86400 - 3 * 86400
    day = time.strftime('%Y-%m-%d', time.gmtime(day_start))

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    times, cpus = [], []
    try:
        broker = meterlib.BenchBroker(tmp, {'lifecycle.json': {'reconcile_seconds': 86400}})
        broker.start()
        vendor = broker.account('bench-vendor', 'vendor')
        hid, _ = broker.add_host(vendor, 'bench-host', 'test:///default')
        broker.stop()
        log(f'writing {INSTANCES} instances and {INSTANCES * 288} samples of {day} into the '
            'stopped broker\'s database')
        first = meterlib.add_instances(broker.db, [hid], INSTANCES)[hid][0]
        p = subprocess.run([meterlib.METER_LOAD, 'generate', broker.db, str(first),
                            str(INSTANCES), str(day_start), str(hid)], capture_output=True,
                           text=True)
        if p.returncode != 0:
            die(f'generate: {p.stderr}')
        log(p.stdout.strip())
        db_mib = sum(os.path.getsize(broker.db + s) for s in ('', '-wal')
                     if os.path.exists(broker.db + s)) / 1048576
        broker.start()
        time.sleep(1)   # the metering thread's first pass (yesterday and today: empty)
        for k in range(RUNS):
            if PERF and k == 0:
                perf = subprocess.Popen(['perf', 'record', '-q', '--call-graph', 'dwarf,32768',
                                         '-F', '199', '-o', os.path.join(tmp, 'perf-rollup.data'),
                                         '-p', str(broker.proc.pid)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                time.sleep(1)
            c0 = meterlib.proc_cpu_seconds(broker.proc.pid)
            t0 = time.perf_counter()
            doc = meterlib.http_expect(broker.port, 'POST', '/v1/metering/rollup', 200,
                                       body={'day': day}, token=vendor, timeout=600)
            times.append(time.perf_counter() - t0)
            cpus.append(meterlib.proc_cpu_seconds(broker.proc.pid) - c0)
            if perf:
                perf.send_signal(signal.SIGINT)
                perf.wait(60)
                perf = None
            if doc.get('instances') != INSTANCES:
                die(f'rollup answered {doc}')
            log(f'run {k + 1}: {times[-1]:.2f} s')
        rss = meterlib.proc_status_kib(broker.proc.pid, 'VmHWM')
        broker.stop()

        # Check one instance's rollup against its samples.
        con = sqlite3.connect(f'file:{broker.db}?mode=ro', uri=True)
        n_roll = con.execute('SELECT count(*) FROM rollups WHERE day = ?', (day,)).fetchone()[0]
        iid = first + INSTANCES // 2
        vals = sorted(r[0] for r in con.execute(
            'SELECT cpu_avg FROM samples WHERE instance_id = ? AND start >= ? AND start < ?',
            (iid, day_start, day_start + 86400)))
        want_avg = sum(vals) / len(vals)
        want_p95 = vals[-(-len(vals) * 95 // 100) - 1]
        want_max = con.execute('SELECT max(cpu_max) FROM samples WHERE instance_id = ? AND'
                               ' start >= ? AND start < ?',
                               (iid, day_start, day_start + 86400)).fetchone()[0]
        got = con.execute('SELECT cpu_avg, cpu_p95, cpu_max, windows, coverage,'
                          ' length(cpu_util_hist) FROM rollups WHERE instance_id = ? AND day = ?',
                          (iid, day)).fetchone()
        con.close()
        # Where the time goes: the rollup's read alone, as the broker does it and along the key.
        scans = []
        for label, sql in READS:
            cpu = []
            for _ in range(2):
                p = subprocess.run([meterlib.METER_LOAD, 'scan', broker.db, str(day_start), sql],
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    die(f'scan: {p.stderr}')
                f = dict(kv.split('=') for kv in p.stdout.split()[1:])
                if int(f['rows']) != INSTANCES * 288:
                    die(f'scan read {f["rows"]} rows')
                cpu.append(float(f['cpu_seconds']))
            scans.append((label, min(cpu)))
        check_ok = (n_roll == INSTANCES and abs(got[0] - want_avg) < 1e-9 and
                    got[1] == want_p95 and got[2] == want_max and got[3] == 288 and
                    got[4] == 1.0 and got[5] == 404)
    except KeyboardInterrupt:
        log('interrupted')
        if perf:
            perf.kill()
        if broker:
            broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        sys.exit(130)
    finally:
        if broker:
            broker.stop()

    if PERF:
        with open(os.path.join(tmp, 'perf-rollup.txt'), 'w') as f:
            subprocess.run(['perf', 'report', '-i', os.path.join(tmp, 'perf-rollup.data'),
                            '--children', '--sort', 'sym', '--stdio', '-g', 'none',
                            '--percent-limit', '0.5'], stdout=f, stderr=subprocess.DEVNULL)

    print()
    print(f'Rollup: {day}, {INSTANCES} instances x 288 five-minute windows = '
          f'{INSTANCES * 288:,} samples ({db_mib:.0f} MiB database), '
          'POST /v1/metering/rollup, run again each time (it replaces the day)')
    print()
    rows = [[f'run {k + 1}' + (' (first)' if k == 0 else ''), f'{t:.2f}', f'{c:.2f}',
             f'{INSTANCES * 288 / t:,.0f}'] for k, (t, c) in enumerate(zip(times, cpus))]
    rows.append(['median', f'{median(times):.2f}', f'{median(cpus):.2f}',
                 f'{INSTANCES * 288 / median(times):,.0f}'])
    table(rows, ['', 'wall s', 'broker CPU s', 'samples/s'])
    print()
    print(f'rollups written: {n_roll}; instance {iid}: cpu avg/p95/max {got[0]:.4f}/{got[1]:.4f}/'
          f'{got[2]:.4f} (from its samples: {want_avg:.4f}/{want_p95:.4f}/{want_max:.4f}), '
          f'{got[3]} windows, coverage {got[4]}, histogram {got[5]} bytes: '
          f'{"correct" if check_ok else "WRONG"}')
    print(f'broker VmHWM (peak RSS) {rss / 1024:.0f} MiB')
    print()
    print('the rollup\'s read alone (meter-load scan: every column of every row, CPU seconds, best '
          'of 2):')
    table([[label, f'{c:.2f}'] for label, c in scans], ['read', 'CPU s'])
    print()
    table([['one day for 5,000 instances (median)', f'{median(times):.2f} s', '< 10 s',
            'PASS' if median(times) < 10 else 'MISS'],
           ['the rollup matches its samples', 'yes' if check_ok else 'no', 'yes',
            'PASS' if check_ok else 'FAIL']],
          ['goal', 'measured', 'target', ''])
    print()
    print(f'(run took {time.time() - t_begin:.0f} s; load average now {os.getloadavg()[0]:.2f})')
    if os.environ.get('BENCH_KEEP') == '1' or PERF:
        log(f'kept {tmp}')
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if not check_ok:
        sys.exit(1)


if __name__ == '__main__':
    main()
