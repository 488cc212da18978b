#!/usr/bin/env python3
"""Refit kernel families of a profile from its own calibration points under a different rule, and
predict a validation sweep again with it, without a GPU.

The refit is the non-negative least squares of model/src/calibration_fit.cpp (relative residuals,
every subset of free unknowns), optionally with the byte rate capped at the profile's measured
copy ceiling (hbm_gbps) for the named families. The prediction runs `hpsim simulate --engine sim`
on the scenarios `hpsim validate` builds for each point (the paper's 4.2B widths, one node of the
report's W ranks, HP with the recomputed hidden) and compares the layer totals with the measured ones of a
`hpsim validate --json` report.

  python3 scripts/refit_check.py --hpsim <build>/apps/hpsim/hpsim \\
      --profile traces/data/profiles/h200x1-measured.json \\
      --validation docs/results/validation-w1-f380419.json \\
      --cap hp_expert_mlp_fwd,hp_expert_mlp_bwd,ep_expert_mlp_fwd,ep_expert_mlp_bwd
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile


def solve(a, b):
    """Least squares by the normal equations (a few unknowns); None when singular."""
    n = len(a[0])
    m = [[sum(r[i] * r[j] for r in a) for j in range(n)] + [sum(r[i] * y for r, y in zip(a, b))] for i in range(n)]
    for i in range(n):
        piv = max(range(i, n), key=lambda r: abs(m[r][i]))
        if abs(m[piv][i]) < 1e-300:
            return None
        m[i], m[piv] = m[piv], m[i]
        for r in range(n):
            if r != i:
                f = m[r][i] / m[i][i]
                m[r] = [x - f * y for x, y in zip(m[r], m[i])]
    return [m[i][n] / m[i][i] for i in range(n)]


def nnls(a, b):
    n = len(a[0])
    best, best_res = [0.0] * n, math.sqrt(sum(y * y for y in b))
    for mask in range(1, 1 << n):
        cols = [j for j in range(n) if mask >> j & 1]
        y = solve([[r[j] for j in cols] for r in a], b)
        if y is None or any(v < 0 or not math.isfinite(v) for v in y):
            continue
        res = math.sqrt(sum((sum(r[j] * y[c] for c, j in enumerate(cols)) - t) ** 2 for r, t in zip(a, b)))
        if res < best_res * (1 - 1e-12):
            best_res, best = res, [0.0] * n
            for c, j in enumerate(cols):
                best[j] = y[c]
    return best


def kernel_time(fit, p):
    t = fit["alpha_us"]
    if fit["tflops"] > 0:
        t += p["flops"] / (fit["tflops"] * 1e12) * 1e6
    if fit["gbps"] > 0:
        t += p["bytes"] / (fit["gbps"] * 1e9) * 1e6
    if fit.get("select_gps", 0) > 0:
        t += p.get("selections", 0) / (fit["select_gps"] * 1e9) * 1e6
    return t


def refit(points, cap_gbps=None):
    sel = any(p.get("selections", 0) > 0 for p in points)
    floor = [0.0, 0.0, 1e6 / cap_gbps if cap_gbps else 0.0, 0.0]  # us per GB at the cap
    a, b = [], []
    for p in points:
        t = p["time_us"]
        row = [1 / t, p["flops"] / 1e9 / t, p["bytes"] / 1e9 / t] + ([p.get("selections", 0) / 1e9 / t] if sel else [])
        a.append(row)
        b.append(1 - sum(r * f for r, f in zip(row, floor)))
    x = [v + f for v, f in zip(nnls(a, b), floor)]
    fit = {"alpha_us": x[0], "tflops": 1e3 / x[1] if x[1] > 0 else 0.0, "gbps": 1e6 / x[2] if x[2] > 0 else 0.0}
    if sel:
        fit["select_gps"] = 1e6 / x[3] if x[3] > 0 else 0.0
    fit["fit_error"] = statistics.median(abs(kernel_time(fit, p) - p["time_us"]) / p["time_us"] for p in points)
    return fit


def scenario(hpsim, strategy, k, skew, n, w):
    base = json.loads(subprocess.run([hpsim, "presets", "--show", "paper-4.2b-h200x8-uniform"], check=True,
                                     capture_output=True, text=True).stdout)
    base["name"] = f"{strategy}-k{k}-zipf{skew:g}-n{n}"
    base["model"]["top_k"] = k
    base["workload"].update(tokens_per_rank=n, routing="zipf" if skew > 0 else "uniform", zipf_skew=float(skew))
    base["parallel"] = {"num_ranks": w, "strategy": strategy}
    base["cluster"].update(num_nodes=1, gpus_per_node=w)
    return base


def predict(hpsim, profile_path, point, folder, w):
    s = scenario(hpsim, point["strategy"], point["top_k"], point["skew"], point["tokens_per_rank"], w)
    path = os.path.join(folder, s["name"] + ".json")
    with open(path, "w") as f:
        json.dump(s, f)
    cmd = [hpsim, "simulate", path, "--engine", "sim", "--profile", profile_path, "--strategy", point["strategy"], "--json"]
    if point["strategy"] == "hp":
        cmd.append("--recompute-hidden")  # as validate predicts HP's fused MLP
    report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return report[0]["strategies"][0]["layer_total_us"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hpsim", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--validation", required=True, help="a `hpsim validate --json` report")
    ap.add_argument("--cap", default="", help="families whose byte rate is capped at hbm_gbps (comma-separated)")
    args = ap.parse_args()
    with open(args.profile) as f:
        profile = json.load(f)
    capped = [c for c in args.cap.split(",") if c]
    for name in capped:
        k = profile["kernels"][name]
        new = refit(k["points"], profile["hbm_gbps"])
        print(f"{name:20s} alpha {k['alpha_us']:7.1f} -> {new['alpha_us']:7.1f} us  TFLOP/s {k['tflops']:7.1f} -> "
              f"{new['tflops']:7.1f}  GB/s {k['gbps']:7.1f} -> {new['gbps']:7.1f}  fit error {100 * k['fit_error']:4.1f} -> "
              f"{100 * new['fit_error']:4.1f} %")
        k.update(new)
    with open(args.validation) as f:
        validation = json.load(f)
    with tempfile.TemporaryDirectory() as folder:
        refitted = os.path.join(folder, "refitted.json")
        with open(refitted, "w") as f:
            json.dump(profile, f)
        rows = []
        for p in validation["points"]:
            w = int(validation.get("ranks", 1))
            before, after = predict(args.hpsim, args.profile, p, folder, w), predict(args.hpsim, refitted, p, folder, w)
            rows.append((p, before / p["measured_us"] - 1, after / p["measured_us"] - 1))
    print("| strategy | k | Zipf skew | tokens/rank | measured us | error, profile | error, refitted |")
    print("|---|---|---|---|---|---|---|")
    for p, e0, e1 in rows:
        print(f"| {p['strategy']} | {p['top_k']} | {p['skew']:g} | {p['tokens_per_rank']} | {p['measured_us']:.1f} | "
              f"{100 * e0:+.1f}% | {100 * e1:+.1f}% |")
    for label, i in (("profile", 1), ("refitted", 2)):
        errs = [abs(r[i]) for r in rows]
        print(f"{label}: median |error| {100 * statistics.median(errs):.1f} %, worst {100 * max(errs):.1f} %")


if __name__ == "__main__":
    sys.exit(main())
