"""Cost of model uncertainty (docs/benchmarks.md): R realisations against an R-point sweep.

A run with ``uncertain`` inputs evaluates its R realisations as the leading dimension of
the traced sweep grid, so R realisations of N modules should cost what an R-point sweep of
N modules costs (the acceptance bound is 1.3x). Both programs are compiled first, then the
timed runs alternate (rounds x configurations) so that the shared machine's load affects
them alike; the report is the median of each and their ratio. The post-processing of the
realisations (band, importance with its bootstrap) is timed separately.

    python scripts/bench_uncertainty.py                          # 64 x 2^17, default package
    python scripts/bench_uncertainty.py --samples 16384 --rounds 3
    python scripts/bench_uncertainty.py --uncertainty estimates  # every estimate uncertain
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2**17, help="modules per sweep point / realisation")
    ap.add_argument("--points", type=int, default=64, help="sweep points = realisations")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--uncertainty", choices=("tip", "estimates"), default="tip",
                    help="tip: the tip width uncertain (the sweep sweeps it); estimates: uncertainty=estimates")
    ap.add_argument("overrides", nargs="*", help="extra yieldmc overrides")
    args = ap.parse_args()

    import jax
    import numpy as np

    import yieldmc
    from yieldmc.engine.blocks import accumulate
    from yieldmc.io.config import problem_from_config
    from yieldmc.io.uncertainty import variables
    from yieldmc.io.results import count_variables

    base = [f"samples={args.samples}", "progress=false", *args.overrides]
    values = ",".join(f"{v:.6g}" for v in np.linspace(60.0, 100.0, args.points))
    uncertain = (["uncertainty=estimates"] if args.uncertainty == "estimates" else
                 ["uncertain={package.coupler.tip_width_nm:{distribution:uniform,low:60,high:100}}"])
    cases = {
        f"sweep of {args.points} points": [f"sweep={{package.coupler.tip_width_nm:[{values}]}}"],
        f"{args.points} realisations": [*uncertain, f"uncertainty.realizations={args.points}"],
    }
    t0 = time.perf_counter()
    problems = {name: problem_from_config(yieldmc.compose([*base, *extra])) for name, extra in cases.items()}
    parse_s = time.perf_counter() - t0
    for p in problems.values():  # compile (and warm) every program first
        accumulate(p, range(min(p.n_blocks, 2)))
    times = {name: [] for name in problems}
    stats = {}
    for _ in range(args.rounds):
        for name, p in problems.items():
            t0 = time.perf_counter()
            stats[name] = accumulate(p, range(p.n_blocks))
            times[name].append(time.perf_counter() - t0)
    name_u = list(problems)[1]
    p_u = problems[name_u]
    data = count_variables(p_u, stats[name_u])
    t0 = time.perf_counter()
    extra, _ = variables(p_u, data)
    post_s = time.perf_counter() - t0
    sweep_s, real_s = (statistics.median(times[n]) for n in problems)
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {_cpus()} CPUs, "
          f"jax {jax.__version__} {jax.default_backend()}; {args.points} x {args.samples} modules, "
          f"{args.rounds} alternating rounds; overrides {args.overrides or 'none'}")
    for n in problems:
        print(f"{n:<26} median {statistics.median(times[n]):8.2f} s   runs {', '.join(f'{t:.2f}' for t in times[n])}")
    print(f"ratio realisations / sweep: {real_s / sweep_s:.3f} (bound 1.3)")
    print(f"parse of both configurations: {parse_s:.2f} s; band + importance of the realisations: {post_s:.3f} s "
          f"({len(p_u.uncertain)} uncertain inputs)")
    print(f"yield band (5/50/95 %): {', '.join(f'{v:.4f}' for v in np.ravel(extra['yield_band'][1]))}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    main()
