"""The ``uncertain`` section: model (epistemic) uncertainty as outer realisations.

``uncertain`` maps config keys (any traced float parameter: the sweepable keys) to a
distribution in the format of a variation::

    uncertain:
      package.coupler.tip_width_nm: {distribution: uniform, low: 60, high: 100}
      package.pwg.n_clad: {distribution: normal, mean: 1.55, sigma: 0.002}

Unlike a variation, the distribution gives the key's *value* (not a draw added to a
nominal). ``uncertainty.realizations`` outer points θ_1 … θ_R are drawn once, on the host,
from the run's seed (``uncertainty.sampling``: a Latin hypercube, the default; a scrambled
Sobol' point set; or independent normals) and mapped through each family's quantile transform
(:meth:`yieldmc.engine.distributions.Distribution.transform` of the standard normals
Φ⁻¹(u)). Each realisation becomes a leading ``realization`` dimension of the sweep grid:
its values are traced parameters like a sweep point's, so every realisation runs the same
compiled program on the same inner (process) draws.

Why a Latin hypercube by default: its columns are stratified like a Sobol' set's (one point
per 1/R of each input's probability), which keeps the band's quantiles accurate, but they
are paired at random. The first-order importance is estimated from the same realisations
(:func:`yieldmc.engine.uncertainty.first_order`, sorted by one input and binned), which
needs the other inputs to vary independently within a bin. A Sobol' set of few points
pairs some dimensions rigidly: in the first 64 points, dimensions 1 and 16 fall into the
same eighths, so an input in dimension 16 would be credited with the whole share of the
one in dimension 1 (tests/test_uncertainty.py shows it); the result warns where two inputs
are so aliased.
"""

from __future__ import annotations

import numpy as np

from yieldmc.configuration import schema
from yieldmc.engine import empirical as _empirical
from yieldmc.engine.distributions import DISTRIBUTIONS
from yieldmc.engine.variation import PARAMS

#: The keys of one ``uncertain`` entry; one left out takes the default of the same key of a
#: variation (``process.<q>.<level>.<key>``, :mod:`yieldmc.configuration.schema`).
ENTRY_KEYS = ("distribution", *PARAMS, "values", "values_file")
#: The variation whose schema rows declare an entry's keys (every variation's are the same).
_ROWS = "process.dx_um.module"
#: Salt of the outer random stream (kept apart from the inner draws of the same seed).
_STREAM = 0x756E6365


def entries(config: dict, paths, sweep_keys) -> tuple[tuple[str, ...], list]:
    """The checked ``uncertain`` entries of a configuration: (keys, distributions with their
    parameters), in the order written. Empty without ``uncertain``.

    Args:
      config: the checked configuration (defaults filled in).
      paths: its traced float parameters (the keys an entry may name).
      sweep_keys: the swept keys (a key cannot be both).

    Raises:
      ValueError: one line naming the key: not a mapping, an unknown or non-float key, a key
        also swept, an unknown entry key or distribution, a bad number, low > high, a
        family's own rule (uniform: finite bounds), an empirical table missing or bad.
    """
    node = config.get("uncertain")
    if node is None:
        return (), []
    if not isinstance(node, dict) or not node:
        raise ValueError(f"uncertain: expected a mapping of config keys to distributions, got {node!r}")
    keys, dists = [], []
    dtype = config["engine"]["dtype"]
    for key, entry in node.items():
        where = f"uncertain.{key}"
        if key not in paths:
            if schema.value_at(config, key) is None:
                raise ValueError(f"{where}: unknown config key")
            raise ValueError(f"{where}: not a traced float parameter (only the sweepable keys can be uncertain)")
        if key in sweep_keys:
            raise ValueError(f"{where}: also swept; a key is either swept or uncertain")
        unread = _empirical.unread_parameter(config, key)
        if unread:
            raise ValueError(f"{where}: {unread}")
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a distribution such as {{distribution: uniform, low: 60, "
                             f"high: 100}}, got {entry!r}")
        for name in entry:
            if name not in ENTRY_KEYS:
                raise ValueError(f"{where}.{name}: unknown key; expected one of {list(ENTRY_KEYS)}")
        entry = {**{k: schema.lookup(config, f"{_ROWS}.{k}").default for k in ENTRY_KEYS}, **entry}
        if entry["distribution"] not in DISTRIBUTIONS:
            raise ValueError(f"{where}.distribution: unknown distribution {entry['distribution']!r}; "
                             f"expected one of {list(DISTRIBUTIONS)}")
        for p in PARAMS:
            entry[p] = schema.check_value(f"{where}.{p}", entry[p], schema.lookup(config, f"{_ROWS}.{p}"), dtype)
        if entry["low"] > entry["high"]:
            raise ValueError(f"{where}.low: must not exceed high ({entry['high']!r}), got {entry['low']!r}")
        dist = _empirical.distribution_of(entry, where, dtype=dtype)
        dist.validate(where, {p: entry[p] for p in PARAMS})
        if dist.name in ("normal", "lognormal", "truncnormal") and entry["sigma"] == 0:
            raise ValueError(f"{where}.sigma: an uncertain value needs a spread (sigma > 0), got 0")
        keys.append(key)
        dists.append((dist, {p: entry[p] for p in PARAMS}))
    return tuple(keys), dists


def sobol_normals(n: int, dim: int, *, seed: int) -> np.ndarray:
    """Standard normals Φ⁻¹(u) of the first ``n`` points of a scrambled Sobol' sequence
    (random linear matrix scrambling and a digital shift, :func:`yieldmc.samplers.qmc.scrambled_tables`),
    shape (n, dim), float64; u is never 0 or 1."""
    from scipy.special import ndtri

    from yieldmc.samplers.qmc import BITS, scrambled_tables

    tables, shifts = scrambled_tables(dim, seed=seed, randomizations=1)
    table, shift = tables[0].astype(np.uint64), shifts[0].astype(np.uint64)  # (dim, 32), (dim,)
    index = np.arange(n, dtype=np.uint64)
    x = np.zeros((n, dim), dtype=np.uint64)
    for k in range(max(1, int(n - 1).bit_length())):
        bit = ((index >> np.uint64(k)) & np.uint64(1)).astype(bool)
        x[bit] ^= table[:, k]
    x ^= shift
    return ndtri((x.astype(np.float64) + 0.5) / 2.0**BITS)


def latin_hypercube_normals(n: int, dim: int, *, rng: np.random.Generator) -> np.ndarray:
    """Standard normals Φ⁻¹(u) of a random Latin hypercube (McKay, Beckman, Conover,
    Technometrics 21:239 (1979)): in each column one point in each of the n intervals
    [j/n, (j+1)/n), uniform within it, the columns paired by independent random
    permutations. Shape (n, dim), float64."""
    from scipy.special import ndtri

    cells = np.stack([rng.permutation(n) for _ in range(dim)], axis=1)
    return ndtri((cells + rng.uniform(size=(n, dim))) / n)


def realizations(dists: list, *, n: int, seed: int, sampling: str) -> np.ndarray:
    """The outer draws: (n, K) values of the K uncertain keys, float64.

    Args:
      dists: (distribution, parameters) per key, from :func:`entries`.
      n: ``uncertainty.realizations``.
      seed: the run's seed (the outer stream is salted apart from the inner draws).
      sampling: ``lhs`` (a Latin hypercube), ``sobol`` (scrambled Sobol' points) or
        ``random`` (independent normals).
    """
    import jax

    dim = len(dists)
    rng = np.random.default_rng([seed, _STREAM])
    if sampling == "sobol":
        z = sobol_normals(n, dim, seed=(seed ^ _STREAM) & 0xFFFFFFFF)
    elif sampling == "lhs":
        z = latin_hypercube_normals(n, dim, rng=rng)
    else:
        z = rng.standard_normal((n, dim))
    with jax.enable_x64(True):
        columns = [np.asarray(dist.transform(z[:, k], **params), dtype=np.float64)
                   for k, (dist, params) in enumerate(dists)]
    return np.stack(columns, axis=1)
