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

Two kinds (``kind``). An *operating* condition (the default) is read during it, against
an absolute limit. A *stress* condition is read before and after it, both at its readout
environment (``readout``: settings like an operating condition's; by default the package's
own); its ``process`` entries are the lasting changes it leaves (drift). The loss after
is the readout environment with the drift, the initial loss the same environment without
it (:func:`readouts`: one initial readout per distinct readout environment); a channel
fails when ``|after − initial|`` exceeds the condition's change limit, or (unless the
condition removes it) when the loss after exceeds its absolute limit. Per-condition limits
(``conditions.<name>.spec.*``) replace the global ``spec.*`` for that condition
(:func:`limit_path`); :func:`condition_figures` folds every limit into one figure per
channel compared with ``spec.max_loss_db``, so that every estimator (counts, gradients,
importance sampling) judges a module the same way.
"""

from __future__ import annotations

import dataclasses
import functools

from yieldmc.engine import quantities
from yieldmc.engine.model import pass_figure_db
from yieldmc.engine.distributions import Distribution
from yieldmc.engine.variation import PARAMS

#: Environment quantities a condition may set (the catalogue's ``environment`` entries).
ENVIRONMENT: tuple[str, ...] = tuple(q.name for q in quantities.CATALOGUE if q.kind == "environment")
#: The limits a condition may set for itself (``conditions.<name>.spec.<limit>``).
LIMITS = ("max_loss_db", "max_loss_change_db", "max_failed_channels")

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
    #: operating | stress | readout (the initial readout of stress conditions, :func:`readouts`)
    kind: str = "operating"
    #: the limits it sets itself (:data:`LIMITS`; their values ``conditions.<name>.spec.<limit>``)
    limits: tuple[str, ...] = ()
    #: whether an absolute limit applies (False: ``spec.max_loss_db: null`` under a stress)
    absolute: bool = True
    #: whether a change limit applies (a stress with its own or the global max_loss_change_db)
    change: bool = False
    #: a stress condition's initial readout: its index in :func:`readouts` (−1 otherwise)
    readout: int = -1

    def setting(self, quantity: str) -> str:
        """The traced parameter of its value of ``quantity`` (one of :attr:`settings`)."""
        if self.kind == "operating":
            return setting_path(self.name, quantity)
        return readout_path(self.name, quantity)

    @property
    def plain(self) -> bool:
        """An operating condition under the global limits (its figure is the channel's own)."""
        return self.kind == "operating" and not self.limits


def setting_path(name: str, quantity: str) -> str:
    return f"conditions.{name}.{quantity}"


def readout_path(name: str, quantity: str) -> str:
    return f"conditions.{name}.readout.{quantity}"


def limit_path(condition: Condition, limit: str) -> str:
    """The traced parameter of a condition's limit: its own, else the global ``spec.<limit>``."""
    return f"conditions.{condition.name}.spec.{limit}" if limit in condition.limits else f"spec.{limit}"


def stress_indices(conditions: tuple) -> tuple[int, ...]:
    """The positions of the stress conditions among ``conditions``."""
    return tuple(k for k, c in enumerate(conditions) if c.kind == "stress")


def readouts(conditions: tuple) -> tuple[Condition, ...]:
    """The initial readouts of the stress conditions, one per :attr:`Condition.readout`
    index: the first stress condition of that index, without its drift (its settings and
    polarisations are those of every condition sharing it)."""
    out = {}
    for c in conditions:
        if c.kind == "stress" and c.readout not in out:
            out[c.readout] = dataclasses.replace(c, kind="readout", drift=(), limits=(), change=False)
    return tuple(out[i] for i in sorted(out))


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
    out = {"set": {q: jnp.stack([jnp.asarray(params[c.setting(q)] if q in c.settings else nominal[q])
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


def condition_figures(parts: dict, params: dict, conditions: tuple):
    """The figure of every channel under each condition, (K, L, C, B): the channel fails
    under condition k iff its figure exceeds ``spec.max_loss_db``.

    Under the global absolute limit the figure is :func:`yieldmc.engine.model.pass_figure_db`
    (the loss itself: a plain operating condition is judged exactly as without conditions).
    A condition's own absolute limit S_k, or none (``max_loss_db: null`` under a stress),
    and a stress's change limit enter as ``spec.max_loss_db + e``, e an excess over a limit:
    the (scoped) loss over S_k, the crosstalk over ``spec.max_crosstalk_db`` (when set),
    ``|after − initial|`` over the change limit; the figure is the largest of them.

    Args:
      parts: :func:`yieldmc.engine.blocks.condition_parts` (``"change"``: (S, L, C, B),
        one row per stress condition in order).
      params: the sweep point's parameters.
      conditions: the problem's conditions (() without conditions).
    """
    figure = pass_figure_db(parts, params)
    if all(c.plain for c in conditions):
        return figure
    import jax.numpy as jnp

    scoped = parts.get("scoped", parts["loss"])
    row = {k: i for i, k in enumerate(stress_indices(conditions))}
    out = []
    for k, c in enumerate(conditions):
        if c.plain:
            out.append(figure[k])
            continue
        spec, terms = params["spec.max_loss_db"], []
        if c.absolute and "max_loss_db" not in c.limits:
            terms.append(figure[k])
        else:
            excess = [scoped[k] - params[limit_path(c, "max_loss_db")]] if c.absolute else []
            if parts["crosstalk"] is not None:
                excess.append(parts["crosstalk"][k] - params["spec.max_crosstalk_db"])
            if excess:
                terms.append(spec + functools.reduce(jnp.maximum, excess))
        if c.change:
            terms.append(spec + (jnp.abs(parts["change"][row[k]]) - params[limit_path(c, "max_loss_change_db")]))
        out.append(functools.reduce(jnp.maximum, terms))
    return jnp.stack(out)


def failed_allowance(params: dict, conditions: tuple):
    """The failed-channel allowance: ``spec.max_failed_channels``, or — where a condition
    sets its own — one per condition, (K,)."""
    if not any("max_failed_channels" in c.limits for c in conditions):
        return params["spec.max_failed_channels"]
    import jax.numpy as jnp

    return jnp.stack([jnp.asarray(params[limit_path(c, "max_failed_channels")]) for c in conditions])
