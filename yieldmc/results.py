"""The result Dataset of DESIGN §5, built from the engine's integer statistics (edge: xarray)."""

from __future__ import annotations

import platform

import jax
import jaxlib
import numpy as np
import xarray as xr
import yaml
from scipy.stats import t as student_t

from yieldmc._version import __version__
from yieldmc.engine import LOSS_CLIP_DB, Stats
from yieldmc.problem import Problem
from yieldmc.stats import _Z95, quantiles_from_histogram, wilson_interval


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
        "sampler": problem.static.sampler,
        "interval_method": (
            f"Student t (95 %) over {problem.randomizations} independent Sobol' randomisations"
            if problem.static.sampler == "qmc" else "Wilson score, 95 %"
        ),
        "quantile_method": (
            f"upper edge of the {problem.static.hist_max_db / problem.static.hist_bins:g} dB "
            "histogram bin holding the quantile; +inf beyond the histogram range"
        ),
    }


def _channel_coords(problem: Problem) -> dict:
    s = problem.static
    return {
        "quantile": ("quantile", np.asarray(problem.quantiles), {"units": "1", "long_name": "probability"}),
        "layer": ("layer", np.arange(s.layers), {"long_name": "PWG layer (0 = bottom)"}),
        "channel": ("channel", np.arange(s.channels), {"long_name": "channel within the layer"}),
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
    extra, method = {}, "Wilson"
    if s.sampler == "qmc":
        r = problem.randomizations
        per = stats.n_pass_group / (n / r)  # (R, P): yield of each randomisation
        mean = per.mean(axis=0)
        se = per.std(axis=0, ddof=1) / np.sqrt(r)
        t = student_t.ppf(0.975, r - 1)
        low, high = np.clip(mean - t * se, 0, 1), np.clip(mean + t * se, 0, 1)
        method = f"Student-t ({r} randomisations)"
        extra["yield_randomization"] = (["randomization", *sweep_dims], per.reshape((r, *shape)), {
            "units": "1", "long_name": "yield of each independent Sobol' randomisation"})
        extra["yield_se"] = (sweep_dims, grid(se), {
            "units": "1", "long_name": "standard error of yield over the randomisations"})
    hist_width = s.hist_max_db / s.hist_bins
    q = quantiles_from_histogram(stats.hist, problem.quantiles, bin_width_db=hist_width)
    q = np.moveaxis(q, 0, 1)  # (P, quantile, L, C)
    ch = ("layer", "channel")
    data = {
        "yield": (sweep_dims, grid(stats.n_pass / n), {
            "units": "1", "long_name": "fraction of modules that meet the loss spec"}),
        "yield_ci_low": (sweep_dims, grid(low), {
            "units": "1", "long_name": f"yield, lower end of the 95 % {method} interval"}),
        "yield_ci_high": (sweep_dims, grid(high), {
            "units": "1", "long_name": f"yield, upper end of the 95 % {method} interval"}),
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
        **extra,
    }
    coords = {key: (key, np.asarray(vals, dtype=np.float64), {"long_name": key})
              for key, vals in zip(problem.sweep_keys, problem.sweep_values)}
    coords.update(_channel_coords(problem))
    return xr.Dataset(data, coords=coords, attrs=provenance(problem, config))


def importance_dataset(problem: Problem, est, config: dict) -> xr.Dataset:
    """The DESIGN §5 Dataset from an importance-sampling estimate (one point, no sweep)."""
    s = problem.static
    pf, se = est.failure_probability, est.failure_probability_se
    lc = (s.layers, s.channels)
    ch = ("layer", "channel")
    data = {
        "yield": ((), 1.0 - pf, {"units": "1", "long_name": "fraction of modules that meet the loss spec"}),
        "yield_ci_low": ((), max(0.0, 1.0 - (pf + _Z95 * se)), {
            "units": "1", "long_name": "yield, lower end of the 95 % normal interval of the IS estimate"}),
        "yield_ci_high": ((), min(1.0, 1.0 - (pf - _Z95 * se)), {
            "units": "1", "long_name": "yield, upper end of the 95 % normal interval of the IS estimate"}),
        "n_pass": ((), np.int64(est.n_pass_proposal), {
            "units": "1", "long_name": "passing modules among the proposal samples (unweighted)"}),
        "n_samples": ((), np.int64(est.n_samples), {"units": "1", "long_name": "number of module samples"}),
        "channel_fail_fraction": (ch, est.channel_fail.reshape(lc), {
            "units": "1", "long_name": "probability that the channel fails (IS estimate)"}),
        "loss_db_mean": (ch, est.loss_mean.reshape(lc), {
            "units": "dB", "long_name": "mean channel loss (IS estimate, losses clipped at 100 dB)"}),
        "loss_db_quantile": (("quantile", *ch), np.full((len(problem.quantiles), *lc), np.nan), {
            "units": "dB", "long_name": "channel loss quantile (not estimated by sampler=is)"}),
        "failure_probability": ((), pf, {"units": "1", "long_name": "module failure probability 1 - yield"}),
        "failure_probability_se": ((), se, {"units": "1", "long_name": "standard error of failure_probability"}),
        "effective_sample_size": ((), est.effective_sample_size, {
            "units": "1", "long_name": "Kish effective sample size of the failing samples' IS weights"}),
    }
    coords = _channel_coords(problem)
    attrs = provenance(problem, config)
    attrs.update({
        "interval_method": "normal, 95 %, from the IS standard error",
        "is_design_points": int(len(est.design.beta)),
        "is_beta": [float(b) for b in est.design.beta],
    })
    return xr.Dataset(data, coords=coords, attrs=attrs)
