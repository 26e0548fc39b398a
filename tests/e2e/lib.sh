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

# Runs a command at exit, after the tracked processes are stopped.
on_exit() { E2E_ON_EXIT+=("$1"); }
E2E_ON_EXIT=()

e2e_cleanup() {
  local rc=$? pid cmd
  for pid in ${E2E_PIDS[@]+"${E2E_PIDS[@]}"}; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in ${E2E_PIDS[@]+"${E2E_PIDS[@]}"}; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  # Release processes live in sessions of their own: anything still running
  # from under $T goes too.
  local left
  left=$(e2e_pids_under "$T")
  if [ -n "$left" ]; then
    kill -TERM $left 2>/dev/null || true
    sleep 0.5
    kill -KILL $(e2e_pids_under "$T") 2>/dev/null || true
  fi
  for cmd in ${E2E_ON_EXIT[@]+"${E2E_ON_EXIT[@]}"}; do eval "$cmd" >/dev/null 2>&1 || true; done
  if [ "$rc" -ne 0 ] || [ "${E2E_KEEP:-0}" = 1 ]; then
    echo "e2e $E2E_NAME: exit $rc; files kept in $T" >&2
  else
    rm -rf "$T"
  fi
  exit "$rc"
}

# Pids of processes whose working directory is DIR or below it.
e2e_pids_under() {
  # WHY find: one process instead of a readlink per pid (slow under load).
  find /proc -mindepth 2 -maxdepth 2 -name cwd \( -lname "$1" -o -lname "$1/*" \) -printf '%h\n' 2>/dev/null |
    sed 's|^/proc/||' | grep -v "^$$\$" || true
}

# A TCP port free on ADDR (default 127.0.0.1) right now. Usage: free_port [ADDR]
free_port() {
  python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1]); s.close()' "${1:-127.0.0.1}"
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

# Starts a receiver of tests/receivers/ (Debian's python3, which has
# aiosmtpd), logging what it gets to $T/NAME.jsonl, and waits for its port:
# sets NAME_PID and NAME_PORT. Usage: start_receiver NAME SCRIPT ARGS...
start_receiver() {
  local name=$1 script=$2; shift 2
  rm -f "$T/$name.port"
  spawn "$name" /usr/bin/python3 "$MESHDEPLOY_SRC/tests/receivers/$script" \
    --port-file "$T/$name.port" --log "$T/$name.jsonl" "$@"
  eval "${name}_PID=$LAST_PID"
  wait_for 10 "receiver $name" test -s "$T/$name.port"
  eval "${name}_PORT=$(cat "$T/$name.port")"
}
# Stops a receiver started by start_receiver and waits until it is gone.
stop_receiver() {
  local pid
  eval "pid=\$${1}_PID"
  kill -TERM -- "-$pid"
  wait_for 10 "receiver $1 to stop" bash -c "! kill -0 $pid"
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
function init(args) n2 = 0; n4 = 0; n5 = 0; nother = 0; versions = {}; errs = {} end
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
  if status >= 500 then errs[v] = (errs[v] or 0) + 1 end
end
function done(summary, latency, requests)
  local t = {n2 = 0, n4 = 0, n5 = 0, nother = 0}
  local vs, es = {}, {}
  for _, th in ipairs(threads) do
    for _, k in ipairs({"n2", "n4", "n5", "nother"}) do t[k] = t[k] + (th:get(k) or 0) end
    for v, c in pairs(th:get("versions") or {}) do vs[v] = (vs[v] or 0) + c end
    for v, c in pairs(th:get("errs") or {}) do es[v] = (es[v] or 0) + c end
  end
  local parts, eparts = {}, {}
  for v, c in pairs(vs) do table.insert(parts, v .. ":" .. c) end
  for v, c in pairs(es) do table.insert(eparts, v .. ":" .. c) end
  table.sort(parts)
  table.sort(eparts)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d ok=%d status4xx=%d status5xx=%d other=%d connect=%d read=%d write=%d timeout=%d p99_ms=%.1f versions=%s errors=%s\n",
    summary.requests, t.n2, t.n4, t.n5, t.nother, e.connect, e.read, e.write, e.timeout,
    latency:percentile(99) / 1000, table.concat(parts, ","), table.concat(eparts, ",")))
end
LUA
}

# Starts wrk against URL in the background until wrk_stop. Usage:
#   wrk_start NAME URL [CONNECTIONS=4] [THREADS=1]
wrk_start() {
  local name=$1 url=$2 conns=${3:-4} threads=${4:-1}
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
# WRK_P99_MS, WRK_VERSIONS ("v1:123,v2:456": answers per x-meshhook-version),
# WRK_ERRORS ("v3:12": 5xx answers per version; "-" = no version: the proxy's).
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
  WRK_P99_MS=$(kv p99_ms); WRK_VERSIONS=$(kv versions); WRK_ERRORS=$(sed -n 's/.* errors=\([^ ]*\).*/\1/p' <<<"$line")
  log "wrk $name: $WRK_REQUESTS requests, $WRK_FAILED failed ($WRK_5XX 5xx, $WRK_4XX 4xx, $WRK_SOCKET_ERRORS socket errors), p99 ${WRK_P99_MS} ms, versions $WRK_VERSIONS"
}

# 5xx answers wrk NAME got from VERSION (after wrk_stop).
wrk_errors_from() { tr ',' '\n' <<<"$WRK_ERRORS" | sed -n "s/^$1:\([0-9]*\)$/\1/p" | grep . || echo 0; }

# Stops wrk NAME and fails the test unless every request succeeded.
wrk_expect_clean() {
  wrk_stop "$1"
  [ "$WRK_REQUESTS" -gt 0 ] || die "wrk $1 sent no requests"
  [ "$WRK_FAILED" -eq 0 ] || die "wrk $1: $WRK_FAILED of $WRK_REQUESTS requests failed"
}

# ---- meshdeploy scenarios: the example app, an agent, a config ----------------

md() { "$MESHDEPLOY_BIN" "$@"; }

# Builds a release of examples/meshhook into $T/app/dist.
# Usage: build_app VERSION [--behave KEY=VALUE]...
build_app() {
  bash "$MESHDEPLOY_SRC/examples/meshhook/scripts/build-artifact.sh" "$@" --out "$T/app/dist" >/dev/null
}

# Writes $T/app/meshdeploy.yml: environment "test", the example's web (x2)
# and worker processes, fast health checks. Tunables (environment variables):
#   PROXY_PORT (required)  STRATEGY=blue_green  CANARY_STEPS='[{weight: 50, pause: 1s}, {weight: 100}]'
#   MIN_REQUESTS=20  INTERVAL=250ms  WARMUP=0s  WATCH=0s  WINDOW=0s  WORKERS=1
#   HEALTH_INTERVAL=100ms (the web processes' health probes)
#   HOOKS (yaml lines under hooks:, indented 4)  MIGRATIONS=off|on
#   ENV_YAML (yaml lines of environment test, indented 4; e.g. from ssh_env_yaml)
#   STRATEGY_YAML (more yaml lines under strategy:, indented 4)
write_config() {
  mkdir -p "$T/app" "$T/spool"
  local workers=${WORKERS:-1} migrations="    enabled: false" steps=${CANARY_STEPS:-}
  [ -n "$steps" ] || steps='[{weight: 50, pause: 1s}, {weight: 100}]'  # WHY apart: '}' ends a ${:-} default
  if [ "${MIGRATIONS:-off}" = on ]; then
    migrations="    dir: migrations
    database_url_secret: DATABASE_URL
    lock_timeout: 2s"
  fi
  cat >"$T/app/meshdeploy.yml" <<YAML
app: meshhook
defaults:
  services:
    web:
      command: node build
      count: 2
      health: {path: /healthz, interval: ${HEALTH_INTERVAL:-100ms}, timeout: 1s, healthy_threshold: 1, unhealthy_threshold: 2, start_timeout: 10s}
      stop_grace: 5s
$( [ "$workers" -gt 0 ] && printf '    worker:\n      kind: worker\n      command: node build/worker.js\n      count: %s\n      stop_grace: 10s\n' "$workers")
  artifact: {dir: dist}
  agent: {root: $T/agent}
  proxy: {listen: "127.0.0.1:$PROXY_PORT", drain_timeout: 5s}
  env: {MESHHOOK_SPOOL_DIR: $T/spool, MESHHOOK_JOB_MS: "100"}
  migrations:
$migrations
  strategy:
    kind: ${STRATEGY:-blue_green}
$( [ "${STRATEGY:-blue_green}" = canary ] && printf '    steps: %s\n' "$steps")
    analysis: {max_error_ratio: 0.05, max_p99_ratio: 0, min_requests: ${MIN_REQUESTS:-20}, interval: ${INTERVAL:-250ms}, warmup: ${WARMUP:-0s}, max_inconclusive: 10s}
    watch_window: ${WATCH:-0s}
$( [ -n "${STRATEGY_YAML:-}" ] && printf '%s\n' "$STRATEGY_YAML")
  rollback_window: ${WINDOW:-0s}
  keep_releases: 3
  hooks:
${HOOKS:-    timeout: 30s}
environments:
$( if [ -n "${ENV_YAML:-}" ]; then printf '  test:\n%s\n' "$ENV_YAML"; else printf '  test: {}\n'; fi)
YAML
  md config validate -c "$T/app/meshdeploy.yml" >/dev/null || { md config validate -c "$T/app/meshdeploy.yml"; die "test config invalid"; }
}

# Starts the agent on $T/agent with the proxy on PROXY_PORT; AGENT_PID.
# AGENT_ARGS: more `agent run` flags (split on spaces), e.g. "--upload-expiry 3s".
start_agent() {
  spawn agent "$MESHDEPLOY_BIN" agent run --root "$T/agent" --listen "127.0.0.1:$PROXY_PORT" ${AGENT_ARGS-}
  AGENT_PID=$LAST_PID
  E2E_LOGS="${E2E_LOGS-} $T/agent.log"
  wait_for 20 "the agent's socket" test -S "$T/agent/agent.sock"
  wait_for 20 "the agent's status" md status --env test -c "$T/app/meshdeploy.yml"
}

# Context switches of all threads of PID so far, from /proc/PID/task/*/status:
# a thread that sleeps and wakes counts one voluntary switch; preemption on a
# loaded machine adds nonvoluntary ones. Usage: thread_switches PID [voluntary|all]
thread_switches() {
  local key=ctxt_switches
  [ "${2:-all}" = voluntary ] && key=^voluntary_ctxt_switches
  cat /proc/"$1"/task/*/status 2>/dev/null | awk -v k="$key" '$0 ~ k {c += $2} END {print c + 0}'
}

# meshdeploy with the test config. Usage: mdt deploy --version v1 ...
mdt() { "$MESHDEPLOY_BIN" "$@" -c "$T/app/meshdeploy.yml" --env test; }

# Pids of processes whose working directory is a release under $T/agent
# (of VERSION when given): the app's processes, found without the agent.
release_pids() { e2e_pids_under "$T/agent/releases${1:+/$1}"; }

# The version the proxy serves at /.
proxy_version() { served_version "http://127.0.0.1:$PROXY_PORT/"; }

# Fails unless VERSION takes all traffic and no process of another release
# runs (no orphans): checked through the agent and through /proc.
expect_only() {
  local v=$1 json
  json=$(mdt status --json) || die "status failed"
  python3 - "$v" "$json" <<'PY' || die "status does not show $v alone: $json"
import json, sys
want, s = sys.argv[1], json.loads(sys.argv[2])
assert s["weights"] == {want: 100}, s["weights"]
running = [r["version"] for r in s["releases"] if any(p["state"] not in ("stopped",) for p in r["processes"])]
assert running == [want], running
PY
  local others
  others=$(find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$T/agent/releases/*" -printf '%l\n' 2>/dev/null |
    grep -v "/releases/$v\(/\|$\)" | sort -u || true)
  [ -z "$others" ] || die "processes of other releases still run: $others"
  expect_eq "$(proxy_version)" "$v" "version served at /"
}

# expect_only in a subshell: a non-zero status instead of failing the test
# (for wait_for).
expect_only_quietly() { ( expect_only "$1" ); }

# Checks that every intent in a deployment's journal has an outcome.
expect_journal_complete() {
  local id=$1 json
  json=$(mdt history --id "$id" --json) || die "history --id $id failed"
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if j["complete"] else 1)' "$json" \
    || die "journal of $id is incomplete: $(mdt history --id "$id")"
}

# The id of the newest deployment.
last_deployment() { mdt history --json -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'; }

# ---- the crash scenario (deploy_crash_*.sh) -----------------------------------

# The rounds of a crash scenario, v1 being live: for each STEP given, for
# both records of it, a deploy whose controller SIGKILLs itself right after
# writing that record (MESHDEPLOY_FAULT_KILL_AT), then — alternately —
# `deploy --resume` or a new deploy (which settles the dead one first). After
# each: `$CRASH_EXPECT VERSION` (one live version, no orphans), complete
# journals. `$CRASH_PREPARE N CONTRACT` (optional) runs before release vN is
# built; CONTRACT is yes for the releases killed around migrate_contract.
# Usage: CRASH_EXPECT=fn [CRASH_PREPARE=fn] crash_rounds STEP...
crash_rounds() {
  local n=1 i=0 live=v1 dead rc step phase how prev
  for step in "$@"; do
    for phase in intent outcome; do
      n=$((n + 1)); i=$((i + 1))
      [ -z "${CRASH_PREPARE:-}" ] || "$CRASH_PREPARE" "$n" "$([ "$step" = migrate_contract ] && echo yes || echo no)"
      build_app "v$n"
      rc=0
      MESHDEPLOY_FAULT_KILL_AT=$step:$phase mdt deploy --version "v$n" >"$T/kill-v$n.out" 2>&1 || rc=$?
      expect_eq "$rc" 137 "exit of the controller killed at $step:$phase"
      dead=$(last_deployment)
      if [ $((i % 2)) -eq 1 ]; then
        rc=0
        mdt deploy --resume >"$T/resume-v$n.out" 2>&1 || rc=$?
        if [ "$rc" -eq 5 ] && [ "$step:$phase" = notify_finished:outcome ]; then
          :  # killed after its last record: nothing left to resume
        elif [ "$rc" -ne 0 ]; then
          cat "$T/resume-v$n.out"; die "resume after $step:$phase exited $rc"
        fi
        live=v$n
        how=resumed
      else
        # A new deploy settles the dead one first (rolls it back, or finishes
        # it when its old release was already stopping).
        prev=$n
        n=$((n + 1))
        [ -z "${CRASH_PREPARE:-}" ] || "$CRASH_PREPARE" "$n" no
        build_app "v$n"
        mdt deploy --version "v$n" >"$T/deploy-v$n.out" 2>&1 || { cat "$T/deploy-v$n.out"; die "deploy after $step:$phase failed"; }
        live=v$n
        how="superseded by v$n"
        mdt history --id "$dead" --json | grep -q '"status": "running"' && die "v$prev still running"
      fi
      "$CRASH_EXPECT" "$live"
      expect_journal_complete "$dead"
      expect_journal_complete "$(last_deployment)"
      log "killed at $step:$phase, $how: $live alone"
    done
  done
}


# For each STEP given, for both records of it (intent, outcome): a deploy
# whose controller SIGKILLs itself right after writing that record
# (MESHDEPLOY_FAULT_KILL_AT), then — alternately — `deploy --resume` or a new
# deploy. After each: exactly one live version, no process of any other
# release, complete journals, migrations applied once.
# Every step runs in this setup (hooks, Postgres migrations, workers, watch
# and warm windows), so every fault point is reached.
crash_scenario() {
  PROXY_PORT=$(free_port)
  local pg_url db
  pg_url=$(cat "$MESHDEPLOY_TEST_PG_URL_FILE")
  db=md_e2e_crash_$$
  psql "$pg_url" -qXc "create database $db" >/dev/null
  on_exit "psql '$pg_url' -qXc 'drop database if exists $db with (force)'"
  export MESHDEPLOY_LOCK_TTL_MS=1000 MESHDEPLOY_KEY_TEST
  MIGRATIONS=on WATCH=300ms WINDOW=300ms \
    HOOKS="    pre_deploy: echo pre \$MESHDEPLOY_VERSION >> $T/hooks.log
    post_deploy: echo post \$MESHDEPLOY_VERSION >> $T/hooks.log" write_config
  mkdir -p "$T/app/migrations"
  MESHDEPLOY_KEY_TEST=$(md secrets keygen --env test)
  printf '%s' "${pg_url%/*}/$db" | mdt secrets set DATABASE_URL >/dev/null
  # Each release brings an expand migration; the releases killed around
  # migrate_contract also a contract one. WHY not always: a deploy rolled
  # back leaves its contract file pending, and the next release's expand
  # file would then follow it, which the engine rightly refuses.
  add_migrations() {
    local n=$1 contract=$2
    printf 'create table t%s (id int);\n' "$n" >"$T/app/migrations/2025010100$(printf %04d "$n")0_t$n.sql"
    [ "$contract" = yes ] || return 0
    printf -- '-- meshdeploy:phase contract\ndrop table t%s;\n' "$n" \
      >"$T/app/migrations/2025010100$(printf %04d "$n")1_c$n.sql"
  }
  add_migrations 1 no
  build_app v1
  start_agent
  mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }
  # WHY wait: the agent stops a release kept warm once its (300 ms)
  # rollback window ends, after the deploy returned.
  crash_expect_local() {
    wait_for 30 "$1 alone" expect_only_quietly "$1"
    expect_only "$1"
  }
  CRASH_PREPARE=add_migrations CRASH_EXPECT=crash_expect_local crash_rounds "$@"
  # Every release's migrations ran exactly once, in order.
  local applied
  applied=$(psql "${pg_url%/*}/$db" -qXtAc "select count(*) from supabase_migrations.schema_migrations")
  expect_eq "$applied" "$(ls "$T/app/migrations" | wc -l)" "migrations recorded"
}
