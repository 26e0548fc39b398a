#!/usr/bin/env bash
# An environment of three hosts reached over ssh (three Debian sshd on
# 127.0.0.2-4, an agent each), HAProxy in front of their proxies, wrk
# through the front. Expect:
# - blue-green v1 -> v2 and a canary v2 -> v3 across all three: 0 failed
#   requests, every host on the new release alone, the spread reported and
#   each host's steps in the journal, the hosts named in status and history;
# - v4 never healthy on host 2: the deploy fails naming host 2, and nothing
#   moved on hosts 1 and 3 (still v3 alone), 0 failed requests;
# - host 3's key unknown: refused before anything moves on any host.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ssh.sh"
e2e_init
start_sshd 3
start_front
CANARY_STEPS='[{weight: 34, pause: 1s}, {weight: 100}]'
hosts_config
build_app v1
build_app v2
build_app v3
build_app v4 --behave MESHHOOK_HEALTH_FAIL_IF=../../sick

expect_all() {
  local i
  for i in 1 2 3; do ssh_expect_only "$i" "$1"; done
}

log "deploy v1 to three hosts"
mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }
expect_all v1
for i in 1 2 3; do
  grep -q "artifact v1 came by upload" "$T/agent-h$i.log" || die "v1 was not uploaded to host $i"
done

log "blue-green v2 under load through the front"
wrk_start bg "$FRONT_URL" 8 2
sleep 0.5
mdt deploy --version v2 >"$T/deploy-v2.out" 2>&1 || { cat "$T/deploy-v2.out"; die "deploy v2 failed"; }
sleep 0.3
wrk_expect_clean bg
case $WRK_VERSIONS in *v1:*v2:*) ;; *) die "wrk should have seen v1 then v2, saw $WRK_VERSIONS" ;; esac
expect_all v2
grep -q "spread [0-9]* ms across 3 hosts" "$T/deploy-v2.out" || die "no switch spread reported: $(cat "$T/deploy-v2.out")"
grep -q "on hosts h1, h2, h3" "$T/deploy-v2.out" || die "the summary does not name the hosts: $(tail -3 "$T/deploy-v2.out")"
id=$(last_deployment)
expect_journal_complete "$id"
mdt history --id "$id" --json >"$T/journal-v2.json"
python3 - "$T/journal-v2.json" <<'PY' || die "the journal does not record each host's steps: $(cat "$T/journal-v2.json")"
import json, sys
j = json.load(open(sys.argv[1]))
entries = j["journal"] if "journal" in j else j["entries"]
def detail(e):
    d = e.get("detail")
    return json.loads(d) if isinstance(d, str) else (d or {})
steps = {e["step"]: detail(e) for e in entries if e["phase"] == "outcome"}
for step in ("ship", "start_new", "shift_traffic"):
    hosts = steps[step].get("hosts", {})
    assert sorted(hosts) == ["h1", "h2", "h3"], (step, hosts)
    assert all(" ok" in v for v in hosts.values()), (step, hosts)
assert "spread_ms" in steps["shift_traffic"], steps["shift_traffic"]
PY

log "status names each host"
mdt status >"$T/status.out" 2>&1 || { cat "$T/status.out"; die "status failed"; }
for i in 1 2 3; do grep -q "host h$i: v2 live" "$T/status.out" || die "status: $(cat "$T/status.out")"; done
mdt history -n 1 >"$T/history.out" 2>&1 || { cat "$T/history.out"; die "history failed"; }
grep -q "hosts: h1, h2, h3" "$T/history.out" || die "history does not name the hosts: $(cat "$T/history.out")"

log "canary v3 across three hosts under load through the front"
STRATEGY=canary hosts_config
wrk_start canary "$FRONT_URL" 8 2
sleep 0.5
mdt deploy --version v3 >"$T/deploy-v3.out" 2>&1 || { cat "$T/deploy-v3.out"; die "canary v3 failed"; }
sleep 0.3
wrk_expect_clean canary
expect_all v3
grep -q "34% of traffic on v3" "$T/deploy-v3.out" || die "no canary step: $(cat "$T/deploy-v3.out")"
expect_journal_complete "$(last_deployment)"

log "v4 never healthy on host 2: nothing moves anywhere"
STRATEGY=blue_green hosts_config
touch "${SSH_ROOT[2]}/sick"
wrk_start sick "$FRONT_URL" 8 2
sleep 0.5
rc=0
mdt deploy --version v4 >"$T/deploy-v4.out" 2>&1 || rc=$?
sleep 0.3
wrk_expect_clean sick
[ "$rc" -ne 0 ] || die "deploy v4 succeeded with host 2 unhealthy: $(cat "$T/deploy-v4.out")"
grep -q "host h2: 0/2 web healthy" "$T/deploy-v4.out" || die "the failure does not name host 2: $(cat "$T/deploy-v4.out")"
case $WRK_VERSIONS in *v4*) die "v4 took traffic: $WRK_VERSIONS" ;; esac
! grep -q "shift_traffic" <(mdt history --id "$(last_deployment)") || die "traffic moved: $(mdt history --id "$(last_deployment)")"
expect_all v3
expect_journal_complete "$(last_deployment)"
rm -f "${SSH_ROOT[2]}/sick"

log "an unknown host key on host 3: refused before anything moves"
cp "$SSH_KNOWN_HOSTS" "$T/ssh/known_hosts.all"
grep -v "^\[${SSH_ADDR[3]}\]" "$T/ssh/known_hosts.all" >"$SSH_KNOWN_HOSTS"
rc=0
mdt deploy --version v2 >"$T/deploy-key.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || die "deploy with host 3's key unknown succeeded"
grep -q "h3" "$T/deploy-key.out" && grep -qi "host key" "$T/deploy-key.out" ||
  die "the refusal does not name host 3's key: $(cat "$T/deploy-key.out")"
cp "$T/ssh/known_hosts.all" "$SSH_KNOWN_HOSTS"
expect_all v3
log "ok: three hosts, blue-green and canary with 0 failed requests, all or none"
