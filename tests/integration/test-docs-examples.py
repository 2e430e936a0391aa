#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The documentation's examples run as written.

The convention (docs/README.md): a fenced block whose info string is `sh runnable` is an example
this test runs; `sh runnable-qemu` marks one that needs libvirtd and QEMU (the QEMU lab of
docs/workflow.md), run by the same program with --qemu (the e2e test docs-lab). For each Markdown
file of README.md and docs/ that has such blocks, the test starts a cloudbrokerd of its own on a
free port with an empty state folder and the repository's policies, then runs the file's blocks
in the order of the file, in one bash (`set -euo pipefail`, so variables and functions carry
from block to block), in a fresh folder that holds `state` (the broker's state folder), `build`
(this build) and `policies` (a copy), with HOME and the XDG folders in it. In the blocks, `127.0.0.1:8470`
becomes the broker's address, any other `127.0.0.1:84NN` a free port of its own,
`/tmp/docs-state` the broker's state folder and any other `/tmp/` path one in the test's own
folder. A command that fails fails the test, naming the file and line of its block; processes
left behind whose command line or environment names the test's folder are stopped.

When the block is followed (after blank lines only) by a block of its output (```json, ```text
or ```http), what the commands printed must be the same once the values that differ from run
to run are masked: times, dates, tokens, request ids, hashes, UUIDs, the broker's port and the
test's folders, and whether an unfinished job is still queued or already running. CB_DOCS_REGENERATE=1 writes what the commands printed into those output blocks
instead (review the diff).

Also: docs/policies.md has a section `## NAME, field by field` for every file of policies/."""
import difflib
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
import cbtest  # noqa: E402

c = cbtest.Checks('docs-examples')
SOURCE = os.path.abspath(cbtest.SOURCE)
BUILD = os.path.abspath(cbtest.BUILD)
FENCE = re.compile(r'^(`{3,})(.*)$')
OUTPUT_KINDS = ('json', 'text', 'http')
REGENERATE = os.environ.get('CB_DOCS_REGENERATE') == '1'


class Block:
    def __init__(self, path, line, info, body, start, end):
        self.path, self.line, self.info, self.body = path, line, info, body
        self.start, self.end = start, end  # the body's line range [start, end) in the file
        self.output = None  # the output block that follows, if any


def blocks_of(path):
    """The fenced blocks of @path, with runnable blocks linked to their output blocks."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m.group(1), m.group(2).strip()
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != fence:
            j += 1
        out.append(Block(path, i + 1, info, '\n'.join(lines[i + 1:j]), i + 1, j))
        i = j + 1
    for a, b in zip(out, out[1:]):
        between = lines[a.end + 1:b.line - 1]
        if a.info.startswith('sh runnable') and b.info in OUTPUT_KINDS and \
                not any(x.strip() for x in between):
            a.output = b
    return lines, out


TIMEOUT = int(os.environ.get("CB_DOCS_TIMEOUT", "200"))  # seconds for one file's blocks


def read(path):
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            return f.read()
    except OSError:
        return ''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def substitute(text, ports, state, tmp):
    for doc_port, port in ports.items():
        text = text.replace(f'127.0.0.1:{doc_port}', f'127.0.0.1:{port}')
    text = text.replace('/tmp/docs-state', '\0STATE\0')
    text = re.sub(r'(?<![\w.])/tmp/', tmp + '/', text)
    return text.replace('\0STATE\0', state)


MASKS = [
    (re.compile(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z'), 'TIME'),
    (re.compile(r'^Date: .*$', re.M), 'Date: DATE'),
    (re.compile(r'\bcb[ta]_[A-Za-z0-9_-]{43}'), 'TOKEN'),
    (re.compile(r'\b[0-9a-f]{8}-[0-9a-f]{6}\b'), 'REQUEST-ID'),
    (re.compile(r'\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b'), 'UUID'),
    (re.compile(r'\b[0-9a-f]{64}\b'), 'HASH'),
    (re.compile(r'"version": ?"[^"]*"'), '"version": "VERSION"'),
    # A job the example looks at right after it was made may not have been picked up yet.
    (re.compile(r'("state": ?)"(queued|running)"'), r'\1"UNFINISHED"'),
]


def unsubstitute(text, ports, state, tmp):
    text = text.replace(tmp + '/', '/tmp/').replace(state, '/tmp/docs-state')
    for doc_port, port in ports.items():
        text = text.replace(f'127.0.0.1:{port}', f'127.0.0.1:{doc_port}')
    return '\n'.join(line.rstrip() for line in text.strip('\n').split('\n'))


def mask(text):
    for rx, repl in MASKS:
        text = rx.sub(repl, text)
    # Content-Length follows the masked values' lengths: compare only that it is there.
    text = re.sub(r'^Content-Length: \d+', 'Content-Length: N', text, flags=re.M)
    return '\n'.join(line.rstrip() for line in text.strip('\n').split('\n'))


def run_file(path, runnable):
    """Runs @runnable (blocks of @path) against a broker of their own. Returns: the outputs
    ({block: text}) of the blocks that ran, and the number of blocks that ran."""
    rel = os.path.relpath(path, SOURCE)
    work = tempfile.mkdtemp(prefix='cb-docs-')
    tmp = os.path.join(work, 'tmp')
    os.makedirs(tmp)
    # As /tmp is for the reader: a lab's unprivileged daemon must reach its folders there.
    os.chmod(work, 0o755)
    os.chmod(tmp, 0o1777)
    broker = cbtest.Broker(state_dir=os.path.join(work, 'state'))
    outputs = {}
    try:
        os.makedirs(broker.state_dir)
        broker.start(port=free_port())
        port, state = broker.port, broker.state_dir
        # A copy of the policies, so that no block can change the repository's.
        os.symlink(BUILD, os.path.join(work, 'build'))
        shutil.copytree(os.path.join(SOURCE, 'policies'), os.path.join(work, 'policies'))
        outdir = os.path.join(work, 'out')
        os.makedirs(outdir)
        ports = {8470: port}
        for b in runnable:
            for doc_port in re.findall(r'127\.0\.0\.1:(84\d\d)\b', b.body):
                ports.setdefault(int(doc_port), free_port())
        script = ['set -euo pipefail', f'cd {work}']
        for k, b in enumerate(runnable):
            script.append(f'echo {k} > {outdir}/at')
            script.append('{')
            script.append(substitute(b.body, ports, state, tmp))
            script.append(f'}} > {outdir}/{k}.out 2> {outdir}/{k}.err')
        script.append(f'echo done > {outdir}/at')
        env = dict(os.environ)
        env['PATH'] = os.path.join(BUILD, 'cli') + ':' + env.get('PATH', '/usr/bin:/bin')
        env.pop('CLOUDBROKER_URL', None)
        env.pop('CLOUDBROKER_TOKEN', None)
        env.pop('CLOUDBROKER_TOKEN_FILE', None)
        env['HOME'] = work
        for var, sub in (('XDG_RUNTIME_DIR', 'run'), ('XDG_CONFIG_HOME', 'config'),
                         ('XDG_CACHE_HOME', 'cache'), ('XDG_DATA_HOME', 'data'),
                         ('XDG_STATE_HOME', 'xdg-state')):
            env[var] = os.path.join(work, sub)
            os.makedirs(env[var], mode=0o700)
        t0 = time.time()
        p = subprocess.Popen(['bash', '-c', '\n'.join(script)], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        try:
            _, stderr = p.communicate(timeout=TIMEOUT)
            why = f'exit {p.returncode}'
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            _, stderr = p.communicate()
            why = f'still running after {TIMEOUT} s'
        with open(os.path.join(outdir, 'at')) as f:
            at = f.read().strip()
        ran = len(runnable) if at == 'done' else int(at)
        if at != 'done':
            b = runnable[ran]
            err = read(os.path.join(outdir, f'{ran}.err'))
            out = read(os.path.join(outdir, f'{ran}.out'))
            c.ok(False, f'{rel}:{b.line}: the block fails ({why}):\n{b.body}\n'
                        f'--- stdout:\n{out[-2000:]}\n--- stderr:\n{err[-2000:]}{stderr[-500:]}')
        else:
            c.eq(p.returncode, 0, f'{rel}: the runnable blocks run ({stderr[-500:]})')
        for k in range(ran):
            outputs[runnable[k]] = unsubstitute(read(os.path.join(outdir, f'{k}.out')), ports,
                                                state, tmp)
        print(f'{rel}: {ran} of {len(runnable)} runnable blocks ran in {time.time() - t0:.1f} s',
              flush=True)
    finally:
        broker.cleanup()
        stop_leftovers(work)
        shutil.rmtree(work, ignore_errors=True)
    return outputs


def stop_leftovers(work):
    """Stops what the blocks started and left running (a broker, a libvirtd and its guests): the
    processes whose command line or environment names @work."""
    def named(pid):
        for what in ('cmdline', 'environ'):
            try:
                with open(f'/proc/{pid}/{what}', 'rb') as f:
                    if work.encode() in f.read():
                        return True
            except OSError:
                pass
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()
                and named(p)]
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        if not pids:
            return
        time.sleep(1)


def compare(path, lines, outputs):
    """Checks (or with CB_DOCS_REGENERATE=1 rewrites) each output block. Returns: the new
    lines of the file."""
    rel = os.path.relpath(path, SOURCE)
    new = list(lines)
    # From the end, so that rewriting a block does not move the ones before it.
    for b, raw in sorted(outputs.items(), key=lambda x: -x[0].line):
        if not b.output:
            continue
        o = b.output
        want_masked = mask('\n'.join(line.rstrip() for line in o.body.strip('\n').split('\n')))
        got = mask(raw)
        if REGENERATE:
            if got != want_masked:
                new[o.start:o.end] = raw.split('\n')
            continue
        if got != want_masked:
            diff = '\n'.join(difflib.unified_diff(want_masked.split('\n'), got.split('\n'),
                                                  'documented', 'printed', lineterm='', n=1))
            c.ok(False, f'{rel}:{o.line}: the output of the block at line {b.line} differs:\n'
                        f'{diff[:3000]}')
        else:
            c.ok(True, f'{rel}:{o.line}: output as documented')
    return new


def check_policies_documented():
    with open(os.path.join(SOURCE, 'docs', 'policies.md'), encoding='utf-8') as f:
        text = f.read()
    files = sorted(f for f in os.listdir(os.path.join(SOURCE, 'policies')) if f.endswith('.json'))
    c.ok(len(files) >= 6, f'policies/ has its files: {files}')
    for name in files:
        c.ok(f'## {name}, field by field' in text,
             f'docs/policies.md has a section "## {name}, field by field"')
        c.ok(f'| `{name}` |' in text, f'docs/policies.md lists {name} in its table')


def main():
    qemu = '--qemu' in sys.argv[1:]
    marker = 'sh runnable-qemu' if qemu else 'sh runnable'
    for tool in ('bash', 'curl', 'jq') + (('libvirtd', 'virsh', 'qemu-img') if qemu else ()):
        if not shutil.which(tool):
            print(f'SKIP: {tool} is not installed')
            sys.exit(77)
    t0 = time.time()
    if not qemu:
        check_policies_documented()
    docs = [os.path.join(SOURCE, 'README.md')] + sorted(
        os.path.join(SOURCE, 'docs', f) for f in os.listdir(os.path.join(SOURCE, 'docs'))
        if f.endswith('.md'))
    total = 0
    for path in docs:
        lines, blocks = blocks_of(path)
        runnable = [b for b in blocks if b.info == marker]
        if not runnable:
            continue
        total += len(runnable)
        outputs = run_file(path, runnable)
        new = compare(path, lines, outputs)
        if REGENERATE and new != lines:
            with open(path, 'w', encoding='utf-8') as f:
                f.write('\n'.join(new))
            print(f'{os.path.relpath(path, SOURCE)}: output blocks rewritten', flush=True)
    c.ok(total >= (10 if qemu else 40), f'enough examples are marked {marker}: {total}')
    print(f'docs-examples: {total} runnable blocks in {time.time() - t0:.1f} s', flush=True)
    c.done()


if __name__ == '__main__':
    main()
