#!/usr/bin/env bash
# Scenario: the host agent driven through its control API (curl on the unix
# socket) with a real Node app: artifacts (a hostile one refused), start with
# secrets (redacted in the logs), health, blue-green under wrk with 0 failed
# requests, worker replacement that lets jobs finish, canary split, crash
# restart with backoff, a crash loop that ends `failed`, logs, prune, and
# `agent stop --all` leaving no process behind.
#
# The helpers above the AGENT_E2E_LIB_ONLY line are shared with
# agent_restart.sh, which sources this file with AGENT_E2E_LIB_ONLY=1.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECRET="tok-e2e-$RANDOM-super-secret"

# Writes the test app (a web process and a worker) into DIR.
agent_app() {
  mkdir -p "$1"
  cat >"$1/server.js" <<'JS'
const http = require('http');
const v = process.env.MESHDEPLOY_VERSION;
if (process.env.CRASH_AT_START === '1') { console.error('crashing at start'); process.exit(3); }
console.log(`web ${process.env.MESHDEPLOY_PROCESS} ${v} starting, token=${process.env.API_TOKEN}`);
const srv = http.createServer((req, res) => {
  if (req.url === '/healthz') { res.writeHead(200); return res.end('ok'); }
  res.writeHead(200, {'content-type': 'application/json', 'x-meshhook-version': v});
  res.end(JSON.stringify({version: v, pid: process.pid}) + '\n');
});
srv.keepAliveTimeout = 5000;
srv.listen(+process.env.PORT, '127.0.0.1', () => console.log(`listening on ${process.env.PORT}`));
process.on('SIGTERM', () => {
  console.log('SIGTERM: closing');
  srv.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
JS
  cat >"$1/worker.js" <<'JS'
let n = 0, stopping = false;
console.log(`worker ${process.env.MESHDEPLOY_VERSION} up`);
function job() {
  n++;
  console.log(`job ${n} start`);
  setTimeout(() => {
    console.log(`job ${n} done`);
    if (stopping) process.exit(0); else setTimeout(job, 50);
  }, 300);
}
job();
process.on('SIGTERM', () => {
  console.log(`SIGTERM: finishing job ${n}`);
  if (process.env.IGNORE_TERM === '1') return;
  stopping = true;
});
JS
}

# Packs the app as $T/VERSION.tar.gz; sets SHA.
agent_artifact() {
  [ -d "$T/app" ] || agent_app "$T/app"
  tar czf "$T/$1.tar.gz" -C "$T/app" .
  SHA=$(sha256sum "$T/$1.tar.gz" | cut -d' ' -f1)
}

# api METHOD PATH [JSON]: the answer body; fails the test on a transport error.
api() {
  curl -sS --max-time 120 --unix-socket "$SOCK" -X "$1" "http://agent$2" \
    ${3:+-H 'content-type: application/json' -d "$3"} || die "control API $1 $2 unreachable"
}
# Same, failing the test on an error answer.
api_ok() {
  local out
  out=$(api "$@")
  if jq -e '.error' >/dev/null 2>&1 <<<"$out"; then die "$1 $2: $(jq -c .error <<<"$out")"; fi
  printf '%s' "$out"
}

# Starts the agent on $ROOT with its proxy on $PORT; sets AGENT_PID.
agent_start() {
  spawn "agent-$1" "$MESHDEPLOY_BIN" agent run --root "$ROOT" --listen "127.0.0.1:$PORT"
  AGENT_PID=$LAST_PID
  E2E_LOGS="$T/agent-$1.log"
  # WHY not api: it dies on a refused connection, and the socket file of a
  # killed agent is still there until the new one replaces it.
  wait_for 20 "the agent's control API" agent_answers
}
agent_answers() { curl -sf --max-time 2 --unix-socket "$SOCK" http://agent/v1/agent/status >/dev/null; }

# The start request for VERSION: web x WEB, worker x WORKERS, extra env JSON.
# WEB_COMMAND replaces the web processes' command (default: exec node server.js).
start_json() {
  local version=$1 role=$2 web=$3 workers=$4 env=${5:-'{}'}
  jq -nc --arg v "$version" --arg role "$role" --argjson web "$web" --argjson workers "$workers" \
    --argjson env "$env" --arg secret "$SECRET" --arg cmd "${WEB_COMMAND:-exec node server.js}" '{
      version: $v, role: $role, environment: "e2e", env: $env,
      secrets: {API_TOKEN: $secret},
      services: [
        {name: "web", kind: "web", command: $cmd, count: $web,
         health: {path: "/healthz", interval_ms: 1000, timeout_ms: 500, start_timeout_ms: 15000},
         stop_grace_ms: 3000},
        {name: "worker", kind: "worker", command: "exec node worker.js", count: $workers,
         stop_grace_ms: 3000}]}'
}

# Registers, unpacks and starts VERSION (ROLE), then waits until it is ready.
deploy_release() {
  local version=$1 role=$2 web=$3 workers=$4 env=${5:-'{}'}
  agent_artifact "$version"
  api_ok POST /v1/agent/artifacts "{\"version\":\"$version\",\"sha256\":\"$SHA\",\"path\":\"$T/$version.tar.gz\"}" >/dev/null
  api_ok POST /v1/agent/unpack "{\"version\":\"$version\"}" >/dev/null
  api_ok POST /v1/agent/start "$(start_json "$version" "$role" "$web" "$workers" "$env")" >/dev/null
  api_ok POST /v1/agent/wait-ready "{\"version\":\"$version\",\"role\":\"$role\",\"timeout_ms\":20000}" >/dev/null
}

# pid of PROCESS (e.g. web.1) of VERSION, from the agent's status.
pid_of() {
  api GET /v1/agent/status | jq -r --arg v "$1" --arg p "$2" \
    '.releases[] | select(.version == $v) | .processes[] | select(.name == $p) | .pid'
}
# Field F of PROCESS of VERSION.
proc_field() {
  api GET /v1/agent/status | jq -r --arg v "$1" --arg p "$2" --arg f "$3" \
    '.releases[] | select(.version == $v) | .processes[] | select(.name == $p) | .[$f]'
}
# Versions answering N requests through the proxy, e.g. "v1 v2".
versions_seen() {
  local url="http://127.0.0.1:$PORT/" urls=() i
  for i in $(seq "$1"); do urls+=("$url"); done
  curl -s --max-time 20 "${urls[@]}" | grep -o '"version":"[^"]*"' | cut -d'"' -f4 | sort -u | tr '\n' ' '
}
# Live processes (not zombies) started for $ROOT, and log writers of $ROOT.
agent_leftovers() {
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "MESHDEPLOY_AGENT_ROOT=$ROOT"; then
      [ "$(awk '{print $3}' "$p/stat" 2>/dev/null)" = Z ] || echo "${p#/proc/}"
    fi
  done
  pgrep -f "log-writer --out $ROOT/" || true
}
no_leftovers() { [ -z "$(agent_leftovers)" ]; }
# `agent stop --all`: the agent exits and no process of $ROOT is left.
expect_stop_all_leaves_nothing() {
  log "agent stop --all leaves nothing running"
  "$MESHDEPLOY_BIN" agent stop --all --root "$ROOT" >/dev/null
  wait_for 30 "the agent to exit" sh -c "! kill -0 $AGENT_PID 2>/dev/null"
  wait_for 10 "no process of the root" no_leftovers
}

[ "${AGENT_E2E_LIB_ONLY:-0}" = 1 ] && return 0

e2e_init
PORT=$(free_port)
ROOT="$T/root"
SOCK="$ROOT/agent.sock"

agent_start 1
expect_eq "$(stat -c %a "$SOCK")" 600 "control socket mode"

log "a hostile artifact is refused and leaves nothing behind"
mkdir -p "$T/evil"
python3 - "$T/evil.tar.gz" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as t:
    data = b"owned\n"
    info = tarfile.TarInfo("../../escape.txt"); info.size = len(data)
    t.addfile(info, io.BytesIO(data))
PY
SHA=$(sha256sum "$T/evil.tar.gz" | cut -d' ' -f1)
api_ok POST /v1/agent/artifacts "{\"version\":\"evil\",\"sha256\":\"$SHA\",\"path\":\"$T/evil.tar.gz\"}" >/dev/null
out=$(api POST /v1/agent/unpack '{"version":"evil"}')
expect_eq "$(jq -r .error.code <<<"$out")" invalid_argument "unpack of ../../escape.txt"
[ ! -e "$ROOT/releases/evil" ] && [ ! -e "$T/escape.txt" ] && [ ! -e "$ROOT/escape.txt" ] ||
  die "hostile archive left files behind"
out=$(api POST /v1/agent/artifacts "{\"version\":\"v1\",\"sha256\":\"$(printf '0%.0s' {1..64})\",\"path\":\"$T/evil.tar.gz\"}")
expect_eq "$(jq -r .error.code <<<"$out")" corruption "artifact with a wrong sha256"

log "v1: two web processes and a worker, with a secret"
deploy_release v1 all 2 1
api_ok POST /v1/agent/route '{"weights":{"v1":100}}' >/dev/null
expect_eq "$(served_version "http://127.0.0.1:$PORT/")" v1 "version through the proxy"
for p in web.1 web.2 worker.1; do
  pid=$(pid_of v1 $p)
  expect_eq "$(ps -o sid= -p "$pid" | tr -d ' ')" "$pid" "$p leads its own session"
done
wait_for 5 "web.1's start line in its log" grep -q 'token=' "$ROOT/logs/v1/web.1.log"
grep -q "token=\[REDACTED\]" "$ROOT/logs/v1/web.1.log" || die "the secret is not masked in web.1.log"
! grep -rq --exclude-dir=run "$SECRET" "$ROOT" || die "the secret is stored in clear outside run/"
expect_eq "$(stat -c %a "$ROOT/run/v1.secrets")" 600 "mode of the secrets file"

log "repeating start and route is a no-op"
pids_before=$(pid_of v1 web.1)
api_ok POST /v1/agent/start "$(start_json v1 all 2 1)" >/dev/null
api_ok POST /v1/agent/route '{"weights":{"v1":100}}' >/dev/null
expect_eq "$(pid_of v1 web.1)" "$pids_before" "web.1 pid after a repeated start"

log "blue-green to v2 under load"
wrk_start bg "http://127.0.0.1:$PORT/" 8
deploy_release v2 web 2 0
t0=$(date +%s%N)
api_ok POST /v1/agent/route '{"weights":{"v2":100}}' >/dev/null
log "switch took $(( ($(date +%s%N) - t0) / 1000000 )) ms (curl included)"
expect_eq "$(versions_seen 10)" "v2 " "versions after the switch"
out=$(api POST /v1/agent/stop '{"version":"v2"}')
expect_eq "$(jq -r .error.code <<<"$out")" failed_precondition "stopping the live release"

log "workers: v2's start before v1's get SIGTERM and finish their job"
api_ok POST /v1/agent/start "$(start_json v2 workers 2 1)" >/dev/null
api_ok POST /v1/agent/wait-ready '{"version":"v2","role":"workers","timeout_ms":20000}' >/dev/null
running=$(api GET /v1/agent/status | jq '[.releases[].processes[] | select(.service=="worker" and .state=="running")] | length')
expect_eq "$running" 2 "workers running while replacing"
api_ok POST /v1/agent/stop '{"version":"v1","role":"workers"}' >/dev/null
grep -q 'SIGTERM: finishing job' "$ROOT/logs/v1/worker.1.log" || die "v1's worker got no SIGTERM"
last=$(grep -o 'SIGTERM: finishing job [0-9]*' "$ROOT/logs/v1/worker.1.log" | grep -o '[0-9]*$')
grep -q "job $last done" "$ROOT/logs/v1/worker.1.log" || die "v1's worker did not finish job $last"
api_ok POST /v1/agent/stop '{"version":"v1"}' >/dev/null
wrk_expect_clean bg

log "canary: v3 at 25 %, then aborted"
deploy_release v3 web 1 0
api_ok POST /v1/agent/route '{"weights":{"v2":75,"v3":25}}' >/dev/null
expect_eq "$(versions_seen 60)" "v2 v3 " "versions with a 25 % canary"
api_ok POST /v1/agent/abort '{"version":"v3"}' >/dev/null
expect_eq "$(versions_seen 20)" "v2 " "versions after abort"

log "a crashed process is restarted after its backoff"
pid=$(pid_of v2 web.1)
t0=$(date +%s%N)
kill -9 "$pid"
web1_restarted() { [ "$(proc_field v2 web.1 state) $(proc_field v2 web.1 restarts)" = "running 1" ]; }
wait_for 10 "v2/web.1 restarted" web1_restarted
elapsed=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$elapsed" -ge 450 ] || die "restarted after ${elapsed} ms, before its 500 ms backoff"
expect_eq "$(proc_field v2 web.1 last_exit)" "killed by SIGKILL" "last exit of web.1"
[ "$(pid_of v2 web.1)" != "$pid" ] || die "web.1 kept its old pid"

log "a crash loop ends failed, not restarted forever"
agent_artifact v4
api_ok POST /v1/agent/artifacts "{\"version\":\"v4\",\"sha256\":\"$SHA\",\"path\":\"$T/v4.tar.gz\"}" >/dev/null
api_ok POST /v1/agent/unpack '{"version":"v4"}' >/dev/null
t0=$(date +%s%N)
api_ok POST /v1/agent/start "$(start_json v4 web 1 0 '{"CRASH_AT_START":"1"}')" >/dev/null
out=$(api POST /v1/agent/wait-ready '{"version":"v4","role":"web","timeout_ms":30000}')
elapsed=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "$(jq -r .error.code <<<"$out")" failed_precondition "wait-ready of a crash loop"
jq -r .error.message <<<"$out" | grep -q 'crashed 5 times in a row' || die "reason: $(jq -r .error.message <<<"$out")"
[ "$elapsed" -ge 7000 ] || die "gave up after ${elapsed} ms: backoff (0.5+1+2+4 s) not applied"
expect_eq "$(proc_field v4 web.1 state)" failed "state of the crash loop"
expect_eq "$(proc_field v4 web.1 restarts)" 4 "restarts of the crash loop"
sleep 1
expect_eq "$(proc_field v4 web.1 restarts)" 4 "restarts after giving up"
grep -q 'crashing at start' "$ROOT/logs/v4/web.1.log" || die "the crash reason is not in the log"

log "logs through the API"
out=$(api_ok POST /v1/agent/logs '{"version":"v2","process":"web.2","tail":3}')
jq -r '.lines[].text' <<<"$out" | grep -q 'listening on' || die "logs: $(jq -c . <<<"$out")"
cursor=$(jq -c .cursor <<<"$out")
out=$(api_ok POST /v1/agent/logs "{\"version\":\"v2\",\"process\":\"web.2\",\"cursor\":$cursor}")
expect_eq "$(jq '.lines | length' <<<"$out")" 0 "new lines after the cursor"

log "prune keeps the live, running and newest releases"
api_ok POST /v1/agent/stop '{"version":"v4"}' >/dev/null
out=$(api_ok POST /v1/agent/prune '{"keep":1}')
expect_eq "$(jq -c .removed <<<"$out")" '["v1"]' "pruned releases"
[ ! -e "$ROOT/releases/v1" ] && [ -d "$ROOT/releases/v2" ] || die "prune removed the wrong releases"

expect_stop_all_leaves_nothing
log "ok"
