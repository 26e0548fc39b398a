#!/usr/bin/env bash
# Scenario: `kill -9` of the real runner at each statement of a
# multi-statement, partly non-transactional migration, then a rerun: the end
# state (schema, data, history) equals a clean run's, and no INVALID index
# is left behind.
. "$(dirname "$0")/lib.sh"
e2e_init
. "$(dirname "$0")/migrate_supabase_compat.sh"

mig="$T/migrations"
mkdir -p "$mig"
cat >"$mig/20240101000000_base.sql" <<'SQL'
create table public.workflows (id bigint generated always as identity primary key, name text not null);
create table public.workflow_runs (
  id bigint generated always as identity primary key,
  workflow_id bigint not null references public.workflows (id),
  status text not null default 'queued'
);
insert into public.workflows (name) select 'wf-' || g from generate_series(1, 20) g;
insert into public.workflow_runs (workflow_id) select 1 + g % 20 from generate_series(1, 120) g;
-- slow on purpose, so that a kill lands inside the statements below
create function public.slow_key(k bigint) returns bigint language plpgsql immutable as $$
begin perform pg_sleep(0.002); return k; end $$;
SQL
# Six statements, each slow enough (pg_sleep per row) for a kill to land
# inside it; three cannot run in a transaction, so the file runs statement
# by statement with recorded progress.
cat >"$mig/20240201000000_events.sql" <<'SQL'
create table public.workflow_events as
  select r.id as run_id, 'created'::text as kind from public.workflow_runs r where pg_sleep(0.002) is not null;
insert into public.workflow_events (run_id, kind)
  select id, 'queued' from public.workflow_runs where pg_sleep(0.002) is not null;
create index concurrently workflow_events_run_idx on public.workflow_events (public.slow_key(run_id));
alter table public.workflow_runs add column attempts integer not null default 0,
  add constraint workflow_runs_attempts_check check (public.slow_key(attempts) >= 0);
vacuum analyze public.workflow_events;
create unique index concurrently workflow_runs_attempts_idx on public.workflow_runs (id, public.slow_key(attempts));
SQL
nstmts=6

# Everything a clean run leaves: schema, row counts, history (without times).
state_of() {
  local url=$1
  "$PG_BIN/pg_dump" -s -n public "$url" | grep -v -e '^--' -e '^$' -e '^\\restrict' -e '^\\unrestrict'
  q "$url" "select count(*) from public.workflow_events"
  q "$url" "select count(*) from pg_index where not indisvalid"
  q "$url" "select version, name, md5(statements::text) from supabase_migrations.schema_migrations order by 1"
  q "$url" "select version, checksum, statements_total, statements_done, applied_at is not null from supabase_migrations.meshdeploy_history order by 1"
}

up() { "$MESHDEPLOY_BIN" migrate up --skip-lint --database-url "$1" --dir "$mig"; }

clean=$(new_db clean)
up "$clean" >"$T/clean.out" 2>&1 || { cat "$T/clean.out" >&2; die "clean run failed"; }
state_of "$clean" >"$T/clean.state"
grep -q 'workflow_runs_attempts_idx' "$T/clean.state" || die "clean run lacks the last index"

# Variant "kill": only the runner dies; its server backend finishes the
# statement on its own. Variant "cut": the connection dies too (host lost),
# so an interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index.
for variant in kill cut; do
for k in $(seq 0 $((nstmts - 1))); do
  url=$(new_db $variant$k)
  # the base file first, so that progress of the second file is observable
  "$MESHDEPLOY_BIN" migrate up --skip-lint --database-url "$url" --dir "$mig" >/dev/null 2>&1 &
  pid=$!
  # wait until statement k of the second file is under way, then kill -9
  deadline=$(( $(date +%s) + 30 ))
  until [ "$(q "$url" "select statements_done >= $k from supabase_migrations.meshdeploy_history where version = '20240201000000'" 2>/dev/null)" = t ]; do
    kill -0 "$pid" 2>/dev/null || die "runner finished before statement $k was reached"
    [ "$(date +%s)" -lt "$deadline" ] || die "statement $k never started"
    sleep 0.01
  done
  sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ "$variant" = cut ]; then
    q "$url" "select count(pg_terminate_backend(pid)) from pg_stat_activity
              where datname = current_database() and application_name = 'meshdeploy'" >/dev/null
  fi
  done_at_kill=$(q "$url" "select statements_done from supabase_migrations.meshdeploy_history where version = '20240201000000'")
  log "$variant at progress $done_at_kill/$nstmts (waited for >= $k); rerun"
  up "$url" >"$T/rerun-$variant$k.out" 2>&1 || { cat "$T/rerun-$variant$k.out" >&2; die "rerun after $variant at statement $((k + 1)) failed"; }
  state_of "$url" >"$T/$variant$k.state"
  diff -u "$T/clean.state" "$T/$variant$k.state" >&2 || die "end state after $variant at statement $((k + 1)) differs from a clean run"
done
done
log "ok: 2 x $nstmts kill points, each rerun equals the clean run"
