"""Time one block's two compiled programs (draws, statistics) of a job, apart.

    python scripts/profile_block.py [--hlo] [--repeats N] [override ...]
    python scripts/profile_block.py package/coupler=butt

Prints the median wall time of the draw program and of the statistics program on one block
(``engine.block_size`` modules, after compilation), and ns per channel evaluation; with
``--hlo`` also the statistics program's kernels over full (L, C, B) arrays (XLA fusions),
a count of the passes a block makes over its data. Used for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yieldmc  # noqa: E402  (sets the XLA:CPU defaults before JAX starts)
import jax  # noqa: E402

from yieldmc.engine.blocks import _compiled, device_params  # noqa: E402
from yieldmc.io.config import problem_from_config  # noqa: E402


def median_ms(fn, repeats: int) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--hlo", action="store_true", help="count the statistics program's full-array kernels")
    args = ap.parse_args()
    problem = problem_from_config(yieldmc.compose(args.overrides))
    program = _compiled(problem.static)
    if not hasattr(program, "draw"):
        raise SystemExit(f"sampler={problem.static.sampler.name}: not a two-program (counting) sampler")
    params = device_params(problem)
    s = problem.static
    b = s.block_size
    u = program.draw(np.uint32(0), np.uint32(0), tables=None)
    draw = median_ms(lambda: program.draw(np.uint32(0), np.uint32(1), tables=None), args.repeats)
    stats = median_ms(lambda: program.stats(u, np.int32(b), params), args.repeats)
    evals = b * s.layers * s.channels
    print(f"{jax.devices()[0].device_kind}: block {b} modules × {s.layers}×{s.channels} channels, "
          f"{u.shape[0]} random dimensions")
    print(f"draw {draw:.2f} ms, statistics {stats:.2f} ms per block; "
          f"{(draw + stats) * 1e6 / evals:.1f} ns per channel evaluation (wall)")
    if args.hlo:
        text = program.stats.lower(u, np.int32(b), params).compile().as_text()
        entry = text[text.index("ENTRY"):]
        full = f"[{s.n_conditions},{s.layers},{s.channels},{b}]" if s.n_conditions > 1 else \
            f"[{s.layers},{s.channels},{b}]"
        kernels = [ln for ln in entry.splitlines() if " fusion(" in ln and full in ln.split("=")[1].split(" ")[1]]
        print(f"statistics program: {len(kernels)} kernels over full {full} arrays, "
              f"{len(re.findall(' fusion[(]', entry))} kernels in all")


if __name__ == "__main__":
    main()
