#!/usr/bin/env bash
# Starts or stops a throw-away Postgres 15 cluster for the tests.
#   pg-test-cluster.sh start DIR   -> initdb in DIR, start on a free loopback
#                                     port, write the URL to DIR/url, print it
#   pg-test-cluster.sh stop DIR    -> stop it and remove DIR
# Postgres refuses to run as root, so as root the server runs as `postgres`
# (runuser). Trust auth on 127.0.0.1 only; nothing outside DIR is touched.
set -euo pipefail
cmd=${1:?usage: pg-test-cluster.sh start|stop DIR}
dir=${2:?usage: pg-test-cluster.sh start|stop DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$bin/initdb" ] || { echo "pg-test-cluster: no Postgres server found (apt-get install postgresql-15)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

case $cmd in
  start)
    if [ -f "$dir/url" ] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      cat "$dir/url"; exit 0
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    chmod 700 "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    for attempt in 1 2 3 4 5; do
      port=$(free_port)
      if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
          -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c shared_buffers=64MB" \
          start >/dev/null 2>&1; then
        url="postgresql://postgres@127.0.0.1:$port/postgres"
        echo "$url" >"$dir/url"; chmod 644 "$dir/url"
        echo "$url"; exit 0
      fi
    done
    cat "$dir/server.log" >&2; exit 1
    ;;
  stop)
    if [ -d "$dir/data" ]; then as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
    ;;
  *) echo "usage: pg-test-cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
