"""Distribution families of a variation's draw (docs/physics.md, "3. Variation model").

Every random draw starts as a standard normal ``z`` (so that a Gaussian copula, common
random numbers and other point sets all act on one source) and is mapped to the
configured distribution by its quantile transform of ``u = Φ(z)``
(:meth:`Distribution.transform`).

A :class:`Distribution` is a frozen, hashable, value-equal object: it sits in
:attr:`yieldmc.engine.problem.Static.active` and in
:attr:`yieldmc.engine.conditions.Condition.drift`, parts of a ``jit`` static argument, so
two equal distributions give the same compiled program and a different one (another
family, another empirical table) compiles anew. Its ``str`` is the configuration name.

``empirical`` (docs/physics.md, "Empirical distributions") maps ``u`` through the
piecewise-linear quantile function of a measured sample (:func:`empirical_quantile`); its
table is held by the :class:`Empirical` object, a constant of the program (not a traced
parameter, hence not sweepable). The table is read from the configuration by
:mod:`yieldmc.engine.empirical`.

:data:`DISTRIBUTIONS` maps each configuration name to its class (the one place that lists
the families; ``cls.params`` are the configuration parameters it reads).
"""

from __future__ import annotations

import hashlib
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr, ndtri


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


class Distribution:
    """One distribution family of a level's draw (abstract; see the subclasses).

    Class attributes:
      name: the configuration name (``process.<q>.<lv>.distribution``); also ``str(self)``.
      params: the configuration parameters its draw reads (traced, sweepable).
      scored: whether :meth:`log_density` exists (a score-function gradient of its
        parameters, :mod:`yieldmc.engine.estimators`).
      parametric: False for a family whose draws come from a table in the configuration
        rather than from its parameters (not available as a condition's drift).

    The traced methods take the parameters ``mean, sigma, low, high`` in the quantity's
    unit (every family receives all four; each reads its ``params``).
    """

    name: ClassVar[str] = ""
    params: ClassVar[tuple[str, ...]] = ()
    scored: ClassVar[bool] = False
    parametric: ClassVar[bool] = True

    __slots__ = ()

    # value identity (frozen, hashable: a part of a jit static argument)
    def _key(self) -> tuple:
        return ()

    def __eq__(self, other):
        return type(self) is type(other) and self._key() == other._key()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((self.name, self._key()))

    def __lt__(self, other):  # ordered, as jax sorts the dict keys (quantity, level, distribution) of a pytree
        if not isinstance(other, Distribution):
            return NotImplemented
        return (self.name, self._key()) < (other.name, other._key())

    def __setattr__(self, key, value):
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"{type(self).__name__}()"

    def __reduce__(self):
        return (type(self), ())

    def transform(self, z, *, mean, sigma, low, high):
        """Map standard-normal draws ``z`` (any shape) to the draw, same shape; the draw is
        added to the quantity's nominal value."""
        raise NotImplementedError

    def log_density(self, x, *, mean, sigma, low, high):
        """log p(x) of one level's draw, up to a θ-independent constant (``scored``
        families only)."""
        raise ValueError(f"no score for distribution {self.name!r}")

    def is_degenerate(self, *, mean, sigma, low, high) -> bool:
        """True when the draw is the constant 0 (host-side, on plain floats)."""
        return False

    def spread_off(self, *, low, high) -> dict:
        """Parameter name → value that turns the draw into its centre (no spread), given
        the current ``low`` and ``high``; {} where no parameter can."""
        return {}

    @classmethod
    def validate(cls, path: str, node) -> None:
        """Host-side checks of this family's parameters beyond the ones every variation
        has (sigma >= 0, a finite mean, low <= high); ``node`` maps the parameter names to
        numbers and ``path`` is the variation's config path. Raises a one-line ValueError
        naming the key."""

    def lowest(self, node) -> tuple[str, float] | None:
        """(key, value): the configuration key under the variation that bounds its draw from
        below and that bound (``low`` of a bounded draw, else the centre ``mean``); None
        where the draw is > 0. ``node``: the variation's mapping."""
        return "mean", node["mean"]


class Normal(Distribution):
    """``normal``: mean + sigma·z."""

    name = "normal"
    params = ("mean", "sigma")
    scored = True
    __slots__ = ()

    def transform(self, z, *, mean, sigma, low, high):
        return mean + sigma * z

    def log_density(self, x, *, mean, sigma, low, high):
        return -jnp.log(sigma) - 0.5 * ((x - mean) / sigma) ** 2

    def is_degenerate(self, *, mean, sigma, low, high) -> bool:
        return sigma == 0 and mean == 0

    def spread_off(self, *, low, high) -> dict:
        return {"sigma": 0.0}


class TruncNormal(Distribution):
    """``truncnormal``: normal(mean, sigma) restricted to [low, high], by the inverse-CDF
    method (the mean clipped to [low, high] where sigma is 0)."""

    name = "truncnormal"
    params = ("mean", "sigma", "low", "high")
    scored = True
    __slots__ = ()

    def transform(self, z, *, mean, sigma, low, high):
        safe = jnp.where(sigma > 0, sigma, 1.0)
        a = ndtr((low - mean) / safe)
        b = ndtr((high - mean) / safe)
        u = a + (b - a) * ndtr(z)
        tiny = jnp.finfo(jnp.result_type(u)).eps
        x = mean + safe * ndtri(jnp.clip(u, tiny, 1.0 - tiny))
        return jnp.where(sigma > 0, jnp.clip(x, low, high), jnp.clip(mean + 0.0 * z, low, high))

    def log_density(self, x, *, mean, sigma, low, high):
        norm = jax.scipy.special.ndtr((high - mean) / sigma) - jax.scipy.special.ndtr((low - mean) / sigma)
        return -jnp.log(sigma) - 0.5 * ((x - mean) / sigma) ** 2 - jnp.log(norm)

    def is_degenerate(self, *, mean, sigma, low, high) -> bool:
        return sigma == 0 and min(max(mean, low), high) == 0

    def spread_off(self, *, low, high) -> dict:
        return {"sigma": 0.0}

    def lowest(self, node) -> tuple[str, float] | None:
        return ("low", node["low"]) if math.isfinite(node["low"]) else ("mean", node["mean"])


class Uniform(Distribution):
    """``uniform``: low + (high − low)·Φ(z); both bounds finite."""

    name = "uniform"
    params = ("low", "high")
    __slots__ = ()

    def transform(self, z, *, mean, sigma, low, high):
        return low + (high - low) * ndtr(z)

    def is_degenerate(self, *, mean, sigma, low, high) -> bool:
        return low == 0 and high == 0

    def spread_off(self, *, low, high) -> dict:
        mid = 0.5 * (low + high)
        return {"low": mid, "high": mid}

    @classmethod
    def validate(cls, path: str, node) -> None:
        for name in ("low", "high"):
            if not math.isfinite(node[name]):
                raise ValueError(f"{path}.{name}: uniform needs a finite bound, got {node[name]}")

    def lowest(self, node) -> tuple[str, float] | None:
        return "low", node["low"]


class LogNormal(Distribution):
    """``lognormal``: exp(mean + sigma·z), mean and sigma of the underlying normal
    (numpy's convention); never 0."""

    name = "lognormal"
    params = ("mean", "sigma")
    scored = True
    __slots__ = ()

    def transform(self, z, *, mean, sigma, low, high):
        return jnp.exp(mean + sigma * z)

    def log_density(self, x, *, mean, sigma, low, high):
        lx = jnp.log(x)
        return -jnp.log(sigma) - 0.5 * ((lx - mean) / sigma) ** 2

    def spread_off(self, *, low, high) -> dict:
        return {"sigma": 0.0}

    def lowest(self, node) -> tuple[str, float] | None:
        return None


class ShiftedLogNormal(Distribution):
    """``shiftedlognormal``: a one-sided draw above ``low`` with the given ``mean`` and
    standard deviation ``sigma`` (of the draw itself, not of an underlying normal):
    ``low + exp(μ + s·z)`` with ``s² = ln(1 + sigma²/(mean − low)²)`` and
    ``μ = ln(mean − low) − s²/2`` (the three-parameter lognormal; Johnson, Kotz &
    Balakrishnan, *Continuous Univariate Distributions* 1, 2nd ed. (1994), ch. 14).

    For a thickness that cannot go below a floor — the bond line under a PWG resting on
    the chip, whose gap cannot close beyond contact: ``low`` is the floor relative to the
    nominal, the density goes to 0 there (no atom at the floor, unlike a normal clipped at
    it), and the skewness is ``3v + v³``, ``v = sigma/(mean − low)``. ``high`` is not read;
    ``mean > low`` is required (:meth:`validate`); ``sigma = 0`` draws ``mean``.
    """

    name = "shiftedlognormal"
    params = ("mean", "sigma", "low")
    scored = True
    __slots__ = ()

    @staticmethod
    def _log_params(mean, sigma, low):
        """(μ, s); s = r·sqrt(ln(1 + r²)/r²), r = sigma/(mean − low), written so that the
        gradient in sigma stays finite at sigma = 0 (ds/dsigma → 1/(mean − low))."""
        excess = mean - low
        r = sigma / excess
        r2 = r * r
        small = r2 < 1e-4
        safe = jnp.where(small, 1.0, r2)
        ratio = jnp.where(small, 1.0 - r2 * (0.5 - r2 / 3.0), jnp.log1p(safe) / safe)  # ln(1 + r²)/r²
        s = r * jnp.sqrt(ratio)
        return jnp.log(excess) - 0.5 * s * s, s

    def transform(self, z, *, mean, sigma, low, high):
        # mean <= low (refused by validate) only reaches here as the all-zero parameters of a
        # condition that lacks this drift (masked out): finite there, the draw is low.
        ok = mean > low
        mu, s = self._log_params(jnp.where(ok, mean, low + 1.0), sigma, low)
        return low + jnp.where(ok, jnp.exp(mu + s * z), 0.0)

    def log_density(self, x, *, mean, sigma, low, high):
        mu, s = self._log_params(mean, sigma, low)
        lx = jnp.log(x - low)
        return -jnp.log(s) - lx - 0.5 * ((lx - mu) / s) ** 2

    def is_degenerate(self, *, mean, sigma, low, high) -> bool:
        return sigma == 0 and mean == 0

    def spread_off(self, *, low, high) -> dict:
        return {"sigma": 0.0}

    @classmethod
    def validate(cls, path: str, node) -> None:
        if not math.isfinite(node["low"]):
            raise ValueError(f"{path}.low: shiftedlognormal needs a finite floor, got {node['low']}")
        if not node["mean"] > node["low"]:
            raise ValueError(f"{path}.mean: shiftedlognormal needs mean > low ({node['low']}), got {node['mean']}")

    def lowest(self, node) -> tuple[str, float] | None:
        return "low", node["low"]


class Empirical(Distribution):
    """``empirical``: :func:`empirical_quantile` of a measured table; mean, sigma, low and
    high are not read. Equal to another only when their tables are; the table is a constant
    of the compiled program.

    Attributes:
      values: the sorted values, a tuple of Python floats (the quantity's unit).
      digest: sha256 of the float64 values (hex), to name the table in logs and identities.
    """

    name = "empirical"
    params = ()
    parametric = False
    __slots__ = ("values", "digest")

    def __init__(self, values):
        table = np.sort(np.asarray(values, dtype=np.float64).ravel())
        if table.size < 2 or not np.all(np.isfinite(table)):
            raise ValueError("empirical: needs at least 2 finite values")
        object.__setattr__(self, "values", tuple(float(v) for v in table))
        object.__setattr__(self, "digest", hashlib.sha256(table.tobytes()).hexdigest())

    def _key(self) -> tuple:
        return (self.digest,)

    def __eq__(self, other):  # the digest first: a cheap mismatch; the values make it exact
        return type(self) is type(other) and self.digest == other.digest and self.values == other.values

    def __hash__(self):  # the digest, not the (up to a million) values: hashed at every jit call
        return hash((self.name, self.digest))

    def __reduce__(self):
        return (Empirical, (self.values,))

    def __repr__(self):
        return f"Empirical(n={len(self.values)}, sha256={self.digest[:12]})"

    def transform(self, z, *, mean, sigma, low, high):
        return empirical_quantile(z, self.values)

    def is_degenerate(self, *, mean, sigma, low, high) -> bool:  # a table of zeros draws 0
        return not any(self.values)

    def lowest(self, node) -> tuple[str, float] | None:
        return ("values" if node.get("values") is not None else "values_file"), self.values[0]


#: The families by configuration name (the order of the messages and of the schema's choices).
DISTRIBUTIONS: dict[str, type[Distribution]] = {
    cls.name: cls for cls in (Normal, TruncNormal, Uniform, LogNormal, Empirical, ShiftedLogNormal)
}
