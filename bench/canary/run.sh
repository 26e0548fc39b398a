#!/usr/bin/env bash
# How often the canary analysis is wrong, on the real binary, a real agent
# and wrk: per app, ROUNDS rounds of three canaries each, in this order
#   good  an identical build (the same artifact bytes under a new version):
#         must pass (a rollback is a false positive);
#   slow  the same app with every response twice as slow: must roll back;
#   5xx   the same app answering 5 % of its requests 500: must roll back
# (a pass of slow or 5xx is a false negative). The live release is always a
# good build that passed the round before (warm), as in production.
# Apps (both examples/meshhook, a handler that waits MESHHOOK_DELAY_MS):
#   example  5 ms per request (slow: 10 ms);
#   cold     the same, but the first COLD_REQUESTS app requests of each fresh
#            process wait 10x as long (50 ms): a cold start (caches, JIT).
# Time to detect = the first weight change to the breach verdict (the
# deploy's --json events). Usage:
#   bench/canary/run.sh [BIN] [ROUNDS=20]   APPS="example cold" BENCH_OUT=FILE
# Prints one line per canary and the counts; BENCH_OUT also gets them.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
export MESHDEPLOY_BIN=${1:-$src/build/release/src/cli/meshdeploy}
rounds=${2:-20}
apps=${APPS:-example cold}
cold_requests=${COLD_REQUESTS:-100}
out=${BENCH_OUT:-/dev/null}
. "$src/tests/e2e/lib.sh"
e2e_init
command -v jq >/dev/null || die "jq is not installed (scripts/install-deps.sh)"
command -v wrk >/dev/null || die "wrk is not installed (scripts/install-deps.sh)"
say() { echo "$*"; echo "$*" >>"$T/results.txt"; [ "$out" = /dev/null ] || echo "$*" >>"$out"; }

# The bench's canary: one 20 % step, then 100 %. The analysis keys are the
# defaults scaled down 5x in time (warm-up 10 s -> 2 s, windows 5 s -> 1 s)
# so that 120 canaries fit in an hour; the rest are the defaults.
write_bench_config() {
  mkdir -p "$T/app" "$T/spool"
  cat >"$T/app/meshdeploy.yml" <<YAML
app: meshhook
defaults:
  services:
    web:
      command: node build
      count: 2
      health: {path: /healthz, interval: 100ms, timeout: 1s, healthy_threshold: 1, unhealthy_threshold: 2, start_timeout: 20s}
      stop_grace: 5s
  artifact: {dir: dist}
  agent: {root: $T/agent}
  proxy: {listen: "127.0.0.1:$PROXY_PORT", drain_timeout: 5s}
  env: {MESHHOOK_SPOOL_DIR: $T/spool}
  migrations: {enabled: false}
  strategy:
    kind: canary
    steps: [{weight: 20, pause: 5s}, {weight: 100}]
    analysis: {min_requests: 50, interval: 1s, warmup: 2s, consecutive_windows: 3, max_inconclusive: 30s}
    watch_window: 0s
  rollback_window: 0s
  keep_releases: 3
environments:
  test: {}
YAML
  md config validate -c "$T/app/meshdeploy.yml" >/dev/null || die "bench config invalid"
}

# Artifacts: one per build kind; each canary deploys a byte-identical copy
# of it under a new version name.
make_builds() {  # APP
  local cold=()
  [ "$1" = cold ] && cold=(--behave "MESHHOOK_COLD_REQUESTS=$cold_requests" --behave MESHHOOK_COLD_DELAY_MS=50)
  build_app good --behave MESHHOOK_DELAY_MS=5 ${cold[@]+"${cold[@]}"}
  build_app slow --behave MESHHOOK_DELAY_MS=10 ${cold[@]+"${cold[@]}"}
  build_app bad --behave MESHHOOK_DELAY_MS=5 --behave MESHHOOK_ERROR_RATE=0.05 ${cold[@]+"${cold[@]}"}
}
as_version() {  # KIND VERSION
  local d=$T/app/dist
  cp "$d/meshhook-$1.tar.gz" "$d/meshhook-$2.tar.gz"
  (cd "$d" && sha256sum "meshhook-$2.tar.gz" >"meshhook-$2.tar.gz.sha256")
}

# One canary: prints "KIND VERSION passed|rolled_back|failed DETECT_MS REASON".
canary() {  # APP KIND VERSION
  local app=$1 kind=$2 v=$3 rc=0 f
  as_version "$kind" "$v"
  f=$T/$app-$v.jsonl
  mdt deploy --version "$v" --json >"$f" 2>"$T/$app-$v.err" || rc=$?
  local t0 t1 reason result
  t0=$(jq -r 'select(.event == "note" and (.message // "" | test("of traffic on"))) | .elapsed_ms' "$f" | head -n1)
  t1=$(jq -r 'select(.event == "note" and (.message // "" | test("% breach: "))) | .elapsed_ms' "$f" | head -n1)
  reason=$(jq -r 'select(.event == "note" and (.message // "" | test("% (breach|pass): "))) | .message' "$f" | tail -n1)
  case $rc in 0) result=passed ;; 4) result=rolled_back ;; *) result="failed(exit $rc)" ;; esac
  local detect=-
  [ -n "$t0" ] && [ -n "$t1" ] && detect=$((t1 - t0))
  say "$app $kind $v $result $detect $reason"
}

PROXY_PORT=$(free_port)
write_bench_config
start_agent
say "# meshdeploy $("$MESHDEPLOY_BIN" --version | cut -d' ' -f2), $rounds rounds, apps: $apps, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for app in $apps; do
  rm -rf "$T/app/dist"
  make_builds "$app"
  as_version good "$app-0"
  mdt deploy --version "$app-0" >/dev/null 2>&1 || die "first deploy of $app failed"
  wrk_start "$app" "http://127.0.0.1:$PROXY_PORT/" 8 1
  sleep 2
  for r in $(seq "$rounds"); do
    canary "$app" good "$app-g$r"
    canary "$app" slow "$app-s$r"
    canary "$app" bad "$app-e$r"
  done
  wrk_stop "$app"
  say "# $app: wrk $WRK_REQUESTS requests, $WRK_5XX 5xx (the bad builds'), $WRK_SOCKET_ERRORS socket errors, load $(cut -d' ' -f1-3 /proc/loadavg)"
done
say "# summary (app kind: passed / rolled back / other, detection ms median [min-max]):"
for app in $apps; do
  for kind in good slow bad; do
    grep "^$app $kind " "$T/results.txt" >"$T/rows" || true
    # WHY sort, not asort: Debian's awk is mawk.
    d=$(awk '$5 != "-" {print $5}' "$T/rows" | sort -n | tr '\n' ' ')
    med=$(tr ' ' '\n' <<<"$d" | grep . | awk '{a[NR] = $1} END {print NR ? (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) : "-"}')
    say "# $app $kind: $(wc -l <"$T/rows") canaries, $(awk '$4 == "passed"' "$T/rows" | wc -l) passed," \
      "$(awk '$4 == "rolled_back"' "$T/rows" | wc -l) rolled back, $(awk '$4 != "passed" && $4 != "rolled_back"' "$T/rows" | wc -l) other;" \
      "detection ms: median $med, all: ${d:--}"
  done
done
