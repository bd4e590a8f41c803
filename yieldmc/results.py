"""The result Dataset of DESIGN §5, built from the engine's integer statistics (edge: xarray)."""

from __future__ import annotations

import platform

import jax
import jaxlib
import numpy as np
import xarray as xr
import yaml

from yieldmc._version import __version__
from yieldmc.engine import LOSS_CLIP_DB, Stats
from yieldmc.problem import Problem
from yieldmc.stats import quantiles_from_histogram, wilson_interval


def provenance(problem: Problem, config: dict) -> dict:
    """Global attributes: resolved config as YAML, seed, versions, backend, device, RNG."""
    dev = jax.local_devices()[0]
    return {
        "title": "yieldmc Monte-Carlo yield map",
        "config_yaml": yaml.safe_dump(config, sort_keys=False),
        "seed": problem.seed,
        "yieldmc_version": __version__,
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "backend": jax.default_backend(),
        "device_kind": dev.device_kind,
        "device_count": jax.local_device_count(),
        "rng_impl": problem.static.rng_impl,
        "dtype": problem.static.dtype,
        "block_size": problem.static.block_size,
        "python_version": platform.python_version(),
        "interval_method": "Wilson score, 95 %",
        "quantile_method": (
            f"upper edge of the {problem.static.hist_max_db / problem.static.hist_bins:g} dB "
            "histogram bin holding the quantile; +inf beyond the histogram range"
        ),
    }


def to_dataset(problem: Problem, stats: Stats, config: dict) -> xr.Dataset:
    """Assemble the yield map Dataset from summed statistics.

    Dimensions: one per swept key (named after the key, coordinate = its values),
    ``quantile``, ``layer``, ``channel``.
    """
    s = problem.static
    sweep_dims = list(problem.sweep_keys)
    shape = problem.sweep_shape
    n = stats.n_samples
    lc = (s.layers, s.channels)

    def grid(a, tail=()):
        return np.asarray(a).reshape(tuple(shape) + tuple(tail))

    low, high = wilson_interval(stats.n_pass, n)
    hist_width = s.hist_max_db / s.hist_bins
    q = quantiles_from_histogram(stats.hist, problem.quantiles, bin_width_db=hist_width)
    q = np.moveaxis(q, 0, 1)  # (P, quantile, L, C)
    ch = ("layer", "channel")
    data = {
        "yield": (sweep_dims, grid(stats.n_pass / n), {
            "units": "1", "long_name": "fraction of modules that meet the loss spec"}),
        "yield_ci_low": (sweep_dims, grid(low), {
            "units": "1", "long_name": "yield, lower end of the 95 % Wilson interval"}),
        "yield_ci_high": (sweep_dims, grid(high), {
            "units": "1", "long_name": "yield, upper end of the 95 % Wilson interval"}),
        "n_pass": (sweep_dims, grid(stats.n_pass).astype(np.int64), {
            "units": "1", "long_name": "number of passing modules"}),
        "n_samples": (sweep_dims, np.full(shape, n, dtype=np.int64), {
            "units": "1", "long_name": "number of module samples"}),
        "channel_fail_fraction": (sweep_dims + list(ch), grid(stats.fail / n, lc), {
            "units": "1", "long_name": "fraction of modules in which the channel fails"}),
        "loss_db_mean": (sweep_dims + list(ch), grid(stats.loss_sum * s.loss_unit_db / n, lc), {
            "units": "dB", "long_name": f"mean channel loss (each loss clipped at {LOSS_CLIP_DB:g} dB)"}),
        "loss_db_quantile": (sweep_dims + ["quantile", *ch], grid(q, (len(problem.quantiles), *lc)), {
            "units": "dB", "long_name": f"channel loss quantile (resolution {hist_width:g} dB)"}),
    }
    coords = {key: (key, np.asarray(vals, dtype=np.float64), {"long_name": key})
              for key, vals in zip(problem.sweep_keys, problem.sweep_values)}
    coords["quantile"] = ("quantile", np.asarray(problem.quantiles), {"units": "1", "long_name": "probability"})
    coords["layer"] = ("layer", np.arange(s.layers), {"long_name": "PWG layer (0 = bottom)"})
    coords["channel"] = ("channel", np.arange(s.channels), {"long_name": "channel within the layer"})
    return xr.Dataset(data, coords=coords, attrs=provenance(problem, config))
