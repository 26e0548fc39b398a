#!/usr/bin/env bash
# Installs the npm test peers of the migration engine — the Supabase CLI and
# dbmate, both of which ship their binaries inside the npm package — into
# build/npm-tools (git-ignored). Idempotent: when the pinned versions are
# already there it does nothing and returns at once.
#   scripts/install-npm-deps.sh            -> install if missing
#   MESHDEPLOY_NPM_TOOLS=DIR               -> install somewhere else
# Tests and benchmarks find the binaries at $dir/node_modules/.bin/{supabase,dbmate}.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${MESHDEPLOY_NPM_TOOLS:-build/npm-tools}
pins=(supabase@2.122.1 dbmate@2.36.0)
stamp="$dir/.installed"
want="${pins[*]}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
  && [ -x "$dir/node_modules/.bin/supabase" ] && [ -x "$dir/node_modules/.bin/dbmate" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "install-npm-deps: npm not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name":"meshdeploy-npm-tools","private":true}' >"$dir/package.json"
# WHY --foreground-scripts: the supabase package fetches nothing at install
# time in these versions, but keeps any postinstall output visible in CI logs.
(cd "$dir" && npm install --no-audit --no-fund --loglevel=error --foreground-scripts "${pins[@]}" >/dev/null)
"$dir/node_modules/.bin/supabase" --version >/dev/null
"$dir/node_modules/.bin/dbmate" --version >/dev/null
echo "$want" >"$stamp"
