"""Side by side with OpenTURNS: subset simulation and NAIS against yieldmc's IS
on the union problems of `yieldmc.validation.union_offset` (an optional extra:
`pip install openturns`; the package never imports it).

The limit state is the same closed form the engine evaluates for that problem (butt
coupling of identical Gaussian modes, no constant loss): in standard-normal coordinates
u = (u_dx_module, u_dy_module, u_dx_channel_1 … u_dx_channel_C),

    g(u) = S − max_c (10/ln 10)·((σ_m·u_0 + σ_c·u_{2+c})²/w_x² + (σ_m·u_1)²/w_y²),

and P_f = P(g < 0) is exact (`validation.union_failure_probability`). For each method the
script repeats the estimate over seeds and prints the bias, the relative spread, the
95 % coverage of each method's own interval, the mean number of model evaluations and
N·(relative variance) — the cost to reach a given accuracy — next to yieldmc's (from
`scripts/is_coverage.py`).

    python scripts/openturns_rare_events.py --seeds 20 --cases union12_0.0001 union12_1e-06
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def limit_state(channels: int, sigma_m: float, sigma_c: float, spec_db: float):
    from yieldmc import validation

    w_x, w_y = validation.pwg_mode_radii_um()
    k = validation.DB_PER_NEPER_POWER

    def g(x):
        u = np.asarray(x, dtype=np.float64)
        dx = sigma_m * u[:, :1] + sigma_c * u[:, 2:2 + channels]
        loss = k * (dx**2 / w_x**2 + (sigma_m * u[:, 1:2]) ** 2 / w_y**2)
        return (spec_db - loss.max(axis=1))[:, None]

    return g


def run_openturns(method: str, channels, sigma_m, sigma_c, spec, *, seed: int, per_level: int):
    import openturns as ot

    ot.RandomGenerator.SetSeed(seed)
    dim = 2 + channels
    f = ot.PythonFunction(dim, 1, func_sample=limit_state(channels, sigma_m, sigma_c, spec))
    y = ot.CompositeRandomVector(f, ot.RandomVector(ot.Normal(dim)))
    event = ot.ThresholdEvent(y, ot.Less(), 0.0)
    if method == "subset":
        algo = ot.SubsetSampling(event)  # conditional probability 0.1 per level (default)
    else:  # NAIS (Papaioannou, Geyer & Straub 2019), quantile level 0.1
        algo = ot.NAIS(event, 0.1)
    algo.setBlockSize(per_level)
    algo.setMaximumOuterSampling(1)
    algo.run()
    r = algo.getResult()
    pf = r.getProbabilityEstimate()
    cv = r.getCoefficientOfVariation()
    return pf, pf * cv, f.getEvaluationCallsNumber()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--per-level", type=int, default=10_000, help="samples per subset level / NAIS step")
    ap.add_argument("--cases", nargs="*", default=["union12_0.0001", "union12_1e-06"])
    args = ap.parse_args()
    from yieldmc import validation

    print("| case | method | bias | rel. spread | coverage | evaluations | N·rel.var | s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.cases:
        c = int(name.split("_")[0].removeprefix("union"))
        pf_target = float(name.split("_")[1])
        p = validation.union_offset(channels=c, failure_probability=pf_target)
        truth = 1.0 - p.expected_yield
        spec = float(next(o for o in p.overrides if o.startswith("spec.max_loss_db=")).split("=")[1])
        for method in ("subset", "nais"):
            t0 = time.perf_counter()
            est, se, calls = [], [], []
            for seed in range(args.seeds):
                e, s, n = run_openturns(method, c, 0.2, 0.5, spec, seed=seed, per_level=args.per_level)
                est.append(e)
                se.append(s)
                calls.append(n)
            est, se = np.asarray(est), np.asarray(se)
            rel = est / truth
            n_mean = float(np.mean(calls))
            print(f"| {name} | openturns {method} | {rel.mean() - 1:+.3f} | {np.std(rel, ddof=1):.3f} "
                  f"| {np.mean(np.abs(est - truth) <= 1.96 * se):.2f} | {n_mean:.3g} "
                  f"| {n_mean * np.var(rel, ddof=1):.3g} | {time.perf_counter() - t0:.0f} |", flush=True)
    print("yieldmc sampler=is on the same cases: python scripts/is_coverage.py --cases " + " ".join(args.cases))


if __name__ == "__main__":
    main()
