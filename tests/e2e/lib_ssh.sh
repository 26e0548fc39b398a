#!/usr/bin/env bash
# Hosts reached over SSH for the scenario tests. Source it after lib.sh:
#   . "$(dirname "$0")/lib.sh"; . "$(dirname "$0")/lib_ssh.sh"; e2e_init; start_sshd 3
# start_sshd N makes N "hosts" on this machine, host i (1..N) on 127.0.0.(i+1):
# Debian's sshd as root (key auth only, its own host key, authorized_keys and
# pid file under $T/ssh), and a meshdeploy agent (root $T/h<i>/agent, proxy
# on 127.0.0.(i+1):SSH_PROXY_PORT[i]). One client key for all; a known_hosts
# file naming every host. Everything stops at exit (tracked by lib.sh).
# Exits 77 (ctest SKIP) only when sshd cannot run here (not root, not installed).
# SSH_NO_AGENT=1 start_sshd N: sshd only, no agent and no agent root (for
# `hosts setup`, which installs and starts them).
#
# Sets (arrays indexed 1..N):
#   SSH_N                  the number of hosts
#   SSH_ADDR[i]            127.0.0.(i+1)
#   SSH_PORT[i]            sshd's port
#   SSH_PROXY_PORT[i]      the agent's proxy port (listener SSH_ADDR[i]:port)
#   SSH_ROOT[i]            the agent root ($T/h<i>/agent)
#   SSHD_PID[i] SSH_AGENT_PID[i]
#   SSH_KEY                the client's private key file (ed25519, no passphrase)
#   SSH_KNOWN_HOSTS        known_hosts with every host's key ([addr]:port form)
#   SSH_USER               the login user (root)

# Starts N sshd + agents (see above). Usage: start_sshd N
start_sshd() {
  local n=$1 i d addr
  [ "$(id -u)" = 0 ] || { echo "e2e: sshd needs root to log users in; skipping" >&2; exit 77; }
  [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null ||
    { echo "e2e: openssh-server/openssh-client missing (scripts/install-deps.sh); skipping" >&2; exit 77; }
  # WHY: sshd refuses to start without its privilege separation directory,
  # which Debian's service unit creates (RuntimeDirectory=sshd).
  [ -d /run/sshd ] || mkdir -p -m 0755 /run/sshd
  mkdir -p "$T/ssh"
  chmod 700 "$T/ssh"
  SSH_KEY=$T/ssh/client_key
  SSH_KNOWN_HOSTS=$T/ssh/known_hosts
  SSH_USER=$(id -un)
  [ -f "$SSH_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C meshdeploy-e2e -f "$SSH_KEY"
  cp "$SSH_KEY.pub" "$T/ssh/authorized_keys"
  : >"$SSH_KNOWN_HOSTS"
  SSH_N=$n
  declare -g -a SSH_ADDR SSH_PORT SSH_PROXY_PORT SSH_ROOT SSHD_PID SSH_AGENT_PID
  for i in $(seq 1 "$n"); do
    addr=127.0.0.$((i + 1))
    d=$T/ssh/h$i
    mkdir -p "$d"
    ssh-keygen -q -t ed25519 -N '' -C "host$i" -f "$d/host_key"
    SSH_ADDR[i]=$addr
    SSH_PORT[i]=$(free_port "$addr")
    SSH_PROXY_PORT[i]=$(free_port "$addr")
    SSH_ROOT[i]=$T/h$i/agent
    cat >"$d/sshd_config" <<CFG
ListenAddress $addr:${SSH_PORT[i]}
HostKey $d/host_key
PidFile $d/sshd.pid
AuthorizedKeysFile $T/ssh/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
CFG
    spawn "sshd-h$i" /usr/sbin/sshd -D -e -f "$d/sshd_config"
    SSHD_PID[i]=$LAST_PID
    E2E_LOGS="${E2E_LOGS-} $T/sshd-h$i.log"
    printf '[%s]:%s %s\n' "$addr" "${SSH_PORT[i]}" "$(cut -d' ' -f1,2 "$d/host_key.pub")" >>"$SSH_KNOWN_HOSTS"
    [ "${SSH_NO_AGENT:-0}" = 1 ] && continue
    mkdir -p "${SSH_ROOT[i]}"
    spawn "agent-h$i" "$MESHDEPLOY_BIN" agent run --root "${SSH_ROOT[i]}" --listen "$addr:${SSH_PROXY_PORT[i]}"
    SSH_AGENT_PID[i]=$LAST_PID
    E2E_LOGS="${E2E_LOGS-} $T/agent-h$i.log"
  done
  for i in $(seq 1 "$n"); do
    wait_for 20 "sshd of host $i on ${SSH_ADDR[i]}:${SSH_PORT[i]}" \
      bash -c "exec 3<>/dev/tcp/${SSH_ADDR[i]}/${SSH_PORT[i]}"
    [ "${SSH_NO_AGENT:-0}" = 1 ] ||
      wait_for 20 "the agent of host $i" "$MESHDEPLOY_BIN" agent status --root "${SSH_ROOT[i]}"
  done
  # The key and known_hosts work (the transport is tested elsewhere: this
  # only says early that the harness is sound).
  ssh_cmd 1 true || die "ssh to host 1 with the test key fails: see $T/sshd-h1.log"
  log "started $n sshd$([ "${SSH_NO_AGENT:-0}" = 1 ] || echo ' + agents'): $(for i in $(seq 1 "$n"); do printf '%s:%s ' "${SSH_ADDR[i]}" "${SSH_PORT[i]}"; done)"
}

# Runs a command on host I with plain ssh, the test key and known_hosts.
# Usage: ssh_cmd I CMD...
ssh_cmd() {
  local i=$1; shift
  ssh -F none -i "$SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$SSH_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
    -o ConnectTimeout=10 -p "${SSH_PORT[i]}" "$SSH_USER@${SSH_ADDR[i]}" "$@"
}

# ssh://user@addr:port of host I.
ssh_address() { printf 'ssh://%s@%s:%s' "$SSH_USER" "${SSH_ADDR[$1]}" "${SSH_PORT[$1]}"; }

# Puts the client key into the test environment's vault as secret NAME
# (default SSH_KEY); needs MESHDEPLOY_KEY_TEST and the config written.
ssh_key_to_vault() { mdt secrets set "${1:-SSH_KEY}" <"$SSH_KEY" >/dev/null; }

# Writes the test environment over every host with the client key in its
# vault: PROXY_PORT and a vault key (MESHDEPLOY_KEY_TEST) when unset,
# write_config with ssh_env_yaml SSH_KEY (write_config's tunables apply;
# HOSTS_YAML: more lines of the environment, indented 4), the key set.
# Usage: [WATCH=30s ...] hosts_config
hosts_config() {
  PROXY_PORT=${PROXY_PORT:-$(free_port)}
  export MESHDEPLOY_KEY_TEST
  [ -n "${MESHDEPLOY_KEY_TEST:-}" ] || MESHDEPLOY_KEY_TEST=$(md secrets keygen --env test)
  ENV_YAML="$(ssh_env_yaml SSH_KEY)${HOSTS_YAML:+
$HOSTS_YAML}" write_config
  ssh_key_to_vault
}

# YAML lines (indented 4) for write_config's ENV_YAML: the `ssh:` section
# (known_hosts = SSH_KNOWN_HOSTS; KEY_SECRET when given) and `hosts:` with
# hosts FIRST..LAST (default all). With SSH_SETUP_PATHS=1 each host also gets
# binary $T/h<i>/bin/meshdeploy, unit_dir $T/h<i>/units and unit md-agent-h<i>
# (`hosts setup` on hosts that share this machine). Usage:
#   ENV_YAML=$(ssh_env_yaml [KEY_SECRET] [FIRST] [LAST]) write_config
ssh_env_yaml() {
  local secret=${1:-} first=${2:-1} last=${3:-$SSH_N} i extra
  printf '    ssh:\n      known_hosts: %s\n      connect_timeout: 10s\n' "$SSH_KNOWN_HOSTS"
  [ -z "$secret" ] || printf '      key_secret: %s\n' "$secret"
  printf '    hosts:\n'
  for i in $(seq "$first" "$last"); do
    extra=
    [ "${SSH_SETUP_PATHS:-0}" != 1 ] ||
      extra=$(printf ', binary: %s, unit_dir: %s, unit: md-agent-h%s' "$T/h$i/bin/meshdeploy" "$T/h$i/units" "$i")
    printf '      - {name: h%s, address: "%s", agent_root: %s, listen: "%s:%s"%s}\n' \
      "$i" "$(ssh_address "$i")" "${SSH_ROOT[i]}" "${SSH_ADDR[i]}" "${SSH_PROXY_PORT[i]}" "$extra"
  done
}

# The version host I's proxy serves at /.
ssh_proxy_version() { served_version "http://${SSH_ADDR[$1]}:${SSH_PROXY_PORT[$1]}/"; }

# Pids of processes of host I's releases (of VERSION when given).
ssh_release_pids() { e2e_pids_under "${SSH_ROOT[$1]}/releases${2:+/$2}"; }

# Fails unless host I's agent routes all traffic to VERSION, its proxy serves
# it, and no process of another release of that host runs.
# Usage: ssh_expect_only I VERSION
ssh_expect_only() {
  local i=$1 v=$2 json others
  json=$("$MESHDEPLOY_BIN" agent status --root "${SSH_ROOT[i]}" --json) || die "agent status of host $i failed"
  python3 - "$v" "$json" <<'PY' || die "host $i does not run $v alone: $json"
import json, sys
want, s = sys.argv[1], json.loads(sys.argv[2])
assert s["weights"] == {want: 100}, s["weights"]
running = [r["version"] for r in s["releases"] if any(p["state"] != "stopped" for p in r["processes"])]
assert running == [want], running
PY
  others=$(find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "${SSH_ROOT[i]}/releases/*" -printf '%l\n' 2>/dev/null |
    grep -v "/releases/$v\(/\|$\)" | sort -u || true)
  [ -z "$others" ] || die "host $i: processes of other releases still run: $others"
  expect_eq "$(ssh_proxy_version "$i")" "$v" "version served by host $i"
}
ssh_expect_only_quietly() { ( ssh_expect_only "$1" "$2" ); }

# Starts HAProxy in front of the hosts' proxies, as a user puts a load
# balancer before their hosts: round robin, health checks every 200 ms, a
# refused connection retried on another host. Sets FRONT_PORT and FRONT_URL.
# Exits 77 only when haproxy is not installed.
start_front() {
  command -v haproxy >/dev/null || { echo "e2e: haproxy missing (scripts/install-deps.sh); skipping" >&2; exit 77; }
  FRONT_PORT=$(free_port)
  FRONT_URL="http://127.0.0.1:$FRONT_PORT/"
  {
    printf 'global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n'
    printf '  retries 3\n  option redispatch 1\n  retry-on conn-failure empty-response response-timeout 502 503\n'
    printf 'frontend front\n  bind 127.0.0.1:%s\n  default_backend hosts\n' "$FRONT_PORT"
    printf 'backend hosts\n  balance roundrobin\n  option httpchk GET /healthz\n'
    local i
    for i in $(seq 1 "$SSH_N"); do
      printf '  server h%s %s:%s check inter 200ms fall 1 rise 2\n' "$i" "${SSH_ADDR[i]}" "${SSH_PROXY_PORT[i]}"
    done
  } >"$T/haproxy.cfg"
  haproxy -c -f "$T/haproxy.cfg" >/dev/null || die "haproxy config invalid: $(haproxy -c -f "$T/haproxy.cfg" 2>&1)"
  spawn haproxy haproxy -db -f "$T/haproxy.cfg"
  E2E_LOGS="${E2E_LOGS-} $T/haproxy.log"
  wait_for 20 "haproxy on $FRONT_PORT" bash -c "exec 3<>/dev/tcp/127.0.0.1/$FRONT_PORT"
}

# Restarts the agent of host I (after it was killed), as systemd's
# Restart=on-failure would. Usage: restart_host_agent I
restart_host_agent() {
  local i=$1
  spawn "agent-h$i-again" "$MESHDEPLOY_BIN" agent run --root "${SSH_ROOT[i]}" --listen "${SSH_ADDR[i]}:${SSH_PROXY_PORT[i]}"
  SSH_AGENT_PID[i]=$LAST_PID
  E2E_LOGS="${E2E_LOGS-} $T/agent-h$i-again.log"
  wait_for 20 "the agent of host $i again" "$MESHDEPLOY_BIN" agent status --root "${SSH_ROOT[i]}"
}

# crash_rounds (lib.sh) across three ssh hosts: after each round, one live
# version on every host, no process of any other release on any host.
# Usage: hosts_crash_scenario STEP...
hosts_crash_scenario() {
  start_sshd 3
  export MESHDEPLOY_LOCK_TTL_MS=1000
  # WHY the state in a local file: each command would otherwise open one more
  # ssh connection to reach the store on host 1 (state_on_agent_ssh.sh
  # covers that store); here the hosts are what is under test.
  WATCH=300ms WINDOW=300ms HOSTS_YAML="    state: $T/state.db" hosts_config
  build_app v1
  mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }
  crash_expect_hosts() {
    local h
    for h in 1 2 3; do
      wait_for 30 "$1 alone on host $h" ssh_expect_only_quietly "$h" "$1"
      ssh_expect_only "$h" "$1"
    done
  }
  CRASH_EXPECT=crash_expect_hosts crash_rounds "$@"
}
