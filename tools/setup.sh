#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's two quick-start commands: `tools/setup.sh run` and `tools/setup.sh test`.
# On Debian 12: installs the missing packages, builds with meson, then serves or tests.
set -euo pipefail

PACKAGES=(
    build-essential meson ninja-build pkg-config python3
    libjson-c-dev libsqlite3-dev sqlite3 libcurl4-gnutls-dev libmicrohttpd-dev libxml2-dev
    libgnutls28-dev gnutls-bin libcmocka-dev
    libvirt-dev libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
    json-schema-test-suite wrk nginx-light systemd curl
)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLER_DIR="$PWD" # a relative --state-dir is taken from where the script was started
PROG="tools/setup.sh"

usage() {
    cat <<EOF
Usage: $PROG run [--state-dir DIR] [--listen HOST:PORT]
       $PROG test
       $PROG --help

  run    Install the missing Debian packages, build into build/ and start cloudbrokerd in the
         foreground (Ctrl-C stops it). State goes to ./state under the checkout unless
         --state-dir says otherwise; it listens on 127.0.0.1:8470 unless --listen says otherwise.
  test   Install the missing packages, start libvirtd/virtlogd when installed and not running
         (as root), then build and run the whole test suite twice: in build/
         (debugoptimized, -Dwerror=true) and in build-asan/ (AddressSanitizer and
         UndefinedBehaviorSanitizer). The last line printed is 'N passed, M failed'; the exit
         status is non-zero when anything failed.

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

print_next_steps() {
    local state="$1" listen="$2"
    local url="http://$listen" token="$state/admin.token"
    cat <<EOF

cloudbrokerd is starting in the foreground (Ctrl-C stops it).
  API:         $url   (try: curl $url/v1/health)
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

# The metering agent (cloudbroker-agent) is not written yet; when it is, this starts it in the
# background next to the broker. Until then it only says so.
start_metering_agent() {
    say "cloudbroker-agent (metering) is not part of this tree yet; starting the broker only"
}

cmd_run() {
    local state="$ROOT/state" listen="127.0.0.1:8470"
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
    configure_build build
    say "building"
    meson compile -C build
    start_metering_agent
    print_next_steps "$state" "$listen"
    exec "$ROOT/build/broker/cloudbrokerd" --state-dir "$state" --policy-dir "$ROOT/policies" \
        --listen "$listen"
}

# ---------------------------------------------------------------------------------------------
# test

FAILED_STEPS=()

# build_and_test DIR [meson options...]: configures, builds and runs every suite in DIR.
build_and_test() {
    local dir="$1" rc=0
    shift
    rm -f "$dir/meson-logs/testlog.json"
    if ! configure_build "$dir" "$@"; then
        FAILED_STEPS+=("$dir: meson setup/configure failed")
        return 0
    fi
    say "building $dir/"
    if ! meson compile -C "$dir"; then
        FAILED_STEPS+=("$dir: build failed")
        return 0
    fi
    say "testing $dir/"
    meson test -C "$dir" --print-errorlogs --num-processes 2 || rc=$?
    if [ "$rc" -ne 0 ]; then
        FAILED_STEPS+=("$dir: meson test exited $rc")
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
    path = os.path.join(d, 'meson-logs', 'testlog.json')
    name = os.path.basename(d)
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
    if 'meson test exited' in s and any(f.startswith(dirname + ':') for f in failed):
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
    start_services

    build_and_test build -Dbuildtype=debugoptimized -Dwerror=true

    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    build_and_test build-asan -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
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
