#!/usr/bin/env bash
# The main job (README, first command, via scripts/main-job.sh): meshdeploy
# end to end on the example app (examples/meshhook), in a throw-away
# directory, on free ports, with a throw-away Postgres for its migrations:
#   0. configuration valid; a secret stored in the encrypted vault and read
#      back; the resolved environment printed with secrets redacted;
#   1. an agent started; v1 deployed (first deploy, two migrations);
#   2. v2 deployed blue-green while wrk loads the proxy (an expand migration
#      before the switch, a contract one after the old release stopped);
#   3. a canary v3 that answers 5xx on half its requests, under load: the
#      analysis catches it and rolls it back automatically;
#   4. `meshdeploy rollback --to v1` by hand, under load;
#   5. a summary: requests served, failed requests, each traffic switch.
# Exits non-zero if any request failed (other than the bad canary's own 5xx,
# counted apart), if any step did not do what it says, or if a secret value
# shows up in any output or log. Every process it started is stopped at exit,
# also on failure or Ctrl-C (KEEP=1 keeps the directory for a look).
# Usage: bash scripts/demo.sh path/to/meshdeploy
set -euo pipefail
MESHDEPLOY_BIN=$(realpath "${1:?usage: scripts/demo.sh MESHDEPLOY_BINARY}")
MESHDEPLOY_SRC=$(cd "$(dirname "$0")/.." && pwd)
E2E_KEEP=${KEEP:-0}
# WHY the scenario tests' helpers: the same temp dir, process cleanup, free
# ports, polling and wrk accounting the tests rely on (tests/e2e/lib.sh).
. "$MESHDEPLOY_SRC/tests/e2e/lib.sh"
e2e_init
bin=$MESHDEPLOY_BIN

app=$T/app cfg=$T/app/meshdeploy.yml
# Run in $app, as a user would: ./meshdeploy.yml, environment demo.
mdt() { "$bin" "$@" --env demo; }
step() { printf '\n== %s\n' "$*"; }
# Prints a command the way a user would type it, then runs it.
show() { printf '$ meshdeploy %s\n' "$*"; mdt "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
for tool in wrk node curl python3 psql; do
  command -v "$tool" >/dev/null || die "$tool is not installed (bash scripts/install-deps.sh)"
done

step "meshdeploy $("$bin" --version | cut -d' ' -f2): the MeshHook example, deployed on this machine (work dir $T)"
PROXY_PORT=$(free_port)
pg=$(mktemp -d "${TMPDIR:-/tmp}/md-demo-pg.XXXXXX")
on_exit "bash '$MESHDEPLOY_SRC/scripts/pg-test-cluster.sh' stop '$pg'"
db_url=$(bash "$MESHDEPLOY_SRC/scripts/pg-test-cluster.sh" start "$pg") || die "could not start a throw-away Postgres"
echo "throw-away Postgres for the migrations on ${db_url#*@}"
cp -r "$MESHDEPLOY_SRC/examples/meshhook" "$app"
rm -rf "$app/dist" "$app/.meshdeploy"
# v1 ships the schema and the first expand migration; v2 brings the other two.
mkdir -p "$T/later" "$T/spool"
mv "$app"/supabase/migrations/20240301000000_*.sql "$app"/supabase/migrations/20240401000000_*.sql "$T/later/"
# The example's meshdeploy.yml as it is, plus an environment for this
# machine: a free port, a temp agent root, fast health checks, a short canary.
cat >>"$cfg" <<YAML

  # Added by scripts/demo.sh: this machine, a free port, fast checks.
  demo:
    strategy:
      kind: canary
      steps:
        - { weight: 30, pause: 5s }
        - { weight: 100 }
      analysis: { max_error_ratio: 0.05, max_p99_ratio: 0, min_requests: 50, interval: 250ms, warmup: 1s, max_inconclusive: 15s }
      watch_window: 0s
    rollback_window: 0s
    services:
      web:
        health: { interval: 100ms, timeout: 1s, healthy_threshold: 1, start_timeout: 15s }
        stop_grace: 5s
      worker:
        stop_grace: 10s
    env:
      MESHHOOK_SPOOL_DIR: $T/spool
    proxy:
      listen: 127.0.0.1:$PROXY_PORT
      drain_timeout: 5s
    agent:
      root: $T/agent
YAML
cd "$app"

step "0. Configuration and secrets"
echo "\$ meshdeploy config validate"
"$bin" config validate
export MESHDEPLOY_KEY_DEMO
MESHDEPLOY_KEY_DEMO=$("$bin" secrets keygen --env demo 2>"$T/keygen.err") || { cat "$T/keygen.err" >&2; die "secrets keygen failed"; }
echo "\$ meshdeploy secrets keygen --env demo   # -> MESHDEPLOY_KEY_DEMO (not shown)"
secret="demo-service-role-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
echo "\$ printf '%s' \"\$DATABASE_URL\" | meshdeploy secrets set DATABASE_URL --env demo"
printf '%s' "$db_url" | mdt secrets set DATABASE_URL >/dev/null
echo "\$ printf '%s' \"\$SUPABASE_SERVICE_ROLE_KEY\" | meshdeploy secrets set SUPABASE_SERVICE_ROLE_KEY --env demo"
printf '%s' "$secret" | mdt secrets set SUPABASE_SERVICE_ROLE_KEY >/dev/null
show secrets list
got=$(mdt secrets get SUPABASE_SERVICE_ROLE_KEY)
expect_eq "$got" "$secret" "secrets get SUPABASE_SERVICE_ROLE_KEY"
echo "secrets get read back the same ${#got}-byte value (not printed here)"
vault=$(ls "$app"/.meshdeploy/secrets/demo.vault 2>/dev/null) || die "no vault file at .meshdeploy/secrets/demo.vault"
! grep -qF "$secret" "$vault" || die "the vault holds a secret in clear text"
echo "the vault file holds no value in clear text"
mdt config show >"$T/show.yml"
grep -q '\[REDACTED\]' "$T/show.yml" || die "config show printed no redacted secret"
echo "\$ meshdeploy config show --env demo   # resolved environment, secrets as [REDACTED]"
sed -n '/^secrets:/,/^[a-z]/p' "$T/show.yml" | sed '$d'

step "1. Start an agent; build three releases; deploy v1"
echo "\$ meshdeploy agent run --root $T/agent --listen 127.0.0.1:$PROXY_PORT &"
spawn agent "$bin" agent run --root "$T/agent" --listen "127.0.0.1:$PROXY_PORT"
AGENT_PID=$LAST_PID E2E_LOGS="$T/agent.log"
wait_for 20 "the agent's socket" test -S "$T/agent/agent.sock"
wait_for 20 "the agent's status" mdt status
for v in v1 v2; do bash scripts/build-artifact.sh "$v"; done
bash scripts/build-artifact.sh v3 --behave MESHHOOK_ERROR_RATE=0.5
echo "(v3 answers 500 to every second request: a bad release)"

T_DEMO0=$(now_ms)
# Runs `meshdeploy ARGS...` showing its output, keeping it in $T/NAME.out,
# its exit code in RC and its start (ms since the demo's first deploy) in
# START_MS.
deploy_step() {
  local name=$1; shift
  START_MS=$(( $(now_ms) - T_DEMO0 ))
  printf '$ meshdeploy %s --env demo\n' "$*"
  RC=0
  mdt "$@" 2>&1 | tee "$T/$name.out" || RC=${PIPESTATUS[0]}
}
# Records every traffic switch a deploy printed ("[ 0.83s]   100% of traffic
# on v2 (health probe 120 ms, traffic switch 2 ms)") as
# "label|at|weight on version|probe_ms|switch_ms" in $T/switches.
record_switches() {
  local name=$1 label=$2 n
  n=$(sed -n 's/^\[ *\([0-9.]*\)s\] *\([0-9]*\)% of traffic \(back \)\{0,1\}on \([^ ]*\) (health probe \([0-9]*\) ms, traffic switch \([0-9]*\) ms).*/\1 \2 \4 \5 \6/p' "$T/$name.out" |
    awk -v s="$START_MS" -v l="$label" '{printf "%s|%.2f|%s%% on %s|%s|%s\n", l, (s + $1 * 1000) / 1000, $2, $3, $4, $5}' |
    tee -a "$T/switches" | wc -l)
  [ "$n" -gt 0 ] || die "$label: no traffic switch in its output"
}
: >"$T/switches"; : >"$T/phases"
# Appends a line to the summary: label, requests, failed, note.
phase() { echo "$1|$2|$3|$4" >>"$T/phases"; }
# Runs `meshdeploy ARGS...` (deploy_step NAME) while wrk loads the proxy,
# expects exit code RC and records its traffic switches under LABEL; leaves
# wrk's figures in WRK_*. Usage: under_load NAME LABEL RC ARGS...
under_load() {
  local name=$1 label=$2 want=$3; shift 3
  local load=${name//-/_}   # wrk_start names a variable after it
  wrk_start "$load" "http://127.0.0.1:$PROXY_PORT/"
  sleep 0.5
  deploy_step "$name" "$@"
  sleep 0.3
  wrk_stop "$load"
  expect_eq "$RC" "$want" "exit code of meshdeploy $*"
  record_switches "$name" "$label"
}

deploy_step deploy-v1 deploy --version v1
expect_eq "$RC" 0 "exit code of deploy v1"
record_switches deploy-v1 "deploy v1 (first)"
expect_only v1
expect_journal_complete "$(last_deployment)"
applied() { psql "$db_url" -qXtAc "select count(*) from supabase_migrations.schema_migrations"; }
expect_eq "$(applied)" 2 "migrations applied after v1"
phase "deploy v1 (first deploy)" - - "2 migrations applied; v1 alone serves"

step "2. Deploy v2 blue-green while wrk loads the proxy"
mv "$T"/later/*.sql supabase/migrations/
echo "v2 brings an expand migration (index) and a contract one (drop column)"
under_load deploy-v2 "blue-green v1 -> v2" 0 deploy --version v2 --strategy blue_green
phase "blue-green v1 -> v2" "$WRK_REQUESTS" "$WRK_FAILED" "served by $WRK_VERSIONS; expand migration before the switch, contract after v1 stopped"
[ "$WRK_REQUESTS" -gt 0 ] || die "wrk sent no request during the blue-green deploy"
[ "$WRK_FAILED" -eq 0 ] || die "$WRK_FAILED of $WRK_REQUESTS requests failed during the blue-green deploy"
case $WRK_VERSIONS in *v1:*v2:*) ;; *) die "wrk should have been served by v1 then v2, saw $WRK_VERSIONS" ;; esac
grep -q "migrate_expand  *ok" "$T/deploy-v2.out" || die "deploy v2 ran no expand migration"
grep -q "migrate_contract  *ok" "$T/deploy-v2.out" || die "deploy v2 ran no contract migration"
expect_eq "$(applied)" 4 "migrations applied after v2"
expect_only v2
expect_journal_complete "$(last_deployment)"

step "3. Deploy v3 as a canary (it answers 5xx) under load: rolled back automatically"
under_load deploy-v3 "canary v3, rolled back" 4 deploy --version v3   # 4: rolled back
grep -q "breach: canary 5xx ratio" "$T/deploy-v3.out" || die "the canary analysis reported no 5xx breach"
canary_5xx=$(wrk_errors_from v3)
other=$(( WRK_FAILED - canary_5xx ))
phase "canary v3 (bad), auto rollback" "$WRK_REQUESTS" "$other" "plus $canary_5xx 5xx answered by v3 itself while it had its 30%; served by $WRK_VERSIONS"
[ "$canary_5xx" -gt 0 ] || die "the bad canary v3 never got traffic"
[ "$other" -eq 0 ] || die "$other requests failed besides the bad canary's own 5xx ($WRK_ERRORS; $WRK_SOCKET_ERRORS socket errors)"
mdt history --json -n 1 | grep -q '"status": "rolled_back"' || die "v3 is not recorded as rolled back"
expect_only v2
expect_journal_complete "$(last_deployment)"

step "4. Roll back to v1 by hand, under load"
under_load rollback-v1 "rollback v2 -> v1 (from disk)" 0 rollback --to v1
phase "manual rollback v2 -> v1" "$WRK_REQUESTS" "$WRK_FAILED" "served by $WRK_VERSIONS"
[ "$WRK_REQUESTS" -gt 0 ] || die "wrk sent no request during the rollback"
[ "$WRK_FAILED" -eq 0 ] || die "$WRK_FAILED of $WRK_REQUESTS requests failed during the rollback"
mdt history --json -n 1 | grep -q '"kind": "rollback"' || die "the rollback is not recorded as one"
expect_only v1
expect_journal_complete "$(last_deployment)"
show history

step "5. Nothing secret printed, every process stopped"
if grep -rlF -e "$secret" -e "$db_url" "$T"/*.out "$T"/*.log "$T/show.yml" "$T/agent/logs" 2>/dev/null; then
  die "a secret value appears in the files above"
fi
echo "no secret value in any command output, the agent's log or the release logs"
"$bin" agent stop --root "$T/agent" --all >/dev/null
wait_for 30 "the agent to exit" bash -c "! kill -0 $AGENT_PID 2>/dev/null"
wait_for 30 "the release processes to stop" bash -c "[ -z \"\$(find /proc -mindepth 2 -maxdepth 2 -name cwd -lname '$T/agent/*' 2>/dev/null)\" ]"
echo "agent and release processes stopped (agent stop --all)"

step "Summary"
total=0 failed=0
printf '%-34s %9s %7s  %s\n' "under load" requests failed notes
while IFS='|' read -r label req bad note; do
  printf '%-34s %9s %7s  %s\n' "$label" "$req" "$bad" "$note"
  [ "$req" = - ] || { total=$((total + req)); failed=$((failed + bad)); }
done <"$T/phases"
printf '%-34s %9s %7s\n' "total" "$total" "$failed"
echo
printf '%-34s %10s  %-14s %12s  %s\n' "traffic switches" "at (s)" "" "health probe" "switch"
while IFS='|' read -r label at what probe ms; do
  printf '%-34s %10s  %-14s %9s ms  %s ms\n' "$label" "$at" "$what" "$probe" "$ms"
done <"$T/switches"
echo
echo "requests served: $total; failed: $failed (plus $canary_5xx 5xx from the bad canary v3 before its automatic rollback)"
[ "$failed" -eq 0 ] || die "$failed requests failed"
echo "main job: ok"
