#!/usr/bin/env bash
# Style gate, run by scripts/test.sh after the release build (it needs that
# build's compile_commands.json) and usable alone:
#   1. every tracked C++ file is clang-format clean (.clang-format);
#   2. clang-tidy (.clang-tidy) finds nothing in the C++ files changed since
#      LINT_BASE (default: the previous commit; CI on a pull request passes
#      the merge base). WHY only changed files: clang-tidy costs ~15 s of CPU
#      per file here, the whole tree would double the CI time; each change is
#      checked when it is made.
# Usage: scripts/lint.sh [BUILD_DIR]   (default build/release)
# FIX=1 rewrites unformatted files in place instead of failing.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}

mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${FIX:-0}" = 1 ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}" 2>"${TMPDIR:-/tmp}/md-format.$$"; then
  grep 'code should be clang-formatted' "${TMPDIR:-/tmp}/md-format.$$" | cut -d: -f1 | sort -u | sed 's/^/not clang-format clean: /'
  rm -f "${TMPDIR:-/tmp}/md-format.$$"
  echo "lint: run FIX=1 scripts/lint.sh (or clang-format -i FILE) and commit" >&2
  exit 1
fi
rm -f "${TMPDIR:-/tmp}/md-format.$$"
echo "lint: ${#files[@]} C++ files clang-format clean"

base=${LINT_BASE:-HEAD~1}
# A push that creates a branch has no "before" (GitHub sends 40 zeros).
[[ "$base" =~ ^0+$ ]] && base=HEAD~1
if ! git rev-parse -q --verify "$base^{commit}" >/dev/null; then
  echo "lint: no base commit $base (a one-commit clone?): clang-tidy skipped"
  exit 0
fi
[ -f "$build/compile_commands.json" ] || {
  echo "lint: $build/compile_commands.json missing: configure the build first" >&2
  exit 1
}
# Only translation units the build knows; diagnostics are limited to the
# changed file itself (--header-filter), so an unchanged header's findings
# never block an unrelated change.
mapfile -t changed < <(git diff --name-only --diff-filter=AM "$base" -- '*.cc' |
  while read -r f; do grep -q "\"file\": \".*/$f\"" "$build/compile_commands.json" && echo "$f"; done)
if [ "${#changed[@]}" = 0 ]; then
  echo "lint: no C++ translation unit changed since $base"
  exit 0
fi
echo "lint: clang-tidy on ${#changed[@]} file(s) changed since $(git rev-parse --short "$base")"
printf '%s\n' "${changed[@]}" |
  xargs -P "${JOBS:-$(nproc)}" -n 1 clang-tidy -p "$build" --quiet --header-filter='^$' \
    --warnings-as-errors='*' 2>/dev/null
echo "lint: clang-tidy clean"
