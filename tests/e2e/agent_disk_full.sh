#!/usr/bin/env bash
# The agent's root on a small filesystem (tmpfs of 150 MiB and 2000 inodes,
# or a loop-mounted ext4 image), v1 live throughout:
#  a. a zip-bomb-like artifact (~200 KB declaring 200 MiB) is refused at
#     preflight, naming host, need and free space; nothing is written. WHY
#     150 MiB: the old estimate (4 x compressed + 100 MiB) let it through;
#  b. an artifact that fits the preflight, but the disk fills before it is
#     unpacked (a pre_deploy hook fills it): "disk full on host X (needs N,
#     has M)", exit 1, no partial release, no artifact left, v1 serving; an
#     upload that hits the full disk is removed the same way;
#  c. an upload whose sender is killed mid-way is removed once it saw no byte
#     for --upload-expiry, never while chunks keep coming;
#  d. a hostile artifact refused at unpack is gone from artifacts/ at once;
#  then a good deploy prunes an orphan artifact.
# Needs root (mount); exits 77 (skipped) with the reason otherwise.
. "$(dirname "$0")/lib.sh"
e2e_init
PROXY_PORT=$(free_port)

# ---- the small filesystem under $T/agent ------------------------------------
mkdir -p "$T/agent"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP $E2E_NAME: mounting a small filesystem needs root" >&2
  exit 77
fi
if mount -t tmpfs -o size=150m,nr_inodes=2000,mode=0700 tmpfs "$T/agent" 2>"$T/mount.err"; then
  log "agent root on a tmpfs of 150 MiB, 2000 inodes"
elif truncate -s 150M "$T/fs.img" && mkfs.ext4 -q -N 2000 "$T/fs.img" 2>>"$T/mount.err" &&
  mount -o loop "$T/fs.img" "$T/agent" 2>>"$T/mount.err"; then
  rmdir "$T/agent/lost+found"  # the agent takes only an empty directory as its root
  log "agent root on a loop-mounted ext4 image of 150 MiB (tmpfs: $(cat "$T/mount.err"))"
else
  echo "SKIP $E2E_NAME: neither a tmpfs nor a loop-mounted ext4 could be mounted: $(cat "$T/mount.err")" >&2
  exit 77
fi
on_exit "umount -l '$T/agent'"

# Repacks the example app's artifact of VERSION with more in it, as
# dist/meshhook-VERSION.tar.gz (+ .sha256). Usage: craft VERSION zeros BYTES | hostile
craft() {
  build_app "$1"
  python3 - "$T/app/dist/meshhook-$1.tar.gz" "$2" "${3:-0}" <<'PY'
import hashlib, io, os, sys, tarfile
path, kind, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
class Zeros(io.RawIOBase):
    def __init__(self, n): self.left = n
    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n
with tarfile.open(path) as src, tarfile.open(path + ".tmp", "w:gz", compresslevel=9) as out:
    for m in src.getmembers():
        out.addfile(m, src.extractfile(m) if m.isfile() else None)
    if kind == "zeros":
        ti = tarfile.TarInfo("build/zeros.bin"); ti.size = size
        out.addfile(ti, Zeros(size))
    else:
        ti = tarfile.TarInfo("../evil"); ti.size = 5
        out.addfile(ti, io.BytesIO(b"evil\n"))
os.replace(path + ".tmp", path)
name = os.path.basename(path)
with open(path, "rb") as f, open(path + ".sha256", "w") as s:
    s.write(hashlib.sha256(f.read()).hexdigest() + "  " + name + "\n")
PY
}

# Fails unless nothing of a refused release is on the disk: no release
# directory of VERSION, no unpack in progress, no artifact, no upload.
expect_no_leftovers() {
  [ ! -e "$T/agent/releases/$1" ] || die "releases/$1 exists"
  local left
  left=$(ls -A "$T/agent/artifacts"; find "$T/agent/releases" -maxdepth 1 -name '.tmp-*')
  [ -z "$left" ] || die "left behind after $1: $left"
}

# A pre_deploy hook that fills the disk, leaving 3 MiB, when $T/fill-next exists.
cat >"$T/fill.sh" <<SH
[ -f "$T/fill-next" ] || exit 0
rm -f "$T/fill-next"
fallocate -l \$(( \$(stat -f -c '%a*%S' "$T/agent") - 3 * 1048576 )) "$T/agent/filler"
SH
HOOKS="    pre_deploy: bash $T/fill.sh" WORKERS=0 write_config
build_app v1
AGENT_ARGS="--upload-expiry 5s" start_agent
mdt deploy --version v1 >"$T/deploy-v1.out" 2>&1 || { cat "$T/deploy-v1.out"; die "deploy v1 failed"; }
expect_only v1

log "a. ~200 KB declaring 200 MiB: refused at preflight"
craft v2 zeros $((200 << 20))
log "artifact v2: $(stat -c %s "$T/app/dist/meshhook-v2.tar.gz") bytes"
rc=0
mdt deploy --version v2 >"$T/deploy-v2.out" 2>&1 || rc=$?
expect_eq "$rc" 1 "exit of the deploy refused at preflight"
grep -Eq "preflight: not enough disk on host local for v2: needs 200\.[0-9] MiB, has 1[0-9][0-9]\.[0-9] MiB under the agent root" "$T/deploy-v2.out" ||
  die "no preflight refusal naming need and free space: $(cat "$T/deploy-v2.out")"
! grep -q "artifact v2 registered" "$T/agent.log" || die "v2 reached the agent"
expect_no_leftovers v2
expect_only v1

log "b. the disk fills after preflight: the unpack fails, cleanly"
craft v3 zeros $((8 << 20))
touch "$T/fill-next"
rc=0
mdt deploy --version v3 >"$T/deploy-v3.out" 2>&1 || rc=$?
expect_eq "$rc" 1 "exit of the deploy that met a full disk"
[ -e "$T/agent/filler" ] || die "the hook did not fill the disk: $(cat "$T/deploy-v3.out")"
grep -Eq "disk full on host [^ ]+ \(needs 8\.[0-9] MiB, has [0-3]\.[0-9] MiB\)" "$T/deploy-v3.out" ||
  die "no 'disk full' message: $(cat "$T/deploy-v3.out")"
expect_no_leftovers v3
expect_only v1
log "b. an upload into the full disk"
head -c $((1 << 20)) /dev/urandom >"$T/chunk"
upload() {  # VERSION OFFSET: prints the HTTP status, the body to $T/upload.out
  curl -s -o "$T/upload.out" -w '%{http_code}' --unix-socket "$T/agent/agent.sock" -X PUT \
    --data-binary @"$T/chunk" "http://agent/v1/agent/artifacts/$1/chunks?offset=$2"
}
off=0 status=200
while [ "$status" = 200 ] && [ "$off" -lt $((8 << 20)) ]; do
  status=$(upload v8 "$off")
  off=$((off + (1 << 20)))
done
[ "$status" != 200 ] || die "8 MiB uploaded into 3 MiB"
grep -Eq "disk full on host [^ ]+ \(needs [0-9.]+ MiB, has [0-3]\.[0-9] MiB\)" "$T/upload.out" ||
  die "upload: no 'disk full' message (HTTP $status): $(cat "$T/upload.out")"
expect_no_leftovers v8
rm -f "$T/agent/filler"

log "c. an upload whose sender is killed mid-way expires (--upload-expiry 5s)"
cat >"$T/uploader.sh" <<SH
off=0
while :; do
  code=\$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$T/agent/agent.sock" -X PUT \
    --data-binary @"$T/chunk" "http://agent/v1/agent/artifacts/v9/chunks?offset=\$off")
  [ "\$code" = 200 ] || { echo "chunk at \$off: HTTP \$code" >"$T/uploader.failed"; exit 1; }
  off=\$((off + 1048576)); echo "\$off" >"$T/uploader.off.tmp"; mv "$T/uploader.off.tmp" "$T/uploader.off"
  sleep 0.5
done
SH
spawn uploader bash "$T/uploader.sh"
uploader=$LAST_PID
# Chunks for longer than the expiry: the upload in progress must stay.
chunks_sent() { [ ! -e "$T/uploader.failed" ] && [ "$(cat "$T/uploader.off" 2>/dev/null || echo 0)" -ge "$1" ]; }
wait_for 60 "12 chunks (6 s of uploading)" chunks_sent $((12 << 20))
[ ! -e "$T/uploader.failed" ] || die "the upload in progress was removed: $(cat "$T/uploader.failed")"
[ -e "$T/agent/artifacts/.tmp-upload-v9" ] || die "no upload in progress"
kill -KILL -- "-$uploader"
log "sender killed at $(cat "$T/uploader.off") bytes"
wait_for 60 "the abandoned upload to be removed" test ! -e "$T/agent/artifacts/.tmp-upload-v9"
grep -q "removed upload .tmp-upload-v9" "$T/agent.log" || die "the agent did not log the removal"

log "d. a hostile artifact refused at unpack leaves nothing in artifacts/"
craft v4 hostile
rc=0
mdt deploy --version v4 >"$T/deploy-v4.out" 2>&1 || rc=$?
expect_eq "$rc" 1 "exit of the deploy of a hostile artifact"
grep -q "entry '../evil'" "$T/deploy-v4.out" || die "the refusal does not name the entry: $(cat "$T/deploy-v4.out")"
[ ! -e "$T/agent/releases/evil" ] && [ ! -e "$T/agent/evil" ] || die "the hostile entry was written"
expect_no_leftovers v4
expect_only v1

log "a good deploy prunes an orphan artifact"
printf 'left by a crash' >"$T/agent/artifacts/v0.tar.gz"
build_app v5
mdt deploy --version v5 >"$T/deploy-v5.out" 2>&1 || { cat "$T/deploy-v5.out"; die "deploy v5 failed"; }
wait_for 30 "v5 alone" expect_only_quietly v5
[ ! -e "$T/agent/artifacts/v0.tar.gz" ] || die "prune left the orphan artifact"
log "ok"
