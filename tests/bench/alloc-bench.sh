#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Allocation benchmark: the wall time for cloudbrokerd to allocate N real instances (default 10)
# on the local libvirtd, against a shell script making the same libvirt calls with virsh
# (vol-create-as an overlay on the same base, define, start), in the same run, side by side.
# Goal: broker <= 1.2 x the script. A benchmark, not a test: it prints PASS or MISS and exits 0
# either way; non-zero only when something failed to run. See tests/bench/README.md.
#
# Needs root (qemu:///system), libvirtd + virtlogd (started when not running, as the
# integration tests do, and left running), qemu-system-x86_64, virsh and python3.
#
# Environment (all optional):
#   CB_BUILD_DIR          build directory (default: <source>/build)
#   ALLOC_INSTANCES       instances per allocation (default 10)
#   ALLOC_ROUNDS          rounds; each times the script and the broker once, alternating which
#                         goes first (default 3)
#   ALLOC_DOMAIN_TYPE     qemu, kvm or auto (default qemu, software emulation, as the integration
#                         tests use; auto: kvm when offered, as the broker decides); both
#                         sides use the same type
#   BENCH_TMPDIR          where the temporary folder goes (default $TMPDIR or /tmp)
#   BENCH_KEEP=1          keep the temporary folder (broker log, database, XML)
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE=$(cd "$HERE/../.." && pwd)
BUILD=${CB_BUILD_DIR:-$SOURCE/build}
BROKERD=$BUILD/broker/cloudbrokerd
LIB=$HERE/alloclib.py
BENCHLIB=$HERE/benchlib.py
URI=qemu:///system
export PYTHONDONTWRITEBYTECODE=1

N=${ALLOC_INSTANCES:-10}
ROUNDS=${ALLOC_ROUNDS:-3}
DOMAIN_TYPE=${ALLOC_DOMAIN_TYPE:-qemu}
KEEP=${BENCH_KEEP:-0}
TMPBASE=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}

exec 3>&2
TAG=cbab$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
POOL=$TAG-pool
WORK=""
BROKER_PID=""
POOL_MADE=""

log() { printf '== %s\n' "$*" >&2; }
fail() { printf 'alloc-bench: %s\n' "$*" >&2; exit 1; }
v() { virsh -q -c "$URI" "$@"; }

# Every domain this run made has its disk in $POOL: remove those, then the pool and the folder.
cleanup() {
    local rc=$? name
    trap - EXIT INT TERM
    if [[ -n $BROKER_PID ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    if [[ -n $POOL_MADE ]]; then
        for name in $(virsh -q -c "$URI" list --all --name 2>/dev/null); do
            if virsh -q -c "$URI" dumpxml --inactive "$name" 2>/dev/null | grep -q "pool=['\"]$POOL['\"]"; then
                virsh -q -c "$URI" destroy "$name" >/dev/null 2>&1 || true
                virsh -q -c "$URI" undefine "$name" --nvram >/dev/null 2>&1 ||
                    virsh -q -c "$URI" undefine "$name" >/dev/null 2>&1 || true
            fi
        done
        virsh -q -c "$URI" pool-destroy "$POOL" >/dev/null 2>&1 || true
        virsh -q -c "$URI" pool-undefine "$POOL" >/dev/null 2>&1 || true
    fi
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ $KEEP == 1 ]]; then
            printf '== kept %s\n' "$WORK" >&3
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- preconditions ----
[[ $(id -u) == 0 ]] || fail "needs root for $URI"
for p in virsh qemu-system-x86_64 python3; do
    command -v "$p" >/dev/null || fail "$p is not installed"
done
[[ -x $BROKERD ]] || fail "$BROKERD not built (ninja -C $BUILD)"
[[ $N =~ ^[0-9]+$ && $N -ge 1 && $N -le 20 ]] || fail "ALLOC_INSTANCES must be 1..20"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || fail "ALLOC_ROUNDS must be >= 1"
for d in virtlogd libvirtd; do
    pgrep -x "$d" >/dev/null || { log "starting $d"; "$d" -d; }
done
for _ in $(seq 100); do virsh -c "$URI" version >/dev/null 2>&1 && break; sleep 0.2; done
virsh -c "$URI" version >/dev/null 2>&1 || fail "libvirtd does not answer on $URI"
if [[ $DOMAIN_TYPE == auto ]]; then
    if virsh -c "$URI" domcapabilities --virttype kvm >/dev/null 2>&1; then
        DOMAIN_TYPE=kvm
    else
        DOMAIN_TYPE=qemu
    fi
fi
[[ $DOMAIN_TYPE == kvm || $DOMAIN_TYPE == qemu ]] || fail "ALLOC_DOMAIN_TYPE: kvm, qemu or auto"

# ---- the lab: a pool with a 1 MiB boot-sector base, policies naming it ----
WORK=$(mktemp -d "$TMPBASE/alloc-bench-XXXXXX")
chmod 755 "$WORK"
mkdir -m 755 "$WORK/pool" "$WORK/xml"
python3 "$LIB" boot-image "$WORK/pool/halt.raw"
v pool-define-as "$POOL" dir --target "$WORK/pool" >/dev/null
POOL_MADE=1
v pool-start "$POOL" >/dev/null
cp -r "$SOURCE/policies" "$WORK/policies"
python3 - "$WORK/policies" "$POOL" "$DOMAIN_TYPE" <<'EOF'
import json, os, sys
d, pool, dtype = sys.argv[1:]
def edit(name, fn):
    p = os.path.join(d, name)
    with open(p) as f:
        doc = json.load(f)
    fn(doc)
    with open(p, 'w') as f:
        json.dump(doc, f, indent=2)
edit('catalog.json', lambda c: c.update(images=[
    {'name': 'halt', 'pool': pool, 'volume': 'halt.raw', 'format': 'raw'}]))
edit('lifecycle.json', lambda c: c.update(domain_type=dtype, shutdown_timeout_seconds=1,
                                          reconcile_seconds=3600, job_retry_seconds=60))
edit('placement.json', lambda c: c.update(anti_affinity=False))
EOF

# ---- the broker ----
mkdir -m 700 "$WORK/state"
"$BROKERD" --state-dir "$WORK/state" --policy-dir "$WORK/policies" --listen 127.0.0.1:0 \
    >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
PORT=$(python3 "$BENCHLIB" broker-port "$WORK/broker.log" "$BROKER_PID" 15)
log "cloudbrokerd on port $PORT (pid $BROKER_PID), pool $POOL, domain type $DOMAIN_TYPE"
python3 "$LIB" setup "$PORT" "$WORK/state" "$POOL" "$WORK/env"
python3 "$LIB" bump-ids "$WORK/state/cloudbroker.db" "$((100000 + RANDOM * 16 + RANDOM % 16))"

# ---- the script's domains: the XML br_domain_xml_build() makes for the same instance ----
MAXMEM=$((64 * 2 * 1024)) # policies/lifecycle.json growth: memory x2, vCPUs x2
make_xml() { # NAME UUID VOLUME
    local cpu=""
    [[ $DOMAIN_TYPE == kvm ]] && cpu="  <cpu mode=\"host-model\"/>"
    cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<domain type="$DOMAIN_TYPE">
  <name>$1</name>
  <uuid>$2</uuid>
  <title>$1</title>
  <description>cloudbroker production instance 0 of allocation 0; department: 基准测试局; system: alloc-bench</description>
  <metadata>
    <cloudbroker:instance xmlns:cloudbroker="urn:x-cloudbroker:instance:1">
      <cloudbroker:department id="1">基准测试局</cloudbroker:department>
      <cloudbroker:system id="1">alloc-bench</cloudbroker:system>
      <cloudbroker:allocation id="0" purpose="production"/>
      <cloudbroker:instance id="0" index="0"/>
      <cloudbroker:request id="0"/>
    </cloudbroker:instance>
  </metadata>
  <memory unit="KiB">$MAXMEM</memory>
  <currentMemory unit="KiB">65536</currentMemory>
  <vcpu placement="static" current="1">2</vcpu>
  <os>
    <type arch="x86_64" machine="pc">hvm</type>
    <boot dev="hd"/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
$cpu
  <clock offset="utc"/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type="volume" device="disk">
      <driver name="qemu" type="qcow2"/>
      <source pool="$POOL" volume="$3"/>
      <target dev="vda" bus="virtio"/>
    </disk>
    <memballoon model="virtio">
      <stats period="10"/>
    </memballoon>
    <serial type="pty"/>
    <console type="pty"/>
  </devices>
</domain>
EOF
}

# The script under comparison: the calls one after the other, one virsh process each.
script_run() { # ROUND
    local i name
    for ((i = 0; i < N; i++)); do
        name=$TAG-s$1-$i
        virsh -q -c "$URI" vol-create-as "$POOL" "$name.qcow2" 1G --backing-vol halt.raw \
            --backing-vol-format raw --format qcow2 >/dev/null
        virsh -q -c "$URI" define "$WORK/xml/$name.xml" >/dev/null
        virsh -q -c "$URI" start "$name" >/dev/null
    done
}

running_count() { # NAME...
    local n=0 name
    for name in "$@"; do
        [[ $(virsh -q -c "$URI" domstate "$name" 2>/dev/null) == running ]] && n=$((n + 1))
    done
    echo "$n"
}

# Between measurements: nothing of the previous one left running or on disk.
remove_domains() { # NAME...
    local name
    for name in "$@"; do
        virsh -q -c "$URI" destroy "$name" >/dev/null 2>&1 || true
        virsh -q -c "$URI" undefine "$name" --nvram >/dev/null 2>&1 || true
        virsh -q -c "$URI" vol-delete "$name.qcow2" --pool "$POOL" >/dev/null 2>&1 || true
    done
}

now() { date +%s.%N; }

# A warm-up: the first QEMU start of a run reads its binary and firmware from disk.
log "warm-up"
make_xml "$TAG-warm" "$(cat /proc/sys/kernel/random/uuid)" "$TAG-warm.qcow2" >"$WORK/xml/$TAG-warm.xml"
v vol-create-as "$POOL" "$TAG-warm.qcow2" 1G --backing-vol halt.raw --backing-vol-format raw \
    --format qcow2 >/dev/null
v define "$WORK/xml/$TAG-warm.xml" >/dev/null
v start "$TAG-warm" >/dev/null
remove_domains "$TAG-warm"

declare -a SCRIPT_T BROKER_T
for ((r = 1; r <= ROUNDS; r++)); do
    log "round $r/$ROUNDS: a request for $N instances through its trial (not timed)"
    REQ=$(python3 "$LIB" trial-passed "$PORT" "$WORK/env" "$N" halt)
    names=()
    for ((i = 0; i < N; i++)); do
        names+=("$TAG-s$r-$i")
        make_xml "$TAG-s$r-$i" "$(cat /proc/sys/kernel/random/uuid)" "$TAG-s$r-$i.qcow2" \
            >"$WORK/xml/$TAG-s$r-$i.xml"
    done
    for side in $( ((r % 2)) && echo "script broker" || echo "broker script"); do
        if [[ $side == script ]]; then
            t0=$(now)
            script_run "$r"
            t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
            [[ $(running_count "${names[@]}") == "$N" ]] || fail "the script's domains are not all running"
            SCRIPT_T+=("$t")
            printf '   script: %6.2f s\n' "$t" >&2
            remove_domains "${names[@]}"
        else
            out=$(python3 "$LIB" allocate "$PORT" "$WORK/env" "$REQ") || fail "allocate failed"
            read -r t alloc rest <<<"$out"
            read -r -a bnames <<<"$rest"
            [[ ${#bnames[@]} == "$N" ]] || fail "allocation $alloc lists ${#bnames[@]} instances"
            [[ $(running_count "${bnames[@]}") == "$N" ]] || fail "the broker's domains are not all running"
            BROKER_T+=("$t")
            printf '   broker: %6.2f s  (allocation %s: %s .. %s)\n' "$t" "$alloc" \
                "${bnames[0]}" "${bnames[-1]}" >&2
            # Out of band, so the next measurement starts from the same host; the broker is
            # not asked to terminate (that would need the whole termination workflow).
            remove_domains "${bnames[@]}"
        fi
    done
done

# ---- report ----
python3 - "$N" "$DOMAIN_TYPE" "${SCRIPT_T[*]}" "${BROKER_T[*]}" <<'EOF'
import statistics, sys
n, dtype, s, b = sys.argv[1], sys.argv[2], list(map(float, sys.argv[3].split())), \
    list(map(float, sys.argv[4].split()))
print(f'allocation benchmark: {n} instances per allocation, domain type {dtype}, '
      f'{len(s)} round(s)')
print(f'{"round":>5} {"script s":>9} {"broker s":>9} {"ratio":>6}')
for i, (x, y) in enumerate(zip(s, b), 1):
    print(f'{i:>5} {x:9.2f} {y:9.2f} {y / x:6.2f}')
ms, mb = statistics.median(s), statistics.median(b)
print(f'{"median":>5} {ms:9.2f} {mb:9.2f} {mb / ms:6.2f}')
print(f'per instance: script {ms / int(n) * 1000:.0f} ms, broker {mb / int(n) * 1000:.0f} ms')
print(f'goal broker <= 1.2 x script: {"PASS" if mb / ms <= 1.2 else "MISS"} ({mb / ms:.2f})')
EOF
