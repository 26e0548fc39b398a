#!/usr/bin/env bash
# Two deploys to one environment at once: the second is refused with exit 3
# naming who holds the lock, and changes nothing. Then `promote` ends the
# first deploy's watch window early and it finishes.
. "$(dirname "$0")/lib.sh"
e2e_init
PROXY_PORT=$(free_port)
WATCH=60s write_config
build_app v1
build_app v2
build_app v3
build_app v4
start_agent
mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }

MESHDEPLOY_ACTOR=first-deployer mdt deploy --version v2 >"$T/deploy-v2.out" 2>&1 &
first=$!
# WHY the watch: a deploy holds the lock until it returns, and a 60 s watch
# window keeps it there (the rollback window no longer does: the agent keeps
# the old release warm after the deploy returned).
watching='100% \(pass\|inconclusive\)'
wait_for 30 "the first deploy to hold the lock" bash -c "grep -q '$watching' '$T/deploy-v2.out'"
rc=0
MESHDEPLOY_ACTOR=second-deployer mdt deploy --version v3 >"$T/deploy-v3.out" 2>&1 || rc=$?
expect_eq "$rc" 3 "exit code of the refused deploy"
# The holder is the first deploy's meshdeploy process: $first itself, or
# its child when bash forked a subshell for the backgrounded function.
holder=$(sed -n 's/.*locked by .* pid \([0-9]*\) (deployment d-.*/\1/p' "$T/deploy-v3.out" | head -1)
[ -n "$holder" ] || die "the refusal does not name the holder: $(cat "$T/deploy-v3.out")"
[ "$holder" = "$first" ] || [ "$(ps -o ppid= -p "$holder" | tr -d ' ')" = "$first" ] ||
  die "the refusal names pid $holder, not the first deploy ($first)"
[ -z "$(release_pids v3)" ] || die "the refused deploy started v3"
mdt status >"$T/status.out"
grep -q "lock held by" "$T/status.out" || die "status does not show the lock: $(cat "$T/status.out")"

mdt promote >"$T/promote.out" 2>&1 || { cat "$T/promote.out"; die "promote failed"; }
grep -q "took the promote request" "$T/promote.out" || die "promote not taken: $(cat "$T/promote.out")"
wait "$first" || { cat "$T/deploy-v2.out"; die "the first deploy failed"; }
grep -q "promoted by" "$T/deploy-v2.out" || die "the watch did not end by promote: $(cat "$T/deploy-v2.out")"
expect_only v2
rc=0
mdt promote >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 5 "promote with nothing running"

log "a race: v3 and v4 started at the same moment"
mdt deploy --version v3 >"$T/race-v3.out" 2>&1 &
a=$!
mdt deploy --version v4 >"$T/race-v4.out" 2>&1 &
b=$!
# The loser exits 3 at once; the winner waits in its watch window.
wait_for 30 "one of the two to be refused" bash -c "! kill -0 $a 2>/dev/null || ! kill -0 $b 2>/dev/null"
if ! kill -0 "$a" 2>/dev/null; then loser=$a winner=$b lv=v3 wv=v4; else loser=$b winner=$a lv=v4 wv=v3; fi
rc=0
wait "$loser" || rc=$?
expect_eq "$rc" 3 "exit code of the deploy that lost the race ($lv)"
wait_for 30 "the winner to watch" bash -c "grep -q '$watching' '$T/race-$wv.out'"
mdt promote >/dev/null
wait "$winner" || die "the winner ($wv) failed: $(cat "$T/race-$wv.out")"
expect_only "$wv"
