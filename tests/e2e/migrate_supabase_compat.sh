#!/usr/bin/env bash
# Scenario: after `meshdeploy migrate up`, the Supabase CLI sees nothing
# pending for the same folder (`supabase migration list`, `db push --dry-run`),
# and a file the Supabase CLI applied reads as applied (not drifted) here.
#
# WHY the helpers live here too: the other migrate_* scenarios source this
# file for them (ctest runs every tests/e2e/*.sh except lib.sh, so a
# helper-only file would be an empty test). Sourced, it defines the helpers
# only; run, it also runs its scenario at the bottom.

PG_ADMIN_URL=$(cat "${MESHDEPLOY_TEST_PG_URL_FILE:?run through ctest}")
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
NPM_BIN="$MESHDEPLOY_SRC/build/npm-tools/node_modules/.bin"

# Creates a fresh database and prints its URL. Usage: url=$(new_db NAME)
new_db() {
  local db="md_e2e_$1_$$_$RANDOM"
  psql -X -q -v ON_ERROR_STOP=1 "$PG_ADMIN_URL" -c "CREATE DATABASE $db" >/dev/null || die "create database $db"
  echo "${PG_ADMIN_URL%/*}/$db"
}

# psql -At against URL. Usage: q URL SQL
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$1" -c "$2"; }

# Writes the MeshHook-shaped migrations into DIR.
meshhook_migrations() {
  local d=$1
  mkdir -p "$d"
  cat >"$d/20240101000000_initial_schema.sql" <<'SQL'
-- MeshHook: workflows, runs, webhooks
create extension if not exists pgcrypto;
create table public.workflows (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null,
  name text not null,
  definition jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create table public.workflow_runs (
  id bigint generated always as identity primary key,
  workflow_id uuid not null references public.workflows (id) on delete cascade,
  status text not null default 'queued' check (status in ('queued', 'running', 'succeeded', 'failed')),
  payload jsonb,
  started_at timestamptz not null default now()
);
create table public.webhooks (
  id uuid primary key default gen_random_uuid(),
  workflow_id uuid not null references public.workflows (id) on delete cascade,
  path text not null unique,
  secret text not null default encode(gen_random_bytes(24), 'hex')
);
create index workflow_runs_workflow_id_idx on public.workflow_runs (workflow_id);
create or replace function public.touch_updated_at() returns trigger
language plpgsql as $$
begin
  new.updated_at := now();  -- "now" ; not a statement end
  return new;
end;
$$;
create trigger workflows_touch before update on public.workflows
  for each row execute function public.touch_updated_at();
do $do$
begin
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin;
  end if;
end
$do$;
alter table public.workflows enable row level security;
create policy workflows_owner on public.workflows for all to authenticated
  using (owner_id = coalesce(nullif(current_setting('request.jwt.claim.sub', true), '')::uuid, owner_id));
grant select, insert, update on public.workflows to authenticated;
SQL
  cat >"$d/20240215000000_webhook_signing.sql" <<'SQL'
set lock_timeout = '3s';
alter table public.webhooks add column signing_alg text default 'sha256';
comment on column public.webhooks.signing_alg is 'E''HMAC'' algorithm; see docs';
create or replace function public.sign(body text, key text) returns text
language sql immutable begin atomic
  select encode(hmac(body, key, 'sha256'), 'hex');
end;
SQL
  cat >"$d/20240301000000_runs_status_index.sql" <<'SQL'
-- non-transactional: runs statement by statement
create index concurrently if not exists workflow_runs_status_idx on public.workflow_runs (status);
SQL
}

# Runs the Supabase CLI in a throw-away project dir whose supabase/migrations
# is a copy of DIR. Usage: supabase_in DIR ARGS...
supabase_in() {
  local src=$1; shift
  local proj="$T/sbproj"
  rm -rf "$proj"; mkdir -p "$proj/supabase"
  cp -r "$src" "$proj/supabase/migrations"
  (cd "$proj" && "$NPM_BIN/supabase" --workdir "$proj" "$@")
}

# Writes $T/app/meshdeploy.yml with environment ENV whose migrations come
# from $T/app/migrations, gives ENV a fresh key (exported) and stores URL as
# its DATABASE_URL secret through the real `secrets set`. EXTRA: yaml lines
# added under the environment's `migrations:` (indented 6).
# Usage: vault_app ENV URL [EXTRA]
vault_app() {
  local env=$1 url=$2 extra=${3-}
  local var="MESHDEPLOY_KEY_$(tr 'a-z-.' 'A-Z__' <<<"$env")"
  mkdir -p "$T/app/migrations"
  cat >"$T/app/meshdeploy.yml" <<YAML
app: meshhook
defaults:
  services:
    web: {command: node build/index.js}
environments:
  $env:
    migrations:
      dir: migrations
$extra
YAML
  export "$var=$("$MESHDEPLOY_BIN" secrets keygen --env "$env" 2>/dev/null)"
  printf '%s' "$url" | "$MESHDEPLOY_BIN" secrets set --env "$env" -c "$T/app/meshdeploy.yml" DATABASE_URL \
    || die "secrets set DATABASE_URL"
}

[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

. "$(dirname "$0")/lib.sh"
e2e_init
[ -x "$NPM_BIN/supabase" ] || die "no supabase CLI in $NPM_BIN: run scripts/install-npm-deps.sh"
url=$(new_db sbcompat)
mig="$T/supabase/migrations"
meshhook_migrations "$mig"

log "meshdeploy migrate up"
"$MESHDEPLOY_BIN" migrate up --database-url "$url" --dir "$mig" >"$T/up.out" 2>&1 || { cat "$T/up.out" >&2; die "migrate up failed"; }
expect_eq "$(grep -c '^applied ' "$T/up.out")" 3 "files applied"

log "supabase migration list"
supabase_in "$mig" migration list --db-url "$url?sslmode=disable" >"$T/list.out" 2>&1 || { cat "$T/list.out" >&2; die "supabase migration list failed"; }
# Rows read "  `LOCAL` | `REMOTE` | `TIME`"; a pending file has an empty REMOTE.
rows=$(sed 's/`//g' "$T/list.out" | grep -E '^\s*[0-9]{14}\s*\|' || true)
expect_eq "$(wc -l <<<"$rows" | tr -d ' ')" 3 "rows in supabase migration list"
pending=$(awk -F'|' '{gsub(/ /,"",$1); gsub(/ /,"",$2); if ($1 != $2) print}' <<<"$rows")
[ -z "$pending" ] || { cat "$T/list.out" >&2; die "supabase sees pending or unknown versions: $pending"; }

log "supabase db push --dry-run"
supabase_in "$mig" db push --db-url "$url?sslmode=disable" --dry-run >"$T/push.out" 2>&1 || { cat "$T/push.out" >&2; die "supabase db push --dry-run failed"; }
grep -qi "up to date" "$T/push.out" || { cat "$T/push.out" >&2; die "supabase db push would apply something"; }

log "a migration pushed by the Supabase CLI reads as applied"
cat >"$mig/20240401000000_run_notes.sql" <<'SQL'
alter table public.workflow_runs add column note text;
SQL
supabase_in "$mig" db push --db-url "$url?sslmode=disable" --yes >"$T/push2.out" 2>&1 || { cat "$T/push2.out" >&2; die "supabase db push failed"; }
"$MESHDEPLOY_BIN" migrate status --database-url "$url" --dir "$mig" >"$T/status.out" 2>&1 || { cat "$T/status.out" >&2; die "status after supabase push"; }
grep -q '^20240401000000  run_notes  applied' "$T/status.out" || { cat "$T/status.out" >&2; die "file pushed by supabase not seen as applied"; }
grep -q '^0 pending' "$T/status.out" || die "status shows pending files"

log "history rows are the ones the Supabase CLI writes itself"
# The Supabase CLI runs a file as one implicit transaction, so it cannot push
# the CREATE INDEX CONCURRENTLY file: compare the others.
url2=$(new_db sbref)
sbonly="$T/sbonly"; cp -r "$mig" "$sbonly"; rm "$sbonly/20240301000000_runs_status_index.sql"
supabase_in "$sbonly" db push --db-url "$url2?sslmode=disable" --yes >"$T/push3.out" 2>&1 || { cat "$T/push3.out" >&2; die "supabase db push (reference) failed"; }
rows_sql="select version || '|' || name || '|' || md5(statements::text) from supabase_migrations.schema_migrations where version <> '20240301000000' order by version"
ours=$(q "$url" "$rows_sql"); theirs=$(q "$url2" "$rows_sql")
[ "$ours" = "$theirs" ] || die "history differs from the Supabase CLI's: ours=[$ours] theirs=[$theirs]"
expect_eq "$(wc -l <<<"$ours" | tr -d ' ')" 3 "compared rows"
log "ok"
