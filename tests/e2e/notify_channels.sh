#!/usr/bin/env bash
# Deployment notifications with the real binary and real receivers on
# loopback: a Standard Webhooks receiver that verifies signatures with
# Python's hmac (and the specification's test vector), a Slack-shaped
# receiver that checks Block Kit, an aiosmtpd SMTP server with
# authentication. Then a receiver that is down and comes back: every event
# arrives exactly once, in order; `notify status` and `notify retry` show
# and recover a permanent failure. No secret value appears anywhere it is
# not meant to be: receivers, meshdeploy's output, the state store.
. "$(dirname "$0")/lib.sh"
e2e_init

PY=/usr/bin/python3  # Debian's, which has aiosmtpd
md() { "$MESHDEPLOY_BIN" "$@" -c "$T/meshdeploy.yml"; }

# ---- receivers ---------------------------------------------------------------
WHSEC_OLD=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
WHSEC_NEW="whsec_$($PY -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())')"
HOOK_TOKEN="tok-$($PY -c 'import secrets;print(secrets.token_hex(12))')"
SLACK_TOKEN="T0-B0-$($PY -c 'import secrets;print(secrets.token_hex(12))')"
SMTP_PASSWORD="pw-$($PY -c 'import secrets;print(secrets.token_hex(12))')"

WEBHOOK_SECRETS="$WHSEC_NEW" start_receiver hooks webhook_receiver.py
start_receiver slack webhook_receiver.py --slack
SMTP_AUTH_USER=deploy SMTP_AUTH_PASSWORD="$SMTP_PASSWORD" start_receiver smtp smtp_receiver.py
E2E_LOGS="$T/hooks.log $T/slack.log $T/smtp.log"

# ---- configuration and vault ---------------------------------------------------
cat >"$T/meshdeploy.yml" <<YML
app: shop
defaults:
  services:
    web: {command: "true"}
  state: $T/state.db
  migrations: {enabled: false}
  notifications:
    dashboard_url: https://deploy.example.com/{environment}/{deployment}
    channels:
      hooks:
        kind: webhook
        url_secret: HOOK_URL
        signing_secrets: [HOOK_KEY_NEW, HOOK_KEY_OLD]
        timeout: 2s
      slack:
        kind: slack
        url_secret: SLACK_URL
        events: [failed, rolled_back]
      mail:
        kind: email
        smtp_url: smtp://127.0.0.1:$smtp_PORT
        smtp_user: deploy
        smtp_password_secret: SMTP_PASSWORD
        starttls: false
        from: "Déploiements <deploys@example.com>"
        to: [ops@example.com, "Zoë <zoe@example.org>"]
environments:
  production: {}
YML
export MESHDEPLOY_KEY_PRODUCTION
MESHDEPLOY_KEY_PRODUCTION=$("$MESHDEPLOY_BIN" secrets keygen --env production 2>/dev/null)
setsecret() { printf '%s' "$2" | md secrets set "$1" --env production >/dev/null; }
setsecret HOOK_URL "http://127.0.0.1:$hooks_PORT/in/$HOOK_TOKEN"
setsecret HOOK_KEY_NEW "$WHSEC_NEW"
setsecret HOOK_KEY_OLD "$WHSEC_OLD"
setsecret SLACK_URL "http://127.0.0.1:$slack_PORT/services/$SLACK_TOKEN"
setsecret SMTP_PASSWORD "$SMTP_PASSWORD"
md config validate >/dev/null || die "config does not validate: $(md config validate 2>&1)"

# ---- 1. every channel, every receiver checks what it got ------------------------
log "notify test: all channels"
md notify test --env production >"$T/test1.out" 2>&1 || die "notify test failed: $(cat "$T/test1.out")"
grep -q "hooks *delivered" "$T/test1.out" || die "hooks not delivered: $(cat "$T/test1.out")"
grep -q "slack *delivered" "$T/test1.out" || die "slack not delivered: $(cat "$T/test1.out")"
grep -q "mail *delivered" "$T/test1.out" || die "mail not delivered: $(cat "$T/test1.out")"

$PY - "$T" <<'PY' || die "receivers did not get what they should"
import json, sys
t = sys.argv[1]
def records(name):
    return [json.loads(l) for l in open(f"{t}/{name}.jsonl")]
hooks = records("hooks")
assert len(hooks) == 1, hooks
h = hooks[0]
assert h["verified"] is True and h["status"] == 200, h          # Python hmac, rotation: new key only
assert len(h["headers"]["webhook-signature"].split(" ")) == 2, h  # both keys sign while rotating
body = json.loads(h["body"])
assert body["type"] == "deployment.test" and body["data"]["environment"] == "production", body
slack = records("slack")
assert len(slack) == 1 and slack[0]["problems"] == [] and slack[0]["status"] == 200, slack
blocks = json.loads(slack[0]["body"])["blocks"]
assert blocks[0]["type"] == "header" and "Test notification" in blocks[0]["text"]["text"], blocks
mail = records("smtp")
assert len(mail) == 1, mail
m = mail[0]
assert m["auth_user"] == "deploy", m
assert sorted(m["rcpt_tos"]) == ["ops@example.com", "zoe@example.org"], m
assert m["content_type"] == "multipart/alternative", m
assert [p["type"] for p in m["parts"]] == ["text/plain", "text/html"], m
assert m["subject"] == "[meshdeploy] Test notification from meshdeploy for production", m
assert m["headers"]["From"] == "Déploiements <deploys@example.com>", m
PY
log "webhook signature verified by Python hmac, Block Kit valid, mail with both parts"

# ---- 2. a receiver that is down, then back -------------------------------------
log "hooks receiver down"
stop_receiver hooks
for i in 1 2 3; do
  if md notify test --env production --channel hooks --wait 0s >"$T/down$i.out" 2>&1; then
    die "notify test succeeded with the receiver down: $(cat "$T/down$i.out")"
  fi
done
grep -q "retrying" "$T/down1.out" || die "first test should be retrying: $(cat "$T/down1.out")"
grep -q "queued behind 1 earlier" "$T/down2.out" || die "second test should wait in order: $(cat "$T/down2.out")"
md notify status --env production --json >"$T/status.json"
$PY - "$T/status.json" <<'PY' || die "status should list 3 pending deliveries: $(cat "$T/status.json")"
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["status"] for r in rows] == ["pending"] * 3, rows
# Each test sends what is queued before it first: the oldest was tried 3 times.
assert rows[0]["attempts"] == 3 and "connect" in rows[0]["last_error"].lower(), rows
PY
md notify status --env production | grep -q "3 pending, 0 failed" || die "status table"

log "hooks receiver back on the same port"
WEBHOOK_SECRETS="$WHSEC_NEW" start_receiver hooks webhook_receiver.py --port "$hooks_PORT"
md notify test --env production --channel hooks --wait 30s >"$T/up.out" 2>&1 || die "after recovery: $(cat "$T/up.out")"
grep -q "Also delivered 3 earlier" "$T/up.out" || die "the queued events should go first: $(cat "$T/up.out")"
$PY - "$T" <<'PY' || die "the restarted receiver must get every event exactly once, in order"
import json, sys
t = sys.argv[1]
got = [json.loads(l) for l in open(f"{t}/hooks.jsonl")]
ok = [g for g in got if g["status"] == 200]
ids = [g["headers"]["webhook-id"] for g in ok]
assert len(ids) == 5 and len(set(ids)) == 5, ids           # the first test + 3 queued + this one
assert all(g["verified"] for g in ok), got
assert not any(g["duplicate"] for g in got), got
times = [json.loads(g["body"])["timestamp"] for g in ok]
assert times == sorted(times), times                     # in the order they happened
PY
log "every queued event delivered once, in order"

# ---- 3. a permanent failure, then `notify retry` -------------------------------
stop_receiver hooks
WEBHOOK_SECRETS="$WHSEC_NEW" start_receiver hooks webhook_receiver.py --port "$hooks_PORT" --script 410
md notify test --env production --channel hooks --wait 5s >"$T/gone.out" 2>&1 && die "410 must fail"
grep -q "failed *HTTP 410" "$T/gone.out" || die "410 should be a permanent failure: $(cat "$T/gone.out")"
ID=$(md notify status --env production --json | $PY -c 'import json,sys; r=json.load(sys.stdin); assert len(r)==1 and r[0]["status"]=="failed", r; print(r[0]["id"])')
md notify retry "$ID" --env production >"$T/retry.out" 2>&1 || die "retry: $(cat "$T/retry.out")"
grep -q "delivered" "$T/retry.out" || die "retry output: $(cat "$T/retry.out")"
md notify status --env production | grep -q "No pending or failed" || die "nothing should be left"
md notify retry "$ID" --env production >/dev/null 2>&1 && die "retrying a delivered event must be refused"
rc=0; md notify retry 999999 --env production >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 5 "exit code for an unknown delivery"
log "permanent failure recorded and retried"

# ---- 4. no secret anywhere it does not belong ----------------------------------
sqlite3 "$T/state.db" .dump >"$T/state.dump"
cat "$T"/*.out >"$T/all-output.txt"
check_absent() {  # VALUE FILE...
  local v=$1; shift
  for f in "$@"; do grep -qF -- "$v" "$f" && die "a secret value leaked into $f"; done
  return 0
}
for v in "$WHSEC_NEW" "$WHSEC_OLD" "$SMTP_PASSWORD" "$HOOK_TOKEN" "$SLACK_TOKEN"; do
  check_absent "$v" "$T/state.dump" "$T/all-output.txt"
done
# Each receiver gets only its own URL's token, never a key or a password.
for v in "$WHSEC_NEW" "$WHSEC_OLD" "$SMTP_PASSWORD" "$SLACK_TOKEN"; do check_absent "$v" "$T/hooks.jsonl"; done
for v in "$WHSEC_NEW" "$WHSEC_OLD" "$SMTP_PASSWORD" "$HOOK_TOKEN"; do check_absent "$v" "$T/slack.jsonl"; done
for v in "$WHSEC_NEW" "$WHSEC_OLD" "$SMTP_PASSWORD" "$HOOK_TOKEN" "$SLACK_TOKEN"; do check_absent "$v" "$T/smtp.jsonl"; done
grep -q "$HOOK_TOKEN" "$T/hooks.jsonl" || die "the check above cannot fail: the hook token should be in its own receiver's log"
log "no secret in receivers, output or the state store"
log "PASS"
