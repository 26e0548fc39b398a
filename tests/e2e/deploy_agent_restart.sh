#!/usr/bin/env bash
# kill -9 of the agent in the middle of a canary deploy: the release
# processes keep running, a restarted agent re-adopts them (same pids) and
# restores its routes, the controller rides out the gap (its agent calls are
# retried) and the deploy finishes with v2 alone — no orphan of v1 or v2.
. "$(dirname "$0")/lib.sh"
e2e_init
PROXY_PORT=$(free_port)
STRATEGY=canary CANARY_STEPS='[{weight: 50, pause: 3s}, {weight: 100}]' MIN_REQUESTS=20 write_config
build_app v1
build_app v2
start_agent
mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }

# Light traffic for the analysis (the proxy lives in the agent: requests
# fail while it is down, which this scenario does not count).
wrk_start light "http://127.0.0.1:$PROXY_PORT/" 2
mdt deploy --version v2 >"$T/deploy-v2.out" 2>&1 &
deploy=$!
wait_for 30 "the canary at 50%" bash -c "grep -q '50% of traffic on v2' '$T/deploy-v2.out'"
before_v1=$(release_pids v1 | sort | tr '\n' ' ')
before_v2=$(release_pids v2 | sort | tr '\n' ' ')
[ -n "$before_v2" ] || die "no v2 process before the agent kill"

log "kill -9 the agent (pid $AGENT_PID)"
kill -KILL "$AGENT_PID"
sleep 0.5
expect_eq "$(release_pids v1 | sort | tr '\n' ' ')" "$before_v1" "v1 processes while the agent is down"
expect_eq "$(release_pids v2 | sort | tr '\n' ' ')" "$before_v2" "v2 processes while the agent is down"

log "restart the agent"
start_agent
grep -qi "adopt" "$T/agent.log" || log "note: the agent log does not mention adoption"
expect_eq "$(release_pids v2 | sort | tr '\n' ' ')" "$before_v2" "v2 processes re-adopted (same pids)"
wait_for 10 "routes restored" bash -c "curl -fs 'http://127.0.0.1:$PROXY_PORT/healthz' >/dev/null"

rc=0
wait "$deploy" || rc=$?
wrk_stop light
[ "$rc" -eq 0 ] || { cat "$T/deploy-v2.out"; die "the deploy did not survive the agent restart (exit $rc)"; }
expect_only v2
expect_journal_complete "$(last_deployment)"
