#!/usr/bin/env bash
# Scenario: a connection flood (issue 11). Under `ulimit -n 256`, 2,000 idle
# TCP connects from one client that sends nothing must not abort the agent:
# the proxy keeps serving other clients, the control API answers, and no app
# process is restarted (same pids, no restarts). Then the same flood against
# the standalone `meshdeploy proxy run`: it serves and its admin socket
# answers. Also: the control API refuses a weight of 100.5 and a start of a
# running release with another command (issue 11).
AGENT_E2E_LIB_ONLY=1 . "$(dirname "${BASH_SOURCE[0]}")/agent_lifecycle.sh"
E2E_NAME=agent_flood

e2e_init
PORT=$(free_port)
ROOT="$T/root"
SOCK="$ROOT/agent.sock"
FLOOD=2000
LIMIT=256

# Opens N connections to PORT, sends nothing, writes how many connected to
# FILE and holds them until killed.
cat >"$T/flood.py" <<'PY'
import resource, socket, sys, time
port, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks, ok, failed = [], 0, 0
for _ in range(n):
    s = socket.socket()
    s.settimeout(2)
    if s.connect_ex(("127.0.0.1", port)) == 0:
        ok += 1
        socks.append(s)
    else:
        failed += 1
        s.close()
with open(out + ".tmp", "w") as f:
    f.write(f"{ok} {failed}\n")
import os
os.rename(out + ".tmp", out)
while True:
    time.sleep(60)
PY

# Floods PORT with FLOOD idle connects in NAME's background process; FLOOD_PID.
flood() {
  local name=$1 port=$2
  spawn "flood-$name" python3 "$T/flood.py" "$port" "$FLOOD" "$T/flood-$name.done"
  FLOOD_PID=$LAST_PID
  wait_for 60 "the $name flood to connect" test -f "$T/flood-$name.done"
  log "flood $name: connected/failed $(cat "$T/flood-$name.done")"
}

# The descriptors PID holds, of its limit.
log_fds() { log "$1 holds $(ls "/proc/$2/fd" | wc -l) descriptors (limit $LIMIT)"; }

# N requests through the proxy at PORT, each on a new connection, all
# answered by VERSION.
expect_served() {
  local port=$1 want=$2 n=$3 i got
  for i in $(seq "$n"); do
    got=$(curl -s --max-time 5 "http://127.0.0.1:$port/" | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
    expect_eq "$got" "$want" "request $i of $n through the proxy during the flood"
  done
}

# For SECS seconds, over and over: PID alive, the proxy at PORT serves
# VERSION, and CHECK (a command) succeeds. WHY a hold and not one probe:
# the health rounds of the supervisor (1 s) and the proxy (2 s) must run
# while the flood holds its connections, and everything must keep working
# throughout.
hold() {
  local secs=$1 pid=$2 port=$3 want=$4 check=$5 rounds=0
  local until=$((SECONDS + secs))
  while [ "$SECONDS" -lt "$until" ]; do
    kill -0 "$pid" 2>/dev/null || die "pid $pid died during the flood"
    expect_served "$port" "$want" 1
    $check || die "$check failed during the flood"
    rounds=$((rounds + 1))
  done
  log "held ${secs} s under the flood: $rounds rounds of checks passed"
}

log "agent under ulimit -n $LIMIT"
spawn agent-1 bash -c "ulimit -n $LIMIT && exec \"\$0\" \"\$@\"" \
  "$MESHDEPLOY_BIN" agent run --root "$ROOT" --listen "127.0.0.1:$PORT"
AGENT_PID=$LAST_PID
E2E_LOGS="$T/agent-1.log"
wait_for 20 "the agent's control API" agent_answers
grep -q "^Max open files *$LIMIT *$LIMIT" "/proc/$AGENT_PID/limits" || die "agent limits: $(grep 'open files' "/proc/$AGENT_PID/limits")"

deploy_release v1 all 2 0
api_ok POST /v1/agent/route '{"weights":{"v1":100}}' >/dev/null
expect_served "$PORT" v1 3
pids_before="$(pid_of v1 web.1) $(pid_of v1 web.2)"

log "control API: a weight of 100.5 and a start with another command are refused"
out=$(api POST /v1/agent/route '{"weights":{"v1":100.5}}')
expect_eq "$(jq -r .error.code <<<"$out")" invalid_argument "route with a weight of 100.5"
jq -r .error.message <<<"$out" | grep -q "whole numbers" || die "route 100.5: $(jq -c .error <<<"$out")"
out=$(api POST /v1/agent/canary '{"version":"v1","weight":4294967396}')
expect_eq "$(jq -r .error.code <<<"$out")" invalid_argument "canary with a weight past int"
out=$(api POST /v1/agent/start "$(start_json v1 all 2 0 | jq -c '.services[0].command = "exec node other.js"')")
expect_eq "$(jq -r .error.code <<<"$out")" conflict "start of a running release with another command"
jq -r .error.message <<<"$out" | grep -q "exec node other.js" || die "start: $(jq -c .error <<<"$out")"
api_ok POST /v1/agent/start "$(start_json v1 all 2 0)" >/dev/null  # the same command: a no-op
expect_eq "$(pid_of v1 web.1) $(pid_of v1 web.2)" "$pids_before" "pids after the refused starts"

log "flood: $FLOOD idle connects"
flood agent "$PORT"
log_fds agent "$AGENT_PID"
kill -0 "$AGENT_PID" 2>/dev/null || die "the agent died during the flood"
expect_served "$PORT" v1 20
agent_answers || die "the control API does not answer during the flood"
hold 4 "$AGENT_PID" "$PORT" v1 agent_answers
expect_eq "$(pid_of v1 web.1) $(pid_of v1 web.2)" "$pids_before" "pids of v1's web processes"
expect_eq "$(proc_field v1 web.1 restarts) $(proc_field v1 web.2 restarts)" "0 0" "restarts"
expect_eq "$(proc_field v1 web.1 state) $(proc_field v1 web.2 state)" "running running" "states"
! grep -q 'terminate called' "$T/agent-1.log" || die "the agent logged an uncaught exception"
kill "$FLOOD_PID"
expect_served "$PORT" v1 3
web_port=$(api GET /v1/agent/status | jq -r '.releases[] | select(.version == "v1") | .processes[] | select(.name == "web.1") | .port')

log "standalone proxy under ulimit -n $LIMIT"
PPORT=$(free_port)
spawn proxy bash -c "ulimit -n $LIMIT && exec \"\$0\" \"\$@\"" \
  "$MESHDEPLOY_BIN" proxy run --listen "127.0.0.1:$PPORT" --admin-socket "$T/proxy.sock" \
  --route "web=127.0.0.1:$web_port" --threads 2 --max-connections 100000
# WHY a cap far above the limit: the flood then runs the process out of
# descriptors (EMFILE), the path that aborted it.
PROXY_PID=$LAST_PID
E2E_LOGS="$E2E_LOGS $T/proxy.log"
wait_for 10 "the proxy to serve" curl -sf "http://127.0.0.1:$PPORT/"
flood proxy "$PPORT"
log_fds proxy "$PROXY_PID"
proxy_answers() { md proxy status --admin-socket "$T/proxy.sock" >/dev/null; }
hold 3 "$PROXY_PID" "$PPORT" v1 proxy_answers
expect_served "$PPORT" v1 20
! grep -q 'terminate called' "$T/proxy.log" || die "the proxy logged an uncaught exception"
kill "$FLOOD_PID"

expect_stop_all_leaves_nothing
log "ok"
