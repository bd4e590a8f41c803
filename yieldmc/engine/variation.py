"""Variation model: quantities, levels, distributions (docs/physics.md, "3. Variation
model"). Pure JAX/numpy.

Every random draw starts as a standard normal ``z`` (so that a Gaussian copula, common
random numbers and, later, other point sets all act on one source) and is mapped to the
configured distribution by its quantile transform of ``u = Φ(z)``.

``empirical`` (docs/physics.md, "Empirical distributions") maps ``u`` through the piecewise-linear quantile function of a
measured sample (:func:`empirical_quantile`); its table travels as the distribution
itself, an :class:`EmpiricalDistribution` (a ``str`` equal to ``"empirical"`` that carries
the sorted values), so that it is part of the engine's static, hashable settings.
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
    "empirical": (),  # reads values / values_file (not traced): yieldmc.engine.empirical
}

#: Parameter keys present on every (quantity, level) in the configuration.
PARAMS = ("mean", "sigma", "low", "high")


def process_key(quantity: str, level: str, param: str | None = None) -> str:
    """The configuration path of a variation, ``process.<quantity>.<level>[.<param>]``."""
    return f"process.{quantity}.{level}" if param is None else f"process.{quantity}.{level}.{param}"


def variation_params(params, quantity: str, level: str) -> dict:
    """``{mean, sigma, low, high}`` of one variation from ``params`` (config path → value)."""
    return {p: params[process_key(quantity, level, p)] for p in PARAMS}


class EmpiricalDistribution(str):
    """The distribution name ``"empirical"`` carrying its table (the measured values, sorted).

    It equals the string ``"empirical"`` (so ``DISTRIBUTIONS[dist]``, ``dist ==
    "empirical"`` and ``dist in (...)`` work wherever a distribution name is expected) and
    hashes like it; two tables are equal only when their values are. It sits in
    :attr:`yieldmc.engine.problem.Static.active`, so a different table gives a different
    ``Static`` and so a different compiled program: the table is a constant of the program
    (not a traced parameter, hence not sweepable), and a stale program is never reused.

    Attributes:
      values: the sorted values, a tuple of Python floats (the quantity's unit).
      digest: sha256 of the float64 values (hex), to name the table in logs and identities.
    """

    values: tuple
    digest: str

    def __new__(cls, values):
        import hashlib

        import numpy as np

        table = np.sort(np.asarray(values, dtype=np.float64).ravel())
        if table.size < 2 or not np.all(np.isfinite(table)):
            raise ValueError("empirical: needs at least 2 finite values")
        obj = super().__new__(cls, "empirical")
        obj.values = tuple(float(v) for v in table)
        obj.digest = hashlib.sha256(table.tobytes()).hexdigest()
        return obj

    def __eq__(self, other):
        if isinstance(other, EmpiricalDistribution):
            return self.digest == other.digest and self.values == other.values
        return str.__eq__(self, other)

    def __ne__(self, other):
        return not self == other

    __hash__ = str.__hash__  # equal to "empirical" → hash of "empirical" (dict lookups by name)

    def __reduce__(self):  # pickle/copy rebuild from the values (str's default would lose them)
        return (EmpiricalDistribution, (self.values,))

    def __repr__(self):
        return f"EmpiricalDistribution(n={len(self.values)}, sha256={self.digest[:12]})"


def empirical_quantile(z, values):
    """The empirical quantile Q(Φ(z)) of a sorted table, for standard-normal ``z``.

    Q is the continuous piecewise-linear quantile function through the points
    (p_i, x_(i)), p_i = (i − 0.5)/n (Hazen plotting positions; numpy's
    ``quantile(..., method="hazen")``), flat beyond the ends: Q(u) = x_(1) for u <= 0.5/n
    and x_(n) for u >= 1 − 0.5/n. Its mean is exactly the sample mean; every value
    carries probability 1/n, spread half-way to its neighbours (the end values keep an
    atom of 1/(2n) each).

    Evaluated on the virtual index t = n·u − 0.5, with u taken from the nearer tail
    (v = Φ(−|z|), t = n·v − 0.5 below the median and n − 1 − (n·v − 0.5) above it), so
    the upper tail keeps the resolution of the lower one in float32. Differentiable in
    ``z`` (zero slope beyond the ends).

    Args:
      z: standard-normal variates (any shape, float32 or float64).
      values: the sorted table (a sequence of n >= 2 floats; a constant of the program).

    Returns:
      Q(Φ(z)), the shape and dtype of ``z``.
    """
    z = jnp.asarray(z)
    x = jnp.asarray(values, dtype=z.dtype)
    n = x.shape[0]
    s = n * ndtr(-jnp.abs(z)) - 0.5  # index from the nearer end
    t = jnp.clip(jnp.where(z < 0, s, (n - 1) - s), 0.0, n - 1)
    j = jnp.clip(jnp.floor(t).astype(jnp.int32), 0, n - 2)
    frac = t - j.astype(z.dtype)
    lo, hi = jnp.take(x, j), jnp.take(x, j + 1)
    return lo + frac * (hi - lo)


def transform_normal(z, *, distribution, mean, sigma, low, high):
    """Map standard-normal draws ``z`` to one level's draw of a quantity.

    Args:
      z: standard-normal variates (any shape).
      distribution: ``normal`` (mean + sigma·z); ``truncnormal`` (normal(mean, sigma)
        restricted to [low, high] by the inverse-CDF method); ``uniform`` (low + (high −
        low)·Φ(z)); ``lognormal`` (exp(mean + sigma·z), mean and sigma of the underlying
        normal, numpy's convention); ``empirical`` (an :class:`EmpiricalDistribution`:
        :func:`empirical_quantile` of its table; mean, sigma, low and high are not read).
        Static.
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
    if distribution == "empirical":
        if not isinstance(distribution, EmpiricalDistribution):
            raise ValueError("distribution: empirical needs its table (an EmpiricalDistribution, "
                             "built by yieldmc.engine.empirical from values / values_file)")
        return empirical_quantile(z, distribution.values)
    raise ValueError(f"distribution: unknown {distribution!r}; expected one of {tuple(DISTRIBUTIONS)}")


def is_degenerate(*, distribution, mean, sigma, low, high) -> bool:
    """True when a level's draw is the constant 0 (host-side, on plain floats)."""
    if distribution == "normal":
        return sigma == 0 and mean == 0
    if distribution == "uniform":
        return low == 0 and high == 0
    if distribution == "truncnormal":
        return sigma == 0 and min(max(mean, low), high) == 0
    if distribution == "empirical":  # a table of zeros draws 0 (a bare name: not known yet)
        return isinstance(distribution, EmpiricalDistribution) and not any(distribution.values)
    return False  # lognormal draws are never 0
