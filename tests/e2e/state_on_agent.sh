#!/usr/bin/env bash
# `state: agent`: two controllers in two working directories (no shared
# .meshdeploy/) share the store the host's agent serves — one lock (the
# second deploy is refused naming the first), one history, and one resumes
# the deploy the other left when it was killed (kill -9). An unreachable
# agent is named. STATE_HOST=ssh (state_on_agent_ssh.sh): the host is
# reached over ssh and `state:` is not written (the default with ssh hosts).
. "$(dirname "$0")/lib.sh"
[ "${STATE_HOST:-local}" = ssh ] && . "$(dirname "$0")/lib_ssh.sh"
e2e_init
PROXY_PORT=$(free_port)
export MESHDEPLOY_LOCK_TTL_MS=1000
# Every deploy waits in its pre_deploy hook until $T/go exists: it holds the
# lock meanwhile.
hooks="    timeout: 60s
    pre_deploy: while [ ! -e $T/go ]; do sleep 0.05; done"
if [ "${STATE_HOST:-local}" = ssh ]; then
  start_sshd 1
  eval "$(ssh-agent -s -a "$T/ssh/agent.sock")" >/dev/null
  track "$SSH_AGENT_PID"
  ssh-add -q "$SSH_KEY" 2>/dev/null
  HOOKS=$hooks ENV_YAML=$(ssh_env_yaml) write_config
  where="agent of h1, the default with ssh hosts (${SSH_ROOT[1]}/state.db)"
  only() { ssh_expect_only 1 "$1"; }
  only_quietly() { ssh_expect_only_quietly 1 "$1"; }
  state_agent_pid() { echo "${SSH_AGENT_PID[1]}"; }
  host=h1
else
  HOOKS=$hooks write_config
  sed -i 's/^  keep_releases: 3$/  keep_releases: 3\n  state: agent/' "$T/app/meshdeploy.yml"
  grep -q '^  state: agent$' "$T/app/meshdeploy.yml" || die "state: agent not written"
  where="agent of local ($T/agent/state.db)"
  only() { expect_only "$1"; }
  only_quietly() { expect_only_quietly "$1"; }
  state_agent_pid() { echo "$AGENT_PID"; }
  host=local
fi
# The second controller: another directory, its own copy of the config.
mkdir -p "$T/other"
cp "$T/app/meshdeploy.yml" "$T/other/meshdeploy.yml"
ln -s "$T/app/dist" "$T/other/dist"
other() { (cd "$T/other" && "$MESHDEPLOY_BIN" "$@" -c "$T/other/meshdeploy.yml" --env test); }
build_app v1
build_app v2
build_app v3
[ "${STATE_HOST:-local}" = ssh ] || start_agent

touch "$T/go"
mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }
other history --json -n 1 | grep -q '"version": "v1"' || die "the other controller does not see v1: $(other history)"
other status >"$T/status.out" || die "status from the other directory failed"
grep -qF "state: $where" "$T/status.out" ||
  die "status does not say where the state lives: $(cat "$T/status.out")"

log "one lock: a deploy from the other directory is refused, naming the holder"
rm "$T/go"
mdt deploy --version v2 >"$T/deploy-v2.out" 2>&1 &
first=$!
wait_for 30 "the first deploy to hold the lock" bash -c "'$MESHDEPLOY_BIN' status -c '$T/other/meshdeploy.yml' --env test | grep -q 'lock held by'"
rc=0
other deploy --version v3 >"$T/deploy-v3.out" 2>&1 || rc=$?
expect_eq "$rc" 3 "exit code of the deploy refused by the other's lock"
holder=$(sed -n 's/.*locked by .* pid \([0-9]*\) (deployment d-.*/\1/p' "$T/deploy-v3.out" | head -1)
[ -n "$holder" ] || die "the refusal does not name the holder: $(cat "$T/deploy-v3.out")"
[ "$holder" = "$first" ] || [ "$(ps -o ppid= -p "$holder" | tr -d ' ')" = "$first" ] ||
  die "the refusal names pid $holder, not the first deploy ($first)"
touch "$T/go"
wait "$first" || { cat "$T/deploy-v2.out"; die "the first deploy failed"; }
only v2

log "one journal: the other directory resumes a deploy killed mid-way"
rc=0
MESHDEPLOY_FAULT_KILL_AT=shift_traffic:outcome mdt deploy --version v3 >"$T/kill-v3.out" 2>&1 || rc=$?
expect_eq "$rc" 137 "exit of the controller killed after shift_traffic"
dead=$(other history --json -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
other history --id "$dead" --json | grep -q '"status": "running"' || die "$dead is not left running"
other deploy --resume >"$T/resume.out" 2>&1 || { cat "$T/resume.out"; die "resume from the other directory failed"; }
wait_for 30 "v3 alone" only_quietly v3
only v3
expect_journal_complete "$dead"
[ ! -e "$T/app/.meshdeploy/state.db" ] && [ ! -e "$T/other/.meshdeploy/state.db" ] ||
  die "a controller kept a state file of its own"

log "the agent gone: commands name it"
pid=$(state_agent_pid)
kill "$pid"
wait_for 20 "the agent to stop" bash -c "! kill -0 $pid 2>/dev/null"
rc=0
other history >"$T/history-down.out" 2>&1 || rc=$?
expect_eq "$rc" 1 "exit of history with the state's agent down"
grep -q "state store on the agent of $host" "$T/history-down.out" ||
  die "the error does not name the host: $(cat "$T/history-down.out")"
log "ok"
