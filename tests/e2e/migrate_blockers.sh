#!/usr/bin/env bash
# Scenario: `meshdeploy migrate up` against a real Postgres lists every
# blocker at once — a missing extension (pgmq) AND an unacknowledged lint
# finding, each with file:line — and applies nothing; `migrate plan` sees the
# table a DO block drops instead of saying "no lock".
. "$(dirname "$0")/lib.sh"
e2e_init
. "$(dirname "$0")/migrate_supabase_compat.sh"

url=$(new_db blockers)
ext=pgmq
[ "$(q "$url" "select count(*) from pg_available_extensions where name = 'pgmq'")" = 0 ] || ext=md_no_such_ext
mig="$T/migrations"
mkdir -p "$mig"
cat >"$mig/20240101000000_init.sql" <<'SQL'
create table public.workflows (id bigint primary key, name text);
SQL
"$MESHDEPLOY_BIN" migrate up --database-url "$url" --dir "$mig" >"$T/up1.out" 2>&1 || { cat "$T/up1.out" >&2; die "first up failed"; }

cat >"$mig/20240601000000_queue.sql" <<SQL
set lock_timeout = '3s';
create extension if not exists $ext;
create index workflows_name_idx on public.workflows (name);
SQL

log "migrate up: both blockers in one refusal, nothing applied"
rc=0
"$MESHDEPLOY_BIN" migrate up --database-url "$url" --dir "$mig" >"$T/up2.out" 2>"$T/up2.err" || rc=$?
expect_eq "$rc" 1 "exit code of a refused up"
grep -q "missing-extension: 20240601000000_queue.sql:2: extension \"$ext\" is not available" "$T/up2.err" \
  || { cat "$T/up2.err" >&2; die "missing extension not listed with file:line"; }
grep -q "lint: 20240601000000_queue.sql:3: require-concurrent-index-creation" "$T/up2.err" \
  || { cat "$T/up2.err" >&2; die "lint finding not listed with file:line"; }
grep -q "2 blocker(s)" "$T/up2.err" || { cat "$T/up2.err" >&2; die "blocker count"; }
expect_eq "$(q "$url" "select count(*) from supabase_migrations.schema_migrations")" 1 "history rows after refusal"
expect_eq "$(q "$url" "select to_regclass('public.workflows_name_idx') is null")" t "index not built"

log "migrate up --skip-lint: the extension still blocks"
rc=0
"$MESHDEPLOY_BIN" migrate up --skip-lint --database-url "$url" --dir "$mig" >"$T/up3.out" 2>"$T/up3.err" || rc=$?
expect_eq "$rc" 1 "exit code with --skip-lint"
grep -q "1 blocker(s)" "$T/up3.err" || { cat "$T/up3.err" >&2; die "only the extension should block"; }

log "migrate plan: a DO block that drops a table"
rm "$mig/20240601000000_queue.sql"
cat >"$mig/20240701000000_copy_runs.sql" <<'SQL'
set lock_timeout = '3s';
do $$
begin
  create table public.workflows_new as select * from public.workflows;
end
$$;
do $$
begin
  drop table public.workflows cascade;
  alter table public.workflows_new rename to workflows;
end
$$;
SQL
rc=0
"$MESHDEPLOY_BIN" migrate plan --database-url "$url" --dir "$mig" >"$T/plan.out" 2>&1 || rc=$?
expect_eq "$rc" 1 "plan exit code (lint refuses the drop)"
grep -q "ACCESS EXCLUSIVE on public.workflows" "$T/plan.out" || { cat "$T/plan.out" >&2; die "DO block lock not shown"; }
grep -q "20240701000000_copy_runs.sql:9: error ban-drop-table" "$T/plan.out" \
  || { cat "$T/plan.out" >&2; die "drop inside the DO block not linted"; }
grep -q "^20240701000000_copy_runs.sql  contract" "$T/plan.out" || { cat "$T/plan.out" >&2; die "file not contract"; }
log "ok"
