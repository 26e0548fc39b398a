#!/usr/bin/env bash
# Shared helpers for the scenario tests (tests/e2e/*.sh). Source it:
#   . "$(dirname "$0")/lib.sh"; e2e_init
# Gives: a temp dir per test ($T) removed at exit, cleanup of every process
# started through it, free ports, polling, and a wrk wrapper that reports
# requests, non-2xx answers and socket errors.
# Env from ctest: MESHDEPLOY_BIN, MESHDEPLOY_SRC, MESHDEPLOY_TEST_PG_URL_FILE.
# E2E_KEEP=1 keeps the temp dir for a post-mortem.

set -euo pipefail

E2E_PIDS=()
E2E_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)

# Prints a progress line to stderr with the seconds since the test started.
log() { printf '[%s %6.2fs] %s\n' "$E2E_NAME" "$(e2e_elapsed)" "$*" >&2; }
e2e_elapsed() { echo "$(( $(date +%s%N) / 1000000 - E2E_T0 ))" | awk '{printf "%.2f", $1/1000}'; }

# Fails the test with a message (and the tail of any log named in E2E_LOGS).
die() {
  log "FAIL: $*"
  local f
  for f in ${E2E_LOGS-}; do
    [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 30 "$f" >&2; }
  done
  exit 1
}

# Sets up $T, the exit trap and defaults for MESHDEPLOY_BIN / MESHDEPLOY_SRC.
e2e_init() {
  E2E_T0=$(( $(date +%s%N) / 1000000 ))
  MESHDEPLOY_SRC=${MESHDEPLOY_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
  MESHDEPLOY_BIN=${MESHDEPLOY_BIN:-$MESHDEPLOY_SRC/build/release/src/cli/meshdeploy}
  [ -x "$MESHDEPLOY_BIN" ] || { echo "e2e: no meshdeploy binary at $MESHDEPLOY_BIN" >&2; exit 1; }
  T=$(mktemp -d "${TMPDIR:-/tmp}/md-e2e-$E2E_NAME.XXXXXX")
  export T MESHDEPLOY_BIN MESHDEPLOY_SRC
  trap e2e_cleanup EXIT
  trap 'exit 130' INT TERM
}

# Registers a pid to kill at exit (its whole process group if it leads one).
track() { E2E_PIDS+=("$1"); }

# Runs a command in the background in its own process group, logging to
# $T/NAME.log; sets LAST_PID. Usage: spawn NAME CMD...
spawn() {
  local name=$1; shift
  setsid "$@" >"$T/$name.log" 2>&1 &
  LAST_PID=$!
  track "$LAST_PID"
}

e2e_cleanup() {
  local rc=$? pid
  for pid in ${E2E_PIDS[@]+"${E2E_PIDS[@]}"}; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in ${E2E_PIDS[@]+"${E2E_PIDS[@]}"}; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ] || [ "${E2E_KEEP:-0}" = 1 ]; then
    echo "e2e $E2E_NAME: exit $rc; files kept in $T" >&2
  else
    rm -rf "$T"
  fi
  exit "$rc"
}

# A TCP port free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Polls CMD every 50 ms until it succeeds or SECONDS pass.
# Usage: wait_for SECONDS "what we wait for" CMD...
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$(( $(date +%s%N) / 1000000 + secs * 1000 ))
  until "$@" >/dev/null 2>&1; do
    [ "$(( $(date +%s%N) / 1000000 ))" -lt "$deadline" ] || die "timed out after ${secs}s waiting for $what"
    sleep 0.05
  done
}

# The body of GET URL, or nothing (never fails).
http_get() { curl -s --max-time 2 "$1" 2>/dev/null || true; }
# The "version" field the example app answers at URL (e.g. v2), or nothing.
served_version() { http_get "$1" | sed -n 's/.*"version":"\([^"]*\)".*/\1/p'; }

# Asserts two values are equal. Usage: expect_eq ACTUAL EXPECTED "what"
expect_eq() { [ "$1" = "$2" ] || die "$3: got '$1', want '$2'"; }

# ---- load generation with wrk ---------------------------------------------

e2e_wrk_script() {
  cat >"$T/wrk_report.lua" <<'LUA'
-- Counts answers per status class and per x-meshhook-version, across threads.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n2 = 0; n4 = 0; n5 = 0; nother = 0; versions = {} end
function response(status, headers, body)
  if status >= 500 then n5 = n5 + 1
  elseif status >= 400 then n4 = n4 + 1
  elseif status >= 200 and status < 400 then n2 = n2 + 1
  else nother = nother + 1 end
  local v
  for k, val in pairs(headers) do
    if string.lower(k) == "x-meshhook-version" then v = val end
  end
  v = v or "-"
  versions[v] = (versions[v] or 0) + 1
end
function done(summary, latency, requests)
  local t = {n2 = 0, n4 = 0, n5 = 0, nother = 0}
  local vs = {}
  for _, th in ipairs(threads) do
    for _, k in ipairs({"n2", "n4", "n5", "nother"}) do t[k] = t[k] + (th:get(k) or 0) end
    for v, c in pairs(th:get("versions") or {}) do vs[v] = (vs[v] or 0) + c end
  end
  local parts = {}
  for v, c in pairs(vs) do table.insert(parts, v .. ":" .. c) end
  table.sort(parts)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d ok=%d status4xx=%d status5xx=%d other=%d connect=%d read=%d write=%d timeout=%d p99_ms=%.1f versions=%s\n",
    summary.requests, t.n2, t.n4, t.n5, t.nother, e.connect, e.read, e.write, e.timeout,
    latency:percentile(99) / 1000, table.concat(parts, ",")))
end
LUA
}

# Starts wrk against URL in the background until wrk_stop. Usage:
#   wrk_start NAME URL [CONNECTIONS=8] [THREADS=1]
wrk_start() {
  local name=$1 url=$2 conns=${3:-8} threads=${4:-1}
  command -v wrk >/dev/null || die "wrk is not installed (scripts/install-deps.sh)"
  [ -f "$T/wrk_report.lua" ] || e2e_wrk_script
  # WHY SIGINT later: wrk prints its summary when interrupted, so one long -d
  # covers a deploy of unknown length.
  wrk -t"$threads" -c"$conns" -d600s --timeout 5s -s "$T/wrk_report.lua" "$url" \
    >"$T/wrk-$name.out" 2>&1 &
  eval "WRK_PID_$name=$!"
  track "$!"
}

# Stops wrk NAME and parses its result into WRK_REQUESTS, WRK_OK, WRK_5XX,
# WRK_4XX, WRK_SOCKET_ERRORS, WRK_FAILED (= non-2xx/3xx + socket errors),
# WRK_P99_MS, WRK_VERSIONS ("v1:123,v2:456").
wrk_stop() {
  local name=$1 pid
  eval "pid=\$WRK_PID_$name"
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local line
  line=$(grep '^WRK_RESULT' "$T/wrk-$name.out" || true)
  [ -n "$line" ] || { cat "$T/wrk-$name.out" >&2; die "wrk $name printed no result"; }
  kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  WRK_REQUESTS=$(kv requests); WRK_OK=$(kv ok); WRK_5XX=$(kv status5xx); WRK_4XX=$(kv status4xx)
  WRK_SOCKET_ERRORS=$(( $(kv connect) + $(kv read) + $(kv write) + $(kv timeout) ))
  WRK_FAILED=$(( WRK_5XX + WRK_4XX + $(kv other) + WRK_SOCKET_ERRORS ))
  WRK_P99_MS=$(kv p99_ms); WRK_VERSIONS=$(kv versions)
  log "wrk $name: $WRK_REQUESTS requests, $WRK_FAILED failed ($WRK_5XX 5xx, $WRK_4XX 4xx, $WRK_SOCKET_ERRORS socket errors), p99 ${WRK_P99_MS} ms, versions $WRK_VERSIONS"
}

# Stops wrk NAME and fails the test unless every request succeeded.
wrk_expect_clean() {
  wrk_stop "$1"
  [ "$WRK_REQUESTS" -gt 0 ] || die "wrk $1 sent no requests"
  [ "$WRK_FAILED" -eq 0 ] || die "wrk $1: $WRK_FAILED of $WRK_REQUESTS requests failed"
}
