"""Roofline estimate of the engine's block program on this device.

    python scripts/roofline.py [overrides ...]

* operations and bytes per channel evaluation: XLA's cost analysis of the compiled
  one-block program (random numbers, model, statistics), divided by the channel
  evaluations of a block;
* the device's measured peaks: float32 matrix-multiply FLOP/s (compute roof) and a large
  elementwise update's bytes/s (memory roof), timed after warm-up;
* the fraction of each roof the engine reaches at its measured throughput.
Transcendentals (sin, cos, exp, log, sqrt) count as one operation each in XLA's
analysis; on a CPU they cost tens of cycles, so the compute fraction is a lower bound.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import yieldmc
from yieldmc.io.config import problem_from_config
from yieldmc.engine.blocks import _compiled, device_params


def timed(fn, repeats=5):
    jax.block_until_ready(fn())
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def peaks():
    n = 2048
    a = jnp.ones((n, n), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    flops = 2 * n**3 / timed(lambda: mm(a))
    big = jnp.ones((64 * 2**20,), jnp.float32)  # 256 MiB
    upd = jax.jit(lambda x: x * 1.0001 + 1.0)
    bw = 2 * big.nbytes / timed(lambda: upd(big))  # read + write
    return flops, bw


def main() -> None:
    overrides = sys.argv[1:]
    problem = problem_from_config(yieldmc.compose(overrides + ["samples=65536"]))
    s = problem.static
    params = device_params(problem)
    args = (np.uint32(0), np.uint32(0), np.int32(s.block_size), params, None)
    stages = _compiled(s)  # two programs: the draws, then the model and statistics
    z = stages.draw(np.uint32(0), np.uint32(0), tables=None)
    cost = {}
    for lowered in (stages.draw.lower(np.uint32(0), np.uint32(0), tables=None),
                    stages.stats.lower(z, np.int32(s.block_size), params)):
        c = lowered.compile().cost_analysis()
        c = c[0] if isinstance(c, (list, tuple)) else c
        for k in ("flops", "transcendentals", "bytes accessed"):
            cost[k] = cost.get(k, 0.0) + float(c.get(k, 0.0))
    evals = s.block_size * s.layers * s.channels
    fn = _compiled(s)
    t_block = timed(lambda: fn(*args))
    flop_peak, bw_peak = peaks()
    flops = float(cost.get("flops", 0.0)) + float(cost.get("transcendentals", 0.0))
    nbytes = float(cost.get("bytes accessed", 0.0))
    res = {
        "device_kind": jax.devices()[0].device_kind, "backend": jax.default_backend(),
        "overrides": overrides, "block_size": s.block_size, "channel_evals_per_block": evals,
        "flops_per_eval": flops / evals, "transcendentals_per_eval": float(cost.get("transcendentals", 0.0)) / evals,
        "bytes_per_eval": nbytes / evals, "arithmetic_intensity_flop_per_byte": flops / max(nbytes, 1.0),
        "block_seconds": t_block, "channel_evals_per_s": evals / t_block,
        "achieved_gflops": flops / t_block / 1e9, "achieved_gbytes_per_s": nbytes / t_block / 1e9,
        "peak_gflops_matmul_f32": flop_peak / 1e9, "peak_gbytes_per_s_stream": bw_peak / 1e9,
    }
    res["fraction_of_compute_roof"] = res["achieved_gflops"] / res["peak_gflops_matmul_f32"]
    res["fraction_of_memory_roof"] = res["achieved_gbytes_per_s"] / res["peak_gbytes_per_s_stream"]
    roof = min(res["peak_gflops_matmul_f32"], res["arithmetic_intensity_flop_per_byte"] * res["peak_gbytes_per_s_stream"])
    res["roofline_bound_gflops"] = roof
    res["fraction_of_roofline_bound"] = res["achieved_gflops"] / roof
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
