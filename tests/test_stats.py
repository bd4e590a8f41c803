"""Estimators of yieldmc.engine.stats vs independent references.

* ``wilson_interval``: the Wilson score interval's endpoints are the two roots ``p`` of
  ``(p̂ − p)² = z² p (1 − p) / n``; the reference finds them numerically with
  ``scipy.optimize.brentq`` on either side of ``p̂`` (not from the closed form).
* ``quantiles_from_histogram``: the engine histograms losses into bins of width ``w``
  over ``[0, hist_max)`` plus an overflow bin; a quantile ``q`` reads as the upper edge
  ``e`` of the bin holding it, i.e. the smallest bin edge with ``P(loss < e) >= q``.
  The reference is the raw sample: its empirical CDF and the order statistic
  ``np.quantile(x, q, method="inverted_cdf")`` (the smallest x with ECDF(x) >= q).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from yieldmc.engine.stats import clopper_pearson_interval, quantiles_from_histogram, wilson_interval

Z95 = 1.959963984540054

# ---------------------------------------------------------------------------------------
# Wilson interval
# ---------------------------------------------------------------------------------------


def wilson_reference(n_pass: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Roots of f(p) = (p̂ − p)² − z² p(1 − p)/n on [0, p̂] and [p̂, 1], by bisection.

    f(p̂) < 0 < f(0), f(1) for 0 < p̂ < 1. At p̂ = 0 (p̂ = 1) the lower (upper) root is p̂
    itself and the other one is bracketed by [ε, 1] ([0, 1 − ε]), where f(ε) < 0.
    """
    p_hat = n_pass / n

    def f(p):
        return (p_hat - p) ** 2 - z * z * p * (1 - p) / n

    eps = 1e-12
    kw = dict(xtol=1e-17, rtol=4 * np.finfo(float).eps, maxiter=500)
    low = 0.0 if n_pass == 0 else brentq(f, 0.0, min(p_hat, 1 - eps), **kw)
    high = 1.0 if n_pass == n else brentq(f, max(p_hat, eps), 1.0, **kw)
    return low, high


WILSON_CASES = [
    (0, 1), (1, 1), (0, 10), (1, 10), (5, 10), (9, 10), (10, 10), (3, 7),
    (37, 1000), (0, 1000), (1000, 1000), (999_990, 1_000_000), (333_333_333, 1_000_000_000),
]


@pytest.mark.parametrize("n_pass, n", WILSON_CASES)
@pytest.mark.parametrize("z", [Z95, 1.0, 2.5758293035489004])
def test_wilson_matches_root_finding(n_pass, n, z):
    low, high = wilson_interval(n_pass, n, z=z)
    ref_low, ref_high = wilson_reference(n_pass, n, z)
    assert float(low) == pytest.approx(ref_low, rel=1e-9, abs=1e-13)
    assert float(high) == pytest.approx(ref_high, rel=1e-9, abs=1e-13)


@pytest.mark.parametrize("n_pass, n", WILSON_CASES)
@pytest.mark.parametrize("z", [Z95, 1.0, 2.5758293035489004])
def test_wilson_contains_the_estimate(n_pass, n, z):
    """0 <= low <= p̂ <= high <= 1 exactly, also at p̂ = 0 and p̂ = 1.

    At n_pass = 0 the lower root is exactly 0, at n_pass = n the upper root exactly 1; a
    rounding residue there (e.g. high = 1 − 1e-16 while the yield is 1.0) would put the
    reported yield outside its own confidence interval.
    """
    low, high = (float(v) for v in wilson_interval(n_pass, n, z=z))
    assert 0.0 <= low <= n_pass / n <= high <= 1.0, (low, n_pass / n, high)
    if n_pass == 0:
        assert low == 0.0
    if n_pass == n:
        assert high == 1.0


def test_wilson_default_is_95_percent():
    for n_pass, n in [(0, 10), (7, 10), (37, 1000)]:
        assert np.allclose(wilson_interval(n_pass, n), wilson_reference(n_pass, n, Z95), rtol=1e-12, atol=0)


def test_wilson_known_value():
    """0 of 10: the upper endpoint is z²/(n + z²) (the non-trivial root at p̂ = 0)."""
    low, high = wilson_interval(0, 10)
    assert float(low) == 0.0
    assert float(high) == pytest.approx(Z95**2 / (10 + Z95**2), rel=1e-12)


def test_wilson_vectorised_and_integer_inputs():
    """Arrays (int64 counts as the engine produces them) broadcast elementwise."""
    n_pass = np.array([[0, 1, 5], [9, 10, 3]], dtype=np.int64)
    n = np.array([10, 10, 10], dtype=np.int64)
    low, high = wilson_interval(n_pass, n)
    assert low.shape == high.shape == (2, 3)
    for idx in np.ndindex(n_pass.shape):
        ref = wilson_reference(int(n_pass[idx]), int(n[idx[1]]))
        assert low[idx] == pytest.approx(ref[0], rel=1e-9, abs=1e-13)
        assert high[idx] == pytest.approx(ref[1], rel=1e-9, abs=1e-13)


def test_wilson_narrows_as_inverse_sqrt_n():
    """Same p̂, 100× the trials: the width shrinks ~10× (large-n limit 2 z sqrt(p̂(1−p̂)/n))."""
    widths = [np.subtract(*wilson_interval(n // 4, n)[::-1]) for n in (10_000, 1_000_000)]
    assert widths[0] / widths[1] == pytest.approx(10.0, rel=1e-3)
    assert widths[1] == pytest.approx(2 * Z95 * math.sqrt(0.25 * 0.75 / 1_000_000), rel=1e-4)


# ---------------------------------------------------------------------------------------
# Quantiles from a histogram
# ---------------------------------------------------------------------------------------

WIDTH = 0.01  # dB: the engine's default 20 dB / 2000 bins
NBINS = 2000  # regular bins over [0, 20); index NBINS is the overflow bin (≥ 20 dB)
QUANTILES = (0.001, 0.1, 0.25, 0.5, 0.9, 0.99, 0.999, 0.123457)


def histogram(x: np.ndarray, *, nbins: int = NBINS, width: float = WIDTH) -> np.ndarray:
    """Counts along the last axis of x: bin k = [k·w, (k+1)·w), bin nbins = overflow."""
    idx = np.minimum(np.floor(x / width).astype(np.int64), nbins)
    lead = x.shape[:-1]
    hist = np.zeros((*lead, nbins + 1), dtype=np.int64)
    for cell in np.ndindex(lead):
        hist[cell] = np.bincount(idx[cell], minlength=nbins + 1)
    return hist


def check_against_sample(q_hat: float, x: np.ndarray, q: float, width: float = WIDTH) -> None:
    """q_hat is the upper edge of the bin holding the q-quantile of the sample x."""
    n = x.size
    # Empirical CDF (strict: the loss is below the edge) reaches q at q_hat, not one bin lower.
    assert np.count_nonzero(x < q_hat) >= q * n, (q, q_hat)
    assert np.count_nonzero(x < q_hat - width) < q * n, (q, q_hat)
    # Equivalently, the smallest sample value with ECDF >= q lies in [q_hat − w, q_hat).
    x_q = np.quantile(x, q, method="inverted_cdf")
    assert q_hat - width - 1e-9 <= x_q < q_hat, (q, q_hat, x_q)
    assert abs(q_hat - x_q) <= width + 1e-9
    # And it is on the bin grid.
    assert q_hat / width == pytest.approx(round(q_hat / width), abs=1e-6)


def test_quantiles_of_gamma_losses():
    rng = np.random.default_rng(20241)
    x = rng.gamma(shape=2.0, scale=0.6, size=50_000)  # all well inside [0, 20) dB
    hist = histogram(x)
    assert hist.sum() == x.size and hist[-1] == 0
    q_hat = quantiles_from_histogram(hist, QUANTILES, bin_width_db=WIDTH)
    assert q_hat.shape == (len(QUANTILES),)
    for q, value in zip(QUANTILES, q_hat):
        check_against_sample(float(value), x, q)
    assert np.all(np.diff(q_hat[:-1]) >= 0)  # monotone in q (the last q is out of order)


def test_quantile_in_overflow_is_inf():
    """Losses ≥ 20 dB land in the overflow bin: a quantile there is +inf, below it finite."""
    rng = np.random.default_rng(7)
    x = rng.gamma(shape=2.0, scale=4.0, size=50_000)  # P(x ≥ 20) ≈ 4 %
    hist = histogram(x)
    tail = hist[-1] / x.size
    assert 0.02 < tail < 0.06
    qs = (0.5, 0.9, 0.99, 0.999)
    q_hat = quantiles_from_histogram(hist, qs, bin_width_db=WIDTH)
    for q, value in zip(qs, q_hat):
        if q <= 1 - tail - 1e-3:
            assert np.isfinite(value)
            check_against_sample(float(value), x, q)
        else:
            assert value == np.inf


def test_hand_counted_histogram():
    w = 0.5
    hist = np.array([0, 3, 0, 1, 0])  # 3 losses in [0.5, 1), 1 in [1.5, 2), none in overflow
    q_hat = quantiles_from_histogram(hist, (0.1, 0.5, 0.75, 0.76, 0.99), bin_width_db=w)
    assert q_hat.tolist() == [1.0, 1.0, 1.0, 2.0, 2.0]
    # Half of the mass in overflow: the median is the last regular edge, just above it +inf.
    hist = np.array([1, 0, 0, 1])
    q_hat = quantiles_from_histogram(hist, (0.5, 0.51), bin_width_db=w)
    assert q_hat.tolist() == [0.5, math.inf]
    hist = np.array([0, 0, 1, 1])
    q_hat = quantiles_from_histogram(hist, (0.5, 0.51), bin_width_db=w)
    assert q_hat.tolist() == [1.5, math.inf]


def test_leading_dimensions():
    """hist of shape (P, L, C, bins): each (point, layer, channel) is its own distribution."""
    P, L, C, n = 2, 3, 4, 2_000
    rng = np.random.default_rng(3)
    shape_k = rng.uniform(1.0, 4.0, size=(P, L, C, 1))
    scale = rng.uniform(0.05, 2.0, size=(P, L, C, 1))
    x = rng.gamma(shape=shape_k, scale=scale, size=(P, L, C, n))
    x[1, 2, 3, : n // 2] = 25.0  # one cell with half its mass in overflow
    hist = histogram(x)
    qs = (0.1, 0.5, 0.9, 0.99)
    q_hat = quantiles_from_histogram(hist, qs, bin_width_db=WIDTH)
    assert q_hat.shape == (len(qs), P, L, C)
    for cell in np.ndindex(P, L, C):
        # Same answer as for the cell's histogram alone.
        alone = quantiles_from_histogram(hist[cell], qs, bin_width_db=WIDTH)
        np.testing.assert_array_equal(q_hat[(slice(None), *cell)], alone)
        for iq, q in enumerate(qs):
            value = float(q_hat[(iq, *cell)])
            if cell == (1, 2, 3) and q > 0.5:
                assert value == math.inf
            else:
                check_against_sample(value, x[cell], q)


@pytest.mark.parametrize("k, n", [(0, 100), (5, 100), (100, 100), (0, 2**18), (3, 2**18), (999_999, 10**6)])
def test_clopper_pearson_matches_scipy_binomtest(k, n):
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    low, high = clopper_pearson_interval(k, n)
    # scipy finds the ends with brentq (xtol 2e-12 absolute); ours are beta quantiles
    assert float(low) == pytest.approx(ci.low, rel=1e-9, abs=2e-12)
    assert float(high) == pytest.approx(ci.high, rel=1e-9, abs=2e-12)


def test_clopper_pearson_zero_failures_is_the_rule_of_three():
    """n passes out of n: the lower end solves p^n = 0.025, i.e. about 1 − 3.69/n."""
    n = 2**18
    low, high = clopper_pearson_interval(n, n)
    assert float(high) == 1.0
    assert float(low) == pytest.approx(0.025 ** (1 / n), rel=1e-12)
