#!/usr/bin/env bash
# Scenario: `meshdeploy migrate ... --env ENV` takes the database URL from the
# environment's vault (migrations.database_url_secret), written there by the
# real `secrets set`; $MESHDEPLOY_DATABASE_URL beats the vault and
# --database-url beats both. The password never shows in any output, even
# when the server cannot be reached; a missing secret exits 5 naming the
# secret and the vault, with nothing applied.
. "$(dirname "$0")/lib.sh"
e2e_init
. "$(dirname "$0")/migrate_supabase_compat.sh"

pw="vault-pw-$RANDOM$RANDOM"
with_pw() { sed "s#^postgresql://\([^@:]*\)@#postgresql://\1:$pw@#" <<<"$1"; }  # trust auth ignores it
db_vault=$(new_db vault); db_var=$(new_db var); db_flag=$(new_db flag)
vault_app staging "$(with_pw "$db_vault")"
meshhook_migrations "$T/app/migrations"
mdm() { "$MESHDEPLOY_BIN" migrate "$@" --env staging -c "$T/app/meshdeploy.yml"; }
tables() { q "$1" "select count(*) from pg_tables where schemaname = 'public'"; }
no_password() { ! grep -q -- "$pw" "$@" || die "password printed in $*"; }

log "up --env staging: the vault's URL"
mdm up >"$T/up.out" 2>&1 || { cat "$T/up.out" >&2; die "migrate up --env failed"; }
expect_eq "$(grep -c '^applied ' "$T/up.out")" 3 "files applied through the vault URL"
expect_eq "$(tables "$db_vault")" 3 "tables in the vault's database"
mdm status >"$T/status.out" 2>&1 || die "status --env"
grep -q '^0 pending' "$T/status.out" || { cat "$T/status.out" >&2; die "status after up shows pending files"; }

log "MESHDEPLOY_DATABASE_URL beats the vault"
MESHDEPLOY_DATABASE_URL=$(with_pw "$db_var") mdm up >"$T/var.out" 2>&1 || { cat "$T/var.out" >&2; die "up with the variable"; }
expect_eq "$(tables "$db_var")" 3 "tables in the variable's database"

log "--database-url beats the variable"
MESHDEPLOY_DATABASE_URL=$(with_pw "$db_var") mdm up --database-url "$(with_pw "$db_flag")" >"$T/flag.out" 2>&1 \
  || { cat "$T/flag.out" >&2; die "up with the flag"; }
expect_eq "$(grep -c '^applied ' "$T/flag.out")" 3 "files applied through the flag's URL"
expect_eq "$(tables "$db_flag")" 3 "tables in the flag's database"

log "unreachable server: the error names the URL without the password"
printf '%s' "postgresql://app:$pw@127.0.0.1:$(free_port)/gone?connect_timeout=2" |
  "$MESHDEPLOY_BIN" secrets set --env staging -c "$T/app/meshdeploy.yml" DATABASE_URL
set +e; mdm plan >"$T/down.out" 2>&1; rc=$?; set -e
expect_eq "$rc" 1 "exit code with the server down"
grep -q 'app:\*\*\*@127.0.0.1:[0-9]*/gone' "$T/down.out" || { cat "$T/down.out" >&2; die "error does not name the URL"; }

log "missing secret: exit 5, names the secret and the vault, nothing applied"
"$MESHDEPLOY_BIN" secrets rm --env staging -c "$T/app/meshdeploy.yml" DATABASE_URL >/dev/null
cat >"$T/app/migrations/20240401000000_note.sql" <<'SQL'
alter table public.workflow_runs add column note text;
SQL
set +e; mdm up >"$T/missing.out" 2>&1; rc=$?; set -e
expect_eq "$rc" 5 "exit code without the secret"
grep -q "no secret DATABASE_URL (migrations.database_url_secret) in the staging vault $T/app/.meshdeploy/secrets/staging.vault" "$T/missing.out" \
  || { cat "$T/missing.out" >&2; die "error does not name the secret and the vault"; }
expect_eq "$(q "$db_vault" "select count(*) from supabase_migrations.schema_migrations")" 3 "history rows after the refused run"

no_password "$T"/*.out
log "ok"
