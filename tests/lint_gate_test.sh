#!/usr/bin/env bash
# scripts/lint.sh, the style gate of CI, can fail: in a throw-away clone of the
# committed tree it passes, then refuses a misformatted file (naming it) and a
# committed change that clang-tidy flags.
# Usage: lint_gate_test.sh SOURCE_DIR BUILD_DIR   (BUILD_DIR has compile_commands.json)
set -euo pipefail
src=$(cd "$1" && pwd -P) build=$(cd "$2" && pwd -P)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
git clone -q --shared "$src" "$t/repo"
cd "$t/repo"
git config user.email lint@test && git config user.name lint
mkdir -p "$t/build"
# The clone's sources, compiled from the original build directory (its
# generated headers and working directory).
sed -e "s|$src/|$t/repo/|g" -e "s|$t/repo/${build#"$src"/}|$build|g" \
  "$build/compile_commands.json" >"$t/build/compile_commands.json"

LINT_BASE=HEAD bash scripts/lint.sh "$t/build" >"$t/ok.out" 2>&1 || { cat "$t/ok.out"; fail "lint refuses the committed tree"; }

printf 'int   badly_formatted (  ) ;\n' >>src/core/json.h
if LINT_BASE=HEAD bash scripts/lint.sh "$t/build" >"$t/fmt.out" 2>&1; then fail "a misformatted file passed"; fi
grep -q 'not clang-format clean: src/core/json.h' "$t/fmt.out" || { cat "$t/fmt.out"; fail "the misformatted file is not named"; }
git checkout -q src/core/json.h

printf '\nnamespace {\n[[maybe_unused]] int* lint_probe() { return 0; }\n}  // namespace\n' >>src/core/json.cc
git commit -qam "probe: a literal 0 as a pointer"
if bash scripts/lint.sh "$t/build" >"$t/tidy.out" 2>&1; then fail "a clang-tidy finding in a changed file passed"; fi
grep -q 'modernize-use-nullptr' "$t/tidy.out" || { cat "$t/tidy.out"; fail "the clang-tidy finding is not shown"; }
echo "lint gate: passes the tree, refuses a format and a clang-tidy finding"
