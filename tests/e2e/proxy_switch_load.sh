#!/usr/bin/env bash
# Switching under load: wrk runs through the proxy while the live set flips
# between two upstreams every ~0.7 s and canary weights change in between.
# Every request must succeed (no non-2xx, no socket error) and both versions
# must have served.
. "$(dirname "$0")/lib.sh"
e2e_init
md() { "$MESHDEPLOY_BIN" "$@"; }
command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
command -v nginx >/dev/null || die "nginx is not installed (scripts/install-deps.sh)"

# Two nginx upstreams answering their colour (fast enough not to be the
# bottleneck, keep-alive like a real application server).
start_app() { # colour port
  mkdir -p "$T/nginx-$1"
  cat >"$T/nginx-$1.conf" <<CONF
worker_processes 1;
daemon off;
pid $T/nginx-$1.pid;
error_log $T/nginx-$1.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $T/nginx-$1/body; proxy_temp_path $T/nginx-$1/proxy;
  fastcgi_temp_path $T/nginx-$1/fcgi; uwsgi_temp_path $T/nginx-$1/uwsgi; scgi_temp_path $T/nginx-$1/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$2;
    location / { add_header X-Meshhook-Version $1 always; return 200 "$1"; }
  }
}
CONF
  spawn "nginx-$1" nginx -p "$T" -e "$T/nginx-$1.err" -c "$T/nginx-$1.conf"
}
BLUE=$(free_port); start_app blue "$BLUE"
GREEN=$(free_port); start_app green "$GREEN"
wait_for 10 "blue" curl -sf "http://127.0.0.1:$BLUE/"
wait_for 10 "green" curl -sf "http://127.0.0.1:$GREEN/"

PORT=$(free_port)
export MESHDEPLOY_PROXY_SOCKET=$T/proxy.sock
spawn proxy "$MESHDEPLOY_BIN" proxy run --listen "127.0.0.1:$PORT" --threads 2 \
  --route "app=127.0.0.1:$BLUE" --health-path /
E2E_LOGS="$T/proxy.log"
wait_for 10 "the proxy" curl -sf "http://127.0.0.1:$PORT/"

wrk_start load "http://127.0.0.1:$PORT/" 32 1
sleep 1
colour=blue
for i in $(seq 1 ${SWITCHES:-12}); do
  if [ "$colour" = blue ]; then colour=green; port=$GREEN; else colour=blue; port=$BLUE; fi
  md proxy deploy app --target "127.0.0.1:$port" >/dev/null 2>"$T/switch.err" || die "switch $i failed: $(cat "$T/switch.err")"
  sleep 0.3
  # A canary of the same colour at a new weight: another table swap.
  md proxy canary app --target "127.0.0.1:$port" --weight $(( (i * 37) % 101 )) >/dev/null 2>"$T/switch.err" \
    || die "canary $i failed: $(cat "$T/switch.err")"
  sleep 0.3
done
sleep 0.5
wrk_expect_clean load
case $WRK_VERSIONS in *blue:*green:*) ;; *) die "both versions should have served: $WRK_VERSIONS" ;; esac
expect_eq "$(http_get "http://127.0.0.1:$PORT/")" "$colour" "final colour"
md proxy metrics --json | python3 -c '
import json,sys
d=json.load(sys.stdin)
sets=d["services"][0]["sets"]
bad=sum(s["counters"]["status"]["5xx"]+s["counters"]["aborted"] for s in sets)
assert bad == 0, sets' || die "the proxy counted failed requests"
log "ok: $WRK_REQUESTS requests, 0 failed, across $(( ${SWITCHES:-12} * 2 )) table swaps"
