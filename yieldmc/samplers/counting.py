"""Count-based samplers: only the draws differ (pure numpy/JAX; no xarray, zarr or Hydra).

:class:`CountingSampler` supplies everything of :class:`~yieldmc.samplers.base.Sampler`
but :meth:`~yieldmc.samplers.base.Sampler.draws`: the engine's per-block integer counts
(:func:`yieldmc.engine.blocks.block_stats` on the sampler's draws, two compiled programs), their
exact int64 totals (:mod:`yieldmc.engine.statistics`) and the Wilson interval of the pass
count. ``mc`` and ``qmc`` are count-based; so is a plugin sampler that only changes the
draws (``tests/toy_sampler.py``).
"""

from __future__ import annotations

from yieldmc.engine.blocks import count_program
from yieldmc.engine.statistics import block_shapes, combine_blocks
from yieldmc.samplers.base import Estimate, Interval, Sampler
from yieldmc.engine.stats import wilson_interval


class CountingSampler(Sampler):
    """A sampler whose per-block statistics are the engine's integer counts."""

    counts = True

    def program(self, static):
        return count_program(static)

    def block_shapes(self, problem) -> dict:
        return block_shapes(problem)

    def estimate(self, problem, blocks, *, n_devices=None) -> Estimate:
        """Combine the counts of every block as int64 (exact, in any order and grouping)."""
        return Estimate(problem, combine_blocks(problem, blocks))

    def interval(self, problem, stats) -> Interval:
        """95 % Wilson score interval of n_pass out of n_samples."""
        low, high = wilson_interval(stats.n_pass, stats.n_samples)
        return Interval(low, high, "Wilson")

    def interval_method(self, problem) -> str:
        return "Wilson score, 95 %"
