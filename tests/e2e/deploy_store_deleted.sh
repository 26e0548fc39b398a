#!/usr/bin/env bash
# The state store is deleted while a deploy watches its new release at 100%.
# Expect: the deploy fails (never "succeeded" with its records gone), says
# what the host serves, and saves the store's records; put back, the deploy
# resumes to its end. A zero-length store is then refused, never reset.
. "$(dirname "$0")/lib.sh"
e2e_init
PROXY_PORT=$(free_port)
WATCH=6s write_config
build_app v1
build_app v2
start_agent
store=$T/app/.meshdeploy/state.db
mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }
expect_eq "$(stat -c %a "$store")" 600 "mode of state.db"

mdt deploy --version v2 >"$T/deploy-v2.out" 2>&1 &
deploy_pid=$!
wait_for 60 "v2 to take the traffic" bash -c "[ \"\$(curl -s --max-time 2 http://127.0.0.1:$PROXY_PORT/ | sed -n 's/.*\"version\":\"\([^\"]*\)\".*/\1/p')\" = v2 ]"
rm -f "$store"
rc=0
wait "$deploy_pid" || rc=$?
[ "$rc" -ne 0 ] || die "the deploy reported success with its store deleted: $(cat "$T/deploy-v2.out")"
grep -q "was deleted or replaced" "$T/deploy-v2.out" || die "no store message: $(cat "$T/deploy-v2.out")"
grep -q "traffic HAD moved to v2" "$T/deploy-v2.out" || die "does not say traffic moved: $(cat "$T/deploy-v2.out")"
grep -q "traffic v2 100%" "$T/deploy-v2.out" || die "does not say what the host serves: $(cat "$T/deploy-v2.out")"
saved=$(ls "$store".recovered-* 2>/dev/null | head -1)
[ -n "$saved" ] || die "no recovered copy: $(ls -la "$T/app/.meshdeploy")"
expect_eq "$(stat -c %a "$saved")" 600 "mode of the recovered copy"

# With no store, a new deploy is refused (the leftover -wal), not started afresh.
if [ -s "$store-wal" ]; then
  rc=0; mdt history >"$T/history-missing.out" 2>&1 || rc=$?
  [ "$rc" -ne 0 ] || die "a missing store with its -wal left was taken for a new one"
fi
rm -f "$store-wal" "$store-shm"
mv "$saved" "$store"
mdt deploy --resume >"$T/resume.out" 2>&1 || { cat "$T/resume.out"; die "resume failed"; }
expect_only v2
mdt history >"$T/history.out"
[ "$(grep -c ' succeeded ' "$T/history.out")" -eq 2 ] || die "history: $(cat "$T/history.out")"

# A truncated store is refused with a hint, and left as it is.
cp "$store" "$T/store.bak"
: >"$store"
rc=0
mdt history >"$T/history-empty.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || die "a zero-length store was taken for a new one"
grep -q "is empty (0 bytes)" "$T/history-empty.out" || die "no hint: $(cat "$T/history-empty.out")"
expect_eq "$(stat -c %s "$store")" 0 "size of the refused store"
log "ok: deletion caught after the switch, records saved and resumed; empty store refused"
