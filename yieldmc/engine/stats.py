"""Estimators from the engine's integer statistics (pure numpy)."""

from __future__ import annotations

import numpy as np

_Z95 = 1.959963984540054


def wilson_interval(n_pass, n, *, z: float = _Z95):
    """Wilson score interval of a binomial proportion (Wilson, JASA 22:209 (1927)).

    Args:
      n_pass: successes (array).
      n: trials (> 0).
      z: standard-normal quantile; the default gives a 95 % interval.

    Returns:
      ``(low, high)`` arrays in [0, 1].
    """
    n_pass = np.asarray(n_pass, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    p = n_pass / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # exact ends where rounding would leave p̂ outside: 0 passes → low = 0, all → high = 1
    low = np.where(n_pass == 0, 0.0, np.clip(centre - half, 0.0, p))
    high = np.where(n_pass == n, 1.0, np.clip(centre + half, p, 1.0))
    return low, high


def clopper_pearson_interval(n_pass, n, *, level: float = 0.95):
    """Exact (Clopper–Pearson) interval of a binomial proportion (Clopper & Pearson,
    Biometrika 26:404 (1934)): the beta quantiles ``B(α/2; k, n − k + 1)`` and
    ``B(1 − α/2; k + 1, n − k)``; 0 passes → low 0, n passes → high 1.

    Returns:
      ``(low, high)`` arrays in [0, 1].
    """
    from scipy.stats import beta

    k = np.asarray(n_pass, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    a = 1.0 - level
    with np.errstate(invalid="ignore"):
        low = np.where(k == 0, 0.0, beta.ppf(a / 2, np.maximum(k, 1e-300), n - k + 1))
        high = np.where(k == n, 1.0, beta.ppf(1 - a / 2, k + 1, np.maximum(n - k, 1e-300)))
    return low, high


def quantiles_from_histogram(hist, quantiles, *, bin_width_db: float):
    """Upper edge of the histogram bin that holds each quantile.

    Args:
      hist: counts with bins on the last axis; the last bin is the overflow (≥ the
        histogram's range), whose quantile reads as +inf.
      quantiles: probabilities in (0, 1).
      bin_width_db: histogram bin width, dB (the quantile resolution).

    Returns:
      Array of shape ``(len(quantiles), *hist.shape[:-1])``, dB; a quantile q reads as
      the smallest bin edge e with P(loss < e) >= q.
    """
    hist = np.asarray(hist, dtype=np.int64)
    cum = np.cumsum(hist, axis=-1)
    total = cum[..., -1:]
    out = []
    nbins = hist.shape[-1] - 1
    for q in quantiles:
        # first bin where the cumulative count reaches q·N
        k = np.argmax(cum >= np.ceil(q * total - 1e-9), axis=-1)
        edge = (k + 1) * bin_width_db
        out.append(np.where(k >= nbins, np.inf, edge))
    return np.stack(out)
