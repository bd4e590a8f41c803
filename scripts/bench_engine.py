"""Engine benchmark (the streaming engine): wall time and peak memory of `yieldmc`.

Each measurement runs the real command (`python -m yieldmc …`, store and plots included)
in a fresh process, so the wall time includes start-up and JIT compilation; the peak
resident memory is the child's ru_maxrss.

    python scripts/bench_engine.py                       # 10^6 default job
    python scripts/bench_engine.py --samples 1e6 1e8     # memory flatness
    python scripts/bench_engine.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time


def _one(argv: list[str]) -> None:
    """Child: run the yieldmc command in this process, then report its own peak RSS."""
    from yieldmc.io.cli import main as yieldmc_main

    sys.argv = ["yieldmc", *argv]
    try:
        yieldmc_main()  # ends with sys.exit(status)
    finally:
        print(f"__peak_rss_kib__ {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", flush=True)


def measure(samples: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--one", f"samples={samples}",
             "output.dir=out", "progress=false", *extra],
            cwd=tmp, capture_output=True, text=True, env=dict(os.environ),
        )
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    lines = proc.stdout.strip().splitlines()
    peak_kib = int(lines[-1].split()[-1])
    return {"samples": samples, "overrides": extra, "wall_s": round(wall, 2),
            "peak_rss_mb": round(peak_kib / 1024, 1), "summary": "\n".join(lines[:-1])}


def main() -> None:
    if sys.argv[1:2] == ["--one"]:
        return _one(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", nargs="+", type=float, default=[1e6])
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("overrides", nargs="*", help="extra yieldmc overrides")
    args = ap.parse_args()
    import jax

    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "jax": jax.__version__, "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind, "runs": [],
    }
    for n in (int(s) for s in args.samples):
        r = measure(n, args.overrides)
        results["runs"].append(r)
        print(f"samples={n:.0e}: wall {r['wall_s']} s, peak RSS {r['peak_rss_mb']} MB", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
