#!/usr/bin/env bash
# Deploying to three hosts against deploying to one, over ssh (Debian's sshd
# on loopback addresses, an agent per host, as tests/e2e/lib_ssh.sh makes
# them): four hosts, host 1 alone in one environment, hosts 2-4 in another,
# the same app (the MeshHook example, web only, blue-green, no watch or warm
# window), deployed alternately, round by round, so both see the same load.
# Reported per round and as medians:
#   - deploy wall time of `meshdeploy deploy --json` (CLI start to exit), one
#     host and three hosts, and their ratio (target <= 1.3);
#   - the same ratio without the app's own start (the `ready` step: the new
#     release's processes booting). WHY: here the "hosts" share one machine's
#     cores, so three hosts boot three times the node processes on the same
#     CPUs, which separate machines would not;
#   - the switch spread across the three hosts: from the first host's route
#     call returning to the last one's (target < 50 ms), as the deploy's
#     result reports it (spread_ms).
# Usage: bench/hosts/run.sh [BIN] [ROUNDS=5]; BENCH_OUT=FILE also writes the
# figures there. Needs root (sshd), node, python3, jq.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
export MESHDEPLOY_BIN=${1:-$src/build/release/src/cli/meshdeploy}
rounds=${2:-5}
. "$src/tests/e2e/lib.sh"
. "$src/tests/e2e/lib_ssh.sh"
e2e_init
command -v jq >/dev/null || die "jq is not installed (scripts/install-deps.sh)"
start_sshd 4
PROXY_PORT=$(free_port)
export MESHDEPLOY_KEY_TEST
MESHDEPLOY_KEY_TEST=$(md secrets keygen --env test)
WORKERS=0 ENV_YAML=$(ssh_env_yaml SSH_KEY 1 1) write_config
mv "$T/app/meshdeploy.yml" "$T/app/one.yml"
WORKERS=0 ENV_YAML=$(ssh_env_yaml SSH_KEY 2 4) write_config
mv "$T/app/meshdeploy.yml" "$T/app/three.yml"
for c in one three; do md secrets set SSH_KEY -c "$T/app/$c.yml" --env test <"$SSH_KEY" >/dev/null; done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Deploys VERSION with config C; prints "wall_ms spread_ms ready_ms".
deploy_to() {
  local c=$1 v=$2 t0 t1 out
  t0=$(now_ms)
  out=$("$MESHDEPLOY_BIN" deploy --version "$v" -c "$T/app/$c.yml" --env test --json 2>"$T/deploy-$c-$v.err") ||
    { echo "$out" | tail -5 >&2; cat "$T/deploy-$c-$v.err" >&2; die "deploy $v to $c failed"; }
  t1=$(now_ms)
  echo "$out" >"$T/deploy-$c-$v.json"
  echo "$((t1 - t0)) $(echo "$out" | jq -r 'select(.event == "result") | "\(.spread_ms // "-") \([.steps[] | select(.step == "ready") | .duration_ms] | add)"')"
}

build_app v0
deploy_to one v0 >/dev/null
deploy_to three v0 >/dev/null
: >"$T/rows"
for r in $(seq 1 "$rounds"); do
  build_app "v$r"
  read -r one _ ready1 < <(deploy_to one "v$r")
  read -r three spread ready3 < <(deploy_to three "v$r")
  ratio=$(awk -v a="$three" -v b="$one" 'BEGIN {printf "%.2f", a / b}')
  own=$(awk -v a="$three" -v b="$one" -v x="$ready3" -v y="$ready1" 'BEGIN {printf "%.2f", (a - x) / (b - y)}')
  echo "$one $three $ratio $spread $ready1 $ready3 $own" >>"$T/rows"
  log "round $r: one host ${one} ms, three hosts ${three} ms (x${ratio}; app start ${ready1} / ${ready3} ms; without it x${own}), spread ${spread} ms"
done
{
  echo "bench/hosts: $rounds rounds, $(date -u +%Y-%m-%dT%H:%MZ), load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "| round | one host (ms) | three hosts (ms) | ratio | app start, one / three (ms) | ratio without the app start | spread (ms) |"
  echo "|---|---|---|---|---|---|---|"
  awk '{printf "| %d | %s | %s | %s | %s / %s | %s | %s |\n", NR, $1, $2, $3, $5, $6, $7, $4}' "$T/rows"
  col() { cut -d' ' -f"$1" "$T/rows" | median; }
  printf '| **median** | %s | %s | %s | %s / %s | %s | %s |\n' "$(col 1)" "$(col 2)" "$(col 3)" "$(col 5)" "$(col 6)" "$(col 7)" "$(col 4)"
} | tee "${BENCH_OUT:-/dev/null}"
