"""yieldmc engine vs a plain vectorised NumPy implementation of the same model.

    python scripts/bench.py [--samples 262144] [--json bench.json]

For the butt coupler and the adiabatic coupler (cmt and landau_zener models) of the
default package and process, in one process and one run: times the JAX engine (after a
warm-up that compiles it; median of repeats) and scripts/numpy_baseline.py (its own code,
float32 like the engine) on the same sample count, prints module-samples/s,
channel-evaluations/s, their ratio, compile time, peak memory, device kind and
versions, and asserts that the two yields agree within 4.5 combined standard errors.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy_baseline  # noqa: E402

import yieldmc  # noqa: E402
from yieldmc.config import problem_from_config, to_container  # noqa: E402
from yieldmc.engine import _compiled, accumulate, device_params  # noqa: E402

CASES = {
    "butt": ["package/coupler=butt"],
    "adiabatic_cmt": [],
    "adiabatic_landau_zener": ["package.coupler.model=landau_zener"],
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_engine(overrides, samples, repeats):
    cfg = yieldmc.compose(overrides + [f"samples={samples}"])
    problem = problem_from_config(cfg)
    fn = _compiled(problem.static)
    params = device_params(problem)
    t = time.perf_counter()
    jax.block_until_ready(fn(np.uint32(0), np.uint32(0), np.int32(problem.static.block_size), params, None))
    first = time.perf_counter() - t
    t = time.perf_counter()
    jax.block_until_ready(fn(np.uint32(0), np.uint32(1), np.int32(problem.static.block_size), params, None))
    block = time.perf_counter() - t
    walls, stats = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        stats = accumulate(problem, range(problem.n_blocks))
        walls.append(time.perf_counter() - t)
    return problem, stats, statistics.median(walls), max(first - block, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=262144)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--json")
    args = ap.parse_args()
    dev = jax.devices()[0]
    report = {
        "device_kind": dev.device_kind, "backend": jax.default_backend(),
        "devices": jax.device_count(), "cpu": platform.processor() or platform.machine(),
        "versions": {"jax": jax.__version__, "numpy": np.__version__, "yieldmc": yieldmc.__version__,
                     "python": platform.python_version()},
        "samples": args.samples, "cases": {},
    }
    print(f"device {dev.device_kind} ({jax.default_backend()}), jax {jax.__version__}, "
          f"numpy {np.__version__}, {args.samples} module samples")
    ok = True
    for name in args.cases:
        overrides = CASES[name]
        problem, stats, t_jax, t_compile = time_engine(overrides, args.samples, args.repeats)
        rss_jax = peak_rss_mb()
        config = to_container(yieldmc.compose(overrides))
        numpy_baseline.simulate(config, samples=4096, seed=1, dtype=np.float32)  # warm caches
        t = time.perf_counter()
        ref = numpy_baseline.simulate(config, samples=args.samples, seed=1, dtype=np.float32)
        t_np = time.perf_counter() - t
        channels = problem.static.layers * problem.static.channels
        y_jax = stats.n_pass[0] / stats.n_samples
        y_np = ref["n_pass"] / ref["n_samples"]
        se = math.sqrt(y_jax * (1 - y_jax) / stats.n_samples + y_np * (1 - y_np) / ref["n_samples"])
        agree = abs(y_jax - y_np) <= 4.5 * max(se, 1e-12)
        ok &= agree
        row = {
            "engine_modules_per_s": args.samples / t_jax,
            "engine_channel_evals_per_s": args.samples * channels / t_jax,
            "numpy_modules_per_s": args.samples / t_np,
            "numpy_channel_evals_per_s": args.samples * channels / t_np,
            "speedup": t_np / t_jax, "engine_s": t_jax, "numpy_s": t_np, "compile_s": t_compile,
            "peak_rss_mb_after_engine": rss_jax, "peak_rss_mb_after_numpy": peak_rss_mb(),
            "yield_engine": y_jax, "yield_numpy": y_np, "combined_se": se, "agree": bool(agree),
        }
        report["cases"][name] = row
        print(f"{name:24s} engine {row['engine_modules_per_s']:10.4g} mod/s "
              f"{row['engine_channel_evals_per_s']:10.4g} ch/s | numpy {row['numpy_modules_per_s']:10.4g} mod/s"
              f" | x{row['speedup']:5.1f} | compile {t_compile:5.2f} s | RSS {row['peak_rss_mb_after_numpy']:.0f} MB"
              f" | yield {y_jax:.4f} vs {y_np:.4f} ({'agree' if agree else 'DISAGREE'})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if not ok:
        raise SystemExit("yields disagree between the engine and the NumPy baseline")


if __name__ == "__main__":
    main()
