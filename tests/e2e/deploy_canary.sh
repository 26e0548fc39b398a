#!/usr/bin/env bash
# Canary under continuous load: v2 promoted through 30 % to 100 %, then a v3
# that answers 5xx on half its requests, caught by the analysis at 30 % and
# rolled back automatically. Expect: no failed request except the bad
# canary's own 5xx, v2 alone afterwards, on_rollback ran, exit code 4.
. "$(dirname "$0")/lib.sh"
e2e_init
PROXY_PORT=$(free_port)
STRATEGY=canary CANARY_STEPS='[{weight: 30, pause: 1500ms}, {weight: 100}]' MIN_REQUESTS=50 \
  INTERVAL=250ms WATCH=500ms \
  HOOKS="    on_rollback: echo \"\$MESHDEPLOY_VERSION \$MESHDEPLOY_REASON\" > $T/on_rollback.out" \
  write_config
build_app v1
build_app v2
build_app v3 --behave MESHHOOK_ERROR_RATE=0.5
start_agent

mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }
expect_only v1
grep -q "first deploy: no old release" "$T/deploy-v1.out" || die "a first canary should switch at once"

log "canary v2 under load: 30% then 100%"
wrk_start promote "http://127.0.0.1:$PROXY_PORT/"
sleep 0.3
mdt deploy --version v2 >"$T/deploy-v2.out" 2>&1 || { cat "$T/deploy-v2.out"; die "canary v2 failed"; }
wrk_expect_clean promote
case $WRK_VERSIONS in *v1:*v2:*) ;; *) die "wrk should have seen v1 and v2, saw $WRK_VERSIONS" ;; esac
grep -q "30% pass" "$T/deploy-v2.out" || die "no passing analysis at 30%: $(cat "$T/deploy-v2.out")"
expect_only v2
expect_journal_complete "$(last_deployment)"

log "canary v3 (50% 5xx) under load: automatic rollback"
wrk_start rollback "http://127.0.0.1:$PROXY_PORT/"
sleep 0.3
rc=0
mdt deploy --version v3 >"$T/deploy-v3.out" 2>&1 || rc=$?
sleep 0.3
wrk_stop rollback
expect_eq "$rc" 4 "exit code of a rolled back deploy"
grep -q "canary 5xx ratio" "$T/deploy-v3.out" || die "no breach reported: $(cat "$T/deploy-v3.out")"
bad=$(wrk_errors_from v3)
[ "$bad" -gt 0 ] || die "the bad canary never got traffic"
other=$((WRK_FAILED - bad))
[ "$other" -eq 0 ] || die "$other requests failed besides the bad canary's own 5xx ($WRK_ERRORS, $WRK_SOCKET_ERRORS socket errors)"
log "the bad canary answered $bad 5xx of $WRK_REQUESTS requests before the rollback; nothing else failed"
expect_only v2
grep -q "^v3 " "$T/on_rollback.out" || die "on_rollback did not run"
id=$(last_deployment)
expect_journal_complete "$id"
mdt history --json -n 1 | grep -q '"status": "rolled_back"' || die "v3 not recorded rolled_back"
