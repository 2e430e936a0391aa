#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# HTTP benchmark of cloudbrokerd against nginx serving the same JSON document as a static file.
# Loopback only, bounded in time, and everything it starts is stopped again (also on Ctrl-C).
# See tests/bench/README.md. Exit status: 0 when the benchmark ran (goals met or not), 1 when
# something failed to run, 130/143 when interrupted.
#
# Environment (all optional):
#   CB_BUILD_DIR      build directory (default: <source>/build)
#   BENCH_DURATION    seconds per timed wrk run (default 15)
#   BENCH_WARMUP      seconds of warm-up wrk run before each timed run (default 3)
#   BENCH_THREADS     wrk threads (default 2)
#   BENCH_CONNS       wrk connections (default 64)
#   BENCH_WRITE       systems (default) or opinions: what the write run creates
#   BROKER_THREADS    cloudbrokerd --threads (default: the daemon's own default)
#   BROKER_CONFIG     a cloudbrokerd --config JSON file (e.g. to try other limits)
#   BENCH_TMPDIR      where the temporary state lives (default $TMPDIR or /tmp); use a real
#                     disk, as the write figure measures fsync
#   BENCH_KEEP=1      keep the temporary folder (wrk outputs, logs, database) for inspection
#   BENCH_PERF=1      also sample cloudbrokerd with `perf record` during the timed GET run;
#                     flat profiles by library and by symbol are left in the kept folder
#                     (needs perf: apt-get install linux-perf; implies BENCH_KEEP=1)
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE=$(cd "$HERE/../.." && pwd)
BUILD=${CB_BUILD_DIR:-$SOURCE/build}
BROKERD=$BUILD/broker/cloudbrokerd
POLICIES=$SOURCE/policies
LIB=$HERE/benchlib.py
export PYTHONDONTWRITEBYTECODE=1 # leave no __pycache__ in the source tree

DURATION=${BENCH_DURATION:-15}
WARMUP=${BENCH_WARMUP:-3}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-64}
WRITE_MODE=${BENCH_WRITE:-systems}
PERF=${BENCH_PERF:-0}
KEEP=${BENCH_KEEP:-0}
[[ $PERF == 1 ]] && KEEP=1

# fd 3: the real stderr, for messages of the cleanup, which may run inside a redirection.
exec 3>&2
WORK=""
BROKER_PID=""
NGINX_PID=""
CHILD_PID=""   # the wrk / helper / perf currently running
PERF_PID=""
INTERRUPTED=""

fstype() { findmnt -n -o FSTYPE -T "$1" 2>/dev/null || stat -f -c %T "$1"; }
log() { printf '%s\n' "== $*" >&2; }
fail() { printf 'http-bench: %s\n' "$*" >&2; exit 1; }

# Stops one process we started: SIGTERM, up to 5 s grace, then SIGKILL.
stop_pid() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    stop_pid "$CHILD_PID"
    stop_pid "$PERF_PID"
    if [[ -n $NGINX_PID ]]; then
        # The workers of our own master, by parent pid: if the master had to be killed, they
        # would outlive it.
        local workers
        workers=$(pgrep -P "$NGINX_PID" 2>/dev/null | tr '\n' ' ')
        stop_pid "$NGINX_PID"
        for w in $workers; do kill -KILL "$w" 2>/dev/null; done
    fi
    stop_pid "$BROKER_PID"
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ $KEEP == 1 ]]; then
            # Tokens are of no use once the broker is gone, but do not leave them lying around.
            rm -f "$WORK/fixtures.env" "$WORK/state/admin.token"
            echo "http-bench: kept $WORK" >&3
        else
            rm -rf -- "$WORK"
        fi
    fi
    if [[ -n $INTERRUPTED ]]; then
        echo "http-bench: interrupted; everything it started is stopped" >&3
        exit "$INTERRUPTED"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'INTERRUPTED=130; exit 130' INT
trap 'INTERRUPTED=143; exit 143' TERM
trap 'INTERRUPTED=129; exit 129' HUP

# Runs a command in the background and waits for it, so that a signal to this script is
# handled at once (bash runs traps only after a foreground child has finished).
run() {
    "$@" &
    CHILD_PID=$!
    local rc=0
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    return "$rc"
}

# ---------------------------------------------------------------- checks
for tool in wrk nginx python3; do
    command -v "$tool" >/dev/null || fail "$tool is not installed"
done
[[ -x $BROKERD ]] || fail "$BROKERD not built (ninja -C $BUILD)"
[[ $WRITE_MODE == systems || $WRITE_MODE == opinions ]] || fail "BENCH_WRITE must be systems or opinions"
for v in DURATION WARMUP THREADS CONNS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || fail "BENCH_$v must be a whole number"
done
((DURATION >= 1 && THREADS >= 1 && CONNS >= THREADS)) || fail "bad duration/threads/connections"
if [[ $PERF == 1 ]]; then
    command -v perf >/dev/null || fail "BENCH_PERF=1 needs perf (apt-get install linux-perf)"
fi
NGINX=$(command -v nginx)

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/cb-http-bench.XXXXXX")
mkdir -p "$WORK/state" "$WORK/www" "$WORK/nginx" "$WORK/results"
chmod 0700 "$WORK/state"
# nginx workers run as nobody when started by root: they must reach www/ and nothing else.
chmod 0711 "$WORK"
chmod 0755 "$WORK/www"
RES=$WORK/results

# ---------------------------------------------------------------- 1. broker and fixtures
BROKER_ARGS=(--state-dir "$WORK/state" --policy-dir "$POLICIES" --listen 127.0.0.1:0)
[[ -n ${BROKER_THREADS:-} ]] && BROKER_ARGS+=(--threads "$BROKER_THREADS")
if [[ -n ${BROKER_CONFIG:-} ]]; then
    [[ -r $BROKER_CONFIG ]] || fail "cannot read BROKER_CONFIG $BROKER_CONFIG"
    BROKER_ARGS+=(--config "$(cd "$(dirname "$BROKER_CONFIG")" && pwd)/$(basename "$BROKER_CONFIG")")
fi
log "starting cloudbrokerd (state in $WORK/state, $(fstype "$WORK/state"))"
# Broker and nginx get a session of their own, so that a Ctrl-C reaches this script alone and
# its cleanup stops them in order (setsid does not fork here: a background job of a
# non-interactive shell is no process group leader, so $! is the server itself).
setsid "$BROKERD" "${BROKER_ARGS[@]}" >"$WORK/broker.out" 2>"$WORK/broker.log" &
BROKER_PID=$!
BROKER_PORT=$(run python3 "$LIB" broker-port "$WORK/broker.out" "$BROKER_PID" 15) ||
    { tail -n 20 "$WORK/broker.log" >&2; fail "cloudbrokerd did not start"; }

log "creating fixtures on 127.0.0.1:$BROKER_PORT"
run python3 "$LIB" fixtures "$BROKER_PORT" "$WORK/state" "$WORK/www" "$WORK/fixtures.env" ||
    { tail -n 20 "$WORK/broker.log" >&2; fail "fixtures failed"; }
# shellcheck disable=SC1091
source "$WORK/fixtures.env"
find "$WORK/www" -type d -exec chmod 0755 {} +
find "$WORK/www" -type f -exec chmod 0644 {} +

# ---------------------------------------------------------------- 2. nginx
NGINX_PORT=$(run python3 "$LIB" free-port)
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
master_process on;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    # The broker (libmicrohttpd) keeps a connection open for any number of requests; so does
    # nginx here, so both runs measure requests, not reconnections.
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx/client_body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    types { }
    default_type application/json;

    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
        location / {
            try_files \$uri =404;
        }
    }
}
EOF
log "starting nginx on 127.0.0.1:$NGINX_PORT"
setsid "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" \
    >"$WORK/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
run python3 "$LIB" wait-http "$NGINX_PORT" / 10 ||
    { cat "$WORK/nginx/error.log" "$WORK/nginx/stdout.log" >&2; fail "nginx did not start"; }
run python3 "$LIB" same-body "http://127.0.0.1:$NGINX_PORT$REQ_PATH" "$WORK/www$REQ_PATH" ||
    fail "nginx does not serve the saved document"

# ---------------------------------------------------------------- 3. wrk
WRK=(wrk "-t$THREADS" "-c$CONNS" --timeout 10s)
# A stuck wrk cannot hold the run: it is killed some time after its own end.
wrk_run() { # NAME SECONDS [wrk args...]
    local name=$1 secs=$2
    shift 2
    run timeout -k 5 $((secs + 30)) "${WRK[@]}" "-d${secs}s" --latency "$@" \
        >"$RES/$name.txt" 2>&1 || { cat "$RES/$name.txt" >&2; fail "wrk $name failed"; }
}
bench() { # NAME [wrk args...]: warm-up, then the timed run
    local name=$1
    shift
    if ((WARMUP > 0)); then
        log "$name: ${WARMUP}s warm-up"
        CB_BENCH_TAG=warm wrk_run "$name.warmup" "$WARMUP" "$@"
    fi
    log "$name: ${DURATION}s, $THREADS threads, $CONNS connections"
    CB_BENCH_TAG=main wrk_run "$name" "$DURATION" "$@"
}

bench nginx-get "http://127.0.0.1:$NGINX_PORT$REQ_PATH"

export CB_BENCH_TOKEN=$DEPT_TOKEN CB_BENCH_PATH=$REQ_PATH
if [[ $PERF == 1 ]]; then
    # Samples the timed run only: starts after the warm-up and lasts as long as the run.
    (
        sleep "$WARMUP"
        exec perf record -F 999 -o "$WORK/perf.data" -p "$BROKER_PID" -- sleep "$DURATION"
    ) >"$WORK/perf.log" 2>&1 &
    PERF_PID=$!
fi
bench broker-get -s "$HERE/get.lua" "http://127.0.0.1:$BROKER_PORT"
if [[ -n $PERF_PID ]]; then
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=""
    perf report -i "$WORK/perf.data" --stdio --percent-limit 0.3 \
        --sort dso,symbol >"$WORK/perf-report.txt" 2>/dev/null || true
    perf report -i "$WORK/perf.data" --stdio --sort dso >"$WORK/perf-dso.txt" 2>/dev/null || true
    log "perf profile of the GET run: $WORK/perf-report.txt, $WORK/perf-dso.txt"
fi

if [[ $WRITE_MODE == systems ]]; then
    export CB_BENCH_WRITE=systems CB_BENCH_TOKEN=$DEPT_TOKEN
    WRITE_TABLE=systems
    WRITE_LABEL="POST systems (durable)"
else
    export CB_BENCH_WRITE=opinions CB_BENCH_TOKEN=$REVIEWER_TOKEN
    export CB_BENCH_PATH=/v1/requests/$OPINION_REQ_ID/opinions
    WRITE_TABLE=opinions
    WRITE_LABEL="POST opinions (durable)"
fi
DB=$WORK/state/cloudbroker.db
if ((WARMUP > 0)); then
    log "broker-write: ${WARMUP}s warm-up"
    CB_BENCH_TAG=warm wrk_run broker-write.warmup "$WARMUP" -s "$HERE/write.lua" \
        "http://127.0.0.1:$BROKER_PORT"
fi
COUNTS=$(run python3 "$LIB" db-counts "$DB" "$WRITE_TABLE") || fail "cannot count rows"
read -r ROWS_BEFORE AUDIT_BEFORE <<<"$COUNTS"
log "broker-write ($WRITE_MODE): ${DURATION}s, $THREADS threads, $CONNS connections"
CB_BENCH_TAG=main wrk_run broker-write "$DURATION" -s "$HERE/write.lua" \
    "http://127.0.0.1:$BROKER_PORT"
COUNTS=$(run python3 "$LIB" db-counts "$DB" "$WRITE_TABLE") || fail "cannot count rows"
read -r ROWS_AFTER AUDIT_AFTER <<<"$COUNTS"

kill -0 "$BROKER_PID" 2>/dev/null || fail "cloudbrokerd died during the benchmark"
kill -0 "$NGINX_PID" 2>/dev/null || fail "nginx died during the benchmark"

# ---------------------------------------------------------------- 4. report
{
    echo "CONNS=$CONNS"
    echo "WRITE_LABEL=$WRITE_LABEL"
    echo "WRITE_TABLE=$WRITE_TABLE"
    echo "ROWS_ADDED=$((ROWS_AFTER - ROWS_BEFORE))"
    echo "AUDIT_ADDED=$((AUDIT_AFTER - AUDIT_BEFORE))"
} >"$RES/meta.env"

echo
echo "cloudbroker HTTP benchmark: wrk -t$THREADS -c$CONNS -d${DURATION}s --latency" \
    "(warm-up ${WARMUP}s), $(nproc) CPUs, loopback"
echo "document: GET $REQ_PATH, $DOC_BYTES bytes; nginx $("$NGINX" -v 2>&1 | sed 's/.*version: //')," \
    "worker_processes auto; cloudbrokerd threads ${BROKER_THREADS:-default}"
echo "state on $(fstype "$WORK/state"); writes: $WRITE_LABEL;" \
    "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
run python3 "$LIB" report "$RES" || fail "report failed"
