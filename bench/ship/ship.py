#!/usr/bin/env python3
"""Ship-and-unpack time of a MeshHook-sized artifact through a real agent.

Generates artifact A (~34 MB .tar.gz, ~5,000 files in a node_modules-like
tree plus a small build/) and artifact B = A with one file of build/
changed. Each round starts an agent on a fresh root, then times, as the
controller's `ship` step does it (POST /v1/agent/artifacts then POST
/v1/agent/unpack on the control socket):
  first  = shipping A into the empty root,
  second = shipping B next to it (the usual redeploy: node_modules unchanged).
Besides the wall time of each ship, the agent's CPU time (user+system, from
/proc) for it is recorded: on a loaded machine the wall time is mostly
waiting for a CPU, the CPU time is not.
Each round's root is removed only at the end of the run: ext4 makes the
inode allocator skip inodes freed in the last 60 s, so removing ~6,000
files right before a ship charges the ship for the bench's own cleanup.
Usage: ship.py BIN [BIN2] [--rounds N] [--out FILE]. With two binaries (e.g.
before and after a change) the rounds alternate between them and per-round
ratios BIN/BIN2 are printed.
"""
import argparse, gzip, hashlib, http.client, io, json, os, random, shutil
import socket, statistics, subprocess, sys, tarfile, tempfile, time

WORDS = ("function return const let var async await module exports require "
         "import from default class extends this null undefined true false "
         "object string number length push map filter reduce promise then "
         "catch error value key index prototype call apply bind").split()


def js_text(rng, size):
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        line += " _%x(%d);\n" % (rng.getrandbits(32), rng.randint(0, 99999))
        out.append(line)
        n += len(line)
    return "".join(out)[:size].encode()


def build_tree(root, rng, target_files=5000):
    """node_modules/<pkg>/{package.json,lib/*.js,...} plus build/."""
    files = 0
    pkg = 0
    while files < target_files:
        name = "pkg%04d" % pkg
        base = os.path.join(root, "node_modules", name)
        os.makedirs(os.path.join(base, "lib"))
        with open(os.path.join(base, "package.json"), "w") as f:
            json.dump({"name": name, "version": "1.%d.0" % pkg, "main": "lib/index.js"}, f)
        files += 1
        for i in range(rng.randint(2, 12)):
            # Mostly small files, a few large ones (bundles, .map files).
            size = int(rng.lognormvariate(9.25, 1.3))
            size = min(size, 2_000_000)
            with open(os.path.join(base, "lib", "f%02d.js" % i), "wb") as f:
                f.write(js_text(rng, size))
            files += 1
        if pkg % 7 == 0:
            os.symlink("lib/f00.js", os.path.join(base, "index.js"))
        pkg += 1
    os.makedirs(os.path.join(root, "build", "client"))
    for i in range(40):
        with open(os.path.join(root, "build", "client", "chunk%02d.js" % i), "wb") as f:
            f.write(js_text(rng, 20_000))
    with open(os.path.join(root, "build", "index.js"), "w") as f:
        f.write("console.log('v1')\n")
    os.chmod(os.path.join(root, "build", "index.js"), 0o755)
    return files + 41


def make_tgz(src, dest):
    with open(dest, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as t:
                for name in sorted(os.listdir(src)):
                    t.add(os.path.join(src, name), arcname=name)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


class Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=600)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def call(sock, path, body):
    c = Unix(sock)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    text = r.read()
    c.close()
    if r.status != 200:
        sys.exit("%s: %d %s" % (path, r.status, text[:300]))


def cpu_ms(pid):
    """utime + stime of `pid` in ms (fields 14 and 15 of /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def ship(sock, pid, version, art, sha):
    """Returns (wall ms, agent CPU ms) of registering and unpacking `art`."""
    c0, t0 = cpu_ms(pid), time.perf_counter()
    call(sock, "/v1/agent/artifacts", {"version": version, "sha256": sha, "path": art})
    call(sock, "/v1/agent/unpack", {"version": version})
    return (time.perf_counter() - t0) * 1000, cpu_ms(pid) - c0


def one_round(binary, work, arts, n):
    root = os.path.join(work, "root%d" % n)
    log = open(os.path.join(work, "agent.log"), "ab")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    agent = subprocess.Popen([binary, "agent", "run", "--root", root, "--listen",
                              "127.0.0.1:%d" % port], stdout=log, stderr=log)
    sock = os.path.join(root, "agent.sock")
    try:
        for _ in range(400):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        subprocess.run(["sync"])
        first = ship(sock, agent.pid, "a", *arts["a"])
        subprocess.run(["sync"])
        second = ship(sock, agent.pid, "b", *arts["b"])
    finally:
        agent.terminate()
        agent.wait()
    return first, second


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bins", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="md-ship-bench-")
    try:
        rng = random.Random(42)
        tree = os.path.join(work, "tree")
        nfiles = build_tree(tree, rng)
        arts = {}
        art_a = os.path.join(work, "a.tar.gz")
        make_tgz(tree, art_a)
        with open(os.path.join(tree, "build", "index.js"), "a") as f:
            f.write("console.log('v2')\n")
        art_b = os.path.join(work, "b.tar.gz")
        make_tgz(tree, art_b)
        shutil.rmtree(tree)
        arts = {"a": (art_a, sha256(art_a)), "b": (art_b, sha256(art_b))}
        head = "artifact: %d files, %.1f MB compressed; load %s" % (
            nfiles, os.path.getsize(art_a) / 1e6, open("/proc/loadavg").read().split()[:3])
        print(head, flush=True)
        keys = ("first", "second", "first_cpu", "second_cpu")
        res = {b: {k: [] for k in keys} for b in a.bins}
        n = 0
        for r in range(a.rounds):
            order = a.bins if r % 2 == 0 else list(reversed(a.bins))
            for b in order:
                n += 1
                (f, fc), (s, sc) = one_round(os.path.abspath(b), work, arts, n)
                for k, v in zip(keys, (f, s, fc, sc)):
                    res[b][k].append(v)
                print("round %d %s: first %.0f ms (cpu %.0f), second %.0f ms (cpu %.0f)" % (
                    r + 1, b, f, fc, s, sc), flush=True)
        lines = [head]
        for b in a.bins:
            for k in keys:
                v = res[b][k]
                lines.append("%s %s: median %.0f ms (rounds: %s)" % (
                    b, k, statistics.median(v), " ".join("%.0f" % x for x in v)))
        if len(a.bins) == 2:
            b0, b1 = a.bins
            for k in keys:
                ratios = [x / max(y, 1) for x, y in zip(res[b0][k], res[b1][k])]
                lines.append("ratio %s, first binary / second: median %.2f (rounds: %s)" % (
                    k, statistics.median(ratios), " ".join("%.2f" % x for x in ratios)))
        print("\n".join(lines))
        if a.out:
            with open(a.out, "w") as f:
                f.write("\n".join(lines) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
