#!/usr/bin/env bash
# bench/proxy/run.sh: meshdeploy's proxy side by side with nginx and HAProxy,
# on the shared harness (../shared/bench/proxy from the checkout, or
# $PROXY_BENCH_HARNESS). Results: bench/proxy/README.md.
#
#   bench/proxy/run.sh throughput   # >= 5 rounds: rps, p50/p99, CPU per request, ratios
#   bench/proxy/run.sh switch       # 60 s of wrk while the live set flips every second
#                                   # and canary weights change in between
#   bench/proxy/run.sh memory       # RSS per idle keep-alive client connection
#   bench/proxy/run.sh all
#
# Environment: MESHDEPLOY_BIN (default build/release/src/cli/meshdeploy),
# ROUNDS (5), DURATION (10), SWITCH_DURATION (60), IDLE_CONNS (10000), OUT_DIR,
# and everything the harness reads (PIN, WRK_CONNS, BASE_PORT, ...).
# Run it when the machine is otherwise idle (check `uptime`): the figures are
# ratios within one run, and other work on the cores skews them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
HARNESS=${PROXY_BENCH_HARNESS:-$root/../shared/bench/proxy}
BIN=${MESHDEPLOY_BIN:-$root/build/release/src/cli/meshdeploy}
mode=${1:-all}

[ -x "$HARNESS/run-throughput.sh" ] || { echo "no harness at $HARNESS (set PROXY_BENCH_HARNESS)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "no meshdeploy binary at $BIN (build it or set MESHDEPLOY_BIN)" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

export CUSTOM_NAME=meshdeploy
# One worker thread, like the peers; the harness pins it with the app on cpu 0.
export CUSTOM_PROXY_CMD="$BIN proxy run --listen 127.0.0.1:@LISTEN_PORT@ --threads @WORKERS@ \
--admin-socket @TMP@/md.sock --route app=127.0.0.1:@ACTIVE_PORT@ --health-path /"

throughput() {
  echo "== throughput: ${ROUNDS:-5} rounds of ${DURATION:-10} s per target (uptime: $(uptime | sed 's/.*load/load/'))"
  ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-10} "$HARNESS/run-throughput.sh"
}

switch() {
  # Each switch makes the other colour live (health-checked first), then sets
  # a canary of the same colour with a new weight: every step swaps the
  # routing table, and no step mixes colours.
  # WHY one command, not a canary in the background: under load a late
  # background canary ran after the next switch (a canary of the old colour
  # beside the new live set: interleaved colours), or collided with it
  # ("another switch of service 'app' is running").
  export CUSTOM_SWITCH_CMD="$BIN proxy deploy app --target 127.0.0.1:@ACTIVE_PORT@ \
--admin-socket @TMP@/md.sock --health-path / --health-timeout 5s && \
$BIN proxy canary app --target 127.0.0.1:@ACTIVE_PORT@ --weight \$((RANDOM % 100)) \
--admin-socket @TMP@/md.sock >/dev/null"
  echo "== switch: ${SWITCH_DURATION:-60} s, live set flips every second, canary weight changes in between (uptime: $(uptime | sed 's/.*load/load/'))"
  SWITCH_DURATION=${SWITCH_DURATION:-60} METHODS="${METHODS:-haproxy-api nginx-reload meshdeploy}" \
    "$HARNESS/run-switch.sh"
}

memory() {
  local n=${IDLE_CONNS:-10000} tmp pid up_pid port upport rss0 rss1
  tmp=$(mktemp -d)
  trap 'kill $pid $up_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' RETURN
  python3 "$here/idle_conns.py" upstream "$tmp/up.port" &
  up_pid=$!
  for _ in $(seq 100); do [ -s "$tmp/up.port" ] && break; sleep 0.05; done
  upport=$(cat "$tmp/up.port")
  "$BIN" proxy run --listen 127.0.0.1:0 --threads 1 --admin-socket "$tmp/md.sock" \
    --route "app=127.0.0.1:$upport" --health-path / >"$tmp/proxy.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$tmp/proxy.log" && break; sleep 0.05; done
  port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/proxy.log")
  python3 "$here/idle_conns.py" clients "$port" "$n" "$pid"
}

case $mode in
  throughput) throughput ;;
  switch) switch ;;
  memory) memory ;;
  all) throughput; switch; memory ;;
  *) echo "usage: $0 throughput|switch|memory|all" >&2; exit 2 ;;
esac
