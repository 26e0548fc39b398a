#!/usr/bin/env bash
# The main job (README, first command): install, build, then show meshdeploy
# working end to end on the example app in a throw-away directory.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "${JOBS:-$(nproc)}"
bin=$src/build/release/src/cli/meshdeploy
exec bash scripts/demo.sh "$bin"
