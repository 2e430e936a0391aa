#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A throw-away PostgreSQL 15 cluster for the tests: initdb + pg_ctl from Debian's packages, in a
# folder of its own, listening on a Unix socket in that folder only (no TCP port, so nothing can
# clash with another cluster on the machine). As root the server runs as the postgres user
# (initdb refuses root); otherwise as the caller.
#
#   tools/pg-cluster.sh start DIR [--sync-standby NAME]
#                                     creates and starts a cluster in DIR (must not exist or be
#                                     empty); prints its URL (postgresql:///postgres?host=DIR).
#                                     It takes replication connections on its socket (wal_level
#                                     replica, wal senders, "local replication" trusted). With
#                                     --sync-standby, a commit waits until the standby whose
#                                     application_name is NAME has it on disk
#                                     (synchronous_standby_names, synchronous_commit = on):
#                                     until that standby is connected, every commit waits.
#   tools/pg-cluster.sh standby PRIMARY_DIR STANDBY_DIR [NAME]
#                                     a streaming standby of the running cluster in PRIMARY_DIR:
#                                     pg_basebackup -R over PRIMARY_DIR's socket into STANDBY_DIR,
#                                     started on a socket in STANDBY_DIR, application_name NAME
#                                     (default "standby"); prints its URL
#   tools/pg-cluster.sh promote DIR   promotes the standby in DIR to a primary (waits for it)
#   tools/pg-cluster.sh restart DIR   stops (fast) and starts it again
#   tools/pg-cluster.sh halt DIR      stops it (immediate, as a crash would) and keeps DIR
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

# new_dir DIR: makes the empty folder DIR for a cluster, owned by the cluster's owner.
new_dir() {
    local dir="$1"
    # The socket path must fit in sun_path (107 bytes) with its file name.
    [ "${#dir}" -le 80 ] || die "folder name too long for a Unix socket: $dir"
    mkdir -p "$dir"
    [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
    fi
    chmod 0700 "$dir"
}

# pg_start DIR: starts the server of DIR/data, its log in DIR/server.log.
pg_start() {
    as_owner "$PGBIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 start >/dev/null || {
        cat "$1/server.log" >&2
        die "pg_ctl start failed"
    }
}

start() {
    local dir="$1" sync_name="$2"
    [ -x "$PGBIN/initdb" ] || die "no $PGBIN/initdb: install postgresql-15"
    new_dir "$dir"
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
# A standby may stream from it (PostgreSQL 15's defaults, stated).
wal_level = replica
max_wal_senders = 10
hot_standby = on
EOF
    if [ -n "$sync_name" ]; then
        # No acknowledged commit is lost with the primary: the standby has it too.
        cat >>"$dir/data/postgresql.conf" <<EOF
synchronous_commit = on
synchronous_standby_names = '$sync_name'
EOF
    fi
    # initdb -A trust writes "local replication all trust"; pg_basebackup needs it.
    grep -Eq '^local[[:space:]]+replication[[:space:]]+all[[:space:]]+trust' \
        "$dir/data/pg_hba.conf" ||
        echo 'local replication all trust' >>"$dir/data/pg_hba.conf"
    pg_start "$dir"
    url "$dir"
}

standby() {
    local primary="$1" dir="$2" name="$3"
    [ -S "$primary/.s.PGSQL.$PORT" ] || die "no cluster running in $primary"
    case "$name" in
    '' | *[!A-Za-z0-9_-]*) die "a standby's name is letters, digits, - and _: '$name'" ;;
    esac
    new_dir "$dir"
    # -R writes standby.signal and primary_conninfo; -X stream copies the backup's WAL too.
    as_owner "$PGBIN/pg_basebackup" -h "$primary" -p "$PORT" -U postgres -D "$dir/data" -R \
        -X stream -c fast --no-sync >"$dir/basebackup.log" 2>&1 || {
        cat "$dir/basebackup.log" >&2
        die "pg_basebackup failed"
    }
    # The copied postgresql.conf names the primary's socket folder and standby: the last line
    # wins. Once promoted, this server has no standby of its own; waiting for one would hold
    # every commit. The application_name is what the primary's synchronous_standby_names
    # matches.
    printf "unix_socket_directories = '%s'\nsynchronous_standby_names = ''\n" "$dir" \
        >>"$dir/data/postgresql.conf"
    echo "primary_conninfo = 'host=$primary port=$PORT user=postgres application_name=$name'" \
        >>"$dir/data/postgresql.auto.conf"
    pg_start "$dir"
    url "$dir"
}

promote() {
    as_owner "$PGBIN/pg_ctl" -D "$1/data" -w -t 60 promote >/dev/null
}

restart() {
    as_owner "$PGBIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 -m fast restart >/dev/null
}

halt() {
    as_owner "$PGBIN/pg_ctl" -D "$1/data" -w -t 60 -m immediate stop >/dev/null
}

stop() {
    local dir="$1"
    [ -d "$dir" ] || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$dir/data" -w -t 60 -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

absolute() {
    case "$1" in
    /*) ;;
    *) die "DIR must be an absolute path: $1" ;;
    esac
}

USAGE="usage: $PROG start DIR [--sync-standby NAME] | standby PRIMARY_DIR STANDBY_DIR [NAME]"
USAGE="$USAGE | promote|restart|halt|stop|url DIR"
[ "$#" -ge 2 ] || die "$USAGE"
absolute "$2"
case "$1" in
start)
    if [ "$#" -eq 4 ] && [ "$3" = --sync-standby ]; then
        start "$2" "$4"
    else
        [ "$#" -eq 2 ] || die "$USAGE"
        start "$2" ""
    fi
    ;;
standby)
    [ "$#" -eq 3 ] || [ "$#" -eq 4 ] || die "$USAGE"
    absolute "$3"
    standby "$2" "$3" "${4:-standby}"
    ;;
promote | restart | halt | stop | url)
    [ "$#" -eq 2 ] || die "$USAGE"
    "$1" "$2"
    ;;
*) die "unknown command '$1' (start, standby, promote, restart, halt, stop, url)" ;;
esac
