"""The result Dataset (README.md, "Results"), built from a sampler's estimate (edge: xarray).

:func:`dataset` turns a :class:`yieldmc.samplers.Estimate` into the Dataset: the count
variables from its integer statistics (with the sampler's interval), then the variables
the sampler gives itself; the provenance names the sampler and its interval method.
Nothing here depends on which sampler it is.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
import yaml

from yieldmc.engine.blocks import LOSS_CLIP_DB, SPEC_STEPS, Stats
from yieldmc.engine.conditions import condition_coords, condition_variables
from yieldmc.engine.problem import Problem
from yieldmc.samplers import Estimate
from yieldmc.engine.stats import quantiles_from_histogram, wilson_interval
from yieldmc.provenance import provenance


def key_units(config: dict, path: str) -> str | None:
    """The unit of the value at config key ``path`` (``"1"`` when dimensionless), from the
    key's declaration (:func:`yieldmc.configuration.schema.lookup`); a variation parameter has
    its quantity's unit (:data:`yieldmc.engine.quantities.BY_NAME`), and so has a
    condition's setting (``conditions.<name>.<quantity>``, ``…readout.<quantity>``);
    its ``process``/``spec`` entries have those of ``process.…``/``spec.…``. None for a
    key that is not declared.
    """
    from yieldmc.configuration import schema
    from yieldmc.engine.quantities import BY_NAME

    parts = path.split(".")
    if parts[0] == "conditions" and len(parts) >= 3:
        rest = parts[2:]
        if rest[0] == "readout" and len(rest) == 2:
            rest = rest[1:]
        if len(rest) == 1 and rest[0] in BY_NAME:
            unit = BY_NAME[rest[0]].unit
            return unit or "1"
        parts = rest
    key = schema.lookup(config, ".".join(parts))
    if key is None:
        return None
    unit = key.unit
    if unit == "quantity" and len(parts) > 1 and parts[1] in BY_NAME:
        unit = BY_NAME[parts[1]].unit
    return unit or "1"


def key_attrs(config: dict, path: str) -> dict:
    """``long_name`` (the key) and ``units`` of a coordinate labelled by config key ``path``."""
    units = key_units(config, path)
    return {"long_name": path, **({"units": units} if units is not None else {})}


def parameter_units(ds: xr.Dataset, config_yaml: str) -> xr.Dataset:
    """``ds`` with a ``units`` coordinate along its ``parameter`` dimension (whose labels are
    config keys: sensitivity, optimisation, calibration): each key's unit
    (:func:`key_units`; ``""`` where the key is not declared), and a ``long_name`` on
    ``parameter``. A Dataset without that dimension is returned as it is."""
    if "parameter" not in ds.dims or "parameter" not in ds.coords:
        return ds
    config = yaml.safe_load(config_yaml) or {}
    units = [key_units(config, str(k)) or "" for k in ds.parameter.values]
    ds = ds.assign_coords(units=("parameter", np.asarray(units, dtype=str),
                                 {"long_name": "unit of each parameter's value and of dY/dθ's θ"}))
    ds["parameter"].attrs.setdefault("long_name", "configuration key")
    return ds


def _channel_coords(problem: Problem) -> dict:
    s = problem.static
    return {
        "quantile": ("quantile", np.asarray(problem.quantiles), {"units": "1", "long_name": "probability"}),
        "layer": ("layer", np.arange(s.layers), {"long_name": "PWG layer (0 = bottom)"}),
        "channel": ("channel", np.arange(s.channels), {"long_name": "channel within the layer"}),
    }


def dataset(estimate: Estimate, config_yaml: str) -> xr.Dataset:
    """The result Dataset of a sampler's estimate.

    Dimensions: one per swept key (named after the key, coordinate = its values),
    ``quantile``, ``layer``, ``channel`` (and any the sampler's variables add).
    """
    problem = estimate.problem
    data = {} if estimate.stats is None else count_variables(problem, estimate.stats)
    data.update(estimate.variables)
    config = yaml.safe_load(config_yaml) or {}
    coords = {key: (key, np.asarray(vals, dtype=np.float64), key_attrs(config, key))
              for key, vals in zip(problem.sweep_keys, problem.sweep_values)}
    coords.update(_channel_coords(problem))
    coords.update(condition_coords(problem.static))
    if "yield_vs_spec" in data:
        coords.update(spec_coords(problem))
    attrs = provenance(problem, config_yaml)
    attrs.update(estimate.attrs)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def count_variables(problem: Problem, stats: Stats) -> dict:
    """The result variables from summed counts, the interval the sampler's
    (:meth:`yieldmc.samplers.Sampler.interval`): name → (dims, values, attrs)."""
    s = problem.static
    sweep_dims = list(problem.sweep_keys)
    shape = problem.sweep_shape
    n = stats.n_samples
    conditioned = bool(s.conditions)
    lc = (s.n_conditions, s.layers, s.channels) if conditioned else (s.layers, s.channels)
    ch = (("condition",) if conditioned else ()) + ("layer", "channel")

    def grid(a, tail=()):
        return np.asarray(a).reshape(tuple(shape) + tuple(tail))

    interval = s.sampler.interval(problem, stats)
    low, high, method = interval.low, interval.high, interval.label
    hist_width = s.hist_max_db / s.hist_bins
    q = quantiles_from_histogram(stats.hist, problem.quantiles, bin_width_db=hist_width)
    q = np.moveaxis(q, 0, 1)  # (P, quantile, K, L, C)
    qdims = ["quantile", *ch]
    if conditioned:  # (P, K, quantile, L, C): the condition leads the channel dims
        q = np.moveaxis(q, 2, 1)
        qdims = ["condition", "quantile", "layer", "channel"]
    else:
        q = q[:, :, 0]
    data = {
        "yield": (sweep_dims, grid(stats.n_pass / n), {
            "units": "1", "long_name": "fraction of modules that meet the loss spec"
                                       + (" under every condition (envelope yield)" if conditioned else "")}),
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
        "pdl_db_mean": (sweep_dims + list(ch), grid(stats.pdl_sum * s.loss_unit_db / n, lc), {
            "units": "dB", "long_name": "mean polarisation-dependent loss |loss_TE − loss_TM| "
                                        "(0 when one polarisation is evaluated)"}),
        "loss_db_quantile": (sweep_dims + qdims, grid(q, q.shape[1:]), {
            "units": "dB", "long_name": f"channel loss quantile (resolution {hist_width:g} dB)"}),
        **interval.variables,
        **condition_variables(s, sweep_dims, lambda a: grid(a, (s.n_conditions,)), stats.conditions / n),
        **spec_variables(problem, stats),
    }
    return data


def spec_grid_db(problem: Problem) -> np.ndarray | None:
    """The ``spec_db`` coordinate: S + j·Δ, j = −J … J (None when ``spec.max_loss_db`` is
    swept: the grid would differ from point to point)."""
    if "spec.max_loss_db" in problem.sweep_keys:
        return None
    s = problem.static
    spec = float(problem.params["spec.max_loss_db"][0])
    return spec + np.arange(-SPEC_STEPS, SPEC_STEPS + 1) * (s.hist_max_db / s.hist_bins)


def spec_variables(problem: Problem, stats: Stats) -> dict:
    """``yield_vs_spec`` (sweep dims…, spec_db) with its Wilson interval, and
    ``condition_yield_vs_spec`` (sweep dims…, condition, spec_db) under several conditions:
    the cumulative counts of the modules' spec figures (the (m+1)-th worst channel's pass
    figure, the largest over the conditions for the envelope). At the configured spec it
    equals ``yield`` exactly."""
    grid_db = spec_grid_db(problem)
    if grid_db is None:
        return {}
    s = problem.static
    n = stats.n_samples
    sweep_dims = list(problem.sweep_keys)
    shape = tuple(problem.sweep_shape)
    passing = np.cumsum(stats.spec_hist, axis=-1)[..., : 2 * SPEC_STEPS + 1]  # (P, rows, S)
    low, high = wilson_interval(passing[:, 0], n)
    what = {"units": "1", "spec_grid": "S + j * bin width of the loss histogram",
            "long_name": "yield if the loss spec were spec_db (same modules; the failed-channel "
                         "allowance and any crosstalk spec unchanged)"}
    data = {
        "yield_vs_spec": (sweep_dims + ["spec_db"], (passing[:, 0] / n).reshape(shape + grid_db.shape), what),
        "yield_vs_spec_ci_low": (sweep_dims + ["spec_db"], np.asarray(low).reshape(shape + grid_db.shape), {
            "units": "1", "long_name": "yield_vs_spec, lower end of the 95 % Wilson interval"}),
        "yield_vs_spec_ci_high": (sweep_dims + ["spec_db"], np.asarray(high).reshape(shape + grid_db.shape), {
            "units": "1", "long_name": "yield_vs_spec, upper end of the 95 % Wilson interval"}),
    }
    if passing.shape[1] > 1:
        data["condition_yield_vs_spec"] = (
            sweep_dims + ["condition", "spec_db"],
            (passing[:, 1:] / n).reshape(shape + (s.n_conditions,) + grid_db.shape),
            {**what, "long_name": "yield under this condition alone if the loss spec were spec_db"})
    return data


def spec_coords(problem: Problem) -> dict:
    grid_db = spec_grid_db(problem)
    if grid_db is None:
        return {}
    return {"spec_db": ("spec_db", grid_db, {"units": "dB", "long_name": "loss spec (spec.max_loss_db) "
                                                                         "of yield_vs_spec"})}
