"""Python API for notebooks and scripts: ``run(cfg) -> xarray.Dataset``."""

from __future__ import annotations

import xarray as xr

from yieldmc.engine.blocks import iterate_blocks
from yieldmc.job import as_job
from yieldmc.io.results import dataset


def run(cfg, *, n_devices: int | None = None) -> xr.Dataset:
    """Run the Monte-Carlo yield analysis of a configuration in memory.

    Args:
      cfg: a ``DictConfig`` from :func:`yieldmc.compose` (or an equivalent mapping; numpy
        scalars such as ``np.float64(0.5)`` are taken as their Python values).
      n_devices: local devices to shard the blocks over (default: all).

    Returns:
      The result Dataset (README.md, "Results"): ``yield``, its 95 % interval, ``n_pass``,
      ``n_samples``, ``channel_fail_fraction``, ``loss_db_mean``, ``loss_db_quantile``.

    Raises:
      ValueError: one line naming the offending key (an unknown key, a wrong type, a value
        out of range; :mod:`yieldmc.configuration.schema`), before anything is compiled.
    """
    job = as_job(cfg)
    problem = job.problem
    blocks = iterate_blocks(problem, range(problem.n_blocks), n_devices=n_devices)  # lazy
    estimate = problem.static.sampler.estimate(problem, blocks, n_devices=n_devices)
    return dataset(estimate, job.config_yaml)
