"""Cost of conditions (docs/benchmarks.md): K conditions against one, in one process.

Each configuration's one-block program is compiled first, then the timed runs alternate
between the configurations (rounds × configurations), so that the shared machine's load
affects them alike; the report is the median per configuration and its ratio to the
run without conditions. The draws and the quantity values are formed once per block
whatever K is, so K conditions cost at most K× one and less where the draws dominate.

    python scripts/bench_conditions.py                      # default package (adiabatic)
    python scripts/bench_conditions.py package/coupler=butt
    python scripts/bench_conditions.py --samples 262144 --rounds 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

CASES = {
    "none (K=1)": [],
    "1 condition (hot)": ["conditions={hot:{temperature_c:125.0}}"],
    "2 conditions": ["conditions={cold:{temperature_c:-40.0},hot:{temperature_c:125.0}}"],
    "5 temperatures": ["conditions={a:{temperature_c:-40.0},b:{temperature_c:0.0},c:{temperature_c:25.0},"
                       "d:{temperature_c:85.0},e:{temperature_c:125.0}}"],
    "qualification (3 stresses)": ["conditions=qualification"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=262144)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("overrides", nargs="*", help="extra yieldmc overrides")
    args = ap.parse_args()

    import jax

    import yieldmc
    from yieldmc.engine.blocks import accumulate
    from yieldmc.io.config import problem_from_config

    problems = {name: problem_from_config(yieldmc.compose([f"samples={args.samples}", *args.overrides, *extra]))
                for name, extra in CASES.items()}
    for p in problems.values():  # compile (and warm) every program first
        accumulate(p, range(min(p.n_blocks, 2)))
    times = {name: [] for name in problems}
    for _ in range(args.rounds):
        for name, p in problems.items():
            t0 = time.perf_counter()
            accumulate(p, range(p.n_blocks))
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["1 condition (hot)"])
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
          f"jax {jax.__version__} {jax.default_backend()}; {args.samples} modules per run, "
          f"{args.rounds} alternating rounds; overrides {args.overrides or 'none'}")
    print("ratio: against one condition (the same lax.map body); qualification adds")
    print("the stresses' drift draws and their initial readout, so its conditions do more work than one temperature")
    print(f"{'configuration':<22} {'K':>2} {'median s':>9} {'ratio':>6} {'ratio/K':>8}")
    for name, p in problems.items():
        k = p.static.n_conditions
        med = statistics.median(times[name])
        print(f"{name:<22} {k:>2} {med:>9.2f} {med / base:>6.2f} {med / base / k:>8.2f}")


if __name__ == "__main__":
    main()
