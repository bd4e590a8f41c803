"""The nominal module: channel losses at chosen deviations, without sampling.

``nominal_losses(cfg, dx_um=[0, 1, 2])`` evaluates the loss model of
:mod:`yieldmc.engine.model` for the module built exactly to the package's nominal values,
with the given quantities moved (each a deviation from its nominal, broadcast along a
trailing axis), for each polarisation separately. It answers "what is the nominal loss,
the PDL, the +1 dB lateral tolerance, the loss at −40 °C" without a Monte-Carlo run, and
is what ``scripts/package_report.py`` and docs/physics.md use.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from yieldmc.engine.model import channel_loss_parts, nominal_values
from yieldmc.engine.quantities import QUANTITIES
from yieldmc.job import as_job


def nominal_losses(cfg, *, polarization: str | None = None, **deviations) -> dict:
    """Channel losses of the nominal module with ``deviations`` applied.

    Args:
      cfg: a configuration (as for :func:`yieldmc.run`); its process is ignored.
      polarization: ``"te"``, ``"tm"`` or None (the package's ``polarization`` setting:
        ``worst`` gives the worse of the two).
      **deviations: quantity name → scalar or 1-D array of deviations from the nominal
        (e.g. ``dx_um=np.linspace(-4, 4, 81)``, ``temperature_c=[-65, 100]``); arrays
        share one trailing axis.

    Returns:
      ``{"loss": (L, C, N), "pdl": (L, C, N), "crosstalk": (L, C, N) or None, "parts":
      {part: (L, C, N)}}`` (:func:`yieldmc.engine.model.channel_loss_parts`) as float64
      numpy arrays (N = 1 without array deviations).
    """
    unknown = set(deviations) - set(QUANTITIES)
    if unknown:
        raise ValueError(f"nominal_losses: unknown quantities {sorted(unknown)}; expected some of {QUANTITIES}")
    problem = as_job(cfg).problem
    static = problem.static
    if polarization is not None:
        if polarization not in ("te", "tm"):
            raise ValueError(f"polarization: expected te, tm or None, got {polarization!r}")
        static = dataclasses.replace(static, polarizations=(polarization,))
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    static = dataclasses.replace(static, dtype=jnp.dtype(dtype).name)
    params = {k: jnp.asarray(v[0], dtype) for k, v in problem.params.items()}
    values = {k: jnp.asarray(v, dtype) for k, v in nominal_values(params, static).items()}
    for name, dev in deviations.items():
        values[name] = values[name] + jnp.atleast_1d(jnp.asarray(dev, dtype))
    parts = channel_loss_parts(values, params, static)
    return jax.tree.map(lambda v: np.asarray(v, dtype=np.float64), parts)  # None (no crosstalk) stays None


def offset_tolerance_um(cfg, *, quantity: str = "dx_um", excess_db: float = 1.0,
                        polarization: str | None = None, span_um: float = 10.0, points: int = 2001) -> tuple:
    """The ± deviation of ``quantity`` at which the worst channel's loss has risen by
    ``excess_db`` over its nominal (first crossing on each side, linear interpolation on
    a grid of ``points`` over ±``span_um``).

    Returns:
      ``(low, high)``: the negative and positive deviation (NaN where none is reached).
    """
    grid = np.linspace(-span_um, span_um, points)
    loss = nominal_losses(cfg, polarization=polarization, **{quantity: grid})["loss"]
    worst = loss.reshape(-1, points).max(axis=0)
    base = worst[points // 2]
    above = worst - base - excess_db

    def crossing(indices):
        prev = points // 2
        for i in indices:
            if above[i] >= 0:
                t = -above[prev] / (above[i] - above[prev])
                return float(grid[prev] + t * (grid[i] - grid[prev]))
            prev = i
        return float("nan")

    return crossing(range(points // 2 - 1, -1, -1)), crossing(range(points // 2 + 1, points))
