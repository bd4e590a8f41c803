"""The result Dataset (README.md, "Results"), built from a sampler's estimate (edge: xarray).

:func:`dataset` turns a :class:`yieldmc.samplers.Estimate` into the Dataset: the count
variables from its integer statistics (as :data:`yieldmc.engine.statistics.STATISTICS`
declares them, with the sampler's interval), then the variables the sampler gives itself; the provenance names the sampler and its interval method.
Nothing here depends on which sampler it is.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
import yaml

from yieldmc.engine import statistics
from yieldmc.engine.conditions import condition_coords
from yieldmc.engine.model import PARTS
from yieldmc.engine.problem import Problem
from yieldmc.engine.statistics import Stats
from yieldmc.io import uncertainty
from yieldmc.io.units import key_attrs, key_units  # noqa: F401 - key_units is read from here too
from yieldmc.samplers import Estimate
from yieldmc.provenance import provenance


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
    coords.update(uncertainty.coords(problem, config))
    if "loss_part_db_mean" in data:
        coords["part"] = ("part", np.array(PARTS, dtype=object), {"long_name": "part of the channel loss"})
    if "yield_vs_spec" in data:
        coords.update(spec_coords(problem))
    attrs = provenance(problem, config_yaml)
    attrs.update(estimate.attrs)
    if problem.uncertain:
        extra, warnings = uncertainty.variables(problem, data)
        data.update(extra)
        if warnings:
            attrs["warnings"] = " | ".join(filter(None, [attrs.get("warnings", ""), *warnings]))
    return xr.Dataset(data, coords=coords, attrs=attrs)


def count_variables(problem: Problem, stats: Stats) -> dict:
    """The result variables of the summed counts, one or more per statistic
    (:data:`yieldmc.engine.statistics.STATISTICS`), then those of the sampler's interval
    (:meth:`yieldmc.samplers.Sampler.interval`): name → (dims, values, attrs), the sweep
    dimensions first."""
    sweep_dims, shape = list(problem.sweep_keys), tuple(problem.sweep_shape)
    interval = problem.static.sampler.interval(problem, stats)
    data = {}
    for row in statistics.STATISTICS:
        for name, (dims, values, attrs) in (row.variables(problem, stats, interval) if row.variables else {}).items():
            values = np.asarray(values)
            data[name] = (sweep_dims + list(dims), values.reshape(shape + values.shape[1:]), attrs)
    return {**data, **interval.variables}


def spec_coords(problem: Problem) -> dict:
    grid_db = statistics.spec_grid_db(problem)
    if grid_db is None:
        return {}
    return {"spec_db": ("spec_db", grid_db, {"units": "dB", "long_name": "loss spec (spec.max_loss_db) "
                                                                         "of yield_vs_spec"})}
