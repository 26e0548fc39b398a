#!/usr/bin/env bash
# Scenario: while clients keep reading and writing a busy table (pgbench)
# and a long report holds a lock on it, a lint-clean migration runs and no
# client transaction waits longer than lock_timeout (the runner gives up the
# lock queue and retries with backoff). Control: the same migration with a
# lock_timeout longer than the report makes the clients wait, so the
# measurement can fail. A lint-flagged migration is refused by plan/up (the
# verdict the deploy acts on) until acknowledged.
. "$(dirname "$0")/lib.sh"
e2e_init
. "$(dirname "$0")/migrate_supabase_compat.sh"

base="$T/base"
meshhook_migrations "$base"

# Applies the MeshHook schema and 20k runs to a new database; prints its URL.
busy_db() {
  local url
  url=$(new_db "$1")
  "$MESHDEPLOY_BIN" migrate up --database-url "$url" --dir "$base" >/dev/null 2>&1 || die "base schema"
  q "$url" "insert into public.workflows (owner_id, name) select gen_random_uuid(), 'wf' || g from generate_series(1, 10) g;
            insert into public.workflow_runs (workflow_id) select (select id from public.workflows limit 1) from generate_series(1, 20000)" >/dev/null
  echo "$url"
}

cat >"$T/clients.sql" <<'SQL'
\set rid random(1, 20000)
select status from public.workflow_runs where id = :rid;
update public.workflow_runs set status = 'running' where id = :rid;
SQL

# Runs MIGRATION_DIR against URL with LOCK_TIMEOUT_MS while pgbench runs and a
# report holds ACCESS SHARE for 3 s; sets MAX_WAIT_MS (slowest client
# transaction) and MIG_RC.
run_under_load() {
  local url=$1 dir=$2 lt=$3 tag=$4
  "$PG_BIN/pgbench" -n -c 4 -j 2 -T 9 -f "$T/clients.sql" -l --log-prefix="$T/pgb-$tag" "$url" >"$T/pgbench-$tag.out" 2>&1 &
  local bench=$!
  track "$bench"
  sleep 1
  psql -X -q "$url" -c "begin; select count(*) from public.workflow_runs; select pg_sleep(3); commit;" >/dev/null &
  local report=$!
  sleep 0.3
  MIG_RC=0
  "$MESHDEPLOY_BIN" migrate up --database-url "$url" --dir "$dir" --lock-timeout-ms "$lt" >"$T/mig-$tag.out" 2>&1 || MIG_RC=$?
  wait "$report" || true
  wait "$bench" || { cat "$T/pgbench-$tag.out" >&2; die "pgbench failed ($tag)"; }
  grep -q "number of failed transactions: 0" "$T/pgbench-$tag.out" || { cat "$T/pgbench-$tag.out" >&2; die "client transactions failed ($tag)"; }
  MAX_WAIT_MS=$(cat "$T"/pgb-$tag.* | awk 'BEGIN{m=0} {if ($3 > m) m = $3} END{printf "%d", m/1000}')
  local n
  n=$(cat "$T"/pgb-$tag.* | wc -l)
  log "$tag: migration exit $MIG_RC, $n client transactions, slowest ${MAX_WAIT_MS} ms (lock_timeout ${lt} ms)"
}

# A lint-clean expand migration on the busy table.
clean="$T/clean"; cp -r "$base" "$clean"
cat >"$clean/20240501000000_run_retries.sql" <<'SQL'
alter table public.workflow_runs add column retry_count integer;
alter table public.workflow_runs add constraint workflow_runs_retry_nonneg check (retry_count >= 0) not valid;
SQL
# VALIDATE in its own file: it scans the table, and must not do so while the
# ALTER's ACCESS EXCLUSIVE lock of the file above is held.
cat >"$clean/20240502000000_validate_retries.sql" <<'SQL'
alter table public.workflow_runs validate constraint workflow_runs_retry_nonneg;
SQL
cat >"$clean/20240503000000_run_retries_idx.sql" <<'SQL'
create index concurrently if not exists workflow_runs_retry_idx on public.workflow_runs (retry_count);
SQL
"$MESHDEPLOY_BIN" migrate lint --dir "$clean" >"$T/lint-clean.out" 2>&1 || { cat "$T/lint-clean.out" >&2; die "the clean migration has lint errors"; }

url=$(busy_db load)
run_under_load "$url" "$clean" 400 guarded
[ "$MIG_RC" -eq 0 ] || { cat "$T/mig-guarded.out" >&2; die "lint-clean migration failed under load"; }
grep -q "lock-timeout retries" "$T/mig-guarded.out" || { cat "$T/mig-guarded.out" >&2; die "the report never held the lock: the scenario proves nothing"; }
# WHY +200 ms: a client's transaction time is its wait plus its own work on a
# 2-core machine shared with compilers.
[ "$MAX_WAIT_MS" -le 600 ] || die "a client waited ${MAX_WAIT_MS} ms, longer than lock_timeout 400 ms (+200 ms slack)"

# Control: lock_timeout longer than the report: clients queue behind the ALTER.
url2=$(busy_db control)
run_under_load "$url2" "$clean" 10000 unguarded
[ "$MIG_RC" -eq 0 ] || { cat "$T/mig-unguarded.out" >&2; die "control migration failed"; }
[ "$MAX_WAIT_MS" -ge 1000 ] || die "control: clients never waited (${MAX_WAIT_MS} ms): the measurement cannot see blocking"

log "a lint-flagged migration is refused until acknowledged"
flagged="$T/flagged"; cp -r "$base" "$flagged"
cat >"$flagged/20240501000000_status_idx.sql" <<'SQL'
create index workflow_runs_status2_idx on public.workflow_runs (status);
SQL
url3=$(busy_db flagged)
rc=0; "$MESHDEPLOY_BIN" migrate plan --database-url "$url3" --dir "$flagged" >"$T/plan.out" 2>&1 || rc=$?
expect_eq "$rc" 1 "plan exit code for a refused verdict"
grep -q "verdict: refused" "$T/plan.out" || die "plan shows no refusal"
grep -q "20240501000000_status_idx.sql:1: require-concurrent-index-creation" "$T/plan.out" || { cat "$T/plan.out" >&2; die "plan does not name the finding"; }
grep -q "SHARE on public.workflow_runs" "$T/plan.out" || die "plan does not show the lock"
rc=0; "$MESHDEPLOY_BIN" migrate up --database-url "$url3" --dir "$flagged" >"$T/up-flagged.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || die "up applied a lint-flagged migration"
expect_eq "$(q "$url3" "select to_regclass('public.workflow_runs_status2_idx') is null")" t "flagged index not built"
sed -i '1i -- meshdeploy:allow require-concurrent-index-creation built in the 02:00 window, table is small' \
  "$flagged/20240501000000_status_idx.sql"
"$MESHDEPLOY_BIN" migrate plan --database-url "$url3" --dir "$flagged" >"$T/plan2.out" 2>&1 || { cat "$T/plan2.out" >&2; die "acknowledged plan refused"; }
"$MESHDEPLOY_BIN" migrate up --database-url "$url3" --dir "$flagged" >/dev/null 2>&1 || die "acknowledged up failed"
expect_eq "$(q "$url3" "select to_regclass('public.workflow_runs_status2_idx') is not null")" t "acknowledged index built"
log "ok"
