#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's two quick-start commands: `tools/setup.sh run` and `tools/setup.sh test`.
# On Debian 12: installs the missing packages, builds with meson, then serves or tests.
set -euo pipefail

PACKAGES=(
    build-essential meson ninja-build pkg-config python3
    libjson-c-dev libsqlite3-dev sqlite3 libcurl4-gnutls-dev libmicrohttpd-dev libxml2-dev
    libgnutls28-dev gnutls-bin libcmocka-dev libsodium-dev python3-aiosmtpd
    libvirt-dev libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
    json-schema-test-suite wrk nginx-light systemd curl chromium poppler-utils fonts-noto-cjk
)
# Node.js and npm build the web console (console/, from the npm registry with its lockfile).
# Debian's are installed only when the machine has no node of its own (a newer one is kept).
NODE_PACKAGES=(nodejs npm)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLER_DIR="$PWD" # a relative --state-dir is taken from where the script was started
PROG="tools/setup.sh"

usage() {
    cat <<EOF
Usage: $PROG run [--state-dir DIR] [--listen HOST:PORT] [--no-agent]
       $PROG test
       $PROG --help

  run    Install the missing Debian packages, build into build/ and start cloudbrokerd in the
         foreground (Ctrl-C stops it). State goes to ./state under the checkout unless
         --state-dir says otherwise; it listens on 127.0.0.1:8470 unless --listen says otherwise.
         Next to it, the metering agent cloudbroker-agent meters the local libvirtd
         (qemu:///system): the local host is registered in the broker once (production pool),
         its agent token kept in STATE/agent/agent.token (0600), the spool in
         STATE/agent/spool.db, /metrics on 127.0.0.1:8471. Ctrl-C stops both. --no-agent
         starts the broker alone. Reruns reuse the registration, token and spool.
  test   Install the missing packages, start libvirtd/virtlogd when installed and not running
         (as root), then build and test twice: in build/ (debugoptimized, -Dwerror=true) the
         unit and integration suites, in build-asan/ (AddressSanitizer and
         UndefinedBehaviorSanitizer) those and the e2e suite (real libvirtd and QEMU guests;
         the tests that measure a guest's CPU run alone; headless Chromium for the reports). The last line printed is 'N passed, M failed'; the exit status
         is non-zero when anything failed.

Packages (Debian 12): ${PACKAGES[*]}
EOF
}

say() { printf '==> %s\n' "$*"; }
warn() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    warn "$*"
    exit 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for '$*' and sudo is not installed; run as root"
    fi
}

install_packages() {
    local missing=() p status
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        warn "not a Debian system (no dpkg-query/apt-get): install by hand: ${PACKAGES[*]}"
        return 0
    fi
    for p in "${PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
        [ "$status" = installed ] || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "all ${#PACKAGES[@]} packages are installed"
        return 0
    fi
    say "installing ${#missing[@]} missing packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# The web console's npm packages (console/package-lock.json) in console/node_modules, installed
# by `npm ci` when missing or older than the lockfile. Debian's nodejs and npm come first when
# the machine has no node. Without npm the console is left out of the build (meson warns).
install_console() {
    local dir="$ROOT/console"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1; then
            say "installing ${NODE_PACKAGES[*]} (for the web console)"
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${NODE_PACKAGES[@]}" ||
                warn "could not install ${NODE_PACKAGES[*]}; the web console is not built"
        fi
    fi
    if ! command -v npm >/dev/null 2>&1; then
        warn "npm is not installed: the web console is not built"
        return 0
    fi
    if [ -f "$dir/node_modules/.package-lock.json" ] &&
        [ ! "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        say "console/node_modules is up to date"
        return 0
    fi
    say "installing the web console's npm packages (npm ci in console/)"
    if (cd "$dir" && npm ci --no-audit --no-fund); then
        # meson decided at configure time whether the console could be built: look again.
        touch "$dir/meson.build"
    else
        warn "npm ci failed in console/; the web console is not built"
    fi
}

# configure_build DIR [meson options...]: sets up DIR, or applies the options to an existing one.
configure_build() {
    local dir="$1"
    shift
    if [ -f "$dir/meson-private/coredata.dat" ]; then
        say "reusing $dir/${*:+ (meson configure $*)}"
        if [ "$#" -gt 0 ]; then
            meson configure "$dir" "$@"
        fi
    else
        say "configuring $dir/${*:+ (meson setup $*)}"
        meson setup "$dir" "$@"
    fi
}

# The libvirt daemons the real-QEMU integration tests talk to (qemu:///system). There is no
# systemd to start them on CI machines, so start them by hand when they are there and idle.
start_services() {
    local d
    if [ "$(id -u)" -ne 0 ]; then
        say "not root: not starting virtlogd/libvirtd (tests that need qemu:///system may skip)"
        return 0
    fi
    for d in virtlogd libvirtd; do
        if ! command -v "$d" >/dev/null 2>&1; then
            say "$d is not installed; not starting it"
        elif pgrep -x "$d" >/dev/null 2>&1; then
            say "$d is already running"
        else
            say "starting $d -d"
            "$d" -d || warn "$d -d failed (exit $?); tests that need it will fail or skip"
        fi
    done
}

# ---------------------------------------------------------------------------------------------
# run

# admin_sign_in_link URL TOKEN_FILE: while the admin account has no password yet, a one-time
# link (24 h) to set it in the console; prints nothing once the admin has one.
admin_sign_in_link() {
    python3 - "$1" "$2" <<'PYEOF' 2>/dev/null || true
import json, sys, urllib.request
url, path = sys.argv[1:3]
tok = open(path).read().strip()
def call(method, p):
    req = urllib.request.Request(url + p, method=method, data=b'{}' if method == 'POST' else None,
                                 headers={'Authorization': f'Bearer {tok}',
                                          'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)
if not call('GET', '/v1/accounts/1').get('has_password', True):
    print(url + '/' + call('POST', '/v1/accounts/1/sign-in-link')['path'])
PYEOF
}

print_next_steps() {
    local state="$1" listen="$2"
    local url="http://$listen" token="$state/admin.token" link="" api
    api="$(agent_broker_url "$listen")"
    if [ -n "$api" ] && [ -f "$token" ] && wait_for_broker "$api"; then
        link="$(admin_sign_in_link "$api" "$token")"
    fi
    cat <<EOF

cloudbrokerd is running in the foreground (Ctrl-C stops it${AGENT_PID:+ and the agent}).
  Console:     $url/   (the web console, Chinese or English; people sign in with a password)
EOF
    if [ -n "$link" ]; then
        cat <<EOF
  First sign-in: open $link
               to choose the admin's password (a one-time link, 24 h), sign in as 'admin',
               then give the other accounts their sign-in links from the Accounts page.
EOF
    fi
    cat <<EOF
  API:         $url/v1   (try: curl $url/v1/health)
  State:       $state
  Admin token: $token  (written on the first start, mode 0600)

Next, in another terminal from $ROOT:
  export CLOUDBROKER_URL=$url
  export CLOUDBROKER_TOKEN=\$(cat $token)
EOF
    if [ -x "$ROOT/build/cli/cloudbrokerctl" ]; then
        cat <<EOF
  build/cli/cloudbrokerctl whoami
  build/cli/cloudbrokerctl department create --code civil-affairs --name "Civil Affairs Bureau"
  build/cli/cloudbrokerctl account create --name ca-ops --role department --department 1
  build/cli/cloudbrokerctl account create --name bureau-review --role reviewer
  (build/cli/cloudbrokerctl --help lists every command)
EOF
    else
        # cloudbrokerctl is not built yet in this tree: the same actions with curl.
        cat <<EOF
  curl -H "Authorization: Bearer \$CLOUDBROKER_TOKEN" \$CLOUDBROKER_URL/v1/whoami
  curl -H "Authorization: Bearer \$CLOUDBROKER_TOKEN" -H 'Content-Type: application/json' \\
       -d '{"code":"civil-affairs","name":"Civil Affairs Bureau"}' \$CLOUDBROKER_URL/v1/departments
  curl -H "Authorization: Bearer \$CLOUDBROKER_TOKEN" -H 'Content-Type: application/json' \\
       -d '{"name":"ca-ops","role":"department","department_id":1}' \$CLOUDBROKER_URL/v1/accounts
  (department_id: the "id" the department reply showed; the account reply carries its token.
   build/cli/cloudbrokerctl is not built in this tree yet: these are its API calls.)
EOF
    fi
    echo
}

# ---- the metering agent, next to the broker

AGENT_METRICS="127.0.0.1:8471"
BROKER_PID=""
AGENT_PID=""
AGENT_HOST=""

# agent_broker_url LISTEN: the URL at which the agent reaches the broker. The agent speaks plain
# http to loopback only, so a broker listening elsewhere gets no agent (empty output).
agent_broker_url() {
    local host="${1%:*}" port="${1##*:}"
    case "$host" in
    127.* | localhost | "[::1]") echo "http://$host:$port" ;;
    0.0.0.0 | "") echo "http://127.0.0.1:$port" ;;
    "[::]") echo "http://[::1]:$port" ;;
    *) echo "" ;;
    esac
}

# wait_for_broker URL: until GET URL/v1/health answers, or the broker process is gone.
wait_for_broker() {
    local url="$1"
    for _ in $(seq 1 300); do
        if curl -fsS -o /dev/null --max-time 2 "$url/v1/health" 2>/dev/null; then
            return 0
        fi
        kill -0 "$BROKER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# register_local_host STATE URL: makes sure the broker knows the local libvirtd as a production
# host with a working agent token in STATE/agent/agent.token, creating what is missing: a vendor
# account "local-vendor" (its token in STATE/agent/vendor.token, 0600: hosts are registered by
# vendors), the host (POST /v1/hosts, uri qemu:///system, storage pool "default"), or a new agent
# token (POST /v1/hosts/{id}/agent-token) when the file is missing or no longer valid. Prints
# "HOST_ID NAME".
register_local_host() {
    python3 - "$1" "$2" <<'EOF'
import json, os, re, socket, sys, urllib.error, urllib.request

state, url = sys.argv[1:3]
adir = os.path.join(state, 'agent')
os.makedirs(adir, mode=0o700, exist_ok=True)
os.chmod(adir, 0o700)


def call(method, path, token, body=None):
    req = urllib.request.Request(url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={'Authorization': f'Bearer {token}',
                                          'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.load(e)
        except ValueError:
            return e.code, {}


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ''


def write_secret(path, text):
    tmp = path + '.new'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text + '\n')
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def need(ok, what, st, doc):
    if not ok:
        sys.exit(f'{what}: HTTP {st} {json.dumps(doc)[:300]}')


admin = read(os.path.join(state, 'admin.token'))
vendor_path = os.path.join(adir, 'vendor.token')
vendor = read(vendor_path)
st, doc = call('GET', '/v1/whoami', vendor) if vendor else (401, {})
if st != 200 or doc.get('role') != 'vendor':
    st, doc = call('POST', '/v1/accounts', admin, {'name': 'local-vendor', 'role': 'vendor'})
    if st == 201:
        vendor = doc['token']
    else:
        # The account exists but its token file is gone: give it a new token.
        need(st == 409, 'create the vendor account', st, doc)
        st, doc = call('GET', '/v1/accounts?limit=1000', admin)
        need(st == 200, 'list accounts', st, doc)
        ids = [a['id'] for a in doc['items'] if a['name'] == 'local-vendor']
        need(ids, 'find account local-vendor', st, doc)
        st, doc = call('POST', f'/v1/accounts/{ids[0]}/token', admin, {})
        need(st == 200, 'new token for local-vendor', st, doc)
        vendor = doc['token']
    write_secret(vendor_path, vendor)

token_path = os.path.join(adir, 'agent.token')
st, doc = call('GET', '/v1/hosts?limit=1000', vendor)
need(st == 200, 'list hosts', st, doc)
host = next((h for h in doc['items'] if h['uri'] == 'qemu:///system'), None)
if host is None:
    name = re.sub(r'[^a-z0-9._-]', '-', socket.gethostname().lower()).strip('-._')[:60] or 'local'
    body = {'name': name, 'uri': 'qemu:///system', 'pool': 'production',
            'storage_pool': 'default'}
    st, doc = call('POST', '/v1/hosts', vendor, body)
    if st == 409:  # the name is taken by another URI
        body['name'] = f'{name[:54]}-local'
        st, doc = call('POST', '/v1/hosts', vendor, body)
    need(st == 201, 'register the local host', st, doc)
    host = doc
    write_secret(token_path, doc['agent_token'])
else:
    token = read(token_path)
    st, doc = call('GET', '/v1/whoami', token) if token else (401, {})
    if st != 200 or doc.get('role') != 'agent' or doc.get('host_id') != host['id']:
        st, doc = call('POST', f"/v1/hosts/{host['id']}/agent-token", vendor, {})
        need(st == 200, 'new agent token', st, doc)
        write_secret(token_path, doc['agent_token'])
print(host['id'], host['name'])
EOF
}

# start_metering_agent STATE LISTEN: registers the local host when needed and starts
# cloudbroker-agent in the background (AGENT_PID), logging to STATE/agent/agent.log.
start_metering_agent() {
    local state="$1" url reg
    url="$(agent_broker_url "$2")"
    if [ -z "$url" ]; then
        warn "the broker listens on $2, not on loopback; the agent speaks plain http to loopback only: not starting it (see docs/agent-guide.md for https)"
        return 0
    fi
    if ! command -v virsh >/dev/null 2>&1 || ! virsh -r -c qemu:///system version >/dev/null 2>&1; then
        warn "libvirtd does not answer at qemu:///system (read-only) for $(id -un); the agent starts anyway, records the gap and reconnects with backoff"
    elif ! virsh -r -c qemu:///system pool-info default >/dev/null 2>&1; then
        # The host is registered with storage pool "default" regardless: the catalog's images
        # live there, the broker reads the pool's capacity by name every 30 s (so creating it
        # later is enough), and a host's storage pool cannot be changed after registration.
        # Metering does not need it. It is not created here: that changes libvirtd's setup.
        say "note: libvirt has no storage pool 'default'; until it exists the broker sees 0 GiB of disk on this host and places nothing there. To create it (as root):"
        say "  virsh pool-define-as default dir --target /var/lib/libvirt/images && virsh pool-build default && virsh pool-start default && virsh pool-autostart default"
    fi
    say "registering the local libvirtd (qemu:///system) with the broker when needed"
    reg="$(register_local_host "$state" "$url")" || {
        warn "could not register the local host; the broker runs without the agent"
        return 0
    }
    AGENT_HOST="$reg"
    say "starting cloudbroker-agent (host ${reg% *}, '${reg#* }'); log: $state/agent/agent.log"
    "$ROOT/build/agent/cloudbroker-agent" --uri qemu:///system --broker "$url" \
        --token-file "$state/agent/agent.token" --spool "$state/agent/spool.db" \
        --metrics-listen "$AGENT_METRICS" >>"$state/agent/agent.log" 2>&1 &
    AGENT_PID=$!
}

print_agent_steps() {
    local state="$1"
    [ -n "$AGENT_PID" ] || return 0
    cat <<EOF
Metering: cloudbroker-agent (pid $AGENT_PID) meters qemu:///system as host ${AGENT_HOST% *}.
  Metrics:     http://$AGENT_METRICS/metrics   (try: curl -s http://$AGENT_METRICS/metrics | grep ^cloudbroker_agent)
  Agent token: $state/agent/agent.token  (mode 0600)    Spool: $state/agent/spool.db
  Log:         $state/agent/agent.log
  Usage:       GET /v1/instances/{id}/usage, GET /v1/allocations/{id}/usage (docs/metering.md)

EOF
}

# stop_daemons: SIGTERM to the agent and the broker started here (by their pids), then waits.
stop_daemons() {
    local pid
    trap - INT TERM EXIT
    for pid in $AGENT_PID $BROKER_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $AGENT_PID $BROKER_PID; do
        wait "$pid" 2>/dev/null || true
    done
    AGENT_PID=""
    BROKER_PID=""
}

cmd_run() {
    local state="$ROOT/state" listen="127.0.0.1:8470" agent=1 url rc done_pid
    while [ "$#" -gt 0 ]; do
        case "$1" in
        --state-dir)
            [ "$#" -ge 2 ] || die "--state-dir needs a directory"
            state="$2"
            shift 2
            ;;
        --state-dir=*)
            state="${1#*=}"
            shift
            ;;
        --listen)
            [ "$#" -ge 2 ] || die "--listen needs HOST:PORT"
            listen="$2"
            shift 2
            ;;
        --listen=*)
            listen="${1#*=}"
            shift
            ;;
        --no-agent)
            agent=0
            shift
            ;;
        -h | --help)
            usage
            return 0
            ;;
        *) die "run: unknown option '$1' (see --help)" ;;
        esac
    done
    [ -n "$state" ] || die "--state-dir must not be empty"
    [[ "$listen" == *:* ]] || die "--listen wants HOST:PORT, got '$listen'"
    [[ "$state" == /* ]] || state="$CALLER_DIR/$state"
    mkdir -p "$state"
    state="$(cd "$state" && pwd)"

    install_packages
    install_console
    configure_build build
    say "building"
    meson compile -C build
    # The broker and the agent run as children of this script, which stays in the foreground
    # and stops both on Ctrl-C (or SIGTERM); when the broker ends, the agent is stopped too.
    trap 'stop_daemons; exit 130' INT
    trap 'stop_daemons; exit 143' TERM
    trap stop_daemons EXIT
    "$ROOT/build/broker/cloudbrokerd" --state-dir "$state" --policy-dir "$ROOT/policies" \
        --listen "$listen" &
    BROKER_PID=$!
    url="$(agent_broker_url "$listen")"
    if [ "$agent" = 1 ]; then
        if [ -n "$url" ] && ! wait_for_broker "$url"; then
            warn "cloudbrokerd did not come up; not starting the agent"
        else
            start_metering_agent "$state" "$listen"
        fi
    fi
    print_next_steps "$state" "$listen"
    print_agent_steps "$state"
    while :; do
        rc=0
        done_pid=""
        wait -n -p done_pid $BROKER_PID $AGENT_PID || rc=$?
        if [ "$done_pid" = "$BROKER_PID" ]; then
            BROKER_PID=""
            say "cloudbrokerd exited ($rc)${AGENT_PID:+; stopping the agent}"
            stop_daemons
            return "$rc"
        elif [ -n "$done_pid" ] && [ "$done_pid" = "$AGENT_PID" ]; then
            AGENT_PID=""
            # Ctrl-C reaches the whole process group, and bash may then skip its INT trap (the
            # agent exits cleanly on SIGINT): when the broker is stopping too, this is that.
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                kill -0 "$BROKER_PID" 2>/dev/null || break
                sleep 0.2
            done
            kill -0 "$BROKER_PID" 2>/dev/null &&
                warn "cloudbroker-agent exited ($rc; log: $state/agent/agent.log); the broker keeps running"
        fi
    done
}

# ---------------------------------------------------------------------------------------------
# test

FAILED_STEPS=()

# build_and_test DIR E2E [meson options...]: configures, builds and runs the unit and
# integration suites in DIR (two at a time), then, when E2E is 1, the e2e suite: two at a time
# too, but the tests that measure the CPU time of QEMU guests (is_parallel false in
# tests/integration/meson.build) run alone, not sharing the two cores with another test.
build_and_test() {
    local dir="$1" e2e="$2" rc=0
    shift 2
    rm -f "$dir"/meson-logs/testlog*.json
    if ! configure_build "$dir" "$@"; then
        FAILED_STEPS+=("$dir: meson setup/configure failed")
        return 0
    fi
    say "building $dir/"
    if ! meson compile -C "$dir"; then
        FAILED_STEPS+=("$dir: build failed")
        return 0
    fi
    say "testing $dir/ (unit, integration)"
    meson test -C "$dir" --print-errorlogs --num-processes 2 --no-suite e2e || rc=$?
    if [ "$rc" -ne 0 ]; then
        FAILED_STEPS+=("$dir: meson test exited $rc")
    fi
    if [ "$e2e" = 1 ]; then
        rc=0
        say "testing $dir/ (e2e: real libvirtd and QEMU; the CPU-measuring tests alone)"
        meson test -C "$dir" --print-errorlogs --num-processes 2 --suite e2e \
            --logbase testlog-e2e || rc=$?
        if [ "$rc" -ne 0 ]; then
            FAILED_STEPS+=("$dir: meson test (e2e) exited $rc")
        fi
    fi
    return 0
}

# Reads the testlog.json files and prints the tally; returns 1 when anything failed.
summarize() {
    local steps
    steps="$(printf '%s\n' "${FAILED_STEPS[@]+"${FAILED_STEPS[@]}"}")"
    FAILED_STEPS_TEXT="$steps" python3 - "$ROOT/build" "$ROOT/build-asan" <<'EOF'
import json
import os
import sys

passed, failed, skipped, bad = 0, [], [], []
for d in sys.argv[1:]:
    name = os.path.basename(d)
    for log in ('testlog.json', 'testlog-e2e.json'):
        path = os.path.join(d, 'meson-logs', log)
        if not os.path.exists(path):
            continue
        with open(path, encoding='utf-8') as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    t = json.loads(line)
                except ValueError:
                    bad.append(f'{name}: unreadable line in {path}')
                    continue
                result = t.get('result', '?')
                label = f'{name}: {t.get("name", "?")} ({result})'
                if result == 'OK':
                    passed += 1
                elif result == 'SKIP':
                    skipped.append(label)
                else:
                    failed.append(label)

# A step that failed without leaving a failed test behind (setup, build, a meson error) still
# counts as one failure, so the tally never reads clean when something broke.
steps = [s for s in os.environ.get('FAILED_STEPS_TEXT', '').splitlines() if s]
for s in steps:
    dirname = s.split(':', 1)[0]
    if 'meson test' in s and ' exited ' in s and any(f.startswith(dirname + ':') for f in failed):
        continue
    failed.append(s)
failed += bad

print()
print('==> summary over build/ and build-asan/')
for s in skipped:
    print(f'  skipped: {s}')
for f in failed:
    print(f'  failed:  {f}')
print(f'{passed} passed, {len(failed)} failed')
sys.exit(1 if failed else 0)
EOF
}

cmd_test() {
    if [ "$#" -gt 0 ]; then
        case "$1" in
        -h | --help)
            usage
            return 0
            ;;
        *) die "test: unexpected argument '$1' (see --help)" ;;
        esac
    fi
    install_packages
    install_console
    start_services

    # The e2e suite runs once, in the sanitized build: its time is the guests', not the
    # broker's, and there it also checks every hypervisor path for memory errors.
    build_and_test build 0 -Dbuildtype=debugoptimized -Dwerror=true

    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    build_and_test build-asan 1 -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
        -Db_lundef=false -Dwerror=true
    unset ASAN_OPTIONS UBSAN_OPTIONS

    summarize
}

main() {
    cd "$ROOT"
    export DEBIAN_FRONTEND=noninteractive
    case "${1:-}" in
    run)
        shift
        cmd_run "$@"
        ;;
    test)
        shift
        cmd_test "$@"
        ;;
    -h | --help | help)
        usage
        ;;
    "")
        usage >&2
        exit 2
        ;;
    *)
        warn "unknown command '$1'"
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
