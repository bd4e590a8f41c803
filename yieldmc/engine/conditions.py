"""The qualification and operating envelope: conditions (docs/physics.md, "Conditions").

A *condition* is a named environment the same built module meets — e.g. −40 °C, 125 °C,
85 °C / 85 %RH, a bent flex — plus, optionally, variations of its own (drift after a
stress, e.g. adhesive creep after temperature cycling). A module passes the envelope only
if it passes under every condition. In chip design this is multi-corner sign-off.

A condition may set the environment quantities of the catalogue (:data:`ENVIRONMENT`:
``temperature_c``, ``humidity_rh``, ``bend_radius_mm`` (null or ≤ 0: straight),
``wavelength_um``), ``polarization`` and ``process`` (variations added under this condition
only); :mod:`yieldmc.configuration.conditions` parses the section. A quantity it does not
set keeps the package's own value. A set quantity replaces the package nominal; the
process variations of that quantity (e.g. a module-level temperature spread) still add.

Each setting becomes a traced parameter ``conditions.<name>.<quantity>`` (and
``conditions.<name>.process.<q>.<level>.<param>``), so conditions compose with sweeps and a
sweep over a condition's value does not recompile. Pure: no Hydra, no xarray.
"""

from __future__ import annotations

import dataclasses

from yieldmc.engine import quantities
from yieldmc.engine.distributions import Distribution
from yieldmc.engine.variation import PARAMS

#: Environment quantities a condition may set (the catalogue's ``environment`` entries).
ENVIRONMENT: tuple[str, ...] = tuple(q.name for q in quantities.CATALOGUE if q.kind == "environment")

@dataclasses.dataclass(frozen=True)
class Condition:
    """One condition as the engine sees it (hashable; part of :class:`yieldmc.engine.problem.Static`).

    Attributes:
      name: the label (coordinate value of the ``condition`` dimension).
      settings: the environment quantities it sets; their values are the traced params
        ``conditions.<name>.<quantity>``.
      polarizations: the polarisations evaluated under it (the channel loss is the worst).
      drift: (quantity, level, :class:`yieldmc.engine.distributions.Distribution`) of the
        variations added under it only; their parameters are
        ``conditions.<name>.process.<quantity>.<level>.<param>`` and their draws the rows after the process variations (:func:`yieldmc.engine.blocks.split_draws`).
    """

    name: str
    settings: tuple[str, ...]
    polarizations: tuple[str, ...]
    drift: tuple[tuple[str, str, Distribution], ...] = ()


def setting_path(name: str, quantity: str) -> str:
    return f"conditions.{name}.{quantity}"


def drift_path(name: str, quantity: str, level: str) -> str:
    return f"conditions.{name}.process.{quantity}.{level}"


def condition_variables(static, sweep_dims: list, reshape, fractions) -> dict:
    """The per-condition result variables from per-condition fractions.

    Args:
      static: :class:`yieldmc.engine.problem.Static` with conditions.
      sweep_dims: the sweep dimensions' names.
      reshape: maps a (P, K) array onto ``sweep_dims + ["condition"]``.
      fractions: (P, K, 3) — passing under the condition, failing under it and no other,
        passing under every other condition.

    Returns:
      name → (dims, values, attrs); empty without conditions.
    """
    if not static.conditions:
        return {}
    dims = list(sweep_dims) + ["condition"]
    return {
        "condition_yield": (dims, reshape(fractions[..., 0]), {
            "units": "1", "long_name": "fraction of modules that meet the spec under this condition"}),
        "condition_fail_only": (dims, reshape(fractions[..., 1]), {
            "units": "1", "long_name": "fraction of modules that fail under this condition and under no other"}),
        "yield_without_condition": (dims, reshape(fractions[..., 2]), {
            "units": "1", "long_name": "envelope yield without this condition (pass under every other one)"}),
    }


def condition_coords(static) -> dict:
    """The ``condition`` coordinate (names), empty without conditions."""
    if not static.conditions:
        return {}
    import numpy as np

    names = np.array([c.name for c in static.conditions], dtype=object)  # variable-length strings in zarr
    return {"condition": ("condition", names, {"long_name": "condition of the qualification/operating envelope"})}


def stacked(conditions: tuple, z: dict, params: dict, nominal: dict):
    """The conditions as one pytree with a leading condition axis, for ``jax.lax.map``:
    every condition then runs the same compiled body (the cost is K× one condition, and
    the program does not grow with K).

    ``set``: per environment quantity that any condition sets, its value under each
    condition (the package nominal where a condition does not set it); ``drift``: per
    drift variation of any condition, (draws, parameters, mask) under each condition
    (zero draws and mask 0 where a condition lacks it).
    """
    import jax.numpy as jnp

    names = [q for q in ENVIRONMENT if any(q in c.settings for c in conditions)]
    out = {"set": {q: jnp.stack([jnp.asarray(params[setting_path(c.name, q)] if q in c.settings else nominal[q])
                                 for c in conditions]) for q in names}, "drift": {}}
    keys = []
    for c in conditions:
        keys += [d for d in c.drift if d not in keys]
    for q, lv, dist in keys:
        like = next(z[(c.name, q, lv)] for c in conditions if (q, lv, dist) in c.drift)
        entry = {"z": [], "mask": [], **{p: [] for p in PARAMS}}
        for c in conditions:
            has = (q, lv, dist) in c.drift
            entry["z"].append(z[(c.name, q, lv)] if has else jnp.zeros_like(like))
            entry["mask"].append(jnp.asarray(1.0 if has else 0.0, like.dtype))
            for p in PARAMS:
                entry[p].append(jnp.asarray(params[f"{drift_path(c.name, q, lv)}.{p}"] if has else 0.0, like.dtype))
        out["drift"][(q, lv, dist)] = {k: jnp.stack(v) for k, v in entry.items()}
    return out


def apply_stacked(values: dict, x: dict, nominal: dict) -> dict:
    """The quantity values of one module under one condition, ``x`` one slice of
    :func:`stacked`: a setting replaces the package nominal (``values[q] − nominal[q] +
    setting``, keeping the process draws of ``q``); a drift variation adds its own draw."""
    out = dict(values)
    for q, value in x["set"].items():
        out[q] = out[q] + (value - nominal[q])
    for (q, lv, dist), d in x["drift"].items():
        out[q] = out[q] + d["mask"] * dist.transform(d["z"], mean=d["mean"], sigma=d["sigma"],
                                                     low=d["low"], high=d["high"])
    return out
