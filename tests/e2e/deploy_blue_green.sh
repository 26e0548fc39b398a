#!/usr/bin/env bash
# Blue-green under continuous load: v1, then v2 while wrk runs and webhooks
# queue jobs. Expect: 0 failed requests, v2 alone afterwards (no orphans),
# expand migrations before the switch and the contract one after it against
# the fixture's Postgres, every queued job done exactly once, a complete journal.
. "$(dirname "$0")/lib.sh"
e2e_init
PROXY_PORT=$(free_port)

pg_url=$(cat "$MESHDEPLOY_TEST_PG_URL_FILE")
db=md_e2e_bg_$$
psql "$pg_url" -qXc "create database $db" >/dev/null
on_exit 'psql "$pg_url" -qXc "drop database if exists $db with (force)"'
db_url=${pg_url%/*}/$db
q() { psql "$db_url" -qXtAc "$1"; }

MIGRATIONS=on WINDOW=1s WATCH=500ms write_config
mig=$MESHDEPLOY_SRC/examples/meshhook/supabase/migrations
mkdir -p "$T/app/migrations"
cp "$mig"/20240101000000_*.sql "$mig"/20240215000000_*.sql "$T/app/migrations/"
export MESHDEPLOY_KEY_TEST
MESHDEPLOY_KEY_TEST=$(md secrets keygen --env test)
printf '%s' "$db_url" | mdt secrets set DATABASE_URL >/dev/null
build_app v1
build_app v2
start_agent

log "deploy v1 (first deploy, 2 expand migrations)"
mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }
expect_only v1
expect_eq "$(q "select count(*) from supabase_migrations.schema_migrations")" 2 "migrations after v1"
expect_eq "$(q "select count(*) from information_schema.columns where table_name='runs' and column_name='legacy_payload'")" 1 "legacy column before the contract"

# v2 ships an expand (index, concurrently) and a contract (drop column).
cp "$mig"/20240301000000_*.sql "$mig"/20240401000000_*.sql "$T/app/migrations/"

# Webhooks queue jobs through the proxy during the deploy.
(
  n=0 bad=0
  while [ ! -f "$T/stop-hooks" ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --max-time 5 -d '{"n":1}' \
      "http://127.0.0.1:$PROXY_PORT/hooks/github") || code=000
    if [ "$code" = 202 ]; then n=$((n + 1)); else bad=$((bad + 1)); fi
    sleep 0.02
  done
  echo "$n $bad" >"$T/hooks.result"
) &
hooks_pid=$!
track "$hooks_pid"  # WHY: a failing step must not leave the loop holding ctest's pipe
wrk_start bluegreen "http://127.0.0.1:$PROXY_PORT/"
sleep 0.5

log "deploy v2 blue-green under load"
mdt deploy --version v2 >"$T/deploy-v2.out" 2>&1 || { cat "$T/deploy-v2.out"; die "deploy v2 failed"; }
sleep 0.3
wrk_expect_clean bluegreen
touch "$T/stop-hooks"
wait "$hooks_pid"
read -r hooks_ok hooks_bad <"$T/hooks.result"
[ "$hooks_bad" -eq 0 ] || die "$hooks_bad webhook posts failed"
[ "$hooks_ok" -gt 10 ] || die "only $hooks_ok webhooks posted"
case $WRK_VERSIONS in *v1:*v2:*) ;; *) die "wrk should have seen v1 then v2, saw $WRK_VERSIONS" ;; esac

expect_only v2
grep -q "migrate_expand    ok" "$T/deploy-v2.out" || die "no expand step: $(cat "$T/deploy-v2.out")"
grep -q "migrate_contract  ok" "$T/deploy-v2.out" || die "no contract step"
expect_eq "$(q "select count(*) from supabase_migrations.schema_migrations")" 4 "migrations after v2"
expect_eq "$(q "select count(*) from information_schema.columns where table_name='runs' and column_name='legacy_payload'")" 0 "legacy column after the contract"
expect_eq "$(q "select count(*) from pg_indexes where indexname='runs_status_created_idx'")" 1 "the expand index"

# Every job queued was done once, none left behind by the worker swap.
wait_for 15 "the spool to empty" bash -c "[ -z \"\$(find '$T/spool/pending' '$T/spool/working' -type f)\" ]"
expect_eq "$(ls "$T/spool/done" | wc -l)" "$hooks_ok" "jobs done"

id=$(last_deployment)
expect_journal_complete "$id"
mdt history >"$T/history.out"
[ "$(grep -c ' succeeded ' "$T/history.out")" -eq 2 ] || die "history: $(cat "$T/history.out")"
log "ok: $WRK_REQUESTS requests, 0 failed; $hooks_ok webhooks -> jobs, all done"
