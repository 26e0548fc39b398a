#!/usr/bin/env sh
# pre_deploy hook: refuse a production deploy of a version without release
# notes. A non-zero exit stops the deploy before anything changes.
set -eu
notes=${RELEASE_NOTES_DIR:-release-notes}/$MESHDEPLOY_VERSION.md
if [ ! -s "$notes" ]; then
  echo "no release notes at $notes for $MESHDEPLOY_VERSION" >&2
  exit 1
fi
