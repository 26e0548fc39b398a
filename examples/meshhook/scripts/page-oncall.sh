#!/usr/bin/env sh
# on_failure / on_rollback hook: tell whoever is on call. This example only
# prints; replace the echo with your paging tool's CLI.
set -eu
echo "page on-call: environment $1: $2 (deployment $MESHDEPLOY_DEPLOYMENT_ID, version $MESHDEPLOY_VERSION, previous $MESHDEPLOY_PREVIOUS_VERSION)"
