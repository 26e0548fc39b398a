#!/usr/bin/env bash
# The proxy driven through its CLI: run with --route/--state/--admin-socket,
# deploy, canary, promote, abort, maintenance, pause/resume, status and
# metrics; bad input gets clear errors and exit codes; a restart restores the
# routes; a damaged state file refuses to start.
. "$(dirname "$0")/lib.sh"
e2e_init
md() { "$MESHDEPLOY_BIN" "$@"; }

# A tiny HTTP/1.1 upstream: any path answers 200 with its name.
cat >"$T/up.py" <<'PY'
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name, port = sys.argv[1], int(sys.argv[2])
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Meshhook-Version", name)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
BLUE=$(free_port); spawn blue python3 "$T/up.py" blue "$BLUE"
GREEN=$(free_port); spawn green python3 "$T/up.py" green "$GREEN"
wait_for 10 "blue upstream" curl -sf "http://127.0.0.1:$BLUE/"
wait_for 10 "green upstream" curl -sf "http://127.0.0.1:$GREEN/"

PORT=$(free_port)
export MESHDEPLOY_PROXY_SOCKET=$T/proxy.sock
start_proxy() {
  spawn proxy "$MESHDEPLOY_BIN" proxy run --listen "127.0.0.1:$PORT" --state "$T/proxy.state" \
    --route "app=127.0.0.1:$BLUE" --threads 2
  PROXY_PID=$LAST_PID
  wait_for 10 "the proxy to listen" curl -sf "http://127.0.0.1:$PORT/"
}
E2E_LOGS="$T/proxy.log"
start_proxy
expect_eq "$(http_get "http://127.0.0.1:$PORT/")" blue "static route"
expect_eq "$(stat -c %a "$T/proxy.sock")" 600 "admin socket mode"
expect_eq "$(stat -c %a "$T/proxy.state")" 600 "state file mode"

log "deploy to green"
md proxy deploy app --target "127.0.0.1:$GREEN" >"$T/deploy.out" || die "deploy failed: $(cat "$T/deploy.out")"
grep -q "is live" "$T/deploy.out" || die "deploy output: $(cat "$T/deploy.out")"
expect_eq "$(http_get "http://127.0.0.1:$PORT/")" green "after deploy"

log "canary, promote, abort"
md proxy canary app --target "127.0.0.1:$BLUE" --weight 100 >/dev/null || die "canary failed"
expect_eq "$(http_get "http://127.0.0.1:$PORT/")" blue "canary at 100%"
md proxy canary app --weight 0 >/dev/null || die "canary weight change failed"
expect_eq "$(http_get "http://127.0.0.1:$PORT/")" green "canary at 0%"
md proxy abort app >/dev/null || die "abort failed"
md proxy canary app --target "127.0.0.1:$BLUE" --weight 50 >/dev/null || die "second canary failed"
md proxy promote app >/dev/null || die "promote failed"
expect_eq "$(http_get "http://127.0.0.1:$PORT/")" blue "after promote"

log "status and metrics"
md proxy status app >"$T/status.out" || die "status failed"
grep -q "live:     set" "$T/status.out" || die "status output: $(cat "$T/status.out")"
md proxy status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["services"][0]["live"]["targets"][0]["healthy"]' \
  || die "status --json"
md proxy metrics --json | python3 -c '
import json,sys
d=json.load(sys.stdin)
sets=d["services"][0]["sets"]
assert sum(s["counters"]["status"]["2xx"] for s in sets) >= 4, sets
assert {s["role"] for s in sets} >= {"live", "retired"}, sets' || die "metrics --json"
# WHY a variable, not a pipe: `grep -q` stops reading early, and under pipefail the writer's SIGPIPE fails the line.
prom=$(md proxy metrics --prometheus) || die "metrics --prometheus failed"
grep -q '^meshdeploy_proxy_requests_total{service="app"' <<<"$prom" || die "prometheus text: $(head -5 <<<"$prom")"
md proxy metrics app >/dev/null || die "metrics app"

log "maintenance and pause"
printf '<h1>upgrading</h1>' >"$T/page.html"
md proxy maintenance app --page "$T/page.html" >/dev/null || die "maintenance failed"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")" 503 "maintenance status"
expect_eq "$(http_get "http://127.0.0.1:$PORT/")" "<h1>upgrading</h1>" "maintenance page"
expect_eq "$(http_get "http://127.0.0.1:$PORT/healthz")" blue "health path during maintenance"
md proxy resume app >/dev/null || die "resume failed"
md proxy pause app --max-wait 10s >/dev/null || die "pause failed"
curl -s --max-time 8 "http://127.0.0.1:$PORT/" >"$T/held.out" &
held=$!
sleep 0.5
kill -0 "$held" 2>/dev/null || die "a request was not held by the pause"
md proxy resume app >/dev/null || die "resume failed"
wait "$held" || die "held request failed"
expect_eq "$(cat "$T/held.out")" blue "held request after resume"

log "bad input"
code=0; md proxy deploy app --target nope >"$T/bad.out" 2>&1 || code=$?
expect_eq "$code" 2 "exit code for a bad target"
grep -q "missing port" "$T/bad.out" || die "bad target message: $(cat "$T/bad.out")"
code=0; md proxy promote nosuch >"$T/bad.out" 2>&1 || code=$?
expect_eq "$code" 5 "exit code for an unknown service"
code=0; md proxy promote app >"$T/bad.out" 2>&1 || code=$?
expect_eq "$code" 1 "exit code for promote without canary"
grep -q "no canary" "$T/bad.out" || die "promote message: $(cat "$T/bad.out")"
code=0; md proxy deploy app --target "127.0.0.1:$(free_port)" --health-timeout 1s >"$T/bad.out" 2>&1 || code=$?
expect_eq "$code" 1 "exit code for unhealthy targets"
grep -q "not healthy" "$T/bad.out" || die "unhealthy message: $(cat "$T/bad.out")"
expect_eq "$(http_get "http://127.0.0.1:$PORT/")" blue "nothing changed after the failed deploy"
code=0; MESHDEPLOY_PROXY_SOCKET=$T/missing.sock md proxy status >"$T/bad.out" 2>&1 || code=$?
expect_eq "$code" 1 "exit code without a proxy"
grep -q "is the server running" "$T/bad.out" || die "missing socket message: $(cat "$T/bad.out")"
code=0; env -u MESHDEPLOY_PROXY_SOCKET "$MESHDEPLOY_BIN" proxy status >"$T/bad.out" 2>&1 || code=$?
expect_eq "$code" 2 "exit code without a socket path"
code=0; curl -s --unix-socket "$T/proxy.sock" -X POST -d '{"weight":"x"}' \
  -o "$T/bad.json" -w '%{http_code}' http://proxy/v1/services/app/canary >"$T/code" || true
expect_eq "$(cat "$T/code")" 400 "bogus admin command"
grep -q "must be an integer" "$T/bad.json" || die "admin error body: $(cat "$T/bad.json")"

log "restart restores routes"
kill -TERM "$PROXY_PID"
wait_for 10 "the proxy to exit" bash -c "! kill -0 $PROXY_PID"
start_proxy
expect_eq "$(http_get "http://127.0.0.1:$PORT/")" blue "after restart (state wins over --route)"

log "damaged state file"
kill -TERM "$PROXY_PID"
wait_for 10 "the proxy to exit" bash -c "! kill -0 $PROXY_PID"
sed -i 's/"canary_weight": 0/"canary_weight": 1/' "$T/proxy.state"
code=0; "$MESHDEPLOY_BIN" proxy run --listen "127.0.0.1:$PORT" --state "$T/proxy.state" >"$T/bad.out" 2>&1 || code=$?
expect_eq "$code" 1 "exit code for a damaged state file"
grep -q "checksum mismatch" "$T/bad.out" || die "damaged state message: $(cat "$T/bad.out")"
log "ok"
