#!/usr/bin/env bash
# Builds one versioned release artifact of the example app, as a CI job would:
#   dist/meshhook-VERSION.tar.gz         package.json + build/ (node build)
#   dist/meshhook-VERSION.tar.gz.sha256  "<hex>  <file>", as sha256sum writes it
# Usage: build-artifact.sh VERSION [--out DIR] [--behave KEY=VALUE]...
#   --behave bakes a misbehaviour into the release (src/behaviour.js lists the
#   knobs), e.g. --behave MESHHOOK_ERROR_RATE=1 for a release answering 500.
# The archive is reproducible: same inputs, same bytes, same sha256.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
version=${1:?usage: build-artifact.sh VERSION [--out DIR] [--behave KEY=VALUE]...}
shift
out=$here/dist
behave=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --behave) behave+=("${2:?--behave needs KEY=VALUE}"); shift 2 ;;
    *) echo "build-artifact.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
case $version in
  ''|*[!A-Za-z0-9._-]*) echo "build-artifact.sh: version '$version' may hold only A-Z a-z 0-9 . _ -" >&2; exit 2 ;;
esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/build" "$out"
cp "$here/package.json" "$stage/"
cp "$here"/src/*.js "$stage/build/"
printf '{"version":"%s"}\n' "$version" >"$stage/build/version.json"
{
  printf '{'
  sep=
  for kv in ${behave[@]+"${behave[@]}"}; do
    key=${kv%%=*}; val=${kv#*=}
    case $key in MESHHOOK_*) ;; *) echo "build-artifact.sh: --behave key '$key' must start with MESHHOOK_" >&2; exit 2 ;; esac
    printf '%s"%s":"%s"' "$sep" "$key" "$val"; sep=,
  done
  printf '}\n'
} >"$stage/build/behaviour.json"

file=meshhook-$version.tar.gz
tar -C "$stage" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u+rw,go+r-w \
  -cf - package.json build | gzip -n -9 >"$out/$file.tmp"
mv "$out/$file.tmp" "$out/$file"
(cd "$out" && sha256sum "$file" >"$file.sha256.tmp" && mv "$file.sha256.tmp" "$file.sha256")
echo "$out/$file"
