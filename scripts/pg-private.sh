#!/usr/bin/env bash
# A private PostgreSQL cluster for tests, benchmarks and the hub demo: initdb into DIR, its own
# Unix socket in DIR and its own TCP port on 127.0.0.1, never the system cluster.
#
#   scripts/pg-private.sh start DIR [PORT] [MAX_CONNECTIONS]   prints the database URL (role hub)
#   scripts/pg-private.sh restart DIR                           fast restart (drops connections)
#   scripts/pg-private.sh stop DIR                              stops it (DIR stays; rm -rf it)
#
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user that
# Debian's package creates. Installs Debian's postgresql with apt-get when it is missing.
set -euo pipefail

command=${1:?usage: pg-private.sh start|restart|stop DIR [PORT] [MAX_CONNECTIONS]}
dir=${2:?usage: pg-private.sh start|restart|stop DIR [PORT] [MAX_CONNECTIONS]}

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "pg-private: installing Debian's postgresql" >&2
    # No system cluster: this script never uses one.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/lethe-no-main-cluster.conf
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

as_owner() {
    # setpriv execs in place (runuser forks and waits, which hangs under a parent that ignores SIGCHLD).
    if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; else "$@"; fi
}

case "$command" in
start)
    port=${3:-0}; [ "$port" = 0 ] && port=$((20000 + RANDOM % 20000))
    max=${4:-200}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_owner test -w "$dir" || { echo "pg-private: the postgres user cannot reach $dir: make its parent folders traversable (chmod o+x)" >&2; exit 1; }
    as_owner "$bin/initdb" -D "$dir/data" -U lethe --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c max_connections=$max -c shared_buffers=64MB" start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    # The hub connects as `hub`, an ordinary role that owns the database; `lethe`, the
    # superuser, keeps the connections PostgreSQL reserves for superusers (psql in the tests).
    as_owner "$bin/createuser" -h "$dir" -p "$port" -U lethe hub
    as_owner "$bin/createdb" -h "$dir" -p "$port" -U lethe -O hub lethe
    echo "postgres://hub@127.0.0.1:$port/lethe?sslmode=disable"
    ;;
restart)
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -m fast restart >/dev/null
    ;;
stop)
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 30 -m fast stop >/dev/null 2>&1 || true
    ;;
*)
    echo "pg-private: unknown command $command (start, restart, stop)" >&2
    exit 2
    ;;
esac
