"""yieldmc engine vs a fused Numba kernel and a plain NumPy implementation of the same model.

    python scripts/bench.py [--samples 1048576] [--repeats 5] [--cases butt ...] [--json bench.json]
                            [--cpu-devices N] [--no-single-thread] [--single-samples N]
                            [--single-repeats 3] [--numpy-samples N] [--engine-overrides KEY=VALUE ...]

For the butt coupler and the adiabatic Si-strip coupler (``adiabatic_cmt``: the default
package's coupler, cmt model; ``adiabatic_landau_zener``) of the default package and process,
in one process: times the JAX engine (after a warm-up that compiles it), the fused Numba
kernel (``scripts/fused_kernel.py``: the CPU bound of the same model and statistics; optional,
numba is the ``fused`` extra) and ``scripts/numpy_baseline.py`` (its own code, float32 like
the engine) on the same sample count, **alternating** the three (engine, fused, NumPy,
engine, …) so that a slow spell of a shared machine hits all of them, and takes the median of
repeats. Prints channel-evaluations/s, the engine's throughput as a ratio to the fused
kernel's and to NumPy's, compile time, peak memory, device kind and versions, and asserts that
the yields agree within 4.5 combined standard errors, and — for the fused kernel, which
computes the same per-channel statistics — every channel's fail fraction too.
``--numpy-samples`` runs NumPy on fewer modules (a GPU host: the engine's 2^24 would take NumPy
minutes); ``--engine-overrides`` sets engine keys for the engine alone (e.g.
``engine.block_size=1048576 engine.blocks_per_call=2`` on a GPU, where 16 384-module blocks are
launch-bound); throughputs are per module evaluated by each.

Per CPU: every run's process CPU time (all threads) as ns per channel evaluation, and — unless
``--no-single-thread`` — a child process pinned to one CPU (``os.sched_setaffinity`` before
jax or numba start their thread pools; numba at one thread) that alternates the three again:
the single-thread cost in ns per channel evaluation.

A baseline that cannot run a case says so and the others carry on: the NumPy baseline has no
Si-strip taper (which the adiabatic cases use); the fused kernel runs all three cases and
refuses what it leaves out (``fused_kernel.unsupported``: e.g. varied environment quantities,
conditions, the linear Δβ taper, a single polarisation), with the reason; without numba:
"fused kernel: not measured (numba not installed)". The fused kernel's per-channel check
against the engine on fixed draws is ``python scripts/fused_kernel.py --check``.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and os.environ.get("YIELDMC_BENCH_PIN_CPU"):
    # the single-thread child: pinned before jax (XLA's thread pool) or numba start threads
    os.sched_setaffinity(0, {int(os.environ["YIELDMC_BENCH_PIN_CPU"])})

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy_baseline  # noqa: E402

import yieldmc  # noqa: E402
from yieldmc.io.config import problem_from_config, to_container  # noqa: E402
from yieldmc.engine.blocks import _compiled, accumulate, device_params  # noqa: E402

try:  # optional: numba is the `fused` extra, not a dependency
    import numba

    import fused_kernel
except ImportError:
    numba = fused_kernel = None

CASES = {
    "butt": ["package/coupler=butt"],
    "adiabatic_cmt": ["package.coupler.model=cmt"],
    "adiabatic_landau_zener": ["package.coupler.model=landau_zener"],
}
NO_NUMBA = "fused kernel: not measured (numba not installed)"


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
    """(wall s, process CPU s of all threads, result) of one call."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, time.process_time() - c, out


def _binomial(n_pass: int, n: int) -> tuple[float, float]:
    y = n_pass / n
    return y, math.sqrt(y * (1 - y) / n)


def prepare(name: str, samples: int, *, numpy_samples: int | None = None, engine_overrides=()) -> dict:
    """The engine's problem (compiled), and the fused and NumPy runners of one case, each
    None with the reason where it cannot run."""
    overrides = CASES[name]
    problem, t_compile = compile_engine(overrides + list(engine_overrides), samples)
    numpy_samples = numpy_samples or samples
    case = {"problem": problem, "compile_s": t_compile, "fused": None, "numpy": None}
    config = to_container(yieldmc.compose(overrides))
    try:
        numpy_baseline.simulate(config, samples=4096, seed=1, dtype=np.float32)  # warm caches
        case["numpy"] = lambda: numpy_baseline.simulate(config, samples=numpy_samples, seed=1, dtype=np.float32)
    except (TypeError, ValueError, KeyError, NotImplementedError) as exc:
        case["numpy_reason"] = f"the baseline cannot run it ({type(exc).__name__}: {exc})"
    if fused_kernel is None:
        case["fused_reason"] = "numba not installed"
    elif why := fused_kernel.unsupported(problem):
        case["fused_reason"] = why
    else:
        model = fused_kernel.FusedModel.from_problem(problem)
        t = time.perf_counter()
        model.run(samples=fused_kernel.TILE, seed=0)  # compiles
        case["fused_compile_s"] = time.perf_counter() - t
        case["fused"] = lambda: model.run(samples=samples, seed=1)
    return case


def alternate(case: dict, repeats: int) -> dict:
    """engine, fused, NumPy, engine, … ``repeats`` times; walls, CPU times and the last results."""
    problem = case["problem"]
    runs = {"engine": lambda: accumulate(problem, range(problem.n_blocks)),
            "fused": case["fused"], "numpy": case["numpy"]}
    out = {k: {"walls_s": [], "cpu_s": [], "result": None} for k, fn in runs.items() if fn is not None}
    for _ in range(repeats):
        for k in out:
            wall, cpu, res = timed(runs[k])
            out[k]["walls_s"].append(wall)
            out[k]["cpu_s"].append(cpu)
            out[k]["result"] = res
    return out


def summarise(name: str, case: dict, runs: dict, samples: int, numpy_samples: int | None = None) -> dict:
    """Throughputs, ratios (of throughputs: engine/fused < 1 means the engine is slower),
    per-CPU costs and yields (with the agreement checks) of one case."""
    s = case["problem"].static
    row = {"channel_evals_per_module": s.layers * s.channels, "compile_s": case["compile_s"]}
    for k, r in runs.items():
        n = (numpy_samples or samples) if k == "numpy" else samples
        evals = n * s.layers * s.channels
        row[f"{k}_samples"] = n
        wall = statistics.median(r["walls_s"])
        row[f"{k}_s"] = wall
        row[f"{k}_walls_s"] = r["walls_s"]
        row[f"{k}_modules_per_s"] = n / wall
        row[f"{k}_channel_evals_per_s"] = evals / wall
        row[f"{k}_cpu_ns_per_eval"] = statistics.median(r["cpu_s"]) / evals * 1e9
    stats = runs["engine"]["result"]
    row["yield_engine"], row["se_engine"] = _binomial(int(stats.n_pass[0]), stats.n_samples)
    ok = True
    for k in ("fused", "numpy"):
        if k not in runs:
            row[f"{k}_reason"] = case.get(f"{k}_reason")
            continue
        res = runs[k]["result"]
        y, se = _binomial(res["n_pass"], res["n_samples"])
        combined = math.sqrt(row["se_engine"] ** 2 + se**2)
        agree = abs(y - row["yield_engine"]) <= 4.5 * max(combined, 1e-12)
        ok &= agree
        row.update({f"yield_{k}": y, f"se_{k}": se, f"agree_{k}": bool(agree),
                    f"engine_over_{k}": row["engine_channel_evals_per_s"] / row[f"{k}_channel_evals_per_s"]})
    if "fused" in runs:
        res, n = runs["fused"]["result"], runs["fused"]["result"]["n_samples"]
        row["fused_compile_s"] = case["fused_compile_s"]
        f1, f2 = (stats.fail[0, 0] / stats.n_samples).ravel(), (res["fail"] / n).ravel()
        se_f = np.sqrt(f1 * (1 - f1) / stats.n_samples + f2 * (1 - f2) / n)
        row["fail_fraction_engine"], row["fail_fraction_fused"] = f1.tolist(), f2.tolist()
        row["max_abs_z_fail_fraction_fused"] = float(np.max(np.abs(f2 - f1) / np.maximum(se_f, 1e-12)))
        row["agree_fail_fraction_fused"] = bool(np.all(np.abs(f2 - f1) <= 4.5 * np.maximum(se_f, 1e-12)))
        ok &= row["agree_fail_fraction_fused"]
    if "numpy" in runs:
        row["speedup"] = row["engine_over_numpy"]  # the same ratio under the key older bench JSON files carry
    row["agree"] = bool(ok)
    return row


def print_row(name: str, row: dict) -> None:
    def rate(k):
        return f"{row[f'{k}_channel_evals_per_s']:9.3g} ch/s" if f"{k}_s" in row else "not measured"

    ratio = lambda k: f"{row[f'engine_over_{k}']:.3f}" if f"engine_over_{k}" in row else "—"  # noqa: E731
    print(f"{name:24s} engine {rate('engine')} | fused {rate('fused')} (engine/fused {ratio('fused')}) | "
          f"numpy {rate('numpy')} (engine/numpy {ratio('numpy')}) | compile {row['compile_s']:.2f} s", flush=True)
    ys = [f"engine {row['yield_engine']:.5f} ± {row['se_engine']:.5f}"]
    for k in ("fused", "numpy"):
        if f"yield_{k}" in row:
            ys.append(f"{k} {row[f'yield_{k}']:.5f} ± {row[f'se_{k}']:.5f} ({'agree' if row[f'agree_{k}'] else 'DISAGREE'})")
        else:
            ys.append(f"{k}: not measured ({row[f'{k}_reason']})")
    print(f"{'':24s} yield " + "; ".join(ys), flush=True)
    if "agree_fail_fraction_fused" in row:
        print(f"{'':24s} per-channel fail fractions, fused vs engine: max |z| {row['max_abs_z_fail_fraction_fused']:.2f} "
              f"({'agree' if row['agree_fail_fraction_fused'] else 'DISAGREE'})", flush=True)
    cpu = ", ".join(f"{k} {row[f'{k}_cpu_ns_per_eval']:.1f}" for k in ("engine", "fused", "numpy") if f"{k}_s" in row)
    print(f"{'':24s} CPU time per channel evaluation (all threads), ns: {cpu}", flush=True)


def single_thread(args) -> dict:
    """Runs this script pinned to one CPU (a child process) and returns its per-case JSON."""
    cpu = min(os.sched_getaffinity(0))
    cmd = [sys.executable, __file__, "--samples", str(args.single_samples or args.samples),
           "--repeats", str(args.single_repeats), "--cases", *args.cases, "--child-json", "-"]
    if args.numpy_samples:
        cmd += ["--numpy-samples", str(args.numpy_samples)]
    if args.engine_overrides:
        cmd += ["--engine-overrides", *args.engine_overrides]
    env = dict(os.environ, YIELDMC_BENCH_PIN_CPU=str(cpu), NUMBA_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        print(f"single-thread run failed:\n{out.stderr[-3000:]}", file=sys.stderr)
        return {}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1 << 20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--json")
    ap.add_argument("--cpu-devices", type=int, default=None,
                    help="split the host CPU into this many XLA devices (default: JAX's, one)")
    ap.add_argument("--no-single-thread", action="store_true", help="skip the pinned one-CPU child")
    ap.add_argument("--single-samples", type=int, default=None, help="module samples of the one-CPU child (default --samples)")
    ap.add_argument("--single-repeats", type=int, default=3)
    ap.add_argument("--numpy-samples", type=int, default=None, help="module samples of the NumPy runs (default --samples)")
    ap.add_argument("--engine-overrides", nargs="*", default=[], metavar="KEY=VALUE",
                    help="config overrides for the engine alone, e.g. engine.block_size=1048576 engine.blocks_per_call=2")
    ap.add_argument("--child-json", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cpu_devices:
        jax.config.update("jax_num_cpu_devices", args.cpu_devices)
    child = args.child_json is not None
    dev = jax.devices()[0]
    cpus = len(os.sched_getaffinity(0))
    report = {
        "device_kind": dev.device_kind, "backend": jax.default_backend(),
        "devices": jax.device_count(), "cpu": platform.processor() or platform.machine(), "cpus": cpus,
        "versions": {"jax": jax.__version__, "numpy": np.__version__, "yieldmc": yieldmc.__version__,
                     "python": platform.python_version(), "numba": numba.__version__ if numba else None},
        "samples": args.samples, "numpy_samples": args.numpy_samples or args.samples, "repeats": args.repeats,
        "engine_overrides": args.engine_overrides, "xla_flags": os.environ.get("XLA_FLAGS", ""), "cases": {},
    }
    if not child:
        print(f"device {dev.device_kind} ({jax.default_backend()}) x{jax.device_count()}, {cpus} CPUs, "
              f"jax {jax.__version__}, numpy {np.__version__}, "
              f"numba {numba.__version__ + f' ({numba.get_num_threads()} threads)' if numba else 'none'}; "
              f"{args.samples} module samples, median of {args.repeats} alternating runs; "
              f"XLA_FLAGS={report['xla_flags']!r}", flush=True)
        if numba is None:
            print(NO_NUMBA, flush=True)
    ok = True
    for name in args.cases:
        case = prepare(name, args.samples, numpy_samples=args.numpy_samples, engine_overrides=args.engine_overrides)
        row = summarise(name, case, alternate(case, args.repeats), args.samples, args.numpy_samples)
        row["peak_rss_mb"] = peak_rss_mb()
        report["cases"][name] = row
        ok &= row["agree"]
        if not child:
            print_row(name, row)
    if child:
        print(json.dumps({n: {k: r.get(f"{k}_cpu_ns_per_eval") for k in ("engine", "fused", "numpy")}
                          | {"walls_s": {k: r.get(f"{k}_walls_s") for k in ("engine", "fused", "numpy")},
                             "single_ns_per_eval": {k: (r[f"{k}_s"] / (r[f"{k}_samples"] * r["channel_evals_per_module"]) * 1e9
                                                        if f"{k}_s" in r else None) for k in ("engine", "fused", "numpy")}}
                          for n, r in report["cases"].items()}))
        return
    if not args.no_single_thread:
        single = single_thread(args)
        report["single_thread"] = {"samples": args.single_samples or args.samples, "repeats": args.single_repeats,
                                   "cases": single}
        for name, r in single.items():
            ns = r["single_ns_per_eval"]
            parts = [f"{k} {ns[k]:.1f}" if ns.get(k) is not None else f"{k} not measured" for k in ("engine", "fused", "numpy")]
            ratio = f" (engine/fused throughput {ns['fused'] / ns['engine']:.3f})" if ns.get("fused") else ""
            print(f"{name:24s} one CPU, ns per channel evaluation: " + ", ".join(parts) + ratio, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if not ok:
        raise SystemExit("yields (or the fused kernel's per-channel fail fractions) disagree between the engine and "
                         "a baseline (beyond 4.5 combined standard errors)")


if __name__ == "__main__":
    main()
