#!/usr/bin/env bash
# Scenario: what used to hang a deploy cannot any more.
# 1. A FIFO given to the agent as an artifact path is refused at once,
#    naming the path, and the agent keeps answering (it used to block in
#    open() and with it every later register, upload and prune).
# 2. A controller blocked on an agent call that never returns (a real
#    process holding the socket: it answers status, never anything else)
#    gets SIGTERM during `ship` and exits 130 within seconds, its journal
#    complete and the deploy left for recovery; with the agent back,
#    `deploy --resume` finishes it.
. "$(dirname "$0")/lib.sh"
e2e_init

PROXY_PORT=$(free_port)
export MESHDEPLOY_LOCK_TTL_MS=1000
write_config
build_app v1
start_agent
SOCK=$T/agent/agent.sock

log "1. a FIFO as the artifact path"
mkfifo "$T/v9.tar.gz"
t0=$(date +%s%N)
code=$(curl -sS --max-time 30 --unix-socket "$SOCK" -o "$T/fifo.out" -w '%{http_code}' -X POST \
  -H 'content-type: application/json' http://agent/v1/agent/artifacts \
  -d "{\"version\":\"v9\",\"sha256\":\"$(printf '%064d' 0)\",\"path\":\"$T/v9.tar.gz\"}") || die "register of a FIFO did not answer"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "$code" 400 "HTTP status of registering a FIFO"
grep -q "v9.tar.gz is a FIFO, not a regular file" "$T/fifo.out" || die "the refusal does not name the FIFO: $(cat "$T/fifo.out")"
log "refused in ${ms} ms: $(cat "$T/fifo.out")"
curl -sf --max-time 5 --unix-socket "$SOCK" http://agent/v1/agent/status >"$T/status.json" || die "the agent no longer answers"

log "2. SIGTERM to a controller blocked in ship"
md agent stop --root "$T/agent" >/dev/null
wait_for 20 "the agent to exit" bash -c "! kill -0 $AGENT_PID 2>/dev/null"
cat >"$T/hung_agent.py" <<'PY'
# Holds the agent's socket: answers GET /v1/agent/status with a recorded
# answer, accepts every other request and never answers it.
import os, socket, sys, threading
path, body = sys.argv[1], open(sys.argv[2], 'rb').read()
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(64)
held = []
def serve(c):
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = c.recv(65536)
        if not chunk:
            return
        data += chunk
    line = data.split(b'\r\n', 1)[0]
    print(line.decode(), flush=True)
    if line.startswith(b'GET /v1/agent/status'):
        c.sendall(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n'
                  b'connection: close\r\n\r\n' % len(body) + body)
        c.close()
    else:
        held.append(c)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
spawn hung python3 "$T/hung_agent.py" "$SOCK" "$T/status.json"
HUNG_PID=$LAST_PID
wait_for 10 "the hung agent's socket" test -S "$SOCK"
# WHY not mdt: a function in the background is a subshell; $! must be the controller.
"$MESHDEPLOY_BIN" deploy --version v1 --json -c "$T/app/meshdeploy.yml" --env test \
  >"$T/deploy.out" 2>"$T/deploy.err" &
CTL=$!
wait_for 60 "the controller to call the agent in ship" grep -q 'POST /v1/agent/artifacts' "$T/hung.log"
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$CTL"
rc=0
wait "$CTL" || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
log "controller exited $rc ${ms} ms after SIGTERM: $(tail -n 1 "$T/deploy.err")"
expect_eq "$rc" 130 "exit code of the interrupted controller"
# WHY 10 s: "at once" on a loaded CI machine; the call's own deadline is 30 s or more.
[ "$ms" -lt 10000 ] || die "the controller took ${ms} ms to honour SIGTERM"
grep -q "interrupted by a signal during ship" "$T/deploy.err" || die "no interruption message: $(cat "$T/deploy.err")"
dead=$(last_deployment)
expect_journal_complete "$dead"
# WHY a variable: grep -q closing the pipe early fails the pipeline (pipefail).
h=$(mdt history --id "$dead" --json)
grep -q '"status": "running"' <<<"$h" || die "the interrupted deploy is not left for recovery: $h"

log "3. with the agent back, deploy --resume finishes it"
kill -TERM -- "-$HUNG_PID" 2>/dev/null || true
wait_for 10 "the hung agent to exit" bash -c "! kill -0 $HUNG_PID 2>/dev/null"
rm -f "$SOCK"
start_agent
mdt deploy --resume >"$T/resume.out" 2>&1 || { cat "$T/resume.out"; die "deploy --resume after the interruption failed"; }
h=$(mdt history --id "$dead" --json)
grep -q '"status": "succeeded"' <<<"$h" || die "the interrupted deploy did not finish: $h"
expect_journal_complete "$dead"
expect_only v1
log "ok"
