#!/usr/bin/env bash
# Scenario: an idle agent sleeps until something is due. With one deployed
# environment (web x2 + worker, health probes every 1 s) and no traffic, its
# threads wake for the probes and little else: the bound below is derived
# from the configured intervals. It used to poll (supervisor and keep-warm
# loops every 20 ms, health 50 ms, proxy workers 100 ms): ~200 wakeups/s
# (bench/README.md "Agent idle wakeups").
# Counted as voluntary context switches of all the agent's threads
# (/proc/PID/task/*/status): a thread that sleeps and wakes switches once;
# a loaded machine adds involuntary switches (preemption), not voluntary
# ones. WHY a fixed window and not a wait_for: this measures a rate, there is
# no event to wait for.
. "$(dirname "$0")/lib.sh"
e2e_init
PROXY_PORT=$(free_port)
HEALTH_INTERVAL=1s WORKERS=1 write_config
build_app v1
start_agent
mdt deploy --version v1 >"$T/deploy.out" 2>&1 || { cat "$T/deploy.out"; die "deploy v1 failed"; }
expect_only v1

# What is due per second: each of the 2 web processes is probed once per
# interval by the supervisor and once by the proxy's health checker.
probes_per_s=4
# WHY these costs: a probe wakes the prober, the shared HTTP client loop
# (connect, send, answer, close) and the caller: measured ~3.5 wakeups; 6
# leaves room. The fixed part: the supervisor loop's 1 s round, the
# proxy's and log writers' housekeeping; measured ~1/s, 10 leaves room.
per_probe=6 fixed=10
bound=$(( probes_per_s * per_probe + fixed ))
window=10
sleep 2  # start-up work after the deploy (first probes, the state file) ends
a=$(thread_switches "$AGENT_PID" voluntary)
sleep "$window"
b=$(thread_switches "$AGENT_PID" voluntary)
rate=$(( (b - a) / window ))
log "idle agent: $rate wakeups/s over ${window}s ($(ls /proc/"$AGENT_PID"/task | wc -l) threads; bound $bound)"
[ "$rate" -le "$bound" ] || die "an idle agent woke $rate times a second (bound $bound: $probes_per_s probes/s; polling loops?)"
log "ok"
