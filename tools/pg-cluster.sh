#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A throw-away PostgreSQL 15 cluster for the tests: initdb + pg_ctl from Debian's packages, in a
# folder of its own, listening on a Unix socket in that folder only (no TCP port, so nothing can
# clash with another cluster on the machine). As root the server runs as the postgres user
# (initdb refuses root); otherwise as the caller.
#
#   tools/pg-cluster.sh start DIR     creates and starts a cluster in DIR (must not exist or be
#                                     empty); prints its URL (postgresql:///postgres?host=DIR)
#   tools/pg-cluster.sh restart DIR   stops (fast) and starts it again
#   tools/pg-cluster.sh stop DIR      stops it (immediate) and removes DIR
#   tools/pg-cluster.sh url DIR       prints the URL again
set -euo pipefail

PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
PROG="tools/pg-cluster.sh"
PORT=5432 # only names the socket file (DIR/.s.PGSQL.5432); no TCP listener

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}

# as_owner CMD...: runs CMD as the cluster's owner (postgres when we are root).
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() {
    # The socket folder goes in the query (a path cannot be the host part of a URL).
    printf 'postgresql:///postgres?host=%s&port=%s&user=postgres\n' "$1" "$PORT"
}

start() {
    local dir="$1"
    [ -x "$PGBIN/initdb" ] || die "no $PGBIN/initdb: install postgresql-15"
    # The socket path must fit in sun_path (107 bytes) with its file name.
    [ "${#dir}" -le 80 ] || die "folder name too long for a Unix socket: $dir"
    mkdir -p "$dir"
    [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
    fi
    chmod 0700 "$dir"
    # C locale: text sorts byte-wise as in SQLite. fsync off: the cluster is thrown away.
    as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        die "initdb failed"
    }
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
port = $PORT
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 32MB
log_min_messages = warning
EOF
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null || {
        cat "$dir/server.log" >&2
        die "pg_ctl start failed"
    }
    url "$dir"
}

restart() {
    as_owner "$PGBIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 -m fast restart >/dev/null
}

stop() {
    local dir="$1"
    [ -d "$dir" ] || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$dir/data" -w -t 60 -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

[ "$#" -eq 2 ] || die "usage: $PROG start|restart|stop|url DIR"
case "$2" in
/*) ;;
*) die "DIR must be an absolute path: $2" ;;
esac
case "$1" in
start) start "$2" ;;
restart) restart "$2" ;;
stop) stop "$2" ;;
url) url "$2" ;;
*) die "unknown command '$1' (start, restart, stop, url)" ;;
esac
