"""Estimators over the outer realisations of uncertain inputs (numpy; no xarray).

A run with ``uncertain`` inputs gives one yield Y(θ_r) per realisation θ_r of the uncertain
values (r = 1 … R). From that sample:

* the band — quantiles of Y over θ (:func:`band`) with a distribution-free interval of each
  quantile from the order statistics (:func:`band_interval`);
* the first-order variance share of each uncertain input, S_k = Var(E[Y | θ_k]) / Var(Y)
  (:func:`first_order`), estimated from the same sample (a *given-data* estimator: no
  extra design, so the realisations serve the band and the indices alike).

The first-order estimator is the correlation ratio on quantile bins (Plischke, Borgonovo,
Smith, "Global sensitivity measures from given data", Eur. J. Oper. Res. 226:536 (2013);
SALib's ``sobol_first`` of its delta method): the realisations are sorted by θ_k and split
into M = 2^⌊log2(R)/2⌋ bins of (nearly) equal count, and

    S_k = Σ_b (n_b/R)(ȳ_b − ȳ)² / s²,           s² = the variance of the R yields.

Each bin mean carries the sampling noise of its n_b points, whose expected contribution
(M − 1)/R · W (W the pooled within-bin variance) is subtracted. That correction is exact
for independent realisations (``uncertainty.sampling=random``) and close for a Latin
hypercube (the default); for the scrambled Sobol' points it over-corrects where a bin's
points are a net in the other inputs and its mean is more accurate: the estimate is then
low by up to (M − 1)/R · W/s². Without it, the noise of the bin means would credit every
input with a spurious share when the inputs are many and the realisations few.

The standard error is the bootstrap over the realisations (resampled with replacement,
:data:`BOOTSTRAP` times, a fixed stream: the result is reproducible). It is the error of
independent realisations; for stratified points (Latin hypercube, Sobol') it is
conservative where their bin means are more accurate than independent ones. tests/test_uncertainty.py checks the estimator
against SALib's pick-freeze indices on a closed form.
"""

from __future__ import annotations

import numpy as np

#: The band's quantiles (the ``band_quantile`` coordinate).
BAND_QUANTILES = (0.05, 0.5, 0.95)


def band(y, quantiles=BAND_QUANTILES) -> np.ndarray:
    """Quantiles of the realisations' yields ``y`` (R, …) over axis 0 → (Q, …); numpy's
    default (linear, type 7) sample quantile. NaN where any realisation is NaN."""
    return np.quantile(np.asarray(y, dtype=np.float64), quantiles, axis=0)


def band_interval(y, quantiles=BAND_QUANTILES, *, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Distribution-free interval of each quantile ξ_p of Y from the order statistics of
    ``y`` (R, …): [Y_(l), Y_(u)] with l, u the binomial(R, p) quantiles of (1 ∓ level)/2
    (David & Nagaraja, *Order Statistics*, 3rd ed., §7.1), so that
    P(Y_(l) <= ξ_p <= Y_(u)) >= level for independent realisations (clipped to the sample's
    ends where R is too small for the level). Returns (low, high), each (Q, …)."""
    from scipy import stats

    y = np.sort(np.asarray(y, dtype=np.float64), axis=0)
    n = y.shape[0]
    low, high = [], []
    for p in quantiles:
        lo = int(np.clip(stats.binom.ppf((1 - level) / 2, n, p), 1, n))
        hi = int(np.clip(stats.binom.ppf((1 + level) / 2, n, p) + 1, 1, n))
        low.append(y[lo - 1])
        high.append(y[hi - 1])
    return np.stack(low), np.stack(high)


#: Bootstrap replicates of the standard error of :func:`first_order`.
BOOTSTRAP = 200


def bins(n: int) -> int:
    """Bins of θ_k for ``n`` realisations: 2^⌊log2(n)/2⌋ (about √n; elementary intervals
    of a Sobol' set of 2^m points)."""
    return 2 ** (int(np.log2(n)) // 2)


def _correlation_ratio(ys, m: int):
    """S of yields ``ys`` (…, R, rest) sorted by the input, in ``m`` equal-count bins."""
    r = ys.shape[-2] if ys.ndim > 1 else ys.shape[0]
    axis = ys.ndim - 2 if ys.ndim > 1 else 0
    edges = np.linspace(0, r, m + 1).round().astype(int)
    mean = ys.mean(axis=axis, keepdims=True)
    between = np.zeros_like(np.take(ys, 0, axis=axis))
    within = np.zeros_like(between)
    for lo, hi in zip(edges[:-1], edges[1:]):
        part = np.take(ys, np.arange(lo, hi), axis=axis)
        mb = part.mean(axis=axis, keepdims=True)
        between = between + (hi - lo) / r * np.squeeze((mb - mean) ** 2, axis=axis)
        within = within + ((part - mb) ** 2).sum(axis=axis)
    total = ys.var(axis=axis)
    between = between - (m - 1) / r * within / (r - m)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 1e-300, between / np.where(total > 1e-300, total, 1.0), np.nan)


def first_order(x, y) -> tuple[np.ndarray, np.ndarray]:
    """First-order variance shares of the inputs and their standard errors (module docstring).

    Args:
      x: the realisations' uncertain values, (R, K).
      y: the realisations' yields, (R, …) (e.g. (R, sweep points …, condition)).

    Returns:
      (S, se), each (K, …); NaN where Y does not vary over the realisations.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, m = y.shape[0], bins(y.shape[0])
    flat = y.reshape(n, -1)
    rng = np.random.default_rng(0x5EED)
    picks = np.sort(rng.integers(0, n, size=(BOOTSTRAP, n)), axis=1)  # sorted: keeps the θ_k order
    s_all, se_all = [], []
    for k in range(x.shape[1]):
        ys = flat[np.argsort(x[:, k], kind="stable")]
        s_all.append(_correlation_ratio(ys, m).reshape(y.shape[1:]))
        boot = _correlation_ratio(ys[picks], m)  # (B, rest)
        with np.errstate(invalid="ignore"):
            se_all.append(np.std(boot, axis=0, ddof=1).reshape(y.shape[1:]))
    return np.stack(s_all), np.stack(se_all)
