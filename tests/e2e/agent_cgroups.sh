#!/usr/bin/env bash
# Scenario: each release process runs in a cgroup of its own, so a stop
# reaches the daemons its start script left behind — one that left the
# process group with `setsid`, one that also cleared its environment
# (`env -i`: no mark of the agent's root). A crashed web process (kill -9)
# is restarted in a new cgroup and lives, its old run's daemons killed; an
# agent killed and restarted still stops the release through its cgroups.
# Needs a writable cgroup v2 hierarchy (root, or a delegated cgroup).
AGENT_E2E_LIB_ONLY=1 . "$(dirname "${BASH_SOURCE[0]}")/agent_lifecycle.sh"
E2E_NAME=agent_cgroups

e2e_init
PORT=$(free_port)
ROOT="$T/root"
SOCK="$ROOT/agent.sock"

agent_start 1
containment=$("$MESHDEPLOY_BIN" agent status --root "$ROOT" | sed -n "s/^  a release's stop reaches: //p")
case $containment in
  "cgroup v2 ("*) log "containment: $containment" ;;
  *) die "agent status does not say cgroup v2: '$containment'" ;;
esac
expect_eq "$(api GET /v1/agent/status | jq -r .containment)" "$containment" "containment in JSON"

# Pids of the `sleep` daemons of VERSION (cwd under its release directory).
daemons_of() {
  local p
  for p in $(e2e_pids_under "$ROOT/releases/$1"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sleep ] && echo "$p"
  done
}
# The cgroup v2 path of PID ("" once it is gone).
cgroup_of() { sed -n 's/^0:://p' "/proc/$1/cgroup" 2>/dev/null || true; }
count_at_least() { [ "$(daemons_of "$1" | wc -l)" -ge "$2" ]; }
# True when none of the PIDs runs (a zombie waiting for init to reap it is dead).
all_dead() {
  local p
  for p in "$@"; do
    case $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) in "" | Z | X) ;; *) return 1 ;; esac
  done
}

log "v1: each web process starts a setsid daemon and an env -i setsid daemon"
WEB_COMMAND="setsid sleep 1000 & env -i setsid sh -c 'sleep 1000' & exec node server.js" \
  deploy_release v1 all 2 0
api_ok POST /v1/agent/route '{"weights":{"v1":100}}' >/dev/null
wait_for 20 "four daemons of v1" count_at_least v1 4
mapfile -t v1_daemons < <(daemons_of v1)
webs=" $(pid_of v1 web.1) $(pid_of v1 web.2) "  # each leads its own session
for p in "${v1_daemons[@]}"; do
  case $webs in *" $(awk '{print $6}' "/proc/$p/stat") "*) die "daemon $p is in a web process's session" ;; esac
  case $(cgroup_of "$p") in
    */v1/web.[12]-[0-9]*) ;;
    *) die "daemon $p is in cgroup '$(cgroup_of "$p")', not one of v1's" ;;
  esac
done
unmarked=0
for p in "${v1_daemons[@]}"; do
  tr '\0' '\n' <"/proc/$p/environ" | grep -q '^MESHDEPLOY_AGENT_ROOT=' || unmarked=$((unmarked + 1))
done
[ "$unmarked" -ge 2 ] || die "expected the env -i daemons without the root's mark ($unmarked)"

log "kill -9 of v1/web.1: restarted in a new cgroup, and it lives"
web1=$(pid_of v1 web.1)
web1_cg=$(cgroup_of "$web1")
mapfile -t web1_daemons < <(for p in "${v1_daemons[@]}"; do [ "$(cgroup_of "$p")" = "$web1_cg" ] && echo "$p"; done)
[ "${#web1_daemons[@]}" -ge 2 ] || die "v1/web.1 ($web1_cg) has ${#web1_daemons[@]} daemons"
kill -9 "$web1"
web1_back() { [ "$(proc_field v1 web.1 state) $(proc_field v1 web.1 restarts)" = "running 1" ]; }
wait_for 20 "v1/web.1 restarted and healthy" web1_back
new_web1=$(pid_of v1 web.1)
[ "$new_web1" != "$web1" ] || die "v1/web.1 has its old pid"
all_dead "$new_web1" && die "the restarted v1/web.1 died"
new_cg=$(cgroup_of "$new_web1")
[ -n "$new_cg" ] && [ "$new_cg" != "$web1_cg" ] || die "restart in cgroup '$new_cg' (crashed run: $web1_cg)"
wait_for 10 "the crashed run's daemons to be killed" all_dead "${web1_daemons[@]}"
expect_eq "$(versions_seen 20)" "v1 " "versions served after the crash"
wait_for 20 "the restarted run's daemons" count_at_least v1 4
mapfile -t v1_daemons < <(daemons_of v1)

log "kill -9 of the agent, a new one re-adopts v1"
kill -9 "$AGENT_PID"
wait_for 5 "the agent to die" sh -c "! kill -0 $AGENT_PID 2>/dev/null"
agent_start 2
expect_eq "$(proc_field v1 web.1 pid)" "$new_web1" "v1/web.1 re-adopted"
expect_eq "$(proc_field v1 web.1 adopted)" true "v1/web.1 adopted"

log "v2 takes the traffic; stopping v1 stops every process it started"
deploy_release v2 all 1 0
api_ok POST /v1/agent/route '{"weights":{"v2":100}}' >/dev/null
api_ok POST /v1/agent/stop '{"version":"v1","wait":true}' >/dev/null
v1_gone() { [ -z "$(e2e_pids_under "$ROOT/releases/v1")" ]; }
wait_for 20 "no process of v1 left" v1_gone
wait_for 10 "v1's daemons (${v1_daemons[*]}) to be gone" all_dead "${v1_daemons[@]}"
tree=${containment#cgroup v2 (}
tree=${tree%)}
wait_for 10 "v1's cgroups to be removed" sh -c "[ ! -e '$tree/v1' ]"
[ -d "$tree/v2" ] || die "v2 has no cgroup under $tree"
expect_eq "$(versions_seen 10)" "v2 " "versions served after v1's stop"

expect_stop_all_leaves_nothing
wait_for 10 "v2's cgroups to be removed" sh -c "[ ! -e '$tree/v2' ]"
