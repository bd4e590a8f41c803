"""The one block loop of the yield-gradient estimators (:mod:`yieldmc.engine.estimators`):
the sensitivities and the optimiser's smoothed yield run an estimator over the blocks of
a problem here, with the engine's draws of each block (pure JAX and NumPy: no xarray,
zarr or Hydra)."""

from __future__ import annotations

import functools

import jax
import numpy as np

from yieldmc.engine.blocks import block_counts, sync_slices
from yieldmc.engine.estimators import BlockSums, GradientEstimator, soft_module_pass
from yieldmc.engine.problem import Problem, Static

__all__ = ["block_program", "block_sums", "soft_module_pass"]  # soft_module_pass: from the estimators


@functools.lru_cache(maxsize=None)
def block_program(estimator: GradientEstimator, static: Static, max_failed: int):
    """``f(seed, block, n_valid, params, baseline, tables) -> BlockSums`` of one block, as
    two compiled programs (draws and weights; the estimator's sums): on XLA's CPU backend
    that runs markedly faster than one fused program."""
    draw = jax.jit(functools.partial(static.sampler.weighted_draws, static=static))
    sums = jax.jit(functools.partial(estimator.block, static=static, max_failed=max_failed))
    return lambda seed, block, n_valid, params, baseline, tables: sums(
        *draw(seed, block, tables=tables), n_valid, params, baseline)


def block_sums(problem: Problem, estimator: GradientEstimator, names, *, params=None, progress=None) -> BlockSums:
    """Run ``estimator`` over every block of a single-point problem, in block order.

    Block b draws from (seed, b) with the problem's sampler (weighted by p/q where it
    does not draw from p), so every caller sees the same draws. Blocks are fetched to the
    host in groups of ``blocks_per_call`` (the first two alone when there is a
    ``progress``), or one at a time for an estimator with a baseline; the grouping
    changes no result.

    Args:
      names: the parameters whose gradients are kept, in order.
      params: parameter name → scalar device array (the point, and the variables);
        default the problem's values.
      progress: None or a callable given the modules of each fetched group.

    Returns:
      :class:`~yieldmc.engine.estimators.BlockSums` on the host: ``failed`` and ``value``
      summed over the blocks in order (float64), ``gradient`` each block's sums of
      ``names``, (K, P).
    """
    static = problem.static
    if params is None:
        params = jax.device_put({k: np.asarray(v[0], static.dtype) for k, v in problem.params.items()})
    weighted = not static.sampler.supports_gradients
    tables = static.sampler.tables(problem) if weighted else None
    program = block_program(estimator, static, int(problem.params["spec.max_failed_channels"][0]))
    counts = block_counts(problem, np.arange(problem.n_blocks))
    seed = np.uint32(problem.seed)
    size = 1 if estimator.baseline(failed=0.0, seen=0, weighted=weighted) is not None else \
        max(int(problem.blocks_per_call), 1)
    failed, value, seen, rows = 0.0, None, 0, []
    for part in sync_slices(len(counts), size, first=1 if progress is not None else size):
        outs = []
        for b in range(part.start, part.stop):
            baseline = estimator.baseline(failed=failed, seen=seen, weighted=weighted)
            outs.append(program(seed, np.uint32(b), np.int32(counts[b]), params,
                                None if baseline is None else np.asarray(baseline, dtype=static.dtype), tables))
        for out, n in zip(jax.device_get(outs), counts[part]):
            failed, seen = failed + float(out.failed), seen + int(n)
            value = None if out.value is None else (value or 0.0) + float(out.value)
            rows.append(np.array([out.gradient[k] for k in names], dtype=np.float64))
        if progress is not None:
            progress(int(np.sum(counts[part])))
    return BlockSums(failed, value, np.stack(rows))
