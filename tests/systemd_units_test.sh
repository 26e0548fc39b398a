#!/usr/bin/env bash
# The systemd units in packaging/systemd/ pass `systemd-analyze verify`
# (no running systemd needed). The service's @BINDIR@ is pointed at the
# built binary, since verify checks that ExecStart= is executable.
# Usage: systemd_units_test.sh SOURCE_DIR MESHDEPLOY_BINARY
set -euo pipefail
src=$1 bin=$2
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (scripts/install-deps.sh)" >&2; exit 1; }
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
sed "s|@BINDIR@|$(dirname "$bin")|g" "$src/packaging/systemd/meshdeploy-agent.service.in" \
  >"$t/meshdeploy-agent.service"
cp "$src/packaging/systemd/meshdeploy-agent.socket" "$t/"
grep -q '^Type=notify$' "$t/meshdeploy-agent.service" || { echo "service is not Type=notify" >&2; exit 1; }
grep -q '^\[Install\]$' "$t/meshdeploy-agent.service" || { echo "service has no [Install]" >&2; exit 1; }
# WHY </dev/null and SYSTEMD_PAGER: CI has no TTY; verify must not wait on one.
out=$(cd "$t" && SYSTEMD_PAGER=cat systemd-analyze verify --man=no \
  meshdeploy-agent.service meshdeploy-agent.socket </dev/null 2>&1) || {
  echo "$out" >&2
  exit 1
}
# verify reports some problems as warnings with exit 0: none allowed.
if [ -n "$out" ]; then
  echo "$out" >&2
  exit 1
fi
echo "systemd units verified"
