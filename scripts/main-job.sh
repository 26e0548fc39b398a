#!/usr/bin/env bash
# The main job (README, first command): install, build the meshdeploy binary,
# then show it working end to end on the example app in a throw-away
# directory (scripts/demo.sh: deploy, blue-green and canary under load, an
# automatic and a manual rollback, a summary; non-zero exit on any failure).
# JOBS=N sets the build's parallelism (default: the number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
bash scripts/install-deps.sh
cmake --preset release >/dev/null
# WHY only this target: the demo needs the binary; scripts/test.sh builds the
# tests, fuzzers and benchmarks.
cmake --build --preset release -j "${JOBS:-$(nproc)}" --target meshdeploy
exec bash scripts/demo.sh "$src/build/release/src/cli/meshdeploy"
