#!/usr/bin/env bash
# `cmake --install` and the .deb (docs/installation.md): the files land where
# a Debian system looks for them, the binary is stripped and its split debug
# info is found by build id and debuglink, the man page renders, bash
# completes a subcommand, and the .deb carries Depends: from the shared
# libraries, installs nothing that starts a service, and unpacks to a binary
# that runs. WHY in the release stage (label e2e): it packages the release
# build's binary, which the sanitizer stage does not build.
# Usage: install_test.sh BUILD_DIR
set -euo pipefail
build=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
die() { echo "install_test: $*" >&2; exit 1; }

# ---- cmake --install into a DESTDIR ------------------------------------------
DESTDIR="$t/root" cmake --install "$build" --prefix /usr >"$t/install.log" || { cat "$t/install.log"; die "cmake --install failed"; }
r=$t/root/usr
id=$(readelf -n "$r/bin/meshdeploy" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
[ -n "$id" ] || die "installed binary has no build id"
debug=$r/lib/debug/.build-id/${id:0:2}/${id:2}.debug
for f in bin/meshdeploy lib/systemd/system/meshdeploy-agent.service \
         lib/systemd/system/meshdeploy-agent.socket lib/sysusers.d/meshdeploy.conf \
         share/man/man1/meshdeploy.1 share/bash-completion/completions/meshdeploy \
         share/zsh/vendor-completions/_meshdeploy share/doc/meshdeploy/copyright; do
  [ -f "$r/$f" ] || die "missing /usr/$f"
done
[ -f "$debug" ] || die "missing the debug file $debug"
grep -q '^ExecStart=/usr/bin/meshdeploy agent run' "$r/lib/systemd/system/meshdeploy-agent.service" ||
  die "the unit does not name /usr/bin/meshdeploy"

# Stripped: no .debug_info in the binary, all of it in the debug file.
readelf -S "$r/bin/meshdeploy" | grep -q '\.debug_info' && die "installed binary is not stripped"
readelf -S "$debug" | grep -q '\.debug_info' || die "debug file has no .debug_info"
[ "$(readelf -n "$debug" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')" = "$id" ] ||
  die "debug file's build id differs from the binary's"
# The debuglink names the debug file and carries its CRC32 (what gdb checks).
python3 - "$r/bin/meshdeploy" "$debug" <<'PY' || die "debuglink does not resolve"
import os, struct, subprocess, sys, zlib
binary, debug = sys.argv[1], sys.argv[2]
out = subprocess.run(["objcopy", "--dump-section", ".gnu_debuglink=/dev/stdout", binary],
                     capture_output=True, check=True).stdout
name = out[:out.index(b"\0")].decode()
crc, = struct.unpack("<I", out[-4:])
assert name == os.path.basename(debug), (name, debug)
with open(debug, "rb") as f:
    assert zlib.crc32(f.read()) == crc, "CRC mismatch"
PY
"$r/bin/meshdeploy" --version | grep -q '^meshdeploy ' || die "installed binary does not run"
size_full=$(stat -c %s "$build/src/cli/meshdeploy")
echo "binary: $size_full bytes built, $(stat -c %s "$r/bin/meshdeploy") installed (stripped), debug file $(stat -c %s "$debug")"

# The man page renders; it lists a command of the table.
man -l "$r/share/man/man1/meshdeploy.1" 2>"$t/man.err" </dev/null | grep -q 'meshdeploy secrets rotate-key' ||
  { cat "$t/man.err" >&2; die "man -l does not render the page"; }
[ ! -s "$t/man.err" ] || { cat "$t/man.err" >&2; die "man warns"; }

# bash completes a subcommand and a command's option.
comp() {
  bash -c 'source "$1"; shift; complete -p meshdeploy >/dev/null || exit 1
           COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _meshdeploy; echo "${COMPREPLY[*]}"' \
    _ "$r/share/bash-completion/completions/meshdeploy" "$@"
}
[ "$(comp meshdeploy secrets rot)" = rotate-key ] || die "bash: 'secrets rot' gives '$(comp meshdeploy secrets rot)'"
[ "$(comp meshdeploy agent run --ro)" = --root ] || die "bash: 'agent run --ro' gives '$(comp meshdeploy agent run --ro)'"
bash -n "$r/share/bash-completion/completions/meshdeploy"

# ---- the .deb ------------------------------------------------------------------
# WHY only the runtime component: the dbgsym package is the same debug file
# checked above, and compressing it would double this test's time.
cpack --config "$build/CPackConfig.cmake" -B "$t/pkg" -D CPACK_COMPONENTS_ALL=runtime >"$t/cpack.log" 2>&1 ||
  { cat "$t/cpack.log"; die "cpack failed"; }
deb=$(ls "$t"/pkg/meshdeploy_*.deb)
dpkg-deb -I "$deb" >"$t/info"
grep -q '^ Package: meshdeploy$' "$t/info" || die "no Package: meshdeploy"
grep -q '^ Architecture: amd64$\|^ Architecture: arm64$' "$t/info" || die "no Architecture"
grep -E '^ Depends: .*libc6.*' "$t/info" | grep -q 'libpq5' || { cat "$t/info"; die "Depends: lacks the shared libraries (libc6, libpq5)"; }
dpkg-deb -c "$deb" >"$t/contents"
for f in ./usr/bin/meshdeploy ./usr/lib/systemd/system/meshdeploy-agent.service \
         ./usr/lib/systemd/system/meshdeploy-agent.socket ./usr/share/man/man1/meshdeploy.1 \
         ./usr/share/bash-completion/completions/meshdeploy; do
  grep -q " $f\$" "$t/contents" || die ".deb lacks $f"
done
grep -q '\.debug$' "$t/contents" && die ".deb carries the debug info (it belongs in meshdeploy-dbgsym)"
# Starts nothing until enabled: no maintainer script enables or starts a unit.
dpkg-deb -e "$deb" "$t/control"
if grep -hE 'systemctl +(enable|start|restart)|deb-systemd-(helper|invoke)' "$t"/control/*inst "$t"/control/*rm 2>/dev/null; then
  die "a maintainer script enables or starts a unit"
fi
dpkg-deb -x "$deb" "$t/x"
"$t/x/usr/bin/meshdeploy" --version | grep -q '^meshdeploy ' || die "the unpacked binary does not run"
echo "install: files, stripped binary + debuglink, man, bash completion, .deb ($(stat -c %s "$deb") bytes) ok"
