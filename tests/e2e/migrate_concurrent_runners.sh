#!/usr/bin/env bash
# Scenario: ten `meshdeploy migrate up` processes at once against one
# database: every one exits 0 and each migration is applied exactly once.
. "$(dirname "$0")/lib.sh"
e2e_init
. "$(dirname "$0")/migrate_supabase_compat.sh"

url=$(new_db runners)
mig="$T/migrations"
meshhook_migrations "$mig"
cat >"$mig/20240501000000_counter.sql" <<'SQL'
create table public.apply_counter (file text primary key, n integer not null);
SQL
for i in 1 2 3 4 5 6; do
  cat >"$mig/2024060${i}000000_bump.sql" <<SQL
insert into public.apply_counter values ('bump$i', 1) on conflict (file) do update set n = apply_counter.n + 1;
select pg_sleep(0.05);
SQL
done
pids=()
for r in $(seq 10); do
  "$MESHDEPLOY_BIN" migrate up --database-url "$url" --dir "$mig" >"$T/r$r.out" 2>&1 &
  pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
[ "$fails" -eq 0 ] || { cat "$T"/r*.out >&2; die "$fails of 10 runners failed"; }
applied=$(cat "$T"/r*.out | grep -c '^applied ' || true)
expect_eq "$applied" 10 "files applied across all runners"
expect_eq "$(q "$url" "select count(*) || ':' || sum(n) from public.apply_counter")" "6:6" "bump files applied once each"
expect_eq "$(q "$url" "select count(*) from supabase_migrations.schema_migrations")" 10 "history rows"
log "ok"
