#!/usr/bin/env python3
"""Collects one benchmark run into benches/results/ and draws the plot.

    python3 benches/report.py [CRITERION_DIR]

Reads criterion's per-sample data (default target/criterion, where
`cargo bench` and benches/peer.sh write it) and writes:

- benches/results/criterion.json: per benchmark, the median time per call
  and the 10th and 90th percentiles of criterion's samples, in ns;
- benches/results/latency.png: each benchmark's aifn time beside its
  floor or peer (log scale), the numbers BENCHMARKS.md quotes.

Needs matplotlib (pip install matplotlib). Not part of the test command.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benches", "results")


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def collect(criterion_dir):
    out = {}
    for group in sorted(os.listdir(criterion_dir)):
        gdir = os.path.join(criterion_dir, group)
        if not os.path.isdir(gdir) or group == "report":
            continue
        for bench in sorted(os.listdir(gdir)):
            sample = os.path.join(gdir, bench, "new", "sample.json")
            bench_json = os.path.join(gdir, bench, "new", "benchmark.json")
            if not os.path.exists(sample):
                continue
            with open(sample) as f:
                s = json.load(f)
            per_iter = sorted(t / n for t, n in zip(s["times"], s["iters"]))
            name = bench
            if os.path.exists(bench_json):
                with open(bench_json) as f:
                    name = json.load(f).get("function_id") or bench
            out[f"{group}/{name}"] = {
                "median_ns": percentile(per_iter, 0.5),
                "p10_ns": percentile(per_iter, 0.1),
                "p90_ns": percentile(per_iter, 0.9),
                "samples": len(per_iter),
            }
    return out


# (label, aifn benchmark, floor or peer benchmark, floor label)
PAIRS = [
    ("1 echo", "echo/aifn_runtime", "echo/floor_wasmtime", "bare wasmtime"),
    ("1 echo, service", "echo/aifn_service", "echo/floor_wasmtime", "bare wasmtime"),
    ("2 leave days", "leave/aifn_runtime", "leave/native", "native"),
    ("3 fib(25)", "metering_fib/aifn_runtime", "metering_fib/wasmtime_none", "unmetered wasmtime"),
    ("3 sieve", "metering_sieve/aifn_runtime", "metering_sieve/wasmtime_none", "unmetered wasmtime"),
    ("4 touch 16 MiB", "alloc16_touch/aifn_runtime", "alloc16_touch/floor_wasmtime", "bare wasmtime"),
    ("4 fill 16 MiB", "alloc16_fill/aifn_runtime", "alloc16_fill/floor_wasmtime", "bare wasmtime"),
    ("4 touch, 17 MiB resident", "alloc16_touch/aifn_runtime_resident", "alloc16_touch/floor_wasmtime", "bare wasmtime"),
    ("5 upload to result", "cold_upload/aifn_service_disk", "cold_upload/floor_wasmtime", "bare wasmtime"),
    ("5 restart from cache", "cold_restart/aifn_runtime_load", "cold_restart/floor_wasmtime", "bare wasmtime"),
    ("6 Zipf over many", "tenants/zipf_10000_functions", "tenants/single_function", "one function"),
    ("8 vs Extism fresh", "echo/aifn_runtime", "echo/extism_fresh", "Extism, fresh plugin"),
    ("8 vs Extism reused", "echo/aifn_runtime", "echo/extism_reused", "Extism, reused plugin"),
]


def plot(data, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(label, data[a], data[b], floor) for label, a, b, floor in PAIRS if a in data and b in data]
    if not rows:
        print("no pairs to plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.5))
    ys = range(len(rows))
    h = 0.38

    def bars(offset, values, color, label):
        med = [v["median_ns"] / 1000 for v in values]
        lo = [max(0.0, (v["median_ns"] - v["p10_ns"]) / 1000) for v in values]
        hi = [max(0.0, (v["p90_ns"] - v["median_ns"]) / 1000) for v in values]
        ax.barh([y + offset for y in ys], med, h, xerr=[lo, hi], color=color, label=label, capsize=2)

    bars(-h / 2, [r[1] for r in rows], "#2b6cb0", "aifn")
    bars(h / 2, [r[2] for r in rows], "#a0aec0", "floor / peer")
    ax.set_yticks(list(ys))
    ax.set_yticklabels([f"{r[0]}\n(vs {r[3]}: {r[1]['median_ns'] / r[2]['median_ns']:.2f}x)" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("time per call, microseconds (log scale; bars: median, whiskers: p10-p90)")
    ax.set_title("aifn beside its floor or peer (each ratio from one run)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main():
    criterion_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "criterion")
    data = collect(criterion_dir)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "criterion.json"), "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    for k, v in data.items():
        print(f"{k:60s} {v['median_ns'] / 1000:12.2f} us  (p10 {v['p10_ns'] / 1000:.2f}, p90 {v['p90_ns'] / 1000:.2f})")
    print()
    for label, a, b, floor in PAIRS:
        if a in data and b in data:
            print(f"{label:24s} {data[a]['median_ns'] / data[b]['median_ns']:6.2f}x {floor}")
    plot(data, os.path.join(RESULTS, "latency.png"))


if __name__ == "__main__":
    main()
