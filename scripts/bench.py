"""yieldmc engine vs a plain vectorised NumPy implementation of the same model.

    python scripts/bench.py [--samples 1048576] [--repeats 5] [--json bench.json]

For the butt coupler and the adiabatic coupler (cmt and landau_zener models) of the
default package and process, in one process and one run: times the JAX engine (after a
warm-up that compiles it) and scripts/numpy_baseline.py (its own code, float32 like the
engine) on the same sample count, alternating the two and taking the median of repeats, prints module-samples/s,
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
from yieldmc.io.config import problem_from_config, to_container  # noqa: E402
from yieldmc.engine.blocks import _compiled, accumulate, device_params  # noqa: E402

CASES = {
    "butt": ["package/coupler=butt"],
    "adiabatic_cmt": [],
    "adiabatic_landau_zener": ["package.coupler.model=landau_zener"],
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compile_engine(overrides, samples):
    """The problem, its compiled block function and the compile time (first call − second)."""
    cfg = yieldmc.compose(overrides + [f"samples={samples}"])
    problem = problem_from_config(cfg)
    fn = _compiled(problem.static)
    params = device_params(problem)
    times = []
    for block in (0, 1):
        t = time.perf_counter()
        jax.block_until_ready(fn(np.uint32(0), np.uint32(block), np.int32(problem.static.block_size), params, None))
        times.append(time.perf_counter() - t)
    accumulate(problem, range(problem.n_blocks))  # warm-up: every device, the partial last block
    return problem, max(times[0] - times[1], 0.0)


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1 << 20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--json")
    ap.add_argument("--cpu-devices", type=int, default=None,
                    help="split the host CPU into this many XLA devices (default: JAX's, one)")
    args = ap.parse_args()
    if args.cpu_devices:
        jax.config.update("jax_num_cpu_devices", args.cpu_devices)
    dev = jax.devices()[0]
    report = {
        "device_kind": dev.device_kind, "backend": jax.default_backend(),
        "devices": jax.device_count(), "cpu": platform.processor() or platform.machine(),
        "versions": {"jax": jax.__version__, "numpy": np.__version__, "yieldmc": yieldmc.__version__,
                     "python": platform.python_version()},
        "samples": args.samples, "cases": {},
    }
    print(f"device {dev.device_kind} ({jax.default_backend()}) x{jax.device_count()}, jax {jax.__version__}, "
          f"numpy {np.__version__}, {args.samples} module samples")
    ok = True
    for name in args.cases:
        overrides = CASES[name]
        problem, t_compile = compile_engine(overrides, args.samples)
        config = to_container(yieldmc.compose(overrides))
        numpy_baseline.simulate(config, samples=4096, seed=1, dtype=np.float32)  # warm caches
        # engine and NumPy alternate, so that a slow spell of a shared machine hits both
        walls_jax, walls_np = [], []
        for _ in range(args.repeats):
            t, stats = timed(accumulate, problem, range(problem.n_blocks))
            walls_jax.append(t)
            t, ref = timed(numpy_baseline.simulate, config, samples=args.samples, seed=1, dtype=np.float32)
            walls_np.append(t)
        rss_jax = peak_rss_mb()
        t_jax, t_np = statistics.median(walls_jax), statistics.median(walls_np)
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
            "engine_walls_s": walls_jax, "numpy_walls_s": walls_np, "peak_rss_mb": rss_jax,
            "yield_engine": y_jax, "yield_numpy": y_np, "combined_se": se, "agree": bool(agree),
        }
        report["cases"][name] = row
        print(f"{name:24s} engine {row['engine_modules_per_s']:10.4g} mod/s "
              f"{row['engine_channel_evals_per_s']:10.4g} ch/s | numpy {row['numpy_modules_per_s']:10.4g} mod/s"
              f" | x{row['speedup']:5.1f} | compile {t_compile:5.2f} s | RSS {rss_jax:.0f} MB"
              f" | yield {y_jax:.4f} vs {y_np:.4f} ({'agree' if agree else 'DISAGREE'})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if not ok:
        raise SystemExit("yields disagree between the engine and the NumPy baseline")


if __name__ == "__main__":
    main()
