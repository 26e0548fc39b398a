#!/usr/bin/env bash
# A deploy to one host reached over SSH (Debian's sshd on 127.0.0.2, the
# client key in ssh-agent): the artifact goes up through the forwarded agent
# socket, blue-green v1 -> v2 under wrk through that host's proxy, then a
# rollback to v1 from disk under load. Expect: 0 failed requests, one live
# version on the host and no orphans after each, status and logs --host
# through ssh, the ssh master gone after each command.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ssh.sh"
e2e_init
start_sshd 1

# The key in ssh-agent: the config names no key secret.
eval "$(ssh-agent -s -a "$T/ssh/agent.sock")" >/dev/null
track "$SSH_AGENT_PID"
ssh-add -q "$SSH_KEY" 2>/dev/null

PROXY_PORT=$(free_port)  # proxy.listen of the environment: hosts[].listen overrides it
export MESHDEPLOY_KEY_TEST
MESHDEPLOY_KEY_TEST=$(md secrets keygen --env test)
ENV_YAML=$(ssh_env_yaml) WINDOW=0s write_config
build_app v1
build_app v2
url="http://${SSH_ADDR[1]}:${SSH_PROXY_PORT[1]}/"


log "deploy v1 over ssh"
mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }
ssh_expect_only 1 v1
[ -f "${SSH_ROOT[1]}/releases/v1/package.json" ] || [ -d "${SSH_ROOT[1]}/releases/v1" ] ||
  die "v1 is not unpacked in the host's root"
[ -z "$(ls "$T/agent" 2>/dev/null)" ] || die "the environment's local agent root was used: $(ls "$T/agent")"
# WHY the log: the host is this machine, so a path would work too; over ssh
# the artifact must travel through the socket.
grep -q "artifact v1 came by upload" "$T/agent-h1.log" || die "v1 was not uploaded through the socket"

log "blue-green v2 under load through the host's proxy"
wrk_start bg "$url"
sleep 0.5
mdt deploy --version v2 >"$T/deploy-v2.out" 2>&1 || { cat "$T/deploy-v2.out"; die "deploy v2 failed"; }
sleep 0.3
wrk_expect_clean bg
case $WRK_VERSIONS in *v1:*v2:*) ;; *) die "wrk should have seen v1 then v2, saw $WRK_VERSIONS" ;; esac
ssh_expect_only 1 v2
expect_journal_complete "$(last_deployment)"

log "status and logs through ssh"
mdt status >"$T/status.out" 2>&1 || { cat "$T/status.out"; die "status over ssh failed"; }
grep -q "v2 live" "$T/status.out" || die "status: $(cat "$T/status.out")"
mdt logs --host h1 --tail 5 >"$T/logs.out" 2>&1 || { cat "$T/logs.out"; die "logs --host h1 failed"; }
grep -q "web.1" "$T/logs.out" || die "no web.1 line in logs: $(cat "$T/logs.out")"
rc=0
mdt logs --host nope >"$T/logs-nope.out" 2>&1 || rc=$?
[ "$rc" -eq 5 ] && grep -q "no host nope (its hosts: h1)" "$T/logs-nope.out" ||
  die "logs --host nope: exit $rc, $(cat "$T/logs-nope.out")"

log "rollback to v1 (from disk) under load"
wrk_start rb "$url"
mdt rollback >"$T/rollback.out" 2>&1 || { cat "$T/rollback.out"; die "rollback failed"; }
sleep 0.3
wrk_expect_clean rb
ssh_expect_only 1 v1
expect_journal_complete "$(last_deployment)"

# Every command closed its ssh master connection (argv: ... -p PORT -M -N ...).
wait_for 10 "no ssh master to host 1 left running" bash -c "! pgrep -f -- '-p ${SSH_PORT[1]} -[M] -N'"
log "ok: blue-green and rollback over ssh, 0 failed requests"
