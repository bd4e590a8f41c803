"""Variation model: quantities, levels, distributions (DESIGN §3). Pure JAX/numpy.

Every random draw starts as a standard normal ``z`` (so that a Gaussian copula, common
random numbers and, later, other point sets all act on one source) and is mapped to the
configured distribution by its quantile transform of ``u = Φ(z)``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import ndtr, ndtri

from yieldmc.engine.quantities import QUANTITIES  # noqa: F401 - the catalogue, in random-stream order

#: Levels: one draw per module, per layer, per waveguide (channel of a layer).
LEVELS = ("module", "layer", "channel")

#: Distributions and the parameters each one reads.
DISTRIBUTIONS = {
    "normal": ("mean", "sigma"),
    "truncnormal": ("mean", "sigma", "low", "high"),
    "uniform": ("low", "high"),
    "lognormal": ("mean", "sigma"),
}

#: Parameter keys present on every (quantity, level) in the configuration.
PARAMS = ("mean", "sigma", "low", "high")


def transform_normal(z, *, distribution, mean, sigma, low, high):
    """Map standard-normal draws ``z`` to one level's draw of a quantity.

    Args:
      z: standard-normal variates (any shape).
      distribution: ``normal`` (mean + sigma·z); ``truncnormal`` (normal(mean, sigma)
        restricted to [low, high] by the inverse-CDF method); ``uniform`` (low + (high −
        low)·Φ(z)); ``lognormal`` (exp(mean + sigma·z), mean and sigma of the underlying
        normal, numpy's convention). Static.
      mean, sigma, low, high: distribution parameters in the quantity's unit (traced).

    Returns:
      The draw, same shape as ``z``; it is added to the quantity's nominal value.
    """
    if distribution == "normal":
        return mean + sigma * z
    if distribution == "lognormal":
        return jnp.exp(mean + sigma * z)
    if distribution == "uniform":
        return low + (high - low) * ndtr(z)
    if distribution == "truncnormal":
        safe = jnp.where(sigma > 0, sigma, 1.0)
        a = ndtr((low - mean) / safe)
        b = ndtr((high - mean) / safe)
        u = a + (b - a) * ndtr(z)
        tiny = jnp.finfo(jnp.result_type(u)).eps
        x = mean + safe * ndtri(jnp.clip(u, tiny, 1.0 - tiny))
        return jnp.where(sigma > 0, jnp.clip(x, low, high), jnp.clip(mean + 0.0 * z, low, high))
    raise ValueError(f"distribution: unknown {distribution!r}; expected one of {tuple(DISTRIBUTIONS)}")


def is_degenerate(*, distribution, mean, sigma, low, high) -> bool:
    """True when a level's draw is the constant 0 (host-side, on plain floats)."""
    if distribution == "normal":
        return sigma == 0 and mean == 0
    if distribution == "uniform":
        return low == 0 and high == 0
    if distribution == "truncnormal":
        return sigma == 0 and min(max(mean, low), high) == 0
    return False  # lognormal draws are never 0
