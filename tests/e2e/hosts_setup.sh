#!/usr/bin/env bash
# `hosts setup` and `hosts check` on two hosts reached over SSH (Debian's
# sshd on 127.0.0.2-3) that start with no agent, no binary and no unit; each
# host's binary, unit folder and unit name are under $T (the hosts share this
# machine). Expect: the first setup installs the binary (0755, the
# controller's bytes), the unit (0644, naming the host's root and listener)
# and the root (0700), and starts each agent (detached: this machine runs no
# systemd, which the output says), answering with the controller's version;
# the second changes nothing, says so for both hosts, and no file's mtime
# moves; `hosts check` exits 0 with both versions and a clock skew; a
# stopped agent and a changed binary make it exit 1 naming the host; a
# failing step names host and step; setup again repairs both.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ssh.sh"
e2e_init
SSH_NO_AGENT=1 start_sshd 2

# The key in ssh-agent: the config names no key secret.
eval "$(ssh-agent -s -a "$T/ssh/agent.sock")" >/dev/null
track "$SSH_AGENT_PID"
ssh-add -q "$SSH_KEY" 2>/dev/null

PROXY_PORT=$(free_port)
export MESHDEPLOY_KEY_TEST
MESHDEPLOY_KEY_TEST=$(md secrets keygen --env test)
ENV_YAML=$(SSH_SETUP_PATHS=1 ssh_env_yaml) write_config
want=$(md --version | sed 's/^meshdeploy //')
bin() { echo "$T/h$1/bin/meshdeploy"; }
unit() { echo "$T/h$1/units/md-agent-h$1.service"; }
agent_json() { md agent status --root "${SSH_ROOT[$1]}" --json; }
agent_field() { agent_json "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
# WHY not the roots: the running agents write into them.
mtimes() { stat -c '%n %y' "$(bin 1)" "$(bin 2)" "$(unit 1)" "$(unit 2)"; }
expect_in() { grep -qF -- "$2" "$1" || { cat "$1" >&2; die "$3: no '$2' in $1"; }; }
for i in 1 2; do E2E_LOGS="${E2E_LOGS-} ${SSH_ROOT[i]}/agent.log"; done

log "first setup: installs everything on both hosts"
mdt hosts setup >"$T/setup1.out" 2>&1 || { cat "$T/setup1.out"; die "hosts setup failed"; }
cat "$T/setup1.out" >&2
for i in 1 2; do
  expect_in "$T/setup1.out" "h$i: changed: installed binary $(bin "$i")" "setup 1"
  expect_in "$T/setup1.out" "wrote unit $(unit "$i")" "setup 1"
  expect_in "$T/setup1.out" "created root ${SSH_ROOT[i]} (0700" "setup 1"
  expect_in "$T/setup1.out" "started the agent (detached); agent answering $want" "setup 1"
  expect_in "$T/setup1.out" "h$i: note: systemd is not running there" "setup 1"
  expect_eq "$(stat -c %a "$(bin "$i")")" 755 "mode of host $i's binary"
  cmp -s "$(bin "$i")" "$MESHDEPLOY_BIN" || die "host $i's binary is not the controller's"
  expect_eq "$(stat -c %a "$(unit "$i")")" 644 "mode of host $i's unit"
  expect_eq "$(stat -c %a "${SSH_ROOT[i]}")" 700 "mode of host $i's agent root"
  expect_in "$(unit "$i")" "ExecStart=$(bin "$i") agent run --root ${SSH_ROOT[i]} --listen ${SSH_ADDR[i]}:${SSH_PROXY_PORT[i]}" "unit $i"
  expect_in "$(unit "$i")" "Restart=on-failure" "unit $i"
  expect_in "$(unit "$i")" "KillMode=process" "unit $i"
  expect_eq "$(agent_field "$i" agent_version)" "$want" "version of host $i's agent"
  expect_eq "$(readlink "/proc/$(agent_field "$i" pid)/exe")" "$(bin "$i")" "host $i's agent's binary"
done
pids_before="$(agent_field 1 pid) $(agent_field 2 pid)"
mtimes_before=$(mtimes)

log "second setup: changes nothing"
mdt hosts setup >"$T/setup2.out" 2>&1 || { cat "$T/setup2.out"; die "hosts setup (again) failed"; }
cat "$T/setup2.out" >&2
for i in 1 2; do
  expect_in "$T/setup2.out" "h$i: unchanged (binary $want sha256 " "setup 2"
  expect_in "$T/setup2.out" ", unit, root, agent answering $want)" "setup 2"
done
! grep -q "changed:" "$T/setup2.out" || die "the second setup changed something: $(cat "$T/setup2.out")"
expect_eq "$(mtimes)" "$mtimes_before" "mtimes after the second setup"
expect_eq "$(agent_field 1 pid) $(agent_field 2 pid)" "$pids_before" "agent pids after the second setup"

log "check: both hosts fine"
mdt hosts check >"$T/check1.out" 2>&1 || { cat "$T/check1.out"; die "hosts check failed on fine hosts"; }
cat "$T/check1.out" >&2
for i in 1 2; do
  grep -qE "^h$i +yes \(rtt [0-9]+ ms\) +verified +$(printf '%s' "$want" | sed 's/[().]/\\&/g') +[+-][0-9]+\.[0-9]{3} s ±[0-9.]+ +.*(ok|warning)$" "$T/check1.out" ||
    die "check row of h$i: $(cat "$T/check1.out")"
done
mdt hosts check --json >"$T/check1.json" || die "hosts check --json failed on fine hosts"
python3 - "$want" "$T/check1.json" <<'PY' || die "check --json: $(cat "$T/check1.json")"
import json, sys
want, j = sys.argv[1], json.load(open(sys.argv[2]))
assert j["ok"] is True and j["version"] == want, j
assert [h["name"] for h in j["hosts"]] == ["h1", "h2"], j
for h in j["hosts"]:
    assert h["reachable"] and h["host_key_verified"] and h["agent_version"] == want, h
    assert abs(h["skew_s"]) - h["skew_error_s"] < 1 and h["disk_free_bytes"] > 0 and 0 < h["disk_free_percent"] <= 100, h
    assert h["problems"] == [], h
PY

log "check: h2's agent stopped, h1's binary changed"
md agent stop --root "${SSH_ROOT[2]}" >/dev/null
wait_for 10 "h2's agent to stop" bash -c "! '$MESHDEPLOY_BIN' agent status --root '${SSH_ROOT[2]}'"
# WHY a copy renamed over it: the running agent's executable cannot be written.
cp "$(bin 1)" "$T/changed" && printf '\n# changed\n' >>"$T/changed" && mv -f "$T/changed" "$(bin 1)"
rc=0
mdt hosts check >"$T/check2.out" 2>"$T/check2.err" || rc=$?
cat "$T/check2.out" "$T/check2.err" >&2
expect_eq "$rc" 1 "exit code of hosts check with problems"
expect_in "$T/check2.out" "h2: problem: no agent answers" "check 2"
expect_in "$T/check2.out" "h1: problem: $(bin 1) differs from the controller's binary" "check 2"
expect_in "$T/check2.err" "problems on h1, h2" "check 2"
mdt hosts check --json >"$T/check2.json" && die "hosts check --json exited 0 with problems"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["ok"] is False' "$T/check2.json" ||
  die "check --json: $(cat "$T/check2.json")"

log "setup with a failing step names the host and the step"
rm -rf "$T/h2/units" && touch "$T/h2/units"  # the unit's folder is a file now
mdt hosts setup >"$T/setup3.out" 2>&1 && die "hosts setup succeeded with h2's unit folder a file"
cat "$T/setup3.out" >&2
expect_in "$T/setup3.out" "h2: failed at step 'write unit'" "setup 3"
expect_in "$T/setup3.out" "hosts setup failed on h2 (write unit)" "setup 3"
# h1 is repaired all the same: hosts are set up independently.
expect_in "$T/setup3.out" "h1: changed: installed binary $(bin 1) (sha256 " "setup 3"
expect_in "$T/setup3.out" "restarted the agent (agent restart); agent answering $want" "setup 3"
cmp -s "$(bin 1)" "$MESHDEPLOY_BIN" || die "host 1's binary was not reinstalled"
rm -f "$T/h2/units"

log "setup repairs h2"
mdt hosts setup >"$T/setup4.out" 2>&1 || { cat "$T/setup4.out"; die "hosts setup (repair) failed"; }
cat "$T/setup4.out" >&2
expect_in "$T/setup4.out" "h1: unchanged" "setup 4"
expect_in "$T/setup4.out" "h2: changed: wrote unit $(unit 2), started the agent (detached)" "setup 4"
mdt hosts check >"$T/check3.out" 2>&1 || { cat "$T/check3.out"; die "hosts check after the repair"; }
log "ok"
