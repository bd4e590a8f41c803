"""Cost of the full yield gradient relative to one yield evaluation (same samples).

    python scripts/bench_gradient.py [--samples 65536] [overrides ...]

Times, after a warm-up call (compilation excluded), the median of ``--repeats`` runs of
(a) the engine's hard-yield evaluation and (b) the pathwise estimator's yield and
gradient with respect to every float parameter, on the same blocks. Finite differences
would cost 2P yield evaluations for P parameters.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax

import yieldmc
from yieldmc.io.config import problem_from_config
from yieldmc.engine.blocks import accumulate
from yieldmc.analysis.sensitivity import estimate_gradient, reported_parameters


def timed(fn, repeats):
    fn()  # warm-up: compile
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=65536)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    cfg = yieldmc.compose([f"samples={args.samples}", "engine.block_size=4096", *args.overrides])
    problem = problem_from_config(cfg)
    names = reported_parameters(problem)
    t_yield = timed(lambda: accumulate(problem, range(problem.n_blocks)), args.repeats)
    t_grad = timed(lambda: estimate_gradient(problem, estimator="pathwise", tau_db=0.02, names=names),
                   args.repeats)
    t_score = timed(lambda: estimate_gradient(problem, estimator="score", tau_db=0.02, names=names),
                    args.repeats)
    res = {
        "device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
        "samples": args.samples, "overrides": args.overrides, "parameters": len(names),
        "yield_s": round(t_yield, 3), "pathwise_gradient_s": round(t_grad, 3),
        "score_gradient_s": round(t_score, 3),
        "pathwise_ratio": round(t_grad / t_yield, 2), "score_ratio": round(t_score / t_yield, 2),
        "finite_difference_ratio": 2 * len(names),
    }
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
