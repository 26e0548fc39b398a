#!/usr/bin/env bash
# Scenario: kill -9 of the agent, twice — once with a canary split in place,
# once in the middle of stopping a release. The release processes keep
# serving while no agent runs (they are in sessions of their own, their logs
# still captured by their log writers); the restarted agent re-adopts them
# (same pids), restores the live route and the canary split, kills an orphan
# that carries the root's mark but is in no state, finishes the interrupted
# stop, restarts an adopted process that crashes, and `agent stop --all`
# leaves no process behind.
AGENT_E2E_LIB_ONLY=1 . "$(dirname "${BASH_SOURCE[0]}")/agent_lifecycle.sh"
E2E_NAME=agent_restart

e2e_init
PORT=$(free_port)
ROOT="$T/root"
SOCK="$ROOT/agent.sock"

agent_start 1
log "v1 live (2 web + worker), v2 canary at 25 %"
deploy_release v1 all 2 1
api_ok POST /v1/agent/route '{"weights":{"v1":100}}' >/dev/null
deploy_release v2 web 1 0
api_ok POST /v1/agent/route '{"weights":{"v1":75,"v2":25}}' >/dev/null
expect_eq "$(versions_seen 60)" "v1 v2 " "versions before the kill"
declare -A before
for p in v1/web.1 v1/web.2 v1/worker.1 v2/web.1; do before[$p]=$(pid_of "${p%/*}" "${p#*/}"); done
port1=$(proc_field v1 web.1 port)

log "kill -9 of the agent: the processes keep serving"
kill -9 "$AGENT_PID"
wait_for 5 "the agent to die" sh -c "! kill -0 $AGENT_PID 2>/dev/null"
for p in "${!before[@]}"; do kill -0 "${before[$p]}" 2>/dev/null || die "$p (pid ${before[$p]}) died with the agent"; done
fails=0
for i in $(seq 20); do
  [ "$(served_version "http://127.0.0.1:$port1/")" = v1 ] || fails=$((fails + 1))
done
expect_eq "$fails" 0 "requests straight to v1/web.1 while no agent runs"
lines_before=$(wc -l <"$ROOT/logs/v1/worker.1.log")
wait_for 5 "the worker's log to grow without an agent" \
  sh -c "[ \$(wc -l <'$ROOT/logs/v1/worker.1.log') -gt $lines_before ]"

log "an orphan with the root's mark, unknown to the state"
setsid env MESHDEPLOY_AGENT_ROOT="$ROOT" sleep 300 >/dev/null 2>&1 &
orphan=$!
wait_for 5 "the orphan to run" kill -0 "$orphan"

log "restart: re-adoption, routes and canary restored"
agent_start 2
for p in "${!before[@]}"; do
  expect_eq "$(pid_of "${p%/*}" "${p#*/}")" "${before[$p]}" "pid of $p after the restart"
  expect_eq "$(proc_field "${p%/*}" "${p#*/}" adopted)" true "$p adopted"
done
expect_eq "$(api GET /v1/agent/status | jq -c .weights)" '{"v1":75,"v2":25}' "weights after the restart"
expect_eq "$(versions_seen 60)" "v1 v2 " "versions after the restart"
wait_for 10 "the orphan to be stopped" sh -c "! kill -0 $orphan 2>/dev/null"
wrk_start after "http://127.0.0.1:$PORT/" 4
sleep 1
wrk_expect_clean after

log "an adopted process that crashes is restarted"
kill -9 "${before[v1/web.2]}"
web2_back() { [ "$(proc_field v1 web.2 state) $(proc_field v1 web.2 restarts)" = "running 1" ]; }
wait_for 15 "v1/web.2 restarted" web2_back
expect_eq "$(proc_field v1 web.2 last_exit)" "exited (status unknown: re-adopted process)" "last exit"

log "kill -9 in the middle of stopping a release"
deploy_release v3 workers 0 1 '{"IGNORE_TERM":"1"}'
api_ok POST /v1/agent/stop '{"version":"v3","wait":false}' >/dev/null
w3=$(pid_of v3 worker.1)
expect_eq "$(proc_field v3 worker.1 state)" stopping "v3 worker while it ignores SIGTERM"
kill -9 "$AGENT_PID"
wait_for 5 "the agent to die" sh -c "! kill -0 $AGENT_PID 2>/dev/null"
kill -0 "$w3" || die "the v3 worker died with the agent"
agent_start 3
# stop_grace_ms is 3000: the restarted agent finishes the stop with SIGKILL.
wait_for 15 "the interrupted stop to finish" sh -c "! kill -0 $w3 2>/dev/null"
wait_for 5 "v3 worker stopped" sh -c "[ \"\$(curl -s --unix-socket $SOCK http://agent/v1/agent/status | jq -r '[.releases[] | select(.version==\"v3\") | .processes[] | .state] | join(\",\")')\" = stopped ]"
expect_eq "$(versions_seen 40)" "v1 v2 " "versions after the second restart"

expect_stop_all_leaves_nothing
log "ok"
