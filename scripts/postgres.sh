#!/usr/bin/env bash
# Start a throwaway PostgreSQL 15 server on loopback for the test suite.
#   scripts/postgres.sh start DIR PORT   -> initialises DIR (if empty) and starts the server
#   scripts/postgres.sh stop DIR
# Installs the Debian packages when the server binaries are missing. Runs the server as the `postgres`
# user when invoked as root (PostgreSQL refuses to run as root).
set -euo pipefail

cmd=${1:?usage: postgres.sh start|stop DIR [PORT]}
dir=${2:?data directory}
port=${3:-55432}

find_bin() {
    for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        if [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    done
    return 1
}

bin=$(find_bin || true)
if [ -z "$bin" ]; then
    echo "postgres.sh: installing postgresql-15 from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql-15 >&2
    bin=$(find_bin)
fi

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_pg "$bin/initdb" -D "$dir" -U postgres -A trust --no-sync >"$dir.initdb.log" 2>&1
    fi
    as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" >&2
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    as_pg "$bin/pg_ctl" -D "$dir" -m immediate stop >&2 || true
    ;;
*)
    echo "unknown command $cmd" >&2; exit 2 ;;
esac
