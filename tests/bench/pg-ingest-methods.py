#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""How to put a batch of metering windows into PostgreSQL, measured on the server alone: the
same rows in batches of INGEST_BATCH (500) into a copy of the samples table (its primary key
and its index on start), each batch one transaction, by

  unnest  INSERT ... SELECT FROM unnest() of one array per column ... ON CONFLICT DO NOTHING
          (what br-metering.c sends on PostgreSQL);
  values  one multi-row INSERT ... VALUES (...),(...) ... ON CONFLICT DO NOTHING;
  copy    COPY into a temporary table (ON COMMIT DELETE ROWS), then INSERT ... SELECT ... ON
          CONFLICT DO NOTHING from it;
  bare    COPY straight into the table (no duplicate handling: the reference).

Every method runs as one psql script (literal SQL, no parameters) against its own empty table,
twice in turn: rows per second of wall time (psql's parse of the script included), and the CPU
time the PostgreSQL server spent per row (robust on a loaded machine; the postmaster's children,
those that ended included). Usage: pg-ingest-methods.py POSTGRESQL_URL (a throw-away cluster from
tools/pg-cluster.sh; it makes and drops tables named cbim_*). Python standard library only."""
import os
import subprocess
import sys
import tempfile
import time

BATCH = int(os.environ.get('INGEST_BATCH', '500'))
BATCHES = int(os.environ.get('INGEST_BATCHES', '200'))
COLS = ('instance_id bigint NOT NULL, start bigint NOT NULL, host_id bigint NOT NULL,'
        ' duration bigint NOT NULL, readings bigint NOT NULL, expected bigint NOT NULL,'
        ' vcpus bigint, memory_mib bigint, cpu_avg double precision, cpu_max double precision,'
        ' mem_avg double precision, mem_max double precision, mem_source text,'
        ' disk_rd_bytes bigint, disk_wr_bytes bigint, disk_rd_reqs bigint, disk_wr_reqs bigint,'
        ' net_rx_bytes bigint, net_tx_bytes bigint, net_rx_pkts bigint, net_tx_pkts bigint')
TYPES = [c.split()[1] if c.split()[1] != 'double' else 'float8'
         for c in COLS.split(', ')]


def rows():
    """The rows of every batch, by window then instance as an agent sends them."""
    out = []
    for k in range(BATCHES * BATCH):
        inst, w = 1 + k % 200, k // 200
        h = (k * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        cpu = (h % 1800) / 1000.0
        out.append([inst, 1_700_000_000 + w * 300, 1 + inst % 4, 300, 30, 30, 2, 2048, cpu,
                    cpu + 0.1, 300.0 + h % 1000, 400.0 + h % 1000, 'balloon', h % 50000000,
                    h % 20000000, h % 5000, h % 3000, h % 9000000, h % 3000000, h % 7000,
                    h % 2000])
    return [out[i:i + BATCH] for i in range(0, len(out), BATCH)]


def lit(v):
    if isinstance(v, str):
        return f"'{v}'"
    return repr(v)


def script(method, table, batches):
    parts = []
    if method == 'copy':
        parts.append(f'CREATE TEMP TABLE cbim_t (LIKE {table}) ON COMMIT DELETE ROWS;\n')
    for b in batches:
        parts.append('BEGIN;\n')
        if method == 'unnest':
            arrays = []
            for c, t in enumerate(TYPES):
                vals = ','.join(f'"{r[c]}"' if t == 'text' else repr(r[c]) for r in b)
                arrays.append(f"'{{{vals}}}'::{t}[]")
            parts.append(f'INSERT INTO {table} SELECT * FROM unnest({", ".join(arrays)})'
                         ' ON CONFLICT DO NOTHING;\n')
        elif method == 'values':
            parts.append(f'INSERT INTO {table} VALUES '
                         + ','.join('(' + ','.join(lit(v) for v in r) + ')' for r in b)
                         + ' ON CONFLICT DO NOTHING;\n')
        else:
            target = 'cbim_t' if method == 'copy' else table
            parts.append(f'COPY {target} FROM STDIN;\n')
            parts.append(''.join('\t'.join(str(v) for v in r) + '\n' for r in b) + '\\.\n')
            if method == 'copy':
                parts.append(f'INSERT INTO {table} SELECT * FROM cbim_t'
                             ' ON CONFLICT DO NOTHING;\n')
        parts.append('COMMIT;\n')
    return ''.join(parts)


def server_cpu(url):
    """CPU seconds of the PostgreSQL server so far: the postmaster, its live children and the
    children it has reaped (cutime/cstime), so backends that ended are counted."""
    pid = int(subprocess.run(['psql', '-X', '-A', '-t', '-d', url, '-c',
                              "SELECT pid FROM pg_stat_activity WHERE backend_type ="
                              " 'checkpointer'"], capture_output=True, text=True,
                             check=True).stdout.split()[0])
    with open(f'/proc/{pid}/stat') as f:
        ppid = int(f.read().rsplit(')', 1)[1].split()[1])
    tick = os.sysconf('SC_CLK_TCK')
    total = 0
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(entry) == ppid:
            total += sum(int(x) for x in fields[11:15])
        elif int(fields[1]) == ppid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def psql(url, sql=None, path=None):
    args = ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url]
    args += ['-f', path] if path else ['-c', sql]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    url = sys.argv[1]
    batches = rows()
    n = BATCHES * BATCH
    best, cpus = {}, {}
    with tempfile.TemporaryDirectory(prefix='cbim-') as tmp:
        for method in ('unnest', 'values', 'copy', 'bare'):
            path = os.path.join(tmp, method + '.sql')
            with open(path, 'w') as f:
                f.write(script(method, f'cbim_{method}', batches))
        for _ in range(2):
            for method in ('unnest', 'values', 'copy', 'bare'):
                t = f'cbim_{method}'
                psql(url, f'DROP TABLE IF EXISTS {t}; CREATE TABLE {t} ({COLS},'
                     f' PRIMARY KEY (instance_id, start)); CREATE INDEX {t}_start ON {t}(start);'
                     ' CHECKPOINT')
                c0, t0 = server_cpu(url), time.monotonic()
                psql(url, path=os.path.join(tmp, method + '.sql'))
                dt, cpu = time.monotonic() - t0, server_cpu(url) - c0
                best[method] = min(best.get(method, dt), dt)
                cpus.setdefault(method, []).append(cpu)
        for method in best:
            psql(url, f'DROP TABLE IF EXISTS cbim_{method}')
    print(f'{BATCHES} batches of {BATCH} rows, one transaction each; wall: the best of two runs;'
          f' server CPU: the lesser of the two runs (load average {os.getloadavg()[0]:.1f})')
    for method, dt in best.items():
        cpu = min(cpus[method])
        print(f'  {method:7} {n / dt:10,.0f} rows/s  {dt * 1e3 / BATCHES:6.2f} ms per batch'
              f'  server CPU {cpu / n * 1e6:5.1f} us per row'
              f' ({min(cpus["bare"]) / cpu:.2f} of bare COPY\'s rate)')


if __name__ == '__main__':
    main()
