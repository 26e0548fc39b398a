#!/usr/bin/env bash
# The environment's config is obeyed or the deploy refuses: an agent that
# listens elsewhere than proxy.listen, serves plain HTTP where the config
# names a certificate, and owns another root than agent.root makes the
# deploy refuse at preflight, naming both values of each, one reason a line
# and each once, with nothing moved; with the config matching again the same
# deploy goes through.
. "$(dirname "$0")/lib.sh"
e2e_init
PROXY_PORT=$(free_port)
write_config
build_app v1
build_app v2
start_agent
mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }
expect_only v1

other=$(free_port)
cp "$T/app/meshdeploy.yml" "$T/app/good.yml"
sed -i "s|proxy: {listen: \"127.0.0.1:$PROXY_PORT\"|proxy: {listen: \"127.0.0.1:$other\", tls_cert: $T/cert.pem, tls_key: $T/key.pem|" \
  "$T/app/meshdeploy.yml"
sed -i "s|agent: {root: $T/agent}|agent: {root: $T/elsewhere, socket: $T/agent/agent.sock}|" "$T/app/meshdeploy.yml"
grep -q "listen: \"127.0.0.1:$other\"" "$T/app/meshdeploy.yml" || die "config not rewritten"
grep -q "root: $T/elsewhere" "$T/app/meshdeploy.yml" || die "config root not rewritten"

log "a config the agent does not match: refused, both values named, nothing moved"
rc=0
mdt deploy --version v2 >"$T/refused.out" 2>&1 || rc=$?
expect_eq "$rc" 1 "exit code of the refused deploy"
out=$(cat "$T/refused.out")
grep -q "preflight         failed" "$T/refused.out" || die "not refused at preflight: $out"
listen_line=$(grep "proxy.listen is 127.0.0.1:$other" "$T/refused.out" || true)
[ -n "$listen_line" ] || die "the listener mismatch is not named: $out"
grep -q "listens on 127.0.0.1:$PROXY_PORT" <<<"$listen_line" || die "the agent's listener is not on the line: $listen_line"
grep -q "tls_cert" <<<"$listen_line" && die "two reasons on one line: $listen_line"
expect_eq "$(grep -c "proxy.listen is" "$T/refused.out")" 1 "times the listener reason is printed"
grep -q "proxy.tls_cert is $T/cert.pem.*plain HTTP" "$T/refused.out" || die "the TLS mismatch is not named: $out"
expect_eq "$(grep -c "proxy.tls_cert is" "$T/refused.out")" 1 "times the TLS reason is printed"
grep -q "agent.root is $T/elsewhere .*root of the agent on host local is $T/agent" "$T/refused.out" || die "the root mismatch is not named: $out"
expect_eq "$(grep -c "agent.root is" "$T/refused.out")" 1 "times the root reason is printed"
[ ! -e "$T/agent/releases/v2" ] || die "v2 was unpacked on the host"
expect_only v1
expect_journal_complete "$(last_deployment)"
mdt history -n 1 | grep -q "failed" || die "history does not show the refused deploy: $(mdt history -n 1)"

log "the config matching again: the same deploy goes through"
cp "$T/app/good.yml" "$T/app/meshdeploy.yml"
mdt deploy --version v2 >"$T/deploy-v2.out" 2>&1 || { cat "$T/deploy-v2.out"; die "deploy v2 failed"; }
expect_only v2
log "ok"
