#!/usr/bin/env bash
# Idle wakeups of the host agent, two binaries side by side: an agent running
# one deployed environment (the meshhook example: web x2 + worker, health
# probes every HEALTH_INTERVAL) and serving no traffic. Counts the context
# switches (voluntary + nonvoluntary, and voluntary alone) of all the
# agent's threads from /proc/PID/task/*/status over MEASURE seconds after a
# SETTLE, for each binary in turn, ROUNDS times (a fresh agent and deploy
# each time); prints each measurement, the medians and their ratio, and the
# per-thread counts of the last round of each binary.
# Usage: bench/agent/idle_wakeups.sh BASE_BINARY [BINARY]
#        (ROUNDS=3 MEASURE=30 SETTLE=5 HEALTH_INTERVAL=1s; BINARY defaults
#        to build/release/src/cli/meshdeploy)
# Method and figures: bench/README.md "Agent idle wakeups".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base_bin=$(realpath "${1:?usage: idle_wakeups.sh BASE_BINARY [BINARY]}")
new_bin=$(realpath "${2:-$here/../../build/release/src/cli/meshdeploy}")
MESHDEPLOY_BIN=$new_bin
. "$here/../../tests/e2e/lib.sh"
e2e_init
rounds=${ROUNDS:-3} window=${MEASURE:-30} settle=${SETTLE:-5}
export HEALTH_INTERVAL=${HEALTH_INTERVAL:-1s}
top=$T

# Per thread: "TID switches" of PID (the agent's threads share one name).
per_thread() {
  for s in /proc/"$1"/task/*/status; do
    awk '/^Pid:/{n=$2} /ctxt_switches/{c+=$2} END{print n, c}' "$s" 2>/dev/null || true
  done | sort
}

# One measurement: deploy v1 with BIN under a fresh root, count, stop.
# Prints "total voluntary". Usage: measure LABEL BIN
measure() {
  local label=$1 a av b bv
  MESHDEPLOY_BIN=$2 T=$top/$label-$round
  mkdir -p "$T"
  PROXY_PORT=$(free_port)
  WORKERS=1 write_config
  mkdir -p "$T/app/dist" && cp "$top"/dist/* "$T/app/dist/"
  start_agent
  mdt deploy --version v1 >"$T/deploy.out" 2>&1 || { cat "$T/deploy.out" >&2; die "$label: deploy failed"; }
  sleep "$settle"  # WHY a fixed pause: start-up work (first probes, persist) ends; no event marks it
  per_thread "$AGENT_PID" >"$top/$label.before"
  a=$(thread_switches "$AGENT_PID") av=$(thread_switches "$AGENT_PID" voluntary)
  sleep "$window"
  b=$(thread_switches "$AGENT_PID") bv=$(thread_switches "$AGENT_PID" voluntary)
  per_thread "$AGENT_PID" >"$top/$label.after"
  kill -TERM -- "-$AGENT_PID" 2>/dev/null || true
  wait_for 30 "the $label agent to stop" bash -c "! kill -0 $AGENT_PID"
  local left; left=$(e2e_pids_under "$T")
  [ -z "$left" ] || kill -KILL $left 2>/dev/null || true
  python3 -c "print(round(($b - $a) / $window, 1), round(($bv - $av) / $window, 1))"
}

T=$top build_app v1 && mv "$top/app/dist" "$top/dist"
declare -A all vol
for round in $(seq "$rounds"); do
  for label in base new; do
    bin=$base_bin; [ "$label" = new ] && bin=$new_bin
    read -r t v < <(measure "$label" "$bin")
    all[$label]+="$t " vol[$label]+="$v "
    echo "round $round $label: $t wakeups/s ($v voluntary)"
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
mb=$(median <<<"${all[base]}") mn=$(median <<<"${all[new]}")
vb=$(median <<<"${vol[base]}") vn=$(median <<<"${vol[new]}")
echo "health probes every $HEALTH_INTERVAL, window ${window}s, $rounds rounds"
echo "median base ($base_bin): $mb wakeups/s ($vb voluntary)"
echo "median new  ($new_bin): $mn wakeups/s ($vn voluntary)"
python3 -c "print('ratio new/base:', round($mn / $mb, 3) if $mb else 'n/a')"
for label in base new; do
  echo "last round, $label, per thread (tid: switches over ${window}s):"
  join -a2 "$top/$label.before" "$top/$label.after" |
    awk '{d = NF == 3 ? $3 - $2 : $2; if (d > 0) printf "  %-16s %d\n", $1, d}' | sort -k2 -n -r
done
