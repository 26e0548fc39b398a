#!/usr/bin/env sh
# post_deploy hook: the release that now takes all traffic answers with its
# version. meshdeploy passes MESHDEPLOY_ENVIRONMENT, _VERSION,
# _PREVIOUS_VERSION, _DEPLOYMENT_ID and _REASON.
set -eu
url=${SMOKE_URL:-http://127.0.0.1:8081/}
want=${1:-$MESHDEPLOY_VERSION}
body=$(curl -fsS --max-time 5 "$url")
case $body in
  *"\"version\":\"$want\""*) echo "smoke test: $url serves $want" ;;
  *) echo "smoke test: $url answered '$body', expected version $want" >&2; exit 1 ;;
esac
