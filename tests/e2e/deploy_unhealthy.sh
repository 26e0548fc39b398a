#!/usr/bin/env bash
# A new release that never becomes healthy (health check fails), and one
# that crashes at start: each deploy fails, no traffic moves, the old release
# serves on under load with 0 failed requests, on_failure runs with the
# reason, and nothing of the failed release is left running.
. "$(dirname "$0")/lib.sh"
e2e_init
PROXY_PORT=$(free_port)
HOOKS="    on_failure: echo \"\$MESHDEPLOY_VERSION|\$MESHDEPLOY_PREVIOUS_VERSION|\$MESHDEPLOY_REASON\" >> $T/on_failure.out
    timeout: 10s" write_config
# A short start timeout so the unhealthy release is given up on quickly.
sed -i 's/start_timeout: 10s/start_timeout: 3s/' "$T/app/meshdeploy.yml"
build_app v1
build_app v2 --behave MESHHOOK_HEALTH=fail
build_app v3 --behave MESHHOOK_CRASH_AT_START=1
start_agent
mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }

wrk_start unhealthy "http://127.0.0.1:$PROXY_PORT/"
sleep 0.3
for v in v2 v3; do
  rc=0
  start=$(date +%s)
  mdt deploy --version "$v" >"$T/deploy-$v.out" 2>&1 || rc=$?
  took=$(( $(date +%s) - start ))
  expect_eq "$rc" 1 "exit code of the failed deploy of $v"
  grep -q "ready             failed" "$T/deploy-$v.out" || die "$v did not fail at ready: $(cat "$T/deploy-$v.out")"
  grep -q "shift_traffic" "$T/deploy-$v.out" && grep -q "shift_traffic     ok" "$T/deploy-$v.out" && die "traffic moved to $v"
  expect_only v1
  grep -q "^$v|v1|ready: " "$T/on_failure.out" || die "on_failure did not get the reason for $v: $(cat "$T/on_failure.out")"
  expect_journal_complete "$(last_deployment)"
  log "$v failed in ${took}s as it should; v1 serves on"
done
sleep 0.3
wrk_expect_clean unhealthy
case $WRK_VERSIONS in v1:*) ;; *) die "someone else answered: $WRK_VERSIONS" ;; esac
grep -q "failed (exit 1)\|exit 1" "$T/deploy-v3.out" || die "the crash was not explained: $(cat "$T/deploy-v3.out")"
