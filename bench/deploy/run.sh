#!/usr/bin/env bash
# meshdeploy's own cost per deploy, on the MeshHook example: web only, two
# processes, blue-green, no hooks, migrations, watch or warm window (the
# scenario tests' config, tests/e2e/lib.sh write_config with WORKERS=0).
#   1. the app's start-to-ready time: its two `node build` web processes
#      started at once by a small Python harness, with the environment the
#      agent gives them, each /healthz polled every 5 ms until both answer
#      200 — the floor any deploy tool pays;
#   2. `meshdeploy deploy --json` wall time for a new version (CLI start to
#      exit), each JSON line time-stamped on arrival: step durations, time
#      before the first event, between the steps and after the last one;
#   3. overhead = deploy wall time - the app's start-to-ready, per round
#      (each round measures the app alone right before its deploy; target
#      < 300 ms);
#   4. warm rollback: a deploy keeps the old release warm (rollback_window),
#      `meshdeploy rollback` makes it abort and move traffic back. Reported:
#      the proxy route switch itself (switch_ms, target < 100 ms), the
#      rollback command's wall time, and the time from the command's start
#      until the journal records traffic back and until a client polling /
#      is answered by the old version.
# Usage: bench/deploy/run.sh [BIN] [ROUNDS=5]. Prints medians and per-round
# figures; BENCH_OUT=FILE also writes them there. Figures taken while other
# work runs on the machine are noisy: the load average is printed with them.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
export MESHDEPLOY_BIN=${1:-$src/build/release/src/cli/meshdeploy}
rounds=${2:-5}
. "$src/tests/e2e/lib.sh"
e2e_init
command -v jq >/dev/null || die "jq is not installed (scripts/install-deps.sh)"
PROXY_PORT=$(free_port)
WORKERS=0 write_config
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
row() { tr '\n' ' ' <"$1"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Each round measures the app alone, then a deploy, back to back, so both
# see the same load.
start_agent
build_app v1
mdt deploy --version v1 >/dev/null
# The floor runs the release's processes with exactly the environment the
# agent gives them (PATH, PORT, the config's env...), read from a live one.
# WHY: an inherited NODE_EXTRA_CA_CERTS, say, costs node 300 ms at start.
web=
for pid in $(release_pids v1); do
  [ "$(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)" = "node build " ] && { web=$pid; break; }
done
[ -n "$web" ] || die "no node process of v1 found"
tr '\0' '\n' </proc/"$web"/environ | grep -v '^PORT=' >"$T/release.env"
mkdir -p "$T/alone" && tar -xzf "$T/app/dist/meshhook-v1.tar.gz" -C "$T/alone"
# Starts the app's two web processes and prints the milliseconds until both
# have said "listening on" (the app logs it, time-stamped, from its listen
# callback; /healthz answers from then on). WHY not poll /healthz: a Python
# poller competes with node for the CPU and its own slowness would count as
# the app's; the log line costs nothing and is checked against /healthz.
cat >"$T/ready.py" <<'PY'
import datetime, http.client, socket, subprocess, sys, time
root, envfile = sys.argv[1], sys.argv[2]
env = dict(l.split("=", 1) for l in open(envfile).read().splitlines() if "=" in l)
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
ports = [free_port(), free_port()]
t0 = time.time()
# WHY a session each: the agent starts every app process in a session of its
# own, and with the kernel's autogroup scheduling a session is what gets a
# fair share of a busy CPU; the floor must be scheduled the same way.
procs = [subprocess.Popen(["node", "build"], cwd=root, env=dict(env, PORT=str(p)), start_new_session=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for p in ports]
ready = []
for p in procs:
    for line in p.stdout:
        if " listening on " in line:
            at = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
            ready.append(at.timestamp())
            break
    else:
        sys.exit("the app exited before listening")
for port in ports:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/healthz")
    if c.getresponse().status != 200: sys.exit("listening but not healthy")
print(round((max(ready) - t0) * 1000))
for p in procs: p.terminate()
for p in procs: p.wait()
PY
# Prefixes each line with the time it arrived ($EPOCHREALTIME, no fork).
stamp() { local l; while IFS= read -r l; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$l"; done; }
us_to_ms() { echo $(( ($1 + 500) / 1000 )); }
# CPU milliseconds (user + system) used so far by this shell's waited-for
# children (FILE: the output of `times`, which must run in this shell, not
# in a $(...) subshell), and by the agent process itself (/proc ticks).
children_cpu_ms() { tail -n1 "$1" | awk '{t = 0; for (i = 1; i <= 2; i++) {split($i, a, /[ms]/); t += a[1] * 60000 + a[2] * 1000} printf "%d\n", t}'; }
agent_cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d\n", ($14 + $15) * 1000 / hz}' "/proc/$AGENT_PID/stat"; }
: >"$T/ready.ms"; : >"$T/deploy.ms"; : >"$T/start.ms"; : >"$T/between.ms"; : >"$T/exit.ms"
: >"$T/cli-cpu.ms"; : >"$T/agent-cpu.ms"; : >"$T/inside.ms"
log "blue-green deploys, $rounds rounds (app alone, then a deploy)"
for r in $(seq "$rounds"); do
  v=b$r
  build_app "$v"
  python3 "$T/ready.py" "$T/alone" "$T/release.env" >>"$T/ready.ms" || die "the app alone did not start"
  times >"$T/times0"; a0=$(agent_cpu_ms)
  t0=${EPOCHREALTIME/./}
  { mdt deploy --version "$v" --json 2>"$T/deploy-$v.err" || echo "EXIT $?"; } | stamp >"$T/deploy-$v.json"
  t1=${EPOCHREALTIME/./}
  times >"$T/times1"
  echo $(( $(children_cpu_ms "$T/times1") - $(children_cpu_ms "$T/times0") )) >>"$T/cli-cpu.ms"; echo $(( $(agent_cpu_ms) - a0 )) >>"$T/agent-cpu.ms"
  ! grep -q ' EXIT ' "$T/deploy-$v.json" || { cat "$T/deploy-$v.json" "$T/deploy-$v.err"; die "deploy $v failed"; }
  expect_eq "$(proxy_version)" "$v" "version served after round $r"
  us_to_ms $((t1 - t0)) >>"$T/deploy.ms"
  # start: CLI start to its first event (config, vault, store, lock);
  # exit: its last event to its exit; between: the run's time outside every
  # step (journal records, notification rows, progress output).
  first=$(head -n1 "$T/deploy-$v.json" | cut -d' ' -f1)
  last=$(grep '"event":"end"' "$T/deploy-$v.json" | cut -d' ' -f1)
  us_to_ms $((first - t0)) >>"$T/start.ms"
  us_to_ms $((t1 - last)) >>"$T/exit.ms"
  # The app's start-to-ready inside the deploy, as the agent logged it: first
  # "started pid" to last "starting -> running (ready)" of v's web processes
  # (includes up to one health-check interval, 100 ms here).
  s_at=$(grep -m1 " supervisor: $v/web\.[0-9]*: started pid" "$T/agent.log" | cut -d' ' -f1)
  r_at=$(grep " supervisor: $v/web\.[0-9]*: starting -> running" "$T/agent.log" | tail -n1 | cut -d' ' -f1)
  [ -n "$s_at" ] && [ -n "$r_at" ] || die "the agent log has no start/ready lines for $v"
  echo $(( $(date -d "$r_at" +%s%3N) - $(date -d "$s_at" +%s%3N) )) >>"$T/inside.ms"
  cut -d' ' -f2- "$T/deploy-$v.json" >"$T/deploy-$v.jsonl"
  jq -r 'select(.event == "step_done" and .outcome != "skipped") | "\(.step) \(.duration_ms)"' \
    "$T/deploy-$v.jsonl" >"$T/steps-$v"
  end_ms=$(jq -r 'select(.event == "end") | .elapsed_ms' "$T/deploy-$v.jsonl")
  echo $(( end_ms - $(awk '{s += $2} END {print s + 0}' "$T/steps-$v") )) >>"$T/between.ms"
done

# 4. warm rollback.
WORKERS=0 WINDOW=60s write_config
: >"$T/switch.ms"; : >"$T/rollback.ms"; : >"$T/seen.ms"; : >"$T/moved.ms"
prev=b$rounds
log "warm rollbacks, $rounds rounds"
for r in $(seq "$rounds"); do
  v=w$r
  build_app "$v"
  mdt deploy --version "$v" >"$T/warm-$v.out" 2>&1 &
  dpid=$!
  wait_for 60 "deploy $v to keep $prev warm" grep -q 'stays warm' "$T/warm-$v.out"
  # A client polling / notes when the old version answers again; it
  # touches poller.ready once it runs (Python starts slowly on a busy box).
  rm -f "$T/poller.ready"
  python3 - "$PROXY_PORT" "$prev" "$T/poller.ready" >"$T/seen-at" <<'PY' &
import http.client, json, sys, time
port, want, flag = int(sys.argv[1]), sys.argv[2], sys.argv[3]
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/"); body = c.getresponse().read(); c.close()
        if json.loads(body).get("version") == want: break
        open(flag, "w").close()
    except (OSError, ValueError):
        pass
    time.sleep(0.002)
print(time.time_ns() // 1000000)
PY
  poller=$!
  track "$poller"
  wait_for 30 "the poller" test -f "$T/poller.ready"
  t0=$(now_ms)
  mdt rollback --json >"$T/rollback-$v.json" 2>"$T/rollback-$v.err" ||
    { cat "$T/rollback-$v.json" "$T/rollback-$v.err"; die "rollback in round $r failed"; }
  echo $(( $(now_ms) - t0 )) >>"$T/rollback.ms"
  wait "$poller"
  rc=0; wait "$dpid" || rc=$?
  expect_eq "$rc" 4 "exit code of deploy $v, rolled back by hand"
  jq -r 'select(.switch_ms != null) | .switch_ms' "$T/rollback-$v.json" | tail -n1 >>"$T/switch.ms"
  echo $(( $(cat "$T/seen-at") - t0 )) >>"$T/seen.ms"
  # When the aborted deploy's journal says traffic was back (rollback_traffic done).
  id=$(sed -n '1s/.*(\(d-[^)]*\)).*/\1/p' "$T/warm-$v.out")
  at=$(mdt history --id "$id" --json |
    jq -r '.journal[] | select(.step == "rollback_traffic" and .phase == "outcome") | .at')
  [ -n "$at" ] || die "no rollback_traffic outcome in the journal of $id"
  echo $(( $(date -d "$at" +%s%3N) - t0 )) >>"$T/moved.ms"
  expect_eq "$(proxy_version)" "$prev" "version served after rollback round $r"
done
[ "$(wc -l <"$T/switch.ms")" -eq "$rounds" ] || die "a rollback reported no switch_ms: $(cat "$T"/rollback-*.json)"

ready=$(median <"$T/ready.ms"); deploy=$(median <"$T/deploy.ms")
paste "$T/deploy.ms" "$T/ready.ms" | awk '{print $1 - $2}' >"$T/over.ms"
{
  echo "meshdeploy $("$MESHDEPLOY_BIN" --version | cut -d' ' -f2), $rounds rounds, $(nproc) cores"
  echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "app start-to-ready alone, 2 processes (ms): $(row "$T/ready.ms") median $ready"
  echo "meshdeploy deploy wall time (ms):           $(row "$T/deploy.ms") median $deploy"
  echo "overhead = deploy - app alone (ms):         $(row "$T/over.ms") median $(median <"$T/over.ms") (target < 300)"
  paste "$T/deploy.ms" "$T/inside.ms" | awk '{print $1 - $2}' >"$T/over-inside.ms"
  echo "app start-to-ready in the deploy, agent log (ms): $(row "$T/inside.ms") median $(median <"$T/inside.ms")"
  echo "overhead = deploy - app in the deploy (ms): $(row "$T/over-inside.ms") median $(median <"$T/over-inside.ms")"
  echo "CPU per deploy, controller CLI (ms):       $(row "$T/cli-cpu.ms") median $(median <"$T/cli-cpu.ms")"
  echo "CPU per deploy, agent process (ms):         $(row "$T/agent-cpu.ms") median $(median <"$T/agent-cpu.ms")"
  echo "warm rollback, proxy switch (ms):           $(row "$T/switch.ms") median $(median <"$T/switch.ms") (target < 100)"
  echo "warm rollback, command wall time (ms):      $(row "$T/rollback.ms") median $(median <"$T/rollback.ms")"
  echo "warm rollback, command -> traffic back, journal (ms): $(row "$T/moved.ms") median $(median <"$T/moved.ms")"
  echo "warm rollback, command -> old version seen by a client (ms): $(row "$T/seen.ms") median $(median <"$T/seen.ms")"
  echo "where a deploy's time goes, median ms (per round):"
  line() { printf '  %-24s %5s   (%s)\n' "$1" "$(median <"$2")" "$(row "$2")"; }
  line "CLI start -> 1st event" "$T/start.ms"
  for step in $(awk '{print $1}' "$T/steps-b1"); do
    for r in $(seq "$rounds"); do awk -v s="$step" '$1 == s {print $2}' "$T/steps-b$r"; done >"$T/step.ms"
    line "step $step" "$T/step.ms"
  done
  line "between the steps" "$T/between.ms"
  line "last event -> exit" "$T/exit.ms"
} | tee "${BENCH_OUT:-/dev/null}"
