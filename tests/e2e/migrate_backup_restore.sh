#!/usr/bin/env bash
# Scenario: with migrations.backup on, a production run first writes a
# pg_dump -Fc into migrations.backup_dir (mode 0600, the folder 0700); after
# a table is dropped, `meshdeploy migrate restore` brings the table and its
# rows back, and the history with them (the file applied after the backup
# is pending again and re-applies). A backup that cannot be written stops
# the run with nothing applied; a non-production environment takes none.
. "$(dirname "$0")/lib.sh"
e2e_init
. "$(dirname "$0")/migrate_supabase_compat.sh"

url=$(new_db backup)
vault_app production "$url" "      backup: true
      backup_dir: dumps/pre-migrate"
meshhook_migrations "$T/app/migrations"
cfg="$T/app/meshdeploy.yml"
dumps="$T/app/dumps/pre-migrate"
mdm() { "$MESHDEPLOY_BIN" migrate "$@" --env production -c "$cfg"; }
mode() { stat -c %a "$1"; }

log "first up: backup of the empty database, then 3 files"
mdm up >"$T/up1.out" 2>&1 || { cat "$T/up1.out" >&2; die "first up"; }
expect_eq "$(grep -c '^applied ' "$T/up1.out")" 3 "files applied"
expect_eq "$(ls "$dumps" | wc -l)" 1 "dumps after the first run"

q "$url" "insert into public.workflows (owner_id, name) select gen_random_uuid(), 'wf' || g from generate_series(1, 5) g;
          insert into public.webhooks (workflow_id, path) select id, '/hook/' || name from public.workflows;
          insert into public.workflow_runs (workflow_id) select id from public.workflows, generate_series(1, 40)" >/dev/null
hooks_before=$(q "$url" "select string_agg(path || ':' || secret, ',' order by path) from public.webhooks")

log "second up: a new file, backup first"
cat >"$T/app/migrations/20240401000000_run_notes.sql" <<'SQL'
alter table public.workflow_runs add column note text;
SQL
mdm up >"$T/up2.out" 2>&1 || { cat "$T/up2.out" >&2; die "second up"; }
dump=$(sed -n 's/^backup: //p' "$T/up2.out")
[ -n "$dump" ] || { cat "$T/up2.out" >&2; die "up does not name its backup"; }
[ "$(dirname "$dump")" = "$dumps" ] || die "backup $dump is not in the configured $dumps"
[[ $(basename "$dump") =~ ^pre-migrate-[0-9]{8}T[0-9]{6}\.[0-9]{3}Z\.dump$ ]] || die "backup name $dump"
[ -s "$dump" ] || die "backup $dump is empty"
expect_eq "$(mode "$dump")" 600 "mode of the backup"
expect_eq "$(mode "$dumps")" 700 "mode of the backup folder"
expect_eq "$(ls "$dumps" | wc -l)" 2 "dumps after the second run (none replaced, no .partial left)"
pg_restore -l "$dump" | grep -q 'TABLE DATA public webhooks' || die "backup lacks the webhooks rows"

log "drop a table, restore"
q "$url" "drop table public.webhooks; update public.workflows set name = 'changed'" >/dev/null
mdm restore "$dump" >"$T/restore.out" 2>&1 || { cat "$T/restore.out" >&2; die "restore"; }
expect_eq "$(q "$url" "select string_agg(path || ':' || secret, ',' order by path) from public.webhooks")" "$hooks_before" "webhooks rows after restore"
expect_eq "$(q "$url" "select count(*) from public.workflows where name like 'wf%'")" 5 "workflows rows after restore"
expect_eq "$(q "$url" "select count(*) from public.workflow_runs")" 200 "runs after restore"
expect_eq "$(q "$url" "select count(*) from pg_constraint where conrelid = 'public.webhooks'::regclass and contype = 'f'")" 1 "foreign key of webhooks after restore"
mdm status >"$T/status.out" 2>&1 || true
grep -q '^20240401000000  run_notes  pending' "$T/status.out" || { cat "$T/status.out" >&2; die "the file applied after the backup is not pending again"; }
mdm up >"$T/up3.out" 2>&1 || { cat "$T/up3.out" >&2; die "up after restore"; }
expect_eq "$(grep -c '^applied ' "$T/up3.out")" 1 "files re-applied after restore"

log "a backup that cannot be written stops the run before anything is applied"
cat >"$T/app/migrations/20240501000000_run_owner.sql" <<'SQL'
alter table public.workflow_runs add column owner text;
SQL
sed -i 's#backup_dir: dumps/pre-migrate#backup_dir: blocked/dumps#' "$cfg"
: >"$T/app/blocked"   # a file where the folder should be
set +e; mdm up >"$T/up4.out" 2>&1; rc=$?; set -e
[ "$rc" -ne 0 ] || die "up went on without its backup"
grep -q 'backup before migrating' "$T/up4.out" || { cat "$T/up4.out" >&2; die "error does not say the backup failed"; }
expect_eq "$(q "$url" "select count(*) from information_schema.columns where table_name = 'workflow_runs' and column_name = 'owner'")" 0 "columns added without a backup"

log "restore of a damaged file: refused, nothing changed"
head -c 2000 "$dump" >"$T/cut.dump"
set +e; mdm restore "$T/cut.dump" >"$T/cut.out" 2>&1; rc=$?; set -e
[ "$rc" -ne 0 ] || die "restore of a truncated dump succeeded"
expect_eq "$(q "$url" "select count(*) from public.webhooks")" 5 "webhooks after the refused restore"

log "staging (not production) takes no backup"
url2=$(new_db backup_staging)
vault_app staging "$url2" "      backup: true
      backup_dir: dumps/staging"
meshhook_migrations "$T/app/migrations"
"$MESHDEPLOY_BIN" migrate up --env staging -c "$cfg" >"$T/staging.out" 2>&1 || { cat "$T/staging.out" >&2; die "staging up"; }
[ ! -e "$T/app/dumps/staging" ] || die "staging run wrote a backup"
log "ok"
