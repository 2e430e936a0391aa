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
    json-schema-test-suite wrk nginx-light systemd curl jq chromium poppler-utils fonts-noto-cjk
    libpq-dev postgresql-15 clang-format
)
# Node.js and npm build the web console (console/, from the npm registry with its lockfile).
# Debian's are installed only when the machine has no node of its own (a newer one is kept).
NODE_PACKAGES=(nodejs npm)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLER_DIR="$PWD" # a relative --state-dir is taken from where the script was started
PROG="tools/setup.sh"

usage() {
    cat <<EOF
Usage: $PROG run [--state-dir DIR] [--listen HOST:PORT] [--agent-metrics-listen HOST:PORT]
                     [--storage-pool NAME] [--no-agent] [--prebuilt BUILD_DIR]
       $PROG test
       $PROG --help

  run    Install the missing Debian packages, build into build/ and start cloudbrokerd in the
         foreground (Ctrl-C stops it). State goes to ./state under the checkout unless
         --state-dir says otherwise; it listens on 127.0.0.1:8470 unless --listen says otherwise.
         Next to it, the metering agent cloudbroker-agent meters the local libvirtd
         (qemu:///system): the local host is registered in the broker once (production pool),
         its agent token kept in STATE/agent/agent.token (0600), the spool in
         STATE/agent/spool.db, its log in STATE/agent/agent.log. The agent serves /metrics on
         --agent-metrics-listen, by default the broker's host and port + 1 (127.0.0.1:8471),
         or a free port when that one is taken; the banner says which. An agent that exits or
         whose /metrics does not answer within 5 s is reported, with the end of its log,
         before the banner, and the broker runs without it.
         The local host's storage pool (its instances' disks and the catalog's base images):
         --storage-pool NAME, else the pool it was registered with when that one is active,
         else libvirt's 'default' when it is an active directory pool, else the directory pool
         'cloudbroker' (/var/lib/libvirt/images/cloudbroker), created when missing; the banner
         says which. Ctrl-C (or SIGTERM) stops both daemons. --no-agent starts the broker
         alone. Reruns reuse the registration, token and spool.
         --prebuilt BUILD_DIR installs and builds nothing and runs the binaries already built
         in BUILD_DIR (the tests use it; so may a tree built by hand).
  test   Install the missing packages, start libvirtd/virtlogd when installed and not running
         (as root), then build and test twice: in build/ (debugoptimized, -Dwerror=true) the
         unit and integration suites, in build-asan/ (AddressSanitizer and
         UndefinedBehaviorSanitizer) those and the e2e suite (real libvirtd and QEMU guests;
         the tests that measure a guest's CPU run alone; headless Chromium for the reports).
         A throw-away PostgreSQL 15 cluster (tools/pg-cluster.sh: initdb and pg_ctl, a Unix
         socket in a temporary folder) runs for the tests, its URL exported as CB_TEST_PG_URL
         (each test makes its own database there; the e2e suite's two-broker test in
         build-asan/ too), and the integration suite runs a second time in build/ with every
         broker on PostgreSQL (CB_TEST_BACKEND=postgresql); the cluster is stopped and
         removed at the end, also when a test fails or the run is interrupted. The last line
         printed is 'N passed, M failed'; the exit status is non-zero when anything failed.

Packages (Debian 12): ${PACKAGES[*]}
The web console: Node.js and npm (Debian's ${NODE_PACKAGES[*]} when the machine has none), then
'npm ci' in console/ from its package-lock.json; meson builds it into build/console.
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
    local url token="$state/admin.token" link=""
    url="$(agent_broker_url "$listen")"
    [ -n "$url" ] || url="http://$listen"
    if [ -f "$token" ] && wait_for_broker "$url"; then
        link="$(admin_sign_in_link "$url" "$token")"
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
    if [ -x "$BUILD_DIR/cli/cloudbrokerctl" ]; then
        local ctl="${BUILD_DIR#"$ROOT"/}/cli/cloudbrokerctl"
        cat <<EOF
  $ctl whoami
  $ctl department create --code civil-affairs --name "Civil Affairs Bureau"
  $ctl account create --name ca-ops --role department --department 1
  $ctl account create --name bureau-review --role reviewer
  ($ctl --help lists every command)
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

# ---- the metering agent and the local host, next to the broker

LIBVIRT_URI="qemu:///system"
BUILD_DIR="$ROOT/build"
BROKER_PID=""
AGENT_PID=""
AGENT_HOST=""
AGENT_METRICS=""       # the address the agent serves /metrics on
AGENT_METRICS_NOTE=""  # why it is not the one asked for, or ""
AGENT_FAILED=""        # why the agent does not run, or ""
STORAGE_POOL=""        # the local host's storage pool
STORAGE_POOL_NOTE=""   # where it is and whether it was made now

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

# metrics_url ADDR: where to fetch the agent's /metrics served on ADDR.
metrics_url() {
    local host="${1%:*}" port="${1##*:}"
    case "$host" in
    0.0.0.0 | "") host=127.0.0.1 ;;
    "[::]") host="[::1]" ;;
    esac
    echo "http://$host:$port/metrics"
}

# agent_metrics_default LISTEN: the broker's host (as an address the agent takes) and its
# port + 1.
agent_metrics_default() {
    local host="${1%:*}" port="${1##*:}"
    case "$host" in
    localhost | "") host=127.0.0.1 ;;
    esac
    if [ "$port" -ge 65535 ] 2>/dev/null; then
        port=0
    else
        port=$((port + 1))
    fi
    echo "$host:$port"
}

# usable_address HOST:PORT: prints HOST:PORT when a listener can bind it now, else HOST:P with
# a port P free on HOST (port 0 is always replaced by a free one).
usable_address() {
    python3 - "$1" <<'EOF'
import socket, sys

addr = sys.argv[1]
host, _, port = addr.rpartition(':')
bare = host.strip('[]')
family = socket.AF_INET6 if ':' in bare else socket.AF_INET


def bind(p):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as libmicrohttpd does
    try:
        s.bind((bare, p))
        return s.getsockname()[1]
    finally:
        s.close()


try:
    if int(port) != 0:
        bind(int(port))
        print(addr)
        sys.exit(0)
except OSError:
    pass
print(f'{host}:{bind(0)}')
EOF
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

# pool_type NAME: the type of libvirt storage pool NAME when it is active ("dir", "fs", ...),
# else nothing.
pool_type() {
    local xml
    virsh -c "$LIBVIRT_URI" pool-info "$1" 2>/dev/null | grep -Eq '^State:[[:space:]]+running' ||
        return 0
    xml="$(virsh -c "$LIBVIRT_URI" pool-dumpxml "$1" 2>/dev/null)" || return 0
    sed -n "s/^<pool type='\([a-z]*\)'.*/\1/p" <<<"$xml" | head -n 1
}

pool_path() {
    virsh -c "$LIBVIRT_URI" pool-dumpxml "$1" 2>/dev/null |
        sed -n 's|.*<path>\(.*\)</path>.*|\1|p' | head -n 1
}

# registered_pool STATE URL: the storage pool the local host is registered with, or nothing.
registered_pool() {
    local vendor
    vendor="$(cat "$1/agent/vendor.token" 2>/dev/null)" || return 0
    [ -n "$vendor" ] || return 0
    curl -fsS --max-time 10 -H "Authorization: Bearer $vendor" "$2/v1/hosts?limit=1000" \
        2>/dev/null | python3 -c '
import json, sys
try:
    hosts = json.load(sys.stdin)["items"]
except (ValueError, KeyError):
    sys.exit(0)
for h in hosts:
    if h["uri"] == sys.argv[1]:
        print(h["storage_pool"])
' "$LIBVIRT_URI"
}

# choose_storage_pool STATE URL WANTED: sets STORAGE_POOL (and STORAGE_POOL_NOTE) to the pool the
# local host uses: WANTED when given; else the registered one when active; else 'default' when
# it is an active file-based pool; else 'cloudbroker', defined (a directory pool under
# /var/lib/libvirt/images), built, started and marked autostart when it is not there.
choose_storage_pool() {
    local state="$1" url="$2" wanted="$3" name type dir
    if ! virsh -c "$LIBVIRT_URI" version >/dev/null 2>&1; then
        STORAGE_POOL="${wanted:-cloudbroker}"
        STORAGE_POOL_NOTE="libvirtd does not answer at $LIBVIRT_URI: the pool could not be checked or made; the host shows the storage error until it exists"
        return 0
    fi
    if [ -n "$wanted" ]; then
        STORAGE_POOL="$wanted"
        type="$(pool_type "$wanted")"
        if [ -n "$type" ]; then
            STORAGE_POOL_NOTE="$type pool at $(pool_path "$wanted"), as --storage-pool asked"
        else
            STORAGE_POOL_NOTE="as --storage-pool asked, but it is not an active pool of $LIBVIRT_URI: the host shows the storage error until it is"
            warn "storage pool '$wanted' is not an active pool of $LIBVIRT_URI"
        fi
        return 0
    fi
    for name in $(registered_pool "$state" "$url") default cloudbroker; do
        type="$(pool_type "$name")"
        case "$type" in
        dir | fs | netfs)
            STORAGE_POOL="$name"
            STORAGE_POOL_NOTE="$type pool at $(pool_path "$name"), already there"
            return 0
            ;;
        esac
    done
    STORAGE_POOL=cloudbroker
    dir=/var/lib/libvirt/images/cloudbroker
    say "creating the directory pool 'cloudbroker' ($dir) on $LIBVIRT_URI for the local host's disks"
    virsh -c "$LIBVIRT_URI" pool-info cloudbroker >/dev/null 2>&1 ||
        virsh -c "$LIBVIRT_URI" pool-define-as cloudbroker dir --target "$dir" >/dev/null ||
        warn "could not define the storage pool 'cloudbroker'"
    virsh -c "$LIBVIRT_URI" pool-build cloudbroker >/dev/null 2>&1 || true
    virsh -c "$LIBVIRT_URI" pool-start cloudbroker >/dev/null 2>&1 || true
    virsh -c "$LIBVIRT_URI" pool-autostart cloudbroker >/dev/null 2>&1 || true
    if [ -n "$(pool_type cloudbroker)" ]; then
        STORAGE_POOL_NOTE="dir pool at $dir, created now"
    else
        STORAGE_POOL_NOTE="could not be created (see above): the host shows the storage error until it exists"
    fi
}

# register_local_host STATE URL POOL: makes sure the broker knows the local libvirtd as a
# production host with storage pool POOL and a working agent token in STATE/agent/agent.token,
# creating what is missing: a vendor account "local-vendor" (its token in
# STATE/agent/vendor.token, 0600: hosts are registered by vendors), the host (POST /v1/hosts),
# its storage pool when it differs (PATCH /v1/hosts/{id}), or a new agent token
# (POST /v1/hosts/{id}/agent-token) when the file is missing or no longer valid.
# Prints "HOST_ID NAME".
register_local_host() {
    python3 - "$1" "$2" "$3" "$LIBVIRT_URI" <<'EOF'
import json, os, re, socket, sys, urllib.error, urllib.request

state, url, pool, uri = sys.argv[1:5]
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
host = next((h for h in doc['items'] if h['uri'] == uri), None)
if host is None:
    name = re.sub(r'[^a-z0-9._-]', '-', socket.gethostname().lower()).strip('-._')[:60] or 'local'
    body = {'name': name, 'uri': uri, 'pool': 'production', 'storage_pool': pool}
    st, doc = call('POST', '/v1/hosts', vendor, body)
    if st == 409:  # the name is taken by another URI
        body['name'] = f'{name[:54]}-local'
        st, doc = call('POST', '/v1/hosts', vendor, body)
    need(st == 201, 'register the local host', st, doc)
    host = doc
    write_secret(token_path, doc['agent_token'])
else:
    if host['storage_pool'] != pool:
        st, doc = call('PATCH', f"/v1/hosts/{host['id']}", vendor, {'storage_pool': pool})
        need(st == 200, f'set the storage pool to {pool}', st, doc)
    token = read(token_path)
    st, doc = call('GET', '/v1/whoami', token) if token else (401, {})
    if st != 200 or doc.get('role') != 'agent' or doc.get('host_id') != host['id']:
        st, doc = call('POST', f"/v1/hosts/{host['id']}/agent-token", vendor, {})
        need(st == 200, 'new agent token', st, doc)
        write_secret(token_path, doc['agent_token'])
print(host['id'], host['name'])
EOF
}

# agent_failed STATE WHY LOG_OFFSET: reports before the banner that the agent does not run,
# with the lines it logged in this run, and stops it when it still runs.
agent_failed() {
    local state="$1" why="$2" off="$3" log="$1/agent/agent.log"
    if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
        kill -TERM "$AGENT_PID" 2>/dev/null || true
        wait "$AGENT_PID" 2>/dev/null || true
    fi
    AGENT_PID=""
    AGENT_FAILED="$why"
    warn "cloudbroker-agent $why; the broker runs without it. The end of $log:"
    tail -c "+$((off + 1))" "$log" 2>/dev/null | tail -n 20 | sed 's/^/    /' >&2
}

# start_metering_agent STATE LISTEN METRICS STORAGE_POOL: registers the local host when needed
# and starts cloudbroker-agent in the background (AGENT_PID), logging to STATE/agent/agent.log;
# returns once its /metrics answers, or reports why the agent does not run.
start_metering_agent() {
    local state="$1" url reg off rc metrics_url
    url="$(agent_broker_url "$2")"
    if [ -z "$url" ]; then
        warn "the broker listens on $2, not on loopback; the agent speaks plain http to loopback only: not starting it (see docs/agent-guide.md for https)"
        AGENT_FAILED="is not started: the broker does not listen on loopback"
        return 0
    fi
    if ! command -v virsh >/dev/null 2>&1 || ! virsh -r -c "$LIBVIRT_URI" version >/dev/null 2>&1; then
        warn "libvirtd does not answer at $LIBVIRT_URI (read-only) for $(id -un); the agent starts anyway, records the gap and reconnects with backoff"
    fi
    choose_storage_pool "$state" "$url" "$4"
    say "registering the local libvirtd ($LIBVIRT_URI, storage pool '$STORAGE_POOL') with the broker when needed"
    reg="$(register_local_host "$state" "$url" "$STORAGE_POOL")" || {
        warn "could not register the local host; the broker runs without the agent"
        AGENT_FAILED="is not started: the local host could not be registered"
        return 0
    }
    AGENT_HOST="$reg"
    mkdir -p "$state/agent"
    off="$(stat -c %s "$state/agent/agent.log" 2>/dev/null || echo 0)"
    say "starting cloudbroker-agent (host ${reg% *}, '${reg#* }', /metrics on $3); log: $state/agent/agent.log"
    "$BUILD_DIR/agent/cloudbroker-agent" --uri "$LIBVIRT_URI" --broker "$url" \
        --token-file "$state/agent/agent.token" --spool "$state/agent/spool.db" \
        --metrics-listen "$3" >>"$state/agent/agent.log" 2>&1 &
    AGENT_PID=$!
    metrics_url="$(metrics_url "$3")"
    for _ in $(seq 1 50); do
        if ! kill -0 "$AGENT_PID" 2>/dev/null; then
            rc=0
            wait "$AGENT_PID" 2>/dev/null || rc=$?
            AGENT_PID=""
            agent_failed "$state" "exited at once (status $rc)" "$off"
            return 0
        fi
        if curl -fsS -o /dev/null --max-time 1 "$metrics_url" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    agent_failed "$state" "does not answer at $metrics_url within 5 s" "$off"
}

print_agent_steps() {
    local state="$1" m
    if [ -z "$AGENT_PID" ]; then
        [ -z "$AGENT_FAILED" ] || printf 'Metering: cloudbroker-agent %s (see above).\n\n' "$AGENT_FAILED"
        return 0
    fi
    m="$(metrics_url "$AGENT_METRICS")"
    cat <<EOF
Metering: cloudbroker-agent (pid $AGENT_PID) meters $LIBVIRT_URI as host ${AGENT_HOST% *}.
  Metrics:     $m   (try: curl -s $m | grep ^cloudbroker_agent)${AGENT_METRICS_NOTE:+
               $AGENT_METRICS_NOTE}
  Storage:     pool '$STORAGE_POOL': $STORAGE_POOL_NOTE.
               This host's instance disks go there; put the catalog's base images in it
               (policies/catalog.json; docs/operator-guide.md#base-volumes-for-the-catalog).
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
    local state="$ROOT/state" listen="127.0.0.1:8470" agent=1 url rc done_pid metrics=""
    local storage_pool="" prebuilt=""
    while [ "$#" -gt 0 ]; do
        case "$1" in
        --state-dir | --listen | --agent-metrics-listen | --storage-pool | --prebuilt)
            [ "$#" -ge 2 ] || die "$1 needs a value (see --help)"
            set -- "$1=$2" "${@:3}"
            ;;
        --state-dir=*)
            state="${1#*=}"
            shift
            ;;
        --listen=*)
            listen="${1#*=}"
            shift
            ;;
        --agent-metrics-listen=*)
            metrics="${1#*=}"
            [[ "$metrics" == *:* ]] || die "--agent-metrics-listen wants HOST:PORT, got '$metrics'"
            shift
            ;;
        --storage-pool=*)
            storage_pool="${1#*=}"
            [[ "$storage_pool" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] ||
                die "--storage-pool wants a libvirt pool name, got '$storage_pool'"
            shift
            ;;
        --prebuilt=*)
            prebuilt="${1#*=}"
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

    if [ -n "$prebuilt" ]; then
        [[ "$prebuilt" == /* ]] || prebuilt="$CALLER_DIR/$prebuilt"
        BUILD_DIR="$prebuilt"
        [ -x "$BUILD_DIR/broker/cloudbrokerd" ] || die "--prebuilt: no $BUILD_DIR/broker/cloudbrokerd"
        say "using the binaries in $BUILD_DIR (--prebuilt: nothing installed or built)"
    else
        install_packages
        install_console
        configure_build build
        say "building"
        meson compile -C build
    fi
    # The agent's /metrics: next to the broker unless asked otherwise, and on a free port when
    # the default one is taken (a port asked for is used as it is: when it is taken, the agent
    # reports that it cannot listen).
    if [ -z "$metrics" ]; then
        AGENT_METRICS="$(usable_address "$(agent_metrics_default "$listen")")"
        [ "$AGENT_METRICS" = "$(agent_metrics_default "$listen")" ] ||
            AGENT_METRICS_NOTE="($(agent_metrics_default "$listen") is taken: a free port instead; --agent-metrics-listen chooses)"
    else
        AGENT_METRICS="$metrics"
    fi
    # The broker and the agent run as children of this script, which stays in the foreground
    # and stops both on Ctrl-C (or SIGTERM); when the broker ends, the agent is stopped too.
    trap 'stop_daemons; exit 130' INT
    trap 'stop_daemons; exit 143' TERM
    trap stop_daemons EXIT
    "$BUILD_DIR/broker/cloudbrokerd" --state-dir "$state" --policy-dir "$ROOT/policies" \
        --listen "$listen" &
    BROKER_PID=$!
    url="$(agent_broker_url "$listen")"
    if [ "$agent" = 1 ]; then
        if [ -n "$url" ] && ! wait_for_broker "$url"; then
            warn "cloudbrokerd did not come up; not starting the agent"
            AGENT_FAILED="is not started: cloudbrokerd did not come up"
        else
            start_metering_agent "$state" "$listen" "$AGENT_METRICS" "$storage_pool"
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
PG_DIR=""

# start_pg_cluster: a throw-away PostgreSQL 15 for the tests (tools/pg-cluster.sh), its URL
# in CB_TEST_PG_URL. stop_pg_cluster (on every exit, see cmd_test) removes it again.
start_pg_cluster() {
    local url
    PG_DIR="$(mktemp -d /tmp/cb-pg.XXXXXX)"
    if url="$("$ROOT/tools/pg-cluster.sh" start "$PG_DIR")"; then
        export CB_TEST_PG_URL="$url"
        say "PostgreSQL 15 for the tests in $PG_DIR: $url"
    else
        # The PostgreSQL cases would only skip: count it, so the tally never reads clean.
        FAILED_STEPS+=("PostgreSQL: the throw-away cluster did not start")
        "$ROOT/tools/pg-cluster.sh" stop "$PG_DIR" || true
        PG_DIR=""
    fi
}

stop_pg_cluster() {
    if [ -n "$PG_DIR" ]; then
        say "stopping and removing the PostgreSQL cluster in $PG_DIR"
        "$ROOT/tools/pg-cluster.sh" stop "$PG_DIR" || warn "could not remove $PG_DIR"
        PG_DIR=""
    fi
    unset CB_TEST_PG_URL
}

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

# pg_pass DIR: the integration suite once more in DIR, every broker on its own database in the
# throw-away PostgreSQL (CB_TEST_BACKEND=postgresql, see tests/integration/cbtest.py). The tests
# that are about PostgreSQL alone (suite postgresql) already ran in the first pass.
pg_pass() {
    local dir="$1" rc=0
    if [ -z "${CB_TEST_PG_URL:-}" ]; then
        return 0
    fi
    say "testing $dir/ (integration, on PostgreSQL)"
    CB_TEST_BACKEND=postgresql meson test -C "$dir" --print-errorlogs --num-processes 2 \
        --suite integration --no-suite postgresql --timeout-multiplier 3 \
        --logbase testlog-pg || rc=$?
    if [ "$rc" -ne 0 ]; then
        FAILED_STEPS+=("$dir (postgresql): meson test exited $rc")
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
    for log in ('testlog.json', 'testlog-e2e.json', 'testlog-pg.json'):
        path = os.path.join(d, 'meson-logs', log)
        if log == 'testlog-pg.json':
            name = os.path.basename(d) + ' (postgresql)'
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
    trap stop_pg_cluster EXIT
    trap 'stop_pg_cluster; exit 130' INT
    trap 'stop_pg_cluster; exit 143' TERM
    start_pg_cluster

    # The e2e suite runs once, in the sanitized build: its time is the guests', not the
    # broker's, and there it also checks every hypervisor path for memory errors.
    build_and_test build 0 -Dbuildtype=debugoptimized -Dwerror=true
    # The PostgreSQL pass of the integration suite: once, in the plain build.
    pg_pass build

    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    build_and_test build-asan 1 -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
        -Db_lundef=false -Dwerror=true
    unset ASAN_OPTIONS UBSAN_OPTIONS
    stop_pg_cluster

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
