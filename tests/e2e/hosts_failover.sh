#!/usr/bin/env bash
# Three hosts over ssh behind HAProxy; v2 takes all traffic, then host 3's
# agent is killed (SIGKILL) during the watch window. Expect: the deploy
# fails naming host 3, traffic goes back to v1 on hosts 1 and 2 at once
# (wrk straight at their proxies: 0 failed requests), the deploy waits for
# host 3 (strategy.hosts.rollback_wait); its agent, restarted as systemd
# would, is rolled back too: all three hosts on v1 alone, no orphans. Then
# the same at `deploy --resume` after the controller was kill -9'd in the
# watch: the resume names host 3 and waits for it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ssh.sh"
e2e_init
start_sshd 3
start_front
WATCH=30s STRATEGY_YAML='    hosts: {unreachable_after: 2s, rollback_wait: 60s}' hosts_config
build_app v1
build_app v2

log "deploy v1 to three hosts (watch 30s)"
mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }
for i in 1 2 3; do ssh_expect_only "$i" v1; done

log "v2, then host 3's agent killed after the switch"
wrk_start h1 "http://${SSH_ADDR[1]}:${SSH_PROXY_PORT[1]}/"
wrk_start h2 "http://${SSH_ADDR[2]}:${SSH_PROXY_PORT[2]}/"
wrk_start front "$FRONT_URL" 8 2
sleep 0.5
mdt deploy --version v2 >"$T/deploy-v2.out" 2>&1 &
deploy_pid=$!
wait_for 120 "v2 taking all traffic" grep -q "100% of traffic on v2" "$T/deploy-v2.out"
sleep 1
kill -9 "${SSH_AGENT_PID[3]}"
log "killed host 3's agent (pid ${SSH_AGENT_PID[3]})"
wait_for 60 "the deploy waiting for host 3" grep -q "waiting up to 60s" "$T/deploy-v2.out"
for i in 1 2; do
  expect_eq "$(ssh_proxy_version "$i")" v1 "version served by host $i while host 3 is down"
done
sleep 2
restart_host_agent 3
rc=0
wait "$deploy_pid" || rc=$?
cat "$T/deploy-v2.out" >&2
[ "$rc" -ne 0 ] || die "deploy v2 succeeded although host 3 failed"
grep -q "h3" "$T/deploy-v2.out" || die "the failure does not name host 3"
sleep 0.3
wrk_expect_clean h1
wrk_expect_clean h2
wrk_stop front
log "through the front: $WRK_FAILED of $WRK_REQUESTS failed (host 3 went down under it)"
for i in 1 2 3; do ssh_expect_only "$i" v1; done
expect_journal_complete "$(last_deployment)"
mdt status >"$T/status.out" 2>&1 || { cat "$T/status.out"; die "status failed"; }
for i in 1 2 3; do grep -q "host h$i: v1 live" "$T/status.out" || die "status: $(cat "$T/status.out")"; done

log "v3: the controller killed in the watch, host 3's agent killed, then deploy --resume"
build_app v3
rc=0
MESHDEPLOY_FAULT_KILL_AT=watch:intent mdt deploy --version v3 >"$T/kill-v3.out" 2>&1 || rc=$?
expect_eq "$rc" 137 "exit of the controller killed at watch:intent"
for i in 1 2 3; do expect_eq "$(ssh_proxy_version "$i")" v3 "version served by host $i after the kill"; done
kill -9 "${SSH_AGENT_PID[3]}"
mdt deploy --resume >"$T/resume-v3.out" 2>&1 &
resume_pid=$!
# The resume names the unreachable host and waits for it; the others go
# back to v1 meanwhile.
wait_for 60 "the resume waiting for host 3" grep -q "waiting up to 60s" "$T/resume-v3.out"
grep -q "host h3" "$T/resume-v3.out" || die "the resume does not name host 3: $(cat "$T/resume-v3.out")"
for i in 1 2; do expect_eq "$(ssh_proxy_version "$i")" v1 "version served by host $i while host 3 is down"; done
restart_host_agent 3
rc=0
wait "$resume_pid" || rc=$?
[ "$rc" -ne 0 ] || die "the resume reported success: $(cat "$T/resume-v3.out")"
for i in 1 2 3; do ssh_expect_only "$i" v1; done
expect_journal_complete "$(last_deployment)"
log "ok: host 3 failed after the switch (twice: once under a running deploy, once at resume), every host back on v1"
