#!/usr/bin/env bash
# Scenario: the agent's public listener never closes across a restart, under
# wrk (0 failed requests). A stand-in for systemd (a small Python service
# manager) binds the port, passes it as LISTEN_FDS the way
# meshdeploy-agent.socket does, collects sd_notify messages on NOTIFY_SOCKET
# and starts the agent again when it exits. Two restarts under load:
#  1. the service-manager way: SIGTERM (systemctl restart), the next agent
#     gets the same socket from the manager;
#  2. `meshdeploy agent restart`: the agent re-execs itself (same pid) and
#     hands its sockets across the exec.
# Release processes keep their pids; READY=1, WATCHDOG=1, STOPPING=1 and
# RELOADING=1 reach the manager; a process that crashes after the re-exec is
# reaped (no zombie) and restarted. A socket no --listen names is refused.
AGENT_E2E_LIB_ONLY=1 . "$(dirname "${BASH_SOURCE[0]}")/agent_lifecycle.sh"
E2E_NAME=agent_handover

e2e_init
PORT=$(free_port)
ROOT="$T/root"
SOCK="$ROOT/agent.sock"
NOTES="$T/notify.log"

cat >"$T/manager.py" <<'PY'
# A minimal service manager: Type=notify, socket activation, Restart=always.
import os, socket, subprocess, sys, threading
port, notify_path, notes, stop_file = sys.argv[1:5]
cmd = sys.argv[5:]
lock = threading.Lock()
def note(line):
    with lock, open(notes, "a") as f:
        f.write(line + "\n")
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(port)))
ls.listen(4096)
os.dup2(ls.fileno(), 3)
ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ns.bind(notify_path)
def receive():
    while True:
        note("NOTIFY " + ns.recv(4096).decode().replace("\n", " "))
threading.Thread(target=receive, daemon=True).start()
env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="400000", LISTEN_FDS="1")
n = 0
while not os.path.exists(stop_file):
    n += 1
    # LISTEN_PID must be the daemon's pid: the shell's, which exec keeps.
    p = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"] + cmd, env=env, pass_fds=(3,))
    note(f"START {n} {p.pid}")
    p.wait()
    note(f"EXIT {n} {p.returncode}")
PY

spawn manager python3 "$T/manager.py" "$PORT" "$T/notify.sock" "$NOTES" "$T/manager.stop" \
  "$MESHDEPLOY_BIN" agent run --root "$ROOT"
E2E_LOGS="$T/manager.log $NOTES"
wait_for 20 "the agent's control API" agent_answers
status_field() { api GET /v1/agent/status | jq -r "$1"; }
AGENT_PID=$(status_field .pid)
expect_eq "$(status_field '.listen | join(",")')" "127.0.0.1:$PORT" "listener (the socket from the manager)"
wait_for 5 "READY=1" grep -q 'NOTIFY READY=1' "$NOTES"
wait_for 5 "a watchdog ping" grep -q 'NOTIFY WATCHDOG=1' "$NOTES"

log "v1: two web processes, live"
deploy_release v1 web 2 0
api_ok POST /v1/agent/route '{"weights":{"v1":100}}' >/dev/null
w1=$(pid_of v1 web.1)
w2=$(pid_of v1 web.2)

wrk_start restarts "http://127.0.0.1:$PORT/" 8
sleep 1

log "1. SIGTERM (systemctl restart): the manager starts the next agent on the same socket"
started=$(status_field .started_at)
kill -TERM "$AGENT_PID"
# Between the two agents the socket answers nothing: an empty answer is not
# "the next agent".
new_agent() {
  local now
  now=$(curl -sf --max-time 2 --unix-socket "$SOCK" http://agent/v1/agent/status | jq -r .started_at) || return 1
  [ -n "$now" ] && [ "$now" != null ] && [ "$now" != "$started" ]
}
wait_for 20 "the next agent" new_agent
AGENT_PID=$(status_field .pid)
wait_for 5 "STOPPING=1" grep -q 'NOTIFY STOPPING=1' "$NOTES"
wait_for 5 "READY=1 from the next agent" sh -c "[ \$(grep -c 'NOTIFY READY=1' '$NOTES') -ge 2 ]"
sleep 1

log "2. agent restart: re-exec with the sockets"
"$MESHDEPLOY_BIN" agent restart --root "$ROOT" >"$T/restart.out" || die "agent restart failed: $(cat "$T/restart.out")"
expect_eq "$(status_field .pid)" "$AGENT_PID" "pid after the re-exec (same process)"
grep -q 'NOTIFY RELOADING=1' "$NOTES" || die "no RELOADING=1 before the re-exec"
wait_for 5 "READY=1 after the re-exec" sh -c "[ \$(grep -c 'NOTIFY READY=1' '$NOTES') -ge 3 ]"
sleep 1
wrk_expect_clean restarts
expect_eq "$(grep -c '^START' "$NOTES")" 2 "agents the manager started (the re-exec is not one)"

expect_eq "$(pid_of v1 web.1) $(pid_of v1 web.2)" "$w1 $w2" "release pids after both restarts"
expect_eq "$(proc_field v1 web.1 adopted)" true "web.1 re-adopted"

log "after the re-exec, a crashed process is reaped and restarted"
kill -9 "$w2"
web2_back() { [ "$(proc_field v1 web.2 state) $(proc_field v1 web.2 restarts)" = "running 1" ]; }
wait_for 15 "v1/web.2 restarted" web2_back
no_zombie() { [ -z "$(ps --ppid "$AGENT_PID" -o stat= | grep Z)" ]; }
wait_for 5 "no zombie child of the agent" no_zombie

log "a handed socket that no --listen names is refused"
P2=$(free_port)
P3=$(free_port)
set +e
# One-shot socket activation (systemd-socket-activate waits for a first connection).
out=$(timeout 20 python3 -c '
import os, socket, sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); os.dup2(s.fileno(), 3); os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.execvp("sh", ["sh", "-c", "LISTEN_PID=$$ exec \"$@\"", "sh"] + sys.argv[2:])
' "$P2" "$MESHDEPLOY_BIN" agent run --root "$T/root2" --listen "127.0.0.1:$P3" 2>&1)
rc=$?
set -e
expect_eq "$rc" 2 "exit code of an agent given a socket for another address"
grep -q "127.0.0.1:$P2" <<<"$out" && grep -q "127.0.0.1:$P3" <<<"$out" ||
  die "the refusal does not name both addresses: $out"

touch "$T/manager.stop"
expect_stop_all_leaves_nothing
log "ok"
