"""The qualification and operating envelope: conditions (docs/physics.md, "Conditions").

A *condition* is a named environment the same built module meets — e.g. −40 °C, 125 °C,
85 °C / 85 %RH, a bent flex — plus, optionally, variations of its own (drift after a
stress, e.g. adhesive creep after temperature cycling). A module passes the envelope only
if it passes under every condition. In chip design this is multi-corner sign-off.

Configuration (top-level ``conditions``, config group ``conditions``)::

    conditions:
      cold: {temperature_c: -40}
      damp_heat: {temperature_c: 85, humidity_rh: 85}
      after_cycling:
        temperature_c: 25
        process: {dx_um: {channel: {sigma: 0.1}}}

A condition may set the environment quantities of the catalogue
(:data:`ENVIRONMENT`: ``temperature_c``, ``humidity_rh``, ``bend_radius_mm`` (null or ≤ 0:
straight), ``wavelength_um``), ``polarization`` (``te`` | ``tm`` | ``worst``) and ``process``
(variations added under this condition only, in the ``process.<quantity>.<level>``
format; unset parameters default to a normal of mean 0, sigma 0). A quantity it does not
set keeps the package's own value. A set quantity replaces the package nominal; the
process variations of that quantity (e.g. a module-level temperature spread) still add.

Each setting becomes a traced parameter ``conditions.<name>.<quantity>`` (and
``conditions.<name>.process.<q>.<level>.<param>``), so conditions compose with sweeps and a
sweep over a condition's value does not recompile. Pure: no Hydra, no xarray.
"""

from __future__ import annotations

import dataclasses
import math

from yieldmc.engine import quantities
from yieldmc.engine.distributions import DISTRIBUTIONS, Distribution
from yieldmc.engine.variation import LEVELS, PARAMS, process_key

#: Environment quantities a condition may set (the catalogue's ``environment`` entries).
ENVIRONMENT: tuple[str, ...] = tuple(q.name for q in quantities.CATALOGUE if q.kind == "environment")
#: Other keys of a condition.
OTHER_KEYS = ("polarization", "process")
POLARIZATION_CHOICES = ("te", "tm", "worst")
#: Defaults of a condition's process variation (a normal of mean 0, sigma 0: no draw).
DRIFT_DEFAULTS = {"distribution": "normal", "mean": 0.0, "sigma": 0.0, "low": -math.inf, "high": math.inf}
#: Nullable environment settings and what their null stands for (a straight flex).
NULL_SETTINGS = {"bend_radius_mm": 0.0}


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


def parse(config: dict) -> dict:
    """The ``conditions`` mapping of a resolved configuration, normalised and checked for
    its structure (values are checked per sweep point by the problem builder).

    Returns:
      name → ``{"settings": {quantity: value}, "polarization": str | None,
      "process": {(quantity, level): {distribution, mean, sigma, low, high}}}``; empty when
      ``conditions`` is null (one condition: the package's own environment).

    Raises:
      ValueError: one line naming the key — an empty mapping, a condition that is not a
        mapping, an unknown key, a process (not environment) quantity set directly, a bad
        polarization or process entry.
    """
    node = config.get("conditions")
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ValueError(f"conditions: expected a mapping of condition names to settings (or null), got {node!r}")
    if not node:
        raise ValueError("conditions: empty mapping; give at least one condition, or conditions=none")
    out = {}
    for name, cond in node.items():
        where = f"conditions.{name}"
        if not isinstance(name, str) or not name or "." in name or name != name.strip():
            raise ValueError(f"{where}: a condition name must be a non-empty string without '.' or spaces at its ends")
        if cond is None:
            cond = {}
        if not isinstance(cond, dict):
            raise ValueError(f"{where}: expected a mapping of environment settings, got {cond!r}")
        settings, pol, drift = {}, None, {}
        for key, value in cond.items():
            path = f"{where}.{key}"
            if key in ENVIRONMENT:
                if value is None and key in NULL_SETTINGS:
                    value = NULL_SETTINGS[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                    raise ValueError(f"{path}: expected a number, got {value!r}")
                settings[key] = float(value)
            elif key == "polarization":
                if value not in POLARIZATION_CHOICES:
                    raise ValueError(f"{path}: expected one of {POLARIZATION_CHOICES}, got {value!r}")
                pol = value
            elif key == "process":
                drift = _parse_drift(path, value)
            elif key in quantities.BY_NAME:
                raise ValueError(
                    f"{path}: {key} is a process quantity, not an environment setting; a condition sets "
                    f"{', '.join(ENVIRONMENT)} or polarization, and adds variations under {where}.process.{key}")
            else:
                raise ValueError(f"{path}: unknown condition key; expected one of {ENVIRONMENT + OTHER_KEYS}")
        out[name] = {"settings": settings, "polarization": pol, "process": drift}
    return out


def _parse_drift(path: str, node) -> dict:
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ValueError(f"{path}: expected a mapping quantity -> level -> parameters, got {node!r}")
    out = {}
    for q, levels in node.items():
        if q not in quantities.BY_NAME:
            raise ValueError(f"{path}.{q}: unknown quantity; expected one of {quantities.QUANTITIES}")
        if not isinstance(levels, dict) or not levels:
            raise ValueError(f"{path}.{q}: expected a mapping level -> parameters, got {levels!r}")
        for lv, params in levels.items():
            if lv not in LEVELS:
                raise ValueError(f"{path}.{q}.{lv}: unknown level; expected one of {LEVELS}")
            if not isinstance(params, dict):
                raise ValueError(f"{path}.{q}.{lv}: expected a mapping of distribution parameters, got {params!r}")
            entry = dict(DRIFT_DEFAULTS)
            for k, v in params.items():
                if k not in DRIFT_DEFAULTS:
                    raise ValueError(f"{path}.{q}.{lv}.{k}: unknown key; expected one of {tuple(DRIFT_DEFAULTS)}")
                entry[k] = v
            if entry["distribution"] not in DISTRIBUTIONS:
                raise ValueError(f"{path}.{q}.{lv}.distribution: unknown distribution {entry['distribution']!r}; "
                                 f"expected one of {tuple(DISTRIBUTIONS)}")
            family = DISTRIBUTIONS[entry["distribution"]]
            if not family.parametric:
                raise ValueError(f"{path}.{q}.{lv}.distribution: {family.name} is not available in a condition's "
                                 f"process additions (a drift is parametric); a measured table belongs in "
                                 f"{process_key(q, lv)}")
            for k in PARAMS:
                v = entry[k]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
                    raise ValueError(f"{path}.{q}.{lv}.{k}: expected a number, got {v!r}")
                entry[k] = float(v)
            if not (entry["sigma"] >= 0 and math.isfinite(entry["sigma"])):
                raise ValueError(f"{path}.{q}.{lv}.sigma: must be >= 0, got {entry['sigma']!r}")
            if not math.isfinite(entry["mean"]):
                raise ValueError(f"{path}.{q}.{lv}.mean: must be finite, got {entry['mean']!r}")
            if entry["low"] > entry["high"]:
                raise ValueError(f"{path}.{q}.{lv}.low: must not exceed high ({entry['high']!r}), got {entry['low']!r}")
            family.validate(f"{path}.{q}.{lv}", entry)
            out[(q, lv)] = entry
    return out


def float_paths(parsed: dict) -> list[str]:
    """The traced parameters of the conditions (also the sweepable keys)."""
    paths = []
    for name, c in parsed.items():
        paths += [setting_path(name, q) for q in c["settings"]]
        for q, lv in c["process"]:
            paths += [f"{drift_path(name, q, lv)}.{p}" for p in PARAMS]
    return paths


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
