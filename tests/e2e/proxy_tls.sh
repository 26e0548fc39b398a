#!/usr/bin/env bash
# HTTPS listener from PEM files: a self-signed certificate made here with the
# openssl CLI; requests over TLS reach the upstream with X-Forwarded-Proto
# https; keep-alive works over TLS; bad key material is refused at start.
. "$(dirname "$0")/lib.sh"
e2e_init
command -v openssl >/dev/null || die "openssl CLI missing"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >/dev/null 2>&1 \
  || die "openssl req failed"
chmod 600 "$T/key.pem"

cat >"$T/up.py" <<'PY'
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("proto=" + self.headers.get("X-Forwarded-Proto", "") + " host=" +
                self.headers.get("X-Forwarded-Host", "")).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
UP=$(free_port); spawn up python3 "$T/up.py" "$UP"
wait_for 10 "upstream" curl -sf "http://127.0.0.1:$UP/"

PORT=$(free_port); HPORT=$(free_port)
spawn proxy "$MESHDEPLOY_BIN" proxy run --listen "127.0.0.1:$HPORT" --tls-listen "127.0.0.1:$PORT" \
  --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" --route "app=127.0.0.1:$UP" --health-path /
E2E_LOGS="$T/proxy.log"
wait_for 10 "the HTTPS listener" curl -sf --cacert "$T/cert.pem" "https://localhost:$PORT/"
expect_eq "$(curl -s --cacert "$T/cert.pem" "https://localhost:$PORT/x")" "proto=https host=localhost:$PORT" "over TLS"
expect_eq "$(curl -s "http://127.0.0.1:$HPORT/x")" "proto=http host=127.0.0.1:$HPORT" "plain listener beside it"
# Several requests on one TLS connection (curl reuses it within one run).
out=$(curl -s --cacert "$T/cert.pem" "https://localhost:$PORT/a" "https://localhost:$PORT/b" \
  "https://localhost:$PORT/c" -w '\n%{num_connects}\n')
expect_eq "$(grep -o 'proto=https' <<<"$out" | wc -l)" 3 "three answers over TLS"
expect_eq "$(tail -1 <<<"$out" | tr -d '\n')" 0 "reused connection"
# A client that does not trust the certificate fails the handshake, and the proxy keeps serving.
curl -s "https://localhost:$PORT/" >/dev/null 2>&1 && die "an untrusted certificate was accepted"
expect_eq "$(curl -s --cacert "$T/cert.pem" "https://localhost:$PORT/y")" "proto=https host=localhost:$PORT" "after a failed handshake"
# A plain-HTTP request on the TLS port is not answered as HTTP.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$PORT/" || true)
[ "$code" != 200 ] || die "plain HTTP was served on the TLS port"

log "bad key material is refused"
echo "not a key" >"$T/bad.pem"
code=0; "$MESHDEPLOY_BIN" proxy run --listen "127.0.0.1:$(free_port)" --tls-cert "$T/cert.pem" \
  --tls-key "$T/bad.pem" >"$T/bad.out" 2>&1 || code=$?
[ "$code" -ne 0 ] || die "a bad key was accepted"
grep -q "not a PEM private key" "$T/bad.out" || die "bad key message: $(cat "$T/bad.out")"
code=0; "$MESHDEPLOY_BIN" proxy run --listen "127.0.0.1:$(free_port)" --tls-cert "$T/nope.pem" \
  --tls-key "$T/key.pem" >"$T/bad.out" 2>&1 || code=$?
expect_eq "$code" 5 "exit code for a missing certificate"
log "ok"
