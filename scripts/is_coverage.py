"""Coverage of `sampler=is` (docs/benchmarks.md): bias, actual vs reported spread, 95 % coverage.

For each case — a shared module offset (two design points), and the union of 2C channel
events of `yieldmc.validation.union_offset` with 12 and 128 channels at P_f 1e-4 and 1e-6 —
the estimate is repeated over seeds (each seed its own design-point search and draws)
and compared with the exact P_f (closed form or 2-D quadrature):

* bias: mean of (P̂ − P)/P over the seeds;
* actual spread: standard deviation of P̂/P; reported: mean of SE/P;
* coverage: fraction of seeds whose reported 95 % interval (``yield_ci_low/high``: P̂ ± 1.96·SE
  for the mixture, P̂ ± t_{R−1}·SE over R replicas for subset simulation) holds P;
* rel. error: root mean square of (P̂ − P)/P.

    python scripts/is_coverage.py                       # 50 seeds, 2^17 samples per run
    python scripts/is_coverage.py --seeds 20 --samples 65536 --cases union12_1e-4
    python scripts/is_coverage.py --method subset --samples 16384   # subset simulation, N per level

N·rel.var is the model evaluations of a run (for subset simulation N per level × levels)
times the variance of P̂/P: the cost of a given relative error, comparable across methods.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
import warnings

import numpy as np


def cases() -> dict:
    from scipy.stats import norm

    from yieldmc import validation

    out = {}
    w_x, _ = validation.pwg_mode_radii_um()
    r = w_x * math.sqrt(0.3 / validation.DB_PER_NEPER_POWER)
    sigma = r / norm.isf(0.5e-6)
    shared = validation.module_offset(sigma_um=sigma)
    out["shared_1e-6"] = (list(shared.overrides), 2 * norm.sf(r / sigma))
    for c in (12, 128):
        for pf in (1e-4, 1e-6):
            p = validation.union_offset(channels=c, failure_probability=pf)
            out[f"union{c}_{pf:g}"] = (list(p.overrides), 1.0 - p.expected_yield)
    return out


def run_case(overrides, truth, *, seeds, samples, block, method="mixture"):
    import yieldmc

    est, se, notes, points, evaluations, covered = [], [], 0, [], [], []
    for seed in range(seeds):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = yieldmc.run(yieldmc.compose(overrides + [
                "sampler=is", f"is.method={method}", f"samples={samples}", f"engine.block_size={block}",
                f"seed={seed}", "output.plots=false"]))
        evaluations.append(int(ds.n_samples))
        est.append(float(ds.failure_probability))
        se.append(float(ds.failure_probability_se))
        # the reported 95 % interval (normal for the mixture, Student t for subset simulation)
        covered.append(1.0 - float(ds.yield_ci_high) <= truth <= 1.0 - float(ds.yield_ci_low))
        points.append(int(ds.attrs.get("is_design_points", 0)))
        notes += bool(caught)
    est, se = np.asarray(est), np.asarray(se)
    rel = (est - truth) / truth
    return {
        "truth": truth, "seeds": seeds, "samples": samples,
        "bias": float(rel.mean()), "actual_spread": float(np.std(est / truth, ddof=1)),
        "reported_spread": float(np.mean(se / truth)),
        "coverage": float(np.mean(covered)),
        "rel_error_rms": float(np.sqrt(np.mean(rel**2))),
        "evaluations": float(np.mean(evaluations)),
        "n_rel_var": float(np.mean(evaluations) * np.var(est / truth, ddof=1)),
        "design_points_median": float(np.median(points)), "runs_with_warnings": int(notes),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--samples", type=int, default=2**17)
    ap.add_argument("--block", type=int, default=16384)
    ap.add_argument("--cases", nargs="*", help="subset of the case names")
    ap.add_argument("--method", default="mixture", choices=("mixture", "subset"), help="is.method")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    import jax

    all_cases = cases()
    names = args.cases or list(all_cases)
    print(f"machine: {platform.node()} {platform.machine()}, jax {jax.__version__} {jax.default_backend()}; "
          f"{args.seeds} seeds x {args.samples} samples, is.method={args.method}")
    print("| case | P_f | bias | actual spread | reported spread | 95 % coverage | rel. error (rms) "
          "| N·rel.var | design points | warned | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    results = {}
    for name in names:
        overrides, truth = all_cases[name]
        t0 = time.perf_counter()
        r = run_case(overrides, truth, seeds=args.seeds, samples=args.samples, block=args.block, method=args.method)
        r["seconds"] = time.perf_counter() - t0
        results[name] = r
        print(f"| {name} | {truth:.3g} | {r['bias']:+.3f} | {r['actual_spread']:.3f} | {r['reported_spread']:.3f} "
              f"| {r['coverage']:.2f} | {r['rel_error_rms']:.3f} | {r['n_rel_var']:.3g} "
              f"| {r['design_points_median']:g} | {r['runs_with_warnings']} | {r['seconds']:.0f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
