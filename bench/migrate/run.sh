#!/usr/bin/env bash
# Applies N (default 500) small migrations with `meshdeploy migrate up` and
# with dbmate, side by side on one throw-away Postgres cluster, ROUNDS
# (default 5) rounds; each round and tool gets a fresh database, and the
# tool that goes first alternates. Prints per-round times, per-migration
# medians and per-round ratios (meshdeploy / dbmate; < 1 means faster).
#   bench/migrate/run.sh            # needs build/release (or MESHDEPLOY_BIN)
#   ROUNDS=7 N=500 bench/migrate/run.sh
# meshdeploy does all its checks on every run: runner lock, history and
# drift check, lint of every pending file, preflight (extensions, schemas,
# roles, invalid indexes), lock_timeout/statement_timeout per file.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${ROUNDS:-5}
N=${N:-500}
bin=${MESHDEPLOY_BIN:-$src/build/release/src/cli/meshdeploy}
dbmate=$src/build/npm-tools/node_modules/.bin/dbmate
[ -x "$bin" ] || { echo "no meshdeploy binary at $bin (build the release preset)" >&2; exit 1; }
[ -x "$dbmate" ] || bash "$src/scripts/install-npm-deps.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/md-bench-migrate.XXXXXX")
[ "$(id -u)" -eq 0 ] && chmod 755 "$tmp"
cluster="$tmp/pg"
cleanup() { bash "$src/scripts/pg-test-cluster.sh" stop "$cluster" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
admin=$(bash "$src/scripts/pg-test-cluster.sh" start "$cluster")

mig="$tmp/migrations"
mkdir -p "$mig"
for i in $(seq 1 "$N"); do
  v=$(printf '2024%010d' "$i")
  cat >"$mig/${v}_bench_$i.sql" <<SQL
-- migrate:up
create table public.bench_runs_$i (
  id bigint generated always as identity primary key,
  workflow_id uuid not null,
  status text not null default 'queued',
  created_at timestamptz not null default now()
);
create index bench_runs_${i}_workflow_idx on public.bench_runs_$i (workflow_id);
insert into public.bench_runs_$i (workflow_id) values (gen_random_uuid());

-- migrate:down
drop table public.bench_runs_$i;
SQL
done

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
newdb() { psql -X -q "$admin" -c "create database $1" >/dev/null; echo "${admin%/*}/$1"; }
run_md() {
  local url; url=$(newdb "md_$1")
  local t0; t0=$(now_ms)
  "$bin" migrate up --database-url "$url" --dir "$mig" >"$tmp/md.out" 2>&1 || { tail "$tmp/md.out" >&2; exit 1; }
  echo $(( $(now_ms) - t0 ))
  [ "$(psql -X -At "$url" -c 'select count(*) from supabase_migrations.schema_migrations')" = "$N" ] || exit 1
}
run_dbmate() {
  local url; url=$(newdb "dbm_$1")
  local t0; t0=$(now_ms)
  "$dbmate" --url "$url?sslmode=disable" --migrations-dir "$mig" --no-dump-schema up >"$tmp/dbm.out" 2>&1 \
    || { tail "$tmp/dbm.out" >&2; exit 1; }
  echo $(( $(now_ms) - t0 ))
  [ "$(psql -X -At "$url" -c 'select count(*) from schema_migrations')" = "$N" ] || exit 1
}

echo "| round | meshdeploy ms | dbmate ms | meshdeploy ms/migration | dbmate ms/migration | ratio |"
echo "|---|---|---|---|---|---|"
md_all=(); dbm_all=(); ratios=()
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then md=$(run_md "$r"); dbm=$(run_dbmate "$r"); else dbm=$(run_dbmate "$r"); md=$(run_md "$r"); fi
  ratio=$(awk -v a="$md" -v b="$dbm" 'BEGIN{printf "%.2f", a/b}')
  md_all+=("$md"); dbm_all+=("$dbm"); ratios+=("$ratio")
  awk -v r="$r" -v a="$md" -v b="$dbm" -v n="$N" -v q="$ratio" \
    'BEGIN{printf "| %d | %d | %d | %.2f | %.2f | %s |\n", r, a, b, a/n, b/n, q}'
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m_md=$(median "${md_all[@]}"); m_dbm=$(median "${dbm_all[@]}"); m_ratio=$(median "${ratios[@]}")
awk -v a="$m_md" -v b="$m_dbm" -v n="$N" -v q="$m_ratio" \
  'BEGIN{printf "| median | %d | %d | %.2f | %.2f | %s |\n", a, b, a/n, b/n, q}'
echo
echo "$N migrations per run, $ROUNDS rounds, Postgres $(psql -X -At "$admin" -c 'show server_version'), $(nproc) cores."
