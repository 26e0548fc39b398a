#!/usr/bin/env bash
# Scenario: `agent run --metrics-listen HOST:PORT` serves the proxy's metrics
# to a Prometheus scraper over TCP: GET /metrics in the text format, and
# nothing of the control API there (its paths answer 404, a shutdown asked on
# the TCP port stops nothing). A taken port refuses to start, naming the flag.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init

PROXY_PORT=$(free_port)
METRICS_PORT=$(free_port)
spawn agent "$MESHDEPLOY_BIN" agent run --root "$T/agent" --listen "127.0.0.1:$PROXY_PORT" \
  --metrics-listen "127.0.0.1:$METRICS_PORT"
AGENT_PID=$LAST_PID
wait_for 20 "the agent's socket" test -S "$T/agent/agent.sock"
M="http://127.0.0.1:$METRICS_PORT"
wait_for 20 "a scrape over TCP" curl -sf --max-time 2 "$M/metrics"

log "scrape: Prometheus text, the same families as on the control socket"
scrape=$(curl -sf --max-time 5 -D "$T/headers" "$M/metrics")
grep -qi '^content-type: text/plain; version=0.0.4' "$T/headers" || die "content type: $(cat "$T/headers")"
for family in meshdeploy_proxy_requests_total meshdeploy_proxy_request_duration_seconds; do
  grep -q "^# TYPE $family " <<<"$scrape" || die "no $family in the scrape"
done
local_scrape=$(curl -sf --max-time 5 --unix-socket "$T/agent/agent.sock" http://agent/metrics)
expect_eq "$(grep '^# TYPE' <<<"$scrape")" "$(grep '^# TYPE' <<<"$local_scrape")" "metric families"

log "nothing of the control API on the TCP port"
for path in /v1/agent/status /v1/agent/metrics /v1/agent/releases/v1; do
  code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$M$path")
  expect_eq "$code" 404 "GET $path over TCP"
done
code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST -d '{"all":true}' "$M/v1/agent/shutdown")
expect_eq "$code" 404 "POST /v1/agent/shutdown over TCP"
code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST "$M/metrics")
expect_eq "$code" 405 "POST /metrics"
curl -sf --max-time 5 --unix-socket "$T/agent/agent.sock" http://agent/v1/agent/status >/dev/null ||
  die "the agent stopped after requests on the metrics port"
kill -0 "$AGENT_PID" || die "the agent exited"

log "a taken port: the second agent refuses to start and says why"
rc=0
"$MESHDEPLOY_BIN" agent run --root "$T/agent2" --listen "127.0.0.1:$(free_port)" \
  --metrics-listen "127.0.0.1:$METRICS_PORT" >"$T/agent2.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || die "a second agent on a taken metrics port started"
grep -q -- '--metrics-listen' "$T/agent2.log" || die "the refusal does not name --metrics-listen: $(cat "$T/agent2.log")"

log "agent stop closes the metrics port"
md agent stop --root "$T/agent" >/dev/null
wait_for 30 "the agent to exit" sh -c "! kill -0 $AGENT_PID 2>/dev/null"
curl -s --max-time 2 "$M/metrics" >/dev/null && die "the metrics port still answers after stop"
log "ok"
