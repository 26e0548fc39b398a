#!/usr/bin/env bash
# Nothing lost after a command ends: the host agent drains the outbox.
# A real agent, a real Standard Webhooks receiver on loopback (and a real
# SMTP server). The receiver goes down for 60 s while events are queued;
# the commands that queued them end. When it comes back, with no further
# meshdeploy command run, it receives every event exactly once and in the
# order they happened — sent by the agent. The agent keeps only the
# channels' secrets (0600), never the vault key.
. "$(dirname "$0")/lib.sh"
e2e_init

PY=/usr/bin/python3
DOWN_SECONDS=${DOWN_SECONDS:-60}
WHSEC="whsec_$($PY -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())')"
HOOK_TOKEN="tok-$($PY -c 'import secrets;print(secrets.token_hex(12))')"
SMTP_PASSWORD="pw-$($PY -c 'import secrets;print(secrets.token_hex(12))')"
APP_SECRET="app-$($PY -c 'import secrets;print(secrets.token_hex(12))')"

WEBHOOK_SECRETS="$WHSEC" start_receiver hooks webhook_receiver.py
SMTP_AUTH_USER=deploy SMTP_AUTH_PASSWORD="$SMTP_PASSWORD" start_receiver smtp smtp_receiver.py
PROXY_PORT=$(free_port)
E2E_LOGS="$T/hooks.log $T/smtp.log $T/agent.log"

mkdir -p "$T/app"
cat >"$T/app/meshdeploy.yml" <<YML
app: shop
defaults:
  services:
    web: {command: "true"}
  state: state.db
  agent: {root: $T/agent}
  proxy: {listen: "127.0.0.1:$PROXY_PORT"}
  migrations: {enabled: false}
  notifications:
    channels:
      hooks:
        kind: webhook
        url_secret: HOOK_URL
        signing_secrets: [HOOK_KEY]
        timeout: 2s
      mail:
        kind: email
        smtp_url: smtp://127.0.0.1:$smtp_PORT
        smtp_user: deploy
        smtp_password_secret: SMTP_PASSWORD
        starttls: false
        from: deploys@example.com
        to: [ops@example.com]
environments:
  test: {}
YML
export MESHDEPLOY_KEY_TEST
MESHDEPLOY_KEY_TEST=$(md secrets keygen --env test 2>/dev/null)
setsecret() { printf '%s' "$2" | mdt secrets set "$1" >/dev/null; }
setsecret HOOK_URL "http://127.0.0.1:$hooks_PORT/in/$HOOK_TOKEN"
setsecret HOOK_KEY "$WHSEC"
setsecret SMTP_PASSWORD "$SMTP_PASSWORD"
setsecret APP_TOKEN "$APP_SECRET"
start_agent

# ---- 1. a command hands the environment to the agent ----------------------------
mdt notify test >"$T/test1.out" 2>&1 || die "notify test: $(cat "$T/test1.out")"
wait_for 10 "the agent's hand-off file" test -s "$T/agent/notify/test.json"
expect_eq "$(stat -c %a "$T/agent/notify/test.json")" 600 "mode of the hand-off file"
expect_eq "$(stat -c %a "$T/agent/notify")" 700 "mode of the hand-off folder"
grep -qF "$APP_SECRET" "$T/agent/notify/test.json" && die "an app secret was handed to the agent"
grep -qF "$MESHDEPLOY_KEY_TEST" "$T/agent/notify/test.json" && die "the vault key was handed to the agent"
grep -qF "$HOOK_TOKEN" "$T/agent/notify/test.json" || die "the check above cannot fail: the channel URL should be there"

# ---- 2. the receiver goes down; events are queued; every command ends ------------
log "hooks receiver down for ${DOWN_SECONDS}s"
stop_receiver hooks
DOWN_AT=$(date +%s)
for i in 1 2 3 4; do
  rc=0; mdt notify test --channel hooks --wait 0s >"$T/down$i.out" 2>&1 || rc=$?
  expect_eq "$rc" 1 "exit code of notify test $i while the receiver is down"
done
grep -q "The host agent sends the queued notifications" "$T/down4.out" ||
  die "notify test should say the agent sends the rest: $(cat "$T/down4.out")"
QUEUED=$(sqlite3 "$T/app/state.db" "SELECT count(*) FROM outbox WHERE status = 'pending' AND channel = 'hooks'")
expect_eq "$QUEUED" 4 "events queued for the hooks channel"
tries() { sqlite3 "$T/app/state.db" "SELECT sum(attempts) FROM outbox WHERE channel = 'hooks' AND status = 'pending'"; }
TRIES_AFTER_COMMANDS=$(tries)
# The outage itself, not a wait for a result: the agent keeps retrying meanwhile.
while [ $(( $(date +%s) - DOWN_AT )) -lt "$DOWN_SECONDS" ]; do sleep 1; done
[ "$(tries)" -gt "$TRIES_AFTER_COMMANDS" ] ||
  die "the agent did not retry while the receiver was down ($(tries) attempts)"

# ---- 3. back, with no command run: every event once, in order -------------------
log "hooks receiver back on the same port; no meshdeploy command from here"
WEBHOOK_SECRETS="$WHSEC" start_receiver hooks webhook_receiver.py --port "$hooks_PORT"
delivered() { [ "$($PY -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["status"] == 200))' "$T/hooks.jsonl")" -ge 5 ]; }
wait_for 150 "the agent to deliver the 4 queued events" delivered
sqlite3 "$T/app/state.db" "SELECT event_id FROM outbox WHERE channel = 'hooks' ORDER BY id" >"$T/order.txt"
$PY - "$T" <<'PY' || die "the receiver must get every event exactly once, in order"
import json, sys
t = sys.argv[1]
got = [json.loads(l) for l in open(f"{t}/hooks.jsonl")]
ok = [g for g in got if g["status"] == 200]
ids = [g["headers"]["webhook-id"] for g in ok]
want = open(f"{t}/order.txt").read().split()
assert ids == want, (ids, want)                      # every one, once, in the outbox's order
assert all(g["verified"] for g in ok), got           # signed by the agent with the channel's key
assert not any(g["duplicate"] for g in got), got
PY
grep -q "delivered test event" "$T/agent.log" || die "the agent did not send them"
pending=$(sqlite3 "$T/app/state.db" "SELECT count(*) FROM outbox WHERE status != 'delivered'")
expect_eq "$pending" 0 "undelivered rows"
for v in "$WHSEC" "$SMTP_PASSWORD" "$HOOK_TOKEN" "$APP_SECRET"; do
  grep -qF -- "$v" "$T/agent.log" && die "a secret value leaked into the agent's log"
done
log "every queued event delivered once, in order, by the agent"
log "PASS"
