#!/usr/bin/env python3
"""Markdown tables from the harness's throughput.tsv (OUT_DIR of run.sh throughput).

  table.py OUT_DIR/throughput.tsv [OURS]     OURS defaults to meshdeploy

Prints per round: rps / p99 / proxy CPU per request of each target, then
OURS/haproxy and OURS/nginx for rps and p99; then the medians.
"""
import csv
import statistics
import sys


def main(path, ours="meshdeploy"):
    rows = list(csv.DictReader(open(path), delimiter="\t"))
    targets = [t for t in ("direct", "nginx", "haproxy", ours) if any(r["target"] == t for r in rows)]
    by = {(int(r["round"]), r["target"]): r for r in rows}
    rounds = sorted({k[0] for k in by})
    peers = [p for p in ("haproxy", "nginx") if p in targets]

    def num(r, k):
        v = r.get(k, "-")
        return None if v in ("-", "") else float(v)

    def cell(r):
        cpu = num(r, "proxy_cpu_us_per_req")
        return f"{num(r, 'rps'):,.0f} / {num(r, 'p99_us') / 1000:.2f} ms" + (f" / {cpu:.1f} µs" if cpu else "")

    print("| round | " + " | ".join(targets) + " | " +
          " | ".join(f"{ours}/{p} rps | {ours}/{p} p99" for p in peers) + " |")
    print("|" + " --- |" * (1 + len(targets) + 2 * len(peers)))
    ratios = {p: ([], []) for p in peers}
    for n in rounds:
        cells = [cell(by[(n, t)]) for t in targets]
        rs = []
        for p in peers:
            a, b = by[(n, ours)], by[(n, p)]
            rr, pr = num(a, "rps") / num(b, "rps"), num(a, "p99_us") / num(b, "p99_us")
            ratios[p][0].append(rr)
            ratios[p][1].append(pr)
            rs += [f"{rr:.3f}", f"{pr:.3f}"]
        print(f"| {n} | " + " | ".join(cells + rs) + " |")
    med = []
    for t in targets:
        rr = [by[(n, t)] for n in rounds]
        cpu = [num(r, "proxy_cpu_us_per_req") for r in rr if num(r, "proxy_cpu_us_per_req")]
        med.append(f"**{statistics.median(num(r, 'rps') for r in rr):,.0f}** / "
                   f"{statistics.median(num(r, 'p99_us') for r in rr) / 1000:.2f} ms" +
                   (f" / {statistics.median(cpu):.1f} µs" if cpu else ""))
    for p in peers:
        med += [f"**{statistics.median(ratios[p][0]):.3f}** [{min(ratios[p][0]):.3f}–{max(ratios[p][0]):.3f}]",
                f"**{statistics.median(ratios[p][1]):.3f}** [{min(ratios[p][1]):.3f}–{max(ratios[p][1]):.3f}]"]
    print("| median | " + " | ".join(med) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:])
